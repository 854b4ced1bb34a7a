/*
 * `finmaas search`: model selection on a CSV file. Builds the search specification (search.h)
 * from a JSON file given with --spec and/or from flags (flags win), runs the search with a
 * progress bar on stderr, prints the leaderboard and the Information Value table (or all results
 * as JSON with --json), writes the refit best model, and with --home and --name adds it to that
 * registry as a new version labelled "staging" (both steps audited, as `finmaas models` does).
 */
#include "cli/cli.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/progress.h"
#include "registry/registry.h"
#include "search/search.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas search --data F.csv --target COL --out M.fmm [options]\n"
    "\n"
    "Searches model families and settings with cross-validation, ranks the candidates in a\n"
    "leaderboard, refits the best on all training rows, measures it on a test share that the\n"
    "search never saw, and saves it as M.fmm (leaderboard, validation scheme, test metrics,\n"
    "Information Value and permutation importance in its description).\n"
    "\n"
    /* clang-format off */
    "data:\n"
    FM_CLI_TRAIN_USAGE_DATA
    "  --target COL            column to predict (required unless --spec names it)\n"
    FM_CLI_TRAIN_USAGE_COLUMNS
    /* clang-format on */
    "validation:\n"
    "  --scheme S              kfold (stratified, default) | holdout (stratified) | time\n"
    "  --folds K               kfold: number of folds (default 5)\n"
    "  --holdout X             test share set aside before the search (default 0.2; 0: none)\n"
    "  --valid-fraction X      holdout / time: validation share of the rest (default 0.2)\n"
    "  --time-column C         time: the column to order rows by (ISO dates or numbers)\n"
    "  --metric M              auc | accuracy | logloss | rmse | r2 (default auc for binary,\n"
    "                          accuracy for multiclass, rmse for regression)\n"
    "search:\n"
    "  --families F,...        logistic, mlp, gbt (default logistic,mlp)\n"
    "  --budget N              number of candidates (default 20)\n"
    "  --grid                  grid search (default: random search)\n"
    "  --selection S           best (the best CV mean wins, default) | one_se (the simplest\n"
    "                          family within one standard error of the best: logistic before\n"
    "                          mlp and gbt)\n"
    "  --seed S                seed of the splits, the candidates and every fit (default 42)\n"
    "  --iv-threshold X        binary: drop features whose Information Value is below X (WoE\n"
    "                          and IV take the positive class as the 'bad' one)\n"
    "  --importance-repeats N  permutation importance repeats on the test rows (default 3)\n"
    "  --protected COL,...     protected attributes: left out of every candidate's features;\n"
    "                          the chosen model stores their fairness (binary targets)\n"
    "  --threads N             BLAS threads of every fit (default 1)\n"
    "  --spec S.json           the whole search as JSON (the body POST /api/jobs takes);\n"
    "                          flags override its fields\n"
    "output:\n"
    "  --out M.fmm             model file to write (required)\n"
    "  --home DIR --name NAME  also add the model to this registry as a new version of NAME\n"
    "                          labelled 'staging'\n"
    "  --split-out F.csv       write each data row's part: row,part (fold >= 0, -1 training\n"
    "                          only, -2 test, -3 no target)\n"
    "  --json                  print the results as JSON instead of tables\n"
    "  --quiet                 no progress on stderr\n";

enum {
    OPT_SCHEME = FM_CLI_TRAIN_OPT_END,
    OPT_FOLDS,
    OPT_HOLDOUT,
    OPT_VALID_FRACTION,
    OPT_TIME_COLUMN,
    OPT_METRIC,
    OPT_FAMILIES,
    OPT_BUDGET,
    OPT_GRID,
    OPT_SELECTION,
    OPT_SEED,
    OPT_IV_THRESHOLD,
    OPT_IMPORTANCE_REPEATS,
    OPT_SPEC,
    OPT_HOME,
    OPT_NAME,
    OPT_SPLIT_OUT,
    OPT_JSON,
    OPT_PROTECTED
};

static const struct option options[] = {
    FM_CLI_TRAIN_LONG_OPTIONS,
    {"scheme", required_argument, NULL, OPT_SCHEME},
    {"folds", required_argument, NULL, OPT_FOLDS},
    {"holdout", required_argument, NULL, OPT_HOLDOUT},
    {"valid-fraction", required_argument, NULL, OPT_VALID_FRACTION},
    {"time-column", required_argument, NULL, OPT_TIME_COLUMN},
    {"metric", required_argument, NULL, OPT_METRIC},
    {"families", required_argument, NULL, OPT_FAMILIES},
    {"budget", required_argument, NULL, OPT_BUDGET},
    {"grid", no_argument, NULL, OPT_GRID},
    {"selection", required_argument, NULL, OPT_SELECTION},
    {"seed", required_argument, NULL, OPT_SEED},
    {"iv-threshold", required_argument, NULL, OPT_IV_THRESHOLD},
    {"importance-repeats", required_argument, NULL, OPT_IMPORTANCE_REPEATS},
    {"spec", required_argument, NULL, OPT_SPEC},
    {"home", required_argument, NULL, OPT_HOME},
    {"name", required_argument, NULL, OPT_NAME},
    {"split-out", required_argument, NULL, OPT_SPLIT_OUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"protected", required_argument, NULL, OPT_PROTECTED},
    {NULL, 0, NULL, 0},
};

#define MAX_SPEC_BYTES (16u << 20)

typedef struct search_args {
    fm_cli_train_args_t shared; /* the options train shares */
    const char *spec_file, *home, *name, *split_out;
    int json;
    cJSON *flags; /* the fields the flags set, merged over the spec file */
} search_args_t;

/* obj[key] (an object), created when absent. */
static cJSON *child_object(cJSON *obj, const char *key) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsObject(it)) return it;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    return cJSON_AddObjectToObject(obj, key);
}

/* Sets obj[key] = item, replacing what was there. Returns -1 when item is NULL (memory). */
static int put(cJSON *obj, const char *key, cJSON *item) {
    if (!obj || !item) {
        cJSON_Delete(item);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, item);
    return 0;
}

static cJSON *list_json(const char *text) {
    size_t n = 0;
    char **parts = fm_cli_split_list(text, &n);
    if (!parts) return NULL;
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(parts[i]));
    fm_cli_free_list(parts);
    return a;
}

/* Merges the flags' fields into spec, one level deep for the nested objects. */
static int merge(cJSON *spec, const cJSON *flags) {
    for (const cJSON *it = flags->child; it; it = it->next) {
        /* Nested objects merge key by key: --families narrows the spec file's space (and,
         * beside a fixed "model", makes the parser refuse the pair). */
        if (cJSON_IsObject(it)) {
            cJSON *into = child_object(spec, it->string);
            for (const cJSON *sub = it->child; sub; sub = sub->next)
                if (put(into, sub->string, cJSON_Duplicate(sub, 1))) return -1;
        } else if (put(spec, it->string, cJSON_Duplicate(it, 1))) {
            return -1;
        }
    }
    return 0;
}

static int set_number(cJSON *obj, const char *key, double v) {
    return put(obj, key, cJSON_CreateNumber(v));
}

static cJSON *names_json(char **list, size_t n) {
    return cJSON_CreateStringArray((const char *const *)list, (int)n);
}

/* The specification's fields that the shared options gave. -1: out of memory. */
static int put_shared(cJSON *f, const fm_cli_train_args_t *t) {
    int bad = 0;
    if (t->target) bad |= put(f, "target", cJSON_CreateString(t->target));
    if (t->positive) bad |= put(f, "positive", cJSON_CreateString(t->positive));
    if (t->task >= 0) bad |= put(f, "task", cJSON_CreateString(fm_task_name((fm_task_t)t->task)));
    if (t->drop) bad |= put(f, "drop", names_json(t->drop, t->ndrop));
    if (t->pii) bad |= put(f, "pii", names_json(t->pii, t->npii));
    if (t->threads) bad |= set_number(f, "threads", (double)t->threads);
    return bad ? -1 : 0;
}

/* Parses argv into a; returns 0, or an exit code after printing the error. */
static int parse_args(int argc, char **argv, search_args_t *a) {
    static const char command[] = "search";
    cJSON *f = a->flags;
    double d;
    long l;
    int c, bad = 0;
    fm_cli_train_args_t *shared = &a->shared;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        int code = fm_cli_train_option(command, c, optarg, shared);
        if (code != FM_CLI_NOT_SHARED) {
            if (code) return code;
            continue;
        }
        switch (c) {
        case OPT_SCHEME:
            bad = put(child_object(f, "validation"), "scheme", cJSON_CreateString(optarg));
            break;
        case OPT_FOLDS:
            if (fm_cli_parse_long(command, "folds", optarg, 2, 50, &l)) return FM_EXIT_USAGE;
            bad = set_number(child_object(f, "validation"), "folds", (double)l);
            break;
        case OPT_HOLDOUT:
            if (fm_cli_parse_double(command, "holdout", optarg, 0.0, 0.89, &d))
                return FM_EXIT_USAGE;
            bad = set_number(child_object(f, "validation"), "holdout", d);
            break;
        case OPT_VALID_FRACTION:
            if (fm_cli_parse_double(command, "valid-fraction", optarg, 0.01, 0.9, &d))
                return FM_EXIT_USAGE;
            bad = set_number(child_object(f, "validation"), "valid_fraction", d);
            break;
        case OPT_TIME_COLUMN:
            bad = put(child_object(f, "validation"), "time_column", cJSON_CreateString(optarg));
            break;
        case OPT_METRIC:
            bad = put(f, "metric", cJSON_CreateString(optarg));
            break;
        case OPT_FAMILIES:
            bad = put(child_object(f, "space"), "family", list_json(optarg));
            break;
        case OPT_BUDGET:
            if (fm_cli_parse_long(command, "budget", optarg, 1, 10000, &l)) return FM_EXIT_USAGE;
            bad = set_number(child_object(f, "search"), "budget", (double)l);
            break;
        case OPT_GRID:
            bad = put(child_object(f, "search"), "strategy", cJSON_CreateString("grid"));
            break;
        case OPT_SELECTION:
            bad = put(child_object(f, "search"), "selection", cJSON_CreateString(optarg));
            break;
        case OPT_SEED:
            if (fm_cli_parse_long(command, "seed", optarg, 0, 0x7fffffffL, &l))
                return FM_EXIT_USAGE;
            bad = set_number(child_object(f, "search"), "seed", (double)l) ||
                  set_number(child_object(f, "validation"), "seed", (double)l);
            break;
        case OPT_PROTECTED: {
            size_t n = 0;
            char **names = fm_cli_split_list(optarg, &n);
            if (!names) return fm_cli_usage_error(command, "out of memory");
            bad = put(f, "protected", names_json(names, n));
            fm_cli_free_list(names);
            break;
        }
        case OPT_IV_THRESHOLD:
            if (fm_cli_parse_double(command, "iv-threshold", optarg, 0.0, 100.0, &d))
                return FM_EXIT_USAGE;
            bad = set_number(f, "iv_threshold", d);
            break;
        case OPT_IMPORTANCE_REPEATS:
            if (fm_cli_parse_long(command, "importance-repeats", optarg, 0, 100, &l))
                return FM_EXIT_USAGE;
            bad = set_number(f, "importance_repeats", (double)l);
            break;
        case OPT_SPEC:
            a->spec_file = optarg;
            break;
        case OPT_HOME:
            a->home = optarg;
            break;
        case OPT_NAME:
            a->name = optarg;
            break;
        case OPT_SPLIT_OUT:
            a->split_out = optarg;
            break;
        case OPT_JSON:
            a->json = 1;
            break;
        default:
            return FM_EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "finmaas search: out of memory\n");
            return FM_EXIT_FAILURE;
        }
    }
    if (put_shared(f, shared)) {
        fprintf(stderr, "finmaas search: out of memory\n");
        return FM_EXIT_FAILURE;
    }
    if (fm_cli_no_positional(command, argc, argv)) return FM_EXIT_USAGE;
    if (!shared->data) return fm_cli_usage_error(command, "--data is required");
    if (!shared->out) return fm_cli_usage_error(command, "--out is required");
    if (!a->spec_file && !shared->target)
        return fm_cli_usage_error(command, "--target is required");
    if (!a->home != !a->name)
        return fm_cli_usage_error(command, "--home and --name go together (the registry and the "
                                           "model's name in it)");
    return 0;
}

/* The specification: the --spec file's JSON with the flags merged over it. */
static int build_spec(const search_args_t *a, fm_search_spec_t **spec, fm_error_t *err) {
    cJSON *json = NULL;
    int rc = FM_OK;
    if (a->spec_file) {
        char *text = NULL;
        size_t len = 0;
        rc = fm_file_read_all(a->spec_file, MAX_SPEC_BYTES, &text, &len, err);
        if (!rc) rc = fm_json_parse(text, len, a->spec_file, &json, err);
        free(text);
        if (!rc && !cJSON_IsObject(json))
            rc = fm_error_set(err, FM_EINVAL, "%s: the search specification must be a JSON object",
                              a->spec_file);
    } else if (!(json = cJSON_CreateObject())) {
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc && merge(json, a->flags)) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc && (rc = fm_search_spec_parse(json, spec, err)) && a->spec_file)
        fm_error_prefix(err, "%s: ", a->spec_file);
    cJSON_Delete(json);
    return rc;
}

/* Progress: a bar over the model fits, with the best mean so far. */
typedef struct progress_state {
    fm_progress_t bar;
    FILE *out;
    int started;
    long total;
    char metric[16];
    double best;
    int have_best;
    int higher_better;
} progress_state_t;

static void on_event(const cJSON *event, void *ctx) {
    progress_state_t *p = ctx;
    const char *type = cJSON_GetObjectItem(event, "type")->valuestring;
    long done = (long)cJSON_GetObjectItem(event, "fits_done")->valuedouble;
    if (!p->started) {
        p->total = (long)cJSON_GetObjectItem(event, "fits_total")->valuedouble;
        fm_progress_init(&p->bar, p->out, "fit", p->total);
        p->started = 1;
    }
    if (!strcmp(type, "candidate_done")) {
        const cJSON *mean = cJSON_GetObjectItem(event, "mean");
        const cJSON *metric = cJSON_GetObjectItem(event, "metric");
        if (cJSON_IsString(metric)) {
            snprintf(p->metric, sizeof p->metric, "%s", metric->valuestring);
            p->higher_better = strcmp(p->metric, "logloss") != 0 && strcmp(p->metric, "rmse") != 0;
        }
        if (cJSON_IsNumber(mean) &&
            (!p->have_best ||
             (p->higher_better ? mean->valuedouble > p->best : mean->valuedouble < p->best))) {
            p->best = mean->valuedouble;
            p->have_best = 1;
        }
    }
    char figures[96] = "";
    const cJSON *index = cJSON_GetObjectItem(event, "index");
    if (!strcmp(type, "refit_started"))
        snprintf(figures, sizeof figures, "refit of candidate %d", (int)index->valuedouble);
    else if (p->have_best)
        snprintf(figures, sizeof figures, "best %s %.4f", p->metric, p->best);
    if (!strcmp(type, "done"))
        fm_progress_finish(&p->bar, p->total, figures);
    else
        fm_progress_update(&p->bar, done, figures);
}

static int write_split(const char *path, const fm_frame_t *frame, const fm_search_spec_t *spec,
                       fm_error_t *err) {
    int32_t *part = malloc((frame->nrows ? frame->nrows : 1) * sizeof *part);
    int nfolds = 0;
    if (!part) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = fm_search_assign(frame, spec, part, &nfolds, err);
    fm_atomic_file_t f;
    if (!rc) rc = fm_atomic_file_open(&f, path, 0, err);
    if (!rc) {
        fputs("row,part\n", f.fp);
        for (size_t i = 0; i < frame->nrows; i++)
            fprintf(f.fp, "%zu,%d\n", i, (int)part[i]);
        rc = fm_atomic_file_commit(&f, err);
    }
    free(part);
    return rc;
}

/* Adds the saved model to the registry as the next version of name, labelled staging. */
static int register_model(const search_args_t *a, int64_t *version, fm_error_t *err) {
    int rc = fm_registry_check_name("model", a->name, err);
    if (rc) return rc;
    fm_master_key_t key;
    int have_key = 0;
    if ((rc = fm_master_key_from_env(&key, &have_key, err))) return rc;
    fm_registry_t *r = NULL;
    fm_audit_t *log = NULL;
    rc = fm_registry_open(a->home, &r, err);
    if (!rc && have_key) rc = fm_registry_set_master_key(r, &key);
    fm_master_key_wipe(&key);
    if (!rc) rc = fm_cli_audit_open(a->home, &log, err);
    if (!rc) {
        rc = fm_registry_add_file(r, a->name, a->shared.out, version, err);
        rc = fm_cli_audit_record(log, "model.upload", a->name, *version, "search", rc, err);
    }
    if (!rc) {
        rc = fm_registry_set_label(r, a->name, "staging", *version, err);
        rc = fm_cli_audit_record(log, "label.set", a->name, *version, "label=staging", rc, err);
    }
    fm_audit_close(log);
    fm_registry_close(r);
    return rc;
}

static void print_json(const search_args_t *a, const fm_search_result_t *r, int64_t version) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", a->shared.out);
    cJSON_AddNumberToObject(o, "best", (double)r->best);
    cJSON_AddItemToObject(o, "validation", cJSON_Duplicate(r->validation, 1));
    cJSON_AddItemToObject(o, "leaderboard", cJSON_Duplicate(r->leaderboard, 1));
    cJSON_AddItemToObject(o, "test_metrics", cJSON_Duplicate(r->test_metrics, 1));
    cJSON_AddItemToObject(o, "information_value", cJSON_Duplicate(r->features, 1));
    cJSON_AddItemToObject(o, "permutation_importance", cJSON_Duplicate(r->importance, 1));
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    if (version > 0) {
        cJSON *reg = cJSON_AddObjectToObject(o, "registered");
        cJSON_AddStringToObject(reg, "name", a->name);
        cJSON_AddNumberToObject(reg, "version", (double)version);
        cJSON_AddStringToObject(reg, "label", "staging");
    }
    char *text = cJSON_Print(o);
    if (text) puts(text);
    free(text);
    cJSON_Delete(o);
}

int fm_cmd_search(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    search_args_t a;
    memset(&a, 0, sizeof a);
    fm_cli_train_args_init(&a.shared);
    a.flags = cJSON_CreateObject();
    if (!a.flags) return FM_EXIT_FAILURE;
    int code = parse_args(argc, argv, &a);
    if (code) {
        fm_cli_train_args_deinit(&a.shared);
        cJSON_Delete(a.flags);
        return code;
    }
    const char *data = a.shared.data, *out = a.shared.out, *schema = a.shared.schema;
    fm_error_t err;
    fm_error_clear(&err);
    fm_search_spec_t *spec = NULL;
    fm_type_overrides_t overrides = {0};
    fm_frame_t *frame = NULL;
    fm_search_result_t *result = NULL;
    int64_t version = 0;
    int rc = build_spec(&a, &spec, &err);
    /* Fail on an unwritable output or a bad model name before spending time on the search. */
    fm_atomic_file_t probe;
    if (!rc && !(rc = fm_atomic_file_open(&probe, out, 0, &err))) fm_atomic_file_abort(&probe);
    if (!rc && a.name) rc = fm_registry_check_name("model", a.name, &err);
    if (!rc && schema) rc = fm_type_overrides_load(schema, &overrides, &err);
    if (!rc) rc = fm_frame_read_csv(data, schema ? &overrides : NULL, &frame, &err);
    if (!rc && a.split_out) rc = write_split(a.split_out, frame, spec, &err);
    progress_state_t progress;
    memset(&progress, 0, sizeof progress);
    progress.out = a.shared.quiet ? NULL : stderr;
    if (!rc) {
        rc = fm_search_run(frame, spec, on_event, &progress, NULL, &result, &err);
        if (rc && progress.started) fm_progress_abandon(&progress.bar);
    }
    if (!rc) rc = fm_model_save(result->model, out, &err);
    if (!rc && a.home) rc = register_model(&a, &version, &err);
    if (result && (!rc || result->leaderboard)) {
        if (a.json) {
            print_json(&a, result, version);
        } else {
            fm_search_leaderboard_print(stdout, result);
            if (cJSON_GetArraySize(result->features) > 0) {
                printf("\nInformation Value on the training rows:\n");
                fm_search_iv_print(stdout, result->features);
            }
            if (!rc) printf("\nmodel written to %s\n", out);
            if (version > 0)
                printf("registered as %s version %" PRId64 ", labelled staging\n", a.name, version);
        }
    }
    code = rc ? fm_cli_fail("search", &err) : FM_EXIT_OK;
    fm_search_result_free(result);
    fm_frame_free(frame);
    fm_type_overrides_free(&overrides);
    fm_search_spec_free(spec);
    fm_cli_train_args_deinit(&a.shared);
    cJSON_Delete(a.flags);
    return code;
}
