#include "simd/attn.h"

static void scaffold_f32_scalar(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * 2.0f;
}

void stdcpu_attn_init_scalar(stdcpu_attn_kernels *k) { k->scaffold_f32 = scaffold_f32_scalar; }

int stdcpu_attn_complete(const stdcpu_attn_kernels *k) { return k->scaffold_f32 != NULL; }
