/*
 * The trainer: fm_train() turns a frame into a model. Steps, in order: resolve the target, choose
 * the feature columns, split off a stratified validation set, fit preprocessing on the training
 * rows, encode both sets, then fit the family: for a network, build it and run mini-batch
 * optimisation with early stopping on validation loss (best weights restored); for "gbt", boost
 * trees through the gbt area with early stopping on the same validation rows (best round kept).
 * Last, describe the result: settings, history, validation metrics, data fingerprint.
 */
#include "train/train.h"
#include "train/train_internal.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/progress.h"
#include "eval/metrics.h"
#include "train/target.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fm_train_options_defaults(fm_train_options_t *o) {
    memset(o, 0, sizeof *o);
    o->task = -1;
    o->hidden[0] = 32;
    o->hidden[1] = 16;
    o->nhidden = 2;
    o->activation = FM_ACT_RELU;
    o->optimizer = fm_optimizer_defaults(FM_OPT_ADAM);
    o->epochs = 200;
    o->batch = 32;
    o->patience = 10;
    o->l2 = 1e-4;
    o->valid_fraction = 0.2;
    o->seed = 42;
    o->threads = 1;
    o->class_weight = FM_CLASS_WEIGHT_NONE;
    o->gbt.rounds = 300;
    o->gbt.max_depth = 4;
    o->gbt.eta = 0.05;
    o->gbt.subsample = 0.8;
    o->gbt.colsample = 0.8;
    o->gbt.min_child_weight = 1.0;
    o->gbt.lambda = 1.0;
    o->gbt.alpha = 0.0;
    o->gbt.early_stopping = 30;
    fm_explain_fit_options_defaults(&o->explain);
    fm_importance_options_defaults(&o->importance);
}

/* Encoded rows with their targets and weights. */
typedef struct dataset {
    size_t n;
    double *x;     /* n * nfeatures */
    double *y;     /* n * width: 0/1, one-hot, or standardised value */
    double *w;     /* n sample weights, or NULL */
    int *label;    /* classification: class index per row (for metrics) */
    double *value; /* regression: raw target per row (for metrics) */
} dataset_t;

static void dataset_free(dataset_t *d) {
    free(d->x);
    free(d->y);
    free(d->w);
    free(d->label);
    free(d->value);
    memset(d, 0, sizeof *d);
}

/* Everything one training run works with. */
typedef struct run {
    const fm_frame_t *frame;
    const fm_train_options_t *opt;
    fm_target_t target;
    const char *family;
    size_t *feature_cols;
    size_t nfeature_cols;
    int weight_col;
    size_t *train_rows, *valid_rows;
    size_t ntrain, nvalid;
    double class_weight[1024];
    int use_class_weight;
    double target_mean, target_std;
    double *row_weight; /* reweighing: per frame row, or NULL */
    fm_model_t *model;
    dataset_t train, valid;
    size_t width; /* outputs per row */
} run_t;

const char *fm_train_default_family(fm_task_t task) {
    switch (task) {
    case FM_TASK_BINARY:
        return "logistic";
    case FM_TASK_MULTICLASS:
        return "softmax";
    case FM_TASK_REGRESSION:
        return "linear";
    }
    return "mlp";
}

static int check_family(const char *family, fm_task_t task, fm_error_t *err) {
    if (!strcmp(family, "mlp") || !strcmp(family, "gbt")) return FM_OK;
    const char *wanted = fm_train_default_family(task);
    if (!strcmp(family, "logistic") || !strcmp(family, "linear") || !strcmp(family, "softmax")) {
        if (!strcmp(family, wanted)) return FM_OK;
        return fm_error_set(err, FM_EINVAL,
                            "model '%s' does not fit a %s target (use '%s', 'mlp' or 'gbt')",
                            family, fm_task_name(task), wanted);
    }
    return fm_error_set(err, FM_EINVAL, "unknown model '%s' (logistic, linear, softmax, mlp, gbt)",
                        family);
}

static int choose_columns(run_t *r, size_t target_col, fm_error_t *err) {
    const fm_frame_t *f = r->frame;
    const fm_train_options_t *o = r->opt;
    for (size_t d = 0; d < o->ndrop; d++)
        if (fm_frame_find(f, o->drop[d]) < 0)
            return fm_error_set(err, FM_EINVAL, "column '%s' to drop is not in %s", o->drop[d],
                                f->source);
    /* Checked before any work: the model's output cannot be masked like an input. */
    for (size_t i = 0; i < o->npii; i++)
        if (o->pii[i] && !strcmp(o->pii[i], o->target))
            return fm_error_set(err, FM_EINVAL,
                                "PII column '%s' is the target; only feature columns can be "
                                "marked as personal data",
                                o->pii[i]);
    for (size_t p = 0; p < o->nprotected; p++) {
        const char *name = o->protected[p].name ? o->protected[p].name : "";
        if (fm_frame_find(f, name) < 0)
            return fm_error_set(err, FM_EINVAL, "protected column '%s' is not in %s", name,
                                f->source);
        if (!strcmp(name, o->target))
            return fm_error_set(err, FM_EINVAL, "protected column '%s' is the target column", name);
        if (o->weight_column && !strcmp(name, o->weight_column))
            return fm_error_set(err, FM_EINVAL, "protected column '%s' is the weight column", name);
    }
    r->weight_col = -1;
    if (o->weight_column) {
        r->weight_col = fm_frame_find(f, o->weight_column);
        if (r->weight_col < 0)
            return fm_error_set(err, FM_EINVAL, "weight column '%s' is not in %s", o->weight_column,
                                f->source);
        if (f->columns[r->weight_col].type != FM_COLUMN_NUMERIC)
            return fm_error_set(err, FM_EDATA, "weight column '%s' is not numeric",
                                o->weight_column);
    }
    r->feature_cols = malloc(f->ncols * sizeof *r->feature_cols);
    if (!r->feature_cols) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; c < f->ncols; c++) {
        if (c == target_col || (int)c == r->weight_col) continue;
        int dropped = 0;
        for (size_t d = 0; d < o->ndrop; d++)
            dropped |= !strcmp(o->drop[d], f->columns[c].name);
        for (size_t p = 0; p < o->nprotected; p++)
            dropped |= !strcmp(o->protected[p].name, f->columns[c].name);
        if (!dropped) r->feature_cols[r->nfeature_cols++] = c;
    }
    if (r->nfeature_cols == 0)
        return fm_error_set(err, FM_EINVAL, "no feature columns left in %s besides target '%s'",
                            f->source, o->target);
    return FM_OK;
}

/* Marks the PII columns in the fitted preprocessing; an error says why a name is no feature. */
static int mark_pii(run_t *r, fm_error_t *err) {
    const fm_train_options_t *o = r->opt;
    const fm_frame_t *f = r->frame;
    for (size_t i = 0; i < o->npii; i++) {
        const char *name = o->pii[i] ? o->pii[i] : "";
        if (fm_prep_find(r->model->prep, name) >= 0) continue;
        if (fm_frame_find(f, name) < 0)
            return fm_error_set(err, FM_EINVAL, "PII column '%s' is not in %s", name, f->source);
        return fm_error_set(
            err, FM_EINVAL, "PII column '%s' is not a feature column (it is %s)", name,
            o->weight_column && !strcmp(name, o->weight_column) ? "the weight column" : "dropped");
    }
    return fm_prep_mark_pii(r->model->prep, o->pii, o->npii, err);
}

/* Splits the rows that have a target into training and validation rows. */
static int split_rows(run_t *r, fm_rng_t *rng, fm_error_t *err) {
    size_t n = r->frame->nrows;
    int32_t *strata = malloc((n ? n : 1) * sizeof *strata);
    unsigned char *chosen = r->opt->rows ? calloc(n ? n : 1, 1) : NULL;
    if (!strata || (r->opt->rows && !chosen)) {
        free(strata);
        free(chosen);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; chosen && i < r->opt->nrows; i++) {
        if (r->opt->rows[i] >= n) {
            free(strata);
            free(chosen);
            return fm_error_set(err, FM_EINVAL, "training row %zu is outside %s (%zu rows)",
                                r->opt->rows[i], r->frame->source, n);
        }
        chosen[r->opt->rows[i]] = 1;
    }
    int groups = 1;
    /* A row outside options.rows is left out of both parts, as is one without a target. */
    for (size_t i = 0; i < n; i++)
        strata[i] = chosen && !chosen[i] ? -1 : r->target.label[i];
    free(chosen);
    if (r->target.task != FM_TASK_REGRESSION) groups = (int)r->target.nclasses;
    int rc = fm_split_stratified(strata, n, groups, r->opt->valid_fraction, rng, &r->train_rows,
                                 &r->ntrain, &r->valid_rows, &r->nvalid, err);
    free(strata);
    if (rc) return rc;
    if (r->ntrain < 2)
        return fm_error_set(err, FM_EDATA, "%s has too few rows with a target to train on (%zu)",
                            r->frame->source, r->ntrain);
    if (r->opt->valid_fraction > 0 && r->nvalid == 0)
        return fm_error_set(err, FM_EDATA,
                            "%s has too few rows to hold out a validation set; use "
                            "--valid-fraction 0",
                            r->frame->source);
    return FM_OK;
}

static void compute_class_weights(run_t *r) {
    if (r->opt->class_weight != FM_CLASS_WEIGHT_BALANCED || r->target.task == FM_TASK_REGRESSION)
        return;
    size_t k = r->target.nclasses;
    double counts[1024] = {0};
    for (size_t i = 0; i < r->ntrain; i++)
        counts[r->target.label[r->train_rows[i]]] += 1.0;
    for (size_t c = 0; c < k; c++)
        r->class_weight[c] = counts[c] > 0 ? (double)r->ntrain / ((double)k * counts[c]) : 0.0;
    r->use_class_weight = 1;
}

static void compute_target_scaling(run_t *r) {
    r->target_mean = 0.0;
    r->target_std = 1.0;
    if (r->target.task != FM_TASK_REGRESSION) return;
    double sum = 0.0, sumsq = 0.0;
    for (size_t i = 0; i < r->ntrain; i++)
        sum += r->target.value[r->train_rows[i]];
    double mean = sum / (double)r->ntrain;
    for (size_t i = 0; i < r->ntrain; i++) {
        double d = r->target.value[r->train_rows[i]] - mean;
        sumsq += d * d;
    }
    double sd = sqrt(sumsq / (double)r->ntrain);
    r->target_mean = mean;
    r->target_std = sd > 0 ? sd : 1.0;
}

static int build_dataset(run_t *r, const size_t *rows, size_t n, dataset_t *d, fm_error_t *err) {
    const fm_prep_t *prep = r->model->prep;
    size_t width = r->width;
    d->n = n;
    d->x = malloc((n ? n : 1) * prep->nfeatures * sizeof *d->x);
    d->y = malloc((n ? n : 1) * width * sizeof *d->y);
    if (r->target.task == FM_TASK_REGRESSION)
        d->value = malloc((n ? n : 1) * sizeof *d->value);
    else
        d->label = malloc((n ? n : 1) * sizeof *d->label);
    int weighted = r->weight_col >= 0 || r->use_class_weight || r->row_weight;
    if (weighted) d->w = malloc((n ? n : 1) * sizeof *d->w);
    if (!d->x || !d->y || (!d->value && !d->label) || (weighted && !d->w))
        return fm_error_set(err, FM_ENOMEM, "out of memory encoding %zu rows", n);
    int rc = fm_prep_transform(prep, r->frame, rows, n, d->x, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        size_t row = rows[i];
        double *y = d->y + i * width;
        double w = 1.0;
        switch (r->target.task) {
        case FM_TASK_BINARY:
            d->label[i] = r->target.label[row];
            y[0] = d->label[i] == 1 ? 1.0 : 0.0;
            break;
        case FM_TASK_MULTICLASS:
            d->label[i] = r->target.label[row];
            memset(y, 0, width * sizeof *y);
            y[d->label[i]] = 1.0;
            break;
        case FM_TASK_REGRESSION:
            d->value[i] = r->target.value[row];
            y[0] = (d->value[i] - r->target_mean) / r->target_std;
            break;
        }
        if (r->use_class_weight) w *= r->class_weight[d->label[i]];
        if (r->row_weight) w *= r->row_weight[row];
        if (r->weight_col >= 0) {
            double sw = r->frame->columns[r->weight_col].values[row];
            if (!isfinite(sw) || sw < 0)
                return fm_error_set(err, FM_EDATA,
                                    "weight column '%s', data row %zu: weight must be a finite "
                                    "number >= 0",
                                    r->opt->weight_column, row + 1);
            w *= sw;
        }
        if (d->w) d->w[i] = w;
    }
    return FM_OK;
}

static int build_network(run_t *r, fm_rng_t *rng, fm_error_t *err) {
    fm_model_t *m = r->model;
    int sizes[FM_NET_MAX_LAYERS + 1];
    int nsizes = 0;
    sizes[nsizes++] = (int)m->prep->nfeatures;
    if (!strcmp(r->family, "mlp")) {
        if (r->opt->nhidden < 1)
            return fm_error_set(err, FM_EINVAL, "model 'mlp' needs at least one hidden layer");
        for (int h = 0; h < r->opt->nhidden; h++)
            sizes[nsizes++] = r->opt->hidden[h];
    }
    sizes[nsizes++] = (int)r->width;
    switch (r->target.task) {
    case FM_TASK_BINARY:
        m->loss = FM_LOSS_BINARY;
        break;
    case FM_TASK_MULTICLASS:
        m->loss = FM_LOSS_CATEGORICAL;
        break;
    case FM_TASK_REGRESSION:
        m->loss = FM_LOSS_MSE;
        break;
    }
    int rc =
        fm_net_new(sizes, nsizes, r->opt->activation, fm_loss_activation(m->loss), &m->net, err);
    if (rc) return rc;
    fm_net_init_weights(m->net, rng);
    return FM_OK;
}

/* Validation loss and the task's headline metric for the current weights. */
typedef struct score {
    double loss;
    double metric;
} score_t;

static const char *metric_name(fm_task_t task) {
    switch (task) {
    case FM_TASK_BINARY:
        return "auc";
    case FM_TASK_MULTICLASS:
        return "accuracy";
    case FM_TASK_REGRESSION:
        return "rmse";
    }
    return "metric";
}

static score_t evaluate(const run_t *r, fm_net_workspace_t *ws, const dataset_t *d, double *logits,
                        double *prob) {
    const fm_model_t *m = r->model;
    score_t s;
    fm_net_forward_logits(m->net, ws, d->x, (int)d->n, logits);
    s.loss = fm_loss_forward(logits, d->y, d->w, (int)d->n, (int)r->width, m->loss);
    memcpy(prob, logits, d->n * r->width * sizeof *prob);
    fm_activation_forward(prob, prob, (int)d->n, (int)r->width, fm_loss_activation(m->loss));
    switch (r->target.task) {
    case FM_TASK_BINARY:
        s.metric = fm_metric_auc(prob, d->label, d->w, d->n);
        break;
    case FM_TASK_MULTICLASS:
        s.metric = fm_metric_multiclass_accuracy(prob, d->label, d->w, d->n, r->width);
        break;
    case FM_TASK_REGRESSION:
        for (size_t i = 0; i < d->n; i++)
            prob[i] = r->target_mean + r->target_std * prob[i];
        s.metric = fm_metric_rmse(prob, d->value, d->w, d->n);
        break;
    }
    return s;
}

/* The quality report for a data set with the final model, added to obj under key. */
static int report(const run_t *r, const dataset_t *d, fm_model_workspace_t *ws, double *prob,
                  cJSON *obj, const char *key, fm_error_t *err) {
    int rc = fm_model_predict_encoded(r->model, ws, d->x, d->n, prob);
    if (rc) return fm_error_set(err, rc, "prediction: %s", fm_model_workspace_error(ws));
    cJSON *metrics = NULL;
    switch (r->target.task) {
    case FM_TASK_BINARY:
        metrics = fm_metrics_binary_report(prob, d->label, d->w, d->n, 0.5);
        break;
    case FM_TASK_MULTICLASS:
        metrics = fm_metrics_multiclass_report(prob, d->label, d->w, d->n, r->width);
        break;
    case FM_TASK_REGRESSION:
        metrics = fm_metrics_regression_report(prob, d->value, d->w, d->n);
        break;
    }
    cJSON_AddItemToObject(obj, key, metrics);
    return FM_OK;
}

static void gather_batch(const dataset_t *d, const size_t *order, size_t start, size_t count,
                         size_t nfeatures, size_t width, double *xb, double *yb, double *wb) {
    for (size_t b = 0; b < count; b++) {
        size_t i = order[start + b];
        memcpy(xb + b * nfeatures, d->x + i * nfeatures, nfeatures * sizeof *xb);
        memcpy(yb + b * width, d->y + i * width, width * sizeof *yb);
        if (wb) wb[b] = d->w[i];
    }
}

/* What fitting did: per epoch (network) or round (trees). */
typedef struct history {
    cJSON *epochs; /* networks: one entry per epoch; trees: one per round */
    int best_epoch;
    int epochs_run;
    int stopped_early;
    double seconds;
    fm_gbt_fit_t gbt; /* trees only */
} history_t;

static int optimise(run_t *r, fm_rng_t *rng, history_t *h, fm_error_t *err) {
    const fm_train_options_t *o = r->opt;
    fm_net_t *net = r->model->net;
    size_t nf = r->model->prep->nfeatures, width = r->width;
    size_t batch = o->optimizer.kind == FM_OPT_GD ? r->ntrain : (size_t)o->batch;
    if (batch > r->ntrain) batch = r->ntrain;
    int early = r->nvalid > 0;
    size_t nvalid_alloc = r->nvalid ? r->nvalid : 1;

    fm_optimizer_t opt = {0};
    fm_net_workspace_t *ws = NULL, *eval_ws = NULL;
    double *xb = malloc(batch * nf * sizeof *xb), *yb = malloc(batch * width * sizeof *yb);
    double *wb = r->train.w ? malloc(batch * sizeof *wb) : NULL;
    double *grads = malloc(net->nparams * sizeof *grads);
    double *best = malloc(net->nparams * sizeof *best);
    double *logits = malloc(nvalid_alloc * width * sizeof *logits);
    double *prob = malloc(nvalid_alloc * width * sizeof *prob);
    size_t *order = malloc(r->ntrain * sizeof *order);
    int rc = FM_OK;
    if (!xb || !yb || (r->train.w && !wb) || !grads || !best || !logits || !prob || !order) {
        rc = fm_error_set(err, FM_ENOMEM, "out of memory for training buffers");
        goto done;
    }
    if ((rc = fm_optimizer_init(&opt, &o->optimizer, net->nparams, err))) goto done;
    if ((rc = fm_net_workspace_new(net, (int)batch, &ws, err))) goto done;
    if ((rc = fm_net_workspace_new(net, 1024, &eval_ws, err))) goto done;
    for (size_t i = 0; i < r->ntrain; i++)
        order[i] = i;

    fm_progress_t progress;
    fm_progress_init(&progress, o->progress, "epoch", o->epochs);
    double start = fm_clock_seconds();
    double best_loss = INFINITY;
    double initial_loss = NAN; /* loss of the untrained network on the first batch */
    int wait = 0;
    h->best_epoch = 0;
    char figures[160] = "";
    for (int epoch = 1; epoch <= o->epochs; epoch++) {
        if (o->optimizer.kind != FM_OPT_GD) fm_rng_shuffle(rng, order, r->ntrain);
        double loss_sum = 0.0;
        size_t seen = 0;
        for (size_t start_row = 0; start_row < r->ntrain; start_row += batch) {
            size_t count = r->ntrain - start_row < batch ? r->ntrain - start_row : batch;
            gather_batch(&r->train, order, start_row, count, nf, width, xb, yb, wb);
            double loss = fm_net_gradients(net, ws, xb, yb, wb, (int)count, r->model->loss, grads);
            if (o->l2 > 0) loss += fm_net_add_l2(net, o->l2, grads);
            if (isnan(initial_loss)) initial_loss = loss;
            fm_optimizer_step(&opt, net->params, grads);
            loss_sum += loss * (double)count;
            seen += count;
        }
        double train_loss = loss_sum / (double)seen;
        /* A loss a million times the untrained network's means the steps are too large. */
        if (!isfinite(train_loss) || train_loss > 1e6 * (fabs(initial_loss) + 1.0)) {
            fm_progress_abandon(&progress);
            rc = fm_error_set(err, FM_EDATA,
                              "training diverged at epoch %d (loss is %g); try a lower --lr", epoch,
                              train_loss);
            goto done;
        }
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddNumberToObject(entry, "epoch", epoch);
        fm_json_add_number(entry, "loss", train_loss);
        h->epochs_run = epoch;
        if (early) {
            score_t s = evaluate(r, eval_ws, &r->valid, logits, prob);
            char key[32];
            snprintf(key, sizeof key, "val_%s", metric_name(r->target.task));
            fm_json_add_number(entry, "val_loss", s.loss);
            fm_json_add_number(entry, key, s.metric);
            snprintf(figures, sizeof figures, "loss %.4f val_loss %.4f %s %.4f", train_loss, s.loss,
                     key, s.metric);
            if (s.loss < best_loss) {
                best_loss = s.loss;
                h->best_epoch = epoch;
                wait = 0;
                memcpy(best, net->params, net->nparams * sizeof *best);
            } else if (++wait >= o->patience) {
                h->stopped_early = 1;
            }
        } else {
            h->best_epoch = epoch;
            snprintf(figures, sizeof figures, "loss %.4f", train_loss);
        }
        cJSON_AddItemToArray(h->epochs, entry);
        fm_progress_update(&progress, epoch, figures);
        if (h->stopped_early) break;
    }
    if (early && h->best_epoch > 0) memcpy(net->params, best, net->nparams * sizeof *best);
    h->seconds = fm_clock_seconds() - start;
    fm_progress_finish(&progress, h->epochs_run, figures);
done:
    fm_optimizer_deinit(&opt);
    fm_net_workspace_free(ws);
    fm_net_workspace_free(eval_ws);
    free(xb);
    free(yb);
    free(wb);
    free(grads);
    free(best);
    free(logits);
    free(prob);
    free(order);
    return rc;
}

/* The settings and course of boosting, for the description. */
static void gbt_training_info(const run_t *r, const history_t *h, cJSON *t) {
    const fm_train_options_t *o = r->opt;
    const fm_gbt_info_t *info = fm_gbt_info(r->model->gbt);
    cJSON *g = cJSON_AddObjectToObject(t, "gbt");
    cJSON_AddStringToObject(g, "library", "xgboost");
    cJSON_AddStringToObject(g, "tree_method", "hist");
    cJSON_AddStringToObject(g, "objective", fm_gbt_objective_name(info->shape.objective));
    cJSON_AddStringToObject(g, "eval_metric", h->gbt.metric);
    cJSON_AddNumberToObject(g, "rounds", o->gbt.rounds);
    cJSON_AddNumberToObject(g, "max_depth", o->gbt.max_depth);
    cJSON_AddNumberToObject(g, "eta", o->gbt.eta);
    cJSON_AddNumberToObject(g, "subsample", o->gbt.subsample);
    cJSON_AddNumberToObject(g, "colsample", o->gbt.colsample);
    cJSON_AddNumberToObject(g, "min_child_weight", o->gbt.min_child_weight);
    cJSON_AddNumberToObject(g, "lambda", o->gbt.lambda);
    cJSON_AddNumberToObject(g, "alpha", o->gbt.alpha);
    cJSON_AddNumberToObject(g, "early_stopping", o->gbt.early_stopping);
    fm_json_add_number(g, "base_score", info->base_score);
    cJSON_AddNumberToObject(g, "boosting_seconds", h->gbt.boosting_seconds);
    cJSON_AddNumberToObject(t, "rounds_run", h->gbt.rounds_run);
    cJSON_AddNumberToObject(t, "best_round", h->gbt.best_round);
    cJSON_AddBoolToObject(t, "stopped_early", h->gbt.stopped_early);
    if (!isnan(h->gbt.best_loss)) {
        char key[40];
        snprintf(key, sizeof key, "best_val_%s", h->gbt.metric);
        fm_json_add_number(t, key, h->gbt.best_loss);
    }
}

/* The settings and course of optimisation of a network, for the description. */
static void nn_training_info(const run_t *r, const history_t *h, cJSON *t) {
    const fm_train_options_t *o = r->opt;
    if (!strcmp(r->family, "mlp")) {
        cJSON *hidden = cJSON_AddArrayToObject(t, "hidden");
        for (int i = 0; i < o->nhidden; i++)
            cJSON_AddItemToArray(hidden, cJSON_CreateNumber(o->hidden[i]));
        cJSON_AddStringToObject(t, "activation", fm_activation_name(o->activation));
    }
    cJSON *opt = cJSON_AddObjectToObject(t, "optimizer");
    cJSON_AddStringToObject(opt, "name", fm_optimizer_name(o->optimizer.kind));
    cJSON_AddNumberToObject(opt, "lr", o->optimizer.lr);
    if (o->optimizer.kind == FM_OPT_SGD) {
        cJSON_AddNumberToObject(opt, "momentum", o->optimizer.momentum);
        cJSON_AddBoolToObject(opt, "nesterov", o->optimizer.nesterov);
    }
    if (o->optimizer.kind == FM_OPT_ADAM) {
        cJSON_AddNumberToObject(opt, "beta1", o->optimizer.beta1);
        cJSON_AddNumberToObject(opt, "beta2", o->optimizer.beta2);
        cJSON_AddNumberToObject(opt, "epsilon", o->optimizer.epsilon);
    }
    cJSON_AddStringToObject(t, "loss", fm_loss_name(r->model->loss));
    cJSON_AddNumberToObject(t, "batch",
                            o->optimizer.kind == FM_OPT_GD ? (double)r->ntrain : (double)o->batch);
    cJSON_AddNumberToObject(t, "max_epochs", o->epochs);
    cJSON_AddNumberToObject(t, "epochs_run", h->epochs_run);
    cJSON_AddNumberToObject(t, "best_epoch", h->best_epoch);
    cJSON_AddBoolToObject(t, "stopped_early", h->stopped_early);
    cJSON_AddNumberToObject(t, "patience", o->patience);
    cJSON_AddNumberToObject(t, "l2", o->l2);
}

static cJSON *training_info(const run_t *r, const history_t *h) {
    const fm_train_options_t *o = r->opt;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "family", r->family);
    if (r->model->gbt)
        gbt_training_info(r, h, t);
    else
        nn_training_info(r, h, t);
    cJSON_AddNumberToObject(t, "seed", (double)o->seed);
    cJSON_AddNumberToObject(t, "threads", o->threads);
    cJSON_AddStringToObject(t, "class_weight",
                            o->class_weight == FM_CLASS_WEIGHT_BALANCED ? "balanced" : "none");
    if (o->weight_column) cJSON_AddStringToObject(t, "weight_column", o->weight_column);
    /* In feature order, each once, whatever order and repeats the options had. */
    cJSON *pii = cJSON_AddArrayToObject(t, "pii_columns");
    for (size_t i = 0; pii && i < r->model->prep->ncolumns; i++)
        if (r->model->prep->columns[i].pii)
            cJSON_AddItemToArray(pii, cJSON_CreateString(r->model->prep->columns[i].name));
    cJSON_AddBoolToObject(t, "missing_indicators", o->prep.missing_indicators);
    cJSON_AddNumberToObject(t, "rows", (double)r->ntrain);
    cJSON_AddNumberToObject(t, "seconds", h->seconds);
    cJSON_AddItemToObject(t, "history", cJSON_Duplicate(h->epochs, 1));
    return t;
}

static cJSON *data_info(const run_t *r) {
    const fm_frame_t *f = r->frame;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "source", f->source ? f->source : "");
    cJSON_AddStringToObject(d, "blake2b", f->digest);
    cJSON_AddNumberToObject(d, "rows", (double)f->nrows);
    cJSON_AddNumberToObject(d, "columns", (double)f->ncols);
    cJSON_AddNumberToObject(d, "rows_missing_target", (double)r->target.missing);
    cJSON *dropped = cJSON_AddArrayToObject(d, "dropped_columns");
    for (size_t i = 0; i < r->opt->ndrop; i++)
        cJSON_AddItemToArray(dropped, cJSON_CreateString(r->opt->drop[i]));
    return d;
}

static int describe(run_t *r, const history_t *h, fm_error_t *err) {
    fm_model_t *m = r->model;
    fm_model_workspace_t *ws = NULL;
    size_t n = r->ntrain > r->nvalid ? r->ntrain : r->nvalid;
    double *prob = malloc((n ? n : 1) * r->width * sizeof *prob);
    int rc = prob ? fm_model_ready(m, err) : fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = fm_model_workspace_new(m, 1024, &ws, err);
    if (rc) {
        free(prob);
        return rc;
    }
    char created[32];
    fm_clock_utc_iso8601(created, sizeof created);
    cJSON_AddStringToObject(m->info, "created", created);
    cJSON_AddItemToObject(m->info, "training", training_info(r, h));
    cJSON *v = cJSON_AddObjectToObject(m->info, "validation");
    const char *scheme = r->nvalid == 0                         ? "none"
                         : r->target.task == FM_TASK_REGRESSION ? "random holdout"
                                                                : "stratified holdout";
    cJSON_AddStringToObject(v, "scheme", scheme);
    cJSON_AddNumberToObject(v, "fraction", r->opt->valid_fraction);
    cJSON_AddNumberToObject(v, "rows", (double)r->nvalid);
    cJSON_AddNumberToObject(v, "seed", (double)r->opt->seed);
    if (r->nvalid) rc = report(r, &r->valid, ws, prob, v, "metrics", err);
    if (!rc) rc = report(r, &r->train, ws, prob, v, "train_metrics", err);
    cJSON_AddItemToObject(m->info, "data", data_info(r));
    fm_model_workspace_free(ws);
    free(prob);
    return rc;
}

/* ---- Gradient-boosted trees ------------------------------------------------------------------ */

/* What the round callback updates: the history and the progress bar. */
typedef struct rounds {
    history_t *h;
    fm_progress_t progress;
} rounds_t;

static void on_round(void *context, int round, double valid_loss, const char *metric) {
    rounds_t *s = context;
    cJSON *entry = cJSON_CreateObject();
    cJSON_AddNumberToObject(entry, "round", round);
    char figures[96] = "";
    if (!isnan(valid_loss)) {
        char key[40];
        snprintf(key, sizeof key, "val_%s", metric);
        fm_json_add_number(entry, key, valid_loss);
        snprintf(figures, sizeof figures, "val_%s %.4f", metric, valid_loss);
    }
    cJSON_AddItemToArray(s->h->epochs, entry);
    fm_progress_update(&s->progress, round, figures);
}

/* The labels the booster learns: 0/1, the class index, or the raw target value. */
static double *gbt_labels(const run_t *r, const dataset_t *d) {
    double *y = malloc((d->n ? d->n : 1) * sizeof *y);
    for (size_t i = 0; y && i < d->n; i++)
        y[i] = r->target.task == FM_TASK_REGRESSION ? d->value[i] : (double)d->label[i];
    return y;
}

/* Boosts the trees. Regression starts from the (weighted) mean of the training targets, as
 * XGBoost 2 does by itself; classification from XGBoost's default 0.5. */
static int fit_trees(run_t *r, history_t *h, fm_error_t *err) {
    const fm_train_options_t *o = r->opt;
    fm_model_t *m = r->model;
    static const fm_gbt_objective_t objective[] = {
        [FM_TASK_BINARY] = FM_GBT_BINARY,
        [FM_TASK_MULTICLASS] = FM_GBT_MULTICLASS,
        [FM_TASK_REGRESSION] = FM_GBT_REGRESSION,
    };
    fm_gbt_params_t p = {
        .shape = {objective[m->task], m->nclasses, m->prep->nfeatures},
        .rounds = o->gbt.rounds,
        .max_depth = o->gbt.max_depth,
        .eta = o->gbt.eta,
        .subsample = o->gbt.subsample,
        .colsample = o->gbt.colsample,
        .min_child_weight = o->gbt.min_child_weight,
        .lambda = o->gbt.lambda,
        .alpha = o->gbt.alpha,
        .early_stopping = o->gbt.early_stopping,
        .base_score = NAN,
        .seed = o->seed,
        .threads = o->threads,
    };
    if (m->task == FM_TASK_REGRESSION) {
        double sum = 0.0, wsum = 0.0;
        for (size_t i = 0; i < r->train.n; i++) {
            double w = r->train.w ? r->train.w[i] : 1.0;
            sum += w * r->train.value[i];
            wsum += w;
        }
        p.base_score = wsum > 0 ? sum / wsum : 0.0;
    }
    double *ytrain = gbt_labels(r, &r->train), *yvalid = gbt_labels(r, &r->valid);
    int rc = FM_OK;
    if (!ytrain || !yvalid) rc = fm_error_set(err, FM_ENOMEM, "out of memory for labels");
    fm_gbt_rows_t train = {r->train.x, ytrain, r->train.w, r->train.n};
    fm_gbt_rows_t valid = {r->valid.x, yvalid, r->valid.w, r->valid.n};
    rounds_t s = {h, {0}};
    if (!rc) {
        fm_progress_init(&s.progress, o->progress, "round", o->gbt.rounds);
        double start = fm_clock_seconds();
        rc = fm_gbt_train(&p, &train, &valid, on_round, &s, &m->gbt, &h->gbt, err);
        h->seconds = fm_clock_seconds() - start;
        if (rc) {
            fm_progress_abandon(&s.progress);
        } else {
            char figures[96] = "";
            if (!isnan(h->gbt.best_loss))
                snprintf(figures, sizeof figures, "best round %d val_%s %.4f", h->gbt.best_round,
                         h->gbt.metric, h->gbt.best_loss);
            fm_progress_finish(&s.progress, h->gbt.rounds_run, figures);
        }
    }
    free(ytrain);
    free(yvalid);
    if (rc) return rc;
    h->epochs_run = h->gbt.rounds_run;
    h->best_epoch = h->gbt.best_round;
    h->stopped_early = h->gbt.stopped_early;
    /* The booster answers in the task's output scale: losses as for networks, no scaling. */
    static const fm_loss_t loss[] = {
        [FM_TASK_BINARY] = FM_LOSS_BINARY,
        [FM_TASK_MULTICLASS] = FM_LOSS_CATEGORICAL,
        [FM_TASK_REGRESSION] = FM_LOSS_MSE,
    };
    m->loss = loss[m->task];
    m->target_mean = 0.0;
    m->target_std = 1.0;
    return FM_OK;
}

static int train_run(run_t *r, fm_error_t *err) {
    const fm_train_options_t *o = r->opt;
    const fm_frame_t *f = r->frame;
    if (!o->target) return fm_error_set(err, FM_EINVAL, "no target column given");
    int target_col = fm_frame_find(f, o->target);
    if (target_col < 0)
        return fm_error_set(err, FM_EINVAL, "target column '%s' is not in %s", o->target,
                            f->source);
    if (o->epochs < 1 || o->batch < 1 || o->patience < 1 || !(o->l2 >= 0) ||
        !(o->valid_fraction >= 0 && o->valid_fraction <= 0.9) || o->threads < 1 ||
        !(o->optimizer.lr > 0))
        return fm_error_set(err, FM_EINVAL, "invalid training settings");
    int rc = fm_target_resolve(f, (size_t)target_col, o->task, o->positive, &r->target, err);
    if (rc) return rc;
    r->family = o->family ? o->family : fm_train_default_family(r->target.task);
    if ((rc = check_family(r->family, r->target.task, err))) return rc;
    if ((rc = choose_columns(r, (size_t)target_col, err))) return rc;

    fm_rng_t rng;
    fm_rng_seed(&rng, o->seed);
    if ((rc = split_rows(r, &rng, err))) return rc;
    compute_class_weights(r);
    compute_target_scaling(r);
    if (o->reweigh &&
        (rc = fm_train_reweigh(f, o, &r->target, r->train_rows, r->ntrain, &r->row_weight, err)))
        return rc;

    fm_model_t *m = r->model = fm_model_new();
    if (!m) return fm_error_set(err, FM_ENOMEM, "out of memory");
    m->task = r->target.task;
    m->family = strdup(r->family);
    m->target = strdup(o->target);
    m->target_mean = r->target_mean;
    m->target_std = r->target_std;
    if (!m->family || !m->target) return fm_error_set(err, FM_ENOMEM, "out of memory");
    if (m->task != FM_TASK_REGRESSION) {
        m->nclasses = r->target.nclasses;
        m->classes = r->target.classes;
        r->target.classes = NULL;
        r->target.nclasses = 0;
    }
    r->width = m->task == FM_TASK_MULTICLASS ? m->nclasses : 1;
    if ((rc = fm_prep_fit(f, r->feature_cols, r->nfeature_cols, r->train_rows, r->ntrain, &o->prep,
                          &m->prep, err)))
        return rc;
    if ((rc = mark_pii(r, err))) return rc;
    if ((rc = build_dataset(r, r->train_rows, r->ntrain, &r->train, err))) return rc;
    if ((rc = build_dataset(r, r->valid_rows, r->nvalid, &r->valid, err))) return rc;

    history_t h = {.epochs = cJSON_CreateArray()};
    if (!h.epochs) return fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!strcmp(r->family, "gbt")) {
        rc = fit_trees(r, &h, err);
    } else {
        rc = build_network(r, &rng, err);
        if (!rc) {
            fm_nn_set_threads(o->threads);
            rc = optimise(r, &rng, &h, err);
        }
    }
    if (!rc) rc = describe(r, &h, err);
    cJSON_Delete(h.epochs);
    if (!rc && o->governance) {
        fm_train_governed_t g = {
            f, o, r->train.x, r->train.n, r->train_rows, r->valid_rows, r->nvalid, r->target.label};
        rc = fm_train_govern(m, &g, err);
    }
    return rc;
}

static int train_once(const fm_frame_t *frame, const fm_train_options_t *options, fm_model_t **out,
                      fm_error_t *err) {
    *out = NULL;
    run_t r;
    memset(&r, 0, sizeof r);
    r.frame = frame;
    r.opt = options;
    int rc = train_run(&r, err);
    if (rc == FM_OK) {
        *out = r.model;
        r.model = NULL;
    }
    fm_model_free(r.model);
    fm_target_deinit(&r.target);
    free(r.feature_cols);
    free(r.train_rows);
    free(r.valid_rows);
    free(r.row_weight);
    dataset_free(&r.train);
    dataset_free(&r.valid);
    return rc;
}

/* With reweighing under governance, the same model is first fitted without it, so that the
 * description can show the fairness before and after mitigation. */
int fm_train(const fm_frame_t *frame, const fm_train_options_t *options, fm_model_t **out,
             fm_error_t *err) {
    *out = NULL;
    if (!options->reweigh || !options->governance || options->nprotected == 0)
        return train_once(frame, options, out, err);
    fm_train_options_t plain = *options;
    plain.reweigh = 0;
    plain.no_global = 1;
    plain.progress = NULL;
    fm_model_t *before = NULL;
    int rc = train_once(frame, &plain, &before, err);
    if (rc) return fm_error_prefix(err, "the model without reweighing: ");
    rc = train_once(frame, options, out, err);
    if (!rc) rc = fm_train_mitigation_info(*out, before, err);
    fm_model_free(before);
    if (rc) {
        fm_model_free(*out);
        *out = NULL;
    }
    return rc;
}
