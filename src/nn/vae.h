/* AutoencoderKL: the SD1.5 / SDXL VAE (golden README 3.5), encoder and
 * decoder, built from the component's config.json.
 *
 * Images are NCHW f32 in [-1, 1]; latents NCHW f32, *unscaled* (the caller
 * multiplies by scaling_factor after encoding and divides before decoding,
 * as diffusers pipelines do). Inside, activations are NHWC maps taken from
 * one block per call whose size is planned for the batch and resolution (a
 * dry run of the same code path); every convolution runs in row bands, with
 * GroupNorm+SiLU or nearest x2 applied to its input on the fly, so that the
 * peak stays near (input map + output map). Maps are stored as f32, or as
 * scaled f16 for int8 models (half the memory; see nn/vae_maps.h). */
#ifndef STDCPU_NN_VAE_H
#define STDCPU_NN_VAE_H

#include <stddef.h>

#include "core/threadpool.h"
#include "nn/layers.h"
#include "nn/weights.h"
#include "stdcpu.h"

#define STDCPU_VAE_MAX_BLOCKS 8

typedef struct stdcpu_vae_config {
    int in_channels;      /* image channels (3) */
    int out_channels;     /* decoded channels (3) */
    int latent_channels;  /* 4 */
    int n_blocks;         /* len(block_out_channels) */
    int block_out_channels[STDCPU_VAE_MAX_BLOCKS];
    int layers_per_block;
    int norm_num_groups;
    int use_quant_conv, use_post_quant_conv;
    int mid_block_add_attention;
    float scaling_factor; /* 0.18215 (SD1.5), 0.13025 (SDXL) */
    float shift_factor;   /* 0 when null */
} stdcpu_vae_config;

/* Parses config.json (defaults as diffusers' AutoencoderKL). */
stdcpu_status stdcpu_vae_config_parse(stdcpu_vae_config *cfg, const stdcpu_json *config, stdcpu_error *err);
/* Image / latent size ratio: 2^(n_blocks - 1). */
int stdcpu_vae_scale_factor(const stdcpu_vae_config *cfg);

typedef struct stdcpu_vae stdcpu_vae;

enum { STDCPU_VAE_ENCODER = 1, STDCPU_VAE_DECODER = 2, STDCPU_VAE_BOTH = 3 };

/* Loads the parts named by `parts` from a "vae" component (config.json is
 * required). Shapes are checked against the config; older attention names
 * (query/key/value/proj_attn) are accepted. */
stdcpu_status stdcpu_vae_load(stdcpu_vae **out, const stdcpu_wsrc *w, stdcpu_precision p, int parts,
                              stdcpu_error *err);
void stdcpu_vae_free(stdcpu_vae *v);
const stdcpu_vae_config *stdcpu_vae_get_config(const stdcpu_vae *v);
/* Budget of the row-band temporaries of the banded convolutions (default
 * 32 MiB; 0 restores it). Smaller = less memory, more halo rows recomputed;
 * results agree up to float reassociation (tests force 1-row bands). */
void stdcpu_vae_set_band_bytes(stdcpu_vae *v, size_t bytes);

/* Stores activation maps as scaled f16 (on) or f32 (off). Loading chooses
 * f16 for STDCPU_PREC_INT8 and f32 otherwise; arithmetic is f32 either way. */
void stdcpu_vae_set_maps_f16(stdcpu_vae *v, int on);

/* Activation bytes one call needs (what the call allocates), 0 on invalid
 * sizes. Encoder: image B x H x W; decoder: latent B x h x w. */
size_t stdcpu_vae_encode_peak_bytes(const stdcpu_vae *v, size_t B, size_t H, size_t W);
size_t stdcpu_vae_decode_peak_bytes(const stdcpu_vae *v, size_t B, size_t h, size_t w);

/* moments [B, 2*lc, H/f, W/f] = quant_conv(encoder(image [B, in, H, W])).
 * H and W must be multiples of the scale factor f. */
stdcpu_status stdcpu_vae_encode(const stdcpu_vae *v, stdcpu_pool *pool, const float *image, size_t B, size_t H,
                                size_t W, float *moments, stdcpu_error *err);

/* image [B, out, h*f, w*f] = decoder(post_quant_conv(z [B, lc, h, w])). */
stdcpu_status stdcpu_vae_decode(const stdcpu_vae *v, stdcpu_pool *pool, const float *z, size_t B, size_t h,
                                size_t w, float *image, stdcpu_error *err);

/* The diagonal Gaussian posterior of moments [B, 2*lc, h, w]:
 * mean = moments[:, :lc], logvar = clamp(moments[:, lc:], -30, 20),
 * std = exp(logvar / 2), sample = mean + std * eps (eps [B, lc, h, w]).
 * Any output may be NULL (sample needs eps). */
void stdcpu_vae_posterior(const float *moments, size_t B, size_t lc, size_t hw, const float *eps, float *mean,
                          float *logvar, float *std, float *sample);

#endif
