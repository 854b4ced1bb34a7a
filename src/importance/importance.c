/*
 * fm_importance_compute (importance/importance.h): checks the options, samples and encodes the
 * labelled rows once, then runs permutation importance and partial dependence per raw feature
 * over those encoded rows and writes the result as JSON.
 *
 * Memory is sized once per call: the encoded sample (rows x features), one prediction per row,
 * one permutation, the model's workspace and a chunk of rows being changed; per feature only the
 * grid, its encoded blocks and the curves are allocated.
 */
#include "importance/internal.h"

#include "core/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fm_importance_options_defaults(fm_importance_options_t *o) {
    o->repeats = 5;
    o->grid = 20;
    o->ice_rows = 20;
    o->max_rows = 2000;
    o->seed = 42;
}

static int check_options(const fm_importance_options_t *o, fm_error_t *err) {
    if (o->repeats < 1 || o->repeats > 100)
        return fm_error_set(err, FM_EINVAL, "option repeats: %d is outside 1..100", o->repeats);
    if (o->grid < 2 || o->grid > 200)
        return fm_error_set(err, FM_EINVAL, "option grid: %zu is outside 2..200", o->grid);
    if (o->ice_rows > 1000)
        return fm_error_set(err, FM_EINVAL, "option ice_rows: %zu is outside 0..1000", o->ice_rows);
    if (o->max_rows < 1)
        return fm_error_set(err, FM_EINVAL, "option max_rows: %zu is below 1", o->max_rows);
    return FM_OK;
}

/* Per grid point: a number, or for multiclass an array of class probabilities. */
static cJSON *curve_json(const double *v, size_t ngrid, size_t width, int multiclass) {
    if (!multiclass) return fm_json_double_array(v, ngrid);
    cJSON *array = cJSON_CreateArray();
    for (size_t g = 0; array && g < ngrid; g++) {
        cJSON *point = fm_json_double_array(v + g * width, width);
        if (!point || !cJSON_AddItemToArray(array, point)) {
            cJSON_Delete(point);
            cJSON_Delete(array);
            return NULL;
        }
    }
    return array;
}

/* One feature's entry of "partial_dependence". NULL when out of memory. */
static cJSON *partial_json(const fm_prep_column_t *c, const double *grid, size_t ngrid,
                           const double *average, const double *ice, size_t nice, size_t width,
                           int multiclass) {
    cJSON *entry = cJSON_CreateObject();
    if (!entry) return NULL;
    int numeric = c->type == FM_COLUMN_NUMERIC;
    int ok = cJSON_AddStringToObject(entry, "feature", c->name) &&
             cJSON_AddStringToObject(entry, "kind", numeric ? "numeric" : "categorical");
    cJSON *g = numeric ? fm_json_double_array(grid, ngrid) : cJSON_CreateArray();
    for (size_t k = 0; g && !numeric && ok && k < ngrid; k++) {
        cJSON *s = cJSON_CreateString(fm_strdict_get(&c->categories, (int32_t)k));
        ok = s && cJSON_AddItemToArray(g, s);
        if (!ok) cJSON_Delete(s);
    }
    ok = ok && g && cJSON_AddItemToObject(entry, "grid", g);
    if (!ok) cJSON_Delete(g);
    cJSON *avg = ok ? curve_json(average, ngrid, width, multiclass) : NULL;
    ok = ok && avg && cJSON_AddItemToObject(entry, "average", avg);
    if (!ok) cJSON_Delete(avg);
    cJSON *curves = ok ? cJSON_CreateArray() : NULL;
    ok = ok && curves && cJSON_AddItemToObject(entry, "ice", curves);
    if (!ok) cJSON_Delete(curves);
    for (size_t i = 0; ok && i < nice; i++) {
        cJSON *curve = curve_json(ice + i * ngrid * width, ngrid, width, multiclass);
        ok = curve && cJSON_AddItemToArray(curves, curve);
        if (!ok) cJSON_Delete(curve);
    }
    if (!ok) {
        cJSON_Delete(entry);
        return NULL;
    }
    return entry;
}

/* The state of one call: the sample, its encoding and the shared buffers. */
typedef struct run {
    const fm_model_t *model;
    const fm_frame_t *frame;
    const fm_importance_options_t *o;
    fm_importance_sample_t s;
    fm_importance_predictor_t p;
    double *x;           /* s.n * nfeatures: the encoded sample */
    double *pred;        /* s.n * width */
    size_t *perm;        /* s.n */
    fm_raw_value_t *raw; /* prep ncolumns: a raw row, missing but for the grid feature */
    double *encoded;     /* nfeatures: raw encoded */
    double score;
} run_t;

/* The metric of the sample's predictions (fm_importance_score_fn over a run). */
static double sample_score(const void *ctx, const double *pred, size_t n) {
    const run_t *r = ctx;
    (void)n;
    return fm_importance_score(r->model, &r->s, pred);
}

static int permutation_all(run_t *r, cJSON *out, fm_error_t *err) {
    const fm_prep_t *prep = r->model->prep;
    for (size_t k = 0; k < prep->ncolumns; k++) {
        const fm_prep_column_t *c = &prep->columns[k];
        if (c->width == 0) continue;
        double mean, std;
        int rc = fm_importance_permutation_feature(&r->p, sample_score, r, c, k, r->x, r->s.n,
                                                   r->o->repeats, r->o->seed, r->score, r->pred,
                                                   r->perm, &mean, &std, err);
        if (rc) return rc;
        cJSON *entry = cJSON_CreateObject();
        if (!entry || !cJSON_AddItemToArray(out, entry)) {
            cJSON_Delete(entry);
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        }
        if (!cJSON_AddStringToObject(entry, "feature", c->name) ||
            !fm_json_add_number(entry, "mean", mean) || !fm_json_add_number(entry, "std", std))
            return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    return FM_OK;
}

/* The grid of prep column k in raw units (numeric) and every grid point's encoded block:
 * *grid (numeric only) and *blocks[ngrid * width], both owned by the caller. */
static int grid_blocks(run_t *r, size_t k, double **grid, double **blocks, size_t *ngrid,
                       fm_error_t *err) {
    const fm_prep_t *prep = r->model->prep;
    const fm_prep_column_t *c = &prep->columns[k];
    *grid = NULL;
    *blocks = NULL;
    int rc = FM_OK;
    if (c->type == FM_COLUMN_NUMERIC) {
        const fm_column_t *fc = &r->frame->columns[fm_frame_find(r->frame, c->name)];
        rc = fm_importance_numeric_grid(fc, &r->s, r->o->grid, grid, ngrid, err);
        if (rc) return rc;
    } else {
        *ngrid = c->categories.count;
    }
    *blocks = malloc((*ngrid ? *ngrid : 1) * c->width * sizeof **blocks);
    if (!*blocks) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t g = 0; g < *ngrid && !rc; g++) {
        fm_raw_value_t *v = &r->raw[k];
        if (c->type == FM_COLUMN_NUMERIC) {
            v->kind = FM_RAW_NUMBER;
            v->number = (*grid)[g];
        } else {
            v->kind = FM_RAW_STRING;
            v->str = fm_strdict_get(&c->categories, (int32_t)g);
            v->len = c->categories.lens[g];
        }
        rc = fm_prep_encode_row(prep, r->raw, r->encoded, err);
        memcpy(*blocks + g * c->width, r->encoded + c->offset, c->width * sizeof **blocks);
    }
    r->raw[k].kind = FM_RAW_MISSING;
    return rc;
}

static int partial_all(run_t *r, cJSON *out, fm_error_t *err) {
    const fm_prep_t *prep = r->model->prep;
    size_t width = r->p.width, nice = r->o->ice_rows < r->s.n ? r->o->ice_rows : r->s.n;
    int multiclass = r->model->task == FM_TASK_MULTICLASS;
    int rc = FM_OK;
    for (size_t k = 0; k < prep->ncolumns && !rc; k++) {
        const fm_prep_column_t *c = &prep->columns[k];
        if (c->width == 0) continue;
        double *grid = NULL, *blocks = NULL, *average = NULL, *ice = NULL;
        size_t ngrid = 0;
        rc = grid_blocks(r, k, &grid, &blocks, &ngrid, err);
        if (!rc) {
            average = malloc((ngrid ? ngrid : 1) * width * sizeof *average);
            ice = malloc((ngrid && nice ? ngrid * nice : 1) * width * sizeof *ice);
            if (!average || !ice) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        }
        if (!rc)
            rc = fm_importance_partial_feature(&r->p, c, r->x, r->s.n, blocks, ngrid, nice, average,
                                               ice, err);
        if (!rc) {
            cJSON *entry = partial_json(c, grid, ngrid, average, ice, nice, width, multiclass);
            if (!entry || !cJSON_AddItemToArray(out, entry)) {
                cJSON_Delete(entry);
                rc = fm_error_set(err, FM_ENOMEM, "out of memory");
            }
        }
        if (rc && rc != FM_ENOMEM) fm_error_prefix(err, "feature '%s': ", c->name);
        free(grid);
        free(blocks);
        free(average);
        free(ice);
    }
    return rc;
}

/* Samples, encodes and scores the rows, and sizes the buffers. */
static int prepare(run_t *r, const size_t *rows, size_t nrows, fm_error_t *err) {
    const fm_prep_t *prep = r->model->prep;
    int rc = fm_importance_sample_rows(r->model, r->frame, rows, nrows, r->o->max_rows, r->o->seed,
                                       &r->s, err);
    if (rc) return rc;
    size_t n = r->s.n, nf = prep->nfeatures, width = fm_model_output_width(r->model);
    r->x = malloc(n * (nf ? nf : 1) * sizeof *r->x);
    r->pred = malloc(n * width * sizeof *r->pred);
    r->perm = malloc(n * sizeof *r->perm);
    r->raw = calloc(prep->ncolumns ? prep->ncolumns : 1, sizeof *r->raw);
    r->encoded = malloc((nf ? nf : 1) * sizeof *r->encoded);
    if (!r->x || !r->pred || !r->perm || !r->raw || !r->encoded)
        return fm_error_set(err, FM_ENOMEM, "out of memory for %zu rows of %zu features", n, nf);
    rc = fm_prep_transform(prep, r->frame, r->s.rows, n, r->x, err);
    if (!rc) rc = fm_importance_predictor_init(&r->p, r->model, n, err);
    if (!rc) rc = fm_importance_predict(&r->p, r->x, n, r->pred, err);
    if (!rc) r->score = fm_importance_score(r->model, &r->s, r->pred);
    return rc;
}

static cJSON *result_json(const run_t *r) {
    cJSON *out = cJSON_CreateObject();
    if (!out) return NULL;
    if (!cJSON_AddNumberToObject(out, "rows", (double)r->s.n) ||
        !cJSON_AddStringToObject(out, "metric", fm_importance_metric_name(r->model)) ||
        !fm_json_add_number(out, "score", r->score) ||
        !cJSON_AddNumberToObject(out, "repeats", r->o->repeats) ||
        !cJSON_AddNumberToObject(out, "seed", (double)r->o->seed) ||
        !cJSON_AddArrayToObject(out, "permutation_importance") ||
        !cJSON_AddArrayToObject(out, "partial_dependence")) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

int fm_importance_compute(const fm_model_t *model, const fm_frame_t *frame, const size_t *rows,
                          size_t nrows, const fm_importance_options_t *options, cJSON **out,
                          fm_error_t *err) {
    *out = NULL;
    fm_importance_options_t defaults;
    fm_importance_options_defaults(&defaults);
    const fm_importance_options_t *o = options ? options : &defaults;
    int rc = check_options(o, err);
    if (rc) return rc;
    if (!model->prep) return fm_error_set(err, FM_EINVAL, "the model has no preprocessing");
    run_t r;
    memset(&r, 0, sizeof r);
    r.model = model;
    r.frame = frame;
    r.o = o;
    rc = prepare(&r, rows, nrows, err);
    cJSON *result = NULL;
    if (!rc && !(result = result_json(&r))) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc)
        rc = permutation_all(&r, cJSON_GetObjectItemCaseSensitive(result, "permutation_importance"),
                             err);
    if (!rc)
        rc = partial_all(&r, cJSON_GetObjectItemCaseSensitive(result, "partial_dependence"), err);
    fm_importance_predictor_deinit(&r.p);
    fm_importance_sample_deinit(&r.s);
    free(r.x);
    free(r.pred);
    free(r.perm);
    free(r.raw);
    free(r.encoded);
    if (rc) {
        cJSON_Delete(result);
        return rc;
    }
    *out = result;
    return FM_OK;
}
