/* Internal: per-format decoders and encoders behind image.h. Decoders take
 * the whole encoded file in memory, check `limits` from the header before
 * allocating pixels, and on failure leave *out zeroed. `name` is the file name
 * used in messages. */
#ifndef STDCPU_IO_CODEC_H
#define STDCPU_IO_CODEC_H

#include "io/image.h"

stdcpu_status stdcpu_png_decode(const uint8_t *data, size_t size, const char *name, const stdcpu_io_limits *limits,
                                stdcpu_image *out, stdcpu_error *err);
stdcpu_status stdcpu_jpeg_decode(const uint8_t *data, size_t size, const char *name,
                                 const stdcpu_io_limits *limits, stdcpu_image *out, stdcpu_error *err);
stdcpu_status stdcpu_webp_decode(const uint8_t *data, size_t size, const char *name,
                                 const stdcpu_io_limits *limits, stdcpu_image *out, stdcpu_error *err);
stdcpu_status stdcpu_webp_anim_decode(const uint8_t *data, size_t size, const char *name,
                                      const stdcpu_io_limits *limits, stdcpu_frames *out, stdcpu_error *err);

stdcpu_status stdcpu_png_encode(const stdcpu_image *img, const stdcpu_write_opts *opts, uint8_t **data,
                                size_t *size, stdcpu_error *err);
stdcpu_status stdcpu_webp_encode(const stdcpu_image *img, const stdcpu_write_opts *opts, uint8_t **data,
                                 size_t *size, stdcpu_error *err);

/* Refuse width x height over limits->max_pixels (or non-positive sizes). */
stdcpu_status stdcpu_io_check_size(const char *name, const char *what, uint64_t width, uint64_t height,
                                   const stdcpu_io_limits *limits, stdcpu_error *err);

/* RGBA8 rows -> RGB8 composited over white (see image.h); may run in place
 * (dst == src) since dst never overtakes src. */
void stdcpu_rgba_over_white(uint8_t *dst, const uint8_t *src, size_t pixels);

#endif
