/*
 * Tokenised JSON for the inference paths (see jsonfast.h).
 */
#include "server/jsonfast.h"
#include "data/data.h"

#include <stdlib.h>
#include <string.h>

int fm_jdoc_parse(fm_jdoc_t *d, char *js, size_t len, fm_error_t *err) {
    d->js = js;
    d->len = len;
    d->heap = NULL;
    d->t = d->inline_tokens;
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, js, len, d->t, FM_JDOC_INLINE_TOKENS);
    if (n == JSMN_ERROR_NOMEM) {
        jsmn_init(&p);
        int count = jsmn_parse(&p, js, len, NULL, 0);
        if (count > 0) {
            d->heap = malloc((size_t)count * sizeof *d->heap);
            if (!d->heap) return fm_error_set(err, FM_ENOMEM, "out of memory");
            d->t = d->heap;
            jsmn_init(&p);
            n = jsmn_parse(&p, js, len, d->t, (unsigned)count);
        } else {
            n = count;
        }
    }
    if (n == JSMN_ERROR_PART) return fm_error_set(err, FM_EPARSE, "invalid JSON: truncated body");
    if (n < 0) return fm_error_set(err, FM_EPARSE, "invalid JSON at byte %u", p.pos);
    if (n == 0 || d->t[0].type != JSMN_OBJECT)
        return fm_error_set(err, FM_EPARSE, "invalid JSON: the body must be a JSON object");
    /* One value only: nothing but white space after the top-level object. */
    for (size_t i = (size_t)d->t[0].end; i < len; i++)
        if (js[i] != ' ' && js[i] != '\n' && js[i] != '\r' && js[i] != '\t')
            return fm_error_set(err, FM_EPARSE, "invalid JSON: text after the object at byte %zu",
                                i);
    d->n = n;
    return FM_OK;
}

void fm_jdoc_free(fm_jdoc_t *d) {
    free(d->heap);
    d->heap = NULL;
}

int fm_jdoc_skip_container(const fm_jdoc_t *d, int i) {
    int end = d->t[i].end, j = i + 1;
    while (j < d->n && d->t[j].start < end)
        j++;
    return j;
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int fm_jdoc_string(fm_jdoc_t *d, int i, const char **out, size_t *n, fm_error_t *err) {
    jsmntok_t *t = &d->t[i];
    char *s = d->js + t->start;
    size_t len = (size_t)(t->end - t->start);
    char *bs = memchr(s, '\\', len);
    if (!bs) {
        *out = s;
        *n = len;
        return FM_OK;
    }
    /* Unescape in place: the result is never longer than the escaped text. */
    char *o = bs;
    const char *p = bs, *end = s + len;
    while (p < end) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        if (p + 1 >= end) return fm_error_set(err, FM_EPARSE, "invalid JSON string escape");
        char c = p[1];
        p += 2;
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '/':
            *o++ = '/';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (end - p < 4 || hex4(p, &cp))
                return fm_error_set(err, FM_EPARSE, "invalid \\u escape in JSON string");
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xdc00 ||
                    lo >= 0xe000)
                    return fm_error_set(err, FM_EPARSE, "unpaired surrogate in JSON string");
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                return fm_error_set(err, FM_EPARSE, "unpaired surrogate in JSON string");
            }
            o += put_utf8(o, cp);
            break;
        }
        default:
            return fm_error_set(err, FM_EPARSE, "invalid JSON string escape '\\%c'", c);
        }
    }
    /* Leave the token pointing at the unescaped text, so a second read is a no-op. */
    t->end = (int)(o - d->js);
    *out = s;
    *n = (size_t)(o - s);
    return FM_OK;
}

fm_jprim_t fm_jdoc_primitive(const fm_jdoc_t *d, int i, double *number) {
    const jsmntok_t *t = &d->t[i];
    if (t->type != JSMN_PRIMITIVE) return FM_JPRIM_BAD;
    const char *s = d->js + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (n == 4 && !memcmp(s, "true", 4)) return FM_JPRIM_TRUE;
    if (n == 5 && !memcmp(s, "false", 5)) return FM_JPRIM_FALSE;
    if (n == 4 && !memcmp(s, "null", 4)) return FM_JPRIM_NULL;
    return fm_value_parse_number(s, n, number) == FM_OK ? FM_JPRIM_NUMBER : FM_JPRIM_BAD;
}

int fm_jdoc_int(const fm_jdoc_t *d, int i, long min, long max, long *out) {
    double v;
    if (fm_jdoc_primitive(d, i, &v) != FM_JPRIM_NUMBER) return -1;
    if (v != (double)(long)v || v < (double)min || v > (double)max) return -1;
    *out = (long)v;
    return 0;
}
