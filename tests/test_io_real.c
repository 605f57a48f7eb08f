/* The real files in ../shared/data (sizes, content sanity, the animation)
 * and the golden checks of the Pillow-exact resize and the float
 * conversions against ../shared/golden. Skips (77) when ../shared is absent. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/safetensors.h"
#include "io/image.h"
#include "io/imageops.h"
#include "testutil.h"

/* ---- the real files ----------------------------------------------------- */

START_TEST(test_real_files_sizes)
{
    static const struct {
        const char *rel;
        int w, h;
    } files[] = {
        {"data/photos/astronaut.png", 512, 512}, {"data/photos/chelsea.png", 451, 300},
        {"data/photos/coffee.png", 600, 400},    {"data/styles/starry_night.png", 512, 320},
        {"data/styles/the_scream.png", 402, 512}, {"data/styles/shipwreck.png", 512, 353},
        {"data/styles/starry_night.jpg", 1024, 640},
    };
    if (!stdcpu_test_shared("data"))
        return; /* the whole program skips in main() */
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        const char *p = stdcpu_test_shared(files[i].rel);
        ck_assert_msg(p != NULL, "%s missing", files[i].rel);
        stdcpu_image img;
        stdcpu_error err = {0};
        stdcpu_status st = stdcpu_image_read(p, NULL, &img, &err);
#ifndef HAVE_JPEG
        if (strstr(files[i].rel, ".jpg")) {
            ck_assert_int_eq(st, STDCPU_ERR_UNSUPPORTED);
            ck_assert_ptr_nonnull(strstr(err.msg, "without JPEG"));
            continue;
        }
#endif
        ck_assert_msg(st == STDCPU_OK, "%s", err.msg);
        ck_assert_int_eq(img.width, files[i].w);
        ck_assert_int_eq(img.height, files[i].h);
        /* A real photo is not flat: the pixel spread is wide. */
        int lo = 255, hi = 0;
        for (size_t k = 0; k < (size_t)img.width * img.height * 3; k++) {
            lo = img.rgb[k] < lo ? img.rgb[k] : lo;
            hi = img.rgb[k] > hi ? img.rgb[k] : hi;
        }
        ck_assert_msg(hi - lo > 150, "%s: pixel range %d..%d", files[i].rel, lo, hi);
        stdcpu_image_free(&img);
    }
}
END_TEST

#ifdef HAVE_JPEG
START_TEST(test_real_jpeg_matches_png)
{
    /* starry_night.jpg (1024x640) and .png (512x320) show the same painting:
     * 2x2 means of the JPEG stay close to the PNG (mean abs diff < 12). */
    const char *pj = stdcpu_test_shared("data/styles/starry_night.jpg");
    if (!pj)
        return;
    stdcpu_image j, p;
    ck_assert_int_eq(stdcpu_image_read(pj, NULL, &j, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_image_read(stdcpu_test_shared("data/styles/starry_night.png"), NULL, &p, NULL),
                     STDCPU_OK);
    double sum = 0;
    for (int y = 0; y < 320; y++)
        for (int x = 0; x < 512; x++)
            for (int c = 0; c < 3; c++) {
                int m = (j.rgb[((2 * y) * 1024 + 2 * x) * 3 + c] + j.rgb[((2 * y) * 1024 + 2 * x + 1) * 3 + c] +
                         j.rgb[((2 * y + 1) * 1024 + 2 * x) * 3 + c] +
                         j.rgb[((2 * y + 1) * 1024 + 2 * x + 1) * 3 + c] + 2) / 4;
                sum += abs(m - p.rgb[(y * 512 + x) * 3 + c]);
            }
    double mad = sum / (320.0 * 512 * 3);
    ck_assert_msg(mad < 12.0, "mean abs diff %.2f", mad);
    stdcpu_image_free(&j);
    stdcpu_image_free(&p);
}
END_TEST
#endif

START_TEST(test_real_animated_webp)
{
    const char *p = stdcpu_test_shared("data/video/coffee_pan8.webp");
    if (!p)
        return;
    stdcpu_frames fr;
    stdcpu_error err = {0};
    ck_assert_msg(stdcpu_frames_read(p, NULL, &fr, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_int_eq(fr.count, 8);
    ck_assert_int_eq(fr.width, 256);
    ck_assert_int_eq(fr.height, 256);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(fr.durations_ms[i], 125);
    /* A camera pan: consecutive frames differ. */
    for (int i = 1; i < 8; i++)
        ck_assert(memcmp(fr.rgb + (size_t)(i - 1) * 256 * 256 * 3, fr.rgb + (size_t)i * 256 * 256 * 3,
                         256 * 256 * 3) != 0);
    /* The frame limit is checked from the header. */
    stdcpu_io_limits lim = {.max_frames = 7};
    stdcpu_frames none;
    ck_assert_int_eq(stdcpu_frames_read(p, &lim, &none, &err), STDCPU_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "8 frames"));
    ck_assert_ptr_null(none.rgb);
    stdcpu_frames_free(&fr);
}
END_TEST

/* ---- golden checks ------------------------------------------------------- */

/* Opens golden/<case>/io.safetensors and finds a tensor (dtype checked). */
static const stdcpu_st_tensor *golden_tensor(stdcpu_safetensors **st, const char *case_name, const char *name,
                                             stdcpu_st_dtype dtype)
{
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/io.safetensors", case_name);
    const char *p = stdcpu_test_shared(rel);
    ck_assert_msg(p != NULL, "%s missing", rel);
    stdcpu_error err = {0};
    ck_assert_msg(stdcpu_st_open(st, p, &err) == STDCPU_OK, "%s", err.msg);
    const stdcpu_st_tensor *t = stdcpu_st_find(*st, name);
    ck_assert_msg(t != NULL, "%s: no tensor %s", rel, name);
    ck_assert_int_eq(t->dtype, dtype);
    return t;
}

/* Resizes astronaut.png with `filter` to the size of the U8 [H,W,3] golden
 * tensor and compares: every byte within +-1 (the golden tolerance for U8
 * images); returns the largest difference seen. */
static int check_resize_golden(const char *case_name, const char *tensor, stdcpu_resize_filter filter)
{
    stdcpu_safetensors *st;
    const stdcpu_st_tensor *t = golden_tensor(&st, case_name, tensor, STDCPU_ST_U8);
    int ndim = t->ndim;
    ck_assert(ndim >= 3 && t->shape[ndim - 1] == 3);
    int h = (int)t->shape[ndim - 3], w = (int)t->shape[ndim - 2];
    stdcpu_image src, dst;
    stdcpu_error err = {0};
    ck_assert_msg(stdcpu_image_read(stdcpu_test_shared("data/photos/astronaut.png"), NULL, &src, &err) == STDCPU_OK,
                  "%s", err.msg);
    ck_assert_int_eq(stdcpu_image_resize(&src, w, h, filter, &dst, &err), STDCPU_OK);
    const uint8_t *want = t->data;
    int worst = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        int d = abs((int)dst.rgb[i] - (int)want[i]);
        worst = d > worst ? d : worst;
    }
    ck_assert_msg(worst <= 1, "%s %s: max diff %d", case_name, tensor, worst);
    stdcpu_image_free(&src);
    stdcpu_image_free(&dst);
    stdcpu_st_close(st);
    return worst;
}

START_TEST(test_pil_bicubic_golden)
{
    /* astronaut 512 -> 64 and 512 -> 32 with PIL bicubic. Our implementation
     * follows Pillow's integer arithmetic, so we expect an exact match. */
    ck_assert_int_eq(check_resize_golden("pipeline_sdxl_img2img_tiny", "in.image_uint8", STDCPU_RESIZE_PIL_BICUBIC),
                     0);
    ck_assert_int_eq(check_resize_golden("clip_vision_tiny", "in.image_uint8", STDCPU_RESIZE_PIL_BICUBIC), 0);
}
END_TEST

START_TEST(test_pil_box_golden)
{
    ck_assert_int_eq(check_resize_golden("taef2_real", "in.image_uint8", STDCPU_RESIZE_PIL_BOX), 0);
}
END_TEST

/* The float conversion against a golden F32 [1,3,H,W] made from the U8
 * [.., H,W,3] source: must be bit-identical (same float32 operations). */
static void check_convert_golden(const char *case_name, stdcpu_pixel_range range)
{
    stdcpu_safetensors *st;
    const stdcpu_st_tensor *u8 = golden_tensor(&st, case_name, "in.image_uint8", STDCPU_ST_U8);
    const stdcpu_st_tensor *f = stdcpu_st_find(st, "in.image");
    ck_assert(f && f->dtype == STDCPU_ST_F32);
    int h = (int)u8->shape[u8->ndim - 3], w = (int)u8->shape[u8->ndim - 2];
    ck_assert_int_eq(f->numel, (int64_t)3 * h * w);
    stdcpu_image img = {w, h, (uint8_t *)u8->data};
    float *got = malloc(sizeof(float) * 3 * (size_t)w * h), *want = malloc(sizeof(float) * 3 * (size_t)w * h);
    memcpy(want, f->data, f->nbytes); /* tensor data may be unaligned */
    stdcpu_image_to_chw_f32(&img, range, got);
    for (size_t i = 0; i < 3 * (size_t)w * h; i++)
        ck_assert_msg(got[i] == want[i], "%s: element %zu is %.9g, want %.9g", case_name, i, got[i], want[i]);
    /* And back to bytes exactly. */
    stdcpu_image back;
    ck_assert_int_eq(stdcpu_image_alloc(&back, w, h, NULL), STDCPU_OK);
    stdcpu_image_from_chw_f32(got, range, &back);
    ck_assert_mem_eq(back.rgb, img.rgb, (size_t)w * h * 3);
    stdcpu_image_free(&back);
    free(got);
    free(want);
    stdcpu_st_close(st);
}

START_TEST(test_convert_golden)
{
    check_convert_golden("pipeline_sdxl_img2img_tiny", STDCPU_RANGE_PM1); /* x/255*2-1 */
    check_convert_golden("taef2_real", STDCPU_RANGE_01);                  /* x/255 */
}
END_TEST

int main(void)
{
    if (!stdcpu_test_shared("data/photos/astronaut.png")) {
        fprintf(stderr, "../shared/data not found: skipping\n");
        return STDCPU_TEST_SKIP;
    }
    Suite *s = suite_create("io_real");
    TCase *real = tcase_create("real_files");
    tcase_add_test(real, test_real_files_sizes);
#ifdef HAVE_JPEG
    tcase_add_test(real, test_real_jpeg_matches_png);
#endif
    tcase_add_test(real, test_real_animated_webp);
    suite_add_tcase(s, real);
    if (stdcpu_test_shared("golden/README.md")) {
        TCase *golden = tcase_create("golden");
        tcase_add_test(golden, test_pil_bicubic_golden);
        tcase_add_test(golden, test_pil_box_golden);
        tcase_add_test(golden, test_convert_golden);
        suite_add_tcase(s, golden);
    }
    return stdcpu_test_run(s);
}
