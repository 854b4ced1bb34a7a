/*
 * The command line: `finmaas <command> [options]`. Each command lives in its own file
 * (src/cli/cmd_<name>.c) and is listed once in the table in main.c. Only this area prints to the
 * user and decides exit codes: 0 success, 1 a failure of the environment (I/O, memory), 2 bad
 * usage or bad input, with one line on stderr naming the problem.
 */
#ifndef FM_CLI_H
#define FM_CLI_H

#include "core/error.h"
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
 * The audit trail of commands that change a home (cli_audit.c). fm_cli_audit_open opens the home's
 * audit log before the action (an error there means: do not act). fm_cli_audit_record commits the
 * entry after it: action (as the server names it: "keys.create", "model.upload", ...), model and
 * version (NULL, 0 when none), detail (PII-free text, may be NULL) and the outcome (NULL or an
 * error with FM_OK: success; else the failure, whose message is recorded masked). An error says
 * the action happened (or failed) untraced. Close the log with fm_audit_close.
 */
int fm_cli_audit_open(const char *home, fm_audit_t **log, fm_error_t *err);
int fm_cli_audit_record(fm_audit_t *log, const char *action, const char *model, int64_t version,
                        const char *detail, const fm_error_t *outcome, fm_error_t *err);

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

#endif
