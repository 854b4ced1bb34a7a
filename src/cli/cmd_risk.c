/*
 * `finmaas risk`: the credit risk of a portfolio of exposures read from a CSV file (risk/risk.h):
 * expected loss, Basel IRB capital and risk-weighted assets per exposure, in total and by
 * segment, and a Monte Carlo loss distribution (one-factor Gaussian copula) with VaR and
 * Expected Shortfall and their sampling errors. Prints one JSON object (the one
 * POST /api/apps/risk/portfolio answers). With --model the PDs are a binary model's P(positive)
 * for each row, whose features the same file holds.
 */
#include "cli/cli.h"
#include "core/fs.h"
#include "risk/risk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas risk --exposures F.csv [options]\n"
    "\n"
    "Expected loss (PD x LGD x EAD), Basel IRB capital (K) and risk-weighted assets (12.5 K EAD)\n"
    "per exposure, in total and by segment, and a Monte Carlo loss distribution (one-factor\n"
    "Gaussian copula) with VaR and Expected Shortfall, printed as one JSON object.\n"
    "\n"
    "  --exposures F.csv       one exposure a row (required); columns (renamed by the options\n"
    "                          below): id, segment, pd, lgd, ead, maturity, asset_class\n"
    "                          (corporate | retail_mortgage | retail_revolving | retail_other),\n"
    "                          rho (the exposure's asset correlation in the Monte Carlo)\n"
    "  --model M.fmm           take each PD from this binary model's P(positive) on the row\n"
    "  --pd-from-model         (with --model) say so explicitly; the pd column is then ignored\n"
    "  --COLUMN-column NAME    the column holding COLUMN: id, segment, pd, lgd, ead, maturity,\n"
    "                          class, rho (e.g. --ead-column Amount)\n"
    "  --lgd X                 LGD where none is given (default 0.45, Foundation IRB)\n"
    "  --ead X                 EAD where none is given (default: EAD is required)\n"
    "  --maturity M            maturity in years where none is given (default 2.5)\n"
    "  --asset-class C         asset class where none is given (default corporate)\n"
    "  --pd-floor X            PD floor (default 0.0003, Basel II; Basel III corporate: 0.0005)\n"
    "  --per-exposure          list every exposure's figures\n"
    "Monte Carlo:\n"
    "  --scenarios N           scenarios (default 100000; 0: no Monte Carlo)\n"
    "  --seed S                seed (default 1); the sample does not depend on --threads\n"
    "  --threads N             threads (default 1)\n"
    "  --levels Q,...          VaR / ES levels (default 0.99,0.999)\n"
    "  --rho X                 one asset correlation for all (default: each exposure's rho\n"
    "                          column, else its IRB correlation R)\n"
    "  --out R.json            write the JSON here instead of stdout\n";

enum {
    OPT_EXPOSURES = 1000,
    OPT_MODEL,
    OPT_PD_FROM_MODEL,
    OPT_ID_COL,
    OPT_SEGMENT_COL,
    OPT_PD_COL,
    OPT_LGD_COL,
    OPT_EAD_COL,
    OPT_MATURITY_COL,
    OPT_CLASS_COL,
    OPT_RHO_COL,
    OPT_LGD,
    OPT_EAD,
    OPT_MATURITY,
    OPT_CLASS,
    OPT_PD_FLOOR,
    OPT_PER_EXPOSURE,
    OPT_SCENARIOS,
    OPT_SEED,
    OPT_THREADS,
    OPT_LEVELS,
    OPT_RHO,
    OPT_OUT,
};

static const struct option options[] = {
    {"exposures", required_argument, NULL, OPT_EXPOSURES},
    {"model", required_argument, NULL, OPT_MODEL},
    {"pd-from-model", no_argument, NULL, OPT_PD_FROM_MODEL},
    {"id-column", required_argument, NULL, OPT_ID_COL},
    {"segment-column", required_argument, NULL, OPT_SEGMENT_COL},
    {"pd-column", required_argument, NULL, OPT_PD_COL},
    {"lgd-column", required_argument, NULL, OPT_LGD_COL},
    {"ead-column", required_argument, NULL, OPT_EAD_COL},
    {"maturity-column", required_argument, NULL, OPT_MATURITY_COL},
    {"class-column", required_argument, NULL, OPT_CLASS_COL},
    {"rho-column", required_argument, NULL, OPT_RHO_COL},
    {"lgd", required_argument, NULL, OPT_LGD},
    {"ead", required_argument, NULL, OPT_EAD},
    {"maturity", required_argument, NULL, OPT_MATURITY},
    {"asset-class", required_argument, NULL, OPT_CLASS},
    {"pd-floor", required_argument, NULL, OPT_PD_FLOOR},
    {"per-exposure", no_argument, NULL, OPT_PER_EXPOSURE},
    {"scenarios", required_argument, NULL, OPT_SCENARIOS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"levels", required_argument, NULL, OPT_LEVELS},
    {"rho", required_argument, NULL, OPT_RHO},
    {"out", required_argument, NULL, OPT_OUT},
    {NULL, 0, NULL, 0},
};

/* P(positive) of every row of path under the binary model at model_path (*pd is new). */
static int model_pds(const char *model_path, const char *path, double **pd, size_t *n,
                     fm_error_t *err) {
    fm_model_t *m = NULL;
    int rc = fm_model_load(model_path, &m, err);
    if (!rc) rc = fm_risk_model_pds(m, path, pd, n, err);
    if (rc == FM_EINVAL) fm_error_prefix(err, "%s: ", model_path);
    fm_model_free(m);
    return rc;
}

static int run(const char *path, const char *model_path, const fm_risk_input_t *in,
               const fm_risk_settings_t *s, const fm_risk_mc_options_t *mc, int per_exposure,
               const char *out_path) {
    fm_error_t err;
    fm_error_clear(&err);
    double *pd = NULL;
    size_t npd = 0;
    fm_csv_t *csv = NULL;
    fm_risk_portfolio_t *p = NULL;
    cJSON *report = NULL;
    int rc = model_path ? model_pds(model_path, path, &pd, &npd, &err) : FM_OK;
    if (!rc) rc = fm_csv_open(path, &csv, &err);
    if (!rc) rc = fm_risk_portfolio_read_csv(csv, in, pd, npd, &p, &err);
    if (!rc) rc = fm_risk_analyse(p, s, mc, per_exposure, &report, &err);
    if (!rc) {
        char *text = cJSON_Print(report);
        if (!text)
            rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
        else if (out_path) {
            size_t len = strlen(text);
            text[len] = '\n';
            rc = fm_file_write_atomic(out_path, text, len + 1, &err);
        } else {
            printf("%s\n", text);
        }
        free(text);
    }
    cJSON_Delete(report);
    fm_risk_portfolio_free(p);
    fm_csv_close(csv);
    free(pd);
    return rc ? fm_cli_fail("risk", &err) : FM_EXIT_OK;
}

/* "0.99,0.999" into o->levels. */
static int parse_levels(const char *text, fm_risk_mc_options_t *o) {
    size_t n = 0;
    char **list = fm_cli_split_list(text, &n);
    int rc = list ? FM_EXIT_OK : fm_cli_usage_error("risk", "out of memory");
    if (!rc && (n == 0 || n > FM_RISK_MAX_LEVELS))
        rc = fm_cli_usage_error("risk", "--levels needs 1 to %d levels", FM_RISK_MAX_LEVELS);
    for (size_t j = 0; j < n && !rc; j++)
        if (fm_cli_parse_double("risk", "levels", list[j], 1e-9, 1.0 - 1e-9, &o->levels[j]))
            rc = FM_EXIT_USAGE;
    o->nlevels = rc ? o->nlevels : n;
    fm_cli_free_list(list);
    return rc;
}

int fm_cmd_risk(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    fm_risk_input_t in;
    fm_risk_settings_t s;
    fm_risk_mc_options_t mc;
    fm_risk_input_defaults(&in);
    fm_risk_settings_defaults(&s);
    fm_risk_mc_options_defaults(&mc);
    const char *path = NULL, *model_path = NULL, *out_path = NULL;
    int per_exposure = 0, pd_from_model = 0, rc = FM_EXIT_OK, c;
    long v;
    while (rc == FM_EXIT_OK && (c = fm_cli_next_option("risk", argc, argv, options)) != -1) {
        switch (c) {
        case OPT_EXPOSURES:
            path = optarg;
            break;
        case OPT_MODEL:
            model_path = optarg;
            break;
        case OPT_PD_FROM_MODEL:
            pd_from_model = 1;
            break;
        case OPT_ID_COL:
            in.id = optarg;
            break;
        case OPT_SEGMENT_COL:
            in.segment = optarg;
            break;
        case OPT_PD_COL:
            in.pd = optarg;
            break;
        case OPT_LGD_COL:
            in.lgd = optarg;
            break;
        case OPT_EAD_COL:
            in.ead = optarg;
            break;
        case OPT_MATURITY_COL:
            in.maturity = optarg;
            break;
        case OPT_CLASS_COL:
            in.asset_class = optarg;
            break;
        case OPT_RHO_COL:
            in.rho = optarg;
            break;
        case OPT_LGD:
            if (fm_cli_parse_double("risk", "lgd", optarg, 0.0, 1.0, &in.lgd_default))
                rc = FM_EXIT_USAGE;
            break;
        case OPT_EAD:
            if (fm_cli_parse_double("risk", "ead", optarg, 0.0, 1e300, &in.ead_default))
                rc = FM_EXIT_USAGE;
            break;
        case OPT_MATURITY:
            if (fm_cli_parse_double("risk", "maturity", optarg, 1e-9, 100.0, &in.maturity_default))
                rc = FM_EXIT_USAGE;
            break;
        case OPT_CLASS:
            if (fm_risk_class_parse(optarg, &in.class_default))
                rc = fm_cli_usage_error("risk", "--asset-class must be corporate, retail_mortgage, "
                                                "retail_revolving or retail_other");
            break;
        case OPT_PD_FLOOR:
            if (fm_cli_parse_double("risk", "pd-floor", optarg, 1e-5, 0.1, &s.pd_floor))
                rc = FM_EXIT_USAGE;
            break;
        case OPT_PER_EXPOSURE:
            per_exposure = 1;
            break;
        case OPT_SCENARIOS:
            if (fm_cli_parse_long("risk", "scenarios", optarg, 0, 100000000L, &v))
                rc = FM_EXIT_USAGE;
            mc.scenarios = (uint64_t)v;
            break;
        case OPT_SEED:
            /* Up to 2^53, so that the seed the JSON reports is exact. */
            if (fm_cli_parse_long("risk", "seed", optarg, 0, 1L << 53, &v)) rc = FM_EXIT_USAGE;
            mc.seed = (uint64_t)v;
            break;
        case OPT_THREADS:
            if (fm_cli_parse_long("risk", "threads", optarg, 1, 256, &v)) rc = FM_EXIT_USAGE;
            mc.threads = (int)v;
            break;
        case OPT_LEVELS:
            rc = parse_levels(optarg, &mc);
            break;
        case OPT_RHO:
            if (fm_cli_parse_double("risk", "rho", optarg, 0.0, 0.999999, &mc.rho))
                rc = FM_EXIT_USAGE;
            break;
        case OPT_OUT:
            out_path = optarg;
            break;
        default:
            rc = FM_EXIT_USAGE;
        }
    }
    if (rc == FM_EXIT_OK && fm_cli_no_positional("risk", argc, argv)) rc = FM_EXIT_USAGE;
    if (rc == FM_EXIT_OK && !path) rc = fm_cli_usage_error("risk", "--exposures is required");
    if (rc == FM_EXIT_OK && pd_from_model && !model_path)
        rc = fm_cli_usage_error("risk", "--pd-from-model needs --model M.fmm");
    if (rc != FM_EXIT_OK) return rc;
    return run(path, model_path, &in, &s, mc.scenarios ? &mc : NULL, per_exposure, out_path);
}
