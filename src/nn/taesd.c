/* TAESD encoder / decoder (golden README 3.8). See taesd.h. */
#include "config.h"

#include "nn/taesd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/arena.h"
#include "core/ops_gemm.h"
#include "core/ops_nn.h"

#define TAESD_POOL_GROUPS 4
#define TAESD_POOL_EPS 1e-5f
#define TAESD_CLAMP 3.0f /* decoder input: tanh(x / 3) * 3 */

typedef enum op_kind { OP_CONV = 0, OP_RELU, OP_UP2, OP_BLOCK, OP_CLAMP } op_kind;

typedef struct tblock {
    stdcpu_conv2d_weight c0, c2, c4; /* 3x3 with bias: conv.0, conv.2, conv.4 */
    stdcpu_conv2d_weight skip;       /* 1x1 no bias when in != out */
    stdcpu_conv2d_weight pool0, pool3; /* Block+pool: 1x1 C -> P, 1x1 P -> C (no bias) */
    stdcpu_nn_norm pool_gn;          /* GroupNorm(4, P) */
    int has_skip, has_pool;
} tblock;

typedef struct top {
    op_kind kind;
    size_t stride;             /* OP_CONV */
    stdcpu_conv2d_weight conv; /* OP_CONV */
    tblock blk;                /* OP_BLOCK */
} top;

typedef struct tnet {
    top *ops;
    size_t n, cap;
    size_t in_ch, out_ch;
    int factor; /* spatial ratio between image and latent */
} tnet;

struct stdcpu_taesd {
    stdcpu_taesd_config cfg;
    tnet enc, dec;
    int has_enc, has_dec;
};

/* ---- building --------------------------------------------------------------- */

static top *push(tnet *net, op_kind kind, stdcpu_error *err)
{
    if (net->n == net->cap) {
        const size_t cap = net->cap ? 2 * net->cap : 32;
        top *ops = realloc(net->ops, cap * sizeof *ops);
        if (!ops) {
            stdcpu_fail(err, STDCPU_ERR_NOMEM, "taesd: out of memory");
            return NULL;
        }
        net->ops = ops;
        net->cap = cap;
    }
    top *op = &net->ops[net->n++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    return op;
}

typedef struct builder {
    tnet *net;
    const stdcpu_wsrc *w;
    const char *prefix; /* "encoder.layers." / "decoder.layers." / "" */
    stdcpu_precision p;
    int slot;  /* index in the nn.Sequential */
    size_t ch; /* channels flowing at this point */
    stdcpu_error *err;
} builder;

/* keep_f32: the latent-side convs (encoder output, decoder input) stay f32
 * in int8 mode: on taef2 quantising them costs 0.2 dB of round-trip PSNR
 * for 0.2% of the MACs (tests/test_taef2.c). */
static stdcpu_status add_conv(builder *b, size_t stride, size_t expect_out, int keep_f32)
{
    top *op = push(b->net, OP_CONV, b->err);
    if (!op)
        return STDCPU_ERR_NOMEM;
    char name[256];
    snprintf(name, sizeof name, "%s%d", b->prefix, b->slot++);
    size_t out, k;
    STDCPU_TRY(stdcpu_nn_load_conv(&op->conv, b->w, name, keep_f32 ? STDCPU_PREC_F32 : b->p, (int64_t)b->ch, &out,
                                   NULL, &k, b->err));
    if (k != 3 || (expect_out && out != expect_out))
        return stdcpu_fail(b->err, STDCPU_ERR_MISMATCH, "taesd: %s.weight is a %zux%zu conv to %zu channels%s", name, k,
                           k, out, expect_out ? ", expected 3x3 to the latent/image channels" : ", expected 3x3");
    op->stride = stride;
    b->ch = out;
    return STDCPU_OK;
}

static stdcpu_status add_simple(builder *b, op_kind kind, int takes_slot)
{
    if (!push(b->net, kind, b->err))
        return STDCPU_ERR_NOMEM;
    b->slot += takes_slot;
    return STDCPU_OK;
}

static stdcpu_status load_1x1(builder *b, stdcpu_conv2d_weight *cw, const char *name, size_t in, size_t *out)
{
    size_t k;
    STDCPU_TRY(stdcpu_nn_load_conv(cw, b->w, name, b->p, (int64_t)in, out, NULL, &k, b->err));
    if (k != 1)
        return stdcpu_fail(b->err, STDCPU_ERR_MISMATCH, "taesd: %s.weight is not 1x1", name);
    return STDCPU_OK;
}

static stdcpu_status add_block(builder *b, int want_pool)
{
    top *op = push(b->net, OP_BLOCK, b->err);
    if (!op)
        return STDCPU_ERR_NOMEM;
    tblock *k = &op->blk;
    char base[200], name[256], probe[300];
    snprintf(base, sizeof base, "%s%d", b->prefix, b->slot++);
    const size_t cin = b->ch;
    snprintf(probe, sizeof probe, "%s.pool.0.weight", base);
    k->has_pool = stdcpu_wsrc_has(b->w, probe);
    if (k->has_pool != want_pool)
        return stdcpu_fail(b->err, STDCPU_ERR_MISMATCH, "taesd: Block %s %s pool.* weights (use_midblock_gn is %s)",
                           base, k->has_pool ? "has" : "lacks", want_pool ? "on" : "off");
    if (k->has_pool) {
        size_t P, back;
        snprintf(name, sizeof name, "%s.pool.0", base);
        STDCPU_TRY(load_1x1(b, &k->pool0, name, cin, &P));
        if (P % TAESD_POOL_GROUPS)
            return stdcpu_fail(b->err, STDCPU_ERR_MISMATCH, "taesd: %s has %zu channels, not a multiple of %d", name,
                               P, TAESD_POOL_GROUPS);
        snprintf(name, sizeof name, "%s.pool.1", base);
        STDCPU_TRY(stdcpu_nn_load_norm(&k->pool_gn, b->w, name, (int64_t)P, b->err));
        snprintf(name, sizeof name, "%s.pool.3", base);
        STDCPU_TRY(load_1x1(b, &k->pool3, name, P, &back));
        if (back != cin)
            return stdcpu_fail(b->err, STDCPU_ERR_MISMATCH, "taesd: %s gives %zu channels, the block has %zu", name,
                               back, cin);
    }
    size_t out, o2, o4, ks;
    snprintf(name, sizeof name, "%s.conv.0", base);
    STDCPU_TRY(stdcpu_nn_load_conv(&k->c0, b->w, name, b->p, (int64_t)cin, &out, NULL, &ks, b->err));
    snprintf(name, sizeof name, "%s.conv.2", base);
    STDCPU_TRY(stdcpu_nn_load_conv(&k->c2, b->w, name, b->p, (int64_t)out, &o2, NULL, NULL, b->err));
    snprintf(name, sizeof name, "%s.conv.4", base);
    STDCPU_TRY(stdcpu_nn_load_conv(&k->c4, b->w, name, b->p, (int64_t)out, &o4, NULL, NULL, b->err));
    if (ks != 3 || o2 != out || o4 != out || k->c2.kh != 3 || k->c4.kh != 3)
        return stdcpu_fail(b->err, STDCPU_ERR_MISMATCH, "taesd: Block %s convs are not 3x3 %zu -> %zu", base, cin, out);
    if (cin != out) {
        snprintf(name, sizeof name, "%s.skip", base);
        size_t so;
        STDCPU_TRY(load_1x1(b, &k->skip, name, cin, &so));
        if (so != out)
            return stdcpu_fail(b->err, STDCPU_ERR_MISMATCH, "taesd: %s gives %zu channels, expected %zu", name, so, out);
        k->has_skip = 1;
    }
    b->ch = out;
    return STDCPU_OK;
}

static stdcpu_status build_encoder(tnet *net, const stdcpu_wsrc *w, const char *prefix, const stdcpu_taesd_config *c,
                                   stdcpu_precision p, stdcpu_error *err)
{
    builder b = {.net = net, .w = w, .prefix = prefix, .p = p, .slot = 0, .ch = 3, .err = err};
    net->in_ch = 3;
    STDCPU_TRY(add_conv(&b, 1, 0, 0));
    for (int i = 0; i < c->n_enc_stages; i++) {
        if (i > 0)
            STDCPU_TRY(add_conv(&b, 2, 0, 0));
        for (int j = 0; j < c->enc_blocks[i]; j++)
            STDCPU_TRY(add_block(&b, c->use_midblock_gn && i == c->n_enc_stages - 1));
    }
    STDCPU_TRY(add_conv(&b, 1, (size_t)c->latent_channels, 1));
    net->out_ch = b.ch;
    net->factor = 1 << (c->n_enc_stages - 1);
    return STDCPU_OK;
}

static stdcpu_status build_decoder(tnet *net, const stdcpu_wsrc *w, const char *prefix, int clamp_slot,
                                   const stdcpu_taesd_config *c, stdcpu_precision p, stdcpu_error *err)
{
    builder b = {.net = net, .w = w, .prefix = prefix, .p = p, .slot = 0, .ch = (size_t)c->latent_channels, .err = err};
    net->in_ch = (size_t)c->latent_channels;
    STDCPU_TRY(add_simple(&b, OP_CLAMP, clamp_slot));
    STDCPU_TRY(add_conv(&b, 1, 0, 1));
    STDCPU_TRY(add_simple(&b, OP_RELU, 1));
    for (int i = 0; i < c->n_dec_stages; i++) {
        for (int j = 0; j < c->dec_blocks[i]; j++)
            STDCPU_TRY(add_block(&b, c->use_midblock_gn && i == 0));
        if (i < c->n_dec_stages - 1) {
            STDCPU_TRY(add_simple(&b, OP_UP2, 1));
            STDCPU_TRY(add_conv(&b, 1, 0, 0));
        } else {
            STDCPU_TRY(add_conv(&b, 1, 3, 0));
        }
    }
    net->out_ch = b.ch;
    net->factor = 1 << (c->n_dec_stages - 1);
    return STDCPU_OK;
}

static void free_net(tnet *net)
{
    for (size_t i = 0; i < net->n; i++) {
        top *op = &net->ops[i];
        stdcpu_conv2d_weight_free(&op->conv);
        stdcpu_conv2d_weight_free(&op->blk.c0);
        stdcpu_conv2d_weight_free(&op->blk.c2);
        stdcpu_conv2d_weight_free(&op->blk.c4);
        stdcpu_conv2d_weight_free(&op->blk.skip);
        stdcpu_conv2d_weight_free(&op->blk.pool0);
        stdcpu_conv2d_weight_free(&op->blk.pool3);
        stdcpu_nn_norm_free(&op->blk.pool_gn);
    }
    free(net->ops);
    memset(net, 0, sizeof *net);
}

void stdcpu_taesd_free(stdcpu_taesd *t)
{
    if (!t)
        return;
    free_net(&t->enc);
    free_net(&t->dec);
    free(t);
}

static stdcpu_status int_list(const stdcpu_json *cfg, const char *key, int *out, int *n, stdcpu_error *err)
{
    const stdcpu_json *arr = stdcpu_json_get(cfg, key);
    const size_t cnt = stdcpu_json_count(arr);
    if (cnt < 1 || cnt > STDCPU_TAESD_MAX_STAGES)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "taesd config: %s needs 1..%d entries", key,
                           STDCPU_TAESD_MAX_STAGES);
    for (size_t i = 0; i < cnt; i++) {
        int64_t v;
        if (!stdcpu_json_int(stdcpu_json_at(arr, i), &v) || v < 0 || v > 64)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "taesd config: %s[%zu] is not a block count", key, i);
        out[i] = (int)v;
    }
    *n = (int)cnt;
    return STDCPU_OK;
}

stdcpu_status stdcpu_taesd_load_diffusers(stdcpu_taesd **out, const stdcpu_wsrc *w, stdcpu_precision p,
                                          stdcpu_error *err)
{
    *out = NULL;
    const stdcpu_json *c = w ? stdcpu_wsrc_config(w) : NULL;
    if (!c)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "taesd: no config.json");
    const char *act = stdcpu_json_get_str(c, "act_fn", "relu");
    const char *up = stdcpu_json_get_str(c, "upsample_fn", "nearest");
    if (strcmp(act, "relu") || strcmp(up, "nearest") || stdcpu_json_get_int(c, "upsampling_scaling_factor", 2) != 2 ||
        stdcpu_json_get_int(c, "in_channels", 3) != 3 || stdcpu_json_get_int(c, "out_channels", 3) != 3)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED,
                           "taesd config: only relu, nearest x2 upsampling and 3-channel images are supported");
    stdcpu_taesd *t = calloc(1, sizeof *t);
    if (!t)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "taesd: out of memory");
    const int64_t lc = stdcpu_json_get_int(c, "latent_channels", 4);
    stdcpu_status st = STDCPU_OK;
    if (lc < 1 || lc > 4096)
        st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "taesd config: bad latent_channels");
    t->cfg.latent_channels = (int)lc;
    if (st == STDCPU_OK)
        st = int_list(c, "num_encoder_blocks", t->cfg.enc_blocks, &t->cfg.n_enc_stages, err);
    if (st == STDCPU_OK)
        st = int_list(c, "num_decoder_blocks", t->cfg.dec_blocks, &t->cfg.n_dec_stages, err);
    if (st == STDCPU_OK && (st = build_encoder(&t->enc, w, "encoder.layers.", &t->cfg, p, err)) == STDCPU_OK)
        t->has_enc = 1;
    if (st == STDCPU_OK && (st = build_decoder(&t->dec, w, "decoder.layers.", 0, &t->cfg, p, err)) == STDCPU_OK)
        t->has_dec = 1;
    if (st != STDCPU_OK) {
        stdcpu_taesd_free(t);
        return st;
    }
    *out = t;
    return STDCPU_OK;
}

stdcpu_status stdcpu_taesd_load_py(stdcpu_taesd **out, const stdcpu_wsrc *enc, const stdcpu_wsrc *dec,
                                   int latent_channels, int use_midblock_gn, stdcpu_precision p, stdcpu_error *err)
{
    *out = NULL;
    if ((!enc && !dec) || latent_channels < 1 || latent_channels > 4096)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "taesd: no weights or bad latent_channels");
    stdcpu_taesd *t = calloc(1, sizeof *t);
    if (!t)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "taesd: out of memory");
    static const int enc_blocks[4] = {1, 3, 3, 3}, dec_blocks[4] = {3, 3, 3, 1}; /* taesd.py */
    t->cfg.latent_channels = latent_channels;
    t->cfg.n_enc_stages = t->cfg.n_dec_stages = 4;
    memcpy(t->cfg.enc_blocks, enc_blocks, sizeof enc_blocks);
    memcpy(t->cfg.dec_blocks, dec_blocks, sizeof dec_blocks);
    t->cfg.use_midblock_gn = use_midblock_gn != 0;
    stdcpu_status st = STDCPU_OK;
    if (enc && (st = build_encoder(&t->enc, enc, "", &t->cfg, p, err)) == STDCPU_OK)
        t->has_enc = 1;
    if (st == STDCPU_OK && dec && (st = build_decoder(&t->dec, dec, "", 1, &t->cfg, p, err)) == STDCPU_OK)
        t->has_dec = 1;
    if (st != STDCPU_OK) {
        stdcpu_taesd_free(t);
        return st;
    }
    *out = t;
    return STDCPU_OK;
}

const stdcpu_taesd_config *stdcpu_taesd_get_config(const stdcpu_taesd *t) { return &t->cfg; }
int stdcpu_taesd_encoder_factor(const stdcpu_taesd *t) { return t->has_enc ? t->enc.factor : 0; }
int stdcpu_taesd_decoder_factor(const stdcpu_taesd *t) { return t->has_dec ? t->dec.factor : 0; }

/* ---- running ------------------------------------------------------------------------ */

/* Largest map (floats) and largest pool hidden map over the op sequence. */
static int plan_net(const tnet *net, size_t B, size_t H, size_t W, size_t *max_map, size_t *max_pool)
{
    size_t C = net->in_ch;
    double mm = (double)B * H * W * C, mp = 0;
    for (size_t i = 0; i < net->n; i++) {
        const top *op = &net->ops[i];
        if (op->kind == OP_CONV) {
            H = stdcpu_conv2d_out_size(H, 3, op->stride, 1);
            W = stdcpu_conv2d_out_size(W, 3, op->stride, 1);
            C = op->conv.out_ch;
        } else if (op->kind == OP_UP2) {
            H *= 2;
            W *= 2;
        } else if (op->kind == OP_BLOCK) {
            if (op->blk.has_pool && (double)B * H * W * op->blk.pool0.out_ch > mp)
                mp = (double)B * H * W * op->blk.pool0.out_ch;
            C = op->blk.c0.out_ch;
        }
        if (H == 0 || W == 0)
            return -1;
        if ((double)B * H * W * C > mm)
            mm = (double)B * H * W * C;
    }
    if (mm + mp > (double)((size_t)1 << 40))
        return -1;
    *max_map = (size_t)mm;
    *max_pool = (size_t)mp;
    return 0;
}

static size_t arena_bytes(size_t max_map, size_t max_pool)
{
    return 3 * stdcpu_round_up(max_map * sizeof(float), 64) + stdcpu_round_up(max_pool * sizeof(float), 64);
}

typedef struct relu_task {
    float *x;
    size_t n;
} relu_task;

static void relu_fn(void *arg, int ith, int nth)
{
    relu_task *t = arg;
    size_t b, e;
    stdcpu_split_range(t->n, ith, nth, &b, &e);
    for (size_t i = b; i < e; i++)
        t->x[i] = t->x[i] > 0.0f ? t->x[i] : 0.0f;
}

static void relu(stdcpu_pool *pool, float *x, size_t n)
{
    relu_task t = {.x = x, .n = n};
    stdcpu_pool_run(pool, relu_fn, &t);
}

static stdcpu_status run_block(stdcpu_pool *pool, const tblock *k, float *a, float *b, float *c, float *ph, size_t B,
                               size_t H, size_t W, stdcpu_error *err)
{
    const size_t C = k->c0.out_ch, n = B * H * W * C;
    if (k->has_pool) { /* x = x + pool(x) */
        const size_t P = k->pool0.out_ch;
        STDCPU_TRY(stdcpu_conv2d(pool, &k->pool0, a, B, H, W, 1, 0, ph, NULL, STDCPU_ACT_NONE, err));
        STDCPU_TRY(stdcpu_group_norm(pool, NULL, ph, B, H, W, P, TAESD_POOL_GROUPS, TAESD_POOL_EPS, k->pool_gn.gamma,
                                     k->pool_gn.beta, 0, ph, err));
        relu(pool, ph, B * H * W * P);
        STDCPU_TRY(stdcpu_conv2d(pool, &k->pool3, ph, B, H, W, 1, 0, a, a, STDCPU_ACT_NONE, err));
    }
    STDCPU_TRY(stdcpu_conv2d(pool, &k->c0, a, B, H, W, 1, 1, b, NULL, STDCPU_ACT_NONE, err));
    relu(pool, b, n);
    STDCPU_TRY(stdcpu_conv2d(pool, &k->c2, b, B, H, W, 1, 1, c, NULL, STDCPU_ACT_NONE, err));
    relu(pool, c, n);
    STDCPU_TRY(stdcpu_conv2d(pool, &k->c4, c, B, H, W, 1, 1, b, k->has_skip ? NULL : a, STDCPU_ACT_NONE, err));
    if (k->has_skip) {
        STDCPU_TRY(stdcpu_conv2d(pool, &k->skip, a, B, H, W, 1, 0, c, NULL, STDCPU_ACT_NONE, err));
        STDCPU_TRY(stdcpu_add(pool, NULL, b, c, b, n, err));
    }
    relu(pool, b, n);
    return STDCPU_OK;
}

/* in [B, in_ch, H, W] NCHW -> out NCHW; in_map / out_map: y = x * mul + add
 * applied on the way in / out (the image range conventions). */
static stdcpu_status run_net(const tnet *net, stdcpu_pool *pool, const float *in, size_t B, size_t H, size_t W,
                             float in_mul, float in_add, float out_mul, float out_add, float *out, stdcpu_error *err)
{
    size_t max_map, max_pool;
    if (plan_net(net, B, H, W, &max_map, &max_pool))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "taesd: unsupported size %zux%zu (batch %zu)", H, W, B);
    stdcpu_arena arena;
    STDCPU_TRY(stdcpu_arena_init(&arena, arena_bytes(max_map, max_pool), err));
    stdcpu_status st = STDCPU_OK;
    float *slot[3], *ph = NULL;
    for (int i = 0; i < 3; i++)
        if (!(slot[i] = stdcpu_arena_alloc(&arena, max_map * sizeof(float), err)))
            st = err ? err->status : STDCPU_ERR_NOMEM;
    if (st == STDCPU_OK && max_pool && !(ph = stdcpu_arena_alloc(&arena, max_pool * sizeof(float), err)))
        st = err ? err->status : STDCPU_ERR_NOMEM;
    if (st != STDCPU_OK) {
        stdcpu_arena_release_all(&arena);
        return st;
    }
    size_t C = net->in_ch;
    int cur = 0;
    stdcpu_nchw_to_nhwc(in, slot[0], B, C, H, W);
    if (in_mul != 1.0f || in_add != 0.0f)
        for (size_t i = 0; i < B * H * W * C; i++)
            slot[0][i] = slot[0][i] * in_mul + in_add;
    for (size_t i = 0; i < net->n && st == STDCPU_OK; i++) {
        const top *op = &net->ops[i];
        float *x = slot[cur], *y = slot[(cur + 1) % 3], *z = slot[(cur + 2) % 3];
        const size_t n = B * H * W * C;
        switch (op->kind) {
        case OP_CONV:
            st = stdcpu_conv2d(pool, &op->conv, x, B, H, W, op->stride, 1, y, NULL, STDCPU_ACT_NONE, err);
            H = stdcpu_conv2d_out_size(H, 3, op->stride, 1);
            W = stdcpu_conv2d_out_size(W, 3, op->stride, 1);
            C = op->conv.out_ch;
            cur = (cur + 1) % 3;
            break;
        case OP_RELU:
            relu(pool, x, n);
            break;
        case OP_CLAMP:
            for (size_t j = 0; j < n; j++)
                x[j] = tanhf(x[j] / TAESD_CLAMP) * TAESD_CLAMP;
            break;
        case OP_UP2:
            st = stdcpu_upsample_nearest(pool, x, B, H, W, C, 2 * H, 2 * W, y, err);
            H *= 2;
            W *= 2;
            cur = (cur + 1) % 3;
            break;
        case OP_BLOCK:
            st = run_block(pool, &op->blk, x, y, z, ph, B, H, W, err);
            C = op->blk.c0.out_ch;
            cur = (cur + 1) % 3;
            break;
        }
    }
    if (st == STDCPU_OK) {
        float *x = slot[cur];
        if (out_mul != 1.0f || out_add != 0.0f)
            for (size_t i = 0; i < B * H * W * C; i++)
                x[i] = x[i] * out_mul + out_add;
        stdcpu_nhwc_to_nchw(x, out, B, C, H, W);
    }
    stdcpu_arena_release_all(&arena);
    return st;
}

static int sizes_ok(size_t B, size_t H, size_t W, size_t f)
{
    return B >= 1 && H >= f && W >= f && B <= 4096 && H <= 65536 && W <= 65536 && H % f == 0 && W % f == 0;
}

size_t stdcpu_taesd_encode_peak_bytes(const stdcpu_taesd *t, size_t B, size_t H, size_t W)
{
    size_t mm, mp;
    if (!t->has_enc || !sizes_ok(B, H, W, (size_t)t->enc.factor) || plan_net(&t->enc, B, H, W, &mm, &mp))
        return 0;
    return arena_bytes(mm, mp);
}

size_t stdcpu_taesd_decode_peak_bytes(const stdcpu_taesd *t, size_t B, size_t h, size_t w)
{
    size_t mm, mp;
    if (!t->has_dec || !sizes_ok(B, h, w, 1) || plan_net(&t->dec, B, h, w, &mm, &mp))
        return 0;
    return arena_bytes(mm, mp);
}

stdcpu_status stdcpu_taesd_encode(const stdcpu_taesd *t, stdcpu_pool *pool, const float *image, size_t B, size_t H,
                                  size_t W, stdcpu_image_range range, float *latent, stdcpu_error *err)
{
    if (!t || !image || !latent)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "taesd encode: NULL argument");
    if (!t->has_enc)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "taesd encode: no encoder loaded");
    if (!sizes_ok(B, H, W, (size_t)t->enc.factor))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "taesd encode: %zux%zu is not a positive multiple of %d", H, W,
                           t->enc.factor);
    /* the network itself works on [0, 1] */
    const float mul = range == STDCPU_RANGE_PM1 ? 0.5f : 1.0f, add = range == STDCPU_RANGE_PM1 ? 0.5f : 0.0f;
    return run_net(&t->enc, pool, image, B, H, W, mul, add, 1.0f, 0.0f, latent, err);
}

stdcpu_status stdcpu_taesd_decode(const stdcpu_taesd *t, stdcpu_pool *pool, const float *latent, size_t B, size_t h,
                                  size_t w, stdcpu_image_range range, float *image, stdcpu_error *err)
{
    if (!t || !image || !latent)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "taesd decode: NULL argument");
    if (!t->has_dec)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "taesd decode: no decoder loaded");
    if (!sizes_ok(B, h, w, 1))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "taesd decode: bad latent size %zux%zu", h, w);
    const float mul = range == STDCPU_RANGE_PM1 ? 2.0f : 1.0f, add = range == STDCPU_RANGE_PM1 ? -1.0f : 0.0f;
    return run_net(&t->dec, pool, latent, B, h, w, 1.0f, 0.0f, mul, add, image, err);
}
