/*
 * Tests of API keys (security/keys.h). Keystores live in scratch homes under /tmp. Tokens are
 * checked against their documented shape independently of the code (length, prefix, base64url
 * alphabet, decoding with libsodium back to 32 bytes), and the database file and its WAL are
 * scanned byte by byte to prove that no token, no token body and no raw secret is ever written,
 * while the BLAKE2b-256 hash computed here is. Authentication is exercised with valid, unknown,
 * malformed, truncated, extended, one-character-changed and revoked tokens; scopes, roles, names,
 * listing order, revocation by id and by name, the generation counter across handles and across
 * processes, file modes, damaged databases, eight threads authenticating while another reloads,
 * and the cost of one authentication (printed in ns per call).
 */
#include "core/clock.h"
#include "security/keys.h"
#include "fm_test.h"
#include "fm_test_fs.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN_LEN 47

static fm_keystore_t *open_ok(const char *home) {
    fm_keystore_t *ks = NULL;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_keystore_open(home, &ks, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    return ks;
}

/* Creates a key that must succeed; returns its token in token. */
static void create_ok(fm_keystore_t *ks, fm_role_t role, const char *scope, const char *name,
                      char token[FM_KEY_TOKEN_MAX], fm_key_info_t *info) {
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_keystore_create(ks, role, scope, name, NULL, token, info, &err);
    FM_CHECK_MSG(rc == 0, "create %s: %s", name ? name : "(unnamed)", err.msg);
}

static fm_keyring_t *ring_loaded(fm_keystore_t *ks) {
    fm_keyring_t *ring = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_keyring_new(&ring, &err), 0);
    int rc = fm_keyring_load(ring, ks, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    return ring;
}

static int authenticate(fm_keyring_t *ring, const char *token, size_t n, fm_principal_t *who) {
    fm_error_t err;
    fm_error_clear(&err);
    int rc = fm_keyring_authenticate(ring, token, n, who, &err);
    if (rc) FM_CHECK_STR(err.msg, "invalid or revoked API key");
    return rc;
}

/* The whole file (empty buffer when absent). Caller frees. */
static unsigned char *read_file(const char *path, size_t *len) {
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return calloc(1, 1);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)size + 1);
    if (data && fread(data, 1, (size_t)size, fp) == (size_t)size) *len = (size_t)size;
    fclose(fp);
    return data;
}

/* Concatenated bytes of keys.db, keys.db-wal and keys.db-shm of home. Caller frees. */
static unsigned char *read_database(const char *home, size_t *len) {
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    unsigned char *all = NULL;
    *len = 0;
    for (size_t i = 0; i < 3; i++) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/keys.db%s", home, suffixes[i]);
        size_t n;
        unsigned char *part = read_file(path, &n);
        unsigned char *grown = realloc(all, *len + n + 1);
        FM_CHECK(part != NULL && grown != NULL);
        if (!part || !grown) {
            free(part);
            return grown;
        }
        all = grown;
        memcpy(all + *len, part, n);
        *len += n;
        free(part);
    }
    return all;
}

static int mode_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* Independent check of a token's documented shape: "fmk_" + 43 base64url characters that decode
 * (URL-safe, no padding) to exactly 32 bytes. */
static int token_well_formed(const char *token, unsigned char secret[32]) {
    if (strlen(token) != TOKEN_LEN || strncmp(token, "fmk_", 4) != 0) return 0;
    for (const char *p = token + 4; *p; p++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p))
            return 0;
    size_t n = 0;
    const char *end = NULL;
    if (sodium_base642bin(secret, 32, token + 4, 43, NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return 0;
    return n == 32 && end == token + TOKEN_LEN;
}

static int id_well_formed(const char *id) {
    if (strlen(id) != 14 || strncmp(id, "k_", 2) != 0) return 0;
    for (const char *p = id + 2; *p; p++)
        if (!strchr("0123456789abcdef", *p)) return 0;
    return 1;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- tests ---- */

static void test_roles(void) {
    static const struct {
        const char *text;
        fm_role_t role;
    } roles[] = {
        {"admin", FM_ROLE_ADMIN},         {"modeler", FM_ROLE_MODELER},
        {"validator", FM_ROLE_VALIDATOR}, {"consumer", FM_ROLE_CONSUMER},
        {"auditor", FM_ROLE_AUDITOR},
    };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        fm_role_t r = FM_ROLE_NONE;
        FM_CHECK_INT(fm_role_parse(roles[i].text, &r), 0);
        FM_CHECK_INT(r, roles[i].role);
        FM_CHECK_STR(fm_role_name(roles[i].role), roles[i].text);
    }
    static const char *const bad[] = {"",       "none", "Admin",     "ADMIN", "admin ",
                                      " admin", "root", "consumers", "admi"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fm_role_t r = FM_ROLE_AUDITOR;
        FM_CHECK_INT(fm_role_parse(bad[i], &r), FM_EINVAL);
        FM_CHECK_INT(r, FM_ROLE_AUDITOR);
    }
    fm_role_t r;
    FM_CHECK_INT(fm_role_parse(NULL, &r), FM_EINVAL);
    FM_CHECK_STR(fm_role_name(FM_ROLE_NONE), "none");
    FM_CHECK_STR(fm_role_name((fm_role_t)99), "unknown");
    FM_CHECK_STR(fm_role_name((fm_role_t)-1), "unknown");
}

/*
 * 10,000 keys: every token well formed and distinct, every id well formed and distinct, none of
 * the ids a part of its token's hex hash (ids come from separate random bytes), and the list
 * returns them all. Then the database bytes: no "fmk_" anywhere, no token body nor raw secret of
 * a sample, while the hashes computed here are present (so the scan does see the stored data).
 */
static void test_tokens_unique(void) {
    enum { N = 10000, SAMPLE = 300 };
    char home[PATH_MAX];
    fm_test_fresh_path(home, sizeof home, "unique");
    fm_keystore_t *ks = open_ok(home);
    if (!ks) return;
    char(*tokens)[FM_KEY_TOKEN_MAX] = calloc(N, sizeof *tokens);
    char(*ids)[FM_KEY_ID_MAX] = calloc(N, sizeof *ids);
    char **sorted = calloc(N, sizeof *sorted);
    FM_CHECK(tokens && ids && sorted);
    if (!tokens || !ids || !sorted) return;
    double t0 = fm_clock_seconds();
    int bad_tokens = 0, bad_ids = 0, id_in_hash = 0;
    for (int i = 0; i < N; i++) {
        fm_key_info_t info;
        fm_error_t err;
        int rc = fm_keystore_create(ks, (fm_role_t)(1 + i % 5), NULL, NULL, NULL, tokens[i], &info,
                                    &err);
        if (rc) {
            FM_CHECK_MSG(rc == 0, "create %d: %s", i, err.msg);
            break;
        }
        unsigned char secret[32], hash[32];
        bad_tokens += !token_well_formed(tokens[i], secret);
        bad_ids += !id_well_formed(info.id);
        FM_CHECK_STR(info.name, info.id);
        snprintf(ids[i], sizeof ids[i], "%s", info.id);
        crypto_generichash(hash, 32, (const unsigned char *)tokens[i], TOKEN_LEN, NULL, 0);
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, hash, 32);
        id_in_hash += strstr(hex, info.id + 2) != NULL;
    }
    printf("  %d keys created in %.2f s\n", N, fm_clock_seconds() - t0);
    FM_CHECK_INT(bad_tokens, 0);
    FM_CHECK_INT(bad_ids, 0);
    FM_CHECK_INT(id_in_hash, 0);
    for (int i = 0; i < N; i++)
        sorted[i] = tokens[i];
    qsort(sorted, N, sizeof *sorted, compare_strings);
    int dup = 0;
    for (int i = 1; i < N; i++)
        dup += !strcmp(sorted[i - 1], sorted[i]);
    FM_CHECK_INT(dup, 0);
    for (int i = 0; i < N; i++)
        sorted[i] = ids[i];
    qsort(sorted, N, sizeof *sorted, compare_strings);
    dup = 0;
    for (int i = 1; i < N; i++)
        dup += !strcmp(sorted[i - 1], sorted[i]);
    FM_CHECK_INT(dup, 0);

    fm_key_info_t *list = NULL;
    size_t count = 0;
    fm_error_t err;
    FM_CHECK_INT(fm_keystore_list(ks, &list, &count, &err), 0);
    FM_CHECK_INT(count, N);
    if (count == N) FM_CHECK_STR(list[0].id, ids[N - 1]);
    free(list);

    /* Scan while the connection is open (rows still in the WAL), then after close. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            fm_keystore_close(ks);
            ks = NULL;
        }
        size_t len = 0;
        unsigned char *db = read_database(home, &len);
        FM_CHECK(len > 0);
        FM_CHECK(memmem(db, len, "fmk_", 4) == NULL);
        int leaked = 0, hashes_found = 0;
        for (int i = 0; i < SAMPLE; i++) {
            const char *t = tokens[i * (N / SAMPLE)];
            unsigned char secret[32], hash[32];
            token_well_formed(t, secret);
            crypto_generichash(hash, 32, (const unsigned char *)t, TOKEN_LEN, NULL, 0);
            leaked += memmem(db, len, t + 4, 43) != NULL;
            leaked += memmem(db, len, secret, 32) != NULL;
            hashes_found += memmem(db, len, hash, 32) != NULL;
        }
        FM_CHECK_INT(leaked, 0);
        FM_CHECK_INT(hashes_found, SAMPLE);
        free(db);
    }
    free(tokens);
    free(ids);
    free(sorted);
}

static void test_authenticate(void) {
    char home[PATH_MAX];
    fm_test_fresh_path(home, sizeof home, "auth");
    fm_keystore_t *ks = open_ok(home);
    if (!ks) return;
    char admin[FM_KEY_TOKEN_MAX], consumer[FM_KEY_TOKEN_MAX], other[FM_KEY_TOKEN_MAX];
    fm_key_info_t admin_info, consumer_info, other_info;
    create_ok(ks, FM_ROLE_ADMIN, NULL, "ops", admin, &admin_info);
    create_ok(ks, FM_ROLE_CONSUMER, "credit,fraud", "scoring", consumer, &consumer_info);
    create_ok(ks, FM_ROLE_AUDITOR, "", NULL, other, &other_info);
    fm_keyring_t *ring = ring_loaded(ks);
    FM_CHECK_INT(fm_keyring_count(ring), 3);

    fm_principal_t who;
    memset(&who, 0x5a, sizeof who);
    FM_CHECK_INT(authenticate(ring, admin, strlen(admin), &who), 0);
    FM_CHECK_STR(who.id, admin_info.id);
    FM_CHECK_STR(who.name, "ops");
    FM_CHECK_INT(who.role, FM_ROLE_ADMIN);
    FM_CHECK_STR(who.scope, "");
    FM_CHECK_INT(authenticate(ring, consumer, strlen(consumer), &who), 0);
    FM_CHECK_STR(who.id, consumer_info.id);
    FM_CHECK_STR(who.name, "scoring");
    FM_CHECK_INT(who.role, FM_ROLE_CONSUMER);
    FM_CHECK_STR(who.scope, "credit,fraud");
    FM_CHECK_INT(authenticate(ring, other, strlen(other), &who), 0);
    FM_CHECK_STR(who.name, other_info.id);
    FM_CHECK_INT(who.role, FM_ROLE_AUDITOR);
    /* A token that is not NUL-terminated: only n bytes count. */
    char padded[64];
    memcpy(padded, admin, TOKEN_LEN);
    memset(padded + TOKEN_LEN, 'A', sizeof padded - TOKEN_LEN);
    FM_CHECK_INT(authenticate(ring, padded, TOKEN_LEN, &who), 0);
    FM_CHECK_INT(fm_keyring_authenticate(ring, admin, TOKEN_LEN, NULL, NULL), 0);

    /* Unknown: well formed, never created. */
    char unknown[FM_KEY_TOKEN_MAX] = "fmk_";
    unsigned char random[32];
    randombytes_buf(random, sizeof random);
    sodium_bin2base64(unknown + 4, sizeof unknown - 4, random, sizeof random,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    FM_CHECK_INT(authenticate(ring, unknown, strlen(unknown), &who), FM_EDENIED);
    FM_CHECK_INT(fm_keyring_authenticate(ring, unknown, TOKEN_LEN, &who, NULL), FM_EDENIED);

    /* Malformed. */
    char buf[128];
    static const char *const malformed[] = {
        "",
        "fmk_",
        "fmk",
        "Bearer",
        "FMK_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "fmk-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "fmk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        "fmk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/",
        "fmk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "fmk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ",
        "fmk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        "fmk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\xc3",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        FM_CHECK_INT(authenticate(ring, malformed[i], strlen(malformed[i]), &who), FM_EDENIED);
    FM_CHECK_INT(fm_keyring_authenticate(ring, NULL, 0, &who, NULL), FM_EDENIED);
    FM_CHECK_INT(fm_keyring_authenticate(NULL, admin, TOKEN_LEN, &who, NULL), FM_EDENIED);
    /* Embedded NUL, leading space, trailing characters, doubled token. */
    memcpy(buf, admin, TOKEN_LEN);
    buf[20] = '\0';
    FM_CHECK_INT(authenticate(ring, buf, TOKEN_LEN, &who), FM_EDENIED);
    snprintf(buf, sizeof buf, " %s", admin);
    FM_CHECK_INT(authenticate(ring, buf, strlen(buf), &who), FM_EDENIED);
    snprintf(buf, sizeof buf, "%s\n", admin);
    FM_CHECK_INT(authenticate(ring, buf, strlen(buf), &who), FM_EDENIED);
    snprintf(buf, sizeof buf, "%sA", admin);
    FM_CHECK_INT(authenticate(ring, buf, strlen(buf), &who), FM_EDENIED);
    snprintf(buf, sizeof buf, "%s%s", admin, admin);
    FM_CHECK_INT(authenticate(ring, buf, strlen(buf), &who), FM_EDENIED);
    /* Every truncation. */
    int accepted = 0;
    for (size_t n = 0; n < TOKEN_LEN; n++)
        accepted += authenticate(ring, admin, n, &who) == 0;
    FM_CHECK_INT(accepted, 0);
    /* Every single character changed to every other base64url character. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    accepted = 0;
    int tried = 0;
    for (size_t pos = 0; pos < TOKEN_LEN; pos++) {
        for (const char *a = alphabet; *a; a++) {
            if (*a == admin[pos]) continue;
            memcpy(buf, admin, TOKEN_LEN + 1);
            buf[pos] = *a;
            accepted += authenticate(ring, buf, TOKEN_LEN, &who) == 0;
            tried++;
        }
    }
    FM_CHECK_INT(accepted, 0);
    FM_CHECK(tried > 40 * 60);
    /* The denial message never carries the token. */
    fm_error_t err;
    fm_keyring_authenticate(ring, unknown, TOKEN_LEN, &who, &err);
    FM_CHECK(strstr(err.msg, "fmk_") == NULL && strstr(err.msg, unknown + 4) == NULL);

    /* Revoked: valid until the ring is reloaded, denied after. */
    FM_CHECK_INT(fm_keystore_revoke(ks, "scoring", &err), 0);
    FM_CHECK_INT(authenticate(ring, consumer, TOKEN_LEN, &who), 0);
    FM_CHECK(fm_keystore_generation(ks) != fm_keyring_generation(ring));
    FM_CHECK_INT(fm_keyring_load(ring, ks, &err), 0);
    FM_CHECK_INT(fm_keyring_generation(ring), fm_keystore_generation(ks));
    FM_CHECK_INT(fm_keyring_count(ring), 2);
    FM_CHECK_INT(authenticate(ring, consumer, TOKEN_LEN, &who), FM_EDENIED);
    FM_CHECK_INT(authenticate(ring, admin, TOKEN_LEN, &who), 0);
    /* ... also through a fresh handle and ring, as another process would load it. */
    fm_keystore_t *again = open_ok(home);
    fm_keyring_t *ring2 = again ? ring_loaded(again) : NULL;
    if (ring2) {
        FM_CHECK_INT(authenticate(ring2, consumer, TOKEN_LEN, &who), FM_EDENIED);
        FM_CHECK_INT(authenticate(ring2, other, TOKEN_LEN, &who), 0);
    }
    fm_keyring_free(ring2);
    fm_keystore_close(again);

    /* An empty ring denies everything. */
    fm_keyring_t *empty = NULL;
    FM_CHECK_INT(fm_keyring_new(&empty, &err), 0);
    FM_CHECK_INT(fm_keyring_generation(empty), -1);
    FM_CHECK_INT(fm_keyring_count(empty), 0);
    FM_CHECK_INT(authenticate(empty, admin, TOKEN_LEN, &who), FM_EDENIED);
    fm_keyring_free(empty);
    fm_keyring_free(NULL);
    fm_keyring_free(ring);
    fm_keystore_close(ks);
    fm_keystore_close(NULL);
}

static void test_scope(void) {
    fm_error_t err;
    static const char *const good[] = {"",        "credit",        "credit,fraud", "a,b,c",
                                       "A_1.x-y", "credit,credit", "0model",       "_x"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = fm_key_check_scope(good[i], &err);
        FM_CHECK_MSG(rc == 0, "'%s': %s", good[i], err.msg);
    }
    FM_CHECK_INT(fm_key_check_scope(NULL, &err), 0);
    static const char *const bad[] = {",",  "a,",        ",a",        "a,,b", "a b",   " a",
                                      "a,", ".hidden",   "-x",        "a,-x", "a/b",   "../x",
                                      "*",  "credit;ok", "h\xc3\xa9", "a\nb", "a,\tb", "a,b "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fm_error_clear(&err);
        FM_CHECK_INT(fm_key_check_scope(bad[i], &err), FM_EINVAL);
        FM_CHECK(err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL);
    }
    FM_CHECK_INT(fm_key_check_scope("a,.hidden", &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "'.hidden'") != NULL);
    /* Model names of 64 characters pass, 65 do not; the whole scope must stay under 1024. */
    char name[80];
    memset(name, 'm', 64);
    name[64] = '\0';
    FM_CHECK_INT(fm_key_check_scope(name, &err), 0);
    name[64] = 'm';
    name[65] = '\0';
    FM_CHECK_INT(fm_key_check_scope(name, &err), FM_EINVAL);
    char scope[FM_KEY_SCOPE_MAX + 8];
    memset(scope, 'x', sizeof scope);
    for (size_t i = 10; i < sizeof scope; i += 11)
        scope[i] = ',';
    scope[FM_KEY_SCOPE_MAX - 1] = '\0'; /* 1023 characters */
    if (scope[FM_KEY_SCOPE_MAX - 2] == ',') scope[FM_KEY_SCOPE_MAX - 2] = 'x';
    FM_CHECK_INT(fm_key_check_scope(scope, &err), 0);
    scope[FM_KEY_SCOPE_MAX - 1] = 'x';
    scope[FM_KEY_SCOPE_MAX] = '\0'; /* 1024 */
    FM_CHECK_INT(fm_key_check_scope(scope, &err), FM_EINVAL);
    /* A token pasted into a scope is never quoted. */
    char pasted[128];
    snprintf(pasted, sizeof pasted, "credit,fmk_%s", "secretsecretsecretsecretsecretsecretsecrets");
    FM_CHECK_INT(fm_key_check_scope(pasted, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "secretsecret") == NULL && strstr(err.msg, "token") != NULL);
    FM_CHECK_INT(fm_key_check_scope("credit,fmk_model", &err), 0); /* a model name, not a token */

    /* Membership: exact names only; empty scope means every model. */
    fm_principal_t who;
    memset(&who, 0, sizeof who);
    snprintf(who.scope, sizeof who.scope, "credit,fraud.v2,x");
    FM_CHECK_INT(fm_principal_in_scope(&who, "credit"), 1);
    FM_CHECK_INT(fm_principal_in_scope(&who, "fraud.v2"), 1);
    FM_CHECK_INT(fm_principal_in_scope(&who, "x"), 1);
    static const char *const outside[] = {"cred", "credit2", "Credit", "fraud",
                                          "v2",   "",        ",",      "credit,fraud.v2",
                                          "xx",   "fraud.v", "redit"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
        FM_CHECK_MSG(!fm_principal_in_scope(&who, outside[i]), "'%s' is in scope", outside[i]);
    FM_CHECK_INT(fm_principal_in_scope(&who, NULL), 0);
    FM_CHECK_INT(fm_principal_in_scope(NULL, "credit"), 0);
    who.scope[0] = '\0';
    FM_CHECK_INT(fm_principal_in_scope(&who, "anything"), 1);

    /* Through a key: the principal carries the scope; a bad scope creates nothing. */
    char home[PATH_MAX];
    fm_test_fresh_path(home, sizeof home, "scope");
    fm_keystore_t *ks = open_ok(home);
    if (!ks) return;
    char token[FM_KEY_TOKEN_MAX];
    create_ok(ks, FM_ROLE_CONSUMER, "credit", "c", token, NULL);
    int64_t g = fm_keystore_generation(ks);
    strcpy(token, "untouched");
    FM_CHECK_INT(fm_keystore_create(ks, FM_ROLE_CONSUMER, "credit,", "d", NULL, token, NULL, &err),
                 FM_EINVAL);
    FM_CHECK_STR(token, "");
    FM_CHECK_INT(fm_keystore_generation(ks), g);
    fm_keyring_t *ring = ring_loaded(ks);
    create_ok(ks, FM_ROLE_CONSUMER, "credit", "c2", token, NULL);
    FM_CHECK_INT(fm_keyring_load(ring, ks, &err), 0);
    FM_CHECK_INT(authenticate(ring, token, strlen(token), &who), 0);
    FM_CHECK_INT(fm_principal_in_scope(&who, "credit"), 1);
    FM_CHECK_INT(fm_principal_in_scope(&who, "fraud"), 0);
    fm_keyring_free(ring);
    fm_keystore_close(ks);
}

static void test_names(void) {
    fm_error_t err;
    static const char *const good[] = {"ops",           "ci-deploy",      "team.risk_2",
                                       "k_1",           "K_0123456789ab", "k_0123456789abc",
                                       "k_0123456789aG"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = fm_key_check_name(good[i], &err);
        FM_CHECK_MSG(rc == 0, "'%s': %s", good[i], err.msg);
    }
    static const char *const bad[] = {
        "", ".x", "-x", "a b", "a/b", "a,b", "k_0123456789ab", "h\xc3\xa9", "x\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        FM_CHECK_INT(fm_key_check_name(bad[i], &err), FM_EINVAL);
    FM_CHECK_INT(fm_key_check_name(NULL, &err), FM_EINVAL);
    char longname[80];
    memset(longname, 'n', sizeof longname);
    longname[64] = '\0';
    FM_CHECK_INT(fm_key_check_name(longname, &err), 0);
    longname[64] = 'n';
    longname[65] = '\0';
    FM_CHECK_INT(fm_key_check_name(longname, &err), FM_EINVAL);
    FM_CHECK_INT(fm_key_check_name("fmk_AAAAsecretpart", &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "secretpart") == NULL);
    FM_CHECK_INT(fm_key_check_name(" fmk_AAAAsecretpart", &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "secretpart") == NULL);
    FM_CHECK_INT(fm_key_check_name("a\x01", &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "\\x01") != NULL);

    char home[PATH_MAX];
    fm_test_fresh_path(home, sizeof home, "names");
    fm_keystore_t *ks = open_ok(home);
    if (!ks) return;
    char token[FM_KEY_TOKEN_MAX];
    fm_key_info_t first, second;
    create_ok(ks, FM_ROLE_MODELER, NULL, "ci", token, &first);
    FM_CHECK_INT(fm_keystore_create(ks, FM_ROLE_ADMIN, NULL, "ci", NULL, token, NULL, &err),
                 FM_EEXIST);
    FM_CHECK(strstr(err.msg, "'ci'") != NULL);
    FM_CHECK_INT(fm_keystore_create(ks, FM_ROLE_NONE, NULL, "x", NULL, token, NULL, &err),
                 FM_EINVAL);
    FM_CHECK_INT(fm_keystore_create(ks, (fm_role_t)9, NULL, "x", NULL, token, NULL, &err),
                 FM_EINVAL);
    FM_CHECK_INT(
        fm_keystore_create(ks, FM_ROLE_ADMIN, NULL, "k_00112233aabb", NULL, token, NULL, &err),
        FM_EINVAL);
    FM_CHECK_INT(fm_keystore_create(ks, FM_ROLE_ADMIN, NULL, "x", "bad creator", token, NULL, &err),
                 FM_EINVAL);
    FM_CHECK_INT(
        fm_keystore_create(ks, FM_ROLE_ADMIN, NULL, "x", "k_0123456789abcdef", token, NULL, &err),
        FM_EINVAL);
    /* A revoked key's name is free again; the two keys stay distinct. */
    FM_CHECK_INT(fm_keystore_revoke(ks, "ci", &err), 0);
    create_ok(ks, FM_ROLE_MODELER, NULL, "ci", token, &second);
    FM_CHECK(strcmp(first.id, second.id) != 0);
    /* The creator is recorded. */
    fm_key_info_t info;
    FM_CHECK_INT(
        fm_keystore_create(ks, FM_ROLE_CONSUMER, NULL, "made", first.id, token, &info, &err), 0);
    FM_CHECK_STR(info.created_by, first.id);
    FM_CHECK_STR(second.created_by, "cli");
    fm_keystore_close(ks);
}

static void test_list_order(void) {
    char home[PATH_MAX];
    fm_test_fresh_path(home, sizeof home, "list");
    fm_keystore_t *ks = open_ok(home);
    if (!ks) return;
    fm_key_info_t *list = NULL;
    size_t count = 7;
    fm_error_t err;
    FM_CHECK_INT(fm_keystore_list(ks, &list, &count, &err), 0);
    FM_CHECK_INT(count, 0);
    FM_CHECK(list == NULL);
    char token[FM_KEY_TOKEN_MAX];
    fm_key_info_t made[6];
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "key%d", i);
        create_ok(ks, (fm_role_t)(1 + i % 5), i % 2 ? "credit" : NULL, name, token, &made[i]);
    }
    FM_CHECK_INT(fm_keystore_revoke(ks, made[2].id, &err), 0);
    FM_CHECK_INT(fm_keystore_list(ks, &list, &count, &err), 0);
    FM_CHECK_INT(count, 6);
    for (size_t i = 0; i < count && i < 6; i++) {
        const fm_key_info_t *want = &made[5 - i], *got = &list[i];
        FM_CHECK_STR(got->id, want->id);
        FM_CHECK_STR(got->name, want->name);
        FM_CHECK_INT(got->role, want->role);
        FM_CHECK_STR(got->scope, want->scope);
        FM_CHECK_STR(got->created, want->created);
        FM_CHECK_STR(got->created_by, "cli");
        FM_CHECK_INT(got->revoked, 5 - i == 2);
        FM_CHECK_INT(strlen(got->created), 20);
        FM_CHECK(got->created[19] == 'Z' && got->created[10] == 'T');
    }
    free(list);
    fm_keystore_close(ks);
}

static void test_revoke(void) {
    char home[PATH_MAX];
    fm_test_fresh_path(home, sizeof home, "revoke");
    fm_keystore_t *ks = open_ok(home);
    if (!ks) return;
    char t1[FM_KEY_TOKEN_MAX], t2[FM_KEY_TOKEN_MAX], t3[FM_KEY_TOKEN_MAX];
    fm_key_info_t k1, k2, k3;
    create_ok(ks, FM_ROLE_CONSUMER, NULL, "one", t1, &k1);
    create_ok(ks, FM_ROLE_CONSUMER, NULL, "two", t2, &k2);
    create_ok(ks, FM_ROLE_CONSUMER, NULL, NULL, t3, &k3);
    fm_keyring_t *ring = ring_loaded(ks);
    fm_error_t err;
    fm_principal_t who;
    int64_t g = fm_keystore_generation(ks);
    FM_CHECK_INT(fm_keystore_revoke(ks, k1.id, &err), 0); /* by id */
    FM_CHECK_INT(fm_keystore_generation(ks), g + 1);
    FM_CHECK_INT(fm_keystore_revoke(ks, "two", &err), 0); /* by name */
    FM_CHECK_INT(fm_keystore_generation(ks), g + 2);
    /* Again: nothing changes, no error, no new generation. */
    FM_CHECK_INT(fm_keystore_revoke(ks, "two", &err), 0);
    FM_CHECK_INT(fm_keystore_revoke(ks, k1.id, &err), 0);
    FM_CHECK_INT(fm_keystore_generation(ks), g + 2);
    FM_CHECK_INT(fm_keystore_revoke(ks, "nobody", &err), FM_ENOTFOUND);
    FM_CHECK(strstr(err.msg, "'nobody'") != NULL);
    FM_CHECK_INT(fm_keystore_revoke(ks, "k_000000000000", &err), FM_ENOTFOUND);
    FM_CHECK_INT(fm_keystore_revoke(ks, "", &err), FM_EINVAL);
    FM_CHECK_INT(fm_keystore_revoke(ks, NULL, &err), FM_EINVAL);
    FM_CHECK_INT(fm_keystore_revoke(ks, t3, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, t3 + 4) == NULL && strstr(err.msg, "fmk_") == NULL);
    FM_CHECK_INT(fm_keystore_revoke(ks, "'; DROP TABLE keys; --", &err), FM_ENOTFOUND);
    FM_CHECK_INT(fm_keystore_generation(ks), g + 2);
    FM_CHECK_INT(fm_keyring_load(ring, ks, &err), 0);
    FM_CHECK_INT(authenticate(ring, t1, TOKEN_LEN, &who), FM_EDENIED);
    FM_CHECK_INT(authenticate(ring, t2, TOKEN_LEN, &who), FM_EDENIED);
    FM_CHECK_INT(authenticate(ring, t3, TOKEN_LEN, &who), 0);
    /* The unnamed key's name is its id: revoking by either works. */
    FM_CHECK_INT(fm_keystore_revoke(ks, k3.name, &err), 0);
    FM_CHECK_INT(fm_keyring_load(ring, ks, &err), 0);
    FM_CHECK_INT(fm_keyring_count(ring), 0);
    fm_key_info_t *list = NULL;
    size_t count = 0;
    FM_CHECK_INT(fm_keystore_list(ks, &list, &count, &err), 0);
    FM_CHECK_INT(count, 3);
    for (size_t i = 0; i < count; i++)
        FM_CHECK_INT(list[i].revoked, 1);
    free(list);
    fm_keyring_free(ring);
    fm_keystore_close(ks);
}

/* The generation moves with every create and revoke, seen by a second handle and by a child
 * process's changes. */
static void test_generation(void) {
    char home[PATH_MAX];
    fm_test_fresh_path(home, sizeof home, "generation");
    fm_keystore_t *a = open_ok(home);
    fm_keystore_t *b = open_ok(home);
    if (!a || !b) return;
    fm_error_t err;
    char token[FM_KEY_TOKEN_MAX];
    fm_key_info_t info;
    int64_t g0 = fm_keystore_generation(a);
    FM_CHECK_INT(g0, 0);
    FM_CHECK_INT(fm_keystore_generation(b), g0);
    create_ok(a, FM_ROLE_ADMIN, NULL, "x", token, &info);
    FM_CHECK_INT(fm_keystore_generation(a), g0 + 1);
    FM_CHECK_INT(fm_keystore_generation(b), g0 + 1);
    FM_CHECK_INT(fm_keystore_revoke(b, "x", &err), 0);
    FM_CHECK_INT(fm_keystore_generation(a), g0 + 2);
    FM_CHECK_INT(fm_keystore_generation(b), g0 + 2);
    /* A ring loaded through b authenticates a key created through a after a reload. */
    fm_keyring_t *ring = ring_loaded(b);
    FM_CHECK_INT(fm_keyring_generation(ring), g0 + 2);
    create_ok(a, FM_ROLE_CONSUMER, NULL, "y", token, &info);
    FM_CHECK(fm_keystore_generation(b) != fm_keyring_generation(ring));
    FM_CHECK_INT(fm_keyring_load(ring, b, &err), 0);
    fm_principal_t who;
    FM_CHECK_INT(authenticate(ring, token, TOKEN_LEN, &who), 0);
    FM_CHECK_STR(who.name, "y");

    /* Another process: three creates and a revoke. */
    int64_t before = fm_keystore_generation(b);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fm_keystore_t *ks = NULL;
        int ok = fm_keystore_open(home, &ks, NULL) == 0;
        char t[FM_KEY_TOKEN_MAX];
        for (int i = 0; ok && i < 3; i++)
            ok = fm_keystore_create(ks, FM_ROLE_CONSUMER, NULL, NULL, NULL, t, NULL, NULL) == 0;
        if (ok) ok = fm_keystore_revoke(ks, "y", NULL) == 0;
        fm_keystore_close(ks);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    FM_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    FM_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FM_CHECK_INT(fm_keystore_generation(b), before + 4);
    FM_CHECK_INT(fm_keystore_generation(a), before + 4);
    FM_CHECK_INT(fm_keyring_load(ring, b, &err), 0);
    FM_CHECK_INT(fm_keyring_count(ring), 3);
    FM_CHECK_INT(authenticate(ring, token, TOKEN_LEN, &who), FM_EDENIED);
    fm_keyring_free(ring);
    fm_keystore_close(a);
    fm_keystore_close(b);
}

static void test_file_mode(void) {
    char home[PATH_MAX], path[PATH_MAX + 16];
    fm_test_fresh_path(home, sizeof home, "mode");
    /* Even with a permissive umask the database and its WAL files are private. */
    mode_t old = umask(0);
    fm_keystore_t *ks = open_ok(home);
    umask(old);
    if (!ks) return;
    char token[FM_KEY_TOKEN_MAX];
    create_ok(ks, FM_ROLE_ADMIN, NULL, NULL, token, NULL);
    snprintf(path, sizeof path, "%s/keys.db", home);
    FM_CHECK_INT(mode_of(path), 0600);
    snprintf(path, sizeof path, "%s/keys.db-wal", home);
    FM_CHECK_INT(mode_of(path), 0600);
    snprintf(path, sizeof path, "%s/keys.db-shm", home);
    FM_CHECK_INT(mode_of(path), 0600);
    fm_keystore_close(ks);
    /* A keys.db loosened by hand is narrowed again on open. */
    snprintf(path, sizeof path, "%s/keys.db", home);
    FM_CHECK_INT(chmod(path, 0644), 0);
    ks = open_ok(home);
    FM_CHECK_INT(mode_of(path), 0600);
    fm_keystore_close(ks);

    /* A symbolic link in place of keys.db is refused. */
    char linked[PATH_MAX], target[PATH_MAX + 16];
    fm_test_fresh_path(linked, sizeof linked, "linked");
    FM_CHECK_INT(mkdir(linked, 0700), 0);
    snprintf(target, sizeof target, "%s/keys.db", linked);
    FM_CHECK_INT(symlink(path, target), 0);
    fm_error_t err;
    FM_CHECK_INT(fm_keystore_open(linked, &ks, &err), FM_EDENIED);
    FM_CHECK(strstr(err.msg, "symbolic link") != NULL);
    FM_CHECK(ks == NULL);
    /* A home that is a file; an empty home. */
    char file[PATH_MAX];
    fm_test_fresh_path(file, sizeof file, "plainfile");
    FILE *fp = fopen(file, "w");
    if (fp) fclose(fp);
    FM_CHECK_INT(fm_keystore_open(file, &ks, &err), FM_EIO);
    FM_CHECK(strstr(err.msg, "plainfile") != NULL);
    FM_CHECK_INT(fm_keystore_open("", &ks, &err), FM_EINVAL);
    /* A nested home is created. */
    char nested[PATH_MAX];
    fm_test_fresh_path(nested, sizeof nested, "deep");
    strncat(nested, "/a/b", sizeof nested - strlen(nested) - 1);
    ks = open_ok(nested);
    fm_keystore_close(ks);
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    FM_CHECK(fp != NULL);
    if (!fp) return;
    FM_CHECK(fwrite(data, 1, len, fp) == len);
    fclose(fp);
}

static void exec_sql(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    FM_CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    FM_CHECK_MSG(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static void test_damaged(void) {
    char home[PATH_MAX], path[PATH_MAX + 16];
    fm_keystore_t *ks = NULL;
    fm_error_t err;
    /* Random bytes. */
    fm_test_fresh_path(home, sizeof home, "garbage");
    FM_CHECK_INT(mkdir(home, 0700), 0);
    snprintf(path, sizeof path, "%s/keys.db", home);
    unsigned char noise[4096];
    randombytes_buf(noise, sizeof noise);
    write_bytes(path, noise, sizeof noise);
    FM_CHECK_INT(fm_keystore_open(home, &ks, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "not a finmaas keys database") != NULL);
    /* Another application's SQLite file. */
    fm_test_fresh_path(home, sizeof home, "foreign");
    FM_CHECK_INT(mkdir(home, 0700), 0);
    snprintf(path, sizeof path, "%s/keys.db", home);
    exec_sql(path, "CREATE TABLE models(name TEXT); PRAGMA user_version = 1;");
    FM_CHECK_INT(fm_keystore_open(home, &ks, &err), FM_EFORMAT);
    FM_CHECK(strstr(err.msg, "not a finmaas keys database") != NULL);
    /* A newer schema. */
    fm_test_fresh_path(home, sizeof home, "newer");
    ks = open_ok(home);
    fm_keystore_close(ks);
    snprintf(path, sizeof path, "%s/keys.db", home);
    exec_sql(path, "PRAGMA user_version = 7;");
    FM_CHECK_INT(fm_keystore_open(home, &ks, &err), FM_EUNSUPPORTED);
    FM_CHECK(strstr(err.msg, "version 7") != NULL);
    /* A row damaged by hand: the load fails and the ring keeps what it had. */
    fm_test_fresh_path(home, sizeof home, "badrow");
    ks = open_ok(home);
    if (!ks) return;
    char token[FM_KEY_TOKEN_MAX];
    create_ok(ks, FM_ROLE_CONSUMER, "credit", "good", token, NULL);
    fm_keyring_t *ring = ring_loaded(ks);
    snprintf(path, sizeof path, "%s/keys.db", home);
    static const char *const damage[] = {
        "PRAGMA ignore_check_constraints = ON; UPDATE keys SET scope = 'credit,../x'",
        "PRAGMA ignore_check_constraints = ON; UPDATE keys SET role = 'root'",
        "PRAGMA ignore_check_constraints = ON; UPDATE keys SET hash = x'0102'",
        "PRAGMA ignore_check_constraints = ON; UPDATE keys SET name = ''",
    };
    for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
        exec_sql(path, "BEGIN; CREATE TABLE saved AS SELECT * FROM keys; COMMIT;");
        exec_sql(path, damage[i]);
        fm_error_clear(&err);
        FM_CHECK_INT(fm_keyring_load(ring, ks, &err), FM_EFORMAT);
        FM_CHECK(strstr(err.msg, "damaged") != NULL);
        fm_principal_t who;
        FM_CHECK_INT(authenticate(ring, token, TOKEN_LEN, &who), 0);
        exec_sql(path, "DELETE FROM keys; INSERT INTO keys SELECT * FROM saved; DROP TABLE saved;");
    }
    FM_CHECK_INT(fm_keyring_load(ring, ks, &err), 0);
    fm_keyring_free(ring);
    fm_keystore_close(ks);
}

/* ---- threads ---- */

enum { READERS = 8, STABLE = 64 };

typedef struct {
    fm_keyring_t *ring;
    char (*stable)[FM_KEY_TOKEN_MAX]; /* never revoked: must always authenticate */
    char (*unknown)[FM_KEY_TOKEN_MAX];
    volatile int *stop;
    long calls, wrong;
} reader_t;

static void *reader_main(void *arg) {
    reader_t *r = arg;
    fm_principal_t who;
    size_t i = 0;
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        size_t k = i++ % STABLE;
        if (fm_keyring_authenticate(r->ring, r->stable[k], TOKEN_LEN, &who, NULL) != 0 ||
            who.role != FM_ROLE_CONSUMER)
            r->wrong++;
        if (fm_keyring_authenticate(r->ring, r->unknown[k], TOKEN_LEN, &who, NULL) != FM_EDENIED)
            r->wrong++;
        r->calls += 2;
    }
    return NULL;
}

static void test_concurrent(void) {
    char home[PATH_MAX];
    fm_test_fresh_path(home, sizeof home, "concurrent");
    fm_keystore_t *ks = open_ok(home);
    if (!ks) return;
    static char stable[STABLE][FM_KEY_TOKEN_MAX], unknown[STABLE][FM_KEY_TOKEN_MAX];
    for (int i = 0; i < STABLE; i++) {
        create_ok(ks, FM_ROLE_CONSUMER, NULL, NULL, stable[i], NULL);
        unsigned char random[32];
        randombytes_buf(random, sizeof random);
        memcpy(unknown[i], "fmk_", 4);
        sodium_bin2base64(unknown[i] + 4, FM_KEY_TOKEN_MAX - 4, random, 32,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    fm_keyring_t *ring = ring_loaded(ks);
    volatile int stop = 0;
    reader_t readers[READERS];
    pthread_t threads[READERS];
    for (int t = 0; t < READERS; t++) {
        readers[t] = (reader_t){ring, stable, unknown, &stop, 0, 0};
        FM_CHECK_INT(pthread_create(&threads[t], NULL, reader_main, &readers[t]), 0);
    }
    /* This thread reloads while churning keys: each round adds one and revokes the previous. */
    double end = fm_clock_seconds() + 1.5;
    int reloads = 0, failures = 0;
    fm_error_t err;
    char churn[FM_KEY_TOKEN_MAX];
    fm_key_info_t info, last = {0};
    while (fm_clock_seconds() < end) {
        if (fm_keystore_create(ks, FM_ROLE_ADMIN, NULL, NULL, NULL, churn, &info, &err)) failures++;
        if (last.id[0] && fm_keystore_revoke(ks, last.id, &err)) failures++;
        last = info;
        for (int k = 0; k < 5; k++, reloads++)
            if (fm_keyring_load(ring, ks, &err)) failures++;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    long calls = 0, wrong = 0;
    for (int t = 0; t < READERS; t++) {
        pthread_join(threads[t], NULL);
        calls += readers[t].calls;
        wrong += readers[t].wrong;
    }
    printf("  %d reloads during %ld authentications from %d threads\n", reloads, calls, READERS);
    FM_CHECK_INT(failures, 0);
    FM_CHECK_INT(wrong, 0);
    FM_CHECK(reloads > 10 && calls > 1000);
    FM_CHECK_INT(fm_keyring_count(ring), STABLE + 1);
    fm_keyring_free(ring);
    fm_keystore_close(ks);
}

/* The cost of one authentication with 1,000 keys loaded (printed; bounded generously so that only
 * a pathological slowdown fails, also under sanitizers). */
static void test_speed(void) {
    enum { KEYS = 1000, CALLS = 400000 };
    char home[PATH_MAX];
    fm_test_fresh_path(home, sizeof home, "speed");
    fm_keystore_t *ks = open_ok(home);
    if (!ks) return;
    static char tokens[KEYS][FM_KEY_TOKEN_MAX];
    fm_error_t err;
    for (int i = 0; i < KEYS; i++)
        if (fm_keystore_create(ks, FM_ROLE_CONSUMER, i % 2 ? "credit,fraud" : NULL, NULL, NULL,
                               tokens[i], NULL, &err)) {
            FM_CHECK_MSG(0, "%s", err.msg);
            return;
        }
    fm_keyring_t *ring = ring_loaded(ks);
    fm_principal_t who;
    long ok = 0;
    double t0 = fm_clock_seconds();
    for (int i = 0; i < CALLS; i++)
        ok += fm_keyring_authenticate(ring, tokens[(i * 7) % KEYS], TOKEN_LEN, &who, &err) == 0;
    double known = (fm_clock_seconds() - t0) / CALLS * 1e9;
    char unknown[FM_KEY_TOKEN_MAX];
    memcpy(unknown, tokens[0], sizeof unknown);
    unknown[10] = unknown[10] == 'A' ? 'B' : 'A';
    t0 = fm_clock_seconds();
    for (int i = 0; i < CALLS; i++)
        ok += fm_keyring_authenticate(ring, unknown, TOKEN_LEN, &who, &err) == 0;
    double miss = (fm_clock_seconds() - t0) / CALLS * 1e9;
    t0 = fm_clock_seconds();
    for (int i = 0; i < CALLS; i++)
        ok += fm_keyring_authenticate(ring, "Bearer x", 8, &who, &err) == 0;
    double malformed = (fm_clock_seconds() - t0) / CALLS * 1e9;
    FM_CHECK_INT(ok, CALLS);
    printf("  authenticate: %.0f ns known, %.0f ns unknown, %.0f ns malformed (%d keys)\n", known,
           miss, malformed, KEYS);
    FM_CHECK(known < 20000.0 && miss < 20000.0);
    fm_keyring_free(ring);
    fm_keystore_close(ks);
}

FM_TEST_MAIN(FM_TEST_CASE(test_roles), FM_TEST_CASE(test_scope), FM_TEST_CASE(test_names),
             FM_TEST_CASE(test_authenticate), FM_TEST_CASE(test_list_order),
             FM_TEST_CASE(test_revoke), FM_TEST_CASE(test_generation), FM_TEST_CASE(test_file_mode),
             FM_TEST_CASE(test_damaged), FM_TEST_CASE(test_concurrent), FM_TEST_CASE(test_speed),
             FM_TEST_CASE(test_tokens_unique))
