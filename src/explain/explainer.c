/*
 * The explainer: the model's "explain" member (fit.c) read back and checked once, or the fallback
 * baseline of a model without one, plus everything per-row explanations can compute in advance
 * (raw feature layout, reason texts, network score scaling, baseline scores, quadrature nodes,
 * Shapley weights); the per-thread workspace; and fm_explain_row, which checks a request and
 * hands it to the method's file. Nothing here allocates per row.
 */
#include "explain/explain_internal.h"
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[] = {
    [FM_EXPLAIN_AUTO] = "auto",         [FM_EXPLAIN_LINEAR] = "linear",
    [FM_EXPLAIN_TREESHAP] = "treeshap", [FM_EXPLAIN_INTEGRATED_GRADIENTS] = "integrated_gradients",
    [FM_EXPLAIN_SHAPLEY] = "shapley",
};

#define NMETHODS (sizeof method_names / sizeof method_names[0])

const char *fm_explain_method_name(fm_explain_method_t method) {
    return (unsigned)method < NMETHODS ? method_names[method] : "unknown";
}

int fm_explain_method_parse(const char *text, fm_explain_method_t *out) {
    for (size_t i = 0; text && i < NMETHODS; i++) {
        if (strcmp(text, method_names[i]) == 0) {
            *out = (fm_explain_method_t)i;
            return FM_OK;
        }
    }
    return FM_EINVAL;
}

void fm_explain_request_defaults(fm_explain_request_t *r) {
    r->method = FM_EXPLAIN_AUTO;
    r->steps = 0;
    r->baseline = FM_EXPLAIN_REFERENCE;
    r->output = -1;
}

fm_explain_method_t fm_explainer_method(const fm_explainer_t *e) {
    return e->method;
}

int fm_explainer_steps(const fm_explainer_t *e) {
    return e->steps;
}

int fm_explainer_approve_class(const fm_explainer_t *e) {
    return e->approve;
}

double fm_explainer_cutoff(const fm_explainer_t *e) {
    return e->cutoff;
}

void fm_explainer_free(fm_explainer_t *e) {
    if (!e) return;
    free(e->raw);
    free(e->column_of);
    for (int b = 0; b < FM_EXPLAIN_NBASELINES; b++) {
        free(e->row[b]);
        free(e->base_score[b]);
        free(e->group_phi[b]);
    }
    free(e->shapley_weight);
    free(e->gl_node);
    free(e->gl_weight);
    for (size_t c = 0; e->text && c < e->ncols; c++)
        free(e->text[c]);
    free(e->text);
    free(e);
}

/* Without a stored member: numeric columns at their training mean (encoded 0), categorical
 * columns at their most frequent category, missing indicators 0. */
static void centre_row(const fm_prep_t *prep, double *row) {
    memset(row, 0, prep->nfeatures * sizeof *row);
    for (size_t c = 0; c < prep->ncolumns; c++) {
        const fm_prep_column_t *col = &prep->columns[c];
        if (col->type == FM_COLUMN_CATEGORICAL && col->width > 0 && col->most_frequent >= 0 &&
            (size_t)col->most_frequent < col->width)
            row[col->offset + (size_t)col->most_frequent] = 1.0;
    }
}

/* Reads obj[key] as exactly n finite numbers into out. */
static int read_doubles(const cJSON *obj, const char *section, const char *key, double *out,
                        size_t n, fm_error_t *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(a))
        return fm_error_set(err, FM_EFORMAT, "explain: field '%s.%s' is missing or not an array",
                            section, key);
    size_t len = (size_t)cJSON_GetArraySize(a);
    if (len != n)
        return fm_error_set(err, FM_EFORMAT, "explain: field '%s.%s' has %zu values, expected %zu",
                            section, key, len, n);
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, a) {
        if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
            return fm_error_set(err, FM_EFORMAT,
                                "explain: field '%s.%s'[%zu] is not a finite "
                                "number",
                                section, key, i);
        out[i++] = item->valuedouble;
    }
    return FM_OK;
}

static int read_rows_count(const cJSON *obj, const char *section, fm_error_t *err) {
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(obj, "rows");
    if (!cJSON_IsNumber(rows) || !(rows->valuedouble >= 1) ||
        rows->valuedouble != floor(rows->valuedouble))
        return fm_error_set(err, FM_EFORMAT, "explain: field '%s.rows' must be a count >= 1",
                            section);
    return FM_OK;
}

/* Sums phi[nout * nf] per encoded column into group[nout * ncols] per prep column. */
static void sum_outputs(const fm_explainer_t *e, const double *phi, double *group) {
    for (size_t k = 0; k < e->nout; k++)
        fm_explain_sum_columns(e, phi + k * e->nf, group + k * e->ncols);
}

/* The baselines section ("population" or "reference") into baseline b. */
static int read_baseline(fm_explainer_t *e, const cJSON *member, const char *section, int b,
                         fm_error_t *err) {
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(member, section);
    if (!cJSON_IsObject(obj))
        return fm_error_set(err, FM_EFORMAT, "explain: field '%s' is missing or not an object",
                            section);
    int rc = read_rows_count(obj, section, err);
    if (!rc) rc = read_doubles(obj, section, "row", e->row[b], e->nf, err);
    if (rc || !e->model->gbt || b != FM_EXPLAIN_REFERENCE) return rc;
    /* Trees explain against the reference group's mean TreeSHAP attribution and margin. */
    double *phi = malloc(e->nout * e->nf * sizeof *phi);
    e->group_phi[b] = malloc(e->nout * e->ncols * sizeof *e->group_phi[b]);
    if (!phi || !e->group_phi[b]) rc = fm_error_set(err, FM_ENOMEM, "explain: out of memory");
    if (!rc) rc = read_doubles(obj, section, "phi", phi, e->nout * e->nf, err);
    if (!rc) rc = read_doubles(obj, section, "score", e->base_score[b], e->nout, err);
    if (!rc) sum_outputs(e, phi, e->group_phi[b]);
    free(phi);
    return rc;
}

static int set_text(fm_explainer_t *e, size_t c, const char *text, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return FM_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    free(e->text[c]);
    e->text[c] = copy;
    return FM_OK;
}

static int read_reasons(fm_explainer_t *e, const cJSON *member, fm_error_t *err) {
    const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(member, "reasons");
    if (!reasons) return FM_OK;
    if (!cJSON_IsObject(reasons))
        return fm_error_set(err, FM_EFORMAT, "explain: field 'reasons' is not an object");
    const cJSON *item;
    cJSON_ArrayForEach(item, reasons) {
        int c = item->string ? fm_prep_find(e->model->prep, item->string) : -1;
        if (c < 0)
            return fm_error_set(err, FM_EFORMAT, "explain: reason for unknown feature '%.100s'",
                                item->string ? item->string : "");
        if (!cJSON_IsString(item) || strlen(item->valuestring) > FM_EXPLAIN_MAX_REASON_TEXT)
            return fm_error_set(err, FM_EFORMAT,
                                "explain: reason for '%.100s' is not a text of at most %d bytes",
                                item->string, FM_EXPLAIN_MAX_REASON_TEXT);
        if (set_text(e, (size_t)c, item->valuestring, strlen(item->valuestring)))
            return fm_error_set(err, FM_ENOMEM, "explain: out of memory");
    }
    return FM_OK;
}

/* Reads the stored member; FM_EFORMAT naming the field. */
static int read_member(fm_explainer_t *e, const cJSON *member, fm_error_t *err) {
    const fm_model_t *m = e->model;
    if (!cJSON_IsObject(member))
        return fm_error_set(err, FM_EFORMAT, "explain: the stored member is not an object");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(member, "method");
    fm_explain_method_t stored;
    if (!cJSON_IsString(method) || fm_explain_method_parse(method->valuestring, &stored) ||
        (stored != FM_EXPLAIN_AUTO && stored != FM_EXPLAIN_SHAPLEY))
        return fm_error_set(err, FM_EFORMAT,
                            "explain: field 'method' must be 'auto' or "
                            "'shapley'");
    if (stored == FM_EXPLAIN_SHAPLEY) {
        if (e->nraw > FM_EXPLAIN_SHAPLEY_MAX)
            return fm_error_set(err, FM_EFORMAT,
                                "explain: field 'method' is 'shapley' but the model has %zu "
                                "features (at most %d)",
                                e->nraw, FM_EXPLAIN_SHAPLEY_MAX);
        e->method = FM_EXPLAIN_SHAPLEY;
    }
    int64_t steps;
    int rc = fm_json_int(member, "steps", 1, FM_EXPLAIN_MAX_STEPS, &steps, err);
    if (rc) return fm_error_prefix(err, "explain: ");
    e->steps = (int)steps;
    if ((rc = fm_json_number(member, "cutoff", &e->cutoff, err)))
        return fm_error_prefix(err, "explain: ");
    if (!(e->cutoff > 0.0 && e->cutoff < 1.0))
        return fm_error_set(err, FM_EFORMAT, "explain: field 'cutoff' %g is not in (0, 1)",
                            e->cutoff);
    double band;
    if ((rc = fm_json_number(member, "band", &band, err))) return fm_error_prefix(err, "explain: ");
    if (!(band > 0.0 && band <= 1.0))
        return fm_error_set(err, FM_EFORMAT, "explain: field 'band' %g is not in (0, 1]", band);
    if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(member, "reference_population")))
        return fm_error_set(err, FM_EFORMAT,
                            "explain: field 'reference_population' is missing or "
                            "not a boolean");
    if (m->task == FM_TASK_BINARY) {
        const char *approve;
        if ((rc = fm_json_string(member, "approve", &approve, err)))
            return fm_error_prefix(err, "explain: ");
        if (strcmp(approve, m->classes[0]) == 0)
            e->approve = 0;
        else if (strcmp(approve, m->classes[1]) == 0)
            e->approve = 1;
        else
            return fm_error_set(err, FM_EFORMAT, "explain: field 'approve' '%.100s' is not a class",
                                approve);
    }
    if ((rc = read_baseline(e, member, "population", FM_EXPLAIN_POPULATION, err))) return rc;
    if ((rc = read_baseline(e, member, "reference", FM_EXPLAIN_REFERENCE, err))) return rc;
    return read_reasons(e, member, err);
}

/* Layout, default texts and the family's method. */
static int init_layout(fm_explainer_t *e, fm_error_t *err) {
    const fm_prep_t *prep = e->model->prep;
    e->nf = prep->nfeatures;
    e->ncols = prep->ncolumns;
    e->nout = fm_model_output_width(e->model);
    e->raw = malloc((e->ncols ? e->ncols : 1) * sizeof *e->raw);
    e->column_of = malloc((e->nf ? e->nf : 1) * sizeof *e->column_of);
    e->text = calloc(e->ncols ? e->ncols : 1, sizeof *e->text);
    for (int b = 0; b < FM_EXPLAIN_NBASELINES; b++) {
        e->row[b] = calloc(e->nf ? e->nf : 1, sizeof *e->row[b]);
        e->base_score[b] = calloc(e->nout, sizeof *e->base_score[b]);
        if (!e->row[b] || !e->base_score[b]) return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!e->raw || !e->column_of || !e->text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; c < e->ncols; c++) {
        const fm_prep_column_t *col = &prep->columns[c];
        if (col->offset + col->width > e->nf)
            return fm_error_set(err, FM_EFORMAT,
                                "explain: column '%.100s' lies outside the "
                                "encoded row",
                                col->name);
        if (col->width > 0) e->raw[e->nraw++] = c;
        for (size_t j = 0; j < col->width; j++)
            e->column_of[col->offset + j] = c;
        char text[FM_EXPLAIN_MAX_REASON_TEXT + 64];
        int len = snprintf(text, sizeof text, "%.100s: value weighs against approval", col->name);
        if (set_text(e, c, text, (size_t)len)) return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (e->model->gbt)
        e->method = FM_EXPLAIN_TREESHAP;
    else if (e->net->nlayers == 1)
        e->method = FM_EXPLAIN_LINEAR;
    else
        e->method = FM_EXPLAIN_INTEGRATED_GRADIENTS;
    e->steps = FM_EXPLAIN_DEFAULT_STEPS;
    e->approve = e->model->task == FM_TASK_BINARY ? 1 : -1;
    e->cutoff = 0.5;
    return FM_OK;
}

/* Network constants: score scaling, widths, the exact path's capacity, default nodes. */
static int init_network(fm_explainer_t *e, fm_error_t *err) {
    const fm_net_t *net = e->net;
    if (e->model->task == FM_TASK_REGRESSION) {
        e->score_offset = e->model->target_mean;
        e->score_scale = e->model->target_std;
    } else {
        e->score_offset = 0.0;
        e->score_scale = 1.0;
    }
    if (net->nlayers < 2) return FM_OK;
    double bound = 1.0;
    for (int l = 1; l < net->nlayers; l++) {
        if ((size_t)net->sizes[l] > e->max_width) e->max_width = (size_t)net->sizes[l];
        bound *= net->sizes[l] + 1.0;
    }
    if (net->hidden == FM_ACT_RELU || net->hidden == FM_ACT_IDENTITY) {
        /* A piece of layer l's path is cut at most once per unit of layer l + 1. */
        e->max_breakpoints = bound + 1.0 < FM_EXPLAIN_MAX_BREAKPOINTS ? (size_t)bound + 1
                                                                      : FM_EXPLAIN_MAX_BREAKPOINTS;
        if (net->hidden == FM_ACT_IDENTITY) e->max_breakpoints = 2;
    }
    e->gl_n = e->steps;
    e->gl_node = malloc((size_t)e->gl_n * sizeof *e->gl_node);
    e->gl_weight = malloc((size_t)e->gl_n * sizeof *e->gl_weight);
    if (!e->gl_node || !e->gl_weight) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_explain_gauss_legendre(e->gl_n, e->gl_node, e->gl_weight);
    return FM_OK;
}

static int init_shapley(fm_explainer_t *e, fm_error_t *err) {
    if (e->nraw == 0 || e->nraw > FM_EXPLAIN_SHAPLEY_MAX) return FM_OK;
    e->shapley_weight = malloc(e->nraw * sizeof *e->shapley_weight);
    if (!e->shapley_weight) return fm_error_set(err, FM_ENOMEM, "out of memory");
    /* s! (M - s - 1)! / M!, built as 1 / (M * C(M - 1, s)) to stay exact for M <= 16. */
    size_t m = e->nraw;
    for (size_t s = 0; s < m; s++) {
        double binom = 1.0;
        for (size_t i = 1; i <= s; i++)
            binom = binom * (double)(m - 1 - s + i) / (double)i;
        e->shapley_weight[s] = 1.0 / ((double)m * binom);
    }
    return FM_OK;
}

int fm_explainer_new(const fm_model_t *model, fm_explainer_t **out, fm_error_t *err) {
    *out = NULL;
    if (!model || !model->prep || (!model->net32 && !model->gbt) || (!model->gbt && !model->net))
        return fm_error_set(err, FM_ESTATE, "explain: the model is not ready");
    fm_explainer_t *e = calloc(1, sizeof *e);
    if (!e) return fm_error_set(err, FM_ENOMEM, "out of memory");
    e->model = model;
    e->net = model->gbt ? NULL : model->net;
    int rc = init_layout(e, err);
    const cJSON *member = cJSON_GetObjectItemCaseSensitive(model->info, FM_EXPLAIN_MEMBER);
    if (!rc && member) {
        rc = read_member(e, member, err);
    } else if (!rc) {
        centre_row(model->prep, e->row[FM_EXPLAIN_REFERENCE]);
        centre_row(model->prep, e->row[FM_EXPLAIN_POPULATION]);
    }
    if (!rc && e->net) rc = init_network(e, err);
    if (!rc) rc = init_shapley(e, err);
    if (!rc && e->net) {
        fm_explain_workspace_t *ws = NULL;
        rc = fm_explain_workspace_new(e, &ws, err);
        for (int b = 0; !rc && b < FM_EXPLAIN_NBASELINES; b++)
            fm_explain_net_scores(e, ws, e->row[b], 1, e->base_score[b]);
        fm_explain_workspace_free(ws);
    }
    if (rc) {
        fm_explainer_free(e);
        return rc;
    }
    *out = e;
    return FM_OK;
}

void fm_explain_workspace_free(fm_explain_workspace_t *ws) {
    if (!ws) return;
    free(ws->phi_enc);
    free(ws->scores);
    free(ws->alpha);
    free(ws->weight);
    for (int l = 0; l < FM_NET_MAX_LAYERS; l++) {
        free(ws->pre[l]);
        free(ws->act[l]);
    }
    free(ws->grad_a);
    free(ws->grad_b);
    free(ws->dweight);
    free(ws->h0);
    free(ws->g);
    free(ws->direction);
    free(ws->delta_sum);
    free(ws->breaks);
    free(ws->found);
    free(ws->gl_node);
    free(ws->gl_weight);
    free(ws->contrib);
    free(ws->values);
    free(ws->coalitions);
    free(ws->coalition_scores);
    free(ws);
}

/* malloc of n doubles that never asks for 0 bytes; counts failures in *failed. */
static double *doubles(size_t n, int *failed) {
    double *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) *failed = 1;
    return p;
}

int fm_explain_workspace_new(const fm_explainer_t *e, fm_explain_workspace_t **out,
                             fm_error_t *err) {
    *out = NULL;
    fm_explain_workspace_t *ws = calloc(1, sizeof *ws);
    if (!ws) return fm_error_set(err, FM_ENOMEM, "out of memory");
    ws->e = e;
    int failed = 0;
    size_t C = FM_EXPLAIN_CHUNK, nf = e->nf, nout = e->nout;
    ws->phi_enc = doubles(nf, &failed);
    ws->scores = doubles(nout, &failed);
    ws->coalitions = doubles(C * nf, &failed);
    ws->coalition_scores = doubles(C * nout, &failed);
    if (e->shapley_weight) ws->values = doubles((size_t)1 << e->nraw, &failed);
    if (e->model->gbt) ws->contrib = doubles(nout * (nf + 1), &failed);
    if (e->net) {
        const fm_net_t *net = e->net;
        size_t wide = e->max_width > nout ? e->max_width : nout, largest = 0;
        for (int l = 1; l < net->nlayers; l++) {
            ws->pre[l - 1] = doubles(C * (size_t)net->sizes[l], &failed);
            ws->act[l - 1] = doubles(C * (size_t)net->sizes[l], &failed);
            if (l > 1) {
                size_t n = (size_t)net->sizes[l - 1] * (size_t)net->sizes[l];
                if (n > largest) largest = n;
            }
        }
        ws->alpha = doubles(C, &failed);
        ws->weight = doubles(C, &failed);
        ws->grad_a = doubles(C * wide, &failed);
        ws->grad_b = doubles(C * wide, &failed);
        ws->dweight = doubles(largest, &failed);
        ws->h0 = doubles(wide, &failed);
        ws->g = doubles(wide, &failed);
        ws->direction = doubles(nf, &failed);
        ws->delta_sum = doubles(wide, &failed);
        if (net->nlayers > 1) {
            ws->gl_node = doubles(FM_EXPLAIN_MAX_STEPS, &failed);
            ws->gl_weight = doubles(FM_EXPLAIN_MAX_STEPS, &failed);
        }
        if (e->max_breakpoints) {
            ws->breaks = doubles(e->max_breakpoints, &failed);
            ws->found = doubles(e->max_breakpoints, &failed);
        }
    }
    if (failed) {
        fm_explain_workspace_free(ws);
        return fm_error_set(err, FM_ENOMEM, "explain: out of memory for a workspace");
    }
    *out = ws;
    return FM_OK;
}

void fm_explain_sum_columns(const fm_explainer_t *e, const double *phi_enc, double *phi) {
    const fm_prep_t *prep = e->model->prep;
    for (size_t c = 0; c < e->ncols; c++) {
        const fm_prep_column_t *col = &prep->columns[c];
        double s = 0.0;
        for (size_t j = 0; j < col->width; j++)
            s += phi_enc[col->offset + j];
        phi[c] = s;
    }
}

size_t fm_explain_pick_output(const fm_explainer_t *e, long output, const double *scores) {
    if (e->model->task != FM_TASK_MULTICLASS) return 0;
    if (output >= 0) return (size_t)output;
    size_t best = 0;
    for (size_t k = 1; k < e->nout; k++)
        if (scores[k] > scores[best] || scores[best] != scores[best]) best = k;
    return best;
}

/* Whether method applies to the explainer's model. */
static int applies(const fm_explainer_t *e, fm_explain_method_t method) {
    switch (method) {
    case FM_EXPLAIN_LINEAR:
        return e->net && e->net->nlayers == 1;
    case FM_EXPLAIN_TREESHAP:
        return e->model->gbt != NULL;
    case FM_EXPLAIN_INTEGRATED_GRADIENTS:
        return e->net != NULL;
    case FM_EXPLAIN_SHAPLEY:
        return e->shapley_weight != NULL;
    case FM_EXPLAIN_AUTO:
        break;
    }
    return 0;
}

int fm_explain_row(const fm_explainer_t *e, fm_explain_workspace_t *ws, const double *x,
                   const fm_explain_request_t *request, fm_explanation_t *out, fm_error_t *err) {
    fm_explain_request_t defaults;
    if (!request) {
        fm_explain_request_defaults(&defaults);
        request = &defaults;
    }
    if (!ws || ws->e != e)
        return fm_error_set(err, FM_EINVAL,
                            "explain: workspace of another "
                            "explainer");
    if ((unsigned)request->method >= NMETHODS)
        return fm_error_set(err, FM_EINVAL, "explain: unknown method %d", (int)request->method);
    fm_explain_method_t method = request->method == FM_EXPLAIN_AUTO ? e->method : request->method;
    if (!applies(e, method)) {
        if (method == FM_EXPLAIN_SHAPLEY)
            return fm_error_set(err, FM_EINVAL,
                                "explain: method 'shapley' needs at most %d features, the model "
                                "has %zu",
                                FM_EXPLAIN_SHAPLEY_MAX, e->nraw);
        return fm_error_set(err, FM_EINVAL,
                            "explain: method '%s' does not apply to a '%.64s' "
                            "model%s",
                            fm_explain_method_name(method), e->model->family,
                            method == FM_EXPLAIN_LINEAR && e->net ? " of several layers" : "");
    }
    if (request->baseline != FM_EXPLAIN_REFERENCE && request->baseline != FM_EXPLAIN_POPULATION)
        return fm_error_set(err, FM_EINVAL, "explain: unknown baseline %d", (int)request->baseline);
    int steps = request->steps ? request->steps : e->steps;
    if (steps < 1 || steps > FM_EXPLAIN_MAX_STEPS)
        return fm_error_set(err, FM_EINVAL, "explain: steps %d is not in 1..%d", request->steps,
                            FM_EXPLAIN_MAX_STEPS);
    if (e->model->task == FM_TASK_MULTICLASS &&
        (request->output < -1 || request->output >= (long)e->nout))
        return fm_error_set(err, FM_EINVAL, "explain: output %ld is not a class index (0..%zu)",
                            request->output, e->nout - 1);
    fm_explain_call_t call = {x, (int)request->baseline, request->output, steps};
    out->method = method;
    out->steps = 0;
    out->output = 0;
    switch (method) {
    case FM_EXPLAIN_LINEAR:
        return fm_explain_linear(e, ws, &call, out);
    case FM_EXPLAIN_INTEGRATED_GRADIENTS:
        return fm_explain_ig(e, ws, &call, out);
    case FM_EXPLAIN_TREESHAP:
        return fm_explain_treeshap(e, ws, &call, out, err);
    case FM_EXPLAIN_SHAPLEY:
        return fm_explain_shapley(e, ws, &call, out, err);
    case FM_EXPLAIN_AUTO:
        break;
    }
    return fm_error_set(err, FM_EINVAL, "explain: no method");
}

int fm_explain_mean_abs(const fm_explainer_t *e, const double *x, size_t n, double *mean_abs,
                        fm_error_t *err) {
    memset(mean_abs, 0, e->ncols * sizeof *mean_abs);
    if (n == 0) return fm_error_set(err, FM_EDATA, "explain: no rows");
    fm_explain_workspace_t *ws = NULL;
    double *phi = malloc((e->ncols ? e->ncols : 1) * sizeof *phi);
    int rc =
        phi ? fm_explain_workspace_new(e, &ws, err) : fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_explain_request_t request;
    fm_explain_request_defaults(&request);
    fm_explanation_t ex = {.phi = phi};
    for (size_t i = 0; !rc && i < n; i++) {
        if ((rc = fm_explain_row(e, ws, x + i * e->nf, &request, &ex, err))) break;
        for (size_t c = 0; c < e->ncols; c++)
            mean_abs[c] += fabs(phi[c]);
    }
    for (size_t c = 0; !rc && c < e->ncols; c++)
        mean_abs[c] /= (double)n;
    fm_explain_workspace_free(ws);
    free(phi);
    return rc;
}
