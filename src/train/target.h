/*
 * Internal to the train area: reading the target column of a frame as class labels or values.
 */
#ifndef FM_TRAIN_TARGET_H
#define FM_TRAIN_TARGET_H

#include "train/train.h"

/* The target of a frame, resolved for one task. */
typedef struct fm_target {
    fm_task_t task;
    size_t nclasses; /* classification: number of classes; binary: 2 */
    char **classes;  /* owned; binary: [negative, positive]; multiclass: sorted */
    int32_t *label;  /* classification: class index per frame row, -1 when missing */
    double *value;   /* regression: value per frame row, NaN when missing */
    size_t missing;  /* rows without a target value */
} fm_target_t;

/*
 * Resolves frame column `col` as the target: infers the task when task < 0 (categorical with two
 * values or numeric with two distinct values: binary; categorical with more: multiclass;
 * numeric: regression), orders the classes (numeric labels by value, text by byte order), and
 * puts `positive` (or the second class) last for binary targets. Errors name the column.
 */
int fm_target_resolve(const fm_frame_t *frame, size_t col, int task, const char *positive,
                      fm_target_t *out, fm_error_t *err);
void fm_target_deinit(fm_target_t *target);

#endif
