/* Normalisation kernels: the building blocks of GroupNorm on NHWC
 * activations (per-channel statistics over pixels, then a per-channel
 * affine map) and a row-wise LayerNorm. The threaded entry points
 * stdcpu_group_norm() / stdcpu_layer_norm() live in core/ops_nn.h.
 *
 * GroupNorm and LayerNorm are two-pass (shifted mean, then mean of squared
 * deviations), so a large common offset (values 1000 + N(0,1)) costs no
 * precision. */
#ifndef STDCPU_SIMD_NORM_H
#define STDCPU_SIMD_NORM_H

#include <stddef.h>

typedef struct stdcpu_norm_kernels {
    /* sum[c] += sum_p (x[p*C + c] - shift[c]) for p < npix (x: [npix, C]).
     * The shift (a sample of the data) keeps f32 sums exact-ish when all
     * values share a large offset. */
    void (*channel_sum)(const float *x, size_t npix, size_t C, const float *shift, float *sum);
    /* sq[c] += sum_p (x[p*C + c] - mean[c])^2. */
    void (*channel_sqdev)(const float *x, size_t npix, size_t C, const float *mean, float *sq);
    /* y[p*C+c] = (x[p*C+c] - mean[c]) * mul[c] + add[c], then silu(y) if silu.
     * y may equal x. */
    void (*channel_affine)(const float *x, size_t npix, size_t C, const float *mean,
                           const float *mul, const float *add, int silu, float *y);
    /* LayerNorm of `rows` rows of C (x rows at x + r*x_stride, y rows at
     * y + r*y_stride; y may equal x): biased variance, two-pass (the first pass shifted by x[0]), then
     * *gamma + beta (either may be NULL = 1 / 0). */
    void (*layer_norm)(const float *x, size_t x_stride, size_t rows, size_t C, float eps,
                       const float *gamma, const float *beta, float *y, size_t y_stride);
} stdcpu_norm_kernels;

void stdcpu_norm_init_scalar(stdcpu_norm_kernels *k);
void stdcpu_norm_init_avx2(stdcpu_norm_kernels *k);
void stdcpu_norm_init_avx512vnni(stdcpu_norm_kernels *k);
void stdcpu_norm_init_neon(stdcpu_norm_kernels *k);
void stdcpu_norm_init_neondot(stdcpu_norm_kernels *k);
int stdcpu_norm_complete(const stdcpu_norm_kernels *k);

#endif
