/*
 * Internal to the server: the tokenised JSON used on the inference paths. jsmn (Debian's
 * libjsmn-dev, strict mode) splits a request body into tokens without allocating per value;
 * these helpers walk the tokens, compare keys, unescape strings in place in the body and parse
 * numbers with the same strict parser as CSV cells. ../shared/PERF-NOTES.md measured jsmn at
 * 2.6 us for a 950-byte body against 6.8 us for cJSON and 19.8 us for jansson.
 */
#ifndef FM_SERVER_JSONFAST_H
#define FM_SERVER_JSONFAST_H

#include "core/error.h"

#define JSMN_STATIC
#define JSMN_STRICT
/* Parent links make closing a container O(1); without them jsmn searches back through every
 * token for the open one, which is quadratic in the number of inputs. */
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include <stddef.h>
#include <string.h>

#define FM_JDOC_INLINE_TOKENS 256

typedef struct fm_jdoc {
    char *js; /* the body (borrowed, modified in place by fm_jdoc_string) */
    size_t len;
    jsmntok_t *t; /* tokens: inline or heap */
    int n;
    jsmntok_t inline_tokens[FM_JDOC_INLINE_TOKENS];
    jsmntok_t *heap;
} fm_jdoc_t;

/* Tokenises js[0..len): exactly one JSON value, an object. FM_EPARSE with a message otherwise. */
int fm_jdoc_parse(fm_jdoc_t *d, char *js, size_t len, fm_error_t *err);
void fm_jdoc_free(fm_jdoc_t *d);

/* The index of the token after a container at i (skipping its whole subtree). */
int fm_jdoc_skip_container(const fm_jdoc_t *d, int i);

/* The index of the token after the value at i (skipping its whole subtree). */
static inline int fm_jdoc_next(const fm_jdoc_t *d, int i) {
    jsmntype_t type = d->t[i].type;
    return type == JSMN_STRING || type == JSMN_PRIMITIVE ? i + 1 : fm_jdoc_skip_container(d, i);
}

/* 1 when token i is a string equal to the n bytes at key (compared raw: keys with escapes never
 * match). */
static inline int fm_jdoc_is_n(const fm_jdoc_t *d, int i, const char *key, size_t n) {
    const jsmntok_t *t = &d->t[i];
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
           memcmp(d->js + t->start, key, n) == 0;
}
/* fm_jdoc_is(d, i, "literal"): the length is known at compile time. */
#define fm_jdoc_is(d, i, literal) fm_jdoc_is_n((d), (i), (literal), sizeof(literal) - 1)
/*
 * The text of string token i, unescaped in place (the body is changed). *out points into the
 * body, *n is the length (the text is not NUL-terminated). FM_EPARSE on a bad escape.
 */
int fm_jdoc_string(fm_jdoc_t *d, int i, const char **out, size_t *n, fm_error_t *err);
/* Kinds of a primitive token. */
typedef enum {
    FM_JPRIM_NUMBER,
    FM_JPRIM_TRUE,
    FM_JPRIM_FALSE,
    FM_JPRIM_NULL,
    FM_JPRIM_BAD
} fm_jprim_t;
fm_jprim_t fm_jdoc_primitive(const fm_jdoc_t *d, int i, double *number);
/* Token i as an integer in [min, max]: 0 or -1. */
int fm_jdoc_int(const fm_jdoc_t *d, int i, long min, long max, long *out);

#endif
