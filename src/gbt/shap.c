/*
 * Exact TreeSHAP (Lundberg, Erion and Lee 2018, Algorithm 2: path-dependent, with EXTEND and
 * UNWIND over the cover fractions) of a booster's trees, computed without XGBoost from a compact
 * read-only copy of the trees built once when the booster is checked. The values are those of
 * XGBoost's "pred_contribs" (same value function, same cover fractions: a child's sum_hessian
 * over its parent's), in double precision.
 *
 * The copy stores each tree in depth-first preorder (the left child follows its parent, the right
 * one is linked), with float thresholds compared against float(x) as XGBoost compares, the
 * default direction for missing values (NaN), each node's cover fraction, and the leaf values.
 *
 * Two ways of explaining a tree:
 * - table trees (every leaf has at most TABLE_FEATURES distinct features on its path, which is
 *   every tree of depth <= 4): a leaf's contribution to each of its k path features depends on the
 *   row only through which of those features x agrees with (a bit per feature, 2^k patterns), so
 *   the k contributions of each pattern, leaf value included, are computed at build time. A row
 *   then costs one comparison per internal node, on a walk that carries the "disagreeing" bits of
 *   the path, and k additions per leaf;
 * - other trees run Algorithm 2 itself, recursing over the tree with the unique-path arrays on the
 *   stack (sized for FM_GBT_MAX_DEPTH); it is also the reference the tables are built with.
 * Tables are given to trees in order until TABLE_BUDGET bytes are spent, so a huge booster costs
 * time, not memory.
 *
 * The bias of each output (base margin plus the trees' expected values) is computed at build time.
 * Boosters with a tree deeper than FM_GBT_MAX_DEPTH (finmaas never trains one) get no copy; the
 * caller then falls back to XGBoost's own contributions.
 */
#include "gbt/gbt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Leaves with at most this many distinct path features get coefficient tables (k * 2^k values:
 * at most 64 doubles a leaf). */
#define TABLE_FEATURES 4
/* Bytes of coefficient tables one booster may hold. */
#define TABLE_BUDGET ((size_t)64 << 20)
/* The unique-path arrays of Algorithm 2 for a tree of depth <= FM_GBT_MAX_DEPTH: a level at tree
 * depth d uses d + 2 elements past its parent's (the root's featureless first element included). */
#define PATH_CAPACITY ((FM_GBT_MAX_DEPTH + 2) * (FM_GBT_MAX_DEPTH + 3) / 2)

/* One node. Internal: threshold in value, split feature, right child (relative to the tree's
 * root; the left child is the next node), default direction, and the position (slot) of the
 * split feature among the distinct features on the path from the root to this node. Leaf: value,
 * right == 0, slot = the number k of distinct features on its path; in table trees feature and
 * coef locate its k features and its coefficients (relative to the tree's). */
typedef struct shap_node {
    double zero;      /* cover over the parent's cover (1 at the root) */
    float value;      /* internal: split threshold; leaf: leaf value */
    uint32_t feature; /* internal: split feature; table leaf: offset of its features */
    uint32_t right;   /* internal: right child; leaf: 0 */
    uint32_t coef;    /* table leaf: offset of its coefficients */
    uint8_t default_left;
    uint8_t slot;
} shap_node_t;

typedef struct shap_tree {
    size_t root;     /* index of its root in nodes */
    size_t coef;     /* start of its coefficients (table trees) */
    size_t features; /* start of its leaves' feature lists (table trees) */
    uint32_t group;  /* the output it adds to */
    int table;
} shap_tree_t;

struct fm_gbt_shap {
    size_t nfeatures, width, ntrees;
    shap_tree_t *trees;
    shap_node_t *nodes;
    double *coef;
    uint32_t *features;
    double *bias; /* [width]: base margin + the expected values of the output's trees */
    size_t nnodes, ncoef, nfeat;
    size_t cap_nodes, cap_coef, cap_feat;
};

/* An element of the unique path: a feature (-1 for the root's featureless first element), the share
 * of the cover reaching it with the feature unknown (zero) and known (one), and the permutation
 * weight. */
typedef struct path_element {
    int feature;
    double zero, one, pweight;
} path_element_t;

/* ---- Algorithm 2: EXTEND, UNWIND, UNWOUND-SUM --------------------------------------------- */

static void path_extend(path_element_t *path, unsigned depth, double zero, double one,
                        int feature) {
    path[depth].feature = feature;
    path[depth].zero = zero;
    path[depth].one = one;
    path[depth].pweight = depth == 0 ? 1.0 : 0.0;
    double inv = 1.0 / (double)(depth + 1);
    for (int i = (int)depth - 1; i >= 0; i--) {
        path[i + 1].pweight += one * path[i].pweight * (double)(i + 1) * inv;
        path[i].pweight = zero * path[i].pweight * (double)(depth - (unsigned)i) * inv;
    }
}

static void path_unwind(path_element_t *path, unsigned depth, unsigned index) {
    double one = path[index].one, zero = path[index].zero;
    double next = path[depth].pweight;
    for (int i = (int)depth - 1; i >= 0; i--) {
        if (one != 0) {
            double tmp = path[i].pweight;
            path[i].pweight = next * (double)(depth + 1) / ((double)(i + 1) * one);
            next =
                tmp - path[i].pweight * zero * (double)(depth - (unsigned)i) / (double)(depth + 1);
        } else {
            path[i].pweight =
                path[i].pweight * (double)(depth + 1) / (zero * (double)(depth - (unsigned)i));
        }
    }
    for (unsigned i = index; i < depth; i++) {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

/* The total permutation weight of the path with element index removed. */
static double path_unwound_sum(const path_element_t *path, unsigned depth, unsigned index) {
    double one = path[index].one, zero = path[index].zero;
    double next = path[depth].pweight, total = 0.0;
    for (int i = (int)depth - 1; i >= 0; i--) {
        if (one != 0) {
            double tmp = next * (double)(depth + 1) / ((double)(i + 1) * one);
            total += tmp;
            next =
                path[i].pweight - tmp * zero * (double)(depth - (unsigned)i) / (double)(depth + 1);
        } else if (zero != 0) {
            total += path[i].pweight / zero * (double)(depth + 1) / (double)(depth - (unsigned)i);
        }
    }
    return total;
}

/* Whether row x takes node n's left branch: NaN follows the default, others compare in float. */
static inline int goes_left(const shap_node_t *n, const double *x) {
    double v = x[n->feature];
    if (isnan(v)) return n->default_left;
    return (float)v < n->value;
}

/* Algorithm 2's RECURSE over the subtree at nodes[i], adding to phi[nfeatures]. */
static void path_recurse(const shap_node_t *nodes, size_t i, const double *x, double *phi,
                         path_element_t *parent, unsigned depth, double zero, double one,
                         int feature) {
    path_element_t *path = parent + depth + 1;
    if (depth > 0) memcpy(path, parent, depth * sizeof *path);
    path_extend(path, depth, zero, one, feature);
    const shap_node_t *n = nodes + i;
    if (n->right == 0) {
        for (unsigned k = 1; k <= depth; k++) {
            double w = path_unwound_sum(path, depth, k);
            phi[path[k].feature] += w * (path[k].one - path[k].zero) * (double)n->value;
        }
        return;
    }
    size_t left = i + 1, right = i + n->right;
    size_t hot = goes_left(n, x) ? left : right, cold = hot == left ? right : left;
    double in_zero = 1.0, in_one = 1.0;
    unsigned k = 0;
    while (k <= depth && path[k].feature != (int)n->feature)
        k++;
    /* A feature split on again higher up: undo that split and redo it here with both fractions. */
    if (k <= depth) {
        in_zero = path[k].zero;
        in_one = path[k].one;
        path_unwind(path, depth, k);
        depth--;
    }
    path_recurse(nodes, hot, x, phi, path, depth + 1, nodes[hot].zero * in_zero, in_one,
                 (int)n->feature);
    path_recurse(nodes, cold, x, phi, path, depth + 1, nodes[cold].zero * in_zero, 0.0,
                 (int)n->feature);
}

static void tree_by_path(const fm_gbt_shap_t *s, const shap_tree_t *t, const double *x,
                         double *phi) {
    path_element_t path[PATH_CAPACITY];
    path_recurse(s->nodes + t->root, 0, x, phi, path, 0, 1.0, 1.0, -1);
}

/* ---- Table trees ---------------------------------------------------------------------------- */

/* A walk over every leaf in preorder carrying, as bits by slot, the path features whose split x
 * does not follow; at a leaf those bits pick the row of its coefficient table. */
static void tree_by_table(const fm_gbt_shap_t *s, const shap_tree_t *t, const double *x,
                          double *phi) {
    const shap_node_t *nodes = s->nodes + t->root;
    const double *coef = s->coef + t->coef;
    const uint32_t *features = s->features + t->features;
    uint32_t stack_node[FM_GBT_MAX_DEPTH + 1], stack_mask[FM_GBT_MAX_DEPTH + 1];
    size_t top = 0;
    uint32_t i = 0, mask = 0;
    for (;;) {
        const shap_node_t *n = nodes + i;
        if (n->right == 0) {
            unsigned k = n->slot;
            const double *c = coef + n->coef + (size_t)mask * k;
            const uint32_t *f = features + n->feature;
            for (unsigned j = 0; j < k; j++)
                phi[f[j]] += c[j];
            if (top == 0) break;
            top--;
            i = stack_node[top];
            mask = stack_mask[top];
            continue;
        }
        uint32_t bit = 1u << n->slot;
        int left = goes_left(n, x);
        stack_node[top] = i + n->right;
        stack_mask[top] = left ? mask | bit : mask;
        top++;
        i = i + 1;
        mask = left ? mask : mask | bit;
    }
}

/* The k coefficients of each of the 2^k patterns of a leaf: for pattern p (bit j set: x does not
 * follow the path's splits on feature j), value * (one_j - zero_j) * UNWOUND-SUM(j) of the path
 * root element (no feature), feature 0, ..., feature k-1 with their cover fractions zero[j] and
 * one_j = !(p >> j & 1).
 */
static void leaf_table(double *out, unsigned k, const double *zero, double value) {
    path_element_t path[TABLE_FEATURES + 1];
    for (uint32_t p = 0; p < (1u << k); p++) {
        path_extend(path, 0, 1.0, 1.0, -1);
        for (unsigned j = 0; j < k; j++)
            path_extend(path, j + 1, zero[j], (p >> j) & 1 ? 0.0 : 1.0, (int)j);
        for (unsigned j = 0; j < k; j++) {
            double w = path_unwound_sum(path, k, j + 1);
            out[p * k + j] = w * (path[j + 1].one - path[j + 1].zero) * value;
        }
    }
}

/* ---- Building the copy ---------------------------------------------------------------------- */

/* One tree's arrays as read from the JSON (checked by check.c before). */
typedef struct json_tree {
    size_t n, cap;
    int32_t *left, *right, *feature;
    uint8_t *default_left;
    float *cond, *cover;
} json_tree_t;

static void json_tree_free(json_tree_t *j) {
    free(j->left);
    free(j->right);
    free(j->feature);
    free(j->default_left);
    free(j->cond);
    free(j->cover);
}

static int json_tree_read(json_tree_t *j, const cJSON *tree) {
    const cJSON *left = cJSON_GetObjectItemCaseSensitive(tree, "left_children");
    size_t n = (size_t)cJSON_GetArraySize(left);
    if (n > j->cap) {
        json_tree_free(j);
        memset(j, 0, sizeof *j);
        j->left = malloc(n * sizeof *j->left);
        j->right = malloc(n * sizeof *j->right);
        j->feature = malloc(n * sizeof *j->feature);
        j->default_left = malloc(n);
        j->cond = malloc(n * sizeof *j->cond);
        j->cover = malloc(n * sizeof *j->cover);
        if (!j->left || !j->right || !j->feature || !j->default_left || !j->cond || !j->cover)
            return FM_ENOMEM;
        j->cap = n;
    }
    j->n = n;
    static const char *const keys[] = {"left_children", "right_children",   "split_indices",
                                       "default_left",  "split_conditions", "sum_hessian"};
    for (size_t a = 0; a < 6; a++) {
        size_t i = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(tree, keys[a])) {
            if (i >= n) break;
            double v = c->valuedouble;
            switch (a) {
            case 0:
                j->left[i] = (int32_t)v;
                break;
            case 1:
                j->right[i] = (int32_t)v;
                break;
            case 2:
                j->feature[i] = (int32_t)v;
                break;
            case 3:
                j->default_left[i] = v != 0;
                break;
            case 4:
                j->cond[i] = (float)v;
                break;
            default:
                j->cover[i] = (float)v;
                break;
            }
            i++;
        }
    }
    return FM_OK;
}

/* What a tree needs: distinct features on the longest path, leaves, table values. */
typedef struct tree_stats {
    unsigned kmax;
    size_t leaves, nodes, table;
} tree_stats_t;

static void tree_measure(const json_tree_t *j, int32_t node, int32_t *path, unsigned k,
                         tree_stats_t *st) {
    st->nodes++;
    if (j->left[node] < 0) {
        st->leaves++;
        if (k > st->kmax) st->kmax = k;
        if (k <= TABLE_FEATURES) st->table += (size_t)k << k;
        return;
    }
    unsigned s = 0;
    while (s < k && path[s] != j->feature[node])
        s++;
    path[s] = j->feature[node];
    unsigned k2 = s == k ? k + 1 : k;
    tree_measure(j, j->left[node], path, k2, st);
    tree_measure(j, j->right[node], path, k2, st);
}

/* Where the build of one tree writes. */
typedef struct tree_build {
    const json_tree_t *j;
    fm_gbt_shap_t *s;
    shap_tree_t *t;
    size_t next; /* next node, relative to the tree's root */
    size_t coef, feat;
    double expected; /* sum over leaves of value x product of cover fractions */
} tree_build_t;

/* Copies the subtree at JSON node `node` in preorder; path[0..k) are the distinct features above
 * it with their products of cover fractions in zero[], reach the product of all fractions. */
static void tree_copy(tree_build_t *b, int32_t node, int32_t parent, int32_t *path, double *zero,
                      unsigned k, double reach) {
    const json_tree_t *j = b->j;
    size_t at = b->next++;
    shap_node_t *n = b->s->nodes + b->t->root + at;
    memset(n, 0, sizeof *n);
    /* XGBoost divides in single precision; so does this, then keeps the quotient in double. */
    n->zero = parent < 0 ? 1.0 : (double)(j->cover[node] / j->cover[parent]);
    if (j->left[node] < 0) {
        n->value = j->cond[node];
        n->slot = (uint8_t)k;
        b->expected += reach * (double)n->value;
        if (b->t->table) {
            n->feature = (uint32_t)b->feat;
            n->coef = (uint32_t)b->coef;
            for (unsigned i = 0; i < k; i++)
                b->s->features[b->t->features + b->feat + i] = (uint32_t)path[i];
            leaf_table(b->s->coef + b->t->coef + b->coef, k, zero, (double)n->value);
            b->feat += k;
            b->coef += (size_t)k << k;
        }
        return;
    }
    n->value = j->cond[node];
    n->feature = (uint32_t)j->feature[node];
    n->default_left = j->default_left[node];
    unsigned s = 0;
    while (s < k && path[s] != j->feature[node])
        s++;
    n->slot = (uint8_t)s;
    path[s] = j->feature[node];
    unsigned k2 = s == k ? k + 1 : k;
    double before = s < k ? zero[s] : 1.0;
    int32_t kids[2] = {j->left[node], j->right[node]};
    for (int c = 0; c < 2; c++) {
        if (c == 1) n->right = (uint32_t)(b->next - at);
        double frac = (double)(j->cover[kids[c]] / j->cover[node]);
        zero[s] = before * frac;
        tree_copy(b, kids[c], node, path, zero, k2, reach * frac);
    }
    zero[s] = before;
}

static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return FM_OK;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q) return FM_ENOMEM;
    *p = q;
    *cap = c;
    return FM_OK;
}

void fm_gbt_shap_free(fm_gbt_shap_t *s) {
    if (!s) return;
    free(s->trees);
    free(s->nodes);
    free(s->coef);
    free(s->features);
    free(s->bias);
    free(s);
}

int fm_gbt_shap_build(const cJSON *trees, const fm_gbt_info_t *info, fm_gbt_shap_t **out,
                      fm_error_t *err) {
    *out = NULL;
    if (info->max_depth > FM_GBT_MAX_DEPTH) return FM_OK;
    size_t width = info->shape.objective == FM_GBT_MULTICLASS ? info->shape.nclasses : 1;
    fm_gbt_shap_t *s = calloc(1, sizeof *s);
    json_tree_t j = {0};
    int rc = FM_OK;
    if (!s || !(s->trees = calloc(info->trees ? info->trees : 1, sizeof *s->trees)) ||
        !(s->bias = calloc(width, sizeof *s->bias)))
        rc = FM_ENOMEM;
    if (!rc) {
        s->nfeatures = info->shape.nfeatures;
        s->width = width;
        s->ntrees = info->trees;
    }
    /* XGBoost's base score is a probability for the logistic objective; its margin is the logit. */
    double base = info->base_score;
    if (info->shape.objective == FM_GBT_BINARY) base = -log(1.0 / base - 1.0);
    for (size_t k = 0; !rc && k < width; k++)
        s->bias[k] = base;
    size_t table_bytes = 0, t = 0;
    const cJSON *tree;
    cJSON_ArrayForEach(tree, trees) {
        if (rc || t >= s->ntrees) break;
        if ((rc = json_tree_read(&j, tree))) break;
        int32_t path[FM_GBT_MAX_DEPTH + 1];
        double zero[FM_GBT_MAX_DEPTH + 1];
        tree_stats_t st = {0};
        tree_measure(&j, 0, path, 0, &st);
        shap_tree_t *st_tree = s->trees + t;
        st_tree->group = (uint32_t)(t % width);
        st_tree->root = s->nnodes;
        st_tree->table =
            st.kmax <= TABLE_FEATURES && table_bytes + st.table * sizeof(double) <= TABLE_BUDGET;
        size_t feats = st.table; /* k per leaf, bounded by k 2^k */
        if ((rc = grow((void **)&s->nodes, &s->cap_nodes, s->nnodes + st.nodes, sizeof *s->nodes)))
            break;
        if (st_tree->table) {
            table_bytes += st.table * sizeof(double);
            st_tree->coef = s->ncoef;
            st_tree->features = s->nfeat;
            if ((rc =
                     grow((void **)&s->coef, &s->cap_coef, s->ncoef + st.table, sizeof *s->coef)) ||
                (rc = grow((void **)&s->features, &s->cap_feat, s->nfeat + feats + 1,
                           sizeof *s->features)))
                break;
        }
        tree_build_t b = {.j = &j, .s = s, .t = st_tree};
        tree_copy(&b, 0, -1, path, zero, 0, 1.0);
        s->nnodes += b.next;
        s->ncoef += b.coef;
        s->nfeat += b.feat;
        s->bias[st_tree->group] += b.expected;
        t++;
    }
    json_tree_free(&j);
    /* check.c counted the trees: fewer here would be a bug, reported rather than explained. */
    if (!rc && t != info->trees)
        rc = fm_error_set(err, FM_ESTATE, "TreeSHAP trees: %zu of %zu trees read", t, info->trees);
    else if (rc)
        rc = fm_error_set(err, FM_ENOMEM, "out of memory for the TreeSHAP trees");
    if (rc) {
        fm_gbt_shap_free(s);
        return rc;
    }
    *out = s;
    return FM_OK;
}

/* ---- Explaining a row ----------------------------------------------------------------------- */

void fm_gbt_shap_row(const fm_gbt_shap_t *s, const double *x, double *phi, int by_path) {
    size_t stride = s->nfeatures + 1;
    memset(phi, 0, s->width * stride * sizeof *phi);
    for (size_t k = 0; k < s->width; k++)
        phi[k * stride + s->nfeatures] = s->bias[k];
    for (size_t t = 0; t < s->ntrees; t++) {
        const shap_tree_t *tree = s->trees + t;
        double *out = phi + (size_t)tree->group * stride;
        if (tree->table && !by_path)
            tree_by_table(s, tree, x, out);
        else
            tree_by_path(s, tree, x, out);
    }
}

int fm_gbt_shap(const fm_gbt_t *gbt, const double *x, double *phi, fm_error_t *err) {
    if (!gbt->shap) return fm_gbt_contributions(gbt, x, 1, phi, err);
    fm_gbt_shap_row(gbt->shap, x, phi, 0);
    return FM_OK;
}
