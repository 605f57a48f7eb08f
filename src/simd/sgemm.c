/* f32 GEMM: the scalar reference micro-kernel and the portable driver
 * (packing, blocking, edge tiles) shared by every ISA. See sgemm.h. */
#include "simd/sgemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simd/gemm.h"

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

/* rows x kc of A -> panels [rows/MR][kc][MR], the last one zero padded. */
static void pack_a(const float *a, size_t lda, size_t rows, size_t kc, size_t mr, float *ap)
{
    for (size_t i0 = 0; i0 < rows; i0 += mr, ap += mr * kc) {
        const size_t m = rows - i0 < mr ? rows - i0 : mr;
        for (size_t i = 0; i < m; i++) {
            const float *src = a + (i0 + i) * lda;
            for (size_t p = 0; p < kc; p++)
                ap[p * mr + i] = src[p];
        }
        for (size_t i = m; i < mr; i++)
            for (size_t p = 0; p < kc; p++)
                ap[p * mr + i] = 0.0f;
    }
}

/* nc (<= NR) rows of B, kc values each -> one panel [kc][NR], zero padded.
 * Eight k at a time so every source row is read in 32-byte runs. */
static void pack_b(const float *b, size_t ldb, size_t nc, size_t kc, size_t nr, float *bp)
{
    size_t p0 = 0;
    for (; p0 + 8 <= kc; p0 += 8) {
        float *dst = bp + p0 * nr;
        for (size_t j = 0; j < nc; j++) {
            const float *src = b + j * ldb + p0;
            for (size_t q = 0; q < 8; q++)
                dst[q * nr + j] = src[q];
        }
    }
    for (size_t j = 0; j < nc; j++)
        for (size_t p = p0; p < kc; p++)
            bp[p * nr + j] = b[j * ldb + p];
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
