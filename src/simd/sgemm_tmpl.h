/* The x86 f32 GEMM micro-kernel written once on the vector vocabulary of
 * vec_<isa>.h: SGEMM_MR rows x 2 vectors of columns (NR = 2 VF_N), one
 * accumulator pair per row. Per k: two loads of the packed B row, SGEMM_MR
 * broadcasts of the packed A column (folded into the FMAs' memory operands
 * by the compiler), 2 SGEMM_MR FMAs. One FMA chain per element from 0 in k
 * order, then added to C when accumulating (sgemm.h determinism rule).
 * sgemm_<isa>.c defines SGEMM_MR and SGEMM_NAME (the public symbol), includes
 * its vec header, then this. NEON keeps its own lane-indexed kernel. */
#include "simd/sgemm.h"

void SGEMM_NAME(size_t kc, const float *a, const float *b, float *c, size_t ldc, int accumulate)
{
    vf acc0[SGEMM_MR], acc1[SGEMM_MR];
#pragma GCC unroll 16
    for (int i = 0; i < SGEMM_MR; i++) {
        acc0[i] = vf_zero();
        acc1[i] = vf_zero();
    }
    for (size_t p = 0; p < kc; p++, a += SGEMM_MR, b += 2 * VF_N) {
        const vf b0 = vf_load(b);
        const vf b1 = vf_load(b + VF_N);
#pragma GCC unroll 16
        for (int i = 0; i < SGEMM_MR; i++) {
            const vf av = vf_set1(a[i]);
            acc0[i] = vf_fma(av, b0, acc0[i]);
            acc1[i] = vf_fma(av, b1, acc1[i]);
        }
    }
    if (accumulate) {
#pragma GCC unroll 16
        for (int i = 0; i < SGEMM_MR; i++) {
            acc0[i] = vf_add(vf_load(c + (size_t)i * ldc), acc0[i]);
            acc1[i] = vf_add(vf_load(c + (size_t)i * ldc + VF_N), acc1[i]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < SGEMM_MR; i++) {
        vf_store(c + (size_t)i * ldc, acc0[i]);
        vf_store(c + (size_t)i * ldc + VF_N, acc1[i]);
    }
}
