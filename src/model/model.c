/*
 * The model object: its lifetime, task names, the consistency check shared by saving and loading,
 * and the JSON description that `finmaas inspect` prints and the model file stores.
 *
 * The description is built in a fixed order (format and version, task, family, target, classes,
 * features, preprocessing, architecture or booster, target scaling) followed by every member of
 * model->info
 * whose name the structure does not already use, so that a model that is saved and loaded again
 * describes itself byte for byte as before.
 */
#include "model/model_internal.h"
#include "core/json.h"
#include "core/strdict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const structural_keys[] = {
    "format_version", "task",           "family",         "target",
    "classes",        "positive_class", "features",       "encoded_features",
    "preprocessing",  "architecture",   "target_scaling", "booster",
};

int fm_model_key_is_structural(const char *key) {
    for (size_t i = 0; i < sizeof structural_keys / sizeof structural_keys[0]; i++)
        if (strcmp(key, structural_keys[i]) == 0) return 1;
    return 0;
}

const char *fm_task_name(fm_task_t task) {
    switch (task) {
    case FM_TASK_BINARY:
        return "binary";
    case FM_TASK_MULTICLASS:
        return "multiclass";
    case FM_TASK_REGRESSION:
        return "regression";
    }
    return "unknown";
}

int fm_task_parse(const char *text, fm_task_t *out) {
    static const fm_task_t tasks[] = {FM_TASK_BINARY, FM_TASK_MULTICLASS, FM_TASK_REGRESSION};
    for (size_t i = 0; text && i < sizeof tasks / sizeof tasks[0]; i++) {
        if (strcmp(text, fm_task_name(tasks[i])) == 0) {
            *out = tasks[i];
            return FM_OK;
        }
    }
    return FM_EINVAL;
}

int fm_model_loss_parse(const char *text, fm_loss_t *out) {
    static const fm_loss_t losses[] = {FM_LOSS_MSE, FM_LOSS_BINARY, FM_LOSS_CATEGORICAL};
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++) {
        if (strcmp(text, fm_loss_name(losses[i])) == 0) {
            *out = losses[i];
            return FM_OK;
        }
    }
    return FM_EFORMAT;
}

fm_model_t *fm_model_new(void) {
    fm_model_t *model = calloc(1, sizeof *model);
    if (!model) return NULL;
    model->target_std = 1.0;
    if (!(model->info = cJSON_CreateObject())) {
        free(model);
        return NULL;
    }
    return model;
}

void fm_model_free(fm_model_t *model) {
    if (!model) return;
    free(model->family);
    free(model->target);
    for (size_t i = 0; model->classes && i < model->nclasses; i++)
        free(model->classes[i]);
    free(model->classes);
    fm_prep_free(model->prep);
    fm_net_free(model->net);
    fm_net32_free(model->net32);
    fm_gbt_free(model->gbt);
    cJSON_Delete(model->info);
    free(model);
}

size_t fm_model_output_width(const fm_model_t *model) {
    return model->task == FM_TASK_MULTICLASS ? model->nclasses : 1;
}

static int check_classes(const fm_model_t *m, fm_error_t *err) {
    if (m->task == FM_TASK_REGRESSION) return FM_OK;
    if (m->task == FM_TASK_BINARY && m->nclasses != 2)
        return fm_error_set(err, FM_EFORMAT, "a binary model needs 2 classes, has %zu",
                            m->nclasses);
    if (m->nclasses < 2 || !m->classes)
        return fm_error_set(err, FM_EFORMAT, "a multiclass model needs at least 2 classes, has %zu",
                            m->nclasses);
    fm_strdict_t seen = FM_STRDICT_INIT;
    int rc = FM_OK;
    for (size_t i = 0; i < m->nclasses && !rc; i++) {
        const char *c = m->classes[i];
        if (!c) {
            rc = fm_error_set(err, FM_EFORMAT, "class %zu has no label", i);
            break;
        }
        size_t before = seen.count;
        if (fm_strdict_intern(&seen, c, strlen(c)) < 0)
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        else if (seen.count == before)
            rc = fm_error_set(err, FM_EFORMAT, "class '%s' appears twice", c);
    }
    fm_strdict_free(&seen);
    return rc;
}

int fm_model_is_gbt(const fm_model_t *model) {
    return model->family && strcmp(model->family, "gbt") == 0;
}

static const fm_loss_t task_loss[] = {
    [FM_TASK_BINARY] = FM_LOSS_BINARY,
    [FM_TASK_MULTICLASS] = FM_LOSS_CATEGORICAL,
    [FM_TASK_REGRESSION] = FM_LOSS_MSE,
};

/* A booster stands in a model of its task, classes and encoded width, with identity scaling. */
static int check_booster(const fm_model_t *m, fm_error_t *err) {
    const fm_gbt_info_t *info = fm_gbt_info(m->gbt);
    static const fm_gbt_objective_t objective[] = {
        [FM_TASK_BINARY] = FM_GBT_BINARY,
        [FM_TASK_MULTICLASS] = FM_GBT_MULTICLASS,
        [FM_TASK_REGRESSION] = FM_GBT_REGRESSION,
    };
    if (info->shape.objective != objective[m->task])
        return fm_error_set(err, FM_EFORMAT, "booster objective %s does not fit a %s task",
                            fm_gbt_objective_name(info->shape.objective), fm_task_name(m->task));
    if (info->shape.nfeatures != m->prep->nfeatures)
        return fm_error_set(err, FM_EFORMAT,
                            "preprocessing produces %zu features but the booster takes %zu",
                            m->prep->nfeatures, info->shape.nfeatures);
    if (fm_gbt_output_width(m->gbt) != fm_model_output_width(m))
        return fm_error_set(err, FM_EFORMAT,
                            "a %s model with %zu classes needs %zu outputs, the booster has %zu",
                            fm_task_name(m->task), m->nclasses, fm_model_output_width(m),
                            fm_gbt_output_width(m->gbt));
    if (m->loss != task_loss[m->task])
        return fm_error_set(err, FM_EFORMAT, "loss %s does not fit a %s task",
                            fm_loss_name(m->loss), fm_task_name(m->task));
    if (m->target_mean != 0.0 || m->target_std != 1.0)
        return fm_error_set(err, FM_EFORMAT,
                            "a gbt model predicts in the target's units: its target scaling must "
                            "be mean 0, std 1 (is %g, %g)",
                            m->target_mean, m->target_std);
    return FM_OK;
}

int fm_model_check(const fm_model_t *m, fm_error_t *err) {
    if (!m || !m->prep || !m->family || !m->target)
        return fm_error_set(err, FM_EINVAL,
                            "model is incomplete (preprocessing, family or target missing)");
    int gbt = fm_model_is_gbt(m);
    if (gbt && (!m->gbt || m->net))
        return fm_error_set(err, FM_EINVAL, "a gbt model needs a booster and no network");
    if (!gbt && (!m->net || m->gbt))
        return fm_error_set(err, FM_EINVAL,
                            "model is incomplete (a '%.64s' model needs a network and no booster)",
                            m->family);
    if ((unsigned)m->task > FM_TASK_REGRESSION)
        return fm_error_set(err, FM_EFORMAT, "unknown task %d", (int)m->task);
    int rc = check_classes(m, err);
    if (rc) return rc;
    if (gbt) return check_booster(m, err);
    const fm_net_t *net = m->net;
    if ((size_t)net->sizes[0] != m->prep->nfeatures)
        return fm_error_set(err, FM_EFORMAT,
                            "preprocessing produces %zu features but the network takes %d",
                            m->prep->nfeatures, net->sizes[0]);
    size_t width = (size_t)net->sizes[net->nlayers];
    if (width != fm_model_output_width(m))
        return fm_error_set(err, FM_EFORMAT,
                            "a %s model with %zu classes needs %zu outputs, the network has %zu",
                            fm_task_name(m->task), m->nclasses, fm_model_output_width(m), width);
    if (fm_loss_activation(m->loss) != net->output)
        return fm_error_set(err, FM_EFORMAT, "loss %s does not match output activation %s",
                            fm_loss_name(m->loss), fm_activation_name(net->output));
    if (m->loss != task_loss[m->task])
        return fm_error_set(err, FM_EFORMAT, "loss %s does not fit a %s task",
                            fm_loss_name(m->loss), fm_task_name(m->task));
    if (m->task == FM_TASK_REGRESSION &&
        !(isfinite(m->target_mean) && isfinite(m->target_std) && m->target_std > 0))
        return fm_error_set(err, FM_EFORMAT,
                            "target scaling (mean %g, std %g) must be finite with a positive std",
                            m->target_mean, m->target_std);
    for (size_t i = 0; i < net->nparams; i++)
        if (!isfinite(net->params[i]))
            return fm_error_set(err, FM_EFORMAT, "parameter %zu is not finite", i);
    return FM_OK;
}

/* ---- Description ----------------------------------------------------------------------------- */

/* The raw input columns with their types, "pii": true for personal data, and categories (in
 * one-hot order). */
static cJSON *features_json(const fm_prep_t *prep) {
    cJSON *features = cJSON_CreateArray();
    for (size_t i = 0; features && i < prep->ncolumns; i++) {
        const fm_prep_column_t *c = &prep->columns[i];
        cJSON *f = cJSON_CreateObject();
        int ok = f && cJSON_AddItemToArray(features, f);
        if (!ok) {
            cJSON_Delete(f);
            cJSON_Delete(features);
            return NULL;
        }
        ok = cJSON_AddStringToObject(f, "name", c->name) &&
             cJSON_AddStringToObject(f, "type", fm_column_type_name(c->type));
        /* Only when set, as in the preprocessing JSON: unmarked models describe as before. */
        if (ok && c->pii) ok = cJSON_AddTrueToObject(f, "pii") != NULL;
        if (ok && c->type == FM_COLUMN_CATEGORICAL) {
            cJSON *cats = cJSON_AddArrayToObject(f, "categories");
            ok = cats != NULL;
            for (size_t k = 0; ok && k < c->categories.count; k++) {
                cJSON *s = cJSON_CreateString(fm_strdict_get(&c->categories, (int32_t)k));
                ok = s && cJSON_AddItemToArray(cats, s);
                if (!ok) cJSON_Delete(s);
            }
        }
        if (!ok) {
            cJSON_Delete(features);
            return NULL;
        }
    }
    return features;
}

static cJSON *encoded_features_json(const fm_prep_t *prep) {
    cJSON *e = cJSON_CreateObject();
    cJSON *names = e ? cJSON_CreateArray() : NULL;
    int ok = names && cJSON_AddNumberToObject(e, "count", (double)prep->nfeatures);
    if (names && !(ok && cJSON_AddItemToObject(e, "names", names))) {
        cJSON_Delete(names);
        ok = 0;
    }
    char buf[1024];
    for (size_t j = 0; ok && j < prep->nfeatures; j++) {
        cJSON *s = cJSON_CreateString(fm_prep_feature_name(prep, j, buf, sizeof buf));
        ok = s && cJSON_AddItemToArray(names, s);
        if (!ok) cJSON_Delete(s);
    }
    if (!ok) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static cJSON *architecture_json(const fm_model_t *m) {
    const fm_net_t *net = m->net;
    cJSON *a = cJSON_CreateObject();
    cJSON *sizes = a ? cJSON_AddArrayToObject(a, "sizes") : NULL;
    int ok = sizes != NULL;
    for (int l = 0; ok && l <= net->nlayers; l++) {
        cJSON *s = cJSON_CreateNumber(net->sizes[l]);
        ok = s && cJSON_AddItemToArray(sizes, s);
        if (!ok) cJSON_Delete(s);
    }
    ok = ok && cJSON_AddStringToObject(a, "hidden_activation", fm_activation_name(net->hidden)) &&
         cJSON_AddStringToObject(a, "output_activation", fm_activation_name(net->output)) &&
         cJSON_AddStringToObject(a, "loss", fm_loss_name(m->loss)) &&
         cJSON_AddNumberToObject(a, "parameters", (double)net->nparams);
    if (!ok) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

/* Adds item under key, deleting it when that fails. Returns 1 on success. */
static int add_item(cJSON *obj, const char *key, cJSON *item) {
    if (item && cJSON_AddItemToObject(obj, key, item)) return 1;
    cJSON_Delete(item);
    return 0;
}

/* Appends item to array, deleting it when that fails. Returns 1 on success. */
static int append_item(cJSON *array, cJSON *item) {
    if (item && cJSON_AddItemToArray(array, item)) return 1;
    cJSON_Delete(item);
    return 0;
}

cJSON *fm_model_describe(const fm_model_t *m) {
    cJSON *d = cJSON_CreateObject();
    if (!d || !m) return d;
    /* A model loaded from a file keeps the version that created it. */
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(m->info, "finmaas_version");
    int ok = cJSON_AddNumberToObject(d, "format_version", FM_MODEL_FORMAT_VERSION) &&
             cJSON_AddStringToObject(d, "finmaas_version",
                                     cJSON_IsString(version) ? version->valuestring : FM_VERSION) &&
             cJSON_AddStringToObject(d, "task", fm_task_name(m->task)) &&
             cJSON_AddStringToObject(d, "family", m->family ? m->family : "") &&
             cJSON_AddStringToObject(d, "target", m->target ? m->target : "");
    if (ok && m->task != FM_TASK_REGRESSION && m->classes) {
        cJSON *classes = cJSON_CreateArray();
        ok = add_item(d, "classes", classes);
        for (size_t i = 0; ok && i < m->nclasses; i++)
            ok = append_item(classes, cJSON_CreateString(m->classes[i] ? m->classes[i] : ""));
        if (ok && m->task == FM_TASK_BINARY && m->nclasses == 2 && m->classes[1])
            ok = cJSON_AddStringToObject(d, "positive_class", m->classes[1]) != NULL;
    }
    if (ok && m->prep) {
        ok = add_item(d, "features", features_json(m->prep)) &&
             add_item(d, "encoded_features", encoded_features_json(m->prep)) &&
             add_item(d, "preprocessing", fm_prep_to_json(m->prep));
    }
    if (ok && m->net) ok = add_item(d, "architecture", architecture_json(m));
    if (ok && m->gbt) ok = add_item(d, "booster", fm_gbt_describe(m->gbt));
    if (ok && m->task == FM_TASK_REGRESSION) {
        cJSON *s = cJSON_CreateObject();
        ok = add_item(d, "target_scaling", s) && fm_json_add_number(s, "mean", m->target_mean) &&
             fm_json_add_number(s, "std", m->target_std);
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, m->info) {
        if (!ok) break;
        if (!item->string || cJSON_GetObjectItemCaseSensitive(d, item->string) ||
            fm_model_key_is_structural(item->string))
            continue;
        ok = add_item(d, item->string, cJSON_Duplicate(item, 1));
    }
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

int fm_model_ready(fm_model_t *model, fm_error_t *err) {
    if (fm_model_is_gbt(model)) {
        if (!model->gbt) return fm_error_set(err, FM_EINVAL, "gbt model has no booster");
        return FM_OK;
    }
    if (!model->net) return fm_error_set(err, FM_EINVAL, "model has no network");
    fm_net32_t *net32 = NULL;
    int rc = fm_net32_new(model->net, &net32, err);
    if (rc) return rc;
    fm_net32_free(model->net32);
    model->net32 = net32;
    return FM_OK;
}

int fm_model_workspace_new(const fm_model_t *model, int max_rows, fm_model_workspace_t **out,
                           fm_error_t *err) {
    *out = NULL;
    if (!model->net32 && !model->gbt)
        return fm_error_set(err, FM_ESTATE, "model is not ready to predict");
    fm_model_workspace_t *ws = calloc(1, sizeof *ws);
    if (!ws) return fm_error_set(err, FM_ENOMEM, "out of memory");
    /* Trees need no buffers of ours: XGBoost keeps its own per thread. */
    if (model->net32) {
        int rc = fm_net32_workspace_new(model->net32, max_rows, &ws->net32, err);
        if (rc) {
            free(ws);
            return rc;
        }
    }
    *out = ws;
    return FM_OK;
}

void fm_model_workspace_free(fm_model_workspace_t *ws) {
    if (!ws) return;
    fm_net32_workspace_free(ws->net32);
    free(ws);
}

const char *fm_model_workspace_error(const fm_model_workspace_t *ws) {
    return ws->error;
}
