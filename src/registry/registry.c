/*
 * The model registry's public calls (registry/registry.h): name checks, the handle and its mutex,
 * and the order of an add. An add validates the bytes (fm_model_decode) and hashes them before
 * taking any lock; then, inside one BEGIN IMMEDIATE transaction, it takes the next version
 * number, writes the file to its final path atomically and inserts the rows. If anything after
 * the file write fails, the transaction is rolled back and the file removed again, so the
 * registry is left as it was. Holding SQLite's write lock across the file write is what makes the
 * number and the file belong together: no other thread or process can take the same number.
 *
 * With a master key set, the validated plaintext is hashed and described, then encrypted, and the
 * ciphertext is what is written. The key is copied out under the mutex and wiped after use, so
 * encrypting a large model never holds the registry's lock.
 */
#include "registry/registry_internal.h"

#include "core/clock.h"
#include "core/digest.h"
#include "core/fs.h"
#include "model/model.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int fm_registry_valid_name(const char *text) {
    if (!text || !*text || text[0] == '.' || text[0] == '-') return 0;
    size_t n = 0;
    for (const char *p = text; *p; p++, n++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok || n >= FM_REGISTRY_NAME_MAX) return 0;
    }
    return 1;
}

/* The text is shown with escapes, so control bytes cannot break a log line. */
int fm_registry_check_name(const char *what, const char *text, fm_error_t *err) {
    if (fm_registry_valid_name(text)) return FM_OK;
    if (!text) return fm_error_set(err, FM_EINVAL, "%s name is missing", what);
    char shown[3 * FM_REGISTRY_NAME_MAX + 8];
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && k + 8 < sizeof shown; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\')
            shown[k++] = (char)*p;
        else
            k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", *p);
    }
    shown[k] = '\0';
    const char *tail = strlen(text) > FM_REGISTRY_NAME_MAX ? "..." : "";
    return fm_error_set(err, FM_EINVAL,
                        "invalid %s name '%s%s': use 1 to %d characters from A-Z a-z 0-9 _ . -, "
                        "not starting with '.' or '-'",
                        what, shown, tail, FM_REGISTRY_NAME_MAX);
}

int fm_registry_open(const char *home, fm_registry_t **out, fm_error_t *err) {
    *out = NULL;
    if (!home || !*home) return fm_error_set(err, FM_EINVAL, "registry home directory is empty");
    if (fm_digest_library_init() != 0)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    fm_registry_t *r = calloc(1, sizeof *r);
    if (!r) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", home);
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return fm_error_set(err, FM_ENOMEM, "%s: cannot create the registry lock", home);
    }
    int rc = fm_registry_store_prepare_home(home, &r->home, err);
    if (!rc) {
        size_t n = strlen(r->home) + sizeof "/registry.db";
        if (!(r->db_path = malloc(n)))
            rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", home);
        else
            snprintf(r->db_path, n, "%s/registry.db", r->home);
    }
    if (!rc) rc = fm_registry_db_open(r, err);
    if (rc) {
        fm_registry_close(r);
        return rc;
    }
    *out = r;
    return FM_OK;
}

void fm_registry_close(fm_registry_t *registry) {
    if (!registry) return;
    fm_master_key_wipe(&registry->master);
    fm_registry_db_close(registry);
    pthread_mutex_destroy(&registry->lock);
    free(registry->db_path);
    free(registry->home);
    free(registry);
}

const char *fm_registry_home(const fm_registry_t *registry) {
    return registry->home;
}

int fm_registry_set_master_key(fm_registry_t *registry, const fm_master_key_t *key) {
    pthread_mutex_lock(&registry->lock);
    if (key) {
        registry->master = *key;
        registry->has_master = 1;
    } else {
        fm_master_key_wipe(&registry->master);
        registry->has_master = 0;
    }
    pthread_mutex_unlock(&registry->lock);
    return FM_OK;
}

int fm_registry_master_copy(fm_registry_t *r, fm_master_key_t *out) {
    pthread_mutex_lock(&r->lock);
    int have = r->has_master;
    if (have)
        *out = r->master;
    else
        memset(out, 0, sizeof *out);
    pthread_mutex_unlock(&r->lock);
    return have;
}

/* An uploader id: what a key id or "cli" looks like, so nothing else reaches the audit trail. */
static int check_uploader(const char *text, fm_error_t *err) {
    size_t n = text ? strlen(text) : 0;
    int ok = n >= 1 && n < sizeof(((fm_version_info_t *)0)->uploaded_by);
    for (size_t i = 0; ok && i < n; i++) {
        char c = text[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    }
    if (ok) return FM_OK;
    return fm_error_set(err, FM_EINVAL,
                        "invalid uploader id: use 1 to 15 characters from A-Z a-z 0-9 _ . - (an "
                        "API key id, or \"cli\")");
}

/*
 * Decodes the bytes to prove they are a complete model and fills the parts of info that come
 * from them (task, family, size, sha256). source names the bytes in the decoder's messages.
 */
static int describe_bytes(const char *source, const void *data, size_t len, fm_version_info_t *info,
                          fm_error_t *err) {
    fm_model_t *model = NULL;
    fm_error_t e;
    fm_error_clear(&e);
    int rc = fm_model_decode(data, len, source, &model, &e);
    if (rc) return fm_error_set(err, rc == FM_ENOMEM ? FM_ENOMEM : FM_EFORMAT, "%s", e.msg);
    const char *task = fm_task_name(model->task);
    size_t family_len = strlen(model->family);
    if (family_len == 0 || family_len >= sizeof info->family) {
        fm_model_free(model);
        return fm_error_set(err, FM_EFORMAT, "model file %s: family name of %zu bytes (1 to %zu)",
                            source, family_len, sizeof info->family - 1);
    }
    snprintf(info->task, sizeof info->task, "%s", task);
    snprintf(info->family, sizeof info->family, "%s", model->family);
    fm_model_free(model);
    info->size = (int64_t)len;
    fm_registry_store_sha256_hex(data, len, info->sha256);
    return FM_OK;
}

/* Steps of an add that need the lock: number, file, rows, commit. */
static int add_locked(fm_registry_t *r, fm_version_info_t *info, const void *data, size_t len,
                      fm_error_t *err) {
    char relative[FM_REGISTRY_NAME_MAX + 48];
    int written = 0, created_dir = 0;
    int rc = fm_registry_db_begin(r, err);
    if (rc) return rc;
    rc = fm_registry_db_next_version(r, info->name, &info->version, err);
    if (!rc) {
        fm_registry_store_relative_path(relative, sizeof relative, info->name, info->version);
        rc = fm_registry_store_write(r->home, relative, data, len, &created_dir, err);
        written = rc == FM_OK;
    }
    if (!rc) rc = fm_registry_db_insert_version(r, info, relative, err);
    if (!rc) rc = fm_registry_db_commit(r, err);
    if (rc) {
        fm_registry_db_rollback(r);
        if (written) fm_registry_store_discard(r->home, relative, created_dir);
        return fm_error_prefix(err, "model '%s': ", info->name);
    }
    snprintf(info->path, sizeof info->path, "%s/%s", r->home, relative);
    return FM_OK;
}

static int add_bytes(fm_registry_t *r, const char *name, const char *source, const void *data,
                     size_t len, const char *uploaded_by, int64_t *version, fm_error_t *err) {
    *version = 0;
    int rc = fm_registry_check_name("model", name, err);
    if (!rc) rc = check_uploader(uploaded_by, err);
    if (rc) return rc;
    fm_version_info_t info;
    memset(&info, 0, sizeof info);
    snprintf(info.name, sizeof info.name, "%s", name);
    snprintf(info.uploaded_by, sizeof info.uploaded_by, "%s", uploaded_by);
    rc = describe_bytes(source, data, len, &info, err);
    if (rc) return rc;
    fm_clock_utc_iso8601(info.created, sizeof info.created);
    fm_buf_t encrypted = FM_BUF_INIT;
    fm_master_key_t key;
    if (fm_registry_master_copy(r, &key)) {
        rc = fm_crypt_encrypt(&key, data, len, &encrypted, err);
        fm_master_key_wipe(&key);
        if (rc) return fm_error_prefix(err, "model '%s': ", name);
        data = encrypted.data;
        len = encrypted.len;
    }
    pthread_mutex_lock(&r->lock);
    rc = add_locked(r, &info, data, len, err);
    pthread_mutex_unlock(&r->lock);
    fm_buf_free(&encrypted);
    if (!rc) *version = info.version;
    return rc;
}

int fm_registry_add_as(fm_registry_t *registry, const char *name, const void *data, size_t len,
                       const char *uploaded_by, int64_t *version, fm_error_t *err) {
    char source[FM_REGISTRY_NAME_MAX + 32];
    snprintf(source, sizeof source, "upload for model '%s'",
             fm_registry_valid_name(name) ? name : "?");
    return add_bytes(registry, name, source, data, len, uploaded_by, version, err);
}

int fm_registry_add(fm_registry_t *registry, const char *name, const void *data, size_t len,
                    int64_t *version, fm_error_t *err) {
    return fm_registry_add_as(registry, name, data, len, "cli", version, err);
}

int fm_registry_add_file(fm_registry_t *registry, const char *name, const char *path,
                         int64_t *version, fm_error_t *err) {
    *version = 0;
    int rc = fm_registry_check_name("model", name, err);
    if (rc) return rc;
    char *data = NULL;
    size_t len = 0;
    rc = fm_file_read_all(path, FM_SAFETENSORS_MAX_FILE, &data, &len, err);
    if (rc) return rc;
    rc = add_bytes(registry, name, path, data, len, "cli", version, err);
    free(data);
    return rc;
}

int fm_registry_list(fm_registry_t *registry, const char *name, fm_version_info_t **out,
                     size_t *count, fm_error_t *err) {
    *out = NULL;
    *count = 0;
    int rc = name ? fm_registry_check_name("model", name, err) : FM_OK;
    if (rc) return rc;
    pthread_mutex_lock(&registry->lock);
    rc = fm_registry_db_list(registry, name, out, count, err);
    pthread_mutex_unlock(&registry->lock);
    return rc;
}

int fm_registry_models(fm_registry_t *registry, char ***names, size_t *count, fm_error_t *err) {
    *names = NULL;
    *count = 0;
    pthread_mutex_lock(&registry->lock);
    int rc = fm_registry_db_models(registry, names, count, err);
    pthread_mutex_unlock(&registry->lock);
    return rc;
}

/* FM_ENOTFOUND for a model or version that is absent: says which of the two is missing. */
static int not_found(fm_registry_t *r, const char *name, int64_t version, fm_error_t *err) {
    int exists = 0;
    int rc = fm_registry_db_model_exists(r, name, &exists, err);
    if (rc) return rc;
    if (!exists) return fm_error_set(err, FM_ENOTFOUND, "no model '%s' in the registry", name);
    return fm_error_set(err, FM_ENOTFOUND, "model '%s' has no version %" PRId64, name, version);
}

int fm_registry_get(fm_registry_t *registry, const char *name, int64_t version,
                    fm_version_info_t *out, fm_error_t *err) {
    int rc = fm_registry_check_name("model", name, err);
    if (rc) return rc;
    int found = 0;
    pthread_mutex_lock(&registry->lock);
    rc = fm_registry_db_get(registry, name, version, out, &found, err);
    if (!rc && !found) rc = not_found(registry, name, version, err);
    pthread_mutex_unlock(&registry->lock);
    return rc;
}

int fm_registry_set_label(fm_registry_t *registry, const char *name, const char *label,
                          int64_t version, fm_error_t *err) {
    int rc = fm_registry_check_name("model", name, err);
    if (!rc) rc = fm_registry_check_name("label", label, err);
    if (rc) return rc;
    char updated[32];
    fm_clock_utc_iso8601(updated, sizeof updated);
    fm_version_info_t info;
    int found = 0;
    pthread_mutex_lock(&registry->lock);
    /* The check and the write in one transaction, so the version cannot vanish in between (and a
     * clear message beats the foreign key's "constraint failed"). */
    rc = fm_registry_db_begin(registry, err);
    if (!rc) rc = fm_registry_db_get(registry, name, version, &info, &found, err);
    if (!rc && !found) rc = not_found(registry, name, version, err);
    if (!rc) rc = fm_registry_db_set_label(registry, name, label, version, updated, err);
    if (!rc) rc = fm_registry_db_commit(registry, err);
    if (rc) fm_registry_db_rollback(registry);
    pthread_mutex_unlock(&registry->lock);
    return rc;
}

int fm_registry_remove_label(fm_registry_t *registry, const char *name, const char *label,
                             fm_error_t *err) {
    int rc = fm_registry_check_name("model", name, err);
    if (!rc) rc = fm_registry_check_name("label", label, err);
    if (rc) return rc;
    int removed = 0;
    pthread_mutex_lock(&registry->lock);
    rc = fm_registry_db_remove_label(registry, name, label, &removed, err);
    pthread_mutex_unlock(&registry->lock);
    if (!rc && !removed)
        rc = fm_error_set(err, FM_ENOTFOUND, "model '%s' has no label '%s'", name, label);
    return rc;
}

int fm_registry_resolve(fm_registry_t *registry, const char *name, const char *label,
                        int64_t *version, fm_error_t *err) {
    *version = 0;
    int rc = fm_registry_check_name("model", name, err);
    if (!rc && label) rc = fm_registry_check_name("label", label, err);
    if (rc) return rc;
    int found = 0, exists = 0;
    pthread_mutex_lock(&registry->lock);
    rc = fm_registry_db_label_version(registry, name, label ? label : "production", version, &found,
                                      err);
    if (!rc && !found && !label) rc = fm_registry_db_newest(registry, name, version, &found, err);
    if (!rc && !found) rc = fm_registry_db_model_exists(registry, name, &exists, err);
    pthread_mutex_unlock(&registry->lock);
    if (rc || found) return rc;
    *version = 0;
    if (!exists) return fm_error_set(err, FM_ENOTFOUND, "no model '%s' in the registry", name);
    if (!label) return fm_error_set(err, FM_ENOTFOUND, "model '%s' has no versions", name);
    return fm_error_set(err, FM_ENOTFOUND, "model '%s' has no label '%s'", name, label);
}
