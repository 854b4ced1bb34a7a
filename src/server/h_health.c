/*
 * Health, server metadata and model metadata of the Open Inference Protocol:
 *   GET /v2/health/live, /v2/health/ready, /v2,
 *   GET /v2/models/{name}[/versions/{v}], GET /v2/models/{name}[/versions/{v}]/ready
 */
#include "server/tabular.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fm_parse_version(const char *text, int64_t *version, fm_error_t *err) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno || v < 1)
        return fm_error_set(err, FM_ENOTFOUND, "no such version '%s' (versions are 1, 2, ...)",
                            text);
    *version = v;
    return FM_OK;
}

int fm_h_live(fm_request_t *req, fm_error_t *err) {
    (void)err;
    fm_buf_puts(&req->reply, "{\"live\":true}");
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_ready(fm_request_t *req, fm_error_t *err) {
    if (!atomic_load(&req->server->ready))
        return fm_error_set(err, FM_ESTATE,
                            "not ready: models are loading or the server is "
                            "stopping");
    fm_buf_puts(&req->reply, "{\"ready\":true}");
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_server_metadata(fm_request_t *req, fm_error_t *err) {
    (void)err;
    fm_buf_puts(&req->reply, "{\"name\":\"finmaas\",\"version\":\"" FM_VERSION "\","
                             "\"extensions\":[\"model_repository\",\"tensorflow_serving_rest\","
                             "\"model_labels\",\"prometheus_metrics\"]}");
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_model_metadata(fm_request_t *req, fm_error_t *err) {
    fm_served_t *s = NULL;
    int rc = fm_acquire_for_request(req, &s, err);
    if (rc) return rc;
    if (req->nparams > 1) {
        fm_buf_puts(&req->reply, s->metadata);
    } else {
        /* Without a version: the metadata of the default version, listing every loaded one. */
        int64_t *versions = NULL;
        size_t count = 0;
        if (fm_store_versions(req->server->store, s->name, &versions, &count, err) == FM_OK) {
            const char *at = strstr(s->metadata, "\"versions\":[");
            const char *close = at ? strchr(at, ']') : NULL;
            if (at && close) {
                fm_buf_append(&req->reply, s->metadata, (size_t)(at - s->metadata));
                fm_buf_puts(&req->reply, "\"versions\":[");
                for (size_t i = 0; i < count; i++)
                    fm_buf_printf(&req->reply, "%s\"%lld\"", i ? "," : "", (long long)versions[i]);
                fm_buf_puts(&req->reply, close);
            } else {
                fm_buf_puts(&req->reply, s->metadata);
            }
        }
        free(versions);
    }
    fm_release_for_request(req, s, 1);
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_model_ready(fm_request_t *req, fm_error_t *err) {
    fm_served_t *s = NULL;
    int rc = fm_acquire_for_request(req, &s, err);
    if (rc) return rc;
    fm_buf_printf(&req->reply, "{\"name\":");
    fm_buf_json_string(&req->reply, s->name, strlen(s->name));
    fm_buf_printf(&req->reply, ",\"version\":\"%lld\",\"ready\":true}", (long long)s->version);
    fm_release_for_request(req, s, 1);
    fm_reply_json(req, 200);
    return FM_OK;
}
