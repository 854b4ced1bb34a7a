/*
 * Stored files streamed: the encrypted format of security/crypt.h written and read a chunk at a
 * time, so that a dataset of any size is encrypted or decrypted with 64 KiB of memory rather than
 * two copies of the whole file. The bytes are exactly those of fm_crypt_encrypt: "FMENC1\0\0",
 * the key id, the secretstream header, then chunks (4-byte little-endian length, ciphertext), the
 * first pushed with the 16-byte prefix as additional data, the last tagged FINAL. Without a key
 * the plain bytes are written and read as they are. Also here: the unlinked temporary files that
 * hold plaintext while it is parsed.
 */
#include "jobs/jobs_internal.h"

#include "core/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC_BYTES    8
#define KEY_ID_BYTES   8
#define PREFIX_BYTES   (MAGIC_BYTES + KEY_ID_BYTES)
#define STREAM_HEADER  crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define FILE_HEADER    (PREFIX_BYTES + STREAM_HEADER)
#define CHUNK_OVERHEAD crypto_secretstream_xchacha20poly1305_ABYTES
#define CHUNK_CIPHER   (FM_SEALED_CHUNK + CHUNK_OVERHEAD)
#define LENGTH_BYTES   4

static void put_u32le(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int write_fp(FILE *fp, const void *data, size_t n, fm_error_t *err) {
    if (n && fwrite(data, 1, n, fp) != n)
        return fm_error_set(err, FM_EIO, "cannot write a stored file: %s", strerror(errno));
    return FM_OK;
}

int fm_sealed_writer_init(fm_sealed_writer_t *w, FILE *fp, const fm_master_key_t *key,
                          fm_error_t *err) {
    memset(w, 0, sizeof *w);
    w->fp = fp;
    if (!key) return FM_OK;
    if (fm_digest_library_init() != FM_OK)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    w->encrypt = 1;
    w->key = *key;
    w->plain = malloc(FM_SEALED_CHUNK);
    w->cipher = malloc(LENGTH_BYTES + CHUNK_CIPHER);
    if (!w->plain || !w->cipher) return fm_error_set(err, FM_ENOMEM, "out of memory");
    unsigned char header[FILE_HEADER];
    memcpy(header, FM_CRYPT_MAGIC, MAGIC_BYTES);
    memcpy(header + MAGIC_BYTES, key->id, KEY_ID_BYTES);
    crypto_secretstream_xchacha20poly1305_init_push(&w->state, header + PREFIX_BYTES, key->key);
    return write_fp(fp, header, sizeof header, err);
}

/* Pushes the chunk held in w->plain with tag. */
static int push_chunk(fm_sealed_writer_t *w, unsigned char tag, fm_error_t *err) {
    unsigned char prefix[PREFIX_BYTES];
    memcpy(prefix, FM_CRYPT_MAGIC, MAGIC_BYTES);
    memcpy(prefix + MAGIC_BYTES, w->key.id, KEY_ID_BYTES);
    unsigned long long clen = 0;
    crypto_secretstream_xchacha20poly1305_push(&w->state, w->cipher + LENGTH_BYTES, &clen, w->plain,
                                               w->fill, w->chunks == 0 ? prefix : NULL,
                                               w->chunks == 0 ? PREFIX_BYTES : 0, tag);
    put_u32le(w->cipher, (uint32_t)clen);
    w->chunks++;
    sodium_memzero(w->plain, w->fill);
    w->fill = 0;
    return write_fp(w->fp, w->cipher, LENGTH_BYTES + (size_t)clen, err);
}

int fm_sealed_writer_write(fm_sealed_writer_t *w, const void *data, size_t n, fm_error_t *err) {
    if (!w->encrypt) return write_fp(w->fp, data, n, err);
    const unsigned char *p = data;
    while (n) {
        /* A full chunk is pushed only once more bytes follow: the last one must be FINAL. */
        if (w->fill == FM_SEALED_CHUNK) {
            int rc = push_chunk(w, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, err);
            if (rc) return rc;
        }
        size_t k = FM_SEALED_CHUNK - w->fill < n ? FM_SEALED_CHUNK - w->fill : n;
        memcpy(w->plain + w->fill, p, k);
        w->fill += k;
        p += k;
        n -= k;
    }
    return FM_OK;
}

int fm_sealed_writer_finish(fm_sealed_writer_t *w, fm_error_t *err) {
    if (!w->encrypt) return FM_OK;
    return push_chunk(w, crypto_secretstream_xchacha20poly1305_TAG_FINAL, err);
}

void fm_sealed_writer_deinit(fm_sealed_writer_t *w) {
    if (w->plain) sodium_memzero(w->plain, FM_SEALED_CHUNK);
    free(w->plain);
    free(w->cipher);
    sodium_memzero(&w->key, sizeof w->key);
    sodium_memzero(&w->state, sizeof w->state);
    w->plain = w->cipher = NULL;
}

/* Reads exactly n bytes; returns the count read (less at end of file) or -1 with errno. */
static ssize_t read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

static int write_fd(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Copies a plain file through. head holds its first nhead bytes, already read. */
static int copy_plain(int in_fd, const unsigned char *head, size_t nhead, int out_fd,
                      const char *what, fm_error_t *err) {
    if (write_fd(out_fd, head, nhead) != 0)
        return fm_error_set(err, FM_EIO, "%s: cannot write a temporary copy: %s", what,
                            strerror(errno));
    unsigned char *buf = malloc(FM_SEALED_CHUNK);
    if (!buf) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", what);
    int rc = FM_OK;
    for (;;) {
        ssize_t n = read_full(in_fd, buf, FM_SEALED_CHUNK);
        if (n < 0) {
            rc = fm_error_set(err, FM_EIO, "%s: read error: %s", what, strerror(errno));
            break;
        }
        if (n == 0) break;
        if (write_fd(out_fd, buf, (size_t)n) != 0) {
            rc = fm_error_set(err, FM_EIO, "%s: cannot write a temporary copy: %s", what,
                              strerror(errno));
            break;
        }
    }
    free(buf);
    return rc;
}

static int decrypt_stream(int in_fd, const unsigned char *header, const fm_master_key_t *key,
                          int out_fd, const char *what, fm_error_t *err) {
    if (sodium_memcmp(header + MAGIC_BYTES, key->id, KEY_ID_BYTES) != 0)
        return fm_error_set(err, FM_EDENIED, "%s: encrypted with a different master key", what);
    crypto_secretstream_xchacha20poly1305_state st;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&st, header + PREFIX_BYTES, key->key) != 0)
        return fm_error_set(err, FM_EFORMAT, "%s: damaged encrypted file (bad stream header)",
                            what);
    unsigned char *cipher = malloc(CHUNK_CIPHER), *plain = malloc(FM_SEALED_CHUNK);
    int rc = cipher && plain ? FM_OK : fm_error_set(err, FM_ENOMEM, "%s: out of memory", what);
    int final = 0;
    for (size_t chunk = 0; !rc && !final; chunk++) {
        unsigned char len[LENGTH_BYTES];
        ssize_t n = read_full(in_fd, len, sizeof len);
        if (n < 0) {
            rc = fm_error_set(err, FM_EIO, "%s: read error: %s", what, strerror(errno));
            break;
        }
        if (n != (ssize_t)sizeof len) {
            rc = fm_error_set(err, FM_EFORMAT,
                              "%s: truncated encrypted file (ends after %zu chunks without the "
                              "final one)",
                              what, chunk);
            break;
        }
        size_t clen = get_u32le(len);
        if (clen < CHUNK_OVERHEAD || clen > CHUNK_CIPHER) {
            rc = fm_error_set(err, FM_EFORMAT,
                              "%s: damaged encrypted file (chunk %zu has a length of %zu bytes)",
                              what, chunk, clen);
            break;
        }
        n = read_full(in_fd, cipher, clen);
        if (n != (ssize_t)clen) {
            rc = n < 0 ? fm_error_set(err, FM_EIO, "%s: read error: %s", what, strerror(errno))
                       : fm_error_set(err, FM_EFORMAT, "%s: truncated encrypted file (chunk %zu)",
                                      what, chunk);
            break;
        }
        unsigned long long mlen = 0;
        unsigned char tag = 0;
        if (crypto_secretstream_xchacha20poly1305_pull(&st, plain, &mlen, &tag, cipher, clen,
                                                       chunk == 0 ? header : NULL,
                                                       chunk == 0 ? PREFIX_BYTES : 0) != 0) {
            rc = fm_error_set(err, FM_EFORMAT,
                              "%s: damaged or tampered encrypted file (chunk %zu fails "
                              "authentication)",
                              what, chunk);
            break;
        }
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
            final = 1;
        else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
            rc = fm_error_set(err, FM_EFORMAT, "%s: damaged encrypted file (chunk %zu tag %u)",
                              what, chunk, (unsigned)tag);
        if (!rc && write_fd(out_fd, plain, (size_t)mlen) != 0)
            rc = fm_error_set(err, FM_EIO, "%s: cannot write a temporary copy: %s", what,
                              strerror(errno));
        sodium_memzero(plain, (size_t)mlen);
    }
    if (!rc) {
        unsigned char extra;
        ssize_t n = read_full(in_fd, &extra, 1);
        if (n != 0)
            rc = n < 0 ? fm_error_set(err, FM_EIO, "%s: read error: %s", what, strerror(errno))
                       : fm_error_set(err, FM_EFORMAT,
                                      "%s: damaged encrypted file (bytes after the final chunk)",
                                      what);
    }
    sodium_memzero(&st, sizeof st);
    free(cipher);
    free(plain);
    return rc;
}

int fm_sealed_copy_out(int in_fd, const fm_master_key_t *key, int out_fd, const char *what,
                       fm_error_t *err) {
    if (fm_digest_library_init() != FM_OK)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    unsigned char header[FILE_HEADER];
    ssize_t n = read_full(in_fd, header, sizeof header);
    if (n < 0) return fm_error_set(err, FM_EIO, "%s: read error: %s", what, strerror(errno));
    if (!fm_crypt_is_encrypted(header, (size_t)n))
        return copy_plain(in_fd, header, (size_t)n, out_fd, what, err);
    if (!key)
        return fm_error_set(err, FM_EDENIED,
                            "%s is encrypted: set FINMAAS_MASTER_KEY_FILE to the master key file "
                            "it was stored with",
                            what);
    if ((size_t)n < sizeof header)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: truncated encrypted file (%zd bytes, the header alone is %d)",
                            what, n, (int)FILE_HEADER);
    return decrypt_stream(in_fd, header, key, out_fd, what, err);
}

int fm_jobs_temp_fd(const char *dir, fm_error_t *err) {
    /* O_TMPFILE: the file never has a name, so nothing can be left behind, even by a crash. */
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    /* File systems without O_TMPFILE: a named file, unlinked at once. */
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (!path) {
        fm_error_set(err, FM_ENOMEM, "out of memory");
        return -1;
    }
    snprintf(path, n, "%s/.tmp.XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) {
        unlink(path);
    } else {
        fm_error_set(err, FM_EIO, "%s: cannot create a temporary file: %s", dir, strerror(errno));
    }
    free(path);
    return fd;
}

void fm_jobs_fd_path(int fd, char *out, size_t size) {
    snprintf(out, size, "/proc/self/fd/%d", fd);
}
