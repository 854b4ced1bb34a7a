/*
 * Progress reporting for long tasks (training epochs, search candidates). On a terminal it draws
 * one line that redraws itself: a bar, the step, the caller's figures, elapsed time and time left.
 * When the output is not a terminal it writes plain lines instead, at most one a second plus the
 * last, so logs stay readable. Plain struct, one per task; not thread-safe.
 */
#ifndef FM_CORE_PROGRESS_H
#define FM_CORE_PROGRESS_H

#include <stdio.h>

typedef struct fm_progress {
    FILE *out;          /* NULL: report nothing */
    int tty;            /* out is a terminal */
    char label[32];     /* e.g. "epoch" */
    long total;         /* number of steps expected */
    double start;       /* fm_clock_seconds() at init */
    double last_report; /* time of the last plain line */
    int drawn;          /* a terminal line is on screen */
} fm_progress_t;

/* Starts reporting to out (NULL to stay silent) for total steps named label. */
void fm_progress_init(fm_progress_t *p, FILE *out, const char *label, long total);
/* Reports that done steps are finished; figures (may be NULL) is shown after the step count. */
void fm_progress_update(fm_progress_t *p, long done, const char *figures);
/* Ends the report: the last state stays on screen (terminal) or is written as a line. */
void fm_progress_finish(fm_progress_t *p, long done, const char *figures);
/* Ends the report after a failure: ends the terminal line so an error message starts afresh. */
void fm_progress_abandon(fm_progress_t *p);

#endif
