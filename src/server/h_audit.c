/*
 * GET /api/audit?model=&since=&until=&limit= for auditors: the audit log's entries (oldest first,
 * at most limit, default 1000), each with its chain hashes, as a JSON array.
 */
#include "server/internal.h"

#include <stdlib.h>

int fm_h_audit_query(fm_request_t *req, fm_error_t *err) {
    struct MHD_Connection *c = req->connection;
    const char *model = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
    const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    const char *until = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "until");
    const char *limit_text = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    long limit = 1000;
    if (limit_text) {
        char *end;
        limit = strtol(limit_text, &end, 10);
        if (end == limit_text || *end || limit < 1 || limit > 100000)
            return fm_error_set(err, FM_EINVAL, "limit must be an integer in [1, 100000]");
    }
    if (!req->server->audit)
        return fm_error_set(err, FM_ESTATE, "the audit log is off on this server");
    cJSON *entries = NULL;
    int rc = fm_audit_query(fm_registry_home(req->server->registry), model && *model ? model : NULL,
                            since && *since ? since : NULL, until && *until ? until : NULL,
                            (size_t)limit, &entries, err);
    if (rc) return rc;
    char *text = cJSON_PrintUnformatted(entries);
    cJSON_Delete(entries);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_buf_puts(&req->reply, text);
    free(text);
    /* The reply is a copy of the log itself: record its digest, not a second copy. */
    req->audit_output = "{\"export\":true}";
    fm_reply_json(req, 200);
    return FM_OK;
}
