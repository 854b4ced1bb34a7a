/*
 * Server configuration: defaults, then a JSON config file, then environment variables, then
 * command-line flags (the caller applies them last), and the description printed at start.
 */
#include "server/server.h"
#include "core/fs.h"
#include "core/json.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fm_server_config_defaults(fm_server_config_t *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->home, sizeof c->home, "./finmaas-home");
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 8080;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = cpus > 0 ? (int)cpus : 2;
    c->max_body_bytes = 8u << 20;
    c->max_upload_bytes = 256u << 20;
    c->access_log[0] = '\0'; /* resolved to <home>/access.log at start unless set */
    c->batch_max_size = 0;
    c->batch_max_delay_us = 500;
    c->queue_limit = 1024;
    c->watch_interval_ms = 2000;
    c->drain_seconds = 30;
    c->auth = 1;
    c->audit = FM_SERVER_AUDIT_DURABLE;
    c->rate_limit = 100000;
    c->rate_burst = 0;
    c->max_connections = 1024;
    c->max_connections_per_ip = 0;
    c->timeout_seconds = 30;
    c->job_workers = 1;
    c->job_queue = 16;
    c->max_dataset_bytes = (size_t)1 << 30;
}

const char *fm_server_audit_name(int mode) {
    return mode == FM_SERVER_AUDIT_ASYNC ? "async"
           : mode == FM_SERVER_AUDIT_OFF ? "off"
                                         : "durable";
}

int fm_server_audit_parse(const char *text, int *mode) {
    if (!strcmp(text, "durable"))
        *mode = FM_SERVER_AUDIT_DURABLE;
    else if (!strcmp(text, "async"))
        *mode = FM_SERVER_AUDIT_ASYNC;
    else if (!strcmp(text, "off"))
        *mode = FM_SERVER_AUDIT_OFF;
    else
        return FM_EINVAL;
    return FM_OK;
}

int fm_server_config_listen(fm_server_config_t *c, const char *text, fm_error_t *err) {
    const char *colon = strrchr(text, ':');
    if (!colon) return fm_error_set(err, FM_EINVAL, "listen address '%s' must be host:port", text);
    const char *host = text;
    size_t hlen = (size_t)(colon - text);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || errno || port < 0 || port > 65535)
        return fm_error_set(err, FM_EINVAL, "listen address '%s': port must be 0..65535", text);
    if (hlen >= sizeof c->host)
        return fm_error_set(err, FM_EINVAL, "listen address '%s': host too long", text);
    if (hlen == 0) {
        snprintf(c->host, sizeof c->host, "127.0.0.1");
    } else {
        memcpy(c->host, host, hlen);
        c->host[hlen] = '\0';
    }
    c->port = (int)port;
    return FM_OK;
}

static int set_text(char *dst, size_t size, const char *value, const char *what, fm_error_t *err) {
    if (strlen(value) >= size) return fm_error_set(err, FM_EINVAL, "%s is too long", what);
    memcpy(dst, value, strlen(value) + 1);
    return FM_OK;
}

static int parse_int(const char *text, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int fm_server_config_load(fm_server_config_t *c, const char *path, fm_error_t *err) {
    char *text;
    size_t len;
    int rc = fm_file_read_all(path, 1 << 20, &text, &len, err);
    if (rc) return rc;
    cJSON *j = NULL;
    rc = fm_json_parse(text, len, path, &j, err);
    free(text);
    if (rc) return rc;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fm_error_set(err, FM_EFORMAT, "%s: must hold a JSON object", path);
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, j) {
        const char *key = item->string;
        int64_t v;
        if (!strcmp(key, "home") && cJSON_IsString(item)) {
            rc = set_text(c->home, sizeof c->home, item->valuestring, "home", err);
        } else if (!strcmp(key, "listen") && cJSON_IsString(item)) {
            rc = fm_server_config_listen(c, item->valuestring, err);
        } else if (!strcmp(key, "access_log") && cJSON_IsString(item)) {
            rc =
                set_text(c->access_log, sizeof c->access_log, item->valuestring, "access_log", err);
        } else if (!strcmp(key, "threads")) {
            if (!(rc = fm_json_int(j, key, 1, 64, &v, err))) c->threads = (int)v;
        } else if (!strcmp(key, "max_body_bytes")) {
            if (!(rc = fm_json_int(j, key, 1024, (int64_t)1 << 32, &v, err)))
                c->max_body_bytes = (size_t)v;
        } else if (!strcmp(key, "max_upload_bytes")) {
            if (!(rc = fm_json_int(j, key, 1024, (int64_t)1 << 34, &v, err)))
                c->max_upload_bytes = (size_t)v;
        } else if (!strcmp(key, "watch_interval_ms")) {
            if (!(rc = fm_json_int(j, key, 0, 3600000, &v, err))) c->watch_interval_ms = (int)v;
        } else if (!strcmp(key, "tls_cert") && cJSON_IsString(item)) {
            rc = set_text(c->tls_cert, sizeof c->tls_cert, item->valuestring, key, err);
        } else if (!strcmp(key, "tls_key") && cJSON_IsString(item)) {
            rc = set_text(c->tls_key, sizeof c->tls_key, item->valuestring, key, err);
        } else if (!strcmp(key, "tls_client_ca") && cJSON_IsString(item)) {
            rc = set_text(c->tls_client_ca, sizeof c->tls_client_ca, item->valuestring, key, err);
        } else if (!strcmp(key, "auth") && cJSON_IsBool(item)) {
            c->auth = cJSON_IsTrue(item);
        } else if (!strcmp(key, "audit") && cJSON_IsString(item)) {
            if (fm_server_audit_parse(item->valuestring, &c->audit))
                rc = fm_error_set(err, FM_EINVAL, "audit must be durable, async or off");
        } else if (!strcmp(key, "rate_limit")) {
            if (!(rc = fm_json_int(j, key, 0, 100000000, &v, err))) c->rate_limit = (double)v;
        } else if (!strcmp(key, "rate_burst")) {
            if (!(rc = fm_json_int(j, key, 0, 100000000, &v, err))) c->rate_burst = (double)v;
        } else if (!strcmp(key, "max_connections")) {
            if (!(rc = fm_json_int(j, key, 1, 1000000, &v, err))) c->max_connections = (int)v;
        } else if (!strcmp(key, "max_connections_per_ip")) {
            if (!(rc = fm_json_int(j, key, 0, 1000000, &v, err)))
                c->max_connections_per_ip = (int)v;
        } else if (!strcmp(key, "timeout_seconds")) {
            if (!(rc = fm_json_int(j, key, 1, 86400, &v, err))) c->timeout_seconds = (int)v;
        } else if (!strcmp(key, "job_workers")) {
            if (!(rc = fm_json_int(j, key, 1, 64, &v, err))) c->job_workers = (int)v;
        } else if (!strcmp(key, "job_queue")) {
            if (!(rc = fm_json_int(j, key, 1, 100000, &v, err))) c->job_queue = (int)v;
        } else if (!strcmp(key, "max_dataset_bytes")) {
            if (!(rc = fm_json_int(j, key, 1024, (int64_t)1 << 40, &v, err)))
                c->max_dataset_bytes = (size_t)v;
        } else if (!strcmp(key, "drain_seconds")) {
            if (!(rc = fm_json_int(j, key, 0, 3600, &v, err))) c->drain_seconds = (int)v;
        } else if (!strcmp(key, "batch") && cJSON_IsObject(item)) {
            const cJSON *b;
            cJSON_ArrayForEach(b, item) {
                if (!strcmp(b->string, "max_size")) {
                    if (!(rc = fm_json_int(item, b->string, 0, 65536, &v, err)))
                        c->batch_max_size = (int)v;
                } else if (!strcmp(b->string, "max_delay_us")) {
                    if (!(rc = fm_json_int(item, b->string, 0, 10000000, &v, err)))
                        c->batch_max_delay_us = (int)v;
                } else if (!strcmp(b->string, "queue")) {
                    if (!(rc = fm_json_int(item, b->string, 1, 1 << 20, &v, err)))
                        c->queue_limit = (int)v;
                } else {
                    rc = fm_error_set(err, FM_EINVAL, "unknown key batch.%s", b->string);
                }
                if (rc) break;
            }
        } else {
            rc = fm_error_set(err, FM_EINVAL, "unknown or mistyped key '%s'", key);
        }
        if (rc) break;
    }
    cJSON_Delete(j);
    if (rc) fm_error_prefix(err, "config file %s: ", path);
    return rc;
}

int fm_server_config_from_env(fm_server_config_t *c, fm_error_t *err) {
    const char *v;
    long n;
    int rc = FM_OK;
    if ((v = getenv("FINMAAS_HOME")) && *v)
        rc = set_text(c->home, sizeof c->home, v, "FINMAAS_HOME", err);
    if (!rc && (v = getenv("FINMAAS_LISTEN")) && *v) rc = fm_server_config_listen(c, v, err);
    if (!rc && (v = getenv("FINMAAS_AUTH")) && *v) {
        if (strcmp(v, "on") && strcmp(v, "off"))
            rc = fm_error_set(err, FM_EINVAL, "FINMAAS_AUTH must be on or off, got '%s'", v);
        else
            c->auth = !strcmp(v, "on");
    }
    if (!rc && (v = getenv("FINMAAS_AUDIT")) && *v && fm_server_audit_parse(v, &c->audit))
        rc = fm_error_set(err, FM_EINVAL, "FINMAAS_AUDIT must be durable, async or off, got '%s'",
                          v);
    if (!rc && (v = getenv("FINMAAS_ACCESS_LOG")))
        rc = set_text(c->access_log, sizeof c->access_log, v, "FINMAAS_ACCESS_LOG", err);
    struct {
        const char *name;
        long min, max;
        int *target;
    } ints[] = {
        {"FINMAAS_THREADS", 1, 64, &c->threads},
        {"FINMAAS_BATCH_MAX_SIZE", 0, 65536, &c->batch_max_size},
        {"FINMAAS_BATCH_MAX_DELAY_US", 0, 10000000, &c->batch_max_delay_us},
        {"FINMAAS_JOB_WORKERS", 1, 64, &c->job_workers},
        {"FINMAAS_JOB_QUEUE", 1, 100000, &c->job_queue},
    };
    for (size_t i = 0; !rc && i < sizeof ints / sizeof ints[0]; i++) {
        if (!(v = getenv(ints[i].name)) || !*v) continue;
        if (parse_int(v, ints[i].min, ints[i].max, &n))
            rc = fm_error_set(err, FM_EINVAL, "%s must be an integer in [%ld, %ld], got '%s'",
                              ints[i].name, ints[i].min, ints[i].max, v);
        else
            *ints[i].target = (int)n;
    }
    if (!rc && (v = getenv("FINMAAS_MAX_BODY_BYTES")) && *v) {
        if (parse_int(v, 1024, LONG_MAX, &n))
            rc = fm_error_set(err, FM_EINVAL, "FINMAAS_MAX_BODY_BYTES must be an integer >= 1024");
        else
            c->max_body_bytes = (size_t)n;
    }
    if (!rc && (v = getenv("FINMAAS_MAX_DATASET_BYTES")) && *v) {
        if (parse_int(v, 1024, LONG_MAX, &n))
            rc = fm_error_set(err, FM_EINVAL,
                              "FINMAAS_MAX_DATASET_BYTES must be an integer >= 1024, got '%s'", v);
        else
            c->max_dataset_bytes = (size_t)n;
    }
    return rc;
}

cJSON *fm_server_config_describe(const fm_server_config_t *c) {
    cJSON *j = cJSON_CreateObject();
    char listen[FM_SERVER_HOST_MAX + 16];
    snprintf(listen, sizeof listen, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
    cJSON_AddStringToObject(j, "home", c->home);
    cJSON_AddStringToObject(j, "listen", listen);
    cJSON_AddNumberToObject(j, "threads", c->threads);
    cJSON_AddNumberToObject(j, "max_body_bytes", (double)c->max_body_bytes);
    cJSON_AddNumberToObject(j, "max_upload_bytes", (double)c->max_upload_bytes);
    cJSON_AddStringToObject(j, "access_log", c->access_log);
    cJSON *b = cJSON_AddObjectToObject(j, "batch");
    cJSON_AddNumberToObject(b, "max_size", c->batch_max_size);
    cJSON_AddNumberToObject(b, "max_delay_us", c->batch_max_delay_us);
    cJSON_AddNumberToObject(b, "queue", c->queue_limit);
    cJSON_AddNumberToObject(j, "watch_interval_ms", c->watch_interval_ms);
    cJSON_AddNumberToObject(j, "drain_seconds", c->drain_seconds);
    cJSON_AddBoolToObject(j, "auth", c->auth);
    /* Without authentication there is nobody to audit or to rate-limit: shown as off. */
    cJSON_AddStringToObject(j, "audit",
                            fm_server_audit_name(c->auth ? c->audit : FM_SERVER_AUDIT_OFF));
    cJSON *tls = cJSON_AddObjectToObject(j, "tls");
    cJSON_AddStringToObject(tls, "cert", c->tls_cert);
    cJSON_AddStringToObject(tls, "key", c->tls_key[0] ? "(set)" : "");
    cJSON_AddStringToObject(tls, "client_ca", c->tls_client_ca);
    double rate = c->auth ? c->rate_limit : 0;
    cJSON_AddNumberToObject(j, "rate_limit", rate);
    cJSON_AddNumberToObject(j, "rate_burst",
                            !c->auth            ? 0
                            : c->rate_burst > 0 ? c->rate_burst
                                                : 2 * rate);
    cJSON_AddNumberToObject(j, "max_connections", c->max_connections);
    cJSON_AddNumberToObject(j, "max_connections_per_ip", c->max_connections_per_ip);
    cJSON_AddNumberToObject(j, "timeout_seconds", c->timeout_seconds);
    cJSON_AddNumberToObject(j, "job_workers", c->job_workers);
    cJSON_AddNumberToObject(j, "job_queue", c->job_queue);
    cJSON_AddNumberToObject(j, "max_dataset_bytes", (double)c->max_dataset_bytes);
    return j;
}
