/* UNet conditioning: IP-Adapter layers and their per-layer scales (README
 * 3.7, InstantStyle dicts), and the cross-attention keys/values cached once
 * per prompt (the text and image tokens do not change across the denoising
 * steps, so every step would otherwise recompute 2 x attn2 projections of
 * [B*77, X] per layer: ~6% of an SDXL pass at 512x512). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "nn/unet_internal.h"

/* ---- IP-Adapter ---------------------------------------------------------------- */

stdcpu_status stdcpu_unet_load_ip_adapter(stdcpu_unet *u, const stdcpu_wsrc *ip, stdcpu_precision p,
                                          stdcpu_error *err)
{
    unet_context_release(u); /* cached image keys/values would be stale */
    for (size_t i = 0; i < u->n_attn2; i++) {
        unet_tblock *b = u->attn2_order[i];
        stdcpu_linear_weight_free(&b->ip_kv);
        b->has_ip = 0;
    }
    u->has_ip = 0;
    size_t X = 0;
    for (size_t i = 0; i < u->n_attn2; i++) {
        unet_tblock *b = u->attn2_order[i];
        char k[128], v[128];
        snprintf(k, sizeof k, "ip_adapter.%zu.to_k_ip", 2 * i + 1);
        snprintf(v, sizeof v, "ip_adapter.%zu.to_v_ip", 2 * i + 1);
        stdcpu_wview view;
        char wn[160];
        snprintf(wn, sizeof wn, "%s.weight", k);
        STDCPU_TRY(stdcpu_wsrc_get(ip, wn, &view, err));
        if (view.ndim != 2)
            return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "ip_adapter: %s is not a matrix", wn);
        if (i == 0)
            X = (size_t)view.shape[1];
        const char *parts[2] = {k, v};
        STDCPU_TRY(unet_load_linear_cat(&b->ip_kv, ip, parts, 2, p, X, b->c, err));
        b->has_ip = 1;
    }
    if (X != u->cfg.X)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "ip_adapter: image tokens have %zu channels, the UNet %zu", X,
                           u->cfg.X);
    char extra[128];
    snprintf(extra, sizeof extra, "ip_adapter.%zu.to_k_ip.weight", 2 * u->n_attn2 + 1);
    if (stdcpu_wsrc_has(ip, extra))
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "ip_adapter: more layers than the UNet's %zu attn2 layers",
                           u->n_attn2);
    u->has_ip = 1;
    return STDCPU_OK;
}

stdcpu_status stdcpu_unet_set_ip_scales(stdcpu_unet *u, const float *scales, size_t n, stdcpu_error *err)
{
    if (n != u->n_attn2)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "unet: %zu IP scales for %zu layers", n, u->n_attn2);
    memcpy(u->ip_scales, scales, n * sizeof *scales);
    return STDCPU_OK;
}

const float *stdcpu_unet_ip_scales(const stdcpu_unet *u) { return u->ip_scales; }

static void set_transformer_scale(unet_transformer *t, float *scales, float v)
{
    for (size_t k = 0; k < t->depth; k++)
        scales[t->blocks[k].ip_index] = v;
}

/* One side ("down" / "up") of an InstantStyle dict: a number, or
 * {"block_i": number | [v] | [v per attentions.j]}. */
static stdcpu_status scale_side(stdcpu_unet *u, const stdcpu_json *side, int is_up, float *scales, stdcpu_error *err)
{
    const size_t nb = u->cfg.nb, nattn = is_up ? u->cfg.L + 1 : u->cfg.L;
    double x;
    if (!side)
        return STDCPU_OK;
    for (size_t i = 0; i < nb; i++) {
        const int cross = is_up ? u->up[i].cross : u->down[i].cross;
        unet_transformer *at = is_up ? u->up[i].attns : u->down[i].attns;
        if (!cross)
            continue;
        const stdcpu_json *v = side;
        if (!stdcpu_json_double(side, &x)) {
            if (side->type != STDCPU_JSON_OBJECT)
                return stdcpu_fail(err, STDCPU_ERR_FORMAT, "IP scale: a side must be a number or a dict");
            char key[32];
            snprintf(key, sizeof key, "block_%zu", i);
            v = stdcpu_json_get(side, key);
            if (!v)
                continue;
        }
        for (size_t j = 0; j < nattn; j++) {
            const stdcpu_json *e = v;
            if (v->type == STDCPU_JSON_ARRAY) {
                const size_t cnt = stdcpu_json_count(v);
                if (cnt != 1 && cnt != nattn)
                    return stdcpu_fail(err, STDCPU_ERR_FORMAT, "IP scale: block_%zu needs 1 or %zu values", i, nattn);
                e = stdcpu_json_at(v, cnt == 1 ? 0 : j);
            }
            if (!stdcpu_json_double(e, &x))
                return stdcpu_fail(err, STDCPU_ERR_FORMAT, "IP scale: block_%zu has a non-number", i);
            set_transformer_scale(&at[j], scales, (float)x);
        }
    }
    if (side->type == STDCPU_JSON_OBJECT) /* every named block must exist and have attentions */
        for (size_t m = 0; m < stdcpu_json_count(side); m++) {
            const char *key = stdcpu_json_at(side, m)->key;
            size_t bi;
            char tail;
            if (sscanf(key, "block_%zu%c", &bi, &tail) != 1 || bi >= nb ||
                !(is_up ? u->up[bi].cross : u->down[bi].cross))
                return stdcpu_fail(err, STDCPU_ERR_FORMAT, "IP scale: no %s block with attentions named %s",
                                   is_up ? "up" : "down", key);
        }
    return STDCPU_OK;
}

stdcpu_status stdcpu_unet_set_ip_scale_json(stdcpu_unet *u, const stdcpu_json *setting, stdcpu_error *err)
{
    double x;
    float *scales = calloc(u->n_attn2 ? u->n_attn2 : 1, sizeof *scales);
    if (!scales)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    stdcpu_status s = STDCPU_OK;
    if (stdcpu_json_double(setting, &x)) {
        for (size_t i = 0; i < u->n_attn2; i++)
            scales[i] = (float)x;
    } else if (setting && setting->type == STDCPU_JSON_OBJECT) {
        for (size_t m = 0; m < stdcpu_json_count(setting) && s == STDCPU_OK; m++) {
            const char *key = stdcpu_json_at(setting, m)->key;
            if (strcmp(key, "down") && strcmp(key, "up") && strcmp(key, "mid"))
                s = stdcpu_fail(err, STDCPU_ERR_FORMAT, "IP scale: unknown key %s", key);
        }
        if (s == STDCPU_OK)
            s = scale_side(u, stdcpu_json_get(setting, "down"), 0, scales, err);
        if (s == STDCPU_OK)
            s = scale_side(u, stdcpu_json_get(setting, "up"), 1, scales, err);
        const stdcpu_json *mid = stdcpu_json_get(setting, "mid");
        if (s == STDCPU_OK && mid) {
            const stdcpu_json *e = mid->type == STDCPU_JSON_ARRAY && stdcpu_json_count(mid) == 1 ? stdcpu_json_at(mid, 0)
                                                                                              : mid;
            if (!stdcpu_json_double(e, &x))
                s = stdcpu_fail(err, STDCPU_ERR_FORMAT, "IP scale: mid must be a number or a one-element list");
            else
                set_transformer_scale(&u->mid_attn, scales, (float)x);
        }
    } else {
        s = stdcpu_fail(err, STDCPU_ERR_FORMAT, "IP scale: must be a number or a dict");
    }
    if (s == STDCPU_OK)
        memcpy(u->ip_scales, scales, u->n_attn2 * sizeof *scales);
    free(scales);
    return s;
}

/* ---- cached cross-attention keys/values -------------------------------------- */

void unet_context_release(stdcpu_unet *u)
{
    for (size_t i = 0; u->attn2_order && i < u->n_attn2; i++) {
        unet_tblock *b = u->attn2_order[i];
        if (!b)
            continue;
        stdcpu_aligned_free(b->kv_cache);
        stdcpu_aligned_free(b->ip_kv_cache);
        b->kv_cache = b->ip_kv_cache = NULL;
    }
    u->ctx_cached = 0;
    u->ctx_batch = u->ctx_tokens = u->ctx_nip = 0;
}

void stdcpu_unet_clear_context(stdcpu_unet *u) { unet_context_release(u); }

stdcpu_status stdcpu_unet_set_context(stdcpu_unet *u, stdcpu_pool *pool, const float *context, size_t batch,
                                      size_t tokens, const float *ip_tokens, size_t ip_tokens_n, stdcpu_error *err)
{
    unet_context_release(u);
    if (!context || !batch || !tokens || (ip_tokens && !ip_tokens_n))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "unet: empty context");
    if (ip_tokens && !u->has_ip)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "unet: image tokens given but no IP-Adapter loaded");
    if (batch > (1u << 16) || tokens > (1u << 20) || ip_tokens_n > (1u << 20))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "unet: context too large");
    const size_t nip = ip_tokens ? ip_tokens_n : 0;
    stdcpu_status s = STDCPU_OK;
    for (size_t i = 0; i < u->n_attn2 && s == STDCPU_OK; i++) {
        unet_tblock *b = u->attn2_order[i];
        b->kv_cache = stdcpu_aligned_alloc(batch * tokens * 2 * b->c * sizeof(float));
        if (!b->kv_cache) {
            s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "unet: out of memory caching the context");
            break;
        }
        s = stdcpu_linear(pool, &b->kv2, context, b->kv_cache, batch * tokens, NULL, STDCPU_ACT_NONE, err);
        if (s == STDCPU_OK && nip && b->has_ip) {
            b->ip_kv_cache = stdcpu_aligned_alloc(batch * nip * 2 * b->c * sizeof(float));
            if (!b->ip_kv_cache)
                s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "unet: out of memory caching the image tokens");
            else
                s = stdcpu_linear(pool, &b->ip_kv, ip_tokens, b->ip_kv_cache, batch * nip, NULL, STDCPU_ACT_NONE,
                                  err);
        }
    }
    if (s != STDCPU_OK) {
        unet_context_release(u);
        return s;
    }
    u->ctx_cached = 1;
    u->ctx_batch = batch;
    u->ctx_tokens = tokens;
    u->ctx_nip = nip;
    return STDCPU_OK;
}
