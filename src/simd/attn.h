/* attn kernels (placeholder interface: the kernels issue fills this in). */
#ifndef STDCPU_SIMD_ATTN_H
#define STDCPU_SIMD_ATTN_H

#include <stddef.h>

typedef struct stdcpu_attn_kernels {
    /* y[i] = x[i] * 2 (scaffolding until the real kernels land) */
    void (*scaffold_f32)(float *y, const float *x, size_t n);
} stdcpu_attn_kernels;

void stdcpu_attn_init_scalar(stdcpu_attn_kernels *k);
void stdcpu_attn_init_avx2(stdcpu_attn_kernels *k);
void stdcpu_attn_init_avx512vnni(stdcpu_attn_kernels *k);
void stdcpu_attn_init_neon(stdcpu_attn_kernels *k);
void stdcpu_attn_init_neondot(stdcpu_attn_kernels *k);
int stdcpu_attn_complete(const stdcpu_attn_kernels *k);

#endif
