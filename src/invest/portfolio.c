/*
 * Long-only portfolios within weight bounds: a small quadratic programme solver over the bounded
 * simplex {sum x = 1, lower <= x_i <= upper}, and on it the minimum-variance portfolio, the
 * least-variance portfolio of a target return, and the maximum-Sharpe portfolio.
 *
 * The solver is an accelerated projected gradient (FISTA with adaptive restart): the projection
 * onto the bounded simplex is a clip of v - tau with tau found by bisection. Every 25 iterations
 * it guesses the active set from the iterate (variables at a bound), solves the KKT system on the
 * free variables exactly, and stops when that point is feasible and its multipliers have the
 * right signs: the exact optimum, reached in a few dozen iterations for the handful of assets of a
 * portfolio (64 assets, the most an analysis takes, need seconds for a frontier). Targets are met
 * through the Lagrangian: the minimiser of 1/2 w'Cw - t mu'w has a return that grows with t, so a
 * target return is a bisection on t, and the efficient frontier is the path t >= 0. Sharpe is
 * unimodal in the target return along that path, which a golden-section search uses.
 */
#include "invest/invest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QP_MAX_ITER   20000
#define QP_CHECK      25
#define KKT_TOLERANCE 1e-11

/* Projects v onto {sum x = 1, lo <= x <= hi} into x (feasible bounds assumed). */
static void project(const double *v, size_t n, double lo, double hi, double *x) {
    double a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < a) a = v[i];
        if (v[i] > b) b = v[i];
    }
    /* sum clip(v - tau) falls as tau grows: n*hi at tau <= min v - hi, n*lo at tau >= max v - lo */
    double tlo = a - hi, thi = b - lo;
    for (int it = 0; it < 200 && thi - tlo > 1e-16 * (1 + fabs(tlo) + fabs(thi)); it++) {
        double tau = 0.5 * (tlo + thi), s = 0;
        for (size_t i = 0; i < n; i++)
            s += fmin(hi, fmax(lo, v[i] - tau));
        if (s > 1)
            tlo = tau;
        else
            thi = tau;
    }
    /* Exact shift over the variables left strictly inside the bounds. */
    double tau = 0.5 * (tlo + thi), fixed = 0, freesum = 0;
    size_t nfree = 0;
    for (size_t i = 0; i < n; i++) {
        double y = v[i] - tau;
        if (y <= lo)
            fixed += lo;
        else if (y >= hi)
            fixed += hi;
        else
            freesum += v[i], nfree++;
    }
    if (nfree) tau = (freesum + fixed - 1) / (double)nfree;
    for (size_t i = 0; i < n; i++)
        x[i] = fmin(hi, fmax(lo, v[i] - tau));
}

static double objective(const double *Q, const double *c, size_t n, const double *x) {
    double f = 0;
    for (size_t i = 0; i < n; i++) {
        double qx = 0;
        for (size_t j = 0; j < n; j++)
            qx += Q[i * n + j] * x[j];
        f += 0.5 * x[i] * qx + (c ? c[i] * x[i] : 0);
    }
    return f;
}

static void gradient(const double *Q, const double *c, size_t n, const double *x, double *g) {
    for (size_t i = 0; i < n; i++) {
        double s = c ? c[i] : 0;
        for (size_t j = 0; j < n; j++)
            s += Q[i * n + j] * x[j];
        g[i] = s;
    }
}

/* Solves A y = b (m x m, row-major, overwritten) by Gaussian elimination with partial pivoting.
 * Returns 0, or -1 when A is singular. */
static int solve_dense(double *A, double *b, size_t m) {
    for (size_t k = 0; k < m; k++) {
        size_t p = k;
        for (size_t i = k + 1; i < m; i++)
            if (fabs(A[i * m + k]) > fabs(A[p * m + k])) p = i;
        if (!(fabs(A[p * m + k]) > 1e-300)) return -1;
        if (p != k) {
            for (size_t j = 0; j < m; j++) {
                double t = A[k * m + j];
                A[k * m + j] = A[p * m + j];
                A[p * m + j] = t;
            }
            double t = b[k];
            b[k] = b[p];
            b[p] = t;
        }
        for (size_t i = k + 1; i < m; i++) {
            double f = A[i * m + k] / A[k * m + k];
            if (f == 0) continue;
            for (size_t j = k; j < m; j++)
                A[i * m + j] -= f * A[k * m + j];
            b[i] -= f * b[k];
        }
    }
    for (size_t k = m; k-- > 0;) {
        double s = b[k];
        for (size_t j = k + 1; j < m; j++)
            s -= A[k * m + j] * b[j];
        b[k] = s / A[k * m + k];
    }
    return 0;
}

/* Workspace of the solver: n*n + (n+1)^2 + 6n doubles and n flags. */
typedef struct qp_work {
    double *A, *rhs, *y, *xp, *g, *v, *cand;
    int *state;  /* -1 at lower, +1 at upper, 0 free */
    size_t *idx; /* the free variables */
} qp_work_t;

/*
 * Guesses the active set from x, solves the equality-constrained problem on the free variables
 * and checks every KKT condition. On success writes the optimum to x and returns 1.
 */
static int polish(const double *Q, const double *c, size_t n, double lo, double hi, double *x,
                  qp_work_t *w) {
    double span = hi - lo, tol = 1e-9 * (span > 0 ? span : 1);
    size_t nf = 0;
    size_t *idx = w->idx;
    double fixed = 0;
    for (size_t i = 0; i < n; i++) {
        w->state[i] = x[i] <= lo + tol ? -1 : (x[i] >= hi - tol ? 1 : 0);
        if (w->state[i])
            fixed += w->state[i] < 0 ? lo : hi;
        else
            idx[nf++] = i;
    }
    size_t m = nf + 1;
    /* [Q_FF 1; 1' 0] [x_F; -nu] = [-c_F - Q_FB x_B; 1 - sum x_B] */
    for (size_t a = 0; a < nf; a++) {
        double r = c ? -c[idx[a]] : 0;
        for (size_t j = 0; j < n; j++)
            if (w->state[j]) r -= Q[idx[a] * n + j] * (w->state[j] < 0 ? lo : hi);
        w->rhs[a] = r;
        for (size_t b = 0; b < nf; b++)
            w->A[a * m + b] = Q[idx[a] * n + idx[b]];
        w->A[a * m + nf] = 1;
        w->A[nf * m + a] = 1;
    }
    w->A[nf * m + nf] = 0;
    w->rhs[nf] = 1 - fixed;
    if (solve_dense(w->A, w->rhs, m)) return 0;
    for (size_t i = 0; i < n; i++)
        w->cand[i] = w->state[i] < 0 ? lo : (w->state[i] > 0 ? hi : 0);
    for (size_t a = 0; a < nf; a++) {
        double xi = w->rhs[a];
        if (xi < lo - 1e-12 || xi > hi + 1e-12) return 0;
        w->cand[idx[a]] = fmin(hi, fmax(lo, xi));
    }
    gradient(Q, c, n, w->cand, w->g);
    double nu = -w->rhs[nf], scale = 1;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(w->g[i]));
    for (size_t i = 0; i < n; i++) {
        double d = w->g[i] - nu;
        if (w->state[i] < 0 && d < -KKT_TOLERANCE * scale) return 0;
        if (w->state[i] > 0 && d > KKT_TOLERANCE * scale) return 0;
    }
    memcpy(x, w->cand, n * sizeof *x);
    return 1;
}

static int bounds_feasible(size_t n, double lo, double hi, fm_error_t *err) {
    if (n == 0) return fm_error_set(err, FM_EINVAL, "no assets");
    if (!(lo <= hi) || !(lo * (double)n <= 1 + 1e-12) || !(hi * (double)n >= 1 - 1e-12))
        return fm_error_set(err, FM_EINVAL,
                            "weight bounds [%g, %g] cannot sum to 1 over %zu assets", lo, hi, n);
    return FM_OK;
}

int fm_invest_qp_simplex(const double *Q, const double *c, size_t n, double lower, double upper,
                         double *x, fm_error_t *err) {
    int rc = bounds_feasible(n, lower, upper, err);
    if (rc) return rc;
    size_t m = n + 1;
    double *mem = malloc((m * m + m + 6 * n) * sizeof *mem);
    int *state = malloc(n * sizeof *state);
    size_t *idx = malloc(n * sizeof *idx);
    if (!mem || !state || !idx) {
        free(mem), free(state), free(idx);
        return fm_error_set(err, FM_ENOMEM, "out of memory for %zu assets", n);
    }
    qp_work_t w = {mem, mem + m * m, NULL, NULL, NULL, NULL, NULL, state, idx};
    w.y = w.rhs + m;
    w.xp = w.y + n;
    w.g = w.xp + n;
    w.v = w.g + n;
    w.cand = w.v + n;
    double *tmp = w.cand + n;
    /* A bound on the largest eigenvalue (Gershgorin) gives the step 1/L. */
    double L = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < n; j++)
            s += fabs(Q[i * n + j]);
        L = fmax(L, s);
    }
    if (!(L > 0)) L = 1;
    int finite = 1;
    for (size_t i = 0; i < n; i++)
        finite &= isfinite(x[i]) != 0;
    for (size_t i = 0; !finite && i < n; i++)
        x[i] = 1.0 / (double)n; /* no usable start: the projection of the centre */
    project(x, n, lower, upper, tmp);
    memcpy(x, tmp, n * sizeof *x);
    memcpy(w.y, x, n * sizeof *x);
    double t = 1, fprev = objective(Q, c, n, x);
    for (int it = 1; it <= QP_MAX_ITER; it++) {
        gradient(Q, c, n, w.y, w.g);
        for (size_t i = 0; i < n; i++)
            w.v[i] = w.y[i] - w.g[i] / L;
        memcpy(w.xp, x, n * sizeof *x);
        project(w.v, n, lower, upper, x);
        double f = objective(Q, c, n, x), change = 0;
        for (size_t i = 0; i < n; i++)
            change = fmax(change, fabs(x[i] - w.xp[i]));
        if (f > fprev) {
            t = 1; /* adaptive restart: momentum that raises the objective is dropped */
            memcpy(w.y, x, n * sizeof *x);
        } else {
            double tn = 0.5 * (1 + sqrt(1 + 4 * t * t));
            for (size_t i = 0; i < n; i++)
                w.y[i] = x[i] + (t - 1) / tn * (x[i] - w.xp[i]);
            t = tn;
        }
        fprev = f;
        if (it % QP_CHECK == 0 || change < 1e-15) {
            memcpy(tmp, x, n * sizeof *x);
            if (polish(Q, c, n, lower, upper, tmp, &w) &&
                objective(Q, c, n, tmp) <= f + 1e-14 * (1 + fabs(f))) {
                memcpy(x, tmp, n * sizeof *x);
                break;
            }
            if (change < 1e-15) break;
        }
    }
    free(mem);
    free(state);
    free(idx);
    return FM_OK;
}

/* ---- Portfolios ---------------------------------------------------------------------------- */

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

int fm_invest_min_variance(const double *cov, size_t n, double lower, double upper, double *w,
                           fm_error_t *err) {
    for (size_t i = 0; i < n; i++)
        w[i] = 1.0 / (double)n;
    return fm_invest_qp_simplex(cov, NULL, n, lower, upper, w, err);
}

/* The largest return mu'w over the bounded simplex: every asset at lower, then the best assets
 * raised to upper in order of their means. */
static double max_return(const double *mu, size_t n, double lo, double hi, double *w) {
    for (size_t i = 0; i < n; i++)
        w[i] = lo;
    double left = 1 - lo * (double)n;
    while (left > 1e-15) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (w[i] < hi && (best == n || mu[i] > mu[best])) best = i;
        if (best == n) break;
        double add = fmin(left, hi - w[best]);
        w[best] += add;
        left -= add;
    }
    return dot(mu, w, n);
}

/* The frontier point of parameter t: the minimiser of 1/2 w'Cw - t mu'w; tmp holds n doubles. */
static int frontier_at(const double *mu, const double *cov, size_t n, double lo, double hi,
                       double t, double *w, double *tmp, fm_error_t *err) {
    for (size_t i = 0; i < n; i++)
        tmp[i] = -t * mu[i];
    return fm_invest_qp_simplex(cov, tmp, n, lo, hi, w, err);
}

/* The least-variance point of return target in (rmin, rmax): a bisection on t (R(t) is
 * continuous and non-decreasing). w holds a warm start; tmp n doubles. */
static int solve_target(const double *mu, const double *cov, size_t n, double lo, double hi,
                        double target, double *w, double *tmp, fm_error_t *err) {
    double tlo = 0, thi = 1;
    int rc = FM_OK;
    for (int k = 0; !rc && k < 200; k++) {
        rc = frontier_at(mu, cov, n, lo, hi, thi, w, tmp, err);
        if (rc || dot(mu, w, n) >= target) break;
        tlo = thi;
        thi *= 2;
    }
    for (int k = 0; !rc && k < 200 && thi - tlo > 1e-15 * thi; k++) {
        double mid = 0.5 * (tlo + thi);
        rc = frontier_at(mu, cov, n, lo, hi, mid, w, tmp, err);
        if (dot(mu, w, n) < target)
            tlo = mid;
        else
            thi = mid;
    }
    if (!rc) rc = frontier_at(mu, cov, n, lo, hi, thi, w, tmp, err);
    return rc;
}

int fm_invest_target_return(const double *mu, const double *cov, size_t n, double lower,
                            double upper, double target, double *w, fm_error_t *err) {
    int rc = bounds_feasible(n, lower, upper, err);
    if (rc) return rc;
    double *tmp = malloc(2 * n * sizeof *tmp);
    if (!tmp) return fm_error_set(err, FM_ENOMEM, "out of memory");
    double *best = tmp + n;
    double rmax = max_return(mu, n, lower, upper, best);
    double scale = 1e-12 * (1 + fabs(rmax));
    rc = fm_invest_min_variance(cov, n, lower, upper, w, err);
    double rmin = rc ? 0 : dot(mu, w, n);
    if (!rc && target > rmax + scale)
        rc =
            fm_error_set(err, FM_ERANGE, "target return %g is above the largest, %g", target, rmax);
    if (!rc && target >= rmax - scale)
        memcpy(w, best, n * sizeof *w);
    else if (!rc && target > rmin + scale)
        rc = solve_target(mu, cov, n, lower, upper, target, w, tmp, err);
    free(tmp);
    return rc;
}

static double sharpe_of(const double *mu, const double *cov, size_t n, const double *w, double rf) {
    double v = 0;
    for (size_t i = 0; i < n; i++)
        v += w[i] * dot(cov + i * n, w, n);
    return v > 0 ? (dot(mu, w, n) - rf) / sqrt(v) : -INFINITY;
}

/* Sharpe of the frontier point of return target (w: warm start, then that point). */
static int sharpe_at(const double *mu, const double *cov, size_t n, double lo, double hi, double rf,
                     double target, double *w, double *tmp, double *out, fm_error_t *err) {
    int rc = solve_target(mu, cov, n, lo, hi, target, w, tmp, err);
    *out = rc ? -INFINITY : sharpe_of(mu, cov, n, w, rf);
    return rc;
}

/*
 * Golden-section search on the target return R between the minimum-variance return and the
 * largest: (R - rf) / sigma(R) is unimodal there because sigma(R) is convex. (Searching on the
 * Lagrange parameter t instead fails: R(t) has flat stretches where the weights sit at a vertex,
 * and ties there send the search either way.)
 */
int fm_invest_max_sharpe(const double *mu, const double *cov, size_t n, double lower, double upper,
                         double rf, double *w, fm_error_t *err) {
    int rc = bounds_feasible(n, lower, upper, err);
    if (rc) return rc;
    double *tmp = malloc(3 * n * sizeof *tmp);
    if (!tmp) return fm_error_set(err, FM_ENOMEM, "out of memory");
    double *best = tmp + n, *mv = tmp + 2 * n;
    double rmax = max_return(mu, n, lower, upper, best);
    rc = fm_invest_min_variance(cov, n, lower, upper, mv, err);
    double rmin = rc ? 0 : dot(mu, mv, n);
    double s_mv = sharpe_of(mu, cov, n, mv, rf), s_max = sharpe_of(mu, cov, n, best, rf);
    double r_best = rmin, s_best = s_mv;
    if (s_max > s_best) r_best = rmax, s_best = s_max;
    if (!rc && rmax - rmin > 1e-12 * (1 + fabs(rmax))) {
        const double g = 0.5 * (sqrt(5.0) - 1);
        double a = rmin, b = rmax, x1 = b - g * (b - a), x2 = a + g * (b - a), f1, f2;
        memcpy(w, mv, n * sizeof *w);
        rc = sharpe_at(mu, cov, n, lower, upper, rf, x1, w, tmp, &f1, err);
        if (!rc) rc = sharpe_at(mu, cov, n, lower, upper, rf, x2, w, tmp, &f2, err);
        for (int k = 0; !rc && k < 200 && b - a > 1e-13 * (1 + fabs(b)); k++) {
            if (f1 < f2) {
                a = x1, x1 = x2, f1 = f2;
                x2 = a + g * (b - a);
                rc = sharpe_at(mu, cov, n, lower, upper, rf, x2, w, tmp, &f2, err);
            } else {
                b = x2, x2 = x1, f2 = f1;
                x1 = b - g * (b - a);
                rc = sharpe_at(mu, cov, n, lower, upper, rf, x1, w, tmp, &f1, err);
            }
        }
        if (!rc && fmax(f1, f2) > s_best) r_best = f1 >= f2 ? x1 : x2, s_best = fmax(f1, f2);
    }
    if (!rc && r_best == rmin)
        memcpy(w, mv, n * sizeof *w);
    else if (!rc && r_best == rmax)
        memcpy(w, best, n * sizeof *w);
    else if (!rc)
        rc = solve_target(mu, cov, n, lower, upper, r_best, w, tmp, err);
    free(tmp);
    return rc;
}
