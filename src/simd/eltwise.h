/* eltwise kernels (placeholder interface: the kernels issue fills this in). */
#ifndef STDCPU_SIMD_ELTWISE_H
#define STDCPU_SIMD_ELTWISE_H

#include <stddef.h>

typedef struct stdcpu_eltwise_kernels {
    /* y[i] = x[i] * 2 (scaffolding until the real kernels land) */
    void (*scaffold_f32)(float *y, const float *x, size_t n);
} stdcpu_eltwise_kernels;

void stdcpu_eltwise_init_scalar(stdcpu_eltwise_kernels *k);
void stdcpu_eltwise_init_avx2(stdcpu_eltwise_kernels *k);
void stdcpu_eltwise_init_avx512vnni(stdcpu_eltwise_kernels *k);
void stdcpu_eltwise_init_neon(stdcpu_eltwise_kernels *k);
void stdcpu_eltwise_init_neondot(stdcpu_eltwise_kernels *k);
int stdcpu_eltwise_complete(const stdcpu_eltwise_kernels *k);

#endif
