/*
 * A growable byte buffer (fm_buf_t): text and JSON output, file contents. Always NUL-terminated
 * so that its data can be used as a C string. Plain struct; not thread-safe.
 */
#ifndef FM_CORE_BUF_H
#define FM_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct fm_buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, not counting the terminating NUL */
    size_t cap; /* bytes allocated */
} fm_buf_t;

#define FM_BUF_INIT                                                                                \
    { NULL, 0, 0 }

/* Makes room for at least extra more bytes. Returns 0 or FM_ENOMEM. */
int fm_buf_reserve(fm_buf_t *b, size_t extra);
/* Appends n bytes. Returns 0 or FM_ENOMEM. */
int fm_buf_append(fm_buf_t *b, const void *data, size_t n);
/* Appends a C string. Returns 0 or FM_ENOMEM. */
int fm_buf_puts(fm_buf_t *b, const char *s);
/* Appends one byte. Returns 0 or FM_ENOMEM. */
int fm_buf_putc(fm_buf_t *b, char c);
/* Appends printf-style text. Returns 0 or FM_ENOMEM. */
int fm_buf_printf(fm_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fm_buf_vprintf(fm_buf_t *b, const char *fmt, va_list ap);
/* Appends a decimal integer (no printf: this runs on hot paths). Returns 0 or FM_ENOMEM. */
int fm_buf_put_int(fm_buf_t *b, long long v);
/* Appends s (n bytes) as a quoted JSON string with escapes. Returns 0 or FM_ENOMEM. */
int fm_buf_json_string(fm_buf_t *b, const char *s, size_t n);
/* Appends a double as JSON: shortest text that reads back exactly; null for NaN/Inf. */
int fm_buf_json_number(fm_buf_t *b, double v);
/* Empties the buffer, keeping its memory. */
void fm_buf_reset(fm_buf_t *b);
/* Frees the memory; the buffer may be reused after. */
void fm_buf_free(fm_buf_t *b);
/* Hands the data to the caller (who frees it with free()) and empties the buffer. */
char *fm_buf_take(fm_buf_t *b);

#endif
