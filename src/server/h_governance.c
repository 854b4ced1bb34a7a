/*
 * Model governance over HTTP, on a stored labelled dataset (h_datasets.c):
 *   POST /api/models/{name}[/versions/{version}]/fairness
 *        {"dataset": NAME, "protected": [COL, ...], "threshold": X, "reference": {COL: GROUP},
 *         "bands": {COL: [EDGES]}}
 *     scores the dataset with a binary model's version (the production one, else the newest,
 *     when the path names none) and answers the JSON object `finmaas fairness` prints: "target",
 *     "positive", "threshold", "rows", "rows_missing_target", "attributes" (fairness/fairness.h).
 *     "protected" defaults to the attributes stored in the model at training ("fairness".
 *     "protected", with the bands they resolved to), "threshold" to the stored decision
 *     threshold, else 0.5; "reference" and "bands" override those of the attributes they name.
 *   GET /api/models/{name}/versions/{version}/report?dataset=NAME
 *     the validation report (report/report.h) of that version on the dataset, as one HTML page:
 *     the predictions, permutation importance and partial dependence computed on the dataset
 *     (importance/importance.h), the mean absolute attribution stored at training, and for a
 *     binary model with stored protected attributes their fairness on the dataset; when the model
 *     was trained with reweighing, the fairness it recorded at training before and after
 *     mitigation instead, both measured on the same validation rows
 *     (fm_report_stored_mitigation).
 *
 * Loading a dataset (decrypting and parsing it) and scoring it take long enough to hold an HTTP
 * thread for seconds, so the work runs on the jobs' background thread while the connection is
 * suspended, as dataset uploads do; the reply is written when it resumes. The audit entry of a
 * report records the page's size and digest, not the page.
 */
#include "server/internal.h"

#include "core/digest.h"
#include "core/json.h"
#include "fairness/fairness.h"
#include "importance/importance.h"
#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTRS FM_FAIRNESS_MAX_ATTRIBUTES

/* One request's work, handed to the background thread and back. */
typedef struct governance {
    fm_deferred_t deferred; /* first: the background work's request and outcome */
    fm_served_t *served;
    fm_datasets_t *datasets;
    int report; /* the report route; else fairness */
    char dataset[FM_REGISTRY_NAME_MAX + 1];
    /* the fairness settings; names and references borrow from body or from the model's info */
    cJSON *body;
    fm_fairness_attribute_t attrs[MAX_ATTRS];
    size_t nattrs;
    double *band_store[MAX_ATTRS]; /* bands given in the body, owned */
    double *stored_edges;          /* the stored attributes' bands, owned */
    double threshold;
    /* the outcome */
    cJSON *result; /* fairness */
    fm_buf_t html; /* report */
} governance_t;

static void governance_free(governance_t *g) {
    if (!g) return;
    if (g->served) fm_served_release(g->served);
    cJSON_Delete(g->body);
    for (size_t k = 0; k < MAX_ATTRS; k++)
        free(g->band_store[k]);
    free(g->stored_edges);
    cJSON_Delete(g->result);
    fm_buf_free(&g->html);
    free(g);
}

/* ---- Settings ------------------------------------------------------------------------------ */

static const cJSON *stored_fairness(const fm_model_t *m) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(m->info, "fairness");
    return cJSON_IsObject(f) ? f : NULL;
}

/* The stored decision threshold, else 0.5. */
static double stored_threshold(const fm_model_t *m) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(stored_fairness(m), "threshold");
    return cJSON_IsNumber(t) && t->valuedouble >= 0.0 && t->valuedouble <= 1.0 ? t->valuedouble
                                                                               : 0.5;
}

/* The protected attributes stored in the model, or none (*nattrs 0). */
static int stored_attributes(governance_t *g, fm_error_t *err) {
    const fm_model_t *m = g->served->model;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(stored_fairness(m), "protected");
    g->nattrs = 0;
    if (!p) return FM_OK;
    int rc =
        fm_fairness_attributes_from_json(p, g->attrs, MAX_ATTRS, &g->nattrs, &g->stored_edges, err);
    if (rc)
        return fm_error_prefix(err, "model '%s' version %lld: stored protected attributes: ",
                               g->served->name, (long long)g->served->version);
    return FM_OK;
}

static int find_attribute(const governance_t *g, const char *name) {
    for (size_t k = 0; k < g->nattrs; k++)
        if (!strcmp(g->attrs[k].name, name)) return (int)k;
    return -1;
}

/* "protected": the attributes to measure, replacing the stored ones. */
static int read_protected(governance_t *g, const cJSON *list, fm_error_t *err) {
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return fm_error_set(err, FM_EINVAL,
                            "'protected' must be a non-empty array of column names");
    if (cJSON_GetArraySize(list) > MAX_ATTRS)
        return fm_error_set(err, FM_EINVAL, "'protected' names more than %d columns", MAX_ATTRS);
    memset(g->attrs, 0, sizeof g->attrs);
    g->nattrs = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        if (!cJSON_IsString(item) || !item->valuestring[0])
            return fm_error_set(err, FM_EINVAL, "'protected' must hold column names (strings)");
        if (find_attribute(g, item->valuestring) >= 0)
            return fm_error_set(err, FM_EINVAL, "'protected' names '%s' twice", item->valuestring);
        g->attrs[g->nattrs++].name = item->valuestring;
    }
    return FM_OK;
}

/* "reference": {COL: GROUP} for attributes being measured. */
static int read_references(governance_t *g, const cJSON *obj, fm_error_t *err) {
    if (!cJSON_IsObject(obj))
        return fm_error_set(err, FM_EINVAL,
                            "'reference' must be an object {\"column\": \"group\"}");
    const cJSON *item;
    cJSON_ArrayForEach(item, obj) {
        int k = find_attribute(g, item->string);
        if (k < 0)
            return fm_error_set(err, FM_EINVAL,
                                "'reference' names column '%s', which is not a protected attribute",
                                item->string);
        if (!cJSON_IsString(item))
            return fm_error_set(err, FM_EINVAL, "'reference' of '%s' must be a group name (string)",
                                item->string);
        g->attrs[k].reference = item->valuestring;
    }
    return FM_OK;
}

/* "bands": {COL: [E1, E2, ...]} with strictly increasing finite edges. */
static int read_bands(governance_t *g, const cJSON *obj, fm_error_t *err) {
    if (!cJSON_IsObject(obj))
        return fm_error_set(err, FM_EINVAL, "'bands' must be an object {\"column\": [edges]}");
    const cJSON *item;
    cJSON_ArrayForEach(item, obj) {
        int k = find_attribute(g, item->string);
        if (k < 0)
            return fm_error_set(err, FM_EINVAL,
                                "'bands' names column '%s', which is not a protected attribute",
                                item->string);
        int n = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : 0;
        if (n < 1 || n > 1000)
            return fm_error_set(err, FM_EINVAL,
                                "'bands' of '%s' must be an array of 1 to 1000 increasing numbers",
                                item->string);
        double *edges = malloc((size_t)n * sizeof *edges);
        if (!edges) return fm_error_set(err, FM_ENOMEM, "out of memory");
        free(g->band_store[k]);
        g->band_store[k] = edges;
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, item) {
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) ||
                (i > 0 && !(e->valuedouble > edges[i - 1])))
                return fm_error_set(err, FM_EINVAL,
                                    "'bands' of '%s' must be strictly increasing finite numbers "
                                    "(item %d)",
                                    item->string, i);
            edges[i++] = e->valuedouble;
        }
        g->attrs[k].edges = edges;
        g->attrs[k].nedges = (size_t)n;
        g->attrs[k].by_value = 0;
    }
    return FM_OK;
}

/* The fairness request's body: dataset, protected attributes, threshold, references, bands. */
static int read_fairness_body(governance_t *g, fm_request_t *req, fm_error_t *err) {
    int rc = fm_json_parse(req->body.data, req->body.len, "request body", &g->body, err);
    if (rc) return FM_EPARSE;
    if (!cJSON_IsObject(g->body))
        return fm_error_set(err, FM_EPARSE, "the request body must be a JSON object");
    const cJSON *dataset = cJSON_GetObjectItemCaseSensitive(g->body, "dataset");
    if (!cJSON_IsString(dataset))
        return fm_error_set(err, FM_EINVAL,
                            "the request needs \"dataset\": the name of a stored "
                            "dataset");
    if ((rc = fm_dataset_check_name(dataset->valuestring, err))) return rc;
    snprintf(g->dataset, sizeof g->dataset, "%s", dataset->valuestring);
    const cJSON *threshold = cJSON_GetObjectItemCaseSensitive(g->body, "threshold");
    g->threshold = stored_threshold(g->served->model);
    if (threshold) {
        if (!cJSON_IsNumber(threshold) || !(threshold->valuedouble >= 0.0) ||
            !(threshold->valuedouble <= 1.0))
            return fm_error_set(err, FM_EINVAL, "'threshold' must be a number in [0, 1]");
        g->threshold = threshold->valuedouble;
    }
    const cJSON *protected = cJSON_GetObjectItemCaseSensitive(g->body, "protected");
    rc = protected ? read_protected(g, protected, err) : stored_attributes(g, err);
    if (rc) return rc;
    if (g->nattrs == 0)
        return fm_error_set(err, FM_EINVAL,
                            "model '%s' version %lld has no stored protected attributes: give "
                            "\"protected\": [columns]",
                            g->served->name, (long long)g->served->version);
    const cJSON *reference = cJSON_GetObjectItemCaseSensitive(g->body, "reference");
    if (reference && (rc = read_references(g, reference, err))) return rc;
    const cJSON *bands = cJSON_GetObjectItemCaseSensitive(g->body, "bands");
    if (bands && (rc = read_bands(g, bands, err))) return rc;
    const char *target = g->served->model->target;
    for (size_t k = 0; k < g->nattrs; k++)
        if (!strcmp(g->attrs[k].name, target))
            return fm_error_set(err, FM_EINVAL, "protected column '%s' is the target column",
                                target);
    return FM_OK;
}

/* ---- The work (background thread) ---------------------------------------------------------- */

/* The class index of each row's target (-1 when missing) of a classifier, into label[nrows]. A
 * value that is not one of the model's classes is FM_EDATA naming the row. */
static int class_labels(const fm_model_t *m, const fm_column_t *t, const char *dataset, int *label,
                        size_t nrows, fm_error_t *err) {
    if (t->type == FM_COLUMN_NUMERIC) {
        for (size_t i = 0; i < nrows; i++) {
            label[i] = -1;
            if (isnan(t->values[i])) continue;
            /* The shortest text that reads back as the number, as a class label is written. */
            char text[32];
            snprintf(text, sizeof text, "%.15g", t->values[i]);
            if (strtod(text, NULL) != t->values[i])
                snprintf(text, sizeof text, "%.17g", t->values[i]);
            for (size_t k = 0; k < m->nclasses && label[i] < 0; k++)
                if (!strcmp(text, m->classes[k])) label[i] = (int)k;
            if (label[i] < 0)
                return fm_error_set(err, FM_EDATA,
                                    "dataset '%s' row %zu: target '%s' value %s is not one of the "
                                    "model's classes",
                                    dataset, i + 1, m->target, text);
        }
        return FM_OK;
    }
    size_t ncodes = t->dict.count;
    int *map = malloc((ncodes ? ncodes : 1) * sizeof *map);
    if (!map) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; c < ncodes; c++) {
        map[c] = -1;
        for (size_t k = 0; k < m->nclasses && map[c] < 0; k++)
            if (!strcmp(fm_strdict_get(&t->dict, (int32_t)c), m->classes[k])) map[c] = (int)k;
    }
    int rc = FM_OK;
    for (size_t i = 0; i < nrows && !rc; i++) {
        int32_t code = t->codes[i];
        label[i] = code < 0 ? -1 : map[code];
        if (code >= 0 && map[code] < 0)
            rc = fm_error_set(err, FM_EDATA,
                              "dataset '%s' row %zu: target '%s' value '%s' is not one of the "
                              "model's classes",
                              dataset, i + 1, m->target, fm_strdict_get(&t->dict, code));
    }
    free(map);
    return rc;
}

/* The dataset's target column, and every protected column, must be there. */
static const fm_column_t *check_columns(const governance_t *g, const fm_frame_t *frame,
                                        fm_error_t *err) {
    const fm_model_t *m = g->served->model;
    int t = fm_frame_find(frame, m->target);
    if (t < 0) {
        fm_error_set(err, FM_EDATA, "dataset '%s' has no column '%s' (the target of model '%s')",
                     g->dataset, m->target, g->served->name);
        return NULL;
    }
    for (size_t k = 0; k < g->nattrs; k++)
        if (fm_frame_find(frame, g->attrs[k].name) < 0) {
            fm_error_set(err, FM_EDATA, "dataset '%s' has no protected column '%s'", g->dataset,
                         g->attrs[k].name);
            return NULL;
        }
    return &frame->columns[t];
}

/* The fairness of the binary decision P(positive) >= threshold, as `finmaas fairness` prints. */
static int fairness_of(const governance_t *g, const fm_frame_t *frame, const double *pred,
                       const int *label, cJSON **out, fm_error_t *err) {
    const fm_model_t *m = g->served->model;
    size_t n = frame->nrows;
    *out = NULL;
    int *y = malloc((n ? n : 1) * sizeof *y), *d = malloc((n ? n : 1) * sizeof *d);
    fm_fairness_rows_t *rows = NULL;
    cJSON *list = NULL, *obj = NULL;
    int rc = y && d ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        y[i] = label[i];
        d[i] = pred[i] >= g->threshold;
    }
    if (!rc) rc = fm_fairness_rows_new(g->attrs, g->nattrs, &rows, err);
    if (!rc) rc = fm_fairness_rows_add(rows, frame, NULL, n, y, d, err);
    if (!rc && fm_fairness_rows_count(rows) == 0)
        rc = fm_error_set(err, FM_EDATA, "dataset '%s' has no rows with a value in target '%s'",
                          g->dataset, m->target);
    if (!rc) rc = fm_fairness_rows_report(rows, &list, err);
    if (!rc && !(obj = cJSON_CreateObject())) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) {
        cJSON_AddStringToObject(obj, "target", m->target);
        cJSON_AddStringToObject(obj, "positive", m->classes[1]);
        cJSON_AddNumberToObject(obj, "threshold", g->threshold);
        cJSON_AddNumberToObject(obj, "rows", (double)fm_fairness_rows_count(rows));
        cJSON_AddNumberToObject(obj, "rows_missing_target",
                                (double)fm_fairness_rows_missing_target(rows));
        cJSON_AddItemToObject(obj, "attributes", list);
        list = NULL;
        *out = obj;
        obj = NULL;
    }
    cJSON_Delete(list);
    cJSON_Delete(obj);
    fm_fairness_rows_free(rows);
    free(y);
    free(d);
    return rc;
}

/* The report: fairness (on every row), then the rows with a target, importance, the page. */
static int report_of(governance_t *g, const fm_frame_t *frame, const fm_column_t *target,
                     double *pred, int *label, fm_error_t *err) {
    const fm_model_t *m = g->served->model;
    size_t n = frame->nrows, width = fm_model_output_width(m), kept = 0;
    cJSON *importance = NULL, *fairness = NULL, *before = NULL, *after = NULL;
    double *y = NULL;
    int rc = FM_OK;
    if (g->nattrs > 0 && m->task == FM_TASK_BINARY) {
        rc = fairness_of(g, frame, pred, label, &fairness, err);
        if (!rc) fm_report_stored_mitigation(m, &before, &after);
    }
    /* Rows without a target are left out: pred and label are compacted in place. */
    if (!rc && m->task == FM_TASK_REGRESSION) {
        if (target->type != FM_COLUMN_NUMERIC)
            rc = fm_error_set(err, FM_EDATA, "dataset '%s': target '%s' is not numeric", g->dataset,
                              m->target);
        else if (!(y = malloc((n ? n : 1) * sizeof *y)))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t i = 0; i < n && !rc; i++)
            if (!isnan(target->values[i])) {
                y[kept] = target->values[i];
                pred[kept++] = pred[i];
            }
    } else if (!rc) {
        for (size_t i = 0; i < n; i++)
            if (label[i] >= 0) {
                memmove(pred + kept * width, pred + i * width, width * sizeof *pred);
                label[kept++] = label[i];
            }
    }
    if (!rc && kept == 0)
        rc = fm_error_set(err, FM_EDATA, "dataset '%s' has no rows with a value in target '%s'",
                          g->dataset, m->target);
    fm_importance_options_t options;
    fm_importance_options_defaults(&options);
    if (!rc) rc = fm_importance_compute(m, frame, NULL, n, &options, &importance, err);
    const cJSON *global = cJSON_GetObjectItemCaseSensitive(m->info, "global_explanations");
    const cJSON *mean_abs = cJSON_GetObjectItemCaseSensitive(global, "mean_abs_attribution");
    fm_report_input_t in = {
        .model = m,
        .model_name = g->served->name,
        .version = (long)g->served->version,
        .data_name = g->dataset,
        .n = kept,
        .pred = pred,
        .label = m->task == FM_TASK_REGRESSION ? NULL : label,
        .y = y,
        .importance = importance,
        .mean_abs_attribution = cJSON_IsObject(mean_abs) ? mean_abs : NULL,
        .fairness = before ? before : fairness,
        .fairness_mitigated = before ? after : NULL,
    };
    if (!rc) rc = fm_report_html_at(&in, g->threshold, &g->html, err);
    /* An inconsistent input is the dataset's fault (no usable rows for the task): 422. */
    if (rc == FM_EINVAL) rc = err->code = FM_EDATA;
    cJSON_Delete(importance);
    cJSON_Delete(fairness);
    cJSON_Delete(before);
    cJSON_Delete(after);
    free(y);
    return rc;
}

static int work(fm_deferred_t *d, fm_error_t *err) {
    governance_t *g = (governance_t *)d;
    const fm_model_t *m = g->served->model;
    fm_frame_t *frame = NULL;
    int rc = fm_datasets_load(g->datasets, g->dataset, &frame, NULL, err);
    if (rc) return rc;
    const fm_column_t *target = check_columns(g, frame, err);
    size_t n = frame->nrows, width = fm_model_output_width(m);
    double *pred = NULL;
    int *label = NULL;
    if (!target) rc = err->code;
    if (!rc) {
        pred = malloc((n ? n : 1) * width * sizeof *pred);
        label = malloc((n ? n : 1) * sizeof *label);
        if (!pred || !label) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc) rc = fm_model_predict_frame(m, frame, pred, err);
    if (!rc && m->task != FM_TASK_REGRESSION)
        rc = class_labels(m, target, g->dataset, label, n, err);
    if (!rc)
        rc = g->report ? report_of(g, frame, target, pred, label, err)
                       : fairness_of(g, frame, pred, label, &g->result, err);
    free(pred);
    free(label);
    fm_frame_free(frame);
    return rc;
}

/* ---- The requests -------------------------------------------------------------------------- */

/* Writes the reply once the work is done (the state is freed here, whatever happened). */
static int finish(fm_request_t *req, fm_error_t *err) {
    governance_t *g = req->resume_state;
    req->resume_state = NULL;
    int rc = fm_deferred_outcome(req, &g->deferred, err);
    if (!rc && g->report) {
        char digest[FM_DIGEST_HEX];
        fm_digest_hex(g->html.data, g->html.len, digest);
        char *audit = malloc(160);
        if (audit) {
            snprintf(audit, 160, "{\"report\":\"text/html\",\"bytes\":%zu,\"blake2b\":\"%s\"}",
                     g->html.len, digest);
            req->audit_owned = audit;
            req->audit_output = audit;
        } else {
            req->audit_output = "{\"report\":\"text/html\"}";
        }
        fm_buf_free(&req->reply);
        req->reply = g->html;
        g->html = (fm_buf_t)FM_BUF_INIT;
        req->status = 200;
        req->content_type = "text/html; charset=utf-8";
    } else if (!rc) {
        rc = fm_reply_cjson(req, g->result, err);
    }
    governance_free(g);
    return rc;
}

/* The version the path names (production, else the newest, when it names none), recorded on the
 * request for the logs and the audit entry. Not counted as an inference. */
static int acquire(fm_request_t *req, fm_served_t **out, fm_error_t *err) {
    const char *name = req->params[0];
    int64_t version = 0;
    snprintf(req->model, sizeof req->model, "%s", name);
    if (req->nparams > 1 && fm_parse_version(req->params[1], &version, err)) return FM_ENOTFOUND;
    int rc = fm_store_acquire(req->server->store, name, version, NULL, out, err);
    if (rc) return rc;
    req->version = (*out)->version;
    return FM_OK;
}

/*
 * Checks the dataset may be used by the caller, then runs the work on the background thread
 * (inline while the server is stopping: a suspended connection could outlive the daemon). Takes
 * g: finish frees it, or this function when it refuses the request.
 */
static int start(fm_request_t *req, governance_t *g, fm_error_t *err) {
    int rc = fm_dataset_check_name(g->dataset, err);
    if (!rc) {
        snprintf(req->audit_detail, sizeof req->audit_detail, "dataset=%s", g->dataset);
        if (!fm_auth_sees(req, g->dataset))
            rc = fm_error_set(err, FM_EDENIED, "this key may not use dataset '%s'", g->dataset);
        else if (!fm_datasets_exists(req->server->datasets, g->dataset))
            rc = fm_error_set(err, FM_ENOTFOUND, "dataset '%s' not found", g->dataset);
    }
    if (rc) {
        governance_free(g);
        return rc;
    }
    g->datasets = req->server->datasets;
    g->deferred.work = work;
    return fm_defer(req, &g->deferred, finish, err);
}

int fm_h_model_fairness(fm_request_t *req, fm_error_t *err) {
    governance_t *g = calloc(1, sizeof *g);
    if (!g) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = acquire(req, &g->served, err);
    const fm_model_t *m = rc ? NULL : g->served->model;
    if (!rc && (m->task != FM_TASK_BINARY || m->nclasses != 2))
        rc = fm_error_set(err, FM_EDATA,
                          "model '%s' version %lld is a %s model; fairness needs a binary "
                          "classifier",
                          g->served->name, (long long)g->served->version, fm_task_name(m->task));
    if (!rc) rc = read_fairness_body(g, req, err);
    if (!rc) return start(req, g, err);
    governance_free(g);
    return rc;
}

int fm_h_model_report(fm_request_t *req, fm_error_t *err) {
    const char *dataset =
        MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "dataset");
    if (!dataset || !*dataset)
        return fm_error_set(err, FM_EINVAL,
                            "the query parameter 'dataset' is required: GET "
                            "/api/models/NAME/versions/N/report?dataset=NAME (a stored labelled "
                            "dataset)");
    governance_t *g = calloc(1, sizeof *g);
    if (!g) return fm_error_set(err, FM_ENOMEM, "out of memory");
    g->report = 1;
    snprintf(g->dataset, sizeof g->dataset, "%s", dataset);
    int rc = fm_dataset_check_name(dataset, err);
    if (!rc) rc = acquire(req, &g->served, err);
    if (!rc) {
        const fm_model_t *m = g->served->model;
        g->threshold = stored_threshold(m);
        if (m->task == FM_TASK_BINARY) rc = stored_attributes(g, err);
    }
    if (!rc) return start(req, g, err);
    governance_free(g);
    return rc;
}
