/* Image ops: resize against straightforward reference implementations
 * written here (direct 2-D weighted sums in double), crop, and the float
 * conversions. The Pillow-exact modes are checked bit for bit against real
 * Pillow output in test_io_real.c (golden data). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/image.h"
#include "io/imageops.h"
#include "test_io_util.h"
#include "testutil.h"

static stdcpu_image random_image(int w, int h, unsigned long long seed)
{
    stdcpu_image img;
    ck_assert_int_eq(stdcpu_image_alloc(&img, w, h, NULL), STDCPU_OK);
    stdcpu_test_rng rng = {seed};
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        img.rgb[i] = (uint8_t)(stdcpu_test_next(&rng) >> 56);
    return img;
}

static double ref_cubic(double x)
{
    x = fabs(x);
    return x < 1 ? 1.5 * x * x * x - 2.5 * x * x + 1 : x < 2 ? -0.5 * x * x * x + 2.5 * x * x - 4 * x + 2 : 0;
}

static double ref_triangle(double x) { return fabs(x) < 1 ? 1 - fabs(x) : 0; }

/* Weights of every input index for output index o (in_n -> out_n), by the
 * textbook definition: output pixel centre at (o + 0.5) * scale in input
 * coordinates, kernel stretched by the downscale factor, normalised. AREA
 * uses the overlap of [o*s, (o+1)*s) with each input pixel. */
static void ref_weights(stdcpu_resize_filter f, int in_n, int out_n, int o, double *w)
{
    double scale = (double)in_n / out_n, stretch = scale > 1 ? scale : 1, sum = 0;
    for (int i = 0; i < in_n; i++) {
        if (f == STDCPU_RESIZE_AREA) {
            double lo = fmax(o * scale, i), hi = fmin((o + 1) * scale, i + 1.0);
            w[i] = hi > lo ? hi - lo : 0;
        } else {
            double d = (i + 0.5 - (o + 0.5) * scale) / stretch;
            w[i] = f == STDCPU_RESIZE_BICUBIC ? ref_cubic(d) : ref_triangle(d);
        }
        sum += w[i];
    }
    for (int i = 0; i < in_n; i++)
        w[i] /= sum;
}

/* out(x, y) = sum_i sum_j wx[i] wy[j] in(i, j), rounded once. */
static stdcpu_image ref_resize(const stdcpu_image *src, int ow, int oh, stdcpu_resize_filter f)
{
    stdcpu_image dst;
    ck_assert_int_eq(stdcpu_image_alloc(&dst, ow, oh, NULL), STDCPU_OK);
    double *wx = malloc(sizeof(double) * src->width), *wy = malloc(sizeof(double) * src->height);
    for (int y = 0; y < oh; y++) {
        ref_weights(f, src->height, oh, y, wy);
        for (int x = 0; x < ow; x++) {
            ref_weights(f, src->width, ow, x, wx);
            for (int c = 0; c < 3; c++) {
                double s = 0;
                for (int j = 0; j < src->height; j++)
                    for (int i = 0; i < src->width; i++)
                        s += wx[i] * wy[j] * src->rgb[((size_t)j * src->width + i) * 3 + c];
                dst.rgb[((size_t)y * ow + x) * 3 + c] = (uint8_t)(s < 0 ? 0 : s > 255 ? 255 : floor(s + 0.5));
            }
        }
    }
    free(wx);
    free(wy);
    return dst;
}

START_TEST(test_float_resize_matches_reference)
{
    /* Down (antialiased, incl. non-integer factors), up, mixed. Tolerance:
     * +-1, since the library keeps the horizontal pass in float32 where the
     * reference uses double (a value near .5 may round the other way); at
     * least 99% of bytes must be identical. */
    static const int sizes[][4] = {{37, 29, 11, 7}, {40, 40, 10, 10}, {23, 17, 61, 40}, {30, 20, 45, 9},
                                   {16, 16, 16, 5}};
    static const stdcpu_resize_filter filters[] = {STDCPU_RESIZE_AREA, STDCPU_RESIZE_BILINEAR,
                                                   STDCPU_RESIZE_BICUBIC};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t f = 0; f < 3; f++) {
            stdcpu_image src = random_image(sizes[s][0], sizes[s][1], 11 + s);
            int ow = sizes[s][2], oh = sizes[s][3];
            stdcpu_image got, want = ref_resize(&src, ow, oh, filters[f]);
            stdcpu_error err = {0};
            ck_assert_msg(stdcpu_image_resize(&src, ow, oh, filters[f], &got, &err) == STDCPU_OK, "%s", err.msg);
            size_t n = (size_t)ow * oh * 3, same = 0;
            for (size_t i = 0; i < n; i++) {
                int d = abs((int)got.rgb[i] - (int)want.rgb[i]);
                ck_assert_msg(d <= 1, "filter %d %dx%d->%dx%d byte %zu: %d vs %d", (int)filters[f], sizes[s][0],
                              sizes[s][1], ow, oh, i, got.rgb[i], want.rgb[i]);
                same += d == 0;
            }
            ck_assert_msg(same * 100 >= n * 99, "only %zu of %zu identical", same, n);
            stdcpu_image_free(&got);
            stdcpu_image_free(&want);
            stdcpu_image_free(&src);
        }
}
END_TEST

START_TEST(test_area_integer_factor_is_block_mean)
{
    stdcpu_image src = random_image(24, 18, 5), got;
    ck_assert_int_eq(stdcpu_image_resize(&src, 8, 6, STDCPU_RESIZE_AREA, &got, NULL), STDCPU_OK);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 8; x++)
            for (int c = 0; c < 3; c++) {
                int sum = 0;
                for (int j = 0; j < 3; j++)
                    for (int i = 0; i < 3; i++)
                        sum += src.rgb[((size_t)(3 * y + j) * 24 + 3 * x + i) * 3 + c];
                ck_assert_int_eq(got.rgb[((size_t)y * 8 + x) * 3 + c], (sum + 4) / 9);
            }
    stdcpu_image_free(&got);
    stdcpu_image_free(&src);
}
END_TEST

START_TEST(test_bilinear_upscale_is_textbook)
{
    /* 2x upscale = half-pixel bilinear with clamped edges (OpenCV / torch
     * align_corners=False): sample at (x + 0.5) / 2 - 0.5. */
    stdcpu_image src = random_image(9, 7, 6), got;
    ck_assert_int_eq(stdcpu_image_resize(&src, 18, 14, STDCPU_RESIZE_BILINEAR, &got, NULL), STDCPU_OK);
    for (int y = 0; y < 14; y++)
        for (int x = 0; x < 18; x++) {
            double sx = fmax((x + 0.5) / 2 - 0.5, 0), sy = fmax((y + 0.5) / 2 - 0.5, 0);
            int x0 = (int)sx, y0 = (int)sy, x1 = x0 + 1 < 9 ? x0 + 1 : 8, y1 = y0 + 1 < 7 ? y0 + 1 : 6;
            double fx = sx - x0, fy = sy - y0;
            for (int c = 0; c < 3; c++) {
#define PX(i, j) src.rgb[((size_t)(j) * 9 + (i)) * 3 + c]
                double v = (1 - fy) * ((1 - fx) * PX(x0, y0) + fx * PX(x1, y0)) +
                           fy * ((1 - fx) * PX(x0, y1) + fx * PX(x1, y1));
#undef PX
                int d = abs((int)got.rgb[((size_t)y * 18 + x) * 3 + c] - (int)floor(v + 0.5));
                ck_assert_msg(d <= 1, "(%d,%d,%d): %d vs %.3f", x, y, c, got.rgb[((size_t)y * 18 + x) * 3 + c], v);
            }
        }
    stdcpu_image_free(&got);
    stdcpu_image_free(&src);
}
END_TEST

START_TEST(test_every_filter_keeps_constant_and_identity)
{
    stdcpu_image flat;
    ck_assert_int_eq(stdcpu_image_alloc(&flat, 31, 19, NULL), STDCPU_OK);
    for (size_t i = 0; i < 31 * 19 * 3; i++)
        flat.rgb[i] = (uint8_t)(i % 3 == 0 ? 0 : i % 3 == 1 ? 173 : 255);
    stdcpu_image rnd = random_image(31, 19, 8);
    for (int f = STDCPU_RESIZE_AREA; f <= STDCPU_RESIZE_PIL_BOX; f++) {
        static const int sizes[][2] = {{7, 5}, {64, 40}, {31, 7}, {3, 19}, {1, 1}, {100, 2}};
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            stdcpu_image out;
            ck_assert_int_eq(stdcpu_image_resize(&flat, sizes[s][0], sizes[s][1], (stdcpu_resize_filter)f, &out, NULL),
                             STDCPU_OK);
            for (size_t i = 0; i < (size_t)sizes[s][0] * sizes[s][1] * 3; i++)
                ck_assert_msg(out.rgb[i] == flat.rgb[i % 3], "filter %d size %d: byte %zu is %d", f, (int)s, i,
                              out.rgb[i]);
            stdcpu_image_free(&out);
        }
        stdcpu_image same;
        ck_assert_int_eq(stdcpu_image_resize(&rnd, 31, 19, (stdcpu_resize_filter)f, &same, NULL), STDCPU_OK);
        ck_assert_mem_eq(same.rgb, rnd.rgb, 31 * 19 * 3);
        stdcpu_image_free(&same);
    }
    stdcpu_image bad;
    stdcpu_error err = {0};
    ck_assert_int_eq(stdcpu_image_resize(&rnd, 0, 5, STDCPU_RESIZE_BICUBIC, &bad, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_image_resize(&rnd, 5, 5, (stdcpu_resize_filter)99, &bad, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_ptr_null(bad.rgb);
    stdcpu_image_free(&rnd);
    stdcpu_image_free(&flat);
}
END_TEST

START_TEST(test_pil_modes_close_to_float_reference)
{
    /* Pillow's fixed point and its 8-bit intermediate stay within 2 of the
     * exact double computation with the same kernel (bilinear, bicubic). */
    stdcpu_image src = random_image(41, 33, 9);
    static const stdcpu_resize_filter pil[] = {STDCPU_RESIZE_PIL_BILINEAR, STDCPU_RESIZE_PIL_BICUBIC};
    static const stdcpu_resize_filter ref[] = {STDCPU_RESIZE_BILINEAR, STDCPU_RESIZE_BICUBIC};
    for (int k = 0; k < 2; k++) {
        stdcpu_image got, want = ref_resize(&src, 13, 50, ref[k]);
        ck_assert_int_eq(stdcpu_image_resize(&src, 13, 50, pil[k], &got, NULL), STDCPU_OK);
        for (size_t i = 0; i < 13 * 50 * 3; i++)
            ck_assert_msg(abs((int)got.rgb[i] - (int)want.rgb[i]) <= 2, "filter %d byte %zu: %d vs %d", (int)pil[k],
                          i, got.rgb[i], want.rgb[i]);
        stdcpu_image_free(&got);
        stdcpu_image_free(&want);
    }
    stdcpu_image_free(&src);
}
END_TEST

START_TEST(test_crop_and_center_crop)
{
    stdcpu_image src = random_image(11, 8, 10), out;
    stdcpu_error err = {0};
    ck_assert_int_eq(stdcpu_image_crop(&src, 3, 2, 5, 4, &out, &err), STDCPU_OK);
    for (int y = 0; y < 4; y++)
        ck_assert_mem_eq(out.rgb + (size_t)y * 5 * 3, src.rgb + ((size_t)(y + 2) * 11 + 3) * 3, 5 * 3);
    stdcpu_image_free(&out);
    /* centre: (11-4)/2 = 3 (floor), (8-3)/2 = 2 */
    ck_assert_int_eq(stdcpu_image_center_crop(&src, 4, 3, &out, &err), STDCPU_OK);
    for (int y = 0; y < 3; y++)
        ck_assert_mem_eq(out.rgb + (size_t)y * 4 * 3, src.rgb + ((size_t)(y + 2) * 11 + 3) * 3, 4 * 3);
    stdcpu_image_free(&out);
    ck_assert_int_eq(stdcpu_image_center_crop(&src, 11, 8, &out, &err), STDCPU_OK);
    ck_assert_mem_eq(out.rgb, src.rgb, 11 * 8 * 3);
    stdcpu_image_free(&out);
    ck_assert_int_eq(stdcpu_image_crop(&src, 7, 0, 5, 1, &out, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_image_crop(&src, -1, 0, 5, 1, &out, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_image_crop(&src, 0, 0, 0, 1, &out, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_image_center_crop(&src, 12, 1, &out, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_ptr_null(out.rgb);
    stdcpu_image_free(&src);

    int w, h;
    stdcpu_size_for_shortest_side(451, 300, 224, &w, &h); /* 224 * 451 / 300 = 336.7 */
    ck_assert(w == 336 && h == 224);
    stdcpu_size_for_shortest_side(402, 512, 224, &w, &h); /* 224 * 512 / 402 = 285.3 */
    ck_assert(w == 224 && h == 285);
    stdcpu_size_for_shortest_side(512, 512, 224, &w, &h);
    ck_assert(w == 224 && h == 224);
}
END_TEST

START_TEST(test_float_conversions)
{
    stdcpu_image img;
    ck_assert_int_eq(stdcpu_image_alloc(&img, 16, 16, NULL), STDCPU_OK);
    for (int i = 0; i < 256; i++) { /* every value in every channel */
        img.rgb[3 * i + 0] = (uint8_t)i;
        img.rgb[3 * i + 1] = (uint8_t)(255 - i);
        img.rgb[3 * i + 2] = (uint8_t)(i * 7);
    }
    float *chw = malloc(sizeof(float) * 768), *hwc = malloc(sizeof(float) * 768);
    stdcpu_image back;
    ck_assert_int_eq(stdcpu_image_alloc(&back, 16, 16, NULL), STDCPU_OK);
    for (int r = 0; r < 2; r++) {
        stdcpu_pixel_range range = r ? STDCPU_RANGE_PM1 : STDCPU_RANGE_01;
        stdcpu_image_to_chw_f32(&img, range, chw);
        stdcpu_image_to_hwc_f32(&img, range, hwc);
        for (int i = 0; i < 256; i++)
            for (int c = 0; c < 3; c++) {
                float want = (float)img.rgb[3 * i + c] / 255.0f;
                if (r)
                    want = want * 2.0f - 1.0f;
                ck_assert(chw[c * 256 + i] == want);
                ck_assert(hwc[3 * i + c] == want);
            }
        ck_assert(chw[0] == (r ? -1.0f : 0.0f) && chw[255] == 1.0f);
        memset(back.rgb, 0, 768);
        stdcpu_image_from_chw_f32(chw, range, &back);
        ck_assert_mem_eq(back.rgb, img.rgb, 768);
        memset(back.rgb, 0, 768);
        stdcpu_image_from_hwc_f32(hwc, range, &back);
        ck_assert_mem_eq(back.rgb, img.rgb, 768);
    }
    /* Out of range and NaN clamp; 0.5/255 steps round to nearest. */
    float odd[6] = {-3.0f, 7.0f, NAN, 0.2f / 255.0f, 0.8f / 255.0f, 254.6f / 255.0f};
    stdcpu_image one = {2, 1, back.rgb};
    stdcpu_image_from_hwc_f32(odd, STDCPU_RANGE_01, &one);
    ck_assert_int_eq(back.rgb[0], 0);
    ck_assert_int_eq(back.rgb[1], 255);
    ck_assert_int_eq(back.rgb[2], 0);
    ck_assert_int_eq(back.rgb[3], 0);
    ck_assert_int_eq(back.rgb[4], 1);
    ck_assert_int_eq(back.rgb[5], 255);
    free(chw);
    free(hwc);
    stdcpu_image_free(&back);
    stdcpu_image_free(&img);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_ops");
    TCase *tc = tcase_create("ops");
    tcase_add_test(tc, test_float_resize_matches_reference);
    tcase_add_test(tc, test_area_integer_factor_is_block_mean);
    tcase_add_test(tc, test_bilinear_upscale_is_textbook);
    tcase_add_test(tc, test_every_filter_keeps_constant_and_identity);
    tcase_add_test(tc, test_pil_modes_close_to_float_reference);
    tcase_add_test(tc, test_crop_and_center_crop);
    tcase_add_test(tc, test_float_conversions);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
