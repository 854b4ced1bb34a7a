/*
 * Fitting a scorecard (scorecard.h): binning every feature, the logistic regression of the target
 * on the WoE values (Newton-Raphson in double precision), the points of every bin, and the
 * finmaas model that carries them: a one-layer logistic network over the binned and one-hot
 * encoded features whose weights are beta * WoE.
 *
 * The regression's design matrix is computed from the model's own encoding of the training rows
 * (fm_prep_transform, then each feature's WoE as the dot product of its encoded block with the
 * block's WoE weights), so the fitted coefficients belong to exactly the function that serving
 * evaluates.
 */
#include "core/clock.h"
#include "core/json.h"
#include "explain/explain.h"
#include "scorecard/scorecard_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITERATIONS 100
#define STEP_TOLERANCE 1e-10

int fm_scorecard_scaling(double pdo, double base_points, double base_odds,
                         fm_scorecard_scaling_t *out, fm_error_t *err) {
    if (!(pdo > 0) || !isfinite(pdo))
        return fm_error_set(err, FM_EINVAL, "points to double the odds (PDO) %g must be > 0", pdo);
    if (!isfinite(base_points))
        return fm_error_set(err, FM_EINVAL, "base points %g must be finite", base_points);
    if (!(base_odds > 0) || !isfinite(base_odds))
        return fm_error_set(err, FM_EINVAL, "base odds %g must be > 0", base_odds);
    out->pdo = pdo;
    out->base_points = base_points;
    out->base_odds = base_odds;
    out->factor = pdo / log(2.0);
    out->offset = base_points - out->factor * log(base_odds);
    return FM_OK;
}

void fm_scorecard_options_defaults(fm_scorecard_options_t *o) {
    memset(o, 0, sizeof *o);
    o->pdo = FM_SCORECARD_DEFAULT_PDO;
    o->base_points = FM_SCORECARD_DEFAULT_BASE_POINTS;
    o->base_odds = FM_SCORECARD_DEFAULT_BASE_ODDS;
    fm_scorecard_binning_defaults(&o->binning);
}

/* ---- Logistic regression ------------------------------------------------------------------- */

static double softplus(double z) {
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

/* The penalised log-likelihood at beta; eta[n] receives the linear predictor. */
static double objective(const double *beta, const double *x, const double *y, size_t n, size_t p,
                        double l2, double *eta) {
    double ll = 0, penalty = 0;
    for (size_t i = 0; i < n; i++) {
        double z = beta[0];
        for (size_t j = 0; j < p; j++)
            z += x[i * p + j] * beta[j + 1];
        eta[i] = z;
        ll += y[i] * z - softplus(z);
    }
    for (size_t j = 1; j <= p; j++)
        penalty += beta[j] * beta[j];
    return ll - 0.5 * l2 * penalty;
}

/* Solves a[q,q] s = b in place by Cholesky (a symmetric positive definite); 0 or -1 when not. */
static int cholesky_solve(double *a, double *b, size_t q) {
    for (size_t j = 0; j < q; j++) {
        double d = a[j * q + j];
        for (size_t k = 0; k < j; k++)
            d -= a[j * q + k] * a[j * q + k];
        if (!(d > 0)) return -1;
        a[j * q + j] = sqrt(d);
        for (size_t i = j + 1; i < q; i++) {
            double s = a[i * q + j];
            for (size_t k = 0; k < j; k++)
                s -= a[i * q + k] * a[j * q + k];
            a[i * q + j] = s / a[j * q + j];
        }
    }
    for (size_t i = 0; i < q; i++) { /* L z = b */
        for (size_t k = 0; k < i; k++)
            b[i] -= a[i * q + k] * b[k];
        b[i] /= a[i * q + i];
    }
    for (size_t i = q; i-- > 0;) { /* L^T s = z */
        for (size_t k = i + 1; k < q; k++)
            b[i] -= a[k * q + i] * b[k];
        b[i] /= a[i * q + i];
    }
    return 0;
}

int fm_scorecard_logistic(double *beta, const double *x, const double *y, size_t n, size_t p,
                          double l2, int *iterations, fm_error_t *err) {
    if (n == 0) return fm_error_set(err, FM_EDATA, "logistic regression: no rows");
    double ones = 0;
    for (size_t i = 0; i < n; i++)
        ones += y[i];
    if (ones == 0 || ones == (double)n)
        return fm_error_set(err, FM_EDATA, "logistic regression: the target has one class");
    size_t q = p + 1;
    double *h = malloc(q * q * sizeof *h), *g = malloc(q * sizeof *g);
    double *eta = malloc(n * sizeof *eta), *trial = malloc(q * sizeof *trial);
    if (!h || !g || !eta || !trial) {
        free(h);
        free(g);
        free(eta);
        free(trial);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    memset(beta, 0, q * sizeof *beta);
    beta[0] = log(ones / ((double)n - ones));
    double current = objective(beta, x, y, n, p, l2, eta);
    int rc = FM_OK, it = 0;
    for (; it < MAX_ITERATIONS; it++) {
        memset(h, 0, q * q * sizeof *h);
        memset(g, 0, q * sizeof *g);
        for (size_t i = 0; i < n; i++) {
            const double *xi = x + i * p;
            double mu = 1.0 / (1.0 + exp(-eta[i])), w = mu * (1.0 - mu), r = y[i] - mu;
            g[0] += r;
            h[0] += w;
            for (size_t a = 0; a < p; a++) {
                g[a + 1] += r * xi[a];
                h[(a + 1) * q] += w * xi[a];
                for (size_t b = 0; b <= a; b++)
                    h[(a + 1) * q + b + 1] += w * xi[a] * xi[b];
            }
        }
        for (size_t a = 1; a < q; a++) {
            g[a] -= l2 * beta[a];
            h[a * q + a] += l2;
            for (size_t b = 0; b < a; b++)
                h[b * q + a] = h[a * q + b];
        }
        if (cholesky_solve(h, g, q)) {
            rc = fm_error_set(err, FM_EDATA,
                              "logistic regression: singular Hessian (features that are copies "
                              "of each other?)");
            break;
        }
        /* Halve the step while the objective would fall (it rarely does near the optimum). */
        double t = 1.0, next = current;
        for (int k = 0; k < 60; k++, t *= 0.5) {
            for (size_t a = 0; a < q; a++)
                trial[a] = beta[a] + t * g[a];
            next = objective(trial, x, y, n, p, l2, eta);
            if (next >= current - 1e-12 * fabs(current)) break;
        }
        double largest = 0;
        for (size_t a = 0; a < q; a++) {
            double step = trial[a] - beta[a];
            if (fabs(step) > largest) largest = fabs(step);
            beta[a] = trial[a];
        }
        current = next;
        if (largest < STEP_TOLERANCE) {
            it++;
            break;
        }
    }
    if (iterations) *iterations = it;
    free(h);
    free(g);
    free(eta);
    free(trial);
    return rc;
}

/* ---- The model ----------------------------------------------------------------------------- */

double fm_scorecard_bin_points(double beta, double woe, double intercept, size_t nfeatures,
                               const fm_scorecard_scaling_t *s) {
    double share = (double)nfeatures;
    return -(beta * woe + intercept / share) * s->factor + s->offset / share;
}

/* Points of every bin and the feature's extremes, from beta and WoE (scorecard.h's formula). */
void fm_scorecard_points(fm_scorecard_feature_t *f, double intercept, size_t nfeatures,
                         const fm_scorecard_scaling_t *s) {
    f->neutral_points = fm_scorecard_bin_points(f->beta, 0.0, intercept, nfeatures, s);
    f->min_points = INFINITY;
    f->max_points = -INFINITY;
    for (size_t b = 0; b < f->nbins; b++) {
        double pts = fm_scorecard_bin_points(f->beta, f->bins[b].woe, intercept, nfeatures, s);
        f->bins[b].points = pts;
        if (pts < f->min_points) f->min_points = pts;
        if (pts > f->max_points) f->max_points = pts;
    }
}

int fm_scorecard_block_woe(const fm_scorecard_feature_t *f, const fm_prep_column_t *c, double *woe,
                           fm_error_t *err) {
    if (c->type == FM_COLUMN_NUMERIC) {
        int has_missing = f->nbins > 0 && f->bins[f->nbins - 1].missing;
        if (!c->binned || c->width != f->nbins || has_missing != (c->missing_indicator != 0))
            return fm_error_set(err, FM_EFORMAT,
                                "scorecard feature '%s': %zu bins, the preprocessing encodes %zu",
                                f->name, f->nbins, c->width);
        for (size_t j = 0; j < f->nbins; j++)
            woe[j] = f->bins[j].woe;
        return FM_OK;
    }
    size_t ncat = c->categories.count;
    for (size_t id = 0; id < ncat; id++)
        woe[id] = f->bins[f->bin_of[id]].woe;
    if (c->missing_indicator) {
        /* A missing value sets the most frequent category too: its weight is taken back. */
        double taken = c->most_frequent >= 0 ? woe[c->most_frequent] : 0.0;
        woe[ncat] = f->bins[f->nbins - 1].woe - taken;
    }
    return FM_OK;
}

int fm_scorecard_map_categories(fm_scorecard_feature_t *f, const fm_prep_column_t *c,
                                fm_error_t *err) {
    size_t ncat = c->categories.count;
    int has_missing = f->nbins > 0 && f->bins[f->nbins - 1].missing;
    if (has_missing != (c->missing_indicator != 0))
        return fm_error_set(err, FM_EFORMAT,
                            "scorecard feature '%s': the missing bin does not match the "
                            "preprocessing's missing indicator",
                            f->name);
    free(f->bin_of);
    f->bin_of = malloc((ncat ? ncat : 1) * sizeof *f->bin_of);
    if (!f->bin_of) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t id = 0; id < ncat; id++)
        f->bin_of[id] = -1;
    for (size_t b = 0; b < f->nbins; b++)
        for (size_t k = 0; k < f->bins[b].ncategories; k++) {
            const char *text = f->bins[b].categories[k];
            int32_t id = fm_strdict_find(&c->categories, text, strlen(text));
            if (id < 0 || f->bin_of[id] >= 0)
                return fm_error_set(err, FM_EFORMAT,
                                    "scorecard feature '%s': category '%.64s' is %s", f->name, text,
                                    id < 0 ? "not a category of the preprocessing" : "in two bins");
            f->bin_of[id] = (int32_t)b;
        }
    for (size_t id = 0; id < ncat; id++)
        if (f->bin_of[id] < 0)
            return fm_error_set(err, FM_EFORMAT,
                                "scorecard feature '%s': category '%.64s' has "
                                "no bin",
                                f->name, fm_strdict_get(&c->categories, (int32_t)id));
    return FM_OK;
}

typedef struct dropped {
    char *name;
    double iv;
    const char *why;
} dropped_t;

typedef struct fit {
    const fm_frame_t *frame;
    const int32_t *label;
    const fm_scorecard_options_t *o;
    fm_scorecard_t sc; /* features owned here until the end */
    size_t *used;      /* rows with a target */
    size_t nused;
    size_t *cols; /* frame column of each kept feature */
    dropped_t *dropped;
    size_t ndropped;
    fm_prep_t *prep;
    double *enc, *x, *y, *woe;
    int iterations;
    double log_likelihood;
} fit_t;

static void fit_deinit(fit_t *f) {
    for (size_t k = 0; k < f->sc.nfeatures; k++)
        fm_scorecard_feature_deinit(&f->sc.features[k]);
    free(f->sc.features);
    for (size_t k = 0; k < f->ndropped; k++)
        free(f->dropped[k].name);
    free(f->dropped);
    free(f->used);
    free(f->cols);
    fm_prep_free(f->prep);
    free(f->enc);
    free(f->x);
    free(f->y);
    free(f->woe);
}

/* Bins every candidate column; keeps those with two bins or more and enough IV. */
static int bin_all(fit_t *f, const size_t *cols, size_t ncols, fm_error_t *err) {
    f->sc.features = calloc(ncols ? ncols : 1, sizeof *f->sc.features);
    f->cols = calloc(ncols ? ncols : 1, sizeof *f->cols);
    f->dropped = calloc(ncols ? ncols : 1, sizeof *f->dropped);
    if (!f->sc.features || !f->cols || !f->dropped)
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t k = 0; k < ncols; k++) {
        fm_scorecard_feature_t feat;
        int rc = fm_scorecard_bin_feature(f->frame, cols[k], f->label, f->used, f->nused,
                                          &f->o->binning, &feat, err);
        if (rc) return rc;
        const char *why = feat.nbins < 2           ? "a single bin"
                          : feat.iv < f->o->min_iv ? "information value below the minimum"
                                                   : NULL;
        if (why) {
            f->dropped[f->ndropped++] = (dropped_t){feat.name, feat.iv, why};
            feat.name = NULL;
            fm_scorecard_feature_deinit(&feat);
            continue;
        }
        f->cols[f->sc.nfeatures] = cols[k];
        f->sc.features[f->sc.nfeatures++] = feat;
    }
    if (f->sc.nfeatures == 0)
        return fm_error_set(err, FM_EDATA,
                            "no feature left: each of the %zu columns has a single bin or too "
                            "little information value",
                            ncols);
    return FM_OK;
}

/* The preprocessing: the kept columns, numeric ones binned at their bins' edges. */
static int build_prep(fit_t *f, fm_error_t *err) {
    size_t max_categories = 1;
    for (size_t k = 0; k < f->sc.nfeatures; k++) {
        const fm_column_t *c = &f->frame->columns[f->cols[k]];
        if (c->type == FM_COLUMN_CATEGORICAL && c->dict.count + 1 > max_categories)
            max_categories = c->dict.count + 1;
    }
    fm_prep_options_t po = {.missing_indicators = 1, .max_categories = max_categories};
    int rc = fm_prep_fit(f->frame, f->cols, f->sc.nfeatures, f->used, f->nused, &po, &f->prep, err);
    double *edges = NULL;
    for (size_t k = 0; rc == FM_OK && k < f->sc.nfeatures; k++) {
        fm_scorecard_feature_t *feat = &f->sc.features[k];
        feat->column = k;
        if (feat->type == FM_COLUMN_CATEGORICAL) {
            rc = fm_scorecard_map_categories(feat, &f->prep->columns[k], err);
            continue;
        }
        int has_missing = feat->bins[feat->nbins - 1].missing;
        size_t nvalue = feat->nbins - (size_t)has_missing;
        free(edges);
        edges = malloc(nvalue * sizeof *edges);
        if (!edges) {
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
            break;
        }
        for (size_t b = 0; b + 1 < nvalue; b++)
            edges[b] = feat->bins[b].upper;
        rc = fm_prep_set_bins(f->prep, k, edges, nvalue - 1, has_missing, err);
    }
    free(edges);
    return rc;
}

/* The WoE design matrix x[nused * p] from the encoded training rows, and y. */
static int design(fit_t *f, fm_error_t *err) {
    size_t nf = f->prep->nfeatures, p = f->sc.nfeatures, n = f->nused;
    f->enc = malloc(n * nf * sizeof *f->enc);
    f->x = malloc(n * p * sizeof *f->x);
    f->y = malloc(n * sizeof *f->y);
    f->woe = malloc(nf * sizeof *f->woe);
    if (!f->enc || !f->x || !f->y || !f->woe) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = fm_prep_transform(f->prep, f->frame, f->used, n, f->enc, err);
    for (size_t k = 0; rc == FM_OK && k < p; k++) {
        const fm_prep_column_t *c = &f->prep->columns[k];
        rc = fm_scorecard_block_woe(&f->sc.features[k], c, f->woe + c->offset, err);
    }
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        const double *e = f->enc + i * nf;
        for (size_t k = 0; k < p; k++) {
            const fm_prep_column_t *c = &f->prep->columns[k];
            double s = 0;
            for (size_t j = c->offset; j < c->offset + c->width; j++)
                s += e[j] * f->woe[j];
            f->x[i * p + k] = s;
        }
        f->y[i] = f->label[f->used[i]] == 1;
    }
    return FM_OK;
}

static cJSON *dropped_json(const fit_t *f) {
    cJSON *a = cJSON_CreateArray();
    for (size_t k = 0; a && k < f->ndropped; k++) {
        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddItemToArray(a, d)) {
            cJSON_Delete(d);
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddStringToObject(d, "feature", f->dropped[k].name);
        fm_json_add_number(d, "iv", f->dropped[k].iv);
        cJSON_AddStringToObject(d, "reason", f->dropped[k].why);
    }
    return a;
}

/* model->info: the scorecard, the policy, training and data descriptions. */
static int describe(fit_t *f, fm_model_t *m, const char *const classes[2], fm_error_t *err) {
    cJSON *card = fm_scorecard_table_json(&f->sc);
    cJSON *policy = fm_decision_policy_to_json(&f->sc.policy);
    int ok = card && policy;
    if (ok) {
        ok = cJSON_AddStringToObject(card, "good_class", classes[0]) &&
             cJSON_AddStringToObject(card, "bad_class", classes[1]) &&
             fm_json_add_number(card, "min_share", f->o->binning.min_share) &&
             cJSON_AddNumberToObject(card, "initial_bins", (double)f->o->binning.initial_bins) &&
             fm_json_add_number(card, "category_gap", f->o->binning.category_gap) &&
             fm_json_add_number(card, "min_iv", f->o->min_iv);
        cJSON *dropped = ok ? dropped_json(f) : NULL;
        ok = ok && dropped && cJSON_AddItemToObject(card, "dropped", dropped);
        if (!ok) cJSON_Delete(dropped);
        cJSON *prot = ok ? cJSON_AddArrayToObject(card, "protected") : NULL;
        ok = ok && prot;
        for (size_t k = 0; ok && k < f->o->nprotected; k++) {
            cJSON *s = cJSON_CreateString(f->o->protected[k]);
            ok = s && cJSON_AddItemToArray(prot, s);
            if (!ok) cJSON_Delete(s);
        }
    }
    if (ok) ok = cJSON_AddItemToObject(m->info, "scorecard", card);
    if (!ok) cJSON_Delete(card);
    if (ok) {
        ok = cJSON_AddItemToObject(m->info, "decision_policy", policy);
    } else {
        cJSON_Delete(policy);
    }
    char created[32];
    fm_clock_utc_iso8601(created, sizeof created);
    ok = ok && cJSON_AddStringToObject(m->info, "created", created);
    cJSON *t = ok ? cJSON_AddObjectToObject(m->info, "training") : NULL;
    ok = t &&
         cJSON_AddStringToObject(t, "method",
                                 "scorecard: WoE binning, logistic regression (Newton)") &&
         cJSON_AddNumberToObject(t, "rows", (double)f->nused) &&
         cJSON_AddNumberToObject(t, "iterations", f->iterations) &&
         fm_json_add_number(t, "l2", FM_SCORECARD_L2) &&
         fm_json_add_number(t, "log_likelihood", f->log_likelihood);
    cJSON *d = ok ? cJSON_AddObjectToObject(m->info, "data") : NULL;
    const fm_frame_t *fr = f->frame;
    ok = d && cJSON_AddStringToObject(d, "source", fr->source ? fr->source : "") &&
         cJSON_AddStringToObject(d, "blake2b", fr->digest) &&
         cJSON_AddNumberToObject(d, "rows", (double)fr->nrows) &&
         cJSON_AddNumberToObject(d, "columns", (double)fr->ncols) &&
         cJSON_AddNumberToObject(d, "rows_missing_target", (double)(fr->nrows - f->nused));
    return ok ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
}

static int build_model(fit_t *f, const double *beta, const char *const classes[2],
                       const char *target, fm_model_t **out, fm_error_t *err) {
    fm_model_t *m = fm_model_new();
    if (!m) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t nf = f->prep->nfeatures;
    int sizes[2] = {(int)nf, 1};
    m->task = FM_TASK_BINARY;
    m->nclasses = 2;
    m->loss = FM_LOSS_BINARY;
    m->family = strdup("logistic");
    m->target = strdup(target);
    m->classes = calloc(2, sizeof *m->classes);
    int rc = m->family && m->target && m->classes ? FM_OK : FM_ENOMEM;
    if (!rc && (!(m->classes[0] = strdup(classes[0])) || !(m->classes[1] = strdup(classes[1]))))
        rc = FM_ENOMEM;
    if (rc) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = fm_net_new(sizes, 2, FM_ACT_IDENTITY, FM_ACT_SIGMOID, &m->net, err);
    if (!rc) {
        double *w = m->net->params + m->net->weight_offset[0];
        for (size_t k = 0; k < f->sc.nfeatures; k++) {
            const fm_prep_column_t *c = &f->prep->columns[k];
            for (size_t j = c->offset; j < c->offset + c->width; j++)
                w[j] = f->sc.features[k].beta * f->woe[j];
        }
        m->net->params[m->net->bias_offset[0]] = beta[0];
        m->prep = f->prep;
        f->prep = NULL;
        rc = fm_model_ready(m, err);
    }
    if (!rc) rc = describe(f, m, classes, err);
    if (!rc) {
        /* Explanations approve "good" at the probability where the score reaches approve_at. */
        const fm_scorecard_scaling_t *s = &f->sc.scaling;
        double ln_odds = (f->sc.policy.approve_at - s->offset) / s->factor;
        fm_explain_fit_options_t eo;
        fm_explain_fit_options_defaults(&eo);
        eo.approve = classes[0];
        eo.cutoff = 1.0 / (1.0 + exp(-ln_odds));
        if (!(eo.cutoff > 0 && eo.cutoff < 1)) eo.cutoff = 0.5;
        rc = fm_explain_fit(m, f->enc, f->nused, &eo, err);
    }
    if (rc) {
        fm_model_free(m);
        return rc;
    }
    *out = m;
    return FM_OK;
}

int fm_scorecard_fit(const fm_frame_t *frame, const size_t *cols, size_t ncols,
                     const int32_t *label, const char *const classes[2], const char *target,
                     const fm_scorecard_options_t *options, fm_model_t **out, fm_error_t *err) {
    *out = NULL;
    fm_scorecard_options_t defaults;
    fm_scorecard_options_defaults(&defaults);
    const fm_scorecard_options_t *o = options ? options : &defaults;
    if (!(o->min_iv >= 0) || !isfinite(o->min_iv))
        return fm_error_set(err, FM_EINVAL, "minimum information value %g must be >= 0", o->min_iv);
    if (ncols == 0) return fm_error_set(err, FM_EINVAL, "no feature columns");
    fit_t f = {.frame = frame, .label = label, .o = o};
    int rc = fm_scorecard_scaling(o->pdo, o->base_points, o->base_odds, &f.sc.scaling, err);
    if (rc) return rc;
    if (o->policy) {
        cJSON *j = fm_decision_policy_to_json(o->policy);
        rc = j ? fm_decision_policy_from_json(j, NULL, &f.sc.policy, err)
               : fm_error_set(err, FM_ENOMEM, "out of memory");
        cJSON_Delete(j);
    } else {
        f.sc.policy.approve_at = o->base_points;
        f.sc.policy.decline_below = o->base_points - 2 * o->pdo;
    }
    if (rc) return rc;
    f.used = malloc((frame->nrows ? frame->nrows : 1) * sizeof *f.used);
    if (!f.used) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t r = 0; !rc && r < frame->nrows; r++)
        if (label[r] >= 0) f.used[f.nused++] = r;
    if (!rc) rc = bin_all(&f, cols, ncols, err);
    if (!rc) rc = build_prep(&f, err);
    if (!rc) rc = design(&f, err);
    size_t p = f.sc.nfeatures;
    double *beta = rc ? NULL : malloc((p + 1) * sizeof *beta);
    if (!rc && !beta) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc)
        rc = fm_scorecard_logistic(beta, f.x, f.y, f.nused, p, FM_SCORECARD_L2, &f.iterations, err);
    double *eta = rc ? NULL : malloc(f.nused * sizeof *eta);
    if (!rc && !eta) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) f.log_likelihood = objective(beta, f.x, f.y, f.nused, p, 0.0, eta);
    free(eta);
    if (!rc) {
        f.sc.intercept = beta[0];
        for (size_t k = 0; k < p; k++) {
            f.sc.features[k].beta = beta[k + 1];
            fm_scorecard_points(&f.sc.features[k], beta[0], p, &f.sc.scaling);
        }
        rc = build_model(&f, beta, classes, target, out, err);
    }
    free(beta);
    fm_decision_policy_deinit(&f.sc.policy);
    fit_deinit(&f);
    return rc;
}
