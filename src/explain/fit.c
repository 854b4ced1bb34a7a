/*
 * Fitting explanations at training: the baselines (the mean training row, the reference group of
 * approved applicants just above the cutoff and, for trees, that group's mean TreeSHAP attribution
 * and margin), the settings and the reason texts, stored in model->info as the "explain" member
 * that explainer.c reads back.
 *
 * The member, all numbers finite:
 *   {"method": "auto"|"shapley", "steps": 50, "approve": "<label>" (binary), "cutoff": 0.5,
 *    "band": 0.1, "reference_population": false, "reasons": {"<feature>": "<text>", ...},
 *    "population": {"rows": n, "row": [nfeatures]},
 *    "reference": {"rows": m, "selection": "band"|"nearest"|"population", "row": [nfeatures],
 *                  trees only: "phi": [outputs * nfeatures], "score": [outputs]}}
 * The reference group is chosen on the model's own predictions (the float network that serves, or
 * the booster), so it is the group the served decisions put near the cutoff.
 */
#include "explain/explain_internal.h"
#include "core/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Rows predicted or explained at a time while fitting. */
#define FIT_CHUNK 1024

void fm_explain_fit_options_defaults(fm_explain_fit_options_t *o) {
    memset(o, 0, sizeof *o);
    o->approve = NULL;
    o->cutoff = 0.5;
    o->band = 0.1;
    o->reference_population = 0;
    o->reasons = NULL;
    o->method = FM_EXPLAIN_AUTO;
    o->steps = FM_EXPLAIN_DEFAULT_STEPS;
}

/* 1 when a class label names an adverse credit outcome ("bad", "default", ...; any case). */
static int names_adverse_outcome(const char *label) {
    static const char *const adverse[] = {"bad",         "default",     "defaulted", "delinquent",
                                          "charged off", "charged_off", "fraud",     "reject",
                                          "rejected",    "declined"};
    for (size_t i = 0; i < sizeof adverse / sizeof adverse[0]; i++)
        if (strcasecmp(label, adverse[i]) == 0) return 1;
    return 0;
}

/* The settings must fit the model; returns the approve class (binary) or -1. */
static int check_options(const fm_model_t *m, const fm_explain_fit_options_t *o, int *approve,
                         fm_error_t *err) {
    *approve = -1;
    if (!(o->cutoff > 0.0 && o->cutoff < 1.0))
        return fm_error_set(err, FM_EINVAL, "explain: cutoff %g is not in (0, 1)", o->cutoff);
    if (!(o->band > 0.0 && o->band <= 1.0))
        return fm_error_set(err, FM_EINVAL, "explain: band %g is not in (0, 1]", o->band);
    if (o->steps < 1 || o->steps > FM_EXPLAIN_MAX_STEPS)
        return fm_error_set(err, FM_EINVAL, "explain: steps %d is not in 1..%d", o->steps,
                            FM_EXPLAIN_MAX_STEPS);
    if (o->method != FM_EXPLAIN_AUTO && o->method != FM_EXPLAIN_SHAPLEY)
        return fm_error_set(err, FM_EINVAL, "explain: method %d is not 'auto' or 'shapley'",
                            (int)o->method);
    if (o->method == FM_EXPLAIN_SHAPLEY) {
        size_t nraw = 0;
        for (size_t c = 0; c < m->prep->ncolumns; c++)
            nraw += m->prep->columns[c].width > 0;
        if (nraw > FM_EXPLAIN_SHAPLEY_MAX)
            return fm_error_set(err, FM_EINVAL,
                                "explain: method 'shapley' needs at most %d features, the model "
                                "has %zu",
                                FM_EXPLAIN_SHAPLEY_MAX, nraw);
    }
    if (m->task == FM_TASK_BINARY) {
        /* Without a setting, approval is the positive class, unless that class names the
         * adverse outcome (a credit model of P(bad) or P(default)): then it is the other. */
        *approve =
            names_adverse_outcome(m->classes[1]) && !names_adverse_outcome(m->classes[0]) ? 0 : 1;
        if (o->approve) {
            if (strcmp(o->approve, m->classes[0]) == 0)
                *approve = 0;
            else if (strcmp(o->approve, m->classes[1]) != 0)
                return fm_error_set(err, FM_EINVAL,
                                    "explain: approve label '%.100s' is not a class ('%.100s', "
                                    "'%.100s')",
                                    o->approve, m->classes[0], m->classes[1]);
        }
    } else if (o->approve) {
        return fm_error_set(err, FM_EINVAL,
                            "explain: an approve label applies to binary models "
                            "only");
    }
    if (o->reasons) {
        if (!cJSON_IsObject(o->reasons))
            return fm_error_set(err, FM_EINVAL, "explain: reasons must be an object of texts");
        const cJSON *item;
        cJSON_ArrayForEach(item, o->reasons) {
            if (!item->string || fm_prep_find(m->prep, item->string) < 0)
                return fm_error_set(err, FM_EINVAL,
                                    "explain: reason text for '%.100s', which is not a feature",
                                    item->string ? item->string : "");
            if (!cJSON_IsString(item))
                return fm_error_set(err, FM_EINVAL, "explain: reason for '%.100s' is not a text",
                                    item->string);
            if (strlen(item->valuestring) > FM_EXPLAIN_MAX_REASON_TEXT)
                return fm_error_set(
                    err, FM_EINVAL, "explain: reason text for '%.100s' is %zu bytes, more than %d",
                    item->string, strlen(item->valuestring), FM_EXPLAIN_MAX_REASON_TEXT);
        }
    }
    return FM_OK;
}

typedef struct {
    double p;
    size_t row;
} ranked_t;

static int by_probability(const void *a, const void *b) {
    const ranked_t *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/*
 * The reference group's rows into group[*m] (capacity n) from P(approve) p[n]; *selection says
 * how it was chosen. ranked[n] is scratch.
 */
static void choose_group(const double *p, size_t n, double cutoff, double band, size_t *group,
                         size_t *m, const char **selection, ranked_t *ranked) {
    size_t in_band = 0, approved = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= cutoff) ranked[approved++] = (ranked_t){p[i], i};
        if (p[i] >= cutoff && p[i] < cutoff + band) group[in_band++] = i;
    }
    if (in_band >= FM_EXPLAIN_MIN_REFERENCE) {
        *m = in_band;
        *selection = "band";
        return;
    }
    if (approved == 0) {
        for (size_t i = 0; i < n; i++)
            group[i] = i;
        *m = n;
        *selection = "population";
        return;
    }
    qsort(ranked, approved, sizeof *ranked, by_probability);
    *m = approved < FM_EXPLAIN_MIN_REFERENCE ? approved : FM_EXPLAIN_MIN_REFERENCE;
    for (size_t i = 0; i < *m; i++)
        group[i] = ranked[i].row;
    *selection = "nearest";
}

/* P(approve) of every row into p[n]. */
static int approve_probabilities(const fm_model_t *m, const double *x, size_t n, int approve,
                                 double *p, fm_error_t *err) {
    fm_model_workspace_t *ws = NULL;
    int rc = fm_model_workspace_new(m, FIT_CHUNK, &ws, err);
    size_t nf = m->prep->nfeatures;
    for (size_t start = 0; !rc && start < n; start += FIT_CHUNK) {
        size_t b = n - start < FIT_CHUNK ? n - start : FIT_CHUNK;
        if ((rc = fm_model_predict_encoded(m, ws, x + start * nf, b, p + start)))
            fm_error_set(err, rc, "explain: %s", fm_model_workspace_error(ws));
    }
    fm_model_workspace_free(ws);
    for (size_t i = 0; !rc && approve == 0 && i < n; i++)
        p[i] = 1.0 - p[i];
    return rc;
}

/* The mean of rows rows[m] (NULL: the first m) of x into mean[nf]. */
static void mean_row(const double *x, size_t nf, const size_t *rows, size_t m, double *mean) {
    memset(mean, 0, nf * sizeof *mean);
    for (size_t i = 0; i < m; i++) {
        const double *r = x + (rows ? rows[i] : i) * nf;
        for (size_t j = 0; j < nf; j++)
            mean[j] += r[j];
    }
    for (size_t j = 0; j < nf; j++)
        mean[j] /= (double)m;
}

/* Trees: the group's mean contribution per output and encoded column into phi[nout * nf] and
 * mean margin into score[nout], with the same TreeSHAP (fm_gbt_shap) as each explained row, so
 * that the reference subtraction cancels exactly. */
static int group_contributions(const fm_model_t *m, const double *x, const size_t *rows,
                               size_t count, double *phi, double *score, fm_error_t *err) {
    size_t nf = m->prep->nfeatures, nout = fm_model_output_width(m), stride = nout * (nf + 1);
    double *contrib = malloc(stride * sizeof *contrib);
    int rc = contrib ? FM_OK : fm_error_set(err, FM_ENOMEM, "explain: out of memory");
    memset(phi, 0, nout * nf * sizeof *phi);
    memset(score, 0, nout * sizeof *score);
    for (size_t i = 0; i < count && !rc; i++) {
        if ((rc = fm_gbt_shap(m->gbt, x + rows[i] * nf, contrib, err))) break;
        for (size_t k = 0; k < nout; k++) {
            const double *c = contrib + k * (nf + 1);
            double total = 0.0;
            for (size_t j = 0; j <= nf; j++)
                total += c[j];
            for (size_t j = 0; j < nf; j++)
                phi[k * nf + j] += c[j];
            score[k] += total;
        }
    }
    for (size_t i = 0; i < nout * nf; i++)
        phi[i] /= (double)count;
    for (size_t k = 0; k < nout; k++)
        score[k] /= (double)count;
    free(contrib);
    return rc;
}

static int add_array(cJSON *obj, const char *key, const double *v, size_t n) {
    cJSON *a = fm_json_double_array(v, n);
    if (!a) return 0;
    if (!cJSON_AddItemToObject(obj, key, a)) {
        cJSON_Delete(a);
        return 0;
    }
    return 1;
}

/* The member as described at the top; NULL when out of memory. */
static cJSON *build_member(const fm_model_t *m, const fm_explain_fit_options_t *o, int approve,
                           size_t n, const double *population, size_t group_rows,
                           const char *selection, const double *reference, const double *phi,
                           const double *score) {
    size_t nf = m->prep->nfeatures, nout = fm_model_output_width(m);
    cJSON *e = cJSON_CreateObject();
    cJSON *pop = cJSON_CreateObject(), *ref = cJSON_CreateObject();
    cJSON *reasons = o->reasons ? cJSON_Duplicate(o->reasons, 1) : cJSON_CreateObject();
    int ok = e && pop && ref && reasons;
    ok = ok && cJSON_AddItemToObject(e, "population", pop);
    if (!ok) cJSON_Delete(pop);
    ok = ok && cJSON_AddItemToObject(e, "reference", ref);
    if (!ok) cJSON_Delete(ref);
    ok = ok && cJSON_AddItemToObject(e, "reasons", reasons);
    if (!ok) {
        cJSON_Delete(reasons);
        cJSON_Delete(e);
        return NULL;
    }
    ok = cJSON_AddStringToObject(e, "method", fm_explain_method_name(o->method)) &&
         cJSON_AddNumberToObject(e, "steps", o->steps) &&
         cJSON_AddNumberToObject(e, "cutoff", o->cutoff) &&
         cJSON_AddNumberToObject(e, "band", o->band) &&
         cJSON_AddBoolToObject(e, "reference_population", o->reference_population != 0) &&
         cJSON_AddNumberToObject(pop, "rows", (double)n) && add_array(pop, "row", population, nf) &&
         cJSON_AddNumberToObject(ref, "rows", (double)group_rows) &&
         cJSON_AddStringToObject(ref, "selection", selection) &&
         add_array(ref, "row", reference, nf);
    if (ok && approve >= 0) ok = cJSON_AddStringToObject(e, "approve", m->classes[approve]) != NULL;
    if (ok && phi)
        ok = add_array(ref, "phi", phi, nout * nf) && add_array(ref, "score", score, nout);
    if (!ok) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

int fm_explain_fit(fm_model_t *model, const double *x, size_t n,
                   const fm_explain_fit_options_t *options, fm_error_t *err) {
    fm_explain_fit_options_t defaults;
    if (!options) {
        fm_explain_fit_options_defaults(&defaults);
        options = &defaults;
    }
    if (!model || !model->prep || (!model->net32 && !model->gbt))
        return fm_error_set(err, FM_ESTATE, "explain: the model is not ready");
    int approve;
    int rc = check_options(model, options, &approve, err);
    if (rc) return rc;
    if (n == 0) return fm_error_set(err, FM_EDATA, "explain: no training rows");
    size_t nf = model->prep->nfeatures, nout = fm_model_output_width(model);
    for (size_t i = 0; i < n * nf; i++)
        if (!isfinite(x[i]))
            return fm_error_set(err, FM_EDATA,
                                "explain: training row %zu, feature %zu is not "
                                "finite",
                                i / nf, i % nf);

    double *population = malloc(nf * sizeof *population);
    double *reference = malloc(nf * sizeof *reference);
    double *p = malloc(n * sizeof *p);
    size_t *group = malloc(n * sizeof *group);
    ranked_t *ranked = malloc(n * sizeof *ranked);
    double *phi = model->gbt ? malloc(nout * nf * sizeof *phi) : NULL;
    double *score = model->gbt ? malloc(nout * sizeof *score) : NULL;
    if (!population || !reference || !p || !group || !ranked || (model->gbt && (!phi || !score)))
        rc = fm_error_set(err, FM_ENOMEM, "explain: out of memory for %zu rows", n);

    size_t m = n;
    const char *selection = "population";
    if (!rc) {
        mean_row(x, nf, NULL, n, population);
        for (size_t i = 0; i < n; i++)
            group[i] = i;
    }
    if (!rc && approve >= 0 && !options->reference_population) {
        rc = approve_probabilities(model, x, n, approve, p, err);
        if (!rc) choose_group(p, n, options->cutoff, options->band, group, &m, &selection, ranked);
    }
    if (!rc) mean_row(x, nf, group, m, reference);
    if (!rc && model->gbt) rc = group_contributions(model, x, group, m, phi, score, err);

    cJSON *member = NULL;
    if (!rc) {
        member = build_member(model, options, approve, n, population, m, selection, reference, phi,
                              score);
        if (!member) rc = fm_error_set(err, FM_ENOMEM, "explain: out of memory");
    }
    if (!rc) {
        cJSON_DeleteItemFromObjectCaseSensitive(model->info, FM_EXPLAIN_MEMBER);
        if (!cJSON_AddItemToObject(model->info, FM_EXPLAIN_MEMBER, member)) {
            cJSON_Delete(member);
            rc = fm_error_set(err, FM_ENOMEM, "explain: out of memory");
        }
    }
    free(population);
    free(reference);
    free(p);
    free(group);
    free(ranked);
    free(phi);
    free(score);
    return rc;
}
