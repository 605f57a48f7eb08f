/* UNet2DConditionModel: the architecture from config.json, weight loading
 * (with fused q|k|v and k|v projections), IP-Adapter layers and scales, and
 * the public entry points (README 3.4, 3.7). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/quant.h"
#include "nn/unet_internal.h"

#define UNET_MAX_BLOCKS 8

/* ---- config ---------------------------------------------------------------- */

/* A value that is an int (same for every block) or a list of nb ints. */
static stdcpu_status per_block(const stdcpu_json *cfg, const char *key, size_t nb, size_t *out, int64_t dflt,
                               stdcpu_error *err)
{
    const stdcpu_json *v = stdcpu_json_get(cfg, key);
    int64_t x;
    if (!v || v->type == STDCPU_JSON_NULL) {
        if (dflt < 0)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet config: %s is missing", key);
        for (size_t i = 0; i < nb; i++)
            out[i] = (size_t)dflt;
        return STDCPU_OK;
    }
    if (stdcpu_json_int(v, &x)) {
        if (x < 1)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet config: %s = %lld", key, (long long)x);
        for (size_t i = 0; i < nb; i++)
            out[i] = (size_t)x;
        return STDCPU_OK;
    }
    if (v->type != STDCPU_JSON_ARRAY || stdcpu_json_count(v) != nb)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet config: %s must be an int or a list of %zu ints", key, nb);
    for (size_t i = 0; i < nb; i++) {
        if (!stdcpu_json_int(stdcpu_json_at(v, i), &x) || x < 1)
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: %s[%zu] is not a positive int", key, i);
        out[i] = (size_t)x;
    }
    return STDCPU_OK;
}

static int is_null_or_absent(const stdcpu_json *cfg, const char *key)
{
    const stdcpu_json *v = stdcpu_json_get(cfg, key);
    return !v || v->type == STDCPU_JSON_NULL;
}

/* Refuses the config options this implementation does not cover, so an
 * unusual UNet fails clearly instead of computing something else. */
static stdcpu_status check_supported(const stdcpu_json *c, stdcpu_error *err)
{
    static const char *const must_be_null[] = {"class_embed_type",      "encoder_hid_dim",     "time_cond_proj_dim",
                                               "num_class_embeds",      "time_embedding_dim",  "timestep_post_act",
                                               "time_embedding_act_fn", "cross_attention_norm", NULL};
    for (size_t i = 0; must_be_null[i]; i++)
        if (!is_null_or_absent(c, must_be_null[i]))
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: %s is not supported", must_be_null[i]);
    const char *s;
    if ((s = stdcpu_json_get_str(c, "act_fn", "silu")) && strcmp(s, "silu"))
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: act_fn %s is not supported", s);
    if ((s = stdcpu_json_get_str(c, "resnet_time_scale_shift", "default")) && strcmp(s, "default"))
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: resnet_time_scale_shift %s", s);
    if ((s = stdcpu_json_get_str(c, "time_embedding_type", "positional")) && strcmp(s, "positional"))
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: time_embedding_type %s", s);
    if ((s = stdcpu_json_get_str(c, "attention_type", "default")) && strcmp(s, "default"))
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: attention_type %s", s);
    int b = 0;
    const stdcpu_json *v;
    if ((v = stdcpu_json_get(c, "center_input_sample")) && stdcpu_json_bool(v, &b) && b)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: center_input_sample");
    if ((v = stdcpu_json_get(c, "dual_cross_attention")) && stdcpu_json_bool(v, &b) && b)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: dual_cross_attention");
    if ((v = stdcpu_json_get(c, "only_cross_attention")) && v->type != STDCPU_JSON_BOOL)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: per-block only_cross_attention");
    if (v && stdcpu_json_bool(v, &b) && b)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: only_cross_attention");
    if (!is_null_or_absent(c, "reverse_transformer_layers_per_block"))
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: reverse_transformer_layers_per_block");
    if (stdcpu_json_get_double(c, "mid_block_scale_factor", 1.0) != 1.0 ||
        stdcpu_json_get_double(c, "resnet_out_scale_factor", 1.0) != 1.0)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: output scale factors other than 1");
    if (stdcpu_json_get_int(c, "downsample_padding", 1) != 1)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: downsample_padding != 1");
    const char *mid = stdcpu_json_get_str(c, "mid_block_type", "UNetMidBlock2DCrossAttn");
    if (!mid || strcmp(mid, "UNetMidBlock2DCrossAttn"))
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: mid_block_type %s", mid ? mid : "null");
    return STDCPU_OK;
}

static void *xcalloc(size_t n, size_t sz)
{
    return calloc(n ? n : 1, sz);
}

static stdcpu_status make_transformer(unet_transformer *t, size_t c, size_t heads, size_t depth, stdcpu_error *err)
{
    if (c % heads)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet config: %zu channels do not split into %zu heads", c, heads);
    t->c = c;
    t->heads = heads;
    t->head_dim = c / heads;
    t->depth = depth;
    t->blocks = xcalloc(depth, sizeof *t->blocks);
    if (!t->blocks)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < depth; k++) {
        t->blocks[k].c = c;
        t->blocks[k].ff_inner = 4 * c;
    }
    return STDCPU_OK;
}

/* Fills every shape field of u from config.json (no weights). */
stdcpu_status unet_build(stdcpu_unet *u, const stdcpu_json *c, stdcpu_error *err)
{
    if (!c || c->type != STDCPU_JSON_OBJECT)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet: no config.json object");
    STDCPU_TRY(check_supported(c, err));
    unet_cfg *g = &u->cfg;
    const stdcpu_json *boc = stdcpu_json_get(c, "block_out_channels");
    const stdcpu_json *dtypes = stdcpu_json_get(c, "down_block_types");
    const stdcpu_json *utypes = stdcpu_json_get(c, "up_block_types");
    g->nb = stdcpu_json_count(boc);
    if (g->nb < 1 || g->nb > UNET_MAX_BLOCKS || stdcpu_json_count(dtypes) != g->nb || stdcpu_json_count(utypes) != g->nb)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT,
                           "unet config: block_out_channels / down_block_types / up_block_types disagree");
    const size_t nb = g->nb;
    STDCPU_TRY(per_block(c, "block_out_channels", nb, g->boc, -1, err));
    size_t heads[UNET_MAX_BLOCKS], depth[UNET_MAX_BLOCKS], xdim[UNET_MAX_BLOCKS];
    /* diffusers' legacy naming: attention_head_dim is the head count unless
     * num_attention_heads is given. */
    if (!is_null_or_absent(c, "num_attention_heads"))
        STDCPU_TRY(per_block(c, "num_attention_heads", nb, heads, -1, err));
    else
        STDCPU_TRY(per_block(c, "attention_head_dim", nb, heads, 8, err));
    STDCPU_TRY(per_block(c, "transformer_layers_per_block", nb, depth, 1, err));
    STDCPU_TRY(per_block(c, "cross_attention_dim", nb, xdim, 1280, err));
    for (size_t i = 1; i < nb; i++)
        if (xdim[i] != xdim[0])
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: per-block cross_attention_dim");
    g->X = xdim[0];
    int64_t L = stdcpu_json_get_int(c, "layers_per_block", 2);
    int64_t in_ch = stdcpu_json_get_int(c, "in_channels", 4), out_ch = stdcpu_json_get_int(c, "out_channels", 4);
    int64_t G = stdcpu_json_get_int(c, "norm_num_groups", 32);
    if (L < 1 || L > 16 || in_ch < 1 || out_ch < 1 || G < 1)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet config: bad layers_per_block / channels / norm_num_groups");
    g->L = (size_t)L;
    g->in_ch = (size_t)in_ch;
    g->out_ch = (size_t)out_ch;
    g->G = (size_t)G;
    g->norm_eps = (float)stdcpu_json_get_double(c, "norm_eps", 1e-5);
    g->conv_in_k = (int)stdcpu_json_get_int(c, "conv_in_kernel", 3);
    g->conv_out_k = (int)stdcpu_json_get_int(c, "conv_out_kernel", 3);
    if (g->conv_in_k != 3 || g->conv_out_k != 3)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: conv_in/conv_out kernels other than 3");
    int flip = 1;
    stdcpu_json_bool(stdcpu_json_get(c, "flip_sin_to_cos"), &flip);
    g->flip_sin_to_cos = flip;
    g->freq_shift = (float)stdcpu_json_get_double(c, "freq_shift", 0.0);
    g->temb_dim = 4 * g->boc[0];
    for (size_t i = 0; i < nb; i++)
        if (g->boc[i] % g->G)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet config: %zu channels not divisible by %zu groups",
                               g->boc[i], g->G);
    const char *add = stdcpu_json_get_str(c, "addition_embed_type", NULL);
    if (add) {
        if (strcmp(add, "text_time"))
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: addition_embed_type %s", add);
        g->text_time = 1;
        int64_t A = stdcpu_json_get_int(c, "addition_time_embed_dim", 0);
        int64_t P = stdcpu_json_get_int(c, "projection_class_embeddings_input_dim", 0);
        if (A < 2 || A % 2 || P <= 6 * A)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet config: bad text_time embedding sizes");
        g->add_time_dim = (size_t)A;
        g->add_in_dim = (size_t)P;
    }
    if (g->boc[0] % 2)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet config: odd block_out_channels[0]");

    /* Down path, tracking the skip stack's channels to size the up path. */
    size_t skip_ch[1 + UNET_MAX_BLOCKS * 17], n_skip = 0;
    skip_ch[n_skip++] = g->boc[0];
    u->down = xcalloc(nb, sizeof *u->down);
    u->up = xcalloc(nb, sizeof *u->up);
    if (!u->down || !u->up)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    size_t n_attn2 = 0;
    for (size_t i = 0; i < nb; i++) {
        unet_down *d = &u->down[i];
        const char *type = stdcpu_json_str(stdcpu_json_at(dtypes, i));
        if (!type || (strcmp(type, "DownBlock2D") && strcmp(type, "CrossAttnDownBlock2D")))
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: down block type %s", type ? type : "?");
        d->cross = !strcmp(type, "CrossAttnDownBlock2D");
        d->cin = i ? g->boc[i - 1] : g->boc[0];
        d->cout = g->boc[i];
        d->has_down = i + 1 < nb;
        d->resnets = xcalloc(g->L, sizeof *d->resnets);
        if (!d->resnets)
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        if (d->cross && !(d->attns = xcalloc(g->L, sizeof *d->attns)))
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j < g->L; j++) {
            d->resnets[j].cin = j ? d->cout : d->cin;
            d->resnets[j].cout = d->cout;
            d->resnets[j].has_shortcut = d->resnets[j].cin != d->cout;
            if (d->cross) {
                STDCPU_TRY(make_transformer(&d->attns[j], d->cout, heads[i], depth[i], err));
                n_attn2 += depth[i];
            }
            skip_ch[n_skip++] = d->cout;
        }
        if (d->has_down)
            skip_ch[n_skip++] = d->cout;
    }
    const size_t cmid = g->boc[nb - 1];
    for (int k = 0; k < 2; k++) {
        u->mid_res[k].cin = u->mid_res[k].cout = cmid;
    }
    u->mid_cross = 1;
    STDCPU_TRY(make_transformer(&u->mid_attn, cmid, heads[nb - 1], depth[nb - 1], err));
    size_t h_ch = cmid;
    for (size_t i = 0; i < nb; i++) {
        unet_up *up = &u->up[i];
        const size_t r = nb - 1 - i; /* reversed index */
        const char *type = stdcpu_json_str(stdcpu_json_at(utypes, i));
        if (!type || (strcmp(type, "UpBlock2D") && strcmp(type, "CrossAttnUpBlock2D")))
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "unet config: up block type %s", type ? type : "?");
        up->cross = !strcmp(type, "CrossAttnUpBlock2D");
        up->cout = g->boc[r];
        up->has_up = i + 1 < nb;
        up->resnets = xcalloc(g->L + 1, sizeof *up->resnets);
        if (!up->resnets)
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        if (up->cross && !(up->attns = xcalloc(g->L + 1, sizeof *up->attns)))
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j <= g->L; j++) {
            if (!n_skip)
                return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "unet: skip stack underflow");
            unet_resnet *rs = &up->resnets[j];
            rs->cin = h_ch + skip_ch[--n_skip];
            rs->cout = up->cout;
            rs->has_shortcut = rs->cin != rs->cout;
            if (rs->cin % g->G)
                return stdcpu_fail(err, STDCPU_ERR_FORMAT, "unet config: %zu channels not divisible by %zu groups",
                                   rs->cin, g->G);
            h_ch = up->cout;
            if (up->cross) {
                STDCPU_TRY(make_transformer(&up->attns[j], up->cout, heads[r], depth[r], err));
                n_attn2 += depth[r];
            }
        }
    }
    n_attn2 += u->mid_attn.depth;
    if (n_skip)
        return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "unet: %zu skips left", n_skip);

    /* attn_processors order: down (block, attention, transformer block), up, mid. */
    u->n_attn2 = n_attn2;
    u->attn2_order = xcalloc(n_attn2, sizeof *u->attn2_order);
    u->ip_scales = xcalloc(n_attn2, sizeof *u->ip_scales);
    if (!u->attn2_order || !u->ip_scales)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    size_t idx = 0;
#define UNET_ORDER(t)                                     \
    for (size_t k_ = 0; k_ < (t)->depth; k_++) {          \
        (t)->blocks[k_].ip_index = idx;                   \
        u->attn2_order[idx++] = &(t)->blocks[k_];          \
    }
    for (size_t i = 0; i < nb; i++)
        if (u->down[i].cross)
            for (size_t j = 0; j < g->L; j++)
                UNET_ORDER(&u->down[i].attns[j]);
    for (size_t i = 0; i < nb; i++)
        if (u->up[i].cross)
            for (size_t j = 0; j <= g->L; j++)
                UNET_ORDER(&u->up[i].attns[j]);
    UNET_ORDER(&u->mid_attn);
#undef UNET_ORDER
    for (size_t i = 0; i < n_attn2; i++)
        u->ip_scales[i] = 1.0f;
    return STDCPU_OK;
}

/* ---- loading ----------------------------------------------------------------- */

/* Several linear layers with the same input size stacked into one [sum n, k]
 * layer (e.g. to_q|to_k|to_v). It runs int8 only when every part would. No
 * biases (the attention projections have none). */
stdcpu_status unet_load_linear_cat(stdcpu_linear_weight *lw, const stdcpu_wsrc *w, const char *const *prefixes,
                                     size_t nparts, stdcpu_precision p, size_t k, size_t expect_n_each,
                                     stdcpu_error *err)
{
    memset(lw, 0, sizeof *lw);
    char wname[512];
    int q8 = p == STDCPU_PREC_INT8;
    for (size_t i = 0; i < nparts; i++) {
        stdcpu_wview v;
        snprintf(wname, sizeof wname, "%s.weight", prefixes[i]);
        STDCPU_TRY(stdcpu_wsrc_get(w, wname, &v, err));
        const int ok = (v.ndim == 2 || (v.ndim == 4 && v.shape[2] == 1 && v.shape[3] == 1)) &&
                       v.shape[0] == (int64_t)expect_n_each && v.shape[1] == (int64_t)k;
        if (!ok)
            return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s is not [%zu, %zu] as the config says",
                               stdcpu_wsrc_component(w), wname, expect_n_each, k);
        snprintf(wname, sizeof wname, "%s.bias", prefixes[i]);
        if (stdcpu_wsrc_has(w, wname))
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "%s: %s: fused projections have no bias",
                               stdcpu_wsrc_component(w), wname);
        snprintf(wname, sizeof wname, "%s.weight", prefixes[i]);
        if (q8 && !stdcpu_nn_wants_int8(w, wname, &v)) /* each part named separately */
            q8 = 0;
    }
    const size_t n = expect_n_each * nparts, part = expect_n_each * k;
    int8_t *q = q8 ? stdcpu_aligned_alloc(n * k) : NULL;
    float *scales = q8 ? stdcpu_aligned_alloc(n * sizeof(float)) : NULL;
    float *all = q8 ? NULL : stdcpu_aligned_alloc(n * k * sizeof(float));
    stdcpu_status s = STDCPU_OK;
    if (q8 ? !q || !scales : !all)
        s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory loading %s", prefixes[0]);
    for (size_t i = 0; i < nparts && s == STDCPU_OK; i++) {
        snprintf(wname, sizeof wname, "%s.weight", prefixes[i]);
        stdcpu_wview v;
        if ((s = stdcpu_wsrc_get(w, wname, &v, err)) != STDCPU_OK)
            break;
        if (q8 && v.dtype == STDCPU_DT_I8) { /* stored int8 (.stdm): used as is */
            memcpy(q + i * part, v.data, part);
            memcpy(scales + i * expect_n_each, v.scales, expect_n_each * sizeof(float));
            stdcpu_wsrc_release(w, wname); /* resident once: drop the mapped copy */
            continue;
        }
        float *f;
        if ((s = stdcpu_wsrc_read_f32(w, wname, &f, NULL, err)) != STDCPU_OK)
            break;
        if (q8) /* per-row scales: stacking the parts' quantisations = quantising the stack */
            stdcpu_quant_int8_rows(f, (int64_t)expect_n_each, (int64_t)k, q + i * part, scales + i * expect_n_each);
        else
            memcpy(all + i * part, f, part * sizeof(float));
        stdcpu_aligned_free(f);
        stdcpu_wsrc_release(w, wname);
    }
    if (s == STDCPU_OK)
        s = q8 ? stdcpu_linear_weight_init_q8(lw, q, scales, NULL, n, k, err)
               : stdcpu_linear_weight_init_f32(lw, all, NULL, n, k, err);
    for (size_t i = 0; i < nparts && s == STDCPU_OK; i++) { /* the layer holds its own copy now */
        snprintf(wname, sizeof wname, "%s.weight", prefixes[i]);
        stdcpu_wsrc_release(w, wname);
    }
    stdcpu_aligned_free(q);
    stdcpu_aligned_free(scales);
    stdcpu_aligned_free(all);
    return s;
}

static stdcpu_status load_linear(stdcpu_linear_weight *lw, const stdcpu_wsrc *w, const char *prefix,
                                 stdcpu_precision p, size_t k, size_t n, stdcpu_error *err)
{
    size_t got_n;
    STDCPU_TRY(stdcpu_nn_load_linear(lw, w, prefix, p, (int64_t)k, &got_n, NULL, err));
    if (got_n != n)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s has %zu outputs, the config says %zu",
                           stdcpu_wsrc_component(w), prefix, got_n, n);
    return STDCPU_OK;
}

static stdcpu_status load_conv(stdcpu_conv2d_weight *cw, const stdcpu_wsrc *w, const char *prefix,
                               stdcpu_precision p, size_t cin, size_t cout, size_t ksize, stdcpu_error *err)
{
    size_t o, ks;
    STDCPU_TRY(stdcpu_nn_load_conv(cw, w, prefix, p, (int64_t)cin, &o, NULL, &ks, err));
    if (o != cout || ks != ksize)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s is %zu x %zux%zu, the config says %zu x %zux%zu",
                           stdcpu_wsrc_component(w), prefix, o, ks, ks, cout, ksize, ksize);
    return STDCPU_OK;
}

static stdcpu_status load_resnet(unet_resnet *r, const stdcpu_wsrc *w, const char *pre, stdcpu_precision p,
                                 size_t temb, stdcpu_error *err)
{
    char n[512];
    snprintf(n, sizeof n, "%s.norm1", pre);
    STDCPU_TRY(stdcpu_nn_load_norm(&r->norm1, w, n, (int64_t)r->cin, err));
    snprintf(n, sizeof n, "%s.conv1", pre);
    STDCPU_TRY(load_conv(&r->conv1, w, n, p, r->cin, r->cout, 3, err));
    snprintf(n, sizeof n, "%s.time_emb_proj", pre);
    STDCPU_TRY(load_linear(&r->time_emb_proj, w, n, p, temb, r->cout, err));
    snprintf(n, sizeof n, "%s.norm2", pre);
    STDCPU_TRY(stdcpu_nn_load_norm(&r->norm2, w, n, (int64_t)r->cout, err));
    snprintf(n, sizeof n, "%s.conv2", pre);
    STDCPU_TRY(load_conv(&r->conv2, w, n, p, r->cout, r->cout, 3, err));
    if (r->has_shortcut) {
        snprintf(n, sizeof n, "%s.conv_shortcut", pre);
        STDCPU_TRY(load_conv(&r->conv_shortcut, w, n, p, r->cin, r->cout, 1, err));
    }
    return STDCPU_OK;
}

static stdcpu_status load_transformer(unet_transformer *t, const stdcpu_wsrc *w, const char *pre,
                                      stdcpu_precision p, size_t X, stdcpu_error *err)
{
    char n[512], a[512], b[512], c[512];
    const size_t C = t->c;
    snprintf(n, sizeof n, "%s.norm", pre);
    STDCPU_TRY(stdcpu_nn_load_norm(&t->norm, w, n, (int64_t)C, err));
    snprintf(n, sizeof n, "%s.proj_in", pre);
    STDCPU_TRY(load_linear(&t->proj_in, w, n, p, C, C, err));
    snprintf(n, sizeof n, "%s.proj_out", pre);
    STDCPU_TRY(load_linear(&t->proj_out, w, n, p, C, C, err));
    for (size_t k = 0; k < t->depth; k++) {
        unet_tblock *tb = &t->blocks[k];
        char bp[480];
        snprintf(bp, sizeof bp, "%s.transformer_blocks.%zu", pre, k);
        snprintf(n, sizeof n, "%s.norm1", bp);
        STDCPU_TRY(stdcpu_nn_load_norm(&tb->norm1, w, n, (int64_t)C, err));
        snprintf(n, sizeof n, "%s.norm2", bp);
        STDCPU_TRY(stdcpu_nn_load_norm(&tb->norm2, w, n, (int64_t)C, err));
        snprintf(n, sizeof n, "%s.norm3", bp);
        STDCPU_TRY(stdcpu_nn_load_norm(&tb->norm3, w, n, (int64_t)C, err));
        snprintf(a, sizeof a, "%s.attn1.to_q", bp);
        snprintf(b, sizeof b, "%s.attn1.to_k", bp);
        snprintf(c, sizeof c, "%s.attn1.to_v", bp);
        const char *qkv[3] = {a, b, c};
        STDCPU_TRY(unet_load_linear_cat(&tb->qkv, w, qkv, 3, p, C, C, err));
        snprintf(n, sizeof n, "%s.attn1.to_out.0", bp);
        STDCPU_TRY(load_linear(&tb->attn1_out, w, n, p, C, C, err));
        snprintf(n, sizeof n, "%s.attn2.to_q", bp);
        STDCPU_TRY(load_linear(&tb->q2, w, n, p, C, C, err));
        snprintf(b, sizeof b, "%s.attn2.to_k", bp);
        snprintf(c, sizeof c, "%s.attn2.to_v", bp);
        const char *kv[2] = {b, c};
        STDCPU_TRY(unet_load_linear_cat(&tb->kv2, w, kv, 2, p, X, C, err));
        snprintf(n, sizeof n, "%s.attn2.to_out.0", bp);
        STDCPU_TRY(load_linear(&tb->attn2_out, w, n, p, C, C, err));
        snprintf(n, sizeof n, "%s.ff.net.0.proj", bp);
        STDCPU_TRY(load_linear(&tb->ff_in, w, n, p, C, 2 * tb->ff_inner, err));
        snprintf(n, sizeof n, "%s.ff.net.2", bp);
        STDCPU_TRY(load_linear(&tb->ff_out, w, n, p, tb->ff_inner, C, err));
    }
    return STDCPU_OK;
}

static stdcpu_status load_all(stdcpu_unet *u, const stdcpu_wsrc *w, stdcpu_error *err)
{
    const unet_cfg *g = &u->cfg;
    const stdcpu_precision p = u->prec;
    char pre[256];
    STDCPU_TRY(load_conv(&u->conv_in, w, "conv_in", p, g->in_ch, g->boc[0], 3, err));
    STDCPU_TRY(load_linear(&u->time_1, w, "time_embedding.linear_1", p, g->boc[0], g->temb_dim, err));
    STDCPU_TRY(load_linear(&u->time_2, w, "time_embedding.linear_2", p, g->temb_dim, g->temb_dim, err));
    if (g->text_time) {
        STDCPU_TRY(load_linear(&u->add_1, w, "add_embedding.linear_1", p, g->add_in_dim, g->temb_dim, err));
        STDCPU_TRY(load_linear(&u->add_2, w, "add_embedding.linear_2", p, g->temb_dim, g->temb_dim, err));
    }
    for (size_t i = 0; i < g->nb; i++) {
        unet_down *d = &u->down[i];
        for (size_t j = 0; j < g->L; j++) {
            snprintf(pre, sizeof pre, "down_blocks.%zu.resnets.%zu", i, j);
            STDCPU_TRY(load_resnet(&d->resnets[j], w, pre, p, g->temb_dim, err));
            if (d->cross) {
                snprintf(pre, sizeof pre, "down_blocks.%zu.attentions.%zu", i, j);
                STDCPU_TRY(load_transformer(&d->attns[j], w, pre, p, g->X, err));
            }
        }
        if (d->has_down) {
            snprintf(pre, sizeof pre, "down_blocks.%zu.downsamplers.0.conv", i);
            STDCPU_TRY(load_conv(&d->down, w, pre, p, d->cout, d->cout, 3, err));
        }
    }
    STDCPU_TRY(load_resnet(&u->mid_res[0], w, "mid_block.resnets.0", p, g->temb_dim, err));
    STDCPU_TRY(load_transformer(&u->mid_attn, w, "mid_block.attentions.0", p, g->X, err));
    STDCPU_TRY(load_resnet(&u->mid_res[1], w, "mid_block.resnets.1", p, g->temb_dim, err));
    for (size_t i = 0; i < g->nb; i++) {
        unet_up *up = &u->up[i];
        for (size_t j = 0; j <= g->L; j++) {
            snprintf(pre, sizeof pre, "up_blocks.%zu.resnets.%zu", i, j);
            STDCPU_TRY(load_resnet(&up->resnets[j], w, pre, p, g->temb_dim, err));
            if (up->cross) {
                snprintf(pre, sizeof pre, "up_blocks.%zu.attentions.%zu", i, j);
                STDCPU_TRY(load_transformer(&up->attns[j], w, pre, p, g->X, err));
            }
        }
        if (up->has_up) {
            snprintf(pre, sizeof pre, "up_blocks.%zu.upsamplers.0.conv", i);
            STDCPU_TRY(load_conv(&up->up, w, pre, p, up->cout, up->cout, 3, err));
        }
    }
    STDCPU_TRY(stdcpu_nn_load_norm(&u->norm_out, w, "conv_norm_out", (int64_t)g->boc[0], err));
    STDCPU_TRY(load_conv(&u->conv_out, w, "conv_out", p, g->boc[0], g->out_ch, 3, err));
    return STDCPU_OK;
}

stdcpu_status stdcpu_unet_load(stdcpu_unet **out, const stdcpu_wsrc *w, stdcpu_precision p, stdcpu_error *err)
{
    *out = NULL;
    stdcpu_unet *u = calloc(1, sizeof *u);
    if (!u)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    u->prec = p;
    /* int8 attention where the CPU has int8 dot products (VNNI, dotprod): 1.5-2x
     * the f32 kernel there. AVX2's int8 path is at most ~1.2x its f32 one
     * (0.97-1.2x measured), so f32 keeps the better accuracy on it and on
     * NEON without dotprod. */
    const stdcpu_isa isa = stdcpu_isa_active();
    u->attn_prec = p == STDCPU_PREC_INT8 && (isa == STDCPU_ISA_AVX512VNNI || isa == STDCPU_ISA_NEONDOT)
                       ? STDCPU_PREC_INT8
                       : STDCPU_PREC_F32;
    u->attn_int8_min_keys = STDCPU_UNET_ATTN_INT8_MIN_KEYS;
    stdcpu_status s = unet_build(u, stdcpu_wsrc_config(w), err);
    if (s == STDCPU_OK)
        s = load_all(u, w, err);
    if (s != STDCPU_OK) {
        stdcpu_unet_free(u);
        return s;
    }
    u->has_weights = 1;
    *out = u;
    return STDCPU_OK;
}

/* ---- freeing ------------------------------------------------------------------- */

static void free_resnet(unet_resnet *r)
{
    stdcpu_nn_norm_free(&r->norm1);
    stdcpu_nn_norm_free(&r->norm2);
    stdcpu_conv2d_weight_free(&r->conv1);
    stdcpu_conv2d_weight_free(&r->conv2);
    stdcpu_conv2d_weight_free(&r->conv_shortcut);
    stdcpu_linear_weight_free(&r->time_emb_proj);
}

static void free_transformer(unet_transformer *t)
{
    stdcpu_nn_norm_free(&t->norm);
    stdcpu_linear_weight_free(&t->proj_in);
    stdcpu_linear_weight_free(&t->proj_out);
    for (size_t k = 0; t->blocks && k < t->depth; k++) {
        unet_tblock *b = &t->blocks[k];
        stdcpu_nn_norm_free(&b->norm1);
        stdcpu_nn_norm_free(&b->norm2);
        stdcpu_nn_norm_free(&b->norm3);
        stdcpu_linear_weight *l[] = {&b->qkv, &b->attn1_out, &b->q2, &b->kv2, &b->attn2_out, &b->ff_in, &b->ff_out,
                                     &b->ip_kv};
        for (size_t i = 0; i < sizeof l / sizeof *l; i++)
            stdcpu_linear_weight_free(l[i]);
    }
    free(t->blocks);
}

void unet_release(stdcpu_unet *u)
{
    unet_context_release(u);
    const size_t nb = u->cfg.nb, L = u->cfg.L;
    for (size_t i = 0; u->down && i < nb; i++) {
        unet_down *d = &u->down[i];
        for (size_t j = 0; d->resnets && j < L; j++)
            free_resnet(&d->resnets[j]);
        for (size_t j = 0; d->attns && j < L; j++)
            free_transformer(&d->attns[j]);
        stdcpu_conv2d_weight_free(&d->down);
        free(d->resnets);
        free(d->attns);
    }
    for (size_t i = 0; u->up && i < nb; i++) {
        unet_up *up = &u->up[i];
        for (size_t j = 0; up->resnets && j <= L; j++)
            free_resnet(&up->resnets[j]);
        for (size_t j = 0; up->attns && j <= L; j++)
            free_transformer(&up->attns[j]);
        stdcpu_conv2d_weight_free(&up->up);
        free(up->resnets);
        free(up->attns);
    }
    free(u->down);
    free(u->up);
    free_resnet(&u->mid_res[0]);
    free_resnet(&u->mid_res[1]);
    free_transformer(&u->mid_attn);
    stdcpu_conv2d_weight_free(&u->conv_in);
    stdcpu_conv2d_weight_free(&u->conv_out);
    stdcpu_linear_weight_free(&u->time_1);
    stdcpu_linear_weight_free(&u->time_2);
    stdcpu_linear_weight_free(&u->add_1);
    stdcpu_linear_weight_free(&u->add_2);
    stdcpu_nn_norm_free(&u->norm_out);
    free(u->attn2_order);
    free(u->ip_scales);
    stdcpu_arena_release_all(&u->arena);
}

void stdcpu_unet_free(stdcpu_unet *u)
{
    if (!u)
        return;
    unet_release(u);
    free(u);
}

/* ---- public entry points -------------------------------------------------------- */

void stdcpu_unet_get_info(const stdcpu_unet *u, stdcpu_unet_info *info)
{
    memset(info, 0, sizeof *info);
    info->in_channels = u->cfg.in_ch;
    info->out_channels = u->cfg.out_ch;
    info->cross_attention_dim = u->cfg.X;
    info->text_time = u->cfg.text_time;
    info->text_embeds_dim = u->cfg.text_time ? u->cfg.add_in_dim - 6 * u->cfg.add_time_dim : 0;
    info->n_down = u->cfg.nb;
    info->n_attn2 = u->n_attn2;
}

size_t stdcpu_unet_peak_bytes(const stdcpu_unet *u) { return u->peak; }

static stdcpu_status check_inputs(const stdcpu_unet *u, const stdcpu_unet_inputs *in, stdcpu_error *err)
{
    if (!in->batch || !in->height || !in->width || !in->sample || (in->context && !in->context_tokens))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "unet: empty input, context or size");
    if (!in->context && (!u->ctx_cached || u->ctx_batch != in->batch || in->ip_tokens))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "unet: no context given and none cached for batch %zu (stdcpu_unet_set_context)",
                           in->batch);
    if (u->cfg.text_time && (!in->text_embeds || !in->time_ids))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "unet: a text_time UNet needs text_embeds and time_ids");
    if (in->ip_tokens && (!in->ip_tokens_n || !u->has_ip))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "unet: image tokens given but no IP-Adapter loaded");
    if (in->height > (1u << 16) || in->width > (1u << 16) || in->batch > (1u << 16) || in->context_tokens > (1u << 20))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "unet: input too large");
    return STDCPU_OK;
}

stdcpu_status stdcpu_unet_forward(stdcpu_unet *u, stdcpu_pool *pool, const stdcpu_unet_inputs *in, float *out,
                                  stdcpu_error *err)
{
    STDCPU_TRY(check_inputs(u, in, err));
    const int threads = pool ? stdcpu_pool_threads(pool) : 1;
    const int cached = !in->context;
    const size_t key[7] = {in->batch,
                           in->height,
                           in->width,
                           cached ? u->ctx_tokens : in->context_tokens,
                           cached ? u->ctx_nip : in->ip_tokens ? in->ip_tokens_n : 0,
                           (size_t)threads,
                           (size_t)cached};
    if (!u->arena.base || memcmp(key, u->plan_key, sizeof key)) {
        size_t peak = 0;
        STDCPU_TRY(unet_run(u, pool, in, NULL, 1, threads, &peak, err));
        stdcpu_arena_release_all(&u->arena);
        memset(u->plan_key, 0, sizeof u->plan_key);
        STDCPU_TRY(stdcpu_arena_init(&u->arena, peak, err));
        memcpy(u->plan_key, key, sizeof key);
        u->peak = peak;
    }
    u->arena.used = 0;
    size_t peak = 0;
    return unet_run(u, pool, in, out, 0, threads, &peak, err);
}

void stdcpu_unet_trim(stdcpu_unet *u)
{
    if (!u)
        return;
    stdcpu_arena_release_all(&u->arena);
    memset(u->plan_key, 0, sizeof u->plan_key);
}

stdcpu_status stdcpu_unet_plan_config(const stdcpu_json *config, size_t batch, size_t height, size_t width,
                                      size_t context_tokens, size_t ip_tokens_n, int threads, size_t *peak_bytes,
                                      stdcpu_error *err)
{
    stdcpu_unet u;
    memset(&u, 0, sizeof u);
    stdcpu_status s = unet_build(&u, config, err);
    if (s == STDCPU_OK) {
        u.has_ip = ip_tokens_n > 0;
        stdcpu_unet_inputs in;
        memset(&in, 0, sizeof in);
        in.batch = batch;
        in.height = height;
        in.width = width;
        in.context_tokens = context_tokens;
        in.ip_tokens_n = ip_tokens_n;
        float dummy = 0.0f; /* marks context / image tokens as given; never read in a plan */
        in.context = &dummy;
        in.ip_tokens = ip_tokens_n ? &dummy : NULL;
        *peak_bytes = 0;
        s = unet_run(&u, NULL, &in, NULL, 1, threads < 1 ? 1 : threads, peak_bytes, err);
    }
    unet_release(&u);
    return s;
}

void stdcpu_unet_set_attention_precision(stdcpu_unet *u, stdcpu_precision p, size_t int8_min_keys)
{
    if (u->attn_prec == p && u->attn_int8_min_keys == int8_min_keys)
        return;
    u->attn_prec = p;
    u->attn_int8_min_keys = int8_min_keys;
    /* The activation plan depends on it (both attentions take their scratch
     * from the arena, in different sizes): plan again. */
    stdcpu_unet_trim(u);
}

void stdcpu_unet_set_fusion(stdcpu_unet *u, int on)
{
    if (u->unfused == !on)
        return;
    u->unfused = !on;
    stdcpu_unet_trim(u); /* the plan differs: the fused op's scratch, or the unfused maps */
}

stdcpu_precision stdcpu_unet_attention_precision(const stdcpu_unet *u, size_t *int8_min_keys)
{
    if (int8_min_keys)
        *int8_min_keys = u->attn_int8_min_keys;
    return u->attn_prec;
}
