/* IP-Adapter image projection (golden README 3.7, `ip-adapter_sdxl_vit-h`
 * layout): image_embeds [N, D] (the CLIP vision encoder's projected output)
 * -> ip_tokens [N, tokens, X] = LayerNorm_X(reshape(image_proj.proj(e), [N, tokens, X])).
 *
 * The decoupled cross-attention (to_k_ip / to_v_ip inside every attn2) belongs
 * to the UNet; this is only the part the pipeline runs once per image. With
 * classifier-free guidance the pipeline projects (zeros, image embeds): the
 * unconditional row gets LN(reshape(bias)), not zero tokens. */
#ifndef STDCPU_NN_IP_ADAPTER_H
#define STDCPU_NN_IP_ADAPTER_H

#include <stddef.h>

#include "core/threadpool.h"
#include "nn/layers.h"
#include "nn/weights.h"
#include "stdcpu.h"

typedef struct stdcpu_ip_image_proj {
    stdcpu_linear_weight proj; /* image_proj.proj: [tokens*X, D] + bias */
    stdcpu_nn_norm norm;       /* image_proj.norm: [X] */
    size_t tokens;             /* 4 for the ImageProjection of ip-adapter(_sdxl) */
    size_t cross_dim;          /* X = the UNet's cross_attention_dim */
    size_t embed_dim;          /* D = the image encoder's projection_dim */
    float eps;                 /* 1e-5 (nn.LayerNorm default) */
} stdcpu_ip_image_proj;

/* Loads image_proj.* from an IP-Adapter weight source (the .safetensors file,
 * opened with component "ip_adapter" so the quantisation policy keeps the
 * projection in float). X comes from image_proj.norm and the token count from
 * proj rows / X. expect_cross_dim / expect_embed_dim (0 = unchecked) are the
 * UNet's cross_attention_dim and the image encoder's projection_dim. */
stdcpu_status stdcpu_ip_image_proj_load(stdcpu_ip_image_proj *ip, const stdcpu_wsrc *w, stdcpu_precision p,
                                        size_t expect_cross_dim, size_t expect_embed_dim, stdcpu_error *err);

/* image_embeds [N, D] -> tokens [N, tokens, X] (N >= 1; tokens must not
 * overlap image_embeds). */
stdcpu_status stdcpu_ip_image_proj_forward(const stdcpu_ip_image_proj *ip, stdcpu_pool *pool,
                                           const float *image_embeds, size_t N, float *tokens, stdcpu_error *err);

void stdcpu_ip_image_proj_free(stdcpu_ip_image_proj *ip);

#endif
