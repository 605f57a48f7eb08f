/* kinds "clip_text" and "clip_vision": the CLIP encoders (golden README 3.2,
 * 3.3) with every hidden state, the penultimate one, pooled output and
 * projection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "golden.h"
#include "nn/clip.h"

/* int8 (W8A8) bounds on the relative L2 error, ~2.5-3.5x the worst observed
 * on the tiny cases (AVX-512 VNNI and scalar kernels). The tiny models' q/k/v/out
 * projections are under the policy's 4096-element floor and stay f32, so there
 * fc1/fc2 carry the error (~0.3% per quantised GEMM with K = 32..192):
 *                      hidden_states  penultimate  last_hidden  pooled  embeds
 *   clip_text_l_tiny   0.0102         0.0106       0.0114       0.0102  -
 *   clip_text_g_tiny   0.0127         0.0134       0.0145       0.0174  0.0188
 *   clip_vision_tiny   0.0084         0.0089       0.0100       0.0147  0.0177
 * Pooled rows and their projection are single tokens: noisier than the
 * per-tensor hidden states. */
#define CLIP_INT8_REL_L2_HIDDEN 0.035
#define CLIP_INT8_REL_L2_POOLED 0.05

static stdcpu_precision precision_of(const golden_case *gc)
{
    return gc->precision == GOLDEN_INT8 ? STDCPU_PREC_INT8 : STDCPU_PREC_F32;
}

static stdcpu_status open_model(golden_case *gc, const char *role, stdcpu_clip **m, stdcpu_error *err)
{
    char path[4200];
    STDCPU_TRY(golden_model_path(gc, role, path, sizeof path, err));
    stdcpu_wsrc *w;
    STDCPU_TRY(stdcpu_wsrc_open_dir(&w, path, NULL, err));
    stdcpu_status st = stdcpu_clip_load(m, w, precision_of(gc), err);
    stdcpu_wsrc_close(w);
    return st;
}

/* Output buffers of one forward: [L+1, B, T, H], [B, T, H] x2, [B, H], [B, P]. */
typedef struct clip_outs {
    stdcpu_clip_out o;
    size_t BTH, BH, BP, L;
} clip_outs;

static stdcpu_status alloc_outs(clip_outs *c, const stdcpu_clip *m, size_t B, size_t T, stdcpu_error *err)
{
    const stdcpu_clip_config *cfg = stdcpu_clip_get_config(m);
    memset(c, 0, sizeof *c);
    c->L = cfg->layers;
    c->BTH = B * T * cfg->hidden;
    c->BH = B * cfg->hidden;
    c->BP = B * stdcpu_clip_projection_dim(m);
    c->o.hidden_states = stdcpu_aligned_alloc((c->L + 1) * c->BTH * sizeof(float));
    c->o.hidden = stdcpu_aligned_alloc(c->BTH * sizeof(float));
    c->o.hidden_index = -2;
    c->o.last_hidden_state = stdcpu_aligned_alloc(c->BTH * sizeof(float));
    c->o.pooled = stdcpu_aligned_alloc(c->BH * sizeof(float));
    if (c->BP)
        c->o.embeds = stdcpu_aligned_alloc(c->BP * sizeof(float));
    if (!c->o.hidden_states || !c->o.hidden || !c->o.last_hidden_state || !c->o.pooled || (c->BP && !c->o.embeds))
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory for the outputs");
    return STDCPU_OK;
}

static void free_outs(clip_outs *c)
{
    stdcpu_aligned_free(c->o.hidden_states);
    stdcpu_aligned_free(c->o.hidden);
    stdcpu_aligned_free(c->o.last_hidden_state);
    stdcpu_aligned_free(c->o.pooled);
    stdcpu_aligned_free(c->o.embeds);
}

static void check_outs(golden_case *gc, const clip_outs *c, const char *embeds_name)
{
    golden_check_f32(gc, "out.hidden_states", c->o.hidden_states, (c->L + 1) * c->BTH, CLIP_INT8_REL_L2_HIDDEN);
    golden_check_f32(gc, "out.penultimate_hidden_state", c->o.hidden, c->BTH, CLIP_INT8_REL_L2_HIDDEN);
    golden_check_f32(gc, "out.last_hidden_state", c->o.last_hidden_state, c->BTH, CLIP_INT8_REL_L2_HIDDEN);
    golden_check_f32(gc, "out.pooled_output", c->o.pooled, c->BH, CLIP_INT8_REL_L2_POOLED);
    if (c->o.embeds)
        golden_check_f32(gc, embeds_name, c->o.embeds, c->BP, CLIP_INT8_REL_L2_POOLED);
    else if (golden_has(gc, embeds_name))
        golden_fail(gc, embeds_name, "the model has no projection");
}

stdcpu_status golden_kind_clip_text(golden_case *gc, stdcpu_error *err)
{
    int64_t *ids = NULL;
    const stdcpu_st_tensor *t;
    STDCPU_TRY(golden_i64(gc, "in.input_ids", &ids, &t, err));
    stdcpu_clip *m = NULL;
    clip_outs c = {0};
    stdcpu_status st;
    if (t->ndim != 2) {
        st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "in.input_ids is not [B, T]");
        goto done;
    }
    const size_t B = (size_t)t->shape[0], T = (size_t)t->shape[1];
    if ((st = open_model(gc, "text_encoder", &m, err)) || (st = alloc_outs(&c, m, B, T, err)) ||
        (st = stdcpu_clip_text_forward(m, gc->pool, ids, B, T, &c.o, err)))
        goto done;
    check_outs(gc, &c, "out.text_embeds");
done:
    free_outs(&c);
    stdcpu_clip_free(m);
    free(ids);
    return st;
}

stdcpu_status golden_kind_clip_vision(golden_case *gc, stdcpu_error *err)
{
    float *pixels = NULL;
    const stdcpu_st_tensor *t;
    STDCPU_TRY(golden_f32(gc, "in.pixel_values", &pixels, &t, err));
    stdcpu_clip *m = NULL;
    clip_outs c = {0};
    stdcpu_status st;
    if ((st = open_model(gc, "image_encoder", &m, err)))
        goto done;
    const stdcpu_clip_config *cfg = stdcpu_clip_get_config(m);
    if (t->ndim != 4 || (size_t)t->shape[1] != cfg->channels || (size_t)t->shape[2] != cfg->image_size ||
        (size_t)t->shape[3] != cfg->image_size) {
        st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "in.pixel_values is not [B, %zu, %zu, %zu]", cfg->channels,
                         cfg->image_size, cfg->image_size);
        goto done;
    }
    const size_t B = (size_t)t->shape[0];
    if ((st = alloc_outs(&c, m, B, stdcpu_clip_vision_tokens(m), err)) ||
        (st = stdcpu_clip_vision_forward(m, gc->pool, pixels, B, &c.o, err)))
        goto done;
    check_outs(gc, &c, "out.image_embeds");
done:
    free_outs(&c);
    stdcpu_clip_free(m);
    stdcpu_aligned_free(pixels);
    return st;
}
