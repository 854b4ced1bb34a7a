/*
 * The search's target: the column the specification names, read by fm_train's own rules
 * (train/target.h), so that the search stratifies its splits by the classes, and in the order,
 * that training sees. Models' class lists are still matched by name afterwards
 * (search_labels_for_model).
 */
#include "search/search_internal.h"

#include <string.h>

int search_target_resolve(const fm_frame_t *frame, const char *name, int task, const char *positive,
                          fm_target_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    int col = fm_frame_find(frame, name);
    if (col < 0)
        return fm_error_set(err, FM_EINVAL, "target: column '%s' is not in %s", name,
                            frame->source ? frame->source : "the data");
    int rc = fm_target_resolve(frame, (size_t)col, task, positive, out, err);
    /* fm_train ignores a positive class beside a regression target; a specification that names
     * one says something it does not mean. */
    if (!rc && out->task == FM_TASK_REGRESSION && positive) {
        fm_target_deinit(out);
        rc = fm_error_set(err, FM_EINVAL, "positive: applies to binary targets only");
    }
    return rc;
}
