/* Threaded linear layers and 2-D convolutions: what the networks call.
 *
 * Weights are prepared once at load (q8: packed 16c4, see simd/gemm.h; f32:
 * kept [n][k] as they are, packed per call by the f32 GEMM driver,
 * simd/sgemm.h). Activations are f32, row-major [M, K] for linear
 * layers and NHWC [B, H, W, C] for convolutions (so attention tokens
 * [B, H*W, C] are the same memory as the feature map).
 *
 * Epilogue, per output element: y = act(x.w + bias) + residual.
 *
 * q8 activations are quantised on the fly: per row for linear layers and 1x1
 * stride-1 convolutions, per tensor for other convolutions (one GEMM row
 * mixes kh*kw pixels). Scratch is bounded (blocks of <= 256 rows per thread, plus
 * one int8 copy of a convolution's input map); never a full im2col.
 *
 * Threading: work is split over (row block, column chunk) tiles across the
 * pool's threads; every output element is computed by exactly one thread in a
 * fixed order, so results do not depend on the thread count (for f32 every
 * element is one k-ordered chain whatever the tiling, simd/sgemm.h). The
 * GEMMs run on our pool's threads only; OpenBLAS is not used here.
 */
#ifndef STDCPU_CORE_OPS_GEMM_H
#define STDCPU_CORE_OPS_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "simd/dispatch.h"
#include "stdcpu.h"

/* A linear layer y = x W^T + b, W [n, k]. */
typedef struct stdcpu_linear_weight {
    size_t n, k;
    int is_q8;
    size_t kp;        /* q8: k rounded up to 4 */
    int8_t *packed;   /* q8: 16c4 panels [ceil(n/16)][kp/4][16][4] */
    int32_t *wsum;    /* q8: [round16(n)] column sums */
    float *w_scale;   /* q8: [round16(n)] per-output-channel scales, 0 padded */
    float *w;         /* f32: [n, k] */
    float *bias;      /* [round16(n)] 0 padded, or NULL */
} stdcpu_linear_weight;

/* From f32 W [n, k] (kept in f32, run through the f32 GEMM kernels). */
stdcpu_status stdcpu_linear_weight_init_f32(stdcpu_linear_weight *lw, const float *w,
                                            const float *bias, size_t n, size_t k,
                                            stdcpu_error *err);
/* From int8 W [n, k] with per-output-channel scales [n] (packs it). */
stdcpu_status stdcpu_linear_weight_init_q8(stdcpu_linear_weight *lw, const int8_t *w,
                                           const float *scales, const float *bias, size_t n,
                                           size_t k, stdcpu_error *err);
void stdcpu_linear_weight_free(stdcpu_linear_weight *lw);

/* y [M, n] = act(x [M, k] . W^T + bias) + residual [M, n]. residual may be
 * NULL, or exactly y when act is NONE (y += x.W^T + b); any other overlap of
 * x, y, residual is not allowed. pool may be NULL (single thread). Results
 * (q8 and f32) are bit-identical for every thread count. */
stdcpu_status stdcpu_linear(stdcpu_pool *pool, const stdcpu_linear_weight *lw, const float *x,
                            float *y, size_t M, const float *residual, stdcpu_act act,
                            stdcpu_error *err);
/* The same with an explicit kernel table (tests, benchmarks). */
stdcpu_status stdcpu_linear_ex(stdcpu_pool *pool, const stdcpu_kernels *kern,
                               const stdcpu_linear_weight *lw, const float *x, float *y, size_t M,
                               const float *residual, stdcpu_act act, stdcpu_error *err);

/* A LayerNorm over each row of a layer's input (gamma, beta [k], eps), done
 * by the layer itself on the rows it is about to quantise, so the normed map
 * is never stored (transformer blocks: norm1 -> q|k|v, norm2 -> q, norm3 ->
 * feed-forward). The result is bit-identical to stdcpu_layer_norm first. */
typedef struct stdcpu_row_norm {
    const float *gamma, *beta;
    float eps;
} stdcpu_row_norm;

/* y = act(norm(x) . W^T + bias) + residual, as stdcpu_linear_ex on
 * stdcpu_layer_norm's output. q8 weights only (f32: STDCPU_ERR_INVALID_ARG;
 * run the two ops). x must not overlap y. */
stdcpu_status stdcpu_linear_norm(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_linear_weight *lw,
                                 const stdcpu_row_norm *norm, const float *x, float *y, size_t M,
                                 const float *residual, stdcpu_act act, stdcpu_error *err);

/* A per-channel affine map (and SiLU) applied to a layer's input as the
 * layer quantises it: GroupNorm folded into the next layer
 * (core/ops_nn.h stdcpu_group_norm_affine). Input row / pixel p of batch
 * item b = p / pixels becomes
 *   y[c] = (x[c] - mean[b C + c]) * mul[b C + c] + add[c], then silu(y) if silu,
 * computed by the norm kernels' channel_affine exactly as stdcpu_group_norm. */
typedef struct stdcpu_chan_affine {
    const float *mean, *mul; /* [B, C] */
    const float *add;        /* [C] */
    size_t C, pixels;        /* channels; rows / pixels per batch item */
    int silu;
} stdcpu_chan_affine;

/* y = act(aff(x) . W^T + bias) + residual, as stdcpu_linear_ex on the
 * mapped input (bit-identical). q8 weights only; x must not overlap y. */
stdcpu_status stdcpu_linear_affine(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_linear_weight *lw,
                                   const stdcpu_chan_affine *aff, const float *x, float *y, size_t M,
                                   const float *residual, stdcpu_act act, stdcpu_error *err);

/* A transformer block's GEGLU feed-forward with its residual, both layers
 * fused per block of STDCPU_FF_ROWS rows (core/ops_ff.c):
 *   y [M, n] += W_out . geglu(W_in . norm(x) + b_in) + b_out,
 * x [M, k], W_in [2F, k] (value rows, then gate rows), W_out [n, F]; norm is
 * the LayerNorm before it (gamma, beta [k]) or NULL (x as it is). x may be y
 * itself when k == n (the transformer's hidden state: a block's rows are
 * read before they are written) but must not overlap it otherwise. The [rows, 2F] and
 * [rows, F] intermediates stay in one core's L2 instead of going through
 * memory. Needs q8 weights and F a multiple of 16; the output is
 * bit-identical to stdcpu_layer_norm, stdcpu_linear, stdcpu_geglu,
 * stdcpu_linear (with y as residual), for every thread count. scratch: at
 * least stdcpu_geglu_ff_scratch_bytes(.., threads) bytes, 64-aligned, or
 * NULL (allocated per call). kern may be NULL (the dispatch table). */
#define STDCPU_FF_ROWS 64
size_t stdcpu_geglu_ff_scratch_bytes(const stdcpu_linear_weight *w_in, const stdcpu_linear_weight *w_out,
                                     int threads); /* 0: not supported (see above) */
stdcpu_status stdcpu_geglu_ff(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_linear_weight *w_in,
                              const stdcpu_linear_weight *w_out, const stdcpu_row_norm *norm, const float *x, float *y,
                              size_t M, void *scratch, size_t scratch_bytes, stdcpu_error *err);

/* A 2-D convolution weight [O, I, kh, kw] (PyTorch order). */
typedef struct stdcpu_conv2d_weight {
    size_t out_ch, in_ch, kh, kw;
    int is_q8;
    size_t cp;        /* q8: in_ch rounded up to 4 (one tap's bytes) */
    int8_t *packed;   /* q8: 16c4 panels, K ordered (ky, kx, c) with c < cp */
    int32_t *wsum;    /* q8: [round16(O)] */
    float *w_scale;   /* q8: [round16(O)] */
    float *w;         /* f32: [O, kh, kw, I] (reordered for NHWC patches) */
    float *bias;      /* [round16(O)] or NULL */
} stdcpu_conv2d_weight;

stdcpu_status stdcpu_conv2d_weight_init_f32(stdcpu_conv2d_weight *cw, const float *w,
                                            const float *bias, size_t out_ch, size_t in_ch,
                                            size_t kh, size_t kw, stdcpu_error *err);
stdcpu_status stdcpu_conv2d_weight_init_q8(stdcpu_conv2d_weight *cw, const int8_t *w,
                                           const float *scales, const float *bias, size_t out_ch,
                                           size_t in_ch, size_t kh, size_t kw, stdcpu_error *err);
void stdcpu_conv2d_weight_free(stdcpu_conv2d_weight *cw);

/* Output size of one spatial dimension (0 when the kernel does not fit). */
size_t stdcpu_conv2d_out_size(size_t in, size_t k, size_t stride, size_t pad);

/* y [B, Ho, Wo, O] = act(conv(x [B, H, W, I]) + bias) + residual [B, Ho, Wo, O]
 * (NHWC; residual as for stdcpu_linear). Zero padding `pad` (< kernel size)
 * on all sides; Ho = (H + 2 pad - kh) / stride + 1. */
stdcpu_status stdcpu_conv2d(stdcpu_pool *pool, const stdcpu_conv2d_weight *cw, const float *x,
                            size_t B, size_t H, size_t W, size_t stride, size_t pad, float *y,
                            const float *residual, stdcpu_act act, stdcpu_error *err);

/* stdcpu_conv2d_ex on aff(x) (see stdcpu_chan_affine), bit-identical, without
 * storing the mapped input. q8 weights only; x must not overlap y. */
stdcpu_status stdcpu_conv2d_affine(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_conv2d_weight *cw,
                                   const stdcpu_chan_affine *aff, const float *x, size_t B, size_t H, size_t W,
                                   size_t stride, size_t pad, float *y, const float *residual, stdcpu_act act,
                                   stdcpu_error *err);
stdcpu_status stdcpu_conv2d_ex(stdcpu_pool *pool, const stdcpu_kernels *kern,
                               const stdcpu_conv2d_weight *cw, const float *x, size_t B, size_t H,
                               size_t W, size_t stride, size_t pad, float *y,
                               const float *residual, stdcpu_act act, stdcpu_error *err);

/* Layout changes: x [B, C, H, W] -> y [B, H, W, C] and back (y != x). */
void stdcpu_nchw_to_nhwc(const float *x, float *y, size_t B, size_t C, size_t H, size_t W);
void stdcpu_nhwc_to_nchw(const float *x, float *y, size_t B, size_t C, size_t H, size_t W);

#endif
