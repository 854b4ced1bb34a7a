/*
 * Tests of fm_gbt_shap, finmaas's own exact TreeSHAP, on boosters trained here on synthetic data
 * (binary, multiclass, regression; depths 1 to 6; missing values in training and in the rows
 * explained, so that rows take learned and untrained default directions):
 * - against XGBoost's own contributions (fm_gbt_contributions), which are rounded to single
 *   precision, within 1e-5 of the entry (or of the row's largest entry, for entries that are sums
 *   of terms cancelling out);
 * - against a brute-force Shapley computation written out here from the booster's JSON: every
 *   coalition S of features, the path-dependent value v(S) (follow x on features in S, else average
 *   the children weighted by their share of the parent's cover, as XGBoost's TreeSHAP does), the
 *   Shapley weights |S|! (M - |S| - 1)! / M!, and v(empty set) as the bias, within 1e-9;
 * - the coefficient tables against Algorithm 2's recursion on every tree (fm_gbt_shap_row);
 * - completeness: each output's values sum to XGBoost's margin (fm_gbt_predict_margin);
 * - single-leaf trees, a tree of the greatest depth built with the recursion, a forged tree deeper
 *   than FM_GBT_MAX_DEPTH (explained through XGBoost), boosters rebuilt by fm_gbt_load, and many
 *   threads explaining with one booster at once.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/rng.h"
#include "gbt/gbt_internal.h"
#include "fm_test.h"

#include <pthread.h>
#include <stdint.h>

/* ---- Synthetic data and boosters ----------------------------------------------------------- */

typedef struct data {
    size_t n, nf;
    double *x, *label;
} data_t;

static void data_free(data_t *d) {
    free(d->x);
    free(d->label);
}

/* n rows of nf normal features with NaN in features 1 and 3 of some rows; labels from a nonlinear
 * score: 0/1, one of 3 classes, or a value in the hundreds. */
static data_t make_data(size_t n, size_t nf, fm_gbt_objective_t objective, uint64_t seed) {
    data_t d = {n, nf, malloc(n * nf * sizeof(double)), malloc(n * sizeof(double))};
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        double *x = d.x + i * nf;
        for (size_t j = 0; j < nf; j++)
            x[j] = fm_rng_normal(&rng);
        if (i % 7 == 2) x[1 % nf] = NAN;
        if (i % 11 == 5) x[3 % nf] = NAN;
        double a = x[0], b = isnan(x[1 % nf]) ? 0.7 : x[1 % nf], c = x[2 % nf];
        double noise = 0.5 * fm_rng_normal(&rng);
        switch (objective) {
        case FM_GBT_BINARY:
            d.label[i] = a + b * b - 0.6 * c * a + noise > 0.8 ? 1.0 : 0.0;
            break;
        case FM_GBT_MULTICLASS: {
            double s[3] = {a + noise, b - c, 0.5 * x[nf - 1] + 0.2};
            d.label[i] = s[0] > s[1] ? (s[0] > s[2] ? 0 : 2) : (s[1] > s[2] ? 1 : 2);
            break;
        }
        case FM_GBT_REGRESSION:
            d.label[i] = 250.0 + 30.0 * a + 20.0 * sin(2.0 * c) + 12.0 * b * a + 4.0 * noise;
            break;
        }
    }
    return d;
}

static fm_gbt_params_t params_for(fm_gbt_objective_t objective, size_t nf, int depth, int rounds) {
    fm_gbt_params_t p = {
        .shape = {objective, objective == FM_GBT_MULTICLASS ? 3 : 0, nf},
        .rounds = rounds,
        .max_depth = depth,
        .eta = 0.3,
        .subsample = 0.9,
        .colsample = 1.0,
        .min_child_weight = 1.0,
        .lambda = 1.0,
        .alpha = 0.0,
        .early_stopping = 0,
        .base_score = NAN,
        .seed = 11,
        .threads = 1,
    };
    return p;
}

static fm_gbt_t *train(const fm_gbt_params_t *p, const data_t *d) {
    fm_gbt_rows_t rows = {d->x, d->label, NULL, d->n};
    fm_gbt_t *g = NULL;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_gbt_train(p, &rows, NULL, NULL, NULL, &g, NULL, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    return g;
}

/* Rows to explain: the training rows, then copies with NaN put into each feature in turn (so every
 * split's default direction is taken), and extreme values. */
static double *rows_to_explain(const data_t *d, size_t take, size_t *n) {
    size_t nf = d->nf, extra = nf + 2;
    *n = take + extra;
    double *x = malloc(*n * nf * sizeof *x);
    memcpy(x, d->x, take * nf * sizeof *x);
    for (size_t e = 0; e < extra; e++) {
        double *r = x + (take + e) * nf;
        memcpy(r, d->x + (e % take) * nf, nf * sizeof *r);
        if (e < nf)
            r[e] = NAN;
        else if (e == nf)
            for (size_t j = 0; j < nf; j++)
                r[j] = j % 2 ? 1e30 : -1e30;
        else
            for (size_t j = 0; j < nf; j++)
                r[j] = NAN;
    }
    return x;
}

/* ---- The brute-force reference ------------------------------------------------------------- */

typedef struct ref_tree {
    size_t n;
    int *left, *right, *feature, *dleft;
    double *cond, *cover;
} ref_tree_t;

typedef struct ref_model {
    size_t ntrees, nf, width;
    double base;
    ref_tree_t *trees;
} ref_model_t;

static void json_fill(const cJSON *tree, const char *key, size_t n, int *ints, double *dbls) {
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(tree, key)) {
        if (i >= n) break;
        if (ints) ints[i] = (int)c->valuedouble;
        if (dbls) dbls[i] = c->valuedouble;
        i++;
    }
}

static ref_model_t ref_model(const fm_gbt_t *g) {
    size_t len;
    const unsigned char *bytes = fm_gbt_bytes(g, &len);
    cJSON *root = cJSON_ParseWithLength((const char *)bytes, len);
    const cJSON *learner = cJSON_GetObjectItem(root, "learner");
    const cJSON *model =
        cJSON_GetObjectItem(cJSON_GetObjectItem(learner, "gradient_booster"), "model");
    const cJSON *trees = cJSON_GetObjectItem(model, "trees");
    const fm_gbt_info_t *info = fm_gbt_info(g);
    ref_model_t m = {(size_t)cJSON_GetArraySize(trees), info->shape.nfeatures,
                     fm_gbt_output_width(g), info->base_score, NULL};
    if (info->shape.objective == FM_GBT_BINARY) m.base = log(m.base / (1.0 - m.base));
    m.trees = calloc(m.ntrees, sizeof *m.trees);
    size_t t = 0;
    const cJSON *tree;
    cJSON_ArrayForEach(tree, trees) {
        ref_tree_t *r = m.trees + t++;
        r->n = (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(tree, "left_children"));
        r->left = malloc(r->n * sizeof(int));
        r->right = malloc(r->n * sizeof(int));
        r->feature = malloc(r->n * sizeof(int));
        r->dleft = malloc(r->n * sizeof(int));
        r->cond = malloc(r->n * sizeof(double));
        r->cover = malloc(r->n * sizeof(double));
        json_fill(tree, "left_children", r->n, r->left, NULL);
        json_fill(tree, "right_children", r->n, r->right, NULL);
        json_fill(tree, "split_indices", r->n, r->feature, NULL);
        json_fill(tree, "default_left", r->n, r->dleft, NULL);
        json_fill(tree, "split_conditions", r->n, NULL, r->cond);
        json_fill(tree, "sum_hessian", r->n, NULL, r->cover);
    }
    cJSON_Delete(root);
    return m;
}

static void ref_free(ref_model_t *m) {
    for (size_t t = 0; t < m->ntrees; t++) {
        ref_tree_t *r = m->trees + t;
        free(r->left);
        free(r->right);
        free(r->feature);
        free(r->dleft);
        free(r->cond);
        free(r->cover);
    }
    free(m->trees);
}

/* The tree's expected value given the features in mask S are known. Cover shares are divided in
 * single precision, as XGBoost divides them. */
static double ref_value(const ref_tree_t *r, int node, const double *x, unsigned mask) {
    if (r->left[node] < 0) return (double)(float)r->cond[node];
    int f = r->feature[node], l = r->left[node], rt = r->right[node];
    if (mask >> f & 1) {
        double v = x[f];
        int left = isnan(v) ? r->dleft[node] : (float)v < (float)r->cond[node];
        return ref_value(r, left ? l : rt, x, mask);
    }
    float w = (float)r->cover[node];
    double fl = (double)((float)r->cover[l] / w), fr = (double)((float)r->cover[rt] / w);
    return fl * ref_value(r, l, x, mask) + fr * ref_value(r, rt, x, mask);
}

/* Shapley values over all 2^nf coalitions into phi[width * (nf + 1)]. */
static void ref_shap(const ref_model_t *m, const double *x, double *phi) {
    size_t nf = m->nf, stride = nf + 1;
    unsigned full = 1u << nf;
    double *v = malloc(full * m->width * sizeof *v);
    for (unsigned s = 0; s < full; s++)
        for (size_t k = 0; k < m->width; k++)
            v[s * m->width + k] = m->base;
    for (size_t t = 0; t < m->ntrees; t++)
        for (unsigned s = 0; s < full; s++)
            v[s * m->width + t % m->width] += ref_value(m->trees + t, 0, x, s);
    double fact[32] = {1.0};
    for (int i = 1; i < 32; i++)
        fact[i] = fact[i - 1] * i;
    for (size_t k = 0; k < m->width; k++) {
        for (size_t i = 0; i < nf; i++) {
            double total = 0.0;
            for (unsigned s = 0; s < full; s++) {
                if (s >> i & 1) continue;
                int size = __builtin_popcount(s);
                double weight = fact[size] * fact[nf - (size_t)size - 1] / fact[nf];
                total += weight * (v[(s | 1u << i) * m->width + k] - v[s * m->width + k]);
            }
            phi[k * stride + i] = total;
        }
        phi[k * stride + nf] = v[k];
    }
    free(v);
}

/* ---- Comparisons ---------------------------------------------------------------------------- */

/* Checks fm_gbt_shap on n rows against XGBoost, the margin, the recursion and (nf <= 8) the brute
 * force; returns the largest difference to XGBoost relative to the tolerance's scale. */
static double check_booster(const char *label, const fm_gbt_t *g, const double *x, size_t n) {
    const fm_gbt_info_t *info = fm_gbt_info(g);
    size_t nf = info->shape.nfeatures, width = fm_gbt_output_width(g), stride = nf + 1;
    size_t per_row = width * stride;
    double *mine = malloc(n * per_row * sizeof *mine);
    double *xgb = malloc(n * per_row * sizeof *xgb);
    double *path = malloc(per_row * sizeof *path);
    double *brute = malloc(per_row * sizeof *brute);
    double *margin = malloc(n * width * sizeof *margin);
    fm_error_t err;
    FM_CHECK_INT(fm_gbt_contributions(g, x, n, xgb, &err), 0);
    FM_CHECK_INT(fm_gbt_predict_margin(g, x, n, margin, &err), 0);
    ref_model_t ref = ref_model(g);
    double worst_xgb = 0.0, worst_margin = 0.0, worst_path = 0.0, worst_brute = 0.0;
    for (size_t r = 0; r < n; r++) {
        const double *row = x + r * nf;
        double *phi = mine + r * per_row;
        FM_CHECK_INT(fm_gbt_shap(g, row, phi, &err), 0);
        fm_gbt_shap_row(g->shap, row, path, 1);
        if (nf <= 8) ref_shap(&ref, row, brute);
        for (size_t k = 0; k < width; k++) {
            const double *a = phi + k * stride, *b = xgb + r * per_row + k * stride;
            double scale = 0.0, sum = 0.0, sum_abs = 0.0;
            for (size_t j = 0; j <= nf; j++) {
                scale = fmax(scale, fabs(b[j]));
                sum += a[j];
                sum_abs += fabs(a[j]);
            }
            for (size_t j = 0; j <= nf; j++) {
                /* XGBoost adds each tree's float contribution to a float total; an entry that is
                 * the sum of terms cancelling out keeps an error of the row's size. */
                double d = fabs(a[j] - b[j]) / fmax(fabs(b[j]), fmax(scale * 0.1, 1e-3));
                if (!(d <= worst_xgb)) worst_xgb = d;
                double dp = fabs(a[j] - path[k * stride + j]) / fmax(sum_abs, 1.0);
                if (!(dp <= worst_path)) worst_path = dp;
                if (nf <= 8) {
                    double db = fabs(a[j] - brute[k * stride + j]) / fmax(sum_abs, 1.0);
                    if (!(db <= worst_brute)) worst_brute = db;
                }
            }
            double m = margin[r * width + k];
            double dm = fabs(sum - m) / fmax(fabs(m), 1.0);
            if (!(dm <= worst_margin)) worst_margin = dm;
        }
    }
    printf("  %-34s vs XGBoost %.2e, margin %.2e, recursion %.2e, brute force %s%.2e\n", label,
           worst_xgb, worst_margin, worst_path, nf <= 8 ? "" : "(skipped) ", worst_brute);
    FM_CHECK_MSG(worst_xgb <= 1e-5, "%s: relative difference to XGBoost %.3g", label, worst_xgb);
    FM_CHECK_MSG(worst_margin <= 1e-5, "%s: sum(phi) vs margin %.3g", label, worst_margin);
    FM_CHECK_MSG(worst_path <= 1e-12, "%s: tables vs recursion %.3g", label, worst_path);
    FM_CHECK_MSG(worst_brute <= 1e-9, "%s: vs brute force %.3g", label, worst_brute);
    ref_free(&ref);
    free(mine);
    free(xgb);
    free(path);
    free(brute);
    free(margin);
    return worst_xgb;
}

/* ---- Tests ---------------------------------------------------------------------------------- */

static void each_depth(fm_gbt_objective_t objective, size_t nf, int rounds) {
    data_t d = make_data(400, nf, objective, 1000 + (uint64_t)objective);
    for (int depth = 1; depth <= 6; depth++) {
        fm_gbt_params_t p = params_for(objective, nf, depth, rounds);
        fm_gbt_t *g = train(&p, &d);
        if (!g) break;
        size_t n;
        double *x = rows_to_explain(&d, 60, &n);
        char label[64];
        snprintf(label, sizeof label, "%s depth %d", fm_gbt_objective_name(objective), depth);
        check_booster(label, g, x, n);
        free(x);
        fm_gbt_free(g);
    }
    data_free(&d);
}

static void test_binary(void) {
    each_depth(FM_GBT_BINARY, 6, 25);
}

static void test_multiclass(void) {
    each_depth(FM_GBT_MULTICLASS, 5, 12);
}

static void test_regression(void) {
    each_depth(FM_GBT_REGRESSION, 7, 25);
}

/* Many features (no brute force): the tables and the recursion over deep trees with repeated and
 * distinct features, against XGBoost. */
static void test_wide(void) {
    data_t d = make_data(600, 24, FM_GBT_BINARY, 77);
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, 24, 8, 30);
    p.colsample = 0.7;
    fm_gbt_t *g = train(&p, &d);
    if (g) {
        size_t n;
        double *x = rows_to_explain(&d, 80, &n);
        check_booster("binary depth 8, 24 features", g, x, n);
        free(x);
        fm_gbt_free(g);
    }
    data_free(&d);
}

/* Trees that cannot split (min_child_weight above the data's hessian) are single leaves: every
 * feature's contribution is 0 and the bias is the margin. A stump model (depth 1) is checked too.
 */
static void test_single_leaf(void) {
    data_t d = make_data(50, 4, FM_GBT_REGRESSION, 5);
    fm_gbt_params_t p = params_for(FM_GBT_REGRESSION, 4, 3, 4);
    p.min_child_weight = 1e6;
    fm_gbt_t *g = train(&p, &d);
    if (g) {
        FM_CHECK_INT(fm_gbt_info(g)->leaves, 4);
        double phi[5], margin;
        fm_error_t err;
        for (size_t r = 0; r < 5; r++) {
            FM_CHECK_INT(fm_gbt_shap(g, d.x + r * 4, phi, &err), 0);
            FM_CHECK_INT(fm_gbt_predict_margin(g, d.x + r * 4, 1, &margin, &err), 0);
            FM_CHECK(phi[0] == 0.0 && phi[1] == 0.0 && phi[2] == 0.0 && phi[3] == 0.0);
            FM_CHECK_NEAR(phi[4], margin, 1e-5 * fabs(margin));
        }
        check_booster("single-leaf trees", g, d.x, 20);
        fm_gbt_free(g);
    }
    data_free(&d);
}

/* A booster rebuilt from its bytes gives the same values as the one trained. */
static void test_loaded(void) {
    data_t d = make_data(300, 5, FM_GBT_MULTICLASS, 9);
    fm_gbt_params_t p = params_for(FM_GBT_MULTICLASS, 5, 4, 10);
    fm_gbt_t *g = train(&p, &d), *h = NULL;
    if (g) {
        size_t len;
        const unsigned char *bytes = fm_gbt_bytes(g, &len);
        fm_error_t err;
        FM_CHECK_INT(fm_gbt_load(bytes, len, &p.shape, &h, &err), 0);
        double a[18], b[18];
        for (size_t r = 0; h && r < 50; r++) {
            FM_CHECK_INT(fm_gbt_shap(g, d.x + r * 5, a, &err), 0);
            FM_CHECK_INT(fm_gbt_shap(h, d.x + r * 5, b, &err), 0);
            FM_CHECK(memcmp(a, b, sizeof a) == 0);
        }
        fm_gbt_free(h);
        fm_gbt_free(g);
    }
    data_free(&d);
}

/* Replaces tree 0 of g's JSON with a chain: node 2i splits on feature i mod nf and has a leaf on
 * the left, the next split on the right, down to `depth`; returns the booster loaded from that. */
static fm_gbt_t *chain_booster(const fm_gbt_t *g, int depth, fm_error_t *err) {
    size_t len;
    const unsigned char *bytes = fm_gbt_bytes(g, &len);
    cJSON *root = cJSON_ParseWithLength((const char *)bytes, len);
    cJSON *model = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "learner"), "gradient_booster"), "model");
    cJSON *tree = cJSON_GetArrayItem(cJSON_GetObjectItem(model, "trees"), 0);
    const fm_gbt_info_t *info = fm_gbt_info(g);
    int nf = (int)info->shape.nfeatures, n = 2 * depth + 1;
    static const char *const keys[] = {
        "left_children", "right_children", "parents",      "split_indices", "split_conditions",
        "default_left",  "split_type",     "base_weights", "loss_changes",  "sum_hessian"};
    for (size_t a = 0; a < sizeof keys / sizeof keys[0]; a++) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            int internal = i % 2 == 0 && i < n - 1;
            double v = 0.0;
            switch (a) {
            case 0:
                v = internal ? i + 1 : -1;
                break;
            case 1:
                v = internal ? i + 2 : -1;
                break;
            case 2:
                v = i == 0 ? 2147483647 : (i % 2 ? i - 1 : i - 2);
                break;
            case 3:
                v = internal ? (i / 2) % nf : 0;
                break;
            case 4:
                v = internal ? 0.1 * ((i / 2) % 5) - 0.25 : 0.013 * (i % 13) - 0.0505;
                break;
            case 5:
                v = internal ? (i / 2) % 3 == 0 : 0;
                break;
            case 9:
                /* Each split sends a third of its cover to the leaf on the left. */
                v = 999.5 * pow(2.0 / 3.0, i / 2) * (i % 2 ? 1.0 / 3.0 : 1.0);
                break;
            case 7:
            case 8:
                /* XGBoost reads these as reals: a whole number would be refused. */
                v = 0.25;
                break;
            default:
                v = 0.0;
                break;
            }
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(v));
        }
        cJSON_ReplaceItemInObject(tree, keys[a], arr);
    }
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(tree, "tree_param"), "num_nodes",
                              cJSON_CreateString(count));
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    fm_gbt_t *out = NULL;
    int rc = fm_gbt_load(text, strlen(text), &info->shape, &out, err);
    FM_CHECK_MSG(rc == 0, "%s", err->msg);
    free(text);
    return out;
}

/* A tree of depth FM_GBT_MAX_DEPTH runs Algorithm 2 at its deepest; one deeper has no compact copy
 * and is explained through XGBoost. */
static void test_deep_trees(void) {
    data_t d = make_data(200, 6, FM_GBT_BINARY, 3);
    /* One round: the chain is the only tree, so cJSON's reprint (0 for XGBoost's 0E0, which
     * XGBoost reads as an integer) touches no other tree. */
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, 6, 3, 1);
    fm_gbt_t *g = train(&p, &d);
    fm_error_t err;
    /* Rows that go down the chain: values past every threshold on the right. */
    for (size_t r = 0; r < 40; r++)
        for (size_t j = 0; j < 6; j++)
            if (r % 3 == 0) d.x[r * 6 + j] = 0.5;
    fm_gbt_t *deep = g ? chain_booster(g, FM_GBT_MAX_DEPTH, &err) : NULL;
    if (deep) {
        FM_CHECK(deep->shap != NULL);
        FM_CHECK_INT(fm_gbt_info(deep)->max_depth, FM_GBT_MAX_DEPTH);
        check_booster("chain of depth FM_GBT_MAX_DEPTH", deep, d.x, 40);
    }
    fm_gbt_t *deeper = g ? chain_booster(g, FM_GBT_MAX_DEPTH + 1, &err) : NULL;
    if (deeper) {
        FM_CHECK(deeper->shap == NULL);
        double a[7], b[7];
        for (size_t r = 0; r < 10; r++) {
            FM_CHECK_INT(fm_gbt_shap(deeper, d.x + r * 6, a, &err), 0);
            FM_CHECK_INT(fm_gbt_contributions(deeper, d.x + r * 6, 1, b, &err), 0);
            FM_CHECK(memcmp(a, b, sizeof a) == 0);
        }
    }
    fm_gbt_free(deeper);
    fm_gbt_free(deep);
    fm_gbt_free(g);
    data_free(&d);
}

typedef struct job {
    const fm_gbt_t *g;
    const double *x, *want;
    size_t n, per_row;
    int mismatches;
} job_t;

static void *explain_all(void *arg) {
    job_t *j = arg;
    size_t nf = fm_gbt_info(j->g)->shape.nfeatures;
    double phi[64];
    fm_error_t err;
    for (int repeat = 0; repeat < 20; repeat++)
        for (size_t r = 0; r < j->n; r++)
            if (fm_gbt_shap(j->g, j->x + r * nf, phi, &err) ||
                memcmp(phi, j->want + r * j->per_row, j->per_row * sizeof *phi) != 0)
                j->mismatches++;
    return NULL;
}

/* Threads sharing one booster get what one thread gets. */
static void test_threads(void) {
    data_t d = make_data(200, 5, FM_GBT_MULTICLASS, 21);
    fm_gbt_params_t p = params_for(FM_GBT_MULTICLASS, 5, 5, 10);
    fm_gbt_t *g = train(&p, &d);
    if (g) {
        size_t per_row = 3 * 6, n = 100;
        double *want = malloc(n * per_row * sizeof *want);
        fm_error_t err;
        for (size_t r = 0; r < n; r++)
            FM_CHECK_INT(fm_gbt_shap(g, d.x + r * 5, want + r * per_row, &err), 0);
        pthread_t threads[4];
        job_t jobs[4];
        for (int t = 0; t < 4; t++) {
            jobs[t] = (job_t){g, d.x, want, n, per_row, 0};
            pthread_create(&threads[t], NULL, explain_all, &jobs[t]);
        }
        for (int t = 0; t < 4; t++) {
            pthread_join(threads[t], NULL);
            FM_CHECK_INT(jobs[t].mismatches, 0);
        }
        free(want);
        fm_gbt_free(g);
    }
    data_free(&d);
}

/* Boosters whose numbers were changed at random (covers, thresholds, leaf values, split features,
 * links) either are refused at load or explain rows without a crash or a read out of bounds
 * (run under ASan). */
static void test_damaged(void) {
    data_t d = make_data(200, 5, FM_GBT_BINARY, 41);
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, 5, 4, 3);
    fm_gbt_t *g = train(&p, &d);
    if (g) {
        size_t len;
        const unsigned char *bytes = fm_gbt_bytes(g, &len);
        char *text = malloc(len);
        fm_rng_t rng;
        fm_rng_seed(&rng, 99);
        int loaded = 0;
        for (int trial = 0; trial < 300; trial++) {
            memcpy(text, bytes, len);
            for (int m = 0; m < 3; m++) {
                size_t at = (size_t)(fm_rng_uniform(&rng) * (double)len);
                if (at < len && text[at] >= '0' && text[at] <= '9')
                    text[at] = (char)('0' + (int)(fm_rng_uniform(&rng) * 10.0) % 10);
            }
            fm_gbt_t *h = NULL;
            fm_error_t err;
            if (fm_gbt_load(text, len, &p.shape, &h, &err) != 0) continue;
            loaded++;
            double phi[6];
            for (size_t r = 0; r < 20; r++)
                FM_CHECK_INT(fm_gbt_shap(h, d.x + r * 5, phi, &err), 0);
            fm_gbt_free(h);
        }
        printf("  %d of 300 damaged boosters load and explain\n", loaded);
        free(text);
        fm_gbt_free(g);
    }
    data_free(&d);
}

/* Rows per second of fm_gbt_shap and of fm_gbt_contributions on a 300-round depth-4 booster. */
static void test_speed(void) {
    data_t d = make_data(2000, 20, FM_GBT_BINARY, 31);
    fm_gbt_params_t p = params_for(FM_GBT_BINARY, 20, 4, 300);
    fm_gbt_t *g = train(&p, &d);
    if (g) {
        double phi[21];
        fm_error_t err;
        double t0 = fm_clock_seconds(), sink = 0.0;
        for (size_t r = 0; r < d.n; r++) {
            fm_gbt_shap(g, d.x + r * 20, phi, &err);
            sink += phi[20];
        }
        double t1 = fm_clock_seconds();
        size_t m = 200;
        for (size_t r = 0; r < m; r++)
            fm_gbt_contributions(g, d.x + r * 20, 1, phi, &err);
        double t2 = fm_clock_seconds();
        printf("  300 trees of depth 4: fm_gbt_shap %.0f rows/s, fm_gbt_contributions %.0f rows/s "
               "(%g)\n",
               (double)d.n / (t1 - t0), (double)m / (t2 - t1), sink > 0 ? 1.0 : 0.0);
        fm_gbt_free(g);
    }
    data_free(&d);
}

FM_TEST_MAIN(FM_TEST_CASE(test_binary), FM_TEST_CASE(test_multiclass),
             FM_TEST_CASE(test_regression), FM_TEST_CASE(test_wide), FM_TEST_CASE(test_single_leaf),
             FM_TEST_CASE(test_loaded), FM_TEST_CASE(test_deep_trees), FM_TEST_CASE(test_threads),
             FM_TEST_CASE(test_damaged), FM_TEST_CASE(test_speed))
