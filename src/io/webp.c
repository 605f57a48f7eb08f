/* WebP: still decode/encode (lossy and lossless, with alpha) and animations
 * (WebPAnimDecoder / WebPAnimEncoder). */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include "base/error.h"
#include "base/mem.h"
#include "io/codec.h"

static const char *vp8_status_text(VP8StatusCode s)
{
    switch (s) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data";
    }
    return "unknown error";
}

static stdcpu_status webp_status_error(VP8StatusCode s, const char *name, stdcpu_error *err)
{
    if (s == VP8_STATUS_OUT_OF_MEMORY)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory decoding WebP", name);
    if (s == VP8_STATUS_UNSUPPORTED_FEATURE)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "%s: unsupported WebP feature (libwebp: %s)", name,
                           vp8_status_text(s));
    return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: %s WebP (libwebp: %s)", name,
                       s == VP8_STATUS_NOT_ENOUGH_DATA ? "truncated" : "corrupt", vp8_status_text(s));
}

/* Header check shared by still and animated decoding: canvas size within the
 * limits, and for animations the frame count, before any pixel allocation. */
static stdcpu_status webp_probe(const uint8_t *data, size_t size, const char *name, const stdcpu_io_limits *limits,
                                WebPBitstreamFeatures *features, int *frame_count, stdcpu_error *err)
{
    VP8StatusCode vs = WebPGetFeatures(data, size, features);
    if (vs != VP8_STATUS_OK)
        return webp_status_error(vs, name, err);
    STDCPU_TRY(stdcpu_io_check_size(name, "WebP", (uint64_t)features->width, (uint64_t)features->height, limits,
                                    err));
    *frame_count = 1;
    if (!features->has_animation)
        return STDCPU_OK;
    WebPData wd = {data, size};
    WebPDemuxState state;
    WebPDemuxer *demux = WebPDemuxPartial(&wd, &state);
    if (!demux || state != WEBP_DEMUX_DONE) {
        WebPDemuxDelete(demux);
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: %s animated WebP (demux failed)", name,
                           state == WEBP_DEMUX_PARSING_HEADER || state == WEBP_DEMUX_PARSED_HEADER ? "truncated"
                                                                                                 : "corrupt");
    }
    uint32_t canvas_w = WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH);
    uint32_t canvas_h = WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT);
    uint32_t frames = WebPDemuxGetI(demux, WEBP_FF_FRAME_COUNT);
    WebPDemuxDelete(demux);
    STDCPU_TRY(stdcpu_io_check_size(name, "WebP canvas", canvas_w, canvas_h, limits, err));
    stdcpu_io_limits lim = stdcpu_io_limits_resolve(limits);
    if (frames == 0)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: animated WebP without frames", name);
    if (frames > (uint32_t)lim.max_frames)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: animation has %u frames, over the limit of %d", name,
                           (unsigned)frames, lim.max_frames);
    uint64_t canvas = (uint64_t)canvas_w * canvas_h; /* each side < 2^24: no overflow */
    if (frames > lim.max_total_pixels / canvas)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: animation of %u frames of %ux%u is over the limit of %llu pixels",
                           name, (unsigned)frames, (unsigned)canvas_w, (unsigned)canvas_h,
                           (unsigned long long)lim.max_total_pixels);
    *frame_count = (int)frames;
    return STDCPU_OK;
}

/* Decodes frames [0, max_count) of an animation into out (allocated here). */
static stdcpu_status anim_decode(const uint8_t *data, size_t size, const char *name, int frame_count,
                                 int max_count, stdcpu_frames *out, stdcpu_error *err)
{
    WebPData wd = {data, size};
    WebPAnimDecoderOptions opt;
    if (!WebPAnimDecoderOptionsInit(&opt))
        return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "libwebp version mismatch");
    opt.color_mode = MODE_RGBA;
    opt.use_threads = 0;
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&wd, &opt);
    if (!dec)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: corrupt animated WebP (decoder setup failed)", name);
    WebPAnimInfo info;
    if (!WebPAnimDecoderGetInfo(dec, &info)) {
        WebPAnimDecoderDelete(dec);
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: corrupt animated WebP", name);
    }
    int count = frame_count < max_count ? frame_count : max_count;
    stdcpu_status st = stdcpu_frames_alloc(out, (int)info.canvas_width, (int)info.canvas_height, count, err);
    if (st != STDCPU_OK) {
        WebPAnimDecoderDelete(dec);
        return st;
    }
    out->loop_count = (int)info.loop_count;
    size_t pixels = (size_t)info.canvas_width * info.canvas_height;
    int prev_ts = 0;
    for (int i = 0; i < count; i++) {
        uint8_t *rgba;
        int ts;
        if (!WebPAnimDecoderHasMoreFrames(dec) || !WebPAnimDecoderGetNext(dec, &rgba, &ts)) {
            WebPAnimDecoderDelete(dec);
            stdcpu_frames_free(out);
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: corrupt or truncated animated WebP (frame %d of %d)",
                               name, i + 1, count);
        }
        stdcpu_rgba_over_white(out->rgb + (size_t)i * pixels * 3, rgba, pixels);
        out->durations_ms[i] = ts - prev_ts;
        prev_ts = ts;
    }
    WebPAnimDecoderDelete(dec);
    return STDCPU_OK;
}

stdcpu_status stdcpu_webp_decode(const uint8_t *data, size_t size, const char *name,
                                 const stdcpu_io_limits *limits, stdcpu_image *out, stdcpu_error *err)
{
    memset(out, 0, sizeof *out);
    WebPBitstreamFeatures f;
    int frame_count;
    STDCPU_TRY(webp_probe(data, size, name, limits, &f, &frame_count, err));
    if (f.has_animation) {
        stdcpu_frames fr;
        STDCPU_TRY(anim_decode(data, size, name, frame_count, 1, &fr, err));
        out->width = fr.width;
        out->height = fr.height;
        out->rgb = fr.rgb; /* the first frame is the whole allocation */
        free(fr.durations_ms);
        return STDCPU_OK;
    }
    int channels = f.has_alpha ? 4 : 3;
    size_t w = (size_t)f.width, h = (size_t)f.height;
    uint8_t *buf = malloc(w * h * (size_t)channels);
    if (!buf)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory for %zux%zu pixels", name, w, h);
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) {
        free(buf);
        return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "libwebp version mismatch");
    }
    cfg.output.colorspace = f.has_alpha ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = buf;
    cfg.output.u.RGBA.stride = (int)(w * (size_t)channels);
    cfg.output.u.RGBA.size = w * h * (size_t)channels;
    VP8StatusCode vs = WebPDecode(data, size, &cfg);
    WebPFreeDecBuffer(&cfg.output);
    if (vs != VP8_STATUS_OK) {
        free(buf);
        return webp_status_error(vs, name, err);
    }
    if (f.has_alpha) {
        stdcpu_rgba_over_white(buf, buf, w * h);
        uint8_t *shrunk = realloc(buf, w * h * 3);
        if (shrunk)
            buf = shrunk;
    }
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = buf;
    return STDCPU_OK;
}

stdcpu_status stdcpu_webp_anim_decode(const uint8_t *data, size_t size, const char *name,
                                      const stdcpu_io_limits *limits, stdcpu_frames *out, stdcpu_error *err)
{
    memset(out, 0, sizeof *out);
    WebPBitstreamFeatures f;
    int frame_count;
    STDCPU_TRY(webp_probe(data, size, name, limits, &f, &frame_count, err));
    if (f.has_animation)
        return anim_decode(data, size, name, frame_count, frame_count, out, err);
    stdcpu_image img;
    STDCPU_TRY(stdcpu_webp_decode(data, size, name, limits, &img, err));
    out->durations_ms = calloc(1, sizeof(int));
    if (!out->durations_ms) {
        stdcpu_image_free(&img);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory", name);
    }
    out->width = img.width;
    out->height = img.height;
    out->count = 1;
    out->rgb = img.rgb;
    return STDCPU_OK;
}

static void webp_fill_config(WebPConfig *cfg, const stdcpu_write_opts *opts)
{
    float q = opts && opts->webp_quality > 0 ? opts->webp_quality : 90.0f;
    WebPConfigPreset(cfg, WEBP_PRESET_DEFAULT, q > 100 ? 100 : q);
    if (opts && opts->webp_lossless) {
        cfg->lossless = 1;
        cfg->quality = 75; /* for lossless, quality is compression effort */
        cfg->exact = 1;
    }
}

static stdcpu_status import_picture(WebPPicture *pic, const stdcpu_image *img, int use_argb, stdcpu_error *err)
{
    if (!WebPPictureInit(pic))
        return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "libwebp version mismatch");
    pic->use_argb = use_argb;
    pic->width = img->width;
    pic->height = img->height;
    if (!WebPPictureImportRGB(pic, img->rgb, img->width * 3)) {
        WebPPictureFree(pic);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory (libwebp picture %dx%d)", img->width,
                           img->height);
    }
    return STDCPU_OK;
}

stdcpu_status stdcpu_webp_encode(const stdcpu_image *img, const stdcpu_write_opts *opts, uint8_t **data,
                                 size_t *size, stdcpu_error *err)
{
    *data = NULL;
    *size = 0;
    if (img->width > WEBP_MAX_DIMENSION || img->height > WEBP_MAX_DIMENSION)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "WebP cannot hold %dx%d (max %d per side)", img->width,
                           img->height, WEBP_MAX_DIMENSION);
    WebPConfig cfg;
    if (!WebPConfigInit(&cfg))
        return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "libwebp version mismatch");
    webp_fill_config(&cfg, opts);
    WebPPicture pic;
    STDCPU_TRY(import_picture(&pic, img, cfg.lossless, err));
    WebPMemoryWriter wr;
    WebPMemoryWriterInit(&wr);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &wr;
    int ok = WebPEncode(&cfg, &pic);
    int code = pic.error_code;
    WebPPictureFree(&pic);
    if (!ok) {
        WebPMemoryWriterClear(&wr);
        return stdcpu_fail(err, code == VP8_ENC_ERROR_OUT_OF_MEMORY ? STDCPU_ERR_NOMEM : STDCPU_ERR_INTERNAL,
                           "WebP encoding failed (libwebp error %d)", code);
    }
    /* WebPMemoryWriter memory comes from WebPMalloc: copy to malloc memory so
     * that callers free() it like every other buffer here. */
    uint8_t *copy = malloc(wr.size ? wr.size : 1);
    if (!copy) {
        WebPMemoryWriterClear(&wr);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    }
    memcpy(copy, wr.mem, wr.size);
    *data = copy;
    *size = wr.size;
    WebPMemoryWriterClear(&wr);
    return STDCPU_OK;
}

stdcpu_status stdcpu_frames_encode_webp(const stdcpu_frames *frames, const stdcpu_write_opts *opts,
                                        uint8_t **data, size_t *size, stdcpu_error *err)
{
    *data = NULL;
    *size = 0;
    if (!frames || frames->count < 1 || frames->width < 1 || frames->height < 1 || !frames->rgb)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "no frames to encode");
    if (frames->width > WEBP_MAX_DIMENSION || frames->height > WEBP_MAX_DIMENSION)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "WebP cannot hold %dx%d (max %d per side)",
                           frames->width, frames->height, WEBP_MAX_DIMENSION);
    WebPConfig cfg;
    WebPAnimEncoderOptions eo;
    if (!WebPConfigInit(&cfg) || !WebPAnimEncoderOptionsInit(&eo))
        return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "libwebp version mismatch");
    webp_fill_config(&cfg, opts);
    eo.anim_params.loop_count = frames->loop_count;
    eo.anim_params.bgcolor = 0xffffffffu; /* white, like our alpha rule */
    WebPAnimEncoder *enc = WebPAnimEncoderNew(frames->width, frames->height, &eo);
    if (!enc)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory (WebP animation encoder)");
    int ts = 0;
    for (int i = 0; i < frames->count; i++) {
        stdcpu_image view = stdcpu_frames_frame(frames, i);
        WebPPicture pic;
        stdcpu_status st = import_picture(&pic, &view, 1, err);
        if (st != STDCPU_OK) {
            WebPAnimEncoderDelete(enc);
            return st;
        }
        int ok = WebPAnimEncoderAdd(enc, &pic, ts, &cfg);
        WebPPictureFree(&pic);
        if (!ok) {
            stdcpu_fail(err, STDCPU_ERR_INTERNAL, "WebP animation encoding failed at frame %d (libwebp: %s)", i,
                        WebPAnimEncoderGetError(enc));
            WebPAnimEncoderDelete(enc);
            return STDCPU_ERR_INTERNAL;
        }
        int d = frames->durations_ms && frames->durations_ms[i] > 0 ? frames->durations_ms[i] : 100;
        if (d > 0xffffff)
            d = 0xffffff; /* the ANMF duration field has 24 bits */
        if (ts > INT_MAX - d) {
            WebPAnimEncoderDelete(enc);
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "animation longer than %d ms", INT_MAX);
        }
        ts += d;
    }
    WebPData assembled;
    WebPDataInit(&assembled);
    if (!WebPAnimEncoderAdd(enc, NULL, ts, NULL) || !WebPAnimEncoderAssemble(enc, &assembled)) {
        stdcpu_fail(err, STDCPU_ERR_INTERNAL, "WebP animation assembly failed (libwebp: %s)",
                    WebPAnimEncoderGetError(enc));
        WebPAnimEncoderDelete(enc);
        WebPDataClear(&assembled);
        return STDCPU_ERR_INTERNAL;
    }
    WebPAnimEncoderDelete(enc);
    uint8_t *copy = malloc(assembled.size ? assembled.size : 1);
    if (!copy) {
        WebPDataClear(&assembled);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    }
    memcpy(copy, assembled.bytes, assembled.size);
    *data = copy;
    *size = assembled.size;
    WebPDataClear(&assembled);
    return STDCPU_OK;
}
