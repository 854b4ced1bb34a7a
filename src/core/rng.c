/*
 * xoshiro256** by Blackman and Vigna (public-domain algorithm), seeded with splitmix64 as its
 * authors recommend. Written from the published description.
 */
#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void fm_rng_seed(fm_rng_t *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}


double fm_rng_uniform(fm_rng_t *rng) {
    return (double)(fm_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t fm_rng_below(fm_rng_t *rng, uint64_t n) {
    /* Rejection sampling removes the modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = fm_rng_next(rng);
    while (x >= limit);
    return x % n;
}

double fm_rng_normal(fm_rng_t *rng) {
    double u, v, s;
    do {
        u = 2.0 * fm_rng_uniform(rng) - 1.0;
        v = 2.0 * fm_rng_uniform(rng) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

void fm_rng_shuffle(fm_rng_t *rng, size_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)fm_rng_below(rng, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

fm_rng_t fm_rng_split(fm_rng_t *rng) {
    fm_rng_t child;
    fm_rng_seed(&child, fm_rng_next(rng));
    return child;
}
