/* The GEGLU feed-forward with both q8 linears fused per row block (contract
 * in ops_gemm.h).
 *
 * Why: run as linear -> geglu -> linear, a transformer block's feed-forward
 * at 4096 tokens (SD1.5, C = 320, F = 1280) writes a [4096, 2560] f32 map
 * (42 MB), reads it back, writes the [4096, 1280] GEGLU output and reads that
 * twice more to quantise it: ~150 MB through L3 and memory for 3.4 G
 * multiply-adds, in phases that do no arithmetic. Here one thread takes
 * STDCPU_FF_ROWS rows (layer-normed first, when asked: the block's
 * LayerNorm output never goes to memory either) through both layers: the value and gate columns in
 * groups of FF_GROUP, GEGLU from an L1-sized buffer into the block's
 * [rows, F] row (L2), then those rows quantised and through the second
 * layer, residual added in place. The weights (C x 3F bytes, 1.2 MB at
 * C = 320) stream from L2 per block instead.
 *
 * Same arithmetic as the unfused sequence element for element: each row is
 * quantised whole, the tiles' epilogues are the same, and GEGLU is
 * lane-position independent (masked tails use the vector formula), so the
 * output is bit-identical to it (tests/test_ff.c), whatever the threads. */
#include "config.h"

#include <stdatomic.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/ops_gemm.h"
#include "core/ops_gemm_tiles.h"

/* Value and gate columns per group: a multiple of 64, so every group but
 * the last is whole vectors on every ISA; [rows][2 x group] f32 = 128 KiB. */
#define FF_GROUP 256

typedef struct {
    const stdcpu_kernels *kern;
    const stdcpu_linear_weight *w_in, *w_out;
    const stdcpu_row_norm *norm;
    const float *x;
    float *y;
    size_t M, F, blocks, per_thread;
    unsigned char *scratch;
    atomic_size_t next;
} ff_job;

/* Per-thread scratch (bytes, each part 64-aligned). */
typedef struct {
    float *xn;           /* [R][k_in] layer-normed input rows (with a norm) */
    int8_t *xq;          /* [R][k_in rounded to 4] quantised input rows */
    float *xs;           /* [R] their scales */
    int8_t *gq;          /* [R][F rounded to 4] quantised GEGLU rows */
    float *gs;           /* [R] */
    const int8_t **ind;  /* [R] row pointers (tiles of mr rows, ks = 1) */
    float *pair;         /* [R][2 x FF_GROUP] one group's value | gate columns */
    float *g;            /* [R][F] GEGLU output rows */
} ff_scratch;

static size_t scratch_layout(const stdcpu_linear_weight *w_in, const stdcpu_linear_weight *w_out,
                             unsigned char *base, ff_scratch *s)
{
    const size_t R = STDCPU_FF_ROWS, F = w_out->k;
    size_t off = 0;
    const size_t oxn = stdcpu_layout_part(&off, R * w_in->k * sizeof(float)),
                 oxq = stdcpu_layout_part(&off, R * w_in->kp),
                 oxs = stdcpu_layout_part(&off, R * sizeof(float)),
                 ogq = stdcpu_layout_part(&off, R * w_out->kp),
                 ogs = stdcpu_layout_part(&off, R * sizeof(float)),
                 oind = stdcpu_layout_part(&off, R * sizeof(void *)),
                 opair = stdcpu_layout_part(&off, R * 2 * FF_GROUP * sizeof(float)),
                 og = stdcpu_layout_part(&off, R * F * sizeof(float));
    if (base) {
        s->xn = (float *)(base + oxn);
        s->xq = (int8_t *)(base + oxq);
        s->xs = (float *)(base + oxs);
        s->gq = (int8_t *)(base + ogq);
        s->gs = (float *)(base + ogs);
        s->ind = (const int8_t **)(base + oind);
        s->pair = (float *)(base + opair);
        s->g = (float *)(base + og);
    }
    return off;
}

static int shapes_ok(const stdcpu_linear_weight *w_in, const stdcpu_linear_weight *w_out)
{
    /* the gate's first column must start a 16-column panel */
    return w_in && w_out && w_in->is_q8 && w_out->is_q8 && w_in->packed && w_out->packed && w_out->k > 0 &&
           w_in->n == 2 * w_out->k && w_out->k % 16 == 0;
}

size_t stdcpu_geglu_ff_scratch_bytes(const stdcpu_linear_weight *w_in, const stdcpu_linear_weight *w_out,
                                     int threads)
{
    if (!shapes_ok(w_in, w_out) || w_out->k > SIZE_MAX / 64 / STDCPU_FF_ROWS ||
        w_in->k > SIZE_MAX / 64 / STDCPU_FF_ROWS)
        return 0;
    size_t total;
    return stdcpu_mul_size(scratch_layout(w_in, w_out, NULL, NULL), (size_t)(threads > 0 ? threads : 1), &total)
               ? 0
               : total;
}

/* One row block: rows [r0, r0 + rows) through both layers. */
static void ff_block(const ff_job *j, const ff_scratch *s, size_t r0, size_t rows)
{
    const stdcpu_gemm_kernels *gk = &j->kern->gemm;
    const stdcpu_linear_weight *wi = j->w_in, *wo = j->w_out;
    const size_t F = j->F, n = wo->n, G2 = 2 * FF_GROUP;

    const float *x = j->x + r0 * wi->k;
    if (j->norm) { /* the rows are read here, before any y row of the block is written */
        j->kern->norm.layer_norm(x, wi->k, rows, wi->k, j->norm->eps, j->norm->gamma, j->norm->beta, s->xn, wi->k);
        x = s->xn;
    }
    for (size_t i = 0; i < rows; i++) {
        s->xs[i] = stdcpu_q8_quantize_row(gk, x + i * wi->k, wi->k, wi->kp, gk->q8_a_xor, s->xq + i * wi->kp);
        s->ind[i] = s->xq + i * wi->kp;
    }
    stdcpu_q8_tiles t = {.gk = gk, .ks = 1, .kc = wi->kp, .packed = wi->packed, .wsum = wi->wsum,
                         .w_scale = wi->w_scale, .bias = wi->bias, .a_scale = s->xs, .a_scale_stride = 1,
                         .y = s->pair, .ldy = G2, .act = STDCPU_ACT_NONE};
    for (size_t c = 0; c < F; c += FF_GROUP) {
        const size_t w = F - c < FF_GROUP ? F - c : FF_GROUP;
        /* value columns [c, c+w) then gate columns [F+c, F+c+w), side by
         * side in each row of pair: the layout the GEGLU kernel takes */
        t.y = s->pair;
        t.y_col0 = c;
        stdcpu_q8_run_tiles(&t, rows, s->ind, c, c + w);
        t.y = s->pair + w;
        t.y_col0 = F + c;
        stdcpu_q8_run_tiles(&t, rows, s->ind, F + c, F + c + w);
        for (size_t i = 0; i < rows; i++)
            j->kern->eltwise.geglu(s->g + i * F + c, s->pair + i * G2, 1, w);
    }

    for (size_t i = 0; i < rows; i++) {
        s->gs[i] = stdcpu_q8_quantize_row(gk, s->g + i * F, F, wo->kp, gk->q8_a_xor, s->gq + i * wo->kp);
        s->ind[i] = s->gq + i * wo->kp;
    }
    float *y = j->y + r0 * n;
    const stdcpu_q8_tiles o = {.gk = gk, .ks = 1, .kc = wo->kp, .packed = wo->packed, .wsum = wo->wsum,
                               .w_scale = wo->w_scale, .bias = wo->bias, .a_scale = s->gs, .a_scale_stride = 1,
                               .y = y, .residual = y, .ldy = n, .act = STDCPU_ACT_NONE};
    stdcpu_q8_run_tiles(&o, rows, s->ind, 0, n);
}

static void ff_task(void *arg, int ith, int nth)
{
    (void)nth;
    ff_job *j = arg;
    ff_scratch s = {0};
    scratch_layout(j->w_in, j->w_out, j->scratch + (size_t)ith * j->per_thread, &s);
    for (;;) {
        const size_t b = atomic_fetch_add(&j->next, 1);
        if (b >= j->blocks)
            break;
        const size_t r0 = b * STDCPU_FF_ROWS;
        ff_block(j, &s, r0, j->M - r0 < STDCPU_FF_ROWS ? j->M - r0 : STDCPU_FF_ROWS);
    }
}

stdcpu_status stdcpu_geglu_ff(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_linear_weight *w_in,
                              const stdcpu_linear_weight *w_out, const stdcpu_row_norm *norm, const float *x, float *y,
                              size_t M, void *scratch, size_t scratch_bytes, stdcpu_error *err)
{
    if (!kern)
        kern = stdcpu_kernels_get();
    if (!shapes_ok(w_in, w_out))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "geglu feed-forward: needs q8 weights, W_in [2F, k] and W_out [n, F], F a multiple of 16");
    if (M == 0)
        return STDCPU_OK;
    if (!x || !y || (norm && (!norm->gamma || !norm->beta || !(norm->eps >= 0.0f))))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "geglu feed-forward: NULL input, output or norm parameters");
    if (x == y ? w_in->k != w_out->n : x < y + M * w_out->n && y < x + M * w_in->k)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "geglu feed-forward: x overlaps y (only x == y, with rows of the same width)");
    if (M > (size_t)INT32_MAX || w_in->n > (size_t)INT32_MAX || w_in->k > (size_t)INT32_MAX ||
        w_out->n > (size_t)INT32_MAX)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "geglu feed-forward: dimensions exceed int range");
    const int nth = pool ? stdcpu_pool_threads(pool) : 1;
    const size_t need = stdcpu_geglu_ff_scratch_bytes(w_in, w_out, nth);
    if (need == 0)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "geglu feed-forward: scratch size overflow");
    unsigned char *owned = NULL, *mem = scratch;
    if (!mem || scratch_bytes < need || ((uintptr_t)mem & 63u)) {
        if (!(owned = mem = stdcpu_aligned_alloc(need)))
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "geglu feed-forward: no memory for %zu bytes of scratch", need);
    }
    ff_job j = {.kern = kern, .w_in = w_in, .w_out = w_out, .norm = norm, .x = x, .y = y, .M = M, .F = w_out->k,
                .blocks = (M + STDCPU_FF_ROWS - 1) / STDCPU_FF_ROWS, .scratch = mem};
    j.per_thread = need / (size_t)nth;
    atomic_init(&j.next, 0);
    stdcpu_pool_add_ops(pool, (uint64_t)2 * M * (w_in->n * w_in->k + w_out->n * w_out->k));
    stdcpu_pool_run_n(pool, (size_t)nth > j.blocks ? (int)j.blocks : nth, ff_task, &j);
    stdcpu_aligned_free(owned);
    return STDCPU_OK;
}
