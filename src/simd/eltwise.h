/* Element-wise kernels over flat f32 arrays (activations, gated units,
 * sums, softmax rows, half/bfloat conversions). y may equal x for the
 * unary ops. The threaded entry points live in core/ops_nn.h.
 *
 * Accuracy of the SIMD versions against the scalar (libm) reference, as
 * tests/test_eltwise.c checks it on every ISA: exp-based ops (silu,
 * quick_gelu, softmax) within 2e-6 relative, gelu_tanh 3e-6; the exact
 * gelu / geglu carry the erf approximation's <= 4e-7 absolute, i.e.
 * |error| <= 2e-6 |y| + 3e-7 max(1, |x|) (see simd/vec_math.h). f16
 * conversions are exact (round to nearest even), bit-identical to scalar. */
#ifndef STDCPU_SIMD_ELTWISE_H
#define STDCPU_SIMD_ELTWISE_H

#include <stddef.h>
#include <stdint.h>

typedef void (*stdcpu_unary_f32_fn)(float *y, const float *x, size_t n);

typedef struct stdcpu_eltwise_kernels {
    stdcpu_unary_f32_fn silu;       /* x * sigmoid(x) */
    stdcpu_unary_f32_fn gelu;       /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    stdcpu_unary_f32_fn gelu_tanh;  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    stdcpu_unary_f32_fn quick_gelu; /* x * sigmoid(1.702 x) */
    /* GEGLU: x is [rows, 2F] (hidden = first F, gate = last F, diffusers'
     * `hidden, gate = chunk(2)`), y is [rows, F] = hidden * gelu(gate). */
    void (*geglu)(float *y, const float *x, size_t rows, size_t F);
    void (*add)(float *y, const float *a, const float *b, size_t n);        /* y = a + b */
    void (*mul)(float *y, const float *a, const float *b, size_t n);        /* y = a * b */
    void (*axpby)(float *y, float a, const float *x, float b, size_t n);   /* y = a x + b y */
    /* y[r, c] = x[r, c] + bias[c] for rows x C (y may equal x). */
    void (*add_bias)(float *y, const float *x, const float *bias, size_t rows, size_t C);
    /* Softmax of one row of n in f32; -inf entries get 0; an all -inf row
     * gives all zeros (no NaN). y may equal x. */
    void (*softmax)(float *y, const float *x, size_t n);
    void (*f32_to_f16)(uint16_t *y, const float *x, size_t n);  /* round to nearest even */
    void (*f16_to_f32)(float *y, const uint16_t *x, size_t n);
    void (*bf16_to_f32)(float *y, const uint16_t *x, size_t n);
} stdcpu_eltwise_kernels;

/* Exact scalar conversions (subnormals, inf, NaN), shared by every ISA's tails. */
uint16_t stdcpu_f32_to_f16(float f);
float stdcpu_f16_to_f32(uint16_t h);

void stdcpu_eltwise_init_scalar(stdcpu_eltwise_kernels *k);
void stdcpu_eltwise_init_avx2(stdcpu_eltwise_kernels *k);
void stdcpu_eltwise_init_avx512vnni(stdcpu_eltwise_kernels *k);
void stdcpu_eltwise_init_neon(stdcpu_eltwise_kernels *k);
void stdcpu_eltwise_init_neondot(stdcpu_eltwise_kernels *k);
int stdcpu_eltwise_complete(const stdcpu_eltwise_kernels *k);

#endif
