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

/* The V2 inference request (h_infer.c): the infer and explain routes share its parsing and
 * scoring; with explain set the reply also holds one explanation per row. */
int fm_v2_serve(fm_request_t *req, int explain, fm_error_t *err);

/* ---- Explanations (h_explain.c) ------------------------------------------------------------ */

/* The most reason codes a request may ask for per row. */
#define FM_EXPLAIN_ASK_MAX_REASONS 64

/* What a request asks of its explanations. Plain data. */
typedef struct fm_explain_ask {
    fm_explain_request_t request;
    size_t reasons; /* reason codes per row (binary models); default FM_EXPLAIN_DEFAULT_REASONS */
} fm_explain_ask_t;

void fm_explain_ask_defaults(fm_explain_ask_t *ask);

/*
 * Reads one explanation setting of a request: token key of doc is its name, the token after it
 * its value. The settings: "reasons" (0..FM_EXPLAIN_ASK_MAX_REASONS), "baseline" ("reference" or
 * "population"), "method" (fm_explain_method_parse's names), "steps"
 * (1..FM_EXPLAIN_MAX_STEPS) and "class" (a class label of a multiclass model). *known is 0 for
 * any other name (nothing read). Errors name the setting and the value: FM_EPARSE (400) for a
 * value of the wrong JSON type, FM_EINVAL (400) for one out of range, FM_EDATA (422) for a class
 * the model does not have or "class" given to a model that is not multiclass.
 */
int fm_explain_ask_read(const fm_served_t *served, fm_jdoc_t *doc, int key, fm_explain_ask_t *ask,
                        int *known, fm_error_t *err);

/* FM_OK when served can explain, else FM_EDATA (422) with the reason its explainer could not be
 * built. */
int fm_explain_available(const fm_served_t *served, fm_error_t *err);

/*
 * Appends to b the explanation of one encoded row x (prep->nfeatures values), as one JSON object
 * (fm_explanation_to_json). The scratch s (of served) lends its explanation workspace, made on
 * first use. Reason codes always come from the reference baseline, as reasons for a decision are
 * defined: with "population" asked, the attributions are against the population and the reasons
 * come from a second explanation against the reference. Errors: FM_EDATA (422) for a method or
 * class that does not apply to the model, FM_ENOMEM, or XGBoost's failure.
 */
int fm_explain_put(const fm_served_t *served, fm_scratch_t *s, const double *x,
                   const fm_explain_ask_t *ask, fm_buf_t *b, fm_error_t *err);
/* Appends ,"explanations":[...] to b: fm_explain_put of each of the n encoded rows of s->x. */
int fm_explain_put_rows(const fm_served_t *served, fm_scratch_t *s, int n,
                        const fm_explain_ask_t *ask, fm_buf_t *b, fm_error_t *err);

#endif
