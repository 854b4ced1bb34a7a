/*
 * Internal to the server: turning JSON values into model rows, and model outputs into JSON,
 * shared by the V2 and TensorFlow Serving handlers.
 */
#ifndef FM_SERVER_TABULAR_H
#define FM_SERVER_TABULAR_H

#include "server/internal.h"
#include "server/jsonfast.h"

/*
 * Encodes n rows into s->x. tokens[r * ncolumns + c] is the JSON token holding row r's value of
 * the model's input column c (prep order), or -1 when the request did not give it. A string is
 * passed as text (a number in text is accepted for numeric columns), a number as a number, true
 * and false as 1 and 0, null as missing. Errors name the input and the row: FM_EDATA (422).
 */
int fm_encode_tokens(fm_served_t *served, fm_jdoc_t *doc, const int *tokens, int n, fm_scratch_t *s,
                     fm_error_t *err);

/* Appends a model output value: %.9g for probabilities (float precision), %.17g otherwise. */
void fm_put_probability(fm_buf_t *b, double p);
void fm_put_value(fm_buf_t *b, double v);
/* Appends the JSON string of the label predicted for row r of s->out. */
void fm_put_label(fm_buf_t *b, const fm_model_t *m, const double *row);

/*
 * Scores the n encoded rows in s, then writes the reply with finish(req) at once or, when the
 * batcher took the rows, after it resumes the request (req->resume_state = state either way).
 * On failure nothing was handed over: the caller frees its state.
 */
int fm_score_then(fm_request_t *req, fm_served_t *served, fm_scratch_t *s, int n, void *state,
                  fm_handler_fn finish, fm_error_t *err);

/* Acquires the model a request's path names (name, optional version or label parameters) and
 * records it on the request for logs. */
int fm_acquire_for_request(fm_request_t *req, fm_served_t **out, fm_error_t *err);
/* Releases it and updates the request counters of its stats (success when status < 400). */
void fm_release_for_request(fm_request_t *req, fm_served_t *served, int ok);

#endif
