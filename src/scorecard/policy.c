/*
 * The decision policy of a scorecard (scorecard.h): score cutoffs for approve / refer / decline
 * and hard rules on an applicant's raw fields, read from and written to JSON, and the test of one
 * rule against one raw value.
 */
#include "core/json.h"
#include "scorecard/scorecard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const OPS[] = {"<", "<=", ">", ">=", "==", "!=", "missing"};

const char *fm_decision_name(fm_decision_t d) {
    switch (d) {
    case FM_DECISION_APPROVE:
        return "approve";
    case FM_DECISION_REFER:
        return "refer";
    case FM_DECISION_DECLINE:
        return "decline";
    }
    return "unknown";
}

const char *fm_rule_op_name(fm_rule_op_t op) {
    return (unsigned)op < sizeof OPS / sizeof OPS[0] ? OPS[op] : "?";
}

void fm_decision_policy_deinit(fm_decision_policy_t *p) {
    if (!p) return;
    for (size_t i = 0; p->rules && i < p->nrules; i++) {
        free(p->rules[i].feature);
        free(p->rules[i].text);
        free(p->rules[i].reason);
    }
    free(p->rules);
    memset(p, 0, sizeof *p);
}

/* A member of an object that is one of names[0..n), else FM_EINVAL naming it. */
static int known_members(const cJSON *obj, const char *what, const char *const *names, size_t n,
                         fm_error_t *err) {
    const cJSON *item;
    cJSON_ArrayForEach(item, obj) {
        size_t k = 0;
        while (k < n && strcmp(item->string, names[k]) != 0)
            k++;
        if (k == n)
            return fm_error_set(err, FM_EINVAL, "%s: unknown member '%.64s'", what, item->string);
    }
    return FM_OK;
}

/* A string member (required or not) no longer than FM_SCORECARD_MAX_TEXT, copied. */
static int text_member(const cJSON *obj, const char *key, const char *what, int required,
                       char **out, fm_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v && !required) return FM_OK;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return fm_error_set(err, FM_EINVAL, "%s: '%s' must be a non-empty string", what, key);
    if (strlen(v->valuestring) > FM_SCORECARD_MAX_TEXT)
        return fm_error_set(err, FM_EINVAL, "%s: '%s' is longer than %d bytes", what, key,
                            FM_SCORECARD_MAX_TEXT);
    if (!(*out = strdup(v->valuestring))) return fm_error_set(err, FM_ENOMEM, "out of memory");
    return FM_OK;
}

static int cutoff(const cJSON *json, const char *key, const double *fallback, double *out,
                  fm_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, key);
    if (!v && fallback) {
        *out = *fallback;
        return FM_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fm_error_set(err, FM_EINVAL, "decision policy: '%s' must be a finite number", key);
    *out = v->valuedouble;
    return FM_OK;
}

static int read_rule(const cJSON *o, size_t i, fm_decision_rule_t *r, fm_error_t *err) {
    static const char *const members[] = {"feature", "op", "value", "decision", "reason"};
    char what[64];
    snprintf(what, sizeof what, "decision policy: rules[%zu]", i);
    if (!cJSON_IsObject(o)) return fm_error_set(err, FM_EINVAL, "%s is not an object", what);
    int rc = known_members(o, what, members, 5, err);
    if (!rc) rc = text_member(o, "feature", what, 1, &r->feature, err);
    if (rc) return rc;
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "op");
    size_t k = 0;
    while (cJSON_IsString(op) && k < sizeof OPS / sizeof OPS[0] && strcmp(op->valuestring, OPS[k]))
        k++;
    if (!cJSON_IsString(op) || k == sizeof OPS / sizeof OPS[0])
        return fm_error_set(err, FM_EINVAL,
                            "%s: 'op' must be one of \"<\", \"<=\", \">\", \">=\", \"==\", "
                            "\"!=\", \"missing\"",
                            what);
    r->op = (fm_rule_op_t)k;
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(o, "value");
    if (r->op == FM_RULE_MISSING) {
        if (value) return fm_error_set(err, FM_EINVAL, "%s: op \"missing\" takes no 'value'", what);
    } else if (cJSON_IsNumber(value) && isfinite(value->valuedouble)) {
        r->number = value->valuedouble;
    } else if (cJSON_IsString(value) && (r->op == FM_RULE_EQ || r->op == FM_RULE_NE)) {
        r->is_text = 1;
        if ((rc = text_member(o, "value", what, 1, &r->text, err))) return rc;
    } else {
        return fm_error_set(err, FM_EINVAL, "%s: 'value' must be a finite number%s", what,
                            r->op == FM_RULE_EQ || r->op == FM_RULE_NE ? " or a string" : "");
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "decision");
    if (cJSON_IsString(d) && !strcmp(d->valuestring, "decline"))
        r->decision = FM_DECISION_DECLINE;
    else if (cJSON_IsString(d) && !strcmp(d->valuestring, "refer"))
        r->decision = FM_DECISION_REFER;
    else
        return fm_error_set(err, FM_EINVAL, "%s: 'decision' must be \"decline\" or \"refer\"",
                            what);
    if ((rc = text_member(o, "reason", what, 0, &r->reason, err))) return rc;
    if (!r->reason) {
        char text[FM_SCORECARD_MAX_TEXT + 128];
        if (r->op == FM_RULE_MISSING)
            snprintf(text, sizeof text, "%s is missing", r->feature);
        else if (r->is_text)
            snprintf(text, sizeof text, "%s %s %s", r->feature, OPS[r->op], r->text);
        else
            snprintf(text, sizeof text, "%s %s %.17g", r->feature, OPS[r->op], r->number);
        if (!(r->reason = strdup(text))) return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    return FM_OK;
}

int fm_decision_policy_from_json(const cJSON *json, const fm_decision_policy_t *defaults,
                                 fm_decision_policy_t *out, fm_error_t *err) {
    static const char *const members[] = {"approve_at", "decline_below", "rules"};
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(json))
        return fm_error_set(err, FM_EINVAL, "decision policy: expected a JSON object");
    int rc = known_members(json, "decision policy", members, 3, err);
    if (!rc)
        rc = cutoff(json, "approve_at", defaults ? &defaults->approve_at : NULL, &out->approve_at,
                    err);
    if (!rc)
        rc = cutoff(json, "decline_below", defaults ? &defaults->decline_below : NULL,
                    &out->decline_below, err);
    if (!rc && out->approve_at < out->decline_below)
        rc = fm_error_set(err, FM_EINVAL,
                          "decision policy: approve_at (%g) is below decline_below (%g)",
                          out->approve_at, out->decline_below);
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(json, "rules");
    if (!rc && rules && !cJSON_IsArray(rules))
        rc = fm_error_set(err, FM_EINVAL, "decision policy: 'rules' must be an array");
    int n = rules ? cJSON_GetArraySize(rules) : 0;
    if (!rc && n > FM_SCORECARD_MAX_RULES)
        rc = fm_error_set(err, FM_EINVAL, "decision policy: %d rules, at most %d", n,
                          FM_SCORECARD_MAX_RULES);
    if (!rc && n > 0 && !(out->rules = calloc((size_t)n, sizeof *out->rules)))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    const cJSON *item;
    size_t i = 0;
    if (!rc && n > 0) cJSON_ArrayForEach(item, rules) {
            out->nrules = i + 1;
            if ((rc = read_rule(item, i, &out->rules[i], err))) break;
            i++;
        }
    if (rc) fm_decision_policy_deinit(out);
    return rc;
}

cJSON *fm_decision_policy_to_json(const fm_decision_policy_t *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON *rules = o ? cJSON_CreateArray() : NULL;
    int ok = rules && fm_json_add_number(o, "approve_at", p->approve_at) &&
             fm_json_add_number(o, "decline_below", p->decline_below) &&
             cJSON_AddItemToObject(o, "rules", rules);
    if (!ok) cJSON_Delete(rules);
    for (size_t i = 0; ok && i < p->nrules; i++) {
        const fm_decision_rule_t *r = &p->rules[i];
        cJSON *j = cJSON_CreateObject();
        ok = j && cJSON_AddItemToArray(rules, j);
        if (!ok) {
            cJSON_Delete(j);
            break;
        }
        ok = cJSON_AddStringToObject(j, "feature", r->feature) &&
             cJSON_AddStringToObject(j, "op", OPS[r->op]);
        if (ok && r->op != FM_RULE_MISSING)
            ok = r->is_text ? cJSON_AddStringToObject(j, "value", r->text) != NULL
                            : fm_json_add_number(j, "value", r->number) != NULL;
        ok = ok && cJSON_AddStringToObject(j, "decision", fm_decision_name(r->decision)) &&
             cJSON_AddStringToObject(j, "reason", r->reason);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The shortest text of a number that reads back (as the preprocessing names categories). */
static size_t number_text(double v, char buf[32]) {
    if (v == 0) v = 0;
    int n = 0;
    for (int precision = 15; precision <= 17; precision++) {
        n = snprintf(buf, 32, "%.*g", precision, v);
        if (strtod(buf, NULL) == v) break;
    }
    return (size_t)n;
}

/* Text without surrounding spaces. */
static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

int fm_decision_rule_fires(const fm_decision_rule_t *r, const fm_raw_value_t *v, int *fires,
                           fm_error_t *err) {
    const char *s = v->str;
    size_t n = v->len;
    if (v->kind == FM_RAW_STRING) trim(&s, &n);
    int missing = v->kind == FM_RAW_MISSING || (v->kind == FM_RAW_NUMBER && isnan(v->number)) ||
                  (v->kind == FM_RAW_STRING && fm_value_is_missing(s, n));
    *fires = 0;
    if (r->op == FM_RULE_MISSING || missing) {
        *fires = r->op == FM_RULE_MISSING && missing;
        return FM_OK;
    }
    if (r->is_text) {
        char buf[32];
        if (v->kind == FM_RAW_NUMBER) {
            n = number_text(v->number, buf);
            s = buf;
        }
        int equal = strlen(r->text) == n && memcmp(r->text, s, n) == 0;
        *fires = r->op == FM_RULE_EQ ? equal : !equal;
        return FM_OK;
    }
    double x = v->number;
    if (v->kind == FM_RAW_STRING && fm_value_parse_number(s, n, &x) != FM_OK)
        return fm_error_set(err, FM_EDATA,
                            "field '%s': the rule \"%s %s %.17g\" needs a number, the value is "
                            "not one",
                            r->feature, r->feature, OPS[r->op], r->number);
    switch (r->op) {
    case FM_RULE_LT:
        *fires = x < r->number;
        break;
    case FM_RULE_LE:
        *fires = x <= r->number;
        break;
    case FM_RULE_GT:
        *fires = x > r->number;
        break;
    case FM_RULE_GE:
        *fires = x >= r->number;
        break;
    case FM_RULE_EQ:
        *fires = x == r->number;
        break;
    case FM_RULE_NE:
        *fires = x != r->number;
        break;
    case FM_RULE_MISSING:
        break;
    }
    return FM_OK;
}
