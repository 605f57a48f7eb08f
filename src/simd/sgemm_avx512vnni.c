/* f32 GEMM micro-kernel for AVX-512F (built in the AVX-512 VNNI library): the
 * shared template (sgemm_tmpl.h).
 *
 * f32_gemm_14x32_avx512: 14 rows x 32 columns, 28 zmm accumulators. Per k:
 * two 16-float loads of the packed B row, 14 broadcasts of the packed A
 * column (vfmadd231ps {1to16} memory operands), 28 FMAs: 30 of the 32 zmm
 * registers live, 16 loads per 28 FMAs. */
#include "simd/vec_avx512.h"

#define SGEMM_MR 14
#define SGEMM_NAME stdcpu_f32_gemm_14x32_avx512
#include "simd/sgemm_tmpl.h"
