/* Test helper for the command-line tests:
 *   mkimg KIND W H OUT.png   KIND: rgb, gray, gray16, rgba, palette (a smooth test pattern)
 *   mkimg info FILE          prints "W H" of any image stdcpu reads */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"

/* The libpng part, apart so that nothing it keeps across setjmp changes. */
static int encode(FILE *f, int w, int h, int ct, int depth, int ch, unsigned char *row)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ct, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color pal[256];
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        for (int i = 0; i < 256; i++)
            pal[i].red = (png_byte)i, pal[i].green = (png_byte)(255 - i), pal[i].blue = (png_byte)(i * 7);
        png_set_PLTE(png, info, pal, 256);
    }
    png_write_info(png, info);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                /* a smooth pattern with some structure: gradients and rings */
                int v = (x * 255 / (w > 1 ? w - 1 : 1) + c * 85 + ((x - w / 2) * (x - w / 2) + (y - h / 2) * (y - h / 2)) / 7) & 255;
                if (c == 3)
                    v = 64 + (y * 191) / (h > 1 ? h - 1 : 1); /* alpha ramp */
                if (depth == 16) {
                    row[2 * (x * ch + c)] = (unsigned char)v;
                    row[2 * (x * ch + c) + 1] = (unsigned char)(y & 255);
                } else {
                    row[x * ch + c] = (unsigned char)v;
                }
            }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

static int write_png(const char *kind, int w, int h, const char *path)
{
    int ct, depth = 8, ch;
    if (!strcmp(kind, "rgb"))
        ct = PNG_COLOR_TYPE_RGB, ch = 3;
    else if (!strcmp(kind, "rgba"))
        ct = PNG_COLOR_TYPE_RGB_ALPHA, ch = 4;
    else if (!strcmp(kind, "gray"))
        ct = PNG_COLOR_TYPE_GRAY, ch = 1;
    else if (!strcmp(kind, "gray16"))
        ct = PNG_COLOR_TYPE_GRAY, ch = 1, depth = 16;
    else if (!strcmp(kind, "palette"))
        ct = PNG_COLOR_TYPE_PALETTE, ch = 1;
    else
        return 2;
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    unsigned char *row = malloc((size_t)w * ch * (depth / 8));
    int rc = row ? encode(f, w, h, ct, depth, ch, row) : 1;
    free(row);
    return fclose(f) || rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "info")) {
        stdcpu_image img;
        stdcpu_error err;
        if (stdcpu_image_read(argv[2], NULL, &img, &err) != STDCPU_OK) {
            fprintf(stderr, "mkimg: %s\n", err.msg);
            return 1;
        }
        printf("%d %d\n", img.width, img.height);
        stdcpu_image_free(&img);
        return 0;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: mkimg rgb|gray|gray16|rgba|palette W H OUT.png | mkimg info FILE\n");
        return 2;
    }
    return write_png(argv[1], atoi(argv[2]), atoi(argv[3]), argv[4]);
}
