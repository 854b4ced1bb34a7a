/*
 * Model files (.fmm): a model as a safetensors container. Each dense layer l of a network is
 * stored as "layers.<l>.weight" [I, O] and "layers.<l>.bias" [O] in F64; a gbt model's booster as
 * its serialized bytes in the U8 tensor "gbt.booster" [bytes]. The metadata holds "format" =
 * "finmaas" and "finmaas" = the model's description (fm_model_describe) as unformatted JSON.
 *
 * Loading trusts nothing: the container's checksum is required, the description's format version
 * must not be newer than this build's, the preprocessing and the network are rebuilt from it and
 * every tensor is checked for presence, dtype and shape against the declared architecture before
 * any parameter memory is allocated (so a forged architecture cannot make finmaas allocate more
 * than the file itself holds), a booster passes the gbt area's structural check before XGBoost
 * reads it, and the parts must agree with each other (fm_model_check), the same check that saving
 * applies. Every error names the file.
 */
#include "model/model_internal.h"
#include "core/fs.h"
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tensor_name(char *buf, size_t size, int layer, const char *part) {
    snprintf(buf, size, "layers.%d.%s", layer, part);
}

static int add_parameters(const fm_model_t *m, fm_tensor_file_t *tf, fm_error_t *err) {
    if (m->gbt) {
        size_t len = 0;
        const unsigned char *bytes = fm_gbt_bytes(m->gbt, &len);
        int64_t shape[1] = {(int64_t)len};
        return fm_tensor_file_add(tf, FM_MODEL_BOOSTER_TENSOR, FM_DTYPE_U8, 1, shape, bytes, err);
    }
    const fm_net_t *net = m->net;
    char name[64];
    int rc = FM_OK;
    for (int l = 0; l < net->nlayers && !rc; l++) {
        int64_t wshape[2] = {net->sizes[l], net->sizes[l + 1]}, bshape[1] = {net->sizes[l + 1]};
        tensor_name(name, sizeof name, l, "weight");
        rc = fm_tensor_file_add(tf, name, FM_DTYPE_F64, 2, wshape,
                                net->params + net->weight_offset[l], err);
        tensor_name(name, sizeof name, l, "bias");
        if (!rc)
            rc = fm_tensor_file_add(tf, name, FM_DTYPE_F64, 1, bshape,
                                    net->params + net->bias_offset[l], err);
    }
    return rc;
}

/* Encodes without naming a file in messages; the public functions add it. */
static int encode(const fm_model_t *m, fm_buf_t *out, fm_error_t *err) {
    int rc = fm_model_check(m, err);
    if (rc) return rc;
    fm_tensor_file_t *tf = fm_tensor_file_new();
    cJSON *description = fm_model_describe(m);
    char *text = description ? cJSON_PrintUnformatted(description) : NULL;
    cJSON_Delete(description);
    if (!tf || !text) {
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    } else {
        rc = add_parameters(m, tf, err);
        if (!rc && (fm_tensor_file_set_metadata(tf, "format", "finmaas") != 0 ||
                    fm_tensor_file_set_metadata(tf, FM_MODEL_METADATA_KEY, text) != 0))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        if (!rc) rc = fm_safetensors_encode(tf, out, err);
    }
    free(text);
    fm_tensor_file_free(tf);
    return rc;
}

int fm_model_encode(const fm_model_t *model, fm_buf_t *out, fm_error_t *err) {
    fm_error_t e;
    int rc = encode(model, out, &e);
    if (rc) return fm_error_set(err, rc, "model: %s", e.msg);
    return FM_OK;
}

int fm_model_save(const fm_model_t *model, const char *path, fm_error_t *err) {
    fm_buf_t buf = FM_BUF_INIT;
    fm_error_t e;
    int rc = encode(model, &buf, &e);
    if (rc) {
        fm_buf_free(&buf);
        return fm_error_set(err, rc, "model file %s: %s", path, e.msg);
    }
    rc = fm_file_write_atomic(path, buf.data, buf.len, &e);
    fm_buf_free(&buf);
    /* The message of fm_file_write_atomic starts with the path already. */
    if (rc) return fm_error_set(err, rc, "model file %s", e.msg);
    return FM_OK;
}

/* ---- Loading --------------------------------------------------------------------------------- */

static int read_classes(const cJSON *d, fm_model_t *m, fm_error_t *err) {
    if (m->task == FM_TASK_REGRESSION) return FM_OK;
    const cJSON *classes, *item;
    int rc = fm_json_array(d, "classes", -1, &classes, err);
    if (rc) return rc;
    size_t n = (size_t)cJSON_GetArraySize(classes);
    if (m->task == FM_TASK_BINARY && n != 2)
        return fm_error_set(err, FM_EFORMAT, "a binary model needs 2 classes, has %zu", n);
    if (n < 2) return fm_error_set(err, FM_EFORMAT, "field 'classes' has %zu labels", n);
    if (!(m->classes = calloc(n, sizeof *m->classes)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    m->nclasses = n;
    size_t i = 0;
    cJSON_ArrayForEach(item, classes) {
        if (!cJSON_IsString(item))
            return fm_error_set(err, FM_EFORMAT, "field 'classes': item %zu is not a string", i);
        if (!(m->classes[i++] = strdup(item->valuestring)))
            return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (m->task == FM_TASK_BINARY) {
        const char *positive;
        if ((rc = fm_json_string(d, "positive_class", &positive, err))) return rc;
        if (strcmp(positive, m->classes[1]) != 0)
            return fm_error_set(err, FM_EFORMAT,
                                "positive class '%.100s' is not the second of two classes",
                                positive);
    }
    return FM_OK;
}

static int read_identity(const cJSON *d, fm_model_t *m, fm_error_t *err) {
    const char *task, *family, *target;
    int rc = fm_json_string(d, "task", &task, err);
    if (rc) return rc;
    if (fm_task_parse(task, &m->task) != 0)
        return fm_error_set(err, FM_EFORMAT, "unknown task '%.64s'", task);
    if ((rc = fm_json_string(d, "family", &family, err)) ||
        (rc = fm_json_string(d, "target", &target, err)))
        return rc;
    if (!*family || !*target)
        return fm_error_set(err, FM_EFORMAT, "field '%s' is empty", *family ? "target" : "family");
    if (!(m->family = strdup(family)) || !(m->target = strdup(target)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    if ((rc = read_classes(d, m, err))) return rc;
    if (m->task == FM_TASK_REGRESSION) {
        const cJSON *scaling;
        if ((rc = fm_json_object(d, "target_scaling", &scaling, err)) ||
            (rc = fm_json_number(scaling, "mean", &m->target_mean, err)) ||
            (rc = fm_json_number(scaling, "std", &m->target_std, err)))
            return rc;
    }
    return FM_OK;
}

/* Checks that tensor name exists as F64 with the given shape. */
static int expect_tensor(const fm_tensor_file_t *tf, const char *name, int ndim,
                         const int64_t *shape, const fm_tensor_t **out, fm_error_t *err) {
    const fm_tensor_t *t = fm_tensor_file_find(tf, name);
    if (!t) return fm_error_set(err, FM_EFORMAT, "tensor '%s' is missing", name);
    if (t->dtype != FM_DTYPE_F64)
        return fm_error_set(err, FM_EFORMAT, "tensor '%s' is %s, expected F64", name,
                            fm_dtype_name(t->dtype));
    int same = t->ndim == ndim;
    for (int k = 0; same && k < ndim; k++)
        same = t->shape[k] == shape[k];
    if (!same) {
        char have[160] = "", want[160] = "";
        for (int k = 0; k < t->ndim; k++)
            snprintf(have + strlen(have), sizeof have - strlen(have), k ? ", %lld" : "%lld",
                     (long long)t->shape[k]);
        for (int k = 0; k < ndim; k++)
            snprintf(want + strlen(want), sizeof want - strlen(want), k ? ", %lld" : "%lld",
                     (long long)shape[k]);
        return fm_error_set(err, FM_EFORMAT,
                            "tensor '%s' has shape [%s], the architecture needs [%s]", name, have,
                            want);
    }
    *out = t;
    return FM_OK;
}

/* Reads the architecture, checks the tensors against it, then builds the network. */
static int read_network(const cJSON *d, const fm_tensor_file_t *tf, fm_model_t *m,
                        fm_error_t *err) {
    const cJSON *arch, *sizes, *item;
    int rc = fm_json_object(d, "architecture", &arch, err);
    if (!rc) rc = fm_json_array(arch, "sizes", -1, &sizes, err);
    if (rc) return rc;
    int nsizes = cJSON_GetArraySize(sizes);
    if (nsizes < 2 || nsizes > FM_NET_MAX_LAYERS + 1)
        return fm_error_set(err, FM_EFORMAT, "architecture: %d layer sizes (2 to %d allowed)",
                            nsizes, FM_NET_MAX_LAYERS + 1);
    int s[FM_NET_MAX_LAYERS + 1], k = 0;
    cJSON_ArrayForEach(item, sizes) {
        double v = cJSON_IsNumber(item) ? item->valuedouble : 0.0;
        if (!(v >= 1 && v <= FM_MODEL_MAX_WIDTH && v == floor(v)))
            return fm_error_set(err, FM_EFORMAT,
                                "architecture: sizes[%d] is not an integer in [1, %d]", k,
                                FM_MODEL_MAX_WIDTH);
        s[k++] = (int)v;
    }
    const char *hidden_text, *output_text, *loss_text;
    fm_activation_t hidden, output;
    if ((rc = fm_json_string(arch, "hidden_activation", &hidden_text, err)) ||
        (rc = fm_json_string(arch, "output_activation", &output_text, err)) ||
        (rc = fm_json_string(arch, "loss", &loss_text, err)))
        return rc;
    if (fm_activation_parse(hidden_text, &hidden) != 0)
        return fm_error_set(err, FM_EFORMAT, "architecture: unknown hidden activation '%.64s'",
                            hidden_text);
    if (fm_activation_parse(output_text, &output) != 0)
        return fm_error_set(err, FM_EFORMAT, "architecture: unknown output activation '%.64s'",
                            output_text);
    if (fm_model_loss_parse(loss_text, &m->loss) != 0)
        return fm_error_set(err, FM_EFORMAT, "architecture: unknown loss '%.64s'", loss_text);

    int nlayers = nsizes - 1;
    size_t nparams = 0;
    const fm_tensor_t *weights[FM_NET_MAX_LAYERS], *biases[FM_NET_MAX_LAYERS];
    char name[64];
    for (int l = 0; l < nlayers; l++) {
        int64_t wshape[2] = {s[l], s[l + 1]}, bshape[1] = {s[l + 1]};
        tensor_name(name, sizeof name, l, "weight");
        if ((rc = expect_tensor(tf, name, 2, wshape, &weights[l], err))) return rc;
        tensor_name(name, sizeof name, l, "bias");
        if ((rc = expect_tensor(tf, name, 1, bshape, &biases[l], err))) return rc;
        nparams += (size_t)s[l] * (size_t)s[l + 1] + (size_t)s[l + 1];
    }
    if (tf->count != 2 * (size_t)nlayers) {
        for (size_t i = 0; i < tf->count; i++) {
            int expected = 0;
            for (int l = 0; l < nlayers && !expected; l++)
                expected = &tf->tensors[i] == weights[l] || &tf->tensors[i] == biases[l];
            if (!expected)
                return fm_error_set(err, FM_EFORMAT, "unexpected tensor '%s'", tf->tensors[i].name);
        }
    }
    int64_t declared;
    if ((rc = fm_json_int(arch, "parameters", 0, INT64_MAX, &declared, err))) return rc;
    if ((uint64_t)declared != (uint64_t)nparams)
        return fm_error_set(err, FM_EFORMAT,
                            "architecture: %lld parameters declared, the sizes give %zu",
                            (long long)declared, nparams);

    if ((rc = fm_net_new(s, nsizes, hidden, output, &m->net, err))) return rc;
    for (int l = 0; l < nlayers; l++) {
        memcpy(m->net->params + m->net->weight_offset[l], weights[l]->data, weights[l]->nbytes);
        memcpy(m->net->params + m->net->bias_offset[l], biases[l]->data, biases[l]->nbytes);
    }
    return FM_OK;
}

/* Checks the booster tensor against the description, then loads it for the model's task, classes
 * and encoded width (the preprocessing is read before). */
static int read_booster(const cJSON *d, const fm_tensor_file_t *tf, fm_model_t *m,
                        fm_error_t *err) {
    const cJSON *booster;
    const char *format;
    int rc = fm_json_object(d, "booster", &booster, err);
    if (!rc) rc = fm_json_string(booster, "format", &format, err);
    if (rc) return rc;
    if (strcmp(format, "json") != 0)
        return fm_error_set(err, FM_EUNSUPPORTED, "booster format '%.32s' (finmaas reads json)",
                            format);
    const fm_tensor_t *t = fm_tensor_file_find(tf, FM_MODEL_BOOSTER_TENSOR);
    if (!t) return fm_error_set(err, FM_EFORMAT, "tensor '%s' is missing", FM_MODEL_BOOSTER_TENSOR);
    if (t->dtype != FM_DTYPE_U8 || t->ndim != 1)
        return fm_error_set(err, FM_EFORMAT, "tensor '%s' must be one-dimensional U8, is %s",
                            FM_MODEL_BOOSTER_TENSOR, fm_dtype_name(t->dtype));
    for (size_t i = 0; i < tf->count; i++)
        if (&tf->tensors[i] != t)
            return fm_error_set(err, FM_EFORMAT, "unexpected tensor '%s'", tf->tensors[i].name);
    static const fm_gbt_objective_t objective[] = {
        [FM_TASK_BINARY] = FM_GBT_BINARY,
        [FM_TASK_MULTICLASS] = FM_GBT_MULTICLASS,
        [FM_TASK_REGRESSION] = FM_GBT_REGRESSION,
    };
    static const fm_loss_t loss[] = {
        [FM_TASK_BINARY] = FM_LOSS_BINARY,
        [FM_TASK_MULTICLASS] = FM_LOSS_CATEGORICAL,
        [FM_TASK_REGRESSION] = FM_LOSS_MSE,
    };
    fm_gbt_shape_t shape = {objective[m->task], m->nclasses, m->prep->nfeatures};
    m->loss = loss[m->task];
    return fm_gbt_load(t->data, t->nbytes, &shape, &m->gbt, err);
}

/* Builds the model described by tf's metadata; messages do not name the file. */
static int model_from_tensors(const fm_tensor_file_t *tf, fm_model_t **out, fm_error_t *err) {
    const char *format = fm_tensor_file_get_metadata(tf, "format");
    const char *text = fm_tensor_file_get_metadata(tf, FM_MODEL_METADATA_KEY);
    if (!text || (format && strcmp(format, "finmaas") != 0))
        return fm_error_set(err, FM_EFORMAT, "not a finmaas model (no '%s' metadata)",
                            FM_MODEL_METADATA_KEY);
    cJSON *d = NULL;
    int rc = fm_json_parse(text, strlen(text), "description", &d, err);
    if (rc) {
        if (err) err->code = FM_EFORMAT;
        return FM_EFORMAT;
    }
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        return fm_error_set(err, FM_EFORMAT, "description is not a JSON object");
    }
    int64_t version;
    rc = fm_json_int(d, "format_version", 1, INT32_MAX, &version, err);
    if (!rc && version > FM_MODEL_FORMAT_VERSION)
        rc = fm_error_set(err, FM_EUNSUPPORTED,
                          "format version %lld is newer than this finmaas supports (%d)",
                          (long long)version, FM_MODEL_FORMAT_VERSION);
    if (rc) {
        cJSON_Delete(d);
        return rc;
    }

    fm_model_t *m = fm_model_new();
    if (!m) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = read_identity(d, m, err);
    if (!rc) {
        const cJSON *prep;
        rc = fm_json_object(d, "preprocessing", &prep, err);
        if (!rc) rc = fm_prep_from_json(prep, &m->prep, err);
    }
    if (!rc) rc = fm_model_is_gbt(m) ? read_booster(d, tf, m, err) : read_network(d, tf, m, err);
    if (!rc) rc = fm_model_check(m, err);
    if (!rc) rc = fm_model_ready(m, err);
    /* Everything not rebuilt from structure (created, training, validation, data, the version
     * that wrote the file, ...) stays with the model as its info. */
    for (cJSON *item = d->child, *next; !rc && item; item = next) {
        next = item->next;
        if (!item->string || fm_model_key_is_structural(item->string)) continue;
        cJSON_DetachItemViaPointer(d, item);
        if (!cJSON_AddItemToObject(m->info, item->string, item)) {
            cJSON_Delete(item);
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        }
    }
    cJSON_Delete(d);
    if (rc) {
        fm_model_free(m);
        return rc;
    }
    *out = m;
    return FM_OK;
}

int fm_model_decode(const void *data, size_t len, const char *name, fm_model_t **out,
                    fm_error_t *err) {
    *out = NULL;
    fm_tensor_file_t *tf = NULL;
    fm_error_t e;
    /* The container's messages start with the name already. */
    int rc = fm_safetensors_decode(data, len, name, 1, &tf, &e);
    if (rc) return fm_error_set(err, rc, "model file %s", e.msg);
    rc = model_from_tensors(tf, out, &e);
    fm_tensor_file_free(tf);
    if (rc) return fm_error_set(err, rc, "model file %s: %s", name ? name : "model data", e.msg);
    return FM_OK;
}

int fm_model_load(const char *path, fm_model_t **out, fm_error_t *err) {
    *out = NULL;
    fm_tensor_file_t *tf = NULL;
    fm_error_t e;
    int rc = fm_safetensors_read(path, 1, &tf, &e);
    if (rc) return fm_error_set(err, rc, "model file %s", e.msg);
    rc = model_from_tensors(tf, out, &e);
    fm_tensor_file_free(tf);
    if (rc) return fm_error_set(err, rc, "model file %s: %s", path, e.msg);
    return FM_OK;
}
