/*
 * CSV output with minimal RFC 4180 quoting, buffered in an fm_buf_t.
 */
#include "data/csv_writer.h"
#include "core/error.h"

#include <string.h>

static int needs_quotes(const char *s, size_t n) {
    if (n == 0) return 0;
    if (s[0] == ' ' || s[n - 1] == ' ') return 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r') return 1;
    return 0;
}

int fm_csv_write_field(fm_buf_t *out, const char *s, size_t n) {
    if (!needs_quotes(s, n)) return fm_buf_append(out, s, n);
    int rc = fm_buf_putc(out, '"');
    for (size_t i = 0; i < n && !rc; i++) {
        if (s[i] == '"') rc = fm_buf_putc(out, '"');
        if (!rc) rc = fm_buf_putc(out, s[i]);
    }
    return rc ? rc : fm_buf_putc(out, '"');
}

int fm_csv_write_record(fm_buf_t *out, char *const *fields, const size_t *lens, size_t n) {
    int rc = FM_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = fm_buf_putc(out, ',');
        if (!rc) rc = fm_csv_write_field(out, fields[i], lens ? lens[i] : strlen(fields[i]));
    }
    return rc ? rc : fm_buf_putc(out, '\n');
}

int fm_csv_flush(fm_buf_t *out, FILE *fp, size_t threshold) {
    if (out->len < threshold || out->len == 0) return FM_OK;
    size_t n = fwrite(out->data, 1, out->len, fp);
    int ok = n == out->len;
    fm_buf_reset(out);
    return ok ? FM_OK : FM_EIO;
}
