/*
 * `finmaas import-keras`: reads a Keras 2.x model saved as HDF5 (import/keras.h) and saves the
 * equivalent finmaas model as a .fmm file, then prints a JSON summary (task, classes, inputs,
 * architecture, source digests) on stdout. The model file appears only when the import succeeded.
 */
#include "cli/cli.h"
#include "import/keras.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas import-keras M.h5 --out M.fmm [options]\n"
    "\n"
    "Imports a Keras 2.x model saved with model.save(\"M.h5\") (HDF5): Sequential, or a\n"
    "Functional plain chain, of InputLayer, Dense (linear, relu, sigmoid, tanh, softmax; with or\n"
    "without bias), Activation and Dropout layers. The model's inputs become numeric columns,\n"
    "scaled as the Keras model expects: (x - mean) / scale.\n"
    "\n"
    "  --out M.fmm               model file to write (required)\n"
    "  --feature-names a,b,...   the input columns' names, one per model input (default x0,x1,..)\n"
    "  --scaler-mean m1,m2,...   per input: the mean of the StandardScaler the model was trained\n"
    "                            behind (scikit-learn's mean_); with --scaler-scale\n"
    "  --scaler-scale s1,s2,...  per input: the scaler's scale_ (positive)\n"
    "                            (without a scaler the inputs reach the network unchanged)\n"
    "  --task T                  binary | multiclass | regression (default from the last layer:\n"
    "                            sigmoid over 1 unit binary, softmax multiclass, else regression;\n"
    "                            on a linear last layer binary and multiclass read logits)\n"
    "  --classes neg,pos         class labels in output order (default 0,1,...)\n"
    "  --target NAME             the predicted column's name (default target)\n"
    "  --pii COL,...             input columns holding personal data: masked in logs, audit and "
    "errors\n";

enum {
    OPT_OUT = 1000,
    OPT_FEATURE_NAMES,
    OPT_SCALER_MEAN,
    OPT_SCALER_SCALE,
    OPT_TASK,
    OPT_CLASSES,
    OPT_TARGET,
    OPT_PII
};

static const struct option options[] = {
    {"out", required_argument, NULL, OPT_OUT},
    {"feature-names", required_argument, NULL, OPT_FEATURE_NAMES},
    {"scaler-mean", required_argument, NULL, OPT_SCALER_MEAN},
    {"scaler-scale", required_argument, NULL, OPT_SCALER_SCALE},
    {"task", required_argument, NULL, OPT_TASK},
    {"classes", required_argument, NULL, OPT_CLASSES},
    {"target", required_argument, NULL, OPT_TARGET},
    {"pii", required_argument, NULL, OPT_PII},
    {NULL, 0, NULL, 0},
};

typedef struct import_args {
    const char *input, *out;
    char **features, **classes, **pii;
    size_t nfeatures, nclasses, npii;
    double *mean, *scale;
    size_t nmean, nscale;
    fm_keras_options_t keras;
} import_args_t;

static void args_free(import_args_t *a) {
    fm_cli_free_list(a->features);
    fm_cli_free_list(a->classes);
    fm_cli_free_list(a->pii);
    free(a->mean);
    free(a->scale);
}

/* Replaces *list with the items of text; -1 after printing the error. */
static int take_list(const char *option, const char *text, char ***list, size_t *count) {
    fm_cli_free_list(*list);
    *list = fm_cli_split_list(text, count);
    if (!*list || *count == 0) {
        fm_cli_usage_error("import-keras", *list ? "--%s is empty" : "--%s: out of memory", option);
        return -1;
    }
    return 0;
}

/* Parses "1.5,2,..." into a new array; -1 after printing the error. */
static int take_numbers(const char *option, const char *text, double **out, size_t *count) {
    char **items = NULL;
    size_t n = 0;
    if (take_list(option, text, &items, &n)) return -1;
    free(*out);
    *out = malloc(n * sizeof **out);
    int rc = 0;
    if (!*out) {
        fm_cli_usage_error("import-keras", "--%s: out of memory", option);
        rc = -1;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        char *end;
        errno = 0;
        (*out)[i] = strtod(items[i], &end);
        if (end == items[i] || *end || errno || !isfinite((*out)[i])) {
            fm_cli_usage_error("import-keras", "--%s: item %zu '%s' is not a finite number", option,
                               i + 1, items[i]);
            rc = -1;
        }
    }
    *count = n;
    fm_cli_free_list(items);
    return rc;
}

/* Parses argv into a; returns 0, or an exit code after printing the error. */
static int parse_args(int argc, char **argv, import_args_t *a) {
    fm_keras_options_defaults(&a->keras);
    int c;
    while ((c = fm_cli_next_option("import-keras", argc, argv, options)) != -1) {
        switch (c) {
        case OPT_OUT:
            a->out = optarg;
            break;
        case OPT_FEATURE_NAMES:
            if (take_list("feature-names", optarg, &a->features, &a->nfeatures))
                return FM_EXIT_USAGE;
            break;
        case OPT_SCALER_MEAN:
            if (take_numbers("scaler-mean", optarg, &a->mean, &a->nmean)) return FM_EXIT_USAGE;
            break;
        case OPT_SCALER_SCALE:
            if (take_numbers("scaler-scale", optarg, &a->scale, &a->nscale)) return FM_EXIT_USAGE;
            break;
        case OPT_TASK: {
            fm_task_t task;
            if (fm_task_parse(optarg, &task))
                return fm_cli_usage_error("import-keras",
                                          "--task must be binary, multiclass or regression, got "
                                          "'%s'",
                                          optarg);
            a->keras.task = (int)task;
            break;
        }
        case OPT_CLASSES:
            if (take_list("classes", optarg, &a->classes, &a->nclasses)) return FM_EXIT_USAGE;
            break;
        case OPT_TARGET:
            if (!*optarg) return fm_cli_usage_error("import-keras", "--target is empty");
            a->keras.target = optarg;
            break;
        case OPT_PII:
            if (take_list("pii", optarg, &a->pii, &a->npii)) return FM_EXIT_USAGE;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return fm_cli_usage_error("import-keras", "expected the Keras model file M.h5 (see "
                                                  "finmaas import-keras --help)");
    a->input = argv[optind++];
    if (fm_cli_no_positional("import-keras", argc, argv)) return FM_EXIT_USAGE;
    if (!a->out) return fm_cli_usage_error("import-keras", "--out is required");
    if (!a->mean != !a->scale)
        return fm_cli_usage_error("import-keras", "--scaler-mean and --scaler-scale go together");
    fm_keras_options_t *k = &a->keras;
    k->feature_names = (const char *const *)a->features;
    k->nfeature_names = a->nfeatures;
    k->scaler_mean = a->mean;
    k->nscaler_mean = a->nmean;
    k->scaler_scale = a->scale;
    k->nscaler_scale = a->nscale;
    k->classes = (const char *const *)a->classes;
    k->nclasses = a->nclasses;
    k->pii = (const char *const *)a->pii;
    k->npii = a->npii;
    return 0;
}

static void print_summary(const import_args_t *a, const fm_model_t *m) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "model", a->out);
    cJSON_AddStringToObject(s, "task", fm_task_name(m->task));
    cJSON_AddStringToObject(s, "family", m->family);
    cJSON_AddStringToObject(s, "target", m->target);
    if (m->task != FM_TASK_REGRESSION) {
        cJSON *classes = cJSON_AddArrayToObject(s, "classes");
        for (size_t c = 0; classes && c < m->nclasses; c++)
            cJSON_AddItemToArray(classes, cJSON_CreateString(m->classes[c]));
    }
    cJSON *inputs = cJSON_AddArrayToObject(s, "inputs");
    for (size_t i = 0; inputs && i < m->prep->ncolumns; i++)
        cJSON_AddItemToArray(inputs, cJSON_CreateString(m->prep->columns[i].name));
    cJSON *sizes = cJSON_AddArrayToObject(s, "sizes");
    for (int l = 0; sizes && l <= m->net->nlayers; l++)
        cJSON_AddItemToArray(sizes, cJSON_CreateNumber(m->net->sizes[l]));
    cJSON_AddStringToObject(s, "hidden_activation", fm_activation_name(m->net->hidden));
    cJSON_AddStringToObject(s, "output_activation", fm_activation_name(m->net->output));
    cJSON_AddNumberToObject(s, "parameters", (double)m->net->nparams);
    const cJSON *source = cJSON_GetObjectItemCaseSensitive(m->info, "source");
    if (source) cJSON_AddItemToObject(s, "source", cJSON_Duplicate(source, 1));
    char *text = cJSON_Print(s);
    if (text) puts(text);
    free(text);
    cJSON_Delete(s);
}

int fm_cmd_import_keras(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    import_args_t a;
    memset(&a, 0, sizeof a);
    int code = parse_args(argc, argv, &a);
    if (code) {
        args_free(&a);
        return code;
    }
    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    int rc = fm_keras_import(a.input, &a.keras, &model, &err);
    if (!rc) rc = fm_model_save(model, a.out, &err);
    if (!rc) print_summary(&a, model);
    code = rc ? fm_cli_fail("import-keras", &err) : FM_EXIT_OK;
    fm_model_free(model);
    args_free(&a);
    return code;
}
