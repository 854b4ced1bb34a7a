/*
 * Tests of frames: whole-file reading with type inference and schema overrides, every error a
 * file can cause (with the message naming file, line, column and value), the chunked reader
 * against the whole-file reader, and the real data sets in ../shared/data (row, column, type and
 * missing counts computed independently with pandas, digests with b2sum).
 */
#include "core/digest.h"
#include "core/fs.h"
#include "data/data.h"
#include "fm_test.h"

#include <unistd.h>

static char test_dir[] = "/tmp/fm_frame_test_XXXXXX";

static void remove_test_dir(void) {
    rmdir(test_dir);
}

/* Creates the scratch directory on first use (so any single test can run alone). */
static const char *scratch_dir(void) {
    if (strstr(test_dir, "XXXXXX")) {
        if (!mkdtemp(test_dir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(remove_test_dir);
    }
    return test_dir;
}

/* Writes text to test_dir/name and returns the path (storage reused by the next call). */
static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", scratch_dir(), name);
    FILE *fp = fopen(path, "wb");
    FM_CHECK(fp != NULL);
    if (fp) {
        fwrite(text, 1, strlen(text), fp);
        fclose(fp);
    }
    return path;
}

static void remove_file(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", test_dir, name);
    unlink(path);
}

/* Reads text as a CSV file; checks it fails with code and exactly message (path relative). */
static void check_read_error(const char *text, const fm_type_overrides_t *o, int code,
                             const char *message) {
    const char *path = write_file("x.csv", text);
    fm_frame_t *f = (fm_frame_t *)1;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_frame_read_csv(path, o, &f, &err);
    FM_CHECK_INT(rc, code);
    FM_CHECK(f == NULL);
    char want[600];
    snprintf(want, sizeof want, "%s/%s", scratch_dir(), message);
    FM_CHECK_STR(err.msg, want);
    remove_file("x.csv");
}

static fm_frame_t *read_text(const char *text, const fm_type_overrides_t *o) {
    const char *path = write_file("x.csv", text);
    fm_frame_t *f = NULL;
    fm_error_t err;
    int rc = fm_frame_read_csv(path, o, &f, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    remove_file("x.csv");
    return f;
}

static void test_inference(void) {
    fm_frame_t *f = read_text("id,income,home,code,empty,mixed\n"
                              "1,100.5,rent,007,,1\n"
                              "2,NA,owner,8,NA,x\n"
                              "3, 2e3 ,NA,9,,2\n"
                              "4,,rent,10,null,3\n",
                              NULL);
    if (!f) return;
    FM_CHECK_INT(f->nrows, 4);
    FM_CHECK_INT(f->ncols, 6);
    FM_CHECK_INT(fm_frame_find(f, "home"), 2);
    FM_CHECK_INT(fm_frame_find(f, "nope"), -1);
    fm_column_t *income = &f->columns[1], *home = &f->columns[2], *code = &f->columns[3];
    fm_column_t *empty = &f->columns[4], *mixed = &f->columns[5];
    FM_CHECK_STR(income->name, "income");
    FM_CHECK(income->type == FM_COLUMN_NUMERIC && income->codes == NULL);
    FM_CHECK(income->values[0] == 100.5 && isnan(income->values[1]) && income->values[2] == 2000 &&
             isnan(income->values[3]));
    FM_CHECK_INT(income->missing, 2);
    FM_CHECK(home->type == FM_COLUMN_CATEGORICAL && home->values == NULL);
    FM_CHECK_INT(home->dict.count, 2);
    FM_CHECK(home->codes[0] == 0 && home->codes[1] == 1 && home->codes[2] == -1 &&
             home->codes[3] == 0);
    FM_CHECK_STR(fm_strdict_get(&home->dict, 1), "owner");
    FM_CHECK_INT(home->missing, 1);
    FM_CHECK(code->type == FM_COLUMN_NUMERIC && code->values[0] == 7);
    FM_CHECK(empty->type == FM_COLUMN_NUMERIC); /* all missing: numeric, like pandas */
    FM_CHECK_INT(empty->missing, 4);
    FM_CHECK(mixed->type == FM_COLUMN_CATEGORICAL);
    FM_CHECK_STR(fm_strdict_get(&mixed->dict, mixed->codes[1]), "x");
    FM_CHECK_STR(fm_strdict_get(&mixed->dict, mixed->codes[3]), "3");
    FM_CHECK(strstr(f->source, "x.csv") != NULL);
    fm_frame_free(f);
    fm_frame_free(NULL);
}

static void test_quoting_in_frames(void) {
    fm_frame_t *f = read_text("\xEF\xBB\xBF\"name\",\"amount\"\r\n"
                              "\"Smith, J.\",\"1,5\"\r\n"
                              "\r\n"
                              "\"say \"\"hi\"\"\nthere\",2\r\n"
                              "plain,3",
                              NULL);
    if (!f) return;
    FM_CHECK_INT(f->nrows, 3);
    FM_CHECK_STR(f->columns[0].name, "name");
    FM_CHECK(f->columns[1].type == FM_COLUMN_CATEGORICAL); /* "1,5" is not a number */
    FM_CHECK_STR(fm_strdict_get(&f->columns[0].dict, 0), "Smith, J.");
    FM_CHECK_STR(fm_strdict_get(&f->columns[0].dict, 1), "say \"hi\"\nthere");
    fm_frame_free(f);
}

static void test_read_errors(void) {
    check_read_error("", NULL, FM_EDATA, "x.csv: empty file");
    check_read_error("\n\n", NULL, FM_EDATA, "x.csv: empty file");
    check_read_error("a,b,c\n", NULL, FM_EDATA, "x.csv: no data rows");
    check_read_error("a,b,c\n\n", NULL, FM_EDATA, "x.csv: no data rows");
    check_read_error("a,b,a\n1,2,3\n", NULL, FM_EDATA,
                     "x.csv:1: duplicate column name 'a' (columns 1 and 3)");
    check_read_error("a,,c\n1,2,3\n", NULL, FM_EDATA, "x.csv:1: column 2 has an empty name");
    check_read_error("a,b,c\n1,2,3\n4,5\n", NULL, FM_EPARSE, "x.csv:3: expected 3 fields, found 2");
    check_read_error("a,b\n1,2\n\n3,4,5\n", NULL, FM_EPARSE, "x.csv:4: expected 2 fields, found 3");
    check_read_error("a,b\n1,\"2\n", NULL, FM_EPARSE, "x.csv:2:3: unterminated quoted field");
    check_read_error("a,b\n1,\"2\"x\n", NULL, FM_EPARSE,
                     "x.csv:2:6: unexpected character 'x' after closing quote");
    /* Infinity keeps a column numeric, then fails naming line, column and value. */
    check_read_error("a,Income\n1,5\n2,inf\n", NULL, FM_EDATA,
                     "x.csv:3: column 'Income': 'inf' is not a finite number");
    check_read_error("a,Income\n1,-Infinity\n", NULL, FM_EDATA,
                     "x.csv:2: column 'Income': '-Infinity' is not a finite number");
    check_read_error("a,Income\n1,1e999\n", NULL, FM_EDATA,
                     "x.csv:2: column 'Income': '1e999' is not a finite number");

    fm_frame_t *f = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_frame_read_csv("/nonexistent/x.csv", NULL, &f, &err), FM_EIO);
    FM_CHECK(strstr(err.msg, "/nonexistent/x.csv: cannot open") != NULL);
    /* Binary data. */
    const char *path = write_file("bin.csv", "a,b\n1,2\n");
    FILE *fp = fopen(path, "ab");
    if (fp) {
        fwrite("3,\0\n", 1, 4, fp);
        fclose(fp);
    }
    FM_CHECK_INT(fm_frame_read_csv(path, NULL, &f, &err), FM_EPARSE);
    FM_CHECK(strstr(err.msg, "bin.csv:3:3: NUL byte") != NULL);
    remove_file("bin.csv");
}

static void test_overrides(void) {
    fm_type_overrides_t o = {0};
    FM_CHECK_INT(fm_type_overrides_add(&o, "code", FM_COLUMN_CATEGORICAL), 0);
    FM_CHECK_INT(fm_type_overrides_add(&o, "Income", FM_COLUMN_CATEGORICAL), 0);
    FM_CHECK_INT(fm_type_overrides_add(&o, "Income", FM_COLUMN_NUMERIC), 0); /* replaces */
    FM_CHECK_INT(o.count, 2);
    FM_CHECK_INT(fm_type_overrides_find(&o, "Income"), FM_COLUMN_NUMERIC);
    FM_CHECK_INT(fm_type_overrides_find(&o, "code"), FM_COLUMN_CATEGORICAL);
    FM_CHECK_INT(fm_type_overrides_find(&o, "other"), -1);
    FM_CHECK_INT(fm_type_overrides_find(NULL, "other"), -1);

    fm_frame_t *f = read_text("code,Income\n007,1\n8,NA\n", &o);
    if (f) {
        FM_CHECK(f->columns[0].type == FM_COLUMN_CATEGORICAL);
        FM_CHECK_STR(fm_strdict_get(&f->columns[0].dict, f->columns[0].codes[0]), "007");
        FM_CHECK(f->columns[1].type == FM_COLUMN_NUMERIC && isnan(f->columns[1].values[1]));
        fm_frame_free(f);
    }
    /* Text under a numeric override: the line, the column and the value. */
    check_read_error("code,Income\n1,5\n2,abc\n", &o, FM_EDATA,
                     "x.csv:3: column 'Income': 'abc' is not a number");
    fm_type_overrides_add(&o, "Absent", FM_COLUMN_NUMERIC);
    check_read_error("code,Income\n1,5\n", &o, FM_ENOTFOUND,
                     "x.csv: type override for column 'Absent': no such column");
    fm_type_overrides_free(&o);
    FM_CHECK(o.count == 0 && o.names == NULL);
    fm_type_overrides_free(NULL);

    /* Schema files. */
    const char *path =
        write_file("schema.json", "{\"code\": \"categorical\", \"Income\": \"number\"}");
    fm_error_t err;
    FM_CHECK_INT(fm_type_overrides_load(path, &o, &err), 0);
    FM_CHECK_INT(o.count, 2);
    FM_CHECK_INT(fm_type_overrides_find(&o, "code"), FM_COLUMN_CATEGORICAL);
    FM_CHECK_INT(fm_type_overrides_find(&o, "Income"), FM_COLUMN_NUMERIC);
    fm_type_overrides_free(&o);
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"[1]", "a schema must be a JSON object"},
        {"{\"a\": \"text\"}", "entry 'a': unknown type 'text'"},
        {"{\"a\": 3}", "entry 'a': type must be a string"},
        {"{\"a\": \"numeric\", \"a\": \"numeric\"}", "entry 'a' appears more than once"},
        {"{\"\": \"numeric\"}", "entry with an empty column name"},
        {"{\"a\": \"numeric\"", "invalid JSON"},
        {"", "empty, expected JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        path = write_file("schema.json", bad[i].text);
        int rc = fm_type_overrides_load(path, &o, &err);
        FM_CHECK_MSG(rc < 0 && strstr(err.msg, bad[i].message) && strstr(err.msg, "schema.json"),
                     "%s -> %s", bad[i].text, err.msg);
        FM_CHECK(o.count == 0 && o.names == NULL);
    }
    remove_file("schema.json");
    FM_CHECK_INT(fm_type_overrides_load("/nonexistent.json", &o, &err), FM_EIO);
}

static void test_digest(void) {
    const char *text = "a,b\n1,x\n2,y\n";
    const char *path = write_file("d.csv", text);
    fm_frame_t *f = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_frame_read_csv(path, NULL, &f, &err), 0);
    char want[FM_DIGEST_HEX];
    fm_digest_hex(text, strlen(text), want);
    if (f) FM_CHECK_STR(f->digest, want);
    fm_frame_free(f);
    remove_file("d.csv");
}

/* The text of cell (row, col) of f, or "" when missing; numbers as %.17g. */
static const char *cell(const fm_frame_t *f, size_t col, size_t row, char buf[64]) {
    const fm_column_t *c = &f->columns[col];
    if (c->type == FM_COLUMN_NUMERIC) {
        if (isnan(c->values[row])) return "";
        snprintf(buf, 64, "%.17g", c->values[row]);
        return buf;
    }
    return c->codes[row] < 0 ? "" : fm_strdict_get(&c->dict, c->codes[row]);
}

/* A generated file read in chunks of several sizes gives the same cells as one whole read. */
static void test_chunks_match_whole_file(void) {
    char *text = malloc(1 << 20);
    if (!text) return;
    size_t used = (size_t)sprintf(text, "num,cat,skip,num2\n");
    for (int i = 0; i < 1000; i++)
        used += (size_t)sprintf(text + used, "%s,%s,zz%d,%d.25\n", i % 7 ? "1.5" : "NA",
                                (const char *[]){"a", "b", "\"c,d\"", "NA"}[i % 4], i, i);
    text[used] = '\0';
    const char *path = write_file("chunks.csv", text);
    fm_frame_t *whole = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_frame_read_csv(path, NULL, &whole, &err), 0);
    fm_column_spec_t specs[] = {{"num2", FM_COLUMN_NUMERIC, 1},
                                {"cat", FM_COLUMN_CATEGORICAL, 1},
                                {"absent", FM_COLUMN_NUMERIC, 0},
                                {"num", FM_COLUMN_NUMERIC, 1}};
    size_t whole_col[] = {3, 1, 0}; /* frame columns of the chunks, in whole's numbering */
    size_t sizes[] = {1, 7, 1000, 100000};
    for (size_t s = 0; whole && s < 4; s++) {
        fm_frame_reader_t *r = NULL;
        FM_CHECK_INT(fm_frame_reader_open(path, specs, 4, &r, &err), 0);
        if (!r) continue;
        size_t row = 0, mismatches = 0, chunks = 0;
        fm_frame_t *chunk = NULL;
        int rc;
        while ((rc = fm_frame_reader_next(r, sizes[s], &chunk, &err)) == 1) {
            chunks++;
            FM_CHECK(chunk->nrows <= sizes[s] && chunk->ncols == 3);
            FM_CHECK_STR(chunk->columns[0].name, "num2");
            for (size_t i = 0; i < chunk->nrows; i++, row++) {
                for (size_t c = 0; c < 3; c++) {
                    char a[64], b[64];
                    if (strcmp(cell(chunk, c, i, a), cell(whole, whole_col[c], row, b)) != 0)
                        mismatches++;
                }
            }
            fm_frame_free(chunk);
        }
        FM_CHECK_INT(rc, 0);
        FM_CHECK(chunk == NULL);
        FM_CHECK_INT(row, 1000);
        FM_CHECK_INT(fm_frame_reader_rows(r), 1000);
        FM_CHECK_INT(chunks, (1000 + sizes[s] - 1) / sizes[s]);
        FM_CHECK_INT(mismatches, 0);
        FM_CHECK_INT(fm_frame_reader_next(r, 5, &chunk, &err), 0); /* stays at the end */
        FM_CHECK_INT(fm_frame_reader_next(r, 0, &chunk, &err), FM_EINVAL);
        fm_frame_reader_close(r);
    }
    fm_frame_free(whole);
    fm_frame_reader_close(NULL);
    remove_file("chunks.csv");
    free(text);
}

/* A column marked as personal data: a bad value is reported without quoting it. */
static void test_pii_values_unquoted(void) {
    fm_frame_reader_t *r = NULL;
    fm_frame_t *chunk = NULL;
    fm_error_t err;
    const char *path = write_file("p.csv", "ssn,b\n123,1\nsecret-778,2\n");
    for (int pii = 0; pii < 2; pii++) {
        fm_column_spec_t specs[] = {{"ssn", FM_COLUMN_NUMERIC, 1, pii}};
        FM_CHECK_INT(fm_frame_reader_open(path, specs, 1, &r, &err), 0);
        if (!r) continue;
        FM_CHECK_INT(fm_frame_reader_next(r, 10, &chunk, &err), FM_EDATA);
        FM_CHECK(strstr(err.msg, "p.csv:3: column 'ssn'") != NULL);
        FM_CHECK_MSG((strstr(err.msg, "secret-778") != NULL) == !pii, "pii %d: %s", pii, err.msg);
        fm_frame_free(chunk);
        fm_frame_reader_close(r);
        r = NULL;
    }
    remove_file("p.csv");
}

static void test_chunk_errors(void) {
    fm_frame_reader_t *r = NULL;
    fm_frame_t *chunk = NULL;
    fm_error_t err;
    fm_column_spec_t specs[] = {{"a", FM_COLUMN_NUMERIC, 1}, {"Income", FM_COLUMN_NUMERIC, 1}};
    const char *path = write_file("c.csv", "a,b\n1,2\n");
    FM_CHECK_INT(fm_frame_reader_open(path, specs, 2, &r, &err), FM_ENOTFOUND);
    FM_CHECK(r == NULL);
    FM_CHECK(strstr(err.msg, "c.csv: required column 'Income' not found") != NULL);
    path = write_file("c.csv", "");
    FM_CHECK_INT(fm_frame_reader_open(path, specs, 2, &r, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "c.csv: empty file") != NULL);
    path = write_file("c.csv", "a,a,Income\n1,2,3\n");
    FM_CHECK_INT(fm_frame_reader_open(path, specs, 2, &r, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "c.csv:1: column name 'a' appears more than once") != NULL);
    fm_column_spec_t twice[] = {{"a", FM_COLUMN_NUMERIC, 1}, {"a", FM_COLUMN_NUMERIC, 1}};
    path = write_file("c.csv", "a,b\n1,2\n");
    FM_CHECK_INT(fm_frame_reader_open(path, twice, 2, &r, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "column 'a' requested twice") != NULL);
    /* An unused unnamed column (a saved pandas index) is fine. */
    path = write_file("c.csv", ",a,Income\n0,1,2\n1,3,oops\n2,4\n");
    FM_CHECK_INT(fm_frame_reader_open(path, specs, 2, &r, &err), 0);
    if (r) {
        FM_CHECK_INT(fm_frame_reader_next(r, 1, &chunk, &err), 1);
        FM_CHECK(chunk && chunk->nrows == 1 && chunk->columns[1].values[0] == 2);
        fm_frame_free(chunk);
        FM_CHECK_INT(fm_frame_reader_next(r, 10, &chunk, &err), FM_EDATA);
        FM_CHECK(chunk == NULL);
        FM_CHECK(strstr(err.msg, "c.csv:3: column 'Income': 'oops' is not a number") != NULL);
        fm_frame_reader_close(r);
    }
    path = write_file("c.csv", "a,Income\n1,2\n3\n");
    FM_CHECK_INT(fm_frame_reader_open(path, specs, 2, &r, &err), 0);
    if (r) {
        FM_CHECK_INT(fm_frame_reader_next(r, 10, &chunk, &err), FM_EPARSE);
        FM_CHECK(strstr(err.msg, "c.csv:3: expected 2 fields, found 1") != NULL);
        fm_frame_reader_close(r);
    }
    /* Header only: no chunks, no error. */
    path = write_file("c.csv", "a,Income\n");
    FM_CHECK_INT(fm_frame_reader_open(path, specs, 2, &r, &err), 0);
    if (r) {
        FM_CHECK_INT(fm_frame_reader_next(r, 10, &chunk, &err), 0);
        fm_frame_reader_close(r);
    }
    remove_file("c.csv");
}

/* The path of a file in ../shared/data (tests run from the repository root). */
static const char *shared_data(const char *name) {
    static char path[512];
    const char *root = getenv("FM_SHARED");
    snprintf(path, sizeof path, "%s/data/%s", root ? root : "../shared", name);
    if (access(path, R_OK) != 0) snprintf(path, sizeof path, "/work/shared/data/%s", name);
    return path;
}

static void test_credit_data(void) {
    fm_frame_t *f = NULL;
    fm_error_t err;
    int rc = fm_frame_read_csv(shared_data("credit_data.csv"), NULL, &f, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    if (!f) return;
    FM_CHECK_INT(f->nrows, 4454);
    FM_CHECK_INT(f->ncols, 14);
    /* Columns, types and missing counts as pandas reads them (na_values=["NA"]). */
    static const struct {
        const char *name;
        fm_column_type_t type;
        size_t missing, categories;
    } want[] = {
        {"Status", FM_COLUMN_CATEGORICAL, 0, 2},  {"Seniority", FM_COLUMN_NUMERIC, 0, 0},
        {"Home", FM_COLUMN_CATEGORICAL, 6, 6},    {"Time", FM_COLUMN_NUMERIC, 0, 0},
        {"Age", FM_COLUMN_NUMERIC, 0, 0},         {"Marital", FM_COLUMN_CATEGORICAL, 1, 5},
        {"Records", FM_COLUMN_CATEGORICAL, 0, 2}, {"Job", FM_COLUMN_CATEGORICAL, 2, 4},
        {"Expenses", FM_COLUMN_NUMERIC, 0, 0},    {"Income", FM_COLUMN_NUMERIC, 381, 0},
        {"Assets", FM_COLUMN_NUMERIC, 47, 0},     {"Debt", FM_COLUMN_NUMERIC, 18, 0},
        {"Amount", FM_COLUMN_NUMERIC, 0, 0},      {"Price", FM_COLUMN_NUMERIC, 0, 0},
    };
    for (size_t i = 0; i < 14; i++) {
        const fm_column_t *c = &f->columns[i];
        FM_CHECK_STR(c->name, want[i].name);
        FM_CHECK_MSG(c->type == want[i].type, "%s", c->name);
        FM_CHECK_MSG(c->missing == want[i].missing, "%s: %zu missing", c->name, c->missing);
        if (c->type == FM_COLUMN_CATEGORICAL) FM_CHECK_INT(c->dict.count, want[i].categories);
    }
    /* First row: "good",9,"rent",60,30,"married","no","freelance",73,129,0,0,800,846 */
    FM_CHECK_STR(fm_strdict_get(&f->columns[0].dict, f->columns[0].codes[0]), "good");
    FM_CHECK(f->columns[1].values[0] == 9 && f->columns[13].values[0] == 846);
    FM_CHECK_STR(fm_strdict_get(&f->columns[7].dict, f->columns[7].codes[0]), "freelance");
    FM_CHECK_STR(f->digest, "424af6508c3905a07e650db59851fa2c0df3fc6e8810b22aa874b9697189e92e");
    fm_frame_free(f);
}

/* Short prefixes and every 499th one of a real file: a frame or a clear error, not a crash. */
static void test_truncated_files(void) {
    char *text = NULL;
    size_t len = 0;
    fm_error_t err;
    FM_CHECK_INT(fm_file_read_all(shared_data("credit_data.csv"), 1 << 20, &text, &len, &err), 0);
    if (!text) return;
    size_t frames = 0, errors = 0, unclear = 0;
    for (size_t n = 0; n < len; n += n < 300 ? 1 : 499) {
        char saved = text[n];
        text[n] = '\0';
        const char *path = write_file("cut.csv", text);
        text[n] = saved;
        fm_frame_t *f = NULL;
        int rc = fm_frame_read_csv(path, NULL, &f, &err);
        if (rc == 0) {
            frames++;
            FM_CHECK(f && f->nrows >= 1 && f->ncols >= 1);
        } else {
            errors++;
            unclear += f != NULL || strstr(err.msg, "cut.csv") == NULL;
        }
        fm_frame_free(f);
    }
    remove_file("cut.csv");
    free(text);
    printf("  truncated credit_data.csv: %zu frames, %zu errors\n", frames, errors);
    FM_CHECK_INT(unclear, 0);
    FM_CHECK(frames > 0 && errors > 0);
}

static void test_credit_g(void) {
    fm_frame_t *f = NULL;
    fm_error_t err;
    int rc = fm_frame_read_csv(shared_data("credit-g.csv"), NULL, &f, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    if (!f) return;
    FM_CHECK_INT(f->nrows, 1000);
    FM_CHECK_INT(f->ncols, 21);
    const char *categorical[] = {"checking_status",
                                 "credit_history",
                                 "purpose",
                                 "savings_status",
                                 "employment",
                                 "personal_status",
                                 "other_parties",
                                 "property_magnitude",
                                 "other_payment_plans",
                                 "housing",
                                 "job",
                                 "own_telephone",
                                 "foreign_worker",
                                 "class"};
    size_t ncategorical = 0, missing = 0;
    for (size_t i = 0; i < f->ncols; i++) {
        int want = 0;
        for (size_t j = 0; j < 14; j++)
            want |= strcmp(f->columns[i].name, categorical[j]) == 0;
        FM_CHECK_MSG((f->columns[i].type == FM_COLUMN_CATEGORICAL) == want, "%s",
                     f->columns[i].name);
        ncategorical += f->columns[i].type == FM_COLUMN_CATEGORICAL;
        missing += f->columns[i].missing;
    }
    FM_CHECK_INT(ncategorical, 14);
    FM_CHECK_INT(missing, 0);
    FM_CHECK_INT(f->columns[fm_frame_find(f, "purpose")].dict.count, 10);
    FM_CHECK_STR(f->digest, "3d751d89129dd647309bf8f2ce5acd789690576774ea4464af6a21fa609dd2f7");
    fm_frame_free(f);
}

FM_TEST_MAIN(FM_TEST_CASE(test_inference), FM_TEST_CASE(test_quoting_in_frames),
             FM_TEST_CASE(test_read_errors), FM_TEST_CASE(test_overrides),
             FM_TEST_CASE(test_digest), FM_TEST_CASE(test_chunks_match_whole_file),
             FM_TEST_CASE(test_chunk_errors), FM_TEST_CASE(test_pii_values_unquoted),
             FM_TEST_CASE(test_credit_data), FM_TEST_CASE(test_truncated_files),
             FM_TEST_CASE(test_credit_g))
