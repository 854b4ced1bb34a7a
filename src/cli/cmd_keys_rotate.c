/*
 * `finmaas keys rotate-master`: re-encrypts every model file of a registry (and its stored
 * datasets) with a new master key. The current key comes from FINMAAS_MASTER_KEY_FILE (unset:
 * the files are plaintext and get encrypted); the new one from --new-key-file, created first with
 * --generate. Everything that can be checked is checked before the new key file is created, so a
 * mistyped --home or a bad current key leaves nothing behind. After a partial failure a generated
 * key file is kept when some files are already under it (rerun without --generate to finish),
 * and removed when none is.
 */
#include "cli/cli.h"
#include "registry/registry.h"
#include "security/crypt.h"

#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_HOME "./finmaas-home"

static const char usage[] =
    "usage: finmaas keys rotate-master [--home DIR] --new-key-file F [--generate]\n"
    "\n"
    "Re-encrypts every model version file in the registry, and every *.enc file under\n"
    "DIR/datasets, with the master key in F. The current key is read from\n"
    "FINMAAS_MASTER_KEY_FILE; when it is unset the files are taken to be plaintext and are\n"
    "encrypted. Each file is replaced atomically, so an interrupted rotation leaves every file\n"
    "readable with the old or the new key; run it again (without --generate, F now exists)\n"
    "to finish. Stop finmaas serve (or anything else adding models) while it runs.\n"
    "\n"
    "  --home DIR          registry home (default: $FINMAAS_HOME, else " DEFAULT_HOME ")\n"
    "  --new-key-file F    the new master key: 32 bytes, mode 0600 (required)\n"
    "  --generate          create F first with a new random key (F must not exist)\n"
    "\n"
    "Afterwards point FINMAAS_MASTER_KEY_FILE at F.\n";

enum { OPT_HOME = 1000, OPT_NEW_KEY_FILE, OPT_GENERATE };

int fm_cmd_keys_rotate_master(int argc, char **argv) {
    static const char command[] = "keys rotate-master";
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {"new-key-file", required_argument, NULL, OPT_NEW_KEY_FILE},
        {"generate", no_argument, NULL, OPT_GENERATE},
        {NULL, 0, NULL, 0},
    };
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    const char *env_home = getenv("FINMAAS_HOME");
    const char *home = env_home && *env_home ? env_home : DEFAULT_HOME, *new_file = NULL;
    int generate = 0, c;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_HOME:
            home = optarg;
            break;
        case OPT_NEW_KEY_FILE:
            new_file = optarg;
            break;
        case OPT_GENERATE:
            generate = 1;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional(command, argc, argv)) return FM_EXIT_USAGE;
    if (!new_file || !*new_file) return fm_cli_usage_error(command, "--new-key-file is required");

    fm_error_t err;
    fm_error_clear(&err);
    fm_master_key_t old_key, new_key;
    memset(&new_key, 0, sizeof new_key);
    int have_old = 0;
    if (fm_master_key_from_env(&old_key, &have_old, &err)) return fm_cli_fail(command, &err);
    /* A home without registry.db is most likely a mistyped --home: refused, not created. */
    char db[PATH_MAX];
    struct stat st;
    int n = snprintf(db, sizeof db, "%s/registry.db", home);
    int rc = FM_OK;
    if (n < 0 || (size_t)n >= sizeof db || stat(db, &st) != 0)
        rc = fm_error_set(&err, FM_ENOTFOUND, "%s: no registry here (see finmaas %s --help)", home,
                          command);
    int generated = 0;
    if (!rc && generate) generated = (rc = fm_master_key_generate(new_file, &err)) == FM_OK;
    if (!rc) rc = fm_master_key_load(new_file, &new_key, &err);
    fm_registry_t *r = NULL;
    fm_audit_t *log = NULL;
    size_t rewritten = 0;
    int acted = 0;
    if (!rc) rc = fm_registry_open(home, &r, &err);
    if (!rc) rc = fm_cli_audit_open(home, &log, &err);
    if (!rc) {
        acted = 1;
        rc = fm_registry_rotate_master(r, have_old ? &old_key : NULL, &new_key, &rewritten, &err);
    }
    fm_registry_close(r);
    char id[2 * sizeof new_key.id + 1];
    sodium_bin2hex(id, sizeof id, new_key.id, sizeof new_key.id);
    if (acted) {
        /* The key's id (a hash of it), never the key. */
        char detail[160];
        snprintf(detail, sizeof detail, "key_id=%s rewritten=%zu", id, rewritten);
        rc = fm_cli_audit_record(log, "keys.rotate_master", NULL, 0, detail, rc, &err);
    }
    fm_audit_close(log);
    fm_master_key_wipe(&old_key);
    fm_master_key_wipe(&new_key);
    /* A key generated here that protects no file yet is removed again, so that the command can
     * simply be rerun; once a file is under it, it is kept whatever happened. */
    if (rc && generated && rewritten == 0) unlink(new_file);
    if (rc) return fm_cli_fail(command, &err);
    printf("rewrote %zu file(s) with the master key in %s (key id %s)%s\n", rewritten, new_file, id,
           have_old ? "" : "; they were plaintext before");
    printf("now set FINMAAS_MASTER_KEY_FILE=%s for finmaas serve and finmaas models, and restart "
           "the server\n",
           new_file);
    return FM_EXIT_OK;
}
