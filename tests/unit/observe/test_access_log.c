/*
 * Tests of the access log (src/observe/access_log.c): entries written from 8 threads each appear
 * exactly once, in each thread's order, as valid JSON lines (parsed with cJSON); escaping of
 * quotes, control characters, UTF-8 and invalid UTF-8; fields omitted when NULL or 0; the exact
 * layout of the header's example line; time and latency checked against gmtime_r and printf;
 * flushing on close and within 200 ms; "-" writing to standard error; clear errors for paths that
 * cannot be opened; and the drop path, driven by a real pipe that nobody reads until the buffer
 * has overflowed, ending with the dropped-count entry.
 */
#include "observe/access_log.h"
#include "observe/observe_internal.h"

#include "fm_test.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

static void make_tmpdir(void) {
    if (tmpdir[0]) return;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fm_test_access_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void temp_path(char *out, size_t size, const char *name) {
    make_tmpdir();
    snprintf(out, size, "%s/%s", tmpdir, name);
}

/* The whole file as a NUL-terminated string (caller frees); NULL if unreadable. */
static char *read_all_fd(int fd, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *data = malloc(cap);
    for (;;) {
        if (n + 1 >= cap) data = realloc(data, cap *= 2);
        ssize_t r = read(fd, data + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    data[n] = '\0';
    if (len) *len = n;
    return data;
}

static char *read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    char *data = read_all_fd(fd, len);
    close(fd);
    return data;
}

/* Splits text into lines in place; returns their count (a missing final newline is a failure). */
static size_t split_lines(char *text, char ***lines) {
    size_t n = 0, cap = 16;
    *lines = malloc(cap * sizeof **lines);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        FM_CHECK_MSG(nl != NULL, "last line has no newline: %.80s", p);
        if (!nl) break;
        *nl = '\0';
        if (n == cap) *lines = realloc(*lines, (cap *= 2) * sizeof **lines);
        (*lines)[n++] = p;
        p = nl + 1;
    }
    return n;
}

static fm_access_log_t *open_log(const char *path) {
    fm_access_log_t *log = NULL;
    fm_error_t err;
    int rc = fm_access_log_open(path, &log, &err);
    FM_CHECK_MSG(rc == FM_OK, "%s", fm_error_message(&err));
    return log;
}

static const char *str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" as seconds since the epoch; -1 when malformed. */
static double parse_time(const char *t) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = -1, used = 0;
    if (!t || strlen(t) != 24 ||
        sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &used) != 7 ||
        used != 24)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + ms / 1000.0;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The log's own UTC formatting against gmtime_r + strftime: fixed dates around leap days, century
 * rules and year ends, then a million seconds spread over 1970..2242. */
static void test_utc_format(void) {
    static const int64_t fixed[] = {0,          59,         86399,      86400,      951782400,
                                    951868799,  951868800,  4107542399, 4107542400, 1709251199,
                                    1709251200, 1735689599, 1735689600, 946684799,  253402300799};
    char got[FM_OBSERVE_UTC_LEN + 1], want[64];
    int bad = 0;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 1000000 + (int)(sizeof fixed / sizeof fixed[0]); i++) {
        int64_t secs;
        if (i < (int)(sizeof fixed / sizeof fixed[0])) {
            secs = fixed[i];
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            secs = (int64_t)(x % 8589934592ull);
        }
        struct timespec ts = {(time_t)secs, (long)(x % 1000000000ull)};
        fm_observe_format_utc(got, &ts);
        got[FM_OBSERVE_UTC_LEN] = '\0';
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + n, sizeof want - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
        if (strcmp(got, want) != 0 && bad++ < 5)
            fprintf(stderr, "  %lld: %s vs %s\n", (long long)secs, got, want);
    }
    FM_CHECK_INT(bad, 0);
}

/* ---- many threads ---- */

/* 16,000 entries of about 210 bytes stay under the 4 MiB buffer even if the writer thread gets no
 * CPU until the end (8 busy threads on 2 cores can starve it), so none may be dropped. */
enum { THREADS = 8, PER_THREAD = 2000 };

typedef struct {
    fm_access_log_t *log;
    int id;
} writer_t;

static void *writer_main(void *arg) {
    writer_t *w = arg;
    char request_id[32], path[64];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(request_id, sizeof request_id, "t%d-%d", w->id, i);
        snprintf(path, sizeof path, "/v2/models/m%d/infer", w->id);
        fm_access_entry_t e = {request_id,  "POST",   path, "credit",         i + 1,
                               200 + w->id, i * 1e-6, 10,   20 + (uint64_t)i, "10.0.0.1"};
        fm_access_log_write(w->log, &e);
    }
    return NULL;
}

static void test_threads(void) {
    char path[128];
    temp_path(path, sizeof path, "threads.log");
    mode_t old = umask(022);
    double before = wall_now();
    fm_access_log_t *log = open_log(path);
    pthread_t threads[THREADS];
    writer_t writers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        writers[t] = (writer_t){log, t};
        pthread_create(&threads[t], NULL, writer_main, &writers[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    FM_CHECK_INT(fm_access_log_dropped(log), 0);
    fm_access_log_close(log);
    double after = wall_now();
    umask(old);

    struct stat st;
    FM_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);

    char *text = read_file(path, NULL), **lines;
    size_t n = split_lines(text, &lines);
    FM_CHECK_INT(n, THREADS * PER_THREAD);
    static unsigned char seen[THREADS][PER_THREAD];
    memset(seen, 0, sizeof seen);
    int next[THREADS] = {0}, bad = 0, disorder = 0, dupes = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_Parse(lines[i]);
        int t = -1, k = -1;
        if (!o || sscanf(str(o, "request_id") ? str(o, "request_id") : "", "t%d-%d", &t, &k) != 2 ||
            t < 0 || t >= THREADS || k < 0 || k >= PER_THREAD) {
            if (bad++ < 3) fprintf(stderr, "  bad line: %s\n", lines[i]);
            cJSON_Delete(o);
            continue;
        }
        if (seen[t][k]++) dupes++;
        if (k != next[t]) disorder++;
        next[t] = k + 1;
        double tm = parse_time(str(o, "time"));
        char want_path[64];
        snprintf(want_path, sizeof want_path, "/v2/models/m%d/infer", t);
        if (tm < before - 0.001 || tm > after + 0.001 || num(o, "status") != 200 + t ||
            num(o, "version") != k + 1 || num(o, "bytes_out") != 20 + k ||
            num(o, "bytes_in") != 10 || !str(o, "path") || strcmp(str(o, "path"), want_path) ||
            !str(o, "method") || strcmp(str(o, "method"), "POST") ||
            fabs(num(o, "latency_ms") - k * 1e-3) > 1e-9) {
            if (bad++ < 3) fprintf(stderr, "  wrong fields: %s\n", lines[i]);
        }
        cJSON_Delete(o);
    }
    FM_CHECK_INT(bad, 0);
    FM_CHECK_INT(dupes, 0);
    FM_CHECK_INT(disorder, 0);
    free(lines);
    free(text);
    unlink(path);
}

/* ---- one entry at a time ---- */

/* Writes entries, closes the log and returns its lines parsed (caller frees with cJSON_Delete). */
static cJSON *log_roundtrip(const fm_access_entry_t *entries, int n, char **raw) {
    char path[128];
    temp_path(path, sizeof path, "one.log");
    unlink(path);
    fm_access_log_t *log = open_log(path);
    for (int i = 0; i < n; i++)
        fm_access_log_write(log, &entries[i]);
    fm_access_log_close(log);
    char *text = read_file(path, NULL), **lines;
    size_t count = split_lines(text, &lines);
    FM_CHECK_INT(count, n);
    cJSON *all = cJSON_CreateArray();
    for (size_t i = 0; i < count; i++) {
        cJSON *o = cJSON_Parse(lines[i]);
        FM_CHECK_MSG(o != NULL, "not JSON: %s", lines[i]);
        cJSON_AddItemToArray(all, o ? o : cJSON_CreateNull());
    }
    if (raw && count) {
        *raw = strdup(lines[0]);
    }
    free(lines);
    free(text);
    unlink(path);
    return all;
}

static void test_layout(void) {
    fm_access_entry_t e = {
        "a1b2-17", "POST",     "/v2/models/credit/infer", "credit", 3, 200, 0.000412, 951,
        212,       "127.0.0.1"};
    char *raw = NULL;
    double before = wall_now();
    cJSON *all = log_roundtrip(&e, 1, &raw);
    double after = wall_now();
    FM_CHECK(raw != NULL && strncmp(raw, "{\"time\":\"", 9) == 0 && strlen(raw) > 33);
    if (raw && strlen(raw) > 33) {
        FM_CHECK_STR(raw + 33, "\",\"request_id\":\"a1b2-17\",\"method\":\"POST\","
                               "\"path\":\"/v2/models/credit/infer\",\"model\":\"credit\","
                               "\"version\":3,\"status\":200,\"latency_ms\":0.412,\"bytes_in\":951,"
                               "\"bytes_out\":212,\"remote\":\"127.0.0.1\"}");
        /* The time, against gmtime_r + strftime of the same second. */
        char t[25];
        memcpy(t, raw + 9, 24);
        t[24] = '\0';
        double tm = parse_time(t);
        FM_CHECK(tm >= before - 0.001 && tm <= after + 0.001);
        time_t secs = (time_t)tm;
        struct tm parts;
        gmtime_r(&secs, &parts);
        char want[32];
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &parts);
        FM_CHECK(strncmp(t, want, 19) == 0);
    }
    free(raw);
    cJSON_Delete(all);
}

static void test_optional_fields(void) {
    fm_access_entry_t entries[] = {
        {"r1", "GET", "/healthz", NULL, 0, 200, 0.001, 0, 2, NULL},
        {"r2", "GET", "/v2/models/x", "x", 0, 404, 0.001, 0, 2, "::1"}, /* model, no version */
        {"r3", "GET", "/v2/models/x/versions/-2", NULL, -2, 400, 0.001, 0, 2, NULL},
        {NULL, NULL, NULL, NULL, 0, 500, 0, 0, 0, NULL}, /* required fields missing: null */
    };
    cJSON *all = log_roundtrip(entries, 4, NULL);
    cJSON *o = cJSON_GetArrayItem(all, 0);
    FM_CHECK(o && !cJSON_HasObjectItem(o, "model") && !cJSON_HasObjectItem(o, "version") &&
             !cJSON_HasObjectItem(o, "remote"));
    FM_CHECK_INT(cJSON_GetArraySize(o), 8);
    o = cJSON_GetArrayItem(all, 1);
    FM_CHECK_STR(str(o, "model"), "x");
    FM_CHECK(!cJSON_HasObjectItem(o, "version"));
    FM_CHECK_STR(str(o, "remote"), "::1");
    o = cJSON_GetArrayItem(all, 2);
    FM_CHECK(!cJSON_HasObjectItem(o, "model"));
    FM_CHECK_INT(num(o, "version"), -2);
    o = cJSON_GetArrayItem(all, 3);
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "request_id")));
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "method")));
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "path")));
    FM_CHECK_INT(num(o, "status"), 500);
    cJSON_Delete(all);
}

static void test_numbers(void) {
    static const double latencies[] = {0.0, 1e-7, 0.0004, 0.0123456, 1.5, 1234.5678901, 86400.25};
    enum { N = sizeof latencies / sizeof latencies[0] };
    fm_access_entry_t entries[N + 3];
    for (int i = 0; i < N; i++)
        entries[i] = (fm_access_entry_t){"r", "GET", "/", NULL, 0, 200, latencies[i], 0, 0, NULL};
    entries[N] = (fm_access_entry_t){"r", "GET", "/",        NULL,       INT64_MAX,
                                     999, -1.0,  UINT64_MAX, UINT64_MAX, NULL};
    entries[N + 1] = (fm_access_entry_t){"r", "GET", "/", NULL, INT64_MIN, -5, NAN, 0, 0, NULL};
    entries[N + 2] = (fm_access_entry_t){"r", "GET", "/", NULL, 0, 0, INFINITY, 0, 0, NULL};
    char path[128];
    temp_path(path, sizeof path, "numbers.log");
    unlink(path);
    fm_access_log_t *log = open_log(path);
    for (int i = 0; i < N + 3; i++)
        fm_access_log_write(log, &entries[i]);
    fm_access_log_close(log);
    char *text = read_file(path, NULL), **lines;
    FM_CHECK_INT(split_lines(text, &lines), N + 3);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof want, "\"latency_ms\":%.3f,", latencies[i] * 1000);
        FM_CHECK_MSG(strstr(lines[i], want) != NULL, "%s not in %s", want, lines[i]);
    }
    FM_CHECK(strstr(lines[N], "\"version\":9223372036854775807,\"status\":999,"
                              "\"latency_ms\":0.000,\"bytes_in\":18446744073709551615,"
                              "\"bytes_out\":18446744073709551615}") != NULL);
    FM_CHECK(strstr(lines[N + 1], "\"version\":-9223372036854775808,\"status\":-5,"
                                  "\"latency_ms\":0.000,") != NULL);
    cJSON *o = cJSON_Parse(lines[N + 2]);
    FM_CHECK(o && num(o, "latency_ms") > 1e14); /* +Inf: a huge finite number, still JSON */
    cJSON_Delete(o);
    free(lines);
    free(text);
    unlink(path);
}

static void test_escaping(void) {
    static const struct {
        const char *in, *want; /* want: the string a JSON parser reads back */
    } cases[] = {
        {"/a\"b\\c", "/a\"b\\c"},
        {"/ctl\x01\x1f\t\n\r\x7f", "/ctl\x01\x1f\t\n\r\x7f"},
        {"/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80",
         "/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80"},
        /* invalid UTF-8: a stray byte, a truncated sequence, an overlong '/', a surrogate */
        {"/\xff/x", "/\xef\xbf\xbd/x"},
        {"/\xc3", "/\xef\xbf\xbd"},
        {"/\xc0\xaf", "/\xef\xbf\xbd\xef\xbf\xbd"},
        {"/\xed\xa0\x80", "/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"", ""},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    fm_access_entry_t entries[N];
    for (int i = 0; i < N; i++)
        entries[i] = (fm_access_entry_t){cases[i].in, "GET", cases[i].in, cases[i].in, 1,
                                         200,         0,     0,           0,           cases[i].in};
    cJSON *all = log_roundtrip(entries, N, NULL);
    for (int i = 0; i < N; i++) {
        cJSON *o = cJSON_GetArrayItem(all, i);
        static const char *keys[] = {"request_id", "path", "model", "remote"};
        for (int k = 0; k < 4; k++)
            FM_CHECK_MSG(str(o, keys[k]) && !strcmp(str(o, keys[k]), cases[i].want), "case %d %s",
                         i, keys[k]);
    }
    cJSON_Delete(all);

    /* Fields longer than 8192 bytes are cut there, never inside a UTF-8 character. */
    char *longpath = malloc(20001);
    memset(longpath, 'a', 20000);
    longpath[20000] = '\0';
    char *odd = malloc(10001);
    memset(odd, 'b', 8191);
    memcpy(odd + 8191, "\xc3\xa9", 2); /* é straddles byte 8192 */
    memset(odd + 8193, 'c', 10000 - 8193);
    odd[10000] = '\0';
    char *quotes = malloc(9001);
    memset(quotes, '\x01', 9000); /* the longest escape, 6 bytes per byte */
    quotes[9000] = '\0';
    fm_access_entry_t big = {longpath, "GET", odd, quotes, 1, 200, 0, 0, 0, longpath};
    all = log_roundtrip(&big, 1, NULL);
    cJSON *o = cJSON_GetArrayItem(all, 0);
    FM_CHECK_INT(str(o, "request_id") ? strlen(str(o, "request_id")) : 0, 8192);
    FM_CHECK_INT(str(o, "path") ? strlen(str(o, "path")) : 0, 8191);
    FM_CHECK_INT(str(o, "model") ? strlen(str(o, "model")) : 0, 8192);
    cJSON_Delete(all);
    free(longpath);
    free(odd);
    free(quotes);
}

/* ---- flushing ---- */

static void test_flush(void) {
    char path[128];
    temp_path(path, sizeof path, "flush.log");
    unlink(path);
    fm_access_log_t *log = open_log(path);
    fm_access_entry_t e = {"f1", "GET", "/", NULL, 0, 200, 0, 0, 0, NULL};
    fm_access_log_write(log, &e);
    /* Without closing, the entry reaches the file within 200 ms (plus scheduling slack). */
    size_t len = 0;
    char *text = NULL;
    for (int i = 0; i < 100; i++) {
        free(text);
        text = read_file(path, &len);
        if (len) break;
        usleep(10000);
    }
    FM_CHECK(text && strstr(text, "\"request_id\":\"f1\"") != NULL);
    free(text);
    /* Closing right after writing loses nothing. */
    for (int i = 0; i < 1000; i++)
        fm_access_log_write(log, &e);
    fm_access_log_close(log);
    char **lines;
    text = read_file(path, NULL);
    FM_CHECK_INT(split_lines(text, &lines), 1001);
    free(lines);
    free(text);

    /* A second open appends. */
    log = open_log(path);
    fm_access_log_write(log, &e);
    fm_access_log_close(log);
    text = read_file(path, NULL);
    FM_CHECK_INT(split_lines(text, &lines), 1002);
    free(lines);
    free(text);
    unlink(path);

    /* NULL is safe everywhere it is allowed. */
    fm_access_log_write(NULL, &e);
    FM_CHECK_INT(fm_access_log_dropped(NULL), 0);
    fm_access_log_close(NULL);
}

static void test_stderr(void) {
    char path[128];
    temp_path(path, sizeof path, "stderr.log");
    int file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(file, STDERR_FILENO);
    close(file);
    fm_access_log_t *log = open_log("-");
    fm_access_entry_t e = {"e1", "GET", "/metrics", NULL, 0, 200, 0, 0, 0, NULL};
    fm_access_log_write(log, &e);
    e.request_id = "e2";
    fm_access_log_write(log, &e);
    fm_access_log_close(log);
    int still_open = fcntl(STDERR_FILENO, F_GETFD) != -1; /* close left standard error alone */
    dup2(saved, STDERR_FILENO);
    close(saved);
    FM_CHECK(still_open);
    char *text = read_file(path, NULL), **lines;
    FM_CHECK(strstr(text, "\"request_id\":\"e1\"") && strstr(text, "\"request_id\":\"e2\""));
    FM_CHECK_INT(split_lines(text, &lines), 2);
    free(lines);
    free(text);
    unlink(path);
}

static void test_open_errors(void) {
    fm_access_log_t *log = (fm_access_log_t *)&log; /* must be reset to NULL on failure */
    fm_error_t err;
    FM_CHECK_INT(fm_access_log_open("/nonexistent-fm-dir/access.log", &log, &err), FM_ENOTFOUND);
    FM_CHECK(log == NULL);
    FM_CHECK_MSG(strstr(err.msg, "/nonexistent-fm-dir/access.log") &&
                     strstr(err.msg, "No such file or directory"),
                 "%s", err.msg);
    make_tmpdir();
    FM_CHECK(fm_access_log_open(tmpdir, &log, &err) < 0); /* a directory */
    FM_CHECK_MSG(strstr(err.msg, tmpdir) && strstr(err.msg, "Is a directory"), "%s", err.msg);
    FM_CHECK_INT(fm_access_log_open("", &log, &err), FM_EINVAL);
    FM_CHECK_INT(fm_access_log_open(NULL, &log, &err), FM_EINVAL);
    if (geteuid() != 0) { /* root may write anywhere */
        char path[128];
        temp_path(path, sizeof path, "readonly.log");
        close(open(path, O_WRONLY | O_CREAT, 0400));
        FM_CHECK_INT(fm_access_log_open(path, &log, &err), FM_EDENIED);
        unlink(path);
    }
}

/* ---- the drop path, through a pipe nobody reads ---- */

typedef struct {
    int fd;
    char *text;
    size_t len;
} reader_t;

static void *reader_main(void *arg) {
    reader_t *r = arg;
    r->text = read_all_fd(r->fd, &r->len);
    return NULL;
}

static void test_drops(void) {
    int fds[2];
    FM_CHECK(pipe(fds) == 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[1]);
    fm_access_log_t *log = open_log(path);
    close(fds[1]); /* the log has its own descriptor; EOF comes when it closes */

    /* ~250-byte entries: 60,000 of them are 15 MB, far beyond 4 MiB plus a 64 KiB pipe. */
    enum { N = 60000 };
    char request_id[32];
    char padding[160];
    memset(padding, 'p', sizeof padding - 1);
    padding[sizeof padding - 1] = '\0';
    for (int i = 0; i < N; i++) {
        snprintf(request_id, sizeof request_id, "d-%d", i);
        fm_access_entry_t e = {request_id, "POST", padding, "m", 1, 200, 0.001, 1, 1, "127.0.0.1"};
        fm_access_log_write(log, &e);
    }
    uint64_t dropped = fm_access_log_dropped(log);
    FM_CHECK_MSG(dropped > 0, "nothing dropped");

    reader_t reader = {fds[0], NULL, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, reader_main, &reader);
    fm_access_log_close(log);
    pthread_join(thread, NULL);
    close(fds[0]);

    char **lines;
    size_t n = split_lines(reader.text, &lines);
    uint64_t entries = 0, reported = 0, notices = 0, bad = 0;
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_Parse(lines[i]);
        int k = -1;
        if (o && str(o, "event")) {
            FM_CHECK_STR(str(o, "event"), "access_log_dropped");
            FM_CHECK(parse_time(str(o, "time")) > 0);
            FM_CHECK_INT(cJSON_GetArraySize(o), 3);
            reported += (uint64_t)num(o, "count");
            notices++;
        } else if (o && sscanf(str(o, "request_id") ? str(o, "request_id") : "", "d-%d", &k) == 1 &&
                   k >= 0 && k < N && !seen[k]) {
            seen[k] = 1;
            entries++;
        } else {
            bad++;
        }
        cJSON_Delete(o);
    }
    printf("  %d written, %llu dropped in %llu notice(s)\n", N, (unsigned long long)dropped,
           (unsigned long long)notices);
    FM_CHECK_INT(bad, 0);
    FM_CHECK(notices >= 1);
    FM_CHECK_INT(reported, dropped);
    FM_CHECK_INT(entries + dropped, N);
    free(lines);
    free(reader.text);
}

/* A reader that goes away: write() fails with EPIPE, the entries are counted as dropped, and the
 * process is not killed by SIGPIPE. A FIFO with no reader is an error at open, not a hang. */
static void test_broken_pipe(void) {
    int fds[2];
    FM_CHECK(pipe(fds) == 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[1]);
    fm_access_log_t *log = open_log(path);
    close(fds[1]);
    close(fds[0]);
    fm_access_entry_t e = {"gone", "GET", "/", NULL, 0, 200, 0, 0, 0, NULL};
    for (int i = 0; i < 10; i++)
        fm_access_log_write(log, &e);
    for (int i = 0; i < 100 && fm_access_log_dropped(log) < 10; i++)
        usleep(10000); /* the writer's first flush fails within 200 ms */
    FM_CHECK_INT(fm_access_log_dropped(log), 10);
    for (int i = 0; i < 5; i++)
        fm_access_log_write(log, &e);
    fm_access_log_close(log); /* gives up on the dead descriptor instead of retrying for ever */

    char fifo[128];
    temp_path(fifo, sizeof fifo, "fifo");
    unlink(fifo);
    FM_CHECK(mkfifo(fifo, 0600) == 0);
    fm_error_t err;
    log = NULL;
    FM_CHECK_INT(fm_access_log_open(fifo, &log, &err), FM_EIO);
    FM_CHECK_MSG(strstr(err.msg, fifo) && strstr(err.msg, "nobody reads"), "%s", err.msg);
    FM_CHECK(log == NULL);
    unlink(fifo);
}

/* The first entry after a drop can still get in once the writer has made room. */
static void test_space_returns(void) {
    int fds[2];
    FM_CHECK(pipe(fds) == 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[1]);
    fm_access_log_t *log = open_log(path);
    close(fds[1]);
    char padding[1000];
    memset(padding, 'q', sizeof padding - 1);
    padding[sizeof padding - 1] = '\0';
    fm_access_entry_t e = {"fill", "GET", padding, NULL, 0, 200, 0, 0, 0, NULL};
    while (fm_access_log_dropped(log) == 0)
        fm_access_log_write(log, &e);
    /* Drain the pipe while the writer catches up, then write one more. */
    reader_t reader = {fds[0], NULL, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, reader_main, &reader);
    usleep(500000);
    uint64_t dropped = fm_access_log_dropped(log);
    e.request_id = "after";
    fm_access_log_write(log, &e);
    FM_CHECK_INT(fm_access_log_dropped(log), dropped);
    fm_access_log_close(log);
    pthread_join(thread, NULL);
    close(fds[0]);
    /* The notice precedes the entry queued after space returned. */
    char *notice = strstr(reader.text, "\"event\":\"access_log_dropped\"");
    char *after = strstr(reader.text, "\"request_id\":\"after\"");
    FM_CHECK(notice && after && notice < after);
    free(reader.text);
}

/* Last: removes the directory the tests wrote in (each test removed its own files). */
static void test_cleanup(void) {
    if (tmpdir[0]) FM_CHECK(rmdir(tmpdir) == 0);
}

FM_TEST_MAIN(FM_TEST_CASE(test_utc_format), FM_TEST_CASE(test_threads), FM_TEST_CASE(test_layout),
             FM_TEST_CASE(test_optional_fields), FM_TEST_CASE(test_numbers),
             FM_TEST_CASE(test_escaping), FM_TEST_CASE(test_flush), FM_TEST_CASE(test_stderr),
             FM_TEST_CASE(test_open_errors), FM_TEST_CASE(test_drops),
             FM_TEST_CASE(test_space_returns), FM_TEST_CASE(test_broken_pipe),
             FM_TEST_CASE(test_cleanup))
