/* 2-D convolution (NHWC, f32 and q8) against a direct NCHW loop in double.
 *
 * The q8 reference runs the direct loop over the dequantised values (input
 * quantised per tensor, weights per channel, exactly as the op does; or per
 * pixel row for 1x1 stride-1 convs), so the only difference is f32 summation
 * order: 1e-5 relative to the output's magnitude. f32: 1e-5 as well, on
 * every ISA (f32 goes through each table's f32 GEMM kernel). */
#include <math.h>
#include <stdint.h>

#include "base/mem.h"
#include "core/ops_gemm.h"
#include "simd/dispatch.h"
#include "simd/gemm.h"
#include "testutil.h"

/* x [B, C, H, W], w [O, C, kh, kw] -> y [B, O, Ho, Wo], all NCHW. */
static void direct_conv_nchw(const float *x, const float *w, const float *bias, size_t B, size_t C,
                             size_t H, size_t W, size_t O, size_t kh, size_t kw, size_t stride,
                             size_t pad, float *y)
{
    const size_t Ho = stdcpu_conv2d_out_size(H, kh, stride, pad);
    const size_t Wo = stdcpu_conv2d_out_size(W, kw, stride, pad);
    for (size_t b = 0; b < B; b++)
        for (size_t o = 0; o < O; o++)
            for (size_t oy = 0; oy < Ho; oy++)
                for (size_t ox = 0; ox < Wo; ox++) {
                    double acc = bias ? bias[o] : 0;
                    for (size_t c = 0; c < C; c++)
                        for (size_t ky = 0; ky < kh; ky++)
                            for (size_t kx = 0; kx < kw; kx++) {
                                const long iy = (long)(oy * stride + ky) - (long)pad;
                                const long ix = (long)(ox * stride + kx) - (long)pad;
                                if (iy < 0 || ix < 0 || iy >= (long)H || ix >= (long)W)
                                    continue;
                                acc += (double)x[((b * C + c) * H + (size_t)iy) * W + (size_t)ix] *
                                       w[((o * C + c) * kh + ky) * kw + kx];
                            }
                    y[((b * O + o) * Ho + oy) * Wo + ox] = (float)acc;
                }
}

static void quant_dequant(float *x, size_t n, float scale, float inv)
{
    int8_t q;
    const stdcpu_gemm_kernels *ref = &stdcpu_kernels_for_isa(STDCPU_ISA_SCALAR)->gemm;
    for (size_t i = 0; i < n; i++) {
        ref->q8_quantize(&x[i], 1, 1, inv, 0, &q);
        x[i] = (float)q * scale;
    }
}

static void run_case(stdcpu_pool *pool, const stdcpu_kernels *kt, size_t B, size_t C, size_t H,
                     size_t W, size_t O, size_t ksz, size_t stride, int q8, stdcpu_act act,
                     int with_res, stdcpu_test_rng *rng)
{
    const size_t pad = ksz / 2;
    const size_t Ho = stdcpu_conv2d_out_size(H, ksz, stride, pad);
    const size_t Wo = stdcpu_conv2d_out_size(W, ksz, stride, pad);
    const size_t nx = B * C * H * W, nw = O * C * ksz * ksz, ny = B * O * Ho * Wo;
    float *x = malloc(nx * sizeof(float)), *xn = malloc(nx * sizeof(float));
    float *w = malloc(nw * sizeof(float)), *bias = malloc(O * sizeof(float));
    float *res = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float));
    float *ref = malloc(ny * sizeof(float)), *want = malloc(ny * sizeof(float));
    int8_t *wq = malloc(nw);
    float *ws = malloc(O * sizeof(float));
    for (size_t i = 0; i < nx; i++)
        x[i] = stdcpu_test_uniform(rng, -1, 1);
    for (size_t i = 0; i < nw; i++)
        w[i] = stdcpu_test_uniform(rng, -0.5f, 0.5f);
    for (size_t i = 0; i < O; i++)
        bias[i] = stdcpu_test_uniform(rng, -0.5f, 0.5f);
    for (size_t i = 0; i < ny; i++)
        res[i] = stdcpu_test_uniform(rng, -1, 1);
    stdcpu_conv2d_weight cw;
    if (q8) {
        stdcpu_q8_quantize_weights(w, O, C * ksz * ksz, wq, ws);
        ck_assert_int_eq(stdcpu_conv2d_weight_init_q8(&cw, wq, ws, bias, O, C, ksz, ksz, NULL), STDCPU_OK);
        for (size_t i = 0; i < nw; i++)
            w[i] = (float)wq[i] * ws[i / (C * ksz * ksz)];
        if (ksz == 1 && stride == 1) { /* per pixel row */
            for (size_t b = 0; b < B; b++)
                for (size_t p = 0; p < H * W; p++) {
                    float m = 0, s, inv;
                    for (size_t c = 0; c < C; c++)
                        m = fmaxf(m, fabsf(x[(b * C + c) * H * W + p]));
                    stdcpu_q8_scale_for(m, &s, &inv);
                    for (size_t c = 0; c < C; c++)
                        quant_dequant(&x[(b * C + c) * H * W + p], 1, s, inv);
                }
        } else {
            float m = 0, s, inv;
            for (size_t i = 0; i < nx; i++)
                m = fmaxf(m, fabsf(x[i]));
            stdcpu_q8_scale_for(m, &s, &inv);
            quant_dequant(x, nx, s, inv);
        }
    } else {
        ck_assert_int_eq(stdcpu_conv2d_weight_init_f32(&cw, w, bias, O, C, ksz, ksz, NULL), STDCPU_OK);
    }
    /* Quantising the dequantised x again gives the same ints (q*s*inv rounds
     * back to q), so the op sees what the reference sees. */
    direct_conv_nchw(x, w, bias, B, C, H, W, O, ksz, ksz, stride, pad, ref);
    float *refh = malloc(ny * sizeof(float)), *resn = malloc(ny * sizeof(float));
    stdcpu_nchw_to_nhwc(ref, refh, B, O, Ho, Wo);
    for (size_t i = 0; i < ny; i++) {
        want[i] = stdcpu_act_scalar(refh[i], act) + (with_res ? res[i] : 0);
        resn[i] = res[i]; /* residual given NHWC directly */
    }
    stdcpu_nchw_to_nhwc(x, xn, B, C, H, W);
    ck_assert_int_eq(stdcpu_conv2d_ex(pool, kt, &cw, xn, B, H, W, stride, pad, y,
                                      with_res ? resn : NULL, act, NULL), STDCPU_OK);
    double scale = 0;
    for (size_t i = 0; i < ny; i++)
        scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < ny; i++)
        ck_assert_msg(fabs(y[i] - want[i]) <= 1e-5 * (fabs(want[i]) + scale) + 1e-6,
                      "%s %s B=%zu C=%zu H=%zu W=%zu O=%zu k=%zu s=%zu: [%zu] %g vs %g",
                      q8 ? "q8" : "f32", stdcpu_isa_name(kt->isa), B, C, H, W, O, ksz, stride, i,
                      y[i], want[i]);
    stdcpu_conv2d_weight_free(&cw);
    free(x); free(xn); free(w); free(bias); free(res); free(y); free(ref); free(want);
    free(wq); free(ws); free(refh); free(resn);
}

START_TEST(test_conv_every_isa)
{
    stdcpu_test_rng rng = {777};
    stdcpu_pool *pools[3];
    for (int t = 0; t < 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t + 1, NULL), STDCPU_OK);
    const size_t HW[] = {1, 2, 5, 7, 9};
    const size_t Cs[] = {1, 3, 17, 33};
    int n = 0;
    for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        for (size_t hi = 0; hi < 5; hi++)
            for (size_t ci = 0; ci < 4; ci++) {
                const size_t H = HW[hi], W = HW[(hi + ci) % 5], C = Cs[ci];
                const size_t O = Cs[(ci + hi) % 4] + 16 * (hi & 1);
                for (int q8 = 0; q8 < 2; q8++) {
                    for (size_t stride = 1; stride <= 2; stride++) {
                        n++;
                        run_case(pools[n % 3], kt, 1 + (hi == 2), C, H, W, O, 3, stride, q8,
                                 (stdcpu_act)(n % 3), n % 2, &rng);
                        run_case(pools[(n + 1) % 3], kt, 1, C, H, W, O, 1, stride, q8,
                                 (stdcpu_act)((n + 1) % 3), (n + 1) % 2, &rng);
                    }
                }
            }
    }
    /* A larger map: several row blocks / im2col tiles per thread. */
    for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        run_case(pools[isa % 3], kt, 1, 5, 23, 21, 7, 3, 1, 1, STDCPU_ACT_NONE, 1, &rng);
        for (int t = 0; t < 2; t++)
            run_case(pools[t], kt, 1, 5, 23, 21, 7, 3, 1 + (size_t)t, 0, STDCPU_ACT_SILU, 1, &rng);
    }
    for (int t = 0; t < 3; t++)
        stdcpu_pool_destroy(pools[t]);
}
END_TEST

/* f32 and q8 convolutions give the same bits at 1, 2 and 3 threads (the f32
 * tiles are planned for the pool's size). */
START_TEST(test_conv_thread_count_bit_identical)
{
    stdcpu_test_rng rng = {2024};
    const size_t C = 24, H = 40, W = 37, O = 50, ksz = 3, Ho = H, Wo = W;
    float *x = malloc(C * H * W * sizeof(float)), *w = malloc(O * C * ksz * ksz * sizeof(float));
    float *bias = malloc(O * sizeof(float)), *ws = malloc(O * sizeof(float));
    int8_t *wq = malloc(O * C * ksz * ksz);
    float *y[3];
    for (size_t i = 0; i < C * H * W; i++)
        x[i] = stdcpu_test_uniform(&rng, -1, 1);
    for (size_t i = 0; i < O * C * ksz * ksz; i++)
        w[i] = stdcpu_test_uniform(&rng, -1, 1);
    for (size_t i = 0; i < O; i++)
        bias[i] = stdcpu_test_uniform(&rng, -1, 1);
    stdcpu_q8_quantize_weights(w, O, C * ksz * ksz, wq, ws);
    stdcpu_conv2d_weight cw[2];
    ck_assert_int_eq(stdcpu_conv2d_weight_init_f32(&cw[0], w, bias, O, C, ksz, ksz, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_conv2d_weight_init_q8(&cw[1], wq, ws, bias, O, C, ksz, ksz, NULL), STDCPU_OK);
    stdcpu_pool *pools[3];
    for (int t = 0; t < 3; t++) {
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t + 1, NULL), STDCPU_OK);
        y[t] = malloc(Ho * Wo * O * sizeof(float));
    }
    for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        for (int q8 = 0; q8 < 2; q8++) {
            for (int t = 0; t < 3; t++)
                ck_assert_int_eq(stdcpu_conv2d_ex(pools[t], kt, &cw[q8], x, 1, H, W, 1, 1, y[t], NULL,
                                                  STDCPU_ACT_GELU, NULL), STDCPU_OK);
            for (int t = 1; t < 3; t++)
                ck_assert_msg(!memcmp(y[0], y[t], Ho * Wo * O * sizeof(float)),
                              "%s %s: %d threads differ from 1", stdcpu_isa_name(kt->isa),
                              q8 ? "q8" : "f32", t + 1);
        }
    }
    for (int t = 0; t < 3; t++) {
        stdcpu_pool_destroy(pools[t]);
        free(y[t]);
    }
    stdcpu_conv2d_weight_free(&cw[0]);
    stdcpu_conv2d_weight_free(&cw[1]);
    free(x); free(w); free(bias); free(ws); free(wq);
}
END_TEST

START_TEST(test_layout_roundtrip_and_bad_args)
{
    float x[2 * 3 * 4 * 5], y[120], z[120];
    for (int i = 0; i < 120; i++)
        x[i] = (float)i;
    stdcpu_nchw_to_nhwc(x, y, 2, 3, 4, 5);
    ck_assert(y[1] == 20.0f); /* (b0, h0, w0, c1) = x[c1 * 20] */
    stdcpu_nhwc_to_nchw(y, z, 2, 3, 4, 5);
    ck_assert(!memcmp(x, z, sizeof x));
    stdcpu_conv2d_weight cw;
    float w[9] = {0};
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_conv2d_weight_init_f32(&cw, w, NULL, 1, 1, 3, 3, &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_conv2d(NULL, &cw, x, 1, 1, 1, 1, 0, y, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG); /* 3x3 without padding on 1x1 */
    ck_assert_int_eq(stdcpu_conv2d(NULL, &cw, x, 1, 4, 4, 0, 1, y, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG); /* stride 0 */
    stdcpu_conv2d_weight_free(&cw);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_add_test(tc, test_conv_every_isa);
    tcase_add_test(tc, test_conv_thread_count_bit_identical);
    tcase_add_test(tc, test_layout_roundtrip_and_bad_args);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
