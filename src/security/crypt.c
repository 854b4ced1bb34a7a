/*
 * Encryption at rest (security/crypt.h): master key files and the encrypted file format, in
 * memory and streamed.
 *
 * A file is "FMENC1\0\0", the 8-byte key id, the 24-byte secretstream header, then chunks of at
 * most 64 KiB of plaintext, each written as a 4-byte little-endian ciphertext length followed by
 * the ciphertext (plaintext + 17 bytes). The last chunk carries the FINAL tag, so a file cut at a
 * chunk boundary is detected (no FINAL), as is anything appended after it. The first chunk is
 * pushed with the 16-byte prefix (magic and key id) as additional data, so the key id is
 * authenticated too: when the key ids differ, the first chunk is tried once more as if the file
 * carried our id, which tells a damaged key id (FM_EFORMAT) from a file that really belongs to
 * another key (FM_EDENIED). An empty plaintext is one empty FINAL chunk.
 *
 * A failed decryption leaves the output buffer as it was (the partial plaintext is zeroed and cut
 * off), so a caller can never use bytes that were not authenticated as a whole file.
 *
 * The streaming writer and reader produce and accept exactly the same bytes a chunk at a time
 * (one chunk of plaintext and one of ciphertext in memory); the in-memory and streaming code
 * share the per-chunk steps below, so the two cannot drift apart.
 *
 * Master key files are read through one open descriptor (fstat on it, so the checked file is the
 * one read), opened non-blocking so that a FIFO cannot hang the caller. A new key is written to a
 * temporary file, fsync'ed and hard-linked to its name, which fails when the name exists: a key
 * file is never overwritten and never appears half-written.
 */
#include "security/crypt.h"

#include "core/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
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
#define CHUNK_CIPHER   (FM_CRYPT_CHUNK + CHUNK_OVERHEAD)
#define LENGTH_BYTES   4
#define KEY_ENV        "FINMAAS_MASTER_KEY_FILE"

_Static_assert(sizeof(FM_CRYPT_MAGIC) - 1 == MAGIC_BYTES, "magic is 8 bytes");
_Static_assert(sizeof(((fm_crypt_writer_t *)0)->prefix) == PREFIX_BYTES, "writer prefix size");
_Static_assert(STREAM_HEADER == 24, "secretstream header is 24 bytes");
_Static_assert(CHUNK_OVERHEAD == 17, "secretstream chunk overhead is 17 bytes");
_Static_assert(crypto_secretstream_xchacha20poly1305_KEYBYTES == FM_MASTER_KEY_BYTES,
               "master key size");

static void key_id_of(const unsigned char key[FM_MASTER_KEY_BYTES], unsigned char id[8]) {
    unsigned char digest[FM_DIGEST_BYTES];
    crypto_generichash(digest, sizeof digest, key, FM_MASTER_KEY_BYTES, NULL, 0);
    memcpy(id, digest, KEY_ID_BYTES);
}

static void key_id_hex(const unsigned char id[KEY_ID_BYTES], char hex[2 * KEY_ID_BYTES + 1]) {
    sodium_bin2hex(hex, 2 * KEY_ID_BYTES + 1, id, KEY_ID_BYTES);
}

static int library_init(fm_error_t *err) {
    if (fm_digest_library_init() != FM_OK)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    return FM_OK;
}

int fm_master_key_load(const char *path, fm_master_key_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    int rc = library_init(err);
    if (rc) return rc;
    if (!path || !*path) return fm_error_set(err, FM_EINVAL, "master key file path is empty");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return fm_error_set(err, e == ENOENT ? FM_ENOTFOUND : FM_EIO,
                            "master key file %s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc =
            fm_error_set(err, FM_EIO, "master key file %s: cannot stat: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        rc = fm_error_set(err, FM_EINVAL, "master key file %s: is a directory", path);
    } else if (!S_ISREG(st.st_mode)) {
        rc = fm_error_set(err, FM_EINVAL, "master key file %s: not a regular file", path);
    } else if (st.st_mode & 077) {
        rc = fm_error_set(err, FM_EDENIED,
                          "master key file %s: mode %04o lets group or others read it "
                          "(chmod 600 %s)",
                          path, (unsigned)(st.st_mode & 07777), path);
    } else if (st.st_size != FM_MASTER_KEY_BYTES) {
        rc = fm_error_set(err, FM_EFORMAT,
                          "master key file %s: %lld bytes, a master key is exactly %d bytes", path,
                          (long long)st.st_size, FM_MASTER_KEY_BYTES);
    }
    /* One byte more than a key, so that a file that grew after the fstat is noticed. */
    unsigned char raw[FM_MASTER_KEY_BYTES + 1];
    size_t got = 0;
    while (!rc && got < sizeof raw) {
        ssize_t n = read(fd, raw + got, sizeof raw - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            rc = fm_error_set(err, FM_EIO, "master key file %s: read error: %s", path,
                              strerror(errno));
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (!rc && got != FM_MASTER_KEY_BYTES)
        rc = fm_error_set(err, FM_EFORMAT,
                          "master key file %s: changed while read (%zu bytes, expected %d)", path,
                          got, FM_MASTER_KEY_BYTES);
    if (!rc) {
        memcpy(out->key, raw, FM_MASTER_KEY_BYTES);
        key_id_of(out->key, out->id);
    }
    sodium_memzero(raw, sizeof raw);
    return rc;
}

int fm_master_key_from_env(fm_master_key_t *out, int *have, fm_error_t *err) {
    *have = 0;
    memset(out, 0, sizeof *out);
    const char *path = getenv(KEY_ENV);
    if (!path) return FM_OK;
    /* Set but empty is refused rather than read as "no key": failing closed keeps an operator who
     * meant to encrypt from silently storing plaintext. */
    if (!*path)
        return fm_error_set(err, FM_EINVAL, "%s is set but empty (unset it to store plaintext)",
                            KEY_ENV);
    int rc = fm_master_key_load(path, out, err);
    if (rc) return fm_error_prefix(err, "%s: ", KEY_ENV);
    *have = 1;
    return FM_OK;
}

static void fsync_directory_of(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

static int write_all(int fd, const unsigned char *data, size_t len) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int fm_master_key_generate(const char *path, fm_error_t *err) {
    int rc = library_init(err);
    if (rc) return rc;
    if (!path || !*path) return fm_error_set(err, FM_EINVAL, "master key file path is empty");
    struct stat st;
    if (lstat(path, &st) == 0)
        return fm_error_set(err, FM_EEXIST,
                            "master key file %s: already exists (a key file is never overwritten)",
                            path);
    size_t n = strlen(path);
    char *temp = malloc(n + 16);
    if (!temp) return fm_error_set(err, FM_ENOMEM, "master key file %s: out of memory", path);
    snprintf(temp, n + 16, "%s.tmp.XXXXXX", path);
    /* mkstemp creates the file with mode 0600 whatever the umask. */
    int fd = mkstemp(temp);
    if (fd < 0) {
        rc = fm_error_set(err, FM_EIO, "master key file %s: cannot create: %s", path,
                          strerror(errno));
        free(temp);
        return rc;
    }
    unsigned char key[FM_MASTER_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    int ok = fchmod(fd, 0600) == 0 && write_all(fd, key, sizeof key) == 0 && fsync(fd) == 0;
    int e = errno;
    sodium_memzero(key, sizeof key);
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && link(temp, path) != 0) {
        e = errno;
        rc = e == EEXIST ? fm_error_set(err, FM_EEXIST,
                                        "master key file %s: already exists (a key file is never "
                                        "overwritten)",
                                        path)
                         : fm_error_set(err, FM_EIO, "master key file %s: cannot create: %s", path,
                                        strerror(e));
    } else if (!ok) {
        rc = fm_error_set(err, FM_EIO, "master key file %s: cannot write: %s", path, strerror(e));
    }
    unlink(temp);
    free(temp);
    if (!rc) fsync_directory_of(path);
    return rc;
}

void fm_master_key_wipe(fm_master_key_t *key) {
    if (key) sodium_memzero(key, sizeof *key);
}

int fm_crypt_is_encrypted(const void *data, size_t len) {
    return data && len >= MAGIC_BYTES && memcmp(data, FM_CRYPT_MAGIC, MAGIC_BYTES) == 0;
}

static void put_u32le(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- The format, one chunk at a time: shared by the in-memory and the streaming code ------- */

/* The 16 bytes that open every file, authenticated with its first chunk: magic and key id. */
static void file_prefix(const unsigned char id[KEY_ID_BYTES], unsigned char prefix[PREFIX_BYTES]) {
    memcpy(prefix, FM_CRYPT_MAGIC, MAGIC_BYTES);
    memcpy(prefix + MAGIC_BYTES, id, KEY_ID_BYTES);
}

/* Writes a file's header (prefix and a fresh stream header) and readies st to push chunks. */
static void push_header(crypto_secretstream_xchacha20poly1305_state *st, const fm_master_key_t *key,
                        unsigned char header[FILE_HEADER]) {
    file_prefix(key->id, header);
    crypto_secretstream_xchacha20poly1305_init_push(st, header + PREFIX_BYTES, key->key);
}

/*
 * Encrypts chunk `index`, n <= FM_CRYPT_CHUNK bytes of plaintext m, into out: the 4-byte length,
 * then the ciphertext. The first chunk authenticates prefix too; the last one is tagged FINAL.
 * Returns the bytes written: LENGTH_BYTES + n + CHUNK_OVERHEAD.
 */
static size_t push_chunk(crypto_secretstream_xchacha20poly1305_state *st, unsigned char *out,
                         const unsigned char *m, size_t n, size_t index,
                         const unsigned char prefix[PREFIX_BYTES], int final) {
    unsigned long long clen = 0;
    unsigned char tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                              : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    crypto_secretstream_xchacha20poly1305_push(st, out + LENGTH_BYTES, &clen, m, n,
                                               index == 0 ? prefix : NULL,
                                               index == 0 ? PREFIX_BYTES : 0, tag);
    put_u32le(out, (uint32_t)clen);
    return LENGTH_BYTES + (size_t)clen;
}

/*
 * 1 when the first chunk of data authenticates under key with additional data made of the magic
 * and key_id: the test that tells a damaged key id from another key.
 */
static int first_chunk_opens(const fm_master_key_t *key, const unsigned char *data, size_t len) {
    if (len < FILE_HEADER + LENGTH_BYTES) return 0;
    size_t clen = get_u32le(data + FILE_HEADER);
    if (clen < CHUNK_OVERHEAD || clen > CHUNK_CIPHER || clen > len - FILE_HEADER - LENGTH_BYTES)
        return 0;
    unsigned char prefix[PREFIX_BYTES];
    file_prefix(key->id, prefix);
    crypto_secretstream_xchacha20poly1305_state st;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&st, data + PREFIX_BYTES, key->key) != 0)
        return 0;
    unsigned char *plain = malloc(clen - CHUNK_OVERHEAD + 1);
    if (!plain) return 0;
    unsigned long long mlen = 0;
    unsigned char tag = 0;
    int ok = crypto_secretstream_xchacha20poly1305_pull(&st, plain, &mlen, &tag,
                                                        data + FILE_HEADER + LENGTH_BYTES, clen,
                                                        prefix, PREFIX_BYTES) == 0;
    sodium_memzero(plain, clen - CHUNK_OVERHEAD);
    free(plain);
    sodium_memzero(&st, sizeof st);
    return ok;
}

/*
 * Checks the header of an encrypted file (in: the first len bytes of it, at least the magic) and
 * readies st to pull its chunks. When the key ids differ and the first chunk is among the len
 * bytes, it is tried under our id, to tell a damaged key id (FM_EFORMAT) from another key
 * (FM_EDENIED).
 */
static int pull_header(crypto_secretstream_xchacha20poly1305_state *st, const fm_master_key_t *key,
                       const unsigned char *in, size_t len, const char *what, fm_error_t *err) {
    if (len < FILE_HEADER)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: truncated encrypted file (%zu bytes, the header alone is %d)",
                            what, len, (int)FILE_HEADER);
    if (sodium_memcmp(in + MAGIC_BYTES, key->id, KEY_ID_BYTES) != 0) {
        if (first_chunk_opens(key, in, len))
            return fm_error_set(err, FM_EFORMAT, "%s: damaged encrypted file (key id altered)",
                                what);
        char file_id[2 * KEY_ID_BYTES + 1], our_id[2 * KEY_ID_BYTES + 1];
        key_id_hex(in + MAGIC_BYTES, file_id);
        key_id_hex(key->id, our_id);
        return fm_error_set(err, FM_EDENIED,
                            "%s: encrypted with a different master key (its key id is %s, this "
                            "master key's is %s)",
                            what, file_id, our_id);
    }
    if (crypto_secretstream_xchacha20poly1305_init_pull(st, in + PREFIX_BYTES, key->key) != 0)
        return fm_error_set(err, FM_EFORMAT, "%s: damaged encrypted file (bad stream header)",
                            what);
    return FM_OK;
}

/* FM_EFORMAT unless clen, the stated ciphertext length of chunk `index`, is one a chunk has. */
static int check_chunk_length(size_t clen, size_t index, const char *what, fm_error_t *err) {
    if (clen >= CHUNK_OVERHEAD && clen <= CHUNK_CIPHER) return FM_OK;
    return fm_error_set(err, FM_EFORMAT,
                        "%s: damaged encrypted file (chunk %zu has a length of %zu bytes)", what,
                        index, clen);
}

/*
 * Decrypts and authenticates chunk `index` (ciphertext c of clen bytes) into m, which has room
 * for clen - CHUNK_OVERHEAD bytes: *mlen is what it wrote there, *final is 1 for the last chunk.
 * prefix (the file's first 16 bytes) is the first chunk's additional data.
 */
static int pull_chunk(crypto_secretstream_xchacha20poly1305_state *st, unsigned char *m,
                      size_t *mlen, int *final, const unsigned char *c, size_t clen, size_t index,
                      const unsigned char prefix[PREFIX_BYTES], const char *what, fm_error_t *err) {
    unsigned long long n = 0;
    unsigned char tag = 0;
    *mlen = 0;
    *final = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(st, m, &n, &tag, c, clen,
                                                   index == 0 ? prefix : NULL,
                                                   index == 0 ? PREFIX_BYTES : 0) != 0)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: damaged or tampered encrypted file (chunk %zu fails "
                            "authentication)",
                            what, index);
    *mlen = (size_t)n;
    *final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    if (!*final && tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        return fm_error_set(err, FM_EFORMAT, "%s: damaged encrypted file (chunk %zu tag %u)", what,
                            index, (unsigned)tag);
    return FM_OK;
}

/* ---- Whole files in memory ---------------------------------------------------------------- */

int fm_crypt_encrypt(const fm_master_key_t *key, const void *data, size_t len, fm_buf_t *out,
                     fm_error_t *err) {
    int rc = library_init(err);
    if (rc) return rc;
    /* Half the address space bounds the plaintext, so the sizes below cannot overflow. */
    if (len > SIZE_MAX / 2)
        return fm_error_set(err, FM_ELIMIT, "cannot encrypt %zu bytes: too large", len);
    size_t chunks = len ? (len + FM_CRYPT_CHUNK - 1) / FM_CRYPT_CHUNK : 1;
    size_t total = FILE_HEADER + len + chunks * (LENGTH_BYTES + CHUNK_OVERHEAD);
    if (fm_buf_reserve(out, total) != FM_OK)
        return fm_error_set(err, FM_ENOMEM, "out of memory encrypting %zu bytes", len);
    unsigned char *p = (unsigned char *)out->data + out->len;
    crypto_secretstream_xchacha20poly1305_state st;
    push_header(&st, key, p);
    unsigned char *w = p + FILE_HEADER;
    const unsigned char *m = data;
    for (size_t i = 0; i < chunks; i++) {
        size_t n =
            len - i * FM_CRYPT_CHUNK < FM_CRYPT_CHUNK ? len - i * FM_CRYPT_CHUNK : FM_CRYPT_CHUNK;
        w += push_chunk(&st, w, m, n, i, p, i + 1 == chunks);
        m += n;
    }
    sodium_memzero(&st, sizeof st);
    out->len += total;
    out->data[out->len] = '\0';
    return FM_OK;
}

/* The bytes appended to out since start are discarded: zeroed, then cut off. */
static void discard_output(fm_buf_t *out, size_t start) {
    if (!out->data) return;
    sodium_memzero(out->data + start, out->len - start);
    out->len = start;
    out->data[start] = '\0';
}

int fm_crypt_decrypt(const fm_master_key_t *key, const void *data, size_t len, const char *what,
                     fm_buf_t *out, fm_error_t *err) {
    int rc = library_init(err);
    if (rc) return rc;
    if (!what) what = "encrypted file";
    const unsigned char *in = data;
    if (!fm_crypt_is_encrypted(data, len))
        return fm_error_set(err, FM_EFORMAT, "%s: not an encrypted file (no FMENC1 header)", what);
    crypto_secretstream_xchacha20poly1305_state st;
    if ((rc = pull_header(&st, key, in, len, what, err))) return rc;
    /* The plaintext is shorter than the file: one reservation, no growth while decrypting. */
    if (fm_buf_reserve(out, len) != FM_OK) {
        sodium_memzero(&st, sizeof st);
        return fm_error_set(err, FM_ENOMEM, "%s: out of memory decrypting %zu bytes", what, len);
    }
    size_t start = out->len, pos = FILE_HEADER;
    int final = 0;
    for (size_t chunk = 0; !rc && !final; chunk++) {
        if (pos == len) {
            rc = fm_error_set(err, FM_EFORMAT,
                              "%s: truncated encrypted file (ends after %zu chunks without the "
                              "final one)",
                              what, chunk);
            break;
        }
        if (len - pos < LENGTH_BYTES) {
            rc = fm_error_set(err, FM_EFORMAT, "%s: truncated encrypted file (chunk %zu length)",
                              what, chunk);
            break;
        }
        size_t clen = get_u32le(in + pos);
        pos += LENGTH_BYTES;
        if ((rc = check_chunk_length(clen, chunk, what, err))) break;
        if (clen > len - pos) {
            rc = fm_error_set(err, FM_EFORMAT,
                              "%s: truncated encrypted file (chunk %zu needs %zu bytes, %zu left)",
                              what, chunk, clen, len - pos);
            break;
        }
        size_t mlen = 0;
        rc = pull_chunk(&st, (unsigned char *)out->data + out->len, &mlen, &final, in + pos, clen,
                        chunk, in, what, err);
        out->len += mlen;
        pos += clen;
    }
    if (!rc && pos != len)
        rc = fm_error_set(err, FM_EFORMAT,
                          "%s: damaged encrypted file (%zu bytes after the final chunk)", what,
                          len - pos);
    sodium_memzero(&st, sizeof st);
    if (rc) {
        discard_output(out, start);
        return rc;
    }
    out->data[out->len] = '\0';
    return FM_OK;
}

/* ---- Streams ------------------------------------------------------------------------------ */

static int write_fp(FILE *fp, const void *data, size_t n, fm_error_t *err) {
    if (n && fwrite(data, 1, n, fp) != n)
        return fm_error_set(err, FM_EIO, "cannot write a stored file: %s", strerror(errno));
    return FM_OK;
}

int fm_crypt_writer_init(fm_crypt_writer_t *w, FILE *fp, const fm_master_key_t *key,
                         fm_error_t *err) {
    memset(w, 0, sizeof *w);
    w->fp = fp;
    if (!key) return FM_OK;
    int rc = library_init(err);
    if (rc) return rc;
    w->encrypt = 1;
    w->plain = malloc(FM_CRYPT_CHUNK);
    w->cipher = malloc(LENGTH_BYTES + CHUNK_CIPHER);
    if (!w->plain || !w->cipher) return fm_error_set(err, FM_ENOMEM, "out of memory");
    unsigned char header[FILE_HEADER];
    push_header(&w->state, key, header);
    memcpy(w->prefix, header, PREFIX_BYTES);
    return write_fp(fp, header, sizeof header, err);
}

/* Pushes the chunk held in w->plain, the last one when final. */
static int writer_push(fm_crypt_writer_t *w, int final, fm_error_t *err) {
    size_t n = push_chunk(&w->state, w->cipher, w->plain, w->fill, w->chunks, w->prefix, final);
    w->chunks++;
    sodium_memzero(w->plain, w->fill);
    w->fill = 0;
    return write_fp(w->fp, w->cipher, n, err);
}

int fm_crypt_writer_write(fm_crypt_writer_t *w, const void *data, size_t n, fm_error_t *err) {
    if (!w->encrypt) return write_fp(w->fp, data, n, err);
    const unsigned char *p = data;
    while (n) {
        /* A full chunk is pushed only once more bytes follow: the last one must be FINAL. */
        if (w->fill == FM_CRYPT_CHUNK) {
            int rc = writer_push(w, 0, err);
            if (rc) return rc;
        }
        size_t k = FM_CRYPT_CHUNK - w->fill < n ? FM_CRYPT_CHUNK - w->fill : n;
        memcpy(w->plain + w->fill, p, k);
        w->fill += k;
        p += k;
        n -= k;
    }
    return FM_OK;
}

int fm_crypt_writer_finish(fm_crypt_writer_t *w, fm_error_t *err) {
    if (!w->encrypt) return FM_OK;
    return writer_push(w, 1, err);
}

void fm_crypt_writer_deinit(fm_crypt_writer_t *w) {
    if (w->plain) sodium_memzero(w->plain, FM_CRYPT_CHUNK);
    free(w->plain);
    free(w->cipher);
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

/* Copies a plain file through. head holds its first nhead bytes, already read. */
static int copy_plain(int in_fd, const unsigned char *head, size_t nhead, int out_fd,
                      const char *what, fm_error_t *err) {
    if (write_all(out_fd, head, nhead) != 0)
        return fm_error_set(err, FM_EIO, "%s: cannot write a temporary copy: %s", what,
                            strerror(errno));
    unsigned char *buf = malloc(FM_CRYPT_CHUNK);
    if (!buf) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", what);
    int rc = FM_OK;
    for (;;) {
        ssize_t n = read_full(in_fd, buf, FM_CRYPT_CHUNK);
        if (n < 0) {
            rc = fm_error_set(err, FM_EIO, "%s: read error: %s", what, strerror(errno));
            break;
        }
        if (n == 0) break;
        if (write_all(out_fd, buf, (size_t)n) != 0) {
            rc = fm_error_set(err, FM_EIO, "%s: cannot write a temporary copy: %s", what,
                              strerror(errno));
            break;
        }
    }
    free(buf);
    return rc;
}

/* Decrypts the chunks that follow header (already read and checked into st) from in_fd. */
static int copy_chunks(crypto_secretstream_xchacha20poly1305_state *st, int in_fd,
                       const unsigned char *header, int out_fd, const char *what, fm_error_t *err) {
    unsigned char *cipher = malloc(CHUNK_CIPHER), *plain = malloc(FM_CRYPT_CHUNK);
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
        if ((rc = check_chunk_length(clen, chunk, what, err))) break;
        n = read_full(in_fd, cipher, clen);
        if (n != (ssize_t)clen) {
            rc = n < 0 ? fm_error_set(err, FM_EIO, "%s: read error: %s", what, strerror(errno))
                       : fm_error_set(err, FM_EFORMAT, "%s: truncated encrypted file (chunk %zu)",
                                      what, chunk);
            break;
        }
        size_t mlen = 0;
        rc = pull_chunk(st, plain, &mlen, &final, cipher, clen, chunk, header, what, err);
        if (!rc && write_all(out_fd, plain, mlen) != 0)
            rc = fm_error_set(err, FM_EIO, "%s: cannot write a temporary copy: %s", what,
                              strerror(errno));
        sodium_memzero(plain, mlen);
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
    free(cipher);
    free(plain);
    return rc;
}

int fm_crypt_copy_out(int in_fd, const fm_master_key_t *key, int out_fd, const char *what,
                      fm_error_t *err) {
    int rc = library_init(err);
    if (rc) return rc;
    unsigned char header[FILE_HEADER];
    ssize_t n = read_full(in_fd, header, sizeof header);
    if (n < 0) return fm_error_set(err, FM_EIO, "%s: read error: %s", what, strerror(errno));
    if (!fm_crypt_is_encrypted(header, (size_t)n))
        return copy_plain(in_fd, header, (size_t)n, out_fd, what, err);
    if (!key)
        return fm_error_set(err, FM_EDENIED,
                            "%s is encrypted: set " KEY_ENV " to the master key file it was "
                            "stored with",
                            what);
    crypto_secretstream_xchacha20poly1305_state st;
    rc = pull_header(&st, key, header, (size_t)n, what, err);
    if (!rc) rc = copy_chunks(&st, in_fd, header, out_fd, what, err);
    sodium_memzero(&st, sizeof st);
    return rc;
}
