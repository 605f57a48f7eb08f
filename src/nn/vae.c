/* AutoencoderKL (golden README 3.5). See vae.h for the memory plan. */
#include "config.h"

#include "nn/vae.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/ops_gemm.h"
#include "core/ops_nn.h"
#include "nn/vae_maps.h"

#define VAE_GN_EPS 1e-6f
/* Budget of one row band's temporaries (input rows, output rows, shortcut
 * rows): large enough that the 2-row halo costs a few percent at 1024 px. */
#define VAE_BAND_BYTES ((size_t)32 << 20)

/* ---- the network's parameters --------------------------------------------- */

typedef struct vae_resnet {
    stdcpu_nn_norm norm1, norm2;
    stdcpu_conv2d_weight conv1, conv2, shortcut; /* shortcut: 1x1, only when cin != cout */
    int has_shortcut;
    size_t cin, cout;
} vae_resnet;

typedef struct vae_attn {
    stdcpu_nn_norm norm;
    stdcpu_linear_weight q, k, v, o; /* [C, C] with bias */
    size_t c;
} vae_attn;

typedef struct vae_mid {
    vae_resnet r0, r1;
    vae_attn attn;
    int has_attn;
} vae_mid;

typedef struct vae_block {
    vae_resnet res[16];
    int n_res;
    stdcpu_conv2d_weight sample; /* encoder: 3x3 stride 2 downsampler; decoder: conv after x2 upsampling */
    int has_sample;
    size_t cout;
} vae_block;

struct stdcpu_vae {
    stdcpu_vae_config cfg;
    int parts;
    size_t band_bytes; /* row-band temporaries budget (VAE_BAND_BYTES) */
    int maps_f16;      /* activation maps stored as scaled f16 (int8 models) */
    /* encoder */
    stdcpu_conv2d_weight enc_conv_in, enc_conv_out, quant_conv;
    vae_block enc[STDCPU_VAE_MAX_BLOCKS];
    vae_mid enc_mid;
    stdcpu_nn_norm enc_norm_out;
    /* decoder */
    stdcpu_conv2d_weight post_quant_conv, dec_conv_in, dec_conv_out;
    vae_block dec[STDCPU_VAE_MAX_BLOCKS];
    vae_mid dec_mid;
    stdcpu_nn_norm dec_norm_out;
};

/* ---- config ------------------------------------------------------------------ */

static int json_bool_or(const stdcpu_json *obj, const char *key, int dflt)
{
    int b;
    return stdcpu_json_bool(stdcpu_json_get(obj, key), &b) ? b : dflt;
}

static stdcpu_status check_block_types(const stdcpu_json *cfg, const char *key, const char *want, int n,
                                       stdcpu_error *err)
{
    const stdcpu_json *arr = stdcpu_json_get(cfg, key);
    if (!arr)
        return STDCPU_OK;
    if ((int)stdcpu_json_count(arr) != n)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "vae config: %s has %zu entries, block_out_channels %d", key,
                           stdcpu_json_count(arr), n);
    for (int i = 0; i < n; i++) {
        const char *s = stdcpu_json_str(stdcpu_json_at(arr, (size_t)i));
        if (!s || strcmp(s, want))
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "vae config: %s[%d] is \"%s\", only %s is supported",
                               key, i, s ? s : "?", want);
    }
    return STDCPU_OK;
}

stdcpu_status stdcpu_vae_config_parse(stdcpu_vae_config *cfg, const stdcpu_json *c, stdcpu_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (!c)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "vae: no config.json");
    const stdcpu_json *boc = stdcpu_json_get(c, "block_out_channels");
    const size_t nb = stdcpu_json_count(boc);
    if (nb < 1 || nb > STDCPU_VAE_MAX_BLOCKS)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "vae config: block_out_channels needs 1..%d entries",
                           STDCPU_VAE_MAX_BLOCKS);
    cfg->n_blocks = (int)nb;
    const int64_t groups = stdcpu_json_get_int(c, "norm_num_groups", 32);
    for (size_t i = 0; i < nb; i++) {
        int64_t v;
        if (!stdcpu_json_int(stdcpu_json_at(boc, i), &v) || v < 1 || v > 65536 || groups < 1 || v % groups)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT,
                               "vae config: block_out_channels[%zu] must be a positive multiple of norm_num_groups",
                               i);
        cfg->block_out_channels[i] = (int)v;
    }
    cfg->norm_num_groups = (int)groups;
    const int64_t lpb = stdcpu_json_get_int(c, "layers_per_block", 1);
    const int64_t inc = stdcpu_json_get_int(c, "in_channels", 3), outc = stdcpu_json_get_int(c, "out_channels", 3);
    const int64_t lc = stdcpu_json_get_int(c, "latent_channels", 4);
    if (lpb < 1 || lpb > 15 || inc < 1 || inc > 64 || outc < 1 || outc > 64 || lc < 1 || lc > 4096)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT,
                           "vae config: layers_per_block / in_channels / out_channels / latent_channels out of range");
    cfg->layers_per_block = (int)lpb;
    cfg->in_channels = (int)inc;
    cfg->out_channels = (int)outc;
    cfg->latent_channels = (int)lc;
    cfg->use_quant_conv = json_bool_or(c, "use_quant_conv", 1);
    cfg->use_post_quant_conv = json_bool_or(c, "use_post_quant_conv", 1);
    cfg->mid_block_add_attention = json_bool_or(c, "mid_block_add_attention", 1);
    cfg->scaling_factor = (float)stdcpu_json_get_double(c, "scaling_factor", 0.18215);
    cfg->shift_factor = (float)stdcpu_json_get_double(c, "shift_factor", 0.0); /* null -> 0 */
    const char *act = stdcpu_json_get_str(c, "act_fn", "silu");
    if (strcmp(act, "silu"))
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "vae config: act_fn \"%s\" (only silu)", act);
    STDCPU_TRY(check_block_types(c, "down_block_types", "DownEncoderBlock2D", cfg->n_blocks, err));
    STDCPU_TRY(check_block_types(c, "up_block_types", "UpDecoderBlock2D", cfg->n_blocks, err));
    return STDCPU_OK;
}

int stdcpu_vae_scale_factor(const stdcpu_vae_config *cfg) { return 1 << (cfg->n_blocks - 1); }

/* ---- loading ------------------------------------------------------------------ */

static stdcpu_status load_conv_chk(stdcpu_conv2d_weight *cw, const stdcpu_wsrc *w, stdcpu_precision p,
                                   const char *prefix, size_t in, size_t out, size_t k, stdcpu_error *err)
{
    size_t o, ks;
    STDCPU_TRY(stdcpu_nn_load_conv(cw, w, prefix, p, (int64_t)in, &o, NULL, &ks, err));
    if (o != out || ks != k) {
        stdcpu_conv2d_weight_free(cw);
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "vae: %s.weight is [%zu, %zu, %zu, %zu], the config implies [%zu, %zu, %zu, %zu]",
                           prefix, o, in, ks, ks, out, in, k, k);
    }
    return STDCPU_OK;
}

static stdcpu_status load_resnet(vae_resnet *r, const stdcpu_wsrc *w, stdcpu_precision p, const char *prefix,
                                 size_t cin, size_t cout, stdcpu_error *err)
{
    char name[512];
    r->cin = cin;
    r->cout = cout;
    snprintf(name, sizeof name, "%s.norm1", prefix);
    STDCPU_TRY(stdcpu_nn_load_norm(&r->norm1, w, name, (int64_t)cin, err));
    snprintf(name, sizeof name, "%s.conv1", prefix);
    STDCPU_TRY(load_conv_chk(&r->conv1, w, p, name, cin, cout, 3, err));
    snprintf(name, sizeof name, "%s.norm2", prefix);
    STDCPU_TRY(stdcpu_nn_load_norm(&r->norm2, w, name, (int64_t)cout, err));
    snprintf(name, sizeof name, "%s.conv2", prefix);
    STDCPU_TRY(load_conv_chk(&r->conv2, w, p, name, cout, cout, 3, err));
    if (cin != cout) {
        snprintf(name, sizeof name, "%s.conv_shortcut", prefix);
        STDCPU_TRY(load_conv_chk(&r->shortcut, w, p, name, cin, cout, 1, err));
        r->has_shortcut = 1;
    }
    return STDCPU_OK;
}

static void free_resnet(vae_resnet *r)
{
    stdcpu_nn_norm_free(&r->norm1);
    stdcpu_nn_norm_free(&r->norm2);
    stdcpu_conv2d_weight_free(&r->conv1);
    stdcpu_conv2d_weight_free(&r->conv2);
    stdcpu_conv2d_weight_free(&r->shortcut);
}

/* to_q/to_k/to_v/to_out.0, or the older query/key/value/proj_attn. */
static stdcpu_status load_attn_linear(stdcpu_linear_weight *lw, const stdcpu_wsrc *w, stdcpu_precision p,
                                      const char *prefix, const char *name, const char *old, size_t c,
                                      stdcpu_error *err)
{
    char full[512], probe[600];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    snprintf(probe, sizeof probe, "%s.weight", full);
    if (!stdcpu_wsrc_has(w, probe)) {
        char legacy[512];
        snprintf(legacy, sizeof legacy, "%s.%s", prefix, old);
        snprintf(probe, sizeof probe, "%s.weight", legacy);
        if (stdcpu_wsrc_has(w, probe))
            snprintf(full, sizeof full, "%s", legacy);
    }
    size_t n;
    STDCPU_TRY(stdcpu_nn_load_linear(lw, w, full, p, (int64_t)c, &n, NULL, err));
    if (n != c) {
        stdcpu_linear_weight_free(lw);
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "vae: %s has %zu outputs, expected %zu", full, n, c);
    }
    if (!lw->bias) {
        stdcpu_linear_weight_free(lw);
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "vae: %s has no bias", full);
    }
    return STDCPU_OK;
}

static stdcpu_status load_mid(vae_mid *m, const stdcpu_wsrc *w, stdcpu_precision p, const char *prefix, size_t c,
                              int attn, stdcpu_error *err)
{
    char name[512];
    snprintf(name, sizeof name, "%s.resnets.0", prefix);
    STDCPU_TRY(load_resnet(&m->r0, w, p, name, c, c, err));
    snprintf(name, sizeof name, "%s.resnets.1", prefix);
    STDCPU_TRY(load_resnet(&m->r1, w, p, name, c, c, err));
    if (!attn)
        return STDCPU_OK;
    m->has_attn = 1;
    m->attn.c = c;
    char ap[256];
    snprintf(ap, sizeof ap, "%s.attentions.0", prefix);
    snprintf(name, sizeof name, "%s.group_norm", ap);
    STDCPU_TRY(stdcpu_nn_load_norm(&m->attn.norm, w, name, (int64_t)c, err));
    STDCPU_TRY(load_attn_linear(&m->attn.q, w, p, ap, "to_q", "query", c, err));
    STDCPU_TRY(load_attn_linear(&m->attn.k, w, p, ap, "to_k", "key", c, err));
    STDCPU_TRY(load_attn_linear(&m->attn.v, w, p, ap, "to_v", "value", c, err));
    STDCPU_TRY(load_attn_linear(&m->attn.o, w, p, ap, "to_out.0", "proj_attn", c, err));
    return STDCPU_OK;
}

static void free_mid(vae_mid *m)
{
    free_resnet(&m->r0);
    free_resnet(&m->r1);
    stdcpu_nn_norm_free(&m->attn.norm);
    stdcpu_linear_weight_free(&m->attn.q);
    stdcpu_linear_weight_free(&m->attn.k);
    stdcpu_linear_weight_free(&m->attn.v);
    stdcpu_linear_weight_free(&m->attn.o);
}

static stdcpu_status load_encoder(stdcpu_vae *v, const stdcpu_wsrc *w, stdcpu_precision p, stdcpu_error *err)
{
    const stdcpu_vae_config *c = &v->cfg;
    size_t ch = (size_t)c->block_out_channels[0];
    STDCPU_TRY(load_conv_chk(&v->enc_conv_in, w, p, "encoder.conv_in", (size_t)c->in_channels, ch, 3, err));
    char name[512];
    for (int i = 0; i < c->n_blocks; i++) {
        vae_block *b = &v->enc[i];
        const size_t out = (size_t)c->block_out_channels[i];
        b->n_res = c->layers_per_block;
        b->cout = out;
        for (int j = 0; j < b->n_res; j++) {
            snprintf(name, sizeof name, "encoder.down_blocks.%d.resnets.%d", i, j);
            STDCPU_TRY(load_resnet(&b->res[j], w, p, name, j == 0 ? ch : out, out, err));
        }
        ch = out;
        if (i < c->n_blocks - 1) {
            snprintf(name, sizeof name, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            STDCPU_TRY(load_conv_chk(&b->sample, w, p, name, ch, ch, 3, err));
            b->has_sample = 1;
        }
    }
    STDCPU_TRY(load_mid(&v->enc_mid, w, p, "encoder.mid_block", ch, c->mid_block_add_attention, err));
    STDCPU_TRY(stdcpu_nn_load_norm(&v->enc_norm_out, w, "encoder.conv_norm_out", (int64_t)ch, err));
    const size_t lc2 = 2 * (size_t)c->latent_channels;
    STDCPU_TRY(load_conv_chk(&v->enc_conv_out, w, p, "encoder.conv_out", ch, lc2, 3, err));
    if (c->use_quant_conv)
        STDCPU_TRY(load_conv_chk(&v->quant_conv, w, p, "quant_conv", lc2, lc2, 1, err));
    return STDCPU_OK;
}

static stdcpu_status load_decoder(stdcpu_vae *v, const stdcpu_wsrc *w, stdcpu_precision p, stdcpu_error *err)
{
    const stdcpu_vae_config *c = &v->cfg;
    const size_t lc = (size_t)c->latent_channels;
    if (c->use_post_quant_conv)
        STDCPU_TRY(load_conv_chk(&v->post_quant_conv, w, p, "post_quant_conv", lc, lc, 1, err));
    size_t ch = (size_t)c->block_out_channels[c->n_blocks - 1];
    STDCPU_TRY(load_conv_chk(&v->dec_conv_in, w, p, "decoder.conv_in", lc, ch, 3, err));
    STDCPU_TRY(load_mid(&v->dec_mid, w, p, "decoder.mid_block", ch, c->mid_block_add_attention, err));
    char name[512];
    for (int i = 0; i < c->n_blocks; i++) {
        vae_block *b = &v->dec[i];
        const size_t out = (size_t)c->block_out_channels[c->n_blocks - 1 - i];
        b->n_res = c->layers_per_block + 1;
        b->cout = out;
        for (int j = 0; j < b->n_res; j++) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, j);
            STDCPU_TRY(load_resnet(&b->res[j], w, p, name, j == 0 ? ch : out, out, err));
        }
        ch = out;
        if (i < c->n_blocks - 1) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            STDCPU_TRY(load_conv_chk(&b->sample, w, p, name, ch, ch, 3, err));
            b->has_sample = 1;
        }
    }
    STDCPU_TRY(stdcpu_nn_load_norm(&v->dec_norm_out, w, "decoder.conv_norm_out", (int64_t)ch, err));
    STDCPU_TRY(load_conv_chk(&v->dec_conv_out, w, p, "decoder.conv_out", ch, (size_t)c->out_channels, 3, err));
    return STDCPU_OK;
}

void stdcpu_vae_free(stdcpu_vae *v)
{
    if (!v)
        return;
    stdcpu_conv2d_weight_free(&v->enc_conv_in);
    stdcpu_conv2d_weight_free(&v->enc_conv_out);
    stdcpu_conv2d_weight_free(&v->quant_conv);
    stdcpu_conv2d_weight_free(&v->post_quant_conv);
    stdcpu_conv2d_weight_free(&v->dec_conv_in);
    stdcpu_conv2d_weight_free(&v->dec_conv_out);
    for (int i = 0; i < STDCPU_VAE_MAX_BLOCKS; i++) {
        for (int j = 0; j < 16; j++) {
            free_resnet(&v->enc[i].res[j]);
            free_resnet(&v->dec[i].res[j]);
        }
        stdcpu_conv2d_weight_free(&v->enc[i].sample);
        stdcpu_conv2d_weight_free(&v->dec[i].sample);
    }
    free_mid(&v->enc_mid);
    free_mid(&v->dec_mid);
    stdcpu_nn_norm_free(&v->enc_norm_out);
    stdcpu_nn_norm_free(&v->dec_norm_out);
    free(v);
}

stdcpu_status stdcpu_vae_load(stdcpu_vae **out, const stdcpu_wsrc *w, stdcpu_precision p, int parts,
                              stdcpu_error *err)
{
    *out = NULL;
    if (!w || !(parts & STDCPU_VAE_BOTH))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "vae: no weights or no part to load");
    stdcpu_vae *v = calloc(1, sizeof *v);
    if (!v)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "vae: out of memory");
    stdcpu_status st = stdcpu_vae_config_parse(&v->cfg, stdcpu_wsrc_config(w), err);
    v->parts = parts & STDCPU_VAE_BOTH;
    v->band_bytes = VAE_BAND_BYTES;
    v->maps_f16 = p == STDCPU_PREC_INT8;
    if (st == STDCPU_OK && (parts & STDCPU_VAE_ENCODER))
        st = load_encoder(v, w, p, err);
    if (st == STDCPU_OK && (parts & STDCPU_VAE_DECODER))
        st = load_decoder(v, w, p, err);
    if (st != STDCPU_OK) {
        stdcpu_vae_free(v);
        return st;
    }
    *out = v;
    return STDCPU_OK;
}

const stdcpu_vae_config *stdcpu_vae_get_config(const stdcpu_vae *v) { return &v->cfg; }

void stdcpu_vae_set_band_bytes(stdcpu_vae *v, size_t bytes) { v->band_bytes = bytes ? bytes : VAE_BAND_BYTES; }
void stdcpu_vae_set_maps_f16(stdcpu_vae *v, int on) { v->maps_f16 = on != 0; }

/* ---- blocks --------------------------------------------------------------------------
 * Maps live in a vctx stack block (nn/vae_maps.h), f32 or scaled f16. */

#define VC_ALLOC(ptr, expr)                                                \
    do {                                                                   \
        if (!((ptr) = (expr)))                                             \
            return c->err ? c->err->status : STDCPU_ERR_NOMEM;             \
    } while (0)

static size_t map_elems(size_t B, size_t H, size_t W, size_t C) { return B * H * W * C; }

/* *x [B, H, W, cin] is the top of the stack; on return *x holds [B, H, W, cout]. */
static stdcpu_status resnet_fwd(vctx *c, const vae_resnet *r, void **xp, size_t B, size_t H, size_t W, size_t G)
{
    void *x = *xp, *h;
    const size_t mark = vc_below(c, map_elems(B, H, W, r->cin), r->cin);
    const size_t n_out = map_elems(B, H, W, r->cout);
    float *scale, *shift;
    VC_ALLOC(scale, vc_f32(c, B * (r->cin > r->cout ? r->cin : r->cout)));
    VC_ALLOC(shift, vc_f32(c, B * (r->cin > r->cout ? r->cin : r->cout)));
    STDCPU_TRY(vmap_gn_affine(c, x, B, H * W, r->cin, G, VAE_GN_EPS, &r->norm1, scale, shift));
    VC_ALLOC(h, vc_map(c, n_out, r->cout));
    const vin in1 = {.kind = VIN_GN_SILU, .x = x, .C = r->cin, .H = H, .W = W, .scale = scale, .shift = shift};
    STDCPU_TRY(vmap_conv_bands(c, &r->conv1, &in1, B, h, 0, NULL, NULL, NULL, 0));
    STDCPU_TRY(vmap_gn_affine(c, h, B, H * W, r->cout, G, VAE_GN_EPS, &r->norm2, scale, shift));
    const vin in2 = {.kind = VIN_GN_SILU, .x = h, .C = r->cout, .H = H, .W = W, .scale = scale, .shift = shift};
    if (!r->has_shortcut) {
        STDCPU_TRY(vmap_conv_bands(c, &r->conv2, &in2, B, x, 0, x, NULL, NULL, 0));
        vc_reset(c, mark);
        *xp = vc_map(c, n_out, r->cout);
    } else if (r->cout <= r->cin) {
        STDCPU_TRY(vmap_conv_bands(c, &r->conv2, &in2, B, x, 0, NULL, &r->shortcut, x, r->cin));
        vc_reset(c, mark);
        *xp = vc_map(c, n_out, r->cout);
    } else {
        void *out;
        VC_ALLOC(out, vc_map(c, n_out, r->cout));
        STDCPU_TRY(vmap_conv_bands(c, &r->conv2, &in2, B, out, 0, NULL, &r->shortcut, x, r->cin));
        *xp = vc_keep(c, mark, out, n_out, r->cout);
    }
    return STDCPU_OK;
}

/* Single-head self-attention over the H*W tokens, + residual, in place on the
 * map x. Runs at the latent resolution, so its f32 copies are small. */
static stdcpu_status attn_fwd(vctx *c, const vae_attn *a, void *x, size_t B, size_t H, size_t W, size_t G)
{
    const size_t T = H * W, C = a->c, n = B * T * C;
    const size_t mark = vc_mark(c);
    float *xf, *nx, *q, *k, *v, *scratch, *scale, *shift;
    VC_ALLOC(xf, vc_f32(c, n));
    VC_ALLOC(nx, vc_f32(c, n)); /* normalised tokens [B, T, C], later the attention output */
    VC_ALLOC(q, vc_f32(c, n));
    VC_ALLOC(k, vc_f32(c, n));
    VC_ALLOC(v, vc_f32(c, n));
    VC_ALLOC(scale, vc_f32(c, B * C));
    VC_ALLOC(shift, vc_f32(c, B * C));
    stdcpu_attention_desc d = {.batch = B, .heads = 1, .head_dim = C, .tq = T, .tk = T, .q = q, .k = k, .v = v,
                               .o = nx, .scale = (float)(1.0 / sqrt((double)C))};
    d.scratch_floats = stdcpu_attention_scratch_floats(&d, c->nth);
    VC_ALLOC(scratch, vc_f32(c, d.scratch_floats));
    d.scratch = scratch;
    stdcpu_status st = STDCPU_OK;
    if (!c->plan) {
        vmap_load(c, x, C, 0, B * T, xf);
        if ((st = stdcpu_group_norm(c->pool, NULL, xf, B, H, W, C, G, VAE_GN_EPS, a->norm.gamma, a->norm.beta, 0,
                                    nx, c->err)) ||
            (st = stdcpu_linear(c->pool, &a->q, nx, q, B * T, NULL, STDCPU_ACT_NONE, c->err)) ||
            (st = stdcpu_linear(c->pool, &a->k, nx, k, B * T, NULL, STDCPU_ACT_NONE, c->err)) ||
            (st = stdcpu_linear(c->pool, &a->v, nx, v, B * T, NULL, STDCPU_ACT_NONE, c->err)) ||
            (st = stdcpu_attention(c->pool, NULL, &d, c->err)) ||
            (st = stdcpu_linear(c->pool, &a->o, nx, xf, B * T, xf, STDCPU_ACT_NONE, c->err)))
            goto done;
        vmap_store(c, x, C, 0, B * T, xf);
    }
done:
    vc_reset(c, mark);
    return st;
}

static stdcpu_status mid_fwd(vctx *c, const vae_mid *m, void **x, size_t B, size_t H, size_t W, size_t G)
{
    STDCPU_TRY(resnet_fwd(c, &m->r0, x, B, H, W, G));
    if (m->has_attn)
        STDCPU_TRY(attn_fwd(c, &m->attn, *x, B, H, W, G));
    return resnet_fwd(c, &m->r1, x, B, H, W, G);
}

/* A same-size convolution (1x1 or 3x3 pad 1) whose output replaces the top map. */
static stdcpu_status conv_replace(vctx *c, const stdcpu_conv2d_weight *cw, void **xp, size_t B, size_t H, size_t W)
{
    const size_t mark = vc_below(c, map_elems(B, H, W, cw->in_ch), cw->in_ch);
    const size_t n = map_elems(B, H, W, cw->out_ch);
    void *y;
    VC_ALLOC(y, vc_map(c, n, cw->out_ch));
    const vin in = {.kind = VIN_PLAIN, .x = *xp, .C = cw->in_ch, .H = H, .W = W};
    STDCPU_TRY(vmap_conv_bands(c, cw, &in, B, y, 0, NULL, NULL, NULL, 0));
    *xp = vc_keep(c, mark, y, n, cw->out_ch);
    return STDCPU_OK;
}

/* GroupNorm + SiLU + 3x3 conv (conv_norm_out, conv_out): out [B, H, W, O] f32
 * (NHWC), allocated above the map, which stays on the stack. */
static stdcpu_status norm_conv_out(vctx *c, const stdcpu_nn_norm *nm, const stdcpu_conv2d_weight *cw, void *x,
                                   size_t B, size_t H, size_t W, size_t G, float **out)
{
    const size_t C = cw->in_ch;
    float *scale, *shift;
    VC_ALLOC(scale, vc_f32(c, B * C));
    VC_ALLOC(shift, vc_f32(c, B * C));
    STDCPU_TRY(vmap_gn_affine(c, x, B, H * W, C, G, VAE_GN_EPS, nm, scale, shift));
    VC_ALLOC(*out, vc_f32(c, map_elems(B, H, W, cw->out_ch)));
    const vin in = {.kind = VIN_GN_SILU, .x = x, .C = C, .H = H, .W = W, .scale = scale, .shift = shift};
    return vmap_conv_bands(c, cw, &in, B, *out, 1, NULL, NULL, NULL, 0);
}

/* An NCHW f32 input [B, C, H, W] as a new map on the stack. */
static void *map_from_nchw(vctx *c, const float *in, size_t B, size_t C, size_t H, size_t W)
{
    const size_t n = map_elems(B, H, W, C);
    void *x = vc_map(c, n, C);
    if (!x || c->plan)
        return x;
    const size_t mark = vc_mark(c);
    float *t = vc_f32(c, C * H * W); /* one batch item at a time */
    if (!t)
        return NULL;
    for (size_t b = 0; b < B; b++) {
        stdcpu_nchw_to_nhwc(in + b * C * H * W, t, 1, C, H, W);
        vmap_store(c, x, C, b * H * W, H * W, t);
    }
    vc_reset(c, mark);
    return x;
}

/* ---- encoder / decoder ------------------------------------------------------------------------ */

static stdcpu_status encode_run(vctx *c, const stdcpu_vae *v, const float *image, size_t B, size_t H, size_t W,
                                float *moments)
{
    const stdcpu_vae_config *cfg = &v->cfg;
    const size_t G = (size_t)cfg->norm_num_groups;
    void *x;
    VC_ALLOC(x, map_from_nchw(c, image, B, (size_t)cfg->in_channels, H, W));
    STDCPU_TRY(conv_replace(c, &v->enc_conv_in, &x, B, H, W));
    for (int i = 0; i < cfg->n_blocks; i++) {
        const vae_block *b = &v->enc[i];
        for (int j = 0; j < b->n_res; j++)
            STDCPU_TRY(resnet_fwd(c, &b->res[j], &x, B, H, W, G));
        if (!b->has_sample)
            continue;
        const size_t C = b->cout;
        const size_t mark = vc_below(c, map_elems(B, H, W, C), C);
        const size_t n = map_elems(B, H / 2, W / 2, C);
        void *y;
        VC_ALLOC(y, vc_map(c, n, C));
        STDCPU_TRY(vmap_down2_bands(c, &b->sample, x, B, H, W, y));
        H /= 2;
        W /= 2;
        x = vc_keep(c, mark, y, n, C);
    }
    STDCPU_TRY(mid_fwd(c, &v->enc_mid, &x, B, H, W, G));
    float *out;
    STDCPU_TRY(norm_conv_out(c, &v->enc_norm_out, &v->enc_conv_out, x, B, H, W, G, &out));
    const size_t lc2 = 2 * (size_t)cfg->latent_channels;
    if (cfg->use_quant_conv) {
        float *q;
        VC_ALLOC(q, vc_f32(c, map_elems(B, H, W, lc2)));
        if (!c->plan)
            STDCPU_TRY(stdcpu_conv2d(c->pool, &v->quant_conv, out, B, H, W, 1, 0, q, NULL, STDCPU_ACT_NONE, c->err));
        out = q;
    }
    if (!c->plan)
        stdcpu_nhwc_to_nchw(out, moments, B, lc2, H, W);
    return STDCPU_OK;
}

static stdcpu_status decode_run(vctx *c, const stdcpu_vae *v, const float *z, size_t B, size_t H, size_t W,
                                float *image)
{
    const stdcpu_vae_config *cfg = &v->cfg;
    const size_t G = (size_t)cfg->norm_num_groups, lc = (size_t)cfg->latent_channels;
    void *x;
    VC_ALLOC(x, map_from_nchw(c, z, B, lc, H, W));
    if (cfg->use_post_quant_conv)
        STDCPU_TRY(conv_replace(c, &v->post_quant_conv, &x, B, H, W));
    STDCPU_TRY(conv_replace(c, &v->dec_conv_in, &x, B, H, W));
    STDCPU_TRY(mid_fwd(c, &v->dec_mid, &x, B, H, W, G));
    for (int i = 0; i < cfg->n_blocks; i++) {
        const vae_block *b = &v->dec[i];
        for (int j = 0; j < b->n_res; j++)
            STDCPU_TRY(resnet_fwd(c, &b->res[j], &x, B, H, W, G));
        if (!b->has_sample)
            continue;
        const size_t C = b->cout;
        const size_t mark = vc_below(c, map_elems(B, H, W, C), C);
        const size_t n = map_elems(B, 2 * H, 2 * W, C);
        void *y;
        VC_ALLOC(y, vc_map(c, n, C));
        const vin in = {.kind = VIN_UP2, .x = x, .C = C, .H = 2 * H, .W = 2 * W};
        STDCPU_TRY(vmap_conv_bands(c, &b->sample, &in, B, y, 0, NULL, NULL, NULL, 0));
        H *= 2;
        W *= 2;
        x = vc_keep(c, mark, y, n, C);
    }
    float *out;
    STDCPU_TRY(norm_conv_out(c, &v->dec_norm_out, &v->dec_conv_out, x, B, H, W, G, &out));
    if (!c->plan)
        stdcpu_nhwc_to_nchw(out, image, B, (size_t)cfg->out_channels, H, W);
    return STDCPU_OK;
}
typedef stdcpu_status (*vae_run_fn)(vctx *c, const stdcpu_vae *v, const float *in, size_t B, size_t H, size_t W,
                                    float *out);

static int sizes_ok(size_t B, size_t H, size_t W)
{
    return B >= 1 && H >= 1 && W >= 1 && B <= 4096 && H <= 65536 && W <= 65536 &&
           (double)B * (double)H * (double)W <= (double)((size_t)1 << 40);
}

static stdcpu_status plan(const stdcpu_vae *v, vae_run_fn run, size_t B, size_t H, size_t W, int nth, size_t *peak,
                          stdcpu_error *err)
{
    vctx c = {.pool = NULL, .plan = 1, .nth = nth, .band_bytes = v->band_bytes,
              .f16 = v->maps_f16, .cap = SIZE_MAX, .err = err};
    STDCPU_TRY(run(&c, v, NULL, B, H, W, NULL));
    *peak = c.peak;
    return STDCPU_OK;
}

static stdcpu_status execute(const stdcpu_vae *v, vae_run_fn run, stdcpu_pool *pool, const float *in, size_t B,
                             size_t H, size_t W, float *out, stdcpu_error *err)
{
    const int nth = pool ? stdcpu_pool_threads(pool) : 1;
    size_t peak;
    STDCPU_TRY(plan(v, run, B, H, W, nth, &peak, err));
    unsigned char *base = stdcpu_aligned_alloc(peak);
    if (!base)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "vae: cannot allocate %zu bytes of activations", peak);
    vctx c = {.pool = pool, .plan = 0, .nth = nth, .band_bytes = v->band_bytes,
              .f16 = v->maps_f16, .base = base, .cap = peak, .err = err};
    stdcpu_status st = run(&c, v, in, B, H, W, out);
    stdcpu_aligned_free(base);
    return st;
}

size_t stdcpu_vae_encode_peak_bytes(const stdcpu_vae *v, size_t B, size_t H, size_t W)
{
    const size_t f = (size_t)stdcpu_vae_scale_factor(&v->cfg);
    size_t peak = 0;
    if (!(v->parts & STDCPU_VAE_ENCODER) || !sizes_ok(B, H, W) || H % f || W % f ||
        plan(v, encode_run, B, H, W, stdcpu_default_threads(), &peak, NULL) != STDCPU_OK)
        return 0;
    return peak;
}

size_t stdcpu_vae_decode_peak_bytes(const stdcpu_vae *v, size_t B, size_t h, size_t w)
{
    size_t peak = 0;
    if (!(v->parts & STDCPU_VAE_DECODER) || !sizes_ok(B, h, w) ||
        plan(v, decode_run, B, h, w, stdcpu_default_threads(), &peak, NULL) != STDCPU_OK)
        return 0;
    return peak;
}

stdcpu_status stdcpu_vae_encode(const stdcpu_vae *v, stdcpu_pool *pool, const float *image, size_t B, size_t H,
                                size_t W, float *moments, stdcpu_error *err)
{
    if (!v || !image || !moments)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "vae encode: NULL argument");
    if (!(v->parts & STDCPU_VAE_ENCODER))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "vae encode: the encoder was not loaded");
    const size_t f = (size_t)stdcpu_vae_scale_factor(&v->cfg);
    if (!sizes_ok(B, H, W) || H % f || W % f)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "vae encode: %zux%zu (batch %zu) is not a positive multiple of %zu",
                           H, W, B, f);
    return execute(v, encode_run, pool, image, B, H, W, moments, err);
}

stdcpu_status stdcpu_vae_decode(const stdcpu_vae *v, stdcpu_pool *pool, const float *z, size_t B, size_t h, size_t w,
                                float *image, stdcpu_error *err)
{
    if (!v || !z || !image)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "vae decode: NULL argument");
    if (!(v->parts & STDCPU_VAE_DECODER))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "vae decode: the decoder was not loaded");
    if (!sizes_ok(B, h, w))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "vae decode: bad latent size %zux%zu (batch %zu)", h, w, B);
    return execute(v, decode_run, pool, z, B, h, w, image, err);
}

void stdcpu_vae_posterior(const float *moments, size_t B, size_t lc, size_t hw, const float *eps, float *mean,
                          float *logvar, float *std, float *sample)
{
    for (size_t b = 0; b < B; b++) {
        const float *m = moments + b * 2 * lc * hw, *lv = m + lc * hw;
        for (size_t i = 0; i < lc * hw; i++) {
            float l = lv[i];
            l = l < -30.0f ? -30.0f : l > 20.0f ? 20.0f : l;
            const float s = expf(0.5f * l);
            const size_t o = b * lc * hw + i;
            if (mean)
                mean[o] = m[i];
            if (logvar)
                logvar[o] = l;
            if (std)
                std[o] = s;
            if (sample && eps)
                sample[o] = m[i] + s * eps[o];
        }
    }
}
