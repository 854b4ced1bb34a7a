/*
 * Files: whole-file reads with a size limit, and atomic writes. An atomic write goes to a
 * temporary file in the destination's directory, is flushed and fsync'ed, then renamed over the
 * destination, so a reader sees either the old file or the complete new one, and a failure leaves
 * no partial file behind.
 */
#ifndef FM_CORE_FS_H
#define FM_CORE_FS_H

#include "core/error.h"

#include <stdio.h>

/*
 * Reads the whole of path into a new buffer (NUL-terminated; caller frees with free()). Files
 * larger than max_bytes fail with FM_ELIMIT. Errors name the path.
 */
int fm_file_read_all(const char *path, size_t max_bytes, char **out, size_t *out_len,
                     fm_error_t *err);

/* An output file that appears at its path only when committed. Plain struct. */
typedef struct fm_atomic_file {
    FILE *fp;        /* write here; owned by the fm_atomic_file_t */
    char *path;      /* destination */
    char *temp_path; /* temporary file beside it */
} fm_atomic_file_t;

/* Creates the temporary file for path (mode 0644 unless private, then 0600). */
int fm_atomic_file_open(fm_atomic_file_t *f, const char *path, int private_mode, fm_error_t *err);
/* Flushes, fsyncs and renames into place. Whatever happens the fm_atomic_file_t is released. */
int fm_atomic_file_commit(fm_atomic_file_t *f, fm_error_t *err);
/* Discards the temporary file. Safe to call on a zeroed or already released fm_atomic_file_t. */
void fm_atomic_file_abort(fm_atomic_file_t *f);

/* Writes len bytes to path atomically. */
int fm_file_write_atomic(const char *path, const void *data, size_t len, fm_error_t *err);

#endif
