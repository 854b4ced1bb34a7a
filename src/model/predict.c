/*
 * Prediction with a model: encoded rows through the network (or the booster) and into the task's
 * output scale (P(positive) for binary, class probabilities for multiclass, the target's own units
 * for regression), frames encoded chunk by chunk so that memory stays bounded whatever the frame's
 * size, and the label a row's output stands for. The network path is tested first and touches
 * nothing the trees need, so serving a network costs what it did before trees existed.
 */
#include "model/model_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* Rows encoded at a time by fm_model_predict_frame: large enough for BLAS to be efficient, small
 * enough that the encoded chunk stays in cache-sized memory for typical widths. */
#define PREDICT_CHUNK_ROWS 1024

/* Trees: the booster already answers in the task's output scale. */
static int predict_trees(const fm_model_t *model, fm_model_workspace_t *ws, const double *x,
                         size_t n, double *out) {
    fm_error_t e;
    int rc = fm_gbt_predict(model->gbt, x, n, out, &e);
    ws->error[0] = '\0';
    if (rc) snprintf(ws->error, sizeof ws->error, "%s", e.msg);
    return rc;
}

int fm_model_predict_encoded(const fm_model_t *model, fm_model_workspace_t *ws, const double *x,
                             size_t n, double *out) {
    if (model->gbt) return predict_trees(model, ws, x, n, out);
    size_t nf = model->prep->nfeatures, width = fm_model_output_width(model);
    /* fm_net_forward counts rows in an int. */
    const size_t step = (size_t)1 << 30;
    for (size_t done = 0; done < n;) {
        size_t b = n - done < step ? n - done : step;
        fm_net32_forward(model->net32, ws->net32, x + done * nf, (int)b, out + done * width);
        done += b;
    }
    if (model->task == FM_TASK_REGRESSION) {
        double mean = model->target_mean, std = model->target_std;
        for (size_t i = 0; i < n; i++)
            out[i] = mean + std * out[i];
    }
    return FM_OK;
}

int fm_model_predict_frame(const fm_model_t *model, const fm_frame_t *frame, double *out,
                           fm_error_t *err) {
    size_t n = frame->nrows;
    if (n == 0) return FM_OK;
    size_t chunk = n < PREDICT_CHUNK_ROWS ? n : PREDICT_CHUNK_ROWS;
    size_t nf = model->prep->nfeatures, width = fm_model_output_width(model);
    fm_model_workspace_t *ws = NULL;
    int rc;
    /* A very wide network may not fit a full chunk's workspace; fm_net_forward then works
     * through the chunk in smaller batches. */
    for (int batch = (int)chunk;; batch /= 2) {
        rc = fm_model_workspace_new(model, batch, &ws, err);
        if (rc != FM_ELIMIT || batch == 1) break;
    }
    if (rc) return rc;
    double *x = malloc(chunk * nf * sizeof *x);
    size_t *rows = malloc(chunk * sizeof *rows);
    if (!x || !rows) {
        rc = fm_error_set(err, FM_ENOMEM, "prediction: out of memory for %zu rows of %zu features",
                          chunk, nf);
    }
    for (size_t start = 0; !rc && start < n; start += chunk) {
        size_t b = n - start < chunk ? n - start : chunk;
        for (size_t i = 0; i < b; i++)
            rows[i] = start + i;
        rc = fm_prep_transform(model->prep, frame, rows, b, x, err);
        if (!rc && (rc = fm_model_predict_encoded(model, ws, x, b, out + start * width)))
            fm_error_set(err, rc, "prediction: %s", fm_model_workspace_error(ws));
    }
    free(rows);
    free(x);
    fm_model_workspace_free(ws);
    return rc;
}

/*
 * Binary: the positive class when p >= 0.5, else the negative. Multiclass: the most probable
 * class (the first on ties; NaN never wins; all NaN gives the first class). Regression has no
 * label: NULL.
 */
const char *fm_model_label(const fm_model_t *model, const double *row_output) {
    if (model->task == FM_TASK_REGRESSION || !model->classes || model->nclasses < 2) return NULL;
    if (model->task == FM_TASK_BINARY) return model->classes[row_output[0] >= 0.5 ? 1 : 0];
    size_t best = model->nclasses;
    for (size_t k = 0; k < model->nclasses; k++) {
        double v = row_output[k];
        if (v == v && (best == model->nclasses || v > row_output[best])) best = k;
    }
    return model->classes[best == model->nclasses ? 0 : best];
}

/* ---- files: chunked reading and scoring ---- */

int fm_model_open_reader(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                         size_t nextra, fm_frame_reader_t **out, fm_error_t *err) {
    const fm_prep_t *prep = model->prep;
    fm_column_spec_t *specs = malloc((prep->ncolumns + nextra) * sizeof *specs);
    if (!specs) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < prep->ncolumns; i++)
        specs[n++] = (fm_column_spec_t){prep->columns[i].name, prep->columns[i].type, 1,
                                        prep->columns[i].pii};
    for (size_t e = 0; e < nextra; e++)
        if (fm_prep_find(prep, extra[e].name) < 0) specs[n++] = extra[e];
    int rc = fm_frame_reader_open(path, specs, n, out, err);
    free(specs);
    return rc;
}

int fm_model_predict_file(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                          size_t nextra, fm_model_chunk_fn fn, void *ctx, fm_error_t *err) {
    fm_frame_reader_t *reader = NULL;
    double *pred = malloc(FM_MODEL_CHUNK_ROWS * fm_model_output_width(model) * sizeof *pred);
    int rc = pred ? fm_model_open_reader(model, path, extra, nextra, &reader, err)
                  : fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t base = 0;
    while (!rc) {
        fm_frame_t *chunk = NULL;
        int got = fm_frame_reader_next(reader, FM_MODEL_CHUNK_ROWS, &chunk, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        rc = fm_model_predict_frame(model, chunk, pred, err);
        if (!rc) rc = fn(ctx, chunk, pred, base, err);
        base += chunk->nrows;
        fm_frame_free(chunk);
    }
    fm_frame_reader_close(reader);
    free(pred);
    return rc;
}
