/*
 * Tests of gbt models (family "gbt": preprocessing + an XGBoost booster) as model files: for each
 * task a model is built here (a frame from a small CSV file, a fitted preprocessing, a booster
 * trained on the encoded rows), saved, loaded and compared with the original: description text,
 * file bytes, the booster tensor, and predictions bit for bit (through the model workspace, the
 * frame path and the booster itself). Damaged files must be refused with a message naming the
 * file: every truncation, a flipped bit at every byte (the checksum), and, with a valid checksum,
 * a damaged booster blob, the wrong tensor type, missing or extra tensors, an unknown booster
 * format, a booster that does not fit the task or the preprocessing, and scaling a booster does
 * not use. A model that mixes a network and a booster is never written.
 */
#include "core/buf.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/rng.h"
#include "model/model.h"
#include "fm_test.h"
#include "fm_test_fs.h"
#include "model_test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* nrows rows: two numeric columns (one with missing values), a categorical one, and a target per
 * task that depends on them (so that trees have something to split on). */
static fm_frame_t *make_frame(size_t nrows) {
    static const char *const homes[] = {"rent", "own", "other", "", "rent", "own", "parents"};
    fm_buf_t csv = FM_BUF_INIT;
    fm_buf_puts(&csv, "income,age,home,status,kind,amount\n");
    fm_rng_t rng;
    fm_rng_seed(&rng, 17);
    for (size_t i = 0; i < nrows; i++) {
        double income = 1000.0 + 400.0 * fm_rng_normal(&rng), age = 20 + (double)((i * 13) % 47);
        const char *home = homes[i % 7];
        double z = (income - 1000.0) / 400.0 + (age - 43) / 15.0 + (home[0] == 'o' ? 0.8 : 0.0) +
                   0.8 * fm_rng_normal(&rng);
        if (i % 5 == 3)
            fm_buf_puts(&csv, "NA,");
        else
            fm_buf_printf(&csv, "%.2f,", income);
        fm_buf_printf(&csv, "%.0f,%s,%s,%s,%.3f\n", age, home, z > 0 ? "good" : "bad",
                      z < -0.7  ? "a"
                      : z < 0.7 ? "b"
                                : "c",
                      3.0 + z + 0.1 * fm_rng_normal(&rng));
    }
    char path[128];
    fm_test_scratch_path(path, sizeof path, "data.csv");
    FILE *fp = fopen(path, "wb");
    FM_CHECK(fp != NULL);
    if (fp) {
        fputs(csv.data, fp);
        fclose(fp);
    }
    fm_buf_free(&csv);
    fm_frame_t *frame = NULL;
    fm_error_t err;
    FM_CHECK_MSG(fm_frame_read_csv(path, NULL, &frame, &err) == 0, "%s", err.msg);
    unlink(path);
    return frame;
}

/* A gbt model for task over frame: preprocessing fitted on all rows, a booster of `rounds`
 * rounds trained on them. */
static fm_model_t *make_model(const fm_frame_t *frame, fm_task_t task, int rounds) {
    fm_model_t *m = fm_model_new();
    fm_error_t err;
    size_t cols[3] = {(size_t)fm_frame_find(frame, "income"), (size_t)fm_frame_find(frame, "age"),
                      (size_t)fm_frame_find(frame, "home")};
    fm_prep_options_t opts = {1, 0};
    FM_CHECK_MSG(fm_prep_fit(frame, cols, 3, NULL, frame->nrows, &opts, &m->prep, &err) == 0, "%s",
                 err.msg);
    size_t n = frame->nrows, nf = m->prep->nfeatures;
    double *x = malloc(n * nf * sizeof *x), *y = malloc(n * sizeof *y);
    FM_CHECK_INT(fm_prep_transform(m->prep, frame, NULL, n, x, &err), 0);
    m->task = task;
    m->family = strdup("gbt");
    fm_gbt_objective_t objective = FM_GBT_BINARY;
    const fm_column_t *col;
    if (task == FM_TASK_BINARY) {
        static const char *const labels[] = {"bad", "good"};
        m->target = strdup("status");
        m->nclasses = 2;
        m->classes = copy_classes(labels, 2);
        m->loss = FM_LOSS_BINARY;
        col = &frame->columns[fm_frame_find(frame, "status")];
        for (size_t i = 0; i < n; i++)
            y[i] = strcmp(fm_strdict_get(&col->dict, col->codes[i]), "good") == 0;
    } else if (task == FM_TASK_MULTICLASS) {
        static const char *const labels[] = {"a", "b", "c"};
        m->target = strdup("kind");
        m->nclasses = 3;
        m->classes = copy_classes(labels, 3);
        m->loss = FM_LOSS_CATEGORICAL;
        objective = FM_GBT_MULTICLASS;
        col = &frame->columns[fm_frame_find(frame, "kind")];
        for (size_t i = 0; i < n; i++)
            y[i] = fm_strdict_get(&col->dict, col->codes[i])[0] - 'a';
    } else {
        m->target = strdup("amount");
        m->loss = FM_LOSS_MSE;
        objective = FM_GBT_REGRESSION;
        col = &frame->columns[fm_frame_find(frame, "amount")];
        for (size_t i = 0; i < n; i++)
            y[i] = col->values[i];
    }
    fm_gbt_params_t p = {
        .shape = {objective, m->nclasses, nf},
        .rounds = rounds,
        .max_depth = 2,
        .eta = 0.3,
        .subsample = 1.0,
        .colsample = 1.0,
        .min_child_weight = 1.0,
        .lambda = 1.0,
        .base_score = task == FM_TASK_REGRESSION ? 3.0 : NAN,
        .seed = 1,
        .threads = 1,
    };
    fm_gbt_rows_t rows = {x, y, NULL, n};
    FM_CHECK_MSG(fm_gbt_train(&p, &rows, NULL, NULL, NULL, &m->gbt, NULL, &err) == 0, "%s",
                 err.msg);
    cJSON_AddStringToObject(m->info, "created", "2024-06-11T08:30:00Z");
    cJSON *training = cJSON_AddObjectToObject(m->info, "training");
    cJSON_AddNumberToObject(training, "best_round", rounds);
    cJSON_AddStringToObject(m->info, "notes", "h\xc3\xa9llo");
    FM_CHECK_INT(fm_model_ready(m, &err), 0);
    free(x);
    free(y);
    return m;
}

static void check_round_trip(fm_task_t task) {
    fm_frame_t *frame = make_frame(300);
    if (!frame) return;
    fm_model_t *m = make_model(frame, task, 12);
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
    FM_CHECK(fm_model_is_gbt(back) && back->gbt && !back->net && !back->net32);
    FM_CHECK_INT(back->loss, m->loss);
    FM_CHECK(back->target_mean == 0.0 && back->target_std == 1.0);

    /* The description survives byte for byte and describes the booster. */
    char *before = describe_text(m), *after = describe_text(back);
    FM_CHECK_STR(after, before);
    cJSON *d = fm_model_describe(back);
    const cJSON *booster = cJSON_GetObjectItem(d, "booster");
    FM_CHECK(booster != NULL && cJSON_GetObjectItem(d, "architecture") == NULL);
    FM_CHECK_STR(cJSON_GetObjectItem(d, "family")->valuestring, "gbt");
    FM_CHECK_STR(cJSON_GetObjectItem(booster, "format")->valuestring, "json");
    FM_CHECK_INT(cJSON_GetObjectItem(booster, "rounds")->valuedouble, 12);
    FM_CHECK_INT(cJSON_GetObjectItem(booster, "features")->valuedouble, m->prep->nfeatures);
    FM_CHECK_STR(cJSON_GetObjectItem(d, "notes")->valuestring, "h\xc3\xa9llo");
    if (task == FM_TASK_REGRESSION) {
        const cJSON *s = cJSON_GetObjectItem(d, "target_scaling");
        FM_CHECK(cJSON_GetObjectItem(s, "mean")->valuedouble == 0.0);
        FM_CHECK(cJSON_GetObjectItem(s, "std")->valuedouble == 1.0);
    }
    cJSON_Delete(d);
    free(before);
    free(after);

    /* Predictions: the booster's own, through the workspace and through the frame path, all the
     * same bit for bit, before and after the round trip. */
    size_t n = frame->nrows, nf = m->prep->nfeatures, width = fm_model_output_width(m);
    double *x = malloc(n * nf * sizeof *x);
    double *direct = malloc(n * width * sizeof *direct), *p1 = malloc(n * width * sizeof *p1);
    double *p2 = malloc(n * width * sizeof *p2), *p3 = malloc(n * width * sizeof *p3);
    FM_CHECK_INT(fm_prep_transform(m->prep, frame, NULL, n, x, &err), 0);
    FM_CHECK_INT(fm_gbt_predict(m->gbt, x, n, direct, &err), 0);
    fm_model_workspace_t *ws = NULL;
    FM_CHECK_INT(fm_model_workspace_new(back, 7, &ws, &err), 0);
    if (ws) {
        FM_CHECK_INT(fm_model_predict_encoded(back, ws, x, n, p1), 0);
        FM_CHECK_STR(fm_model_workspace_error(ws), "");
    }
    fm_model_workspace_free(ws);
    FM_CHECK_INT(fm_model_predict_frame(back, frame, p2, &err), 0);
    FM_CHECK_INT(fm_model_predict_frame(m, frame, p3, &err), 0);
    FM_CHECK(memcmp(direct, p1, n * width * sizeof *p1) == 0);
    FM_CHECK(memcmp(direct, p2, n * width * sizeof *p1) == 0);
    FM_CHECK(memcmp(direct, p3, n * width * sizeof *p1) == 0);
    if (task != FM_TASK_REGRESSION) {
        /* Better than chance on the rows it learned from. */
        int right = 0;
        for (size_t r = 0; r < n; r++) {
            const char *label = fm_model_label(back, p1 + r * width);
            const fm_column_t *col = &frame->columns[fm_frame_find(frame, back->target)];
            right += strcmp(label, fm_strdict_get(&col->dict, col->codes[r])) == 0;
        }
        FM_CHECK(right > (int)(n * 7 / 10));
    }

    /* Encoding gives the file's bytes, before and after loading; the layout is as documented. */
    char *file = NULL;
    size_t file_len = 0;
    FM_CHECK_INT(fm_file_read_all(path, 1 << 26, &file, &file_len, &err), 0);
    fm_buf_t mem = FM_BUF_INIT, again = FM_BUF_INIT;
    FM_CHECK_INT(fm_model_encode(m, &mem, &err), 0);
    FM_CHECK(mem.len == file_len && memcmp(mem.data, file, file_len) == 0);
    FM_CHECK_INT(fm_model_encode(back, &again, &err), 0);
    FM_CHECK(again.len == file_len && memcmp(again.data, file, file_len) == 0);
    fm_tensor_file_t *tf = NULL;
    FM_CHECK_INT(fm_safetensors_decode(file, file_len, "model", 1, &tf, &err), 0);
    if (tf) {
        size_t len;
        const unsigned char *bytes = fm_gbt_bytes(m->gbt, &len);
        const fm_tensor_t *t = fm_tensor_file_find(tf, FM_MODEL_BOOSTER_TENSOR);
        FM_CHECK_INT(tf->count, 1);
        FM_CHECK(t && t->dtype == FM_DTYPE_U8 && t->ndim == 1 && t->shape[0] == (int64_t)len &&
                 memcmp(t->data, bytes, len) == 0);
        FM_CHECK(len > 0 && bytes[0] == '{');
    }
    fm_tensor_file_free(tf);
    fm_buf_free(&mem);
    fm_buf_free(&again);
    free(file);
    free(x);
    free(direct);
    free(p1);
    free(p2);
    free(p3);
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

/* ---- Damaged and inconsistent files ---------------------------------------------------------- */

/* tf with its booster tensor replaced by bytes[0..len) (a valid checksum all the same). */
static void expect_booster_refused(const fm_tensor_file_t *tf, const void *bytes, size_t len,
                                   const char *want) {
    fm_tensor_file_t *edited = copy_except(tf, FM_MODEL_BOOSTER_TENSOR);
    int64_t shape[1] = {(int64_t)len};
    FM_CHECK_INT(
        fm_tensor_file_add(edited, FM_MODEL_BOOSTER_TENSOR, FM_DTYPE_U8, 1, shape, bytes, NULL), 0);
    expect_tensor_file_refused(edited, want, FM_EFORMAT);
    fm_tensor_file_free(edited);
}

/* tf with the booster text's first `from` replaced by `to`. */
static void expect_edited_booster_refused(const fm_tensor_file_t *tf, const char *from,
                                          const char *to, const char *want) {
    const fm_tensor_t *t = fm_tensor_file_find(tf, FM_MODEL_BOOSTER_TENSOR);
    const char *text = t->data, *at = memmem(text, t->nbytes, from, strlen(from));
    FM_CHECK_MSG(at != NULL, "'%s' not in the booster", from);
    if (!at) return;
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_append(&b, text, (size_t)(at - text));
    fm_buf_puts(&b, to);
    size_t rest = (size_t)(at - text) + strlen(from);
    fm_buf_append(&b, text + rest, t->nbytes - rest);
    expect_booster_refused(tf, b.data, b.len, want);
    fm_buf_free(&b);
}

static void test_damaged_files(void) {
    fm_frame_t *frame = make_frame(120);
    if (!frame) return;
    fm_model_t *m = make_model(frame, FM_TASK_BINARY, 2);
    fm_buf_t file = FM_BUF_INIT, bad = FM_BUF_INIT;
    fm_error_t err;
    FM_CHECK_INT(fm_model_encode(m, &file, &err), 0);
    printf("  a 2-round gbt model file has %zu bytes\n", file.len);

    /* Every truncation, and a flipped bit at every byte. */
    for (size_t len = 0; len < file.len; len++)
        expect_refused(file.data, len, NULL, FM_EFORMAT);
    for (size_t i = 0; i < file.len; i++) {
        fm_buf_reset(&bad);
        fm_buf_append(&bad, file.data, file.len);
        bad.data[i] = (char)(bad.data[i] ^ (1 << (i % 8)));
        expect_refused(bad.data, bad.len, NULL, FM_EFORMAT);
    }

    fm_tensor_file_t *tf = NULL;
    FM_CHECK_INT(fm_safetensors_decode(file.data, file.len, "model", 1, &tf, &err), 0);
    const fm_tensor_t *t = tf ? fm_tensor_file_find(tf, FM_MODEL_BOOSTER_TENSOR) : NULL;
    FM_CHECK(t != NULL);
    if (!t) goto done;

    /* The booster blob damaged under a valid checksum: cut, garbage, one byte changed. */
    for (size_t len = 0; len < t->nbytes; len += len < 64 ? 1 : 97)
        expect_booster_refused(tf, t->data, len, "booster");
    expect_booster_refused(tf, "\x00\x01garbage", 9, "not an XGBoost JSON model");
    expect_booster_refused(tf, "{\"learner\": 7}", 14, "booster: 'version'");
    expect_edited_booster_refused(tf, "\"left_children\":[1,", "\"left_children\":[9999,",
                                  "left_children");
    expect_edited_booster_refused(tf, "\"split_indices\":[", "\"split_indices\":[4000000,",
                                  "split_indices");
    expect_edited_booster_refused(tf, "\"num_feature\":\"", "\"num_feature\":\"9",
                                  "is for 98 features, the model has 8");
    expect_edited_booster_refused(tf, "binary:logistic", "multi:softprob", "binary:logistic");

    /* The booster tensor as the wrong type, missing, or next to other tensors. */
    {
        fm_tensor_file_t *edited = copy_except(tf, FM_MODEL_BOOSTER_TENSOR);
        int64_t shape[1] = {1};
        double one = 1.0;
        FM_CHECK_INT(
            fm_tensor_file_add(edited, FM_MODEL_BOOSTER_TENSOR, FM_DTYPE_F64, 1, shape, &one, NULL),
            0);
        expect_tensor_file_refused(edited, "one-dimensional U8", FM_EFORMAT);
        fm_tensor_file_free(edited);
        edited = copy_except(tf, FM_MODEL_BOOSTER_TENSOR);
        int64_t shape2[2] = {1, (int64_t)t->nbytes};
        FM_CHECK_INT(fm_tensor_file_add(edited, FM_MODEL_BOOSTER_TENSOR, FM_DTYPE_U8, 2, shape2,
                                        t->data, NULL),
                     0);
        expect_tensor_file_refused(edited, "one-dimensional U8", FM_EFORMAT);
        fm_tensor_file_free(edited);
        edited = copy_except(tf, FM_MODEL_BOOSTER_TENSOR);
        expect_tensor_file_refused(edited, "tensor 'gbt.booster' is missing", FM_EFORMAT);
        fm_tensor_file_free(edited);
        edited = copy_except(tf, NULL);
        FM_CHECK_INT(
            fm_tensor_file_add(edited, "layers.0.weight", FM_DTYPE_F64, 1, shape, &one, NULL), 0);
        expect_tensor_file_refused(edited, "unexpected tensor 'layers.0.weight'", FM_EFORMAT);
        fm_tensor_file_free(edited);
    }

    /* Descriptions that do not fit the booster. */
    {
        fm_tensor_file_t *edited = copy_except(tf, NULL);
        cJSON *d = get_description(edited);
        cJSON_DeleteItemFromObject(d, "booster");
        set_description(edited, d);
        expect_tensor_file_refused(edited, "booster", FM_EFORMAT);
        cJSON_Delete(d);
        d = get_description(tf);
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(d, "booster"), "format",
                                  cJSON_CreateString("ubj"));
        set_description(edited, d);
        expect_tensor_file_refused(edited, "booster format 'ubj'", FM_EUNSUPPORTED);
        cJSON_Delete(d);
        /* A network family over a booster: the network's tensors are missing. */
        d = get_description(tf);
        cJSON_ReplaceItemInObject(d, "family", cJSON_CreateString("logistic"));
        set_description(edited, d);
        expect_tensor_file_refused(edited, "architecture", FM_EFORMAT);
        cJSON_Delete(d);
        /* The booster is binary; the description says three classes. */
        d = get_description(tf);
        cJSON_ReplaceItemInObject(d, "task", cJSON_CreateString("multiclass"));
        cJSON *classes = cJSON_GetObjectItem(d, "classes");
        cJSON_AddItemToArray(classes, cJSON_CreateString("third"));
        set_description(edited, d);
        expect_tensor_file_refused(edited, "multi:softprob", FM_EFORMAT);
        cJSON_Delete(d);
        /* The preprocessing gives fewer features than the booster takes. */
        d = get_description(tf);
        cJSON *columns = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "preprocessing"), "columns");
        cJSON_DeleteItemFromArray(columns, 2);
        set_description(edited, d);
        expect_tensor_file_refused(edited, "features", 0);
        cJSON_Delete(d);
        fm_tensor_file_free(edited);
    }

done:
    fm_tensor_file_free(tf);
    fm_buf_free(&file);
    fm_buf_free(&bad);
    fm_model_free(m);
    fm_frame_free(frame);
}

/* A regression booster whose description scales its output; and mixed models never written. */
static void test_inconsistent_models(void) {
    fm_frame_t *frame = make_frame(100);
    if (!frame) return;
    fm_model_t *m = make_model(frame, FM_TASK_REGRESSION, 2);
    fm_buf_t file = FM_BUF_INIT;
    fm_error_t err;
    FM_CHECK_INT(fm_model_encode(m, &file, &err), 0);
    fm_tensor_file_t *tf = NULL;
    FM_CHECK_INT(fm_safetensors_decode(file.data, file.len, "model", 1, &tf, &err), 0);
    if (tf) {
        fm_tensor_file_t *edited = copy_except(tf, NULL);
        cJSON *d = get_description(tf);
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(d, "target_scaling"), "mean",
                                  cJSON_CreateNumber(5.0));
        set_description(edited, d);
        expect_tensor_file_refused(edited, "target scaling must be mean 0, std 1", FM_EFORMAT);
        cJSON_Delete(d);
        fm_tensor_file_free(edited);
    }
    fm_tensor_file_free(tf);

    /* Saving checks the same: a scaled booster, a gbt model with a network, a network family
     * with a booster, and a gbt model without one. */
    fm_buf_t out = FM_BUF_INIT;
    m->target_mean = 1.0;
    FM_CHECK_INT(fm_model_encode(m, &out, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "target scaling") != NULL);
    m->target_mean = 0.0;
    int sizes[2] = {(int)m->prep->nfeatures, 1};
    FM_CHECK_INT(fm_net_new(sizes, 2, FM_ACT_RELU, FM_ACT_IDENTITY, &m->net, &err), 0);
    FM_CHECK_INT(fm_model_encode(m, &out, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "a gbt model needs a booster and no network") != NULL);
    free(m->family);
    m->family = strdup("linear");
    FM_CHECK_INT(fm_model_encode(m, &out, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "needs a network and no booster") != NULL);
    free(m->family);
    m->family = strdup("gbt");
    fm_net_free(m->net);
    m->net = NULL;
    fm_gbt_t *gbt = m->gbt;
    m->gbt = NULL;
    FM_CHECK_INT(fm_model_encode(m, &out, &err), FM_EINVAL);
    fm_model_workspace_t *ws = (fm_model_workspace_t *)1;
    FM_CHECK_INT(fm_model_workspace_new(m, 4, &ws, &err), FM_ESTATE);
    FM_CHECK(ws == NULL);
    FM_CHECK_INT(fm_model_ready(m, &err), FM_EINVAL);
    FM_CHECK_INT(out.len, 0);
    m->gbt = gbt;
    fm_buf_free(&out);
    fm_buf_free(&file);
    fm_model_free(m);
    fm_frame_free(frame);
}

FM_TEST_MAIN(FM_TEST_CASE(test_round_trip_binary), FM_TEST_CASE(test_round_trip_multiclass),
             FM_TEST_CASE(test_round_trip_regression), FM_TEST_CASE(test_damaged_files),
             FM_TEST_CASE(test_inconsistent_models))
