/*
 * Helpers shared by the model unit tests: class lists, description text, and the checks that a
 * damaged or inconsistent model file is refused with a message naming it (through
 * fm_model_decode, directly or after editing the file's tensors and description).
 */
#ifndef FM_MODEL_TEST_H
#define FM_MODEL_TEST_H

#include "core/buf.h"
#include "core/json.h"
#include "model/model.h"
#include "fm_test.h"

#include <stdlib.h>
#include <string.h>

static inline char **copy_classes(const char *const *labels, size_t n) {
    char **classes = calloc(n, sizeof *classes);
    for (size_t i = 0; i < n; i++)
        classes[i] = strdup(labels[i]);
    return classes;
}

static inline char *describe_text(const fm_model_t *m) {
    cJSON *d = fm_model_describe(m);
    char *text = d ? cJSON_PrintUnformatted(d) : NULL;
    cJSON_Delete(d);
    return text;
}

/* Decodes data as name and expects failure with want in the message (and the name). */
static inline void expect_refused(const void *data, size_t len, const char *want, int want_code) {
    fm_model_t *m = (fm_model_t *)1;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_model_decode(data, len, "bad.fmm", &m, &err);
    FM_CHECK_MSG(rc < 0, "accepted, expected '%s'", want ? want : "a refusal");
    FM_CHECK(m == NULL);
    if (want_code) FM_CHECK_MSG(rc == want_code, "code %d for '%s'", rc, err.msg);
    FM_CHECK_MSG(strstr(err.msg, "model file bad.fmm") != NULL, "file not named: %s", err.msg);
    if (want) FM_CHECK_MSG(strstr(err.msg, want) != NULL, "'%s' not in '%s'", want, err.msg);
    if (rc == 0) fm_model_free(m);
}

/* Copies src's tensors except skip (may be NULL) and its metadata into a new tensor file. */
static inline fm_tensor_file_t *copy_except(const fm_tensor_file_t *src, const char *skip) {
    fm_tensor_file_t *tf = fm_tensor_file_new();
    for (size_t i = 0; i < src->count; i++) {
        const fm_tensor_t *t = &src->tensors[i];
        if (skip && strcmp(t->name, skip) == 0) continue;
        FM_CHECK_INT(fm_tensor_file_add(tf, t->name, t->dtype, t->ndim, t->shape, t->data, NULL),
                     0);
    }
    tf->metadata = cJSON_Duplicate(src->metadata, 1);
    return tf;
}

/* The description in tf as a cJSON object (caller deletes), and back. */
static inline cJSON *get_description(const fm_tensor_file_t *tf) {
    const char *text = fm_tensor_file_get_metadata(tf, FM_MODEL_METADATA_KEY);
    return text ? cJSON_Parse(text) : NULL;
}

static inline void set_description(fm_tensor_file_t *tf, const cJSON *d) {
    char *text = cJSON_PrintUnformatted(d);
    FM_CHECK_INT(fm_tensor_file_set_metadata(tf, FM_MODEL_METADATA_KEY, text), 0);
    free(text);
}

/* Encodes tf with a fresh checksum and expects the model decoder to refuse it. */
static inline void expect_tensor_file_refused(const fm_tensor_file_t *tf, const char *want,
                                              int want_code) {
    fm_buf_t buf = FM_BUF_INIT;
    FM_CHECK_INT(fm_safetensors_encode(tf, &buf, NULL), 0);
    expect_refused(buf.data, buf.len, want, want_code);
    fm_buf_free(&buf);
}

#endif
