/* Weight quantisation for .stdm files: symmetric int8 with one f32 scale per
 * output channel (dim 0 of the PyTorch weight), f16, and the policy that
 * decides which tensor is stored how.
 *
 * int8: scale[c] = max_i |w[c,i]| / 127, q = round_half_even(w / scale)
 * clamped to [-127, 127]; real = scale[c] * q, so |real - w| <= scale[c] / 2.
 * A channel that is all zeros gets scale 0 and q = 0. */
#ifndef STDCPU_CORE_QUANT_H
#define STDCPU_CORE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum stdcpu_quant_mode {
    STDCPU_QUANT_INT8 = 0, /* int8 weights, f16 for the kept layers, f32 for 1-D tensors */
    STDCPU_QUANT_F16 = 1,  /* f16 for every >= 2-D float tensor, f32 for 1-D */
    STDCPU_QUANT_F32 = 2   /* everything f32 */
} stdcpu_quant_mode;

/* Tensors with fewer elements than this stay f16 in int8 mode: their
 * quantisation error buys nothing. */
#define STDCPU_QUANT_MIN_INT8_ELEMENTS 4096

typedef struct stdcpu_quant_policy {
    stdcpu_quant_mode mode;
    /* Globs (fnmatch, on canonical names like "unet.conv_in.weight") that stay
     * f16 in int8 mode; the defaults (stdcpu_quant_default_keep) plus the
     * user's --keep-f16 patterns. */
    const char *const *keep_f16;
    size_t n_keep_f16;
    int64_t min_int8_elements;
} stdcpu_quant_policy;

/* The default keep-f16 globs (NULL-terminated): first/last convolutions,
 * embeddings, time/add embeddings, 1x1 VAE quant convs, projections of
 * conditioning (text/visual projection, IP-Adapter image projection), motion
 * position tables. */
const char *const *stdcpu_quant_default_keep(void);
const char *stdcpu_quant_mode_name(stdcpu_quant_mode m); /* "int8", "f16", "f32" */
int stdcpu_quant_mode_parse(const char *s, stdcpu_quant_mode *out);

/* The stored dtype of a float tensor under the policy. */
stdcpu_dtype stdcpu_quant_choose(const stdcpu_quant_policy *p, const char *name, int ndim, const int64_t *shape);

/* w: [rows, cols] f32 -> q [rows, cols] int8 + scales [rows]. */
void stdcpu_quant_int8_rows(const float *w, int64_t rows, int64_t cols, int8_t *q, float *scales);
/* q [rows, cols] * scales -> w. */
void stdcpu_dequant_int8_rows(const int8_t *q, const float *scales, int64_t rows, int64_t cols, float *w);
void stdcpu_f32_to_f16_array(const float *x, uint16_t *y, size_t n);
void stdcpu_f16_to_f32_array(const uint16_t *x, float *y, size_t n);

/* 1 if the glob matches the name (fnmatch without flags). */
int stdcpu_glob_match(const char *pattern, const char *name);

#endif
