/*
 * Chunked reading of the columns a model needs.
 */
#include "cli/scoring.h"

#include <stdlib.h>
#include <string.h>

int fm_scoring_open(const fm_model_t *model, const char *path, const fm_column_spec_t *extra,
                    size_t nextra, fm_frame_reader_t **out, fm_error_t *err) {
    const fm_prep_t *prep = model->prep;
    fm_column_spec_t *specs = malloc((prep->ncolumns + nextra) * sizeof *specs);
    if (!specs) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < prep->ncolumns; i++)
        specs[n++] = (fm_column_spec_t){prep->columns[i].name, prep->columns[i].type, 1,
                                        prep->columns[i].pii};
    for (size_t e = 0; e < nextra; e++)
        if (fm_prep_find(prep, extra[e].name) < 0) specs[n++] = extra[e];
    int rc = fm_frame_reader_open(path, specs, n, out, err);
    free(specs);
    return rc;
}
