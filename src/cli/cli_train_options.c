/*
 * The options `finmaas train` and `finmaas search` share, with one meaning and one check each:
 * the data file, the target and its task, the columns to leave out or to treat as personal data,
 * the type overrides, the threads of every fit, the output file and --quiet. Each command's own
 * options stay in its file; both hand every option here first (cli.h).
 */
#include "cli/cli.h"
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

void fm_cli_train_args_init(fm_cli_train_args_t *a) {
    memset(a, 0, sizeof *a);
    a->task = -1;
}

void fm_cli_train_args_deinit(fm_cli_train_args_t *a) {
    fm_cli_free_list(a->drop);
    fm_cli_free_list(a->pii);
    a->drop = a->pii = NULL;
    a->ndrop = a->npii = 0;
}

/* Replaces *list with the comma-separated names of text. */
static int take_list(const char *command, const char *text, char ***list, size_t *count) {
    fm_cli_free_list(*list);
    *count = 0;
    *list = fm_cli_split_list(text, count);
    if (*list) return 0;
    fprintf(stderr, "finmaas %s: out of memory\n", command);
    return FM_EXIT_FAILURE;
}

int fm_cli_train_option(const char *command, int opt, const char *arg, fm_cli_train_args_t *a) {
    long l;
    switch (opt) {
    case FM_CLI_TRAIN_OPT_DATA:
        a->data = arg;
        return 0;
    case FM_CLI_TRAIN_OPT_TARGET:
        a->target = arg;
        return 0;
    case FM_CLI_TRAIN_OPT_POSITIVE:
        a->positive = arg;
        return 0;
    case FM_CLI_TRAIN_OPT_TASK: {
        fm_task_t task;
        if (fm_task_parse(arg, &task))
            return fm_cli_usage_error(
                command, "--task must be binary, multiclass or regression, got '%s'", arg);
        a->task = (int)task;
        return 0;
    }
    case FM_CLI_TRAIN_OPT_DROP:
        return take_list(command, arg, &a->drop, &a->ndrop);
    case FM_CLI_TRAIN_OPT_PII:
        return take_list(command, arg, &a->pii, &a->npii);
    case FM_CLI_TRAIN_OPT_SCHEMA:
        a->schema = arg;
        return 0;
    case FM_CLI_TRAIN_OPT_THREADS:
        if (fm_cli_parse_long(command, "threads", arg, 1, 256, &l)) return FM_EXIT_USAGE;
        a->threads = (int)l;
        return 0;
    case FM_CLI_TRAIN_OPT_OUT:
        a->out = arg;
        return 0;
    case FM_CLI_TRAIN_OPT_QUIET:
        a->quiet = 1;
        return 0;
    default:
        return FM_CLI_NOT_SHARED;
    }
}
