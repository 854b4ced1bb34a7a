/*
 * API keys and roles.
 *
 * A key is 256 bits from the operating system's CSPRNG (libsodium randombytes), shown once as a
 * token "fmk_" + 43 characters of base64url, and stored only as its BLAKE2b-256 hash, beside a
 * short public id ("k_" + 12 hex characters, safe to log), a name, a role, an optional scope of
 * models, who created it, when, and whether it is revoked. Keys live in <home>/keys.db (SQLite,
 * WAL, mode 0600).
 *
 * Authentication hashes the presented token and finds the key by hash in an in-memory table
 * (fm_keyring_t) loaded from the database and reloaded when it changes; hashes are compared with
 * sodium_memcmp (constant time). A token never appears in a log or an error message.
 *
 * Thread-safety: fm_keystore_t calls are serialised inside. fm_keyring_t lookups may run on any
 * number of threads while another thread reloads it.
 */
#ifndef FM_SECURITY_KEYS_H
#define FM_SECURITY_KEYS_H

#include "core/error.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FM_ROLE_NONE = 0,
    FM_ROLE_ADMIN = 1,     /* keys and configuration */
    FM_ROLE_MODELER = 2,   /* upload data and models, train, label staging */
    FM_ROLE_VALIDATOR = 3, /* promote to production (maker-checker) */
    FM_ROLE_CONSUMER = 4,  /* predict and explain, within its scope */
    FM_ROLE_AUDITOR = 5,   /* read the audit log and reports */
} fm_role_t;

const char *fm_role_name(fm_role_t role);
/* Parses "admin", "modeler", "validator", "consumer", "auditor". */
int fm_role_parse(const char *text, fm_role_t *out);

#define FM_KEY_ID_MAX 16     /* "k_" + 12 hex + NUL, with room */
#define FM_KEY_TOKEN_MAX 64  /* "fmk_" + 43 + NUL, with room */
#define FM_KEY_NAME_MAX 64
#define FM_KEY_SCOPE_MAX 1024 /* comma-separated model names; "" = all models */

typedef struct fm_key_info {
    char id[FM_KEY_ID_MAX];
    char name[FM_KEY_NAME_MAX + 1];
    fm_role_t role;
    char scope[FM_KEY_SCOPE_MAX]; /* "" when the key may use every model */
    char created[32];             /* UTC ISO 8601 */
    char created_by[FM_KEY_ID_MAX]; /* id of the key that created it; "cli" from the command line */
    int revoked;
} fm_key_info_t;

typedef struct fm_keystore fm_keystore_t;

/* Opens (creating when absent, mode 0600) <home>/keys.db. */
int fm_keystore_open(const char *home, fm_keystore_t **out, fm_error_t *err);
void fm_keystore_close(fm_keystore_t *ks);

/*
 * Creates a key. scope may be NULL or "" (all models) or "a,b" (model names, each validated).
 * name may be NULL (then the id is the name). token receives the secret (shown once), info the
 * record. created_by names the creator for the audit trail.
 */
int fm_keystore_create(fm_keystore_t *ks, fm_role_t role, const char *scope, const char *name,
                       const char *created_by, char token[FM_KEY_TOKEN_MAX], fm_key_info_t *info,
                       fm_error_t *err);
/*
 * Checks a key name: 1 to FM_KEY_NAME_MAX characters from A-Z a-z 0-9 _ . -, not starting with
 * '.' or '-', neither of the form of a key id ("k_" + 12 hex) nor containing the token prefix
 * "fmk_". FM_EINVAL with a message otherwise (a text with the token prefix is never quoted).
 */
int fm_key_check_name(const char *name, fm_error_t *err);
/*
 * Checks a scope: NULL or "" (every model), or comma-separated model names, each 1 to 64
 * characters from A-Z a-z 0-9 _ . - not starting with '.' or '-', shorter than FM_KEY_SCOPE_MAX
 * in all. FM_EINVAL naming the bad entry otherwise; an entry shaped like an API token is refused
 * without being quoted.
 */
int fm_key_check_scope(const char *scope, fm_error_t *err);
/* Every key, newest first (new array, caller frees). */
int fm_keystore_list(fm_keystore_t *ks, fm_key_info_t **out, size_t *count, fm_error_t *err);
/* Revokes a key by id or name. FM_ENOTFOUND when there is none. Names are unique among active
 * keys only; revoking a key already revoked is FM_OK and changes nothing (not the generation). */
int fm_keystore_revoke(fm_keystore_t *ks, const char *id_or_name, fm_error_t *err);
/* Increases whenever a key is created or revoked (also by other processes): reload when it moves. */
/* When the database cannot be read it returns the last value read, so no reload is triggered. */
int64_t fm_keystore_generation(fm_keystore_t *ks);

/* The authenticated caller of a request. Plain data. */
typedef struct fm_principal {
    char id[FM_KEY_ID_MAX];
    char name[FM_KEY_NAME_MAX + 1];
    fm_role_t role;
    char scope[FM_KEY_SCOPE_MAX];
} fm_principal_t;

typedef struct fm_keyring fm_keyring_t;

int fm_keyring_new(fm_keyring_t **out, fm_error_t *err);
void fm_keyring_free(fm_keyring_t *ring);
/* Replaces the ring's contents with the keystore's active (not revoked) keys. */
int fm_keyring_load(fm_keyring_t *ring, fm_keystore_t *ks, fm_error_t *err);
/* The keystore generation the ring's contents were loaded at; -1 before the first load. */
int64_t fm_keyring_generation(fm_keyring_t *ring);
/* The number of active keys in the ring. */
size_t fm_keyring_count(fm_keyring_t *ring);
/*
 * Authenticates a presented token (n bytes). Returns FM_OK and fills *who, or FM_EDENIED for a
 * malformed, unknown or revoked token (one message for all: "invalid or revoked API key").
 */
int fm_keyring_authenticate(fm_keyring_t *ring, const char *token, size_t n, fm_principal_t *who,
                            fm_error_t *err);
/* 1 when the principal may use model name (empty scope: every model). */
int fm_principal_in_scope(const fm_principal_t *who, const char *model);

#endif
