/* kinds "taesd_diffusers" (AutoencoderTiny folder) and "taesd_py" (taesd.py
 * encoder / decoder files), golden README 3.8 and section 4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "golden.h"
#include "nn/taesd.h"
#include "nn/weights.h"

/* int8 bounds (relative L2). The default quantisation policy keeps the
 * encoder ("taesd.encoder.*") float and quantises the decoder's
 * convolutions: the taef2 reconstruction then measures 1.75% (tiny golden
 * models stay float: their convolutions are under the int8 size limit). */
#define TAESD_INT8_REL_L2 0.03

static stdcpu_precision prec(const golden_case *gc)
{
    return gc->precision == GOLDEN_INT8 ? STDCPU_PREC_INT8 : STDCPU_PREC_F32;
}

stdcpu_status golden_kind_taesd_diffusers(golden_case *gc, stdcpu_error *err)
{
    char path[4200];
    STDCPU_TRY(golden_model_path(gc, "taesd", path, sizeof path, err));
    stdcpu_wsrc *w = NULL;
    stdcpu_taesd *t = NULL;
    float *image = NULL, *lat_in = NULL, *enc = NULL, *dec_in = NULL, *dec = NULL;
    const stdcpu_st_tensor *ti, *tl;
    stdcpu_status st;
    if ((st = stdcpu_wsrc_open_dir(&w, path, "taesd", err)) ||
        (st = stdcpu_taesd_load_diffusers(&t, w, prec(gc), err)) || (st = golden_f32(gc, "in.image", &image, &ti, err)) ||
        (st = golden_f32(gc, "in.latents", &lat_in, &tl, err)))
        goto done;
    if (ti->ndim != 4 || tl->ndim != 4 || ti->shape[0] != 1 || tl->shape[0] != 1) {
        st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: image / latents must be [1, C, H, W]", gc->name);
        goto done;
    }
    const size_t H = (size_t)ti->shape[2], W = (size_t)ti->shape[3];
    const size_t f = (size_t)stdcpu_taesd_encoder_factor(t), lc = (size_t)stdcpu_taesd_get_config(t)->latent_channels;
    const size_t nl = lc * (H / f) * (W / f);
    if ((size_t)tl->numel != nl) {
        st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: in.latents does not match the encoder output", gc->name);
        goto done;
    }
    enc = malloc(nl * sizeof(float));
    dec_in = malloc(2 * nl * sizeof(float));
    dec = malloc(2 * 3 * H * W * sizeof(float));
    if (!enc || !dec_in || !dec) {
        st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = stdcpu_taesd_encode(t, gc->pool, image, 1, H, W, STDCPU_RANGE_PM1, enc, err)))
        goto done;
    golden_check_f32(gc, "out.encoded", enc, nl, TAESD_INT8_REL_L2);
    memcpy(dec_in, enc, nl * sizeof(float));
    memcpy(dec_in + nl, lat_in, nl * sizeof(float));
    if ((st = stdcpu_taesd_decode(t, gc->pool, dec_in, 2, H / f, W / f, STDCPU_RANGE_PM1, dec, err)))
        goto done;
    golden_check_f32(gc, "out.decoded", dec, 2 * 3 * H * W, TAESD_INT8_REL_L2);
done:
    stdcpu_aligned_free(image);
    stdcpu_aligned_free(lat_in);
    free(enc);
    free(dec_in);
    free(dec);
    stdcpu_taesd_free(t);
    stdcpu_wsrc_close(w);
    return st;
}

stdcpu_status golden_kind_taesd_py(golden_case *gc, stdcpu_error *err)
{
    char pe[4200], pd[4200];
    STDCPU_TRY(golden_model_path(gc, "encoder", pe, sizeof pe, err));
    STDCPU_TRY(golden_model_path(gc, "decoder", pd, sizeof pd, err));
    int64_t lc = stdcpu_json_get_int(gc->params, "latent_channels", 4);
    int midgn = 0;
    stdcpu_json_bool(stdcpu_json_get(gc->params, "use_midblock_gn"), &midgn);
    stdcpu_wsrc *we = NULL, *wd = NULL;
    stdcpu_taesd *t = NULL;
    float *image = NULL, *lat = NULL, *rec = NULL;
    const stdcpu_st_tensor *ti;
    stdcpu_status st;
    /* taesd.py files name their layers "0.conv..."; these component names
     * give them the canonical "taesd.encoder.*" / "taesd.decoder.*" the
     * quantisation policy speaks of. */
    if ((st = stdcpu_wsrc_open_safetensors(&we, pe, "taesd.encoder", err)) ||
        (st = stdcpu_wsrc_open_safetensors(&wd, pd, "taesd.decoder", err)) ||
        (st = stdcpu_taesd_load_py(&t, we, wd, (int)lc, midgn, prec(gc), err)) ||
        (st = golden_f32(gc, "in.image", &image, &ti, err)))
        goto done;
    if (ti->ndim != 4 || ti->shape[1] != 3) {
        st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: in.image must be [B, 3, H, W]", gc->name);
        goto done;
    }
    const size_t B = (size_t)ti->shape[0], H = (size_t)ti->shape[2], W = (size_t)ti->shape[3];
    const size_t f = (size_t)stdcpu_taesd_encoder_factor(t), nl = B * (size_t)lc * (H / f) * (W / f);
    lat = malloc(nl * sizeof(float));
    rec = malloc(B * 3 * H * W * sizeof(float));
    if (!lat || !rec) {
        st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = stdcpu_taesd_encode(t, gc->pool, image, B, H, W, STDCPU_RANGE_01, lat, err)))
        goto done;
    golden_check_f32(gc, "out.latent", lat, nl, TAESD_INT8_REL_L2);
    if ((st = stdcpu_taesd_decode(t, gc->pool, lat, B, H / f, W / f, STDCPU_RANGE_01, rec, err)))
        goto done;
    golden_check_f32(gc, "out.reconstruction", rec, B * 3 * H * W, TAESD_INT8_REL_L2);
done:
    stdcpu_aligned_free(image);
    free(lat);
    free(rec);
    stdcpu_taesd_free(t);
    stdcpu_wsrc_close(we);
    stdcpu_wsrc_close(wd);
    return st;
}
