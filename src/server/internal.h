/*
 * Internal to the server area: the request, the route table, the store of loaded models, the
 * batcher, and the handlers. See server.h for what the server does.
 */
#ifndef FM_SERVER_INTERNAL_H
#define FM_SERVER_INTERNAL_H

#include "core/buf.h"
#include "explain/explain.h"
#include "jobs/jobs.h"
#include "model/model.h"
#include "observe/access_log.h"
#include "observe/metrics.h"
#include "registry/registry.h"
#include "scorecard/scorecard.h"
#include "security/audit.h"
#include "security/keys.h"
#include "security/pii.h"
#include "server/server.h"

#include <cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define FM_PATH_MAX       1024
#define FM_REQUEST_ID_MAX 96
#define FM_ROUTE_PARAMS   4

typedef struct fm_store fm_store_t;
typedef struct fm_ratelimit fm_ratelimit_t;
typedef struct fm_served fm_served_t;
typedef struct fm_batcher fm_batcher_t;
typedef struct fm_request fm_request_t;
typedef struct fm_conns fm_conns_t;
typedef struct fm_sse_hub fm_sse_hub_t;

/* ---- Server ------------------------------------------------------------------------------ */

struct fm_server {
    fm_server_config_t config;
    /* One libmicrohttpd daemon per HTTP thread, all listening on the same port with
     * SO_REUSEPORT: the kernel spreads new connections over them. (A single daemon with a
     * thread pool let one thread accept every connection of a burst, leaving the others idle.) */
    struct MHD_Daemon *daemons[64];
    int ndaemons;
    int port;
    fm_registry_t *registry;
    fm_metrics_t *metrics;
    fm_access_log_t *access_log;
    fm_store_t *store;
    atomic_int ready;           /* 1 once models are loaded and warmed; 0 again when stopping */
    atomic_int draining;        /* stopping: answers carry Connection: close */
    atomic_long in_flight;      /* requests received and not yet completed */
    atomic_ullong next_request; /* sequence for generated request ids */
    char id_prefix[16];         /* random per process, so ids are unique across restarts */
    fm_keystore_t *keystore;    /* NULL when authentication is off */
    fm_keyring_t *keyring;
    int64_t keys_generation; /* of the keystore when the ring was loaded */
    fm_audit_t *audit;       /* NULL when auditing is off */
    fm_pii_t *pii;
    fm_ratelimit_t *ratelimit;         /* NULL when off */
    fm_conns_t *conns;                 /* connection caps and the header deadline */
    char *tls_cert, *tls_key, *tls_ca; /* PEM text when TLS is on */
    char bootstrap_key[4200];          /* the admin.key written on first start, or "" */
    pthread_t watcher;
    int watcher_running;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_wake;
    int stopping;
    /* training as a service (h_datasets.c, h_jobs.c) */
    fm_datasets_t *datasets;
    fm_jobs_t *jobs;
    fm_sse_hub_t *sse; /* the open event streams of GET /api/jobs/{id}/events */
};

/* ---- Requests ---------------------------------------------------------------------------- */

/* FM_BODY_STREAM: a body of up to max_dataset_bytes that is never held in memory. The handler is
 * called once when the headers are accepted, with req->stream_open set, and installs a sink
 * (req->sink, sink_write, sink_release); http.c passes each chunk of the body to sink_write, then
 * calls the handler again once the body is complete; sink_release runs when the request ends. */
typedef enum {
    FM_BODY_NONE = 0,
    FM_BODY_JSON = 1,
    FM_BODY_BINARY = 2,
    FM_BODY_STREAM = 3,
    FM_BODY_JSON_OR_CSV = 4, /* buffered like JSON; application/json or text/csv */
} fm_body_kind_t;

typedef int (*fm_handler_fn)(fm_request_t *req, fm_error_t *err);

/* Role sets for the route table: bit r is role r (security/keys.h). */
#define FM_ROLE_BIT(role) (1u << (unsigned)(role))
#define FM_ROLES_PUBLIC   0u /* no authentication (health probes only) */
#define FM_ROLES_ANY                                                                               \
    (FM_ROLE_BIT(FM_ROLE_ADMIN) | FM_ROLE_BIT(FM_ROLE_MODELER) | FM_ROLE_BIT(FM_ROLE_VALIDATOR) |  \
     FM_ROLE_BIT(FM_ROLE_CONSUMER) | FM_ROLE_BIT(FM_ROLE_AUDITOR))
#define FM_ROLES_PREDICT                                                                           \
    (FM_ROLE_BIT(FM_ROLE_CONSUMER) | FM_ROLE_BIT(FM_ROLE_MODELER) | FM_ROLE_BIT(FM_ROLE_VALIDATOR))
#define FM_ROLES_LIFECYCLE (FM_ROLE_BIT(FM_ROLE_MODELER) | FM_ROLE_BIT(FM_ROLE_ADMIN))
#define FM_ROLES_LABELS    (FM_ROLE_BIT(FM_ROLE_MODELER) | FM_ROLE_BIT(FM_ROLE_VALIDATOR))
#define FM_ROLES_OPERATE                                                                           \
    (FM_ROLE_BIT(FM_ROLE_ADMIN) | FM_ROLE_BIT(FM_ROLE_AUDITOR) | FM_ROLE_BIT(FM_ROLE_MODELER) |    \
     FM_ROLE_BIT(FM_ROLE_VALIDATOR))
/* Datasets and training jobs: modelers (and admins, for datasets) change them; the roles that
 * review models read them. */
#define FM_ROLES_DATA_WRITE (FM_ROLE_BIT(FM_ROLE_MODELER) | FM_ROLE_BIT(FM_ROLE_ADMIN))
#define FM_ROLES_TRAINING_READ                                                                     \
    (FM_ROLE_BIT(FM_ROLE_ADMIN) | FM_ROLE_BIT(FM_ROLE_MODELER) | FM_ROLE_BIT(FM_ROLE_VALIDATOR) |  \
     FM_ROLE_BIT(FM_ROLE_AUDITOR))

/* One entry of the HTTP API. Routes are data: server/routes.c holds the one table. */
typedef struct fm_route {
    const char *method;  /* "GET", "POST", "PUT", "DELETE" */
    const char *pattern; /* "/v2/models/{name}/versions/{version}/infer"; a segment may be
                            "{name}:predict" (a parameter followed by a literal suffix) */
    fm_handler_fn handler;
    const char *action;  /* name in the audit log: "v2.infer", "model.upload", ... */
    unsigned roles;      /* roles allowed (FM_ROLE_BIT set); FM_ROLES_PUBLIC: no key needed */
    fm_body_kind_t body; /* what the body must be */
} fm_route_t;

typedef enum {
    FM_REQ_RECEIVING = 0, /* headers and body arriving */
    FM_REQ_WAITING = 1,   /* suspended: the batcher is scoring its rows */
    FM_REQ_READY = 2,     /* the batcher resumed it */
    FM_REQ_AUDITING = 3,  /* suspended: the reply waits for its audit entry to be committed */
} fm_req_state_t;

struct fm_request {
    fm_server_t *server;
    struct MHD_Connection *connection;
    const fm_route_t *route;
    char method[8];
    char path[FM_PATH_MAX];
    char segments[FM_PATH_MAX]; /* storage for the parameters below */
    const char *params[FM_ROUTE_PARAMS];
    size_t nparams;
    char request_id[FM_REQUEST_ID_MAX];
    fm_buf_t body;
    uint64_t content_length; /* when has_length */
    int has_length;
    double start;
    fm_req_state_t state;
    /* the caller, once authenticated */
    fm_principal_t who;
    int authenticated;
    /* the reply */
    int status;
    fm_buf_t reply;
    const char *content_type;
    int retry_after; /* seconds; 0: no Retry-After header */
    int replied;     /* a response was queued */
    int refused;     /* an error reply is prepared; the body is being discarded */
    /* for the access log and metrics */
    char model[FM_REGISTRY_NAME_MAX + 1];
    int64_t version;
    /* dynamic batching: the job this request waits on, and what finishes the reply after */
    void *job;
    fm_handler_fn resume;
    void *resume_state;
    int audit_rc;             /* the audit commit's result, for FM_REQ_AUDITING */
    char *audit_owned;        /* audit_output when a handler built it (freed with the request) */
    const char *audit_output; /* what the audit log records as the output instead of the reply
                                 (a handler whose reply holds a secret sets it); static text */
    char audit_detail[160];   /* the audit entry's detail ("dataset=credit"), "" for none */
    /* FM_BODY_STREAM routes (see fm_body_kind_t) */
    int stream_open;
    void *sink;
    int (*sink_write)(void *sink, const void *data, size_t n, fm_error_t *err);
    void (*sink_release)(void *sink);
    uint64_t streamed; /* body bytes passed to the sink */
    /* A reply produced as it is sent (server-sent events): with status 200 the response reads
     * from reply_reader; reply_free releases reply_stream, by libmicrohttpd once the response
     * is created, else when the request ends. */
    MHD_ContentReaderCallback reply_reader;
    MHD_ContentReaderFreeCallback reply_free;
    void *reply_stream;
};

/* The route matching method and path: *out and params filled; FM_OK, FM_ENOTFOUND (no path
 * matches: 404) or FM_EUNSUPPORTED (the path exists for other methods: 405). */
int fm_routes_match(fm_request_t *req, fm_error_t *err);
/* The allowed methods for req's path, comma-separated, for the Allow header of a 405. */
void fm_routes_allowed(const char *path, char *out, size_t size);
/* The whole table (for docs and tests). */
const fm_route_t *fm_routes_table(size_t *count);

/* The HTTP status for an error code (one mapping for the whole server). */
int fm_http_status(int code);

/* Sets a JSON reply {"error": message} with status (and Retry-After for 503). */
void fm_reply_error(fm_request_t *req, int status, const char *message);
/* Takes ownership of nothing: req->reply already holds the body; sets status and type. */
void fm_reply_json(fm_request_t *req, int status);

/* ---- Loaded models ----------------------------------------------------------------------- */

/* Per-thread scratch for scoring: encoded rows and the model workspace. */
typedef struct fm_scratch {
    struct fm_scratch *next;
    int capacity;           /* rows */
    double *x;              /* capacity * nfeatures */
    double *out;            /* capacity * output width */
    fm_raw_value_t *values; /* one row of raw inputs (prep column order) */
    fm_model_workspace_t *ws;
    /* Explanations (h_explain.c), made by the first request that explains with this scratch:
     * the explainer's workspace and room for two rows of attributions (2 * prep->ncolumns). */
    fm_explain_workspace_t *explain_ws;
    double *phi;
} fm_scratch_t;

/* One loaded model version. Reference-counted: the store holds one reference while it is
 * loaded; every request holds one while it uses it, so a version swapped out under load is freed
 * only after its last request finishes. */
struct fm_served {
    char name[FM_REGISTRY_NAME_MAX + 1];
    int64_t version;
    fm_model_t *model;
    atomic_int refs;
    fm_model_stats_t *stats;
    fm_strdict_t inputs; /* input (raw column) name -> prep column index */
    pthread_mutex_t pool_lock;
    fm_scratch_t *pool;
    fm_batcher_t *batcher; /* NULL when batching is off */
    double load_seconds;
    char *metadata; /* the V2 model metadata JSON text of this version */
    /* Per-decision explanations: built at load; NULL when the model's stored explanation
     * settings cannot be read (it still serves predictions), explain_error then says why. */
    fm_explainer_t *explainer;
    char explain_error[FM_ERROR_MESSAGE_MAX];
    /* Loan decisions: the scorecard a `finmaas scorecard` model holds, parsed at load; NULL for
     * other models (or a damaged card), scorecard_error then says why. */
    fm_scorecard_t *scorecard;
    char scorecard_error[FM_ERROR_MESSAGE_MAX];
};

int fm_store_new(fm_server_t *server, fm_store_t **out, fm_error_t *err);
void fm_store_free(fm_store_t *store);

/* Loads every version of every model in the registry (start-up). */
int fm_store_load_all(fm_store_t *store, fm_error_t *err);
/* Loads (or reloads) every version of model name from the registry; marks it wanted. */
int fm_store_load(fm_store_t *store, const char *name, fm_error_t *err);
/* Unloads every version of name and marks it unwanted (the watcher will not reload it). */
int fm_store_unload(fm_store_t *store, const char *name, fm_error_t *err);
/* Brings the store in line with the registry: new versions of wanted models, labels. */
int fm_store_sync(fm_store_t *store, fm_error_t *err);
/* Updates the label cache after a label change made through the API. */
void fm_store_set_label(fm_store_t *store, const char *name, const char *label, int64_t version);

/*
 * A reference to a loaded version: version > 0 that version; version 0 the one labelled
 * "production", else the newest loaded. label (may be NULL) selects by label instead.
 * FM_ENOTFOUND (404) for an unknown model, version or label; FM_ESTATE (503) for a model that
 * exists but is not loaded. Release with fm_served_release.
 */
int fm_store_acquire(fm_store_t *store, const char *name, int64_t version, const char *label,
                     fm_served_t **out, fm_error_t *err);
void fm_served_release(fm_served_t *served);

/* Index entry for the repository API. */
typedef struct fm_index_entry {
    char name[FM_REGISTRY_NAME_MAX + 1];
    int64_t version;
    int loaded;
    char labels[256];
} fm_index_entry_t;
/* Every registered version with its state (new array, caller frees). */
int fm_store_index(fm_store_t *store, fm_index_entry_t **out, size_t *count, fm_error_t *err);
/* The loaded versions of name (new array of version numbers, caller frees), and labels. */
int fm_store_versions(fm_store_t *store, const char *name, int64_t **versions, size_t *count,
                      fm_error_t *err);

/* Scratch for n rows (from the pool when it fits, else newly allocated). */
fm_scratch_t *fm_scratch_get(fm_served_t *served, int n);
void fm_scratch_put(fm_served_t *served, fm_scratch_t *scratch);

/* ---- Scoring ----------------------------------------------------------------------------- */

/* Scores n encoded rows of x into out (width per row), inline or through the batcher; counts
 * the inferences and compute time. FM_EBUSY when the batch queue is full. */
int fm_score(fm_request_t *req, fm_served_t *served, fm_scratch_t *s, int n, fm_error_t *err);

/* ---- Dynamic batching -------------------------------------------------------------------- */

int fm_batcher_new(fm_served_t *served, const fm_server_config_t *config, fm_batcher_t **out,
                   fm_error_t *err);
void fm_batcher_free(fm_batcher_t *batcher);
/*
 * Queues n rows of x: suspends the request's connection and sets its state to FM_REQ_WAITING
 * (both before the job becomes visible to the batcher thread, so the resume can never come
 * first); the batcher writes out[n * width] and resumes the connection, and the access handler
 * then runs req->resume. Returns FM_OK, or FM_EBUSY (nothing suspended) when the queue is full.
 */
int fm_batcher_submit(fm_batcher_t *batcher, fm_request_t *req, const double *x, int n, double *out,
                      fm_error_t *err);

/* ---- Connections (connections.c) ----------------------------------------------------------- */

/*
 * Shared connection limits of all daemons: at most cap open connections, at most per_ip_cap from
 * one client address (0: no such cap), and a request's headers due within timeout seconds of the
 * connection's start or of its previous request's end (0: no deadline; a sweeper thread runs
 * otherwise). fm_conns_accept is the daemons' accept policy callback and fm_conns_notify their
 * connection notification callback, both with the fm_conns_t as closure.
 */
int fm_conns_new(size_t cap, size_t per_ip_cap, double timeout, fm_conns_t **out, fm_error_t *err);
/* Stops the sweeper and frees; call after every daemon has stopped. NULL-safe. */
void fm_conns_free(fm_conns_t *conns);
enum MHD_Result fm_conns_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void fm_conns_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);
/* A request's headers have arrived / its response is done (the deadline restarts). */
/* The client's address as text (formatted once per connection), or NULL when unknown. */
const char *fm_conns_remote(struct MHD_Connection *connection);
void fm_conns_request_started(struct MHD_Connection *connection);
void fm_conns_request_done(struct MHD_Connection *connection);

/* Starts libmicrohttpd on addr for server (http.c). */
struct MHD_Daemon *fm_http_start(fm_server_t *server, const struct sockaddr *addr, int ipv6,
                                 fm_error_t *err);

/* ---- Work off the HTTP threads (deferred.c) ------------------------------------------------ */

/* A handler's state starts with this; work runs on the jobs' background thread. */
typedef struct fm_deferred {
    fm_request_t *req;
    int (*work)(struct fm_deferred *d, fm_error_t *err); /* set by the handler */
    int rc;                                              /* work's result */
    fm_error_t err;
} fm_deferred_t;

/*
 * Runs d->work off the HTTP thread with req's connection suspended, then finish(req) with
 * req->resume_state = d (inline, at once, while the server is stopping). finish must free the
 * handler's state. Returns FM_OK once handed over (or finish's result when run inline).
 */
int fm_defer(fm_request_t *req, fm_deferred_t *d, fm_handler_fn finish, fm_error_t *err);
/* In finish: FM_OK when the work succeeded, else its code with its message in err (and
 * Retry-After for FM_EBUSY: the background queue was full). */
int fm_deferred_outcome(fm_request_t *req, const fm_deferred_t *d, fm_error_t *err);
/* Sets a 200 JSON reply holding json. */
int fm_reply_cjson(fm_request_t *req, const cJSON *json, fm_error_t *err);

/* ---- Handlers ---------------------------------------------------------------------------- */

int fm_h_live(fm_request_t *req, fm_error_t *err);
int fm_h_ready(fm_request_t *req, fm_error_t *err);
int fm_h_server_metadata(fm_request_t *req, fm_error_t *err);
int fm_h_model_metadata(fm_request_t *req, fm_error_t *err);
int fm_h_model_ready(fm_request_t *req, fm_error_t *err);
int fm_h_v2_infer(fm_request_t *req, fm_error_t *err);
int fm_h_v2_explain(fm_request_t *req, fm_error_t *err);
int fm_h_tf_predict(fm_request_t *req, fm_error_t *err);
int fm_h_tf_status(fm_request_t *req, fm_error_t *err);
int fm_h_repository_index(fm_request_t *req, fm_error_t *err);
int fm_h_repository_load(fm_request_t *req, fm_error_t *err);
int fm_h_repository_unload(fm_request_t *req, fm_error_t *err);
int fm_h_repository_upload(fm_request_t *req, fm_error_t *err);
int fm_h_label_put(fm_request_t *req, fm_error_t *err);
int fm_h_label_delete(fm_request_t *req, fm_error_t *err);
int fm_h_models_list(fm_request_t *req, fm_error_t *err);
int fm_h_metrics(fm_request_t *req, fm_error_t *err);
int fm_h_keys_list(fm_request_t *req, fm_error_t *err);
int fm_h_keys_create(fm_request_t *req, fm_error_t *err);
int fm_h_keys_revoke(fm_request_t *req, fm_error_t *err);
int fm_h_audit_query(fm_request_t *req, fm_error_t *err);
int fm_h_datasets_upload(fm_request_t *req, fm_error_t *err);
int fm_h_datasets_list(fm_request_t *req, fm_error_t *err);
int fm_h_datasets_get(fm_request_t *req, fm_error_t *err);
int fm_h_datasets_delete(fm_request_t *req, fm_error_t *err);
int fm_h_jobs_create(fm_request_t *req, fm_error_t *err);
int fm_h_jobs_list(fm_request_t *req, fm_error_t *err);
int fm_h_jobs_get(fm_request_t *req, fm_error_t *err);
int fm_h_jobs_events(fm_request_t *req, fm_error_t *err);
int fm_h_jobs_cancel(fm_request_t *req, fm_error_t *err);
int fm_h_model_fairness(fm_request_t *req, fm_error_t *err);
int fm_h_model_report(fm_request_t *req, fm_error_t *err);
int fm_h_loan_decide(fm_request_t *req, fm_error_t *err);
int fm_h_app_invest_analyze(fm_request_t *req, fm_error_t *err);
int fm_h_app_risk_portfolio(fm_request_t *req, fm_error_t *err);

/* ---- Server-sent events (h_jobs.c) --------------------------------------------------------- */

/*
 * The open event streams. A stream's reader never blocks: when it has nothing to send it
 * suspends its connection, and fm_sse_hub_notify (a job changed), a heartbeat every 15 s (which
 * also finds clients that went away) or fm_sse_hub_close resumes it. Thread-safe.
 */
int fm_sse_hub_new(fm_sse_hub_t **out, fm_error_t *err);
/* Resumes the streams that follow job id. */
void fm_sse_hub_notify(fm_sse_hub_t *hub, const char *id);
/* Ends every stream (each sends what it has, then ends) and refuses new ones; stops the
 * heartbeat. Call before the daemons stop. NULL-safe. */
void fm_sse_hub_close(fm_sse_hub_t *hub);
/* Frees the hub once no stream is left (after the daemons stopped). NULL-safe. */
void fm_sse_hub_free(fm_sse_hub_t *hub);

/* ---- Security ---------------------------------------------------------------------------- */

/*
 * Authenticates and authorises a request whose route is known: the Bearer token, the route's
 * roles, the key's scope of models, the key's rate limit. Returns 0, or the HTTP status to refuse
 * with (401, 403, 429) with the message in err (never the token).
 */
int fm_auth_check(fm_request_t *req, struct MHD_Connection *c, fm_error_t *err);
/* 1 when the principal of req may see model name (no authentication, or in its scope). */
int fm_auth_sees(const fm_request_t *req, const char *model);

/* Per-key token buckets. rate requests per second, burst tokens at most. */
int fm_ratelimit_new(double rate, double burst, fm_ratelimit_t **out, fm_error_t *err);
void fm_ratelimit_free(fm_ratelimit_t *rl);
/* 0 when the key may go ahead, else the seconds to wait (for Retry-After, at least 1). */
int fm_ratelimit_take(fm_ratelimit_t *rl, const char *key_id);

/* Reloads the key ring when the key store changed (cheap when it did not). */
void fm_auth_refresh(fm_server_t *server);

/* Parses a version path parameter ("3") into *version; FM_ENOTFOUND for anything else. */
int fm_parse_version(const char *text, int64_t *version, fm_error_t *err);

#endif
