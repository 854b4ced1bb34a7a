/*
 * Tests of the model registry. Small valid model files are built by hand (a frame from a CSV
 * written here, fitted preprocessing, a network with random weights, encoded to bytes), added to
 * registries in scratch homes under /tmp, and everything the registry reports is checked against
 * what the test knows independently: version numbers, file contents byte for byte, SHA-256 from
 * the sha256sum program, task and family, label placement, resolution rules. Bad names, bytes
 * that are not a model, a damaged registry.db, a newer schema, files deleted behind the
 * registry's back, and concurrent adders (threads sharing a handle, threads with their own
 * handles, two processes) are exercised; nothing may crash, collide or leave partial files.
 *
 * Encryption at rest: encrypted adds (the file holds no plaintext; the row keeps the plaintext's
 * SHA-256 from sha256sum), reads without a key, with a wrong key, of tampered and replaced files;
 * uploaders recorded for maker-checker; a schema-1 database written here by hand and migrated;
 * master key rotation plaintext -> key 1 -> key 2 (datasets included), and rotations killed with
 * SIGKILL at random moments, after which every file must read with one of the two keys and a
 * rerun must finish.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/rng.h"
#include "model/model.h"
#include "registry/registry.h"
#include "fm_test.h"
#include "fm_test_fs.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Number of entries in a directory (-1 when it cannot be opened). */
static int count_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* 1 when any name under path (recursively) contains ".tmp.", the atomic writer's temp suffix. */
static int has_temp_files(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (strstr(e->d_name, ".tmp.")) found = 1;
        char child[PATH_MAX];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        if (!found) found = has_temp_files(child);
    }
    closedir(d);
    return found;
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    FM_CHECK(fp != NULL);
    if (!fp) return;
    FM_CHECK(fwrite(data, 1, len, fp) == len);
    fclose(fp);
}

/* ---- model bytes built by hand ---- */

static fm_frame_t *make_frame(void) {
    static const char *const homes[] = {"rent", "own", "other", ""};
    fm_buf_t csv = FM_BUF_INIT;
    fm_buf_puts(&csv, "income,age,home,status,amount\n");
    for (size_t i = 0; i < 40; i++)
        fm_buf_printf(&csv, "%.1f,%zu,%s,%s,%.2f\n", 900.0 + 41.0 * (double)(i % 13),
                      21 + (i * 7) % 40, homes[i % 4], i % 3 ? "good" : "bad",
                      2.0 + 0.5 * (double)(i % 9));
    char path[128];
    fm_test_scratch_path(path, sizeof path, "frame.csv");
    write_bytes(path, csv.data, csv.len);
    fm_buf_free(&csv);
    fm_frame_t *frame = NULL;
    fm_error_t err;
    int rc = fm_frame_read_csv(path, NULL, &frame, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    unlink(path);
    return frame;
}

/* Encodes a model for task (binary logistic, or a regression MLP) with weights from seed. */
static void make_model_bytes(fm_task_t task, uint64_t seed, fm_buf_t *out) {
    fm_frame_t *frame = make_frame();
    fm_model_t *m = fm_model_new();
    fm_error_t err;
    size_t cols[3] = {(size_t)fm_frame_find(frame, "income"), (size_t)fm_frame_find(frame, "age"),
                      (size_t)fm_frame_find(frame, "home")};
    fm_prep_options_t opts = {0, 0};
    int rc = fm_prep_fit(frame, cols, 3, NULL, frame->nrows, &opts, &m->prep, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    int nf = (int)m->prep->nfeatures;
    m->task = task;
    if (task == FM_TASK_BINARY) {
        int sizes[2] = {nf, 1};
        rc = fm_net_new(sizes, 2, FM_ACT_RELU, FM_ACT_SIGMOID, &m->net, &err);
        m->loss = FM_LOSS_BINARY;
        m->family = strdup("logistic");
        m->target = strdup("status");
        m->nclasses = 2;
        m->classes = calloc(2, sizeof *m->classes);
        m->classes[0] = strdup("bad");
        m->classes[1] = strdup("good");
    } else {
        int sizes[3] = {nf, 4, 1};
        rc = fm_net_new(sizes, 3, FM_ACT_TANH, FM_ACT_IDENTITY, &m->net, &err);
        m->loss = FM_LOSS_MSE;
        m->family = strdup("mlp");
        m->target = strdup("amount");
        m->target_mean = 4.0;
        m->target_std = 1.25;
    }
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    fm_net_init_weights(m->net, &rng);
    cJSON_AddStringToObject(m->info, "created", "2024-06-11T08:30:00Z");
    FM_CHECK_INT(fm_model_ready(m, &err), 0);
    rc = fm_model_encode(m, out, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    fm_model_free(m);
    fm_frame_free(frame);
}

/* Built once: every test adds these same bytes. */
static fm_buf_t binary_bytes = FM_BUF_INIT, regression_bytes = FM_BUF_INIT;

static void free_model_bytes(void) {
    fm_buf_free(&binary_bytes);
    fm_buf_free(&regression_bytes);
}

static void ensure_model_bytes(void) {
    if (binary_bytes.len) return;
    make_model_bytes(FM_TASK_BINARY, 7, &binary_bytes);
    make_model_bytes(FM_TASK_REGRESSION, 11, &regression_bytes);
    atexit(free_model_bytes);
}

static fm_registry_t *open_ok(const char *home) {
    fm_registry_t *r = NULL;
    fm_error_t err;
    int rc = fm_registry_open(home, &r, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    return r;
}

static int64_t add_ok(fm_registry_t *r, const char *name, const fm_buf_t *bytes) {
    int64_t v = -1;
    fm_error_t err;
    int rc = fm_registry_add(r, name, bytes->data, bytes->len, &v, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    return v;
}

/* The SHA-256 of a file according to the sha256sum program (an independent implementation). */
static void sha256sum(const char *path, char hex[65]) {
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    hex[0] = '\0';
    FILE *p = popen(cmd, "r");
    FM_CHECK(p != NULL);
    if (!p) return;
    if (fscanf(p, "%64s", hex) != 1) hex[0] = '\0';
    pclose(p);
}

/* 1 when the file's bytes equal data[0..len). */
static int file_equals(const char *path, const void *data, size_t len) {
    char *got = NULL;
    size_t n = 0;
    fm_error_t err;
    if (fm_file_read_all(path, 1 << 26, &got, &n, &err)) return 0;
    int same = n == len && memcmp(got, data, len) == 0;
    free(got);
    return same;
}

/* ---- tests ---- */

static void test_names(void) {
    char longest[FM_REGISTRY_NAME_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[FM_REGISTRY_NAME_MAX] = '\0';
    FM_CHECK(fm_registry_valid_name(longest));
    longest[FM_REGISTRY_NAME_MAX] = 'a';
    longest[FM_REGISTRY_NAME_MAX + 1] = '\0';
    FM_CHECK(!fm_registry_valid_name(longest));
    static const char *const good[] = {"credit", "a", "Credit_Risk-v2.1", "9lives", "x.",
                                       "a..b",   "_x"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        FM_CHECK_MSG(fm_registry_valid_name(good[i]), "'%s' should be valid", good[i]);
    static const char *const bad[] = {"",  "../x", "a/b", ".hidden", "-x",      "h\xc3\xa9llo",
                                      ".", "..",   "a b", "a\\b",    "a\nb",    "tab\t",
                                      "~", "a:b",  "a*",  "\xff",    "name%s%n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        FM_CHECK_MSG(!fm_registry_valid_name(bad[i]), "'%s' should be invalid", bad[i]);
    FM_CHECK(!fm_registry_valid_name(NULL));

    /* Every call refuses bad names with FM_EINVAL naming the text, and stores nothing. */
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "names");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    fm_error_t err;
    int64_t v = 99;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FM_CHECK_INT(fm_registry_add(r, bad[i], binary_bytes.data, binary_bytes.len, &v, &err),
                     FM_EINVAL);
        FM_CHECK_INT(v, 0);
        FM_CHECK_MSG(strstr(err.msg, "invalid model name") != NULL, "%s", err.msg);
    }
    FM_CHECK_INT(fm_registry_add(r, longest, binary_bytes.data, binary_bytes.len, &v, &err),
                 FM_EINVAL);
    FM_CHECK_MSG(strstr(err.msg, "aaaa...") != NULL, "long name shown shortened: %s", err.msg);
    FM_CHECK_INT(fm_registry_add(r, "a\nb", binary_bytes.data, binary_bytes.len, &v, &err),
                 FM_EINVAL);
    FM_CHECK_MSG(strchr(err.msg, '\n') == NULL && strstr(err.msg, "a\\x0ab"), "%s", err.msg);
    FM_CHECK_INT(fm_registry_add(r, "../x", binary_bytes.data, binary_bytes.len, &v, &err),
                 FM_EINVAL);
    FM_CHECK_MSG(strstr(err.msg, "'../x'") != NULL, "%s", err.msg);
    FM_CHECK_INT(fm_registry_add(r, NULL, binary_bytes.data, binary_bytes.len, &v, &err),
                 FM_EINVAL);
    FM_CHECK_INT(fm_registry_add(r, "ok", binary_bytes.data, binary_bytes.len, &v, &err), 0);
    FM_CHECK_INT(fm_registry_set_label(r, "ok", "../prod", 1, &err), FM_EINVAL);
    FM_CHECK_MSG(strstr(err.msg, "invalid label name '../prod'") != NULL, "%s", err.msg);
    FM_CHECK_INT(fm_registry_set_label(r, "ok", "", 1, &err), FM_EINVAL);
    FM_CHECK_INT(fm_registry_set_label(r, "a/b", "prod", 1, &err), FM_EINVAL);
    FM_CHECK_INT(fm_registry_remove_label(r, "ok", ".x", &err), FM_EINVAL);
    FM_CHECK_INT(fm_registry_resolve(r, "ok", "a b", &v, &err), FM_EINVAL);
    FM_CHECK_INT(fm_registry_resolve(r, "", NULL, &v, &err), FM_EINVAL);
    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(r, "..", 1, &info, &err), FM_EINVAL);
    fm_version_info_t *list = NULL;
    size_t n = 5;
    FM_CHECK_INT(fm_registry_list(r, "x/y", &list, &n, &err), FM_EINVAL);
    FM_CHECK(list == NULL && n == 0);
    /* Only "ok" reached the disk. */
    char models[160];
    snprintf(models, sizeof models, "%s/models", home);
    FM_CHECK_INT(count_entries(models), 1);
    fm_registry_close(r);
}

static void test_open_empty(void) {
    char home[128], nested[160];
    fm_test_fresh_path(home, sizeof home, "empty");
    snprintf(nested, sizeof nested, "%s/deeper/home", home);
    fm_registry_t *r = open_ok(nested);
    if (!r) return;
    char *real = realpath(nested, NULL);
    FM_CHECK(real != NULL);
    FM_CHECK_STR(fm_registry_home(r), real);
    free(real);
    char path[256];
    snprintf(path, sizeof path, "%s/registry.db", nested);
    FM_CHECK(file_exists(path));
    snprintf(path, sizeof path, "%s/models", nested);
    struct stat st;
    FM_CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    FM_CHECK_INT(st.st_mode & 0777, 0750);
    FM_CHECK_INT(count_entries(path), 0);

    fm_error_t err;
    fm_version_info_t *list = (fm_version_info_t *)1;
    size_t n = 7;
    FM_CHECK_INT(fm_registry_list(r, NULL, &list, &n, &err), 0);
    FM_CHECK(list == NULL && n == 0);
    FM_CHECK_INT(fm_registry_list(r, "credit", &list, &n, &err), 0);
    FM_CHECK(list == NULL && n == 0);
    char **names = NULL;
    FM_CHECK_INT(fm_registry_models(r, &names, &n, &err), 0);
    FM_CHECK(names != NULL && names[0] == NULL && n == 0);
    free(names);
    int64_t v = 5;
    FM_CHECK_INT(fm_registry_resolve(r, "credit", NULL, &v, &err), FM_ENOTFOUND);
    FM_CHECK_STR(err.msg, "no model 'credit' in the registry");
    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(r, "credit", 1, &info, &err), FM_ENOTFOUND);
    FM_CHECK_STR(err.msg, "no model 'credit' in the registry");
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "production", 1, &err), FM_ENOTFOUND);
    FM_CHECK_INT(fm_registry_remove_label(r, "credit", "production", &err), FM_ENOTFOUND);
    fm_registry_close(r);
    fm_registry_close(NULL);

    /* A relative home is resolved to an absolute one. */
    char cwd[PATH_MAX];
    FM_CHECK(getcwd(cwd, sizeof cwd) != NULL);
    FM_CHECK(chdir(home) == 0);
    r = open_ok("relative-home");
    if (r) {
        char expect[PATH_MAX + 32];
        char *base = realpath(".", NULL);
        snprintf(expect, sizeof expect, "%s/relative-home", base);
        free(base);
        FM_CHECK_STR(fm_registry_home(r), expect);
        fm_registry_close(r);
    }
    FM_CHECK(chdir(cwd) == 0);

    /* Homes that cannot be: empty, a regular file, below a regular file. */
    FM_CHECK_INT(fm_registry_open("", &r, &err), FM_EINVAL);
    FM_CHECK(r == NULL);
    char file[160];
    snprintf(file, sizeof file, "%s/plain-file", home);
    write_bytes(file, "x", 1);
    FM_CHECK(fm_registry_open(file, &r, &err) < 0);
    FM_CHECK(r == NULL);
    FM_CHECK_MSG(strstr(err.msg, file) && strstr(err.msg, "not a directory"), "%s", err.msg);
    snprintf(path, sizeof path, "%s/below", file);
    FM_CHECK(fm_registry_open(path, &r, &err) < 0);
    FM_CHECK_MSG(strstr(err.msg, file) != NULL, "%s", err.msg);
}

static void test_add_list_get(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "add");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    for (int64_t want = 1; want <= 3; want++)
        FM_CHECK_INT(add_ok(r, "credit", &binary_bytes), want);
    FM_CHECK_INT(add_ok(r, "alpha", &regression_bytes), 1);
    FM_CHECK_INT(add_ok(r, "credit.v2", &binary_bytes), 1);

    fm_error_t err;
    fm_version_info_t *list = NULL;
    size_t n = 0;
    FM_CHECK_INT(fm_registry_list(r, NULL, &list, &n, &err), 0);
    FM_CHECK_INT(n, 5);
    static const char *const order_names[] = {"alpha", "credit", "credit", "credit", "credit.v2"};
    static const int64_t order_versions[] = {1, 1, 2, 3, 1};
    char sha[65];
    sha256sum(list ? list[1].path : "/dev/null", sha);
    for (size_t i = 0; i < n && i < 5; i++) {
        const fm_version_info_t *v = &list[i];
        FM_CHECK_STR(v->name, order_names[i]);
        FM_CHECK_INT(v->version, order_versions[i]);
        char want_path[PATH_MAX];
        snprintf(want_path, sizeof want_path, "%s/models/%s/%" PRId64 ".fmm", fm_registry_home(r),
                 v->name, v->version);
        FM_CHECK_STR(v->path, want_path);
        FM_CHECK(v->path[0] == '/');
        const fm_buf_t *bytes = i == 0 ? &regression_bytes : &binary_bytes;
        FM_CHECK(file_equals(v->path, bytes->data, bytes->len));
        FM_CHECK_INT(v->size, bytes->len);
        FM_CHECK_STR(v->task, i == 0 ? "regression" : "binary");
        FM_CHECK_STR(v->family, i == 0 ? "mlp" : "logistic");
        FM_CHECK_STR(v->labels, "");
        FM_CHECK_INT(strlen(v->created), 20);
        FM_CHECK(v->created[4] == '-' && v->created[10] == 'T' && v->created[19] == 'Z');
        if (i > 0) FM_CHECK_STR(v->sha256, sha);
        struct stat st;
        FM_CHECK(stat(v->path, &st) == 0 && st.st_size == v->size);
    }
    FM_CHECK_INT(strlen(sha), 64);
    if (list) {
        char alpha_sha[65];
        sha256sum(list[0].path, alpha_sha);
        FM_CHECK_STR(list[0].sha256, alpha_sha);
    }
    free(list);

    FM_CHECK_INT(fm_registry_list(r, "credit", &list, &n, &err), 0);
    FM_CHECK_INT(n, 3);
    for (size_t i = 0; i < n; i++)
        FM_CHECK_INT(list[i].version, (int64_t)i + 1);
    free(list);

    char **names = NULL;
    FM_CHECK_INT(fm_registry_models(r, &names, &n, &err), 0);
    FM_CHECK_INT(n, 3);
    if (names && n == 3) {
        FM_CHECK_STR(names[0], "alpha");
        FM_CHECK_STR(names[1], "credit");
        FM_CHECK_STR(names[2], "credit.v2");
        FM_CHECK(names[3] == NULL);
    }
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);

    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(r, "credit", 2, &info, &err), 0);
    FM_CHECK_STR(info.name, "credit");
    FM_CHECK_INT(info.version, 2);
    FM_CHECK_STR(info.sha256, sha);
    FM_CHECK_INT(fm_registry_get(r, "credit", 4, &info, &err), FM_ENOTFOUND);
    FM_CHECK_STR(err.msg, "model 'credit' has no version 4");
    FM_CHECK_INT(fm_registry_get(r, "credit", 0, &info, &err), FM_ENOTFOUND);
    FM_CHECK_INT(fm_registry_get(r, "credit", -1, &info, &err), FM_ENOTFOUND);

    /* add_file reads the file; a missing file is an error naming it. */
    char file[160];
    snprintf(file, sizeof file, "%s/m.fmm", home);
    write_bytes(file, regression_bytes.data, regression_bytes.len);
    int64_t v = 0;
    FM_CHECK_INT(fm_registry_add_file(r, "alpha", file, &v, &err), 0);
    FM_CHECK_INT(v, 2);
    snprintf(file, sizeof file, "%s/missing.fmm", home);
    FM_CHECK_INT(fm_registry_add_file(r, "alpha", file, &v, &err), FM_EIO);
    FM_CHECK_INT(v, 0);
    FM_CHECK_MSG(strstr(err.msg, file) != NULL, "%s", err.msg);
    FM_CHECK_INT(fm_registry_add_file(r, "alpha", home, &v, &err), FM_EIO);
    FM_CHECK_INT(fm_registry_resolve(r, "alpha", NULL, &v, &err), 0);
    FM_CHECK_INT(v, 2);
    fm_registry_close(r);
}

static void test_labels(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "labels");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    for (int i = 0; i < 3; i++)
        add_ok(r, "credit", &binary_bytes);
    add_ok(r, "other", &binary_bytes);
    fm_error_t err;
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "production", 2, &err), 0);
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "staging", 3, &err), 0);
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "canary", 3, &err), 0);
    FM_CHECK_INT(fm_registry_set_label(r, "other", "production", 1, &err), 0);
    fm_version_info_t *list = NULL;
    size_t n = 0;
    FM_CHECK_INT(fm_registry_list(r, "credit", &list, &n, &err), 0);
    FM_CHECK_INT(n, 3);
    if (n == 3) {
        FM_CHECK_STR(list[0].labels, "");
        FM_CHECK_STR(list[1].labels, "production");
        FM_CHECK_STR(list[2].labels, "canary,staging");
    }
    free(list);

    /* Moving a label: it leaves version 2 and joins 3. */
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "production", 3, &err), 0);
    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(r, "credit", 2, &info, &err), 0);
    FM_CHECK_STR(info.labels, "");
    FM_CHECK_INT(fm_registry_get(r, "credit", 3, &info, &err), 0);
    FM_CHECK_STR(info.labels, "canary,production,staging");
    /* Setting it where it already is changes nothing. */
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "production", 3, &err), 0);
    FM_CHECK_INT(fm_registry_get(r, "credit", 3, &info, &err), 0);
    FM_CHECK_STR(info.labels, "canary,production,staging");
    /* Labels belong to their model. */
    FM_CHECK_INT(fm_registry_get(r, "other", 1, &info, &err), 0);
    FM_CHECK_STR(info.labels, "production");

    /* Missing version or model: not found, nothing changed. */
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "production", 4, &err), FM_ENOTFOUND);
    FM_CHECK_STR(err.msg, "model 'credit' has no version 4");
    FM_CHECK_INT(fm_registry_set_label(r, "nope", "production", 1, &err), FM_ENOTFOUND);
    FM_CHECK_STR(err.msg, "no model 'nope' in the registry");
    FM_CHECK_INT(fm_registry_get(r, "credit", 3, &info, &err), 0);
    FM_CHECK_STR(info.labels, "canary,production,staging");

    /* Removal. */
    FM_CHECK_INT(fm_registry_remove_label(r, "credit", "staging", &err), 0);
    FM_CHECK_INT(fm_registry_remove_label(r, "credit", "staging", &err), FM_ENOTFOUND);
    FM_CHECK_STR(err.msg, "model 'credit' has no label 'staging'");
    FM_CHECK_INT(fm_registry_remove_label(r, "nope", "staging", &err), FM_ENOTFOUND);
    FM_CHECK_INT(fm_registry_get(r, "credit", 3, &info, &err), 0);
    FM_CHECK_STR(info.labels, "canary,production");
    FM_CHECK_INT(fm_registry_get(r, "other", 1, &info, &err), 0);
    FM_CHECK_STR(info.labels, "production");
    fm_registry_close(r);
}

static void test_labels_overflow(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "many-labels");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    add_ok(r, "m", &binary_bytes);
    fm_error_t err;
    /* Ten labels of 60 characters cannot fit in 255: whole labels, then ",...". */
    for (int i = 0; i < 10; i++) {
        char label[64];
        snprintf(label, sizeof label, "l%d%058d", i, 0);
        FM_CHECK_INT(fm_registry_set_label(r, "m", label, 1, &err), 0);
    }
    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(r, "m", 1, &info, &err), 0);
    size_t len = strlen(info.labels);
    FM_CHECK(len < sizeof info.labels);
    FM_CHECK_MSG(len > 4 && !strcmp(info.labels + len - 4, ",..."), "%s", info.labels);
    FM_CHECK_MSG(!strncmp(info.labels, "l0", 2) && strstr(info.labels, ",l1") &&
                     strstr(info.labels, ",l2"),
                 "%s", info.labels);
    fm_registry_close(r);
}

static void test_resolve(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "resolve");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    fm_error_t err;
    int64_t v = 0;
    add_ok(r, "credit", &binary_bytes);
    FM_CHECK_INT(fm_registry_resolve(r, "credit", NULL, &v, &err), 0);
    FM_CHECK_INT(v, 1);
    add_ok(r, "credit", &binary_bytes);
    add_ok(r, "credit", &binary_bytes);
    FM_CHECK_INT(fm_registry_resolve(r, "credit", NULL, &v, &err), 0);
    FM_CHECK_INT(v, 3);
    /* Production wins over newer versions. */
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "production", 1, &err), 0);
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "staging", 2, &err), 0);
    FM_CHECK_INT(fm_registry_resolve(r, "credit", NULL, &v, &err), 0);
    FM_CHECK_INT(v, 1);
    FM_CHECK_INT(fm_registry_resolve(r, "credit", "production", &v, &err), 0);
    FM_CHECK_INT(v, 1);
    FM_CHECK_INT(fm_registry_resolve(r, "credit", "staging", &v, &err), 0);
    FM_CHECK_INT(v, 2);
    v = 9;
    FM_CHECK_INT(fm_registry_resolve(r, "credit", "canary", &v, &err), FM_ENOTFOUND);
    FM_CHECK_STR(err.msg, "model 'credit' has no label 'canary'");
    FM_CHECK_INT(v, 0);
    FM_CHECK_INT(fm_registry_resolve(r, "nope", "staging", &v, &err), FM_ENOTFOUND);
    FM_CHECK_STR(err.msg, "no model 'nope' in the registry");
    /* A newer add does not move production. */
    add_ok(r, "credit", &binary_bytes);
    FM_CHECK_INT(fm_registry_resolve(r, "credit", NULL, &v, &err), 0);
    FM_CHECK_INT(v, 1);
    /* Without production: the newest again. */
    FM_CHECK_INT(fm_registry_remove_label(r, "credit", "production", &err), 0);
    FM_CHECK_INT(fm_registry_resolve(r, "credit", NULL, &v, &err), 0);
    FM_CHECK_INT(v, 4);
    FM_CHECK_INT(fm_registry_resolve(r, "credit", "production", &v, &err), FM_ENOTFOUND);
    fm_registry_close(r);
}

static void test_invalid_bytes(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "invalid");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    add_ok(r, "credit", &binary_bytes);
    fm_error_t err;
    int64_t v = 0;
    char garbage[300];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (char)(i * 37 + 11);
    unsigned char *flipped = malloc(binary_bytes.len);
    memcpy(flipped, binary_bytes.data, binary_bytes.len);
    flipped[binary_bytes.len - 9] ^= 0x40; /* a weight byte: the checksum catches it */
    struct {
        const char *what;
        const void *data;
        size_t len;
    } cases[] = {
        {"empty", "", 0},
        {"garbage", garbage, sizeof garbage},
        {"truncated", binary_bytes.data, binary_bytes.len / 2},
        {"header only", binary_bytes.data, 8},
        {"bit flipped", flipped, binary_bytes.len},
        {"null", NULL, 0},
    };
    char models[160], credit_dir[192], newcomer_dir[192];
    snprintf(models, sizeof models, "%s/models", home);
    snprintf(credit_dir, sizeof credit_dir, "%s/credit", models);
    snprintf(newcomer_dir, sizeof newcomer_dir, "%s/newcomer", models);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        v = 77;
        int rc = fm_registry_add(r, "credit", cases[i].data, cases[i].len, &v, &err);
        FM_CHECK_MSG(rc == FM_EFORMAT, "%s: rc %d", cases[i].what, rc);
        FM_CHECK_INT(v, 0);
        FM_CHECK_MSG(strstr(err.msg, "credit") != NULL, "%s: %s", cases[i].what, err.msg);
        rc = fm_registry_add(r, "newcomer", cases[i].data, cases[i].len, &v, &err);
        FM_CHECK_MSG(rc == FM_EFORMAT, "%s: rc %d", cases[i].what, rc);
    }
    free(flipped);
    /* No row, no file, no directory for the model that never got a valid file. */
    fm_version_info_t *list = NULL;
    size_t n = 0;
    FM_CHECK_INT(fm_registry_list(r, NULL, &list, &n, &err), 0);
    FM_CHECK_INT(n, 1);
    free(list);
    FM_CHECK_INT(count_entries(credit_dir), 1);
    FM_CHECK(!file_exists(newcomer_dir));
    FM_CHECK(!has_temp_files(home));
    FM_CHECK_INT(fm_registry_resolve(r, "newcomer", NULL, &v, &err), FM_ENOTFOUND);

    /* add_file of a file that is not a model names the file. */
    char file[192];
    snprintf(file, sizeof file, "%s/notes.txt", home);
    write_bytes(file, "hello, not a model\n", 19);
    FM_CHECK_INT(fm_registry_add_file(r, "credit", file, &v, &err), FM_EFORMAT);
    FM_CHECK_MSG(strstr(err.msg, file) != NULL, "%s", err.msg);

    /* The next valid add gets the next number. */
    FM_CHECK_INT(add_ok(r, "credit", &binary_bytes), 2);
    FM_CHECK_INT(add_ok(r, "newcomer", &binary_bytes), 1);
    fm_registry_close(r);
}

static void test_reopen(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "reopen");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    fm_error_t err;
    add_ok(r, "credit", &binary_bytes);
    add_ok(r, "credit", &binary_bytes);
    add_ok(r, "scorer", &regression_bytes);
    FM_CHECK_INT(fm_registry_set_label(r, "credit", "production", 1, &err), 0);
    fm_version_info_t *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    FM_CHECK_INT(fm_registry_list(r, NULL, &before, &nb, &err), 0);
    fm_registry_close(r);

    r = open_ok(home);
    if (!r) {
        free(before);
        return;
    }
    FM_CHECK_INT(fm_registry_list(r, NULL, &after, &na, &err), 0);
    FM_CHECK_INT(na, 3);
    FM_CHECK_INT(nb, na);
    for (size_t i = 0; i < na && i < nb; i++)
        FM_CHECK_MSG(memcmp(&before[i], &after[i], sizeof before[i]) == 0, "entry %zu differs", i);
    free(before);
    free(after);
    int64_t v = 0;
    FM_CHECK_INT(fm_registry_resolve(r, "credit", NULL, &v, &err), 0);
    FM_CHECK_INT(v, 1);
    FM_CHECK_INT(add_ok(r, "credit", &binary_bytes), 3);
    fm_registry_close(r);

    /* Two handles on one home see each other's writes. */
    fm_registry_t *a = open_ok(home), *b = open_ok(home);
    if (a && b) {
        FM_CHECK_INT(add_ok(a, "credit", &binary_bytes), 4);
        FM_CHECK_INT(fm_registry_set_label(b, "credit", "production", 4, &err), 0);
        FM_CHECK_INT(fm_registry_resolve(a, "credit", NULL, &v, &err), 0);
        FM_CHECK_INT(v, 4);
        FM_CHECK_INT(add_ok(b, "credit", &binary_bytes), 5);
    }
    fm_registry_close(a);
    fm_registry_close(b);
}

/* ---- concurrency ---- */

#define THREADS         4
#define ADDS_PER_THREAD 10

typedef struct adder {
    fm_registry_t *shared; /* NULL: open an own handle on home */
    const char *home;
    const char *name;
    int64_t versions[ADDS_PER_THREAD];
    int failures;
    char message[FM_ERROR_MESSAGE_MAX];
} adder_t;

static void *adder_main(void *arg) {
    adder_t *a = arg;
    fm_error_t err;
    fm_registry_t *r = a->shared;
    if (!r && fm_registry_open(a->home, &r, &err)) {
        a->failures = ADDS_PER_THREAD;
        snprintf(a->message, sizeof a->message, "%s", err.msg);
        return NULL;
    }
    for (int i = 0; i < ADDS_PER_THREAD; i++) {
        if (fm_registry_add(r, a->name, binary_bytes.data, binary_bytes.len, &a->versions[i],
                            &err)) {
            a->failures++;
            snprintf(a->message, sizeof a->message, "%s", err.msg);
        }
    }
    if (!a->shared) fm_registry_close(r);
    return NULL;
}

/* Checks that versions[0..n) are exactly 1..n (each once) and that the registry agrees. */
static void check_consecutive(fm_registry_t *r, const char *name, const int64_t *versions,
                              size_t n) {
    unsigned char *seen = calloc(n + 1, 1);
    for (size_t i = 0; i < n; i++) {
        int64_t v = versions[i];
        FM_CHECK_MSG(v >= 1 && (size_t)v <= n && !seen[v],
                     "version %" PRId64 " out of range or "
                     "repeated",
                     v);
        if (v >= 1 && (size_t)v <= n) seen[v] = 1;
    }
    free(seen);
    fm_version_info_t *list = NULL;
    size_t count = 0;
    fm_error_t err;
    FM_CHECK_INT(fm_registry_list(r, name, &list, &count, &err), 0);
    FM_CHECK_INT(count, n);
    for (size_t i = 0; i < count; i++) {
        FM_CHECK_INT(list[i].version, (int64_t)i + 1);
        FM_CHECK(file_equals(list[i].path, binary_bytes.data, binary_bytes.len));
    }
    free(list);
}

static void run_threads(int shared) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, shared ? "threads-shared" : "threads-own");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    adder_t adders[THREADS];
    pthread_t tids[THREADS];
    memset(adders, 0, sizeof adders);
    for (int t = 0; t < THREADS; t++) {
        adders[t].shared = shared ? r : NULL;
        adders[t].home = home;
        adders[t].name = "busy";
        FM_CHECK(pthread_create(&tids[t], NULL, adder_main, &adders[t]) == 0);
    }
    int64_t all[THREADS * ADDS_PER_THREAD];
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tids[t], NULL);
        FM_CHECK_MSG(adders[t].failures == 0, "thread %d: %s", t, adders[t].message);
        /* One thread's own adds come out increasing. */
        for (int i = 1; i < ADDS_PER_THREAD; i++)
            FM_CHECK(adders[t].versions[i] > adders[t].versions[i - 1]);
        memcpy(all + t * ADDS_PER_THREAD, adders[t].versions, sizeof adders[t].versions);
    }
    check_consecutive(r, "busy", all, THREADS * ADDS_PER_THREAD);
    FM_CHECK(!has_temp_files(home));
    fm_registry_close(r);
}

static void test_threads_shared_handle(void) {
    run_threads(1);
}

static void test_threads_own_handles(void) {
    run_threads(0);
}

static void test_two_processes(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "processes");
    /* Both children open the same not-yet-existing home at once: creating the schema races too.
     * Each reports its versions through a pipe. */
    int fds[2][2];
    pid_t pids[2];
    for (int p = 0; p < 2; p++) {
        FM_CHECK(pipe(fds[p]) == 0);
        pids[p] = fork();
        FM_CHECK(pids[p] >= 0);
        if (pids[p] == 0) {
            close(fds[p][0]);
            adder_t a;
            memset(&a, 0, sizeof a);
            a.home = home;
            a.name = "forked";
            adder_main(&a);
            if (a.failures) fprintf(stderr, "child %d: %s\n", p, a.message);
            ssize_t w = write(fds[p][1], a.versions, sizeof a.versions);
            close(fds[p][1]);
            _exit(a.failures == 0 && w == (ssize_t)sizeof a.versions ? 0 : 1);
        }
        close(fds[p][1]);
    }
    int64_t all[2 * ADDS_PER_THREAD];
    memset(all, 0, sizeof all);
    for (int p = 0; p < 2; p++) {
        ssize_t got = read(fds[p][0], all + p * ADDS_PER_THREAD, ADDS_PER_THREAD * sizeof(int64_t));
        FM_CHECK_INT(got, ADDS_PER_THREAD * (ssize_t)sizeof(int64_t));
        close(fds[p][0]);
        int status = 0;
        FM_CHECK(waitpid(pids[p], &status, 0) == pids[p]);
        FM_CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %d", p,
                     status);
    }
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    check_consecutive(r, "forked", all, 2 * ADDS_PER_THREAD);
    fm_registry_close(r);
}

/* ---- damage ---- */

static void test_corrupt_database(void) {
    char home[128], db[192];
    fm_test_fresh_path(home, sizeof home, "corrupt");
    FM_CHECK(mkdir(home, 0750) == 0);
    snprintf(db, sizeof db, "%s/registry.db", home);
    char garbage[8192];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (char)(i * 131 + 7);
    write_bytes(db, garbage, sizeof garbage);
    fm_registry_t *r = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_registry_open(home, &r, &err), FM_EFORMAT);
    FM_CHECK(r == NULL);
    FM_CHECK_MSG(strstr(err.msg, "registry.db") && strstr(err.msg, "not a finmaas registry"), "%s",
                 err.msg);

    /* A real registry whose pages were overwritten past the header. */
    ensure_model_bytes();
    fm_test_fresh_path(home, sizeof home, "corrupt-pages");
    r = open_ok(home);
    if (!r) return;
    for (int i = 0; i < 3; i++)
        add_ok(r, "m", &binary_bytes);
    fm_registry_close(r);
    snprintf(db, sizeof db, "%s/registry.db", home);
    FILE *fp = fopen(db, "r+b");
    FM_CHECK(fp != NULL);
    if (fp) {
        fseek(fp, 100, SEEK_SET);
        fwrite(garbage, 1, sizeof garbage, fp);
        fclose(fp);
    }
    r = NULL;
    int rc = fm_registry_open(home, &r, &err);
    if (rc == 0) {
        /* Damage may go unnoticed until a query touches it; then it must be an error. */
        fm_version_info_t *list = NULL;
        size_t n = 0;
        rc = fm_registry_list(r, NULL, &list, &n, &err);
        free(list);
        fm_registry_close(r);
    }
    FM_CHECK_MSG(rc == FM_EFORMAT, "rc %d: %s", rc, err.msg);
    FM_CHECK_MSG(strstr(err.msg, "registry.db") != NULL, "%s", err.msg);

    /* An empty registry.db (zero bytes) is a new database, not an error. */
    fm_test_fresh_path(home, sizeof home, "empty-db");
    FM_CHECK(mkdir(home, 0750) == 0);
    snprintf(db, sizeof db, "%s/registry.db", home);
    write_bytes(db, "", 0);
    r = open_ok(home);
    fm_registry_close(r);

    /* registry.db that is a directory. */
    fm_test_fresh_path(home, sizeof home, "db-dir");
    snprintf(db, sizeof db, "%s/registry.db", home);
    FM_CHECK(mkdir(home, 0750) == 0 && mkdir(db, 0750) == 0);
    FM_CHECK(fm_registry_open(home, &r, &err) < 0);
    FM_CHECK_MSG(strstr(err.msg, "registry.db") != NULL, "%s", err.msg);
}

static void test_schema_versions(void) {
    char home[128], db[192];
    fm_test_fresh_path(home, sizeof home, "schema");
    fm_registry_t *r = open_ok(home);
    fm_registry_close(r);
    snprintf(db, sizeof db, "%s/registry.db", home);
    sqlite3 *s = NULL;
    FM_CHECK(sqlite3_open(db, &s) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    FM_CHECK(sqlite3_prepare_v2(s, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
    FM_CHECK(sqlite3_step(st) == SQLITE_ROW);
    FM_CHECK_INT(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    FM_CHECK(sqlite3_prepare_v2(s, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    FM_CHECK(sqlite3_step(st) == SQLITE_ROW);
    FM_CHECK_STR((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    FM_CHECK(sqlite3_exec(s, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(s);
    fm_error_t err;
    FM_CHECK_INT(fm_registry_open(home, &r, &err), FM_EUNSUPPORTED);
    FM_CHECK_MSG(strstr(err.msg, "schema version 99 is newer") != NULL, "%s", err.msg);

    /* A SQLite database of some other program: its tables do not fit. */
    fm_test_fresh_path(home, sizeof home, "foreign");
    FM_CHECK(mkdir(home, 0750) == 0);
    snprintf(db, sizeof db, "%s/registry.db", home);
    FM_CHECK(sqlite3_open(db, &s) == SQLITE_OK);
    FM_CHECK(sqlite3_exec(s, "CREATE TABLE versions(x); PRAGMA user_version = 1", NULL, NULL,
                          NULL) == SQLITE_OK);
    sqlite3_close(s);
    FM_CHECK_INT(fm_registry_open(home, &r, &err), FM_EFORMAT);
    FM_CHECK_MSG(strstr(err.msg, "not a finmaas registry") != NULL, "%s", err.msg);
}

static void test_missing_file(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "missing-file");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    add_ok(r, "credit", &binary_bytes);
    add_ok(r, "credit", &binary_bytes);
    fm_error_t err;
    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(r, "credit", 1, &info, &err), 0);
    FM_CHECK(unlink(info.path) == 0);
    /* The row is still reported; a loader then fails naming the file. */
    fm_version_info_t again;
    FM_CHECK_INT(fm_registry_get(r, "credit", 1, &again, &err), 0);
    FM_CHECK_STR(again.path, info.path);
    FM_CHECK(!file_exists(again.path));
    fm_model_t *m = NULL;
    FM_CHECK(fm_model_load(again.path, &m, &err) < 0);
    FM_CHECK_MSG(strstr(err.msg, again.path) != NULL, "%s", err.msg);
    /* Version 2 still loads, and the next add is 3 (numbers are never reused). */
    FM_CHECK_INT(fm_registry_get(r, "credit", 2, &info, &err), 0);
    FM_CHECK_INT(fm_model_load(info.path, &m, &err), 0);
    fm_model_free(m);
    FM_CHECK_INT(add_ok(r, "credit", &binary_bytes), 3);
    fm_registry_close(r);
}

/* A model directory that cannot be written: the add fails naming the path, and nothing is stored.
 */
static void test_unwritable_model_dir(void) {
    ensure_model_bytes();
    char home[128], blocker[192];
    fm_test_fresh_path(home, sizeof home, "unwritable");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    /* A regular file where the model's directory would go. */
    snprintf(blocker, sizeof blocker, "%s/models/blocked", fm_registry_home(r));
    write_bytes(blocker, "x", 1);
    fm_error_t err;
    int64_t v = 5;
    FM_CHECK(fm_registry_add(r, "blocked", binary_bytes.data, binary_bytes.len, &v, &err) < 0);
    FM_CHECK_INT(v, 0);
    FM_CHECK_MSG(strstr(err.msg, blocker) && strstr(err.msg, "model 'blocked'"), "%s", err.msg);
    char **names = NULL;
    size_t n = 9;
    FM_CHECK_INT(fm_registry_models(r, &names, &n, &err), 0);
    FM_CHECK_INT(n, 0);
    free(names);
    unlink(blocker);
    FM_CHECK_INT(add_ok(r, "blocked", &binary_bytes), 1);
    fm_registry_close(r);
}

/* ---- encryption at rest ---- */

/* A new master key: generated into a key file by the library, then loaded back from it. */
static void make_key(const char *name, fm_master_key_t *key) {
    char path[128];
    fm_test_scratch_path(path, sizeof path, name);
    unlink(path);
    fm_error_t err;
    FM_CHECK_MSG(fm_master_key_generate(path, &err) == 0, "%s", err.msg);
    FM_CHECK_MSG(fm_master_key_load(path, key, &err) == 0, "%s", err.msg);
}

/* 1 when the file at path is encrypted under key (its header names key's id). */
static int file_under_key(const char *path, const fm_master_key_t *key) {
    unsigned char head[16];
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t n = fread(head, 1, sizeof head, fp);
    fclose(fp);
    return n == sizeof head && !memcmp(head, FM_CRYPT_MAGIC, 8) && !memcmp(head + 8, key->id, 8);
}

/* fm_registry_read of name/version with the registry's key set to key (NULL: none): the code,
 * and a check that a success gives exactly bytes. */
static int read_with(fm_registry_t *r, const fm_master_key_t *key, const char *name, int64_t v,
                     const fm_buf_t *bytes, fm_error_t *err) {
    fm_registry_set_master_key(r, key);
    fm_buf_t out = FM_BUF_INIT;
    int rc = fm_registry_read(r, name, v, &out, err);
    if (rc == 0)
        FM_CHECK_MSG(out.len == bytes->len && !memcmp(out.data, bytes->data, bytes->len),
                     "%s version %" PRId64 " read back %zu bytes, not the model's %zu", name, v,
                     out.len, bytes->len);
    else
        FM_CHECK_MSG(out.data == NULL && out.len == 0, "a failed read left %zu bytes", out.len);
    fm_buf_free(&out);
    return rc;
}

/* The SHA-256 of bytes according to sha256sum, through a scratch file. */
static void sha256_of(const fm_buf_t *bytes, char hex[65]) {
    char path[128];
    fm_test_scratch_path(path, sizeof path, "plain-for-sha256sum");
    write_bytes(path, bytes->data, bytes->len);
    sha256sum(path, hex);
    unlink(path);
}

/* 1 when some 32-byte window of bytes (one every 509 bytes) shows up in the file. */
static int file_leaks(const char *path, const fm_buf_t *bytes) {
    char *data = NULL;
    size_t n = 0;
    fm_error_t err;
    if (fm_file_read_all(path, 1 << 26, &data, &n, &err)) return 0;
    int leaked = 0;
    for (size_t at = 0; !leaked && at + 32 <= bytes->len; at += 509)
        leaked = memmem(data, n, bytes->data + at, 32) != NULL;
    free(data);
    return leaked;
}

static void test_encrypted_add_and_read(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "encrypted");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    fm_master_key_t k1, k2;
    make_key("enc-k1.key", &k1);
    make_key("enc-k2.key", &k2);
    fm_error_t err;
    FM_CHECK_INT(fm_registry_set_master_key(r, &k1), 0);
    FM_CHECK_INT(add_ok(r, "credit", &binary_bytes), 1);
    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(r, "credit", 1, &info, &err), 0);
    /* On disk: ciphertext under k1, of the size the format gives, with none of the model. */
    FM_CHECK(file_under_key(info.path, &k1));
    FM_CHECK(!file_leaks(info.path, &binary_bytes));
    size_t chunks = (binary_bytes.len + 65535) / 65536;
    struct stat st;
    FM_CHECK(stat(info.path, &st) == 0);
    FM_CHECK_INT(st.st_size, 40 + binary_bytes.len + chunks * 21);
    /* The row describes the plaintext model. */
    char sha[65];
    sha256_of(&binary_bytes, sha);
    FM_CHECK_STR(info.sha256, sha);
    FM_CHECK_INT(info.size, binary_bytes.len);
    FM_CHECK_STR(info.task, "binary");
    FM_CHECK_INT(read_with(r, &k1, "credit", 1, &binary_bytes, &err), 0);
    /* Reading appends after what the buffer holds. */
    fm_buf_t out = FM_BUF_INIT;
    fm_buf_puts(&out, "head");
    FM_CHECK_INT(fm_registry_read(r, "credit", 1, &out, &err), 0);
    FM_CHECK(out.len == 4 + binary_bytes.len && !memcmp(out.data, "head", 4) &&
             !memcmp(out.data + 4, binary_bytes.data, binary_bytes.len));
    fm_buf_free(&out);
    fm_model_t *m = NULL;
    FM_CHECK_INT(fm_registry_load_model(r, &info, &m, &err), 0);
    FM_CHECK(m != NULL && m->task == FM_TASK_BINARY && !strcmp(m->family, "logistic"));
    fm_model_free(m);

    /* No key: a clear FM_EDENIED naming model, version and the variable to set. */
    FM_CHECK_INT(read_with(r, NULL, "credit", 1, &binary_bytes, &err), FM_EDENIED);
    FM_CHECK_MSG(strstr(err.msg, "model 'credit' version 1 is encrypted: set "
                                 "FINMAAS_MASTER_KEY_FILE"),
                 "%s", err.msg);
    m = (fm_model_t *)&err;
    FM_CHECK_INT(fm_registry_load_model(r, &info, &m, &err), FM_EDENIED);
    FM_CHECK(m == NULL);
    /* A wrong key: FM_EDENIED naming the version and saying it is another key. */
    FM_CHECK_INT(read_with(r, &k2, "credit", 1, &binary_bytes, &err), FM_EDENIED);
    FM_CHECK_MSG(strstr(err.msg, "model 'credit' version 1") &&
                     strstr(err.msg, "encrypted with a different master key"),
                 "%s", err.msg);
    FM_CHECK_INT(read_with(r, &k1, "credit", 9, &binary_bytes, &err), FM_ENOTFOUND);
    FM_CHECK_INT(read_with(r, &k1, "../x", 1, &binary_bytes, &err), FM_EINVAL);

    /* Without a key, adds are plaintext again; a key set later still reads them (mixed home). */
    FM_CHECK_INT(fm_registry_set_master_key(r, NULL), 0);
    FM_CHECK_INT(add_ok(r, "credit", &regression_bytes), 2);
    FM_CHECK_INT(fm_registry_get(r, "credit", 2, &info, &err), 0);
    FM_CHECK(file_equals(info.path, regression_bytes.data, regression_bytes.len));
    FM_CHECK_INT(read_with(r, &k1, "credit", 2, &regression_bytes, &err), 0);
    FM_CHECK_INT(read_with(r, NULL, "credit", 2, &regression_bytes, &err), 0);
    fm_registry_set_master_key(r, &k1);
    FM_CHECK_INT(add_ok(r, "credit", &binary_bytes), 3);
    FM_CHECK_INT(add_ok(r, "credit", &binary_bytes), 4);

    /* Tampered ciphertext: one flipped bit in the middle. */
    FM_CHECK_INT(fm_registry_get(r, "credit", 1, &info, &err), 0);
    FILE *fp = fopen(info.path, "r+b");
    FM_CHECK(fp != NULL);
    if (fp) {
        fseek(fp, (long)(st.st_size / 2), SEEK_SET);
        int c = fgetc(fp);
        fseek(fp, (long)(st.st_size / 2), SEEK_SET);
        fputc(c ^ 0x10, fp);
        fclose(fp);
    }
    FM_CHECK_INT(read_with(r, &k1, "credit", 1, &binary_bytes, &err), FM_EFORMAT);
    FM_CHECK_MSG(strstr(err.msg, "model 'credit' version 1") && strstr(err.msg, "tampered"), "%s",
                 err.msg);
    /* A plaintext file replaced by another valid model: the SHA-256 gives it away. */
    FM_CHECK_INT(fm_registry_get(r, "credit", 2, &info, &err), 0);
    write_bytes(info.path, binary_bytes.data, binary_bytes.len);
    FM_CHECK_INT(read_with(r, &k1, "credit", 2, &binary_bytes, &err), FM_EFORMAT);
    FM_CHECK_MSG(strstr(err.msg, "model 'credit' version 2") && strstr(err.msg, "SHA-256") &&
                     strstr(err.msg, "replaced"),
                 "%s", err.msg);
    FM_CHECK_INT(fm_registry_load_model(r, &info, &m, &err), FM_EFORMAT);
    FM_CHECK_MSG(strstr(err.msg, "SHA-256"), "%s", err.msg);
    /* An encrypted file swapped for another model encrypted with the same key: authentic, but
     * not this version. */
    FM_CHECK_INT(fm_registry_get(r, "credit", 3, &info, &err), 0);
    fm_buf_t other = FM_BUF_INIT;
    FM_CHECK_INT(fm_crypt_encrypt(&k1, regression_bytes.data, regression_bytes.len, &other, &err),
                 0);
    write_bytes(info.path, other.data, other.len);
    fm_buf_free(&other);
    FM_CHECK_INT(read_with(r, &k1, "credit", 3, &binary_bytes, &err), FM_EFORMAT);
    FM_CHECK_MSG(strstr(err.msg, "SHA-256"), "%s", err.msg);
    /* A truncated encrypted file. */
    FM_CHECK_INT(fm_registry_get(r, "credit", 4, &info, &err), 0);
    FM_CHECK(truncate(info.path, 100) == 0);
    FM_CHECK_INT(read_with(r, &k1, "credit", 4, &binary_bytes, &err), FM_EFORMAT);
    FM_CHECK_MSG(strstr(err.msg, "truncated"), "%s", err.msg);
    /* A missing file names the version. */
    FM_CHECK(unlink(info.path) == 0);
    FM_CHECK(read_with(r, &k1, "credit", 4, &binary_bytes, &err) < 0);
    FM_CHECK_MSG(strstr(err.msg, "model 'credit' version 4") && strstr(err.msg, info.path), "%s",
                 err.msg);
    fm_registry_close(r);
    fm_master_key_wipe(&k1);
    fm_master_key_wipe(&k2);
}

static void test_uploaded_by(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "uploaders");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    fm_error_t err;
    int64_t v = 0;
    FM_CHECK_INT(fm_registry_add_as(r, "credit", binary_bytes.data, binary_bytes.len,
                                    "k_0123456789ab", &v, &err),
                 0);
    FM_CHECK_INT(v, 1);
    FM_CHECK_INT(add_ok(r, "credit", &binary_bytes), 2);
    char file[192];
    snprintf(file, sizeof file, "%s/m.fmm", home);
    write_bytes(file, regression_bytes.data, regression_bytes.len);
    FM_CHECK_INT(fm_registry_add_file(r, "other", file, &v, &err), 0);
    static const char *const bad[] = {NULL,  "",    "k_0123456789abcd", "a b",
                                      "x\n", "k/1", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 9;
        FM_CHECK_INT(
            fm_registry_add_as(r, "credit", binary_bytes.data, binary_bytes.len, bad[i], &v, &err),
            FM_EINVAL);
        FM_CHECK_INT(v, 0);
        FM_CHECK_MSG(strstr(err.msg, "uploader"), "%s", err.msg);
    }
    fm_version_info_t *list = NULL;
    size_t n = 0;
    FM_CHECK_INT(fm_registry_list(r, NULL, &list, &n, &err), 0);
    FM_CHECK_INT(n, 3);
    if (n == 3) {
        FM_CHECK_STR(list[0].uploaded_by, "k_0123456789ab");
        FM_CHECK_STR(list[1].uploaded_by, "cli");
        FM_CHECK_STR(list[2].uploaded_by, "cli");
    }
    free(list);
    fm_registry_close(r);
    /* Stored, not just remembered: a new handle reads the same. */
    r = open_ok(home);
    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(r, "credit", 1, &info, &err), 0);
    FM_CHECK_STR(info.uploaded_by, "k_0123456789ab");
    fm_registry_close(r);
}

/* The schema of the first release, written out here rather than taken from db.c. */
static const char schema_1[] =
    "CREATE TABLE models (name TEXT PRIMARY KEY NOT NULL, created TEXT NOT NULL);"
    "CREATE TABLE versions (model TEXT NOT NULL REFERENCES models(name), version INTEGER NOT NULL "
    "CHECK (version > 0), path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL CHECK "
    "(size >= 0), task TEXT NOT NULL, family TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY "
    "(model, version));"
    "CREATE TABLE labels (model TEXT NOT NULL REFERENCES models(name), label TEXT NOT NULL, "
    "version INTEGER NOT NULL, updated TEXT NOT NULL, PRIMARY KEY (model, label), FOREIGN KEY "
    "(model, version) REFERENCES versions(model, version));"
    "CREATE INDEX labels_by_version ON labels(model, version);"
    "PRAGMA journal_mode=WAL;"
    "PRAGMA user_version = 1;";

static void test_migration_from_schema_1(void) {
    ensure_model_bytes();
    char home[128], path[256];
    fm_test_fresh_path(home, sizeof home, "schema1");
    snprintf(path, sizeof path, "%s/models/credit", home);
    FM_CHECK(mkdir(home, 0750) == 0);
    snprintf(path, sizeof path, "%s/models", home);
    FM_CHECK(mkdir(path, 0750) == 0);
    snprintf(path, sizeof path, "%s/models/credit", home);
    FM_CHECK(mkdir(path, 0750) == 0);
    char sha[65];
    for (int v = 1; v <= 2; v++) {
        snprintf(path, sizeof path, "%s/models/credit/%d.fmm", home, v);
        write_bytes(path, binary_bytes.data, binary_bytes.len);
    }
    sha256sum(path, sha);
    snprintf(path, sizeof path, "%s/registry.db", home);
    sqlite3 *db = NULL;
    FM_CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    FM_CHECK(sqlite3_exec(db, schema_1, NULL, NULL, NULL) == SQLITE_OK);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO models VALUES ('credit', '2024-01-01T00:00:00Z');"
             "INSERT INTO versions VALUES ('credit', 1, 'models/credit/1.fmm', '%s', %zu, "
             "'binary', 'logistic', '2024-01-01T00:00:00Z');"
             "INSERT INTO versions VALUES ('credit', 2, 'models/credit/2.fmm', '%s', %zu, "
             "'binary', 'logistic', '2024-01-02T00:00:00Z');"
             "INSERT INTO labels VALUES ('credit', 'production', 1, '2024-01-03T00:00:00Z');",
             sha, binary_bytes.len, sha, binary_bytes.len);
    FM_CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);

    fm_registry_t *r = open_ok(home);
    if (!r) return;
    fm_error_t err;
    fm_version_info_t *list = NULL;
    size_t n = 0;
    FM_CHECK_INT(fm_registry_list(r, "credit", &list, &n, &err), 0);
    FM_CHECK_INT(n, 2);
    for (size_t i = 0; i < n; i++) {
        FM_CHECK_STR(list[i].uploaded_by, "cli");
        FM_CHECK_STR(list[i].sha256, sha);
        FM_CHECK_STR(list[i].labels, i == 0 ? "production" : "");
    }
    free(list);
    FM_CHECK_INT(read_with(r, NULL, "credit", 2, &binary_bytes, &err), 0);
    int64_t v = 0;
    FM_CHECK_INT(fm_registry_add_as(r, "credit", binary_bytes.data, binary_bytes.len,
                                    "k_aaaabbbbcccc", &v, &err),
                 0);
    FM_CHECK_INT(v, 3);
    FM_CHECK_INT(fm_registry_resolve(r, "credit", NULL, &v, &err), 0);
    FM_CHECK_INT(v, 1);
    fm_registry_close(r);

    /* The file now says schema 2 and has the column; opening again changes nothing. */
    FM_CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    FM_CHECK(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
    FM_CHECK(sqlite3_step(st) == SQLITE_ROW);
    FM_CHECK_INT(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    FM_CHECK(sqlite3_prepare_v2(db, "SELECT group_concat(uploaded_by) FROM versions", -1, &st,
                                NULL) == SQLITE_OK);
    FM_CHECK(sqlite3_step(st) == SQLITE_ROW);
    FM_CHECK_STR((const char *)sqlite3_column_text(st, 0), "cli,cli,k_aaaabbbbcccc");
    sqlite3_finalize(st);
    sqlite3_close(db);
    r = open_ok(home);
    FM_CHECK_INT(fm_registry_get(r, "credit", 3, &(fm_version_info_t){0}, &err), 0);
    fm_registry_close(r);
}

/* One model file of the rotation tests and the bytes it must read back as. */
typedef struct stored {
    const char *name;
    int64_t version;
    const fm_buf_t *bytes;
} stored_t;

/* Every stored version reads back with key (and not without it). */
static void check_all_read(fm_registry_t *r, const fm_master_key_t *key, const stored_t *s,
                           size_t n, const char *when) {
    fm_error_t err;
    for (size_t i = 0; i < n; i++) {
        int rc = read_with(r, key, s[i].name, s[i].version, s[i].bytes, &err);
        FM_CHECK_MSG(rc == 0, "%s: %s", when, err.msg);
        fm_version_info_t info;
        FM_CHECK_INT(fm_registry_get(r, s[i].name, s[i].version, &info, &err), 0);
        FM_CHECK_MSG(file_under_key(info.path, key), "%s: %s not under the key", when, info.path);
    }
}

/* The plaintext of an encrypted dataset file, by key; -1 when it does not decrypt. */
static int dataset_reads(const char *path, const fm_master_key_t *key, const char *want) {
    char *data = NULL;
    size_t n = 0;
    fm_error_t err;
    if (fm_file_read_all(path, 1 << 20, &data, &n, &err)) return -1;
    fm_buf_t out = FM_BUF_INIT;
    int rc = fm_crypt_decrypt(key, data, n, path, &out, &err);
    int same = rc == 0 && out.len == strlen(want) && !memcmp(out.data, want, out.len);
    free(data);
    fm_buf_free(&out);
    return rc ? -1 : same;
}

static void test_rotation(void) {
    ensure_model_bytes();
    char home[128];
    fm_test_fresh_path(home, sizeof home, "rotation");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    fm_error_t err;
    stored_t s[] = {{"credit", 1, &binary_bytes},
                    {"credit", 2, &regression_bytes},
                    {"credit", 3, &binary_bytes},
                    {"scorer", 1, &regression_bytes}};
    size_t n = sizeof s / sizeof s[0];
    for (size_t i = 0; i < n; i++)
        FM_CHECK_INT(add_ok(r, s[i].name, s[i].bytes), s[i].version);
    /* Stored datasets: *.enc files at any depth are rotated; other files are not touched. */
    char dir[256], data1[320], data2[320], notes[320];
    snprintf(dir, sizeof dir, "%s/datasets", home);
    FM_CHECK(mkdir(dir, 0750) == 0);
    snprintf(dir, sizeof dir, "%s/datasets/credit", home);
    FM_CHECK(mkdir(dir, 0750) == 0);
    snprintf(data1, sizeof data1, "%s/datasets/top.csv.enc", home);
    snprintf(data2, sizeof data2, "%s/datasets/credit/1.csv.enc", home);
    snprintf(notes, sizeof notes, "%s/datasets/credit/notes.txt", home);
    const char *csv1 = "income,status\n1000,good\n", *csv2 = "age\n33\n";
    write_bytes(data1, csv1, strlen(csv1));
    write_bytes(data2, csv2, strlen(csv2));
    write_bytes(notes, "plain notes", 11);
    FM_CHECK(chmod(data2, 0600) == 0);

    fm_master_key_t k1, k2, k3;
    make_key("rot-k1.key", &k1);
    make_key("rot-k2.key", &k2);
    make_key("rot-k3.key", &k3);
    size_t rewritten = 99;
    FM_CHECK_INT(fm_registry_rotate_master(r, &k1, &k1, &rewritten, &err), FM_EINVAL);
    FM_CHECK_INT(fm_registry_rotate_master(r, &k1, NULL, &rewritten, &err), FM_EINVAL);
    FM_CHECK_INT(rewritten, 0);

    /* Plaintext -> k1. */
    FM_CHECK_INT(fm_registry_rotate_master(r, NULL, &k1, &rewritten, &err), 0);
    FM_CHECK_INT(rewritten, n + 2);
    check_all_read(r, &k1, s, n, "after plaintext -> k1");
    FM_CHECK_INT(read_with(r, NULL, "credit", 1, &binary_bytes, &err), FM_EDENIED);
    FM_CHECK_INT(dataset_reads(data1, &k1, csv1), 1);
    FM_CHECK_INT(dataset_reads(data2, &k1, csv2), 1);
    FM_CHECK(file_equals(notes, "plain notes", 11));
    struct stat st;
    FM_CHECK(stat(data2, &st) == 0);
    FM_CHECK_INT(st.st_mode & 07777, 0600);
    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(r, "credit", 1, &info, &err), 0);
    FM_CHECK(stat(info.path, &st) == 0);
    FM_CHECK_INT(st.st_mode & 07777, 0644);
    FM_CHECK(!file_leaks(info.path, &binary_bytes));
    /* Done already: a rerun rewrites nothing. */
    FM_CHECK_INT(fm_registry_rotate_master(r, NULL, &k1, &rewritten, &err), 0);
    FM_CHECK_INT(rewritten, 0);

    /* k1 -> k2. */
    FM_CHECK_INT(fm_registry_rotate_master(r, &k1, &k2, &rewritten, &err), 0);
    FM_CHECK_INT(rewritten, n + 2);
    check_all_read(r, &k2, s, n, "after k1 -> k2");
    FM_CHECK_INT(read_with(r, &k1, "credit", 1, &binary_bytes, &err), FM_EDENIED);
    FM_CHECK_INT(dataset_reads(data1, &k2, csv1), 1);
    FM_CHECK_INT(dataset_reads(data2, &k2, csv2), 1);
    FM_CHECK_INT(fm_registry_rotate_master(r, &k1, &k2, &rewritten, &err), 0);
    FM_CHECK_INT(rewritten, 0);
    FM_CHECK(!has_temp_files(home));

    /* Files under a key that is neither: refused, each one, nothing rewritten. */
    FM_CHECK_INT(fm_registry_rotate_master(r, NULL, &k3, &rewritten, &err), FM_EDENIED);
    FM_CHECK_INT(rewritten, 0);
    FM_CHECK_MSG(strstr(err.msg, "6 of 6 files could not be re-encrypted") &&
                     strstr(err.msg, "no old key"),
                 "%s", err.msg);
    FM_CHECK_INT(fm_registry_rotate_master(r, &k1, &k3, &rewritten, &err), FM_EDENIED);
    FM_CHECK_MSG(strstr(err.msg, "different master key"), "%s", err.msg);
    check_all_read(r, &k2, s, n, "after refused rotations");

    /* A version added as plaintext meanwhile is encrypted too; one whose file was replaced is
     * not blessed with the new key but left as it is, and the rest still rotate; a missing file
     * is skipped. */
    fm_registry_set_master_key(r, NULL);
    FM_CHECK_INT(add_ok(r, "scorer", &regression_bytes), 2);
    FM_CHECK_INT(add_ok(r, "scorer", &regression_bytes), 3);
    FM_CHECK_INT(add_ok(r, "scorer", &regression_bytes), 4);
    FM_CHECK_INT(fm_registry_get(r, "scorer", 3, &info, &err), 0);
    write_bytes(info.path, binary_bytes.data, binary_bytes.len);
    char replaced[4096];
    snprintf(replaced, sizeof replaced, "%s", info.path);
    FM_CHECK_INT(fm_registry_get(r, "scorer", 4, &info, &err), 0);
    FM_CHECK(unlink(info.path) == 0);
    FM_CHECK_INT(fm_registry_rotate_master(r, &k2, &k3, &rewritten, &err), FM_EFORMAT);
    FM_CHECK_INT(rewritten, n + 2 + 1);
    FM_CHECK_MSG(strstr(err.msg, "1 of 8 files could not") &&
                     strstr(err.msg, "model 'scorer' version 3") &&
                     strstr(err.msg, "not re-encrypting"),
                 "%s", err.msg);
    FM_CHECK(file_equals(replaced, binary_bytes.data, binary_bytes.len));
    check_all_read(r, &k3, s, n, "after k2 -> k3");
    FM_CHECK_INT(read_with(r, &k3, "scorer", 2, &regression_bytes, &err), 0);
    FM_CHECK_INT(dataset_reads(data2, &k3, csv2), 1);
    fm_registry_close(r);
    fm_master_key_wipe(&k1);
    fm_master_key_wipe(&k2);
    fm_master_key_wipe(&k3);
}

#define ROTATION_VERSIONS 24
#define ROTATION_ROUNDS   20

/* Runs a rotation old -> new in a child process; with kill_after_us >= 0 the child is killed
 * with SIGKILL after that many microseconds. Returns the seconds the child ran. */
static double rotate_in_child(const char *home, const fm_master_key_t *old_key,
                              const fm_master_key_t *new_key, long kill_after_us) {
    double start = fm_clock_seconds();
    pid_t pid = fork();
    FM_CHECK(pid >= 0);
    if (pid == 0) {
        fm_registry_t *r = NULL;
        fm_error_t err;
        size_t rewritten = 0;
        int rc = fm_registry_open(home, &r, &err);
        if (!rc) rc = fm_registry_rotate_master(r, old_key, new_key, &rewritten, &err);
        if (rc) fprintf(stderr, "child rotation: %s\n", err.msg);
        fm_registry_close(r);
        _exit(rc ? 1 : 0);
    }
    if (kill_after_us >= 0) {
        struct timespec pause = {kill_after_us / 1000000, (kill_after_us % 1000000) * 1000};
        nanosleep(&pause, NULL);
        kill(pid, SIGKILL);
    }
    int status = 0;
    FM_CHECK(waitpid(pid, &status, 0) == pid);
    if (kill_after_us < 0)
        FM_CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    else
        FM_CHECK_MSG((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
                         (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                     "status %d", status);
    return fm_clock_seconds() - start;
}

static void test_rotation_interrupted(void) {
    ensure_model_bytes();
    char home[128], models[192], dataset[256];
    fm_test_fresh_path(home, sizeof home, "rotation-killed");
    fm_registry_t *r = open_ok(home);
    if (!r) return;
    fm_master_key_t keys[2];
    make_key("kill-a.key", &keys[0]);
    make_key("kill-b.key", &keys[1]);
    fm_registry_set_master_key(r, &keys[0]);
    stored_t s[ROTATION_VERSIONS];
    for (int i = 0; i < ROTATION_VERSIONS; i++) {
        s[i].name = i % 3 ? "credit" : "scorer";
        s[i].bytes = i % 2 ? &binary_bytes : &regression_bytes;
        s[i].version = add_ok(r, s[i].name, s[i].bytes);
    }
    snprintf(dataset, sizeof dataset, "%s/datasets", home);
    FM_CHECK(mkdir(dataset, 0750) == 0);
    snprintf(dataset, sizeof dataset, "%s/datasets/train.csv.enc", home);
    fm_buf_t sealed = FM_BUF_INIT;
    fm_error_t err;
    FM_CHECK_INT(fm_crypt_encrypt(&keys[0], "a,b\n1,2\n", 8, &sealed, &err), 0);
    write_bytes(dataset, sealed.data, sealed.len);
    fm_buf_free(&sealed);
    snprintf(models, sizeof models, "%s/models", home);

    /* How long a whole rotation takes in a child, start to exit: the range of the kill times. */
    double whole = rotate_in_child(home, &keys[0], &keys[1], -1);
    check_all_read(r, &keys[1], s, ROTATION_VERSIONS, "uninterrupted");
    long range_us = (long)(whole * 1e6) + 1;
    printf("  a whole rotation of %d files in a child: %.1f ms\n", ROTATION_VERSIONS + 1,
           whole * 1e3);
    fm_rng_t rng;
    fm_rng_seed(&rng, 20240611);
    int cur = 1, partial = 0;
    for (int round = 0; round < ROTATION_ROUNDS; round++) {
        const fm_master_key_t *old_key = &keys[cur], *new_key = &keys[1 - cur];
        long delay = (long)fm_rng_below(&rng, (uint64_t)range_us);
        rotate_in_child(home, old_key, new_key, delay);
        /* Every file complete under one of the two keys. */
        int under_new = 0;
        for (int i = 0; i < ROTATION_VERSIONS; i++) {
            int rc = read_with(r, old_key, s[i].name, s[i].version, s[i].bytes, &err);
            if (rc == FM_EDENIED) {
                rc = read_with(r, new_key, s[i].name, s[i].version, s[i].bytes, &err);
                under_new++;
            }
            FM_CHECK_MSG(rc == 0, "round %d, %s version %" PRId64 ": %s", round, s[i].name,
                         s[i].version, err.msg);
        }
        int dataset_old = dataset_reads(dataset, old_key, "a,b\n1,2\n");
        int dataset_new = dataset_reads(dataset, new_key, "a,b\n1,2\n");
        FM_CHECK_MSG(dataset_old == 1 || dataset_new == 1, "round %d: dataset unreadable", round);
        partial += under_new > 0 && under_new < ROTATION_VERSIONS;
        /* A rerun finishes: it rewrites exactly what was left, and leaves no temporary file. */
        size_t rewritten = 0;
        FM_CHECK_INT(fm_registry_rotate_master(r, old_key, new_key, &rewritten, &err), 0);
        FM_CHECK_INT(rewritten, ROTATION_VERSIONS - under_new + (dataset_new != 1));
        check_all_read(r, new_key, s, ROTATION_VERSIONS, "after the rerun");
        FM_CHECK_INT(dataset_reads(dataset, new_key, "a,b\n1,2\n"), 1);
        FM_CHECK_MSG(!has_temp_files(models), "round %d: temporary files left", round);
        cur = 1 - cur;
    }
    printf("  %d of %d rotations killed part way\n", partial, ROTATION_ROUNDS);
    FM_CHECK(partial >= 1);
    fm_registry_close(r);
    fm_master_key_wipe(&keys[0]);
    fm_master_key_wipe(&keys[1]);
}

FM_TEST_MAIN(FM_TEST_CASE(test_names), FM_TEST_CASE(test_open_empty),
             FM_TEST_CASE(test_add_list_get), FM_TEST_CASE(test_labels),
             FM_TEST_CASE(test_labels_overflow), FM_TEST_CASE(test_resolve),
             FM_TEST_CASE(test_invalid_bytes), FM_TEST_CASE(test_reopen),
             FM_TEST_CASE(test_threads_shared_handle), FM_TEST_CASE(test_threads_own_handles),
             FM_TEST_CASE(test_two_processes), FM_TEST_CASE(test_corrupt_database),
             FM_TEST_CASE(test_schema_versions), FM_TEST_CASE(test_missing_file),
             FM_TEST_CASE(test_unwritable_model_dir), FM_TEST_CASE(test_encrypted_add_and_read),
             FM_TEST_CASE(test_uploaded_by), FM_TEST_CASE(test_migration_from_schema_1),
             FM_TEST_CASE(test_rotation), FM_TEST_CASE(test_rotation_interrupted))
