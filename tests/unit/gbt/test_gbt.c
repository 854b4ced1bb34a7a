/*
 * Tests of the gbt area: boosters trained on synthetic data for each objective, their predictions
 * checked against a tree walk written out here from the booster's own JSON (XGBoost's rules:
 * features and thresholds in single precision, go left when x < threshold, missing values follow
 * default_left, leaves summed per class, then the sigmoid or softmax), the validation loss
 * XGBoost reports checked against the loss computed here from the predictions, determinism for a
 * seed, early stopping keeping the best round, weights, settings and labels that must be refused,
 * and concurrent and single-threaded prediction.
 *
 * Loading is attacked: every field the structural check covers is broken in turn (child links
 * out of range, cycles, shared children, split features past the row, wrong class or feature
 * counts, duplicate keys, escaped NULs, categorical splits, other versions and boosters), and
 * random truncations, bit flips and structural changes must give an error or a booster that
 * predicts, never a crash.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/rng.h"
#include "gbt/gbt.h"
#include "fm_test.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>

/* ---- Synthetic data ------------------------------------------------------------------------- */

typedef struct data {
    size_t n, nf;
    double *x, *label, *weight;
} data_t;

static void data_free(data_t *d) {
    free(d->x);
    free(d->label);
    free(d->weight);
}

/* n rows of nf normal features; some missing (NaN) values in feature 1. Labels: binary from a
 * noisy linear score, multiclass (3) from which of three scores is largest, regression a noisy
 * nonlinear function in the hundreds (so that the base score matters). */
static data_t make_data(size_t n, size_t nf, fm_gbt_objective_t objective, uint64_t seed) {
    data_t d = {n, nf, malloc(n * nf * sizeof(double)), malloc(n * sizeof(double)), NULL};
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        double *x = d.x + i * nf;
        for (size_t j = 0; j < nf; j++)
            x[j] = fm_rng_normal(&rng);
        if (i % 17 == 3) x[1] = NAN;
        double noise = fm_rng_normal(&rng);
        double x1 = isnan(x[1]) ? 0.5 : x[1];
        switch (objective) {
        case FM_GBT_BINARY:
            d.label[i] = x[0] + 0.8 * x1 * x1 - 0.5 * x[2] + 0.7 * noise > 0.4 ? 1.0 : 0.0;
            break;
        case FM_GBT_MULTICLASS: {
            double s[3] = {x[0] + 0.5 * noise, x1 - x[2], 0.6 * x[nf - 1] + 0.3};
            d.label[i] = s[0] > s[1] ? (s[0] > s[2] ? 0 : 2) : (s[1] > s[2] ? 1 : 2);
            break;
        }
        case FM_GBT_REGRESSION:
            d.label[i] = 300.0 + 40.0 * x[0] + 25.0 * sin(2.0 * x[2]) + 10.0 * x1 + 5.0 * noise;
            break;
        }
    }
    return d;
}

static fm_gbt_rows_t rows_of(const data_t *d, size_t start, size_t count) {
    return (fm_gbt_rows_t){d->x + start * d->nf, d->label + start,
                           d->weight ? d->weight + start : NULL, count};
}

static fm_gbt_params_t params_for(fm_gbt_objective_t objective, size_t nf, int rounds) {
    fm_gbt_params_t p = {
        .shape = {objective, objective == FM_GBT_MULTICLASS ? 3 : 0, nf},
        .rounds = rounds,
        .max_depth = 3,
        .eta = 0.3,
        .subsample = 0.8,
        .colsample = 0.8,
        .min_child_weight = 1.0,
        .lambda = 1.0,
        .alpha = 0.0,
        .early_stopping = 0,
        .base_score = NAN,
        .seed = 7,
        .threads = 1,
    };
    return p;
}

/* Trains on the first 80% of d, validating on the rest. */
static fm_gbt_t *train_on(const data_t *d, const fm_gbt_params_t *p, fm_gbt_fit_t *fit) {
    size_t ntrain = d->n * 4 / 5;
    fm_gbt_rows_t train = rows_of(d, 0, ntrain), valid = rows_of(d, ntrain, d->n - ntrain);
    fm_gbt_t *g = NULL;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_gbt_train(p, &train, &valid, NULL, NULL, &g, fit, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    return g;
}

/* ---- The reference: a tree walk over the booster's JSON ------------------------------------- */

static double *json_numbers(const cJSON *obj, const char *key, size_t *n) {
    const cJSON *a = cJSON_GetObjectItem(obj, key);
    *n = (size_t)cJSON_GetArraySize(a);
    double *v = malloc((*n ? *n : 1) * sizeof *v);
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, a) v[i++] = c->valuedouble;
    return v;
}

static void reference_predict(const fm_gbt_t *g, const double *x, size_t n, double *out) {
    size_t len;
    const unsigned char *bytes = fm_gbt_bytes(g, &len);
    cJSON *root = cJSON_ParseWithLength((const char *)bytes, len);
    const cJSON *learner = cJSON_GetObjectItem(root, "learner");
    const cJSON *model =
        cJSON_GetObjectItem(cJSON_GetObjectItem(learner, "gradient_booster"), "model");
    const cJSON *trees = cJSON_GetObjectItem(model, "trees");
    const fm_gbt_info_t *info = fm_gbt_info(g);
    double base =
        atof(cJSON_GetObjectItem(cJSON_GetObjectItem(learner, "learner_model_param"), "base_score")
                 ->valuestring);
    size_t nf = info->shape.nfeatures, groups = fm_gbt_output_width(g);
    double margin_base = base;
    if (info->shape.objective == FM_GBT_BINARY) margin_base = log(base / (1.0 - base));
    for (size_t r = 0; r < n; r++)
        for (size_t k = 0; k < groups; k++)
            out[r * groups + k] = 0.0;
    size_t t = 0;
    const cJSON *tree;
    cJSON_ArrayForEach(tree, trees) {
        size_t nn;
        double *left = json_numbers(tree, "left_children", &nn);
        double *right = json_numbers(tree, "right_children", &nn);
        double *feature = json_numbers(tree, "split_indices", &nn);
        double *cond = json_numbers(tree, "split_conditions", &nn);
        double *dleft = json_numbers(tree, "default_left", &nn);
        for (size_t r = 0; r < n; r++) {
            int node = 0;
            while (left[node] >= 0) {
                double v = x[r * nf + (size_t)feature[node]];
                if (isnan(v))
                    node = dleft[node] ? (int)left[node] : (int)right[node];
                else
                    node = (float)v < (float)cond[node] ? (int)left[node] : (int)right[node];
            }
            out[r * groups + t % groups] += (float)cond[node];
        }
        free(left);
        free(right);
        free(feature);
        free(cond);
        free(dleft);
        t++;
    }
    for (size_t r = 0; r < n; r++) {
        double *o = out + r * groups;
        for (size_t k = 0; k < groups; k++)
            o[k] += margin_base;
        if (info->shape.objective == FM_GBT_BINARY) {
            o[0] = 1.0 / (1.0 + exp(-o[0]));
        } else if (info->shape.objective == FM_GBT_MULTICLASS) {
            double top = o[0], sum = 0.0;
            for (size_t k = 1; k < groups; k++)
                top = o[k] > top ? o[k] : top;
            for (size_t k = 0; k < groups; k++)
                sum += (o[k] = exp(o[k] - top));
            for (size_t k = 0; k < groups; k++)
                o[k] /= sum;
        }
    }
    cJSON_Delete(root);
}

static double *predict(const fm_gbt_t *g, const double *x, size_t n) {
    double *out = malloc((n ? n : 1) * fm_gbt_output_width(g) * sizeof *out);
    fm_error_t err;
    FM_CHECK_MSG(fm_gbt_predict(g, x, n, out, &err) == 0, "%s", err.msg);
    return out;
}

/* The loss XGBoost evaluates, computed here from predictions (weights optional). */
static double loss_of(fm_gbt_objective_t objective, const double *p, const data_t *d, size_t start,
                      size_t n) {
    double sum = 0.0, wsum = 0.0;
    const double eps = 1e-16;
    for (size_t i = 0; i < n; i++) {
        double y = d->label[start + i], w = d->weight ? d->weight[start + i] : 1.0, l;
        if (objective == FM_GBT_BINARY) {
            double q = fmin(fmax(p[i], eps), 1 - eps);
            l = -(y * log(q) + (1 - y) * log(1 - q));
        } else if (objective == FM_GBT_MULTICLASS) {
            l = -log(fmax(p[i * 3 + (size_t)y], eps));
        } else {
            l = (p[i] - y) * (p[i] - y);
        }
        sum += w * l;
        wsum += w;
    }
    return objective == FM_GBT_REGRESSION ? sqrt(sum / wsum) : sum / wsum;
}

static void check_objective(fm_gbt_objective_t objective) {
    data_t d = make_data(1500, 5, objective, 11 + (uint64_t)objective);
    fm_gbt_params_t p = params_for(objective, d.nf, 40);
    if (objective == FM_GBT_REGRESSION) p.base_score = 300.0;
    fm_gbt_fit_t fit;
    fm_gbt_t *g = train_on(&d, &p, &fit);
    if (!g) {
        data_free(&d);
        return;
    }
    const fm_gbt_info_t *info = fm_gbt_info(g);
    size_t width = fm_gbt_output_width(g);
    FM_CHECK_INT(width, objective == FM_GBT_MULTICLASS ? 3 : 1);
    FM_CHECK_INT(fit.rounds_run, 40);
    FM_CHECK_INT(fit.best_round, 40);
    FM_CHECK_INT(fit.stopped_early, 0);
    FM_CHECK_INT(info->rounds, 40);
    FM_CHECK_INT(info->trees, 40 * width);
    FM_CHECK(info->max_depth >= 1 && info->max_depth <= 3);
    FM_CHECK(info->leaves >= info->trees);
    FM_CHECK_INT(info->version[0], 1);
    if (objective == FM_GBT_REGRESSION) FM_CHECK_NEAR(info->base_score, 300.0, 1e-4);

    double *got = predict(g, d.x, d.n);
    double *ref = malloc(d.n * width * sizeof *ref);
    reference_predict(g, d.x, d.n, ref);
    char label[80];
    snprintf(label, sizeof label, "%s vs the tree walk", fm_gbt_objective_name(objective));
    double tol = objective == FM_GBT_REGRESSION ? 1e-3 : 2e-6;
    FM_CHECK(fm_test_max_diff(label, got, ref, d.n * width) < tol);
    for (size_t r = 0; objective == FM_GBT_MULTICLASS && r < d.n; r++)
        FM_CHECK_NEAR(got[3 * r] + got[3 * r + 1] + got[3 * r + 2], 1.0, 1e-6);

    /* The reported validation loss is the loss of the kept booster's predictions. */
    size_t ntrain = d.n * 4 / 5;
    double mine = loss_of(objective, got + ntrain * width, &d, ntrain, d.n - ntrain);
    printf("  %-40s %.9g vs %.9g\n", fit.metric, fit.best_loss, mine);
    FM_CHECK_NEAR(fit.best_loss, mine, objective == FM_GBT_REGRESSION ? 1e-4 : 1e-6);
    FM_CHECK_STR(fit.metric, objective == FM_GBT_BINARY       ? "logloss"
                             : objective == FM_GBT_MULTICLASS ? "mlogloss"
                                                              : "rmse");
    /* It learned something. */
    if (objective == FM_GBT_BINARY) FM_CHECK(mine < 0.5);
    if (objective == FM_GBT_REGRESSION) FM_CHECK(mine < 20.0);

    /* Loading the bytes again gives the same booster and predictions. */
    size_t len;
    const unsigned char *bytes = fm_gbt_bytes(g, &len);
    fm_gbt_t *again = NULL;
    fm_error_t err;
    FM_CHECK_MSG(fm_gbt_load(bytes, len, &p.shape, &again, &err) == 0, "%s", err.msg);
    if (again) {
        double *p2 = predict(again, d.x, d.n);
        FM_CHECK(memcmp(p2, got, d.n * width * sizeof *p2) == 0);
        free(p2);
    }
    fm_gbt_free(again);
    free(got);
    free(ref);
    fm_gbt_free(g);
    data_free(&d);
}

static void test_binary(void) {
    check_objective(FM_GBT_BINARY);
}

static void test_multiclass(void) {
    check_objective(FM_GBT_MULTICLASS);
}

static void test_regression(void) {
    check_objective(FM_GBT_REGRESSION);
}

/* ---- Training behaviour --------------------------------------------------------------------- */

static int same_bytes(const fm_gbt_t *a, const fm_gbt_t *b) {
    size_t la, lb;
    const unsigned char *pa = fm_gbt_bytes(a, &la), *pb = fm_gbt_bytes(b, &lb);
    return la == lb && memcmp(pa, pb, la) == 0;
}

static void test_deterministic(void) {
    data_t d = make_data(1200, 5, FM_GBT_BINARY, 3);
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, d.nf, 25);
    fm_gbt_t *a = train_on(&d, &p, NULL), *b = train_on(&d, &p, NULL);
    p.seed = 8;
    fm_gbt_t *c = train_on(&d, &p, NULL);
    p.seed = 7;
    p.threads = 2;
    fm_gbt_t *t2a = train_on(&d, &p, NULL), *t2b = train_on(&d, &p, NULL);
    if (a && b && c && t2a && t2b) {
        FM_CHECK(same_bytes(a, b));
        FM_CHECK(!same_bytes(a, c)); /* subsampling follows the seed */
        FM_CHECK(same_bytes(t2a, t2b));
    }
    fm_gbt_free(a);
    fm_gbt_free(b);
    fm_gbt_free(c);
    fm_gbt_free(t2a);
    fm_gbt_free(t2b);
    data_free(&d);
}

typedef struct trace {
    int calls;
    double losses[512];
} trace_t;

static void record_round(void *context, int round, double loss, const char *metric) {
    trace_t *t = context;
    FM_CHECK_INT(round, t->calls + 1);
    FM_CHECK_STR(metric, "logloss");
    if (t->calls < 512) t->losses[t->calls] = loss;
    t->calls++;
}

static void test_early_stopping(void) {
    /* Small, noisy data and a high learning rate overfit soon. */
    data_t d = make_data(400, 5, FM_GBT_BINARY, 21);
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, d.nf, 400);
    p.eta = 0.5;
    p.max_depth = 6;
    p.early_stopping = 10;
    size_t ntrain = 300;
    fm_gbt_rows_t train = rows_of(&d, 0, ntrain), valid = rows_of(&d, ntrain, d.n - ntrain);
    trace_t trace = {0};
    fm_gbt_fit_t fit;
    fm_gbt_t *g = NULL;
    fm_error_t err;
    FM_CHECK_MSG(fm_gbt_train(&p, &train, &valid, record_round, &trace, &g, &fit, &err) == 0, "%s",
                 err.msg);
    if (!g) {
        data_free(&d);
        return;
    }
    FM_CHECK_INT(fit.stopped_early, 1);
    FM_CHECK(fit.rounds_run < 400);
    FM_CHECK_INT(trace.calls, fit.rounds_run);
    FM_CHECK_INT(fit.rounds_run, fit.best_round + 10);
    /* The kept round has the lowest loss of all rounds (the first of equal ones). */
    int best = 0;
    for (int i = 1; i < trace.calls && i < 512; i++)
        if (trace.losses[i] < trace.losses[best]) best = i;
    FM_CHECK_INT(fit.best_round, best + 1);
    FM_CHECK(fit.best_loss == trace.losses[best]);
    FM_CHECK_INT(fm_gbt_info(g)->rounds, fit.best_round);
    double *got = predict(g, d.x + ntrain * d.nf, d.n - ntrain);
    FM_CHECK_NEAR(loss_of(FM_GBT_BINARY, got, &d, ntrain, d.n - ntrain), fit.best_loss, 1e-6);
    free(got);
    fm_gbt_free(g);

    /* Without validation rows there is nothing to stop on: every round is kept. */
    FM_CHECK_MSG(fm_gbt_train(&p, &train, NULL, NULL, NULL, &g, &fit, &err) == 0, "%s", err.msg);
    FM_CHECK_INT(fit.rounds_run, 400);
    FM_CHECK_INT(fit.best_round, 400);
    FM_CHECK(isnan(fit.best_loss));
    fm_gbt_free(g);
    data_free(&d);
}

static void test_weights(void) {
    data_t d = make_data(1000, 4, FM_GBT_BINARY, 5);
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, d.nf, 20);
    p.subsample = 1.0;
    fm_gbt_t *plain = train_on(&d, &p, NULL);
    d.weight = malloc(d.n * sizeof *d.weight);
    for (size_t i = 0; i < d.n; i++)
        d.weight[i] = 1.0;
    fm_gbt_t *ones = train_on(&d, &p, NULL);
    /* Positive rows five times as heavy: predictions move up on average. */
    for (size_t i = 0; i < d.n; i++)
        d.weight[i] = d.label[i] == 1 ? 5.0 : 1.0;
    fm_gbt_fit_t fit;
    fm_gbt_t *heavy = train_on(&d, &p, &fit);
    if (plain && ones && heavy) {
        FM_CHECK(same_bytes(plain, ones));
        double *a = predict(plain, d.x, d.n), *b = predict(heavy, d.x, d.n);
        double ma = 0, mb = 0;
        for (size_t i = 0; i < d.n; i++) {
            ma += a[i];
            mb += b[i];
        }
        printf("  mean P(1): unweighted %.4f, positives x5 %.4f\n", ma / d.n, mb / d.n);
        FM_CHECK(mb > ma + 0.05 * d.n);
        /* The validation loss is weighted as the weights say. */
        size_t ntrain = d.n * 4 / 5;
        FM_CHECK_NEAR(fit.best_loss, loss_of(FM_GBT_BINARY, b + ntrain, &d, ntrain, d.n - ntrain),
                      1e-6);
        free(a);
        free(b);
    }
    fm_gbt_free(plain);
    fm_gbt_free(ones);
    fm_gbt_free(heavy);
    data_free(&d);
}

static void expect_train_refused(const fm_gbt_params_t *p, const data_t *d, const char *want) {
    fm_gbt_rows_t train = rows_of(d, 0, d->n);
    fm_gbt_t *g = (fm_gbt_t *)1;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_gbt_train(p, &train, NULL, NULL, NULL, &g, NULL, &err);
    FM_CHECK_MSG(rc == FM_EINVAL, "rc %d for '%s': %s", rc, want, err.msg);
    FM_CHECK(g == NULL);
    FM_CHECK_MSG(strstr(err.msg, want) != NULL, "'%s' not in '%s'", want, err.msg);
}

static void test_refused_settings(void) {
    data_t d = make_data(100, 3, FM_GBT_BINARY, 1);
    fm_gbt_params_t base = params_for(FM_GBT_BINARY, d.nf, 5), p;
    p = base, p.rounds = 0, expect_train_refused(&p, &d, "rounds");
    p = base, p.rounds = FM_GBT_MAX_ROUNDS + 1, expect_train_refused(&p, &d, "rounds");
    p = base, p.max_depth = 0, expect_train_refused(&p, &d, "max depth");
    p = base, p.max_depth = FM_GBT_MAX_DEPTH + 1, expect_train_refused(&p, &d, "max depth");
    p = base, p.eta = 0, expect_train_refused(&p, &d, "eta");
    p = base, p.eta = NAN, expect_train_refused(&p, &d, "eta");
    p = base, p.subsample = 1.5, expect_train_refused(&p, &d, "subsample");
    p = base, p.colsample = 0, expect_train_refused(&p, &d, "colsample");
    p = base, p.min_child_weight = -1, expect_train_refused(&p, &d, "min child weight");
    p = base, p.lambda = INFINITY, expect_train_refused(&p, &d, "lambda");
    p = base, p.alpha = -0.1, expect_train_refused(&p, &d, "alpha");
    p = base, p.early_stopping = -1, expect_train_refused(&p, &d, "early stopping");
    p = base, p.threads = 0, expect_train_refused(&p, &d, "threads");
    p = base, p.base_score = 1.0, expect_train_refused(&p, &d, "base score");
    p = base, p.shape.nfeatures = 0, expect_train_refused(&p, &d, "features");
    p = base, p.shape.objective = FM_GBT_MULTICLASS, p.shape.nclasses = 1;
    expect_train_refused(&p, &d, "classes");
    p = base, p.shape.objective = (fm_gbt_objective_t)7, expect_train_refused(&p, &d, "objective");

    /* Labels and weights that do not fit. */
    d.label[10] = 2.0;
    expect_train_refused(&base, &d, "row 10: label 2");
    d.label[10] = 1.0;
    p = base, p.shape.objective = FM_GBT_MULTICLASS, p.shape.nclasses = 3;
    d.label[4] = 1.5;
    expect_train_refused(&p, &d, "row 4: label 1.5");
    d.label[4] = 3.0;
    expect_train_refused(&p, &d, "row 4: label 3");
    d.label[4] = 0.0;
    p = base, p.shape.objective = FM_GBT_REGRESSION, d.label[7] = NAN;
    expect_train_refused(&p, &d, "row 7: label nan");
    d.label[7] = 1.0;
    d.weight = calloc(d.n, sizeof *d.weight);
    d.weight[3] = -1.0;
    expect_train_refused(&base, &d, "row 3: weight -1");
    d.weight[3] = NAN;
    expect_train_refused(&base, &d, "row 3: weight nan");
    free(d.weight);
    d.weight = NULL;
    fm_gbt_rows_t none = {d.x, d.label, NULL, 0};
    fm_gbt_t *g = NULL;
    fm_error_t err;
    FM_CHECK(fm_gbt_train(&base, &none, NULL, NULL, NULL, &g, NULL, &err) == FM_EINVAL);
    FM_CHECK(strstr(err.msg, "no training rows") != NULL);
    data_free(&d);
}

/* ---- Prediction ----------------------------------------------------------------------------- */

typedef struct shared {
    const fm_gbt_t *g;
    const data_t *d;
    const double *want;
    int failures;
} shared_t;

static void *predict_many(void *arg) {
    shared_t *s = arg;
    double out[64];
    for (int rep = 0; rep < 40; rep++) {
        for (size_t start = 0; start + 64 <= s->d->n; start += 64) {
            size_t n = 1 + (start / 64 + (size_t)rep) % 64;
            if (fm_gbt_predict(s->g, s->d->x + start * s->d->nf, n, out, NULL) != 0 ||
                memcmp(out, s->want + start, n * sizeof *out) != 0)
                s->failures++;
        }
    }
    return NULL;
}

static void test_concurrent_predictions(void) {
    data_t d = make_data(1024, 5, FM_GBT_BINARY, 9);
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, d.nf, 30);
    fm_gbt_t *g = train_on(&d, &p, NULL);
    if (!g) {
        data_free(&d);
        return;
    }
    double *want = predict(g, d.x, d.n);
    shared_t s[4];
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) {
        s[t] = (shared_t){g, &d, want, 0};
        FM_CHECK(pthread_create(&threads[t], NULL, predict_many, &s[t]) == 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        FM_CHECK_INT(s[t].failures, 0);
    }
    /* Zero rows: nothing to do, nothing written. */
    double sentinel = 42.0;
    FM_CHECK_INT(fm_gbt_predict(g, NULL, 0, &sentinel, NULL), 0);
    FM_CHECK(sentinel == 42.0);
    free(want);
    fm_gbt_free(g);
    data_free(&d);
}

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
           u.ru_stime.tv_usec * 1e-6;
}

static void test_one_thread_per_prediction(void) {
    /* Trained with 2 threads; predictions must still use only the calling thread: the process's
     * CPU time may not exceed its wall time (with slack for the clock's granularity). */
    data_t d = make_data(20000, 8, FM_GBT_BINARY, 13);
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, d.nf, 150);
    p.max_depth = 6;
    p.threads = 2;
    fm_gbt_t *g = train_on(&d, &p, NULL);
    if (!g) {
        data_free(&d);
        return;
    }
    double *out = malloc(d.n * sizeof *out);
    double wall0 = fm_clock_seconds(), cpu0 = cpu_seconds();
    for (int rep = 0; rep < 5; rep++)
        FM_CHECK_INT(fm_gbt_predict(g, d.x, d.n, out, NULL), 0);
    double wall = fm_clock_seconds() - wall0, cpu = cpu_seconds() - cpu0;
    printf("  5 x %zu rows: wall %.3f s, cpu %.3f s\n", d.n, wall, cpu);
    FM_CHECK_MSG(cpu <= 1.25 * wall + 0.02, "cpu %.3f s for wall %.3f s", cpu, wall);
    free(out);
    fm_gbt_free(g);
    data_free(&d);
}

static void test_describe(void) {
    data_t d = make_data(300, 3, FM_GBT_MULTICLASS, 2);
    fm_gbt_params_t p = params_for(FM_GBT_MULTICLASS, d.nf, 4);
    fm_gbt_t *g = train_on(&d, &p, NULL);
    if (!g) {
        data_free(&d);
        return;
    }
    cJSON *j = fm_gbt_describe(g);
    size_t len;
    fm_gbt_bytes(g, &len);
    FM_CHECK_STR(cJSON_GetObjectItem(j, "library")->valuestring, "xgboost");
    FM_CHECK_STR(cJSON_GetObjectItem(j, "format")->valuestring, "json");
    FM_CHECK_STR(cJSON_GetObjectItem(j, "objective")->valuestring, "multi:softprob");
    FM_CHECK_INT(cJSON_GetObjectItem(j, "rounds")->valuedouble, 4);
    FM_CHECK_INT(cJSON_GetObjectItem(j, "trees")->valuedouble, 12);
    FM_CHECK_INT(cJSON_GetObjectItem(j, "classes")->valuedouble, 3);
    FM_CHECK_INT(cJSON_GetObjectItem(j, "features")->valuedouble, 3);
    FM_CHECK_INT(cJSON_GetObjectItem(j, "bytes")->valuedouble, len);
    FM_CHECK(cJSON_GetObjectItem(j, "max_depth")->valuedouble <= 3);
    FM_CHECK_STR(cJSON_GetObjectItem(j, "written_by")->valuestring, "1.7.4");
    cJSON_Delete(j);
    fm_gbt_free(g);
    fm_gbt_free(NULL);
    data_free(&d);
}

/* ---- Damaged boosters ----------------------------------------------------------------------- */

/* A small binary booster (3 features, 3 rounds of depth-3 trees) as parsed JSON. */
static fm_gbt_t *small_booster(fm_gbt_shape_t *shape) {
    data_t d = make_data(400, 3, FM_GBT_BINARY, 4);
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, d.nf, 3);
    fm_gbt_t *g = train_on(&d, &p, NULL);
    *shape = p.shape;
    data_free(&d);
    return g;
}

/* Prints JSON as XGBoost writes it. XGBoost tells integers from numbers by their text (0 is an
 * integer, 0.0 a number) and refuses the wrong kind, so the node arrays of floats keep a decimal
 * point, which cJSON's printer would drop. */
static void print_json(fm_buf_t *b, const cJSON *item, int floats) {
    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        int object = cJSON_IsObject(item);
        fm_buf_putc(b, object ? '{' : '[');
        for (const cJSON *c = item->child; c; c = c->next) {
            if (c != item->child) fm_buf_putc(b, ',');
            int child_floats = floats;
            if (object) {
                fm_buf_json_string(b, c->string, strlen(c->string));
                fm_buf_putc(b, ':');
                child_floats =
                    !strcmp(c->string, "split_conditions") || !strcmp(c->string, "base_weights") ||
                    !strcmp(c->string, "loss_changes") || !strcmp(c->string, "sum_hessian");
            }
            print_json(b, c, child_floats);
        }
        fm_buf_putc(b, object ? '}' : ']');
    } else if (cJSON_IsNumber(item)) {
        double v = item->valuedouble;
        char text[64];
        if (floats) {
            snprintf(text, sizeof text, "%.9g", v);
            if (!strpbrk(text, ".eEn")) strcat(text, ".0");
        } else {
            snprintf(text, sizeof text, v == floor(v) && fabs(v) < 1e15 ? "%.0f" : "%.17g", v);
        }
        fm_buf_puts(b, text);
    } else if (cJSON_IsString(item)) {
        fm_buf_json_string(b, item->valuestring, strlen(item->valuestring));
    } else {
        fm_buf_puts(b, cJSON_IsTrue(item) ? "true" : cJSON_IsFalse(item) ? "false" : "null");
    }
}

static char *json_text(const cJSON *root) {
    fm_buf_t b = FM_BUF_INIT;
    print_json(&b, root, 0);
    fm_buf_putc(&b, '\0');
    return fm_buf_take(&b);
}

/* Loads text (n bytes) and expects FM_EFORMAT with want in the message. */
static void expect_load_refused(const char *text, size_t n, const fm_gbt_shape_t *shape,
                                const char *want) {
    fm_gbt_t *g = (fm_gbt_t *)1;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_gbt_load(text, n, shape, &g, &err);
    FM_CHECK_MSG(rc == FM_EFORMAT, "rc %d for '%s': %s", rc, want, err.msg);
    FM_CHECK(g == NULL);
    FM_CHECK_MSG(strstr(err.msg, "booster") != NULL, "'booster' not in '%s'", err.msg);
    if (want) FM_CHECK_MSG(strstr(err.msg, want) != NULL, "'%s' not in '%s'", want, err.msg);
    if (rc == 0) fm_gbt_free(g);
}

static void expect_json_refused(const cJSON *root, const fm_gbt_shape_t *shape, const char *want) {
    char *text = json_text(root);
    expect_load_refused(text, strlen(text), shape, want);
    free(text);
}

static cJSON *path(cJSON *root, const char *const *keys) {
    cJSON *at = root;
    for (; *keys && at; keys++)
        at = cJSON_GetObjectItem(at, *keys);
    return at;
}

static cJSON *learner_of(cJSON *root) {
    return cJSON_GetObjectItem(root, "learner");
}

static cJSON *model_of(cJSON *root) {
    static const char *const keys[] = {"learner", "gradient_booster", "model", NULL};
    return path(root, keys);
}

static cJSON *tree_of(cJSON *root, int t) {
    return cJSON_GetArrayItem(cJSON_GetObjectItem(model_of(root), "trees"), t);
}

/* Sets item i of tree t's array key to v. */
static void set_node(cJSON *root, int t, const char *key, int i, double v) {
    cJSON *a = cJSON_GetObjectItem(tree_of(root, t), key);
    cJSON_ReplaceItemInArray(a, i, cJSON_CreateNumber(v));
}

static void set_string(cJSON *obj, const char *key, const char *v) {
    cJSON_ReplaceItemInObject(obj, key, cJSON_CreateString(v));
}

/* One broken copy: reset from original, break, expect refusal. */
typedef struct mutation {
    const char *want;
    void (*apply)(cJSON *root);
} mutation_t;

/* The first internal node of tree 0 is node 0; its left child is node 1. */
static void m_child_out(cJSON *r) {
    set_node(r, 0, "left_children", 0, 99);
}
static void m_child_negative(cJSON *r) {
    set_node(r, 0, "right_children", 0, -5);
}
static void m_child_root(cJSON *r) {
    set_node(r, 0, "left_children", 0, 0);
}
static void m_one_child(cJSON *r) {
    set_node(r, 0, "right_children", 0, -1);
}
static void m_shared_child(cJSON *r) {
    cJSON *a = cJSON_GetObjectItem(tree_of(r, 0), "left_children");
    set_node(r, 0, "right_children", 0, cJSON_GetArrayItem(a, 0)->valuedouble);
}
static void m_parent(cJSON *r) {
    set_node(r, 0, "parents", 1, 2);
}
static void m_root_parent(cJSON *r) {
    set_node(r, 0, "parents", 0, 0);
}
static void m_feature(cJSON *r) {
    set_node(r, 0, "split_indices", 0, 3);
}
static void m_feature_negative(cJSON *r) {
    set_node(r, 0, "split_indices", 0, -1);
}
static void m_fraction(cJSON *r) {
    set_node(r, 0, "split_indices", 0, 0.5);
}
static void m_infinite(cJSON *r) {
    set_node(r, 0, "split_conditions", 0, 1e300);
}
static void m_default_left(cJSON *r) {
    set_node(r, 0, "default_left", 0, 2);
}
static void m_split_type(cJSON *r) {
    set_node(r, 0, "split_type", 0, 1);
}
static void m_short_array(cJSON *r) {
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(tree_of(r, 0), "sum_hessian"), 0);
}
static void m_long_array(cJSON *r) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(tree_of(r, 1), "base_weights"), cJSON_CreateNumber(1));
}
static void m_string_in_array(cJSON *r) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(tree_of(r, 0), "left_children"), 1,
                             cJSON_CreateString("-1"));
}
static void m_missing_array(cJSON *r) {
    cJSON_DeleteItemFromObject(tree_of(r, 2), "right_children");
}
static void m_num_nodes(cJSON *r) {
    set_string(cJSON_GetObjectItem(tree_of(r, 0), "tree_param"), "num_nodes", "1000");
}
static void m_num_nodes_text(cJSON *r) {
    set_string(cJSON_GetObjectItem(tree_of(r, 0), "tree_param"), "num_nodes", "7 ");
}
static void m_tree_features(cJSON *r) {
    set_string(cJSON_GetObjectItem(tree_of(r, 0), "tree_param"), "num_feature", "4");
}
static void m_deleted(cJSON *r) {
    set_string(cJSON_GetObjectItem(tree_of(r, 0), "tree_param"), "num_deleted", "1");
}
static void m_categories(cJSON *r) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(tree_of(r, 0), "categories"), cJSON_CreateNumber(1));
}
static void m_tree_id(cJSON *r) {
    cJSON_ReplaceItemInObject(tree_of(r, 1), "id", cJSON_CreateNumber(5));
}
static void m_tree_not_object(cJSON *r) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(model_of(r), "trees"), 1, cJSON_CreateNull());
}
static void m_num_trees(cJSON *r) {
    set_string(cJSON_GetObjectItem(model_of(r), "gbtree_model_param"), "num_trees", "4");
}
static void m_tree_info(cJSON *r) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(model_of(r), "tree_info"), 2,
                             cJSON_CreateNumber(1));
}
static void m_tree_info_short(cJSON *r) {
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(model_of(r), "tree_info"), 2);
}
static void m_parallel(cJSON *r) {
    set_string(cJSON_GetObjectItem(model_of(r), "gbtree_model_param"), "num_parallel_tree", "2");
}
static void m_no_trees(cJSON *r) {
    cJSON *m = model_of(r);
    cJSON_ReplaceItemInObject(m, "trees", cJSON_CreateArray());
    cJSON_ReplaceItemInObject(m, "tree_info", cJSON_CreateArray());
    set_string(cJSON_GetObjectItem(m, "gbtree_model_param"), "num_trees", "0");
}
static void m_dart(cJSON *r) {
    set_string(cJSON_GetObjectItem(learner_of(r), "gradient_booster"), "name", "dart");
}
static void m_objective(cJSON *r) {
    set_string(cJSON_GetObjectItem(learner_of(r), "objective"), "name", "reg:squarederror");
}
static void m_scale_pos(cJSON *r) {
    cJSON *o =
        cJSON_GetObjectItem(cJSON_GetObjectItem(learner_of(r), "objective"), "reg_loss_param");
    set_string(o, "scale_pos_weight", "-1");
}
static void m_num_class(cJSON *r) {
    set_string(cJSON_GetObjectItem(learner_of(r), "learner_model_param"), "num_class", "3");
}
static void m_num_feature(cJSON *r) {
    set_string(cJSON_GetObjectItem(learner_of(r), "learner_model_param"), "num_feature", "5");
}
static void m_base_score(cJSON *r) {
    set_string(cJSON_GetObjectItem(learner_of(r), "learner_model_param"), "base_score", "abc");
}
static void m_base_score_range(cJSON *r) {
    set_string(cJSON_GetObjectItem(learner_of(r), "learner_model_param"), "base_score", "1.5");
}
static void m_feature_types(cJSON *r) {
    cJSON *a = cJSON_GetObjectItem(learner_of(r), "feature_types");
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString("c"));
}
static void m_attribute(cJSON *r) {
    cJSON_AddNumberToObject(cJSON_GetObjectItem(learner_of(r), "attributes"), "best", 3);
}
static void m_version(cJSON *r) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(r, "version"), 0, cJSON_CreateNumber(2));
}
static void m_version_short(cJSON *r) {
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(r, "version"), 2);
}
static void m_no_learner(cJSON *r) {
    cJSON_DeleteItemFromObject(r, "learner");
}

static void test_broken_fields(void) {
    fm_gbt_shape_t shape;
    fm_gbt_t *g = small_booster(&shape);
    if (!g) return;
    size_t len;
    const unsigned char *bytes = fm_gbt_bytes(g, &len);
    cJSON *original = cJSON_ParseWithLength((const char *)bytes, len);
    FM_CHECK(original != NULL);

    /* The control: the same JSON printed by cJSON loads and predicts the same. */
    char *text = json_text(original);
    fm_gbt_t *reprinted = NULL;
    fm_error_t err;
    FM_CHECK_MSG(fm_gbt_load(text, strlen(text), &shape, &reprinted, &err) == 0, "%s", err.msg);
    free(text);
    fm_gbt_free(reprinted);

    static const mutation_t mutations[] = {
        {"'left_children' must hold 15 whole numbers in [-1, 14]; item 0", m_child_out},
        {"right_children", m_child_negative},
        {"reached twice", m_child_root},
        {"one child only", m_one_child},
        {"reached twice", m_shared_child},
        {"its parent is 2", m_parent},
        {"root's parent", m_root_parent},
        {"split_indices", m_feature},
        {"split_indices", m_feature_negative},
        {"split_indices", m_fraction},
        {"split_conditions", m_infinite},
        {"default_left", m_default_left},
        {"split_type", m_split_type},
        {"sum_hessian", m_short_array},
        {"base_weights", m_long_array},
        {"left_children", m_string_in_array},
        {"'right_children' is missing", m_missing_array},
        {"tree 0", m_num_nodes},
        {"num_nodes", m_num_nodes_text},
        {"4 features", m_tree_features},
        {"deleted nodes", m_deleted},
        {"categories", m_categories},
        {"tree 1: 'id'", m_tree_id},
        {"tree 1 is not an object", m_tree_not_object},
        {"'num_trees' says 4", m_num_trees},
        {"tree_info", m_tree_info},
        {"tree_info", m_tree_info_short},
        {"num_parallel_tree", m_parallel},
        {"0 trees", m_no_trees},
        {"gbtree", m_dart},
        {"binary:logistic", m_objective},
        {"scale_pos_weight", m_scale_pos},
        {"3 classes", m_num_class},
        {"5 features", m_num_feature},
        {"base_score", m_base_score},
        {"(0, 1)", m_base_score_range},
        {"feature_types", m_feature_types},
        {"attribute 'best'", m_attribute},
        {"XGBoost 2.7.4", m_version},
        {"version", m_version_short},
        {"'learner'", m_no_learner},
    };
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++) {
        cJSON *copy = cJSON_Duplicate(original, 1);
        mutations[i].apply(copy);
        expect_json_refused(copy, &shape, mutations[i].want);
        cJSON_Delete(copy);
    }

    /* The booster must be what the model says it is. */
    fm_gbt_shape_t other = shape;
    other.nfeatures = 4;
    expect_load_refused((const char *)bytes, len, &other, "features");
    other = shape;
    other.objective = FM_GBT_REGRESSION;
    expect_load_refused((const char *)bytes, len, &other, "reg:squarederror");
    other.objective = FM_GBT_MULTICLASS;
    other.nclasses = 3;
    expect_load_refused((const char *)bytes, len, &other, "multi:softprob");

    /* Text-level damage the JSON tree cannot show. */
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "{\"version\":[1,7,4],\"version\":[1,7,4],\"learner\":{}}");
    expect_load_refused(b.data, b.len, &shape, "appears twice");
    fm_buf_reset(&b);
    text = json_text(original);
    /* A second num_nodes, which XGBoost would read instead of the first. */
    char *at = strstr(text, "\"num_nodes\"");
    FM_CHECK(at != NULL);
    if (at) {
        fm_buf_append(&b, text, (size_t)(at - text));
        fm_buf_puts(&b, "\"num_nodes\":\"1000\",");
        fm_buf_puts(&b, at);
        expect_load_refused(b.data, b.len, &shape, "'num_nodes' appears twice");
    }
    fm_buf_reset(&b);
    fm_buf_puts(&b, "{\"a\":\"x\\u0000y\"}");
    expect_load_refused(b.data, b.len, &shape, "NUL");
    expect_load_refused("{\"a\":1}\0", 8, &shape, "not an XGBoost JSON model");
    expect_load_refused("[1,2]", 5, &shape, "not an XGBoost JSON model");
    expect_load_refused("{\"a\":1} x", 9, &shape, "unexpected text");
    expect_load_refused("{\"a\":", 5, &shape, "invalid JSON");
    expect_load_refused("", 0, &shape, "0 bytes");
    /* An object with many keys (one repeated far apart) is checked in linear time. */
    fm_buf_reset(&b);
    fm_buf_puts(&b, "{\"version\":[1,7,4],\"learner\":{\"attributes\":{");
    for (int i = 0; i < 50000; i++)
        fm_buf_printf(&b, "\"k%d\":\"v\",", i);
    fm_buf_puts(&b, "\"k7\":\"v\"}}}");
    double t0 = fm_clock_seconds();
    expect_load_refused(b.data, b.len, &shape, "'k7' appears twice");
    FM_CHECK(fm_clock_seconds() - t0 < 5.0);
    fm_buf_free(&b);
    free(text);
    cJSON_Delete(original);
    fm_gbt_free(g);
}

/* Loads n bytes; when they load, the booster must predict finite values or fail cleanly. */
static int load_and_use(const void *data, size_t n, const fm_gbt_shape_t *shape, const double *x) {
    fm_gbt_t *g = NULL;
    fm_error_t err;
    int rc = fm_gbt_load(data, n, shape, &g, &err);
    if (rc == 0) {
        double out[8];
        FM_CHECK_INT(fm_gbt_predict(g, x, 8, out, &err), 0);
        fm_gbt_free(g);
        return 1;
    }
    FM_CHECK_MSG(rc == FM_EFORMAT || rc == FM_ELIMIT, "rc %d: %s", rc, err.msg);
    FM_CHECK(g == NULL && strstr(err.msg, "booster") != NULL);
    return 0;
}

static void test_random_damage(void) {
    fm_gbt_shape_t shape;
    fm_gbt_t *g = small_booster(&shape);
    if (!g) return;
    size_t len;
    const unsigned char *bytes = fm_gbt_bytes(g, &len);
    double x[24];
    fm_rng_t rng;
    fm_rng_seed(&rng, 99);
    for (int i = 0; i < 24; i++)
        x[i] = i % 5 == 4 ? NAN : fm_rng_normal(&rng);
    unsigned char *copy = malloc(len);

    /* Truncations: the first 200 lengths, then 300 more across the text. */
    int loaded = 0;
    for (size_t n = 0; n < len; n += n < 200 ? 1 : len / 300 + 1)
        loaded += load_and_use(bytes, n, &shape, x);
    FM_CHECK_INT(loaded, 0);

    /* Single bit flips anywhere: an error, or (a digit changed) a booster that still works. */
    int accepted = 0;
    for (int i = 0; i < 3000; i++) {
        memcpy(copy, bytes, len);
        size_t at = (size_t)fm_rng_below(&rng, len);
        copy[at] ^= (unsigned char)(1u << fm_rng_below(&rng, 8));
        accepted += load_and_use(copy, len, &shape, x);
    }
    printf("  bit flips: %d of 3000 still load\n", accepted);

    /* Structural changes: a random integer or number in a random node array. */
    cJSON *original = cJSON_ParseWithLength((const char *)bytes, len);
    static const char *const keys[] = {"left_children",   "right_children", "parents",
                                       "split_indices",   "default_left",   "split_type",
                                       "split_conditions"};
    accepted = 0;
    for (int i = 0; i < 1500; i++) {
        cJSON *root = cJSON_Duplicate(original, 1);
        int t = (int)fm_rng_below(&rng, 3);
        const char *key = keys[fm_rng_below(&rng, sizeof keys / sizeof keys[0])];
        cJSON *a = cJSON_GetObjectItem(tree_of(root, t), key);
        int size = cJSON_GetArraySize(a);
        double v = (double)fm_rng_below(&rng, (uint64_t)size + 6) - 3.0;
        if (fm_rng_below(&rng, 10) == 0) v = fm_rng_normal(&rng) * 1e12;
        set_node(root, t, key, (int)fm_rng_below(&rng, (uint64_t)size), v);
        char *text = json_text(root);
        accepted += load_and_use(text, strlen(text), &shape, x);
        free(text);
        cJSON_Delete(root);
    }
    printf("  structural changes: %d of 1500 still load\n", accepted);
    cJSON_Delete(original);
    free(copy);
    fm_gbt_free(g);
}

FM_TEST_MAIN(FM_TEST_CASE(test_binary), FM_TEST_CASE(test_multiclass),
             FM_TEST_CASE(test_regression), FM_TEST_CASE(test_deterministic),
             FM_TEST_CASE(test_early_stopping), FM_TEST_CASE(test_weights),
             FM_TEST_CASE(test_refused_settings), FM_TEST_CASE(test_concurrent_predictions),
             FM_TEST_CASE(test_one_thread_per_prediction), FM_TEST_CASE(test_describe),
             FM_TEST_CASE(test_broken_fields), FM_TEST_CASE(test_random_damage))
