/*
 * data_encode FILE.csv TARGET_COLUMN: reads FILE.csv into a frame, fits preprocessing on all rows
 * and all columns except TARGET_COLUMN (missing indicators on, default category limit) and writes
 * the encoded matrix to stdout as CSV, with the feature names as header and every value as
 * %.17g. tests/ref/test_prep.py compares the output with pandas / scikit-learn.
 */
#include "data/prep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes s as one CSV field, quoted when it holds a delimiter, quote or line break. */
static void put_field(const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"') putchar('"');
        putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE.csv TARGET_COLUMN\n", argv[0]);
        return 2;
    }
    fm_error_t err;
    fm_frame_t *frame = NULL;
    if (fm_frame_read_csv(argv[1], NULL, &frame, &err)) {
        fprintf(stderr, "data_encode: %s\n", fm_error_message(&err));
        return 1;
    }
    int target = fm_frame_find(frame, argv[2]);
    if (target < 0) {
        fprintf(stderr, "data_encode: %s: no column '%s'\n", argv[1], argv[2]);
        fm_frame_free(frame);
        return 1;
    }
    size_t *cols = malloc(frame->ncols * sizeof *cols), ncols = 0;
    for (size_t i = 0; cols && i < frame->ncols; i++)
        if ((int)i != target) cols[ncols++] = i;
    fm_prep_options_t options = {1, 0};
    fm_prep_t *prep = NULL;
    double *out = NULL;
    int rc = cols ? fm_prep_fit(frame, cols, ncols, NULL, 0, &options, &prep, &err) : FM_ENOMEM;
    if (rc == FM_OK) {
        out = malloc(frame->nrows * prep->nfeatures * sizeof *out);
        rc = out ? fm_prep_transform(prep, frame, NULL, frame->nrows, out, &err) : FM_ENOMEM;
    }
    if (rc == FM_OK) {
        char name[512];
        for (size_t j = 0; j < prep->nfeatures; j++) {
            if (j) putchar(',');
            put_field(fm_prep_feature_name(prep, j, name, sizeof name));
        }
        putchar('\n');
        for (size_t r = 0; r < frame->nrows; r++) {
            const double *row = out + r * prep->nfeatures;
            for (size_t j = 0; j < prep->nfeatures; j++)
                printf(j ? ",%.17g" : "%.17g", row[j]);
            putchar('\n');
        }
    } else {
        fprintf(stderr, "data_encode: %s\n",
                rc == FM_ENOMEM ? "out of memory" : fm_error_message(&err));
    }
    free(out);
    free(cols);
    fm_prep_free(prep);
    fm_frame_free(frame);
    return rc == FM_OK ? 0 : 1;
}
