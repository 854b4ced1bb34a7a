/*
 * `finmaas predict`: scores every row of a CSV file with a model, streaming it in chunks so a file
 * of any size needs memory for one chunk. Writes CSV: optional kept columns, then the probability
 * of each class and the predicted label (classification) or the predicted value (regression), one
 * row per input row, in input order. With --explain each row also gets its explanation
 * (explain/explain.h): the score and baseline score, one attribution column per feature, and for
 * binary models the adverse-action reason codes. With --out the file appears only when complete.
 */
#include "cli/cli.h"
#include "cli/scoring.h"
#include "core/clock.h"
#include "core/fs.h"
#include "data/csv_writer.h"
#include "explain/explain.h"
#include "security/pii.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas predict --model M.fmm --data F.csv [--out P.csv] [--keep COL,...] [--home "
    "DIR]\n"
    "                       [--stats]\n"
    "\n"
    "Scores each row of F.csv. Output columns: the --keep columns copied from the input (e.g. an\n"
    "application id), then p_<class> for each class and label (classification) or prediction\n"
    "(regression). Without --out the CSV goes to stdout. The input needs the model's feature\n"
    "columns (finmaas inspect lists them); other columns are ignored. Categories not seen in\n"
    "training are accepted (they add nothing to the score).\n"
    "\n"
    "  --model M.fmm      the model (required)\n"
    "  --data F.csv       rows to score (required)\n"
    "  --out P.csv        output file (default: stdout)\n"
    "  --keep COL,...     input columns to copy to the output; a column the model marks as "
    "personal\n"
    "                     data (PII) is written masked (card numbers as first 6 + last 4 digits,\n"
    "                     other values as the home's tokens \"pii:<16 hex>\"), and needs --home\n"
    "  --home DIR         the home whose PII key makes those tokens (the server's tokens)\n"
    "  --explain          add each row's explanation: score and baseline_score (log-odds for\n"
    "                     classifiers), attr_<feature> per feature (they sum to score minus\n"
    "                     baseline_score), and for binary models reason_1..reason_K (feature)\n"
    "                     with reason_<i>_text: the adverse-action reasons\n"
    "  --reasons K        reason codes per row with --explain (default 4)\n"
    "  --baseline B       reference (default: approved applicants near the cutoff) |\n"
    "                     population\n"
    "  --stats            print {\"rows\":..,\"seconds\":{..}} as JSON on stderr\n"
    "  --threads N        BLAS threads (default 1)\n";

enum {
    OPT_THREADS = 999,
    OPT_MODEL = 1000,
    OPT_DATA,
    OPT_OUT,
    OPT_KEEP,
    OPT_STATS,
    OPT_HOME,
    OPT_EXPLAIN,
    OPT_REASONS,
    OPT_BASELINE
};

static const struct option options[] = {
    {"threads", required_argument, NULL, OPT_THREADS},
    {"model", required_argument, NULL, OPT_MODEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"out", required_argument, NULL, OPT_OUT},
    {"keep", required_argument, NULL, OPT_KEEP},
    {"stats", no_argument, NULL, OPT_STATS},
    {"home", required_argument, NULL, OPT_HOME},
    {"explain", no_argument, NULL, OPT_EXPLAIN},
    {"reasons", required_argument, NULL, OPT_REASONS},
    {"baseline", required_argument, NULL, OPT_BASELINE},
    {NULL, 0, NULL, 0},
};

typedef struct timing {
    double read, predict, write;
} timing_t;

/* What --explain adds to each row. */
typedef struct explaining {
    fm_explainer_t *explainer;
    fm_explain_workspace_t *ws;
    fm_explain_request_t request;
    size_t reasons; /* K */
    double *x;      /* one chunk's encoded rows */
    double *phi;    /* one row's attributions */
    fm_reason_t *found;
} explaining_t;

static void explaining_free(explaining_t *e) {
    fm_explain_workspace_free(e->ws);
    fm_explainer_free(e->explainer);
    free(e->x);
    free(e->phi);
    free(e->found);
}

static int explaining_init(explaining_t *e, const fm_model_t *m, fm_error_t *err) {
    int rc = fm_explainer_new(m, &e->explainer, err);
    if (!rc) rc = fm_explain_workspace_new(e->explainer, &e->ws, err);
    e->x = malloc(FM_MODEL_CHUNK_ROWS * m->prep->nfeatures * sizeof *e->x);
    e->phi = malloc(m->prep->ncolumns * sizeof *e->phi);
    e->found = malloc((e->reasons ? e->reasons : 1) * sizeof *e->found);
    if (!rc && (!e->x || !e->phi || !e->found)) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    return rc;
}

/* The explanation columns' names, after the prediction columns. */
static int write_explain_header(fm_buf_t *out, const fm_model_t *m, const explaining_t *e) {
    int rc = fm_buf_puts(out, ",score,baseline_score");
    for (size_t c = 0; c < m->prep->ncolumns && !rc; c++) {
        if (m->prep->columns[c].width == 0) continue;
        char name[512];
        snprintf(name, sizeof name, "attr_%s", m->prep->columns[c].name);
        rc = fm_buf_putc(out, ',');
        if (!rc) rc = fm_csv_write_field(out, name, strlen(name));
    }
    for (size_t k = 0; m->task == FM_TASK_BINARY && k < e->reasons && !rc; k++)
        rc = fm_buf_printf(out, ",reason_%zu,reason_%zu_text", k + 1, k + 1);
    return rc;
}

/* Row i's explanation columns (x: its encoded row). */
static int write_explanation(fm_buf_t *out, const fm_model_t *m, explaining_t *e, const double *x,
                             fm_error_t *err) {
    fm_explanation_t ex = {.phi = e->phi};
    int rc = fm_explain_row(e->explainer, e->ws, x, &e->request, &ex, err);
    if (rc) return rc;
    if (fm_buf_printf(out, ",%.10g,%.10g", ex.score, ex.baseline_score)) return FM_ENOMEM;
    for (size_t c = 0; c < m->prep->ncolumns; c++)
        if (m->prep->columns[c].width > 0 && fm_buf_printf(out, ",%.10g", ex.phi[c]))
            return FM_ENOMEM;
    if (m->task != FM_TASK_BINARY) return FM_OK;
    size_t n = 0;
    fm_explain_reasons(e->explainer, &ex, e->reasons, e->found, &n);
    for (size_t k = 0; k < e->reasons; k++) {
        const char *feature = k < n ? m->prep->columns[e->found[k].column].name : "";
        const char *text = k < n ? e->found[k].text : "";
        if (fm_buf_putc(out, ',') || fm_csv_write_field(out, feature, strlen(feature)) ||
            fm_buf_putc(out, ',') || fm_csv_write_field(out, text, strlen(text)))
            return FM_ENOMEM;
    }
    return FM_OK;
}

static int write_header(fm_buf_t *out, const fm_model_t *m, char **keep, size_t nkeep,
                        const explaining_t *e) {
    int rc = 0;
    for (size_t k = 0; k < nkeep && !rc; k++) {
        rc = fm_csv_write_field(out, keep[k], strlen(keep[k]));
        if (!rc) rc = fm_buf_putc(out, ',');
    }
    if (m->task == FM_TASK_REGRESSION) {
        if (!rc) rc = fm_buf_puts(out, "prediction");
    } else {
        for (size_t c = 0; c < m->nclasses && !rc; c++) {
            char name[512];
            snprintf(name, sizeof name, "p_%s", m->classes[c]);
            rc = fm_csv_write_field(out, name, strlen(name));
            if (!rc) rc = fm_buf_putc(out, ',');
        }
        if (!rc) rc = fm_buf_puts(out, "label");
    }
    if (!rc && e) rc = write_explain_header(out, m, e);
    return rc ? rc : fm_buf_putc(out, '\n');
}

/* Writes a kept cell: as it is, or masked (PII columns: keep_pii[k] set, pii the home's key). */
/* Writes the rows of one chunk. keep_cols: chunk column index of each kept column; keep_pii:
 * whether it is personal data, written masked with pii. */
static int write_rows(fm_buf_t *out, const fm_model_t *m, const fm_frame_t *chunk,
                      const int *keep_cols, const unsigned char *keep_pii, size_t nkeep,
                      const fm_pii_t *pii, const double *pred, explaining_t *e, fm_error_t *err) {
    size_t width = fm_model_output_width(m);
    int rc = 0;
    if (e && (rc = fm_prep_transform(m->prep, chunk, NULL, chunk->nrows, e->x, err))) return rc;
    for (size_t i = 0; i < chunk->nrows && !rc; i++) {
        for (size_t k = 0; k < nkeep && !rc; k++) {
            rc = fm_scoring_put_cell(out, chunk, keep_cols[k], i, keep_pii[k] ? pii : NULL);
            if (!rc) rc = fm_buf_putc(out, ',');
        }
        const double *row = pred + i * width;
        if (m->task == FM_TASK_REGRESSION) {
            if (!rc) rc = fm_buf_printf(out, "%.10g", row[0]);
        } else {
            if (m->task == FM_TASK_BINARY) {
                if (!rc) rc = fm_buf_printf(out, "%.9g,%.9g,", 1.0 - row[0], row[0]);
            } else {
                for (size_t c = 0; c < width && !rc; c++)
                    rc = fm_buf_printf(out, "%.9g,", row[c]);
            }
            const char *label = fm_model_label(m, row);
            if (!rc) rc = fm_csv_write_field(out, label, strlen(label));
        }
        if (rc) return fm_error_set(err, FM_ENOMEM, "out of memory");
        if (e && (rc = write_explanation(out, m, e, e->x + i * m->prep->nfeatures, err)))
            return rc == FM_ENOMEM ? fm_error_set(err, FM_ENOMEM, "out of memory")
                                   : fm_error_prefix(err, "data row %zu: ", i + 1);
        if (fm_buf_putc(out, '\n')) return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    return FM_OK;
}

static int predict_file(const fm_model_t *m, const char *data, FILE *fp, char **keep, size_t nkeep,
                        const fm_pii_t *pii, explaining_t *e, size_t *rows, timing_t *t,
                        fm_error_t *err) {
    fm_column_spec_t *extra = calloc(nkeep ? nkeep : 1, sizeof *extra);
    int *keep_cols = calloc(nkeep ? nkeep : 1, sizeof *keep_cols);
    unsigned char *keep_pii = calloc(nkeep ? nkeep : 1, 1);
    double *pred = malloc(FM_MODEL_CHUNK_ROWS * fm_model_output_width(m) * sizeof *pred);
    fm_buf_t out = FM_BUF_INIT;
    fm_frame_reader_t *reader = NULL;
    int rc = (extra && keep_cols && keep_pii && pred)
                 ? FM_OK
                 : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t k = 0; !rc && k < nkeep; k++) {
        int p = fm_prep_find(m->prep, keep[k]);
        keep_pii[k] = p >= 0 && m->prep->columns[p].pii;
        extra[k] = (fm_column_spec_t){
            keep[k], p >= 0 ? m->prep->columns[p].type : FM_COLUMN_CATEGORICAL, 1, keep_pii[k]};
        if (keep_pii[k] && !pii)
            rc = fm_error_set(err, FM_EINVAL,
                              "--keep %s: the model marks it as personal data (PII); give --home "
                              "DIR to write it masked with that home's PII tokens",
                              keep[k]);
    }
    if (!rc) rc = fm_model_open_reader(m, data, extra, nkeep, &reader, err);
    if (!rc && write_header(&out, m, keep, nkeep, e))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    while (!rc) {
        fm_frame_t *chunk = NULL;
        double t0 = fm_clock_seconds();
        int got = fm_frame_reader_next(reader, FM_MODEL_CHUNK_ROWS, &chunk, err);
        double t1 = fm_clock_seconds();
        t->read += t1 - t0;
        if (got <= 0) {
            rc = got;
            break;
        }
        for (size_t k = 0; k < nkeep; k++)
            keep_cols[k] = fm_frame_find(chunk, keep[k]);
        rc = fm_model_predict_frame(m, chunk, pred, err);
        double t2 = fm_clock_seconds();
        t->predict += t2 - t1;
        if (!rc) rc = write_rows(&out, m, chunk, keep_cols, keep_pii, nkeep, pii, pred, e, err);
        if (!rc && fm_csv_flush(&out, fp, 1 << 16))
            rc = fm_error_set(err, FM_EIO, "cannot write the predictions");
        t->write += fm_clock_seconds() - t2;
        fm_frame_free(chunk);
    }
    if (!rc && fm_csv_flush(&out, fp, 0))
        rc = fm_error_set(err, FM_EIO, "cannot write the predictions");
    *rows = reader ? fm_frame_reader_rows(reader) : 0;
    fm_frame_reader_close(reader);
    fm_buf_free(&out);
    free(pred);
    free(keep_cols);
    free(keep_pii);
    free(extra);
    return rc;
}

int fm_cmd_predict(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    const char *model_path = NULL, *data = NULL, *out_path = NULL, *home = NULL;
    char **keep = NULL;
    size_t nkeep = 0;
    int stats = 0, explain = 0, c;
    long l;
    explaining_t ex = {.reasons = FM_EXPLAIN_DEFAULT_REASONS};
    fm_explain_request_defaults(&ex.request);
    fm_nn_set_threads(1);
    while ((c = fm_cli_next_option("predict", argc, argv, options)) != -1) {
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
            fm_cli_free_list(keep);
            keep = fm_cli_split_list(optarg, &nkeep);
            break;
        case OPT_THREADS:
            if (fm_cli_set_threads("predict", optarg)) return FM_EXIT_USAGE;
            break;
        case OPT_STATS:
            stats = 1;
            break;
        case OPT_HOME:
            home = optarg;
            break;
        case OPT_EXPLAIN:
            explain = 1;
            break;
        case OPT_REASONS:
            if (fm_cli_parse_long("predict", "reasons", optarg, 0, 64, &l)) {
                fm_cli_free_list(keep);
                return FM_EXIT_USAGE;
            }
            ex.reasons = (size_t)l;
            break;
        case OPT_BASELINE:
            if (strcmp(optarg, "reference") && strcmp(optarg, "population")) {
                fm_cli_free_list(keep);
                return fm_cli_usage_error(
                    "predict", "--baseline must be reference or population, got '%s'", optarg);
            }
            ex.request.baseline =
                !strcmp(optarg, "population") ? FM_EXPLAIN_POPULATION : FM_EXPLAIN_REFERENCE;
            break;
        default:
            fm_cli_free_list(keep);
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional("predict", argc, argv)) return FM_EXIT_USAGE;
    if (!model_path || !data) {
        fm_cli_free_list(keep);
        return fm_cli_usage_error("predict", "--%s is required", model_path ? "data" : "model");
    }
    double start = fm_clock_seconds();
    fm_error_t err;
    fm_error_clear(&err);
    fm_model_t *model = NULL;
    fm_atomic_file_t file = {0};
    timing_t t = {0};
    size_t rows = 0;
    fm_pii_t *pii = NULL;
    int rc = fm_model_load(model_path, &model, &err);
    if (!rc && home) rc = fm_pii_open(home, &pii, &err);
    if (!rc && explain) rc = explaining_init(&ex, model, &err);
    if (!rc && out_path) rc = fm_atomic_file_open(&file, out_path, 0, &err);
    if (!rc)
        rc = predict_file(model, data, out_path ? file.fp : stdout, keep, nkeep, pii,
                          explain ? &ex : NULL, &rows, &t, &err);
    rc = fm_scoring_output_end(&file, out_path != NULL, rc, &err);
    if (!rc && stats)
        fprintf(stderr,
                "{\"rows\": %zu, \"seconds\": {\"read\": %.6f, \"predict\": %.6f, \"write\": %.6f, "
                "\"total\": %.6f}}\n",
                rows, t.read, t.predict, t.write, fm_clock_seconds() - start);
    int code = rc ? fm_cli_fail("predict", &err) : FM_EXIT_OK;
    explaining_free(&ex);
    fm_pii_free(pii);
    fm_model_free(model);
    fm_cli_free_list(keep);
    return code;
}
