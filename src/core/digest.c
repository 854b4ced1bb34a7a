/*
 * BLAKE2b-256 digests through libsodium.
 */
#include "core/digest.h"
#include "core/error.h"

int fm_digest_library_init(void) {
    return sodium_init() < 0 ? FM_EUNSUPPORTED : FM_OK;
}

void fm_digest_init(fm_digest_t *d) {
    crypto_generichash_init(&d->state, NULL, 0, FM_DIGEST_BYTES);
}

void fm_digest_update(fm_digest_t *d, const void *data, size_t n) {
    crypto_generichash_update(&d->state, data, n);
}

void fm_digest_final_hex(fm_digest_t *d, char hex[FM_DIGEST_HEX]) {
    unsigned char raw[FM_DIGEST_BYTES];
    crypto_generichash_final(&d->state, raw, sizeof raw);
    sodium_bin2hex(hex, FM_DIGEST_HEX, raw, sizeof raw);
}

void fm_digest_hex(const void *data, size_t n, char hex[FM_DIGEST_HEX]) {
    fm_digest_t d;
    fm_digest_init(&d);
    fm_digest_update(&d, data, n);
    fm_digest_final_hex(&d, hex);
}
