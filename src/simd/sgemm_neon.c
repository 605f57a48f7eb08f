/* f32 GEMM micro-kernel for AArch64 NEON (also used by the neondot table).
 *
 * f32_gemm_8x12_neon: 8 rows x 12 columns, 24 q accumulators. Per k: two
 * loads of the packed A column (8 rows), three of the packed B row, 24
 * vfmaq_laneq_f32 (the lane picks the row): 29 of the 32 q registers live.
 * One FMA chain per element from 0 in k order, then added to C when
 * accumulating (sgemm.h determinism rule).
 */
#include "simd/sgemm.h"

#include <arm_neon.h>

#define MR 8

void stdcpu_f32_gemm_8x12_neon(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                               int accumulate)
{
    float32x4_t acc[MR][3];
    for (int i = 0; i < MR; i++)
        for (int q = 0; q < 3; q++)
            acc[i][q] = vdupq_n_f32(0.0f);
    for (size_t p = 0; p < kc; p++, a += MR, b += 12) {
        const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
#define STDCPU_F32_ROW(i, av, lane)                                  \
    do {                                                             \
        acc[i][0] = vfmaq_laneq_f32(acc[i][0], b0, av, lane);        \
        acc[i][1] = vfmaq_laneq_f32(acc[i][1], b1, av, lane);        \
        acc[i][2] = vfmaq_laneq_f32(acc[i][2], b2, av, lane);        \
    } while (0)
        STDCPU_F32_ROW(0, a0, 0);
        STDCPU_F32_ROW(1, a0, 1);
        STDCPU_F32_ROW(2, a0, 2);
        STDCPU_F32_ROW(3, a0, 3);
        STDCPU_F32_ROW(4, a1, 0);
        STDCPU_F32_ROW(5, a1, 1);
        STDCPU_F32_ROW(6, a1, 2);
        STDCPU_F32_ROW(7, a1, 3);
#undef STDCPU_F32_ROW
    }
    for (int i = 0; i < MR; i++)
        for (int q = 0; q < 3; q++) {
            float *ci = c + (size_t)i * ldc + 4 * q;
            vst1q_f32(ci, accumulate ? vaddq_f32(vld1q_f32(ci), acc[i][q]) : acc[i][q]);
        }
}
