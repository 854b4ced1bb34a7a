/*
 * GET /api/audit?model=&since=&until=&limit= for auditors: the audit log's entries (oldest first,
 * at most limit, default 1000), each with its chain hashes, as a JSON array. A key scoped to
 * models sees the entries of those models only.
 */
#include "server/internal.h"

#include <stdlib.h>

/* Entries read for a scoped key before its filter applies (the most a query returns). */
#define AUDIT_SCAN_MAX 100000

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
    /* An auditor key scoped to some models sees only their entries. */
    int scoped = req->authenticated && req->who.scope[0];
    if (scoped && model && *model && !fm_principal_in_scope(&req->who, model))
        return fm_error_set(err, FM_EDENIED, "this key may not read the audit of model '%s'",
                            model);
    cJSON *entries = NULL;
    int rc = fm_audit_query(fm_registry_home(req->server->registry), model && *model ? model : NULL,
                            since && *since ? since : NULL, until && *until ? until : NULL,
                            scoped ? AUDIT_SCAN_MAX : (size_t)limit, &entries, err);
    if (rc) return rc;
    if (scoped) {
        /* Entries of other models, and those of no model (key and server actions), are left out;
         * the limit applies to what is left. */
        cJSON *kept = cJSON_CreateArray();
        cJSON *e = entries ? entries->child : NULL;
        long n = 0;
        while (e && kept && n < limit) {
            cJSON *next = e->next;
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "model");
            if (cJSON_IsString(m) && fm_principal_in_scope(&req->who, m->valuestring))
                n += cJSON_AddItemToArray(kept, cJSON_DetachItemViaPointer(entries, e));
            e = next;
        }
        cJSON_Delete(entries);
        entries = kept;
        if (!entries) return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
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
