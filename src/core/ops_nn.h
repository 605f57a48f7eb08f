/* Threaded neural-network ops over f32 activations: what the networks call.
 *
 * Layouts: activations are NHWC (channels last) f32; attention tokens are
 * [B, T, C] rows (token t = h*W + w). Every entry point:
 *   - runs on `pool` (NULL = the calling thread only), splitting work by
 *     (ith, nth); results do not depend on the thread count (attention,
 *     LayerNorm, element-wise: bit-identical; GroupNorm: up to float
 *     reassociation of its statistics);
 *   - uses the kernel table `kern`, NULL = stdcpu_kernels_get() (tests pass
 *     stdcpu_kernels_for_isa() to compare ISAs);
 *   - allocates its scratch at most once per call (never in inner loops),
 *     returns STDCPU_OK or fills err (may be NULL).
 * Unless stated, y may equal x (in place). */
#ifndef STDCPU_CORE_OPS_NN_H
#define STDCPU_CORE_OPS_NN_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops_gemm.h"
#include "core/threadpool.h"
#include "simd/dispatch.h"
#include "stdcpu.h"

/* ---- attention ------------------------------------------------------------ */

/* Multi-head scaled dot-product attention. Head h of token t uses columns
 * [h*d, (h+1)*d) of its q / k / v / o row; heads are concatenated back in
 * order in o. Row strides (elements, 0 = heads*d) let q, k, v live in one
 * fused [B, T, 3C] buffer (q = buf, k = buf + C, v = buf + 2C, stride 3C).
 * Batch b starts at row b*T of each tensor. o must not overlap q/k/v. */
typedef struct stdcpu_attention_desc {
    size_t batch, heads, head_dim; /* B, heads, d */
    size_t tq, tk;                 /* query tokens, key tokens (tk may be 0) */
    const float *q;                /* [B, tq, >= heads*d] */
    size_t q_stride;
    const float *k, *v;            /* [B, tk, >= heads*d] f32, or NULL ... */
    const uint16_t *k16, *v16;     /* ... IEEE half K/V (stdcpu_convert_f32_to_f16) */
    size_t k_stride, v_stride;
    float *o;                      /* [B, tq, >= heads*d] */
    size_t o_stride;
    float scale;                   /* 1/sqrt(d) for the usual attention */
    int causal;                    /* CLIP text: key j > query i excluded (needs tq <= tk) */
    const float *key_bias;         /* [B, tk] additive mask (0 / -inf) or NULL */
    /* Nonzero: Q.K^T and P.V in int8 on the q8 GEMM kernels (core/ops_attn_q8.c):
     * several times faster, ~1-3% relative error against f32 attention
     * (tests/test_attn_q8.c states the bounds). Needs f32 k / v, no key_bias,
     * not causal; head_dim <= 512. Its scratch (K/V packs for every head)
     * is larger: stdcpu_attention_scratch_floats counts it. */
    int int8;
    /* Optional caller scratch (64-byte aligned) of at least
     * stdcpu_attention_scratch_floats(desc, threads) floats; NULL = allocate. */
    float *scratch;
    size_t scratch_floats;
} stdcpu_attention_desc;

size_t stdcpu_attention_scratch_floats(const stdcpu_attention_desc *a, int threads);
stdcpu_status stdcpu_attention(stdcpu_pool *pool, const stdcpu_kernels *kern,
                               const stdcpu_attention_desc *a, stdcpu_error *err);

/* ---- normalisation -------------------------------------------------------- */

/* GroupNorm on x [B, H, W, C] (NHWC): G groups of C/G contiguous channels,
 * mean and biased variance over (group channels x H x W) per batch item,
 * y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c], then SiLU if silu.
 * gamma / beta may be NULL (1 / 0). Two-pass statistics (f32 per channel,
 * f64 per group). */
stdcpu_status stdcpu_group_norm(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                                size_t B, size_t H, size_t W, size_t C, size_t G, float eps,
                                const float *gamma, const float *beta, int silu, float *y,
                                stdcpu_error *err);

/* GroupNorm's statistics only, as the per-channel map a layer applies while
 * it quantises its input (stdcpu_linear_affine, stdcpu_conv2d_affine): the
 * normalised map is never stored. buf holds stdcpu_group_norm_affine_floats
 * floats and must outlive *aff. Applying *aff gives stdcpu_group_norm's
 * output bit for bit. */
size_t stdcpu_group_norm_affine_floats(size_t B, size_t C);
stdcpu_status stdcpu_group_norm_affine(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x, size_t B,
                                       size_t H, size_t W, size_t C, size_t G, float eps, const float *gamma,
                                       const float *beta, int silu, float *buf, stdcpu_chan_affine *aff,
                                       stdcpu_error *err);

/* LayerNorm over the last dim of x [M, C]; gamma / beta may be NULL. */
stdcpu_status stdcpu_layer_norm(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                                size_t M, size_t C, float eps, const float *gamma,
                                const float *beta, float *y, stdcpu_error *err);

/* ---- element-wise --------------------------------------------------------- */

/* (simd/gemm.h's stdcpu_act names the activations a GEMM epilogue fuses;
 * this one covers every stand-alone activation.) */
typedef enum stdcpu_eltwise_act {
    STDCPU_ELT_SILU = 0,       /* x * sigmoid(x) */
    STDCPU_ELT_GELU = 1,       /* exact erf GELU */
    STDCPU_ELT_GELU_TANH = 2,  /* tanh approximation */
    STDCPU_ELT_QUICK_GELU = 3  /* x * sigmoid(1.702 x) (CLIP-L) */
} stdcpu_eltwise_act;

stdcpu_status stdcpu_activation(stdcpu_pool *pool, const stdcpu_kernels *kern, stdcpu_eltwise_act act,
                                const float *x, float *y, size_t n, stdcpu_error *err);
/* x [rows, 2F] -> y [rows, F] = x[:, :F] * gelu(x[:, F:]). y must not overlap x. */
stdcpu_status stdcpu_geglu(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                           size_t rows, size_t F, float *y, stdcpu_error *err);
/* y = a + b (y may equal a or b). */
stdcpu_status stdcpu_add(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *a,
                         const float *b, float *y, size_t n, stdcpu_error *err);
/* y = alpha*x + beta*y. */
stdcpu_status stdcpu_axpby(stdcpu_pool *pool, const stdcpu_kernels *kern, float alpha,
                           const float *x, float beta, float *y, size_t n, stdcpu_error *err);
/* y[r, c] = x[r, c] + bias[c] for x [rows, C]. */
stdcpu_status stdcpu_add_bias(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                              const float *bias, size_t rows, size_t C, float *y,
                              stdcpu_error *err);
/* Softmax over each row of x [rows, n] in f32; -inf = masked; an all -inf row
 * gives zeros. */
stdcpu_status stdcpu_softmax_rows(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                                  size_t rows, size_t n, float *y, stdcpu_error *err);

/* Nearest upsampling of x [B, H, W, C] to y [B, Ho, Wo, C] with PyTorch's
 * legacy rule src = min(floor(dst * (float)(in / out)), in - 1) per axis
 * (the scale in f32, as aten computes it); Ho = 2H, Wo = 2W is the usual
 * x2: src = dst / 2. y must not overlap x. */
stdcpu_status stdcpu_upsample_nearest(stdcpu_pool *pool, const float *x, size_t B, size_t H,
                                      size_t W, size_t C, size_t Ho, size_t Wo, float *y,
                                      stdcpu_error *err);

/* Conversions (round to nearest even for f32 -> f16). */
stdcpu_status stdcpu_convert_f32_to_f16(stdcpu_pool *pool, const stdcpu_kernels *kern,
                                        const float *x, uint16_t *y, size_t n, stdcpu_error *err);
stdcpu_status stdcpu_convert_f16_to_f32(stdcpu_pool *pool, const stdcpu_kernels *kern,
                                        const uint16_t *x, float *y, size_t n, stdcpu_error *err);
stdcpu_status stdcpu_convert_bf16_to_f32(stdcpu_pool *pool, const stdcpu_kernels *kern,
                                         const uint16_t *x, float *y, size_t n, stdcpu_error *err);

#endif
