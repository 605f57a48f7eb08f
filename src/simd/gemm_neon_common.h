/* Shared by the NEON and NEON dotprod gemm kernels: the f32 epilogue of one
 * 4-channel quad and the quantisation helpers (AArch64 only). */
#ifndef STDCPU_SIMD_GEMM_NEON_COMMON_H
#define STDCPU_SIMD_GEMM_NEON_COMMON_H

#include <arm_neon.h>
#include <string.h>

#include "simd/gemm.h"

static inline int32_t gemm_neon_load4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Writes columns j0..j0+cols-1 (cols <= 4) of row i from the int32 quad. */
static inline void gemm_neon_store_quad(int32x4_t acc, size_t i, size_t j0, size_t cols, float *c,
                                        size_t c_stride, const stdcpu_q8_epilogue *ep)
{
    float sw[4] = {0, 0, 0, 0}, bias[4] = {0, 0, 0, 0}, res[4] = {0, 0, 0, 0}, out[4];
    const int full = cols == 4;
    if (full) {
        vst1q_f32(sw, vld1q_f32(ep->w_scale + j0));
        if (ep->bias)
            vst1q_f32(bias, vld1q_f32(ep->bias + j0));
        if (ep->residual)
            vst1q_f32(res, vld1q_f32(ep->residual + i * ep->residual_stride + j0));
    } else {
        for (size_t j = 0; j < cols; j++) {
            sw[j] = ep->w_scale[j0 + j];
            bias[j] = ep->bias ? ep->bias[j0 + j] : 0.0f;
            res[j] = ep->residual ? ep->residual[i * ep->residual_stride + j0 + j] : 0.0f;
        }
    }
    const float32x4_t s = vmulq_n_f32(vld1q_f32(sw), ep->a_scale[i * ep->a_scale_stride]);
    float32x4_t v = vfmaq_f32(vld1q_f32(bias), vcvtq_f32_s32(acc), s);
    v = vaddq_f32(v, vld1q_f32(res));
    if (full) {
        vst1q_f32(c + i * c_stride + j0, v);
    } else {
        vst1q_f32(out, v);
        for (size_t j = 0; j < cols; j++)
            c[i * c_stride + j0 + j] = out[j];
    }
}

static inline size_t gemm_neon_quad_cols(size_t nc, size_t j0)
{
    return nc > j0 ? (nc - j0 < 4 ? nc - j0 : 4) : 0;
}

/* vmaxnm ignores NaN like the scalar reference. */
static inline float gemm_neon_absmax(const float *x, size_t n)
{
    float32x4_t m0 = vdupq_n_f32(0.0f), m1 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        m0 = vmaxnmq_f32(m0, vabsq_f32(vld1q_f32(x + i)));
        m1 = vmaxnmq_f32(m1, vabsq_f32(vld1q_f32(x + i + 4)));
    }
    float m = vmaxnmvq_f32(vmaxnmq_f32(m0, m1));
    for (; i < n; i++) {
        const float v = x[i] < 0 ? -x[i] : x[i];
        m = v > m ? v : m;
    }
    return m;
}

/* vcvtnq rounds to nearest even and maps NaN to 0, like the scalar. */
static inline void gemm_neon_quantize(const float *x, size_t n, size_t n_padded, float inv_scale,
                                      unsigned char xor_byte, int8_t *q)
{
    const float32x4_t hi = vdupq_n_f32(127.0f), lo = vdupq_n_f32(-127.0f);
    const int8x8_t xb = vdup_n_s8((int8_t)xor_byte);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t v0 = vminq_f32(vmaxq_f32(vmulq_n_f32(vld1q_f32(x + i), inv_scale), lo), hi);
        const float32x4_t v1 = vminq_f32(vmaxq_f32(vmulq_n_f32(vld1q_f32(x + i + 4), inv_scale), lo), hi);
        const int16x8_t h = vcombine_s16(vmovn_s32(vcvtnq_s32_f32(v0)), vmovn_s32(vcvtnq_s32_f32(v1)));
        vst1_s8(q + i, veor_s8(vmovn_s16(h), xb));
    }
    for (; i < n; i++) {
        float v = x[i] * inv_scale;
        v = v > 127.0f ? 127.0f : v;
        v = v < -127.0f ? -127.0f : v;
        const int32_t qi = vgetq_lane_s32(vcvtnq_s32_f32(vdupq_n_f32(v)), 0);
        q[i] = (int8_t)((unsigned char)(int8_t)qi ^ xor_byte);
    }
    if (n_padded > n)
        memset(q + n, xor_byte, n_padded - n);
}

#endif
