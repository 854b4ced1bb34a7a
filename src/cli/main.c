/*
 * finmaas: the program's entry point and its table of commands.
 */
#include "cli/cli.h"
#include "core/digest.h"

#include <string.h>

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
};

static void print_usage(FILE *out) {
    fprintf(out, "usage: finmaas <command> [options]   (finmaas <command> --help for details)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nfinmaas %s\n", FM_VERSION);
}

int main(int argc, char **argv) {
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
