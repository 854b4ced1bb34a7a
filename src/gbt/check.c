/*
 * The structural check of a serialized booster, applied before XGBoost sees the bytes.
 *
 * XGBoost 1.x loads a JSON model without validating it: a child index past the end of a tree, a
 * split on a feature the rows do not have, a tree id out of range, or a tree_info entry naming a
 * class that does not exist makes it read or write out of bounds at prediction. So every field
 * XGBoost reads from a gbtree model is checked here against the structure XGBoost writes (see the
 * layout below) and against the model it must stand in (objective, classes, features):
 *
 *   {"learner": {"attributes": {..strings..}, "feature_names": [], "feature_types": [],
 *                "gradient_booster": {"name": "gbtree", "model": {
 *                    "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": "T",
 *                                           "size_leaf_vector": "0"},
 *                    "tree_info": [T class indices], "trees": [T trees]}},
 *                "learner_model_param": {"base_score": "5E-1", "num_class": "K" or "0",
 *                                        "num_feature": "F", ...},
 *                "objective": {"name": "...", <its parameters>}},
 *    "version": [1, 7, 4]}
 *
 * and each tree: "id" equal to its position, "tree_param" {"num_nodes", "num_feature",
 * "num_deleted": "0", "size_leaf_vector": "0"}, arrays of num_nodes entries (left_children,
 * right_children, parents, split_indices, split_conditions, default_left, split_type,
 * base_weights, loss_changes, sum_hessian), empty category arrays. The child links must form one
 * tree rooted at node 0 that reaches every node exactly once, with parents agreeing.
 *
 * Keys must be unique in every object: cJSON keeps the first of two equal keys and XGBoost the
 * last, so a duplicate would let XGBoost read a value this check never saw. Integers written as
 * strings must be plain decimal digits, so that both parsers read the same number.
 *
 * Once checked, the parsed trees are handed to shap.c, which copies them into the compact form
 * fm_gbt_shap explains rows with.
 */
#include "gbt/gbt_internal.h"
#include "core/json.h"
#include "core/strdict.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* XGBoost writes the root's parent as this (its invalid node id without the left-child bit). */
#define ROOT_PARENT 2147483647

/* Per-tree working arrays, grown to the largest tree. */
typedef struct scratch {
    size_t cap;
    int32_t *left, *right, *parent, *stack, *depth;
    unsigned char *seen;
} scratch_t;

static void scratch_free(scratch_t *s) {
    free(s->left);
    free(s->right);
    free(s->parent);
    free(s->stack);
    free(s->depth);
    free(s->seen);
}

static int scratch_reserve(scratch_t *s, size_t n) {
    if (n <= s->cap) return FM_OK;
    scratch_free(s);
    memset(s, 0, sizeof *s);
    s->left = malloc(n * sizeof *s->left);
    s->right = malloc(n * sizeof *s->right);
    s->parent = malloc(n * sizeof *s->parent);
    s->stack = malloc(n * sizeof *s->stack);
    s->depth = malloc(n * sizeof *s->depth);
    s->seen = malloc(n);
    if (!s->left || !s->right || !s->parent || !s->stack || !s->depth || !s->seen) return FM_ENOMEM;
    s->cap = n;
    return FM_OK;
}

/* Every object in item (recursively) has distinct keys. Small objects are compared pairwise;
 * large ones (only a forged file has them) through a hash set, so the check stays linear. */
static int unique_keys(const cJSON *item, fm_error_t *err) {
    int large = 0;
    if (cJSON_IsObject(item)) {
        int count = 0;
        for (const cJSON *c = item->child; c && count <= 32; c = c->next)
            count++;
        large = count > 32;
    }
    fm_strdict_t seen = FM_STRDICT_INIT;
    int rc = FM_OK;
    for (const cJSON *c = item->child; c && !rc; c = c->next) {
        if (cJSON_IsObject(item) && c->string) {
            int twice = 0;
            if (large) {
                int32_t before = (int32_t)seen.count;
                int32_t id = fm_strdict_intern(&seen, c->string, strlen(c->string));
                if (id < 0) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
                twice = id >= 0 && id < before;
            } else {
                for (const cJSON *d = c->next; d && !twice; d = d->next)
                    twice = d->string && strcmp(c->string, d->string) == 0;
            }
            if (twice)
                rc = fm_error_set(err, FM_EFORMAT, "key '%.64s' appears twice in an object",
                                  c->string);
        }
        if (!rc && c->child) rc = unique_keys(c, err);
    }
    fm_strdict_free(&seen);
    return rc;
}

static const cJSON *member(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static int need_object(const cJSON *obj, const char *key, const char *where, const cJSON **out,
                       fm_error_t *err) {
    *out = member(obj, key);
    if (!cJSON_IsObject(*out))
        return fm_error_set(err, FM_EFORMAT, "%s: '%s' is missing or not an object", where, key);
    return FM_OK;
}

static int need_array(const cJSON *obj, const char *key, const char *where, const cJSON **out,
                      fm_error_t *err) {
    *out = member(obj, key);
    if (!cJSON_IsArray(*out))
        return fm_error_set(err, FM_EFORMAT, "%s: '%s' is missing or not an array", where, key);
    return FM_OK;
}

/* obj[key] as a string of decimal digits (as XGBoost writes its integer parameters) in [0, max]. */
static int string_count(const cJSON *obj, const char *key, const char *where, uint64_t max,
                        uint64_t *out, fm_error_t *err) {
    const cJSON *item = member(obj, key);
    const char *s = cJSON_IsString(item) ? item->valuestring : NULL;
    uint64_t v = 0;
    int ok = s && *s && strlen(s) <= 12;
    for (const char *p = s; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9';
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (!ok || v > max)
        return fm_error_set(err, FM_EFORMAT, "%s: '%s' must be a whole number in [0, %llu] as text",
                            where, key, (unsigned long long)max);
    *out = v;
    return FM_OK;
}

static int string_equals(const cJSON *obj, const char *key, const char *want, const char *where,
                         fm_error_t *err) {
    const cJSON *item = member(obj, key);
    if (!cJSON_IsString(item) || strcmp(item->valuestring, want) != 0)
        return fm_error_set(err, FM_EFORMAT, "%s: '%s' must be \"%s\"", where, key, want);
    return FM_OK;
}

/* obj[key] as a finite number written as text ("5E-1"; XGBoost 2 writes "[5E-1]"). */
static int string_number(const cJSON *obj, const char *key, const char *where, double *out,
                         fm_error_t *err) {
    const cJSON *item = member(obj, key);
    const char *s = cJSON_IsString(item) ? item->valuestring : NULL;
    char buf[64];
    size_t n = s ? strlen(s) : 0;
    if (n >= 3 && n < sizeof buf && s[0] == '[' && s[n - 1] == ']') {
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        s = buf;
    }
    char *end = NULL;
    double v = s && *s ? strtod(s, &end) : NAN;
    if (!end || *end != '\0' || !(fabs(v) <= FLT_MAX))
        return fm_error_set(err, FM_EFORMAT, "%s: '%s' must be a finite number as text", where,
                            key);
    *out = v;
    return FM_OK;
}

/* arr as exactly n integers in [lo, hi] into out (out may be NULL: checked only). */
static int int_array(const cJSON *arr, const char *key, size_t n, double lo, double hi,
                     int32_t *out, const char *where, fm_error_t *err) {
    size_t i = 0;
    const cJSON *c = arr->child;
    for (; c; c = c->next, i++) {
        double v = cJSON_IsNumber(c) ? c->valuedouble : NAN;
        if (i >= n || !(v >= lo && v <= hi && v == floor(v))) break;
        if (out) out[i] = (int32_t)v;
    }
    if (i != n || c)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: '%s' must hold %zu whole numbers in [%.0f, %.0f]; item %zu is not",
                            where, key, n, lo, hi, i);
    return FM_OK;
}

/* arr as exactly n numbers that are finite in single precision (XGBoost reads them as float). */
static int number_array(const cJSON *arr, const char *key, size_t n, const char *where,
                        fm_error_t *err) {
    size_t i = 0;
    const cJSON *c = arr->child;
    for (; c; c = c->next, i++)
        if (i >= n || !cJSON_IsNumber(c) || !(fabs(c->valuedouble) <= FLT_MAX)) break;
    if (i != n || c)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: '%s' must hold %zu numbers finite in single precision; item %zu "
                            "is not",
                            where, key, n, i);
    return FM_OK;
}

/* Checks one tree and adds its leaves and depth to info. */
static int check_tree(const cJSON *tree, size_t t, const fm_gbt_shape_t *shape, scratch_t *s,
                      fm_gbt_info_t *info, fm_error_t *err) {
    char where[48];
    snprintf(where, sizeof where, "tree %zu", t);
    if (!cJSON_IsObject(tree)) return fm_error_set(err, FM_EFORMAT, "%s is not an object", where);
    const cJSON *id = member(tree, "id"), *param, *arr;
    if (!cJSON_IsNumber(id) || id->valuedouble != (double)t)
        return fm_error_set(err, FM_EFORMAT, "%s: 'id' must be %zu", where, t);
    int rc = need_object(tree, "tree_param", where, &param, err);
    uint64_t n = 0, nfeat = 0, deleted = 0, leafvec = 0;
    if (!rc) rc = string_count(param, "num_nodes", where, FM_GBT_MAX_TREE_SIZE, &n, err);
    if (!rc) rc = string_count(param, "num_feature", where, UINT32_MAX, &nfeat, err);
    if (!rc) rc = string_count(param, "num_deleted", where, UINT32_MAX, &deleted, err);
    if (!rc) rc = string_count(param, "size_leaf_vector", where, UINT32_MAX, &leafvec, err);
    if (rc) return rc;
    if (n < 1) return fm_error_set(err, FM_EFORMAT, "%s has no nodes", where);
    if (nfeat != shape->nfeatures)
        return fm_error_set(err, FM_EFORMAT, "%s is for %llu features, the model has %zu", where,
                            (unsigned long long)nfeat, shape->nfeatures);
    if (deleted != 0 || leafvec != 0)
        return fm_error_set(err, FM_EFORMAT,
                            "%s has deleted nodes or vector leaves, which finmaas never writes",
                            where);
    if (scratch_reserve(s, (size_t)n)) return fm_error_set(err, FM_ENOMEM, "out of memory");

    /* The arrays XGBoost reads, each of n entries. */
    static const struct {
        const char *key;
        int kind; /* 0 left, 1 right, 2 parents, 3 split index, 4 0/1 flag, 5 zero, 6 number */
    } arrays[] = {
        {"left_children", 0}, {"right_children", 1},   {"parents", 2},      {"split_indices", 3},
        {"default_left", 4},  {"split_type", 5},       {"base_weights", 6}, {"loss_changes", 6},
        {"sum_hessian", 6},   {"split_conditions", 6},
    };
    double nn = (double)n;
    for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++) {
        const char *key = arrays[a].key;
        if ((rc = need_array(tree, key, where, &arr, err))) return rc;
        switch (arrays[a].kind) {
        case 0:
            rc = int_array(arr, key, n, -1, nn - 1, s->left, where, err);
            break;
        case 1:
            rc = int_array(arr, key, n, -1, nn - 1, s->right, where, err);
            break;
        case 2:
            rc = int_array(arr, key, n, 0, ROOT_PARENT, s->parent, where, err);
            break;
        case 3:
            rc = int_array(arr, key, n, 0, (double)shape->nfeatures - 1, NULL, where, err);
            break;
        case 4:
            rc = int_array(arr, key, n, 0, 1, NULL, where, err);
            break;
        case 5:
            rc = int_array(arr, key, n, 0, 0, NULL, where, err);
            break;
        default:
            rc = number_array(arr, key, n, where, err);
            break;
        }
        if (rc) return rc;
    }
    static const char *const empty[] = {"categories", "categories_nodes", "categories_segments",
                                        "categories_sizes"};
    for (size_t a = 0; a < sizeof empty / sizeof empty[0]; a++) {
        if ((rc = need_array(tree, empty[a], where, &arr, err))) return rc;
        if (arr->child)
            return fm_error_set(err, FM_EFORMAT,
                                "%s: '%s' must be empty (finmaas has no categorical splits)", where,
                                empty[a]);
    }

    /* Walk from the root: every node reached exactly once, through links that agree. */
    if (s->parent[0] != ROOT_PARENT)
        return fm_error_set(err, FM_EFORMAT, "%s: the root's parent must be %d", where,
                            ROOT_PARENT);
    memset(s->seen, 0, (size_t)n);
    size_t top = 0, reached = 0;
    s->stack[top++] = 0;
    s->depth[0] = 0;
    s->seen[0] = 1;
    while (top > 0) {
        int32_t node = s->stack[--top];
        reached++;
        int32_t l = s->left[node], r = s->right[node];
        if ((l < 0) != (r < 0))
            return fm_error_set(err, FM_EFORMAT, "%s, node %d: one child only", where, node);
        if (l < 0) {
            info->leaves++;
            if (s->depth[node] > info->max_depth) info->max_depth = s->depth[node];
            continue;
        }
        int32_t kids[2] = {l, r};
        for (int k = 0; k < 2; k++) {
            int32_t c = kids[k];
            if (c == 0 || s->seen[c])
                return fm_error_set(err, FM_EFORMAT, "%s, node %d: child %d is reached twice",
                                    where, node, c);
            if (s->parent[c] != node)
                return fm_error_set(err, FM_EFORMAT,
                                    "%s, node %d: its parent is %d, but node %d links to it", where,
                                    c, s->parent[c], node);
            s->seen[c] = 1;
            s->depth[c] = s->depth[node] + 1;
            s->stack[top++] = c;
        }
    }
    if (reached != n)
        return fm_error_set(err, FM_EFORMAT, "%s: %zu of its %llu nodes are not reachable", where,
                            (size_t)n - reached, (unsigned long long)n);
    return FM_OK;
}

/* The objective and its parameters as XGBoost 1.x writes them for the shape's task. */
static int check_objective(const cJSON *learner, const fm_gbt_shape_t *shape, fm_error_t *err) {
    const cJSON *obj, *param;
    const char *want = fm_gbt_objective_name(shape->objective);
    int rc = need_object(learner, "objective", "learner", &obj, err);
    if (!rc) rc = string_equals(obj, "name", want, "objective", err);
    if (rc) return rc;
    if (shape->objective == FM_GBT_MULTICLASS) {
        uint64_t k;
        rc = need_object(obj, "softmax_multiclass_param", "objective", &param, err);
        if (!rc) rc = string_count(param, "num_class", "objective", FM_GBT_MAX_CLASSES, &k, err);
        if (!rc && k != shape->nclasses)
            rc = fm_error_set(err, FM_EFORMAT, "objective: %llu classes, the model has %zu",
                              (unsigned long long)k, shape->nclasses);
        return rc;
    }
    double scale;
    rc = need_object(obj, "reg_loss_param", "objective", &param, err);
    if (!rc) rc = string_number(param, "scale_pos_weight", "objective", &scale, err);
    if (!rc && !(scale > 0))
        rc = fm_error_set(err, FM_EFORMAT, "objective: 'scale_pos_weight' must be positive");
    return rc;
}

static int check_learner_params(const cJSON *learner, const fm_gbt_shape_t *shape,
                                fm_gbt_info_t *info, fm_error_t *err) {
    const cJSON *p, *arr;
    uint64_t nclass, nfeat;
    const char *where = "learner_model_param";
    int rc = need_object(learner, where, "learner", &p, err);
    if (!rc) rc = string_count(p, "num_class", where, FM_GBT_MAX_CLASSES, &nclass, err);
    if (!rc) rc = string_count(p, "num_feature", where, UINT32_MAX, &nfeat, err);
    if (!rc) rc = string_number(p, "base_score", where, &info->base_score, err);
    if (rc) return rc;
    const cJSON *targets = member(p, "num_target");
    uint64_t ntarget = 1;
    if (targets && (rc = string_count(p, "num_target", where, UINT32_MAX, &ntarget, err)))
        return rc;
    size_t want_class = shape->objective == FM_GBT_MULTICLASS ? shape->nclasses : 0;
    if (nclass != want_class)
        return fm_error_set(err, FM_EFORMAT, "%s: %llu classes, a %s model needs %zu", where,
                            (unsigned long long)nclass, fm_gbt_objective_name(shape->objective),
                            want_class);
    if (nfeat != shape->nfeatures)
        return fm_error_set(err, FM_EFORMAT, "%s: %llu features, the preprocessing gives %zu",
                            where, (unsigned long long)nfeat, shape->nfeatures);
    if (ntarget != 1) return fm_error_set(err, FM_EFORMAT, "%s: 'num_target' must be 1", where);
    if (shape->objective == FM_GBT_BINARY && !(info->base_score > 0 && info->base_score < 1))
        return fm_error_set(err, FM_EFORMAT, "%s: a logistic base score must be in (0, 1), is %g",
                            where, info->base_score);
    /* Feature names and types are never set by finmaas; a categorical type would switch on
     * category splits, which the check above does not cover. */
    static const char *const unnamed[] = {"feature_names", "feature_types"};
    for (size_t i = 0; i < 2; i++) {
        if ((rc = need_array(learner, unnamed[i], "learner", &arr, err))) return rc;
        if (arr->child)
            return fm_error_set(err, FM_EFORMAT, "learner: '%s' must be empty", unnamed[i]);
    }
    const cJSON *attrs = member(learner, "attributes");
    if (attrs) {
        if (!cJSON_IsObject(attrs))
            return fm_error_set(err, FM_EFORMAT, "learner: 'attributes' is not an object");
        for (const cJSON *a = attrs->child; a; a = a->next)
            if (!cJSON_IsString(a))
                return fm_error_set(err, FM_EFORMAT, "learner: attribute '%.64s' is not text",
                                    a->string ? a->string : "");
    }
    return check_objective(learner, shape, err);
}

static int check_version(const cJSON *root, fm_gbt_info_t *info, fm_error_t *err) {
    const cJSON *v = member(root, "version");
    int k = 0;
    for (const cJSON *c = cJSON_IsArray(v) ? v->child : NULL; c && k < 4; c = c->next, k++) {
        double d = cJSON_IsNumber(c) ? c->valuedouble : -1;
        if (!(d >= 0 && d <= 1e6 && d == floor(d))) break;
        if (k < 3) info->version[k] = (int)d;
    }
    if (k != 3 || !cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
        return fm_error_set(err, FM_EFORMAT, "'version' must be 3 whole numbers");
    if (info->version[0] != 1)
        return fm_error_set(err, FM_EFORMAT,
                            "written by XGBoost %d.%d.%d; this finmaas reads models of XGBoost 1.x",
                            info->version[0], info->version[1], info->version[2]);
    return FM_OK;
}

static int check_model(const cJSON *learner, const fm_gbt_shape_t *shape, fm_gbt_info_t *info,
                       const cJSON **trees_out, fm_error_t *err) {
    const cJSON *gb, *model, *param, *trees, *tree_info;
    const char *where = "gradient_booster";
    int rc = need_object(learner, where, "learner", &gb, err);
    if (!rc) rc = string_equals(gb, "name", "gbtree", where, err);
    if (!rc) rc = need_object(gb, "model", where, &model, err);
    if (!rc) rc = need_object(model, "gbtree_model_param", "model", &param, err);
    uint64_t ntrees = 0, parallel = 0, leafvec = 0;
    if (!rc)
        rc = string_count(param, "num_trees", "gbtree_model_param",
                          (uint64_t)FM_GBT_MAX_ROUNDS * FM_GBT_MAX_CLASSES, &ntrees, err);
    if (!rc) rc = string_count(param, "num_parallel_tree", "gbtree_model_param", 1, &parallel, err);
    if (!rc) rc = string_count(param, "size_leaf_vector", "gbtree_model_param", 0, &leafvec, err);
    if (!rc) rc = need_array(model, "trees", "model", &trees, err);
    if (!rc) rc = need_array(model, "tree_info", "model", &tree_info, err);
    if (rc) return rc;
    if (parallel != 1)
        return fm_error_set(err, FM_EFORMAT, "gbtree_model_param: 'num_parallel_tree' must be 1");
    size_t groups = shape->objective == FM_GBT_MULTICLASS ? shape->nclasses : 1;
    if (ntrees == 0 || ntrees % groups != 0)
        return fm_error_set(err, FM_EFORMAT,
                            "%llu trees: a booster needs at least one round of %zu trees",
                            (unsigned long long)ntrees, groups);
    if ((size_t)cJSON_GetArraySize(trees) != ntrees)
        return fm_error_set(err, FM_EFORMAT, "model: %d trees stored, 'num_trees' says %llu",
                            cJSON_GetArraySize(trees), (unsigned long long)ntrees);
    /* Trees are stored round by round, one per class: tree t predicts class t mod groups. */
    size_t t = 0;
    for (const cJSON *c = tree_info->child; c; c = c->next, t++)
        if (t >= ntrees || !cJSON_IsNumber(c) || c->valuedouble != (double)(t % groups)) break;
    if (t != ntrees || cJSON_GetArraySize(tree_info) != (int)ntrees)
        return fm_error_set(err, FM_EFORMAT,
                            "model: 'tree_info' must list the class of each of the %llu trees in "
                            "round order; item %zu does not",
                            (unsigned long long)ntrees, t);
    scratch_t s = {0};
    t = 0;
    for (const cJSON *c = trees->child; c && !rc; c = c->next, t++)
        rc = check_tree(c, t, shape, &s, info, err);
    scratch_free(&s);
    if (rc) return rc;
    info->trees = (size_t)ntrees;
    info->rounds = (int)(ntrees / groups);
    *trees_out = trees;
    return FM_OK;
}

int fm_gbt_check_json(const void *bytes, size_t len, const fm_gbt_shape_t *shape,
                      fm_gbt_info_t *info, fm_gbt_shap_t **shap, fm_error_t *err) {
    memset(info, 0, sizeof *info);
    if (shap) *shap = NULL;
    info->shape = *shape;
    info->nbytes = len;
    const char *text = bytes;
    if (len == 0 || len > FM_GBT_MAX_BYTES)
        return fm_error_set(err, FM_EFORMAT, "%zu bytes (1 to %zu allowed)", len, FM_GBT_MAX_BYTES);
    if (text[0] != '{' || memchr(text, '\0', len))
        return fm_error_set(err, FM_EFORMAT, "not an XGBoost JSON model");
    /* cJSON ends a string at an escaped NUL, XGBoost does not: the two could then read different
     * keys. XGBoost never writes one. */
    if (memmem(text, len, "\\u0000", 6))
        return fm_error_set(err, FM_EFORMAT, "an escaped NUL character in the JSON text");
    cJSON *root = NULL;
    int rc = fm_json_parse(text, len, "XGBoost JSON model", &root, err);
    if (rc) {
        if (err) err->code = FM_EFORMAT;
        return rc == FM_ENOMEM ? rc : FM_EFORMAT;
    }
    const cJSON *learner, *trees = NULL;
    rc = unique_keys(root, err);
    if (!rc) rc = check_version(root, info, err);
    if (!rc) rc = need_object(root, "learner", "model", &learner, err);
    if (!rc) rc = check_learner_params(learner, shape, info, err);
    if (!rc) rc = check_model(learner, shape, info, &trees, err);
    /* The checked trees are copied while their parsed form is at hand. */
    if (!rc && shap) rc = fm_gbt_shap_build(trees, info, shap, err);
    cJSON_Delete(root);
    return rc;
}
