/*
 * `finmaas fairness`: scores a labelled CSV file with a binary model and prints, for each
 * protected attribute, the group fairness metrics of the decision P(positive) >= threshold
 * (src/fairness/fairness.h) as one JSON object on stdout. A protected column need not be a model
 * feature: it is read from the file alongside. Numeric protected columns are banded (--bands, or
 * the age bands <25, 25-34, ..., 65+ by default for a column of more than 10 distinct numbers);
 * other columns group by value. Rows whose
 * target is missing are skipped and counted; rows whose protected value is missing are left out of
 * that attribute and counted.
 */
#include "cli/cli.h"
#include "cli/scoring.h"
#include "core/json.h"
#include "data/data.h"
#include "fairness/fairness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas fairness --model M.fmm --data F.csv --protected COL[,COL...] [options]\n"
    "\n"
    "Scores F.csv with the binary model M.fmm and prints, per protected attribute and group:\n"
    "count, selection rate, TPR, FPR, precision, and against a reference group: demographic\n"
    "parity difference and ratio, disparate impact ratio with the four-fifths flag, equal\n"
    "opportunity, equalized odds and average odds differences (group minus reference), each with\n"
    "a test of the selection rates (Fisher's exact test for small counts, else chi-square).\n"
    "\n"
    "  --model M.fmm          the binary model (required)\n"
    "  --data F.csv           labelled rows with the model's features (required)\n"
    "  --protected COL,...    protected attributes (required; need not be model features)\n"
    "  --target COL           the label column (default: the model's target)\n"
    "  --threshold X          decision: positive when P(positive) >= X (default 0.5)\n"
    "  --reference COL=VALUE  the reference group of COL (default: its largest group);\n"
    "                         a banded column's groups are named like '25-34'\n"
    "  --bands COL=E1,E2,...  band numeric COL at these increasing edges (default for a column\n"
    "                         of more than 10 distinct numbers: 25,35,45,55,65)\n"
    "  --threads N            BLAS threads (default 1)\n";

enum {
    OPT_THREADS = 999,
    OPT_MODEL = 1000,
    OPT_DATA,
    OPT_PROTECTED,
    OPT_TARGET,
    OPT_THRESHOLD,
    OPT_REFERENCE,
    OPT_BANDS
};

static const struct option options[] = {
    {"threads", required_argument, NULL, OPT_THREADS},
    {"model", required_argument, NULL, OPT_MODEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"protected", required_argument, NULL, OPT_PROTECTED},
    {"target", required_argument, NULL, OPT_TARGET},
    {"threshold", required_argument, NULL, OPT_THRESHOLD},
    {"reference", required_argument, NULL, OPT_REFERENCE},
    {"bands", required_argument, NULL, OPT_BANDS},
    {NULL, 0, NULL, 0},
};

#define MAX_SETTINGS FM_FAIRNESS_MAX_ATTRIBUTES

/* What the chunk callback needs: the model, the label column, the decision threshold, and the
 * rows gathered so far. */
typedef struct chunk_ctx {
    const fm_model_t *m;
    const char *target;
    double threshold;
    fm_fairness_rows_t *rows;
} chunk_ctx_t;

/* Labels (0 negative class, 1 positive, -1 missing) and decisions of one chunk, then gathered. */
static int on_chunk(void *ctx, const fm_frame_t *chunk, const double *pred, size_t base,
                    fm_error_t *err) {
    chunk_ctx_t *x = ctx;
    const fm_model_t *m = x->m;
    const fm_column_t *tcol = &chunk->columns[fm_frame_find(chunk, x->target)];
    if (tcol->type != FM_COLUMN_CATEGORICAL)
        return fm_error_set(err, FM_EDATA, "target column '%s' is numeric, not the model's classes",
                            x->target);
    size_t n = chunk->nrows, ncodes = tcol->dict.count;
    int *y = malloc((n ? n : 1) * sizeof *y), *d = malloc((n ? n : 1) * sizeof *d);
    int *label = malloc((ncodes ? ncodes : 1) * sizeof *label);
    int rc = y && d && label ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t k = 0; k < ncodes && !rc; k++) {
        const char *text = fm_strdict_get(&tcol->dict, (int32_t)k);
        label[k] = !strcmp(text, m->classes[1]) ? 1 : !strcmp(text, m->classes[0]) ? 0 : -1;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        int32_t code = tcol->codes[i];
        y[i] = code < 0 ? -1 : label[code];
        d[i] = pred[i] >= x->threshold;
        if (code >= 0 && label[code] < 0)
            rc = fm_error_set(err, FM_EDATA,
                              "data row %zu: target '%s' value '%s' is not one of the model's "
                              "classes ('%s', '%s')",
                              base + i + 1, x->target, fm_strdict_get(&tcol->dict, code),
                              m->classes[0], m->classes[1]);
    }
    if (!rc) rc = fm_fairness_rows_add(x->rows, chunk, NULL, n, y, d, err);
    free(y);
    free(d);
    free(label);
    return rc;
}

static int read_file(const fm_model_t *m, const char *data, const char *target, double threshold,
                     const fm_fairness_attribute_t *attrs, size_t nattrs, fm_fairness_rows_t *rows,
                     fm_error_t *err) {
    fm_column_spec_t extra[MAX_SETTINGS + 1];
    extra[0] = (fm_column_spec_t){target, FM_COLUMN_CATEGORICAL, 1, 0};
    for (size_t k = 0; k < nattrs; k++)
        extra[k + 1] = (fm_column_spec_t){attrs[k].name, FM_COLUMN_CATEGORICAL, 1, 0};
    chunk_ctx_t ctx = {m, target, threshold, rows};
    int rc = fm_model_predict_file(m, data, extra, nattrs + 1, on_chunk, &ctx, err);
    if (!rc && fm_fairness_rows_count(rows) == 0)
        rc = fm_error_set(err, FM_EDATA, "%s has no rows with a value in target column '%s'", data,
                          target);
    return rc;
}

/* Splits "COL=VALUE" and files VALUE under the attribute named COL (field: 0 reference, 1 bands).
 */
static int assign_setting(const char *option, char *setting, fm_fairness_attribute_t *attrs,
                          const char **bands, size_t nattrs, int field) {
    char *eq = strchr(setting, '=');
    if (!eq || eq == setting || !eq[1])
        return fm_cli_usage_error("fairness", "--%s '%s': expected COL=VALUE", option, setting);
    *eq = '\0';
    for (size_t k = 0; k < nattrs; k++) {
        if (strcmp(attrs[k].name, setting) != 0) continue;
        if (field == 0)
            attrs[k].reference = eq + 1;
        else
            bands[k] = eq + 1;
        return 0;
    }
    return fm_cli_usage_error("fairness", "--%s names column '%s', which is not in --protected",
                              option, setting);
}

static int run(const char *model_path, const char *data, char **protected, size_t nprotected,
               const char *target_opt, double threshold, char **references, size_t nreferences,
               char **bands, size_t nbands) {
    fm_fairness_attribute_t attrs[MAX_SETTINGS];
    const char *band_text[MAX_SETTINGS] = {0};
    double *edges[MAX_SETTINGS] = {0};
    memset(attrs, 0, sizeof attrs);
    for (size_t k = 0; k < nprotected; k++) {
        attrs[k].name = protected[k];
        for (size_t j = 0; j < k; j++)
            if (!strcmp(protected[j], protected[k]))
                return fm_cli_usage_error("fairness", "--protected names '%s' twice", protected[k]);
    }
    for (size_t i = 0; i < nreferences; i++)
        if (assign_setting("reference", references[i], attrs, band_text, nprotected, 0))
            return FM_EXIT_USAGE;
    for (size_t i = 0; i < nbands; i++)
        if (assign_setting("bands", bands[i], attrs, band_text, nprotected, 1))
            return FM_EXIT_USAGE;

    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    fm_fairness_rows_t *rows = NULL;
    cJSON *report = NULL, *list = NULL;
    int rc = FM_OK;
    for (size_t k = 0; k < nprotected && !rc; k++)
        if (band_text[k]) {
            rc = fm_fairness_parse_bands(band_text[k], &edges[k], &attrs[k].nedges, &err);
            attrs[k].edges = edges[k];
            if (rc) fm_error_prefix(&err, "--bands %s: ", attrs[k].name);
        }
    if (!rc) rc = fm_model_load(model_path, &model, &err);
    if (!rc && (model->task != FM_TASK_BINARY || model->nclasses != 2))
        rc = fm_error_set(&err, FM_EUNSUPPORTED,
                          "%s is a %s model; fairness needs a binary classifier", model_path,
                          fm_task_name(model->task));
    const char *target = target_opt ? target_opt : model ? model->target : NULL;
    for (size_t k = 0; k < nprotected && !rc; k++)
        if (!strcmp(protected[k], target))
            rc = fm_error_set(&err, FM_EINVAL, "protected column '%s' is the target column",
                              protected[k]);
    if (!rc) rc = fm_fairness_rows_new(attrs, nprotected, &rows, &err);
    if (!rc) rc = read_file(model, data, target, threshold, attrs, nprotected, rows, &err);
    if (!rc) rc = fm_fairness_rows_report(rows, &list, &err);
    if (!rc && !(report = cJSON_CreateObject()))
        rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
    if (!rc) {
        cJSON_AddStringToObject(report, "target", target);
        cJSON_AddStringToObject(report, "positive", model->classes[1]);
        cJSON_AddNumberToObject(report, "threshold", threshold);
        cJSON_AddNumberToObject(report, "rows", (double)fm_fairness_rows_count(rows));
        cJSON_AddNumberToObject(report, "rows_missing_target",
                                (double)fm_fairness_rows_missing_target(rows));
        cJSON_AddItemToObject(report, "attributes", list);
        list = NULL;
        char *text = cJSON_Print(report);
        if (text) puts(text);
        free(text);
    }
    cJSON_Delete(list);
    cJSON_Delete(report);
    fm_fairness_rows_free(rows);
    for (size_t k = 0; k < nprotected; k++)
        free(edges[k]);
    fm_model_free(model);
    return rc ? fm_cli_fail("fairness", &err) : FM_EXIT_OK;
}

int fm_cmd_fairness(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    const char *model_path = NULL, *data = NULL, *target = NULL;
    char **protected = NULL;
    size_t nprotected = 0, nreferences = 0, nbands = 0;
    char *references[MAX_SETTINGS], *bands[MAX_SETTINGS];
    double threshold = 0.5;
    int c, rc = FM_EXIT_OK;
    fm_nn_set_threads(1);
    while (rc == FM_EXIT_OK && (c = fm_cli_next_option("fairness", argc, argv, options)) != -1) {
        switch (c) {
        case OPT_MODEL:
            model_path = optarg;
            break;
        case OPT_DATA:
            data = optarg;
            break;
        case OPT_TARGET:
            target = optarg;
            break;
        case OPT_PROTECTED:
            fm_cli_free_list(protected);
            protected = fm_cli_split_list(optarg, &nprotected);
            if (!protected) rc = fm_cli_usage_error("fairness", "out of memory");
            break;
        case OPT_THREADS:
            if (fm_cli_set_threads("fairness", optarg)) rc = FM_EXIT_USAGE;
            break;
        case OPT_THRESHOLD:
            if (fm_cli_parse_double("fairness", "threshold", optarg, 0.0, 1.0, &threshold))
                rc = FM_EXIT_USAGE;
            break;
        case OPT_REFERENCE:
        case OPT_BANDS: {
            size_t *count = c == OPT_REFERENCE ? &nreferences : &nbands;
            if (*count == MAX_SETTINGS) {
                rc = fm_cli_usage_error("fairness", "too many --%s options",
                                        c == OPT_REFERENCE ? "reference" : "bands");
                break;
            }
            (c == OPT_REFERENCE ? references : bands)[(*count)++] = optarg;
            break;
        }
        default:
            rc = FM_EXIT_USAGE;
        }
    }
    if (rc == FM_EXIT_OK && fm_cli_no_positional("fairness", argc, argv)) rc = FM_EXIT_USAGE;
    if (rc == FM_EXIT_OK && (!model_path || !data || !protected))
        rc = fm_cli_usage_error("fairness", "--%s is required",
                                !model_path ? "model"
                                : !data     ? "data"
                                            : "protected");
    if (rc == FM_EXIT_OK && nprotected == 0)
        rc = fm_cli_usage_error("fairness", "--protected names no column");
    if (rc == FM_EXIT_OK && nprotected > MAX_SETTINGS)
        rc = fm_cli_usage_error("fairness", "--protected names more than %d columns", MAX_SETTINGS);
    if (rc == FM_EXIT_OK)
        rc = run(model_path, data, protected, nprotected, target, threshold, references,
                 nreferences, bands, nbands);
    fm_cli_free_list(protected);
    return rc;
}
