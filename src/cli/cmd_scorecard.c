/*
 * `finmaas scorecard`: fits a credit scorecard (scorecard/scorecard.h: WoE binning, logistic
 * regression on the WoE values, points) on a CSV file and saves it as an ordinary .fmm model with
 * its decision policy, optionally writing the scorecard table as CSV and JSON.
 *
 * `finmaas decide`: the batch form of a loan decision: every applicant of a CSV file gets its
 * score, PD, decision, the points of each feature, the top adverse-action reasons (the features
 * whose points fall furthest below their best) and the rules that fired, one CSV row each.
 */
#include "cli/cli.h"
#include "cli/scoring.h"
#include "core/fs.h"
#include "core/json.h"
#include "data/csv_writer.h"
#include "scorecard/scorecard.h"
#include "train/target.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POLICY_MAX_BYTES (1u << 20)

static const char scorecard_usage[] =
    "usage: finmaas scorecard --data F.csv --target COL --out M.fmm [options]\n"
    "\n"
    "Fits a credit scorecard: Weight-of-Evidence bins per feature (monotonic numeric bins of at\n"
    "least --min-share of the rows, rare categories grouped, missing values in their own bin),\n"
    "logistic regression on the WoE values, and points: score = offset + factor * ln(good:bad\n"
    "odds), factor = PDO / ln 2, offset = base points - factor * ln(base odds).\n"
    "\n"
    "  --data F.csv            training data (required)\n"
    "  --target COL            the binary target column (required)\n"
    "  --positive VALUE        the class that is the event (\"bad\"; default: a class named\n"
    "                          bad, else the second in sorted order)\n"
    "  --out M.fmm             the model file to write (required)\n"
    "  --table T.csv           also write the scorecard table (feature, bin, WoE, points) as CSV\n"
    "  --table-json T.json     ... and as JSON\n"
    "  --pdo P                 points to double the odds (default 50)\n"
    "  --base-points P         points at the base odds (default 600)\n"
    "  --base-odds O           good:bad odds at the base points (default 19)\n"
    "  --min-share S           smallest share of rows in a bin (default 0.05)\n"
    "  --bins N                initial quantile bins of numeric features (default 20)\n"
    "  --category-gap D        merge category groups whose WoE differ by less than D (default 0)\n"
    "  --min-iv V              leave out features whose information value is below V\n"
    "  --approve-at P          approve at a score >= P (default: the base points)\n"
    "  --decline-below P       decline below P (default: base points - 2 PDO); refer between\n"
    "  --policy POLICY.json    {\"approve_at\": P, \"decline_below\": P, \"rules\": "
    "[{\"feature\":\n"
    "                          \"age\", \"op\": \"<\", \"value\": 18, \"decision\": \"decline\",\n"
    "                          \"reason\": \"under 18\"}]} (the options above override it)\n"
    "  --drop COL,...          columns to leave out\n"
    "  --protected COL,...     protected attributes: left out of the features, named in the model\n"
    "  --schema S.json         column types that override inference\n"
    "  --quiet                 no summary on stderr\n";

static const char decide_usage[] =
    "usage: finmaas decide --model M.fmm --data applicants.csv [--out D.csv] [--keep COL,...]\n"
    "\n"
    "Decides every applicant of a CSV file with a scorecard model: keep columns, score, pd\n"
    "(P(bad)), decision (approve | refer | decline), points_<feature> for each feature, "
    "reason_1..\n"
    "reason_4 (the features whose points fall furthest below the most they can give, largest\n"
    "shortfall first) and rules_fired (the reasons of the policy's rules that fired, '; "
    "'-joined).\n"
    "\n"
    "  --model M.fmm           a model written by finmaas scorecard (required)\n"
    "  --data F.csv            applicants (required): the model's columns and the rules' fields\n"
    "  --out D.csv             write here (default: standard output)\n"
    "  --keep COL,...          copy these columns first (an id)\n";

enum {
    OPT_DATA = 1,
    OPT_TARGET,
    OPT_POSITIVE,
    OPT_OUT,
    OPT_TABLE,
    OPT_TABLE_JSON,
    OPT_PDO,
    OPT_BASE_POINTS,
    OPT_BASE_ODDS,
    OPT_MIN_SHARE,
    OPT_BINS,
    OPT_CATEGORY_GAP,
    OPT_MIN_IV,
    OPT_APPROVE_AT,
    OPT_DECLINE_BELOW,
    OPT_POLICY,
    OPT_DROP,
    OPT_PROTECTED,
    OPT_SCHEMA,
    OPT_QUIET,
    OPT_MODEL,
    OPT_KEEP,
};

static const struct option scorecard_options[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"target", required_argument, NULL, OPT_TARGET},
    {"positive", required_argument, NULL, OPT_POSITIVE},
    {"out", required_argument, NULL, OPT_OUT},
    {"table", required_argument, NULL, OPT_TABLE},
    {"table-json", required_argument, NULL, OPT_TABLE_JSON},
    {"pdo", required_argument, NULL, OPT_PDO},
    {"base-points", required_argument, NULL, OPT_BASE_POINTS},
    {"base-odds", required_argument, NULL, OPT_BASE_ODDS},
    {"min-share", required_argument, NULL, OPT_MIN_SHARE},
    {"bins", required_argument, NULL, OPT_BINS},
    {"category-gap", required_argument, NULL, OPT_CATEGORY_GAP},
    {"min-iv", required_argument, NULL, OPT_MIN_IV},
    {"approve-at", required_argument, NULL, OPT_APPROVE_AT},
    {"decline-below", required_argument, NULL, OPT_DECLINE_BELOW},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"drop", required_argument, NULL, OPT_DROP},
    {"protected", required_argument, NULL, OPT_PROTECTED},
    {"schema", required_argument, NULL, OPT_SCHEMA},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {NULL, 0, NULL, 0},
};

typedef struct scorecard_args {
    const char *data, *target, *positive, *out, *table, *table_json, *policy, *schema;
    char **drop, **protected;
    size_t ndrop, nprotected;
    double approve_at, decline_below; /* NaN: not given */
    int quiet;
    fm_scorecard_options_t o;
} scorecard_args_t;

static int parse_scorecard(int argc, char **argv, scorecard_args_t *a) {
    const char *cmd = "scorecard";
    long l;
    int c;
    while ((c = fm_cli_next_option(cmd, argc, argv, scorecard_options)) != -1) {
        switch (c) {
        case OPT_DATA:
            a->data = optarg;
            break;
        case OPT_TARGET:
            a->target = optarg;
            break;
        case OPT_POSITIVE:
            a->positive = optarg;
            break;
        case OPT_OUT:
            a->out = optarg;
            break;
        case OPT_TABLE:
            a->table = optarg;
            break;
        case OPT_TABLE_JSON:
            a->table_json = optarg;
            break;
        case OPT_POLICY:
            a->policy = optarg;
            break;
        case OPT_SCHEMA:
            a->schema = optarg;
            break;
        case OPT_QUIET:
            a->quiet = 1;
            break;
        case OPT_PDO:
            if (fm_cli_parse_double(cmd, "pdo", optarg, 1e-9, 1e9, &a->o.pdo)) return FM_EXIT_USAGE;
            break;
        case OPT_BASE_POINTS:
            if (fm_cli_parse_double(cmd, "base-points", optarg, -1e9, 1e9, &a->o.base_points))
                return FM_EXIT_USAGE;
            break;
        case OPT_BASE_ODDS:
            if (fm_cli_parse_double(cmd, "base-odds", optarg, 1e-9, 1e9, &a->o.base_odds))
                return FM_EXIT_USAGE;
            break;
        case OPT_MIN_SHARE:
            if (fm_cli_parse_double(cmd, "min-share", optarg, 1e-6, 0.49, &a->o.binning.min_share))
                return FM_EXIT_USAGE;
            break;
        case OPT_BINS:
            if (fm_cli_parse_long(cmd, "bins", optarg, 2, FM_SCORECARD_MAX_BINS, &l))
                return FM_EXIT_USAGE;
            a->o.binning.initial_bins = (size_t)l;
            break;
        case OPT_CATEGORY_GAP:
            if (fm_cli_parse_double(cmd, "category-gap", optarg, 0, 100,
                                    &a->o.binning.category_gap))
                return FM_EXIT_USAGE;
            break;
        case OPT_MIN_IV:
            if (fm_cli_parse_double(cmd, "min-iv", optarg, 0, 100, &a->o.min_iv))
                return FM_EXIT_USAGE;
            break;
        case OPT_APPROVE_AT:
            if (fm_cli_parse_double(cmd, "approve-at", optarg, -1e9, 1e9, &a->approve_at))
                return FM_EXIT_USAGE;
            break;
        case OPT_DECLINE_BELOW:
            if (fm_cli_parse_double(cmd, "decline-below", optarg, -1e9, 1e9, &a->decline_below))
                return FM_EXIT_USAGE;
            break;
        case OPT_DROP:
            fm_cli_free_list(a->drop);
            a->drop = fm_cli_split_list(optarg, &a->ndrop);
            if (!a->drop) return FM_EXIT_FAILURE;
            break;
        case OPT_PROTECTED:
            fm_cli_free_list(a->protected);
            a->protected = fm_cli_split_list(optarg, &a->nprotected);
            if (!a->protected) return FM_EXIT_FAILURE;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional(cmd, argc, argv)) return FM_EXIT_USAGE;
    if (!a->data || !a->target || !a->out)
        return fm_cli_usage_error(cmd, "--%s is required",
                                  !a->data     ? "data"
                                  : !a->target ? "target"
                                               : "out");
    return 0;
}

/* The policy: the file's (with the scaling's default cutoffs), then the options' cutoffs. */
static int load_policy(const scorecard_args_t *a, fm_decision_policy_t *p, fm_error_t *err) {
    fm_decision_policy_t defaults = {a->o.base_points, a->o.base_points - 2 * a->o.pdo, 0, NULL};
    if (!isnan(a->approve_at)) defaults.approve_at = a->approve_at;
    if (!isnan(a->decline_below)) defaults.decline_below = a->decline_below;
    cJSON *json = NULL;
    int rc = FM_OK;
    if (a->policy) {
        char *text = NULL;
        size_t len = 0;
        rc = fm_file_read_all(a->policy, POLICY_MAX_BYTES, &text, &len, err);
        if (!rc) rc = fm_json_parse(text, len, a->policy, &json, err);
        free(text);
    } else {
        json = cJSON_CreateObject();
        if (!json) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc) {
        if (!isnan(a->approve_at)) cJSON_DeleteItemFromObjectCaseSensitive(json, "approve_at");
        if (!isnan(a->decline_below))
            cJSON_DeleteItemFromObjectCaseSensitive(json, "decline_below");
        rc = fm_decision_policy_from_json(json, &defaults, p, err);
        if (rc && a->policy) fm_error_prefix(err, "%s: ", a->policy);
    }
    cJSON_Delete(json);
    return rc;
}

/* The positive (bad) class: --positive, else a class called "bad" (any case), else the second. */
static int resolve_target(const fm_frame_t *frame, size_t col, const char *positive, fm_target_t *t,
                          fm_error_t *err) {
    int rc = fm_target_resolve(frame, col, FM_TASK_BINARY, positive, t, err);
    if (rc || positive) return rc;
    if (strcasecmp(t->classes[0], "bad") != 0) return FM_OK;
    char *bad = strdup(t->classes[0]);
    fm_target_deinit(t);
    if (!bad) return fm_error_set(err, FM_ENOMEM, "out of memory");
    rc = fm_target_resolve(frame, col, FM_TASK_BINARY, bad, t, err);
    free(bad);
    return rc;
}

static int in_list(char **list, size_t n, const char *name) {
    for (size_t k = 0; k < n; k++)
        if (!strcmp(list[k], name)) return 1;
    return 0;
}

/* The feature columns: all but the target, --drop and --protected (which must exist). */
static int feature_columns(const fm_frame_t *f, const scorecard_args_t *a, size_t target,
                           size_t *cols, size_t *ncols, fm_error_t *err) {
    for (size_t k = 0; k < a->ndrop + a->nprotected; k++) {
        const char *name = k < a->ndrop ? a->drop[k] : a->protected[k - a->ndrop];
        if (fm_frame_find(f, name) < 0)
            return fm_error_set(err, FM_EINVAL, "--%s: column '%s' is not in %s",
                                k < a->ndrop ? "drop" : "protected", name, a->data);
    }
    *ncols = 0;
    for (size_t c = 0; c < f->ncols; c++)
        if (c != target && !in_list(a->drop, a->ndrop, f->columns[c].name) &&
            !in_list(a->protected, a->nprotected, f->columns[c].name))
            cols[(*ncols)++] = c;
    if (*ncols == 0) return fm_error_set(err, FM_EINVAL, "no feature columns left");
    return FM_OK;
}

/* Writes the tables and the model, each atomically. */
static int write_outputs(const scorecard_args_t *a, const fm_model_t *model, fm_error_t *err) {
    fm_scorecard_t *sc = NULL;
    int rc = fm_scorecard_from_model(model, &sc, err);
    fm_buf_t csv = FM_BUF_INIT;
    char *json = NULL;
    if (!rc && a->table && fm_scorecard_table_csv(sc, &csv))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc && a->table_json) {
        cJSON *j = fm_scorecard_table_json(sc);
        json = j ? cJSON_Print(j) : NULL;
        cJSON_Delete(j);
        if (!json) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc && a->table) rc = fm_file_write_atomic(a->table, csv.data, csv.len, err);
    if (!rc && a->table_json) rc = fm_file_write_atomic(a->table_json, json, strlen(json), err);
    if (!rc) rc = fm_model_save(model, a->out, err);
    if (!rc && !a->quiet) {
        const cJSON *card = cJSON_GetObjectItemCaseSensitive(model->info, "scorecard");
        fprintf(stderr,
                "finmaas scorecard: %zu features (%d left out), factor %.6g, offset %.6g; "
                "approve at %g, decline below %g; saved %s\n",
                sc->nfeatures, cJSON_GetArraySize(cJSON_GetObjectItem(card, "dropped")),
                sc->scaling.factor, sc->scaling.offset, sc->policy.approve_at,
                sc->policy.decline_below, a->out);
    }
    fm_buf_free(&csv);
    free(json);
    fm_scorecard_free(sc);
    return rc;
}

int fm_cmd_scorecard(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(scorecard_usage, stdout);
        return FM_EXIT_OK;
    }
    scorecard_args_t a = {.approve_at = NAN, .decline_below = NAN};
    fm_scorecard_options_defaults(&a.o);
    int code = parse_scorecard(argc, argv, &a);
    fm_error_t err;
    fm_error_clear(&err);
    fm_type_overrides_t overrides = {0};
    fm_frame_t *frame = NULL;
    fm_target_t target = {0};
    fm_decision_policy_t policy = {0};
    fm_model_t *model = NULL;
    size_t *cols = NULL, ncols = 0;
    int rc = FM_OK;
    if (!code) {
        rc = load_policy(&a, &policy, &err);
        if (!rc && a.schema) rc = fm_type_overrides_load(a.schema, &overrides, &err);
        if (!rc) rc = fm_frame_read_csv(a.data, a.schema ? &overrides : NULL, &frame, &err);
        int col = rc ? -1 : fm_frame_find(frame, a.target);
        if (!rc && col < 0)
            rc = fm_error_set(&err, FM_EINVAL, "--target: column '%s' is not in %s", a.target,
                              a.data);
        if (!rc) rc = resolve_target(frame, (size_t)col, a.positive, &target, &err);
        if (!rc && !(cols = malloc(frame->ncols * sizeof *cols)))
            rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
        if (!rc) rc = feature_columns(frame, &a, (size_t)col, cols, &ncols, &err);
        if (!rc) {
            a.o.policy = &policy;
            a.o.protected = (const char *const *)a.protected;
            a.o.nprotected = a.nprotected;
            const char *classes[2] = {target.classes[0], target.classes[1]};
            rc = fm_scorecard_fit(frame, cols, ncols, target.label, classes, a.target, &a.o, &model,
                                  &err);
        }
        if (!rc) rc = write_outputs(&a, model, &err);
        code = rc ? fm_cli_fail("scorecard", &err) : FM_EXIT_OK;
    }
    fm_model_free(model);
    free(cols);
    fm_decision_policy_deinit(&policy);
    fm_target_deinit(&target);
    fm_frame_free(frame);
    fm_type_overrides_free(&overrides);
    fm_cli_free_list(a.drop);
    fm_cli_free_list(a.protected);
    return code;
}

/* ---- decide -------------------------------------------------------------------------------- */

static const struct option decide_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"out", required_argument, NULL, OPT_OUT},
    {"keep", required_argument, NULL, OPT_KEEP},
    {NULL, 0, NULL, 0},
};

typedef struct decider {
    const fm_scorecard_t *sc;
    const fm_model_t *model;
    char **keep;
    size_t nkeep;
    FILE *fp;
    fm_buf_t out;
    double *x;          /* chunk rows * nfeatures */
    double *points;     /* nfeatures */
    size_t *bins;       /* nfeatures */
    fm_raw_value_t *rv; /* one per rule */
    int *rule_col;      /* chunk column of each rule's field */
    int *keep_col;
} decider_t;

static int put_number(fm_buf_t *b, double v) {
    char text[40];
    int n = snprintf(text, sizeof text, ",%.17g", v);
    return fm_buf_append(b, text, (size_t)n);
}

static int write_header(decider_t *d) {
    int rc = FM_OK;
    for (size_t k = 0; !rc && k < d->nkeep; k++) {
        if (k) rc = fm_buf_putc(&d->out, ',');
        if (!rc) rc = fm_csv_write_field(&d->out, d->keep[k], strlen(d->keep[k]));
    }
    if (!rc) rc = fm_buf_puts(&d->out, d->nkeep ? ",score,pd,decision" : "score,pd,decision");
    for (size_t k = 0; !rc && k < d->sc->nfeatures; k++) {
        char name[600];
        int n = snprintf(name, sizeof name, "points_%s", d->sc->features[k].name);
        rc = fm_buf_putc(&d->out, ',');
        if (!rc) rc = fm_csv_write_field(&d->out, name, (size_t)n < sizeof name ? (size_t)n : 0);
    }
    if (!rc) rc = fm_buf_puts(&d->out, ",reason_1,reason_2,reason_3,reason_4,rules_fired\n");
    return rc;
}

static int decide_row(decider_t *d, const fm_frame_t *chunk, size_t r, size_t line,
                      fm_error_t *err) {
    const fm_scorecard_t *sc = d->sc;
    for (size_t i = 0; i < sc->policy.nrules; i++)
        d->rv[i] = fm_prep_raw_cell(chunk, d->rule_col[i], r);
    fm_scorecard_result_t res = {.points = d->points, .bin = d->bins};
    int rc = fm_scorecard_score(sc, d->x + r * sc->model->prep->nfeatures, d->rv, &res, err);
    if (rc) return fm_error_prefix(err, "%s: data row %zu: ", chunk->source, line);
    fm_buf_t *b = &d->out;
    for (size_t k = 0; !rc && k < d->nkeep; k++) {
        if (k) rc = fm_buf_putc(b, ',');
        if (!rc) rc = fm_scoring_put_cell(b, chunk, d->keep_col[k], r, NULL);
    }
    if (!rc)
        rc = fm_buf_printf(b, "%s%.17g,%.17g,%s", d->nkeep ? "," : "", res.score, res.pd,
                           fm_decision_name(res.decision));
    for (size_t k = 0; !rc && k < sc->nfeatures; k++)
        rc = put_number(b, res.points[k]);
    for (size_t k = 0; !rc && k < FM_SCORECARD_REASONS; k++) {
        rc = fm_buf_putc(b, ',');
        const char *name = k < res.nreasons ? sc->features[res.reasons[k]].name : "";
        if (!rc) rc = fm_csv_write_field(b, name, strlen(name));
    }
    fm_buf_t fired = FM_BUF_INIT;
    for (size_t i = 0; !rc && i < sc->policy.nrules; i++)
        if (res.fired >> i & 1)
            rc = fm_buf_printf(&fired, "%s%s", fired.len ? "; " : "", sc->policy.rules[i].reason);
    if (!rc) rc = fm_buf_putc(b, ',');
    if (!rc) rc = fm_csv_write_field(b, fired.data ? fired.data : "", fired.len);
    if (!rc) rc = fm_buf_putc(b, '\n');
    fm_buf_free(&fired);
    return rc ? fm_error_set(err, FM_ENOMEM, "out of memory") : FM_OK;
}

static int decide_file(decider_t *d, const char *path, fm_error_t *err) {
    const fm_scorecard_t *sc = d->sc;
    size_t nrules = sc->policy.nrules, nextra = nrules + d->nkeep;
    fm_column_spec_t *extra = calloc(nextra ? nextra : 1, sizeof *extra);
    d->rv = calloc(nrules ? nrules : 1, sizeof *d->rv);
    d->rule_col = calloc(nrules ? nrules : 1, sizeof *d->rule_col);
    d->keep_col = calloc(d->nkeep ? d->nkeep : 1, sizeof *d->keep_col);
    d->points = calloc(sc->nfeatures, sizeof *d->points);
    d->bins = calloc(sc->nfeatures, sizeof *d->bins);
    d->x = malloc(FM_MODEL_CHUNK_ROWS * sc->model->prep->nfeatures * sizeof *d->x);
    fm_frame_reader_t *reader = NULL;
    int rc = extra && d->rv && d->rule_col && d->keep_col && d->points && d->bins && d->x
                 ? FM_OK
                 : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < nextra && !rc; i++) {
        const char *name = i < nrules ? sc->policy.rules[i].feature : d->keep[i - nrules];
        int p = fm_prep_find(sc->model->prep, name);
        int pii = p >= 0 && sc->model->prep->columns[p].pii;
        extra[i] = (fm_column_spec_t){
            name, p >= 0 ? sc->model->prep->columns[p].type : FM_COLUMN_CATEGORICAL, 1, pii};
        /* Decisions never carry personal data in clear (finmaas predict --keep --home masks). */
        if (pii && i >= nrules)
            rc = fm_error_set(err, FM_EINVAL,
                              "--keep %s: the model marks it as personal data (PII); keep an "
                              "application id instead",
                              name);
    }
    if (!rc) rc = fm_model_open_reader(sc->model, path, extra, nextra, &reader, err);
    if (!rc && write_header(d)) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    while (!rc) {
        fm_frame_t *chunk = NULL;
        size_t base = fm_frame_reader_rows(reader);
        int got = fm_frame_reader_next(reader, FM_MODEL_CHUNK_ROWS, &chunk, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        for (size_t i = 0; i < nrules; i++)
            d->rule_col[i] = fm_frame_find(chunk, sc->policy.rules[i].feature);
        for (size_t k = 0; k < d->nkeep; k++)
            d->keep_col[k] = fm_frame_find(chunk, d->keep[k]);
        rc = fm_prep_transform(sc->model->prep, chunk, NULL, chunk->nrows, d->x, err);
        for (size_t r = 0; !rc && r < chunk->nrows; r++)
            rc = decide_row(d, chunk, r, base + r + 1, err);
        if (!rc && fm_csv_flush(&d->out, d->fp, 1 << 16))
            rc = fm_error_set(err, FM_EIO, "cannot write the decisions");
        fm_frame_free(chunk);
    }
    if (!rc && fm_csv_flush(&d->out, d->fp, 0))
        rc = fm_error_set(err, FM_EIO, "cannot write the decisions");
    fm_frame_reader_close(reader);
    free(extra);
    return rc;
}

int fm_cmd_decide(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(decide_usage, stdout);
        return FM_EXIT_OK;
    }
    const char *model_path = NULL, *data = NULL, *out_path = NULL;
    decider_t d = {0};
    int c;
    while ((c = fm_cli_next_option("decide", argc, argv, decide_options)) != -1) {
        switch (c) {
        case OPT_MODEL:
            model_path = optarg;
            break;
        case OPT_DATA:
            data = optarg;
            break;
        case OPT_OUT:
            out_path = optarg;
            break;
        case OPT_KEEP:
            fm_cli_free_list(d.keep);
            d.keep = fm_cli_split_list(optarg, &d.nkeep);
            break;
        default:
            fm_cli_free_list(d.keep);
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional("decide", argc, argv) || !model_path || !data) {
        fm_cli_free_list(d.keep);
        if (!model_path || !data)
            return fm_cli_usage_error("decide", "--%s is required", model_path ? "data" : "model");
        return FM_EXIT_USAGE;
    }
    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    fm_scorecard_t *sc = NULL;
    fm_atomic_file_t file = {0};
    int rc = fm_model_load(model_path, &model, &err);
    if (!rc) rc = fm_scorecard_from_model(model, &sc, &err);
    if (!rc && out_path) rc = fm_atomic_file_open(&file, out_path, 0, &err);
    if (!rc) {
        d.sc = sc;
        d.model = model;
        d.fp = out_path ? file.fp : stdout;
        rc = decide_file(&d, data, &err);
    }
    rc = fm_scoring_output_end(&file, out_path != NULL, rc, &err);
    int code = rc ? fm_cli_fail("decide", &err) : FM_EXIT_OK;
    fm_buf_free(&d.out);
    free(d.x);
    free(d.points);
    free(d.bins);
    free(d.rv);
    free(d.rule_col);
    free(d.keep_col);
    fm_cli_free_list(d.keep);
    fm_scorecard_free(sc);
    fm_model_free(model);
    return code;
}
