/*
 * Tests of the dataset store and profiles (jobs/datasets.c, jobs/profile.c), in scratch homes
 * under /tmp. Profiles are checked against values worked out here by hand or by closed forms
 * (1..101: mean 51, sample variance 101 * 102 / 12 - ..., quantiles 1 + 100 q), category counts
 * and their order, PII columns without values. Uploads are written in pieces; a bad CSV (ragged,
 * unterminated quote, a bad cell under an override, empty, header only), a taken name, bad names
 * and abandoned uploads must leave the directory exactly as it was. Encrypted stores: the files
 * hold no plaintext, load back with the key, are refused without it or with another key, and the
 * registry's key rotation (which re-encrypts *.enc under datasets/) leaves them loadable with the
 * new key. A CSV swapped behind the store's back is refused by its digest.
 */
#include "core/buf.h"
#include "core/fs.h"
#include "core/json.h"
#include "jobs/jobs_internal.h"
#include "registry/registry.h"
#include "fm_test.h"
#include "fm_test_fs.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

/* The names in a directory, sorted, joined with spaces. */
static void listing(const char *dir, char *out, size_t size) {
    struct dirent **entries = NULL;
    int n = scandir(dir, &entries, NULL, alphasort);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (entries[i]->d_name[0] != '.' || strlen(entries[i]->d_name) > 2) {
            if (out[0]) strncat(out, " ", size - strlen(out) - 1);
            strncat(out, entries[i]->d_name, size - strlen(out) - 1);
        }
        free(entries[i]);
    }
    free(entries);
}

/* Uploads text in pieces of 7 bytes; returns the commit's code. */
static int upload(fm_datasets_t *ds, const char *name, const char *text,
                  const fm_dataset_options_t *opts, cJSON **profile, fm_error_t *err) {
    fm_dataset_options_t none = {0};
    fm_dataset_upload_t *u = NULL;
    int rc = fm_dataset_upload_begin(ds, name, opts ? opts : &none, &u, err);
    size_t n = strlen(text);
    for (size_t at = 0; !rc && at < n; at += 7)
        rc = fm_dataset_upload_write(u, text + at, n - at < 7 ? n - at : 7, err);
    cJSON *p = NULL;
    if (!rc) rc = fm_dataset_upload_commit(u, &p, err);
    fm_dataset_upload_free(u);
    if (profile)
        *profile = p;
    else
        cJSON_Delete(p);
    return rc;
}

static const cJSON *column(const cJSON *profile, const char *name) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(profile, "profile")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return c;
    }
    return NULL;
}

static double number(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *text(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* x = 1..101; cat: a a b b b c b c a b c (then blank, repeated); mail: PII. */
static char *make_csv(void) {
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "x,cat,mail,y\n");
    static const char *cats[] = {"a", "a", "b", "b", "b", "c", "b", "c", "a", "b", "c", ""};
    for (int i = 1; i <= 101; i++)
        fm_buf_printf(&b, "%d,%s,u%d@example.com,%s\n", i, cats[(i - 1) % 12], i % 7,
                      i % 4 == 0 ? "NA" : (i % 2 ? "2.5" : "-1"));
    return fm_buf_take(&b);
}

static void test_profile_values(void) {
    char home[PATH_MAX];
    fm_test_home(home, sizeof home, "profile");
    fm_datasets_t *ds = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_datasets_open(home, NULL, &ds, &err), FM_OK);
    char *csv = make_csv();
    const char *pii[] = {"mail"};
    fm_dataset_options_t opts = {.pii = pii, .npii = 1, .uploaded_by = "k_0123456789ab"};
    cJSON *p = NULL;
    FM_CHECK_MSG(upload(ds, "small", csv, &opts, &p, &err) == FM_OK, "%s", err.msg);
    FM_CHECK_INT(number(p, "rows"), 101);
    FM_CHECK_INT(number(p, "columns"), 4);
    FM_CHECK_INT(number(p, "size"), strlen(csv));
    FM_CHECK_STR(text(p, "uploaded_by"), "k_0123456789ab");
    FM_CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(p, "encrypted")));
    /* x: 1..101. Mean 51; sample variance sum_{k=-50}^{50} k^2 / 100 = 2 * (50 * 51 * 101 / 6)
     * / 100; quantile q is 1 + 100 q exactly. */
    const cJSON *x = column(p, "x");
    FM_CHECK_STR(text(x, "type"), "numeric");
    FM_CHECK_INT(number(x, "distinct"), 101);
    FM_CHECK_INT(number(x, "missing"), 0);
    FM_CHECK_NEAR(number(x, "min"), 1, 0);
    FM_CHECK_NEAR(number(x, "max"), 101, 0);
    FM_CHECK_NEAR(number(x, "mean"), 51, 1e-12);
    FM_CHECK_NEAR(number(x, "std"), sqrt(2.0 * 50 * 51 * 101 / 6 / 100), 1e-12);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(x, "quantiles");
    FM_CHECK_NEAR(number(q, "p01"), 2, 1e-12);
    FM_CHECK_NEAR(number(q, "p25"), 26, 1e-12);
    FM_CHECK_NEAR(number(q, "p50"), 51, 1e-12);
    FM_CHECK_NEAR(number(q, "p75"), 76, 1e-12);
    FM_CHECK_NEAR(number(q, "p99"), 100, 1e-12);
    /* y: rows i % 4 == 0 missing (25 of 101); of the other 76, odd i (51) are 2.5 and the 25
     * even ones -1. Sorted: 25 x -1 then 51 x 2.5. h = 75 q. */
    const cJSON *y = column(p, "y");
    FM_CHECK_INT(number(y, "missing"), 25);
    FM_CHECK_NEAR(number(y, "missing_share"), 25.0 / 101, 1e-15);
    FM_CHECK_INT(number(y, "distinct"), 2);
    double mean = (51 * 2.5 - 25) / 76;
    FM_CHECK_NEAR(number(y, "mean"), mean, 1e-12);
    double var = (51 * (2.5 - mean) * (2.5 - mean) + 25 * (-1 - mean) * (-1 - mean)) / 75;
    FM_CHECK_NEAR(number(y, "std"), sqrt(var), 1e-12);
    q = cJSON_GetObjectItemCaseSensitive(y, "quantiles");
    FM_CHECK_NEAR(number(q, "p01"), -1, 1e-12);  /* h = 0.75: both neighbours -1 */
    FM_CHECK_NEAR(number(q, "p25"), -1, 1e-12);  /* h = 18.75 */
    FM_CHECK_NEAR(number(q, "p50"), 2.5, 1e-12); /* h = 37.5: both 2.5 */
    /* h = 24.75 would straddle; p99: h = 74.25 -> 2.5 */
    FM_CHECK_NEAR(number(q, "p99"), 2.5, 1e-12);
    /* cat: per 12 rows a x3, b x5, c x3, blank x1; 101 = 8 * 12 + 5 (a a b b b). */
    const cJSON *c = column(p, "cat");
    FM_CHECK_STR(text(c, "type"), "categorical");
    FM_CHECK_INT(number(c, "missing"), 8);
    FM_CHECK_INT(number(c, "distinct"), 3);
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(c, "top");
    FM_CHECK_INT(cJSON_GetArraySize(top), 3);
    const char *want[] = {"b", "a", "c"};
    const int counts[] = {8 * 5 + 3, 8 * 3 + 2, 8 * 3};
    for (int i = 0; i < 3 && i < cJSON_GetArraySize(top); i++) {
        FM_CHECK_STR(text(cJSON_GetArrayItem(top, i), "value"), want[i]);
        FM_CHECK_INT(number(cJSON_GetArrayItem(top, i), "count"), counts[i]);
    }
    /* The PII column: counts only, no value anywhere in the profile. */
    const cJSON *m = column(p, "mail");
    FM_CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "pii")));
    FM_CHECK_INT(number(m, "distinct"), 7);
    FM_CHECK(!cJSON_GetObjectItemCaseSensitive(m, "top"));
    char *printed = cJSON_PrintUnformatted(p);
    FM_CHECK(strstr(printed, "example.com") == NULL);
    free(printed);
    /* get returns what commit returned; list summarises it. */
    cJSON *got = NULL, *list = NULL;
    FM_CHECK_INT(fm_datasets_get(ds, "small", &got, &err), FM_OK);
    FM_CHECK(cJSON_Compare(got, p, 1));
    FM_CHECK_INT(fm_datasets_list(ds, &list, &err), FM_OK);
    FM_CHECK_INT(cJSON_GetArraySize(list), 1);
    FM_CHECK_STR(text(cJSON_GetArrayItem(list, 0), "name"), "small");
    FM_CHECK_INT(number(cJSON_GetArrayItem(list, 0), "rows"), 101);
    /* Load: the frame has the profile's types and the values. */
    fm_frame_t *f = NULL;
    FM_CHECK_INT(fm_datasets_load(ds, "small", &f, NULL, &err), FM_OK);
    FM_CHECK(f && f->nrows == 101 && f->ncols == 4);
    if (f) {
        FM_CHECK_INT(f->columns[0].type, FM_COLUMN_NUMERIC);
        FM_CHECK_NEAR(f->columns[0].values[100], 101, 0);
        FM_CHECK_STR(f->source, "dataset 'small'");
    }
    fm_frame_free(f);
    cJSON_Delete(got);
    cJSON_Delete(list);
    cJSON_Delete(p);
    /* More than ten categories: the ten most frequent, ties in order of first appearance. */
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "k\n");
    for (int i = 0; i < 14; i++)
        for (int r = 0; r <= (i == 13 ? 5 : i % 3); r++)
            fm_buf_printf(&b, "k%d\n", i);
    FM_CHECK_INT(upload(ds, "many", b.data, NULL, &p, &err), FM_OK);
    top = cJSON_GetObjectItemCaseSensitive(column(p, "k"), "top");
    FM_CHECK_INT(cJSON_GetArraySize(top), 10);
    /* k13 x6, then x3: k2 k5 k8 k11, then x2: k1 k4 k7 k10, then x1: k0 */
    const char *order[] = {"k13", "k2", "k5", "k8", "k11", "k1", "k4", "k7", "k10", "k0"};
    for (int i = 0; i < 10 && i < cJSON_GetArraySize(top); i++)
        FM_CHECK_STR(text(cJSON_GetArrayItem(top, i), "value"), order[i]);
    FM_CHECK_INT(number(column(p, "k"), "distinct"), 14);
    fm_buf_free(&b);
    cJSON_Delete(p);
    free(csv);
    fm_datasets_close(ds);
}

static void test_overrides_and_options(void) {
    char home[PATH_MAX];
    fm_test_home(home, sizeof home, "overrides");
    fm_datasets_t *ds = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_datasets_open(home, NULL, &ds, &err), FM_OK);
    fm_type_overrides_t types = {0};
    fm_type_overrides_add(&types, "code", FM_COLUMN_CATEGORICAL);
    fm_dataset_options_t opts = {.types = &types};
    cJSON *p = NULL;
    FM_CHECK_INT(upload(ds, "codes", "code,v\n1,2\n2,3\n1,4\n", &opts, &p, &err), FM_OK);
    FM_CHECK_STR(text(column(p, "code"), "type"), "categorical");
    FM_CHECK_STR(text(column(p, "v"), "type"), "numeric");
    cJSON_Delete(p);
    fm_frame_t *f = NULL;
    FM_CHECK_INT(fm_datasets_load(ds, "codes", &f, NULL, &err), FM_OK);
    FM_CHECK(f && f->columns[0].type == FM_COLUMN_CATEGORICAL);
    fm_frame_free(f);
    /* An override that does not fit a cell, or names no column; a PII column that is absent. */
    fm_type_overrides_t bad = {0};
    fm_type_overrides_add(&bad, "v", FM_COLUMN_NUMERIC);
    fm_dataset_options_t bad_opts = {.types = &bad};
    FM_CHECK_INT(upload(ds, "badcell", "code,v\n1,2\n2,x\n", &bad_opts, NULL, &err), FM_EPARSE);
    FM_CHECK_MSG(strstr(err.msg, "dataset 'badcell', line 3") != NULL, "%s", err.msg);
    FM_CHECK(strstr(err.msg, "/proc/") == NULL);
    fm_type_overrides_t absent = {0};
    fm_type_overrides_add(&absent, "nope", FM_COLUMN_NUMERIC);
    fm_dataset_options_t absent_opts = {.types = &absent};
    FM_CHECK(upload(ds, "absent", "a\n1\n", &absent_opts, NULL, &err) != FM_OK);
    FM_CHECK_MSG(strstr(err.msg, "nope") != NULL, "%s", err.msg);
    const char *pii[] = {"nope"};
    fm_dataset_options_t pii_opts = {.pii = pii, .npii = 1};
    FM_CHECK_INT(upload(ds, "piibad", "a\n1\n", &pii_opts, NULL, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "pii: column 'nope'") != NULL);
    char names[1024];
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/datasets", home);
    listing(dir, names, sizeof names);
    FM_CHECK_STR(names, "codes.csv.enc codes.profile.enc");
    fm_type_overrides_free(&types);
    fm_type_overrides_free(&bad);
    fm_type_overrides_free(&absent);
    fm_datasets_close(ds);
}

static void test_failures_leave_nothing(void) {
    char home[PATH_MAX], dir[PATH_MAX + 16], before[1024], after[1024];
    fm_test_home(home, sizeof home, "failures");
    snprintf(dir, sizeof dir, "%s/datasets", home);
    fm_datasets_t *ds = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_datasets_open(home, NULL, &ds, &err), FM_OK);
    FM_CHECK_INT(upload(ds, "keep", "a,b\n1,2\n", NULL, NULL, &err), FM_OK);
    listing(dir, before, sizeof before);
    static const struct {
        const char *csv, *where;
    } bad[] = {
        {"a,b\n1,2\n3\n", "line 3"},
        {"a,b\n1,\"2\n", "unterminated"},
        {"", "empty"},
        {"a,b\n", "no data rows"},
        {"a,a\n1,2\n", "duplicate column name"},
        {"a,b\n1,2,3\n", "line 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = upload(ds, "bad", bad[i].csv, NULL, NULL, &err);
        FM_CHECK_MSG(rc == FM_EPARSE, "case %zu: %d %s", i, rc, err.msg);
        FM_CHECK_MSG(strstr(err.msg, bad[i].where) != NULL, "case %zu: %s", i, err.msg);
        FM_CHECK_MSG(strstr(err.msg, "dataset 'bad'") != NULL, "case %zu: %s", i, err.msg);
    }
    /* A name taken, with and without replace. */
    FM_CHECK_INT(upload(ds, "keep", "a\n9\n", NULL, NULL, &err), FM_EEXIST);
    FM_CHECK(strstr(err.msg, "replace=true") != NULL);
    /* Bad names, everywhere a name is taken. */
    const char *names[] = {
        "",       "..",      "../x",
        "a/b",    ".hidden", "-x",
        "sp ace", "\x01",    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        FM_CHECK_INT(upload(ds, names[i], "a\n1\n", NULL, NULL, &err), FM_EINVAL);
        cJSON *p = NULL;
        FM_CHECK_INT(fm_datasets_get(ds, names[i], &p, &err), FM_EINVAL);
        FM_CHECK_INT(fm_datasets_delete(ds, names[i], &err), FM_EINVAL);
        FM_CHECK(!fm_datasets_exists(ds, names[i]));
    }
    /* An upload given up half-way. */
    fm_dataset_options_t none = {0};
    fm_dataset_upload_t *u = NULL;
    FM_CHECK_INT(fm_dataset_upload_begin(ds, "gone", &none, &u, &err), FM_OK);
    FM_CHECK_INT(fm_dataset_upload_write(u, "a,b\n1,", 6, &err), FM_OK);
    FM_CHECK_INT(fm_dataset_upload_size(u), 6);
    fm_dataset_upload_free(u);
    listing(dir, after, sizeof after);
    FM_CHECK_STR(after, before);
    /* Unknown datasets. */
    cJSON *p = NULL;
    fm_frame_t *f = NULL;
    FM_CHECK_INT(fm_datasets_get(ds, "nothere", &p, &err), FM_ENOTFOUND);
    FM_CHECK_INT(fm_datasets_load(ds, "nothere", &f, NULL, &err), FM_ENOTFOUND);
    FM_CHECK_INT(fm_datasets_delete(ds, "nothere", &err), FM_ENOTFOUND);
    /* Replace, then delete. */
    fm_dataset_options_t replace = {.replace = 1};
    FM_CHECK_INT(upload(ds, "keep", "a\n9\n8\n", &replace, &p, &err), FM_OK);
    FM_CHECK_INT(number(p, "rows"), 2);
    cJSON_Delete(p);
    FM_CHECK_INT(fm_datasets_delete(ds, "keep", &err), FM_OK);
    FM_CHECK(!fm_datasets_exists(ds, "keep"));
    listing(dir, after, sizeof after);
    FM_CHECK_STR(after, "");
    fm_datasets_close(ds);
    /* Leftovers of interrupted writes go at the next open. */
    char junk[PATH_MAX + 64];
    snprintf(junk, sizeof junk, "%s/x.csv.enc.tmp.AbC123", dir);
    FILE *fp = fopen(junk, "w");
    if (fp) fclose(fp);
    snprintf(junk, sizeof junk, "%s/.tmp.XyZ789", dir);
    fp = fopen(junk, "w");
    if (fp) fclose(fp);
    FM_CHECK_INT(fm_datasets_open(home, NULL, &ds, &err), FM_OK);
    listing(dir, after, sizeof after);
    FM_CHECK_STR(after, "");
    fm_datasets_close(ds);
}

static fm_master_key_t key_from(unsigned char seed) {
    fm_master_key_t k;
    memset(&k, 0, sizeof k);
    for (int i = 0; i < FM_MASTER_KEY_BYTES; i++)
        k.key[i] = (unsigned char)(seed * 17 + i);
    unsigned char digest[32];
    crypto_generichash(digest, sizeof digest, k.key, sizeof k.key, NULL, 0);
    memcpy(k.id, digest, sizeof k.id);
    return k;
}

static int file_contains(const char *path, const char *needle) {
    char *data = NULL;
    size_t len = 0;
    if (fm_file_read_all(path, 1 << 24, &data, &len, NULL)) return -1;
    int found = memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

static int file_starts_with(const char *path, const char *magic) {
    char buf[8] = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    return n == 8 && memcmp(buf, magic, 6) == 0;
}

static void test_encryption_at_rest(void) {
    char home[PATH_MAX], csv_path[PATH_MAX + 64], prof_path[PATH_MAX + 64];
    fm_test_home(home, sizeof home, "encrypted");
    fm_master_key_t k1 = key_from(1), k2 = key_from(2);
    fm_datasets_t *ds = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_datasets_open(home, &k1, &ds, &err), FM_OK);
    char *csv = make_csv();
    cJSON *p = NULL;
    FM_CHECK_INT(upload(ds, "secret", csv, NULL, &p, &err), FM_OK);
    FM_CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "encrypted")));
    cJSON_Delete(p);
    snprintf(csv_path, sizeof csv_path, "%s/datasets/secret.csv.enc", home);
    snprintf(prof_path, sizeof prof_path, "%s/datasets/secret.profile.enc", home);
    FM_CHECK(file_starts_with(csv_path, "FMENC1"));
    FM_CHECK(file_starts_with(prof_path, "FMENC1"));
    FM_CHECK_INT(file_contains(csv_path, "example.com"), 0);
    FM_CHECK_INT(file_contains(prof_path, "\"cat\""), 0);
    fm_frame_t *f = NULL;
    FM_CHECK_MSG(fm_datasets_load(ds, "secret", &f, NULL, &err) == FM_OK, "%s", err.msg);
    FM_CHECK(f && f->nrows == 101);
    fm_frame_free(f);
    fm_datasets_close(ds);
    /* Without the key, or with another: refused, naming the dataset; the listing says why. */
    const fm_master_key_t *wrong[] = {NULL, &k2};
    for (int i = 0; i < 2; i++) {
        FM_CHECK_INT(fm_datasets_open(home, wrong[i], &ds, &err), FM_OK);
        FM_CHECK_INT(fm_datasets_get(ds, "secret", &p, &err), FM_EDENIED);
        FM_CHECK(strstr(err.msg, "dataset 'secret'") != NULL);
        FM_CHECK_INT(fm_datasets_load(ds, "secret", &f, NULL, &err), FM_EDENIED);
        cJSON *list = NULL;
        FM_CHECK_INT(fm_datasets_list(ds, &list, &err), FM_OK);
        FM_CHECK(text(cJSON_GetArrayItem(list, 0), "error") != NULL);
        cJSON_Delete(list);
        fm_datasets_close(ds);
    }
    /* The registry's rotation re-encrypts the datasets: k2 reads them, k1 no longer does. */
    fm_registry_t *r = NULL;
    FM_CHECK_INT(fm_registry_open(home, &r, &err), FM_OK);
    size_t rewritten = 0;
    FM_CHECK_MSG(fm_registry_rotate_master(r, &k1, &k2, &rewritten, &err) == FM_OK, "%s", err.msg);
    FM_CHECK_INT(rewritten, 2);
    fm_registry_close(r);
    FM_CHECK_INT(fm_datasets_open(home, &k2, &ds, &err), FM_OK);
    FM_CHECK_MSG(fm_datasets_load(ds, "secret", &f, &p, &err) == FM_OK, "%s", err.msg);
    FM_CHECK(f && f->nrows == 101);
    fm_frame_free(f);
    cJSON_Delete(p);
    fm_datasets_close(ds);
    FM_CHECK_INT(fm_datasets_open(home, &k1, &ds, &err), FM_OK);
    FM_CHECK_INT(fm_datasets_load(ds, "secret", &f, NULL, &err), FM_EDENIED);
    fm_datasets_close(ds);
    free(csv);
}

static void test_swapped_csv_is_refused(void) {
    char home[PATH_MAX], a[PATH_MAX + 64], b[PATH_MAX + 64];
    fm_test_home(home, sizeof home, "swapped");
    fm_datasets_t *ds = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_datasets_open(home, NULL, &ds, &err), FM_OK);
    FM_CHECK_INT(upload(ds, "one", "a,b\n1,2\n", NULL, NULL, &err), FM_OK);
    FM_CHECK_INT(upload(ds, "two", "a,b\n1,3\n", NULL, NULL, &err), FM_OK);
    snprintf(a, sizeof a, "%s/datasets/one.csv.enc", home);
    snprintf(b, sizeof b, "%s/datasets/two.csv.enc", home);
    FM_CHECK(rename(a, b) == 0);
    fm_frame_t *f = NULL;
    FM_CHECK_INT(fm_datasets_load(ds, "two", &f, NULL, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "does not match its profile") != NULL);
    FM_CHECK(f == NULL);
    FM_CHECK_INT(fm_datasets_load(ds, "one", &f, NULL, &err), FM_ENOTFOUND);
    FM_CHECK(strstr(err.msg, "CSV is missing") != NULL);
    fm_datasets_close(ds);
}

FM_TEST_MAIN(FM_TEST_CASE(test_profile_values), FM_TEST_CASE(test_overrides_and_options),
             FM_TEST_CASE(test_failures_leave_nothing), FM_TEST_CASE(test_encryption_at_rest),
             FM_TEST_CASE(test_swapped_csv_is_refused))
