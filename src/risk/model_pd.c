/*
 * PDs from a binary model: its P(positive) for every row of a CSV file, read in chunks of 4,096
 * rows with the model's input columns and types, so that a large portfolio file needs memory for
 * one chunk of features plus one PD a row.
 */
#include "risk/risk.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_ROWS 4096

/* The model's input columns, all required, as the chunked reader wants them. */
static int open_reader(const fm_model_t *model, const char *path, fm_frame_reader_t **out,
                       fm_error_t *err) {
    const fm_prep_t *prep = model->prep;
    fm_column_spec_t *specs = malloc((prep->ncolumns ? prep->ncolumns : 1) * sizeof *specs);
    if (!specs) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < prep->ncolumns; i++)
        specs[i] = (fm_column_spec_t){prep->columns[i].name, prep->columns[i].type, 1,
                                      prep->columns[i].pii};
    int rc = fm_frame_reader_open(path, specs, prep->ncolumns, out, err);
    free(specs);
    return rc;
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
    fm_frame_reader_t *reader = NULL;
    int rc = open_reader(model, path, &reader, err);
    double *v = NULL;
    size_t count = 0, cap = 0;
    while (!rc) {
        fm_frame_t *chunk = NULL;
        int got = fm_frame_reader_next(reader, CHUNK_ROWS, &chunk, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        if (count + chunk->nrows > cap) {
            size_t ncap = cap ? 2 * cap : CHUNK_ROWS;
            while (ncap < count + chunk->nrows)
                ncap *= 2;
            double *nv = realloc(v, ncap * sizeof *nv);
            if (!nv)
                rc = fm_error_set(err, FM_ENOMEM, "out of memory");
            else {
                v = nv;
                cap = ncap;
            }
        }
        if (!rc) rc = fm_model_predict_frame(model, chunk, v + count, err);
        if (!rc) count += chunk->nrows;
        fm_frame_free(chunk);
    }
    fm_frame_reader_close(reader);
    if (rc) {
        free(v);
        return rc;
    }
    *pd = v;
    *n = count;
    return FM_OK;
}
