/*
 * The Keras import: from an HDF5 file written by Keras 2.x `model.save("m.h5")` to a finmaas
 * model (import/keras.h).
 *
 * The work goes in this order, each step checking what the next relies on:
 * 1. the file's bytes are hashed (BLAKE2b-256 and SHA-256) for the description, which also proves
 *    the file readable;
 * 2. libhdf5 opens it; "model_config" is parsed into the chain of layers (keras_config.c);
 * 3. each Dense layer's datasets are found through the "layer_names" and "weight_names"
 *    attributes and read with their shapes checked against the configuration (keras_hdf5.c); a
 *    layer that holds weights but is not a Dense layer of the chain is refused, so no weight is
 *    silently ignored;
 * 4. the Dense layers become stages (weights, bias, the activation after them, which an
 *    Activation layer may set), the output stage is fitted to the task, and linear hidden stages
 *    are folded into their successors where the other hidden stages share a nonlinearity;
 * 5. the model is assembled: numeric input columns with the scaler's standardisation, the
 *    network, task, classes and a description of the source.
 */
#include "import/keras.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/json.h"
#include "import/keras_internal.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A Dense layer with the activation that follows it. */
typedef struct stage {
    const char *name;       /* the Dense layer (borrowed from the configuration) */
    const char *activation; /* the layer that set the activation: the Dense or an Activation */
    int in, out;
    fm_activation_t act;
    double *weight; /* owned, [in, out] */
    double *bias;   /* owned, [out]; zeros for a layer without bias */
} stage_t;

typedef struct import {
    const char *path;
    const fm_keras_options_t *opt;
    hid_t file;
    hid_t weights; /* the group holding layer groups: "model_weights", or the root */
    cJSON *config;
    fm_keras_chain_t chain;
    fm_keras_strings_t layer_names;
    char *keras_version; /* owned; NULL when the file does not say */
    char *backend;       /* owned; NULL when the file does not say */
    stage_t *stages;     /* owned; one per Dense layer, one more for a regression output */
    size_t nstages;
    int input_width;
    fm_task_t task;
    fm_activation_t hidden;
    char blake2b[FM_DIGEST_HEX];
    char sha256[2 * crypto_hash_sha256_BYTES + 1];
    long long bytes;
} import_t;

void fm_keras_options_defaults(fm_keras_options_t *options) {
    memset(options, 0, sizeof *options);
    options->task = -1;
}

static void stage_free(stage_t *s) {
    free(s->weight);
    free(s->bias);
    s->weight = s->bias = NULL;
}

static void import_deinit(import_t *im) {
    for (size_t i = 0; im->stages && i < im->nstages; i++)
        stage_free(&im->stages[i]);
    free(im->stages);
    fm_keras_strings_free(&im->layer_names);
    fm_keras_chain_free(&im->chain);
    cJSON_Delete(im->config);
    free(im->keras_version);
    free(im->backend);
    if (im->weights >= 0 && im->weights != im->file) H5Gclose(im->weights);
    if (im->file >= 0) H5Fclose(im->file);
}

/* ---- 1. The bytes -------------------------------------------------------------------------- */

static int hash_file(import_t *im, fm_error_t *err) {
    FILE *fp = fopen(im->path, "rb");
    if (!fp) return fm_error_set(err, FM_EIO, "cannot open: %s", strerror(errno));
    fm_digest_t blake;
    crypto_hash_sha256_state sha;
    fm_digest_init(&blake);
    crypto_hash_sha256_init(&sha);
    unsigned char buf[1 << 16];
    size_t n;
    im->bytes = 0;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
        fm_digest_update(&blake, buf, n);
        crypto_hash_sha256_update(&sha, buf, n);
        im->bytes += (long long)n;
    }
    int failed = ferror(fp);
    fclose(fp);
    if (failed) return fm_error_set(err, FM_EIO, "cannot read: %s", strerror(errno));
    unsigned char digest[crypto_hash_sha256_BYTES];
    fm_digest_final_hex(&blake, im->blake2b);
    crypto_hash_sha256_final(&sha, digest);
    sodium_bin2hex(im->sha256, sizeof im->sha256, digest, sizeof digest);
    return FM_OK;
}

/* ---- 2. The file and its configuration ----------------------------------------------------- */

static int open_file(import_t *im, fm_error_t *err) {
    char detail[256];
#if H5_VERSION_GE(1, 12, 0)
    htri_t is_hdf5 = H5Fis_accessible(im->path, H5P_DEFAULT);
#else
    htri_t is_hdf5 = H5Fis_hdf5(im->path);
#endif
    if (is_hdf5 == 0)
        return fm_error_set(err, FM_EFORMAT,
                            "not an HDF5 file (no HDF5 signature; Keras models must be saved as "
                            ".h5)");
    hid_t access = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
    /* Reading only: a file system without locks (NFS, some containers) must not stop it. */
    if (access >= 0) H5Pset_file_locking(access, 1, 1);
#endif
    im->file = H5Fopen(im->path, H5F_ACC_RDONLY, access >= 0 ? access : H5P_DEFAULT);
    if (access >= 0) H5Pclose(access);
    if (im->file < 0) {
        fm_keras_h5_last_error(detail, sizeof detail);
        return fm_error_set(err, FM_EFORMAT,
                            "cannot read the HDF5 file, it is damaged or truncated (%s)", detail);
    }
    return FM_OK;
}

/* An optional one-string attribute: NULL when absent or not a single string. */
static int optional_text(hid_t obj, const char *what, const char *name, char **out,
                         fm_error_t *err) {
    fm_keras_strings_t s;
    int rc = fm_keras_h5_strings(obj, what, name, &s, err);
    if (rc == FM_ENOTFOUND || (rc == FM_OK && s.count != 1)) {
        fm_keras_strings_free(&s);
        fm_error_clear(err);
        return FM_OK;
    }
    if (rc) return rc;
    *out = s.items[0];
    s.items[0] = NULL;
    fm_keras_strings_free(&s);
    return FM_OK;
}

static int read_config(import_t *im, fm_error_t *err) {
    fm_keras_strings_t text;
    int rc = fm_keras_h5_strings(im->file, "the file", "model_config", &text, err);
    if (rc == FM_ENOTFOUND)
        return fm_error_set(err, FM_EFORMAT,
                            "the file has no 'model_config' attribute: not a Keras model saved "
                            "with model.save() (a weights-only file has no architecture)");
    if (rc) return rc;
    if (text.count != 1) {
        fm_keras_strings_free(&text);
        return fm_error_set(err, FM_EFORMAT, "attribute 'model_config' is not one string");
    }
    rc = fm_json_parse(text.items[0], strlen(text.items[0]), "attribute 'model_config'",
                       &im->config, err);
    fm_keras_strings_free(&text);
    if (rc) {
        if (err) err->code = FM_EFORMAT;
        return FM_EFORMAT;
    }
    rc = optional_text(im->file, "the file", "keras_version", &im->keras_version, err);
    if (!rc) rc = optional_text(im->file, "the file", "backend", &im->backend, err);
    if (!rc) rc = fm_keras_chain_from_config(im->config, &im->chain, err);
    return rc;
}

/* ---- 3. The weights ------------------------------------------------------------------------ */

static int open_weights(import_t *im, fm_error_t *err) {
    htri_t has = H5Lexists(im->file, "model_weights", H5P_DEFAULT);
    if (has > 0) {
        im->weights = H5Gopen2(im->file, "model_weights", H5P_DEFAULT);
        if (im->weights < 0)
            return fm_error_set(err, FM_EFORMAT, "'model_weights' is not a readable group");
    } else {
        im->weights = im->file; /* files written by early Keras 2 keep layer groups at the root */
    }
    const char *what = im->weights == im->file ? "the file" : "group 'model_weights'";
    int rc = fm_keras_h5_strings(im->weights, what, "layer_names", &im->layer_names, err);
    if (rc == FM_ENOTFOUND)
        return fm_error_set(err, FM_EFORMAT, "%s has no 'layer_names' attribute",
                            im->weights == im->file ? "the file has no 'model_weights' group and"
                                                    : "group 'model_weights'");
    if (!rc && !im->keras_version)
        rc = optional_text(im->weights, what, "keras_version", &im->keras_version, err);
    if (!rc && !im->backend) rc = optional_text(im->weights, what, "backend", &im->backend, err);
    return rc;
}

static int listed(const fm_keras_strings_t *names, const char *name) {
    for (size_t i = 0; i < names->count; i++)
        if (strcmp(names->items[i], name) == 0) return 1;
    return 0;
}

/* The weight_names of layer group name (which must exist). */
static int weight_names(import_t *im, const char *name, hid_t *group, fm_keras_strings_t *out,
                        fm_error_t *err) {
    char what[160];
    snprintf(what, sizeof what, "layer group '%.100s'", name);
    memset(out, 0, sizeof *out);
    htri_t has = H5Lexists(im->weights, name, H5P_DEFAULT);
    *group = has > 0 ? H5Gopen2(im->weights, name, H5P_DEFAULT) : -1;
    if (*group < 0)
        return fm_error_set(err, FM_EFORMAT,
                            "layer '%.100s' is in 'layer_names' but its weight group is missing",
                            name);
    int rc = fm_keras_h5_strings(*group, what, "weight_names", out, err);
    if (rc == FM_ENOTFOUND) {
        if (err) err->code = FM_EFORMAT;
        rc = FM_EFORMAT;
    }
    if (rc) {
        H5Gclose(*group);
        *group = -1;
    }
    return rc;
}

/* Reads the kernel and bias of Dense layer l into s; in is the incoming width (0: unknown). */
static int read_dense(import_t *im, const fm_keras_layer_t *l, int in, stage_t *s,
                      fm_error_t *err) {
    if (!listed(&im->layer_names, l->name))
        return fm_error_set(err, FM_EFORMAT,
                            "layer '%s' (Dense) has no weights in the file (it is not in "
                            "'layer_names')",
                            l->name);
    hid_t group;
    fm_keras_strings_t names;
    int rc = weight_names(im, l->name, &group, &names, err);
    if (rc) return rc;
    size_t want = l->use_bias ? 2 : 1;
    if (names.count != want)
        rc = fm_error_set(err, FM_EFORMAT,
                          "'weight_names' lists %zu weights, expected %zu (kernel%s; use_bias "
                          "is %s)",
                          names.count, want, l->use_bias ? " and bias" : "",
                          l->use_bias ? "true" : "false");
    size_t kshape[2] = {(size_t)in, (size_t)l->units}, bshape[1] = {(size_t)l->units};
    if (!rc) rc = fm_keras_h5_tensor(group, names.items[0], 2, kshape, &s->weight, err);
    if (!rc && l->use_bias)
        rc = fm_keras_h5_tensor(group, names.items[1], 1, bshape, &s->bias, err);
    if (!rc && !l->use_bias && !(s->bias = calloc((size_t)l->units, sizeof *s->bias)))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (rc && rc != FM_ENOMEM) fm_error_prefix(err, "layer '%s' (Dense): ", l->name);
    s->name = s->activation = l->name;
    s->in = (int)kshape[0];
    s->out = l->units;
    s->act = l->activation;
    fm_keras_strings_free(&names);
    H5Gclose(group);
    return rc;
}

/* A layer of the file that holds weights must be a Dense layer of the chain. */
static int check_unused_weights(import_t *im, fm_error_t *err) {
    for (size_t i = 0; i < im->layer_names.count; i++) {
        const char *name = im->layer_names.items[i];
        const fm_keras_layer_t *layer = NULL;
        for (size_t k = 0; k < im->chain.count && !layer; k++)
            if (strcmp(im->chain.layers[k].name, name) == 0) layer = &im->chain.layers[k];
        if (layer && layer->kind == FM_KERAS_DENSE) continue;
        hid_t group;
        fm_keras_strings_t names;
        int rc = weight_names(im, name, &group, &names, err);
        if (rc) return rc;
        size_t count = names.count;
        fm_keras_strings_free(&names);
        H5Gclose(group);
        if (count > 0)
            return fm_error_set(err, FM_EUNSUPPORTED,
                                "layer '%.100s' holds %zu weights but is %s%s%s", name, count,
                                layer ? "a " : "not a layer of the model's configuration",
                                layer ? layer->class_name : "", layer ? " layer" : "");
    }
    return FM_OK;
}

/* Sets the activation after the last stage from Activation layer l. */
static int apply_activation(import_t *im, const fm_keras_layer_t *l, fm_error_t *err) {
    if (im->nstages == 0) {
        if (l->activation == FM_ACT_IDENTITY) return FM_OK;
        return fm_error_set(err, FM_EUNSUPPORTED,
                            "layer '%s' (Activation %s) before any Dense layer is not supported",
                            l->name, fm_keras_activation_name(l->activation));
    }
    stage_t *s = &im->stages[im->nstages - 1];
    if (l->activation == FM_ACT_IDENTITY) return FM_OK;
    if (s->act == FM_ACT_IDENTITY) {
        s->act = l->activation;
        s->activation = l->name;
        return FM_OK;
    }
    if (s->act == FM_ACT_RELU && l->activation == FM_ACT_RELU) return FM_OK; /* idempotent */
    return fm_error_set(err, FM_EUNSUPPORTED,
                        "layer '%s' (Activation %s) follows the %s of layer '%s': two "
                        "activations in a row are not supported",
                        l->name, fm_keras_activation_name(l->activation),
                        fm_keras_activation_name(s->act), s->activation);
}

static int read_stages(import_t *im, fm_error_t *err) {
    if (!(im->stages = calloc(im->chain.count + 1, sizeof *im->stages)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    int width = 0; /* the width flowing out of the layers so far; 0 until known */
    size_t nparams = 0;
    int rc = FM_OK;
    for (size_t i = 0; i < im->chain.count && !rc; i++) {
        const fm_keras_layer_t *l = &im->chain.layers[i];
        if (l->input_width && width && l->input_width != width)
            return fm_error_set(err, FM_EFORMAT,
                                "layer '%s' (%s) declares %d inputs but receives %d", l->name,
                                l->class_name, l->input_width, width);
        if (l->input_width) width = l->input_width;
        if (i == 0) im->input_width = width;
        switch (l->kind) {
        case FM_KERAS_INPUT:
        case FM_KERAS_DROPOUT:
            break;
        case FM_KERAS_ACTIVATION:
            rc = apply_activation(im, l, err);
            break;
        case FM_KERAS_DENSE: {
            stage_t *s = &im->stages[im->nstages++];
            rc = read_dense(im, l, width, s, err);
            if (rc) break;
            if (im->nstages == 1) im->input_width = s->in;
            width = s->out;
            nparams += (size_t)s->in * (size_t)s->out + (size_t)s->out;
            if (nparams > FM_KERAS_MAX_PARAMETERS)
                rc = fm_error_set(err, FM_ELIMIT, "the model has more than %zu parameters",
                                  FM_KERAS_MAX_PARAMETERS);
            break;
        }
        }
    }
    if (!rc && im->nstages == 0)
        rc = fm_error_set(err, FM_EUNSUPPORTED, "the model has no Dense layer");
    if (!rc) rc = check_unused_weights(im, err);
    return rc;
}

/* ---- 4. Stages to a finmaas network -------------------------------------------------------- */

/* Replaces the output stage [in, 2] (softmax or logits) by [in, 1] of its logit difference:
 * softmax(z0, z1)[1] = sigmoid(z1 - z0). */
static void two_to_one(stage_t *s) {
    for (int i = 0; i < s->in; i++)
        s->weight[i] = s->weight[2 * i + 1] - s->weight[2 * i];
    s->bias[0] = s->bias[1] - s->bias[0];
    s->out = 1;
}

/* Replaces the output stage [in, 1] by [in, 2] with a zero first column: softmax(0, z) is
 * (1 - sigmoid(z), sigmoid(z)). */
static int one_to_two(stage_t *s, fm_error_t *err) {
    double *w = calloc((size_t)s->in * 2, sizeof *w), *b = calloc(2, sizeof *b);
    if (!w || !b) {
        free(w);
        free(b);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < s->in; i++)
        w[2 * i + 1] = s->weight[i];
    b[1] = s->bias[0];
    free(s->weight);
    free(s->bias);
    s->weight = w;
    s->bias = b;
    s->out = 2;
    return FM_OK;
}

/* Appends a 1 -> 1 identity stage so that a regression output whose activation is not linear
 * becomes a hidden layer (multiplying by 1 and adding 0 changes no value). */
static int append_identity(import_t *im, fm_error_t *err) {
    stage_t *s = &im->stages[im->nstages];
    s->weight = malloc(sizeof *s->weight);
    s->bias = calloc(1, sizeof *s->bias);
    if (!s->weight || !s->bias) {
        stage_free(s);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    s->weight[0] = 1.0;
    s->in = s->out = 1;
    s->act = FM_ACT_IDENTITY;
    s->name = s->activation = im->stages[im->nstages - 1].name;
    im->nstages++;
    return FM_OK;
}

static const char *task_text(int task) {
    return task < 0 ? "the last layer" : fm_task_name((fm_task_t)task);
}

/* Chooses the task and fits the output stage to it (finmaas: sigmoid over 1 unit, softmax over
 * k >= 2, or linear over 1). */
static int fit_output(import_t *im, fm_error_t *err) {
    stage_t *s = &im->stages[im->nstages - 1];
    int k = s->out, task = im->opt->task;
    fm_activation_t a = s->act;
    if (a == FM_ACT_SOFTMAX && k == 1)
        return fm_error_set(err, FM_EUNSUPPORTED,
                            "layer '%s': softmax over 1 unit always gives 1; not a usable output",
                            s->activation);
    if (a == FM_ACT_SIGMOID && k > 1)
        return fm_error_set(err, FM_EUNSUPPORTED,
                            "layer '%s': sigmoid over %d units (multi-label output) is not "
                            "supported",
                            s->activation, k);
    if (task < 0) {
        if (a == FM_ACT_SIGMOID)
            task = FM_TASK_BINARY;
        else if (a == FM_ACT_SOFTMAX)
            task = FM_TASK_MULTICLASS;
        else if (k == 1)
            task = FM_TASK_REGRESSION;
        else
            return fm_error_set(err, FM_EUNSUPPORTED,
                                "layer '%s': %d outputs with activation %s (multi-output "
                                "regression) are not supported; for class logits give --task "
                                "multiclass",
                                s->activation, k, fm_keras_activation_name(a));
    }
    int ok = 0, rc = FM_OK;
    switch ((fm_task_t)task) {
    case FM_TASK_BINARY:
        if ((a == FM_ACT_SIGMOID || a == FM_ACT_IDENTITY) && k == 1) {
            ok = 1;
        } else if ((a == FM_ACT_SOFTMAX || a == FM_ACT_IDENTITY) && k == 2) {
            two_to_one(s);
            ok = 1;
        }
        s->act = FM_ACT_SIGMOID;
        break;
    case FM_TASK_MULTICLASS:
        if ((a == FM_ACT_SOFTMAX || a == FM_ACT_IDENTITY) && k >= 2) {
            ok = 1;
        } else if ((a == FM_ACT_SIGMOID || a == FM_ACT_IDENTITY) && k == 1) {
            rc = one_to_two(s, err);
            ok = 1;
        }
        s->act = FM_ACT_SOFTMAX;
        break;
    case FM_TASK_REGRESSION:
        ok = k == 1 && a != FM_ACT_SOFTMAX;
        if (ok && a != FM_ACT_IDENTITY) rc = append_identity(im, err);
        break;
    }
    if (!ok)
        return fm_error_set(err, FM_EINVAL,
                            "the task %s does not fit the last layer '%s' (%s over %d units)",
                            task_text(task), s->activation, fm_keras_activation_name(a), k);
    im->task = (fm_task_t)task;
    return rc;
}

/* Folds stage i (linear) into stage i + 1: W = Wi Wn, b = bi Wn + bn. */
static int fold(import_t *im, size_t i, fm_error_t *err) {
    stage_t *a = &im->stages[i], *b = &im->stages[i + 1];
    double *w = malloc((size_t)a->in * (size_t)b->out * sizeof *w);
    double *bias = malloc((size_t)b->out * sizeof *bias);
    if (!w || !bias) {
        free(w);
        free(bias);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    fm_dense_forward(w, a->weight, b->weight, NULL, a->in, a->out, b->out);
    fm_dense_forward(bias, a->bias, b->weight, b->bias, 1, a->out, b->out);
    free(b->weight);
    free(b->bias);
    b->weight = w;
    b->bias = bias;
    b->in = a->in;
    stage_free(a);
    memmove(a, b, (im->nstages - i - 1) * sizeof *a);
    im->nstages--;
    return FM_OK;
}

/* Makes every hidden stage share one activation, folding linear ones where needed. */
static int unify_hidden(import_t *im, fm_error_t *err) {
    const stage_t *first = NULL;
    for (size_t i = 0; i + 1 < im->nstages; i++) {
        const stage_t *s = &im->stages[i];
        if (s->act == FM_ACT_SOFTMAX)
            return fm_error_set(err, FM_EUNSUPPORTED,
                                "layer '%s': softmax on a hidden layer is not supported",
                                s->activation);
        if (s->act == FM_ACT_IDENTITY) continue;
        if (!first) {
            first = s;
        } else if (s->act != first->act) {
            return fm_error_set(err, FM_EUNSUPPORTED,
                                "layer '%s' uses %s after hidden layer '%s' used %s: finmaas "
                                "applies one activation to every hidden layer",
                                s->activation, fm_keras_activation_name(s->act), first->activation,
                                fm_keras_activation_name(first->act));
        }
    }
    im->hidden = first ? first->act : FM_ACT_IDENTITY;
    for (size_t i = 0; first && i + 1 < im->nstages;) {
        if (im->stages[i].act != FM_ACT_IDENTITY) {
            i++;
            continue;
        }
        int rc = fold(im, i, err);
        if (rc) return rc;
    }
    if (im->nstages > FM_NET_MAX_LAYERS)
        return fm_error_set(err, FM_EUNSUPPORTED,
                            "the model has %zu Dense layers; finmaas networks have at most %d",
                            im->nstages, FM_NET_MAX_LAYERS);
    return FM_OK;
}

/* ---- 5. The model -------------------------------------------------------------------------- */

static int check_options(const fm_keras_options_t *o, fm_error_t *err) {
    if (!o->scaler_mean != !o->scaler_scale)
        return fm_error_set(err, FM_EINVAL, "the scaler needs both means and scales");
    for (size_t i = 0; o->scaler_mean && i < o->nscaler_mean; i++)
        if (!isfinite(o->scaler_mean[i]))
            return fm_error_set(err, FM_EINVAL, "scaler mean %zu is not a finite number", i + 1);
    for (size_t i = 0; o->scaler_scale && i < o->nscaler_scale; i++)
        if (!(isfinite(o->scaler_scale[i]) && o->scaler_scale[i] > 0))
            return fm_error_set(err, FM_EINVAL, "scaler scale %zu (%g) must be positive", i + 1,
                                o->scaler_scale[i]);
    if (o->task > FM_TASK_REGRESSION || o->task < -1)
        return fm_error_set(err, FM_EINVAL, "unknown task %d", o->task);
    return FM_OK;
}

static int check_widths(const import_t *im, fm_error_t *err) {
    const fm_keras_options_t *o = im->opt;
    size_t n = (size_t)im->input_width;
    if (o->feature_names && o->nfeature_names != n)
        return fm_error_set(err, FM_EINVAL, "%zu feature names given, the model takes %zu inputs",
                            o->nfeature_names, n);
    for (size_t i = 0; o->feature_names && i < n; i++) {
        if (!o->feature_names[i][0])
            return fm_error_set(err, FM_EINVAL, "feature name %zu is empty", i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(o->feature_names[i], o->feature_names[j]) == 0)
                return fm_error_set(err, FM_EINVAL, "feature name '%.64s' is given twice",
                                    o->feature_names[i]);
    }
    if (o->scaler_mean && o->nscaler_mean != n)
        return fm_error_set(err, FM_EINVAL, "%zu scaler means given, the model takes %zu inputs",
                            o->nscaler_mean, n);
    if (o->scaler_scale && o->nscaler_scale != n)
        return fm_error_set(err, FM_EINVAL, "%zu scaler scales given, the model takes %zu inputs",
                            o->nscaler_scale, n);
    return FM_OK;
}

/* Numeric columns, one per input, standardised by the scaler (missing: the mean). */
static int build_prep(const import_t *im, fm_model_t *m, fm_error_t *err) {
    const fm_keras_options_t *o = im->opt;
    cJSON *root = cJSON_CreateObject();
    cJSON *columns = root ? cJSON_AddArrayToObject(root, "columns") : NULL;
    int ok = columns && cJSON_AddNumberToObject(root, "nfeatures", im->input_width);
    for (int i = 0; ok && i < im->input_width; i++) {
        char name[32];
        snprintf(name, sizeof name, "x%d", i);
        double mean = o->scaler_mean ? o->scaler_mean[i] : 0.0;
        double std = o->scaler_scale ? o->scaler_scale[i] : 1.0;
        cJSON *c = cJSON_CreateObject();
        ok = c && cJSON_AddItemToArray(columns, c);
        if (!ok) {
            cJSON_Delete(c);
            break;
        }
        ok = cJSON_AddStringToObject(c, "name", o->feature_names ? o->feature_names[i] : name) &&
             cJSON_AddStringToObject(c, "type", "numeric") &&
             cJSON_AddNumberToObject(c, "median", mean) &&
             cJSON_AddNumberToObject(c, "mean", mean) && cJSON_AddNumberToObject(c, "std", std) &&
             cJSON_AddFalseToObject(c, "missing_indicator") &&
             cJSON_AddNumberToObject(c, "offset", i) && cJSON_AddNumberToObject(c, "width", 1);
    }
    int rc =
        ok ? fm_prep_from_json(root, &m->prep, err) : fm_error_set(err, FM_ENOMEM, "out of memory");
    cJSON_Delete(root);
    if (rc) return fm_error_prefix(err, "input columns: ");
    if (o->npii) rc = fm_prep_mark_pii(m->prep, o->pii, o->npii, err);
    return rc;
}

static int build_classes(const import_t *im, fm_model_t *m, fm_error_t *err) {
    const fm_keras_options_t *o = im->opt;
    if (im->task == FM_TASK_REGRESSION) {
        if (o->classes)
            return fm_error_set(err, FM_EINVAL, "class labels do not apply to a regression model");
        return FM_OK;
    }
    size_t k = im->task == FM_TASK_BINARY ? 2 : (size_t)im->stages[im->nstages - 1].out;
    if (o->classes && o->nclasses != k)
        return fm_error_set(err, FM_EINVAL, "%zu class labels given, the %s model has %zu classes",
                            o->nclasses, fm_task_name(im->task), k);
    if (!(m->classes = calloc(k, sizeof *m->classes)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    m->nclasses = k;
    for (size_t c = 0; c < k; c++) {
        char label[32];
        snprintf(label, sizeof label, "%zu", c);
        if (!(m->classes[c] = strdup(o->classes ? o->classes[c] : label)))
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t d = 0; d < c; d++)
            if (strcmp(m->classes[d], m->classes[c]) == 0)
                return fm_error_set(err, FM_EINVAL, "class label '%.64s' is given twice",
                                    m->classes[c]);
    }
    return FM_OK;
}

static int build_net(const import_t *im, fm_model_t *m, fm_error_t *err) {
    int sizes[FM_NET_MAX_LAYERS + 1];
    sizes[0] = im->stages[0].in;
    for (size_t i = 0; i < im->nstages; i++)
        sizes[i + 1] = im->stages[i].out;
    fm_activation_t output = im->stages[im->nstages - 1].act;
    int rc = fm_net_new(sizes, (int)im->nstages + 1, im->hidden, output, &m->net, err);
    for (size_t i = 0; !rc && i < im->nstages; i++) {
        const stage_t *s = &im->stages[i];
        memcpy(m->net->params + m->net->weight_offset[i], s->weight,
               (size_t)s->in * (size_t)s->out * sizeof *s->weight);
        memcpy(m->net->params + m->net->bias_offset[i], s->bias, (size_t)s->out * sizeof *s->bias);
    }
    static const fm_loss_t loss[] = {
        [FM_TASK_BINARY] = FM_LOSS_BINARY,
        [FM_TASK_MULTICLASS] = FM_LOSS_CATEGORICAL,
        [FM_TASK_REGRESSION] = FM_LOSS_MSE,
    };
    m->task = im->task;
    m->loss = loss[im->task];
    m->target_mean = 0.0;
    m->target_std = 1.0;
    return rc;
}

static const char *family_of(const import_t *im) {
    if (im->nstages > 1) return "mlp";
    return im->task == FM_TASK_BINARY       ? "logistic"
           : im->task == FM_TASK_MULTICLASS ? "softmax"
                                            : "linear";
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The description of the source: file, digests, Keras version, the layers as the file has them
 * and what became of them. */
static cJSON *source_json(const import_t *im) {
    const fm_keras_options_t *o = im->opt;
    cJSON *s = cJSON_CreateObject();
    cJSON *layers = s ? cJSON_CreateArray() : NULL;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(im->config, "config");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(cfg, "name");
    int ok =
        layers && cJSON_AddStringToObject(s, "format", "keras-hdf5") &&
        cJSON_AddStringToObject(s, "file", o->source_name ? o->source_name : base_name(im->path)) &&
        cJSON_AddNumberToObject(s, "bytes", (double)im->bytes) &&
        cJSON_AddStringToObject(s, "blake2b", im->blake2b) &&
        cJSON_AddStringToObject(s, "sha256", im->sha256) &&
        (!im->keras_version || cJSON_AddStringToObject(s, "keras_version", im->keras_version)) &&
        (!im->backend || cJSON_AddStringToObject(s, "backend", im->backend)) &&
        cJSON_AddStringToObject(s, "model_class", im->chain.model_class) &&
        (!cJSON_IsString(name) || cJSON_AddStringToObject(s, "model_name", name->valuestring));
    for (size_t i = 0; ok && i < im->chain.count; i++) {
        const fm_keras_layer_t *l = &im->chain.layers[i];
        cJSON *j = cJSON_CreateObject();
        ok = j && cJSON_AddItemToArray(layers, j);
        if (!ok) {
            cJSON_Delete(j);
            break;
        }
        ok = cJSON_AddStringToObject(j, "name", l->name) &&
             cJSON_AddStringToObject(j, "class", l->class_name);
        if (ok && l->kind == FM_KERAS_DENSE)
            ok = cJSON_AddNumberToObject(j, "units", l->units) &&
                 cJSON_AddBoolToObject(j, "use_bias", l->use_bias);
        if (ok && (l->kind == FM_KERAS_DENSE || l->kind == FM_KERAS_ACTIVATION))
            ok = cJSON_AddStringToObject(j, "activation",
                                         fm_keras_activation_name(l->activation)) != NULL;
        if (ok && l->kind == FM_KERAS_INPUT && l->input_width)
            ok = cJSON_AddNumberToObject(j, "inputs", l->input_width) != NULL;
    }
    if (ok && cJSON_AddItemToObject(s, "layers", layers))
        layers = NULL;
    else
        ok = 0;
    ok = ok && cJSON_AddStringToObject(s, "scaler", o->scaler_mean ? "standard" : "none") &&
         cJSON_AddStringToObject(s, "task_from", o->task < 0 ? "last layer" : "option");
    if (!ok) {
        cJSON_Delete(layers);
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

static int build_model(import_t *im, fm_model_t **out, fm_error_t *err) {
    const fm_keras_options_t *o = im->opt;
    fm_model_t *m = fm_model_new();
    if (!m) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = build_prep(im, m, err);
    if (!rc) rc = build_classes(im, m, err);
    if (!rc) rc = build_net(im, m, err);
    if (!rc && (!(m->family = strdup(family_of(im))) ||
                !(m->target = strdup(o->target && *o->target ? o->target : "target"))))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) {
        char created[32];
        fm_clock_utc_iso8601(created, sizeof created);
        cJSON *source = source_json(im);
        if (!source || !cJSON_AddStringToObject(m->info, "created", created) ||
            !cJSON_AddItemToObject(m->info, "source", source)) {
            cJSON_Delete(source);
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        }
    }
    if (!rc) rc = fm_model_ready(m, err);
    if (rc) {
        fm_model_free(m);
        return rc;
    }
    *out = m;
    return FM_OK;
}

int fm_keras_import(const char *path, const fm_keras_options_t *options, fm_model_t **out,
                    fm_error_t *err) {
    *out = NULL;
    fm_keras_options_t defaults;
    if (!options) {
        fm_keras_options_defaults(&defaults);
        options = &defaults;
    }
    import_t im;
    memset(&im, 0, sizeof im);
    im.path = path;
    im.opt = options;
    im.file = im.weights = -1;
    int rc = check_options(options, err);
    if (rc) return fm_error_prefix(err, "%s: ", path);
    if (fm_digest_library_init() != FM_OK)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    /* libhdf5 prints its error stack on stderr by default; the messages go into err instead. */
    H5E_auto2_t print = NULL;
    void *print_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &print, &print_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    rc = hash_file(&im, err);
    if (!rc) rc = open_file(&im, err);
    if (!rc) rc = read_config(&im, err);
    if (!rc) rc = open_weights(&im, err);
    if (!rc) rc = read_stages(&im, err);
    if (!rc) rc = check_widths(&im, err);
    if (!rc) rc = fit_output(&im, err);
    if (!rc) rc = unify_hidden(&im, err);
    if (!rc) rc = build_model(&im, out, err);
    import_deinit(&im);
    H5Eset_auto2(H5E_DEFAULT, print, print_data);
    if (rc && rc != FM_ENOMEM) fm_error_prefix(err, "%s: ", path);
    return rc;
}
