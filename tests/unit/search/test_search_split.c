/*
 * Validation splits: stratified k-fold (class shares per fold within one row of the ideal, every
 * row in exactly one fold, test rows in none), the stratified test share, the stratified holdout,
 * out-of-time ordering on dates and numbers, and the time cell parser.
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

static void test_kfold_is_stratified(void) {
    /* Three classes of 37, 23 and 11 rows, with unlabelled rows mixed in. */
    const size_t n = 80;
    int32_t labels[80], fold[80];
    size_t counts[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        labels[i] = i % 9 == 8 ? -1 : (int32_t)(i % 7 < 4 ? 0 : i % 7 < 6 ? 1 : 2);
        if (labels[i] >= 0) counts[labels[i]]++;
    }
    for (int k = 2; k <= 7; k++) {
        fm_rng_t rng;
        fm_rng_seed(&rng, (uint64_t)k);
        fm_error_t err;
        FM_CHECK_INT(fm_search_kfold(labels, n, 3, k, &rng, fold, &err), FM_OK);
        size_t per[7][3];
        size_t size[7];
        memset(per, 0, sizeof per);
        memset(size, 0, sizeof size);
        for (size_t i = 0; i < n; i++) {
            if (labels[i] < 0) {
                FM_CHECK_INT(fold[i], -1);
                continue;
            }
            FM_CHECK(fold[i] >= 0 && fold[i] < k);
            per[fold[i]][labels[i]]++;
            size[fold[i]]++;
        }
        size_t labelled = counts[0] + counts[1] + counts[2];
        for (int f = 0; f < k; f++) {
            for (int c = 0; c < 3; c++) {
                double ideal = (double)counts[c] / k;
                FM_CHECK_MSG(fabs((double)per[f][c] - ideal) < 1.0,
                             "k %d fold %d class %d: %zu vs %g", k, f, c, per[f][c], ideal);
            }
            FM_CHECK(fabs((double)size[f] - (double)labelled / k) < 1.0);
        }
    }
    fm_error_t err;
    fm_rng_t rng;
    fm_rng_seed(&rng, 1);
    FM_CHECK_INT(fm_search_kfold(labels, n, 3, 1, &rng, fold, &err), FM_EINVAL);
    /* Without labels: plain k-fold of every row. */
    FM_CHECK_INT(fm_search_kfold(NULL, n, 1, 4, &rng, fold, &err), FM_OK);
    size_t size[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++)
        size[fold[i]]++;
    for (int f = 0; f < 4; f++)
        FM_CHECK_INT(size[f], 20);
}

/* A binary frame: 300 rows, 30% "bad", a numeric feature, a date, some rows without a target. */
static char *binary_csv(void) {
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "y,x,when\n");
    for (int i = 0; i < 300; i++) {
        const char *y = i % 31 == 30 ? "" : (i * 7) % 10 < 3 ? "bad" : "good";
        /* Dates run backwards through 2021-2022 so that time order differs from row order. */
        int day = 1 + (299 - i) % 28, month = 1 + ((299 - i) / 28) % 12,
            year = 2021 + (299 - i) / 336;
        fm_buf_printf(&b, "%s,%d,%04d-%02d-%02d\n", y, i % 17, year, month, day);
    }
    return fm_buf_take(&b);
}

static void test_assign_kfold_with_test_share(void) {
    char *csv = binary_csv();
    fm_frame_t *frame = search_test_frame(csv);
    free(csv);
    fm_search_spec_t *spec = search_test_spec(
        "{\"target\": \"y\", \"positive\": \"bad\", \"validation\": {\"folds\": 4, \"holdout\": "
        "0.25, \"seed\": 7}}");
    if (!frame || !spec) return;
    int32_t part[300];
    int nfolds = 0;
    fm_error_t err;
    FM_CHECK_INT(fm_search_assign(frame, spec, part, &nfolds, &err), FM_OK);
    FM_CHECK_INT(nfolds, 4);
    /* Independent tally of the classes. */
    const fm_column_t *y = &frame->columns[0];
    int bad_code = fm_strdict_find(&y->dict, "bad", 3);
    size_t total[2] = {0, 0}, test[2] = {0, 0}, fold[4][2];
    memset(fold, 0, sizeof fold);
    for (size_t i = 0; i < 300; i++) {
        if (y->codes[i] < 0) {
            FM_CHECK_INT(part[i], FM_SEARCH_ROW_UNUSED);
            continue;
        }
        int c = y->codes[i] == bad_code;
        total[c]++;
        if (part[i] == FM_SEARCH_ROW_TEST) {
            test[c]++;
        } else {
            FM_CHECK_MSG(part[i] >= 0 && part[i] < 4, "row %zu part %d", i, part[i]);
            if (part[i] >= 0 && part[i] < 4) fold[part[i]][c]++;
        }
    }
    for (int c = 0; c < 2; c++) {
        FM_CHECK(fabs((double)test[c] - 0.25 * (double)total[c]) <= 0.5);
        double ideal = (double)(total[c] - test[c]) / 4;
        for (int f = 0; f < 4; f++)
            FM_CHECK_MSG(fabs((double)fold[f][c] - ideal) < 1.0, "fold %d class %d: %zu vs %g", f,
                         c, fold[f][c], ideal);
    }
    /* The same seed gives the same split; another seed another. */
    int32_t again[300];
    FM_CHECK_INT(fm_search_assign(frame, spec, again, &nfolds, &err), FM_OK);
    FM_CHECK(!memcmp(part, again, sizeof part));
    fm_search_spec_free(spec);
    spec = search_test_spec("{\"target\": \"y\", \"validation\": {\"folds\": 4, \"holdout\": 0.25, "
                            "\"seed\": 8}}");
    FM_CHECK_INT(fm_search_assign(frame, spec, again, &nfolds, &err), FM_OK);
    FM_CHECK(memcmp(part, again, sizeof part) != 0);
    fm_search_spec_free(spec);
    /* Stratified holdout scheme: one validation part of about 30% of the rest. */
    spec = search_test_spec("{\"target\": \"y\", \"validation\": {\"scheme\": \"holdout\", "
                            "\"valid_fraction\": 0.3}}");
    FM_CHECK_INT(fm_search_assign(frame, spec, part, &nfolds, &err), FM_OK);
    FM_CHECK_INT(nfolds, 1);
    size_t valid = 0, train = 0, tested = 0;
    for (size_t i = 0; i < 300; i++) {
        valid += part[i] == 0;
        train += part[i] == FM_SEARCH_ROW_TRAIN;
        tested += part[i] == FM_SEARCH_ROW_TEST;
    }
    size_t used = total[0] + total[1];
    FM_CHECK(fabs((double)tested - 0.2 * (double)used) <= 1.0);
    FM_CHECK(fabs((double)valid - 0.3 * (double)(used - tested)) <= 1.0);
    FM_CHECK_INT(valid + train + tested, used);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
}

static void test_out_of_time(void) {
    char *csv = binary_csv();
    fm_frame_t *frame = search_test_frame(csv);
    free(csv);
    fm_search_spec_t *spec = search_test_spec(
        "{\"target\": \"y\", \"validation\": {\"scheme\": \"time\", \"time_column\": \"when\", "
        "\"holdout\": 0.2, \"valid_fraction\": 0.25}}");
    if (!frame || !spec) return;
    int32_t part[300];
    int nfolds = 0;
    fm_error_t err;
    FM_CHECK_INT(fm_search_assign(frame, spec, part, &nfolds, &err), FM_OK);
    FM_CHECK_INT(nfolds, 1);
    /* Every training row is earlier than (or as early as) every validation row, and those than
     * every test row. */
    const fm_column_t *when = &frame->columns[2];
    double latest[3] = {-INFINITY, -INFINITY, -INFINITY},
           earliest[3] = {INFINITY, INFINITY, INFINITY};
    size_t count[3] = {0, 0, 0};
    for (size_t i = 0; i < 300; i++) {
        if (part[i] == FM_SEARCH_ROW_UNUSED) continue;
        double t;
        FM_CHECK_INT(fm_search_parse_time(fm_strdict_get(&when->dict, when->codes[i]), &t), FM_OK);
        int g = part[i] == FM_SEARCH_ROW_TRAIN ? 0 : part[i] == 0 ? 1 : 2;
        count[g]++;
        if (t > latest[g]) latest[g] = t;
        if (t < earliest[g]) earliest[g] = t;
    }
    FM_CHECK(latest[0] <= earliest[1]);
    FM_CHECK(latest[1] <= earliest[2]);
    size_t used = count[0] + count[1] + count[2];
    FM_CHECK_INT(count[2], (size_t)floor(0.2 * (double)used + 0.5));
    FM_CHECK_INT(count[1], (size_t)floor(0.25 * (double)(used - count[2]) + 0.5));
    fm_search_spec_free(spec);
    /* Numbers order too; a column that is neither dates nor numbers is an error naming it. */
    spec = search_test_spec("{\"target\": \"y\", \"validation\": {\"scheme\": \"time\", "
                            "\"time_column\": \"x\"}}");
    FM_CHECK_INT(fm_search_assign(frame, spec, part, &nfolds, &err), FM_OK);
    for (size_t i = 0; i < 300; i++)
        if (part[i] == FM_SEARCH_ROW_TEST) FM_CHECK(frame->columns[1].values[i] >= 13);
    fm_search_spec_free(spec);
    spec = search_test_spec("{\"target\": \"x\", \"validation\": {\"scheme\": \"time\", "
                            "\"time_column\": \"y\"}}");
    FM_CHECK_INT(fm_search_assign(frame, spec, part, &nfolds, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "time column 'y'") != NULL);
    fm_search_spec_free(spec);
    spec = search_test_spec("{\"target\": \"y\", \"validation\": {\"scheme\": \"time\", "
                            "\"time_column\": \"nope\"}}");
    FM_CHECK_INT(fm_search_assign(frame, spec, part, &nfolds, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "'nope'") != NULL);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
}

static void test_too_few_rows(void) {
    fm_frame_t *frame = search_test_frame("y,x\na,1\nb,2\na,3\nb,4\na,5\nb,6\n");
    fm_search_spec_t *spec = search_test_spec("{\"target\": \"y\", \"validation\": {\"folds\": 5, "
                                              "\"holdout\": 0}}");
    if (!frame || !spec) return;
    int32_t part[6];
    int nfolds;
    fm_error_t err;
    FM_CHECK_INT(fm_search_assign(frame, spec, part, &nfolds, &err), FM_EDATA);
    FM_CHECK_MSG(strstr(err.msg, "5 folds") != NULL, "%s", err.msg);
    fm_search_spec_free(spec);
    spec = search_test_spec("{\"target\": \"missing\"}");
    FM_CHECK_INT(fm_search_assign(frame, spec, part, &nfolds, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "'missing'") != NULL);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
}

static void test_parse_time(void) {
    double t;
    FM_CHECK_INT(fm_search_parse_time("1970-01-01", &t), FM_OK);
    FM_CHECK_NEAR(t, 0, 0);
    FM_CHECK_INT(fm_search_parse_time("1970-01-02T00:00:01Z", &t), FM_OK);
    FM_CHECK_NEAR(t, 86401, 0);
    FM_CHECK_INT(fm_search_parse_time("2000-03-01 12:30", &t), FM_OK);
    /* 2000-03-01 is day 11017 since the epoch (2000 is a leap year). */
    FM_CHECK_NEAR(t, 11017.0 * 86400 + 12 * 3600 + 30 * 60, 0);
    FM_CHECK_INT(fm_search_parse_time("2024-02-29T23:59:59.5", &t), FM_OK);
    FM_CHECK_NEAR(t, 19782.0 * 86400 + 86399.5, 1e-6);
    FM_CHECK_INT(fm_search_parse_time(" 1998.25", &t), FM_OK);
    FM_CHECK_NEAR(t, 1998.25, 0);
    FM_CHECK_INT(fm_search_parse_time("1969-12-31", &t), FM_OK);
    FM_CHECK_NEAR(t, -86400, 0);
    const char *bad[] = {"2023-02-29",          "2023-13-01",       "2023-00-10",
                         "2023-1-01",           "2023-01-01T25:00", "2023-01-01T10",
                         "2023-01-01x",         "yesterday",        "",
                         "2023-01-01T10:00:61", "2023-04-31",       "2023-01-01T10:00:00."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        FM_CHECK_MSG(fm_search_parse_time(bad[i], &t) == FM_EPARSE, "'%s' parsed", bad[i]);
}

FM_TEST_MAIN(FM_TEST_CASE(test_kfold_is_stratified),
             FM_TEST_CASE(test_assign_kfold_with_test_share), FM_TEST_CASE(test_out_of_time),
             FM_TEST_CASE(test_too_few_rows), FM_TEST_CASE(test_parse_time))
