/*
 * importance_compute: prints fm_importance_compute's JSON for a model and a labelled CSV file, so
 * tests/ref/test_importance.py can recompute every number independently.
 *
 *   importance_compute MODEL.fmm DATA.csv [--repeats N] [--grid N] [--ice N] [--max-rows N]
 *                      [--seed S] [--dump-permutations] [--time]
 *
 * --dump-permutations adds to the output the frame rows used ("sample_rows", 0-based data rows)
 * and, per feature, the permutations of those rows that permutation importance used
 * ("permutations": {"feature": [[i, ...] per repeat]}, indices into sample_rows), drawn by the
 * library's own functions. --time prints {"seconds": s} for the computation on stderr. Errors
 * print "error: <CODE>: <message>" on stderr and exit with status 1; bad usage exits 2.
 */
#include "core/clock.h"
#include "core/json.h"
#include "importance/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_integer(const char *name, const char *text, long long *out) {
    char *end;
    errno = 0;
    *out = strtoll(text, &end, 10);
    if (errno || end == text || *end) {
        fprintf(stderr, "usage error: %s needs an integer, got '%s'\n", name, text);
        return -1;
    }
    return 0;
}

/* The permutations of every feature, as the library draws them. */
static int dump_permutations(const fm_model_t *model, const fm_frame_t *frame,
                             const fm_importance_options_t *o, cJSON *out, fm_error_t *err) {
    fm_importance_sample_t s;
    int rc = fm_importance_sample_rows(model, frame, NULL, 0, o->max_rows, o->seed, &s, err);
    if (rc) return rc;
    size_t *perm = malloc((s.n ? s.n : 1) * sizeof *perm);
    double *values = malloc((s.n ? s.n : 1) * sizeof *values);
    cJSON *rows = NULL, *perms = cJSON_AddObjectToObject(out, "permutations");
    if (!perm || !values || !perms) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < s.n; i++)
        values[i] = (double)s.rows[i];
    if (!rc && !((rows = fm_json_double_array(values, s.n)) &&
                 cJSON_AddItemToObject(out, "sample_rows", rows)))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t k = 0; !rc && k < model->prep->ncolumns; k++) {
        const fm_prep_column_t *c = &model->prep->columns[k];
        if (c->width == 0) continue;
        cJSON *list = cJSON_AddArrayToObject(perms, c->name);
        fm_rng_t rng;
        fm_importance_permutation_rng(&rng, o->seed, k);
        for (int r = 0; list && r < o->repeats; r++) {
            fm_importance_permutation_next(&rng, perm, s.n);
            for (size_t i = 0; i < s.n; i++)
                values[i] = (double)perm[i];
            cJSON *one = fm_json_double_array(values, s.n);
            if (!one || !cJSON_AddItemToArray(list, one)) {
                cJSON_Delete(one);
                list = NULL;
            }
        }
        if (!list) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    free(perm);
    free(values);
    fm_importance_sample_deinit(&s);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: importance_compute MODEL.fmm DATA.csv [--repeats N] [--grid N] "
                        "[--ice N] [--max-rows N] [--seed S] [--dump-permutations] [--time]\n");
        return 2;
    }
    fm_importance_options_t o;
    fm_importance_options_defaults(&o);
    int dump = 0, timing = 0;
    for (int i = 3; i < argc; i++) {
        long long v = 0;
        if (!strcmp(argv[i], "--dump-permutations")) {
            dump = 1;
            continue;
        }
        if (!strcmp(argv[i], "--time")) {
            timing = 1;
            continue;
        }
        if (i + 1 >= argc || parse_integer(argv[i], argv[i + 1], &v)) {
            fprintf(stderr, "usage error: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--repeats"))
            o.repeats = v < -1000 || v > 1000 ? 1000 : (int)v;
        else if (!strcmp(argv[i], "--grid"))
            o.grid = (size_t)v;
        else if (!strcmp(argv[i], "--ice"))
            o.ice_rows = (size_t)v;
        else if (!strcmp(argv[i], "--max-rows"))
            o.max_rows = (size_t)v;
        else if (!strcmp(argv[i], "--seed"))
            o.seed = (uint64_t)v;
        else {
            fprintf(stderr, "usage error: unknown option %s\n", argv[i]);
            return 2;
        }
        i++;
    }
    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    fm_frame_t *frame = NULL;
    cJSON *out = NULL;
    int rc = fm_model_load(argv[1], &model, &err);
    if (!rc) rc = fm_frame_read_csv(argv[2], NULL, &frame, &err);
    if (!rc) {
        double start = fm_clock_seconds();
        rc = fm_importance_compute(model, frame, NULL, 0, &o, &out, &err);
        if (!rc && timing) fprintf(stderr, "{\"seconds\": %.6f}\n", fm_clock_seconds() - start);
    }
    if (!rc && dump) rc = dump_permutations(model, frame, &o, out, &err);
    if (!rc) {
        char *text = cJSON_PrintUnformatted(out);
        if (text)
            puts(text);
        else
            rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
        free(text);
    }
    if (rc) fprintf(stderr, "error: %s: %s\n", fm_error_name(rc), fm_error_message(&err));
    cJSON_Delete(out);
    fm_frame_free(frame);
    fm_model_free(model);
    return rc ? 1 : 0;
}
