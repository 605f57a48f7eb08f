/* Image files: every PNG colour type / bit depth / interlace against an
 * expected RGB8 computed here, WebP and animated WebP round trips, the real
 * files in ../shared/data, and the text chunk. Hostile inputs and the atomic
 * write guarantee are in test_io_errors.c, the real files in test_io_real.c. */
#include "config.h"

#include <math.h>
#include <png.h>
#include <stdint.h>
#include <webp/encode.h>

#include "base/error.h"
#include "io/image.h"
#include "test_io_util.h"
#include "testutil.h"

/* ---- synthesised PNGs --------------------------------------------------- */

/* One PNG test case: raw samples per pixel (up to 4 channels, in the file's
 * bit depth), an optional palette / tRNS, and the RGB8 we expect back. */
typedef struct {
    int color_type, bit_depth, interlace, with_trns;
} png_case;

static int channels_of(int color_type)
{
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_PALETTE: return 1;
    case PNG_COLOR_TYPE_RGB: return 3;
    default: return 4;
    }
}

/* The documented rule: alpha over white, (c*a + 255*(255-a) + 127) / 255. */
static uint8_t over_white(unsigned c, unsigned a) { return (uint8_t)((c * a + 255u * (255u - a) + 127u) / 255u); }

/* libpng's writer; setjmp lives in this small function so nothing it needs
 * changes after the jump point. */
static void encode_png(test_buf *png, int w, int h, const png_case *pc, const png_color *palette, int npal,
                       const png_byte *trans_alpha, const png_color_16 *trans_color, png_bytep *rows)
{
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    ck_assert(p && info);
    if (setjmp(png_jmpbuf(p)))
        ck_abort_msg("libpng failed writing a test PNG");
    test_buf_init(png);
    png_set_write_fn(p, png, test_png_write, NULL);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, pc->bit_depth, pc->color_type, pc->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (npal)
        png_set_PLTE(p, info, palette, npal);
    if (pc->with_trns)
        png_set_tRNS(p, info, npal ? trans_alpha : NULL, npal, npal ? NULL : trans_color);
    png_write_info(p, info);
    png_write_image(p, rows);
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
}

/* Builds the PNG and the expected pixels. Samples are random; for tRNS cases
 * some pixels are set to the transparent colour on purpose. */
static void make_png_case(const png_case *pc, int w, int h, unsigned long long seed, test_buf *png,
                          uint8_t *expect /* [h][w][3] */)
{
    stdcpu_test_rng rng = {seed};
    int ch = channels_of(pc->color_type), depth = pc->bit_depth;
    unsigned maxv = (1u << depth) - 1;
    unsigned *samples = calloc((size_t)w * h * 4, sizeof(unsigned));
    png_color palette[256];
    png_byte trans_alpha[256];
    int npal = pc->color_type == PNG_COLOR_TYPE_PALETTE ? (int)maxv + 1 : 0;
    for (int i = 0; i < npal; i++) {
        palette[i].red = (png_byte)stdcpu_test_next(&rng);
        palette[i].green = (png_byte)stdcpu_test_next(&rng);
        palette[i].blue = (png_byte)stdcpu_test_next(&rng);
        trans_alpha[i] = (png_byte)(i % 3 == 0 ? 0 : i % 3 == 1 ? 255 : stdcpu_test_next(&rng));
    }
    png_color_16 trans_color = {0};
    trans_color.gray = (png_uint_16)(maxv / 3);
    trans_color.red = (png_uint_16)(maxv / 5);
    trans_color.green = (png_uint_16)(maxv / 7);
    trans_color.blue = (png_uint_16)(maxv / 2);
    for (int i = 0; i < w * h; i++) {
        unsigned *s = samples + 4 * i;
        for (int c = 0; c < ch; c++)
            s[c] = (unsigned)(stdcpu_test_next(&rng) % (maxv + 1));
        if (pc->color_type == PNG_COLOR_TYPE_PALETTE)
            s[0] %= (unsigned)npal;
        if (pc->with_trns && i % 5 == 0) { /* force some transparent pixels */
            s[0] = pc->color_type == PNG_COLOR_TYPE_GRAY ? trans_color.gray : trans_color.red;
            if (pc->color_type == PNG_COLOR_TYPE_RGB) {
                s[1] = trans_color.green;
                s[2] = trans_color.blue;
            }
        }
        /* Expected: scale to 8 bits (sub-byte gray: v*255/max; 16: high byte). */
        unsigned v8[4];
        for (int c = 0; c < ch; c++)
            v8[c] = depth == 16 ? s[c] >> 8 : depth < 8 ? s[c] * 255u / maxv : s[c];
        uint8_t *e = expect + 3 * i;
        switch (pc->color_type) {
        case PNG_COLOR_TYPE_GRAY: {
            int transparent = pc->with_trns && s[0] == trans_color.gray;
            e[0] = e[1] = e[2] = transparent ? 255 : (uint8_t)v8[0];
            break;
        }
        case PNG_COLOR_TYPE_GRAY_ALPHA: e[0] = e[1] = e[2] = over_white(v8[0], v8[1]); break;
        case PNG_COLOR_TYPE_PALETTE: {
            const png_color *p = &palette[s[0]];
            unsigned a = pc->with_trns ? trans_alpha[s[0]] : 255;
            e[0] = over_white(p->red, a);
            e[1] = over_white(p->green, a);
            e[2] = over_white(p->blue, a);
            break;
        }
        case PNG_COLOR_TYPE_RGB: {
            int transparent = pc->with_trns && s[0] == trans_color.red && s[1] == trans_color.green &&
                              s[2] == trans_color.blue;
            for (int c = 0; c < 3; c++)
                e[c] = transparent ? 255 : (uint8_t)v8[c];
            break;
        }
        default:
            for (int c = 0; c < 3; c++)
                e[c] = over_white(v8[c], v8[3]);
        }
    }

    /* Pack rows: sub-byte samples MSB first, 16-bit big-endian. */
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    png_bytep *rows = calloc((size_t)h, sizeof(png_bytep));
    for (int y = 0; y < h; y++) {
        rows[y] = calloc(rowbytes, 1);
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                unsigned v = samples[4 * ((size_t)y * w + x) + c];
                size_t bit = ((size_t)x * ch + c) * depth;
                if (depth == 16) {
                    rows[y][bit / 8] = (png_byte)(v >> 8);
                    rows[y][bit / 8 + 1] = (png_byte)v;
                } else if (depth == 8) {
                    rows[y][bit / 8] = (png_byte)v;
                } else {
                    rows[y][bit / 8] |= (png_byte)(v << (8 - depth - bit % 8));
                }
            }
    }
    encode_png(png, w, h, pc, palette, npal, trans_alpha, &trans_color, rows);
    for (int y = 0; y < h; y++)
        free(rows[y]);
    free(rows);
    free(samples);
}

START_TEST(test_png_every_color_type_depth_interlace)
{
    static const struct {
        int type, depths[5], trns;
    } kinds[] = {
        {PNG_COLOR_TYPE_GRAY, {1, 2, 4, 8, 16}, 0},
        {PNG_COLOR_TYPE_GRAY, {1, 2, 4, 8, 16}, 1},
        {PNG_COLOR_TYPE_GRAY_ALPHA, {8, 16}, 0},
        {PNG_COLOR_TYPE_PALETTE, {1, 2, 4, 8}, 0},
        {PNG_COLOR_TYPE_PALETTE, {1, 2, 4, 8}, 1},
        {PNG_COLOR_TYPE_RGB, {8, 16}, 0},
        {PNG_COLOR_TYPE_RGB, {8, 16}, 1},
        {PNG_COLOR_TYPE_RGB_ALPHA, {8, 16}, 0},
    };
    int cases = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (int d = 0; d < 5 && kinds[k].depths[d]; d++)
            for (int interlace = 0; interlace < 2; interlace++) {
                /* Odd sizes exercise partial bytes and every Adam7 pass. */
                int w = 13 + d, h = 11 + (int)k;
                png_case pc = {kinds[k].type, kinds[k].depths[d],
                               interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, kinds[k].trns};
                test_buf png;
                uint8_t *expect = malloc((size_t)w * h * 3);
                make_png_case(&pc, w, h, 0x1234567ULL + (unsigned long long)cases * 977, &png, expect);
                stdcpu_image img;
                stdcpu_error err = {0};
                stdcpu_status st = stdcpu_image_read_memory(png.data, png.size, "case.png", NULL, &img, &err);
                ck_assert_msg(st == STDCPU_OK, "type %d depth %d interlace %d trns %d: %s", pc.color_type,
                              pc.bit_depth, interlace, pc.with_trns, err.msg);
                ck_assert_int_eq(img.width, w);
                ck_assert_int_eq(img.height, h);
                for (int i = 0; i < w * h * 3; i++)
                    ck_assert_msg(img.rgb[i] == expect[i], "type %d depth %d interlace %d trns %d: byte %d is %d, want %d",
                                  pc.color_type, pc.bit_depth, interlace, pc.with_trns, i, img.rgb[i], expect[i]);
                stdcpu_image_free(&img);
                free(expect);
                free(png.data);
                cases++;
            }
    ck_assert_int_eq(cases, 2 * (5 + 5 + 2 + 4 + 4 + 2 + 2 + 2));
}
END_TEST

START_TEST(test_png_write_read_exact_with_parameters)
{
    stdcpu_image img = test_pattern(37, 23, 5);
    char path[4096];
    snprintf(path, sizeof path, "%s/out.PNG", stdcpu_test_tmpdir()); /* extension is case-insensitive */
    const char *params = "a photo of a cat, oil painting\nSteps: 8, CFG scale: 6, Seed: 42";
    stdcpu_write_opts opts = {.parameters = params};
    stdcpu_error err = {0};
    ck_assert_msg(stdcpu_image_write(path, &img, &opts, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_image back;
    ck_assert_msg(stdcpu_image_read(path, NULL, &back, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_int_eq(back.width, 37);
    ck_assert_int_eq(back.height, 23);
    ck_assert_mem_eq(back.rgb, img.rgb, 37 * 23 * 3);
    stdcpu_image_free(&back);

    /* The text chunk, read with libpng directly: tEXt, keyword "parameters". */
    test_buf file = test_read_whole(path);
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p)))
        ck_abort_msg("libpng failed reading the written PNG");
    test_buf_reader rd = {&file, 0};
    png_set_read_fn(p, &rd, test_png_read);
    png_read_info(p, info);
    png_textp text;
    int ntext = 0;
    png_get_text(p, info, &text, &ntext);
    ck_assert_int_eq(ntext, 1);
    ck_assert_str_eq(text[0].key, "parameters");
    ck_assert_str_eq(text[0].text, params);
    ck_assert_int_eq(text[0].compression, PNG_TEXT_COMPRESSION_NONE);
    png_destroy_read_struct(&p, &info, NULL);
    ck_assert(test_find(&file, "tEXtparameters", 14));
    free(file.data);
    stdcpu_image_free(&img);
}
END_TEST

static double psnr(const uint8_t *a, const uint8_t *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++)
        se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / (se / n));
}

START_TEST(test_webp_lossless_exact_and_lossy_psnr)
{
    stdcpu_image img = test_pattern(64, 48, 9);
    char path[4096];
    snprintf(path, sizeof path, "%s/lossless.webp", stdcpu_test_tmpdir());
    stdcpu_write_opts lossless = {.webp_lossless = 1};
    stdcpu_error err = {0};
    ck_assert_msg(stdcpu_image_write(path, &img, &lossless, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_image back;
    ck_assert_msg(stdcpu_image_read(path, NULL, &back, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_int_eq(back.width, 64);
    ck_assert_int_eq(back.height, 48);
    ck_assert_mem_eq(back.rgb, img.rgb, 64 * 48 * 3);
    stdcpu_image_free(&back);

    /* Lossy at q90 on a smooth pattern: PSNR over 30 dB (observed ~40);
     * q20 must give a smaller file than q95. */
    snprintf(path, sizeof path, "%s/lossy.webp", stdcpu_test_tmpdir());
    stdcpu_write_opts q90 = {.webp_quality = 90};
    ck_assert_msg(stdcpu_image_write(path, &img, &q90, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(stdcpu_image_read(path, NULL, &back, &err) == STDCPU_OK, "%s", err.msg);
    double db = psnr(back.rgb, img.rgb, 64 * 48 * 3);
    ck_assert_msg(db > 30.0, "lossy WebP PSNR %.2f dB", db);
    stdcpu_image_free(&back);
    uint8_t *lo, *hi;
    size_t nlo, nhi;
    stdcpu_write_opts q20 = {.webp_quality = 20}, q95 = {.webp_quality = 95};
    ck_assert_int_eq(stdcpu_image_encode(STDCPU_FORMAT_WEBP, &img, &q20, &lo, &nlo, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_image_encode(STDCPU_FORMAT_WEBP, &img, &q95, &hi, &nhi, NULL), STDCPU_OK);
    ck_assert_msg(nlo < nhi, "q20 %zu bytes, q95 %zu bytes", nlo, nhi);
    free(lo);
    free(hi);
    stdcpu_image_free(&img);
}
END_TEST

START_TEST(test_webp_alpha_composited_over_white)
{
    /* RGBA made here, encoded lossless by libwebp with exact RGB under alpha. */
    int w = 19, h = 7;
    uint8_t *rgba = malloc((size_t)w * h * 4), *expect = malloc((size_t)w * h * 3);
    stdcpu_test_rng rng = {99};
    for (int i = 0; i < w * h; i++) {
        for (int c = 0; c < 4; c++)
            rgba[4 * i + c] = (uint8_t)stdcpu_test_next(&rng);
        if (i % 4 == 0)
            rgba[4 * i + 3] = 0;
        if (i % 4 == 1)
            rgba[4 * i + 3] = 255;
        for (int c = 0; c < 3; c++)
            expect[3 * i + c] = over_white(rgba[4 * i + c], rgba[4 * i + 3]);
    }
    WebPConfig cfg;
    WebPPicture pic;
    WebPMemoryWriter wr;
    ck_assert(WebPConfigInit(&cfg) && WebPPictureInit(&pic));
    cfg.lossless = 1;
    cfg.exact = 1;
    pic.use_argb = 1;
    pic.width = w;
    pic.height = h;
    ck_assert(WebPPictureImportRGBA(&pic, rgba, w * 4));
    WebPMemoryWriterInit(&wr);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &wr;
    ck_assert(WebPEncode(&cfg, &pic));
    WebPPictureFree(&pic);
    stdcpu_image img;
    stdcpu_error err = {0};
    ck_assert_msg(stdcpu_image_read_memory(wr.mem, wr.size, "alpha.webp", NULL, &img, &err) == STDCPU_OK, "%s",
                  err.msg);
    ck_assert_mem_eq(img.rgb, expect, (size_t)w * h * 3);
    stdcpu_image_free(&img);
    WebPMemoryWriterClear(&wr);
    free(rgba);
    free(expect);
}
END_TEST

START_TEST(test_animated_webp_round_trip)
{
    stdcpu_frames fr;
    ck_assert_int_eq(stdcpu_frames_alloc(&fr, 24, 16, 3, NULL), STDCPU_OK);
    static const int durations[3] = {40, 80, 125};
    for (int i = 0; i < 3; i++) {
        stdcpu_image f = test_pattern(24, 16, 100 + (unsigned)i);
        memcpy(fr.rgb + (size_t)i * 24 * 16 * 3, f.rgb, 24 * 16 * 3);
        stdcpu_image_free(&f);
        fr.durations_ms[i] = durations[i];
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/anim.webp", stdcpu_test_tmpdir());
    for (int lossless = 1; lossless >= 0; lossless--) {
        stdcpu_write_opts opts = {.webp_lossless = lossless, .webp_quality = 95};
        stdcpu_error err = {0};
        ck_assert_msg(stdcpu_frames_write(path, &fr, &opts, &err) == STDCPU_OK, "%s", err.msg);
        stdcpu_frames back;
        ck_assert_msg(stdcpu_frames_read(path, NULL, &back, &err) == STDCPU_OK, "%s", err.msg);
        ck_assert_int_eq(back.count, 3);
        ck_assert_int_eq(back.width, 24);
        ck_assert_int_eq(back.height, 16);
        ck_assert_int_eq(back.loop_count, 0);
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(back.durations_ms[i], durations[i]);
            stdcpu_image a = stdcpu_frames_frame(&fr, i), b = stdcpu_frames_frame(&back, i);
            if (lossless)
                ck_assert_mem_eq(a.rgb, b.rgb, 24 * 16 * 3);
            else
                ck_assert_msg(psnr(a.rgb, b.rgb, 24 * 16 * 3) > 28.0, "frame %d PSNR %.2f", i,
                              psnr(a.rgb, b.rgb, 24 * 16 * 3));
        }
        /* Read as a still image: the first frame. */
        stdcpu_image first;
        ck_assert_msg(stdcpu_image_read(path, NULL, &first, &err) == STDCPU_OK, "%s", err.msg);
        ck_assert_mem_eq(first.rgb, back.rgb, 24 * 16 * 3);
        stdcpu_image_free(&first);
        stdcpu_frames_free(&back);
    }
    /* Animations cannot go to PNG; one frame can. */
    snprintf(path, sizeof path, "%s/anim.png", stdcpu_test_tmpdir());
    stdcpu_error err = {0};
    ck_assert_int_eq(stdcpu_frames_write(path, &fr, NULL, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, ".webp"));
    fr.count = 1;
    ck_assert_int_eq(stdcpu_frames_write(path, &fr, NULL, &err), STDCPU_OK);
    fr.count = 3;
    stdcpu_frames one;
    ck_assert_int_eq(stdcpu_frames_read(path, NULL, &one, &err), STDCPU_OK);
    ck_assert_int_eq(one.count, 1);
    ck_assert_int_eq(one.durations_ms[0], 0);
    ck_assert_mem_eq(one.rgb, fr.rgb, 24 * 16 * 3);
    stdcpu_frames_free(&one);
    stdcpu_frames_free(&fr);
}
END_TEST

START_TEST(test_sniff_and_extensions)
{
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    ck_assert_int_eq(stdcpu_image_sniff(png_magic, 8), STDCPU_FORMAT_PNG);
    ck_assert_int_eq(stdcpu_image_sniff(png_magic, 7), STDCPU_FORMAT_UNKNOWN);
    ck_assert_int_eq(stdcpu_image_sniff((const uint8_t *)"\xff\xd8\xff\xe0", 4), STDCPU_FORMAT_JPEG);
    ck_assert_int_eq(stdcpu_image_sniff((const uint8_t *)"RIFF\0\0\0\0WEBPVP8 ", 16), STDCPU_FORMAT_WEBP);
    ck_assert_int_eq(stdcpu_image_sniff((const uint8_t *)"RIFF\0\0\0\0WAVEfmt ", 16), STDCPU_FORMAT_UNKNOWN);
    ck_assert_int_eq(stdcpu_image_format_for_path("a/b.png"), STDCPU_FORMAT_PNG);
    ck_assert_int_eq(stdcpu_image_format_for_path("B.WebP"), STDCPU_FORMAT_WEBP);
    ck_assert_int_eq(stdcpu_image_format_for_path("x.jpg"), STDCPU_FORMAT_UNKNOWN);
    ck_assert_int_eq(stdcpu_image_format_for_path(".png"), STDCPU_FORMAT_UNKNOWN);
    ck_assert_int_eq(stdcpu_image_format_for_path("dir.png/"), STDCPU_FORMAT_UNKNOWN);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("formats");
    tcase_add_test(tc, test_png_every_color_type_depth_interlace);
    tcase_add_test(tc, test_png_write_read_exact_with_parameters);
    tcase_add_test(tc, test_webp_lossless_exact_and_lossy_psnr);
    tcase_add_test(tc, test_webp_alpha_composited_over_white);
    tcase_add_test(tc, test_animated_webp_round_trip);
    tcase_add_test(tc, test_sniff_and_extensions);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
