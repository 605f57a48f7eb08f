/* Helpers shared by the Check suites. */
#ifndef STDCPU_TESTS_TESTUTIL_H
#define STDCPU_TESTS_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STDCPU_TEST_SKIP 77

/* Path under ../shared (from $STDCPU_SHARED) or NULL when the folder or the
 * file is absent. Returns a static buffer: copy it if you need two. */
const char *stdcpu_test_shared(const char *rel);

/* A fresh, empty temporary directory for this test process (removed at exit). */
const char *stdcpu_test_tmpdir(void);

/* Runs the suite; returns the process exit code (0 pass, 1 fail). */
int stdcpu_test_run(Suite *s);

/* Relative L2 error sqrt(sum (got - want)^2 / sum want^2), in double
 * (the absolute L2 norm when want is all zero). */
double stdcpu_test_rel_l2(const float *got, const float *want, size_t n);

/* Deterministic pseudo-random numbers for test data (xorshift). */
typedef struct { unsigned long long s; } stdcpu_test_rng;
static inline unsigned long long stdcpu_test_next(stdcpu_test_rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}
static inline float stdcpu_test_uniform(stdcpu_test_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((stdcpu_test_next(r) >> 40) * (1.0 / 16777216.0));
}

#endif
