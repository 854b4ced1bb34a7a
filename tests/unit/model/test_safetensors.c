/*
 * Tests of the safetensors container: round trips of every dtype with metadata, a file written by
 * hand from the specification, and rejection (never a crash) of truncated, bit-flipped,
 * malformed and random input. The malformed cases are built byte by byte here, independently of
 * the encoder, so the decoder is checked against the specification rather than against itself.
 */
#include "core/digest.h"
#include "core/rng.h"
#include "model/safetensors.h"
#include "fm_test.h"

#include <stdint.h>
#include <unistd.h>

/* Builds an 8-byte little-endian length N, the N header bytes and dlen data bytes into out. */
static void make_file(fm_buf_t *out, uint64_t n, const char *header, size_t hlen, const void *data,
                      size_t dlen) {
    fm_buf_reset(out);
    unsigned char le[8];
    for (int k = 0; k < 8; k++)
        le[k] = (unsigned char)(n >> (8 * k));
    fm_buf_append(out, le, 8);
    fm_buf_append(out, header, hlen);
    fm_buf_append(out, data, dlen);
}

/* A file whose header is text padded with spaces to a multiple of 8, followed by dlen bytes. */
static void make_padded(fm_buf_t *out, const char *text, const void *data, size_t dlen) {
    fm_buf_t h = FM_BUF_INIT;
    fm_buf_puts(&h, text);
    while (h.len % 8)
        fm_buf_putc(&h, ' ');
    make_file(out, h.len, h.data, h.len, data, dlen);
    fm_buf_free(&h);
}

/* A small file of three tensors with metadata, encoded with the checksum. */
static void small_file(fm_buf_t *out) {
    fm_tensor_file_t *tf = fm_tensor_file_new();
    double w[6] = {1, -2, 3.5, 0.25, -0.125, 1e-300};
    float v[2] = {1.5f, -7.0f};
    int32_t ids[3] = {-1, 0, 7};
    int64_t s23[2] = {2, 3}, s2[1] = {2}, s3[1] = {3};
    FM_CHECK_INT(fm_tensor_file_add(tf, "w", FM_DTYPE_F64, 2, s23, w, NULL), 0);
    FM_CHECK_INT(fm_tensor_file_add(tf, "v", FM_DTYPE_F32, 1, s2, v, NULL), 0);
    FM_CHECK_INT(fm_tensor_file_add(tf, "ids", FM_DTYPE_I32, 1, s3, ids, NULL), 0);
    FM_CHECK_INT(fm_tensor_file_set_metadata(tf, "note", "small"), 0);
    fm_buf_reset(out);
    FM_CHECK_INT(fm_safetensors_encode(tf, out, NULL), 0);
    fm_tensor_file_free(tf);
}

/* Decodes and expects FM_EFORMAT (or a clean FM_OK, reported as a failure) for both modes. */
static void expect_rejected(const fm_buf_t *file, const char *what) {
    for (int require = 0; require <= 1; require++) {
        fm_tensor_file_t *tf = (fm_tensor_file_t *)1;
        fm_error_t err;
        fm_error_clear(&err);
        int rc = fm_safetensors_decode(file->data, file->len, "case.st", require, &tf, &err);
        FM_CHECK_MSG(rc == FM_EFORMAT, "%s (require %d): rc %d", what, require, rc);
        FM_CHECK_MSG(tf == NULL, "%s: output not NULL on failure", what);
        FM_CHECK_MSG(strstr(err.msg, "case.st") != NULL, "%s: message does not name the file: %s",
                     what, err.msg);
        if (rc == FM_OK) fm_tensor_file_free(tf);
    }
}

static void test_dtypes(void) {
    FM_CHECK_STR(fm_dtype_name(FM_DTYPE_F64), "F64");
    FM_CHECK_STR(fm_dtype_name(FM_DTYPE_U8), "U8");
    FM_CHECK_INT(fm_dtype_size(FM_DTYPE_F64), 8);
    FM_CHECK_INT(fm_dtype_size(FM_DTYPE_F32), 4);
    FM_CHECK_INT(fm_dtype_size(FM_DTYPE_I64), 8);
    FM_CHECK_INT(fm_dtype_size(FM_DTYPE_I32), 4);
    FM_CHECK_INT(fm_dtype_size(FM_DTYPE_U8), 1);
    fm_dtype_t d = FM_DTYPE_F64;
    FM_CHECK_INT(fm_dtype_parse("I64", &d), 0);
    FM_CHECK_INT(d, FM_DTYPE_I64);
    FM_CHECK_INT(fm_dtype_parse("BF16", &d), FM_EUNSUPPORTED);
    FM_CHECK_INT(fm_dtype_parse("BOOL", &d), FM_EUNSUPPORTED);
    FM_CHECK_INT(fm_dtype_parse("f64", &d), FM_EFORMAT);
    FM_CHECK_INT(fm_dtype_parse("", &d), FM_EFORMAT);
}

static void test_round_trip(void) {
    fm_tensor_file_t *tf = fm_tensor_file_new();
    double w[6] = {1.0, -2.5, 3.141592653589793, -0.0, 1e-308, 1.7976931348623157e308};
    float f[4] = {0.5f, -1.25f, 3.0e38f, 1e-45f};
    int64_t big[2] = {INT64_MIN, INT64_MAX};
    int32_t i32 = -123456789;
    uint8_t bytes[5] = {0, 1, 127, 128, 255};
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s2[1] = {2}, s5[1] = {5}, s03[2] = {0, 3};
    FM_CHECK_INT(fm_tensor_file_add(tf, "layers.0.weight", FM_DTYPE_F64, 2, s23, w, NULL), 0);
    FM_CHECK_INT(fm_tensor_file_add(tf, "f32", FM_DTYPE_F32, 1, s4, f, NULL), 0);
    FM_CHECK_INT(fm_tensor_file_add(tf, "big", FM_DTYPE_I64, 1, s2, big, NULL), 0);
    FM_CHECK_INT(fm_tensor_file_add(tf, "scalar", FM_DTYPE_I32, 0, NULL, &i32, NULL), 0);
    FM_CHECK_INT(
        fm_tensor_file_add(tf, "bytes \"quoted\"\n\xc3\xa9", FM_DTYPE_U8, 1, s5, bytes, NULL), 0);
    FM_CHECK_INT(fm_tensor_file_add(tf, "empty", FM_DTYPE_F64, 2, s03, NULL, NULL), 0);
    FM_CHECK_INT(fm_tensor_file_set_metadata(tf, "format", "test"), 0);
    FM_CHECK_INT(fm_tensor_file_set_metadata(tf, "json", "{\"a\": [1, \"\\u00e9\"]}\t\x01"), 0);
    FM_CHECK_INT(fm_tensor_file_set_metadata(tf, "format", "test2"), 0);
    FM_CHECK_STR(fm_tensor_file_get_metadata(tf, "format"), "test2");
    FM_CHECK(fm_tensor_file_get_metadata(tf, "absent") == NULL);

    fm_buf_t buf = FM_BUF_INIT;
    fm_buf_puts(&buf, "prefix");
    FM_CHECK_INT(fm_safetensors_encode(tf, &buf, NULL), 0);
    const unsigned char *file = (const unsigned char *)buf.data + 6;
    size_t flen = buf.len - 6;
    uint64_t n = 0;
    for (int k = 0; k < 8; k++)
        n |= (uint64_t)file[k] << (8 * k);
    FM_CHECK(n % 8 == 0);
    FM_CHECK(file[8] == '{');
    FM_CHECK_INT(flen, 8 + n + 48 + 16 + 16 + 4 + 5);

    fm_tensor_file_t *back = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_safetensors_decode(file, flen, "rt", 1, &back, &err), 0);
    FM_CHECK_INT(back->count, tf->count);
    for (size_t i = 0; back && i < tf->count; i++) {
        const fm_tensor_t *a = &tf->tensors[i], *b = &back->tensors[i];
        FM_CHECK_STR(b->name, a->name);
        FM_CHECK_INT(b->dtype, a->dtype);
        FM_CHECK_INT(b->ndim, a->ndim);
        for (int d = 0; d < a->ndim; d++)
            FM_CHECK_INT(b->shape[d], a->shape[d]);
        FM_CHECK_INT(b->nbytes, a->nbytes);
        FM_CHECK(memcmp(a->data, b->data, a->nbytes) == 0);
        FM_CHECK(((uintptr_t)b->data % 8) == 0);
        FM_CHECK(fm_tensor_file_find(back, a->name) == b);
    }
    const fm_tensor_t *sc = fm_tensor_file_find(back, "scalar");
    FM_CHECK(sc && fm_tensor_elements(sc) == 1 && *(int32_t *)sc->data == i32);
    FM_CHECK_INT(fm_tensor_elements(fm_tensor_file_find(back, "empty")), 0);
    FM_CHECK_STR(fm_tensor_file_get_metadata(back, "format"), "test2");
    FM_CHECK_STR(fm_tensor_file_get_metadata(back, "json"), "{\"a\": [1, \"\\u00e9\"]}\t\x01");
    const char *sum = fm_tensor_file_get_metadata(back, FM_SAFETENSORS_CHECKSUM_KEY);
    FM_CHECK(sum && strlen(sum) == 64);

    /* The checksum is BLAKE2b-256 of the file with its own 64 characters read as '0'. */
    if (sum) {
        char *copy = malloc(flen);
        memcpy(copy, file, flen);
        char *at = strstr(copy + 8, sum);
        FM_CHECK(at != NULL);
        if (at) memset(at, '0', 64);
        char hex[FM_DIGEST_HEX];
        fm_digest_hex(copy, flen, hex);
        FM_CHECK_STR(hex, sum);
        free(copy);
    }

    /* Re-encoding a decoded file gives the same bytes: the layout is deterministic. */
    fm_buf_t again = FM_BUF_INIT;
    FM_CHECK_INT(fm_safetensors_encode(back, &again, NULL), 0);
    FM_CHECK(again.len == flen && memcmp(again.data, file, flen) == 0);

    /* Through a file. */
    char path[] = "/tmp/fm_st_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    FM_CHECK_INT(fm_safetensors_write(path, tf, &err), 0);
    fm_tensor_file_t *from_disk = NULL;
    FM_CHECK_INT(fm_safetensors_read(path, 1, &from_disk, &err), 0);
    FM_CHECK(from_disk && from_disk->count == tf->count);
    fm_tensor_file_free(from_disk);
    unlink(path);
    FM_CHECK_INT(fm_safetensors_read(path, 1, &from_disk, &err), FM_EIO);
    FM_CHECK(strstr(err.msg, path) != NULL);

    fm_buf_free(&again);
    fm_buf_free(&buf);
    fm_tensor_file_free(back);
    fm_tensor_file_free(tf);
}

static void test_empty_file(void) {
    fm_tensor_file_t *tf = fm_tensor_file_new();
    fm_buf_t buf = FM_BUF_INIT;
    FM_CHECK_INT(fm_safetensors_encode(tf, &buf, NULL), 0);
    fm_tensor_file_t *back = NULL;
    FM_CHECK_INT(fm_safetensors_decode(buf.data, buf.len, "empty", 1, &back, NULL), 0);
    FM_CHECK(back && back->count == 0);
    fm_tensor_file_free(back);
    /* "{}" padded to 8 bytes, no data: valid without a checksum. */
    make_padded(&buf, "{}", NULL, 0);
    FM_CHECK_INT(fm_safetensors_decode(buf.data, buf.len, "empty", 0, &back, NULL), 0);
    FM_CHECK(back && back->count == 0 && back->metadata == NULL);
    fm_tensor_file_free(back);
    fm_buf_free(&buf);
    fm_tensor_file_free(tf);
}

static void test_add_errors(void) {
    fm_tensor_file_t *tf = fm_tensor_file_new();
    double x[2] = {1, 2};
    int64_t s2[1] = {2}, neg[1] = {-1}, huge[3] = {1LL << 40, 1LL << 40, 1LL << 40};
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    fm_error_t err;
    FM_CHECK_INT(fm_tensor_file_add(tf, "x", FM_DTYPE_F64, 1, s2, x, &err), 0);
    FM_CHECK_INT(fm_tensor_file_add(tf, "x", FM_DTYPE_F64, 1, s2, x, &err), FM_EEXIST);
    FM_CHECK(strstr(err.msg, "'x'") != NULL);
    FM_CHECK(fm_tensor_file_add(tf, "__metadata__", FM_DTYPE_F64, 1, s2, x, &err) < 0);
    FM_CHECK(fm_tensor_file_add(tf, "n", FM_DTYPE_F64, 1, neg, x, &err) < 0);
    FM_CHECK(fm_tensor_file_add(tf, "h", FM_DTYPE_F64, 3, huge, x, &err) < 0);
    FM_CHECK(fm_tensor_file_add(tf, "d", FM_DTYPE_F64, 9, nine, x, &err) < 0);
    FM_CHECK(fm_tensor_file_add(tf, "bad\xff", FM_DTYPE_F64, 1, s2, x, &err) < 0);
    FM_CHECK(fm_tensor_file_add(tf, "nodata", FM_DTYPE_F64, 1, s2, NULL, &err) < 0);
    FM_CHECK(fm_tensor_file_add(tf, "dtype", (fm_dtype_t)99, 1, s2, x, &err) < 0);
    FM_CHECK_INT(tf->count, 1);
    /* Many tensors: the array grows. */
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "t%d", i);
        FM_CHECK_INT(fm_tensor_file_add(tf, name, FM_DTYPE_F64, 1, s2, x, &err), 0);
    }
    FM_CHECK_INT(tf->count, 101);
    FM_CHECK(fm_tensor_file_find(tf, "t99") != NULL);
    FM_CHECK(fm_tensor_file_find(tf, "t100") == NULL);

    /* Metadata with invalid UTF-8 is refused at encoding, not written as a broken header. */
    fm_tensor_file_set_metadata(tf, "k", "\xc3");
    fm_buf_t buf = FM_BUF_INIT;
    FM_CHECK_INT(fm_safetensors_encode(tf, &buf, &err), FM_EINVAL);
    FM_CHECK_INT(buf.len, 0);
    fm_buf_free(&buf);

    /* No partial file when the destination cannot be written. */
    fm_tensor_file_set_metadata(tf, "k", "ok");
    FM_CHECK(fm_safetensors_write("/nonexistent-dir/x.st", tf, &err) < 0);
    FM_CHECK(strstr(err.msg, "/nonexistent-dir/x.st") != NULL);
    FM_CHECK(access("/nonexistent-dir/x.st", F_OK) != 0);
    fm_tensor_file_free(tf);
    fm_tensor_file_free(NULL);
}

/* A file written from the specification alone, as another library would write it. */
static void test_hand_written(void) {
    const char *header =
        "{\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]},\"__metadata__\":{\"k\":"
        "\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    /* F32 1.5 = 0x3fc00000, -2.0 = 0xc0000000; I64 -2 = 0xff..fe, all little-endian. */
    const unsigned char data[16] = {0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0,
                                    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    fm_buf_t buf = FM_BUF_INIT;
    make_padded(&buf, header, data, sizeof data);
    fm_tensor_file_t *tf = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_safetensors_decode(buf.data, buf.len, "hand", 0, &tf, &err), 0);
    FM_CHECK(tf && tf->count == 2);
    if (tf && tf->count == 2) {
        FM_CHECK_STR(tf->tensors[0].name, "b");
        FM_CHECK_STR(tf->tensors[1].name, "a");
        const fm_tensor_t *a = fm_tensor_file_find(tf, "a"), *b = fm_tensor_file_find(tf, "b");
        FM_CHECK(a && a->dtype == FM_DTYPE_F32 && a->ndim == 1 && a->shape[0] == 2);
        FM_CHECK(a && ((float *)a->data)[0] == 1.5f && ((float *)a->data)[1] == -2.0f);
        FM_CHECK(b && b->dtype == FM_DTYPE_I64 && ((int64_t *)b->data)[0] == -2);
        FM_CHECK_STR(fm_tensor_file_get_metadata(tf, "k"), "v");
    }
    fm_tensor_file_free(tf);
    FM_CHECK_INT(fm_safetensors_decode(buf.data, buf.len, "hand", 1, &tf, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "checksum") != NULL && strstr(err.msg, "hand") != NULL);

    /* Unpadded headers are valid too: padding is allowed, not required. */
    make_file(&buf, strlen(header), header, strlen(header), data, sizeof data);
    FM_CHECK_INT(fm_safetensors_decode(buf.data, buf.len, "hand", 0, &tf, &err), 0);
    fm_tensor_file_free(tf);
    fm_buf_free(&buf);
}

static void test_truncation(void) {
    fm_buf_t file = FM_BUF_INIT, cut = FM_BUF_INIT;
    small_file(&file);
    for (size_t len = 0; len < file.len; len++) {
        fm_buf_reset(&cut);
        fm_buf_append(&cut, file.data, len);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes", len);
        expect_rejected(&cut, what);
    }
    fm_buf_free(&cut);
    fm_buf_free(&file);
}

/*
 * Every single-bit flip anywhere is rejected. Flips in the data, the JSON text, the checksum
 * itself and even the spaces that pad the header are all caught, because the checksum covers the
 * whole file: a padding space turned into another character either breaks the JSON or changes
 * the bytes the digest is computed over.
 */
static void test_bit_flips(void) {
    fm_buf_t file = FM_BUF_INIT, bad = FM_BUF_INIT;
    small_file(&file);
    int accepted = 0;
    for (size_t i = 0; i < file.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            fm_buf_reset(&bad);
            fm_buf_append(&bad, file.data, file.len);
            bad.data[i] = (char)(bad.data[i] ^ (1 << bit));
            fm_tensor_file_t *tf = NULL;
            fm_error_t err;
            int rc = fm_safetensors_decode(bad.data, bad.len, "flip", 1, &tf, &err);
            if (rc == 0) {
                accepted++;
                fm_tensor_file_free(tf);
                fprintf(stderr, "  flip of bit %d at byte %zu accepted\n", bit, i);
            } else {
                FM_CHECK(rc == FM_EFORMAT && tf == NULL);
            }
        }
    }
    FM_CHECK_INT(accepted, 0);
    fm_buf_free(&bad);
    fm_buf_free(&file);
}

static void test_malformed(void) {
    fm_buf_t f = FM_BUF_INIT;
    unsigned char data[64] = {0};
    static const struct {
        const char *what, *header;
        size_t dlen;
    } cases[] = {
        {"non-JSON header", "{not json}", 0},
        {"header not an object", "[1, 2, 3]", 0},
        {"string header", "\"text\"", 0},
        {"header with leading space", " {}", 0},
        {"text after the JSON", "{} x", 0},
        {"two JSON values", "{}{}", 0},
        {"tensor entry not an object", "{\"a\":1}", 0},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8},
        {"unsupported dtype", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
         8},
        {"dtype not a string", "{\"a\":{\"dtype\":8,\"shape\":[1],\"data_offsets\":[0,8]}}", 8},
        {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,8]}}", 8},
        {"missing shape", "{\"a\":{\"dtype\":\"F64\",\"data_offsets\":[0,8]}}", 8},
        {"missing offsets", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1]}}", 8},
        {"unknown field",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8],\"x\":1}}", 8},
        {"field twice",
         "{\"a\":{\"dtype\":\"F64\",\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8},
        {"negative dimension", "{\"a\":{\"dtype\":\"F64\",\"shape\":[-1],\"data_offsets\":[0,8]}}",
         8},
        {"non-integer dimension",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8},
        {"string dimension", "{\"a\":{\"dtype\":\"F64\",\"shape\":[\"1\"],\"data_offsets\":[0,8]}}",
         8},
        {"shape not an array", "{\"a\":{\"dtype\":\"F64\",\"shape\":1,\"data_offsets\":[0,8]}}", 8},
        {"nine dimensions",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,8]}}", 8},
        {"shape product overflow",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8},
        {"shape product overflow by dtype size",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[9007199254740992,512],\"data_offsets\":[0,0]}}", 0},
        {"dimension past 2^53",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8},
        {"offsets past the data",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}", 8},
        {"offsets reversed", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8},
        {"negative offset", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[-8,0]}}", 8},
        {"three offsets", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8,8]}}", 8},
        {"offsets not numbers",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[\"0\",\"8\"]}}", 8},
        {"span shorter than shape",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
        {"span longer than shape",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8},
        {"overlapping tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\","
         "\"shape\":[2],\"data_offsets\":[4,12]}}",
         12},
        {"the same span twice",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\","
         "\"shape\":[2],\"data_offsets\":[0,8]}}",
         8},
        {"gap between tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\","
         "\"shape\":[2],\"data_offsets\":[12,20]}}",
         20},
        {"gap at the start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12},
        {"bytes after the last tensor",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12},
        {"data without tensors", "{}", 8},
        {"duplicate names",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\","
         "\"shape\":[1],\"data_offsets\":[4,8]}}",
         8},
        {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0},
        {"metadata not an object", "{\"__metadata__\":\"x\"}", 0},
        {"metadata null", "{\"__metadata__\":null}", 0},
        {"number in metadata", "{\"__metadata__\":{\"k\":1}}", 0},
        {"object in metadata", "{\"__metadata__\":{\"k\":{}}}", 0},
        {"null in metadata", "{\"__metadata__\":{\"k\":null}}", 0},
        {"metadata key twice", "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0},
        {"checksum not hex", "{\"__metadata__\":{\"finmaas_checksum\":\"xyz\"}}", 0},
        {"checksum wrong",
         "{\"__metadata__\":{\"finmaas_checksum\":"
         "\"0000000000000000000000000000000000000000000000000000000000000000\"}}",
         0},
        {"checksum upper case",
         "{\"__metadata__\":{\"finmaas_checksum\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}",
         0},
        {"invalid UTF-8 in a name", "{\"\xff\":{}}", 0},
        {"overlong UTF-8", "{\"\xc0\xaf\":{}}", 0},
        {"UTF-16 surrogate in UTF-8", "{\"\xed\xa0\x80\":{}}", 0},
        {"truncated UTF-8 at the end", "{}\xe2\x82", 0},
        {"deeply nested", "{\"__metadata__\":{\"k\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_padded(&f, cases[i].header, data, cases[i].dlen);
        expect_rejected(&f, cases[i].what);
    }

    /* A NUL inside the header (JSON never holds a raw NUL). */
    const char nul_header[] = "{\"a\0\":{}}";
    make_file(&f, sizeof nul_header - 1, nul_header, sizeof nul_header - 1, NULL, 0);
    expect_rejected(&f, "NUL in the header");

    /* Header lengths that do not fit the file. */
    const char *h = "{}      ";
    make_file(&f, 9, h, 8, NULL, 0);
    expect_rejected(&f, "header length one past the file");
    make_file(&f, 0, h, 8, NULL, 0);
    expect_rejected(&f, "header length zero");
    make_file(&f, UINT64_MAX, h, 8, NULL, 0);
    expect_rejected(&f, "header length 2^64-1");
    make_file(&f, (uint64_t)1 << 63, h, 8, NULL, 0);
    expect_rejected(&f, "header length 2^63");
    make_file(&f, (uint64_t)FM_SAFETENSORS_MAX_HEADER + 1, h, 8, NULL, 0);
    expect_rejected(&f, "header length past the limit");
    make_file(&f, FM_SAFETENSORS_MAX_HEADER, h, 8, NULL, 0);
    expect_rejected(&f, "header length at the limit, file short");
    make_file(&f, 2, "{}", 2, NULL, 0);
    fm_tensor_file_t *tf = NULL;
    FM_CHECK_INT(fm_safetensors_decode(f.data, f.len, "x", 0, &tf, NULL), 0);
    fm_tensor_file_free(tf);

    /* Messages name the tensor and the field. */
    fm_error_t err;
    make_padded(&f, "{\"w\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 8);
    fm_safetensors_decode(f.data, f.len, "m.st", 0, &tf, &err);
    FM_CHECK(strstr(err.msg, "m.st") && strstr(err.msg, "'w'") && strstr(err.msg, "data_offsets"));
    make_padded(&f, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", data, 8);
    fm_safetensors_decode(f.data, f.len, "m.st", 0, &tf, &err);
    FM_CHECK(strstr(err.msg, "BF16") && strstr(err.msg, "not supported"));
    fm_buf_free(&f);
}

/* Random buffers and random mutations of valid files: never a crash, never an acceptance of a
 * damaged file that carries a checksum. */
static void test_random_inputs(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 20240611);
    fm_buf_t buf = FM_BUF_INIT, valid = FM_BUF_INIT, plain = FM_BUF_INIT;
    small_file(&valid);
    const char *header =
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":{\"k\":"
        "\"v\"},\"b\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[8,12]}}";
    unsigned char data[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    make_padded(&plain, header, data, sizeof data);
    int accepted_random = 0, accepted_mutant = 0, plain_ok = 0;

    for (int iter = 0; iter < 3000; iter++) {
        size_t len = (size_t)fm_rng_below(&rng, 300);
        fm_buf_reset(&buf);
        for (size_t i = 0; i < len; i++)
            fm_buf_putc(&buf, (char)fm_rng_below(&rng, 256));
        /* Half the time a plausible header length and '{', so the JSON parser is reached. */
        if (iter % 2 && len > 9) {
            uint64_t n = fm_rng_below(&rng, len - 8) + 1;
            for (int k = 0; k < 8; k++)
                buf.data[k] = (char)(n >> (8 * k));
            buf.data[8] = '{';
        }
        fm_tensor_file_t *tf = NULL;
        if (fm_safetensors_decode(buf.data, buf.len, "random", 1, &tf, NULL) == 0) {
            accepted_random++;
            fm_tensor_file_free(tf);
        }
    }
    for (int iter = 0; iter < 6000; iter++) {
        const fm_buf_t *base = iter % 2 ? &valid : &plain;
        fm_buf_reset(&buf);
        fm_buf_append(&buf, base->data, base->len);
        int edits = 1 + (int)fm_rng_below(&rng, 4);
        for (int e = 0; e < edits && buf.len > 0; e++) {
            size_t at = (size_t)fm_rng_below(&rng, buf.len);
            switch (fm_rng_below(&rng, 4)) {
            case 0:
                buf.data[at] = (char)fm_rng_below(&rng, 256);
                break;
            case 1: /* delete one byte */
                memmove(buf.data + at, buf.data + at + 1, buf.len - at - 1);
                buf.len--;
                break;
            case 2: /* duplicate one byte */
                fm_buf_putc(&buf, 0);
                memmove(buf.data + at + 1, buf.data + at, buf.len - at - 1);
                break;
            default: /* JSON punctuation, the usual suspects for parser confusion */
                buf.data[at] = "{}[]\",:0-9e. \\"[fm_rng_below(&rng, 14)];
                break;
            }
        }
        int same = buf.len == base->len && memcmp(buf.data, base->data, buf.len) == 0;
        fm_tensor_file_t *tf = NULL;
        int rc = fm_safetensors_decode(buf.data, buf.len, "mutant", base == &valid, &tf, NULL);
        if (rc == 0) {
            /* Whatever was accepted is self-consistent. */
            size_t total = 0;
            for (size_t i = 0; i < tf->count; i++) {
                const fm_tensor_t *t = &tf->tensors[i];
                FM_CHECK(t->nbytes == fm_tensor_elements(t) * fm_dtype_size(t->dtype));
                total += t->nbytes;
            }
            uint64_t n = 0;
            for (int k = 0; k < 8; k++)
                n |= (uint64_t)(unsigned char)buf.data[k] << (8 * k);
            FM_CHECK(8 + n + total == buf.len);
            if (base == &valid && !same) accepted_mutant++;
            if (base == &plain) plain_ok++;
            fm_tensor_file_free(tf);
        }
    }
    printf("  random inputs: %d accepted; checksummed mutants accepted: %d; plain mutants that "
           "stayed valid: %d\n",
           accepted_random, accepted_mutant, plain_ok);
    FM_CHECK_INT(accepted_random, 0);
    FM_CHECK_INT(accepted_mutant, 0);
    fm_buf_free(&buf);
    fm_buf_free(&valid);
    fm_buf_free(&plain);
}

FM_TEST_MAIN(FM_TEST_CASE(test_dtypes), FM_TEST_CASE(test_round_trip),
             FM_TEST_CASE(test_empty_file), FM_TEST_CASE(test_add_errors),
             FM_TEST_CASE(test_hand_written), FM_TEST_CASE(test_truncation),
             FM_TEST_CASE(test_bit_flips), FM_TEST_CASE(test_malformed),
             FM_TEST_CASE(test_random_inputs))
