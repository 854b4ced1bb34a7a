/*
 * Tests of the importance area on hand-built models (a fitted preprocessing over a small CSV and a
 * one-layer network with fixed weights): partial dependence and ICE of a linear model against the
 * formula (the target scaling of b + sum w_k x_k with the feature's block set to the grid value's
 * encoding, written out here from the prep parameters); permutation importance against a naive
 * loop written here (the same seeded permutations applied to a copy of the encoded rows, the
 * model's predictions, AUC by counting pairs, accuracy by arg-max, R^2 from sums); the grids
 * against hand-computed percentiles; the row sample (size, order, determinism, rows without a
 * target); the JSON layout (PII columns left out, multiclass curves, ICE count); and every error:
 * options out of range, a missing target column, one class, no target, an unknown class, a
 * regression target that is not a number, a row index outside the frame, a missing feature.
 */
#include "core/buf.h"
#include "importance/internal.h"
#include "fm_test.h"
#include "fm_test_frame.h"
#include "fm_test_fs.h"

#include <stdint.h>
#include <unistd.h>

#define NROWS 120

/* NROWS rows: numeric x1 (some missing, many distinct), numeric x2 (5 distinct), categorical color
 * (some missing), categorical name (personal data), the targets y (binary), kind (3 classes),
 * amount (numeric) and flag (numeric 0/1). A row with blank targets when blank_every > 0. */
static fm_frame_t *make_frame(size_t blank_every) {
    static const char *const colors[] = {"red", "green", "", "blue", "green"};
    fm_buf_t csv = FM_BUF_INIT;
    fm_buf_puts(&csv, "x1,x2,color,name,y,kind,amount,flag\n");
    for (size_t i = 0; i < NROWS; i++) {
        int blank = blank_every && i % blank_every == 1;
        if (i % 9 == 4)
            fm_buf_puts(&csv, "NA,");
        else
            fm_buf_printf(&csv, "%.3f,", 10.0 + 0.37 * (double)((i * 37) % 101));
        fm_buf_printf(&csv, "%zu,%s,person%zu,", (i * 3) % 5, colors[i % 5], i);
        if (blank)
            fm_buf_puts(&csv, ",,,\n");
        else
            fm_buf_printf(&csv, "%s,%c,%.2f,%d\n", (i * 7) % 11 > 5 ? "yes" : "no",
                          "abc"[(i * 5) % 3], 50.0 + 3.5 * (double)((i * 13) % 17),
                          (int)((i * 7) % 11 > 5));
    }
    fm_frame_t *frame = fm_test_frame_from_text(csv.data, NULL);
    fm_buf_free(&csv);
    return frame;
}

static char **copy_classes(const char *const *labels, size_t n) {
    char **classes = calloc(n, sizeof *classes);
    for (size_t i = 0; i < n; i++)
        classes[i] = strdup(labels[i]);
    return classes;
}

/* A one-layer model for task on x1, x2, color and name (PII, no feature), with fixed weights. */
static fm_model_t *make_model(const fm_frame_t *frame, fm_task_t task, int missing_indicators) {
    fm_model_t *m = fm_model_new();
    fm_error_t err;
    size_t cols[4] = {(size_t)fm_frame_find(frame, "x1"), (size_t)fm_frame_find(frame, "x2"),
                      (size_t)fm_frame_find(frame, "color"), (size_t)fm_frame_find(frame, "name")};
    fm_prep_options_t opts = {missing_indicators, 0};
    int rc = fm_prep_fit(frame, cols, 4, NULL, frame->nrows, &opts, &m->prep, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    const char *pii = "name";
    FM_CHECK_INT(fm_prep_mark_pii(m->prep, &pii, 1, &err), 0);
    int nf = (int)m->prep->nfeatures, nout = task == FM_TASK_MULTICLASS ? 3 : 1;
    int sizes[2] = {nf, nout};
    fm_activation_t act = task == FM_TASK_BINARY       ? FM_ACT_SIGMOID
                          : task == FM_TASK_MULTICLASS ? FM_ACT_SOFTMAX
                                                       : FM_ACT_IDENTITY;
    FM_CHECK_INT(fm_net_new(sizes, 2, FM_ACT_RELU, act, &m->net, &err), 0);
    m->task = task;
    m->family = strdup(task == FM_TASK_MULTICLASS ? "softmax" : "logistic");
    if (task == FM_TASK_BINARY) {
        static const char *const labels[] = {"no", "yes"};
        m->target = strdup("y");
        m->nclasses = 2;
        m->classes = copy_classes(labels, 2);
        m->loss = FM_LOSS_BINARY;
    } else if (task == FM_TASK_MULTICLASS) {
        static const char *const labels[] = {"a", "b", "c"};
        m->target = strdup("kind");
        m->nclasses = 3;
        m->classes = copy_classes(labels, 3);
        m->loss = FM_LOSS_CATEGORICAL;
    } else {
        m->target = strdup("amount");
        m->loss = FM_LOSS_MSE;
        m->target_mean = 60.0;
        m->target_std = 8.0;
    }
    fm_net_t *net = m->net;
    for (int j = 0; j < nf; j++)
        for (int o = 0; o < nout; o++)
            net->params[net->weight_offset[0] + (size_t)(j * nout + o)] =
                0.3 * (j + 1 + o) * ((j + o) % 2 ? -1.0 : 1.0);
    for (int o = 0; o < nout; o++)
        net->params[net->bias_offset[0] + (size_t)o] = 0.1 * (o + 1);
    FM_CHECK_INT(fm_model_ready(m, &err), 0);
    return m;
}

static cJSON *compute(const fm_model_t *m, const fm_frame_t *f, const fm_importance_options_t *o) {
    cJSON *out = NULL;
    fm_error_t err;
    int rc = fm_importance_compute(m, f, NULL, 0, o, &out, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    return out;
}

static cJSON *entry_of(const cJSON *result, const char *list, const char *feature) {
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(result, list)) {
        if (!strcmp(cJSON_GetObjectItem(e, "feature")->valuestring, feature)) return (cJSON *)e;
    }
    return NULL;
}

/* The encoded block of prep column c for a raw number v or category id, from the parameters. */
static void reference_block(const fm_prep_column_t *c, double v, int32_t id, double *block) {
    memset(block, 0, c->width * sizeof *block);
    if (c->type == FM_COLUMN_NUMERIC)
        block[0] = (v - c->mean) / c->std;
    else
        block[id] = 1.0;
}

static void test_partial_dependence_linear(void) {
    fm_frame_t *f = make_frame(0);
    for (int indicators = 0; indicators <= 1; indicators++) {
        fm_model_t *m = make_model(f, FM_TASK_REGRESSION, indicators);
        fm_importance_options_t o;
        fm_importance_options_defaults(&o);
        o.grid = 6;
        o.ice_rows = 7;
        cJSON *out = compute(m, f, &o);
        const fm_prep_t *prep = m->prep;
        size_t nf = prep->nfeatures;
        double *x = malloc(NROWS * nf * sizeof *x), block[16];
        fm_error_t err;
        FM_CHECK_INT(fm_prep_transform(prep, f, NULL, NROWS, x, &err), 0);
        const double *w = m->net->params + m->net->weight_offset[0];
        double b = m->net->params[m->net->bias_offset[0]], worst = 0.0;
        for (size_t k = 0; k < prep->ncolumns; k++) {
            const fm_prep_column_t *c = &prep->columns[k];
            cJSON *e = entry_of(out, "partial_dependence", c->name);
            if (c->width == 0) {
                FM_CHECK(e == NULL);
                continue;
            }
            FM_CHECK(e != NULL);
            if (!e) continue;
            cJSON *grid = cJSON_GetObjectItem(e, "grid"), *avg = cJSON_GetObjectItem(e, "average");
            cJSON *ice = cJSON_GetObjectItem(e, "ice");
            FM_CHECK_INT(cJSON_GetArraySize(ice), 7);
            FM_CHECK_INT(cJSON_GetArraySize(avg), cJSON_GetArraySize(grid));
            int g = 0;
            const cJSON *point;
            cJSON_ArrayForEach(point, grid) {
                if (c->type == FM_COLUMN_NUMERIC) {
                    reference_block(c, point->valuedouble, 0, block);
                } else {
                    FM_CHECK_STR(point->valuestring, fm_strdict_get(&c->categories, g));
                    reference_block(c, 0.0, g, block);
                }
                double sum = 0.0;
                for (size_t i = 0; i < NROWS; i++) {
                    double z = b;
                    for (size_t j = 0; j < nf; j++) {
                        int in = j >= c->offset && j < c->offset + c->width;
                        z += w[j] * (in ? block[j - c->offset] : x[i * nf + j]);
                    }
                    double pred = m->target_mean + m->target_std * z;
                    sum += pred;
                    if (i < 7) {
                        double got =
                            cJSON_GetArrayItem(cJSON_GetArrayItem(ice, (int)i), g)->valuedouble;
                        worst = fmax(worst, fabs(got - pred) / 100.0);
                    }
                }
                double want = sum / NROWS;
                worst = fmax(worst, fabs(cJSON_GetArrayItem(avg, g)->valuedouble - want) / 100.0);
                g++;
            }
            if (c->type == FM_COLUMN_CATEGORICAL) FM_CHECK_INT(g, (int)c->categories.count);
        }
        printf("  missing indicators %d: partial dependence and ICE vs formula, relative diff "
               "%.3g\n",
               indicators, worst);
        FM_CHECK(worst < 1e-5);
        free(x);
        cJSON_Delete(out);
        fm_model_free(m);
    }
    fm_frame_free(f);
}

/* sklearn's AUC by counting pairs: ties count one half. */
static double naive_auc(const double *p, const int *y, size_t n) {
    double pairs = 0.0, wins = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (y[i] == 1 && y[j] == 0) {
                pairs += 1.0;
                wins += p[i] > p[j] ? 1.0 : p[i] == p[j] ? 0.5 : 0.0;
            }
    return wins / pairs;
}

static double naive_score(const fm_model_t *m, const fm_importance_sample_t *s, const double *p) {
    size_t n = s->n;
    if (m->task == FM_TASK_BINARY) return naive_auc(p, s->label, n);
    if (m->task == FM_TASK_MULTICLASS) {
        double hits = 0.0;
        for (size_t i = 0; i < n; i++) {
            size_t best = 0;
            for (size_t k = 1; k < m->nclasses; k++)
                if (p[i * m->nclasses + k] > p[i * m->nclasses + best]) best = k;
            hits += (int)best == s->label[i] ? 1.0 : 0.0;
        }
        return hits / (double)n;
    }
    double mean = 0.0, ss_res = 0.0, ss_tot = 0.0;
    for (size_t i = 0; i < n; i++)
        mean += s->value[i] / (double)n;
    for (size_t i = 0; i < n; i++) {
        ss_res += (s->value[i] - p[i]) * (s->value[i] - p[i]);
        ss_tot += (s->value[i] - mean) * (s->value[i] - mean);
    }
    return 1.0 - ss_res / ss_tot;
}

static void test_permutation_against_naive(void) {
    fm_frame_t *f = make_frame(7);
    fm_task_t tasks[3] = {FM_TASK_BINARY, FM_TASK_MULTICLASS, FM_TASK_REGRESSION};
    for (int t = 0; t < 3; t++) {
        fm_model_t *m = make_model(f, tasks[t], 1);
        fm_importance_options_t o;
        fm_importance_options_defaults(&o);
        o.repeats = 4;
        o.max_rows = 90;
        o.seed = 1234;
        cJSON *out = compute(m, f, &o);
        fm_importance_sample_t s;
        fm_error_t err;
        FM_CHECK_INT(fm_importance_sample_rows(m, f, NULL, 0, o.max_rows, o.seed, &s, &err), 0);
        const fm_prep_t *prep = m->prep;
        size_t nf = prep->nfeatures, w = fm_model_output_width(m), n = s.n;
        double *x = malloc(n * nf * sizeof *x), *xp = malloc(n * nf * sizeof *x);
        double *p = malloc(n * w * sizeof *p);
        size_t *perm = malloc(n * sizeof *perm);
        fm_model_workspace_t *ws = NULL;
        FM_CHECK_INT(fm_model_workspace_new(m, (int)n, &ws, &err), 0);
        FM_CHECK_INT(fm_prep_transform(prep, f, s.rows, n, x, &err), 0);
        fm_model_predict_encoded(m, ws, x, n, p);
        double base = naive_score(m, &s, p), worst = 0.0;
        FM_CHECK_NEAR(cJSON_GetObjectItem(out, "score")->valuedouble, base, 1e-12);
        for (size_t k = 0; k < prep->ncolumns; k++) {
            const fm_prep_column_t *c = &prep->columns[k];
            cJSON *e = entry_of(out, "permutation_importance", c->name);
            if (c->width == 0) {
                FM_CHECK(e == NULL);
                continue;
            }
            fm_rng_t rng;
            fm_importance_permutation_rng(&rng, o.seed, k);
            double drops[4], mean = 0.0, var = 0.0;
            for (int r = 0; r < 4; r++) {
                fm_importance_permutation_next(&rng, perm, n);
                memcpy(xp, x, n * nf * sizeof *x);
                for (size_t i = 0; i < n; i++)
                    for (size_t j = 0; j < c->width; j++)
                        xp[i * nf + c->offset + j] = x[perm[i] * nf + c->offset + j];
                fm_model_predict_encoded(m, ws, xp, n, p);
                drops[r] = base - naive_score(m, &s, p);
                mean += drops[r] / 4.0;
            }
            for (int r = 0; r < 4; r++)
                var += (drops[r] - mean) * (drops[r] - mean) / 4.0;
            FM_CHECK(e != NULL);
            if (!e) continue;
            worst = fmax(worst, fabs(cJSON_GetObjectItem(e, "mean")->valuedouble - mean));
            worst = fmax(worst, fabs(cJSON_GetObjectItem(e, "std")->valuedouble - sqrt(var)));
        }
        printf("  %s: permutation importance vs naive loop, max |diff| %.3g\n",
               fm_task_name(m->task), worst);
        FM_CHECK(worst < 1e-12);
        FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(out, "permutation_importance")), 3);
        fm_model_workspace_free(ws);
        free(x);
        free(xp);
        free(p);
        free(perm);
        fm_importance_sample_deinit(&s);
        cJSON_Delete(out);
        fm_model_free(m);
    }
    fm_frame_free(f);
}

static void test_permutations_are_permutations(void) {
    fm_rng_t a, b, c;
    size_t p[50], q[50], seen[50] = {0};
    fm_importance_permutation_rng(&a, 9, 2);
    fm_importance_permutation_rng(&b, 9, 2);
    fm_importance_permutation_rng(&c, 9, 3);
    fm_importance_permutation_next(&a, p, 50);
    fm_importance_permutation_next(&b, q, 50);
    FM_CHECK(memcmp(p, q, sizeof p) == 0);
    for (size_t i = 0; i < 50; i++)
        seen[p[i]]++;
    for (size_t i = 0; i < 50; i++)
        FM_CHECK_INT(seen[i], 1);
    fm_importance_permutation_next(&c, q, 50);
    FM_CHECK(memcmp(p, q, sizeof p) != 0);
    fm_importance_permutation_next(&a, q, 50);
    FM_CHECK(memcmp(p, q, sizeof p) != 0);
}

static void test_numeric_grid(void) {
    /* 100 distinct values 1..100 (in scrambled order), then 10 rows of missing cells. */
    fm_buf_t csv = FM_BUF_INIT;
    fm_buf_puts(&csv, "v,few,text\n");
    for (size_t i = 0; i < 110; i++) {
        if (i >= 100)
            fm_buf_puts(&csv, "NA,NA,NA\n");
        else
            fm_buf_printf(&csv, "%zu,%zu,%s\n", (i * 37) % 100 + 1, (i * 3) % 4,
                          i % 2 ? "2.5" : "1");
    }
    fm_frame_t *f = fm_test_frame_from_text(csv.data, NULL);
    fm_buf_free(&csv);
    fm_importance_sample_t s = {0};
    s.n = f->nrows;
    s.rows = malloc(s.n * sizeof *s.rows);
    for (size_t i = 0; i < s.n; i++)
        s.rows[i] = i;
    double *grid = NULL;
    size_t count = 0;
    fm_error_t err;
    /* percentile 5 of 1..100: 1 + 0.05 * 99 = 5.95; 95: 1 + 0.95 * 99 = 95.05. */
    FM_CHECK_INT(fm_importance_numeric_grid(&f->columns[0], &s, 5, &grid, &count, &err), 0);
    FM_CHECK_INT(count, 5);
    double want[5] = {5.95, 28.225, 50.5, 72.775, 95.05};
    for (size_t i = 0; i < count && i < 5; i++)
        FM_CHECK_NEAR(grid[i], want[i], 1e-12);
    free(grid);
    /* 100 distinct values with a grid of 100 or more: the values themselves. */
    FM_CHECK_INT(fm_importance_numeric_grid(&f->columns[0], &s, 100, &grid, &count, &err), 0);
    FM_CHECK_INT(count, 100);
    for (size_t i = 0; i < count; i++)
        FM_CHECK_NEAR(grid[i], (double)(i + 1), 0.0);
    free(grid);
    FM_CHECK_INT(fm_importance_numeric_grid(&f->columns[1], &s, 20, &grid, &count, &err), 0);
    FM_CHECK_INT(count, 4);
    for (size_t i = 0; i < count; i++)
        FM_CHECK_NEAR(grid[i], (double)i, 0.0);
    free(grid);
    /* A text column of numbers is read as numbers. */
    FM_CHECK_INT(fm_importance_numeric_grid(&f->columns[2], &s, 20, &grid, &count, &err), 0);
    FM_CHECK_INT(count, 2);
    if (count == 2) FM_CHECK(grid[0] == 1.0 && grid[1] == 2.5);
    free(grid);
    /* Only missing rows: an empty grid. */
    s.rows[0] = 105;
    s.n = 1;
    FM_CHECK_INT(fm_importance_numeric_grid(&f->columns[0], &s, 20, &grid, &count, &err), 0);
    FM_CHECK_INT(count, 0);
    free(grid);
    fm_importance_sample_deinit(&s);
    fm_frame_free(f);
    /* Text that is not a number in a column read as numbers. */
    f = fm_test_frame_from_text("v\n1\nabc\n", NULL);
    size_t rows[2] = {0, 1};
    fm_importance_sample_t t = {2, rows, NULL, NULL, 0};
    FM_CHECK_INT(fm_importance_numeric_grid(&f->columns[0], &t, 20, &grid, &count, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "'v'") && strstr(err.msg, "'abc'"));
    fm_frame_free(f);
}

static void test_sample(void) {
    fm_frame_t *f = make_frame(7);
    fm_model_t *m = make_model(f, FM_TASK_BINARY, 0);
    fm_importance_sample_t a, b, c;
    fm_error_t err;
    size_t blank = 0;
    for (size_t i = 0; i < NROWS; i++)
        blank += i % 7 == 1 ? 1 : 0;
    FM_CHECK_INT(fm_importance_sample_rows(m, f, NULL, 0, 100000, 1, &a, &err), 0);
    FM_CHECK_INT(a.n, NROWS - blank);
    FM_CHECK_INT(a.missing, blank);
    for (size_t i = 0; i < a.n; i++) {
        FM_CHECK(a.rows[i] % 7 != 1);
        if (i) FM_CHECK(a.rows[i] > a.rows[i - 1]);
        FM_CHECK_INT(a.label[i], (a.rows[i] * 7) % 11 > 5);
    }
    fm_importance_sample_deinit(&a);
    FM_CHECK_INT(fm_importance_sample_rows(m, f, NULL, 0, 30, 5, &a, &err), 0);
    FM_CHECK_INT(fm_importance_sample_rows(m, f, NULL, 0, 30, 5, &b, &err), 0);
    FM_CHECK_INT(fm_importance_sample_rows(m, f, NULL, 0, 30, 6, &c, &err), 0);
    FM_CHECK_INT(a.n, 30);
    FM_CHECK(memcmp(a.rows, b.rows, 30 * sizeof *a.rows) == 0);
    FM_CHECK(memcmp(a.rows, c.rows, 30 * sizeof *a.rows) != 0);
    for (size_t i = 0; i < a.n; i++) {
        FM_CHECK(a.rows[i] % 7 != 1);
        if (i) FM_CHECK(a.rows[i] > a.rows[i - 1]);
    }
    fm_importance_sample_deinit(&a);
    fm_importance_sample_deinit(&b);
    fm_importance_sample_deinit(&c);
    /* Given rows keep their order; those without a target are left out. */
    size_t rows[5] = {52, 8, 1, 3, 30};
    FM_CHECK_INT(fm_importance_sample_rows(m, f, rows, 5, 100, 1, &a, &err), 0);
    FM_CHECK_INT(a.n, 3);
    if (a.n == 3) FM_CHECK(a.rows[0] == 52 && a.rows[1] == 3 && a.rows[2] == 30);
    fm_importance_sample_deinit(&a);
    size_t bad[2] = {3, NROWS};
    FM_CHECK_INT(fm_importance_sample_rows(m, f, bad, 2, 100, 1, &a, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "120") != NULL);
    fm_model_free(m);
    /* A numeric 0/1 target column matches classes named "0" and "1". */
    m = make_model(f, FM_TASK_BINARY, 0);
    free(m->target);
    m->target = strdup("flag");
    free(m->classes[0]);
    free(m->classes[1]);
    m->classes[0] = strdup("0");
    m->classes[1] = strdup("1");
    FM_CHECK_INT(fm_importance_sample_rows(m, f, NULL, 0, 1000, 1, &a, &err), 0);
    for (size_t i = 0; i < a.n; i++)
        FM_CHECK_INT(a.label[i], (a.rows[i] * 7) % 11 > 5);
    fm_importance_sample_deinit(&a);
    fm_model_free(m);
    fm_frame_free(f);
}

static void test_json_layout(void) {
    fm_frame_t *f = make_frame(0);
    fm_model_t *m = make_model(f, FM_TASK_MULTICLASS, 1);
    fm_importance_options_t o;
    fm_importance_options_defaults(&o);
    FM_CHECK_INT(o.repeats, 5);
    FM_CHECK_INT(o.grid, 20);
    FM_CHECK_INT(o.ice_rows, 20);
    FM_CHECK_INT(o.max_rows, 2000);
    FM_CHECK_INT(o.seed, 42);
    o.ice_rows = 1000;
    cJSON *out = compute(m, f, &o);
    FM_CHECK_INT(cJSON_GetObjectItem(out, "rows")->valueint, NROWS);
    FM_CHECK_STR(cJSON_GetObjectItem(out, "metric")->valuestring, "accuracy");
    FM_CHECK_INT(cJSON_GetObjectItem(out, "repeats")->valueint, 5);
    FM_CHECK_INT(cJSON_GetObjectItem(out, "seed")->valueint, 42);
    FM_CHECK(entry_of(out, "partial_dependence", "name") == NULL);
    cJSON *e = entry_of(out, "partial_dependence", "x2");
    FM_CHECK(e != NULL);
    if (e) {
        FM_CHECK_STR(cJSON_GetObjectItem(e, "kind")->valuestring, "numeric");
        FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(e, "grid")), 5);
        FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(e, "ice")), NROWS);
        const cJSON *point;
        cJSON_ArrayForEach(point, cJSON_GetObjectItem(e, "average")) {
            FM_CHECK_INT(cJSON_GetArraySize(point), 3);
            double sum = 0.0;
            const cJSON *p;
            cJSON_ArrayForEach(p, point) sum += p->valuedouble;
            FM_CHECK_NEAR(sum, 1.0, 1e-5);
        }
    }
    e = entry_of(out, "partial_dependence", "color");
    FM_CHECK(e != NULL);
    if (e) FM_CHECK_STR(cJSON_GetObjectItem(e, "kind")->valuestring, "categorical");
    cJSON_Delete(out);
    /* No ICE rows: empty lists. Default options when options is NULL. */
    o.ice_rows = 0;
    out = compute(m, f, &o);
    e = entry_of(out, "partial_dependence", "x1");
    FM_CHECK(e && cJSON_GetArraySize(cJSON_GetObjectItem(e, "ice")) == 0);
    cJSON_Delete(out);
    out = compute(m, f, NULL);
    FM_CHECK_INT(cJSON_GetObjectItem(out, "repeats")->valueint, 5);
    cJSON_Delete(out);
    fm_model_free(m);
    fm_frame_free(f);
}

static void expect_error(const fm_model_t *m, const fm_frame_t *f, const fm_importance_options_t *o,
                         int code, const char *words) {
    cJSON *out = (cJSON *)1;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_importance_compute(m, f, NULL, 0, o, &out, &err);
    FM_CHECK_MSG(rc == code, "want %s, got %s: %s", fm_error_name(code), fm_error_name(rc),
                 err.msg);
    FM_CHECK_MSG(strstr(err.msg, words) != NULL, "'%s' not in '%s'", words, err.msg);
    FM_CHECK(out == NULL);
}

static void test_errors(void) {
    fm_frame_t *f = make_frame(0);
    fm_model_t *m = make_model(f, FM_TASK_BINARY, 0);
    fm_importance_options_t o, d;
    fm_importance_options_defaults(&d);
    o = d, o.repeats = 0;
    expect_error(m, f, &o, FM_EINVAL, "repeats");
    o = d, o.repeats = 101;
    expect_error(m, f, &o, FM_EINVAL, "repeats: 101");
    o = d, o.grid = 1;
    expect_error(m, f, &o, FM_EINVAL, "grid: 1");
    o = d, o.grid = 201;
    expect_error(m, f, &o, FM_EINVAL, "grid: 201");
    o = d, o.ice_rows = 1001;
    expect_error(m, f, &o, FM_EINVAL, "ice_rows: 1001");
    o = d, o.max_rows = 0;
    expect_error(m, f, &o, FM_EINVAL, "max_rows");
    fm_frame_free(f);

    f = fm_test_frame_from_text("x1,x2,color,name\n1,2,red,a\n3,4,blue,b\n", NULL);
    expect_error(m, f, &d, FM_EDATA, "target column 'y' not found");
    fm_frame_free(f);
    f = fm_test_frame_from_text("x1,x2,color,name,y\n1,2,red,a,yes\n3,4,blue,b,yes\n5,6,red,c,\n",
                                NULL);
    expect_error(m, f, &d, FM_EDATA, "of class 'yes'");
    fm_frame_free(f);
    f = fm_test_frame_from_text("x1,x2,color,name,y\n1,2,red,a,\n3,4,blue,b,NA\n", NULL);
    expect_error(m, f, &d, FM_EDATA, "no row has a value in target column 'y'");
    fm_frame_free(f);
    f = fm_test_frame_from_text("x1,x2,color,name,y\n1,2,red,a,yes\n3,4,blue,b,maybe\n", NULL);
    expect_error(m, f, &d, FM_EDATA, "value 'maybe' is not one of the model's classes");
    fm_frame_free(f);
    f = fm_test_frame_from_text("x2,color,name,y\n2,red,a,yes\n4,blue,b,no\n", NULL);
    expect_error(m, f, &d, FM_ENOTFOUND, "'x1'");
    fm_frame_free(f);
    f = fm_test_frame_from_text("x1,x2,color,name,y\n1,2,red,a,yes\n3,x,blue,b,no\n", NULL);
    expect_error(m, f, &d, FM_EDATA, "'x2'");
    fm_frame_free(f);
    fm_model_free(m);

    f = make_frame(0);
    m = make_model(f, FM_TASK_REGRESSION, 0);
    fm_frame_free(f);
    f = fm_test_frame_from_text("x1,x2,color,name,amount\n1,2,red,a,5\n3,4,blue,b,lots\n", NULL);
    expect_error(m, f, &d, FM_EDATA, "value 'lots' is not a number");
    fm_frame_free(f);
    fm_model_free(m);
}

FM_TEST_MAIN(FM_TEST_CASE(test_partial_dependence_linear),
             FM_TEST_CASE(test_permutation_against_naive),
             FM_TEST_CASE(test_permutations_are_permutations), FM_TEST_CASE(test_numeric_grid),
             FM_TEST_CASE(test_sample), FM_TEST_CASE(test_json_layout), FM_TEST_CASE(test_errors))
