/*
 * Scoring encoded rows for a request: inline on the calling thread, or through the version's
 * batcher when dynamic batching is on.
 */
#include "server/internal.h"
#include "core/clock.h"

int fm_score(fm_request_t *req, fm_served_t *served, fm_scratch_t *s, int n, fm_error_t *err) {
    /* While draining, score inline: a connection suspended now could outlive the daemon. */
    if (served->batcher && !atomic_load(&req->server->draining))
        return fm_batcher_submit(served->batcher, req, s->x, n, s->out, err);
    double start = fm_clock_seconds();
    int rc = fm_model_predict_encoded(served->model, s->ws, s->x, (size_t)n, s->out);
    if (rc)
        return fm_error_set(err, rc, "model '%s': %s", served->name,
                            fm_model_workspace_error(s->ws));
    fm_model_stats_t *stats = served->stats;
    fm_histogram_observe_seconds(&stats->compute, fm_clock_seconds() - start);
    fm_histogram_observe_batch(&stats->batch, (uint64_t)n);
    atomic_fetch_add_explicit(&stats->inferences, (uint64_t)n, memory_order_relaxed);
    return FM_OK;
}
