/*
 * Stratified holdout splits of row indices: each class is shuffled on its own and the requested
 * share of it goes to the second part, so both parts keep the class proportions.
 */
#include "train/train.h"

#include <math.h>
#include <stdlib.h>

static int compare_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

int fm_split_stratified(const int32_t *labels, size_t n, int nclasses, double fraction,
                        fm_rng_t *rng, size_t **first, size_t *nfirst, size_t **second,
                        size_t *nsecond, fm_error_t *err) {
    *first = *second = NULL;
    *nfirst = *nsecond = 0;
    if (!(fraction >= 0.0 && fraction < 1.0))
        return fm_error_set(err, FM_EINVAL, "split fraction %g is not in [0, 1)", fraction);
    int groups = labels ? nclasses : 1;
    if (groups < 1) return fm_error_set(err, FM_EINVAL, "split needs at least one class");
    size_t *a = malloc((n ? n : 1) * sizeof *a);
    size_t *b = malloc((n ? n : 1) * sizeof *b);
    size_t *members = malloc((n ? n : 1) * sizeof *members);
    if (!a || !b || !members) {
        free(a);
        free(b);
        free(members);
        return fm_error_set(err, FM_ENOMEM, "split: out of memory");
    }
    size_t na = 0, nb = 0;
    for (int g = 0; g < groups; g++) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t label = labels ? labels[i] : 0;
            if (label == g) members[count++] = i;
        }
        fm_rng_shuffle(rng, members, count);
        size_t take = (size_t)floor(fraction * (double)count + 0.5);
        if (fraction > 0.0 && count >= 2) {
            if (take == 0) take = 1;
            if (take == count) take = count - 1;
        }
        for (size_t i = 0; i < count; i++) {
            if (i < take)
                b[nb++] = members[i];
            else
                a[na++] = members[i];
        }
    }
    free(members);
    qsort(a, na, sizeof *a, compare_size);
    qsort(b, nb, sizeof *b, compare_size);
    *first = a;
    *nfirst = na;
    *second = b;
    *nsecond = nb;
    return FM_OK;
}
