/*
 * Monotonic and wall-clock time.
 */
#define _POSIX_C_SOURCE 200809L
#include "core/clock.h"

#include <time.h>

double fm_clock_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void fm_clock_utc_iso8601(char *out, size_t size) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
