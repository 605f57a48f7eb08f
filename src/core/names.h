/* Parameter names: the canonical stdcpu naming is the diffusers / HF
 * transformers state-dict name prefixed by the component ("unet.", "vae.",
 * "text_encoder.", "text_encoder_2.", "image_encoder.", "ip_adapter.",
 * "motion_adapter.", "taesd.").
 *
 * This module enumerates the parameters (name + shape) a diffusers / HF
 * config.json implies, exactly as diffusers 0.29 / transformers build the
 * modules (validated against the golden tiny models, whose safetensors hold
 * exactly these names), and maps the original single-file checkpoint layouts
 * (SD1.x LDM, SDXL SGM) to the canonical names. */
#ifndef STDCPU_CORE_NAMES_H
#define STDCPU_CORE_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "core/tensor.h"
#include "stdcpu.h"

typedef struct stdcpu_param {
    char *name; /* without component prefix */
    int ndim;
    int64_t shape[STDCPU_MAX_DIMS];
} stdcpu_param;

typedef struct stdcpu_param_list {
    stdcpu_param *items;
    size_t n, cap;
    int oom; /* an append failed */
} stdcpu_param_list;

void stdcpu_param_list_free(stdcpu_param_list *l);
/* Sorts by name (byte order), for comparisons and binary search. */
void stdcpu_param_list_sort(stdcpu_param_list *l);
const stdcpu_param *stdcpu_param_list_find(const stdcpu_param_list *l, const char *name); /* after sort */

/* Enumerates the parameters of one model from its config:
 *   UNet2DConditionModel, AutoencoderKL, AutoencoderTiny (diffusers
 *   "_class_name"), CLIPTextModel, CLIPTextModelWithProjection,
 *   CLIPVisionModelWithProjection (HF "architectures"[0]).
 * Appends to out (names without component prefix). */
stdcpu_status stdcpu_enum_params(const stdcpu_json *config, stdcpu_param_list *out, stdcpu_error *err);
/* The class a config describes ("UNet2DConditionModel", "CLIPTextModel", ...) or NULL. */
const char *stdcpu_config_class(const stdcpu_json *config);

/* ---- single-file checkpoints ------------------------------------------- */

typedef enum stdcpu_ckpt_layout {
    STDCPU_CKPT_UNKNOWN = 0,
    STDCPU_CKPT_SD1 = 1,  /* model.diffusion_model / first_stage_model / cond_stage_model.transformer */
    STDCPU_CKPT_SDXL = 2  /* + conditioner.embedders.0.transformer (CLIP-L), .1.model (OpenCLIP bigG) */
} stdcpu_ckpt_layout;

/* One mapped tensor: the canonical name and how to get it from the
 * checkpoint: a plain copy of `src` (same element count; the VAE attention
 * stored as 1x1 convs [C,C,1,1] becomes Linear [C,C]), or (OpenCLIP fused
 * attention) rows [row_begin, row_end) of `src`, or (OpenCLIP
 * text_projection, stored [H, P]) the transpose of a 2-D `src`. */
typedef struct stdcpu_ckpt_map {
    char *canonical;  /* e.g. "unet.down_blocks.0.resnets.0.conv1.weight" */
    char *src;        /* e.g. "model.diffusion_model.input_blocks.1.0.in_layers.2.weight" */
    int64_t row_begin, row_end; /* row slice of src along dim 0, or -1, -1 for all */
    int transpose;
    const stdcpu_param *param;  /* the canonical parameter (name, shape) in the list given */
} stdcpu_ckpt_map;

typedef struct stdcpu_ckpt_map_list {
    stdcpu_ckpt_map *items;
    size_t n, cap;
    int oom;
} stdcpu_ckpt_map_list;

void stdcpu_ckpt_map_list_free(stdcpu_ckpt_map_list *l);

/* SDXL if the OpenCLIP bigG embedder is present, SD1 if any LDM prefix is,
 * else UNKNOWN. has(name) tells whether the checkpoint holds a tensor. */
stdcpu_ckpt_layout stdcpu_ckpt_detect(int (*has)(void *user, const char *name), void *user);

/* For every parameter of `params` (canonical component `component`, whose
 * config is `config`), the single-file source name under `layout`. Component
 * is one of "unet", "vae", "text_encoder", "text_encoder_2". For CLIP-L, the
 * older "cond_stage_model.transformer.embeddings..." naming (no "text_model.")
 * is chosen when has(...) finds it (has may be NULL). */
stdcpu_status stdcpu_ckpt_map_component(stdcpu_ckpt_layout layout, const char *component, const stdcpu_json *config,
                                        const stdcpu_param_list *params,
                                        int (*has)(void *user, const char *name), void *user,
                                        stdcpu_ckpt_map_list *out, stdcpu_error *err);

#endif
