/*
 * Internal to the command line: reading a CSV file in chunks with the columns a model needs,
 * shared by `predict` and `eval`.
 */
#ifndef FM_CLI_SCORING_H
#define FM_CLI_SCORING_H

#include "model/model.h"

#define FM_SCORING_CHUNK_ROWS 4096

/*
 * Opens path for chunked reading of the model's input columns (all required) followed by extra
 * columns (their own required flags). A column both in the model and in extra is read once, with
 * the model's type.
 */
int fm_scoring_open(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                    size_t nextra, fm_frame_reader_t **out, fm_error_t *err);

/* Reads the whole file with the model's columns and the extra ones (as fm_scoring_open) into one
 * frame, for work that needs every row at once (importance, the report). FM_EDATA for a file with
 * no data rows. */
int fm_scoring_read_all(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                        size_t nextra, fm_frame_t **out, fm_error_t *err);

/* Called with each chunk of rows, its predictions (fm_model_predict_frame's layout) and the index
 * of its first row in the file. A non-zero return stops the scoring and is returned. */
typedef int (*fm_scoring_chunk_fn)(void *ctx, const fm_frame_t *chunk, const double *pred,
                                   size_t base, fm_error_t *err);

/* Scores the whole file chunk by chunk (columns as fm_scoring_open reads them), calling fn with
 * each chunk. Returns 0, the first error of reading or predicting, or fn's return. */
int fm_scoring_each(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                    size_t nextra, fm_scoring_chunk_fn fn, void *ctx, fm_error_t *err);

#endif
