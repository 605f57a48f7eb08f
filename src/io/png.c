/* PNG decode (every colour type, bit depth, interlace) and encode (RGB8 with
 * an optional "parameters" text chunk), through libpng's setjmp interface.
 * Locals that change after setjmp and are used after longjmp are volatile. */
#include "config.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "io/codec.h"

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    int hit_eof;
    char msg[200];
} png_source;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_source *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* the library never prints; warnings are not failures */
}

static void read_from_memory(png_structp png, png_bytep out, size_t n)
{
    png_source *s = png_get_io_ptr(png);
    if (n > s->size - s->pos) {
        s->hit_eof = 1;
        png_error(png, "unexpected end of file");
    }
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

stdcpu_status stdcpu_png_decode(const uint8_t *data, size_t size, const char *name, const stdcpu_io_limits *limits,
                                stdcpu_image *out, stdcpu_error *err)
{
    memset(out, 0, sizeof *out);
    png_source src = {.data = data, .size = size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_png_error, on_png_warning);
    if (!png)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory (libpng)", name);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory (libpng)", name);
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile stdcpu_status limit_status = STDCPU_OK;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        if (limit_status != STDCPU_OK)
            return limit_status; /* err already filled */
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: %s PNG (libpng: %s)", name,
                           src.hit_eof ? "truncated" : "corrupt", src.msg);
    }
    png_set_read_fn(png, &src, read_from_memory);
    /* Our own pixel limit is checked below; lift libpng's 1M x 1M default so
     * that the message comes from us. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);

    png_uint_32 width, height;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    stdcpu_status st = stdcpu_io_check_size(name, "PNG", width, height, limits, err);
    if (st != STDCPU_OK) {
        limit_status = st;
        png_error(png, "size limit"); /* unwinds through the cleanup above */
    }

    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    if (bit_depth == 16)
        png_set_strip_16(png); /* keeps the high byte, as Pillow does */
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((channels != 3 && channels != 4) || rowbytes != (size_t)channels * width)
        png_error(png, "unexpected pixel layout after transforms");
    size_t total;
    if (stdcpu_mul_size(rowbytes, height, &total))
        png_error(png, "image too large");
    pixels = malloc(total ? total : 1);
    rows = malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) {
        limit_status = stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory for %ux%u pixels", name,
                                   (unsigned)width, (unsigned)height);
        png_error(png, "out of memory");
    }
    for (png_uint_32 y = 0; y < height; y++)
        rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL); /* catches a file cut after the pixel data */

    uint8_t *rgb = pixels;
    if (channels == 4) {
        stdcpu_rgba_over_white(rgb, rgb, (size_t)width * height);
        uint8_t *shrunk = realloc(rgb, (size_t)width * height * 3);
        if (shrunk)
            rgb = shrunk;
    }
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = (int)width;
    out->height = (int)height;
    out->rgb = rgb;
    return STDCPU_OK;
}

typedef struct {
    uint8_t *data;
    size_t size, cap;
    char msg[200];
} png_sink;

static void write_to_memory(png_structp png, png_bytep in, size_t n)
{
    png_sink *s = png_get_io_ptr(png);
    if (n > s->cap - s->size) {
        size_t need;
        if (stdcpu_add_size(s->size, n, &need))
            png_error(png, "output too large");
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *nd = realloc(s->data, cap);
        if (!nd)
            png_error(png, "out of memory");
        s->data = nd;
        s->cap = cap;
    }
    memcpy(s->data + s->size, in, n);
    s->size += n;
}

static void flush_memory(png_structp png) { (void)png; }

static void on_png_write_error(png_structp png, png_const_charp msg)
{
    png_sink *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

stdcpu_status stdcpu_png_encode(const stdcpu_image *img, const stdcpu_write_opts *opts, uint8_t **data,
                                size_t *size, stdcpu_error *err)
{
    *data = NULL;
    *size = 0;
    png_sink sink = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_png_write_error, on_png_warning);
    if (!png)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory (libpng)");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory (libpng)");
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(sink.data);
        png_destroy_write_struct(&png, &info);
        return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "PNG encoding failed (libpng: %s)", sink.msg);
    }
    png_set_write_fn(png, &sink, write_to_memory, flush_memory);
    int level = opts && opts->png_compression > 0 ? opts->png_compression : 6;
    png_set_compression_level(png, level > 9 ? 9 : level);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (opts && opts->parameters) {
        /* tEXt is Latin-1: plain ASCII goes there (what A1111-style readers
         * look for); text with other bytes (UTF-8) goes to an iTXt chunk. */
        int ascii = 1;
        for (const unsigned char *p = (const unsigned char *)opts->parameters; *p; p++)
            if (*p >= 0x80)
                ascii = 0;
        png_text text;
        memset(&text, 0, sizeof text);
        text.compression = ascii ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
        text.key = (png_charp) "parameters";
        text.text = (png_charp)opts->parameters;
        text.text_length = strlen(opts->parameters);
        png_set_text(png, info, &text, 1);
    }
    png_write_info(png, info);
    rows = malloc(sizeof(png_bytep) * (size_t)(img->height ? img->height : 1));
    if (!rows)
        png_error(png, "out of memory");
    for (int y = 0; y < img->height; y++)
        rows[y] = (png_bytep)(img->rgb + (size_t)y * (size_t)img->width * 3); /* libpng only reads them */
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    *data = sink.data;
    *size = sink.size;
    return STDCPU_OK;
}
