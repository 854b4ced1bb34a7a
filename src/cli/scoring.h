/*
 * Internal to the command line: what the scoring commands (predict, decide, eval, fairness,
 * importance, report) share beyond the model area's chunked reading (fm_model_open_reader,
 * fm_model_predict_file): a whole file at once, the --keep columns, the end of the output.
 */
#ifndef FM_CLI_SCORING_H
#define FM_CLI_SCORING_H

#include "core/buf.h"
#include "core/fs.h"
#include "model/model.h"
#include "security/pii.h"

/* Reads the whole file with the model's columns and the extra ones (as fm_model_open_reader)
 * into one frame, for work that needs every row at once (importance, the report). FM_EDATA for a
 * file with no data rows. */
int fm_scoring_read_all(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                        size_t nextra, fm_frame_t **out, fm_error_t *err);

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
