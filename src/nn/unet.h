/* UNet2DConditionModel (SD1.5 and SDXL layouts), built from the model's own
 * config.json (golden README 3.4), with optional IP-Adapter decoupled
 * cross-attention (3.7). LoRA fusion happens on the weight source before
 * loading (nn/lora_fuse.h), so a fused UNet is an ordinary UNet.
 *
 * Activations are NHWC f32 inside; the API takes and returns NCHW like the
 * reference. Every conditioning input is per batch row, and the whole batch
 * (e.g. CFG's [uncond, cond]) runs in one pass so weights are read once.
 * Activations live in one arena owned by the UNet, sized by a planning pass
 * for the call's shape (re-planned when the shape changes). */
#ifndef STDCPU_NN_UNET_H
#define STDCPU_NN_UNET_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "core/threadpool.h"
#include "nn/layers.h"
#include "nn/weights.h"
#include "stdcpu.h"

typedef struct stdcpu_unet stdcpu_unet;

/* Builds the network from stdcpu_wsrc_config(w) and loads every weight
 * (shapes are checked against the config). */
stdcpu_status stdcpu_unet_load(stdcpu_unet **out, const stdcpu_wsrc *w, stdcpu_precision p, stdcpu_error *err);
void stdcpu_unet_free(stdcpu_unet *u);

/* Sizes from the config. */
typedef struct stdcpu_unet_info {
    size_t in_channels, out_channels;
    size_t cross_attention_dim;    /* X: channels of encoder_hidden_states */
    size_t text_embeds_dim;        /* P for text_time UNets, else 0 */
    int text_time;                 /* addition_embed_type == "text_time" */
    size_t n_down;                 /* len(block_out_channels) */
    size_t n_attn2;                /* cross-attention layers (IP-Adapter layers) */
} stdcpu_unet_info;
void stdcpu_unet_get_info(const stdcpu_unet *u, stdcpu_unet_info *info);

/* Precision of the attention itself (Q.K^T, softmax, P.V). int8 runs the
 * attentions over >= int8_min_keys keys on the int8 GEMM kernels
 * (core/ops_attn_q8.c, docs/int8-attention.md: 1.6-1.9x faster at 1024-4096
 * tokens, ~1-2% relative error on an attention output) and the others in
 * f32; f32 runs all in f32 (the reference, and the baseline the benchmark
 * compares int8 against in the same run). Default for int8 weights: int8
 * where the active ISA has int8 dot products (AVX-512 VNNI, NEON dotprod),
 * f32 elsewhere (AVX2's int8 attention is no faster than its f32 one), with
 * int8_min_keys = STDCPU_UNET_ATTN_INT8_MIN_KEYS: below that, packing K and
 * V costs about what the int8 products save. */
#define STDCPU_UNET_ATTN_INT8_MIN_KEYS 512
void stdcpu_unet_set_attention_precision(stdcpu_unet *u, stdcpu_precision p, size_t int8_min_keys);
stdcpu_precision stdcpu_unet_attention_precision(const stdcpu_unet *u, size_t *int8_min_keys);

/* Fusions in the transformer blocks with int8 weights: each LayerNorm is
 * folded into the layer after it (stdcpu_linear_norm, and norm3 into the
 * feed-forward), and the GEGLU feed-forward runs both layers per block of
 * rows (stdcpu_geglu_ff, core/ops_ff.c: the intermediates stay in L2)
 * wherever there are enough rows for the threads. The output is
 * bit-identical either way. Off (on = 0) runs every op on its own: the
 * baseline the benchmark measures them against in the same run. Default on. */
void stdcpu_unet_set_fusion(stdcpu_unet *u, int on);

/* ---- IP-Adapter ---------------------------------------------------------- */

/* Loads ip_adapter.{n}.to_k_ip / to_v_ip (n = 1, 3, 5, ... in attn_processors
 * order: down, up, mid) from a source holding the IP-Adapter file. Scales
 * start at 1.0 on every layer. */
stdcpu_status stdcpu_unet_load_ip_adapter(stdcpu_unet *u, const stdcpu_wsrc *ip, stdcpu_precision p,
                                          stdcpu_error *err);
/* One scale per attn2 layer, in attn_processors order (n_attn2 values). */
stdcpu_status stdcpu_unet_set_ip_scales(stdcpu_unet *u, const float *scales, size_t n, stdcpu_error *err);
/* set_ip_adapter_scale: a number, or an InstantStyle dict {"down", "mid",
 * "up"} (README 3.7; everything not named is 0). */
stdcpu_status stdcpu_unet_set_ip_scale_json(stdcpu_unet *u, const stdcpu_json *setting, stdcpu_error *err);
/* The current per-layer scales (n_attn2 values). */
const float *stdcpu_unet_ip_scales(const stdcpu_unet *u);

/* ---- cached conditioning ------------------------------------------------ */

/* Computes every attn2 layer's keys/values of context [B, T, X] (and of the
 * image tokens [B, n, X] when given) once; forwards whose inputs have
 * context == NULL and ip_tokens == NULL then use them (batch must equal B).
 * The prompt and style image stay the same over the denoising steps, so a
 * pipeline calls this once per image. Loading an IP-Adapter clears it. */
stdcpu_status stdcpu_unet_set_context(stdcpu_unet *u, stdcpu_pool *pool, const float *context, size_t batch,
                                      size_t tokens, const float *ip_tokens, size_t ip_tokens_n, stdcpu_error *err);
void stdcpu_unet_clear_context(stdcpu_unet *u);

/* ---- forward ------------------------------------------------------------- */

/* Block outputs for debugging (golden dbg_*) and per-block timing in
 * benchmarks (the time between two taps is one block): name is "conv_in",
 * "time_embedding", "add_embedding" (rows [B, 4*C0]: h = w = 1),
 * "down_<i>", "mid", "up_<i>"; x is NHWC [B, h, w, c]. */
typedef void (*stdcpu_unet_tap_fn)(void *user, const char *name, const float *x, size_t B, size_t h, size_t w,
                                   size_t c);

typedef struct stdcpu_unet_inputs {
    size_t batch, height, width;  /* latent size */
    const float *sample;          /* [B, in_channels, H, W] NCHW */
    const float *timesteps;       /* [B] per row, or NULL to broadcast `timestep` */
    float timestep;
    const float *context;         /* [B, context_tokens, X] encoder_hidden_states, or NULL:
                                     the cached context (stdcpu_unet_set_context) */
    size_t context_tokens;
    const float *text_embeds;     /* [B, P] (text_time only) */
    const float *time_ids;        /* [B, 6] (text_time only) */
    const float *ip_tokens;       /* [B, ip_tokens_n, X] projected image tokens, or NULL */
    size_t ip_tokens_n;
    stdcpu_unet_tap_fn tap;       /* optional */
    void *tap_user;
} stdcpu_unet_inputs;

/* out [B, out_channels, H, W] NCHW. */
stdcpu_status stdcpu_unet_forward(stdcpu_unet *u, stdcpu_pool *pool, const stdcpu_unet_inputs *in, float *out,
                                  stdcpu_error *err);

/* Returns the activation memory to the system (the next forward plans and
 * allocates it again): for the time other networks run, e.g. the decoder. */
void stdcpu_unet_trim(stdcpu_unet *u);

/* Peak activation bytes of the last forward's plan (0 before any). Excludes
 * the convolution kernels' own bounded scratch (int8 input copy, tiles). */
size_t stdcpu_unet_peak_bytes(const stdcpu_unet *u);

/* Plans a forward from a config.json object alone (no weights): peak arena
 * bytes for batch x height x width latents, `context_tokens` text tokens,
 * `ip_tokens_n` image tokens and `threads` threads, as for f32 weights (int8
 * weights need less: their fused feed-forward keeps no [rows, 3F] maps). */
stdcpu_status stdcpu_unet_plan_config(const stdcpu_json *config, size_t batch, size_t height, size_t width,
                                      size_t context_tokens, size_t ip_tokens_n, int threads, size_t *peak_bytes,
                                      stdcpu_error *err);

#endif
