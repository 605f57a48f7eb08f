/* UNet: what the golden cases (tools/golden/kind_unet.c via test_golden.sh)
 * do not cover:
 *   - activation planning: the full-size SDXL UNet at 1024x1024 (128x128
 *     latents, CFG batch 2) fits the ~2 GB budget, and a plan from the config
 *     alone equals the arena a real forward uses;
 *   - thread-count and batch independence, cached cross-attention context;
 *   - InstantStyle scale dicts (checked against ip_adapter_sdxl_tiny's
 *     case.json list) and their errors;
 *   - config validation and weight/config mismatches (clear errors).
 * Tiny models come from ../shared/golden (tests needing them pass trivially
 * when it is absent; main exits 77 then). */
#define _POSIX_C_SOURCE 200809L /* symlink */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/json.h"
#include "core/threadpool.h"
#include "nn/unet.h"
#include "testutil.h"

#define SDXL_TINY "golden/models/sdxl_tiny/unet"
#define SDXL_FULL "golden/configs/sdxl_base/unet/config.json"
#define SD15_FULL "golden/configs/sd15/unet/config.json"
#define IP_FILE "golden/models/ip_adapter_sdxl_tiny/ip-adapter_sdxl_vit-h_tiny.safetensors"
#define IP_CASE "golden/ip_adapter_sdxl_tiny/case.json"

static stdcpu_unet *load_unet(const char *rel, stdcpu_precision p)
{
    const char *dir = stdcpu_test_shared(rel);
    if (!dir)
        return NULL;
    stdcpu_wsrc *w;
    stdcpu_error err;
    ck_assert_msg(stdcpu_wsrc_open_dir(&w, dir, "unet", &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_unet *u;
    ck_assert_msg(stdcpu_unet_load(&u, w, p, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_wsrc_close(w);
    return u;
}

/* Random inputs for a tiny SDXL call of batch B at H x W. */
typedef struct inputs {
    float *sample, *ctx, *text, *tid;
    stdcpu_unet_inputs in;
} inputs;

static void make_inputs(inputs *x, const stdcpu_unet *u, size_t B, size_t H, size_t W, unsigned seed)
{
    stdcpu_unet_info info;
    stdcpu_unet_get_info(u, &info);
    stdcpu_test_rng r = {0x243f6a8885a308d3ull ^ seed};
    const size_t T = 7, ns = B * info.in_channels * H * W, nc = B * T * info.cross_attention_dim;
    x->sample = malloc(ns * sizeof(float));
    x->ctx = malloc(nc * sizeof(float));
    x->text = malloc((B * info.text_embeds_dim + 1) * sizeof(float));
    x->tid = malloc(B * 6 * sizeof(float));
    ck_assert(x->sample && x->ctx && x->text && x->tid);
    for (size_t i = 0; i < ns; i++)
        x->sample[i] = stdcpu_test_uniform(&r, -2, 2);
    for (size_t i = 0; i < nc; i++)
        x->ctx[i] = stdcpu_test_uniform(&r, -1, 1);
    for (size_t i = 0; i < B * info.text_embeds_dim; i++)
        x->text[i] = stdcpu_test_uniform(&r, -1, 1);
    for (size_t i = 0; i < B * 6; i++)
        x->tid[i] = (float)(stdcpu_test_next(&r) % 1024);
    memset(&x->in, 0, sizeof x->in);
    x->in.batch = B;
    x->in.height = H;
    x->in.width = W;
    x->in.sample = x->sample;
    x->in.timestep = 499;
    x->in.context = x->ctx;
    x->in.context_tokens = T;
    x->in.text_embeds = info.text_time ? x->text : NULL;
    x->in.time_ids = info.text_time ? x->tid : NULL;
}

static void free_inputs(inputs *x)
{
    free(x->sample);
    free(x->ctx);
    free(x->text);
    free(x->tid);
}

static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(a[i]) && isfinite(b[i]), "element %zu is not finite", i);
        md = fmax(md, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    return md / mb;
}

static stdcpu_json_doc *parse_file(const char *rel)
{
    const char *path = stdcpu_test_shared(rel);
    if (!path)
        return NULL;
    stdcpu_json_doc *doc;
    stdcpu_error err;
    ck_assert_msg(stdcpu_json_parse_file(&doc, path, &err) == STDCPU_OK, "%s", err.msg);
    return doc;
}

/* ---- planning ----------------------------------------------------------------- */

START_TEST(test_plan_full_size)
{
    stdcpu_json_doc *xl = parse_file(SDXL_FULL), *sd = parse_file(SD15_FULL);
    if (!xl || !sd) {
        stdcpu_json_free(xl);
        stdcpu_json_free(sd);
        return;
    }
    stdcpu_error err;
    size_t peak_xl, peak_xl_ip, peak_sd;
    /* SDXL 1024x1024: 128x128 latents, CFG batch 2, 77 tokens, 2 threads. */
    ck_assert_msg(stdcpu_unet_plan_config(stdcpu_json_root(xl), 2, 128, 128, 77, 0, 2, &peak_xl, &err) == STDCPU_OK,
                  "%s", err.msg);
    ck_assert_msg(stdcpu_unet_plan_config(stdcpu_json_root(xl), 2, 128, 128, 77, 4, 2, &peak_xl_ip, &err) ==
                      STDCPU_OK,
                  "%s", err.msg);
    ck_assert_msg(stdcpu_unet_plan_config(stdcpu_json_root(sd), 2, 64, 64, 77, 0, 2, &peak_sd, &err) == STDCPU_OK,
                  "%s", err.msg);
    printf("unet plan: SDXL 1024x1024 batch 2: %.1f MiB (with IP-Adapter %.1f MiB); SD1.5 512x512 batch 2: %.1f MiB\n",
           peak_xl / 1048576.0, peak_xl_ip / 1048576.0, peak_sd / 1048576.0);
    ck_assert_msg(peak_xl < ((size_t)2 << 30), "SDXL 1024 needs %zu bytes of activations", peak_xl);
    ck_assert(peak_xl_ip >= peak_xl);
    /* Lower bound: the skips alone at full resolution (conv_in + 2 resnets +
     * the 64x64 ones ...) exceed 3 maps of 2 x 320 x 128 x 128 floats. */
    ck_assert(peak_xl > 3 * (size_t)2 * 320 * 128 * 128 * 4);
    stdcpu_json_free(xl);
    stdcpu_json_free(sd);
}
END_TEST

START_TEST(test_plan_equals_forward_and_threads)
{
    stdcpu_unet *u = load_unet(SDXL_TINY, STDCPU_PREC_F32);
    if (!u)
        return;
    stdcpu_json_doc *cfg = parse_file(SDXL_TINY "/config.json");
    inputs x;
    make_inputs(&x, u, 2, 10, 6, 1);
    const size_t n = 2 * 4 * 10 * 6;
    float *o1 = malloc(n * sizeof(float)), *o3 = malloc(n * sizeof(float));
    ck_assert(o1 && o3);
    stdcpu_error err;
    stdcpu_pool *p1, *p3;
    ck_assert(stdcpu_pool_create(&p1, 1, &err) == STDCPU_OK);
    ck_assert(stdcpu_pool_create(&p3, 3, &err) == STDCPU_OK);
    ck_assert_msg(stdcpu_unet_forward(u, p1, &x.in, o1, &err) == STDCPU_OK, "%s", err.msg);
    size_t planned;
    ck_assert(stdcpu_unet_plan_config(stdcpu_json_root(cfg), 2, 10, 6, 7, 0, 1, &planned, &err) == STDCPU_OK);
    ck_assert_uint_eq(planned, stdcpu_unet_peak_bytes(u));
    ck_assert_msg(stdcpu_unet_forward(u, p3, &x.in, o3, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert(stdcpu_unet_plan_config(stdcpu_json_root(cfg), 2, 10, 6, 7, 0, 3, &planned, &err) == STDCPU_OK);
    ck_assert_uint_eq(planned, stdcpu_unet_peak_bytes(u));
    /* Only float reassociation (GroupNorm statistics) may differ. */
    const double d = max_rel_diff(o1, o3, n);
    ck_assert_msg(d < 1e-5, "1 vs 3 threads differ by %g", d);

    /* Batch independence: row 1 alone equals row 1 of the batch. */
    inputs y = x;
    y.in.batch = 1;
    y.in.sample = x.sample + 4 * 10 * 6;
    y.in.context = x.ctx + 7 * 80;
    y.in.text_embeds = x.text + 32;
    y.in.time_ids = x.tid + 6;
    ck_assert_msg(stdcpu_unet_forward(u, p3, &y.in, o1, &err) == STDCPU_OK, "%s", err.msg);
    const double db = max_rel_diff(o1, o3 + 4 * 10 * 6, 4 * 10 * 6);
    ck_assert_msg(db < 1e-5, "batch row differs by %g", db);

    /* Cached cross-attention keys/values give the same result. */
    ck_assert_msg(stdcpu_unet_set_context(u, p3, x.ctx, 2, 7, NULL, 0, &err) == STDCPU_OK, "%s", err.msg);
    y = x;
    y.in.context = NULL;
    ck_assert_msg(stdcpu_unet_forward(u, p3, &y.in, o1, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(max_rel_diff(o1, o3, n) == 0, "cached context differs");
    y.in.batch = 1; /* the cache is for batch 2 */
    ck_assert(stdcpu_unet_forward(u, p3, &y.in, o1, &err) == STDCPU_ERR_INVALID_ARG);
    stdcpu_unet_clear_context(u);
    y.in.batch = 2;
    ck_assert(stdcpu_unet_forward(u, p3, &y.in, o1, &err) == STDCPU_ERR_INVALID_ARG);

    stdcpu_pool_destroy(p1);
    stdcpu_pool_destroy(p3);
    free(o1);
    free(o3);
    free_inputs(&x);
    stdcpu_json_free(cfg);
    stdcpu_unet_free(u);
}
END_TEST

/* The attention precision of an int8 UNet: the default follows the ISA
 * (int8 where there are int8 dot products), int8 forced at every size
 * changes the output a little (not at all would mean it did not run) and
 * stays thread-count independent, and going back to f32 reproduces the f32
 * attention's output exactly. */
START_TEST(test_attention_precision)
{
    stdcpu_unet *u = load_unet(SDXL_TINY, STDCPU_PREC_INT8);
    if (!u)
        return;
    size_t min_keys = 0;
    const stdcpu_isa isa = stdcpu_isa_active();
    const int dot = isa == STDCPU_ISA_AVX512VNNI || isa == STDCPU_ISA_NEONDOT;
    ck_assert_int_eq(stdcpu_unet_attention_precision(u, &min_keys), dot ? STDCPU_PREC_INT8 : STDCPU_PREC_F32);
    ck_assert_uint_eq(min_keys, STDCPU_UNET_ATTN_INT8_MIN_KEYS);

    inputs x;
    make_inputs(&x, u, 2, 10, 6, 3);
    const size_t n = 2 * 4 * 10 * 6;
    float *of = malloc(n * sizeof(float)), *o1 = malloc(n * sizeof(float)), *o3 = malloc(n * sizeof(float));
    ck_assert(of && o1 && o3);
    stdcpu_error err;
    stdcpu_pool *p1, *p3;
    ck_assert(stdcpu_pool_create(&p1, 1, &err) == STDCPU_OK);
    ck_assert(stdcpu_pool_create(&p3, 3, &err) == STDCPU_OK);
    stdcpu_unet_set_attention_precision(u, STDCPU_PREC_F32, 0);
    ck_assert_msg(stdcpu_unet_forward(u, p3, &x.in, of, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_unet_set_attention_precision(u, STDCPU_PREC_INT8, 0); /* every attention, 60 tokens */
    ck_assert_msg(stdcpu_unet_forward(u, p1, &x.in, o1, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(stdcpu_unet_forward(u, p3, &x.in, o3, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(memcmp(o1, o3, n * sizeof(float)) == 0, "int8 attention: 1 and 3 threads differ");
    const double d = max_rel_diff(o1, of, n);
    ck_assert_msg(d > 0 && d < 0.05, "int8 vs f32 attention: max rel diff %g", d);
    stdcpu_unet_set_attention_precision(u, STDCPU_PREC_F32, 0);
    ck_assert_msg(stdcpu_unet_forward(u, p3, &x.in, o1, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(memcmp(o1, of, n * sizeof(float)) == 0, "back to f32 attention: output differs");
    stdcpu_pool_destroy(p1);
    stdcpu_pool_destroy(p3);
    free(of);
    free(o1);
    free(o3);
    free_inputs(&x);
    stdcpu_unet_free(u);
}
END_TEST

/* The fused feed-forward of an int8 UNet (stdcpu_geglu_ff) against the
 * unfused ops, in a whole forward. In the tiny SDXL UNet only the second
 * attention level's feed-forward has both layers int8 (256x32 and 32x128
 * weights; the first level's 24x96 W_out is under the converter's 4096-element
 * int8 threshold and stays f32, so that level runs unfused). At 64x48
 * latents, batch 2, that level has 384 rows: fused with 1 and with 3
 * threads (>= 2 row blocks per thread). The output must be the same bits
 * fused or not and at every thread count. */
START_TEST(test_fused_feed_forward)
{
    stdcpu_unet *u = load_unet(SDXL_TINY, STDCPU_PREC_INT8);
    if (!u)
        return;
    inputs x;
    make_inputs(&x, u, 2, 64, 48, 5);
    const size_t n = 2 * 4 * 64 * 48;
    float *o1 = malloc(n * sizeof(float)), *o3 = malloc(n * sizeof(float)), *ou = malloc(n * sizeof(float));
    ck_assert(o1 && o3 && ou);
    stdcpu_error err;
    stdcpu_pool *p1, *p3;
    ck_assert(stdcpu_pool_create(&p1, 1, &err) == STDCPU_OK);
    ck_assert(stdcpu_pool_create(&p3, 3, &err) == STDCPU_OK);
    ck_assert_msg(stdcpu_unet_forward(u, p3, &x.in, o3, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(stdcpu_unet_forward(u, p1, &x.in, o1, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(memcmp(o1, o3, n * sizeof(float)) == 0, "fused feed-forward: 1 and 3 threads differ");
    stdcpu_unet_set_fusion(u, 0);
    ck_assert_msg(stdcpu_unet_forward(u, p1, &x.in, ou, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(memcmp(ou, o1, n * sizeof(float)) == 0, "fused and unfused feed-forward differ");
    stdcpu_pool_destroy(p1);
    stdcpu_pool_destroy(p3);
    free(o1);
    free(o3);
    free(ou);
    free_inputs(&x);
    stdcpu_unet_free(u);
}
END_TEST

/* ---- IP-Adapter scales ---------------------------------------------------------- */

static stdcpu_status set_scale_text(stdcpu_unet *u, const char *text, stdcpu_error *err)
{
    stdcpu_json_doc *doc;
    ck_assert(stdcpu_json_parse(&doc, text, strlen(text), NULL) == STDCPU_OK);
    stdcpu_status s = stdcpu_unet_set_ip_scale_json(u, stdcpu_json_root(doc), err);
    stdcpu_json_free(doc);
    return s;
}

START_TEST(test_ip_scales)
{
    stdcpu_unet *u = load_unet(SDXL_TINY, STDCPU_PREC_F32);
    stdcpu_json_doc *cs = parse_file(IP_CASE);
    const char *ipf = stdcpu_test_shared(IP_FILE);
    if (!u || !cs || !ipf) {
        stdcpu_unet_free(u);
        stdcpu_json_free(cs);
        return;
    }
    stdcpu_error err;
    stdcpu_wsrc *ip;
    ck_assert_msg(stdcpu_wsrc_open_safetensors(&ip, ipf, "ip_adapter", &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(stdcpu_unet_load_ip_adapter(u, ip, STDCPU_PREC_F32, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_wsrc_close(ip);
    stdcpu_unet_info info;
    stdcpu_unet_get_info(u, &info);
    const stdcpu_json *want = stdcpu_json_get(stdcpu_json_root(cs), "ip_scale_instantstyle");
    ck_assert_uint_eq(info.n_attn2, stdcpu_json_count(want));
    /* The STD dict, and the same with a one-element list for the mid block. */
    const char *dicts[] = {"{\"down\": 0, \"mid\": 0, \"up\": {\"block_0\": [0, 1, 0], \"block_1\": 0}}",
                           "{\"mid\": [0.0], \"up\": {\"block_0\": [0.0, 1, 0.0]}}"};
    for (size_t d = 0; d < 2; d++) {
        ck_assert_msg(set_scale_text(u, dicts[d], &err) == STDCPU_OK, "%s", err.msg);
        const float *sc = stdcpu_unet_ip_scales(u);
        for (size_t i = 0; i < info.n_attn2; i++) {
            double v;
            ck_assert(stdcpu_json_double(stdcpu_json_at(stdcpu_json_at(want, i), 1), &v));
            ck_assert_msg(sc[i] == (float)v, "dict %zu layer %zu: %g, want %g", d, i, sc[i], v);
        }
    }
    ck_assert(set_scale_text(u, "0.5", &err) == STDCPU_OK);
    for (size_t i = 0; i < info.n_attn2; i++)
        ck_assert(stdcpu_unet_ip_scales(u)[i] == 0.5f);
    /* down_blocks.0 has no attentions; lists must have 1 or L(+1) values. */
    ck_assert(set_scale_text(u, "{\"down\": {\"block_0\": 1}}", &err) == STDCPU_ERR_FORMAT);
    ck_assert(set_scale_text(u, "{\"up\": {\"block_0\": [1, 0]}}", &err) == STDCPU_ERR_FORMAT);
    ck_assert(set_scale_text(u, "{\"left\": 1}", &err) == STDCPU_ERR_FORMAT);
    ck_assert(set_scale_text(u, "\"x\"", &err) == STDCPU_ERR_FORMAT);
    /* a failed setting leaves the scales unchanged */
    ck_assert(stdcpu_unet_ip_scales(u)[0] == 0.5f);
    float bad[1] = {1};
    ck_assert(stdcpu_unet_set_ip_scales(u, bad, 1, &err) == STDCPU_ERR_INVALID_ARG);
    stdcpu_json_free(cs);
    stdcpu_unet_free(u);
}
END_TEST

/* ---- config validation ------------------------------------------------------------ */

static stdcpu_status plan_text(const char *text, stdcpu_error *err)
{
    stdcpu_json_doc *doc;
    ck_assert(stdcpu_json_parse(&doc, text, strlen(text), NULL) == STDCPU_OK);
    size_t peak;
    stdcpu_status s = stdcpu_unet_plan_config(stdcpu_json_root(doc), 1, 8, 8, 77, 0, 1, &peak, err);
    stdcpu_json_free(doc);
    return s;
}

#define BASE_CFG                                                                                              \
    "\"block_out_channels\": [16, 24], \"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\"], " \
    "\"up_block_types\": [\"CrossAttnUpBlock2D\", \"UpBlock2D\"], \"norm_num_groups\": 8, "                \
    "\"cross_attention_dim\": 32, \"layers_per_block\": 1"

START_TEST(test_config_validation)
{
    stdcpu_error err;
    ck_assert_msg(plan_text("{" BASE_CFG ", \"attention_head_dim\": 3}", &err) == STDCPU_OK, "%s", err.msg);
    /* 16 or 24 channels do not split into 5 heads */
    ck_assert(plan_text("{" BASE_CFG ", \"attention_head_dim\": 5}", &err) == STDCPU_ERR_FORMAT);
    ck_assert(strstr(err.msg, "heads") != NULL);
    ck_assert(plan_text("{" BASE_CFG ", \"attention_head_dim\": [1, 2, 3]}", &err) == STDCPU_ERR_FORMAT);
    ck_assert(plan_text("{" BASE_CFG ", \"attention_head_dim\": 3, \"mid_block_type\": \"UNetMidBlock2D\"}", &err) ==
              STDCPU_ERR_UNSUPPORTED);
    ck_assert(plan_text("{" BASE_CFG ", \"attention_head_dim\": 3, \"time_cond_proj_dim\": 256}", &err) ==
              STDCPU_ERR_UNSUPPORTED);
    ck_assert(plan_text("{" BASE_CFG ", \"attention_head_dim\": 3, \"addition_embed_type\": \"text\"}", &err) ==
              STDCPU_ERR_UNSUPPORTED);
    ck_assert(plan_text("{\"block_out_channels\": [15, 24], \"down_block_types\": [\"DownBlock2D\", "
                        "\"DownBlock2D\"], \"up_block_types\": [\"UpBlock2D\", \"UpBlock2D\"], "
                        "\"norm_num_groups\": 8, \"attention_head_dim\": 1}",
                        &err) == STDCPU_ERR_FORMAT);
    ck_assert(strstr(err.msg, "groups") != NULL);
    ck_assert(plan_text("{\"block_out_channels\": [16]}", &err) == STDCPU_ERR_FORMAT);
    ck_assert(plan_text("[]", &err) == STDCPU_ERR_FORMAT);
}
END_TEST

/* A config that disagrees with the weights is a clear mismatch error: a
 * folder with an edited config.json next to (a link to) the real weights. */
START_TEST(test_weights_must_match_config)
{
    const char *dir0 = stdcpu_test_shared(SDXL_TINY);
    if (!dir0)
        return;
    char weights[4200], dir[4200], path[4300];
    snprintf(weights, sizeof weights, "%s/diffusion_pytorch_model.safetensors", dir0);
    snprintf(dir, sizeof dir, "%s/unet_bad", stdcpu_test_tmpdir());
    ck_assert(mkdir(dir, 0700) == 0);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    ck_assert(symlink(weights, path) == 0);
    const char *bad[] = {"[16, 24, 40], \"attention_head_dim\": [2, 3, 4], \"transformer_layers_per_block\": [1, 1, 2], "
                         "\"cross_attention_dim\": 80",
                         "[16, 24, 32], \"attention_head_dim\": [2, 3, 4], \"transformer_layers_per_block\": [1, 1, 3], "
                         "\"cross_attention_dim\": 80",
                         "[16, 24, 32], \"attention_head_dim\": [2, 3, 4], \"transformer_layers_per_block\": [1, 1, 2], "
                         "\"cross_attention_dim\": 64"};
    const char *why[] = {"config", "transformer_blocks.2", "64"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *f = fopen(path, "w");
        ck_assert(f != NULL);
        fprintf(f,
                "{\"block_out_channels\": %s, "
                "\"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\"], "
                "\"up_block_types\": [\"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"UpBlock2D\"], "
                "\"norm_num_groups\": 8, \"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 12, "
                "\"projection_class_embeddings_input_dim\": 104, \"use_linear_projection\": true}",
                bad[i]);
        fclose(f);
        stdcpu_error err;
        stdcpu_wsrc *w;
        ck_assert_msg(stdcpu_wsrc_open_dir(&w, dir, "unet", &err) == STDCPU_OK, "%s", err.msg);
        stdcpu_unet *u = NULL;
        stdcpu_status s = stdcpu_unet_load(&u, w, STDCPU_PREC_F32, &err);
        ck_assert_msg(s == STDCPU_ERR_MISMATCH || s == STDCPU_ERR_NOT_FOUND, "case %zu: status %d (%s)", i, (int)s,
                      err.msg);
        ck_assert_msg(strstr(err.msg, why[i]) != NULL, "case %zu: %s", i, err.msg);
        ck_assert(u == NULL);
        stdcpu_wsrc_close(w);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("unet");
    TCase *tc = tcase_create("unet");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_plan_full_size);
    tcase_add_test(tc, test_config_validation);
    tcase_add_test(tc, test_plan_equals_forward_and_threads);
    tcase_add_test(tc, test_attention_precision);
    tcase_add_test(tc, test_fused_feed_forward);
    tcase_add_test(tc, test_ip_scales);
    tcase_add_test(tc, test_weights_must_match_config);
    suite_add_tcase(s, tc);
    const int rc = stdcpu_test_run(s);
    return rc ? rc : (stdcpu_test_shared(SDXL_TINY) ? 0 : STDCPU_TEST_SKIP);
}
