/*
 * The registry's files: the home directory (created on first open, then known by its absolute
 * path), one directory per model under home/models, and one immutable file per version written
 * atomically (core/fs.h: temporary file, fsync, rename), plus the SHA-256 recorded for each file.
 * Directories are created with mode 0750: model files are a bank's intellectual property and the
 * registry's group (the service account) is the only other reader.
 */
#include "registry/registry_internal.h"

#include "core/fs.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_MODE 0750

/* mkdir that accepts an existing directory; errors name the path. */
static int make_dir(const char *path, int *created, fm_error_t *err) {
    if (created) *created = 0;
    if (mkdir(path, DIR_MODE) == 0) {
        if (created) *created = 1;
        return FM_OK;
    }
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return FM_OK;
        return fm_error_set(err, FM_EIO, "%s: exists and is not a directory", path);
    }
    return fm_error_set(err, FM_EIO, "%s: cannot create directory: %s", path, strerror(e));
}

/* mkdir -p: each parent of path, then path itself. */
static int make_dirs(const char *path, fm_error_t *err) {
    char *copy = strdup(path);
    if (!copy) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    int rc = FM_OK;
    for (char *p = copy + 1; *p && !rc; p++) {
        if (*p != '/') continue;
        *p = '\0';
        rc = make_dir(copy, NULL, err);
        *p = '/';
    }
    if (!rc) rc = make_dir(copy, NULL, err);
    free(copy);
    return rc;
}

int fm_registry_store_prepare_home(const char *home, char **abs, fm_error_t *err) {
    *abs = NULL;
    int rc = make_dirs(home, err);
    if (rc) return rc;
    char *resolved = realpath(home, NULL);
    if (!resolved)
        return fm_error_set(err, FM_EIO, "%s: cannot resolve path: %s", home, strerror(errno));
    size_t n = strlen(resolved);
    if (n > FM_REGISTRY_HOME_MAX) {
        free(resolved);
        return fm_error_set(err, FM_EINVAL, "%s: home path longer than %d bytes", home,
                            FM_REGISTRY_HOME_MAX);
    }
    char models[FM_REGISTRY_HOME_MAX + 16];
    snprintf(models, sizeof models, "%s/models", resolved);
    rc = make_dir(models, NULL, err);
    if (rc) {
        free(resolved);
        return rc;
    }
    *abs = resolved;
    return FM_OK;
}

void fm_registry_store_relative_path(char *out, size_t size, const char *name, int64_t version) {
    snprintf(out, size, "models/%s/%" PRId64 ".fmm", name, version);
}

int fm_registry_store_write(const char *home, const char *relative, const void *data, size_t len,
                            int *created_dir, fm_error_t *err) {
    *created_dir = 0;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", home, relative);
    if (n < 0 || (size_t)n >= sizeof path)
        return fm_error_set(err, FM_EINVAL, "%s/%s: path too long", home, relative);
    /* The model's directory is the path up to its last slash. */
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int rc = make_dir(path, created_dir, err);
    *slash = '/';
    if (rc) return rc;
    rc = fm_file_write_atomic(path, data, len, err);
    if (rc && *created_dir) {
        *slash = '\0';
        rmdir(path);
        *created_dir = 0;
    }
    return rc;
}

void fm_registry_store_discard(const char *home, const char *relative, int remove_dir) {
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", home, relative);
    if (n < 0 || (size_t)n >= sizeof path) return;
    unlink(path);
    if (remove_dir) {
        *strrchr(path, '/') = '\0';
        rmdir(path);
    }
}

void fm_registry_store_sha256_hex(const void *data, size_t len, char hex[65]) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data, len);
    sodium_bin2hex(hex, 65, digest, sizeof digest);
}
