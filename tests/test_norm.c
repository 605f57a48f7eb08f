/* GroupNorm (NHWC, optional SiLU) and LayerNorm: every ISA through the
 * threaded entry points against a two-pass double-precision reference, on
 * odd shapes and on values with a large common offset (1000 + noise), for
 * 1..3 threads. */
#include <math.h>

#include "base/mem.h"
#include "core/ops_nn.h"
#include "simd/dispatch.h"
#include "testutil.h"

static int next_table(int i, const stdcpu_kernels **k)
{
    for (; i < STDCPU_ISA_COUNT; i++)
        if ((*k = stdcpu_kernels_for_isa((stdcpu_isa)i)) != NULL)
            return i;
    return -1;
}
#define FOR_EACH_TABLE(k) \
    for (int isa_ = next_table(0, &(k)); isa_ >= 0; isa_ = next_table(isa_ + 1, &(k)))

static void group_norm_ref(const float *x, size_t B, size_t HW, size_t C, size_t G, double eps,
                           const float *gamma, const float *beta, int silu, double *y)
{
    const size_t cg = C / G;
    for (size_t b = 0; b < B; b++)
        for (size_t g = 0; g < G; g++) {
            double s = 0, q = 0;
            for (size_t p = 0; p < HW; p++)
                for (size_t c = g * cg; c < (g + 1) * cg; c++)
                    s += x[(b * HW + p) * C + c];
            const double mean = s / (double)(HW * cg);
            for (size_t p = 0; p < HW; p++)
                for (size_t c = g * cg; c < (g + 1) * cg; c++) {
                    const double dv = x[(b * HW + p) * C + c] - mean;
                    q += dv * dv;
                }
            const double rstd = 1.0 / sqrt(q / (double)(HW * cg) + eps);
            for (size_t p = 0; p < HW; p++)
                for (size_t c = g * cg; c < (g + 1) * cg; c++) {
                    const size_t i = (b * HW + p) * C + c;
                    double v = (x[i] - mean) * rstd * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0);
                    if (silu)
                        v = v / (1.0 + exp(-v));
                    y[i] = v;
                }
        }
}

typedef struct {
    size_t B, H, W, C, G;
    float eps;
    int silu, affine;
    float offset; /* common offset of the values */
} gn_case;

/* Output ~ N(0,1)*gamma + beta: 2e-5 absolute. With an offset of 1000 the
 * f32 input itself has ulp 6e-5 and the group mean, stored in f32, is off
 * by up to ulp(1000)/2 = 3e-5 (times rstd ~ 1): allow 1e-4 there. */
static double gn_tol(const gn_case *c) { return c->offset > 100 ? 1e-4 : 2e-5; }

START_TEST(test_group_norm_vs_double)
{
    const gn_case cases[] = {
        {2, 3, 5, 12, 3, 1e-5f, 0, 1, 0},     {1, 8, 8, 64, 32, 1e-6f, 1, 1, 0},
        {1, 7, 9, 40, 8, 1e-5f, 0, 0, 0},     {1, 16, 16, 320, 32, 1e-6f, 1, 1, 1000},
        {1, 1, 1, 32, 32, 1e-5f, 0, 1, 0},    {3, 5, 7, 33, 11, 1e-5f, 1, 1, -3},
        {1, 13, 11, 96, 32, 1e-5f, 0, 1, 1000}, {2, 1, 2, 6, 1, 1e-5f, 1, 0, 0},
    };
    stdcpu_pool *pools[4];
    for (int t = 1; t <= 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t, NULL), STDCPU_OK);
    stdcpu_test_rng r = {0xfeedu};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const gn_case *c = &cases[ci];
        const size_t HW = c->H * c->W, n = c->B * HW * c->C;
        float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
        float *gamma = malloc(c->C * sizeof(float)), *beta = malloc(c->C * sizeof(float));
        double *want = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++) /* uniform with variance 1 (+-sqrt 3) */
            x[i] = c->offset + stdcpu_test_uniform(&r, -1.7320508f, 1.7320508f);
        for (size_t i = 0; i < c->C; i++) {
            gamma[i] = stdcpu_test_uniform(&r, 0.5f, 1.5f);
            beta[i] = stdcpu_test_uniform(&r, -0.5f, 0.5f);
        }
        const float *g = c->affine ? gamma : NULL, *b = c->affine ? beta : NULL;
        group_norm_ref(x, c->B, HW, c->C, c->G, c->eps, g, b, c->silu, want);
        const stdcpu_kernels *k;
        FOR_EACH_TABLE(k)
        {
            for (int t = 1; t <= 3; t++) {
                ck_assert_int_eq(stdcpu_group_norm(pools[t], k, x, c->B, c->H, c->W, c->C, c->G, c->eps, g, b,
                                                   c->silu, y, NULL),
                                 STDCPU_OK);
                double worst = 0;
                for (size_t i = 0; i < n; i++)
                    worst = fmax(worst, fabs(y[i] - want[i]));
                ck_assert_msg(worst <= gn_tol(c), "%s case %zu threads %d: max err %g",
                              stdcpu_isa_name((stdcpu_isa)isa_), ci, t, worst);
            }
            /* in place */
            float *z = malloc(n * sizeof(float));
            memcpy(z, x, n * sizeof(float));
            ck_assert_int_eq(stdcpu_group_norm(pools[1], k, z, c->B, c->H, c->W, c->C, c->G, c->eps, g, b,
                                               c->silu, z, NULL),
                             STDCPU_OK);
            ck_assert_int_eq(stdcpu_group_norm(pools[1], k, x, c->B, c->H, c->W, c->C, c->G, c->eps, g, b,
                                               c->silu, y, NULL),
                             STDCPU_OK);
            ck_assert(memcmp(y, z, n * sizeof(float)) == 0);
            free(z);
        }
        free(x);
        free(y);
        free(gamma);
        free(beta);
        free(want);
    }
    for (int t = 1; t <= 3; t++)
        stdcpu_pool_destroy(pools[t]);
    float v[4] = {0};
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_group_norm(NULL, NULL, v, 1, 1, 1, 4, 3, 1e-5f, NULL, NULL, 0, v, &err),
                     STDCPU_ERR_INVALID_ARG); /* 3 does not divide 4 */
    ck_assert_int_eq(stdcpu_group_norm(NULL, NULL, v, 1, 1, 1, 4, 0, 1e-5f, NULL, NULL, 0, v, &err),
                     STDCPU_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_layer_norm_vs_double)
{
    const size_t Cs[] = {1, 7, 16, 17, 40, 77, 640, 1283};
    const float offsets[] = {0, 1000};
    stdcpu_pool *pools[4];
    for (int t = 1; t <= 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t, NULL), STDCPU_OK);
    stdcpu_test_rng r = {0xbeefu};
    for (size_t ci = 0; ci < sizeof Cs / sizeof *Cs; ci++)
        for (size_t oi = 0; oi < 2; oi++) {
            const size_t C = Cs[ci], M = 19, n = M * C;
            float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *y1 = malloc(n * sizeof(float));
            float *gamma = malloc(C * sizeof(float)), *beta = malloc(C * sizeof(float));
            double *want = malloc(n * sizeof(double));
            for (size_t i = 0; i < n; i++)
                x[i] = offsets[oi] + stdcpu_test_uniform(&r, -1.7320508f, 1.7320508f);
            for (size_t i = 0; i < C; i++) {
                gamma[i] = stdcpu_test_uniform(&r, 0.5f, 1.5f);
                beta[i] = stdcpu_test_uniform(&r, -0.5f, 0.5f);
            }
            for (int affine = 0; affine < 2; affine++) {
                const float *g = affine ? gamma : NULL, *b = affine ? beta : NULL;
                for (size_t m = 0; m < M; m++) {
                    double s = 0, q = 0;
                    for (size_t c = 0; c < C; c++)
                        s += x[m * C + c];
                    const double mean = s / (double)C;
                    for (size_t c = 0; c < C; c++)
                        q += (x[m * C + c] - mean) * (x[m * C + c] - mean);
                    const double rstd = 1.0 / sqrt(q / (double)C + 1e-5);
                    for (size_t c = 0; c < C; c++)
                        want[m * C + c] = (x[m * C + c] - mean) * rstd * (g ? g[c] : 1.0) + (b ? b[c] : 0.0);
                }
                /* C == 1: var 0, the output is beta (x - mean = 0) */
                const double tol = offsets[oi] > 100 ? 1e-4 : 2e-5;
                const stdcpu_kernels *k;
                FOR_EACH_TABLE(k)
                {
                    for (int t = 1; t <= 3; t++) {
                        ck_assert_int_eq(stdcpu_layer_norm(pools[t], k, x, M, C, 1e-5f, g, b, t == 1 ? y1 : y, NULL),
                                         STDCPU_OK);
                        if (t > 1)
                            ck_assert(memcmp(y, y1, n * sizeof(float)) == 0);
                    }
                    double worst = 0;
                    for (size_t i = 0; i < n; i++)
                        worst = fmax(worst, fabs(y1[i] - want[i]));
                    ck_assert_msg(worst <= tol, "%s C=%zu offset=%g affine=%d: max err %g",
                                  stdcpu_isa_name((stdcpu_isa)isa_), C, offsets[oi], affine, worst);
                }
            }
            free(x);
            free(y);
            free(y1);
            free(gamma);
            free(beta);
            free(want);
        }
    for (int t = 1; t <= 3; t++)
        stdcpu_pool_destroy(pools[t]);
}
END_TEST

START_TEST(test_norm_kernels_match_scalar)
{
    /* The building blocks directly, odd channel counts, shift/mean arrays. */
    const stdcpu_kernels *ref = stdcpu_kernels_for_isa(STDCPU_ISA_SCALAR), *k;
    stdcpu_test_rng r = {0x31337u};
    const size_t Cs[] = {1, 5, 16, 17, 63, 320};
    for (size_t ci = 0; ci < sizeof Cs / sizeof *Cs; ci++) {
        const size_t C = Cs[ci], np = 23;
        float *x = malloc(np * C * sizeof(float)), *mean = malloc(C * sizeof(float));
        float *mul = malloc(C * sizeof(float)), *add = malloc(C * sizeof(float));
        float *a = calloc(C, sizeof(float)), *b = calloc(C, sizeof(float));
        float *ya = malloc(np * C * sizeof(float)), *yb = malloc(np * C * sizeof(float));
        for (size_t i = 0; i < np * C; i++)
            x[i] = stdcpu_test_uniform(&r, -3, 3);
        for (size_t i = 0; i < C; i++) {
            mean[i] = stdcpu_test_uniform(&r, -1, 1);
            mul[i] = stdcpu_test_uniform(&r, 0.1f, 2);
            add[i] = stdcpu_test_uniform(&r, -1, 1);
        }
        FOR_EACH_TABLE(k)
        {
            memset(a, 0, C * sizeof(float));
            memset(b, 0, C * sizeof(float));
            ref->norm.channel_sum(x, np, C, mean, a);
            k->norm.channel_sum(x, np, C, mean, b);
            for (size_t c = 0; c < C; c++)
                ck_assert(fabsf(a[c] - b[c]) <= 1e-5f);
            memset(a, 0, C * sizeof(float));
            memset(b, 0, C * sizeof(float));
            ref->norm.channel_sqdev(x, np, C, mean, a);
            k->norm.channel_sqdev(x, np, C, mean, b);
            for (size_t c = 0; c < C; c++)
                ck_assert(fabsf(a[c] - b[c]) <= 1e-5f * a[c]);
            for (int silu = 0; silu < 2; silu++) {
                ref->norm.channel_affine(x, np, C, mean, mul, add, silu, ya);
                k->norm.channel_affine(x, np, C, mean, mul, add, silu, yb);
                for (size_t i = 0; i < np * C; i++)
                    ck_assert_msg(fabsf(ya[i] - yb[i]) <= 2e-6f * fabsf(ya[i]) + 1e-7f, "%s C=%zu silu=%d",
                                  stdcpu_isa_name((stdcpu_isa)isa_), C, silu);
            }
        }
        free(x);
        free(mean);
        free(mul);
        free(add);
        free(a);
        free(b);
        free(ya);
        free(yb);
    }
}
END_TEST

static Suite *norm_suite(void)
{
    Suite *s = suite_create("norm");
    TCase *tc = tcase_create("norm");
    tcase_add_test(tc, test_group_norm_vs_double);
    tcase_add_test(tc, test_layer_norm_vs_double);
    tcase_add_test(tc, test_norm_kernels_match_scalar);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return stdcpu_test_run(norm_suite()); }
