/*
 * Internals shared by the files of the model area: which description members are rebuilt from
 * the model's structure, and the consistency check that both saving and loading apply, so that
 * finmaas never writes a model file it would refuse to read.
 */
#ifndef FM_MODEL_INTERNAL_H
#define FM_MODEL_INTERNAL_H

#include "model/model.h"

/* Per-thread prediction state (model.h): a network's buffers (NULL for trees) and the message of
 * the last failed prediction. */
struct fm_model_workspace {
    fm_net32_workspace_t *net32;
    char error[FM_ERROR_MESSAGE_MAX];
};

/* The widest layer a model file may declare; keeps parameter counts far from overflow. */
#define FM_MODEL_MAX_WIDTH (1 << 24)

/*
 * 1 when key is a description member that fm_model_describe writes from the model's structure
 * (task, classes, preprocessing, architecture, ...), 0 for members kept in model->info.
 */
int fm_model_key_is_structural(const char *key);

/*
 * Checks that a model's parts agree: a network for a network family and a booster for "gbt",
 * preprocessing width against the network's input (or the booster's features), output width
 * against the task and classes, loss against output activation and task, the booster's objective
 * against the task, class labels present and distinct, target scaling finite (identity for
 * trees), parameters finite. Messages do not name a file; callers add it.
 */
int fm_model_check(const fm_model_t *model, fm_error_t *err);

/* The loss called text ("mse", "binary_crossentropy", ...). FM_EFORMAT when unknown. */
int fm_model_loss_parse(const char *text, fm_loss_t *out);

#endif
