/* kind "vae": AutoencoderKL encode -> posterior, decode a latent batch
 * (golden README 3.5, section 4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "golden.h"
#include "nn/vae.h"
#include "nn/weights.h"

/* int8 bounds on the relative L2 error. Every weight of the tiny VAE is
 * below STDCPU_QUANT_MIN_INT8_ELEMENTS, so the policy keeps it float and the
 * int8 run equals f32 (measured rel_l2 <= 4e-6); the bounds are the ones a
 * quantised full-size VAE is held to (README brief: <= 0.05 per network). */
#define VAE_INT8_REL_L2_MOMENTS 0.02
#define VAE_INT8_REL_L2_STD 0.01
#define VAE_INT8_REL_L2_DECODED 0.03

static stdcpu_status check_shape4(golden_case *gc, const stdcpu_st_tensor *t, const char *name, stdcpu_error *err)
{
    if (t->ndim != 4)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: %s is not 4-D", gc->name, name);
    return STDCPU_OK;
}

stdcpu_status golden_kind_vae(golden_case *gc, stdcpu_error *err)
{
    char path[4200];
    STDCPU_TRY(golden_model_path(gc, "vae", path, sizeof path, err));
    stdcpu_wsrc *w = NULL;
    stdcpu_vae *vae = NULL;
    float *image = NULL, *eps = NULL, *z = NULL, *moments = NULL, *post = NULL, *decoded = NULL;
    const stdcpu_st_tensor *ti, *tz;
    stdcpu_status st;
    if ((st = stdcpu_wsrc_open_dir(&w, path, "vae", err)) ||
        (st = stdcpu_vae_load(&vae, w, gc->precision == GOLDEN_INT8 ? STDCPU_PREC_INT8 : STDCPU_PREC_F32,
                              STDCPU_VAE_BOTH, err)) ||
        (st = golden_f32(gc, "in.image", &image, &ti, err)) || (st = check_shape4(gc, ti, "in.image", err)) ||
        (st = golden_f32(gc, "in.eps", &eps, NULL, err)) || (st = golden_f32(gc, "in.latent_z", &z, &tz, err)) ||
        (st = check_shape4(gc, tz, "in.latent_z", err)))
        goto done;
    const stdcpu_vae_config *cfg = stdcpu_vae_get_config(vae);
    const size_t B = (size_t)ti->shape[0], H = (size_t)ti->shape[2], W = (size_t)ti->shape[3];
    const size_t f = (size_t)stdcpu_vae_scale_factor(cfg), lc = (size_t)cfg->latent_channels;
    const size_t h = H / f, wl = W / f, hw = h * wl;
    const size_t Bz = (size_t)tz->shape[0];
    if ((size_t)tz->shape[1] != lc || (size_t)tz->shape[2] != h || (size_t)tz->shape[3] != wl) {
        st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: latent_z does not match the encoder's latent size", gc->name);
        goto done;
    }
    moments = malloc(B * 2 * lc * hw * sizeof(float));
    post = malloc(4 * B * lc * hw * sizeof(float));
    decoded = malloc(Bz * (size_t)cfg->out_channels * h * f * wl * f * sizeof(float));
    if (!moments || !post || !decoded) {
        st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = stdcpu_vae_encode(vae, gc->pool, image, B, H, W, moments, err)))
        goto done;
    const size_t nl = B * lc * hw;
    float *mean = post, *logvar = post + nl, *std = post + 2 * nl, *sample = post + 3 * nl;
    stdcpu_vae_posterior(moments, B, lc, hw, eps, mean, logvar, std, sample);
    golden_check_f32(gc, "out.moments", moments, 2 * nl, VAE_INT8_REL_L2_MOMENTS);
    golden_check_f32(gc, "out.mean", mean, nl, VAE_INT8_REL_L2_MOMENTS);
    golden_check_f32(gc, "out.logvar", logvar, nl, VAE_INT8_REL_L2_MOMENTS);
    golden_check_f32(gc, "out.std", std, nl, VAE_INT8_REL_L2_STD);
    golden_check_f32(gc, "out.latent_sample", sample, nl, VAE_INT8_REL_L2_MOMENTS);

    int replace = 0;
    stdcpu_json_bool(stdcpu_json_get(gc->params, "replace_latent_z_row0_with_mean"), &replace);
    if (replace)
        memcpy(z, mean, lc * hw * sizeof(float));
    if ((st = stdcpu_vae_decode(vae, gc->pool, z, Bz, h, wl, decoded, err)))
        goto done;
    golden_check_f32(gc, "out.decoded", decoded, Bz * (size_t)cfg->out_channels * h * f * wl * f,
                     VAE_INT8_REL_L2_DECODED);
    if (gc->verbose)
        printf("  vae peak activations: encode %zu bytes, decode %zu bytes\n",
               stdcpu_vae_encode_peak_bytes(vae, B, H, W), stdcpu_vae_decode_peak_bytes(vae, Bz, h, wl));
done:
    stdcpu_aligned_free(image);
    stdcpu_aligned_free(eps);
    stdcpu_aligned_free(z);
    free(moments);
    free(post);
    free(decoded);
    stdcpu_vae_free(vae);
    stdcpu_wsrc_close(w);
    return st;
}
