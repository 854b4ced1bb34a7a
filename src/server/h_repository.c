/*
 * The model repository over HTTP:
 *   GET|POST /v2/repository/index                       every version and its state
 *   POST /v2/repository/models/{name}/load | /unload    serve / stop serving all versions
 *   POST /v2/repository/models/{name}/versions          body: a .fmm file; 201 {"version": N}
 *   PUT|DELETE /api/models/{name}/labels/{label}        {"version": N}
 *   GET /api/models                                     the registry's listing
 */
#include "server/internal.h"
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

int fm_h_repository_index(fm_request_t *req, fm_error_t *err) {
    fm_index_entry_t *idx = NULL;
    size_t n = 0;
    int rc = fm_store_index(req->server->store, &idx, &n, err);
    if (rc) return rc;
    fm_buf_t *b = &req->reply;
    fm_buf_putc(b, '[');
    int listed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!fm_auth_sees(req, idx[i].name)) continue; /* outside the key's scope */
        fm_buf_puts(b, listed++ ? ",{\"name\":" : "{\"name\":");
        fm_buf_json_string(b, idx[i].name, strlen(idx[i].name));
        fm_buf_printf(b, ",\"version\":\"%lld\",\"state\":\"%s\",\"reason\":\"%s\",\"labels\":[",
                      (long long)idx[i].version, idx[i].loaded ? "READY" : "UNAVAILABLE",
                      idx[i].loaded ? "" : "unloaded");
        char *save = NULL;
        int k = 0;
        for (char *l = strtok_r(idx[i].labels, ",", &save); l; l = strtok_r(NULL, ",", &save)) {
            if (k++) fm_buf_putc(b, ',');
            fm_buf_json_string(b, l, strlen(l));
        }
        fm_buf_puts(b, "]}");
    }
    fm_buf_putc(b, ']');
    free(idx);
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_repository_load(fm_request_t *req, fm_error_t *err) {
    snprintf(req->model, sizeof req->model, "%s", req->params[0]);
    int rc = fm_store_load(req->server->store, req->params[0], err);
    if (rc) return rc;
    fm_buf_puts(&req->reply, "{}");
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_repository_unload(fm_request_t *req, fm_error_t *err) {
    snprintf(req->model, sizeof req->model, "%s", req->params[0]);
    int rc = fm_store_unload(req->server->store, req->params[0], err);
    if (rc) return rc;
    fm_buf_puts(&req->reply, "{}");
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_repository_upload(fm_request_t *req, fm_error_t *err) {
    const char *name = req->params[0];
    snprintf(req->model, sizeof req->model, "%s", name);
    if (!fm_registry_valid_name(name))
        return fm_error_set(err, FM_EINVAL, "invalid model name '%s' (1-64 of A-Z a-z 0-9 _ . -)",
                            name);
    int64_t version = 0;
    /* The uploader is recorded for maker-checker; without authentication there is none. */
    const char *uploader = req->authenticated ? req->who.id : "anonymous";
    int rc = fm_registry_add_as(req->server->registry, name, req->body.data, req->body.len,
                                uploader, &version, err);
    if (rc) return rc;
    req->version = version;
    /* Serve it at once (and the model too, if it was new or unloaded). */
    rc = fm_store_load(req->server->store, name, err);
    if (rc) return rc;
    fm_buf_puts(&req->reply, "{\"name\":");
    fm_buf_json_string(&req->reply, name, strlen(name));
    fm_buf_printf(&req->reply, ",\"version\":%lld}", (long long)version);
    fm_reply_json(req, 201);
    return FM_OK;
}

/*
 * Who may move a label: "production" only a validator, and never onto a version that the same key
 * uploaded (maker-checker); any other label ("staging", ...) a modeler. Without authentication
 * (a loopback development server) anyone may.
 */
static int label_allowed(fm_request_t *req, const char *name, const char *label, int64_t version,
                         fm_error_t *err) {
    if (!req->authenticated) return FM_OK;
    int production = !strcmp(label, "production");
    fm_role_t needed = production ? FM_ROLE_VALIDATOR : FM_ROLE_MODELER;
    if (req->who.role != needed)
        return fm_error_set(err, FM_EDENIED, "only a %s may move the label '%s'",
                            fm_role_name(needed), label);
    if (production && version > 0) {
        fm_version_info_t info;
        int rc = fm_registry_get(req->server->registry, name, version, &info, err);
        if (rc) return rc;
        if (!strcmp(info.uploaded_by, req->who.id))
            return fm_error_set(err, FM_EDENIED,
                                "maker-checker: key %s uploaded model '%s' "
                                "version %lld, so it may not promote it to "
                                "production",
                                req->who.id, name, (long long)version);
    }
    return FM_OK;
}

int fm_h_label_put(fm_request_t *req, fm_error_t *err) {
    const char *name = req->params[0], *label = req->params[1];
    snprintf(req->model, sizeof req->model, "%s", name);
    cJSON *body = NULL;
    int rc = fm_json_parse(req->body.data, req->body.len, "request body", &body, err);
    int64_t version = 0;
    if (!rc) rc = fm_json_int(body, "version", 1, INT64_MAX / 2, &version, err);
    cJSON_Delete(body);
    if (rc) return rc == FM_EFORMAT ? FM_EPARSE : rc;
    if (!fm_registry_valid_name(label))
        return fm_error_set(err, FM_EINVAL, "invalid label '%s' (1-64 of A-Z a-z 0-9 _ . -)",
                            label);
    if ((rc = label_allowed(req, name, label, version, err))) return rc;
    rc = fm_registry_set_label(req->server->registry, name, label, version, err);
    if (rc) return rc;
    fm_store_set_label(req->server->store, name, label, version);
    req->version = version;
    fm_buf_puts(&req->reply, "{\"model\":");
    fm_buf_json_string(&req->reply, name, strlen(name));
    fm_buf_puts(&req->reply, ",\"label\":");
    fm_buf_json_string(&req->reply, label, strlen(label));
    fm_buf_printf(&req->reply, ",\"version\":%lld}", (long long)version);
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_label_delete(fm_request_t *req, fm_error_t *err) {
    const char *name = req->params[0], *label = req->params[1];
    snprintf(req->model, sizeof req->model, "%s", name);
    int rc = label_allowed(req, name, label, 0, err);
    if (!rc) rc = fm_registry_remove_label(req->server->registry, name, label, err);
    if (rc) return rc;
    fm_store_set_label(req->server->store, name, label, 0);
    fm_buf_puts(&req->reply, "{}");
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_models_list(fm_request_t *req, fm_error_t *err) {
    fm_version_info_t *infos = NULL;
    size_t n = 0;
    int rc = fm_registry_list(req->server->registry, NULL, &infos, &n, err);
    if (rc) return rc;
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (!fm_auth_sees(req, infos[i].name)) continue; /* outside the key's scope */
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "name", infos[i].name);
        cJSON_AddNumberToObject(v, "version", (double)infos[i].version);
        cJSON_AddStringToObject(v, "task", infos[i].task);
        cJSON_AddStringToObject(v, "family", infos[i].family);
        cJSON_AddNumberToObject(v, "size", (double)infos[i].size);
        cJSON_AddStringToObject(v, "sha256", infos[i].sha256);
        cJSON_AddStringToObject(v, "created", infos[i].created);
        cJSON_AddStringToObject(v, "uploaded_by", infos[i].uploaded_by);
        cJSON *labels = cJSON_AddArrayToObject(v, "labels");
        char *save = NULL;
        for (char *l = strtok_r(infos[i].labels, ",", &save); l; l = strtok_r(NULL, ",", &save))
            cJSON_AddItemToArray(labels, cJSON_CreateString(l));
        cJSON_AddItemToArray(list, v);
    }
    free(infos);
    char *text = cJSON_PrintUnformatted(list);
    cJSON_Delete(list);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_buf_puts(&req->reply, text);
    free(text);
    fm_reply_json(req, 200);
    return FM_OK;
}

/* The audit log writer's counters: what durability costs (entries per commit, commit time). */
static int render_audit(fm_audit_t *audit, fm_buf_t *out) {
    fm_audit_stats_t st;
    fm_audit_stats(audit, &st);
    const struct {
        const char *name, *type, *help;
        double value;
    } rows[] = {
        {"finmaas_audit_entries_total", "counter", "Audit log entries committed.",
         (double)st.entries},
        {"finmaas_audit_commits_total", "counter",
         "Audit log group commits (one write and one fdatasync each).", (double)st.commits},
        {"finmaas_audit_commit_failures_total", "counter",
         "Audit log group commits that failed (their requests were answered 500).",
         (double)st.failures},
        {"finmaas_audit_lost_total", "counter",
         "Entries of the asynchronous audit mode given up after a failed commit.", (double)st.lost},
        {"finmaas_audit_commit_seconds_total", "counter",
         "Time spent committing audit groups (lock, write, fdatasync, head).", st.commit_seconds},
        {"finmaas_audit_commit_seconds_max", "gauge", "Longest single audit group commit.",
         st.max_commit_seconds},
        {"finmaas_audit_queued_entries", "gauge", "Audit entries waiting to be committed.",
         (double)st.queued},
    };
    int rc = FM_OK;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && !rc; i++) {
        rc = fm_metrics_put_family(out, rows[i].name, rows[i].type, rows[i].help);
        if (!rc) rc = fm_buf_printf(out, "%s %.17g\n", rows[i].name, rows[i].value);
    }
    return rc;
}

int fm_h_metrics(fm_request_t *req, fm_error_t *err) {
    if (fm_metrics_render(req->server->metrics, &req->reply) ||
        (req->server->audit && render_audit(req->server->audit, &req->reply)))
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    req->status = 200;
    req->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return FM_OK;
}
