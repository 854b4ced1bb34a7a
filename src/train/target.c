/*
 * The target column (train/target.h): task inference, class labels and their order, per-row
 * labels or values.
 */
#include "train/target.h"
#include "core/buf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FM_MAX_CLASSES 1000

void fm_target_deinit(fm_target_t *t) {
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

/* Text of a numeric class label: "1", "0.5", shortest exact form. */
static char *number_label(double v) {
    fm_buf_t b = FM_BUF_INIT;
    if (fm_buf_json_number(&b, v)) {
        fm_buf_free(&b);
        return NULL;
    }
    return fm_buf_take(&b);
}

/* The sorted distinct non-missing values of a numeric column (at most limit + 1 of them). */
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

static int classes_from_numbers(const fm_column_t *c, size_t nrows, fm_target_t *t,
                                fm_error_t *err) {
    double *distinct = malloc((FM_MAX_CLASSES + 1) * sizeof *distinct);
    if (!distinct) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t k = distinct_numbers(c, nrows, FM_MAX_CLASSES, distinct);
    if (k > FM_MAX_CLASSES) {
        free(distinct);
        return fm_error_set(err, FM_EDATA,
                            "target column '%s' has more than %d distinct values; "
                            "use --task regression for a numeric target",
                            c->name, FM_MAX_CLASSES);
    }
    t->classes = calloc(k ? k : 1, sizeof *t->classes);
    if (!t->classes) {
        free(distinct);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    t->nclasses = k;
    for (size_t j = 0; j < k; j++) {
        t->classes[j] = number_label(distinct[j]);
        if (!t->classes[j]) {
            free(distinct);
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < nrows; i++) {
        double v = c->values[i];
        t->label[i] = -1;
        if (isnan(v)) continue;
        double *hit = bsearch(&v, distinct, k, sizeof *distinct, compare_double);
        t->label[i] = (int32_t)(hit - distinct);
    }
    free(distinct);
    return FM_OK;
}

static int classes_from_categories(const fm_column_t *c, size_t nrows, fm_target_t *t,
                                   fm_error_t *err) {
    size_t k = c->dict.count;
    if (k > FM_MAX_CLASSES)
        return fm_error_set(err, FM_EDATA, "target column '%s' has %zu classes (at most %d)",
                            c->name, k, FM_MAX_CLASSES);
    /* Only categories that occur count: the dictionary holds exactly those. */
    t->classes = calloc(k ? k : 1, sizeof *t->classes);
    int32_t *rank = malloc((k ? k : 1) * sizeof *rank);
    if (!t->classes || !rank) {
        free(rank);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    t->nclasses = k;
    for (size_t j = 0; j < k; j++) {
        t->classes[j] = strdup(fm_strdict_get(&c->dict, (int32_t)j));
        if (!t->classes[j]) {
            free(rank);
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        }
    }
    qsort(t->classes, k, sizeof *t->classes, compare_text);
    for (size_t j = 0; j < k; j++)
        for (size_t s = 0; s < k; s++)
            if (!strcmp(fm_strdict_get(&c->dict, (int32_t)j), t->classes[s])) rank[j] = (int32_t)s;
    for (size_t i = 0; i < nrows; i++)
        t->label[i] = c->codes[i] < 0 ? -1 : rank[c->codes[i]];
    free(rank);
    return FM_OK;
}

/* Moves the positive class to index 1 of a two-class target, relabelling rows. */
static int order_binary(fm_target_t *t, const char *column, const char *positive, size_t nrows,
                        fm_error_t *err) {
    size_t pos = 1;
    if (positive) {
        pos = t->nclasses;
        for (size_t j = 0; j < t->nclasses; j++)
            if (!strcmp(t->classes[j], positive)) pos = j;
        if (pos == t->nclasses)
            return fm_error_set(err, FM_EINVAL,
                                "positive class '%s' is not a value of target column '%s' "
                                "(its values are '%s' and '%s')",
                                positive, column, t->classes[0], t->classes[1]);
    }
    if (pos == 0) {
        char *tmp = t->classes[0];
        t->classes[0] = t->classes[1];
        t->classes[1] = tmp;
        for (size_t i = 0; i < nrows; i++)
            if (t->label[i] >= 0) t->label[i] = 1 - t->label[i];
    }
    return FM_OK;
}

int fm_target_resolve(const fm_frame_t *frame, size_t col, int task, const char *positive,
                      fm_target_t *t, fm_error_t *err) {
    memset(t, 0, sizeof *t);
    const fm_column_t *c = &frame->columns[col];
    size_t n = frame->nrows;
    t->column = col;
    if (task < 0) {
        if (c->type == FM_COLUMN_CATEGORICAL) {
            task = c->dict.count > 2 ? FM_TASK_MULTICLASS : FM_TASK_BINARY;
        } else {
            double distinct[3];
            task = distinct_numbers(c, n, 2, distinct) == 2 ? FM_TASK_BINARY : FM_TASK_REGRESSION;
        }
    }
    t->task = (fm_task_t)task;
    int rc = FM_OK;
    if (t->task == FM_TASK_REGRESSION) {
        if (c->type != FM_COLUMN_NUMERIC)
            return fm_error_set(err, FM_EDATA,
                                "target column '%s' is not numeric, so it cannot be a regression "
                                "target (use --task binary or multiclass)",
                                c->name);
        t->value = malloc((n ? n : 1) * sizeof *t->value);
        t->label = malloc((n ? n : 1) * sizeof *t->label);
        if (!t->value || !t->label) {
            fm_target_deinit(t);
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        }
        memcpy(t->value, c->values, n * sizeof *t->value);
        for (size_t i = 0; i < n; i++) {
            t->label[i] = isnan(t->value[i]) ? -1 : 0;
            t->missing += isnan(t->value[i]) ? 1 : 0;
        }
        return FM_OK;
    }
    t->label = malloc((n ? n : 1) * sizeof *t->label);
    if (!t->label) return fm_error_set(err, FM_ENOMEM, "out of memory");
    rc = c->type == FM_COLUMN_NUMERIC ? classes_from_numbers(c, n, t, err)
                                      : classes_from_categories(c, n, t, err);
    if (rc) {
        fm_target_deinit(t);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        t->missing += t->label[i] < 0 ? 1 : 0;
    if (t->nclasses < 2) {
        rc = t->nclasses == 0
                 ? fm_error_set(err, FM_EDATA, "target column '%s' has no values", c->name)
                 : fm_error_set(err, FM_EDATA,
                                "target column '%s' has only one class ('%s'); a classifier "
                                "needs at least two",
                                c->name, t->classes[0]);
    } else if (t->task == FM_TASK_BINARY && t->nclasses != 2) {
        rc = fm_error_set(err, FM_EDATA,
                          "target column '%s' has %zu classes, so it is not binary "
                          "(use --task multiclass)",
                          c->name, t->nclasses);
    } else if (t->task == FM_TASK_BINARY) {
        rc = order_binary(t, c->name, positive, n, err);
    } else if (positive) {
        rc = fm_error_set(err, FM_EINVAL,
                          "--positive applies to binary targets only; '%s' has %zu "
                          "classes",
                          c->name, t->nclasses);
    }
    if (rc) fm_target_deinit(t);
    return rc;
}
