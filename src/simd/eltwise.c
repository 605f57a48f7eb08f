#include "simd/eltwise.h"

static void scaffold_f32_scalar(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * 2.0f;
}

void stdcpu_eltwise_init_scalar(stdcpu_eltwise_kernels *k) { k->scaffold_f32 = scaffold_f32_scalar; }

int stdcpu_eltwise_complete(const stdcpu_eltwise_kernels *k) { return k->scaffold_f32 != NULL; }
