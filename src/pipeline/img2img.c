#include "pipeline/img2img.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/mem.h"

void stdcpu_sd_nets_free(stdcpu_sd_nets *n)
{
    if (n->te1)
        stdcpu_clip_free(n->te1);
    if (n->te2)
        stdcpu_clip_free(n->te2);
    if (n->unet)
        stdcpu_unet_free(n->unet);
    if (n->vae)
        stdcpu_vae_free(n->vae);
    if (n->image_encoder)
        stdcpu_clip_free(n->image_encoder);
    if (n->ip_proj) {
        stdcpu_ip_image_proj_free(n->ip_proj);
        free(n->ip_proj);
    }
    if (n->taesd)
        stdcpu_taesd_free(n->taesd);
    memset(n, 0, sizeof *n);
}

static stdcpu_status load_nets(stdcpu_sd_nets *n, const stdcpu_sd_sources *src, stdcpu_precision p,
                               stdcpu_error *err)
{
    if (!src->te1 || !src->unet || !src->vae)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "an SD model needs text_encoder, unet and vae");
    STDCPU_TRY(stdcpu_clip_load(&n->te1, src->te1, p, err));
    if (src->te2)
        STDCPU_TRY(stdcpu_clip_load(&n->te2, src->te2, p, err));
    STDCPU_TRY(stdcpu_unet_load(&n->unet, src->unet, p, err));
    STDCPU_TRY(stdcpu_vae_load(&n->vae, src->vae, p, STDCPU_VAE_BOTH, err));
    if (src->ip_adapter) {
        if (!src->image_encoder)
            return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "an IP-Adapter needs its image encoder");
        STDCPU_TRY(stdcpu_unet_load_ip_adapter(n->unet, src->ip_adapter, p, err));
        STDCPU_TRY(stdcpu_clip_load(&n->image_encoder, src->image_encoder, p, err));
        stdcpu_unet_info ui;
        stdcpu_unet_get_info(n->unet, &ui);
        stdcpu_ip_image_proj *proj = calloc(1, sizeof *proj);
        if (!proj)
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        stdcpu_status s = stdcpu_ip_image_proj_load(proj, src->ip_adapter, p, ui.cross_attention_dim,
                                                    stdcpu_clip_projection_dim(n->image_encoder), err);
        if (s != STDCPU_OK) {
            free(proj);
            return s;
        }
        n->ip_proj = proj;
    }
    if (src->taesd)
        STDCPU_TRY(stdcpu_taesd_load_diffusers(&n->taesd, src->taesd, p, err));
    return STDCPU_OK;
}

stdcpu_status stdcpu_sd_nets_load(stdcpu_sd_nets *n, const stdcpu_sd_sources *src, stdcpu_precision p,
                                  stdcpu_error *err)
{
    memset(n, 0, sizeof *n);
    stdcpu_status s = load_nets(n, src, p, err);
    if (s != STDCPU_OK)
        stdcpu_sd_nets_free(n);
    return s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Buffers of one run, freed together. */
typedef struct run_bufs {
    float *ctx;      /* [nb, T, X] encoder_hidden_states, batch [neg, pos] or [pos] */
    float *pooled;   /* [nb, P] */
    float *time_ids; /* [nb, 6] */
    float *h1, *h2;  /* [nb, T, H1], [nb, T, H2] */
    float *ip_tokens;
    float *moments, *init, *lat, *lat_in, *eps2, *eps, *noise, *tmp;
    int64_t *ids;    /* [nb, T] */
} run_bufs;

static void free_bufs(run_bufs *b)
{
    float **fs[] = {&b->ctx, &b->pooled, &b->time_ids, &b->h1, &b->h2, &b->ip_tokens, &b->moments, &b->init,
                    &b->lat, &b->lat_in, &b->eps2, &b->eps, &b->noise, &b->tmp};
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) {
        stdcpu_aligned_free(*fs[i]);
        *fs[i] = NULL;
    }
    free(b->ids);
    b->ids = NULL;
}

static float *falloc(size_t n) { return stdcpu_aligned_calloc(n * sizeof(float)); }

/* Text conditioning for batch rows [neg, pos] (nb = 2) or [pos] (nb = 1):
 * SD1.5: last_hidden_state of te1; SDXL: penultimate states of both encoders
 * concatenated on channels, pooled = te2 text_embeds. */
static stdcpu_status encode_text(const stdcpu_sd_nets *n, stdcpu_pool *pool, const stdcpu_img2img_params *p, int nb,
                                 size_t X, size_t P, run_bufs *b, stdcpu_error *err)
{
    const size_t T = p->tokens;
    const size_t H1 = stdcpu_clip_get_config(n->te1)->hidden;
    const size_t H2 = n->te2 ? stdcpu_clip_get_config(n->te2)->hidden : 0;
    if (H1 + H2 != X)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "text encoders give %zu channels, the UNet expects %zu",
                           H1 + H2, X);
    b->ids = malloc((size_t)nb * T * sizeof *b->ids);
    b->h1 = falloc((size_t)nb * T * H1);
    if (!b->ids || !b->h1)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    const int64_t *rows1[2] = {nb == 2 ? p->neg1 : p->ids1, p->ids1};
    for (int r = 0; r < nb; r++)
        memcpy(b->ids + (size_t)r * T, rows1[r], T * sizeof *b->ids);
    stdcpu_clip_out o1;
    memset(&o1, 0, sizeof o1);
    o1.hidden = b->h1;
    o1.hidden_index = n->te2 ? -2 : -1;
    if (!n->te2) {
        /* SD1.5 uses the final LayerNorm output */
        o1.hidden = NULL;
        o1.last_hidden_state = b->h1;
    }
    STDCPU_TRY(stdcpu_clip_text_forward(n->te1, pool, b->ids, (size_t)nb, T, &o1, err));
    if (!n->te2) {
        b->ctx = b->h1;
        b->h1 = NULL;
        return STDCPU_OK;
    }
    b->h2 = falloc((size_t)nb * T * H2);
    b->pooled = falloc((size_t)nb * (P ? P : 1));
    b->ctx = falloc((size_t)nb * T * X);
    if (!b->h2 || !b->pooled || !b->ctx)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    if (stdcpu_clip_projection_dim(n->te2) != P)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "text_encoder_2 projects to %zu, the UNet expects %zu",
                           stdcpu_clip_projection_dim(n->te2), P);
    const int64_t *rows2[2] = {nb == 2 ? p->neg2 : p->ids2, p->ids2};
    for (int r = 0; r < nb; r++)
        memcpy(b->ids + (size_t)r * T, rows2[r], T * sizeof *b->ids);
    stdcpu_clip_out o2;
    memset(&o2, 0, sizeof o2);
    o2.hidden = b->h2;
    o2.hidden_index = -2;
    o2.embeds = b->pooled;
    STDCPU_TRY(stdcpu_clip_text_forward(n->te2, pool, b->ids, (size_t)nb, T, &o2, err));
    for (size_t r = 0; r < (size_t)nb * T; r++) {
        memcpy(b->ctx + r * X, b->h1 + r * H1, H1 * sizeof(float));
        memcpy(b->ctx + r * X + H1, b->h2 + r * H2, H2 * sizeof(float));
    }
    return STDCPU_OK;
}

/* IP-Adapter tokens for rows [zeros, image] (nb = 2) or [image]. */
static stdcpu_status encode_style_image(const stdcpu_sd_nets *n, stdcpu_pool *pool, const stdcpu_img2img_params *p,
                                        int nb, stdcpu_img2img_trace *tr, run_bufs *b, size_t *ntok,
                                        stdcpu_error *err)
{
    if (!n->image_encoder || !n->ip_proj)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "a style image needs an IP-Adapter and image encoder in the model");
    const size_t D = stdcpu_clip_projection_dim(n->image_encoder);
    float *embeds = falloc((size_t)nb * D);
    if (!embeds)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    stdcpu_clip_out o;
    memset(&o, 0, sizeof o);
    o.embeds = embeds + (size_t)(nb - 1) * D; /* the uncond row stays zero */
    stdcpu_status s = stdcpu_clip_vision_forward(n->image_encoder, pool, p->ip_pixels, 1, &o, err);
    if (s == STDCPU_OK) {
        if (tr && tr->ip_image_embeds)
            memcpy(tr->ip_image_embeds, embeds, (size_t)nb * D * sizeof(float));
        const size_t X = n->ip_proj->cross_dim;
        *ntok = n->ip_proj->tokens;
        b->ip_tokens = falloc((size_t)nb * *ntok * X);
        if (!b->ip_tokens)
            s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        else
            s = stdcpu_ip_image_proj_forward(n->ip_proj, pool, embeds, (size_t)nb, b->ip_tokens, err);
    }
    stdcpu_aligned_free(embeds);
    return s;
}

stdcpu_status stdcpu_img2img_run(const stdcpu_sd_nets *n, stdcpu_pool *pool, const stdcpu_img2img_params *p,
                                 stdcpu_img2img_trace *tr, float *decoded, stdcpu_error *err)
{
    if (!n->te1 || !n->unet || !n->vae || !p->noise)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "img2img needs a text encoder, a UNet, a VAE and a noise source");
    stdcpu_unet_info ui;
    stdcpu_unet_get_info(n->unet, &ui);
    if (ui.text_time != (n->te2 != NULL))
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "the UNet %s SDXL's text_time conditioning but the model has "
                           "%s text encoder(s)", ui.text_time ? "uses" : "does not use", n->te2 ? "two" : "one");
    const stdcpu_vae_config *vc = stdcpu_vae_get_config(n->vae);
    const size_t f = (size_t)stdcpu_vae_scale_factor(vc), lc = (size_t)vc->latent_channels;
    if (p->height == 0 || p->width == 0 || p->height % f || p->width % f)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "image size %zux%zu is not a multiple of %zu", p->width,
                           p->height, f);
    if (ui.in_channels != lc || ui.out_channels != lc)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "UNet channels %zu/%zu do not match the VAE's %zu latents",
                           ui.in_channels, ui.out_channels, lc);
    const size_t h = p->height / f, w = p->width / f, nlat = lc * h * w;
    if (p->tiny_decoder && (!n->taesd || (size_t)stdcpu_taesd_decoder_factor(n->taesd) != f ||
                            (size_t)stdcpu_taesd_get_config(n->taesd)->latent_channels != lc))
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, n->taesd ? "the tiny decoder does not match the VAE's latents"
                                                              : "the model has no tiny decoder (TAESD)");
    const int cfg = p->guidance > 1.0, nb = cfg ? 2 : 1;
    if (cfg && (!p->neg1 || (n->te2 && !p->neg2)))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "guidance > 1 needs negative prompt ids");
    const size_t X = ui.cross_attention_dim, P = ui.text_embeds_dim, T = p->tokens;

    stdcpu_scheduler sch;
    stdcpu_sched_config scfg;
    STDCPU_TRY(stdcpu_sched_config_from_json(p->scheduler, p->sched_config, p->sched_overrides, &scfg, err));
    STDCPU_TRY(stdcpu_sched_init(&sch, p->scheduler, &scfg, err));
    run_bufs b;
    memset(&b, 0, sizeof b);
    stdcpu_status s;
    int k = 0;
    size_t ntok = 0;
    if ((s = stdcpu_sched_set_timesteps(&sch, p->num_inference_steps, err)) ||
        (s = stdcpu_sched_img2img(&sch, p->strength, &k, err)))
        goto done;

    /* 1. prompts */
    double t0 = now_s();
    if ((s = encode_text(n, pool, p, nb, X, P, &b, err)))
        goto done;
    if (tr) {
        if (tr->prompt_embeds)
            memcpy(tr->prompt_embeds, b.ctx + (size_t)(nb - 1) * T * X, T * X * sizeof(float));
        if (cfg && tr->negative_embeds)
            memcpy(tr->negative_embeds, b.ctx, T * X * sizeof(float));
        if (P && tr->pooled)
            memcpy(tr->pooled, b.pooled + (size_t)(nb - 1) * P, P * sizeof(float));
        if (P && cfg && tr->negative_pooled)
            memcpy(tr->negative_pooled, b.pooled, P * sizeof(float));
    }
    if (p->ip_pixels && (s = encode_style_image(n, pool, p, nb, tr, &b, &ntok, err)))
        goto done;
    if (ui.text_time) {
        b.time_ids = falloc((size_t)nb * 6);
        if (!b.time_ids) {
            s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int r = 0; r < nb; r++) {
            float *t6 = b.time_ids + 6 * r;
            t6[0] = (float)(h * f);
            t6[1] = (float)(w * f);
            t6[2] = (float)p->crop_top;
            t6[3] = (float)p->crop_left;
            t6[4] = (float)(h * f);
            t6[5] = (float)(w * f);
        }
    }
    /* The encoders' activations are not needed again for this image: peak
     * memory is (weights + the largest single phase), not their sum. */
    stdcpu_clip_trim(n->te1);
    stdcpu_clip_trim(n->te2);
    stdcpu_clip_trim(n->image_encoder);
    double t1 = now_s();

    /* 2. latents: z = mean + std * eps, init = scaling * z, noised at t0 */
    b.moments = falloc(2 * nlat);
    b.init = falloc(nlat);
    b.lat = falloc(nlat);
    b.noise = falloc(nlat);
    b.lat_in = falloc((size_t)nb * nlat);
    b.eps2 = falloc((size_t)nb * nlat);
    b.eps = falloc(nlat);
    b.tmp = falloc(nlat);
    if (!b.moments || !b.init || !b.lat || !b.noise || !b.lat_in || !b.eps2 || !b.eps || !b.tmp) {
        s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory for latents");
        goto done;
    }
    if ((s = stdcpu_vae_encode(n->vae, pool, p->image, 1, p->height, p->width, b.moments, err)) ||
        (s = p->noise(p->noise_user, STDCPU_NOISE_VAE, b.noise, nlat, err)))
        goto done;
    stdcpu_vae_posterior(b.moments, 1, lc, h * w, b.noise, NULL, NULL, NULL, b.init);
    for (size_t i = 0; i < nlat; i++)
        b.init[i] = vc->scaling_factor * (b.init[i] - vc->shift_factor);
    if ((s = p->noise(p->noise_user, STDCPU_NOISE_INIT, b.noise, nlat, err)) ||
        (s = stdcpu_sched_add_noise(&sch, b.init, b.noise, sch.timesteps[sch.begin_index], b.lat, nlat, err)))
        goto done;
    if (tr && tr->init_latents)
        memcpy(tr->init_latents, b.init, nlat * sizeof(float));
    if (tr && tr->noised_latents)
        memcpy(tr->noised_latents, b.lat, nlat * sizeof(float));
    double t2 = now_s();
    const uint64_t ops2 = pool ? stdcpu_pool_ops(pool) : 0;

    /* 3. the student's steps. The prompt and style image do not change over
     * the steps: their cross-attention keys/values are computed once. */
    if ((s = stdcpu_unet_set_context(n->unet, pool, b.ctx, (size_t)nb, T, b.ip_tokens, ntok, err)))
        goto done;
    if (p->progress) /* 0 of k: the loop starts now (a progress bar's ETA counts from here) */
        p->progress(p->progress_user, "unet", 0, k);
    for (int j = 0; j < k; j++) {
        const int i = sch.begin_index + j;
        for (int r = 0; r < nb; r++)
            memcpy(b.lat_in + (size_t)r * nlat, b.lat, nlat * sizeof(float));
        stdcpu_unet_inputs in;
        memset(&in, 0, sizeof in);
        in.batch = (size_t)nb;
        in.height = h;
        in.width = w;
        in.sample = b.lat_in;
        in.timestep = (float)sch.timesteps[i];
        in.context = NULL; /* the cached one */
        in.context_tokens = T;
        in.text_embeds = ui.text_time ? b.pooled : NULL;
        in.time_ids = b.time_ids;
        if ((s = stdcpu_unet_forward(n->unet, pool, &in, b.eps2, err)))
            goto done;
        if (cfg) {
            const float g = (float)p->guidance;
            for (size_t q = 0; q < nlat; q++)
                b.eps[q] = b.eps2[q] + g * (b.eps2[nlat + q] - b.eps2[q]);
        } else {
            memcpy(b.eps, b.eps2, nlat * sizeof(float));
        }
        const int need = stdcpu_sched_step_needs_noise(&sch, i, p->eta);
        if (need && (s = p->noise(p->noise_user, STDCPU_NOISE_STEP + i, b.noise, nlat, err)))
            goto done;
        if ((s = stdcpu_sched_step(&sch, i, b.eps, b.lat, need ? b.noise : NULL, p->eta, b.tmp,
                                   tr && tr->aux ? tr->aux + (size_t)j * nlat : NULL, nlat, err)))
            goto done;
        memcpy(b.lat, b.tmp, nlat * sizeof(float));
        if (tr && tr->noise_pred)
            memcpy(tr->noise_pred + (size_t)j * nlat, b.eps, nlat * sizeof(float));
        if (tr && tr->latents)
            memcpy(tr->latents + (size_t)j * nlat, b.lat, nlat * sizeof(float));
        if (p->progress)
            p->progress(p->progress_user, "unet", j + 1, k);
    }
    stdcpu_unet_trim(n->unet);
    double t3 = now_s();
    const uint64_t ops3 = pool ? stdcpu_pool_ops(pool) : 0;

    /* 4. decode. TAESD works in the scaled latent space the UNet uses, so
     * it takes the latents as they are. */
    if (p->tiny_decoder) {
        if ((s = stdcpu_taesd_decode(n->taesd, pool, b.lat, 1, h, w, STDCPU_RANGE_PM1, decoded, err)))
            goto done;
    } else {
        for (size_t q = 0; q < nlat; q++)
            b.tmp[q] = b.lat[q] / vc->scaling_factor + vc->shift_factor;
        if ((s = stdcpu_vae_decode(n->vae, pool, b.tmp, 1, h, w, decoded, err)))
            goto done;
    }
    if (tr) {
        tr->seconds_text = t1 - t0;
        tr->seconds_encode = t2 - t1;
        tr->seconds_unet = t3 - t2;
        tr->seconds_decode = now_s() - t3;
        tr->unet_evals = k * nb;
        tr->unet_ops = ops3 - ops2;
    }
done:
    stdcpu_unet_clear_context(n->unet);
    free_bufs(&b);
    stdcpu_sched_free(&sch);
    return s;
}

void stdcpu_decoded_to_u8(const float *d, size_t H, size_t W, uint8_t *hwc)
{
    const size_t hw = H * W;
    for (size_t c = 0; c < 3; c++)
        for (size_t i = 0; i < hw; i++) {
            float v = d[c * hw + i] / 2.0f + 0.5f;
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            /* torch.round: half to even */
            hwc[i * 3 + c] = (uint8_t)nearbyintf(255.0f * v);
        }
}
