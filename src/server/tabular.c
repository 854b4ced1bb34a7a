/*
 * JSON values to model rows and model outputs to JSON (see tabular.h).
 */
#include "server/tabular.h"

#include <stdio.h>
#include <string.h>

int fm_encode_tokens(fm_served_t *served, fm_jdoc_t *doc, const int *tokens, int n, fm_scratch_t *s,
                     fm_error_t *err) {
    const fm_prep_t *prep = served->model->prep;
    size_t ncols = prep->ncolumns;
    for (int r = 0; r < n; r++) {
        const int *row = tokens + (size_t)r * ncols;
        for (size_t c = 0; c < ncols; c++) {
            fm_raw_value_t *v = &s->values[c];
            int i = row[c];
            if (i < 0 && prep->columns[c].width == 0) {
                /* A column the model keeps no feature of (a categorical PII column): optional. */
                *v = (fm_raw_value_t){FM_RAW_MISSING, 0.0, NULL, 0};
                continue;
            }
            if (i < 0)
                return fm_error_set(err, FM_EDATA, "missing input '%s'%s", prep->columns[c].name,
                                    n > 1 ? " in some rows" : "");
            const jsmntok_t *t = &doc->t[i];
            if (t->type == JSMN_STRING) {
                const char *text;
                size_t len;
                int rc = fm_jdoc_string(doc, i, &text, &len, err);
                if (rc) return rc;
                *v = (fm_raw_value_t){FM_RAW_STRING, 0.0, text, len};
                continue;
            }
            double number = 0.0;
            switch (fm_jdoc_primitive(doc, i, &number)) {
            case FM_JPRIM_NUMBER:
                *v = (fm_raw_value_t){FM_RAW_NUMBER, number, NULL, 0};
                break;
            case FM_JPRIM_TRUE:
                *v = (fm_raw_value_t){FM_RAW_NUMBER, 1.0, NULL, 0};
                break;
            case FM_JPRIM_FALSE:
                *v = (fm_raw_value_t){FM_RAW_NUMBER, 0.0, NULL, 0};
                break;
            case FM_JPRIM_NULL:
                *v = (fm_raw_value_t){FM_RAW_MISSING, 0.0, NULL, 0};
                break;
            default:
                return fm_error_set(err, FM_EDATA,
                                    "input '%s', row %d: expected a number, a "
                                    "string or null",
                                    prep->columns[c].name, r);
            }
        }
        int rc = fm_prep_encode_row(prep, s->values, s->x + (size_t)r * prep->nfeatures, err);
        if (rc) {
            if (n > 1) fm_error_prefix(err, "row %d: ", r);
            return rc == FM_ENOMEM ? rc : FM_EDATA;
        }
    }
    return FM_OK;
}

void fm_put_probability(fm_buf_t *b, double p) {
    fm_buf_printf(b, "%.9g", p);
}

void fm_put_value(fm_buf_t *b, double v) {
    fm_buf_json_number(b, v);
}

void fm_put_label(fm_buf_t *b, const fm_model_t *m, const double *row) {
    const char *label = fm_model_label(m, row);
    if (!label) label = "";
    fm_buf_json_string(b, label, strlen(label));
}

int fm_acquire_for_request(fm_request_t *req, fm_served_t **out, fm_error_t *err) {
    const char *name = req->params[0];
    int64_t version = 0;
    const char *label = NULL;
    snprintf(req->model, sizeof req->model, "%s", name);
    if (req->nparams > 1) {
        if (strstr(req->route->pattern, "{label}"))
            label = req->params[1];
        else if (fm_parse_version(req->params[1], &version, err))
            return FM_ENOTFOUND;
    }
    int rc = fm_store_acquire(req->server->store, name, version, label, out, err);
    if (rc) return rc;
    req->version = (*out)->version;
    atomic_fetch_add_explicit(&(*out)->stats->in_flight, 1, memory_order_relaxed);
    return FM_OK;
}

void fm_release_for_request(fm_request_t *req, fm_served_t *served, int ok) {
    (void)req;
    if (!served) return;
    fm_model_stats_t *stats = served->stats;
    atomic_fetch_sub_explicit(&stats->in_flight, 1, memory_order_relaxed);
    if (ok)
        atomic_fetch_add_explicit(&stats->success, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&stats->failure, 1, memory_order_relaxed);
    fm_served_release(served);
}

int fm_score_then(fm_request_t *req, fm_served_t *served, fm_scratch_t *s, int n, void *state,
                  fm_handler_fn finish, fm_error_t *err) {
    int rc = fm_score(req, served, s, n, err);
    if (rc) return rc;
    req->resume_state = state;
    if (req->state == FM_REQ_WAITING) {
        req->resume = finish;
        return FM_OK;
    }
    return finish(req, err);
}
