/*
 * `finmaas split`: splits a CSV file into a train file and a test file, stratified by a column so
 * both keep its proportions, reproducibly from a seed. Rows are copied as they are (re-quoted only
 * where CSV requires), in their original order; both files appear only when both are complete.
 */
#include "cli/cli.h"
#include "core/fs.h"
#include "core/strdict.h"
#include "data/csv_writer.h"
#include "data/data.h"
#include "train/train.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: finmaas split --data F.csv --train-out A.csv --test-out B.csv [options]\n"
    "\n"
    "Splits F.csv into training and test rows.\n"
    "\n"
    "  --data F.csv          input (required)\n"
    "  --train-out A.csv     training rows (required)\n"
    "  --test-out B.csv      test rows (required)\n"
    "  --test-fraction X     share of rows for the test file (default 0.3)\n"
    "  --stratify COL        keep the proportions of COL's values in both files\n"
    "                        (missing values form their own group)\n"
    "  --seed N              random seed (default 42)\n";

enum { OPT_DATA = 1000, OPT_TRAIN_OUT, OPT_TEST_OUT, OPT_FRACTION, OPT_STRATIFY, OPT_SEED };

static const struct option options[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"train-out", required_argument, NULL, OPT_TRAIN_OUT},
    {"test-out", required_argument, NULL, OPT_TEST_OUT},
    {"test-fraction", required_argument, NULL, OPT_FRACTION},
    {"stratify", required_argument, NULL, OPT_STRATIFY},
    {"seed", required_argument, NULL, OPT_SEED},
    {NULL, 0, NULL, 0},
};

typedef struct split_args {
    const char *data, *train_out, *test_out, *stratify;
    double fraction;
    long seed;
} split_args_t;

/* First pass: the stratum of every row (0 for all without --stratify) and the row count. */
static int read_strata(const split_args_t *a, int32_t **strata, size_t *nrows, int *ngroups,
                       fm_error_t *err) {
    fm_csv_t *csv = NULL;
    fm_strdict_t groups = FM_STRDICT_INIT;
    size_t cap = 0, n = 0, ncols = 0;
    long col = -1;
    int32_t *s = NULL;
    char *const *fields;
    const size_t *lens;
    int rc = fm_csv_open(a->data, &csv, err);
    int got = rc ? rc : fm_csv_next(csv, &fields, &lens, &ncols, err);
    if (got == 0)
        rc = fm_error_set(err, FM_EDATA, "%s: empty file", a->data);
    else if (got < 0)
        rc = got;
    if (!rc && a->stratify) {
        for (size_t c = 0; c < ncols; c++)
            if (!strcmp(fields[c], a->stratify)) col = (long)c;
        if (col < 0)
            rc = fm_error_set(err, FM_EINVAL, "%s: no column '%s' to stratify by", a->data,
                              a->stratify);
    }
    while (!rc) {
        size_t nf;
        got = fm_csv_next(csv, &fields, &lens, &nf, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        if (nf != ncols) {
            rc = fm_error_set(err, FM_EPARSE, "%s:%zu: expected %zu fields, found %zu", a->data,
                              fm_csv_line(csv), ncols, nf);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            int32_t *p = realloc(s, cap * sizeof *p);
            if (!p) {
                rc = fm_error_set(err, FM_ENOMEM, "out of memory");
                break;
            }
            s = p;
        }
        int32_t g = 0;
        if (col >= 0) {
            int missing = fm_value_is_missing(fields[col], lens[col]);
            g = missing ? fm_strdict_intern(&groups, "", 0)
                        : fm_strdict_intern(&groups, fields[col], lens[col]);
            if (g < 0) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        }
        s[n++] = g;
    }
    if (!rc && n == 0) rc = fm_error_set(err, FM_EDATA, "%s: no data rows", a->data);
    *ngroups = col >= 0 ? (int)groups.count : 1;
    fm_strdict_free(&groups);
    fm_csv_close(csv);
    if (rc) {
        free(s);
        return rc;
    }
    *strata = s;
    *nrows = n;
    return FM_OK;
}

/* Second pass: copy the header to both files and each row to the file chosen for it. */
static int write_parts(const split_args_t *a, const unsigned char *in_test, fm_error_t *err) {
    fm_atomic_file_t train = {0}, test = {0};
    fm_buf_t train_buf = FM_BUF_INIT, test_buf = FM_BUF_INIT;
    fm_csv_t *csv = NULL;
    int rc = fm_atomic_file_open(&train, a->train_out, 0, err);
    if (!rc) rc = fm_atomic_file_open(&test, a->test_out, 0, err);
    if (!rc) rc = fm_csv_open(a->data, &csv, err);
    for (size_t row = 0; !rc; row++) {
        char *const *fields;
        const size_t *lens;
        size_t nf;
        int got = fm_csv_next(csv, &fields, &lens, &nf, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        int header = row == 0;
        if (header || !in_test[row - 1]) rc = fm_csv_write_record(&train_buf, fields, lens, nf);
        if (!rc && (header || in_test[row - 1]))
            rc = fm_csv_write_record(&test_buf, fields, lens, nf);
        if (rc) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        if (!rc && (fm_csv_flush(&train_buf, train.fp, 1 << 16) ||
                    fm_csv_flush(&test_buf, test.fp, 1 << 16)))
            rc = fm_error_set(err, FM_EIO, "cannot write the split files");
    }
    if (!rc && (fm_csv_flush(&train_buf, train.fp, 0) || fm_csv_flush(&test_buf, test.fp, 0)))
        rc = fm_error_set(err, FM_EIO, "cannot write the split files");
    if (!rc) rc = fm_atomic_file_commit(&train, err);
    if (!rc) rc = fm_atomic_file_commit(&test, err);
    if (rc) {
        fm_atomic_file_abort(&train);
        fm_atomic_file_abort(&test);
    }
    fm_csv_close(csv);
    fm_buf_free(&train_buf);
    fm_buf_free(&test_buf);
    return rc;
}

int fm_cmd_split(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    split_args_t a = {NULL, NULL, NULL, NULL, 0.3, 42};
    int c;
    while ((c = fm_cli_next_option("split", argc, argv, options)) != -1) {
        switch (c) {
        case OPT_DATA:
            a.data = optarg;
            break;
        case OPT_TRAIN_OUT:
            a.train_out = optarg;
            break;
        case OPT_TEST_OUT:
            a.test_out = optarg;
            break;
        case OPT_STRATIFY:
            a.stratify = optarg;
            break;
        case OPT_FRACTION:
            if (fm_cli_parse_double("split", "test-fraction", optarg, 0.01, 0.99, &a.fraction))
                return FM_EXIT_USAGE;
            break;
        case OPT_SEED:
            if (fm_cli_parse_long("split", "seed", optarg, 0, 0x7fffffffL, &a.seed))
                return FM_EXIT_USAGE;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional("split", argc, argv)) return FM_EXIT_USAGE;
    if (!a.data || !a.train_out || !a.test_out)
        return fm_cli_usage_error("split", "--%s is required",
                                  !a.data        ? "data"
                                  : !a.train_out ? "train-out"
                                                 : "test-out");
    fm_error_t err;
    fm_error_clear(&err);
    int32_t *strata = NULL;
    size_t n = 0, *first = NULL, *second = NULL, nfirst = 0, nsecond = 0;
    int groups = 1;
    unsigned char *in_test = NULL;
    fm_rng_t rng;
    fm_rng_seed(&rng, (uint64_t)a.seed);
    int rc = read_strata(&a, &strata, &n, &groups, &err);
    if (!rc)
        rc = fm_split_stratified(strata, n, groups, a.fraction, &rng, &first, &nfirst, &second,
                                 &nsecond, &err);
    if (!rc && !(in_test = calloc(n, 1))) rc = fm_error_set(&err, FM_ENOMEM, "out of memory");
    if (!rc) {
        for (size_t i = 0; i < nsecond; i++)
            in_test[second[i]] = 1;
        rc = write_parts(&a, in_test, &err);
    }
    if (!rc) {
        fm_buf_t out = FM_BUF_INIT;
        fm_buf_puts(&out, "{\"train\": {\"path\": ");
        fm_buf_json_string(&out, a.train_out, strlen(a.train_out));
        fm_buf_printf(&out, ", \"rows\": %zu}, \"test\": {\"path\": ", nfirst);
        fm_buf_json_string(&out, a.test_out, strlen(a.test_out));
        fm_buf_printf(&out, ", \"rows\": %zu}}", nsecond);
        puts(out.data ? out.data : "{}");
        fm_buf_free(&out);
    }
    free(strata);
    free(first);
    free(second);
    free(in_test);
    return rc ? fm_cli_fail("split", &err) : FM_EXIT_OK;
}
