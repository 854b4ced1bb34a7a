/*
 * The command line's audit trail. Commands that change what a home holds (keys create and revoke,
 * rotate-master, models add and label) record themselves in the home's audit log like the
 * server's actions: key id "cli", role "operator", the operating-system user in the detail. The log
 * is opened before the action, so that a home whose log cannot be written (tampered, unreadable)
 * refuses the action instead of performing it untraced; the entry is committed (durably) after
 * it, with the outcome: exit status and, on failure, the message (masked of card numbers and
 * e-mail addresses).
 */
#include "cli/cli.h"

#include "registry/registry.h"
#include "security/pii.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fm_cli_audit_open(const char *home, fm_audit_t **log, fm_error_t *err) {
    fm_error_t why;
    fm_error_clear(&why);
    int rc = fm_audit_open(home, FM_AUDIT_DURABLE, log, &why);
    if (rc)
        return fm_error_set(err, rc, "cannot open the audit log, so nothing was changed: %s",
                            fm_error_message(&why));
    return FM_OK;
}

/* The invoking user's name, or their uid as text. */
static void os_user(char *out, size_t size) {
    struct passwd pw, *found = NULL;
    char buf[1024];
    uid_t uid = geteuid();
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
        snprintf(out, size, "%s", found->pw_name);
    else
        snprintf(out, size, "uid %u", (unsigned)uid);
}

int fm_cli_audit_record(fm_audit_t *log, const char *action, const char *model, int64_t version,
                        const char *detail, int rc, fm_error_t *err) {
    const fm_error_t *outcome = rc ? err : NULL;
    char user[128], text[1024];
    os_user(user, sizeof user);
    int failed = outcome && outcome->code != FM_OK;
    snprintf(text, sizeof text, "os_user=%s%s%s%s%s", user, detail && *detail ? " " : "",
             detail ? detail : "", failed ? " error=" : "",
             failed ? fm_error_message(outcome) : "");
    fm_buf_t masked = FM_BUF_INIT;
    const char *shown = text;
    if (fm_pii_scrub(NULL, text, strlen(text), &masked) == FM_OK && masked.data)
        shown = masked.data;
    fm_audit_entry_t entry = {
        .key_id = "cli",
        .role = "operator",
        .action = action,
        /* A name the registry refused is not recorded: it could be anything, even PII. */
        .model = model && fm_registry_valid_name(model) ? model : NULL,
        .version = version,
        .status = failed ? fm_cli_exit_code(outcome->code) : FM_EXIT_OK,
        .detail = shown,
    };
    fm_error_t why;
    fm_error_clear(&why);
    int logged = fm_audit_append_sync(log, &entry, &why);
    fm_buf_free(&masked);
    /* The action's own failure is what the user needs first; a lost trail after a success is the
     * error then. */
    if (rc) return rc;
    if (logged)
        return fm_error_set(err, logged,
                            "%s was done, but its audit entry could not be written: %s", action,
                            fm_error_message(&why));
    return FM_OK;
}
