/*
 * The dataset store (jobs.h): uploads streamed into unlinked temporary files, parsed and profiled
 * from there, then stored under <home>/datasets as <name>.csv.enc and <name>.profile.enc
 * (encrypted when the store has a master key), CSV first and profile last, each written to a
 * temporary file beside its name, fsync'ed and renamed. The profile is the commit record: listing,
 * reading and deleting look at it alone, so a dataset appears and disappears at one rename or one
 * unlink. Loading decrypts the CSV into another unlinked temporary file and reads it through
 * /proc/self/fd, with the column types recorded in the profile, and checks the CSV's digest
 * against the profile's.
 *
 * Plaintext exists only in unlinked temporary files (no directory entry, gone when closed). The
 * store's lock covers the steps that decide what a name holds (the existence check and the
 * renames of a commit, and deletes), never the parsing or the encryption.
 */
#include "jobs/jobs_internal.h"

#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CSV_SUFFIX     ".csv.enc"
#define PROFILE_SUFFIX ".profile.enc"
#define PROFILE_MAX    ((size_t)64 << 20)
#define PATH_CAP       4200

struct fm_datasets {
    char dir[4096]; /* PATH_CAP leaves room for "/<name><suffix>" */
    int have_key;
    fm_master_key_t key;
    pthread_mutex_t lock;
};

struct fm_dataset_upload {
    fm_datasets_t *ds;
    char name[FM_REGISTRY_NAME_MAX + 1];
    int fd;
    uint64_t size;
    fm_type_overrides_t types;
    char **pii;
    size_t npii;
    int replace;
    char uploaded_by[64];
    int used; /* commit was called */
};

static void dataset_path(const fm_datasets_t *ds, const char *name, const char *suffix, char *out) {
    snprintf(out, PATH_CAP, "%s/%s%s", ds->dir, name, suffix);
}

int fm_dataset_check_name(const char *name, fm_error_t *err) {
    return fm_registry_check_name("dataset", name, err);
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Removes what interrupted writes left: the atomic writer's "<file>.tmp.XXXXXX" and the
 * fallback temporary files ".tmp.XXXXXX". */
static void sweep_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!starts_with(e->d_name, ".tmp.") && !strstr(e->d_name, ".enc.tmp.")) continue;
        char path[PATH_CAP + 256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

int fm_datasets_open(const char *home, const fm_master_key_t *key, fm_datasets_t **out,
                     fm_error_t *err) {
    *out = NULL;
    fm_datasets_t *ds = calloc(1, sizeof *ds);
    if (!ds) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int n = snprintf(ds->dir, sizeof ds->dir, "%s/datasets", home);
    if (n < 0 || (size_t)n >= sizeof ds->dir) {
        free(ds);
        return fm_error_set(err, FM_EINVAL, "%s: path too long", home);
    }
    if (mkdir(ds->dir, 0700) != 0 && errno != EEXIST) {
        int rc = fm_error_set(err, FM_EIO, "%s: cannot create: %s", ds->dir, strerror(errno));
        free(ds);
        return rc;
    }
    struct stat st;
    if (lstat(ds->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        int rc = fm_error_set(err, FM_EIO, "%s: not a directory", ds->dir);
        free(ds);
        return rc;
    }
    if (key) {
        ds->key = *key;
        ds->have_key = 1;
    }
    pthread_mutex_init(&ds->lock, NULL);
    sweep_temporaries(ds->dir);
    *out = ds;
    return FM_OK;
}

void fm_datasets_close(fm_datasets_t *ds) {
    if (!ds) return;
    fm_master_key_wipe(&ds->key);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
}

int fm_datasets_exists(fm_datasets_t *ds, const char *name) {
    if (!fm_registry_valid_name(name)) return 0;
    char path[PATH_CAP];
    dataset_path(ds, name, PROFILE_SUFFIX, path);
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The data layer names its source in messages: "/proc/self/fd/9:12:3: unterminated quote".
 * That becomes "dataset 'credit', line 12, column 3: unterminated quote".
 */
static void rename_source(fm_error_t *err, const char *path, const char *name) {
    if (!err) return;
    char *at = strstr(err->msg, path);
    if (!at) return;
    const char *rest = at + strlen(path);
    unsigned long line = 0, column = 0;
    int used = 0;
    char place[FM_REGISTRY_NAME_MAX + 64];
    if (sscanf(rest, ":%lu:%lu:%n", &line, &column, &used) == 2 && used > 0) {
        snprintf(place, sizeof place, "dataset '%s', line %lu, column %lu:", name, line, column);
    } else if (used = 0, sscanf(rest, ":%lu:%n", &line, &used) == 1 && used > 0) {
        snprintf(place, sizeof place, "dataset '%s', line %lu:", name, line);
    } else {
        snprintf(place, sizeof place, "dataset '%s'", name);
    }
    rest += used;
    char msg[FM_ERROR_MESSAGE_MAX];
    snprintf(msg, sizeof msg, "%.*s%s%s", (int)(at - err->msg), err->msg, place, rest);
    memcpy(err->msg, msg, sizeof msg);
}

/* Reads a stored file whole: decrypted with the store's key when encrypted. */
static int read_stored(fm_datasets_t *ds, const char *path, const char *what, fm_buf_t *out,
                       fm_error_t *err) {
    char *data = NULL;
    size_t len = 0;
    int rc = fm_file_read_all(path, PROFILE_MAX, &data, &len, err);
    if (rc) return rc;
    if (!fm_crypt_is_encrypted(data, len)) {
        rc = fm_buf_append(out, data, len) ? fm_error_set(err, FM_ENOMEM, "out of memory") : FM_OK;
    } else if (!ds->have_key) {
        rc = fm_error_set(err, FM_EDENIED,
                          "%s is encrypted: set FINMAAS_MASTER_KEY_FILE to the master key file it "
                          "was stored with",
                          what);
    } else {
        rc = fm_crypt_decrypt(&ds->key, data, len, what, out, err);
    }
    free(data);
    return rc;
}

int fm_datasets_get(fm_datasets_t *ds, const char *name, cJSON **profile, fm_error_t *err) {
    *profile = NULL;
    int rc = fm_dataset_check_name(name, err);
    if (rc) return rc;
    char path[PATH_CAP], what[FM_REGISTRY_NAME_MAX + 32];
    dataset_path(ds, name, PROFILE_SUFFIX, path);
    snprintf(what, sizeof what, "dataset '%s'", name);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return fm_error_set(err, FM_ENOTFOUND, "dataset '%s' not found", name);
    fm_buf_t text = FM_BUF_INIT;
    rc = read_stored(ds, path, what, &text, err);
    if (!rc) rc = fm_json_parse(text.data, text.len, what, profile, err);
    if (!rc && !cJSON_IsObject(*profile)) {
        cJSON_Delete(*profile);
        *profile = NULL;
        rc = fm_error_set(err, FM_EFORMAT, "%s: the stored profile is not a JSON object", what);
    }
    fm_buf_free(&text);
    return rc;
}

/* scandir filter: "<valid name>.profile.enc". */
static int is_profile(const struct dirent *e) {
    size_t len = strlen(e->d_name), k = strlen(PROFILE_SUFFIX);
    char name[FM_REGISTRY_NAME_MAX + 1];
    if (len <= k || len - k > FM_REGISTRY_NAME_MAX || strcmp(e->d_name + len - k, PROFILE_SUFFIX))
        return 0;
    memcpy(name, e->d_name, len - k);
    name[len - k] = '\0';
    return fm_registry_valid_name(name);
}

/* By dataset name (file names sort "a-b.profile.enc" before "a.profile.enc"). */
static int by_name(const struct dirent **a, const struct dirent **b) {
    size_t k = strlen(PROFILE_SUFFIX);
    size_t la = strlen((*a)->d_name) - k, lb = strlen((*b)->d_name) - k;
    int c = memcmp((*a)->d_name, (*b)->d_name, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

int fm_datasets_list(fm_datasets_t *ds, cJSON **out, fm_error_t *err) {
    *out = NULL;
    struct dirent **entries = NULL;
    int n = scandir(ds->dir, &entries, is_profile, by_name);
    if (n < 0) return fm_error_set(err, FM_EIO, "%s: cannot list: %s", ds->dir, strerror(errno));
    cJSON *list = cJSON_CreateArray();
    static const char *const fields[] = {"rows",        "columns",   "size", "created",
                                         "uploaded_by", "encrypted", "pii"};
    for (int i = 0; i < n; i++) {
        char name[FM_REGISTRY_NAME_MAX + 1];
        size_t len = strlen(entries[i]->d_name) - strlen(PROFILE_SUFFIX);
        memcpy(name, entries[i]->d_name, len);
        name[len] = '\0';
        free(entries[i]);
        cJSON *item = cJSON_CreateObject(), *profile = NULL;
        cJSON_AddStringToObject(item, "name", name);
        fm_error_t e;
        if (fm_datasets_get(ds, name, &profile, &e) == FM_OK) {
            for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(profile, fields[f]);
                if (v) cJSON_AddItemToObject(item, fields[f], cJSON_Duplicate(v, 1));
            }
        } else {
            cJSON_AddStringToObject(item, "error", fm_error_message(&e));
        }
        cJSON_Delete(profile);
        cJSON_AddItemToArray(list, item);
    }
    free(entries);
    *out = list;
    return FM_OK;
}

int fm_datasets_delete(fm_datasets_t *ds, const char *name, fm_error_t *err) {
    int rc = fm_dataset_check_name(name, err);
    if (rc) return rc;
    char profile[PATH_CAP], csv[PATH_CAP];
    dataset_path(ds, name, PROFILE_SUFFIX, profile);
    dataset_path(ds, name, CSV_SUFFIX, csv);
    pthread_mutex_lock(&ds->lock);
    if (unlink(profile) != 0) {
        rc = errno == ENOENT ? fm_error_set(err, FM_ENOTFOUND, "dataset '%s' not found", name)
                             : fm_error_set(err, FM_EIO, "dataset '%s': cannot delete: %s", name,
                                            strerror(errno));
    } else if (unlink(csv) != 0 && errno != ENOENT) {
        rc = fm_error_set(err, FM_EIO, "dataset '%s': cannot delete its CSV: %s", name,
                          strerror(errno));
    }
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

/* ---- uploads ----------------------------------------------------------------------------- */

int fm_dataset_upload_begin(fm_datasets_t *ds, const char *name, const fm_dataset_options_t *opts,
                            fm_dataset_upload_t **out, fm_error_t *err) {
    *out = NULL;
    int rc = fm_dataset_check_name(name, err);
    if (rc) return rc;
    if (!opts->replace && fm_datasets_exists(ds, name))
        return fm_error_set(err, FM_EEXIST,
                            "dataset '%s' already exists (delete it first, or upload with "
                            "replace=true)",
                            name);
    fm_dataset_upload_t *u = calloc(1, sizeof *u);
    if (!u) return fm_error_set(err, FM_ENOMEM, "out of memory");
    u->ds = ds;
    u->fd = -1;
    snprintf(u->name, sizeof u->name, "%s", name);
    snprintf(u->uploaded_by, sizeof u->uploaded_by, "%s",
             opts->uploaded_by ? opts->uploaded_by : "anonymous");
    u->replace = opts->replace;
    for (size_t i = 0; !rc && opts->types && i < opts->types->count; i++)
        if (fm_type_overrides_add(&u->types, opts->types->names[i], opts->types->types[i]))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc && opts->npii) {
        u->pii = calloc(opts->npii, sizeof *u->pii);
        if (!u->pii) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < opts->npii; i++, u->npii++)
            if (!(u->pii[i] = strdup(opts->pii[i])))
                rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc) {
        u->fd = fm_jobs_temp_fd(ds->dir, err);
        if (u->fd < 0) rc = err ? err->code : FM_EIO;
    }
    if (rc) {
        fm_dataset_upload_free(u);
        return rc;
    }
    *out = u;
    return FM_OK;
}

int fm_dataset_upload_write(fm_dataset_upload_t *u, const void *data, size_t n, fm_error_t *err) {
    const char *p = data;
    while (n) {
        ssize_t k = write(u->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return fm_error_set(err, FM_EIO, "dataset '%s': cannot store the upload: %s", u->name,
                                k < 0 ? strerror(errno) : "short write");
        p += k;
        n -= (size_t)k;
        u->size += (uint64_t)k;
    }
    return FM_OK;
}

uint64_t fm_dataset_upload_size(const fm_dataset_upload_t *u) {
    return u->size;
}

void fm_dataset_upload_free(fm_dataset_upload_t *u) {
    if (!u) return;
    if (u->fd >= 0) close(u->fd);
    fm_type_overrides_free(&u->types);
    for (size_t i = 0; i < u->npii; i++)
        free(u->pii[i]);
    free(u->pii);
    free(u);
}

/* Writes the plaintext held by fd (from its start) as the stored file opened in f. */
static int seal_fd(fm_datasets_t *ds, int fd, fm_atomic_file_t *f, const char *what,
                   fm_error_t *err) {
    fm_crypt_writer_t w;
    int rc = fm_crypt_writer_init(&w, f->fp, ds->have_key ? &ds->key : NULL, err);
    char *buf = rc ? NULL : malloc(FM_CRYPT_CHUNK);
    if (!rc && !buf) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    off_t at = 0;
    while (!rc) {
        ssize_t n = pread(fd, buf, FM_CRYPT_CHUNK, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = fm_error_set(err, FM_EIO, "%s: read error: %s", what, strerror(errno));
        if (n <= 0) break;
        at += n;
        rc = fm_crypt_writer_write(&w, buf, (size_t)n, err);
    }
    if (!rc) rc = fm_crypt_writer_finish(&w, err);
    if (buf) sodium_memzero(buf, FM_CRYPT_CHUNK);
    free(buf);
    fm_crypt_writer_deinit(&w);
    return rc;
}

static int seal_text(fm_datasets_t *ds, const char *text, fm_atomic_file_t *f, fm_error_t *err) {
    fm_crypt_writer_t w;
    int rc = fm_crypt_writer_init(&w, f->fp, ds->have_key ? &ds->key : NULL, err);
    if (!rc) rc = fm_crypt_writer_write(&w, text, strlen(text), err);
    if (!rc) rc = fm_crypt_writer_finish(&w, err);
    fm_crypt_writer_deinit(&w);
    return rc;
}

/* Reads the plaintext CSV on fd into a frame; messages name the dataset, not the fd. Any failure
 * of the data itself is FM_EPARSE. */
static int read_frame(int fd, const char *name, const fm_type_overrides_t *types,
                      fm_frame_t **frame, fm_error_t *err) {
    char path[64];
    fm_jobs_fd_path(fd, path, sizeof path);
    int rc = fm_frame_read_csv(path, types, frame, err);
    if (rc) {
        rename_source(err, path, name);
        if (rc != FM_ENOMEM && rc != FM_EIO) rc = FM_EPARSE;
        if (err) err->code = rc;
        return rc;
    }
    free((*frame)->source);
    size_t n = strlen(name) + 16;
    (*frame)->source = malloc(n);
    if ((*frame)->source) snprintf((*frame)->source, n, "dataset '%s'", name);
    return FM_OK;
}

int fm_dataset_upload_commit(fm_dataset_upload_t *u, cJSON **profile, fm_error_t *err) {
    *profile = NULL;
    if (u->used) return fm_error_set(err, FM_ESTATE, "dataset '%s': upload already used", u->name);
    u->used = 1;
    fm_datasets_t *ds = u->ds;
    if (u->size == 0)
        return fm_error_set(err, FM_EPARSE, "dataset '%s': the CSV is empty", u->name);
    fm_frame_t *frame = NULL;
    int rc = read_frame(u->fd, u->name, &u->types, &frame, err);
    cJSON *p = NULL;
    if (!rc) rc = fm_dataset_profile(frame, u->name, (const char *const *)u->pii, u->npii, &p, err);
    fm_frame_free(frame);
    if (rc) return rc;
    char created[32];
    fm_clock_utc_iso8601(created, sizeof created);
    cJSON_AddNumberToObject(p, "size", (double)u->size);
    cJSON_AddStringToObject(p, "created", created);
    cJSON_AddStringToObject(p, "uploaded_by", u->uploaded_by);
    cJSON_AddBoolToObject(p, "encrypted", ds->have_key);
    char *text = cJSON_PrintUnformatted(p);
    char csv_path[PATH_CAP], profile_path[PATH_CAP], what[FM_REGISTRY_NAME_MAX + 32];
    dataset_path(ds, u->name, CSV_SUFFIX, csv_path);
    dataset_path(ds, u->name, PROFILE_SUFFIX, profile_path);
    snprintf(what, sizeof what, "dataset '%s'", u->name);
    fm_atomic_file_t csv, prof;
    memset(&csv, 0, sizeof csv);
    memset(&prof, 0, sizeof prof);
    rc = text ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = fm_atomic_file_open(&csv, csv_path, 1, err);
    if (!rc) rc = seal_fd(ds, u->fd, &csv, what, err);
    if (!rc) rc = fm_atomic_file_open(&prof, profile_path, 1, err);
    if (!rc) rc = seal_text(ds, text, &prof, err);
    if (!rc) {
        pthread_mutex_lock(&ds->lock);
        if (!u->replace && fm_datasets_exists(ds, u->name))
            rc = fm_error_set(err, FM_EEXIST, "dataset '%s' already exists", u->name);
        if (!rc) rc = fm_atomic_file_commit(&csv, err);
        if (!rc) rc = fm_atomic_file_commit(&prof, err);
        pthread_mutex_unlock(&ds->lock);
    }
    fm_atomic_file_abort(&csv);
    fm_atomic_file_abort(&prof);
    free(text);
    if (rc) {
        cJSON_Delete(p);
        return rc;
    }
    *profile = p;
    return FM_OK;
}

/* ---- loading ------------------------------------------------------------------------------ */

/* The column types recorded in a profile, as overrides. */
static int schema_types(const cJSON *profile, const char *name, fm_type_overrides_t *out,
                        fm_error_t *err) {
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(profile, "schema"), *c;
    if (!cJSON_IsArray(schema))
        return fm_error_set(err, FM_EFORMAT, "dataset '%s': the profile has no schema", name);
    cJSON_ArrayForEach(c, schema) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
        fm_column_type_t type;
        if (!cJSON_IsString(n) || !cJSON_IsString(t) ||
            fm_column_type_parse(t->valuestring, &type) != FM_OK)
            return fm_error_set(err, FM_EFORMAT, "dataset '%s': bad schema entry in the profile",
                                name);
        if (fm_type_overrides_add(out, n->valuestring, type))
            return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    return FM_OK;
}

int fm_datasets_load(fm_datasets_t *ds, const char *name, fm_frame_t **frame, cJSON **profile,
                     fm_error_t *err) {
    *frame = NULL;
    if (profile) *profile = NULL;
    cJSON *p = NULL;
    int rc = fm_datasets_get(ds, name, &p, err);
    if (rc) return rc;
    char path[PATH_CAP], what[FM_REGISTRY_NAME_MAX + 32];
    dataset_path(ds, name, CSV_SUFFIX, path);
    snprintf(what, sizeof what, "dataset '%s'", name);
    fm_type_overrides_t types = {0};
    rc = schema_types(p, name, &types, err);
    int fd = -1, plain = -1;
    if (!rc) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            rc = errno == ENOENT
                     ? fm_error_set(err, FM_ENOTFOUND, "%s: its CSV is missing", what)
                     : fm_error_set(err, FM_EIO, "%s: cannot open: %s", what, strerror(errno));
    }
    unsigned char magic[8];
    if (!rc) {
        ssize_t n = pread(fd, magic, sizeof magic, 0);
        if (n == (ssize_t)sizeof magic && fm_crypt_is_encrypted(magic, sizeof magic)) {
            plain = fm_jobs_temp_fd(ds->dir, err);
            if (plain < 0) rc = err ? err->code : FM_EIO;
            if (!rc) rc = fm_crypt_copy_out(fd, ds->have_key ? &ds->key : NULL, plain, what, err);
        } else {
            plain = fd;
            fd = -1;
        }
    }
    if (!rc) rc = read_frame(plain, name, &types, frame, err);
    const cJSON *digest = cJSON_GetObjectItemCaseSensitive(p, "digest");
    if (!rc && (!cJSON_IsString(digest) || strcmp(digest->valuestring, (*frame)->digest) != 0))
        rc = fm_error_set(err, FM_EFORMAT,
                          "%s: the CSV does not match its profile (digest %s): the files were "
                          "replaced or damaged; upload it again",
                          what, (*frame)->digest);
    if (fd >= 0) close(fd);
    if (plain >= 0) close(plain);
    fm_type_overrides_free(&types);
    if (rc) {
        fm_frame_free(*frame);
        *frame = NULL;
        cJSON_Delete(p);
        return rc;
    }
    if (profile)
        *profile = p;
    else
        cJSON_Delete(p);
    return FM_OK;
}
