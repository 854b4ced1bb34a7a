/*
 * Internals of the Keras import shared by its files: the layer chain read from a model's JSON
 * configuration (keras_config.c) and the HDF5 reads of text attributes and weight datasets
 * (keras_hdf5.c). keras.c joins them into a finmaas model. Messages name the layer, attribute or
 * dataset but not the file; fm_keras_import puts the file name in front.
 */
#ifndef FM_IMPORT_KERAS_INTERNAL_H
#define FM_IMPORT_KERAS_INTERNAL_H

#include "core/error.h"
#include "nn/nn.h"

#include <cJSON.h>
#include <hdf5.h>
#include <stddef.h>

/* ---- The layer chain (keras_config.c) ---------------------------------------------------- */

typedef enum {
    FM_KERAS_INPUT = 0,
    FM_KERAS_DENSE = 1,
    FM_KERAS_ACTIVATION = 2,
    FM_KERAS_DROPOUT = 3,
} fm_keras_kind_t;

typedef struct fm_keras_layer {
    fm_keras_kind_t kind;
    const char *name;       /* borrowed from the configuration */
    const char *class_name; /* borrowed from the configuration */
    int units;              /* Dense: output width */
    int use_bias;           /* Dense */
    int input_width;        /* the declared [batch, n] input shape's n; 0 when none is declared */
    fm_activation_t activation; /* Dense, Activation */
} fm_keras_layer_t;

typedef struct fm_keras_chain {
    const char *model_class; /* "Sequential", "Functional" or "Model"; borrowed */
    size_t count;
    fm_keras_layer_t *layers; /* owned; from input to output */
} fm_keras_chain_t;

/*
 * Reads the layers of a parsed "model_config" in the order data flows through them. A Sequential
 * model's layer list is that order; a Functional one is walked from its output back to its
 * input, and must be a plain chain covering every layer. Names stay borrowed from config, which
 * must outlive the chain. On failure the chain is empty. FM_EFORMAT for a configuration that is
 * not what Keras writes, FM_EUNSUPPORTED for what finmaas cannot represent.
 */
int fm_keras_chain_from_config(const cJSON *config, fm_keras_chain_t *out, fm_error_t *err);
void fm_keras_chain_free(fm_keras_chain_t *chain);

/* The activation a Keras name stands for: linear, relu, sigmoid, tanh, softmax. FM_EUNSUPPORTED
 * otherwise (no message). */
int fm_keras_activation_parse(const char *name, fm_activation_t *out);
/* The Keras name of an activation ("linear" for identity). */
const char *fm_keras_activation_name(fm_activation_t act);

/* ---- HDF5 reads (keras_hdf5.c) ----------------------------------------------------------- */

/* The largest text attribute read (model_config of a very wide model is well below). */
#define FM_KERAS_MAX_ATTRIBUTE_BYTES ((size_t)64 << 20)

/* A list of strings read from an attribute. Plain struct; free with fm_keras_strings_free. */
typedef struct fm_keras_strings {
    size_t count;
    char **items; /* owned, count NUL-terminated strings */
} fm_keras_strings_t;

/*
 * Reads the text attribute name of the object obj (what names obj in messages: "the file",
 * "group 'model_weights/dense'") into out: a scalar gives one string, a 1-D array one per item.
 * Fixed-length and variable-length strings are both read (h5py writes the one or the other
 * depending on its version); an empty array of any type is an empty list, as h5py writes an empty
 * weight list as a float array. FM_ENOTFOUND (with a message) when the attribute is absent,
 * FM_EFORMAT when it is not text or is larger than FM_KERAS_MAX_ATTRIBUTE_BYTES.
 */
int fm_keras_h5_strings(hid_t obj, const char *what, const char *name, fm_keras_strings_t *out,
                        fm_error_t *err);
void fm_keras_strings_free(fm_keras_strings_t *s);

/*
 * Reads the floating-point dataset at path (relative to group) as doubles. Its rank must be rank
 * and its dimensions want[0..rank) (a dimension of 0 in want: any, then written back). *out is
 * owned by the caller (free). FM_EFORMAT when missing, not float32/float64, of another shape, or
 * holding a value that is not finite; FM_ELIMIT above FM_KERAS_MAX_PARAMETERS values.
 */
int fm_keras_h5_tensor(hid_t group, const char *path, int rank, size_t *want, double **out,
                       fm_error_t *err);

/*
 * The most specific message on libhdf5's current error stack ("truncated file: eof = ...") copied
 * into buf, or "" when the stack is empty.
 */
void fm_keras_h5_last_error(char *buf, size_t size);

#endif
