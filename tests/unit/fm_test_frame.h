/*
 * Frames for the unit tests of areas that link fm_data: CSV text read back through a scratch file
 * (fm_test_fs.h), exactly as the program reads a file.
 */
#ifndef FM_TEST_FRAME_H
#define FM_TEST_FRAME_H

#include "data/data.h"
#include "fm_test.h"
#include "fm_test_fs.h"

/* The frame of CSV text (type overrides o may be NULL); NULL, with a failed check, on error. */
static inline fm_frame_t *fm_test_frame_from_text(const char *text, const fm_type_overrides_t *o) {
    char path[128];
    fm_test_scratch_path(path, sizeof path, "frame.csv");
    FILE *fp = fopen(path, "wb");
    FM_CHECK(fp != NULL);
    if (!fp) return NULL;
    fputs(text, fp);
    fclose(fp);
    fm_frame_t *frame = NULL;
    fm_error_t err;
    int rc = fm_frame_read_csv(path, o, &frame, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    unlink(path);
    return frame;
}

#endif
