/* gemm kernels for AVX2 (+FMA).
 *
 * q8_igemm_4x16c4_avx2: 4 rows x one panel of 16 channels (2 ymm of 8
 * channels x 4 bytes). vpmaddubsw multiplies unsigned by signed bytes with a
 * saturating int16 pair sum; we feed it |a| (u8) and w with a's sign moved
 * onto it (vpsignb), so every product keeps its sign and a pair sum is at
 * most 2 * 127 * 127 = 32258 < 32767: never saturates for the symmetric
 * range the quantiser and the packer guarantee. vpmaddwd by 1 then widens
 * the pairs to the int32 sum of the 4-byte group.
 */
#include "simd/gemm.h"

#include <immintrin.h>
#include <string.h>

#include "simd/vec_avx2.h"
#include "simd/vec_math.h"
#include "simd/gemm_act_tmpl.h"

#define MR 4

static inline int32_t load4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline __m256i mask8(size_t cols)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cols), idx);
}

static void q8_igemm_4x16c4_avx2(size_t mr, size_t nc, size_t kc, size_t ks,
                                 const int8_t *const *a, const int8_t *w, const int32_t *wsum,
                                 float *c, size_t c_stride, const stdcpu_q8_epilogue *ep)
{
    (void)wsum;
    __m256i acc[MR][2];
#pragma GCC unroll 4
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t t = 0; t < ks; t++) {
        const int8_t *ap[MR];
#pragma GCC unroll 4
        for (int i = 0; i < MR; i++)
            ap[i] = a[t * mr + ((size_t)i < mr ? (size_t)i : mr - 1)];
        const int8_t *wk = w + t * kc * 16;
        for (size_t k = 0; k < kc; k += 4) {
            const __m256i b0 = _mm256_load_si256((const __m256i *)(const void *)(wk + k * 16));
            const __m256i b1 = _mm256_load_si256((const __m256i *)(const void *)(wk + k * 16 + 32));
#pragma GCC unroll 4
            for (int i = 0; i < MR; i++) {
                const __m256i av = _mm256_set1_epi32(load4(ap[i] + k));
                const __m256i aabs = _mm256_abs_epi8(av);
                const __m256i p0 = _mm256_maddubs_epi16(aabs, _mm256_sign_epi8(b0, av));
                const __m256i p1 = _mm256_maddubs_epi16(aabs, _mm256_sign_epi8(b1, av));
                acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(p0, ones));
                acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(p1, ones));
            }
        }
    }
    for (int b = 0; b < 2; b++) {
        const size_t j0 = (size_t)b * 8;
        if (nc <= j0)
            break;
        const size_t cols = nc - j0 < 8 ? nc - j0 : 8;
        const __m256i m = mask8(cols);
        const __m256 sw = _mm256_maskload_ps(ep->w_scale + j0, m);
        const __m256 bias = ep->bias ? _mm256_maskload_ps(ep->bias + j0, m) : _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int i = 0; i < MR; i++) {
            if ((size_t)i >= mr)
                break;
            const __m256 s = _mm256_mul_ps(sw, _mm256_set1_ps(ep->a_scale[(size_t)i * ep->a_scale_stride]));
            __m256 v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i][b]), s, bias);
            if (ep->residual)
                v = _mm256_add_ps(v, _mm256_maskload_ps(ep->residual + (size_t)i * ep->residual_stride + j0, m));
            _mm256_maskstore_ps(c + (size_t)i * c_stride + j0, m, v);
        }
    }
}

static float f32_absmax_avx2(const float *x, size_t n)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) { /* max(v, m): a NaN v keeps m */
        m0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), m0);
        m1 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 8), absmask), m1);
    }
    m0 = _mm256_max_ps(m0, m1);
    float lanes[8];
    _mm256_storeu_ps(lanes, m0);
    float m = 0.0f;
    for (int l = 0; l < 8; l++)
        m = lanes[l] > m ? lanes[l] : m;
    for (; i < n; i++) {
        const float v = x[i] < 0 ? -x[i] : x[i];
        m = v > m ? v : m;
    }
    return m;
}

static void q8_quantize_avx2(const float *x, size_t n, size_t n_padded, float inv_scale,
                             unsigned char xor_byte, int8_t *q)
{
    const __m256 inv = _mm256_set1_ps(inv_scale), hi = _mm256_set1_ps(127.0f),
                 lo = _mm256_set1_ps(-127.0f);
    const __m128i xb = _mm_set1_epi8((char)xor_byte);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i r[4];
        for (int p = 0; p < 4; p++) {
            const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * p), inv);
            const __m256 ord = _mm256_cmp_ps(v, v, _CMP_ORD_Q); /* NaN -> 0 */
            const __m256 cl = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(v, lo), hi), ord);
            r[p] = _mm256_cvtps_epi32(cl); /* round to nearest even */
        }
        /* packs interleave 128-bit lanes; the permute restores the order */
        const __m256i w01 = _mm256_packs_epi32(r[0], r[1]), w23 = _mm256_packs_epi32(r[2], r[3]);
        const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), perm);
        _mm256_storeu_si256((__m256i *)(void *)(q + i),
                            _mm256_xor_si256(bytes, _mm256_set_m128i(xb, xb)));
    }
    for (; i < n; i++) {
        float v = x[i] * inv_scale;
        v = v > 127.0f ? 127.0f : v;
        v = v < -127.0f ? -127.0f : v;
        const int qi = v == v ? _mm_cvtss_si32(_mm_set_ss(v)) : 0;
        q[i] = (int8_t)((unsigned char)(int8_t)qi ^ xor_byte);
    }
    if (n_padded > n)
        memset(q + n, xor_byte, n_padded - n);
}

void stdcpu_gemm_init_avx2(stdcpu_gemm_kernels *k)
{
    k->q8_igemm = q8_igemm_4x16c4_avx2;
    k->q8_igemm_name = "q8_igemm_4x16c4_avx2";
    k->q8_mr = MR;
    k->q8_nr = 16;
    k->q8_a_xor = 0;
    k->f32_gemm = stdcpu_f32_gemm_6x16_avx2;
    k->f32_gemm_name = "f32_gemm_6x16_avx2";
    k->f32_mr = 6;
    k->f32_nr = 16;
    k->f32_kc = 256;
    k->f32_absmax = f32_absmax_avx2;
    k->q8_quantize = q8_quantize_avx2;
    k->f32_act_residual = gemm_f32_act_residual_vec;
}

/* ---- peak loops for the benchmarks (simd/gemm_peak.h) ---- */
#include "simd/gemm_peak.h"


uint64_t stdcpu_peak_f32_fma_avx2(size_t iters)
{
    __m256 acc[12];
    const __m256 m = _mm256_set1_ps(0.9999999f), d = _mm256_set1_ps(1e-7f);
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++)
        acc[j] = _mm256_set1_ps((float)j);
    for (size_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++)
            acc[j] = _mm256_fmadd_ps(acc[j], m, d);
    }
    __m256 s = acc[0];
    for (int j = 1; j < 12; j++)
        s = _mm256_add_ps(s, acc[j]);
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    stdcpu_peak_keep_f(lanes[0] + lanes[7]);
    return (uint64_t)iters * 12 * 8 * 2;
}

uint64_t stdcpu_peak_i8_avx2(size_t iters)
{
    /* The kernel's inner step: 4 rows x 2 weight vectors, 8 accumulators
     * (named variables: an array would live on the stack). */
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
            c7 = c0;
    __m256i a0 = _mm256_set1_epi8(3), a1 = _mm256_set1_epi8(4), a2 = _mm256_set1_epi8(5),
            a3 = _mm256_set1_epi8(6), b0 = _mm256_set1_epi8(-5), b1 = _mm256_set1_epi8(7);
    const __m256i ones = _mm256_set1_epi16(1);
#define STDCPU_PEAK_STEP(acc, a, b) \
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones))
    for (size_t it = 0; it < iters; it++) {
        /* launder the inputs so the products are not hoisted out of the loop */
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(b0), "+x"(b1));
        STDCPU_PEAK_STEP(c0, a0, b0);
        STDCPU_PEAK_STEP(c1, a0, b1);
        STDCPU_PEAK_STEP(c2, a1, b0);
        STDCPU_PEAK_STEP(c3, a1, b1);
        STDCPU_PEAK_STEP(c4, a2, b0);
        STDCPU_PEAK_STEP(c5, a2, b1);
        STDCPU_PEAK_STEP(c6, a3, b0);
        STDCPU_PEAK_STEP(c7, a3, b1);
    }
#undef STDCPU_PEAK_STEP
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                                       _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7)));
    stdcpu_peak_keep_i(_mm256_extract_epi32(s, 0));
    return (uint64_t)iters * 8 * 32 * 2;
}
