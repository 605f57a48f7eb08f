/* Threaded NN ops: argument checks, scratch, and the (ith, nth) splits
 * around the dispatched kernels of simd/attn.h, simd/norm.h, simd/eltwise.h. */
#include "core/ops_nn.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/ops_attn_q8.h"

/* Below this many elements per thread, extra threads cost more than they save. */
#define ELEMS_PER_THREAD_MIN 16384

static const stdcpu_kernels *pick(const stdcpu_kernels *kern)
{
    return kern ? kern : stdcpu_kernels_get();
}

static int threads_for(size_t work)
{
    const size_t n = work / ELEMS_PER_THREAD_MIN + 1;
    return n > 1024 ? 1024 : (int)n;
}

/* [b, e) of n split in nth chunks whose starts are multiples of 16 elements
 * (one cache line of floats: no two threads write the same line). */
static void split_aligned(size_t n, int ith, int nth, size_t *b, size_t *e)
{
    const size_t chunk = stdcpu_round_up((n + (size_t)nth - 1) / (size_t)nth, 16);
    *b = (size_t)ith * chunk;
    *e = *b + chunk;
    if (*b > n)
        *b = n;
    if (*e > n)
        *e = n;
}

/* ---- attention ------------------------------------------------------------ */

typedef struct {
    const stdcpu_attention_desc *a;
    const stdcpu_attn_kernels *k;
    size_t qtiles, items, per_thread;
    atomic_size_t next;
    float *scratch;
} attn_task;

static void attn_worker(void *arg, int ith, int nth)
{
    (void)nth;
    attn_task *t = arg;
    const stdcpu_attention_desc *a = t->a;
    const size_t d = a->head_dim, qt = STDCPU_ATTN_QTILE;
    const size_t qs = a->q_stride, ks = a->k_stride, vs = a->v_stride, os = a->o_stride;
    for (;;) {
        /* Items run (batch, head, query tile) in order, so threads working at
         * the same time share one head's K/V in cache. */
        const size_t it = atomic_fetch_add(&t->next, 1);
        if (it >= t->items)
            break;
        const size_t tile = it % t->qtiles, bh = it / t->qtiles;
        const size_t h = bh % a->heads, b = bh / a->heads;
        const size_t q0 = tile * qt;
        stdcpu_attn_job job = {0};
        job.q = a->q + (b * a->tq + q0) * qs + h * d;
        job.q_stride = qs;
        if (a->k)
            job.k = a->k + b * a->tk * ks + h * d;
        else if (a->k16)
            job.k16 = a->k16 + b * a->tk * ks + h * d;
        if (a->v)
            job.v = a->v + b * a->tk * vs + h * d;
        else if (a->v16)
            job.v16 = a->v16 + b * a->tk * vs + h * d;
        job.k_stride = ks;
        job.v_stride = vs;
        job.o = a->o + (b * a->tq + q0) * os + h * d;
        job.o_stride = os;
        job.nq = a->tq - q0 < qt ? a->tq - q0 : qt;
        job.nk = a->tk;
        job.d = d;
        job.scale = a->scale;
        job.key_bias = a->key_bias ? a->key_bias + b * a->tk : NULL;
        job.causal = a->causal;
        job.q_pos = q0;
        job.scratch = t->scratch + (size_t)ith * t->per_thread;
        t->k->attend(&job);
    }
}

static size_t attn_per_thread(size_t d) { return stdcpu_round_up(stdcpu_attn_scratch_floats(d), 16); }

size_t stdcpu_attention_scratch_floats(const stdcpu_attention_desc *a, int threads)
{
    if (a->int8 && a->tk > 0)
        return (stdcpu_attention_q8_scratch_bytes(a, threads) + sizeof(float) - 1) / sizeof(float);
    return attn_per_thread(a->head_dim) * (size_t)(threads > 0 ? threads : 1);
}

stdcpu_status stdcpu_attention(stdcpu_pool *pool, const stdcpu_kernels *kern,
                               const stdcpu_attention_desc *desc, stdcpu_error *err)
{
    if (!desc)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "attention: no descriptor");
    stdcpu_attention_desc a = *desc;
    const size_t d = a.head_dim;
    size_t width;
    if (a.batch == 0 || a.heads == 0 || d == 0 || stdcpu_mul_size(a.heads, d, &width) != 0)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "attention: bad shape batch=%zu heads=%zu d=%zu",
                           a.batch, a.heads, d);
    if (a.tq == 0)
        return STDCPU_OK;
    if (!a.q || !a.o || (a.tk > 0 && ((!a.k && !a.k16) || (!a.v && !a.v16))))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "attention: missing q/k/v/o");
    a.q_stride = a.q_stride ? a.q_stride : width;
    a.k_stride = a.k_stride ? a.k_stride : width;
    a.v_stride = a.v_stride ? a.v_stride : width;
    a.o_stride = a.o_stride ? a.o_stride : width;
    if (a.q_stride < width || a.k_stride < width || a.v_stride < width || a.o_stride < width)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "attention: row stride below heads*d = %zu", width);
    if (!isfinite(a.scale))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "attention: scale is not finite");

    /* q.k and p.v: 2 x 2 x Tq x Tk x d per (batch, head); causal runs do about half */
    const uint64_t full = (uint64_t)4 * a.batch * a.heads * a.tq * a.tk * d;
    if (a.int8 && a.tk > 0) {
        STDCPU_TRY(stdcpu_attention_q8_run(pool, pick(kern), &a, err));
        stdcpu_pool_add_ops(pool, full);
        return STDCPU_OK;
    }

    attn_task t = {.a = &a, .k = &pick(kern)->attn, .per_thread = attn_per_thread(d)};
    t.qtiles = (a.tq + STDCPU_ATTN_QTILE - 1) / STDCPU_ATTN_QTILE;
    if (stdcpu_mul_size(a.batch * a.heads, t.qtiles, &t.items) != 0)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "attention: too many tiles");
    atomic_init(&t.next, 0);
    int nth = pool ? stdcpu_pool_threads(pool) : 1;
    if ((size_t)nth > t.items)
        nth = (int)t.items;
    float *owned = NULL;
    const size_t need = stdcpu_attention_scratch_floats(&a, nth);
    if (a.scratch && a.scratch_floats >= need) {
        t.scratch = a.scratch;
    } else {
        size_t bytes;
        if (stdcpu_mul_size(need, sizeof(float), &bytes) != 0 || !(owned = stdcpu_aligned_alloc(bytes)))
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "attention: no memory for %zu scratch floats", need);
        t.scratch = owned;
    }
    stdcpu_pool_run_n(pool, nth, attn_worker, &t);
    stdcpu_aligned_free(owned);
    stdcpu_pool_add_ops(pool, a.causal ? full / 2 : full);
    return STDCPU_OK;
}

/* ---- GroupNorm -------------------------------------------------------------- */

/* Statistics are summed in f32 by the kernels over blocks of this many
 * pixels, then in f64 across blocks and threads. */
#define GN_BLOCK_PIXELS 256
#define GN_STAT_WORKERS 8

typedef struct {
    const stdcpu_norm_kernels *k;
    const float *x;
    float *y;
    size_t B, HW, C;
    int phase; /* 0: shifted channel sums, 1: squared deviations, 2: affine */
    int nv;    /* statistics workers (fixed: see gn_worker) */
    int nth;   /* threads run */
    atomic_int next_worker;
    int silu;
    double *partial; /* [nth, B, C] per-thread sums */
    float *block;    /* [nth, C] one block's f32 sums */
    float *shift;    /* [B, C] first pixel of each item */
    float *mean;     /* [B, C] group mean expanded to channels */
    float *mul;      /* [B, C] rstd * gamma */
    float *add;      /* [C] beta */
} gn_task;

/* Pixels [pb, pe) of one statistics worker, or of one affine thread. */
static void gn_range(gn_task *t, size_t pb, size_t pe, double *part, float *block)
{
    const size_t C = t->C;
    if (t->phase < 2)
        for (size_t i = 0; i < t->B * C; i++)
            part[i] = 0.0;
    /* A range may straddle batch items: walk it per item. */
    while (pb < pe) {
        const size_t b = pb / t->HW;
        size_t end = (b + 1) * t->HW < pe ? (b + 1) * t->HW : pe;
        const float *x = t->x + pb * C;
        if (t->phase == 2) {
            t->k->channel_affine(x, end - pb, C, t->mean + b * C, t->mul + b * C, t->add, t->silu,
                                 t->y + pb * C);
        } else {
            if (end - pb > GN_BLOCK_PIXELS)
                end = pb + GN_BLOCK_PIXELS;
            memset(block, 0, C * sizeof(float));
            if (t->phase == 0)
                t->k->channel_sum(x, end - pb, C, t->shift + b * C, block);
            else
                t->k->channel_sqdev(x, end - pb, C, t->mean + b * C, block);
            for (size_t c = 0; c < C; c++)
                part[b * C + c] += block[c];
        }
        pb = end;
    }
}

static void gn_worker(void *arg, int ith, int nth)
{
    gn_task *t = arg;
    size_t pb, pe;
    float *block = t->block + (size_t)ith * t->C;
    if (t->phase == 2) {
        stdcpu_split_range(t->B * t->HW, ith, nth, &pb, &pe);
        gn_range(t, pb, pe, NULL, block);
        return;
    }
    /* Statistics are split over a fixed number of workers, whatever the
     * thread count, and reduced in worker order: the result is the same
     * bit for bit with any number of threads. A free thread takes the next
     * worker's range (t->next_worker). */
    for (int v = atomic_fetch_add(&t->next_worker, 1); v < t->nv; v = atomic_fetch_add(&t->next_worker, 1)) {
        stdcpu_split_range(t->B * t->HW, v, t->nv, &pb, &pe);
        gn_range(t, pb, pe, t->partial + (size_t)v * t->B * t->C, block);
    }
}

/* Sums the per-thread partials of channel range [c0, c0+n) of item b. */
static double gn_reduce(const gn_task *t, int nth, size_t b, size_t c0, size_t n)
{
    double s = 0.0;
    for (int i = 0; i < nth; i++) {
        const double *p = t->partial + ((size_t)i * t->B + b) * t->C + c0;
        for (size_t c = 0; c < n; c++)
            s += p[c];
    }
    return s;
}

/* Runs the statistics phases; fills t->mean, t->mul (from a buffer of
 * 2 B C + C floats at `aff`: mean [B, C], mul [B, C], add [C]). */
static stdcpu_status gn_stats(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x, size_t B, size_t HW,
                              size_t C, size_t G, float eps, const float *gamma, const float *beta, float *aff,
                              gn_task *t, stdcpu_error *err)
{
    const size_t total = B * HW * C;
    const int nv = threads_for(total) < GN_STAT_WORKERS ? threads_for(total) : GN_STAT_WORKERS;
    int nth = pool ? stdcpu_pool_threads(pool) : 1;
    if (nth > threads_for(total))
        nth = threads_for(total);
    /* partial f64 [nv, B, C]; f32: block [nth, C], shift [B, C] */
    const size_t nd = (size_t)nv * B * C, nf = (size_t)nth * C + B * C;
    float *fbuf = stdcpu_aligned_alloc(nf * sizeof(float));
    double *dbuf = stdcpu_aligned_alloc(nd * sizeof(double));
    if (!fbuf || !dbuf) {
        stdcpu_aligned_free(fbuf);
        stdcpu_aligned_free(dbuf);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "group_norm: no memory");
    }
    *t = (gn_task){.k = &pick(kern)->norm, .x = x, .B = B, .HW = HW, .C = C, .nv = nv, .nth = nth};
    t->partial = dbuf;
    t->block = fbuf;
    t->shift = t->block + (size_t)nth * C;
    t->mean = aff;
    t->mul = aff + B * C;
    t->add = aff + 2 * B * C;
    const size_t cg = C / G;
    const double count = (double)cg * (double)HW;
    for (size_t b = 0; b < B; b++)
        memcpy(t->shift + b * C, x + b * HW * C, C * sizeof(float));

    t->phase = 0;
    atomic_init(&t->next_worker, 0);
    stdcpu_pool_run_n(pool, nth, gn_worker, t);
    for (size_t b = 0; b < B; b++)
        for (size_t g = 0; g < G; g++) {
            double shift_sum = 0.0;
            for (size_t c = g * cg; c < (g + 1) * cg; c++)
                shift_sum += t->shift[b * C + c];
            const float m = (float)((gn_reduce(t, nv, b, g * cg, cg) + shift_sum * (double)HW) / count);
            for (size_t c = g * cg; c < (g + 1) * cg; c++)
                t->mean[b * C + c] = m;
        }
    t->phase = 1;
    atomic_store(&t->next_worker, 0);
    stdcpu_pool_run_n(pool, nth, gn_worker, t);
    for (size_t b = 0; b < B; b++)
        for (size_t g = 0; g < G; g++) {
            const double var = gn_reduce(t, nv, b, g * cg, cg) / count;
            const float rstd = (float)(1.0 / sqrt(var + (double)eps));
            for (size_t c = g * cg; c < (g + 1) * cg; c++)
                t->mul[b * C + c] = gamma ? rstd * gamma[c] : rstd;
        }
    for (size_t c = 0; c < C; c++)
        t->add[c] = beta ? beta[c] : 0.0f;
    stdcpu_aligned_free(fbuf);
    stdcpu_aligned_free(dbuf);
    t->partial = NULL;
    t->shift = NULL;
    t->block = NULL;
    return STDCPU_OK;
}

static stdcpu_status gn_args_ok(const float *x, size_t B, size_t H, size_t W, size_t C, size_t G, float eps,
                                size_t *HW, size_t *total, stdcpu_error *err)
{
    if (!x || G == 0 || C % G != 0 || !(eps >= 0.0f) || stdcpu_mul_size(H, W, HW) != 0 ||
        stdcpu_mul_size(*HW, B, total) != 0 || stdcpu_mul_size(*total, C, total) != 0)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "group_norm: bad arguments (C=%zu G=%zu H=%zu W=%zu)", C, G, H, W);
    return STDCPU_OK;
}

stdcpu_status stdcpu_group_norm(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                                size_t B, size_t H, size_t W, size_t C, size_t G, float eps,
                                const float *gamma, const float *beta, int silu, float *y,
                                stdcpu_error *err)
{
    size_t HW, total;
    if (!y)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "group_norm: NULL output");
    STDCPU_TRY(gn_args_ok(x, B, H, W, C, G, eps, &HW, &total, err));
    if (total == 0)
        return STDCPU_OK;
    float *aff = stdcpu_aligned_alloc(stdcpu_group_norm_affine_floats(B, C) * sizeof(float));
    if (!aff)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "group_norm: no memory");
    gn_task t;
    stdcpu_status st = gn_stats(pool, kern, x, B, HW, C, G, eps, gamma, beta, aff, &t, err);
    if (st == STDCPU_OK) {
        t.y = y;
        t.silu = silu;
        t.phase = 2;
        stdcpu_pool_run_n(pool, t.nth, gn_worker, &t);
    }
    stdcpu_aligned_free(aff);
    return st;
}

size_t stdcpu_group_norm_affine_floats(size_t B, size_t C) { return 2 * B * C + C; }

stdcpu_status stdcpu_group_norm_affine(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x, size_t B,
                                       size_t H, size_t W, size_t C, size_t G, float eps, const float *gamma,
                                       const float *beta, int silu, float *buf, stdcpu_chan_affine *aff,
                                       stdcpu_error *err)
{
    size_t HW, total;
    if (!buf || !aff)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "group_norm: NULL affine buffer");
    STDCPU_TRY(gn_args_ok(x, B, H, W, C, G, eps, &HW, &total, err));
    *aff = (stdcpu_chan_affine){.mean = buf, .mul = buf + B * C, .add = buf + 2 * B * C, .C = C, .pixels = HW,
                                .silu = silu};
    if (total == 0)
        return STDCPU_OK;
    gn_task t;
    return gn_stats(pool, kern, x, B, HW, C, G, eps, gamma, beta, buf, &t, err);
}

/* ---- row and element-wise ops -------------------------------------------- */

enum ew_op { EW_ACT, EW_ADD, EW_AXPBY, EW_F32_F16, EW_F16_F32, EW_BF16_F32,
             ROW_GEGLU, ROW_ADD_BIAS, ROW_SOFTMAX, ROW_LAYER_NORM };

typedef struct {
    enum ew_op op;
    const stdcpu_kernels *k;
    stdcpu_unary_f32_fn act;
    const void *x, *x2;
    void *y;
    size_t n;            /* elements, or rows for ROW_* ops */
    size_t cols;         /* row length (ROW_*) */
    float a, b, eps;
    const float *gamma, *beta;
} ew_task;

static void ew_worker(void *arg, int ith, int nth)
{
    const ew_task *t = arg;
    size_t b, e;
    if (t->op >= ROW_GEGLU)
        stdcpu_split_range(t->n, ith, nth, &b, &e);
    else
        split_aligned(t->n, ith, nth, &b, &e);
    if (b >= e)
        return;
    const size_t n = e - b, C = t->cols;
    const float *xf = t->x, *x2f = t->x2;
    const uint16_t *xh = t->x;
    float *yf = t->y;
    uint16_t *yh = t->y;
    switch (t->op) {
    case EW_ACT: t->act(yf + b, xf + b, n); break;
    case EW_ADD: t->k->eltwise.add(yf + b, xf + b, x2f + b, n); break;
    case EW_AXPBY: t->k->eltwise.axpby(yf + b, t->a, xf + b, t->b, n); break;
    case EW_F32_F16: t->k->eltwise.f32_to_f16(yh + b, xf + b, n); break;
    case EW_F16_F32: t->k->eltwise.f16_to_f32(yf + b, xh + b, n); break;
    case EW_BF16_F32: t->k->eltwise.bf16_to_f32(yf + b, xh + b, n); break;
    case ROW_GEGLU: t->k->eltwise.geglu(yf + b * C, xf + b * 2 * C, n, C); break;
    case ROW_ADD_BIAS: t->k->eltwise.add_bias(yf + b * C, xf + b * C, x2f, n, C); break;
    case ROW_SOFTMAX:
        for (size_t r = b; r < e; r++)
            t->k->eltwise.softmax(yf + r * C, xf + r * C, C);
        break;
    case ROW_LAYER_NORM:
        t->k->norm.layer_norm(xf + b * C, C, n, C, t->eps, t->gamma, t->beta, yf + b * C, C);
        break;
    }
}

static stdcpu_status ew_run(stdcpu_pool *pool, ew_task *t, size_t work)
{
    stdcpu_pool_run_n(pool, threads_for(work), ew_worker, t);
    return STDCPU_OK;
}

#define EW_CHECK(cond, name)                                                              \
    do {                                                                                  \
        if (!(cond))                                                                      \
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "%s: bad arguments", name);   \
    } while (0)

stdcpu_status stdcpu_layer_norm(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                                size_t M, size_t C, float eps, const float *gamma,
                                const float *beta, float *y, stdcpu_error *err)
{
    EW_CHECK(x && y && C > 0 && eps >= 0.0f && M <= SIZE_MAX / C, "layer_norm");
    ew_task t = {.op = ROW_LAYER_NORM, .k = pick(kern), .x = x, .y = y, .n = M, .cols = C,
                 .eps = eps, .gamma = gamma, .beta = beta};
    return ew_run(pool, &t, M * C);
}

stdcpu_status stdcpu_activation(stdcpu_pool *pool, const stdcpu_kernels *kern, stdcpu_eltwise_act act,
                                const float *x, float *y, size_t n, stdcpu_error *err)
{
    EW_CHECK(x && y, "activation");
    const stdcpu_eltwise_kernels *e = &pick(kern)->eltwise;
    ew_task t = {.op = EW_ACT, .k = pick(kern), .x = x, .y = y, .n = n};
    switch (act) {
    case STDCPU_ELT_SILU: t.act = e->silu; break;
    case STDCPU_ELT_GELU: t.act = e->gelu; break;
    case STDCPU_ELT_GELU_TANH: t.act = e->gelu_tanh; break;
    case STDCPU_ELT_QUICK_GELU: t.act = e->quick_gelu; break;
    default: return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "activation: unknown kind %d", (int)act);
    }
    return ew_run(pool, &t, n);
}

stdcpu_status stdcpu_geglu(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                           size_t rows, size_t F, float *y, stdcpu_error *err)
{
    EW_CHECK(x && y && F > 0 && rows <= SIZE_MAX / 2 / F, "geglu");
    ew_task t = {.op = ROW_GEGLU, .k = pick(kern), .x = x, .y = y, .n = rows, .cols = F};
    return ew_run(pool, &t, rows * F * 3);
}

stdcpu_status stdcpu_add(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *a,
                         const float *b, float *y, size_t n, stdcpu_error *err)
{
    EW_CHECK(a && b && y, "add");
    ew_task t = {.op = EW_ADD, .k = pick(kern), .x = a, .x2 = b, .y = y, .n = n};
    return ew_run(pool, &t, n * 3);
}

stdcpu_status stdcpu_axpby(stdcpu_pool *pool, const stdcpu_kernels *kern, float alpha,
                           const float *x, float beta, float *y, size_t n, stdcpu_error *err)
{
    EW_CHECK(x && y, "axpby");
    ew_task t = {.op = EW_AXPBY, .k = pick(kern), .x = x, .y = y, .n = n, .a = alpha, .b = beta};
    return ew_run(pool, &t, n * 3);
}

stdcpu_status stdcpu_add_bias(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                              const float *bias, size_t rows, size_t C, float *y,
                              stdcpu_error *err)
{
    EW_CHECK(x && bias && y && C > 0 && rows <= SIZE_MAX / C, "add_bias");
    ew_task t = {.op = ROW_ADD_BIAS, .k = pick(kern), .x = x, .x2 = bias, .y = y, .n = rows, .cols = C};
    return ew_run(pool, &t, rows * C * 2);
}

stdcpu_status stdcpu_softmax_rows(stdcpu_pool *pool, const stdcpu_kernels *kern, const float *x,
                                  size_t rows, size_t n, float *y, stdcpu_error *err)
{
    EW_CHECK(x && y && (n == 0 || rows <= SIZE_MAX / n), "softmax");
    if (n == 0)
        return STDCPU_OK;
    ew_task t = {.op = ROW_SOFTMAX, .k = pick(kern), .x = x, .y = y, .n = rows, .cols = n};
    return ew_run(pool, &t, rows * n * 4);
}

stdcpu_status stdcpu_convert_f32_to_f16(stdcpu_pool *pool, const stdcpu_kernels *kern,
                                        const float *x, uint16_t *y, size_t n, stdcpu_error *err)
{
    EW_CHECK(x && y, "f32_to_f16");
    ew_task t = {.op = EW_F32_F16, .k = pick(kern), .x = x, .y = y, .n = n};
    return ew_run(pool, &t, n * 2);
}

stdcpu_status stdcpu_convert_f16_to_f32(stdcpu_pool *pool, const stdcpu_kernels *kern,
                                        const uint16_t *x, float *y, size_t n, stdcpu_error *err)
{
    EW_CHECK(x && y, "f16_to_f32");
    ew_task t = {.op = EW_F16_F32, .k = pick(kern), .x = x, .y = y, .n = n};
    return ew_run(pool, &t, n * 2);
}

stdcpu_status stdcpu_convert_bf16_to_f32(stdcpu_pool *pool, const stdcpu_kernels *kern,
                                         const uint16_t *x, float *y, size_t n, stdcpu_error *err)
{
    EW_CHECK(x && y, "bf16_to_f32");
    ew_task t = {.op = EW_BF16_F32, .k = pick(kern), .x = x, .y = y, .n = n};
    return ew_run(pool, &t, n * 2);
}

/* ---- upsampling ------------------------------------------------------------- */

typedef struct {
    const float *x;
    float *y;
    size_t B, H, W, C, Ho, Wo;
} up_task;

/* PyTorch's legacy nearest index (aten nearest_idx): dst/2 for an exact x2,
 * else floor(dst * scale) with scale = (float)in / out computed in float,
 * clamped to in-1. Float on purpose: it matches the reference bit for bit. */
static size_t nearest_src(size_t dst, size_t in, size_t out)
{
    if (out == 2 * in)
        return dst >> 1;
    if (out == in)
        return dst;
    const float scale = (float)in / (float)out;
    const size_t s = (size_t)floorf((float)dst * scale);
    return s < in ? s : in - 1;
}

static void up_worker(void *arg, int ith, int nth)
{
    const up_task *t = arg;
    size_t b, e;
    stdcpu_split_range(t->B * t->Ho, ith, nth, &b, &e); /* output rows */
    for (size_t r = b; r < e; r++) {
        const size_t n = r / t->Ho, oy = r % t->Ho;
        const float *src = t->x + (n * t->H + nearest_src(oy, t->H, t->Ho)) * t->W * t->C;
        float *dst = t->y + r * t->Wo * t->C;
        for (size_t ox = 0; ox < t->Wo; ox++)
            memcpy(dst + ox * t->C, src + nearest_src(ox, t->W, t->Wo) * t->C, t->C * sizeof(float));
    }
}

stdcpu_status stdcpu_upsample_nearest(stdcpu_pool *pool, const float *x, size_t B, size_t H,
                                      size_t W, size_t C, size_t Ho, size_t Wo, float *y,
                                      stdcpu_error *err)
{
    size_t total;
    EW_CHECK(x && y && H > 0 && W > 0 && Ho > 0 && Wo > 0 && Ho <= SIZE_MAX / H && Wo <= SIZE_MAX / W &&
                 stdcpu_mul_size(B, Ho, &total) == 0 && stdcpu_mul_size(total, Wo, &total) == 0 &&
                 stdcpu_mul_size(total, C, &total) == 0,
             "upsample_nearest");
    up_task t = {.x = x, .y = y, .B = B, .H = H, .W = W, .C = C, .Ho = Ho, .Wo = Wo};
    stdcpu_pool_run_n(pool, threads_for(total * 2), up_worker, &t);
    return STDCPU_OK;
}
