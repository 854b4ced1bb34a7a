/*
 * fm_bench_explain MODEL.fmm DATA.csv [--method M] [--steps N] [--repeat R]: the explanation
 * throughput of bench/explain_bench.py. Encodes DATA.csv with the model's preprocessing, stores
 * the baselines (fm_explain_fit on those rows, as the trainer does), then explains every row one
 * at a time (the serving case) with one workspace on one thread, R times, and prints JSON:
 * {"rows", "seconds", "per_second", "method", "steps", "max_completeness_error"}.
 */
#include "explain/explain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fm_bench_explain MODEL.fmm DATA.csv [--method M] [--steps N] "
                        "[--repeat R]\n");
        return 2;
    }
    fm_explain_request_t request;
    fm_explain_request_defaults(&request);
    int repeat = 1;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--method") == 0) {
            if (fm_explain_method_parse(argv[i + 1], &request.method)) return 2;
        } else if (strcmp(argv[i], "--steps") == 0) {
            request.steps = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--repeat") == 0) {
            repeat = atoi(argv[i + 1]);
        } else {
            return 2;
        }
    }
    fm_error_t err;
    fm_model_t *model = NULL;
    fm_frame_t *frame = NULL;
    fm_explainer_t *e = NULL;
    fm_explain_workspace_t *ws = NULL;
    if (fm_model_load(argv[1], &model, &err) || fm_frame_read_csv(argv[2], NULL, &frame, &err)) {
        fprintf(stderr, "fm_bench_explain: %s\n", err.msg);
        return 1;
    }
    size_t n = frame->nrows, nf = model->prep->nfeatures;
    double *x = malloc(n * nf * sizeof *x);
    double *phi = malloc(model->prep->ncolumns * sizeof *phi);
    if (!x || !phi || fm_prep_transform(model->prep, frame, NULL, n, x, &err) ||
        fm_explain_fit(model, x, n, NULL, &err) || fm_explainer_new(model, &e, &err) ||
        fm_explain_workspace_new(e, &ws, &err)) {
        fprintf(stderr, "fm_bench_explain: %s\n", err.msg);
        return 1;
    }
    fm_explanation_t ex = {.phi = phi};
    double worst = 0.0, start = now();
    for (int r = 0; r < repeat; r++) {
        for (size_t i = 0; i < n; i++) {
            if (fm_explain_row(e, ws, x + i * nf, &request, &ex, &err)) {
                fprintf(stderr, "fm_bench_explain: row %zu: %s\n", i, err.msg);
                return 1;
            }
            double s = 0.0;
            for (size_t c = 0; c < model->prep->ncolumns; c++)
                s += phi[c];
            double d = fabs(s - (ex.score - ex.baseline_score));
            if (d > worst) worst = d;
        }
    }
    double seconds = now() - start;
    printf("{\"rows\":%zu,\"seconds\":%.6f,\"per_second\":%.1f,\"method\":\"%s\",\"steps\":%d,"
           "\"max_completeness_error\":%.3g}\n",
           n * (size_t)repeat, seconds, (double)n * repeat / seconds,
           fm_explain_method_name(ex.method), ex.steps, worst);
    fm_explain_workspace_free(ws);
    fm_explainer_free(e);
    free(x);
    free(phi);
    fm_frame_free(frame);
    fm_model_free(model);
    return 0;
}
