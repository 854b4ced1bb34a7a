/*
 * Internals shared by the files of the explain area: the explainer and workspace objects, the
 * stored "explain" member's keys, and each method's row function (linear.c, ig.c, trees.c,
 * shapley.c), dispatched by explainer.c.
 *
 * Networks are explained through their double-precision parameters (model->net), not the float
 * copy that serves predictions: completeness holds to 1e-12 rather than to float rounding, and the
 * networks are small enough that double precision costs little. Scores therefore agree with the
 * served probabilities to float precision (about 1e-6 in log-odds), not bit for bit.
 */
#ifndef FM_EXPLAIN_INTERNAL_H
#define FM_EXPLAIN_INTERNAL_H

#include "explain/explain.h"

#include <stdint.h>

/* The member of model->info holding what fm_explain_fit stored. */
#define FM_EXPLAIN_MEMBER "explain"

/* Path points (IG) or coalition rows (Shapley) evaluated in one batch. */
#define FM_EXPLAIN_CHUNK 256
/* Most breakpoints an exact piecewise-linear path may have before IG falls back to
 * Gauss-Legendre quadrature (see ig.c). */
#define FM_EXPLAIN_MAX_BREAKPOINTS 16384

/* Index of a baseline in the explainer's arrays (fm_explain_baseline_t values). */
#define FM_EXPLAIN_NBASELINES 2

struct fm_explainer {
    const fm_model_t *model;
    const fm_net_t *net;        /* networks; NULL for trees */
    size_t nf;                  /* encoded width */
    size_t ncols;               /* prep columns */
    size_t nout;                /* outputs with a score: classes for multiclass, else 1 */
    size_t nraw;                /* raw features (prep columns of width > 0), M */
    size_t *raw;                /* [nraw] prep column of each raw feature */
    size_t *column_of;          /* [nf] prep column of each encoded column */
    fm_explain_method_t method; /* resolved default (never AUTO) */
    int steps;
    int approve; /* binary: 0 or 1; else -1 */
    double cutoff;
    double *row[FM_EXPLAIN_NBASELINES]; /* [nf] baseline rows */
    /* Networks: score = score_offset + score_scale * (last layer's pre-activation). */
    double score_offset, score_scale;
    double *base_score[FM_EXPLAIN_NBASELINES]; /* [nout] networks: f(row); trees: group margin */
    /* Trees: a baseline with group_phi subtracts the group's mean TreeSHAP attribution per prep
     * column ([nout * ncols]) and explains against base_score; without it (NULL), XGBoost's bias
     * is the baseline. */
    double *group_phi[FM_EXPLAIN_NBASELINES];
    double *shapley_weight;      /* [nraw] s! (M - s - 1)! / M!; NULL when nraw > SHAPLEY_MAX */
    size_t max_width;            /* widest hidden layer */
    size_t max_breakpoints;      /* exact piecewise path capacity; 0 for smooth networks */
    int gl_n;                    /* Gauss-Legendre nodes precomputed for the default steps */
    double *gl_node, *gl_weight; /* [gl_n] on [0, 1] */
    char **text;                 /* [ncols] reason text of each prep column (owned) */
};

struct fm_explain_workspace {
    const fm_explainer_t *e;
    double *phi_enc; /* [nf] attribution per encoded column */
    double *scores;  /* [nout] */
    /* IG */
    double *alpha, *weight;                 /* [chunk] path positions and quadrature weights */
    double *pre[FM_NET_MAX_LAYERS];         /* [chunk * width_l] hidden pre-activations */
    double *act[FM_NET_MAX_LAYERS];         /* [chunk * width_l] hidden outputs */
    double *grad_a, *grad_b, *dweight;      /* backward buffers */
    double *h0, *g, *direction, *delta_sum; /* first layer along the path */
    double *breaks, *found;                 /* [max_breakpoints] */
    int gl_n;                               /* nodes cached below (0: none) */
    double *gl_node, *gl_weight;            /* [FM_EXPLAIN_MAX_STEPS] */
    /* trees */
    double *contrib; /* [nout * (nf + 1)] */
    /* Shapley */
    double *values;           /* [2^nraw * nout] coalition scores */
    double *coalitions;       /* [chunk * nf] */
    double *coalition_scores; /* [chunk * nout] */
};

/* What one method call needs: the row, the chosen baseline and output, the result. */
typedef struct fm_explain_call {
    const double *x;
    int baseline; /* fm_explain_baseline_t */
    long output;  /* as in the request (may be -1 for multiclass) */
    int steps;    /* nodes for smooth IG */
} fm_explain_call_t;

/* Sums ws->phi_enc into out->phi per prep column. */
void fm_explain_sum_columns(const fm_explainer_t *e, const double *phi_enc, double *phi);

/* The output to explain given the request's (-1: the highest of scores[nout]). */
size_t fm_explain_pick_output(const fm_explainer_t *e, long output, const double *scores);

/* Networks: scores[B * nout] of rows x[B * nf] (double precision, score space). ws buffers. */
void fm_explain_net_scores(const fm_explainer_t *e, fm_explain_workspace_t *ws, const double *x,
                           int B, double *scores);

int fm_explain_linear(const fm_explainer_t *e, fm_explain_workspace_t *ws,
                      const fm_explain_call_t *call, fm_explanation_t *out);
int fm_explain_ig(const fm_explainer_t *e, fm_explain_workspace_t *ws,
                  const fm_explain_call_t *call, fm_explanation_t *out);
int fm_explain_treeshap(const fm_explainer_t *e, fm_explain_workspace_t *ws,
                        const fm_explain_call_t *call, fm_explanation_t *out, fm_error_t *err);
int fm_explain_shapley(const fm_explainer_t *e, fm_explain_workspace_t *ws,
                       const fm_explain_call_t *call, fm_explanation_t *out, fm_error_t *err);

/*
 * Gauss-Legendre quadrature on [0, 1] with n >= 1 nodes: node[n] ascending, weight[n] summing to
 * 1 (Newton's iteration on the Legendre polynomial P_n from Chebyshev starting points).
 */
void fm_explain_gauss_legendre(int n, double *node, double *weight);

/*
 * One layer's sign changes along a path: values[p * width + u] is unit u's pre-activation at
 * path position alpha[p] (p < npoints, ascending), and the layer is linear in alpha between
 * consecutive positions. Appends to found[*nfound] (capacity cap) the position where a unit's
 * value changes strictly from one sign to the other between two positions (linear interpolation).
 * Returns 0, or -1 when cap would be exceeded (found then holds the first cap).
 */
int fm_explain_crossings(const double *alpha, const double *values, size_t npoints, size_t width,
                         double *found, size_t *nfound, size_t cap);

/*
 * Merges found[nfound] (any order; sorted in place) into the ascending breaks[*nbreaks]
 * (capacity cap), dropping values within 1e-12 of a neighbour. Returns 0, or -1 when cap would
 * be exceeded.
 */
int fm_explain_merge_breakpoints(double *breaks, size_t *nbreaks, size_t cap, double *found,
                                 size_t nfound);

/*
 * The reasons' order: of the prep columns columns[ncolumns], the up to k whose phi is strictly
 * toward decline (sign -1: negative values; +1: positive), largest toward decline first, ties by
 * column; column and contribution written to out[], texts left alone. Returns the count.
 */
size_t fm_explain_rank_reasons(const double *phi, const size_t *columns, size_t ncolumns, int sign,
                               size_t k, fm_reason_t *out);

#endif
