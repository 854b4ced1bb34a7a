/*
 * The HDF5 side of the Keras import: reading text attributes (model_config, layer_names,
 * weight_names, keras_version) and weight datasets through the libhdf5 C API, checking every
 * size and type the file declares before memory is allocated for it, and turning libhdf5's error
 * stack into one line.
 *
 * Keras writes text attributes through h5py, which stores a Python str as a variable-length
 * UTF-8 string and a NumPy bytes array as fixed-length strings; Keras 2 used both over its
 * releases, so both are read. Weights are read as doubles whatever their stored float type, with
 * libhdf5 doing the conversion (exact for float32).
 */
#include "import/keras.h"
#include "import/keras_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct last_error {
    char *buf;
    size_t size;
    int found;
} last_error_t;

static herr_t take_first(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    last_error_t *w = data;
    if (!w->found && e->desc && e->desc[0]) {
        snprintf(w->buf, w->size, "%s", e->desc);
        w->found = 1;
    }
    return 0;
}

void fm_keras_h5_last_error(char *buf, size_t size) {
    if (!size) return;
    buf[0] = '\0';
    last_error_t w = {buf, size, 0};
    /* Upward: the first entry is where the failure arose, the most specific description. */
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_first, &w);
}

static void close_attr(hid_t id) {
    if (id >= 0) H5Aclose(id);
}
static void close_type(hid_t id) {
    if (id >= 0) H5Tclose(id);
}
static void close_space(hid_t id) {
    if (id >= 0) H5Sclose(id);
}

void fm_keras_strings_free(fm_keras_strings_t *s) {
    if (!s) return;
    for (size_t i = 0; s->items && i < s->count; i++)
        free(s->items[i]);
    free(s->items);
    s->items = NULL;
    s->count = 0;
}

/* Number of elements of a scalar, null or 1-D dataspace; -1 for a higher rank or an error. */
static long long points_1d(hid_t space) {
    H5S_class_t kind = H5Sget_simple_extent_type(space);
    if (kind == H5S_NULL) return 0;
    if (kind == H5S_SCALAR) return 1;
    if (kind != H5S_SIMPLE || H5Sget_simple_extent_ndims(space) != 1) return -1;
    hssize_t n = H5Sget_simple_extent_npoints(space);
    return n < 0 ? -1 : (long long)n;
}

static int read_variable(hid_t attr, hid_t type, hid_t space, size_t n, fm_keras_strings_t *out,
                         const char *what, const char *name, fm_error_t *err) {
    char detail[256];
    char **ptrs = calloc(n, sizeof *ptrs);
    hid_t mem = H5Tcopy(H5T_C_S1);
    int rc = FM_OK;
    if (!ptrs || mem < 0) {
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    } else if (H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Tset_cset(mem, H5Tget_cset(type)) < 0 ||
               H5Aread(attr, mem, ptrs) < 0) {
        fm_keras_h5_last_error(detail, sizeof detail);
        free(ptrs);
        close_type(mem);
        return fm_error_set(err, FM_EFORMAT, "%s: cannot read attribute '%s' (%s)", what, name,
                            detail);
    }
    size_t total = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t len = ptrs[i] ? strlen(ptrs[i]) : 0;
        total += len;
        if (total > FM_KERAS_MAX_ATTRIBUTE_BYTES)
            rc = fm_error_set(err, FM_EFORMAT, "%s: attribute '%s' is larger than %zu bytes", what,
                              name, FM_KERAS_MAX_ATTRIBUTE_BYTES);
        else if (!(out->items[i] = strdup(ptrs[i] ? ptrs[i] : "")))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (ptrs && mem >= 0) {
#if H5_VERSION_GE(1, 12, 0)
        H5Treclaim(mem, space, H5P_DEFAULT, ptrs);
#else
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs);
#endif
    }
    free(ptrs);
    close_type(mem);
    return rc;
}

static int read_fixed(hid_t attr, hid_t type, size_t n, fm_keras_strings_t *out, const char *what,
                      const char *name, fm_error_t *err) {
    char detail[256];
    size_t size = H5Tget_size(type);
    if (size == 0 || size > FM_KERAS_MAX_ATTRIBUTE_BYTES / n)
        return fm_error_set(err, FM_EFORMAT, "%s: attribute '%s' is larger than %zu bytes", what,
                            name, FM_KERAS_MAX_ATTRIBUTE_BYTES);
    char *buf = malloc(n * size);
    hid_t mem = H5Tcopy(H5T_C_S1);
    int rc = FM_OK;
    if (!buf || mem < 0) {
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    } else if (H5Tset_size(mem, size) < 0 || H5Tset_strpad(mem, H5T_STR_NULLPAD) < 0 ||
               H5Tset_cset(mem, H5Tget_cset(type)) < 0 || H5Aread(attr, mem, buf) < 0) {
        /* NULLPAD in memory keeps all `size` bytes of a string that fills its slot. */
        fm_keras_h5_last_error(detail, sizeof detail);
        rc = fm_error_set(err, FM_EFORMAT, "%s: cannot read attribute '%s' (%s)", what, name,
                          detail);
    }
    for (size_t i = 0; !rc && i < n; i++)
        if (!(out->items[i] = strndup(buf + i * size, size)))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    free(buf);
    close_type(mem);
    return rc;
}

int fm_keras_h5_strings(hid_t obj, const char *what, const char *name, fm_keras_strings_t *out,
                        fm_error_t *err) {
    memset(out, 0, sizeof *out);
    char detail[256];
    htri_t exists = H5Aexists(obj, name);
    if (exists == 0) return fm_error_set(err, FM_ENOTFOUND, "%s has no attribute '%s'", what, name);
    hid_t attr = exists > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : -1;
    hid_t type = attr >= 0 ? H5Aget_type(attr) : -1;
    hid_t space = attr >= 0 ? H5Aget_space(attr) : -1;
    if (type < 0 || space < 0) {
        fm_keras_h5_last_error(detail, sizeof detail);
        close_type(type);
        close_space(space);
        close_attr(attr);
        return fm_error_set(err, FM_EFORMAT, "%s: cannot open attribute '%s' (%s)", what, name,
                            detail);
    }
    int rc = FM_OK;
    long long n = points_1d(space);
    if (n < 0) {
        rc = fm_error_set(err, FM_EFORMAT, "%s: attribute '%s' is not a scalar or a list", what,
                          name);
    } else if (n > 0 && H5Tget_class(type) != H5T_STRING) {
        rc = fm_error_set(err, FM_EFORMAT, "%s: attribute '%s' is not text", what, name);
    } else if ((size_t)n > FM_KERAS_MAX_ATTRIBUTE_BYTES / sizeof(char *)) {
        rc = fm_error_set(err, FM_EFORMAT, "%s: attribute '%s' has %lld items", what, name, n);
    } else if (n > 0) {
        if (!(out->items = calloc((size_t)n, sizeof *out->items)))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        else
            out->count = (size_t)n;
        htri_t variable = rc ? 0 : H5Tis_variable_str(type);
        if (!rc && variable < 0)
            rc = fm_error_set(err, FM_EFORMAT, "%s: attribute '%s' has an unreadable type", what,
                              name);
        else if (!rc && variable > 0)
            rc = read_variable(attr, type, space, (size_t)n, out, what, name, err);
        else if (!rc)
            rc = read_fixed(attr, type, (size_t)n, out, what, name, err);
    }
    close_type(type);
    close_space(space);
    close_attr(attr);
    if (rc) fm_keras_strings_free(out);
    return rc;
}

/* "[12, 64]"; with any_zero a dimension of 0 reads "*" (any). */
static void shape_text(char *buf, size_t size, int rank, const size_t *dims, int any_zero) {
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int k = 0; k < rank && at < size; k++) {
        const char *sep = k ? ", " : "";
        if (any_zero && dims[k] == 0)
            at += (size_t)snprintf(buf + at, size - at, "%s*", sep);
        else
            at += (size_t)snprintf(buf + at, size - at, "%s%zu", sep, dims[k]);
    }
    if (at < size) snprintf(buf + at, size - at, "]");
}

/* Checks the dataset's type and shape against what the caller wants; fills want's free dims. */
static int check_dataset(hid_t ds, const char *path, int rank, size_t *want, size_t *count,
                         fm_error_t *err) {
    hid_t type = H5Dget_type(ds);
    hid_t space = H5Dget_space(ds);
    int rc = FM_OK;
    if (type < 0 || space < 0) {
        rc = fm_error_set(err, FM_EFORMAT, "dataset '%s' has an unreadable type or shape", path);
    } else if (H5Tget_class(type) != H5T_FLOAT ||
               (H5Tget_size(type) != 4 && H5Tget_size(type) != 8)) {
        H5T_class_t cls = H5Tget_class(type);
        rc = fm_error_set(err, FM_EFORMAT,
                          "dataset '%s' holds %s of %zu bytes, not float32 or "
                          "float64",
                          path,
                          cls == H5T_INTEGER  ? "integers"
                          : cls == H5T_FLOAT  ? "floats"
                          : cls == H5T_STRING ? "text"
                                              : "values",
                          H5Tget_size(type));
    }
    hsize_t dims[H5S_MAX_RANK];
    int ndims = rc ? 0 : H5Sget_simple_extent_ndims(space);
    if (!rc && (ndims < 0 || H5Sget_simple_extent_dims(space, dims, NULL) < 0))
        rc = fm_error_set(err, FM_EFORMAT, "dataset '%s' has an unreadable shape", path);
    size_t have[H5S_MAX_RANK];
    for (int k = 0; !rc && k < ndims; k++)
        have[k] = (size_t)dims[k];
    int same = !rc && ndims == rank;
    for (int k = 0; same && k < rank; k++)
        same = want[k] == 0 || want[k] == have[k];
    if (!rc && !same) {
        char got[128], expected[128];
        shape_text(got, sizeof got, ndims, have, 0);
        shape_text(expected, sizeof expected, rank, want, 1);
        rc = fm_error_set(err, FM_EFORMAT, "dataset '%s' has shape %s, expected %s", path, got,
                          expected);
    }
    size_t n = 1;
    for (int k = 0; !rc && k < rank; k++) {
        if (have[k] == 0 || have[k] > (size_t)FM_KERAS_MAX_WIDTH)
            rc = fm_error_set(err, FM_ELIMIT, "dataset '%s': dimension %d is %s (1 to %d allowed)",
                              path, k, have[k] ? "too large" : "0", FM_KERAS_MAX_WIDTH);
        else if (have[k] > FM_KERAS_MAX_PARAMETERS / n)
            rc = fm_error_set(err, FM_ELIMIT, "dataset '%s' has more than %zu values", path,
                              FM_KERAS_MAX_PARAMETERS);
        else
            n *= have[k];
        want[k] = have[k];
    }
    close_type(type);
    close_space(space);
    *count = n;
    return rc;
}

int fm_keras_h5_tensor(hid_t group, const char *path, int rank, size_t *want, double **out,
                       fm_error_t *err) {
    *out = NULL;
    char detail[256];
    hid_t ds = H5Dopen2(group, path, H5P_DEFAULT);
    if (ds < 0) {
        fm_keras_h5_last_error(detail, sizeof detail);
        return fm_error_set(err, FM_EFORMAT, "dataset '%s' is missing or unreadable (%s)", path,
                            detail);
    }
    size_t n = 0;
    int rc = check_dataset(ds, path, rank, want, &n, err);
    double *v = rc ? NULL : malloc(n * sizeof *v);
    if (!rc && !v) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        fm_keras_h5_last_error(detail, sizeof detail);
        rc = fm_error_set(err, FM_EFORMAT, "dataset '%s' cannot be read (%s)", path, detail);
    }
    for (size_t i = 0; !rc && i < n; i++)
        if (!isfinite(v[i]))
            rc = fm_error_set(err, FM_EFORMAT,
                              "dataset '%s' holds a non-finite value (%g) at "
                              "flat index %zu",
                              path, v[i], i);
    H5Dclose(ds);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    return FM_OK;
}
