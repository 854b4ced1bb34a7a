/*
 * Terminal progress bar and plain progress lines.
 */
#define _POSIX_C_SOURCE 200809L
#include "core/progress.h"
#include "core/clock.h"

#include <string.h>
#include <unistd.h>

void fm_progress_init(fm_progress_t *p, FILE *out, const char *label, long total) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = out && isatty(fileno(out));
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total > 0 ? total : 1;
    p->start = fm_clock_seconds();
    p->last_report = -1.0;
}

static void format_duration(char *out, size_t size, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, size, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60)
        snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, size, "%.1fs", seconds);
}

static void report(fm_progress_t *p, long done, const char *figures, int final) {
    if (!p->out) return;
    double now = fm_clock_seconds();
    double elapsed = now - p->start;
    if (!p->tty && !final && p->last_report >= 0 && now - p->last_report < 1.0) return;
    p->last_report = now;
    char spent[32], left[32];
    format_duration(spent, sizeof spent, elapsed);
    double remaining = done > 0 ? elapsed * (double)(p->total - done) / (double)done : 0.0;
    format_duration(left, sizeof left, remaining);
    if (p->tty) {
        enum { WIDTH = 24 };
        char bar[WIDTH + 1];
        long filled = done * WIDTH / p->total;
        for (long i = 0; i < WIDTH; i++)
            bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
        bar[WIDTH] = '\0';
        p->drawn = !final;
        fprintf(p->out, "\r\033[K%s %ld/%ld [%s] %s  %s, %s left", p->label, done, p->total, bar,
                figures ? figures : "", spent, left);
        if (final) fputc('\n', p->out);
    } else {
        fprintf(p->out, "%s %ld/%ld %s elapsed %s left %s\n", p->label, done, p->total,
                figures ? figures : "", spent, final ? "0.0s" : left);
    }
    fflush(p->out);
}

void fm_progress_update(fm_progress_t *p, long done, const char *figures) {
    report(p, done, figures, 0);
}

void fm_progress_finish(fm_progress_t *p, long done, const char *figures) {
    report(p, done, figures, 1);
}

void fm_progress_abandon(fm_progress_t *p) {
    if (p->out && p->tty && p->drawn) fputc('\n', p->out);
    p->drawn = 0;
}
