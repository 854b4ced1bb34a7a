/*
 * `finmaas keys`: API keys from the command line. `create` makes a key with a role and an
 * optional scope of models and prints its token, the only time the token is ever shown; `list`
 * shows the keys (ids, names, roles, scopes, dates, revocation; never tokens or hashes) as a
 * table or JSON; `revoke` revokes a key by id or name; `rotate-master` belongs to encryption at
 * rest and lives in cmd_keys_rotate.c. Keys live in <home>/keys.db: --home, else $FINMAAS_HOME,
 * else ./finmaas-home.
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "security/keys.h"

#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_HOME "./finmaas-home"
#define ROLES        "admin, modeler, validator, consumer or auditor"

static const char usage[] =
    "usage: finmaas keys <subcommand> [options]\n"
    "\n"
    "Manages the API keys of a home. A key is a secret token, shown once when it is created and\n"
    "stored only as a hash, with a role and an optional scope of models.\n"
    "\n"
    "subcommands:\n"
    "  create         create a key and print its token\n"
    "  list           list the keys (never their tokens)\n"
    "  revoke         revoke a key by id or name\n"
    "  rotate-master  re-encrypt stored models and data sets under a new master key\n"
    "\n"
    "Keys live in --home DIR (default: $FINMAAS_HOME, else " DEFAULT_HOME "), file keys.db.\n"
    "finmaas keys <subcommand> --help describes each.\n";

static const char create_usage[] =
    "usage: finmaas keys create [--home DIR] --role ROLE [--models A,B] [--name NAME]\n"
    "\n"
    "Creates an API key and prints its token alone on stdout. This is the only time the token\n"
    "is shown: finmaas keeps only its hash. Store it in a secret manager.\n"
    "\n"
    "  --home DIR     keys home (default: $FINMAAS_HOME, else " DEFAULT_HOME
    "); created when absent\n"
    "  --role ROLE    " ROLES " (required)\n"
    "  --models A,B   comma-separated model names the key may use (default: every model)\n"
    "  --name NAME    a name to find the key by, unique among active keys (default: its id):\n"
    "                 1 to 64 characters from A-Z a-z 0-9 _ . -, not starting with '.' or '-'\n";

static const char list_usage[] =
    "usage: finmaas keys list [--home DIR] [--json]\n"
    "\n"
    "Lists the keys, newest first: id, name, role, scope (* = every model), creation time (UTC),\n"
    "creator (a key id, or cli), revoked. Tokens and their hashes are never shown.\n"
    "\n"
    "  --home DIR     keys home (default: $FINMAAS_HOME, else " DEFAULT_HOME ")\n"
    "  --json         a JSON array of objects instead of a table (scope \"\" = every model)\n";

static const char revoke_usage[] =
    "usage: finmaas keys revoke [--home DIR] ID_OR_NAME\n"
    "\n"
    "Revokes the key with that id (k_...) or name. A running server stops accepting it once it\n"
    "reloads its keys. Revoking a key already revoked changes nothing.\n"
    "\n"
    "  --home DIR     keys home (default: $FINMAAS_HOME, else " DEFAULT_HOME ")\n";

enum { OPT_HOME = 1000, OPT_ROLE, OPT_MODELS, OPT_NAME, OPT_JSON };

static const char *default_home(void) {
    const char *env = getenv("FINMAAS_HOME");
    return env && *env ? env : DEFAULT_HOME;
}

/* fm_cli_no_positional, but an argument that could be a token pasted by mistake is not echoed. */
static int no_positional(const char *command, int argc, char **argv) {
    if (optind >= argc) return 0;
    if (fm_cli_quotable(argv[optind]))
        fm_cli_usage_error(command, "unexpected argument '%s' (see finmaas %s --help)",
                           argv[optind], command);
    else
        fm_cli_usage_error(command, "unexpected argument (see finmaas %s --help)", command);
    return -1;
}

/*
 * Opens the keystore for a command that only reads or revokes: a home without keys.db is an
 * error (most likely a mistyped --home) rather than a new, empty keystore.
 */
static int open_existing(const char *command, const char *home, fm_keystore_t **ks,
                         fm_error_t *err) {
    char db[PATH_MAX];
    struct stat st;
    int n = snprintf(db, sizeof db, "%s/keys.db", home);
    if (n < 0 || (size_t)n >= sizeof db || stat(db, &st) != 0)
        return fm_error_set(err, FM_ENOTFOUND,
                            "%s: no keys here (finmaas keys create makes the first; see finmaas %s "
                            "--help for --home)",
                            home, command);
    return fm_keystore_open(home, ks, err);
}

/* Prints the token and makes sure it reached stdout; a key whose token was lost is revoked. */
static int print_token(fm_keystore_t *ks, const char *token, const char *id, fm_error_t *err) {
    int failed = fputs(token, stdout) < 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0;
    if (!failed) return FM_OK;
    fm_error_t ignored;
    int revoked = fm_keystore_revoke(ks, id, &ignored) == FM_OK;
    return fm_error_set(err, FM_EIO, "cannot write the token to stdout; key %s %s", id,
                        revoked ? "was revoked again" : "could not be revoked: revoke it");
}

static int keys_create(int argc, char **argv) {
    static const char command[] = "keys create";
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {"role", required_argument, NULL, OPT_ROLE},
        {"models", required_argument, NULL, OPT_MODELS},
        {"name", required_argument, NULL, OPT_NAME},
        {NULL, 0, NULL, 0},
    };
    if (fm_cli_wants_help(argc, argv)) {
        fputs(create_usage, stdout);
        return FM_EXIT_OK;
    }
    const char *home = default_home(), *role_text = NULL, *models = NULL, *name = NULL;
    int c;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_HOME:
            home = optarg;
            break;
        case OPT_ROLE:
            role_text = optarg;
            break;
        case OPT_MODELS:
            models = optarg;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (no_positional(command, argc, argv)) return FM_EXIT_USAGE;
    if (!role_text) return fm_cli_usage_error(command, "--role is required (" ROLES ")");
    fm_role_t role;
    if (fm_role_parse(role_text, &role)) {
        if (fm_cli_quotable(role_text))
            return fm_cli_usage_error(command, "unknown role '%s': expected " ROLES, role_text);
        return fm_cli_usage_error(command, "unknown role: expected " ROLES);
    }
    /* An empty list is most likely an unset variable in a script: it must not mean every model. */
    if (models && !*models)
        return fm_cli_usage_error(command, "--models is empty (leave it out for every model)");
    fm_error_t err;
    fm_error_clear(&err);
    /* Checked before the keystore is opened, so that bad input does not create a home. */
    if (fm_key_check_scope(models, &err)) return fm_cli_fail(command, &err);
    if (name && fm_key_check_name(name, &err)) return fm_cli_fail(command, &err);
    fm_keystore_t *ks = NULL;
    char token[FM_KEY_TOKEN_MAX];
    fm_key_info_t info;
    fm_audit_t *log = NULL;
    int rc = fm_keystore_open(home, &ks, &err);
    if (!rc) rc = fm_cli_audit_open(home, &log, &err);
    if (!rc) {
        rc = fm_keystore_create(ks, role, models, name, "cli", token, &info, &err);
        if (!rc) rc = print_token(ks, token, info.id, &err);
        /* The key's id, role and scope are recorded; its token never is. */
        char detail[FM_KEY_SCOPE_MAX + 128];
        snprintf(detail, sizeof detail, "key=%s role=%s scope=%s", rc ? "-" : info.id,
                 fm_role_name(role), models ? models : "*");
        rc = fm_cli_audit_record(log, "keys.create", NULL, 0, detail, rc, &err);
    }
    sodium_memzero(token, sizeof token);
    fm_audit_close(log);
    fm_keystore_close(ks);
    return rc ? fm_cli_fail(command, &err) : FM_EXIT_OK;
}

/* 1 when text may be written to the audit log as a key id or name: their characters only, and
 * nothing that could be (part of) a token. */
static int recordable(const char *text) {
    size_t n = strlen(text);
    if (n == 0 || n > 64 || strstr(text, "fmk_")) return 0;
    return strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* The table: one row per key, columns as wide as their widest cell. */
static void print_table(const fm_key_info_t *k, size_t n) {
    int wid = 2, wname = 4, wrole = 4, wscope = 5, wby = 10;
    for (size_t i = 0; i < n; i++) {
        int len = (int)strlen(k[i].id);
        if (len > wid) wid = len;
        len = (int)strlen(k[i].name);
        if (len > wname) wname = len;
        len = (int)strlen(fm_role_name(k[i].role));
        if (len > wrole) wrole = len;
        len = (int)strlen(k[i].scope);
        if (len > wscope) wscope = len;
        len = (int)strlen(k[i].created_by);
        if (len > wby) wby = len;
    }
    printf("%-*s  %-*s  %-*s  %-*s  %-20s  %-*s  %s\n", wid, "ID", wname, "NAME", wrole, "ROLE",
           wscope, "SCOPE", "CREATED", wby, "CREATED_BY", "REVOKED");
    for (size_t i = 0; i < n; i++)
        printf("%-*s  %-*s  %-*s  %-*s  %-20s  %-*s  %s\n", wid, k[i].id, wname, k[i].name, wrole,
               fm_role_name(k[i].role), wscope, k[i].scope[0] ? k[i].scope : "*", k[i].created, wby,
               k[i].created_by, k[i].revoked ? "yes" : "no");
}

static void json_field(fm_buf_t *b, const char *key, const char *value) {
    fm_buf_printf(b, "\"%s\": ", key);
    fm_buf_json_string(b, value, strlen(value));
}

/* A JSON array, one key object per line. */
static int print_json(const fm_key_info_t *k, size_t n) {
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        fm_buf_puts(&b, i ? ",\n  {" : "\n  {");
        json_field(&b, "id", k[i].id);
        fm_buf_puts(&b, ", ");
        json_field(&b, "name", k[i].name);
        fm_buf_puts(&b, ", ");
        json_field(&b, "role", fm_role_name(k[i].role));
        fm_buf_puts(&b, ", ");
        json_field(&b, "scope", k[i].scope);
        fm_buf_puts(&b, ", ");
        json_field(&b, "created", k[i].created);
        fm_buf_puts(&b, ", ");
        json_field(&b, "created_by", k[i].created_by);
        fm_buf_printf(&b, ", \"revoked\": %s}", k[i].revoked ? "true" : "false");
    }
    int rc = fm_buf_puts(&b, n ? "\n]" : "]");
    if (!rc) puts(b.data);
    fm_buf_free(&b);
    return rc;
}

static int keys_list(int argc, char **argv) {
    static const char command[] = "keys list";
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    if (fm_cli_wants_help(argc, argv)) {
        fputs(list_usage, stdout);
        return FM_EXIT_OK;
    }
    const char *home = default_home();
    int json = 0, c;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_HOME:
            home = optarg;
            break;
        case OPT_JSON:
            json = 1;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (no_positional(command, argc, argv)) return FM_EXIT_USAGE;
    fm_error_t err;
    fm_error_clear(&err);
    fm_keystore_t *ks = NULL;
    fm_key_info_t *keys = NULL;
    size_t n = 0;
    int rc = open_existing(command, home, &ks, &err);
    if (!rc) rc = fm_keystore_list(ks, &keys, &n, &err);
    fm_keystore_close(ks);
    if (!rc && json)
        rc = print_json(keys, n) ? fm_error_set(&err, FM_ENOMEM, "out of memory") : FM_OK;
    else if (!rc)
        print_table(keys, n);
    free(keys);
    return rc ? fm_cli_fail(command, &err) : FM_EXIT_OK;
}

static int keys_revoke(int argc, char **argv) {
    static const char command[] = "keys revoke";
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {NULL, 0, NULL, 0},
    };
    if (fm_cli_wants_help(argc, argv)) {
        fputs(revoke_usage, stdout);
        return FM_EXIT_OK;
    }
    const char *home = default_home();
    int c;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_HOME:
            home = optarg;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return fm_cli_usage_error(command, "expected a key id or name (see finmaas %s --help)",
                                  command);
    const char *which = argv[optind++];
    if (optind < argc) {
        /* The extra argument is not quoted: it could be a token pasted by mistake. */
        return fm_cli_usage_error(command, "expected one key id or name, got %d arguments",
                                  argc - optind + 1);
    }
    fm_error_t err;
    fm_error_clear(&err);
    fm_keystore_t *ks = NULL;
    fm_audit_t *log = NULL;
    int rc = open_existing(command, home, &ks, &err);
    if (!rc) rc = fm_cli_audit_open(home, &log, &err);
    if (!rc) {
        rc = fm_keystore_revoke(ks, which, &err);
        /* The argument is a key id or name; anything else (a pasted token) is not recorded. */
        char detail[160];
        snprintf(detail, sizeof detail, "key=%s",
                 recordable(which) ? which : "(not a key id or name)");
        rc = fm_cli_audit_record(log, "keys.revoke", NULL, 0, detail, rc, &err);
    }
    fm_audit_close(log);
    fm_keystore_close(ks);
    return rc ? fm_cli_fail(command, &err) : FM_EXIT_OK;
}

static const fm_command_t subcommands[] = {
    {"create", NULL, keys_create},
    {"list", NULL, keys_list},
    {"revoke", NULL, keys_revoke},
    {"rotate-master", NULL, fm_cmd_keys_rotate_master},
};

int fm_cmd_keys(int argc, char **argv) {
    return fm_cli_subcommand("keys", usage, "create, list, revoke or rotate-master", subcommands,
                             sizeof subcommands / sizeof subcommands[0], argc, argv);
}
