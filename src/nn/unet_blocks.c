/* The UNet forward pass (README 3.4): resnets, transformers, down/up path.
 *
 * Memory: every activation comes from the UNet's arena, used as a stack.
 * A block allocates its output first, then its temporaries, and releases
 * the temporaries. The skip connections are pushed in order on the down path
 * and popped in reverse on the up path, so they stay a stack: on the way up,
 * concat(h, skip) and each block output are moved down into the popped
 * skip's slot (one threaded copy, cheap next to the convolutions), which keeps the
 * peak at "skips still needed + the current block's working set".
 *
 * The same code plans the memory: with plan set, nothing is computed (no
 * weights are needed) and allocations only count bytes. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/ops_nn.h"
#include "nn/unet_internal.h"

/* Rows of the feed-forward processed at once: bounds the [rows, 8C] GEGLU
 * input (SDXL at 64x64 tokens would otherwise need 168 MB for it). */
#define UNET_FF_ROWS 2048

typedef struct fwd {
    stdcpu_unet *u;
    stdcpu_pool *pool;
    int plan, threads;
    size_t used, peak; /* plan mode: simulated arena */
    stdcpu_error *err;
    size_t B;
    float *semb;        /* [B, temb] silu(emb) */
    const float *ctx;   /* [B*T, X] */
    size_t T;
    const float *ip;    /* [B*nip, X] or NULL */
    size_t nip;
    int cached;         /* keys/values from stdcpu_unet_set_context */
    const stdcpu_unet_inputs *in;
} fwd;

/* Runs an op unless planning. */
#define DO(f, call)                              \
    do {                                         \
        if (!(f)->plan) {                        \
            stdcpu_status do_s_ = (call);        \
            if (do_s_ != STDCPU_OK)              \
                return do_s_;                    \
        }                                        \
    } while (0)

#define ALLOC(f, var, floats)                     \
    float *var = fa((f), (floats));               \
    if (!var)                                     \
        return STDCPU_ERR_NOMEM

static float *fa(fwd *f, size_t floats)
{
    size_t bytes;
    if (stdcpu_mul_size(floats, sizeof(float), &bytes) || bytes > SIZE_MAX / 2) {
        stdcpu_fail(f->err, STDCPU_ERR_LIMIT, "unet: activation of %zu floats is too large", floats);
        return NULL;
    }
    if (f->plan) {
        /* A never-dereferenced stand-in address with the arena's layout. */
        float *p = (float *)(uintptr_t)(STDCPU_ALIGN + f->used);
        f->used += stdcpu_round_up(bytes ? bytes : 1, STDCPU_ALIGN);
        if (f->used > f->peak)
            f->peak = f->used;
        return p;
    }
    return stdcpu_arena_alloc(&f->u->arena, bytes, f->err);
}

static size_t fmark(const fwd *f) { return f->plan ? f->used : stdcpu_arena_mark(&f->u->arena); }

static void freset(fwd *f, size_t mark)
{
    if (f->plan)
        f->used = mark;
    else
        stdcpu_arena_reset(&f->u->arena, mark);
}

typedef struct copy_task {
    float *dst;
    const float *src;
    size_t n;
} copy_task;

static void copy_run(void *arg, int ith, int nth)
{
    const copy_task *t = arg;
    size_t i0, i1;
    stdcpu_split_range(t->n, ith, nth, &i0, &i1);
    memcpy(t->dst + i0, t->src + i0, (i1 - i0) * sizeof(float));
}

/* Moves `floats` values from p down to arena offset mark and frees all above. */
static float *fsettle(fwd *f, size_t mark, float *p, size_t floats)
{
    if (f->plan) {
        f->used = mark;
        return fa(f, floats);
    }
    float *dst = (float *)(void *)(f->u->arena.base + mark);
    if (p + floats <= dst || dst + floats <= p) {
        /* apart (the usual case: the output was allocated above its inputs):
         * copied by all threads; one thread alone left the others idle for
         * ~1% of an SD1.5 pass */
        copy_task t = {.dst = dst, .src = p, .n = floats};
        stdcpu_pool_run(f->pool, copy_run, &t);
    } else if (dst != p) {
        memmove(dst, p, floats * sizeof(float));
    }
    const size_t bytes = floats * sizeof(float);
    f->u->arena.used = mark + stdcpu_round_up(bytes ? bytes : 1, STDCPU_ALIGN);
    return dst;
}

static void tap(fwd *f, const char *name, const float *x, size_t h, size_t w, size_t c)
{
    if (!f->plan && f->in->tap)
        f->in->tap(f->in->tap_user, name, x, f->B, h, w, c);
}

/* ---- channel concat --------------------------------------------------------- */

typedef struct concat_task {
    const float *a, *b;
    float *y;
    size_t pixels, ca, cb;
} concat_task;

static void concat_run(void *arg, int ith, int nth)
{
    const concat_task *t = arg;
    size_t p0, p1;
    stdcpu_split_range(t->pixels, ith, nth, &p0, &p1);
    const size_t cy = t->ca + t->cb;
    for (size_t p = p0; p < p1; p++) {
        memcpy(t->y + p * cy, t->a + p * t->ca, t->ca * sizeof(float));
        memcpy(t->y + p * cy + t->ca, t->b + p * t->cb, t->cb * sizeof(float));
    }
}

/* ---- per-batch bias ------------------------------------------------------- */

/* h[b, p, :] += tp[b, :]: the resnet's time-embedding projection, one row
 * per batch item (B*F items for video, so one threaded pass, not B calls). */
typedef struct emb_bias_task {
    float *h;
    const float *tp;
    size_t rows, rows_per_item, c;
} emb_bias_task;

static void emb_bias_run(void *arg, int ith, int nth)
{
    const emb_bias_task *t = arg;
    size_t r0, r1;
    stdcpu_split_range(t->rows, ith, nth, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        float *row = t->h + r * t->c;
        const float *bias = t->tp + (r / t->rows_per_item) * t->c;
        for (size_t i = 0; i < t->c; i++)
            row[i] += bias[i];
    }
}

/* ---- blocks ----------------------------------------------------------------- */

/* *a = GroupNorm(x [B,H,W,C]) (then SiLU if silu) as a per-channel map for
 * the next int8 layer to apply while it quantises its input; its buffer is
 * taken from the arena (freed with the caller's mark). */
static stdcpu_status group_norm_map(fwd *f, const stdcpu_nn_norm *n, float eps, int silu, const float *x, size_t H,
                                    size_t W, size_t C, stdcpu_chan_affine *a)
{
    ALLOC(f, buf, stdcpu_group_norm_affine_floats(f->B, C));
    DO(f, stdcpu_group_norm_affine(f->pool, NULL, x, f->B, H, W, C, f->u->cfg.G, eps, n->gamma, n->beta, silu, buf, a,
                                   f->err));
    return STDCPU_OK;
}

/* y = conv(GroupNorm(x), then SiLU if silu) + residual, stride 1, padding
 * pad. With int8 weights the norm is folded into the convolution's input
 * quantisation (stdcpu_conv2d_affine): the normalised map is never written
 * and read back (two passes over a 5 MB map at SD1.5's 64x64). f32 weights,
 * or fusion off, normalise first: in place into x when x_scratch, else into
 * a temporary. */
static stdcpu_status normed_conv(fwd *f, const stdcpu_nn_norm *n, int silu, float *x, int x_scratch, size_t H,
                                 size_t W, size_t C, const stdcpu_conv2d_weight *cw, size_t pad, float *y,
                                 const float *residual)
{
    const unet_cfg *g = &f->u->cfg;
    const size_t m = fmark(f);
    if (cw->is_q8 && !f->u->unfused) {
        stdcpu_chan_affine a;
        STDCPU_TRY(group_norm_map(f, n, g->norm_eps, silu, x, H, W, C, &a));
        DO(f, stdcpu_conv2d_affine(f->pool, NULL, cw, &a, x, f->B, H, W, 1, pad, y, residual, STDCPU_ACT_NONE,
                                   f->err));
    } else {
        float *t = x;
        if (!x_scratch) {
            t = fa(f, f->B * H * W * C);
            if (!t)
                return STDCPU_ERR_NOMEM;
        }
        DO(f, stdcpu_group_norm(f->pool, NULL, x, f->B, H, W, C, g->G, g->norm_eps, n->gamma, n->beta, silu, t,
                                f->err));
        DO(f, stdcpu_conv2d(f->pool, cw, t, f->B, H, W, 1, pad, y, residual, STDCPU_ACT_NONE, f->err));
    }
    freset(f, m);
    return STDCPU_OK;
}

/* out [B,H,W,cout] = ResnetBlock2D(x [B,H,W,cin], emb). consume_x: x is a
 * temporary (the up path's concat) that may be overwritten, which saves the
 * [B,H,W,cin] normalised copy at the memory peak. */
static stdcpu_status resnet(fwd *f, const unet_resnet *r, float *x, int consume_x, size_t H, size_t W, float *out)
{
    const size_t B = f->B, HW = H * W, M = B * HW;
    stdcpu_error *err = f->err;
    const size_t m = fmark(f);
    ALLOC(f, h, M * r->cout);  /* conv1 -> + temb */
    ALLOC(f, tp, B * r->cout); /* time_emb_proj(silu(emb)) */
    if (r->has_shortcut) /* first: x may be normalised in place below */
        DO(f, stdcpu_conv2d(f->pool, &r->conv_shortcut, x, B, H, W, 1, 0, out, NULL, STDCPU_ACT_NONE, err));
    STDCPU_TRY(normed_conv(f, &r->norm1, 1, x, consume_x && r->has_shortcut, H, W, r->cin, &r->conv1, 1, h, NULL));
    DO(f, stdcpu_linear(f->pool, &r->time_emb_proj, f->semb, tp, B, NULL, STDCPU_ACT_NONE, err));
    if (!f->plan) {
        emb_bias_task eb = {h, tp, B * HW, HW, r->cout};
        stdcpu_pool_run(f->pool, emb_bias_run, &eb);
    }
    /* out = conv2(silu(norm2(h))) + (shortcut(x) already in out, or x) */
    STDCPU_TRY(normed_conv(f, &r->norm2, 1, h, 1, H, W, r->cout, &r->conv2, 1, out, r->has_shortcut ? out : x));
    freset(f, m);
    return STDCPU_OK;
}

/* o [B*tq, C] = multi-head attention of q over (k, v) rows. */
static stdcpu_status attend(fwd *f, size_t heads, size_t d, size_t tq, size_t tk, const float *q, size_t qs,
                            const float *k, const float *v, size_t kvs, float *o)
{
    stdcpu_attention_desc a;
    memset(&a, 0, sizeof a);
    a.batch = f->B;
    a.heads = heads;
    a.head_dim = d;
    a.tq = tq;
    a.tk = tk;
    a.q = q;
    a.q_stride = qs;
    a.k = k;
    a.v = v;
    a.k_stride = a.v_stride = kvs;
    a.o = o;
    a.o_stride = heads * d;
    a.scale = 1.0f / sqrtf((float)d);
    /* int8 models run Q.K^T and P.V in int8 too (core/ops_attn_q8.c): at
     * 4096 tokens f32 attention was about half of an SD1.5 UNet pass. Short
     * attentions stay f32 (stdcpu_unet_set_attention_precision). */
    a.int8 = f->u->attn_prec == STDCPU_PREC_INT8 && tk >= f->u->attn_int8_min_keys;
    /* scratch from the arena either way: the int8 K/V packs (~1-10 MiB)
     * allocated per call cost fresh pages, i.e. page faults, every time */
    const size_t m = fmark(f);
    a.scratch_floats = stdcpu_attention_scratch_floats(&a, f->threads);
    ALLOC(f, scratch, a.scratch_floats);
    a.scratch = scratch;
    DO(f, stdcpu_attention(f->pool, NULL, &a, f->err));
    freset(f, m);
    return STDCPU_OK;
}

/* y = lw(LayerNorm(hs)) (eps 1e-5). int8 weights fold the norm into the
 * layer (stdcpu_linear_norm: the normed map never goes to memory); f32
 * weights, or fusion off, normalise into ln [M, C] first. */
static stdcpu_status normed_linear(fwd *f, const stdcpu_nn_norm *n, const stdcpu_linear_weight *lw,
                                   const float *hs, float *ln, float *y, size_t M, size_t C)
{
    const stdcpu_row_norm rn = {.gamma = n->gamma, .beta = n->beta, .eps = 1e-5f};
    if (lw->is_q8 && !f->u->unfused) {
        DO(f, stdcpu_linear_norm(f->pool, NULL, lw, &rn, hs, y, M, NULL, STDCPU_ACT_NONE, f->err));
    } else {
        DO(f, stdcpu_layer_norm(f->pool, NULL, hs, M, C, rn.eps, rn.gamma, rn.beta, ln, f->err));
        DO(f, stdcpu_linear(f->pool, lw, ln, y, M, NULL, STDCPU_ACT_NONE, f->err));
    }
    return STDCPU_OK;
}

/* One BasicTransformerBlock on hs [B*HW, C] in place; ln [B*HW, C] scratch. */
static stdcpu_status tblock(fwd *f, const unet_transformer *t, const unet_tblock *tb, float *hs, float *ln, size_t HW)
{
    const size_t B = f->B, M = B * HW, C = t->c, F = tb->ff_inner;
    stdcpu_error *err = f->err;
    stdcpu_pool *pool = f->pool;
    size_t m = fmark(f);

    /* attn1: fused q|k|v, flash attention reading the three with stride 3C.
     * norm1 / norm2 go through normed_linear, norm3 into the feed-forward. */
    {
        ALLOC(f, qkv, M * 3 * C);
        ALLOC(f, o, M * C);
        STDCPU_TRY(normed_linear(f, &tb->norm1, &tb->qkv, hs, ln, qkv, M, C));
        STDCPU_TRY(attend(f, t->heads, t->head_dim, HW, HW, qkv, 3 * C, qkv + C, qkv + 2 * C, 3 * C, o));
        DO(f, stdcpu_linear(pool, &tb->attn1_out, o, hs, M, hs, STDCPU_ACT_NONE, err));
        freset(f, m);
    }
    /* attn2: text cross-attention, plus scale x image attention (IP-Adapter). */
    {
        ALLOC(f, q, M * C);
        ALLOC(f, o, M * C);
        STDCPU_TRY(normed_linear(f, &tb->norm2, &tb->q2, hs, ln, q, M, C));
        const float *kv = tb->kv_cache;
        if (!f->cached) {
            ALLOC(f, kvb, B * f->T * 2 * C);
            DO(f, stdcpu_linear(pool, &tb->kv2, f->ctx, kvb, B * f->T, NULL, STDCPU_ACT_NONE, err));
            kv = kvb;
        }
        STDCPU_TRY(attend(f, t->heads, t->head_dim, HW, f->T, q, C, kv, kv + C, 2 * C, o));
        const float scale = f->u->ip_scales[tb->ip_index];
        if (f->nip && tb->has_ip && scale != 0.0f) {
            ALLOC(f, oi, M * C);
            const float *kvi = tb->ip_kv_cache;
            if (!f->cached) {
                ALLOC(f, kvb, B * f->nip * 2 * C);
                DO(f, stdcpu_linear(pool, &tb->ip_kv, f->ip, kvb, B * f->nip, NULL, STDCPU_ACT_NONE, err));
                kvi = kvb;
            }
            STDCPU_TRY(attend(f, t->heads, t->head_dim, HW, f->nip, q, C, kvi, kvi + C, 2 * C, oi));
            DO(f, stdcpu_axpby(pool, NULL, scale, oi, 1.0f, o, M * C, err));
        }
        DO(f, stdcpu_linear(pool, &tb->attn2_out, o, hs, M, hs, STDCPU_ACT_NONE, err));
        freset(f, m);
    }
    /* GEGLU feed-forward, residual fused. q8: both layers fused per block
     * of rows kept in L2 (core/ops_ff.c: 1.1-1.3x at these shapes), when
     * there are enough blocks for the threads; otherwise over row chunks
     * (bounded memory). */
    const size_t ffs = !f->u->unfused && M >= 2 * (size_t)f->threads * STDCPU_FF_ROWS
                           ? stdcpu_geglu_ff_scratch_bytes(&tb->ff_in, &tb->ff_out, f->threads)
                           : 0;
    if (ffs) { /* norm3 included: its output stays in L2 too */
        ALLOC(f, scratch, (ffs + sizeof(float) - 1) / sizeof(float));
        const stdcpu_row_norm n3 = {.gamma = tb->norm3.gamma, .beta = tb->norm3.beta, .eps = 1e-5f};
        DO(f, stdcpu_geglu_ff(pool, NULL, &tb->ff_in, &tb->ff_out, &n3, hs, hs, M, scratch, ffs, err));
        freset(f, m);
    } else {
        DO(f, stdcpu_layer_norm(pool, NULL, hs, M, C, 1e-5f, tb->norm3.gamma, tb->norm3.beta, ln, err));
        const size_t R = M < UNET_FF_ROWS ? M : UNET_FF_ROWS;
        ALLOC(f, p, R * 2 * F);
        ALLOC(f, gl, R * F);
        for (size_t r0 = 0; r0 < M; r0 += R) {
            const size_t rows = M - r0 < R ? M - r0 : R;
            DO(f, stdcpu_linear(pool, &tb->ff_in, ln + r0 * C, p, rows, NULL, STDCPU_ACT_NONE, err));
            DO(f, stdcpu_geglu(pool, NULL, p, rows, F, gl, err));
            DO(f, stdcpu_linear(pool, &tb->ff_out, gl, hs + r0 * C, rows, hs + r0 * C, STDCPU_ACT_NONE, err));
        }
        freset(f, m);
    }
    return STDCPU_OK;
}

/* Transformer2DModel on x [B, H*W, C] in place (x = proj_out(...) + x). */
static stdcpu_status transformer(fwd *f, const unet_transformer *t, float *x, size_t H, size_t W)
{
    const unet_cfg *g = &f->u->cfg;
    const size_t HW = H * W, M = f->B * HW, C = t->c;
    const size_t m = fmark(f);
    ALLOC(f, n, M * C); /* GroupNorm output, then the blocks' LayerNorm scratch */
    ALLOC(f, hs, M * C);
    /* proj_in / proj_out: a Linear on tokens or a 1x1 conv on the map: the
     * same operation on NHWC rows. The GroupNorm before proj_in is folded
     * into it with int8 weights, as in normed_conv. */
    if (t->proj_in.is_q8 && !f->u->unfused) {
        const size_t ma = fmark(f);
        stdcpu_chan_affine a;
        STDCPU_TRY(group_norm_map(f, &t->norm, 1e-6f, 0, x, H, W, C, &a));
        DO(f, stdcpu_linear_affine(f->pool, NULL, &t->proj_in, &a, x, hs, M, NULL, STDCPU_ACT_NONE, f->err));
        freset(f, ma);
    } else {
        DO(f, stdcpu_group_norm(f->pool, NULL, x, f->B, H, W, C, g->G, 1e-6f, t->norm.gamma, t->norm.beta, 0, n,
                                f->err));
        DO(f, stdcpu_linear(f->pool, &t->proj_in, n, hs, M, NULL, STDCPU_ACT_NONE, f->err));
    }
    for (size_t k = 0; k < t->depth; k++)
        STDCPU_TRY(tblock(f, t, &t->blocks[k], hs, n, HW));
    DO(f, stdcpu_linear(f->pool, &t->proj_out, hs, x, M, x, STDCPU_ACT_NONE, f->err));
    freset(f, m);
    return STDCPU_OK;
}

/* semb [B, temb] = silu(time_embedding(sinusoid(t)) [+ add_embedding(...)]). */
static stdcpu_status embeddings(fwd *f, float *semb)
{
    const unet_cfg *g = &f->u->cfg;
    const stdcpu_unet *u = f->u;
    const stdcpu_unet_inputs *in = f->in;
    const size_t B = f->B, C0 = g->boc[0], E = g->temb_dim;
    stdcpu_error *err = f->err;
    const size_t m = fmark(f);
    ALLOC(f, sinus, B * C0);
    ALLOC(f, h1, B * E);
    ALLOC(f, emb, B * E);
    if (!f->plan)
        for (size_t b = 0; b < B; b++)
            unet_sinusoid(in->timesteps ? in->timesteps[b] : in->timestep, C0, g->flip_sin_to_cos, g->freq_shift,
                          sinus + b * C0);
    DO(f, stdcpu_linear(f->pool, &u->time_1, sinus, h1, B, NULL, STDCPU_ACT_SILU, err));
    DO(f, stdcpu_linear(f->pool, &u->time_2, h1, emb, B, NULL, STDCPU_ACT_NONE, err));
    tap(f, "time_embedding", emb, 1, 1, E);
    if (g->text_time) {
        const size_t A = g->add_time_dim, P = g->add_in_dim - 6 * A;
        ALLOC(f, add_in, B * g->add_in_dim);
        ALLOC(f, add, B * E);
        if (!f->plan)
            for (size_t b = 0; b < B; b++) {
                float *row = add_in + b * g->add_in_dim;
                memcpy(row, in->text_embeds + b * P, P * sizeof(float));
                for (size_t v = 0; v < 6; v++)
                    unet_sinusoid(in->time_ids[b * 6 + v], A, g->flip_sin_to_cos, g->freq_shift, row + P + v * A);
            }
        DO(f, stdcpu_linear(f->pool, &u->add_1, add_in, h1, B, NULL, STDCPU_ACT_SILU, err));
        DO(f, stdcpu_linear(f->pool, &u->add_2, h1, add, B, NULL, STDCPU_ACT_NONE, err));
        tap(f, "add_embedding", add, 1, 1, E);
        DO(f, stdcpu_add(f->pool, NULL, emb, add, emb, B * E, err));
    }
    DO(f, stdcpu_activation(f->pool, NULL, STDCPU_ELT_SILU, emb, semb, B * E, err));
    freset(f, m);
    return STDCPU_OK;
}

/* ---- the network ------------------------------------------------------------- */

typedef struct skip {
    float *p;
    size_t mark, h, w, c;
} skip;

#define UNET_MAX_SKIPS (1 + 8 * 17)

stdcpu_status unet_run(stdcpu_unet *u, stdcpu_pool *pool, const stdcpu_unet_inputs *in, float *out, int plan,
                       int threads, size_t *peak, stdcpu_error *err)
{
    const unet_cfg *g = &u->cfg;
    fwd f;
    memset(&f, 0, sizeof f);
    f.u = u;
    f.pool = pool;
    f.plan = plan;
    f.threads = threads;
    f.err = err;
    f.in = in;
    f.B = in->batch;
    f.cached = !in->context;
    f.ctx = in->context;
    f.T = f.cached ? u->ctx_tokens : in->context_tokens;
    f.ip = in->ip_tokens;
    f.nip = f.cached ? u->ctx_nip : in->ip_tokens ? in->ip_tokens_n : 0;
    if (!plan)
        u->arena.used = 0;
    const size_t B = f.B;
    size_t H = in->height, W = in->width, C = g->boc[0];

    ALLOC(&f, semb, B * g->temb_dim);
    f.semb = semb;
    STDCPU_TRY(embeddings(&f, semb));

    skip skips[UNET_MAX_SKIPS];
    size_t ns = 0;
    /* conv_in */
    size_t mark = fmark(&f);
    ALLOC(&f, h0, B * H * W * C);
    {
        const size_t m = fmark(&f);
        ALLOC(&f, xin, B * H * W * g->in_ch);
        if (!plan)
            stdcpu_nchw_to_nhwc(in->sample, xin, B, g->in_ch, H, W);
        DO(&f, stdcpu_conv2d(pool, &u->conv_in, xin, B, H, W, 1, 1, h0, NULL, STDCPU_ACT_NONE, err));
        freset(&f, m);
    }
    tap(&f, "conv_in", h0, H, W, C);
    skips[ns++] = (skip){h0, mark, H, W, C};
    float *cur = h0;
    char name[32];

    for (size_t i = 0; i < g->nb; i++) {
        const unet_down *d = &u->down[i];
        for (size_t j = 0; j < g->L; j++) {
            mark = fmark(&f);
            ALLOC(&f, o, B * H * W * d->cout);
            STDCPU_TRY(resnet(&f, &d->resnets[j], cur, 0, H, W, o));
            C = d->cout;
            if (d->cross)
                STDCPU_TRY(transformer(&f, &d->attns[j], o, H, W));
            skips[ns++] = (skip){o, mark, H, W, C};
            cur = o;
        }
        if (d->has_down) {
            const size_t Ho = stdcpu_conv2d_out_size(H, 3, 2, 1), Wo = stdcpu_conv2d_out_size(W, 3, 2, 1);
            mark = fmark(&f);
            ALLOC(&f, o, B * Ho * Wo * C);
            DO(&f, stdcpu_conv2d(pool, &d->down, cur, B, H, W, 2, 1, o, NULL, STDCPU_ACT_NONE, err));
            H = Ho;
            W = Wo;
            skips[ns++] = (skip){o, mark, H, W, C};
            cur = o;
        }
        snprintf(name, sizeof name, "down_%zu", i);
        tap(&f, name, cur, H, W, C);
    }

    /* mid: resnet, transformer, resnet */
    mark = fmark(&f);
    {
        ALLOC(&f, o1, B * H * W * C);
        STDCPU_TRY(resnet(&f, &u->mid_res[0], cur, 0, H, W, o1));
        STDCPU_TRY(transformer(&f, &u->mid_attn, o1, H, W));
        ALLOC(&f, o2, B * H * W * C);
        STDCPU_TRY(resnet(&f, &u->mid_res[1], o1, 0, H, W, o2));
        cur = fsettle(&f, mark, o2, B * H * W * C);
    }
    tap(&f, "mid", cur, H, W, C);

    for (size_t i = 0; i < g->nb; i++) {
        const unet_up *up = &u->up[i];
        size_t cur_mark = 0;
        for (size_t j = 0; j <= g->L; j++) {
            if (!ns)
                return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "unet: skip stack underflow");
            const skip s = skips[--ns];
            if (s.h != H || s.w != W)
                return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "unet: skip %zux%zu meets %zux%zu", s.h, s.w, H, W);
            const size_t ccat = C + s.c, npix = B * H * W;
            ALLOC(&f, cat, npix * ccat);
            if (!plan) {
                concat_task ct = {cur, s.p, cat, npix, C, s.c};
                stdcpu_pool_run(pool, concat_run, &ct);
            }
            cat = fsettle(&f, s.mark, cat, npix * ccat); /* frees the skip and h */
            ALLOC(&f, o, npix * up->cout);
            STDCPU_TRY(resnet(&f, &up->resnets[j], cat, 1, H, W, o));
            C = up->cout;
            cur = fsettle(&f, s.mark, o, npix * C);
            cur_mark = s.mark;
            if (up->cross)
                STDCPU_TRY(transformer(&f, &up->attns[j], cur, H, W));
        }
        if (up->has_up) {
            if (!ns)
                return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "unet: no skip to size the upsampler");
            /* The next skip's size: 2x normally, the explicit size for odd inputs. */
            const size_t Ho = skips[ns - 1].h, Wo = skips[ns - 1].w;
            ALLOC(&f, upx, B * Ho * Wo * C);
            DO(&f, stdcpu_upsample_nearest(pool, cur, B, H, W, C, Ho, Wo, upx, err));
            ALLOC(&f, o, B * Ho * Wo * C);
            DO(&f, stdcpu_conv2d(pool, &up->up, upx, B, Ho, Wo, 1, 1, o, NULL, STDCPU_ACT_NONE, err));
            H = Ho;
            W = Wo;
            cur = fsettle(&f, cur_mark, o, B * H * W * C);
        }
        snprintf(name, sizeof name, "up_%zu", i);
        tap(&f, name, cur, H, W, C);
    }

    /* conv_out(silu(conv_norm_out(h))) -> NCHW */
    {
        ALLOC(&f, o, B * H * W * g->out_ch);
        STDCPU_TRY(normed_conv(&f, &u->norm_out, 1, cur, 0, H, W, C, &u->conv_out, 1, o, NULL));
        if (!plan)
            stdcpu_nhwc_to_nchw(o, out, B, g->out_ch, H, W);
    }
    *peak = plan ? f.peak : u->arena.peak;
    return STDCPU_OK;
}
