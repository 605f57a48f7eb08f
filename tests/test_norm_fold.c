/* GroupNorm folded into the layer after it: stdcpu_group_norm_affine
 * computes only the statistics, and stdcpu_conv2d_affine /
 * stdcpu_linear_affine apply the per-channel map (and SiLU) as they
 * quantise their input, so the normalised map is never stored.
 *
 * Contract checked: on every ISA this CPU has and for 1..3 threads the
 * output is bit-identical (memcmp) to stdcpu_group_norm followed by
 * stdcpu_conv2d_ex / stdcpu_linear_ex with the same kernel table (those are
 * tested against references in test_norm and test_conv). Batch items get
 * different statistics (a different offset and spread each), so applying
 * one item's map to another's pixels shows. Channel counts cover the conv's
 * L1 staging of 16 KiB: C = 5 (hundreds of pixels per chunk), 1100 (3 per
 * chunk, so chunks end at batch-item and thread boundaries) and 4200 (more
 * than the staging holds: one pixel per chunk). 3x3 convs at stride 1 and
 * 2, 1x1 convs (which run as the linear, with per-row scales), with and
 * without SiLU and a residual. Mismatched maps, f32 weights and overlapping
 * buffers are refused. */
#include <math.h>
#include <stdint.h>

#include "base/mem.h"
#include "core/ops_gemm.h"
#include "core/ops_nn.h"
#include "simd/dispatch.h"
#include "simd/gemm.h"
#include "testutil.h"

/* x [B, H, W, C] NHWC; item b is uniform in (b + 1) * [-1, 1] + 3 b. */
static float *make_map(size_t B, size_t H, size_t W, size_t C, stdcpu_test_rng *r)
{
    float *x = malloc(B * H * W * C * sizeof(float));
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < H * W * C; i++)
            x[b * H * W * C + i] = (float)(b + 1) * stdcpu_test_uniform(r, -1, 1) + 3.0f * (float)b;
    return x;
}

static void make_conv_q8(stdcpu_conv2d_weight *cw, size_t O, size_t C, size_t k, stdcpu_test_rng *r)
{
    const size_t n = O * C * k * k;
    float *w = malloc(n * sizeof(float)), *bias = malloc(O * sizeof(float)), *ws = malloc(O * sizeof(float));
    int8_t *wq = malloc(n);
    for (size_t i = 0; i < n; i++)
        w[i] = stdcpu_test_uniform(r, -1, 1);
    for (size_t i = 0; i < O; i++)
        bias[i] = stdcpu_test_uniform(r, -1, 1);
    stdcpu_q8_quantize_weights(w, O, C * k * k, wq, ws);
    ck_assert_int_eq(stdcpu_conv2d_weight_init_q8(cw, wq, ws, bias, O, C, k, k, NULL), STDCPU_OK);
    free(w); free(bias); free(ws); free(wq);
}

typedef struct {
    size_t B, H, W, C, G, O, k, stride;
    int silu, residual;
} fold_case;

static void run_conv_case(const fold_case *fc, stdcpu_pool *const pools[3], stdcpu_test_rng *r)
{
    const size_t B = fc->B, H = fc->H, W = fc->W, C = fc->C, O = fc->O, pad = fc->k / 2;
    const size_t Ho = stdcpu_conv2d_out_size(H, fc->k, fc->stride, pad);
    const size_t Wo = stdcpu_conv2d_out_size(W, fc->k, fc->stride, pad), ny = B * Ho * Wo * O;
    float *x = make_map(B, H, W, C, r), *gamma = malloc(C * sizeof(float)), *beta = malloc(C * sizeof(float));
    for (size_t c = 0; c < C; c++) {
        gamma[c] = stdcpu_test_uniform(r, 0.5f, 1.5f);
        beta[c] = stdcpu_test_uniform(r, -0.5f, 0.5f);
    }
    float *normed = malloc(B * H * W * C * sizeof(float)), *res = malloc(ny * sizeof(float));
    float *want = malloc(ny * sizeof(float)), *got = malloc(ny * sizeof(float));
    float *buf = malloc(stdcpu_group_norm_affine_floats(B, C) * sizeof(float));
    for (size_t i = 0; i < ny; i++)
        res[i] = stdcpu_test_uniform(r, -1, 1);
    stdcpu_conv2d_weight cw;
    make_conv_q8(&cw, O, C, fc->k, r);
    for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        ck_assert_int_eq(stdcpu_group_norm(pools[0], kt, x, B, H, W, C, fc->G, 1e-5f, gamma, beta, fc->silu, normed,
                                           NULL), STDCPU_OK);
        ck_assert_int_eq(stdcpu_conv2d_ex(pools[0], kt, &cw, normed, B, H, W, fc->stride, pad, want,
                                          fc->residual ? res : NULL, STDCPU_ACT_NONE, NULL), STDCPU_OK);
        for (int t = 0; t < 3; t++) {
            stdcpu_chan_affine a;
            ck_assert_int_eq(stdcpu_group_norm_affine(pools[t], kt, x, B, H, W, C, fc->G, 1e-5f, gamma, beta,
                                                      fc->silu, buf, &a, NULL), STDCPU_OK);
            for (size_t i = 0; i < ny; i++)
                got[i] = NAN;
            ck_assert_int_eq(stdcpu_conv2d_affine(pools[t], kt, &cw, &a, x, B, H, W, fc->stride, pad, got,
                                                  fc->residual ? res : NULL, STDCPU_ACT_NONE, NULL), STDCPU_OK);
            ck_assert_msg(!memcmp(want, got, ny * sizeof(float)),
                          "%s, %d threads: B%zu %zux%zu C%zu G%zu -> O%zu k%zu s%zu silu %d: folded != unfused",
                          stdcpu_isa_name(kt->isa), t + 1, B, H, W, C, fc->G, O, fc->k, fc->stride, fc->silu);
        }
    }
    stdcpu_conv2d_weight_free(&cw);
    free(x); free(gamma); free(beta); free(normed); free(res); free(want); free(got); free(buf);
}

START_TEST(test_conv_folded_equals_unfused)
{
    stdcpu_test_rng rng = {4242};
    stdcpu_pool *pools[3];
    for (int t = 0; t < 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t + 1, NULL), STDCPU_OK);
    const fold_case cases[] = {
        {2, 9, 7, 8, 4, 33, 3, 1, 1, 1},    /* small C: many pixels per chunk */
        {2, 5, 7, 1100, 10, 17, 3, 1, 1, 0}, /* 3 pixels per chunk, odd item size 35 */
        {3, 3, 5, 1100, 1, 31, 3, 2, 0, 1},  /* stride 2 */
        {2, 3, 3, 4200, 4, 9, 3, 1, 1, 0},   /* one pixel per chunk */
        {2, 6, 5, 20, 5, 45, 1, 1, 1, 1},    /* 1x1: through the linear */
        {1, 11, 13, 40, 8, 16, 3, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_conv_case(&cases[i], pools, &rng);
    for (int t = 0; t < 3; t++)
        stdcpu_pool_destroy(pools[t]);
}
END_TEST

/* The transformer's GroupNorm -> proj_in: a linear on the map's rows. */
START_TEST(test_linear_folded_equals_unfused)
{
    stdcpu_test_rng rng = {99};
    const size_t B = 3, HW = 37, C = 48, G = 6, n = 45, M = B * HW;
    float *x = make_map(B, HW, 1, C, &rng), *normed = malloc(M * C * sizeof(float));
    float *gamma = malloc(C * sizeof(float)), *w = malloc(n * C * sizeof(float)), *ws = malloc(n * sizeof(float));
    float *want = malloc(M * n * sizeof(float)), *got = malloc(M * n * sizeof(float));
    float *buf = malloc(stdcpu_group_norm_affine_floats(B, C) * sizeof(float));
    int8_t *wq = malloc(n * C);
    for (size_t c = 0; c < C; c++)
        gamma[c] = stdcpu_test_uniform(&rng, 0.5f, 1.5f);
    for (size_t i = 0; i < n * C; i++)
        w[i] = stdcpu_test_uniform(&rng, -1, 1);
    stdcpu_q8_quantize_weights(w, n, C, wq, ws);
    stdcpu_linear_weight lw;
    ck_assert_int_eq(stdcpu_linear_weight_init_q8(&lw, wq, ws, NULL, n, C, NULL), STDCPU_OK);
    stdcpu_pool *pools[3];
    for (int t = 0; t < 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t + 1, NULL), STDCPU_OK);
    for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        ck_assert_int_eq(stdcpu_group_norm(NULL, kt, x, B, HW, 1, C, G, 1e-6f, gamma, NULL, 0, normed, NULL),
                         STDCPU_OK);
        ck_assert_int_eq(stdcpu_linear_ex(NULL, kt, &lw, normed, want, M, NULL, STDCPU_ACT_NONE, NULL), STDCPU_OK);
        for (int t = 0; t < 3; t++) {
            stdcpu_chan_affine a;
            ck_assert_int_eq(stdcpu_group_norm_affine(pools[t], kt, x, B, HW, 1, C, G, 1e-6f, gamma, NULL, 0, buf,
                                                      &a, NULL), STDCPU_OK);
            ck_assert_int_eq(stdcpu_linear_affine(pools[t], kt, &lw, &a, x, got, M, NULL, STDCPU_ACT_NONE, NULL),
                             STDCPU_OK);
            ck_assert_msg(!memcmp(want, got, M * n * sizeof(float)), "%s, %d threads: folded != unfused",
                          stdcpu_isa_name(kt->isa), t + 1);
        }
    }
    for (int t = 0; t < 3; t++)
        stdcpu_pool_destroy(pools[t]);
    stdcpu_linear_weight_free(&lw);
    free(x); free(normed); free(gamma); free(w); free(ws); free(want); free(got); free(buf); free(wq);
}
END_TEST

START_TEST(test_refusals)
{
    stdcpu_test_rng rng = {5};
    const size_t B = 2, H = 4, W = 4, C = 8, O = 8;
    float *x = make_map(B, H, W, C, &rng), *y = malloc(B * H * W * O * sizeof(float));
    float *buf = malloc(stdcpu_group_norm_affine_floats(B, C) * sizeof(float));
    float wf[8 * 8 * 9] = {0};
    stdcpu_conv2d_weight cq, cf;
    make_conv_q8(&cq, O, C, 3, &rng);
    ck_assert_int_eq(stdcpu_conv2d_weight_init_f32(&cf, wf, NULL, O, C, 3, 3, NULL), STDCPU_OK);
    stdcpu_chan_affine a;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_group_norm_affine(NULL, NULL, x, B, H, W, C, 3, 1e-5f, NULL, NULL, 1, buf, &a, &err),
                     STDCPU_ERR_INVALID_ARG); /* C % G */
    ck_assert_int_eq(stdcpu_group_norm_affine(NULL, NULL, x, B, H, W, C, 2, 1e-5f, NULL, NULL, 1, NULL, &a, &err),
                     STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_group_norm_affine(NULL, NULL, x, B, H, W, C, 2, 1e-5f, NULL, NULL, 1, buf, &a, &err),
                     STDCPU_OK);
    ck_assert_int_eq(stdcpu_conv2d_affine(NULL, NULL, &cq, &a, x, B, H, W, 1, 1, y, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_OK);
    ck_assert_int_eq(stdcpu_conv2d_affine(NULL, NULL, &cf, &a, x, B, H, W, 1, 1, y, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG); /* f32 weights */
    ck_assert_int_eq(stdcpu_conv2d_affine(NULL, NULL, &cq, NULL, x, B, H, W, 1, 1, y, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_conv2d_affine(NULL, NULL, &cq, &a, x, B, H, W / 2, 1, 1, y, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG); /* the map is for 4x4 items */
    ck_assert_int_eq(stdcpu_conv2d_affine(NULL, NULL, &cq, &a, x, B, H, W, 1, 1, x, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG); /* in place */
    stdcpu_chan_affine wrong = a;
    wrong.C = C + 1;
    ck_assert_int_eq(stdcpu_conv2d_affine(NULL, NULL, &cq, &wrong, x, B, H, W, 1, 1, y, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG);
    wrong = a;
    wrong.mul = NULL;
    ck_assert_int_eq(stdcpu_conv2d_affine(NULL, NULL, &cq, &wrong, x, B, H, W, 1, 1, y, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG);
    stdcpu_conv2d_weight c1;
    make_conv_q8(&c1, O, C, 1, &rng);
    stdcpu_linear_weight lw = {.n = O, .k = C, .is_q8 = 1, .kp = c1.cp, .packed = c1.packed, .wsum = c1.wsum,
                               .w_scale = c1.w_scale};
    ck_assert_int_eq(stdcpu_linear_affine(NULL, NULL, &lw, &a, x, y, B * H * W, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_OK);
    ck_assert_int_eq(stdcpu_linear_affine(NULL, NULL, &lw, &a, x, y, B * H * W - 1, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG); /* rows not a whole number of items */
    ck_assert_int_eq(stdcpu_linear_affine(NULL, NULL, &lw, &a, x, x, B * H * W, NULL, STDCPU_ACT_NONE, &err),
                     STDCPU_ERR_INVALID_ARG); /* in place */
    stdcpu_conv2d_weight_free(&c1);
    stdcpu_conv2d_weight_free(&cq);
    stdcpu_conv2d_weight_free(&cf);
    free(x); free(y); free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("norm_fold");
    TCase *tc = tcase_create("norm_fold");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_conv_folded_equals_unfused);
    tcase_add_test(tc, test_linear_folded_equals_unfused);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
