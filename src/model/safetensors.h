/*
 * The safetensors container: the on-disk layout of every finmaas model file (.fmm).
 *
 * Layout (https://github.com/huggingface/safetensors): 8 bytes little-endian u64 N, then N bytes
 * of JSON header, then the tensor data. The header maps each tensor name to
 * {"dtype": "F64", "shape": [..], "data_offsets": [begin, end]} (offsets relative to the data
 * section), plus an optional "__metadata__" object whose values are all strings. The header is
 * padded with spaces to a multiple of 8 bytes. Python's safetensors package reads these files.
 *
 * Integrity: finmaas adds the metadata key "finmaas_checksum", the BLAKE2b-256 (hex) of the
 * whole file as written with those 64 hex characters set to '0'. Decoding with require_checksum
 * rejects a file whose checksum is absent or wrong, so a flipped bit anywhere that matters is an
 * error rather than a silently different model.
 *
 * Decoding validates everything before trusting it: the header length against the file size and
 * FM_SAFETENSORS_MAX_HEADER, the JSON, each dtype, each shape (non-negative, at most
 * FM_TENSOR_MAX_DIMS dimensions, no overflow), that each span equals shape x dtype size, that
 * spans lie inside the data section and cover it exactly without overlap, unique names, and
 * string-only metadata. Any failure is FM_EFORMAT with a message naming the file and the tensor
 * or field; never a crash.
 */
#ifndef FM_MODEL_SAFETENSORS_H
#define FM_MODEL_SAFETENSORS_H

#include "core/buf.h"
#include "core/error.h"

#include <cJSON.h>
#include <stdint.h>

#define FM_TENSOR_MAX_DIMS          8
#define FM_SAFETENSORS_MAX_HEADER   (100u << 20)
#define FM_SAFETENSORS_CHECKSUM_KEY "finmaas_checksum"

typedef enum {
    FM_DTYPE_F64 = 0,
    FM_DTYPE_F32 = 1,
    FM_DTYPE_I64 = 2,
    FM_DTYPE_I32 = 3,
    FM_DTYPE_U8 = 4,
} fm_dtype_t;

/* "F64", "F32", "I64", "I32", "U8". */
const char *fm_dtype_name(fm_dtype_t dtype);
size_t fm_dtype_size(fm_dtype_t dtype);
/* Parses a safetensors dtype name; FM_EUNSUPPORTED for valid names finmaas does not use. */
int fm_dtype_parse(const char *text, fm_dtype_t *out);

typedef struct fm_tensor {
    char *name; /* owned */
    fm_dtype_t dtype;
    int ndim;
    int64_t shape[FM_TENSOR_MAX_DIMS];
    void *data; /* owned, nbytes, suitably aligned for dtype */
    size_t nbytes;
} fm_tensor_t;

typedef struct fm_tensor_file {
    size_t count;
    fm_tensor_t *tensors; /* owned; in file order (decode) or insertion order (encode) */
    cJSON *metadata;      /* owned object of string values, or NULL */
} fm_tensor_file_t;

/* A new, empty tensor file (caller frees with fm_tensor_file_free). NULL on allocation failure. */
fm_tensor_file_t *fm_tensor_file_new(void);
/* Adds a tensor, copying name and data (prod(shape) * dtype size bytes). Names must be unique. */
int fm_tensor_file_add(fm_tensor_file_t *tf, const char *name, fm_dtype_t dtype, int ndim,
                       const int64_t *shape, const void *data, fm_error_t *err);
/* Sets metadata[key] = value (both copied). */
int fm_tensor_file_set_metadata(fm_tensor_file_t *tf, const char *key, const char *value);
/* metadata[key] or NULL (borrowed). */
const char *fm_tensor_file_get_metadata(const fm_tensor_file_t *tf, const char *key);
/* The tensor called name or NULL (borrowed). */
const fm_tensor_t *fm_tensor_file_find(const fm_tensor_file_t *tf, const char *name);
/* Number of elements of a tensor. */
size_t fm_tensor_elements(const fm_tensor_t *t);
void fm_tensor_file_free(fm_tensor_file_t *tf);

/* Serialises tf into out (appended), with the checksum added to the metadata. */
int fm_safetensors_encode(const fm_tensor_file_t *tf, fm_buf_t *out, fm_error_t *err);
/* Writes tf to path atomically (temporary file, fsync, rename): all or nothing. */
int fm_safetensors_write(const char *path, const fm_tensor_file_t *tf, fm_error_t *err);

/*
 * Parses and validates len bytes at data; name is used in messages. With require_checksum the
 * finmaas checksum must be present and match. *out is owned by the caller.
 */
int fm_safetensors_decode(const void *data, size_t len, const char *name, int require_checksum,
                          fm_tensor_file_t **out, fm_error_t *err);
/* Reads path (at most FM_SAFETENSORS_MAX_FILE bytes) and decodes it. */
#define FM_SAFETENSORS_MAX_FILE ((size_t)4 << 30)
int fm_safetensors_read(const char *path, int require_checksum, fm_tensor_file_t **out,
                        fm_error_t *err);

#endif
