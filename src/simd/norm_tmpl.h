/* Normalisation kernels written once on the vector vocabulary of
 * vec_<isa>.h; each norm_<isa>.c includes its vec header, then this.
 * Channels are the vector axis (NHWC: a pixel's C channels are contiguous);
 * the per-channel sums stay in the caller's [C] arrays (L1-resident). */
#include "simd/vec_math.h"
#include "simd/vec_tmpl.h"

static void VF_FN(f32_channel_sum)(const float *x, size_t npix, size_t C, const float *shift, float *sum)
{
    for (size_t p = 0; p < npix; p++) {
        const float *xp = x + p * C;
        size_t c = 0;
        for (; c + VF_N <= C; c += VF_N)
            vf_store(sum + c, vf_add(vf_load(sum + c), vf_sub(vf_load(xp + c), vf_load(shift + c))));
        if (c < C)
            vf_storen(sum + c, vf_add(vf_loadn(sum + c, C - c), vf_sub(vf_loadn(xp + c, C - c),
                                                                       vf_loadn(shift + c, C - c))),
                      C - c);
    }
}

static void VF_FN(f32_channel_sqdev)(const float *x, size_t npix, size_t C, const float *mean, float *sq)
{
    for (size_t p = 0; p < npix; p++) {
        const float *xp = x + p * C;
        size_t c = 0;
        for (; c + VF_N <= C; c += VF_N) {
            const vf dv = vf_sub(vf_load(xp + c), vf_load(mean + c));
            vf_store(sq + c, vf_fma(dv, dv, vf_load(sq + c)));
        }
        if (c < C) {
            const vf dv = vf_sub(vf_loadn(xp + c, C - c), vf_loadn(mean + c, C - c));
            vf_storen(sq + c, vf_fma(dv, dv, vf_loadn(sq + c, C - c)), C - c);
        }
    }
}

static void VF_FN(f32_channel_affine)(const float *x, size_t npix, size_t C, const float *mean,
                                  const float *mul, const float *add, int silu, float *y)
{
    for (size_t p = 0; p < npix; p++) {
        const float *xp = x + p * C;
        float *yp = y + p * C;
        size_t c = 0;
        for (; c + VF_N <= C; c += VF_N) {
            vf v = vf_fma(vf_sub(vf_load(xp + c), vf_load(mean + c)), vf_load(mul + c), vf_load(add + c));
            if (silu)
                v = vf_mul(v, vf_sigmoid(v));
            vf_store(yp + c, v);
        }
        if (c < C) {
            const size_t r = C - c;
            vf v = vf_fma(vf_sub(vf_loadn(xp + c, r), vf_loadn(mean + c, r)), vf_loadn(mul + c, r),
                          vf_loadn(add + c, r));
            if (silu)
                v = vf_mul(v, vf_sigmoid(v));
            vf_storen(yp + c, v, r);
        }
    }
}

static void VF_FN(f32_layer_norm)(const float *x, size_t x_stride, size_t rows, size_t C, float eps,
                              const float *gamma, const float *beta, float *y, size_t y_stride)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * x_stride;
        float *yr = y + r * y_stride;
        const float shift = xr[0];
        const vf vshift = vf_set1(shift);
        vf vs = vf_zero();
        size_t c = 0;
        for (; c + VF_N <= C; c += VF_N)
            vs = vf_add(vs, vf_sub(vf_load(xr + c), vshift));
        float s = vf_hsum(vs);
        for (; c < C; c++)
            s += xr[c] - shift;
        const float mean = shift + s / (float)C;
        const vf vmean = vf_set1(mean);
        vf vq = vf_zero();
        for (c = 0; c + VF_N <= C; c += VF_N) {
            const vf dv = vf_sub(vf_load(xr + c), vmean);
            vq = vf_fma(dv, dv, vq);
        }
        float sq = vf_hsum(vq);
        for (; c < C; c++)
            sq += (xr[c] - mean) * (xr[c] - mean);
        const vf rstd = vf_set1(1.0f / sqrtf(sq / (float)C + eps));
        for (c = 0; c < C; c += VF_N) {
            const size_t n = C - c < VF_N ? C - c : VF_N;
            vf v = vf_mul(vf_sub(n == VF_N ? vf_load(xr + c) : vf_loadn(xr + c, n), vmean), rstd);
            if (gamma)
                v = vf_mul(v, n == VF_N ? vf_load(gamma + c) : vf_loadn(gamma + c, n));
            if (beta)
                v = vf_add(v, n == VF_N ? vf_load(beta + c) : vf_loadn(beta + c, n));
            if (n == VF_N)
                vf_store(yr + c, v);
            else
                vf_storen(yr + c, v, n);
        }
    }
}

static void VF_FN(norm_fill)(stdcpu_norm_kernels *k)
{
    k->channel_sum = VF_FN(f32_channel_sum);
    k->channel_sqdev = VF_FN(f32_channel_sqdev);
    k->channel_affine = VF_FN(f32_channel_affine);
    k->layer_norm = VF_FN(f32_layer_norm);
}
