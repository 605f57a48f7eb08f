/* gemm kernels for AArch64 NEON with the dotprod extension (Cortex-A76 / Pi 5).
 *
 * q8_igemm_4x16c4_neondot: 4 rows x one panel of 16 channels. One 16-byte
 * panel row is 4 channels x 4 K bytes: exactly one sdot by lane, where the
 * lane picks the row's 4 activation bytes of that K group. 16 accumulators,
 * 4 activation registers (16 K bytes per row), 4 weight registers.
 */
#include "simd/gemm_neon_common.h"

#define MR 4

static void q8_igemm_4x16c4_neondot(size_t mr, size_t nc, size_t kc, size_t ks,
                                    const int8_t *const *a, const int8_t *w, const int32_t *wsum,
                                    float *c, size_t c_stride, const stdcpu_q8_epilogue *ep)
{
    (void)wsum;
    int32x4_t acc[MR][4]; /* [row][channel quad] */
    for (int i = 0; i < MR; i++)
        for (int q = 0; q < 4; q++)
            acc[i][q] = vdupq_n_s32(0);
    for (size_t t = 0; t < ks; t++) {
        const int8_t *ap[MR];
        for (int i = 0; i < MR; i++)
            ap[i] = a[t * mr + ((size_t)i < mr ? (size_t)i : mr - 1)];
        const int8_t *wk = w + t * kc * 16;
        size_t k = 0;
        for (; k + 16 <= kc; k += 16) {
            int8x16_t av[MR];
            for (int i = 0; i < MR; i++)
                av[i] = vld1q_s8(ap[i] + k);
#define STDCPU_SDOT_GROUP(g)                                                         \
    do {                                                                             \
        for (int q = 0; q < 4; q++) {                                                \
            const int8x16_t wq = vld1q_s8(wk + (k + 4 * (g)) * 16 + q * 16);         \
            for (int i = 0; i < MR; i++)                                             \
                acc[i][q] = vdotq_laneq_s32(acc[i][q], wq, av[i], (g));              \
        }                                                                            \
    } while (0)
            STDCPU_SDOT_GROUP(0);
            STDCPU_SDOT_GROUP(1);
            STDCPU_SDOT_GROUP(2);
            STDCPU_SDOT_GROUP(3);
#undef STDCPU_SDOT_GROUP
        }
        for (; k < kc; k += 4) {
            int8x16_t av[MR];
            for (int i = 0; i < MR; i++)
                av[i] = vreinterpretq_s8_s32(vdupq_n_s32(gemm_neon_load4(ap[i] + k)));
            for (int q = 0; q < 4; q++) {
                const int8x16_t wq = vld1q_s8(wk + k * 16 + q * 16);
                for (int i = 0; i < MR; i++)
                    acc[i][q] = vdotq_s32(acc[i][q], wq, av[i]);
            }
        }
    }
    for (size_t i = 0; i < mr; i++)
        for (size_t q = 0; q < 4; q++) {
            const size_t cols = gemm_neon_quad_cols(nc, q * 4);
            if (!cols)
                break;
            gemm_neon_store_quad(acc[i][q], i, q * 4, cols, c, c_stride, ep);
        }
}

static float f32_absmax_neondot(const float *x, size_t n) { return gemm_neon_absmax(x, n); }

static void q8_quantize_neondot(const float *x, size_t n, size_t n_padded, float inv_scale,
                                unsigned char xor_byte, int8_t *q)
{
    gemm_neon_quantize(x, n, n_padded, inv_scale, xor_byte, q);
}

void stdcpu_gemm_init_neondot(stdcpu_gemm_kernels *k)
{
    k->q8_igemm = q8_igemm_4x16c4_neondot;
    k->q8_igemm_name = "q8_igemm_4x16c4_neondot";
    k->q8_mr = MR;
    k->q8_nr = 16;
    k->q8_a_xor = 0;
    /* f32: the NEON kernel (dotprod adds nothing to f32) */
    k->f32_gemm = stdcpu_f32_gemm_8x12_neon;
    k->f32_gemm_name = "f32_gemm_8x12_neon";
    k->f32_mr = 8;
    k->f32_nr = 12;
    k->f32_kc = 256;
    k->f32_absmax = f32_absmax_neondot;
    k->q8_quantize = q8_quantize_neondot;
}

/* ---- peak loops for the benchmarks (simd/gemm_peak.h) ---- */
#include "simd/gemm_peak.h"


uint64_t stdcpu_peak_i8_neondot(size_t iters)
{
    int32x4_t acc[16];
    const int8x16_t a = vdupq_n_s8(3), b = vdupq_n_s8(-5);
    for (int j = 0; j < 16; j++)
        acc[j] = vdupq_n_s32(j);
    for (size_t it = 0; it < iters; it++)
        for (int j = 0; j < 16; j++)
            acc[j] = vdotq_s32(acc[j], a, b);
    int32x4_t s = acc[0];
    for (int j = 1; j < 16; j++)
        s = vaddq_s32(s, acc[j]);
    stdcpu_peak_keep_i(vaddvq_s32(s));
    return (uint64_t)iters * 16 * 16 * 2;
}
