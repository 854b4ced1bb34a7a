/*
 * Cell values: missing-value tokens, strict number parsing and column type names.
 *
 * fm_value_parse_number runs once per numeric cell of every file read (millions of calls), so it
 * avoids strtod where it can without giving up correct rounding: it checks the grammar itself
 * (sign, digits, point, exponent; nothing else), and when there are at most 19 digits, their
 * value fits in 2^53 and the power of ten is at most 22 in magnitude, it computes the value with
 * one exact conversion and one correctly rounded multiplication or division (Clinger's fast path:
 * both operands are exact doubles, so IEEE arithmetic rounds the exact result once). Everything
 * else (long mantissas, large exponents) goes to strtod on a NUL-terminated copy of the already
 * validated text. fm_value_check_number (internal.h) checks the grammar only, for type inference.
 */
#include "data/data.h"
#include "data/internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Powers of ten that are exact doubles (10^22 < 2^53 * 2^22). */
static const double exact_powers[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#define MANTISSA_LIMIT (UINT64_C(1) << 53)

static void trim(const char **s, size_t *n) {
    const char *p = *s;
    size_t len = *n;
    while (len && (*p == ' ' || *p == '\t'))
        p++, len--;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    *s = p;
    *n = len;
}

int fm_value_is_missing(const char *s, size_t n) {
    trim(&s, &n);
    switch (n) {
    case 0:
        return 1;
    case 2:
        return memcmp(s, "NA", 2) == 0;
    case 3:
        return memcmp(s, "N/A", 3) == 0 || memcmp(s, "n/a", 3) == 0 || memcmp(s, "NaN", 3) == 0 ||
               memcmp(s, "nan", 3) == 0;
    case 4:
        return memcmp(s, "NULL", 4) == 0 || memcmp(s, "null", 4) == 0 ||
               memcmp(s, "None", 4) == 0 || memcmp(s, "<NA>", 4) == 0 || memcmp(s, "#N/A", 4) == 0;
    default:
        return 0;
    }
}

static int equals_ignoring_case(const char *s, size_t n, const char *word) {
    size_t len = strlen(word);
    if (n != len) return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s[i]) != word[i]) return 0;
    return 1;
}

/* strtod on the validated text s[0..n), copied to be NUL-terminated. Kept out of line so that
 * its buffer does not weigh on the fast path's stack frame. */
static __attribute__((noinline)) int parse_slow(const char *s, size_t n, double *out) {
    char small[128];
    char *text = n < sizeof small ? small : malloc(n + 1);
    if (!text) return FM_ENOMEM;
    memcpy(text, s, n);
    text[n] = '\0';
    double v = strtod(text, NULL);
    if (text != small) free(text);
    if (isinf(v)) return FM_ERANGE;
    *out = v;
    return FM_OK;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/*
 * Loads the (up to) 8 bytes at p into x, first byte lowest, with zero bytes past end. Reads only
 * inside [s, end): when fewer than 8 bytes follow p it loads the last 8 bytes of the text and
 * shifts. Returns 0 when the whole text is shorter than 8 bytes.
 */
static inline int load8(const char *s, const char *p, const char *end, uint64_t *x) {
    if (end - p >= 8) {
        memcpy(x, p, 8);
        return 1;
    }
    if (end - s < 8) return 0;
    if (p == end) {
        *x = 0;
        return 1;
    }
    uint64_t last;
    memcpy(&last, end - 8, 8);
    *x = last >> (8 * (8 - (end - p)));
    return 1;
}

/* How many of x's bytes, from the lowest, are ASCII digits. Per byte, without carries between
 * bytes: a byte is a digit when it is below 0x80, at least 0x30 and not at least 0x3a. */
static inline unsigned leading_digits(uint64_t x) {
    uint64_t at_least_30 = ((x | HIGHS) - ONES * 0x30) & HIGHS;
    uint64_t at_least_3a = ((x & ~HIGHS) + ONES * (0x80 - 0x3a)) & HIGHS;
    uint64_t other = ~(at_least_30 & ~at_least_3a & ~x) & HIGHS;
    return other ? (unsigned)__builtin_ctzll(other) >> 3 : 8;
}
#endif

/*
 * Consumes the run of digits at p (within the text s..end), accumulating them into *mantissa
 * when convert is set, and returns the end of the run. When only checking, the run is measured
 * eight bytes at a time where the machine allows: the length of a run then costs no mispredicted
 * loop exit, which is most of what checking a number costs. (Converting eight digits at a time
 * was measured too and gained nothing over this loop.)
 */
static inline __attribute__((always_inline)) const char *
digit_run(const char *s, const char *p, const char *end, uint64_t *mantissa, int convert) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t x;
    while (!convert && load8(s, p, end, &x)) {
        unsigned k = leading_digits(x);
        p += k;
        if (k < 8) return p;
    }
#else
    (void)s;
#endif
    for (; p < end && (unsigned)(*p - '0') < 10; p++)
        if (convert) *mantissa = *mantissa * 10 + (unsigned)(*p - '0');
    return p;
}

/* A decimal number as scanned: value = (-1)^negative * mantissa * 10^exponent. */
typedef struct {
    uint64_t mantissa; /* exact only when digits <= 19 */
    size_t digits;     /* mantissa digits, leading zeros included */
    long exponent;
    int negative;
} decimal_t;

/*
 * Checks the grammar of the trimmed text s[0..n) and, when convert is set, accumulates the
 * digits into d. Returns FM_OK, FM_ERANGE for the infinity words, or FM_EPARSE. Always inlined
 * so that the checking-only copy (fm_value_check_number, for type inference) loses the
 * arithmetic.
 */
static inline __attribute__((always_inline)) int scan_decimal(const char *s, size_t n, decimal_t *d,
                                                              int convert) {
    const char *p = s, *end = s + n;
    int negative = 0;
    if (p < end && (*p == '+' || *p == '-')) negative = *p++ == '-';
    /* All digits go into mantissa; it is exact only when there are at most 19 of them, which the
     * caller checks before using it (unsigned overflow before that is harmless). */
    uint64_t mantissa = 0;
    const char *first = p;
    p = digit_run(s, p, end, &mantissa, convert);
    size_t digits = (size_t)(p - first);
    long exponent = 0; /* decimal exponent of mantissa's last digit */
    if (p < end && *p == '.') {
        const char *fraction = ++p;
        p = digit_run(s, p, end, &mantissa, convert);
        digits += (size_t)(p - fraction);
        exponent = -(long)(p - fraction);
    }
    if (digits == 0) {
        const char *word = s + (s < end && (*s == '+' || *s == '-'));
        size_t len = (size_t)(end - word);
        if (equals_ignoring_case(word, len, "inf") || equals_ignoring_case(word, len, "infinity"))
            return FM_ERANGE;
        return FM_EPARSE;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int exp_negative = 0;
        if (p < end && (*p == '+' || *p == '-')) exp_negative = *p++ == '-';
        if (p == end || (unsigned)(*p - '0') >= 10) return FM_EPARSE;
        long e = 0;
        for (; p < end && (unsigned)(*p - '0') < 10; p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        exponent += exp_negative ? -e : e;
    }
    if (p != end) return FM_EPARSE;
    d->mantissa = mantissa;
    d->digits = digits;
    d->exponent = exponent;
    d->negative = negative;
    return FM_OK;
}

int fm_value_check_number(const char *s, size_t n) {
    decimal_t d;
    trim(&s, &n);
    return scan_decimal(s, n, &d, 0);
}

int fm_value_parse_number(const char *s, size_t n, double *out) {
    decimal_t d;
    trim(&s, &n);
    int rc = scan_decimal(s, n, &d, 1);
    if (rc) return rc;
    if (d.digits <= 19) {
        if (d.mantissa == 0) {
            *out = d.negative ? -0.0 : 0.0;
            return FM_OK;
        }
        if (d.mantissa <= MANTISSA_LIMIT) {
            double v = (double)d.mantissa;
            if (d.exponent >= -22 && d.exponent <= 22) {
                v = d.exponent < 0 ? v / exact_powers[-d.exponent] : v * exact_powers[d.exponent];
                *out = d.negative ? -v : v;
                return FM_OK;
            }
            /* "12e25": move the surplus power into the mantissa while it stays exact. */
            if (d.exponent > 22 && d.exponent <= 22 + 15) {
                uint64_t m = d.mantissa;
                long e = d.exponent;
                while (e > 22 && m <= MANTISSA_LIMIT / 10)
                    m *= 10, e--;
                if (e == 22) {
                    v = (double)m * exact_powers[22];
                    *out = d.negative ? -v : v;
                    return FM_OK;
                }
            }
        }
    }
    return parse_slow(s, n, out);
}

const char *fm_column_type_name(fm_column_type_t type) {
    return type == FM_COLUMN_CATEGORICAL ? "categorical" : "numeric";
}

int fm_column_type_parse(const char *text, fm_column_type_t *out) {
    static const struct {
        const char *name;
        fm_column_type_t type;
    } names[] = {
        {"numeric", FM_COLUMN_NUMERIC},         {"number", FM_COLUMN_NUMERIC},
        {"float", FM_COLUMN_NUMERIC},           {"int", FM_COLUMN_NUMERIC},
        {"categorical", FM_COLUMN_CATEGORICAL}, {"string", FM_COLUMN_CATEGORICAL},
        {"category", FM_COLUMN_CATEGORICAL},
    };
    if (!text) return FM_EINVAL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (equals_ignoring_case(text, strlen(text), names[i].name)) {
            *out = names[i].type;
            return FM_OK;
        }
    }
    return FM_EINVAL;
}
