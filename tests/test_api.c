/* The public API (include/stdcpu.h) over one loaded model, as a library user
 * runs it: several images in one process. Between the phases of a run the
 * pipeline gives the encoders' and the UNet's activation memory back
 * (stdcpu_clip_trim / stdcpu_unet_trim) and re-plans on the next call; the
 * same settings must then give the same pixels, with the full VAE and the
 * tiny decoder in any order. The model comes from tests/test_api.sh
 * ($STDCPU_TEST_MODEL, a tiny random SDXL model with a TAESD). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stdcpu.h"
#include "testutil.h"

static const char *model_path(void)
{
    const char *p = getenv("STDCPU_TEST_MODEL");
    return p && *p ? p : NULL;
}

static uint8_t *gradient(int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * h * 3);
    ck_assert(rgb);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(255 * x / (w - 1));
            p[1] = (uint8_t)(255 * y / (h - 1));
            p[2] = (uint8_t)((x * 7 + y * 13) & 255);
        }
    return rgb;
}

static void run(stdcpu_ctx *ctx, stdcpu_model *m, const uint8_t *in, int w, int h, int tiny, uint64_t seed,
                uint8_t *out)
{
    stdcpu_style_params p;
    stdcpu_style_params_default(m, &p);
    p.prompt = "";
    p.long_side = 128;
    p.seed = seed;
    p.tiny_decoder = tiny;
    const stdcpu_status s = stdcpu_stylize_rgb(ctx, m, in, w, h, &p, out);
    ck_assert_msg(s == STDCPU_OK, "stylize (tiny %d): %s", tiny, stdcpu_ctx_last_error(ctx));
}

START_TEST(test_repeated_runs)
{
    const int w = 90, h = 61; /* odd size and aspect: resized to work, back to this */
    const size_t n = (size_t)w * h * 3;
    stdcpu_ctx *ctx;
    ck_assert(stdcpu_ctx_create(&ctx, 2) == STDCPU_OK);
    stdcpu_model *m;
    ck_assert_msg(stdcpu_model_load(ctx, model_path(), 1, &m) == STDCPU_OK, "%s", stdcpu_ctx_last_error(ctx));
    uint8_t *in = gradient(w, h), *a = malloc(n), *b = malloc(n), *t1 = malloc(n), *t2 = malloc(n);
    ck_assert(a && b && t1 && t2);

    run(ctx, m, in, w, h, 0, 7, a);
    run(ctx, m, in, w, h, 1, 7, t1); /* the tiny decoder in between */
    run(ctx, m, in, w, h, 0, 7, b);
    ck_assert_msg(!memcmp(a, b, n), "the same settings gave different pixels on the second run");
    run(ctx, m, in, w, h, 1, 7, t2);
    ck_assert_msg(!memcmp(t1, t2, n), "the tiny decoder gave different pixels on the second run");
    ck_assert_msg(memcmp(a, t1, n), "the tiny decoder gave the full VAE's pixels");
    run(ctx, m, in, w, h, 0, 8, b);
    ck_assert_msg(memcmp(a, b, n), "another seed gave the same pixels");

    /* A bad call fails with a message and leaves the model usable. */
    stdcpu_style_params p;
    stdcpu_style_params_default(m, &p);
    p.strength = 2.0;
    ck_assert(stdcpu_stylize_rgb(ctx, m, in, w, h, &p, b) != STDCPU_OK);
    ck_assert(strlen(stdcpu_ctx_last_error(ctx)) > 0);
    ck_assert(stdcpu_stylize_rgb(ctx, m, in, 0, h, &p, b) != STDCPU_OK);
    run(ctx, m, in, w, h, 0, 7, b);
    ck_assert_msg(!memcmp(a, b, n), "a failed call changed what the next one computes");

    free(in);
    free(a);
    free(b);
    free(t1);
    free(t2);
    stdcpu_model_free(m);
    stdcpu_ctx_destroy(ctx);
}
END_TEST

int main(void)
{
    if (!model_path()) {
        fprintf(stderr, "STDCPU_TEST_MODEL is not set (run tests/test_api.sh): skip\n");
        return STDCPU_TEST_SKIP;
    }
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("stylize");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_repeated_runs);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
