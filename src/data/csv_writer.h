/*
 * Writing CSV: fields quoted only when RFC 4180 requires it (a delimiter, a quote, CR or LF, or
 * leading / trailing space), quotes doubled. Output is appended to an fm_buf_t that the caller
 * flushes in large blocks, so writing millions of cells costs no per-cell system call.
 */
#ifndef FM_DATA_CSV_WRITER_H
#define FM_DATA_CSV_WRITER_H

#include "core/buf.h"

#include <stdio.h>

/* Appends one field (n bytes at s), quoted when needed. Returns 0 or FM_ENOMEM. */
int fm_csv_write_field(fm_buf_t *out, const char *s, size_t n);

/* Appends a record: fields joined by commas, ended by "\n". Returns 0 or FM_ENOMEM. */
int fm_csv_write_record(fm_buf_t *out, char *const *fields, const size_t *lens, size_t n);

/* Writes out to fp and empties it when it holds at least threshold bytes (0: always).
 * Returns 0 or FM_EIO. */
int fm_csv_flush(fm_buf_t *out, FILE *fp, size_t threshold);

#endif
