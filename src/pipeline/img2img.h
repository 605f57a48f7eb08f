/* img2img from a partial noise state (StableDiffusionImg2ImgPipeline and
 * StableDiffusionXLImg2ImgPipeline logic of diffusers 0.29.1, golden README
 * 3.11): encode the image, noise it to the first kept timestep, run the
 * student for the kept steps with optional classifier-free guidance
 * (batch [negative, positive] in one UNet pass), decode.
 *
 * The networks are loaded by the caller (from distribution folders or a
 * .stdm); random draws come from a caller-supplied noise function, so the
 * same code runs the golden cases (stored noise) and the product (Philox). */
#ifndef STDCPU_PIPELINE_IMG2IMG_H
#define STDCPU_PIPELINE_IMG2IMG_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "nn/clip.h"
#include "nn/ip_adapter.h"
#include "nn/taesd.h"
#include "nn/unet.h"
#include "nn/vae.h"
#include "pipeline/scheduler.h"
#include "stdcpu.h"

/* The networks of one SD-family model (not owned). */
typedef struct stdcpu_sd_nets {
    stdcpu_clip *te1;          /* text_encoder (CLIP-L) */
    stdcpu_clip *te2;          /* text_encoder_2 (bigG): SDXL only, else NULL */
    stdcpu_unet *unet;
    stdcpu_vae *vae;           /* encoder and decoder */
    stdcpu_clip *image_encoder;      /* IP-Adapter image encoder, or NULL */
    stdcpu_ip_image_proj *ip_proj;   /* IP-Adapter image projection, or NULL */
    stdcpu_taesd *taesd;             /* tiny decoder (TAESD / TAESDXL), or NULL */
} stdcpu_sd_nets;

/* The weight sources of an SD model's components (te2, ip_adapter,
 * image_encoder, taesd may be NULL; ip_adapter needs image_encoder). */
typedef struct stdcpu_sd_sources {
    const stdcpu_wsrc *te1, *te2, *unet, *vae, *ip_adapter, *image_encoder, *taesd;
} stdcpu_sd_sources;

/* Loads every network the sources hold (IP-Adapter layers into the UNet and
 * its image projection included). On failure what was loaded is freed. */
stdcpu_status stdcpu_sd_nets_load(stdcpu_sd_nets *n, const stdcpu_sd_sources *src, stdcpu_precision p,
                                  stdcpu_error *err);
void stdcpu_sd_nets_free(stdcpu_sd_nets *n);

/* Random draws of one run: stream STDCPU_NOISE_VAE for the posterior sample,
 * STDCPU_NOISE_INIT for add_noise, STDCPU_NOISE_STEP + i for scheduler step i. */
enum { STDCPU_NOISE_VAE = 0, STDCPU_NOISE_INIT = 1, STDCPU_NOISE_STEP = 2 };
typedef stdcpu_status (*stdcpu_noise_fn)(void *user, int stream, float *out, size_t n, stdcpu_error *err);

typedef struct stdcpu_img2img_params {
    /* Token ids [77] (int64). ids2 / neg2 for SDXL's second encoder. The
     * negatives are used only with guidance > 1. */
    const int64_t *ids1, *ids2, *neg1, *neg2;
    size_t tokens;                 /* 77 */
    const float *image;            /* [1, 3, H, W] in [-1, 1], NCHW */
    size_t height, width;          /* multiples of the VAE scale factor */
    stdcpu_sched_kind scheduler;
    const stdcpu_json *sched_config;    /* the model's scheduler_config.json */
    const stdcpu_json *sched_overrides; /* may be NULL */
    int num_inference_steps;
    double strength;
    double guidance;               /* CFG iff > 1 */
    double eta;                    /* TCD gamma / DDIM eta */
    int crop_top, crop_left;       /* SDXL add_time_ids */
    const float *ip_pixels;        /* [1, 3, S, S] CLIP-normalised style image, or NULL */
    int tiny_decoder;              /* decode with nets->taesd instead of the VAE */
    stdcpu_noise_fn noise;
    void *noise_user;
    stdcpu_progress_fn progress;   /* ("unet", 0, k) as the loop starts, then after each of the k steps; may be NULL */
    void *progress_user;
} stdcpu_img2img_params;

/* Intermediate results (any pointer may be NULL; sizes as in the golden
 * pipeline cases with k = kept steps, h, w = latent size). */
typedef struct stdcpu_img2img_trace {
    float *prompt_embeds;      /* [77, X] */
    float *negative_embeds;    /* [77, X] (CFG) */
    float *pooled;             /* [P] (SDXL) */
    float *negative_pooled;    /* [P] (SDXL, CFG) */
    float *ip_image_embeds;    /* [2|1, D]: (zeros,) encoder output */
    float *init_latents;       /* [4, h, w] */
    float *noised_latents;     /* [4, h, w] */
    float *noise_pred;         /* [k, 4, h, w] guided */
    float *aux;                /* [k, 4, h, w] scheduler's second output */
    float *latents;            /* [k, 4, h, w] after each step */
    double seconds_text, seconds_encode, seconds_unet, seconds_decode;
    int unet_evals;
    uint64_t unet_ops; /* multiply-adds x 2 of the UNet loop (the pool's op counter) */
} stdcpu_img2img_trace;

/* Runs the pipeline; decoded [1, 3, H, W] (unclamped, ~[-1, 1]). */
stdcpu_status stdcpu_img2img_run(const stdcpu_sd_nets *nets, stdcpu_pool *pool, const stdcpu_img2img_params *p,
                                 stdcpu_img2img_trace *trace, float *decoded, stdcpu_error *err);

/* round(255 * clamp(x/2 + 0.5, 0, 1)) of decoded [3, H, W] into HWC bytes. */
void stdcpu_decoded_to_u8(const float *decoded, size_t H, size_t W, uint8_t *hwc);

#endif
