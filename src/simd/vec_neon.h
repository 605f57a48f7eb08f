/* The vector vocabulary of the shared kernel templates (*_tmpl.h), AArch64
 * Advanced SIMD: 4 floats per vector. Included only by *_neon.c. */
#ifndef STDCPU_SIMD_VEC_NEON_H
#define STDCPU_SIMD_VEC_NEON_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "simd/eltwise.h"

#define VF_N 4
#define VF_ISA neon
typedef float32x4_t vf;
typedef int32x4_t vi; /* VF_N int32 lanes */

static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline vf vf_loadn(const float *p, size_t n)
{
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, n * sizeof(float));
    return vld1q_f32(t);
}
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
static inline void vf_storen(float *p, vf v, size_t n)
{
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, n * sizeof(float));
}
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_fnma(vf a, vf b, vf c) { return vfmsq_f32(c, a, b); }
static inline vf vf_max(vf a, vf b) { return vmaxq_f32(a, b); }
/* max(a, b), b when a is NaN (IEEE maxNum; vmaxq_f32 would return the NaN) */
static inline vf vf_max_num(vf a, vf b) { return vmaxnmq_f32(a, b); }
static inline vf vf_min(vf a, vf b) { return vminq_f32(a, b); }
static inline vf vf_round(vf a) { return vrndnq_f32(a); }
static inline vf vf_pow2i(vf n)
{
    const int32x4_t e = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(e, 23));
}
/* a * 2^k for integer-valued k; k below -126 acts as -126 (a tiny result) */
static inline vf vf_ldexp(vf a, vf k) { return vmulq_f32(a, vf_pow2i(vmaxq_f32(k, vdupq_n_f32(-126.0f)))); }
static inline vf vf_abs(vf a) { return vabsq_f32(a); }
static inline vf vf_copysign(vf mag, vf s)
{
    return vbslq_f32(vdupq_n_u32(0x80000000u), s, mag);
}
static inline vf vf_select_gt(vf a, vf b, vf x, vf y) { return vbslq_f32(vcgtq_f32(a, b), x, y); }
static inline vf vf_select_eq(vf a, vf b, vf x, vf y) { return vbslq_f32(vceqq_f32(a, b), x, y); }
static inline float vf_hsum(vf v) { return vaddvq_f32(v); }
static inline float vf_hmax(vf v) { return vmaxvq_f32(v); }
static inline vf vf_load_f16(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline void vf_store_f16(uint16_t *p, vf v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v))); }
/* Lanes rounded to the nearest integer (ties to even). */
static inline vi vf_cvt_i32(vf a) { return vcvtnq_s32_f32(a); }
static inline vi vi_zero(void) { return vdupq_n_s32(0); }
static inline vi vi_add(vi a, vi b) { return vaddq_s32(a, b); }
static inline int32_t vi_hsum(vi v) { return vaddvq_s32(v); }
/* VF_N int8 bytes from lanes holding integers in [-127, 127], XOR x. */
static inline void vi_store_i8(int8_t *p, vi v, unsigned char x)
{
    const int16x4_t w = vqmovn_s32(v);
    const int8x8_t b = veor_s8(vqmovn_s16(vcombine_s16(w, w)), vdup_n_s8((int8_t)x));
    const int32_t lanes = vget_lane_s32(vreinterpret_s32_s8(b), 0);
    memcpy(p, &lanes, 4);
}
static inline vf vf_load_bf16(const uint16_t *p)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

#endif
