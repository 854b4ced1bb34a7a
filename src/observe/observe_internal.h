/*
 * Internals of the observe area shared between its files and its unit tests; not for other areas.
 */
#ifndef FM_OBSERVE_INTERNAL_H
#define FM_OBSERVE_INTERNAL_H

#include <time.h>

/* Length of fm_observe_format_utc's text. */
#define FM_OBSERVE_UTC_LEN 24

/*
 * Writes ts as UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" (FM_OBSERVE_UTC_LEN bytes, no NUL) to out, without
 * gmtime_r, locale or lock. Years outside 0..9999 are clamped to them.
 */
void fm_observe_format_utc(char *out, const struct timespec *ts);

#endif
