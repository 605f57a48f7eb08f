/* UNet internals shared by unet.c (config, loading), unet_embed.c (time
 * embeddings) and unet_blocks.c (the forward pass). Shape fields are filled
 * from config.json alone (so a forward can be planned without weights);
 * weight fields only by loading. */
#ifndef STDCPU_NN_UNET_INTERNAL_H
#define STDCPU_NN_UNET_INTERNAL_H

#include "core/arena.h"
#include "core/ops_gemm.h"
#include "nn/unet.h"

typedef struct unet_resnet {
    size_t cin, cout;
    stdcpu_nn_norm norm1, norm2;        /* [cin], [cout] */
    stdcpu_conv2d_weight conv1, conv2;  /* 3x3: cin -> cout, cout -> cout */
    stdcpu_linear_weight time_emb_proj; /* [cout, 4*C0] */
    int has_shortcut;                   /* cin != cout */
    stdcpu_conv2d_weight conv_shortcut; /* 1x1 cin -> cout */
} unet_resnet;

typedef struct unet_tblock {
    size_t c;                           /* channels */
    stdcpu_nn_norm norm1, norm2, norm3; /* LayerNorm [C] */
    stdcpu_linear_weight qkv;           /* attn1 to_q|to_k|to_v fused: [3C, C] */
    stdcpu_linear_weight attn1_out;     /* [C, C] + bias */
    stdcpu_linear_weight q2;            /* attn2 to_q [C, C] */
    stdcpu_linear_weight kv2;           /* attn2 to_k|to_v fused: [2C, X] */
    stdcpu_linear_weight attn2_out;     /* [C, C] + bias */
    stdcpu_linear_weight ff_in;         /* ff.net.0.proj [2F, C] (GEGLU) */
    stdcpu_linear_weight ff_out;        /* ff.net.2 [C, F] */
    size_t ff_inner;                    /* F (4C) */
    size_t ip_index;                    /* attn2 index in attn_processors order */
    int has_ip;
    stdcpu_linear_weight ip_kv;         /* to_k_ip|to_v_ip fused: [2C, X] */
    float *kv_cache;                    /* [B*T, 2C] kv2(context) of stdcpu_unet_set_context */
    float *ip_kv_cache;                 /* [B*nip, 2C] ip_kv(image tokens), or NULL */
} unet_tblock;

typedef struct unet_transformer {
    size_t c, heads, head_dim, depth;
    stdcpu_nn_norm norm;            /* GroupNorm(G, C, 1e-6) */
    stdcpu_linear_weight proj_in;   /* Linear or 1x1 conv: same op on NHWC tokens */
    stdcpu_linear_weight proj_out;
    unet_tblock *blocks;            /* [depth] */
} unet_transformer;

typedef struct unet_down {
    size_t cin, cout;
    int cross;                      /* CrossAttnDownBlock2D */
    unet_resnet *resnets;           /* [L] */
    unet_transformer *attns;        /* [L] when cross */
    int has_down;
    stdcpu_conv2d_weight down;      /* 3x3 stride 2 pad 1 */
} unet_down;

typedef struct unet_up {
    size_t cout;
    int cross;
    unet_resnet *resnets;           /* [L+1] */
    unet_transformer *attns;        /* [L+1] when cross */
    int has_up;
    stdcpu_conv2d_weight up;        /* 3x3 pad 1 after nearest upsampling */
} unet_up;

typedef struct unet_cfg {
    size_t in_ch, out_ch, nb, L, G;
    size_t boc[8];
    float norm_eps;
    size_t X;                 /* cross_attention_dim */
    int flip_sin_to_cos;
    float freq_shift;
    int text_time;
    size_t add_time_dim;      /* A */
    size_t add_in_dim;        /* projection_class_embeddings_input_dim */
    size_t temb_dim;          /* 4*C0 (from the weights when loaded) */
    int conv_in_k, conv_out_k;
} unet_cfg;

struct stdcpu_unet {
    unet_cfg cfg;
    stdcpu_precision prec;
    stdcpu_precision attn_prec; /* of the attention op itself (default: prec) */
    size_t attn_int8_min_keys;  /* int8 attention only over this many keys or more */
    int unfused;                /* int8 transformer ops one by one (stdcpu_unet_set_fusion) */
    int has_weights;
    stdcpu_conv2d_weight conv_in, conv_out;
    stdcpu_linear_weight time_1, time_2, add_1, add_2;
    stdcpu_nn_norm norm_out;
    unet_down *down;          /* [nb] */
    unet_resnet mid_res[2];
    unet_transformer mid_attn;
    int mid_cross;
    unet_up *up;              /* [nb] */
    size_t n_attn2;
    unet_tblock **attn2_order; /* [n_attn2] blocks in attn_processors order */
    float *ip_scales;          /* [n_attn2] */
    int has_ip;
    /* activations */
    stdcpu_arena arena;
    int ctx_cached;            /* stdcpu_unet_set_context done */
    size_t ctx_batch, ctx_tokens, ctx_nip;
    size_t plan_key[7];        /* B, H, W, T, Nip, threads, cached of the current arena */
    size_t peak;
};

/* unet.c */
stdcpu_status unet_build(stdcpu_unet *u, const stdcpu_json *config, stdcpu_error *err);
void unet_release(stdcpu_unet *u);

/* Stacks linear layers with the same input size (e.g. to_q|to_k|to_v) into
 * one [nparts * n_each, k] layer; int8 only when every part would be. */
stdcpu_status unet_load_linear_cat(stdcpu_linear_weight *lw, const stdcpu_wsrc *w, const char *const *prefixes,
                                   size_t nparts, stdcpu_precision p, size_t k, size_t n_each, stdcpu_error *err);

/* unet_cond.c: frees the cached cross-attention keys/values. */
void unet_context_release(stdcpu_unet *u);

/* unet_embed.c: sinusoid(t, n) per README 3.4 into out[n]. */
void unet_sinusoid(float t, size_t n, int flip_sin_to_cos, float freq_shift, float *out);

/* unet_blocks.c: the forward pass; plan != 0 only counts arena bytes. */
stdcpu_status unet_run(stdcpu_unet *u, stdcpu_pool *pool, const stdcpu_unet_inputs *in, float *out, int plan,
                       int threads, size_t *peak, stdcpu_error *err);

#endif
