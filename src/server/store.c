/*
 * The store of loaded models: for each model of the registry, its loaded versions (each an
 * fm_served_t with a reference count) and a cache of its labels, so that choosing the version
 * for a request never touches the database.
 *
 * A request takes a reference under the read lock and drops it when done; loading, unloading and
 * syncing take the write lock only to swap pointers, never while reading files. A version removed
 * from the store is freed by whoever drops its last reference: the store, or the last request
 * still using it. So a new version becomes servable at once and requests in flight finish on the
 * version they started with.
 */
#include "server/internal.h"
#include "core/clock.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 32
#define MAX_FAILED 256

typedef struct label {
    char name[FM_REGISTRY_NAME_MAX + 1];
    int64_t version;
} label_t;

typedef struct entry {
    char name[FM_REGISTRY_NAME_MAX + 1];
    int wanted;             /* serve it (0 after an unload through the API) */
    fm_served_t **versions; /* loaded, ascending version */
    size_t nversions, cap;
    label_t labels[MAX_LABELS];
    size_t nlabels;
} entry_t;

struct fm_store {
    fm_server_t *server;
    pthread_rwlock_t lock;
    pthread_mutex_t load_lock; /* one loader at a time (start-up, API, watcher) */
    entry_t *entries;
    size_t count, cap;
    /* Bumped by every label change made through the API: a sync that read the registry before
     * such a change must not apply its older view of the labels. */
    atomic_ulong label_generation;
    /* Versions that failed to load and were reported (guarded by load_lock): the watcher retries
     * them at every poll, but says so once, not every two seconds. */
    struct {
        char name[FM_REGISTRY_NAME_MAX + 1];
        int64_t version;
    } failed[MAX_FAILED];
    size_t nfailed;
};

/* 1 the first time name/version fails to load (then remembered); 0 when already reported. */
static int first_failure(fm_store_t *st, const char *name, int64_t version) {
    for (size_t i = 0; i < st->nfailed; i++)
        if (st->failed[i].version == version && !strcmp(st->failed[i].name, name)) return 0;
    if (st->nfailed < MAX_FAILED) {
        snprintf(st->failed[st->nfailed].name, sizeof st->failed[0].name, "%s", name);
        st->failed[st->nfailed++].version = version;
    }
    return 1;
}

/* ---- Served versions --------------------------------------------------------------------- */

static void scratch_free(fm_scratch_t *s) {
    if (!s) return;
    free(s->x);
    free(s->out);
    free(s->values);
    fm_model_workspace_free(s->ws);
    fm_explain_workspace_free(s->explain_ws);
    free(s->phi);
    free(s);
}

static void served_free(fm_served_t *s) {
    if (!s) return;
    fm_batcher_free(s->batcher);
    for (fm_scratch_t *p = s->pool, *next; p; p = next) {
        next = p->next;
        scratch_free(p);
    }
    pthread_mutex_destroy(&s->pool_lock);
    fm_explainer_free(s->explainer); /* after the pool: its workspaces belong to it */
    fm_scorecard_free(s->scorecard);
    fm_strdict_free(&s->inputs);
    fm_model_free(s->model);
    free(s->metadata);
    free(s);
}

void fm_served_release(fm_served_t *s) {
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) served_free(s);
}

fm_scratch_t *fm_scratch_get(fm_served_t *served, int n) {
    pthread_mutex_lock(&served->pool_lock);
    fm_scratch_t *s = served->pool;
    if (s && s->capacity >= n) {
        served->pool = s->next;
        pthread_mutex_unlock(&served->pool_lock);
        return s;
    }
    pthread_mutex_unlock(&served->pool_lock);
    const fm_model_t *m = served->model;
    int capacity = n > 64 ? n : 64;
    s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->capacity = capacity;
    s->x = malloc((size_t)capacity * m->prep->nfeatures * sizeof *s->x);
    s->out = malloc((size_t)capacity * fm_model_output_width(m) * sizeof *s->out);
    s->values = malloc((m->prep->ncolumns ? m->prep->ncolumns : 1) * sizeof *s->values);
    fm_error_t err;
    if (!s->x || !s->out || !s->values || fm_model_workspace_new(m, capacity, &s->ws, &err)) {
        scratch_free(s);
        return NULL;
    }
    return s;
}

void fm_scratch_put(fm_served_t *served, fm_scratch_t *s) {
    if (!s) return;
    if (s->capacity > 4096) { /* an unusually large request: do not keep its memory */
        scratch_free(s);
        return;
    }
    pthread_mutex_lock(&served->pool_lock);
    s->next = served->pool;
    served->pool = s;
    pthread_mutex_unlock(&served->pool_lock);
}

/* The V2 model metadata of one version, as JSON text. */
static char *build_metadata(const fm_served_t *s) {
    const fm_model_t *m = s->model;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", s->name);
    char version[24];
    snprintf(version, sizeof version, "%lld", (long long)s->version);
    cJSON *versions = cJSON_AddArrayToObject(j, "versions");
    cJSON_AddItemToArray(versions, cJSON_CreateString(version));
    cJSON_AddStringToObject(j, "platform", "finmaas_fmm");
    cJSON *inputs = cJSON_AddArrayToObject(j, "inputs");
    for (size_t i = 0; i < m->prep->ncolumns; i++) {
        const fm_prep_column_t *c = &m->prep->columns[i];
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", c->name);
        cJSON_AddStringToObject(t, "datatype", c->type == FM_COLUMN_NUMERIC ? "FP64" : "BYTES");
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(-1));
        cJSON_AddItemToArray(inputs, t);
    }
    cJSON *outputs = cJSON_AddArrayToObject(j, "outputs");
    const char *names[2] = {"probability", "label"};
    const char *types[2] = {"FP32", "BYTES"};
    int nout = 2;
    if (m->task == FM_TASK_REGRESSION) {
        names[0] = "prediction";
        types[0] = "FP64";
        nout = 1;
    }
    for (int o = 0; o < nout; o++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", names[o]);
        cJSON_AddStringToObject(t, "datatype", types[o]);
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(-1));
        if (o == 0 && m->task == FM_TASK_MULTICLASS)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)m->nclasses));
        cJSON_AddItemToArray(outputs, t);
    }
    cJSON *params = cJSON_AddObjectToObject(j, "parameters");
    cJSON_AddStringToObject(params, "task", fm_task_name(m->task));
    cJSON_AddStringToObject(params, "family", m->family);
    cJSON_AddStringToObject(params, "target", m->target);
    if (m->nclasses) {
        cJSON *classes = cJSON_AddArrayToObject(params, "classes");
        for (size_t k = 0; k < m->nclasses; k++)
            cJSON_AddItemToArray(classes, cJSON_CreateString(m->classes[k]));
    }
    if (m->task == FM_TASK_BINARY) cJSON_AddStringToObject(params, "positive_class", m->classes[1]);
    cJSON_AddNumberToObject(params, "encoded_features", (double)m->prep->nfeatures);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

/* Scores one row of all-missing inputs so the first real request finds every page warm. */
static int warm(fm_served_t *s, fm_error_t *err) {
    fm_scratch_t *scratch = fm_scratch_get(s, 1);
    if (!scratch) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->model->prep->ncolumns; i++)
        scratch->values[i] = (fm_raw_value_t){FM_RAW_MISSING, 0, NULL, 0};
    int rc = fm_prep_encode_row(s->model->prep, scratch->values, scratch->x, err);
    if (!rc) fm_model_predict_encoded(s->model, scratch->ws, scratch->x, 1, scratch->out);
    fm_scratch_put(s, scratch);
    return rc;
}

static int served_load(fm_store_t *store, const fm_version_info_t *info, fm_served_t **out,
                       fm_error_t *err) {
    fm_server_t *server = store->server;
    double start = fm_clock_seconds();
    fm_served_t *s = calloc(1, sizeof *s);
    if (!s) return fm_error_set(err, FM_ENOMEM, "out of memory");
    pthread_mutex_init(&s->pool_lock, NULL);
    snprintf(s->name, sizeof s->name, "%s", info->name);
    s->version = info->version;
    atomic_init(&s->refs, 1);
    /* Through the registry: it decrypts files stored under a master key and checks their hash. */
    int rc = fm_registry_load_model(store->server->registry, info, &s->model, err);
    for (size_t i = 0; !rc && i < s->model->prep->ncolumns; i++) {
        const char *name = s->model->prep->columns[i].name;
        if (fm_strdict_intern(&s->inputs, name, strlen(name)) < 0)
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc && !(s->metadata = build_metadata(s)))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) {
        /* A model whose explanation settings cannot be read still predicts; explaining it
         * answers 422 with this reason. */
        fm_error_t explain_err;
        fm_error_clear(&explain_err);
        if (fm_explainer_new(s->model, &s->explainer, &explain_err) != FM_OK)
            snprintf(s->explain_error, sizeof s->explain_error, "%s",
                     fm_error_message(&explain_err));
        fm_error_t card_err;
        fm_error_clear(&card_err);
        if (fm_scorecard_from_model(s->model, &s->scorecard, &card_err) != FM_OK)
            snprintf(s->scorecard_error, sizeof s->scorecard_error, "%s",
                     fm_error_message(&card_err));
    }
    if (!rc && server->config.batch_max_size > 0)
        rc = fm_batcher_new(s, &server->config, &s->batcher, err);
    if (!rc) rc = warm(s, err);
    if (!rc) {
        s->stats = fm_metrics_model(server->metrics, s->name, s->version);
        if (!s->stats) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (rc) {
        fm_error_prefix(err, "model '%s' version %lld: ", info->name, (long long)info->version);
        served_free(s);
        return rc;
    }
    s->load_seconds = fm_clock_seconds() - start;
    atomic_store(&s->stats->load_micros, (uint64_t)(s->load_seconds * 1e6));
    *out = s;
    return FM_OK;
}

/* ---- The store --------------------------------------------------------------------------- */

int fm_store_new(fm_server_t *server, fm_store_t **out, fm_error_t *err) {
    fm_store_t *st = calloc(1, sizeof *st);
    if (!st) return fm_error_set(err, FM_ENOMEM, "out of memory");
    st->server = server;
    pthread_rwlock_init(&st->lock, NULL);
    pthread_mutex_init(&st->load_lock, NULL);
    *out = st;
    return FM_OK;
}

void fm_store_free(fm_store_t *st) {
    if (!st) return;
    for (size_t i = 0; i < st->count; i++) {
        for (size_t v = 0; v < st->entries[i].nversions; v++)
            fm_served_release(st->entries[i].versions[v]);
        free(st->entries[i].versions);
    }
    free(st->entries);
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->load_lock);
    free(st);
}

static entry_t *find_entry(fm_store_t *st, const char *name) {
    for (size_t i = 0; i < st->count; i++)
        if (!strcmp(st->entries[i].name, name)) return &st->entries[i];
    return NULL;
}

/* Finds or adds the entry for name; call with the write lock held. */
static entry_t *entry_for(fm_store_t *st, const char *name) {
    entry_t *e = find_entry(st, name);
    if (e) return e;
    if (st->count == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        entry_t *p = realloc(st->entries, cap * sizeof *p);
        if (!p) return NULL;
        st->entries = p;
        st->cap = cap;
    }
    e = &st->entries[st->count++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->wanted = 1;
    return e;
}

static fm_served_t *find_version(const entry_t *e, int64_t version) {
    for (size_t v = 0; v < e->nversions; v++)
        if (e->versions[v]->version == version) return e->versions[v];
    return NULL;
}

/* Adds a loaded version to its entry (write lock held). On failure the caller keeps s. */
static int insert_version(entry_t *e, fm_served_t *s) {
    if (e->nversions == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        fm_served_t **p = realloc(e->versions, cap * sizeof *p);
        if (!p) return FM_ENOMEM;
        e->versions = p;
        e->cap = cap;
    }
    size_t at = e->nversions;
    while (at > 0 && e->versions[at - 1]->version > s->version)
        at--;
    memmove(e->versions + at + 1, e->versions + at, (e->nversions - at) * sizeof *e->versions);
    e->versions[at] = s;
    e->nversions++;
    return FM_OK;
}

/* Replaces an entry's label cache with the labels listed in infos for that model. */
static void refresh_labels(entry_t *e, const fm_version_info_t *infos, size_t n) {
    e->nlabels = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(infos[i].name, e->name) != 0 || !infos[i].labels[0]) continue;
        char copy[sizeof infos[i].labels];
        memcpy(copy, infos[i].labels, sizeof copy);
        char *save = NULL;
        for (char *l = strtok_r(copy, ",", &save); l && e->nlabels < MAX_LABELS;
             l = strtok_r(NULL, ",", &save)) {
            snprintf(e->labels[e->nlabels].name, sizeof e->labels[0].name, "%s", l);
            e->labels[e->nlabels++].version = infos[i].version;
        }
    }
}

/*
 * Loads the versions of wanted models (all models when only is NULL, else only that one) that
 * are registered but not loaded, and refreshes label caches. force_wanted marks only as wanted.
 */
static int sync_models(fm_store_t *st, const char *only, int force_wanted, fm_error_t *err) {
    pthread_mutex_lock(&st->load_lock);
    fm_version_info_t *infos = NULL;
    size_t n = 0;
    unsigned long generation = atomic_load(&st->label_generation);
    int rc = fm_registry_list(st->server->registry, only, &infos, &n, err);
    if (!rc && only && n == 0) rc = fm_error_set(err, FM_ENOTFOUND, "model '%s' not found", only);
    for (size_t i = 0; !rc && i < n; i++) {
        pthread_rwlock_wrlock(&st->lock);
        entry_t *e = entry_for(st, infos[i].name);
        if (e && force_wanted) e->wanted = 1;
        int need = e && e->wanted && !find_version(e, infos[i].version);
        pthread_rwlock_unlock(&st->lock);
        if (!e) {
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
            break;
        }
        if (!need) continue;
        fm_served_t *s = NULL;
        fm_error_t load_err;
        if (served_load(st, &infos[i], &s, &load_err)) {
            /* One bad file must not take the others down: report it (once) and go on. */
            if (first_failure(st, infos[i].name, infos[i].version))
                fprintf(stderr,
                        "finmaas serve: cannot load %s (not served; retried at each registry "
                        "poll, reported once)\n",
                        fm_error_message(&load_err));
            continue;
        }
        pthread_rwlock_wrlock(&st->lock);
        e = find_entry(st, infos[i].name);
        int inserted = e && e->wanted && !find_version(e, s->version) && !insert_version(e, s);
        pthread_rwlock_unlock(&st->lock);
        if (!inserted) fm_served_release(s);
    }
    if (!rc) {
        pthread_rwlock_wrlock(&st->lock);
        /* Labels changed through the API since the read are newer than infos: keep them. */
        if (generation == atomic_load(&st->label_generation))
            for (size_t k = 0; k < st->count; k++)
                if (!only || !strcmp(st->entries[k].name, only))
                    refresh_labels(&st->entries[k], infos, n);
        pthread_rwlock_unlock(&st->lock);
    }
    free(infos);
    pthread_mutex_unlock(&st->load_lock);
    return rc;
}

int fm_store_load_all(fm_store_t *st, fm_error_t *err) {
    return sync_models(st, NULL, 0, err);
}

int fm_store_sync(fm_store_t *st, fm_error_t *err) {
    return sync_models(st, NULL, 0, err);
}

int fm_store_load(fm_store_t *st, const char *name, fm_error_t *err) {
    int rc = sync_models(st, name, 1, err);
    if (rc) return rc;
    pthread_rwlock_rdlock(&st->lock);
    entry_t *e = find_entry(st, name);
    int loaded = e && e->nversions > 0;
    pthread_rwlock_unlock(&st->lock);
    if (!loaded)
        return fm_error_set(err, FM_EFORMAT, "model '%s': no version could be loaded", name);
    return FM_OK;
}

int fm_store_unload(fm_store_t *st, const char *name, fm_error_t *err) {
    pthread_rwlock_wrlock(&st->lock);
    entry_t *e = find_entry(st, name);
    if (!e) {
        pthread_rwlock_unlock(&st->lock);
        fm_version_info_t *infos = NULL;
        size_t n = 0;
        int rc = fm_registry_list(st->server->registry, name, &infos, &n, err);
        free(infos);
        if (rc) return rc;
        if (n == 0) return fm_error_set(err, FM_ENOTFOUND, "model '%s' not found", name);
        return FM_OK; /* registered but never loaded: nothing to do */
    }
    fm_served_t **versions = e->versions;
    size_t count = e->nversions;
    e->versions = NULL;
    e->nversions = e->cap = 0;
    e->wanted = 0;
    pthread_rwlock_unlock(&st->lock);
    for (size_t v = 0; v < count; v++)
        fm_served_release(versions[v]);
    free(versions);
    return FM_OK;
}

void fm_store_set_label(fm_store_t *st, const char *name, const char *label, int64_t version) {
    pthread_rwlock_wrlock(&st->lock);
    atomic_fetch_add(&st->label_generation, 1);
    entry_t *e = find_entry(st, name);
    if (e) {
        size_t i = 0;
        while (i < e->nlabels && strcmp(e->labels[i].name, label) != 0)
            i++;
        if (version <= 0) { /* removed */
            if (i < e->nlabels) e->labels[i] = e->labels[--e->nlabels];
        } else if (i < e->nlabels) {
            e->labels[i].version = version;
        } else if (e->nlabels < MAX_LABELS) {
            snprintf(e->labels[e->nlabels].name, sizeof e->labels[0].name, "%s", label);
            e->labels[e->nlabels++].version = version;
        }
    }
    pthread_rwlock_unlock(&st->lock);
}

static int64_t label_version(const entry_t *e, const char *label) {
    for (size_t i = 0; i < e->nlabels; i++)
        if (!strcmp(e->labels[i].name, label)) return e->labels[i].version;
    return 0;
}

int fm_store_acquire(fm_store_t *st, const char *name, int64_t version, const char *label,
                     fm_served_t **out, fm_error_t *err) {
    *out = NULL;
    int rc = FM_OK;
    pthread_rwlock_rdlock(&st->lock);
    entry_t *e = find_entry(st, name);
    fm_served_t *s = NULL;
    if (!e) {
        rc = fm_error_set(err, FM_ENOTFOUND, "model '%s' not found", name);
    } else if (e->nversions == 0) {
        rc = fm_error_set(err, FM_ESTATE, "model '%s' is not loaded", name);
    } else if (label) {
        int64_t v = label_version(e, label);
        s = v ? find_version(e, v) : NULL;
        if (!s)
            rc = v ? fm_error_set(err, FM_ESTATE,
                                  "model '%s' version %lld (label '%s') is not "
                                  "loaded",
                                  name, (long long)v, label)
                   : fm_error_set(err, FM_ENOTFOUND, "model '%s' has no label '%s'", name, label);
    } else if (version > 0) {
        s = find_version(e, version);
        if (!s)
            rc = fm_error_set(err, FM_ENOTFOUND, "model '%s' has no loaded version %lld", name,
                              (long long)version);
    } else {
        int64_t production = label_version(e, "production");
        s = production ? find_version(e, production) : NULL;
        if (!s) s = e->versions[e->nversions - 1];
    }
    if (s) atomic_fetch_add(&s->refs, 1);
    pthread_rwlock_unlock(&st->lock);
    *out = s;
    return rc;
}

int fm_store_index(fm_store_t *st, fm_index_entry_t **out, size_t *count, fm_error_t *err) {
    fm_version_info_t *infos = NULL;
    size_t n = 0;
    *out = NULL;
    *count = 0;
    int rc = fm_registry_list(st->server->registry, NULL, &infos, &n, err);
    if (rc) return rc;
    fm_index_entry_t *idx = calloc(n ? n : 1, sizeof *idx);
    if (!idx) {
        free(infos);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    pthread_rwlock_rdlock(&st->lock);
    for (size_t i = 0; i < n; i++) {
        snprintf(idx[i].name, sizeof idx[i].name, "%s", infos[i].name);
        idx[i].version = infos[i].version;
        snprintf(idx[i].labels, sizeof idx[i].labels, "%s", infos[i].labels);
        entry_t *e = find_entry(st, infos[i].name);
        idx[i].loaded = e && find_version(e, infos[i].version) != NULL;
    }
    pthread_rwlock_unlock(&st->lock);
    free(infos);
    *out = idx;
    *count = n;
    return FM_OK;
}

int fm_store_versions(fm_store_t *st, const char *name, int64_t **versions, size_t *count,
                      fm_error_t *err) {
    *versions = NULL;
    *count = 0;
    pthread_rwlock_rdlock(&st->lock);
    entry_t *e = find_entry(st, name);
    int rc = FM_OK;
    if (!e) {
        rc = fm_error_set(err, FM_ENOTFOUND, "model '%s' not found", name);
    } else if (e->nversions) {
        *versions = malloc(e->nversions * sizeof **versions);
        if (!*versions) {
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        } else {
            for (size_t v = 0; v < e->nversions; v++)
                (*versions)[v] = e->versions[v]->version;
            *count = e->nversions;
        }
    }
    pthread_rwlock_unlock(&st->lock);
    return rc;
}
