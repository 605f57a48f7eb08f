/* TAESD: the tiny autoencoder (golden README 3.8), in both weight layouts:
 *   - diffusers AutoencoderTiny (one component folder, keys
 *     "encoder.layers.{n}..." / "decoder.layers.{n}...", config.json gives
 *     num_encoder_blocks / num_decoder_blocks / latent_channels);
 *   - taesd.py (madebyollin/taesd: separate encoder / decoder files, keys
 *     "{n}...", decoder slot 0 = the tanh clamp; use_midblock_gn adds the
 *     Block+pool of taef2 in the innermost stage).
 * Both are the same network: Blocks relu(conv(relu(conv(relu(conv(x))))) +
 * skip(x)), stride-2 convs down, nearest x2 + conv up. Channel counts come
 * from the weights.
 *
 * Image range: diffusers works on [-1, 1] images (it maps to [0, 1] inside),
 * taesd.py on [0, 1]; the caller names the range of its images. Latents are
 * raw (no scaling). Activations NHWC f32 from one block per call (three maps
 * of the largest size plus the pool's hidden map). */
#ifndef STDCPU_NN_TAESD_H
#define STDCPU_NN_TAESD_H

#include <stddef.h>

#include "core/threadpool.h"
#include "io/imageops.h"
#include "nn/layers.h"
#include "nn/weights.h"
#include "stdcpu.h"

#define STDCPU_TAESD_MAX_STAGES 8

/* The pixel ranges of io/imageops.h: STDCPU_RANGE_PM1 ([-1, 1], diffusers
 * pipelines) and STDCPU_RANGE_01 ([0, 1], taesd.py). */
typedef stdcpu_pixel_range stdcpu_image_range;

typedef struct stdcpu_taesd_config {
    int latent_channels;
    int n_enc_stages, n_dec_stages;
    int enc_blocks[STDCPU_TAESD_MAX_STAGES]; /* Blocks per encoder stage */
    int dec_blocks[STDCPU_TAESD_MAX_STAGES]; /* Blocks per decoder stage */
    int use_midblock_gn; /* Block+pool in the encoder's last / decoder's first stage */
} stdcpu_taesd_config;

typedef struct stdcpu_taesd stdcpu_taesd;

/* diffusers AutoencoderTiny from a component folder source (config.json
 * required). */
stdcpu_status stdcpu_taesd_load_diffusers(stdcpu_taesd **out, const stdcpu_wsrc *w, stdcpu_precision p,
                                          stdcpu_error *err);
/* taesd.py files: enc and/or dec (either may be NULL). The stage layout is
 * taesd.py's (encoder 1,3,3,3 / decoder 3,3,3,1 Blocks). */
stdcpu_status stdcpu_taesd_load_py(stdcpu_taesd **out, const stdcpu_wsrc *enc, const stdcpu_wsrc *dec,
                                   int latent_channels, int use_midblock_gn, stdcpu_precision p,
                                   stdcpu_error *err);
void stdcpu_taesd_free(stdcpu_taesd *t);
const stdcpu_taesd_config *stdcpu_taesd_get_config(const stdcpu_taesd *t);
/* Image / latent size ratio (2^(stages-1)); 0 for a missing part. */
int stdcpu_taesd_encoder_factor(const stdcpu_taesd *t);
int stdcpu_taesd_decoder_factor(const stdcpu_taesd *t);

/* Activation bytes of one encode (image B x H x W) / decode (latent B x h x w). */
size_t stdcpu_taesd_encode_peak_bytes(const stdcpu_taesd *t, size_t B, size_t H, size_t W);
size_t stdcpu_taesd_decode_peak_bytes(const stdcpu_taesd *t, size_t B, size_t h, size_t w);

/* latent [B, lc, H/f, W/f] = encoder(image [B, 3, H, W] in `range`); H, W
 * multiples of f. */
stdcpu_status stdcpu_taesd_encode(const stdcpu_taesd *t, stdcpu_pool *pool, const float *image, size_t B, size_t H,
                                  size_t W, stdcpu_image_range range, float *latent, stdcpu_error *err);
/* image [B, 3, h*f, w*f] in `range` (unclamped) = decoder(latent [B, lc, h, w]). */
stdcpu_status stdcpu_taesd_decode(const stdcpu_taesd *t, stdcpu_pool *pool, const float *latent, size_t B, size_t h,
                                  size_t w, stdcpu_image_range range, float *image, stdcpu_error *err);

#endif
