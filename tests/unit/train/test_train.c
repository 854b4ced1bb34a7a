/*
 * Tests of the train area: stratified splits, target resolution, and the trainer on small
 * synthetic data sets with known structure (learning, determinism, early stopping, errors,
 * personal-data columns that survive the model file).
 */
#include "core/rng.h"
#include "eval/metrics.h"
#include "fm_test.h"
#include "train/target.h"
#include "train/train.h"

#include <unistd.h>

static char tmpdir[64];

static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

static fm_frame_t *read_frame(const char *name, const char *text) {
    fm_error_t err;
    fm_frame_t *f = NULL;
    int rc = fm_frame_read_csv(write_file(name, text), NULL, &f, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    return f;
}

/* A CSV of n rows where P(y=1) = sigmoid(2 x1 - x2 + (cat == "b")), with a categorical column. */
static fm_frame_t *logistic_frame(size_t n, uint64_t seed) {
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "x1,x2,cat,y\n");
    for (size_t i = 0; i < n; i++) {
        double x1 = fm_rng_normal(&rng), x2 = fm_rng_normal(&rng);
        int cat = (int)fm_rng_below(&rng, 3);
        double z = 2 * x1 - x2 + (cat == 1 ? 1.0 : 0.0);
        int y = fm_rng_uniform(&rng) < 1.0 / (1.0 + exp(-z));
        fm_buf_printf(&b, "%.6f,%.6f,%c,%s\n", x1, x2, "abc"[cat], y ? "yes" : "no");
    }
    fm_frame_t *f = read_frame("logistic.csv", b.data);
    fm_buf_free(&b);
    return f;
}

static void test_split_stratified(void) {
    size_t n = 1000;
    int32_t labels[1000];
    for (size_t i = 0; i < n; i++)
        labels[i] = i % 10 < 3 ? 1 : 0; /* 30% ones */
    labels[5] = -1;                     /* left out */
    fm_rng_t rng;
    fm_rng_seed(&rng, 7);
    size_t *a, *b, na, nb;
    fm_error_t err;
    FM_CHECK_INT(fm_split_stratified(labels, n, 2, 0.25, &rng, &a, &na, &b, &nb, &err), 0);
    FM_CHECK_INT(na + nb, n - 1);
    size_t ones_b = 0;
    for (size_t i = 0; i < nb; i++)
        ones_b += labels[b[i]] == 1;
    FM_CHECK_INT(ones_b, 75); /* 25% of the 300 ones */
    FM_CHECK_INT(nb, 250);
    /* Disjoint, increasing, complete. */
    unsigned char seen[1000] = {0};
    for (size_t i = 0; i < na; i++)
        seen[a[i]]++;
    for (size_t i = 0; i < nb; i++)
        seen[b[i]]++;
    for (size_t i = 0; i < n; i++)
        FM_CHECK_INT(seen[i], i == 5 ? 0 : 1);
    for (size_t i = 1; i < na; i++)
        FM_CHECK(a[i - 1] < a[i]);
    /* Same seed, same split. */
    fm_rng_t again;
    fm_rng_seed(&again, 7);
    size_t *a2, *b2, na2, nb2;
    FM_CHECK_INT(fm_split_stratified(labels, n, 2, 0.25, &again, &a2, &na2, &b2, &nb2, &err), 0);
    FM_CHECK(na2 == na && memcmp(a, a2, na * sizeof *a) == 0);
    free(a);
    free(b);
    free(a2);
    free(b2);
    /* A class with two rows keeps one on each side. */
    int32_t few[6] = {0, 0, 0, 0, 1, 1};
    FM_CHECK_INT(fm_split_stratified(few, 6, 2, 0.1, &rng, &a, &na, &b, &nb, &err), 0);
    FM_CHECK_INT(nb, 2);
    free(a);
    free(b);
    FM_CHECK_INT(fm_split_stratified(few, 6, 2, 1.5, &rng, &a, &na, &b, &nb, &err), FM_EINVAL);
}

static void test_target_resolution(void) {
    fm_frame_t *f =
        read_frame("t.csv", "num,txt,multi,reg,one\n"
                            "1,good,a,1.5,x\n0,bad,b,2.5,x\n1,good,c,3,x\nNA,,a,NA,x\n");
    fm_target_t t;
    fm_error_t err;
    FM_CHECK_INT(fm_target_resolve(f, 0, -1, NULL, &t, &err), 0);
    FM_CHECK_INT(t.task, FM_TASK_BINARY);
    FM_CHECK_STR(t.classes[0], "0");
    FM_CHECK_STR(t.classes[1], "1");
    FM_CHECK_INT(t.label[0], 1);
    FM_CHECK_INT(t.label[3], -1);
    FM_CHECK_INT(t.missing, 1);
    fm_target_deinit(&t);
    /* Default positive is the second in byte order ("good"); --positive bad swaps. */
    FM_CHECK_INT(fm_target_resolve(f, 1, -1, NULL, &t, &err), 0);
    FM_CHECK_STR(t.classes[1], "good");
    FM_CHECK_INT(t.label[0], 1);
    fm_target_deinit(&t);
    FM_CHECK_INT(fm_target_resolve(f, 1, -1, "bad", &t, &err), 0);
    FM_CHECK_STR(t.classes[1], "bad");
    FM_CHECK_INT(t.label[0], 0);
    FM_CHECK_INT(t.label[1], 1);
    fm_target_deinit(&t);
    FM_CHECK_INT(fm_target_resolve(f, 1, -1, "maybe", &t, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "maybe") != NULL);
    FM_CHECK_INT(fm_target_resolve(f, 2, -1, NULL, &t, &err), 0);
    FM_CHECK_INT(t.task, FM_TASK_MULTICLASS);
    FM_CHECK_INT(t.nclasses, 3);
    fm_target_deinit(&t);
    FM_CHECK_INT(fm_target_resolve(f, 2, FM_TASK_BINARY, NULL, &t, &err), FM_EDATA);
    FM_CHECK_INT(fm_target_resolve(f, 3, -1, NULL, &t, &err), 0);
    FM_CHECK_INT(t.task, FM_TASK_REGRESSION);
    FM_CHECK_INT(t.missing, 1);
    /* Regression rows are labelled 0 with a value, -1 without: the strata of every split. */
    FM_CHECK_INT(t.column, 3);
    FM_CHECK_INT(t.label[0], 0);
    FM_CHECK_INT(t.label[3], -1);
    FM_CHECK_NEAR(t.value[2], 3.0, 0.0);
    fm_target_deinit(&t);
    FM_CHECK_INT(fm_target_resolve(f, 4, -1, NULL, &t, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "only one class") != NULL);
    FM_CHECK_INT(fm_target_resolve(f, 1, FM_TASK_REGRESSION, NULL, &t, &err), FM_EDATA);
    fm_frame_free(f);
}

static double train_auc(const fm_model_t *m, const fm_frame_t *f) {
    size_t n = f->nrows;
    double *p = malloc(n * sizeof *p);
    int *y = malloc(n * sizeof *y);
    fm_error_t err;
    FM_CHECK_INT(fm_model_predict_frame(m, f, p, &err), 0);
    int ycol = fm_frame_find(f, "y");
    for (size_t i = 0; i < n; i++)
        y[i] = !strcmp(fm_strdict_get(&f->columns[ycol].dict, f->columns[ycol].codes[i]), "yes");
    double auc = fm_metric_auc(p, y, NULL, n);
    free(p);
    free(y);
    return auc;
}

static void test_trainer_learns(void) {
    fm_frame_t *f = logistic_frame(3000, 1);
    fm_frame_t *test = logistic_frame(2000, 2);
    const char *families[] = {"logistic", "mlp"};
    fm_optimizer_kind_t kinds[] = {FM_OPT_GD, FM_OPT_SGD, FM_OPT_ADAM};
    for (int fam = 0; fam < 2; fam++) {
        for (int k = 0; k < 3; k++) {
            fm_train_options_t o;
            fm_train_options_defaults(&o);
            o.target = "y";
            o.positive = "yes";
            o.family = families[fam];
            o.optimizer = fm_optimizer_defaults(kinds[k]);
            if (kinds[k] == FM_OPT_GD) {
                o.optimizer.lr = 0.5;
                o.epochs = 300;
            }
            if (kinds[k] == FM_OPT_SGD) o.optimizer.momentum = 0.9;
            o.epochs = kinds[k] == FM_OPT_GD ? 300 : 40;
            fm_model_t *m = NULL;
            fm_error_t err;
            int rc = fm_train(f, &o, &m, &err);
            FM_CHECK_MSG(rc == 0, "%s", err.msg);
            if (rc) continue;
            /* The Bayes-optimal AUC of this generator is about 0.85. */
            double auc = train_auc(m, test);
            printf("  %-8s %-4s test AUC %.4f\n", families[fam], fm_optimizer_name(kinds[k]), auc);
            FM_CHECK(auc > 0.82);
            FM_CHECK_STR(m->classes[1], "yes");
            const cJSON *training = cJSON_GetObjectItem(m->info, "training");
            int run = cJSON_GetObjectItem(training, "epochs_run")->valueint;
            int best = cJSON_GetObjectItem(training, "best_epoch")->valueint;
            FM_CHECK(best >= 1 && best <= run && run <= o.epochs);
            fm_model_free(m);
        }
    }
    fm_frame_free(f);
    fm_frame_free(test);
}

static void test_trainer_deterministic(void) {
    fm_frame_t *f = logistic_frame(1000, 3);
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    o.target = "y";
    o.family = "mlp";
    o.epochs = 5;
    fm_model_t *a = NULL, *b = NULL, *c = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_train(f, &o, &a, &err), 0);
    FM_CHECK_INT(fm_train(f, &o, &b, &err), 0);
    o.seed = 43;
    FM_CHECK_INT(fm_train(f, &o, &c, &err), 0);
    if (a && b && c) {
        FM_CHECK(memcmp(a->net->params, b->net->params, a->net->nparams * sizeof(double)) == 0);
        FM_CHECK(memcmp(a->net->params, c->net->params, a->net->nparams * sizeof(double)) != 0);
    }
    fm_model_free(a);
    fm_model_free(b);
    fm_model_free(c);
    fm_frame_free(f);
}

static void test_trainer_early_stopping(void) {
    /* Pure noise: validation loss stops improving quickly, so training stops early. */
    fm_rng_t rng;
    fm_rng_seed(&rng, 9);
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "a,b,c,y\n");
    for (int i = 0; i < 400; i++)
        fm_buf_printf(&b, "%f,%f,%f,%d\n", fm_rng_normal(&rng), fm_rng_normal(&rng),
                      fm_rng_normal(&rng), (int)fm_rng_below(&rng, 2));
    fm_frame_t *f = read_frame("noise.csv", b.data);
    fm_buf_free(&b);
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    o.target = "y";
    o.family = "mlp";
    o.hidden[0] = 64;
    o.nhidden = 1;
    o.optimizer.lr = 0.01;
    o.epochs = 500;
    o.patience = 5;
    fm_model_t *m = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), 0);
    if (m) {
        const cJSON *t = cJSON_GetObjectItem(m->info, "training");
        int run = cJSON_GetObjectItem(t, "epochs_run")->valueint;
        int best = cJSON_GetObjectItem(t, "best_epoch")->valueint;
        FM_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(t, "stopped_early")));
        FM_CHECK_INT(run, best + 5);
        /* The restored weights give the best validation loss of the history. */
        const cJSON *hist = cJSON_GetObjectItem(t, "history");
        double best_loss =
            cJSON_GetObjectItem(cJSON_GetArrayItem(hist, best - 1), "val_loss")->valuedouble;
        const cJSON *e;
        cJSON_ArrayForEach(e, hist)
            FM_CHECK(cJSON_GetObjectItem(e, "val_loss")->valuedouble >= best_loss);
        const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(m->info, "validation"), "metrics");
        FM_CHECK(v != NULL && cJSON_GetObjectItem(v, "logloss") != NULL);
        /* The report scores with the single-precision copy of the network (model.h), the
         * training loop in double: they agree to about 1e-7. */
        FM_CHECK_NEAR(cJSON_GetObjectItem(v, "logloss")->valuedouble, best_loss, 1e-6);
    }
    fm_model_free(m);
    fm_frame_free(f);
}

static void test_trainer_regression_and_multiclass(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 11);
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "x1,x2,amount,segment\n");
    for (int i = 0; i < 1500; i++) {
        double x1 = fm_rng_normal(&rng), x2 = fm_rng_normal(&rng);
        double amount = 1000 + 300 * x1 - 200 * x2 + 10 * fm_rng_normal(&rng);
        const char *seg = x1 > 0.5 ? "high" : (x1 < -0.5 ? "low" : "mid");
        fm_buf_printf(&b, "%f,%f,%f,%s\n", x1, x2, amount, seg);
    }
    fm_frame_t *f = read_frame("reg.csv", b.data);
    fm_buf_free(&b);
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    o.target = "amount";
    o.optimizer.lr = 0.01;
    o.epochs = 100;
    o.drop = (const char *const[]){"segment"};
    o.ndrop = 1;
    fm_model_t *m = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), 0);
    if (m) {
        FM_CHECK_INT(m->task, FM_TASK_REGRESSION);
        FM_CHECK_STR(m->family, "linear");
        const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(m->info, "validation"), "metrics");
        double rmse = cJSON_GetObjectItem(v, "rmse")->valuedouble;
        printf("  linear regression validation RMSE %.3f (noise sd 10)\n", rmse);
        FM_CHECK(rmse < 12.0);
    }
    fm_model_free(m);
    fm_train_options_defaults(&o);
    o.target = "segment";
    o.drop = (const char *const[]){"amount"};
    o.ndrop = 1;
    o.optimizer.lr = 0.05;
    o.epochs = 100;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), 0);
    if (m) {
        FM_CHECK_INT(m->task, FM_TASK_MULTICLASS);
        FM_CHECK_STR(m->family, "softmax");
        FM_CHECK_INT(m->nclasses, 3);
        const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(m->info, "validation"), "metrics");
        double acc = cJSON_GetObjectItem(v, "accuracy")->valuedouble;
        printf("  softmax regression validation accuracy %.3f\n", acc);
        FM_CHECK(acc > 0.95);
    }
    fm_model_free(m);
    fm_frame_free(f);
}

/* Mean predicted P(yes) on frame f of a model trained with options o. */
static double mean_probability(const fm_frame_t *f, fm_train_options_t *o) {
    fm_model_t *m = NULL;
    fm_error_t err;
    int rc = fm_train(f, o, &m, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return NAN;
    double *p = malloc(f->nrows * sizeof *p), sum = 0;
    FM_CHECK_INT(fm_model_predict_frame(m, f, p, &err), 0);
    for (size_t i = 0; i < f->nrows; i++)
        sum += p[i];
    free(p);
    fm_model_free(m);
    return sum / (double)f->nrows;
}

static void test_trainer_weights(void) {
    /* An imbalanced set (about 10% yes): balanced class weights, or a weight column that counts
     * each yes row ten times, must raise the mean predicted P(yes) towards one half. */
    fm_rng_t rng;
    fm_rng_seed(&rng, 21);
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "x,w,y\n");
    for (int i = 0; i < 2000; i++) {
        double x = fm_rng_normal(&rng);
        int y = fm_rng_uniform(&rng) < 1.0 / (1.0 + exp(-(x - 2.5)));
        fm_buf_printf(&b, "%.6f,%d,%s\n", x, y ? 10 : 1, y ? "yes" : "no");
    }
    fm_frame_t *f = read_frame("weights.csv", b.data);
    fm_buf_free(&b);
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    o.target = "y";
    o.positive = "yes";
    o.optimizer.lr = 0.01;
    o.epochs = 60;
    o.drop = (const char *const[]){"w"};
    o.ndrop = 1;
    double plain = mean_probability(f, &o);
    o.class_weight = FM_CLASS_WEIGHT_BALANCED;
    double balanced = mean_probability(f, &o);
    o.class_weight = FM_CLASS_WEIGHT_NONE;
    o.ndrop = 0;
    o.weight_column = "w";
    double weighted = mean_probability(f, &o);
    printf("  mean P(yes): unweighted %.3f, balanced %.3f, weight column %.3f\n", plain, balanced,
           weighted);
    FM_CHECK(plain < 0.15);
    FM_CHECK(balanced > plain + 0.2);
    FM_CHECK(weighted > plain + 0.2);
    fm_frame_free(f);
}

static void test_trainer_errors(void) {
    fm_frame_t *f = logistic_frame(200, 5);
    fm_train_options_t o;
    fm_model_t *m = NULL;
    fm_error_t err;
    fm_train_options_defaults(&o);
    o.target = "nope";
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "'nope'") != NULL);
    o.target = "y";
    o.family = "linear";
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EINVAL);
    o.family = "forest";
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EINVAL);
    o.family = NULL;
    o.drop = (const char *const[]){"x1", "x2", "cat"};
    o.ndrop = 3;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "no feature columns") != NULL);
    o.drop = (const char *const[]){"x9"};
    o.ndrop = 1;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EINVAL);
    o.ndrop = 0;
    o.weight_column = "cat";
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EDATA);
    o.weight_column = NULL;
    /* Gradient descent on a squared loss with a step far above 2 / curvature diverges. */
    o.target = "x1";
    o.family = NULL;
    o.optimizer = fm_optimizer_defaults(FM_OPT_SGD);
    o.optimizer.lr = 90.0;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "diverged") != NULL);
    FM_CHECK(m == NULL);
    fm_frame_free(f);
}

static void test_trainer_pii_columns(void) {
    fm_frame_t *f = logistic_frame(300, 6);
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    o.target = "y";
    o.epochs = 3;
    o.pii = (const char *const[]){"cat", "x2", "cat"};
    o.npii = 3;
    fm_model_t *m = NULL;
    fm_error_t err;
    int rc = fm_train(f, &o, &m, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    if (m) {
        /* Columns x1, x2, cat: the two named are marked, each once, in feature order. */
        FM_CHECK_INT(m->prep->ncolumns, 3);
        FM_CHECK_INT(m->prep->columns[fm_prep_find(m->prep, "x1")].pii, 0);
        FM_CHECK_INT(m->prep->columns[fm_prep_find(m->prep, "x2")].pii, 1);
        FM_CHECK_INT(m->prep->columns[fm_prep_find(m->prep, "cat")].pii, 1);
        const cJSON *list =
            cJSON_GetObjectItem(cJSON_GetObjectItem(m->info, "training"), "pii_columns");
        FM_CHECK(cJSON_IsArray(list) && cJSON_GetArraySize(list) == 2);
        FM_CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(list, 0)), "x2");
        FM_CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(list, 1)), "cat");
        /* The flags survive the model file, and the description lists them. */
        char path[128];
        snprintf(path, sizeof path, "%s/pii.fmm", tmpdir);
        FM_CHECK_INT(fm_model_save(m, path, &err), 0);
        fm_model_t *back = NULL;
        rc = fm_model_load(path, &back, &err);
        FM_CHECK_MSG(rc == 0, "%s", err.msg);
        if (back) {
            for (size_t k = 0; k < 3; k++)
                FM_CHECK_INT(back->prep->columns[k].pii, m->prep->columns[k].pii);
            cJSON *d = fm_model_describe(back);
            const cJSON *feature;
            int marked = 0;
            cJSON_ArrayForEach(feature, cJSON_GetObjectItem(d, "features")) {
                const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(feature, "name"));
                const cJSON *flag = cJSON_GetObjectItem(feature, "pii");
                int want = name && strcmp(name, "x1") != 0;
                FM_CHECK_MSG(want ? cJSON_IsTrue(flag) : flag == NULL, "feature %s",
                             name ? name : "?");
                marked += cJSON_IsTrue(flag);
            }
            FM_CHECK_INT(marked, 2);
            /* Saved and loaded again, the description is the same text. */
            cJSON *before = fm_model_describe(m);
            char *a = cJSON_PrintUnformatted(before), *b = cJSON_PrintUnformatted(d);
            FM_CHECK(a && b && strcmp(a, b) == 0);
            free(a);
            free(b);
            cJSON_Delete(before);
            cJSON_Delete(d);
            /* Marking changes no prediction. */
            double p1[300], p2[300];
            FM_CHECK_INT(fm_model_predict_frame(m, f, p1, &err), 0);
            FM_CHECK_INT(fm_model_predict_frame(back, f, p2, &err), 0);
            FM_CHECK(memcmp(p1, p2, sizeof p1) == 0);
        }
        fm_model_free(back);
    }
    fm_model_free(m);
    m = NULL;
    /* Without --pii: an empty list, and no feature is marked. */
    o.npii = 0;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), 0);
    if (m) {
        const cJSON *list =
            cJSON_GetObjectItem(cJSON_GetObjectItem(m->info, "training"), "pii_columns");
        FM_CHECK(cJSON_IsArray(list) && cJSON_GetArraySize(list) == 0);
        for (size_t k = 0; k < m->prep->ncolumns; k++)
            FM_CHECK_INT(m->prep->columns[k].pii, 0);
    }
    fm_model_free(m);
    m = NULL;
    /* Errors name the column: unknown, the target, dropped, the weight column. */
    o.pii = (const char *const[]){"x1", "nope"};
    o.npii = 2;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EINVAL);
    FM_CHECK_MSG(strstr(err.msg, "PII column 'nope' is not in") != NULL, "%s", err.msg);
    o.pii = (const char *const[]){"y"};
    o.npii = 1;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EINVAL);
    FM_CHECK_MSG(strstr(err.msg, "PII column 'y' is the target") != NULL, "%s", err.msg);
    o.pii = (const char *const[]){"x2"};
    o.drop = (const char *const[]){"x2"};
    o.ndrop = 1;
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EINVAL);
    FM_CHECK_MSG(strstr(err.msg, "PII column 'x2' is not a feature column (it is dropped)"), "%s",
                 err.msg);
    o.ndrop = 0;
    o.weight_column = "x2";
    FM_CHECK_INT(fm_train(f, &o, &m, &err), FM_EINVAL);
    FM_CHECK_MSG(strstr(err.msg, "(it is the weight column)") != NULL, "%s", err.msg);
    FM_CHECK(m == NULL);
    fm_frame_free(f);
}

int main(int argc, char **argv) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fm_train_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    static const fm_test_case_t cases[] = {FM_TEST_CASE(test_split_stratified),
                                           FM_TEST_CASE(test_target_resolution),
                                           FM_TEST_CASE(test_trainer_learns),
                                           FM_TEST_CASE(test_trainer_deterministic),
                                           FM_TEST_CASE(test_trainer_early_stopping),
                                           FM_TEST_CASE(test_trainer_regression_and_multiclass),
                                           FM_TEST_CASE(test_trainer_weights),
                                           FM_TEST_CASE(test_trainer_errors),
                                           FM_TEST_CASE(test_trainer_pii_columns)};
    int rc = fm_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) rc = 1;
    return rc;
}
