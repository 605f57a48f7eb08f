/* Image files: read PNG / JPEG / WebP (still and animated) into RGB8, write
 * PNG / WebP / animated WebP atomically.
 *
 * Pixel rules (the same for every input format):
 *  - Output is always 8-bit RGB, rows top to bottom, no padding: rgb[y][x][c].
 *  - Gray is replicated to R=G=B; palettes are expanded.
 *  - 16-bit samples keep their high byte (v8 = v16 >> 8), as Pillow does, so
 *    pipeline inputs match the reference.
 *  - Alpha (an alpha channel, a tRNS chunk, WebP alpha) is composited over
 *    white with integer rounding: c' = (c*a + 255*(255-a) + 127) / 255.
 *  - No gamma / ICC colour management is applied: stored values are used as is.
 *  - An animated WebP read as a still image gives its first frame.
 *
 * Input format is chosen by content (magic bytes), never by extension; output
 * format by extension (.png, .webp, case-insensitive). Every read is bounded
 * by stdcpu_io_limits, checked from the header before the pixels are allocated.
 * Error messages name the file and the cause on one line, e.g.
 * "in.png: truncated PNG (libpng: Read Error)". */
#ifndef STDCPU_IO_IMAGE_H
#define STDCPU_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "stdcpu.h"

/* An RGB8 image. Images returned by the library own `rgb` (free it with
 * stdcpu_image_free); a caller may also build a non-owning view, e.g. one
 * frame of a stdcpu_frames, and pass it to any function taking const. */
typedef struct stdcpu_image {
    int width, height;
    uint8_t *rgb; /* [height][width][3] */
} stdcpu_image;

/* A sequence of frames of one canvas size (an animation, later a video clip). */
typedef struct stdcpu_frames {
    int width, height; /* canvas size, the same for every frame */
    int count;
    uint8_t *rgb;      /* [count][height][width][3], one allocation */
    int *durations_ms; /* [count]; 0 for a still image */
    int loop_count;    /* 0 = loop forever (WebP convention) */
} stdcpu_frames;

/* Safety limits against hostile files. A zero field means its default. */
typedef struct stdcpu_io_limits {
    uint64_t max_pixels;   /* width*height of one image or canvas; default 64 Mpx */
    int max_frames;        /* frames of an animation; default 10000 */
    size_t max_file_bytes; /* size of the encoded file; default 1 GiB */
    uint64_t max_total_pixels; /* frames * width * height of an animation; default 1 Gpx (3 GiB RGB) */
} stdcpu_io_limits;

#define STDCPU_IO_DEFAULT_MAX_PIXELS ((uint64_t)64 << 20)
#define STDCPU_IO_DEFAULT_MAX_FRAMES 10000
#define STDCPU_IO_DEFAULT_MAX_FILE_BYTES ((size_t)1 << 30)
#define STDCPU_IO_DEFAULT_MAX_TOTAL_PIXELS ((uint64_t)1 << 30)

/* The effective limits (defaults filled in); limits may be NULL. */
stdcpu_io_limits stdcpu_io_limits_resolve(const stdcpu_io_limits *limits);

typedef enum stdcpu_image_format {
    STDCPU_FORMAT_UNKNOWN = 0,
    STDCPU_FORMAT_PNG,
    STDCPU_FORMAT_JPEG,
    STDCPU_FORMAT_WEBP,
} stdcpu_image_format;

/* Format of encoded bytes by magic number (UNKNOWN if none matches). */
stdcpu_image_format stdcpu_image_sniff(const uint8_t *data, size_t size);
/* Output format for a file name by its extension (UNKNOWN if not .png/.webp). */
stdcpu_image_format stdcpu_image_format_for_path(const char *path);
const char *stdcpu_image_format_name(stdcpu_image_format f);

/* Read one image file. On failure *out is zeroed and nothing is leaked. */
stdcpu_status stdcpu_image_read(const char *path, const stdcpu_io_limits *limits, stdcpu_image *out,
                                stdcpu_error *err);
/* The same from memory; `name` (may be NULL) is used in error messages. */
stdcpu_status stdcpu_image_read_memory(const uint8_t *data, size_t size, const char *name,
                                       const stdcpu_io_limits *limits, stdcpu_image *out,
                                       stdcpu_error *err);

/* Read every frame of an animated WebP (durations from the file). Any other
 * image (PNG, JPEG, still WebP) gives one frame of duration 0. */
stdcpu_status stdcpu_frames_read(const char *path, const stdcpu_io_limits *limits, stdcpu_frames *out,
                                 stdcpu_error *err);
stdcpu_status stdcpu_frames_read_memory(const uint8_t *data, size_t size, const char *name,
                                        const stdcpu_io_limits *limits, stdcpu_frames *out,
                                        stdcpu_error *err);

/* Allocate / free. stdcpu_image_alloc gives uninitialised pixels. */
stdcpu_status stdcpu_image_alloc(stdcpu_image *img, int width, int height, stdcpu_error *err);
void stdcpu_image_free(stdcpu_image *img);
stdcpu_status stdcpu_frames_alloc(stdcpu_frames *fr, int width, int height, int count, stdcpu_error *err);
void stdcpu_frames_free(stdcpu_frames *fr);
/* Non-owning view of frame i (0 <= i < count). */
stdcpu_image stdcpu_frames_frame(const stdcpu_frames *fr, int i);

/* Output options. Zero-initialised = PNG defaults / WebP quality 90 lossy. */
typedef struct stdcpu_write_opts {
    float webp_quality;     /* 0..100; 0 means the default 90 */
    int webp_lossless;      /* nonzero: lossless WebP (pixel-exact) */
    int png_compression;    /* zlib level 1..9; 0 means 6 */
    const char *parameters; /* PNG: stored in a tEXt chunk with keyword "parameters" (NULL: none) */
    /* Testing hook: if nonzero, the write fails (as if the disk were full)
     * once this many bytes have been written. */
    size_t test_fail_after_bytes;
} stdcpu_write_opts;

/* Write an image; format by extension. The file appears atomically: it is
 * written to a temporary file in the same folder, fsynced and renamed over
 * `path`; on any failure no output or temporary file is left and an existing
 * `path` is untouched. opts may be NULL. */
stdcpu_status stdcpu_image_write(const char *path, const stdcpu_image *img, const stdcpu_write_opts *opts,
                                 stdcpu_error *err);
/* Write frames as an animated WebP (path must end in .webp). durations_ms of
 * frames is used; a duration <= 0 becomes 100 ms. A single frame written to
 * .png is also accepted. */
stdcpu_status stdcpu_frames_write(const char *path, const stdcpu_frames *frames, const stdcpu_write_opts *opts,
                                  stdcpu_error *err);

/* Encode to memory (malloc'd *data, free with free()). */
stdcpu_status stdcpu_image_encode(stdcpu_image_format format, const stdcpu_image *img,
                                  const stdcpu_write_opts *opts, uint8_t **data, size_t *size,
                                  stdcpu_error *err);
stdcpu_status stdcpu_frames_encode_webp(const stdcpu_frames *frames, const stdcpu_write_opts *opts,
                                        uint8_t **data, size_t *size, stdcpu_error *err);

#endif
