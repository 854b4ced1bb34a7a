/*
 * Time: a monotonic clock for durations and the wall clock for timestamps.
 */
#ifndef FM_CORE_CLOCK_H
#define FM_CORE_CLOCK_H

#include <stddef.h>

/* Seconds from an arbitrary fixed point, monotonic; for measuring durations. */
double fm_clock_seconds(void);

/* The current UTC time as ISO 8601 ("2026-11-29T20:53:50Z") in out (at least 21 bytes). */
void fm_clock_utc_iso8601(char *out, size_t size);

#endif
