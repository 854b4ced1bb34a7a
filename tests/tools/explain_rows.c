/*
 * explain_rows MODEL.fmm DATA.csv [options]: explains rows of DATA.csv (encoded with the model's
 * preprocessing) and prints one JSON document that tests/ref/test_explain.py checks against NumPy
 * and the xgboost package:
 *   {"columns": [{"name", "offset", "width"}...], "method": default method, "steps", "approve",
 *    "cutoff", "explain": the stored member (or null), "rows": [{"row", "x": encoded row,
 *    "phi": [per prep column], "score", "baseline_score", "output", "method", "steps",
 *    "contribs": XGBoost's raw contributions (trees, --contribs), "json": the API's JSON}, ...]}
 * Options:
 *   --fit                 fm_explain_fit on all encoded rows first (as the trainer does)
 *   --approve L --cutoff X --band X --population-reference --fit-method M --fit-steps N
 *   --reasons FILE.json   reason texts for --fit
 *   --member FILE.json    replaces the stored "explain" member with FILE's JSON (malformed tests)
 *   --method M --baseline reference|population --steps N --output K --k K (request settings)
 *   --rows N              only the first N rows
 *   --contribs            also print fm_gbt_contributions of each row
 * Errors print "explain_rows: <FM code name>: <message>" on stderr and exit 3 (2 for usage).
 */
#include "core/json.h"
#include "explain/explain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(int code, const char *msg) {
    fprintf(stderr, "explain_rows: %s: %s\n", fm_error_name(code), msg);
    return 3;
}

static cJSON *read_json_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return cJSON_Parse(buf);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: explain_rows MODEL.fmm DATA.csv [options]\n");
        return 2;
    }
    fm_explain_fit_options_t fit;
    fm_explain_fit_options_defaults(&fit);
    fm_explain_request_t request;
    fm_explain_request_defaults(&request);
    int do_fit = 0, contribs = 0;
    size_t max_rows = (size_t)-1, k = FM_EXPLAIN_DEFAULT_REASONS;
    const char *member_path = NULL;
    cJSON *reasons = NULL;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--fit") == 0) {
            do_fit = 1;
            takes = 0;
        } else if (strcmp(a, "--contribs") == 0) {
            contribs = 1;
            takes = 0;
        } else if (strcmp(a, "--population-reference") == 0) {
            fit.reference_population = 1;
            takes = 0;
        } else if (!v) {
            fprintf(stderr, "explain_rows: %s needs a value\n", a);
            return 2;
        } else if (strcmp(a, "--approve") == 0) {
            fit.approve = v;
        } else if (strcmp(a, "--cutoff") == 0) {
            fit.cutoff = atof(v);
        } else if (strcmp(a, "--band") == 0) {
            fit.band = atof(v);
        } else if (strcmp(a, "--fit-steps") == 0) {
            fit.steps = atoi(v);
        } else if (strcmp(a, "--fit-method") == 0) {
            if (fm_explain_method_parse(v, &fit.method)) return fail(FM_EINVAL, "bad --fit-method");
        } else if (strcmp(a, "--reasons") == 0) {
            if (!(reasons = read_json_file(v))) return fail(FM_EPARSE, "bad --reasons file");
            fit.reasons = reasons;
        } else if (strcmp(a, "--member") == 0) {
            member_path = v;
        } else if (strcmp(a, "--method") == 0) {
            if (fm_explain_method_parse(v, &request.method)) return fail(FM_EINVAL, "bad --method");
        } else if (strcmp(a, "--baseline") == 0) {
            request.baseline = strcmp(v, "population") == 0  ? FM_EXPLAIN_POPULATION
                               : strcmp(v, "reference") == 0 ? FM_EXPLAIN_REFERENCE
                                                             : (fm_explain_baseline_t)7;
        } else if (strcmp(a, "--steps") == 0) {
            request.steps = atoi(v);
        } else if (strcmp(a, "--output") == 0) {
            request.output = atol(v);
        } else if (strcmp(a, "--k") == 0) {
            k = (size_t)atol(v);
        } else if (strcmp(a, "--rows") == 0) {
            max_rows = (size_t)atol(v);
        } else {
            fprintf(stderr, "explain_rows: unknown option %s\n", a);
            return 2;
        }
        i += takes;
    }

    fm_error_t err;
    fm_model_t *model = NULL;
    fm_frame_t *frame = NULL;
    fm_explainer_t *e = NULL;
    fm_explain_workspace_t *ws = NULL;
    double *x = NULL;
    int rc = fm_model_load(argv[1], &model, &err);
    if (!rc) rc = fm_frame_read_csv(argv[2], NULL, &frame, &err);
    size_t n = frame ? frame->nrows : 0, nf = model ? model->prep->nfeatures : 0;
    if (!rc && !(x = malloc((n ? n : 1) * nf * sizeof *x)))
        rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
    if (!rc) rc = fm_prep_transform(model->prep, frame, NULL, n, x, &err);
    if (!rc && do_fit) rc = fm_explain_fit(model, x, n, &fit, &err);
    if (!rc && member_path) {
        cJSON *member = read_json_file(member_path);
        if (!member) {
            rc = fm_error_set(&err, FM_EPARSE, "bad --member file");
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(model->info, "explain");
            cJSON_AddItemToObject(model->info, "explain", member);
        }
    }
    if (!rc) rc = fm_explainer_new(model, &e, &err);
    if (!rc) rc = fm_explain_workspace_new(e, &ws, &err);
    if (rc) {
        fail(rc, err.msg);
        cJSON_Delete(reasons);
        free(x);
        fm_frame_free(frame);
        fm_model_free(model);
        return 3;
    }
    size_t ncols = model->prep->ncolumns;

    cJSON *doc = cJSON_CreateObject(), *cols = cJSON_AddArrayToObject(doc, "columns");
    for (size_t c = 0; c < ncols; c++) {
        const fm_prep_column_t *col = &model->prep->columns[c];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", col->name);
        cJSON_AddNumberToObject(o, "offset", (double)col->offset);
        cJSON_AddNumberToObject(o, "width", (double)col->width);
        cJSON_AddItemToArray(cols, o);
    }
    cJSON_AddStringToObject(doc, "method", fm_explain_method_name(fm_explainer_method(e)));
    cJSON_AddNumberToObject(doc, "steps", fm_explainer_steps(e));
    cJSON_AddNumberToObject(doc, "approve", fm_explainer_approve_class(e));
    cJSON_AddNumberToObject(doc, "cutoff", fm_explainer_cutoff(e));
    const cJSON *member = cJSON_GetObjectItemCaseSensitive(model->info, "explain");
    cJSON_AddItemToObject(doc, "explain", member ? cJSON_Duplicate(member, 1) : cJSON_CreateNull());
    cJSON *rows = cJSON_AddArrayToObject(doc, "rows");
    double *phi = malloc((ncols ? ncols : 1) * sizeof *phi);
    size_t width = fm_model_output_width(model);
    double *contrib = malloc(width * (nf + 1) * sizeof *contrib);
    for (size_t i = 0; i < n && i < max_rows; i++) {
        const double *row = x + i * nf;
        fm_explanation_t ex = {.phi = phi};
        if ((rc = fm_explain_row(e, ws, row, &request, &ex, &err))) break;
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "row", (double)i);
        cJSON_AddItemToObject(r, "x", fm_json_double_array(row, nf));
        cJSON_AddItemToObject(r, "phi", fm_json_double_array(phi, ncols));
        fm_json_add_number(r, "score", ex.score);
        fm_json_add_number(r, "baseline_score", ex.baseline_score);
        cJSON_AddNumberToObject(r, "output", (double)ex.output);
        cJSON_AddStringToObject(r, "method", fm_explain_method_name(ex.method));
        cJSON_AddNumberToObject(r, "steps", ex.steps);
        if (contribs && model->gbt) {
            if ((rc = fm_gbt_contributions(model->gbt, row, 1, contrib, &err))) break;
            cJSON_AddItemToObject(r, "contribs", fm_json_double_array(contrib, width * (nf + 1)));
        }
        cJSON *json = fm_explanation_to_json(e, &ex, &request, k);
        if (!json) {
            rc = fm_error_set(&err, FM_ENOMEM, "fm_explanation_to_json failed");
            break;
        }
        cJSON_AddItemToObject(r, "json", json);
        cJSON_AddItemToArray(rows, r);
    }
    if (!rc) {
        char *text = cJSON_PrintUnformatted(doc);
        puts(text);
        free(text);
    }
    cJSON_Delete(doc);
    cJSON_Delete(reasons);
    free(phi);
    free(contrib);
    free(x);
    fm_explain_workspace_free(ws);
    fm_explainer_free(e);
    fm_frame_free(frame);
    fm_model_free(model);
    return rc ? fail(err.code, err.msg) : 0;
}
