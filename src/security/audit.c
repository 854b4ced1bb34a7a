/*
 * The audit log's foundations, shared by the writer (audit_log.c), the file layer (audit_file.c)
 * and the readers (audit_verify.c): the home's file names, the audit key file, the canonical text
 * of an entry (with the UTF-8 cleaning and JSON escaping that make every line valid JSON), the
 * keyed BLAKE2b hash that chains the entries, and the UTC time stamps.
 *
 * The canonical text is written by hand rather than with cJSON: it is hashed, so its bytes must
 * depend on the fields alone, and it is formatted for every request a server answers, so the
 * common case (ASCII without quotes or control characters) is copied in runs.
 */
#include "security/audit_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int fm_audit_paths_init(fm_audit_paths_t *paths, const char *home, fm_error_t *err) {
    if (!home || !*home) return fm_error_set(err, FM_EINVAL, "audit log: empty home directory");
    size_t n = strlen(home);
    if (n > FM_AUDIT_HOME_MAX)
        return fm_error_set(err, FM_EINVAL, "%.64s...: home path longer than %d bytes", home,
                            FM_AUDIT_HOME_MAX);
    /* Trailing slashes are dropped: messages show "home/audit.log", not "home//audit.log". */
    int len = (int)n;
    while (len > 1 && home[len - 1] == '/')
        len--;
    snprintf(paths->log, sizeof paths->log, "%.*s/audit.log", len, home);
    snprintf(paths->head, sizeof paths->head, "%.*s/audit.head", len, home);
    snprintf(paths->key, sizeof paths->key, "%.*s/audit.key", len, home);
    snprintf(paths->legacy, sizeof paths->legacy, "%.*s/audit.db", len, home);
    return FM_OK;
}

int fm_audit_check_legacy(const fm_audit_paths_t *paths, fm_error_t *err) {
    struct stat st;
    if (lstat(paths->log, &st) == 0 || lstat(paths->legacy, &st) != 0) return FM_OK;
    return fm_error_set(err, FM_EUNSUPPORTED,
                        "%s: an audit log in the SQLite format of earlier finmaas releases, which "
                        "this release no longer reads (it keeps audit.log): verify and export it "
                        "with the earlier release, then move audit.db out of the home",
                        paths->legacy);
}

/* ---- the key file ---- */

/* Reads the key from an open descriptor after checking type, mode and size. */
static int read_key_fd(int fd, const char *path, unsigned char *key, fm_error_t *err) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fm_error_set(err, FM_EIO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return fm_error_set(err, FM_EFORMAT, "%s: not a regular file", path);
    if (st.st_mode & 077)
        return fm_error_set(err, FM_EDENIED,
                            "%s: mode %04o lets group or others at the audit key (it must be "
                            "private to its owner: chmod 600)",
                            path, (unsigned)(st.st_mode & 07777));
    if (st.st_size != FM_AUDIT_KEY_BYTES)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: %lld bytes where an audit key has %d (not an audit key, or "
                            "damaged)",
                            path, (long long)st.st_size, FM_AUDIT_KEY_BYTES);
    size_t got = 0;
    while (got < FM_AUDIT_KEY_BYTES) {
        ssize_t r = pread(fd, key + got, FM_AUDIT_KEY_BYTES - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return fm_error_set(err, FM_EIO, "%s: cannot read: %s", path,
                                r < 0 ? strerror(errno) : "file shrank while reading");
        got += (size_t)r;
    }
    return FM_OK;
}

void fm_audit_fsync_directory(const char *path) {
    char dir[FM_AUDIT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/*
 * Writes a new key to a private temporary file and links it to the key's path. *lost is set when
 * another process linked its key first (then that key is the one to read).
 */
static int create_key(const char *path, int *lost, fm_error_t *err) {
    *lost = 0;
    char temp[FM_AUDIT_PATH_MAX + 16];
    snprintf(temp, sizeof temp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(temp); /* O_CREAT | O_EXCL, mode 0600 */
    if (fd < 0) return fm_error_set(err, FM_EIO, "%s: cannot create: %s", path, strerror(errno));
    unsigned char key[FM_AUDIT_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    int ok = fchmod(fd, 0600) == 0;
    size_t put = 0;
    while (ok && put < sizeof key) {
        ssize_t w = write(fd, key + put, sizeof key - put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = 0;
        put += w > 0 ? (size_t)w : 0;
    }
    sodium_memzero(key, sizeof key);
    ok = ok && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && link(temp, path) != 0) {
        e = errno;
        if (e == EEXIST)
            *lost = 1;
        else
            ok = 0;
    }
    unlink(temp);
    if (!ok) return fm_error_set(err, FM_EIO, "%s: cannot write: %s", path, strerror(e));
    fm_audit_fsync_directory(path);
    return FM_OK;
}

int fm_audit_key_load(const fm_audit_paths_t *paths, int create, unsigned char *key,
                      fm_error_t *err) {
    const char *path = paths->key;
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            int rc = read_key_fd(fd, path, key, err);
            close(fd);
            return rc;
        }
        int e = errno;
        if (e == ELOOP)
            return fm_error_set(err, FM_EDENIED, "%s: is a symbolic link (refused)", path);
        if (e != ENOENT) return fm_error_set(err, FM_EIO, "%s: cannot open: %s", path, strerror(e));
        /* The key is always created before the log, so a log without a key means the key was
         * deleted or the log copied without it. */
        struct stat st;
        if (stat(paths->log, &st) == 0 && attempt == 0)
            continue; /* created meanwhile? look again */
        if (stat(paths->log, &st) == 0)
            return fm_error_set(err, create ? FM_EDATA : FM_ENOTFOUND,
                                "%s: missing while %s exists (restore the key: a new one could "
                                "not verify the existing log)",
                                path, paths->log);
        if (!create)
            return fm_error_set(err, FM_ENOTFOUND, "%s: no audit key (no audit log here)", path);
        int lost = 0;
        int rc = create_key(path, &lost, err);
        if (rc) return rc;
        /* Whether this process's key or a faster process's one is in place, read what is there. */
    }
    return fm_error_set(err, FM_EIO, "%s: cannot create or read the audit key", path);
}

/* ---- canonical text and hashes ---- */

/* The length of the valid UTF-8 sequence at p (2 to 4), or 0 when the byte there (>= 0x80) starts
 * none. The string's NUL ends every check early, so no read goes past it. */
static size_t utf8_sequence(const unsigned char *p) {
    unsigned char c = p[0];
    if (c >= 0xc2 && c <= 0xdf) return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Printable ASCII other than " and \: copied as it is. */
static int plain_ascii(unsigned char c) {
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/*
 * Non-zero when one of the 8 bytes of w is not plain ASCII: below 0x20, 0x80 or above, " or \.
 * The classic "has a zero byte" test ((x - 0x01..) & ~x & 0x80..) on w itself (for bytes below
 * 0x20, against 0x20) and on w xor '"' and w xor '\'. It may flag a plain byte above a special
 * one, never a word of plain bytes, which is all the caller relies on.
 */
static uint64_t special_bytes(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t control = (w - 0x20 * ones) & ~w;
    uint64_t quote = w ^ ('"' * ones), backslash = w ^ ('\\' * ones);
    quote = (quote - ones) & ~quote;
    backslash = (backslash - ones) & ~backslash;
    return (control | quote | backslash | w) & highs;
}

char *fm_audit_put_string(char *dst, char *end, const char *s) {
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        if (end - dst < 4) return NULL;
        memcpy(dst, "null", 4);
        return dst + 4;
    }
    if (dst >= end) return NULL;
    *dst++ = '"';
    const unsigned char *p = (const unsigned char *)s, *stop = p + strlen(s);
    for (;;) {
        /* Plain ASCII eight bytes at a time, then byte by byte up to the next special byte. */
        while (stop - p >= 8 && end - dst >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (special_bytes(w)) break;
            memcpy(dst, &w, 8);
            dst += 8;
            p += 8;
        }
        while (p < stop && plain_ascii(*p)) {
            if (dst >= end) return NULL;
            *dst++ = (char)*p++;
        }
        if (p >= stop) break;
        unsigned char c = *p;
        if (end - dst < 6) return NULL;
        if (c >= 0x80) {
            size_t k = utf8_sequence(p);
            if (k) {
                memcpy(dst, p, k);
                dst += k;
                p += k;
            } else {
                memcpy(dst, "\xef\xbf\xbd", 3); /* U+FFFD for each invalid byte */
                dst += 3;
                p++;
            }
            continue;
        }
        p++;
        *dst++ = '\\';
        if (c == '"' || c == '\\') {
            /* The common case in JSON outputs, kept off the switch's indirect jump. */
            *dst++ = (char)c;
            continue;
        }
        switch (c) {
        case '\n':
            *dst++ = 'n';
            break;
        case '\r':
            *dst++ = 'r';
            break;
        case '\t':
            *dst++ = 't';
            break;
        case '\b':
            *dst++ = 'b';
            break;
        case '\f':
            *dst++ = 'f';
            break;
        default:
            memcpy(dst, "u00", 3);
            dst[3] = hex[c >> 4];
            dst[4] = hex[c & 15];
            dst += 5;
        }
    }
    if (dst >= end) return NULL;
    *dst++ = '"';
    return dst;
}

/* Writes v in decimal; returns the end, or NULL when it does not fit. */
static char *put_int(char *dst, char *end, int64_t v) {
    char digits[24];
    int n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (end - dst < n + 1) return NULL;
    if (v < 0) *dst++ = '-';
    while (n)
        *dst++ = digits[--n];
    return dst;
}

/* Writes the literal name (",\"time\":" and so on); NULL when it does not fit. */
static char *put_name(char *dst, char *end, const char *name, size_t n) {
    if ((size_t)(end - dst) < n) return NULL;
    memcpy(dst, name, n);
    return dst + n;
}

#define PUT_NAME(d, e, lit) ((d) ? put_name((d), (e), (lit), sizeof(lit) - 1) : NULL)
#define PUT_STRING(d, e, s) ((d) ? fm_audit_put_string((d), (e), (s)) : NULL)
#define PUT_INT(d, e, v)    ((d) ? put_int((d), (e), (v)) : NULL)

size_t fm_audit_format_fields(char *out, size_t cap, const fm_audit_fields_t *f) {
    char *d = out, *e = out + cap;
    d = PUT_NAME(d, e, ",\"time\":");
    d = PUT_STRING(d, e, f->time);
    d = PUT_NAME(d, e, ",\"key_id\":");
    d = PUT_STRING(d, e, f->key_id);
    d = PUT_NAME(d, e, ",\"role\":");
    d = PUT_STRING(d, e, f->role);
    d = PUT_NAME(d, e, ",\"action\":");
    d = PUT_STRING(d, e, f->action);
    d = PUT_NAME(d, e, ",\"model\":");
    d = PUT_STRING(d, e, f->model);
    d = PUT_NAME(d, e, ",\"version\":");
    d = PUT_INT(d, e, f->version);
    d = PUT_NAME(d, e, ",\"request_id\":");
    d = PUT_STRING(d, e, f->request_id);
    d = PUT_NAME(d, e, ",\"status\":");
    d = PUT_INT(d, e, f->status);
    d = PUT_NAME(d, e, ",\"input_digest\":");
    d = PUT_STRING(d, e, f->input_digest);
    d = PUT_NAME(d, e, ",\"output\":");
    d = PUT_STRING(d, e, f->output);
    d = PUT_NAME(d, e, ",\"detail\":");
    d = PUT_STRING(d, e, f->detail);
    return d ? (size_t)(d - out) : 0;
}

size_t fm_audit_fields_bound(const fm_audit_fields_t *f) {
    const char *strings[] = {f->time,       f->key_id,       f->role,   f->action, f->model,
                             f->request_id, f->input_digest, f->output, f->detail};
    /* Names and integers take under 200 bytes; a byte of a string at most 6 (\u00XX). */
    size_t bound = 256;
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        bound += strings[i] ? 6 * strlen(strings[i]) + 2 : 4;
    return bound;
}

void fm_audit_entry_hash(const unsigned char *key, const unsigned char *prev, const char *text,
                         size_t n, unsigned char *hash) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, FM_AUDIT_KEY_BYTES, FM_AUDIT_HASH_BYTES);
    crypto_generichash_update(&st, prev, FM_AUDIT_HASH_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)text, n);
    crypto_generichash_final(&st, hash, FM_AUDIT_HASH_BYTES);
}

void fm_audit_hex(const unsigned char *bytes, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int fm_audit_unhex(const char *text, unsigned char *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(text[2 * i]);
        if (hi < 0) return -1;
        int lo = hex_digit(text[2 * i + 1]);
        if (lo < 0) return -1;
        bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Writes v as exactly width decimal digits (v >= 0). */
static void put_digits(char *out, long v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* The date of a day count since 1970-01-01, proleptic Gregorian (Howard Hinnant's
 * civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, long *m, long *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (long)(doy - (153 * mp + 2) / 5 + 1);
    *m = (long)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int fm_audit_format_time(int64_t us, char out[FM_AUDIT_TIME_SIZE]) {
    int64_t days = us >= 0 ? us / 86400000000LL : -((-us + 86399999999LL) / 86400000000LL);
    int64_t rest = us - days * 86400000000LL, year;
    long month, day;
    civil_from_days(days, &year, &month, &day);
    if (year < 0 || year > 9999) return -1;
    long seconds = (long)(rest / 1000000);
    /* By hand rather than strftime: no locale, and the layout is part of the hashed text. */
    put_digits(out, (long)year, 4);
    out[4] = '-';
    put_digits(out + 5, month, 2);
    out[7] = '-';
    put_digits(out + 8, day, 2);
    out[10] = 'T';
    put_digits(out + 11, seconds / 3600, 2);
    out[13] = ':';
    put_digits(out + 14, seconds / 60 % 60, 2);
    out[16] = ':';
    put_digits(out + 17, seconds % 60, 2);
    out[19] = '.';
    put_digits(out + 20, (long)(rest % 1000000), 6);
    out[26] = 'Z';
    out[27] = '\0';
    return 0;
}

void fm_audit_time_now(char out[FM_AUDIT_TIME_SIZE]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fm_audit_format_time((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, out);
}
