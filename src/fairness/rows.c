/*
 * Protected attributes read from data (fairness.h, fm_fairness_rows_*): gathering each row's
 * label, decision and protected values chunk by chunk, turning each attribute's values into
 * groups (bands of a numeric attribute, or its distinct values in byte order), and measuring them
 * with fm_fairness_compute. The command line, training and the server all evaluate fairness
 * through here, so a model's stored metrics and a later evaluation group rows the same way.
 */
#include "fairness/fairness.h"
#include "core/json.h"
#include "core/strdict.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One attribute's settings (owned copies) and per gathered row the id of its value. */
typedef struct attribute {
    char *name;
    char *reference;
    double *edges; /* owned, or NULL */
    size_t nedges;
    int by_value;
    fm_strdict_t values; /* distinct texts */
    int32_t *codes;      /* per row: id in values, -1 missing */
} attribute_t;

struct fm_fairness_rows {
    size_t n, cap, missing_target;
    int *y, *d;
    attribute_t *attrs;
    size_t nattrs;
};

/* The groups of one attribute: names and the map from value id to group. */
typedef struct grouping {
    char **names;
    size_t ngroups;
    int32_t *map;  /* value id -> group */
    double *edges; /* the edges used (owned), or NULL when grouped by value */
    size_t nedges;
} grouping_t;

static void grouping_free(grouping_t *g) {
    for (size_t i = 0; g->names && i < g->ngroups; i++)
        free(g->names[i]);
    free(g->names);
    free(g->map);
    free(g->edges);
    memset(g, 0, sizeof *g);
}

void fm_fairness_rows_free(fm_fairness_rows_t *c) {
    if (!c) return;
    for (size_t k = 0; k < c->nattrs; k++) {
        attribute_t *a = &c->attrs[k];
        free(a->name);
        free(a->reference);
        free(a->edges);
        fm_strdict_free(&a->values);
        free(a->codes);
    }
    free(c->attrs);
    free(c->y);
    free(c->d);
    free(c);
}

int fm_fairness_rows_new(const fm_fairness_attribute_t *attrs, size_t nattrs,
                         fm_fairness_rows_t **out, fm_error_t *err) {
    *out = NULL;
    if (nattrs == 0 || nattrs > FM_FAIRNESS_MAX_ATTRIBUTES)
        return fm_error_set(err, FM_EINVAL, "between 1 and %d protected attributes are needed",
                            FM_FAIRNESS_MAX_ATTRIBUTES);
    for (size_t k = 0; k < nattrs; k++) {
        if (!attrs[k].name || !attrs[k].name[0])
            return fm_error_set(err, FM_EINVAL, "a protected attribute has no name");
        for (size_t j = 0; j < k; j++)
            if (!strcmp(attrs[j].name, attrs[k].name))
                return fm_error_set(err, FM_EINVAL, "protected attribute '%s' is named twice",
                                    attrs[k].name);
        for (size_t e = 0; attrs[k].edges && e < attrs[k].nedges; e++)
            if (!isfinite(attrs[k].edges[e]) || (e && attrs[k].edges[e] <= attrs[k].edges[e - 1]))
                return fm_error_set(err, FM_EINVAL,
                                    "protected attribute '%s': band edges must be finite and "
                                    "strictly increasing",
                                    attrs[k].name);
    }
    fm_fairness_rows_t *c = calloc(1, sizeof *c);
    if (c) c->attrs = calloc(nattrs, sizeof *c->attrs);
    if (!c || !c->attrs) {
        free(c);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    c->nattrs = nattrs;
    int ok = 1;
    for (size_t k = 0; k < nattrs && ok; k++) {
        attribute_t *a = &c->attrs[k];
        const fm_fairness_attribute_t *s = &attrs[k];
        a->by_value = s->by_value;
        ok = (a->name = strdup(s->name)) != NULL;
        if (ok && s->reference) ok = (a->reference = strdup(s->reference)) != NULL;
        if (ok && s->edges && s->nedges) {
            ok = (a->edges = malloc(s->nedges * sizeof *a->edges)) != NULL;
            if (ok) memcpy(a->edges, s->edges, s->nedges * sizeof *a->edges);
            a->nedges = s->nedges;
        }
    }
    if (!ok) {
        fm_fairness_rows_free(c);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    *out = c;
    return FM_OK;
}

static int grow(fm_fairness_rows_t *c, size_t extra) {
    if (c->n + extra <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 1024;
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
        /* The shortest text that reads back as v, so that 35 is "35", not "35.000000000000000". */
        for (int digits = 1; digits < 17; digits++) {
            char shorter[32];
            int l = snprintf(shorter, sizeof shorter, "%.*g", digits, v);
            if (strtod(shorter, NULL) == v) {
                memcpy(text, shorter, (size_t)l + 1);
                len = l;
                break;
            }
        }
        return fm_strdict_intern(&a->values, text, (size_t)len);
    }
    int32_t code = col->codes[i];
    if (code < 0) return -1;
    return fm_strdict_intern(&a->values, fm_strdict_get(&col->dict, code), col->dict.lens[code]);
}

int fm_fairness_rows_add(fm_fairness_rows_t *c, const fm_frame_t *frame, const size_t *rows,
                         size_t n, const int *y, const int *d, fm_error_t *err) {
    const fm_column_t *cols[FM_FAIRNESS_MAX_ATTRIBUTES];
    for (size_t k = 0; k < c->nattrs; k++) {
        int at = fm_frame_find(frame, c->attrs[k].name);
        if (at < 0)
            return fm_error_set(err, FM_EDATA, "protected column '%s' is not in %s",
                                c->attrs[k].name, frame->source ? frame->source : "the data");
        cols[k] = &frame->columns[at];
    }
    if (grow(c, n)) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t row = rows ? rows[i] : i;
        if (y[i] < 0) {
            c->missing_target++;
            continue;
        }
        if (y[i] > 1 || (d && (d[i] < 0 || d[i] > 1)))
            return fm_error_set(err, FM_EINVAL, "row %zu: label and decision must be 0 or 1",
                                row + 1);
        c->y[c->n] = y[i];
        c->d[c->n] = d ? d[i] : 0;
        for (size_t k = 0; k < c->nattrs; k++) {
            int32_t id = value_id(&c->attrs[k], cols[k], row);
            if (id < -1) return fm_error_set(err, FM_ENOMEM, "out of memory");
            c->attrs[k].codes[c->n] = id;
        }
        c->n++;
    }
    return FM_OK;
}

size_t fm_fairness_rows_count(const fm_fairness_rows_t *c) {
    return c->n;
}

size_t fm_fairness_rows_missing_target(const fm_fairness_rows_t *c) {
    return c->missing_target;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 when every distinct value of a parses as a number. */
static int all_numbers(const attribute_t *a) {
    for (size_t v = 0; v < a->values.count; v++) {
        double x;
        if (fm_value_parse_number(a->values.strings[v], a->values.lens[v], &x) != 0) return 0;
    }
    return a->values.count > 0;
}

/* The groups of attribute a: bands (given, or automatic for many numbers) in band order, else its
 * values in byte order. */
static int make_groups(const attribute_t *a, grouping_t *g, fm_error_t *err) {
    memset(g, 0, sizeof *g);
    size_t nvalues = a->values.count;
    g->map = malloc((nvalues ? nvalues : 1) * sizeof *g->map);
    if (!g->map) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int banded =
        a->edges || (!a->by_value && nvalues > FM_FAIRNESS_MAX_UNBANDED_NUMBERS && all_numbers(a));
    if (banded) {
        static const double age[] = FM_FAIRNESS_AGE_BANDS;
        const double *edges = a->edges ? a->edges : age;
        g->nedges = a->edges ? a->nedges : FM_FAIRNESS_AGE_NBANDS;
        g->edges = malloc(g->nedges * sizeof *g->edges);
        if (!g->edges) return fm_error_set(err, FM_ENOMEM, "out of memory");
        memcpy(g->edges, edges, g->nedges * sizeof *g->edges);
        for (size_t v = 0; v < nvalues; v++) {
            double x;
            if (fm_value_parse_number(a->values.strings[v], a->values.lens[v], &x) != 0)
                return fm_error_set(err, FM_EDATA,
                                    "protected column '%s' value '%s' is not a number, so it "
                                    "cannot be banded",
                                    a->name, a->values.strings[v]);
            g->map[v] = (int32_t)fm_fairness_band(x, g->edges, g->nedges);
        }
        g->ngroups = g->nedges + 1;
        if (!(g->names = calloc(g->ngroups, sizeof *g->names)))
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t b = 0; b < g->ngroups; b++) {
            char label[96];
            fm_fairness_band_label(g->edges, g->nedges, b, label, sizeof label);
            if (!(g->names[b] = strdup(label)))
                return fm_error_set(err, FM_ENOMEM, "out of memory");
        }
        return FM_OK;
    }
    g->ngroups = nvalues;
    if (!(g->names = calloc(nvalues ? nvalues : 1, sizeof *g->names)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t v = 0; v < nvalues; v++)
        if (!(g->names[v] = strdup(a->values.strings[v])))
            return fm_error_set(err, FM_ENOMEM, "out of memory");
    qsort(g->names, nvalues, sizeof *g->names, compare_names);
    for (size_t v = 0; v < nvalues; v++) {
        int32_t id = fm_strdict_find(&a->values, g->names[v], strlen(g->names[v]));
        g->map[id] = (int32_t)v;
    }
    return FM_OK;
}

/* The row codes of attribute a mapped to its groups, into codes[c->n]. */
static void group_codes(const fm_fairness_rows_t *c, const attribute_t *a, const grouping_t *g,
                        int32_t *codes) {
    for (size_t i = 0; i < c->n; i++)
        codes[i] = a->codes[i] >= 0 ? g->map[a->codes[i]] : -1;
}

static int attribute_report(const fm_fairness_rows_t *c, const attribute_t *a, int32_t *codes,
                            cJSON *list, fm_error_t *err) {
    grouping_t g;
    fm_fairness_t f = {0};
    int rc = make_groups(a, &g, err);
    long reference = -1;
    if (!rc && a->reference) {
        for (size_t k = 0; k < g.ngroups; k++)
            if (!strcmp(g.names[k], a->reference)) reference = (long)k;
        if (reference < 0)
            rc = fm_error_set(err, FM_EDATA, "reference group '%s' is not a group of column '%s'",
                              a->reference, a->name);
    }
    if (!rc) {
        group_codes(c, a, &g, codes);
        rc = fm_fairness_compute(c->y, c->d, codes, c->n, (const char *const *)g.names, g.ngroups,
                                 reference, &f, err);
        if (rc) fm_error_prefix(err, "protected column '%s': ", a->name);
    }
    if (!rc) {
        /* The attribute's name and bands first, then the metrics, for a reader of the JSON. */
        cJSON *metrics = fm_fairness_to_json(&f), *item = cJSON_CreateObject();
        cJSON *bands = g.edges ? fm_json_double_array(g.edges, g.nedges) : cJSON_CreateNull();
        if (!metrics || !item || !bands) {
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
            cJSON_Delete(item);
            cJSON_Delete(bands);
        } else {
            cJSON_AddStringToObject(item, "attribute", a->name);
            cJSON_AddItemToObject(item, "bands", bands);
            while (metrics->child) {
                cJSON *child = cJSON_DetachItemViaPointer(metrics, metrics->child);
                cJSON_AddItemToObject(item, child->string, child);
            }
            cJSON_AddItemToArray(list, item);
        }
        cJSON_Delete(metrics);
    }
    fm_fairness_deinit(&f);
    grouping_free(&g);
    return rc;
}

int fm_fairness_rows_report(const fm_fairness_rows_t *c, cJSON **out, fm_error_t *err) {
    *out = NULL;
    cJSON *list = cJSON_CreateArray();
    int32_t *codes = malloc((c->n ? c->n : 1) * sizeof *codes);
    int rc = list && codes ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t k = 0; k < c->nattrs && !rc; k++)
        rc = attribute_report(c, &c->attrs[k], codes, list, err);
    free(codes);
    if (rc) {
        cJSON_Delete(list);
        return rc;
    }
    *out = list;
    return FM_OK;
}

int fm_fairness_rows_joint(const fm_fairness_rows_t *c, int32_t **codes_out, int **labels_out,
                           size_t *ngroups, fm_error_t *err) {
    *codes_out = NULL;
    *labels_out = NULL;
    *ngroups = 0;
    size_t n = c->n ? c->n : 1;
    int32_t *codes = malloc(n * sizeof *codes), *part = malloc(n * sizeof *part);
    int *labels = malloc(n * sizeof *labels);
    fm_strdict_t joint = {0};
    int rc = codes && part && labels ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) memcpy(labels, c->y, c->n * sizeof *labels);
    for (size_t i = 0; i < c->n; i++)
        codes[i] = 0;
    /* Each row's groups, one per attribute, written as a key: the joint group is its id. */
    char *keys = rc ? NULL : calloc(n, (size_t)c->nattrs * sizeof(int32_t));
    if (!rc && !keys) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t k = 0; k < c->nattrs && !rc; k++) {
        grouping_t g;
        rc = make_groups(&c->attrs[k], &g, err);
        if (!rc) {
            group_codes(c, &c->attrs[k], &g, part);
            for (size_t i = 0; i < c->n; i++) {
                if (part[i] < 0) codes[i] = -1;
                memcpy(keys + (i * c->nattrs + k) * sizeof(int32_t), &part[i], sizeof(int32_t));
            }
        }
        grouping_free(&g);
    }
    for (size_t i = 0; i < c->n && !rc; i++) {
        if (codes[i] < 0) continue;
        int32_t id = fm_strdict_intern(&joint, keys + i * c->nattrs * sizeof(int32_t),
                                       c->nattrs * sizeof(int32_t));
        if (id < 0) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        codes[i] = id;
    }
    size_t count = joint.count;
    free(keys);
    free(part);
    fm_strdict_free(&joint);
    if (rc) {
        free(codes);
        free(labels);
        return rc;
    }
    *codes_out = codes;
    *labels_out = labels;
    *ngroups = count;
    return FM_OK;
}

cJSON *fm_fairness_rows_settings(const fm_fairness_rows_t *c, fm_error_t *err) {
    cJSON *list = cJSON_CreateArray();
    if (!list) {
        fm_error_set(err, FM_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t k = 0; k < c->nattrs; k++) {
        const attribute_t *a = &c->attrs[k];
        grouping_t g;
        int rc = make_groups(a, &g, err);
        cJSON *item = rc ? NULL : cJSON_CreateObject();
        if (!rc && !item) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        if (!rc) {
            cJSON_AddItemToArray(list, item);
            cJSON_AddStringToObject(item, "attribute", a->name);
            cJSON_AddItemToObject(item, "bands",
                                  g.edges ? fm_json_double_array(g.edges, g.nedges)
                                          : cJSON_CreateNull());
            cJSON_AddItemToObject(item, "reference",
                                  a->reference ? cJSON_CreateString(a->reference)
                                               : cJSON_CreateNull());
        }
        grouping_free(&g);
        if (rc) {
            cJSON_Delete(list);
            return NULL;
        }
    }
    return list;
}

int fm_fairness_attributes_from_json(const cJSON *json, fm_fairness_attribute_t *attrs, size_t max,
                                     size_t *nattrs, double **edges_store, fm_error_t *err) {
    *nattrs = 0;
    *edges_store = NULL;
    if (!cJSON_IsArray(json))
        return fm_error_set(err, FM_EFORMAT, "protected attributes: expected an array");
    size_t n = 0, total = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, json) {
        const cJSON *bands = cJSON_GetObjectItemCaseSensitive(item, "bands");
        if (cJSON_IsArray(bands)) total += (size_t)cJSON_GetArraySize(bands);
        n++;
    }
    if (n == 0 || n > max)
        return fm_error_set(err, FM_EFORMAT, "protected attributes: expected 1 to %zu", max);
    double *store = malloc((total ? total : 1) * sizeof *store);
    if (!store) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t k = 0, used = 0;
    cJSON_ArrayForEach(item, json) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "attribute");
        const cJSON *bands = cJSON_GetObjectItemCaseSensitive(item, "bands");
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(item, "reference");
        if (!cJSON_IsString(name) || !name->valuestring[0] ||
            (bands && !cJSON_IsNull(bands) && !cJSON_IsArray(bands)) ||
            (ref && !cJSON_IsNull(ref) && !cJSON_IsString(ref))) {
            free(store);
            return fm_error_set(err, FM_EFORMAT, "protected attribute %zu: malformed", k + 1);
        }
        fm_fairness_attribute_t *a = &attrs[k++];
        memset(a, 0, sizeof *a);
        a->name = name->valuestring;
        a->reference = cJSON_IsString(ref) ? ref->valuestring : NULL;
        a->by_value = 1;
        if (cJSON_IsArray(bands)) {
            a->edges = store + used;
            const cJSON *e;
            cJSON_ArrayForEach(e, bands) {
                if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) ||
                    (a->nedges && e->valuedouble <= a->edges[a->nedges - 1])) {
                    free(store);
                    return fm_error_set(err, FM_EFORMAT,
                                        "protected attribute '%s': bands must be increasing "
                                        "numbers",
                                        a->name);
                }
                store[used++] = e->valuedouble;
                a->nedges++;
            }
            if (a->nedges == 0) a->edges = NULL;
        }
    }
    *nattrs = k;
    *edges_store = store;
    return FM_OK;
}
