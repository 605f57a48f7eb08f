/* CLIP encoders and the IP-Adapter image projection: what the golden cases
 * (tools/golden/kind_clip.c, run by test_golden.sh) do not cover.
 *   - the image projection against a float64 computation straight from the
 *     weights and against ip_adapter_sdxl_tiny's out.ip_tokens;
 *   - config validation and weight/config mismatches (clear errors);
 *   - hidden-state selection (index, partial runs), batch and thread-count
 *     independence, argument checks, the arena peak.
 * The tiny models come from ../shared/golden (tests needing them pass
 * trivially when it is absent; main exits 77 then). */
/* symlink, mkdir */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "core/threadpool.h"
#include "nn/clip.h"
#include "nn/ip_adapter.h"
#include "testutil.h"

#define TEXT_L "golden/models/sdxl_tiny/text_encoder"
#define TEXT_G "golden/models/sdxl_tiny/text_encoder_2"
#define VISION "golden/models/ip_adapter_sdxl_tiny/image_encoder"
#define IP_FILE "golden/models/ip_adapter_sdxl_tiny/ip-adapter_sdxl_vit-h_tiny.safetensors"
#define IP_CASE "golden/ip_adapter_sdxl_tiny"

static stdcpu_clip *load_clip(const char *rel, stdcpu_precision p)
{
    const char *dir = stdcpu_test_shared(rel);
    if (!dir)
        return NULL;
    stdcpu_wsrc *w;
    stdcpu_error err;
    ck_assert_msg(stdcpu_wsrc_open_dir(&w, dir, NULL, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_clip *m;
    ck_assert_msg(stdcpu_clip_load(&m, w, p, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_wsrc_close(w);
    return m;
}

static float *falloc(size_t n)
{
    float *p = stdcpu_aligned_alloc(n * sizeof(float));
    ck_assert(p != NULL);
    return p;
}

/* max |a-b| <= tol * max(1, max|b|) */
static void assert_close(const float *a, const float *b, size_t n, double tol, const char *what)
{
    double md = 0, mb = 1;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(a[i]), "%s: element %zu is not finite", what, i);
        md = fmax(md, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    ck_assert_msg(md <= tol * mb, "%s: max |diff| %g > %g", what, md, tol * mb);
}

/* Synthetic ids for the tiny vocab (1000): BOS 998, EOS 999 after `len` words, padding pad. */
static void make_ids(int64_t *ids, size_t T, size_t len, int64_t pad, unsigned seed)
{
    stdcpu_test_rng r = {0x9e3779b97f4a7c15ull ^ seed};
    ids[0] = 998;
    for (size_t t = 1; t < T; t++)
        ids[t] = t <= len ? (int64_t)(stdcpu_test_next(&r) % 990) : t == len + 1 ? 999 : pad;
}

/* ---- image projection --------------------------------------------------------- */

START_TEST(test_ip_image_proj_matches_weights_and_golden)
{
    const char *file = stdcpu_test_shared(IP_FILE);
    if (!file)
        return;
    char ip_path[4096], io_path[4096];
    snprintf(ip_path, sizeof ip_path, "%s", file);
    const char *io = stdcpu_test_shared(IP_CASE "/io.safetensors");
    ck_assert(io != NULL);
    snprintf(io_path, sizeof io_path, "%s", io);

    stdcpu_error err;
    stdcpu_safetensors *st, *ios;
    ck_assert_msg(stdcpu_st_open(&st, ip_path, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(stdcpu_st_open(&ios, io_path, &err) == STDCPU_OK, "%s", err.msg);
    float *W, *bias, *g, *beta, *emb, *want;
    const stdcpu_st_tensor *tw = stdcpu_st_find(st, "image_proj.proj.weight");
    const stdcpu_st_tensor *te = stdcpu_st_find(ios, "in.image_embeds");
    const stdcpu_st_tensor *tt = stdcpu_st_find(ios, "out.ip_tokens");
    ck_assert(tw && te && tt);
    ck_assert(stdcpu_st_to_f32(tw, &W, &err) == STDCPU_OK);
    ck_assert(stdcpu_st_to_f32(stdcpu_st_find(st, "image_proj.proj.bias"), &bias, &err) == STDCPU_OK);
    ck_assert(stdcpu_st_to_f32(stdcpu_st_find(st, "image_proj.norm.weight"), &g, &err) == STDCPU_OK);
    ck_assert(stdcpu_st_to_f32(stdcpu_st_find(st, "image_proj.norm.bias"), &beta, &err) == STDCPU_OK);
    ck_assert(stdcpu_st_to_f32(te, &emb, &err) == STDCPU_OK);
    ck_assert(stdcpu_st_to_f32(tt, &want, &err) == STDCPU_OK);
    const size_t NX = (size_t)tw->shape[0], D = (size_t)tw->shape[1], N = (size_t)te->shape[0];
    ck_assert_uint_eq((size_t)te->shape[2], D); /* [N, 1, D] */

    /* float64 reference from the weights: LN_X(reshape(W e + b, [4, X])), eps 1e-5 */
    const size_t X = (size_t)stdcpu_st_find(st, "image_proj.norm.weight")->numel, TOK = NX / X;
    ck_assert_uint_eq(TOK * X, NX);
    ck_assert_uint_eq((size_t)tt->numel, N * NX);
    float *ref = falloc(N * NX);
    double *row = malloc(NX * sizeof *row);
    ck_assert(row != NULL);
    for (size_t n = 0; n < N; n++) {
        for (size_t o = 0; o < NX; o++) {
            double s = bias[o];
            for (size_t k = 0; k < D; k++)
                s += (double)W[o * D + k] * emb[n * D + k];
            row[o] = s;
        }
        for (size_t t = 0; t < TOK; t++) {
            double mean = 0, var = 0;
            for (size_t c = 0; c < X; c++)
                mean += row[t * X + c];
            mean /= (double)X;
            for (size_t c = 0; c < X; c++)
                var += (row[t * X + c] - mean) * (row[t * X + c] - mean);
            var /= (double)X;
            for (size_t c = 0; c < X; c++)
                ref[(n * TOK + t) * X + c] =
                    (float)((row[t * X + c] - mean) / sqrt(var + 1e-5) * g[c] + beta[c]);
        }
    }
    /* The golden output itself agrees with the float64 reference (tolerance of
     * case.json: max_abs 1.13e-5). */
    assert_close(want, ref, N * NX, 1.13e-5, "golden ip_tokens vs float64");

    stdcpu_wsrc *w;
    ck_assert_msg(stdcpu_wsrc_open_safetensors(&w, ip_path, "ip_adapter", &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_pool *pool;
    ck_assert(stdcpu_pool_create(&pool, 2, &err) == STDCPU_OK);
    for (int p = 0; p < 2; p++) {
        stdcpu_ip_image_proj ip;
        ck_assert_msg(stdcpu_ip_image_proj_load(&ip, w, p ? STDCPU_PREC_INT8 : STDCPU_PREC_F32, X, D, &err) ==
                          STDCPU_OK, "%s", err.msg);
        ck_assert_uint_eq(ip.tokens, 4);
        ck_assert_uint_eq(ip.cross_dim, X);
        ck_assert_uint_eq(ip.embed_dim, D);
        float *got = falloc(N * NX);
        ck_assert_msg(stdcpu_ip_image_proj_forward(&ip, pool, emb, N, got, &err) == STDCPU_OK, "%s", err.msg);
        /* The policy keeps ip_adapter.image_proj.* in float: int8 mode is exact too. */
        assert_close(got, want, N * NX, 1.13e-5, "ip_tokens vs golden");
        assert_close(got, ref, N * NX, 1.13e-5, "ip_tokens vs float64");
        stdcpu_aligned_free(got);
        stdcpu_ip_image_proj_free(&ip);
    }
    /* Mismatched dimensions are errors, not crashes. */
    stdcpu_ip_image_proj ip;
    ck_assert_int_eq(stdcpu_ip_image_proj_load(&ip, w, STDCPU_PREC_F32, X + 1, D, &err), STDCPU_ERR_MISMATCH);
    ck_assert_int_ne(stdcpu_ip_image_proj_load(&ip, w, STDCPU_PREC_F32, X, D + 1, &err), STDCPU_OK);
    stdcpu_pool_destroy(pool);
    stdcpu_wsrc_close(w);
    free(row);
    stdcpu_aligned_free(ref);
    stdcpu_aligned_free(W);
    stdcpu_aligned_free(bias);
    stdcpu_aligned_free(g);
    stdcpu_aligned_free(beta);
    stdcpu_aligned_free(emb);
    stdcpu_aligned_free(want);
    stdcpu_st_close(st);
    stdcpu_st_close(ios);
}
END_TEST

/* ---- config --------------------------------------------------------------------- */

static stdcpu_status parse_cfg(const char *text, stdcpu_clip_config *c)
{
    stdcpu_json_doc *doc;
    stdcpu_error err;
    ck_assert_msg(stdcpu_json_parse(&doc, text, strlen(text), &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_status st = stdcpu_clip_config_from_json(stdcpu_json_root(doc), c, &err);
    if (st)
        ck_assert_msg(err.msg[0] != '\0', "an error without a message");
    stdcpu_json_free(doc);
    return st;
}

START_TEST(test_config_validation)
{
    stdcpu_clip_config c;
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"clip_text_model\",\"hidden_size\":48,\"num_attention_heads\":4,"
                               "\"hidden_act\":\"gelu\",\"intermediate_size\":192,\"num_hidden_layers\":3}", &c),
                     STDCPU_OK);
    ck_assert_int_eq(c.kind, STDCPU_CLIP_TEXT);
    ck_assert_uint_eq(c.hidden, 48);
    ck_assert_int_eq(c.act, STDCPU_ELT_GELU);
    ck_assert_uint_eq(c.max_positions, 77);  /* transformers defaults for absent keys */
    ck_assert_uint_eq(c.vocab, 49408);
    ck_assert_float_eq(c.eps, 1e-5f);
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"clip_vision_model\",\"hidden_size\":1280,\"num_attention_heads\":16,"
                               "\"image_size\":224,\"patch_size\":14}", &c), STDCPU_OK);
    ck_assert_int_eq(c.kind, STDCPU_CLIP_VISION);
    ck_assert_int_eq(c.act, STDCPU_ELT_QUICK_GELU);
    ck_assert_uint_eq(c.channels, 3);
    /* errors */
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"clip_text_model\",\"hidden_size\":30,\"num_attention_heads\":4}", &c),
                     STDCPU_ERR_FORMAT);
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"clip_text_model\",\"hidden_act\":\"relu\"}", &c),
                     STDCPU_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"t5\"}", &c), STDCPU_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"clip_vision_model\",\"image_size\":224,\"patch_size\":15}", &c),
                     STDCPU_ERR_FORMAT);
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"clip_text_model\",\"num_hidden_layers\":0}", &c), STDCPU_ERR_FORMAT);
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"clip_text_model\",\"hidden_size\":\"big\"}", &c), STDCPU_ERR_FORMAT);
    ck_assert_int_eq(parse_cfg("{\"model_type\":\"clip_text_model\",\"layer_norm_eps\":-1}", &c), STDCPU_ERR_FORMAT);
    ck_assert_int_eq(parse_cfg("[]", &c), STDCPU_ERR_FORMAT);
}
END_TEST

/* A copy of a component folder whose config.json has `key` replaced by `value`. */
static const char *patched_dir(const char *rel, const char *key, const char *value, const char *name)
{
    const char *src = stdcpu_test_shared(rel);
    if (!src)
        return NULL;
    char srcdir[4096], path[4200];
    snprintf(srcdir, sizeof srcdir, "%s", src);
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", stdcpu_test_tmpdir(), name);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/config.json", srcdir);
    stdcpu_json_doc *doc;
    stdcpu_error err;
    ck_assert(stdcpu_json_parse_file(&doc, path, &err) == STDCPU_OK);
    /* Rewrite the flat config object with one key replaced. */
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    const stdcpu_json *root = stdcpu_json_root(doc);
    fputc('{', f);
    for (size_t i = 0; i < stdcpu_json_count(root); i++) {
        const stdcpu_json *v = stdcpu_json_at(root, i);
        fprintf(f, "%s\"%s\":", i ? "," : "", v->key);
        if (!strcmp(v->key, key))
            fputs(value, f);
        else if (v->type == STDCPU_JSON_STRING)
            fprintf(f, "\"%s\"", v->str);
        else if (v->type == STDCPU_JSON_NUMBER)
            fprintf(f, "%.17g", v->number);
        else
            fputs("null", f);
    }
    fputs("}\n", f);
    fclose(f);
    stdcpu_json_free(doc);
    char target[4200];
    snprintf(target, sizeof target, "%s/model.safetensors", srcdir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_int_eq(symlink(target, path), 0);
    return dir;
}

static stdcpu_status load_dir_status(const char *dir, stdcpu_error *err)
{
    stdcpu_wsrc *w;
    ck_assert_msg(stdcpu_wsrc_open_dir(&w, dir, "text_encoder", err) == STDCPU_OK, "%s", err->msg);
    stdcpu_clip *m = NULL;
    stdcpu_status st = stdcpu_clip_load(&m, w, STDCPU_PREC_F32, err);
    ck_assert(st == STDCPU_OK || m == NULL);
    stdcpu_clip_free(m);
    stdcpu_wsrc_close(w);
    return st;
}

START_TEST(test_weights_must_match_config)
{
    stdcpu_error err;
    const char *d = patched_dir(TEXT_L, "hidden_size", "40", "hidden40");
    if (!d)
        return;
    ck_assert_int_eq(load_dir_status(d, &err), STDCPU_ERR_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.msg, "text_encoder"));
    d = patched_dir(TEXT_L, "num_hidden_layers", "2", "layers2");
    ck_assert_int_eq(load_dir_status(d, &err), STDCPU_ERR_MISMATCH);
    d = patched_dir(TEXT_L, "num_hidden_layers", "4", "layers4");
    ck_assert_int_eq(load_dir_status(d, &err), STDCPU_ERR_NOT_FOUND);
    d = patched_dir(TEXT_L, "intermediate_size", "64", "inter64");
    ck_assert_int_eq(load_dir_status(d, &err), STDCPU_ERR_MISMATCH);
    d = patched_dir(TEXT_L, "vocab_size", "999", "vocab999");
    ck_assert_int_eq(load_dir_status(d, &err), STDCPU_ERR_MISMATCH);
    d = patched_dir(TEXT_L, "model_type", "\"clip_vision_model\"", "asvision");
    ck_assert_int_ne(load_dir_status(d, &err), STDCPU_OK);
}
END_TEST

/* ---- forward properties ------------------------------------------------------------ */

START_TEST(test_text_hidden_selection_and_batch)
{
    stdcpu_clip *m = load_clip(TEXT_G, STDCPU_PREC_F32);
    if (!m)
        return;
    const stdcpu_clip_config *c = stdcpu_clip_get_config(m);
    const size_t B = 3, T = 77, H = c->hidden, L = c->layers, BTH = B * T * H, P = stdcpu_clip_projection_dim(m);
    ck_assert_uint_gt(P, 0);
    int64_t ids[3 * 77];
    make_ids(ids, T, 5, 0, 1);
    make_ids(ids + T, T, 40, 0, 2);
    make_ids(ids + 2 * T, T, 75, 0, 3);
    stdcpu_error err;
    float *hs = falloc((L + 1) * BTH), *last = falloc(BTH), *pooled = falloc(B * H), *emb = falloc(B * P);
    stdcpu_clip_out all = {.hidden_states = hs, .last_hidden_state = last, .pooled = pooled, .embeds = emb};
    ck_assert_msg(stdcpu_clip_text_forward(m, NULL, ids, B, T, &all, &err) == STDCPU_OK, "%s", err.msg);

    /* hidden index: -2 (penultimate, runs L-1 layers only), -1, 0 and L. */
    float *h = falloc(BTH);
    const int idx[] = {-2, -1, 0, (int)L, -(int)L - 1};
    const size_t want[] = {L - 1, L, 0, L, 0};
    for (size_t i = 0; i < sizeof idx / sizeof *idx; i++) {
        stdcpu_clip_out o = {.hidden = h, .hidden_index = idx[i]};
        ck_assert_msg(stdcpu_clip_text_forward(m, NULL, ids, B, T, &o, &err) == STDCPU_OK, "%s", err.msg);
        ck_assert_msg(memcmp(h, hs + want[i] * BTH, BTH * sizeof(float)) == 0, "hidden_index %d", idx[i]);
    }
    /* pooled = last_hidden_state at the EOS (first 999) */
    const size_t eos[] = {6, 41, 76};
    for (size_t b = 0; b < B; b++)
        ck_assert(memcmp(pooled + b * H, last + (b * T + eos[b]) * H, H * sizeof(float)) == 0);

    /* Batch independence: row 1 alone equals row 1 of the batch. */
    float *last1 = falloc(T * H), *emb1 = falloc(P);
    stdcpu_clip_out one = {.last_hidden_state = last1, .embeds = emb1};
    ck_assert_msg(stdcpu_clip_text_forward(m, NULL, ids + T, 1, T, &one, &err) == STDCPU_OK, "%s", err.msg);
    assert_close(last1, last + T * H, T * H, 1e-6, "batch row 1 last_hidden_state");
    assert_close(emb1, emb + P, P, 1e-6, "batch row 1 text_embeds");

    /* Shorter sequences work (positions 0..T-1); causal attention makes the
     * first tokens independent of what follows. */
    stdcpu_clip_out o16 = {.hidden = last1, .hidden_index = -2};
    ck_assert_msg(stdcpu_clip_text_forward(m, NULL, ids + T, 1, 16, &o16, &err) == STDCPU_OK, "%s", err.msg);
    assert_close(last1, hs + (L - 1) * BTH + T * H, 16 * H, 1e-6, "causal prefix");

    /* argument checks */
    int64_t bad[77];
    memcpy(bad, ids, sizeof bad);
    bad[10] = (int64_t)c->vocab;
    ck_assert_int_eq(stdcpu_clip_text_forward(m, NULL, bad, 1, T, &all, &err), STDCPU_ERR_INVALID_ARG);
    bad[10] = -1;
    ck_assert_int_eq(stdcpu_clip_text_forward(m, NULL, bad, 1, T, &all, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_clip_text_forward(m, NULL, ids, 1, T + 1, &all, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_clip_text_forward(m, NULL, ids, 0, T, &all, &err), STDCPU_ERR_INVALID_ARG);
    stdcpu_clip_out badidx = {.hidden = h, .hidden_index = (int)L + 1};
    ck_assert_int_eq(stdcpu_clip_text_forward(m, NULL, ids, 1, T, &badidx, &err), STDCPU_ERR_INVALID_ARG);
    badidx.hidden_index = -(int)L - 2;
    ck_assert_int_eq(stdcpu_clip_text_forward(m, NULL, ids, 1, T, &badidx, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_clip_vision_forward(m, NULL, last, 1, &all, &err), STDCPU_ERR_INVALID_ARG);

    /* The arena holds exactly what the largest forward (B=3, T=77) needs. */
    ck_assert_uint_eq(stdcpu_clip_peak_bytes(m), stdcpu_clip_arena_bytes(m, B, T, 1));
    ck_assert_uint_lt(stdcpu_clip_arena_bytes(m, 1, T, 1), stdcpu_clip_arena_bytes(m, B, T, 1));
    ck_assert_uint_eq(stdcpu_clip_arena_bytes(m, SIZE_MAX / 2, T, 1), SIZE_MAX);

    stdcpu_aligned_free(hs);
    stdcpu_aligned_free(last);
    stdcpu_aligned_free(pooled);
    stdcpu_aligned_free(emb);
    stdcpu_aligned_free(h);
    stdcpu_aligned_free(last1);
    stdcpu_aligned_free(emb1);
    stdcpu_clip_free(m);
}
END_TEST

START_TEST(test_no_projection_is_an_error)
{
    stdcpu_clip *m = load_clip(TEXT_L, STDCPU_PREC_F32);
    if (!m)
        return;
    ck_assert_uint_eq(stdcpu_clip_projection_dim(m), 0);
    int64_t ids[77];
    make_ids(ids, 77, 10, 999, 4);
    float e[64];
    stdcpu_clip_out o = {.embeds = e};
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_clip_text_forward(m, NULL, ids, 1, 77, &o, &err), STDCPU_ERR_NOT_FOUND);
    stdcpu_clip_free(m);
}
END_TEST

/* 1 vs 3 threads, every output, both precisions: identical up to float
 * reassociation (the ops split work without changing the summation order, so
 * in practice bit-identical). */
START_TEST(test_thread_count_independence)
{
    for (int p = 0; p < 2; p++) {
        const stdcpu_precision prec = p ? STDCPU_PREC_INT8 : STDCPU_PREC_F32;
        stdcpu_clip *m = load_clip(VISION, prec);
        if (!m)
            return;
        const stdcpu_clip_config *c = stdcpu_clip_get_config(m);
        const size_t B = 2, S = c->image_size, T = stdcpu_clip_vision_tokens(m), H = c->hidden;
        const size_t L = c->layers, P = stdcpu_clip_projection_dim(m), BTH = B * T * H;
        ck_assert_uint_eq(T, (S / c->patch_size) * (S / c->patch_size) + 1);
        float *px = falloc(B * 3 * S * S);
        stdcpu_test_rng r = {12345};
        for (size_t i = 0; i < B * 3 * S * S; i++)
            px[i] = stdcpu_test_uniform(&r, -2.f, 2.f);
        float *out[2][3];
        stdcpu_error err;
        for (int t = 0; t < 2; t++) {
            stdcpu_pool *pool;
            ck_assert(stdcpu_pool_create(&pool, t ? 3 : 1, &err) == STDCPU_OK);
            out[t][0] = falloc((L + 1) * BTH);
            out[t][1] = falloc(B * H);
            out[t][2] = falloc(B * P);
            stdcpu_clip_out o = {.hidden_states = out[t][0], .pooled = out[t][1], .embeds = out[t][2]};
            ck_assert_msg(stdcpu_clip_vision_forward(m, pool, px, B, &o, &err) == STDCPU_OK, "%s", err.msg);
            stdcpu_pool_destroy(pool);
        }
        assert_close(out[1][0], out[0][0], (L + 1) * BTH, 1e-6, "hidden_states 1 vs 3 threads");
        assert_close(out[1][1], out[0][1], B * H, 1e-6, "pooled 1 vs 3 threads");
        assert_close(out[1][2], out[0][2], B * P, 1e-6, "image_embeds 1 vs 3 threads");
        /* Batch independence: image 1 alone. */
        float *emb1 = falloc(P);
        stdcpu_clip_out o1 = {.embeds = emb1};
        ck_assert_msg(stdcpu_clip_vision_forward(m, NULL, px + 3 * S * S, 1, &o1, &err) == STDCPU_OK, "%s", err.msg);
        /* int8: activations are quantised per row, so rows do not interact either. */
        assert_close(emb1, out[0][2] + P, P, 1e-6, "vision batch row 1");
        ck_assert_int_eq(stdcpu_clip_text_forward(m, NULL, (const int64_t *)px, 1, 1, &o1, &err),
                         STDCPU_ERR_INVALID_ARG);
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < 3; i++)
                stdcpu_aligned_free(out[t][i]);
        stdcpu_aligned_free(emb1);
        stdcpu_aligned_free(px);
        stdcpu_clip_free(m);
    }
}
END_TEST


/* CLIPImageProcessor preprocessing against the pixel values of the golden
 * cases (their sources are already S x S: no resize; the float rounding of
 * rescale / normalise is what is checked). A non-square image is resized so
 * that its shorter side is S, then centre-cropped. */
START_TEST(test_preprocess_matches_golden_pixels)
{
    stdcpu_clip *m = load_clip(VISION, STDCPU_PREC_F32);
    if (!m)
        return;
    const size_t S = stdcpu_clip_get_config(m)->image_size;
    const char *cases[2][3] = {{"golden/clip_vision_tiny/io.safetensors", "in.image_uint8", "in.pixel_values"},
                               {"golden/pipeline_sdxl_img2img_ip_tiny/io.safetensors", "in.ip_image_uint8",
                                "in.ip_pixel_values"}};
    stdcpu_error err;
    float *got = falloc(3 * S * S);
    for (int c = 0; c < 2; c++) {
        stdcpu_safetensors *st;
        ck_assert_msg(stdcpu_st_open(&st, stdcpu_test_shared(cases[c][0]), &err) == STDCPU_OK, "%s", err.msg);
        const stdcpu_st_tensor *u8 = stdcpu_st_find(st, cases[c][1]);
        const stdcpu_st_tensor *pv = stdcpu_st_find(st, cases[c][2]);
        ck_assert(u8 && pv && u8->numel == (int64_t)(S * S * 3));
        float *want;
        ck_assert(stdcpu_st_to_f32(pv, &want, &err) == STDCPU_OK);
        stdcpu_image img = {(int)S, (int)S, (uint8_t *)(uintptr_t)u8->data};
        ck_assert_msg(stdcpu_clip_preprocess_image(m, &img, got, &err) == STDCPU_OK, "%s", err.msg);
        assert_close(got, want, 3 * S * S, 1e-6, cases[c][2]); /* row 0 of the batch */
        stdcpu_aligned_free(want);
        stdcpu_st_close(st);
    }
    /* A wide image gets its height scaled to S and its centre kept. */
    const int w = (int)(2 * S + 3), h = (int)(S + S / 2);
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    ck_assert(rgb != NULL);
    for (int i = 0; i < w * h * 3; i++)
        rgb[i] = (uint8_t)((i * 7) % 251);
    stdcpu_image wide = {w, h, rgb};
    ck_assert_msg(stdcpu_clip_preprocess_image(m, &wide, got, &err) == STDCPU_OK, "%s", err.msg);
    for (size_t i = 0; i < 3 * S * S; i++)
        ck_assert(isfinite(got[i]) && got[i] > -2.f && got[i] < 2.7f);
    stdcpu_image empty = {0, 0, NULL};
    ck_assert_int_eq(stdcpu_clip_preprocess_image(m, &empty, got, &err), STDCPU_ERR_INVALID_ARG);
    free(rgb);
    stdcpu_aligned_free(got);
    stdcpu_clip_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("clip");
    TCase *tc = tcase_create("clip");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_config_validation);
    tcase_add_test(tc, test_ip_image_proj_matches_weights_and_golden);
    tcase_add_test(tc, test_weights_must_match_config);
    tcase_add_test(tc, test_text_hidden_selection_and_batch);
    tcase_add_test(tc, test_no_projection_is_an_error);
    tcase_add_test(tc, test_thread_count_independence);
    tcase_add_test(tc, test_preprocess_matches_golden_pixels);
    suite_add_tcase(s, tc);
    const int rc = stdcpu_test_run(s);
    if (rc == 0 && !stdcpu_test_shared("golden/README.md")) {
        printf("no shared golden data: model tests skipped\n");
        return STDCPU_TEST_SKIP;
    }
    return rc;
}
