/*
 * Shared helpers of the commands: error lines, exit codes, number and list parsing.
 */
#include "cli/cli.h"
#include "nn/nn.h"
#include "security/pii.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int fm_cli_exit_code(int code) {
    if (code == FM_OK) return FM_EXIT_OK;
    /* Running out of memory is the environment's failure; everything else is input or usage. */
    return code == FM_ENOMEM ? FM_EXIT_FAILURE : FM_EXIT_USAGE;
}

int fm_cli_fail(const char *command, const fm_error_t *err) {
    /* Messages may quote input values: card numbers and e-mail addresses never go out. */
    const char *message = fm_error_message(err);
    fm_buf_t masked = FM_BUF_INIT;
    if (fm_pii_suspect(message, strlen(message)) &&
        fm_pii_scrub(NULL, message, strlen(message), &masked) == FM_OK && masked.data)
        message = masked.data;
    fprintf(stderr, "finmaas %s: %s\n", command, message);
    fm_buf_free(&masked);
    return fm_cli_exit_code(err->code ? err->code : FM_EINVAL);
}

int fm_cli_usage_error(const char *command, const char *fmt, ...) {
    fprintf(stderr, "finmaas %s: ", command);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return FM_EXIT_USAGE;
}

int fm_cli_parse_double(const char *command, const char *option, const char *text, double min,
                        double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v) || v < min || v > max) {
        fm_cli_usage_error(command, "--%s must be a number in [%g, %g], got '%s'", option, min, max,
                           text);
        return -1;
    }
    *out = v;
    return 0;
}

int fm_cli_parse_long(const char *command, const char *option, const char *text, long min, long max,
                      long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < min || v > max) {
        fm_cli_usage_error(command, "--%s must be an integer in [%ld, %ld], got '%s'", option, min,
                           max, text);
        return -1;
    }
    *out = v;
    return 0;
}

char **fm_cli_split_list(const char *text, size_t *count) {
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    char **list = calloc(n + 1, sizeof *list);
    if (!list) return NULL;
    size_t k = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p == ',' || *p == '\0') {
            size_t len = (size_t)(p - start);
            if (len > 0) {
                list[k] = strndup(start, len);
                if (!list[k]) {
                    fm_cli_free_list(list);
                    return NULL;
                }
                k++;
            }
            if (*p == '\0') break;
            start = p + 1;
        }
    }
    *count = k;
    return list;
}

void fm_cli_free_list(char **list) {
    if (!list) return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

int fm_cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

int fm_cli_next_option(const char *command, int argc, char **argv, const struct option *options) {
    opterr = 0;
    int c = getopt_long(argc, argv, ":", options, NULL);
    if (c == ':') {
        const char *name = argv[optind - 1];
        fm_cli_usage_error(command, "option '%s' needs a value", name);
        return FM_CLI_BAD_OPTION;
    }
    if (c == '?') {
        fm_cli_usage_error(command, "unknown option '%s' (see finmaas %s --help)", argv[optind - 1],
                           command);
        return FM_CLI_BAD_OPTION;
    }
    return c;
}

int fm_cli_no_positional(const char *command, int argc, char **argv) {
    if (optind < argc) {
        fm_cli_usage_error(command, "unexpected argument '%s' (see finmaas %s --help)",
                           argv[optind], command);
        return -1;
    }
    return 0;
}

int fm_cli_set_threads(const char *command, const char *text) {
    long threads;
    if (fm_cli_parse_long(command, "threads", text, 1, 256, &threads)) return -1;
    fm_nn_set_threads((int)threads);
    return 0;
}

int fm_cli_quotable(const char *text) {
    if (strlen(text) > 64 || strstr(text, "fmk_")) return 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p >= 0x7f) return 0;
    return 1;
}

int fm_cli_subcommand(const char *command, const char *usage, const char *expected,
                      const fm_command_t *table, size_t n, int argc, char **argv) {
    if (argc < 2)
        return fm_cli_usage_error(command, "expected a subcommand: %s (see finmaas %s --help)",
                                  expected, command);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], table[i].name)) return table[i].run(argc - 1, argv + 1);
    if (fm_cli_quotable(argv[1]))
        return fm_cli_usage_error(command,
                                  "unknown subcommand '%s': expected %s (see finmaas %s --help)",
                                  argv[1], expected, command);
    return fm_cli_usage_error(command, "unknown subcommand: expected %s (see finmaas %s --help)",
                              expected, command);
}
