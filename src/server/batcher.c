/*
 * Dynamic batching: requests for one model version queue their encoded rows; one thread per
 * version takes jobs until the batch holds max_size rows or the oldest job has waited
 * max_delay_us, scores them with one matrix product, hands each request its rows back and resumes
 * its connection. The queue is bounded (queue_limit jobs): beyond it a request is refused with
 * 503 and Retry-After rather than waiting without limit.
 *
 * Off by default: a single-row request scored inline costs a few microseconds, so batching pays
 * only when many requests arrive together for models big enough that the matrix product
 * dominates.
 */
#include "server/internal.h"
#include "core/clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
    struct job *next;
    fm_request_t *req;
    const double *x;
    double *out;
    int n;
    double enqueued;
} job_t;

struct fm_batcher {
    fm_served_t *served;
    int max_size, delay_us, queue_limit;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    job_t *head, *tail;
    int queued; /* jobs */
    int queued_rows;
    int stop;
    pthread_t thread;
    double *x, *out; /* max_size rows */
    fm_model_workspace_t *ws;
};

static void run_batch(fm_batcher_t *b, job_t *jobs) {
    const fm_model_t *m = b->served->model;
    size_t nf = m->prep->nfeatures, width = fm_model_output_width(m);
    double start = fm_clock_seconds();
    int rows = 0;
    for (job_t *j = jobs; j; j = j->next)
        rows += j->n;
    const double *x = jobs->x;
    double *out = jobs->out;
    int gathered = jobs->next != NULL;
    if (gathered) { /* several jobs: gather their rows into one matrix */
        int at = 0;
        for (job_t *j = jobs; j; j = j->next) {
            memcpy(b->x + (size_t)at * nf, j->x, (size_t)j->n * nf * sizeof *b->x);
            at += j->n;
        }
        x = b->x;
        out = b->out;
    }
    /* Only a booster can fail here (out of memory); its rows then read NaN. */
    (void)fm_model_predict_encoded(m, b->ws, x, (size_t)rows, out);
    double done = fm_clock_seconds();
    fm_model_stats_t *stats = b->served->stats;
    fm_histogram_observe_batch(&stats->batch, (uint64_t)rows);
    int at = 0;
    for (job_t *j = jobs, *next; j; j = next) {
        next = j->next;
        if (gathered)
            memcpy(j->out, b->out + (size_t)at * width, (size_t)j->n * width * sizeof *out);
        at += j->n;
        fm_histogram_observe_seconds(&stats->queue, start - j->enqueued);
        fm_histogram_observe_seconds(&stats->compute, done - start);
        atomic_fetch_add(&stats->inferences, (uint64_t)j->n);
        struct MHD_Connection *c = j->req->connection;
        free(j);
        MHD_resume_connection(c); /* the request may be finished and freed from here on */
    }
}

static void *batch_loop(void *arg) {
    pthread_setname_np(pthread_self(), "fm-batcher");
    fm_batcher_t *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->head && !b->stop)
            pthread_cond_wait(&b->wake, &b->lock);
        if (!b->head && b->stop) break;
        /* Wait for the batch to fill, at most until the oldest job's deadline. */
        double deadline = b->head->enqueued + b->delay_us * 1e-6;
        while (!b->stop && b->queued_rows < b->max_size) {
            double now = fm_clock_seconds();
            if (now >= deadline) break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double wait = deadline - now;
            ts.tv_sec += (time_t)wait;
            ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&b->wake, &b->lock, &ts) == ETIMEDOUT) break;
        }
        /* Take whole jobs up to max_size rows (a larger job goes alone). */
        job_t *jobs = b->head, *last = b->head;
        int rows = last->n, taken = 1;
        while (last->next && rows + last->next->n <= b->max_size) {
            last = last->next;
            rows += last->n;
            taken++;
        }
        b->head = last->next;
        if (!b->head) b->tail = NULL;
        last->next = NULL;
        b->queued -= taken;
        b->queued_rows -= rows;
        pthread_mutex_unlock(&b->lock);
        run_batch(b, jobs);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int fm_batcher_new(fm_served_t *served, const fm_server_config_t *config, fm_batcher_t **out,
                   fm_error_t *err) {
    *out = NULL;
    fm_batcher_t *b = calloc(1, sizeof *b);
    if (!b) return fm_error_set(err, FM_ENOMEM, "out of memory");
    const fm_model_t *m = served->model;
    b->served = served;
    b->max_size = config->batch_max_size;
    b->delay_us = config->batch_max_delay_us;
    b->queue_limit = config->queue_limit;
    b->x = malloc((size_t)b->max_size * m->prep->nfeatures * sizeof *b->x);
    b->out = malloc((size_t)b->max_size * fm_model_output_width(m) * sizeof *b->out);
    int rc = (b->x && b->out) ? fm_model_workspace_new(m, b->max_size, &b->ws, err)
                              : fm_error_set(err, FM_ENOMEM, "out of memory");
    if (rc) {
        free(b->x);
        free(b->out);
        free(b);
        return rc;
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    if (pthread_create(&b->thread, NULL, batch_loop, b) != 0) {
        fm_model_workspace_free(b->ws);
        free(b->x);
        free(b->out);
        free(b);
        return fm_error_set(err, FM_ENOMEM, "cannot start the batching thread");
    }
    *out = b;
    return FM_OK;
}

void fm_batcher_free(fm_batcher_t *b) {
    if (!b) return;
    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->wake);
    fm_model_workspace_free(b->ws);
    free(b->x);
    free(b->out);
    free(b);
}

int fm_batcher_submit(fm_batcher_t *b, fm_request_t *req, const double *x, int n, double *out,
                      fm_error_t *err) {
    job_t *j = malloc(sizeof *j);
    if (!j) return fm_error_set(err, FM_ENOMEM, "out of memory");
    *j = (job_t){NULL, req, x, out, n, fm_clock_seconds()};
    pthread_mutex_lock(&b->lock);
    if (b->queued >= b->queue_limit) {
        pthread_mutex_unlock(&b->lock);
        free(j);
        req->retry_after = 1;
        return fm_error_set(err, FM_EBUSY, "model '%s' is overloaded (%d requests queued)",
                            b->served->name, b->queue_limit);
    }
    /* Suspend before the job is visible, so the batcher's resume always comes after it. */
    req->state = FM_REQ_WAITING;
    MHD_suspend_connection(req->connection);
    if (b->tail)
        b->tail->next = j;
    else
        b->head = j;
    b->tail = j;
    b->queued++;
    b->queued_rows += n;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    return FM_OK;
}
