/*
 * Tests of the streamed stored-file format (jobs/sealed.c) against security/crypt.c, the
 * reference implementation of the same format: what the streaming writer produces, fed in pieces
 * of random sizes, decrypts with fm_crypt_decrypt to the same bytes, and is byte for byte what
 * fm_crypt_encrypt writes apart from the random stream header and the ciphertext it keys; what
 * fm_crypt_encrypt produces, the streaming reader copies out exactly. Sizes around the 64 KiB
 * chunk boundary, empty input, plaintext files passed through, and damage: a flipped bit in every
 * region, truncation at every chunk boundary and inside chunks, bytes appended, another key, no
 * key. Nothing may be accepted that fm_crypt_decrypt refuses.
 */
#include "core/buf.h"
#include "core/rng.h"
#include "jobs/jobs_internal.h"
#include "fm_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static fm_master_key_t key_from(unsigned char seed) {
    fm_master_key_t k;
    memset(&k, 0, sizeof k);
    for (int i = 0; i < FM_MASTER_KEY_BYTES; i++)
        k.key[i] = (unsigned char)(seed * 31 + i);
    unsigned char digest[32];
    crypto_generichash(digest, sizeof digest, k.key, sizeof k.key, NULL, 0);
    memcpy(k.id, digest, sizeof k.id);
    return k;
}

static unsigned char *random_bytes(size_t n, uint64_t seed) {
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    unsigned char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)fm_rng_next(&rng);
    return p;
}

/* Writes data through the streaming writer in pieces of random sizes into a memory file. */
static int seal_stream(const fm_master_key_t *key, const unsigned char *data, size_t n,
                       uint64_t seed, fm_buf_t *out) {
    char *mem = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&mem, &len);
    fm_sealed_writer_t w;
    fm_error_t err;
    int rc = fm_sealed_writer_init(&w, fp, key, &err);
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    size_t at = 0;
    while (!rc && at < n) {
        size_t k = 1 + fm_rng_next(&rng) % 150000;
        if (k > n - at) k = n - at;
        rc = fm_sealed_writer_write(&w, data + at, k, &err);
        at += k;
    }
    if (!rc) rc = fm_sealed_writer_finish(&w, &err);
    fm_sealed_writer_deinit(&w);
    fclose(fp);
    fm_buf_append(out, mem, len);
    free(mem);
    return rc;
}

/* fm_sealed_copy_out of a file image: FM_OK and the plaintext in out, or the error code. */
static int copy_out(const fm_master_key_t *key, const void *image, size_t n, fm_buf_t *out,
                    fm_error_t *err) {
    int in = fm_jobs_temp_fd("/tmp", err), plain = fm_jobs_temp_fd("/tmp", err);
    if (in < 0 || plain < 0) return FM_EIO;
    if (n && write(in, image, n) != (ssize_t)n) return FM_EIO;
    lseek(in, 0, SEEK_SET);
    int rc = fm_sealed_copy_out(in, key, plain, "test file", err);
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

static const size_t sizes[] = {0,      1,      100,    65535,  65536,         65537,
                               131071, 131072, 131073, 200000, 3 * 65536 + 17};

static void test_stream_matches_reference(void) {
    fm_master_key_t key = key_from(1);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *data = random_bytes(n, 100 + i);
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

static void test_plaintext_passes_through(void) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *data = random_bytes(n, 300 + i);
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

static void test_damage_is_refused(void) {
    fm_master_key_t key = key_from(2), other = key_from(3);
    size_t n = 3 * 65536 + 100;
    unsigned char *data = random_bytes(n, 55);
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

static void test_temp_files_have_no_name(void) {
    char dir[] = "/tmp/fm-sealed-XXXXXX";
    FM_CHECK(mkdtemp(dir) != NULL);
    fm_error_t err;
    int fd = fm_jobs_temp_fd(dir, &err);
    FM_CHECK(fd >= 0);
    FM_CHECK(write(fd, "a,b\n1,2\n", 8) == 8);
    char path[64];
    fm_jobs_fd_path(fd, path, sizeof path);
    FILE *fp = fopen(path, "r");
    char line[16] = "";
    FM_CHECK(fp && fgets(line, sizeof line, fp));
    FM_CHECK_STR(line, "a,b\n");
    if (fp) fclose(fp);
    close(fd);
    FM_CHECK(rmdir(dir) == 0); /* empty: the file never had a name there */
    FM_CHECK_INT(fm_jobs_temp_fd("/nonexistent-dir-for-test", &err), -1);
    FM_CHECK(strstr(err.msg, "/nonexistent-dir-for-test") != NULL);
}

FM_TEST_MAIN(FM_TEST_CASE(test_stream_matches_reference),
             FM_TEST_CASE(test_plaintext_passes_through), FM_TEST_CASE(test_damage_is_refused),
             FM_TEST_CASE(test_temp_files_have_no_name))
