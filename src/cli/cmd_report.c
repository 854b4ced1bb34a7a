/*
 * `finmaas report`: scores a labelled CSV file with a model and writes the validation report
 * (src/report): one self-contained HTML page with the model card, the metrics and curves on the
 * file, permutation importance, partial dependence and mean absolute attribution on its rows, and
 * for binary models the fairness of the decisions by protected attribute (--protected, else the
 * attributes stored in the model at training). The file is read once, whole, because importance
 * and attributions need its rows together; rows whose target is missing are left out and counted.
 * The page is written atomically.
 */
#include "cli/cli.h"
#include "cli/scoring.h"
#include "core/fs.h"
#include "explain/explain.h"
#include "fairness/fairness.h"
#include "importance/importance.h"
#include "report/report.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas report M.fmm --data F.csv --out R.html [options]\n"
    "\n"
    "Scores F.csv, which must hold the model's feature columns and its target column, and writes\n"
    "the validation report R.html: one self-contained page (it opens offline) with the model\n"
    "card, the metrics and curves on F.csv (ROC, KS, calibration, score distribution; for\n"
    "regression predicted against actual and residuals; for multiclass the confusion matrix),\n"
    "feature importance and partial dependence, and the fairness of a binary model's decisions.\n"
    "\n"
    "  M.fmm, --model M.fmm   the model (required)\n"
    "  --data F.csv           labelled rows (required)\n"
    "  --out R.html           the page to write (required)\n"
    "  --name TEXT            the model's name in the title (default: the model file's name)\n"
    "  --protected COL,...    binary models: fairness by these columns (default: the protected\n"
    "                         attributes stored in the model at training, if any)\n"
    "  --threshold X          binary: predicted positive when P(positive) >= X (default: the\n"
    "                         threshold stored with the model's fairness, else 0.5)\n"
    "  --no-importance        leave out permutation importance, partial dependence and\n"
    "                         attributions (much faster on large files)\n"
    "  --threads N            BLAS threads (default 1)\n";

enum {
    OPT_THREADS = 999,
    OPT_MODEL = 1000,
    OPT_DATA,
    OPT_OUT,
    OPT_NAME,
    OPT_PROTECTED,
    OPT_THRESHOLD,
    OPT_NO_IMPORTANCE
};

static const struct option options[] = {
    {"threads", required_argument, NULL, OPT_THREADS},
    {"model", required_argument, NULL, OPT_MODEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"out", required_argument, NULL, OPT_OUT},
    {"name", required_argument, NULL, OPT_NAME},
    {"protected", required_argument, NULL, OPT_PROTECTED},
    {"threshold", required_argument, NULL, OPT_THRESHOLD},
    {"no-importance", no_argument, NULL, OPT_NO_IMPORTANCE},
    {NULL, 0, NULL, 0},
};

typedef struct settings {
    const char *model_path, *data, *out, *name;
    char **protected; /* fm_cli_split_list list, or NULL */
    size_t nprotected;
    double threshold; /* NaN: not given */
    int no_importance;
} settings_t;

/* The scored file: the frame, its predictions and the rows with a target. */
typedef struct scored {
    fm_frame_t *frame;
    double *pred; /* frame->nrows * width */
    size_t *kept; /* rows with a target */
    size_t nkept, missing;
    double *kept_pred; /* nkept * width, the report's layout */
    int *label;        /* classifiers: class per kept row */
    double *y;         /* regression: true value per kept row */
    int *label_all;    /* binary: 0/1 per frame row, -1 without target (fairness) */
} scored_t;

static void scored_free(scored_t *s) {
    fm_frame_free(s->frame);
    free(s->pred);
    free(s->kept);
    free(s->kept_pred);
    free(s->label);
    free(s->y);
    free(s->label_all);
}

/* Reads the whole file with the model's columns, the target and the protected columns, predicts
 * every row and keeps those with a target. */
static int score_file(const fm_model_t *m, const char *path, const fm_fairness_attribute_t *attrs,
                      size_t nattrs, scored_t *s, fm_error_t *err) {
    fm_column_spec_t extra[FM_FAIRNESS_MAX_ATTRIBUTES + 1];
    int regression = m->task == FM_TASK_REGRESSION;
    extra[0] =
        (fm_column_spec_t){m->target, regression ? FM_COLUMN_NUMERIC : FM_COLUMN_CATEGORICAL, 1, 0};
    for (size_t k = 0; k < nattrs; k++)
        extra[k + 1] = (fm_column_spec_t){attrs[k].name, FM_COLUMN_CATEGORICAL, 1, 0};
    int rc = fm_scoring_read_all(m, path, extra, nattrs + 1, &s->frame, err);
    if (rc) return rc;

    const fm_frame_t *f = s->frame;
    size_t n = f->nrows, width = fm_model_output_width(m);
    s->pred = malloc(n * width * sizeof *s->pred);
    s->kept = malloc(n * sizeof *s->kept);
    s->kept_pred = malloc(n * width * sizeof *s->kept_pred);
    s->label = malloc(n * sizeof *s->label);
    s->y = malloc(n * sizeof *s->y);
    s->label_all = malloc(n * sizeof *s->label_all);
    if (!s->pred || !s->kept || !s->kept_pred || !s->label || !s->y || !s->label_all)
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    rc = fm_model_predict_frame(m, f, s->pred, err);
    if (rc) return rc;

    const fm_column_t *target = &f->columns[fm_frame_find(f, m->target)];
    if (!regression && target->type != FM_COLUMN_CATEGORICAL)
        return fm_error_set(err, FM_EDATA, "target column '%s' is numeric, not the model's classes",
                            m->target);
    /* The frame's target codes mapped to class indexes once (-1: not a class). */
    size_t ncodes = regression ? 0 : target->dict.count;
    int *class_of = malloc((ncodes ? ncodes : 1) * sizeof *class_of);
    if (!class_of) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; c < ncodes; c++) {
        class_of[c] = -1;
        for (size_t k = 0; k < m->nclasses; k++)
            if (!strcmp(fm_strdict_get(&target->dict, (int32_t)c), m->classes[k]))
                class_of[c] = (int)k;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        s->label_all[i] = -1;
        if (regression) {
            if (isnan(target->values[i])) {
                s->missing++;
                continue;
            }
            s->y[s->nkept] = target->values[i];
        } else {
            int32_t code = target->codes[i];
            if (code < 0) {
                s->missing++;
                continue;
            }
            if (class_of[code] < 0) {
                rc = fm_error_set(err, FM_EDATA,
                                  "data row %zu: target '%s' value '%s' is not one of the model's "
                                  "classes",
                                  i + 1, m->target, fm_strdict_get(&target->dict, code));
                break;
            }
            s->label[s->nkept] = class_of[code];
            s->label_all[i] = class_of[code];
        }
        memcpy(s->kept_pred + s->nkept * width, s->pred + i * width, width * sizeof *s->pred);
        s->kept[s->nkept++] = i;
    }
    free(class_of);
    if (!rc && s->nkept == 0)
        rc = fm_error_set(err, FM_EDATA, "%s has no rows with a value in target column '%s'", path,
                          m->target);
    return rc;
}

/* The fairness object `finmaas fairness` prints, for the binary decisions on the scored file. */
static int evaluate_fairness(const fm_model_t *m, const scored_t *s,
                             const fm_fairness_attribute_t *attrs, size_t nattrs, double threshold,
                             cJSON **out, fm_error_t *err) {
    size_t n = s->frame->nrows;
    int *d = malloc(n * sizeof *d);
    fm_fairness_rows_t *rows = NULL;
    cJSON *list = NULL;
    int rc = d ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++)
        d[i] = s->pred[i] >= threshold;
    if (!rc) rc = fm_fairness_rows_new(attrs, nattrs, &rows, err);
    if (!rc) rc = fm_fairness_rows_add(rows, s->frame, NULL, n, s->label_all, d, err);
    if (!rc) rc = fm_fairness_rows_report(rows, &list, err);
    if (!rc && !(*out = cJSON_CreateObject())) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) {
        cJSON_AddStringToObject(*out, "target", m->target);
        cJSON_AddStringToObject(*out, "positive", m->classes[1]);
        cJSON_AddNumberToObject(*out, "threshold", threshold);
        cJSON_AddNumberToObject(*out, "rows", (double)fm_fairness_rows_count(rows));
        cJSON_AddNumberToObject(*out, "rows_missing_target",
                                (double)fm_fairness_rows_missing_target(rows));
        if (!cJSON_AddItemToObject(*out, "attributes", list))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        else
            list = NULL;
    }
    cJSON_Delete(list);
    fm_fairness_rows_free(rows);
    free(d);
    return rc ? fm_error_prefix(err, "fairness: ") : FM_OK;
}

/* The file name of a path, for the default title. */
static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int run(const settings_t *o) {
    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    scored_t s = {0};
    cJSON *importance = NULL, *attribution = NULL, *fairness = NULL;
    fm_buf_t page = FM_BUF_INIT;
    fm_fairness_attribute_t attrs[FM_FAIRNESS_MAX_ATTRIBUTES];
    size_t nattrs = 0;
    double *edges = NULL;
    double threshold = o->threshold;

    int rc = fm_model_load(o->model_path, &model, &err);
    /* The fairness recorded at training: its attributes and threshold are the defaults. */
    const cJSON *stored = model ? cJSON_GetObjectItemCaseSensitive(model->info, "fairness") : NULL;
    if (!rc && isnan(threshold)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(stored, "threshold");
        threshold = cJSON_IsNumber(t) ? t->valuedouble : 0.5;
    }
    if (!rc && o->protected) {
        if (o->nprotected > FM_FAIRNESS_MAX_ATTRIBUTES)
            rc = fm_error_set(&err, FM_EINVAL, "--protected names more than %d columns",
                              FM_FAIRNESS_MAX_ATTRIBUTES);
        for (size_t k = 0; k < o->nprotected && !rc; k++)
            attrs[nattrs++] = (fm_fairness_attribute_t){o->protected[k], NULL, NULL, 0, 0};
    } else if (!rc && cJSON_GetObjectItemCaseSensitive(stored, "protected")) {
        rc = fm_fairness_attributes_from_json(cJSON_GetObjectItemCaseSensitive(stored, "protected"),
                                              attrs, FM_FAIRNESS_MAX_ATTRIBUTES, &nattrs, &edges,
                                              &err);
    }
    if (!rc && nattrs > 0 && model->task != FM_TASK_BINARY) {
        if (o->protected)
            rc = fm_error_set(&err, FM_EUNSUPPORTED,
                              "%s is a %s model; --protected needs a binary classifier",
                              o->model_path, fm_task_name(model->task));
        nattrs = 0; /* attributes stored with a model of another task: nothing to measure */
    }
    for (size_t k = 0; k < nattrs && !rc; k++)
        if (!strcmp(attrs[k].name, model->target))
            rc = fm_error_set(&err, FM_EINVAL, "protected column '%s' is the target column",
                              attrs[k].name);
    if (!rc) rc = score_file(model, o->data, attrs, nattrs, &s, &err);
    if (!rc && !o->no_importance) {
        fm_importance_options_t io;
        fm_importance_options_defaults(&io);
        rc = fm_importance_compute(model, s.frame, s.kept, s.nkept, &io, &importance, &err);
        if (rc) fm_error_prefix(&err, "importance: ");
        if (!rc)
            rc = fm_explain_mean_abs_frame(model, s.frame, s.kept, s.nkept, &attribution, &err);
    }
    if (!rc && nattrs > 0)
        rc = evaluate_fairness(model, &s, attrs, nattrs, threshold, &fairness, &err);
    /* A reweighed model shows its fairness before and after mitigation, both measured on the
     * same rows at training, instead of this file's (the model without reweighing cannot score
     * it). */
    cJSON *before = NULL, *after = NULL;
    if (!rc && nattrs > 0 && !o->protected) fm_report_stored_mitigation(model, &before, &after);
    if (!rc) {
        fm_report_input_t in = {
            .model = model,
            .model_name = o->name ? o->name : base_name(o->model_path),
            .version = -1,
            .data_name = o->data,
            .n = s.nkept,
            .pred = s.kept_pred,
            .label = model->task == FM_TASK_REGRESSION ? NULL : s.label,
            .y = model->task == FM_TASK_REGRESSION ? s.y : NULL,
            .importance = importance,
            .mean_abs_attribution = attribution,
            .fairness = before ? before : fairness,
            .fairness_mitigated = after,
        };
        rc = fm_report_html_at(&in, threshold, &page, &err);
    }
    if (!rc) rc = fm_file_write_atomic(o->out, page.data, page.len, &err);
    if (!rc)
        fprintf(stderr, "finmaas report: wrote %s (%zu rows%s)\n", o->out, s.nkept,
                s.missing ? ", some without a target left out" : "");
    fm_buf_free(&page);
    cJSON_Delete(importance);
    cJSON_Delete(attribution);
    cJSON_Delete(fairness);
    cJSON_Delete(before);
    cJSON_Delete(after);
    free(edges);
    scored_free(&s);
    fm_model_free(model);
    return rc ? fm_cli_fail("report", &err) : FM_EXIT_OK;
}

int fm_cmd_report(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    settings_t o = {0};
    o.threshold = NAN;
    int c, rc = FM_EXIT_OK;
    fm_nn_set_threads(1);
    while (rc == FM_EXIT_OK && (c = fm_cli_next_option("report", argc, argv, options)) != -1) {
        switch (c) {
        case OPT_MODEL:
            o.model_path = optarg;
            break;
        case OPT_DATA:
            o.data = optarg;
            break;
        case OPT_OUT:
            o.out = optarg;
            break;
        case OPT_NAME:
            o.name = optarg;
            break;
        case OPT_PROTECTED:
            fm_cli_free_list(o.protected);
            o.protected = fm_cli_split_list(optarg, &o.nprotected);
            if (!o.protected)
                rc = fm_cli_usage_error("report", "out of memory");
            else if (o.nprotected == 0)
                rc = fm_cli_usage_error("report", "--protected names no column");
            break;
        case OPT_THRESHOLD:
            if (fm_cli_parse_double("report", "threshold", optarg, 0.0, 1.0, &o.threshold))
                rc = FM_EXIT_USAGE;
            break;
        case OPT_NO_IMPORTANCE:
            o.no_importance = 1;
            break;
        case OPT_THREADS:
            if (fm_cli_set_threads("report", optarg)) rc = FM_EXIT_USAGE;
            break;
        default:
            rc = FM_EXIT_USAGE;
        }
    }
    /* The model may be given positionally, before or after the options. */
    if (rc == FM_EXIT_OK && optind < argc) {
        if (o.model_path || optind + 1 < argc)
            rc = fm_cli_usage_error("report", "unexpected argument '%s'",
                                    fm_cli_quotable(argv[optind]) ? argv[optind] : "...");
        else
            o.model_path = argv[optind];
    }
    if (rc == FM_EXIT_OK && (!o.model_path || !o.data || !o.out))
        rc = fm_cli_usage_error("report", "%s is required",
                                !o.model_path ? "the model (M.fmm or --model)"
                                : !o.data     ? "--data"
                                              : "--out");
    if (rc == FM_EXIT_OK) rc = run(&o);
    fm_cli_free_list(o.protected);
    return rc;
}
