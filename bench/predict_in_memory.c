/*
 * fm_bench_predict MODEL.fmm DATA.csv [REPETITIONS]: the model-only prediction time of finmaas
 * measured the way the benchmark measures scikit-learn's predict_proba: the data is read into
 * memory once, then the whole table is scored REPETITIONS times (default 5). Prints one JSON
 * object: {"rows": N, "seconds": [t1, t2, ...]}. A benchmark tool, not part of the product.
 */
#include "core/clock.h"
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fm_bench_predict MODEL.fmm DATA.csv [REPETITIONS]\n");
        return 2;
    }
    int repetitions = argc > 3 ? atoi(argv[3]) : 5;
    fm_error_t err;
    fm_model_t *model = NULL;
    fm_frame_t *frame = NULL;
    fm_nn_set_threads(1);
    if (fm_model_load(argv[1], &model, &err) || fm_frame_read_csv(argv[2], NULL, &frame, &err)) {
        fprintf(stderr, "fm_bench_predict: %s\n", err.msg);
        return 2;
    }
    double *out = malloc(frame->nrows * fm_model_output_width(model) * sizeof *out);
    if (!out) return 1;
    printf("{\"rows\": %zu, \"seconds\": [", frame->nrows);
    for (int r = 0; r < repetitions; r++) {
        double start = fm_clock_seconds();
        if (fm_model_predict_frame(model, frame, out, &err)) {
            fprintf(stderr, "fm_bench_predict: %s\n", err.msg);
            return 2;
        }
        printf("%s%.6f", r ? ", " : "", fm_clock_seconds() - start);
    }
    printf("]}\n");
    free(out);
    fm_frame_free(frame);
    fm_model_free(model);
    return 0;
}
