/*
 * Weight of Evidence and Information Value against the formula computed here, on a hand-made
 * table: categorical bins with an empty cell (the 0.5 adjustment), a missing bin, numeric decile
 * bins found by counting (the smallest value with at least k/10 of the values at or below it),
 * merged repeated edges, rows restricted to a subset, the strength bands and the errors.
 */
#include "fm_test.h"
#include "core/buf.h"
#include "search/search_internal.h"
#include "search_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 60

/* The table: y (bad / good), grade (A B C, missing), score (numbers with repeats and gaps),
 * flat (one value), id (all distinct, a PII-like column to skip). */
static int bad_at(int i) {
    return i % 5 == 0 || i % 7 == 0;
}
static const char *grade_at(int i) {
    if (i % 11 == 3) return "";
    if (bad_at(i)) return i % 3 == 0 ? "C" : "B";
    return i % 4 == 0 ? "A" : i % 4 == 1 ? "B" : "C";
}
static double score_at(int i) {
    return (double)((i * 37) % 23) + (i % 13 == 0 ? 100.0 : 0.0);
}

static char *table_csv(void) {
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "y,grade,score,flat,id\n");
    for (int i = 0; i < N; i++) {
        if (i == 17)
            fm_buf_printf(&b, ",A,%g,1,id%d\n", score_at(i), i); /* no target: ignored */
        else if (i == 29)
            fm_buf_printf(&b, "%s,%s,NA,1,id%d\n", bad_at(i) ? "bad" : "good", grade_at(i), i);
        else
            fm_buf_printf(&b, "%s,%s,%g,1,id%d\n", bad_at(i) ? "bad" : "good", grade_at(i),
                          score_at(i), i);
    }
    return fm_buf_take(&b);
}

/* The expected IV of one binning: bin_of(i) gives each used row's bin in [0, nbins). */
static double expected_iv(const int *bin, const int *bad, int n, int nbins, double *woe) {
    double goods = 0, bads = 0, g[64] = {0}, b[64] = {0};
    for (int i = 0; i < n; i++) {
        if (bin[i] < 0) continue;
        if (bad[i]) {
            bads++;
            b[bin[i]]++;
        } else {
            goods++;
            g[bin[i]]++;
        }
    }
    double iv = 0;
    for (int k = 0; k < nbins; k++) {
        double gg = g[k] == 0 ? 0.5 : g[k], bb = b[k] == 0 ? 0.5 : b[k];
        woe[k] = log((gg / goods) / (bb / bads));
        iv += (gg / goods - bb / bads) * woe[k];
    }
    return iv;
}

static const cJSON *find_feature(const cJSON *features, const char *name) {
    for (const cJSON *f = features->child; f; f = f->next)
        if (!strcmp(cJSON_GetObjectItem(f, "feature")->valuestring, name)) return f;
    return NULL;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *it = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

static void check_table(const cJSON *features, const int *use, int nuse) {
    int bad[N], bin[N];
    double woe[64];
    for (int j = 0; j < nuse; j++)
        bad[j] = bad_at(use[j]);
    /* grade: A, B, C by byte order, then missing. */
    for (int j = 0; j < nuse; j++) {
        const char *g = grade_at(use[j]);
        bin[j] = !*g ? 3 : g[0] - 'A';
    }
    double iv = expected_iv(bin, bad, nuse, 4, woe);
    const cJSON *f = find_feature(features, "grade");
    FM_CHECK(f != NULL);
    if (!f) return;
    FM_CHECK_NEAR(num(f, "iv"), iv, 1e-12);
    FM_CHECK_STR(cJSON_GetObjectItem(f, "type")->valuestring, "categorical");
    const cJSON *bins = cJSON_GetObjectItem(f, "bins");
    FM_CHECK_INT(cJSON_GetArraySize(bins), 4);
    const char *names[] = {"A", "B", "C", "missing"};
    int k = 0;
    for (const cJSON *b = bins->child; b && k < 4; b = b->next, k++) {
        FM_CHECK_STR(cJSON_GetObjectItem(b, "bin")->valuestring, names[k]);
        FM_CHECK_NEAR(num(b, "woe"), woe[k], 1e-12);
    }
    /* Category A never holds a bad row: its bad cell counts 0.5. */
    FM_CHECK_NEAR(num(bins->child, "bad"), 0, 0);
    FM_CHECK(isfinite(num(bins->child, "woe")));

    /* score: deciles found by counting over the non-missing values of the used rows. */
    double values[N];
    int m = 0;
    for (int j = 0; j < nuse; j++)
        if (use[j] != 29) values[m++] = score_at(use[j]);
    double edges[10];
    int nedges = 0;
    for (int q = 1; q < 10; q++) {
        double best = INFINITY;
        for (int a = 0; a < m; a++) {
            int at_or_below = 0;
            for (int c = 0; c < m; c++)
                at_or_below += values[c] <= values[a];
            if (at_or_below * 10 >= q * m && values[a] < best) best = values[a];
        }
        if (nedges == 0 || best > edges[nedges - 1]) edges[nedges++] = best;
    }
    double max = -INFINITY;
    for (int a = 0; a < m; a++)
        if (values[a] > max) max = values[a];
    int last_open = max > edges[nedges - 1];
    int nbins = nedges + last_open;
    for (int j = 0; j < nuse; j++) {
        if (use[j] == 29) {
            bin[j] = nbins; /* missing */
            continue;
        }
        double x = score_at(use[j]);
        int k2 = 0;
        while (k2 < nedges && x > edges[k2])
            k2++;
        bin[j] = k2;
    }
    int has_missing = 0;
    for (int j = 0; j < nuse; j++)
        has_missing |= use[j] == 29;
    iv = expected_iv(bin, bad, nuse, nbins + has_missing, woe);
    f = find_feature(features, "score");
    FM_CHECK(f != NULL);
    if (!f) return;
    FM_CHECK_NEAR(num(f, "iv"), iv, 1e-12);
    bins = cJSON_GetObjectItem(f, "bins");
    FM_CHECK_INT(cJSON_GetArraySize(bins), nbins + has_missing);
    k = 0;
    for (const cJSON *b = bins->child; b; b = b->next, k++) {
        FM_CHECK_NEAR(num(b, "woe"), woe[k], 1e-12);
        if (k < nedges) FM_CHECK_NEAR(num(b, "upper"), edges[k], 0);
        if (k == 0) FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(b, "lower")));
        if (k > 0 && k <= nedges) FM_CHECK_NEAR(num(b, "lower"), edges[k - 1], 0);
    }
    /* One value: one bin, no information. */
    f = find_feature(features, "flat");
    FM_CHECK(f && num(f, "iv") == 0 && cJSON_GetArraySize(cJSON_GetObjectItem(f, "bins")) == 1);
    FM_CHECK(find_feature(features, "id") == NULL);
    FM_CHECK(find_feature(features, "y") == NULL);
    /* Sorted by IV, highest first. */
    double previous = INFINITY;
    for (const cJSON *g = features->child; g; g = g->next) {
        FM_CHECK(num(g, "iv") <= previous);
        previous = num(g, "iv");
        FM_CHECK_STR(cJSON_GetObjectItem(g, "strength")->valuestring,
                     fm_search_iv_strength(num(g, "iv")));
    }
}

static void test_woe_iv_against_formula(void) {
    char *csv = table_csv();
    fm_frame_t *frame = search_test_frame(csv);
    free(csv);
    if (!frame) return;
    const char *skip[] = {"id"};
    cJSON *features = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_search_information_value(frame, "y", "bad", NULL, 0, skip, 1, &features, &err),
                 FM_OK);
    int use[N], nuse = 0;
    for (int i = 0; i < N; i++)
        if (i != 17) use[nuse++] = i;
    if (features) check_table(features, use, nuse);
    cJSON_Delete(features);
    /* A subset of rows: every third row is left out. */
    size_t rows[N];
    size_t nrows = 0;
    nuse = 0;
    for (int i = 0; i < N; i++)
        if (i % 3 != 1) {
            rows[nrows++] = (size_t)i;
            if (i != 17) use[nuse++] = i;
        }
    features = NULL;
    FM_CHECK_INT(
        fm_search_information_value(frame, "y", "bad", rows, nrows, skip, 1, &features, &err),
        FM_OK);
    if (features) check_table(features, use, nuse);
    cJSON_Delete(features);
    fm_frame_free(frame);
}

static void test_positive_class_flips_sign(void) {
    char *csv = table_csv();
    fm_frame_t *frame = search_test_frame(csv);
    free(csv);
    if (!frame) return;
    cJSON *a = NULL, *b = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_search_information_value(frame, "y", "bad", NULL, 0, NULL, 0, &a, &err), FM_OK);
    FM_CHECK_INT(fm_search_information_value(frame, "y", "good", NULL, 0, NULL, 0, &b, &err),
                 FM_OK);
    if (a && b) {
        /* Swapping good and bad negates every WoE and keeps every IV (no empty cells in score). */
        const cJSON *fa = find_feature(a, "score"), *fb = find_feature(b, "score");
        FM_CHECK_NEAR(num(fa, "iv"), num(fb, "iv"), 1e-12);
        const cJSON *ba = cJSON_GetObjectItem(fa, "bins")->child;
        const cJSON *bb = cJSON_GetObjectItem(fb, "bins")->child;
        for (; ba && bb; ba = ba->next, bb = bb->next)
            if (num(ba, "good") > 0 && num(ba, "bad") > 0)
                FM_CHECK_NEAR(num(ba, "woe"), -num(bb, "woe"), 1e-12);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    fm_frame_free(frame);
}

static void test_errors_and_bands(void) {
    fm_frame_t *frame = search_test_frame("y,x\na,1\nb,2\nc,3\n");
    cJSON *out = NULL;
    fm_error_t err;
    if (frame) {
        FM_CHECK_INT(fm_search_information_value(frame, "y", NULL, NULL, 0, NULL, 0, &out, &err),
                     FM_EDATA);
        FM_CHECK_MSG(strstr(err.msg, "binary") != NULL, "%s", err.msg);
        FM_CHECK_INT(fm_search_information_value(frame, "z", NULL, NULL, 0, NULL, 0, &out, &err),
                     FM_EINVAL);
        size_t rows[] = {0, 7};
        FM_CHECK(out == NULL);
        fm_frame_free(frame);
        frame = search_test_frame("y,x\na,1\nb,2\na,3\n");
        FM_CHECK_INT(fm_search_information_value(frame, "y", "b", rows, 2, NULL, 0, &out, &err),
                     FM_EINVAL);
        size_t only_a[] = {0, 2};
        FM_CHECK_INT(fm_search_information_value(frame, "y", "b", only_a, 2, NULL, 0, &out, &err),
                     FM_EDATA);
        FM_CHECK(strstr(err.msg, "both classes") != NULL);
        fm_frame_free(frame);
    }
    FM_CHECK_STR(fm_search_iv_strength(0.0), "useless");
    FM_CHECK_STR(fm_search_iv_strength(0.0199), "useless");
    FM_CHECK_STR(fm_search_iv_strength(0.02), "weak");
    FM_CHECK_STR(fm_search_iv_strength(0.1), "medium");
    FM_CHECK_STR(fm_search_iv_strength(0.3), "strong");
    FM_CHECK_STR(fm_search_iv_strength(0.5), "strong");
    FM_CHECK_STR(fm_search_iv_strength(0.51), "suspicious");
}

FM_TEST_MAIN(FM_TEST_CASE(test_woe_iv_against_formula),
             FM_TEST_CASE(test_positive_class_flips_sign), FM_TEST_CASE(test_errors_and_bands))
