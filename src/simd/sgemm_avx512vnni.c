/* f32 GEMM micro-kernel for AVX-512F (built in the AVX-512 VNNI library).
 *
 * f32_gemm_14x32_avx512: 14 rows x 32 columns, 28 zmm accumulators. Per k:
 * two aligned 16-float loads of the packed B row, 14 broadcasts of the
 * packed A column (folded into vfmadd231ps {1to16} memory operands), 28
 * FMAs: 30 of the 32 zmm registers live, 16 loads per 28 FMAs.
 * One FMA chain per element from 0 in k order, then added to C when
 * accumulating (sgemm.h determinism rule).
 */
#include "simd/sgemm.h"

#include <immintrin.h>

#define MR 14

void stdcpu_f32_gemm_14x32_avx512(size_t kc, const float *a, const float *b, float *c,
                                  size_t ldc, int accumulate)
{
    __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
    }
    for (size_t p = 0; p < kc; p++, a += MR, b += 32) {
        const __m512 b0 = _mm512_load_ps(b);
        const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512 av = _mm512_set1_ps(a[i]);
            acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
        }
    }
    if (accumulate) {
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            acc0[i] = _mm512_add_ps(_mm512_loadu_ps(c + (size_t)i * ldc), acc0[i]);
            acc1[i] = _mm512_add_ps(_mm512_loadu_ps(c + (size_t)i * ldc + 16), acc1[i]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(c + (size_t)i * ldc, acc0[i]);
        _mm512_storeu_ps(c + (size_t)i * ldc + 16, acc1[i]);
    }
}
