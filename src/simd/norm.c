/* Normalisation kernels: the portable scalar reference. */
#include "simd/norm.h"

#include <math.h>

static void f32_channel_sum_scalar(const float *x, size_t npix, size_t C, const float *shift, float *sum)
{
    for (size_t p = 0; p < npix; p++)
        for (size_t c = 0; c < C; c++)
            sum[c] += x[p * C + c] - shift[c];
}

static void f32_channel_sqdev_scalar(const float *x, size_t npix, size_t C, const float *mean, float *sq)
{
    for (size_t p = 0; p < npix; p++)
        for (size_t c = 0; c < C; c++) {
            const float d = x[p * C + c] - mean[c];
            sq[c] += d * d;
        }
}

static void f32_channel_affine_scalar(const float *x, size_t npix, size_t C, const float *mean,
                                  const float *mul, const float *add, int silu, float *y)
{
    for (size_t p = 0; p < npix; p++)
        for (size_t c = 0; c < C; c++) {
            float v = (x[p * C + c] - mean[c]) * mul[c] + add[c];
            if (silu)
                v = v / (1.0f + expf(-v));
            y[p * C + c] = v;
        }
}

static void f32_layer_norm_scalar(const float *x, size_t x_stride, size_t rows, size_t C, float eps,
                              const float *gamma, const float *beta, float *y, size_t y_stride)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * x_stride;
        float *yr = y + r * y_stride;
        const float shift = xr[0];
        float s = 0.0f;
        for (size_t c = 0; c < C; c++)
            s += xr[c] - shift;
        const float mean = shift + s / (float)C;
        float sq = 0.0f;
        for (size_t c = 0; c < C; c++)
            sq += (xr[c] - mean) * (xr[c] - mean);
        const float rstd = 1.0f / sqrtf(sq / (float)C + eps);
        for (size_t c = 0; c < C; c++) {
            float v = (xr[c] - mean) * rstd;
            if (gamma)
                v *= gamma[c];
            if (beta)
                v += beta[c];
            yr[c] = v;
        }
    }
}

void stdcpu_norm_init_scalar(stdcpu_norm_kernels *k)
{
    k->channel_sum = f32_channel_sum_scalar;
    k->channel_sqdev = f32_channel_sqdev_scalar;
    k->channel_affine = f32_channel_affine_scalar;
    k->layer_norm = f32_layer_norm_scalar;
}

int stdcpu_norm_complete(const stdcpu_norm_kernels *k)
{
    return k->channel_sum && k->channel_sqdev && k->channel_affine && k->layer_norm;
}
