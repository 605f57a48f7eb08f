/* f32 GEMM micro-kernel for AVX2 + FMA.
 *
 * f32_gemm_6x16_avx2: 6 rows x 16 columns, 12 ymm accumulators. Per k: two
 * aligned 8-float loads of the packed B row, 6 broadcasts of the packed A
 * column, 12 FMAs (15 of the 16 ymm registers live).
 * One FMA chain per element from 0 in k order, then added to C when
 * accumulating (sgemm.h determinism rule).
 */
#include "simd/sgemm.h"

#include <immintrin.h>

#define MR 6

void stdcpu_f32_gemm_6x16_avx2(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                               int accumulate)
{
    __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm256_setzero_ps();
        acc1[i] = _mm256_setzero_ps();
    }
    for (size_t p = 0; p < kc; p++, a += MR, b += 16) {
        const __m256 b0 = _mm256_load_ps(b);
        const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 av = _mm256_broadcast_ss(a + i);
            acc0[i] = _mm256_fmadd_ps(av, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(av, b1, acc1[i]);
        }
    }
    if (accumulate) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            acc0[i] = _mm256_add_ps(_mm256_loadu_ps(c + (size_t)i * ldc), acc0[i]);
            acc1[i] = _mm256_add_ps(_mm256_loadu_ps(c + (size_t)i * ldc + 8), acc1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(c + (size_t)i * ldc, acc0[i]);
        _mm256_storeu_ps(c + (size_t)i * ldc + 8, acc1[i]);
    }
}
