/*
 * The Monte Carlo loss distribution of a portfolio under the one-factor Gaussian copula (see
 * risk.h), and its summary: mean, VaR and Expected Shortfall with their sampling errors.
 *
 * Exposure i defaults in a scenario when sqrt(rho_i) Z + sqrt(1 - rho_i) eps_i < G(PD_i), that
 * is when eps_i < t_i - s_i Z with t_i = G(PD_i) / sqrt(1 - rho_i) and s_i = sqrt(rho_i) /
 * sqrt(1 - rho_i), precomputed; the loop per scenario is then one normal draw, a multiply-add
 * and a compare per exposure. Normals come from Marsaglia and Tsang's ziggurat (J. Stat. Softw.
 * 5(8), 2000; 128 strips) over xoshiro256** (the generator of core/rng.h, inlined here so that
 * the hot loop makes no calls): 99% of draws take one 64-bit number, a table look-up and a
 * multiply. The strip index comes from the low 7 bits and the value from the high 32 bits of
 * the same number, so the two are independent (the original drew both from one 32-bit word).
 *
 * Scenario block k (FM_RISK_MC_BLOCK scenarios) draws from a generator seeded with
 * fm_rng_seed(mix(seed, k)); pthreads take blocks from an atomic counter and write each loss at
 * its scenario's index, so the sample is the same for any number of threads.
 */
#include "risk/risk.h"

#include "core/clock.h"
#include "core/rng.h"
#include "core/stats.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- The ziggurat ---------------------------------------------------------------------------- */

#define ZIG_R 3.442619855899      /* the start of the tail */
#define ZIG_V 9.91256303526217e-3 /* the area of each strip */

typedef struct zig {
    uint32_t k[128]; /* |hz| < k[i]: the point lies inside strip i's rectangle */
    double w[128];   /* x = hz * w[i] */
    double f[128];   /* exp(-x_i^2 / 2) at the strip edges */
} zig_t;

/* Marsaglia and Tsang's table set-up for 128 strips. */
static void zig_init(zig_t *z) {
    const double m1 = 2147483648.0;
    double dn = ZIG_R, tn = dn;
    double q = ZIG_V / exp(-0.5 * dn * dn);
    z->k[0] = (uint32_t)((dn / q) * m1);
    z->k[1] = 0;
    z->w[0] = q / m1;
    z->w[127] = dn / m1;
    z->f[0] = 1.0;
    z->f[127] = exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; i--) {
        dn = sqrt(-2.0 * log(ZIG_V / dn + exp(-0.5 * dn * dn)));
        z->k[i + 1] = (uint32_t)((dn / tn) * m1);
        tn = dn;
        z->f[i] = exp(-0.5 * dn * dn);
        z->w[i] = dn / m1;
    }
}

/* Uniform in (0, 1]: never 0, so its logarithm is finite. */
static inline double uniform_open(fm_rng_t *rng) {
    return (double)((fm_rng_next(rng) >> 11) + 1) * 0x1.0p-53;
}

static inline uint32_t abs32(int32_t v) {
    return v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
}

/* The slow path: the wedges beside the rectangles and the tail beyond ZIG_R. */
static double zig_fix(const zig_t *z, fm_rng_t *rng, int32_t hz, unsigned iz) {
    for (;;) {
        double x = hz * z->w[iz];
        if (iz == 0) {
            double xx, y;
            do {
                xx = -log(uniform_open(rng)) / ZIG_R;
                y = -log(uniform_open(rng));
            } while (y + y < xx * xx);
            return hz > 0 ? ZIG_R + xx : -ZIG_R - xx;
        }
        if (z->f[iz] + uniform_open(rng) * (z->f[iz - 1] - z->f[iz]) < exp(-0.5 * x * x)) return x;
        uint64_t u = fm_rng_next(rng);
        hz = (int32_t)(u >> 32);
        iz = (unsigned)u & 127u;
        if (abs32(hz) < z->k[iz]) return hz * z->w[iz];
    }
}

static inline double zig_normal(const zig_t *z, fm_rng_t *rng) {
    uint64_t u = fm_rng_next(rng);
    int32_t hz = (int32_t)(u >> 32);
    unsigned iz = (unsigned)u & 127u;
    if (abs32(hz) < z->k[iz]) return hz * z->w[iz];
    return zig_fix(z, rng, hz, iz);
}

/* ---- Sampling -------------------------------------------------------------------------------- */

/* One exposure as the loop sees it: default when eps < t - s Z, losing w. */
typedef struct term {
    double t, s, w;
} term_t;

typedef struct mc {
    const term_t *terms;
    size_t n;
    uint64_t scenarios, seed, nblocks;
    double *losses;
    atomic_uint_fast64_t next_block;
    zig_t zig;
} mc_t;

/* The seed of block k's stream: seed and k mixed (splitmix64's finaliser), then fm_rng_seed. */
static uint64_t block_seed(uint64_t seed, uint64_t k) {
    uint64_t z = seed + (k + 1) * 0xd1342543de82ef95ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void run_block(const mc_t *mc, uint64_t k) {
    fm_rng_t rng;
    fm_rng_seed(&rng, block_seed(mc->seed, k));
    uint64_t first = k * FM_RISK_MC_BLOCK;
    uint64_t last =
        first + FM_RISK_MC_BLOCK < mc->scenarios ? first + FM_RISK_MC_BLOCK : mc->scenarios;
    const term_t *terms = mc->terms;
    size_t n = mc->n;
    for (uint64_t sc = first; sc < last; sc++) {
        double z = zig_normal(&mc->zig, &rng), loss = 0.0;
        for (size_t i = 0; i < n; i++) {
            double eps = zig_normal(&mc->zig, &rng);
            if (eps < terms[i].t - terms[i].s * z) loss += terms[i].w;
        }
        mc->losses[sc] = loss;
    }
}

static void *worker(void *arg) {
    mc_t *mc = arg;
    for (;;) {
        uint64_t k = atomic_fetch_add(&mc->next_block, 1);
        if (k >= mc->nblocks) break;
        run_block(mc, k);
    }
    return NULL;
}

static int check_options(const fm_risk_settings_t *s, const fm_risk_mc_options_t *o,
                         fm_error_t *err) {
    if (!(s->pd_floor >= 1e-5 && s->pd_floor <= 0.1))
        return fm_error_set(err, FM_EINVAL, "pd_floor %.17g must be in [0.00001, 0.1]",
                            s->pd_floor);
    if (o->scenarios < 1 || o->scenarios > FM_RISK_MAX_SCENARIOS)
        return fm_error_set(err, FM_EINVAL, "scenarios %llu must be in [1, %llu]",
                            (unsigned long long)o->scenarios,
                            (unsigned long long)FM_RISK_MAX_SCENARIOS);
    if (o->threads < 1 || o->threads > 256)
        return fm_error_set(err, FM_EINVAL, "threads %d must be in [1, 256]", o->threads);
    if (o->nlevels > FM_RISK_MAX_LEVELS)
        return fm_error_set(err, FM_EINVAL, "at most %d levels", FM_RISK_MAX_LEVELS);
    for (size_t j = 0; j < o->nlevels; j++)
        if (!(o->levels[j] > 0.0 && o->levels[j] < 1.0))
            return fm_error_set(err, FM_EINVAL, "level %.17g must be in (0, 1)", o->levels[j]);
    if (!isnan(o->rho) && !(o->rho >= 0.0 && o->rho < 1.0))
        return fm_error_set(err, FM_EINVAL, "rho %.17g must be in [0, 1)", o->rho);
    return FM_OK;
}

void fm_risk_mc_options_defaults(fm_risk_mc_options_t *o) {
    memset(o, 0, sizeof *o);
    o->scenarios = 100000;
    o->seed = 1;
    o->threads = 1;
    o->levels[0] = 0.99;
    o->levels[1] = 0.999;
    o->nlevels = 2;
    o->rho = NAN;
}

int fm_risk_mc_losses(const fm_risk_portfolio_t *p, const fm_risk_settings_t *s,
                      const fm_risk_mc_options_t *o, double *losses, fm_error_t *err) {
    int rc = check_options(s, o, err);
    if (rc) return rc;
    mc_t *mc = malloc(sizeof *mc);
    term_t *terms = malloc((p->n ? p->n : 1) * sizeof *terms);
    int nworkers = o->threads - 1;
    pthread_t *threads = malloc((size_t)(nworkers ? nworkers : 1) * sizeof *threads);
    if (!mc || !terms || !threads) {
        free(mc);
        free(terms);
        free(threads);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < p->n; i++) {
        const fm_risk_exposure_t *e = &p->exposures[i];
        double pd = e->pd < s->pd_floor ? s->pd_floor : e->pd;
        double rho = !isnan(o->rho)   ? o->rho
                     : !isnan(e->rho) ? e->rho
                                      : fm_risk_irb_correlation(e->asset_class, pd);
        double scale = 1.0 / sqrt(1.0 - rho);
        terms[i].t = fm_normal_quantile(pd) * scale; /* +inf for PD 1: always defaults */
        terms[i].s = sqrt(rho) * scale;
        terms[i].w = e->lgd * e->ead;
    }
    mc->terms = terms;
    mc->n = p->n;
    mc->scenarios = o->scenarios;
    mc->seed = o->seed;
    mc->nblocks = (o->scenarios + FM_RISK_MC_BLOCK - 1) / FM_RISK_MC_BLOCK;
    mc->losses = losses;
    atomic_init(&mc->next_block, 0);
    zig_init(&mc->zig);
    int started = 0;
    for (; started < nworkers; started++)
        if (pthread_create(&threads[started], NULL, worker, mc) != 0) break;
    if (started < nworkers) rc = fm_error_set(err, FM_EIO, "cannot start a Monte Carlo thread");
    /* The calling thread works too; on a failed start it still finishes the blocks, so the
     * started threads end, and then the error is returned. */
    worker(mc);
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    free(threads);
    free(terms);
    free(mc);
    return rc;
}

/* ---- Summary --------------------------------------------------------------------------------- */

/* The 1-based order statistic i of sorted[n], i clamped to [1, n]. */
static double order(const double *sorted, size_t n, double i) {
    if (i < 1.0) i = 1.0;
    if (i > (double)n) i = (double)n;
    return sorted[(size_t)i - 1];
}

static void level_of(const double *l, size_t n, double q, fm_risk_mc_level_t *out) {
    double qs = q * (double)n;
    /* k = ceil(qS), with qS that rounding put a hair above an integer taken as that integer. */
    double kd = ceil(qs - 1e-9 * (qs > 1.0 ? qs : 1.0));
    if (kd < 1.0) kd = 1.0;
    size_t k = (size_t)kd;
    double half = 1.96 * sqrt((double)n * q * (1.0 - q));
    out->level = q;
    out->var = l[k - 1];
    out->var_lo = order(l, n, floor(qs - half));
    out->var_hi = order(l, n, ceil(qs + half) + 1.0);
    out->var_std_error = (out->var_hi - out->var_lo) / (2.0 * 1.96);
    double tail = (double)n * (1.0 - q), above = 0.0;
    for (size_t j = k; j < n; j++)
        above += l[j];
    out->es = (above + (kd - qs) * l[k - 1]) / tail;
    /* The tail from the VaR on: its variance, for the standard error of the tail mean. */
    double m = (above + l[k - 1]) / (double)(n - k + 1), v = 0.0;
    for (size_t j = k - 1; j < n; j++)
        v += (l[j] - m) * (l[j] - m);
    v /= (double)(n - k + 1);
    double d = out->es - out->var;
    out->es_std_error = sqrt((v + q * d * d) / tail);
}

int fm_risk_mc_summarise(double *losses, size_t n, const double *levels, size_t nlevels,
                         fm_risk_mc_result_t *out, fm_error_t *err) {
    if (n == 0) return fm_error_set(err, FM_EINVAL, "no scenarios to summarise");
    if (nlevels > FM_RISK_MAX_LEVELS)
        return fm_error_set(err, FM_EINVAL, "at most %d levels", FM_RISK_MAX_LEVELS);
    qsort(losses, n, sizeof *losses, fm_compare_double);
    out->scenarios = n;
    fm_mean_sd(losses, n, &out->mean, &out->sd);
    out->mean_std_error = out->sd / sqrt((double)n);
    out->min = losses[0];
    out->max = losses[n - 1];
    out->nlevels = nlevels;
    for (size_t j = 0; j < nlevels; j++)
        level_of(losses, n, levels[j], &out->levels[j]);
    return FM_OK;
}

int fm_risk_mc_run(const fm_risk_portfolio_t *p, const fm_risk_settings_t *s,
                   const fm_risk_mc_options_t *o, fm_risk_mc_result_t *out, fm_error_t *err) {
    int rc = check_options(s, o, err);
    if (rc) return rc;
    double start = fm_clock_seconds();
    double *losses = malloc(o->scenarios * sizeof *losses);
    if (!losses)
        return fm_error_set(err, FM_ENOMEM, "out of memory for %llu scenarios",
                            (unsigned long long)o->scenarios);
    rc = fm_risk_mc_losses(p, s, o, losses, err);
    if (!rc) rc = fm_risk_mc_summarise(losses, o->scenarios, o->levels, o->nlevels, out, err);
    free(losses);
    if (rc) return rc;
    out->threads = o->threads;
    out->el = 0.0;
    for (size_t i = 0; i < p->n; i++) {
        const fm_risk_exposure_t *e = &p->exposures[i];
        out->el += (e->pd < s->pd_floor ? s->pd_floor : e->pd) * e->lgd * e->ead;
    }
    out->seconds = fm_clock_seconds() - start;
    return FM_OK;
}
