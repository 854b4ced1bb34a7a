/*
 * The prediction state of one explanation (importance/internal.h): one model workspace and one
 * buffer of encoded rows, sized once for the sample, so that the many predictions of permutation
 * importance and partial dependence allocate nothing per row or per call.
 */
#include "importance/internal.h"

#include <stdlib.h>
#include <string.h>

int fm_importance_predictor_init(fm_importance_predictor_t *p, const fm_model_t *model, size_t n,
                                 fm_error_t *err) {
    memset(p, 0, sizeof *p);
    p->model = model;
    p->width = fm_model_output_width(model);
    p->chunk = n < FM_IMPORTANCE_CHUNK_ROWS ? n : FM_IMPORTANCE_CHUNK_ROWS;
    if (p->chunk == 0) p->chunk = 1;
    int rc;
    /* A very wide network may not fit a full chunk's workspace; the model then works through
     * each call in smaller batches. */
    for (int batch = (int)p->chunk;; batch /= 2) {
        rc = fm_model_workspace_new(model, batch, &p->ws, err);
        if (rc != FM_ELIMIT || batch == 1) break;
    }
    if (rc) return rc;
    size_t nf = model->prep->nfeatures;
    p->rows = malloc(p->chunk * (nf ? nf : 1) * sizeof *p->rows);
    p->preds = malloc(p->chunk * p->width * sizeof *p->preds);
    if (!p->rows || !p->preds) {
        fm_importance_predictor_deinit(p);
        return fm_error_set(err, FM_ENOMEM, "out of memory for %zu rows of %zu features", p->chunk,
                            nf);
    }
    return FM_OK;
}

void fm_importance_predictor_deinit(fm_importance_predictor_t *p) {
    if (!p) return;
    fm_model_workspace_free(p->ws);
    free(p->rows);
    free(p->preds);
    memset(p, 0, sizeof *p);
}

int fm_importance_predict(fm_importance_predictor_t *p, const double *x, size_t n, double *out,
                          fm_error_t *err) {
    size_t nf = p->model->prep->nfeatures;
    for (size_t start = 0; start < n; start += p->chunk) {
        size_t b = n - start < p->chunk ? n - start : p->chunk;
        int rc =
            fm_model_predict_encoded(p->model, p->ws, x + start * nf, b, out + start * p->width);
        if (rc) return fm_error_set(err, rc, "prediction: %s", fm_model_workspace_error(p->ws));
    }
    return FM_OK;
}
