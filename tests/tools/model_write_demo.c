/*
 * model_write_demo: writes a small safetensors file with known values through
 * fm_safetensors_write, for tests/ref/test_safetensors.py to read with an independent parser.
 * Usage: model_write_demo PATH. The values here are repeated in the script; change both together.
 */
#include "model/safetensors.h"

#include <math.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH\n", argv[0]);
        return 2;
    }
    const double weight[6] = {1.0, -2.5, 3.141592653589793, -0.0, 5e-324, 1.7976931348623157e308};
    const float bias[3] = {0.1f, -1e-38f, 3.4028235e38f};
    const int64_t counts[4] = {0, -1, INT64_MAX, INT64_MIN};
    const int32_t ids[4] = {7, -7, INT32_MAX, INT32_MIN};
    const uint8_t mask[5] = {0, 1, 2, 128, 255};
    const double scalar = 0.1;
    const double special[3] = {INFINITY, -INFINITY, NAN};
    const int64_t s23[2] = {2, 3}, s3[1] = {3}, s4[1] = {4}, s22[2] = {2, 2}, s5[1] = {5},
                  s0[1] = {0}, s130[3] = {1, 3, 1};

    fm_tensor_file_t *tf = fm_tensor_file_new();
    fm_error_t err;
    int rc = tf ? 0 : FM_ENOMEM;
    if (!rc) rc = fm_tensor_file_add(tf, "layers.0.weight", FM_DTYPE_F64, 2, s23, weight, &err);
    if (!rc) rc = fm_tensor_file_add(tf, "layers.0.bias", FM_DTYPE_F32, 1, s3, bias, &err);
    if (!rc) rc = fm_tensor_file_add(tf, "counts", FM_DTYPE_I64, 1, s4, counts, &err);
    if (!rc) rc = fm_tensor_file_add(tf, "ids", FM_DTYPE_I32, 2, s22, ids, &err);
    if (!rc) rc = fm_tensor_file_add(tf, "mask", FM_DTYPE_U8, 1, s5, mask, &err);
    if (!rc) rc = fm_tensor_file_add(tf, "scalar", FM_DTYPE_F64, 0, NULL, &scalar, &err);
    if (!rc) rc = fm_tensor_file_add(tf, "empty", FM_DTYPE_F32, 1, s0, NULL, &err);
    if (!rc)
        rc = fm_tensor_file_add(tf, "special \"quoted\" \xc3\xa9", FM_DTYPE_F64, 3, s130, special,
                                &err);
    if (!rc) rc = fm_tensor_file_set_metadata(tf, "format", "finmaas-demo");
    if (!rc) rc = fm_tensor_file_set_metadata(tf, "note", "h\xc3\xa9llo \"quoted\"\n\\ {}");
    if (!rc) rc = fm_safetensors_write(argv[1], tf, &err);
    fm_tensor_file_free(tf);
    if (rc) {
        fprintf(stderr, "error: %s\n", fm_error_message(&err));
        return 1;
    }
    return 0;
}
