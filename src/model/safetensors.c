/*
 * The safetensors container (see safetensors.h): building a tensor file in memory, encoding it
 * with the finmaas checksum, and decoding untrusted bytes with every field validated before use.
 *
 * Encoding writes the header by hand so that its layout is fixed: "__metadata__" comes first and
 * its first member is the checksum, then the tensors in insertion order with consecutive data
 * offsets (so the header is sorted by data offset), then spaces up to a multiple of 8 bytes so
 * that the data section starts 8-byte aligned. The checksum is computed over the whole encoded
 * file with its 64 hex characters set to '0' and then written in place.
 *
 * Decoding never trusts a length or offset it has not checked against the bytes it was given;
 * tensor data is copied into owned buffers from malloc, so it is aligned for every dtype whatever
 * the offsets in the file. Values are little-endian in the file and converted on big-endian hosts.
 */
#include "model/safetensors.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strdict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define METADATA_KEY     "__metadata__"
#define CHECKSUM_HEX_LEN 64
/* The largest dimension that a JSON number (a double in cJSON) holds exactly. */
#define MAX_DIM ((int64_t)1 << 53)

/* The opening of every header this file writes; the checksum's hex follows it directly. */
static const char header_opening[] =
    "{\"" METADATA_KEY "\":{\"" FM_SAFETENSORS_CHECKSUM_KEY "\":\"";

static const struct {
    const char *name;
    size_t size;
} dtype_table[] = {
    [FM_DTYPE_F64] = {"F64", 8}, [FM_DTYPE_F32] = {"F32", 4}, [FM_DTYPE_I64] = {"I64", 8},
    [FM_DTYPE_I32] = {"I32", 4}, [FM_DTYPE_U8] = {"U8", 1},
};
#define DTYPE_COUNT (sizeof dtype_table / sizeof dtype_table[0])

/* Dtype names of the safetensors specification that finmaas does not use. */
static const char *const foreign_dtypes[] = {
    "BOOL", "I8",      "U16",     "I16",     "U32",     "U64",     "F16", "BF16",
    "C64",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",
};

const char *fm_dtype_name(fm_dtype_t dtype) {
    if ((size_t)dtype >= DTYPE_COUNT) return "?";
    return dtype_table[dtype].name;
}

size_t fm_dtype_size(fm_dtype_t dtype) {
    if ((size_t)dtype >= DTYPE_COUNT) return 0;
    return dtype_table[dtype].size;
}

int fm_dtype_parse(const char *text, fm_dtype_t *out) {
    for (size_t i = 0; i < DTYPE_COUNT; i++) {
        if (strcmp(text, dtype_table[i].name) == 0) {
            *out = (fm_dtype_t)i;
            return FM_OK;
        }
    }
    for (size_t i = 0; i < sizeof foreign_dtypes / sizeof foreign_dtypes[0]; i++)
        if (strcmp(text, foreign_dtypes[i]) == 0) return FM_EUNSUPPORTED;
    return FM_EFORMAT;
}

/*
 * Returns the offset of the first byte that breaks UTF-8 (overlong forms, surrogates, code
 * points past U+10FFFF, truncated sequences, and NUL, which JSON text never holds raw), or n.
 */
static size_t utf8_check(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c >= 0x01 && c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned min, cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, min = 0x80, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, min = 0x800, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i - 1 < need) return i;
        for (size_t k = 1; k <= need; k++) {
            unsigned cc = s[i + k];
            if ((cc & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += need + 1;
    }
    return n;
}

static int utf8_valid(const char *s) {
    size_t n = strlen(s);
    return utf8_check((const unsigned char *)s, n) == n;
}

/* *nbytes = prod(shape) * elem_size; 0 on success, -1 on overflow or a bad dimension. */
static int shape_bytes(int ndim, const int64_t *shape, size_t elem_size, size_t *nbytes) {
    uint64_t total = elem_size;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || shape[d] > MAX_DIM) return -1;
        if (__builtin_mul_overflow(total, (uint64_t)shape[d], &total)) return -1;
    }
    if (total > SIZE_MAX) return -1;
    *nbytes = (size_t)total;
    return 0;
}

/* Copies nbytes between host order and the file's little-endian order. */
static void copy_little_endian(void *dst, const void *src, size_t nbytes, size_t elem_size) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (size_t i = 0; i + elem_size <= nbytes; i += elem_size)
        for (size_t k = 0; k < elem_size; k++)
            d[i + k] = s[i + elem_size - 1 - k];
#else
    (void)elem_size;
    if (nbytes) memcpy(dst, src, nbytes);
#endif
}

fm_tensor_file_t *fm_tensor_file_new(void) {
    return calloc(1, sizeof(fm_tensor_file_t));
}

int fm_tensor_file_add(fm_tensor_file_t *tf, const char *name, fm_dtype_t dtype, int ndim,
                       const int64_t *shape, const void *data, fm_error_t *err) {
    if (!tf || !name) return fm_error_set(err, FM_EINVAL, "tensor file or tensor name missing");
    if ((size_t)dtype >= DTYPE_COUNT)
        return fm_error_set(err, FM_EINVAL, "tensor '%s': invalid dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > FM_TENSOR_MAX_DIMS || (ndim > 0 && !shape))
        return fm_error_set(err, FM_EINVAL, "tensor '%s': %d dimensions (at most %d)", name, ndim,
                            FM_TENSOR_MAX_DIMS);
    if (strcmp(name, METADATA_KEY) == 0)
        return fm_error_set(err, FM_EINVAL, "tensor name '%s' is reserved", name);
    if (!utf8_valid(name)) return fm_error_set(err, FM_EINVAL, "tensor name is not valid UTF-8");
    if (fm_tensor_file_find(tf, name))
        return fm_error_set(err, FM_EEXIST, "tensor '%s' already exists", name);
    size_t nbytes;
    if (shape_bytes(ndim, shape, fm_dtype_size(dtype), &nbytes) != 0)
        return fm_error_set(err, FM_EINVAL,
                            "tensor '%s': shape has a negative dimension or overflows", name);
    if (nbytes && !data) return fm_error_set(err, FM_EINVAL, "tensor '%s': data missing", name);

    /* The array grows by doubling whenever its count reaches a power of two. */
    if ((tf->count & (tf->count - 1)) == 0) {
        size_t cap = tf->count ? 2 * tf->count : 1;
        fm_tensor_t *grown = realloc(tf->tensors, cap * sizeof *grown);
        if (!grown) return fm_error_set(err, FM_ENOMEM, "tensor '%s': out of memory", name);
        tf->tensors = grown;
    }
    fm_tensor_t *t = &tf->tensors[tf->count];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return fm_error_set(err, FM_ENOMEM, "tensor '%s': out of memory", name);
    }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    if (nbytes) memcpy(t->data, data, nbytes);
    t->nbytes = nbytes;
    tf->count++;
    return FM_OK;
}

int fm_tensor_file_set_metadata(fm_tensor_file_t *tf, const char *key, const char *value) {
    if (!tf || !key || !value) return FM_EINVAL;
    if (!tf->metadata && !(tf->metadata = cJSON_CreateObject())) return FM_ENOMEM;
    cJSON *item = cJSON_CreateString(value);
    if (!item) return FM_ENOMEM;
    if (cJSON_GetObjectItemCaseSensitive(tf->metadata, key)) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(tf->metadata, key, item)) {
            cJSON_Delete(item);
            return FM_ENOMEM;
        }
    } else if (!cJSON_AddItemToObject(tf->metadata, key, item)) {
        cJSON_Delete(item);
        return FM_ENOMEM;
    }
    return FM_OK;
}

const char *fm_tensor_file_get_metadata(const fm_tensor_file_t *tf, const char *key) {
    if (!tf || !tf->metadata) return NULL;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(tf->metadata, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

const fm_tensor_t *fm_tensor_file_find(const fm_tensor_file_t *tf, const char *name) {
    if (!tf || !name) return NULL;
    for (size_t i = 0; i < tf->count; i++)
        if (strcmp(tf->tensors[i].name, name) == 0) return &tf->tensors[i];
    return NULL;
}

size_t fm_tensor_elements(const fm_tensor_t *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d];
    return n;
}

void fm_tensor_file_free(fm_tensor_file_t *tf) {
    if (!tf) return;
    for (size_t i = 0; i < tf->count; i++) {
        free(tf->tensors[i].name);
        free(tf->tensors[i].data);
    }
    free(tf->tensors);
    cJSON_Delete(tf->metadata);
    free(tf);
}

/* ---- Encoding -------------------------------------------------------------------------------- */

/* Writes the JSON header (without padding) into h; the data offsets run from 0 in order. */
static int build_header(const fm_tensor_file_t *tf, fm_buf_t *h, fm_error_t *err) {
    int rc = fm_buf_puts(h, header_opening);
    for (int i = 0; i < CHECKSUM_HEX_LEN && !rc; i++)
        rc = fm_buf_putc(h, '0');
    rc = rc ? rc : fm_buf_putc(h, '"');
    const cJSON *item;
    cJSON_ArrayForEach(item, tf->metadata) {
        if (rc) break;
        const char *key = item->string;
        if (!key || strcmp(key, FM_SAFETENSORS_CHECKSUM_KEY) == 0) continue;
        if (!cJSON_IsString(item))
            return fm_error_set(err, FM_EINVAL, "metadata '%s' is not a string", key);
        if (!utf8_valid(key) || !utf8_valid(item->valuestring))
            return fm_error_set(err, FM_EINVAL, "metadata '%s' is not valid UTF-8", key);
        rc = fm_buf_putc(h, ',');
        rc = rc ? rc : fm_buf_json_string(h, key, strlen(key));
        rc = rc ? rc : fm_buf_putc(h, ':');
        rc = rc ? rc : fm_buf_json_string(h, item->valuestring, strlen(item->valuestring));
    }
    rc = rc ? rc : fm_buf_putc(h, '}');
    size_t offset = 0;
    for (size_t i = 0; i < tf->count && !rc; i++) {
        const fm_tensor_t *t = &tf->tensors[i];
        size_t nbytes;
        if ((size_t)t->dtype >= DTYPE_COUNT || t->ndim < 0 || t->ndim > FM_TENSOR_MAX_DIMS ||
            shape_bytes(t->ndim, t->shape, fm_dtype_size(t->dtype), &nbytes) != 0 ||
            nbytes != t->nbytes || !utf8_valid(t->name))
            return fm_error_set(err, FM_EINVAL, "tensor '%s': dtype, shape, size or name invalid",
                                t->name);
        rc = fm_buf_putc(h, ',');
        rc = rc ? rc : fm_buf_json_string(h, t->name, strlen(t->name));
        rc = rc ? rc : fm_buf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", fm_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim && !rc; d++)
            rc = fm_buf_printf(h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        rc = rc ? rc : fm_buf_printf(h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + nbytes);
        offset += nbytes;
    }
    rc = rc ? rc : fm_buf_putc(h, '}');
    if (rc) return fm_error_set(err, FM_ENOMEM, "safetensors header: out of memory");
    return FM_OK;
}

int fm_safetensors_encode(const fm_tensor_file_t *tf, fm_buf_t *out, fm_error_t *err) {
    if (!tf || !out) return fm_error_set(err, FM_EINVAL, "tensor file or output missing");
    fm_buf_t header = FM_BUF_INIT;
    int rc = build_header(tf, &header, err);
    while (!rc && header.len % 8 != 0)
        rc = fm_buf_putc(&header, ' ');
    size_t data_bytes = 0;
    for (size_t i = 0; i < tf->count; i++)
        data_bytes += tf->tensors[i].nbytes;
    size_t start = out->len;
    if (!rc && header.len > FM_SAFETENSORS_MAX_HEADER) {
        rc = fm_error_set(err, FM_ELIMIT, "safetensors header of %zu bytes exceeds the limit",
                          header.len);
    } else if (!rc && fm_buf_reserve(out, 8 + header.len + data_bytes) != 0) {
        rc = fm_error_set(err, FM_ENOMEM, "safetensors encoding: out of memory");
    }
    if (rc) {
        fm_buf_free(&header);
        return rc;
    }

    unsigned char size_le[8];
    for (int k = 0; k < 8; k++)
        size_le[k] = (unsigned char)((uint64_t)header.len >> (8 * k));
    fm_buf_append(out, size_le, 8);
    fm_buf_append(out, header.data, header.len);
    for (size_t i = 0; i < tf->count; i++) {
        const fm_tensor_t *t = &tf->tensors[i];
        copy_little_endian(out->data + out->len, t->data, t->nbytes, fm_dtype_size(t->dtype));
        out->len += t->nbytes;
    }
    out->data[out->len] = '\0';
    fm_buf_free(&header);

    char hex[FM_DIGEST_HEX];
    fm_digest_hex(out->data + start, out->len - start, hex);
    memcpy(out->data + start + 8 + strlen(header_opening), hex, CHECKSUM_HEX_LEN);
    return FM_OK;
}

int fm_safetensors_write(const char *path, const fm_tensor_file_t *tf, fm_error_t *err) {
    fm_buf_t buf = FM_BUF_INIT;
    int rc = fm_safetensors_encode(tf, &buf, err);
    if (rc) {
        fm_buf_free(&buf);
        if (err) fm_error_prefix(err, "%s: ", path);
        return rc;
    }
    rc = fm_file_write_atomic(path, buf.data, buf.len, err);
    fm_buf_free(&buf);
    return rc;
}

/* ---- Decoding -------------------------------------------------------------------------------- */

/* A tensor's place in the data section, for the coverage check. */
typedef struct {
    uint64_t begin, end;
    size_t index;
    const char *name; /* borrowed from the parsed header */
} span_t;

static int span_compare(const void *a, const void *b) {
    const span_t *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* item as a non-negative integer no larger than max (exact in a double). */
static int json_uint(const cJSON *item, uint64_t max, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return -1;
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v != floor(v) || v > (double)max) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Validates one tensor entry of the header and fills t (without name or data) and span. */
static int parse_tensor_entry(const cJSON *entry, const char *file, size_t data_len, fm_tensor_t *t,
                              span_t *span, fm_error_t *err) {
    const char *tname = entry->string;
    if (!cJSON_IsObject(entry))
        return fm_error_set(err, FM_EFORMAT, "%s: tensor '%s' is not a JSON object", file, tname);
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL, *field;
    cJSON_ArrayForEach(field, entry) {
        const cJSON **slot = NULL;
        if (strcmp(field->string, "dtype") == 0)
            slot = &dtype;
        else if (strcmp(field->string, "shape") == 0)
            slot = &shape;
        else if (strcmp(field->string, "data_offsets") == 0)
            slot = &offsets;
        if (!slot)
            return fm_error_set(err, FM_EFORMAT, "%s: tensor '%s': unknown field '%s'", file, tname,
                                field->string);
        if (*slot)
            return fm_error_set(err, FM_EFORMAT, "%s: tensor '%s': field '%s' appears twice", file,
                                tname, field->string);
        *slot = field;
    }
    if (!cJSON_IsString(dtype))
        return fm_error_set(err, FM_EFORMAT, "%s: tensor '%s': 'dtype' missing or not a string",
                            file, tname);
    int rc = fm_dtype_parse(dtype->valuestring, &t->dtype);
    if (rc == FM_EUNSUPPORTED)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: tensor '%s': dtype %s is not supported by finmaas", file, tname,
                            dtype->valuestring);
    if (rc)
        return fm_error_set(err, FM_EFORMAT, "%s: tensor '%s': unknown dtype '%.40s'", file, tname,
                            dtype->valuestring);

    if (!cJSON_IsArray(shape))
        return fm_error_set(err, FM_EFORMAT, "%s: tensor '%s': 'shape' missing or not an array",
                            file, tname);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > FM_TENSOR_MAX_DIMS)
        return fm_error_set(err, FM_EFORMAT, "%s: tensor '%s': %d dimensions (at most %d)", file,
                            tname, ndim, FM_TENSOR_MAX_DIMS);
    t->ndim = ndim;
    int d = 0;
    cJSON_ArrayForEach(field, shape) {
        uint64_t dim;
        if (json_uint(field, (uint64_t)MAX_DIM, &dim) != 0)
            return fm_error_set(err, FM_EFORMAT,
                                "%s: tensor '%s': shape[%d] is not a non-negative integer", file,
                                tname, d);
        t->shape[d++] = (int64_t)dim;
    }
    if (shape_bytes(ndim, t->shape, fm_dtype_size(t->dtype), &t->nbytes) != 0)
        return fm_error_set(err, FM_EFORMAT, "%s: tensor '%s': shape size overflows", file, tname);

    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        json_uint(cJSON_GetArrayItem(offsets, 0), UINT64_MAX >> 11, &span->begin) != 0 ||
        json_uint(cJSON_GetArrayItem(offsets, 1), UINT64_MAX >> 11, &span->end) != 0)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: tensor '%s': 'data_offsets' must be two non-negative integers",
                            file, tname);
    if (span->begin > span->end)
        return fm_error_set(
            err, FM_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
            file, tname, (unsigned long long)span->begin, (unsigned long long)span->end);
    if (span->end > data_len)
        return fm_error_set(
            err, FM_EFORMAT,
            "%s: tensor '%s': data_offsets [%llu, %llu] outside the data section of %zu bytes",
            file, tname, (unsigned long long)span->begin, (unsigned long long)span->end, data_len);
    if (span->end - span->begin != t->nbytes)
        return fm_error_set(
            err, FM_EFORMAT,
            "%s: tensor '%s': data_offsets span %llu bytes but shape and dtype need %zu", file,
            tname, (unsigned long long)(span->end - span->begin), t->nbytes);
    return FM_OK;
}

/* Checks the metadata object: string values and unique keys. */
static int check_metadata(const cJSON *meta, const char *file, fm_error_t *err) {
    if (!cJSON_IsObject(meta))
        return fm_error_set(err, FM_EFORMAT, "%s: '%s' is not a JSON object", file, METADATA_KEY);
    fm_strdict_t keys = FM_STRDICT_INIT;
    const cJSON *item;
    int rc = FM_OK;
    cJSON_ArrayForEach(item, meta) {
        if (!cJSON_IsString(item)) {
            rc = fm_error_set(err, FM_EFORMAT, "%s: metadata '%s' is not a string", file,
                              item->string);
            break;
        }
        size_t before = keys.count;
        if (fm_strdict_intern(&keys, item->string, strlen(item->string)) < 0) {
            rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", file);
            break;
        }
        if (keys.count == before) {
            rc = fm_error_set(err, FM_EFORMAT, "%s: metadata '%s' appears twice", file,
                              item->string);
            break;
        }
    }
    fm_strdict_free(&keys);
    return rc;
}

/*
 * Verifies the finmaas checksum. The value is located in the raw header as the text
 * "finmaas_checksum":"<hex>" (the encoder writes exactly that, first in the header); the first
 * place where it appears with the parsed value is taken, and the file is hashed with those 64
 * characters read as '0'. Any other placement of the key makes the digest differ, so a file is
 * accepted only if it is byte for byte what the encoder produced.
 */
static int verify_checksum(const unsigned char *data, size_t len, size_t header_len,
                           const char *value, const char *file, fm_error_t *err) {
    size_t vlen = strlen(value);
    int hex_ok = vlen == CHECKSUM_HEX_LEN;
    for (size_t i = 0; hex_ok && i < vlen; i++)
        hex_ok = (value[i] >= '0' && value[i] <= '9') || (value[i] >= 'a' && value[i] <= 'f');
    if (!hex_ok)
        return fm_error_set(err, FM_EFORMAT, "%s: checksum is not %d lowercase hex digits", file,
                            CHECKSUM_HEX_LEN);
    static const char key[] = "\"" FM_SAFETENSORS_CHECKSUM_KEY "\"";
    const char *header = (const char *)data + 8;
    const char *end = header + header_len;
    const char *at = NULL;
    for (const char *p = header; p < end;) {
        const char *k = memmem(p, (size_t)(end - p), key, sizeof key - 1);
        if (!k) break;
        const char *q = k + sizeof key - 1;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
            q++;
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
                q++;
            if (end - q >= CHECKSUM_HEX_LEN + 2 && q[0] == '"' &&
                memcmp(q + 1, value, CHECKSUM_HEX_LEN) == 0 && q[CHECKSUM_HEX_LEN + 1] == '"') {
                at = q + 1;
                break;
            }
        }
        p = k + 1;
    }
    if (!at)
        return fm_error_set(err, FM_EFORMAT, "%s: checksum field is not in the expected form",
                            file);
    static const char zeros[CHECKSUM_HEX_LEN] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    size_t pos = (size_t)((const unsigned char *)at - data);
    fm_digest_t digest;
    fm_digest_init(&digest);
    fm_digest_update(&digest, data, pos);
    fm_digest_update(&digest, zeros, CHECKSUM_HEX_LEN);
    fm_digest_update(&digest, data + pos + CHECKSUM_HEX_LEN, len - pos - CHECKSUM_HEX_LEN);
    char hex[FM_DIGEST_HEX];
    fm_digest_final_hex(&digest, hex);
    if (memcmp(hex, value, CHECKSUM_HEX_LEN) != 0)
        return fm_error_set(
            err, FM_EFORMAT,
            "%s: checksum mismatch: the file is corrupt (stored %.12s..., computed %.12s...)", file,
            value, hex);
    return FM_OK;
}

/* Validates the parsed header and builds *out (tensor data copied from data_section). */
static int decode_header(cJSON *root, const unsigned char *data_section, size_t data_len,
                         const char *file, fm_tensor_file_t **out, fm_error_t *err) {
    if (!cJSON_IsObject(root))
        return fm_error_set(err, FM_EFORMAT, "%s: header is not a JSON object", file);
    fm_strdict_t names = FM_STRDICT_INIT;
    cJSON *meta = NULL, *item;
    size_t ntensors = 0;
    int rc = FM_OK;
    cJSON_ArrayForEach(item, root) {
        size_t before = names.count;
        if (fm_strdict_intern(&names, item->string, strlen(item->string)) < 0) {
            rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", file);
            break;
        }
        if (names.count == before) {
            rc = fm_error_set(err, FM_EFORMAT, "%s: header names '%s' twice", file, item->string);
            break;
        }
        if (strcmp(item->string, METADATA_KEY) == 0)
            meta = item;
        else
            ntensors++;
    }
    fm_strdict_free(&names);
    if (rc) return rc;
    if (meta && (rc = check_metadata(meta, file, err)) != 0) return rc;

    fm_tensor_file_t *tf = fm_tensor_file_new();
    span_t *spans = malloc((ntensors ? ntensors : 1) * sizeof *spans);
    if (!tf || !spans || !(tf->tensors = calloc(ntensors ? ntensors : 1, sizeof(fm_tensor_t)))) {
        free(spans);
        fm_tensor_file_free(tf);
        return fm_error_set(err, FM_ENOMEM, "%s: out of memory", file);
    }
    size_t i = 0;
    cJSON_ArrayForEach(item, root) {
        if (item == meta) continue;
        rc = parse_tensor_entry(item, file, data_len, &tf->tensors[i], &spans[i], err);
        if (rc) break;
        spans[i].index = i;
        spans[i].name = item->string;
        i++;
    }
    if (!rc) {
        /* Sorted by offset, the spans must tile the data section exactly. */
        qsort(spans, ntensors, sizeof *spans, span_compare);
        uint64_t expected = 0;
        for (size_t k = 0; k < ntensors && !rc; k++) {
            if (spans[k].begin != expected)
                rc = fm_error_set(err, FM_EFORMAT,
                                  "%s: tensor '%s' %s at byte %llu of the data section", file,
                                  spans[k].name,
                                  spans[k].begin < expected ? "overlaps the tensor before it"
                                                            : "leaves a gap before it",
                                  (unsigned long long)spans[k].begin);
            expected = spans[k].end;
        }
        if (!rc && expected != data_len)
            rc = fm_error_set(err, FM_EFORMAT,
                              "%s: tensors cover %llu of the %zu bytes of the data section", file,
                              (unsigned long long)expected, data_len);
    }
    if (!rc) {
        size_t k = 0;
        cJSON_ArrayForEach(item, root) {
            if (item == meta) continue;
            fm_tensor_t *t = &tf->tensors[k];
            t->name = strdup(item->string);
            t->data = malloc(t->nbytes ? t->nbytes : 1);
            tf->count = ++k;
            if (!t->name || !t->data) {
                rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", file);
                break;
            }
        }
        for (k = 0; k < ntensors && !rc; k++) {
            fm_tensor_t *t = &tf->tensors[spans[k].index];
            copy_little_endian(t->data, data_section + spans[k].begin, t->nbytes,
                               fm_dtype_size(t->dtype));
        }
    }
    free(spans);
    if (!rc && meta) tf->metadata = cJSON_DetachItemViaPointer(root, meta);
    if (rc) {
        fm_tensor_file_free(tf);
        return rc;
    }
    *out = tf;
    return FM_OK;
}

int fm_safetensors_decode(const void *data, size_t len, const char *name, int require_checksum,
                          fm_tensor_file_t **out, fm_error_t *err) {
    *out = NULL;
    const char *file = name ? name : "safetensors data";
    const unsigned char *bytes = data;
    if (!data || len < 8)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: truncated: %zu bytes, a safetensors file has at least 8", file,
                            len);
    uint64_t header_len = 0;
    for (int k = 0; k < 8; k++)
        header_len |= (uint64_t)bytes[k] << (8 * k);
    if (header_len == 0) return fm_error_set(err, FM_EFORMAT, "%s: header is empty", file);
    if (header_len > FM_SAFETENSORS_MAX_HEADER)
        return fm_error_set(err, FM_EFORMAT, "%s: header length %llu exceeds the limit of %u bytes",
                            file, (unsigned long long)header_len, FM_SAFETENSORS_MAX_HEADER);
    if (header_len > len - 8)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: header length %llu runs past the end of the file (%zu bytes)",
                            file, (unsigned long long)header_len, len);
    const char *header = (const char *)bytes + 8;
    size_t hlen = (size_t)header_len;
    if (header[0] != '{')
        return fm_error_set(err, FM_EFORMAT, "%s: header does not start with '{'", file);
    size_t bad = utf8_check((const unsigned char *)header, hlen);
    if (bad != hlen)
        return fm_error_set(err, FM_EFORMAT, "%s: header is not valid UTF-8 at byte %zu", file,
                            bad);

    cJSON *root = NULL;
    fm_error_t parse_err;
    if (fm_json_parse(header, hlen, "header", &root, &parse_err) != 0)
        return fm_error_set(err, FM_EFORMAT, "%s: %s", file, parse_err.msg);
    fm_tensor_file_t *tf = NULL;
    int rc = decode_header(root, bytes + 8 + hlen, len - 8 - hlen, file, &tf, err);
    cJSON_Delete(root);
    if (rc) return rc;

    const char *checksum = fm_tensor_file_get_metadata(tf, FM_SAFETENSORS_CHECKSUM_KEY);
    if (checksum) {
        rc = verify_checksum(bytes, len, hlen, checksum, file, err);
    } else if (require_checksum) {
        rc = fm_error_set(err, FM_EFORMAT, "%s: no finmaas checksum ('%s' metadata missing)", file,
                          FM_SAFETENSORS_CHECKSUM_KEY);
    }
    if (rc) {
        fm_tensor_file_free(tf);
        return rc;
    }
    *out = tf;
    return FM_OK;
}

int fm_safetensors_read(const char *path, int require_checksum, fm_tensor_file_t **out,
                        fm_error_t *err) {
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = fm_file_read_all(path, FM_SAFETENSORS_MAX_FILE, &data, &len, err);
    if (rc) return rc;
    rc = fm_safetensors_decode(data, len, path, require_checksum, out, err);
    free(data);
    return rc;
}
