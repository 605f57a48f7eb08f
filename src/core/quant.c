/* int8 / f16 weight quantisation and the storage policy. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "core/quant.h"

#include <fnmatch.h>
#include <math.h>
#include <string.h>

#include "simd/eltwise.h"

static const char *const default_keep[] = {
    "unet.conv_in.*",          /* first and last UNet convolutions: few channels, all signal passes */
    "unet.conv_out.*",
    "unet.time_embedding.*",   /* conditioning MLPs: tiny and precision sensitive */
    "unet.add_embedding.*",
    "vae.encoder.conv_in.*",
    "vae.encoder.conv_out.*",
    "vae.decoder.conv_in.*",
    "vae.decoder.conv_out.*",
    "vae.quant_conv.*",
    "vae.post_quant_conv.*",
    "*.embeddings.*",          /* CLIP token / position / patch / class embeddings */
    "*.text_projection.*",
    "*.visual_projection.*",
    "ip_adapter.image_proj.*",
    "*.pos_embed.*",           /* AnimateDiff position table */
    "taesd.encoder.*",         /* the tiny encoder's latents lose 6% in int8; its decoder
                                * (the fast `--decoder tiny`) loses 0.2 dB and runs ~4x faster */
    NULL,
};

const char *const *stdcpu_quant_default_keep(void) { return default_keep; }

const char *stdcpu_quant_mode_name(stdcpu_quant_mode m)
{
    return m == STDCPU_QUANT_INT8 ? "int8" : m == STDCPU_QUANT_F16 ? "f16" : m == STDCPU_QUANT_F32 ? "f32" : "?";
}

int stdcpu_quant_mode_parse(const char *s, stdcpu_quant_mode *out)
{
    for (int m = 0; m <= STDCPU_QUANT_F32; m++)
        if (!strcmp(s, stdcpu_quant_mode_name((stdcpu_quant_mode)m))) {
            *out = (stdcpu_quant_mode)m;
            return 1;
        }
    return 0;
}

int stdcpu_glob_match(const char *pattern, const char *name) { return fnmatch(pattern, name, 0) == 0; }

stdcpu_dtype stdcpu_quant_choose(const stdcpu_quant_policy *p, const char *name, int ndim, const int64_t *shape)
{
    if (p->mode == STDCPU_QUANT_F32 || ndim < 2)
        return STDCPU_DT_F32; /* biases, norms, scalars: tiny, keep exact */
    if (p->mode == STDCPU_QUANT_F16)
        return STDCPU_DT_F16;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    if (numel < p->min_int8_elements)
        return STDCPU_DT_F16;
    for (size_t i = 0; i < p->n_keep_f16; i++)
        if (stdcpu_glob_match(p->keep_f16[i], name))
            return STDCPU_DT_F16;
    return STDCPU_DT_I8;
}

void stdcpu_quant_int8_rows(const float *w, int64_t rows, int64_t cols, int8_t *q, float *scales)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        float amax = 0.0f;
        for (int64_t c = 0; c < cols; c++)
            amax = fmaxf(amax, fabsf(wr[c]));
        float scale = amax / 127.0f;
        scales[r] = scale;
        int8_t *qr = q + r * cols;
        if (scale == 0.0f || !isfinite(scale)) {
            memset(qr, 0, (size_t)cols);
            continue;
        }
        /* divide (not multiply by 1/scale) so that w == amax maps to exactly 127 */
        for (int64_t c = 0; c < cols; c++) {
            float v = nearbyintf(wr[c] / scale);
            qr[c] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : v);
        }
    }
}

void stdcpu_dequant_int8_rows(const int8_t *q, const float *scales, int64_t rows, int64_t cols, float *w)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            w[r * cols + c] = scales[r] * (float)q[r * cols + c];
}

void stdcpu_f32_to_f16_array(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = stdcpu_f32_to_f16(x[i]);
}

void stdcpu_f16_to_f32_array(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = stdcpu_f16_to_f32(x[i]);
}
