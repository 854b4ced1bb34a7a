/*
 * `finmaas importance`: the global explanations of a model recomputed on any labelled CSV file
 * (importance/importance.h): permutation importance, partial dependence and ICE curves per
 * feature, and the mean absolute attribution (explain/explain.h), as one JSON object on stdout,
 * the same members training stores under "global_explanations".
 */
#include "cli/cli.h"
#include "cli/scoring.h"
#include "explain/explain.h"
#include "importance/importance.h"

#include <stdint.h>
#include <stdlib.h>

static const char usage[] =
    "usage: finmaas importance --model M.fmm --data F.csv [options]\n"
    "\n"
    "Recomputes the model's global explanations on labelled rows and prints them as JSON:\n"
    "permutation importance (drop in AUC, accuracy or R^2 when a feature is shuffled), partial\n"
    "dependence and ICE curves per feature, and the mean absolute attribution per feature.\n"
    "\n"
    "  --model M.fmm      the model (required)\n"
    "  --data F.csv       rows with the model's features and target (required)\n"
    "  --repeats N        shuffles per feature (default 5)\n"
    "  --grid N           partial dependence points per numeric feature (default 20)\n"
    "  --ice N            ICE curves kept per feature (default 20)\n"
    "  --max-rows N       rows used at most, a seeded sample (default 2000)\n"
    "  --seed N           the sample's and the shuffles' seed (default 42)\n"
    "  --threads N        BLAS threads (default 1)\n";

enum {
    OPT_THREADS = 999,
    OPT_MODEL = 1000,
    OPT_DATA,
    OPT_REPEATS,
    OPT_GRID,
    OPT_ICE,
    OPT_MAX_ROWS,
    OPT_SEED
};

static const struct option options[] = {
    {"threads", required_argument, NULL, OPT_THREADS},
    {"model", required_argument, NULL, OPT_MODEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"repeats", required_argument, NULL, OPT_REPEATS},
    {"grid", required_argument, NULL, OPT_GRID},
    {"ice", required_argument, NULL, OPT_ICE},
    {"max-rows", required_argument, NULL, OPT_MAX_ROWS},
    {"seed", required_argument, NULL, OPT_SEED},
    {NULL, 0, NULL, 0},
};

static int run(const char *model_path, const char *data, const fm_importance_options_t *o) {
    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    fm_frame_t *frame = NULL;
    cJSON *out = NULL, *mean = NULL;
    int rc = fm_model_load(model_path, &model, &err);
    if (!rc) {
        fm_column_spec_t target = {
            model->target,
            model->task == FM_TASK_REGRESSION ? FM_COLUMN_NUMERIC : FM_COLUMN_CATEGORICAL, 1, 0};
        rc = fm_scoring_read_all(model, data, &target, 1, &frame, &err);
    }
    if (!rc) rc = fm_importance_compute(model, frame, NULL, frame->nrows, o, &out, &err);
    if (!rc) {
        /* The same rows as the importance: the rows with a target, in file order. */
        const fm_column_t *t = &frame->columns[fm_frame_find(frame, model->target)];
        size_t *rows = malloc(frame->nrows * sizeof *rows), n = 0;
        if (!rows) rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < frame->nrows; i++)
            if (t->type == FM_COLUMN_NUMERIC ? t->values[i] == t->values[i] : t->codes[i] >= 0)
                rows[n++] = i;
        if (!rc) rc = fm_explain_mean_abs_frame(model, frame, rows, n, &mean, &err);
        free(rows);
    }
    if (!rc) {
        cJSON_AddStringToObject(out, "data", data);
        cJSON_AddItemToObject(out, "mean_abs_attribution", mean);
        mean = NULL;
        char *text = cJSON_Print(out);
        if (text) puts(text);
        free(text);
    }
    cJSON_Delete(mean);
    cJSON_Delete(out);
    fm_frame_free(frame);
    fm_model_free(model);
    return rc ? fm_cli_fail("importance", &err) : FM_EXIT_OK;
}

int fm_cmd_importance(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    const char *model_path = NULL, *data = NULL;
    fm_importance_options_t o;
    fm_importance_options_defaults(&o);
    long l;
    int c;
    fm_nn_set_threads(1);
    while ((c = fm_cli_next_option("importance", argc, argv, options)) != -1) {
        switch (c) {
        case OPT_MODEL:
            model_path = optarg;
            break;
        case OPT_DATA:
            data = optarg;
            break;
        case OPT_THREADS:
            if (fm_cli_set_threads("importance", optarg)) return FM_EXIT_USAGE;
            break;
        case OPT_REPEATS:
            if (fm_cli_parse_long("importance", "repeats", optarg, 1, 100, &l))
                return FM_EXIT_USAGE;
            o.repeats = (int)l;
            break;
        case OPT_GRID:
            if (fm_cli_parse_long("importance", "grid", optarg, 2, 200, &l)) return FM_EXIT_USAGE;
            o.grid = (size_t)l;
            break;
        case OPT_ICE:
            if (fm_cli_parse_long("importance", "ice", optarg, 0, 1000, &l)) return FM_EXIT_USAGE;
            o.ice_rows = (size_t)l;
            break;
        case OPT_MAX_ROWS:
            if (fm_cli_parse_long("importance", "max-rows", optarg, 1, 100000000, &l))
                return FM_EXIT_USAGE;
            o.max_rows = (size_t)l;
            break;
        case OPT_SEED:
            if (fm_cli_parse_long("importance", "seed", optarg, 0, 2147483647, &l))
                return FM_EXIT_USAGE;
            o.seed = (uint64_t)l;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional("importance", argc, argv)) return FM_EXIT_USAGE;
    if (!model_path || !data)
        return fm_cli_usage_error("importance", "--%s is required", model_path ? "data" : "model");
    return run(model_path, data, &o);
}
