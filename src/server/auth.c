/*
 * Authentication, authorisation and per-key rate limits, applied once per request in http.c
 * before the handler runs:
 *   401  no Authorization header, not "Bearer <token>", or an unknown or revoked key
 *        (one message for all, so a caller learns nothing about which keys exist);
 *   403  a role the route does not allow, or a model outside the key's scope;
 *   429  the key's token bucket is empty (Retry-After says when to come back).
 * Health probes are the only public routes. The token itself never leaves this file: it is
 * hashed by the key ring and not copied into any message or log.
 */
#include "server/internal.h"
#include "core/clock.h"
#include "core/strdict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Rate limits ------------------------------------------------------------------------- */

typedef struct bucket {
    char key_id[FM_KEY_ID_MAX];
    double tokens;
    double updated;
} bucket_t;

struct fm_ratelimit {
    double rate, burst;
    pthread_mutex_t lock;
    bucket_t *slots; /* open addressing by key id */
    size_t nslots, used;
};

int fm_ratelimit_new(double rate, double burst, fm_ratelimit_t **out, fm_error_t *err) {
    fm_ratelimit_t *rl = calloc(1, sizeof *rl);
    if (!rl) return fm_error_set(err, FM_ENOMEM, "out of memory");
    rl->rate = rate;
    rl->burst = burst > 1 ? burst : 1;
    rl->nslots = 64;
    rl->slots = calloc(rl->nslots, sizeof *rl->slots);
    if (!rl->slots) {
        free(rl);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&rl->lock, NULL);
    *out = rl;
    return FM_OK;
}

void fm_ratelimit_free(fm_ratelimit_t *rl) {
    if (!rl) return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->slots);
    free(rl);
}

static bucket_t *find_bucket(fm_ratelimit_t *rl, const char *key_id) {
    size_t n = strlen(key_id);
    size_t i = fm_hash_bytes(key_id, n) & (rl->nslots - 1);
    while (rl->slots[i].key_id[0] && strcmp(rl->slots[i].key_id, key_id) != 0)
        i = (i + 1) & (rl->nslots - 1);
    return &rl->slots[i];
}

static int grow(fm_ratelimit_t *rl) {
    size_t nslots = rl->nslots * 2;
    bucket_t *old = rl->slots, *slots = calloc(nslots, sizeof *slots);
    if (!slots) return -1;
    size_t old_n = rl->nslots;
    rl->slots = slots;
    rl->nslots = nslots;
    for (size_t i = 0; i < old_n; i++)
        if (old[i].key_id[0]) *find_bucket(rl, old[i].key_id) = old[i];
    free(old);
    return 0;
}

int fm_ratelimit_take(fm_ratelimit_t *rl, const char *key_id) {
    double now = fm_clock_seconds();
    pthread_mutex_lock(&rl->lock);
    bucket_t *b = find_bucket(rl, key_id);
    if (!b->key_id[0]) {
        if ((rl->used + 1) * 2 > rl->nslots && grow(rl) == 0) b = find_bucket(rl, key_id);
        snprintf(b->key_id, sizeof b->key_id, "%s", key_id);
        b->tokens = rl->burst;
        b->updated = now;
        rl->used++;
    }
    b->tokens = fmin(rl->burst, b->tokens + (now - b->updated) * rl->rate);
    b->updated = now;
    int wait = 0;
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        wait = (int)ceil((1.0 - b->tokens) / rl->rate);
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

/* ---- Keys -------------------------------------------------------------------------------- */

void fm_auth_refresh(fm_server_t *s) {
    if (!s->keystore) return;
    int64_t generation = fm_keystore_generation(s->keystore);
    if (generation == s->keys_generation) return;
    fm_error_t err;
    if (fm_keyring_load(s->keyring, s->keystore, &err) == FM_OK)
        s->keys_generation = generation;
    else
        fprintf(stderr, "finmaas serve: cannot reload API keys: %s\n", fm_error_message(&err));
}

/* The model a route's path names ("{name}" is always the first parameter), or NULL. */
static const char *route_model(const fm_request_t *req) {
    return strstr(req->route->pattern, "{name}") && req->nparams > 0 ? req->params[0] : NULL;
}

int fm_auth_sees(const fm_request_t *req, const char *model) {
    return !req->authenticated || fm_principal_in_scope(&req->who, model);
}

int fm_auth_check(fm_request_t *req, struct MHD_Connection *c, fm_error_t *err) {
    fm_server_t *s = req->server;
    if (req->route->roles == FM_ROLES_PUBLIC) return 0;
    if (!s->keystore) {
        /* Without authentication nobody is an admin or an auditor: the key and audit routes,
         * which only they may use, stay closed. */
        const unsigned officers = FM_ROLE_BIT(FM_ROLE_ADMIN) | FM_ROLE_BIT(FM_ROLE_AUDITOR);
        if ((req->route->roles & ~officers) == 0) {
            fm_error_set(err, FM_EDENIED,
                         "%s %s needs authentication, which this server runs without (--auth "
                         "off)",
                         req->method, req->path);
            return 403;
        }
        return 0;
    }
    const char *header =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) {
        fm_error_set(err, FM_EDENIED,
                     "authentication required: send Authorization: Bearer "
                     "<API key>");
        return 401;
    }
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    size_t n = strlen(token);
    while (n && token[n - 1] == ' ')
        n--;
    if (fm_keyring_authenticate(s->keyring, token, n, &req->who, err) != FM_OK) {
        fm_error_set(err, FM_EDENIED, "invalid or revoked API key");
        return 401;
    }
    req->authenticated = 1;
    if (!(req->route->roles & FM_ROLE_BIT(req->who.role))) {
        fm_error_set(err, FM_EDENIED, "role '%s' may not %s %s", fm_role_name(req->who.role),
                     req->method, req->path);
        return 403;
    }
    const char *model = route_model(req);
    if (model && !fm_principal_in_scope(&req->who, model)) {
        fm_error_set(err, FM_EDENIED, "this key may not use model '%s'", model);
        return 403;
    }
    if (s->ratelimit) {
        int wait = fm_ratelimit_take(s->ratelimit, req->who.id);
        if (wait > 0) {
            req->retry_after = wait;
            fm_error_set(err, FM_EBUSY,
                         "rate limit of %g requests per second exceeded for this "
                         "key",
                         s->config.rate_limit);
            return 429;
        }
    }
    return 0;
}
