/*
 * Content digests: BLAKE2b-256 (libsodium's crypto_generichash), for fingerprints of training data
 * and integrity checks of model files. Incremental, so a stream can be hashed as it is read.
 */
#ifndef FM_CORE_DIGEST_H
#define FM_CORE_DIGEST_H

#include <sodium.h>
#include <stddef.h>

#define FM_DIGEST_BYTES 32
#define FM_DIGEST_HEX   (2 * FM_DIGEST_BYTES + 1)

typedef struct fm_digest {
    crypto_generichash_state state;
} fm_digest_t;

/* Initialises libsodium once; safe to call from several places. Returns 0 or FM_EUNSUPPORTED. */
int fm_digest_library_init(void);
void fm_digest_init(fm_digest_t *d);
void fm_digest_update(fm_digest_t *d, const void *data, size_t n);
/* Writes the digest as 64 lowercase hex characters plus NUL into hex. */
void fm_digest_final_hex(fm_digest_t *d, char hex[FM_DIGEST_HEX]);
/* One-shot digest of data as hex. */
void fm_digest_hex(const void *data, size_t n, char hex[FM_DIGEST_HEX]);

#endif
