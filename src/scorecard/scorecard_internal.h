/*
 * Internal to the scorecard area: what fitting (fit.c) and reading a scorecard back from a model
 * (model.c) share, so that both compute points and encoded WoE weights the same way.
 */
#ifndef FM_SCORECARD_INTERNAL_H
#define FM_SCORECARD_INTERNAL_H

#include "scorecard/scorecard.h"

/* Sets the points of every bin of f and its min, max and neutral (unseen category) points from
 * f->beta, each bin's WoE, the intercept and the scaling, for a card of nfeatures features. */
void fm_scorecard_points(fm_scorecard_feature_t *f, double intercept, size_t nfeatures,
                         const fm_scorecard_scaling_t *s);

/* The WoE carried by each encoded column of prep column c for feature f, into woe[c->width]:
 * numeric bins in order (the missing bin last); categories by their group; a categorical
 * "_missing" column the missing bin's WoE minus the most frequent category's. f->bin_of must be
 * set for a categorical feature. FM_EFORMAT when the widths do not match. */
int fm_scorecard_block_woe(const fm_scorecard_feature_t *f, const fm_prep_column_t *c, double *woe,
                           fm_error_t *err);

/* Builds f->bin_of (prep category id -> bin) for categorical prep column c. FM_EFORMAT naming
 * the category when one of the prep has no bin, a bin's category is not in the prep or is in
 * two bins, or the missing bin does not match the missing indicator. */
int fm_scorecard_map_categories(fm_scorecard_feature_t *f, const fm_prep_column_t *c,
                                fm_error_t *err);

#endif
