/*
 * finmaas: the program's entry point and its table of commands.
 */
#include "cli/cli.h"
#include "core/digest.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const fm_command_t commands[] = {
    {"train", "train a model on a CSV file and save it as a .fmm model file", fm_cmd_train},
    {"search", "cross-validated model search: leaderboard, refit of the best", fm_cmd_search},
    {"predict", "score the rows of a CSV file with a model", fm_cmd_predict},
    {"eval", "measure a model on a labelled CSV file (JSON on stdout)", fm_cmd_eval},
    {"inspect", "print a model file's description as JSON", fm_cmd_inspect},
    {"import-keras", "import a Keras HDF5 model (M.h5) as a .fmm model file", fm_cmd_import_keras},
    {"split", "split a CSV file into stratified train and test files", fm_cmd_split},
    {"serve", "serve the registry's models over HTTP (V2 and TF Serving protocols)", fm_cmd_serve},
    {"models", "keep model versions and labels in a registry (add, list, label)", fm_cmd_models},
    {"keys", "API keys: create, list, revoke, rotate-master", fm_cmd_keys},
    {"audit", "verify or export the tamper-evident audit log", fm_cmd_audit},
    {"fairness", "group fairness metrics of a binary model's decisions (JSON)", fm_cmd_fairness},
    {"report", "write a model's validation report: one self-contained HTML page", fm_cmd_report},
    {"importance",
     "global explanations on labelled data: permutation importance, partial dependence (JSON)",
     fm_cmd_importance},
    {"scorecard", "fit a credit scorecard (WoE bins, points) with a decision policy",
     fm_cmd_scorecard},
    {"decide", "loan decisions for a CSV of applicants with a scorecard model", fm_cmd_decide},
    {"invest", "investment analysis: returns, risk, VaR/ES, forecasts, portfolios (JSON)",
     fm_cmd_invest},
    {"risk", "portfolio credit risk: expected loss, IRB capital, Monte Carlo VaR/ES (JSON)",
     fm_cmd_risk},
};

static void print_usage(FILE *out) {
    fprintf(out, "usage: finmaas <command> [options]   (finmaas <command> --help for details)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nfinmaas %s\n", FM_VERSION);
}

/*
 * OpenBLAS reads OPENBLAS_NUM_THREADS as the library loads, before main, and otherwise starts a
 * worker thread per core that spins for about 0.1 s: on two cores that takes a core from a short
 * training run or from XGBoost's second thread. Every command sets its BLAS threads itself
 * (fm_nn_set_threads, --threads, which may raise the count later), so the program starts with one:
 * when the variable is unset it sets it and runs itself again. A user's own setting is kept; if
 * the re-execution fails, the program simply goes on.
 */
static void start_with_one_blas_thread(int argc, char **argv) {
    /* Only where the spinning costs something: the training commands. Running again costs about
     * 20 ms of library loading, which every other command is spared. */
    if (argc < 2 || (strcmp(argv[1], "train") != 0 && strcmp(argv[1], "search") != 0)) return;
    if (getenv("OPENBLAS_NUM_THREADS")) return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0) return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv) {
    start_with_one_blas_thread(argc, argv);
    if (argc < 2) {
        print_usage(stderr);
        return FM_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        print_usage(stdout);
        return FM_EXIT_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("finmaas %s\n", FM_VERSION);
        return FM_EXIT_OK;
    }
    if (fm_digest_library_init() != 0) {
        fprintf(stderr, "finmaas: cannot initialise libsodium\n");
        return FM_EXIT_FAILURE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "finmaas: unknown command '%s' (finmaas --help lists them)\n", name);
    return FM_EXIT_USAGE;
}
