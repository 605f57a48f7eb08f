/* CLIP encoders (golden README 3.2, 3.3): the text encoder (HF CLIPTextModel /
 * CLIPTextModelWithProjection: OpenAI CLIP-L, OpenCLIP bigG) and the vision
 * encoder (CLIPVisionModelWithProjection: the IP-Adapter ViT-H/14), built
 * from the component's config.json and HF weight names.
 *
 * Both run a batch of B sequences of T tokens as one [B*T, H] row matrix
 * through every layer, so each weight is read once per batch (SDXL: negative
 * and positive prompt together). Activations live in a per-model arena that
 * grows to the largest (B, T) seen; a model is therefore not reentrant: run
 * one forward at a time per model (the pool parallelises inside it).
 *
 * What the pipelines use (stdcpu_clip_out):
 *   SD1.5             text_encoder   last_hidden_state                 [B,77,768]
 *   SDXL              text_encoder   hidden (index -2, no final LN)     [B,77,768]
 *                     text_encoder_2 hidden (index -2) + embeds         [B,77,1280], [B,1280]
 *   IP-Adapter        image_encoder  embeds (image_embeds)              [B,1024]
 * Only the layers an output needs are run (CLIP-L for SDXL skips its last
 * layer). */
#ifndef STDCPU_NN_CLIP_H
#define STDCPU_NN_CLIP_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "core/ops_nn.h"
#include "core/threadpool.h"
#include "io/image.h"
#include "nn/layers.h"
#include "nn/weights.h"
#include "stdcpu.h"

typedef enum stdcpu_clip_kind { STDCPU_CLIP_TEXT = 0, STDCPU_CLIP_VISION = 1 } stdcpu_clip_kind;

typedef struct stdcpu_clip_config {
    stdcpu_clip_kind kind;
    size_t hidden;          /* H (hidden_size) */
    size_t heads;           /* num_attention_heads; H % heads == 0 */
    size_t layers;          /* L (num_hidden_layers) */
    size_t intermediate;    /* I (intermediate_size) */
    float eps;              /* layer_norm_eps */
    stdcpu_eltwise_act act; /* hidden_act: quick_gelu, gelu (erf), gelu_new / gelu_pytorch_tanh */
    /* text */
    size_t vocab;           /* vocab_size */
    size_t max_positions;   /* max_position_embeddings (77) */
    /* vision */
    size_t image_size;      /* S */
    size_t patch_size;      /* p; S % p == 0 */
    size_t channels;        /* num_channels (3) */
    /* projection_dim from the config; the model's own P is the row count of
     * text_projection / visual_projection (0 when the file has none). */
    size_t projection_dim;
} stdcpu_clip_config;

/* Reads and validates config.json (model_type / key names tell text from
 * vision; sizes must be positive, H divisible by heads, S by p). */
stdcpu_status stdcpu_clip_config_from_json(const stdcpu_json *cfg, stdcpu_clip_config *out, stdcpu_error *err);

typedef struct stdcpu_clip stdcpu_clip;

/* Loads a text or vision encoder from a component (config + weights, e.g.
 * stdcpu_wsrc_open_dir on "text_encoder_2" or "image_encoder"). Every weight
 * shape is checked against the config (STDCPU_ERR_MISMATCH). The source may
 * be closed afterwards: the model owns copies of everything it uses. */
stdcpu_status stdcpu_clip_load(stdcpu_clip **out, const stdcpu_wsrc *w, stdcpu_precision p, stdcpu_error *err);
void stdcpu_clip_free(stdcpu_clip *m);

const stdcpu_clip_config *stdcpu_clip_get_config(const stdcpu_clip *m);
/* P of the loaded projection (text_projection / visual_projection), 0 if none. */
size_t stdcpu_clip_projection_dim(const stdcpu_clip *m);
/* Tokens per sequence of the vision encoder: (S/p)^2 + 1. */
size_t stdcpu_clip_vision_tokens(const stdcpu_clip *m);

/* Outputs of one forward; every pointer may be NULL (not wanted). Shapes use
 * B sequences of T tokens (vision: T = stdcpu_clip_vision_tokens). */
typedef struct stdcpu_clip_out {
    float *hidden_states;     /* [L+1, B, T, H]: [0] = embeddings (vision: after pre_layrnorm),
                                 [l] = output of layer l */
    float *hidden;            /* [B, T, H] = hidden_states[hidden_index] */
    int hidden_index;         /* 0..L, or negative from the end: -1 = last layer, -2 = penultimate */
    float *last_hidden_state; /* [B, T, H] text: final_layer_norm(last layer); vision: last layer (no LN) */
    float *pooled;            /* [B, H] text: last_hidden_state at argmax_t ids[b, t] (first max);
                                 vision: post_layernorm(last layer, token 0) */
    float *embeds;            /* [B, P] pooled . projection^T (text_embeds / image_embeds) */
} stdcpu_clip_out;

/* ids [B, T] (1 <= T <= max_positions; every id < vocab). No attention mask
 * (padding tokens are attended, as in the reference), causal self-attention. */
stdcpu_status stdcpu_clip_text_forward(stdcpu_clip *m, stdcpu_pool *pool, const int64_t *ids, size_t B, size_t T,
                                       const stdcpu_clip_out *out, stdcpu_error *err);

/* pixels [B, channels, S, S] NCHW, already resized and normalised (CLIP mean/std). */
stdcpu_status stdcpu_clip_vision_forward(stdcpu_clip *m, stdcpu_pool *pool, const float *pixels, size_t B,
                                         const stdcpu_clip_out *out, stdcpu_error *err);

/* The image preprocessing of CLIPImageProcessor() defaults (what
 * load_ip_adapter creates), with S = the config's image_size (224 for the
 * real encoders): resize (Pillow-exact bicubic on the RGB8 image) so the
 * shorter side is S, the longer one truncated; centre crop S x S (floor
 * offsets); x = float32(v * (1/255)); (x - mean[c]) / std[c] in float32 with
 * the OpenAI CLIP mean / std. pixels: [channels = 3, S, S] NCHW. */
stdcpu_status stdcpu_clip_preprocess_image(const stdcpu_clip *m, const stdcpu_image *img, float *pixels,
                                           stdcpu_error *err);

/* Activation bytes a forward of B sequences of T tokens on `threads` threads
 * needs (the arena size; SIZE_MAX on overflow). */
size_t stdcpu_clip_arena_bytes(const stdcpu_clip *m, size_t B, size_t T, int threads);
/* The largest activation footprint of any forward so far (arena high-water mark). */
size_t stdcpu_clip_peak_bytes(const stdcpu_clip *m);
/* Returns the activation memory to the system (the next forward allocates it
 * again). */
void stdcpu_clip_trim(stdcpu_clip *m);

#endif
