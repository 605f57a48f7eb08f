/* Single-file checkpoint layouts -> canonical (diffusers) names; the logic of
 * diffusers' single_file_utils / convert_original_stable_diffusion, run
 * forwards from the enumerated diffusers parameters (names.c) so that every
 * parameter gets exactly one source. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "core/names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

#define SRC_MAX 512

void stdcpu_ckpt_map_list_free(stdcpu_ckpt_map_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].canonical);
        free(l->items[i].src);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

stdcpu_ckpt_layout stdcpu_ckpt_detect(int (*has)(void *user, const char *name), void *user)
{
    if (has(user, "conditioner.embedders.1.model.ln_final.weight") ||
        has(user, "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"))
        return STDCPU_CKPT_SDXL;
    if (has(user, "model.diffusion_model.input_blocks.0.0.weight") ||
        has(user, "cond_stage_model.transformer.text_model.final_layer_norm.weight") ||
        has(user, "cond_stage_model.transformer.final_layer_norm.weight") ||
        has(user, "first_stage_model.decoder.conv_out.weight"))
        return STDCPU_CKPT_SD1;
    return STDCPU_CKPT_UNKNOWN;
}

static void put(char *dst, const char *fmt, ...) STDCPU_PRINTF(2, 3);
static void put(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, SRC_MAX, fmt, ap);
    va_end(ap);
}

/* Replaces a leading `from` of s by `to`; 1 if it matched. */
static int swap_prefix(char *dst, const char *s, const char *from, const char *to)
{
    size_t n = strlen(from);
    if (strncmp(s, from, n))
        return 0;
    put(dst, "%s%s", to, s + n);
    return 1;
}

/* ResnetBlock2D inside the UNet: diffusers -> LDM ResBlock. */
static int unet_resnet(char *dst, const char *rest)
{
    static const char *const m[][2] = {{"norm1.", "in_layers.0."},      {"conv1.", "in_layers.2."},
                                       {"time_emb_proj.", "emb_layers.1."}, {"norm2.", "out_layers.0."},
                                       {"conv2.", "out_layers.3."},     {"conv_shortcut.", "skip_connection."}};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (swap_prefix(dst, rest, m[i][0], m[i][1]))
            return 1;
    return 0;
}

static int unet_src(char *dst, const char *name, int lpb, int nb, const stdcpu_json *up_types)
{
    int i, j, n = 0;
    char tail[SRC_MAX];
    (void)nb;
    if (n = 0, sscanf(name, "down_blocks.%d.resnets.%d.%n", &i, &j, &n) == 2 && n && unet_resnet(tail, name + n)) {
        put(dst, "input_blocks.%d.0.%s", 1 + i * (lpb + 1) + j, tail);
        return 1;
    }
    if (n = 0, sscanf(name, "down_blocks.%d.attentions.%d.%n", &i, &j, &n) == 2 && n) {
        put(dst, "input_blocks.%d.1.%s", 1 + i * (lpb + 1) + j, name + n);
        return 1;
    }
    if (n = 0, sscanf(name, "down_blocks.%d.downsamplers.0.conv.%n", &i, &n) == 1 && n) {
        put(dst, "input_blocks.%d.0.op.%s", (i + 1) * (lpb + 1), name + n);
        return 1;
    }
    if (n = 0, sscanf(name, "mid_block.resnets.%d.%n", &j, &n) == 1 && n && unet_resnet(tail, name + n)) {
        put(dst, "middle_block.%d.%s", 2 * j, tail);
        return 1;
    }
    if (n = 0, sscanf(name, "mid_block.attentions.0.%n", &n) == 0 && n) {
        put(dst, "middle_block.1.%s", name + n);
        return 1;
    }
    if (n = 0, sscanf(name, "up_blocks.%d.resnets.%d.%n", &i, &j, &n) == 2 && n && unet_resnet(tail, name + n)) {
        put(dst, "output_blocks.%d.0.%s", i * (lpb + 1) + j, tail);
        return 1;
    }
    if (n = 0, sscanf(name, "up_blocks.%d.attentions.%d.%n", &i, &j, &n) == 2 && n) {
        put(dst, "output_blocks.%d.1.%s", i * (lpb + 1) + j, name + n);
        return 1;
    }
    if (n = 0, sscanf(name, "up_blocks.%d.upsamplers.0.conv.%n", &i, &n) == 1 && n) {
        const char *type = stdcpu_json_str(stdcpu_json_at(up_types, (size_t)i));
        int attn = type && strstr(type, "CrossAttn") != NULL;
        put(dst, "output_blocks.%d.%d.conv.%s", i * (lpb + 1) + lpb, attn ? 2 : 1, name + n);
        return 1;
    }
    static const char *const m[][2] = {{"time_embedding.linear_1.", "time_embed.0."},
                                       {"time_embedding.linear_2.", "time_embed.2."},
                                       {"add_embedding.linear_1.", "label_emb.0.0."},
                                       {"add_embedding.linear_2.", "label_emb.0.2."},
                                       {"conv_in.", "input_blocks.0.0."},
                                       {"conv_norm_out.", "out.0."},
                                       {"conv_out.", "out.2."}};
    for (size_t k = 0; k < sizeof m / sizeof *m; k++)
        if (swap_prefix(dst, name, m[k][0], m[k][1]))
            return 1;
    return 0;
}

/* ResnetBlock2D inside the VAE: only the shortcut is renamed. */
static void vae_resnet(char *dst, const char *rest)
{
    if (!swap_prefix(dst, rest, "conv_shortcut.", "nin_shortcut."))
        put(dst, "%s", rest);
}

static int vae_mid(char *dst, const char *side, const char *rest)
{
    int j, n = 0;
    char tail[SRC_MAX];
    if (sscanf(rest, "resnets.%d.%n", &j, &n) == 1 && n) {
        vae_resnet(tail, rest + n);
        put(dst, "%s.mid.block_%d.%s", side, j + 1, tail);
        return 1;
    }
    static const char *const m[][2] = {{"attentions.0.group_norm.", "attn_1.norm."}, {"attentions.0.to_q.", "attn_1.q."},
                                       {"attentions.0.to_k.", "attn_1.k."},          {"attentions.0.to_v.", "attn_1.v."},
                                       {"attentions.0.to_out.0.", "attn_1.proj_out."}};
    for (size_t k = 0; k < sizeof m / sizeof *m; k++)
        if (swap_prefix(tail, rest, m[k][0], m[k][1])) {
            put(dst, "%s.mid.%s", side, tail);
            return 1;
        }
    return 0;
}

static int vae_src(char *dst, const char *name, int nb)
{
    int i, j, n = 0;
    char tail[SRC_MAX];
    if (n = 0, sscanf(name, "encoder.down_blocks.%d.resnets.%d.%n", &i, &j, &n) == 2 && n) {
        vae_resnet(tail, name + n);
        put(dst, "encoder.down.%d.block.%d.%s", i, j, tail);
        return 1;
    }
    if (n = 0, sscanf(name, "encoder.down_blocks.%d.downsamplers.0.conv.%n", &i, &n) == 1 && n) {
        put(dst, "encoder.down.%d.downsample.conv.%s", i, name + n);
        return 1;
    }
    if (n = 0, sscanf(name, "decoder.up_blocks.%d.resnets.%d.%n", &i, &j, &n) == 2 && n) {
        vae_resnet(tail, name + n);
        put(dst, "decoder.up.%d.block.%d.%s", nb - 1 - i, j, tail);
        return 1;
    }
    if (n = 0, sscanf(name, "decoder.up_blocks.%d.upsamplers.0.conv.%n", &i, &n) == 1 && n) {
        put(dst, "decoder.up.%d.upsample.conv.%s", nb - 1 - i, name + n);
        return 1;
    }
    if (!strncmp(name, "encoder.mid_block.", 18))
        return vae_mid(dst, "encoder", name + 18);
    if (!strncmp(name, "decoder.mid_block.", 18))
        return vae_mid(dst, "decoder", name + 18);
    if (swap_prefix(dst, name, "encoder.conv_norm_out.", "encoder.norm_out.") ||
        swap_prefix(dst, name, "decoder.conv_norm_out.", "decoder.norm_out."))
        return 1;
    put(dst, "%s", name); /* conv_in, conv_out, quant_conv, post_quant_conv */
    return 1;
}

/* OpenCLIP bigG (open_clip layout) for text_encoder_2. */
static int openclip_src(char *dst, const char *name, int64_t hidden, int64_t *rb, int64_t *re, int *transpose)
{
    int l, n = 0;
    char proj;
    char wb[16];
    *rb = *re = -1;
    *transpose = 0;
    if (sscanf(name, "text_model.encoder.layers.%d.self_attn.%c_proj.%15s", &l, &proj, wb) == 3 &&
        (proj == 'q' || proj == 'k' || proj == 'v')) {
        int k = proj == 'q' ? 0 : proj == 'k' ? 1 : 2;
        put(dst, "transformer.resblocks.%d.attn.in_proj_%s", l, wb);
        *rb = k * hidden;
        *re = (k + 1) * hidden;
        return 1;
    }
    if (n = 0, sscanf(name, "text_model.encoder.layers.%d.%n", &l, &n) == 1 && n) {
        static const char *const m[][2] = {{"self_attn.out_proj.", "attn.out_proj."}, {"layer_norm1.", "ln_1."},
                                           {"layer_norm2.", "ln_2."},                 {"mlp.fc1.", "mlp.c_fc."},
                                           {"mlp.fc2.", "mlp.c_proj."}};
        char tail[SRC_MAX];
        for (size_t k = 0; k < sizeof m / sizeof *m; k++)
            if (swap_prefix(tail, name + n, m[k][0], m[k][1])) {
                put(dst, "transformer.resblocks.%d.%s", l, tail);
                return 1;
            }
        return 0;
    }
    if (!strcmp(name, "text_model.embeddings.token_embedding.weight"))
        return put(dst, "token_embedding.weight"), 1;
    if (!strcmp(name, "text_model.embeddings.position_embedding.weight"))
        return put(dst, "positional_embedding"), 1;
    if (!strcmp(name, "text_projection.weight")) {
        *transpose = 1; /* open_clip stores x @ P with P [H, proj] */
        return put(dst, "text_projection"), 1;
    }
    return swap_prefix(dst, name, "text_model.final_layer_norm.", "ln_final.");
}

static stdcpu_status add_map(stdcpu_ckpt_map_list *l, const char *component, const stdcpu_param *p, const char *src,
                             int64_t rb, int64_t re, int transpose, stdcpu_error *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        stdcpu_ckpt_map *m = realloc(l->items, cap * sizeof *m);
        if (!m)
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        l->items = m;
        l->cap = cap;
    }
    stdcpu_ckpt_map *m = &l->items[l->n];
    size_t cn = strlen(component) + strlen(p->name) + 2;
    m->canonical = malloc(cn);
    m->src = strdup(src);
    if (!m->canonical || !m->src) {
        free(m->canonical);
        free(m->src);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    }
    snprintf(m->canonical, cn, "%s.%s", component, p->name);
    m->row_begin = rb;
    m->row_end = re;
    m->transpose = transpose;
    m->param = p;
    l->n++;
    return STDCPU_OK;
}

stdcpu_status stdcpu_ckpt_map_component(stdcpu_ckpt_layout layout, const char *component, const stdcpu_json *config,
                                        const stdcpu_param_list *params, int (*has)(void *user, const char *name),
                                        void *user, stdcpu_ckpt_map_list *out, stdcpu_error *err)
{
    int unet = !strcmp(component, "unet"), vae = !strcmp(component, "vae");
    int te = !strcmp(component, "text_encoder"), te2 = !strcmp(component, "text_encoder_2");
    if (!unet && !vae && !te && !te2)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "single-file: no mapping for component %s", component);
    if (layout == STDCPU_CKPT_UNKNOWN || (te2 && layout != STDCPU_CKPT_SDXL))
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "single-file: component %s not in this layout", component);
    int64_t lpb = stdcpu_json_get_int(config, "layers_per_block", 2);
    int nb = (int)stdcpu_json_count(stdcpu_json_get(config, "block_out_channels"));
    int64_t hidden = stdcpu_json_get_int(config, "hidden_size", 0);
    const stdcpu_json *up_types = stdcpu_json_get(config, "up_block_types");
    const char *prefix = unet  ? "model.diffusion_model."
                         : vae ? "first_stage_model."
                         : te2 ? "conditioner.embedders.1.model."
                         : layout == STDCPU_CKPT_SDXL ? "conditioner.embedders.0.transformer."
                                                      : "cond_stage_model.transformer.";
    /* transformers < 4.31 checkpoints lack the "text_model." level */
    int old_clip = 0;
    if (te && has) {
        char probe[SRC_MAX];
        put(probe, "%sfinal_layer_norm.weight", prefix);
        old_clip = has(user, probe);
    }
    for (size_t i = 0; i < params->n; i++) {
        const stdcpu_param *p = &params->items[i];
        char tail[SRC_MAX], src[SRC_MAX];
        int64_t rb = -1, re = -1;
        int transpose = 0, ok;
        if (unet)
            ok = unet_src(tail, p->name, (int)lpb, nb, up_types);
        else if (vae)
            ok = vae_src(tail, p->name, nb);
        else if (te2)
            ok = openclip_src(tail, p->name, hidden, &rb, &re, &transpose);
        else
            ok = old_clip ? swap_prefix(tail, p->name, "text_model.", "") : (put(tail, "%s", p->name), 1);
        if (!ok)
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "single-file: no source name for %s.%s", component,
                               p->name);
        put(src, "%s%s", prefix, tail);
        STDCPU_TRY(add_map(out, component, p, src, rb, re, transpose, err));
    }
    return STDCPU_OK;
}
