/* The transformer blocks' fused ops: the GEGLU feed-forward
 * (stdcpu_geglu_ff, core/ops_ff.c) and a linear with its LayerNorm folded in
 * (stdcpu_linear_norm, core/ops_gemm.c).
 *
 * Contract checked: on every ISA this CPU has and for 1..3 threads, the
 * output is bit-identical (memcmp) to the unfused sequence stdcpu_linear ->
 * stdcpu_geglu -> stdcpu_linear (residual in place) with the same kernel
 * table, itself tested against references in test_gemm / test_eltwise.
 * Shapes straddle the row block (STDCPU_FF_ROWS, one under / one over), the
 * column group (256: F = 272 and 528 have a partial last group), the 32-column
 * tile (F = 48: the gate starts mid-tile) and odd k / n. A loose check
 * against the float function itself (relative L2 < 3%: int8 weights and
 * activations) shows both compute the feed-forward, not merely the same
 * thing. With the LayerNorm folded in and in place (x == y), the same
 * against stdcpu_layer_norm + the unfused sequence. Unsupported weights,
 * overlapping buffers and missing norm parameters are refused. */
#include <math.h>
#include <stdint.h>

#include "base/mem.h"
#include "core/ops_gemm.h"
#include "core/ops_nn.h"
#include "simd/dispatch.h"
#include "simd/gemm.h"
#include "testutil.h"

typedef struct {
    size_t M, k, F, n;
    float *x, *w1, *b1, *w2, *b2, *y0; /* y0: the residual y starts from */
    stdcpu_linear_weight l1, l2;
} ff_case;

static void case_make(ff_case *c, size_t M, size_t k, size_t F, size_t n, stdcpu_test_rng *r)
{
    c->M = M, c->k = k, c->F = F, c->n = n;
    c->x = malloc(M * k * sizeof(float));
    c->w1 = malloc(2 * F * k * sizeof(float));
    c->b1 = malloc(2 * F * sizeof(float));
    c->w2 = malloc(n * F * sizeof(float));
    c->b2 = malloc(n * sizeof(float));
    c->y0 = malloc(M * n * sizeof(float));
    for (size_t i = 0; i < M * k; i++)
        c->x[i] = stdcpu_test_uniform(r, -2, 2);
    for (size_t i = 0; i < 2 * F * k; i++)
        c->w1[i] = stdcpu_test_uniform(r, -1, 1) / sqrtf((float)k);
    for (size_t i = 0; i < 2 * F; i++)
        c->b1[i] = stdcpu_test_uniform(r, -0.5f, 0.5f);
    for (size_t i = 0; i < n * F; i++)
        c->w2[i] = stdcpu_test_uniform(r, -1, 1) / sqrtf((float)F);
    for (size_t i = 0; i < n; i++)
        c->b2[i] = stdcpu_test_uniform(r, -0.5f, 0.5f);
    for (size_t i = 0; i < M * n; i++)
        c->y0[i] = stdcpu_test_uniform(r, -1, 1);
    int8_t *q1 = malloc(2 * F * k), *q2 = malloc(n * F);
    float *s1 = malloc(2 * F * sizeof(float)), *s2 = malloc(n * sizeof(float));
    stdcpu_q8_quantize_weights(c->w1, 2 * F, k, q1, s1);
    stdcpu_q8_quantize_weights(c->w2, n, F, q2, s2);
    ck_assert_int_eq(stdcpu_linear_weight_init_q8(&c->l1, q1, s1, c->b1, 2 * F, k, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_linear_weight_init_q8(&c->l2, q2, s2, c->b2, n, F, NULL), STDCPU_OK);
    free(q1), free(q2), free(s1), free(s2);
}

static void case_free(ff_case *c)
{
    stdcpu_linear_weight_free(&c->l1);
    stdcpu_linear_weight_free(&c->l2);
    free(c->x), free(c->w1), free(c->b1), free(c->w2), free(c->b2), free(c->y0);
}

/* y = y0 + the unfused sequence on kt */
static void unfused(const ff_case *c, stdcpu_pool *pool, const stdcpu_kernels *kt, float *y)
{
    float *p = malloc(c->M * 2 * c->F * sizeof(float)), *g = malloc(c->M * c->F * sizeof(float));
    memcpy(y, c->y0, c->M * c->n * sizeof(float));
    ck_assert_int_eq(stdcpu_linear_ex(pool, kt, &c->l1, c->x, p, c->M, NULL, STDCPU_ACT_NONE, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_geglu(pool, kt, p, c->M, c->F, g, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_linear_ex(pool, kt, &c->l2, g, y, c->M, y, STDCPU_ACT_NONE, NULL), STDCPU_OK);
    free(p), free(g);
}

/* The float function in double: y0 + W2 geglu(W1 x + b1) + b2. */
static void reference(const ff_case *c, float *y)
{
    double *g = malloc(c->F * sizeof(double));
    for (size_t m = 0; m < c->M; m++) {
        const float *xr = c->x + m * c->k;
        for (size_t f = 0; f < c->F; f++) {
            double h = c->b1[f], gt = c->b1[c->F + f];
            for (size_t i = 0; i < c->k; i++) {
                h += (double)c->w1[f * c->k + i] * xr[i];
                gt += (double)c->w1[(c->F + f) * c->k + i] * xr[i];
            }
            g[f] = h * 0.5 * gt * (1.0 + erf(gt / sqrt(2.0)));
        }
        for (size_t o = 0; o < c->n; o++) {
            double s = c->y0[m * c->n + o] + c->b2[o];
            for (size_t f = 0; f < c->F; f++)
                s += (double)c->w2[o * c->F + f] * g[f];
            y[m * c->n + o] = (float)s;
        }
    }
    free(g);
}

START_TEST(test_ff_matches_unfused_every_isa)
{
    stdcpu_test_rng rng = {777};
    /* M: 1, one under / at / over a row block, several blocks; F: one panel,
     * gate mid-tile, one whole group, partial last groups */
    const size_t shapes[][4] = {
        {1, 3, 16, 5},   {63, 20, 48, 16}, {64, 33, 256, 33}, {65, 17, 272, 7},
        {130, 40, 528, 40}, {200, 64, 32, 1},
    };
    stdcpu_pool *pools[3];
    for (int t = 0; t < 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t + 1, NULL), STDCPU_OK);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        ff_case c;
        case_make(&c, shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3], &rng);
        const size_t ny = c.M * c.n;
        float *want = malloc(ny * sizeof(float)), *got = malloc(ny * sizeof(float));
        float *ref = malloc(ny * sizeof(float));
        reference(&c, ref);
        int isas = 0;
        for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
            const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
            if (!kt)
                continue;
            isas++;
            unfused(&c, pools[0], kt, want);
            for (int t = 0; t < 3; t++) {
                memcpy(got, c.y0, ny * sizeof(float));
                ck_assert_int_eq(stdcpu_geglu_ff(pools[t], kt, &c.l1, &c.l2, NULL, c.x, got, c.M, NULL, 0, NULL),
                                 STDCPU_OK);
                ck_assert_msg(!memcmp(got, want, ny * sizeof(float)),
                              "%s M %zu k %zu F %zu n %zu threads %d: fused differs from unfused",
                              stdcpu_isa_name((stdcpu_isa)isa), c.M, c.k, c.F, c.n, t + 1);
            }
            /* the caller's scratch, exactly sized and poisoned */
            const size_t sb = stdcpu_geglu_ff_scratch_bytes(&c.l1, &c.l2, 2);
            ck_assert_uint_gt(sb, 0);
            unsigned char *scratch = stdcpu_aligned_alloc(sb);
            memset(scratch, 0xa5, sb);
            memcpy(got, c.y0, ny * sizeof(float));
            ck_assert_int_eq(stdcpu_geglu_ff(pools[1], kt, &c.l1, &c.l2, NULL, c.x, got, c.M, scratch, sb, NULL),
                             STDCPU_OK);
            ck_assert_msg(!memcmp(got, want, ny * sizeof(float)), "%s: with caller scratch",
                          stdcpu_isa_name((stdcpu_isa)isa));
            stdcpu_aligned_free(scratch);
            const double e = stdcpu_test_rel_l2(got, ref, ny);
            ck_assert_msg(e < 0.03, "%s M %zu F %zu: %.4f from the float function", stdcpu_isa_name((stdcpu_isa)isa),
                          c.M, c.F, e);
        }
        ck_assert_int_ge(isas, 1);
        free(want), free(got), free(ref);
        case_free(&c);
    }
    for (int t = 0; t < 3; t++)
        stdcpu_pool_destroy(pools[t]);
}
END_TEST

/* With the LayerNorm folded in and x == y (how the UNet calls it: the
 * hidden state is the input and the residual): the same bits as
 * stdcpu_layer_norm then the unfused sequence, every ISA, 1..3 threads. */
START_TEST(test_ff_with_norm_in_place)
{
    stdcpu_test_rng rng = {4321};
    const size_t shapes[][3] = {{130, 40, 48}, {64, 32, 256}, {7, 24, 16}}; /* M, C (= k = n), F */
    stdcpu_pool *pools[3];
    for (int t = 0; t < 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t + 1, NULL), STDCPU_OK);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const size_t M = shapes[si][0], C = shapes[si][1], F = shapes[si][2];
        ff_case c;
        case_make(&c, M, C, F, C, &rng);
        float *gamma = malloc(C * sizeof(float)), *beta = malloc(C * sizeof(float));
        float *ln = malloc(M * C * sizeof(float)), *want = malloc(M * C * sizeof(float));
        float *got = malloc(M * C * sizeof(float));
        for (size_t i = 0; i < C; i++) {
            gamma[i] = stdcpu_test_uniform(&rng, 0.5f, 1.5f);
            beta[i] = stdcpu_test_uniform(&rng, -0.5f, 0.5f);
        }
        const stdcpu_row_norm norm = {.gamma = gamma, .beta = beta, .eps = 1e-5f};
        for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
            const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
            if (!kt)
                continue;
            /* reference: hidden state y0; ln = norm(y0); y0 += ff(ln) */
            ck_assert_int_eq(stdcpu_layer_norm(pools[0], kt, c.y0, M, C, 1e-5f, gamma, beta, ln, NULL), STDCPU_OK);
            float *x_saved = c.x;
            c.x = ln;
            unfused(&c, pools[0], kt, want);
            c.x = x_saved;
            for (int t = 0; t < 3; t++) {
                memcpy(got, c.y0, M * C * sizeof(float));
                ck_assert_int_eq(stdcpu_geglu_ff(pools[t], kt, &c.l1, &c.l2, &norm, got, got, M, NULL, 0, NULL),
                                 STDCPU_OK);
                ck_assert_msg(!memcmp(got, want, M * C * sizeof(float)), "%s M %zu C %zu F %zu threads %d",
                              stdcpu_isa_name((stdcpu_isa)isa), M, C, F, t + 1);
            }
        }
        free(gamma), free(beta), free(ln), free(want), free(got);
        case_free(&c);
    }
    for (int t = 0; t < 3; t++)
        stdcpu_pool_destroy(pools[t]);
}
END_TEST

/* stdcpu_linear_norm (a linear with the LayerNorm before it folded in):
 * the same bits as stdcpu_layer_norm then stdcpu_linear_ex, every ISA, 1..3
 * threads, with and without a residual; f32 weights are refused. */
START_TEST(test_linear_with_folded_norm)
{
    stdcpu_test_rng rng = {99};
    const size_t shapes[][3] = {{1, 3, 5}, {9, 40, 120}, {300, 64, 33}, {70, 320, 16}}; /* M, k, n */
    stdcpu_pool *pools[3];
    for (int t = 0; t < 3; t++)
        ck_assert_int_eq(stdcpu_pool_create(&pools[t], t + 1, NULL), STDCPU_OK);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const size_t M = shapes[si][0], k = shapes[si][1], n = shapes[si][2];
        float *x = malloc(M * k * sizeof(float)), *w = malloc(n * k * sizeof(float)), *ws = malloc(n * sizeof(float));
        float *bias = malloc(n * sizeof(float)), *gamma = malloc(k * sizeof(float)), *beta = malloc(k * sizeof(float));
        float *ln = malloc(M * k * sizeof(float)), *res = malloc(M * n * sizeof(float));
        float *want = malloc(M * n * sizeof(float)), *got = malloc(M * n * sizeof(float));
        int8_t *wq = malloc(n * k);
        for (size_t i = 0; i < M * k; i++)
            x[i] = stdcpu_test_uniform(&rng, -3, 3) + (float)(i % 7);
        for (size_t i = 0; i < n * k; i++)
            w[i] = stdcpu_test_uniform(&rng, -1, 1);
        for (size_t i = 0; i < n; i++)
            bias[i] = stdcpu_test_uniform(&rng, -1, 1);
        for (size_t i = 0; i < k; i++) {
            gamma[i] = stdcpu_test_uniform(&rng, 0.5f, 1.5f);
            beta[i] = stdcpu_test_uniform(&rng, -0.5f, 0.5f);
        }
        for (size_t i = 0; i < M * n; i++)
            res[i] = stdcpu_test_uniform(&rng, -1, 1);
        stdcpu_q8_quantize_weights(w, n, k, wq, ws);
        stdcpu_linear_weight lq, lf;
        ck_assert_int_eq(stdcpu_linear_weight_init_q8(&lq, wq, ws, bias, n, k, NULL), STDCPU_OK);
        ck_assert_int_eq(stdcpu_linear_weight_init_f32(&lf, w, bias, n, k, NULL), STDCPU_OK);
        const stdcpu_row_norm norm = {.gamma = gamma, .beta = beta, .eps = 1e-5f};
        for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
            const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
            if (!kt)
                continue;
            ck_assert_int_eq(stdcpu_layer_norm(pools[0], kt, x, M, k, 1e-5f, gamma, beta, ln, NULL), STDCPU_OK);
            for (int r = 0; r < 2; r++) {
                ck_assert_int_eq(
                    stdcpu_linear_ex(pools[0], kt, &lq, ln, want, M, r ? res : NULL, STDCPU_ACT_NONE, NULL), STDCPU_OK);
                for (int t = 0; t < 3; t++) {
                    ck_assert_int_eq(stdcpu_linear_norm(pools[t], kt, &lq, &norm, x, got, M, r ? res : NULL,
                                                        STDCPU_ACT_NONE, NULL),
                                     STDCPU_OK);
                    ck_assert_msg(!memcmp(got, want, M * n * sizeof(float)), "%s M %zu k %zu n %zu threads %d res %d",
                                  stdcpu_isa_name((stdcpu_isa)isa), M, k, n, t + 1, r);
                }
            }
        }
        stdcpu_error err;
        ck_assert_int_eq(stdcpu_linear_norm(pools[0], NULL, &lf, &norm, x, got, M, NULL, STDCPU_ACT_NONE, &err),
                         STDCPU_ERR_INVALID_ARG);
        ck_assert_ptr_nonnull(strstr(err.msg, "q8"));
        ck_assert_int_eq(stdcpu_linear_norm(pools[0], NULL, &lq, NULL, x, got, M, NULL, STDCPU_ACT_NONE, &err),
                         STDCPU_ERR_INVALID_ARG);
        stdcpu_linear_weight_free(&lq);
        stdcpu_linear_weight_free(&lf);
        free(x), free(w), free(ws), free(bias), free(gamma), free(beta), free(ln), free(res), free(want), free(got);
        free(wq);
    }
    for (int t = 0; t < 3; t++)
        stdcpu_pool_destroy(pools[t]);
}
END_TEST

START_TEST(test_ff_refuses_what_it_cannot_fuse)
{
    stdcpu_test_rng rng = {5};
    stdcpu_error err;
    ff_case c;
    case_make(&c, 4, 8, 24, 8, &rng); /* F = 24: the gate would start mid-panel */
    float y[32];
    ck_assert_uint_eq(stdcpu_geglu_ff_scratch_bytes(&c.l1, &c.l2, 1), 0);
    ck_assert_int_eq(stdcpu_geglu_ff(NULL, NULL, &c.l1, &c.l2, NULL, c.x, y, 4, NULL, 0, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "multiple of 16"));
    case_free(&c);

    case_make(&c, 4, 8, 16, 8, &rng);
    stdcpu_linear_weight lf; /* f32 weights are not fused */
    ck_assert_int_eq(stdcpu_linear_weight_init_f32(&lf, c.w1, c.b1, 32, 8, NULL), STDCPU_OK);
    ck_assert_uint_eq(stdcpu_geglu_ff_scratch_bytes(&lf, &c.l2, 1), 0);
    ck_assert_int_eq(stdcpu_geglu_ff(NULL, NULL, &lf, &c.l2, NULL, c.x, y, 4, NULL, 0, &err), STDCPU_ERR_INVALID_ARG);
    /* mismatched shapes: W_in must be [2F, k] for W_out [n, F] */
    ck_assert_uint_eq(stdcpu_geglu_ff_scratch_bytes(&c.l2, &c.l1, 1), 0);
    ck_assert_int_eq(stdcpu_geglu_ff(NULL, NULL, &c.l1, &c.l2, NULL, NULL, y, 4, NULL, 0, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_geglu_ff(NULL, NULL, &c.l1, &c.l2, NULL, c.x, y, 0, NULL, 0, &err), STDCPU_OK);
    /* x overlapping y other than x == y; a norm without parameters */
    float big[64];
    ck_assert_int_eq(stdcpu_geglu_ff(NULL, NULL, &c.l1, &c.l2, NULL, big, big + 4, 4, NULL, 0, &err),
                     STDCPU_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "overlaps"));
    /* in place (x == y) needs rows of one width: k = 8 against n = 5 is refused */
    ff_case c2;
    case_make(&c2, 4, 8, 16, 5, &rng);
    ck_assert_int_eq(stdcpu_geglu_ff(NULL, NULL, &c2.l1, &c2.l2, NULL, big, big, 4, NULL, 0, &err),
                     STDCPU_ERR_INVALID_ARG);
    case_free(&c2);
    const stdcpu_row_norm no_gamma = {.gamma = NULL, .beta = c.b2, .eps = 1e-5f};
    ck_assert_int_eq(stdcpu_geglu_ff(NULL, NULL, &c.l1, &c.l2, &no_gamma, c.x, y, 4, NULL, 0, &err),
                     STDCPU_ERR_INVALID_ARG);
    stdcpu_linear_weight_free(&lf);
    case_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ff");
    TCase *tc = tcase_create("ff");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ff_matches_unfused_every_isa);
    tcase_add_test(tc, test_ff_with_norm_in_place);
    tcase_add_test(tc, test_linear_with_folded_norm);
    tcase_add_test(tc, test_ff_refuses_what_it_cannot_fuse);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
