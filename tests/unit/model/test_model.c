/*
 * Tests of the model: for each task a model is built by hand (a frame from a small CSV file, a
 * fitted preprocessing, a network with random weights and biases), saved, loaded, and compared
 * with the original: description text and predictions bit for bit. Predictions are also checked
 * against a forward pass written out here from the formulas (dense layers, activations, the
 * regression target scaling). Damaged and inconsistent model files (truncated, bit-flipped, a
 * newer format version, tensors that do not fit the architecture, preprocessing of the wrong
 * width) must be refused with a message that names the file.
 */
#include "core/buf.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/rng.h"
#include "model/model.h"
#include "fm_test.h"
#include "fm_test_fs.h"
#include "model_test.h"

#include <dirent.h>
#include <float.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    FM_CHECK(fp != NULL);
    if (!fp) return;
    fputs(text, fp);
    fclose(fp);
}

/* A CSV of nrows rows: two numeric columns (one with missing values), a categorical column (with
 * a missing value), and one target per task. */
static fm_frame_t *make_frame(size_t nrows) {
    static const char *const homes[] = {"rent", "own", "other", "", "rent", "own", "parents"};
    static const char *const bins[] = {"good", "bad"};
    static const char *const multi[] = {"a", "b", "c"};
    fm_buf_t csv = FM_BUF_INIT;
    fm_buf_puts(&csv, "income,age,home,status,kind,amount\n");
    for (size_t i = 0; i < nrows; i++) {
        if (i % 5 == 3)
            fm_buf_puts(&csv, "NA,");
        else
            fm_buf_printf(&csv, "%.2f,", 1000.0 + 37.5 * (double)((i * 7) % 23));
        fm_buf_printf(&csv, "%zu,%s,%s,%s,%.3f\n", 20 + (i * 13) % 47, homes[i % 7], bins[i % 2],
                      multi[(i / 2) % 3], 3.0 + 0.25 * (double)(i % 11));
    }
    char path[128];
    fm_test_scratch_path(path, sizeof path, "data.csv");
    write_text(path, csv.data);
    fm_buf_free(&csv);
    fm_frame_t *frame = NULL;
    fm_error_t err;
    int rc = fm_frame_read_csv(path, NULL, &frame, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    unlink(path);
    return frame;
}

/* A model for task over frame, with random weights and biases drawn from seed. */
static fm_model_t *make_model(const fm_frame_t *frame, fm_task_t task, uint64_t seed) {
    fm_model_t *m = fm_model_new();
    fm_error_t err;
    size_t cols[3] = {(size_t)fm_frame_find(frame, "income"), (size_t)fm_frame_find(frame, "age"),
                      (size_t)fm_frame_find(frame, "home")};
    fm_prep_options_t opts = {1, 0};
    int rc = fm_prep_fit(frame, cols, 3, NULL, frame->nrows, &opts, &m->prep, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    int nf = (int)m->prep->nfeatures;
    m->task = task;
    if (task == FM_TASK_BINARY) {
        static const char *const labels[] = {"bad", "good"};
        int sizes[3] = {nf, 4, 1};
        rc = fm_net_new(sizes, 3, FM_ACT_RELU, FM_ACT_SIGMOID, &m->net, &err);
        m->loss = FM_LOSS_BINARY;
        m->family = strdup("mlp");
        m->target = strdup("status");
        m->nclasses = 2;
        m->classes = copy_classes(labels, 2);
    } else if (task == FM_TASK_MULTICLASS) {
        static const char *const labels[] = {"a", "b", "c"};
        int sizes[2] = {nf, 3};
        rc = fm_net_new(sizes, 2, FM_ACT_RELU, FM_ACT_SOFTMAX, &m->net, &err);
        m->loss = FM_LOSS_CATEGORICAL;
        m->family = strdup("softmax");
        m->target = strdup("kind");
        m->nclasses = 3;
        m->classes = copy_classes(labels, 3);
    } else {
        int sizes[4] = {nf, 5, 3, 1};
        rc = fm_net_new(sizes, 4, FM_ACT_TANH, FM_ACT_IDENTITY, &m->net, &err);
        m->loss = FM_LOSS_MSE;
        m->family = strdup("mlp");
        m->target = strdup("amount");
        m->target_mean = 4.2731;
        m->target_std = 0.8125;
    }
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    fm_net_init_weights(m->net, &rng);
    for (int l = 0; l < m->net->nlayers; l++)
        for (int o = 0; o < m->net->sizes[l + 1]; o++)
            m->net->params[m->net->bias_offset[l] + (size_t)o] = fm_rng_uniform(&rng) - 0.5;
    cJSON_AddStringToObject(m->info, "created", "2024-06-11T08:30:00Z");
    cJSON *training = cJSON_AddObjectToObject(m->info, "training");
    cJSON_AddNumberToObject(training, "epochs", 12);
    cJSON_AddNumberToObject(training, "learning_rate", 0.1 / 3.0);
    cJSON *validation = cJSON_AddObjectToObject(m->info, "validation");
    cJSON_AddNumberToObject(validation, "auc", 0.8123456789012345);
    cJSON *data = cJSON_AddObjectToObject(m->info, "data");
    cJSON_AddStringToObject(data, "digest", frame->digest);
    cJSON_AddStringToObject(m->info, "notes", "h\xc3\xa9llo \"world\"");
    FM_CHECK_INT(fm_model_ready(m, &err), 0);
    return m;
}

/* The model's output for encoded rows x[n, nf], computed from the formulas. */
static void reference_predict(const fm_model_t *m, const double *x, size_t n, double *out) {
    const fm_net_t *net = m->net;
    double a[64], b[64];
    for (size_t r = 0; r < n; r++) {
        int in_width = net->sizes[0];
        for (int j = 0; j < in_width; j++)
            a[j] = x[r * (size_t)in_width + (size_t)j];
        for (int l = 0; l < net->nlayers; l++) {
            int I = net->sizes[l], O = net->sizes[l + 1];
            const double *W = net->params + net->weight_offset[l];
            const double *bias = net->params + net->bias_offset[l];
            fm_activation_t act = l + 1 < net->nlayers ? net->hidden : net->output;
            double zmax = -DBL_MAX, zsum = 0.0;
            for (int o = 0; o < O; o++) {
                double z = bias[o];
                for (int i = 0; i < I; i++)
                    z += a[i] * W[(size_t)i * (size_t)O + (size_t)o];
                b[o] = z;
                if (z > zmax) zmax = z;
            }
            for (int o = 0; o < O; o++) {
                double z = b[o];
                switch (act) {
                case FM_ACT_RELU:
                    b[o] = z > 0 ? z : 0;
                    break;
                case FM_ACT_TANH:
                    b[o] = tanh(z);
                    break;
                case FM_ACT_SIGMOID:
                    b[o] = 1.0 / (1.0 + exp(-z));
                    break;
                case FM_ACT_SOFTMAX:
                    b[o] = exp(z - zmax), zsum += b[o];
                    break;
                case FM_ACT_IDENTITY:
                    break;
                }
            }
            if (act == FM_ACT_SOFTMAX)
                for (int o = 0; o < O; o++)
                    b[o] /= zsum;
            memcpy(a, b, (size_t)O * sizeof *a);
        }
        size_t width = fm_model_output_width(m);
        for (size_t k = 0; k < width; k++)
            out[r * width + k] =
                m->task == FM_TASK_REGRESSION ? m->target_mean + m->target_std * a[k] : a[k];
    }
}

/* Encoded rows and predictions of every row of frame, through fm_model_predict_encoded. */
static double *predict_all(const fm_model_t *m, const fm_frame_t *frame, double **encoded) {
    size_t n = frame->nrows, nf = m->prep->nfeatures, width = fm_model_output_width(m);
    double *x = malloc(n * nf * sizeof *x), *out = malloc(n * width * sizeof *out);
    fm_error_t err;
    FM_CHECK_INT(fm_prep_transform(m->prep, frame, NULL, n, x, &err), 0);
    fm_model_workspace_t *ws = NULL;
    FM_CHECK_INT(fm_model_workspace_new(m, 16, &ws, &err), 0);
    FM_CHECK_INT(fm_model_predict_encoded(m, ws, x, n, out), 0);
    fm_model_workspace_free(ws);
    if (encoded)
        *encoded = x;
    else
        free(x);
    return out;
}

static void check_round_trip(fm_task_t task) {
    fm_frame_t *frame = make_frame(40);
    if (!frame) return;
    fm_model_t *m = make_model(frame, task, 1000 + (uint64_t)task);
    char path[128];
    fm_test_scratch_path(path, sizeof path, "model.fmm");
    fm_error_t err;
    FM_CHECK_MSG(fm_model_save(m, path, &err) == 0, "%s", err.msg);
    fm_model_t *back = NULL;
    FM_CHECK_MSG(fm_model_load(path, &back, &err) == 0, "%s", err.msg);
    if (!back) {
        fm_model_free(m);
        fm_frame_free(frame);
        return;
    }

    /* The description survives byte for byte, and says what the model is. */
    char *before = describe_text(m), *after = describe_text(back);
    FM_CHECK_STR(after, before);
    cJSON *d = fm_model_describe(back);
    const cJSON *item;
    FM_CHECK_INT(cJSON_GetObjectItem(d, "format_version")->valuedouble, FM_MODEL_FORMAT_VERSION);
    FM_CHECK_STR(cJSON_GetObjectItem(d, "finmaas_version")->valuestring, FM_VERSION);
    FM_CHECK_STR(cJSON_GetObjectItem(d, "task")->valuestring, fm_task_name(task));
    FM_CHECK_STR(cJSON_GetObjectItem(d, "target")->valuestring, m->target);
    FM_CHECK_STR(cJSON_GetObjectItem(d, "created")->valuestring, "2024-06-11T08:30:00Z");
    FM_CHECK_STR(cJSON_GetObjectItem(d, "notes")->valuestring, "h\xc3\xa9llo \"world\"");
    FM_CHECK(
        cJSON_GetObjectItem(cJSON_GetObjectItem(d, "training"), "learning_rate")->valuedouble ==
        0.1 / 3.0);
    const cJSON *features = cJSON_GetObjectItem(d, "features");
    FM_CHECK_INT(cJSON_GetArraySize(features), 3);
    const cJSON *home = cJSON_GetArrayItem(features, 2);
    FM_CHECK_STR(cJSON_GetObjectItem(home, "name")->valuestring, "home");
    FM_CHECK_STR(cJSON_GetObjectItem(home, "type")->valuestring, "categorical");
    FM_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(home, "categories")) >= 3);
    FM_CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(features, 0), "type")->valuestring,
                 "numeric");
    const cJSON *enc = cJSON_GetObjectItem(d, "encoded_features");
    FM_CHECK_INT(cJSON_GetObjectItem(enc, "count")->valuedouble, m->prep->nfeatures);
    FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(enc, "names")), m->prep->nfeatures);
    FM_CHECK_STR(cJSON_GetArrayItem(cJSON_GetObjectItem(enc, "names"), 0)->valuestring, "income");
    const cJSON *arch = cJSON_GetObjectItem(d, "architecture");
    FM_CHECK_INT(cJSON_GetObjectItem(arch, "parameters")->valuedouble, m->net->nparams);
    FM_CHECK_STR(cJSON_GetObjectItem(arch, "loss")->valuestring, fm_loss_name(m->loss));
    FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(arch, "sizes")), m->net->nlayers + 1);
    FM_CHECK(cJSON_GetObjectItem(d, "preprocessing") != NULL);
    if (task == FM_TASK_REGRESSION) {
        const cJSON *s = cJSON_GetObjectItem(d, "target_scaling");
        FM_CHECK(cJSON_GetObjectItem(s, "mean")->valuedouble == m->target_mean);
        FM_CHECK(cJSON_GetObjectItem(s, "std")->valuedouble == m->target_std);
        FM_CHECK(cJSON_GetObjectItem(d, "classes") == NULL);
    } else {
        const cJSON *classes = cJSON_GetObjectItem(d, "classes");
        FM_CHECK_INT(cJSON_GetArraySize(classes), m->nclasses);
        size_t k = 0;
        cJSON_ArrayForEach(item, classes) FM_CHECK_STR(item->valuestring, m->classes[k++]);
        if (task == FM_TASK_BINARY)
            FM_CHECK_STR(cJSON_GetObjectItem(d, "positive_class")->valuestring, "good");
    }
    cJSON_Delete(d);
    free(before);
    free(after);

    /* The loaded parts equal the saved ones. */
    FM_CHECK_INT(back->task, m->task);
    FM_CHECK_STR(back->family, m->family);
    FM_CHECK_INT(back->loss, m->loss);
    FM_CHECK_INT(back->net->nparams, m->net->nparams);
    FM_CHECK(memcmp(back->net->params, m->net->params, m->net->nparams * sizeof(double)) == 0);
    FM_CHECK(back->target_mean == m->target_mean && back->target_std == m->target_std);
    FM_CHECK(cJSON_GetObjectItem(back->info, "finmaas_version") != NULL);
    FM_CHECK(cJSON_GetObjectItem(back->info, "task") == NULL);

    /* Predictions: identical bit for bit, and equal to the formulas. */
    size_t n = frame->nrows, width = fm_model_output_width(m);
    FM_CHECK_INT(width, task == FM_TASK_MULTICLASS ? 3 : 1);
    double *x = NULL;
    double *p1 = predict_all(m, frame, &x), *p2 = predict_all(back, frame, NULL);
    FM_CHECK(memcmp(p1, p2, n * width * sizeof *p1) == 0);
    double *p3 = malloc(n * width * sizeof *p3), *ref = malloc(n * width * sizeof *ref);
    FM_CHECK_MSG(fm_model_predict_frame(back, frame, p3, &err) == 0, "%s", err.msg);
    FM_CHECK(memcmp(p1, p3, n * width * sizeof *p1) == 0);
    reference_predict(m, x, n, ref);
    char label[64];
    snprintf(label, sizeof label, "%s predictions vs formulas", fm_task_name(task));
    /* Predictions run in single precision (fm_net32_t); the reference runs in double. */
    FM_CHECK(fm_test_max_diff(label, p1, ref, n * width) < 1e-5);
    for (size_t r = 0; r < n; r++) {
        if (task == FM_TASK_BINARY) FM_CHECK(p1[r] > 0 && p1[r] < 1);
        if (task == FM_TASK_MULTICLASS)
            FM_CHECK_NEAR(p1[3 * r] + p1[3 * r + 1] + p1[3 * r + 2], 1.0, 1e-12);
    }

    /* Encoding to memory gives the file's bytes; saving the loaded model gives them again. */
    char *file = NULL;
    size_t file_len = 0;
    FM_CHECK_INT(fm_file_read_all(path, 1 << 24, &file, &file_len, &err), 0);
    fm_buf_t mem = FM_BUF_INIT, again = FM_BUF_INIT;
    FM_CHECK_INT(fm_model_encode(m, &mem, &err), 0);
    FM_CHECK(mem.len == file_len && memcmp(mem.data, file, file_len) == 0);
    FM_CHECK_INT(fm_model_encode(back, &again, &err), 0);
    FM_CHECK(again.len == file_len && memcmp(again.data, file, file_len) == 0);
    fm_model_t *decoded = NULL;
    FM_CHECK_MSG(fm_model_decode(mem.data, mem.len, "memory", &decoded, &err) == 0, "%s", err.msg);
    fm_model_free(decoded);

    /* The file is a safetensors file with the layout model.h documents. */
    fm_tensor_file_t *tf = NULL;
    FM_CHECK_INT(fm_safetensors_decode(file, file_len, "model", 1, &tf, &err), 0);
    if (tf) {
        FM_CHECK_INT(tf->count, 2 * (size_t)m->net->nlayers);
        const fm_tensor_t *w0 = fm_tensor_file_find(tf, "layers.0.weight");
        FM_CHECK(w0 && w0->dtype == FM_DTYPE_F64 && w0->ndim == 2 &&
                 w0->shape[0] == m->net->sizes[0] && w0->shape[1] == m->net->sizes[1]);
        FM_CHECK_STR(fm_tensor_file_get_metadata(tf, "format"), "finmaas");
        FM_CHECK(fm_tensor_file_get_metadata(tf, FM_MODEL_METADATA_KEY) != NULL);
    }
    fm_tensor_file_free(tf);

    fm_buf_free(&mem);
    fm_buf_free(&again);
    free(file);
    free(x);
    free(p1);
    free(p2);
    free(p3);
    free(ref);
    unlink(path);
    fm_model_free(back);
    fm_model_free(m);
    fm_frame_free(frame);
}

static void test_round_trip_binary(void) {
    check_round_trip(FM_TASK_BINARY);
}

static void test_round_trip_multiclass(void) {
    check_round_trip(FM_TASK_MULTICLASS);
}

static void test_round_trip_regression(void) {
    check_round_trip(FM_TASK_REGRESSION);
}

/* More rows than one encoding chunk: predict_frame must agree with one pass over all rows. */
static void test_predict_frame_chunks(void) {
    fm_frame_t *frame = make_frame(2600);
    if (!frame) return;
    for (int t = 0; t < 3; t++) {
        fm_model_t *m = make_model(frame, (fm_task_t)t, 77);
        size_t n = frame->nrows * fm_model_output_width(m);
        double *all = predict_all(m, frame, NULL), *chunked = malloc(n * sizeof *chunked);
        fm_error_t err;
        FM_CHECK_INT(fm_model_predict_frame(m, frame, chunked, &err), 0);
        FM_CHECK(memcmp(all, chunked, n * sizeof *all) == 0);
        free(all);
        free(chunked);
        fm_model_free(m);
    }
    fm_frame_free(frame);
}

static void test_labels(void) {
    fm_frame_t *frame = make_frame(20);
    if (!frame) return;
    fm_model_t *b = make_model(frame, FM_TASK_BINARY, 1);
    double p;
    p = 0.5;
    FM_CHECK_STR(fm_model_label(b, &p), "good");
    p = 0.4999999;
    FM_CHECK_STR(fm_model_label(b, &p), "bad");
    p = 1.0;
    FM_CHECK_STR(fm_model_label(b, &p), "good");
    p = NAN;
    FM_CHECK_STR(fm_model_label(b, &p), "bad");
    fm_model_t *mc = make_model(frame, FM_TASK_MULTICLASS, 2);
    double row[3] = {0.2, 0.5, 0.3};
    FM_CHECK_STR(fm_model_label(mc, row), "b");
    double tie[3] = {0.4, 0.2, 0.4};
    FM_CHECK_STR(fm_model_label(mc, tie), "a");
    double nan_first[3] = {NAN, 0.1, 0.9};
    FM_CHECK_STR(fm_model_label(mc, nan_first), "c");
    fm_model_t *r = make_model(frame, FM_TASK_REGRESSION, 3);
    p = 4.0;
    FM_CHECK(fm_model_label(r, &p) == NULL);
    fm_model_free(b);
    fm_model_free(mc);
    fm_model_free(r);
    fm_frame_free(frame);
}

static void test_task_names(void) {
    fm_task_t t = FM_TASK_REGRESSION;
    FM_CHECK_INT(fm_task_parse("binary", &t), 0);
    FM_CHECK_INT(t, FM_TASK_BINARY);
    FM_CHECK_INT(fm_task_parse("multiclass", &t), 0);
    FM_CHECK_INT(t, FM_TASK_MULTICLASS);
    FM_CHECK_INT(fm_task_parse("regression", &t), 0);
    FM_CHECK_INT(t, FM_TASK_REGRESSION);
    FM_CHECK(fm_task_parse("Binary", &t) < 0);
    FM_CHECK(fm_task_parse("", &t) < 0);
    FM_CHECK_STR(fm_task_name(FM_TASK_MULTICLASS), "multiclass");
    /* An empty model describes itself without crashing and cannot be saved. */
    fm_model_t *m = fm_model_new();
    cJSON *d = fm_model_describe(m);
    FM_CHECK(d != NULL);
    cJSON_Delete(d);
    fm_buf_t buf = FM_BUF_INIT;
    fm_error_t err;
    FM_CHECK(fm_model_encode(m, &buf, &err) < 0);
    FM_CHECK_INT(buf.len, 0);
    fm_buf_free(&buf);
    fm_model_free(m);
    fm_model_free(NULL);
}

/* ---- Damaged and inconsistent files ---------------------------------------------------------- */

static void test_load_errors(void) {
    fm_frame_t *frame = make_frame(30);
    if (!frame) return;
    fm_model_t *m = make_model(frame, FM_TASK_BINARY, 5);
    fm_buf_t file = FM_BUF_INIT, bad = FM_BUF_INIT;
    fm_error_t err;
    FM_CHECK_INT(fm_model_encode(m, &file, &err), 0);

    /* Every truncation. */
    for (size_t len = 0; len < file.len; len++)
        expect_refused(file.data, len, NULL, FM_EFORMAT);

    /* A flipped bit at every byte: the checksum covers the whole file. */
    for (size_t i = 0; i < file.len; i++) {
        fm_buf_reset(&bad);
        fm_buf_append(&bad, file.data, file.len);
        bad.data[i] = (char)(bad.data[i] ^ (1 << (i % 8)));
        expect_refused(bad.data, bad.len, NULL, FM_EFORMAT);
    }

    /* No checksum at all (the key renamed, same length). */
    fm_buf_reset(&bad);
    fm_buf_append(&bad, file.data, file.len);
    char *key = strstr(bad.data + 8, "finmaas_checksum");
    FM_CHECK(key != NULL);
    if (key) key[strlen("finmaas_checksu")] = 'x';
    expect_refused(bad.data, bad.len, "checksum", FM_EFORMAT);

    fm_tensor_file_t *tf = NULL;
    FM_CHECK_INT(fm_safetensors_decode(file.data, file.len, "model", 1, &tf, &err), 0);
    if (!tf) goto done;

    /* A newer format version, with a valid checksum. */
    {
        fm_tensor_file_t *edited = copy_except(tf, NULL);
        cJSON *d = get_description(edited);
        cJSON_ReplaceItemInObject(d, "format_version", cJSON_CreateNumber(7));
        set_description(edited, d);
        fm_buf_t buf = FM_BUF_INIT;
        FM_CHECK_INT(fm_safetensors_encode(edited, &buf, NULL), 0);
        fm_model_t *out = NULL;
        FM_CHECK_INT(fm_model_decode(buf.data, buf.len, "future.fmm", &out, &err), FM_EUNSUPPORTED);
        FM_CHECK_STR(
            err.msg,
            "model file future.fmm: format version 7 is newer than this finmaas supports (1)");
        /* And through a file on disk. */
        char path[128];
        fm_test_scratch_path(path, sizeof path, "future.fmm");
        FM_CHECK_INT(fm_file_write_atomic(path, buf.data, buf.len, &err), 0);
        FM_CHECK_INT(fm_model_load(path, &out, &err), FM_EUNSUPPORTED);
        FM_CHECK(strstr(err.msg, path) != NULL && strstr(err.msg, "format version 7") != NULL);
        unlink(path);
        fm_buf_free(&buf);
        cJSON_Delete(d);
        fm_tensor_file_free(edited);
    }

    /* A tensor whose shape does not match the architecture (same number of values). */
    {
        const fm_tensor_t *w = fm_tensor_file_find(tf, "layers.0.weight");
        fm_tensor_file_t *edited = copy_except(tf, "layers.0.weight");
        int64_t shape[2] = {w->shape[1], w->shape[0]};
        FM_CHECK_INT(
            fm_tensor_file_add(edited, "layers.0.weight", FM_DTYPE_F64, 2, shape, w->data, NULL),
            0);
        expect_tensor_file_refused(edited, "tensor 'layers.0.weight' has shape", FM_EFORMAT);
        fm_tensor_file_free(edited);
    }

    /* A tensor of the wrong dtype. */
    {
        const fm_tensor_t *bias = fm_tensor_file_find(tf, "layers.1.bias");
        fm_tensor_file_t *edited = copy_except(tf, "layers.1.bias");
        float f[1] = {0.5f};
        FM_CHECK_INT(
            fm_tensor_file_add(edited, "layers.1.bias", FM_DTYPE_F32, 1, bias->shape, f, NULL), 0);
        expect_tensor_file_refused(edited, "tensor 'layers.1.bias' is F32", FM_EFORMAT);
        fm_tensor_file_free(edited);
    }

    /* A missing tensor, and an unexpected one. */
    {
        fm_tensor_file_t *edited = copy_except(tf, "layers.1.bias");
        expect_tensor_file_refused(edited, "tensor 'layers.1.bias' is missing", FM_EFORMAT);
        fm_tensor_file_free(edited);
        edited = copy_except(tf, NULL);
        double one = 1.0;
        FM_CHECK_INT(fm_tensor_file_add(edited, "layers.2.bias", FM_DTYPE_F64, 0, NULL, &one, NULL),
                     0);
        expect_tensor_file_refused(edited, "unexpected tensor 'layers.2.bias'", FM_EFORMAT);
        fm_tensor_file_free(edited);
    }

    /* A non-finite parameter. */
    {
        const fm_tensor_t *w = fm_tensor_file_find(tf, "layers.1.weight");
        fm_tensor_file_t *edited = copy_except(tf, "layers.1.weight");
        double *values = malloc(w->nbytes);
        memcpy(values, w->data, w->nbytes);
        values[0] = NAN;
        FM_CHECK_INT(
            fm_tensor_file_add(edited, "layers.1.weight", FM_DTYPE_F64, 2, w->shape, values, NULL),
            0);
        expect_tensor_file_refused(edited, "not finite", FM_EFORMAT);
        free(values);
        fm_tensor_file_free(edited);
    }

    /* Preprocessing narrower than the network: sizes[0], the first weight and the parameter
     * count all say one more input than the preprocessing produces. */
    {
        const fm_tensor_t *w = fm_tensor_file_find(tf, "layers.0.weight");
        fm_tensor_file_t *edited = copy_except(tf, "layers.0.weight");
        int64_t shape[2] = {w->shape[0] + 1, w->shape[1]};
        double *values = calloc((size_t)(shape[0] * shape[1]), sizeof *values);
        FM_CHECK_INT(
            fm_tensor_file_add(edited, "layers.0.weight", FM_DTYPE_F64, 2, shape, values, NULL), 0);
        cJSON *d = get_description(edited);
        cJSON *arch = cJSON_GetObjectItem(d, "architecture");
        cJSON *sizes = cJSON_GetObjectItem(arch, "sizes");
        cJSON_ReplaceItemInArray(sizes, 0, cJSON_CreateNumber((double)shape[0]));
        cJSON_ReplaceItemInObject(arch, "parameters",
                                  cJSON_CreateNumber((double)(m->net->nparams + (size_t)shape[1])));
        set_description(edited, d);
        expect_tensor_file_refused(edited, "preprocessing produces", FM_EFORMAT);
        cJSON_Delete(d);
        free(values);
        fm_tensor_file_free(edited);
    }

    /* Description edits that make the parts disagree. */
    static const struct {
        const char *path[2]; /* member (and sub-member) to replace */
        const char *json;    /* new value */
        const char *want;    /* in the message */
    } edits[] = {
        {{"architecture", "loss"}, "\"mse\"", "loss mse does not match output activation sigmoid"},
        {{"architecture", "loss"}, "\"hinge\"", "unknown loss"},
        {{"architecture", "output_activation"}, "\"softmax\"", "does not match"},
        {{"architecture", "parameters"}, "3", "parameters declared"},
        {{"architecture", "sizes"}, "[1]", "layer sizes"},
        {{"architecture", "sizes"}, "[5, 1e9, 1]", "sizes[1]"},
        {{"classes", NULL}, "[\"bad\", \"good\", \"ugly\"]", "2 classes"},
        {{"classes", NULL}, "[\"good\", \"good\"]", "class 'good' appears twice"},
        {{"classes", NULL}, "[\"x\", 3]", "not a string"},
        {{"positive_class", NULL}, "\"bad\"", "positive class 'bad'"},
        {{"task", NULL}, "\"ranking\"", "unknown task 'ranking'"},
        {{"task", NULL}, "\"multiclass\"", "outputs"},
        {{"task", NULL}, "\"regression\"", "target_scaling"},
        {{"family", NULL}, "\"\"", "family"},
        {{"format_version", NULL}, "0", "format_version"},
        {{"format_version", NULL}, "\"1\"", "format_version"},
        {{"preprocessing", NULL}, "{}", "preprocessing"},
        {{"architecture", NULL}, "null", "architecture"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        fm_tensor_file_t *edited = copy_except(tf, NULL);
        cJSON *d = get_description(edited);
        cJSON *parent = edits[i].path[1] ? cJSON_GetObjectItem(d, edits[i].path[0]) : d;
        const char *member = edits[i].path[1] ? edits[i].path[1] : edits[i].path[0];
        FM_CHECK(cJSON_ReplaceItemInObject(parent, member, cJSON_Parse(edits[i].json)));
        set_description(edited, d);
        expect_tensor_file_refused(edited, edits[i].want, 0);
        cJSON_Delete(d);
        fm_tensor_file_free(edited);
    }

    /* Not a model: no description, or a description that is not JSON. */
    {
        fm_tensor_file_t *edited = copy_except(tf, NULL);
        cJSON_DeleteItemFromObject(edited->metadata, FM_MODEL_METADATA_KEY);
        expect_tensor_file_refused(edited, "not a finmaas model", FM_EFORMAT);
        FM_CHECK_INT(fm_tensor_file_set_metadata(edited, FM_MODEL_METADATA_KEY, "{\"task\":"), 0);
        expect_tensor_file_refused(edited, "description", FM_EFORMAT);
        FM_CHECK_INT(fm_tensor_file_set_metadata(edited, FM_MODEL_METADATA_KEY, "[]"), 0);
        expect_tensor_file_refused(edited, "not a JSON object", FM_EFORMAT);
        fm_tensor_file_free(edited);
    }

    /* A file that does not exist names its path. */
    {
        char path[128];
        fm_test_scratch_path(path, sizeof path, "absent.fmm");
        fm_model_t *out = NULL;
        FM_CHECK_INT(fm_model_load(path, &out, &err), FM_EIO);
        FM_CHECK(strstr(err.msg, path) != NULL && strncmp(err.msg, "model file ", 11) == 0);
    }

done:
    fm_tensor_file_free(tf);
    fm_buf_free(&bad);
    fm_buf_free(&file);
    fm_model_free(m);
    fm_frame_free(frame);
}

/*
 * Random edits of the description text, re-encoded with a fresh checksum so that they reach the
 * model decoder: it must never crash, and whatever it accepts must be a consistent model.
 */
static void test_mutated_descriptions(void) {
    fm_frame_t *frame = make_frame(20);
    if (!frame) return;
    fm_rng_t rng;
    fm_rng_seed(&rng, 424242);
    int accepted = 0;
    for (int t = 0; t < 3; t++) {
        fm_model_t *m = make_model(frame, (fm_task_t)t, 11);
        fm_buf_t file = FM_BUF_INIT, text = FM_BUF_INIT, out = FM_BUF_INIT;
        fm_tensor_file_t *tf = NULL;
        FM_CHECK_INT(fm_model_encode(m, &file, NULL), 0);
        FM_CHECK_INT(fm_safetensors_decode(file.data, file.len, "m", 1, &tf, NULL), 0);
        const char *original = tf ? fm_tensor_file_get_metadata(tf, FM_MODEL_METADATA_KEY) : NULL;
        char *saved = original ? strdup(original) : NULL;
        for (int iter = 0; saved && iter < 700; iter++) {
            fm_buf_reset(&text);
            fm_buf_puts(&text, saved);
            int edits = 1 + (int)fm_rng_below(&rng, 3);
            for (int e = 0; e < edits && text.len > 1; e++) {
                size_t at = (size_t)fm_rng_below(&rng, text.len);
                switch (fm_rng_below(&rng, 3)) {
                case 0:
                    text.data[at] = "{}[]\",:0123456789-e.tfn "[fm_rng_below(&rng, 24)];
                    break;
                case 1:
                    memmove(text.data + at, text.data + at + 1, text.len - at);
                    text.len--;
                    break;
                default:
                    text.data[at] = (char)(0x20 + fm_rng_below(&rng, 0x5f));
                    break;
                }
            }
            FM_CHECK_INT(fm_tensor_file_set_metadata(tf, FM_MODEL_METADATA_KEY, text.data), 0);
            fm_buf_reset(&out);
            /* An edit inside a multi-byte character leaves invalid UTF-8, which the container
             * refuses to write. */
            int rc = fm_safetensors_encode(tf, &out, NULL);
            if (rc) {
                FM_CHECK_INT(rc, FM_EINVAL);
                continue;
            }
            fm_model_t *back = NULL;
            fm_error_t err;
            if (fm_model_decode(out.data, out.len, "mutant.fmm", &back, &err) == 0) {
                accepted++;
                FM_CHECK(back->prep->nfeatures == (size_t)back->net->sizes[0]);
                FM_CHECK(fm_model_output_width(back) ==
                         (size_t)back->net->sizes[back->net->nlayers]);
                fm_model_free(back);
            } else {
                FM_CHECK(back == NULL && strstr(err.msg, "mutant.fmm") != NULL);
            }
        }
        printf("  %s: mutated descriptions accepted so far: %d\n", fm_task_name((fm_task_t)t),
               accepted);
        free(saved);
        fm_tensor_file_free(tf);
        fm_buf_free(&file);
        fm_buf_free(&text);
        fm_buf_free(&out);
        fm_model_free(m);
    }
    fm_frame_free(frame);
}

static size_t count_entries(const char *dir) {
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    if (d) closedir(d);
    return n;
}

/* Saving where the file cannot be written fails cleanly and leaves nothing behind. */
static void test_save_failures(void) {
    fm_frame_t *frame = make_frame(20);
    if (!frame) return;
    fm_model_t *m = make_model(frame, FM_TASK_MULTICLASS, 9);
    fm_error_t err;
    FM_CHECK(fm_model_save(m, "/nonexistent-dir/m.fmm", &err) < 0);
    FM_CHECK(strstr(err.msg, "/nonexistent-dir/m.fmm") != NULL);
    FM_CHECK(access("/nonexistent-dir/m.fmm", F_OK) != 0);

    /* The destination is a directory: the rename fails after the temporary file was written. */
    char dir[128];
    fm_test_scratch_path(dir, sizeof dir, "taken");
    FM_CHECK_INT(mkdir(dir, 0755), 0);
    size_t before = count_entries(fm_test_scratch);
    FM_CHECK(fm_model_save(m, dir, &err) < 0);
    FM_CHECK(strstr(err.msg, dir) != NULL);
    FM_CHECK_INT(count_entries(fm_test_scratch), before);
    FM_CHECK_INT(count_entries(dir), 0);
    rmdir(dir);

    /* A model with a non-finite parameter is refused before anything is written. */
    char path[128];
    fm_test_scratch_path(path, sizeof path, "nan.fmm");
    m->net->params[0] = NAN;
    FM_CHECK(fm_model_save(m, path, &err) < 0);
    FM_CHECK(strstr(err.msg, "not finite") != NULL && strstr(err.msg, path) != NULL);
    FM_CHECK(access(path, F_OK) != 0);
    fm_model_free(m);
    fm_frame_free(frame);
}

/* Runs last: every test cleaned up after itself. */
static void test_no_files_left(void) {
    char probe[128];
    fm_test_scratch_path(probe, sizeof probe, "");
    FM_CHECK_INT(count_entries(fm_test_scratch), 0);
}

FM_TEST_MAIN(FM_TEST_CASE(test_task_names), FM_TEST_CASE(test_round_trip_binary),
             FM_TEST_CASE(test_round_trip_multiclass), FM_TEST_CASE(test_round_trip_regression),
             FM_TEST_CASE(test_predict_frame_chunks), FM_TEST_CASE(test_labels),
             FM_TEST_CASE(test_load_errors), FM_TEST_CASE(test_mutated_descriptions),
             FM_TEST_CASE(test_save_failures), FM_TEST_CASE(test_no_files_left))
