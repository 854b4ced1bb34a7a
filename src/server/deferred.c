/*
 * Work a handler runs off the HTTP threads (internal.h, fm_defer): loading and scoring a dataset,
 * a Monte Carlo run. The connection is suspended before the work is visible to the jobs'
 * background thread (so the resume can never come first), the work runs there, the connection is
 * resumed, and the access handler then calls the handler's finish step with the outcome. While
 * the server is stopping the work runs inline instead: a suspended connection could outlive the
 * daemon.
 */
#include "server/internal.h"

#include <stdlib.h>

static void run(void *ctx) {
    fm_deferred_t *d = ctx;
    fm_error_clear(&d->err);
    d->rc = d->work(d, &d->err);
    MHD_resume_connection(d->req->connection);
}

int fm_defer(fm_request_t *req, fm_deferred_t *d, fm_handler_fn finish, fm_error_t *err) {
    d->req = req;
    req->resume_state = d;
    if (atomic_load(&req->server->draining)) {
        fm_error_clear(&d->err);
        d->rc = d->work(d, &d->err);
        return finish(req, err);
    }
    req->resume = finish;
    req->state = FM_REQ_WAITING;
    MHD_suspend_connection(req->connection);
    if (fm_jobs_background(req->server->jobs, run, d, &d->err) != FM_OK) {
        /* Not queued: nothing else will resume the connection. */
        d->rc = d->err.code ? d->err.code : FM_EBUSY;
        MHD_resume_connection(req->connection);
    }
    return FM_OK;
}

int fm_deferred_outcome(fm_request_t *req, const fm_deferred_t *d, fm_error_t *err) {
    if (!d->rc) return FM_OK;
    *err = d->err;
    if (d->rc == FM_EBUSY) req->retry_after = 5;
    return d->rc;
}

int fm_reply_cjson(fm_request_t *req, const cJSON *json, fm_error_t *err) {
    char *text = cJSON_PrintUnformatted(json);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_buf_puts(&req->reply, text);
    free(text);
    fm_reply_json(req, 200);
    return FM_OK;
}
