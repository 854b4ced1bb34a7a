/*
 * The command line: `finmaas <command> [options]`. Each command lives in its own file
 * (src/cli/cmd_<name>.c) and is listed once in the table in main.c. Only this area prints to the
 * user and decides exit codes: 0 success, 1 a failure of the environment (I/O, memory), 2 bad
 * usage or bad input, with one line on stderr naming the problem.
 */
#ifndef FM_CLI_H
#define FM_CLI_H

#include "core/error.h"
#include "train/train.h"
#include "security/audit.h"

#include <getopt.h>
#include <stdio.h>

enum { FM_EXIT_OK = 0, FM_EXIT_FAILURE = 1, FM_EXIT_USAGE = 2 };

typedef struct fm_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} fm_command_t;

/* Prints "finmaas <command>: <message>" on stderr and returns the exit code for err's code. */
int fm_cli_fail(const char *command, const fm_error_t *err);
/* Prints "finmaas <command>: <printf message>" and returns FM_EXIT_USAGE. */
int fm_cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The exit code for an error code: usage/input errors 2, environment errors 1. */
int fm_cli_exit_code(int code);

/* Option parsing helpers: on bad text they print the usage error and return -1. */
int fm_cli_parse_double(const char *command, const char *option, const char *text, double min,
                        double max, double *out);
int fm_cli_parse_long(const char *command, const char *option, const char *text, long min, long max,
                      long *out);
/* Parses --threads (1..256) and sets the BLAS thread count; -1 after printing the error. */
int fm_cli_set_threads(const char *command, const char *text);
/* Splits "a,b,c" into a new NULL-terminated array of new strings (free with fm_cli_free_list). */
char **fm_cli_split_list(const char *text, size_t *count);
void fm_cli_free_list(char **list);

/* 1 when text may be quoted in an error line: short, printable, and not possibly an API token. */
int fm_cli_quotable(const char *text);

/*
 * Runs the subcommand argv[1] of command from table[0..n) with argv shifted by one, prints usage
 * for --help / -h, and otherwise gives the usage error "expected a subcommand: <expected>" or
 * "unknown subcommand '<name>': expected <expected>" (the name quoted only when fm_cli_quotable).
 */
int fm_cli_subcommand(const char *command, const char *usage, const char *expected,
                      const fm_command_t *table, size_t n, int argc, char **argv);

/* 1 when argv asks for --help / -h. */
int fm_cli_wants_help(int argc, char **argv);

/*
 * The next long option (getopt_long over long options only): its val, -1 at the end of options,
 * or FM_CLI_BAD_OPTION after printing a one-line error for an unknown option or a missing value.
 * Positional arguments are left at argv[optind..].
 */
#define FM_CLI_BAD_OPTION (-2)
int fm_cli_next_option(const char *command, int argc, char **argv, const struct option *options);
/* Prints an error and returns -1 when positional arguments remain after the options. */
int fm_cli_no_positional(const char *command, int argc, char **argv);

/*
 * The options `train` and `search` share, with the same meaning (cli_train_options.c): the data,
 * its target and columns, the threads of every fit and the output. A command puts
 * FM_CLI_TRAIN_LONG_OPTIONS in its getopt table and numbers its own options from
 * FM_CLI_TRAIN_OPT_END, hands every option to fm_cli_train_option before its own switch, and
 * prints FM_CLI_TRAIN_USAGE_DATA and FM_CLI_TRAIN_USAGE_COLUMNS in its usage (with its own lines
 * for --target, --threads, --out and --quiet, whose help differs by command).
 */
enum {
    FM_CLI_TRAIN_OPT_DATA = 1000,
    FM_CLI_TRAIN_OPT_TARGET,
    FM_CLI_TRAIN_OPT_POSITIVE,
    FM_CLI_TRAIN_OPT_TASK,
    FM_CLI_TRAIN_OPT_DROP,
    FM_CLI_TRAIN_OPT_PII,
    FM_CLI_TRAIN_OPT_SCHEMA,
    FM_CLI_TRAIN_OPT_THREADS,
    FM_CLI_TRAIN_OPT_OUT,
    FM_CLI_TRAIN_OPT_QUIET,
    FM_CLI_TRAIN_OPT_END
};

/* The getopt table entries of the shared options, one a line. */
/* clang-format off */
#define FM_CLI_TRAIN_LONG_OPTIONS                                                                  \
    {"data", required_argument, NULL, FM_CLI_TRAIN_OPT_DATA},                                      \
    {"target", required_argument, NULL, FM_CLI_TRAIN_OPT_TARGET},                                  \
    {"positive", required_argument, NULL, FM_CLI_TRAIN_OPT_POSITIVE},                              \
    {"task", required_argument, NULL, FM_CLI_TRAIN_OPT_TASK},                                      \
    {"drop", required_argument, NULL, FM_CLI_TRAIN_OPT_DROP},                                      \
    {"pii", required_argument, NULL, FM_CLI_TRAIN_OPT_PII},                                        \
    {"schema", required_argument, NULL, FM_CLI_TRAIN_OPT_SCHEMA},                                  \
    {"threads", required_argument, NULL, FM_CLI_TRAIN_OPT_THREADS},                                \
    {"out", required_argument, NULL, FM_CLI_TRAIN_OPT_OUT},                                        \
    {"quiet", no_argument, NULL, FM_CLI_TRAIN_OPT_QUIET}
/* clang-format on */

#define FM_CLI_TRAIN_USAGE_DATA "  --data F.csv            training data (required)\n"
#define FM_CLI_TRAIN_USAGE_COLUMNS                                                                 \
    "  --positive VALUE        binary: the positive class (default: the second in sorted order)\n" \
    "  --task T                binary | multiclass | regression (default: from the target)\n"      \
    "  --drop COL,...          columns to leave out (ids, leaky or protected columns)\n"           \
    "  --pii COL,...           columns holding personal data: masked in logs, audit and errors,\n" \
    "                          and no Information Value table shows their values\n"                \
    "  --schema S.json         column types that override inference: {\"col\": "                   \
    "\"numeric\"|\"categorical\"}\n"

/* The values of the shared options. Plain struct; the lists are owned. */
typedef struct fm_cli_train_args {
    const char *data, *target, *positive, *schema, *out; /* borrowed from argv; NULL: not given */
    int task;                                            /* an fm_task_t, or -1: not given */
    char **drop, **pii; /* fm_cli_split_list lists, NULL: not given */
    size_t ndrop, npii;
    int threads; /* 1..256, or 0: not given */
    int quiet;
} fm_cli_train_args_t;

#define FM_CLI_NOT_SHARED (-1)
/* Zeroes a, with task -1. */
void fm_cli_train_args_init(fm_cli_train_args_t *a);
/* Takes option opt (getopt's value) with its argument arg into a: 0 when it is one of the shared
 * options, FM_CLI_NOT_SHARED when it is not, or an exit code after printing the error (a bad
 * --task or --threads: FM_EXIT_USAGE; out of memory: FM_EXIT_FAILURE). */
int fm_cli_train_option(const char *command, int opt, const char *arg, fm_cli_train_args_t *a);
/* Frees the lists; a may be used again after fm_cli_train_args_init. */
void fm_cli_train_args_deinit(fm_cli_train_args_t *a);

/*
 * The governance options of `train` (cli_govern_options.c): a command puts
 * FM_CLI_GOVERN_LONG_OPTIONS in its getopt table, hands each option to fm_cli_govern_option after
 * the shared ones, prints FM_CLI_GOVERN_USAGE, and calls fm_cli_govern_apply once all options are
 * read, which fills the training options' governance fields and turns governance on.
 */
enum {
    FM_CLI_GOVERN_OPT_PROTECTED = 1100,
    FM_CLI_GOVERN_OPT_BANDS,
    FM_CLI_GOVERN_OPT_FAIRNESS_REFERENCE,
    FM_CLI_GOVERN_OPT_REWEIGH,
    FM_CLI_GOVERN_OPT_APPROVE,
    FM_CLI_GOVERN_OPT_CUTOFF,
    FM_CLI_GOVERN_OPT_REASON_TEXTS,
    FM_CLI_GOVERN_OPT_EXPLAIN_REFERENCE,
    FM_CLI_GOVERN_OPT_EXPLAIN_BAND,
    FM_CLI_GOVERN_OPT_EXPLAIN_STEPS,
    FM_CLI_GOVERN_OPT_EXPLAIN_METHOD,
    FM_CLI_GOVERN_OPT_NO_GLOBAL,
};

/* clang-format off */
#define FM_CLI_GOVERN_LONG_OPTIONS                                                                 \
    {"protected", required_argument, NULL, FM_CLI_GOVERN_OPT_PROTECTED},                           \
    {"bands", required_argument, NULL, FM_CLI_GOVERN_OPT_BANDS},                                   \
    {"fairness-reference", required_argument, NULL, FM_CLI_GOVERN_OPT_FAIRNESS_REFERENCE},         \
    {"reweigh", no_argument, NULL, FM_CLI_GOVERN_OPT_REWEIGH},                                     \
    {"approve", required_argument, NULL, FM_CLI_GOVERN_OPT_APPROVE},                               \
    {"cutoff", required_argument, NULL, FM_CLI_GOVERN_OPT_CUTOFF},                                 \
    {"reason-texts", required_argument, NULL, FM_CLI_GOVERN_OPT_REASON_TEXTS},                     \
    {"explain-reference", required_argument, NULL, FM_CLI_GOVERN_OPT_EXPLAIN_REFERENCE},           \
    {"explain-band", required_argument, NULL, FM_CLI_GOVERN_OPT_EXPLAIN_BAND},                     \
    {"explain-steps", required_argument, NULL, FM_CLI_GOVERN_OPT_EXPLAIN_STEPS},                   \
    {"explain-method", required_argument, NULL, FM_CLI_GOVERN_OPT_EXPLAIN_METHOD},                 \
    {"no-global-explanations", no_argument, NULL, FM_CLI_GOVERN_OPT_NO_GLOBAL}
/* clang-format on */

#define FM_CLI_GOVERN_USAGE                                                                        \
    "governance:\n"                                                                                \
    "  --protected COL,...     protected attributes: left out of the features, kept to measure\n"  \
    "                          fairness on the validation rows (stored in the model)\n"            \
    "  --bands COL=E1,E2,...   band numeric COL at these edges (default for a column of more\n"    \
    "                          than 10 distinct numbers: 25,35,45,55,65)\n"                        \
    "  --fairness-reference COL=GROUP  the reference group (default: the largest)\n"               \
    "  --reweigh               binary: AIF360 reweighing over the protected groups; the model\n"   \
    "                          stores its fairness before and after\n"                             \
    "  --approve CLASS         binary: the class that means approval (default: the positive,\n"    \
    "                          or the other when it is named bad, default, fraud, ...)\n"          \
    "  --cutoff P              approval when P(approve) >= P (default 0.5)\n"                      \
    "  --reason-texts F.json   {\"feature\": \"adverse-action reason text\", ...}\n"               \
    "  --explain-reference R   cutoff (approved applicants just above the cutoff, default) |\n"    \
    "                          population: the baseline of reason codes\n"                         \
    "  --explain-band W        width of the reference band above the cutoff (default 0.1)\n"       \
    "  --explain-steps N       Integrated Gradients steps for smooth networks (default 50)\n"      \
    "  --explain-method M      auto | shapley (exact, up to 16 features)\n"                        \
    "  --no-global-explanations  skip permutation importance and partial dependence\n"

#define FM_CLI_GOVERN_MAX_SETTINGS 64

typedef struct fm_cli_govern_args {
    char **protected; /* fm_cli_split_list list, or NULL */
    size_t nprotected;
    const char *settings[FM_CLI_GOVERN_MAX_SETTINGS]; /* --bands / --fairness-reference, in order */
    int setting_kind[FM_CLI_GOVERN_MAX_SETTINGS];     /* 1: bands, 0: reference */
    size_t nsettings;
    fm_fairness_attribute_t attrs[FM_FAIRNESS_MAX_ATTRIBUTES]; /* filled by apply */
    double *edges[FM_FAIRNESS_MAX_ATTRIBUTES];                 /* owned */
    size_t nattrs;
    int reweigh, no_global;
    cJSON *reasons; /* owned */
    fm_explain_fit_options_t explain;
} fm_cli_govern_args_t;

void fm_cli_govern_args_init(fm_cli_govern_args_t *g);
void fm_cli_govern_args_deinit(fm_cli_govern_args_t *g);
/* As fm_cli_train_option, for the governance options. */
int fm_cli_govern_option(const char *command, int opt, const char *arg, fm_cli_govern_args_t *g);
/* Fills o's governance fields from g (which must outlive o's use); 0 or an exit code after
 * printing the error. */
int fm_cli_govern_apply(const char *command, fm_cli_govern_args_t *g, fm_train_options_t *o);

/*
 * The audit trail of commands that change a home (cli_audit.c). fm_cli_audit_open opens the home's
 * audit log before the action (an error there means: do not act). fm_cli_audit_record commits the
 * entry after it: action (as the server names it: "keys.create", "model.upload", ...), model and
 * version (NULL, 0 when none), detail (PII-free text, may be NULL) and the action's outcome: rc
 * and, when rc is not 0, its message in err (recorded masked). Returns rc when the action failed;
 * else 0, or the error (in err) of an entry that could not be written. Close with fm_audit_close.
 */
int fm_cli_audit_open(const char *home, fm_audit_t **log, fm_error_t *err);
int fm_cli_audit_record(fm_audit_t *log, const char *action, const char *model, int64_t version,
                        const char *detail, int rc, fm_error_t *err);

int fm_cmd_train(int argc, char **argv);
int fm_cmd_search(int argc, char **argv);
int fm_cmd_predict(int argc, char **argv);
int fm_cmd_eval(int argc, char **argv);
int fm_cmd_inspect(int argc, char **argv);
int fm_cmd_import_keras(int argc, char **argv);
int fm_cmd_split(int argc, char **argv);
int fm_cmd_serve(int argc, char **argv);
int fm_cmd_models(int argc, char **argv);
int fm_cmd_keys(int argc, char **argv);
int fm_cmd_keys_rotate_master(int argc, char **argv); /* `finmaas keys rotate-master` */
int fm_cmd_audit(int argc, char **argv);
int fm_cmd_fairness(int argc, char **argv);
int fm_cmd_report(int argc, char **argv);
int fm_cmd_importance(int argc, char **argv);
int fm_cmd_scorecard(int argc, char **argv);
int fm_cmd_decide(int argc, char **argv);
int fm_cmd_invest(int argc, char **argv);
int fm_cmd_risk(int argc, char **argv);

#endif
