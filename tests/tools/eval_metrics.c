/*
 * eval_metrics: reads score vectors from stdin and prints the finmaas metric report as one line
 * of JSON, so tests/ref/test_metrics.py can compare every number with sklearn.metrics.
 *
 * Input, whitespace separated:
 *   line 1:  binary N [weighted] [threshold T]  |  multiclass N K [weighted]  |
 *            regression N [weighted]
 *   N rows:  binary "score label [weight]", multiclass "p_1 .. p_K label [weight]",
 *            regression "pred y [weight]"
 * The binary report is taken at threshold T, 0.5 when not given. Labels are integers (0/1 for
 * binary, 0..K-1 for multiclass); numbers must be finite. Anything else, a missing or extra row,
 * a missing or extra field, is an error naming the line and field; the exit status is then 1.
 */
#include "core/error.h"
#include "eval/metrics.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_ROWS = 50000000,  /* 50 million rows of a few numbers: well under 4 GiB */
    MAX_CLASSES = 1000,   /* more classes than any bank model has */
    MAX_CELLS = 50000000, /* rows x classes of a multiclass matrix */
    MAX_LINE = 1 << 20,   /* a row of MAX_CLASSES numbers fits many times over */
};

typedef enum { KIND_BINARY, KIND_MULTICLASS, KIND_REGRESSION } kind_t;

/* One line being tokenised, with its number for messages. */
typedef struct cursor {
    char *p;
    size_t line;
    int field;
} cursor_t;

/* The next whitespace-separated token, NUL-terminated in place, or NULL at the end of the line. */
static char *next_token(cursor_t *c) {
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')
        c->p++;
    if (!*c->p) return NULL;
    char *start = c->p;
    while (*c->p && *c->p != ' ' && *c->p != '\t' && *c->p != '\r' && *c->p != '\n')
        c->p++;
    if (*c->p) *c->p++ = '\0';
    c->field++;
    return start;
}

static int read_number(cursor_t *c, const char *what, double *out, fm_error_t *err) {
    char *tok = next_token(c), *end;
    if (!tok)
        return fm_error_set(err, FM_EPARSE, "line %zu: missing field %d (%s)", c->line,
                            c->field + 1, what);
    double v = strtod(tok, &end);
    if (end == tok || *end || !isfinite(v))
        return fm_error_set(err, FM_EPARSE, "line %zu, field %d (%s): not a finite number: '%.40s'",
                            c->line, c->field, what, tok);
    *out = v;
    return 0;
}

static int read_int(cursor_t *c, const char *what, long min, long max, long *out, fm_error_t *err) {
    char *tok = next_token(c), *end;
    if (!tok)
        return fm_error_set(err, FM_EPARSE, "line %zu: missing field %d (%s)", c->line,
                            c->field + 1, what);
    errno = 0;
    long v = strtol(tok, &end, 10);
    if (end == tok || *end || errno == ERANGE || v < min || v > max)
        return fm_error_set(
            err, FM_EPARSE,
            "line %zu, field %d (%s): expected an integer in [%ld, %ld], got '%.40s'", c->line,
            c->field, what, min, max, tok);
    *out = v;
    return 0;
}

static int expect_end(cursor_t *c, fm_error_t *err) {
    char *tok = next_token(c);
    if (tok)
        return fm_error_set(err, FM_EPARSE, "line %zu, field %d: unexpected extra field '%.40s'",
                            c->line, c->field, tok);
    return 0;
}

/* The next line of stdin into *line; 0 at end of input, -1 on error (err set). */
static int read_line(char **line, size_t *cap, size_t number, fm_error_t *err) {
    ssize_t len = getline(line, cap, stdin);
    if (len < 0) {
        if (ferror(stdin))
            return fm_error_set(err, FM_EIO, "line %zu: %s", number, strerror(errno));
        return 0;
    }
    if (len > MAX_LINE)
        return fm_error_set(err, FM_ELIMIT, "line %zu: longer than %d bytes", number, MAX_LINE);
    if (memchr(*line, '\0', (size_t)len))
        return fm_error_set(err, FM_EPARSE, "line %zu: contains a NUL byte", number);
    return 1;
}

typedef struct table {
    kind_t kind;
    size_t n, k;
    int weighted;
    double threshold;
    double *values; /* binary: score[n]; multiclass: prob[n * k]; regression: pred[n] */
    double *target; /* regression: y[n] */
    double *weight; /* weight[n] or NULL */
    int *label;     /* binary, multiclass: label[n] */
} table_t;

static int parse_header(char *text, table_t *t, fm_error_t *err) {
    cursor_t c = {text, 1, 0};
    char *kind = next_token(&c);
    long n = 0, k = 1;
    if (!kind) return fm_error_set(err, FM_EPARSE, "line 1: empty, expected a header");
    if (strcmp(kind, "binary") == 0)
        t->kind = KIND_BINARY;
    else if (strcmp(kind, "multiclass") == 0)
        t->kind = KIND_MULTICLASS;
    else if (strcmp(kind, "regression") == 0)
        t->kind = KIND_REGRESSION;
    else
        return fm_error_set(
            err, FM_EPARSE,
            "line 1, field 1: expected binary, multiclass or regression, got '%.40s'", kind);
    if (read_int(&c, "rows", 1, MAX_ROWS, &n, err)) return err->code;
    if (t->kind == KIND_MULTICLASS) {
        if (read_int(&c, "classes", 1, MAX_CLASSES, &k, err)) return err->code;
        if (n * k > MAX_CELLS)
            return fm_error_set(err, FM_ELIMIT, "line 1: %ld rows x %ld classes exceed %d cells", n,
                                k, MAX_CELLS);
    }
    t->n = (size_t)n;
    t->k = (size_t)k;
    t->threshold = 0.5;
    for (char *tok; (tok = next_token(&c));) {
        if (strcmp(tok, "weighted") == 0 && !t->weighted) {
            t->weighted = 1;
        } else if (strcmp(tok, "threshold") == 0 && t->kind == KIND_BINARY) {
            if (read_number(&c, "threshold", &t->threshold, err)) return err->code;
        } else {
            return fm_error_set(err, FM_EPARSE, "line 1, field %d: unexpected '%.40s'", c.field,
                                tok);
        }
    }
    return 0;
}

static int parse_row(char *text, size_t line, size_t i, table_t *t, fm_error_t *err) {
    cursor_t c = {text, line, 0};
    long label;
    switch (t->kind) {
    case KIND_BINARY:
        if (read_number(&c, "score", &t->values[i], err)) return err->code;
        if (read_int(&c, "label", 0, 1, &label, err)) return err->code;
        t->label[i] = (int)label;
        break;
    case KIND_MULTICLASS:
        for (size_t j = 0; j < t->k; j++)
            if (read_number(&c, "probability", &t->values[i * t->k + j], err)) return err->code;
        if (read_int(&c, "label", 0, (long)t->k - 1, &label, err)) return err->code;
        t->label[i] = (int)label;
        break;
    case KIND_REGRESSION:
        if (read_number(&c, "prediction", &t->values[i], err)) return err->code;
        if (read_number(&c, "target", &t->target[i], err)) return err->code;
        break;
    }
    if (t->weighted && read_number(&c, "weight", &t->weight[i], err)) return err->code;
    return expect_end(&c, err);
}

/* Reads the whole input into t (arrays owned by t). */
static int read_table(table_t *t, fm_error_t *err) {
    char *line = NULL;
    size_t cap = 0, number = 1;
    int rc = read_line(&line, &cap, number, err);
    if (rc == 0) rc = fm_error_set(err, FM_EPARSE, "empty input, expected a header line");
    if (rc < 0 || (rc = parse_header(line, t, err))) goto done;

    t->values = malloc(t->n * t->k * sizeof(double));
    t->target = t->kind == KIND_REGRESSION ? malloc(t->n * sizeof(double)) : NULL;
    t->weight = t->weighted ? malloc(t->n * sizeof(double)) : NULL;
    t->label = t->kind != KIND_REGRESSION ? malloc(t->n * sizeof(int)) : NULL;
    if (!t->values || (t->kind == KIND_REGRESSION) != (t->target != NULL) ||
        (t->weighted && !t->weight) || (t->kind != KIND_REGRESSION && !t->label)) {
        rc = fm_error_set(err, FM_ENOMEM, "no memory for %zu rows", t->n);
        goto done;
    }
    for (size_t i = 0; i < t->n; i++) {
        number++;
        rc = read_line(&line, &cap, number, err);
        if (rc == 0)
            rc = fm_error_set(err, FM_EPARSE, "truncated input: expected %zu rows, got %zu", t->n,
                              i);
        if (rc < 0 || (rc = parse_row(line, number, i, t, err))) goto done;
    }
    /* Only blank lines may follow the last row. */
    while ((rc = read_line(&line, &cap, ++number, err)) > 0) {
        cursor_t c = {line, number, 0};
        char *tok = next_token(&c);
        if (tok) {
            rc = fm_error_set(err, FM_EPARSE, "line %zu: data after the %zu declared rows: '%.40s'",
                              number, t->n, tok);
            break;
        }
    }
done:
    free(line);
    return rc < 0 ? rc : 0;
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: eval_metrics < input (see tests/tools/eval_metrics.c)\n");
        return 2;
    }
    table_t t = {0};
    fm_error_t err;
    fm_error_clear(&err);
    int status = 1;
    cJSON *report = NULL;
    char *text = NULL;
    if (read_table(&t, &err)) {
        fprintf(stderr, "eval_metrics: stdin %s\n", fm_error_message(&err));
        goto done;
    }
    switch (t.kind) {
    case KIND_BINARY:
        report = fm_metrics_binary_report(t.values, t.label, t.weight, t.n, t.threshold);
        break;
    case KIND_MULTICLASS:
        report = fm_metrics_multiclass_report(t.values, t.label, t.weight, t.n, t.k);
        break;
    case KIND_REGRESSION:
        report = fm_metrics_regression_report(t.values, t.target, t.weight, t.n);
        break;
    }
    text = report ? cJSON_PrintUnformatted(report) : NULL;
    if (!text) {
        fprintf(stderr, "eval_metrics: out of memory building the report\n");
        goto done;
    }
    printf("%s\n", text);
    status = 0;
done:
    free(text);
    cJSON_Delete(report);
    free(t.values);
    free(t.target);
    free(t.weight);
    free(t.label);
    return status;
}
