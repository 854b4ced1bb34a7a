/*
 * Tests of the audit log (security/audit.h): the chain built by concurrent appenders verifies;
 * each line of audit.log and each slot of audit.head agree with an independent computation (the
 * canonical text written out here with snprintf, the slot layout packed here, libsodium called
 * directly); every kind of tampering done on the files directly (lines edited, deleted, inserted,
 * swapped, renumbered; head slots edited; the key replaced) is detected and named with the right
 * seq; a torn final line is cut away on open and ignored by verify; a torn or garbage head slot
 * falls back to the other; entries beyond a stale head are accepted and the head advanced, while
 * a forged line there is refused; durable callbacks run only once the entry is in the file; a
 * failed write leaves nothing behind; the log survives SIGKILL at random moments with every
 * acknowledged entry present; ASYNC mode; two processes appending at once; the key file's checks;
 * filters of query and export; ISO 8601 parsing; the cost of one append; and the group commit's
 * throughput with 1, 8 and 64 appenders.
 */
#include "fm_test.h"

#include "core/digest.h"
#include "core/rng.h"
#include "security/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir) {
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new empty directory; the home is <dir>/home (created by fm_audit_open). */
static void make_dirs(char *dir, size_t dir_size, char *home, size_t home_size) {
    snprintf(dir, dir_size, "/tmp/fm_audit_test.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(home, home_size, "%s/home", dir);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void file_path(char *out, size_t size, const char *home, const char *name) {
    snprintf(out, size, "%s/%s", home, name);
}

/* The whole of a home's file (NUL-terminated; *n its size), or NULL when it cannot be read. */
static char *slurp(const char *home, const char *name, size_t *n) {
    char path[4200];
    file_path(path, sizeof path, home, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    rewind(fp);
    char *data = malloc((size_t)size + 1);
    size_t got = fread(data, 1, (size_t)size, fp);
    fclose(fp);
    data[got] = '\0';
    if (n) *n = got;
    return data;
}

/* Replaces a home's file with n bytes (the file keeps its inode and mode). */
static void spill(const char *home, const char *name, const char *data, size_t n) {
    char path[4200];
    file_path(path, sizeof path, home, name);
    int fd = open(path, O_WRONLY | O_TRUNC);
    FM_CHECK_MSG(fd >= 0, "cannot open %s", path);
    if (fd < 0) return;
    FM_CHECK(write(fd, data, n) == (ssize_t)n);
    close(fd);
}

static long file_size(const char *home, const char *name) {
    char path[4200];
    file_path(path, sizeof path, home, name);
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void truncate_log(const char *home, long size) {
    char path[4200];
    file_path(path, sizeof path, home, "audit.log");
    FM_CHECK(truncate(path, size) == 0);
}

static void append_raw(const char *home, const char *text) {
    char path[4200];
    file_path(path, sizeof path, home, "audit.log");
    int fd = open(path, O_WRONLY | O_APPEND);
    FM_CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    if (fd >= 0) close(fd);
}

/* Lines of audit.log that contain needle. */
static long count_lines(const char *home, const char *needle) {
    char *data = slurp(home, "audit.log", NULL);
    if (!data) return -1;
    long n = 0;
    for (char *line = data; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        *nl = '\0';
        n += strstr(line, needle) != NULL;
        line = nl + 1;
    }
    free(data);
    return n;
}

/* ---- the log as lines, for tampering ---- */

typedef struct lines {
    char **v; /* each without its newline */
    size_t n;
} lines_t;

static lines_t read_lines(const char *home) {
    lines_t l = {NULL, 0};
    char *data = slurp(home, "audit.log", NULL);
    if (!data) return l;
    for (char *line = data; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        l.v = realloc(l.v, (l.n + 1) * sizeof *l.v);
        l.v[l.n++] = strndup(line, (size_t)(nl - line));
        line = nl + 1;
    }
    free(data);
    return l;
}

static void write_lines(const char *home, const lines_t *l) {
    size_t total = 0;
    for (size_t i = 0; i < l->n; i++)
        total += strlen(l->v[i]) + 1;
    char *data = malloc(total + 1), *d = data;
    for (size_t i = 0; i < l->n; i++) {
        size_t k = strlen(l->v[i]);
        memcpy(d, l->v[i], k);
        d[k] = '\n';
        d += k + 1;
    }
    spill(home, "audit.log", data, total);
    free(data);
}

static void free_lines(lines_t *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Replaces the first from in line i by to. */
static void line_replace(lines_t *l, size_t i, const char *from, const char *to) {
    char *at = strstr(l->v[i], from);
    FM_CHECK_MSG(at != NULL, "line %zu lacks '%s'", i + 1, from);
    if (!at) return;
    size_t head = (size_t)(at - l->v[i]), fl = strlen(from), tl = strlen(to);
    size_t rest = strlen(at + fl);
    char *s = malloc(head + tl + rest + 1);
    memcpy(s, l->v[i], head);
    memcpy(s + head, to, tl);
    memcpy(s + head + tl, at + fl, rest + 1);
    free(l->v[i]);
    l->v[i] = s;
}

static void line_delete(lines_t *l, size_t i) {
    free(l->v[i]);
    memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof *l->v);
    l->n--;
}

static void line_insert(lines_t *l, size_t i, char *owned) {
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof *l->v);
    l->v[i] = owned;
    l->n++;
}

static void line_swap(lines_t *l, size_t i, size_t j) {
    char *t = l->v[i];
    l->v[i] = l->v[j];
    l->v[j] = t;
}

/* The value of a string field in a line (a copy of the first 64 bytes after its quote). */
static void field_hex(const char *line, const char *name, char out[65]) {
    char key[32];
    snprintf(key, sizeof key, "\"%s\":\"", name);
    const char *at = strstr(line, key);
    FM_CHECK(at != NULL);
    snprintf(out, 65, "%s", at ? at + strlen(key) : "");
}

static void set_hex_field(lines_t *l, size_t i, const char *name, const char *hex) {
    char old[65], from[100], to[100];
    field_hex(l->v[i], name, old);
    snprintf(from, sizeof from, "\"%s\":\"%s\"", name, old);
    snprintf(to, sizeof to, "\"%s\":\"%s\"", name, hex);
    line_replace(l, i, from, to);
}

/* Rewrites the seq at the start of line i. */
static void set_seq(lines_t *l, size_t i, long seq) {
    char from[40], to[40];
    long old = strtol(l->v[i] + 7, NULL, 10);
    snprintf(from, sizeof from, "{\"seq\":%ld,", old);
    snprintf(to, sizeof to, "{\"seq\":%ld,", seq);
    line_replace(l, i, from, to);
}

/* Lines from index i on get seq index + 1 (after an insertion or a deletion). */
static void renumber_from(lines_t *l, size_t i) {
    for (; i < l->n; i++)
        set_seq(l, i, (long)i + 1);
}

/* ---- entries and logs ---- */

static fm_audit_entry_t sample_entry(char *request_id, size_t size, const char *model, long i) {
    snprintf(request_id, size, "req-%ld", i);
    fm_audit_entry_t e = {.key_id = "k_0123456789ab",
                          .role = "consumer",
                          .action = "v2.infer",
                          .model = model,
                          .version = i % 3 + 1,
                          .request_id = request_id,
                          .status = 200,
                          .input_digest = NULL,
                          .output = "{\"score\":0.25}",
                          .detail = NULL};
    return e;
}

/* A log of n entries (one thread, queued without waiting, drained by close). */
static void make_log(const char *home, long n, const char *model) {
    fm_error_t err;
    fm_audit_t *a = NULL;
    int rc = fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err);
    FM_CHECK_MSG(rc == 0, "%s", fm_error_message(&err));
    if (rc) return;
    char rid[32];
    for (long i = 1; i <= n; i++) {
        fm_audit_entry_t e = sample_entry(rid, sizeof rid, model, i);
        FM_CHECK_INT(fm_audit_append(a, &e, NULL, NULL), 0);
    }
    fm_audit_close(a);
}

/* Verify must fail with FM_EDATA and a message holding every given fragment. */
static void expect_damage(const char *home, const char *what, const char *frag1,
                          const char *frag2) {
    fm_error_t err;
    fm_error_clear(&err);
    int64_t n = -1;
    int rc = fm_audit_verify(home, &n, &err);
    FM_CHECK_MSG(rc == FM_EDATA, "%s: rc %d (%s)", what, rc, fm_error_message(&err));
    FM_CHECK_MSG(strstr(err.msg, frag1) != NULL, "%s: '%s' lacks '%s'", what, err.msg, frag1);
    if (frag2)
        FM_CHECK_MSG(strstr(err.msg, frag2) != NULL, "%s: '%s' lacks '%s'", what, err.msg, frag2);
    FM_CHECK_MSG(strchr(err.msg, '\n') == NULL, "%s: message has several lines", what);
    const char *shown = strstr(err.msg, "audit.log: ");
    printf("  %-38s %s\n", what, shown ? shown + 11 : err.msg);
}

/* Verify must pass with n entries and the head at head_seq. */
static void expect_intact(const char *home, const char *what, int64_t n, int64_t head_seq) {
    fm_error_t err;
    fm_error_clear(&err);
    fm_audit_summary_t s;
    int rc = fm_audit_verify_summary(home, &s, &err);
    FM_CHECK_MSG(rc == 0, "%s: %s", what, fm_error_message(&err));
    FM_CHECK_MSG(s.entries == n, "%s: %lld entries, want %lld", what, (long long)s.entries,
                 (long long)n);
    FM_CHECK_MSG(s.head_seq == head_seq, "%s: head seq %lld, want %lld", what,
                 (long long)s.head_seq, (long long)head_seq);
}

/* fm_audit_open must refuse the log with FM_EDATA. */
static void expect_open_refused(const char *home, const char *what) {
    fm_error_t err;
    fm_audit_t *a = NULL;
    int rc = fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err);
    FM_CHECK_MSG(rc == FM_EDATA && a == NULL, "%s: open rc %d", what, rc);
    if (!rc)
        fm_audit_close(a);
    else
        FM_CHECK_MSG(strstr(err.msg, "tampered") != NULL, "%s: '%s'", what, err.msg);
}

/* fm_audit_open must accept the log (the damage is not where open looks). */
static void expect_open_accepted(const char *home, const char *what) {
    fm_error_t err;
    fm_audit_t *a = NULL;
    int rc = fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err);
    FM_CHECK_MSG(rc == 0, "%s: open: %s", what, fm_error_message(&err));
    fm_audit_close(a);
}

static void read_key(const char *home, unsigned char key[32]) {
    char path[4200];
    file_path(path, sizeof path, home, "audit.key");
    FILE *fp = fopen(path, "rb");
    FM_CHECK(fp != NULL);
    if (!fp) return;
    FM_CHECK_INT(fread(key, 1, 32, fp), 32);
    fclose(fp);
}

static void hex_of(const unsigned char *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void unhex(const char *hex, unsigned char *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

/* A head slot as documented in audit_internal.h, packed and MACed here. */
static void make_slot(const unsigned char key[32], int64_t seq, int64_t length,
                      const unsigned char hash[32], unsigned char out[128]) {
    memset(out, 0, 128);
    memcpy(out, "FMAUDHD1", 8);
    unsigned char msg[4 + 8 + 8 + 32];
    memcpy(msg, "head", 4);
    for (int i = 0; i < 8; i++) {
        out[8 + i] = msg[4 + i] = (unsigned char)((uint64_t)seq >> (56 - 8 * i));
        out[16 + i] = msg[12 + i] = (unsigned char)((uint64_t)length >> (56 - 8 * i));
    }
    memcpy(out + 24, hash, 32);
    memcpy(msg + 20, hash, 32);
    crypto_generichash(out + 56, 32, msg, sizeof msg, key, 32);
}

/* The slot a home's head should hold for its log as it is now (last line's seq and hash). */
static void expected_slot(const char *home, unsigned char out[128]) {
    unsigned char key[32], hash[32] = {0};
    read_key(home, key);
    lines_t l = read_lines(home);
    char hex[65];
    if (l.n) {
        field_hex(l.v[l.n - 1], "hash", hex);
        unhex(hex, hash, 32);
    }
    make_slot(key, (int64_t)l.n, file_size(home, "audit.log"), hash, out);
    free_lines(&l);
}

/* ---- the chain ---- */

typedef struct chain_worker {
    fm_audit_t *audit;
    int id, per_thread;
    int callbacks_ok, callbacks_failed;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    pthread_t thread;
} chain_worker_t;

static void chain_done(void *ctx, int rc) {
    chain_worker_t *w = ctx;
    pthread_mutex_lock(&w->lock);
    if (rc)
        w->callbacks_failed++;
    else
        w->callbacks_ok++;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Half the entries wait for their commit (as a server thread does), half are fired and
 * forgotten, so groups of every size occur. */
static void *chain_run(void *arg) {
    chain_worker_t *w = arg;
    char rid[48];
    for (int i = 0; i < w->per_thread; i++) {
        snprintf(rid, sizeof rid, "t%d-%d", w->id, i);
        fm_audit_entry_t e = {.key_id = i % 7 ? "k_aaaaaaaaaaaa" : "",
                              .role = "modeler",
                              .action = i % 2 ? "model.upload" : "v2.infer",
                              .model = i % 5 ? "credit" : NULL,
                              .version = i,
                              .request_id = rid,
                              .status = i % 11 ? 200 : 403,
                              .input_digest = "00ff",
                              .output = "{\"label\":\"good\"}",
                              .detail = i % 3 ? "quote \" backslash \\ tab \t newline \n" : NULL};
        int wait = i % 2 == 0;
        pthread_mutex_lock(&w->lock);
        w->done = 0;
        pthread_mutex_unlock(&w->lock);
        if (fm_audit_append(w->audit, &e, chain_done, w) != 0) {
            pthread_mutex_lock(&w->lock);
            w->callbacks_failed++;
            pthread_mutex_unlock(&w->lock);
            continue;
        }
        if (!wait) continue;
        pthread_mutex_lock(&w->lock);
        while (!w->done)
            pthread_cond_wait(&w->cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The number of different request_id values in the log. */
static long distinct_request_ids(const char *home) {
    lines_t l = read_lines(home);
    char **ids = calloc(l.n + 1, sizeof *ids);
    for (size_t i = 0; i < l.n; i++) {
        const char *at = strstr(l.v[i], "\"request_id\":\"");
        ids[i] = at ? strndup(at + 14, strcspn(at + 14, "\"")) : strdup("");
    }
    qsort(ids, l.n, sizeof *ids, compare_strings);
    long distinct = 0;
    for (size_t i = 0; i < l.n; i++)
        distinct += i == 0 || strcmp(ids[i - 1], ids[i]) != 0;
    for (size_t i = 0; i < l.n; i++)
        free(ids[i]);
    free(ids);
    free_lines(&l);
    return distinct;
}

static void test_chain_10000_from_8_threads(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    fm_error_t err;
    fm_audit_t *a = NULL;
    int rc = fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err);
    FM_CHECK_MSG(rc == 0, "%s", fm_error_message(&err));
    if (rc) return;
    enum { THREADS = 8, PER_THREAD = 1250 };
    chain_worker_t w[THREADS];
    memset(w, 0, sizeof w);
    double t0 = now_seconds();
    for (int t = 0; t < THREADS; t++) {
        w[t].audit = a;
        w[t].id = t;
        w[t].per_thread = PER_THREAD;
        pthread_mutex_init(&w[t].lock, NULL);
        pthread_cond_init(&w[t].cond, NULL);
        pthread_create(&w[t].thread, NULL, chain_run, &w[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(w[t].thread, NULL);
    fm_audit_close(a); /* drains the fire-and-forget entries; their callbacks run */
    double took = now_seconds() - t0;
    int ok = 0, failed = 0;
    for (int t = 0; t < THREADS; t++) {
        ok += w[t].callbacks_ok;
        failed += w[t].callbacks_failed;
        pthread_mutex_destroy(&w[t].lock);
        pthread_cond_destroy(&w[t].cond);
    }
    FM_CHECK_INT(ok, THREADS * PER_THREAD);
    FM_CHECK_INT(failed, 0);
    fm_audit_summary_t summary;
    rc = fm_audit_verify_summary(home, &summary, &err);
    FM_CHECK_MSG(rc == 0, "%s", fm_error_message(&err));
    FM_CHECK_INT(summary.entries, THREADS * PER_THREAD);
    FM_CHECK_INT(summary.head_seq, THREADS * PER_THREAD);
    FM_CHECK_INT(distinct_request_ids(home), THREADS * PER_THREAD);
    FM_CHECK_INT(count_lines(home, "\"key_id\":\"cli\""), THREADS * ((PER_THREAD + 6) / 7));
    printf("  10000 entries from 8 threads in %.2f s, verified\n", took);
    /* Reopening continues the same chain. */
    rc = fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err);
    FM_CHECK_MSG(rc == 0, "%s", fm_error_message(&err));
    if (!rc) {
        fm_audit_entry_t e = {.action = "keys.create"};
        FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), 0);
        fm_audit_close(a);
    }
    int64_t n = 0;
    FM_CHECK_INT(fm_audit_verify(home, &n, &err), 0);
    FM_CHECK_INT(n, THREADS * PER_THREAD + 1);
    remove_tree(dir);
}

/* The stored hash and the head's MAC, recomputed from the documented layout. */
/* Each line and both head slots, recomputed from the documented layout. */
static void test_hash_matches_independent_computation(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), 0);
    if (!a) return;
    fm_audit_entry_t first = {.key_id = "",
                              .role = "admin",
                              .action = "keys.create",
                              .status = 0,
                              .detail = "name \"ops\"\n\x01 caf\xc3\xa9 \\ \x7f"};
    fm_audit_entry_t second = {.key_id = "k_1",
                               .role = "consumer",
                               .action = "v2.infer",
                               .model = "credit",
                               .version = -7,
                               .request_id = "r-9",
                               .status = 200,
                               .input_digest = "abcd",
                               .output = "{\"score\":0.5}"};
    FM_CHECK_INT(fm_audit_append_sync(a, &first, &err), 0);
    FM_CHECK_INT(fm_audit_append_sync(a, &second, &err), 0);
    fm_audit_close(a);

    unsigned char key[32];
    read_key(home, key);
    lines_t l = read_lines(home);
    FM_CHECK_INT(l.n, 2);
    unsigned char prev[32] = {0}, hash[32];
    char times[2][40] = {"", ""};
    for (size_t row = 0; row < l.n && row < 2; row++) {
        const char *t = strstr(l.v[row], "\"time\":\"");
        snprintf(times[row], 28, "%s", t ? t + 8 : "");
        char canonical[512];
        if (row == 0)
            snprintf(canonical, sizeof canonical,
                     "{\"seq\":1,\"time\":\"%s\",\"key_id\":\"cli\",\"role\":\"admin\","
                     "\"action\":\"keys.create\",\"model\":null,\"version\":0,"
                     "\"request_id\":null,\"status\":0,\"input_digest\":null,\"output\":null,"
                     "\"detail\":\"name \\\"ops\\\"\\n\\u0001 caf\xc3\xa9 \\\\ \x7f\"}",
                     times[0]);
        else
            snprintf(canonical, sizeof canonical,
                     "{\"seq\":2,\"time\":\"%s\",\"key_id\":\"k_1\",\"role\":\"consumer\","
                     "\"action\":\"v2.infer\",\"model\":\"credit\",\"version\":-7,"
                     "\"request_id\":\"r-9\",\"status\":200,\"input_digest\":\"abcd\","
                     "\"output\":\"{\\\"score\\\":0.5}\",\"detail\":null}",
                     times[1]);
        crypto_generichash_state st;
        crypto_generichash_init(&st, key, 32, 32);
        crypto_generichash_update(&st, prev, 32);
        crypto_generichash_update(&st, (const unsigned char *)canonical, strlen(canonical));
        crypto_generichash_final(&st, hash, 32);
        /* The line: the canonical text with prev and hash before its closing brace. */
        char prev_hex[65], hash_hex[65], line[800];
        hex_of(prev, 32, prev_hex);
        hex_of(hash, 32, hash_hex);
        snprintf(line, sizeof line, "%.*s,\"prev\":\"%s\",\"hash\":\"%s\"}",
                 (int)strlen(canonical) - 1, canonical, prev_hex, hash_hex);
        FM_CHECK_STR(l.v[row], line);
        memcpy(prev, hash, 32);
    }
    free_lines(&l);
    /* Time layout: YYYY-MM-DDTHH:MM:SS.ffffffZ. */
    FM_CHECK_INT(strlen(times[0]), 27);
    FM_CHECK(times[0][10] == 'T' && times[0][19] == '.' && times[0][26] == 'Z');
    /* The head after close: both slots hold seq 2, the log's length and the last hash. */
    unsigned char slot[128];
    unsigned char length_hash[32];
    memcpy(length_hash, hash, 32);
    make_slot(key, 2, file_size(home, "audit.log"), length_hash, slot);
    size_t n = 0;
    char *head = slurp(home, "audit.head", &n);
    FM_CHECK_INT(n, 256);
    FM_CHECK(head && memcmp(head, slot, 128) == 0);
    FM_CHECK(head && memcmp(head + 128, slot, 128) == 0);
    free(head);
    /* Files private to their owner. */
    char path[200];
    struct stat st;
    file_path(path, sizeof path, home, "audit.log");
    FM_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    file_path(path, sizeof path, home, "audit.head");
    FM_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    remove_tree(dir);
}

/* ---- tampering ---- */

/* Copies line i (0-based) with a new seq, prev and hash (NULL: kept). */
static char *forge(const lines_t *l, size_t i, long seq, const char *prev, const char *hash) {
    lines_t one = {NULL, 0};
    line_insert(&one, 0, strdup(l->v[i]));
    set_seq(&one, 0, seq);
    if (prev) set_hex_field(&one, 0, "prev", prev);
    if (hash) set_hex_field(&one, 0, "hash", hash);
    char *s = one.v[0];
    free(one.v);
    return s;
}

static void hash_of_line(const lines_t *l, size_t i, char out[65]) {
    field_hex(l->v[i], "hash", out);
}

static void t_edit_status(lines_t *l) {
    line_replace(l, 9, "\"status\":200", "\"status\":500");
}
static void t_edit_detail(lines_t *l) {
    line_replace(l, 9, "\"detail\":null", "\"detail\":\"nothing happened\"");
}
static void t_edit_time_last(lines_t *l) {
    char old[65], from[100];
    const char *t = strstr(l->v[19], "\"time\":\"");
    snprintf(old, 28, "%s", t ? t + 8 : "");
    snprintf(from, sizeof from, "\"time\":\"%s\"", old);
    line_replace(l, 19, from, "\"time\":\"2020-01-01T00:00:00.000000Z\"");
}
static void t_edit_hash(lines_t *l) {
    char h[65];
    hash_of_line(l, 2, h);
    set_hex_field(l, 9, "hash", h);
}
static void t_edit_prev(lines_t *l) {
    char h[65];
    hash_of_line(l, 4, h);
    set_hex_field(l, 9, "prev", h);
}
static void t_bad_escape(lines_t *l) {
    line_replace(l, 9, "\"key_id\":\"k_", "\"key_id\":\"\\u006b_");
}
static void t_broken_json(lines_t *l) {
    line_replace(l, 9, "\"role\":\"consumer\"", "\"role\":\"consumer");
}
static void t_delete_10(lines_t *l) {
    line_delete(l, 9);
}
static void t_delete_10_12(lines_t *l) {
    for (int k = 0; k < 3; k++)
        line_delete(l, 9);
}
static void t_delete_10_renumber(lines_t *l) {
    line_delete(l, 9);
    renumber_from(l, 9);
}
static void t_delete_last_3(lines_t *l) {
    while (l->n > 17)
        line_delete(l, l->n - 1);
}
static void t_delete_last(lines_t *l) {
    line_delete(l, 19);
}
static void t_delete_all(lines_t *l) {
    while (l->n)
        line_delete(l, l->n - 1);
}
static void t_insert_middle_renumbered(lines_t *l) {
    char h9[65];
    hash_of_line(l, 8, h9);
    char *s = forge(l, 8, 10, h9, h9);
    line_insert(l, 9, s);
    line_replace(l, 9, "\"action\":\"v2.infer\"", "\"action\":\"model.delete\"");
    renumber_from(l, 10);
}
static void t_insert_copy_renumbered(lines_t *l) {
    line_insert(l, 9, forge(l, 4, 10, NULL, NULL));
    renumber_from(l, 10);
}
static void t_insert_verbatim_copy(lines_t *l) {
    line_insert(l, 9, strdup(l->v[4]));
}
static void t_insert_after_last(lines_t *l) {
    char h20[65];
    hash_of_line(l, 19, h20);
    line_insert(l, 20, forge(l, 19, 21, h20, NULL));
}
static void t_insert_seq_0(lines_t *l) {
    char zero[65];
    memset(zero, '0', 64);
    zero[64] = '\0';
    line_insert(l, 0, forge(l, 0, 0, NULL, zero));
}
static void t_swap_5_12_renumbered(lines_t *l) {
    line_swap(l, 4, 11);
    set_seq(l, 4, 5);
    set_seq(l, 11, 12);
}
static void t_swap_7_8(lines_t *l) {
    line_swap(l, 6, 7);
}
static void t_move_3_after_10(lines_t *l) {
    char *s = l->v[2];
    memmove(l->v + 2, l->v + 3, 7 * sizeof *l->v);
    l->v[9] = s;
}

/* Both head slots: seq 19 instead of 20, MACs left alone. */
static void h_edit_seq(const char *home) {
    size_t n = 0;
    char *head = slurp(home, "audit.head", &n);
    for (int s = 0; s < 2 && n == 256; s++)
        head[s * 128 + 15] = 19;
    spill(home, "audit.head", head, n);
    free(head);
}
/* Both head slots: the hash of seq 19. */
static void h_edit_hash(const char *home) {
    lines_t l = read_lines(home);
    char hex[65];
    unsigned char hash[32];
    hash_of_line(&l, 18, hex);
    unhex(hex, hash, 32);
    size_t n = 0;
    char *head = slurp(home, "audit.head", &n);
    for (int s = 0; s < 2 && n == 256; s++)
        memcpy(head + s * 128 + 24, hash, 32);
    spill(home, "audit.head", head, n);
    free(head);
    free_lines(&l);
}
static void h_delete(const char *home) {
    char path[200];
    file_path(path, sizeof path, home, "audit.head");
    FM_CHECK(unlink(path) == 0);
}
static void h_replace_key(const char *home) {
    char path[200];
    file_path(path, sizeof path, home, "audit.key");
    unsigned char key[32];
    randombytes_buf(key, sizeof key);
    int fd = open(path, O_WRONLY | O_TRUNC);
    FM_CHECK(fd >= 0 && write(fd, key, sizeof key) == (ssize_t)sizeof key);
    if (fd >= 0) close(fd);
}

typedef struct tamper_case {
    const char *name;
    void (*on_lines)(lines_t *l);      /* edits the log's lines, or NULL */
    void (*on_home)(const char *home); /* edits the head or key, or NULL */
    const char *frag1, *frag2;
    int open_refused; /* 1: open refuses (the damage reaches the tail or head); 0: open accepts */
} tamper_case_t;

static void test_tampering_detected(void) {
    static const tamper_case_t cases[] = {
        {"edit status of seq 10", t_edit_status, NULL, "seq 10:", "modified", 0},
        {"edit detail of seq 10", t_edit_detail, NULL, "seq 10:", "modified", 1},
        {"edit time of the last entry", t_edit_time_last, NULL, "seq 20:", "modified", 1},
        {"edit hash of seq 10", t_edit_hash, NULL, "seq 10:", NULL, 0},
        {"edit prev link of seq 10", t_edit_prev, NULL, "seq 10:", "link", 0},
        {"non-canonical escape in seq 10", t_bad_escape, NULL, "seq 10:", "not a well-formed", 1},
        {"broken JSON in seq 10", t_broken_json, NULL, "seq 10:", "not a well-formed", 1},
        {"delete seq 10", t_delete_10, NULL, "seq 10:", "missing (deleted)", 1},
        {"delete seq 10 to 12", t_delete_10_12, NULL, "seq 10 to 12:", "missing", 1},
        {"delete seq 10, renumber the rest", t_delete_10_renumber, NULL, "seq 10:", "deleted", 1},
        {"delete the last 3 entries", t_delete_last_3, NULL, "seq 18 to 20:", "deleted at the end",
         1},
        {"delete the last entry", t_delete_last, NULL, "seq 20:", "deleted at the end", 1},
        {"delete every entry", t_delete_all, NULL, "seq 1 to 20:", "missing", 1},
        {"insert in the middle, renumbered", t_insert_middle_renumbered, NULL,
         "seq 10:", "inserted", 1},
        {"insert a copy of seq 5 as seq 10", t_insert_copy_renumbered, NULL,
         "seq 10:", "inserted (a copy of the entry at seq 5", 1},
        {"insert seq 5 again after seq 9", t_insert_verbatim_copy, NULL,
         "seq 5 (line 10):", "inserted (a copy of the entry at line 5)", 1},
        {"insert after the last entry", t_insert_after_last, NULL, "seq 21:", "inserted", 1},
        {"insert seq 0", t_insert_seq_0, NULL, "seq 0:", "inserted", 1},
        {"swap seq 5 and 12, renumbered", t_swap_5_12_renumbered, NULL, "seq 5:", "out of order",
         0},
        {"swap the lines of seq 7 and 8", t_swap_7_8, NULL, "seq 7:", "out of order", 0},
        {"move seq 3 after seq 10", t_move_3_after_10, NULL, "seq 3:", "out of order", 0},
        {"edit the head's seq", NULL, h_edit_seq, "head (seq 19)", "modified", 1},
        {"edit the head's hash", NULL, h_edit_hash, "head", "modified", 1},
        {"delete the head", NULL, h_delete, "head", "missing", 1},
        {"replace audit.key", NULL, h_replace_key, "seq 1:", "audit.key", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tamper_case_t *c = &cases[i];
        char dir[64], home[96];
        make_dirs(dir, sizeof dir, home, sizeof home);
        make_log(home, 20, "credit");
        fm_error_t err;
        FM_CHECK_MSG(fm_audit_verify(home, NULL, &err) == 0, "%s: before: %s", c->name, err.msg);
        if (c->on_lines) {
            lines_t l = read_lines(home);
            FM_CHECK_INT(l.n, 20);
            c->on_lines(&l);
            write_lines(home, &l);
            free_lines(&l);
        }
        if (c->on_home) c->on_home(home);
        expect_damage(home, c->name, c->frag1, c->frag2);
        if (c->open_refused)
            expect_open_refused(home, c->name);
        else
            expect_open_accepted(home, c->name);
        remove_tree(dir);
    }
}

/* A tampered log that open cannot see (a middle entry, same length) stays appendable, and
 * verify still names the damage after more entries. */
static void test_middle_damage_stays_named(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 20, "credit");
    lines_t l = read_lines(home);
    line_replace(&l, 3, "{\\\"score\\\":0.25}", "{\\\"score\\\":0.99}");
    write_lines(home, &l);
    free_lines(&l);
    make_log(home, 5, "credit");
    expect_damage(home, "edit seq 4, then append", "seq 4:", "modified");
    FM_CHECK_INT(count_lines(home, "\"seq\":"), 25);
    /* Export and query still read it (it parses); a line that is not an entry stops them. */
    cJSON *rows = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_audit_query(home, NULL, NULL, NULL, 100, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 25);
    cJSON_Delete(rows);
    l = read_lines(home);
    line_replace(&l, 6, "\"seq\":7,", "\"seq\":7;");
    write_lines(home, &l);
    free_lines(&l);
    FILE *devnull = fopen("/dev/null", "w");
    FM_CHECK_INT(fm_audit_export(home, NULL, NULL, NULL, devnull, &err), FM_EDATA);
    FM_CHECK_MSG(strstr(err.msg, "line 7") != NULL, "%s", err.msg);
    fclose(devnull);
    FM_CHECK_INT(fm_audit_query(home, NULL, NULL, NULL, 100, &rows, &err), FM_EDATA);
    FM_CHECK(rows == NULL);
    remove_tree(dir);
}

/* ---- crashes: a torn line, a torn head slot, a stale head ---- */

/* A final line without its newline (a crash mid-write) is no entry: verify and export skip it,
 * the writer cuts it away on open and appends after the last whole entry. */
static void test_torn_final_line(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 10, "credit");
    long size = file_size(home, "audit.log");
    lines_t l = read_lines(home);
    char torn[200];
    snprintf(torn, sizeof torn, "%.120s", l.v[9]);
    torn[7] = '1'; /* seq 11 */
    torn[8] = '1';
    free_lines(&l);
    append_raw(home, torn);
    expect_intact(home, "torn line", 10, 10);
    cJSON *rows = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_audit_query(home, NULL, NULL, NULL, 100, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 10);
    cJSON_Delete(rows);
    /* A torn line beyond a stale head too: the head at 10, entries 11 and 12 whole, 13 torn. */
    make_log(home, 0, "credit"); /* open alone cuts the torn line */
    FM_CHECK_INT(file_size(home, "audit.log"), size);
    size_t head_n = 0;
    char *head10 = slurp(home, "audit.head", &head_n);
    make_log(home, 3, "credit");
    l = read_lines(home);
    snprintf(torn, sizeof torn, "%.*s", (int)strlen(l.v[12]) - 1, l.v[12]);
    free_lines(&l);
    truncate_log(home, file_size(home, "audit.log") - (long)strlen(torn) - 1);
    append_raw(home, torn); /* seq 13 without its closing brace and newline */
    spill(home, "audit.head", head10, head_n);
    expect_intact(home, "torn line beyond a stale head", 12, 10);
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), 0);
    fm_audit_entry_t e = {.action = "after.torn"};
    if (a) FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), 0);
    fm_audit_close(a);
    expect_intact(home, "after the torn line", 13, 13);
    FM_CHECK_INT(count_lines(home, "after.torn"), 1);
    free(head10);
    remove_tree(dir);
}

/* The head's slots: a torn or garbage one is passed over for the other; both bad is damage. */
static void test_head_slot_fallback(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 10, "credit");
    size_t n = 0;
    char *head10 = slurp(home, "audit.head", &n);
    FM_CHECK_INT(n, 256);
    /* Garbage in slot A: B (the same head after close) carries on. */
    char *garbage = malloc(256);
    memcpy(garbage, head10, 256);
    for (int i = 0; i < 128; i++)
        garbage[i] = (char)(i * 37 + 11);
    spill(home, "audit.head", garbage, 256);
    expect_intact(home, "slot A garbage", 10, 10);
    make_log(home, 1, "credit");
    expect_intact(home, "appended after slot A garbage", 11, 11);
    /* Slots of different age: A at 11 (written alone), B at 10. A torn (half of it zeroed):
     * B is the head and seq 11 lies beyond it, still valid; the writer advances the head. */
    unsigned char key[32], slot11[128];
    read_key(home, key);
    expected_slot(home, slot11);
    memcpy(garbage, slot11, 128);
    memcpy(garbage + 128, head10 + 128, 128);
    spill(home, "audit.head", garbage, 256);
    expect_intact(home, "A newer than B", 11, 11);
    memset(garbage + 64, 0, 64);
    spill(home, "audit.head", garbage, 256);
    expect_intact(home, "A torn, B older", 11, 10);
    make_log(home, 0, "credit");
    expect_intact(home, "head advanced on open", 11, 11);
    /* A head file cut short: slot B lost, A still whole. */
    char *head11 = slurp(home, "audit.head", &n);
    spill(home, "audit.head", head11, 128);
    expect_intact(home, "head file cut to one slot", 11, 11);
    /* Both slots bad. */
    memcpy(garbage, head11, 256);
    garbage[60] ^= 1;
    garbage[128 + 60] ^= 1;
    spill(home, "audit.head", garbage, 256);
    expect_damage(home, "both slots' MACs wrong", "head (seq 11)", "modified");
    expect_open_refused(home, "both slots' MACs wrong");
    spill(home, "audit.head", garbage + 64, 128);
    expect_damage(home, "head file of garbage", "head:", "modified");
    free(head10);
    free(head11);
    free(garbage);
    remove_tree(dir);
}

/* Entries beyond the head that chain (a crash between the log's fsync and the head's write) are
 * valid; the writer advances the head over them. A forged line there is refused. */
static void test_entries_beyond_head(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 10, "credit");
    size_t n = 0;
    char *head10 = slurp(home, "audit.head", &n);
    make_log(home, 5, "credit");
    spill(home, "audit.head", head10, n);
    expect_intact(home, "stale head", 15, 10);
    fm_error_t err;
    cJSON *rows = NULL;
    FM_CHECK_INT(fm_audit_query(home, NULL, NULL, NULL, 100, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 15);
    cJSON_Delete(rows);
    make_log(home, 0, "credit");
    expect_intact(home, "head advanced", 15, 15);
    unsigned char want[128];
    expected_slot(home, want);
    char *head = slurp(home, "audit.head", &n);
    FM_CHECK(n == 256 && memcmp(head, want, 128) == 0 && memcmp(head + 128, want, 128) == 0);
    free(head);

    /* Stale again, then a forged line after the valid ones beyond the head. */
    spill(home, "audit.head", head10, 256);
    lines_t l = read_lines(home);
    char h15[65];
    hash_of_line(&l, 14, h15);
    char *forged = forge(&l, 14, 16, h15, NULL);
    free_lines(&l);
    append_raw(home, forged);
    append_raw(home, "\n");
    free(forged);
    expect_damage(home, "forged line beyond a stale head",
                  "seq 16:", "inserted (after the head, which ends the log at seq 10)");
    expect_open_refused(home, "forged line beyond a stale head");
    /* And, the forged line gone, a whole entry beyond the head that was edited. */
    l = read_lines(home);
    line_delete(&l, 15);
    line_replace(&l, 12, "\"status\":200", "\"status\":201");
    write_lines(home, &l);
    free_lines(&l);
    expect_damage(home, "edited entry beyond the head", "seq 13:", "inserted (after the head");
    expect_open_refused(home, "edited entry beyond the head");
    free(head10);
    remove_tree(dir);
}

/* A home with only the SQLite log of earlier releases: a clear error, nothing created. */
static void test_legacy_database(void) {
    char dir[64], home[96], path[200];
    make_dirs(dir, sizeof dir, home, sizeof home);
    FM_CHECK(mkdir(home, 0750) == 0);
    file_path(path, sizeof path, home, "audit.db");
    FILE *fp = fopen(path, "w");
    fputs("SQLite format 3", fp);
    fclose(fp);
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EUNSUPPORTED);
    FM_CHECK_MSG(strstr(err.msg, "audit.db") && strstr(err.msg, "earlier finmaas release"), "%s",
                 err.msg);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_EUNSUPPORTED);
    FM_CHECK_INT(file_size(home, "audit.log"), -1);
    FM_CHECK_INT(file_size(home, "audit.key"), -1);
    remove_tree(dir);
}

/* ---- the key and the log files ---- */

static void test_key_file_checks(void) {
    char dir[64], home[96], key_path[200], log_path[200];
    make_dirs(dir, sizeof dir, home, sizeof home);
    file_path(key_path, sizeof key_path, home, "audit.key");
    file_path(log_path, sizeof log_path, home, "audit.log");
    fm_error_t err;
    /* Verify on a home without a log: not found, nothing created. */
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_ENOTFOUND);
    FM_CHECK(access(home, F_OK) != 0);
    make_log(home, 3, "credit");
    struct stat st;
    FM_CHECK(stat(key_path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
    FM_CHECK(stat(log_path, &st) == 0 && (st.st_mode & 0777) == 0600);
    FM_CHECK(stat(home, &st) == 0 && (st.st_mode & 0777) == 0750);

    fm_audit_t *a = NULL;
    chmod(key_path, 0640);
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EDENIED);
    FM_CHECK(strstr(err.msg, "chmod 600") != NULL);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_EDENIED);
    chmod(key_path, 0604);
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EDENIED);
    chmod(key_path, 0600);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), 0);

    /* Wrong size: one byte short, one too many. */
    unsigned char key[33];
    read_key(home, key);
    FM_CHECK(truncate(key_path, 31) == 0);
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "31 bytes") != NULL);
    FILE *fp = fopen(key_path, "wb");
    key[32] = 0;
    fwrite(key, 1, 33, fp);
    fclose(fp);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_EFORMAT);
    fp = fopen(key_path, "wb");
    fwrite(key, 1, 32, fp);
    fclose(fp);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), 0);

    /* A symbolic link is refused. */
    char other[220];
    snprintf(other, sizeof other, "%s/key.elsewhere", dir);
    FM_CHECK(rename(key_path, other) == 0 && symlink(other, key_path) == 0);
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EDENIED);
    unlink(key_path);

    /* Missing while the log exists: never silently replaced by a new key. */
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "missing") != NULL);
    FM_CHECK(access(key_path, F_OK) != 0);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_ENOTFOUND);
    FM_CHECK(rename(other, key_path) == 0);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), 0);

    /* The log as a symbolic link: refused by the writer and the readers. */
    char moved[220];
    snprintf(moved, sizeof moved, "%s/log.elsewhere", dir);
    FM_CHECK(rename(log_path, moved) == 0 && symlink(moved, log_path) == 0);
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EDENIED);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_EDENIED);
    unlink(log_path);
    FM_CHECK(rename(moved, log_path) == 0);

    /* Garbage, empty and truncated logs: clear errors, no crash. */
    fp = fopen(log_path, "wb");
    for (int i = 0; i < 200; i++)
        fputs("garbage garbage garbage garbage garbage garbage garbage garbage garbage\n", fp);
    fclose(fp);
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "not a finmaas audit log") != NULL);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_EFORMAT);
    cJSON *out = NULL;
    FM_CHECK_INT(fm_audit_query(home, NULL, NULL, NULL, 10, &out, &err), FM_EFORMAT);
    FM_CHECK(out == NULL);
    /* An empty log under a head that says 3: every entry deleted. */
    FM_CHECK(truncate(log_path, 0) == 0);
    expect_damage(home, "emptied log", "seq 1 to 3:", "deleted at the end");
    expect_open_refused(home, "emptied log");
    /* A log of one enormous line without a newline: a torn line, nothing more. */
    fp = fopen(log_path, "wb");
    fputs("{\"seq\":1,", fp);
    for (int i = 0; i < 100000; i++)
        fputs("xxxxxxxxxx", fp);
    fclose(fp);
    expect_damage(home, "one huge torn line", "seq 1 to 3:", "deleted at the end");
    remove_tree(dir);

    /* A log cut short in the middle. */
    make_dirs(dir, sizeof dir, home, sizeof home);
    file_path(log_path, sizeof log_path, home, "audit.log");
    make_log(home, 300, "credit");
    FM_CHECK(stat(log_path, &st) == 0);
    FM_CHECK(truncate(log_path, st.st_size / 2) == 0);
    int rc = fm_audit_verify(home, NULL, &err);
    FM_CHECK_MSG(rc == FM_EDATA, "verify of a truncated log: %d", rc);
    printf("  truncated log: %s\n", err.msg);
    rc = fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err);
    FM_CHECK(rc == FM_EDATA);
    if (!rc) fm_audit_close(a);
    remove_tree(dir);

    /* Bad arguments. */
    FM_CHECK_INT(fm_audit_open("", FM_AUDIT_DURABLE, &a, &err), FM_EINVAL);
    FM_CHECK_INT(fm_audit_open("/tmp/x", (fm_audit_durability_t)7, &a, &err), FM_EINVAL);
    FM_CHECK_INT(fm_audit_verify("", NULL, &err), FM_EINVAL);
    fm_audit_close(NULL);
}

/* Two processes creating the same new log at once agree on one key and one chain. */
static void test_concurrent_creation(void) {
    for (int round = 0; round < 5; round++) {
        char dir[64], home[96];
        make_dirs(dir, sizeof dir, home, sizeof home);
        pid_t pids[4];
        for (int p = 0; p < 4; p++) {
            pids[p] = fork();
            if (pids[p] == 0) {
                fm_error_t err;
                fm_audit_t *a = NULL;
                if (fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err)) {
                    fprintf(stderr, "child open: %s\n", err.msg);
                    _exit(3);
                }
                fm_audit_entry_t e = {.action = "keys.create"};
                int rc = 0;
                for (int i = 0; i < 20 && !rc; i++)
                    rc = fm_audit_append_sync(a, &e, &err);
                fm_audit_close(a);
                _exit(rc ? 4 : 0);
            }
        }
        for (int p = 0; p < 4; p++) {
            int status = 0;
            waitpid(pids[p], &status, 0);
            FM_CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %d", p,
                         status);
        }
        fm_error_t err;
        int64_t n = 0;
        FM_CHECK_MSG(fm_audit_verify(home, &n, &err) == 0, "%s", err.msg);
        FM_CHECK_INT(n, 80);
        remove_tree(dir);
    }
}

/* ---- durability ---- */
/* ---- durability ---- */

typedef struct visible_check {
    const char *home;
    char request_id[32];
    int visible, invisible;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
} visible_check_t;

/* The callback reads the log through its own descriptor: the entry must be there. */
static void visible_done(void *ctx, int rc) {
    visible_check_t *v = ctx;
    char needle[64];
    snprintf(needle, sizeof needle, "\"request_id\":\"%s\"", v->request_id);
    int found = count_lines(v->home, needle) == 1;
    pthread_mutex_lock(&v->lock);
    if (rc == 0 && found)
        v->visible++;
    else
        v->invisible++;
    v->done = 1;
    pthread_cond_signal(&v->cond);
    pthread_mutex_unlock(&v->lock);
}

static void test_durable_callback_after_commit(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), 0);
    if (!a) return;
    visible_check_t v;
    memset(&v, 0, sizeof v);
    v.home = home;
    pthread_mutex_init(&v.lock, NULL);
    pthread_cond_init(&v.cond, NULL);
    for (int i = 0; i < 200; i++) {
        snprintf(v.request_id, sizeof v.request_id, "visible-%d", i);
        fm_audit_entry_t e = {.action = "v2.infer", .request_id = v.request_id, .status = 200};
        pthread_mutex_lock(&v.lock);
        v.done = 0;
        pthread_mutex_unlock(&v.lock);
        FM_CHECK_INT(fm_audit_append(a, &e, visible_done, &v), 0);
        pthread_mutex_lock(&v.lock);
        while (!v.done)
            pthread_cond_wait(&v.cond, &v.lock);
        pthread_mutex_unlock(&v.lock);
    }
    FM_CHECK_INT(v.visible, 200);
    FM_CHECK_INT(v.invisible, 0);
    fm_audit_stats_t stats;
    fm_audit_stats(a, &stats);
    FM_CHECK_INT(stats.entries, 200);
    FM_CHECK_INT(stats.commits, 200);
    FM_CHECK_INT(stats.failures, 0);
    FM_CHECK(stats.commit_seconds > 0 && stats.max_commit_seconds <= stats.commit_seconds);
    fm_audit_close(a);
    pthread_mutex_destroy(&v.lock);
    pthread_cond_destroy(&v.cond);
    remove_tree(dir);
}

/* A failing commit: the callback gets the error; the chain stays whole. The failure is made by
 * another descriptor holding the log's lock past the lock timeout. */
static void test_commit_failure_reported(void) {
    char dir[64], home[96], path[200];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 5, "credit");
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), 0);
    if (!a) return;
    file_path(path, sizeof path, home, "audit.log");
    int blocker = open(path, O_RDONLY);
    FM_CHECK(blocker >= 0 && flock(blocker, LOCK_EX) == 0);
    fm_audit_entry_t e = {.action = "label.set", .model = "credit", .version = 2};
    double t0 = now_seconds();
    int rc = fm_audit_append_sync(a, &e, &err);
    FM_CHECK_INT(rc, FM_EBUSY);
    FM_CHECK(strstr(err.msg, "audit.log") != NULL);
    printf("  locked out for %.1f s: %s\n", now_seconds() - t0, err.msg);
    /* Readers wait on the same lock: verify too gives up, and says why. */
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_EBUSY);
    flock(blocker, LOCK_UN);
    close(blocker);
    FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), 0);
    fm_audit_stats_t stats;
    fm_audit_stats(a, &stats);
    FM_CHECK_INT(stats.failures, 1);
    fm_audit_close(a);
    int64_t n = 0;
    FM_CHECK_MSG(fm_audit_verify(home, &n, &err) == 0, "%s", err.msg);
    FM_CHECK_INT(n, 6);
    remove_tree(dir);
}

/* A write that fails part-way (the file size limit reached) is cut back: the callback gets the
 * error, nothing of the entry stays, and the next entries chain on. In a child, whose limit and
 * SIGXFSZ disposition do not reach the tests after. */
static void test_failed_write_cut_back(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 5, "credit");
    long size = file_size(home, "audit.log");
    pid_t pid = fork();
    if (pid == 0) {
        fm_error_t err;
        fm_audit_t *a = NULL;
        if (fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err)) _exit(3);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit limit = {(rlim_t)size + 700, (rlim_t)size + 700};
        if (setrlimit(RLIMIT_FSIZE, &limit)) _exit(4);
        char detail[2000];
        memset(detail, 'd', sizeof detail - 1);
        detail[sizeof detail - 1] = '\0';
        fm_audit_entry_t big = {.action = "too.big", .detail = detail};
        int rc = fm_audit_append_sync(a, &big, &err);
        if (rc != FM_EIO || !strstr(err.msg, "audit.log")) _exit(5);
        fm_audit_entry_t small = {.action = "small"};
        if (fm_audit_append_sync(a, &small, &err)) _exit(6);
        fm_audit_stats_t stats;
        fm_audit_stats(a, &stats);
        fm_audit_close(a);
        _exit(stats.failures == 1 && stats.entries == 1 ? 0 : 7);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    FM_CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    expect_intact(home, "after a failed write", 6, 6);
    FM_CHECK_INT(count_lines(home, "too.big"), 0);
    FM_CHECK_INT(count_lines(home, "\"action\":\"small\""), 1);
    remove_tree(dir);
}

typedef struct async_flag {
    int called, rc;
} async_flag_t;

static void async_done(void *ctx, int rc) {
    async_flag_t *f = ctx;
    f->called++;
    f->rc = rc;
}

/* A forged line after the last entry, written behind the writer's back. */
static void add_obstacle(const char *home) {
    lines_t l = read_lines(home);
    char last_hash[65];
    hash_of_line(&l, l.n - 1, last_hash);
    char *forged = forge(&l, l.n - 1, (long)l.n + 1, last_hash, NULL);
    append_raw(home, forged);
    append_raw(home, "\n");
    free(forged);
    free_lines(&l);
}

/* A group that fails because someone appended a forged line: a durable callback gets FM_EDATA;
 * acknowledged ASYNC entries wait and are committed once the obstacle is gone. */
static void test_failed_group_retried_in_async(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 5, "credit");
    long size = file_size(home, "audit.log");
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), 0);
    add_obstacle(home);
    fm_audit_entry_t e = {.action = "label.set", .model = "credit", .version = 1};
    FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), FM_EDATA);
    FM_CHECK_MSG(strstr(err.msg, "seq 6") && strstr(err.msg, "beyond the head"), "%s", err.msg);
    fm_audit_close(a);
    truncate_log(home, size);

    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_ASYNC, &a, &err), 0);
    if (!a) return;
    add_obstacle(home);
    async_flag_t flag = {0, -1};
    for (int i = 0; i < 3; i++)
        FM_CHECK_INT(fm_audit_append(a, &e, async_done, &flag), 0);
    FM_CHECK_INT(flag.called, 3);
    FM_CHECK_INT(flag.rc, 0);
    fm_audit_stats_t stats;
    double t0 = now_seconds();
    do {
        sleep_ms(10);
        fm_audit_stats(a, &stats);
    } while (stats.failures == 0 && now_seconds() - t0 < 2);
    FM_CHECK(stats.failures >= 1);
    FM_CHECK_INT(stats.entries, 0);
    FM_CHECK_INT(stats.queued, 3);
    truncate_log(home, size);
    t0 = now_seconds();
    do {
        sleep_ms(10);
        fm_audit_stats(a, &stats);
    } while (stats.entries < 3 && now_seconds() - t0 < 2);
    FM_CHECK_INT(stats.entries, 3);
    FM_CHECK_INT(stats.lost, 0);
    /* At close a failing group is given up (no hang, nothing leaked). */
    size = file_size(home, "audit.log");
    add_obstacle(home);
    FM_CHECK_INT(fm_audit_append(a, &e, NULL, NULL), 0);
    fm_audit_close(a);
    expect_damage(home, "line left past the head", "seq 9:", "inserted");
    truncate_log(home, size);
    int64_t n = 0;
    FM_CHECK_MSG(fm_audit_verify(home, &n, &err) == 0, "%s", err.msg);
    FM_CHECK_INT(n, 8);
    remove_tree(dir);
}

typedef struct crash_shared {
    long acked; /* entries whose callback reported success, in the child */
} crash_shared_t;

static void crash_ack(void *ctx, int rc) {
    crash_shared_t *shared = ctx;
    if (rc == 0) __atomic_add_fetch(&shared->acked, 1, __ATOMIC_SEQ_CST);
}

/* The child: appends without end, bursts of fire-and-forget entries and a synchronous one. */
static void crash_child(const char *home, crash_shared_t *shared) {
    fm_error_t err;
    fm_audit_t *a = NULL;
    if (fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err)) {
        fprintf(stderr, "crash child: %s\n", err.msg);
        _exit(3);
    }
    char rid[32];
    for (long i = 0;; i++) {
        fm_audit_entry_t e = sample_entry(rid, sizeof rid, "credit", i);
        if (i % 300 == 299) {
            if (fm_audit_append_sync(a, &e, &err) == 0)
                __atomic_add_fetch(&shared->acked, 1, __ATOMIC_SEQ_CST);
        } else {
            fm_audit_append(a, &e, crash_ack, shared);
        }
    }
}

static void test_crash_safety(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 1, "credit");
    crash_shared_t *shared =
        mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    FM_CHECK(shared != MAP_FAILED);
    if (shared == MAP_FAILED) return;
    fm_rng_t rng;
    fm_rng_seed(&rng, 20261129);
    int64_t entries = 1;
    long total_acked = 0;
    for (int round = 0; round < 20; round++) {
        shared->acked = 0;
        pid_t pid = fork();
        if (pid == 0) crash_child(home, shared);
        sleep_ms(5 + (long)fm_rng_below(&rng, 120));
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        FM_CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                     "round %d: child ended with status %d", round, status);
        long acked = __atomic_load_n(&shared->acked, __ATOMIC_SEQ_CST);
        fm_error_t err;
        int64_t n = 0;
        int rc = fm_audit_verify(home, &n, &err);
        FM_CHECK_MSG(rc == 0, "round %d: %s", round, err.msg);
        /* Every acknowledged entry survived. */
        FM_CHECK_MSG(n >= entries + acked, "round %d: %lld entries, want at least %lld + %ld",
                     round, (long long)n, (long long)entries, acked);
        entries = n;
        total_acked += acked;
    }
    fm_error_t err;
    fm_audit_t *a = NULL;
    int rc = fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    if (!rc) {
        fm_audit_entry_t e = {.action = "after.crash"};
        FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), 0);
        fm_audit_close(a);
    }
    int64_t n = 0;
    FM_CHECK_MSG(fm_audit_verify(home, &n, &err) == 0, "%s", err.msg);
    FM_CHECK_INT(n, entries + 1);
    printf("  20 kills: %lld entries survive, %ld acknowledged, chain intact\n", (long long)n,
           total_acked);
    munmap(shared, sizeof *shared);
    remove_tree(dir);
}

/* ---- ASYNC ---- */

static void test_async_mode(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_ASYNC, &a, &err), 0);
    if (!a) return;
    async_flag_t flag = {0, -1};
    fm_audit_entry_t e = {.action = "v2.infer"};
    /* Best of three, so that a scheduling hiccup of the machine running the test is not taken for
     * the writer's delay. */
    double best = 1e9;
    for (int trial = 0; trial < 3; trial++) {
        char rid[32], needle[64];
        snprintf(rid, sizeof rid, "async-%d", trial);
        snprintf(needle, sizeof needle, "\"request_id\":\"%s\"", rid);
        e.request_id = rid;
        int before = flag.called;
        FM_CHECK_INT(fm_audit_append(a, &e, async_done, &flag), 0);
        /* The callback ran inside the call, before any commit. */
        FM_CHECK_INT(flag.called, before + 1);
        FM_CHECK_INT(flag.rc, 0);
        double t0 = now_seconds(), seen = 1e9;
        while (now_seconds() - t0 < 2.0) {
            if (count_lines(home, needle) == 1) {
                seen = now_seconds() - t0;
                break;
            }
            sleep_ms(2);
        }
        if (seen < best) best = seen;
    }
    FM_CHECK_MSG(best < 0.1, "committed after %.3f s (want < 0.1)", best);
    printf("  ASYNC entry visible after %.1f ms\n", best * 1000);
    /* A burst shares few commits; append_sync still waits for its commit. */
    for (int i = 0; i < 2000; i++) {
        e.request_id = "async-burst";
        FM_CHECK_INT(fm_audit_append(a, &e, NULL, NULL), 0);
    }
    e.request_id = "async-sync";
    FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), 0);
    FM_CHECK_INT(count_lines(home, "\"request_id\":\"async-sync\""), 1);
    for (int i = 0; i < 500; i++) {
        e.request_id = "async-tail";
        FM_CHECK_INT(fm_audit_append(a, &e, async_done, &flag), 0);
    }
    fm_audit_stats_t stats;
    fm_audit_stats(a, &stats);
    fm_audit_close(a); /* commits the tail */
    FM_CHECK_INT(flag.called, 503);
    FM_CHECK(stats.commits < 100);
    int64_t n = 0;
    FM_CHECK_MSG(fm_audit_verify(home, &n, &err) == 0, "%s", err.msg);
    FM_CHECK_INT(n, 2504);
    FM_CHECK_INT(count_lines(home, "\"request_id\":\"async-tail\""), 500);
    remove_tree(dir);
}

/* ---- several processes ---- */

static void test_two_processes_append(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 1, "credit");
    enum { PER_CHILD = 1500 };
    pid_t pids[2];
    for (int p = 0; p < 2; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            fm_error_t err;
            fm_audit_t *a = NULL;
            if (fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err)) _exit(3);
            char rid[32];
            int failures = 0;
            for (long i = 0; i < PER_CHILD; i++) {
                fm_audit_entry_t e = sample_entry(rid, sizeof rid, p ? "server" : "cli", i);
                /* Mostly queued in bursts, every 50th waits: groups of many sizes interleave. */
                if (i % 50 == 49)
                    failures += fm_audit_append_sync(a, &e, &err) != 0;
                else
                    failures += fm_audit_append(a, &e, NULL, NULL) != 0;
            }
            fm_audit_close(a);
            _exit(failures ? 4 : 0);
        }
    }
    /* Readers meanwhile always see an intact snapshot. */
    int verifications = 0, status[2] = {-1, -1}, running = 2;
    while (running > 0) {
        for (int p = 0; p < 2; p++)
            if (status[p] == -1 && waitpid(pids[p], &status[p], WNOHANG) == pids[p]) running--;
        fm_error_t err;
        int64_t n = 0;
        int rc = fm_audit_verify(home, &n, &err);
        FM_CHECK_MSG(rc == 0, "while two processes append: %s", err.msg);
        verifications++;
        if (rc) break;
    }
    for (int p = 0; p < 2; p++) {
        if (status[p] == -1) waitpid(pids[p], &status[p], 0);
        FM_CHECK_MSG(WIFEXITED(status[p]) && WEXITSTATUS(status[p]) == 0, "child %d: status %d", p,
                     status[p]);
    }
    fm_error_t err;
    int64_t n = 0;
    FM_CHECK_MSG(fm_audit_verify(home, &n, &err) == 0, "%s", err.msg);
    FM_CHECK_INT(n, 1 + 2 * PER_CHILD);
    FM_CHECK_INT(count_lines(home, "\"model\":\"server\""), PER_CHILD);
    printf("  2 processes x %d entries, %d verifications meanwhile\n", PER_CHILD, verifications);
    remove_tree(dir);
}

/* ---- entries: validation, UTF-8 ---- */

static void test_entry_validation(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), 0);
    if (!a) return;
    fm_audit_entry_t e = {.action = NULL};
    FM_CHECK_INT(fm_audit_append(a, &e, NULL, NULL), FM_EINVAL);
    FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "action") != NULL);
    e.action = "";
    FM_CHECK_INT(fm_audit_append(a, &e, NULL, NULL), FM_EINVAL);
    FM_CHECK_INT(fm_audit_append(a, NULL, NULL, NULL), FM_EINVAL);
    FM_CHECK_INT(fm_audit_append(NULL, &e, NULL, NULL), FM_EINVAL);
    size_t big = (1 << 20) + 1;
    char *huge = malloc(big + 1);
    memset(huge, 'x', big);
    huge[big] = '\0';
    e.action = "v2.infer";
    e.detail = huge;
    FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), FM_ELIMIT);
    huge[big - 1] = '\0'; /* exactly the limit is fine */
    FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), 0);
    free(huge);
    /* Invalid UTF-8 is stored as U+FFFD, valid UTF-8 unchanged. */
    e.detail = "ok \xc3\xa9 bad \xff\xfe end \xe2\x82";
    e.model = "caf\xc3\xa9";
    FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), 0);
    fm_audit_close(a);
    cJSON *rows = NULL;
    FM_CHECK_INT(fm_audit_query(home, "caf\xc3\xa9", NULL, NULL, 10, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 1);
    cJSON *detail = cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "detail");
    FM_CHECK_STR(cJSON_GetStringValue(detail),
                 "ok \xc3\xa9 bad \xef\xbf\xbd\xef\xbf\xbd end \xef\xbf\xbd\xef\xbf\xbd");
    cJSON_Delete(rows);
    int64_t n = 0;
    FM_CHECK_INT(fm_audit_verify(home, &n, &err), 0);
    FM_CHECK_INT(n, 2);
    remove_tree(dir);
}

/* ---- query and export ---- */

static void test_parse_time(void) {
    static const struct {
        const char *text;
        int upper;
        const char *want; /* NULL: rejected */
    } cases[] = {
        {"2026-11-29", 0, "2026-11-29T00:00:00.000000Z"},
        {"2026-11-29", 1, "2026-11-29T23:59:59.999999Z"},
        {"2026-11-29Z", 1, "2026-11-29T23:59:59.999999Z"},
        {"2026-11-29T20:53", 0, "2026-11-29T20:53:00.000000Z"},
        {"2026-11-29T20:53", 1, "2026-11-29T20:53:59.999999Z"},
        {"2026-11-29T20:53:50Z", 0, "2026-11-29T20:53:50.000000Z"},
        {"2026-11-29T20:53:50Z", 1, "2026-11-29T20:53:50.999999Z"},
        {"2026-11-29 20:53:50", 0, "2026-11-29T20:53:50.000000Z"},
        {"2026-11-29T20:53:50.5", 0, "2026-11-29T20:53:50.500000Z"},
        {"2026-11-29T20:53:50.5", 1, "2026-11-29T20:53:50.599999Z"},
        {"2026-11-29T20:53:50.123456Z", 1, "2026-11-29T20:53:50.123456Z"},
        {"2026-11-29T20:53:50.1234567Z", 0, "2026-11-29T20:53:50.123457Z"},
        {"2026-11-29T20:53:50.1234567Z", 1, "2026-11-29T20:53:50.123456Z"},
        {"2026-11-29T20:53:50+02:00", 0, "2026-11-29T18:53:50.000000Z"},
        {"2026-11-29T01:00:00+0230", 0, "2026-11-28T22:30:00.000000Z"},
        {"2026-12-31T23:30:00-01:00", 0, "2027-01-01T00:30:00.000000Z"},
        {"2024-02-29T12:00:00Z", 0, "2024-02-29T12:00:00.000000Z"},
        {"2000-02-29", 0, "2000-02-29T00:00:00.000000Z"},
        {"1970-01-01", 0, "1970-01-01T00:00:00.000000Z"},
        {"1969-12-31T23:59:59Z", 0, "1969-12-31T23:59:59.000000Z"},
        {"2023-02-29", 0, NULL},
        {"1900-02-29", 0, NULL},
        {"2026-13-01", 0, NULL},
        {"2026-00-10", 0, NULL},
        {"2026-04-31", 0, NULL},
        {"2026-11-29T24:00", 0, NULL},
        {"2026-11-29T20:60", 0, NULL},
        {"2026-11-29T20:53:61", 0, NULL},
        {"2026-11-29T20", 0, NULL},
        {"2026-11-29T20:53:50.", 0, NULL},
        {"2026-11-29T20:53:50+25:00", 0, NULL},
        {"2026-11-29x", 0, NULL},
        {"26-11-29", 0, NULL},
        {"yesterday", 0, NULL},
        {"", 0, NULL},
        {"0000-01-01T00:00:00+01:00", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[28] = "";
        fm_error_t err;
        int rc = fm_audit_parse_time("--since", cases[i].text, cases[i].upper, out, &err);
        if (cases[i].want) {
            FM_CHECK_MSG(rc == 0, "'%s': %s", cases[i].text, err.msg);
            FM_CHECK_STR(out, cases[i].want);
        } else {
            FM_CHECK_MSG(rc == FM_EINVAL, "'%s' accepted as %s", cases[i].text, out);
            if (rc) FM_CHECK(strstr(err.msg, "--since") != NULL);
        }
    }
    char out[28];
    fm_error_t err;
    FM_CHECK_INT(fm_audit_parse_time("--until", NULL, 1, out, &err), FM_EINVAL);
}

static void test_query_and_export(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    fm_error_t err;
    cJSON *rows = NULL;
    FM_CHECK_INT(fm_audit_query(home, NULL, NULL, NULL, 10, &rows, &err), FM_ENOTFOUND);
    FM_CHECK(strstr(err.msg, "audit.log") != NULL);
    make_log(home, 10, "alpha");
    make_log(home, 5, "beta");
    make_log(home, 10, "alpha");

    FM_CHECK_INT(fm_audit_query(home, NULL, NULL, NULL, 1000, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 25);
    /* Oldest first; every field present; times non-decreasing (one appender). */
    const char *fields[] = {"seq",    "time",    "key_id",     "role",   "action",
                            "model",  "version", "request_id", "status", "input_digest",
                            "output", "detail",  "prev",       "hash"};
    char times[25][32];
    for (int i = 0; i < 25; i++) {
        cJSON *row = cJSON_GetArrayItem(rows, i);
        FM_CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(row, "seq")), i + 1);
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
            FM_CHECK_MSG(cJSON_GetObjectItem(row, fields[f]) != NULL, "row %d lacks %s", i,
                         fields[f]);
        FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(row, "detail")));
        snprintf(times[i], sizeof times[i], "%s",
                 cJSON_GetStringValue(cJSON_GetObjectItem(row, "time")));
        if (i) FM_CHECK(strcmp(times[i - 1], times[i]) <= 0);
    }
    cJSON_Delete(rows);

    FM_CHECK_INT(fm_audit_query(home, "beta", NULL, NULL, 1000, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 5);
    FM_CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "seq")), 11);
    cJSON_Delete(rows);
    FM_CHECK_INT(fm_audit_query(home, "alpha", NULL, NULL, 3, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 3);
    FM_CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 2), "seq")), 3);
    cJSON_Delete(rows);
    FM_CHECK_INT(fm_audit_query(home, "gamma", NULL, NULL, 100, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 0);
    cJSON_Delete(rows);
    FM_CHECK_INT(fm_audit_query(home, NULL, NULL, NULL, 0, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 0);
    cJSON_Delete(rows);

    /* Time filters, inclusive at both ends, against the stored times compared here. */
    int lo = 6, hi = 17;
    int want = 0;
    for (int i = 0; i < 25; i++)
        want += strcmp(times[i], times[lo]) >= 0 && strcmp(times[i], times[hi]) <= 0;
    FM_CHECK_INT(fm_audit_query(home, NULL, times[lo], times[hi], 1000, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), want);
    cJSON_Delete(rows);
    FM_CHECK_INT(fm_audit_query(home, "alpha", times[lo], NULL, 1000, &rows, &err), 0);
    want = 0;
    for (int i = 0; i < 25; i++)
        want += (i < 10 || i >= 15) && strcmp(times[i], times[lo]) >= 0;
    FM_CHECK_INT(cJSON_GetArraySize(rows), want);
    cJSON_Delete(rows);
    FM_CHECK_INT(fm_audit_query(home, NULL, "1970-01-01", "9999-12-31", 1000, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 25);
    cJSON_Delete(rows);
    FM_CHECK_INT(fm_audit_query(home, NULL, "2000-01-01", "2000-12-31", 1000, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), 0);
    cJSON_Delete(rows);
    /* The day of the first entry, as a date: covers every entry made that day. */
    char day[11];
    snprintf(day, sizeof day, "%.10s", times[0]);
    want = 0;
    for (int i = 0; i < 25; i++)
        want += strncmp(times[i], day, 10) == 0;
    FM_CHECK_INT(fm_audit_query(home, NULL, day, day, 1000, &rows, &err), 0);
    FM_CHECK_INT(cJSON_GetArraySize(rows), want);
    cJSON_Delete(rows);
    FM_CHECK_INT(fm_audit_query(home, NULL, "last week", NULL, 10, &rows, &err), FM_EINVAL);
    FM_CHECK(rows == NULL);

    /* Export: the same rows as JSON lines, each the canonical text plus prev and hash. */
    char path[200];
    snprintf(path, sizeof path, "%s/export.jsonl", dir);
    FILE *fp = fopen(path, "w+");
    FM_CHECK_INT(fm_audit_export(home, "alpha", NULL, NULL, fp, &err), 0);
    rewind(fp);
    char line[4096];
    int lines = 0;
    unsigned char key[32], prev_bytes[32], hash[32];
    read_key(home, key);
    while (fgets(line, sizeof line, fp)) {
        size_t len = strlen(line);
        FM_CHECK(len > 0 && line[len - 1] == '\n');
        cJSON *o = cJSON_Parse(line);
        FM_CHECK_MSG(o != NULL, "line %d is not JSON: %s", lines, line);
        if (!o) break;
        FM_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "model")), "alpha");
        /* Whoever holds the key recomputes the hash from the line alone. */
        char *cut = strstr(line, ",\"prev\":");
        FM_CHECK(cut != NULL);
        if (cut) {
            *cut = '}';
            const char *prev_hex = cJSON_GetStringValue(cJSON_GetObjectItem(o, "prev"));
            for (int i = 0; i < 32; i++)
                sscanf(prev_hex + 2 * i, "%2hhx", &prev_bytes[i]);
            crypto_generichash_state st;
            crypto_generichash_init(&st, key, 32, 32);
            crypto_generichash_update(&st, prev_bytes, 32);
            crypto_generichash_update(&st, (const unsigned char *)line, (size_t)(cut - line) + 1);
            crypto_generichash_final(&st, hash, 32);
            char hex[65];
            hex_of(hash, 32, hex);
            FM_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "hash")), hex);
        }
        cJSON_Delete(o);
        lines++;
    }
    FM_CHECK_INT(lines, 20);
    fclose(fp);
    fp = fopen(path, "w+");
    FM_CHECK_INT(fm_audit_export(home, NULL, times[24], NULL, fp, &err), 0);
    rewind(fp);
    lines = 0;
    while (fgets(line, sizeof line, fp))
        lines++;
    want = 0;
    for (int i = 0; i < 25; i++)
        want += strcmp(times[i], times[24]) >= 0;
    FM_CHECK_INT(lines, want);
    FM_CHECK_INT(fm_audit_export(home, NULL, "2026-02-30", NULL, fp, &err), FM_EINVAL);
    fclose(fp);
    FM_CHECK_INT(fm_audit_export(dir, NULL, NULL, NULL, stdout, &err), FM_ENOTFOUND);
    remove_tree(dir);
}

/* ---- the cost of an append ---- */

static double thread_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* What one fm_audit_append costs its caller (a server request thread), in the caller's CPU time:
 * bursts of 16 server-like entries, as concurrent requests make them, each burst followed by an
 * fm_audit_append_sync (not counted) so that buffers are recycled as in a server; plain ASCII
 * and, for comparison, with UTF-8 in the output (the cleaning path). Printed, not checked: it
 * depends on the machine. */
static void test_append_cost(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), 0);
    if (!a) return;
    static const char *outputs[2] = {
        "{\"model_name\":\"credit\",\"model_version\":\"3\",\"id\":\"r-1\",\"outputs\":[{"
        "\"name\":\"score\",\"datatype\":\"FP64\",\"shape\":[1],\"data\":[0.2531]},{\"name\":"
        "\"label\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"good\"]}]}",
        "{\"model_name\":\"cr\xc3\xa9"
        "dit\",\"model_version\":\"3\",\"id\":\"r-1\",\"outputs\":[{"
        "\"name\":\"score\",\"datatype\":\"FP64\",\"shape\":[1],\"data\":[0.2531]},{\"name\":"
        "\"label\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"g\xc3\xb6od\"]}]}"};
    char digest[FM_DIGEST_HEX];
    fm_digest_hex("body", 4, digest);
    enum { BURSTS = 500, BURST = 16 };
    for (int kind = 0; kind < 2; kind++) {
        char rid[BURST][32];
        double cpu = 0;
        for (int b = 0; b < BURSTS; b++) {
            for (int i = 0; i < BURST; i++)
                snprintf(rid[i], sizeof rid[i], "req-%d-%d", b, i);
            double t0 = thread_cpu_seconds();
            for (int i = 0; i < BURST; i++) {
                fm_audit_entry_t e = {.key_id = "k_0123456789ab",
                                      .role = "consumer",
                                      .action = "v2.infer",
                                      .model = "credit",
                                      .version = 3,
                                      .request_id = rid[i],
                                      .status = 200,
                                      .input_digest = digest,
                                      .output = outputs[kind]};
                FM_CHECK_INT(fm_audit_append(a, &e, NULL, NULL), 0);
            }
            cpu += thread_cpu_seconds() - t0;
            fm_audit_entry_t sync = {.action = "burst.end"};
            FM_CHECK_INT(fm_audit_append_sync(a, &sync, &err), 0);
        }
        printf("  fm_audit_append (%s): %.0f ns of the caller's CPU per call\n",
               kind ? "UTF-8" : "ASCII", cpu / (BURSTS * BURST) * 1e9);
    }
    fm_audit_close(a);
    int64_t n = 0;
    FM_CHECK_MSG(fm_audit_verify(home, &n, &err) == 0, "%s", err.msg);
    FM_CHECK_INT(n, 2 * BURSTS * (BURST + 1));
    remove_tree(dir);
}

/* ---- throughput ---- */

typedef struct bench_worker {
    fm_audit_t *audit;
    int id;
    double until;
    long appended;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    pthread_t thread;
} bench_worker_t;

static void bench_done(void *ctx, int rc) {
    bench_worker_t *w = ctx;
    (void)rc;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void *bench_run(void *arg) {
    bench_worker_t *w = arg;
    char rid[32];
    while (now_seconds() < w->until) {
        fm_audit_entry_t e = sample_entry(rid, sizeof rid, "credit", w->appended);
        pthread_mutex_lock(&w->lock);
        w->done = 0;
        pthread_mutex_unlock(&w->lock);
        if (fm_audit_append(w->audit, &e, bench_done, w)) break;
        pthread_mutex_lock(&w->lock);
        while (!w->done)
            pthread_cond_wait(&w->cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
        w->appended++;
    }
    return NULL;
}

/* Entries per second with n appenders, each waiting for its commit before the next append;
 * *per_commit receives the mean group size. */
static double bench(int n, double seconds, double *per_commit, double *commits_per_second) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    fm_error_t err;
    fm_audit_t *a = NULL;
    if (fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err)) return 0;
    bench_worker_t *w = calloc((size_t)n, sizeof *w);
    double t0 = now_seconds();
    for (int t = 0; t < n; t++) {
        w[t].audit = a;
        w[t].id = t;
        w[t].until = t0 + seconds;
        pthread_mutex_init(&w[t].lock, NULL);
        pthread_cond_init(&w[t].cond, NULL);
        pthread_create(&w[t].thread, NULL, bench_run, &w[t]);
    }
    long total = 0;
    for (int t = 0; t < n; t++) {
        pthread_join(w[t].thread, NULL);
        total += w[t].appended;
        pthread_mutex_destroy(&w[t].lock);
        pthread_cond_destroy(&w[t].cond);
    }
    double took = now_seconds() - t0;
    fm_audit_stats_t stats;
    fm_audit_stats(a, &stats);
    fm_audit_close(a);
    double rate = (double)total / took;
    double commits = stats.commits ? (double)stats.commits : 1;
    *per_commit = (double)stats.entries / commits;
    *commits_per_second = (double)stats.commits / took;
    printf("  %2d appenders: %8.0f entries/s, %6.1f entries/commit, commit %.2f ms mean, "
           "%.2f ms max\n",
           n, rate, (double)stats.entries / commits, 1000 * stats.commit_seconds / commits,
           1000 * stats.max_commit_seconds);
    int64_t count = 0;
    FM_CHECK_MSG(fm_audit_verify(home, &count, &err) == 0, "%s", err.msg);
    FM_CHECK_INT(count, total);
    free(w);
    remove_tree(dir);
    return rate;
}

static void test_group_commit_throughput(void) {
    double per_commit[3], commit_rate[3];
    bench(1, 1.0, &per_commit[0], &commit_rate[0]);
    bench(8, 1.0, &per_commit[1], &commit_rate[1]);
    bench(64, 1.0, &per_commit[2], &commit_rate[2]);
    /* The property that makes the rates scale: concurrent appenders share commits (without
     * grouping every entry would be a commit of its own). Rates themselves depend on the disk. */
    FM_CHECK_NEAR(per_commit[0], 1.0, 1e-9);
    FM_CHECK_MSG(per_commit[1] > 2, "8 appenders: %.1f entries per commit", per_commit[1]);
    FM_CHECK_MSG(per_commit[2] > 8, "64 appenders: %.1f entries per commit", per_commit[2]);
    /* Concurrent durable commits are paced: one starts at most every 200 us (5,000 per second;
     * a group of one, rare here, lets the next start at once). A lone appender is not paced. */
    for (int i = 1; i < 3; i++)
        FM_CHECK_MSG(commit_rate[i] <= 5000 * 1.25, "%d appenders: %.0f commits per second",
                     i == 1 ? 8 : 64, commit_rate[i]);
}

FM_TEST_MAIN(FM_TEST_CASE(test_hash_matches_independent_computation),
             FM_TEST_CASE(test_chain_10000_from_8_threads), FM_TEST_CASE(test_tampering_detected),
             FM_TEST_CASE(test_middle_damage_stays_named), FM_TEST_CASE(test_torn_final_line),
             FM_TEST_CASE(test_head_slot_fallback), FM_TEST_CASE(test_entries_beyond_head),
             FM_TEST_CASE(test_legacy_database), FM_TEST_CASE(test_key_file_checks),
             FM_TEST_CASE(test_concurrent_creation),
             FM_TEST_CASE(test_durable_callback_after_commit),
             FM_TEST_CASE(test_commit_failure_reported), FM_TEST_CASE(test_failed_write_cut_back),
             FM_TEST_CASE(test_failed_group_retried_in_async), FM_TEST_CASE(test_crash_safety),
             FM_TEST_CASE(test_async_mode), FM_TEST_CASE(test_two_processes_append),
             FM_TEST_CASE(test_entry_validation), FM_TEST_CASE(test_parse_time),
             FM_TEST_CASE(test_query_and_export), FM_TEST_CASE(test_append_cost),
             FM_TEST_CASE(test_group_commit_throughput))
