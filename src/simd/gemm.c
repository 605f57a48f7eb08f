#include "simd/gemm.h"

static void scaffold_f32_scalar(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * 2.0f;
}

void stdcpu_gemm_init_scalar(stdcpu_gemm_kernels *k) { k->scaffold_f32 = scaffold_f32_scalar; }

int stdcpu_gemm_complete(const stdcpu_gemm_kernels *k) { return k->scaffold_f32 != NULL; }
