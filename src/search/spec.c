/*
 * The search specification: parsing and validating its JSON (every field, with errors that name
 * the field and the value), the default space, and the candidates the search will try. The
 * candidates are fixed here, at parse time, from the space, the strategy, the budget and the
 * search seed, so that a specification always means the same search.
 */
#include "core/buf.h"
#include "core/json.h"
#include "search/search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const key_names[KEY_COUNT] = {
    "family", "hidden", "activation", "optimizer", "learning_rate", "l2",
    "batch",  "epochs", "max_depth",  "eta",       "rounds",
};

const char *search_key_name(search_key_t key) {
    return key >= 0 && key < KEY_COUNT ? key_names[key] : "?";
}

/* Bounds of the numeric keys; integer keys must hold whole numbers. */
typedef struct number_rule {
    double min, max;
    int integer;
} number_rule_t;

static number_rule_t number_rule(search_key_t key) {
    switch (key) {
    case KEY_LEARNING_RATE:
        return (number_rule_t){1e-12, 10.0, 0};
    case KEY_L2:
        return (number_rule_t){0.0, 1e6, 0};
    case KEY_BATCH:
        return (number_rule_t){1, 1 << 20, 1};
    case KEY_EPOCHS:
        return (number_rule_t){1, 1000000, 1};
    case KEY_MAX_DEPTH:
        return (number_rule_t){1, 32, 1};
    case KEY_ETA:
        return (number_rule_t){1e-6, 1.0, 0};
    case KEY_ROUNDS:
        return (number_rule_t){1, 100000, 1};
    default:
        return (number_rule_t){0, 0, 0};
    }
}

static int key_is_number(search_key_t key) {
    return key >= KEY_LEARNING_RATE && key <= KEY_ROUNDS;
}

static int is_linear_family(const char *family) {
    return !strcmp(family, "logistic") || !strcmp(family, "linear") || !strcmp(family, "softmax");
}

int search_key_used(const char *family, search_key_t key) {
    if (key == KEY_FAMILY) return 1;
    if (!strcmp(family, "gbt")) return key == KEY_MAX_DEPTH || key == KEY_ETA || key == KEY_ROUNDS;
    if (key == KEY_MAX_DEPTH || key == KEY_ETA || key == KEY_ROUNDS) return 0;
    if (key == KEY_HIDDEN || key == KEY_ACTIVATION) return !strcmp(family, "mlp");
    return 1;
}

const char *search_point_family(const search_point_t *p, fm_task_t task) {
    return is_linear_family(p->family) ? fm_train_default_family(task) : p->family;
}

/* ---- Metrics by name ---------------------------------------------------------------------- */

static const char *const metric_names[] = {"auc", "accuracy", "logloss", "rmse", "r2"};

const char *search_metric_name(search_metric_t metric) {
    return metric >= METRIC_AUC && metric <= METRIC_R2 ? metric_names[metric] : "default";
}

int search_metric_parse(const char *text, search_metric_t *out) {
    for (int m = METRIC_AUC; m <= METRIC_R2; m++)
        if (!strcmp(text, metric_names[m])) {
            *out = (search_metric_t)m;
            return FM_OK;
        }
    return FM_EINVAL;
}

int search_metric_higher_is_better(search_metric_t metric) {
    return metric == METRIC_AUC || metric == METRIC_ACCURACY || metric == METRIC_R2;
}

int search_metric_fits(search_metric_t metric, fm_task_t task) {
    switch (metric) {
    case METRIC_AUC:
        return task == FM_TASK_BINARY;
    case METRIC_ACCURACY:
    case METRIC_LOGLOSS:
        return task != FM_TASK_REGRESSION;
    case METRIC_RMSE:
    case METRIC_R2:
        return task == FM_TASK_REGRESSION;
    default:
        return 0;
    }
}

search_metric_t search_metric_default(fm_task_t task) {
    switch (task) {
    case FM_TASK_BINARY:
        return METRIC_AUC;
    case FM_TASK_MULTICLASS:
        return METRIC_ACCURACY;
    case FM_TASK_REGRESSION:
        return METRIC_RMSE;
    }
    return METRIC_AUC;
}

/* ---- Error text --------------------------------------------------------------------------- */

/* A short rendering of a JSON value for an error message. */
static const char *show(const cJSON *item, char *buf, size_t size) {
    char *text = item ? cJSON_PrintUnformatted(item) : NULL;
    if (!text) {
        snprintf(buf, size, "%s", item ? "(value)" : "(missing)");
        return buf;
    }
    size_t n = strlen(text);
    if (n > 60)
        snprintf(buf, size, "%.57s...", text);
    else
        snprintf(buf, size, "%s", text);
    free(text);
    return buf;
}

static int field_error(fm_error_t *err, const char *path, const cJSON *item, const char *fmt,
                       const char *what) {
    char shown[80];
    char message[160];
    snprintf(message, sizeof message, fmt, what);
    return fm_error_set(err, FM_EINVAL, "%s: %s, got %s", path, message,
                        show(item, shown, sizeof shown));
}

/* Checks that obj has only keys from allowed[0..n). */
static int check_keys(const cJSON *obj, const char *path, const char *const *allowed, size_t n,
                      fm_error_t *err) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        size_t k = 0;
        while (k < n && strcmp(it->string, allowed[k]) != 0)
            k++;
        if (k == n) {
            char names[400] = "";
            for (size_t j = 0; j < n; j++) {
                strncat(names, allowed[j], sizeof names - strlen(names) - 1);
                if (j + 1 < n) strncat(names, ", ", sizeof names - strlen(names) - 1);
            }
            return fm_error_set(err, FM_EINVAL, "%s%s'%s' is not a known field (fields: %s)", path,
                                *path ? ": " : "", it->string, names);
        }
    }
    return FM_OK;
}

/* An optional member: NULL when absent or JSON null. */
static const cJSON *member(const cJSON *obj, const char *key) {
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return it && !cJSON_IsNull(it) ? it : NULL;
}

static int read_number(const cJSON *item, const char *path, double min, double max, int integer,
                       double *out, fm_error_t *err) {
    char range[96];
    *out = 0.0;
    snprintf(range, sizeof range, "%s in [%.17g, %.17g]", integer ? "an integer" : "a number", min,
             max);
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return field_error(err, path, item, "expected %s", range);
    double v = item->valuedouble;
    if (integer && v != floor(v)) return field_error(err, path, item, "expected %s", range);
    if (!(v >= min && v <= max)) return field_error(err, path, item, "expected %s", range);
    *out = v;
    return FM_OK;
}

static int read_int(const cJSON *item, const char *path, double min, double max, long long *out,
                    fm_error_t *err) {
    double v;
    int rc = read_number(item, path, min, max, 1, &v, err);
    *out = (long long)v;
    return rc;
}

static int read_string(const cJSON *item, const char *path, size_t max_len, const char **out,
                       fm_error_t *err) {
    char limit[64];
    *out = "";
    snprintf(limit, sizeof limit, "a string of 1 to %zu bytes", max_len);
    if (!cJSON_IsString(item) || !item->valuestring[0] || strlen(item->valuestring) > max_len)
        return field_error(err, path, item, "expected %s", limit);
    *out = item->valuestring;
    return FM_OK;
}

static char *dup_string(const char *s, fm_error_t *err) {
    char *d = strdup(s);
    if (!d) fm_error_set(err, FM_ENOMEM, "out of memory");
    return d;
}

/* ---- The space ----------------------------------------------------------------------------- */

static int parse_family(const cJSON *item, const char *path, char *out, fm_error_t *err) {
    static const char *const families[] = {"logistic", "linear", "softmax", "mlp", "gbt"};
    if (cJSON_IsString(item))
        for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
            if (!strcmp(item->valuestring, families[i])) {
                snprintf(out, SEARCH_FAMILY_SIZE, "%s", families[i]);
                return FM_OK;
            }
    return field_error(err, path, item, "expected %s",
                       "one of \"logistic\", \"linear\", \"softmax\", \"mlp\", \"gbt\"");
}

static int parse_hidden(const cJSON *item, const char *path, int *widths, int *count,
                        fm_error_t *err) {
    char what[96];
    snprintf(what, sizeof what, "layer widths: an array of 1 to %d integers in [1, 65536]",
             FM_NET_MAX_LAYERS - 1);
    if (cJSON_IsNumber(item)) {
        long long v;
        int rc = read_int(item, path, 1, 65536, &v, err);
        if (rc) return rc;
        widths[0] = (int)v;
        *count = 1;
        return FM_OK;
    }
    int n = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : 0;
    if (n < 1 || n > FM_NET_MAX_LAYERS - 1)
        return field_error(err, path, item, "expected %s", what);
    int i = 0;
    for (const cJSON *w = item->child; w; w = w->next, i++) {
        if (!cJSON_IsNumber(w) || w->valuedouble != floor(w->valuedouble) ||
            !(w->valuedouble >= 1 && w->valuedouble <= 65536))
            return field_error(err, path, item, "expected %s", what);
        widths[i] = (int)w->valuedouble;
    }
    *count = n;
    return FM_OK;
}

static int parse_code(search_key_t key, const cJSON *item, const char *path, int *out,
                      fm_error_t *err) {
    if (key == KEY_ACTIVATION) {
        fm_activation_t a;
        if (!cJSON_IsString(item) || fm_activation_parse(item->valuestring, &a) ||
            a == FM_ACT_SOFTMAX)
            return field_error(err, path, item, "expected %s",
                               "one of \"relu\", \"tanh\", \"sigmoid\", \"identity\"");
        *out = (int)a;
        return FM_OK;
    }
    fm_optimizer_kind_t k;
    if (!cJSON_IsString(item) || fm_optimizer_parse(item->valuestring, &k))
        return field_error(err, path, item, "expected %s", "one of \"adam\", \"sgd\", \"gd\"");
    *out = (int)k;
    return FM_OK;
}

/* Parses one value of key into slot i of dim. */
static int parse_value(search_key_t key, const cJSON *item, const char *path, search_dim_t *dim,
                       size_t i, fm_error_t *err) {
    if (key == KEY_FAMILY) return parse_family(item, path, dim->family[i], err);
    if (key == KEY_HIDDEN) return parse_hidden(item, path, dim->hidden[i], &dim->nhidden[i], err);
    if (key == KEY_ACTIVATION || key == KEY_OPTIMIZER)
        return parse_code(key, item, path, &dim->code[i], err);
    number_rule_t r = number_rule(key);
    return read_number(item, path, r.min, r.max, r.integer, &dim->number[i], err);
}

static int same_value(search_key_t key, const search_dim_t *d, size_t a, size_t b) {
    switch (key) {
    case KEY_FAMILY:
        return !strcmp(d->family[a], d->family[b]);
    case KEY_HIDDEN:
        return d->nhidden[a] == d->nhidden[b] &&
               !memcmp(d->hidden[a], d->hidden[b], (size_t)d->nhidden[a] * sizeof(int));
    case KEY_ACTIVATION:
    case KEY_OPTIMIZER:
        return d->code[a] == d->code[b];
    default:
        return d->number[a] == d->number[b];
    }
}

static int parse_range(search_key_t key, const cJSON *item, const char *path, search_dim_t *dim,
                       fm_error_t *err) {
    static const char *const range_keys[] = {"min", "max", "log"};
    int rc = check_keys(item, path, range_keys, 3, err);
    if (rc) return rc;
    number_rule_t r = number_rule(key);
    char sub[128];
    snprintf(sub, sizeof sub, "%s.min", path);
    if ((rc = read_number(cJSON_GetObjectItemCaseSensitive(item, "min"), sub, r.min, r.max,
                          r.integer, &dim->min, err)))
        return rc;
    snprintf(sub, sizeof sub, "%s.max", path);
    if ((rc = read_number(cJSON_GetObjectItemCaseSensitive(item, "max"), sub, r.min, r.max,
                          r.integer, &dim->max, err)))
        return rc;
    if (dim->max < dim->min)
        return fm_error_set(err, FM_EINVAL, "%s: max %.17g is below min %.17g", path, dim->max,
                            dim->min);
    const cJSON *log = member(item, "log");
    if (log && !cJSON_IsBool(log)) {
        snprintf(sub, sizeof sub, "%s.log", path);
        return field_error(err, sub, log, "expected %s", "true or false");
    }
    dim->log = log && cJSON_IsTrue(log);
    if (dim->log && !(dim->min > 0))
        return fm_error_set(err, FM_EINVAL, "%s: a log range needs min > 0, got %.17g", path,
                            dim->min);
    dim->is_range = 1;
    dim->count = 1;
    return FM_OK;
}

/* Parses space[key] (a list, or a range object) into dim. */
static int parse_dim(search_key_t key, const cJSON *item, int ranges_allowed, search_dim_t *dim,
                     fm_error_t *err) {
    char path[64];
    snprintf(path, sizeof path, "space.%s", key_names[key]);
    memset(dim, 0, sizeof *dim);
    if (cJSON_IsObject(item)) {
        if (!key_is_number(key))
            return field_error(err, path, item, "expected %s", "a non-empty array of values");
        if (!ranges_allowed)
            return fm_error_set(err, FM_EINVAL,
                                "%s: a range ({\"min\", \"max\"}) needs search.strategy "
                                "\"random\"",
                                path);
        return parse_range(key, item, path, dim, err);
    }
    int n = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : 0;
    if (n < 1 || n > SEARCH_MAX_VALUES) {
        char what[64];
        snprintf(what, sizeof what, "a non-empty array of at most %d values%s", SEARCH_MAX_VALUES,
                 key_is_number(key) ? " or a range object" : "");
        return field_error(err, path, item, "expected %s", what);
    }
    size_t i = 0;
    for (const cJSON *v = item->child; v; v = v->next, i++) {
        char vpath[80];
        snprintf(vpath, sizeof vpath, "%s[%zu]", path, i);
        int rc = parse_value(key, v, vpath, dim, i, err);
        if (rc) return rc;
        for (size_t j = 0; j < i; j++)
            if (same_value(key, dim, i, j))
                return field_error(err, vpath, v, "%s", "each value may be listed once");
    }
    dim->count = i;
    return FM_OK;
}

static void dim_numbers(search_dim_t *d, const double *v, size_t n) {
    memset(d, 0, sizeof *d);
    d->count = n;
    memcpy(d->number, v, n * sizeof *v);
}

/* The default space (search.h lists it). */
static void default_dim(search_key_t key, search_dim_t *d) {
    memset(d, 0, sizeof *d);
    switch (key) {
    case KEY_FAMILY:
        d->count = 2;
        strcpy(d->family[0], "logistic");
        strcpy(d->family[1], "mlp");
        break;
    case KEY_HIDDEN:
        d->count = 3;
        d->hidden[0][0] = 16;
        d->nhidden[0] = 1;
        d->hidden[1][0] = 32;
        d->hidden[1][1] = 16;
        d->nhidden[1] = 2;
        d->hidden[2][0] = 64;
        d->hidden[2][1] = 32;
        d->nhidden[2] = 2;
        break;
    case KEY_ACTIVATION:
        d->count = 2;
        d->code[0] = FM_ACT_RELU;
        d->code[1] = FM_ACT_TANH;
        break;
    case KEY_OPTIMIZER:
        d->count = 1;
        d->code[0] = FM_OPT_ADAM;
        break;
    case KEY_LEARNING_RATE:
        dim_numbers(d, (const double[]){0.0005, 0.001, 0.003}, 3);
        break;
    case KEY_L2:
        dim_numbers(d, (const double[]){1e-4, 1e-3, 1e-2}, 3);
        break;
    case KEY_BATCH:
        dim_numbers(d, (const double[]){32, 128}, 2);
        break;
    case KEY_EPOCHS:
        dim_numbers(d, (const double[]){200}, 1);
        break;
    case KEY_MAX_DEPTH:
        dim_numbers(d, (const double[]){3, 4, 6}, 3);
        break;
    case KEY_ETA:
        dim_numbers(d, (const double[]){0.03, 0.05, 0.1}, 3);
        break;
    case KEY_ROUNDS:
        dim_numbers(d, (const double[]){100, 300}, 2);
        break;
    default:
        break;
    }
}

/* The fixed model's default for a key: fm_train's defaults. */
static void model_default_dim(search_key_t key, search_dim_t *d) {
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    memset(d, 0, sizeof *d);
    d->count = 1;
    switch (key) {
    case KEY_FAMILY:
        strcpy(d->family[0], "logistic");
        break;
    case KEY_HIDDEN:
        memcpy(d->hidden[0], o.hidden, sizeof o.hidden);
        d->nhidden[0] = o.nhidden;
        break;
    case KEY_ACTIVATION:
        d->code[0] = (int)o.activation;
        break;
    case KEY_OPTIMIZER:
        d->code[0] = (int)o.optimizer.kind;
        break;
    case KEY_LEARNING_RATE:
        d->number[0] = o.optimizer.lr;
        break;
    case KEY_L2:
        d->number[0] = o.l2;
        break;
    case KEY_BATCH:
        d->number[0] = o.batch;
        break;
    case KEY_EPOCHS:
        d->number[0] = o.epochs;
        break;
    case KEY_MAX_DEPTH:
        d->number[0] = o.gbt.max_depth;
        break;
    case KEY_ETA:
        d->number[0] = o.gbt.eta;
        break;
    case KEY_ROUNDS:
        d->number[0] = o.gbt.rounds;
        break;
    default:
        break;
    }
}

static int parse_space(const cJSON *space, int ranges_allowed, search_dim_t *dims,
                       fm_error_t *err) {
    if (space && !cJSON_IsObject(space))
        return field_error(err, "space", space, "expected %s", "an object");
    if (space) {
        int rc = check_keys(space, "space", key_names, KEY_COUNT, err);
        if (rc) return rc;
    }
    for (int k = 0; k < KEY_COUNT; k++) {
        const cJSON *item = member(space, key_names[k]);
        if (!item) {
            default_dim((search_key_t)k, &dims[k]);
            continue;
        }
        int rc = parse_dim((search_key_t)k, item, ranges_allowed, &dims[k], err);
        if (rc) return rc;
    }
    return FM_OK;
}

static int parse_model(const cJSON *model, search_dim_t *dims, fm_error_t *err) {
    if (!cJSON_IsObject(model)) return field_error(err, "model", model, "expected %s", "an object");
    int rc = check_keys(model, "model", key_names, KEY_COUNT, err);
    if (rc) return rc;
    for (int k = 0; k < KEY_COUNT; k++) {
        search_key_t key = (search_key_t)k;
        model_default_dim(key, &dims[k]);
        const cJSON *item = member(model, key_names[k]);
        if (!item) continue;
        char path[64];
        snprintf(path, sizeof path, "model.%s", key_names[k]);
        if ((rc = parse_value(key, item, path, &dims[k], 0, err))) return rc;
    }
    return FM_OK;
}

/* ---- Candidates ---------------------------------------------------------------------------- */

/* A point with fm_train's defaults for every key. */
static void point_defaults(search_point_t *p) {
    search_dim_t d;
    memset(p, 0, sizeof *p);
    strcpy(p->family, "logistic");
    model_default_dim(KEY_HIDDEN, &d);
    memcpy(p->hidden, d.hidden[0], sizeof p->hidden);
    p->nhidden = d.nhidden[0];
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    p->activation = o.activation;
    p->optimizer = o.optimizer.kind;
    p->learning_rate = o.optimizer.lr;
    p->l2 = o.l2;
    p->batch = o.batch;
    p->epochs = o.epochs;
    p->max_depth = o.gbt.max_depth;
    p->rounds = o.gbt.rounds;
    p->eta = o.gbt.eta;
}

static void set_number(search_point_t *p, search_key_t key, double v) {
    switch (key) {
    case KEY_LEARNING_RATE:
        p->learning_rate = v;
        break;
    case KEY_L2:
        p->l2 = v;
        break;
    case KEY_BATCH:
        p->batch = (int)v;
        break;
    case KEY_EPOCHS:
        p->epochs = (int)v;
        break;
    case KEY_MAX_DEPTH:
        p->max_depth = (int)v;
        break;
    case KEY_ETA:
        p->eta = v;
        break;
    case KEY_ROUNDS:
        p->rounds = (int)v;
        break;
    default:
        break;
    }
}

/* Sets key of p to value i of dim (a list). */
static void set_choice(search_point_t *p, search_key_t key, const search_dim_t *d, size_t i) {
    switch (key) {
    case KEY_FAMILY:
        memcpy(p->family, d->family[i], sizeof p->family);
        break;
    case KEY_HIDDEN:
        memset(p->hidden, 0, sizeof p->hidden);
        memcpy(p->hidden, d->hidden[i], (size_t)d->nhidden[i] * sizeof(int));
        p->nhidden = d->nhidden[i];
        break;
    case KEY_ACTIVATION:
        p->activation = (fm_activation_t)d->code[i];
        break;
    case KEY_OPTIMIZER:
        p->optimizer = (fm_optimizer_kind_t)d->code[i];
        break;
    default:
        set_number(p, key, d->number[i]);
    }
}

/* A value drawn from a range: integers uniformly among the whole numbers in it, real numbers
 * rounded to three significant digits so the leaderboard stays readable. */
static double draw_range(const search_dim_t *d, int integer, fm_rng_t *rng) {
    double u = fm_rng_uniform(rng);
    double v = d->log ? exp(log(d->min) + u * (log(d->max) - log(d->min)))
                      : d->min + u * (d->max - d->min);
    if (integer) {
        if (!d->log) return d->min + (double)fm_rng_below(rng, (uint64_t)(d->max - d->min) + 1);
        v = floor(v + 0.5);
    } else {
        char text[32];
        snprintf(text, sizeof text, "%.3g", v);
        v = strtod(text, NULL);
    }
    if (v < d->min) v = d->min;
    if (v > d->max) v = d->max;
    return v;
}

static int same_point(const search_point_t *a, const search_point_t *b) {
    if (strcmp(a->family, b->family) != 0) return 0;
    for (int k = 1; k < KEY_COUNT; k++) {
        if (!search_key_used(a->family, (search_key_t)k)) continue;
        switch ((search_key_t)k) {
        case KEY_HIDDEN:
            if (a->nhidden != b->nhidden ||
                memcmp(a->hidden, b->hidden, (size_t)a->nhidden * sizeof(int)))
                return 0;
            break;
        case KEY_ACTIVATION:
            if (a->activation != b->activation) return 0;
            break;
        case KEY_OPTIMIZER:
            if (a->optimizer != b->optimizer) return 0;
            break;
        case KEY_LEARNING_RATE:
            if (a->learning_rate != b->learning_rate) return 0;
            break;
        case KEY_L2:
            if (a->l2 != b->l2) return 0;
            break;
        case KEY_BATCH:
            if (a->batch != b->batch) return 0;
            break;
        case KEY_EPOCHS:
            if (a->epochs != b->epochs) return 0;
            break;
        case KEY_MAX_DEPTH:
            if (a->max_depth != b->max_depth) return 0;
            break;
        case KEY_ETA:
            if (a->eta != b->eta) return 0;
            break;
        case KEY_ROUNDS:
            if (a->rounds != b->rounds) return 0;
            break;
        default:
            break;
        }
    }
    return 1;
}

/* Size of one family's sub-grid (saturating at cap), 0 when one of its keys is a range. */
static size_t family_grid(const search_dim_t *dims, const char *family, size_t cap) {
    size_t size = 1;
    for (int k = 1; k < KEY_COUNT; k++) {
        if (!search_key_used(family, (search_key_t)k)) continue;
        if (dims[k].is_range) return 0;
        size = size > cap / dims[k].count ? cap : size * dims[k].count;
    }
    return size;
}

/* Decodes grid point index into p (index < the grid's size). */
static void grid_point(const search_dim_t *dims, size_t index, size_t cap, search_point_t *p) {
    point_defaults(p);
    for (size_t f = 0; f < dims[KEY_FAMILY].count; f++) {
        size_t sub = family_grid(dims, dims[KEY_FAMILY].family[f], cap);
        if (index >= sub) {
            index -= sub;
            continue;
        }
        set_choice(p, KEY_FAMILY, &dims[KEY_FAMILY], f);
        for (int k = KEY_COUNT - 1; k >= 1; k--) {
            if (!search_key_used(p->family, (search_key_t)k)) continue;
            set_choice(p, (search_key_t)k, &dims[k], index % dims[k].count);
            index /= dims[k].count;
        }
        return;
    }
}

static int compare_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* m distinct indices below n (Floyd's algorithm), sorted. */
static void sample_indices(size_t n, size_t m, fm_rng_t *rng, size_t *out) {
    size_t count = 0;
    for (size_t j = n - m; j < n; j++) {
        size_t t = (size_t)fm_rng_below(rng, (uint64_t)j + 1);
        int seen = 0;
        for (size_t i = 0; i < count && !seen; i++)
            seen = out[i] == t;
        out[count++] = seen ? j : t;
    }
    qsort(out, m, sizeof *out, compare_size);
}

static void random_point(const search_dim_t *dims, fm_rng_t *rng, search_point_t *p) {
    point_defaults(p);
    set_choice(p, KEY_FAMILY, &dims[KEY_FAMILY], fm_rng_below(rng, dims[KEY_FAMILY].count));
    for (int k = 1; k < KEY_COUNT; k++) {
        search_key_t key = (search_key_t)k;
        if (!search_key_used(p->family, key)) continue;
        if (dims[k].is_range)
            set_number(p, key, draw_range(&dims[k], number_rule(key).integer, rng));
        else
            set_choice(p, key, &dims[k], fm_rng_below(rng, dims[k].count));
    }
}

static int make_candidates(fm_search_spec_t *s, fm_error_t *err) {
    const size_t cap = (size_t)1 << 40;
    size_t grid = 0;
    int finite = 1;
    for (size_t f = 0; f < s->dims[KEY_FAMILY].count; f++) {
        size_t sub = family_grid(s->dims, s->dims[KEY_FAMILY].family[f], cap);
        if (sub == 0) finite = 0;
        grid = grid + sub > cap ? cap : grid + sub;
    }
    size_t n = finite && grid <= s->budget ? grid : s->budget;
    s->candidates = calloc(n, sizeof *s->candidates);
    if (!s->candidates) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_rng_t rng;
    fm_rng_seed(&rng, s->search_seed);
    if (finite && (grid <= s->budget || s->strategy == STRATEGY_GRID)) {
        size_t *index = malloc(n * sizeof *index);
        if (!index) return fm_error_set(err, FM_ENOMEM, "out of memory");
        if (grid <= s->budget)
            for (size_t i = 0; i < n; i++)
                index[i] = i;
        else
            sample_indices(grid, n, &rng, index);
        for (size_t i = 0; i < n; i++)
            grid_point(s->dims, index[i], cap, &s->candidates[i]);
        free(index);
        s->ncandidates = n;
        return FM_OK;
    }
    /* Random draws, rejecting repeats. A family whose own sub-grid is used up keeps being drawn
     * and rejected, so the attempts are bounded; the grid order fills what is left. */
    size_t count = 0;
    for (size_t attempt = 0; count < n && attempt < 1000 * n; attempt++) {
        search_point_t p;
        random_point(s->dims, &rng, &p);
        int repeat = 0;
        for (size_t i = 0; i < count && !repeat; i++)
            repeat = same_point(&p, &s->candidates[i]);
        if (!repeat) s->candidates[count++] = p;
    }
    for (size_t g = 0; finite && count < n && g < grid; g++) {
        search_point_t p;
        grid_point(s->dims, g, cap, &p);
        int repeat = 0;
        for (size_t i = 0; i < count && !repeat; i++)
            repeat = same_point(&p, &s->candidates[i]);
        if (!repeat) s->candidates[count++] = p;
    }
    s->ncandidates = count;
    return FM_OK;
}

/* ---- The top level ------------------------------------------------------------------------- */

static int parse_names(const cJSON *item, const char *path, char ***out, size_t *count,
                       fm_error_t *err) {
    *out = NULL;
    *count = 0;
    if (!item) return FM_OK;
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) > 100000)
        return field_error(err, path, item, "expected %s", "an array of column names");
    size_t n = (size_t)cJSON_GetArraySize(item);
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *v = item->child; v; v = v->next, i++) {
        char vpath[64];
        snprintf(vpath, sizeof vpath, "%s[%zu]", path, i);
        const char *name;
        int rc = read_string(v, vpath, 4096, &name, err);
        if (rc) return rc;
        if (!((*out)[i] = dup_string(name, err))) return FM_ENOMEM;
        *count = i + 1;
    }
    return FM_OK;
}

static int parse_validation(const cJSON *v, fm_search_spec_t *s, fm_error_t *err) {
    static const char *const keys[] = {"scheme",         "folds",       "holdout",
                                       "valid_fraction", "time_column", "seed"};
    s->scheme = SCHEME_KFOLD;
    s->folds = 5;
    s->holdout = 0.2;
    s->valid_fraction = 0.2;
    s->validation_seed = 42;
    if (!v) return FM_OK;
    if (!cJSON_IsObject(v)) return field_error(err, "validation", v, "expected %s", "an object");
    int rc = check_keys(v, "validation", keys, sizeof keys / sizeof keys[0], err);
    if (rc) return rc;
    const cJSON *it;
    if ((it = member(v, "scheme"))) {
        const char *text = cJSON_IsString(it) ? it->valuestring : "";
        if (!strcmp(text, "kfold"))
            s->scheme = SCHEME_KFOLD;
        else if (!strcmp(text, "holdout"))
            s->scheme = SCHEME_HOLDOUT;
        else if (!strcmp(text, "time"))
            s->scheme = SCHEME_TIME;
        else
            return field_error(err, "validation.scheme", it, "expected %s",
                               "\"kfold\", \"holdout\" or \"time\"");
    }
    long long l;
    double d;
    if ((it = member(v, "folds"))) {
        if ((rc = read_int(it, "validation.folds", 2, SEARCH_MAX_FOLDS, &l, err))) return rc;
        s->folds = (int)l;
    }
    if ((it = member(v, "holdout"))) {
        if ((rc = read_number(it, "validation.holdout", 0.0, 0.9, 0, &d, err))) return rc;
        if (d == 0.9)
            return field_error(err, "validation.holdout", it, "expected %s",
                               "a number in [0, 0.9)");
        s->holdout = d;
    }
    if ((it = member(v, "valid_fraction"))) {
        if ((rc = read_number(it, "validation.valid_fraction", 0.01, 0.9, 0, &d, err))) return rc;
        s->valid_fraction = d;
    }
    if ((it = member(v, "seed"))) {
        if ((rc = read_int(it, "validation.seed", 0, 9007199254740992.0, &l, err))) return rc;
        s->validation_seed = (uint64_t)l;
    }
    if ((it = member(v, "time_column"))) {
        const char *name;
        if ((rc = read_string(it, "validation.time_column", 4096, &name, err))) return rc;
        if (!(s->time_column = dup_string(name, err))) return FM_ENOMEM;
    }
    if (s->scheme == SCHEME_TIME && !s->time_column)
        return fm_error_set(err, FM_EINVAL,
                            "validation.time_column: the \"time\" scheme needs a time column");
    if (s->scheme != SCHEME_TIME && s->time_column)
        return fm_error_set(err, FM_EINVAL,
                            "validation.time_column: '%s' is given but validation.scheme is not "
                            "\"time\"",
                            s->time_column);
    if (s->scheme != SCHEME_KFOLD) s->folds = 1;
    return FM_OK;
}

static int parse_search(const cJSON *v, fm_search_spec_t *s, fm_error_t *err) {
    static const char *const keys[] = {"strategy", "budget", "seed", "selection"};
    s->strategy = STRATEGY_RANDOM;
    s->budget = 20;
    s->search_seed = 42;
    if (!v) return FM_OK;
    if (!cJSON_IsObject(v)) return field_error(err, "search", v, "expected %s", "an object");
    int rc = check_keys(v, "search", keys, sizeof keys / sizeof keys[0], err);
    if (rc) return rc;
    const cJSON *it;
    long long l;
    if ((it = member(v, "strategy"))) {
        const char *text = cJSON_IsString(it) ? it->valuestring : "";
        if (!strcmp(text, "random"))
            s->strategy = STRATEGY_RANDOM;
        else if (!strcmp(text, "grid"))
            s->strategy = STRATEGY_GRID;
        else
            return field_error(err, "search.strategy", it, "expected %s", "\"random\" or \"grid\"");
    }
    if ((it = member(v, "selection"))) {
        const char *text = cJSON_IsString(it) ? it->valuestring : "";
        if (!strcmp(text, "best"))
            s->selection = SELECTION_BEST;
        else if (!strcmp(text, "one_se"))
            s->selection = SELECTION_ONE_SE;
        else
            return field_error(err, "search.selection", it, "expected %s",
                               "\"best\" or \"one_se\"");
    }
    if ((it = member(v, "budget"))) {
        if ((rc = read_int(it, "search.budget", 1, SEARCH_MAX_BUDGET, &l, err))) return rc;
        s->budget = (size_t)l;
    }
    if ((it = member(v, "seed"))) {
        if ((rc = read_int(it, "search.seed", 0, 9007199254740992.0, &l, err))) return rc;
        s->search_seed = (uint64_t)l;
    }
    return FM_OK;
}

static int parse_early_stopping(const cJSON *v, fm_search_spec_t *s, fm_error_t *err) {
    static const char *const keys[] = {"patience", "valid_fraction"};
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    s->patience = o.patience;
    s->early_valid_fraction = o.valid_fraction;
    if (!v) return FM_OK;
    if (!cJSON_IsObject(v))
        return field_error(err, "early_stopping", v, "expected %s", "an object");
    int rc = check_keys(v, "early_stopping", keys, 2, err);
    if (rc) return rc;
    const cJSON *it;
    long long l;
    if ((it = member(v, "patience"))) {
        if ((rc = read_int(it, "early_stopping.patience", 1, 1000000, &l, err))) return rc;
        s->patience = (int)l;
    }
    if ((it = member(v, "valid_fraction")) &&
        (rc = read_number(it, "early_stopping.valid_fraction", 0.0, 0.9, 0,
                          &s->early_valid_fraction, err)))
        return rc;
    return FM_OK;
}

static int parse_top(const cJSON *json, fm_search_spec_t *s, fm_error_t *err) {
    static const char *const keys[] = {
        "target",  "positive",       "task",     "metric", "validation",   "search",
        "space",   "model",          "drop",     "pii",    "iv_threshold", "importance_repeats",
        "threads", "early_stopping", "protected"};
    if (!cJSON_IsObject(json))
        return field_error(err, "search specification", json, "expected %s", "a JSON object");
    int rc = check_keys(json, "", keys, sizeof keys / sizeof keys[0], err);
    if (rc) return rc;
    const cJSON *it = member(json, "target");
    const char *text;
    if (!it) return fm_error_set(err, FM_EINVAL, "target: the target column is required");
    if ((rc = read_string(it, "target", 4096, &text, err))) return rc;
    if (!(s->target = dup_string(text, err))) return FM_ENOMEM;
    if ((it = member(json, "positive"))) {
        if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
            fm_buf_t b = FM_BUF_INIT;
            if (fm_buf_json_number(&b, it->valuedouble)) {
                fm_buf_free(&b);
                return fm_error_set(err, FM_ENOMEM, "out of memory");
            }
            s->positive = fm_buf_take(&b);
        } else {
            if ((rc = read_string(it, "positive", 4096, &text, err))) return rc;
            if (!(s->positive = dup_string(text, err))) return FM_ENOMEM;
        }
    }
    s->task = -1;
    if ((it = member(json, "task"))) {
        fm_task_t task;
        if (!cJSON_IsString(it) || fm_task_parse(it->valuestring, &task))
            return field_error(err, "task", it, "expected %s",
                               "\"binary\", \"multiclass\" or \"regression\"");
        s->task = (int)task;
    }
    s->metric = METRIC_DEFAULT;
    if ((it = member(json, "metric")) &&
        (!cJSON_IsString(it) || search_metric_parse(it->valuestring, &s->metric)))
        return field_error(err, "metric", it, "expected %s",
                           "one of \"auc\", \"accuracy\", \"logloss\", \"rmse\", \"r2\"");
    if (s->metric != METRIC_DEFAULT && s->task >= 0 &&
        !search_metric_fits(s->metric, (fm_task_t)s->task))
        return fm_error_set(err, FM_EINVAL, "metric: '%s' does not apply to a %s target",
                            search_metric_name(s->metric), fm_task_name((fm_task_t)s->task));
    if ((rc = parse_validation(member(json, "validation"), s, err))) return rc;
    if ((rc = parse_search(member(json, "search"), s, err))) return rc;
    if ((rc = parse_early_stopping(member(json, "early_stopping"), s, err))) return rc;
    s->dims = calloc(KEY_COUNT, sizeof *s->dims);
    if (!s->dims) return fm_error_set(err, FM_ENOMEM, "out of memory");
    const cJSON *space = member(json, "space"), *model = member(json, "model");
    if (space && model)
        return fm_error_set(err, FM_EINVAL,
                            "model: give either \"model\" (one specification) or \"space\" (a "
                            "search), not both");
    if (model) {
        s->fixed_model = 1;
        if ((rc = parse_model(model, s->dims, err))) return rc;
    } else if ((rc = parse_space(space, s->strategy == STRATEGY_RANDOM, s->dims, err))) {
        return rc;
    }
    if ((rc = parse_names(member(json, "drop"), "drop", &s->drop, &s->ndrop, err))) return rc;
    if ((rc = parse_names(member(json, "pii"), "pii", &s->pii, &s->npii, err))) return rc;
    if ((rc = parse_names(member(json, "protected"), "protected", &s->protected, &s->nprotected,
                          err)))
        return rc;
    if (s->nprotected > FM_FAIRNESS_MAX_ATTRIBUTES)
        return fm_error_set(err, FM_EINVAL, "protected: at most %d columns",
                            FM_FAIRNESS_MAX_ATTRIBUTES);
    if (s->nprotected && !(s->protected_attrs = calloc(s->nprotected, sizeof *s->protected_attrs)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->nprotected; i++) {
        if (!strcmp(s->protected[i], s -> target))
            return fm_error_set(err, FM_EINVAL, "protected: '%s' is the target column",
                                s->protected[i]);
        s->protected_attrs[i].name = s->protected[i];
    }
    for (size_t i = 0; i < s->ndrop; i++)
        if (!strcmp(s->drop[i], s->target))
            return fm_error_set(err, FM_EINVAL, "drop: '%s' is the target column", s->drop[i]);
    for (size_t i = 0; i < s->npii; i++)
        if (!strcmp(s->pii[i], s->target))
            return fm_error_set(err, FM_EINVAL,
                                "pii: '%s' is the target column; only feature columns can be "
                                "marked as personal data",
                                s->pii[i]);
    if ((it = member(json, "iv_threshold"))) {
        if ((rc = read_number(it, "iv_threshold", 0.0, 100.0, 0, &s->iv_threshold, err))) return rc;
        s->has_iv_threshold = 1;
        if (s->task == FM_TASK_MULTICLASS || s->task == FM_TASK_REGRESSION)
            return fm_error_set(err, FM_EINVAL,
                                "iv_threshold: Information Value needs a binary target, and "
                                "task is '%s'",
                                fm_task_name((fm_task_t)s->task));
    }
    long long l;
    s->importance_repeats = 3;
    if ((it = member(json, "importance_repeats"))) {
        if ((rc = read_int(it, "importance_repeats", 0, 100, &l, err))) return rc;
        s->importance_repeats = (int)l;
    }
    s->threads = 1;
    if ((it = member(json, "threads"))) {
        if ((rc = read_int(it, "threads", 1, 256, &l, err))) return rc;
        s->threads = (int)l;
    }
    if (s->fixed_model) {
        s->candidates = calloc(1, sizeof *s->candidates);
        if (!s->candidates) return fm_error_set(err, FM_ENOMEM, "out of memory");
        grid_point(s->dims, 0, (size_t)1 << 40, &s->candidates[0]);
        s->ncandidates = 1;
        return FM_OK;
    }
    return make_candidates(s, err);
}

int fm_search_spec_parse(const cJSON *json, fm_search_spec_t **out, fm_error_t *err) {
    *out = NULL;
    fm_search_spec_t *s = calloc(1, sizeof *s);
    if (!s) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = parse_top(json, s, err);
    if (rc) {
        fm_search_spec_free(s);
        return rc;
    }
    *out = s;
    return FM_OK;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

void fm_search_spec_free(fm_search_spec_t *s) {
    if (!s) return;
    free(s->target);
    free(s->positive);
    free(s->time_column);
    free(s->dims);
    free(s->candidates);
    free_names(s->drop, s->ndrop);
    free_names(s->pii, s->npii);
    free_names(s->protected, s->nprotected);
    free(s->protected_attrs);
    free(s);
}

const char *fm_search_spec_target(const fm_search_spec_t *spec) {
    return spec->target;
}

size_t fm_search_spec_candidates(const fm_search_spec_t *spec) {
    return spec->ncandidates;
}

/* ---- Back to JSON -------------------------------------------------------------------------- */

static cJSON *hidden_json(const int *widths, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(widths[i]));
    return a;
}

static cJSON *value_json(search_key_t key, const search_dim_t *d, size_t i) {
    switch (key) {
    case KEY_FAMILY:
        return cJSON_CreateString(d->family[i]);
    case KEY_HIDDEN:
        return hidden_json(d->hidden[i], d->nhidden[i]);
    case KEY_ACTIVATION:
        return cJSON_CreateString(fm_activation_name((fm_activation_t)d->code[i]));
    case KEY_OPTIMIZER:
        return cJSON_CreateString(fm_optimizer_name((fm_optimizer_kind_t)d->code[i]));
    default:
        return cJSON_CreateNumber(d->number[i]);
    }
}

cJSON *search_point_to_json(const search_point_t *p, const char *family_name) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "family", family_name ? family_name : p->family);
    for (int k = 1; k < KEY_COUNT; k++) {
        search_key_t key = (search_key_t)k;
        if (!search_key_used(p->family, key)) continue;
        switch (key) {
        case KEY_HIDDEN:
            cJSON_AddItemToObject(o, "hidden", hidden_json(p->hidden, p->nhidden));
            break;
        case KEY_ACTIVATION:
            cJSON_AddStringToObject(o, "activation", fm_activation_name(p->activation));
            break;
        case KEY_OPTIMIZER:
            cJSON_AddStringToObject(o, "optimizer", fm_optimizer_name(p->optimizer));
            break;
        case KEY_LEARNING_RATE:
            cJSON_AddNumberToObject(o, "learning_rate", p->learning_rate);
            break;
        case KEY_L2:
            cJSON_AddNumberToObject(o, "l2", p->l2);
            break;
        case KEY_BATCH:
            cJSON_AddNumberToObject(o, "batch", p->batch);
            break;
        case KEY_EPOCHS:
            cJSON_AddNumberToObject(o, "epochs", p->epochs);
            break;
        case KEY_MAX_DEPTH:
            cJSON_AddNumberToObject(o, "max_depth", p->max_depth);
            break;
        case KEY_ETA:
            cJSON_AddNumberToObject(o, "eta", p->eta);
            break;
        case KEY_ROUNDS:
            cJSON_AddNumberToObject(o, "rounds", p->rounds);
            break;
        default:
            break;
        }
    }
    return o;
}

void search_point_to_options(const search_point_t *p, fm_task_t task, fm_train_options_t *o) {
    o->family = search_point_family(p, task);
    memcpy(o->hidden, p->hidden, sizeof o->hidden);
    o->nhidden = p->nhidden;
    o->activation = p->activation;
    o->optimizer = fm_optimizer_defaults(p->optimizer);
    o->optimizer.lr = p->learning_rate;
    o->l2 = p->l2;
    o->batch = p->batch;
    o->epochs = p->epochs;
    o->gbt.max_depth = p->max_depth;
    o->gbt.eta = p->eta;
    o->gbt.rounds = p->rounds;
}

static cJSON *names_json(char *const *names, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
    return a;
}

cJSON *fm_search_spec_to_json(const fm_search_spec_t *s) {
    static const char *const schemes[] = {"kfold", "holdout", "time"};
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "target", s->target);
    if (s->positive)
        cJSON_AddStringToObject(j, "positive", s->positive);
    else
        cJSON_AddNullToObject(j, "positive");
    if (s->task >= 0)
        cJSON_AddStringToObject(j, "task", fm_task_name((fm_task_t)s->task));
    else
        cJSON_AddNullToObject(j, "task");
    if (s->metric != METRIC_DEFAULT)
        cJSON_AddStringToObject(j, "metric", search_metric_name(s->metric));
    else
        cJSON_AddNullToObject(j, "metric");
    cJSON *v = cJSON_AddObjectToObject(j, "validation");
    cJSON_AddStringToObject(v, "scheme", schemes[s->scheme]);
    if (s->scheme == SCHEME_KFOLD) cJSON_AddNumberToObject(v, "folds", s->folds);
    cJSON_AddNumberToObject(v, "holdout", s->holdout);
    if (s->scheme != SCHEME_KFOLD) cJSON_AddNumberToObject(v, "valid_fraction", s->valid_fraction);
    if (s->time_column)
        cJSON_AddStringToObject(v, "time_column", s->time_column);
    else
        cJSON_AddNullToObject(v, "time_column");
    cJSON_AddNumberToObject(v, "seed", (double)s->validation_seed);
    cJSON *se = cJSON_AddObjectToObject(j, "search");
    cJSON_AddStringToObject(se, "strategy", s->strategy == STRATEGY_GRID ? "grid" : "random");
    cJSON_AddNumberToObject(se, "budget", (double)s->budget);
    cJSON_AddNumberToObject(se, "seed", (double)s->search_seed);
    cJSON_AddStringToObject(se, "selection", s->selection == SELECTION_ONE_SE ? "one_se" : "best");
    if (s->fixed_model) {
        cJSON_AddNullToObject(j, "space");
        cJSON *m = cJSON_CreateObject();
        for (int k = 0; m && k < KEY_COUNT; k++)
            cJSON_AddItemToObject(m, key_names[k], value_json((search_key_t)k, &s->dims[k], 0));
        cJSON_AddItemToObject(j, "model", m);
    } else {
        cJSON *space = cJSON_AddObjectToObject(j, "space");
        for (int k = 0; space && k < KEY_COUNT; k++) {
            const search_dim_t *d = &s->dims[k];
            cJSON *item;
            if (d->is_range) {
                item = cJSON_CreateObject();
                cJSON_AddNumberToObject(item, "min", d->min);
                cJSON_AddNumberToObject(item, "max", d->max);
                cJSON_AddBoolToObject(item, "log", d->log);
            } else {
                item = cJSON_CreateArray();
                for (size_t i = 0; item && i < d->count; i++)
                    cJSON_AddItemToArray(item, value_json((search_key_t)k, d, i));
            }
            cJSON_AddItemToObject(space, key_names[k], item);
        }
        cJSON_AddNullToObject(j, "model");
    }
    cJSON_AddItemToObject(j, "drop", names_json(s->drop, s->ndrop));
    cJSON_AddItemToObject(j, "pii", names_json(s->pii, s->npii));
    cJSON_AddItemToObject(j, "protected", names_json(s->protected, s->nprotected));
    if (s->has_iv_threshold)
        cJSON_AddNumberToObject(j, "iv_threshold", s->iv_threshold);
    else
        cJSON_AddNullToObject(j, "iv_threshold");
    cJSON_AddNumberToObject(j, "importance_repeats", s->importance_repeats);
    cJSON *es = cJSON_AddObjectToObject(j, "early_stopping");
    cJSON_AddNumberToObject(es, "patience", s->patience);
    cJSON_AddNumberToObject(es, "valid_fraction", s->early_valid_fraction);
    cJSON_AddNumberToObject(j, "threads", s->threads);
    return j;
}
