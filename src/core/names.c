/* Parameter enumeration from diffusers / HF configs (see names.h). Each
 * builder mirrors the module tree of the reference implementation; only
 * parameter-bearing modules appear. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "core/names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

void stdcpu_param_list_free(stdcpu_param_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].name);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int cmp_param(const void *a, const void *b)
{
    return strcmp(((const stdcpu_param *)a)->name, ((const stdcpu_param *)b)->name);
}

void stdcpu_param_list_sort(stdcpu_param_list *l)
{
    if (l->n)
        qsort(l->items, l->n, sizeof *l->items, cmp_param);
}

const stdcpu_param *stdcpu_param_list_find(const stdcpu_param_list *l, const char *name)
{
    stdcpu_param key = {.name = (char *)(uintptr_t)name};
    if (!l->n)
        return NULL;
    return bsearch(&key, l->items, l->n, sizeof key, cmp_param);
}

/* Appends "<prefix><suffix>" with the given shape (ndim values follow). */
static void add(stdcpu_param_list *l, const char *prefix, const char *suffix, int ndim, ...)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        stdcpu_param *p = realloc(l->items, cap * sizeof *p);
        if (!p) {
            l->oom = 1;
            return;
        }
        l->items = p;
        l->cap = cap;
    }
    stdcpu_param *p = &l->items[l->n];
    size_t n = strlen(prefix) + strlen(suffix) + 1;
    p->name = malloc(n);
    if (!p->name) {
        l->oom = 1;
        return;
    }
    snprintf(p->name, n, "%s%s", prefix, suffix);
    p->ndim = ndim;
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++)
        p->shape[i] = va_arg(ap, int64_t);
    va_end(ap);
    l->n++;
}

#define NAME_BUF 512

/* Formats a name into buf (NAME_BUF bytes) and returns buf; a function so the
 * compiler does not warn about theoretical truncation of nested prefixes. */
static char *fmt_name(char *buf, const char *fmt, ...) STDCPU_PRINTF(2, 3);
static char *fmt_name(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, NAME_BUF, fmt, ap);
    va_end(ap);
    return buf;
}

static void linear(stdcpu_param_list *l, const char *p, int64_t in, int64_t out, int bias)
{
    add(l, p, ".weight", 2, out, in);
    if (bias)
        add(l, p, ".bias", 1, out);
}
static void conv(stdcpu_param_list *l, const char *p, int64_t in, int64_t out, int64_t k, int bias)
{
    add(l, p, ".weight", 4, out, in, k, k);
    if (bias)
        add(l, p, ".bias", 1, out);
}
static void norm(stdcpu_param_list *l, const char *p, int64_t c)
{
    add(l, p, ".weight", 1, c);
    add(l, p, ".bias", 1, c);
}

/* ResnetBlock2D; temb = 0 for the VAE (no time_emb_proj). */
static void resnet(stdcpu_param_list *l, const char *p, int64_t in, int64_t out, int64_t temb)
{
    char b[NAME_BUF];
    norm(l, fmt_name(b, "%s.norm1", p), in);
    conv(l, fmt_name(b, "%s.conv1", p), in, out, 3, 1);
    if (temb)
        linear(l, fmt_name(b, "%s.time_emb_proj", p), temb, out, 1);
    norm(l, fmt_name(b, "%s.norm2", p), out);
    conv(l, fmt_name(b, "%s.conv2", p), out, out, 3, 1);
    if (in != out)
        conv(l, fmt_name(b, "%s.conv_shortcut", p), in, out, 1, 1);
}

static void attention(stdcpu_param_list *l, const char *p, int64_t c, int64_t ctx)
{
    char b[NAME_BUF];
    linear(l, fmt_name(b, "%s.to_q", p), c, c, 0);
    linear(l, fmt_name(b, "%s.to_k", p), ctx, c, 0);
    linear(l, fmt_name(b, "%s.to_v", p), ctx, c, 0);
    linear(l, fmt_name(b, "%s.to_out.0", p), c, c, 1);
}

/* Transformer2DModel with `depth` BasicTransformerBlocks (inner dim = c). */
static void transformer2d(stdcpu_param_list *l, const char *p, int64_t c, int64_t depth, int64_t ctx, int linear_proj)
{
    char b[NAME_BUF];
    norm(l, fmt_name(b, "%s.norm", p), c);
    for (int pass = 0; pass < 2; pass++) {
        fmt_name(b, "%s.%s", p, pass ? "proj_out" : "proj_in");
        if (linear_proj)
            linear(l, b, c, c, 1);
        else
            conv(l, b, c, c, 1, 1);
    }
    for (int64_t k = 0; k < depth; k++) {
        char t[NAME_BUF];
        fmt_name(t, "%s.transformer_blocks.%lld", p, (long long)k);
        norm(l, fmt_name(b, "%s.norm1", t), c);
        attention(l, fmt_name(b, "%s.attn1", t), c, c);
        norm(l, fmt_name(b, "%s.norm2", t), c);
        attention(l, fmt_name(b, "%s.attn2", t), c, ctx);
        norm(l, fmt_name(b, "%s.norm3", t), c);
        linear(l, fmt_name(b, "%s.ff.net.0.proj", t), c, 8 * c, 1);
        linear(l, fmt_name(b, "%s.ff.net.2", t), 4 * c, c, 1);
    }
}

/* An int or a per-block list (index i). */
static int per_block(const stdcpu_json *v, size_t i, int64_t *out)
{
    if (v && v->type == STDCPU_JSON_ARRAY)
        return stdcpu_json_int(stdcpu_json_at(v, i), out);
    return stdcpu_json_int(v, out);
}

static stdcpu_status int_list(const stdcpu_json *cfg, const char *key, int64_t *out, size_t max, size_t *n,
                              stdcpu_error *err)
{
    const stdcpu_json *a = stdcpu_json_get(cfg, key);
    if (!a || a->type != STDCPU_JSON_ARRAY || a->len == 0 || a->len > max)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: '%s' must be a list of 1..%zu integers", key, max);
    for (size_t i = 0; i < a->len; i++)
        if (!stdcpu_json_int(a->items[i], &out[i]) || out[i] <= 0 || out[i] > (1 << 20))
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: '%s'[%zu] is not a positive integer", key, i);
    *n = a->len;
    return STDCPU_OK;
}

static stdcpu_status need_int(const stdcpu_json *cfg, const char *key, int64_t dflt, int64_t *out, stdcpu_error *err)
{
    const stdcpu_json *v = stdcpu_json_get(cfg, key);
    if (!v || v->type == STDCPU_JSON_NULL) {
        if (dflt < 0)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: missing '%s'", key);
        *out = dflt;
        return STDCPU_OK;
    }
    if (!stdcpu_json_int(v, out) || *out < 0 || *out > (1 << 24))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: '%s' is not a valid integer", key);
    return STDCPU_OK;
}

static int is_null(const stdcpu_json *cfg, const char *key)
{
    const stdcpu_json *v = stdcpu_json_get(cfg, key);
    return !v || v->type == STDCPU_JSON_NULL;
}

#define MAXB 8

static stdcpu_status enum_unet(const stdcpu_json *cfg, stdcpu_param_list *l, stdcpu_error *err)
{
    int64_t boc[MAXB], in_ch, out_ch, lpb, ctx, kin, kout;
    size_t nb, nd, nu;
    STDCPU_TRY(int_list(cfg, "block_out_channels", boc, MAXB, &nb, err));
    STDCPU_TRY(need_int(cfg, "in_channels", 4, &in_ch, err));
    STDCPU_TRY(need_int(cfg, "out_channels", 4, &out_ch, err));
    STDCPU_TRY(need_int(cfg, "layers_per_block", 2, &lpb, err));
    STDCPU_TRY(need_int(cfg, "cross_attention_dim", 1280, &ctx, err));
    STDCPU_TRY(need_int(cfg, "conv_in_kernel", 3, &kin, err));
    STDCPU_TRY(need_int(cfg, "conv_out_kernel", 3, &kout, err));
    const stdcpu_json *down = stdcpu_json_get(cfg, "down_block_types"), *up = stdcpu_json_get(cfg, "up_block_types");
    nd = stdcpu_json_count(down);
    nu = stdcpu_json_count(up);
    if (nd != nb || nu != nb)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: block type lists do not match block_out_channels");
    if (!is_null(cfg, "class_embed_type") || !is_null(cfg, "encoder_hid_dim_type") ||
        !is_null(cfg, "num_class_embeds"))
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "config: class embeddings / encoder_hid_proj not supported");
    const char *mid = stdcpu_json_get_str(cfg, "mid_block_type", "UNetMidBlock2DCrossAttn");
    const stdcpu_json *tlpb = stdcpu_json_get(cfg, "transformer_layers_per_block");
    const stdcpu_json *rtlpb = stdcpu_json_get(cfg, "reverse_transformer_layers_per_block");
    int lin = 0;
    stdcpu_json_bool(stdcpu_json_get(cfg, "use_linear_projection"), &lin);
    int64_t c0 = boc[0], temb = 4 * c0;
    if (!is_null(cfg, "time_embedding_dim"))
        STDCPU_TRY(need_int(cfg, "time_embedding_dim", 0, &temb, err));
    char b[NAME_BUF], p[NAME_BUF];
    conv(l, "conv_in", in_ch, c0, kin, 1);
    linear(l, "time_embedding.linear_1", c0, temb, 1);
    linear(l, "time_embedding.linear_2", temb, temb, 1);
    if (!is_null(cfg, "time_cond_proj_dim")) {
        int64_t cond;
        STDCPU_TRY(need_int(cfg, "time_cond_proj_dim", 0, &cond, err));
        linear(l, "time_embedding.cond_proj", cond, c0, 0);
    }
    const char *add_type = stdcpu_json_get_str(cfg, "addition_embed_type", NULL);
    if (add_type) {
        if (strcmp(add_type, "text_time"))
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "config: addition_embed_type '%s'", add_type);
        int64_t pin;
        STDCPU_TRY(need_int(cfg, "projection_class_embeddings_input_dim", -1, &pin, err));
        linear(l, "add_embedding.linear_1", pin, temb, 1);
        linear(l, "add_embedding.linear_2", temb, temb, 1);
    }
    int64_t depth[MAXB];
    for (size_t i = 0; i < nb; i++) {
        depth[i] = 1;
        if (tlpb && tlpb->type != STDCPU_JSON_NULL && !per_block(tlpb, i, &depth[i]))
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: bad transformer_layers_per_block");
    }
    for (size_t i = 0; i < nb; i++) {
        const char *type = stdcpu_json_str(stdcpu_json_at(down, i));
        if (!type)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: bad down_block_types");
        int cross = !strcmp(type, "CrossAttnDownBlock2D");
        if (!cross && strcmp(type, "DownBlock2D"))
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "config: down block type '%s'", type);
        int64_t in = i ? boc[i - 1] : c0, out = boc[i];
        for (int64_t j = 0; j < lpb; j++) {
            resnet(l, fmt_name(b, "down_blocks.%zu.resnets.%lld", i, (long long)j), j ? out : in, out, temb);
            if (cross)
                transformer2d(l, fmt_name(b, "down_blocks.%zu.attentions.%lld", i, (long long)j), out, depth[i], ctx,
                              lin);
        }
        if (i + 1 < nb)
            conv(l, fmt_name(b, "down_blocks.%zu.downsamplers.0.conv", i), out, out, 3, 1);
    }
    int64_t cl = boc[nb - 1];
    if (!strcmp(mid, "UNetMidBlock2DCrossAttn")) {
        resnet(l, "mid_block.resnets.0", cl, cl, temb);
        transformer2d(l, "mid_block.attentions.0", cl, depth[nb - 1], ctx, lin);
        resnet(l, "mid_block.resnets.1", cl, cl, temb);
    } else {
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "config: mid block type '%s'", mid);
    }
    int64_t prev = cl;
    for (size_t i = 0; i < nb; i++) {
        const char *type = stdcpu_json_str(stdcpu_json_at(up, i));
        if (!type)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: bad up_block_types");
        int cross = !strcmp(type, "CrossAttnUpBlock2D");
        if (!cross && strcmp(type, "UpBlock2D"))
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "config: up block type '%s'", type);
        int64_t out = boc[nb - 1 - i], input = boc[nb - 1 - (i + 1 < nb ? i + 1 : nb - 1)];
        int64_t d = depth[nb - 1 - i];
        if (rtlpb && rtlpb->type != STDCPU_JSON_NULL && !per_block(rtlpb, i, &d))
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: bad reverse_transformer_layers_per_block");
        for (int64_t j = 0; j <= lpb; j++) {
            int64_t skip = j == lpb ? input : out, rin = j ? out : prev;
            fmt_name(p, "up_blocks.%zu", i);
            resnet(l, fmt_name(b, "%s.resnets.%lld", p, (long long)j), rin + skip, out, temb);
            if (cross)
                transformer2d(l, fmt_name(b, "%s.attentions.%lld", p, (long long)j), out, d, ctx, lin);
        }
        if (i + 1 < nb)
            conv(l, fmt_name(b, "up_blocks.%zu.upsamplers.0.conv", i), out, out, 3, 1);
        prev = out;
    }
    norm(l, "conv_norm_out", c0);
    conv(l, "conv_out", c0, out_ch, kout, 1);
    return STDCPU_OK;
}

static void vae_mid(stdcpu_param_list *l, const char *p, int64_t c, int attn)
{
    char b[NAME_BUF];
    resnet(l, fmt_name(b, "%s.resnets.0", p), c, c, 0);
    if (attn) {
        norm(l, fmt_name(b, "%s.attentions.0.group_norm", p), c);
        const char *names[4] = {"to_q", "to_k", "to_v", "to_out.0"};
        for (int i = 0; i < 4; i++)
            linear(l, fmt_name(b, "%s.attentions.0.%s", p, names[i]), c, c, 1);
    }
    resnet(l, fmt_name(b, "%s.resnets.1", p), c, c, 0);
}

static stdcpu_status enum_vae(const stdcpu_json *cfg, stdcpu_param_list *l, stdcpu_error *err)
{
    int64_t boc[MAXB], in_ch, out_ch, lpb, lat;
    size_t nb;
    STDCPU_TRY(int_list(cfg, "block_out_channels", boc, MAXB, &nb, err));
    STDCPU_TRY(need_int(cfg, "in_channels", 3, &in_ch, err));
    STDCPU_TRY(need_int(cfg, "out_channels", 3, &out_ch, err));
    STDCPU_TRY(need_int(cfg, "layers_per_block", 1, &lpb, err));
    STDCPU_TRY(need_int(cfg, "latent_channels", 4, &lat, err));
    int qc = 1, pqc = 1, attn = 1;
    stdcpu_json_bool(stdcpu_json_get(cfg, "use_quant_conv"), &qc);
    stdcpu_json_bool(stdcpu_json_get(cfg, "use_post_quant_conv"), &pqc);
    stdcpu_json_bool(stdcpu_json_get(cfg, "mid_block_add_attention"), &attn);
    char b[NAME_BUF];
    conv(l, "encoder.conv_in", in_ch, boc[0], 3, 1);
    for (size_t i = 0; i < nb; i++) {
        int64_t in = i ? boc[i - 1] : boc[0], out = boc[i];
        for (int64_t j = 0; j < lpb; j++)
            resnet(l, fmt_name(b, "encoder.down_blocks.%zu.resnets.%lld", i, (long long)j), j ? out : in, out, 0);
        if (i + 1 < nb)
            conv(l, fmt_name(b, "encoder.down_blocks.%zu.downsamplers.0.conv", i), out, out, 3, 1);
    }
    int64_t cl = boc[nb - 1];
    vae_mid(l, "encoder.mid_block", cl, attn);
    norm(l, "encoder.conv_norm_out", cl);
    conv(l, "encoder.conv_out", cl, 2 * lat, 3, 1);
    if (qc)
        conv(l, "quant_conv", 2 * lat, 2 * lat, 1, 1);
    if (pqc)
        conv(l, "post_quant_conv", lat, lat, 1, 1);
    conv(l, "decoder.conv_in", lat, cl, 3, 1);
    vae_mid(l, "decoder.mid_block", cl, attn);
    int64_t prev = cl;
    for (size_t i = 0; i < nb; i++) {
        int64_t out = boc[nb - 1 - i];
        for (int64_t j = 0; j <= lpb; j++)
            resnet(l, fmt_name(b, "decoder.up_blocks.%zu.resnets.%lld", i, (long long)j), j ? out : prev, out, 0);
        if (i + 1 < nb)
            conv(l, fmt_name(b, "decoder.up_blocks.%zu.upsamplers.0.conv", i), out, out, 3, 1);
        prev = out;
    }
    norm(l, "decoder.conv_norm_out", boc[0]);
    conv(l, "decoder.conv_out", boc[0], out_ch, 3, 1);
    return STDCPU_OK;
}

/* diffusers AutoencoderTiny: nn.Sequential indices as in taesd (see golden README 3.8). */
static stdcpu_status enum_taesd(const stdcpu_json *cfg, stdcpu_param_list *l, stdcpu_error *err)
{
    int64_t enc_ch[MAXB], dec_ch[MAXB], enc_n[MAXB], dec_n[MAXB], in_ch, out_ch, lat;
    size_t ne, nd, ne2, nd2;
    STDCPU_TRY(int_list(cfg, "encoder_block_out_channels", enc_ch, MAXB, &ne, err));
    STDCPU_TRY(int_list(cfg, "decoder_block_out_channels", dec_ch, MAXB, &nd, err));
    STDCPU_TRY(int_list(cfg, "num_encoder_blocks", enc_n, MAXB, &ne2, err));
    STDCPU_TRY(int_list(cfg, "num_decoder_blocks", dec_n, MAXB, &nd2, err));
    STDCPU_TRY(need_int(cfg, "in_channels", 3, &in_ch, err));
    STDCPU_TRY(need_int(cfg, "out_channels", 3, &out_ch, err));
    STDCPU_TRY(need_int(cfg, "latent_channels", 4, &lat, err));
    if (ne != ne2 || nd != nd2)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: taesd block lists differ in length");
    char b[NAME_BUF];
    int n = 0;
    /* Block(c): conv.0, conv.2, conv.4 (3x3, bias); skip is identity (uniform channels) */
#define TBLOCK(side, c)                                                                       \
    do {                                                                                      \
        for (int cv = 0; cv < 3; cv++)                                                        \
            conv(l, fmt_name(b, "%s.layers.%d.conv.%d", side, n, 2 * cv), c, c, 3, 1);          \
        n++;                                                                                  \
    } while (0)
    for (size_t i = 0; i < ne; i++) {
        if (i == 0)
            conv(l, fmt_name(b, "encoder.layers.%d", n++), in_ch, enc_ch[0], 3, 1);
        else /* stride-2 conv, channels unchanged (diffusers uses block_out_channels[i] twice) */
            conv(l, fmt_name(b, "encoder.layers.%d", n++), enc_ch[i], enc_ch[i], 3, 0);
        for (int64_t k = 0; k < enc_n[i]; k++)
            TBLOCK("encoder", enc_ch[i]);
    }
    conv(l, fmt_name(b, "encoder.layers.%d", n++), enc_ch[ne - 1], lat, 3, 1);
    n = 0; /* tanh(x/3)*3 happens in forward(), not as a layer */
    conv(l, fmt_name(b, "decoder.layers.%d", n++), lat, dec_ch[0], 3, 1);
    n++; /* ReLU */
    for (size_t i = 0; i < nd; i++) {
        for (int64_t k = 0; k < dec_n[i]; k++)
            TBLOCK("decoder", dec_ch[i]);
        if (i + 1 < nd) {
            n++; /* Upsample */
            conv(l, fmt_name(b, "decoder.layers.%d", n++), dec_ch[i], dec_ch[i], 3, 0);
        } else {
            conv(l, fmt_name(b, "decoder.layers.%d", n++), dec_ch[i], out_ch, 3, 1);
        }
    }
#undef TBLOCK
    return STDCPU_OK;
}

static void clip_layers(stdcpu_param_list *l, const char *p, int64_t layers, int64_t h, int64_t inter)
{
    char b[NAME_BUF], t[NAME_BUF];
    for (int64_t i = 0; i < layers; i++) {
        fmt_name(t, "%s.encoder.layers.%lld", p, (long long)i);
        const char *pr[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int k = 0; k < 4; k++)
            linear(l, fmt_name(b, "%s.self_attn.%s", t, pr[k]), h, h, 1);
        norm(l, fmt_name(b, "%s.layer_norm1", t), h);
        linear(l, fmt_name(b, "%s.mlp.fc1", t), h, inter, 1);
        linear(l, fmt_name(b, "%s.mlp.fc2", t), inter, h, 1);
        norm(l, fmt_name(b, "%s.layer_norm2", t), h);
    }
}

/* HF CLIP configs are flat for the *Model classes; a full CLIPConfig nests text_config / vision_config. */
static stdcpu_status enum_clip(const stdcpu_json *cfg, const char *arch, stdcpu_param_list *l, stdcpu_error *err)
{
    int vision = strstr(arch, "Vision") != NULL;
    int proj = strstr(arch, "WithProjection") != NULL;
    int64_t h, inter, layers, proj_dim = 0;
    STDCPU_TRY(need_int(cfg, "hidden_size", -1, &h, err));
    STDCPU_TRY(need_int(cfg, "intermediate_size", -1, &inter, err));
    STDCPU_TRY(need_int(cfg, "num_hidden_layers", -1, &layers, err));
    if (proj)
        STDCPU_TRY(need_int(cfg, "projection_dim", 512, &proj_dim, err));
    if (!vision) {
        int64_t vocab, maxpos;
        STDCPU_TRY(need_int(cfg, "vocab_size", 49408, &vocab, err));
        STDCPU_TRY(need_int(cfg, "max_position_embeddings", 77, &maxpos, err));
        add(l, "text_model.embeddings.token_embedding.weight", "", 2, vocab, h);
        add(l, "text_model.embeddings.position_embedding.weight", "", 2, maxpos, h);
        clip_layers(l, "text_model", layers, h, inter);
        norm(l, "text_model.final_layer_norm", h);
        if (proj)
            add(l, "text_projection.weight", "", 2, proj_dim, h);
    } else {
        int64_t ch, size, patch;
        STDCPU_TRY(need_int(cfg, "num_channels", 3, &ch, err));
        STDCPU_TRY(need_int(cfg, "image_size", 224, &size, err));
        STDCPU_TRY(need_int(cfg, "patch_size", 32, &patch, err));
        if (!patch || size % patch)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: image_size not a multiple of patch_size");
        int64_t np = (size / patch) * (size / patch) + 1;
        add(l, "vision_model.embeddings.class_embedding", "", 1, h);
        add(l, "vision_model.embeddings.patch_embedding.weight", "", 4, h, ch, patch, patch);
        add(l, "vision_model.embeddings.position_embedding.weight", "", 2, np, h);
        norm(l, "vision_model.pre_layrnorm", h);
        clip_layers(l, "vision_model", layers, h, inter);
        norm(l, "vision_model.post_layernorm", h);
        if (proj)
            add(l, "visual_projection.weight", "", 2, proj_dim, h);
    }
    return STDCPU_OK;
}

const char *stdcpu_config_class(const stdcpu_json *config)
{
    const char *c = stdcpu_json_get_str(config, "_class_name", NULL);
    if (c)
        return c;
    return stdcpu_json_str(stdcpu_json_at(stdcpu_json_get(config, "architectures"), 0));
}

stdcpu_status stdcpu_enum_params(const stdcpu_json *config, stdcpu_param_list *out, stdcpu_error *err)
{
    const char *cls = stdcpu_config_class(config);
    if (!cls)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "config: no _class_name or architectures");
    stdcpu_status st;
    if (!strcmp(cls, "UNet2DConditionModel"))
        st = enum_unet(config, out, err);
    else if (!strcmp(cls, "AutoencoderKL"))
        st = enum_vae(config, out, err);
    else if (!strcmp(cls, "AutoencoderTiny"))
        st = enum_taesd(config, out, err);
    else if (!strcmp(cls, "CLIPTextModel") || !strcmp(cls, "CLIPTextModelWithProjection") ||
             !strcmp(cls, "CLIPVisionModelWithProjection") || !strcmp(cls, "CLIPVisionModel"))
        st = enum_clip(config, cls, out, err);
    else
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "config: cannot enumerate parameters of '%s'", cls);
    if (st == STDCPU_OK && out->oom)
        st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "config: out of memory");
    return st;
}
