/*
 * `finmaas audit`: the tamper-evident audit log from the command line. `verify` walks the whole
 * hash chain with the home's audit key and names the first bad entry; `export` writes the entries
 * (optionally filtered by model and time) as JSON lines. Both only read: they never create a log,
 * and they can run while a server keeps appending to it.
 *
 * A damaged or tampered log is not a usage error: verify exits 1 for it, keeping 2 for bad
 * options and for homes without a readable log.
 */
#include "cli/cli.h"
#include "core/fs.h"
#include "security/audit.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_HOME "./finmaas-home"

static const char usage[] =
    "usage: finmaas audit <subcommand> [options]\n"
    "\n"
    "Reads the audit log of a home: an append-only record of every authenticated action, each\n"
    "entry chained to the one before by a hash keyed with the home's audit.key, so that editing,\n"
    "deleting, inserting or reordering entries is detected.\n"
    "\n"
    "subcommands:\n"
    "  verify   check the whole chain and its head; name the first bad entry\n"
    "  export   write the entries as JSON lines (filters: model, time range)\n"
    "\n"
    "The log lives in --home DIR (default: $FINMAAS_HOME, else " DEFAULT_HOME ").\n"
    "finmaas audit <subcommand> --help describes each.\n";

static const char verify_usage[] =
    "usage: finmaas audit verify [--home DIR]\n"
    "\n"
    "Recomputes the keyed hash of every entry (line) in order, checks that each links to the one\n"
    "before and that no seq is missing, then checks the head (last seq, last hash and its MAC).\n"
    "Prints \"audit log intact: N entries, head seq N hash H\" when all is well.\n"
    "\n"
    "  --home DIR     home with audit.log, audit.head and audit.key (default: $FINMAAS_HOME,\n"
    "                 else " DEFAULT_HOME ")\n"
    "\n"
    "exit status:\n"
    "  0  the log is intact\n"
    "  1  the log has been tampered with or damaged: one line names the first bad entry (seq)\n"
    "     and what is wrong (modified, missing, inserted, out of order, head)\n"
    "  2  bad usage, or no readable log or key in the home\n";

static const char export_usage[] =
    "usage: finmaas audit export [--home DIR] [--model M] [--since T] [--until T] [--out F]\n"
    "\n"
    "Writes the entries, oldest first, one JSON object per line with every field (seq, time,\n"
    "key_id, role, action, model, version, request_id, status, input_digest, output, detail,\n"
    "prev, hash), exactly as audit.log stores them. The export does not verify the chain: run\n"
    "finmaas audit verify for that.\n"
    "\n"
    "  --home DIR     home with audit.log (default: $FINMAAS_HOME, else " DEFAULT_HOME ")\n"
    "  --model M      only entries about model M\n"
    "  --since T      only entries at or after T (ISO 8601: 2026-11-29, 2026-11-29T20:53:50Z,\n"
    "                 with optional fraction and +hh:mm offset)\n"
    "  --until T      only entries at or before T, inclusive: a date covers the whole day\n"
    "  --out F        write to file F (created atomically, mode 0600) instead of stdout\n";

enum { OPT_HOME = 1000, OPT_MODEL, OPT_SINCE, OPT_UNTIL, OPT_OUT };

static const char *default_home(void) {
    const char *env = getenv("FINMAAS_HOME");
    return env && *env ? env : DEFAULT_HOME;
}

static int audit_verify(int argc, char **argv) {
    static const char command[] = "audit verify";
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {NULL, 0, NULL, 0},
    };
    if (fm_cli_wants_help(argc, argv)) {
        fputs(verify_usage, stdout);
        return FM_EXIT_OK;
    }
    const char *home = default_home();
    int c;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        if (c != OPT_HOME) return FM_EXIT_USAGE;
        home = optarg;
    }
    if (fm_cli_no_positional(command, argc, argv)) return FM_EXIT_USAGE;
    fm_error_t err;
    fm_error_clear(&err);
    fm_audit_summary_t summary;
    int rc = fm_audit_verify_summary(home, &summary, &err);
    if (rc == FM_EDATA) {
        fprintf(stderr, "finmaas %s: %s\n", command, fm_error_message(&err));
        return FM_EXIT_FAILURE;
    }
    if (rc) return fm_cli_fail(command, &err);
    printf("audit log intact: %" PRId64 " entries, head seq %" PRId64 " hash %s\n", summary.entries,
           summary.head_seq, summary.head_hash);
    return FM_EXIT_OK;
}

static int audit_export(int argc, char **argv) {
    static const char command[] = "audit export";
    static const struct option options[] = {
        {"home", required_argument, NULL, OPT_HOME},
        {"model", required_argument, NULL, OPT_MODEL},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"out", required_argument, NULL, OPT_OUT},
        {NULL, 0, NULL, 0},
    };
    if (fm_cli_wants_help(argc, argv)) {
        fputs(export_usage, stdout);
        return FM_EXIT_OK;
    }
    const char *home = default_home(), *model = NULL, *since = NULL, *until = NULL, *out = NULL;
    int c;
    while ((c = fm_cli_next_option(command, argc, argv, options)) != -1) {
        switch (c) {
        case OPT_HOME:
            home = optarg;
            break;
        case OPT_MODEL:
            model = optarg;
            break;
        case OPT_SINCE:
            since = optarg;
            break;
        case OPT_UNTIL:
            until = optarg;
            break;
        case OPT_OUT:
            out = optarg;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional(command, argc, argv)) return FM_EXIT_USAGE;
    fm_error_t err;
    fm_error_clear(&err);
    /* The times are checked before anything is opened or created. */
    char normalised[28];
    if ((since && fm_audit_parse_time("--since", since, 0, normalised, &err)) ||
        (until && fm_audit_parse_time("--until", until, 1, normalised, &err)))
        return fm_cli_fail(command, &err);
    if (!out) {
        int rc = fm_audit_export(home, model, since, until, stdout, &err);
        return rc ? fm_cli_fail(command, &err) : FM_EXIT_OK;
    }
    fm_atomic_file_t file;
    int rc = fm_atomic_file_open(&file, out, 1, &err);
    if (rc) return fm_cli_fail(command, &err);
    rc = fm_audit_export(home, model, since, until, file.fp, &err);
    if (rc) {
        fm_atomic_file_abort(&file);
        return fm_cli_fail(command, &err);
    }
    rc = fm_atomic_file_commit(&file, &err);
    return rc ? fm_cli_fail(command, &err) : FM_EXIT_OK;
}

static const fm_command_t subcommands[] = {
    {"verify", NULL, audit_verify},
    {"export", NULL, audit_export},
};

int fm_cmd_audit(int argc, char **argv) {
    return fm_cli_subcommand("audit", usage, "verify or export", subcommands,
                             sizeof subcommands / sizeof subcommands[0], argc, argv);
}
