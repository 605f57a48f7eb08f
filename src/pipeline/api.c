/* The public model / stylize API of include/stdcpu.h over pipeline/stylize. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "core/context.h"
#include "pipeline/stylize.h"

stdcpu_status stdcpu_model_load(stdcpu_ctx *ctx, const char *path, int int8, stdcpu_model **out)
{
    stdcpu_error_clear(&ctx->err);
    return stdcpu_model_open(out, path, int8 ? STDCPU_PREC_INT8 : STDCPU_PREC_F32, &ctx->err);
}

void stdcpu_model_free(stdcpu_model *m) { stdcpu_model_close(m); }

void stdcpu_style_params_default(const stdcpu_model *m, stdcpu_style_params *p)
{
    stdcpu_stylize_opts o;
    stdcpu_stylize_defaults(m, &o);
    memset(p, 0, sizeof *p);
    p->prompt = "";
    p->negative = o.negative;
    p->style_scale = o.style_scale;
    p->strength = o.strength;
    p->steps = o.steps;
    p->cfg = o.cfg;
    p->long_side = o.long_side;
}

stdcpu_status stdcpu_stylize_rgb(stdcpu_ctx *ctx, stdcpu_model *m, const uint8_t *rgb, int w, int h,
                                 const stdcpu_style_params *p, uint8_t *out_rgb)
{
    stdcpu_error_clear(&ctx->err);
    if (!rgb || !out_rgb || w < 1 || h < 1 || !p)
        return stdcpu_fail(&ctx->err, STDCPU_ERR_INVALID_ARG, "stylize: bad image or parameters");
    if (p->style_rgb && (p->style_w < 1 || p->style_h < 1))
        return stdcpu_fail(&ctx->err, STDCPU_ERR_INVALID_ARG, "stylize: bad style image size");
    stdcpu_stylize_opts o;
    stdcpu_stylize_defaults(m, &o);
    o.prompt = p->prompt;
    o.negative = p->negative ? p->negative : o.negative;
    o.style_scale = p->style_scale;
    o.strength = p->strength;
    o.steps = p->steps;
    o.cfg = p->cfg;
    o.seed = p->seed;
    o.long_side = p->long_side;
    o.tiny_decoder = p->tiny_decoder;
    o.progress = ctx->progress;
    o.progress_user = ctx->progress_user;
    /* views of the caller's pixels (never written) */
    stdcpu_image in = {w, h, (uint8_t *)rgb}, style = {p->style_w, p->style_h, (uint8_t *)p->style_rgb}, out;
    o.style_image = p->style_rgb ? &style : NULL;
    stdcpu_status s = stdcpu_stylize(m, ctx->pool, &in, &o, &out, NULL, &ctx->err);
    if (s == STDCPU_OK) {
        memcpy(out_rgb, out.rgb, (size_t)w * (size_t)h * 3);
        stdcpu_image_free(&out);
    }
    return s;
}
