/*
 * The model: everything needed to turn raw input columns into a prediction, and its description.
 *
 * An fm_model_t joins the fitted preprocessing (data/prep.h), the learned function, the task and
 * its class labels, and a JSON description (training settings and history, validation metrics,
 * a fingerprint of the training data, creation time). The learned function is one of two kinds:
 * - a neural network (nn/nn.h; families "logistic", "linear", "softmax", "mlp"), stored as each
 *   layer's weight "layers.<l>.weight" [I, O] and bias "layers.<l>.bias" [O] in F64;
 * - gradient-boosted trees (gbt/gbt.h; family "gbt"), stored as the booster's own serialized
 *   bytes (XGBoost JSON) in one U8 tensor "gbt.booster", described under "booster".
 * The model is one .fmm file in the safetensors layout (model/safetensors.h) with the description
 * as a JSON string under the metadata key "finmaas". The description's "format_version" is
 * FM_MODEL_FORMAT_VERSION; a file with a newer one is refused with a clear error.
 *
 * Every prediction (eval, predict, serving, the validation report written at training) of a
 * network runs its single-precision copy (nn/nn.h, fm_net32_t), so a model gives the same score
 * everywhere; only the training loop itself runs in double precision. Trees predict through
 * XGBoost, one thread per call.
 *
 * Thread-safety: a loaded model is read-only; any number of threads may predict with it at once,
 * each with its own fm_model_workspace_t (fm_model_workspace_new).
 */
#ifndef FM_MODEL_H
#define FM_MODEL_H

#include "data/prep.h"
#include "gbt/gbt.h"
#include "model/safetensors.h"
#include "nn/nn.h"

#include <cJSON.h>

#define FM_MODEL_FORMAT_VERSION 1
#define FM_MODEL_METADATA_KEY   "finmaas"
/* The tensor holding a gbt model's serialized booster. */
#define FM_MODEL_BOOSTER_TENSOR "gbt.booster"

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
    char *family;       /* owned: "logistic", "linear", "softmax", "mlp", "gbt" */
    char *target;       /* owned: the target column's name */
    size_t nclasses;    /* classification: number of classes (binary: 2); regression: 0 */
    char **classes;     /* owned: class labels; binary: [negative, positive] */
    fm_prep_t *prep;    /* owned */
    fm_net_t *net;      /* owned: the trained parameters, double precision; NULL for "gbt" */
    fm_net32_t *net32;  /* owned: the float copy that predicts (fm_model_ready), or NULL */
    fm_gbt_t *gbt;      /* owned: family "gbt": the booster; NULL for networks */
    fm_loss_t loss;     /* networks: the training loss; gbt: the task's loss (kept consistent) */
    double target_mean; /* regression: predictions are target_mean + target_std * output
                           (gbt: 0 and 1, the booster predicts in the target's units) */
    double target_std;
    cJSON *info; /* owned object: "created", "training", "validation", "data", ... */
} fm_model_t;

/* A new empty model (all fields zero, info an empty object). NULL on allocation failure. */
fm_model_t *fm_model_new(void);
void fm_model_free(fm_model_t *model);

/* Number of values fm_model_predict writes per row: classes for multiclass, else 1. */
size_t fm_model_output_width(const fm_model_t *model);

/* 1 for a gradient-boosted trees model (a booster, no network), 0 for a neural network. */
int fm_model_is_gbt(const fm_model_t *model);

/*
 * Makes a model with final parameters ready to predict: builds net32 from net (replacing any
 * earlier copy); a gbt model is ready once it has its booster. fm_model_decode and the trainer
 * call it; code that changes net's parameters must call it again.
 */
int fm_model_ready(fm_model_t *model, fm_error_t *err);

/* Per-thread prediction state for either kind of model (opaque): buffers for up to max_rows rows
 * at a time through a network, and the message of the last failed prediction. */
typedef struct fm_model_workspace fm_model_workspace_t;

/* A workspace for predicting with a ready model. One per thread; *out is owned by the caller
 * (fm_model_workspace_free). FM_ESTATE when the model is not ready, FM_ELIMIT when max_rows rows
 * of the network's widest layer do not fit. */
int fm_model_workspace_new(const fm_model_t *model, int max_rows, fm_model_workspace_t **out,
                           fm_error_t *err);
void fm_model_workspace_free(fm_model_workspace_t *ws);

/* The message of the last failed fm_model_predict_encoded with ws ("" when none). Borrowed. */
const char *fm_model_workspace_error(const fm_model_workspace_t *ws);

/*
 * Predictions for n already-encoded rows x[n * prep->nfeatures]: out[n * width] holds
 * P(positive class) for binary, class probabilities for multiclass, the value for regression.
 * The model must be ready; ws comes from fm_model_workspace_new for this model. Networks never
 * fail (FM_OK). Trees fail only when XGBoost does (out of memory): then out holds NaN, the
 * negative code is returned and fm_model_workspace_error(ws) says why.
 */
int fm_model_predict_encoded(const fm_model_t *model, fm_model_workspace_t *ws, const double *x,
                             size_t n, double *out);

/* Encodes rows of frame with the model's preprocessing and predicts them (out as above). */
int fm_model_predict_frame(const fm_model_t *model, const fm_frame_t *frame, double *out,
                           fm_error_t *err);

/* Rows a chunked reader of a model's input file reads at a time (fm_model_predict_file). */
#define FM_MODEL_CHUNK_ROWS 4096

/*
 * Opens path for chunked reading of the model's input columns (all required, with the model's
 * types and PII marks) followed by extra columns (their own required flags). A column both in the
 * model and in extra is read once, with the model's type.
 */
int fm_model_open_reader(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                         size_t nextra, fm_frame_reader_t **out, fm_error_t *err);

/* Called with each chunk of rows, its predictions (fm_model_predict_frame's layout) and the index
 * of its first row in the file. A non-zero return stops the scoring and is returned. */
typedef int (*fm_model_chunk_fn)(void *ctx, const fm_frame_t *chunk, const double *pred,
                                 size_t base, fm_error_t *err);

/* Scores the CSV file at path chunk by chunk (FM_MODEL_CHUNK_ROWS rows, columns as
 * fm_model_open_reader reads them), calling fn with each chunk: memory stays bounded whatever the
 * file's size. Returns 0, the first error of reading or predicting, or fn's return. */
int fm_model_predict_file(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                          size_t nextra, fm_model_chunk_fn fn, void *ctx, fm_error_t *err);

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
 * architecture or the booster's structure, preprocessing). Errors name the file. */
int fm_model_load(const char *path, fm_model_t **out, fm_error_t *err);
int fm_model_decode(const void *data, size_t len, const char *name, fm_model_t **out,
                    fm_error_t *err);

#endif
