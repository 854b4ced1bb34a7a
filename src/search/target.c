/*
 * The search's view of the target column: the task, the class labels and each row's class, by
 * the same rules as fm_train (categorical with two values or numeric with two distinct values:
 * binary; more categories: multiclass; other numbers: regression; classes in byte order or by
 * value, the positive class last). The search needs them before any model exists, to stratify
 * its splits; models' own class lists are matched by name afterwards (search_labels_for_model),
 * so a difference in order could never mislabel a row.
 */
#include "core/buf.h"
#include "search/search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLASSES 1000

void search_target_deinit(search_target_t *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nclasses; i++)
        free(t->classes[i]);
    free(t->classes);
    free(t->label);
    free(t->value);
    memset(t, 0, sizeof *t);
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int compare_text(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted distinct values of a numeric column, at most limit + 1 of them. */
static size_t distinct_numbers(const fm_column_t *c, size_t nrows, size_t limit, double *out) {
    size_t count = 0;
    for (size_t i = 0; i < nrows && count <= limit; i++) {
        double v = c->values[i];
        if (isnan(v)) continue;
        size_t j = 0;
        while (j < count && out[j] != v)
            j++;
        if (j == count) out[count++] = v;
    }
    qsort(out, count, sizeof *out, compare_double);
    return count;
}

static int numeric_classes(const fm_column_t *c, size_t n, search_target_t *t, fm_error_t *err) {
    double *distinct = malloc((MAX_CLASSES + 1) * sizeof *distinct);
    if (!distinct) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t k = distinct_numbers(c, n, MAX_CLASSES, distinct);
    int rc = FM_OK;
    if (k > MAX_CLASSES)
        rc = fm_error_set(err, FM_EDATA, "target column '%s' has more than %d distinct values",
                          c->name, MAX_CLASSES);
    if (!rc && !(t->classes = calloc(k ? k : 1, sizeof *t->classes)))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t j = 0; !rc && j < k; j++) {
        fm_buf_t b = FM_BUF_INIT;
        if (fm_buf_json_number(&b, distinct[j])) {
            fm_buf_free(&b);
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
            break;
        }
        t->classes[j] = fm_buf_take(&b);
        t->nclasses = j + 1;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        double v = c->values[i];
        double *hit = isnan(v) ? NULL : bsearch(&v, distinct, k, sizeof *distinct, compare_double);
        t->label[i] = hit ? (int32_t)(hit - distinct) : -1;
    }
    free(distinct);
    return rc;
}

static int categorical_classes(const fm_column_t *c, size_t n, search_target_t *t,
                               fm_error_t *err) {
    size_t k = c->dict.count;
    if (k > MAX_CLASSES)
        return fm_error_set(err, FM_EDATA, "target column '%s' has %zu classes (at most %d)",
                            c->name, k, MAX_CLASSES);
    t->classes = calloc(k ? k : 1, sizeof *t->classes);
    int32_t *rank = malloc((k ? k : 1) * sizeof *rank);
    if (!t->classes || !rank) {
        free(rank);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < k; j++) {
        if (!(t->classes[j] = strdup(fm_strdict_get(&c->dict, (int32_t)j)))) {
            free(rank);
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        }
        t->nclasses = j + 1;
    }
    qsort(t->classes, k, sizeof *t->classes, compare_text);
    for (size_t j = 0; j < k; j++) {
        const char *text = fm_strdict_get(&c->dict, (int32_t)j);
        char *const *hit = bsearch(&text, t->classes, k, sizeof *t->classes, compare_text);
        rank[j] = (int32_t)(hit - t->classes);
    }
    for (size_t i = 0; i < n; i++)
        t->label[i] = c->codes[i] < 0 ? -1 : rank[c->codes[i]];
    free(rank);
    return FM_OK;
}

/* Puts the positive class (or the second) last in a two-class target. */
static int order_binary(search_target_t *t, const char *column, const char *positive, size_t n,
                        fm_error_t *err) {
    size_t pos = 1;
    if (positive) {
        pos = t->nclasses;
        for (size_t j = 0; j < t->nclasses; j++)
            if (!strcmp(t->classes[j], positive)) pos = j;
        if (pos == t->nclasses)
            return fm_error_set(err, FM_EINVAL,
                                "positive: '%s' is not a value of target column '%s' (its values "
                                "are '%s' and '%s')",
                                positive, column, t->classes[0], t->classes[1]);
    }
    if (pos == 0) {
        char *tmp = t->classes[0];
        t->classes[0] = t->classes[1];
        t->classes[1] = tmp;
        for (size_t i = 0; i < n; i++)
            if (t->label[i] >= 0) t->label[i] = 1 - t->label[i];
    }
    return FM_OK;
}

static int resolve(const fm_frame_t *frame, const char *name, int task, const char *positive,
                   search_target_t *t, fm_error_t *err) {
    int col = fm_frame_find(frame, name);
    if (col < 0)
        return fm_error_set(err, FM_EINVAL, "target: column '%s' is not in %s", name,
                            frame->source ? frame->source : "the data");
    const fm_column_t *c = &frame->columns[col];
    size_t n = frame->nrows;
    t->column = col;
    if (task < 0) {
        double distinct[3];
        if (c->type == FM_COLUMN_CATEGORICAL)
            task = c->dict.count > 2 ? FM_TASK_MULTICLASS : FM_TASK_BINARY;
        else
            task = distinct_numbers(c, n, 2, distinct) == 2 ? FM_TASK_BINARY : FM_TASK_REGRESSION;
    }
    t->task = (fm_task_t)task;
    t->label = malloc((n ? n : 1) * sizeof *t->label);
    if (!t->label) return fm_error_set(err, FM_ENOMEM, "out of memory");
    if (t->task == FM_TASK_REGRESSION) {
        if (c->type != FM_COLUMN_NUMERIC)
            return fm_error_set(err, FM_EDATA,
                                "target column '%s' is not numeric, so it cannot be a regression "
                                "target",
                                name);
        if (positive)
            return fm_error_set(err, FM_EINVAL, "positive: applies to binary targets only");
        t->value = malloc((n ? n : 1) * sizeof *t->value);
        if (!t->value) return fm_error_set(err, FM_ENOMEM, "out of memory");
        memcpy(t->value, c->values, n * sizeof *t->value);
        for (size_t i = 0; i < n; i++)
            t->label[i] = isnan(t->value[i]) ? -1 : 0;
        return FM_OK;
    }
    int rc = c->type == FM_COLUMN_NUMERIC ? numeric_classes(c, n, t, err)
                                          : categorical_classes(c, n, t, err);
    if (rc) return rc;
    if (t->nclasses < 2)
        return fm_error_set(err, FM_EDATA, "target column '%s' has %s; a classifier needs two",
                            name, t->nclasses ? "only one class" : "no values");
    if (t->task == FM_TASK_BINARY && t->nclasses != 2)
        return fm_error_set(err, FM_EDATA,
                            "target column '%s' has %zu classes, so it is not binary", name,
                            t->nclasses);
    if (t->task == FM_TASK_BINARY) return order_binary(t, name, positive, n, err);
    if (positive)
        return fm_error_set(err, FM_EINVAL,
                            "positive: applies to binary targets only; '%s' has "
                            "%zu classes",
                            name, t->nclasses);
    return FM_OK;
}

int search_target_resolve(const fm_frame_t *frame, const char *name, int task, const char *positive,
                          search_target_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    int rc = resolve(frame, name, task, positive, out, err);
    if (rc) search_target_deinit(out);
    return rc;
}
