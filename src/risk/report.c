/*
 * The risk assessment as one JSON object (fm_risk_analyse): totals, segments, optionally every
 * exposure's figures, and optionally the Monte Carlo block. `finmaas risk` prints it and
 * POST /api/apps/risk/portfolio answers it, so the two cannot drift apart.
 */
#include "risk/risk.h"

#include "core/json.h"

#include <math.h>
#include <stdlib.h>

static void add_totals(cJSON *obj, const fm_risk_totals_t *t) {
    cJSON_AddNumberToObject(obj, "count", (double)t->count);
    fm_json_add_number(obj, "ead", t->ead);
    fm_json_add_number(obj, "el", t->el);
    fm_json_add_number(obj, "capital", t->capital);
    fm_json_add_number(obj, "rwa", t->rwa);
}

static cJSON *exposure_json(const fm_risk_portfolio_t *p, const fm_risk_exposure_t *e,
                            const fm_risk_irb_t *x) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "segment", fm_strdict_get(&p->segments, e->segment));
    cJSON_AddStringToObject(o, "asset_class", fm_risk_class_name(e->asset_class));
    fm_json_add_number(o, "pd", e->pd);
    fm_json_add_number(o, "pd_floored", x->pd);
    fm_json_add_number(o, "lgd", e->lgd);
    fm_json_add_number(o, "ead", e->ead);
    fm_json_add_number(o, "maturity", e->maturity);
    fm_json_add_number(o, "r", x->r);
    fm_json_add_number(o, "b", x->b);
    fm_json_add_number(o, "k", x->k);
    fm_json_add_number(o, "el", x->el);
    fm_json_add_number(o, "capital", x->capital);
    fm_json_add_number(o, "rwa", x->rwa);
    return o;
}

static cJSON *mc_json(const fm_risk_mc_options_t *o, const fm_risk_mc_result_t *r) {
    cJSON *m = cJSON_CreateObject(), *levels = cJSON_CreateArray();
    if (!m || !levels) {
        cJSON_Delete(m);
        cJSON_Delete(levels);
        return NULL;
    }
    cJSON_AddNumberToObject(m, "scenarios", (double)r->scenarios);
    cJSON_AddNumberToObject(m, "seed", (double)o->seed);
    cJSON_AddNumberToObject(m, "threads", r->threads);
    if (isnan(o->rho))
        cJSON_AddStringToObject(m, "rho", "per exposure (its rho, else the IRB R)");
    else
        fm_json_add_number(m, "rho", o->rho);
    fm_json_add_number(m, "mean", r->mean);
    fm_json_add_number(m, "mean_std_error", r->mean_std_error);
    fm_json_add_number(m, "el", r->el);
    fm_json_add_number(m, "sd", r->sd);
    fm_json_add_number(m, "max", r->max);
    for (size_t j = 0; j < r->nlevels; j++) {
        const fm_risk_mc_level_t *l = &r->levels[j];
        cJSON *item = cJSON_CreateObject();
        double ci[2] = {l->var_lo, l->var_hi};
        if (!item) continue;
        fm_json_add_number(item, "level", l->level);
        fm_json_add_number(item, "var", l->var);
        cJSON_AddItemToObject(item, "var_ci95", fm_json_double_array(ci, 2));
        fm_json_add_number(item, "var_std_error", l->var_std_error);
        fm_json_add_number(item, "es", l->es);
        fm_json_add_number(item, "es_std_error", l->es_std_error);
        cJSON_AddItemToArray(levels, item);
    }
    cJSON_AddItemToObject(m, "levels", levels);
    fm_json_add_number(m, "seconds", r->seconds);
    return m;
}

int fm_risk_analyse(const fm_risk_portfolio_t *p, const fm_risk_settings_t *s,
                    const fm_risk_mc_options_t *mc, int per_exposure, cJSON **out,
                    fm_error_t *err) {
    *out = NULL;
    if (!(s->pd_floor >= 1e-5 && s->pd_floor <= 0.1))
        return fm_error_set(err, FM_EINVAL, "pd_floor %.17g must be in [0.00001, 0.1]",
                            s->pd_floor);
    size_t nseg = p->segments.count;
    fm_risk_irb_t *per = malloc((p->n ? p->n : 1) * sizeof *per);
    fm_risk_totals_t *segs = malloc((nseg ? nseg : 1) * sizeof *segs);
    cJSON *root = cJSON_CreateObject();
    int rc = per && segs && root ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_risk_totals_t total;
    fm_risk_mc_result_t result;
    if (!rc) {
        fm_risk_assess(p, s, per, &total, segs);
        cJSON_AddNumberToObject(root, "exposures", (double)p->n);
        fm_json_add_number(root, "pd_floor", s->pd_floor);
        cJSON *t = cJSON_AddObjectToObject(root, "totals");
        if (t) add_totals(t, &total);
        cJSON *list = cJSON_AddArrayToObject(root, "segments");
        for (size_t g = 0; list && g < nseg; g++) {
            cJSON *item = cJSON_CreateObject();
            if (!item) break;
            cJSON_AddStringToObject(item, "segment", fm_strdict_get(&p->segments, (int32_t)g));
            add_totals(item, &segs[g]);
            cJSON_AddItemToArray(list, item);
        }
        if (per_exposure) {
            cJSON *items = cJSON_AddArrayToObject(root, "per_exposure");
            for (size_t i = 0; items && i < p->n; i++)
                cJSON_AddItemToArray(items, exposure_json(p, &p->exposures[i], &per[i]));
        }
    }
    if (!rc && mc) {
        rc = fm_risk_mc_run(p, s, mc, &result, err);
        cJSON *m = rc ? NULL : mc_json(mc, &result);
        if (!rc && !m) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        if (!rc) cJSON_AddItemToObject(root, "monte_carlo", m);
    }
    free(per);
    free(segs);
    if (rc) {
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return FM_OK;
}
