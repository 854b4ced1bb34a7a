/*
 * Error codes and messages: fm_strerror() and the helpers that fill an fm_error_t. The list of
 * codes lives in error.h (FM_ERROR_LIST) and generates both tables here.
 */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *fm_strerror(int code) {
    switch (code) {
#define FM_ERROR_TEXT(name, value, text)                                                           \
    case value:                                                                                    \
        return text;
        FM_ERROR_LIST(FM_ERROR_TEXT)
#undef FM_ERROR_TEXT
    }
    return "unknown error";
}

const char *fm_error_name(int code) {
    switch (code) {
#define FM_ERROR_NAME(name, value, text)                                                           \
    case value:                                                                                    \
        return #name;
        FM_ERROR_LIST(FM_ERROR_NAME)
#undef FM_ERROR_NAME
    }
    return "EUNKNOWN";
}

void fm_error_clear(fm_error_t *err) {
    if (!err) return;
    err->code = FM_OK;
    err->msg[0] = '\0';
}

int fm_error_set(fm_error_t *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* Messages are one line: a value quoted from bad input must not break that. */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return code;
}

int fm_error_prefix(fm_error_t *err, const char *fmt, ...) {
    if (!err) return FM_EINVAL;
    char prefix[FM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Keep as much of both as fits; the prefix comes first. */
    char joined[FM_ERROR_MESSAGE_MAX];
    size_t plen = strlen(prefix);
    const char *rest = fm_error_message(err);
    size_t rlen = strlen(rest);
    if (rlen > sizeof joined - 1 - plen) rlen = sizeof joined - 1 - plen;
    memcpy(joined, prefix, plen);
    memcpy(joined + plen, rest, rlen);
    joined[plen + rlen] = '\0';
    memcpy(err->msg, joined, sizeof err->msg);
    return err->code;
}

const char *fm_error_message(const fm_error_t *err) {
    if (!err) return "";
    if (err->msg[0]) return err->msg;
    return fm_strerror(err->code);
}

const char *fm_error_without_dir(const char *message, const char *dir, char *out, size_t size) {
    size_t n = dir ? strlen(dir) : 0;
    if (!message || !n || !size || !strstr(message, dir)) return message;
    size_t used = 0;
    for (const char *p = message; *p && used + 1 < size;) {
        if (!strncmp(p, dir, n)) {
            p += n;
            if (*p == '/') p++;
            continue;
        }
        out[used++] = *p++;
    }
    out[used] = '\0';
    return out;
}
