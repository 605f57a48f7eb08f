/* The vector vocabulary of the shared kernel templates (*_tmpl.h),
 * AVX-512 F/BW/VL/DQ: 16 floats per vector, masked tails. Included only by
 * *_avx512vnni.c. */
#ifndef STDCPU_SIMD_VEC_AVX512_H
#define STDCPU_SIMD_VEC_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "simd/eltwise.h"

#define VF_N 16
#define VF_ISA avx512vnni
typedef __m512 vf;
typedef __m512i vi; /* VF_N int32 lanes */

static inline __mmask16 vf_tail_mask(size_t n) { return (__mmask16)((1u << n) - 1u); }
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline vf vf_loadn(const float *p, size_t n) { return _mm512_maskz_loadu_ps(vf_tail_mask(n), p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline void vf_storen(float *p, vf v, size_t n) { _mm512_mask_storeu_ps(p, vf_tail_mask(n), v); }
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
/* max(a, b), b when a is NaN (maxps returns its second operand then) */
static inline vf vf_max_num(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf vf_round(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vf vf_pow2i(vf n)
{
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}
/* a * 2^k for integer-valued k: one scalef, any k (tiny results flush to 0) */
static inline vf vf_ldexp(vf a, vf k) { return _mm512_scalef_ps(a, k); }
static inline vf vf_abs(vf a) { return _mm512_abs_ps(a); }
static inline vf vf_copysign(vf mag, vf s)
{
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    /* ternary logic, per bit: sign ? s : mag (imm 0xD8 = C ? B : A) */
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(mag), _mm512_castps_si512(s),
                                                         sign, 0xD8));
}
static inline vf vf_select_gt(vf a, vf b, vf x, vf y)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), y, x);
}
static inline vf vf_select_eq(vf a, vf b, vf x, vf y)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), y, x);
}
static inline float vf_hsum(vf v) { return _mm512_reduce_add_ps(v); }
static inline float vf_hmax(vf v) { return _mm512_reduce_max_ps(v); }
static inline vf vf_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline void vf_store_f16(uint16_t *p, vf v)
{
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
/* Lanes rounded to the nearest integer (ties to even). */
static inline vi vf_cvt_i32(vf a) { return _mm512_cvtps_epi32(a); }
static inline vi vi_zero(void) { return _mm512_setzero_si512(); }
static inline vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline int32_t vi_hsum(vi v) { return _mm512_reduce_add_epi32(v); }
/* VF_N int8 bytes from lanes holding integers in [-127, 127], XOR x. */
static inline void vi_store_i8(int8_t *p, vi v, unsigned char x)
{
    _mm_storeu_si128((__m128i *)p, _mm_xor_si128(_mm512_cvtepi32_epi8(v), _mm_set1_epi8((char)x)));
}
static inline vf vf_load_bf16(const uint16_t *p)
{
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

#endif
