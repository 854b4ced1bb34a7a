/*
 * `finmaas models`: the model registry from the command line. `add` stores a model file as the
 * next version of a named model and prints the version number; `list` shows versions as a table
 * or JSON; `label` points a label (production, staging, ...) at a version or removes it. The
 * registry lives in a home directory: --home, else $FINMAAS_HOME, else ./finmaas-home. With
 * FINMAAS_MASTER_KEY_FILE set, `add` stores the model file encrypted with that master key; the key
 * file is checked (size, permissions) before anything is created.
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "registry/registry.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_HOME "./finmaas-home"

static const char usage[] =
    "usage: finmaas models <subcommand> [options]\n"
    "\n"
    "Keeps trained models in a registry: numbered, immutable versions of named models, and\n"
    "labels (production, staging, ...) that each point at one version.\n"
    "\n"
    "subcommands:\n"
    "  add      store a model file as the next version of a model (prints the version)\n"
    "  list     list the versions of one model or of all models (table or JSON)\n"
    "  label    point a label at a version, or remove a label\n"
    "\n"
    "The registry lives in --home DIR (default: $FINMAAS_HOME, else " DEFAULT_HOME ").\n"
    "finmaas models <subcommand> --help describes each.\n";

static const char add_usage[] =
    "usage: finmaas models add [--home DIR] --name NAME M.fmm\n"
    "\n"
    "Validates the model file M.fmm and stores it as the next version of model NAME (created\n"
    "when new). Prints the new version number alone on stdout. When FINMAAS_MASTER_KEY_FILE\n"
    "names a master key file (32 bytes, mode 0600), the stored file is encrypted with it.\n"
    "\n"
    "  --home DIR     registry home (default: $FINMAAS_HOME, else " DEFAULT_HOME ")\n"
    "  --name NAME    model name: 1 to 64 characters from A-Z a-z 0-9 _ . -,\n"
    "                 not starting with '.' or '-' (required)\n";

static const char list_usage[] =
    "usage: finmaas models list [--home DIR] [--name NAME] [--json]\n"
    "\n"
    "Lists the versions of model NAME, or of every model, ordered by name and version:\n"
    "name, version, task, family, size in bytes, creation time (UTC), labels.\n"
    "\n"
    "  --home DIR     registry home (default: $FINMAAS_HOME, else " DEFAULT_HOME ")\n"
    "  --name NAME    only this model\n"
    "  --json         a JSON array of objects (also with path, sha256 and uploaded_by) instead\n"
    "                 of a table\n";

static const char label_usage[] =
    "usage: finmaas models label [--home DIR] --name NAME --label LABEL (--version N | --remove)\n"
    "\n"
    "Points LABEL at version N of model NAME (moving it if it pointed elsewhere), or removes it.\n"
    "Serving resolves a model without a version to its 'production' label, else its newest "
    "version.\n"
    "\n"
    "  --home DIR     registry home (default: $FINMAAS_HOME, else " DEFAULT_HOME ")\n"
    "  --name NAME    model name (required)\n"
    "  --label LABEL  label name, same rules as model names (required)\n"
    "  --version N    the version to point at\n"
    "  --remove       remove the label instead\n";

enum { OPT_HOME = 1000, OPT_NAME, OPT_JSON, OPT_LABEL, OPT_VERSION, OPT_REMOVE };

static const char *default_home(void) {
    const char *env = getenv("FINMAAS_HOME");
    return env && *env ? env : DEFAULT_HOME;
}

/*
 * Opens the registry for a command that only reads or relabels: a home without registry.db is an
 * error (most likely a mistyped --home) rather than a new, empty registry.
 */
static int open_existing(const char *command, const char *home, fm_registry_t **r,
                         fm_error_t *err) {
    char db[PATH_MAX];
    struct stat st;
    int n = snprintf(db, sizeof db, "%s/registry.db", home);
    if (n < 0 || (size_t)n >= sizeof db || stat(db, &st) != 0)
        return fm_error_set(err, FM_ENOTFOUND,
                            "%s: no registry here (finmaas models add creates one; see finmaas %s "
                            "--help for --home)",
                            home, command);
    return fm_registry_open(home, r, err);
}

static int models_add(int argc, char **argv) {
    static const char command[] = "models add";
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {"name", required_argument, NULL, OPT_NAME},
        {NULL, 0, NULL, 0},
    };
    if (fm_cli_wants_help(argc, argv)) {
        fputs(add_usage, stdout);
        return FM_EXIT_OK;
    }
    const char *home = default_home(), *name = NULL;
    int c;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_HOME:
            home = optarg;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (!name) return fm_cli_usage_error(command, "--name is required");
    if (optind >= argc)
        return fm_cli_usage_error(command, "expected a model file (see finmaas %s --help)",
                                  command);
    const char *file = argv[optind++];
    if (fm_cli_no_positional(command, argc, argv)) return FM_EXIT_USAGE;
    fm_error_t err;
    fm_error_clear(&err);
    /* The name and the file's presence are checked before open creates a home for nothing. */
    if (fm_registry_check_name("model", name, &err)) return fm_cli_fail(command, &err);
    FILE *fp = fopen(file, "rb");
    if (!fp) {
        fm_error_set(&err, FM_EIO, "%s: cannot open: %s", file, strerror(errno));
        return fm_cli_fail(command, &err);
    }
    fclose(fp);
    fm_master_key_t key;
    int have_key = 0;
    if (fm_master_key_from_env(&key, &have_key, &err)) return fm_cli_fail(command, &err);
    fm_registry_t *r = NULL;
    fm_audit_t *log = NULL;
    int64_t version = 0;
    int rc = fm_registry_open(home, &r, &err);
    if (!rc && have_key) rc = fm_registry_set_master_key(r, &key);
    fm_master_key_wipe(&key);
    if (!rc) rc = fm_cli_audit_open(home, &log, &err);
    if (!rc) {
        rc = fm_registry_add_file(r, name, file, &version, &err);
        rc = fm_cli_audit_record(log, "model.upload", name, version, NULL, rc, &err);
    }
    fm_audit_close(log);
    fm_registry_close(r);
    if (rc) return fm_cli_fail(command, &err);
    printf("%" PRId64 "\n", version);
    return FM_EXIT_OK;
}

/* The table: one row per version, columns as wide as their widest cell. */
static void print_table(const fm_version_info_t *v, size_t n) {
    int wname = 4, wversion = 7, wtask = 4, wfamily = 6, wsize = 4;
    char text[32];
    for (size_t i = 0; i < n; i++) {
        int len = (int)strlen(v[i].name);
        if (len > wname) wname = len;
        len = snprintf(text, sizeof text, "%" PRId64, v[i].version);
        if (len > wversion) wversion = len;
        len = (int)strlen(v[i].task);
        if (len > wtask) wtask = len;
        len = (int)strlen(v[i].family);
        if (len > wfamily) wfamily = len;
        len = snprintf(text, sizeof text, "%" PRId64, v[i].size);
        if (len > wsize) wsize = len;
    }
    printf("%-*s  %*s  %-*s  %-*s  %*s  %-20s  %s\n", wname, "NAME", wversion, "VERSION", wtask,
           "TASK", wfamily, "FAMILY", wsize, "SIZE", "CREATED", "LABELS");
    for (size_t i = 0; i < n; i++)
        printf("%-*s  %*" PRId64 "  %-*s  %-*s  %*" PRId64 "  %-20s  %s\n", wname, v[i].name,
               wversion, v[i].version, wtask, v[i].task, wfamily, v[i].family, wsize, v[i].size,
               v[i].created, v[i].labels[0] ? v[i].labels : "-");
}

static void json_field(fm_buf_t *b, const char *key, const char *value) {
    fm_buf_printf(b, "\"%s\": ", key);
    fm_buf_json_string(b, value, strlen(value));
}

/* A JSON array, one version object per line. */
static int print_json(const fm_version_info_t *v, size_t n) {
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        fm_buf_puts(&b, i ? ",\n  {" : "\n  {");
        json_field(&b, "name", v[i].name);
        fm_buf_printf(&b, ", \"version\": %" PRId64 ", ", v[i].version);
        json_field(&b, "task", v[i].task);
        fm_buf_puts(&b, ", ");
        json_field(&b, "family", v[i].family);
        fm_buf_printf(&b, ", \"size\": %" PRId64 ", ", v[i].size);
        json_field(&b, "created", v[i].created);
        fm_buf_puts(&b, ", \"labels\": [");
        const char *p = v[i].labels;
        for (int k = 0; *p; k++) {
            size_t len = strcspn(p, ",");
            if (k) fm_buf_puts(&b, ", ");
            fm_buf_json_string(&b, p, len);
            p += len + (p[len] == ',');
        }
        fm_buf_puts(&b, "], ");
        json_field(&b, "sha256", v[i].sha256);
        fm_buf_puts(&b, ", ");
        json_field(&b, "uploaded_by", v[i].uploaded_by);
        fm_buf_puts(&b, ", ");
        json_field(&b, "path", v[i].path);
        fm_buf_puts(&b, "}");
    }
    int rc = fm_buf_puts(&b, n ? "\n]" : "]");
    if (!rc) puts(b.data);
    fm_buf_free(&b);
    return rc;
}

static int models_list(int argc, char **argv) {
    static const char command[] = "models list";
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {"name", required_argument, NULL, OPT_NAME},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    if (fm_cli_wants_help(argc, argv)) {
        fputs(list_usage, stdout);
        return FM_EXIT_OK;
    }
    const char *home = default_home(), *name = NULL;
    int json = 0, c;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_HOME:
            home = optarg;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        case OPT_JSON:
            json = 1;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional(command, argc, argv)) return FM_EXIT_USAGE;
    fm_error_t err;
    fm_error_clear(&err);
    fm_registry_t *r = NULL;
    fm_version_info_t *versions = NULL;
    size_t n = 0;
    int rc = open_existing(command, home, &r, &err);
    if (!rc) rc = fm_registry_list(r, name, &versions, &n, &err);
    if (!rc && name && n == 0)
        rc = fm_error_set(&err, FM_ENOTFOUND, "no model '%s' in the registry", name);
    fm_registry_close(r);
    if (!rc && json)
        rc = print_json(versions, n) ? fm_error_set(&err, FM_ENOMEM, "out of memory") : FM_OK;
    else if (!rc)
        print_table(versions, n);
    free(versions);
    return rc ? fm_cli_fail(command, &err) : FM_EXIT_OK;
}

static int models_label(int argc, char **argv) {
    static const char command[] = "models label";
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {"name", required_argument, NULL, OPT_NAME},
        {"label", required_argument, NULL, OPT_LABEL},
        {"version", required_argument, NULL, OPT_VERSION},
        {"remove", no_argument, NULL, OPT_REMOVE},
        {NULL, 0, NULL, 0},
    };
    if (fm_cli_wants_help(argc, argv)) {
        fputs(label_usage, stdout);
        return FM_EXIT_OK;
    }
    const char *home = default_home(), *name = NULL, *label = NULL;
    long version = 0;
    int remove = 0, c;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_HOME:
            home = optarg;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        case OPT_LABEL:
            label = optarg;
            break;
        case OPT_VERSION:
            if (fm_cli_parse_long(command, "version", optarg, 1, LONG_MAX, &version))
                return FM_EXIT_USAGE;
            break;
        case OPT_REMOVE:
            remove = 1;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional(command, argc, argv)) return FM_EXIT_USAGE;
    if (!name || !label)
        return fm_cli_usage_error(command, "--%s is required", !name ? "name" : "label");
    if (remove && version)
        return fm_cli_usage_error(command, "give either --version or --remove, not both");
    if (!remove && !version)
        return fm_cli_usage_error(command, "--version is required (or --remove)");
    fm_error_t err;
    fm_error_clear(&err);
    fm_registry_t *r = NULL;
    fm_audit_t *log = NULL;
    int rc = open_existing(command, home, &r, &err);
    if (!rc) rc = fm_cli_audit_open(home, &log, &err);
    if (!rc) {
        if (remove)
            rc = fm_registry_remove_label(r, name, label, &err);
        else
            rc = fm_registry_set_label(r, name, label, (int64_t)version, &err);
        char detail[96];
        snprintf(detail, sizeof detail, "label=%.64s", label);
        rc = fm_cli_audit_record(log, remove ? "label.remove" : "label.set", name, (int64_t)version,
                                 detail, rc, &err);
    }
    fm_audit_close(log);
    fm_registry_close(r);
    return rc ? fm_cli_fail(command, &err) : FM_EXIT_OK;
}

static const fm_command_t subcommands[] = {
    {"add", NULL, models_add},
    {"list", NULL, models_list},
    {"label", NULL, models_label},
};

int fm_cmd_models(int argc, char **argv) {
    return fm_cli_subcommand("models", usage, "add, list or label", subcommands,
                             sizeof subcommands / sizeof subcommands[0], argc, argv);
}
