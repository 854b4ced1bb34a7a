/*
 * Training a booster: the rows become XGBoost matrices through the array interface (the doubles
 * are read in place, as the xgboost Python package does for a NumPy array), the booster is
 * configured from fm_gbt_params_t ("hist" trees), boosted round by round with the validation loss
 * evaluated after each round, cut back to its best round when early stopping ended it, and
 * serialized to XGBoost's JSON format. The serialized bytes pass the same structural check as a
 * loaded model's, and the trained booster itself is kept for prediction (reloading it from its
 * bytes would give the same trees, at the price of parsing them again).
 *
 * Early stopping follows the xgboost package: a round improves when its loss is strictly lower
 * than the best so far; training stops after early_stopping rounds without improvement and keeps
 * the trees up to the best round.
 */
#include "gbt/gbt_internal.h"
#include "core/clock.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

/* Everything one training run holds, released at once. */
typedef struct run {
    DMatrixHandle train, valid;
    BoosterHandle booster, sliced;
} run_t;

static void run_free(run_t *r) {
    if (r->sliced) XGBoosterFree(r->sliced);
    if (r->booster) XGBoosterFree(r->booster);
    if (r->valid) XGDMatrixFree(r->valid);
    if (r->train) XGDMatrixFree(r->train);
}

static int check_params(const fm_gbt_params_t *p, fm_error_t *err) {
    const fm_gbt_shape_t *s = &p->shape;
    if ((unsigned)s->objective > FM_GBT_REGRESSION)
        return fm_error_set(err, FM_EINVAL, "gbt: unknown objective %d", (int)s->objective);
    if (s->nfeatures < 1 || s->nfeatures > UINT32_MAX)
        return fm_error_set(err, FM_EINVAL, "gbt: %zu features", s->nfeatures);
    if (s->objective == FM_GBT_MULTICLASS && (s->nclasses < 2 || s->nclasses > FM_GBT_MAX_CLASSES))
        return fm_error_set(err, FM_EINVAL, "gbt: %zu classes (2 to %d allowed)", s->nclasses,
                            FM_GBT_MAX_CLASSES);
    if (p->rounds < 1 || p->rounds > FM_GBT_MAX_ROUNDS)
        return fm_error_set(err, FM_EINVAL, "gbt: rounds must be in [1, %d], got %d",
                            FM_GBT_MAX_ROUNDS, p->rounds);
    if (p->max_depth < 1 || p->max_depth > FM_GBT_MAX_DEPTH)
        return fm_error_set(err, FM_EINVAL, "gbt: max depth must be in [1, %d], got %d",
                            FM_GBT_MAX_DEPTH, p->max_depth);
    if (!(p->eta > 0 && p->eta <= 1))
        return fm_error_set(err, FM_EINVAL, "gbt: eta must be in (0, 1], got %g", p->eta);
    if (!(p->subsample > 0 && p->subsample <= 1))
        return fm_error_set(err, FM_EINVAL, "gbt: subsample must be in (0, 1], got %g",
                            p->subsample);
    if (!(p->colsample > 0 && p->colsample <= 1))
        return fm_error_set(err, FM_EINVAL, "gbt: colsample must be in (0, 1], got %g",
                            p->colsample);
    if (!(p->min_child_weight >= 0 && isfinite(p->min_child_weight)))
        return fm_error_set(err, FM_EINVAL, "gbt: min child weight must be >= 0, got %g",
                            p->min_child_weight);
    if (!(p->lambda >= 0 && isfinite(p->lambda)))
        return fm_error_set(err, FM_EINVAL, "gbt: lambda must be >= 0, got %g", p->lambda);
    if (!(p->alpha >= 0 && isfinite(p->alpha)))
        return fm_error_set(err, FM_EINVAL, "gbt: alpha must be >= 0, got %g", p->alpha);
    if (p->early_stopping < 0)
        return fm_error_set(err, FM_EINVAL, "gbt: early stopping must be >= 0, got %d",
                            p->early_stopping);
    if (p->threads < 1)
        return fm_error_set(err, FM_EINVAL, "gbt: threads must be >= 1, got %d", p->threads);
    if (!isnan(p->base_score) &&
        (!isfinite(p->base_score) ||
         (s->objective == FM_GBT_BINARY && !(p->base_score > 0 && p->base_score < 1))))
        return fm_error_set(err, FM_EINVAL, "gbt: base score %g does not fit %s", p->base_score,
                            fm_gbt_objective_name(s->objective));
    return FM_OK;
}

/* Labels must fit the objective and weights be finite and non-negative. */
static int check_rows(const fm_gbt_params_t *p, const fm_gbt_rows_t *rows, const char *part,
                      fm_error_t *err) {
    if (rows->n > 0 && (!rows->x || !rows->label))
        return fm_error_set(err, FM_EINVAL, "gbt: %s rows without features or labels", part);
    for (size_t i = 0; i < rows->n; i++) {
        double y = rows->label[i];
        int ok;
        switch (p->shape.objective) {
        case FM_GBT_BINARY:
            ok = y == 0 || y == 1;
            break;
        case FM_GBT_MULTICLASS:
            ok = y >= 0 && y < (double)p->shape.nclasses && y == floor(y);
            break;
        default:
            ok = isfinite(y);
            break;
        }
        if (!ok)
            return fm_error_set(err, FM_EINVAL, "gbt: %s row %zu: label %g does not fit %s", part,
                                i, y, fm_gbt_objective_name(p->shape.objective));
        if (rows->weight && !(rows->weight[i] >= 0 && isfinite(rows->weight[i])))
            return fm_error_set(err, FM_EINVAL, "gbt: %s row %zu: weight %g is not finite >= 0",
                                part, i, rows->weight[i]);
    }
    return FM_OK;
}

/* The array interface of a C array of doubles: rows x cols (cols 0: a vector). */
static void array_interface(char *buf, size_t size, const double *data, size_t rows, size_t cols) {
    if (cols)
        snprintf(buf, size,
                 "{\"data\":[%" PRIuPTR ",true],\"shape\":[%zu,%zu],\"strides\":null,"
                 "\"typestr\":\"<f8\",\"version\":3}",
                 (uintptr_t)data, rows, cols);
    else
        snprintf(buf, size,
                 "{\"data\":[%" PRIuPTR ",true],\"shape\":[%zu],\"strides\":null,"
                 "\"typestr\":\"<f8\",\"version\":3}",
                 (uintptr_t)data, rows);
}

static int make_matrix(const fm_gbt_rows_t *rows, size_t nf, int threads, DMatrixHandle *out,
                       fm_error_t *err) {
    char array[192], config[64];
    array_interface(array, sizeof array, rows->x, rows->n, nf);
    snprintf(config, sizeof config, "{\"missing\":NaN,\"nthread\":%d}", threads);
    if (XGDMatrixCreateFromDense(array, config, out) != 0)
        return fm_gbt_library_error(err, FM_ENOMEM, "training matrix");
    array_interface(array, sizeof array, rows->label, rows->n, 0);
    if (XGDMatrixSetInfoFromInterface(*out, "label", array) != 0)
        return fm_gbt_library_error(err, FM_EINVAL, "training labels");
    if (rows->weight) {
        array_interface(array, sizeof array, rows->weight, rows->n, 0);
        if (XGDMatrixSetInfoFromInterface(*out, "weight", array) != 0)
            return fm_gbt_library_error(err, FM_EINVAL, "training weights");
    }
    return FM_OK;
}

static int set_param(BoosterHandle b, const char *name, const char *value, fm_error_t *err) {
    if (XGBoosterSetParam(b, name, value) == 0) return FM_OK;
    char what[64];
    snprintf(what, sizeof what, "parameter %s", name);
    return fm_gbt_library_error(err, FM_EINVAL, what);
}

static int set_number(BoosterHandle b, const char *name, double v, fm_error_t *err) {
    char text[32];
    snprintf(text, sizeof text, "%.17g", v);
    return set_param(b, name, text, err);
}

static int configure(BoosterHandle b, const fm_gbt_params_t *p, fm_error_t *err) {
    const fm_gbt_shape_t *s = &p->shape;
    char text[32];
    int rc = set_param(b, "booster", "gbtree", err);
    if (!rc) rc = set_param(b, "tree_method", "hist", err);
    if (!rc) rc = set_param(b, "objective", fm_gbt_objective_name(s->objective), err);
    if (!rc) rc = set_param(b, "eval_metric", fm_gbt_metric_name(s->objective), err);
    if (!rc && s->objective == FM_GBT_MULTICLASS)
        rc = set_number(b, "num_class", (double)s->nclasses, err);
    if (!rc) rc = set_number(b, "max_depth", p->max_depth, err);
    if (!rc) rc = set_number(b, "eta", p->eta, err);
    if (!rc) rc = set_number(b, "subsample", p->subsample, err);
    if (!rc) rc = set_number(b, "colsample_bytree", p->colsample, err);
    if (!rc) rc = set_number(b, "min_child_weight", p->min_child_weight, err);
    if (!rc) rc = set_number(b, "lambda", p->lambda, err);
    if (!rc) rc = set_number(b, "alpha", p->alpha, err);
    if (!rc) rc = set_number(b, "nthread", p->threads, err);
    if (!rc) {
        snprintf(text, sizeof text, "%" PRIu64, p->seed % 2147483648u);
        rc = set_param(b, "seed", text, err);
    }
    if (!rc && !isnan(p->base_score)) rc = set_number(b, "base_score", p->base_score, err);
    return rc;
}

/* The validation loss of round `round` (0-based): XGBoost answers "[i]\tvalid-<metric>:<value>".
 */
static int evaluate(run_t *r, int round, const char *metric, double *loss, fm_error_t *err) {
    const char *names[1] = {"valid"};
    const char *text = NULL;
    if (XGBoosterEvalOneIter(r->booster, round, &r->valid, names, 1, &text) != 0)
        return fm_gbt_library_error(err, FM_EDATA, "validation");
    const char *colon = text ? strrchr(text, ':') : NULL;
    char *end = NULL;
    *loss = colon ? strtod(colon + 1, &end) : NAN;
    if (!end || end == colon + 1 || !strstr(text, metric))
        return fm_error_set(err, FM_EDATA, "validation: cannot read the %s in XGBoost's '%.80s'",
                            metric, text ? text : "");
    return FM_OK;
}

int fm_gbt_train(const fm_gbt_params_t *params, const fm_gbt_rows_t *train,
                 const fm_gbt_rows_t *valid, fm_gbt_round_fn on_round, void *context,
                 fm_gbt_t **out, fm_gbt_fit_t *fit, fm_error_t *err) {
    *out = NULL;
    const char *metric = fm_gbt_metric_name(params->shape.objective);
    fm_gbt_fit_t f = {0, 0, 0, NAN, metric, 0.0};
    int rc = check_params(params, err);
    if (!rc && train->n == 0) rc = fm_error_set(err, FM_EINVAL, "gbt: no training rows");
    if (!rc) rc = check_rows(params, train, "training", err);
    int validate = valid && valid->n > 0;
    if (!rc && validate) rc = check_rows(params, valid, "validation", err);
    if (rc) return rc;

    run_t r = {0};
    size_t nf = params->shape.nfeatures;
    double start = fm_clock_seconds();
    rc = make_matrix(train, nf, params->threads, &r.train, err);
    if (!rc && validate) rc = make_matrix(valid, nf, params->threads, &r.valid, err);
    if (!rc) {
        DMatrixHandle cache[2] = {r.train, r.valid};
        if (XGBoosterCreate(cache, validate ? 2 : 1, &r.booster) != 0)
            rc = fm_gbt_library_error(err, FM_ENOMEM, "booster");
    }
    if (!rc) rc = configure(r.booster, params, err);

    double best = INFINITY, last = NAN;
    int wait = 0;
    for (int i = 0; !rc && i < params->rounds; i++) {
        if (XGBoosterUpdateOneIter(r.booster, i, r.train) != 0) {
            char what[48];
            snprintf(what, sizeof what, "round %d", i + 1);
            rc = fm_gbt_library_error(err, FM_EDATA, what);
            break;
        }
        double loss = NAN;
        if (validate && (rc = evaluate(&r, i, metric, &loss, err))) break;
        f.rounds_run = i + 1;
        last = loss;
        if (on_round) on_round(context, i + 1, loss, metric);
        if (!validate) continue;
        if (loss < best || f.best_round == 0) {
            best = loss;
            f.best_round = i + 1;
            wait = 0;
        } else if (params->early_stopping > 0 && ++wait >= params->early_stopping) {
            f.stopped_early = 1;
            break;
        }
    }
    /* Without early stopping (or validation rows) every round is kept, and so is its loss. */
    if (params->early_stopping == 0 || !validate) {
        f.best_round = f.rounds_run;
        f.best_loss = last;
    } else {
        f.best_loss = best;
    }
    BoosterHandle *keep = &r.booster;
    if (!rc && f.best_round < f.rounds_run) {
        if (XGBoosterSlice(r.booster, 0, f.best_round, 1, &r.sliced) != 0)
            rc = fm_gbt_library_error(err, FM_ENOMEM, "keeping the best round");
        keep = &r.sliced;
    }
    f.boosting_seconds = fm_clock_seconds() - start;
    if (!rc) {
        bst_ulong len = 0;
        const char *bytes = NULL;
        if (XGBoosterSaveModelToBuffer(*keep, "{\"format\":\"json\"}", &len, &bytes) != 0)
            rc = fm_gbt_library_error(err, FM_ENOMEM, "saving the booster");
        else if (!(rc = fm_gbt_adopt(*keep, bytes, (size_t)len, &params->shape, out, err)))
            *keep = NULL; /* *out owns it now */
    }
    run_free(&r);
    if (!rc && fit) *fit = f;
    return rc;
}
