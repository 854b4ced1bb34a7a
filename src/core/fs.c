/*
 * Whole-file reads and atomic writes (temporary file + fsync + rename + directory fsync).
 */
#define _POSIX_C_SOURCE 200809L
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fm_file_read_all(const char *path, size_t max_bytes, char **out, size_t *out_len,
                     fm_error_t *err) {
    *out = NULL;
    *out_len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return fm_error_set(err, FM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp);
        return fm_error_set(err, FM_EIO, "%s: is a directory", path);
    }
    size_t cap = 1 << 16, len = 0;
    char *data = malloc(cap);
    if (!data) {
        fclose(fp);
        return fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max_bytes + 1) break;
            char *p = realloc(data, cap * 2);
            if (!p) {
                free(data);
                fclose(fp);
                return fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
            }
            data = p;
            cap *= 2;
        }
        size_t n = fread(data + len, 1, cap - len - 1, fp);
        len += n;
        if (len > max_bytes) {
            free(data);
            fclose(fp);
            return fm_error_set(err, FM_ELIMIT, "%s: larger than the limit of %zu bytes", path,
                                max_bytes);
        }
        if (n == 0) break;
    }
    int failed = ferror(fp);
    fclose(fp);
    if (failed) {
        free(data);
        return fm_error_set(err, FM_EIO, "%s: read error", path);
    }
    data[len] = '\0';
    *out = data;
    *out_len = len;
    return FM_OK;
}

static void fsync_directory_of(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int fm_atomic_file_open(fm_atomic_file_t *f, const char *path, int private_mode, fm_error_t *err) {
    memset(f, 0, sizeof *f);
    size_t n = strlen(path);
    f->path = strdup(path);
    f->temp_path = malloc(n + 16);
    if (!f->path || !f->temp_path) {
        fm_atomic_file_abort(f);
        return fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    }
    snprintf(f->temp_path, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(f->temp_path);
    if (fd < 0) {
        int e = errno;
        free(f->temp_path);
        f->temp_path = NULL;
        fm_atomic_file_abort(f);
        return fm_error_set(err, FM_EIO, "%s: cannot create: %s", path, strerror(e));
    }
    fchmod(fd, private_mode ? 0600 : 0644);
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        close(fd);
        fm_atomic_file_abort(f);
        return fm_error_set(err, FM_EIO, "%s: cannot open for writing", path);
    }
    return FM_OK;
}

int fm_atomic_file_commit(fm_atomic_file_t *f, fm_error_t *err) {
    int ok = f->fp && fflush(f->fp) == 0 && !ferror(f->fp) && fsync(fileno(f->fp)) == 0;
    int e = errno;
    if (f->fp) {
        if (fclose(f->fp) != 0) ok = 0;
        f->fp = NULL;
    }
    if (ok && rename(f->temp_path, f->path) != 0) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        int rc = fm_error_set(err, FM_EIO, "%s: cannot write: %s", f->path, strerror(e));
        fm_atomic_file_abort(f);
        return rc;
    }
    fsync_directory_of(f->path);
    free(f->temp_path);
    free(f->path);
    f->temp_path = f->path = NULL;
    return FM_OK;
}

void fm_atomic_file_abort(fm_atomic_file_t *f) {
    if (f->fp) fclose(f->fp);
    if (f->temp_path) unlink(f->temp_path);
    free(f->temp_path);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int fm_file_write_atomic(const char *path, const void *data, size_t len, fm_error_t *err) {
    fm_atomic_file_t f;
    int rc = fm_atomic_file_open(&f, path, 0, err);
    if (rc) return rc;
    if (len && fwrite(data, 1, len, f.fp) != len) {
        fm_atomic_file_abort(&f);
        return fm_error_set(err, FM_EIO, "%s: write failed", path);
    }
    return fm_atomic_file_commit(&f, err);
}
