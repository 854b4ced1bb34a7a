/*
 * Connection limits across all HTTP threads: a cap on open connections (--max-connections), a cap
 * per client address (--max-connections-per-ip) and a deadline for a request's headers
 * (--timeout).
 *
 * Each HTTP thread runs its own libmicrohttpd daemon (SO_REUSEPORT), and the kernel spreads new
 * connections over them by a hash, so a cap split per daemon would refuse connections while the
 * server as a whole is under its cap. The counts here are shared: the accept policy callback
 * refuses a connection when a cap is reached, and the connection-started notification counts it
 * (closing it at once when a concurrent accept on another thread won the last place).
 *
 * libmicrohttpd's own timeout is an idle timeout: a client that sends one header byte every few
 * seconds (slowloris) keeps its connection forever. A sweeper thread therefore closes, with
 * shutdown(2), every connection whose current request has not delivered its headers within the
 * timeout of the connection's start or of the end of its previous request. The library notifies
 * the close before it closes the socket, and the list is only changed under the lock the sweeper
 * holds, so the sweeper never touches a descriptor that was reused.
 */
#include "server/internal.h"
#include "core/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct fm_conn {
    struct fm_conn *prev, *next;
    int fd;
    unsigned char addr[16]; /* the client address (IPv4 in the first 4 bytes) */
    int addr_len;
    char remote[INET6_ADDRSTRLEN]; /* the client address as text, for the access log */
    atomic_llong phase_start_us;   /* connection start, or end of its previous request */
    atomic_int in_request;         /* headers received, not yet completed */
    int shut;                      /* the sweeper has shut it down */
} fm_conn_t;

typedef struct ip_slot {
    unsigned char addr[16];
    int addr_len; /* 0: free */
    size_t count;
} ip_slot_t;

struct fm_conns {
    pthread_mutex_t lock;
    fm_conn_t list; /* sentinel of a circular list */
    size_t count, cap, per_ip_cap;
    ip_slot_t *ips; /* open addressing, nips a power of two, at least 2 * cap slots */
    size_t nips;
    double timeout;
    pthread_t sweeper;
    int sweeper_running, stopping;
    pthread_cond_t wake;
};

static long long now_us(void) {
    return (long long)(fm_clock_seconds() * 1e6);
}

/* The address bytes of a client (4 for IPv4, 16 for IPv6); 0 when neither. */
static int address_key(const struct sockaddr *sa, unsigned char out[16]) {
    if (!sa) return 0;
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

/* The slot of an address (found, or the free one where it would go). Lock held. */
static ip_slot_t *ip_slot(fm_conns_t *t, const unsigned char *addr, int len) {
    size_t i = (size_t)fm_hash_bytes(addr, (size_t)len) & (t->nips - 1);
    for (;;) {
        ip_slot_t *s = &t->ips[i];
        if (!s->addr_len || (s->addr_len == len && !memcmp(s->addr, addr, (size_t)len))) return s;
        i = (i + 1) & (t->nips - 1);
    }
}

/* Removes a slot that dropped to 0, re-placing the run after it (linear probing). Lock held. */
static void ip_release(fm_conns_t *t, ip_slot_t *s) {
    size_t i = (size_t)(s - t->ips);
    s->addr_len = 0;
    for (size_t j = (i + 1) & (t->nips - 1); t->ips[j].addr_len; j = (j + 1) & (t->nips - 1)) {
        ip_slot_t moved = t->ips[j];
        t->ips[j].addr_len = 0;
        *ip_slot(t, moved.addr, moved.addr_len) = moved;
    }
}

static void *sweep_loop(void *arg) {
    pthread_setname_np(pthread_self(), "fm-conn-sweep");
    fm_conns_t *t = arg;
    long period_ms = (long)(t->timeout * 1000 / 4);
    if (period_ms > 250) period_ms = 250;
    if (period_ms < 10) period_ms = 10;
    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += period_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&t->wake, &t->lock, &ts);
        long long limit = now_us() - (long long)(t->timeout * 1e6);
        for (fm_conn_t *c = t->list.next; c != &t->list; c = c->next) {
            if (c->shut || atomic_load_explicit(&c->in_request, memory_order_acquire)) continue;
            if (atomic_load_explicit(&c->phase_start_us, memory_order_relaxed) > limit) continue;
            /* The library sees end of file and closes it (and tells us, under this lock). */
            shutdown(c->fd, SHUT_RDWR);
            c->shut = 1;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int fm_conns_new(size_t cap, size_t per_ip_cap, double timeout, fm_conns_t **out, fm_error_t *err) {
    fm_conns_t *t = calloc(1, sizeof *t);
    if (!t) return fm_error_set(err, FM_ENOMEM, "out of memory");
    t->cap = cap ? cap : 1;
    t->per_ip_cap = per_ip_cap;
    t->timeout = timeout;
    t->list.next = t->list.prev = &t->list;
    if (per_ip_cap) {
        for (t->nips = 16; t->nips < 2 * t->cap + 2; t->nips *= 2) {
        }
        t->ips = calloc(t->nips, sizeof *t->ips);
        if (!t->ips) {
            free(t);
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        }
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    if (timeout > 0) {
        if (pthread_create(&t->sweeper, NULL, sweep_loop, t) != 0) {
            fm_conns_free(t);
            return fm_error_set(err, FM_ENOMEM, "cannot start the connection sweeper");
        }
        t->sweeper_running = 1;
    }
    *out = t;
    return FM_OK;
}

void fm_conns_free(fm_conns_t *t) {
    if (!t) return;
    if (t->sweeper_running) {
        pthread_mutex_lock(&t->lock);
        t->stopping = 1;
        pthread_cond_signal(&t->wake);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->sweeper, NULL);
    }
    /* The daemons are stopped: every connection was notified closed and freed. */
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t->ips);
    free(t);
}

enum MHD_Result fm_conns_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
    (void)addrlen;
    fm_conns_t *t = cls;
    unsigned char key[16];
    int len = address_key(addr, key);
    pthread_mutex_lock(&t->lock);
    int ok = t->count < t->cap;
    if (ok && t->per_ip_cap && len) ok = ip_slot(t, key, len)->count < t->per_ip_cap;
    pthread_mutex_unlock(&t->lock);
    return ok ? MHD_YES : MHD_NO;
}

void fm_conns_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                     enum MHD_ConnectionNotificationCode code) {
    fm_conns_t *t = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        fm_conn_t *c = calloc(1, sizeof *c);
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *peer =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!c || !fd) {
            /* Untracked: not counted, and closed at once rather than left unlimited. */
            free(c);
            *socket_context = NULL;
            if (fd) shutdown(fd->connect_fd, SHUT_RDWR);
            return;
        }
        c->fd = fd->connect_fd;
        c->addr_len = peer ? address_key(peer->client_addr, c->addr) : 0;
        /* Formatted once per connection rather than for every request's access-log line. */
        if (c->addr_len == 4)
            inet_ntop(AF_INET, c->addr, c->remote, sizeof c->remote);
        else if (c->addr_len == 16)
            inet_ntop(AF_INET6, c->addr, c->remote, sizeof c->remote);
        atomic_store(&c->phase_start_us, now_us());
        pthread_mutex_lock(&t->lock);
        c->next = t->list.next;
        c->prev = &t->list;
        t->list.next->prev = c;
        t->list.next = c;
        int over = ++t->count > t->cap;
        if (t->per_ip_cap && c->addr_len) {
            ip_slot_t *s = ip_slot(t, c->addr, c->addr_len);
            if (!s->addr_len) {
                memcpy(s->addr, c->addr, sizeof s->addr);
                s->addr_len = c->addr_len;
            }
            over |= ++s->count > t->per_ip_cap;
        }
        if (over) {
            /* Another thread accepted the last place at the same moment. */
            shutdown(c->fd, SHUT_RDWR);
            c->shut = 1;
        }
        pthread_mutex_unlock(&t->lock);
        *socket_context = c;
        return;
    }
    fm_conn_t *c = *socket_context;
    if (!c) return;
    *socket_context = NULL;
    pthread_mutex_lock(&t->lock);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    t->count--;
    if (t->per_ip_cap && c->addr_len) {
        ip_slot_t *s = ip_slot(t, c->addr, c->addr_len);
        if (s->addr_len && --s->count == 0) ip_release(t, s);
    }
    pthread_mutex_unlock(&t->lock);
    free(c);
}

/* The tracking record of a connection, or NULL. */
static fm_conn_t *conn_of(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

const char *fm_conns_remote(struct MHD_Connection *connection) {
    fm_conn_t *c = conn_of(connection);
    return c && c->remote[0] ? c->remote : NULL;
}

void fm_conns_request_started(struct MHD_Connection *connection) {
    fm_conn_t *c = conn_of(connection);
    if (c) atomic_store_explicit(&c->in_request, 1, memory_order_relaxed);
}

void fm_conns_request_done(struct MHD_Connection *connection) {
    fm_conn_t *c = conn_of(connection);
    if (!c) return;
    atomic_store_explicit(&c->phase_start_us, now_us(), memory_order_relaxed);
    atomic_store_explicit(&c->in_request, 0, memory_order_release);
}
