/*
 * Tests of the core area: error codes, buffers, string dictionaries, the RNG, JSON helpers and
 * atomic files.
 */
#include "core/buf.h"
#include "core/digest.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/rng.h"
#include "core/strdict.h"
#include "fm_test.h"

#include <unistd.h>

static void test_error_codes(void) {
    FM_CHECK_STR(fm_strerror(FM_OK), "ok");
    FM_CHECK_STR(fm_strerror(FM_EPARSE), "malformed input");
    FM_CHECK_STR(fm_error_name(FM_EFORMAT), "EFORMAT");
    FM_CHECK_STR(fm_strerror(12345), "unknown error");
    fm_error_t err;
    fm_error_clear(&err);
    FM_CHECK_INT(fm_error_set(&err, FM_EIO, "file %s\nline", "x.csv"), FM_EIO);
    FM_CHECK_STR(err.msg, "file x.csv line");
    fm_error_prefix(&err, "model '%s': ", "m");
    FM_CHECK_STR(fm_error_message(&err), "model 'm': file x.csv line");
    FM_CHECK_INT(err.code, FM_EIO);
    FM_CHECK_INT(fm_error_set(NULL, FM_EINVAL, "no handle"), FM_EINVAL);
    /* The home directory left out of messages shown to clients. */
    char out[32];
    const char *msg = "/srv/home/keys.db: locked (/srv/home)";
    FM_CHECK_STR(fm_error_without_dir(msg, "/srv/home", out, sizeof out), "keys.db: locked ()");
    FM_CHECK(fm_error_without_dir(msg, "/elsewhere", out, sizeof out) == msg);
    FM_CHECK(fm_error_without_dir(msg, "", out, sizeof out) == msg);
    FM_CHECK(fm_error_without_dir(msg, NULL, out, sizeof out) == msg);
    FM_CHECK(fm_error_without_dir(NULL, "/srv/home", out, sizeof out) == NULL);
    FM_CHECK_STR(fm_error_without_dir(msg, "/srv/home", out, 8), "keys.db");
}

static void test_buf(void) {
    fm_buf_t b = FM_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        fm_buf_printf(&b, "%d,", i);
    FM_CHECK(b.len > 2000);
    FM_CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    fm_buf_reset(&b);
    fm_buf_json_string(&b, "a\"b\\c\n\x01", 7);
    FM_CHECK_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    fm_buf_reset(&b);
    fm_buf_json_number(&b, 0.1);
    fm_buf_putc(&b, ' ');
    fm_buf_json_number(&b, 3.0);
    fm_buf_putc(&b, ' ');
    fm_buf_json_number(&b, NAN);
    fm_buf_putc(&b, ' ');
    fm_buf_json_number(&b, 1.0 / 3.0);
    FM_CHECK_STR(b.data, "0.1 3 null 0.3333333333333333");
    char *taken = fm_buf_take(&b);
    FM_CHECK(b.data == NULL && b.len == 0);
    free(taken);
    fm_buf_free(&b);
}

static void test_strdict(void) {
    fm_strdict_t d = FM_STRDICT_INIT;
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        FM_CHECK_INT(fm_strdict_intern(&d, key, strlen(key)), i);
    }
    FM_CHECK_INT(d.count, 5000);
    FM_CHECK_INT(fm_strdict_intern(&d, "k42", 3), 42);
    FM_CHECK_INT(fm_strdict_find(&d, "k4999", 5), 4999);
    FM_CHECK_INT(fm_strdict_find(&d, "nope", 4), -1);
    FM_CHECK_STR(fm_strdict_get(&d, 7), "k7");
    FM_CHECK_INT(fm_strdict_intern(&d, "", 0), 5000);
    FM_CHECK_INT(fm_strdict_find(&d, "", 0), 5000);
    fm_strdict_free(&d);
    fm_strdict_free(&d);
    FM_CHECK_INT(fm_strdict_find(&d, "k1", 2), -1);
}

static void test_rng(void) {
    fm_rng_t a, b;
    fm_rng_seed(&a, 42);
    fm_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++)
        FM_CHECK(fm_rng_next(&a) == fm_rng_next(&b));
    /* Moments of the uniform and normal generators. */
    double sum = 0, sumsq = 0, nsum = 0, nsumsq = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = fm_rng_uniform(&a);
        FM_CHECK(u >= 0.0 && u < 1.0);
        sum += u;
        sumsq += u * u;
        double z = fm_rng_normal(&a);
        nsum += z;
        nsumsq += z * z;
    }
    FM_CHECK_NEAR(sum / n, 0.5, 0.005);
    FM_CHECK_NEAR(sumsq / n - 0.25, 1.0 / 12.0, 0.002);
    FM_CHECK_NEAR(nsum / n, 0.0, 0.01);
    FM_CHECK_NEAR(nsumsq / n, 1.0, 0.02);
    size_t idx[10];
    for (size_t i = 0; i < 10; i++)
        idx[i] = i;
    fm_rng_shuffle(&a, idx, 10);
    int seen[10] = {0};
    for (size_t i = 0; i < 10; i++)
        seen[idx[i]]++;
    for (size_t i = 0; i < 10; i++)
        FM_CHECK_INT(seen[i], 1);
    for (int i = 0; i < 1000; i++)
        FM_CHECK(fm_rng_below(&a, 7) < 7);
}

static void test_json(void) {
    fm_error_t err;
    cJSON *j = NULL;
    const char *text = "{\"a\": 1.5, \"n\": 3, \"s\": \"x\", \"arr\": [1, 2]}";
    FM_CHECK_INT(fm_json_parse(text, strlen(text), "test", &j, &err), 0);
    double a;
    int64_t n;
    const char *s;
    const cJSON *arr;
    FM_CHECK_INT(fm_json_number(j, "a", &a, &err), 0);
    FM_CHECK_NEAR(a, 1.5, 0);
    FM_CHECK_INT(fm_json_int(j, "n", 0, 10, &n, &err), 0);
    FM_CHECK_INT(n, 3);
    FM_CHECK_INT(fm_json_int(j, "a", 0, 10, &n, &err), FM_EFORMAT);
    FM_CHECK_INT(fm_json_string(j, "s", &s, &err), 0);
    FM_CHECK_STR(s, "x");
    FM_CHECK_INT(fm_json_array(j, "arr", 2, &arr, &err), 0);
    FM_CHECK_INT(fm_json_array(j, "arr", 3, &arr, &err), FM_EFORMAT);
    FM_CHECK_INT(fm_json_number(j, "missing", &a, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "missing") != NULL);
    cJSON_Delete(j);
    const char *bad = "{\n  \"a\": [1, 2,\n}";
    FM_CHECK_INT(fm_json_parse(bad, strlen(bad), "body", &j, &err), FM_EPARSE);
    FM_CHECK(strstr(err.msg, "line 3") != NULL);
    FM_CHECK_INT(fm_json_parse("{} x", 4, "body", &j, &err), FM_EPARSE);
    FM_CHECK_INT(fm_json_parse("", 0, "body", &j, &err), FM_EPARSE);
}

static void test_atomic_file(void) {
    char dir[] = "/tmp/fm_core_test_XXXXXX";
    FM_CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    fm_error_t err;
    FM_CHECK_INT(fm_file_write_atomic(path, "hello", 5, &err), 0);
    char *data;
    size_t len;
    FM_CHECK_INT(fm_file_read_all(path, 1 << 20, &data, &len, &err), 0);
    FM_CHECK_INT(len, 5);
    FM_CHECK_STR(data, "hello");
    free(data);
    FM_CHECK_INT(fm_file_read_all(path, 3, &data, &len, &err), FM_ELIMIT);
    /* An aborted write leaves the old file and no temporary file behind. */
    fm_atomic_file_t f;
    FM_CHECK_INT(fm_atomic_file_open(&f, path, 0, &err), 0);
    fputs("partial", f.fp);
    fm_atomic_file_abort(&f);
    FM_CHECK_INT(fm_file_read_all(path, 1 << 20, &data, &len, &err), 0);
    FM_CHECK_STR(data, "hello");
    free(data);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
    FM_CHECK_INT(system(cmd), 0);
    FM_CHECK_INT(fm_file_read_all("/nonexistent/x", 10, &data, &len, &err), FM_EIO);
    FM_CHECK(strstr(err.msg, "/nonexistent/x") != NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    FM_CHECK_INT(system(cmd), 0);
}

static void test_digest(void) {
    FM_CHECK_INT(fm_digest_library_init(), 0);
    char hex[FM_DIGEST_HEX];
    fm_digest_hex("abc", 3, hex);
    /* BLAKE2b-256("abc"), from the reference implementation (RFC 7693 parameters, 32-byte out). */
    FM_CHECK_STR(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    fm_digest_t d;
    fm_digest_init(&d);
    fm_digest_update(&d, "a", 1);
    fm_digest_update(&d, "bc", 2);
    char hex2[FM_DIGEST_HEX];
    fm_digest_final_hex(&d, hex2);
    FM_CHECK_STR(hex2, hex);
}

FM_TEST_MAIN(FM_TEST_CASE(test_error_codes), FM_TEST_CASE(test_buf), FM_TEST_CASE(test_strdict),
             FM_TEST_CASE(test_rng), FM_TEST_CASE(test_json), FM_TEST_CASE(test_atomic_file),
             FM_TEST_CASE(test_digest))
