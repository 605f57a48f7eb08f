/* Diffusion schedulers: TCD (the STD recipe), LCM (LCM-LoRA students) and
 * DDIM, reproducing diffusers 0.29.1 numerics (golden README section 3.10).
 *
 * Usage for img2img: init from the model's scheduler_config.json (+ the
 * recipe's overrides), set_timesteps(N), img2img(strength) -> the index of
 * the first kept step; then for i = begin .. n_steps-1: run the model at
 * timesteps[i] and call step(i, ...). All arithmetic is fp32 as in the
 * reference, so results match it to float rounding. */
#ifndef STDCPU_PIPELINE_SCHEDULER_H
#define STDCPU_PIPELINE_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "stdcpu.h"

typedef enum stdcpu_sched_kind {
    STDCPU_SCHED_TCD = 0,
    STDCPU_SCHED_LCM = 1,
    STDCPU_SCHED_DDIM = 2
} stdcpu_sched_kind;

#define STDCPU_SCHED_MAX_TRAIN 10000
#define STDCPU_SCHED_MAX_STEPS 1000

typedef struct stdcpu_sched_config {
    int num_train_timesteps;      /* 1000 */
    double beta_start, beta_end;  /* 0.00085, 0.012 */
    int scaled_linear;            /* beta_schedule: 1 scaled_linear, 0 linear */
    int steps_offset;             /* DDIM leading spacing offset */
    int spacing_leading;          /* DDIM: 1 leading, 0 trailing */
    int set_alpha_to_one;         /* DDIM / LCM final alpha */
    int original_inference_steps; /* TCD / LCM: 50 */
    double timestep_scaling;      /* LCM: 10 */
    double sigma_data;            /* LCM: 0.5 */
} stdcpu_sched_config;

typedef struct stdcpu_scheduler {
    stdcpu_sched_kind kind;
    stdcpu_sched_config cfg;
    float *alphas_cumprod; /* [num_train_timesteps] fp32 */
    float *betas;          /* [num_train_timesteps] fp32 */
    float final_alpha_cumprod;
    int n_steps;                                 /* set_timesteps(N) */
    int64_t timesteps[STDCPU_SCHED_MAX_STEPS];   /* [n_steps], descending */
    int begin_index;                             /* first step kept by img2img */
} stdcpu_scheduler;

/* Class names as in diffusers: "TCDScheduler", "LCMScheduler", "DDIMScheduler". */
int stdcpu_sched_kind_parse(const char *class_name, stdcpu_sched_kind *kind);
const char *stdcpu_sched_kind_name(stdcpu_sched_kind kind);

/* Defaults of the diffusers class (before any config). */
void stdcpu_sched_config_defaults(stdcpu_sched_kind kind, stdcpu_sched_config *cfg);

/* Reads the keys diffusers' from_config would use from a scheduler_config
 * object (unknown keys ignored, as diffusers does), then applies overrides
 * (another object, may be NULL). */
stdcpu_status stdcpu_sched_config_from_json(stdcpu_sched_kind kind, const stdcpu_json *config,
                                            const stdcpu_json *overrides, stdcpu_sched_config *cfg,
                                            stdcpu_error *err);

stdcpu_status stdcpu_sched_init(stdcpu_scheduler *s, stdcpu_sched_kind kind, const stdcpu_sched_config *cfg,
                                stdcpu_error *err);
void stdcpu_sched_free(stdcpu_scheduler *s);

stdcpu_status stdcpu_sched_set_timesteps(stdcpu_scheduler *s, int num_inference_steps, stdcpu_error *err);

/* img2img truncation: init = min(int(N*strength), N) steps are kept, starting
 * at index N - init (also stored as begin_index). Returns that count in *k. */
stdcpu_status stdcpu_sched_img2img(stdcpu_scheduler *s, double strength, int *k, stdcpu_error *err);

/* The number of UNet evaluations for (N, strength), without a scheduler. */
int stdcpu_sched_img2img_steps(int num_inference_steps, double strength);
/* Smallest N whose img2img run at this strength makes exactly `steps` UNet
 * evaluations (e.g. 8 at 0.75 -> 11), or -1 when none does. */
int stdcpu_sched_steps_for_evals(int steps, double strength);

/* Whether step i draws noise (then `noise` must be given to step()). */
int stdcpu_sched_step_needs_noise(const stdcpu_scheduler *s, int i, double eta);

/* One step at timesteps[i]: model_out, sample, noise are [n] floats (noise may
 * be NULL when not needed). Writes prev[n] and the scheduler's second output
 * aux[n] (may be NULL): TCD pred_noised_sample, LCM denoised, DDIM
 * pred_original_sample. eta: TCD gamma / DDIM eta (ignored by LCM). */
stdcpu_status stdcpu_sched_step(const stdcpu_scheduler *s, int i, const float *model_out, const float *sample,
                                 const float *noise, double eta, float *prev, float *aux, size_t n,
                                 stdcpu_error *err);

/* sqrt(ac[t]) * x0 + sqrt(1 - ac[t]) * noise. */
stdcpu_status stdcpu_sched_add_noise(const stdcpu_scheduler *s, const float *x0, const float *noise, int64_t t,
                                     float *out, size_t n, stdcpu_error *err);

#endif
