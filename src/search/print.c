/*
 * Plain-text tables of a search's results for the command line: the leaderboard with the test
 * metrics of the refit winner, and the Information Value table.
 */
#include "search/search_internal.h"

#include <math.h>
#include <string.h>

/* A compact one-line rendering of a candidate's settings (all but the family). */
static void settings_text(const cJSON *params, char *out, size_t size) {
    size_t len = 0;
    out[0] = '\0';
    for (const cJSON *it = params ? params->child : NULL; it && len + 1 < size; it = it->next) {
        if (!strcmp(it->string, "family")) continue;
        char value[64] = "";
        if (cJSON_IsString(it)) {
            snprintf(value, sizeof value, "%s", it->valuestring);
        } else if (cJSON_IsNumber(it)) {
            const char *key = !strcmp(it->string, "learning_rate") ? "lr"
                              : !strcmp(it->string, "max_depth")   ? "depth"
                                                                   : it->string;
            snprintf(value, sizeof value, "%s=%g", key, it->valuedouble);
        } else if (cJSON_IsArray(it)) {
            size_t v = (size_t)snprintf(value, sizeof value, "h=");
            for (const cJSON *w = it->child; w && v + 12 < sizeof value; w = w->next)
                v += (size_t)snprintf(value + v, sizeof value - v, "%s%g",
                                      w == it->child ? "" : ",", w->valuedouble);
        }
        int n = snprintf(out + len, size - len, "%s%s", len ? " " : "", value);
        if (n < 0 || (size_t)n >= size - len) break;
        len += (size_t)n;
    }
}

static double number_or_nan(const cJSON *obj, const char *key) {
    const cJSON *it = cJSON_GetObjectItem(obj, key);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

void fm_search_leaderboard_print(FILE *out, const fm_search_result_t *r) {
    const cJSON *board = r->leaderboard;
    const cJSON *first = board ? board->child : NULL;
    const cJSON *metric = first ? cJSON_GetObjectItem(first, "metric") : NULL;
    const char *name = cJSON_IsString(metric) ? metric->valuestring : "metric";
    char mean_head[32];
    snprintf(mean_head, sizeof mean_head, "%s mean", name);
    fprintf(out, "%4s %4s  %-8s %-58s %12s %8s %8s %9s  %s\n", "rank", "cand", "family", "settings",
            mean_head, "std", "train s", "us/row", "status");
    for (const cJSON *e = first; e; e = e->next) {
        const cJSON *params = cJSON_GetObjectItem(e, "params");
        const cJSON *family = cJSON_GetObjectItem(params, "family");
        const cJSON *status = cJSON_GetObjectItem(e, "status");
        char settings[256];
        settings_text(params, settings, sizeof settings);
        char rank[16] = "-";
        if (cJSON_IsNumber(cJSON_GetObjectItem(e, "rank")))
            snprintf(rank, sizeof rank, "%d", (int)number_or_nan(e, "rank"));
        int ok = cJSON_IsString(status) && !strcmp(status->valuestring, "ok");
        fprintf(out, "%4s %4d  %-8s %-58.58s ", rank, (int)number_or_nan(e, "index"),
                cJSON_IsString(family) ? family->valuestring : "?", settings);
        if (ok) {
            fprintf(out, "%12.4f %8.4f %8.2f %9.2f  ok%s\n", number_or_nan(e, "mean"),
                    number_or_nan(e, "std"), number_or_nan(e, "train_seconds"),
                    number_or_nan(e, "predict_us_per_row"),
                    cJSON_IsTrue(cJSON_GetObjectItem(e, "selected")) ? ", selected" : "");
        } else {
            const cJSON *why = cJSON_GetObjectItem(e, "error");
            fprintf(out, "%12s %8s %8s %9s  failed: %.100s\n", "-", "-", "-", "-",
                    cJSON_IsString(why) ? why->valuestring : "");
        }
    }
    const cJSON *v = r->validation;
    const cJSON *rows = cJSON_GetObjectItem(v, "rows");
    const cJSON *scheme = cJSON_GetObjectItem(v, "description");
    if (v)
        fprintf(out,
                "\nvalidation: %s, %d fold(s) on %.0f training rows; %.0f test rows set aside\n",
                cJSON_IsString(scheme) ? scheme->valuestring : "?", (int)number_or_nan(v, "folds"),
                number_or_nan(rows, "train"), number_or_nan(rows, "test"));
    const cJSON *selection = cJSON_GetObjectItem(v, "selection");
    int one_se = cJSON_IsString(selection) && !strcmp(selection->valuestring, "one_se");
    if (r->best >= 0)
        fprintf(out, "selected: candidate %ld (%s), refit on all %.0f training rows\n", r->best,
                one_se ? "the simplest within one standard error of the best" : "the best mean",
                number_or_nan(rows, "train"));
    const cJSON *t = r->test_metrics;
    if (cJSON_IsObject(t)) {
        fprintf(out, "test:");
        static const char *const keys[] = {"auc", "ks",   "gini", "logloss", "accuracy",
                                           "f1",  "rmse", "mae",  "r2"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (cJSON_IsNumber(cJSON_GetObjectItem(t, keys[i])))
                fprintf(out, " %s %.4f", keys[i], number_or_nan(t, keys[i]));
        fprintf(out, " (%.0f rows)\n", number_or_nan(t, "rows"));
    }
    const cJSON *imp = r->importance;
    const cJSON *features = cJSON_GetObjectItem(imp, "features");
    if (cJSON_IsArray(features) && features->child) {
        fprintf(out, "permutation importance on the test rows (drop in %s, %d repeats):",
                cJSON_GetObjectItem(imp, "metric") ? cJSON_GetObjectItem(imp, "metric")->valuestring
                                                   : "metric",
                (int)number_or_nan(imp, "repeats"));
        int shown = 0;
        for (const cJSON *f = features->child; f && shown < 8; f = f->next, shown++)
            fprintf(out, "%s %s %.4f", shown ? "," : "",
                    cJSON_GetObjectItem(f, "feature")->valuestring, number_or_nan(f, "mean"));
        fprintf(out, "%s\n", cJSON_GetArraySize(features) > 8 ? ", ..." : "");
    }
}

void fm_search_iv_print(FILE *out, const cJSON *features) {
    if (!cJSON_IsArray(features) || !features->child) return;
    fprintf(out, "%-28s %-11s %8s  %-10s %5s  %s\n", "feature", "type", "IV", "strength", "bins",
            "");
    for (const cJSON *f = features->child; f; f = f->next) {
        const cJSON *name = cJSON_GetObjectItem(f, "feature");
        const cJSON *type = cJSON_GetObjectItem(f, "type");
        const cJSON *strength = cJSON_GetObjectItem(f, "strength");
        int bins = cJSON_GetArraySize(cJSON_GetObjectItem(f, "bins")) +
                   (int)(cJSON_IsNumber(cJSON_GetObjectItem(f, "bins_omitted"))
                             ? number_or_nan(f, "bins_omitted")
                             : 0);
        fprintf(out, "%-28.28s %-11s %8.4f  %-10s %5d  %s\n",
                cJSON_IsString(name) ? name->valuestring : "?",
                cJSON_IsString(type) ? type->valuestring : "?", number_or_nan(f, "iv"),
                cJSON_IsString(strength) ? strength->valuestring : "?", bins,
                cJSON_IsTrue(cJSON_GetObjectItem(f, "dropped")) ? "dropped" : "");
    }
}
