/* norm kernels (placeholder interface: the kernels issue fills this in). */
#ifndef STDCPU_SIMD_NORM_H
#define STDCPU_SIMD_NORM_H

#include <stddef.h>

typedef struct stdcpu_norm_kernels {
    /* y[i] = x[i] * 2 (scaffolding until the real kernels land) */
    void (*scaffold_f32)(float *y, const float *x, size_t n);
} stdcpu_norm_kernels;

void stdcpu_norm_init_scalar(stdcpu_norm_kernels *k);
void stdcpu_norm_init_avx2(stdcpu_norm_kernels *k);
void stdcpu_norm_init_avx512vnni(stdcpu_norm_kernels *k);
void stdcpu_norm_init_neon(stdcpu_norm_kernels *k);
void stdcpu_norm_init_neondot(stdcpu_norm_kernels *k);
int stdcpu_norm_complete(const stdcpu_norm_kernels *k);

#endif
