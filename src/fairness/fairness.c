/*
 * Group fairness metrics of a binary decision (definitions in fairness.h): one pass over the rows
 * counts each group's confusion cells, then rates, comparisons with the reference group, the
 * selection-rate significance test (Fisher's exact test or Pearson's chi-square) and Fairlearn's
 * max-min summaries are derived from the counts alone. Also banding of numeric attributes and
 * AIF360's reweighing weights.
 */
#include "fairness/fairness.h"

#include "core/json.h"
#include "data/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fm_fairness_test_name(fm_fairness_test_t test) {
    switch (test) {
    case FM_FAIRNESS_TEST_FISHER:
        return "fisher";
    case FM_FAIRNESS_TEST_CHI_SQUARE:
        return "chi-square";
    default:
        return NULL;
    }
}

/* num / den, NaN when den is 0 (an undefined rate, not an error). */
static double rate(size_t num, size_t den) {
    return den ? (double)num / (double)den : NAN;
}

static double log_factorial(size_t n) {
    return lgamma((double)n + 1.0);
}

double fm_fairness_fisher_exact(size_t a, size_t b, size_t c, size_t d, double *table_probability) {
    size_t r1 = a + b, r2 = c + d, c1 = a + c, c2 = b + d, n = r1 + r2;
    if (!r1 || !r2 || !c1 || !c2) {
        if (table_probability) *table_probability = 1.0;
        return 1.0;
    }
    /* log P(x) = log[C(r1, x) C(r2, c1 - x) / C(n, c1)]; the constant part once. */
    double base = log_factorial(r1) + log_factorial(r2) + log_factorial(c1) + log_factorial(c2) -
                  log_factorial(n);
    size_t lo = c1 > r2 ? c1 - r2 : 0, hi = c1 < r1 ? c1 : r1;
    double observed =
        base - log_factorial(a) - log_factorial(b) - log_factorial(c) - log_factorial(d);
    /* Tables as likely as the observed one up to rounding count as "no more likely" (R, SciPy). */
    double limit = observed + log1p(1e-7);
    double p = 0.0;
    for (size_t x = lo; x <= hi; x++) {
        double lp = base - log_factorial(x) - log_factorial(r1 - x) - log_factorial(c1 - x) -
                    log_factorial(r2 - (c1 - x));
        if (lp <= limit) p += exp(lp);
    }
    if (table_probability) *table_probability = exp(observed);
    return p < 1.0 ? p : 1.0;
}

double fm_fairness_chi_square(size_t a, size_t b, size_t c, size_t d, double *statistic) {
    double r1 = (double)(a + b), r2 = (double)(c + d), c1 = (double)(a + c), c2 = (double)(b + d);
    double n = r1 + r2;
    double x2 = 0.0;
    if (r1 > 0 && r2 > 0 && c1 > 0 && c2 > 0) {
        double diff = (double)a * (double)d - (double)b * (double)c;
        x2 = n * diff * diff / (r1 * r2 * c1 * c2);
    }
    if (statistic) *statistic = x2;
    /* The chi-square(1) survival function: P(Z^2 > x2) = erfc(sqrt(x2 / 2)). */
    return erfc(sqrt(x2 / 2.0));
}

fm_fairness_test_t fm_fairness_selection_test(size_t a, size_t b, size_t c, size_t d,
                                              double *statistic, double *p_value) {
    double r[2] = {(double)(a + b), (double)(c + d)}, col[2] = {(double)(a + c), (double)(b + d)};
    double n = r[0] + r[1];
    int small = n <= 0;
    for (int i = 0; i < 2 && !small; i++)
        for (int j = 0; j < 2; j++)
            if (r[i] * col[j] / n < FM_FAIRNESS_MIN_EXPECTED) small = 1;
    if (small) {
        *p_value = fm_fairness_fisher_exact(a, b, c, d, statistic);
        return FM_FAIRNESS_TEST_FISHER;
    }
    *p_value = fm_fairness_chi_square(a, b, c, d, statistic);
    return FM_FAIRNESS_TEST_CHI_SQUARE;
}

/* The per-row checks shared by compute and reweighing. */
static int check_row(const int *y, const int *d, const int32_t *group, size_t i, size_t ngroups,
                     fm_error_t *err) {
    if (y[i] != 0 && y[i] != 1)
        return fm_error_set(err, FM_EINVAL, "row %zu: label %d is not 0 or 1", i + 1, y[i]);
    if (d && d[i] != 0 && d[i] != 1)
        return fm_error_set(err, FM_EINVAL, "row %zu: decision %d is not 0 or 1", i + 1, d[i]);
    if (group[i] >= 0 && (size_t)group[i] >= ngroups)
        return fm_error_set(err, FM_EINVAL, "row %zu: group code %d is not below %zu", i + 1,
                            (int)group[i], ngroups);
    return FM_OK;
}

/* Min and max of the defined values of field (an offset into the group struct). */
static double spread(const fm_fairness_t *f, size_t offset, double *lo_out, double *hi_out) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t g = 0; g < f->ngroups; g++) {
        double v = *(const double *)((const char *)&f->groups[g] + offset);
        if (isnan(v)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    if (lo > hi) lo = hi = NAN;
    if (lo_out) *lo_out = lo;
    if (hi_out) *hi_out = hi;
    return hi - lo;
}

static void compare(fm_fairness_group_t *g, const fm_fairness_group_t *ref, int is_reference) {
    g->parity_difference = g->selection_rate - ref->selection_rate;
    g->parity_ratio = ref->selection_rate > 0 ? g->selection_rate / ref->selection_rate : NAN;
    g->four_fifths = isnan(g->parity_ratio) ? -1 : g->parity_ratio < 0.8;
    double dtpr = g->tpr - ref->tpr, dfpr = g->fpr - ref->fpr;
    g->equal_opportunity_difference = dtpr;
    g->equalized_odds_difference = isnan(dtpr) || isnan(dfpr) ? NAN : fmax(fabs(dtpr), fabs(dfpr));
    g->average_odds_difference = (dfpr + dtpr) / 2.0;
    if (is_reference) {
        g->test = FM_FAIRNESS_TEST_NONE;
        g->statistic = g->p_value = NAN;
        return;
    }
    g->test = fm_fairness_selection_test(g->selected, g->count - g->selected, ref->selected,
                                         ref->count - ref->selected, &g->statistic, &g->p_value);
}

int fm_fairness_compute(const int *y, const int *d, const int32_t *group, size_t n,
                        const char *const *names, size_t ngroups, long reference,
                        fm_fairness_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    if (reference >= 0 && (size_t)reference >= ngroups)
        return fm_error_set(err, FM_EINVAL, "reference group code %ld is not below %zu", reference,
                            ngroups);
    fm_fairness_group_t *all = calloc(ngroups ? ngroups : 1, sizeof *all);
    if (!all) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t missing = 0, rows = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = check_row(y, d, group, i, ngroups, err);
        if (rc) {
            free(all);
            return rc;
        }
        if (group[i] < 0) {
            missing++;
            continue;
        }
        fm_fairness_group_t *g = &all[group[i]];
        g->count++;
        g->positives += (size_t)y[i];
        g->selected += (size_t)d[i];
        g->true_positives += (size_t)(y[i] & d[i]);
        g->false_positives += (size_t)((1 - y[i]) & d[i]);
        rows++;
    }
    /* Keep the groups with rows, in code order; find the reference among them. */
    size_t kept = 0, ref = SIZE_MAX;
    for (size_t k = 0; k < ngroups; k++) {
        if (!all[k].count) continue;
        if ((long)k == reference) ref = kept;
        all[kept] = all[k];
        all[kept].name = names[k];
        kept++;
    }
    if (kept < 2) {
        free(all);
        return fm_error_set(err, FM_EDATA,
                            "fairness needs at least two groups with rows, found %zu", kept);
    }
    if (reference >= 0 && ref == SIZE_MAX) {
        free(all);
        return fm_error_set(err, FM_EDATA, "reference group '%s' has no rows", names[reference]);
    }
    if (reference < 0) {
        ref = 0;
        for (size_t k = 1; k < kept; k++)
            if (all[k].count > all[ref].count) ref = k;
    }
    for (size_t k = 0; k < kept; k++) {
        fm_fairness_group_t *g = &all[k];
        g->selection_rate = rate(g->selected, g->count);
        g->tpr = rate(g->true_positives, g->positives);
        g->fpr = rate(g->false_positives, g->count - g->positives);
        g->precision = rate(g->true_positives, g->selected);
    }
    for (size_t k = 0; k < kept; k++)
        compare(&all[k], &all[ref], k == ref);
    out->groups = all;
    out->ngroups = kept;
    out->reference = ref;
    out->rows = rows;
    out->rows_missing_group = missing;
    double lo, hi, tpr_spread, fpr_spread;
    out->parity_difference = spread(out, offsetof(fm_fairness_group_t, selection_rate), &lo, &hi);
    out->parity_ratio = hi > 0 ? lo / hi : NAN;
    tpr_spread = spread(out, offsetof(fm_fairness_group_t, tpr), NULL, NULL);
    fpr_spread = spread(out, offsetof(fm_fairness_group_t, fpr), NULL, NULL);
    out->equalized_odds_difference = isnan(tpr_spread)   ? fpr_spread
                                     : isnan(fpr_spread) ? tpr_spread
                                                         : fmax(tpr_spread, fpr_spread);
    return FM_OK;
}

void fm_fairness_deinit(fm_fairness_t *f) {
    if (!f) return;
    free(f->groups);
    memset(f, 0, sizeof *f);
}

static cJSON *group_json(const fm_fairness_group_t *g) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "group", g->name);
    cJSON_AddNumberToObject(o, "count", (double)g->count);
    cJSON_AddNumberToObject(o, "positives", (double)g->positives);
    cJSON_AddNumberToObject(o, "selected", (double)g->selected);
    cJSON_AddNumberToObject(o, "true_positives", (double)g->true_positives);
    cJSON_AddNumberToObject(o, "false_positives", (double)g->false_positives);
    fm_json_add_number(o, "selection_rate", g->selection_rate);
    fm_json_add_number(o, "tpr", g->tpr);
    fm_json_add_number(o, "fpr", g->fpr);
    fm_json_add_number(o, "precision", g->precision);
    fm_json_add_number(o, "demographic_parity_difference", g->parity_difference);
    fm_json_add_number(o, "demographic_parity_ratio", g->parity_ratio);
    fm_json_add_number(o, "disparate_impact_ratio", g->parity_ratio);
    if (g->four_fifths < 0)
        cJSON_AddNullToObject(o, "four_fifths_violation");
    else
        cJSON_AddBoolToObject(o, "four_fifths_violation", g->four_fifths);
    fm_json_add_number(o, "equal_opportunity_difference", g->equal_opportunity_difference);
    fm_json_add_number(o, "equalized_odds_difference", g->equalized_odds_difference);
    fm_json_add_number(o, "average_odds_difference", g->average_odds_difference);
    const char *test = fm_fairness_test_name(g->test);
    if (test)
        cJSON_AddStringToObject(o, "test", test);
    else
        cJSON_AddNullToObject(o, "test");
    fm_json_add_number(o, "statistic", g->statistic);
    fm_json_add_number(o, "p_value", g->p_value);
    return o;
}

cJSON *fm_fairness_to_json(const fm_fairness_t *f) {
    cJSON *o = cJSON_CreateObject();
    cJSON *groups = cJSON_AddArrayToObject(o, "groups");
    cJSON *summary = cJSON_CreateObject();
    if (!o || !groups || !summary) {
        cJSON_Delete(summary);
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddStringToObject(o, "reference", f->groups[f->reference].name);
    cJSON_AddNumberToObject(o, "rows", (double)f->rows);
    cJSON_AddNumberToObject(o, "rows_missing_group", (double)f->rows_missing_group);
    for (size_t g = 0; g < f->ngroups; g++) {
        cJSON *item = group_json(&f->groups[g]);
        if (!item) {
            cJSON_Delete(summary);
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToArray(groups, item);
    }
    fm_json_add_number(summary, "demographic_parity_difference", f->parity_difference);
    fm_json_add_number(summary, "demographic_parity_ratio", f->parity_ratio);
    fm_json_add_number(summary, "equalized_odds_difference", f->equalized_odds_difference);
    cJSON_AddItemToObject(o, "summary", summary);
    return o;
}

int fm_fairness_reweighing(const int *y, const int32_t *group, size_t n, size_t ngroups,
                           double *weights, fm_error_t *err) {
    /* counts[2g + y]: rows of group g with label y. */
    size_t *counts = calloc(2 * (ngroups ? ngroups : 1), sizeof *counts);
    if (!counts) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t total = 0, by_label[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        int rc = check_row(y, NULL, group, i, ngroups, err);
        if (rc) {
            free(counts);
            return rc;
        }
        if (group[i] < 0) continue;
        counts[2 * (size_t)group[i] + (size_t)y[i]]++;
        by_label[y[i]]++;
        total++;
    }
    if (!total) {
        free(counts);
        return fm_error_set(err, FM_EDATA, "reweighing: no row has a group");
    }
    for (size_t i = 0; i < n; i++) {
        if (group[i] < 0) {
            weights[i] = 1.0;
            continue;
        }
        size_t g = (size_t)group[i];
        double ng = (double)(counts[2 * g] + counts[2 * g + 1]);
        /* The row's own cell is non-empty, so the division is defined. */
        weights[i] =
            ng * (double)by_label[y[i]] / ((double)total * (double)counts[2 * g + (size_t)y[i]]);
    }
    free(counts);
    return FM_OK;
}

size_t fm_fairness_band(double value, const double *edges, size_t nedges) {
    size_t lo = 0, hi = nedges;
    /* The number of edges <= value, by bisection. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (edges[mid] <= value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int fm_fairness_band_label(const double *edges, size_t nedges, size_t band, char *buf,
                           size_t size) {
    int whole = 1;
    for (size_t i = 0; i < nedges; i++)
        if (edges[i] != floor(edges[i]) || fabs(edges[i]) > 1e15) whole = 0;
    int len;
    if (nedges == 0)
        len = snprintf(buf, size, "all");
    else if (band == 0)
        len = snprintf(buf, size, "<%.15g", edges[0]);
    else if (band >= nedges)
        len = snprintf(buf, size, whole ? "%.15g+" : ">=%.15g", edges[nedges - 1]);
    else if (whole)
        len = snprintf(buf, size, "%.15g-%.15g", edges[band - 1], edges[band] - 1.0);
    else
        len = snprintf(buf, size, "[%.15g,%.15g)", edges[band - 1], edges[band]);
    if (len < 0) len = 0;
    if (size && (size_t)len >= size) len = (int)size - 1;
    return len;
}

int fm_fairness_parse_bands(const char *text, double **edges, size_t *nedges, fm_error_t *err) {
    *edges = NULL;
    *nedges = 0;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    double *e = malloc(cap * sizeof *e);
    if (!e) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t n = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p != ',' && *p != '\0') continue;
        double v;
        if (fm_value_parse_number(start, (size_t)(p - start), &v) != 0 || !isfinite(v)) {
            free(e);
            return fm_error_set(err, FM_EPARSE, "bands '%s': '%.*s' is not a number", text,
                                (int)(p - start), start);
        }
        if (n > 0 && v <= e[n - 1]) {
            free(e);
            return fm_error_set(err, FM_EPARSE, "bands '%s': edges must increase", text);
        }
        e[n++] = v;
        if (*p == '\0') break;
        start = p + 1;
    }
    *edges = e;
    *nedges = n;
    return FM_OK;
}
