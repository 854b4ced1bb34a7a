/*
 * Tests of preprocessing (fm_prep_*): parameters fitted on a subset of rows checked against
 * formulas written out here (median, population standard deviation, category order, most frequent
 * with ties), missing-value imputation and indicators, unseen categories, the category limit,
 * feature names, transform against encode_row on every row, mixed input types (numbers given as
 * text, categories given as numbers), JSON round trips and rejection of corrupted JSON.
 */
#include "core/json.h"
#include "core/rng.h"
#include "data/prep.h"
#include "fm_test.h"
#include "fm_test_frame.h"

#include <unistd.h>

/* x: numeric with a missing value; c: categorical with a tie and a missing value; k: constant;
 * e: numeric, missing in the first four rows. */
static const char *SAMPLE = "x,c,k,e\n"
                            "1,a,5,NA\n"
                            "2,b,5,\n"
                            "NA,a,5,NA\n"
                            "4,NA,5,NA\n"
                            "10,c,5,3\n"
                            "7,b,5,1\n";

/* Population standard deviation of v[0..n), written out. */
static double population_std(const double *v, size_t n) {
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        mean += v[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (v[i] - mean) * (v[i] - mean);
    return sqrt(ss / (double)n);
}

static void test_fit_on_subset(void) {
    fm_frame_t *f = fm_test_frame_from_text(SAMPLE, NULL);
    if (!f) return;
    size_t cols[] = {0, 1, 2, 3};
    size_t rows[] = {0, 1, 2, 3}; /* the rows with x = 10 and 7 and category c are not seen */
    fm_prep_options_t opt = {1, 0};
    fm_prep_t *p = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_prep_fit(f, cols, 4, rows, 4, &opt, &p, &err), 0);
    if (!p) {
        fm_frame_free(f);
        return;
    }
    /* x over rows 0-3: 1, 2, NA, 4 -> median of {1, 2, 4} = 2; imputed {1, 2, 2, 4}. */
    const fm_prep_column_t *x = &p->columns[0];
    double imputed[] = {1, 2, 2, 4};
    FM_CHECK(x->type == FM_COLUMN_NUMERIC);
    FM_CHECK(x->median == 2);
    FM_CHECK_NEAR(x->mean, 2.25, 1e-15);
    FM_CHECK_NEAR(x->std, population_std(imputed, 4), 1e-15);
    FM_CHECK_NEAR(x->std, sqrt(1.1875), 1e-15);
    FM_CHECK(x->missing_indicator == 1 && x->offset == 0 && x->width == 2);
    /* c over rows 0-3: a, b, a, NA -> categories [a, b], most frequent a. */
    const fm_prep_column_t *c = &p->columns[1];
    FM_CHECK(c->type == FM_COLUMN_CATEGORICAL);
    FM_CHECK_INT(c->categories.count, 2);
    FM_CHECK_STR(fm_strdict_get(&c->categories, 0), "a");
    FM_CHECK_STR(fm_strdict_get(&c->categories, 1), "b");
    FM_CHECK_INT(c->most_frequent, 0);
    FM_CHECK(c->missing_indicator == 1 && c->offset == 2 && c->width == 3);
    /* k: constant -> centred exactly, scale 1, no indicator (nothing missing). */
    const fm_prep_column_t *k = &p->columns[2];
    FM_CHECK(k->mean == 5 && k->std == 1 && k->median == 5 && !k->missing_indicator);
    FM_CHECK(k->offset == 5 && k->width == 1);
    /* e: entirely missing in these rows -> median 0, mean 0, std 1, indicator. */
    const fm_prep_column_t *e = &p->columns[3];
    FM_CHECK(e->median == 0 && e->mean == 0 && e->std == 1 && e->missing_indicator);
    FM_CHECK(e->offset == 6 && e->width == 2);
    FM_CHECK_INT(p->nfeatures, 8);
    FM_CHECK_INT(fm_prep_find(p, "c"), 1);
    FM_CHECK_INT(fm_prep_find(p, "zz"), -1);

    /* Feature names. */
    const char *names[] = {"x", "x_missing", "c=a", "c=b", "c_missing", "k", "e", "e_missing"};
    char buf[64];
    for (size_t j = 0; j < 8; j++)
        FM_CHECK_STR(fm_prep_feature_name(p, j, buf, sizeof buf), names[j]);
    FM_CHECK_STR(fm_prep_feature_name(p, 99, buf, sizeof buf), "");
    FM_CHECK_STR(fm_prep_feature_name(p, 1, buf, 4), "x_m");

    /* Transform all six rows and compare with the formulas. */
    double out[6 * 8];
    FM_CHECK_INT(fm_prep_transform(p, f, NULL, 6, out, &err), 0);
    double sx = x->std;
    double want[6][8] = {
        {(1 - 2.25) / sx, 0, 1, 0, 0, 0, (0 - 0.0) / 1, 1},
        {(2 - 2.25) / sx, 0, 0, 1, 0, 0, 0, 1},
        {(2 - 2.25) / sx, 1, 1, 0, 0, 0, 0, 1},  /* x missing -> median 2 */
        {(4 - 2.25) / sx, 0, 1, 0, 1, 0, 0, 1},  /* c missing -> most frequent a */
        {(10 - 2.25) / sx, 0, 0, 0, 0, 0, 3, 0}, /* c unseen -> zeros */
        {(7 - 2.25) / sx, 0, 0, 1, 0, 0, 1, 0},
    };
    double worst = fm_test_max_diff("transform vs formulas", out, &want[0][0], 6 * 8);
    FM_CHECK(worst <= 1e-15);

    /* A row subset in any order, with repeats. */
    size_t pick[] = {4, 0, 4};
    double some[3 * 8];
    FM_CHECK_INT(fm_prep_transform(p, f, pick, 3, some, &err), 0);
    FM_CHECK(memcmp(some, out + 4 * 8, 8 * sizeof(double)) == 0);
    FM_CHECK(memcmp(some + 8, out, 8 * sizeof(double)) == 0);
    FM_CHECK(memcmp(some + 16, out + 4 * 8, 8 * sizeof(double)) == 0);
    fm_prep_free(p);
    fm_prep_free(NULL);

    /* Without indicators; the even-count median is the mean of the two middle values. */
    size_t rows2[] = {0, 1, 3, 4}; /* x: 1, 2, 4, 10 */
    FM_CHECK_INT(fm_prep_fit(f, cols, 1, rows2, 4, NULL, &p, &err), 0);
    if (p) {
        FM_CHECK(p->columns[0].median == 3 && !p->columns[0].missing_indicator);
        FM_CHECK_INT(p->nfeatures, 1);
        fm_prep_free(p);
    }
    /* All rows (rows NULL): c has a, b twice each -> the tie goes to a; e's median 2. */
    FM_CHECK_INT(fm_prep_fit(f, cols, 4, NULL, 0, &opt, &p, &err), 0);
    if (p) {
        FM_CHECK_INT(p->columns[1].categories.count, 3);
        FM_CHECK_INT(p->columns[1].most_frequent, 0);
        FM_CHECK(p->columns[3].median == 2);
        double e_imputed[] = {2, 2, 2, 2, 3, 1};
        FM_CHECK_NEAR(p->columns[3].std, population_std(e_imputed, 6), 1e-15);
        fm_prep_free(p);
    }
    fm_frame_free(f);
}

static void test_fit_errors(void) {
    fm_frame_t *f = fm_test_frame_from_text(SAMPLE, NULL);
    if (!f) return;
    fm_prep_t *p = (fm_prep_t *)1;
    fm_error_t err;
    size_t cols[] = {0, 1}, rows[] = {0};
    FM_CHECK_INT(fm_prep_fit(f, cols, 2, rows, 0, NULL, &p, &err), FM_EINVAL);
    FM_CHECK(p == NULL);
    FM_CHECK_INT(fm_prep_fit(f, cols, 0, NULL, 0, NULL, &p, &err), FM_EINVAL);
    size_t bad_col[] = {9};
    FM_CHECK_INT(fm_prep_fit(f, bad_col, 1, NULL, 0, NULL, &p, &err), FM_EINVAL);
    size_t twice[] = {1, 1};
    FM_CHECK_INT(fm_prep_fit(f, twice, 2, NULL, 0, NULL, &p, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "'c' selected twice") != NULL);
    size_t bad_row[] = {0, 6};
    FM_CHECK_INT(fm_prep_fit(f, cols, 2, bad_row, 2, NULL, &p, &err), FM_EINVAL);
    /* A categorical column that is empty in training and no indicators: no features at all. */
    size_t c_only[] = {1}, row3[] = {3};
    FM_CHECK_INT(fm_prep_fit(f, c_only, 1, row3, 1, NULL, &p, &err), FM_EDATA);
    /* ... with indicators it is one column, and a value encodes as zeros. */
    fm_prep_options_t opt = {1, 0};
    FM_CHECK_INT(fm_prep_fit(f, c_only, 1, row3, 1, &opt, &p, &err), 0);
    if (p) {
        FM_CHECK(p->nfeatures == 1 && p->columns[0].most_frequent == -1);
        double out[6];
        FM_CHECK_INT(fm_prep_transform(p, f, NULL, 6, out, &err), 0);
        FM_CHECK(out[0] == 0 && out[3] == 1);
        fm_prep_free(p);
    }
    /* Transform: a missing column, too many rows, a bad row index. */
    FM_CHECK_INT(fm_prep_fit(f, cols, 2, NULL, 0, NULL, &p, &err), 0);
    fm_frame_t *g = fm_test_frame_from_text("x,other\n1,2\n", NULL);
    double out[64];
    if (p && g) {
        FM_CHECK_INT(fm_prep_transform(p, g, NULL, 1, out, &err), FM_ENOTFOUND);
        FM_CHECK(strstr(err.msg, "column 'c' not found") != NULL);
        FM_CHECK_INT(fm_prep_transform(p, f, NULL, 7, out, &err), FM_EINVAL);
        size_t r[] = {6};
        FM_CHECK_INT(fm_prep_transform(p, f, r, 1, out, &err), FM_EINVAL);
        FM_CHECK_INT(fm_prep_transform(p, f, NULL, 0, out, &err), 0);
    }
    fm_prep_free(p);
    fm_frame_free(g);
    fm_frame_free(f);
}

static void test_category_limit(void) {
    /* z and y three times, a twice, b once. */
    fm_frame_t *f = fm_test_frame_from_text("v\nz\ny\nb\na\nz\ny\na\nz\ny\n", NULL);
    if (!f) return;
    size_t cols[] = {0};
    fm_prep_t *p = NULL;
    fm_error_t err;
    fm_prep_options_t opt = {0, 2};
    FM_CHECK_INT(fm_prep_fit(f, cols, 1, NULL, 0, &opt, &p, &err), 0);
    if (p) {
        /* The two most frequent (a tie, both kept), then in byte order; y wins the tie. */
        FM_CHECK_INT(p->columns[0].categories.count, 2);
        FM_CHECK_STR(fm_strdict_get(&p->columns[0].categories, 0), "y");
        FM_CHECK_STR(fm_strdict_get(&p->columns[0].categories, 1), "z");
        FM_CHECK_INT(p->columns[0].most_frequent, 0);
        fm_raw_value_t v = {FM_RAW_STRING, 0, "b", 1};
        double out[2] = {9, 9};
        FM_CHECK_INT(fm_prep_encode_row(p, &v, out, &err), 0);
        FM_CHECK(out[0] == 0 && out[1] == 0); /* dropped category: the unseen path */
        fm_prep_free(p);
    }
    opt.max_categories = 3;
    FM_CHECK_INT(fm_prep_fit(f, cols, 1, NULL, 0, &opt, &p, &err), 0);
    if (p) {
        FM_CHECK_INT(p->columns[0].categories.count, 3);
        FM_CHECK_STR(fm_strdict_get(&p->columns[0].categories, 0), "a");
        FM_CHECK_STR(fm_strdict_get(&p->columns[0].categories, 2), "z");
        FM_CHECK_INT(p->columns[0].most_frequent, 1);
        fm_prep_free(p);
    }
    fm_frame_free(f);
    /* More than 100 distinct values: the default limit keeps 100. */
    char *text = malloc(200 * 16);
    if (!text) return;
    size_t used = (size_t)sprintf(text, "v\n");
    for (int i = 0; i < 150; i++)
        used += (size_t)sprintf(text + used, "v%03d\n", i);
    f = fm_test_frame_from_text(text, NULL);
    free(text);
    if (!f) return;
    FM_CHECK_INT(fm_prep_fit(f, cols, 1, NULL, 0, NULL, &p, &err), 0);
    if (p) {
        /* All tie at one: the first 100 in byte order. */
        FM_CHECK_INT(p->nfeatures, 100);
        FM_CHECK_STR(fm_strdict_get(&p->columns[0].categories, 99), "v099");
        fm_prep_free(p);
    }
    fm_frame_free(f);
}

/* Builds a one-column numeric frame owning a copy of v[0..n). */
static fm_frame_t *numeric_frame(const double *v, size_t n) {
    fm_frame_t *f = calloc(1, sizeof *f);
    f->columns = calloc(1, sizeof *f->columns);
    f->ncols = 1;
    f->nrows = n;
    f->source = strdup("generated");
    f->columns[0].name = strdup("v");
    f->columns[0].values = malloc(n * sizeof(double));
    memcpy(f->columns[0].values, v, n * sizeof(double));
    return f;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median against sorting, over many random sizes with many duplicates and NaNs. */
static void test_median_against_sort(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 3);
    double v[600], sorted[600];
    size_t bad = 0;
    for (int iter = 0; iter < 2000; iter++) {
        size_t n = 1 + fm_rng_below(&rng, 600), valid = 0;
        uint64_t distinct = 1 + fm_rng_below(&rng, iter % 2 ? 5 : 1000);
        for (size_t i = 0; i < n; i++) {
            v[i] = fm_rng_below(&rng, 10) == 0 ? NAN : (double)fm_rng_below(&rng, distinct) * 0.5;
            if (iter % 7 == 0) v[i] = (double)i; /* sorted input */
            if (!isnan(v[i])) sorted[valid++] = v[i];
        }
        qsort(sorted, valid, sizeof *sorted, compare_doubles);
        double want = valid == 0  ? 0
                      : valid % 2 ? sorted[valid / 2]
                                  : (sorted[valid / 2 - 1] + sorted[valid / 2]) / 2;
        fm_frame_t *f = numeric_frame(v, n);
        size_t col = 0;
        fm_prep_t *p = NULL;
        fm_error_t err;
        FM_CHECK_INT(fm_prep_fit(f, &col, 1, NULL, 0, NULL, &p, &err), 0);
        if (p && p->columns[0].median != want) bad++;
        fm_prep_free(p);
        fm_frame_free(f);
    }
    FM_CHECK_INT(bad, 0);
    /* Infinite values in a frame built by hand are refused. */
    double inf[] = {1, INFINITY};
    fm_frame_t *f = numeric_frame(inf, 2);
    size_t col = 0;
    fm_prep_t *p = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_prep_fit(f, &col, 1, NULL, 0, NULL, &p, &err), FM_EDATA);
    fm_frame_free(f);
}

/* The raw request values of frame row r, as a client would send them. */
static void raw_row(const fm_prep_t *p, const fm_frame_t *f, size_t r, fm_raw_value_t *v) {
    for (size_t k = 0; k < p->ncolumns; k++) {
        const fm_column_t *c = &f->columns[fm_frame_find(f, p->columns[k].name)];
        if (c->type == FM_COLUMN_NUMERIC) {
            v[k] = (fm_raw_value_t){FM_RAW_NUMBER, c->values[r], NULL, 0};
        } else if (c->codes[r] < 0) {
            v[k] = (fm_raw_value_t){FM_RAW_MISSING, 0, NULL, 0};
        } else {
            const char *s = fm_strdict_get(&c->dict, c->codes[r]);
            v[k] = (fm_raw_value_t){FM_RAW_STRING, 0, s, strlen(s)};
        }
    }
}

static void test_encode_row_matches_transform(void) {
    fm_frame_t *f = fm_test_frame_from_text(SAMPLE, NULL);
    if (!f) return;
    size_t cols[] = {3, 1, 0, 2}; /* prep order differs from the frame's */
    size_t rows[] = {0, 1, 2, 3, 4};
    fm_prep_options_t opt = {1, 0};
    fm_prep_t *p = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_prep_fit(f, cols, 4, rows, 5, &opt, &p, &err), 0);
    if (!p) {
        fm_frame_free(f);
        return;
    }
    size_t nf = p->nfeatures;
    double all[6 * 16], one[16];
    FM_CHECK(nf <= 16);
    FM_CHECK_INT(fm_prep_transform(p, f, NULL, 6, all, &err), 0);
    fm_raw_value_t v[4];
    size_t mismatches = 0;
    for (size_t r = 0; r < 6; r++) {
        raw_row(p, f, r, v);
        FM_CHECK_INT(fm_prep_encode_row(p, v, one, &err), 0);
        if (memcmp(one, all + r * nf, nf * sizeof(double)) != 0) mismatches++;
        /* Numbers given as text (and missing as a token) encode the same. */
        char text[4][32];
        for (size_t k = 0; k < 4; k++) {
            if (v[k].kind != FM_RAW_NUMBER) continue;
            if (isnan(v[k].number))
                snprintf(text[k], 32, " NA ");
            else
                snprintf(text[k], 32, "%.17g", v[k].number);
            v[k] = (fm_raw_value_t){FM_RAW_STRING, 0, text[k], strlen(text[k])};
        }
        FM_CHECK_INT(fm_prep_encode_row(p, v, one, &err), 0);
        if (memcmp(one, all + r * nf, nf * sizeof(double)) != 0) mismatches++;
    }
    FM_CHECK_INT(mismatches, 0);
    /* Missing given every way: as missing, NaN, or a token. */
    fm_raw_value_t m1[4] = {{FM_RAW_MISSING}, {FM_RAW_MISSING}, {FM_RAW_MISSING}, {FM_RAW_MISSING}};
    fm_raw_value_t m2[4] = {{FM_RAW_NUMBER, NAN},
                            {FM_RAW_STRING, 0, "null", 4},
                            {FM_RAW_STRING, 0, "", 0},
                            {FM_RAW_NUMBER, NAN}};
    double a[16], b[16];
    FM_CHECK_INT(fm_prep_encode_row(p, m1, a, &err), 0);
    FM_CHECK_INT(fm_prep_encode_row(p, m2, b, &err), 0);
    FM_CHECK(memcmp(a, b, nf * sizeof(double)) == 0);
    /* Bad text for a numeric column names the column; unseen categories never fail. */
    fm_raw_value_t bad[4] = {{FM_RAW_NUMBER, 1},
                             {FM_RAW_STRING, 0, "never-seen", 10},
                             {FM_RAW_STRING, 0, "12abc", 5},
                             {FM_RAW_NUMBER, 5}};
    FM_CHECK_INT(fm_prep_encode_row(p, bad, a, &err), FM_EDATA);
    FM_CHECK_STR(err.msg, "column 'x': '12abc' is not a number");
    bad[2] = (fm_raw_value_t){FM_RAW_STRING, 0, "inf", 3};
    FM_CHECK_INT(fm_prep_encode_row(p, bad, a, &err), FM_EDATA);
    FM_CHECK_STR(err.msg, "column 'x': 'inf' is not a finite number");
    bad[2] = (fm_raw_value_t){FM_RAW_NUMBER, INFINITY};
    FM_CHECK_INT(fm_prep_encode_row(p, bad, a, &err), FM_EDATA);
    bad[2] = (fm_raw_value_t){FM_RAW_NUMBER, 3};
    FM_CHECK_INT(fm_prep_encode_row(p, bad, a, &err), 0);
    size_t c = p->columns[1].offset;
    FM_CHECK(a[c] == 0 && a[c + 1] == 0 && a[c + 2] == 0); /* "never-seen" */
    /* A category given as a number that is not a category: zeros too. */
    bad[1] = (fm_raw_value_t){FM_RAW_NUMBER, 1.5};
    FM_CHECK_INT(fm_prep_encode_row(p, bad, a, &err), 0);
    FM_CHECK(a[c] == 0 && a[c + 1] == 0 && a[c + 2] == 0);
    fm_prep_free(p);
    fm_frame_free(f);
}

/*
 * Mixed types: a column that was categorical in training ("1", "2", "10", "0.5") fed numbers,
 * and a numeric column fed text.
 */
static void test_mixed_types(void) {
    fm_type_overrides_t as_text = {0};
    fm_type_overrides_add(&as_text, "code", FM_COLUMN_CATEGORICAL);
    fm_type_overrides_add(&as_text, "amount", FM_COLUMN_CATEGORICAL);
    const char *text = "code,amount\n1,10\n2,NA\n10,2.5\n0.5,4\n1,1e1\n";
    fm_frame_t *train = fm_test_frame_from_text(text, &as_text);
    fm_frame_t *numbers = fm_test_frame_from_text(text, NULL); /* both columns numeric */
    fm_type_overrides_free(&as_text);
    if (!train || !numbers) {
        fm_frame_free(train);
        fm_frame_free(numbers);
        return;
    }
    FM_CHECK(numbers->columns[0].type == FM_COLUMN_NUMERIC);
    fm_prep_t *pc = NULL, *pn = NULL;
    fm_error_t err;
    size_t col0 = 0, col1 = 1;
    fm_prep_options_t opt = {1, 0};
    FM_CHECK_INT(fm_prep_fit(train, &col0, 1, NULL, 0, &opt, &pc, &err), 0);   /* categorical */
    FM_CHECK_INT(fm_prep_fit(numbers, &col1, 1, NULL, 0, &opt, &pn, &err), 0); /* numeric */
    if (pc && pn) {
        /* Categories in byte order: "0.5" < "1" < "10" < "2". */
        FM_CHECK_STR(fm_strdict_get(&pc->columns[0].categories, 0), "0.5");
        FM_CHECK_STR(fm_strdict_get(&pc->columns[0].categories, 2), "10");
        double a[5 * 4], b[5 * 4];
        FM_CHECK_INT(fm_prep_transform(pc, train, NULL, 5, a, &err), 0);
        FM_CHECK_INT(fm_prep_transform(pc, numbers, NULL, 5, b, &err), 0); /* numbers -> text */
        FM_CHECK(memcmp(a, b, sizeof a) == 0);
        fm_raw_value_t ten = {FM_RAW_NUMBER, 10.0};
        double row[4];
        FM_CHECK_INT(fm_prep_encode_row(pc, &ten, row, &err), 0);
        FM_CHECK(row[0] == 0 && row[1] == 0 && row[2] == 1 && row[3] == 0);
        ten = (fm_raw_value_t){FM_RAW_NUMBER, 0.5};
        FM_CHECK_INT(fm_prep_encode_row(pc, &ten, row, &err), 0);
        FM_CHECK(row[0] == 1);

        /* Numeric prep fed text: "1e1" and "10" are both 10. */
        double c[5 * 2], d[5 * 2];
        FM_CHECK_INT(fm_prep_transform(pn, numbers, NULL, 5, c, &err), 0);
        FM_CHECK_INT(fm_prep_transform(pn, train, NULL, 5, d, &err), 0);
        FM_CHECK(memcmp(c, d, sizeof c) == 0);
        FM_CHECK(c[0] == c[8]);
    }
    /* Text that is not a number fails only when a transformed row holds it. */
    fm_type_overrides_t o = {0};
    fm_type_overrides_add(&o, "amount", FM_COLUMN_CATEGORICAL);
    fm_frame_t *bad = fm_test_frame_from_text("amount\n1\nabc\n3\n", &o);
    fm_type_overrides_free(&o);
    if (bad && pn) {
        double out[6];
        size_t ok_rows[] = {0, 2};
        FM_CHECK_INT(fm_prep_transform(pn, bad, ok_rows, 2, out, &err), 0);
        FM_CHECK_INT(fm_prep_transform(pn, bad, NULL, 3, out, &err), FM_EDATA);
        FM_CHECK_STR(err.msg, "column 'amount': 'abc' is not a number");
    }
    fm_frame_free(bad);
    fm_prep_free(pc);
    fm_prep_free(pn);
    fm_frame_free(train);
    fm_frame_free(numbers);
}

/* Exact equality of every fitted parameter. */
static int prep_equal(const fm_prep_t *a, const fm_prep_t *b) {
    if (a->ncolumns != b->ncolumns || a->nfeatures != b->nfeatures) return 0;
    for (size_t k = 0; k < a->ncolumns; k++) {
        const fm_prep_column_t *x = &a->columns[k], *y = &b->columns[k];
        if (strcmp(x->name, y->name) || x->type != y->type || x->pii != y->pii ||
            x->offset != y->offset || x->width != y->width ||
            x->missing_indicator != y->missing_indicator)
            return 0;
        if (x->type == FM_COLUMN_NUMERIC && (memcmp(&x->median, &y->median, sizeof(double)) ||
                                             memcmp(&x->mean, &y->mean, sizeof(double)) ||
                                             memcmp(&x->std, &y->std, sizeof(double))))
            return 0;
        if (x->type == FM_COLUMN_CATEGORICAL) {
            if (x->categories.count != y->categories.count || x->most_frequent != y->most_frequent)
                return 0;
            for (size_t i = 0; i < x->categories.count; i++)
                if (strcmp(x->categories.strings[i], y->categories.strings[i])) return 0;
        }
    }
    return 1;
}

static fm_prep_t *fit_sample(fm_frame_t **frame) {
    *frame = fm_test_frame_from_text("x,c,k,e\n"
                                     "0.1,\"a,\"\"quoted\"\"\",5,NA\n"
                                     "0.30000000000000004,b,5,\n"
                                     "NA,\xc3\xa9t\xc3\xa9,5,NA\n"
                                     "-1e-300,NA,5,2\n",
                                     NULL);
    if (!*frame) return NULL;
    size_t cols[] = {0, 1, 2, 3};
    fm_prep_options_t opt = {1, 0};
    fm_prep_t *p = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_prep_fit(*frame, cols, 4, NULL, 0, &opt, &p, &err), 0);
    return p;
}

static void test_json_round_trip(void) {
    fm_frame_t *f = NULL;
    fm_prep_t *p = fit_sample(&f);
    if (!p) {
        fm_frame_free(f);
        return;
    }
    cJSON *json = fm_prep_to_json(p);
    char *text = cJSON_PrintUnformatted(json);
    cJSON *parsed = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_json_parse(text, strlen(text), "prep", &parsed, &err), 0);
    fm_prep_t *q = NULL;
    FM_CHECK_INT(fm_prep_from_json(parsed, &q, &err), 0);
    FM_CHECK(q && prep_equal(p, q));
    if (q) {
        double a[4 * 16], b[4 * 16];
        FM_CHECK_INT(fm_prep_transform(p, f, NULL, 4, a, &err), 0);
        FM_CHECK_INT(fm_prep_transform(q, f, NULL, 4, b, &err), 0);
        FM_CHECK(memcmp(a, b, 4 * p->nfeatures * sizeof(double)) == 0);
    }
    /* Serialising the copy gives the same text. */
    cJSON *again = q ? fm_prep_to_json(q) : NULL;
    char *text2 = again ? cJSON_PrintUnformatted(again) : NULL;
    FM_CHECK(text2 && strcmp(text, text2) == 0);
    /* Every truncation of the text is rejected somewhere, never accepted. */
    size_t len = strlen(text), accepted = 0;
    for (size_t n = 0; n < len; n++) {
        cJSON *cut = NULL;
        fm_prep_t *r = NULL;
        if (fm_json_parse(text, n, "prep", &cut, &err) == 0 &&
            fm_prep_from_json(cut, &r, &err) == 0)
            accepted++;
        fm_prep_free(r);
        cJSON_Delete(cut);
    }
    FM_CHECK_INT(accepted, 0);
    free(text);
    free(text2);
    cJSON_Delete(again);
    cJSON_Delete(parsed);
    cJSON_Delete(json);
    fm_prep_free(q);
    fm_prep_free(p);
    fm_frame_free(f);
}

/* One corruption of a valid prep JSON; column is columns[index] (or NULL for the root). */
typedef void (*corrupt_fn)(cJSON *root, cJSON *x, cJSON *c, cJSON *e);

static void replace(cJSON *o, const char *key, cJSON *value) {
    cJSON_ReplaceItemInObjectCaseSensitive(o, key, value);
}

static void c_no_nfeatures(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)x, (void)c, (void)e;
    cJSON_DeleteItemFromObject(r, "nfeatures");
}
static void c_nfeatures(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)x, (void)c, (void)e;
    replace(r, "nfeatures", cJSON_CreateNumber(99));
}
static void c_columns_empty(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)x, (void)c, (void)e;
    replace(r, "columns", cJSON_CreateArray());
}
static void c_columns_object(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)x, (void)c, (void)e;
    replace(r, "columns", cJSON_CreateObject());
}
static void c_std_zero(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)c, (void)e;
    replace(x, "std", cJSON_CreateNumber(0));
}
static void c_std_negative(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)c, (void)e;
    replace(x, "std", cJSON_CreateNumber(-1));
}
static void c_median_null(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)c, (void)e;
    replace(x, "median", cJSON_CreateNull()); /* how a NaN or Inf would be written */
}
static void c_mean_text(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)c, (void)e;
    replace(x, "mean", cJSON_CreateString("1"));
}
static void c_type(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)c, (void)e;
    replace(x, "type", cJSON_CreateString("text"));
}
static void c_type_swapped(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)e;
    replace(c, "type", cJSON_CreateString("numeric"));
}
static void c_name_empty(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)c, (void)e;
    replace(x, "name", cJSON_CreateString(""));
}
static void c_name_duplicate(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)c;
    replace(e, "name", cJSON_CreateString("x"));
}
static void c_indicator_number(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)c, (void)e;
    replace(x, "missing_indicator", cJSON_CreateNumber(1));
}
static void c_indicator_flipped(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)c, (void)e;
    replace(x, "missing_indicator", cJSON_CreateFalse()); /* widths no longer add up */
}
static void c_offset(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)e;
    replace(c, "offset", cJSON_CreateNumber(3));
}
static void c_offset_fraction(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)c;
    replace(e, "offset", cJSON_CreateNumber(6.5));
}
static void c_width(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)e;
    replace(c, "width", cJSON_CreateNumber(2));
}
static void c_categories_duplicate(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)e;
    replace(c, "categories", cJSON_CreateArray());
    cJSON *cat = cJSON_GetObjectItem(c, "categories");
    for (int i = 0; i < 2; i++)
        cJSON_AddItemToArray(cat, cJSON_CreateString("a"));
    cJSON_AddItemToArray(cat, cJSON_CreateString("b"));
}
static void c_categories_unsorted(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)e;
    replace(c, "categories", cJSON_CreateArray());
    cJSON *cat = cJSON_GetObjectItem(c, "categories");
    const char *names[] = {"b", "a", "c"};
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToArray(cat, cJSON_CreateString(names[i]));
}
static void c_categories_number(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)e;
    cJSON *cat = cJSON_GetObjectItem(c, "categories");
    cJSON_ReplaceItemInArray(cat, 0, cJSON_CreateNumber(1));
}
static void c_most_frequent_high(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)e;
    replace(c, "most_frequent", cJSON_CreateNumber(3));
}
static void c_most_frequent_none(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)e;
    replace(c, "most_frequent", cJSON_CreateNumber(-1));
}
static void c_pii_number(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)c, (void)e;
    cJSON_AddNumberToObject(x, "pii", 1);
}
static void c_pii_text(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)e;
    cJSON_AddStringToObject(c, "pii", "true");
}
static void c_pii_null(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)r, (void)x, (void)c;
    cJSON_AddNullToObject(e, "pii");
}
static void c_column_not_object(cJSON *r, cJSON *x, cJSON *c, cJSON *e) {
    (void)x, (void)c, (void)e;
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(r, "columns"), 2, cJSON_CreateString("k"));
}

/* A prep through its JSON text and back (NULL when that fails). */
static fm_prep_t *through_json(const fm_prep_t *p, char **text_out) {
    cJSON *json = fm_prep_to_json(p);
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    cJSON *parsed = NULL;
    fm_prep_t *q = NULL;
    fm_error_t err;
    if (text && fm_json_parse(text, strlen(text), "prep", &parsed, &err) == 0) {
        int rc = fm_prep_from_json(parsed, &q, &err);
        FM_CHECK_MSG(rc == 0, "%s", err.msg);
    }
    cJSON_Delete(parsed);
    *text_out = text;
    return q;
}

static void test_pii_marks(void) {
    fm_frame_t *f = NULL;
    fm_prep_t *p = fit_sample(&f);
    if (!p) {
        fm_frame_free(f);
        return;
    }
    for (size_t k = 0; k < p->ncolumns; k++)
        FM_CHECK_INT(p->columns[k].pii, 0);
    /* Unmarked: no "pii" key at all, so the text is what it was before the flag existed. */
    char *text = NULL;
    fm_prep_t *q = through_json(p, &text);
    FM_CHECK(text && strstr(text, "\"pii\"") == NULL);
    FM_CHECK(q && prep_equal(p, q));
    free(text);
    fm_prep_free(q);

    /* An unknown name fails, names it, and marks nothing, not even the valid names before it. */
    fm_error_t err;
    const char *bad[] = {"c", "nope", "e"};
    FM_CHECK_INT(fm_prep_mark_pii(p, bad, 3, &err), FM_EINVAL);
    FM_CHECK_STR(err.msg, "PII column 'nope' is not a feature column");
    for (size_t k = 0; k < p->ncolumns; k++)
        FM_CHECK_INT(p->columns[k].pii, 0);
    /* The encoding before the mark, and the block of the categorical column c. */
    double before[4 * 16];
    size_t width_before = p->nfeatures, c_offset = p->columns[1].offset,
           c_width = p->columns[1].width;
    FM_CHECK(width_before <= 16 && c_width > 0);
    FM_CHECK_INT(fm_prep_transform(p, f, NULL, 4, before, &err), 0);
    const char *good[] = {"c", "e", "c"};
    FM_CHECK_INT(fm_prep_mark_pii(p, good, 3, &err), 0);
    /* The categorical PII column keeps no category (raw values) and encodes to nothing; the
     * numeric one (e) keeps its encoding; every other feature is unchanged. */
    FM_CHECK_INT(p->columns[1].categories.count, 0);
    FM_CHECK_INT(p->columns[1].width, 0);
    FM_CHECK_INT(p->nfeatures, width_before - c_width);
    double after[4 * 16];
    FM_CHECK_INT(fm_prep_transform(p, f, NULL, 4, after, &err), 0);
    for (size_t row = 0; row < 4; row++)
        for (size_t j = 0, k = 0; j < width_before; j++) {
            if (j >= c_offset && j < c_offset + c_width) continue;
            FM_CHECK(after[row * p->nfeatures + k] == before[row * width_before + j]);
            k++;
        }
    /* Marking only categorical columns that are all the features leaves none: refused. */
    {
        fm_frame_t *g = fm_test_frame_from_text("c\na\nb\n", NULL);
        size_t cols[] = {0};
        fm_prep_t *only = NULL;
        if (g && fm_prep_fit(g, cols, 1, NULL, 0, NULL, &only, &err) == 0) {
            const char *all[] = {"c"};
            FM_CHECK_INT(fm_prep_mark_pii(only, all, 1, &err), FM_EINVAL);
            FM_CHECK(strstr(err.msg, "no features left") != NULL);
            FM_CHECK_INT(only->columns[0].pii, 0);
            FM_CHECK_INT(only->columns[0].categories.count, 2);
        }
        fm_prep_free(only);
        fm_frame_free(g);
    }
    FM_CHECK_INT(fm_prep_mark_pii(p, NULL, 0, &err), 0);
    FM_CHECK_INT(p->columns[0].pii, 0);
    FM_CHECK_INT(p->columns[1].pii, 1);
    FM_CHECK_INT(p->columns[2].pii, 0);
    FM_CHECK_INT(p->columns[3].pii, 1);

    /* Marked: "pii": true on exactly those columns, and it survives the round trip. */
    q = through_json(p, &text);
    FM_CHECK(q && prep_equal(p, q));
    cJSON *json = fm_prep_to_json(p);
    const cJSON *col;
    size_t k = 0;
    cJSON_ArrayForEach(col, cJSON_GetObjectItem(json, "columns")) {
        const cJSON *flag = cJSON_GetObjectItem(col, "pii");
        FM_CHECK_MSG(k == 1 || k == 3 ? cJSON_IsTrue(flag) : flag == NULL, "column %zu", k);
        k++;
    }
    /* The marked parameters encode the same after the round trip. */
    double a[4 * 16], b[4 * 16];
    FM_CHECK_INT(fm_prep_transform(p, f, NULL, 4, a, &err), 0);
    if (q) {
        FM_CHECK_INT(fm_prep_transform(q, f, NULL, 4, b, &err), 0);
        FM_CHECK(memcmp(a, b, 4 * p->nfeatures * sizeof(double)) == 0);
    }
    /* An explicit false is read as false. */
    replace(cJSON_GetArrayItem(cJSON_GetObjectItem(json, "columns"), 1), "pii",
            cJSON_CreateFalse());
    fm_prep_t *r = NULL;
    FM_CHECK_INT(fm_prep_from_json(json, &r, &err), 0);
    FM_CHECK(r && r->columns[1].pii == 0 && r->columns[3].pii == 1);
    fm_prep_free(r);
    cJSON_Delete(json);
    free(text);
    fm_prep_free(q);
    fm_prep_free(p);
    fm_frame_free(f);
}

static void test_corrupted_json_rejected(void) {
    fm_frame_t *f = NULL;
    fm_prep_t *p = fit_sample(&f);
    if (!p) {
        fm_frame_free(f);
        return;
    }
    static const struct {
        const char *name;
        corrupt_fn fn;
        const char *message; /* a part of the error message */
    } cases[] = {
        {"no nfeatures", c_no_nfeatures, "'nfeatures'"},
        {"nfeatures", c_nfeatures, "'nfeatures' is 99"},
        {"columns empty", c_columns_empty, "'columns' must have 1 to"},
        {"columns object", c_columns_object, "'columns' is missing or not an array"},
        {"std zero", c_std_zero, "column 0 ('x'): field 'std' must be positive"},
        {"std negative", c_std_negative, "'std' must be positive"},
        {"median null", c_median_null, "'median' is missing or not a number"},
        {"mean text", c_mean_text, "'mean' is missing or not a number"},
        {"type", c_type, "unknown type 'text'"},
        {"type swapped", c_type_swapped, "column 1 ('c'): field 'median'"},
        {"name empty", c_name_empty, "'name' is empty"},
        {"name duplicate", c_name_duplicate, "used by column 0 too"},
        {"indicator number", c_indicator_number, "'missing_indicator'"},
        {"indicator flipped", c_indicator_flipped,
         "column 0 ('x'): field 'width' is 2, the column encodes to 1"},
        {"offset", c_offset, "'offset' is 3, the columns before end at 2"},
        {"offset fraction", c_offset_fraction, "'offset' must be an integer"},
        {"width", c_width, "'width' is 2, the column encodes to 4"},
        {"categories duplicate", c_categories_duplicate, "duplicated or out of order"},
        {"categories unsorted", c_categories_unsorted, "categories[1] 'a' is duplicated or out"},
        {"categories number", c_categories_number, "categories[0] is not a string"},
        {"most frequent high", c_most_frequent_high,
         "'most_frequent' must be an integer in [0, 2]"},
        {"most frequent none", c_most_frequent_none, "'most_frequent'"},
        {"column not object", c_column_not_object, "column 2 is not an object"},
        {"pii number", c_pii_number, "column 0 ('x'): field 'pii' is not a boolean"},
        {"pii text", c_pii_text, "column 1 ('c'): field 'pii' is not a boolean"},
        {"pii null", c_pii_null, "field 'pii' is not a boolean"},
    };
    cJSON *good = fm_prep_to_json(p);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *root = cJSON_Duplicate(good, 1);
        cJSON *columns = cJSON_GetObjectItem(root, "columns");
        cases[i].fn(root, cJSON_GetArrayItem(columns, 0), cJSON_GetArrayItem(columns, 1),
                    cJSON_GetArrayItem(columns, 3));
        fm_prep_t *q = (fm_prep_t *)1;
        fm_error_t err;
        fm_error_clear(&err);
        int rc = fm_prep_from_json(root, &q, &err);
        FM_CHECK_MSG(rc == FM_EFORMAT && q == NULL && strstr(err.msg, cases[i].message),
                     "%s: rc %d: %s", cases[i].name, rc, err.msg);
        cJSON_Delete(root);
    }
    /* Not an object at all. */
    cJSON *array = cJSON_CreateArray();
    fm_prep_t *q = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_prep_from_json(array, &q, &err), FM_EFORMAT);
    cJSON_Delete(array);
    /* The untouched JSON still loads (the cases above worked on copies). */
    FM_CHECK_INT(fm_prep_from_json(good, &q, &err), 0);
    fm_prep_free(q);
    cJSON_Delete(good);
    fm_prep_free(p);
    fm_frame_free(f);
}

FM_TEST_MAIN(FM_TEST_CASE(test_fit_on_subset), FM_TEST_CASE(test_fit_errors),
             FM_TEST_CASE(test_category_limit), FM_TEST_CASE(test_median_against_sort),
             FM_TEST_CASE(test_encode_row_matches_transform), FM_TEST_CASE(test_mixed_types),
             FM_TEST_CASE(test_json_round_trip), FM_TEST_CASE(test_pii_marks),
             FM_TEST_CASE(test_corrupted_json_rejected))
