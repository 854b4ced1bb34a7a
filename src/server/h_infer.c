/*
 * POST /v2/models/{name}[/versions/{version}]/infer: the Open Inference Protocol's inference
 * request. Inputs are either one tensor per raw input column, named as the model's columns
 * (shape [N] or [N, 1]; numbers for the FP, INT, UINT and BOOL types, strings for BYTES; the stored
 * preprocessing is applied), or one FP32/FP64 tensor "input" of shape [N, F] of already-encoded
 * features. Tensors named otherwise are ignored, so whole records may be sent. Outputs are
 * "probability" (FP32 [N] = P(positive class) for binary models, [N, K] for multiclass) and
 * "label" (BYTES [N]), or "prediction" (FP64 [N]) for regression; a request may ask for a subset
 * with "outputs". The request's "id" is echoed.
 *
 * The explain route (h_explain.c) takes the same request: fm_v2_serve parses and scores it for
 * both, and with explain set also reads the explanation settings from the V2 "parameters" and
 * appends one explanation per row to the reply once the rows are scored.
 */
#include "server/tabular.h"

#include <stdlib.h>
#include <string.h>

#define INLINE_TOKENS 256

typedef enum { KIND_NUMBER, KIND_BOOL, KIND_BYTES } kind_t;

typedef struct v2_input {
    int column;  /* model input column, -1 when not one of the model's */
    int encoded; /* the "input" tensor of encoded features */
    kind_t kind;
    int data; /* token of the data array */
    long rows;
    long cols; /* second dimension (1 for named inputs) */
    const char *name;
    size_t name_len;
} v2_input_t;

typedef struct v2_state {
    fm_jdoc_t doc;
    fm_served_t *served;
    fm_scratch_t *scratch;
    int n;
    int id;      /* token of "id", -1 when absent */
    int want[3]; /* probability / label / prediction asked for */
    int explain; /* the explain route: explanations follow the outputs */
    fm_explain_ask_t ask;
    int *tokens;
    int inline_tokens[INLINE_TOKENS];
} v2_state_t;

enum { OUT_PROBABILITY = 0, OUT_LABEL = 1, OUT_PREDICTION = 2 };

static void state_free(v2_state_t *st, fm_request_t *req, int ok) {
    if (!st) return;
    if (st->scratch) fm_scratch_put(st->served, st->scratch);
    fm_release_for_request(req, st->served, ok);
    if (st->tokens != st->inline_tokens) free(st->tokens);
    fm_jdoc_free(&st->doc);
    free(st);
}

static int datatype_kind(const char *s, size_t n, kind_t *kind) {
    static const char *const numbers[] = {"FP16",  "FP32",  "FP64",   "INT8",   "INT16", "INT32",
                                          "INT64", "UINT8", "UINT16", "UINT32", "UINT64"};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        if (strlen(numbers[i]) == n && !memcmp(s, numbers[i], n)) {
            *kind = KIND_NUMBER;
            return 0;
        }
    if (n == 4 && !memcmp(s, "BOOL", 4)) {
        *kind = KIND_BOOL;
        return 0;
    }
    if (n == 5 && !memcmp(s, "BYTES", 5)) {
        *kind = KIND_BYTES;
        return 0;
    }
    return -1;
}

/* Reads one input tensor object at token i into in. */
static int read_input(v2_state_t *st, int i, int index, v2_input_t *in, fm_error_t *err) {
    fm_jdoc_t *d = &st->doc;
    if (d->t[i].type != JSMN_OBJECT)
        return fm_error_set(err, FM_EPARSE, "inputs[%d] must be an object", index);
    int name = -1, shape = -1, datatype = -1, data = -1;
    int keys = d->t[i].size, j = i + 1;
    for (int k = 0; k < keys; k++) {
        int value = j + 1;
        if (fm_jdoc_is(d, j, "name"))
            name = value;
        else if (fm_jdoc_is(d, j, "shape"))
            shape = value;
        else if (fm_jdoc_is(d, j, "datatype"))
            datatype = value;
        else if (fm_jdoc_is(d, j, "data"))
            data = value;
        j = fm_jdoc_next(d, value);
    }
    const char *missing = name < 0       ? "name"
                          : shape < 0    ? "shape"
                          : datatype < 0 ? "datatype"
                          : data < 0     ? "data"
                                         : NULL;
    if (missing) return fm_error_set(err, FM_EPARSE, "inputs[%d] has no '%s'", index, missing);
    if (d->t[name].type != JSMN_STRING || d->t[datatype].type != JSMN_STRING)
        return fm_error_set(err, FM_EPARSE, "inputs[%d]: 'name' and 'datatype' must be strings",
                            index);
    int rc = fm_jdoc_string(d, name, &in->name, &in->name_len, err);
    if (rc) return rc;
    const char *dt;
    size_t dtn;
    if ((rc = fm_jdoc_string(d, datatype, &dt, &dtn, err))) return rc;
    if (datatype_kind(dt, dtn, &in->kind))
        return fm_error_set(err, FM_EDATA, "input '%.*s': unknown datatype '%.*s'",
                            (int)in->name_len, in->name, (int)dtn, dt);
    if (d->t[shape].type != JSMN_ARRAY || d->t[shape].size < 1 || d->t[shape].size > 2 ||
        fm_jdoc_int(d, shape + 1, 0, 100000000, &in->rows))
        return fm_error_set(err, FM_EDATA, "input '%.*s': shape must be [N] or [N, F]",
                            (int)in->name_len, in->name);
    in->cols = 1;
    if (d->t[shape].size == 2 && fm_jdoc_int(d, shape + 2, 1, 100000000, &in->cols))
        return fm_error_set(err, FM_EDATA, "input '%.*s': shape must be [N] or [N, F]",
                            (int)in->name_len, in->name);
    if (d->t[data].type != JSMN_ARRAY)
        return fm_error_set(err, FM_EPARSE, "input '%.*s': 'data' must be an array",
                            (int)in->name_len, in->name);
    in->data = data;
    in->column = fm_strdict_find(&st->served->inputs, in->name, in->name_len);
    in->encoded = in->column < 0 && in->name_len == 5 && !memcmp(in->name, "input", 5);
    if (in->column >= 0 && in->cols != 1)
        return fm_error_set(err, FM_EDATA,
                            "input '%.*s': shape must be [N] or [N, 1], got [%ld, "
                            "%ld]",
                            (int)in->name_len, in->name, in->rows, in->cols);
    return FM_OK;
}

/* Visits the values of a data array in row-major order (nested arrays flattened). Returns the
 * number of values, calling fn on each value token. */
static long walk_values(const fm_jdoc_t *d, int data, int (*fn)(void *, int, long), void *ctx,
                        int *rc) {
    long count = 0;
    int end = fm_jdoc_next(d, data);
    for (int j = data + 1; j < end; j++) {
        if (d->t[j].type == JSMN_ARRAY) continue;
        if (d->t[j].type == JSMN_OBJECT) {
            *rc = FM_EDATA;
            return -1;
        }
        if (fn && (*rc = fn(ctx, j, count))) return -1;
        count++;
    }
    return count;
}

typedef struct fill_ctx {
    v2_state_t *st;
    const v2_input_t *in;
    fm_error_t *err;
    double *x; /* encoded input: destination */
} fill_ctx_t;

static int check_kind(fill_ctx_t *f, int j) {
    const fm_jdoc_t *d = &f->st->doc;
    const v2_input_t *in = f->in;
    double v;
    fm_jprim_t p = d->t[j].type == JSMN_STRING ? FM_JPRIM_BAD : fm_jdoc_primitive(d, j, &v);
    if (p == FM_JPRIM_NULL) return FM_OK;
    if (in->kind == KIND_BYTES && d->t[j].type != JSMN_STRING)
        return fm_error_set(f->err, FM_EDATA, "input '%.*s': datatype BYTES needs strings",
                            (int)in->name_len, in->name);
    if (in->kind == KIND_NUMBER && p != FM_JPRIM_NUMBER)
        return fm_error_set(f->err, FM_EDATA, "input '%.*s': datatype needs numbers",
                            (int)in->name_len, in->name);
    if (in->kind == KIND_BOOL && p != FM_JPRIM_TRUE && p != FM_JPRIM_FALSE && p != FM_JPRIM_NUMBER)
        return fm_error_set(f->err, FM_EDATA, "input '%.*s': datatype BOOL needs true or false",
                            (int)in->name_len, in->name);
    return FM_OK;
}

static int fill_named(void *ctx, int j, long k) {
    fill_ctx_t *f = ctx;
    int rc = check_kind(f, j);
    if (rc) return rc;
    size_t ncols = f->st->served->model->prep->ncolumns;
    f->st->tokens[(size_t)k * ncols + (size_t)f->in->column] = j;
    return FM_OK;
}

static int fill_encoded(void *ctx, int j, long k) {
    fill_ctx_t *f = ctx;
    double v;
    if (fm_jdoc_primitive(&f->st->doc, j, &v) != FM_JPRIM_NUMBER)
        return fm_error_set(f->err, FM_EDATA, "input 'input': encoded features must be numbers");
    f->x[k] = v;
    return FM_OK;
}

static int finish(fm_request_t *req, fm_error_t *err);

static int parse_outputs(v2_state_t *st, int outputs, fm_error_t *err) {
    fm_jdoc_t *d = &st->doc;
    if (d->t[outputs].type != JSMN_ARRAY)
        return fm_error_set(err, FM_EPARSE, "'outputs' must be an array");
    memset(st->want, 0, sizeof st->want);
    int regression = st->served->model->task == FM_TASK_REGRESSION;
    for (int k = 0, j = outputs + 1; k < d->t[outputs].size; k++, j = fm_jdoc_next(d, j)) {
        int name = -1;
        if (d->t[j].type == JSMN_OBJECT)
            for (int key = j + 1, m = 0; m < d->t[j].size; m++, key = fm_jdoc_next(d, key + 1))
                if (fm_jdoc_is(d, key, "name")) name = key + 1;
        if (name >= 0 && !regression && fm_jdoc_is(d, name, "probability"))
            st->want[OUT_PROBABILITY] = 1;
        else if (name >= 0 && !regression && fm_jdoc_is(d, name, "label"))
            st->want[OUT_LABEL] = 1;
        else if (name >= 0 && regression && fm_jdoc_is(d, name, "prediction"))
            st->want[OUT_PREDICTION] = 1;
        else
            return fm_error_set(err, FM_EDATA,
                                "outputs[%d] is not an output of model '%s' "
                                "(%s)",
                                k, st->served->name,
                                regression ? "prediction" : "probability, label");
    }
    return FM_OK;
}

/* The explanation settings among the request's V2 "parameters" (other parameters are ignored,
 * as for inference). */
static int parse_parameters(v2_state_t *st, int parameters, fm_error_t *err) {
    fm_jdoc_t *d = &st->doc;
    if (d->t[parameters].type != JSMN_OBJECT)
        return fm_error_set(err, FM_EPARSE, "'parameters' must be an object");
    for (int k = 0, key = parameters + 1; k < d->t[parameters].size;
         k++, key = fm_jdoc_next(d, key + 1)) {
        int known;
        int rc = fm_explain_ask_read(st->served, d, key, &st->ask, &known, err);
        if (rc) return rc;
    }
    return FM_OK;
}

static int parse_request(fm_request_t *req, v2_state_t *st, fm_error_t *err) {
    fm_jdoc_t *d = &st->doc;
    int rc = fm_jdoc_parse(d, req->body.data, req->body.len, err);
    if (rc) return rc;
    int inputs = -1, outputs = -1, parameters = -1;
    st->id = -1;
    for (int k = 0, j = 1; k < d->t[0].size; k++) {
        int value = j + 1;
        if (fm_jdoc_is(d, j, "inputs"))
            inputs = value;
        else if (fm_jdoc_is(d, j, "outputs"))
            outputs = value;
        else if (fm_jdoc_is(d, j, "id"))
            st->id = value;
        else if (fm_jdoc_is(d, j, "parameters"))
            parameters = value;
        j = fm_jdoc_next(d, value);
    }
    if (st->explain && parameters >= 0 && (rc = parse_parameters(st, parameters, err))) return rc;
    if (inputs < 0 || d->t[inputs].type != JSMN_ARRAY || d->t[inputs].size == 0)
        return fm_error_set(err, FM_EPARSE, "the request needs a non-empty 'inputs' array");
    if (st->id >= 0 && d->t[st->id].type != JSMN_STRING)
        return fm_error_set(err, FM_EPARSE, "'id' must be a string");
    int regression = st->served->model->task == FM_TASK_REGRESSION;
    st->want[OUT_PROBABILITY] = st->want[OUT_LABEL] = !regression;
    st->want[OUT_PREDICTION] = regression;
    if (outputs >= 0 && (rc = parse_outputs(st, outputs, err))) return rc;

    int count = d->t[inputs].size;
    v2_input_t small[32], *in = count <= 32 ? small : malloc((size_t)count * sizeof *in);
    if (!in) return fm_error_set(err, FM_ENOMEM, "out of memory");
    long n = -1;
    int encoded = -1;
    for (int k = 0, j = inputs + 1; !rc && k < count; k++, j = fm_jdoc_next(d, j)) {
        rc = read_input(st, j, k, &in[k], err);
        if (rc || (in[k].column < 0 && !in[k].encoded)) continue;
        if (in[k].encoded) encoded = k;
        if (n >= 0 && in[k].rows != n)
            rc = fm_error_set(err, FM_EDATA, "input '%.*s' has %ld rows, others have %ld",
                              (int)in[k].name_len, in[k].name, in[k].rows, n);
        n = in[k].rows;
    }
    /* Count the values before allocating anything sized by the claimed shape. */
    for (int k = 0; !rc && k < count; k++) {
        if (in[k].column < 0 && !in[k].encoded) continue;
        long got = walk_values(d, in[k].data, NULL, NULL, &rc);
        if (rc)
            rc = fm_error_set(err, FM_EDATA,
                              "input '%.*s': data must hold numbers, strings or "
                              "null",
                              (int)in[k].name_len, in[k].name);
        else if (got != in[k].rows * in[k].cols)
            rc = fm_error_set(err, FM_EDATA,
                              "input '%.*s': shape [%ld%s] needs %ld values, "
                              "data holds %ld",
                              (int)in[k].name_len, in[k].name, in[k].rows,
                              in[k].cols > 1 || in[k].encoded ? ", ..." : "",
                              in[k].rows * in[k].cols, got);
    }
    const fm_model_t *m = st->served->model;
    size_t ncols = m->prep->ncolumns;
    if (!rc && n <= 0)
        rc = n == 0 ? fm_error_set(err, FM_EDATA, "the request has no rows (shape [0])")
                    : fm_error_set(err, FM_EDATA,
                                   "no input is one of model '%s''s inputs "
                                   "(first: '%s')",
                                   st->served->name, m->prep->columns[0].name);
    if (!rc && !(st->scratch = fm_scratch_get(st->served, (int)n)))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory for %ld rows", n);
    if (!rc && encoded >= 0) {
        v2_input_t *e = &in[encoded];
        if ((size_t)e->cols != m->prep->nfeatures)
            rc = fm_error_set(err, FM_EDATA,
                              "input 'input': shape must be [N, %zu] (the "
                              "encoded features), got [%ld, %ld]",
                              m->prep->nfeatures, e->rows, e->cols);
        if (!rc && e->kind != KIND_NUMBER)
            rc = fm_error_set(err, FM_EDATA, "input 'input': datatype must be FP32 or FP64");
        fill_ctx_t f = {st, e, err, st->scratch->x};
        long got = rc ? 0 : walk_values(d, e->data, fill_encoded, &f, &rc);
        if (!rc && got != e->rows * e->cols)
            rc = fm_error_set(err, FM_EDATA, "input 'input': shape [%ld, %ld] but %ld values",
                              e->rows, e->cols, got);
    } else if (!rc) {
        size_t cells = (size_t)n * ncols;
        st->tokens = cells <= INLINE_TOKENS ? st->inline_tokens : malloc(cells * sizeof(int));
        if (!st->tokens) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t c = 0; !rc && c < cells; c++)
            st->tokens[c] = -1;
        for (int k = 0; !rc && k < count; k++) {
            if (in[k].column < 0) continue;
            fill_ctx_t f = {st, &in[k], err, NULL};
            long got = walk_values(d, in[k].data, fill_named, &f, &rc);
            if (rc == FM_EDATA && err->code != FM_EDATA)
                fm_error_set(err, FM_EDATA, "input '%.*s': data must not hold objects",
                             (int)in[k].name_len, in[k].name);
            if (!rc && got != n)
                rc = fm_error_set(err, FM_EDATA, "input '%.*s': shape [%ld] but %ld values",
                                  (int)in[k].name_len, in[k].name, n, got);
        }
        if (!rc) rc = fm_encode_tokens(st->served, d, st->tokens, (int)n, st->scratch, err);
    }
    if (in != small) free(in);
    st->n = (int)n;
    return rc;
}

int fm_h_v2_infer(fm_request_t *req, fm_error_t *err) {
    return fm_v2_serve(req, 0, err);
}

int fm_v2_serve(fm_request_t *req, int explain, fm_error_t *err) {
    /* malloc, not calloc: the state holds kilobytes of token space that need no zeroing. */
    v2_state_t *st = malloc(sizeof *st);
    if (!st) return fm_error_set(err, FM_ENOMEM, "out of memory");
    st->served = NULL;
    st->scratch = NULL;
    st->tokens = NULL;
    st->n = 0;
    st->id = -1;
    st->doc.heap = NULL;
    st->explain = explain;
    fm_explain_ask_defaults(&st->ask);
    int rc = fm_acquire_for_request(req, &st->served, err);
    if (rc) {
        free(st);
        return rc;
    }
    /* Refused before any parsing or scoring when the version cannot explain. */
    if (explain) rc = fm_explain_available(st->served, err);
    if (!rc) rc = parse_request(req, st, err);
    if (!rc) rc = fm_score_then(req, st->served, st->scratch, st->n, st, finish, err);
    if (rc) state_free(st, req, 0);
    return rc;
}

/* Writes the response from the scored rows (inline, or after the batcher resumed us). The reply
 * is always made here, an error included, so the caller never frees the state after it. */
static int finish(fm_request_t *req, fm_error_t *err) {
    v2_state_t *st = req->resume_state;
    req->resume_state = NULL;
    const fm_served_t *s = st->served;
    const fm_model_t *m = s->model;
    const double *out = st->scratch->out;
    size_t width = fm_model_output_width(m);
    int n = st->n;
    fm_buf_t *b = &req->reply;
    fm_buf_reset(b);
    fm_buf_puts(b, "{\"model_name\":");
    fm_buf_json_string(b, s->name, strlen(s->name));
    fm_buf_puts(b, ",\"model_version\":\"");
    fm_buf_put_int(b, s->version);
    fm_buf_putc(b, '"');
    if (st->id >= 0) {
        const char *id;
        size_t id_len;
        if (fm_jdoc_string(&st->doc, st->id, &id, &id_len, err) == FM_OK) {
            fm_buf_puts(b, ",\"id\":");
            fm_buf_json_string(b, id, id_len);
        }
    }
    fm_buf_puts(b, ",\"outputs\":[");
    int first = 1;
    if (st->want[OUT_PROBABILITY]) {
        fm_buf_puts(b, "{\"name\":\"probability\",\"datatype\":\"FP32\",\"shape\":[");
        fm_buf_put_int(b, n);
        if (width > 1) {
            fm_buf_putc(b, ',');
            fm_buf_put_int(b, (long long)width);
        }
        fm_buf_puts(b, "],\"data\":[");
        for (size_t i = 0; i < (size_t)n * width; i++) {
            if (i) fm_buf_putc(b, ',');
            fm_put_probability(b, out[i]);
        }
        fm_buf_puts(b, "]}");
        first = 0;
    }
    if (st->want[OUT_LABEL]) {
        fm_buf_puts(b, first ? "{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":["
                             : ",{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[");
        fm_buf_put_int(b, n);
        fm_buf_puts(b, "],\"data\":[");
        for (int r = 0; r < n; r++) {
            if (r) fm_buf_putc(b, ',');
            fm_put_label(b, m, out + (size_t)r * width);
        }
        fm_buf_puts(b, "]}");
        first = 0;
    }
    if (st->want[OUT_PREDICTION]) {
        fm_buf_puts(b, first ? "{\"name\":\"prediction\",\"datatype\":\"FP64\",\"shape\":["
                             : ",{\"name\":\"prediction\",\"datatype\":\"FP64\",\"shape\":[");
        fm_buf_put_int(b, n);
        fm_buf_puts(b, "],\"data\":[");
        for (int r = 0; r < n; r++) {
            if (r) fm_buf_putc(b, ',');
            fm_put_value(b, out[r]);
        }
        fm_buf_puts(b, "]}");
    }
    fm_buf_putc(b, ']');
    int rc = st->explain ? fm_explain_put_rows(s, st->scratch, n, &st->ask, b, err) : FM_OK;
    if (rc) {
        /* The scored rows are handed over already: answer the error here, then free. */
        fm_reply_error(req, fm_http_status(rc), fm_error_message(err));
        state_free(st, req, 0);
        return FM_OK;
    }
    fm_buf_putc(b, '}');
    fm_reply_json(req, 200);
    state_free(st, req, 1);
    return FM_OK;
}
