/*
 * API keys over HTTP, for admins:
 *   GET /api/keys               every key: id, name, role, scope, created, created_by, revoked
 *   POST /api/keys              {"role": "consumer", "models": ["credit"], "name": "loan-app"}
 *                               201 with the token, shown this once (never logged or audited)
 *   DELETE /api/keys/{id|name}  revokes; effective for the next request
 */
#include "server/internal.h"
#include "core/json.h"

#include <sodium.h>

#include <stdlib.h>
#include <string.h>

static cJSON *key_json(const fm_key_info_t *k) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", k->id);
    cJSON_AddStringToObject(o, "name", k->name);
    cJSON_AddStringToObject(o, "role", fm_role_name(k->role));
    cJSON *models = cJSON_AddArrayToObject(o, "models");
    char scope[FM_KEY_SCOPE_MAX];
    snprintf(scope, sizeof scope, "%s", k->scope);
    char *save = NULL;
    for (char *m = strtok_r(scope, ",", &save); m; m = strtok_r(NULL, ",", &save))
        cJSON_AddItemToArray(models, cJSON_CreateString(m));
    cJSON_AddStringToObject(o, "created", k->created);
    cJSON_AddStringToObject(o, "created_by", k->created_by);
    cJSON_AddBoolToObject(o, "revoked", k->revoked);
    return o;
}

static int reply_json_object(fm_request_t *req, cJSON *j, int status, fm_error_t *err) {
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_buf_puts(&req->reply, text);
    free(text);
    fm_reply_json(req, status);
    return FM_OK;
}

int fm_h_keys_list(fm_request_t *req, fm_error_t *err) {
    fm_key_info_t *keys = NULL;
    size_t n = 0;
    int rc = fm_keystore_list(req->server->keystore, &keys, &n, err);
    if (rc) return rc;
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(list, key_json(&keys[i]));
    free(keys);
    return reply_json_object(req, list, 200, err);
}

int fm_h_keys_create(fm_request_t *req, fm_error_t *err) {
    cJSON *body = NULL;
    int rc = fm_json_parse(req->body.data, req->body.len, "request body", &body, err);
    if (rc) return rc;
    const char *role_text = NULL, *name = NULL;
    fm_role_t role = FM_ROLE_NONE;
    char scope[FM_KEY_SCOPE_MAX] = "";
    rc = fm_json_string(body, "role", &role_text, err);
    /* The text is not echoed: a caller could have pasted a token into the wrong field. */
    if (!rc && fm_role_parse(role_text, &role))
        rc = fm_error_set(err, FM_EINVAL,
                          "unknown role (admin, modeler, validator, consumer, "
                          "auditor)");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(body, "name");
    if (!rc && n && !cJSON_IsString(n))
        rc = fm_error_set(err, FM_EINVAL, "'name' must be a string");
    if (!rc && n) name = n->valuestring;
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(body, "models");
    if (!rc && models) {
        if (cJSON_IsString(models)) {
            snprintf(scope, sizeof scope, "%s", models->valuestring);
        } else if (cJSON_IsArray(models)) {
            const cJSON *m;
            size_t used = 0;
            cJSON_ArrayForEach(m, models) {
                if (!cJSON_IsString(m)) {
                    rc = fm_error_set(err, FM_EINVAL, "'models' must list model names");
                    break;
                }
                int w = snprintf(scope + used, sizeof scope - used, "%s%s", used ? "," : "",
                                 m->valuestring);
                if (w < 0 || (size_t)w >= sizeof scope - used) {
                    rc = fm_error_set(err, FM_EINVAL, "'models' is too long");
                    break;
                }
                used += (size_t)w;
            }
        } else {
            rc = fm_error_set(err, FM_EINVAL, "'models' must be a list of model names");
        }
        /* An empty list would mean every model: say so by leaving 'models' out instead. */
        if (!rc && !scope[0])
            rc = fm_error_set(err, FM_EINVAL,
                              "'models' must name at least one model (leave it "
                              "out for a key that may use every model)");
    }
    char token[FM_KEY_TOKEN_MAX];
    fm_key_info_t info;
    if (!rc)
        rc = fm_keystore_create(req->server->keystore, role, scope, name, req->who.id, token, &info,
                                err);
    cJSON_Delete(body);
    if (rc) return rc;
    fm_auth_refresh(req->server);
    cJSON *o = key_json(&info);
    cJSON_AddStringToObject(o, "token", token);
    sodium_memzero(token, sizeof token);
    /* The audit log records the new key's id, role and scope, never its token. */
    cJSON *trail = cJSON_CreateObject();
    cJSON_AddStringToObject(trail, "created", info.id);
    cJSON_AddStringToObject(trail, "role", fm_role_name(info.role));
    cJSON_AddStringToObject(trail, "scope", info.scope[0] ? info.scope : "*");
    req->audit_owned = cJSON_PrintUnformatted(trail);
    cJSON_Delete(trail);
    if (req->audit_owned) req->audit_output = req->audit_owned;
    return reply_json_object(req, o, 201, err);
}

int fm_h_keys_revoke(fm_request_t *req, fm_error_t *err) {
    int rc = fm_keystore_revoke(req->server->keystore, req->params[0], err);
    if (rc) return rc;
    fm_auth_refresh(req->server);
    fm_buf_puts(&req->reply, "{\"revoked\":");
    fm_buf_json_string(&req->reply, req->params[0], strlen(req->params[0]));
    fm_buf_putc(&req->reply, '}');
    fm_reply_json(req, 200);
    return FM_OK;
}
