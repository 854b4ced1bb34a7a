/*
 * Training jobs over HTTP (jobs/jobs.h runs them):
 *   POST /api/jobs                 {"dataset", "name", ...search settings}: 202 {"id","state"}
 *   GET /api/jobs                  every job, newest first
 *   GET /api/jobs/{id}             state, progress, times, log, result
 *   GET /api/jobs/{id}/events      the log as server-sent events, then live ones until it ends
 *   DELETE /api/jobs/{id}          cancel
 *
 * A job belongs to the model it registers: a key scoped to other models neither creates nor
 * sees it (404, as for a job that does not exist).
 *
 * Server-sent events: each stream's content reader sends what the job store holds after the
 * stream's cursor ("id: <seq>\nevent: <type>\ndata: <json>\n\n"), then suspends its connection
 * instead of waiting, so a stream never holds an HTTP thread. The job's change callback, a
 * heartbeat every HEARTBEAT_SECONDS (a comment line, which also finds clients that went away)
 * and the server's stop resume it. A slow reader is simply not called while its socket is full.
 * Whether to suspend is decided under the hub's lock against a "dirty" flag that every resume
 * sets, so a change between a reader's look at the store and its suspension is never lost.
 */
#include "server/internal.h"

#include "core/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEARTBEAT_SECONDS 15
#define EVENTS_PER_READ   64

/* ---- requests ---------------------------------------------------------------------------- */

/* 1 when text looks like a job id ("j_" + 12 lowercase hex). */
static int valid_job_id(const char *text) {
    if (strncmp(text, "j_", 2) != 0 || strlen(text) != 14) return 0;
    for (const char *p = text + 2; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

static int reply_json_value(fm_request_t *req, cJSON *value, int status, fm_error_t *err) {
    char *text = cJSON_PrintUnformatted(value);
    cJSON_Delete(value);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_buf_puts(&req->reply, text);
    free(text);
    fm_reply_json(req, status);
    return FM_OK;
}

/* The job of the path (with its log when with_log), visible to the caller; 404 otherwise. */
static int visible_job(fm_request_t *req, int with_log, cJSON **out, fm_error_t *err) {
    *out = NULL;
    const char *id = req->params[0];
    if (!valid_job_id(id)) return fm_error_set(err, FM_ENOTFOUND, "job '%s' not found", id);
    snprintf(req->audit_detail, sizeof req->audit_detail, "job=%s", id);
    int rc = fm_jobs_get(req->server->jobs, id, with_log, out, err);
    if (rc) return rc;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(*out, "model");
    if (!cJSON_IsString(model) || !fm_auth_sees(req, model->valuestring)) {
        cJSON_Delete(*out);
        *out = NULL;
        return fm_error_set(err, FM_ENOTFOUND, "job '%s' not found", id);
    }
    snprintf(req->model, sizeof req->model, "%s", model->valuestring);
    return FM_OK;
}

int fm_h_jobs_create(fm_request_t *req, fm_error_t *err) {
    cJSON *body = NULL;
    int rc = fm_json_parse(req->body.data, req->body.len, "request body", &body, err);
    if (rc) return rc == FM_EFORMAT ? FM_EPARSE : rc;
    const cJSON *dataset = cJSON_GetObjectItemCaseSensitive(body, "dataset");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "name");
    if (!cJSON_IsObject(body))
        rc = fm_error_set(err, FM_EINVAL, "a job is a JSON object: {\"dataset\", \"name\", ...}");
    else if (!cJSON_IsString(dataset))
        rc = fm_error_set(err, FM_EINVAL, "dataset: required, the name of an uploaded dataset");
    else if (!cJSON_IsString(name))
        rc = fm_error_set(err, FM_EINVAL, "name: required, the model to register the result as");
    if (!rc) rc = fm_registry_check_name("model", name->valuestring, err);
    if (!rc) {
        snprintf(req->model, sizeof req->model, "%s", name->valuestring);
        if (!fm_auth_sees(req, name->valuestring))
            rc =
                fm_error_set(err, FM_EDENIED, "this key may not use model '%s'", name->valuestring);
        else if (!fm_auth_sees(req, dataset->valuestring))
            rc = fm_error_set(err, FM_ENOTFOUND, "dataset '%s' not found", dataset->valuestring);
    }
    char id[FM_JOB_ID_MAX] = "";
    if (!rc) {
        cJSON *spec = cJSON_Duplicate(body, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "dataset");
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "name");
        rc = fm_jobs_submit(req->server->jobs, dataset->valuestring, name->valuestring, spec,
                            req->authenticated ? req->who.id : "anonymous", id, err);
        cJSON_Delete(spec);
        if (rc == FM_EBUSY) req->retry_after = 5;
    }
    if (!rc) {
        snprintf(req->audit_detail, sizeof req->audit_detail, "job=%s dataset=%s", id,
                 dataset->valuestring);
        fm_buf_puts(&req->reply, "{\"id\":");
        fm_buf_json_string(&req->reply, id, strlen(id));
        fm_buf_puts(&req->reply, ",\"state\":\"queued\",\"dataset\":");
        fm_buf_json_string(&req->reply, dataset->valuestring, strlen(dataset->valuestring));
        fm_buf_puts(&req->reply, ",\"name\":");
        fm_buf_json_string(&req->reply, name->valuestring, strlen(name->valuestring));
        fm_buf_putc(&req->reply, '}');
        fm_reply_json(req, 202);
    }
    cJSON_Delete(body);
    return rc;
}

int fm_h_jobs_list(fm_request_t *req, fm_error_t *err) {
    cJSON *list = NULL;
    int rc = fm_jobs_list(req->server->jobs, &list, err);
    if (rc) return rc;
    cJSON *visible = cJSON_CreateArray(), *item;
    while ((item = cJSON_DetachItemFromArray(list, 0))) {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(item, "model");
        if (cJSON_IsString(model) && fm_auth_sees(req, model->valuestring))
            cJSON_AddItemToArray(visible, item);
        else
            cJSON_Delete(item);
    }
    cJSON_Delete(list);
    return reply_json_value(req, visible, 200, err);
}

int fm_h_jobs_get(fm_request_t *req, fm_error_t *err) {
    cJSON *job = NULL;
    int rc = visible_job(req, 1, &job, err);
    return rc ? rc : reply_json_value(req, job, 200, err);
}

int fm_h_jobs_cancel(fm_request_t *req, fm_error_t *err) {
    cJSON *job = NULL;
    int rc = visible_job(req, 0, &job, err);
    cJSON_Delete(job);
    if (rc) return rc;
    const char *id = req->params[0], *state = NULL;
    rc = fm_jobs_cancel(req->server->jobs, id, &state, err);
    if (rc == FM_ESTATE) {
        fm_reply_error(req, 409, fm_error_message(err));
        return FM_OK;
    }
    if (rc) return rc;
    int running = !strcmp(state, "running");
    fm_buf_puts(&req->reply, "{\"id\":");
    fm_buf_json_string(&req->reply, id, strlen(id));
    fm_buf_printf(&req->reply, ",\"state\":\"%s\",\"cancel_requested\":true}", state);
    /* A running job stops at the search's next check: accepted, not yet done. */
    fm_reply_json(req, running ? 202 : 200);
    return FM_OK;
}

/* ---- server-sent events ------------------------------------------------------------------ */

typedef struct sse_stream {
    struct sse_stream *prev, *next;
    fm_sse_hub_t *hub;
    fm_jobs_t *jobs;
    struct MHD_Connection *connection;
    char job[FM_JOB_ID_MAX];
    int64_t cursor; /* the last event sent */
    fm_buf_t out;   /* formatted, not yet all sent */
    size_t sent;
    int done; /* the job ended and its last event is in out */
    /* under the hub's lock */
    int suspended;
    int dirty; /* resumed (or asked to look again) since the reader last looked */
    int ping;  /* a heartbeat is due */
} sse_stream_t;

struct fm_sse_hub {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    sse_stream_t list; /* sentinel of a circular list */
    int closing;
    pthread_t heartbeat;
    int heartbeat_running;
};

/* Resumes s (caller holds the hub's lock). */
static void wake_stream(sse_stream_t *s) {
    s->dirty = 1;
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->connection);
    }
}

static void *heartbeat_main(void *arg) {
    pthread_setname_np(pthread_self(), "fm-job-events");
    fm_sse_hub_t *hub = arg;
    pthread_mutex_lock(&hub->lock);
    while (!hub->closing) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += HEARTBEAT_SECONDS;
        if (pthread_cond_timedwait(&hub->wake, &hub->lock, &ts) != ETIMEDOUT) continue;
        for (sse_stream_t *s = hub->list.next; s != &hub->list; s = s->next) {
            s->ping = 1;
            wake_stream(s);
        }
    }
    pthread_mutex_unlock(&hub->lock);
    return NULL;
}

int fm_sse_hub_new(fm_sse_hub_t **out, fm_error_t *err) {
    *out = NULL;
    fm_sse_hub_t *hub = calloc(1, sizeof *hub);
    if (!hub) return fm_error_set(err, FM_ENOMEM, "out of memory");
    pthread_mutex_init(&hub->lock, NULL);
    pthread_cond_init(&hub->wake, NULL);
    hub->list.next = hub->list.prev = &hub->list;
    if (pthread_create(&hub->heartbeat, NULL, heartbeat_main, hub) != 0) {
        fm_sse_hub_free(hub);
        return fm_error_set(err, FM_ENOMEM, "cannot start the event stream heartbeat");
    }
    hub->heartbeat_running = 1;
    *out = hub;
    return FM_OK;
}

void fm_sse_hub_notify(fm_sse_hub_t *hub, const char *id) {
    if (!hub) return;
    pthread_mutex_lock(&hub->lock);
    for (sse_stream_t *s = hub->list.next; s != &hub->list; s = s->next)
        if (!strcmp(s->job, id)) wake_stream(s);
    pthread_mutex_unlock(&hub->lock);
}

void fm_sse_hub_close(fm_sse_hub_t *hub) {
    if (!hub) return;
    pthread_mutex_lock(&hub->lock);
    hub->closing = 1;
    for (sse_stream_t *s = hub->list.next; s != &hub->list; s = s->next)
        wake_stream(s);
    pthread_cond_broadcast(&hub->wake);
    pthread_mutex_unlock(&hub->lock);
    if (hub->heartbeat_running) {
        pthread_join(hub->heartbeat, NULL);
        hub->heartbeat_running = 0;
    }
}

void fm_sse_hub_free(fm_sse_hub_t *hub) {
    if (!hub) return;
    fm_sse_hub_close(hub);
    pthread_mutex_destroy(&hub->lock);
    pthread_cond_destroy(&hub->wake);
    free(hub);
}

/* Formats the job's next events into s->out; sets s->done after the last one of an ended job. */
static void fill(sse_stream_t *s) {
    fm_job_event_t *events = NULL;
    size_t n = 0;
    int ended = 0;
    fm_error_t err;
    if (fm_jobs_events(s->jobs, s->job, s->cursor, EVENTS_PER_READ, &events, &n, &ended, &err)) {
        fm_buf_puts(&s->out, "event: error\ndata: {\"error\":");
        const char *msg = fm_error_message(&err);
        fm_buf_json_string(&s->out, msg, strlen(msg));
        fm_buf_puts(&s->out, "}\n\n");
        s->done = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        fm_buf_puts(&s->out, "id: ");
        fm_buf_put_int(&s->out, (long long)events[i].seq);
        fm_buf_puts(&s->out, "\nevent: ");
        fm_buf_puts(&s->out, events[i].type);
        fm_buf_puts(&s->out, "\ndata: ");
        fm_buf_puts(&s->out, events[i].data);
        fm_buf_puts(&s->out, "\n\n");
        s->cursor = events[i].seq;
    }
    fm_job_events_free(events, n);
    /* Fewer than asked for, in a snapshot taken after the job ended: nothing follows. */
    if (ended && n < EVENTS_PER_READ) s->done = 1;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sse_stream_t *s = cls;
    fm_sse_hub_t *hub = s->hub;
    for (;;) {
        if (s->sent < s->out.len) {
            size_t n = s->out.len - s->sent < max ? s->out.len - s->sent : max;
            memcpy(buf, s->out.data + s->sent, n);
            s->sent += n;
            return (ssize_t)n;
        }
        fm_buf_reset(&s->out);
        s->sent = 0;
        if (s->done) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&hub->lock);
        int closing = hub->closing, ping = s->ping;
        s->dirty = s->ping = 0;
        pthread_mutex_unlock(&hub->lock);
        fill(s);
        if (closing) {
            /* The server stops: what the log holds now goes out, then the stream ends. */
            s->done = 1;
            continue;
        }
        if (s->out.len || s->done) continue;
        if (ping) {
            fm_buf_puts(&s->out, ": keep-alive\n\n");
            continue;
        }
        pthread_mutex_lock(&hub->lock);
        if (!s->dirty && !hub->closing) {
            s->suspended = 1;
            MHD_suspend_connection(s->connection);
            pthread_mutex_unlock(&hub->lock);
            return 0;
        }
        pthread_mutex_unlock(&hub->lock);
    }
}

static void sse_free(void *cls) {
    sse_stream_t *s = cls;
    pthread_mutex_lock(&s->hub->lock);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    pthread_mutex_unlock(&s->hub->lock);
    fm_buf_free(&s->out);
    free(s);
}

int fm_h_jobs_events(fm_request_t *req, fm_error_t *err) {
    cJSON *job = NULL;
    int rc = visible_job(req, 0, &job, err);
    cJSON_Delete(job);
    if (rc) return rc;
    /* A client that reconnects says where it stopped. */
    int64_t cursor = 0;
    const char *last =
        MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, "Last-Event-ID");
    if (last) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(last, &end, 10);
        if (end != last && !*end && !errno && v > 0) cursor = v;
    }
    sse_stream_t *s = calloc(1, sizeof *s);
    if (!s) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_sse_hub_t *hub = req->server->sse;
    s->hub = hub;
    s->jobs = req->server->jobs;
    s->connection = req->connection;
    s->cursor = cursor;
    snprintf(s->job, sizeof s->job, "%s", req->params[0]);
    pthread_mutex_lock(&hub->lock);
    int closing = hub->closing;
    if (!closing) {
        s->next = hub->list.next;
        s->prev = &hub->list;
        hub->list.next->prev = s;
        hub->list.next = s;
    }
    pthread_mutex_unlock(&hub->lock);
    if (closing) {
        free(s);
        return fm_error_set(err, FM_ESTATE, "the server is stopping");
    }
    req->reply_reader = sse_read;
    req->reply_free = sse_free;
    req->reply_stream = s;
    req->audit_output = "{\"stream\":\"text/event-stream\"}";
    req->status = 200;
    req->content_type = "text/event-stream";
    return FM_OK;
}
