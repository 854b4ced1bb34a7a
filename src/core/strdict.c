/*
 * fm_strdict_t: string interning with an open-addressing (linear probing) table of ids. The table
 * is kept at most half full.
 */
#include "core/strdict.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

uint64_t fm_hash_bytes(const void *data, size_t n) {
    /* FNV-1a with a final avalanche (splitmix64 finaliser) so low bits are well mixed. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

static int grow_table(fm_strdict_t *d) {
    size_t nslots = d->nslots ? d->nslots * 2 : 16;
    int32_t *slots = malloc(nslots * sizeof *slots);
    if (!slots) return FM_ENOMEM;
    memset(slots, 0xff, nslots * sizeof *slots);
    for (size_t id = 0; id < d->count; id++) {
        size_t i = fm_hash_bytes(d->strings[id], d->lens[id]) & (nslots - 1);
        while (slots[i] >= 0)
            i = (i + 1) & (nslots - 1);
        slots[i] = (int32_t)id;
    }
    free(d->slots);
    d->slots = slots;
    d->nslots = nslots;
    return FM_OK;
}

int32_t fm_strdict_find(const fm_strdict_t *d, const char *s, size_t n) {
    if (!d->nslots) return -1;
    size_t i = fm_hash_bytes(s, n) & (d->nslots - 1);
    for (;;) {
        int32_t id = d->slots[i];
        if (id < 0) return -1;
        if (d->lens[id] == n && memcmp(d->strings[id], s, n) == 0) return id;
        i = (i + 1) & (d->nslots - 1);
    }
}

int32_t fm_strdict_intern(fm_strdict_t *d, const char *s, size_t n) {
    int32_t found = fm_strdict_find(d, s, n);
    if (found >= 0) return found;
    if (n > UINT32_MAX || d->count >= INT32_MAX) return FM_ENOMEM;
    if ((d->count + 1) * 2 > d->nslots && grow_table(d)) return FM_ENOMEM;
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        char **strings = realloc(d->strings, cap * sizeof *strings);
        if (!strings) return FM_ENOMEM;
        d->strings = strings;
        uint32_t *lens = realloc(d->lens, cap * sizeof *lens);
        if (!lens) return FM_ENOMEM;
        d->lens = lens;
        d->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy) return FM_ENOMEM;
    memcpy(copy, s, n);
    copy[n] = '\0';
    int32_t id = (int32_t)d->count++;
    d->strings[id] = copy;
    d->lens[id] = (uint32_t)n;
    size_t i = fm_hash_bytes(s, n) & (d->nslots - 1);
    while (d->slots[i] >= 0)
        i = (i + 1) & (d->nslots - 1);
    d->slots[i] = id;
    return id;
}

const char *fm_strdict_get(const fm_strdict_t *d, int32_t id) {
    return d->strings[id];
}

void fm_strdict_free(fm_strdict_t *d) {
    if (!d) return;
    for (size_t i = 0; i < d->count; i++)
        free(d->strings[i]);
    free(d->strings);
    free(d->lens);
    free(d->slots);
    memset(d, 0, sizeof *d);
}
