/*
 * `finmaas train`: reads a CSV file, trains a model (a network, or gradient-boosted trees with
 * --model gbt) and saves it as a .fmm file, then prints a JSON summary (rows, features, epochs or
 * rounds, timings, validation metrics) on stdout. Progress goes to stderr. The model file appears
 * only when everything succeeded.
 */
#include "cli/cli.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "train/train.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas train --data F.csv --target COL --out M.fmm [options]\n"
    "\n"
    "Trains a model on a CSV file (header row, comma separated) and saves it as M.fmm.\n"
    "\n"
    /* clang-format off */
    "data:\n"
    FM_CLI_TRAIN_USAGE_DATA
    "  --target COL            column to predict (required)\n"
    FM_CLI_TRAIN_USAGE_COLUMNS
    /* clang-format on */
    "  --weight-column COL     numeric column of sample weights\n"
    "  --class-weight W        none | balanced (default none)\n"
    "  --missing-indicators    add a 0/1 '<col>_missing' feature for columns with missing values\n"
    "  --max-categories N      one-hot at most N most frequent categories per column (default "
    "100)\n"
    "model:\n"
    "  --model M               logistic | linear | softmax | mlp | gbt (default: logistic for\n"
    "                          binary, softmax for multiclass, linear for regression); gbt:\n"
    "                          gradient-boosted trees (XGBoost, hist method)\n"
    "  --hidden 32,16          mlp hidden layer widths (default 32,16)\n"
    "  --activation A          mlp hidden activation: relu | tanh | sigmoid | identity (default "
    "relu)\n"
    "training:\n"
    "  --optimizer O           gd | sgd | adam (default adam)\n"
    "  --lr X                  learning rate (default 0.001 for adam, 0.01 for sgd and gd)\n"
    "  --momentum X            sgd momentum (default 0)\n"
    "  --nesterov              sgd: Nesterov momentum\n"
    "  --epochs N              maximum passes over the data (default 200)\n"
    "  --batch N               mini-batch rows (default 32; gd uses all rows)\n"
    "  --l2 X                  L2 penalty: loss + (X/2) sum of squared weights (default 0.0001)\n"
    "  --valid-fraction X      share held out (stratified) for early stopping (default 0.2; 0: "
    "none)\n"
    "  --patience N            epochs without improvement before stopping (default 10)\n"
    "  --seed N                random seed (default 42); same seed and threads, same model\n"
    "  --threads N             BLAS threads, or gbt training threads (default 1)\n"
    "gbt (with --model gbt):\n"
    "  --rounds N              boosting rounds, trees per class (default 300)\n"
    "  --max-depth N           tree depth, 1 to 30 (default 4)\n"
    "  --eta X                 learning rate, (0, 1] (default 0.05)\n"
    "  --subsample X           share of rows per tree, (0, 1] (default 0.8)\n"
    "  --colsample X           share of features per tree, (0, 1] (default 0.8)\n"
    "  --min-child-weight X    least hessian sum in a leaf (default 1)\n"
    "  --gbt-lambda X          L2 penalty on leaf weights (default 1)\n"
    "  --gbt-alpha X           L1 penalty on leaf weights (default 0)\n"
    "  --early-stopping N      stop after N rounds without validation improvement and keep the\n"
    "                          best round (default 30; 0: off, all rounds "
    "kept)\n" FM_CLI_GOVERN_USAGE "output:\n"
    "  --out M.fmm             model file to write (required)\n"
    "  --quiet                 no progress on stderr\n";

enum {
    OPT_WEIGHT_COLUMN = FM_CLI_TRAIN_OPT_END,
    OPT_CLASS_WEIGHT,
    OPT_MISSING_INDICATORS,
    OPT_MAX_CATEGORIES,
    OPT_MODEL,
    OPT_HIDDEN,
    OPT_ACTIVATION,
    OPT_OPTIMIZER,
    OPT_LR,
    OPT_MOMENTUM,
    OPT_NESTEROV,
    OPT_EPOCHS,
    OPT_BATCH,
    OPT_L2,
    OPT_VALID_FRACTION,
    OPT_PATIENCE,
    OPT_SEED,
    OPT_ROUNDS,
    OPT_MAX_DEPTH,
    OPT_ETA,
    OPT_SUBSAMPLE,
    OPT_COLSAMPLE,
    OPT_MIN_CHILD_WEIGHT,
    OPT_GBT_LAMBDA,
    OPT_GBT_ALPHA,
    OPT_EARLY_STOPPING
};

static const struct option options[] = {
    FM_CLI_TRAIN_LONG_OPTIONS,
    {"weight-column", required_argument, NULL, OPT_WEIGHT_COLUMN},
    {"class-weight", required_argument, NULL, OPT_CLASS_WEIGHT},
    {"missing-indicators", no_argument, NULL, OPT_MISSING_INDICATORS},
    {"max-categories", required_argument, NULL, OPT_MAX_CATEGORIES},
    {"model", required_argument, NULL, OPT_MODEL},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"activation", required_argument, NULL, OPT_ACTIVATION},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"lr", required_argument, NULL, OPT_LR},
    {"momentum", required_argument, NULL, OPT_MOMENTUM},
    {"nesterov", no_argument, NULL, OPT_NESTEROV},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"l2", required_argument, NULL, OPT_L2},
    {"valid-fraction", required_argument, NULL, OPT_VALID_FRACTION},
    {"patience", required_argument, NULL, OPT_PATIENCE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"rounds", required_argument, NULL, OPT_ROUNDS},
    {"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
    {"eta", required_argument, NULL, OPT_ETA},
    {"subsample", required_argument, NULL, OPT_SUBSAMPLE},
    {"colsample", required_argument, NULL, OPT_COLSAMPLE},
    {"min-child-weight", required_argument, NULL, OPT_MIN_CHILD_WEIGHT},
    {"gbt-lambda", required_argument, NULL, OPT_GBT_LAMBDA},
    {"gbt-alpha", required_argument, NULL, OPT_GBT_ALPHA},
    {"early-stopping", required_argument, NULL, OPT_EARLY_STOPPING},
    FM_CLI_GOVERN_LONG_OPTIONS,
    {NULL, 0, NULL, 0},
};

typedef struct train_args {
    fm_cli_train_args_t shared; /* the options search shares */
    fm_cli_govern_args_t govern;
    int lr_given;
    const char *gbt_flag; /* the last gbt-only flag given, to refuse it for other models */
    fm_train_options_t train;
} train_args_t;

static int parse_hidden(const char *text, fm_train_options_t *o) {
    size_t n = 0;
    char **parts = fm_cli_split_list(text, &n);
    if (!parts) return -1;
    int ok = n >= 1 && n <= FM_NET_MAX_LAYERS - 1;
    for (size_t i = 0; ok && i < n; i++) {
        char *end;
        long v = strtol(parts[i], &end, 10);
        ok = *end == '\0' && v >= 1 && v <= 65536;
        o->hidden[i] = (int)v;
    }
    o->nhidden = (int)n;
    fm_cli_free_list(parts);
    if (!ok)
        fm_cli_usage_error("train",
                           "--hidden must be 1 to %d comma-separated widths in "
                           "[1, 65536], got '%s'",
                           FM_NET_MAX_LAYERS - 1, text);
    return ok ? 0 : -1;
}

/* Parses argv into a; returns 0, or an exit code after printing the error. */
static int parse_args(int argc, char **argv, train_args_t *a) {
    fm_train_options_t *o = &a->train;
    double d;
    long l;
    int c;
    fm_optimizer_kind_t kind = FM_OPT_ADAM;
    double lr = 0, momentum = 0;
    int nesterov = 0;
    fm_cli_train_args_t *shared = &a->shared;
    while ((c = fm_cli_next_option("train", argc, argv, options)) != -1) {
        int code = fm_cli_train_option("train", c, optarg, shared);
        if (code == FM_CLI_NOT_SHARED) code = fm_cli_govern_option("train", c, optarg, &a->govern);
        if (code != FM_CLI_NOT_SHARED) {
            if (code) return code;
            continue;
        }
        switch (c) {
        case OPT_WEIGHT_COLUMN:
            o->weight_column = optarg;
            break;
        case OPT_CLASS_WEIGHT:
            if (!strcmp(optarg, "balanced"))
                o->class_weight = FM_CLASS_WEIGHT_BALANCED;
            else if (!strcmp(optarg, "none"))
                o->class_weight = FM_CLASS_WEIGHT_NONE;
            else
                return fm_cli_usage_error("train",
                                          "--class-weight must be none or balanced, got "
                                          "'%s'",
                                          optarg);
            break;
        case OPT_MISSING_INDICATORS:
            o->prep.missing_indicators = 1;
            break;
        case OPT_MAX_CATEGORIES:
            if (fm_cli_parse_long("train", "max-categories", optarg, 1, 100000, &l))
                return FM_EXIT_USAGE;
            o->prep.max_categories = (size_t)l;
            break;
        case OPT_MODEL:
            o->family = optarg;
            break;
        case OPT_HIDDEN:
            if (parse_hidden(optarg, o)) return FM_EXIT_USAGE;
            break;
        case OPT_ACTIVATION:
            if (fm_activation_parse(optarg, &o->activation) || o->activation == FM_ACT_SOFTMAX)
                return fm_cli_usage_error("train",
                                          "--activation must be relu, tanh, sigmoid or "
                                          "identity, got '%s'",
                                          optarg);
            break;
        case OPT_OPTIMIZER:
            if (fm_optimizer_parse(optarg, &kind))
                return fm_cli_usage_error("train", "--optimizer must be gd, sgd or adam, got '%s'",
                                          optarg);
            break;
        case OPT_LR:
            if (fm_cli_parse_double("train", "lr", optarg, 1e-12, 100.0, &lr)) return FM_EXIT_USAGE;
            a->lr_given = 1;
            break;
        case OPT_MOMENTUM:
            if (fm_cli_parse_double("train", "momentum", optarg, 0.0, 0.9999, &momentum))
                return FM_EXIT_USAGE;
            break;
        case OPT_NESTEROV:
            nesterov = 1;
            break;
        case OPT_EPOCHS:
            if (fm_cli_parse_long("train", "epochs", optarg, 1, 1000000, &l)) return FM_EXIT_USAGE;
            o->epochs = (int)l;
            break;
        case OPT_BATCH:
            if (fm_cli_parse_long("train", "batch", optarg, 1, 1 << 20, &l)) return FM_EXIT_USAGE;
            o->batch = (int)l;
            break;
        case OPT_L2:
            if (fm_cli_parse_double("train", "l2", optarg, 0.0, 1e6, &d)) return FM_EXIT_USAGE;
            o->l2 = d;
            break;
        case OPT_VALID_FRACTION:
            if (fm_cli_parse_double("train", "valid-fraction", optarg, 0.0, 0.9, &d))
                return FM_EXIT_USAGE;
            o->valid_fraction = d;
            break;
        case OPT_PATIENCE:
            if (fm_cli_parse_long("train", "patience", optarg, 1, 1000000, &l))
                return FM_EXIT_USAGE;
            o->patience = (int)l;
            break;
        case OPT_SEED:
            if (fm_cli_parse_long("train", "seed", optarg, 0, 0x7fffffffL, &l))
                return FM_EXIT_USAGE;
            o->seed = (uint64_t)l;
            break;
        case OPT_ROUNDS:
            if (fm_cli_parse_long("train", "rounds", optarg, 1, FM_GBT_MAX_ROUNDS, &l))
                return FM_EXIT_USAGE;
            o->gbt.rounds = (int)l;
            a->gbt_flag = "--rounds";
            break;
        case OPT_MAX_DEPTH:
            if (fm_cli_parse_long("train", "max-depth", optarg, 1, FM_GBT_MAX_DEPTH, &l))
                return FM_EXIT_USAGE;
            o->gbt.max_depth = (int)l;
            a->gbt_flag = "--max-depth";
            break;
        case OPT_ETA:
            if (fm_cli_parse_double("train", "eta", optarg, 1e-9, 1.0, &o->gbt.eta))
                return FM_EXIT_USAGE;
            a->gbt_flag = "--eta";
            break;
        case OPT_SUBSAMPLE:
            if (fm_cli_parse_double("train", "subsample", optarg, 1e-9, 1.0, &o->gbt.subsample))
                return FM_EXIT_USAGE;
            a->gbt_flag = "--subsample";
            break;
        case OPT_COLSAMPLE:
            if (fm_cli_parse_double("train", "colsample", optarg, 1e-9, 1.0, &o->gbt.colsample))
                return FM_EXIT_USAGE;
            a->gbt_flag = "--colsample";
            break;
        case OPT_MIN_CHILD_WEIGHT:
            if (fm_cli_parse_double("train", "min-child-weight", optarg, 0.0, 1e9,
                                    &o->gbt.min_child_weight))
                return FM_EXIT_USAGE;
            a->gbt_flag = "--min-child-weight";
            break;
        case OPT_GBT_LAMBDA:
            if (fm_cli_parse_double("train", "gbt-lambda", optarg, 0.0, 1e9, &o->gbt.lambda))
                return FM_EXIT_USAGE;
            a->gbt_flag = "--gbt-lambda";
            break;
        case OPT_GBT_ALPHA:
            if (fm_cli_parse_double("train", "gbt-alpha", optarg, 0.0, 1e9, &o->gbt.alpha))
                return FM_EXIT_USAGE;
            a->gbt_flag = "--gbt-alpha";
            break;
        case OPT_EARLY_STOPPING:
            if (fm_cli_parse_long("train", "early-stopping", optarg, 0, FM_GBT_MAX_ROUNDS, &l))
                return FM_EXIT_USAGE;
            o->gbt.early_stopping = (int)l;
            a->gbt_flag = "--early-stopping";
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional("train", argc, argv)) return FM_EXIT_USAGE;
    if (!shared->data) return fm_cli_usage_error("train", "--data is required");
    if (!shared->target) return fm_cli_usage_error("train", "--target is required");
    if (!shared->out) return fm_cli_usage_error("train", "--out is required");
    if (a->gbt_flag && (!o->family || strcmp(o->family, "gbt") != 0))
        return fm_cli_usage_error("train", "%s applies to --model gbt", a->gbt_flag);
    o->optimizer = fm_optimizer_defaults(kind);
    if (a->lr_given) o->optimizer.lr = lr;
    if (momentum > 0 || nesterov) {
        if (kind != FM_OPT_SGD)
            return fm_cli_usage_error("train",
                                      "--momentum and --nesterov apply to --optimizer sgd");
        o->optimizer.momentum = momentum;
        o->optimizer.nesterov = nesterov;
    }
    o->target = shared->target;
    o->positive = shared->positive;
    o->task = shared->task;
    if (shared->threads) o->threads = shared->threads;
    o->drop = (const char *const *)shared->drop;
    o->ndrop = shared->ndrop;
    o->pii = (const char *const *)shared->pii;
    o->npii = shared->npii;
    o->progress = shared->quiet ? NULL : stderr;
    return 0;
}

static void print_summary(const train_args_t *a, const fm_model_t *m, double read_s,
                          double total_s) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "model", a->shared.out);
    cJSON_AddStringToObject(s, "task", fm_task_name(m->task));
    cJSON_AddStringToObject(s, "family", m->family);
    cJSON_AddStringToObject(s, "target", m->target);
    if (m->task == FM_TASK_BINARY) cJSON_AddStringToObject(s, "positive_class", m->classes[1]);
    const cJSON *training = cJSON_GetObjectItem(m->info, "training");
    const cJSON *validation = cJSON_GetObjectItem(m->info, "validation");
    cJSON *rows = cJSON_AddObjectToObject(s, "rows");
    cJSON_AddItemToObject(rows, "train", cJSON_Duplicate(cJSON_GetObjectItem(training, "rows"), 1));
    cJSON_AddItemToObject(rows, "valid",
                          cJSON_Duplicate(cJSON_GetObjectItem(validation, "rows"), 1));
    cJSON_AddNumberToObject(s, "features", (double)m->prep->nfeatures);
    if (m->gbt) {
        const fm_gbt_info_t *info = fm_gbt_info(m->gbt);
        cJSON_AddNumberToObject(s, "trees", (double)info->trees);
        cJSON_AddNumberToObject(s, "leaves", (double)info->leaves);
        cJSON_AddItemToObject(s, "rounds_run",
                              cJSON_Duplicate(cJSON_GetObjectItem(training, "rounds_run"), 1));
        cJSON_AddItemToObject(s, "best_round",
                              cJSON_Duplicate(cJSON_GetObjectItem(training, "best_round"), 1));
    } else {
        cJSON_AddNumberToObject(s, "parameters", (double)m->net->nparams);
        cJSON_AddItemToObject(s, "epochs_run",
                              cJSON_Duplicate(cJSON_GetObjectItem(training, "epochs_run"), 1));
        cJSON_AddItemToObject(s, "best_epoch",
                              cJSON_Duplicate(cJSON_GetObjectItem(training, "best_epoch"), 1));
    }
    cJSON *seconds = cJSON_AddObjectToObject(s, "seconds");
    cJSON_AddNumberToObject(seconds, "read", read_s);
    cJSON_AddItemToObject(seconds, "train",
                          cJSON_Duplicate(cJSON_GetObjectItem(training, "seconds"), 1));
    if (m->gbt)
        cJSON_AddItemToObject(
            seconds, "boosting",
            cJSON_Duplicate(
                cJSON_GetObjectItem(cJSON_GetObjectItem(training, "gbt"), "boosting_seconds"), 1));
    cJSON_AddNumberToObject(seconds, "total", total_s);
    const cJSON *metrics = cJSON_GetObjectItem(validation, "metrics");
    if (metrics) cJSON_AddItemToObject(s, "validation", cJSON_Duplicate(metrics, 1));
    char *text = cJSON_Print(s);
    if (text) puts(text);
    free(text);
    cJSON_Delete(s);
}

int fm_cmd_train(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    double start = fm_clock_seconds();
    train_args_t a;
    memset(&a, 0, sizeof a);
    fm_cli_train_args_init(&a.shared);
    fm_cli_govern_args_init(&a.govern);
    fm_train_options_defaults(&a.train);
    int code = parse_args(argc, argv, &a);
    if (!code) code = fm_cli_govern_apply("train", &a.govern, &a.train);
    if (code) {
        fm_cli_train_args_deinit(&a.shared);
        fm_cli_govern_args_deinit(&a.govern);
        return code;
    }
    const char *data = a.shared.data, *out = a.shared.out, *schema = a.shared.schema;
    fm_error_t err;
    fm_error_clear(&err);
    fm_type_overrides_t overrides = {0};
    fm_frame_t *frame = NULL;
    fm_model_t *model = NULL;
    double read_s = 0;
    /* Fail on an unwritable output before spending time on training. */
    fm_atomic_file_t probe;
    int rc = fm_atomic_file_open(&probe, out, 0, &err);
    if (!rc) fm_atomic_file_abort(&probe);
    if (!rc && schema) rc = fm_type_overrides_load(schema, &overrides, &err);
    if (!rc) {
        double t0 = fm_clock_seconds();
        rc = fm_frame_read_csv(data, schema ? &overrides : NULL, &frame, &err);
        read_s = fm_clock_seconds() - t0;
    }
    if (!rc) rc = fm_train(frame, &a.train, &model, &err);
    if (!rc) rc = fm_model_save(model, out, &err);
    if (!rc) print_summary(&a, model, read_s, fm_clock_seconds() - start);
    code = rc ? fm_cli_fail("train", &err) : FM_EXIT_OK;
    fm_model_free(model);
    fm_frame_free(frame);
    fm_type_overrides_free(&overrides);
    fm_cli_train_args_deinit(&a.shared);
    fm_cli_govern_args_deinit(&a.govern);
    return code;
}
