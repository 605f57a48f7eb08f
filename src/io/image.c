/* Format detection, file-level read/write, allocation: the glue between the
 * public image.h API and the per-format codecs. */
#include "config.h"

#include "io/image.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "io/codec.h"
#include "io/file.h"

stdcpu_io_limits stdcpu_io_limits_resolve(const stdcpu_io_limits *limits)
{
    stdcpu_io_limits r = {0};
    if (limits)
        r = *limits;
    if (!r.max_pixels)
        r.max_pixels = STDCPU_IO_DEFAULT_MAX_PIXELS;
    if (r.max_frames <= 0)
        r.max_frames = STDCPU_IO_DEFAULT_MAX_FRAMES;
    if (!r.max_file_bytes)
        r.max_file_bytes = STDCPU_IO_DEFAULT_MAX_FILE_BYTES;
    if (!r.max_total_pixels)
        r.max_total_pixels = STDCPU_IO_DEFAULT_MAX_TOTAL_PIXELS;
    return r;
}

stdcpu_status stdcpu_io_check_size(const char *name, const char *what, uint64_t width, uint64_t height,
                                   const stdcpu_io_limits *limits, stdcpu_error *err)
{
    stdcpu_io_limits lim = stdcpu_io_limits_resolve(limits);
    if (width == 0 || height == 0)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: %s has an empty size %llux%llu", name, what,
                           (unsigned long long)width, (unsigned long long)height);
    /* Each side fits an int (the image struct), and the product the limit. */
    if (width > 0x7fffffff || height > 0x7fffffff || width > lim.max_pixels / height)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: %s is %llux%llu pixels, over the limit of %llu pixels",
                           name, what, (unsigned long long)width, (unsigned long long)height,
                           (unsigned long long)lim.max_pixels);
    return STDCPU_OK;
}

void stdcpu_rgba_over_white(uint8_t *dst, const uint8_t *src, size_t pixels)
{
    for (size_t i = 0; i < pixels; i++) {
        unsigned a = src[4 * i + 3], inv = 255u - a;
        uint8_t r = (uint8_t)((src[4 * i + 0] * a + 255u * inv + 127u) / 255u);
        uint8_t g = (uint8_t)((src[4 * i + 1] * a + 255u * inv + 127u) / 255u);
        uint8_t b = (uint8_t)((src[4 * i + 2] * a + 255u * inv + 127u) / 255u);
        dst[3 * i + 0] = r;
        dst[3 * i + 1] = g;
        dst[3 * i + 2] = b;
    }
}

stdcpu_image_format stdcpu_image_sniff(const uint8_t *d, size_t n)
{
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && !memcmp(d, png_magic, 8))
        return STDCPU_FORMAT_PNG;
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return STDCPU_FORMAT_JPEG;
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
        return STDCPU_FORMAT_WEBP;
    return STDCPU_FORMAT_UNKNOWN;
}

/* Names a few formats we do not read, for a more helpful message. */
static const char *foreign_format(const uint8_t *d, size_t n)
{
    if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)))
        return "GIF";
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return "BMP";
    if (n >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4)))
        return "TIFF";
    if (n >= 12 && !memcmp(d + 4, "ftyp", 4))
        return "ISO media (HEIF/AVIF/MP4)";
    return NULL;
}

const char *stdcpu_image_format_name(stdcpu_image_format f)
{
    switch (f) {
    case STDCPU_FORMAT_PNG: return "PNG";
    case STDCPU_FORMAT_JPEG: return "JPEG";
    case STDCPU_FORMAT_WEBP: return "WebP";
    case STDCPU_FORMAT_UNKNOWN: break;
    }
    return "unknown";
}

static int ends_with_nocase(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m)
        return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != suffix[i])
            return 0;
    return 1;
}

stdcpu_image_format stdcpu_image_format_for_path(const char *path)
{
    if (!path)
        return STDCPU_FORMAT_UNKNOWN;
    const char *base = stdcpu_path_basename(path);
    if (ends_with_nocase(base, ".png") && strlen(base) > 4)
        return STDCPU_FORMAT_PNG;
    if (ends_with_nocase(base, ".webp") && strlen(base) > 5)
        return STDCPU_FORMAT_WEBP;
    return STDCPU_FORMAT_UNKNOWN;
}

static stdcpu_status unknown_format(const uint8_t *data, size_t size, const char *name, stdcpu_error *err)
{
    if (size == 0)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: empty file", name);
    const char *other = foreign_format(data, size);
    if (other)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "%s: %s files are not supported (use PNG, JPEG or WebP)",
                           name, other);
    return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: not a PNG, JPEG or WebP file (unrecognised magic bytes)", name);
}

stdcpu_status stdcpu_image_read_memory(const uint8_t *data, size_t size, const char *name,
                                       const stdcpu_io_limits *limits, stdcpu_image *out, stdcpu_error *err)
{
    memset(out, 0, sizeof *out);
    if (!name)
        name = "<memory>";
    if (!data && size)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "%s: no data", name);
    stdcpu_io_limits lim = stdcpu_io_limits_resolve(limits);
    if (size > lim.max_file_bytes)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: %zu bytes, over the limit of %zu", name, size,
                           lim.max_file_bytes);
    switch (stdcpu_image_sniff(data, size)) {
    case STDCPU_FORMAT_PNG: return stdcpu_png_decode(data, size, name, &lim, out, err);
    case STDCPU_FORMAT_JPEG: return stdcpu_jpeg_decode(data, size, name, &lim, out, err);
    case STDCPU_FORMAT_WEBP: return stdcpu_webp_decode(data, size, name, &lim, out, err);
    case STDCPU_FORMAT_UNKNOWN: break;
    }
    return unknown_format(data, size, name, err);
}

stdcpu_status stdcpu_image_read(const char *path, const stdcpu_io_limits *limits, stdcpu_image *out,
                                stdcpu_error *err)
{
    memset(out, 0, sizeof *out);
    stdcpu_io_limits lim = stdcpu_io_limits_resolve(limits);
    uint8_t *data;
    size_t size;
    STDCPU_TRY(stdcpu_read_file(path, lim.max_file_bytes, &data, &size, err));
    stdcpu_status st = stdcpu_image_read_memory(data, size, path, &lim, out, err);
    free(data);
    return st;
}

stdcpu_status stdcpu_frames_read_memory(const uint8_t *data, size_t size, const char *name,
                                        const stdcpu_io_limits *limits, stdcpu_frames *out, stdcpu_error *err)
{
    memset(out, 0, sizeof *out);
    if (!name)
        name = "<memory>";
    if (!data && size)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "%s: no data", name);
    stdcpu_io_limits lim = stdcpu_io_limits_resolve(limits);
    if (size > lim.max_file_bytes)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: %zu bytes, over the limit of %zu", name, size,
                           lim.max_file_bytes);
    if (stdcpu_image_sniff(data, size) == STDCPU_FORMAT_WEBP)
        return stdcpu_webp_anim_decode(data, size, name, &lim, out, err);
    stdcpu_image img;
    STDCPU_TRY(stdcpu_image_read_memory(data, size, name, &lim, &img, err));
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

stdcpu_status stdcpu_frames_read(const char *path, const stdcpu_io_limits *limits, stdcpu_frames *out,
                                 stdcpu_error *err)
{
    memset(out, 0, sizeof *out);
    stdcpu_io_limits lim = stdcpu_io_limits_resolve(limits);
    uint8_t *data;
    size_t size;
    STDCPU_TRY(stdcpu_read_file(path, lim.max_file_bytes, &data, &size, err));
    stdcpu_status st = stdcpu_frames_read_memory(data, size, path, &lim, out, err);
    free(data);
    return st;
}

stdcpu_status stdcpu_image_alloc(stdcpu_image *img, int width, int height, stdcpu_error *err)
{
    memset(img, 0, sizeof *img);
    size_t bytes;
    if (width < 1 || height < 1 || stdcpu_mul_size((size_t)width, (size_t)height, &bytes) ||
        stdcpu_mul_size(bytes, 3, &bytes))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "invalid image size %dx%d", width, height);
    img->rgb = malloc(bytes);
    if (!img->rgb)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory for a %dx%d image", width, height);
    img->width = width;
    img->height = height;
    return STDCPU_OK;
}

void stdcpu_image_free(stdcpu_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

stdcpu_status stdcpu_frames_alloc(stdcpu_frames *fr, int width, int height, int count, stdcpu_error *err)
{
    memset(fr, 0, sizeof *fr);
    size_t bytes;
    if (width < 1 || height < 1 || count < 1 || stdcpu_mul_size((size_t)width, (size_t)height, &bytes) ||
        stdcpu_mul_size(bytes, 3, &bytes) || stdcpu_mul_size(bytes, (size_t)count, &bytes))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "invalid frames size %dx%d x %d", width, height, count);
    fr->rgb = malloc(bytes);
    fr->durations_ms = calloc((size_t)count, sizeof(int));
    if (!fr->rgb || !fr->durations_ms) {
        stdcpu_frames_free(fr);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory for %d frames of %dx%d", count, width, height);
    }
    fr->width = width;
    fr->height = height;
    fr->count = count;
    return STDCPU_OK;
}

void stdcpu_frames_free(stdcpu_frames *fr)
{
    if (!fr)
        return;
    free(fr->rgb);
    free(fr->durations_ms);
    memset(fr, 0, sizeof *fr);
}

stdcpu_image stdcpu_frames_frame(const stdcpu_frames *fr, int i)
{
    stdcpu_image v = {fr->width, fr->height, fr->rgb + (size_t)i * (size_t)fr->width * (size_t)fr->height * 3};
    return v;
}

static stdcpu_status check_image(const stdcpu_image *img, stdcpu_error *err)
{
    if (!img || !img->rgb || img->width < 1 || img->height < 1)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "no image to write");
    return STDCPU_OK;
}

stdcpu_status stdcpu_image_encode(stdcpu_image_format format, const stdcpu_image *img,
                                  const stdcpu_write_opts *opts, uint8_t **data, size_t *size, stdcpu_error *err)
{
    *data = NULL;
    *size = 0;
    STDCPU_TRY(check_image(img, err));
    if (format == STDCPU_FORMAT_PNG)
        return stdcpu_png_encode(img, opts, data, size, err);
    if (format == STDCPU_FORMAT_WEBP)
        return stdcpu_webp_encode(img, opts, data, size, err);
    return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "cannot write %s images", stdcpu_image_format_name(format));
}

static stdcpu_status write_encoded(const char *path, uint8_t *data, size_t size, const stdcpu_write_opts *opts,
                                   stdcpu_error *err)
{
    stdcpu_status st =
        stdcpu_write_file_atomic(path, data, size, opts ? opts->test_fail_after_bytes : 0, err);
    free(data);
    return st;
}

static stdcpu_status output_format(const char *path, stdcpu_image_format *f, stdcpu_error *err)
{
    *f = stdcpu_image_format_for_path(path);
    if (*f == STDCPU_FORMAT_UNKNOWN)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "%s: unknown output format (the name must end in .png or .webp)", path ? path : "");
    return STDCPU_OK;
}

stdcpu_status stdcpu_image_write(const char *path, const stdcpu_image *img, const stdcpu_write_opts *opts,
                                 stdcpu_error *err)
{
    stdcpu_image_format f;
    STDCPU_TRY(output_format(path, &f, err));
    uint8_t *data;
    size_t size;
    stdcpu_status st = stdcpu_image_encode(f, img, opts, &data, &size, err);
    if (st != STDCPU_OK) {
        if (err)
            stdcpu_fail_prefix(err, "%s: ", path);
        return st;
    }
    return write_encoded(path, data, size, opts, err);
}

stdcpu_status stdcpu_frames_write(const char *path, const stdcpu_frames *frames, const stdcpu_write_opts *opts,
                                  stdcpu_error *err)
{
    stdcpu_image_format f;
    STDCPU_TRY(output_format(path, &f, err));
    if (f == STDCPU_FORMAT_PNG) {
        if (!frames || frames->count != 1)
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                               "%s: PNG holds one frame; write an animation to a .webp file", path);
        stdcpu_image view = stdcpu_frames_frame(frames, 0);
        return stdcpu_image_write(path, &view, opts, err);
    }
    uint8_t *data;
    size_t size;
    stdcpu_status st = stdcpu_frames_encode_webp(frames, opts, &data, &size, err);
    if (st != STDCPU_OK) {
        if (err)
            stdcpu_fail_prefix(err, "%s: ", path);
        return st;
    }
    return write_encoded(path, data, size, opts, err);
}
