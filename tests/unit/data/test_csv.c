/*
 * Tests of the CSV reader (fm_csv_*) and of cell values (fm_value_*, column type names): RFC 4180
 * quoting, line endings, byte-order marks, blank lines, malformed and oversized input with the
 * line and column of each error, digests, block boundaries (random records checked against the
 * values they were written from), and number parsing checked bit for bit against strtod.
 */
#include "core/digest.h"
#include "core/rng.h"
#include "data/data.h"
#include "data/internal.h"
#include "fm_test.h"

#include <errno.h>
#include <unistd.h>

/* Parses text and renders its records as "f1|f2\n" lines; returns the last fm_csv_next code. */
static int render(const char *text, size_t len, char *out, size_t size, fm_error_t *err) {
    fm_csv_t *csv = NULL;
    int rc = fm_csv_open_memory(text, len, "t.csv", &csv, err);
    if (rc) return rc;
    size_t used = 0;
    out[0] = '\0';
    char *const *fields;
    const size_t *lens;
    size_t n;
    while ((rc = fm_csv_next(csv, &fields, &lens, &n, err)) == 1) {
        for (size_t i = 0; i < n; i++) {
            FM_CHECK_INT(strlen(fields[i]), lens[i]);
            used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "|" : "", fields[i]);
        }
        used += (size_t)snprintf(out + used, size - used, "\n");
    }
    fm_csv_close(csv);
    return rc;
}

static void check_render(const char *text, const char *want) {
    char out[1024];
    fm_error_t err;
    fm_error_clear(&err);
    int rc = render(text, strlen(text), out, sizeof out, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    FM_CHECK_STR(out, want);
}

static void check_error(const char *text, size_t len, int code, const char *message) {
    char out[1024];
    fm_error_t err;
    fm_error_clear(&err);
    int rc = render(text, len, out, sizeof out, &err);
    FM_CHECK_INT(rc, code);
    FM_CHECK_STR(err.msg, message);
}

static void test_plain_records(void) {
    check_render("a,b,c\n1,2,3\n", "a|b|c\n1|2|3\n");
    check_render("a,b\n1,2", "a|b\n1|2\n"); /* last line without a newline */
    check_render("a,b\n1,\n", "a|b\n1|\n"); /* empty last field */
    check_render("a,b\n,\n", "a|b\n|\n");   /* two empty fields */
    check_render("a,b\n1,", "a|b\n1|\n");   /* trailing comma at end of input */
    check_render("x\n", "x\n");
    check_render("", "");
    check_render("\n\n\n", "");
    check_render(" a , b \n", " a | b \n"); /* spaces are data */
}

static void test_quoted_fields(void) {
    check_render("\"a,b\",c\n", "a,b|c\n");
    check_render("\"say \"\"hi\"\"\",x\n", "say \"hi\"|x\n");
    check_render("\"line1\nline2\",z\n", "line1\nline2|z\n");
    check_render("\"line1\r\nline2\"\r\n", "line1\r\nline2\n");
    check_render("\"\",\"\"\n", "|\n");
    check_render("\"\"\n", "\n");           /* one empty quoted field, not a blank line */
    check_render("\"\"\"\"\n", "\"\n");     /* a field that is one quote */
    check_render("ab\"c,d\n", "ab\"c|d\n"); /* a quote inside an unquoted field is data */
    check_render("a,\"b\"", "a|b\n");       /* closing quote at end of input */
}

static void test_line_endings(void) {
    check_render("a,b\r\n1,2\r\n", "a|b\n1|2\n");
    check_render("a,b\r1,2\r", "a|b\n1|2\n"); /* lone CR */
    check_render("a,b\r\n\r\n1,2\r\n\r\n", "a|b\n1|2\n");
    check_render("a\n\n\nb\n", "a\nb\n");
    check_render("\xEF\xBB\xBF"
                 "a,b\n1,2\n",
                 "a|b\n1|2\n");
    check_render("\xEF\xBB\xBF", "");
    check_render("\xEF\xBB"
                 "a\n",
                 "\xEF\xBB"
                 "a\n");                                    /* not a whole BOM: data */
    check_render("a\n\xEF\xBB\xBF\n", "a\n\xEF\xBB\xBF\n"); /* a BOM later on is data */
}

/* Line numbers of records, counting line breaks inside quoted fields. */
static void test_line_numbers(void) {
    const char *text = "h1,h2\n\n\"a\nb\",1\r\n\"c\r\nd\",2\n\"e\rf\",3\r\rlast,4\n";
    fm_csv_t *csv = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_csv_open_memory(text, strlen(text), "t.csv", &csv, &err), 0);
    char *const *f;
    const size_t *l;
    size_t n;
    size_t want[] = {1, 3, 5, 7, 10};
    for (size_t i = 0; i < 5; i++) {
        FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 1);
        FM_CHECK_INT(fm_csv_line(csv), want[i]);
    }
    FM_CHECK_STR(f[0], "last");
    FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 0);
    FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 0); /* stays at the end */
    FM_CHECK_STR(fm_csv_name(csv), "t.csv");
    fm_csv_close(csv);
    fm_csv_close(NULL);
    /* Regression: a CR ending one quoted field and an LF starting the next are two breaks. */
    const char *split = "\"a\r\",\"\nb\"\nx\n";
    FM_CHECK_INT(fm_csv_open_memory(split, strlen(split), "t.csv", &csv, &err), 0);
    FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 1);
    FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 1);
    FM_CHECK_INT(fm_csv_line(csv), 4);
    fm_csv_close(csv);
}

/* Records whose CR, LF, quotes and BOM fall on either side of the 64 KiB block boundary. */
static void test_block_boundaries(void) {
    const size_t block = 64u << 10;
    char *text = malloc(block + 64);
    FM_CHECK(text != NULL);
    if (!text) return;
    for (size_t filler = block - 8; filler <= block + 2; filler++) {
        memset(text, 'a', filler);
        const char *tail = "\r\nb,\"c\"\"d\"\r\"e\r\nf\"\n";
        size_t len = filler + strlen(tail);
        memcpy(text + filler, tail, strlen(tail));
        fm_csv_t *csv = NULL;
        fm_error_t err;
        char *const *f;
        const size_t *l;
        size_t n;
        FM_CHECK_INT(fm_csv_open_memory(text, len, "t.csv", &csv, &err), 0);
        FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 1);
        FM_CHECK(n == 1 && l[0] == filler);
        FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 1);
        FM_CHECK(n == 2 && strcmp(f[0], "b") == 0 && strcmp(f[1], "c\"d") == 0);
        FM_CHECK_INT(fm_csv_line(csv), 2);
        FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 1);
        FM_CHECK(n == 1 && strcmp(f[0], "e\r\nf") == 0);
        FM_CHECK_INT(fm_csv_line(csv), 3);
        FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 0);
        fm_csv_close(csv);
    }
    free(text);
}

static void test_malformed(void) {
    check_error("a,b\n\"x,y\n", 9, FM_EPARSE, "t.csv:2:1: unterminated quoted field");
    check_error("a,b\n1,2\n3,\"x\ny\nz", 16, FM_EPARSE, "t.csv:3:3: unterminated quoted field");
    check_error("a,\"b\"x,c\n", 9, FM_EPARSE,
                "t.csv:1:6: unexpected character 'x' after closing quote");
    check_error("a\n\"b\" \n", 7, FM_EPARSE,
                "t.csv:2:4: unexpected character ' ' after closing quote");
    check_error("a\n\"b\"\x01\n", 7, FM_EPARSE,
                "t.csv:2:4: unexpected byte 0x01 after closing quote");
    check_error("a,b\n1,x\0y\n", 10, FM_EPARSE, "t.csv:2:4: NUL byte (binary data?)");
    check_error("a,\"b\0\"\n", 7, FM_EPARSE, "t.csv:1:5: NUL byte (binary data?)");
    check_error("\"a\nb", 4, FM_EPARSE, "t.csv:1:1: unterminated quoted field");
    check_error("\xEF\xBB\xBF"
                "a,\"b",
                7, FM_EPARSE, "t.csv:1:3: unterminated quoted field");

    /* After an error the reader stays failed. */
    const char *bad = "\"a\"b\nc\n";
    fm_csv_t *csv = NULL;
    fm_error_t err;
    char *const *f;
    const size_t *l;
    size_t n;
    FM_CHECK_INT(fm_csv_open_memory(bad, strlen(bad), NULL, &csv, &err), 0);
    FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), FM_EPARSE);
    FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), FM_EPARSE);
    FM_CHECK_INT(n, 0);
    fm_csv_close(csv);
}

static void test_limits(void) {
    /* One field just over the record limit, quoted and unquoted. */
    size_t len = FM_CSV_MAX_RECORD_BYTES + 16;
    char *big = malloc(len);
    FM_CHECK(big != NULL);
    if (!big) return;
    memset(big, 'x', len);
    char out[64];
    fm_error_t err;
    FM_CHECK_INT(render(big, len, out, sizeof out, &err), FM_ELIMIT);
    FM_CHECK(strstr(err.msg, "t.csv:1:") == err.msg);
    FM_CHECK(strstr(err.msg, "record longer than the limit of 16777216 bytes") != NULL);
    big[0] = '"';
    FM_CHECK_INT(render(big, len, out, sizeof out, &err), FM_ELIMIT);
    /* Just under the limit is fine. */
    big[0] = 'x';
    big[FM_CSV_MAX_RECORD_BYTES - 2] = '\n';
    fm_csv_t *csv = NULL;
    char *const *f;
    const size_t *l;
    size_t n;
    FM_CHECK_INT(fm_csv_open_memory(big, FM_CSV_MAX_RECORD_BYTES - 1, "t.csv", &csv, &err), 0);
    FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 1);
    FM_CHECK_INT(l[0], FM_CSV_MAX_RECORD_BYTES - 2);
    fm_csv_close(csv);
    /* Too many fields. */
    memset(big, ',', FM_CSV_MAX_FIELDS);
    big[FM_CSV_MAX_FIELDS] = '\n';
    FM_CHECK_INT(render(big, FM_CSV_MAX_FIELDS + 1, out, sizeof out, &err), FM_ELIMIT);
    FM_CHECK(strstr(err.msg, "more than the limit of 100000 fields") != NULL);
    FM_CHECK_INT(fm_csv_open_memory(big, FM_CSV_MAX_FIELDS - 1, "t.csv", &csv, &err), 0);
    FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 1); /* 99999 commas: 100000 fields */
    FM_CHECK_INT(n, FM_CSV_MAX_FIELDS);
    fm_csv_close(csv);
    free(big);
}

/* Writes text to dir/name; returns the path (static storage, overwritten by the next call). */
static const char *write_file(const char *dir, const char *name, const void *text, size_t len) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    FM_CHECK(fp != NULL);
    if (fp) {
        FM_CHECK_INT(fwrite(text, 1, len, fp), len);
        fclose(fp);
    }
    return path;
}

/* Appends field to out, quoted when forced or needed, and returns the new length. */
static size_t put_field(char *out, size_t used, const char *field, int quote) {
    if (!quote) {
        size_t n = strlen(field);
        memcpy(out + used, field, n);
        return used + n;
    }
    out[used++] = '"';
    for (const char *p = field; *p; p++) {
        if (*p == '"') out[used++] = '"';
        out[used++] = *p;
    }
    out[used++] = '"';
    return used;
}

/*
 * Random records (with commas, quotes, CR and LF in values) written as CSV with LF or CRLF and
 * read back from a file through 64 KiB blocks: every field must come back as written, with the
 * right line number, and the digest must be that of the whole file.
 */
static void test_random_round_trip(void) {
    enum { ROWS = 6000, COLS = 5, FIELD_MAX = 24 };
    static char fields[ROWS][COLS][FIELD_MAX + 1];
    static size_t lines[ROWS];
    static const char alphabet[] = "abcxyz019 ,\"\n\r.-";
    fm_rng_t rng;
    fm_rng_seed(&rng, 42);
    size_t cap = (size_t)ROWS * COLS * (2 * FIELD_MAX + 4) + 16, used = 0, line = 1;
    char *text = malloc(cap);
    FM_CHECK(text != NULL);
    if (!text) return;
    for (size_t r = 0; r < ROWS; r++) {
        lines[r] = line;
        int crlf = fm_rng_below(&rng, 2) == 0;
        for (size_t c = 0; c < COLS; c++) {
            size_t n = fm_rng_below(&rng, FIELD_MAX + 1);
            int special = 0;
            for (size_t i = 0; i < n; i++) {
                /* Mostly plain letters, sometimes the characters that force quoting. */
                char ch = fm_rng_below(&rng, 6) ? alphabet[fm_rng_below(&rng, 10)]
                                                : alphabet[fm_rng_below(&rng, sizeof alphabet - 1)];
                fields[r][c][i] = ch;
                special |= ch == ',' || ch == '"' || ch == '\n' || ch == '\r';
            }
            fields[r][c][n] = '\0';
            /* Empty single-column rows would be blank lines; COLS > 1 keeps every row. */
            int quote = special || (n > 0 && fields[r][c][0] == '"') || fm_rng_below(&rng, 4) == 0;
            if (c) text[used++] = ',';
            used = put_field(text, used, fields[r][c], quote);
            if (quote) {
                for (size_t i = 0; i < n; i++) {
                    char ch = fields[r][c][i];
                    if (ch == '\r' || (ch == '\n' && (i == 0 || fields[r][c][i - 1] != '\r')))
                        line++;
                }
            }
        }
        if (crlf) text[used++] = '\r';
        text[used++] = '\n';
        line++;
    }
    FM_CHECK(used > 3 * (64u << 10)); /* crosses several blocks */
    char dir[] = "/tmp/fm_csv_test_XXXXXX";
    FM_CHECK(mkdtemp(dir) != NULL);
    const char *path = write_file(dir, "random.csv", text, used);
    fm_csv_t *csv = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_csv_open(path, &csv, &err), 0);
    char *const *f;
    const size_t *l;
    size_t n, r = 0, bad = 0;
    int rc;
    while (csv && (rc = fm_csv_next(csv, &f, &l, &n, &err)) == 1 && r < ROWS) {
        if (n != COLS || fm_csv_line(csv) != lines[r]) bad++;
        for (size_t c = 0; c < n && c < COLS; c++)
            if (l[c] != strlen(fields[r][c]) || memcmp(f[c], fields[r][c], l[c]) != 0) bad++;
        r++;
    }
    FM_CHECK_INT(rc, 0);
    FM_CHECK_INT(r, ROWS);
    FM_CHECK_INT(bad, 0);
    char got[FM_DIGEST_HEX], want[FM_DIGEST_HEX];
    fm_csv_digest(csv, got);
    fm_digest_hex(text, used, want);
    FM_CHECK_STR(got, want);
    fm_csv_close(csv);
    unlink(path);
    rmdir(dir);
    free(text);
}

/*
 * Random bytes drawn mostly from CSV's special characters: the reader must return records or a
 * located error, never crash or read out of bounds (run under AddressSanitizer), and every field
 * it returns must be NUL-terminated at its length.
 */
static void test_random_bytes(void) {
    static const char alphabet[] = "\"\",,\r\n\n ab1\xEF\xBB\xBF\x00";
    fm_rng_t rng;
    fm_rng_seed(&rng, 5);
    char text[300];
    size_t records = 0, errors = 0, bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = fm_rng_below(&rng, sizeof text);
        for (size_t i = 0; i < n; i++)
            text[i] = alphabet[fm_rng_below(&rng, sizeof alphabet - 1)];
        /* Copy to the heap at its exact size so that any over-read is caught. */
        char *copy = malloc(n ? n : 1);
        if (!copy) continue;
        memcpy(copy, text, n);
        fm_csv_t *csv = NULL;
        fm_error_t err;
        char *const *f;
        const size_t *l;
        size_t nf;
        int rc = fm_csv_open_memory(copy, n, "r.csv", &csv, &err);
        while (rc == 0 && (rc = fm_csv_next(csv, &f, &l, &nf, &err)) == 1) {
            records++;
            for (size_t i = 0; i < nf; i++)
                bad += f[i][l[i]] != '\0' || memchr(f[i], 0, l[i]);
            rc = 0;
        }
        if (rc < 0) {
            errors++;
            bad += strncmp(err.msg, "r.csv:", 6) != 0;
        }
        fm_csv_close(csv);
        free(copy);
    }
    printf("  20000 random inputs: %zu records, %zu errors\n", records, errors);
    FM_CHECK_INT(bad, 0);
    FM_CHECK(records > 0 && errors > 0);
}

static void test_files_and_digests(void) {
    char dir[] = "/tmp/fm_csv_test_XXXXXX";
    FM_CHECK(mkdtemp(dir) != NULL);
    const char *text = "a,b\n1,2\n";
    const char *path = write_file(dir, "small.csv", text, strlen(text));
    fm_csv_t *csv = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_csv_open(path, &csv, &err), 0);
    FM_CHECK_STR(fm_csv_name(csv), path);
    char *const *f;
    const size_t *l;
    size_t n;
    while (fm_csv_next(csv, &f, &l, &n, &err) == 1)
        continue;
    char got[FM_DIGEST_HEX], want[FM_DIGEST_HEX];
    fm_csv_digest(csv, got);
    fm_csv_digest(csv, got); /* may be asked twice */
    fm_digest_hex(text, strlen(text), want);
    FM_CHECK_STR(got, want);
    fm_csv_close(csv);
    /* Known BLAKE2b-256 of the empty input (b2sum -l 256 /dev/null). */
    FM_CHECK_INT(fm_csv_open_memory("", 0, "empty", &csv, &err), 0);
    FM_CHECK_INT(fm_csv_next(csv, &f, &l, &n, &err), 0);
    fm_csv_digest(csv, got);
    FM_CHECK_STR(got, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    fm_csv_close(csv);
    unlink(path);

    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.csv", dir);
    FM_CHECK_INT(fm_csv_open(missing, &csv, &err), FM_EIO);
    FM_CHECK(csv == NULL);
    FM_CHECK(strstr(err.msg, "none.csv: cannot open") != NULL);
    FM_CHECK_INT(fm_csv_open(dir, &csv, &err), FM_EIO);
    FM_CHECK(strstr(err.msg, "is a directory") != NULL);
    rmdir(dir);
}

static void test_missing_tokens(void) {
    const char *missing[] = {"",     "  ",   "NA",   "N/A",  "n/a",  "NaN",  "nan",
                             "NULL", "null", "None", "<NA>", "#N/A", " NA ", "\tnan"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        FM_CHECK_MSG(fm_value_is_missing(missing[i], strlen(missing[i])), "'%s'", missing[i]);
    const char *present[] = {"0", "na", "NAN", "none", "N", "NA1", "-", "nil", "NA NA"};
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++)
        FM_CHECK_MSG(!fm_value_is_missing(present[i], strlen(present[i])), "'%s'", present[i]);
    FM_CHECK(fm_value_is_missing("NAxyz", 2)); /* only n bytes count */
}

static void test_parse_number(void) {
    static const struct {
        const char *text;
        double want;
    } good[] = {
        {"0", 0},
        {"-0", -0.0},
        {"42", 42},
        {"+42", 42},
        {"-3.25", -3.25},
        {"1e3", 1000},
        {"1E-3", 0.001},
        {".5", 0.5},
        {"5.", 5},
        {" 7 ", 7},
        {"\t8\t", 8},
        {"1e+2", 100},
        {"0.1", 0.1},
        {"123456789012345678901234567890", 1.2345678901234568e29},
        {"1e-400", 0},
        {"4.9e-324", 4.9e-324},
        {"1.7976931348623157e308", 1.7976931348623157e308},
        {"12e25", 1.2e26},
        {"000123.4500", 123.45},
        {"0e99999999", 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -1;
        int rc = fm_value_parse_number(good[i].text, strlen(good[i].text), &v);
        FM_CHECK_MSG(rc == 0 && v == good[i].want && signbit(v) == signbit(good[i].want),
                     "'%s' -> rc %d, %.17g", good[i].text, rc, v);
    }
    const char *bad[] = {"",    " ",   "abc",  "1a",    "0x10",  "1e",   "1e+",
                         "e5",  ".",   "-",    "+",     "1,5",   "1 2",  "--1",
                         "nan", "NaN", "1..2", "1.2.3", "0x1p3", "1_000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v;
        FM_CHECK_MSG(fm_value_parse_number(bad[i], strlen(bad[i]), &v) == FM_EPARSE, "'%s'",
                     bad[i]);
    }
    const char *infinite[] = {"inf", "-inf", "Inf", "INFINITY", "+Infinity", "1e309", "-2e400"};
    for (size_t i = 0; i < sizeof infinite / sizeof infinite[0]; i++) {
        double v;
        FM_CHECK_MSG(fm_value_parse_number(infinite[i], strlen(infinite[i]), &v) == FM_ERANGE,
                     "'%s'", infinite[i]);
    }
    double v;
    FM_CHECK_INT(fm_value_parse_number("12345", 3, &v), 0); /* only n bytes count */
    FM_CHECK(v == 123);
    /* A long number goes the slow way (and needs a heap copy for strtod). */
    char longtext[401];
    memset(longtext, '0', sizeof longtext);
    longtext[1] = '.';
    longtext[300] = '7';
    longtext[400] = '\0';
    FM_CHECK_INT(fm_value_parse_number(longtext, 400, &v), 0);
    FM_CHECK(v == 7e-299);
    FM_CHECK(v == strtod(longtext, NULL));
}

/* Random decimal strings of many shapes must read bit for bit as strtod reads them. */
static void test_parse_number_against_strtod(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 7);
    char text[64];
    size_t mismatches = 0, fast = 0;
    for (int iter = 0; iter < 1000000; iter++) {
        size_t n = 0;
        if (fm_rng_below(&rng, 4) == 0) text[n++] = fm_rng_below(&rng, 2) ? '-' : '+';
        size_t int_digits = fm_rng_below(&rng, iter % 3 ? 8 : 21);
        size_t frac_digits = fm_rng_below(&rng, iter % 5 ? 8 : 21);
        if (int_digits + frac_digits == 0) int_digits = 1;
        for (size_t i = 0; i < int_digits; i++)
            text[n++] = (char)('0' + fm_rng_below(&rng, 10));
        if (frac_digits || fm_rng_below(&rng, 8) == 0) text[n++] = '.';
        for (size_t i = 0; i < frac_digits; i++)
            text[n++] = (char)('0' + fm_rng_below(&rng, 10));
        if (fm_rng_below(&rng, 3) == 0) {
            text[n++] = fm_rng_below(&rng, 2) ? 'e' : 'E';
            int e = (int)fm_rng_below(&rng, fm_rng_below(&rng, 4) ? 60 : 700);
            n += (size_t)snprintf(text + n, sizeof text - n, "%s%d",
                                  fm_rng_below(&rng, 2) ? "-" : "", e);
        }
        text[n] = '\0';
        errno = 0;
        double want = strtod(text, NULL);
        double got = 0;
        int rc = fm_value_parse_number(text, n, &got);
        if (isinf(want)) {
            if (rc != FM_ERANGE) mismatches++;
            continue;
        }
        fast += int_digits + frac_digits <= 15;
        if (rc != 0 || memcmp(&got, &want, sizeof got) != 0) {
            if (mismatches++ < 5)
                fprintf(stderr, "  '%s': got %.17g want %.17g\n", text, got, want);
        }
    }
    printf("  1e6 random numbers (%zu of <= 15 digits): %zu mismatches against strtod\n", fast,
           mismatches);
    FM_CHECK_INT(mismatches, 0);
    /* Doubles printed with %.17g and %.15g read back exactly. */
    for (int iter = 0; iter < 200000; iter++) {
        uint64_t bits = fm_rng_next(&rng);
        double x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x)) continue;
        int n = snprintf(text, sizeof text, iter % 2 ? "%.17g" : "%.15g", x);
        double got = 0, want = strtod(text, NULL);
        FM_CHECK(fm_value_parse_number(text, (size_t)n, &got) == 0);
        if (memcmp(&got, &want, sizeof got) != 0) mismatches++;
    }
    FM_CHECK_INT(mismatches, 0);
}

/*
 * The grammar against strtod: random strings over digits, point, exponent letters, signs and
 * spaces are numbers exactly when strtod consumes all of their trimmed text (the alphabet has no
 * letters that would let strtod read hex, inf or nan). Checking and parsing must agree with that,
 * and parsed values must equal strtod's. Lengths up to 24 cross the eight-byte paths.
 */
static void test_number_grammar_against_strtod(void) {
    static const char alphabet[] = "0123456789012345678901234567890123456789..eE+- \t";
    fm_rng_t rng;
    fm_rng_seed(&rng, 11);
    char text[32];
    size_t wrong = 0, valid = 0;
    for (int iter = 0; iter < 1000000; iter++) {
        size_t n = fm_rng_below(&rng, 25);
        for (size_t i = 0; i < n; i++)
            text[i] = alphabet[fm_rng_below(&rng, sizeof alphabet - 1)];
        text[n] = '\0';
        const char *start = text, *stop = text + n;
        while (start < stop && (*start == ' ' || *start == '\t'))
            start++;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        char trimmed[32];
        memcpy(trimmed, start, (size_t)(stop - start));
        trimmed[stop - start] = '\0';
        char *used;
        double want = strtod(trimmed, &used);
        int is_number = stop > start && used == trimmed + (stop - start);
        double got = 0;
        int parsed = fm_value_parse_number(text, n, &got);
        int checked = fm_value_check_number(text, n);
        if (is_number) {
            valid++;
            int ok = checked == FM_OK &&
                     (isinf(want) ? parsed == FM_ERANGE
                                  : parsed == FM_OK && memcmp(&got, &want, sizeof got) == 0);
            if (!ok && wrong++ < 5)
                fprintf(stderr, "  '%s': number, got %d/%d\n", text, parsed, checked);
        } else if (parsed != FM_EPARSE || checked != FM_EPARSE) {
            if (wrong++ < 5)
                fprintf(stderr, "  '%s': not a number, got %d/%d\n", text, parsed, checked);
        }
    }
    printf("  1e6 random strings, %zu of them numbers: %zu disagreements with strtod\n", valid,
           wrong);
    FM_CHECK_INT(wrong, 0);
    FM_CHECK(valid > 10000);
    /* The infinity words: out of range for both. */
    FM_CHECK_INT(fm_value_check_number(" -Infinity", 10), FM_ERANGE);
    FM_CHECK_INT(fm_value_check_number("1e999", 5), FM_OK); /* parsing reports the overflow */
    FM_CHECK_INT(fm_value_check_number("12345678x", 9), FM_EPARSE);
    FM_CHECK_INT(fm_value_check_number("123456789012.3456789", 20), FM_OK);
}

static void test_column_types(void) {
    FM_CHECK_STR(fm_column_type_name(FM_COLUMN_NUMERIC), "numeric");
    FM_CHECK_STR(fm_column_type_name(FM_COLUMN_CATEGORICAL), "categorical");
    fm_column_type_t t;
    const char *numeric[] = {"numeric", "number", "float", "int", "Numeric"};
    const char *categorical[] = {"categorical", "string", "category", "CATEGORICAL"};
    for (size_t i = 0; i < 5; i++) {
        t = FM_COLUMN_CATEGORICAL;
        FM_CHECK(fm_column_type_parse(numeric[i], &t) == 0 && t == FM_COLUMN_NUMERIC);
    }
    for (size_t i = 0; i < 4; i++) {
        t = FM_COLUMN_NUMERIC;
        FM_CHECK(fm_column_type_parse(categorical[i], &t) == 0 && t == FM_COLUMN_CATEGORICAL);
    }
    FM_CHECK_INT(fm_column_type_parse("text", &t), FM_EINVAL);
    FM_CHECK_INT(fm_column_type_parse("", &t), FM_EINVAL);
    FM_CHECK_INT(fm_column_type_parse(NULL, &t), FM_EINVAL);
}

FM_TEST_MAIN(FM_TEST_CASE(test_plain_records), FM_TEST_CASE(test_quoted_fields),
             FM_TEST_CASE(test_line_endings), FM_TEST_CASE(test_line_numbers),
             FM_TEST_CASE(test_block_boundaries), FM_TEST_CASE(test_malformed),
             FM_TEST_CASE(test_limits), FM_TEST_CASE(test_random_round_trip),
             FM_TEST_CASE(test_random_bytes), FM_TEST_CASE(test_files_and_digests),
             FM_TEST_CASE(test_missing_tokens), FM_TEST_CASE(test_parse_number),
             FM_TEST_CASE(test_parse_number_against_strtod),
             FM_TEST_CASE(test_number_grammar_against_strtod), FM_TEST_CASE(test_column_types))
