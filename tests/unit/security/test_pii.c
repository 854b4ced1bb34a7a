/*
 * Tests of personal data masking (security/pii.h): the key file (creation, mode and size checks,
 * a race of several processes), tokens against Python's hashlib, Luhn against published test card
 * numbers checked by an independent Luhn here, masking, e-mails in text, false positives on
 * dates, amounts, addresses, phone numbers, timestamps and versions, a random fuzz with
 * invariants checked by an independent scanner, and the scrubber's speed on normal and
 * pathological text.
 */
#include "core/clock.h"
#include "core/rng.h"
#include "fm_test.h"
#include "security/pii.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];

/* The key 00 01 02 ... 1f, used with hashlib in the expected tokens below. */
static fm_pii_t *counting_key(void) {
    unsigned char key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;
    fm_pii_t *pii = NULL;
    FM_CHECK_INT(fm_pii_new_with_key(key, &pii), 0);
    return pii;
}

/* ---- An independent Luhn: sum the digits of every second digit doubled, from the right ---- */

static int reference_luhn(const char *digits, size_t n) {
    int total = 0;
    for (size_t i = 0; i < n; i++) {
        int d = digits[n - 1 - i] - '0';
        if (i % 2 == 1) d = (2 * d) / 10 + (2 * d) % 10;
        total += d;
    }
    return total % 10 == 0;
}

static int is_alnum_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Scrubs text and returns a new string (caller frees). */
static char *scrub(const fm_pii_t *pii, const char *text) {
    fm_buf_t out = FM_BUF_INIT;
    FM_CHECK_INT(fm_pii_scrub(pii, text, strlen(text), &out), 0);
    return fm_buf_take(&out);
}

static void check_scrub(const fm_pii_t *pii, const char *text, const char *want) {
    char *got = scrub(pii, text);
    FM_CHECK_MSG(got && strcmp(got, want) == 0, "scrub(\"%s\") = \"%s\", want \"%s\"", text,
                 got ? got : "(null)", want);
    free(got);
}

/* ---- Cards ------------------------------------------------------------------------------- */

/* Published test numbers (card schemes' and payment processors' documentation). */
static const char *const test_cards[] = {
    "4111111111111111",    /* Visa */
    "4012888888881881",    /* Visa */
    "4222222222222",       /* Visa, 13 digits */
    "5555555555554444",    /* Mastercard */
    "5105105105105100",    /* Mastercard */
    "2223003122003222",    /* Mastercard 2-series */
    "378282246310005",     /* American Express */
    "371449635398431",     /* American Express */
    "6011111111111117",    /* Discover */
    "6011000990139424",    /* Discover */
    "30569309025904",      /* Diners Club, 14 digits */
    "38520000023237",      /* Diners Club */
    "3530111333300000",    /* JCB */
    "3566002020360505",    /* JCB */
    "6200000000000005",    /* UnionPay */
    "6205500000000000004", /* UnionPay, 19 digits */
};
#define NCARDS (sizeof test_cards / sizeof test_cards[0])

static void test_luhn_test_cards(void) {
    for (size_t c = 0; c < NCARDS; c++) {
        const char *card = test_cards[c];
        size_t n = strlen(card);
        FM_CHECK_MSG(reference_luhn(card, n), "%s fails the reference Luhn", card);
        FM_CHECK_MSG(fm_pii_is_card(card, n) == 1, "%s", card);
        /* Every single-digit error breaks the Luhn sum, so none of these is a card. */
        char near[32];
        int misses = 0;
        for (size_t p = 0; p < n; p++) {
            for (char d = '0'; d <= '9'; d++) {
                if (d == card[p]) continue;
                memcpy(near, card, n + 1);
                near[p] = d;
                FM_CHECK(!reference_luhn(near, n));
                if (fm_pii_is_card(near, n)) misses++;
            }
        }
        FM_CHECK_MSG(misses == 0, "%s: %d one-digit changes read as cards", card, misses);
    }
    /* Luhn-valid, but 12 and 20 digits. */
    FM_CHECK(reference_luhn("411111111117", 12));
    FM_CHECK(!fm_pii_is_card("411111111117", 12));
    FM_CHECK(reference_luhn("41111111111111111115", 20));
    FM_CHECK(!fm_pii_is_card("41111111111111111115", 20));
    /* Layouts with separators. */
    const char *yes[] = {"4111 1111 1111 1111", "4111-1111-1111-1111", "3782 822463 10005",
                         "3056 930902 5904", "6205 5000 0000 0000 004"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        FM_CHECK_MSG(fm_pii_is_card(yes[i], strlen(yes[i])), "%s", yes[i]);
    const char *no[] = {
        "4111  1111 1111 1111", /* double space */
        "4111 1111-1111 1111",  /* mixed separators */
        " 4111111111111111",    /* leading space */
        "4111111111111111 ",    /* trailing space */
        "4111-1111-1111-1111-", /* trailing dash */
        "41 1111 1111 1111 11", /* first group is not 4 digits */
        "4111.1111.1111.1111",  /* dots are not card separators */
        "4111x111111111111",    /* a letter */
        "",
        "4111",
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        FM_CHECK_MSG(!fm_pii_is_card(no[i], strlen(no[i])), "'%s'", no[i]);
    FM_CHECK(!fm_pii_is_card(NULL, 0));
    /* The embedded NUL is a byte like any other: not a digit. */
    FM_CHECK(!fm_pii_is_card("4111111111111111\0", 17));
}

/* The mask computed here: first 6 digits, '*' per middle digit, last 4, separators dropped. */
static void reference_mask(const char *card, char *out) {
    char digits[32];
    size_t n = 0;
    for (const char *p = card; *p; p++)
        if (*p >= '0' && *p <= '9') digits[n++] = *p;
    for (size_t i = 0; i < n; i++)
        out[i] = i < 6 || i >= n - 4 ? digits[i] : '*';
    out[n] = '\0';
}

static void test_masking_format(void) {
    fm_pii_t *pii = counting_key();
    char want[64];
    fm_buf_t out = FM_BUF_INIT;
    for (size_t c = 0; c < NCARDS; c++) {
        fm_buf_reset(&out);
        FM_CHECK_INT(fm_pii_mask_value(pii, test_cards[c], strlen(test_cards[c]), &out), 0);
        reference_mask(test_cards[c], want);
        FM_CHECK_STR(out.data, want);
        FM_CHECK_INT(out.len, strlen(test_cards[c]));
    }
    const char *cases[][2] = {
        {"4111 1111 1111 1111", "411111******1111"},    {"4111-1111-1111-1111", "411111******1111"},
        {"3782 822463 10005", "378282*****0005"},       {"4222222222222", "422222***2222"},
        {"6205500000000000004", "620550*********0004"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fm_buf_reset(&out);
        FM_CHECK_INT(fm_pii_mask_value(pii, cases[i][0], strlen(cases[i][0]), &out), 0);
        FM_CHECK_STR(out.data, cases[i][1]);
        fm_buf_reset(&out);
        FM_CHECK_INT(fm_pii_mask_value(NULL, cases[i][0], strlen(cases[i][0]), &out), 0);
        FM_CHECK_STR(out.data, cases[i][1]);
    }
    /* Anything else becomes its token, or "<pii>" without a key. */
    fm_buf_reset(&out);
    FM_CHECK_INT(fm_pii_mask_value(pii, "Jane Doe", 8, &out), 0);
    FM_CHECK_STR(out.data, "pii:e53939946b1ab992");
    fm_buf_reset(&out);
    FM_CHECK_INT(fm_pii_mask_value(pii, "4111111111111112", 16, &out), 0);
    FM_CHECK(strncmp(out.data, "pii:", 4) == 0);
    fm_buf_reset(&out);
    FM_CHECK_INT(fm_pii_mask_value(NULL, "Jane Doe", 8, &out), 0);
    FM_CHECK_STR(out.data, "<pii>");
    FM_CHECK_INT(fm_pii_mask_value(pii, NULL, 3, &out), FM_EINVAL);
    fm_buf_free(&out);
    fm_pii_free(pii);
}

static void test_cards_in_text(void) {
    const char *cases[][2] = {
        {"order 4111111111111111.", "order 411111******1111."},
        {"id=4111-1111-1111-1111,", "id=411111******1111,"},
        {"4111 1111 1111 1111", "411111******1111"},
        {"card: 3782 822463 10005 declined", "card: 378282*****0005 declined"},
        {"(5555555555554444)", "(555555******4444)"},
        {"-4111111111111111", "-411111******1111"},
        {"a 4111111111111111\n5555555555554444 b", "a 411111******1111\n555555******4444 b"},
        /* Not bounded by non-alphanumerics, or not 13-19 digits: left alone. */
        {"x4111111111111111y", "x4111111111111111y"},
        {"x4111111111111111", "x4111111111111111"},
        {"4111111111111111y", "4111111111111111y"},
        {"n=4111111111111111111111111", "n=4111111111111111111111111"},
        {"411111111117 41111111111111111115", "411111111117 41111111111111111115"},
        /* A card after an unrelated number, a card followed by one. */
        {"ref 42 4111 1111 1111 1111 ok", "ref 42 411111******1111 ok"},
        {"4111 1111 1111 1111 99", "411111******1111 99"},
        {"x4111 4111 1111 1111 1111", "x4111 411111******1111"},
        /* Two cards side by side are masked as one stretch. */
        {"4111 1111 1111 1111 5555 5555 5555 4444", "411111**********************4444"},
        /* The one-digit change is no card; a 4-6-5 layout is. */
        {"4111111111111112 and 371449635398431", "4111111111111112 and 371449*****8431"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_scrub(NULL, cases[i][0], cases[i][1]);
        fm_pii_t *pii = counting_key();
        check_scrub(pii, cases[i][0], cases[i][1]);
        fm_pii_free(pii);
    }
    /* Bytes after an embedded NUL are scrubbed too: the length counts, not the terminator. */
    fm_buf_t out = FM_BUF_INIT;
    FM_CHECK_INT(fm_pii_scrub(NULL,
                              "a\0"
                              "4111111111111111",
                              18, &out),
                 0);
    FM_CHECK_INT(out.len, 18);
    FM_CHECK(out.len == 18 && memcmp(out.data,
                                     "a\0"
                                     "411111******1111",
                                     18) == 0);
    fm_buf_free(&out);
    FM_CHECK_INT(fm_pii_scrub(NULL, NULL, 0, &out), 0);
    FM_CHECK_STR(out.data, "");
    FM_CHECK_INT(fm_pii_scrub(NULL, NULL, 1, &out), FM_EINVAL);
    fm_buf_free(&out);
}

static void test_no_false_positives(void) {
    /* Each is ordinary text; several are built to pass the Luhn check, so only the layout rules
     * keep them apart from cards. */
    FM_CHECK(reference_luhn("2024011520240115", 16));
    FM_CHECK(reference_luhn("12345678901237", 14));
    FM_CHECK(reference_luhn("8613800138002", 13));
    FM_CHECK(reference_luhn("4915123456787", 13));
    const char *texts[] = {
        /* dates and date ranges */
        "2024-01-15",
        "15/01/2024",
        "01.02.2024",
        "period 2024-01-15 2024-01-15 closed",
        "Jan 15, 2024",
        /* ISO timestamps */
        "2024-01-15T10:30:00Z",
        "2024-01-15T10:30:00.123456+01:00",
        "at 2024-01-15 10:30:02.123456 UTC",
        "[2026-11-29T20:53:50.123456Z] request 17 took 12.5 ms",
        /* amounts */
        "USD 1,234,567.89",
        "EUR 12 345 678 901 237,50",
        "amount=1234567.89 fee=0.25",
        "-1234567890.12",
        "1e+15 1.5E-10",
        /* IP addresses */
        "192.168.100.200",
        "10.0.0.1:8080",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "[::1]:443",
        /* phone numbers */
        "+1 (555) 123-4567",
        "+44 20 7946 0958",
        "call +86 138 0013 8002 now",
        "+8613800138002",
        "tel:+4915123456787;",
        "555-123-4567",
        /* versions and identifiers */
        "finmaas 0.1.0",
        "v10.4.1234",
        "2.14.0-rc1+build.20240115",
        "openssl 3.0.11 19 Sep 2023",
        "model credit v12 (sha 4f1a9c2e)",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        check_scrub(NULL, texts[i], texts[i]);
        FM_CHECK_MSG(!fm_pii_is_card(texts[i], strlen(texts[i])), "%s", texts[i]);
        FM_CHECK_MSG(!fm_pii_is_email(texts[i], strlen(texts[i])), "%s", texts[i]);
    }
}

/* ---- Tokens and e-mails ------------------------------------------------------------------ */

static void test_tokens(void) {
    /* Expected: hashlib.blake2b(value, key=bytes(range(32))).hexdigest()[:16] */
    const char *cases[][2] = {
        {"", "pii:4e51e7a913fc8013"},
        {"alice@example.com", "pii:db991e0af62a5b7d"},
        {"Jane Doe", "pii:e53939946b1ab992"},
        {"4111111111111111", "pii:f1d72ecd7c22cae3"},
    };
    fm_pii_t *pii = counting_key();
    fm_buf_t out = FM_BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fm_buf_reset(&out);
        FM_CHECK_INT(fm_pii_token(pii, cases[i][0], strlen(cases[i][0]), &out), 0);
        FM_CHECK_STR(out.data, cases[i][1]);
        /* Appends, and is stable. */
        FM_CHECK_INT(fm_pii_token(pii, cases[i][0], strlen(cases[i][0]), &out), 0);
        FM_CHECK_INT(out.len, 40);
        FM_CHECK(memcmp(out.data, out.data + 20, 20) == 0);
    }
    /* Another key: another token (hashlib with key=b'\xff' * 32). */
    unsigned char other[32];
    memset(other, 0xff, sizeof other);
    fm_pii_t *pii2 = NULL;
    FM_CHECK_INT(fm_pii_new_with_key(other, &pii2), 0);
    fm_buf_reset(&out);
    FM_CHECK_INT(fm_pii_token(pii2, "Jane Doe", 8, &out), 0);
    FM_CHECK_STR(out.data, "pii:19afe806a4868514");
    /* Distinct values, distinct tokens; one byte of difference is enough. */
    fm_buf_t a = FM_BUF_INIT, b = FM_BUF_INIT;
    FM_CHECK_INT(fm_pii_token(pii, "Jane Doe", 8, &a), 0);
    FM_CHECK_INT(fm_pii_token(pii, "Jane Doe ", 9, &b), 0);
    FM_CHECK(strcmp(a.data, b.data) != 0);
    FM_CHECK_INT(fm_pii_token(NULL, "x", 1, &out), FM_EINVAL);
    FM_CHECK_INT(fm_pii_token(pii, NULL, 1, &out), FM_EINVAL);
    fm_buf_free(&a);
    fm_buf_free(&b);
    fm_buf_free(&out);
    fm_pii_free(pii);
    fm_pii_free(pii2);
    fm_pii_free(NULL);
}

static void test_emails(void) {
    const char *yes[] = {"alice@example.com", "bob.smith+tag@mail.bank.co.uk",
                         "x_y%z-1@sub-domain.example.org", "A@B.CD", "1234@numbers.io"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        FM_CHECK_MSG(fm_pii_is_email(yes[i], strlen(yes[i])), "%s", yes[i]);
    const char *no[] = {"alice",           "alice@",
                        "@example.com",    "alice@example",
                        "alice@example.c", "alice@192.168.0.1",
                        "a b@example.com", "a@b@example.com",
                        "a@-x.com",        "a@x-.com",
                        "a@x..com",        "a@.x.com",
                        "a@x.com.",        "a@x.c0m",
                        ".a@x.com",        ""};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        FM_CHECK_MSG(!fm_pii_is_email(no[i], strlen(no[i])), "'%s'", no[i]);

    const char *cases[][2] = {
        {"contact alice@example.com.", "contact <email>."},
        {"<bob.smith+tag@mail.bank.co.uk>", "<<email>>"},
        {"mailto:alice@example.com,bob@example.org;", "mailto:<email>,<email>;"},
        {"...alice@example.com", "...<email>"},
        {"a@b.com.123", "<email>.123"},
        {"user@localhost and v1.2@3 and x@192.168.0.1",
         "user@localhost and v1.2@3 and x@192.168.0.1"},
        {"@@@ a@ @b.com", "@@@ a@ @b.com"},
        {"4111111111111111 alice@example.com", "411111******1111 <email>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_scrub(NULL, cases[i][0], cases[i][1]);
    /* With a key, the address becomes its token. */
    fm_pii_t *pii = counting_key();
    check_scrub(pii, "contact alice@example.com.", "contact pii:db991e0af62a5b7d.");
    char *twice = scrub(pii, "alice@example.com alice@example.com");
    FM_CHECK_STR(twice, "pii:db991e0af62a5b7d pii:db991e0af62a5b7d");
    free(twice);
    fm_pii_free(pii);
}

/* ---- The key file ------------------------------------------------------------------------ */

static void token_of(const fm_pii_t *pii, char out[21]) {
    fm_buf_t b = FM_BUF_INIT;
    FM_CHECK_INT(fm_pii_token(pii, "probe", 5, &b), 0);
    snprintf(out, 21, "%s", b.data ? b.data : "");
    fm_buf_free(&b);
}

static void write_bytes(const char *path, size_t n, mode_t mode) {
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    FM_CHECK(fd >= 0);
    char zeros[64] = {0};
    FM_CHECK(write(fd, zeros, n) == (ssize_t)n);
    close(fd);
    chmod(path, mode);
}

static void test_key_file(void) {
    char home[128], path[160];
    snprintf(home, sizeof home, "%s/home", tmpdir);
    snprintf(path, sizeof path, "%s/pii.key", home);
    FM_CHECK_INT(mkdir(home, 0700), 0);
    fm_pii_t *a = NULL, *b = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_pii_open(home, &a, &err), 0);
    struct stat st;
    FM_CHECK_INT(stat(path, &st), 0);
    FM_CHECK_INT(st.st_size, 32);
    FM_CHECK_INT(st.st_mode & 07777, 0600);
    /* Opened again: the same key, so the same tokens. */
    FM_CHECK_INT(fm_pii_open(home, &b, &err), 0);
    char ta[21], tb[21];
    token_of(a, ta);
    token_of(b, tb);
    FM_CHECK_STR(ta, tb);
    fm_pii_free(b);
    b = NULL;
    /* Only the key file and no temporary file is left in the home. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A %s)\" = pii.key", home);
    FM_CHECK_INT(system(cmd), 0);

    /* Readable by group: refused, naming the file and the mode. */
    FM_CHECK_INT(chmod(path, 0640), 0);
    FM_CHECK_INT(fm_pii_open(home, &b, &err), FM_EDENIED);
    FM_CHECK(b == NULL);
    FM_CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, "0640"), "%s", err.msg);
    FM_CHECK_INT(chmod(path, 0604), 0);
    FM_CHECK_INT(fm_pii_open(home, &b, &err), FM_EDENIED);
    FM_CHECK_INT(chmod(path, 0600), 0);
    /* Wrong sizes. */
    write_bytes(path, 31, 0600);
    FM_CHECK_INT(fm_pii_open(home, &b, &err), FM_EFORMAT);
    FM_CHECK_MSG(strstr(err.msg, "31 bytes") != NULL, "%s", err.msg);
    write_bytes(path, 33, 0600);
    FM_CHECK_INT(fm_pii_open(home, &b, &err), FM_EFORMAT);
    write_bytes(path, 0, 0600);
    FM_CHECK_INT(fm_pii_open(home, &b, &err), FM_EFORMAT);
    /* Not a regular file; a symbolic link. */
    unlink(path);
    FM_CHECK_INT(mkdir(path, 0700), 0);
    FM_CHECK(fm_pii_open(home, &b, &err) < 0);
    FM_CHECK_MSG(strstr(err.msg, path) != NULL, "%s", err.msg);
    rmdir(path);
    char target[192];
    snprintf(target, sizeof target, "%s/elsewhere", tmpdir);
    write_bytes(target, 32, 0600);
    FM_CHECK_INT(symlink(target, path), 0);
    FM_CHECK(fm_pii_open(home, &b, &err) < 0);
    FM_CHECK_MSG(strstr(err.msg, "symbolic link") != NULL, "%s", err.msg);
    unlink(path);
    /* A home that does not exist is named. */
    FM_CHECK_INT(fm_pii_open("/nonexistent/finmaas", &b, &err), FM_EIO);
    FM_CHECK_MSG(strstr(err.msg, "/nonexistent/finmaas/pii.key") != NULL, "%s", err.msg);
    FM_CHECK_INT(fm_pii_open("", &b, &err), FM_EINVAL);
    FM_CHECK(b == NULL);
    fm_pii_free(a);
}

static void test_key_race(void) {
    /* Eight processes open a fresh home at once: all must end with the same key. */
    enum { NPROC = 8 };
    char home[128];
    snprintf(home, sizeof home, "%s/race", tmpdir);
    FM_CHECK_INT(mkdir(home, 0700), 0);
    int fds[NPROC][2];
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        FM_CHECK_INT(pipe(fds[i]), 0);
        pids[i] = fork();
        if (pids[i] == 0) {
            fm_pii_t *pii = NULL;
            fm_error_t err;
            char token[21] = "failed";
            if (fm_pii_open(home, &pii, &err) == 0) {
                fm_buf_t b = FM_BUF_INIT;
                fm_pii_token(pii, "probe", 5, &b);
                snprintf(token, sizeof token, "%s", b.data);
                fm_buf_free(&b);
            }
            fm_pii_free(pii);
            ssize_t w = write(fds[i][1], token, sizeof token);
            _exit(w == (ssize_t)sizeof token ? 0 : 1);
        }
        close(fds[i][1]);
    }
    char first[21] = "";
    for (int i = 0; i < NPROC; i++) {
        char token[21] = "";
        FM_CHECK(read(fds[i][0], token, sizeof token) == (ssize_t)sizeof token);
        close(fds[i][0]);
        int status;
        waitpid(pids[i], &status, 0);
        FM_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        FM_CHECK_MSG(strncmp(token, "pii:", 4) == 0, "process %d: %s", i, token);
        if (i == 0) memcpy(first, token, sizeof first);
        FM_CHECK_STR(token, first);
    }
}

/* ---- Fuzz -------------------------------------------------------------------------------- */

/*
 * The invariant the scrubber promises, checked by a scan written independently of it: no run of
 * 13 to 19 digits bounded by non-alphanumerics passes Luhn, except a phone number ('+' and at most
 * 15 digits).
 */
static int has_card_run(const char *s, size_t n, size_t *where) {
    size_t i = 0;
    while (i < n) {
        if (!(s[i] >= '0' && s[i] <= '9')) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
        size_t len = j - i;
        int bounded = (i == 0 || !is_alnum_char(s[i - 1])) && (j == n || !is_alnum_char(s[j]));
        int phone = i > 0 && s[i - 1] == '+' && len <= 15;
        if (bounded && !phone && len >= 13 && len <= 19 && reference_luhn(s + i, len)) {
            *where = i;
            return 1;
        }
        i = j;
    }
    return 0;
}

/* A 4-4-4-4 card with one kind of separator, bounded, passing Luhn: the common written form. */
static int has_spaced_card(const char *s, size_t n) {
    for (size_t i = 0; i + 19 <= n; i++) {
        if (i > 0 && is_alnum_char(s[i - 1])) continue;
        if (i + 19 < n && is_alnum_char(s[i + 19])) continue;
        char sep = s[i + 4], digits[16];
        size_t k = 0;
        int ok = sep == ' ' || sep == '-';
        for (size_t p = 0; ok && p < 19; p++) {
            char c = s[i + p];
            if (p % 5 == 4)
                ok = c == sep;
            else if (c >= '0' && c <= '9')
                digits[k++] = c;
            else
                ok = 0;
        }
        /* A digit or separator-digit before or after would make it part of a longer chain, which
         * the scrubber may split differently; only isolated ones are the promise. */
        if (ok && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '-')) ok = 0;
        if (ok && i + 19 < n && (s[i + 19] == ' ' || s[i + 19] == '-')) ok = 0;
        if (ok && reference_luhn(digits, 16)) return 1;
    }
    return 0;
}

static void random_text(fm_rng_t *rng, fm_buf_t *b) {
    /* About a third digits, the rest the characters that separate, bound or build candidates. */
    static const char pieces[] = "0123456789012345  --..@@+ab.xZ,;:_%\n";
    size_t len = (size_t)fm_rng_below(rng, 200);
    fm_buf_reset(b);
    while (b->len < len) {
        uint64_t r = fm_rng_below(rng, 100);
        if (r < 8) {
            /* A real card, plain or grouped, half the time set apart by spaces. */
            const char *card = test_cards[fm_rng_below(rng, NCARDS)];
            char sep = " -"[fm_rng_below(rng, 2)];
            int grouped = fm_rng_below(rng, 2) && strlen(card) == 16;
            int apart = (int)fm_rng_below(rng, 2);
            if (apart) fm_buf_putc(b, ' ');
            for (size_t i = 0; card[i]; i++) {
                if (grouped && i && i % 4 == 0) fm_buf_putc(b, sep);
                fm_buf_putc(b, card[i]);
            }
            if (apart) fm_buf_putc(b, ' ');
        } else if (r < 12) {
            fm_buf_puts(b, fm_rng_below(rng, 2) ? "x.y@bank.com" : "a@b.co.uk");
        } else if (r < 15) {
            fm_buf_putc(b, (char)fm_rng_below(rng, 256));
        } else {
            fm_buf_putc(b, pieces[fm_rng_below(rng, sizeof pieces - 1)]);
        }
    }
}

/* Copies text with every token ("pii:" and 16 hex) replaced by "<tok>": a hash's hex digits
 * are not the input's, and must not be mistaken for a card or an address. */
static void normalise_tokens(const fm_buf_t *in, fm_buf_t *out) {
    fm_buf_reset(out);
    size_t i = 0;
    while (i < in->len) {
        int token = i + 20 <= in->len && memcmp(in->data + i, "pii:", 4) == 0;
        for (size_t k = 4; token && k < 20; k++)
            token = strchr("0123456789abcdef", in->data[i + k]) && in->data[i + k];
        if (token) {
            fm_buf_puts(out, "<tok>");
            i += 20;
        } else {
            fm_buf_putc(out, in->data[i++]);
        }
    }
    fm_buf_append(out, "", 0);
}

static void test_fuzz(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 20261129);
    fm_pii_t *pii = counting_key();
    fm_buf_t in = FM_BUF_INIT, out = FM_BUF_INIT, seen = FM_BUF_INIT;
    int failures = 0;
    size_t cards_in = 0;
    for (int i = 0; i < 10000 && failures < 5; i++) {
        random_text(&rng, &in);
        size_t where;
        cards_in += has_card_run(in.data, in.len, &where);
        for (int keyed = 0; keyed < 2; keyed++) {
            fm_buf_reset(&out);
            int rc = fm_pii_scrub(keyed ? pii : NULL, in.data, in.len, &out);
            FM_CHECK_INT(rc, 0);
            FM_CHECK(out.data != NULL && out.data[out.len] == '\0');
            if (rc || !out.data) {
                failures++;
                continue;
            }
            normalise_tokens(&out, &seen);
            int bad =
                has_card_run(seen.data, seen.len, &where) || has_spaced_card(seen.data, seen.len);
            if (bad) {
                failures++;
                FM_CHECK_MSG(!bad, "a card survived (keyed %d):\n  in:  %.*s\n  out: %.*s", keyed,
                             (int)in.len, in.data, (int)out.len, out.data);
            }
            /* No inserted address survives, whatever text is glued to it. (A domain may: in
             * "x.y@bank.coma@b.co.uk" the first address takes the "a" and "@b.co.uk" is left.) */
            if (memmem(seen.data, seen.len, "y@bank.com", 10) ||
                memmem(seen.data, seen.len, "a@b.co", 6)) {
                failures++;
                FM_CHECK_MSG(0, "an e-mail survived:\n  in:  %.*s\n  out: %.*s", (int)in.len,
                             in.data, (int)out.len, out.data);
            }
        }
    }
    printf("  10000 random strings, %zu with a bounded Luhn-valid run in the input\n", cards_in);
    FM_CHECK(cards_in > 1000);
    fm_buf_free(&in);
    fm_buf_free(&seen);
    fm_buf_free(&out);
    fm_pii_free(pii);
}

/* fm_pii_suspect is a sound pre-filter: text it clears is what fm_pii_scrub leaves unchanged;
 * fm_pii_scrub_in_place gives fm_pii_scrub's result, cut to the buffer. */
static void test_suspect(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 20261130);
    fm_pii_t *pii = counting_key();
    fm_buf_t in = FM_BUF_INIT, out = FM_BUF_INIT;
    size_t cleared = 0, changed = 0;
    for (int i = 0; i < 20000; i++) {
        random_text(&rng, &in);
        fm_buf_reset(&out);
        FM_CHECK_INT(fm_pii_scrub(pii, in.data, in.len, &out), 0);
        int same = out.len == in.len && !memcmp(out.data, in.data, in.len);
        changed += !same;
        if (!fm_pii_suspect(in.data, in.len)) {
            cleared++;
            FM_CHECK_MSG(same, "cleared but changed: %.*s", (int)in.len, in.data);
        }
        char buf[64];
        if (memchr(in.data, '\0', in.len)) continue;
        snprintf(buf, sizeof buf, "%.*s", (int)in.len, in.data);
        fm_buf_reset(&out);
        FM_CHECK_INT(fm_pii_scrub(pii, buf, strlen(buf), &out), 0);
        char want[64];
        snprintf(want, sizeof want, "%s", out.data);
        FM_CHECK_INT(fm_pii_scrub_in_place(pii, buf, sizeof buf), 0);
        FM_CHECK_MSG(!strcmp(buf, want), "in place: %s, want %s", buf, want);
    }
    printf("  20000 random strings: %zu cleared by the pre-filter, %zu changed by the scrub\n",
           cleared, changed);
    FM_CHECK(cleared > 200 && changed > 1000);
    FM_CHECK(fm_pii_suspect("a@b", 3) && fm_pii_suspect("4111 1111 1111 1", 16));
    FM_CHECK(!fm_pii_suspect("/v2/models/credit/infer", 23) &&
             !fm_pii_suspect("2026-11-30T00:12:09.123456Z", 27));
    fm_buf_free(&in);
    fm_buf_free(&out);
    fm_pii_free(pii);
}

/* ---- Speed ------------------------------------------------------------------------------- */

/* Scrubs text of n bytes several times and returns MB/s of the fastest round, which is the
 * figure least disturbed by other work on a shared machine. */
static double scrub_speed(const fm_pii_t *pii, const char *label, const char *text, size_t n) {
    fm_buf_t out = FM_BUF_INIT;
    double best = 1e300, start = fm_clock_seconds();
    for (int round = 0; round < 20 && (round < 3 || fm_clock_seconds() - start < 0.5); round++) {
        fm_buf_reset(&out);
        double t0 = fm_clock_seconds();
        FM_CHECK_INT(fm_pii_scrub(pii, text, n, &out), 0);
        double t = fm_clock_seconds() - t0;
        if (t < best) best = t;
    }
    fm_buf_free(&out);
    double mbps = (double)n / (best > 0 ? best : 1e-9) / 1e6;
    printf("  %-44s %8.1f MB/s\n", label, mbps);
    return mbps;
}

static void repeat(fm_buf_t *b, const char *unit, size_t bytes) {
    fm_buf_reset(b);
    while (b->len < bytes)
        fm_buf_puts(b, unit);
}

static void test_speed(void) {
    fm_pii_t *pii = counting_key();
    fm_buf_t text = FM_BUF_INIT;
    /* Log lines as the server writes them, one in eight with an address or a card. */
    fm_rng_t rng;
    fm_rng_seed(&rng, 5);
    while (text.len < (8u << 20)) {
        uint64_t r = fm_rng_below(&rng, 8);
        fm_buf_printf(&text,
                      "2026-11-29T20:53:%02d.%06dZ INFO request %llu POST /v2/models/credit/infer "
                      "200 %d.%03d ms bytes=%d",
                      (int)fm_rng_below(&rng, 60), (int)fm_rng_below(&rng, 1000000),
                      (unsigned long long)fm_rng_below(&rng, 1000000), (int)fm_rng_below(&rng, 50),
                      (int)fm_rng_below(&rng, 1000), (int)fm_rng_below(&rng, 100000));
        if (r == 0) fm_buf_puts(&text, " user=jane.doe@example.com");
        if (r == 1) fm_buf_puts(&text, " card 4111 1111 1111 1111");
        fm_buf_putc(&text, '\n');
    }
    double logs = scrub_speed(pii, "log lines (8 MiB)", text.data, text.len);
    repeat(&text, "The quick brown fox jumps over the lazy dog. ", 8u << 20);
    double prose = scrub_speed(pii, "prose without digits (8 MiB)", text.data, text.len);
    /* Pathological input: every byte starts or continues a candidate. */
    const char *worst[] = {"1 ",     "1-",     "4111 ", "4111 1111 1111 1111 ", "a@", "a.",
                           "a@b.cc", "x1.y2@", "9"};
    double slowest = 1e300;
    for (size_t i = 0; i < sizeof worst / sizeof worst[0]; i++) {
        repeat(&text, worst[i], 2u << 20);
        char label[64];
        snprintf(label, sizeof label, "'%s' repeated (2 MiB)", worst[i]);
        double mbps = scrub_speed(pii, label, text.data, text.len);
        if (mbps < slowest) slowest = mbps;
    }
    /* Linear time: twice the input must not take much more than twice as long. Generous
     * bounds, since a shared machine and the sanitizer build both slow things down. */
    repeat(&text, "4111 1111 1111 1111 ", 1u << 20);
    double small = scrub_speed(pii, "cards, 1 MiB", text.data, text.len);
    repeat(&text, "4111 1111 1111 1111 ", 8u << 20);
    double large = scrub_speed(pii, "cards, 8 MiB", text.data, text.len);
    FM_CHECK_MSG(large > small / 3, "8 MiB at %.1f MB/s, 1 MiB at %.1f MB/s", large, small);
    FM_CHECK(logs > 5 && prose > 5 && slowest > 1);
    fm_buf_free(&text);
    fm_pii_free(pii);
}

int main(int argc, char **argv) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fm_pii_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    static const fm_test_case_t cases[] = {
        FM_TEST_CASE(test_luhn_test_cards),
        FM_TEST_CASE(test_masking_format),
        FM_TEST_CASE(test_cards_in_text),
        FM_TEST_CASE(test_no_false_positives),
        FM_TEST_CASE(test_tokens),
        FM_TEST_CASE(test_emails),
        FM_TEST_CASE(test_key_file),
        FM_TEST_CASE(test_key_race),
        FM_TEST_CASE(test_fuzz),
        FM_TEST_CASE(test_suspect),
        FM_TEST_CASE(test_speed),
    };
    int rc = fm_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) rc = 1;
    return rc;
}
