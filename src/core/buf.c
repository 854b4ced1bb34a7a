/*
 * fm_buf_t: the growable byte buffer. Growth doubles capacity so appends are amortised O(1).
 */
#include "core/buf.h"
#include "core/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fm_buf_reserve(fm_buf_t *b, size_t extra) {
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return FM_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return FM_ENOMEM;
    b->data = p;
    b->cap = cap;
    return FM_OK;
}

int fm_buf_append(fm_buf_t *b, const void *data, size_t n) {
    if (fm_buf_reserve(b, n)) return FM_ENOMEM;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return FM_OK;
}

int fm_buf_puts(fm_buf_t *b, const char *s) {
    return fm_buf_append(b, s, strlen(s));
}

int fm_buf_putc(fm_buf_t *b, char c) {
    return fm_buf_append(b, &c, 1);
}

int fm_buf_vprintf(fm_buf_t *b, const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0) return FM_EINVAL;
    if ((size_t)n < sizeof small) return fm_buf_append(b, small, (size_t)n);
    if (fm_buf_reserve(b, (size_t)n)) return FM_ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return FM_OK;
}

int fm_buf_printf(fm_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = fm_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int fm_buf_put_int(fm_buf_t *b, long long v) {
    char digits[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) digits[sizeof digits - 1 - n++] = '-';
    return fm_buf_append(b, digits + sizeof digits - n, (size_t)n);
}

int fm_buf_json_string(fm_buf_t *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (fm_buf_reserve(b, n + 2)) return FM_ENOMEM;
    int rc = fm_buf_putc(b, '"');
    size_t i = 0;
    while (i < n && !rc) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t run = i;
        while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            rc = fm_buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = (unsigned char)s[i++];
        switch (c) {
        case '"':
            rc = fm_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = fm_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = fm_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = fm_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = fm_buf_append(b, "\\t", 2);
            break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = fm_buf_append(b, esc, 6);
        }
        }
    }
    return rc ? rc : fm_buf_putc(b, '"');
}

int fm_buf_json_number(fm_buf_t *b, double v) {
    if (!isfinite(v)) return fm_buf_puts(b, "null");
    if (v == (double)(long long)v && fabs(v) < 1e15) return fm_buf_printf(b, "%lld", (long long)v);
    char text[32];
    /* The shortest of %.15g / %.16g / %.17g that reads back to the same double. */
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, v);
        if (strtod(text, NULL) == v) break;
    }
    return fm_buf_puts(b, text);
}

void fm_buf_reset(fm_buf_t *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void fm_buf_free(fm_buf_t *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *fm_buf_take(fm_buf_t *b) {
    char *p = b->data;
    if (!p) p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
