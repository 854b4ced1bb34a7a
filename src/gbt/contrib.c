/*
 * Explaining a booster's predictions: XGBoost's own TreeSHAP feature contributions and the raw
 * margin (the score before the link function) that they add up to.
 *
 * Contributions are not available through XGBoost's in-place prediction, so each call wraps the
 * caller's rows in a DMatrix (built on the calling thread, "nthread" 1) and frees it before
 * returning; the booster itself stays untouched, and XGBoost keeps each thread's result buffer
 * apart, so concurrent calls on one loaded booster are safe as they are for fm_gbt_predict.
 * Margins go through the same in-place path as fm_gbt_predict with "type" 1.
 */
#include "gbt/gbt_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <xgboost/c_api.h>

/* TreeSHAP over all trees, one row of nfeatures + 1 values per output ("strict_shape"). */
static const char contrib_config[] = "{\"type\":2,\"training\":false,\"iteration_begin\":0,"
                                     "\"iteration_end\":0,\"strict_shape\":true}";
static const char margin_config[] = "{\"type\":1,\"training\":false,\"iteration_begin\":0,"
                                    "\"iteration_end\":0,\"strict_shape\":false,"
                                    "\"missing\":NaN,\"cache_id\":0}";
static const char matrix_config[] = "{\"missing\":NaN,\"nthread\":1}";

/* The array interface of n rows of nf little-endian doubles at x. */
static void array_interface(char *buf, size_t size, const double *x, size_t n, size_t nf) {
    snprintf(buf, size,
             "{\"data\":[%" PRIuPTR ",true],\"shape\":[%zu,%zu],\"strides\":null,"
             "\"typestr\":\"<f8\",\"version\":3}",
             (uintptr_t)x, n, nf);
}

/* The number of values a result of dim dimensions holds. */
static bst_ulong result_size(const bst_ulong *shape, bst_ulong dim) {
    bst_ulong total = dim ? 1 : 0;
    for (bst_ulong d = 0; d < dim; d++)
        total *= shape[d];
    return total;
}

int fm_gbt_contributions(const fm_gbt_t *gbt, const double *x, size_t n, double *out,
                         fm_error_t *err) {
    if (n == 0) return FM_OK;
    size_t nf = gbt->info.shape.nfeatures, width = fm_gbt_output_width(gbt);
    size_t want = n * width * (nf + 1);
    char array[192];
    array_interface(array, sizeof array, x, n, nf);
    DMatrixHandle matrix = NULL;
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *result = NULL;
    int rc = FM_OK;
    if (XGDMatrixCreateFromDense(array, matrix_config, &matrix) != 0)
        rc = fm_gbt_library_error(err, FM_ENOMEM, "contributions");
    else if (XGBoosterPredictFromDMatrix(gbt->booster, matrix, contrib_config, &shape, &dim,
                                         &result) != 0)
        rc = fm_gbt_library_error(err, FM_ENOMEM, "contributions");
    else if (result_size(shape, dim) != (bst_ulong)want || !result)
        rc = fm_error_set(err, FM_ESTATE, "contributions: XGBoost gave %llu values for %zu rows",
                          (unsigned long long)result_size(shape, dim), n);
    for (size_t i = 0; i < want; i++)
        out[i] = rc ? NAN : result[i];
    if (matrix) XGDMatrixFree(matrix);
    return rc;
}

int fm_gbt_predict_margin(const fm_gbt_t *gbt, const double *x, size_t n, double *out,
                          fm_error_t *err) {
    if (n == 0) return FM_OK;
    size_t nf = gbt->info.shape.nfeatures, want = n * fm_gbt_output_width(gbt);
    char array[192];
    array_interface(array, sizeof array, x, n, nf);
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *result = NULL;
    int rc = FM_OK;
    if (XGBoosterPredictFromDense(gbt->booster, array, margin_config, NULL, &shape, &dim,
                                  &result) != 0)
        rc = fm_gbt_library_error(err, FM_ENOMEM, "margin prediction");
    else if (result_size(shape, dim) != (bst_ulong)want || !result)
        rc =
            fm_error_set(err, FM_ESTATE, "margin prediction: XGBoost gave %llu values for %zu rows",
                         (unsigned long long)result_size(shape, dim), n);
    for (size_t i = 0; i < want; i++)
        out[i] = rc ? NAN : result[i];
    return rc;
}
