/*
 * Tests of the Keras import. Each test writes a small file in the layout Keras 2.x gives an .h5
 * model (a "model_config" JSON attribute, a "model_weights" group with "layer_names", one group
 * per layer with "weight_names" and its datasets) with libhdf5 directly, then imports it.
 *
 * Imported networks are checked against a forward pass written out here in double precision
 * from the Keras semantics (x W + b, then the layer's activation, Dropout as identity); the
 * prediction runs in float32 as every finmaas prediction does, so the tolerance is 1e-5. Covered:
 * Sequential and Functional (Keras 2 and Keras 3 node formats, layer list out of order), float32
 * and float64 weights, variable- and fixed-length text attributes, a layer without bias, Dropout,
 * Activation layers, linear hidden layers folded into the next, the output fitted to a requested
 * task, scaler and names, PII marks and the recorded source. Error paths: unsupported layer
 * classes and activations, mixed hidden activations, non-chain graphs, weight shapes and types
 * that do not fit, missing attributes and datasets, non-finite weights, a dataset declaring more
 * values than allowed, options that do not fit, truncated files, a file that is not HDF5, a
 * missing file and malformed configuration JSON.
 */
#include "core/buf.h"
#include "import/keras.h"
#include "fm_test.h"
#include "fm_test_fs.h"

#include <hdf5.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* JSON written with single quotes for readability, returned with double quotes (caller frees). */
static char *json(const char *single_quoted) {
    char *s = strdup(single_quoted);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    return s;
}

/* ---- Writing Keras-layout files ------------------------------------------------------------ */

typedef struct dense_w {
    const char *name;
    int in, out, bias;
    double w[64]; /* [in, out] */
    double b[8];
} dense_w_t;

typedef struct fixture {
    const char *config;             /* single-quoted JSON; NULL: no model_config attribute */
    const char *const *layer_names; /* the layer groups written */
    size_t nlayer_names;
    const dense_w_t *dense;
    size_t ndense;
    int fixed_strings;      /* text attributes as fixed-length strings */
    int f64;                /* weights stored as float64 */
    int kernel_shape_extra; /* adds this many columns to every stored kernel */
    int no_weight_names;    /* layer groups without weight_names */
    int no_layer_names;     /* model_weights without layer_names */
} fixture_t;

static void attr_text(hid_t obj, const char *name, const char *text, int fixed) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, fixed ? strlen(text) : H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    FM_CHECK(H5Awrite(a, t, fixed ? (const void *)text : (const void *)&text) >= 0);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

/* A list attribute; empty lists are written as h5py does, an empty float64 array. */
static void attr_list(hid_t obj, const char *name, const char *const *items, size_t n, int fixed) {
    hsize_t dims[1] = {n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    if (n == 0) {
        hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
        H5Aclose(a);
        H5Sclose(s);
        return;
    }
    hid_t t = H5Tcopy(H5T_C_S1);
    size_t width = 1;
    for (size_t i = 0; i < n; i++)
        if (strlen(items[i]) > width) width = strlen(items[i]);
    char *buf = NULL;
    if (fixed) {
        H5Tset_size(t, width);
        H5Tset_strpad(t, H5T_STR_NULLPAD);
        buf = calloc(n, width);
        for (size_t i = 0; i < n; i++)
            memcpy(buf + i * width, items[i], strlen(items[i]));
    } else {
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
    }
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    FM_CHECK(H5Awrite(a, t, fixed ? (const void *)buf : (const void *)items) >= 0);
    free(buf);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

static void dataset(hid_t group, const char *path, int rank, const hsize_t *dims, const double *v,
                    hid_t type) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(group, path, type, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    FM_CHECK(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Pclose(lcpl);
}

static const dense_w_t *find_dense(const fixture_t *f, const char *name) {
    for (size_t i = 0; i < f->ndense; i++)
        if (strcmp(f->dense[i].name, name) == 0) return &f->dense[i];
    return NULL;
}

static void write_fixture(const char *path, const fixture_t *f) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    FM_CHECK(file >= 0);
    if (f->config) {
        char *config = json(f->config);
        attr_text(file, "model_config", config, f->fixed_strings);
        free(config);
    }
    attr_text(file, "keras_version", "2.15.0", f->fixed_strings);
    attr_text(file, "backend", "tensorflow", f->fixed_strings);
    hid_t weights = H5Gcreate2(file, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (!f->no_layer_names)
        attr_list(weights, "layer_names", f->layer_names, f->nlayer_names, f->fixed_strings);
    for (size_t i = 0; i < f->nlayer_names; i++) {
        const char *name = f->layer_names[i];
        hid_t g = H5Gcreate2(weights, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        const dense_w_t *d = find_dense(f, name);
        char kernel[96], bias[96];
        snprintf(kernel, sizeof kernel, "%s/kernel:0", name);
        snprintf(bias, sizeof bias, "%s/bias:0", name);
        const char *names[2] = {kernel, bias};
        if (!f->no_weight_names)
            attr_list(g, "weight_names", names, d ? (size_t)(d->bias ? 2 : 1) : 0,
                      f->fixed_strings);
        if (d) {
            hid_t type = f->f64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
            int cols = d->out + f->kernel_shape_extra;
            double *w = calloc((size_t)(d->in * cols), sizeof *w);
            for (int r = 0; r < d->in; r++)
                for (int c = 0; c < d->out; c++)
                    w[r * cols + c] = d->w[r * d->out + c];
            hsize_t kd[2] = {(hsize_t)d->in, (hsize_t)cols}, bd[1] = {(hsize_t)d->out};
            dataset(g, kernel, 2, kd, w, type);
            if (d->bias) dataset(g, bias, 1, bd, d->b, type);
            free(w);
        }
        H5Gclose(g);
    }
    H5Gclose(weights);
    H5Fclose(file);
}

/* Weights exactly representable in float32, so both sides start from the same numbers. */
static void fill(dense_w_t *d, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 12345u;
    for (int i = 0; i < d->in * d->out; i++) {
        s = s * 1664525u + 1013904223u;
        d->w[i] = (double)(int)((s >> 8) % 2001 - 1000) / 1024.0;
    }
    for (int i = 0; i < d->out; i++) {
        s = s * 1664525u + 1013904223u;
        d->b[i] = d->bias ? (double)(int)((s >> 8) % 201 - 100) / 256.0 : 0.0;
    }
}

/* ---- The reference forward pass ------------------------------------------------------------ */

typedef enum { LINEAR, RELU, SIGMOID, TANH, SOFTMAX } act_t;

static void activate(double *v, int n, act_t a) {
    if (a == SOFTMAX) {
        double m = v[0], sum = 0;
        for (int i = 1; i < n; i++)
            if (v[i] > m) m = v[i];
        for (int i = 0; i < n; i++)
            sum += (v[i] = exp(v[i] - m));
        for (int i = 0; i < n; i++)
            v[i] /= sum;
        return;
    }
    for (int i = 0; i < n; i++) {
        if (a == RELU) v[i] = v[i] > 0 ? v[i] : 0;
        if (a == SIGMOID) v[i] = 1.0 / (1.0 + exp(-v[i]));
        if (a == TANH) v[i] = tanh(v[i]);
    }
}

/* out = the Keras model's output for x: dense layers d[0..n) each followed by acts[l]. */
static void reference(const dense_w_t *d, const act_t *acts, size_t n, const double *x,
                      double *out) {
    double a[64], b[64];
    memcpy(a, x, (size_t)d[0].in * sizeof *a);
    for (size_t l = 0; l < n; l++) {
        for (int o = 0; o < d[l].out; o++) {
            b[o] = d[l].b[o];
            for (int i = 0; i < d[l].in; i++)
                b[o] += a[i] * d[l].w[i * d[l].out + o];
        }
        activate(b, d[l].out, acts[l]);
        memcpy(a, b, (size_t)d[l].out * sizeof *a);
    }
    memcpy(out, a, (size_t)d[n - 1].out * sizeof *out);
}

/* Runs the imported network (float32, as finmaas predicts) on raw inputs x[rows, in] after the
 * model's own standardisation, writing out[rows, width]. */
static void predict(const fm_model_t *m, const double *x, int rows, double *out) {
    int in = m->net->sizes[0];
    double *enc = malloc((size_t)(rows * in) * sizeof *enc);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < in; j++) {
            const fm_prep_column_t *c = &m->prep->columns[j];
            enc[r * in + j] = (x[r * in + j] - c->mean) / c->std;
        }
    fm_net32_t *net32 = NULL;
    fm_net32_workspace_t *ws = NULL;
    fm_error_t err;
    FM_CHECK(fm_net32_new(m->net, &net32, &err) == 0);
    FM_CHECK(fm_net32_workspace_new(net32, 16, &ws, &err) == 0);
    fm_net32_forward(net32, ws, enc, rows, out);
    fm_net32_workspace_free(ws);
    fm_net32_free(net32);
    free(enc);
}

static void inputs(double *x, int rows, int in, uint32_t seed) {
    uint32_t s = seed;
    for (int i = 0; i < rows * in; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (double)((int)((s >> 8) % 4001) - 2000) / 1000.0;
    }
}

/* Imports path; checks rc and, on failure, that the message holds each of the words. */
static fm_model_t *import_expect(const char *path, const fm_keras_options_t *o, int want_rc,
                                 const char *const *words) {
    fm_model_t *m = NULL;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_keras_import(path, o, &m, &err);
    FM_CHECK_MSG(rc == want_rc, "%s: rc %d (%s), want %d", path, rc, err.msg, want_rc);
    if (rc) {
        FM_CHECK(m == NULL);
        FM_CHECK_MSG(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
        FM_CHECK_MSG(strchr(err.msg, '\n') == NULL, "message has several lines: %s", err.msg);
        for (size_t i = 0; words && words[i]; i++)
            FM_CHECK_MSG(strstr(err.msg, words[i]) != NULL, "'%s' missing from: %s", words[i],
                         err.msg);
        printf("  %s\n", err.msg);
    }
    return m;
}

/* Compares the imported model with the reference on 20 rows; returns the largest difference. */
static double compare(const fm_model_t *m, const dense_w_t *d, const act_t *acts, size_t n,
                      int width, uint32_t seed, const char *label) {
    enum { ROWS = 20 };
    double x[ROWS * 8], got[ROWS * 8], want[ROWS * 8];
    int in = d[0].in;
    inputs(x, ROWS, in, seed);
    predict(m, x, ROWS, got);
    for (int r = 0; r < ROWS; r++) {
        double full[8];
        reference(d, acts, n, x + r * in, full);
        memcpy(want + r * width, full, (size_t)width * sizeof *full);
    }
    return fm_test_max_diff(label, got, want, (size_t)(ROWS * width));
}

/* ---- Models that import -------------------------------------------------------------------- */

static const char seq_multiclass[] =
    "{'class_name': 'Sequential', 'config': {'name': 'tiny', 'layers': ["
    "{'class_name': 'InputLayer', 'config': {'batch_input_shape': [null, 5], 'dtype': 'float32', "
    "'sparse': false, 'ragged': false, 'name': 'in'}},"
    "{'class_name': 'Dense', 'config': {'name': 'd1', 'units': 6, 'activation': 'tanh', "
    "'use_bias': true}},"
    "{'class_name': 'Dropout', 'config': {'name': 'drop', 'rate': 0.5}},"
    "{'class_name': 'Dense', 'config': {'name': 'd2', 'units': 4, 'activation': 'linear', "
    "'use_bias': false}},"
    "{'class_name': 'Activation', 'config': {'name': 'act', 'activation': 'tanh'}},"
    "{'class_name': 'Dense', 'config': {'name': 'd3', 'units': 3, 'activation': 'softmax', "
    "'use_bias': true}}]}}";

static void tiny_dense(dense_w_t *d) {
    d[0] = (dense_w_t){"d1", 5, 6, 1, {0}, {0}};
    d[1] = (dense_w_t){"d2", 6, 4, 0, {0}, {0}};
    d[2] = (dense_w_t){"d3", 4, 3, 1, {0}, {0}};
    for (int i = 0; i < 3; i++)
        fill(&d[i], (uint32_t)i + 1);
}

static const char *const tiny_names[] = {"d1", "drop", "d2", "act", "d3"};

static void test_sequential_multiclass(void) {
    dense_w_t d[3];
    tiny_dense(d);
    static const act_t acts[] = {TANH, TANH, SOFTMAX};
    char path[128];
    for (int variant = 0; variant < 2; variant++) {
        /* variable-length text and float32, then fixed-length text and float64 */
        fixture_t f = {seq_multiclass, tiny_names, 5, d, 3, variant, variant, 0, 0};
        fm_test_scratch_path(path, sizeof path, "tiny.h5");
        write_fixture(path, &f);
        fm_model_t *m = import_expect(path, NULL, FM_OK, NULL);
        if (!m) continue;
        FM_CHECK_INT(m->task, FM_TASK_MULTICLASS);
        FM_CHECK_STR(m->family, "mlp");
        FM_CHECK_INT(m->nclasses, 3);
        FM_CHECK_STR(m->classes[0], "0");
        FM_CHECK_STR(m->classes[2], "2");
        FM_CHECK_STR(m->target, "target");
        FM_CHECK_INT(m->net->nlayers, 3);
        FM_CHECK_INT(m->net->hidden, FM_ACT_TANH);
        FM_CHECK_INT(m->net->output, FM_ACT_SOFTMAX);
        FM_CHECK_INT(m->prep->ncolumns, 5);
        FM_CHECK_STR(m->prep->columns[4].name, "x4");
        double worst = compare(m, d, acts, 3, 3, 7, variant ? "tiny, fixed text, f64" : "tiny");
        FM_CHECK(worst <= 1e-5);
        const cJSON *src = cJSON_GetObjectItem(m->info, "source");
        FM_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "keras_version")), "2.15.0");
        FM_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "backend")), "tensorflow");
        FM_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "file")), "tiny.h5");
        FM_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "model_class")), "Sequential");
        FM_CHECK_INT(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(src, "sha256"))), 64);
        FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(src, "layers")), 6);
        fm_model_free(m);
        unlink(path);
    }
}

static void test_options(void) {
    dense_w_t d[3];
    tiny_dense(d);
    char path[128];
    fm_test_scratch_path(path, sizeof path, "options.h5");
    fixture_t f = {seq_multiclass, tiny_names, 5, d, 3, 0, 0, 0, 0};
    write_fixture(path, &f);
    static const char *const names[] = {"a", "b", "c", "d", "e"};
    static const char *const classes[] = {"low", "mid", "high"};
    static const char *const pii[] = {"b"};
    static const double mean[] = {1, 2, 3, 4, 5}, scale[] = {0.5, 1, 2, 4, 8};
    fm_keras_options_t o;
    fm_keras_options_defaults(&o);
    o.feature_names = names;
    o.nfeature_names = 5;
    o.scaler_mean = mean;
    o.nscaler_mean = 5;
    o.scaler_scale = scale;
    o.nscaler_scale = 5;
    o.classes = classes;
    o.nclasses = 3;
    o.target = "grade";
    o.pii = pii;
    o.npii = 1;
    fm_model_t *m = import_expect(path, &o, FM_OK, NULL);
    if (m) {
        FM_CHECK_STR(m->prep->columns[1].name, "b");
        FM_CHECK(m->prep->columns[1].pii);
        FM_CHECK(!m->prep->columns[0].pii);
        FM_CHECK_NEAR(m->prep->columns[4].mean, 5, 0);
        FM_CHECK_NEAR(m->prep->columns[4].std, 8, 0);
        FM_CHECK_NEAR(m->prep->columns[4].median, 5, 0); /* missing: the mean, 0 after scaling */
        FM_CHECK_STR(m->classes[1], "mid");
        FM_CHECK_STR(m->target, "grade");
        /* The network sees (x - mean) / scale: feed the reference the scaled values. */
        enum { ROWS = 10 };
        double x[ROWS * 5], scaled[ROWS * 5], got[ROWS * 3], want[ROWS * 3];
        static const act_t acts[] = {TANH, TANH, SOFTMAX};
        inputs(x, ROWS, 5, 3);
        for (int i = 0; i < ROWS * 5; i++)
            scaled[i] = (x[i] - mean[i % 5]) / scale[i % 5];
        predict(m, x, ROWS, got);
        for (int r = 0; r < ROWS; r++)
            reference(d, acts, 3, scaled + r * 5, want + r * 3);
        FM_CHECK(fm_test_max_diff("tiny with scaler", got, want, ROWS * 3) <= 1e-5);
        fm_model_free(m);
    }
    /* Options that do not fit the model. */
    o.nfeature_names = 4;
    fm_model_free(import_expect(path, &o, FM_EINVAL,
                                (const char *const[]){"4 feature names", "5 inputs", NULL}));
    o.nfeature_names = 5;
    o.nscaler_mean = 3;
    fm_model_free(
        import_expect(path, &o, FM_EINVAL, (const char *const[]){"3 scaler means", NULL}));
    o.nscaler_mean = 5;
    static const double bad_scale[] = {1, 1, 0, 1, 1};
    o.scaler_scale = bad_scale;
    fm_model_free(import_expect(path, &o, FM_EINVAL, (const char *const[]){"scale 3", NULL}));
    o.scaler_scale = scale;
    o.nclasses = 2;
    fm_model_free(
        import_expect(path, &o, FM_EINVAL, (const char *const[]){"2 class labels", NULL}));
    o.nclasses = 3;
    o.task = FM_TASK_REGRESSION;
    fm_model_free(import_expect(path, &o, FM_EINVAL,
                                (const char *const[]){"regression", "'d3'", "softmax", NULL}));
    o.task = -1;
    static const char *const unknown[] = {"zz"};
    o.pii = unknown;
    fm_model_free(import_expect(path, &o, FM_EINVAL, (const char *const[]){"zz", NULL}));
    o.pii = pii;
    static const char *const twice[] = {"a", "b", "a", "d", "e"};
    o.feature_names = twice;
    fm_model_free(import_expect(path, &o, FM_EINVAL, (const char *const[]){"'a'", "twice", NULL}));
    unlink(path);
}

/* A Functional chain; the layer list is out of order, in Keras 2 or Keras 3 node format. */
static void test_functional(void) {
    static const char keras2[] =
        "{'class_name': 'Functional', 'config': {'name': 'f', 'layers': ["
        "{'class_name': 'Dense', 'config': {'name': 'out', 'units': 1, 'activation': 'sigmoid'}, "
        "'name': 'out', 'inbound_nodes': [[['h', 0, 0, {}]]]},"
        "{'class_name': 'InputLayer', 'config': {'batch_input_shape': [null, 4], 'name': 'x'}, "
        "'name': 'x', 'inbound_nodes': []},"
        "{'class_name': 'Dense', 'config': {'name': 'h', 'units': 3, 'activation': 'relu'}, "
        "'name': 'h', 'inbound_nodes': [[['x', 0, 0, {}]]]}],"
        "'input_layers': [['x', 0, 0]], 'output_layers': [['out', 0, 0]]}}";
    static const char keras3[] =
        "{'class_name': 'Functional', 'config': {'name': 'f', 'layers': ["
        "{'class_name': 'InputLayer', 'config': {'batch_shape': [null, 4], 'name': 'x'}, "
        "'name': 'x', 'inbound_nodes': []},"
        "{'class_name': 'Dense', 'config': {'name': 'out', 'units': 1, 'activation': 'sigmoid'}, "
        "'name': 'out', 'inbound_nodes': [{'args': [{'class_name': '__keras_tensor__', 'config': "
        "{'shape': [null, 3], 'keras_history': ['h', 0, 0]}}], 'kwargs': {}}]},"
        "{'class_name': 'Dense', 'config': {'name': 'h', 'units': 3, 'activation': 'relu'}, "
        "'name': 'h', 'inbound_nodes': [{'args': [{'class_name': '__keras_tensor__', 'config': "
        "{'shape': [null, 4], 'keras_history': ['x', 0, 0]}}], 'kwargs': {}}]}],"
        "'input_layers': ['x', 0, 0], 'output_layers': ['out', 0, 0]}}";
    dense_w_t d[2] = {{"h", 4, 3, 1, {0}, {0}}, {"out", 3, 1, 1, {0}, {0}}};
    fill(&d[0], 11);
    fill(&d[1], 12);
    static const act_t acts[] = {RELU, SIGMOID};
    static const char *const names[] = {"x", "h", "out"};
    const char *configs[2] = {keras2, keras3};
    char path[128];
    fm_test_scratch_path(path, sizeof path, "functional.h5");
    for (int k = 0; k < 2; k++) {
        fixture_t f = {configs[k], names, 3, d, 2, 0, 0, 0, 0};
        write_fixture(path, &f);
        fm_model_t *m = import_expect(path, NULL, FM_OK, NULL);
        if (!m) continue;
        FM_CHECK_INT(m->task, FM_TASK_BINARY);
        FM_CHECK_STR(m->classes[1], "1");
        FM_CHECK(compare(m, d, acts, 2, 1, 5, k ? "functional (Keras 3)" : "functional") <= 1e-5);
        fm_model_free(m);
    }
    unlink(path);
}

static const char chain3[] =
    "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': ["
    "{'class_name': 'Dense', 'config': {'name': 'a', 'units': 4, 'activation': '%s', "
    "'batch_input_shape': [null, 3]}},"
    "{'class_name': 'Dense', 'config': {'name': 'b', 'units': 3, 'activation': '%s'}},"
    "{'class_name': 'Dense', 'config': {'name': 'c', 'units': %d, 'activation': '%s'}}]}}";

static void chain_fixture(char *config, size_t size, dense_w_t *d, const char *a1, const char *a2,
                          int units, const char *a3) {
    snprintf(config, size, chain3, a1, a2, units, a3);
    d[0] = (dense_w_t){"a", 3, 4, 1, {0}, {0}};
    d[1] = (dense_w_t){"b", 4, 3, 1, {0}, {0}};
    d[2] = (dense_w_t){"c", 3, units, 1, {0}, {0}};
    for (int i = 0; i < 3; i++)
        fill(&d[i], (uint32_t)i + 21);
}

static const char *const chain_names[] = {"a", "b", "c"};

/* A linear hidden layer between relu layers is folded into the next one. */
static void test_fold_linear(void) {
    char config[1024], path[128];
    dense_w_t d[3];
    chain_fixture(config, sizeof config, d, "linear", "relu", 1, "sigmoid");
    fm_test_scratch_path(path, sizeof path, "fold.h5");
    fixture_t f = {config, chain_names, 3, d, 3, 0, 0, 0, 0};
    write_fixture(path, &f);
    fm_model_t *m = import_expect(path, NULL, FM_OK, NULL);
    static const act_t acts[] = {LINEAR, RELU, SIGMOID};
    if (m) {
        FM_CHECK_INT(m->net->nlayers, 2);
        FM_CHECK_INT(m->net->sizes[0], 3);
        FM_CHECK_INT(m->net->sizes[1], 3);
        FM_CHECK_INT(m->net->hidden, FM_ACT_RELU);
        FM_CHECK(compare(m, d, acts, 3, 1, 9, "linear layer folded") <= 1e-5);
        fm_model_free(m);
    }
    /* All hidden layers linear: kept as they are. */
    chain_fixture(config, sizeof config, d, "linear", "linear", 1, "linear");
    write_fixture(path, &f);
    static const act_t linear[] = {LINEAR, LINEAR, LINEAR};
    if ((m = import_expect(path, NULL, FM_OK, NULL))) {
        FM_CHECK_INT(m->task, FM_TASK_REGRESSION);
        FM_CHECK_INT(m->net->nlayers, 3);
        FM_CHECK_STR(m->family, "mlp");
        FM_CHECK(compare(m, d, linear, 3, 1, 4, "linear regression stack") <= 1e-5);
        fm_model_free(m);
    }
    unlink(path);
}

/* The output layer fitted to a requested task. */
static void test_task_conversions(void) {
    char config[1024], path[128];
    dense_w_t d[3];
    fm_test_scratch_path(path, sizeof path, "task.h5");
    fixture_t f = {config, chain_names, 3, d, 3, 0, 0, 0, 0};
    fm_keras_options_t o;
    fm_keras_options_defaults(&o);
    fm_model_t *m;

    /* softmax over 2 -> binary: P(class 1) = sigmoid(z1 - z0) */
    chain_fixture(config, sizeof config, d, "tanh", "tanh", 2, "softmax");
    write_fixture(path, &f);
    o.task = FM_TASK_BINARY;
    if ((m = import_expect(path, &o, FM_OK, NULL))) {
        static const act_t acts[] = {TANH, TANH, SOFTMAX};
        double x[8 * 3], got[8], full[2], worst = 0;
        inputs(x, 8, 3, 2);
        predict(m, x, 8, got);
        for (int r = 0; r < 8; r++) {
            reference(d, acts, 3, x + r * 3, full);
            worst = fmax(worst, fabs(got[r] - full[1]));
        }
        printf("  %-40s max |diff| = %.3g\n", "softmax(2) as binary", worst);
        FM_CHECK(worst <= 1e-5);
        FM_CHECK_INT(m->net->sizes[3], 1);
        fm_model_free(m);
    }
    /* sigmoid over 1 -> multiclass: (1 - p, p) */
    chain_fixture(config, sizeof config, d, "relu", "relu", 1, "sigmoid");
    write_fixture(path, &f);
    o.task = FM_TASK_MULTICLASS;
    if ((m = import_expect(path, &o, FM_OK, NULL))) {
        static const act_t acts[] = {RELU, RELU, SIGMOID};
        double x[8 * 3], got[16], p, worst = 0;
        inputs(x, 8, 3, 6);
        predict(m, x, 8, got);
        for (int r = 0; r < 8; r++) {
            reference(d, acts, 3, x + r * 3, &p);
            worst = fmax(worst, fmax(fabs(got[2 * r + 1] - p), fabs(got[2 * r] - (1 - p))));
        }
        printf("  %-40s max |diff| = %.3g\n", "sigmoid(1) as multiclass", worst);
        FM_CHECK(worst <= 1e-5);
        fm_model_free(m);
    }
    /* relu output, regression: an identity layer is appended */
    chain_fixture(config, sizeof config, d, "relu", "relu", 1, "relu");
    write_fixture(path, &f);
    if ((m = import_expect(path, NULL, FM_OK, NULL))) {
        static const act_t acts[] = {RELU, RELU, RELU};
        FM_CHECK_INT(m->task, FM_TASK_REGRESSION);
        FM_CHECK_INT(m->net->nlayers, 4);
        FM_CHECK(compare(m, d, acts, 3, 1, 8, "relu regression output") <= 1e-5);
        fm_model_free(m);
    }
    /* linear logits over 3 read as multiclass */
    chain_fixture(config, sizeof config, d, "tanh", "tanh", 3, "linear");
    write_fixture(path, &f);
    fm_model_free(import_expect(path, NULL, FM_EUNSUPPORTED,
                                (const char *const[]){"'c'", "3 outputs", NULL}));
    o.task = FM_TASK_MULTICLASS;
    if ((m = import_expect(path, &o, FM_OK, NULL))) {
        static const act_t acts[] = {TANH, TANH, SOFTMAX};
        FM_CHECK(compare(m, d, acts, 3, 3, 1, "logits as multiclass") <= 1e-5);
        fm_model_free(m);
    }
    unlink(path);
}

/* ---- Errors -------------------------------------------------------------------------------- */

static void test_unsupported(void) {
    char config[1024], path[128];
    dense_w_t d[3];
    fm_test_scratch_path(path, sizeof path, "unsupported.h5");
    fixture_t f = {config, chain_names, 3, d, 3, 0, 0, 0, 0};

    chain_fixture(config, sizeof config, d, "relu", "elu", 1, "sigmoid");
    write_fixture(path, &f);
    fm_model_free(import_expect(path, NULL, FM_EUNSUPPORTED,
                                (const char *const[]){"'b'", "activation 'elu'", NULL}));
    chain_fixture(config, sizeof config, d, "relu", "tanh", 1, "sigmoid");
    write_fixture(path, &f);
    fm_model_free(import_expect(path, NULL, FM_EUNSUPPORTED,
                                (const char *const[]){"'b'", "tanh", "'a'", "relu", NULL}));
    chain_fixture(config, sizeof config, d, "relu", "softmax", 1, "sigmoid");
    write_fixture(path, &f);
    fm_model_free(import_expect(path, NULL, FM_EUNSUPPORTED,
                                (const char *const[]){"'b'", "softmax", "hidden", NULL}));
    chain_fixture(config, sizeof config, d, "relu", "relu", 3, "sigmoid");
    write_fixture(path, &f);
    fm_model_free(import_expect(path, NULL, FM_EUNSUPPORTED,
                                (const char *const[]){"'c'", "multi-label", NULL}));

    static const char conv[] =
        "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': ["
        "{'class_name': 'Dense', 'config': {'name': 'a', 'units': 4, 'activation': 'relu', "
        "'batch_input_shape': [null, 3]}},"
        "{'class_name': 'BatchNormalization', 'config': {'name': 'bn'}},"
        "{'class_name': 'Dense', 'config': {'name': 'c', 'units': 1, 'activation': 'sigmoid'}}]}}";
    static const char shape3d[] =
        "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': ["
        "{'class_name': 'InputLayer', 'config': {'name': 'in', 'batch_input_shape': [null, 3, 2]}},"
        "{'class_name': 'Dense', 'config': {'name': 'a', 'units': 4, 'activation': 'relu'}}]}}";
    static const char twice[] =
        "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': ["
        "{'class_name': 'Dense', 'config': {'name': 'a', 'units': 4, 'activation': 'relu', "
        "'batch_input_shape': [null, 3]}},"
        "{'class_name': 'Activation', 'config': {'name': 'act', 'activation': 'sigmoid'}},"
        "{'class_name': 'Dense', 'config': {'name': 'c', 'units': 1, 'activation': 'sigmoid'}}]}}";
    static const char branch[] =
        "{'class_name': 'Functional', 'config': {'name': 'f', 'layers': ["
        "{'class_name': 'InputLayer', 'config': {'batch_input_shape': [null, 3], 'name': 'x'}, "
        "'name': 'x', 'inbound_nodes': []},"
        "{'class_name': 'Dense', 'config': {'name': 'a', 'units': 4, 'activation': 'relu'}, "
        "'name': 'a', 'inbound_nodes': [[['x', 0, 0, {}]]]},"
        "{'class_name': 'Dense', 'config': {'name': 'b', 'units': 3, 'activation': 'relu'}, "
        "'name': 'b', 'inbound_nodes': [[['x', 0, 0, {}]]]},"
        "{'class_name': 'Dense', 'config': {'name': 'c', 'units': 1, 'activation': 'sigmoid'}, "
        "'name': 'c', 'inbound_nodes': [[['a', 0, 0, {}]]]}],"
        "'input_layers': [['x', 0, 0]], 'output_layers': [['c', 0, 0]]}}";
    static const char merge[] =
        "{'class_name': 'Functional', 'config': {'name': 'f', 'layers': ["
        "{'class_name': 'InputLayer', 'config': {'batch_input_shape': [null, 3], 'name': 'x'}, "
        "'name': 'x', 'inbound_nodes': []},"
        "{'class_name': 'Dense', 'config': {'name': 'c', 'units': 1, 'activation': 'sigmoid'}, "
        "'name': 'c', 'inbound_nodes': [[['x', 0, 0, {}], ['x', 0, 0, {}]]]}],"
        "'input_layers': [['x', 0, 0]], 'output_layers': [['c', 0, 0]]}}";
    static const char subclassed[] = "{'class_name': 'MyModel', 'config': {}}";
    struct {
        const char *config;
        const char *words[4];
    } cases[] = {
        {conv, {"'bn'", "BatchNormalization", NULL}}, {shape3d, {"'in'", "[null,3,2]", NULL}},
        {twice, {"'act'", "sigmoid", "'a'", NULL}},   {branch, {"'b'", "not on the path", NULL}},
        {merge, {"'c'", "2 inputs", NULL}},           {subclassed, {"MyModel", NULL}},
    };
    chain_fixture(config, sizeof config, d, "relu", "relu", 1, "sigmoid");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture_t g = {cases[i].config, chain_names, 3, d, 3, 0, 0, 0, 0};
        write_fixture(path, &g);
        fm_model_free(import_expect(path, NULL, FM_EUNSUPPORTED, cases[i].words));
    }
    unlink(path);
}

static void test_bad_weights(void) {
    char config[1024], path[128];
    dense_w_t d[3];
    fm_test_scratch_path(path, sizeof path, "weights.h5");
    chain_fixture(config, sizeof config, d, "relu", "relu", 1, "sigmoid");

    fixture_t f = {config, chain_names, 3, d, 3, 0, 0, 1, 0}; /* kernels one column too wide */
    write_fixture(path, &f);
    fm_model_free(
        import_expect(path, NULL, FM_EFORMAT,
                      (const char *const[]){"'a'", "a/kernel:0", "[3, 5]", "[3, 4]", NULL}));
    f.kernel_shape_extra = 0;
    f.no_weight_names = 1;
    write_fixture(path, &f);
    fm_model_free(
        import_expect(path, NULL, FM_EFORMAT, (const char *const[]){"'a'", "weight_names", NULL}));
    f.no_weight_names = 0;
    f.no_layer_names = 1;
    write_fixture(path, &f);
    fm_model_free(
        import_expect(path, NULL, FM_EFORMAT, (const char *const[]){"layer_names", NULL}));
    f.no_layer_names = 0;
    f.config = NULL;
    write_fixture(path, &f);
    fm_model_free(
        import_expect(path, NULL, FM_EFORMAT, (const char *const[]){"model_config", NULL}));
    f.config = config;

    /* A Dense layer of the configuration with no weights in the file. */
    f.nlayer_names = 2;
    write_fixture(path, &f);
    fm_model_free(
        import_expect(path, NULL, FM_EFORMAT, (const char *const[]){"'c'", "no weights", NULL}));
    f.nlayer_names = 3;

    /* use_bias false in the configuration but a bias in the file. */
    static const char nobias[] =
        "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': ["
        "{'class_name': 'Dense', 'config': {'name': 'a', 'units': 4, 'activation': 'relu', "
        "'batch_input_shape': [null, 3]}},"
        "{'class_name': 'Dense', 'config': {'name': 'b', 'units': 3, 'activation': 'relu', "
        "'use_bias': false}},"
        "{'class_name': 'Dense', 'config': {'name': 'c', 'units': 1, 'activation': 'sigmoid'}}]}}";
    write_fixture(path, &(fixture_t){nobias, chain_names, 3, d, 3, 0, 0, 0, 0});
    fm_model_free(
        import_expect(path, NULL, FM_EFORMAT,
                      (const char *const[]){"'b'", "lists 2 weights", "expected 1", NULL}));

    /* Edits after writing: a missing dataset, integer weights, a NaN, a huge declared shape. */
    for (int edit = 0; edit < 4; edit++) {
        write_fixture(path, &f);
        hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t g = H5Gopen2(file, "model_weights/b", H5P_DEFAULT);
        H5Ldelete(g, "b/kernel:0", H5P_DEFAULT);
        hsize_t dims[2] = {4, 3};
        if (edit == 1) {
            hid_t s = H5Screate_simple(2, dims, NULL);
            hid_t ds = H5Dcreate2(g, "b/kernel:0", H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT,
                                  H5P_DEFAULT);
            H5Dclose(ds);
            H5Sclose(s);
        } else if (edit == 2) {
            double v[12] = {0};
            v[7] = NAN;
            dataset(g, "b/kernel:0", 2, dims, v, H5T_IEEE_F32LE);
        } else if (edit == 3) {
            /* Chunked and never written: a tiny file that declares 4 x 2^22 values. */
            hsize_t big[2] = {4, (hsize_t)1 << 22}, chunk[2] = {4, 1024};
            hid_t s = H5Screate_simple(2, big, NULL);
            hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
            H5Pset_chunk(dcpl, 2, chunk);
            hid_t ds =
                H5Dcreate2(g, "b/kernel:0", H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            H5Dclose(ds);
            H5Pclose(dcpl);
            H5Sclose(s);
        }
        H5Gclose(g);
        H5Fclose(file);
        static const char *const words[4][4] = {
            {"'b'", "b/kernel:0", "missing", NULL},
            {"'b'", "b/kernel:0", "integers", NULL},
            {"'b'", "non-finite", NULL, NULL},
            {"'b'", "b/kernel:0", "[4, 4194304]", NULL},
        };
        fm_model_free(import_expect(path, NULL, FM_EFORMAT, words[edit]));
    }
    /* Weights on a layer that is not a Dense layer of the chain. */
    static const char *const extra[] = {"a", "b", "c", "stray"};
    dense_w_t more[4];
    memcpy(more, d, sizeof d);
    more[3] = (dense_w_t){"stray", 2, 2, 1, {0}, {0}};
    write_fixture(path, &(fixture_t){config, extra, 4, more, 4, 0, 0, 0, 0});
    fm_model_free(import_expect(path, NULL, FM_EUNSUPPORTED,
                                (const char *const[]){"'stray'", "2 weights", NULL}));
    unlink(path);
}

static void test_oversized_input(void) {
    /* No declared input width: the kernel's first dimension is taken, and must be in range. */
    static const char config[] =
        "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': ["
        "{'class_name': 'Dense', 'config': {'name': 'a', 'units': 4, 'activation': 'sigmoid'}}]}}";
    char path[128];
    fm_test_scratch_path(path, sizeof path, "wide.h5");
    static const char *const names[] = {"a"};
    dense_w_t d = {"a", 1, 4, 1, {0}, {0}};
    write_fixture(path, &(fixture_t){config, names, 1, &d, 1, 0, 0, 0, 0});
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gopen2(file, "model_weights/a", H5P_DEFAULT);
    H5Ldelete(g, "a/kernel:0", H5P_DEFAULT);
    hsize_t big[2] = {(hsize_t)1 << 30, 4}, chunk[2] = {1024, 4};
    hid_t s = H5Screate_simple(2, big, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t ds = H5Dcreate2(g, "a/kernel:0", H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(s);
    H5Gclose(g);
    H5Fclose(file);
    fm_model_free(import_expect(path, NULL, FM_ELIMIT,
                                (const char *const[]){"'a'", "a/kernel:0", "too large", NULL}));
    unlink(path);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    FM_CHECK(fp != NULL);
    if (!fp) return;
    fwrite(data, 1, n, fp);
    fclose(fp);
}

static void test_damaged_files(void) {
    dense_w_t d[3];
    tiny_dense(d);
    char path[128], cut[128];
    fm_test_scratch_path(path, sizeof path, "whole.h5");
    fm_test_scratch_path(cut, sizeof cut, "cut.h5");
    write_fixture(path, &(fixture_t){seq_multiclass, tiny_names, 5, d, 3, 0, 0, 0, 0});
    FILE *fp = fopen(path, "rb");
    FM_CHECK(fp != NULL);
    if (!fp) return;
    char *bytes = malloc(1 << 20);
    size_t n = fread(bytes, 1, 1 << 20, fp);
    fclose(fp);
    FM_CHECK(n > 1000);
    /* Truncated anywhere: never a crash, always a clear error. */
    size_t lengths[] = {0, 4, 8, 64, 200, 512, 1024, n / 3, n / 2, n - 100, n - 1};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        write_bytes(cut, bytes, lengths[i]);
        fm_model_t *m = NULL;
        fm_error_t err;
        int rc = fm_keras_import(cut, NULL, &m, &err);
        FM_CHECK_MSG(rc == FM_EFORMAT, "truncated to %zu bytes: rc %d (%s)", lengths[i], rc,
                     err.msg);
        FM_CHECK(m == NULL);
        if (i == 0 || i == sizeof lengths / sizeof lengths[0] - 1)
            printf("  truncated to %zu bytes: %s\n", lengths[i], err.msg);
        fm_model_free(m);
    }
    free(bytes);
    unlink(cut);
    unlink(path);

    fm_test_scratch_path(path, sizeof path, "text.h5");
    write_bytes(path, "class_name,config\nDense,{}\n", 27);
    fm_model_free(
        import_expect(path, NULL, FM_EFORMAT, (const char *const[]){"not an HDF5 file", NULL}));
    unlink(path);
    fm_model_free(import_expect("/nonexistent/model.h5", NULL, FM_EIO,
                                (const char *const[]){"No such file", NULL}));

    /* Malformed configuration: broken JSON, a Dense layer without units, wrong types. */
    static const char *const configs[] = {
        "{'class_name': 'Sequential', 'config': {'layers': [",
        "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': ["
        "{'class_name': 'Dense', 'config': {'name': 'a', 'activation': 'relu'}}]}}",
        "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': ["
        "{'class_name': 'Dense', 'config': {'name': 'a', 'units': 'four'}}]}}",
        "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': [{'config': {}}]}}",
        "{'class_name': 'Sequential', 'config': {'name': 's', 'layers': []}}",
        "[1, 2, 3]",
    };
    fm_test_scratch_path(path, sizeof path, "config.h5");
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        write_fixture(path, &(fixture_t){configs[i], tiny_names, 5, d, 3, 0, 0, 0, 0});
        fm_model_free(import_expect(path, NULL, FM_EFORMAT, NULL));
    }
    unlink(path);
}

FM_TEST_MAIN(FM_TEST_CASE(test_sequential_multiclass), FM_TEST_CASE(test_options),
             FM_TEST_CASE(test_functional), FM_TEST_CASE(test_fold_linear),
             FM_TEST_CASE(test_task_conversions), FM_TEST_CASE(test_unsupported),
             FM_TEST_CASE(test_bad_weights), FM_TEST_CASE(test_oversized_input),
             FM_TEST_CASE(test_damaged_files))
