/*
 * Tests of encryption at rest (security/crypt.h). Round trips over the sizes around the 64 KiB
 * chunk boundary; the file layout read back by an independent reader written here with libsodium
 * directly (magic, key id as BLAKE2b-256 of the key, chunk lengths, FINAL only on the last
 * chunk); every truncation and every single-bit flip of a small file, and of the interesting
 * places of a two-chunk file, rejected with FM_EFORMAT and nothing left in the output buffer;
 * appended bytes, reordered and dropped chunks; a wrong key named as such; plaintext where
 * ciphertext is expected. Master key files: generation (mode 0600, 32 bytes, never overwritten),
 * loading, the permission, size and type checks, and FINMAAS_MASTER_KEY_FILE.
 *
 * The streaming writer and reader against the in-memory functions: what the writer produces, fed
 * in pieces of random sizes, decrypts with fm_crypt_decrypt to the same bytes and has the layout
 * of fm_crypt_encrypt's output (same length, magic and key id); what fm_crypt_encrypt produces,
 * fm_crypt_copy_out copies out exactly; plaintext passes through both without a key; damage (a
 * flipped bit anywhere past the key id, truncation around the chunk boundaries, bytes appended,
 * another key, no key) is refused by the reader whenever fm_crypt_decrypt refuses it.
 */
#include "core/buf.h"
#include "core/rng.h"
#include "security/crypt.h"
#include "fm_test.h"
#include "fm_test_fs.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK      65536
#define HEADER     40
#define OVERHEAD   17
#define LENGTH_LEN 4

static void write_file(const char *path, const void *data, size_t len, mode_t mode) {
    unlink(path);
    FILE *fp = fopen(path, "wb");
    FM_CHECK(fp != NULL);
    if (!fp) return;
    FM_CHECK(fwrite(data, 1, len, fp) == len);
    fclose(fp);
    FM_CHECK(chmod(path, mode) == 0);
}

static void random_key(fm_master_key_t *k) {
    randombytes_buf(k->key, sizeof k->key);
    unsigned char digest[32];
    crypto_generichash(digest, sizeof digest, k->key, sizeof k->key, NULL, 0);
    memcpy(k->id, digest, sizeof k->id);
}

static unsigned char *pattern(size_t len, uint32_t seed) {
    unsigned char *p = malloc(len ? len : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

static uint32_t u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * An independent reader of the layout: checks the header and every chunk with libsodium's own
 * calls and returns the plaintext length, or -1 with a reason printed.
 */
static long long reference_decrypt(const fm_master_key_t *k, const unsigned char *c, size_t len,
                                   const unsigned char *expect) {
    if (len < HEADER || memcmp(c, "FMENC1\0\0", 8) != 0 || memcmp(c + 8, k->id, 8) != 0) {
        fprintf(stderr, "  reference: bad header\n");
        return -1;
    }
    crypto_secretstream_xchacha20poly1305_state st;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&st, c + 16, k->key) != 0) return -1;
    size_t pos = HEADER, total = 0;
    unsigned char *m = malloc(CHUNK);
    for (size_t chunk = 0;; chunk++) {
        if (pos + LENGTH_LEN > len) break;
        size_t clen = u32le(c + pos);
        pos += LENGTH_LEN;
        if (clen < OVERHEAD || clen > CHUNK + OVERHEAD || pos + clen > len) break;
        unsigned long long mlen = 0;
        unsigned char tag = 0;
        if (crypto_secretstream_xchacha20poly1305_pull(&st, m, &mlen, &tag, c + pos, clen,
                                                       chunk == 0 ? c : NULL,
                                                       chunk == 0 ? 16 : 0) != 0)
            break;
        pos += clen;
        if (memcmp(m, expect + total, mlen) != 0) break;
        total += mlen;
        int last = pos == len;
        int final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
        /* Full chunks before the last, FINAL on the last only. */
        if (last != final || (!last && mlen != CHUNK)) break;
        if (last) {
            free(m);
            return (long long)total;
        }
    }
    free(m);
    fprintf(stderr, "  reference: bad chunk at offset %zu\n", pos);
    return -1;
}

static void test_round_trip(void) {
    static const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, (1 << 20) + 17};
    fm_master_key_t k;
    random_key(&k);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *plain = pattern(n, (uint32_t)i + 1);
        fm_buf_t enc = FM_BUF_INIT, dec = FM_BUF_INIT, again = FM_BUF_INIT;
        fm_error_t err;
        /* Both calls append: what was in the buffers stays in front. */
        fm_buf_puts(&enc, "abc");
        fm_buf_puts(&dec, "xy");
        FM_CHECK_INT(fm_crypt_encrypt(&k, plain, n, &enc, &err), 0);
        size_t chunks = n ? (n + CHUNK - 1) / CHUNK : 1;
        FM_CHECK_INT(enc.len, 3 + HEADER + n + chunks * (LENGTH_LEN + OVERHEAD));
        FM_CHECK(memcmp(enc.data, "abc", 3) == 0);
        const unsigned char *c = (const unsigned char *)enc.data + 3;
        size_t clen = enc.len - 3;
        FM_CHECK(fm_crypt_is_encrypted(c, clen));
        FM_CHECK_INT(reference_decrypt(&k, c, clen, plain), (long long)n);
        FM_CHECK_INT(fm_crypt_decrypt(&k, c, clen, "file", &dec, &err), 0);
        FM_CHECK_INT(dec.len, 2 + n);
        FM_CHECK(memcmp(dec.data, "xy", 2) == 0 && memcmp(dec.data + 2, plain, n) == 0);
        FM_CHECK(dec.data[dec.len] == '\0');
        /* No 16-byte window of the plaintext shows in the ciphertext. */
        if (n >= 64) FM_CHECK(memmem(c, clen, plain + n / 2, 16) == NULL);
        /* A fresh random stream header each time: the same plaintext encrypts differently. */
        FM_CHECK_INT(fm_crypt_encrypt(&k, plain, n, &again, &err), 0);
        FM_CHECK(again.len == clen && memcmp(again.data, c, clen) != 0);
        printf("  %8zu bytes -> %8zu encrypted (%zu chunks)\n", n, clen, chunks);
        fm_buf_free(&enc);
        fm_buf_free(&dec);
        fm_buf_free(&again);
        free(plain);
    }
}

/* Decrypting damaged must fail with want and leave out exactly as it was. */
static int rejects(const fm_master_key_t *k, const unsigned char *damaged, size_t len, int want,
                   const char *what, size_t where) {
    fm_buf_t out = FM_BUF_INIT;
    fm_buf_puts(&out, "kept");
    fm_error_t err;
    int rc = fm_crypt_decrypt(k, damaged, len, "f.enc", &out, &err);
    int ok = rc == want && out.len == 4 && memcmp(out.data, "kept", 5) == 0 &&
             strstr(err.msg, "f.enc") != NULL;
    if (!ok)
        fprintf(stderr, "  %s at %zu: rc %d (want %d), %zu bytes out: %s\n", what, where, rc, want,
                out.len, rc ? err.msg : "");
    fm_buf_free(&out);
    return ok;
}

static void test_truncation_and_bit_flips(void) {
    fm_master_key_t k;
    random_key(&k);
    fm_error_t err;
    /* A one-chunk file: every truncation, every bit of every byte. */
    unsigned char *plain = pattern(100, 9);
    fm_buf_t enc = FM_BUF_INIT;
    FM_CHECK_INT(fm_crypt_encrypt(&k, plain, 100, &enc, &err), 0);
    const unsigned char *c = (const unsigned char *)enc.data;
    size_t failures = 0;
    for (size_t cut = 0; cut < enc.len; cut++)
        failures += !rejects(&k, c, cut, FM_EFORMAT, "truncation", cut);
    unsigned char *copy = malloc(enc.len + CHUNK + 64);
    for (size_t i = 0; i < enc.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, c, enc.len);
            copy[i] ^= (unsigned char)(1u << bit);
            failures += !rejects(&k, copy, enc.len, FM_EFORMAT, "bit flip", i);
        }
    }
    FM_CHECK_INT(failures, 0);
    /* Bytes after the FINAL chunk, and a second copy of the only chunk. */
    memcpy(copy, c, enc.len);
    copy[enc.len] = 0;
    FM_CHECK(rejects(&k, copy, enc.len + 1, FM_EFORMAT, "one extra byte", enc.len));
    memcpy(copy + enc.len, c + HEADER, enc.len - HEADER);
    FM_CHECK(rejects(&k, copy, 2 * enc.len - HEADER, FM_EFORMAT, "repeated chunk", enc.len));
    fm_buf_t out = FM_BUF_INIT;
    copy[enc.len] = 0;
    fm_crypt_decrypt(&k, copy, enc.len + 1, "f.enc", &out, &err);
    FM_CHECK_MSG(strstr(err.msg, "after the final chunk") != NULL, "%s", err.msg);
    fm_crypt_decrypt(&k, c, enc.len - 1, "f.enc", &out, &err);
    FM_CHECK_MSG(strstr(err.msg, "truncated") != NULL, "%s", err.msg);
    fm_buf_free(&out);
    free(plain);
    free(copy);
    fm_buf_free(&enc);
}

static void test_multi_chunk_damage(void) {
    fm_master_key_t k;
    random_key(&k);
    fm_error_t err;
    size_t n = 3 * CHUNK;
    unsigned char *plain = pattern(n, 21);
    fm_buf_t enc = FM_BUF_INIT;
    FM_CHECK_INT(fm_crypt_encrypt(&k, plain, n, &enc, &err), 0);
    const unsigned char *c = (const unsigned char *)enc.data;
    size_t step = LENGTH_LEN + CHUNK + OVERHEAD;
    size_t chunk_at[3] = {HEADER, HEADER + step, HEADER + 2 * step};
    FM_CHECK_INT(enc.len, HEADER + 3 * step);
    unsigned char *copy = malloc(enc.len);
    size_t failures = 0;
    /* Cut exactly after each complete chunk (no FINAL: the dangerous case), inside each length
     * field, and at sampled places everywhere. */
    for (int i = 1; i < 3; i++) {
        failures += !rejects(&k, c, chunk_at[i], FM_EFORMAT, "cut at chunk boundary", chunk_at[i]);
        for (size_t j = 1; j < LENGTH_LEN; j++)
            failures += !rejects(&k, c, chunk_at[i] + j, FM_EFORMAT, "cut in length", j);
    }
    for (size_t cut = 0; cut < enc.len; cut += 997)
        failures += !rejects(&k, c, cut, FM_EFORMAT, "truncation", cut);
    /* Flips in every length field and the bytes around each chunk boundary, then sampled. */
    for (size_t at = 0; at < enc.len; at++) {
        int near = 0;
        for (int i = 0; i < 3; i++)
            near |= at + 8 >= chunk_at[i] && at < chunk_at[i] + LENGTH_LEN + 8;
        if (!near && at % 1009 != 0 && at < enc.len - 24) continue;
        memcpy(copy, c, enc.len);
        copy[at] ^= 0x80;
        failures += !rejects(&k, copy, enc.len, FM_EFORMAT, "bit flip", at);
    }
    /* Chunks 0 and 1 swapped (same sizes), and chunk 1 dropped. */
    memcpy(copy, c, enc.len);
    memcpy(copy + chunk_at[0], c + chunk_at[1], step);
    memcpy(copy + chunk_at[1], c + chunk_at[0], step);
    failures += !rejects(&k, copy, enc.len, FM_EFORMAT, "swapped chunks", 0);
    memcpy(copy, c, chunk_at[1]);
    memcpy(copy + chunk_at[1], c + chunk_at[2], step);
    failures += !rejects(&k, copy, enc.len - step, FM_EFORMAT, "dropped chunk", 1);
    FM_CHECK_INT(failures, 0);
    free(copy);
    free(plain);
    fm_buf_free(&enc);
}

static void test_wrong_key_and_plaintext(void) {
    fm_master_key_t a, b;
    random_key(&a);
    random_key(&b);
    fm_error_t err;
    fm_buf_t enc = FM_BUF_INIT, out = FM_BUF_INIT;
    FM_CHECK_INT(fm_crypt_encrypt(&a, "secret model", 12, &enc, &err), 0);
    FM_CHECK_INT(fm_crypt_decrypt(&b, enc.data, enc.len, "models/m/1.fmm", &out, &err), FM_EDENIED);
    FM_CHECK_MSG(strstr(err.msg, "models/m/1.fmm") && strstr(err.msg, "different master key"), "%s",
                 err.msg);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, a.id, 8);
    FM_CHECK_MSG(strstr(err.msg, hex) != NULL, "file's key id shown: %s", err.msg);
    FM_CHECK_INT(out.len, 0);
    /* Same key id with other key bytes (a forged header): authentication, not the id, decides. */
    fm_master_key_t forged = b;
    memcpy(forged.id, a.id, sizeof forged.id);
    FM_CHECK_INT(fm_crypt_decrypt(&forged, enc.data, enc.len, "f", &out, &err), FM_EFORMAT);
    FM_CHECK_INT(out.len, 0);

    /* Plaintext where an encrypted file is expected, including an almost-magic. */
    static const char *const plain[] = {"", "FMENC1", "FMENC1\0", "FMENC2\0\0 and more", "{}"};
    static const size_t lens[] = {0, 6, 7, 18, 2};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        FM_CHECK(!fm_crypt_is_encrypted(plain[i], lens[i]));
        FM_CHECK_INT(fm_crypt_decrypt(&a, plain[i], lens[i], "data.csv", &out, &err), FM_EFORMAT);
        FM_CHECK_MSG(strstr(err.msg, "data.csv: not an encrypted file"), "%s", err.msg);
    }
    FM_CHECK(!fm_crypt_is_encrypted(NULL, 0));
    FM_CHECK(fm_crypt_is_encrypted("FMENC1\0\0", 8));
    fm_buf_free(&enc);
    fm_buf_free(&out);
}

static void test_key_files(void) {
    char path[PATH_MAX], other[PATH_MAX];
    fm_error_t err;
    fm_master_key_t k, again;
    fm_test_fresh_path(path, sizeof path, "master.key");
    mode_t old_umask = umask(0);
    FM_CHECK_INT(fm_master_key_generate(path, &err), 0);
    umask(old_umask);
    struct stat st;
    FM_CHECK(stat(path, &st) == 0);
    FM_CHECK_INT(st.st_mode & 07777, 0600);
    FM_CHECK_INT(st.st_size, 32);
    FM_CHECK_INT(fm_master_key_load(path, &k, &err), 0);
    unsigned char digest[32];
    crypto_generichash(digest, sizeof digest, k.key, sizeof k.key, NULL, 0);
    FM_CHECK(memcmp(k.id, digest, 8) == 0);
    /* Never overwritten; no temporary file is left beside it. */
    FM_CHECK_INT(fm_master_key_generate(path, &err), FM_EEXIST);
    FM_CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, "already exists"), "%s", err.msg);
    FM_CHECK_INT(fm_master_key_load(path, &again, &err), 0);
    FM_CHECK(memcmp(k.key, again.key, 32) == 0);
    DIR *d = opendir(fm_test_scratch);
    struct dirent *e;
    while (d && (e = readdir(d)))
        FM_CHECK_MSG(strstr(e->d_name, ".tmp.") == NULL, "left %s", e->d_name);
    if (d) closedir(d);
    /* Two generated keys differ. */
    fm_test_fresh_path(other, sizeof other, "second.key");
    FM_CHECK_INT(fm_master_key_generate(other, &err), 0);
    FM_CHECK_INT(fm_master_key_load(other, &again, &err), 0);
    FM_CHECK(memcmp(k.key, again.key, 32) != 0 && memcmp(k.id, again.id, 8) != 0);

    /* Modes: owner-only is fine, any group or other bit is refused naming file and mode. */
    static const mode_t good[] = {0600, 0400, 0700};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        FM_CHECK(chmod(path, good[i]) == 0);
        FM_CHECK_MSG(fm_master_key_load(path, &again, &err) == 0, "mode %o: %s", good[i], err.msg);
    }
    static const mode_t bad[] = {0640, 0604, 0644, 0660, 0606, 0610, 0601};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FM_CHECK(chmod(path, bad[i]) == 0);
        FM_CHECK_INT(fm_master_key_load(path, &again, &err), FM_EDENIED);
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)bad[i]);
        FM_CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, mode), "%s", err.msg);
        FM_CHECK(sodium_is_zero(again.key, sizeof again.key));
    }
    FM_CHECK(chmod(path, 0600) == 0);

    /* A symbolic link to a good key file is followed (secret mounts are links). */
    fm_test_fresh_path(other, sizeof other, "link.key");
    FM_CHECK(symlink(path, other) == 0);
    FM_CHECK_INT(fm_master_key_load(other, &again, &err), 0);
    FM_CHECK(memcmp(k.key, again.key, 32) == 0);

    /* Wrong sizes, a directory, a missing file, a FIFO (must not block), an empty path. */
    static const size_t sizes[] = {0, 31, 33, 64};
    unsigned char bytes[64] = {1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fm_test_fresh_path(other, sizeof other, "sized.key");
        write_file(other, bytes, sizes[i], 0600);
        FM_CHECK_INT(fm_master_key_load(other, &again, &err), FM_EFORMAT);
        FM_CHECK_MSG(strstr(err.msg, other) && strstr(err.msg, "exactly 32 bytes"), "%s", err.msg);
    }
    FM_CHECK(fm_master_key_load(fm_test_scratch, &again, &err) < 0);
    FM_CHECK_MSG(strstr(err.msg, fm_test_scratch) && strstr(err.msg, "directory"), "%s", err.msg);
    fm_test_fresh_path(other, sizeof other, "missing.key");
    FM_CHECK_INT(fm_master_key_load(other, &again, &err), FM_ENOTFOUND);
    FM_CHECK_MSG(strstr(err.msg, other) != NULL, "%s", err.msg);
    fm_test_fresh_path(other, sizeof other, "fifo.key");
    FM_CHECK(mkfifo(other, 0600) == 0);
    FM_CHECK(fm_master_key_load(other, &again, &err) < 0);
    FM_CHECK_MSG(strstr(err.msg, "not a regular file") != NULL, "%s", err.msg);
    FM_CHECK_INT(fm_master_key_load("", &again, &err), FM_EINVAL);
    FM_CHECK_INT(fm_master_key_generate("", &err), FM_EINVAL);
    fm_test_fresh_path(other, sizeof other, "no-such-dir/new.key");
    FM_CHECK_INT(fm_master_key_generate(other, &err), FM_EIO);
    FM_CHECK_MSG(strstr(err.msg, other) != NULL, "%s", err.msg);

    /* FINMAAS_MASTER_KEY_FILE: unset, set, empty, pointing at a bad file. */
    int have = 7;
    unsetenv("FINMAAS_MASTER_KEY_FILE");
    FM_CHECK_INT(fm_master_key_from_env(&again, &have, &err), 0);
    FM_CHECK_INT(have, 0);
    setenv("FINMAAS_MASTER_KEY_FILE", path, 1);
    FM_CHECK_INT(fm_master_key_from_env(&again, &have, &err), 0);
    FM_CHECK_INT(have, 1);
    FM_CHECK(memcmp(k.key, again.key, 32) == 0 && memcmp(k.id, again.id, 8) == 0);
    setenv("FINMAAS_MASTER_KEY_FILE", "", 1);
    FM_CHECK_INT(fm_master_key_from_env(&again, &have, &err), FM_EINVAL);
    FM_CHECK_INT(have, 0);
    FM_CHECK(chmod(path, 0644) == 0);
    setenv("FINMAAS_MASTER_KEY_FILE", path, 1);
    FM_CHECK_INT(fm_master_key_from_env(&again, &have, &err), FM_EDENIED);
    FM_CHECK_INT(have, 0);
    FM_CHECK_MSG(strstr(err.msg, "FINMAAS_MASTER_KEY_FILE") && strstr(err.msg, "0644"), "%s",
                 err.msg);
    unsetenv("FINMAAS_MASTER_KEY_FILE");

    fm_master_key_wipe(&k);
    FM_CHECK(sodium_is_zero((const unsigned char *)&k, sizeof k));
    fm_master_key_wipe(NULL);
}

/* Writes data through the streaming writer in pieces of random stream_sizes into a memory file. */
static int seal_stream(const fm_master_key_t *key, const unsigned char *data, size_t n,
                       uint64_t seed, fm_buf_t *out) {
    char *mem = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&mem, &len);
    fm_crypt_writer_t w;
    fm_error_t err;
    int rc = fm_crypt_writer_init(&w, fp, key, &err);
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    size_t at = 0;
    while (!rc && at < n) {
        size_t k = 1 + fm_rng_next(&rng) % 150000;
        if (k > n - at) k = n - at;
        rc = fm_crypt_writer_write(&w, data + at, k, &err);
        at += k;
    }
    if (!rc) rc = fm_crypt_writer_finish(&w, &err);
    fm_crypt_writer_deinit(&w);
    fclose(fp);
    fm_buf_append(out, mem, len);
    free(mem);
    return rc;
}

/* An unlinked temporary file open for reading and writing. */
static int temp_fd(void) {
    char path[] = "/tmp/fm_crypt_stream_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}

/* fm_crypt_copy_out of a file image: FM_OK and the plaintext in out, or the error code. */
static int copy_out(const fm_master_key_t *key, const void *image, size_t n, fm_buf_t *out,
                    fm_error_t *err) {
    int in = temp_fd(), plain = temp_fd();
    if (in < 0 || plain < 0) return FM_EIO;
    if (n && write(in, image, n) != (ssize_t)n) return FM_EIO;
    lseek(in, 0, SEEK_SET);
    int rc = fm_crypt_copy_out(in, key, plain, "test file", err);
    off_t size = lseek(plain, 0, SEEK_END);
    fm_buf_reset(out);
    fm_buf_reserve(out, (size_t)size + 1);
    if (size > 0 && pread(plain, out->data, (size_t)size, 0) != size) rc = FM_EIO;
    out->len = (size_t)size;
    out->data[out->len] = '\0';
    close(in);
    close(plain);
    return rc;
}

static const size_t stream_sizes[] = {0,      1,      100,    65535,  65536,         65537,
                                      131071, 131072, 131073, 200000, 3 * 65536 + 17};

/* ---- The streaming writer and reader against the in-memory functions ----------------------- */

static void test_stream_matches_reference(void) {
    fm_master_key_t key;
    random_key(&key);
    for (size_t i = 0; i < sizeof stream_sizes / sizeof stream_sizes[0]; i++) {
        size_t n = stream_sizes[i];
        unsigned char *data = pattern(n, 100 + i);
        fm_buf_t sealed = FM_BUF_INIT, plain = FM_BUF_INIT, reference = FM_BUF_INIT;
        FM_CHECK_INT(seal_stream(&key, data, n, 7 + i, &sealed), FM_OK);
        fm_error_t err;
        FM_CHECK_MSG(fm_crypt_decrypt(&key, sealed.data, sealed.len, "s", &plain, &err) == FM_OK,
                     "size %zu: %s", n, err.msg);
        FM_CHECK_INT(plain.len, n);
        FM_CHECK(n == 0 || memcmp(plain.data, data, n) == 0);
        /* Same layout as the reference: equal length, same magic and key id. */
        FM_CHECK_INT(fm_crypt_encrypt(&key, data, n, &reference, &err), FM_OK);
        FM_CHECK_INT(sealed.len, reference.len);
        FM_CHECK(memcmp(sealed.data, reference.data, 16) == 0);
        /* And the reference's output streams back out. */
        FM_CHECK_MSG(copy_out(&key, reference.data, reference.len, &plain, &err) == FM_OK,
                     "size %zu: %s", n, err.msg);
        FM_CHECK_INT(plain.len, n);
        FM_CHECK(n == 0 || memcmp(plain.data, data, n) == 0);
        fm_buf_free(&sealed);
        fm_buf_free(&plain);
        fm_buf_free(&reference);
        free(data);
    }
}

static void test_stream_plaintext_passes_through(void) {
    for (size_t i = 0; i < sizeof stream_sizes / sizeof stream_sizes[0]; i++) {
        size_t n = stream_sizes[i];
        unsigned char *data = pattern(n, 300 + i);
        if (n >= 8) memcpy(data, "Status,S", 8); /* a CSV never starts with the magic */
        fm_buf_t sealed = FM_BUF_INIT, plain = FM_BUF_INIT;
        FM_CHECK_INT(seal_stream(NULL, data, n, 9, &sealed), FM_OK);
        FM_CHECK_INT(sealed.len, n);
        FM_CHECK(n == 0 || memcmp(sealed.data, data, n) == 0);
        fm_error_t err;
        FM_CHECK_INT(copy_out(NULL, sealed.data, sealed.len, &plain, &err), FM_OK);
        FM_CHECK_INT(plain.len, n);
        FM_CHECK(n == 0 || memcmp(plain.data, data, n) == 0);
        fm_buf_free(&sealed);
        fm_buf_free(&plain);
        free(data);
    }
}

static void test_stream_damage_is_refused(void) {
    fm_master_key_t key, other;
    random_key(&key);
    random_key(&other);
    size_t n = 3 * 65536 + 100;
    unsigned char *data = pattern(n, 55);
    fm_buf_t sealed = FM_BUF_INIT, plain = FM_BUF_INIT, copy = FM_BUF_INIT;
    FM_CHECK_INT(seal_stream(&key, data, n, 1, &sealed), FM_OK);
    fm_error_t err;
    /* Another key, and no key at all. */
    FM_CHECK_INT(copy_out(&other, sealed.data, sealed.len, &plain, &err), FM_EDENIED);
    FM_CHECK(strstr(err.msg, "different master key") != NULL);
    FM_CHECK_INT(copy_out(NULL, sealed.data, sealed.len, &plain, &err), FM_EDENIED);
    FM_CHECK(strstr(err.msg, "FINMAAS_MASTER_KEY_FILE") != NULL);
    /* A flipped bit anywhere past the key id: refused by both readers. */
    fm_rng_t rng;
    fm_rng_seed(&rng, 4);
    int refused = 0, tries = 0;
    for (size_t at = 16; at < sealed.len; at += 1 + fm_rng_next(&rng) % 9000, tries++) {
        fm_buf_reset(&copy);
        fm_buf_append(&copy, sealed.data, sealed.len);
        copy.data[at] ^= (char)(1u << (at % 8));
        int a = copy_out(&key, copy.data, copy.len, &plain, &err);
        fm_buf_t ref = FM_BUF_INIT;
        int b = fm_crypt_decrypt(&key, copy.data, copy.len, "s", &ref, NULL);
        fm_buf_free(&ref);
        refused += a == FM_EFORMAT && b != FM_OK;
    }
    FM_CHECK_INT(refused, tries);
    /* Truncated at every length around the chunk boundaries, and with bytes appended. (Cut
     * before the end of the magic, a file reads as plaintext, as in the registry; the dataset
     * store then refuses it by its digest.) */
    size_t cut[] = {
        8, 16, 39, 40, 41, 44, 100, 65536 + 40 + 4 + 17, 65536 + 40 + 4 + 17 + 3, sealed.len - 1};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        int rc = copy_out(&key, sealed.data, cut[i], &plain, &err);
        FM_CHECK_MSG(rc != FM_OK, "truncated at %zu accepted", cut[i]);
    }
    fm_buf_reset(&copy);
    fm_buf_append(&copy, sealed.data, sealed.len);
    fm_buf_append(&copy, "x", 1);
    FM_CHECK_INT(copy_out(&key, copy.data, copy.len, &plain, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "after the final chunk") != NULL);
    fm_buf_free(&sealed);
    fm_buf_free(&plain);
    fm_buf_free(&copy);
    free(data);
}

FM_TEST_MAIN(FM_TEST_CASE(test_round_trip), FM_TEST_CASE(test_truncation_and_bit_flips),
             FM_TEST_CASE(test_multi_chunk_damage), FM_TEST_CASE(test_wrong_key_and_plaintext),
             FM_TEST_CASE(test_key_files), FM_TEST_CASE(test_stream_matches_reference),
             FM_TEST_CASE(test_stream_plaintext_passes_through),
             FM_TEST_CASE(test_stream_damage_is_refused))
