/*
 * The TensorFlow Serving REST API:
 *   POST /v1/models/{name}[/versions/{v} | /labels/{label}]:predict
 *     {"instances": [{"col": value, ...}, ...]}  (row format)  -> {"predictions": [...]}
 *     {"inputs": {"col": [values], ...}}          (columnar)    -> {"outputs": ...}
 *   Rows may also be arrays of already-encoded features. Each prediction of a classifier is
 *   {"probability": p (binary: P(positive); multiclass: [p_1..p_K]), "label": "..."}; of a
 *   regression model, the value.
 *   GET /v1/models/{name}[/versions/{v}]: the version status.
 *
 * With "explain": true in a predict body each prediction is explained (h_explain.c; optional
 * "reasons": K and the other settings of the V2 explain route beside it): in the row format a
 * classifier's prediction objects gain "explanation"; otherwise (columnar inputs, or the plain
 * values of a regression model) the reply gains a top-level "explanations" array in row order.
 */
#include "server/tabular.h"

#include <stdlib.h>
#include <string.h>

typedef struct tf_state {
    fm_jdoc_t doc;
    fm_served_t *served;
    fm_scratch_t *scratch;
    int n;
    int columnar;
    int explain; /* "explain": true */
    fm_explain_ask_t ask;
    int *tokens;
} tf_state_t;

static void state_free(tf_state_t *st, fm_request_t *req, int ok) {
    if (st->scratch) fm_scratch_put(st->served, st->scratch);
    fm_release_for_request(req, st->served, ok);
    free(st->tokens);
    fm_jdoc_free(&st->doc);
    free(st);
}

/* Row i of encoded features (an array of F numbers) into x. */
static int encoded_row(tf_state_t *st, int i, double *x, fm_error_t *err) {
    const fm_jdoc_t *d = &st->doc;
    size_t nf = st->served->model->prep->nfeatures;
    if ((size_t)d->t[i].size != nf)
        return fm_error_set(err, FM_EDATA, "an encoded instance must have %zu numbers", nf);
    for (size_t k = 0; k < nf; k++)
        if (fm_jdoc_primitive(d, i + 1 + (int)k, &x[k]) != FM_JPRIM_NUMBER)
            return fm_error_set(err, FM_EDATA, "encoded instances must hold numbers only");
    return FM_OK;
}

static int parse_instances(tf_state_t *st, int instances, fm_error_t *err) {
    fm_jdoc_t *d = &st->doc;
    const fm_model_t *m = st->served->model;
    size_t ncols = m->prep->ncolumns;
    int n = d->t[instances].size;
    if (n == 0) return fm_error_set(err, FM_EDATA, "'instances' is empty");
    if (!(st->scratch = fm_scratch_get(st->served, n)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    st->n = n;
    int first = instances + 1;
    if (d->t[first].type == JSMN_ARRAY) {
        for (int r = 0, j = first; r < n; r++, j = fm_jdoc_next(d, j)) {
            if (d->t[j].type != JSMN_ARRAY)
                return fm_error_set(err, FM_EDATA, "instances must all be objects or all arrays");
            int rc = encoded_row(st, j, st->scratch->x + (size_t)r * m->prep->nfeatures, err);
            if (rc) return rc;
        }
        return FM_OK;
    }
    st->tokens = malloc((size_t)n * ncols * sizeof *st->tokens);
    if (!st->tokens) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; c < (size_t)n * ncols; c++)
        st->tokens[c] = -1;
    for (int r = 0, j = first; r < n; r++, j = fm_jdoc_next(d, j)) {
        if (d->t[j].type != JSMN_OBJECT)
            return fm_error_set(err, FM_EDATA, "instances[%d] must be an object of named values",
                                r);
        for (int k = 0, key = j + 1; k < d->t[j].size; k++, key = fm_jdoc_next(d, key + 1)) {
            const char *name;
            size_t len;
            int rc = fm_jdoc_string(d, key, &name, &len, err);
            if (rc) return rc;
            int col = fm_strdict_find(&st->served->inputs, name, len);
            if (col >= 0) st->tokens[(size_t)r * ncols + (size_t)col] = key + 1;
        }
    }
    return fm_encode_tokens(st->served, d, st->tokens, n, st->scratch, err);
}

static int parse_columnar(tf_state_t *st, int inputs, fm_error_t *err) {
    fm_jdoc_t *d = &st->doc;
    const fm_model_t *m = st->served->model;
    size_t ncols = m->prep->ncolumns;
    st->columnar = 1;
    if (d->t[inputs].type == JSMN_ARRAY) { /* rows of encoded features */
        int n = d->t[inputs].size;
        if (n == 0) return fm_error_set(err, FM_EDATA, "'inputs' is empty");
        if (!(st->scratch = fm_scratch_get(st->served, n)))
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        st->n = n;
        for (int r = 0, j = inputs + 1; r < n; r++, j = fm_jdoc_next(d, j)) {
            if (d->t[j].type != JSMN_ARRAY)
                return fm_error_set(err, FM_EDATA,
                                    "'inputs' as a list must hold arrays of "
                                    "encoded features");
            int rc = encoded_row(st, j, st->scratch->x + (size_t)r * m->prep->nfeatures, err);
            if (rc) return rc;
        }
        return FM_OK;
    }
    if (d->t[inputs].type != JSMN_OBJECT)
        return fm_error_set(err, FM_EPARSE, "'inputs' must be an object of columns");
    int n = -1;
    for (int k = 0, key = inputs + 1; k < d->t[inputs].size; k++, key = fm_jdoc_next(d, key + 1)) {
        int value = key + 1;
        const char *name;
        size_t len;
        int rc = fm_jdoc_string(d, key, &name, &len, err);
        if (rc) return rc;
        if (fm_strdict_find(&st->served->inputs, name, len) < 0) continue;
        int rows = d->t[value].type == JSMN_ARRAY ? d->t[value].size : 1;
        if (n >= 0 && rows != n)
            return fm_error_set(err, FM_EDATA, "input '%.*s' has %d values, others have %d",
                                (int)len, name, rows, n);
        n = rows;
    }
    if (n <= 0) return fm_error_set(err, FM_EDATA, "'inputs' holds none of the model's inputs");
    if (!(st->scratch = fm_scratch_get(st->served, n)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    st->tokens = malloc((size_t)n * ncols * sizeof *st->tokens);
    if (!st->tokens) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; c < (size_t)n * ncols; c++)
        st->tokens[c] = -1;
    for (int k = 0, key = inputs + 1; k < d->t[inputs].size; k++, key = fm_jdoc_next(d, key + 1)) {
        int value = key + 1;
        const char *name;
        size_t len;
        fm_jdoc_string(d, key, &name, &len, err);
        int col = fm_strdict_find(&st->served->inputs, name, len);
        if (col < 0) continue;
        if (d->t[value].type != JSMN_ARRAY) {
            st->tokens[col] = value; /* a single value for a single row */
            continue;
        }
        for (int r = 0, j = value + 1; r < n; r++, j = fm_jdoc_next(d, j))
            st->tokens[(size_t)r * ncols + (size_t)col] = j;
    }
    st->n = n;
    return fm_encode_tokens(st->served, d, st->tokens, n, st->scratch, err);
}

static int finish(fm_request_t *req, fm_error_t *err);

/* "explain" (true or false) and, when true, the explanation settings beside it. */
static int parse_explain(tf_state_t *st, fm_error_t *err) {
    fm_jdoc_t *d = &st->doc;
    fm_explain_ask_defaults(&st->ask);
    for (int k = 0, j = 1; k < d->t[0].size; k++, j = fm_jdoc_next(d, j + 1)) {
        if (!fm_jdoc_is(d, j, "explain")) continue;
        double unused;
        fm_jprim_t p = d->t[j + 1].type == JSMN_PRIMITIVE ? fm_jdoc_primitive(d, j + 1, &unused)
                                                          : FM_JPRIM_BAD;
        if (p != FM_JPRIM_TRUE && p != FM_JPRIM_FALSE)
            return fm_error_set(err, FM_EPARSE, "'explain' must be true or false");
        st->explain = p == FM_JPRIM_TRUE;
    }
    if (!st->explain) return FM_OK;
    int rc = fm_explain_available(st->served, err);
    for (int k = 0, j = 1; !rc && k < d->t[0].size; k++, j = fm_jdoc_next(d, j + 1)) {
        int known;
        rc = fm_explain_ask_read(st->served, d, j, &st->ask, &known, err);
    }
    return rc;
}

int fm_h_tf_predict(fm_request_t *req, fm_error_t *err) {
    tf_state_t *st = calloc(1, sizeof *st);
    if (!st) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = fm_acquire_for_request(req, &st->served, err);
    if (rc) {
        free(st);
        return rc;
    }
    fm_jdoc_t *d = &st->doc;
    rc = fm_jdoc_parse(d, req->body.data, req->body.len, err);
    int instances = -1, inputs = -1;
    for (int k = 0, j = 1; !rc && k < d->t[0].size; k++) {
        if (fm_jdoc_is(d, j, "instances"))
            instances = j + 1;
        else if (fm_jdoc_is(d, j, "inputs"))
            inputs = j + 1;
        j = fm_jdoc_next(d, j + 1);
    }
    if (!rc) rc = parse_explain(st, err);
    if (!rc && (instances < 0) == (inputs < 0))
        rc = fm_error_set(err, FM_EPARSE,
                          "the request needs exactly one of 'instances' and "
                          "'inputs'");
    if (!rc && instances >= 0 && d->t[instances].type != JSMN_ARRAY)
        rc = fm_error_set(err, FM_EPARSE, "'instances' must be a list");
    if (!rc)
        rc = instances >= 0 ? parse_instances(st, instances, err) : parse_columnar(st, inputs, err);
    if (!rc) rc = fm_score_then(req, st->served, st->scratch, st->n, st, finish, err);
    if (rc) state_free(st, req, 0);
    return rc;
}

static void put_probability_value(fm_buf_t *b, const double *row, size_t width) {
    if (width == 1) {
        fm_put_probability(b, row[0]);
        return;
    }
    fm_buf_putc(b, '[');
    for (size_t k = 0; k < width; k++) {
        if (k) fm_buf_putc(b, ',');
        fm_put_probability(b, row[k]);
    }
    fm_buf_putc(b, ']');
}

/* Appends the explanation of scored row r. */
static int put_explanation(tf_state_t *st, int r, fm_buf_t *b, fm_error_t *err) {
    size_t nf = st->served->model->prep->nfeatures;
    return fm_explain_put(st->served, st->scratch, st->scratch->x + (size_t)r * nf, &st->ask, b,
                          err);
}

/* Writes the reply from the scored rows; the reply is always made here, an error included, so
 * the caller never frees the state after it. */
static int finish(fm_request_t *req, fm_error_t *err) {
    tf_state_t *st = req->resume_state;
    req->resume_state = NULL;
    const fm_model_t *m = st->served->model;
    const double *out = st->scratch->out;
    size_t width = fm_model_output_width(m);
    int regression = m->task == FM_TASK_REGRESSION;
    fm_buf_t *b = &req->reply;
    fm_buf_reset(b);
    int rc = FM_OK;
    if (!st->columnar) {
        fm_buf_puts(b, "{\"predictions\":[");
        for (int r = 0; r < st->n && !rc; r++) {
            const double *row = out + (size_t)r * width;
            if (r) fm_buf_putc(b, ',');
            if (regression) {
                fm_put_value(b, row[0]);
                continue;
            }
            fm_buf_puts(b, "{\"probability\":");
            put_probability_value(b, row, width);
            fm_buf_puts(b, ",\"label\":");
            fm_put_label(b, m, row);
            if (st->explain) {
                fm_buf_puts(b, ",\"explanation\":");
                rc = put_explanation(st, r, b, err);
            }
            fm_buf_putc(b, '}');
        }
        fm_buf_putc(b, ']');
        if (!rc && st->explain && regression)
            rc = fm_explain_put_rows(st->served, st->scratch, st->n, &st->ask, b, err);
        fm_buf_putc(b, '}');
    } else if (regression) {
        fm_buf_puts(b, "{\"outputs\":[");
        for (int r = 0; r < st->n; r++) {
            if (r) fm_buf_putc(b, ',');
            fm_put_value(b, out[r]);
        }
        fm_buf_putc(b, ']');
        if (st->explain) rc = fm_explain_put_rows(st->served, st->scratch, st->n, &st->ask, b, err);
        fm_buf_putc(b, '}');
    } else {
        fm_buf_puts(b, "{\"outputs\":{\"probability\":[");
        for (int r = 0; r < st->n; r++) {
            if (r) fm_buf_putc(b, ',');
            put_probability_value(b, out + (size_t)r * width, width);
        }
        fm_buf_puts(b, "],\"label\":[");
        for (int r = 0; r < st->n; r++) {
            if (r) fm_buf_putc(b, ',');
            fm_put_label(b, m, out + (size_t)r * width);
        }
        fm_buf_puts(b, "]}");
        if (st->explain) rc = fm_explain_put_rows(st->served, st->scratch, st->n, &st->ask, b, err);
        fm_buf_putc(b, '}');
    }
    if (rc) {
        fm_reply_error(req, fm_http_status(rc), fm_error_message(err));
        state_free(st, req, 0);
        return FM_OK;
    }
    fm_reply_json(req, 200);
    state_free(st, req, 1);
    return FM_OK;
}

int fm_h_tf_status(fm_request_t *req, fm_error_t *err) {
    const char *name = req->params[0];
    snprintf(req->model, sizeof req->model, "%s", name);
    int64_t *versions = NULL;
    size_t count = 0;
    int64_t only = 0;
    if (req->nparams > 1 && fm_parse_version(req->params[1], &only, err)) return FM_ENOTFOUND;
    int rc = fm_store_versions(req->server->store, name, &versions, &count, err);
    if (rc) return rc;
    fm_buf_t *b = &req->reply;
    fm_buf_puts(b, "{\"model_version_status\":[");
    int listed = 0;
    for (size_t i = count; i-- > 0;) {
        if (only && versions[i] != only) continue;
        fm_buf_printf(b,
                      "%s{\"version\":\"%lld\",\"state\":\"AVAILABLE\",\"status\":{"
                      "\"error_code\":\"OK\",\"error_message\":\"\"}}",
                      listed++ ? "," : "", (long long)versions[i]);
    }
    fm_buf_puts(b, "]}");
    free(versions);
    if (only && !listed)
        return fm_error_set(err, FM_ENOTFOUND, "model '%s' has no loaded version %lld", name,
                            (long long)only);
    if (!listed) return fm_error_set(err, FM_ESTATE, "model '%s' is not loaded", name);
    fm_reply_json(req, 200);
    return FM_OK;
}
