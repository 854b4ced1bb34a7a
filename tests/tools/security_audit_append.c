/*
 * security_audit_append: appends entries to a home's audit log, for the shell tests (which need a
 * log to verify and export) and as the group-commit benchmark.
 *
 *   security_audit_append HOME N [--threads T] [--model M] [--action A] [--async]
 *
 * T threads (default 1) append N entries in all. In DURABLE mode (the default) each thread waits
 * for its entry's callback (the commit) before appending the next, as server request threads do;
 * with --async nobody waits. Entry i of thread t has request_id "t<t>-<i>", version i % 3 + 1,
 * status 200, a BLAKE2b input digest, output {"score":...} and a detail. Prints one JSON line:
 * entries, threads, seconds, entries_per_second, commits, entries_per_commit, mean_commit_ms,
 * max_commit_ms. Exit 0, or 1 with a message on stderr.
 */
#include "core/digest.h"
#include "core/error.h"
#include "security/audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct worker {
    fm_audit_t *audit;
    int id;
    long count;
    const char *model, *action;
    int wait;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, rc, failed;
    pthread_t thread;
} worker_t;

static void on_commit(void *ctx, int rc) {
    worker_t *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    w->rc = rc;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void *run(void *arg) {
    worker_t *w = arg;
    char request_id[48], detail[64], output[64], digest[FM_DIGEST_HEX];
    for (long i = 0; i < w->count && !w->failed; i++) {
        snprintf(request_id, sizeof request_id, "t%d-%ld", w->id, i);
        snprintf(detail, sizeof detail, "entry %ld of thread %d", i, w->id);
        snprintf(output, sizeof output, "{\"score\":%.4f}", (double)(i % 1000) / 1000.0);
        fm_digest_hex(request_id, strlen(request_id), digest);
        fm_audit_entry_t e = {.key_id = "k_0123456789ab",
                              .role = "consumer",
                              .action = w->action,
                              .model = w->model,
                              .version = i % 3 + 1,
                              .request_id = request_id,
                              .status = 200,
                              .input_digest = digest,
                              .output = output,
                              .detail = detail};
        pthread_mutex_lock(&w->lock);
        w->done = 0;
        pthread_mutex_unlock(&w->lock);
        int rc = fm_audit_append(w->audit, &e, w->wait ? on_commit : NULL, w);
        if (rc) {
            fprintf(stderr, "security_audit_append: append failed: %s\n", fm_strerror(rc));
            w->failed = 1;
            break;
        }
        if (!w->wait) continue;
        pthread_mutex_lock(&w->lock);
        while (!w->done)
            pthread_cond_wait(&w->cond, &w->lock);
        rc = w->rc;
        pthread_mutex_unlock(&w->lock);
        if (rc) {
            fprintf(stderr, "security_audit_append: commit failed: %s\n", fm_strerror(rc));
            w->failed = 1;
        }
    }
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: security_audit_append HOME N [--threads T] [--model M] "
                        "[--action A] [--async]\n");
        return 2;
    }
    const char *home = argv[1], *model = "credit", *action = "v2.infer";
    long n = strtol(argv[2], NULL, 10);
    long threads = 1;
    int async = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--action") && i + 1 < argc)
            action = argv[++i];
        else if (!strcmp(argv[i], "--async"))
            async = 1;
        else {
            fprintf(stderr, "security_audit_append: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (n < 0 || threads < 1 || threads > 1024) {
        fprintf(stderr, "security_audit_append: bad N or --threads\n");
        return 2;
    }
    fm_error_t err;
    fm_error_clear(&err);
    fm_audit_t *audit = NULL;
    if (fm_audit_open(home, async ? FM_AUDIT_ASYNC : FM_AUDIT_DURABLE, &audit, &err)) {
        fprintf(stderr, "security_audit_append: %s\n", fm_error_message(&err));
        return 1;
    }
    worker_t *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers) {
        fm_audit_close(audit);
        return 1;
    }
    double t0 = now();
    for (long t = 0; t < threads; t++) {
        worker_t *w = &workers[t];
        w->audit = audit;
        w->id = (int)t;
        w->count = n / threads + (t < n % threads);
        w->model = model;
        w->action = action;
        w->wait = !async;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        pthread_create(&w->thread, NULL, run, w);
    }
    int failed = 0;
    for (long t = 0; t < threads; t++) {
        pthread_join(workers[t].thread, NULL);
        failed |= workers[t].failed;
        pthread_mutex_destroy(&workers[t].lock);
        pthread_cond_destroy(&workers[t].cond);
    }
    fm_audit_stats_t stats;
    fm_audit_stats(audit, &stats);
    fm_audit_close(audit); /* ASYNC: commits what is still queued */
    double seconds = now() - t0;
    free(workers);
    if (failed) return 1;
    double commits = stats.commits ? (double)stats.commits : 1.0;
    printf("{\"entries\":%ld,\"threads\":%ld,\"seconds\":%.4f,\"entries_per_second\":%.0f,"
           "\"commits\":%llu,\"entries_per_commit\":%.2f,\"mean_commit_ms\":%.3f,"
           "\"max_commit_ms\":%.3f}\n",
           n, threads, seconds, seconds > 0 ? (double)n / seconds : 0.0,
           (unsigned long long)stats.commits, (double)stats.entries / commits,
           1000.0 * stats.commit_seconds / commits, 1000.0 * stats.max_commit_seconds);
    return 0;
}
