/*
 * The configuration side of the Keras import: reads the JSON of a model's "model_config"
 * attribute into the chain of layers data flows through.
 *
 * Shapes of the JSON that are read, as Keras writes them:
 * - {"class_name": "Sequential", "config": {"name": ..., "layers": [layer, ...]}}, and the
 *   older {"class_name": "Sequential", "config": [layer, ...]};
 * - {"class_name": "Functional" (or "Model" before Keras 2.4), "config": {"layers": [...],
 *   "input_layers": [["in", 0, 0]], "output_layers": [["out", 0, 0]]}}, each layer with
 *   "inbound_nodes": [[["previous", 0, 0, {}]]] (Keras 2) or [{"args": [{"class_name":
 *   "__keras_tensor__", "config": {"keras_history": ["previous", 0, 0]}}], "kwargs": {}}]
 *   (Keras 3, which also writes a single input or output as ["in", 0, 0]);
 * - a layer is {"class_name": ..., "config": {"name": ..., ...}} (a Functional layer also has
 *   "name" beside "config").
 * A Functional graph is walked from its output back to its input, so the order of its layer
 * list does not matter; a branch, a merge, a shared layer or a layer off the path is refused.
 */
#include "import/keras.h"
#include "import/keras_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    fm_activation_t act;
} activations[] = {
    {"linear", FM_ACT_IDENTITY}, {"relu", FM_ACT_RELU},       {"sigmoid", FM_ACT_SIGMOID},
    {"tanh", FM_ACT_TANH},       {"softmax", FM_ACT_SOFTMAX},
};

int fm_keras_activation_parse(const char *name, fm_activation_t *out) {
    for (size_t i = 0; name && i < sizeof activations / sizeof activations[0]; i++) {
        if (strcmp(name, activations[i].name) == 0) {
            *out = activations[i].act;
            return FM_OK;
        }
    }
    return FM_EUNSUPPORTED;
}

const char *fm_keras_activation_name(fm_activation_t act) {
    for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++)
        if (activations[i].act == act) return activations[i].name;
    return "unknown";
}

void fm_keras_chain_free(fm_keras_chain_t *chain) {
    if (!chain) return;
    free(chain->layers);
    chain->layers = NULL;
    chain->count = 0;
}

/* The layer's "activation": a name; absent or null is linear (Keras's default). */
static int layer_activation(const cJSON *cfg, fm_keras_layer_t *l, int required, fm_error_t *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cfg, "activation");
    fm_activation_t *out = &l->activation;
    if (!a || cJSON_IsNull(a)) {
        if (required)
            return fm_error_set(err, FM_EFORMAT, "layer '%s' (%s) has no activation", l->name,
                                l->class_name);
        *out = FM_ACT_IDENTITY;
        return FM_OK;
    }
    if (cJSON_IsObject(a)) {
        /* Keras 3 serialises a custom or parameterised activation as an object. */
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "registered_name");
        if (!cJSON_IsString(n)) n = cJSON_GetObjectItemCaseSensitive(a, "class_name");
        return fm_error_set(err, FM_EUNSUPPORTED,
                            "layer '%s' (%s): activation '%.64s' is not supported (finmaas has "
                            "linear, relu, sigmoid, tanh, softmax)",
                            l->name, l->class_name, cJSON_IsString(n) ? n->valuestring : "custom");
    }
    if (!cJSON_IsString(a))
        return fm_error_set(err, FM_EFORMAT, "layer '%s' (%s): 'activation' is not a name", l->name,
                            l->class_name);
    if (fm_keras_activation_parse(a->valuestring, out) != FM_OK)
        return fm_error_set(err, FM_EUNSUPPORTED,
                            "layer '%s' (%s): activation '%.64s' is not supported (finmaas has "
                            "linear, relu, sigmoid, tanh, softmax)",
                            l->name, l->class_name, a->valuestring);
    return FM_OK;
}

/* The n of a declared input shape [batch, n] ("batch_input_shape" in Keras 2, "batch_shape" in
 * Keras 3); 0 when the layer declares none. */
static int declared_width(const cJSON *cfg, fm_keras_layer_t *l, fm_error_t *err) {
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(cfg, "batch_input_shape");
    if (!shape || cJSON_IsNull(shape)) shape = cJSON_GetObjectItemCaseSensitive(cfg, "batch_shape");
    l->input_width = 0;
    if (!shape || cJSON_IsNull(shape)) return FM_OK;
    if (!cJSON_IsArray(shape))
        return fm_error_set(err, FM_EFORMAT, "layer '%s' (%s): the input shape is not a list",
                            l->name, l->class_name);
    int rank = cJSON_GetArraySize(shape);
    const cJSON *n = cJSON_GetArrayItem(shape, rank - 1);
    double v = cJSON_IsNumber(n) ? n->valuedouble : -1.0;
    if (rank != 2 || !(v >= 1 && v <= FM_KERAS_MAX_WIDTH && v == floor(v))) {
        char *text = cJSON_PrintUnformatted(shape);
        int rc = fm_error_set(err, FM_EUNSUPPORTED,
                              "layer '%s' (%s): input shape %.64s is not supported (only a flat "
                              "[batch, features] input with 1 to %d features)",
                              l->name, l->class_name, text ? text : "?", FM_KERAS_MAX_WIDTH);
        free(text);
        return rc;
    }
    l->input_width = (int)v;
    return FM_OK;
}

static int bool_option(const cJSON *cfg, const char *key, int fallback) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsBool(b) ? cJSON_IsTrue(b) : fallback;
}

/* The name of a layer entry: config.name, else the entry's own "name". */
static const char *entry_name(const cJSON *entry) {
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(entry, "config");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(cfg, "name");
    if (!cJSON_IsString(n)) n = cJSON_GetObjectItemCaseSensitive(entry, "name");
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static int parse_layer(const cJSON *entry, size_t index, fm_keras_layer_t *l, fm_error_t *err) {
    memset(l, 0, sizeof *l);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(entry, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(entry, "config");
    if (!cJSON_IsString(cls) || !cJSON_IsObject(cfg))
        return fm_error_set(err, FM_EFORMAT, "model_config: layer %zu has no class_name or config",
                            index);
    l->class_name = cls->valuestring;
    if (!(l->name = entry_name(entry)))
        return fm_error_set(err, FM_EFORMAT, "model_config: layer %zu (%.64s) has no name", index,
                            l->class_name);
    if (strcmp(l->class_name, "InputLayer") == 0) {
        l->kind = FM_KERAS_INPUT;
        if (bool_option(cfg, "sparse", 0) || bool_option(cfg, "ragged", 0))
            return fm_error_set(err, FM_EUNSUPPORTED,
                                "layer '%s' (InputLayer): sparse or ragged input is not supported",
                                l->name);
        return declared_width(cfg, l, err);
    }
    if (strcmp(l->class_name, "Dense") == 0) {
        l->kind = FM_KERAS_DENSE;
        const cJSON *units = cJSON_GetObjectItemCaseSensitive(cfg, "units");
        double u = cJSON_IsNumber(units) ? units->valuedouble : 0.0;
        if (!(u >= 1 && u <= FM_KERAS_MAX_WIDTH && u == floor(u)))
            return fm_error_set(err, FM_EFORMAT,
                                "layer '%s' (Dense): 'units' is missing or not an integer in [1, "
                                "%d]",
                                l->name, FM_KERAS_MAX_WIDTH);
        l->units = (int)u;
        const cJSON *bias = cJSON_GetObjectItemCaseSensitive(cfg, "use_bias");
        if (bias && !cJSON_IsBool(bias))
            return fm_error_set(err, FM_EFORMAT, "layer '%s' (Dense): 'use_bias' is not a boolean",
                                l->name);
        l->use_bias = bool_option(cfg, "use_bias", 1);
        int rc = layer_activation(cfg, l, 0, err);
        return rc ? rc : declared_width(cfg, l, err);
    }
    if (strcmp(l->class_name, "Activation") == 0) {
        l->kind = FM_KERAS_ACTIVATION;
        int rc = layer_activation(cfg, l, 1, err);
        return rc ? rc : declared_width(cfg, l, err);
    }
    if (strcmp(l->class_name, "Dropout") == 0) {
        l->kind = FM_KERAS_DROPOUT;
        return declared_width(cfg, l, err);
    }
    return fm_error_set(err, FM_EUNSUPPORTED,
                        "layer '%s': layer class '%.64s' is not supported (finmaas imports "
                        "InputLayer, Dense, Activation, Dropout)",
                        l->name, l->class_name);
}

static int sequential_chain(const cJSON *layers, fm_keras_chain_t *out, fm_error_t *err) {
    int n = cJSON_GetArraySize(layers);
    if (n < 1) return fm_error_set(err, FM_EFORMAT, "model_config: the model has no layers");
    if (!(out->layers = calloc((size_t)n, sizeof *out->layers)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    const cJSON *entry;
    cJSON_ArrayForEach(entry, layers) {
        int rc = parse_layer(entry, out->count, &out->layers[out->count], err);
        if (rc) return rc;
        out->count++;
    }
    return FM_OK;
}

/* The layer name of a tensor reference: ["name", node, tensor(, kwargs)]. */
static const char *reference_name(const cJSON *ref) {
    const cJSON *n = cJSON_IsArray(ref) ? cJSON_GetArrayItem(ref, 0) : NULL;
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

/* The single reference of "input_layers" / "output_layers": [[ref]] (Keras 2) or [ref] (Keras 3).
 */
static int single_endpoint(const cJSON *cfg, const char *key, const char **out, fm_error_t *err) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) < 1)
        return fm_error_set(err, FM_EFORMAT, "model_config: '%s' is missing or empty", key);
    const char *name = reference_name(list);
    if (!name) {
        if (cJSON_GetArraySize(list) != 1)
            return fm_error_set(
                err, FM_EUNSUPPORTED, "model_config: the model has %d %s; only one is supported",
                cJSON_GetArraySize(list), strcmp(key, "input_layers") == 0 ? "inputs" : "outputs");
        name = reference_name(cJSON_GetArrayItem(list, 0));
    }
    if (!name) return fm_error_set(err, FM_EFORMAT, "model_config: '%s' is not a layer list", key);
    *out = name;
    return FM_OK;
}

/*
 * The one layer a Functional layer takes its input from (*from NULL for a layer without inputs).
 * FM_EUNSUPPORTED for a layer called more than once or with several inputs.
 */
static int inbound_layer(const cJSON *entry, const char *name, const char **from, fm_error_t *err) {
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(entry, "inbound_nodes");
    *from = NULL;
    if (!nodes || cJSON_GetArraySize(nodes) == 0) return FM_OK;
    if (!cJSON_IsArray(nodes))
        return fm_error_set(err, FM_EFORMAT, "layer '%s': 'inbound_nodes' is not a list", name);
    if (cJSON_GetArraySize(nodes) > 1)
        return fm_error_set(err, FM_EUNSUPPORTED,
                            "layer '%s' is called %d times (shared layers are not supported)", name,
                            cJSON_GetArraySize(nodes));
    const cJSON *node = cJSON_GetArrayItem(nodes, 0), *args = node;
    if (cJSON_IsObject(node)) { /* Keras 3: {"args": [tensor], "kwargs": {...}} */
        args = cJSON_GetObjectItemCaseSensitive(node, "args");
        const cJSON *only = cJSON_GetArrayItem(args, 0);
        if (cJSON_IsArray(args) && cJSON_GetArraySize(args) == 1 && cJSON_IsObject(only)) {
            const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(only, "config");
            *from = reference_name(cJSON_GetObjectItemCaseSensitive(cfg, "keras_history"));
        }
    } else if (cJSON_IsArray(node) && cJSON_GetArraySize(node) == 1) { /* Keras 2 */
        *from = reference_name(cJSON_GetArrayItem(node, 0));
    }
    if (*from) return FM_OK;
    if (cJSON_IsArray(args) && cJSON_GetArraySize(args) > 1)
        return fm_error_set(err, FM_EUNSUPPORTED,
                            "layer '%s' takes %d inputs (only a plain chain of layers is "
                            "supported)",
                            name, cJSON_GetArraySize(args));
    return fm_error_set(err, FM_EUNSUPPORTED,
                        "layer '%s': its input is not a single layer output (only a plain chain "
                        "of layers is supported)",
                        name);
}

static const cJSON *find_entry(const cJSON *layers, const char *name) {
    const cJSON *entry;
    cJSON_ArrayForEach(entry, layers) {
        const char *n = entry_name(entry);
        if (n && strcmp(n, name) == 0) return entry;
    }
    return NULL;
}

static int functional_chain(const cJSON *cfg, fm_keras_chain_t *out, fm_error_t *err) {
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(cfg, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 1)
        return fm_error_set(err, FM_EFORMAT, "model_config: the model has no layers");
    size_t n = (size_t)cJSON_GetArraySize(layers);
    const char *input, *output;
    int rc = single_endpoint(cfg, "input_layers", &input, err);
    if (!rc) rc = single_endpoint(cfg, "output_layers", &output, err);
    if (rc) return rc;
    const cJSON **path = calloc(n, sizeof *path);
    if (!path || !(out->layers = calloc(n, sizeof *out->layers))) {
        free(path);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    /* Backwards from the output; more steps than layers means a cycle. */
    size_t len = 0;
    for (const char *at = output; at && !rc;) {
        const cJSON *entry = find_entry(layers, at);
        if (!entry)
            rc = fm_error_set(err, FM_EFORMAT, "model_config: no layer named '%.64s'", at);
        else if (len == n)
            rc = fm_error_set(err, FM_EFORMAT, "model_config: the layers form a cycle");
        else
            path[len++] = entry;
        if (!rc) rc = inbound_layer(entry, at, &at, err);
    }
    for (size_t i = 0; !rc && i < len; i++)
        rc = parse_layer(path[len - 1 - i], i, &out->layers[i], err);
    out->count = rc ? 0 : len;
    if (!rc && strcmp(out->layers[0].name, input) != 0)
        rc = fm_error_set(err, FM_EUNSUPPORTED,
                          "model_config: the path from output '%.64s' starts at '%.64s', not at "
                          "the input '%.64s'",
                          output, out->layers[0].name, input);
    if (!rc && len != n) {
        const cJSON *entry;
        const char *stray = "?";
        cJSON_ArrayForEach(entry, layers) {
            int on_path = 0;
            for (size_t i = 0; i < len && !on_path; i++)
                on_path = path[i] == entry;
            if (!on_path) {
                const char *name = entry_name(entry);
                stray = name ? name : "?";
                break;
            }
        }
        rc = fm_error_set(err, FM_EUNSUPPORTED,
                          "layer '%.64s' is not on the path from input '%.64s' to output '%.64s' "
                          "(only a plain chain of layers is supported)",
                          stray, input, output);
    }
    free(path);
    return rc;
}

int fm_keras_chain_from_config(const cJSON *config, fm_keras_chain_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(config, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(config, "config");
    if (!cJSON_IsString(cls) || !cfg)
        return fm_error_set(err, FM_EFORMAT, "model_config has no class_name or config");
    out->model_class = cls->valuestring;
    int rc;
    if (strcmp(cls->valuestring, "Sequential") == 0) {
        const cJSON *layers =
            cJSON_IsArray(cfg) ? cfg : cJSON_GetObjectItemCaseSensitive(cfg, "layers");
        rc = cJSON_IsArray(layers) ? sequential_chain(layers, out, err)
                                   : fm_error_set(err, FM_EFORMAT,
                                                  "model_config: the Sequential model has no "
                                                  "layer list");
    } else if (strcmp(cls->valuestring, "Functional") == 0 ||
               strcmp(cls->valuestring, "Model") == 0) {
        rc = cJSON_IsObject(cfg) ? functional_chain(cfg, out, err)
                                 : fm_error_set(err, FM_EFORMAT,
                                                "model_config: the model's config is not an "
                                                "object");
    } else {
        rc = fm_error_set(err, FM_EUNSUPPORTED,
                          "model class '%.64s' is not supported (Sequential, or a Functional "
                          "model that is a plain chain of layers)",
                          cls->valuestring);
    }
    for (size_t i = 1; !rc && i < out->count; i++)
        if (out->layers[i].kind == FM_KERAS_INPUT)
            rc =
                fm_error_set(err, FM_EUNSUPPORTED, "layer '%s' (InputLayer) is not the first layer",
                             out->layers[i].name);
    if (rc) fm_keras_chain_free(out);
    return rc;
}
