/*
 * The governance options of `finmaas train` (cli.h, FM_CLI_GOVERN_*): protected attributes with
 * their bands and reference groups, reweighing, and the settings of explanations (the approve
 * class and cutoff, the reference group of reason codes, reason texts, Integrated Gradients
 * steps) and of global explanations. They fill fm_train_options_t's governance fields
 * (train/train.h); the strings they hold are borrowed from argv or owned by the args.
 */
#include "cli/cli.h"
#include "core/fs.h"

#include <stdlib.h>
#include <string.h>

/* A reason-text file larger than this is refused (texts are at most 200 bytes a feature). */
#define MAX_REASONS_BYTES (1u << 20)

void fm_cli_govern_args_init(fm_cli_govern_args_t *g) {
    memset(g, 0, sizeof *g);
    fm_explain_fit_options_defaults(&g->explain);
}

void fm_cli_govern_args_deinit(fm_cli_govern_args_t *g) {
    fm_cli_free_list(g->protected);
    for (size_t k = 0; k < g->nattrs; k++)
        free(g->edges[k]);
    cJSON_Delete(g->reasons);
    fm_cli_govern_args_init(g);
}

/* Files "COL=VALUE" under the protected attribute named COL: its reference group (field 0) or its
 * band edges (field 1). Called after --protected is known. */
static int assign(const char *command, const char *option, const char *setting,
                  fm_cli_govern_args_t *g, int field) {
    const char *eq = strchr(setting, '=');
    if (!eq || eq == setting || !eq[1])
        return fm_cli_usage_error(command, "--%s '%s': expected COL=VALUE", option, setting);
    for (size_t k = 0; k < g->nattrs; k++) {
        if (strncmp(g->attrs[k].name, setting, (size_t)(eq - setting)) != 0 ||
            g->attrs[k].name[eq - setting] != '\0')
            continue;
        if (field == 0) {
            g->attrs[k].reference = eq + 1;
            return 0;
        }
        fm_error_t err;
        free(g->edges[k]);
        g->edges[k] = NULL;
        if (fm_fairness_parse_bands(eq + 1, &g->edges[k], &g->attrs[k].nedges, &err))
            return fm_cli_usage_error(command, "--bands %s", err.msg);
        g->attrs[k].edges = g->edges[k];
        return 0;
    }
    return fm_cli_usage_error(command, "--%s names column '%.*s', which is not in --protected",
                              option, (int)(eq - setting), setting);
}

int fm_cli_govern_option(const char *command, int opt, const char *arg, fm_cli_govern_args_t *g) {
    double d;
    long l;
    switch (opt) {
    case FM_CLI_GOVERN_OPT_PROTECTED:
        fm_cli_free_list(g->protected);
        g->protected = fm_cli_split_list(arg, &g->nprotected);
        if (!g->protected) return fm_cli_usage_error(command, "out of memory");
        if (g->nprotected == 0 || g->nprotected > FM_FAIRNESS_MAX_ATTRIBUTES)
            return fm_cli_usage_error(command, "--protected must name 1 to %d columns",
                                      FM_FAIRNESS_MAX_ATTRIBUTES);
        return 0;
    case FM_CLI_GOVERN_OPT_BANDS:
    case FM_CLI_GOVERN_OPT_FAIRNESS_REFERENCE:
        if (g->nsettings == FM_CLI_GOVERN_MAX_SETTINGS)
            return fm_cli_usage_error(command, "too many --bands and --fairness-reference options");
        g->settings[g->nsettings] = arg;
        g->setting_kind[g->nsettings++] = opt == FM_CLI_GOVERN_OPT_BANDS;
        return 0;
    case FM_CLI_GOVERN_OPT_REWEIGH:
        g->reweigh = 1;
        return 0;
    case FM_CLI_GOVERN_OPT_APPROVE:
        g->explain.approve = arg;
        return 0;
    case FM_CLI_GOVERN_OPT_CUTOFF:
        if (fm_cli_parse_double(command, "cutoff", arg, 0.0, 1.0, &d)) return FM_EXIT_USAGE;
        g->explain.cutoff = d;
        return 0;
    case FM_CLI_GOVERN_OPT_REASON_TEXTS: {
        char *text = NULL;
        size_t len = 0;
        fm_error_t err;
        if (fm_file_read_all(arg, MAX_REASONS_BYTES, &text, &len, &err))
            return fm_cli_usage_error(command, "--reason-texts: %s", err.msg);
        cJSON_Delete(g->reasons);
        g->reasons = cJSON_ParseWithLength(text, len);
        free(text);
        if (!cJSON_IsObject(g->reasons))
            return fm_cli_usage_error(command,
                                      "--reason-texts %s: expected a JSON object of feature "
                                      "names to texts",
                                      arg);
        g->explain.reasons = g->reasons;
        return 0;
    }
    case FM_CLI_GOVERN_OPT_EXPLAIN_REFERENCE:
        if (!strcmp(arg, "population"))
            g->explain.reference_population = 1;
        else if (!strcmp(arg, "cutoff"))
            g->explain.reference_population = 0;
        else
            return fm_cli_usage_error(
                command, "--explain-reference must be cutoff or population, got '%s'", arg);
        return 0;
    case FM_CLI_GOVERN_OPT_EXPLAIN_BAND:
        if (fm_cli_parse_double(command, "explain-band", arg, 1e-9, 1.0, &d)) return FM_EXIT_USAGE;
        g->explain.band = d;
        return 0;
    case FM_CLI_GOVERN_OPT_EXPLAIN_STEPS:
        if (fm_cli_parse_long(command, "explain-steps", arg, 1, FM_EXPLAIN_MAX_STEPS, &l))
            return FM_EXIT_USAGE;
        g->explain.steps = (int)l;
        return 0;
    case FM_CLI_GOVERN_OPT_EXPLAIN_METHOD: {
        fm_explain_method_t m;
        if (fm_explain_method_parse(arg, &m) || (m != FM_EXPLAIN_AUTO && m != FM_EXPLAIN_SHAPLEY))
            return fm_cli_usage_error(command, "--explain-method must be auto or shapley, got '%s'",
                                      arg);
        g->explain.method = m;
        return 0;
    }
    case FM_CLI_GOVERN_OPT_NO_GLOBAL:
        g->no_global = 1;
        return 0;
    default:
        return FM_CLI_NOT_SHARED;
    }
}

int fm_cli_govern_apply(const char *command, fm_cli_govern_args_t *g, fm_train_options_t *o) {
    g->nattrs = g->nprotected;
    for (size_t k = 0; k < g->nattrs; k++) {
        g->attrs[k] = (fm_fairness_attribute_t){.name = g->protected[k]};
        for (size_t j = 0; j < k; j++)
            if (!strcmp(g->protected[j], g -> protected[k]))
                return fm_cli_usage_error(command, "--protected names '%s' twice", g->protected[k]);
    }
    for (size_t i = 0; i < g->nsettings; i++)
        if (assign(command, g->setting_kind[i] ? "bands" : "fairness-reference", g->settings[i], g,
                   g->setting_kind[i] ? 1 : 0))
            return FM_EXIT_USAGE;
    if (g->reweigh && g->nattrs == 0)
        return fm_cli_usage_error(command, "--reweigh needs --protected");
    o->protected = g->nattrs ? g->attrs : NULL;
    o->nprotected = g->nattrs;
    o->reweigh = g->reweigh;
    o->explain = g->explain;
    o->no_global = g->no_global;
    o->governance = 1;
    return 0;
}
