/*
 * PDs from a binary model: its P(positive) for every row of a CSV file, scored in chunks
 * (fm_model_predict_file) with the model's input columns and types, so that a large portfolio
 * file needs memory for one chunk of features plus one PD a row.
 */
#include "risk/risk.h"

#include <stdlib.h>
#include <string.h>

/* The PDs gathered so far. */
typedef struct gathered {
    double *v;
    size_t n, cap;
} gathered_t;

static int gather(void *ctx, const fm_frame_t *chunk, const double *pred, size_t base,
                  fm_error_t *err) {
    (void)base;
    gathered_t *g = ctx;
    if (g->n + chunk->nrows > g->cap) {
        size_t cap = g->cap ? 2 * g->cap : FM_MODEL_CHUNK_ROWS;
        while (cap < g->n + chunk->nrows)
            cap *= 2;
        double *v = realloc(g->v, cap * sizeof *v);
        if (!v) return fm_error_set(err, FM_ENOMEM, "out of memory");
        g->v = v;
        g->cap = cap;
    }
    memcpy(g->v + g->n, pred, chunk->nrows * sizeof *pred);
    g->n += chunk->nrows;
    return FM_OK;
}

int fm_risk_model_pds(const fm_model_t *model, const char *path, double **pd, size_t *n,
                      fm_error_t *err) {
    *pd = NULL;
    *n = 0;
    if (model->task != FM_TASK_BINARY || model->nclasses != 2)
        return fm_error_set(err, FM_EINVAL,
                            "the model is a %s model; PDs come from a binary classifier's "
                            "P(positive)",
                            fm_task_name(model->task));
    gathered_t g = {NULL, 0, 0};
    int rc = fm_model_predict_file(model, path, NULL, 0, gather, &g, err);
    if (rc) {
        free(g.v);
        return rc;
    }
    *pd = g.v;
    *n = g.n;
    return FM_OK;
}
