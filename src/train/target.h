/*
 * The target column of a frame read as class labels or values: the rules by which fm_train picks
 * the task and orders the classes. Public to the areas above train, so that whatever else reads a
 * target (the search's stratified splits, its Information Value) reads it exactly as training
 * does.
 */
#ifndef FM_TRAIN_TARGET_H
#define FM_TRAIN_TARGET_H

#include "train/train.h"

/* The target of a frame, resolved for one task. Plain struct; owns its arrays. */
typedef struct fm_target {
    size_t column; /* the frame column it was read from */
    fm_task_t task;
    size_t nclasses; /* classification: number of classes; binary: 2 */
    char **classes;  /* owned; binary: [negative, positive]; multiclass: sorted */
    int32_t *label;  /* per frame row: the class index (regression: 0), -1 when missing */
    double *value;   /* regression: value per frame row, NaN when missing; else NULL */
    size_t missing;  /* rows without a target value */
} fm_target_t;

/*
 * Resolves frame column `col` as the target: infers the task when task < 0 (categorical with two
 * values or numeric with two distinct values: binary; categorical with more: multiclass;
 * numeric: regression), orders the classes (numeric labels by value, text by byte order), and
 * puts `positive` (or the second class) last for binary targets; `positive` is ignored for a
 * regression target. Errors (FM_EDATA, FM_EINVAL) name the column: too many classes, one class,
 * a text column as a regression target, a binary task over more than two classes, an unknown
 * positive class, a positive class for more than two classes. On failure *out holds nothing.
 * Free with fm_target_deinit.
 */
int fm_target_resolve(const fm_frame_t *frame, size_t col, int task, const char *positive,
                      fm_target_t *out, fm_error_t *err);
/* Frees what target owns and zeroes it; NULL is a no-op. */
void fm_target_deinit(fm_target_t *target);

#endif
