/* gemm kernels (placeholder interface: the kernels issue fills this in). */
#ifndef STDCPU_SIMD_GEMM_H
#define STDCPU_SIMD_GEMM_H

#include <stddef.h>

typedef struct stdcpu_gemm_kernels {
    /* y[i] = x[i] * 2 (scaffolding until the real kernels land) */
    void (*scaffold_f32)(float *y, const float *x, size_t n);
} stdcpu_gemm_kernels;

void stdcpu_gemm_init_scalar(stdcpu_gemm_kernels *k);
void stdcpu_gemm_init_avx2(stdcpu_gemm_kernels *k);
void stdcpu_gemm_init_avx512vnni(stdcpu_gemm_kernels *k);
void stdcpu_gemm_init_neon(stdcpu_gemm_kernels *k);
void stdcpu_gemm_init_neondot(stdcpu_gemm_kernels *k);
int stdcpu_gemm_complete(const stdcpu_gemm_kernels *k);

#endif
