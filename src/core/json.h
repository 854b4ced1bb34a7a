/*
 * JSON helpers over cJSON (Debian's libcjson): parsing with a message that says where the text
 * went wrong, and typed getters that say which field is missing or of the wrong type. cJSON was
 * chosen over jansson because it parses about three times faster (../shared/PERF-NOTES.md) with an
 * equally small API.
 */
#ifndef FM_CORE_JSON_H
#define FM_CORE_JSON_H

#include "core/error.h"

#include <cJSON.h>
#include <stdint.h>

/* Parses len bytes of text into *out (caller frees with cJSON_Delete). what names the source in
 * errors ("model header", "request body"). */
int fm_json_parse(const char *text, size_t len, const char *what, cJSON **out, fm_error_t *err);

/* obj[key] as a finite number. FM_EFORMAT naming key when missing or not a number. */
int fm_json_number(const cJSON *obj, const char *key, double *out, fm_error_t *err);
/* obj[key] as an integer in [min, max]. */
int fm_json_int(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                fm_error_t *err);
/* obj[key] as a string (borrowed from obj). */
int fm_json_string(const cJSON *obj, const char *key, const char **out, fm_error_t *err);
/* obj[key] as an array (borrowed), optionally of exactly want_len items (want_len < 0: any). */
int fm_json_array(const cJSON *obj, const char *key, int want_len, const cJSON **out,
                  fm_error_t *err);
/* obj[key] as an object (borrowed). */
int fm_json_object(const cJSON *obj, const char *key, const cJSON **out, fm_error_t *err);
/* Reads an array of n numbers into out. */
int fm_json_doubles(const cJSON *array, const char *what, double *out, size_t n, fm_error_t *err);

/* Adds a number that is NaN/Inf-safe (null when not finite). Returns the item or NULL. */
cJSON *fm_json_add_number(cJSON *obj, const char *key, double v);
/* A new array of n numbers. */
cJSON *fm_json_double_array(const double *v, size_t n);

#endif
