/*
 * The unlinked temporary files that hold plaintext while it is parsed: an upload before it is
 * committed, a stored dataset decrypted for reading. They have no name (O_TMPFILE, or a name
 * removed at once), so nothing is left behind, even by a crash, and the data layer opens them by
 * their /proc/self/fd path.
 */
#include "jobs/jobs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fm_jobs_temp_fd(const char *dir, fm_error_t *err) {
    /* O_TMPFILE: the file never has a name, so nothing can be left behind, even by a crash. */
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    /* File systems without O_TMPFILE: a named file, unlinked at once. */
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (!path) {
        fm_error_set(err, FM_ENOMEM, "out of memory");
        return -1;
    }
    snprintf(path, n, "%s/.tmp.XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) {
        unlink(path);
    } else {
        fm_error_set(err, FM_EIO, "%s: cannot create a temporary file: %s", dir, strerror(errno));
    }
    free(path);
    return fd;
}

void fm_jobs_fd_path(int fd, char *out, size_t size) {
    snprintf(out, size, "/proc/self/fd/%d", fd);
}
