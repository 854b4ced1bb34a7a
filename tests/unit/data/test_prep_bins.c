/*
 * Tests of binned numeric columns (fm_prep_set_bins): the (lower, upper] bin of each value written
 * out by hand, the missing bin and the median's bin when there is none, offsets and widths of the
 * columns after a binned one, transform against encode_row, feature names, JSON round trips, old
 * JSON without "bins" reading as before, and rejection of bad edges (in the call and in JSON).
 */
#include "core/json.h"
#include "data/prep.h"
#include "fm_test.h"
#include "fm_test_frame.h"

#include <unistd.h>

/* x: numeric with a missing value (median of 1,2,4,10,7 = 4); c: categorical; y: numeric, no
 * missing value (median of 5,6,7,8,9,10 = 7.5). */
static const char *SAMPLE = "x,c,y\n"
                            "1,a,5\n"
                            "2,b,6\n"
                            "NA,a,7\n"
                            "4,b,8\n"
                            "10,a,9\n"
                            "7,b,10\n";

static fm_prep_t *fit_all(const fm_frame_t *f, int indicators) {
    size_t cols[3] = {0, 1, 2};
    fm_prep_options_t o = {.missing_indicators = indicators};
    fm_prep_t *p = NULL;
    fm_error_t err;
    int rc = fm_prep_fit(f, cols, 3, NULL, 0, &o, &p, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    return p;
}

static void test_bins_and_layout(void) {
    fm_frame_t *f = fm_test_frame_from_text(SAMPLE, NULL);
    fm_prep_t *p = f ? fit_all(f, 0) : NULL;
    if (!p) {
        fm_frame_free(f);
        return;
    }
    fm_error_t err;
    const double ex[2] = {2, 5}; /* bins (-inf,2], (2,5], (5,inf) */
    FM_CHECK_INT(fm_prep_set_bins(p, 0, ex, 2, 1, &err), 0);
    const double ey[1] = {7.5};
    FM_CHECK_INT(fm_prep_set_bins(p, 2, ey, 1, 0, &err), 0);
    /* x: 3 bins + missing bin; c: 2 categories; y: 2 bins. */
    FM_CHECK_INT(p->columns[0].width, 4);
    FM_CHECK_INT(p->columns[1].offset, 4);
    FM_CHECK_INT(p->columns[1].width, 2);
    FM_CHECK_INT(p->columns[2].offset, 6);
    FM_CHECK_INT(p->columns[2].width, 2);
    FM_CHECK_INT(p->nfeatures, 8);
    /* Expected encodings, written out: x = 1 -> bin 0, 2 -> bin 0 (upper edge inclusive),
     * NA -> missing bin, 4 -> bin 1, 10 -> bin 2, 7 -> bin 2; y: <= 7.5 -> bin 0. */
    static const double want[6][8] = {
        {1, 0, 0, 0, 1, 0, 1, 0}, {1, 0, 0, 0, 0, 1, 1, 0}, {0, 0, 0, 1, 1, 0, 1, 0},
        {0, 1, 0, 0, 0, 1, 0, 1}, {0, 0, 1, 0, 1, 0, 0, 1}, {0, 0, 1, 0, 0, 1, 0, 1},
    };
    double out[6 * 8];
    FM_CHECK_INT(fm_prep_transform(p, f, NULL, 6, out, &err), 0);
    FM_CHECK(fm_test_max_diff("transform vs hand-written bins", out, &want[0][0], 48) == 0);
    /* encode_row gives the same, from numbers and from text. */
    const char *texts[6] = {"1", "2", "NA", "4", "10", "7"};
    for (int r = 0; r < 6; r++) {
        fm_raw_value_t v[3] = {{FM_RAW_STRING, 0, texts[r], strlen(texts[r])},
                               {FM_RAW_STRING, 0, r % 2 ? "b" : "a", 1},
                               {FM_RAW_NUMBER, 5.0 + r, NULL, 0}};
        double row[8];
        FM_CHECK_INT(fm_prep_encode_row(p, v, row, &err), 0);
        FM_CHECK(memcmp(row, want[r], sizeof row) == 0);
    }
    /* Bin boundaries: exactly on an edge is the lower bin; a missing y (no missing bin) goes to
     * the median's bin (7.5 -> bin 0); a missing x goes to the missing bin. */
    fm_raw_value_t v[3] = {
        {FM_RAW_NUMBER, 5.0, NULL, 0}, {FM_RAW_MISSING, 0, NULL, 0}, {FM_RAW_MISSING, 0, NULL, 0}};
    double row[8];
    FM_CHECK_INT(fm_prep_encode_row(p, v, row, &err), 0);
    static const double edge5[8] = {0, 1, 0, 0, 1, 0, 1, 0};
    FM_CHECK(memcmp(row, edge5, sizeof row) == 0);
    v[0].number = 5.000001;
    FM_CHECK_INT(fm_prep_encode_row(p, v, row, &err), 0);
    FM_CHECK(row[2] == 1 && row[1] == 0);
    v[0].number = -1e300;
    FM_CHECK_INT(fm_prep_encode_row(p, v, row, &err), 0);
    FM_CHECK(row[0] == 1);
    FM_CHECK_INT(fm_prep_bin_of(&p->columns[0], 2.0), 0);
    FM_CHECK_INT(fm_prep_bin_of(&p->columns[0], 2.5), 1);
    FM_CHECK_INT(fm_prep_bin_of(&p->columns[0], 1e9), 2);
    /* Names. */
    char name[64];
    FM_CHECK_STR(fm_prep_feature_name(p, 0, name, sizeof name), "x=(-inf, 2]");
    FM_CHECK_STR(fm_prep_feature_name(p, 1, name, sizeof name), "x=(2, 5]");
    FM_CHECK_STR(fm_prep_feature_name(p, 2, name, sizeof name), "x=(5, inf)");
    FM_CHECK_STR(fm_prep_feature_name(p, 3, name, sizeof name), "x_missing");
    FM_CHECK_STR(fm_prep_feature_name(p, 7, name, sizeof name), "y=(7.5, inf)");
    /* A column without a missing bin: a missing x goes to the median's bin (4 -> bin 1). */
    FM_CHECK_INT(fm_prep_set_bins(p, 0, ex, 2, 0, &err), 0);
    FM_CHECK_INT(p->nfeatures, 7);
    v[0].kind = FM_RAW_MISSING;
    FM_CHECK_INT(fm_prep_encode_row(p, v, row, &err), 0);
    FM_CHECK(row[0] == 0 && row[1] == 1 && row[2] == 0);
    /* A single bin (no edges). */
    FM_CHECK_INT(fm_prep_set_bins(p, 2, NULL, 0, 0, &err), 0);
    FM_CHECK_INT(p->columns[2].width, 1);
    FM_CHECK_STR(fm_prep_feature_name(p, 5, name, sizeof name), "y=(-inf, inf)");
    fm_prep_free(p);
    fm_frame_free(f);
}

static void test_bad_calls(void) {
    fm_frame_t *f = fm_test_frame_from_text(SAMPLE, NULL);
    fm_prep_t *p = f ? fit_all(f, 1) : NULL;
    if (!p) {
        fm_frame_free(f);
        return;
    }
    fm_error_t err;
    size_t before = p->nfeatures;
    const double ok[2] = {1, 2}, equal[2] = {1, 1}, down[2] = {2, 1}, inf[1] = {INFINITY},
                 nan[1] = {NAN};
    FM_CHECK_INT(fm_prep_set_bins(p, 1, ok, 2, 0, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "'c'") != NULL);
    FM_CHECK_INT(fm_prep_set_bins(p, 3, ok, 2, 0, &err), FM_EINVAL);
    FM_CHECK_INT(fm_prep_set_bins(p, 0, equal, 2, 0, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "'x'") != NULL && strstr(err.msg, "strictly") != NULL);
    FM_CHECK_INT(fm_prep_set_bins(p, 0, down, 2, 0, &err), FM_EINVAL);
    FM_CHECK_INT(fm_prep_set_bins(p, 0, inf, 1, 0, &err), FM_EINVAL);
    FM_CHECK_INT(fm_prep_set_bins(p, 0, nan, 1, 0, &err), FM_EINVAL);
    FM_CHECK_INT(p->nfeatures, before);
    FM_CHECK(!p->columns[0].binned);
    fm_prep_free(p);
    fm_frame_free(f);
}

static void test_json(void) {
    fm_frame_t *f = fm_test_frame_from_text(SAMPLE, NULL);
    fm_prep_t *p = f ? fit_all(f, 1) : NULL;
    if (!p) {
        fm_frame_free(f);
        return;
    }
    fm_error_t err;
    /* Without bins the JSON has no "bins" member (older readers see what they always saw). */
    cJSON *plain = fm_prep_to_json(p);
    char *plain_text = cJSON_PrintUnformatted(plain);
    FM_CHECK(plain_text && strstr(plain_text, "\"bins\"") == NULL);
    const double ex[3] = {0.1, 2.5, 1e6};
    FM_CHECK_INT(fm_prep_set_bins(p, 0, ex, 3, 1, &err), 0);
    cJSON *j = fm_prep_to_json(p);
    fm_prep_t *q = NULL;
    FM_CHECK_INT(fm_prep_from_json(j, &q, &err), 0);
    if (q) {
        FM_CHECK(q->columns[0].binned && q->columns[0].nedges == 3);
        FM_CHECK(memcmp(q->columns[0].edges, ex, sizeof ex) == 0);
        FM_CHECK_INT(q->columns[0].width, 5);
        FM_CHECK_INT(q->nfeatures, p->nfeatures);
        FM_CHECK(!q->columns[2].binned);
        double a[16], b[16];
        FM_CHECK_INT(fm_prep_transform(p, f, NULL, 1, a, &err), 0);
        FM_CHECK_INT(fm_prep_transform(q, f, NULL, 1, b, &err), 0);
        FM_CHECK(memcmp(a, b, p->nfeatures * sizeof *a) == 0);
    }
    fm_prep_free(q);
    /* The old file (no bins) still reads as a standardised column. */
    fm_prep_t *old = NULL;
    FM_CHECK_INT(fm_prep_from_json(plain, &old, &err), 0);
    FM_CHECK(old && !old->columns[0].binned && old->columns[0].width == 2);
    fm_prep_free(old);
    /* Corrupted bins are refused with the field named. */
    const char *bad[] = {"[1, 1]", "[2, 1]", "\"1,2\"", "[1, \"a\"]", "[null]", "{}"};
    cJSON *column = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "columns"), 0);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cJSON_ReplaceItemInObjectCaseSensitive(column, "bins", cJSON_Parse(bad[k]));
        fm_prep_t *r = NULL;
        int rc = fm_prep_from_json(j, &r, &err);
        FM_CHECK_MSG(rc == FM_EFORMAT && strstr(err.msg, "bins"), "bins %s: %d %s", bad[k], rc,
                     err.msg);
        FM_CHECK(r == NULL);
    }
    /* A width that does not match the bins. */
    cJSON_ReplaceItemInObjectCaseSensitive(column, "bins", cJSON_Parse("[1]"));
    fm_prep_t *r = NULL;
    FM_CHECK_INT(fm_prep_from_json(j, &r, &err), FM_EFORMAT);
    /* "bins" on a categorical column. */
    cJSON_ReplaceItemInObjectCaseSensitive(column, "bins", cJSON_Parse("[0.1, 2.5, 1e6]"));
    cJSON *cat = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "columns"), 1);
    cJSON_AddItemToObject(cat, "bins", cJSON_Parse("[1]"));
    FM_CHECK_INT(fm_prep_from_json(j, &r, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "numeric") != NULL);
    cJSON_Delete(j);
    cJSON_Delete(plain);
    free(plain_text);
    fm_prep_free(p);
    fm_frame_free(f);
}

FM_TEST_MAIN(FM_TEST_CASE(test_bins_and_layout), FM_TEST_CASE(test_bad_calls),
             FM_TEST_CASE(test_json))
