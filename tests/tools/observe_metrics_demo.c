/*
 * observe_metrics_demo: records the observations read from stdin in an fm_metrics_t and prints
 * the Prometheus exposition (fm_metrics_render), so tests/ref/test_metrics_format.py can parse it
 * with an independent reader and check every value against the observations it chose.
 *
 * Input, one command per line, fields separated by single spaces (blank lines ignored):
 *   model HEXNAME VERSION     registers a model (name in hex, so any byte can be tested);
 *                             models are then referred to as 0, 1, 2, ... in this order
 *   queue K SECONDS           fm_histogram_observe_seconds on model K's queue histogram
 *   compute K SECONDS         ... on its compute histogram
 *   batch K ROWS              fm_histogram_observe_batch on its batch histogram
 *   success K N | failure K N | inferences K N    adds N to that counter
 *   in_flight K DELTA         adds DELTA (may be negative) to the gauge
 *   load K MICROS             sets the load time
 *   http STATUS               fm_metrics_http
 * Anything else is an error naming the line and field; the exit status is then 1.
 */
#include "observe/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_MODELS = 1000, MAX_LINE = 4096 };

typedef struct {
    size_t line;
    char *fields[4];
    int n;
} command_t;

static int fail(const command_t *c, const char *what) {
    fprintf(stderr, "observe_metrics_demo: line %zu: %s\n", c->line, what);
    return 1;
}

static int parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (*s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex into name (at most 64 bytes, NUL-free). */
static int parse_hex_name(const char *hex, char name[65]) {
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > 64) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
        name[i] = (char)(hi * 16 + lo);
    }
    name[n / 2] = '\0';
    return 0;
}

static int run(fm_metrics_t *m, command_t *c, fm_model_stats_t **models, size_t *nmodels) {
    const char *cmd = c->fields[0];
    if (!strcmp(cmd, "http")) {
        int64_t status;
        if (c->n != 2 || parse_i64(c->fields[1], &status) || status < -1000000 || status > 1000000)
            return fail(c, "http wants one integer status");
        fm_metrics_http(m, (int)status);
        return 0;
    }
    if (!strcmp(cmd, "model")) {
        char name[65];
        int64_t version;
        if (c->n != 3) return fail(c, "model wants HEXNAME VERSION");
        if (parse_hex_name(c->fields[1], name)) return fail(c, "field 2: bad hex name");
        if (parse_i64(c->fields[2], &version)) return fail(c, "field 3: bad version");
        if (*nmodels == MAX_MODELS) return fail(c, "too many models");
        models[*nmodels] = fm_metrics_model(m, name, version);
        if (!models[*nmodels]) return fail(c, "out of memory");
        (*nmodels)++;
        return 0;
    }
    uint64_t k;
    if (c->n != 3) return fail(c, "expected COMMAND MODEL VALUE");
    if (parse_u64(c->fields[1], &k) || k >= *nmodels) return fail(c, "field 2: unknown model");
    fm_model_stats_t *s = models[k];
    const char *value = c->fields[2];
    if (!strcmp(cmd, "queue") || !strcmp(cmd, "compute")) {
        char *end;
        double seconds = strtod(value, &end);
        if (end == value || *end) return fail(c, "field 3: bad seconds");
        fm_histogram_observe_seconds(!strcmp(cmd, "queue") ? &s->queue : &s->compute, seconds);
        return 0;
    }
    if (!strcmp(cmd, "in_flight")) {
        int64_t delta;
        if (parse_i64(value, &delta)) return fail(c, "field 3: bad delta");
        atomic_fetch_add(&s->in_flight, delta);
        return 0;
    }
    uint64_t n;
    if (parse_u64(value, &n)) return fail(c, "field 3: bad count");
    if (!strcmp(cmd, "batch")) {
        fm_histogram_observe_batch(&s->batch, n);
    } else if (!strcmp(cmd, "success")) {
        atomic_fetch_add(&s->success, n);
    } else if (!strcmp(cmd, "failure")) {
        atomic_fetch_add(&s->failure, n);
    } else if (!strcmp(cmd, "inferences")) {
        atomic_fetch_add(&s->inferences, n);
    } else if (!strcmp(cmd, "load")) {
        atomic_store(&s->load_micros, n);
    } else {
        return fail(c, "field 1: unknown command");
    }
    return 0;
}

int main(void) {
    fm_metrics_t *m;
    fm_error_t err;
    if (fm_metrics_new(&m, &err)) {
        fprintf(stderr, "observe_metrics_demo: %s\n", fm_error_message(&err));
        return 1;
    }
    static fm_model_stats_t *models[MAX_MODELS];
    size_t nmodels = 0;
    static char line[MAX_LINE + 2];
    command_t c = {0};
    int rc = 0;
    while (!rc && fgets(line, sizeof line, stdin)) {
        c.line++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') {
            line[--len] = '\0';
        } else if (len > MAX_LINE) {
            rc = fail(&c, "line too long");
            break;
        }
        if (len == 0) continue;
        c.n = 0;
        for (char *p = line, *sp; p && !rc; p = sp ? sp + 1 : NULL) {
            sp = strchr(p, ' ');
            if (sp) *sp = '\0';
            if (c.n == 4 || !*p)
                rc = fail(&c, "wrong number of fields");
            else
                c.fields[c.n++] = p;
        }
        if (!rc) rc = run(m, &c, models, &nmodels);
    }
    if (!rc) {
        fm_buf_t out = FM_BUF_INIT;
        if (fm_metrics_render(m, &out)) {
            fprintf(stderr, "observe_metrics_demo: out of memory\n");
            rc = 1;
        } else {
            fwrite(out.data, 1, out.len, stdout);
        }
        fm_buf_free(&out);
    }
    fm_metrics_free(m);
    return rc;
}
