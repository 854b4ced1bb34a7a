/*
 * `finmaas eval`: measures a model on a labelled CSV file and prints one JSON object on stdout:
 * AUC, KS, Gini, log loss, Brier score, accuracy, precision, recall, F1 and the confusion matrix
 * for binary models; accuracy and log loss for multiclass; RMSE, MAE and R-squared for
 * regression. Rows whose target is missing are skipped and counted.
 */
#include "cli/cli.h"
#include "cli/scoring.h"
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas eval --model M.fmm --data F.csv [--threshold X]\n"
    "\n"
    "Scores F.csv, which must hold the model's feature columns and its target column, and prints\n"
    "the metrics as one JSON object on stdout.\n"
    "\n"
    "  --model M.fmm      the model (required)\n"
    "  --data F.csv       labelled rows (required)\n"
    "  --threshold X      binary: predicted positive when P(positive) >= X (default 0.5)\n"
    "  --threads N        BLAS threads (default 1)\n";

enum { OPT_THREADS = 999, OPT_MODEL = 1000, OPT_DATA, OPT_THRESHOLD };

static const struct option options[] = {
    {"threads", required_argument, NULL, OPT_THREADS},
    {"model", required_argument, NULL, OPT_MODEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"threshold", required_argument, NULL, OPT_THRESHOLD},
    {NULL, 0, NULL, 0},
};

/* Predictions and truths gathered over all chunks. */
typedef struct collected {
    size_t n, cap, width;
    double *pred;
    int *label;
    double *value;
    size_t missing;
} collected_t;

static int grow(collected_t *c, size_t extra) {
    if (c->n + extra <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->n + extra)
        cap *= 2;
    double *pred = realloc(c->pred, cap * c->width * sizeof *pred);
    if (!pred) return -1;
    c->pred = pred;
    int *label = realloc(c->label, cap * sizeof *label);
    if (!label) return -1;
    c->label = label;
    double *value = realloc(c->value, cap * sizeof *value);
    if (!value) return -1;
    c->value = value;
    c->cap = cap;
    return 0;
}

static int collect_chunk(const fm_model_t *m, const fm_strdict_t *classes, const fm_frame_t *chunk,
                         const double *pred, size_t row_base, collected_t *c, fm_error_t *err) {
    int tcol = fm_frame_find(chunk, m->target);
    const fm_column_t *target = &chunk->columns[tcol];
    if (grow(c, chunk->nrows)) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < chunk->nrows; i++) {
        if (m->task == FM_TASK_REGRESSION) {
            double v = target->values[i];
            if (isnan(v)) {
                c->missing++;
                continue;
            }
            c->value[c->n] = v;
        } else {
            int32_t code = target->codes[i];
            if (code < 0) {
                c->missing++;
                continue;
            }
            const char *text = fm_strdict_get(&target->dict, code);
            int32_t cls = fm_strdict_find(classes, text, target->dict.lens[code]);
            if (cls < 0)
                return fm_error_set(err, FM_EDATA,
                                    "data row %zu: target '%s' value '%s' is not one of the "
                                    "model's classes",
                                    row_base + i + 1, m->target, text);
            c->label[c->n] = cls;
        }
        memcpy(c->pred + c->n * c->width, pred + i * c->width, c->width * sizeof *pred);
        c->n++;
    }
    return FM_OK;
}

typedef struct chunk_ctx {
    const fm_model_t *m;
    const fm_strdict_t *classes;
    collected_t *c;
} chunk_ctx_t;

static int on_chunk(void *ctx, const fm_frame_t *chunk, const double *pred, size_t base,
                    fm_error_t *err) {
    chunk_ctx_t *x = ctx;
    return collect_chunk(x->m, x->classes, chunk, pred, base, x->c, err);
}

static int evaluate_file(const fm_model_t *m, const char *data, double threshold, cJSON **report,
                         fm_error_t *err) {
    collected_t c = {0};
    c.width = fm_model_output_width(m);
    fm_strdict_t classes = FM_STRDICT_INIT;
    for (size_t k = 0; k < m->nclasses; k++)
        fm_strdict_intern(&classes, m->classes[k], strlen(m->classes[k]));
    fm_column_type_t ttype =
        m->task == FM_TASK_REGRESSION ? FM_COLUMN_NUMERIC : FM_COLUMN_CATEGORICAL;
    fm_column_spec_t target = {m->target, ttype, 1};
    chunk_ctx_t ctx = {m, &classes, &c};
    int rc = fm_model_predict_file(m, data, &target, 1, on_chunk, &ctx, err);
    if (!rc && c.n == 0)
        rc = fm_error_set(err, FM_EDATA, "%s has no rows with a value in target column '%s'", data,
                          m->target);
    if (!rc) {
        switch (m->task) {
        case FM_TASK_BINARY:
            *report = fm_metrics_binary_report(c.pred, c.label, NULL, c.n, threshold);
            break;
        case FM_TASK_MULTICLASS:
            *report = fm_metrics_multiclass_report(c.pred, c.label, NULL, c.n, c.width);
            break;
        case FM_TASK_REGRESSION:
            *report = fm_metrics_regression_report(c.pred, c.value, NULL, c.n);
            break;
        }
        if (!*report)
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        else
            cJSON_AddNumberToObject(*report, "rows_missing_target", (double)c.missing);
    }
    fm_strdict_free(&classes);
    free(c.pred);
    free(c.label);
    free(c.value);
    return rc;
}

int fm_cmd_eval(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    const char *model_path = NULL, *data = NULL;
    double threshold = 0.5;
    int c;
    fm_nn_set_threads(1);
    while ((c = fm_cli_next_option("eval", argc, argv, options)) != -1) {
        switch (c) {
        case OPT_MODEL:
            model_path = optarg;
            break;
        case OPT_DATA:
            data = optarg;
            break;
        case OPT_THREADS:
            if (fm_cli_set_threads("eval", optarg)) return FM_EXIT_USAGE;
            break;
        case OPT_THRESHOLD:
            if (fm_cli_parse_double("eval", "threshold", optarg, 0.0, 1.0, &threshold))
                return FM_EXIT_USAGE;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional("eval", argc, argv)) return FM_EXIT_USAGE;
    if (!model_path || !data)
        return fm_cli_usage_error("eval", "--%s is required", model_path ? "data" : "model");
    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    cJSON *report = NULL;
    int rc = fm_model_load(model_path, &model, &err);
    if (!rc) rc = evaluate_file(model, data, threshold, &report, &err);
    if (!rc) {
        char *text = cJSON_Print(report);
        if (text) puts(text);
        free(text);
    }
    cJSON_Delete(report);
    fm_model_free(model);
    return rc ? fm_cli_fail("eval", &err) : FM_EXIT_OK;
}
