/*
 * Encryption at rest in the registry: reading the plaintext of a version (fm_registry_read,
 * fm_registry_load_model) and rotating the master key (fm_registry_rotate_master).
 *
 * Reading takes the file as it is: an encrypted one (security/crypt.h magic) is decrypted with
 * a copy of the registry's master key, a plaintext one (stored before encryption was turned on)
 * is passed through, and in both cases the plaintext is checked against the SHA-256 recorded when
 * the version was added, so a file replaced behind the registry's back is refused rather than
 * served.
 *
 * Rotation works file by file and never needs to remember where it stopped: each file says in its
 * header which key (if any) protects it, so a file already under the new key is skipped and a
 * rerun after an interruption picks up exactly the files still to do. Each rewrite is a temporary
 * file, fsync'ed, renamed over the original, so at every moment each file is complete under one
 * of the two keys. The version list comes from the database (not a directory scan), so orphan
 * files of failed adds are left alone; <home>/datasets is scanned for *.enc files, as the
 * datasets have no rows here. Temporary files that an interrupted rotation left beside committed
 * version files are removed at the end of a run; those of versions not yet committed may belong to
 * an add in progress and are left alone.
 */
#include "registry/registry_internal.h"

#include "core/digest.h"
#include "core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the key id sits in an encrypted file: after the 8-byte magic (security/crypt.h). */
#define KEY_ID_OFFSET 8
#define KEY_ID_BYTES  8

/* Directories below <home>/datasets deeper than this are not followed (a loop guard). */
#define DATASETS_MAX_DEPTH 16

/* How messages name a version: "model 'x' version 3". */
#define LABEL_MAX (FM_REGISTRY_NAME_MAX + 48)
static void version_label(char *out, size_t size, const fm_version_info_t *info) {
    snprintf(out, size, "model '%s' version %" PRId64, info->name, info->version);
}

/* Puts out back as it was: cut back to start, or freed when it held no memory before. */
static void undo_output(fm_buf_t *out, size_t start, int was_unallocated) {
    if (was_unallocated) {
        fm_buf_free(out);
        return;
    }
    out->len = start;
    out->data[start] = '\0';
}

/* Appends the plaintext of the version file info describes to out; see fm_registry_read. */
static int read_version_plaintext(fm_registry_t *r, const fm_version_info_t *info, fm_buf_t *out,
                                  fm_error_t *err) {
    char label[LABEL_MAX];
    version_label(label, sizeof label, info);
    char *data = NULL;
    size_t len = 0;
    int rc = fm_file_read_all(info->path, FM_REGISTRY_MAX_FILE, &data, &len, err);
    if (rc) return fm_error_prefix(err, "%s: ", label);
    size_t start = out->len;
    int was_unallocated = out->data == NULL;
    if (fm_crypt_is_encrypted(data, len)) {
        fm_master_key_t key;
        if (!fm_registry_master_copy(r, &key)) {
            rc = fm_error_set(err, FM_EDENIED,
                              "%s is encrypted: set FINMAAS_MASTER_KEY_FILE to the master key "
                              "file it was stored with (%s)",
                              label, info->path);
        } else {
            char what[LABEL_MAX + sizeof info->path + 4];
            snprintf(what, sizeof what, "%s (%s)", label, info->path);
            rc = fm_crypt_decrypt(&key, data, len, what, out, err);
            fm_master_key_wipe(&key);
        }
        free(data);
    } else if (!out->data) {
        /* The common case of an empty buffer: hand it the file's memory instead of copying
         * (fm_file_read_all NUL-terminates, as fm_buf_t requires). */
        out->data = data;
        out->len = len;
        out->cap = len + 1;
    } else {
        rc = fm_buf_append(out, data, len) == FM_OK
                 ? FM_OK
                 : fm_error_set(err, FM_ENOMEM, "%s: out of memory", label);
        free(data);
    }
    if (rc) {
        undo_output(out, start, was_unallocated);
        return rc;
    }
    char hex[65];
    fm_registry_store_sha256_hex(out->data + start, out->len - start, hex);
    if (strcmp(hex, info->sha256) != 0) {
        undo_output(out, start, was_unallocated);
        return fm_error_set(err, FM_EFORMAT,
                            "%s (%s): SHA-256 of the model is %s, the registry recorded %s: the "
                            "file was replaced or damaged",
                            label, info->path, hex, info->sha256);
    }
    return FM_OK;
}

int fm_registry_read(fm_registry_t *registry, const char *name, int64_t version, fm_buf_t *out,
                     fm_error_t *err) {
    fm_version_info_t info;
    int rc = fm_registry_get(registry, name, version, &info, err);
    return rc ? rc : read_version_plaintext(registry, &info, out, err);
}

int fm_registry_load_model(fm_registry_t *registry, const fm_version_info_t *info, fm_model_t **out,
                           fm_error_t *err) {
    *out = NULL;
    fm_buf_t bytes = FM_BUF_INIT;
    int rc = read_version_plaintext(registry, info, &bytes, err);
    if (!rc) {
        char label[LABEL_MAX];
        version_label(label, sizeof label, info);
        rc = fm_model_decode(bytes.data, bytes.len, label, out, err);
    }
    fm_buf_free(&bytes);
    return rc;
}

/* ---- rotation ---- */

typedef struct rotation {
    const fm_master_key_t *old_key; /* NULL: the files are expected to be plaintext */
    const fm_master_key_t *new_key;
    size_t files; /* files looked at (present) */
    size_t rewritten;
    size_t failed;
    fm_error_t first; /* the first failure, reported at the end */
} rotation_t;

static void rotation_failed(rotation_t *rot, const fm_error_t *e) {
    if (rot->failed++ == 0) rot->first = *e;
}

/* A failure of the directory walk rather than of a file: counted as one file not rotated. */
static void walk_failed(rotation_t *rot, const fm_error_t *e) {
    rot->files++;
    rotation_failed(rot, e);
}

/* Replaces path atomically with data, keeping the original's permission bits. */
static int replace_file(const char *path, mode_t mode, const void *data, size_t len,
                        fm_error_t *err) {
    fm_atomic_file_t f;
    int rc = fm_atomic_file_open(&f, path, 1, err);
    if (rc) return rc;
    if (fchmod(fileno(f.fp), mode & 07777) != 0 || (len && fwrite(data, 1, len, f.fp) != len)) {
        int e = errno;
        fm_atomic_file_abort(&f);
        return fm_error_set(err, FM_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return fm_atomic_file_commit(&f, err);
}

/*
 * Brings one file under rot->new_key (see fm_registry_rotate_master). what names the file in
 * messages; expect_sha, when not NULL, is the recorded SHA-256 its plaintext must have.
 */
static int rotate_file(rotation_t *rot, const char *path, const char *what, const char *expect_sha,
                       fm_error_t *err) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        /* A version file deleted behind the registry's back holds nothing to protect. */
        if (errno == ENOENT) return FM_OK;
        return fm_error_set(err, FM_EIO, "%s: cannot stat: %s", what, strerror(errno));
    }
    rot->files++;
    if (!S_ISREG(st.st_mode)) return fm_error_set(err, FM_EINVAL, "%s: not a regular file", what);
    char *data = NULL;
    size_t len = 0;
    int rc = fm_file_read_all(path, FM_REGISTRY_MAX_FILE, &data, &len, err);
    if (rc) return rc;
    fm_buf_t plain = FM_BUF_INIT, sealed = FM_BUF_INIT;
    char *clear = data;
    size_t clear_len = len;
    int encrypted = fm_crypt_is_encrypted(data, len);
    if (encrypted && len >= KEY_ID_OFFSET + KEY_ID_BYTES &&
        sodium_memcmp(data + KEY_ID_OFFSET, rot->new_key->id, KEY_ID_BYTES) == 0) {
        free(data);
        return FM_OK;
    }
    if (encrypted) {
        if (!rot->old_key)
            rc = fm_error_set(err, FM_EDENIED,
                              "%s: encrypted with a master key other than the new one, and no old "
                              "key was given (set FINMAAS_MASTER_KEY_FILE to the current key)",
                              what);
        else
            rc = fm_crypt_decrypt(rot->old_key, data, len, what, &plain, err);
        clear = plain.data;
        clear_len = plain.len;
    }
    if (!rc && expect_sha) {
        char hex[65];
        fm_registry_store_sha256_hex(clear, clear_len, hex);
        if (strcmp(hex, expect_sha) != 0)
            rc = fm_error_set(err, FM_EFORMAT,
                              "%s: SHA-256 of the model is %s, the registry recorded %s: the file "
                              "was replaced or damaged, not re-encrypting it",
                              what, hex, expect_sha);
    }
    if (!rc) rc = fm_crypt_encrypt(rot->new_key, clear, clear_len, &sealed, err);
    if (!rc) rc = replace_file(path, st.st_mode, sealed.data, sealed.len, err);
    if (!rc) rot->rewritten++;
    /* Stored datasets may hold personal data: the plaintext does not outlive the rewrite. */
    if (clear && clear_len) sodium_memzero(clear, clear_len);
    free(data);
    fm_buf_free(&plain);
    fm_buf_free(&sealed);
    return rc;
}

static int has_version(const fm_version_info_t *versions, size_t n, int64_t version) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (versions[mid].version == version) return 1;
        if (versions[mid].version < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/*
 * Removes "<v>.fmm.tmp.XXXXXX" files (the atomic writer's temporaries) from the directory of one
 * model whose versions[0..n) are sorted by version, when v is one of them: a committed version's
 * file is only ever rewritten by a rotation, so such a file is the leftover of an interrupted one.
 */
static void sweep_model_temporaries(const fm_version_info_t *versions, size_t n) {
    char dir[sizeof versions->path];
    snprintf(dir, sizeof dir, "%s", versions[0].path);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = '\0';
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (name[0] < '1' || name[0] > '9') continue;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(name, &end, 10);
        if (errno || strncmp(end, ".fmm.tmp.", 9) != 0 || strlen(end + 9) != 6) continue;
        if (!has_version(versions, n, (int64_t)v)) continue;
        char path[sizeof dir + 256];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        unlink(path);
    }
    closedir(d);
}

static int ends_with(const char *text, const char *suffix) {
    size_t n = strlen(text), k = strlen(suffix);
    return n > k && strcmp(text + n - k, suffix) == 0;
}

/* Rotates every regular *.enc file below path (a buffer of cap bytes, restored on return).
 * Symbolic links are not followed: everything rotated lies inside the home. */
static void rotate_tree(rotation_t *rot, char *path, size_t cap, int depth) {
    fm_error_t e;
    DIR *d = opendir(path);
    if (!d) {
        fm_error_set(&e, FM_EIO, "%s: cannot open directory: %s", path, strerror(errno));
        walk_failed(rot, &e);
        return;
    }
    size_t base = strlen(path);
    struct dirent *entry;
    while ((entry = readdir(d))) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        int n = snprintf(path + base, cap - base, "/%s", entry->d_name);
        struct stat st;
        if (n < 0 || (size_t)n >= cap - base) {
            path[base] = '\0';
            fm_error_set(&e, FM_EINVAL, "%s/%s: path too long", path, entry->d_name);
            walk_failed(rot, &e);
            continue;
        }
        if (lstat(path, &st) != 0) {
            /* Gone since readdir: nothing to rotate. */
        } else if (S_ISDIR(st.st_mode) && depth < DATASETS_MAX_DEPTH) {
            rotate_tree(rot, path, cap, depth + 1);
        } else if (S_ISDIR(st.st_mode)) {
            fm_error_set(&e, FM_ELIMIT, "%s: more than %d directories deep, not rotated", path,
                         DATASETS_MAX_DEPTH);
            walk_failed(rot, &e);
        } else if (S_ISREG(st.st_mode) && ends_with(entry->d_name, ".enc")) {
            if (rotate_file(rot, path, path, NULL, &e)) rotation_failed(rot, &e);
        }
        path[base] = '\0';
    }
    closedir(d);
}

int fm_registry_rotate_master(fm_registry_t *registry, const fm_master_key_t *old_key,
                              const fm_master_key_t *new_key, size_t *rewritten, fm_error_t *err) {
    if (rewritten) *rewritten = 0;
    if (!new_key) return fm_error_set(err, FM_EINVAL, "no new master key given");
    if (old_key && sodium_memcmp(old_key->key, new_key->key, FM_MASTER_KEY_BYTES) == 0)
        return fm_error_set(err, FM_EINVAL, "the new master key is the same as the old one");
    if (fm_digest_library_init() != FM_OK)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    fm_version_info_t *versions = NULL;
    size_t n = 0;
    pthread_mutex_lock(&registry->lock);
    int rc = fm_registry_db_list(registry, NULL, &versions, &n, err);
    pthread_mutex_unlock(&registry->lock);
    if (rc) return rc;
    rotation_t rot;
    memset(&rot, 0, sizeof rot);
    rot.old_key = old_key;
    rot.new_key = new_key;
    for (size_t i = 0; i < n; i++) {
        char label[LABEL_MAX], what[LABEL_MAX + sizeof versions->path + 4];
        version_label(label, sizeof label, &versions[i]);
        snprintf(what, sizeof what, "%s (%s)", label, versions[i].path);
        fm_error_t e;
        if (rotate_file(&rot, versions[i].path, what, versions[i].sha256, &e))
            rotation_failed(&rot, &e);
    }
    /* The list is ordered by model, then version: one sweep per model's run of entries. */
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && !strcmp(versions[j].name, versions[i].name); j++)
            ;
        sweep_model_temporaries(versions + i, j - i);
    }
    free(versions);
    char datasets[PATH_MAX];
    struct stat st;
    int len = snprintf(datasets, sizeof datasets, "%s/datasets", registry->home);
    if (len > 0 && (size_t)len < sizeof datasets && lstat(datasets, &st) == 0 &&
        S_ISDIR(st.st_mode))
        rotate_tree(&rot, datasets, sizeof datasets, 0);
    if (rewritten) *rewritten = rot.rewritten;
    if (!rot.failed) return FM_OK;
    if (err) *err = rot.first;
    fm_error_prefix(err, "%zu of %zu files could not be re-encrypted; the first: ", rot.failed,
                    rot.files);
    return rot.first.code;
}
