/* f32 GEMM micro-kernel for AVX2 + FMA: the shared template (sgemm_tmpl.h).
 *
 * f32_gemm_6x16_avx2: 6 rows x 16 columns, 12 ymm accumulators, 2 loads and
 * 6 broadcasts per 12 FMAs (15 of the 16 ymm registers live). */
#include "simd/vec_avx2.h"

#define SGEMM_MR 6
#define SGEMM_NAME stdcpu_f32_gemm_6x16_avx2
#include "simd/sgemm_tmpl.h"
