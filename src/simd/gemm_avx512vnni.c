/* gemm kernels for AVX-512 VNNI (Ice Lake+, Zen 4).
 *
 * q8_igemm_8x32c4_avx512vnni: 8 rows x 2 panels of 16 channels, 16 zmm
 * accumulators. Per 4-byte K group: 2 weight loads (one 64-byte panel row
 * each), 8 broadcasts of a row's 4 activation bytes, 16 vpdpbusd. vpdpbusd
 * multiplies unsigned by signed bytes, so activations arrive shifted to u8
 * (q + 128, the table's q8_a_xor = 0x80) and the accumulators start at
 * -128 * column sum: exact, no saturation (4 * 255 * 127 per lane step).
 */
#include "simd/gemm.h"

#include <immintrin.h>
#include <string.h>

#include "simd/vec_avx512.h"
#include "simd/vec_math.h"
#include "simd/gemm_act_tmpl.h"

#define MR 8

static inline int32_t load4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline __attribute__((always_inline)) void
igemm_8xnb(size_t mr, size_t nc, size_t kc, size_t ks, const int8_t *const *a, const int8_t *w,
           const int32_t *wsum, float *c, size_t c_stride, const stdcpu_q8_epilogue *ep, const int nb)
{
    /* The accumulators start at -128 * column sum (the u8 shift's
     * compensation), so the epilogue has one operation less per register:
     * it weighs when K is short (attention's Q.K^T: 10 steps at d = 40). */
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xffff : (1u << nc) - 1u);
    const __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xffff : nc > 16 ? (1u << (nc - 16)) - 1u : 0u);
    const __m512i z = _mm512_setzero_si512();
    const __m512i init0 = _mm512_sub_epi32(z, _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m0, wsum), 7));
    const __m512i init1 =
        nb == 2 ? _mm512_sub_epi32(z, _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m1, wsum + 16), 7)) : z;
    __m512i acc0[MR], acc1[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        acc0[i] = init0;
        acc1[i] = init1;
    }
    const size_t panel_stride = ks * kc * 16;
    for (size_t t = 0; t < ks; t++) {
        const int8_t *ap[MR];
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)
            ap[i] = a[t * mr + ((size_t)i < mr ? (size_t)i : mr - 1)];
        const int8_t *w0 = w + t * kc * 16;
        for (size_t k = 0; k < kc; k += 4) {
            const __m512i b0 = _mm512_load_si512((const void *)(w0 + k * 16));
            const __m512i b1 = nb == 2 ? _mm512_load_si512((const void *)(w0 + panel_stride + k * 16))
                                       : _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) {
                const __m512i av = _mm512_set1_epi32(load4(ap[i] + k));
                acc0[i] = _mm512_dpbusd_epi32(acc0[i], av, b0);
                if (nb == 2)
                    acc1[i] = _mm512_dpbusd_epi32(acc1[i], av, b1);
            }
        }
    }
    for (int b = 0; b < nb; b++) {
        const size_t j0 = (size_t)b * 16;
        const size_t cols = nc > j0 ? (nc - j0 < 16 ? nc - j0 : 16) : 0;
        const __mmask16 m = (__mmask16)((1u << cols) - 1u);
        const __m512 sw = _mm512_maskz_loadu_ps(m, ep->w_scale + j0);
        const __m512 bias = ep->bias ? _mm512_maskz_loadu_ps(m, ep->bias + j0) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            if ((size_t)i >= mr)
                break;
            const __m512i acc = b == 0 ? acc0[i] : acc1[i];
            const __m512 s = _mm512_mul_ps(sw, _mm512_set1_ps(ep->a_scale[(size_t)i * ep->a_scale_stride]));
            __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), s, bias);
            if (ep->residual)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ep->residual + (size_t)i * ep->residual_stride + j0));
            _mm512_mask_storeu_ps(c + (size_t)i * c_stride + j0, m, v);
        }
    }
}

static void q8_igemm_8x32c4_avx512vnni(size_t mr, size_t nc, size_t kc, size_t ks,
                                       const int8_t *const *a, const int8_t *w, const int32_t *wsum,
                                       float *c, size_t c_stride, const stdcpu_q8_epilogue *ep)
{
    if (nc > 16)
        igemm_8xnb(mr, nc, kc, ks, a, w, wsum, c, c_stride, ep, 2);
    else
        igemm_8xnb(mr, nc, kc, ks, a, w, wsum, c, c_stride, ep, 1);
}

static float f32_absmax_avx512(const float *x, size_t n)
{
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    __m512 m0 = _mm512_setzero_ps(), m1 = _mm512_setzero_ps();
    size_t i = 0;
    /* max(v, m) returns m when v is NaN: NaN is ignored like the scalar. */
    for (; i + 32 <= n; i += 32) {
        m0 = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + i), absmask), m0);
        m1 = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + i + 16), absmask), m1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1u);
        m0 = _mm512_max_ps(_mm512_and_ps(_mm512_maskz_loadu_ps(m, x + i), absmask), m0);
    }
    return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

static void q8_quantize_avx512(const float *x, size_t n, size_t n_padded, float inv_scale,
                               unsigned char xor_byte, int8_t *q)
{
    const __m512 inv = _mm512_set1_ps(inv_scale), hi = _mm512_set1_ps(127.0f),
                 lo = _mm512_set1_ps(-127.0f);
    const __m128i xb = _mm_set1_epi8((char)xor_byte);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1u);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv);
        const __mmask16 ord = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q); /* NaN -> 0 */
        const __m512 cl = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        const __m512i qi = _mm512_maskz_cvtps_epi32(ord, cl); /* round to nearest even */
        const __m128i qb = _mm_xor_si128(_mm512_cvtsepi32_epi8(qi), xb);
        _mm_mask_storeu_epi8(q + i, m, qb);
    }
    if (n_padded > n)
        memset(q + n, xor_byte, n_padded - n);
}

void stdcpu_gemm_init_avx512vnni(stdcpu_gemm_kernels *k)
{
    k->q8_igemm = q8_igemm_8x32c4_avx512vnni;
    k->q8_igemm_name = "q8_igemm_8x32c4_avx512vnni";
    k->q8_mr = MR;
    k->q8_nr = 32;
    k->q8_a_xor = 0x80;
    k->f32_gemm = stdcpu_f32_gemm_14x32_avx512;
    k->f32_gemm_name = "f32_gemm_14x32_avx512";
    k->f32_mr = 14;
    k->f32_nr = 32;
    k->f32_kc = 256;
    k->f32_absmax = f32_absmax_avx512;
    k->q8_quantize = q8_quantize_avx512;
    k->f32_act_residual = gemm_f32_act_residual_vec;
}

/* ---- peak loops for the benchmarks (simd/gemm_peak.h) ---- */
#include "simd/gemm_peak.h"


uint64_t stdcpu_peak_f32_fma_avx512vnni(size_t iters)
{
    __m512 acc[16];
    const __m512 m = _mm512_set1_ps(0.9999999f), d = _mm512_set1_ps(1e-7f);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++)
        acc[j] = _mm512_set1_ps((float)j);
    for (size_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            acc[j] = _mm512_fmadd_ps(acc[j], m, d);
    }
    __m512 s = acc[0];
#pragma GCC unroll 16
    for (int j = 1; j < 16; j++)
        s = _mm512_add_ps(s, acc[j]);
    stdcpu_peak_keep_f(_mm512_reduce_add_ps(s));
    return (uint64_t)iters * 16 * 16 * 2;
}

uint64_t stdcpu_peak_i8_avx512vnni(size_t iters)
{
    __m512i acc[16];
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++)
        acc[j] = _mm512_set1_epi32(j);
    for (size_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
    }
    __m512i s = acc[0];
#pragma GCC unroll 16
    for (int j = 1; j < 16; j++)
        s = _mm512_add_epi32(s, acc[j]);
    stdcpu_peak_keep_i(_mm512_reduce_add_epi32(s));
    return (uint64_t)iters * 16 * 64 * 2;
}
