/* Activation maps of the VAE (internal to nn/vae.c).
 *
 * One block per call is used as a stack: each layer consumes the map on top
 * and leaves its output in the same place (moved down when it was computed
 * above). A planning run executes the same code with plan = 1: only the
 * bookkeeping happens (pointers then point into a dummy and are never
 * dereferenced), which gives the exact size to allocate.
 *
 * Maps are NHWC pixel arrays of C channels, stored either as f32 or as
 * "scaled f16": each pixel is C f16 values and one int16 power-of-two
 * exponent e (value = f16 * 2^e, e chosen from the pixel's largest |x| so
 * that it becomes [2^14, 2^15)). That halves the decoder's peak (two
 * full-resolution maps at 512x512 and above) for an 11-bit mantissa, with
 * f32's range: the SDXL VAE's activations overflow plain f16, and bf16's
 * 8-bit mantissa, stored after every layer, costs ~4% on the decoded image
 * (measured on the golden VAE) where scaled f16 costs ~0.5%. int8 models use
 * it: their convolutions quantise every input to 8 bits anyway. Arithmetic is
 * always f32 (bands of rows are widened, computed and narrowed); f32 models
 * keep f32 maps, bit for bit. */
#ifndef STDCPU_NN_VAE_MAPS_H
#define STDCPU_NN_VAE_MAPS_H

#include <stddef.h>

#include "core/ops_gemm.h"
#include "core/threadpool.h"
#include "nn/layers.h"

typedef struct vctx {
    stdcpu_pool *pool;
    int plan;
    int nth;
    size_t band_bytes; /* budget of one banded convolution's f32 temporaries */
    int f16;           /* maps stored as scaled f16 (else f32) */
    unsigned char *base;
    size_t cap, used, peak;
    stdcpu_error *err;
} vctx;

/* A map of n elements of C channels / n f32 temporaries on top of the stack
 * (NULL with the error set when the block is exhausted). */
void *vc_map(vctx *c, size_t n, size_t C);
float *vc_f32(vctx *c, size_t n);
/* Offsets instead of pointers for the stack discipline (valid in plan mode). */
size_t vc_mark(const vctx *c);
void vc_reset(vctx *c, size_t mark);
/* The stack offset just below the map of n elements (C channels) on top. */
size_t vc_below(const vctx *c, size_t n, size_t C);
/* Drops everything above `mark` except the map `src` of n elements (C
 * channels), which moves to `mark` (the new top). */
void *vc_keep(vctx *c, size_t mark, const void *src, size_t n, size_t C);

/* Pixels [p, p + np) of a map of C channels into dst [np, C] as f32 / the
 * reverse (f16 rounded to nearest even). */
void vmap_load(const vctx *c, const void *map, size_t C, size_t p, size_t np, float *dst);
void vmap_store(const vctx *c, void *map, size_t C, size_t p, size_t np, const float *src);

/* GroupNorm statistics of the map x [B, P, C] folded with gamma/beta into a
 * per-channel affine: y = x * scale[b, c] + shift[b, c]. Statistics in f64
 * over a fixed split of the pixels: the same bits at any thread count. */
stdcpu_status vmap_gn_affine(vctx *c, const void *x, size_t B, size_t P, size_t C, size_t G, float eps,
                             const stdcpu_nn_norm *nm, float *scale, float *shift);

typedef enum vin_kind {
    VIN_PLAIN = 0,   /* rows of the map as they are */
    VIN_GN_SILU = 1, /* silu(x * scale + shift): GroupNorm + SiLU applied on the fly */
    VIN_UP2 = 2      /* nearest x2 of the map [B, H/2, W/2, C] */
} vin_kind;

/* A convolution's input: a map, possibly transformed row by row. */
typedef struct vin {
    vin_kind kind;
    const void *x;
    size_t C;
    size_t H, W;                /* the (virtual) input's size */
    const float *scale, *shift; /* VIN_GN_SILU: [B, C] */
} vin;

/* dst [B, H, W, O] = conv_kxk_pad(k/2)(in) (+ res) (+ shortcut(sx [B, H, W, sC]))
 * in bands of rows, k odd. dst is a map, or an f32 array when dst_f32.
 * res may equal dst. dst may equal sx when O <= sC: bands run in increasing
 * order and a band's shortcut is computed before its rows are written, which
 * only ever overwrites elements already consumed. */
stdcpu_status vmap_conv_bands(vctx *c, const stdcpu_conv2d_weight *cw, const vin *in, size_t B, void *dst,
                              int dst_f32, const void *res, const stdcpu_conv2d_weight *sc, const void *sx,
                              size_t sC);

/* The encoder's downsampler: dst [B, H/2, W/2, C'] = conv3x3 stride 2 of the
 * map x [B, H, W, C] padded with one zero row and column at the bottom and
 * right (diffusers' Downsample2D, padding 0), in bands of output rows. */
stdcpu_status vmap_down2_bands(vctx *c, const stdcpu_conv2d_weight *cw, const void *x, size_t B, size_t H,
                               size_t W, void *dst);

#endif
