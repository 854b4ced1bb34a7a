/*
 * Validation splits: the test share set aside first (stratified, or the latest rows out of
 * time), then stratified k-fold, a stratified holdout, or an out-of-time validation share of the
 * rest; and the time cells the out-of-time scheme sorts by (numbers or ISO 8601 dates).
 */
#include "search/search_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int fm_search_kfold(const int32_t *labels, size_t n, int nclasses, int k, fm_rng_t *rng,
                    int32_t *fold, fm_error_t *err) {
    if (k < 2) return fm_error_set(err, FM_EINVAL, "k-fold needs at least 2 folds, got %d", k);
    int groups = labels ? nclasses : 1;
    if (groups < 1) return fm_error_set(err, FM_EINVAL, "k-fold needs at least one class");
    size_t *members = malloc((n ? n : 1) * sizeof *members);
    if (!members) return fm_error_set(err, FM_ENOMEM, "k-fold: out of memory");
    for (size_t i = 0; i < n; i++)
        fold[i] = -1;
    /* Dealing continues across classes from where the last one ended, so the folds' sizes stay
     * within one row of each other as well as each class's share of every fold. */
    size_t next = 0;
    for (int g = 0; g < groups; g++) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++)
            if ((labels ? labels[i] : 0) == g) members[count++] = i;
        fm_rng_shuffle(rng, members, count);
        for (size_t i = 0; i < count; i++) {
            fold[members[i]] = (int32_t)(next % (size_t)k);
            next++;
        }
    }
    free(members);
    return FM_OK;
}

/* ---- Time cells ------------------------------------------------------------------------------ */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm). */
static long long days_from_civil(long long y, int m, int d) {
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(long long y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly width digits at *p. */
static int digits(const char **p, int width, int *out) {
    int v = 0;
    for (int i = 0; i < width; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += width;
    *out = v;
    return 0;
}

static int parse_date(const char *s, double *out) {
    int y, mo, d, h = 0, mi = 0, sec = 0;
    double frac = 0.0;
    if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' || digits(&s, 2, &d))
        return FM_EPARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return FM_EPARSE;
    if (*s == 'T' || (*s == ' ' && isdigit((unsigned char)s[1]))) {
        s++;
        if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi)) return FM_EPARSE;
        if (*s == ':') {
            s++;
            if (digits(&s, 2, &sec)) return FM_EPARSE;
            if (*s == '.') {
                double scale = 0.1;
                s++;
                if (!isdigit((unsigned char)*s)) return FM_EPARSE;
                for (; isdigit((unsigned char)*s); s++, scale /= 10)
                    frac += (*s - '0') * scale;
            }
        }
        if (h > 23 || mi > 59 || sec > 59) return FM_EPARSE;
        if (*s == 'Z') s++;
    }
    while (*s == ' ')
        s++;
    if (*s) return FM_EPARSE;
    *out = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + sec + frac;
    return FM_OK;
}

int fm_search_parse_time(const char *text, double *out) {
    while (*text == ' ')
        text++;
    if (fm_value_parse_number(text, strlen(text), out) == FM_OK) return FM_OK;
    return parse_date(text, out);
}

/* The time of every frame row (NaN for rows without a target, which are not used). */
static int read_times(const fm_frame_t *frame, const char *name, const fm_target_t *target,
                      double *time, fm_error_t *err) {
    int col = fm_frame_find(frame, name);
    if (col < 0)
        return fm_error_set(err, FM_EINVAL, "validation.time_column: column '%s' is not in %s",
                            name, frame->source ? frame->source : "the data");
    if ((size_t)col == target->column)
        return fm_error_set(err, FM_EINVAL, "validation.time_column: '%s' is the target column",
                            name);
    const fm_column_t *c = &frame->columns[col];
    double *by_code = NULL;
    if (c->type == FM_COLUMN_CATEGORICAL) {
        by_code = malloc((c->dict.count ? c->dict.count : 1) * sizeof *by_code);
        if (!by_code) return fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t j = 0; j < c->dict.count; j++)
            if (fm_search_parse_time(fm_strdict_get(&c->dict, (int32_t)j), &by_code[j]))
                by_code[j] = NAN;
    }
    int rc = FM_OK;
    for (size_t i = 0; i < frame->nrows && !rc; i++) {
        time[i] = NAN;
        if (target->label[i] < 0) continue;
        if (c->type == FM_COLUMN_NUMERIC) {
            time[i] = c->values[i];
            if (isnan(time[i]))
                rc = fm_error_set(err, FM_EDATA, "time column '%s' is missing at data row %zu",
                                  name, i + 1);
        } else if (c->codes[i] < 0) {
            rc = fm_error_set(err, FM_EDATA, "time column '%s' is missing at data row %zu", name,
                              i + 1);
        } else if (isnan(time[i] = by_code[c->codes[i]])) {
            rc = fm_error_set(err, FM_EDATA,
                              "time column '%s', data row %zu: '%.64s' is neither a date "
                              "(YYYY-MM-DD[Thh:mm[:ss]]) nor a number",
                              name, i + 1, fm_strdict_get(&c->dict, c->codes[i]));
        }
    }
    free(by_code);
    return rc;
}

typedef struct timed_row {
    double time;
    size_t row;
} timed_row_t;

static int compare_timed(const void *a, const void *b) {
    const timed_row_t *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static size_t share(double fraction, size_t n) {
    return (size_t)floor(fraction * (double)n + 0.5);
}

/* Out of time: sort the used rows by time (ties by row), the latest holdout share is the test,
 * the latest valid_fraction of the rest validates. */
static int split_time(const fm_frame_t *frame, const fm_search_spec_t *spec,
                      const fm_target_t *target, search_split_t *s, fm_error_t *err) {
    size_t n = frame->nrows;
    double *time = malloc((n ? n : 1) * sizeof *time);
    timed_row_t *order = malloc((n ? n : 1) * sizeof *order);
    int rc = time && order ? read_times(frame, spec->time_column, target, time, err)
                           : fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t used = 0;
    for (size_t i = 0; !rc && i < n; i++)
        if (target->label[i] >= 0) order[used++] = (timed_row_t){time[i], i};
    if (!rc) {
        qsort(order, used, sizeof *order, compare_timed);
        size_t ntest = share(spec->holdout, used);
        size_t rest = used - ntest;
        size_t nvalid = share(spec->valid_fraction, rest);
        if (nvalid == 0 || rest - nvalid < 2)
            rc = fm_error_set(err, FM_EDATA,
                              "too few rows for an out-of-time split: %zu rows before the test "
                              "share, %zu of them to validate",
                              rest, nvalid);
        for (size_t i = 0; !rc && i < used; i++)
            s->part[order[i].row] = i >= rest            ? FM_SEARCH_ROW_TEST
                                    : i >= rest - nvalid ? 0
                                                         : FM_SEARCH_ROW_TRAIN;
    }
    free(time);
    free(order);
    return rc;
}

/* The test share, stratified by class. */
static int split_test(const fm_frame_t *frame, const fm_search_spec_t *spec,
                      const fm_target_t *target, fm_rng_t *rng, search_split_t *s,
                      fm_error_t *err) {
    size_t *keep = NULL, *test = NULL, nkeep = 0, ntest = 0;
    int groups = target->task == FM_TASK_REGRESSION ? 1 : (int)target->nclasses;
    int rc = fm_split_stratified(target->label, frame->nrows, groups, spec->holdout, rng, &keep,
                                 &nkeep, &test, &ntest, err);
    if (rc) return rc;
    for (size_t i = 0; i < nkeep; i++)
        s->part[keep[i]] = FM_SEARCH_ROW_TRAIN;
    for (size_t i = 0; i < ntest; i++)
        s->part[test[i]] = FM_SEARCH_ROW_TEST;
    free(keep);
    free(test);
    return FM_OK;
}

/* Labels of the training rows (the others -1), the input of the fold and holdout splits. */
static int32_t *training_labels(const search_split_t *s, const fm_target_t *target, size_t n) {
    int32_t *labels = malloc((n ? n : 1) * sizeof *labels);
    for (size_t i = 0; labels && i < n; i++)
        labels[i] = s->part[i] == FM_SEARCH_ROW_TRAIN ? target->label[i] : -1;
    return labels;
}

static int split_kfold(const fm_search_spec_t *spec, const fm_target_t *target, size_t n,
                       fm_rng_t *rng, search_split_t *s, fm_error_t *err) {
    int groups = target->task == FM_TASK_REGRESSION ? 1 : (int)target->nclasses;
    int32_t *labels = training_labels(s, target, n);
    int32_t *fold = malloc((n ? n : 1) * sizeof *fold);
    size_t *count = calloc((size_t)groups, sizeof *count);
    int rc = labels && fold && count ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = fm_search_kfold(labels, n, groups, spec->folds, rng, fold, err);
    for (size_t i = 0; !rc && i < n; i++)
        if (labels[i] >= 0) {
            s->part[i] = fold[i];
            count[labels[i]]++;
        }
    size_t total = 0;
    for (int g = 0; !rc && g < groups; g++)
        total += count[g];
    if (!rc && total < 2 * (size_t)spec->folds)
        rc = fm_error_set(err, FM_EDATA, "too few rows for %d folds: %zu training rows",
                          spec->folds, total);
    /* A binary fold without both classes has no AUC: refuse before any model is fitted. */
    for (int g = 0; !rc && target->task == FM_TASK_BINARY && g < groups; g++)
        if (count[g] < (size_t)spec->folds)
            rc = fm_error_set(err, FM_EDATA,
                              "class '%s' has %zu training rows, fewer than the %d folds",
                              target->classes[g], count[g], spec->folds);
    free(labels);
    free(fold);
    free(count);
    return rc;
}

static int split_holdout(const fm_search_spec_t *spec, const fm_target_t *target, size_t n,
                         fm_rng_t *rng, search_split_t *s, fm_error_t *err) {
    int groups = target->task == FM_TASK_REGRESSION ? 1 : (int)target->nclasses;
    int32_t *labels = training_labels(s, target, n);
    if (!labels) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t *train = NULL, *valid = NULL, ntrain = 0, nvalid = 0;
    int rc = fm_split_stratified(labels, n, groups, spec->valid_fraction, rng, &train, &ntrain,
                                 &valid, &nvalid, err);
    free(labels);
    if (rc) return rc;
    for (size_t i = 0; i < nvalid; i++)
        s->part[valid[i]] = 0;
    if (nvalid == 0 || ntrain < 2)
        rc = fm_error_set(err, FM_EDATA,
                          "too few rows for a holdout split: %zu to train on, %zu to validate",
                          ntrain, nvalid);
    free(train);
    free(valid);
    return rc;
}

/* Lists the test and training rows from part. */
static int collect_rows(size_t n, search_split_t *s, fm_error_t *err) {
    s->test_rows = malloc((n ? n : 1) * sizeof *s->test_rows);
    s->train_rows = malloc((n ? n : 1) * sizeof *s->train_rows);
    if (!s->test_rows || !s->train_rows) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (s->part[i] == FM_SEARCH_ROW_TEST)
            s->test_rows[s->ntest++] = i;
        else if (s->part[i] == FM_SEARCH_ROW_UNUSED)
            s->unused++;
        else
            s->train_rows[s->ntrain++] = i;
    }
    return FM_OK;
}

int search_split_make(const fm_frame_t *frame, const fm_search_spec_t *spec,
                      const fm_target_t *target, search_split_t *s, fm_error_t *err) {
    memset(s, 0, sizeof *s);
    size_t n = frame->nrows;
    s->nfolds = spec->scheme == SCHEME_KFOLD ? spec->folds : 1;
    s->part = malloc((n ? n : 1) * sizeof *s->part);
    if (!s->part) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        s->part[i] = target->label[i] < 0 ? FM_SEARCH_ROW_UNUSED : FM_SEARCH_ROW_TRAIN;
    fm_rng_t rng;
    fm_rng_seed(&rng, spec->validation_seed);
    int rc;
    if (spec->scheme == SCHEME_TIME) {
        rc = split_time(frame, spec, target, s, err);
    } else {
        rc = split_test(frame, spec, target, &rng, s, err);
        if (!rc && spec->scheme == SCHEME_KFOLD) rc = split_kfold(spec, target, n, &rng, s, err);
        if (!rc && spec->scheme == SCHEME_HOLDOUT)
            rc = split_holdout(spec, target, n, &rng, s, err);
    }
    if (!rc) rc = collect_rows(n, s, err);
    if (rc) search_split_deinit(s);
    return rc;
}

void search_split_deinit(search_split_t *s) {
    if (!s) return;
    free(s->part);
    free(s->test_rows);
    free(s->train_rows);
    memset(s, 0, sizeof *s);
}

int fm_search_assign(const fm_frame_t *frame, const fm_search_spec_t *spec, int32_t *part,
                     int *nfolds, fm_error_t *err) {
    fm_target_t target;
    int rc = search_target_resolve(frame, spec->target, spec->task, spec->positive, &target, err);
    if (rc) return rc;
    search_split_t s;
    rc = search_split_make(frame, spec, &target, &s, err);
    if (!rc) {
        memcpy(part, s.part, frame->nrows * sizeof *part);
        *nfolds = s.nfolds;
        search_split_deinit(&s);
    }
    fm_target_deinit(&target);
    return rc;
}
