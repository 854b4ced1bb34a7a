/*
 * The scorecard as a table: every (feature, bin) with its counts, WoE, IV and points, written as
 * CSV or JSON. The JSON form is also what the model stores as its "scorecard" (fit.c adds the
 * settings), and what fm_scorecard_from_model reads back.
 */
#include "core/json.h"
#include "data/csv_writer.h"
#include "scorecard/scorecard.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static cJSON *bound(double v) {
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static int bin_json(cJSON *list, const fm_scorecard_feature_t *f, const fm_scorecard_bin_t *b) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return 0;
    }
    int ok = cJSON_AddStringToObject(o, "bin", b->label) != NULL;
    if (ok && b->missing) {
        ok = cJSON_AddTrueToObject(o, "missing") != NULL;
    } else if (ok && f->type == FM_COLUMN_NUMERIC) {
        ok = cJSON_AddItemToObject(o, "lower", bound(b->lower)) &&
             cJSON_AddItemToObject(o, "upper", bound(b->upper));
    } else if (ok) {
        cJSON *cats = cJSON_AddArrayToObject(o, "categories");
        ok = cats && cJSON_AddBoolToObject(o, "other", b->other);
        for (size_t k = 0; ok && k < b->ncategories; k++) {
            cJSON *s = cJSON_CreateString(b->categories[k]);
            ok = s && cJSON_AddItemToArray(cats, s);
            if (!ok) cJSON_Delete(s);
        }
    }
    return ok && cJSON_AddNumberToObject(o, "count", b->good + b->bad) &&
           cJSON_AddNumberToObject(o, "good", b->good) &&
           cJSON_AddNumberToObject(o, "bad", b->bad) && fm_json_add_number(o, "woe", b->woe) &&
           fm_json_add_number(o, "iv", b->iv) && fm_json_add_number(o, "points", b->points);
}

cJSON *fm_scorecard_table_json(const fm_scorecard_t *sc) {
    const fm_scorecard_scaling_t *s = &sc->scaling;
    cJSON *o = cJSON_CreateObject();
    cJSON *features = o ? cJSON_CreateArray() : NULL;
    int ok = features && fm_json_add_number(o, "pdo", s->pdo) &&
             fm_json_add_number(o, "base_points", s->base_points) &&
             fm_json_add_number(o, "base_odds", s->base_odds) &&
             fm_json_add_number(o, "factor", s->factor) &&
             fm_json_add_number(o, "offset", s->offset) &&
             fm_json_add_number(o, "intercept", sc->intercept);
    if (ok)
        ok = cJSON_AddItemToObject(o, "features", features);
    else
        cJSON_Delete(features);
    for (size_t k = 0; ok && k < sc->nfeatures; k++) {
        const fm_scorecard_feature_t *f = &sc->features[k];
        cJSON *j = cJSON_CreateObject();
        ok = j && cJSON_AddItemToArray(features, j);
        if (!ok) {
            cJSON_Delete(j);
            break;
        }
        cJSON *bins = NULL;
        ok = cJSON_AddStringToObject(j, "feature", f->name) &&
             cJSON_AddStringToObject(j, "type", fm_column_type_name(f->type)) &&
             fm_json_add_number(j, "iv", f->iv) && fm_json_add_number(j, "coefficient", f->beta);
        if (ok && f->type == FM_COLUMN_NUMERIC)
            ok = cJSON_AddStringToObject(j, "direction",
                                         f->direction < 0 ? "decreasing" : "increasing") != NULL;
        ok = ok && (bins = cJSON_AddArrayToObject(j, "bins"));
        for (size_t b = 0; ok && b < f->nbins; b++)
            ok = bin_json(bins, f, &f->bins[b]);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int field(fm_buf_t *out, const char *s, int comma) {
    if (comma && fm_buf_putc(out, ',')) return FM_ENOMEM;
    return fm_csv_write_field(out, s, strlen(s));
}

static int number(fm_buf_t *out, double v) {
    char buf[40] = "";
    if (isfinite(v)) snprintf(buf, sizeof buf, "%.17g", v);
    return field(out, buf, 1);
}

int fm_scorecard_table_csv(const fm_scorecard_t *sc, fm_buf_t *out) {
    int rc = fm_buf_puts(out, "feature,type,iv,coefficient,bin,lower,upper,categories,missing,"
                              "count,good,bad,woe,iv_bin,points\n");
    fm_buf_t cats = FM_BUF_INIT;
    for (size_t k = 0; !rc && k < sc->nfeatures; k++) {
        const fm_scorecard_feature_t *f = &sc->features[k];
        for (size_t i = 0; !rc && i < f->nbins; i++) {
            const fm_scorecard_bin_t *b = &f->bins[i];
            fm_buf_reset(&cats);
            for (size_t c = 0; !rc && c < b->ncategories; c++)
                rc = fm_buf_printf(&cats, "%s%s", c ? "|" : "", b->categories[c]);
            if (!rc) rc = field(out, f->name, 0);
            if (!rc) rc = field(out, fm_column_type_name(f->type), 1);
            if (!rc) rc = number(out, f->iv);
            if (!rc) rc = number(out, f->beta);
            if (!rc) rc = field(out, b->label, 1);
            if (!rc) rc = number(out, f->type == FM_COLUMN_NUMERIC ? b->lower : NAN);
            if (!rc) rc = number(out, f->type == FM_COLUMN_NUMERIC ? b->upper : NAN);
            if (!rc) rc = field(out, cats.data ? cats.data : "", 1);
            if (!rc) rc = field(out, b->missing ? "1" : "0", 1);
            if (!rc) rc = number(out, b->good + b->bad);
            if (!rc) rc = number(out, b->good);
            if (!rc) rc = number(out, b->bad);
            if (!rc) rc = number(out, b->woe);
            if (!rc) rc = number(out, b->iv);
            if (!rc) rc = number(out, b->points);
            if (!rc) rc = fm_buf_putc(out, '\n');
        }
    }
    fm_buf_free(&cats);
    return rc ? FM_ENOMEM : FM_OK;
}
