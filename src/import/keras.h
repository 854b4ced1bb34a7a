/*
 * Keras import: turns a Keras 2.x model saved as HDF5 (`model.save("m.h5")`) into a finmaas model
 * that predicts the same values and serves through every endpoint.
 *
 * What is read, through the libhdf5 C API only: the root attribute "model_config" (the model's
 * JSON configuration), the group "model_weights" with its attribute "layer_names" and, per layer,
 * the attribute "weight_names" that names the layer's datasets (relative to the layer's group).
 * Every name comes from the file itself; nothing is looked up under a fixed weight name.
 *
 * Supported: a Sequential model, or a Functional one whose layers form a plain chain from one
 * input to one output, made of InputLayer (a flat [batch, n] input), Dense (activation linear,
 * relu, sigmoid, tanh or softmax; with or without bias; float32 or float64 weights), Activation
 * (one of those five, after a Dense layer) and Dropout (a no-op at inference). A finmaas network
 * applies one activation to every hidden layer: hidden Dense layers must agree on it, except that
 * a linear hidden layer is folded into the next one (W = W1 W2, b = b1 W2 + b2). Anything else is
 * FM_EUNSUPPORTED with a message naming the layer and what is unsupported; a file that is not an
 * HDF5 file, is damaged, lacks an attribute or holds weights of the wrong shape is FM_EFORMAT.
 *
 * The model's input columns are numeric, one per input unit, standardised with the scaler the
 * Keras model was trained behind ((x - mean) / scale, as scikit-learn's StandardScaler) or passed
 * through unchanged. A missing value is replaced by the column's mean (0 after scaling). The task
 * follows the last layer unless given: sigmoid with 1 unit is binary, softmax multiclass, any
 * other activation with 1 unit regression. The description records the source (file name,
 * BLAKE2b-256 and SHA-256 of its bytes, size, keras_version, backend, model class and layers).
 *
 * Thread-safety: the serial libhdf5 is not thread-safe, and fm_keras_import silences its error
 * printing for the duration of the call; call it from one thread at a time.
 */
#ifndef FM_IMPORT_KERAS_H
#define FM_IMPORT_KERAS_H

#include "core/error.h"
#include "model/model.h"

#include <stddef.h>

/* The most parameters an imported network may have (512 MiB of doubles). */
#define FM_KERAS_MAX_PARAMETERS ((size_t)1 << 26)
/* The widest layer an imported network may have. */
#define FM_KERAS_MAX_WIDTH (1 << 20)

/* How to turn a Keras model into a finmaas model. Plain data; every pointer is borrowed. */
typedef struct fm_keras_options {
    const char *const *feature_names; /* nfeature_names input column names; NULL: x0..x{n-1} */
    size_t nfeature_names;
    const double *scaler_mean; /* nscaler_mean means; NULL with scaler_scale NULL: identity */
    size_t nscaler_mean;
    const double *scaler_scale; /* nscaler_scale positive scales */
    size_t nscaler_scale;
    int task;                   /* an fm_task_t, or -1: from the last layer */
    const char *const *classes; /* nclasses labels; NULL: "0", "1", ... */
    size_t nclasses;
    const char *target;     /* the predicted column's name; NULL: "target" */
    const char *const *pii; /* npii input columns that hold personal data */
    size_t npii;
    const char *source_name; /* the file name recorded in the description; NULL: path's base name */
} fm_keras_options_t;

/* Options with every field at its default (no names, identity scaling, task from the model). */
void fm_keras_options_defaults(fm_keras_options_t *options);

/*
 * Reads the Keras HDF5 file at path and builds an equivalent model, ready to predict
 * (fm_model_ready done). *out is owned by the caller (fm_model_free); it is NULL on failure.
 * Errors name the file and, where it applies, the layer, attribute or dataset:
 *   FM_EIO          the file cannot be read
 *   FM_EFORMAT      not an HDF5 file, damaged or truncated, not a Keras model, a missing
 *                   attribute or dataset, weights of the wrong shape or type, non-finite weights
 *   FM_EUNSUPPORTED a layer class, activation, input shape or graph finmaas cannot represent
 *   FM_EINVAL       options that do not fit the model (counts of names, scaler values or classes,
 *                   a task the output layer cannot give, an unknown --pii column)
 *   FM_ELIMIT       more than FM_KERAS_MAX_PARAMETERS parameters or FM_KERAS_MAX_WIDTH units
 */
int fm_keras_import(const char *path, const fm_keras_options_t *options, fm_model_t **out,
                    fm_error_t *err);

#endif
