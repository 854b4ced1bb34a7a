/*
 * `finmaas inspect M.fmm`: prints the model file's description as JSON (task, classes, input
 * schema, preprocessing, the network's architecture or the booster's rounds, trees, depth and
 * features, training settings and history, validation metrics, data fingerprint, creation time).
 * The file is fully validated first.
 */
#include "cli/cli.h"
#include "model/model.h"

#include <stdlib.h>

static const char usage[] = "usage: finmaas inspect M.fmm\n"
                            "\n"
                            "Validates the model file and prints its description as JSON.\n";

int fm_cmd_inspect(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    if (argc != 2 || argv[1][0] == '-')
        return fm_cli_usage_error("inspect", "expected exactly one model file (see finmaas inspect "
                                             "--help)");
    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    int rc = fm_model_load(argv[1], &model, &err);
    if (rc) return fm_cli_fail("inspect", &err);
    cJSON *description = fm_model_describe(model);
    char *text = description ? cJSON_Print(description) : NULL;
    int ok = text != NULL;
    if (ok) puts(text);
    free(text);
    cJSON_Delete(description);
    fm_model_free(model);
    return ok ? FM_EXIT_OK : FM_EXIT_FAILURE;
}
