/* Element-wise kernels: every ISA's table against the scalar (libm)
 * reference on odd sizes and extreme values, the f16 / bf16 conversions
 * exhaustively, and the threaded entry points (1..3 threads). */
#include <math.h>
#include <stdint.h>

#include "base/mem.h"
#include "core/ops_nn.h"
#include "simd/dispatch.h"
#include "testutil.h"

static const size_t sizes[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1031};
#define NSIZES (sizeof sizes / sizeof *sizes)

/* The tables to compare: every ISA this CPU and build have, scalar
 * included, skipping a table whose element-wise kernels are all the same as
 * an earlier one's (neondot = neon). */
static int next_table(int i, const stdcpu_kernels **k)
{
    for (; i < STDCPU_ISA_COUNT; i++) {
        if ((*k = stdcpu_kernels_for_isa((stdcpu_isa)i)) == NULL)
            continue;
        int seen = 0;
        for (int j = 0; j < i; j++) {
            const stdcpu_kernels *e = stdcpu_kernels_for_isa((stdcpu_isa)j);
            seen |= e && !memcmp(&e->eltwise, &(*k)->eltwise, sizeof e->eltwise) &&
                    !memcmp(&e->norm, &(*k)->norm, sizeof e->norm);
        }
        if (!seen)
            return i;
    }
    return -1;
}
#define FOR_EACH_TABLE(k) \
    for (int isa_ = next_table(0, &(k)); isa_ >= 0; isa_ = next_table(isa_ + 1, &(k)))

static float *fill(stdcpu_test_rng *r, size_t n, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = stdcpu_test_uniform(r, lo, hi);
    return x;
}

/* |got - ref| <= rel*|ref| + abs_tol*max(1, |x|), or both NaN / equal infinities. */
static void check_close(const char *what, stdcpu_isa isa, size_t i, float x, float got, float ref,
                        double rel, double abs_tol)
{
    if (isnan(ref) || isinf(ref)) {
        ck_assert_msg((isnan(ref) && isnan(got)) || got == ref, "%s/%s [%zu] x=%g: got %g want %g", what,
                      stdcpu_isa_name(isa), i, x, got, ref);
        return;
    }
    const double tol = rel * fabs(ref) + abs_tol * fmax(1.0, fabs(x));
    ck_assert_msg(fabs((double)got - ref) <= tol, "%s/%s [%zu] x=%.9g: got %.9g want %.9g (tol %g)", what,
                  stdcpu_isa_name(isa), i, x, got, ref, tol);
}

static const float extremes[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f, 0.5f, -0.5f, 3.9f, -3.9f, 4.1f,
                                  -4.1f, 5.65f, -5.65f, 10.0f, -10.0f, 30.0f, -30.0f, 87.0f, -87.0f,
                                  88.5f, -88.5f, 100.0f, -100.0f, 1e30f, -1e30f, INFINITY, -INFINITY};

START_TEST(test_activations_match_scalar)
{
    const stdcpu_kernels *ref = stdcpu_kernels_for_isa(STDCPU_ISA_SCALAR), *k;
    stdcpu_test_rng r = {0x1234567u};
    const size_t next = sizeof extremes / sizeof *extremes;
    for (size_t si = 0; si < NSIZES; si++) {
        const size_t n = sizes[si] + next;
        float *x = fill(&r, n, -12.0f, 12.0f);
        memcpy(x + sizes[si], extremes, sizeof extremes);
        float *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
        FOR_EACH_TABLE(k)
        {
            /* name, kernel, reference, relative, absolute-per-|x| tolerance:
             * exp-based within 2e-6 relative; GELU also carries the erf
             * approximation's 4e-7 absolute (x 0.5|x|). */
            struct {
                const char *name;
                stdcpu_unary_f32_fn f, g;
                double rel, abs_tol;
            } ops[] = {{"silu", k->eltwise.silu, ref->eltwise.silu, 2e-6, 1e-12},
                       {"gelu", k->eltwise.gelu, ref->eltwise.gelu, 2e-6, 3e-7},
                       {"gelu_tanh", k->eltwise.gelu_tanh, ref->eltwise.gelu_tanh, 3e-6, 1e-7},
                       {"quick_gelu", k->eltwise.quick_gelu, ref->eltwise.quick_gelu, 2e-6, 1e-12}};
            for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
                ops[o].g(want, x, n);
                ops[o].f(got, x, n);
                for (size_t i = 0; i < n; i++) {
                    /* saturated tails (|x| huge): only the limit matters */
                    if (fabsf(x[i]) > 1e20f && isfinite(x[i])) {
                        ck_assert(isfinite(got[i]) || isinf(want[i]));
                        continue;
                    }
                    if (isinf(x[i]))
                        continue; /* inf * sigmoid(inf) = NaN in libm too; not a network value */
                    check_close(ops[o].name, (stdcpu_isa)isa_, i, x[i], got[i], want[i], ops[o].rel,
                                ops[o].abs_tol);
                }
                /* in place */
                float *inplace = malloc(n * sizeof(float));
                memcpy(inplace, x, n * sizeof(float));
                ops[o].f(inplace, inplace, n);
                ck_assert(memcmp(inplace, got, n * sizeof(float)) == 0);
                free(inplace);
            }
        }
        free(x);
        free(want);
        free(got);
    }
}
END_TEST

START_TEST(test_geglu_add_axpby_bias_match_scalar)
{
    const stdcpu_kernels *ref = stdcpu_kernels_for_isa(STDCPU_ISA_SCALAR), *k;
    stdcpu_test_rng r = {0x9876543u};
    const size_t Fs[] = {1, 7, 16, 17, 40, 67};
    for (size_t fi = 0; fi < sizeof Fs / sizeof *Fs; fi++) {
        const size_t F = Fs[fi], rows = 3, n = rows * F;
        float *x = fill(&r, 2 * n, -6.0f, 6.0f), *b = fill(&r, n, -2.0f, 2.0f);
        float *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
        FOR_EACH_TABLE(k)
        {
            ref->eltwise.geglu(want, x, rows, F);
            k->eltwise.geglu(got, x, rows, F);
            for (size_t i = 0; i < n; i++) {
                /* error scales with |hidden| * |gate| */
                const float scale = fabsf(x[(i / F) * 2 * F + i % F]) * fabsf(x[(i / F) * 2 * F + F + i % F]);
                check_close("geglu", (stdcpu_isa)isa_, i, scale, got[i], want[i], 2e-6, 3e-7);
            }
            ref->eltwise.add(want, x, b, n);
            k->eltwise.add(got, x, b, n);
            ck_assert(memcmp(want, got, n * sizeof(float)) == 0);
            ref->eltwise.mul(want, x, b, n);
            k->eltwise.mul(got, x, b, n);
            ck_assert(memcmp(want, got, n * sizeof(float)) == 0);
            for (size_t i = 0; i < n; i++)
                ck_assert(want[i] == x[i] * b[i]);
            memcpy(want, b, n * sizeof(float));
            memcpy(got, b, n * sizeof(float));
            ref->eltwise.axpby(want, 0.7f, x, -1.3f, n);
            k->eltwise.axpby(got, 0.7f, x, -1.3f, n);
            for (size_t i = 0; i < n; i++)
                check_close("axpby", (stdcpu_isa)isa_, i, 1.0f, got[i], want[i], 1e-6, 1e-7);
            ref->eltwise.add_bias(want, x, b, rows, F);
            k->eltwise.add_bias(got, x, b, rows, F);
            ck_assert(memcmp(want, got, n * sizeof(float)) == 0);
        }
        free(x);
        free(b);
        free(want);
        free(got);
    }
}
END_TEST

START_TEST(test_geglu_order_is_hidden_times_gelu_gate)
{
    /* diffusers: hidden, gate = proj(x).chunk(2); hidden * gelu(gate).
     * hidden = 2, gate = 1: 2 * gelu(1) = 2 * 0.841344746 */
    const float x[2] = {2.0f, 1.0f};
    const stdcpu_kernels *k;
    FOR_EACH_TABLE(k)
    {
        float y = 0;
        k->eltwise.geglu(&y, x, 1, 1);
        ck_assert_msg(fabsf(y - 1.682689492f) < 2e-6f, "%s: %g", stdcpu_isa_name((stdcpu_isa)isa_), y);
    }
}
END_TEST

START_TEST(test_softmax_masks_and_extremes)
{
    const stdcpu_kernels *ref = stdcpu_kernels_for_isa(STDCPU_ISA_SCALAR), *k;
    stdcpu_test_rng r = {0x5555u};
    for (size_t si = 0; si < NSIZES; si++) {
        const size_t n = sizes[si];
        float *x = fill(&r, n, -20.0f, 20.0f);
        for (size_t i = 0; i < n; i += 3)
            x[i] = -INFINITY; /* masked */
        if (n > 5)
            x[n / 2] = 1e30f; /* one dominating logit */
        float *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
        FOR_EACH_TABLE(k)
        {
            ref->eltwise.softmax(want, x, n);
            k->eltwise.softmax(got, x, n);
            double s = 0;
            for (size_t i = 0; i < n; i++) {
                ck_assert(!isnan(got[i]));
                if (x[i] == -INFINITY)
                    ck_assert(got[i] == 0.0f);
                check_close("softmax", (stdcpu_isa)isa_, i, 1.0f, got[i], want[i], 3e-6, 1e-9);
                s += got[i];
            }
            if (n > 1)
                ck_assert_msg(fabs(s - 1.0) < 1e-5, "sum %g", s);
            /* every entry masked: zeros, not NaN */
            for (size_t i = 0; i < n; i++)
                got[i] = -INFINITY;
            k->eltwise.softmax(got, got, n);
            for (size_t i = 0; i < n; i++)
                ck_assert(got[i] == 0.0f);
        }
        free(x);
        free(want);
        free(got);
    }
}
END_TEST

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

START_TEST(test_f16_conversions_exhaustive)
{
    /* scalar reference first: every half round-trips exactly, and the
     * midpoint of two neighbouring finite halves rounds to the even one. */
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = stdcpu_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            ck_assert((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu));
            continue;
        }
        ck_assert_uint_eq(stdcpu_f32_to_f16(f), h);
        if ((h & 0x7fffu) < 0x7bffu) { /* next half up is finite */
            const double mid = ((double)f + (double)stdcpu_f16_to_f32((uint16_t)(h + 1))) / 2;
            const uint16_t even = (h & 1u) ? (uint16_t)(h + 1) : (uint16_t)h;
            ck_assert_uint_eq(stdcpu_f32_to_f16((float)mid), even);
        }
    }
    ck_assert_uint_eq(stdcpu_f32_to_f16(65520.0f), 0x7c00u); /* rounds to inf */
    ck_assert_uint_eq(stdcpu_f32_to_f16(65519.0f), 0x7bffu);
    ck_assert_uint_eq(stdcpu_f32_to_f16(1e-10f), 0);
    ck_assert_uint_eq(stdcpu_f16_to_f32(0x3c00u) == 1.0f, 1);

    const stdcpu_kernels *ref = stdcpu_kernels_for_isa(STDCPU_ISA_SCALAR), *k;
    uint16_t *h = malloc(65536 * sizeof(uint16_t)), *h2 = malloc(65536 * sizeof(uint16_t));
    float *f = malloc(65536 * sizeof(float)), *g = malloc(65536 * sizeof(float));
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    stdcpu_test_rng r = {0xabcdefu};
    FOR_EACH_TABLE(k)
    {
        ref->eltwise.f16_to_f32(f, h, 65535); /* odd length: tails */
        k->eltwise.f16_to_f32(g, h, 65535);
        for (uint32_t i = 0; i < 65535; i++)
            ck_assert_msg(bits(f[i]) == bits(g[i]) || (isnan(f[i]) && isnan(g[i])), "%s f16 %#x",
                          stdcpu_isa_name((stdcpu_isa)isa_), i);
        /* f32 -> f16 over every exponent, with random mantissas and midpoints */
        for (uint32_t i = 0; i < 65536; i++) {
            uint32_t u = (uint32_t)stdcpu_test_next(&r);
            if (i % 4 == 0)
                u = (u & 0xffffe000u) | 0x1000u; /* exact midpoint between halves */
            memcpy(&f[i], &u, 4);
        }
        ref->eltwise.f32_to_f16(h2, f, 65533);
        k->eltwise.f32_to_f16(h, f, 65533);
        for (uint32_t i = 0; i < 65533; i++) {
            if (isnan(f[i]))
                ck_assert((h[i] & 0x7c00u) == 0x7c00u && (h[i] & 0x3ffu));
            else
                ck_assert_msg(h[i] == h2[i], "%s f32 %#x: %#x want %#x", stdcpu_isa_name((stdcpu_isa)isa_),
                              bits(f[i]), h[i], h2[i]);
        }
        for (uint32_t i = 0; i < 65536; i++)
            h[i] = (uint16_t)i;
        k->eltwise.bf16_to_f32(g, h, 65535);
        for (uint32_t i = 0; i < 65535; i++)
            ck_assert_uint_eq(bits(g[i]), i << 16);
    }
    free(h);
    free(h2);
    free(f);
    free(g);
}
END_TEST

/* Runs op number `op` through the threaded entry point into y. */
static void run_op(stdcpu_pool *pool, const stdcpu_kernels *k, int op, const float *x, float *y,
                   size_t n, size_t rows, size_t F)
{
    stdcpu_error err;
    stdcpu_status st;
    if (op < 4)
        st = stdcpu_activation(pool, k, (stdcpu_eltwise_act)op, x, y, n, &err);
    else if (op == 4)
        st = stdcpu_geglu(pool, k, x, rows, F, y, &err);
    else if (op == 5)
        st = stdcpu_softmax_rows(pool, k, x, rows, F, y, &err);
    else if (op == 6)
        st = stdcpu_add(pool, k, x, x + 1, y, n, &err);
    else
        st = stdcpu_layer_norm(pool, k, x, rows, F, 1e-5f, NULL, NULL, y, &err);
    ck_assert_int_eq(st, STDCPU_OK);
}

START_TEST(test_entry_points_threads)
{
    const size_t n = 40009, rows = 29, F = 683;
    stdcpu_test_rng r = {0x777u};
    float *x = fill(&r, n + 1, -5.0f, 5.0f);
    float *y1 = calloc(n, sizeof(float)), *y2 = calloc(n, sizeof(float));
    stdcpu_pool *pools[4] = {NULL};
    for (int t = 1; t <= 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t, NULL), STDCPU_OK);
    const stdcpu_kernels *k;
    FOR_EACH_TABLE(k)
    {
        for (int op = 0; op < 8; op++) {
            run_op(pools[1], k, op, x, y1, n, rows, F);
            for (int t = 2; t <= 3; t++) {
                run_op(pools[t], k, op, x, y2, n, rows, F);
                /* no reassociation across threads: bit-identical */
                ck_assert_msg(memcmp(y1, y2, n * sizeof(float)) == 0, "op %d threads %d", op, t);
            }
        }
    }
    for (int t = 1; t <= 3; t++)
        stdcpu_pool_destroy(pools[t]);
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_activation(NULL, NULL, (stdcpu_eltwise_act)9, x, y1, 4, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_geglu(NULL, NULL, x, 1, 0, y1, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_add(NULL, NULL, NULL, x, y1, 4, NULL), STDCPU_ERR_INVALID_ARG);
    free(x);
    free(y1);
    free(y2);
}
END_TEST

START_TEST(test_upsample_nearest)
{
    const size_t B = 2, C = 3;
    const size_t shapes[][4] = {{3, 5, 6, 10}, {4, 4, 8, 8}, {5, 3, 7, 4}, {7, 9, 13, 17}, {1, 1, 3, 2}, {6, 6, 6, 6}};
    stdcpu_test_rng r = {0x42u};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const size_t H = shapes[s][0], W = shapes[s][1], Ho = shapes[s][2], Wo = shapes[s][3];
        float *x = fill(&r, B * H * W * C, -1, 1), *y = malloc(B * Ho * Wo * C * sizeof(float));
        for (int t = 1; t <= 3; t++) {
            stdcpu_pool *pool;
            ck_assert_int_eq(stdcpu_pool_create(&pool, t, NULL), STDCPU_OK);
            ck_assert_int_eq(stdcpu_upsample_nearest(pool, x, B, H, W, C, Ho, Wo, y, NULL), STDCPU_OK);
            stdcpu_pool_destroy(pool);
            for (size_t b = 0; b < B; b++)
                for (size_t oy = 0; oy < Ho; oy++)
                    for (size_t ox = 0; ox < Wo; ox++) {
                        /* aten: floor(dst * (float)(in/out)), clamped; x2 = dst/2 */
                        size_t iy = (size_t)floorf((float)oy * ((float)H / (float)Ho));
                        size_t ix = (size_t)floorf((float)ox * ((float)W / (float)Wo));
                        iy = iy < H ? iy : H - 1;
                        ix = ix < W ? ix : W - 1;
                        if (Ho == 2 * H)
                            ck_assert_uint_eq(iy, oy / 2);
                        for (size_t c = 0; c < C; c++)
                            ck_assert(y[((b * Ho + oy) * Wo + ox) * C + c] == x[((b * H + iy) * W + ix) * C + c]);
                    }
        }
        free(x);
        free(y);
    }
}
END_TEST

static Suite *eltwise_suite(void)
{
    Suite *s = suite_create("eltwise");
    TCase *tc = tcase_create("kernels");
    tcase_add_test(tc, test_activations_match_scalar);
    tcase_add_test(tc, test_geglu_add_axpby_bias_match_scalar);
    tcase_add_test(tc, test_geglu_order_is_hidden_times_gelu_gate);
    tcase_add_test(tc, test_softmax_masks_and_extremes);
    tcase_add_test(tc, test_f16_conversions_exhaustive);
    tcase_add_test(tc, test_entry_points_threads);
    tcase_add_test(tc, test_upsample_nearest);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return stdcpu_test_run(eltwise_suite()); }
