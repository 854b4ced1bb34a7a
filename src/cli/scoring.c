/*
 * Reading the columns a model needs: in chunks, or all at once.
 */
#include "cli/scoring.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int fm_scoring_open(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
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

int fm_scoring_read_all(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                        size_t nextra, fm_frame_t **out, fm_error_t *err) {
    *out = NULL;
    fm_frame_reader_t *reader = NULL;
    int rc = fm_scoring_open(model, path, extra, nextra, &reader, err);
    if (!rc) {
        int got = fm_frame_reader_next(reader, SIZE_MAX, out, err);
        if (got == 0) rc = fm_error_set(err, FM_EDATA, "%s has no data rows", path);
        if (got < 0) rc = got;
    }
    fm_frame_reader_close(reader);
    return rc;
}

int fm_scoring_each(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                    size_t nextra, fm_scoring_chunk_fn fn, void *ctx, fm_error_t *err) {
    fm_frame_reader_t *reader = NULL;
    double *pred = malloc(FM_SCORING_CHUNK_ROWS * fm_model_output_width(model) * sizeof *pred);
    int rc = pred ? fm_scoring_open(model, path, extra, nextra, &reader, err)
                  : fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t base = 0;
    while (!rc) {
        fm_frame_t *chunk = NULL;
        int got = fm_frame_reader_next(reader, FM_SCORING_CHUNK_ROWS, &chunk, err);
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
