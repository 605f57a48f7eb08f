/* JPEG decode through libjpeg(-turbo), only when configure found it. The
 * default error_exit (which prints and exits) is replaced by a longjmp back
 * here; messages are formatted into the error, never printed. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "io/codec.h"

#ifdef HAVE_JPEG

#include <jerror.h>
#include <jpeglib.h>
#include <setjmp.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int truncated; /* libjpeg only warns on a premature end: we fail */
    char msg[JMSG_LENGTH_MAX];
} jpeg_errors;

static void on_jpeg_error_exit(j_common_ptr cinfo)
{
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    e->pub.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void on_jpeg_message(j_common_ptr cinfo, int level)
{
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    if (level < 0 && e->pub.msg_code == JWRN_JPEG_EOF && !e->truncated) {
        e->truncated = 1;
        e->pub.format_message(cinfo, e->msg);
    }
}

static void on_jpeg_output(j_common_ptr cinfo) { (void)cinfo; }

stdcpu_status stdcpu_jpeg_decode(const uint8_t *data, size_t size, const char *name,
                                 const stdcpu_io_limits *limits, stdcpu_image *out, stdcpu_error *err)
{
    memset(out, 0, sizeof *out);
    struct jpeg_decompress_struct cinfo;
    jpeg_errors jerr;
    memset(&jerr, 0, sizeof jerr);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = on_jpeg_error_exit;
    jerr.pub.emit_message = on_jpeg_message;
    jerr.pub.output_message = on_jpeg_output;
    uint8_t *volatile pixels = NULL;
    volatile stdcpu_status early = STDCPU_OK;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        if (early != STDCPU_OK)
            return early;
        /* A premature end (warned first) makes the later error a symptom. */
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: %s JPEG (libjpeg: %s)", name,
                           jerr.truncated ? "truncated" : "corrupt", jerr.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (jerr.truncated) {
        early = stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: truncated JPEG (libjpeg: %s)", name, jerr.msg);
        longjmp(jerr.jump, 1);
    }
    stdcpu_status st = stdcpu_io_check_size(name, "JPEG", cinfo.image_width, cinfo.image_height, limits, err);
    if (st != STDCPU_OK) {
        early = st;
        longjmp(jerr.jump, 1);
    }
    /* CMYK / YCCK (Adobe, stored inverted) cannot be converted by libjpeg:
     * take CMYK and convert below. Everything else converts to RGB. */
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int comps = cinfo.output_components;
    if (comps != (cmyk ? 4 : 3) || cinfo.output_width != cinfo.image_width ||
        cinfo.output_height != cinfo.image_height) {
        early = stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "%s: unsupported JPEG colour layout", name);
        longjmp(jerr.jump, 1);
    }
    size_t w = cinfo.output_width, h = cinfo.output_height;
    pixels = malloc(w * h * (size_t)comps);
    if (!pixels) {
        early = stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory for %zux%zu pixels", name, w, h);
        longjmp(jerr.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * w * (size_t)comps;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (jerr.truncated)
            break;
    }
    if (jerr.truncated) {
        early = stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: truncated JPEG (libjpeg: %s)", name, jerr.msg);
        longjmp(jerr.jump, 1);
    }
    jpeg_finish_decompress(&cinfo);
    if (jerr.truncated) {
        early = stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: truncated JPEG (libjpeg: %s)", name, jerr.msg);
        longjmp(jerr.jump, 1);
    }
    jpeg_destroy_decompress(&cinfo);
    uint8_t *rgb = pixels;
    if (cmyk) {
        /* Adobe CMYK is stored inverted: R = C' * K' / 255 with C' = 255 - C. */
        for (size_t i = 0; i < w * h; i++) {
            const uint8_t *p = rgb + 4 * i;
            unsigned k = p[3];
            uint8_t r = (uint8_t)((p[0] * k + 127) / 255), g = (uint8_t)((p[1] * k + 127) / 255),
                    b = (uint8_t)((p[2] * k + 127) / 255);
            rgb[3 * i + 0] = r;
            rgb[3 * i + 1] = g;
            rgb[3 * i + 2] = b;
        }
        uint8_t *shrunk = realloc(rgb, w * h * 3);
        if (shrunk)
            rgb = shrunk;
    }
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = rgb;
    return STDCPU_OK;
}

#else

stdcpu_status stdcpu_jpeg_decode(const uint8_t *data, size_t size, const char *name,
                                 const stdcpu_io_limits *limits, stdcpu_image *out, stdcpu_error *err)
{
    (void)data;
    (void)size;
    (void)limits;
    memset(out, 0, sizeof *out);
    return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED,
                       "%s: JPEG input, but stdcpu was built without JPEG (install libjpeg62-turbo-dev and "
                       "re-run configure)",
                       name);
}

#endif
