/*
 * model_safetensors_dump: prints a safetensors file as JSON so that the reference scripts can
 * compare what finmaas reads with what Python wrote. Usage:
 *   model_safetensors_dump [--require-checksum] FILE
 * Output: {"metadata": {key: value, ...}, "tensors": [{"name", "dtype", "shape", "values"}]}
 * with tensors in file order and values flattened row-major. Floating-point values print as the
 * shortest text that reads back exactly; non-finite ones as the strings "nan", "inf", "-inf" so
 * that the output stays strict JSON. Errors go to stderr with exit status 1.
 */
#include "core/buf.h"
#include "model/safetensors.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void put_float(fm_buf_t *b, double v) {
    if (isnan(v))
        fm_buf_puts(b, "\"nan\"");
    else if (isinf(v))
        fm_buf_puts(b, v > 0 ? "\"inf\"" : "\"-inf\"");
    else if (v == 0 && signbit(v))
        fm_buf_puts(b, "-0.0");
    else
        fm_buf_json_number(b, v);
}

static void put_tensor(fm_buf_t *b, const fm_tensor_t *t) {
    fm_buf_puts(b, "{\"name\":");
    fm_buf_json_string(b, t->name, strlen(t->name));
    fm_buf_printf(b, ",\"dtype\":\"%s\",\"shape\":[", fm_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
        fm_buf_printf(b, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
    fm_buf_puts(b, "],\"values\":[");
    size_t n = fm_tensor_elements(t);
    for (size_t i = 0; i < n; i++) {
        if (i) fm_buf_putc(b, ',');
        switch (t->dtype) {
        case FM_DTYPE_F64:
            put_float(b, ((const double *)t->data)[i]);
            break;
        case FM_DTYPE_F32:
            put_float(b, ((const float *)t->data)[i]);
            break;
        case FM_DTYPE_I64:
            fm_buf_printf(b, "%" PRId64, ((const int64_t *)t->data)[i]);
            break;
        case FM_DTYPE_I32:
            fm_buf_printf(b, "%" PRId32, ((const int32_t *)t->data)[i]);
            break;
        case FM_DTYPE_U8:
            fm_buf_printf(b, "%u", ((const uint8_t *)t->data)[i]);
            break;
        }
    }
    fm_buf_puts(b, "]}");
}

int main(int argc, char **argv) {
    int require = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--require-checksum") == 0)
            require = 1;
        else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: %s [--require-checksum] FILE\n", argv[0]);
        return 2;
    }
    fm_tensor_file_t *tf = NULL;
    fm_error_t err;
    if (fm_safetensors_read(path, require, &tf, &err) != 0) {
        fprintf(stderr, "error: %s\n", fm_error_message(&err));
        return 1;
    }
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "{\"metadata\":{");
    const cJSON *item;
    int first = 1;
    cJSON_ArrayForEach(item, tf->metadata) {
        if (!first) fm_buf_putc(&b, ',');
        first = 0;
        fm_buf_json_string(&b, item->string, strlen(item->string));
        fm_buf_putc(&b, ':');
        fm_buf_json_string(&b, item->valuestring, strlen(item->valuestring));
    }
    fm_buf_puts(&b, "},\"tensors\":[");
    for (size_t i = 0; i < tf->count; i++) {
        if (i) fm_buf_putc(&b, ',');
        put_tensor(&b, &tf->tensors[i]);
    }
    fm_buf_puts(&b, "]}\n");
    fwrite(b.data, 1, b.len, stdout);
    fm_buf_free(&b);
    fm_tensor_file_free(tf);
    return 0;
}
