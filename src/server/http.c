/*
 * HTTP plumbing over libmicrohttpd: the access handler that turns a connection's calls into one
 * fm_request_t (headers, then body chunks, then the handler), the route lookup, body limits and
 * content-type checks done once before any handler runs, the mapping of error codes to HTTP
 * statuses, request ids, and the completion callback that writes the access log and counts the
 * response.
 *
 * libmicrohttpd calls the access handler several times per request: first with the headers
 * (*con_cls NULL), then once per chunk of body, then once more with no data. A response may be
 * queued on any call; queuing one before the body is read makes the library close the connection
 * after it, which is what we want for a request refused on its headers (413, 415, 405).
 *
 * Two kinds of request leave the buffered path: a streamed body (FM_BODY_STREAM, dataset uploads)
 * goes to the handler's sink chunk by chunk instead of into req->body, and a streamed reply
 * (server-sent events) is produced by a content reader instead of req->reply.
 */
#include "server/internal.h"
#include "core/clock.h"
#include "core/digest.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int fm_http_status(int code) {
    switch (code) {
    case FM_EPARSE:
        return 400;
    case FM_EINVAL:
        return 400;
    case FM_ENOTFOUND:
        return 404;
    case FM_EUNSUPPORTED:
        return 415;
    case FM_EDATA:
        return 422;
    case FM_EFORMAT:
        return 422;
    case FM_ERANGE:
        return 422;
    case FM_ELIMIT:
        return 413;
    case FM_EEXIST:
        return 409;
    case FM_EDENIED:
        return 403;
    case FM_EBUSY:
        return 503;
    case FM_ESTATE:
        return 503;
    case FM_ECANCELED:
        return 503;
    default:
        return 500;
    }
}

void fm_reply_error(fm_request_t *req, int status, const char *message) {
    char shorter[FM_ERROR_MESSAGE_MAX + 64];
    /* Error replies do not tell clients where the server keeps its files. */
    message = fm_error_without_dir(message, fm_registry_home(req->server->registry), shorter,
                                   sizeof shorter);
    /* Messages may quote request values: card numbers and e-mail addresses never go out. */
    fm_buf_t scrubbed = FM_BUF_INIT;
    if (fm_pii_scrub(req->server->pii, message, strlen(message), &scrubbed) == FM_OK &&
        scrubbed.data)
        message = scrubbed.data;
    fm_buf_reset(&req->reply);
    fm_buf_puts(&req->reply, "{\"error\":");
    fm_buf_json_string(&req->reply, message, strlen(message));
    fm_buf_putc(&req->reply, '}');
    fm_buf_free(&scrubbed);
    req->status = status;
    req->content_type = "application/json";
    if (status == 503 && req->retry_after <= 0) req->retry_after = 1;
}

void fm_reply_json(fm_request_t *req, int status) {
    req->status = status;
    req->content_type = "application/json";
}

/* Takes the client's X-Request-Id when it is sane (printable, not too long), else makes one. */
static void assign_request_id(fm_request_t *req, struct MHD_Connection *c) {
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        int ok = n > 0 && n < sizeof req->request_id;
        for (size_t i = 0; ok && i < n; i++)
            ok = given[i] > 0x20 && given[i] < 0x7f;
        if (ok) {
            memcpy(req->request_id, given, n + 1);
            return;
        }
    }
    unsigned long long seq = atomic_fetch_add(&req->server->next_request, 1) + 1;
    /* "<process prefix>-<sequence in hex>", formatted by hand: this runs for every request. */
    size_t n = strlen(req->server->id_prefix);
    memcpy(req->request_id, req->server->id_prefix, n);
    req->request_id[n++] = '-';
    char hex[16];
    int k = 0;
    do {
        hex[k++] = "0123456789abcdef"[seq & 15];
        seq >>= 4;
    } while (seq);
    while (k)
        req->request_id[n++] = hex[--k];
    req->request_id[n] = '\0';
}

static fm_request_t *request_new(fm_server_t *server, struct MHD_Connection *c, const char *url,
                                 const char *method) {
    /* malloc, not calloc: the path buffers need no zeroing; every other field is set here. */
    fm_request_t *req = malloc(sizeof *req);
    if (!req) return NULL;
    memset(req, 0, offsetof(fm_request_t, path));
    memset(&req->params, 0, sizeof *req - offsetof(fm_request_t, params));
    req->server = server;
    req->connection = c;
    req->start = fm_clock_seconds();
    snprintf(req->method, sizeof req->method, "%s", method);
    size_t n = strlen(url);
    if (n >= sizeof req->path) n = sizeof req->path - 1;
    memcpy(req->path, url, n);
    req->path[n] = '\0';
    assign_request_id(req, c);
    /* A client's id may be anything, even an e-mail address: it goes into logs and the audit. */
    fm_pii_scrub_in_place(server->pii, req->request_id, sizeof req->request_id);
    atomic_fetch_add(&server->in_flight, 1);
    return req;
}

static void request_free(fm_request_t *req) {
    if (req->sink_release && req->sink) req->sink_release(req->sink);
    if (req->reply_free && req->reply_stream) req->reply_free(req->reply_stream);
    free(req->audit_owned);
    fm_buf_free(&req->body);
    fm_buf_free(&req->reply);
    free(req);
}

/* The response of a streamed reply; the stream belongs to it from here on. */
static struct MHD_Response *stream_response(fm_request_t *req) {
    void *stream = req->reply_stream;
    req->reply_stream = NULL;
    struct MHD_Response *response = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16 * 1024, req->reply_reader, stream, req->reply_free);
    if (!response) {
        req->reply_free(stream);
        return NULL;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return response;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, fm_request_t *req) {
    if (!req->reply.data) fm_buf_puts(&req->reply, "");
    size_t len = req->reply.len;
    struct MHD_Response *response;
    if (req->reply_stream && req->status == 200) {
        response = stream_response(req);
        if (!response) return MHD_NO;
    } else {
        char *data = fm_buf_take(&req->reply);
        response = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
        if (!response) {
            free(data);
            return MHD_NO;
        }
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                            req->content_type ? req->content_type : "application/json");
    MHD_add_response_header(response, "X-Request-Id", req->request_id);
    if (req->retry_after > 0) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%d", req->retry_after);
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
    if (req->status == 401)
        MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (req->status == 405) {
        char allow[64];
        fm_routes_allowed(req->path, allow, sizeof allow);
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (atomic_load(&req->server->draining))
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    req->replied = 1;
    req->content_length = len; /* reused for the access log: bytes sent */
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)req->status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result refuse(struct MHD_Connection *c, fm_request_t *req, int status,
                              const char *message) {
    fm_reply_error(req, status, message);
    return send_reply(c, req);
}

/* Checks made on the headers, before any body is read. Returns 0 or an HTTP status to refuse
 * with (message in msg). */
static int check_headers(fm_request_t *req, struct MHD_Connection *c, char *msg, size_t size) {
    const fm_route_t *route = req->route;
    const char *length =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *chunked =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (length) {
        char *end;
        unsigned long long v = strtoull(length, &end, 10);
        if (end == length || *end) {
            snprintf(msg, size, "invalid Content-Length");
            return 400;
        }
        req->content_length = v;
        req->has_length = 1;
    }
    size_t limit = route->body == FM_BODY_BINARY   ? req->server->config.max_upload_bytes
                   : route->body == FM_BODY_STREAM ? req->server->config.max_dataset_bytes
                                                   : req->server->config.max_body_bytes;
    if (req->has_length && req->content_length > limit) {
        snprintf(msg, size, "request body of %llu bytes exceeds the limit of %zu bytes",
                 (unsigned long long)req->content_length, limit);
        return 413;
    }
    if (route->body == FM_BODY_NONE) return 0;
    if (!req->has_length && !(chunked && strcasestr(chunked, "chunked"))) {
        snprintf(msg, size, "a request body is required (Content-Length missing)");
        return 411;
    }
    const char *type =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type && route->body == FM_BODY_JSON && strncasecmp(type, "application/json", 16) != 0) {
        snprintf(msg, size, "Content-Type must be application/json, got '%.64s'", type);
        return 415;
    }
    if (type && route->body == FM_BODY_JSON_OR_CSV &&
        strncasecmp(type, "application/json", 16) != 0 && strncasecmp(type, "text/csv", 8) != 0 &&
        strncasecmp(type, "application/csv", 15) != 0) {
        snprintf(msg, size, "Content-Type must be application/json or text/csv, got '%.64s'", type);
        return 415;
    }
    if (type && route->body == FM_BODY_BINARY &&
        strncasecmp(type, "application/octet-stream", 24) != 0) {
        snprintf(msg, size, "Content-Type must be application/octet-stream, got '%.64s'", type);
        return 415;
    }
    if (type && route->body == FM_BODY_STREAM && strncasecmp(type, "text/csv", 8) != 0 &&
        strncasecmp(type, "application/csv", 15) != 0 && strncasecmp(type, "text/plain", 10) != 0 &&
        strncasecmp(type, "application/octet-stream", 24) != 0) {
        snprintf(msg, size, "Content-Type must be text/csv, got '%.64s'", type);
        return 415;
    }
    return 0;
}

/* Gives up a streamed body: its sink is released at once (an upload leaves nothing behind). */
static void release_sink(fm_request_t *req) {
    if (req->sink_release && req->sink) req->sink_release(req->sink);
    req->sink = NULL;
}

/* One chunk of a streamed body: to the sink, within max_dataset_bytes. */
static void stream_chunk(fm_request_t *req, const char *data, size_t n) {
    size_t limit = req->server->config.max_dataset_bytes;
    if (req->refused) return;
    if (req->streamed + n > limit) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body exceeds the limit of %zu bytes", limit);
        fm_reply_error(req, 413, msg);
        req->refused = 1;
        release_sink(req);
        return;
    }
    fm_error_t err;
    fm_error_clear(&err);
    int rc = req->sink_write(req->sink, data, n, &err);
    if (rc) {
        fm_reply_error(req, fm_http_status(rc), fm_error_message(&err));
        req->refused = 1;
        release_sink(req);
        return;
    }
    req->streamed += n;
}

/* Runs fn (the route's handler, or the continuation of a request resumed after batching) and
 * turns a failure into the JSON error reply. */
static void run_handler(fm_request_t *req, fm_handler_fn fn) {
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fn(req, &err);
    if (rc == FM_OK) return;
    if (req->state == FM_REQ_WAITING) return; /* suspended for the batcher */
    if (err.code == FM_OK) fm_error_set(&err, rc, "%s", fm_strerror(rc));
    fm_reply_error(req, fm_http_status(rc), fm_error_message(&err));
}

/*
 * Mutual TLS: with a client CA configured, every request must come over a connection whose client
 * presented a certificate that verifies against it. libmicrohttpd asks for the certificate during
 * the handshake; this is where its absence or failure is refused.
 */
static int client_certificate_ok(fm_request_t *req, struct MHD_Connection *c) {
    if (!req->server->tls_ca) return 1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) return 0;
    gnutls_session_t session = (gnutls_session_t)ci->tls_session;
    unsigned count = 0;
    if (!gnutls_certificate_get_peers(session, &count) || count == 0) return 0;
    unsigned status = 0;
    return gnutls_certificate_verify_peers2(session, &status) == GNUTLS_E_SUCCESS && status == 0;
}

static void audit_committed(void *ctx, int rc) {
    fm_request_t *req = ctx;
    req->audit_rc = rc;
    MHD_resume_connection(req->connection);
}

/*
 * Records an authenticated request in the audit log before answering it: the connection is
 * suspended until the entry is committed (the writer groups concurrent entries into one commit),
 * so no answer leaves without its trace. Unauthenticated requests are in the access log only.
 */
static enum MHD_Result audit_then_reply(struct MHD_Connection *c, fm_request_t *req) {
    fm_server_t *s = req->server;
    if (!s->audit || !req->authenticated) return send_reply(c, req);
    char digest[FM_DIGEST_HEX] = "";
    if (req->body.len) fm_digest_hex(req->body.data, req->body.len, digest);
    /* The output: the JSON reply (scores, labels, errors; never the inputs), or its digest
     * when large. */
    char output[160];
    const char *out_text = req->audit_output ? req->audit_output : req->reply.data;
    if (!req->audit_output && (!out_text || req->reply.len > 4096)) {
        char reply_digest[FM_DIGEST_HEX] = "";
        if (req->reply.data) fm_digest_hex(req->reply.data, req->reply.len, reply_digest);
        snprintf(output, sizeof output, "{\"bytes\":%zu,\"blake2b\":\"%s\"}", req->reply.len,
                 reply_digest);
        out_text = output;
    }
    /* The model name and the reply come from the request (an echoed id, a name quoted back):
     * masked here like everything else that is written down. */
    char model[sizeof req->model], detail[sizeof req->audit_detail];
    memcpy(model, req->model, sizeof model);
    fm_pii_scrub_in_place(s->pii, model, sizeof model);
    memcpy(detail, req->audit_detail, sizeof detail);
    fm_pii_scrub_in_place(s->pii, detail, sizeof detail);
    fm_buf_t scrubbed = FM_BUF_INIT;
    if (fm_pii_suspect(out_text, strlen(out_text)) &&
        fm_pii_scrub(s->pii, out_text, strlen(out_text), &scrubbed) == FM_OK && scrubbed.data)
        out_text = scrubbed.data;
    fm_audit_entry_t entry = {
        .key_id = req->who.id,
        .role = fm_role_name(req->who.role),
        .action = req->route->action,
        .model = model[0] ? model : NULL,
        .version = req->version,
        .request_id = req->request_id,
        .status = req->status,
        .input_digest = digest[0] ? digest : NULL,
        .output = out_text,
        .detail = detail[0] ? detail : NULL,
    };
    if (s->config.audit == FM_SERVER_AUDIT_ASYNC) {
        /* The less durable mode: queued (copied), committed within 100 ms, answered now. */
        int rc = fm_audit_append(s->audit, &entry, NULL, NULL);
        fm_buf_free(&scrubbed);
        if (rc != FM_OK)
            fm_reply_error(req, 500, "the audit log cannot record this request; not answered");
        return send_reply(c, req);
    }
    if (atomic_load(&s->draining)) {
        /* Stopping: no new suspensions (the daemon must not stop with one pending); wait for
         * the commit on this thread instead. */
        fm_error_t err;
        int rc = fm_audit_append_sync(s->audit, &entry, &err);
        fm_buf_free(&scrubbed);
        if (rc != FM_OK)
            fm_reply_error(req, 500, "the audit log cannot record this request; not answered");
        return send_reply(c, req);
    }
    req->state = FM_REQ_AUDITING;
    MHD_suspend_connection(c);
    int rc = fm_audit_append(s->audit, &entry, audit_committed, req);
    fm_buf_free(&scrubbed); /* the entry's strings are copied */
    if (rc != FM_OK) {
        MHD_resume_connection(c);
        req->audit_rc = FM_EIO;
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    fm_server_t *server = cls;
    fm_request_t *req = *con_cls;
    if (!req) {
        /* The headers. Errors found here are answered on the last call, after the body (if any)
         * has been read and discarded, so the connection stays usable; only a body declared
         * larger than the limit is refused at once (the connection then closes, rather than
         * reading megabytes for nothing). */
        req = request_new(server, c, url, method);
        if (!req) return MHD_NO;
        *con_cls = req;
        fm_conns_request_started(c);
        if (!client_certificate_ok(req, c))
            return refuse(c, req, 403,
                          "a client certificate signed by the configured CA is "
                          "required");
        fm_error_t err;
        int rc = fm_routes_match(req, &err);
        if (rc) {
            fm_reply_error(req, rc == FM_EUNSUPPORTED ? 405 : 404, err.msg);
            req->refused = 1;
            return MHD_YES;
        }
        int status = fm_auth_check(req, c, &err);
        if (status) {
            /* Unauthenticated callers do not get to send a body: answer now (closing) if one
             * follows. Authenticated ones refused (403, 429) are answered after their body, so
             * the refusal goes into the audit log like any other action. */
            if (status == 401 &&
                (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) ||
                 MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                             MHD_HTTP_HEADER_TRANSFER_ENCODING)))
                return refuse(c, req, status, err.msg);
            fm_reply_error(req, status, err.msg);
            req->refused = 1;
            return MHD_YES;
        }
        char msg[160];
        status = check_headers(req, c, msg, sizeof msg);
        if (status == 413 && req->has_length) return refuse(c, req, status, msg);
        if (status) {
            fm_reply_error(req, status, msg);
            req->refused = 1;
        } else if (req->route->body == FM_BODY_STREAM) {
            /* The handler opens its sink (or refuses: the body is then discarded). */
            req->stream_open = 1;
            fm_error_clear(&err);
            int hrc = req->route->handler(req, &err);
            req->stream_open = 0;
            if (hrc == FM_OK && !req->sink)
                hrc = fm_error_set(&err, FM_ESTATE, "the upload could not be started");
            if (hrc) {
                fm_reply_error(req, fm_http_status(hrc), fm_error_message(&err));
                req->refused = 1;
                release_sink(req);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size && req->route && req->route->body == FM_BODY_STREAM) {
        stream_chunk(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t limit = req->route && req->route->body == FM_BODY_BINARY
                           ? server->config.max_upload_bytes
                           : server->config.max_body_bytes;
        if (!req->refused && req->body.len + *upload_data_size > limit) {
            char msg[96];
            snprintf(msg, sizeof msg, "request body exceeds the limit of %zu bytes", limit);
            fm_reply_error(req, 413, msg);
            req->refused = 1;
            fm_buf_free(&req->body);
        }
        if (!req->refused && fm_buf_append(&req->body, upload_data, *upload_data_size))
            return MHD_NO;
        *upload_data_size = 0; /* consumed (or discarded, for a refused request) */
        return MHD_YES;
    }
    if (req->replied) return MHD_YES;
    if (req->state == FM_REQ_AUDITING) {
        /* Resumed by the audit writer: the entry is committed (or could not be). */
        if (req->audit_rc != FM_OK)
            fm_reply_error(req, 500, "the audit log cannot record this request; not answered");
        return send_reply(c, req);
    }
    if (req->state == FM_REQ_WAITING) {
        /* Resumed by the batcher: its results are in; finish the reply. */
        req->state = FM_REQ_READY;
        run_handler(req, req->resume);
    } else if (!req->refused) {
        if (req->route->body != FM_BODY_NONE && req->body.len == 0 && req->streamed == 0)
            fm_reply_error(req, 411, "a request body is required");
        else
            run_handler(req, req->route->handler);
        if (req->state == FM_REQ_WAITING) return MHD_YES; /* suspended by the batcher */
    }
    return audit_then_reply(c, req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)toe;
    fm_server_t *server = cls;
    fm_conns_request_done(c);
    fm_request_t *req = *con_cls;
    if (!req) return;
    *con_cls = NULL;
    int status = req->replied ? req->status : 499; /* the client went away first */
    fm_metrics_http(server->metrics, status);
    const char *remote = fm_conns_remote(c);
    /* Path and model name are the client's text: masked before they are written down. */
    fm_pii_scrub_in_place(server->pii, req->path, sizeof req->path);
    fm_pii_scrub_in_place(server->pii, req->model, sizeof req->model);
    fm_access_entry_t entry = {
        .request_id = req->request_id,
        .method = req->method,
        .path = req->path,
        .model = req->model[0] ? req->model : NULL,
        .version = req->version,
        .status = status,
        .latency_seconds = fm_clock_seconds() - req->start,
        .bytes_in = req->body.len + req->streamed,
        .bytes_out = req->replied ? req->content_length : 0,
        .remote = remote,
    };
    fm_access_log_write(server->access_log, &entry);
    request_free(req);
    atomic_fetch_sub(&server->in_flight, 1);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*
 * Decodes %HH in the path and query, except %00: a NUL would cut the path short, so that
 * "/v2/models/credit%00junk" would reach model "credit". It stays the three characters "%00",
 * which no model name, version or label accepts.
 */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls;
    (void)c;
    char *w = s;
    const char *r = s;
    while (*r) {
        if (r[0] == '%' && r[1] && r[2]) {
            int hi = hex_digit(r[1]), lo = hex_digit(r[2]);
            if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
                *w++ = (char)(hi * 16 + lo);
                r += 3;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void log_mhd_error(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    fprintf(stderr, "finmaas serve: http: %s\n", text);
}

/* The memory pool of each connection, in bytes (see fm_http_start). */
#define FM_HTTP_CONNECTION_MEMORY (16 * 1024)

/* TLS 1.2 and 1.3 only, AEAD ciphers with forward secrecy. */
#define TLS_PRIORITIES                                                                             \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"            \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

struct MHD_Daemon *fm_http_start(fm_server_t *server, const struct sockaddr *addr, int ipv6,
                                 fm_error_t *err) {
    const fm_server_config_t *c = &server->config;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* One polling thread per daemon; fm_server_start starts one daemon per HTTP thread. */
    if (ipv6) flags |= MHD_USE_IPv6;
    if (server->tls_cert) flags |= MHD_USE_TLS;
    int daemons = c->threads > 0 ? c->threads : 1;
    (void)daemons;
    struct MHD_OptionItem options[16];
    int n = 0;
    options[n++] =
        (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)&log_mhd_error, NULL};
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)addr};
    options[n++] =
        (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)&on_completed, server};
    options[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)c->timeout_seconds, NULL};
    /* Any daemon may hold them all: the caps are counted across daemons (connections.c). */
    options[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)c->max_connections, NULL};
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)&fm_conns_notify,
                                           server->conns};
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)&unescape, NULL};
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL};
    /* Each connection's memory pool (request line and headers, read and write buffers) is
     * zeroed for every request on a kept-alive connection: 16 KiB rather than the default 32
     * halves that cost, and still holds headers well beyond what clients send (over it: 431). */
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                           (intptr_t)FM_HTTP_CONNECTION_MEMORY, NULL};
    if (server->tls_cert) {
        options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, server->tls_key};
        options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, server->tls_cert};
        options[n++] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES};
        if (server->tls_ca)
            options[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, server->tls_ca};
    }
    options[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, &fm_conns_accept, server->conns, &on_request,
                                            server, MHD_OPTION_ARRAY, options, MHD_OPTION_END);
    if (!d) {
        fm_error_set(err, FM_EIO,
                     server->tls_cert ? "cannot listen on %s:%d with TLS (address in use, or the "
                                        "certificate and key do not match)"
                                      : "cannot listen on %s:%d (address in use or not available)",
                     c->host, c->port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info) server->port = info->port;
    return d;
}
