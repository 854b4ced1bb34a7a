/*
 * A string dictionary (fm_strdict_t): interns strings and numbers them 0, 1, 2, ... in order of
 * first appearance, with O(1) lookup both ways. Used for the categories of a column and anywhere a
 * set of names is looked up by text. Not thread-safe for writers; concurrent fm_strdict_find()
 * calls on a dictionary nobody modifies are safe.
 */
#ifndef FM_CORE_STRDICT_H
#define FM_CORE_STRDICT_H

#include <stddef.h>
#include <stdint.h>

typedef struct fm_strdict {
    char **strings; /* owned; strings[id] is the NUL-terminated text of id */
    uint32_t *lens; /* byte length of each string */
    size_t count;   /* number of strings */
    size_t cap;     /* capacity of strings / lens */
    int32_t *slots; /* open-addressing table of ids, -1 empty */
    size_t nslots;  /* power of two */
} fm_strdict_t;

#define FM_STRDICT_INIT                                                                            \
    { NULL, NULL, 0, 0, NULL, 0 }

/* The id of s (n bytes), adding it when absent. Returns the id (>= 0) or FM_ENOMEM. */
int32_t fm_strdict_intern(fm_strdict_t *d, const char *s, size_t n);
/* The id of s (n bytes), or -1 when absent. */
int32_t fm_strdict_find(const fm_strdict_t *d, const char *s, size_t n);
/* The text of id; id must be in [0, count). */
const char *fm_strdict_get(const fm_strdict_t *d, int32_t id);
/* Frees everything; the dictionary may be reused after (it is empty). NULL-safe. */
void fm_strdict_free(fm_strdict_t *d);
/* Hash of n bytes, also used elsewhere for small tables. */
uint64_t fm_hash_bytes(const void *data, size_t n);

#endif
