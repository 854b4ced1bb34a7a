/*
 * Datasets over HTTP (jobs/jobs.h stores them):
 *   POST /api/datasets?name=NAME[&replace=true][&types=col:numeric,...][&schema={...}][&pii=a,b]
 *        body: a CSV (streamed to an unlinked temporary file, never held in memory, up to
 *        --max-dataset-bytes); 201 with its profile
 *   GET /api/datasets                 every dataset (name, rows, columns, size, created, ...)
 *   GET /api/datasets/{name}          its profile
 *   DELETE /api/datasets/{name}
 *
 * The upload's body is a FM_BODY_STREAM: the handler opens the upload when the headers arrive
 * (a bad name, a taken name or bad options are refused before the body is read), http.c writes
 * the chunks to it, and once the body is complete the parsing, profiling and encryption run on
 * the jobs' background thread while the connection is suspended, so no HTTP thread is held for
 * the seconds a large file takes. A dataset name is a name in a key's scope like a model name: a
 * scoped key sees only the datasets its scope names.
 */
#include "server/internal.h"

#include "core/json.h"

#include <stdlib.h>
#include <string.h>

#define PII_MAX 256

/* The upload of one request: the sink of its body, then the commit's outcome. */
typedef struct upload {
    fm_request_t *req;
    fm_dataset_upload_t *upload;
    int rc;
    fm_error_t err;
    cJSON *profile;
} upload_t;

static const char *query(fm_request_t *req, const char *key) {
    return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, key);
}

static int sink_write(void *sink, const void *data, size_t n, fm_error_t *err) {
    upload_t *u = sink;
    return fm_dataset_upload_write(u->upload, data, n, err);
}

static void sink_release(void *sink) {
    upload_t *u = sink;
    fm_dataset_upload_free(u->upload);
    cJSON_Delete(u->profile);
    free(u);
}

/* "col:numeric,col2:categorical" (the last ':' separates the type, so names may hold ':'). */
static int parse_types(const char *text, fm_type_overrides_t *out, fm_error_t *err) {
    char *copy = strdup(text), *save = NULL;
    if (!copy) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = FM_OK;
    for (char *item = strtok_r(copy, ",", &save); !rc && item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(item, ':');
        fm_column_type_t type;
        if (!colon || colon == item)
            rc = fm_error_set(err, FM_EINVAL, "types: '%s' is not column:type", item);
        else if (*colon = '\0', fm_column_type_parse(colon + 1, &type) != FM_OK)
            rc = fm_error_set(err, FM_EINVAL,
                              "types: column '%s': '%s' is not a column type (numeric or "
                              "categorical)",
                              item, colon + 1);
        else if (fm_type_overrides_add(out, item, type))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    free(copy);
    return rc;
}

/* A JSON schema {"col": "numeric", ...}, the format of `finmaas train --schema`. */
static int parse_schema(const char *text, fm_type_overrides_t *out, fm_error_t *err) {
    cJSON *j = NULL;
    int rc = fm_json_parse(text, strlen(text), "schema", &j, err);
    if (rc) return FM_EINVAL;
    if (!cJSON_IsObject(j)) rc = fm_error_set(err, FM_EINVAL, "schema: must be a JSON object");
    const cJSON *item;
    cJSON_ArrayForEach(item, j) {
        fm_column_type_t type;
        if (rc) break;
        if (!cJSON_IsString(item) || fm_column_type_parse(item->valuestring, &type) != FM_OK)
            rc = fm_error_set(err, FM_EINVAL,
                              "schema: column '%s': not a column type (numeric or categorical)",
                              item->string);
        else if (fm_type_overrides_add(out, item->string, type))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    cJSON_Delete(j);
    return rc;
}

/* "a,b" into names (pointers into copy). */
static int parse_pii(char *copy, const char **names, size_t *n, fm_error_t *err) {
    *n = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (*n == PII_MAX)
            return fm_error_set(err, FM_EINVAL, "pii: more than %d columns", PII_MAX);
        names[(*n)++] = item;
    }
    return FM_OK;
}

static int parse_bool(const char *text, const char *what, int *out, fm_error_t *err) {
    if (!text || !strcmp(text, "false") || !strcmp(text, "0")) {
        *out = 0;
    } else if (!strcmp(text, "true") || !strcmp(text, "1")) {
        *out = 1;
    } else {
        return fm_error_set(err, FM_EINVAL, "%s must be true or false, got '%s'", what, text);
    }
    return FM_OK;
}

/* The headers are in: checks the name and options and opens the upload (the sink). */
static int open_upload(fm_request_t *req, fm_error_t *err) {
    const char *name = query(req, "name");
    if (!name || !*name)
        return fm_error_set(err, FM_EINVAL,
                            "the dataset's name is required: POST /api/datasets?name=NAME");
    int rc = fm_dataset_check_name(name, err);
    if (rc) return rc;
    snprintf(req->audit_detail, sizeof req->audit_detail, "dataset=%s", name);
    if (!fm_auth_sees(req, name))
        return fm_error_set(err, FM_EDENIED, "this key may not use dataset '%s'", name);
    int replace = 0;
    rc = parse_bool(query(req, "replace"), "replace", &replace, err);
    fm_type_overrides_t types = {0};
    const char *text;
    if (!rc && (text = query(req, "types")) && *text) rc = parse_types(text, &types, err);
    if (!rc && (text = query(req, "schema")) && *text) rc = parse_schema(text, &types, err);
    const char *pii[PII_MAX];
    size_t npii = 0;
    char *pii_text = NULL;
    if (!rc && (text = query(req, "pii")) && *text) {
        pii_text = strdup(text);
        rc = pii_text ? parse_pii(pii_text, pii, &npii, err)
                      : fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    upload_t *u = NULL;
    if (!rc) {
        u = calloc(1, sizeof *u);
        if (!u) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc) {
        fm_dataset_options_t opts = {
            .types = &types,
            .pii = pii,
            .npii = npii,
            .replace = replace,
            .uploaded_by = req->authenticated ? req->who.id : "anonymous",
        };
        u->req = req;
        rc = fm_dataset_upload_begin(req->server->datasets, name, &opts, &u->upload, err);
    }
    fm_type_overrides_free(&types);
    free(pii_text);
    if (rc) {
        free(u);
        return rc;
    }
    req->sink = u;
    req->sink_write = sink_write;
    req->sink_release = sink_release;
    return FM_OK;
}

/* On the background thread: parse, profile, store; then the connection goes on. */
static void commit_task(void *ctx) {
    upload_t *u = ctx;
    fm_error_clear(&u->err);
    u->rc = fm_dataset_upload_commit(u->upload, &u->profile, &u->err);
    MHD_resume_connection(u->req->connection);
}

static int finish_upload(fm_request_t *req, fm_error_t *err) {
    upload_t *u = req->sink;
    if (u->rc) {
        if (err) *err = u->err;
        if (u->rc == FM_EBUSY) req->retry_after = 5;
        return u->rc;
    }
    char *text = cJSON_PrintUnformatted(u->profile);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_buf_puts(&req->reply, text);
    free(text);
    fm_reply_json(req, 201);
    return FM_OK;
}

int fm_h_datasets_upload(fm_request_t *req, fm_error_t *err) {
    if (req->stream_open) return open_upload(req, err);
    /* The body is complete. Suspended before the task is visible, so its resume comes after. */
    upload_t *u = req->sink;
    req->resume = finish_upload;
    req->state = FM_REQ_WAITING;
    MHD_suspend_connection(req->connection);
    if (fm_jobs_background(req->server->jobs, commit_task, u, &u->err) != FM_OK) {
        u->rc = u->err.code;
        MHD_resume_connection(req->connection);
    }
    return FM_OK;
}

int fm_h_datasets_list(fm_request_t *req, fm_error_t *err) {
    cJSON *list = NULL;
    int rc = fm_datasets_list(req->server->datasets, &list, err);
    if (rc) return rc;
    cJSON *visible = cJSON_CreateArray(), *item;
    while ((item = cJSON_DetachItemFromArray(list, 0))) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
        if (cJSON_IsString(name) && fm_auth_sees(req, name->valuestring))
            cJSON_AddItemToArray(visible, item);
        else
            cJSON_Delete(item);
    }
    cJSON_Delete(list);
    char *text = cJSON_PrintUnformatted(visible);
    cJSON_Delete(visible);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_buf_puts(&req->reply, text);
    free(text);
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_datasets_get(fm_request_t *req, fm_error_t *err) {
    const char *name = req->params[0];
    int rc = fm_dataset_check_name(name, err);
    if (rc) return rc;
    snprintf(req->audit_detail, sizeof req->audit_detail, "dataset=%s", name);
    cJSON *profile = NULL;
    rc = fm_datasets_get(req->server->datasets, name, &profile, err);
    if (rc) return rc;
    char *text = cJSON_PrintUnformatted(profile);
    cJSON_Delete(profile);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_buf_puts(&req->reply, text);
    free(text);
    fm_reply_json(req, 200);
    return FM_OK;
}

int fm_h_datasets_delete(fm_request_t *req, fm_error_t *err) {
    const char *name = req->params[0];
    int rc = fm_dataset_check_name(name, err);
    if (rc) return rc;
    snprintf(req->audit_detail, sizeof req->audit_detail, "dataset=%s", name);
    rc = fm_datasets_delete(req->server->datasets, name, err);
    if (rc) return rc;
    fm_buf_puts(&req->reply, "{\"name\":");
    fm_buf_json_string(&req->reply, name, strlen(name));
    fm_buf_puts(&req->reply, ",\"deleted\":true}");
    fm_reply_json(req, 200);
    return FM_OK;
}
