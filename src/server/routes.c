/*
 * The HTTP API as one table: method, path pattern, handler, the action's name in the audit log,
 * the roles allowed, and the kind of body it takes. Authentication, authorisation, rate limits,
 * body limits, content types, error replies and the audit entry are applied once in http.c
 * around the handler; a handler only does its own work (and checks rules that depend on the
 * data, such as who may move the production label).
 */
#include "server/internal.h"

#include <stdio.h>
#include <string.h>

static const fm_route_t routes[] = {
    /* Open Inference Protocol (KServe V2); inference first: the table is searched in order. */
    {"POST", "/v2/models/{name}/infer", fm_h_v2_infer, "v2.infer", FM_ROLES_PREDICT, FM_BODY_JSON},
    {"POST", "/v2/models/{name}/versions/{version}/infer", fm_h_v2_infer, "v2.infer",
     FM_ROLES_PREDICT, FM_BODY_JSON},
    {"POST", "/v2/models/{name}/explain", fm_h_v2_explain, "v2.explain", FM_ROLES_PREDICT,
     FM_BODY_JSON},
    {"POST", "/v2/models/{name}/versions/{version}/explain", fm_h_v2_explain, "v2.explain",
     FM_ROLES_PREDICT, FM_BODY_JSON},
    {"GET", "/v2/health/live", fm_h_live, "health.live", FM_ROLES_PUBLIC, FM_BODY_NONE},
    {"GET", "/v2/health/ready", fm_h_ready, "health.ready", FM_ROLES_PUBLIC, FM_BODY_NONE},
    {"GET", "/v2", fm_h_server_metadata, "server.metadata", FM_ROLES_ANY, FM_BODY_NONE},
    {"GET", "/v2/models/{name}", fm_h_model_metadata, "model.metadata", FM_ROLES_ANY, FM_BODY_NONE},
    {"GET", "/v2/models/{name}/versions/{version}", fm_h_model_metadata, "model.metadata",
     FM_ROLES_ANY, FM_BODY_NONE},
    {"GET", "/v2/models/{name}/ready", fm_h_model_ready, "model.ready", FM_ROLES_ANY, FM_BODY_NONE},
    {"GET", "/v2/models/{name}/versions/{version}/ready", fm_h_model_ready, "model.ready",
     FM_ROLES_ANY, FM_BODY_NONE},
    /* Model repository (the V2 repository extension, and uploads) */
    {"GET", "/v2/repository/index", fm_h_repository_index, "repository.index", FM_ROLES_ANY,
     FM_BODY_NONE},
    {"POST", "/v2/repository/index", fm_h_repository_index, "repository.index", FM_ROLES_ANY,
     FM_BODY_NONE},
    {"POST", "/v2/repository/models/{name}/load", fm_h_repository_load, "model.load",
     FM_ROLES_LIFECYCLE, FM_BODY_NONE},
    {"POST", "/v2/repository/models/{name}/unload", fm_h_repository_unload, "model.unload",
     FM_ROLES_LIFECYCLE, FM_BODY_NONE},
    {"POST", "/v2/repository/models/{name}/versions", fm_h_repository_upload, "model.upload",
     FM_ROLE_BIT(FM_ROLE_MODELER), FM_BODY_BINARY},
    /* TensorFlow Serving REST */
    {"POST", "/v1/models/{name}:predict", fm_h_tf_predict, "tf.predict", FM_ROLES_PREDICT,
     FM_BODY_JSON},
    {"POST", "/v1/models/{name}/versions/{version}:predict", fm_h_tf_predict, "tf.predict",
     FM_ROLES_PREDICT, FM_BODY_JSON},
    {"POST", "/v1/models/{name}/labels/{label}:predict", fm_h_tf_predict, "tf.predict",
     FM_ROLES_PREDICT, FM_BODY_JSON},
    {"GET", "/v1/models/{name}", fm_h_tf_status, "model.status", FM_ROLES_ANY, FM_BODY_NONE},
    {"GET", "/v1/models/{name}/versions/{version}", fm_h_tf_status, "model.status", FM_ROLES_ANY,
     FM_BODY_NONE},
    /* finmaas management */
    {"GET", "/api/models", fm_h_models_list, "models.list", FM_ROLES_ANY, FM_BODY_NONE},
    {"PUT", "/api/models/{name}/labels/{label}", fm_h_label_put, "label.set", FM_ROLES_LABELS,
     FM_BODY_JSON},
    {"DELETE", "/api/models/{name}/labels/{label}", fm_h_label_delete, "label.remove",
     FM_ROLES_LABELS, FM_BODY_NONE},
    /* Governance: fairness and the validation report of a version on a stored dataset */
    {"POST", "/api/models/{name}/fairness", fm_h_model_fairness, "model.fairness",
     FM_ROLES_TRAINING_READ, FM_BODY_JSON},
    {"POST", "/api/models/{name}/versions/{version}/fairness", fm_h_model_fairness,
     "model.fairness", FM_ROLES_TRAINING_READ, FM_BODY_JSON},
    {"GET", "/api/models/{name}/versions/{version}/report", fm_h_model_report, "model.report",
     FM_ROLES_TRAINING_READ, FM_BODY_NONE},
    /* Financial applications: loan decisions with a scorecard model */
    {"POST", "/api/apps/loan/{name}/decide", fm_h_loan_decide, "loan.decide", FM_ROLES_PREDICT,
     FM_BODY_JSON},
    {"POST", "/api/apps/loan/{name}/versions/{version}/decide", fm_h_loan_decide, "loan.decide",
     FM_ROLES_PREDICT, FM_BODY_JSON},
    {"POST", "/api/apps/invest/analyze", fm_h_app_invest_analyze, "invest.analyze",
     FM_ROLES_PREDICT, FM_BODY_JSON},
    {"GET", "/api/keys", fm_h_keys_list, "keys.list", FM_ROLE_BIT(FM_ROLE_ADMIN), FM_BODY_NONE},
    {"POST", "/api/keys", fm_h_keys_create, "keys.create", FM_ROLE_BIT(FM_ROLE_ADMIN),
     FM_BODY_JSON},
    {"DELETE", "/api/keys/{key}", fm_h_keys_revoke, "keys.revoke", FM_ROLE_BIT(FM_ROLE_ADMIN),
     FM_BODY_NONE},
    {"GET", "/api/audit", fm_h_audit_query, "audit.read", FM_ROLE_BIT(FM_ROLE_AUDITOR),
     FM_BODY_NONE},
    /* Datasets and training jobs */
    {"POST", "/api/datasets", fm_h_datasets_upload, "dataset.upload", FM_ROLES_DATA_WRITE,
     FM_BODY_STREAM},
    {"GET", "/api/datasets", fm_h_datasets_list, "dataset.list", FM_ROLES_TRAINING_READ,
     FM_BODY_NONE},
    {"GET", "/api/datasets/{name}", fm_h_datasets_get, "dataset.read", FM_ROLES_TRAINING_READ,
     FM_BODY_NONE},
    {"DELETE", "/api/datasets/{name}", fm_h_datasets_delete, "dataset.delete", FM_ROLES_DATA_WRITE,
     FM_BODY_NONE},
    {"POST", "/api/jobs", fm_h_jobs_create, "job.create", FM_ROLE_BIT(FM_ROLE_MODELER),
     FM_BODY_JSON},
    {"GET", "/api/jobs", fm_h_jobs_list, "job.list", FM_ROLES_TRAINING_READ, FM_BODY_NONE},
    {"GET", "/api/jobs/{id}", fm_h_jobs_get, "job.read", FM_ROLES_TRAINING_READ, FM_BODY_NONE},
    {"GET", "/api/jobs/{id}/events", fm_h_jobs_events, "job.events", FM_ROLES_TRAINING_READ,
     FM_BODY_NONE},
    {"DELETE", "/api/jobs/{id}", fm_h_jobs_cancel, "job.cancel", FM_ROLE_BIT(FM_ROLE_MODELER),
     FM_BODY_NONE},
    /* Financial applications: portfolio credit risk */
    {"POST", "/api/apps/risk/portfolio", fm_h_app_risk_portfolio, "risk.portfolio",
     FM_ROLES_PREDICT, FM_BODY_JSON_OR_CSV},
    /* Operations */
    {"GET", "/metrics", fm_h_metrics, "metrics.read", FM_ROLES_OPERATE, FM_BODY_NONE},
};

const fm_route_t *fm_routes_table(size_t *count) {
    *count = sizeof routes / sizeof routes[0];
    return routes;
}

/*
 * Matches path against pattern. Parameters are copied, NUL-terminated, into store (at least as
 * large as path) and pointed at from params. Returns 1 on a match.
 */
static int match(const char *pattern, const char *path, char *store, const char **params,
                 size_t *nparams) {
    size_t n = 0;
    const char *p = pattern, *s = path;
    char *out = store;
    while (*p && *s) {
        if (*p != '/' || *s != '/') return 0;
        p++;
        s++;
        const char *pend = strchr(p, '/');
        const char *send = strchr(s, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        size_t slen = send ? (size_t)(send - s) : strlen(s);
        if (*p == '{') {
            const char *close = memchr(p, '}', plen);
            if (!close) return 0;
            const char *suffix = close + 1;
            size_t suffix_len = plen - (size_t)(suffix - p);
            if (slen <= suffix_len || memcmp(s + slen - suffix_len, suffix, suffix_len) != 0)
                return 0;
            if (n == FM_ROUTE_PARAMS) return 0;
            size_t vlen = slen - suffix_len;
            memcpy(out, s, vlen);
            out[vlen] = '\0';
            params[n++] = out;
            out += vlen + 1;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return 0;
        }
        p += plen;
        s += slen;
    }
    if (*p || (*s && strcmp(s, "/") != 0)) return 0;
    *nparams = n;
    return 1;
}

int fm_routes_match(fm_request_t *req, fm_error_t *err) {
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *params[FM_ROUTE_PARAMS];
        size_t nparams = 0;
        if (!match(routes[i].pattern, req->path, req->segments, params, &nparams)) continue;
        if (strcmp(routes[i].method, req->method) != 0) {
            path_known = 1;
            continue;
        }
        req->route = &routes[i];
        memcpy(req->params, params, sizeof params);
        req->nparams = nparams;
        return FM_OK;
    }
    if (path_known)
        return fm_error_set(err, FM_EUNSUPPORTED, "method %s is not allowed on %s", req->method,
                            req->path);
    return fm_error_set(err, FM_ENOTFOUND, "no such endpoint: %s", req->path);
}

void fm_routes_allowed(const char *path, char *out, size_t size) {
    char store[FM_PATH_MAX];
    size_t used = 0;
    out[0] = '\0';
    if (strlen(path) >= sizeof store) return;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *params[FM_ROUTE_PARAMS];
        size_t nparams;
        if (!match(routes[i].pattern, path, store, params, &nparams)) continue;
        if (strstr(out, routes[i].method)) continue;
        int w = snprintf(out + used, size - used, "%s%s", used ? ", " : "", routes[i].method);
        if (w < 0 || (size_t)w >= size - used) break;
        used += (size_t)w;
    }
}
