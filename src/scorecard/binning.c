/*
 * Weight-of-Evidence binning of one feature for a scorecard (scorecard.h gives the rules):
 * monotonic merging of quantile bins of a numeric column under a minimum bin share, grouping of
 * rare (and optionally of similar) categories, and a bin of its own for missing values.
 *
 * The work is on bins, not rows: rows are counted into the initial bins once, and each merge adds
 * two neighbours' counts, so a feature costs one sort of its values plus O(bins^2) merging.
 */
#include "scorecard/scorecard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double fm_scorecard_woe(double good, double bad, double goods, double bads) {
    double g = good > 0 ? good : 0.5, b = bad > 0 ? bad : 0.5;
    return log((g / goods) / (b / bads));
}

double fm_scorecard_iv_term(double good, double bad, double goods, double bads) {
    double g = good > 0 ? good : 0.5, b = bad > 0 ? bad : 0.5;
    return (g / goods - b / bads) * log((g / goods) / (b / bads));
}

void fm_scorecard_binning_defaults(fm_scorecard_binning_t *o) {
    o->min_share = FM_SCORECARD_DEFAULT_MIN_SHARE;
    o->initial_bins = FM_SCORECARD_DEFAULT_BINS;
    o->category_gap = 0.0;
}

void fm_scorecard_feature_deinit(fm_scorecard_feature_t *f) {
    if (!f) return;
    for (size_t b = 0; f->bins && b < f->nbins; b++) {
        free(f->bins[b].label);
        for (size_t k = 0; k < f->bins[b].ncategories; k++)
            free(f->bins[b].categories[k]);
        free(f->bins[b].categories);
    }
    free(f->bins);
    free(f->name);
    free(f->bin_of);
    memset(f, 0, sizeof *f);
}

/* A bin while merging: counts and, for categories, the frame dictionary codes it holds. */
typedef struct work {
    double good, bad;
    double lower, upper;
    int32_t *codes; /* categorical: owned */
    size_t ncodes;
    int other;
} work_t;

static double bad_rate(const work_t *w) {
    double n = w->good + w->bad;
    return n > 0 ? w->bad / n : 0.0;
}

/* Merges w[i + 1] into w[i] and closes the gap. Codes are moved, never lost. */
static int merge(work_t *w, size_t *n, size_t i) {
    work_t *a = &w[i], *b = &w[i + 1];
    if (b->ncodes) {
        int32_t *codes = realloc(a->codes, (a->ncodes + b->ncodes) * sizeof *codes);
        if (!codes) return FM_ENOMEM;
        memcpy(codes + a->ncodes, b->codes, b->ncodes * sizeof *codes);
        a->codes = codes;
        a->ncodes += b->ncodes;
    }
    free(b->codes);
    a->good += b->good;
    a->bad += b->bad;
    a->upper = b->upper;
    a->other = a->other || b->other;
    memmove(b, b + 1, (*n - i - 2) * sizeof *b);
    (*n)--;
    return FM_OK;
}

typedef struct pair {
    double x;
    int bad;
} pair_t;

static int by_value(const void *a, const void *b) {
    double x = ((const pair_t *)a)->x, y = ((const pair_t *)b)->x;
    return (x > y) - (x < y);
}

/*
 * +1 when WoE should increase with the value, -1 when it should decrease: the sign of Spearman's
 * correlation of the value with bad. With y binary its sign is that of the mean (tie-averaged)
 * rank of the bads minus the mean rank of all rows.
 */
static int direction(const pair_t *p, size_t m) {
    double rank_sum_bad = 0, nbad = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && p[j].x == p[i].x)
            j++;
        double rank = (double)(i + 1 + j) / 2.0; /* average of ranks i+1 .. j */
        for (size_t k = i; k < j; k++)
            if (p[k].bad) {
                rank_sum_bad += rank;
                nbad += 1;
            }
        i = j;
    }
    if (nbad == 0) return 1;
    double diff = rank_sum_bad / nbad - (double)(m + 1) / 2.0;
    return diff > 0 ? -1 : 1;
}

/* Merges bins below the minimum count, the smallest first, into the neighbour whose bad rate is
 * closer (ties: the smaller neighbour, then the left one). */
static int merge_small(work_t *w, size_t *n, double min_count) {
    while (*n > 1) {
        size_t small = SIZE_MAX;
        for (size_t i = 0; i < *n; i++)
            if (w[i].good + w[i].bad < min_count &&
                (small == SIZE_MAX || w[i].good + w[i].bad < w[small].good + w[small].bad))
                small = i;
        if (small == SIZE_MAX) return FM_OK;
        size_t left;
        if (small == 0)
            left = 0;
        else if (small == *n - 1)
            left = small - 1;
        else {
            double r = bad_rate(&w[small]);
            double dl = fabs(bad_rate(&w[small - 1]) - r), dr = fabs(bad_rate(&w[small + 1]) - r);
            double nl = w[small - 1].good + w[small - 1].bad;
            double nr = w[small + 1].good + w[small + 1].bad;
            left = dl < dr || (dl == dr && nl <= nr) ? small - 1 : small;
        }
        if (merge(w, n, left)) return FM_ENOMEM;
    }
    return FM_OK;
}

static int numeric_bins(const fm_column_t *c, const int32_t *label, const size_t *rows,
                        size_t nrows, const fm_scorecard_binning_t *o, double goods, double bads,
                        work_t **out, size_t *nout, int *dir, fm_error_t *err) {
    pair_t *p = malloc((nrows ? nrows : 1) * sizeof *p);
    size_t nb = o->initial_bins;
    work_t *w = calloc(nb, sizeof *w);
    double *edges = malloc(nb * sizeof *edges);
    if (!p || !w || !edges) {
        free(p);
        free(w);
        free(edges);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < nrows; i++) {
        size_t r = rows ? rows[i] : i;
        if (label[r] < 0 || isnan(c->values[r])) continue;
        p[m++] = (pair_t){c->values[r], label[r] == 1};
    }
    qsort(p, m, sizeof *p, by_value);
    /* Edges at the inverted-CDF quantiles k / nb; an edge at the largest value would leave the
     * last bin empty. */
    size_t nedges = 0;
    for (size_t k = 1; m > 0 && k < nb; k++) {
        double e = p[(k * m + nb - 1) / nb - 1].x;
        if (e < p[m - 1].x && (nedges == 0 || e > edges[nedges - 1])) edges[nedges++] = e;
    }
    size_t n = m > 0 ? nedges + 1 : 0;
    for (size_t j = 0; j < n; j++) {
        w[j].lower = j == 0 ? -INFINITY : edges[j - 1];
        w[j].upper = j == nedges ? INFINITY : edges[j];
    }
    for (size_t i = 0, j = 0; i < m; i++) {
        while (j < nedges && p[i].x > edges[j])
            j++;
        if (p[i].bad)
            w[j].bad += 1;
        else
            w[j].good += 1;
    }
    *dir = direction(p, m);
    free(p);
    free(edges);
    int rc = merge_small(w, &n, o->min_share * (goods + bads));
    /* Monotonic WoE: merge the first pair that breaks it until none does. */
    for (size_t i = 0; rc == FM_OK && i + 1 < n;) {
        double a = fm_scorecard_woe(w[i].good, w[i].bad, goods, bads);
        double b = fm_scorecard_woe(w[i + 1].good, w[i + 1].bad, goods, bads);
        if (*dir > 0 ? b > a : b < a) {
            i++;
            continue;
        }
        rc = merge(w, &n, i);
        i = 0;
    }
    if (rc) {
        free(w);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    *out = w;
    *nout = n;
    return FM_OK;
}

/* Insertion sort of codes by their text in byte order (groups are small; qsort_r is not C11). */
static void sort_codes(int32_t *codes, size_t n, const fm_strdict_t *dict) {
    for (size_t i = 1; i < n; i++) {
        int32_t c = codes[i];
        size_t j = i;
        while (j > 0 && strcmp(fm_strdict_get(dict, codes[j - 1]), fm_strdict_get(dict, c)) > 0) {
            codes[j] = codes[j - 1];
            j--;
        }
        codes[j] = c;
    }
}

static double work_woe(const work_t *w, double goods, double bads) {
    return fm_scorecard_woe(w->good, w->bad, goods, bads);
}

/* Moves group i to position at (at <= i), shifting the ones between up by one. */
static void rotate_to(work_t *w, size_t i, size_t at) {
    work_t t = w[i];
    memmove(&w[at + 1], &w[at], (i - at) * sizeof *w);
    w[at] = t;
}

static int category_bins(const fm_column_t *c, const int32_t *label, const size_t *rows,
                         size_t nrows, const fm_scorecard_binning_t *o, double goods, double bads,
                         work_t **out, size_t *nout, fm_error_t *err) {
    size_t k = c->dict.count;
    work_t *w = calloc(k + 1, sizeof *w);
    double *good = calloc(k + 1, sizeof *good), *bad = calloc(k + 1, sizeof *bad);
    int rc = w && good && bad ? FM_OK : FM_ENOMEM;
    for (size_t i = 0; rc == FM_OK && i < nrows; i++) {
        size_t r = rows ? rows[i] : i;
        int32_t code = c->codes[r];
        if (label[r] < 0 || code < 0) continue;
        if (label[r] == 1)
            bad[code] += 1;
        else
            good[code] += 1;
    }
    double min_count = o->min_share * (goods + bads);
    size_t n = 0;
    work_t other = {0, 0, NAN, NAN, NULL, 0, 1};
    for (size_t j = 0; rc == FM_OK && j < k; j++) {
        if (good[j] + bad[j] == 0) continue;
        work_t *dst = good[j] + bad[j] >= min_count ? &w[n++] : &other;
        if (dst != &other) *dst = (work_t){0, 0, NAN, NAN, NULL, 0, 0};
        int32_t *codes = realloc(dst->codes, (dst->ncodes + 1) * sizeof *codes);
        if (!codes) {
            rc = FM_ENOMEM;
            break;
        }
        codes[dst->ncodes++] = (int32_t)j;
        dst->codes = codes;
        dst->good += good[j];
        dst->bad += bad[j];
    }
    if (rc == FM_OK && other.ncodes) {
        if (n > 0 && other.good + other.bad < min_count) {
            /* Too small to stand alone: joins the group of closest bad rate. */
            size_t best = 0;
            double r = bad_rate(&other);
            for (size_t j = 1; j < n; j++)
                if (fabs(bad_rate(&w[j]) - r) < fabs(bad_rate(&w[best]) - r)) best = j;
            w[n++] = other;
            rotate_to(w, n - 1, best + 1);
            rc = merge(w, &n, best) ? FM_ENOMEM : FM_OK;
        } else {
            w[n++] = other;
        }
        other.codes = NULL;
    }
    /* Similar groups: sort by WoE (stable: insertion), merge the closest adjacent pair below
     * the gap, repeat. */
    if (rc == FM_OK && o->category_gap > 0 && n > 1) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = i;
                 j > 0 && work_woe(&w[j - 1], goods, bads) > work_woe(&w[j], goods, bads); j--) {
                work_t t = w[j];
                w[j] = w[j - 1];
                w[j - 1] = t;
            }
        while (rc == FM_OK && n > 1) {
            size_t best = 0;
            double gap = INFINITY;
            for (size_t i = 0; i + 1 < n; i++) {
                double d = work_woe(&w[i + 1], goods, bads) - work_woe(&w[i], goods, bads);
                if (d < gap) {
                    gap = d;
                    best = i;
                }
            }
            if (!(gap < o->category_gap)) break;
            rc = merge(w, &n, best) ? FM_ENOMEM : FM_OK;
        }
    }
    for (size_t j = 0; rc == FM_OK && j < n; j++)
        sort_codes(w[j].codes, w[j].ncodes, &c->dict);
    free(other.codes);
    free(good);
    free(bad);
    if (rc) {
        for (size_t j = 0; w && j < n; j++)
            free(w[j].codes);
        free(w);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    *out = w;
    *nout = n;
    return FM_OK;
}

/* The numbers of a numeric label, shortest text that reads back. */
static void number_text(double v, char buf[32]) {
    if (isinf(v)) {
        snprintf(buf, 32, "%s", v < 0 ? "-inf" : "inf");
        return;
    }
    for (int precision = 10; precision <= 17; precision++) {
        snprintf(buf, 32, "%.*g", precision, v == 0 ? 0.0 : v);
        if (strtod(buf, NULL) == v) break;
    }
}

static int fill_bin(fm_scorecard_bin_t *b, const work_t *w, const fm_column_t *c,
                    fm_column_type_t type, double goods, double bads) {
    b->good = w->good;
    b->bad = w->bad;
    b->woe = fm_scorecard_woe(w->good, w->bad, goods, bads);
    b->iv = fm_scorecard_iv_term(w->good, w->bad, goods, bads);
    b->lower = NAN;
    b->upper = NAN;
    fm_buf_t label = FM_BUF_INIT;
    int rc = FM_OK;
    if (type == FM_COLUMN_NUMERIC) {
        char lo[32], hi[32];
        b->lower = w->lower;
        b->upper = w->upper;
        number_text(w->lower, lo);
        number_text(w->upper, hi);
        rc = fm_buf_printf(&label, "(%s, %s%s", lo, hi, isinf(w->upper) ? ")" : "]");
    } else {
        b->other = w->other;
        b->categories = calloc(w->ncodes ? w->ncodes : 1, sizeof *b->categories);
        if (!b->categories) return FM_ENOMEM;
        if (w->other) rc = fm_buf_puts(&label, "other: ");
        for (size_t k = 0; rc == FM_OK && k < w->ncodes; k++) {
            const char *text = fm_strdict_get(&c->dict, w->codes[k]);
            if (!(b->categories[k] = strdup(text))) rc = FM_ENOMEM;
            b->ncategories = k + 1;
            if (!rc && k) rc = fm_buf_puts(&label, ", ");
            if (!rc) rc = fm_buf_puts(&label, text);
        }
    }
    if (rc == FM_OK && !label.data) rc = fm_buf_puts(&label, "");
    if (rc) {
        fm_buf_free(&label);
        return FM_ENOMEM;
    }
    b->label = fm_buf_take(&label);
    return b->label ? FM_OK : FM_ENOMEM;
}

int fm_scorecard_bin_feature(const fm_frame_t *frame, size_t column, const int32_t *label,
                             const size_t *rows, size_t nrows, const fm_scorecard_binning_t *o,
                             fm_scorecard_feature_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    if (column >= frame->ncols)
        return fm_error_set(err, FM_EINVAL, "column %zu outside the frame", column);
    const fm_column_t *c = &frame->columns[column];
    if (!(o->min_share > 0 && o->min_share < 0.5))
        return fm_error_set(err, FM_EINVAL, "minimum bin share %g must lie in (0, 0.5)",
                            o->min_share);
    if (o->initial_bins < 2 || o->initial_bins > FM_SCORECARD_MAX_BINS)
        return fm_error_set(err, FM_EINVAL, "initial bins %zu must lie in 2..%d", o->initial_bins,
                            FM_SCORECARD_MAX_BINS);
    if (!(o->category_gap >= 0) || !isfinite(o->category_gap))
        return fm_error_set(err, FM_EINVAL, "category WoE gap %g must be >= 0", o->category_gap);
    if (!rows) nrows = frame->nrows;
    double goods = 0, bads = 0, missing_good = 0, missing_bad = 0;
    for (size_t i = 0; i < nrows; i++) {
        size_t r = rows ? rows[i] : i;
        if (r >= frame->nrows)
            return fm_error_set(err, FM_EINVAL, "row index %zu outside the frame", r);
        if (label[r] < 0) continue;
        int missing = c->type == FM_COLUMN_NUMERIC ? isnan(c->values[r]) : c->codes[r] < 0;
        if (label[r] == 1) {
            bads += 1;
            missing_bad += missing;
        } else {
            goods += 1;
            missing_good += missing;
        }
    }
    if (goods == 0 || bads == 0)
        return fm_error_set(err, FM_EDATA,
                            "column '%s': the rows hold %s goods and %s bads; both are needed",
                            c->name, goods ? "some" : "no", bads ? "some" : "no");
    work_t *w = NULL;
    size_t n = 0;
    int dir = 0;
    int rc = c->type == FM_COLUMN_NUMERIC
                 ? numeric_bins(c, label, rows, nrows, o, goods, bads, &w, &n, &dir, err)
                 : category_bins(c, label, rows, nrows, o, goods, bads, &w, &n, err);
    if (rc) return rc;
    int has_missing = missing_good + missing_bad > 0;
    out->name = strdup(c->name);
    out->type = c->type;
    out->direction = dir;
    out->bins = calloc(n + 1, sizeof *out->bins);
    rc = out->name && out->bins ? FM_OK : FM_ENOMEM;
    for (size_t j = 0; rc == FM_OK && j < n; j++) {
        rc = fill_bin(&out->bins[j], &w[j], c, c->type, goods, bads);
        out->nbins = j + 1;
    }
    if (rc == FM_OK && has_missing) {
        fm_scorecard_bin_t *b = &out->bins[out->nbins++];
        b->missing = 1;
        b->good = missing_good;
        b->bad = missing_bad;
        b->woe = fm_scorecard_woe(missing_good, missing_bad, goods, bads);
        b->iv = fm_scorecard_iv_term(missing_good, missing_bad, goods, bads);
        b->lower = b->upper = NAN;
        if (!(b->label = strdup("missing"))) rc = FM_ENOMEM;
    }
    for (size_t j = 0; j < n; j++)
        free(w[j].codes);
    free(w);
    for (size_t j = 0; rc == FM_OK && j < out->nbins; j++)
        out->iv += out->bins[j].iv;
    if (rc) {
        fm_scorecard_feature_deinit(out);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    return FM_OK;
}
