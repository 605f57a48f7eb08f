/* f32 GEMM (simd/sgemm.h): every ISA this CPU has (STDCPU_ISA caps the
 * tables), odd shapes around each kernel's MR / NR / KC, beta 0 and 1,
 * strides larger than k.
 *
 * Checks per element:
 *  - against a double-accumulated reference: |got - want| <= 1e-5 * S with
 *    S = sum_k |a||b| (+ |c| when accumulating): the f32 rounding of a k-long
 *    sum is far below that for random signs (and k <= 700 here);
 *  - exactly (bit for bit) against the documented order: per block of
 *    f32_kc, one sequential chain from 0 (fmaf per step for the SIMD tables,
 *    a multiply then an add for the scalar one), the blocks' sums added to
 *    C in k order;
 *  - columns past `cols` (inside ldc) and rows past `rows` stay untouched.
 * And: one call equals the same GEMM split into row blocks, column blocks
 * and k blocks at multiples of f32_kc (the later ones accumulating), bit for
 * bit. */
#include <math.h>
#include <stdint.h>

#include "base/mem.h"
#include "simd/dispatch.h"
#include "simd/gemm.h"
#include "testutil.h"

#define SENTINEL 12345.0f

static float *rand_buf(stdcpu_test_rng *r, size_t n)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = stdcpu_test_uniform(r, -1, 1);
    return x;
}

static void check_gemm(const stdcpu_gemm_kernels *gk, int use_fma, size_t rows, size_t cols,
                       size_t k, int beta, void *scratch, stdcpu_test_rng *rng)
{
    const size_t lda = k + 3, ldb = k + 5, ldc = cols + 2, crows = rows + 1;
    float *a = rand_buf(rng, rows * lda), *b = rand_buf(rng, cols * ldb);
    float *c0 = rand_buf(rng, crows * ldc), *c = malloc(crows * ldc * sizeof(float));
    for (size_t i = 0; i < crows; i++)
        for (size_t j = 0; j < ldc; j++)
            c[i * ldc + j] = (i < rows && j < cols) ? (beta ? c0[i * ldc + j] : NAN) : SENTINEL;
    ck_assert(stdcpu_f32_gemm(gk, rows, cols, k, a, lda, b, ldb, c, ldc, beta, scratch));
    for (size_t i = 0; i < crows; i++)
        for (size_t j = 0; j < ldc; j++) {
            const float got = c[i * ldc + j];
            if (i >= rows || j >= cols) {
                ck_assert_msg(got == SENTINEL, "%s rows=%zu cols=%zu k=%zu wrote (%zu,%zu)",
                              gk->f32_gemm_name, rows, cols, k, i, j);
                continue;
            }
            const float start = beta ? c0[i * ldc + j] : 0.0f;
            double want = start, s = fabs(start);
            float chain = start;
            for (size_t k0 = 0; k0 < k; k0 += gk->f32_kc) {
                float part = 0.0f;
                for (size_t p = k0; p < k && p < k0 + gk->f32_kc; p++) {
                    const float x = a[i * lda + p], y = b[j * ldb + p];
                    want += (double)x * y;
                    s += fabs((double)x * y);
                    part = use_fma ? fmaf(x, y, part) : part + x * y;
                }
                chain = (k0 == 0 && !beta) ? part : chain + part;
            }
            ck_assert_msg(fabs((double)got - want) <= 1e-5 * s,
                          "%s rows=%zu cols=%zu k=%zu beta=%d (%zu,%zu): %.9g vs %.9g",
                          gk->f32_gemm_name, rows, cols, k, beta, i, j, got, want);
            ck_assert_msg(got == chain,
                          "%s rows=%zu cols=%zu k=%zu beta=%d (%zu,%zu): %.9g != chain %.9g",
                          gk->f32_gemm_name, rows, cols, k, beta, i, j, got, chain);
        }
    free(a);
    free(b);
    free(c0);
    free(c);
}

START_TEST(test_f32_gemm_every_isa)
{
    stdcpu_test_rng rng = {0xf32f32ull};
    int isas = 0;
    for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        isas++;
        const stdcpu_gemm_kernels *gk = &kt->gemm;
        const size_t MR = gk->f32_mr, NR = gk->f32_nr, KC = gk->f32_kc;
        ck_assert(gk->f32_gemm && gk->f32_gemm_name && MR >= 1 && NR >= 4 && KC >= 2);
        const size_t rs[] = {MR > 1 ? MR - 1 : 1, MR, MR + 1, 1, 37};
        const size_t cs[] = {NR - 1, NR, NR + 1, 1, 3 * NR + 5};
        const size_t ks[] = {1, 3, 17, KC - 1, KC + 1, 700};
        /* caller scratch, deliberately misaligned, and per-call allocation */
        unsigned char *scratch = malloc(stdcpu_f32_gemm_scratch_bytes(gk) + 4);
        const int use_fma = isa != STDCPU_ISA_SCALAR;
        for (size_t ri = 0; ri < 5; ri++)
            for (size_t ci = 0; ci < 5; ci++)
                for (size_t ki = 0; ki < 6; ki++)
                    for (int beta = 0; beta < 2; beta++)
                        check_gemm(gk, use_fma, rs[ri], cs[ci], ks[ki], beta,
                                   (ri + ki + (size_t)beta) % 2 ? scratch + 4 : NULL, &rng);
        free(scratch);
    }
    ck_assert_int_ge(isas, 1);
}
END_TEST

/* One call vs the same GEMM in pieces: rows and columns split at odd
 * places, k at a multiple of f32_kc (k pieces after the first accumulate). */
START_TEST(test_f32_gemm_split_is_bit_identical)
{
    stdcpu_test_rng rng = {777};
    for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        const stdcpu_gemm_kernels *gk = &kt->gemm;
        const size_t MR = gk->f32_mr, NR = gk->f32_nr, KC = gk->f32_kc;
        const size_t rows = 300, cols = 3 * NR + 7, k = 2 * KC + 37;
        const size_t lda = k + 1, ldb = k + 2, ldc = cols + 3;
        float *a = rand_buf(&rng, rows * lda), *b = rand_buf(&rng, cols * ldb);
        float *c0 = rand_buf(&rng, rows * ldc);
        float *whole = malloc(rows * ldc * sizeof(float)), *parts = malloc(rows * ldc * sizeof(float));
        for (int beta = 0; beta < 2; beta++) {
            memcpy(whole, c0, rows * ldc * sizeof(float));
            memcpy(parts, c0, rows * ldc * sizeof(float));
            ck_assert(stdcpu_f32_gemm(gk, rows, cols, k, a, lda, b, ldb, whole, ldc, beta, NULL));
            const size_t rcut[] = {0, 1, MR + 2, 2 * MR + 5, 130, rows};
            const size_t ccut[] = {0, NR - 1, NR + 3, 2 * NR + 1, cols};
            const size_t kcut[] = {0, KC, 2 * KC, k};
            for (size_t r = 0; r + 1 < 6; r++)
                for (size_t q = 0; q + 1 < 5; q++)
                    for (size_t s = 0; s + 1 < 4; s++) {
                        const size_t r0 = rcut[r], c0i = ccut[q], k0 = kcut[s];
                        ck_assert(stdcpu_f32_gemm(gk, rcut[r + 1] - r0, ccut[q + 1] - c0i,
                                                  kcut[s + 1] - k0, a + r0 * lda + k0, lda,
                                                  b + c0i * ldb + k0, ldb, parts + r0 * ldc + c0i,
                                                  ldc, beta || s > 0, NULL));
                    }
            ck_assert_msg(!memcmp(whole, parts, rows * ldc * sizeof(float)),
                          "%s beta=%d: split differs from one call", gk->f32_gemm_name, beta);
        }
        free(a);
        free(b);
        free(c0);
        free(whole);
        free(parts);
    }
}
END_TEST

START_TEST(test_f32_gemm_k0_and_empty)
{
    const stdcpu_gemm_kernels *gk = &stdcpu_kernels_get()->gemm;
    float c[6] = {1, 2, 3, 4, 5, 6};
    const float x = 7;
    ck_assert(stdcpu_f32_gemm(gk, 2, 2, 0, &x, 1, &x, 1, c, 3, 1, NULL));
    ck_assert(c[0] == 1 && c[4] == 5);
    ck_assert(stdcpu_f32_gemm(gk, 2, 2, 0, &x, 1, &x, 1, c, 3, 0, NULL));
    ck_assert(c[0] == 0 && c[1] == 0 && c[2] == 3 && c[3] == 0 && c[4] == 0 && c[5] == 6);
    ck_assert(stdcpu_f32_gemm(gk, 0, 5, 3, &x, 1, &x, 1, c, 3, 0, NULL));
    ck_assert(c[2] == 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sgemm");
    TCase *tc = tcase_create("sgemm");
    tcase_set_timeout(tc, 600); /* emulated aarch64 and sanitizers are slow */
    tcase_add_test(tc, test_f32_gemm_every_isa);
    tcase_add_test(tc, test_f32_gemm_split_is_bit_identical);
    tcase_add_test(tc, test_f32_gemm_k0_and_empty);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
