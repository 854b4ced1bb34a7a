/*
 * The unit-test harness: a test is a function; FM_CHECK* record failures with file and line and go
 * on; main() runs the listed tests and exits non-zero when any check failed. Each test executable
 * runs in its own process under CTest with a timeout. Numerical checks print the largest
 * difference, as llm.c's tests do, so a near miss is visible.
 */
#ifndef FM_TEST_H
#define FM_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fm_test_failures;
static const char *fm_test_current;

#define FM_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s (%s:%d): %s\n", fm_test_current, __FILE__, __LINE__, #cond);  \
            fm_test_failures++;                                                                    \
        }                                                                                          \
    } while (0)

#define FM_CHECK_MSG(cond, ...)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s (%s:%d): %s: ", fm_test_current, __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            fm_test_failures++;                                                                    \
        }                                                                                          \
    } while (0)

#define FM_CHECK_INT(a, b)                                                                         \
    do {                                                                                           \
        long long fm_a_ = (long long)(a), fm_b_ = (long long)(b);                                  \
        if (fm_a_ != fm_b_) {                                                                      \
            fprintf(stderr, "FAIL %s (%s:%d): %s == %s: %lld != %lld\n", fm_test_current,          \
                    __FILE__, __LINE__, #a, #b, fm_a_, fm_b_);                                     \
            fm_test_failures++;                                                                    \
        }                                                                                          \
    } while (0)

#define FM_CHECK_NEAR(a, b, tol)                                                                   \
    do {                                                                                           \
        double fm_a_ = (double)(a), fm_b_ = (double)(b);                                           \
        if (!(fabs(fm_a_ - fm_b_) <= (tol))) {                                                     \
            fprintf(stderr, "FAIL %s (%s:%d): %s ~ %s: %.17g vs %.17g (diff %.3g > %.3g)\n",       \
                    fm_test_current, __FILE__, __LINE__, #a, #b, fm_a_, fm_b_,                     \
                    fabs(fm_a_ - fm_b_), (double)(tol));                                           \
            fm_test_failures++;                                                                    \
        }                                                                                          \
    } while (0)

#define FM_CHECK_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *fm_a_ = (a), *fm_b_ = (b);                                                     \
        if (!fm_a_ || !fm_b_ || strcmp(fm_a_, fm_b_) != 0) {                                       \
            fprintf(stderr, "FAIL %s (%s:%d): %s == %s: \"%s\" != \"%s\"\n", fm_test_current,      \
                    __FILE__, __LINE__, #a, #b, fm_a_ ? fm_a_ : "(null)",                          \
                    fm_b_ ? fm_b_ : "(null)");                                                     \
            fm_test_failures++;                                                                    \
        }                                                                                          \
    } while (0)

/* Largest absolute difference between two arrays, printed with a label. */
static inline double fm_test_max_diff(const char *label, const double *a, const double *b,
                                      size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > worst || d != d) worst = d;
    }
    printf("  %-40s max |diff| = %.3g\n", label, worst);
    return worst;
}

typedef struct {
    const char *name;
    void (*fn)(void);
} fm_test_case_t;

#define FM_TEST_CASE(fn)                                                                           \
    { #fn, fn }

static inline int fm_test_run(const fm_test_case_t *cases, size_t n, int argc, char **argv) {
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
        fm_test_current = cases[i].name;
        int before = fm_test_failures;
        cases[i].fn();
        printf("%s %s\n", fm_test_failures == before ? "ok  " : "FAIL", cases[i].name);
    }
    if (fm_test_failures) fprintf(stderr, "%d check(s) failed\n", fm_test_failures);
    return fm_test_failures ? 1 : 0;
}

#define FM_TEST_MAIN(...)                                                                          \
    int main(int argc, char **argv) {                                                              \
        static const fm_test_case_t cases[] = {__VA_ARGS__};                                       \
        return fm_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);                     \
    }

#endif
