/*
 * The model registry: named models, each with immutable numbered versions (1, 2, 3, ...) and
 * labels ("staging", "production", or any other name) that point at one version each. It lives in
 * a home directory:
 *
 *   <home>/registry.db               SQLite database (WAL mode): models, versions, labels
 *   <home>/models/<name>/<v>.fmm     the model files, written atomically, never modified (except
 *                                    re-encrypted in place, atomically, by a key rotation)
 *
 * Encryption at rest: with a master key set (fm_registry_set_master_key), model files are stored
 * encrypted (security/crypt.h) under the same path. The recorded sha256 and size are always those
 * of the plaintext model, so they identify the model whatever key (if any) protects it; reading a
 * version (fm_registry_read) decrypts, passes a plaintext file through, and checks the plaintext
 * against the recorded sha256. A registry may hold plaintext and encrypted files side by side.
 *
 * Maker-checker: each version records who uploaded it (uploaded_by: an API key id, or "cli"), so
 * that the promotion to production can be refused to the same principal.
 *
 * Adding a version validates the file completely (fm_model_decode) before anything is stored; the
 * file is written to its final path (temporary file, fsync, rename) and then the row is inserted
 * in a transaction, so a failure at any point leaves the registry as it was (at worst an orphan
 * file that no row points to and the next add of that version overwrites). Version numbers are
 * never reused.
 *
 * Names of models and labels: 1 to 64 characters from [A-Za-z0-9_.-], not starting with '.' or
 * '-'. Anything else is FM_EINVAL naming the text.
 *
 * Thread-safety: one fm_registry_t may be used from many threads at once (calls are serialised
 * inside). Several processes may open the same home (SQLite locking; a busy database is retried
 * for up to 5 s).
 */
#ifndef FM_REGISTRY_H
#define FM_REGISTRY_H

#include "core/buf.h"
#include "core/error.h"
#include "model/model.h"
#include "security/crypt.h"

#include <stddef.h>
#include <stdint.h>

#define FM_REGISTRY_NAME_MAX 64

typedef struct fm_registry fm_registry_t;

/* One version of one model, as listed. Plain data. */
typedef struct fm_version_info {
    char name[FM_REGISTRY_NAME_MAX + 1];
    int64_t version;
    char path[4096];      /* absolute path of the .fmm file (plaintext or encrypted) */
    char sha256[65];      /* hex SHA-256 of the plaintext model (libsodium crypto_hash_sha256) */
    int64_t size;         /* bytes of the plaintext model */
    char created[32];     /* UTC ISO 8601 */
    char task[16];        /* "binary", "multiclass", "regression" */
    char family[32];      /* "logistic", "mlp", ... */
    char labels[256];     /* labels pointing at this version, comma-separated, "" when none */
    char uploaded_by[16]; /* key id of the uploader ("k_" + 12 hex), or "cli" */
} fm_version_info_t;

/* 1 when text is a valid model or label name. */
int fm_registry_valid_name(const char *text);
/* FM_OK when text is a valid name, else FM_EINVAL with a message that shows the text (escaped)
 * and the rules; what ("model", "label") says which kind of name it was meant to be. */
int fm_registry_check_name(const char *what, const char *text, fm_error_t *err);

/*
 * Opens (creating when absent) the registry in home: the directory, models/ and registry.db with
 * its schema. *out is owned by the caller (fm_registry_close). Errors name the path.
 */
int fm_registry_open(const char *home, fm_registry_t **out, fm_error_t *err);
void fm_registry_close(fm_registry_t *registry);

/* The home directory, as an absolute path (borrowed). */
const char *fm_registry_home(const fm_registry_t *registry);

/*
 * Sets the master key (copied; NULL clears it and wipes the copy). While one is set, adds store
 * the model files encrypted with it and reads can decrypt files encrypted with it. Returns FM_OK.
 */
int fm_registry_set_master_key(fm_registry_t *registry, const fm_master_key_t *key);

/*
 * Adds the model file held in data[0..len) as the next version of `name` (creating the model
 * when new). Returns the new version in *version. The bytes must decode as a valid model
 * (fm_model_decode); otherwise FM_EFORMAT with the decoder's message and nothing is stored.
 * Stored encrypted when a master key is set. uploaded_by is "cli".
 */
int fm_registry_add(fm_registry_t *registry, const char *name, const void *data, size_t len,
                    int64_t *version, fm_error_t *err);
/*
 * The same, recording uploaded_by (1 to 15 characters from A-Z a-z 0-9 _ . -: an API key id, or
 * "cli") as the version's uploader; anything else is FM_EINVAL.
 */
int fm_registry_add_as(fm_registry_t *registry, const char *name, const void *data, size_t len,
                       const char *uploaded_by, int64_t *version, fm_error_t *err);
/* The same as fm_registry_add, reading the file at path. */
int fm_registry_add_file(fm_registry_t *registry, const char *name, const char *path,
                         int64_t *version, fm_error_t *err);

/*
 * Appends the plaintext .fmm bytes of a version to out. An encrypted file is decrypted with the
 * registry's master key: FM_EDENIED when none is set ("model 'x' version 3 is encrypted: set
 * FINMAAS_MASTER_KEY_FILE") or when it was encrypted with another key ("... encrypted with a
 * different master key"), FM_EFORMAT when damaged. A plaintext file is passed through. Either
 * way the plaintext must match the recorded sha256, else FM_EFORMAT (the file was replaced). On
 * any error out is left as it was. FM_ENOTFOUND for a missing model or version.
 */
int fm_registry_read(fm_registry_t *registry, const char *name, int64_t version, fm_buf_t *out,
                     fm_error_t *err);

/*
 * Reads (as fm_registry_read, for the version info describes, as listed or got) and decodes a
 * version. *out is owned by the caller (fm_model_free). Errors name model and version.
 */
int fm_registry_load_model(fm_registry_t *registry, const fm_version_info_t *info, fm_model_t **out,
                           fm_error_t *err);

/*
 * Re-encrypts every version file with new_key (required), and every *.enc file under
 * <home>/datasets when that directory exists. For each file: one already under new_key (the key
 * id in its header) is skipped; one under old_key is decrypted and encrypted with new_key; a
 * plaintext file is encrypted with new_key (old_key NULL says the files are plaintext); one under
 * any other key is an error. A version's plaintext is checked against its recorded sha256 before
 * it is re-encrypted, so a replaced file is never blessed with the new key. Each file is replaced
 * atomically (temporary file, fsync, rename, keeping its mode), so an interruption at any moment
 * leaves every file readable with one of the two keys, and running it again finishes the job
 * (stale temporary files of an interrupted rotation are removed). A missing version file is
 * skipped. A file that cannot be rotated does not stop the others: the first error is returned,
 * saying how many failed. *rewritten (may be NULL) counts the files written. The registry's own
 * master key is left as it was. Versions added by another process while this runs may stay under
 * the old key: run it again once those writers use the new key.
 */
int fm_registry_rotate_master(fm_registry_t *registry, const fm_master_key_t *old_key,
                              const fm_master_key_t *new_key, size_t *rewritten, fm_error_t *err);

/*
 * Lists versions: of model `name`, or of every model when name is NULL, ordered by name then
 * version. *out is a new array of *count entries (caller frees with free(); NULL when none).
 */
int fm_registry_list(fm_registry_t *registry, const char *name, fm_version_info_t **out,
                     size_t *count, fm_error_t *err);

/* The names of all models, sorted (a new NULL-terminated array of new strings; free each and
 * the array). */
int fm_registry_models(fm_registry_t *registry, char ***names, size_t *count, fm_error_t *err);

/* One version. FM_ENOTFOUND naming model and version when absent. */
int fm_registry_get(fm_registry_t *registry, const char *name, int64_t version,
                    fm_version_info_t *out, fm_error_t *err);

/*
 * Points label at version of name (replacing where it pointed before). FM_ENOTFOUND when the
 * model or version does not exist; FM_EINVAL for a bad label name.
 */
int fm_registry_set_label(fm_registry_t *registry, const char *name, const char *label,
                          int64_t version, fm_error_t *err);
/* Removes a label. FM_ENOTFOUND when it does not exist. */
int fm_registry_remove_label(fm_registry_t *registry, const char *name, const char *label,
                             fm_error_t *err);

/*
 * The version label points at (*version), or FM_ENOTFOUND. With label NULL: the version labelled
 * "production" when there is one, else the newest version.
 */
int fm_registry_resolve(fm_registry_t *registry, const char *name, const char *label,
                        int64_t *version, fm_error_t *err);

#endif
