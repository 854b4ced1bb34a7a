/*
 * A scorecard read back from its model (fm_scorecard_from_model) and the scoring of one applicant
 * (fm_scorecard_score): the bin of each feature from the encoded row, the points, PD, the
 * decision under the stored policy and the adverse-action reasons.
 *
 * Reading checks the stored table against the model it describes (bins against the
 * preprocessing, weights against beta * WoE, points against the formula), so a model whose
 * description was edited or damaged is refused instead of scoring one way and explaining
 * another. Scoring allocates nothing: the caller passes the per-feature arrays.
 */
#include "core/json.h"
#include "scorecard/scorecard_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEIGHT_TOLERANCE 1e-9 /* relative, on the layer's weights against beta * WoE */
#define POINTS_TOLERANCE 1e-6 /* absolute, on stored points against the formula */

void fm_scorecard_free(fm_scorecard_t *sc) {
    if (!sc) return;
    for (size_t k = 0; sc->features && k < sc->nfeatures; k++)
        fm_scorecard_feature_deinit(&sc->features[k]);
    free(sc->features);
    fm_decision_policy_deinit(&sc->policy);
    free(sc);
}

static int number_or_null(const cJSON *o, const char *key, double null_value, double *out,
                          fm_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNull(v)) {
        *out = null_value;
        return FM_OK;
    }
    return fm_json_number(o, key, out, err);
}

static int read_bin(const cJSON *o, fm_scorecard_feature_t *f, fm_scorecard_bin_t *b,
                    fm_error_t *err) {
    const char *label;
    if (!cJSON_IsObject(o)) return fm_error_set(err, FM_EFORMAT, "a bin is not an object");
    int rc = fm_json_string(o, "bin", &label, err);
    if (!rc && !(b->label = strdup(label))) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = fm_json_number(o, "good", &b->good, err);
    if (!rc) rc = fm_json_number(o, "bad", &b->bad, err);
    if (!rc) rc = fm_json_number(o, "woe", &b->woe, err);
    if (!rc) rc = fm_json_number(o, "iv", &b->iv, err);
    if (!rc) rc = fm_json_number(o, "points", &b->points, err);
    if (rc) return rc;
    if (!(b->good >= 0 && b->bad >= 0))
        return fm_error_set(err, FM_EFORMAT, "bin '%.64s': negative counts", b->label);
    b->missing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "missing"));
    b->lower = b->upper = NAN;
    if (b->missing) return FM_OK;
    if (f->type == FM_COLUMN_NUMERIC) {
        if ((rc = number_or_null(o, "lower", -INFINITY, &b->lower, err)) ||
            (rc = number_or_null(o, "upper", INFINITY, &b->upper, err)))
            return rc;
        return FM_OK;
    }
    const cJSON *cats, *item;
    if ((rc = fm_json_array(o, "categories", -1, &cats, err))) return rc;
    b->other = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "other"));
    size_t n = (size_t)cJSON_GetArraySize(cats);
    b->categories = calloc(n ? n : 1, sizeof *b->categories);
    if (!b->categories) return fm_error_set(err, FM_ENOMEM, "out of memory");
    cJSON_ArrayForEach(item, cats) {
        if (!cJSON_IsString(item))
            return fm_error_set(err, FM_EFORMAT, "bin '%.64s': a category is not a string",
                                b->label);
        if (!(b->categories[b->ncategories] = strdup(item->valuestring)))
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        b->ncategories++;
    }
    return FM_OK;
}

/* Feature k of the stored table, checked against prep column k. */
static int read_feature(const cJSON *o, const fm_prep_t *prep, size_t k, fm_scorecard_feature_t *f,
                        fm_error_t *err) {
    const char *name, *type;
    const cJSON *bins, *item;
    if (!cJSON_IsObject(o)) return fm_error_set(err, FM_EFORMAT, "not an object");
    int rc = fm_json_string(o, "feature", &name, err);
    if (!rc) rc = fm_json_string(o, "type", &type, err);
    if (!rc) rc = fm_json_number(o, "iv", &f->iv, err);
    if (!rc) rc = fm_json_number(o, "coefficient", &f->beta, err);
    if (!rc) rc = fm_json_array(o, "bins", -1, &bins, err);
    if (rc) return rc;
    const fm_prep_column_t *c = &prep->columns[k];
    if (!(f->name = strdup(name))) return fm_error_set(err, FM_ENOMEM, "out of memory");
    if (strcmp(name, c->name) != 0)
        return fm_error_set(err, FM_EFORMAT,
                            "feature '%.64s' is not preprocessing column %zu "
                            "('%.64s')",
                            name, k, c->name);
    if (fm_column_type_parse(type, &f->type) != FM_OK || f->type != c->type)
        return fm_error_set(err, FM_EFORMAT,
                            "feature '%.64s': type '%.32s' does not match the "
                            "preprocessing",
                            name, type);
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(o, "direction");
    f->direction = f->type != FM_COLUMN_NUMERIC                                     ? 0
                   : cJSON_IsString(dir) && !strcmp(dir->valuestring, "decreasing") ? -1
                                                                                    : 1;
    f->column = k;
    size_t n = (size_t)cJSON_GetArraySize(bins);
    if (n == 0 || n > (size_t)FM_SCORECARD_MAX_BINS + 1 + (size_t)prep->nfeatures)
        return fm_error_set(err, FM_EFORMAT, "feature '%.64s': %zu bins", name, n);
    f->bins = calloc(n, sizeof *f->bins);
    if (!f->bins) return fm_error_set(err, FM_ENOMEM, "out of memory");
    cJSON_ArrayForEach(item, bins) {
        f->nbins++;
        if ((rc = read_bin(item, f, &f->bins[f->nbins - 1], err))) {
            fm_error_prefix(err, "bin %zu: ", f->nbins - 1);
            return rc;
        }
        if (f->bins[f->nbins - 1].missing && f->nbins != n)
            return fm_error_set(err, FM_EFORMAT, "feature '%.64s': the missing bin is not last",
                                name);
    }
    if (f->type == FM_COLUMN_CATEGORICAL) return fm_scorecard_map_categories(f, c, err);
    /* Numeric bins must be the preprocessing's, in order. */
    size_t nvalue = f->nbins - (f->bins[f->nbins - 1].missing ? 1 : 0);
    if (!c->binned || nvalue != c->nedges + 1)
        return fm_error_set(err, FM_EFORMAT,
                            "feature '%.64s': %zu value bins, the preprocessing has %zu", name,
                            nvalue, c->binned ? c->nedges + 1 : 0);
    for (size_t b = 0; b < nvalue; b++) {
        double lo = b == 0 ? -INFINITY : c->edges[b - 1],
               hi = b == c->nedges ? INFINITY : c->edges[b];
        if (f->bins[b].lower != lo || f->bins[b].upper != hi)
            return fm_error_set(err, FM_EFORMAT,
                                "feature '%.64s': bin %zu's bounds differ from the "
                                "preprocessing's edges",
                                name, b);
    }
    return FM_OK;
}

static int close_to(double a, double b, double tolerance) {
    return fabs(a - b) <= tolerance * (1.0 + fabs(b));
}

/* The layer's weights and bias against beta * WoE and the intercept; points against the
 * formula. */
static int check_model(fm_scorecard_t *sc, fm_error_t *err) {
    const fm_model_t *m = sc->model;
    const fm_prep_t *prep = m->prep;
    const double *w = m->net->params + m->net->weight_offset[0];
    double bias = m->net->params[m->net->bias_offset[0]];
    if (!close_to(bias, sc->intercept, WEIGHT_TOLERANCE))
        return fm_error_set(err, FM_EFORMAT, "the model's bias is not the scorecard's intercept");
    double *woe = malloc((prep->nfeatures ? prep->nfeatures : 1) * sizeof *woe);
    if (!woe) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = FM_OK;
    for (size_t k = 0; !rc && k < sc->nfeatures; k++) {
        fm_scorecard_feature_t *f = &sc->features[k];
        const fm_prep_column_t *c = &prep->columns[k];
        rc = fm_scorecard_block_woe(f, c, woe, err);
        for (size_t j = 0; !rc && j < c->width; j++)
            if (!close_to(w[c->offset + j], f->beta * woe[j], WEIGHT_TOLERANCE))
                rc = fm_error_set(err, FM_EFORMAT,
                                  "feature '%.64s': the model's weight %zu is not coefficient "
                                  "times WoE",
                                  f->name, j);
        for (size_t b = 0; !rc && b < f->nbins; b++) {
            double want = fm_scorecard_bin_points(f->beta, f->bins[b].woe, sc->intercept,
                                                  sc->nfeatures, &sc->scaling);
            if (!(fabs(f->bins[b].points - want) <= POINTS_TOLERANCE))
                rc = fm_error_set(err, FM_EFORMAT,
                                  "feature '%.64s': bin '%.64s' stores %.17g points, the "
                                  "formula gives %.17g",
                                  f->name, f->bins[b].label, f->bins[b].points, want);
        }
        if (!rc) fm_scorecard_points(f, sc->intercept, sc->nfeatures, &sc->scaling);
    }
    free(woe);
    return rc;
}

int fm_scorecard_from_model(const fm_model_t *model, fm_scorecard_t **out, fm_error_t *err) {
    *out = NULL;
    const cJSON *card = cJSON_GetObjectItemCaseSensitive(model->info, "scorecard");
    if (!cJSON_IsObject(card))
        return fm_error_set(err, FM_EDATA,
                            "the model has no scorecard (train one with `finmaas "
                            "scorecard`)");
    if (model->task != FM_TASK_BINARY || !model->net || model->net->nlayers != 1 ||
        model->net->sizes[1] != 1 || !model->prep ||
        model->net->sizes[0] != (int)model->prep->nfeatures)
        return fm_error_set(err, FM_EFORMAT,
                            "scorecard: the model is not a one-layer binary logistic model");
    fm_scorecard_t *sc = calloc(1, sizeof *sc);
    if (!sc) return fm_error_set(err, FM_ENOMEM, "out of memory");
    sc->model = model;
    double pdo, base_points, base_odds;
    const cJSON *features, *item;
    int rc = fm_json_number(card, "pdo", &pdo, err);
    if (!rc) rc = fm_json_number(card, "base_points", &base_points, err);
    if (!rc) rc = fm_json_number(card, "base_odds", &base_odds, err);
    if (!rc) rc = fm_json_number(card, "intercept", &sc->intercept, err);
    if (!rc) rc = fm_scorecard_scaling(pdo, base_points, base_odds, &sc->scaling, err);
    if (!rc) rc = fm_json_array(card, "features", -1, &features, err);
    const fm_prep_t *prep = model->prep;
    if (!rc && (size_t)cJSON_GetArraySize(features) != prep->ncolumns)
        rc = fm_error_set(err, FM_EFORMAT, "%d features, the preprocessing has %zu columns",
                          cJSON_GetArraySize(features), prep->ncolumns);
    if (!rc && !(sc->features = calloc(prep->ncolumns, sizeof *sc->features)))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) cJSON_ArrayForEach(item, features) {
            sc->nfeatures++;
            if ((rc = read_feature(item, prep, sc->nfeatures - 1, &sc->features[sc->nfeatures - 1],
                                   err))) {
                fm_error_prefix(err, "feature %zu: ", sc->nfeatures - 1);
                break;
            }
        }
    if (!rc) rc = check_model(sc, err);
    if (rc) {
        if (err && err->code != FM_ENOMEM) err->code = rc = FM_EFORMAT;
        fm_error_prefix(err, "scorecard: ");
    }
    if (!rc) {
        const cJSON *policy = cJSON_GetObjectItemCaseSensitive(model->info, "decision_policy");
        fm_decision_policy_t defaults = {base_points, base_points - 2 * pdo, 0, NULL};
        if (policy)
            rc = fm_decision_policy_from_json(policy, &defaults, &sc->policy, err);
        else
            sc->policy = defaults;
        if (rc) {
            fm_error_prefix(err, "the model's ");
            if (err) err->code = rc = FM_EFORMAT;
        }
    }
    if (rc) {
        fm_scorecard_free(sc);
        return rc;
    }
    *out = sc;
    return FM_OK;
}

/* ---- Scoring ------------------------------------------------------------------------------- */

/* The bin of feature f in its encoded block e, SIZE_MAX for an unseen category, or FM_EDATA
 * when the block is not a valid one-hot. */
static int bin_in_block(const fm_scorecard_feature_t *f, const fm_prep_column_t *c, const double *e,
                        size_t *bin, fm_error_t *err) {
    size_t values = c->type == FM_COLUMN_NUMERIC ? c->width : c->categories.count;
    if (c->type == FM_COLUMN_CATEGORICAL && c->missing_indicator && e[values] == 1.0) {
        *bin = f->nbins - 1;
        return FM_OK;
    }
    size_t found = SIZE_MAX;
    for (size_t j = 0; j < values; j++) {
        if (e[j] == 0.0) continue;
        if (e[j] != 1.0 || found != SIZE_MAX)
            return fm_error_set(err, FM_EDATA, "feature '%s': the encoded row is not one-hot",
                                f->name);
        found = j;
    }
    if (c->type == FM_COLUMN_NUMERIC) {
        if (found == SIZE_MAX)
            return fm_error_set(err, FM_EDATA, "feature '%s': the encoded row has no bin", f->name);
        *bin = found;
    } else {
        *bin = found == SIZE_MAX ? SIZE_MAX : (size_t)f->bin_of[found];
    }
    return FM_OK;
}

int fm_scorecard_score(const fm_scorecard_t *sc, const double *x, const fm_raw_value_t *rule_values,
                       fm_scorecard_result_t *out, fm_error_t *err) {
    const fm_prep_t *prep = sc->model->prep;
    double total = 0, log_odds = sc->intercept;
    for (size_t k = 0; k < sc->nfeatures; k++) {
        const fm_scorecard_feature_t *f = &sc->features[k];
        const fm_prep_column_t *c = &prep->columns[f->column];
        size_t bin = SIZE_MAX;
        int rc = bin_in_block(f, c, x + c->offset, &bin, err);
        if (rc) return rc;
        double pts = bin == SIZE_MAX ? f->neutral_points : f->bins[bin].points;
        if (bin != SIZE_MAX) log_odds += f->beta * f->bins[bin].woe;
        out->bin[k] = bin;
        out->points[k] = pts;
        total += pts;
    }
    out->score = total;
    out->log_odds = log_odds;
    out->pd = 1.0 / (1.0 + exp(-log_odds));
    /* Reasons: largest shortfall from the feature's best points first; ties in feature order. */
    out->nreasons = 0;
    for (size_t k = 0; k < sc->nfeatures; k++) {
        double gap = sc->features[k].max_points - out->points[k];
        if (!(gap > 0)) continue;
        size_t at = out->nreasons < FM_SCORECARD_REASONS ? out->nreasons : FM_SCORECARD_REASONS;
        while (at > 0) {
            size_t j = out->reasons[at - 1];
            if (sc->features[j].max_points - out->points[j] >= gap) break;
            if (at < FM_SCORECARD_REASONS) out->reasons[at] = j;
            at--;
        }
        if (at < FM_SCORECARD_REASONS) {
            out->reasons[at] = k;
            if (out->nreasons < FM_SCORECARD_REASONS) out->nreasons++;
        }
    }
    /* Decision: rules, then cutoffs. */
    const fm_decision_policy_t *p = &sc->policy;
    int decline = total < p->decline_below, refer = total < p->approve_at;
    out->fired = 0;
    for (size_t i = 0; i < p->nrules; i++) {
        int fires = 0;
        int rc = fm_decision_rule_fires(&p->rules[i], &rule_values[i], &fires, err);
        if (rc) return rc;
        if (!fires) continue;
        out->fired |= (uint64_t)1 << i;
        if (p->rules[i].decision == FM_DECISION_DECLINE)
            decline = 1;
        else
            refer = 1;
    }
    out->decision = decline ? FM_DECISION_DECLINE : refer ? FM_DECISION_REFER : FM_DECISION_APPROVE;
    return FM_OK;
}

const char *fm_scorecard_bin_label(const fm_scorecard_t *sc, size_t f, size_t bin) {
    if (bin == SIZE_MAX || bin >= sc->features[f].nbins) return "unseen category";
    return sc->features[f].bins[bin].label;
}

const char *fm_scorecard_reason_text(const fm_scorecard_t *sc, size_t f, size_t bin, double points,
                                     char *buf, size_t size) {
    snprintf(buf, size, "%s: %s (%.1f of a possible %.1f points)", sc->features[f].name,
             fm_scorecard_bin_label(sc, f, bin), points, sc->features[f].max_points);
    return buf;
}
