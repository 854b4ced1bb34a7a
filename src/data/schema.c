/*
 * Column type overrides: a short list of (column name, type) pairs that replace inferred types,
 * loaded from a schema file (a JSON object {"column": "type", ...}) or built in code. Lists are
 * small (one entry per overridden column), so lookups are linear.
 */
#include "core/fs.h"
#include "core/json.h"
#include "data/data.h"

#include <stdlib.h>
#include <string.h>

/* A schema is a hand-written file of one line per column; anything larger is a mistake. */
#define SCHEMA_MAX_BYTES (4u << 20)

int fm_type_overrides_find(const fm_type_overrides_t *o, const char *name) {
    if (!o) return -1;
    for (size_t i = 0; i < o->count; i++)
        if (strcmp(o->names[i], name) == 0) return (int)o->types[i];
    return -1;
}

/* Sets the type of name, replacing an earlier override for the same column. */
int fm_type_overrides_add(fm_type_overrides_t *o, const char *name, fm_column_type_t type) {
    for (size_t i = 0; i < o->count; i++) {
        if (strcmp(o->names[i], name) == 0) {
            o->types[i] = type;
            return FM_OK;
        }
    }
    char *copy = strdup(name);
    char **names = copy ? realloc(o->names, (o->count + 1) * sizeof *names) : NULL;
    if (names) o->names = names;
    fm_column_type_t *types = names ? realloc(o->types, (o->count + 1) * sizeof *types) : NULL;
    if (!types) {
        free(copy);
        return FM_ENOMEM;
    }
    o->types = types;
    o->names[o->count] = copy;
    o->types[o->count] = type;
    o->count++;
    return FM_OK;
}

void fm_type_overrides_free(fm_type_overrides_t *o) {
    if (!o) return;
    for (size_t i = 0; i < o->count; i++)
        free(o->names[i]);
    free(o->names);
    free(o->types);
    memset(o, 0, sizeof *o);
}

static int load_entries(const char *path, const cJSON *root, fm_type_overrides_t *out,
                        fm_error_t *err) {
    if (!cJSON_IsObject(root))
        return fm_error_set(err, FM_EFORMAT,
                            "%s: a schema must be a JSON object mapping column names to types",
                            path);
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        const char *name = entry->string;
        if (!name || !*name)
            return fm_error_set(err, FM_EFORMAT, "%s: entry with an empty column name", path);
        if (fm_type_overrides_find(out, name) >= 0)
            return fm_error_set(err, FM_EFORMAT, "%s: entry '%s' appears more than once", path,
                                name);
        fm_column_type_t type;
        if (!cJSON_IsString(entry))
            return fm_error_set(err, FM_EFORMAT,
                                "%s: entry '%s': type must be a string (\"numeric\" or "
                                "\"categorical\")",
                                path, name);
        if (fm_column_type_parse(entry->valuestring, &type) != FM_OK)
            return fm_error_set(err, FM_EFORMAT,
                                "%s: entry '%s': unknown type '%.64s' (expected \"numeric\" or "
                                "\"categorical\")",
                                path, name, entry->valuestring);
        if (fm_type_overrides_add(out, name, type) != FM_OK)
            return fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    }
    return FM_OK;
}

int fm_type_overrides_load(const char *path, fm_type_overrides_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    int rc = fm_file_read_all(path, SCHEMA_MAX_BYTES, &text, &len, err);
    if (rc) return rc;
    cJSON *root = NULL;
    rc = fm_json_parse(text, len, path, &root, err);
    free(text);
    if (rc) return rc;
    rc = load_entries(path, root, out, err);
    cJSON_Delete(root);
    if (rc) fm_type_overrides_free(out);
    return rc;
}
