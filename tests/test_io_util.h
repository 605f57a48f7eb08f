/* Helpers shared by the io test programs: growable byte buffers, libpng
 * memory callbacks, a smooth test pattern, whole-file reads. */
#ifndef STDCPU_TESTS_TEST_IO_UTIL_H
#define STDCPU_TESTS_TEST_IO_UTIL_H

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "testutil.h"

typedef struct {
    uint8_t *data;
    size_t size, cap;
} test_buf;

typedef struct {
    const test_buf *buf;
    size_t pos;
} test_buf_reader;

static inline void test_buf_init(test_buf *b) { memset(b, 0, sizeof *b); }

static inline void test_buf_append(test_buf *b, const void *p, size_t n)
{
    if (b->size + n > b->cap) {
        b->cap = (b->size + n) * 2 + 64;
        b->data = realloc(b->data, b->cap);
        ck_assert_ptr_nonnull(b->data);
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static inline void test_png_write(png_structp p, png_bytep data, size_t n)
{
    test_buf_append(png_get_io_ptr(p), data, n);
}

static inline void test_png_read(png_structp p, png_bytep out, size_t n)
{
    test_buf_reader *r = png_get_io_ptr(p);
    if (n > r->buf->size - r->pos)
        png_error(p, "test reader: end of data");
    memcpy(out, r->buf->data + r->pos, n);
    r->pos += n;
}

static inline int test_find(const test_buf *b, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= b->size; i++)
        if (!memcmp(b->data + i, needle, n))
            return 1;
    return 0;
}

/* A smooth colour pattern with some detail (compresses like a photo, so
 * lossy PSNR is meaningful); seed varies it. */
static inline stdcpu_image test_pattern(int w, int h, unsigned seed)
{
    stdcpu_image img;
    ck_assert_int_eq(stdcpu_image_alloc(&img, w, h, NULL), STDCPU_OK);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)((x * 255) / (w > 1 ? w - 1 : 1));
            p[1] = (uint8_t)((y * 255) / (h > 1 ? h - 1 : 1));
            p[2] = (uint8_t)(128.0 + 100.0 * sin(x * 0.31 + seed) * cos(y * 0.23 - seed));
        }
    return img;
}

static inline test_buf test_read_whole(const char *path)
{
    test_buf b;
    test_buf_init(&b);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        test_buf_append(&b, chunk, n);
    fclose(f);
    return b;
}

static inline void test_write_whole(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

#endif
