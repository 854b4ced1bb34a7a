/*
 * Running a search: resolve the target, split the rows, compute Information Value (dropping weak
 * features when asked), fit and measure every candidate on every fold, rank them, refit the best
 * on all training rows, measure it on the test rows, compute permutation importance there, and
 * describe all of it in the refit model's info. Progress is reported as JSON events on the
 * calling thread; a cancel request is honoured between fits.
 */
#include "core/clock.h"
#include "core/json.h"
#include "search/search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One validation split: the rows a candidate learns from and the rows that measure it. */
typedef struct fold {
    size_t *train_rows;
    size_t ntrain;
    size_t *valid_rows;
    size_t nvalid;
    fm_frame_t view; /* the validation rows */
    double *value;   /* regression: their target values */
} fold_t;

typedef struct searcher {
    const fm_frame_t *frame;
    const fm_search_spec_t *spec;
    fm_search_event_fn on_event;
    void *ctx;
    const atomic_int *cancel;
    fm_target_t target;
    search_split_t split;
    search_metric_t metric;
    fold_t *folds;
    const char **drop; /* spec drop + the time column + features under the IV threshold */
    size_t ndrop;
    double *pred; /* scratch for the largest set of rows predicted, times the output width */
    int *label;
    long fits_done, fits_total;
    cJSON *entries;        /* one per candidate tried, in candidate order */
    long refit_iterations; /* epochs / rounds of the refit; 0: it stopped early on its own */
    fm_search_result_t *result;
    double start;
} searcher_t;

static int cancelled(const searcher_t *s) {
    return s->cancel && atomic_load(s->cancel) != 0;
}

/* Sends an event (taking ownership of it) with the progress figures added. */
static void emit(searcher_t *s, cJSON *event) {
    if (!event) return;
    if (s->on_event) {
        double total = s->fits_total > 0 ? (double)s->fits_total : 1.0;
        cJSON_AddNumberToObject(event, "progress", (double)s->fits_done / total);
        cJSON_AddNumberToObject(event, "fits_done", (double)s->fits_done);
        cJSON_AddNumberToObject(event, "fits_total", (double)s->fits_total);
        s->on_event(event, s->ctx);
    }
    cJSON_Delete(event);
}

static cJSON *event_new(const char *type) {
    cJSON *e = cJSON_CreateObject();
    if (e) cJSON_AddStringToObject(e, "type", type);
    return e;
}

/* ---- Preparing ------------------------------------------------------------------------------ */

static int check_columns(const searcher_t *s, fm_error_t *err) {
    const fm_search_spec_t *spec = s->spec;
    for (size_t i = 0; i < spec->ndrop; i++)
        if (fm_frame_find(s->frame, spec->drop[i]) < 0)
            return fm_error_set(err, FM_EINVAL, "drop: column '%s' is not in %s", spec->drop[i],
                                s->frame->source ? s->frame->source : "the data");
    for (size_t i = 0; i < spec->nprotected; i++)
        if (fm_frame_find(s->frame, spec->protected[i]) < 0)
            return fm_error_set(err, FM_EINVAL, "protected: column '%s' is not in %s",
                                spec->protected[i], s -> frame -> source);
    for (size_t i = 0; i < spec->npii; i++)
        if (fm_frame_find(s->frame, spec->pii[i]) < 0)
            return fm_error_set(err, FM_EINVAL, "pii: column '%s' is not in %s", spec->pii[i],
                                s->frame->source ? s->frame->source : "the data");
    return FM_OK;
}

static int add_drop(searcher_t *s, const char *name) {
    for (size_t i = 0; i < s->ndrop; i++)
        if (!strcmp(s->drop[i], name)) return FM_OK;
    s->drop[s->ndrop++] = name;
    return FM_OK;
}

static int make_folds(searcher_t *s, fm_error_t *err) {
    const search_split_t *sp = &s->split;
    size_t n = s->frame->nrows, most = sp->ntest;
    s->folds = calloc((size_t)sp->nfolds, sizeof *s->folds);
    if (!s->folds) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (int f = 0; f < sp->nfolds; f++) {
        fold_t *fold = &s->folds[f];
        fold->train_rows = malloc((sp->ntrain ? sp->ntrain : 1) * sizeof *fold->train_rows);
        fold->valid_rows = malloc((sp->ntrain ? sp->ntrain : 1) * sizeof *fold->valid_rows);
        fold->value = malloc((sp->ntrain ? sp->ntrain : 1) * sizeof *fold->value);
        if (!fold->train_rows || !fold->valid_rows || !fold->value)
            return fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            int32_t part = sp->part[i];
            if (part == f)
                fold->valid_rows[fold->nvalid++] = i;
            else if (part >= 0 || part == FM_SEARCH_ROW_TRAIN)
                fold->train_rows[fold->ntrain++] = i;
        }
        for (size_t i = 0; s->target.value && i < fold->nvalid; i++)
            fold->value[i] = s->target.value[fold->valid_rows[i]];
        int rc = search_view_make(s->frame, fold->valid_rows, fold->nvalid, &fold->view, err);
        if (rc) return rc;
        if (fold->nvalid > most) most = fold->nvalid;
    }
    size_t width = s->target.task == FM_TASK_MULTICLASS ? s->target.nclasses : 1;
    s->pred = malloc((most ? most : 1) * width * sizeof *s->pred);
    s->label = malloc((most ? most : 1) * sizeof *s->label);
    if (!s->pred || !s->label) return fm_error_set(err, FM_ENOMEM, "out of memory");
    return FM_OK;
}

static void free_folds(searcher_t *s) {
    for (int f = 0; s->folds && f < s->split.nfolds; f++) {
        free(s->folds[f].train_rows);
        free(s->folds[f].valid_rows);
        free(s->folds[f].value);
        search_view_free(&s->folds[f].view);
    }
    free(s->folds);
}

/* Information Value on the training rows; marks and drops the features under the threshold. */
static int select_features(searcher_t *s, fm_error_t *err) {
    const fm_search_spec_t *spec = s->spec;
    fm_search_result_t *r = s->result;
    if (s->target.task != FM_TASK_BINARY) {
        if (spec->has_iv_threshold)
            return fm_error_set(err, FM_EINVAL,
                                "iv_threshold: Information Value needs a binary target; '%s' is "
                                "%s",
                                spec->target, fm_task_name(s->target.task));
        r->features = cJSON_CreateArray();
        return r->features ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    const char **skip = malloc((spec->ndrop + spec->npii + spec->nprotected + 1) * sizeof *skip);
    if (!skip) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t nskip = 0;
    for (size_t i = 0; i < s->ndrop; i++)
        skip[nskip++] = s->drop[i];
    for (size_t i = 0; i < spec->npii; i++)
        skip[nskip++] = spec->pii[i];
    /* Protected attributes are no features: no Information Value either. */
    for (size_t i = 0; i < spec->nprotected; i++)
        skip[nskip++] = spec->protected[i];
    int rc = fm_search_information_value(s->frame, spec->target, s->target.classes[1],
                                         s->split.train_rows, s->split.ntrain, skip, nskip,
                                         &r->features, err);
    free(skip);
    if (rc) return rc;
    size_t kept = 0, features = 0;
    cJSON *dropped = cJSON_CreateArray();
    for (cJSON *f = r->features->child; f; f = f->next) {
        features++;
        const char *name = cJSON_GetObjectItem(f, "feature")->valuestring;
        double iv = cJSON_GetObjectItem(f, "iv")->valuedouble;
        int drop = spec->has_iv_threshold && iv < spec->iv_threshold;
        cJSON_AddBoolToObject(f, "dropped", drop);
        if (drop) {
            add_drop(s, name);
            cJSON_AddItemToArray(dropped, cJSON_CreateString(name));
        } else {
            kept++;
        }
    }
    /* PII columns are features too, though no IV is shown for them. */
    kept += spec->npii;
    cJSON *e = event_new("features_done");
    cJSON_AddNumberToObject(e, "features", (double)features);
    cJSON_AddItemToObject(e, "dropped", dropped);
    emit(s, e);
    if (spec->has_iv_threshold && kept == 0 && features > 0)
        return fm_error_set(
            err, FM_EDATA, "iv_threshold: %g drops every feature (the highest IV is %g)",
            spec->iv_threshold,
            features ? cJSON_GetObjectItem(r->features->child, "iv")->valuedouble : 0.0);
    return FM_OK;
}

/* ---- Candidates ---------------------------------------------------------------------------- */

static void base_options(const searcher_t *s, const search_point_t *p, fm_train_options_t *o) {
    fm_train_options_defaults(o);
    o->target = s->spec->target;
    o->positive = s->target.task == FM_TASK_BINARY ? s->target.classes[1] : NULL;
    o->task = (int)s->target.task;
    o->patience = s->spec->patience;
    o->valid_fraction = s->spec->early_valid_fraction;
    o->seed = s->spec->search_seed;
    o->threads = s->spec->threads;
    o->drop = s->drop;
    o->ndrop = s->ndrop;
    o->pii = (const char *const *)s->spec->pii;
    o->npii = s->spec->npii;
    o->protected = s->spec->protected_attrs;
    o->nprotected = s->spec->nprotected;
    o->progress = NULL;
    search_point_to_options(p, s->target.task, o);
}

/* Predicts the view with model and scores it; NaN metric when undefined. */
static int measure(searcher_t *s, const fm_model_t *model, const fm_frame_t *view,
                   const size_t *rows, const double *value, double *metric, double *seconds,
                   fm_error_t *err) {
    int rc = search_labels_for_model(model, &s->target, rows, view->nrows, s->label, err);
    if (rc) return rc;
    double t0 = fm_clock_seconds();
    rc = fm_model_predict_frame(model, view, s->pred, err);
    *seconds = fm_clock_seconds() - t0;
    if (rc) return rc;
    *metric = search_metric_value(s->metric, model, s->pred, s->label, value, view->nrows);
    return FM_OK;
}

/* The number of epochs (networks) or rounds (trees) a fitted model kept after early stopping,
 * from its training description; NaN when it does not say. */
static double best_iterations(const fm_model_t *model) {
    const cJSON *t = cJSON_GetObjectItem(model->info, "training");
    const cJSON *best = cJSON_GetObjectItem(t, "best_epoch");
    if (!cJSON_IsNumber(best)) best = cJSON_GetObjectItem(t, "best_round");
    return cJSON_IsNumber(best) && best->valuedouble >= 1 ? best->valuedouble : NAN;
}

/* Fits and measures candidate index on every fold; appends its entry to s->entries. Returns
 * FM_OK when the candidate was measured or failed on its own, FM_ECANCELED or FM_ENOMEM when
 * the search must stop. */
static int run_candidate(searcher_t *s, size_t index, fm_error_t *err) {
    const search_point_t *p = &s->spec->candidates[index];
    int nfolds = s->split.nfolds;
    const char *family = search_point_family(p, s->target.task);
    cJSON *e = event_new("candidate_started");
    cJSON_AddNumberToObject(e, "index", (double)index);
    cJSON_AddItemToObject(e, "params", search_point_to_json(p, family));
    emit(s, e);

    double metrics[SEARCH_MAX_FOLDS];
    double train_s = 0.0, predict_us = 0.0, iterations = 0.0;
    fm_error_t fail;
    fm_error_clear(&fail);
    int done = 0;
    for (int f = 0; f < nfolds; f++) {
        if (cancelled(s)) return fm_error_set(err, FM_ECANCELED, "search cancelled");
        fold_t *fold = &s->folds[f];
        fm_train_options_t o;
        base_options(s, p, &o);
        o.rows = fold->train_rows;
        o.nrows = fold->ntrain;
        fm_model_t *model = NULL;
        double t0 = fm_clock_seconds();
        int rc = fm_train(s->frame, &o, &model, &fail);
        double fit_s = fm_clock_seconds() - t0, predict_s = 0.0;
        if (!rc)
            rc = measure(s, model, &fold->view, fold->valid_rows, fold->value, &metrics[f],
                         &predict_s, &fail);
        if (!rc) iterations += best_iterations(model) / nfolds;
        fm_model_free(model);
        if (rc == FM_ENOMEM) return fm_error_set(err, rc, "%s", fm_error_message(&fail));
        if (!rc && !isfinite(metrics[f]))
            rc = fm_error_set(&fail, FM_EDATA, "%s is undefined on fold %d",
                              search_metric_name(s->metric), f + 1);
        if (rc) {
            fm_error_prefix(&fail, "fold %d: ", f + 1);
            s->fits_done += nfolds - f;
            break;
        }
        train_s += fit_s;
        predict_us += fold->nvalid ? predict_s / (double)fold->nvalid * 1e6 : 0.0;
        done++;
        s->fits_done++;
        e = event_new("fold_done");
        cJSON_AddNumberToObject(e, "index", (double)index);
        cJSON_AddNumberToObject(e, "fold", f);
        cJSON_AddNumberToObject(e, "folds", nfolds);
        fm_json_add_number(e, "metric", metrics[f]);
        cJSON_AddNumberToObject(e, "train_seconds", fit_s);
        emit(s, e);
    }

    cJSON *entry = cJSON_CreateObject();
    if (!entry) return fm_error_set(err, FM_ENOMEM, "out of memory");
    cJSON_AddNumberToObject(entry, "index", (double)index);
    cJSON_AddItemToObject(entry, "params", search_point_to_json(p, family));
    cJSON_AddStringToObject(entry, "metric", search_metric_name(s->metric));
    e = event_new("candidate_done");
    cJSON_AddNumberToObject(e, "index", (double)index);
    if (done == nfolds) {
        double mean = 0.0, var = 0.0;
        for (int f = 0; f < nfolds; f++)
            mean += metrics[f] / nfolds;
        for (int f = 0; f < nfolds; f++)
            var += (metrics[f] - mean) * (metrics[f] - mean) / nfolds;
        cJSON_AddStringToObject(entry, "status", "ok");
        fm_json_add_number(entry, "mean", mean);
        fm_json_add_number(entry, "std", sqrt(var));
        cJSON_AddItemToObject(entry, "folds", fm_json_double_array(metrics, (size_t)nfolds));
        fm_json_add_number(entry, "train_seconds", train_s / nfolds);
        fm_json_add_number(entry, "predict_us_per_row", predict_us / nfolds);
        fm_json_add_number(entry, "best_iterations", iterations);
        cJSON_AddStringToObject(e, "status", "ok");
        cJSON_AddStringToObject(e, "metric", search_metric_name(s->metric));
        fm_json_add_number(e, "mean", mean);
        fm_json_add_number(e, "std", sqrt(var));
        fm_json_add_number(e, "train_seconds", train_s / nfolds);
        fm_json_add_number(e, "predict_us_per_row", predict_us / nfolds);
    } else {
        cJSON_AddStringToObject(entry, "status", "failed");
        cJSON_AddStringToObject(entry, "error", fm_error_message(&fail));
        cJSON_AddStringToObject(e, "status", "failed");
        cJSON_AddStringToObject(e, "error", fm_error_message(&fail));
    }
    cJSON_AddItemToArray(s->entries, entry);
    emit(s, e);
    return FM_OK;
}

/* ---- Ranking ------------------------------------------------------------------------------- */

typedef struct ranked {
    cJSON *entry;
    int ok;
    double mean, std;
    long index;
    int higher_better;
    int complexity; /* 0: the task's linear model; 1: mlp, gbt */
} ranked_t;

static int compare_ranked(const void *a, const void *b) {
    const ranked_t *x = a, *y = b;
    if (x->ok != y->ok) return y->ok - x->ok;
    if (x->ok && x->mean != y->mean)
        return (x->higher_better ? x->mean > y->mean : x->mean < y->mean) ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Builds the leaderboard from the entries (best first) and returns the winner's index or -1. */
static long rank_candidates(searcher_t *s, fm_error_t *err) {
    size_t n = (size_t)cJSON_GetArraySize(s->entries);
    ranked_t *r = calloc(n ? n : 1, sizeof *r);
    cJSON *board = cJSON_CreateArray();
    if (!r || !board) {
        free(r);
        cJSON_Delete(board);
        fm_error_set(err, FM_ENOMEM, "out of memory");
        return -2;
    }
    size_t i = 0;
    for (cJSON *e = s->entries->child; e; e = e->next, i++) {
        const cJSON *mean = cJSON_GetObjectItem(e, "mean");
        r[i].entry = e;
        r[i].ok = !strcmp(cJSON_GetObjectItem(e, "status")->valuestring, "ok");
        r[i].mean = cJSON_IsNumber(mean) ? mean->valuedouble : NAN;
        r[i].std = r[i].ok ? cJSON_GetObjectItem(e, "std")->valuedouble : NAN;
        r[i].index = (long)cJSON_GetObjectItem(e, "index")->valuedouble;
        r[i].higher_better = search_metric_higher_is_better(s->metric);
        const char *family = s->spec->candidates[r[i].index].family;
        r[i].complexity = strcmp(family, "mlp") != 0 && strcmp(family, "gbt") != 0 ? 0 : 1;
    }
    qsort(r, n, sizeof *r, compare_ranked);
    size_t chosen = 0;
    if (n && r[0].ok && s->spec->selection == SELECTION_ONE_SE) {
        /* The one-standard-error rule: the simplest candidate whose mean is within one standard
         * error of the best's, the best mean among equally simple ones. */
        double se = r[0].std / sqrt((double)s->split.nfolds);
        for (i = 1; i < n && r[i].ok; i++) {
            int within =
                r[i].higher_better ? r[i].mean >= r[0].mean - se : r[i].mean <= r[0].mean + se;
            if (within && r[i].complexity < r[chosen].complexity) chosen = i;
        }
    }
    long best = n && r[0].ok ? r[chosen].index : -1;
    for (i = 0; i < n; i++) {
        cJSON *copy = cJSON_Duplicate(r[i].entry, 1);
        if (!copy) continue;
        if (r[i].ok)
            cJSON_AddNumberToObject(copy, "rank", (double)(i + 1));
        else
            cJSON_AddNullToObject(copy, "rank");
        cJSON_AddBoolToObject(copy, "selected", best >= 0 && i == chosen);
        cJSON_AddItemToArray(board, copy);
    }
    free(r);
    cJSON_Delete(s->result->leaderboard);
    s->result->leaderboard = board;
    return best;
}

/* ---- Refit and test ------------------------------------------------------------------------- */

static int test_refit(searcher_t *s, fm_model_t *model, fm_error_t *err) {
    fm_search_result_t *r = s->result;
    size_t n = s->split.ntest;
    if (n == 0) {
        r->test_metrics = cJSON_CreateNull();
        r->importance = cJSON_CreateNull();
        return FM_OK;
    }
    fm_frame_t view;
    double *value = malloc(n * sizeof *value);
    int *label = malloc(n * sizeof *label);
    size_t width = fm_model_output_width(model);
    double *pred = malloc(n * width * sizeof *pred);
    int rc = value && label && pred ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    memset(&view, 0, sizeof view);
    if (!rc) rc = search_view_make(s->frame, s->split.test_rows, n, &view, err);
    if (!rc) rc = search_labels_for_model(model, &s->target, s->split.test_rows, n, label, err);
    for (size_t i = 0; !rc && s->target.value && i < n; i++)
        value[i] = s->target.value[s->split.test_rows[i]];
    if (!rc) rc = fm_model_predict_frame(model, &view, pred, err);
    if (!rc) {
        r->test_metrics = search_metric_report(s->metric, model, pred, label, value, n);
        if (!r->test_metrics) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc && s->spec->importance_repeats > 0) {
        if (cancelled(s)) rc = fm_error_set(err, FM_ECANCELED, "search cancelled");
        if (!rc)
            rc = search_importance(model, &view, label, value, s->metric,
                                   s->spec->importance_repeats, s->spec->validation_seed,
                                   &r->importance, err);
    } else if (!rc) {
        r->importance = cJSON_CreateNull();
    }
    search_view_free(&view);
    free(value);
    free(label);
    free(pred);
    return rc;
}

static cJSON *validation_json(const searcher_t *s) {
    static const char *const schemes[] = {"kfold", "holdout", "time"};
    static const char *const described[] = {"stratified k-fold", "stratified holdout",
                                            "out of time"};
    const fm_search_spec_t *spec = s->spec;
    cJSON *v = cJSON_CreateObject();
    if (!v) return NULL;
    cJSON_AddStringToObject(v, "scheme", schemes[spec->scheme]);
    cJSON_AddStringToObject(v, "description",
                            spec->scheme != SCHEME_TIME && s->target.task == FM_TASK_REGRESSION
                                ? (spec->scheme == SCHEME_KFOLD ? "k-fold" : "random holdout")
                                : described[spec->scheme]);
    cJSON_AddNumberToObject(v, "folds", s->split.nfolds);
    cJSON_AddNumberToObject(v, "holdout", spec->holdout);
    if (spec->scheme != SCHEME_KFOLD)
        cJSON_AddNumberToObject(v, "valid_fraction", spec->valid_fraction);
    if (spec->time_column)
        cJSON_AddStringToObject(v, "time_column", spec->time_column);
    else
        cJSON_AddNullToObject(v, "time_column");
    cJSON_AddNumberToObject(v, "seed", (double)spec->validation_seed);
    cJSON_AddStringToObject(v, "metric", search_metric_name(s->metric));
    cJSON_AddStringToObject(v, "selection",
                            spec->selection == SELECTION_ONE_SE ? "one_se" : "best");
    cJSON *rows = cJSON_AddObjectToObject(v, "rows");
    cJSON_AddNumberToObject(rows, "train", (double)s->split.ntrain);
    cJSON_AddNumberToObject(rows, "test", (double)s->split.ntest);
    cJSON_AddNumberToObject(rows, "unused", (double)s->split.unused);
    return v;
}

/* Adds the "search" description to the refit model's info. */
static int describe(searcher_t *s, fm_model_t *model, long best, fm_error_t *err) {
    fm_search_result_t *r = s->result;
    cJSON *d = cJSON_CreateObject();
    if (!d) return fm_error_set(err, FM_ENOMEM, "out of memory");
    const search_point_t *p = &s->spec->candidates[best];
    cJSON_AddItemToObject(d, "validation", cJSON_Duplicate(r->validation, 1));
    cJSON_AddStringToObject(d, "metric", search_metric_name(s->metric));
    cJSON_AddNumberToObject(d, "best", (double)best);
    cJSON_AddItemToObject(d, "params",
                          search_point_to_json(p, search_point_family(p, s->target.task)));
    cJSON *refit = cJSON_AddObjectToObject(d, "refit");
    cJSON_AddNumberToObject(refit, "rows", (double)s->split.ntrain);
    if (s->refit_iterations > 0)
        cJSON_AddNumberToObject(refit, "iterations", (double)s->refit_iterations);
    cJSON_AddStringToObject(refit, "stopping",
                            s->refit_iterations > 0 ? "mean best iteration of the folds"
                                                    : "early stopping on a held-out share");
    cJSON_AddItemToObject(d, "leaderboard", cJSON_Duplicate(r->leaderboard, 1));
    cJSON_AddItemToObject(d, "test_metrics", cJSON_Duplicate(r->test_metrics, 1));
    cJSON_AddItemToObject(d, "information_value", cJSON_Duplicate(r->features, 1));
    cJSON_AddItemToObject(d, "permutation_importance", cJSON_Duplicate(r->importance, 1));
    cJSON_AddItemToObject(d, "spec", fm_search_spec_to_json(s->spec));
    cJSON_AddNumberToObject(d, "candidates", (double)s->spec->ncandidates);
    cJSON_AddNumberToObject(d, "seconds", fm_clock_seconds() - s->start);
    cJSON_DeleteItemFromObject(model->info, "search");
    cJSON_AddItemToObject(model->info, "search", d);
    return FM_OK;
}

static int refit(searcher_t *s, long best, fm_error_t *err) {
    const search_point_t *p = &s->spec->candidates[best];
    if (cancelled(s)) return fm_error_set(err, FM_ECANCELED, "search cancelled");
    fm_train_options_t o;
    base_options(s, p, &o);
    o.rows = s->split.train_rows;
    o.nrows = s->split.ntrain;
    /* Early stopping already chose how long to train, once per fold: the refit learns from every
     * training row for that many epochs (rounds) instead of holding some out to stop again. */
    const cJSON *entry = NULL;
    for (const cJSON *it = s->result->leaderboard->child; it && !entry; it = it->next)
        if ((long)cJSON_GetObjectItem(it, "index")->valuedouble == best) entry = it;
    const cJSON *iterations = cJSON_GetObjectItem(entry, "best_iterations");
    long rounds = 0;
    if (cJSON_IsNumber(iterations) && o.valid_fraction > 0) {
        rounds = lround(iterations->valuedouble);
        if (rounds < 1) rounds = 1;
        o.valid_fraction = 0.0;
        o.epochs = (int)rounds;
        o.gbt.rounds = (int)rounds;
        o.gbt.early_stopping = 0;
    }
    s->refit_iterations = rounds;
    cJSON *e = event_new("refit_started");
    cJSON_AddNumberToObject(e, "index", (double)best);
    cJSON_AddItemToObject(e, "params",
                          search_point_to_json(p, search_point_family(p, s->target.task)));
    cJSON_AddNumberToObject(e, "rows", (double)s->split.ntrain);
    if (rounds > 0) cJSON_AddNumberToObject(e, "iterations", (double)rounds);
    emit(s, e);
    /* The chosen model is the one a bank keeps: it gets its explanation baselines and global
     * explanations like any trained model. */
    o.governance = 1;
    fm_model_t *model = NULL;
    int rc = fm_train(s->frame, &o, &model, err);
    if (rc) return fm_error_prefix(err, "refit of candidate %ld: ", best);
    s->fits_done++;
    rc = test_refit(s, model, err);
    if (!rc) rc = describe(s, model, best, err);
    if (rc) {
        fm_model_free(model);
        return rc;
    }
    s->result->model = model;
    return FM_OK;
}

/* ---- The search ------------------------------------------------------------------------------ */

static int prepare(searcher_t *s, fm_error_t *err) {
    const fm_search_spec_t *spec = s->spec;
    int rc =
        search_target_resolve(s->frame, spec->target, spec->task, spec->positive, &s->target, err);
    if (rc) return rc;
    s->metric =
        spec->metric == METRIC_DEFAULT ? search_metric_default(s->target.task) : spec->metric;
    if (!search_metric_fits(s->metric, s->target.task))
        return fm_error_set(err, FM_EINVAL, "metric: '%s' does not apply to %s target '%s'",
                            search_metric_name(s->metric),
                            s->target.task == FM_TASK_BINARY       ? "binary"
                            : s->target.task == FM_TASK_MULTICLASS ? "multiclass"
                                                                   : "regression",
                            spec->target);
    if ((rc = check_columns(s, err))) return rc;
    if ((rc = search_split_make(s->frame, spec, &s->target, &s->split, err))) return rc;
    s->drop = malloc((spec->ndrop + s->frame->ncols + 1) * sizeof *s->drop);
    if (!s->drop) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < spec->ndrop; i++)
        add_drop(s, spec->drop[i]);
    if (spec->time_column) add_drop(s, spec->time_column);
    s->fits_total = (long)(spec->ncandidates * (size_t)s->split.nfolds) + 1;
    s->result->validation = validation_json(s);
    if (!s->result->validation) return fm_error_set(err, FM_ENOMEM, "out of memory");
    if ((rc = select_features(s, err))) return rc;
    return make_folds(s, err);
}

static int search(searcher_t *s, fm_error_t *err) {
    int rc = prepare(s, err);
    if (rc) return rc;
    s->entries = cJSON_CreateArray();
    if (!s->entries) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; c < s->spec->ncandidates && !rc; c++)
        rc = run_candidate(s, c, err);
    long best = rank_candidates(s, err);
    if (best == -2) return FM_ENOMEM;
    s->result->best = best;
    if (rc) return rc; /* cancelled after some candidates: the leaderboard so far stands */
    if (best < 0) {
        const cJSON *first = s->entries->child;
        const cJSON *why = first ? cJSON_GetObjectItem(first, "error") : NULL;
        return fm_error_set(err, FM_EDATA, "every candidate failed; candidate 0: %s",
                            cJSON_IsString(why) ? why->valuestring : "no candidates");
    }
    if ((rc = refit(s, best, err))) return rc;
    cJSON *e = event_new("done");
    cJSON_AddNumberToObject(e, "best", (double)best);
    cJSON_AddItemToObject(e, "test_metrics", cJSON_Duplicate(s->result->test_metrics, 1));
    cJSON_AddNumberToObject(e, "seconds", fm_clock_seconds() - s->start);
    emit(s, e);
    return FM_OK;
}

int fm_search_run(const fm_frame_t *frame, const fm_search_spec_t *spec,
                  fm_search_event_fn on_event, void *ctx, const atomic_int *cancel,
                  fm_search_result_t **out, fm_error_t *err) {
    *out = NULL;
    searcher_t s;
    memset(&s, 0, sizeof s);
    s.frame = frame;
    s.spec = spec;
    s.on_event = on_event;
    s.ctx = ctx;
    s.cancel = cancel;
    s.start = fm_clock_seconds();
    s.result = calloc(1, sizeof *s.result);
    if (!s.result) return fm_error_set(err, FM_ENOMEM, "out of memory");
    s.result->best = -1;
    int rc = search(&s, err);
    s.result->seconds = fm_clock_seconds() - s.start;
    /* After candidates were tried, a cancel or a search where all failed still has a leaderboard
     * worth showing. */
    int keep = rc == FM_OK || ((rc == FM_ECANCELED || rc == FM_EDATA) && s.result->leaderboard);
    if (keep) {
        if (!s.result->test_metrics) s.result->test_metrics = cJSON_CreateNull();
        if (!s.result->importance) s.result->importance = cJSON_CreateNull();
        *out = s.result;
    } else {
        fm_search_result_free(s.result);
    }
    cJSON_Delete(s.entries);
    free(s.drop);
    free(s.pred);
    free(s.label);
    free_folds(&s);
    search_split_deinit(&s.split);
    fm_target_deinit(&s.target);
    return rc;
}

void fm_search_result_free(fm_search_result_t *r) {
    if (!r) return;
    cJSON_Delete(r->leaderboard);
    fm_model_free(r->model);
    cJSON_Delete(r->test_metrics);
    cJSON_Delete(r->validation);
    cJSON_Delete(r->features);
    cJSON_Delete(r->importance);
    free(r);
}
