/*
 * Internals shared by the files of the gbt area: the booster object, the structural check of a
 * serialized booster (check.c, plain cJSON, no XGBoost), and the conversion of XGBoost's last
 * error into an fm_error_t message (booster.c).
 */
#ifndef FM_GBT_INTERNAL_H
#define FM_GBT_INTERNAL_H

#include "gbt/gbt.h"

/* The compact read-only copy of a booster's trees that fm_gbt_shap explains rows with (shap.c). */
typedef struct fm_gbt_shap fm_gbt_shap_t;

struct fm_gbt {
    void *booster;        /* XGBoost BoosterHandle, loaded from bytes, one prediction thread */
    unsigned char *bytes; /* owned: the serialized booster exactly as stored */
    size_t nbytes;
    fm_gbt_info_t info;
    fm_gbt_shap_t *shap; /* owned; NULL for a booster with a tree deeper than FM_GBT_MAX_DEPTH */
};

/*
 * Checks that len bytes are a JSON booster of the structure XGBoost 1.x writes for a gbtree model
 * of the given shape (see gbt.h) and fills info from it. With shap not NULL, also builds the
 * compact copy of the checked trees into *shap (fm_gbt_shap_build; caller frees). FM_EFORMAT with
 * a message naming the field, tree and node; FM_ENOMEM.
 */
int fm_gbt_check_json(const void *bytes, size_t len, const fm_gbt_shape_t *shape,
                      fm_gbt_info_t *info, fm_gbt_shap_t **shap, fm_error_t *err);

/*
 * Builds the compact copy of trees, the "trees" array of a model that fm_gbt_check_json has
 * checked and described in info: per node the split feature, float threshold, default direction,
 * cover fraction and leaf value in preorder, per output the bias, per shallow tree the TreeSHAP
 * coefficient tables. *out is NULL (and FM_OK returned) when a tree is deeper than
 * FM_GBT_MAX_DEPTH. FM_ENOMEM.
 */
int fm_gbt_shap_build(const cJSON *trees, const fm_gbt_info_t *info, fm_gbt_shap_t **out,
                      fm_error_t *err);

void fm_gbt_shap_free(fm_gbt_shap_t *shap);

/*
 * fm_gbt_shap's computation over the copy: phi[width * (nfeatures + 1)] for row x. by_path != 0
 * runs Algorithm 2's recursion on every tree, ignoring the coefficient tables (the reference the
 * tests compare the tables with).
 */
void fm_gbt_shap_row(const fm_gbt_shap_t *shap, const double *x, double *phi, int by_path);

/*
 * Makes *out from a booster handle and its serialized bytes (copied): checks the bytes
 * (fm_gbt_check_json), sets the handle to one prediction thread and configures it with a first
 * prediction. On success *out owns the handle; on failure the caller still does.
 */
int fm_gbt_adopt(void *booster, const void *bytes, size_t len, const fm_gbt_shape_t *shape,
                 fm_gbt_t **out, fm_error_t *err);

/* Records code with "<what>: XGBoost: <first line of XGBoost's last error>" in err; returns code.
 */
int fm_gbt_library_error(fm_error_t *err, int code, const char *what);

/* The metric XGBoost evaluates for an objective: "logloss", "mlogloss", "rmse". */
const char *fm_gbt_metric_name(fm_gbt_objective_t objective);

#endif
