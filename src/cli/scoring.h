/*
 * Internal to the command line: reading a CSV file in chunks with the columns a model needs,
 * shared by `predict` and `eval`.
 */
#ifndef FM_CLI_SCORING_H
#define FM_CLI_SCORING_H

#include "core/buf.h"
#include "core/fs.h"
#include "model/model.h"
#include "security/pii.h"

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

/* Appends cell (col, r) of chunk as a CSV field, for the columns that --keep copies to the
 * output: the text as read, a number as %.17g, nothing when missing; with pii, masked
 * (fm_pii_mask_value). 0 or FM_ENOMEM. */
int fm_scoring_put_cell(fm_buf_t *out, const fm_frame_t *chunk, int col, size_t r,
                        const fm_pii_t *pii);

/* Ends a scoring command's output after rc (its result so far): to a file (to_file), commits it,
 * or removes it after a failure; to standard output, flushes it. Returns rc, or the failure to
 * commit or flush. */
int fm_scoring_output_end(fm_atomic_file_t *file, int to_file, int rc, fm_error_t *err);

#endif
