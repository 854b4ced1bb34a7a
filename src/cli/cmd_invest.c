/*
 * `finmaas invest`: investment analysis of daily price series (invest/invest.h) as one JSON
 * object: returns, volatility, Sharpe and Sortino ratios, drawdown, beta, VaR and ES per ticker;
 * optionally a walk-forward forecast backtest against naive baselines and long-only portfolios.
 */
#include "cli/cli.h"
#include "core/fs.h"
#include "invest/invest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas invest --prices F.csv[,G.csv...] [options]\n"
    "\n"
    "Analyses daily prices and prints one JSON object. A file is read in the long layout (date,\n"
    "ticker and close columns), one file per ticker (the ticker from the file name), or wide\n"
    "(one column per series, e.g. eustockmarkets.csv); tickers are aligned on common dates.\n"
    "\n"
    "  --prices F,...          price files (required)\n"
    "  --price-column NAME     the close column (default close, else adj close, else price)\n"
    "  --index TICKER          beta and correlation against this ticker\n"
    "  --risk-free R           annual risk-free rate for Sharpe and Sortino (default 0)\n"
    "  --periods N             return periods per year (default 252)\n"
    "  --levels A,...          VaR/ES confidence levels (default 0.95,0.99)\n"
    "  --mc-samples N          Monte Carlo draws per ticker, 0 for none (default 100000)\n"
    "  --seed S                Monte Carlo and training seed (default 42)\n"
    "  --forecast              walk-forward backtest of next-day direction and volatility\n"
    "  --retrain-every K       days between retrains (default 21)\n"
    "  --min-train N           days of history before the first prediction (default 252)\n"
    "  --model M               logistic (linear for volatility) | gbt (default logistic)\n"
    "  --threads N             tickers forecast at once (default 1)\n"
    "  --portfolio             minimum-variance and maximum-Sharpe weights, efficient frontier\n"
    "  --bounds LO,HI          per-asset weight bounds (default 0,1)\n"
    "  --frontier N            efficient frontier points (default 20)\n"
    "  --out R.json            write the JSON there instead of stdout\n"
    "  --test-leak-future      test hook: add the next day's return as a feature, a deliberate\n"
    "                          look-ahead that makes the backtest meaningless\n";

enum {
    OPT_PRICES = 1000,
    OPT_PRICE_COLUMN,
    OPT_INDEX,
    OPT_RISK_FREE,
    OPT_PERIODS,
    OPT_LEVELS,
    OPT_MC,
    OPT_SEED,
    OPT_FORECAST,
    OPT_RETRAIN,
    OPT_MIN_TRAIN,
    OPT_MODEL,
    OPT_THREADS,
    OPT_PORTFOLIO,
    OPT_BOUNDS,
    OPT_FRONTIER,
    OPT_OUT,
    OPT_LEAK,
};

static const struct option options[] = {
    {"prices", required_argument, NULL, OPT_PRICES},
    {"price-column", required_argument, NULL, OPT_PRICE_COLUMN},
    {"index", required_argument, NULL, OPT_INDEX},
    {"risk-free", required_argument, NULL, OPT_RISK_FREE},
    {"periods", required_argument, NULL, OPT_PERIODS},
    {"levels", required_argument, NULL, OPT_LEVELS},
    {"mc-samples", required_argument, NULL, OPT_MC},
    {"seed", required_argument, NULL, OPT_SEED},
    {"forecast", no_argument, NULL, OPT_FORECAST},
    {"retrain-every", required_argument, NULL, OPT_RETRAIN},
    {"min-train", required_argument, NULL, OPT_MIN_TRAIN},
    {"model", required_argument, NULL, OPT_MODEL},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"portfolio", no_argument, NULL, OPT_PORTFOLIO},
    {"bounds", required_argument, NULL, OPT_BOUNDS},
    {"frontier", required_argument, NULL, OPT_FRONTIER},
    {"out", required_argument, NULL, OPT_OUT},
    {"test-leak-future", no_argument, NULL, OPT_LEAK},
    {NULL, 0, NULL, 0},
};

/* Parses "a,b,..." into at most max numbers in [lo, hi]; -1 after printing the error. */
static int parse_numbers(const char *option, const char *text, double lo, double hi, double *out,
                         size_t max, size_t *count) {
    size_t n = 0;
    char **list = fm_cli_split_list(text, &n);
    if (!list) {
        fm_cli_usage_error("invest", "--%s: out of memory", option);
        return -1;
    }
    int bad = n == 0 || n > max;
    if (bad) fm_cli_usage_error("invest", "--%s takes 1 to %zu numbers", option, max);
    for (size_t i = 0; !bad && i < n; i++)
        bad = fm_cli_parse_double("invest", option, list[i], lo, hi, &out[i]) != 0;
    fm_cli_free_list(list);
    *count = n;
    return bad ? -1 : 0;
}

static int run(char **files, size_t nfiles, const char *price_column, const char *out_path,
               const fm_invest_options_t *o) {
    fm_error_t err;
    fm_error_clear(&err);
    fm_invest_builder_t *b = NULL;
    fm_invest_prices_t *p = NULL;
    cJSON *result = NULL;
    int rc = fm_invest_builder_new(0, &b, &err);
    for (size_t i = 0; !rc && i < nfiles; i++)
        rc = fm_invest_builder_read_csv(b, files[i], price_column, &err);
    if (!rc) rc = fm_invest_builder_finish(b, &p, &err);
    fm_invest_builder_free(b);
    if (!rc) rc = fm_invest_analyze(p, o, &result, &err);
    fm_invest_prices_free(p);
    char *text = rc ? NULL : cJSON_Print(result);
    cJSON_Delete(result);
    if (!rc && !text) rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
    if (!rc && out_path) {
        size_t len = strlen(text);
        text[len] = '\n';
        rc = fm_file_write_atomic(out_path, text, len + 1, &err);
        text[len] = '\0';
    } else if (!rc) {
        puts(text);
    }
    free(text);
    return rc ? fm_cli_fail("invest", &err) : FM_EXIT_OK;
}

int fm_cmd_invest(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    fm_invest_options_t o;
    fm_invest_options_defaults(&o);
    const char *prices = NULL, *price_column = NULL, *out = NULL;
    double d, pair[2];
    long l;
    size_t n;
    int c;
    fm_nn_set_threads(1);
    while ((c = fm_cli_next_option("invest", argc, argv, options)) != -1) {
        switch (c) {
        case OPT_PRICES:
            prices = optarg;
            break;
        case OPT_PRICE_COLUMN:
            price_column = optarg;
            break;
        case OPT_INDEX:
            o.index = optarg;
            break;
        case OPT_RISK_FREE:
            if (fm_cli_parse_double("invest", "risk-free", optarg, -1, 1, &d)) return FM_EXIT_USAGE;
            o.risk_free = d;
            break;
        case OPT_PERIODS:
            if (fm_cli_parse_double("invest", "periods", optarg, 1e-9, 100000, &d))
                return FM_EXIT_USAGE;
            o.periods_per_year = d;
            break;
        case OPT_LEVELS:
            if (parse_numbers("levels", optarg, 0.5000001, 0.9999999, o.levels,
                              FM_INVEST_MAX_LEVELS, &o.nlevels))
                return FM_EXIT_USAGE;
            break;
        case OPT_MC:
            if (fm_cli_parse_long("invest", "mc-samples", optarg, 0, FM_INVEST_MAX_MC, &l))
                return FM_EXIT_USAGE;
            o.mc_samples = (size_t)l;
            break;
        case OPT_SEED:
            if (fm_cli_parse_long("invest", "seed", optarg, 0, 2147483647, &l))
                return FM_EXIT_USAGE;
            o.seed = (uint64_t)l;
            break;
        case OPT_FORECAST:
            o.forecast = 1;
            break;
        case OPT_RETRAIN:
            if (fm_cli_parse_long("invest", "retrain-every", optarg, 1, 100000, &l))
                return FM_EXIT_USAGE;
            o.retrain_every = (int)l;
            break;
        case OPT_MIN_TRAIN:
            if (fm_cli_parse_long("invest", "min-train", optarg, 50, 10000000, &l))
                return FM_EXIT_USAGE;
            o.min_train = (size_t)l;
            break;
        case OPT_MODEL:
            if (strcmp(optarg, "logistic") && strcmp(optarg, "gbt"))
                return fm_cli_usage_error("invest", "--model: expected logistic or gbt");
            o.model = optarg;
            break;
        case OPT_THREADS:
            if (fm_cli_parse_long("invest", "threads", optarg, 1, 64, &l)) return FM_EXIT_USAGE;
            o.threads = (int)l;
            break;
        case OPT_PORTFOLIO:
            o.portfolio = 1;
            break;
        case OPT_BOUNDS:
            if (parse_numbers("bounds", optarg, 0, 1, pair, 2, &n)) return FM_EXIT_USAGE;
            if (n != 2) return fm_cli_usage_error("invest", "--bounds takes LO,HI");
            o.lower = pair[0];
            o.upper = pair[1];
            break;
        case OPT_FRONTIER:
            if (fm_cli_parse_long("invest", "frontier", optarg, 0, FM_INVEST_MAX_POINTS, &l))
                return FM_EXIT_USAGE;
            o.frontier_points = (size_t)l;
            break;
        case OPT_OUT:
            out = optarg;
            break;
        case OPT_LEAK:
            o.leak_future = 1;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional("invest", argc, argv)) return FM_EXIT_USAGE;
    if (!prices) return fm_cli_usage_error("invest", "--prices is required");
    fm_error_t err;
    fm_error_clear(&err);
    if (fm_invest_options_check(&o, 0, &err)) return fm_cli_fail("invest", &err);
    char **files = fm_cli_split_list(prices, &n);
    if (!files) return fm_cli_usage_error("invest", "--prices: out of memory");
    int rc = n ? run(files, n, price_column, out, &o)
               : fm_cli_usage_error("invest", "--prices names no file");
    fm_cli_free_list(files);
    return rc;
}
