/*
 * The model server: `finmaas serve`. It hosts every model of a registry home (all versions) and
 * answers prediction requests over HTTP/JSON in the Open Inference Protocol (KServe V2) and the
 * TensorFlow Serving REST protocol, with a repository API to upload, load, unload and label
 * models, Prometheus metrics, a JSON-lines access log and optional dynamic batching.
 *
 * HTTP runs on libmicrohttpd (epoll, a thread pool); JSON request bodies on the inference paths
 * are tokenised with jsmn (no allocation per value), other bodies with cJSON.
 *
 * Thread-safety: fm_server_start returns a running server; fm_server_stop may be called from any
 * one thread once.
 */
#ifndef FM_SERVER_H
#define FM_SERVER_H

#include "core/error.h"

#include <cJSON.h>
#include <stddef.h>

#define FM_SERVER_HOST_MAX 256

typedef struct fm_server_config {
    char home[4096];               /* registry home (default ./finmaas-home) */
    char host[FM_SERVER_HOST_MAX]; /* listen address (default 127.0.0.1) */
    int port;                      /* 0: any free port (default 8080) */
    int threads;                   /* HTTP worker threads (default: number of CPUs) */
    size_t max_body_bytes;         /* request body limit (default 8 MiB) */
    size_t max_upload_bytes;       /* model upload limit (default 256 MiB) */
    char access_log[4096];         /* "-" stderr, "" off, else a file (default <home>/access.log) */
    int batch_max_size;            /* dynamic batching: rows per batch; 0 = off (default) */
    int batch_max_delay_us;        /* dynamic batching: longest wait for a batch to fill */
    int queue_limit;               /* dynamic batching: pending requests per model before 503 */
    int watch_interval_ms;         /* registry poll for new versions and labels (default 2000) */
    int drain_seconds;             /* on stop: longest wait for requests in flight (default 30) */
    /* security (on by default) */
    int auth;                   /* 1: API keys required (default); 0 only on loopback */
    int audit;                  /* FM_SERVER_AUDIT_DURABLE (default), _ASYNC or _OFF */
    char tls_cert[4096];        /* PEM certificate chain; "" = plain HTTP */
    char tls_key[4096];         /* PEM private key */
    char tls_client_ca[4096];   /* PEM CA: client certificates required (mutual TLS) */
    double rate_limit;          /* requests per second per key (default 100000; 0 = none) */
    double rate_burst;          /* bucket size (default 2 x rate_limit) */
    int max_connections;        /* open connections at most (default 1024) */
    int max_connections_per_ip; /* per client address (default 0: only the total applies) */
    int timeout_seconds;        /* idle or slow connections are closed (default 30) */
    /* training as a service */
    int job_workers;          /* training jobs run at once (default 1) */
    int job_queue;            /* jobs waiting at most before 503 (default 16) */
    size_t max_dataset_bytes; /* dataset upload limit (default 1 GiB) */
} fm_server_config_t;

enum { FM_SERVER_AUDIT_DURABLE = 0, FM_SERVER_AUDIT_ASYNC = 1, FM_SERVER_AUDIT_OFF = 2 };

/* The defaults listed above. */
void fm_server_config_defaults(fm_server_config_t *config);
/* "durable", "async", "off" and back. */
const char *fm_server_audit_name(int mode);
int fm_server_audit_parse(const char *text, int *mode);

/*
 * Applies a JSON config file: {"home", "listen": "host:port", "threads", "max_body_bytes",
 * "max_upload_bytes", "access_log", "batch": {"max_size", "max_delay_us", "queue"},
 * "watch_interval_ms", "drain_seconds", "auth", "audit", "tls_cert", "tls_key", "tls_client_ca",
 * "rate_limit", "rate_burst", "max_connections", "max_connections_per_ip", "timeout_seconds",
 * "job_workers", "job_queue", "max_dataset_bytes"}.
 * Unknown keys are errors (a typo must not pass silently).
 */
int fm_server_config_load(fm_server_config_t *config, const char *path, fm_error_t *err);

/* Applies FINMAAS_HOME, FINMAAS_LISTEN, FINMAAS_THREADS, FINMAAS_MAX_BODY_BYTES,
 * FINMAAS_ACCESS_LOG, FINMAAS_BATCH_MAX_SIZE, FINMAAS_BATCH_MAX_DELAY_US, FINMAAS_AUTH (on|off),
 * FINMAAS_AUDIT (durable|async|off), FINMAAS_JOB_WORKERS, FINMAAS_JOB_QUEUE,
 * FINMAAS_MAX_DATASET_BYTES when set. */
int fm_server_config_from_env(fm_server_config_t *config, fm_error_t *err);

/* Parses "host:port", "[v6]:port" or ":port" into config. */
int fm_server_config_listen(fm_server_config_t *config, const char *text, fm_error_t *err);

/* The effective configuration as JSON (caller owns), as printed at start. */
cJSON *fm_server_config_describe(const fm_server_config_t *config);

typedef struct fm_server fm_server_t;

/*
 * Opens the registry, loads and warms every model version, starts listening, and returns once
 * the server is ready. *out is owned by the caller (fm_server_stop).
 */
int fm_server_start(const fm_server_config_t *config, fm_server_t **out, fm_error_t *err);

/* The effective configuration of a running server (access log path resolved). Borrowed. */
const fm_server_config_t *fm_server_config(const fm_server_t *server);

/* The path of the admin key file created because the home had no API key yet, or NULL. */
const char *fm_server_bootstrap_key(const fm_server_t *server);

/* The port actually bound (useful with port 0). */
int fm_server_port(const fm_server_t *server);

/*
 * Stops accepting connections, lets requests in flight finish (up to drain_seconds), stops the
 * threads and frees everything. NULL-safe.
 */
void fm_server_stop(fm_server_t *server);

#endif
