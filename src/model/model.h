/*
 * The model: everything needed to turn raw input columns into a prediction, and its description.
 *
 * An fm_model_t joins the fitted preprocessing (data/prep.h), the network (nn/nn.h), the task and
 * its class labels, and a JSON description (training settings and history, validation metrics,
 * a fingerprint of the training data, creation time). It is stored as one .fmm file in the
 * safetensors layout (model/safetensors.h): each layer's weight "layers.<l>.weight" [I, O] and
 * bias "layers.<l>.bias" [O] as F64 tensors, and the description as a JSON string under the
 * metadata key "finmaas". The description's "format_version" is FM_MODEL_FORMAT_VERSION; a file
 * with a newer one is refused with a clear error.
 *
 * Every prediction (eval, predict, serving, the validation report written at training) runs the
 * single-precision copy of the network (nn/nn.h, fm_net32_t), so a model gives the same score
 * everywhere; only the training loop itself runs in double precision.
 *
 * Thread-safety: a loaded model is read-only; any number of threads may predict with it at once,
 * each with its own fm_net32_workspace_t (fm_model_workspace_new).
 */
#ifndef FM_MODEL_H
#define FM_MODEL_H

#include "data/prep.h"
#include "model/safetensors.h"
#include "nn/nn.h"

#include <cJSON.h>

#define FM_MODEL_FORMAT_VERSION 1
#define FM_MODEL_METADATA_KEY   "finmaas"

typedef enum {
    FM_TASK_BINARY = 0,
    FM_TASK_MULTICLASS = 1,
    FM_TASK_REGRESSION = 2,
} fm_task_t;

const char *fm_task_name(fm_task_t task);
/* Parses "binary", "multiclass", "regression". */
int fm_task_parse(const char *text, fm_task_t *out);

typedef struct fm_model {
    fm_task_t task;
    char *family;      /* owned: "logistic", "linear", "softmax", "mlp" */
    char *target;      /* owned: the target column's name */
    size_t nclasses;   /* classification: number of classes (binary: 2); regression: 0 */
    char **classes;    /* owned: class labels; binary: [negative, positive] */
    fm_prep_t *prep;   /* owned */
    fm_net_t *net;     /* owned: the trained parameters, double precision */
    fm_net32_t *net32; /* owned: the float copy that predicts (fm_model_ready), or NULL */
    fm_loss_t loss;
    double target_mean; /* regression: predictions are target_mean + target_std * output */
    double target_std;
    cJSON *info; /* owned object: "created", "training", "validation", "data", ... */
} fm_model_t;

/* A new empty model (all fields zero, info an empty object). NULL on allocation failure. */
fm_model_t *fm_model_new(void);
void fm_model_free(fm_model_t *model);

/* Number of values fm_model_predict writes per row: classes for multiclass, else 1. */
size_t fm_model_output_width(const fm_model_t *model);

/*
 * Makes a model with final parameters ready to predict: builds net32 from net (replacing any
 * earlier copy). fm_model_decode and the trainer call it; code that changes net's parameters
 * must call it again.
 */
int fm_model_ready(fm_model_t *model, fm_error_t *err);

/* Buffers for predicting up to max_rows rows at a time with a ready model. One per thread; free
 * with fm_net32_workspace_free. */
int fm_model_workspace_new(const fm_model_t *model, int max_rows, fm_net32_workspace_t **out,
                           fm_error_t *err);

/*
 * Predictions for n already-encoded rows x[n * prep->nfeatures]: out[n * width] holds
 * P(positive class) for binary, class probabilities for multiclass, the value for regression.
 * The model must be ready; ws comes from fm_model_workspace_new.
 */
void fm_model_predict_encoded(const fm_model_t *model, fm_net32_workspace_t *ws, const double *x,
                              size_t n, double *out);

/* Encodes rows of frame with the model's preprocessing and predicts them (out as above). */
int fm_model_predict_frame(const fm_model_t *model, const fm_frame_t *frame, double *out,
                           fm_error_t *err);

/* The label predicted for one row's output (binary: positive when p >= 0.5). Borrowed. */
const char *fm_model_label(const fm_model_t *model, const double *row_output);

/* The full description (what `finmaas inspect` prints and the file's metadata holds). Caller owns.
 */
cJSON *fm_model_describe(const fm_model_t *model);

/* Saves atomically to path. */
int fm_model_save(const fm_model_t *model, const char *path, fm_error_t *err);
/* Serialises to memory (appended to out). */
int fm_model_encode(const fm_model_t *model, fm_buf_t *out, fm_error_t *err);
/* Loads and fully validates a model file (checksum, format version, tensors against the
 * architecture, preprocessing). Errors name the file. */
int fm_model_load(const char *path, fm_model_t **out, fm_error_t *err);
int fm_model_decode(const void *data, size_t len, const char *name, fm_model_t **out,
                    fm_error_t *err);

#endif
