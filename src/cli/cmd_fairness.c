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

#define MAX_SETTINGS 64

/* One protected attribute: its settings and the group of each kept row (index into values). */
typedef struct attribute {
    const char *name;      /* borrowed from the --protected list */
    const char *reference; /* borrowed from argv, or NULL */
    const char *bands;     /* borrowed from argv, or NULL */
    fm_strdict_t values;   /* distinct texts of the column */
    int32_t *codes;        /* per kept row: id in values, -1 missing */
} attribute_t;

typedef struct collected {
    size_t n, cap, missing_target;
    int *y, *d;
    attribute_t *attrs;
    size_t nattrs;
} collected_t;

static int grow(collected_t *c, size_t extra) {
    if (c->n + extra <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->n + extra)
        cap *= 2;
    int *y = realloc(c->y, cap * sizeof *y);
    if (!y) return -1;
    c->y = y;
    int *d = realloc(c->d, cap * sizeof *d);
    if (!d) return -1;
    c->d = d;
    for (size_t k = 0; k < c->nattrs; k++) {
        int32_t *codes = realloc(c->attrs[k].codes, cap * sizeof *codes);
        if (!codes) return -1;
        c->attrs[k].codes = codes;
    }
    c->cap = cap;
    return 0;
}

/* The id of row i's protected value in a->values, or -1 when missing (FM_ENOMEM < -1). */
static int32_t value_id(attribute_t *a, const fm_column_t *col, size_t i) {
    if (col->type == FM_COLUMN_NUMERIC) {
        double v = col->values[i];
        if (isnan(v)) return -1;
        char text[32];
        int len = snprintf(text, sizeof text, "%.17g", v);
        return fm_strdict_intern(&a->values, text, (size_t)len);
    }
    int32_t code = col->codes[i];
    if (code < 0) return -1;
    return fm_strdict_intern(&a->values, fm_strdict_get(&col->dict, code), col->dict.lens[code]);
}

static int collect_chunk(const fm_model_t *m, const char *target, double threshold,
                         const fm_frame_t *chunk, const double *pred, size_t row_base,
                         collected_t *c, fm_error_t *err) {
    const fm_column_t *tcol = &chunk->columns[fm_frame_find(chunk, target)];
    if (tcol->type != FM_COLUMN_CATEGORICAL)
        return fm_error_set(err, FM_EDATA, "target column '%s' is numeric, not the model's classes",
                            target);
    if (grow(c, chunk->nrows)) return fm_error_set(err, FM_ENOMEM, "out of memory");
    const fm_column_t *pcols[MAX_SETTINGS];
    for (size_t k = 0; k < c->nattrs; k++)
        pcols[k] = &chunk->columns[fm_frame_find(chunk, c->attrs[k].name)];
    /* The target's per-chunk codes mapped to 0 (negative class), 1 (positive), -1 (neither). */
    size_t ncodes = tcol->dict.count;
    int *label = malloc((ncodes ? ncodes : 1) * sizeof *label);
    if (!label) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t k = 0; k < ncodes; k++) {
        const char *text = fm_strdict_get(&tcol->dict, (int32_t)k);
        label[k] = !strcmp(text, m->classes[1]) ? 1 : !strcmp(text, m->classes[0]) ? 0 : -1;
    }
    int rc = FM_OK;
    for (size_t i = 0; i < chunk->nrows && !rc; i++) {
        int32_t code = tcol->codes[i];
        if (code < 0) {
            c->missing_target++;
            continue;
        }
        if (label[code] < 0) {
            rc = fm_error_set(err, FM_EDATA,
                              "data row %zu: target '%s' value '%s' is not one of the model's "
                              "classes ('%s', '%s')",
                              row_base + i + 1, target, fm_strdict_get(&tcol->dict, code),
                              m->classes[0], m->classes[1]);
            break;
        }
        c->y[c->n] = label[code];
        c->d[c->n] = pred[i] >= threshold;
        for (size_t k = 0; k < c->nattrs && !rc; k++) {
            int32_t id = value_id(&c->attrs[k], pcols[k], i);
            if (id < -1) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
            c->attrs[k].codes[c->n] = id;
        }
        c->n++;
    }
    free(label);
    return rc;
}

typedef struct chunk_ctx {
    const fm_model_t *m;
    const char *target;
    double threshold;
    collected_t *c;
} chunk_ctx_t;

static int on_chunk(void *ctx, const fm_frame_t *chunk, const double *pred, size_t base,
                    fm_error_t *err) {
    chunk_ctx_t *x = ctx;
    return collect_chunk(x->m, x->target, x->threshold, chunk, pred, base, x->c, err);
}

static int read_file(const fm_model_t *m, const char *data, const char *target, double threshold,
                     collected_t *c, fm_error_t *err) {
    fm_column_spec_t extra[MAX_SETTINGS + 1];
    extra[0] = (fm_column_spec_t){target, FM_COLUMN_CATEGORICAL, 1, 0};
    for (size_t k = 0; k < c->nattrs; k++)
        extra[k + 1] = (fm_column_spec_t){c->attrs[k].name, FM_COLUMN_CATEGORICAL, 1, 0};
    chunk_ctx_t ctx = {m, target, threshold, c};
    int rc = fm_scoring_each(m, data, extra, c->nattrs + 1, on_chunk, &ctx, err);
    if (!rc && c->n == 0)
        rc = fm_error_set(err, FM_EDATA, "%s has no rows with a value in target column '%s'", data,
                          target);
    return rc;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A numeric column with more distinct values than this is banded even without --bands. */
#define MAX_UNBANDED_NUMBERS 10

/* 1 when every distinct value of a parses as a number. */
static int all_numbers(const attribute_t *a) {
    for (size_t v = 0; v < a->values.count; v++) {
        double x;
        if (fm_value_parse_number(a->values.strings[v], a->values.lens[v], &x) != 0) return 0;
    }
    return a->values.count > 0;
}

/*
 * The groups of attribute a: names[*ngroups] (new strings, caller frees each and the array) and
 * the row codes remapped in place to indexes into names. Bands (when given, or when every value
 * is a number and there are more than MAX_UNBANDED_NUMBERS of them) in band order; values in byte
 * order. *edges_out (new, may be NULL) holds the edges used.
 */
static int make_groups(attribute_t *a, size_t nrows, char ***names_out, size_t *ngroups,
                       double **edges_out, size_t *nedges_out, fm_error_t *err) {
    *names_out = NULL;
    *edges_out = NULL;
    *nedges_out = 0;
    size_t nvalues = a->values.count;
    int32_t *map = malloc((nvalues ? nvalues : 1) * sizeof *map);
    if (!map) return fm_error_set(err, FM_ENOMEM, "out of memory");
    char **names = NULL;
    size_t n = 0;
    int rc = FM_OK;
    int banded = a->bands || (a->values.count > MAX_UNBANDED_NUMBERS && all_numbers(a));
    if (banded) {
        double *edges = NULL;
        size_t nedges = 0;
        if (a->bands) {
            rc = fm_fairness_parse_bands(a->bands, &edges, &nedges, err);
        } else {
            static const double age[] = FM_FAIRNESS_AGE_BANDS;
            edges = malloc(sizeof age);
            if (edges) memcpy(edges, age, sizeof age);
            nedges = FM_FAIRNESS_AGE_NBANDS;
            if (!edges) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        }
        for (size_t v = 0; v < nvalues && !rc; v++) {
            double x;
            if (fm_value_parse_number(a->values.strings[v], a->values.lens[v], &x) != 0)
                rc = fm_error_set(err, FM_EDATA,
                                  "protected column '%s' value '%s' is not a number, so it cannot "
                                  "be banded",
                                  a->name, a->values.strings[v]);
            else
                map[v] = (int32_t)fm_fairness_band(x, edges, nedges);
        }
        n = nedges + 1;
        names = rc ? NULL : calloc(n, sizeof *names);
        if (!rc && !names) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t b = 0; b < n && !rc; b++) {
            char label[96];
            fm_fairness_band_label(edges, nedges, b, label, sizeof label);
            if (!(names[b] = strdup(label))) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        }
        *edges_out = edges;
        *nedges_out = nedges;
    } else {
        n = nvalues;
        names = calloc(n ? n : 1, sizeof *names);
        if (!names) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t v = 0; v < n && !rc; v++)
            if (!(names[v] = strdup(a->values.strings[v])))
                rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        if (!rc) {
            qsort(names, n, sizeof *names, compare_names);
            for (size_t v = 0; v < n; v++) {
                int32_t id = fm_strdict_find(&a->values, names[v], strlen(names[v]));
                map[id] = (int32_t)v;
            }
        }
    }
    if (!rc)
        for (size_t i = 0; i < nrows; i++)
            if (a->codes[i] >= 0) a->codes[i] = map[a->codes[i]];
    free(map);
    *names_out = names;
    *ngroups = names ? n : 0;
    return rc;
}

static void free_names(char **names, size_t n) {
    if (!names) return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int attribute_report(attribute_t *a, const collected_t *c, cJSON *out, fm_error_t *err) {
    char **names = NULL;
    size_t ngroups = 0, nedges = 0;
    double *edges = NULL;
    fm_fairness_t f = {0};
    int rc = make_groups(a, c->n, &names, &ngroups, &edges, &nedges, err);
    long reference = -1;
    if (!rc && a->reference) {
        for (size_t g = 0; g < ngroups; g++)
            if (!strcmp(names[g], a->reference)) reference = (long)g;
        if (reference < 0)
            rc = fm_error_set(err, FM_EDATA, "--reference %s=%s: no such group in column '%s'",
                              a->name, a->reference, a->name);
    }
    if (!rc) {
        rc = fm_fairness_compute(c->y, c->d, a->codes, c->n, (const char *const *)names, ngroups,
                                 reference, &f, err);
        if (rc) fm_error_prefix(err, "protected column '%s': ", a->name);
    }
    if (!rc) {
        /* The attribute's name and bands first, then the metrics, for a reader of the JSON. */
        cJSON *metrics = fm_fairness_to_json(&f), *item = cJSON_CreateObject();
        if (!metrics || !item) {
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
            cJSON_Delete(item);
        } else {
            cJSON_AddStringToObject(item, "attribute", a->name);
            cJSON_AddItemToObject(item, "bands",
                                  edges ? fm_json_double_array(edges, nedges) : cJSON_CreateNull());
            while (metrics->child) {
                cJSON *child = cJSON_DetachItemViaPointer(metrics, metrics->child);
                cJSON_AddItemToObject(item, child->string, child);
            }
            cJSON_AddItemToArray(out, item);
        }
        cJSON_Delete(metrics);
    }
    fm_fairness_deinit(&f);
    free_names(names, ngroups);
    free(edges);
    return rc;
}

/* Splits "COL=VALUE" and files VALUE under the attribute named COL (field: 0 reference, 1 bands).
 */
static int assign_setting(const char *option, char *setting, attribute_t *attrs, size_t nattrs,
                          int field) {
    char *eq = strchr(setting, '=');
    if (!eq || eq == setting || !eq[1])
        return fm_cli_usage_error("fairness", "--%s '%s': expected COL=VALUE", option, setting);
    *eq = '\0';
    for (size_t k = 0; k < nattrs; k++) {
        if (strcmp(attrs[k].name, setting) != 0) continue;
        if (field == 0)
            attrs[k].reference = eq + 1;
        else
            attrs[k].bands = eq + 1;
        return 0;
    }
    return fm_cli_usage_error("fairness", "--%s names column '%s', which is not in --protected",
                              option, setting);
}

static int run(const char *model_path, const char *data, char **protected, size_t nprotected,
               const char *target_opt, double threshold, char **references, size_t nreferences,
               char **bands, size_t nbands) {
    collected_t c = {0};
    attribute_t attrs[MAX_SETTINGS];
    memset(attrs, 0, sizeof attrs);
    c.attrs = attrs;
    c.nattrs = nprotected;
    for (size_t k = 0; k < nprotected; k++) {
        attrs[k].name = protected[k];
        for (size_t j = 0; j < k; j++)
            if (!strcmp(protected[j], protected[k]))
                return fm_cli_usage_error("fairness", "--protected names '%s' twice", protected[k]);
    }
    for (size_t i = 0; i < nreferences; i++)
        if (assign_setting("reference", references[i], attrs, nprotected, 0)) return FM_EXIT_USAGE;
    for (size_t i = 0; i < nbands; i++)
        if (assign_setting("bands", bands[i], attrs, nprotected, 1)) return FM_EXIT_USAGE;

    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    cJSON *report = NULL;
    int rc = fm_model_load(model_path, &model, &err);
    if (!rc && (model->task != FM_TASK_BINARY || model->nclasses != 2))
        rc = fm_error_set(&err, FM_EUNSUPPORTED,
                          "%s is a %s model; fairness needs a binary classifier", model_path,
                          fm_task_name(model->task));
    const char *target = target_opt ? target_opt : model ? model->target : NULL;
    for (size_t k = 0; k < nprotected && !rc; k++)
        if (!strcmp(protected[k], target))
            rc = fm_error_set(&err, FM_EINVAL, "protected column '%s' is the target column",
                              protected[k]);
    if (!rc) rc = read_file(model, data, target, threshold, &c, &err);
    if (!rc) {
        report = cJSON_CreateObject();
        if (!report) rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
    }
    if (!rc) {
        cJSON_AddStringToObject(report, "target", target);
        cJSON_AddStringToObject(report, "positive", model->classes[1]);
        cJSON_AddNumberToObject(report, "threshold", threshold);
        cJSON_AddNumberToObject(report, "rows", (double)c.n);
        cJSON_AddNumberToObject(report, "rows_missing_target", (double)c.missing_target);
        cJSON *list = cJSON_AddArrayToObject(report, "attributes");
        if (!list) rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
        for (size_t k = 0; k < nprotected && !rc; k++)
            rc = attribute_report(&attrs[k], &c, list, &err);
    }
    if (!rc) {
        char *text = cJSON_Print(report);
        if (text) puts(text);
        free(text);
    }
    cJSON_Delete(report);
    for (size_t k = 0; k < nprotected; k++) {
        fm_strdict_free(&attrs[k].values);
        free(attrs[k].codes);
    }
    free(c.y);
    free(c.d);
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
