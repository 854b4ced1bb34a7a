/*
 * Tests of the audit log (security/audit.h): the chain built by concurrent appenders verifies;
 * each entry's hash and the head's MAC agree with an independent computation (the canonical text
 * written out here with snprintf, libsodium called directly); every kind of tampering done with
 * SQLite directly on the file is detected and named with the right seq; durable callbacks run
 * only once the entry is visible to another connection; the log survives SIGKILL at random
 * moments with every acknowledged entry present; ASYNC mode; two processes appending at once;
 * the key file's checks; filters of query and export; ISO 8601 parsing; and the group commit's
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
#include <sqlite3.h>
#include <stdint.h>
#include <sys/mman.h>
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

static sqlite3 *open_db(const char *home) {
    char path[4200];
    snprintf(path, sizeof path, "%s/audit.db", home);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* Runs SQL on the home's database from a separate connection: the tampering. */
static void tamper(const char *home, const char *sql) {
    sqlite3 *db = open_db(home);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    FM_CHECK_MSG(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static int64_t query_int(const char *home, const char *sql) {
    sqlite3 *db = open_db(home);
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

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
    const char *shown = strstr(err.msg, "audit.db: ");
    printf("  %-34s %s\n", what, shown ? shown + 10 : err.msg);
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

static void read_key(const char *home, unsigned char key[32]) {
    char path[4200];
    snprintf(path, sizeof path, "%s/audit.key", home);
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
    FM_CHECK_INT(query_int(home, "SELECT count(DISTINCT request_id) FROM entries"),
                 THREADS * PER_THREAD);
    FM_CHECK_INT(query_int(home, "SELECT count(*) FROM entries WHERE key_id = 'cli'"),
                 THREADS * ((PER_THREAD + 6) / 7));
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
                              .detail = "name \"ops\"\n\x01"};
    fm_audit_entry_t second = {.key_id = "k_1",
                               .role = "consumer",
                               .action = "v2.infer",
                               .model = "credit",
                               .version = 7,
                               .request_id = "r-9",
                               .status = 200,
                               .input_digest = "abcd",
                               .output = "{\"score\":0.5}"};
    FM_CHECK_INT(fm_audit_append_sync(a, &first, &err), 0);
    FM_CHECK_INT(fm_audit_append_sync(a, &second, &err), 0);
    fm_audit_close(a);

    unsigned char key[32];
    read_key(home, key);
    sqlite3 *db = open_db(home);
    sqlite3_stmt *s = NULL;
    sqlite3_prepare_v2(db, "SELECT time, prev, hash FROM entries ORDER BY seq", -1, &s, NULL);
    char expected[2][512];
    unsigned char prev[32] = {0}, hash[32];
    char hex[65], times[2][40] = {"", ""};
    int row = 0;
    while (sqlite3_step(s) == SQLITE_ROW && row < 2) {
        snprintf(times[row], sizeof times[row], "%s", (const char *)sqlite3_column_text(s, 0));
        if (row == 0)
            snprintf(expected[0], sizeof expected[0],
                     "{\"seq\":1,\"time\":\"%s\",\"key_id\":\"cli\",\"role\":\"admin\","
                     "\"action\":\"keys.create\",\"model\":null,\"version\":0,"
                     "\"request_id\":null,\"status\":0,\"input_digest\":null,\"output\":null,"
                     "\"detail\":\"name \\\"ops\\\"\\n\\u0001\"}",
                     times[0]);
        else
            snprintf(expected[1], sizeof expected[1],
                     "{\"seq\":2,\"time\":\"%s\",\"key_id\":\"k_1\",\"role\":\"consumer\","
                     "\"action\":\"v2.infer\",\"model\":\"credit\",\"version\":7,"
                     "\"request_id\":\"r-9\",\"status\":200,\"input_digest\":\"abcd\","
                     "\"output\":\"{\\\"score\\\":0.5}\",\"detail\":null}",
                     times[1]);
        crypto_generichash_state st;
        crypto_generichash_init(&st, key, 32, 32);
        crypto_generichash_update(&st, prev, 32);
        crypto_generichash_update(&st, (const unsigned char *)expected[row], strlen(expected[row]));
        crypto_generichash_final(&st, hash, 32);
        hex_of(prev, 32, hex);
        FM_CHECK_STR((const char *)sqlite3_column_text(s, 1), hex);
        hex_of(hash, 32, hex);
        FM_CHECK_STR((const char *)sqlite3_column_text(s, 2), hex);
        memcpy(prev, hash, 32);
        row++;
    }
    FM_CHECK_INT(row, 2);
    sqlite3_finalize(s);
    /* Time layout: YYYY-MM-DDTHH:MM:SS.ffffffZ. */
    FM_CHECK_INT(strlen(times[0]), 27);
    FM_CHECK(times[0][10] == 'T' && times[0][19] == '.' && times[0][26] == 'Z');
    /* The head: seq 2, the last hash, MAC over "head" || seq (big-endian) || hash. */
    unsigned char msg[44], mac[32];
    memcpy(msg, "head", 4);
    memset(msg + 4, 0, 8);
    msg[11] = 2;
    memcpy(msg + 12, hash, 32);
    crypto_generichash(mac, 32, msg, sizeof msg, key, 32);
    sqlite3_prepare_v2(db, "SELECT seq, hash, mac FROM head", -1, &s, NULL);
    FM_CHECK(sqlite3_step(s) == SQLITE_ROW);
    FM_CHECK_INT(sqlite3_column_int64(s, 0), 2);
    hex_of(hash, 32, hex);
    FM_CHECK_STR((const char *)sqlite3_column_text(s, 1), hex);
    hex_of(mac, 32, hex);
    FM_CHECK_STR((const char *)sqlite3_column_text(s, 2), hex);
    sqlite3_finalize(s);
    sqlite3_close(db);
    remove_tree(dir);
}

/* ---- tampering ---- */

typedef struct tamper_case {
    const char *name;
    const char *sql; /* NULL: the key is replaced instead */
    const char *frag1, *frag2;
    int open_refused; /* the damage is at the tail or head, which open checks */
} tamper_case_t;

static void test_tampering_detected(void) {
    static const tamper_case_t cases[] = {
        {"edit status of seq 10", "UPDATE entries SET status = 500 WHERE seq = 10",
         "seq 10:", "modified", 0},
        {"edit detail of seq 10", "UPDATE entries SET detail = 'nothing happened' WHERE seq = 10",
         "seq 10:", "modified", 0},
        {"edit time of the last entry",
         "UPDATE entries SET time = '2020-01-01T00:00:00.000000Z' "
         "WHERE seq = 20",
         "seq 20:", "modified", 1},
        {"edit hash of seq 10",
         "UPDATE entries SET hash = (SELECT hash FROM entries WHERE seq = 3) WHERE seq = 10",
         "seq 10:", NULL, 0},
        {"edit prev link of seq 10",
         "UPDATE entries SET prev = (SELECT hash FROM entries WHERE seq = 5) WHERE seq = 10",
         "seq 10:", "link", 0},
        {"delete seq 10", "DELETE FROM entries WHERE seq = 10", "seq 10:", "missing (deleted)", 0},
        {"delete seq 10 to 12", "DELETE FROM entries WHERE seq BETWEEN 10 AND 12",
         "seq 10 to 12:", "missing", 0},
        {"delete seq 10, renumber the rest",
         "DELETE FROM entries WHERE seq = 10; UPDATE entries SET seq = -(seq - 1) WHERE seq > 10; "
         "UPDATE entries SET seq = -seq WHERE seq < 0",
         "seq 10:", "deleted", 1},
        {"delete the last 3 entries", "DELETE FROM entries WHERE seq > 17",
         "seq 18 to 20:", "deleted at the end", 1},
        {"delete the last entry", "DELETE FROM entries WHERE seq = 20",
         "seq 20:", "deleted at the end", 1},
        {"delete every entry", "DELETE FROM entries", "seq 1 to 20:", "missing", 1},
        {"insert in the middle, renumbered",
         "UPDATE entries SET seq = -(seq + 1) WHERE seq >= 10; "
         "UPDATE entries SET seq = -seq WHERE seq < 0; "
         "INSERT INTO entries SELECT 10, time, key_id, role, 'model.delete', model, version, "
         "request_id, status, input_digest, output, detail, hash, hash FROM entries WHERE seq = 9",
         "seq 10:", "inserted", 1},
        {"insert a copy of seq 5 as seq 10",
         "UPDATE entries SET seq = -(seq + 1) WHERE seq >= 10; "
         "UPDATE entries SET seq = -seq WHERE seq < 0; "
         "INSERT INTO entries SELECT 10, time, key_id, role, action, model, version, request_id, "
         "status, input_digest, output, detail, prev, hash FROM entries WHERE seq = 5",
         "seq 10:", "inserted", 1},
        {"insert after the last entry",
         "INSERT INTO entries SELECT 21, time, key_id, role, action, model, version, request_id, "
         "status, input_digest, output, detail, hash, hash FROM entries WHERE seq = 20",
         "seq 21:", "inserted", 1},
        {"insert seq 0",
         "INSERT INTO entries SELECT 0, time, key_id, role, action, model, "
         "version, request_id, status, input_digest, output, detail, prev, "
         "prev FROM entries WHERE seq = 1",
         "seq 0:", "inserted", 0},
        {"swap seq 5 and 12",
         "UPDATE entries SET seq = -1 WHERE seq = 5; UPDATE entries SET seq = 5 WHERE seq = 12; "
         "UPDATE entries SET seq = 12 WHERE seq = -1",
         "seq 5:", "out of order", 0},
        {"swap seq 7 and 8",
         "UPDATE entries SET seq = -1 WHERE seq = 7; UPDATE entries SET seq = 7 WHERE seq = 8; "
         "UPDATE entries SET seq = 8 WHERE seq = -1",
         "seq 7:", "out of order", 0},
        {"edit the head's seq", "UPDATE head SET seq = 19", "head (seq 19)", "modified", 1},
        {"edit the head's hash", "UPDATE head SET hash = (SELECT hash FROM entries WHERE seq = 19)",
         "head", "modified", 1},
        {"delete the head", "DELETE FROM head", "head", "missing", 1},
        {"replace audit.key", NULL, "seq 1:", "audit.key", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tamper_case_t *c = &cases[i];
        char dir[64], home[96];
        make_dirs(dir, sizeof dir, home, sizeof home);
        make_log(home, 20, "credit");
        fm_error_t err;
        FM_CHECK_MSG(fm_audit_verify(home, NULL, &err) == 0, "%s: before: %s", c->name, err.msg);
        if (c->sql) {
            tamper(home, c->sql);
        } else {
            char path[200];
            snprintf(path, sizeof path, "%s/audit.key", home);
            unsigned char key[32];
            randombytes_buf(key, sizeof key);
            int fd = open(path, O_WRONLY | O_TRUNC);
            FM_CHECK(fd >= 0 && write(fd, key, sizeof key) == (ssize_t)sizeof key);
            if (fd >= 0) close(fd);
        }
        expect_damage(home, c->name, c->frag1, c->frag2);
        if (c->open_refused) expect_open_refused(home, c->name);
        remove_tree(dir);
    }
}

/* A tampered log that open cannot see (a middle entry) stays appendable, and verify still
 * names the damage after more entries. */
static void test_middle_damage_stays_named(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 20, "credit");
    tamper(home, "UPDATE entries SET output = '{\"score\":0.99}' WHERE seq = 4");
    make_log(home, 5, "credit");
    expect_damage(home, "edit seq 4, then append", "seq 4:", "modified");
    FM_CHECK_INT(query_int(home, "SELECT max(seq) FROM entries"), 25);
    remove_tree(dir);
}

/* ---- the key and the database file ---- */

static void test_key_file_checks(void) {
    char dir[64], home[96], key_path[200], db_path[200];
    make_dirs(dir, sizeof dir, home, sizeof home);
    snprintf(key_path, sizeof key_path, "%s/audit.key", home);
    snprintf(db_path, sizeof db_path, "%s/audit.db", home);
    fm_error_t err;
    /* Verify on a home without a log: not found, nothing created. */
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_ENOTFOUND);
    FM_CHECK(access(home, F_OK) != 0);
    make_log(home, 3, "credit");
    struct stat st;
    FM_CHECK(stat(key_path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
    FM_CHECK(stat(db_path, &st) == 0 && (st.st_mode & 0777) == 0600);
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

    /* Missing while the database exists: never silently replaced by a new key. */
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "missing") != NULL);
    FM_CHECK(access(key_path, F_OK) != 0);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_ENOTFOUND);
    FM_CHECK(rename(other, key_path) == 0);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), 0);

    /* Garbage, truncated and empty databases: clear errors, no crash. */
    unlink(db_path);
    char wal[220], shm[220];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    snprintf(shm, sizeof shm, "%s-shm", db_path);
    unlink(wal);
    unlink(shm);
    fp = fopen(db_path, "wb");
    for (int i = 0; i < 200; i++)
        fputs("garbage garbage garbage garbage garbage garbage garbage garbage garbage\n", fp);
    fclose(fp);
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "not a finmaas audit log") != NULL);
    FM_CHECK_INT(fm_audit_verify(home, NULL, &err), FM_EFORMAT);
    cJSON *out = NULL;
    FM_CHECK_INT(fm_audit_query(home, NULL, NULL, NULL, 10, &out, &err), FM_EFORMAT);
    FM_CHECK(out == NULL);
    remove_tree(dir);

    /* A database cut short in the middle. */
    make_dirs(dir, sizeof dir, home, sizeof home);
    snprintf(db_path, sizeof db_path, "%s/audit.db", home);
    make_log(home, 300, "credit");
    sqlite3 *db = open_db(home);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
    FM_CHECK(stat(db_path, &st) == 0);
    FM_CHECK(truncate(db_path, st.st_size / 2) == 0);
    int rc = fm_audit_verify(home, NULL, &err);
    FM_CHECK_MSG(rc != 0, "verify of a truncated database passed");
    printf("  truncated database: %s\n", err.msg);
    rc = fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err);
    FM_CHECK(rc != 0);
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

typedef struct visible_check {
    sqlite3_stmt *lookup; /* count of rows with request_id ?1, on a second connection */
    char request_id[32];
    int visible, invisible;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
} visible_check_t;

static void visible_done(void *ctx, int rc) {
    visible_check_t *v = ctx;
    sqlite3_reset(v->lookup);
    sqlite3_bind_text(v->lookup, 1, v->request_id, -1, SQLITE_STATIC);
    int found = sqlite3_step(v->lookup) == SQLITE_ROW && sqlite3_column_int(v->lookup, 0) == 1;
    sqlite3_reset(v->lookup);
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
    sqlite3 *db = open_db(home);
    visible_check_t v;
    memset(&v, 0, sizeof v);
    pthread_mutex_init(&v.lock, NULL);
    pthread_cond_init(&v.cond, NULL);
    sqlite3_prepare_v2(db, "SELECT count(*) FROM entries WHERE request_id = ?1", -1, &v.lookup,
                       NULL);
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
    fm_audit_close(a);
    sqlite3_finalize(v.lookup);
    sqlite3_close(db);
    pthread_mutex_destroy(&v.lock);
    pthread_cond_destroy(&v.cond);
    remove_tree(dir);
}

/* A failing commit: the callback gets the error; the chain stays whole. The failure is made by
 * another connection holding the write lock past the busy timeout. */
static void test_commit_failure_reported(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 5, "credit");
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), 0);
    if (!a) return;
    sqlite3 *blocker = open_db(home);
    FM_CHECK_INT(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    fm_audit_entry_t e = {.action = "label.set", .model = "credit", .version = 2};
    double t0 = now_seconds();
    int rc = fm_audit_append_sync(a, &e, &err);
    FM_CHECK_INT(rc, FM_EBUSY);
    FM_CHECK(strstr(err.msg, "audit.db") != NULL);
    printf("  locked out for %.1f s: %s\n", now_seconds() - t0, err.msg);
    sqlite3_exec(blocker, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(blocker);
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

typedef struct async_flag {
    int called, rc;
} async_flag_t;

static void async_done(void *ctx, int rc) {
    async_flag_t *f = ctx;
    f->called++;
    f->rc = rc;
}

/* A group that fails because someone inserted a row past the head: a durable callback gets
 * FM_EDATA; acknowledged ASYNC entries wait and are committed once the obstacle is gone. */
static void test_failed_group_retried_in_async(void) {
    char dir[64], home[96];
    make_dirs(dir, sizeof dir, home, sizeof home);
    make_log(home, 5, "credit");
    const char *obstacle = "INSERT INTO entries SELECT 6, time, key_id, role, action, model, "
                           "version, request_id, status, input_digest, output, detail, hash, hash "
                           "FROM entries WHERE seq = 5";
    fm_error_t err;
    fm_audit_t *a = NULL;
    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_DURABLE, &a, &err), 0);
    tamper(home, obstacle);
    fm_audit_entry_t e = {.action = "label.set", .model = "credit", .version = 1};
    FM_CHECK_INT(fm_audit_append_sync(a, &e, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "seq 6 already exists") != NULL);
    fm_audit_close(a);
    tamper(home, "DELETE FROM entries WHERE seq = 6");

    FM_CHECK_INT(fm_audit_open(home, FM_AUDIT_ASYNC, &a, &err), 0);
    if (!a) return;
    tamper(home, obstacle);
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
    tamper(home, "DELETE FROM entries WHERE seq = 6");
    t0 = now_seconds();
    do {
        sleep_ms(10);
        fm_audit_stats(a, &stats);
    } while (stats.entries < 3 && now_seconds() - t0 < 2);
    FM_CHECK_INT(stats.entries, 3);
    FM_CHECK_INT(stats.lost, 0);
    /* At close a failing group is given up (no hang, nothing leaked). */
    tamper(home, "INSERT INTO entries SELECT 9, time, key_id, role, action, model, version, "
                 "request_id, status, input_digest, output, detail, hash, hash FROM entries "
                 "WHERE seq = 8");
    FM_CHECK_INT(fm_audit_append(a, &e, NULL, NULL), 0);
    fm_audit_close(a);
    expect_damage(home, "row left past the head", "seq 9:", "inserted");
    tamper(home, "DELETE FROM entries WHERE seq = 9");
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
        char rid[32], sql[128];
        snprintf(rid, sizeof rid, "async-%d", trial);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM entries WHERE request_id = '%s'", rid);
        e.request_id = rid;
        int before = flag.called;
        FM_CHECK_INT(fm_audit_append(a, &e, async_done, &flag), 0);
        /* The callback ran inside the call, before any commit. */
        FM_CHECK_INT(flag.called, before + 1);
        FM_CHECK_INT(flag.rc, 0);
        double t0 = now_seconds(), seen = 1e9;
        while (now_seconds() - t0 < 2.0) {
            if (query_int(home, sql) == 1) {
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
    FM_CHECK_INT(query_int(home, "SELECT count(*) FROM entries WHERE request_id = 'async-sync'"),
                 1);
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
    FM_CHECK_INT(query_int(home, "SELECT count(*) FROM entries WHERE request_id = 'async-tail'"),
                 500);
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
    FM_CHECK_INT(query_int(home, "SELECT count(*) FROM entries WHERE model = 'server'"), PER_CHILD);
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
    FM_CHECK(strstr(err.msg, "audit.db") != NULL);
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
static double bench(int n, double seconds, double *per_commit) {
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
    double per_commit[3];
    bench(1, 1.0, &per_commit[0]);
    bench(8, 1.0, &per_commit[1]);
    bench(64, 1.0, &per_commit[2]);
    /* The property that makes the rates scale: concurrent appenders share commits (without
     * grouping every entry would be a commit of its own). Rates themselves depend on the disk. */
    FM_CHECK_NEAR(per_commit[0], 1.0, 1e-9);
    FM_CHECK_MSG(per_commit[1] > 2, "8 appenders: %.1f entries per commit", per_commit[1]);
    FM_CHECK_MSG(per_commit[2] > 8, "64 appenders: %.1f entries per commit", per_commit[2]);
}

FM_TEST_MAIN(FM_TEST_CASE(test_hash_matches_independent_computation),
             FM_TEST_CASE(test_chain_10000_from_8_threads), FM_TEST_CASE(test_tampering_detected),
             FM_TEST_CASE(test_middle_damage_stays_named), FM_TEST_CASE(test_key_file_checks),
             FM_TEST_CASE(test_concurrent_creation),
             FM_TEST_CASE(test_durable_callback_after_commit),
             FM_TEST_CASE(test_commit_failure_reported),
             FM_TEST_CASE(test_failed_group_retried_in_async), FM_TEST_CASE(test_crash_safety),
             FM_TEST_CASE(test_async_mode), FM_TEST_CASE(test_two_processes_append),
             FM_TEST_CASE(test_entry_validation), FM_TEST_CASE(test_parse_time),
             FM_TEST_CASE(test_query_and_export), FM_TEST_CASE(test_group_commit_throughput))
