/* q8 micro-kernels, quantisation, epilogues and the threaded linear op (q8
 * and f32), for every ISA this CPU has, against the scalar reference and
 * plain loops. The f32 micro-kernels themselves: test_sgemm.c.
 *
 * Tolerances: int32 accumulation is exact on every ISA (checked with unit
 * scales, no bias, |acc| < 2^24 so the float output is the integer); the f32
 * epilogue may differ by FMA contraction: 1e-6 relative to the row's
 * magnitude. The op level compares against double loops over the same
 * quantised values: 1e-5 relative (f32 sum order). */
#include <math.h>
#include <stdint.h>

#include "base/mem.h"
#include "core/ops_gemm.h"
#include "simd/dispatch.h"
#include "simd/gemm.h"
#include "testutil.h"

static int8_t rand_q(stdcpu_test_rng *r) { return (int8_t)((int)(stdcpu_test_next(r) % 255) - 127); }

/* value mode: 0 random, 1 all +127, 2 all -127, 3 alternating +-127 */
static int8_t value_for(stdcpu_test_rng *r, int mode, size_t i)
{
    switch (mode) {
    case 1: return 127;
    case 2: return -127;
    case 3: return (i & 1) ? 127 : -127;
    default: return rand_q(r);
    }
}

/* Runs one micro-kernel tile and checks it against plain integer loops. */
static void check_tile(const stdcpu_gemm_kernels *gk, size_t mr, size_t nc, size_t kc, size_t ks,
                       int mode_a, int mode_w, int with_epilogue, stdcpu_test_rng *rng)
{
    const size_t kp = ks * kc, np = stdcpu_round_up(nc, 16);
    int8_t *wsrc = malloc(np * kp);            /* [np][kp] plain */
    int8_t *packed = stdcpu_aligned_alloc(stdcpu_q8_packed_bytes(np, ks, kc));
    int32_t *wsum = malloc(np * sizeof(int32_t));
    int8_t *arows = malloc(mr * kp);            /* [mr][ks][kc] plain int8 */
    int8_t *ax = malloc(mr * kp);               /* XORed for the kernel */
    const int8_t **ptrs = malloc(ks * mr * sizeof(*ptrs));
    float *c = malloc(mr * (np + 3) * sizeof(float));
    float *res = malloc(mr * (np + 3) * sizeof(float));
    float sa[STDCPU_Q8_MR_MAX], sw[64], bias[64];
    for (size_t i = 0; i < np * kp; i++)
        wsrc[i] = value_for(rng, mode_w, i);
    for (size_t i = 0; i < mr * kp; i++) {
        arows[i] = value_for(rng, mode_a, i / 3);
        ax[i] = (int8_t)((unsigned char)arows[i] ^ gk->q8_a_xor);
    }
    stdcpu_q8_pack_16c4(wsrc, np, ks, kc, kc, kp, kc, 1, packed, wsum);
    for (size_t t = 0; t < ks; t++)
        for (size_t i = 0; i < mr; i++)
            ptrs[t * mr + i] = ax + i * kp + t * kc;
    const size_t ldc = np + 3;
    for (size_t i = 0; i < mr; i++)
        sa[i] = with_epilogue ? stdcpu_test_uniform(rng, 0.001f, 0.1f) : 1.0f;
    for (size_t j = 0; j < np; j++) {
        sw[j] = with_epilogue ? stdcpu_test_uniform(rng, 0.001f, 0.1f) : 1.0f;
        bias[j] = stdcpu_test_uniform(rng, -2, 2);
    }
    for (size_t i = 0; i < mr * ldc; i++) {
        res[i] = stdcpu_test_uniform(rng, -3, 3);
        c[i] = 12345.0f; /* sentinel: columns >= nc must stay */
    }
    const stdcpu_q8_epilogue ep = {
        .a_scale = sa, .a_scale_stride = 1, .w_scale = sw,
        .bias = with_epilogue ? bias : NULL, .residual = with_epilogue ? res : NULL,
        .residual_stride = ldc,
    };
    gk->q8_igemm(mr, nc, kc, ks, ptrs, packed, wsum, c, ldc, &ep);
    for (size_t i = 0; i < mr; i++) {
        for (size_t j = 0; j < nc; j++) {
            int64_t acc = 0;
            for (size_t k = 0; k < kp; k++)
                acc += (int64_t)arows[i * kp + k] * wsrc[j * kp + k];
            const float got = c[i * ldc + j];
            if (!with_epilogue) {
                ck_assert_msg(got == (float)acc, "%s mr=%zu nc=%zu kc=%zu ks=%zu (%zu,%zu): %g != %lld",
                              gk->q8_igemm_name, mr, nc, kc, ks, i, j, got, (long long)acc);
            } else {
                const double want = (double)acc * ((double)sa[i] * sw[j]) + bias[j] + res[i * ldc + j];
                const double tol = 1e-6 * (fabs((double)acc * sa[i] * sw[j]) + fabs(bias[j]) +
                                           fabs(res[i * ldc + j])) + 1e-7;
                ck_assert_msg(fabs(got - want) <= tol, "%s epilogue (%zu,%zu): %g vs %g",
                              gk->q8_igemm_name, i, j, got, want);
            }
        }
        for (size_t j = nc; j < ldc; j++)
            ck_assert_msg(c[i * ldc + j] == 12345.0f, "%s wrote column %zu >= nc %zu",
                          gk->q8_igemm_name, j, nc);
    }
    free(wsrc);
    stdcpu_aligned_free(packed);
    free(wsum);
    free(arows);
    free(ax);
    free(ptrs);
    free(c);
    free(res);
}

START_TEST(test_q8_igemm_every_isa)
{
    stdcpu_test_rng rng = {0x1234567ull};
    int isas = 0;
    for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        isas++;
        const stdcpu_gemm_kernels *gk = &kt->gemm;
        const size_t MR = gk->q8_mr, NR = gk->q8_nr;
        const size_t mrs[] = {1, MR > 1 ? MR - 1 : 1, MR};
        const size_t ncs[] = {1, 15, 16, 17, NR - 1, NR};
        const size_t kcs[] = {4, 8, 12, 64, 132};
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 6; b++) {
                if (ncs[b] > NR)
                    continue;
                for (size_t k = 0; k < 5; k++)
                    for (size_t ks = 1; ks <= 3; ks += 2)
                        check_tile(gk, mrs[a], ncs[b], kcs[k], ks, 0, 0, 0, &rng);
            }
        /* +-127 everywhere: the AVX2 pair sums and NEON int16 partials must
         * not saturate; the VNNI u8 shift must compensate exactly. */
        for (int ma = 1; ma <= 3; ma++)
            for (int mw = 1; mw <= 3; mw++)
                check_tile(gk, MR, NR, 256, 1, ma, mw, 0, &rng);
        for (size_t b = 0; b < 6; b++)
            if (ncs[b] <= NR)
                check_tile(gk, MR, ncs[b], 20, 3, 0, 0, 1, &rng);
    }
    ck_assert_int_ge(isas, 1);
}
END_TEST

START_TEST(test_quantize_and_absmax_match_scalar)
{
    const stdcpu_gemm_kernels *ref = &stdcpu_kernels_for_isa(STDCPU_ISA_SCALAR)->gemm;
    stdcpu_test_rng rng = {99};
    const size_t n = 1000;
    float *x = malloc(n * sizeof(float));
    int8_t *q0 = malloc(n + 64), *q1 = malloc(n + 64);
    for (size_t i = 0; i < n; i++)
        x[i] = stdcpu_test_uniform(&rng, -5, 5);
    x[17] = 2.5f; /* exact ties under inv_scale 1 */
    x[18] = -3.5f;
    x[19] = 200.0f; /* clamps */
    x[20] = -200.0f;
    for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        const stdcpu_gemm_kernels *gk = &kt->gemm;
        const size_t lens[] = {0, 1, 3, 15, 16, 17, 63, 64, 65, 999, 1000};
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            const size_t len = lens[li];
            ck_assert(gk->f32_absmax(x, len) == ref->f32_absmax(x, len));
            for (int inv = 0; inv < 2; inv++) {
                const float is = inv ? 1.0f : 127.0f / 200.0f;
                const size_t padded = stdcpu_round_up(len, 4) + 4;
                ref->q8_quantize(x, len, padded, is, 0x80, q0);
                gk->q8_quantize(x, len, padded, is, 0x80, q1);
                ck_assert_msg(!memcmp(q0, q1, padded), "%s quantize len %zu", stdcpu_isa_name(isa), len);
            }
        }
        ref->q8_quantize(x, 21, 21, 1.0f, 0, q0);
        ck_assert_int_eq(q0[17], 2); /* half to even */
        ck_assert_int_eq(q0[18], -4);
        ck_assert_int_eq(q0[19], 127);
        ck_assert_int_eq(q0[20], -127);
        /* activation + residual epilogue: 1e-6 relative */
        float *y0 = malloc(n * sizeof(float)), *y1 = malloc(n * sizeof(float));
        for (int act = 0; act < 3; act++)
            for (int with_res = 0; with_res < 2; with_res++) {
                for (size_t i = 0; i < n; i++)
                    y0[i] = y1[i] = x[i] * 3.0f;
                ref->f32_act_residual(y0, n - 3, with_res ? x : NULL, (stdcpu_act)act);
                gk->f32_act_residual(y1, n - 3, with_res ? x : NULL, (stdcpu_act)act);
                for (size_t i = 0; i < n; i++)
                    ck_assert_msg(fabsf(y0[i] - y1[i]) <= 1e-6f * (fabsf(y0[i]) + fabsf(x[i])) + 1e-7f,
                                  "%s act %d: %g vs %g at %zu", stdcpu_isa_name(isa), act, y1[i], y0[i], i);
            }
        free(y0);
        free(y1);
    }
    free(x);
    free(q0);
    free(q1);
}
END_TEST

/* Reference linear over the same quantised values, in double. */
static void ref_linear_q8(const float *x, const int8_t *wq, const float *ws, const float *bias,
                          size_t M, size_t N, size_t K, const float *res, stdcpu_act act, float *y)
{
    int8_t *q = malloc(K + 4);
    for (size_t m = 0; m < M; m++) {
        float s, inv;
        float amax = 0;
        for (size_t k = 0; k < K; k++)
            amax = fabsf(x[m * K + k]) > amax ? fabsf(x[m * K + k]) : amax;
        stdcpu_q8_scale_for(amax, &s, &inv);
        stdcpu_kernels_for_isa(STDCPU_ISA_SCALAR)->gemm.q8_quantize(x + m * K, K, K, inv, 0, q);
        for (size_t n = 0; n < N; n++) {
            int64_t acc = 0;
            for (size_t k = 0; k < K; k++)
                acc += (int64_t)q[k] * wq[n * K + k];
            float v = (float)((double)acc * s * ws[n] + (bias ? bias[n] : 0));
            v = stdcpu_act_scalar(v, act);
            y[m * N + n] = v + (res ? res[m * N + n] : 0);
        }
    }
    free(q);
}

/* f32 reference in double; mag[i] (if not NULL) gets sum |x||w| + |bias| +
 * |residual| of the element: the scale of its f32 rounding error. */
static void ref_linear_f32(const float *x, const float *w, const float *bias, size_t M, size_t N,
                           size_t K, const float *res, stdcpu_act act, float *y, float *mag)
{
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            double acc = bias ? bias[n] : 0, s = bias ? fabs(bias[n]) : 0;
            for (size_t k = 0; k < K; k++) {
                acc += (double)x[m * K + k] * w[n * K + k];
                s += fabs((double)x[m * K + k] * w[n * K + k]);
            }
            y[m * N + n] = stdcpu_act_scalar((float)acc, act) + (res ? res[m * N + n] : 0);
            if (mag)
                mag[m * N + n] = (float)(s + (res ? fabs(res[m * N + n]) : 0));
        }
}

/* |got - want| <= rel * (|want| + 1% of the largest |want|) + 1e-6, plus for
 * f32 1e-6 * mag (f32 sums of k terms round off in proportion to the sum of
 * their magnitudes, not to the result: cancellation). */
static void check_close(const float *got, const float *want, const float *mag, size_t n, double rel,
                        const char *what)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++)
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs((double)got[i] - want[i]) <=
                          rel * (fabs(want[i]) + 1e-2 * scale) + 1e-6 + (mag ? 1e-6 * mag[i] : 0),
                      "%s: [%zu] %.7g vs %.7g", what, i, got[i], want[i]);
}

START_TEST(test_linear_op_every_isa_and_thread_count)
{
    stdcpu_test_rng rng = {4242};
    const size_t Ms[] = {1, 3, 8, 9, 17, 70};
    const size_t Ns[] = {1, 16, 17, 33, 61};
    const size_t Ks[] = {1, 3, 4, 17, 131};
    stdcpu_pool *pools[3];
    for (int t = 0; t < 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t + 1, NULL), STDCPU_OK);
    for (size_t mi = 0; mi < 6; mi++)
        for (size_t ni = 0; ni < 5; ni++)
            for (size_t ki = 0; ki < 5; ki++) {
                const size_t M = Ms[mi], N = Ns[ni], K = Ks[ki];
                float *x = malloc(M * K * sizeof(float)), *w = malloc(N * K * sizeof(float));
                float *bias = malloc(N * sizeof(float)), *res = malloc(M * N * sizeof(float));
                float *y = malloc(M * N * sizeof(float)), *want = malloc(M * N * sizeof(float));
                float *mag = malloc(M * N * sizeof(float));
                int8_t *wq = malloc(N * K);
                float *ws = malloc(N * sizeof(float));
                for (size_t i = 0; i < M * K; i++)
                    x[i] = stdcpu_test_uniform(&rng, -2, 2);
                for (size_t i = 0; i < N * K; i++)
                    w[i] = stdcpu_test_uniform(&rng, -1, 1);
                for (size_t i = 0; i < N; i++)
                    bias[i] = stdcpu_test_uniform(&rng, -1, 1);
                for (size_t i = 0; i < M * N; i++)
                    res[i] = stdcpu_test_uniform(&rng, -1, 1);
                stdcpu_q8_quantize_weights(w, N, K, wq, ws);
                stdcpu_linear_weight lq, lf;
                ck_assert_int_eq(stdcpu_linear_weight_init_q8(&lq, wq, ws, bias, N, K, NULL), STDCPU_OK);
                ck_assert_int_eq(stdcpu_linear_weight_init_f32(&lf, w, bias, N, K, NULL), STDCPU_OK);
                const int combo = (int)((mi + ni + ki) % 3); /* vary epilogue and threads */
                const stdcpu_act act = (stdcpu_act)combo;
                const float *r = (combo != 1) ? res : NULL;
                float *want_q8 = malloc(M * N * sizeof(float)), *want_f32 = malloc(M * N * sizeof(float));
                ref_linear_q8(x, wq, ws, bias, M, N, K, r, act, want_q8);
                ref_linear_f32(x, w, bias, M, N, K, r, act, want_f32, mag);
                for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
                    const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
                    if (!kt)
                        continue;
                    /* thread counts 1..3 rotate over shapes and ISAs */
                    const int t = (int)((mi + ni + ki + (size_t)isa) % 3);
                    {
                        char what[96];
                        snprintf(what, sizeof what, "q8 %s M=%zu N=%zu K=%zu act=%d thr=%d",
                                 stdcpu_isa_name(isa), M, N, K, combo, t + 1);
                        ck_assert_int_eq(stdcpu_linear_ex(pools[t], kt, &lq, x, y, M, r, act, NULL), STDCPU_OK);
                        check_close(y, want_q8, NULL, M * N, 1e-5, what);
                        snprintf(what, sizeof what, "f32 %s M=%zu N=%zu K=%zu thr=%d",
                                 stdcpu_isa_name(isa), M, N, K, t + 1);
                        ck_assert_int_eq(stdcpu_linear_ex(pools[t], kt, &lf, x, y, M, r, act, NULL), STDCPU_OK);
                        check_close(y, want_f32, mag, M * N, 1e-5, what);
                    }
                }
                /* q8 and f32 results do not depend on the thread count, bit for bit */
                {
                    float *y1 = malloc(M * N * sizeof(float));
                    const stdcpu_kernels *best = stdcpu_kernels_get();
                    ck_assert_int_eq(stdcpu_linear_ex(pools[0], best, &lq, x, y, M, r, act, NULL), STDCPU_OK);
                    ck_assert_int_eq(stdcpu_linear_ex(pools[2], best, &lq, x, y1, M, r, act, NULL), STDCPU_OK);
                    ck_assert(!memcmp(y, y1, M * N * sizeof(float)));
                    ck_assert_int_eq(stdcpu_linear_ex(pools[0], best, &lf, x, y, M, r, act, NULL), STDCPU_OK);
                    ck_assert_int_eq(stdcpu_linear_ex(pools[2], best, &lf, x, y1, M, r, act, NULL), STDCPU_OK);
                    ck_assert(!memcmp(y, y1, M * N * sizeof(float)));
                    free(y1);
                }
                /* in-place residual (y += linear(x)) */
                memcpy(y, res, M * N * sizeof(float));
                ck_assert_int_eq(stdcpu_linear(pools[1], &lq, x, y, M, y, STDCPU_ACT_NONE, NULL), STDCPU_OK);
                ref_linear_q8(x, wq, ws, bias, M, N, K, res, STDCPU_ACT_NONE, want);
                check_close(y, want, NULL, M * N, 1e-5, "q8 in place");
                memcpy(y, res, M * N * sizeof(float));
                ck_assert_int_eq(stdcpu_linear(pools[1], &lf, x, y, M, y, STDCPU_ACT_NONE, NULL), STDCPU_OK);
                ref_linear_f32(x, w, bias, M, N, K, res, STDCPU_ACT_NONE, want, mag);
                check_close(y, want, mag, M * N, 1e-5, "f32 in place");
                stdcpu_linear_weight_free(&lq);
                stdcpu_linear_weight_free(&lf);
                free(want_q8);
                free(want_f32);
                free(x); free(w); free(bias); free(res); free(y); free(want); free(wq); free(ws);
                free(mag);
            }
    for (int t = 0; t < 3; t++)
        stdcpu_pool_destroy(pools[t]);
}
END_TEST

/* Tall inputs: several row blocks per call (blocks hold up to 256 rows). */
START_TEST(test_linear_several_row_blocks)
{
    stdcpu_test_rng rng = {31337};
    const size_t M = 300, N = 37;
    const size_t Ks[] = {17, 1100};
    stdcpu_pool *pool;
    ck_assert_int_eq(stdcpu_pool_create(&pool, 2, NULL), STDCPU_OK);
    for (size_t ki = 0; ki < 2; ki++) {
        const size_t K = Ks[ki];
        float *x = malloc(M * K * sizeof(float)), *w = malloc(N * K * sizeof(float));
        float *y = malloc(M * N * sizeof(float)), *want = malloc(M * N * sizeof(float));
        float *mag = malloc(M * N * sizeof(float));
        int8_t *wq = malloc(N * K);
        float *ws = malloc(N * sizeof(float));
        for (size_t i = 0; i < M * K; i++)
            x[i] = stdcpu_test_uniform(&rng, -2, 2);
        for (size_t i = 0; i < N * K; i++)
            w[i] = stdcpu_test_uniform(&rng, -1, 1);
        stdcpu_q8_quantize_weights(w, N, K, wq, ws);
        stdcpu_linear_weight lq;
        ck_assert_int_eq(stdcpu_linear_weight_init_q8(&lq, wq, ws, NULL, N, K, NULL), STDCPU_OK);
        ref_linear_q8(x, wq, ws, NULL, M, N, K, NULL, STDCPU_ACT_GELU, want);
        for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
            const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
            if (!kt)
                continue;
            ck_assert_int_eq(stdcpu_linear_ex(isa & 1 ? pool : NULL, kt, &lq, x, y, M, NULL,
                                              STDCPU_ACT_GELU, NULL), STDCPU_OK);
            check_close(y, want, NULL, M * N, 1e-5, "several row blocks");
        }
        /* f32: row blocks, k blocks of the f32 driver, every ISA */
        stdcpu_linear_weight lf;
        ck_assert_int_eq(stdcpu_linear_weight_init_f32(&lf, w, NULL, N, K, NULL), STDCPU_OK);
        ref_linear_f32(x, w, NULL, M, N, K, NULL, STDCPU_ACT_GELU, want, mag);
        for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
            const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
            if (!kt)
                continue;
            ck_assert_int_eq(stdcpu_linear_ex(isa & 1 ? NULL : pool, kt, &lf, x, y, M, NULL,
                                              STDCPU_ACT_GELU, NULL), STDCPU_OK);
            check_close(y, want, mag, M * N, 1e-5, "f32 several row blocks");
        }
        stdcpu_linear_weight_free(&lf);
        stdcpu_linear_weight_free(&lq);
        free(x); free(w); free(y); free(want); free(wq); free(ws); free(mag);
    }
    stdcpu_pool_destroy(pool);
}
END_TEST

START_TEST(test_linear_rejects_bad_args)
{
    stdcpu_linear_weight lw;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_linear_weight_init_f32(&lw, NULL, NULL, 3, 3, &err), STDCPU_ERR_INVALID_ARG);
    float w[4] = {1, 2, 3, 4}, x[2] = {1, 1}, y[2];
    ck_assert_int_eq(stdcpu_linear_weight_init_f32(&lw, w, NULL, 2, 2, &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_linear(NULL, &lw, x, y, 1, y, STDCPU_ACT_SILU, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_linear(NULL, &lw, x, y, 1, NULL, STDCPU_ACT_NONE, &err), STDCPU_OK);
    ck_assert(y[0] == 3.0f && y[1] == 7.0f);
    stdcpu_linear_weight_free(&lw);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("gemm");
    tcase_add_test(tc, test_q8_igemm_every_isa);
    tcase_add_test(tc, test_quantize_and_absmax_match_scalar);
    tcase_add_test(tc, test_linear_op_every_isa_and_thread_count);
    tcase_add_test(tc, test_linear_several_row_blocks);
    tcase_add_test(tc, test_linear_rejects_bad_args);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
