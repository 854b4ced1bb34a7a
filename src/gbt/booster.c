/*
 * A loaded booster: rebuilding it from its serialized bytes (after the structural check of
 * check.c) or adopting one just trained, predicting with it, describing it, and turning XGBoost's
 * errors into fm_error_t messages.
 *
 * A booster is loaded with one thread ("nthread" = 1) so that each prediction runs on the calling
 * thread alone, and is configured once at load by a first prediction: XGBoost configures a booster
 * lazily on first use, and doing that before the booster is shared keeps every later call
 * read-only, which is what makes concurrent predictions safe. Predictions go through XGBoost's
 * in-place path over the caller's double rows (no matrix is built per call); XGBoost rounds the
 * values to single precision as it does for any input.
 */
#include "gbt/gbt_internal.h"
#include "core/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

/* Normal prediction over all trees; "missing" NaN as in the training matrix. */
static const char predict_config[] = "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
                                     "\"iteration_end\":0,\"strict_shape\":false,"
                                     "\"missing\":NaN,\"cache_id\":0}";

const char *fm_gbt_objective_name(fm_gbt_objective_t objective) {
    switch (objective) {
    case FM_GBT_BINARY:
        return "binary:logistic";
    case FM_GBT_MULTICLASS:
        return "multi:softprob";
    case FM_GBT_REGRESSION:
        return "reg:squarederror";
    }
    return "unknown";
}

const char *fm_gbt_metric_name(fm_gbt_objective_t objective) {
    switch (objective) {
    case FM_GBT_BINARY:
        return "logloss";
    case FM_GBT_MULTICLASS:
        return "mlogloss";
    case FM_GBT_REGRESSION:
        return "rmse";
    }
    return "unknown";
}

int fm_gbt_library_error(fm_error_t *err, int code, const char *what) {
    const char *msg = XGBGetLastError();
    if (!msg) msg = "";
    /* XGBoost's messages read "[12:00:00] path/file.cc:123: text", then a stack trace. */
    if (msg[0] == '[') {
        const char *close = strstr(msg, "] ");
        if (close) msg = close + 2;
    }
    const char *colon = strstr(msg, ": ");
    if (colon && colon - msg < 120 && memchr(msg, ':', (size_t)(colon - msg)) &&
        !memchr(msg, ' ', (size_t)(colon - msg)))
        msg = colon + 2;
    size_t n = strcspn(msg, "\n");
    return fm_error_set(err, code, "%s: XGBoost: %.*s", what, (int)(n > 300 ? 300 : n), msg);
}

size_t fm_gbt_output_width(const fm_gbt_t *gbt) {
    return gbt->info.shape.objective == FM_GBT_MULTICLASS ? gbt->info.shape.nclasses : 1;
}

const unsigned char *fm_gbt_bytes(const fm_gbt_t *gbt, size_t *len) {
    *len = gbt->nbytes;
    return gbt->bytes;
}

const fm_gbt_info_t *fm_gbt_info(const fm_gbt_t *gbt) {
    return &gbt->info;
}

void fm_gbt_free(fm_gbt_t *gbt) {
    if (!gbt) return;
    if (gbt->booster) XGBoosterFree(gbt->booster);
    fm_gbt_shap_free(gbt->shap);
    free(gbt->bytes);
    free(gbt);
}

int fm_gbt_predict(const fm_gbt_t *gbt, const double *x, size_t n, double *out, fm_error_t *err) {
    if (n == 0) return FM_OK;
    size_t nf = gbt->info.shape.nfeatures, width = fm_gbt_output_width(gbt);
    /* The array interface XGBoost reads the rows through: address, shape, little-endian f8. */
    char array[192];
    snprintf(array, sizeof array,
             "{\"data\":[%" PRIuPTR ",true],\"shape\":[%zu,%zu],\"strides\":null,"
             "\"typestr\":\"<f8\",\"version\":3}",
             (uintptr_t)x, n, nf);
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *result = NULL;
    int rc = FM_OK;
    if (XGBoosterPredictFromDense(gbt->booster, array, predict_config, NULL, &shape, &dim,
                                  &result) != 0) {
        rc = fm_gbt_library_error(err, FM_ENOMEM, "prediction");
    } else {
        bst_ulong total = dim ? 1 : 0;
        for (bst_ulong d = 0; d < dim; d++)
            total *= shape[d];
        if (total != (bst_ulong)n * width || !result)
            rc = fm_error_set(err, FM_ESTATE, "prediction: XGBoost gave %llu values for %zu rows",
                              (unsigned long long)total, n);
    }
    if (rc) {
        for (size_t i = 0; i < n * width; i++)
            out[i] = NAN;
        return rc;
    }
    for (size_t i = 0; i < n * width; i++)
        out[i] = result[i];
    return FM_OK;
}

/* XGBoost's own view of the loaded booster must agree with the checked bytes, and a first
 * prediction (which configures the booster) must give finite values of the right shape. */
static int confirm(fm_gbt_t *g, fm_error_t *err) {
    bst_ulong nfeatures = 0;
    int rounds = 0;
    if (XGBoosterGetNumFeature(g->booster, &nfeatures) != 0)
        return fm_gbt_library_error(err, FM_EFORMAT, "booster");
    if (XGBoosterBoostedRounds(g->booster, &rounds) != 0)
        return fm_gbt_library_error(err, FM_EFORMAT, "booster");
    if (nfeatures != g->info.shape.nfeatures || rounds != g->info.rounds)
        return fm_error_set(err, FM_EFORMAT,
                            "booster: XGBoost reads %llu features and %d rounds, the model "
                            "says %zu and %d",
                            (unsigned long long)nfeatures, rounds, g->info.shape.nfeatures,
                            g->info.rounds);
    size_t width = fm_gbt_output_width(g);
    double *x = calloc(g->info.shape.nfeatures, sizeof *x);
    double *out = malloc(width * sizeof *out);
    int rc = x && out ? fm_gbt_predict(g, x, 1, out, err)
                      : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t k = 0; !rc && k < width; k++)
        if (!isfinite(out[k]))
            rc = fm_error_set(err, FM_EFORMAT, "booster: predicts a non-finite value");
    free(x);
    free(out);
    return rc;
}

static int check_shape(const fm_gbt_shape_t *shape, fm_error_t *err) {
    if ((unsigned)shape->objective > FM_GBT_REGRESSION || shape->nfeatures < 1 ||
        shape->nfeatures > UINT32_MAX ||
        (shape->objective == FM_GBT_MULTICLASS &&
         (shape->nclasses < 2 || shape->nclasses > FM_GBT_MAX_CLASSES)))
        return fm_error_set(err, FM_EINVAL,
                            "booster: invalid shape (%d, %zu classes, %zu features)",
                            (int)shape->objective, shape->nclasses, shape->nfeatures);
    return FM_OK;
}

/* A booster object holding a checked copy of bytes (no handle yet). */
static int from_bytes(const void *bytes, size_t len, const fm_gbt_shape_t *shape, fm_gbt_t **out,
                      fm_error_t *err) {
    *out = NULL;
    int rc = check_shape(shape, err);
    if (rc) return rc;
    fm_gbt_t *g = calloc(1, sizeof *g);
    if (!g) return fm_error_set(err, FM_ENOMEM, "out of memory");
    rc = fm_gbt_check_json(bytes, len, shape, &g->info, &g->shap, err);
    if (rc) {
        fm_error_prefix(err, "booster: ");
        fm_gbt_free(g);
        return rc;
    }
    if (!(g->bytes = malloc(len))) {
        fm_gbt_free(g);
        return fm_error_set(err, FM_ENOMEM, "out of memory for a booster of %zu bytes", len);
    }
    memcpy(g->bytes, bytes, len);
    g->nbytes = len;
    *out = g;
    return FM_OK;
}

int fm_gbt_load(const void *bytes, size_t len, const fm_gbt_shape_t *shape, fm_gbt_t **out,
                fm_error_t *err) {
    *out = NULL;
    fm_gbt_t *g = NULL;
    int rc = from_bytes(bytes, len, shape, &g, err);
    if (rc) return rc;
    /* One thread from the start: loading a large model would otherwise use every core. */
    if (XGBoosterCreate(NULL, 0, &g->booster) != 0 ||
        XGBoosterSetParam(g->booster, "nthread", "1") != 0)
        rc = fm_gbt_library_error(err, FM_ENOMEM, "booster");
    else if (XGBoosterLoadModelFromBuffer(g->booster, g->bytes, (bst_ulong)len) != 0)
        rc = fm_gbt_library_error(err, FM_EFORMAT, "booster");
    else if (XGBoosterSetParam(g->booster, "nthread", "1") != 0)
        rc = fm_gbt_library_error(err, FM_EFORMAT, "booster");
    if (!rc) rc = confirm(g, err);
    if (rc) {
        fm_gbt_free(g);
        return rc;
    }
    *out = g;
    return FM_OK;
}

int fm_gbt_adopt(void *booster, const void *bytes, size_t len, const fm_gbt_shape_t *shape,
                 fm_gbt_t **out, fm_error_t *err) {
    *out = NULL;
    fm_gbt_t *g = NULL;
    int rc = from_bytes(bytes, len, shape, &g, err);
    if (rc) return rc;
    g->booster = booster;
    if (XGBoosterSetParam(booster, "nthread", "1") != 0)
        rc = fm_gbt_library_error(err, FM_EINVAL, "booster");
    if (!rc) rc = confirm(g, err);
    if (rc) {
        g->booster = NULL; /* still the caller's */
        fm_gbt_free(g);
        return rc;
    }
    *out = g;
    return FM_OK;
}

cJSON *fm_gbt_describe(const fm_gbt_t *gbt) {
    const fm_gbt_info_t *i = &gbt->info;
    cJSON *d = cJSON_CreateObject();
    char version[48];
    snprintf(version, sizeof version, "%d.%d.%d", i->version[0], i->version[1], i->version[2]);
    int ok = d && cJSON_AddStringToObject(d, "library", "xgboost") &&
             cJSON_AddStringToObject(d, "written_by", version) &&
             cJSON_AddStringToObject(d, "format", "json") &&
             cJSON_AddStringToObject(d, "objective", fm_gbt_objective_name(i->shape.objective)) &&
             cJSON_AddNumberToObject(d, "features", (double)i->shape.nfeatures) &&
             cJSON_AddNumberToObject(d, "rounds", i->rounds) &&
             cJSON_AddNumberToObject(d, "trees", (double)i->trees) &&
             cJSON_AddNumberToObject(d, "leaves", (double)i->leaves) &&
             cJSON_AddNumberToObject(d, "max_depth", i->max_depth) &&
             fm_json_add_number(d, "base_score", i->base_score) &&
             cJSON_AddNumberToObject(d, "bytes", (double)i->nbytes);
    if (ok && i->shape.objective == FM_GBT_MULTICLASS)
        ok = cJSON_AddNumberToObject(d, "classes", (double)i->shape.nclasses) != NULL;
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}
