/*
 * Reading the columns a model needs: in chunks, or all at once.
 */
#include "cli/scoring.h"

#include "data/csv_writer.h"

#include <stdint.h>
#include <stdio.h>
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

int fm_scoring_put_cell(fm_buf_t *out, const fm_frame_t *chunk, int col, size_t r,
                        const fm_pii_t *pii) {
    fm_raw_value_t v = fm_prep_raw_cell(chunk, col, r);
    char number[32];
    if (v.kind == FM_RAW_MISSING) return FM_OK;
    if (v.kind == FM_RAW_NUMBER) {
        v.len = (size_t)snprintf(number, sizeof number, "%.17g", v.number);
        v.str = number;
    }
    if (!pii) return fm_csv_write_field(out, v.str, v.len);
    fm_buf_t token = FM_BUF_INIT;
    int rc = fm_pii_mask_value(pii, v.str, v.len, &token);
    if (!rc) rc = fm_csv_write_field(out, token.data ? token.data : "", token.len);
    fm_buf_free(&token);
    return rc;
}

int fm_scoring_output_end(fm_atomic_file_t *file, int to_file, int rc, fm_error_t *err) {
    if (to_file) {
        if (!rc) return fm_atomic_file_commit(file, err);
        fm_atomic_file_abort(file);
        return rc;
    }
    if (!rc && fflush(stdout) != 0)
        return fm_error_set(err, FM_EIO, "cannot write to standard output");
    return rc;
}
