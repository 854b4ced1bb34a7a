/*
 * Reading the columns a model needs: in chunks, or all at once.
 */
#include "cli/scoring.h"

#include "data/csv_writer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fm_scoring_read_all(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                        size_t nextra, fm_frame_t **out, fm_error_t *err) {
    *out = NULL;
    fm_frame_reader_t *reader = NULL;
    int rc = fm_model_open_reader(model, path, extra, nextra, &reader, err);
    if (!rc) {
        int got = fm_frame_reader_next(reader, SIZE_MAX, out, err);
        if (got == 0) rc = fm_error_set(err, FM_EDATA, "%s has no data rows", path);
        if (got < 0) rc = got;
    }
    fm_frame_reader_close(reader);
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
