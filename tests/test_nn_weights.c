/* Weight sources and layer loading on a real distribution layout (the tiny
 * SDXL UNet folder in ../shared/golden), in f32 and int8 precision. */
#include <math.h>

#include "base/mem.h"
#include "core/stdm.h"
#include "nn/layers.h"
#include "nn/weights.h"
#include "testutil.h"

static stdcpu_wsrc *open_unet(void)
{
    const char *dir = stdcpu_test_shared("golden/models/sdxl_tiny/unet");
    if (!dir)
        return NULL;
    stdcpu_wsrc *w;
    stdcpu_error err;
    ck_assert_msg(stdcpu_wsrc_open_dir(&w, dir, NULL, &err) == STDCPU_OK, "%s", err.msg);
    return w;
}

START_TEST(test_open_dir_config_and_lookup)
{
    stdcpu_wsrc *w = open_unet();
    if (!w)
        return;
    ck_assert_str_eq(stdcpu_wsrc_component(w), "unet");
    const stdcpu_json *cfg = stdcpu_wsrc_config(w);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(stdcpu_json_get_int(cfg, "cross_attention_dim", 0), 80);
    stdcpu_wview v;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_wsrc_get(w, "conv_in.weight", &v, &err), STDCPU_OK);
    ck_assert_int_eq(v.ndim, 4);
    ck_assert_int_eq(v.shape[0], 16);
    ck_assert_int_eq(v.shape[1], 4);
    ck_assert_int_eq(stdcpu_wsrc_get(w, "no.such.weight", &v, &err), STDCPU_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "unet: missing parameter no.such.weight"));
    ck_assert_uint_gt(stdcpu_wsrc_count(w), 100);
    stdcpu_wsrc_close(w);
}
END_TEST

START_TEST(test_overrides_replace_and_add)
{
    stdcpu_wsrc *w = open_unet();
    if (!w)
        return;
    const size_t n0 = stdcpu_wsrc_count(w);
    float *orig;
    stdcpu_wview v;
    ck_assert_int_eq(stdcpu_wsrc_read_f32(w, "conv_in.bias", &orig, &v, NULL), STDCPU_OK);
    float *repl = stdcpu_aligned_alloc(16 * sizeof(float));
    for (int i = 0; i < 16; i++)
        repl[i] = orig[i] + 1.0f;
    const int64_t shape[1] = {16};
    ck_assert_int_eq(stdcpu_wsrc_set_f32(w, "conv_in.bias", repl, 1, shape, NULL), STDCPU_OK);
    ck_assert_uint_eq(stdcpu_wsrc_count(w), n0);
    float *back;
    ck_assert_int_eq(stdcpu_wsrc_read_f32(w, "conv_in.bias", &back, NULL, NULL), STDCPU_OK);
    for (int i = 0; i < 16; i++)
        ck_assert(back[i] == orig[i] + 1.0f);
    stdcpu_aligned_free(back);
    float *extra = stdcpu_aligned_alloc(4 * sizeof(float));
    const int64_t s4[1] = {4};
    ck_assert_int_eq(stdcpu_wsrc_set_f32(w, "new.param", extra, 1, s4, NULL), STDCPU_OK);
    ck_assert_uint_eq(stdcpu_wsrc_count(w), n0 + 1);
    ck_assert_str_eq(stdcpu_wsrc_name_at(w, n0), "new.param");
    ck_assert(stdcpu_wsrc_has(w, "new.param"));
    stdcpu_aligned_free(orig);
    stdcpu_wsrc_close(w);
}
END_TEST

/* y = x W^T + b computed directly from the stored weights. */
static void direct_linear(const float *W, const float *b, const float *x, float *y, int M, int n, int k)
{
    for (int m = 0; m < M; m++)
        for (int o = 0; o < n; o++) {
            double acc = b ? b[o] : 0;
            for (int i = 0; i < k; i++)
                acc += (double)x[m * k + i] * W[o * k + i];
            y[m * n + o] = (float)acc;
        }
}

START_TEST(test_linear_layer_f32_and_int8)
{
    stdcpu_wsrc *w = open_unet();
    if (!w)
        return;
    const char *prefix = "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj";
    float *W, *b;
    stdcpu_wview v;
    ck_assert_int_eq(stdcpu_wsrc_read_f32(w, "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight",
                                          &W, &v, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_wsrc_read_f32(w, "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.bias", &b,
                                          NULL, NULL), STDCPU_OK);
    const int n = (int)v.shape[0], k = (int)v.shape[1], M = 7;
    float x[7 * 64], ref[7 * 512], got[7 * 512];
    ck_assert_int_le(k, 64);
    ck_assert_int_le(n, 512);
    stdcpu_test_rng r = {0x1234};
    for (int i = 0; i < M * k; i++)
        x[i] = stdcpu_test_uniform(&r, -2, 2);
    direct_linear(W, b, x, ref, M, n, k);
    for (int prec = 0; prec < 2; prec++) {
        stdcpu_linear_weight lw;
        size_t nn, kk;
        stdcpu_error err;
        ck_assert_msg(stdcpu_nn_load_linear(&lw, w, prefix, (stdcpu_precision)prec, k, &nn, &kk, &err) == STDCPU_OK,
                      "%s", err.msg);
        ck_assert_uint_eq(nn, (size_t)n);
        ck_assert_uint_eq(kk, (size_t)k);
        ck_assert_int_eq(lw.is_q8, prec == STDCPU_PREC_INT8 && (size_t)n * k >= 4096);
        ck_assert_int_eq(stdcpu_linear(NULL, &lw, x, got, M, NULL, STDCPU_ACT_NONE, &err), STDCPU_OK);
        double d2 = 0, r2 = 0, maxd = 0;
        for (int i = 0; i < M * n; i++) {
            const double d = fabs(got[i] - ref[i]);
            d2 += d * d;
            r2 += (double)ref[i] * ref[i];
            if (d > maxd)
                maxd = d;
        }
        if (!lw.is_q8)
            ck_assert_msg(maxd < 1e-5, "f32 max error %g", maxd);
        else /* W8A8: per-channel weights, per-row activations */
            ck_assert_msg(sqrt(d2 / r2) < 0.02, "int8 relative L2 error %g", sqrt(d2 / r2));
        stdcpu_linear_weight_free(&lw);
    }
    /* a wrong input size is a clear error */
    stdcpu_linear_weight lw;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_nn_load_linear(&lw, w, prefix, STDCPU_PREC_F32, k + 1, NULL, NULL, &err),
                     STDCPU_ERR_MISMATCH);
    stdcpu_conv2d_weight cw; /* a linear weight is not a convolution */
    ck_assert_int_eq(stdcpu_nn_load_conv(&cw, w, prefix, STDCPU_PREC_F32, -1, NULL, NULL, NULL, &err),
                     STDCPU_ERR_MISMATCH);
    stdcpu_aligned_free(W);
    stdcpu_aligned_free(b);
    stdcpu_wsrc_close(w);
}
END_TEST

START_TEST(test_norm_and_missing_dir)
{
    stdcpu_wsrc *w = open_unet();
    if (!w)
        return;
    stdcpu_nn_norm nm;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_nn_load_norm(&nm, w, "conv_norm_out", 16, &err), STDCPU_OK);
    ck_assert_uint_eq(nm.c, 16);
    stdcpu_nn_norm_free(&nm);
    ck_assert_int_eq(stdcpu_nn_load_norm(&nm, w, "conv_norm_out", 17, &err), STDCPU_ERR_MISMATCH);
    stdcpu_wsrc_close(w);
    stdcpu_wsrc *x;
    ck_assert_int_eq(stdcpu_wsrc_open_dir(&x, "/nonexistent/dir", NULL, &err), STDCPU_ERR_NOT_FOUND);
}
END_TEST

START_TEST(test_stdm_component_source)
{
    /* A converted model file: the unet component's tensors under their plain
     * names, int8 weights with scales, and the component's config. */
    char path[4200];
    snprintf(path, sizeof path, "%s/w.stdm", stdcpu_test_tmpdir());
    stdcpu_stdm_writer *wr;
    stdcpu_error err;
    ck_assert_msg(stdcpu_stdm_writer_open(&wr, path, &err) == STDCPU_OK, "%s", err.msg);
    const char *cfg = "{\"in_channels\": 4}";
    ck_assert_int_eq(stdcpu_stdm_write_blob(wr, "unet/config.json", cfg, strlen(cfg), &err), STDCPU_OK);
    const int8_t q[6] = {1, -2, 3, 127, -127, 0};
    const float sc[2] = {0.5f, 0.25f};
    const int64_t s23[2] = {2, 3};
    ck_assert_int_eq(stdcpu_stdm_write_tensor(wr, "unet.lin.weight", STDCPU_DT_I8, 2, s23, q, sc, &err), STDCPU_OK);
    const float b[2] = {1.5f, -1};
    const int64_t s2[1] = {2};
    ck_assert_int_eq(stdcpu_stdm_write_tensor(wr, "unet.lin.bias", STDCPU_DT_F32, 1, s2, b, NULL, &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_stdm_write_tensor(wr, "vae.other", STDCPU_DT_F32, 1, s2, b, NULL, &err), STDCPU_OK);
    ck_assert_msg(stdcpu_stdm_writer_finish(wr, &err) == STDCPU_OK, "%s", err.msg);

    stdcpu_stdm *m;
    ck_assert_msg(stdcpu_stdm_open(&m, path, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_wsrc *w;
    ck_assert_msg(stdcpu_wsrc_open_stdm(&w, m, "unet", &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_int_eq(stdcpu_json_get_int(stdcpu_wsrc_config(w), "in_channels", 0), 4);
    ck_assert_uint_eq(stdcpu_wsrc_count(w), 2);
    ck_assert_str_eq(stdcpu_wsrc_name_at(w, 0), "lin.bias");
    ck_assert_str_eq(stdcpu_wsrc_name_at(w, 1), "lin.weight");
    ck_assert(!stdcpu_wsrc_has(w, "other"));
    float *f;
    ck_assert_int_eq(stdcpu_wsrc_read_f32(w, "lin.weight", &f, NULL, &err), STDCPU_OK);
    const float expect[6] = {0.5f, -1.0f, 1.5f, 31.75f, -31.75f, 0};
    for (int i = 0; i < 6; i++)
        ck_assert(f[i] == expect[i]);
    stdcpu_aligned_free(f);
    /* int8 stored weights run as q8 in int8 precision, dequantised in f32 */
    for (int prec = 0; prec < 2; prec++) {
        stdcpu_linear_weight lw;
        ck_assert_msg(stdcpu_nn_load_linear(&lw, w, "lin", (stdcpu_precision)prec, 3, NULL, NULL, &err) == STDCPU_OK,
                      "%s", err.msg);
        ck_assert_int_eq(lw.is_q8, prec);
        const float x[3] = {1, 2, 4};
        float y[2];
        ck_assert_int_eq(stdcpu_linear(NULL, &lw, x, y, 1, NULL, STDCPU_ACT_NONE, &err), STDCPU_OK);
        /* exact in f32; int8 activations quantised per row (|x| max 4 -> step 4/127) */
        const double r0 = 0.5 * 1 - 1.0 * 2 + 1.5 * 4 + 1.5, r1 = 31.75 - 63.5 + 0 - 1;
        const double tol = prec ? 0.05 * (fabs(r0) + fabs(r1)) : 1e-5;
        ck_assert_msg(fabs(y[0] - r0) <= tol && fabs(y[1] - r1) <= tol, "prec %d: %g %g", prec, y[0], y[1]);
        stdcpu_linear_weight_free(&lw);
    }
    stdcpu_wsrc_close(w);
    ck_assert_int_eq(stdcpu_wsrc_open_stdm(&w, m, "text_encoder", &err), STDCPU_ERR_NOT_FOUND);
    stdcpu_stdm_close(m);
}
END_TEST

int main(void)
{
    if (!stdcpu_test_shared("golden/models/sdxl_tiny/unet"))
        return STDCPU_TEST_SKIP;
    Suite *s = suite_create("nn_weights");
    TCase *tc = tcase_create("weights");
    tcase_add_test(tc, test_open_dir_config_and_lookup);
    tcase_add_test(tc, test_overrides_replace_and_add);
    tcase_add_test(tc, test_linear_layer_f32_and_int8);
    tcase_add_test(tc, test_norm_and_missing_dir);
    tcase_add_test(tc, test_stdm_component_source);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
