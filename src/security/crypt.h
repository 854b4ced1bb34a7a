/*
 * Encryption at rest. With a master key (FINMAAS_MASTER_KEY_FILE: exactly 32 bytes, refused when
 * the file is readable by group or others), model files and stored datasets are encrypted and
 * authenticated with libsodium's crypto_secretstream_xchacha20poly1305, in 64 KiB chunks, the
 * last one tagged FINAL, so truncation, reordering and any flipped bit are detected.
 *
 * File layout: "FMENC1\0\0" (8 bytes), key id (8 bytes: the first 8 bytes of BLAKE2b-256 of the
 * key, so a wrong key is named as such rather than reported as corruption), the secretstream
 * header (24 bytes), then the chunks (each its ciphertext with a 17-byte overhead, prefixed by a
 * 4-byte little-endian length).
 *
 * Thread-safety: fm_master_key_t is read-only after loading; a writer is used by one thread at a
 * time.
 */
#ifndef FM_SECURITY_CRYPT_H
#define FM_SECURITY_CRYPT_H

#include "core/buf.h"
#include "core/error.h"

#include <sodium.h>
#include <stddef.h>
#include <stdio.h>

#define FM_MASTER_KEY_BYTES 32
#define FM_CRYPT_MAGIC      "FMENC1\0\0"
#define FM_CRYPT_CHUNK      ((size_t)64 * 1024) /* plaintext bytes per chunk */

typedef struct fm_master_key {
    unsigned char key[FM_MASTER_KEY_BYTES];
    unsigned char id[8];
} fm_master_key_t;

/* Loads a master key file (exactly 32 bytes, mode without group/other bits). Errors name it. */
int fm_master_key_load(const char *path, fm_master_key_t *out, fm_error_t *err);
/* The key named by FINMAAS_MASTER_KEY_FILE: FM_OK and *have = 1, or *have = 0 when unset. */
int fm_master_key_from_env(fm_master_key_t *out, int *have, fm_error_t *err);
/* Writes a new random key to path (mode 0600, must not exist). */
int fm_master_key_generate(const char *path, fm_error_t *err);
void fm_master_key_wipe(fm_master_key_t *key);

/* 1 when data starts with the encrypted-file magic. */
int fm_crypt_is_encrypted(const void *data, size_t len);
/* Encrypts len bytes into out (appended). */
int fm_crypt_encrypt(const fm_master_key_t *key, const void *data, size_t len, fm_buf_t *out,
                     fm_error_t *err);
/*
 * Decrypts an encrypted file image into out (appended). FM_EDENIED for a file encrypted with
 * another key ("encrypted with a different master key"), FM_EFORMAT for a damaged or tampered
 * one. what names the file in messages.
 */
int fm_crypt_decrypt(const fm_master_key_t *key, const void *data, size_t len, const char *what,
                     fm_buf_t *out, fm_error_t *err);

/*
 * Streaming encryption, for files of any size in one chunk of memory: the plaintext is written to
 * fp as it arrives, in the format above (fm_crypt_decrypt and fm_crypt_copy_out read it back);
 * with key NULL, as it is. A full chunk is held back until the next byte arrives, so that the
 * last one can carry the FINAL tag. Plain struct: fm_crypt_writer_init (writes the header at
 * once), fm_crypt_writer_write any number of times, fm_crypt_writer_finish (pushes the last
 * chunk; the caller then commits or discards fp), and fm_crypt_writer_deinit always, also after a
 * failed init (it wipes the buffered plaintext and the stream state). fp is borrowed. Errors:
 * FM_EIO naming the write failure, FM_ENOMEM.
 */
typedef struct fm_crypt_writer {
    FILE *fp;
    int encrypt; /* 0: no key, plain bytes */
    crypto_secretstream_xchacha20poly1305_state state;
    unsigned char prefix[16]; /* magic and key id: the first chunk's additional data */
    unsigned char *plain;     /* FM_CRYPT_CHUNK bytes waiting to be pushed */
    size_t fill;
    unsigned char *cipher; /* room for one encrypted chunk */
    size_t chunks;         /* pushed so far */
} fm_crypt_writer_t;

int fm_crypt_writer_init(fm_crypt_writer_t *w, FILE *fp, const fm_master_key_t *key,
                         fm_error_t *err);
int fm_crypt_writer_write(fm_crypt_writer_t *w, const void *data, size_t n, fm_error_t *err);
int fm_crypt_writer_finish(fm_crypt_writer_t *w, fm_error_t *err);
void fm_crypt_writer_deinit(fm_crypt_writer_t *w);

/*
 * Streaming decryption: copies the plaintext of the file open on in_fd (read from its current
 * offset) to out_fd, one chunk at a time. An encrypted file is decrypted and authenticated
 * (FM_EDENIED without a key or under another key, FM_EFORMAT when damaged, truncated or
 * extended); a plain one is copied as it is. what names the file in messages. On failure out_fd
 * holds a prefix of unauthenticated plaintext that the caller must discard.
 */
int fm_crypt_copy_out(int in_fd, const fm_master_key_t *key, int out_fd, const char *what,
                      fm_error_t *err);

#endif
