/*
 * Personal data masking (security/pii.h): the home's PII key, keyed tokens, card and e-mail
 * recognition, and the scrubber that masks them inside free text.
 *
 * The key is 32 random bytes in <home>/pii.key. It is read through one open descriptor (fstat on
 * it, so the checked file is the one read) and refused when group or others have any access to it
 * or when it is not exactly 32 bytes. A new key is written to a temporary file created with
 * O_CREAT | O_EXCL and mode 0600, fsync'ed and hard-linked to its name: link() fails when the name
 * exists, so two processes opening the same home at once agree on one key and a reader never sees
 * a half-written key.
 *
 * A token is "pii:" followed by the first 8 bytes (16 hex) of BLAKE2b-256 keyed with the PII key
 * over the value's bytes, so hashlib.blake2b(value, key=key).hexdigest()[:16] reproduces it.
 *
 * Cards. A digit group is a maximal run of digits; groups joined by a single space or dash form a
 * chain. A card is a stretch of whole consecutive groups of a chain, 13 to 19 digits in all, that
 * passes the Luhn check and
 * - uses one kind of separator throughout ("4111 1111 1111 1111", "4111-1111-1111-1111"), so a
 *   date followed by a time or a date range ("2024-01-15 1030...") does not read as one number;
 * - starts with a group of exactly 4 digits when it has separators, as every card layout does
 *   (4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3), which keeps numbers grouped by thousands and phone numbers
 *   ("+86 138 0013 8000") out;
 * - is not a "+" followed by at most 15 digits, which is an E.164 phone number.
 * A group touching a letter (or a digit beyond a length of 19) cannot be part of a card: an
 * identifier like "x4111111111111111y" or a 25-digit number is not one. Searching the stretches
 * of a chain rather than the whole chain means a card is still found after an unrelated number
 * ("ref 42 4111 1111 1111 1111"). Every stretch that is a card is masked; overlapping or touching
 * cards are masked as one: its first 6 digits, a '*' for each digit between, its last 4, with the
 * separators dropped. The last 4 digits of a mask stand alone in the output, so they are tested
 * once more as a group of their own with the groups that follow, and a card they form is masked
 * too; likewise digits that follow a replaced address count as bounded. So the output holds no
 * run of digits that would read as a card; re-scrubbing it can still mask a stretch that ends in
 * a mask's first 6 digits, which reveals nothing the mask did not.
 *
 * E-mail addresses: a local part of [A-Za-z0-9._%+-] (leading dots are taken as punctuation), an
 * '@', then two or more domain labels of [A-Za-z0-9-] (not starting or ending with '-') joined by
 * single dots, the last of which (the TLD) is 2 or more letters. In free text the address ends at
 * the last label that is a valid TLD, so a sentence's full stop is not swallowed.
 *
 * The scrubber is one left-to-right pass. Text is copied lazily (a span at a time) when something
 * is replaced. A chain keeps its last 19 groups in a ring: a card has at most 19 groups, so once
 * 19 more groups have been read a group's fate is final and it is written out. Each group starts
 * at most one leftward Luhn walk of at most 19 digits, and each '@' looks back over a local part
 * and forward over a domain that no other '@' can share, so the pass is linear in the input.
 */
#include "security/pii.h"

#include "core/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_BYTES        32
#define KEY_FILE         "pii.key"
#define TOKEN_BYTES      8 /* of the BLAKE2b-256 digest, shown as 16 hex */
#define CARD_MIN_DIGITS  13
#define CARD_MAX_DIGITS  19
#define PHONE_MAX_DIGITS 15 /* E.164 */
#define MASK_HEAD        6
#define MASK_TAIL        4
#define RING             32 /* power of two above the most groups a card can span (19) */

_Static_assert(KEY_BYTES == crypto_generichash_KEYBYTES, "BLAKE2b key size");
_Static_assert(RING > CARD_MAX_DIGITS && (RING & (RING - 1)) == 0, "ring size");

struct fm_pii {
    unsigned char key[KEY_BYTES];
};

/* ---- Character classes ------------------------------------------------------------------- */

enum {
    C_DIGIT = 1,   /* 0-9 */
    C_ALPHA = 2,   /* A-Z a-z */
    C_LOCAL = 4,   /* e-mail local part: alphanumerics and ._%+- */
    C_LABEL = 8,   /* domain label: alphanumerics and - */
    C_SPECIAL = 16 /* stops the scrubber's fast scan: digits and '@' */
};

#define DIGIT_CLASS  (C_DIGIT | C_LOCAL | C_LABEL | C_SPECIAL)
#define ALPHA_CLASS  (C_ALPHA | C_LOCAL | C_LABEL)
#define ALPHA2(u, l) [u] = ALPHA_CLASS, [l] = ALPHA_CLASS

static const unsigned char char_class[256] = {
    ['0'] = DIGIT_CLASS,       ['1'] = DIGIT_CLASS, ['2'] = DIGIT_CLASS, ['3'] = DIGIT_CLASS,
    ['4'] = DIGIT_CLASS,       ['5'] = DIGIT_CLASS, ['6'] = DIGIT_CLASS, ['7'] = DIGIT_CLASS,
    ['8'] = DIGIT_CLASS,       ['9'] = DIGIT_CLASS, ALPHA2('A', 'a'),    ALPHA2('B', 'b'),
    ALPHA2('C', 'c'),          ALPHA2('D', 'd'),    ALPHA2('E', 'e'),    ALPHA2('F', 'f'),
    ALPHA2('G', 'g'),          ALPHA2('H', 'h'),    ALPHA2('I', 'i'),    ALPHA2('J', 'j'),
    ALPHA2('K', 'k'),          ALPHA2('L', 'l'),    ALPHA2('M', 'm'),    ALPHA2('N', 'n'),
    ALPHA2('O', 'o'),          ALPHA2('P', 'p'),    ALPHA2('Q', 'q'),    ALPHA2('R', 'r'),
    ALPHA2('S', 's'),          ALPHA2('T', 't'),    ALPHA2('U', 'u'),    ALPHA2('V', 'v'),
    ALPHA2('W', 'w'),          ALPHA2('X', 'x'),    ALPHA2('Y', 'y'),    ALPHA2('Z', 'z'),
    ['.'] = C_LOCAL,           ['_'] = C_LOCAL,     ['%'] = C_LOCAL,     ['+'] = C_LOCAL,
    ['-'] = C_LOCAL | C_LABEL, ['@'] = C_SPECIAL,
};

static int has_class(const char *s, size_t i, int cls) {
    return (char_class[(unsigned char)s[i]] & cls) != 0;
}

static int is_digit_at(const char *s, size_t i) {
    return has_class(s, i, C_DIGIT);
}

static int is_alnum_at(const char *s, size_t i) {
    return has_class(s, i, C_DIGIT | C_ALPHA);
}

static int is_separator(char c) {
    return c == ' ' || c == '-';
}

/* ---- Key --------------------------------------------------------------------------------- */

static int library_init(fm_error_t *err) {
    if (fm_digest_library_init() != FM_OK)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    return FM_OK;
}

static int pii_new(const unsigned char key[KEY_BYTES], fm_pii_t **out) {
    fm_pii_t *pii = malloc(sizeof *pii);
    if (!pii) return FM_ENOMEM;
    memcpy(pii->key, key, KEY_BYTES);
    *out = pii;
    return FM_OK;
}

int fm_pii_new_with_key(const unsigned char key[32], fm_pii_t **out) {
    *out = NULL;
    if (!key) return FM_EINVAL;
    if (fm_digest_library_init() != FM_OK) return FM_EUNSUPPORTED;
    return pii_new(key, out);
}

void fm_pii_free(fm_pii_t *pii) {
    if (!pii) return;
    sodium_memzero(pii->key, sizeof pii->key);
    free(pii);
}

/* Reads the key at path. FM_ENOTFOUND (with a message) when there is no file. */
static int key_read(const char *path, unsigned char key[KEY_BYTES], fm_error_t *err) {
    /* Non-blocking so that a FIFO in its place cannot hang the caller; no symbolic links. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP) return fm_error_set(err, FM_EINVAL, "PII key %s: is a symbolic link", path);
        return fm_error_set(err, e == ENOENT ? FM_ENOTFOUND : FM_EIO, "PII key %s: cannot open: %s",
                            path, strerror(e));
    }
    int rc = FM_OK;
    struct stat st;
    if (fstat(fd, &st) != 0)
        rc = fm_error_set(err, FM_EIO, "PII key %s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = fm_error_set(err, FM_EINVAL, "PII key %s: not a regular file", path);
    else if (st.st_mode & 077)
        rc = fm_error_set(err, FM_EDENIED,
                          "PII key %s: mode %04o lets group or others use it (chmod 600 %s)", path,
                          (unsigned)(st.st_mode & 07777), path);
    else if (st.st_size != KEY_BYTES)
        rc = fm_error_set(err, FM_EFORMAT, "PII key %s: %lld bytes, a PII key is exactly %d bytes",
                          path, (long long)st.st_size, KEY_BYTES);
    /* One byte more than a key, so that a file that grew after the fstat is noticed. */
    unsigned char raw[KEY_BYTES + 1];
    size_t got = 0;
    while (!rc && got < sizeof raw) {
        ssize_t n = read(fd, raw + got, sizeof raw - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            rc = fm_error_set(err, FM_EIO, "PII key %s: read error: %s", path, strerror(errno));
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (!rc && got != KEY_BYTES)
        rc =
            fm_error_set(err, FM_EFORMAT, "PII key %s: changed while read (%zu bytes, expected %d)",
                         path, got, KEY_BYTES);
    if (!rc) memcpy(key, raw, KEY_BYTES);
    sodium_memzero(raw, sizeof raw);
    return rc;
}

static int write_all(int fd, const unsigned char *data, size_t len) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Creates a new key at path (in directory home). FM_EEXIST when another process made one first:
 * the caller then reads that one.
 */
static int key_create(const char *home, const char *path, fm_error_t *err) {
    unsigned char key[KEY_BYTES], nonce[4];
    randombytes_buf(nonce, sizeof nonce);
    char temp[PATH_MAX];
    int n = snprintf(temp, sizeof temp, "%s.tmp.%ld.%02x%02x%02x%02x", path, (long)getpid(),
                     nonce[0], nonce[1], nonce[2], nonce[3]);
    if (n < 0 || (size_t)n >= sizeof temp)
        return fm_error_set(err, FM_EINVAL, "PII key %s: path too long", path);
    int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return fm_error_set(err, FM_EIO, "PII key %s: cannot create: %s", path, strerror(errno));
    randombytes_buf(key, sizeof key);
    int ok = write_all(fd, key, sizeof key) == 0 && fsync(fd) == 0;
    int e = errno;
    sodium_memzero(key, sizeof key);
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    int rc = FM_OK;
    if (!ok)
        rc = fm_error_set(err, FM_EIO, "PII key %s: cannot write: %s", path, strerror(e));
    else if (link(temp, path) != 0)
        rc = errno == EEXIST ? FM_EEXIST
                             : fm_error_set(err, FM_EIO, "PII key %s: cannot create: %s", path,
                                            strerror(errno));
    unlink(temp);
    if (!rc) {
        int dir = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0) {
            fsync(dir);
            close(dir);
        }
    }
    return rc;
}

int fm_pii_open(const char *home, fm_pii_t **out, fm_error_t *err) {
    *out = NULL;
    int rc = library_init(err);
    if (rc) return rc;
    if (!home || !*home) return fm_error_set(err, FM_EINVAL, "PII key: the home path is empty");
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", home, KEY_FILE);
    if (n < 0 || (size_t)n >= sizeof path)
        return fm_error_set(err, FM_EINVAL, "PII key: home path too long");
    unsigned char key[KEY_BYTES];
    rc = key_read(path, key, err);
    if (rc == FM_ENOTFOUND) {
        rc = key_create(home, path, err);
        /* Ours or, when another process won the race, theirs. */
        if (rc == FM_OK || rc == FM_EEXIST) rc = key_read(path, key, err);
    }
    if (!rc && pii_new(key, out) != FM_OK)
        rc = fm_error_set(err, FM_ENOMEM, "PII key %s: out of memory", path);
    sodium_memzero(key, sizeof key);
    return rc;
}

/* ---- Tokens ------------------------------------------------------------------------------ */

static int put_token(const fm_pii_t *pii, const char *s, size_t n, fm_buf_t *out) {
    unsigned char digest[crypto_generichash_BYTES];
    crypto_generichash(digest, sizeof digest, (const unsigned char *)s, n, pii->key, KEY_BYTES);
    char text[4 + 2 * TOKEN_BYTES + 1] = "pii:";
    sodium_bin2hex(text + 4, 2 * TOKEN_BYTES + 1, digest, TOKEN_BYTES);
    return fm_buf_append(out, text, sizeof text - 1);
}

int fm_pii_token(const fm_pii_t *pii, const char *s, size_t n, fm_buf_t *out) {
    if (!pii || (!s && n)) return FM_EINVAL;
    return put_token(pii, n ? s : "", n, out);
}

/* ---- Cards ------------------------------------------------------------------------------- */

/* The Luhn weight of digit d at position pos counted from the right (0 = check digit). */
static unsigned luhn_term(unsigned d, size_t pos) {
    if (!(pos & 1)) return d;
    d *= 2;
    return d > 9 ? d - 9 : d;
}

/* One digit group of a chain. */
typedef struct group {
    size_t start, len;
    char sep;   /* the separator before it, 0 for the first group of a chain */
    int usable; /* bounded by non-alphanumerics on both sides and at most 19 digits */
    int covered;
} group_t;

/*
 * The longest card among the stretches of groups ending at group k (whose earlier groups are at
 * k-1, k-2, ... in the ring, the first of the chain at index 0). Returns the index of its first
 * group, or -1. plus: the chain follows a '+'.
 */
static long card_ending_at(const char *s, const group_t *ring, size_t k, int plus) {
    unsigned sum = 0;
    size_t digits = 0;
    char sep = 0;
    long best = -1;
    for (size_t j = k;; j--) {
        const group_t *g = &ring[j & (RING - 1)];
        if (!g->usable || digits + g->len > CARD_MAX_DIGITS) break;
        for (size_t p = g->start + g->len; p > g->start; p--)
            sum += luhn_term((unsigned)(s[p - 1] - '0'), digits++);
        if (digits >= CARD_MIN_DIGITS && sum % 10 == 0 && (j == k || g->len == 4) &&
            !(j == 0 && plus && digits <= PHONE_MAX_DIGITS))
            best = (long)j;
        if (j == 0) break;
        if (sep && g->sep != sep) break;
        sep = g->sep;
    }
    return best;
}

/* Writes a masked card as its digits arrive: the first 6, then '*' for all but the last 4. */
typedef struct masker {
    size_t seen;
    size_t held;
    char tail[MASK_TAIL];
} masker_t;

static int masker_digit(masker_t *m, char d, fm_buf_t *out) {
    int rc = FM_OK;
    if (m->seen++ < MASK_HEAD) return fm_buf_putc(out, d);
    if (m->held == MASK_TAIL) {
        rc = fm_buf_putc(out, '*');
        memmove(m->tail, m->tail + 1, MASK_TAIL - 1);
        m->held--;
    }
    m->tail[m->held++] = d;
    return rc;
}

static int masker_end(masker_t *m, fm_buf_t *out) {
    int rc = fm_buf_append(out, m->tail, m->held);
    memset(m, 0, sizeof *m);
    return rc;
}

/* The state of one scrub pass. */
typedef struct scrub {
    const fm_pii_t *pii;
    const char *s;
    size_t n;
    size_t copied; /* s[0..copied) has been written out or replaced */
    fm_buf_t *out;
} scrub_t;

/* Writes the text up to position end that has not been written yet. */
static int flush_to(scrub_t *x, size_t end) {
    if (end <= x->copied) return FM_OK;
    int rc = fm_buf_append(x->out, x->s + x->copied, end - x->copied);
    x->copied = end;
    return rc;
}

/* A chain being read: the ring of its unsettled groups and the card being written. */
typedef struct chain {
    group_t ring[RING];
    size_t count;   /* groups read */
    size_t settled; /* groups written out */
    int plus;
    int masking; /* a masked card is open */
    masker_t masker;
} chain_t;

/*
 * The last group of the longest card that the 4 digits a mask ends with would form with the
 * groups from index g on, or -1. Those digits stand alone in the output ("411111******1111 ..."),
 * so a card glued to the end of a longer group in the input would otherwise appear there whole.
 */
static long card_after_mask(const char *s, const chain_t *c, size_t g) {
    char digits[CARD_MAX_DIGITS];
    size_t nd = c->masker.held;
    memcpy(digits, c->masker.tail, nd);
    char sep = 0;
    long best = -1;
    for (size_t e = g; e < c->count; e++) {
        const group_t *q = &c->ring[e & (RING - 1)];
        if (!q->usable || nd + q->len > CARD_MAX_DIGITS || (sep && q->sep != sep)) break;
        sep = q->sep;
        memcpy(digits + nd, s + q->start, q->len);
        nd += q->len;
        unsigned sum = 0;
        for (size_t i = 0; i < nd; i++)
            sum += luhn_term((unsigned)(digits[nd - 1 - i] - '0'), i);
        if (nd >= CARD_MIN_DIGITS && sum % 10 == 0) best = (long)e;
    }
    return best;
}

/* Writes out group index g, whose fate is final: masked digits when covered, else left as is. */
static int settle(scrub_t *x, chain_t *c, size_t g) {
    group_t *q = &c->ring[g & (RING - 1)];
    if (!q->covered && c->masking) {
        long last = card_after_mask(x->s, c, g);
        for (long e = (long)g; e <= last; e++)
            c->ring[(size_t)e & (RING - 1)].covered = 1;
    }
    int rc = FM_OK;
    if (!q->covered) {
        if (c->masking) {
            c->masking = 0;
            rc = masker_end(&c->masker, x->out);
        }
        return rc;
    }
    /* The separator before a covered group continuing a masked card is dropped. */
    if (!c->masking) {
        rc = flush_to(x, q->start);
        c->masking = 1;
    }
    for (size_t p = q->start; !rc && p < q->start + q->len; p++)
        rc = masker_digit(&c->masker, x->s[p], x->out);
    x->copied = q->start + q->len;
    return rc;
}

/*
 * Reads the chain of digit groups that starts at position i (a digit that no digit precedes),
 * masks the cards in it, and returns the position after it in *end.
 */
static int scrub_chain(scrub_t *x, size_t i, size_t *end) {
    const char *s = x->s;
    size_t n = x->n;
    /* Most chains (dates, times, counts) hold fewer digits than any card: skip them at once. */
    size_t p = i, digits = 0;
    for (;;) {
        while (p < n && is_digit_at(s, p)) {
            p++;
            digits++;
        }
        if (digits >= CARD_MIN_DIGITS) break;
        if (!(p + 1 < n && is_separator(s[p]) && is_digit_at(s, p + 1))) {
            *end = p;
            return FM_OK;
        }
        p++;
    }
    chain_t c;
    c.count = c.settled = 0;
    c.plus = i > 0 && s[i - 1] == '+';
    c.masking = 0;
    memset(&c.masker, 0, sizeof c.masker);
    /* Text just replaced by a token or mask no longer touches these digits in the output. */
    int left_ok = i == 0 || !is_alnum_at(s, i - 1) || i == x->copied;
    char sep = 0;
    int rc = FM_OK;
    p = i;
    digits = 0;
    for (;;) {
        size_t start = p;
        while (p < n && is_digit_at(s, p))
            p++;
        int more = p + 1 < n && is_separator(s[p]) && is_digit_at(s, p + 1);
        int right_ok = more || p == n || !is_alnum_at(s, p);
        group_t *g = &c.ring[c.count & (RING - 1)];
        *g = (group_t){start, p - start, sep, left_ok && right_ok && p - start <= CARD_MAX_DIGITS,
                       0};
        size_t k = c.count++;
        digits += g->len;
        if (g->usable && digits >= CARD_MIN_DIGITS) {
            long first = card_ending_at(s, c.ring, k, c.plus);
            for (long j = first; j >= 0 && (size_t)j <= k; j++)
                c.ring[(size_t)j & (RING - 1)].covered = 1;
        }
        /* No card can reach back more than 19 groups: the one that far back is final. */
        if (c.count - c.settled > CARD_MAX_DIGITS && !rc) rc = settle(x, &c, c.settled++);
        if (!more) break;
        sep = s[p];
        p++;
        left_ok = 1;
    }
    while (!rc && c.settled < c.count)
        rc = settle(x, &c, c.settled++);
    if (!rc && c.masking) rc = masker_end(&c.masker, x->out);
    *end = p;
    return rc;
}

int fm_pii_is_card(const char *s, size_t n) {
    if (!s || n < CARD_MIN_DIGITS) return 0;
    /* Whole groups with one kind of separator; then the same test as the scrubber's. */
    group_t ring[RING];
    size_t count = 0, p = 0;
    char sep = 0;
    while (p < n) {
        size_t start = p;
        while (p < n && is_digit_at(s, p))
            p++;
        if (p == start || p - start > CARD_MAX_DIGITS || count == CARD_MAX_DIGITS) return 0;
        ring[count] = (group_t){start, p - start, sep, 1, 0};
        count++;
        if (p == n) break;
        if (!is_separator(s[p]) || (sep && s[p] != sep)) return 0;
        sep = s[p++];
        if (p == n) return 0;
    }
    return count > 0 && card_ending_at(s, ring, count - 1, 0) == 0;
}

static int put_card_mask(const char *s, size_t n, fm_buf_t *out) {
    masker_t m;
    memset(&m, 0, sizeof m);
    int rc = FM_OK;
    for (size_t p = 0; !rc && p < n; p++)
        if (is_digit_at(s, p)) rc = masker_digit(&m, s[p], out);
    return rc ? rc : masker_end(&m, out);
}

/* ---- E-mail addresses -------------------------------------------------------------------- */

/*
 * The end of the longest domain that starts at s[p] (labels joined by dots, at least two, the
 * last one 2 or more letters), or 0 when there is none. A label that starts with 2 or more
 * letters and goes on with digits or dashes ("com2", "com-x") may also end the address after its
 * letters: text glued to an address must not keep it from being masked.
 */
static size_t domain_end(const char *s, size_t n, size_t p) {
    size_t labels = 0, best = 0;
    while (p < n) {
        size_t start = p, letters = 0;
        while (p < n && has_class(s, p, C_ALPHA))
            p++;
        letters = p - start;
        while (p < n && has_class(s, p, C_LABEL))
            p++;
        if (p == start || s[start] == '-') break;
        if (++labels >= 2 && letters >= 2) best = start + letters;
        if (s[p - 1] == '-') break;
        if (!(p + 1 < n && s[p] == '.' && has_class(s, p + 1, C_LABEL))) break;
        p++;
    }
    return best;
}

int fm_pii_is_email(const char *s, size_t n) {
    if (!s || n == 0) return 0;
    const char *at = memchr(s, '@', n);
    if (!at || at == s || s[0] == '.') return 0;
    size_t a = (size_t)(at - s);
    for (size_t p = 0; p < a; p++)
        if (!has_class(s, p, C_LOCAL)) return 0;
    return domain_end(s, n, a + 1) == n;
}

/*
 * At an '@' at position a: replaces the address around it, if there is one, and returns the
 * position to continue from in *next.
 */
static int scrub_email(scrub_t *x, size_t a, size_t *next) {
    const char *s = x->s;
    *next = a + 1;
    size_t local = a;
    while (local > x->copied && has_class(s, local - 1, C_LOCAL))
        local--;
    while (local < a && s[local] == '.')
        local++;
    if (local == a) return FM_OK;
    size_t end = domain_end(s, x->n, a + 1);
    if (!end) return FM_OK;
    int rc = flush_to(x, local);
    if (!rc)
        rc = x->pii ? put_token(x->pii, s + local, end - local, x->out)
                    : fm_buf_append(x->out, "<email>", 7);
    x->copied = end;
    *next = end;
    return rc;
}

/* ---- Values and text --------------------------------------------------------------------- */

int fm_pii_mask_value(const fm_pii_t *pii, const char *s, size_t n, fm_buf_t *out) {
    if (!s && n) return FM_EINVAL;
    if (!s) s = "";
    if (fm_pii_is_card(s, n)) return put_card_mask(s, n, out);
    if (!pii) return fm_buf_append(out, "<pii>", 5);
    return put_token(pii, s, n, out);
}

int fm_pii_scrub(const fm_pii_t *pii, const char *s, size_t n, fm_buf_t *out) {
    if (!s && n) return FM_EINVAL;
    if (!s) s = "";
    /* Room for the common case, where little or nothing is replaced. */
    if (fm_buf_reserve(out, n)) return FM_ENOMEM;
    scrub_t x = {pii, s, n, 0, out};
    int rc = FM_OK;
    size_t i = 0;
    while (!rc) {
        while (i < n && !has_class(s, i, C_SPECIAL))
            i++;
        if (i == n) break;
        if (s[i] == '@')
            rc = scrub_email(&x, i, &i);
        else
            rc = scrub_chain(&x, i, &i);
    }
    if (!rc) rc = flush_to(&x, n);
    /* Terminates the text even when nothing was appended. */
    if (!rc) rc = fm_buf_append(out, "", 0);
    return rc;
}

int fm_pii_suspect(const char *s, size_t n) {
    if (memchr(s, '@', n)) return 1;
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= '0' && c <= '9') {
            if (++digits >= 13) return 1;
        } else if (c != ' ' && c != '-') {
            digits = 0;
        }
    }
    return 0;
}

int fm_pii_scrub_in_place(const fm_pii_t *pii, char *text, size_t size) {
    size_t n = strlen(text);
    if (!fm_pii_suspect(text, n)) return FM_OK;
    fm_buf_t out = FM_BUF_INIT;
    int rc = fm_pii_scrub(pii, text, n, &out);
    if (rc) {
        text[0] = '\0';
    } else {
        size_t k = out.len < size ? out.len : size - 1;
        memcpy(text, out.data, k);
        text[k] = '\0';
    }
    fm_buf_free(&out);
    return rc;
}
