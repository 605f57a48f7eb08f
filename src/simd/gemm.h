/* gemm kernels: q8 GEMM / convolution micro-kernels, the f32 GEMM micro-kernel
 * (simd/sgemm.h), quantisation, epilogues.
 *
 * Quantisation is symmetric: real = scale * q, q in [-127, 127] (-128 never
 * produced, so every ISA's int8 trick stays exact). Weights have one scale per
 * output channel, activations one per row (linear) or per tensor (conv).
 *
 * Packed q8 weight layout "16c4" (the same for every ISA, built once at load):
 *   data  [ceil(N/16)][Kp/4][16][4] int8: panel p holds output channels
 *         16p..16p+15; inside it, K in groups of 4 consecutive bytes per
 *         channel, so one 64-byte row feeds one zmm vpdpbusd, two ymm, or
 *         four NEON sdot. Zero padded in N (to 16) and K (to Kp).
 *   wsum  [round16(N)] int32: sum over K of the channel's weights (the
 *         compensation for activations shifted to u8 by the VNNI kernel).
 * K is organised as ks taps of kc bytes each (kc % 4 == 0): a convolution
 * has ks = kh*kw taps of round4(C_in) channels, a linear layer ks = 1.
 *
 * The micro-kernels are "igemm" (XNNPACK's indirect GEMM): every row of the
 * tile is given by one pointer per tap, so a linear layer passes its rows
 * and a convolution passes pixel addresses (or a zero row for padding),
 * never building an im2col buffer.
 */
#ifndef STDCPU_SIMD_GEMM_H
#define STDCPU_SIMD_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "simd/sgemm.h"

#define STDCPU_Q8_NR_PANEL 16 /* output channels per packed panel */
#define STDCPU_Q8_KR 4        /* K bytes per group */
#define STDCPU_Q8_MR_MAX 16   /* no micro-kernel has more rows than this */

typedef enum stdcpu_act {
    STDCPU_ACT_NONE = 0,
    STDCPU_ACT_SILU = 1, /* x * sigmoid(x) */
    STDCPU_ACT_GELU = 2  /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
} stdcpu_act;

/* f32 epilogue of a q8 micro-kernel tile, per element (i, j):
 *   c[i][j] = (float)acc[i][j] * (a_scale[i * a_scale_stride] * w_scale[j])
 *             + bias[j] + residual[i * residual_stride + j]
 * w_scale / bias point at the tile's first column (bias may be NULL);
 * a_scale_stride is 1 for per-row scales, 0 for one per-tensor scale;
 * residual may be NULL. Activations are applied by the caller afterwards. */
typedef struct stdcpu_q8_epilogue {
    const float *a_scale;
    size_t a_scale_stride;
    const float *w_scale;
    const float *bias;
    const float *residual;
    size_t residual_stride;
} stdcpu_q8_epilogue;

/* q8 igemm micro-kernel: an mr x nc tile (mr <= the kernel's mr, nc <= its nr).
 *   a      [ks][mr] row pointers: a[t*mr + i] is row i's kc bytes for tap t,
 *          stored as int8 XOR the table's q8_a_xor (0x80 for u8 kernels).
 *   w      packed panels starting at the tile's first panel (16c4 layout,
 *          panel stride ks*kc*16 bytes); wsum the matching column sums.
 *   c      output rows, c_stride floats apart; only nc columns written. */
typedef void (*stdcpu_q8_igemm_fn)(size_t mr, size_t nc, size_t kc, size_t ks,
                                   const int8_t *const *a, const int8_t *w, const int32_t *wsum,
                                   float *c, size_t c_stride, const stdcpu_q8_epilogue *ep);

typedef struct stdcpu_gemm_kernels {
    /* q8 GEMM / convolution micro-kernel, its tile and its name. */
    stdcpu_q8_igemm_fn q8_igemm;
    const char *q8_igemm_name;
    unsigned q8_mr;       /* rows per tile */
    unsigned q8_nr;       /* columns per tile: a multiple of 16 */
    unsigned char q8_a_xor; /* the byte activations are XORed with (0 or 0x80) */

    /* f32 GEMM micro-kernel (full tiles, packed panels: simd/sgemm.h), its
     * name, its tile and the k block of the driver (stdcpu_f32_gemm). */
    stdcpu_f32_gemm_fn f32_gemm;
    const char *f32_gemm_name;
    unsigned f32_mr;      /* rows per tile, <= STDCPU_F32_MR_MAX */
    unsigned f32_nr;      /* columns per tile, <= STDCPU_F32_NR_MAX, a multiple of 4 */
    unsigned f32_kc;      /* k per packed block (B panel kc x nr fits in L1) */

    /* Largest |x[i]| (0 for n == 0; NaN is ignored). */
    float (*f32_absmax)(const float *x, size_t n);
    /* q[i] = clamp(nearbyint(x[i] * inv_scale), -127, 127) ^ xor, i < n;
     * then q[i] = 0 ^ xor for n <= i < n_padded. */
    void (*q8_quantize)(const float *x, size_t n, size_t n_padded, float inv_scale,
                        unsigned char xor_byte, int8_t *q);
    /* y[i] = act(y[i]) + (residual ? residual[i] : 0). */
    void (*f32_act_residual)(float *y, size_t n, const float *residual, stdcpu_act act);
} stdcpu_gemm_kernels;

void stdcpu_gemm_init_scalar(stdcpu_gemm_kernels *k);
void stdcpu_gemm_init_avx2(stdcpu_gemm_kernels *k);
void stdcpu_gemm_init_avx512vnni(stdcpu_gemm_kernels *k);
void stdcpu_gemm_init_neon(stdcpu_gemm_kernels *k);
void stdcpu_gemm_init_neondot(stdcpu_gemm_kernels *k);
int stdcpu_gemm_complete(const stdcpu_gemm_kernels *k);

/* ---- portable helpers (scalar; used at load time and as references) ---- */

/* The scale that maps absmax to 127 and its inverse (both 0 when absmax is 0). */
void stdcpu_q8_scale_for(float absmax, float *scale, float *inv_scale);

/* One activation row through a kernel table: scale for its absmax, x
 * quantised into q [n_padded] (XOR xor_byte, padding = 0 ^ xor_byte).
 * Returns the row's scale. */
float stdcpu_q8_quantize_row(const stdcpu_gemm_kernels *k, const float *x, size_t n, size_t n_padded,
                             unsigned char xor_byte, int8_t *q);

/* Per-output-channel quantisation of f32 weights w [n][k] into q [n][k] and
 * scales [n] (for tests and --random models). */
void stdcpu_q8_quantize_weights(const float *w, size_t n, size_t k, int8_t *q, float *scales);

/* Bytes of packed data for n channels of ks taps x kc bytes (kc % 4 == 0). */
size_t stdcpu_q8_packed_bytes(size_t n, size_t ks, size_t kc);

/* Packs int8 weights into 16c4. Element (o, t, c) of the source, o < n,
 * t < ks, c < cin, is src[o*so + t*st + c*sc]; channels cin..kc-1 and
 * o >= n are zero. data gets stdcpu_q8_packed_bytes(n, ks, kc) bytes,
 * wsum round16(n) values. kc >= cin, kc % 4 == 0. -128 is packed as -127
 * (the symmetric range every micro-kernel relies on). */
void stdcpu_q8_pack_16c4(const int8_t *src, size_t n, size_t ks, size_t cin, size_t kc,
                         size_t so, size_t st, size_t sc, int8_t *data, int32_t *wsum);

/* The scalar reference micro-kernel (4 x 16), exposed for tests. */
void stdcpu_q8_igemm_4x16_scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                 const int8_t *const *a, const int8_t *w, const int32_t *wsum,
                                 float *c, size_t c_stride, const stdcpu_q8_epilogue *ep);

/* The scalar activation, for references in other modules and tests. */
float stdcpu_act_scalar(float x, stdcpu_act act);

#endif
