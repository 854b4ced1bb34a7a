/*
 * A small, fast, seedable random number generator (xoshiro256**, seeded through splitmix64).
 * Everything random in finmaas (shuffles, splits, weight initialisation) draws from an fm_rng_t
 * passed in explicitly, so a run is reproducible from its seed. Plain struct; not thread-safe:
 * give each thread its own generator (fm_rng_split).
 */
#ifndef FM_CORE_RNG_H
#define FM_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct fm_rng {
    uint64_t s[4];
} fm_rng_t;

/* Seeds the generator; the same seed gives the same sequence on every machine. */
void fm_rng_seed(fm_rng_t *rng, uint64_t seed);
/* A uniformly distributed 64-bit value: one xoshiro256** step. Inline, because hot loops (the
 * Monte Carlo of src/risk) draw one per exposure and scenario. */
static inline uint64_t fm_rng_next(fm_rng_t *rng) {
    uint64_t *s = rng->s;
    uint64_t x = s[1] * 5;
    uint64_t result = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}
/* A uniform double in [0, 1). */
double fm_rng_uniform(fm_rng_t *rng);
/* A uniform integer in [0, n); n > 0. Unbiased. */
uint64_t fm_rng_below(fm_rng_t *rng, uint64_t n);
/* A standard normal variate (Box-Muller, polar form). */
double fm_rng_normal(fm_rng_t *rng);
/* Shuffles idx[0..n) in place (Fisher-Yates). */
void fm_rng_shuffle(fm_rng_t *rng, size_t *idx, size_t n);
/* A new generator seeded from rng's stream, for a worker thread or a sub-task. */
fm_rng_t fm_rng_split(fm_rng_t *rng);

#endif
