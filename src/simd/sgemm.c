/* f32 GEMM: the scalar reference micro-kernel and the portable driver
 * (packing, blocking, edge tiles) shared by every ISA. See sgemm.h. */
#include "simd/sgemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simd/gemm.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* Rows per packed A block: about 256 (the row blocks ops_gemm.c hands us),
 * rounded up to whole MR panels; with kc <= 512 the block stays in L2. */
#define F32_MC_TARGET 256

/* Reference: 4 x 8, a multiply then an add per step (no FMA: the same
 * result on every architecture; the build has -ffp-contract=off). */
void stdcpu_f32_gemm_4x8_scalar(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                                int accumulate)
{
    float acc[4][8] = {{0}};
    for (size_t p = 0; p < kc; p++, a += 4, b += 8)
        for (size_t i = 0; i < 4; i++)
            for (size_t j = 0; j < 8; j++)
                acc[i][j] = acc[i][j] + a[i] * b[j];
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 8; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

static size_t f32_mc(const stdcpu_gemm_kernels *gk)
{
    return (F32_MC_TARGET + gk->f32_mr - 1) / gk->f32_mr * gk->f32_mr;
}

size_t stdcpu_f32_gemm_scratch_bytes(const stdcpu_gemm_kernels *gk)
{
    /* A block [mc/MR][kc][MR], one B panel [kc][NR], 64 bytes of alignment slack */
    return (f32_mc(gk) * gk->f32_kc + (size_t)gk->f32_kc * gk->f32_nr) * sizeof(float) + 128;
}

/* dst[p * ld + i] = src[i * lds + p] for i < n rows, p < kc: n rows of a
 * row-major block become the columns of a [kc][ld] panel. 4 x 4 blocks go
 * through SSE / NEON registers (baseline on x86-64 and AArch64: no ISA
 * flags needed here); the rest is plain copies. Pure data movement. */
static void pack_transpose(const float *src, size_t lds, size_t n, size_t kc, size_t ld, float *dst)
{
    size_t i0 = 0;
#if defined(__SSE2__) || defined(__ARM_NEON)
    for (; i0 + 4 <= n; i0 += 4) {
        const float *s0 = src + i0 * lds, *s1 = s0 + lds, *s2 = s1 + lds, *s3 = s2 + lds;
        float *d = dst + i0;
        size_t p = 0;
        for (; p + 4 <= kc; p += 4, d += 4 * ld) {
#if defined(__SSE2__)
            __m128 r0 = _mm_loadu_ps(s0 + p), r1 = _mm_loadu_ps(s1 + p);
            __m128 r2 = _mm_loadu_ps(s2 + p), r3 = _mm_loadu_ps(s3 + p);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(d, r0);
            _mm_storeu_ps(d + ld, r1);
            _mm_storeu_ps(d + 2 * ld, r2);
            _mm_storeu_ps(d + 3 * ld, r3);
#else
            const float32x4x2_t t01 = vtrnq_f32(vld1q_f32(s0 + p), vld1q_f32(s1 + p));
            const float32x4x2_t t23 = vtrnq_f32(vld1q_f32(s2 + p), vld1q_f32(s3 + p));
            vst1q_f32(d, vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0])));
            vst1q_f32(d + ld, vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1])));
            vst1q_f32(d + 2 * ld, vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0])));
            vst1q_f32(d + 3 * ld, vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1])));
#endif
        }
        for (; p < kc; p++, d += ld) {
            d[0] = s0[p];
            d[1] = s1[p];
            d[2] = s2[p];
            d[3] = s3[p];
        }
    }
#endif
    for (; i0 < n; i0++)
        for (size_t p = 0; p < kc; p++)
            dst[p * ld + i0] = src[i0 * lds + p];
}

/* rows x kc of A -> panels [rows/MR][kc][MR], the last one zero padded. */
static void pack_a(const float *a, size_t lda, size_t rows, size_t kc, size_t mr, float *ap)
{
    for (size_t i0 = 0; i0 < rows; i0 += mr, ap += mr * kc) {
        const size_t m = rows - i0 < mr ? rows - i0 : mr;
        pack_transpose(a + i0 * lda, lda, m, kc, mr, ap);
        if (m < mr)
            for (size_t p = 0; p < kc; p++)
                memset(ap + p * mr + m, 0, (mr - m) * sizeof(float));
    }
}

/* nc (<= NR) rows of B, kc values each -> one panel [kc][NR], zero padded. */
static void pack_b(const float *b, size_t ldb, size_t nc, size_t kc, size_t nr, float *bp)
{
    pack_transpose(b, ldb, nc, kc, nr, bp);
    if (nc < nr)
        for (size_t p = 0; p < kc; p++)
            memset(bp + p * nr + nc, 0, (nr - nc) * sizeof(float));
}

int stdcpu_f32_gemm(const stdcpu_gemm_kernels *gk, size_t rows, size_t cols, size_t k,
                    const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                    int accumulate, void *scratch)
{
    if (rows == 0 || cols == 0)
        return 1;
    if (k == 0) {
        if (!accumulate)
            for (size_t i = 0; i < rows; i++)
                memset(c + i * ldc, 0, cols * sizeof(float));
        return 1;
    }
    void *owned = NULL;
    if (!scratch) {
        scratch = owned = malloc(stdcpu_f32_gemm_scratch_bytes(gk));
        if (!owned)
            return 0;
    }
    const size_t MR = gk->f32_mr, NR = gk->f32_nr, KC = gk->f32_kc, mc = f32_mc(gk);
    float *ap = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *bp = ap + (mc * KC + 15) / 16 * 16; /* 64-byte aligned */
    _Alignas(64) float tile[STDCPU_F32_MR_MAX * STDCPU_F32_NR_MAX];
    for (size_t i0 = 0; i0 < rows; i0 += mc) {
        const size_t m = rows - i0 < mc ? rows - i0 : mc;
        for (size_t k0 = 0; k0 < k; k0 += KC) {
            const size_t kc = k - k0 < KC ? k - k0 : KC;
            const int acc = accumulate || k0 > 0;
            pack_a(a + i0 * lda + k0, lda, m, kc, MR, ap);
            for (size_t j0 = 0; j0 < cols; j0 += NR) {
                const size_t nc = cols - j0 < NR ? cols - j0 : NR;
                pack_b(b + j0 * ldb + k0, ldb, nc, kc, NR, bp);
                for (size_t ir = 0; ir < m; ir += MR) {
                    const size_t mr = m - ir < MR ? m - ir : MR;
                    float *ct = c + (i0 + ir) * ldc + j0;
                    if (mr == MR && nc == NR) {
                        gk->f32_gemm(kc, ap + ir * kc, bp, ct, ldc, acc);
                        continue;
                    }
                    /* Edge tile: the full-tile kernel on a copy (exact). */
                    if (acc) {
                        memset(tile, 0, MR * NR * sizeof(float));
                        for (size_t i = 0; i < mr; i++)
                            memcpy(tile + i * NR, ct + i * ldc, nc * sizeof(float));
                    }
                    gk->f32_gemm(kc, ap + ir * kc, bp, tile, NR, acc);
                    for (size_t i = 0; i < mr; i++)
                        memcpy(ct + i * ldc, tile + i * NR, nc * sizeof(float));
                }
            }
        }
    }
    free(owned);
    return 1;
}
