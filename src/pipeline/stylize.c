#include "pipeline/stylize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/rng.h"
#include "core/stdm.h"
#include "io/imageops.h"
#include "nn/tokenizer.h"
#include "pipeline/img2img.h"

const char stdcpu_std_negative_prompt[] =
    "worst face, NSFW, nudity, nipples, (worst quality, low quality:1.4), blurred, low resolution, pixelated, dull "
    "colors, overly simplistic, harsh lighting, lack of detail, poorly composed, dark and gloomy atmosphere, "
    "(malformed hands:1.4), (poorly drawn hands:1.4), (mutated fingers:1.4), (extra limbs:1.35), (poorly  drawn "
    "face:1.4), missing legs, (extra legs:1.4), missing arms, extra arm, ugly, fat, (close shot:1.1), explicit "
    "content, sexual content, pornography, adult content, inappropriate, indecent, obscene, vulgar, suggestive, "
    "erotic, lewd, provocative, mature content";

/* CLIP image preprocessing constants (CLIPImageProcessor defaults). */
static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

struct stdcpu_model {
    stdcpu_stdm *file;
    stdcpu_precision precision;
    stdcpu_tokenizer *tok; /* NULL when the model has no vocabulary */
    stdcpu_wsrc *w_te1, *w_te2, *w_unet, *w_vae, *w_enc, *w_ip, *w_taesd;
    stdcpu_sd_nets nets;
    const stdcpu_json *sched_config;
};

static stdcpu_status load_tokenizer(stdcpu_model *m, stdcpu_error *err)
{
    const stdcpu_stdm_blob *vocab = stdcpu_stdm_find_blob(m->file, "tokenizer/vocab.json");
    const stdcpu_stdm_blob *merges = stdcpu_stdm_find_blob(m->file, "tokenizer/merges.txt");
    if (vocab && merges)
        return stdcpu_tokenizer_load_hf_memory(&m->tok, vocab->data, vocab->size, merges->data, merges->size, err);
    for (size_t i = 0; i < stdcpu_stdm_blob_count(m->file); i++) {
        const stdcpu_stdm_blob *b = stdcpu_stdm_blob_at(m->file, i);
        const size_t L = strlen(b->name);
        if (!strncmp(b->name, "tokenizer/", 10) && L > 3 && !strcmp(b->name + L - 3, ".gz"))
            return stdcpu_tokenizer_load_bpe_memory(&m->tok, b->data, b->size, err);
    }
    return STDCPU_OK; /* no vocabulary: text prompts are refused later */
}

static stdcpu_status open_component(stdcpu_model *m, const char *comp, stdcpu_wsrc **w, stdcpu_error *err)
{
    return stdcpu_wsrc_open_stdm(w, m->file, comp, err);
}

stdcpu_status stdcpu_model_open(stdcpu_model **out, const char *path, stdcpu_precision precision,
                                stdcpu_error *err)
{
    *out = NULL;
    stdcpu_model *m = calloc(1, sizeof *m);
    if (!m)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    m->precision = precision;
    stdcpu_status s;
#define TRY_M(expr)                     \
    do {                                \
        if ((s = (expr)) != STDCPU_OK) { \
            stdcpu_model_close(m);      \
            return s;                   \
        }                               \
    } while (0)
    TRY_M(stdcpu_stdm_open(&m->file, path, err));
    static const char *const required[] = {"unet", "vae", "text_encoder"};
    for (size_t i = 0; i < 3; i++)
        if (!stdcpu_stdm_has_component(m->file, required[i]))
            TRY_M(stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: the model has no %s: it is not an SD/SDXL model", path,
                              required[i]));
    m->sched_config = stdcpu_stdm_config(m->file, "scheduler");
    TRY_M(load_tokenizer(m, err));
    TRY_M(open_component(m, "text_encoder", &m->w_te1, err));
    if (stdcpu_stdm_has_component(m->file, "text_encoder_2"))
        TRY_M(open_component(m, "text_encoder_2", &m->w_te2, err));
    TRY_M(open_component(m, "unet", &m->w_unet, err));
    TRY_M(open_component(m, "vae", &m->w_vae, err));
    if (stdcpu_stdm_has_component(m->file, "ip_adapter") && stdcpu_stdm_has_component(m->file, "image_encoder")) {
        TRY_M(open_component(m, "ip_adapter", &m->w_ip, err));
        TRY_M(open_component(m, "image_encoder", &m->w_enc, err));
    }
    if (stdcpu_stdm_has_component(m->file, "taesd"))
        TRY_M(open_component(m, "taesd", &m->w_taesd, err));
    const stdcpu_sd_sources src = {m->w_te1, m->w_te2, m->w_unet, m->w_vae, m->w_ip, m->w_enc, m->w_taesd};
    TRY_M(stdcpu_sd_nets_load(&m->nets, &src, precision, err));
#undef TRY_M
    *out = m;
    return STDCPU_OK;
}

void stdcpu_model_close(stdcpu_model *m)
{
    if (!m)
        return;
    stdcpu_sd_nets_free(&m->nets);
    stdcpu_wsrc *ws[] = {m->w_te1, m->w_te2, m->w_unet, m->w_vae, m->w_enc, m->w_ip, m->w_taesd};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++)
        stdcpu_wsrc_close(ws[i]);
    if (m->tok)
        stdcpu_tokenizer_free(m->tok);
    stdcpu_stdm_close(m->file);
    free(m);
}

void stdcpu_model_get_info(const stdcpu_model *m, stdcpu_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->sdxl = m->nets.te2 != NULL;
    info->has_tokenizer = m->tok != NULL;
    info->has_style_image = (m->nets.ip_proj != NULL);
    info->has_tiny_decoder = m->nets.taesd != NULL;
    info->vae_scale = stdcpu_vae_scale_factor(stdcpu_vae_get_config(m->nets.vae));
}

const stdcpu_sd_nets *stdcpu_model_nets(const stdcpu_model *m) { return &m->nets; }

const stdcpu_json *stdcpu_model_scheduler_config(const stdcpu_model *m) { return m->sched_config; }

void stdcpu_stylize_defaults(const stdcpu_model *m, stdcpu_stylize_opts *o)
{
    memset(o, 0, sizeof *o);
    o->style_scale = 1.0;
    o->style_blocks = "instantstyle";
    o->seed = 0;
    o->long_side = 768;
    if (m->nets.te2) { /* the STD recipe */
        o->scheduler = STDCPU_SCHED_TCD;
        o->steps = 8;
        o->strength = 0.75;
        o->cfg = 6.0;
        /* without a vocabulary only empty prompts are possible */
        o->negative = m->tok ? stdcpu_std_negative_prompt : "";
    } else { /* an LCM-LoRA student */
        o->scheduler = STDCPU_SCHED_LCM;
        o->steps = 4;
        o->strength = 0.5;
        o->cfg = 1.0;
        o->negative = "";
    }
}

void stdcpu_work_size(int width, int height, int long_side, int mult, int *ww, int *wh)
{
    if (long_side < mult)
        long_side = mult;
    long_side = long_side / mult * mult;
    const int landscape = width >= height;
    const double ratio = landscape ? (double)height / width : (double)width / height;
    int short_side = (int)floor(ratio * long_side / mult + 0.5) * mult;
    if (short_side < mult)
        short_side = mult;
    *ww = landscape ? long_side : short_side;
    *wh = landscape ? short_side : long_side;
}

/* Philox noise of one run: stream = (draw kind), element i = latent index. */
typedef struct seeded_noise {
    uint64_t seed;
} seeded_noise;

static stdcpu_status seeded_noise_fn(void *user, int stream, float *out, size_t n, stdcpu_error *err)
{
    (void)err;
    stdcpu_randn(((seeded_noise *)user)->seed, (uint64_t)stream, 0, out, n);
    return STDCPU_OK;
}

/* CLIP's special ids: an empty prompt needs no vocabulary. */
#define CLIP_BOS 49406
#define CLIP_EOS 49407

static stdcpu_status tokenize(const stdcpu_model *m, const char *text, int32_t pad, int64_t *ids, stdcpu_error *err)
{
    if (!m->tok) { /* only reached for empty text (checked by the caller) */
        ids[0] = CLIP_BOS;
        ids[1] = CLIP_EOS;
        for (int i = 2; i < STDCPU_TOKENIZER_CONTEXT; i++)
            ids[i] = pad;
        return STDCPU_OK;
    }
    int32_t t[STDCPU_TOKENIZER_CONTEXT];
    STDCPU_TRY(stdcpu_tokenizer_encode(m->tok, text ? text : "", pad, t, err));
    for (int i = 0; i < STDCPU_TOKENIZER_CONTEXT; i++)
        ids[i] = t[i];
    return STDCPU_OK;
}

/* CLIP preprocessing: shortest side to S (bicubic), centre crop S x S,
 * x/255, normalised with the CLIP mean/std, NCHW. */
static stdcpu_status clip_pixels(const stdcpu_image *img, int S, float *px, stdcpu_error *err)
{
    int rw, rh;
    stdcpu_size_for_shortest_side(img->width, img->height, S, &rw, &rh);
    stdcpu_image r = {0}, c = {0};
    STDCPU_TRY(stdcpu_image_resize(img, rw, rh, STDCPU_RESIZE_PIL_BICUBIC, &r, err));
    stdcpu_status s = stdcpu_image_center_crop(&r, S, S, &c, err);
    stdcpu_image_free(&r);
    if (s != STDCPU_OK)
        return s;
    stdcpu_image_to_chw_f32(&c, STDCPU_RANGE_01, px);
    stdcpu_image_free(&c);
    const size_t hw = (size_t)S * S;
    for (size_t ch = 0; ch < 3; ch++)
        for (size_t i = 0; i < hw; i++)
            px[ch * hw + i] = (px[ch * hw + i] - clip_mean[ch]) / clip_std[ch];
    return STDCPU_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

stdcpu_status stdcpu_stylize(stdcpu_model *m, stdcpu_pool *pool, const stdcpu_image *in,
                             const stdcpu_stylize_opts *o, stdcpu_image *out, stdcpu_stylize_report *rep,
                             stdcpu_error *err)
{
    memset(out, 0, sizeof *out);
    const double t0 = now_s();
    const int have_text = (o->prompt && *o->prompt) || (o->negative && *o->negative && o->cfg > 1.0);
    if (!m->tok && have_text)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "this model has no tokenizer, so it cannot take a text prompt "
                           "(convert it with --tokenizer, or give only --style-image)");
    if (o->style_image && !(m->nets.ip_proj != NULL))
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "this model has no IP-Adapter, so it cannot take a style image "
                           "(convert it with --ip-adapter FILE --image-encoder DIR)");
    if (o->tiny_decoder && !m->nets.taesd)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "this model has no tiny decoder (convert it with --taesd DIR)");
    if (!(o->strength > 0 && o->strength <= 1))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "strength must be in (0, 1]");
    const int N = stdcpu_sched_steps_for_evals(o->steps, o->strength);
    if (o->steps < 1 || N < 0)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "no schedule gives %d steps at strength %g", o->steps,
                           o->strength);
    const int f = stdcpu_vae_scale_factor(stdcpu_vae_get_config(m->nets.vae));
    const int mult = f * 8 > 64 ? f * 8 : 64;
    int ww = o->work_width, wh = o->work_height;
    if (ww <= 0 || wh <= 0)
        stdcpu_work_size(in->width, in->height, o->long_side > 0 ? o->long_side : 768, mult, &ww, &wh);
    if (ww % mult || wh % mult)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "working size %dx%d must be multiples of %d", ww, wh, mult);

    stdcpu_status s;
    stdcpu_image work = {0}, res = {0};
    float *image = NULL, *decoded = NULL, *ip_px = NULL;
    int64_t ids[4][STDCPU_TOKENIZER_CONTEXT];
    if ((s = stdcpu_image_resize(in, ww, wh, STDCPU_RESIZE_PIL_LANCZOS, &work, err)))
        goto done;
    image = stdcpu_aligned_alloc((size_t)3 * ww * wh * sizeof(float));
    decoded = stdcpu_aligned_alloc((size_t)3 * ww * wh * sizeof(float));
    if (!image || !decoded) {
        s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory for a %dx%d image", ww, wh);
        goto done;
    }
    stdcpu_image_to_chw_f32(&work, STDCPU_RANGE_PM1, image);
    /* tokenizer (pad EOS) for text_encoder, tokenizer_2 (pad 0) for text_encoder_2 */
    const int32_t eos = m->tok ? stdcpu_tokenizer_eos(m->tok) : CLIP_EOS;
    if (!m->tok && stdcpu_clip_get_config(m->nets.te1)->vocab != CLIP_EOS + 1) {
        s = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "this model has no tokenizer and its text encoder is not CLIP's "
                        "49408-token vocabulary");
        goto done;
    }
    if ((s = tokenize(m, o->prompt, eos, ids[0], err)) || (s = tokenize(m, o->negative, eos, ids[1], err)) ||
        (s = tokenize(m, o->prompt, 0, ids[2], err)) || (s = tokenize(m, o->negative, 0, ids[3], err)))
        goto done;
    if (o->style_image) {
        const int S = (int)stdcpu_clip_get_config(m->nets.image_encoder)->image_size;
        ip_px = stdcpu_aligned_alloc((size_t)3 * S * S * sizeof(float));
        if (!ip_px) {
            s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((s = clip_pixels(o->style_image, S, ip_px, err)))
            goto done;
        stdcpu_json_doc *doc = NULL;
        char spec[256];
        const int all = o->style_blocks && !strcmp(o->style_blocks, "all");
        if (all)
            snprintf(spec, sizeof spec, "%.9g", o->style_scale);
        else if (!o->style_blocks || !strcmp(o->style_blocks, "instantstyle")) {
            /* InstantStyle: only up_blocks.0.attentions.1, i.e. [0, s, 0] on
             * SDXL's 3 attentions per up block (layers_per_block + 1). */
            const stdcpu_json *ucfg = stdcpu_wsrc_config(m->w_unet);
            const stdcpu_json *lpb = stdcpu_json_get(ucfg, "layers_per_block");
            int64_t L = 2;
            if (!stdcpu_json_int(lpb, &L) && stdcpu_json_count(lpb) > 0)
                stdcpu_json_int(stdcpu_json_at(lpb, stdcpu_json_count(lpb) - 1), &L);
            if (L + 1 < 2 || L + 1 > 16) {
                s = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "the UNet's up blocks have no attentions.1 for InstantStyle");
                goto done;
            }
            int off = snprintf(spec, sizeof spec, "{\"down\": 0, \"mid\": 0, \"up\": {\"block_0\": [");
            for (int64_t a = 0; a < L + 1; a++)
                off += snprintf(spec + off, sizeof spec - (size_t)off, "%s%.9g", a ? ", " : "",
                                a == 1 ? o->style_scale : 0.0);
            snprintf(spec + off, sizeof spec - (size_t)off, "]}}");
        }
        else {
            s = stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "style blocks \"%s\": use instantstyle or all",
                            o->style_blocks);
            goto done;
        }
        if ((s = stdcpu_json_parse(&doc, spec, strlen(spec), err)))
            goto done;
        s = stdcpu_unet_set_ip_scale_json(m->nets.unet, stdcpu_json_root(doc), err);
        stdcpu_json_free(doc);
        if (s)
            goto done;
    }
    seeded_noise sn = {o->seed};
    stdcpu_img2img_params p;
    memset(&p, 0, sizeof p);
    p.ids1 = ids[0];
    p.neg1 = ids[1];
    p.ids2 = ids[2];
    p.neg2 = ids[3];
    p.tokens = STDCPU_TOKENIZER_CONTEXT;
    p.image = image;
    p.height = (size_t)wh;
    p.width = (size_t)ww;
    p.scheduler = o->scheduler;
    p.sched_config = m->sched_config;
    p.num_inference_steps = N;
    p.strength = o->strength;
    p.guidance = o->cfg;
    p.eta = o->eta;
    p.ip_pixels = ip_px;
    p.tiny_decoder = o->tiny_decoder;
    p.noise = seeded_noise_fn;
    p.noise_user = &sn;
    p.progress = o->progress;
    p.progress_user = o->progress_user;
    stdcpu_img2img_trace tr;
    memset(&tr, 0, sizeof tr);
    const double t1 = now_s();
    if ((s = stdcpu_img2img_run(&m->nets, pool, &p, &tr, decoded, err)))
        goto done;
    if ((s = stdcpu_image_alloc(&res, ww, wh, err)))
        goto done;
    stdcpu_image_from_chw_f32(decoded, STDCPU_RANGE_PM1, &res);
    if (ww == in->width && wh == in->height) {
        *out = res;
        res.rgb = NULL;
    } else if ((s = stdcpu_image_resize(&res, in->width, in->height, STDCPU_RESIZE_PIL_LANCZOS, out, err))) {
        goto done;
    }
    if (rep) {
        memset(rep, 0, sizeof *rep);
        rep->work_width = ww;
        rep->work_height = wh;
        rep->scheduler_steps = N;
        rep->unet_steps = o->steps;
        rep->unet_evals = tr.unet_evals;
        rep->seconds_prepare = t1 - t0;
        rep->seconds_text = tr.seconds_text;
        rep->seconds_encode = tr.seconds_encode;
        rep->seconds_unet = tr.seconds_unet;
        rep->unet_ops = tr.unet_ops;
        rep->seconds_decode = tr.seconds_decode;
    }
done:
    stdcpu_image_free(&work);
    stdcpu_image_free(&res);
    stdcpu_aligned_free(image);
    stdcpu_aligned_free(decoded);
    stdcpu_aligned_free(ip_px);
    return s;
}
