/*
 * Expected loss and the Basel IRB capital requirement of each exposure (the asymptotic single
 * risk factor formula with the correlation and maturity adjustment of its asset class, see
 * risk.h), and their totals over the portfolio and by segment.
 */
#include "risk/risk.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* G(0.999): the regulatory confidence level of the IRB formula. */
#define G_999 3.090232306167813

const char *fm_risk_class_name(fm_risk_class_t c) {
    switch (c) {
    case FM_RISK_CORPORATE:
        return "corporate";
    case FM_RISK_RETAIL_MORTGAGE:
        return "retail_mortgage";
    case FM_RISK_RETAIL_REVOLVING:
        return "retail_revolving";
    case FM_RISK_RETAIL_OTHER:
        return "retail_other";
    }
    return "unknown";
}

int fm_risk_class_parse(const char *text, fm_risk_class_t *out) {
    static const struct {
        const char *name;
        fm_risk_class_t c;
    } names[] = {
        {"corporate", FM_RISK_CORPORATE},        {"retail_mortgage", FM_RISK_RETAIL_MORTGAGE},
        {"mortgage", FM_RISK_RETAIL_MORTGAGE},   {"retail_revolving", FM_RISK_RETAIL_REVOLVING},
        {"revolving", FM_RISK_RETAIL_REVOLVING}, {"retail_other", FM_RISK_RETAIL_OTHER},
        {"other_retail", FM_RISK_RETAIL_OTHER},  {"retail", FM_RISK_RETAIL_OTHER},
        {"other", FM_RISK_RETAIL_OTHER},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(text, names[i].name)) {
            *out = names[i].c;
            return FM_OK;
        }
    return FM_EINVAL;
}

void fm_risk_settings_defaults(fm_risk_settings_t *s) {
    s->pd_floor = FM_RISK_DEFAULT_PD_FLOOR;
}

/* The weight w = (1 - e^{-k PD}) / (1 - e^{-k}) between the two correlation bounds. */
static double weight(double k, double pd) {
    return -expm1(-k * pd) / -expm1(-k);
}

double fm_risk_irb_correlation(fm_risk_class_t c, double pd) {
    switch (c) {
    case FM_RISK_CORPORATE: {
        double w = weight(50.0, pd);
        return 0.12 * w + 0.24 * (1.0 - w);
    }
    case FM_RISK_RETAIL_MORTGAGE:
        return 0.15;
    case FM_RISK_RETAIL_REVOLVING:
        return 0.04;
    case FM_RISK_RETAIL_OTHER: {
        double w = weight(35.0, pd);
        return 0.03 * w + 0.16 * (1.0 - w);
    }
    }
    return NAN;
}

double fm_risk_irb_maturity_b(double pd) {
    double t = 0.11852 - 0.05478 * log(pd);
    return t * t;
}

void fm_risk_irb(fm_risk_class_t c, double pd, double lgd, double ead, double m, double pd_floor,
                 fm_risk_irb_t *out) {
    double p = pd < pd_floor ? pd_floor : pd;
    if (p > 1.0) p = 1.0;
    double r = fm_risk_irb_correlation(c, p);
    double k = 0.0, b = 0.0;
    if (p < 1.0 && p > 0.0) {
        double x = (fm_normal_quantile(p) + sqrt(r) * G_999) / sqrt(1.0 - r);
        k = lgd * fm_normal_cdf(x) - p * lgd;
        if (c == FM_RISK_CORPORATE) {
            double mm = m < 1.0 ? 1.0 : m > 5.0 ? 5.0 : m;
            b = fm_risk_irb_maturity_b(p);
            k *= (1.0 + (mm - 2.5) * b) / (1.0 - 1.5 * b);
        }
        /* Defensive: K >= 0 whenever PD >= 3e-6 (1 - 1.5 b > 0), which the floor's bounds
         * (fm_risk_analyse) ensure. */
        if (k < 0.0) k = 0.0;
    }
    out->pd = p;
    out->r = r;
    out->b = b;
    out->k = k;
    out->el = p * lgd * ead;
    out->capital = k * ead;
    out->rwa = 12.5 * k * ead;
}

static void add(fm_risk_totals_t *t, const fm_risk_irb_t *x, double ead) {
    t->count++;
    t->ead += ead;
    t->el += x->el;
    t->capital += x->capital;
    t->rwa += x->rwa;
}

void fm_risk_assess(const fm_risk_portfolio_t *p, const fm_risk_settings_t *s, fm_risk_irb_t *per,
                    fm_risk_totals_t *total, fm_risk_totals_t *by_segment) {
    memset(total, 0, sizeof *total);
    if (by_segment) memset(by_segment, 0, p->segments.count * sizeof *by_segment);
    for (size_t i = 0; i < p->n; i++) {
        const fm_risk_exposure_t *e = &p->exposures[i];
        fm_risk_irb_t x;
        fm_risk_irb(e->asset_class, e->pd, e->lgd, e->ead, e->maturity, s->pd_floor, &x);
        if (per) per[i] = x;
        add(total, &x, e->ead);
        if (by_segment) add(&by_segment[e->segment], &x, e->ead);
    }
}
