/*
 * JSON helpers over cJSON: located parse errors and typed field access.
 */
#include "core/json.h"

#include <math.h>
#include <string.h>

int fm_json_parse(const char *text, size_t len, const char *what, cJSON **out, fm_error_t *err) {
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (*out) {
        /* Anything but whitespace after the value is an error. */
        const char *stop = text + len;
        while (end && end < stop && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (end && end < stop && *end != '\0') {
            size_t offset = (size_t)(end - text);
            cJSON_Delete(*out);
            *out = NULL;
            return fm_error_set(err, FM_EPARSE, "%s: unexpected text after JSON value at byte %zu",
                                what, offset);
        }
        return FM_OK;
    }
    const char *at = cJSON_GetErrorPtr();
    size_t offset = (at && at >= text && at <= text + len) ? (size_t)(at - text) : len;
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    if (len == 0) return fm_error_set(err, FM_EPARSE, "%s: empty, expected JSON", what);
    return fm_error_set(err, FM_EPARSE, "%s: invalid JSON at line %zu, column %zu", what, line,
                        column);
}

int fm_json_number(const cJSON *obj, const char *key, double *out, fm_error_t *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return fm_error_set(err, FM_EFORMAT, "field '%s' is missing or not a number", key);
    *out = item->valuedouble;
    return FM_OK;
}

int fm_json_int(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                fm_error_t *err) {
    double v = 0.0;
    int rc = fm_json_number(obj, key, &v, err);
    if (rc) return rc;
    if (v != floor(v) || v < (double)min || v > (double)max)
        return fm_error_set(err, FM_EFORMAT, "field '%s' must be an integer in [%lld, %lld]", key,
                            (long long)min, (long long)max);
    *out = (int64_t)v;
    return FM_OK;
}

int fm_json_string(const cJSON *obj, const char *key, const char **out, fm_error_t *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(item))
        return fm_error_set(err, FM_EFORMAT, "field '%s' is missing or not a string", key);
    *out = item->valuestring;
    return FM_OK;
}

int fm_json_array(const cJSON *obj, const char *key, int want_len, const cJSON **out,
                  fm_error_t *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(item))
        return fm_error_set(err, FM_EFORMAT, "field '%s' is missing or not an array", key);
    if (want_len >= 0 && cJSON_GetArraySize(item) != want_len)
        return fm_error_set(err, FM_EFORMAT, "field '%s' must have %d items, has %d", key, want_len,
                            cJSON_GetArraySize(item));
    *out = item;
    return FM_OK;
}

int fm_json_object(const cJSON *obj, const char *key, const cJSON **out, fm_error_t *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsObject(item))
        return fm_error_set(err, FM_EFORMAT, "field '%s' is missing or not an object", key);
    *out = item;
    return FM_OK;
}

int fm_json_doubles(const cJSON *array, const char *what, double *out, size_t n, fm_error_t *err) {
    if (!cJSON_IsArray(array) || (size_t)cJSON_GetArraySize(array) != n)
        return fm_error_set(err, FM_EFORMAT, "'%s' must be an array of %zu numbers", what, n);
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, array) {
        if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
            return fm_error_set(err, FM_EFORMAT, "'%s'[%zu] is not a finite number", what, i);
        out[i++] = item->valuedouble;
    }
    return FM_OK;
}

cJSON *fm_json_add_number(cJSON *obj, const char *key, double v) {
    if (!isfinite(v)) return cJSON_AddNullToObject(obj, key);
    return cJSON_AddNumberToObject(obj, key, v);
}

cJSON *fm_json_double_array(const double *v, size_t n) {
    cJSON *array = cJSON_CreateArray();
    for (size_t i = 0; array && i < n; i++) {
        cJSON *item = isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull();
        if (!item || !cJSON_AddItemToArray(array, item)) {
            cJSON_Delete(item);
            cJSON_Delete(array);
            return NULL;
        }
    }
    return array;
}
