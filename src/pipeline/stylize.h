/* The product: stylize a photo with a converted model file (.stdm).
 *
 * A model is opened once (networks loaded, weights used in place from the
 * mapping); stylize() then preprocesses the photo to a working size (both
 * sides multiples of 64, default long side 768, aspect kept), tokenizes the
 * style prompt and negative prompt, draws seeded Philox noise, runs the
 * img2img student and resizes the result back to the input's size. */
#ifndef STDCPU_PIPELINE_STYLIZE_H
#define STDCPU_PIPELINE_STYLIZE_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "io/image.h"
#include "nn/layers.h"
#include "pipeline/scheduler.h"
#include "stdcpu.h"

typedef struct stdcpu_model stdcpu_model;

/* The STD README's negative prompt, the SDXL recipe's default. */
extern const char stdcpu_std_negative_prompt[];

stdcpu_status stdcpu_model_open(stdcpu_model **out, const char *path, stdcpu_precision precision,
                                stdcpu_error *err);
void stdcpu_model_close(stdcpu_model *m);

typedef struct stdcpu_model_info {
    int sdxl;            /* two text encoders + text_time UNet */
    int has_tokenizer;   /* text prompts possible */
    int has_style_image; /* IP-Adapter + image encoder bundled */
    int has_tiny_decoder; /* TAESD / TAESDXL bundled */
    int vae_scale;       /* image / latent size ratio */
    size_t params;       /* parameters of the loaded networks */
} stdcpu_model_info;
void stdcpu_model_get_info(const stdcpu_model *m, stdcpu_model_info *info);

/* The loaded networks (benchmarks and tools drive them directly). */
struct stdcpu_sd_nets;
const struct stdcpu_sd_nets *stdcpu_model_nets(const stdcpu_model *m);
/* The model's scheduler_config.json object, or NULL. */
const stdcpu_json *stdcpu_model_scheduler_config(const stdcpu_model *m);

typedef struct stdcpu_stylize_opts {
    const char *prompt;           /* style text; NULL or "" = empty prompt */
    const char *negative;         /* NULL = the recipe's default */
    const stdcpu_image *style_image; /* NULL = none */
    double style_scale;           /* IP-Adapter scale on the targeted blocks */
    const char *style_blocks;     /* "instantstyle" (up_blocks.0.attentions.1 only) or "all" */
    double strength;              /* share of the schedule that is re-noised, (0, 1] */
    int steps;                    /* UNet evaluations (the scheduler's N is derived) */
    double cfg;                   /* guidance scale; <= 1 = a single pass per step */
    double eta;                   /* TCD gamma */
    uint64_t seed;
    int long_side;                /* working size: long side (multiple of 64), 0 = 768 */
    int work_width, work_height;  /* explicit working size (multiples of 64), 0 = from long_side */
    stdcpu_sched_kind scheduler;
    int tiny_decoder;             /* decode with the bundled TAESD instead of the VAE */
    stdcpu_progress_fn progress;  /* ("unet", 0, k) as the loop starts, then after each step; may be NULL */
    void *progress_user;
} stdcpu_stylize_opts;

/* The recipe's defaults for this model: SDXL = the STD recipe (TCD, 8 steps
 * at strength 0.75, guidance 6, the STD negative prompt, InstantStyle);
 * SD1.5 = an LCM-LoRA recipe (LCM, 4 steps at strength 0.5, no guidance). */
void stdcpu_stylize_defaults(const stdcpu_model *m, stdcpu_stylize_opts *o);

typedef struct stdcpu_stylize_report {
    int work_width, work_height;
    int scheduler_steps, unet_steps, unet_evals;
    double seconds_prepare, seconds_text, seconds_encode, seconds_unet, seconds_decode;
    uint64_t unet_ops; /* the UNet loop's multiply-adds x 2 */
} stdcpu_stylize_report;

/* out receives an image of the input's size (allocated here). */
stdcpu_status stdcpu_stylize(stdcpu_model *m, stdcpu_pool *pool, const stdcpu_image *in,
                             const stdcpu_stylize_opts *o, stdcpu_image *out, stdcpu_stylize_report *rep,
                             stdcpu_error *err);

/* Working size for an input: both sides multiples of `mult`, long side
 * `long_side`, aspect kept as closely as possible. */
void stdcpu_work_size(int width, int height, int long_side, int mult, int *work_w, int *work_h);

#endif
