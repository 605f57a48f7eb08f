/* gemm kernels for AArch64 NEON (Cortex-A72 / Pi 4: no dotprod).
 *
 * q8_igemm_2x16c4_neon: 2 rows x one panel of 16 channels. For two 4-byte
 * K groups at a time, vmull_s8 + vmlal_s8 form int16 sums of two products
 * (at most 2 * 127 * 127 = 32258: no overflow in the symmetric range), and
 * vpadalq_s16 widens pairs of them into int32 accumulators holding, per
 * channel, two partial sums; one vpaddq per quad of channels at the end
 * folds them. 16 accumulators + 8 weight registers + 2 activation registers.
 */
#include "simd/gemm_neon_common.h"
#include "simd/vec_neon.h"
#include "simd/vec_math.h"
#include "simd/gemm_act_tmpl.h"

#define MR 2

static void q8_igemm_2x16c4_neon(size_t mr, size_t nc, size_t kc, size_t ks,
                                 const int8_t *const *a, const int8_t *w, const int32_t *wsum,
                                 float *c, size_t c_stride, const stdcpu_q8_epilogue *ep)
{
    (void)wsum;
    /* acc[i][2q] = channels 4q, 4q+1 (2 partials each), acc[i][2q+1] = 4q+2, 4q+3 */
    int32x4_t acc[MR][8];
    for (int i = 0; i < MR; i++)
        for (int q = 0; q < 8; q++)
            acc[i][q] = vdupq_n_s32(0);
    for (size_t t = 0; t < ks; t++) {
        const int8_t *ap[MR];
        for (int i = 0; i < MR; i++)
            ap[i] = a[t * mr + ((size_t)i < mr ? (size_t)i : mr - 1)];
        const int8_t *wk = w + t * kc * 16;
        size_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            int8x16_t w0[4], w1[4];
            for (int q = 0; q < 4; q++) {
                w0[q] = vld1q_s8(wk + k * 16 + q * 16);
                w1[q] = vld1q_s8(wk + (k + 4) * 16 + q * 16);
            }
            for (int i = 0; i < MR; i++) {
                const int8x16_t a0 = vreinterpretq_s8_s32(vdupq_n_s32(gemm_neon_load4(ap[i] + k)));
                const int8x16_t a1 = vreinterpretq_s8_s32(vdupq_n_s32(gemm_neon_load4(ap[i] + k + 4)));
                for (int q = 0; q < 4; q++) {
                    int16x8_t lo = vmull_s8(vget_low_s8(w0[q]), vget_low_s8(a0));
                    lo = vmlal_s8(lo, vget_low_s8(w1[q]), vget_low_s8(a1));
                    int16x8_t hi = vmull_high_s8(w0[q], a0);
                    hi = vmlal_high_s8(hi, w1[q], a1);
                    acc[i][2 * q] = vpadalq_s16(acc[i][2 * q], lo);
                    acc[i][2 * q + 1] = vpadalq_s16(acc[i][2 * q + 1], hi);
                }
            }
        }
        if (k < kc) { /* one last 4-byte group */
            for (int i = 0; i < MR; i++) {
                const int8x16_t a0 = vreinterpretq_s8_s32(vdupq_n_s32(gemm_neon_load4(ap[i] + k)));
                for (int q = 0; q < 4; q++) {
                    const int8x16_t w0 = vld1q_s8(wk + k * 16 + q * 16);
                    acc[i][2 * q] = vpadalq_s16(acc[i][2 * q], vmull_s8(vget_low_s8(w0), vget_low_s8(a0)));
                    acc[i][2 * q + 1] = vpadalq_s16(acc[i][2 * q + 1], vmull_high_s8(w0, a0));
                }
            }
        }
    }
    for (size_t i = 0; i < mr; i++)
        for (size_t q = 0; q < 4; q++) {
            const size_t cols = gemm_neon_quad_cols(nc, q * 4);
            if (!cols)
                break;
            gemm_neon_store_quad(vpaddq_s32(acc[i][2 * q], acc[i][2 * q + 1]), i, q * 4, cols, c,
                                 c_stride, ep);
        }
}

static float f32_absmax_neon(const float *x, size_t n) { return gemm_neon_absmax(x, n); }

static void q8_quantize_neon(const float *x, size_t n, size_t n_padded, float inv_scale,
                             unsigned char xor_byte, int8_t *q)
{
    gemm_neon_quantize(x, n, n_padded, inv_scale, xor_byte, q);
}

void stdcpu_gemm_init_neon(stdcpu_gemm_kernels *k)
{
    k->q8_igemm = q8_igemm_2x16c4_neon;
    k->q8_igemm_name = "q8_igemm_2x16c4_neon";
    k->q8_mr = MR;
    k->q8_nr = 16;
    k->q8_a_xor = 0;
    k->f32_gemm = stdcpu_f32_gemm_8x12_neon;
    k->f32_gemm_name = "f32_gemm_8x12_neon";
    k->f32_mr = 8;
    k->f32_nr = 12;
    k->f32_kc = 256;
    k->f32_absmax = f32_absmax_neon;
    k->q8_quantize = q8_quantize_neon;
    k->f32_act_residual = gemm_f32_act_residual_vec;
}

/* ---- peak loops for the benchmarks (simd/gemm_peak.h) ---- */
#include "simd/gemm_peak.h"


uint64_t stdcpu_peak_f32_fma_neon(size_t iters)
{
    float32x4_t acc[16];
    const float32x4_t m = vdupq_n_f32(0.9999999f), d = vdupq_n_f32(1e-7f);
    for (int j = 0; j < 16; j++)
        acc[j] = vdupq_n_f32((float)j);
    for (size_t it = 0; it < iters; it++)
        for (int j = 0; j < 16; j++)
            acc[j] = vfmaq_f32(d, acc[j], m);
    float32x4_t s = acc[0];
    for (int j = 1; j < 16; j++)
        s = vaddq_f32(s, acc[j]);
    stdcpu_peak_keep_f(vaddvq_f32(s));
    return (uint64_t)iters * 16 * 4 * 2;
}

uint64_t stdcpu_peak_i8_neon(size_t iters)
{
    int16x8_t acc[16];
    const int8x8_t a = vdup_n_s8(3), b = vdup_n_s8(-5);
    for (int j = 0; j < 16; j++)
        acc[j] = vdupq_n_s16((int16_t)j);
    for (size_t it = 0; it < iters; it++)
        for (int j = 0; j < 16; j++)
            acc[j] = vmlal_s8(acc[j], a, b);
    int16x8_t s = acc[0];
    for (int j = 1; j < 16; j++)
        s = vaddq_s16(s, acc[j]);
    stdcpu_peak_keep_i(vaddvq_s16(s));
    return (uint64_t)iters * 16 * 8 * 2;
}
