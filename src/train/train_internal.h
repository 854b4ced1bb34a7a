/*
 * Internal to the train area: the governance step after fitting (train/govern.c), which the
 * trainer calls with what it already holds.
 */
#ifndef FM_TRAIN_INTERNAL_H
#define FM_TRAIN_INTERNAL_H

#include "train/target.h"
#include "train/train.h"

/* What the trainer hands to the governance step (all borrowed). */
typedef struct fm_train_governed {
    const fm_frame_t *frame;
    const fm_train_options_t *options;
    const double *xtrain; /* the encoded training rows */
    size_t ntrain;
    const size_t *train_rows;
    const size_t *valid_rows;
    size_t nvalid;
    const int32_t *label; /* classification: class index per frame row (-1 missing) */
} fm_train_governed_t;

/*
 * Stores the explanation baselines, the global explanations and the fairness of the protected
 * attributes in model->info (see fm_train_options_t.governance). The model must be ready.
 */
int fm_train_govern(fm_model_t *model, const fm_train_governed_t *g, fm_error_t *err);

/*
 * AIF360's reweighing weights of the training rows over the joint groups of the protected
 * attributes: *row_weight (caller frees) has one entry per frame row, 1 outside the training rows.
 * FM_EINVAL when the target is not binary or there is no protected attribute.
 */
int fm_train_reweigh(const fm_frame_t *frame, const fm_train_options_t *o,
                     const fm_target_t *target, const size_t *train_rows, size_t ntrain,
                     double **row_weight, fm_error_t *err);

/* Adds the fairness of before (the same model fitted without reweighing) to after's description
 * as "fairness"."before_mitigation", and names the mitigation. */
int fm_train_mitigation_info(fm_model_t *after, const fm_model_t *before, fm_error_t *err);

#endif
