/*
 * The labelled rows an explanation is computed on (importance/internal.h): the target column read
 * against the model's classes or as numbers, the seeded sample of at most max_rows rows, and the
 * metric on those rows (ROC AUC, accuracy or R^2).
 *
 * A class label is matched by its text, as `finmaas eval` does; a numeric target column is
 * written the way training names numeric classes (shortest exact form, "1", "0.5").
 */
#include "importance/internal.h"

#include "core/buf.h"
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fm_importance_sample_deinit(fm_importance_sample_t *s) {
    if (!s) return;
    free(s->rows);
    free(s->label);
    free(s->value);
    memset(s, 0, sizeof *s);
}

const char *fm_importance_metric_name(const fm_model_t *model) {
    switch (model->task) {
    case FM_TASK_BINARY:
        return "auc";
    case FM_TASK_MULTICLASS:
        return "accuracy";
    case FM_TASK_REGRESSION:
        break;
    }
    return "r2";
}

double fm_importance_score(const fm_model_t *model, const fm_importance_sample_t *s,
                           const double *pred) {
    switch (model->task) {
    case FM_TASK_BINARY:
        return fm_metric_auc(pred, s->label, NULL, s->n);
    case FM_TASK_MULTICLASS:
        return fm_metric_multiclass_accuracy(pred, s->label, NULL, s->n, model->nclasses);
    case FM_TASK_REGRESSION:
        break;
    }
    return fm_metric_r2(pred, s->value, NULL, s->n);
}

/* Per frame row: the class index (-1 missing) or value (NaN missing) of the target. Reads one
 * row; dict_class maps a categorical column's codes to class indices (-2: not a class). */
typedef struct target_reader {
    const fm_model_t *model;
    const fm_column_t *column;
    fm_strdict_t classes; /* the model's class labels, for lookup by text */
    int32_t *dict_class;  /* categorical column: code -> class index, or -2 */
    double *dict_value;   /* regression from a text column: code -> number, NaN when not one */
    fm_buf_t text;        /* a numeric label written as text */
} target_reader_t;

static void target_reader_deinit(target_reader_t *t) {
    fm_strdict_free(&t->classes);
    free(t->dict_class);
    free(t->dict_value);
    fm_buf_free(&t->text);
}

static int target_reader_init(target_reader_t *t, const fm_model_t *model, const fm_column_t *c,
                              fm_error_t *err) {
    memset(t, 0, sizeof *t);
    t->model = model;
    t->column = c;
    size_t ncodes = c->type == FM_COLUMN_CATEGORICAL ? c->dict.count : 0;
    if (model->task == FM_TASK_REGRESSION) {
        if (!ncodes) return FM_OK;
        t->dict_value = malloc(ncodes * sizeof *t->dict_value);
        if (!t->dict_value) return fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t k = 0; k < ncodes; k++) {
            const char *s = fm_strdict_get(&c->dict, (int32_t)k);
            if (fm_value_parse_number(s, c->dict.lens[k], &t->dict_value[k]) ||
                !isfinite(t->dict_value[k]))
                t->dict_value[k] = NAN;
        }
        return FM_OK;
    }
    for (size_t k = 0; k < model->nclasses; k++)
        if (fm_strdict_intern(&t->classes, model->classes[k], strlen(model->classes[k])) < 0)
            return fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!ncodes) return FM_OK;
    t->dict_class = malloc(ncodes * sizeof *t->dict_class);
    if (!t->dict_class) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t k = 0; k < ncodes; k++) {
        int32_t cls =
            fm_strdict_find(&t->classes, fm_strdict_get(&c->dict, (int32_t)k), c->dict.lens[k]);
        t->dict_class[k] = cls < 0 ? -2 : cls;
    }
    return FM_OK;
}

/* Reads frame row r: 1 with *label or *value set, 0 when the target is missing, or an error
 * naming the value that is not a class (or not a number). */
static int target_read(target_reader_t *t, size_t r, int *label, double *value, fm_error_t *err) {
    const fm_column_t *c = t->column;
    if (t->model->task == FM_TASK_REGRESSION) {
        if (c->type == FM_COLUMN_NUMERIC) {
            *value = c->values[r];
            return isnan(*value) ? 0 : 1;
        }
        int32_t code = c->codes[r];
        if (code < 0) return 0;
        if (isnan(t->dict_value[code]))
            return fm_error_set(err, FM_EDATA,
                                "data row %zu: target '%s' value '%s' is not a number", r + 1,
                                c->name, fm_strdict_get(&c->dict, code));
        *value = t->dict_value[code];
        return 1;
    }
    int32_t cls;
    if (c->type == FM_COLUMN_CATEGORICAL) {
        int32_t code = c->codes[r];
        if (code < 0) return 0;
        cls = t->dict_class[code];
        if (cls < 0)
            return fm_error_set(err, FM_EDATA,
                                "data row %zu: target '%s' value '%s' is not one of the model's "
                                "classes",
                                r + 1, c->name, fm_strdict_get(&c->dict, code));
    } else {
        double v = c->values[r];
        if (isnan(v)) return 0;
        fm_buf_reset(&t->text);
        if (fm_buf_json_number(&t->text, v)) return fm_error_set(err, FM_ENOMEM, "out of memory");
        cls = fm_strdict_find(&t->classes, t->text.data, t->text.len);
        if (cls < 0)
            return fm_error_set(err, FM_EDATA,
                                "data row %zu: target '%s' value '%s' is not one of the model's "
                                "classes",
                                r + 1, c->name, t->text.data);
    }
    *label = cls;
    return 1;
}

static int compare_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Keeps max_rows of the n positions 0..n-1 (pos, n entries), drawn without replacement, sorted. */
static void draw_positions(size_t *pos, size_t n, size_t max_rows, uint64_t seed) {
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    for (size_t i = 0; i < max_rows; i++) {
        size_t j = i + (size_t)fm_rng_below(&rng, (uint64_t)(n - i));
        size_t tmp = pos[i];
        pos[i] = pos[j];
        pos[j] = tmp;
    }
    qsort(pos, max_rows, sizeof *pos, compare_size);
}

/* Fails when a binary sample holds one class only: AUC is undefined. */
static int check_both_classes(const fm_model_t *model, const fm_importance_sample_t *s,
                              const char *column, fm_error_t *err) {
    if (model->task != FM_TASK_BINARY) return FM_OK;
    size_t positives = 0;
    for (size_t i = 0; i < s->n; i++)
        positives += s->label[i] == 1 ? 1 : 0;
    if (positives == 0 || positives == s->n)
        return fm_error_set(err, FM_EDATA,
                            "target column '%s': all %zu rows used are of class '%s'; ROC AUC "
                            "needs both classes",
                            column, s->n, model->classes[positives ? 1 : 0]);
    return FM_OK;
}

int fm_importance_sample_rows(const fm_model_t *model, const fm_frame_t *frame, const size_t *rows,
                              size_t nrows, size_t max_rows, uint64_t seed,
                              fm_importance_sample_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    if (!model->target)
        return fm_error_set(err, FM_EINVAL, "the model does not name its target column");
    if (model->task != FM_TASK_REGRESSION && (model->nclasses < 2 || !model->classes))
        return fm_error_set(err, FM_EINVAL, "the model has %zu class labels (at least 2 needed)",
                            model->nclasses);
    int tcol = fm_frame_find(frame, model->target);
    if (tcol < 0)
        return fm_error_set(err, FM_EDATA, "%s: target column '%s' not found",
                            frame->source ? frame->source : "data", model->target);
    if (!rows) nrows = frame->nrows;
    for (size_t i = 0; rows && i < nrows; i++)
        if (rows[i] >= frame->nrows)
            return fm_error_set(err, FM_EINVAL, "row index %zu outside the frame (%zu rows)",
                                rows[i], frame->nrows);
    const fm_column_t *tc = &frame->columns[tcol];
    int regression = model->task == FM_TASK_REGRESSION;
    size_t cap = nrows ? nrows : 1;
    out->rows = malloc(cap * sizeof *out->rows);
    if (regression)
        out->value = malloc(cap * sizeof *out->value);
    else
        out->label = malloc(cap * sizeof *out->label);
    size_t *pos = malloc(cap * sizeof *pos);
    target_reader_t reader;
    int rc = target_reader_init(&reader, model, tc, err);
    if (!rc && (!out->rows || !pos || (regression ? !out->value : !out->label)))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory for %zu rows", nrows);
    /* Every row with a target, in the order given: rows[k], label[k], value[k]. */
    size_t kept = 0;
    for (size_t i = 0; !rc && i < nrows; i++) {
        size_t r = rows ? rows[i] : i;
        int label = 0;
        double value = 0.0;
        int has = target_read(&reader, r, &label, &value, err);
        if (has < 0) rc = has;
        if (has <= 0) continue;
        out->rows[kept] = r;
        if (regression)
            out->value[kept] = value;
        else
            out->label[kept] = label;
        kept++;
    }
    target_reader_deinit(&reader);
    out->missing = nrows - kept;
    if (!rc && kept == 0)
        rc = fm_error_set(err, FM_EDATA, "%s: no row has a value in target column '%s'",
                          frame->source ? frame->source : "data", model->target);
    if (!rc && kept > max_rows) {
        for (size_t i = 0; i < kept; i++)
            pos[i] = i;
        draw_positions(pos, kept, max_rows, seed);
        /* Positions are sorted ascending, so compacting in place never overwrites one unread. */
        for (size_t i = 0; i < max_rows; i++) {
            out->rows[i] = out->rows[pos[i]];
            if (regression)
                out->value[i] = out->value[pos[i]];
            else
                out->label[i] = out->label[pos[i]];
        }
        kept = max_rows;
    }
    out->n = kept;
    free(pos);
    if (!rc) rc = check_both_classes(model, out, tc->name, err);
    if (rc) fm_importance_sample_deinit(out);
    return rc;
}
