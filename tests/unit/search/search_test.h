/*
 * Helpers shared by the search unit tests: a frame read from CSV text through a temporary file,
 * and a specification parsed from JSON text. Both print the error and return NULL on failure, so
 * a test checks for NULL and goes on.
 */
#ifndef FM_SEARCH_TEST_H
#define FM_SEARCH_TEST_H

#include "search/search_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline fm_frame_t *search_test_frame(const char *text) {
    char path[] = "/tmp/fm_search_test_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    fm_frame_t *frame = NULL;
    fm_error_t err;
    if (fm_frame_read_csv(path, NULL, &frame, &err)) fprintf(stderr, "%s\n", err.msg);
    unlink(path);
    return frame;
}

static inline fm_search_spec_t *search_test_spec(const char *text) {
    cJSON *json = cJSON_Parse(text);
    fm_search_spec_t *spec = NULL;
    fm_error_t err;
    if (fm_search_spec_parse(json, &spec, &err)) fprintf(stderr, "spec: %s\n", err.msg);
    cJSON_Delete(json);
    return spec;
}

#endif
