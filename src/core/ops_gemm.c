/* Threaded linear layers and convolutions over the gemm kernels (q8 and f32
 * micro-kernels, simd/gemm.h and simd/sgemm.h). See ops_gemm.h for the
 * contract. */
#include "config.h"

#include "core/ops_gemm.h"
#include "core/ops_gemm_tiles.h"

#include <stdatomic.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

/* Rows per task. Every row block streams the whole weight matrix once, so
 * blocks are as tall as the quantised A block allows (<= 256 KB, 64..256
 * rows). A convolution's A is the shared quantised map (only pointers per
 * task), so its blocks are always 256 rows. f32 row blocks are 256 rows too
 * (the f32 driver packs the weights once per block). */
#define ROW_BLOCK_MIN 64
#define ROW_BLOCK_MAX 256
#define A_BLOCK_BYTES (256u * 1024u)
/* f32 convolution: the im2col tile of a thread holds up to this many bytes
 * (32..512 output pixels). An f32 element's value does not depend on the
 * tiling (simd/sgemm.h), so f32 tiles are planned for the pool's threads. */
#define F32_CONV_TILE_BYTES (4u << 20)
#define F32_CONV_TILE_MIN 32
#define F32_CONV_TILE_MAX 512

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* ---- weights -------------------------------------------------------------- */

static stdcpu_status copy_bias(float **out, const float *bias, size_t n, stdcpu_error *err)
{
    *out = NULL;
    if (!bias)
        return STDCPU_OK;
    const size_t np = stdcpu_round_up(n, 16);
    *out = stdcpu_aligned_calloc(np * sizeof(float));
    if (!*out)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "bias: out of memory (%zu floats)", np);
    memcpy(*out, bias, n * sizeof(float));
    return STDCPU_OK;
}

/* Packs int8 weights (o, t, c) -> 16c4 with scales; shared by linear and conv. */
static stdcpu_status pack_q8(const int8_t *w, const float *scales, size_t n, size_t ks, size_t cin,
                             size_t kc, size_t so, size_t st, size_t sc, int8_t **packed,
                             int32_t **wsum, float **w_scale, stdcpu_error *err)
{
    const size_t np = stdcpu_round_up(n, 16);
    size_t bytes;
    if (stdcpu_mul_size(np, ks, &bytes) || stdcpu_mul_size(bytes, kc, &bytes))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "q8 weight: size overflow");
    *packed = stdcpu_aligned_alloc(bytes);
    *wsum = stdcpu_aligned_alloc(np * sizeof(int32_t));
    *w_scale = stdcpu_aligned_calloc(np * sizeof(float));
    if (!*packed || !*wsum || !*w_scale)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "q8 weight: out of memory (%zu bytes)", bytes);
    stdcpu_q8_pack_16c4(w, n, ks, cin, kc, so, st, sc, *packed, *wsum);
    memcpy(*w_scale, scales, n * sizeof(float));
    return STDCPU_OK;
}

stdcpu_status stdcpu_linear_weight_init_f32(stdcpu_linear_weight *lw, const float *w,
                                            const float *bias, size_t n, size_t k,
                                            stdcpu_error *err)
{
    memset(lw, 0, sizeof *lw);
    if (!w || n == 0 || k == 0)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "linear weight: empty (%zu x %zu)", n, k);
    size_t bytes;
    if (stdcpu_mul_size(n, k, &bytes) || stdcpu_mul_size(bytes, sizeof(float), &bytes))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "linear weight: size overflow");
    lw->n = n;
    lw->k = k;
    lw->w = stdcpu_aligned_alloc(bytes);
    if (!lw->w)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "linear weight: out of memory (%zu bytes)", bytes);
    memcpy(lw->w, w, bytes);
    stdcpu_status st = copy_bias(&lw->bias, bias, n, err);
    if (st != STDCPU_OK)
        stdcpu_linear_weight_free(lw);
    return st;
}

stdcpu_status stdcpu_linear_weight_init_q8(stdcpu_linear_weight *lw, const int8_t *w,
                                           const float *scales, const float *bias, size_t n,
                                           size_t k, stdcpu_error *err)
{
    memset(lw, 0, sizeof *lw);
    if (!w || !scales || n == 0 || k == 0)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "linear weight: empty (%zu x %zu)", n, k);
    lw->n = n;
    lw->k = k;
    lw->is_q8 = 1;
    lw->kp = stdcpu_round_up(k, 4);
    stdcpu_status st = pack_q8(w, scales, n, 1, k, lw->kp, k, 0, 1, &lw->packed, &lw->wsum,
                               &lw->w_scale, err);
    if (st == STDCPU_OK)
        st = copy_bias(&lw->bias, bias, n, err);
    if (st != STDCPU_OK)
        stdcpu_linear_weight_free(lw);
    return st;
}

void stdcpu_linear_weight_free(stdcpu_linear_weight *lw)
{
    stdcpu_aligned_free(lw->packed);
    stdcpu_aligned_free(lw->wsum);
    stdcpu_aligned_free(lw->w_scale);
    stdcpu_aligned_free(lw->w);
    stdcpu_aligned_free(lw->bias);
    memset(lw, 0, sizeof *lw);
}

stdcpu_status stdcpu_conv2d_weight_init_f32(stdcpu_conv2d_weight *cw, const float *w,
                                            const float *bias, size_t out_ch, size_t in_ch,
                                            size_t kh, size_t kw, stdcpu_error *err)
{
    memset(cw, 0, sizeof *cw);
    if (!w || !out_ch || !in_ch || !kh || !kw)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "conv weight: empty");
    size_t count;
    if (stdcpu_mul_size(out_ch, in_ch, &count) || stdcpu_mul_size(count, kh * kw, &count) ||
        stdcpu_mul_size(count, sizeof(float), &count))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "conv weight: size overflow");
    *cw = (stdcpu_conv2d_weight){.out_ch = out_ch, .in_ch = in_ch, .kh = kh, .kw = kw};
    cw->w = stdcpu_aligned_alloc(count);
    if (!cw->w)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "conv weight: out of memory");
    /* [O, I, kh, kw] -> [O, kh, kw, I]: one output pixel's patch is then the
     * NHWC input rows of its taps, contiguous per tap. */
    const size_t taps = kh * kw;
    for (size_t o = 0; o < out_ch; o++)
        for (size_t c = 0; c < in_ch; c++)
            for (size_t t = 0; t < taps; t++)
                cw->w[(o * taps + t) * in_ch + c] = w[(o * in_ch + c) * taps + t];
    stdcpu_status st = copy_bias(&cw->bias, bias, out_ch, err);
    if (st != STDCPU_OK)
        stdcpu_conv2d_weight_free(cw);
    return st;
}

stdcpu_status stdcpu_conv2d_weight_init_q8(stdcpu_conv2d_weight *cw, const int8_t *w,
                                           const float *scales, const float *bias, size_t out_ch,
                                           size_t in_ch, size_t kh, size_t kw, stdcpu_error *err)
{
    memset(cw, 0, sizeof *cw);
    if (!w || !scales || !out_ch || !in_ch || !kh || !kw)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "conv weight: empty");
    *cw = (stdcpu_conv2d_weight){.out_ch = out_ch, .in_ch = in_ch, .kh = kh, .kw = kw, .is_q8 = 1};
    cw->cp = stdcpu_round_up(in_ch, 4);
    const size_t taps = kh * kw;
    stdcpu_status st = pack_q8(w, scales, out_ch, taps, in_ch, cw->cp, in_ch * taps, 1, taps,
                               &cw->packed, &cw->wsum, &cw->w_scale, err);
    if (st == STDCPU_OK)
        st = copy_bias(&cw->bias, bias, out_ch, err);
    if (st != STDCPU_OK)
        stdcpu_conv2d_weight_free(cw);
    return st;
}

void stdcpu_conv2d_weight_free(stdcpu_conv2d_weight *cw)
{
    stdcpu_aligned_free(cw->packed);
    stdcpu_aligned_free(cw->wsum);
    stdcpu_aligned_free(cw->w_scale);
    stdcpu_aligned_free(cw->w);
    stdcpu_aligned_free(cw->bias);
    memset(cw, 0, sizeof *cw);
}

size_t stdcpu_conv2d_out_size(size_t in, size_t k, size_t stride, size_t pad)
{
    if (stride == 0 || in + 2 * pad < k)
        return 0;
    return (in + 2 * pad - k) / stride + 1;
}

/* ---- the q8 tile loop ------------------------------------------------------ */

/* The task grid: row blocks x column chunks (whole 16-col panels per chunk).
 * Columns are split only when there are too few row blocks for the threads.
 * Threads take the next task from a shared counter rather than a fixed
 * share: on a VM whose host slows one vCPU at a time, a fixed half left the
 * other thread waiting (whole UNet passes, alternating in one process: SD1.5
 * 1.00-1.06x, SDXL batch 2 1.15x). A task's result does not depend on the
 * thread that runs it, so outputs stay bit-identical. */
typedef struct {
    size_t rows, cols, row_block, chunk_cols, n_row_blocks, n_chunks;
    atomic_size_t next; /* the first task no thread has taken */
} task_grid;

static size_t grid_take(task_grid *g) { return atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed); }

static void plan_grid(task_grid *g, size_t rows, size_t cols, size_t row_block, size_t col_unit,
                      int nth)
{
    g->rows = rows;
    g->cols = cols;
    g->row_block = row_block;
    atomic_init(&g->next, 0);
    g->n_row_blocks = ceil_div(rows, row_block);
    const size_t units = ceil_div(cols, col_unit);
    size_t want = 1;
    if (g->n_row_blocks < 2 * (size_t)nth)
        want = ceil_div(2 * (size_t)nth, g->n_row_blocks);
    want = want > units ? units : want;
    g->chunk_cols = ceil_div(units, want) * col_unit;
    g->n_chunks = ceil_div(cols, g->chunk_cols);
}

void stdcpu_q8_run_tiles(const stdcpu_q8_tiles *q, size_t rows, const int8_t *const *ind, size_t c0, size_t c1)
{
    const stdcpu_gemm_kernels *gk = q->gk;
    const size_t mr = gk->q8_mr, nr = gk->q8_nr, kp = q->ks * q->kc;
    size_t cb_cols = (L2_WEIGHT_BYTES / (kp ? kp : 1)) / nr * nr;
    cb_cols = cb_cols < nr ? nr : cb_cols;
    const int fuse_residual = q->residual && q->act == STDCPU_ACT_NONE;
    for (size_t cb = c0; cb < c1; cb += cb_cols) {
        const size_t ce = min_sz(c1, cb + cb_cols);
        for (size_t i0 = 0, mt = 0; i0 < rows; i0 += mr, mt++) {
            const size_t mr_t = min_sz(mr, rows - i0);
            const int8_t *const *a = ind + mt * q->ks * mr;
            for (size_t c = cb; c < ce; c += nr) {
                const stdcpu_q8_epilogue ep = {
                    .a_scale = q->a_scale + i0 * q->a_scale_stride,
                    .a_scale_stride = q->a_scale_stride,
                    .w_scale = q->w_scale + c,
                    .bias = q->bias ? q->bias + c : NULL,
                    .residual = fuse_residual ? q->residual + i0 * q->ldy + (c - q->y_col0) : NULL,
                    .residual_stride = q->ldy,
                };
                gk->q8_igemm(mr_t, min_sz(nr, ce - c), q->kc, q->ks, a, q->packed + c * kp,
                             q->wsum + c, q->y + i0 * q->ldy + (c - q->y_col0), q->ldy, &ep);
            }
            if (q->act != STDCPU_ACT_NONE)
                for (size_t i = i0; i < i0 + mr_t; i++)
                    gk->f32_act_residual(q->y + i * q->ldy + (cb - q->y_col0), ce - cb,
                                         q->residual ? q->residual + i * q->ldy + (cb - q->y_col0) : NULL,
                                         q->act);
        }
    }
}

static int residual_ok(const float *y, const float *residual, stdcpu_act act)
{
    return !(residual == y && act != STDCPU_ACT_NONE);
}

/* ---- q8 linear ------------------------------------------------------------- */

typedef struct {
    const stdcpu_gemm_kernels *gk;
    const stdcpu_norm_kernels *nk; /* with norm */
    const stdcpu_linear_weight *lw;
    const stdcpu_row_norm *norm;   /* or NULL */
    const stdcpu_chan_affine *aff; /* or NULL */
    const float *x;
    float *y;
    const float *residual;
    stdcpu_act act;
    task_grid g;
    unsigned char *scratch;
    size_t scratch_per_thread;
} q8_linear_job;

/* [rb][kp] int8 rows, [rb] scales, the pointer tiles, one [k] normed row */
static size_t q8_linear_scratch(size_t kp, size_t row_block, size_t mr)
{
    return stdcpu_round_up(row_block * kp, 64) + stdcpu_round_up(row_block * sizeof(float), 64) +
           stdcpu_round_up(ceil_div(row_block, mr) * mr * sizeof(void *), 64) + stdcpu_round_up(kp * sizeof(float), 64);
}

static void q8_linear_task(void *arg, int ith, int nth)
{
    (void)nth;
    q8_linear_job *j = arg; /* not const: j->g is the shared task counter */
    const stdcpu_linear_weight *lw = j->lw;
    const stdcpu_gemm_kernels *gk = j->gk;
    const size_t kp = lw->kp, rb = j->g.row_block, mr = gk->q8_mr;
    unsigned char *s = j->scratch + (size_t)ith * j->scratch_per_thread;
    int8_t *aq = (int8_t *)s;                                   /* [rb][kp] */
    float *as = (float *)(s + stdcpu_round_up(rb * kp, 64));    /* [rb] */
    const int8_t **ind = (const int8_t **)((unsigned char *)as + stdcpu_round_up(rb * sizeof(float), 64));
    float *normed = (float *)((unsigned char *)ind + stdcpu_round_up(ceil_div(rb, mr) * mr * sizeof(void *), 64));
    size_t quantised_block = (size_t)-1;
    const size_t ntasks = j->g.n_row_blocks * j->g.n_chunks;
    for (size_t t = grid_take(&j->g); t < ntasks; t = grid_take(&j->g)) {
        const size_t blk = t / j->g.n_chunks, chunk = t % j->g.n_chunks;
        const size_t r0 = blk * rb, rows = min_sz(rb, j->g.rows - r0);
        if (blk != quantised_block) {
            for (size_t i = 0; i < rows; i++) {
                const float *xr = j->x + (r0 + i) * lw->k;
                if (j->norm) {
                    j->nk->layer_norm(xr, lw->k, 1, lw->k, j->norm->eps, j->norm->gamma, j->norm->beta, normed, lw->k);
                    xr = normed;
                } else if (j->aff) {
                    const size_t o = (r0 + i) / j->aff->pixels * lw->k;
                    j->nk->channel_affine(xr, 1, lw->k, j->aff->mean + o, j->aff->mul + o, j->aff->add, j->aff->silu,
                                          normed);
                    xr = normed;
                }
                as[i] = stdcpu_q8_quantize_row(gk, xr, lw->k, kp, gk->q8_a_xor, aq + i * kp);
            }
            /* ks = 1: tile mt's pointers are its rows, [1][mr_t]. */
            for (size_t i0 = 0; i0 < rows; i0 += mr)
                for (size_t i = i0; i < min_sz(rows, i0 + mr); i++)
                    ind[i] = aq + i * kp;
            quantised_block = blk;
        }
        const stdcpu_q8_tiles q = {
            .gk = gk, .ks = 1, .kc = kp, .packed = lw->packed, .wsum = lw->wsum,
            .w_scale = lw->w_scale, .bias = lw->bias, .a_scale = as, .a_scale_stride = 1,
            .y = j->y + r0 * lw->n, .residual = j->residual ? j->residual + r0 * lw->n : NULL,
            .ldy = lw->n, .act = j->act,
        };
        const size_t c0 = chunk * j->g.chunk_cols;
        stdcpu_q8_run_tiles(&q, rows, (const int8_t *const *)ind, c0, min_sz(lw->n, c0 + j->g.chunk_cols));
    }
}

static stdcpu_status q8_linear(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_row_norm *norm,
                               const stdcpu_chan_affine *aff, const stdcpu_linear_weight *lw, const float *x, float *y, size_t M,
                               const float *residual, stdcpu_act act, stdcpu_error *err)
{
    const stdcpu_gemm_kernels *gk = &kern->gemm;
    const int nth = pool ? stdcpu_pool_threads(pool) : 1;
    size_t rows = A_BLOCK_BYTES / lw->kp;
    rows = rows < ROW_BLOCK_MIN ? ROW_BLOCK_MIN : rows > ROW_BLOCK_MAX ? ROW_BLOCK_MAX : rows;
    const size_t rb = stdcpu_round_up(rows, gk->q8_mr);
    q8_linear_job j = {.gk = gk, .nk = &kern->norm, .lw = lw, .norm = norm, .aff = aff, .x = x, .y = y, .residual = residual,
                       .act = act};
    plan_grid(&j.g, M, lw->n, rb, gk->q8_nr, nth);
    j.scratch_per_thread = q8_linear_scratch(lw->kp, rb, gk->q8_mr);
    size_t bytes;
    if (stdcpu_mul_size(j.scratch_per_thread, (size_t)nth, &bytes))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "linear: scratch size overflow");
    j.scratch = stdcpu_aligned_alloc(bytes);
    if (!j.scratch)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "linear: out of memory (%zu bytes scratch)", bytes);
    stdcpu_pool_run(pool, q8_linear_task, &j);
    stdcpu_aligned_free(j.scratch);
    return STDCPU_OK;
}

/* ---- f32 through the f32 GEMM kernels -------------------------------------- */

/* y rows [0, rows) x cols [c0, c1) = A . B^T with A [*, k] (lda), B [*, k]
 * rows c0..c1 (ldb = k), then bias, activation and residual. scratch holds
 * stdcpu_f32_gemm_scratch_bytes(gk) bytes. */
static void sgemm_block(const float *a, size_t lda, const float *b, size_t k, const float *bias,
                        float *y, size_t ldy, size_t rows, size_t c0, size_t c1,
                        const float *residual, stdcpu_act act, const stdcpu_gemm_kernels *gk,
                        void *scratch)
{
    const size_t cols = c1 - c0;
    const int accumulate = residual == y && act == STDCPU_ACT_NONE;
    stdcpu_f32_gemm(gk, rows, cols, k, a, lda, b + c0 * k, k, y + c0, ldy, accumulate, scratch);
    for (size_t i = 0; i < rows; i++) {
        float *yi = y + i * ldy + c0;
        if (bias)
            for (size_t c = 0; c < cols; c++)
                yi[c] += bias[c0 + c];
        const float *ri = (residual && !accumulate) ? residual + i * ldy + c0 : NULL;
        if (ri || act != STDCPU_ACT_NONE)
            gk->f32_act_residual(yi, cols, ri, act);
    }
}

typedef struct {
    const stdcpu_gemm_kernels *gk;
    const stdcpu_linear_weight *lw;
    const float *x;
    float *y;
    const float *residual;
    stdcpu_act act;
    task_grid g;
    unsigned char *scratch;
    size_t scratch_per_thread;
} f32_linear_job;

static void f32_linear_task(void *arg, int ith, int nth)
{
    (void)nth;
    f32_linear_job *j = arg; /* not const: j->g is the shared task counter */
    const size_t n = j->lw->n, k = j->lw->k;
    void *scratch = j->scratch + (size_t)ith * j->scratch_per_thread;
    const size_t ntasks = j->g.n_row_blocks * j->g.n_chunks;
    for (size_t t = grid_take(&j->g); t < ntasks; t = grid_take(&j->g)) {
        const size_t blk = t / j->g.n_chunks, chunk = t % j->g.n_chunks;
        const size_t r0 = blk * j->g.row_block, rows = min_sz(j->g.row_block, j->g.rows - r0);
        const size_t c0 = chunk * j->g.chunk_cols, c1 = min_sz(n, c0 + j->g.chunk_cols);
        sgemm_block(j->x + r0 * k, k, j->lw->w, k, j->lw->bias, j->y + r0 * n, n, rows, c0, c1,
                    j->residual ? j->residual + r0 * n : NULL, j->act, j->gk, scratch);
    }
}

static stdcpu_status f32_linear(stdcpu_pool *pool, const stdcpu_gemm_kernels *gk,
                                const stdcpu_linear_weight *lw, const float *x, float *y,
                                size_t M, const float *residual, stdcpu_act act,
                                stdcpu_error *err)
{
    const int nth = pool ? stdcpu_pool_threads(pool) : 1;
    f32_linear_job j = {.gk = gk, .lw = lw, .x = x, .y = y, .residual = residual, .act = act};
    /* Planned for the pool's threads: an element's value does not depend on
     * the tiling (simd/sgemm.h), so the result is the same at every count. */
    plan_grid(&j.g, M, lw->n, stdcpu_round_up(ROW_BLOCK_MAX, gk->f32_mr), gk->f32_nr, nth);
    j.scratch_per_thread = stdcpu_round_up(stdcpu_f32_gemm_scratch_bytes(gk), 64);
    j.scratch = stdcpu_aligned_alloc(j.scratch_per_thread * (size_t)nth);
    if (!j.scratch)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "linear: out of memory (f32 scratch)");
    stdcpu_pool_run(pool, f32_linear_task, &j);
    stdcpu_aligned_free(j.scratch);
    return STDCPU_OK;
}

/* The checks every linear entry point makes once it has a weight and M > 0. */
static stdcpu_status linear_args_ok(const stdcpu_linear_weight *lw, const float *x, const float *y, size_t M,
                                    const float *residual, stdcpu_act act, stdcpu_error *err)
{
    if (!x || !y)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "linear: NULL input or output");
    if (!residual_ok(y, residual, act))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "linear: residual may alias the output only without activation");
    if (M > (size_t)INT32_MAX || lw->n > (size_t)INT32_MAX || lw->k > (size_t)INT32_MAX)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "linear: dimensions exceed int range");
    return STDCPU_OK;
}

stdcpu_status stdcpu_linear_ex(stdcpu_pool *pool, const stdcpu_kernels *kern,
                               const stdcpu_linear_weight *lw, const float *x, float *y, size_t M,
                               const float *residual, stdcpu_act act, stdcpu_error *err)
{
    if (!kern || !lw || (!lw->packed && !lw->w))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "linear: no weight");
    if (M == 0)
        return STDCPU_OK;
    STDCPU_TRY(linear_args_ok(lw, x, y, M, residual, act, err));
    stdcpu_pool_add_ops(pool, (uint64_t)2 * M * lw->n * lw->k);
    if (lw->is_q8)
        return q8_linear(pool, kern, NULL, NULL, lw, x, y, M, residual, act, err);
    return f32_linear(pool, &kern->gemm, lw, x, y, M, residual, act, err);
}

/* The checks of an affine map on the input of a layer with k inputs and
 * `pixels` rows per batch item (M rows in all). */
static stdcpu_status affine_ok(const stdcpu_chan_affine *aff, size_t k, size_t M, stdcpu_error *err)
{
    if (!aff || !aff->mean || !aff->mul || !aff->add || aff->C != k || aff->pixels == 0 || M % aff->pixels != 0)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "channel map does not match the layer's input");
    return STDCPU_OK;
}

/* A q8 linear with the norm before it folded in: a LayerNorm (norm) or a
 * GroupNorm's channel map (aff), exactly one of them. */
static stdcpu_status folded_linear(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_linear_weight *lw,
                                   const stdcpu_row_norm *norm, const stdcpu_chan_affine *aff, const float *x,
                                   float *y, size_t M, const float *residual, stdcpu_act act, stdcpu_error *err)
{
    const char *what = norm ? "LayerNorm" : "GroupNorm";
    if (!kern)
        kern = stdcpu_kernels_get();
    if (!lw || !lw->is_q8 || !lw->packed)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "linear: a folded %s needs q8 weights", what);
    if (norm && (!norm->gamma || !norm->beta || !(norm->eps >= 0.0f)))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "linear: LayerNorm parameters missing");
    if (M == 0)
        return STDCPU_OK;
    if (!norm)
        STDCPU_TRY(affine_ok(aff, lw->k, M, err));
    STDCPU_TRY(linear_args_ok(lw, x, y, M, residual, act, err));
    if (x < y + M * lw->n && y < x + M * lw->k)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "linear: with a folded %s, x must not overlap y", what);
    stdcpu_pool_add_ops(pool, (uint64_t)2 * M * lw->n * lw->k);
    return q8_linear(pool, kern, norm, norm ? NULL : aff, lw, x, y, M, residual, act, err);
}

stdcpu_status stdcpu_linear_norm(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_linear_weight *lw,
                                 const stdcpu_row_norm *norm, const float *x, float *y, size_t M,
                                 const float *residual, stdcpu_act act, stdcpu_error *err)
{
    if (!norm)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "linear: LayerNorm parameters missing");
    return folded_linear(pool, kern, lw, norm, NULL, x, y, M, residual, act, err);
}

stdcpu_status stdcpu_linear_affine(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_linear_weight *lw,
                                   const stdcpu_chan_affine *aff, const float *x, float *y, size_t M,
                                   const float *residual, stdcpu_act act, stdcpu_error *err)
{
    return folded_linear(pool, kern, lw, NULL, aff, x, y, M, residual, act, err);
}

stdcpu_status stdcpu_linear(stdcpu_pool *pool, const stdcpu_linear_weight *lw, const float *x,
                            float *y, size_t M, const float *residual, stdcpu_act act,
                            stdcpu_error *err)
{
    return stdcpu_linear_ex(pool, stdcpu_kernels_get(), lw, x, y, M, residual, act, err);
}


/* ---- convolution ----------------------------------------------------------- */

typedef struct {
    const stdcpu_gemm_kernels *gk;
    const stdcpu_conv2d_weight *cw;
    const float *x;            /* [B, H, W, I] */
    size_t B, H, W, Ho, Wo, stride, pad;
    float *y;                  /* [B, Ho, Wo, O] */
    const float *residual;
    stdcpu_act act;
    task_grid g;
    /* q8 */
    float *absmax;             /* [nth] partial maxima */
    float a_scale, inv_scale;
    int8_t *xq;                /* [B*H*W][cp] quantised input */
    const int8_t *zero_row;    /* [cp] the quantised zero */
    const stdcpu_chan_affine *aff; /* applied to x as it is read, or NULL */
    const stdcpu_norm_kernels *nk;
    float *mapped;             /* [nth][mapped_pixels][I] aff(x) staging, in L1 */
    size_t mapped_pixels;
    /* per-thread scratch */
    unsigned char *scratch;
    size_t scratch_per_thread;
} conv_job;

/* Pixels of a thread's range mapped by aff a chunk at a time (never across
 * a batch item): fn sees chunks of aff(x) from the thread's L1 staging. */
static void conv_mapped_chunks(const conv_job *j, int ith, size_t b, size_t e,
                               void (*fn)(const conv_job *, int, size_t, size_t, const float *))
{
    const stdcpu_chan_affine *a = j->aff;
    const size_t c = j->cw->in_ch;
    float *buf = j->mapped + (size_t)ith * j->mapped_pixels * c;
    while (b < e) {
        const size_t item = b / a->pixels, item_end = (item + 1) * a->pixels;
        size_t n = e - b < j->mapped_pixels ? e - b : j->mapped_pixels;
        n = b + n > item_end ? item_end - b : n;
        j->nk->channel_affine(j->x + b * c, n, c, a->mean + item * c, a->mul + item * c, a->add, a->silu, buf);
        fn(j, ith, b, n, buf);
        b += n;
    }
}

static void absmax_chunk(const conv_job *j, int ith, size_t p0, size_t n, const float *v)
{
    (void)p0;
    const float m = j->gk->f32_absmax(v, n * j->cw->in_ch);
    j->absmax[ith] = m > j->absmax[ith] ? m : j->absmax[ith];
}

static void quantize_chunk(const conv_job *j, int ith, size_t p0, size_t n, const float *v)
{
    (void)ith;
    const size_t c = j->cw->in_ch, cp = j->cw->cp;
    for (size_t p = 0; p < n; p++)
        j->gk->q8_quantize(v + p * c, c, cp, j->inv_scale, j->gk->q8_a_xor, j->xq + (p0 + p) * cp);
}

static void conv_absmax_task(void *arg, int ith, int nth)
{
    conv_job *j = arg;
    const size_t pixels = j->B * j->H * j->W;
    size_t b, e;
    stdcpu_split_range(pixels, ith, nth, &b, &e);
    if (j->aff) {
        j->absmax[ith] = 0;
        conv_mapped_chunks(j, ith, b, e, absmax_chunk);
        return;
    }
    j->absmax[ith] = e > b ? j->gk->f32_absmax(j->x + b * j->cw->in_ch, (e - b) * j->cw->in_ch) : 0;
}

static void conv_quantize_task(void *arg, int ith, int nth)
{
    const conv_job *j = arg;
    const size_t pixels = j->B * j->H * j->W;
    size_t b, e;
    stdcpu_split_range(pixels, ith, nth, &b, &e);
    if (j->aff)
        conv_mapped_chunks(j, ith, b, e, quantize_chunk);
    else if (e > b)
        quantize_chunk(j, ith, b, e - b, j->x + b * j->cw->in_ch);
}

/* The input pixel of output row m (flattened over B, Ho, Wo) at tap (ky, kx),
 * or NULL in the padding. Returns its pixel index through *pix. */
static int conv_tap_pixel(const conv_job *j, size_t m, size_t ky, size_t kx, size_t *pix)
{
    const size_t ox = m % j->Wo, oy = (m / j->Wo) % j->Ho, b = m / (j->Wo * j->Ho);
    const size_t iy = oy * j->stride + ky, ix = ox * j->stride + kx; /* + pad */
    if (iy < j->pad || ix < j->pad || iy - j->pad >= j->H || ix - j->pad >= j->W)
        return 0;
    *pix = (b * j->H + (iy - j->pad)) * j->W + (ix - j->pad);
    return 1;
}

static void conv_q8_task(void *arg, int ith, int nth)
{
    (void)nth;
    conv_job *j = arg; /* not const: j->g is the shared task counter */
    const stdcpu_conv2d_weight *cw = j->cw;
    const stdcpu_gemm_kernels *gk = j->gk;
    const size_t mr = gk->q8_mr, ks = cw->kh * cw->kw, rb = j->g.row_block, O = cw->out_ch;
    const int8_t **ind = (const int8_t **)(j->scratch + (size_t)ith * j->scratch_per_thread);
    size_t built_block = (size_t)-1;
    const size_t ntasks = j->g.n_row_blocks * j->g.n_chunks;
    for (size_t t = grid_take(&j->g); t < ntasks; t = grid_take(&j->g)) {
        const size_t blk = t / j->g.n_chunks, chunk = t % j->g.n_chunks;
        const size_t r0 = blk * rb, rows = min_sz(rb, j->g.rows - r0);
        if (blk != built_block) {
            /* Pointer tiles [ks][mr_t] per mr rows. */
            for (size_t i0 = 0, mt = 0; i0 < rows; i0 += mr, mt++) {
                const size_t mr_t = min_sz(mr, rows - i0);
                const int8_t **tile = ind + mt * ks * mr;
                for (size_t ky = 0; ky < cw->kh; ky++)
                    for (size_t kx = 0; kx < cw->kw; kx++)
                        for (size_t i = 0; i < mr_t; i++) {
                            size_t pix;
                            tile[(ky * cw->kw + kx) * mr_t + i] =
                                conv_tap_pixel(j, r0 + i0 + i, ky, kx, &pix) ? j->xq + pix * cw->cp
                                                                             : j->zero_row;
                        }
            }
            built_block = blk;
        }
        const stdcpu_q8_tiles q = {
            .gk = gk, .ks = ks, .kc = cw->cp, .packed = cw->packed, .wsum = cw->wsum,
            .w_scale = cw->w_scale, .bias = cw->bias, .a_scale = &j->a_scale, .a_scale_stride = 0,
            .y = j->y + r0 * O, .residual = j->residual ? j->residual + r0 * O : NULL, .ldy = O,
            .act = j->act,
        };
        const size_t c0 = chunk * j->g.chunk_cols;
        stdcpu_q8_run_tiles(&q, rows, (const int8_t *const *)ind, c0, min_sz(O, c0 + j->g.chunk_cols));
    }
}

/* f32: im2col of one tile of output pixels at a time, then sgemm. */
static void conv_f32_task(void *arg, int ith, int nth)
{
    (void)nth;
    conv_job *j = arg; /* not const: j->g is the shared task counter */
    const stdcpu_conv2d_weight *cw = j->cw;
    const size_t C = cw->in_ch, K = cw->kh * cw->kw * C, O = cw->out_ch;
    unsigned char *s = j->scratch + (size_t)ith * j->scratch_per_thread;
    float *patch = (float *)s; /* [tile][K] */
    void *gemm_scratch = s + stdcpu_round_up(j->g.row_block * K * sizeof(float), 64);
    const size_t ntasks = j->g.n_row_blocks * j->g.n_chunks;
    for (size_t t = grid_take(&j->g); t < ntasks; t = grid_take(&j->g)) {
        const size_t blk = t / j->g.n_chunks, chunk = t % j->g.n_chunks;
        const size_t r0 = blk * j->g.row_block, rows = min_sz(j->g.row_block, j->g.rows - r0);
        for (size_t i = 0; i < rows; i++)
            for (size_t ky = 0; ky < cw->kh; ky++)
                for (size_t kx = 0; kx < cw->kw; kx++) {
                    float *dst = patch + i * K + (ky * cw->kw + kx) * C;
                    size_t pix;
                    if (conv_tap_pixel(j, r0 + i, ky, kx, &pix))
                        memcpy(dst, j->x + pix * C, C * sizeof(float));
                    else
                        memset(dst, 0, C * sizeof(float));
                }
        const size_t c0 = chunk * j->g.chunk_cols;
        sgemm_block(patch, K, cw->w, K, cw->bias, j->y + r0 * O, O, rows, c0,
                    min_sz(O, c0 + j->g.chunk_cols), j->residual ? j->residual + r0 * O : NULL,
                    j->act, j->gk, gemm_scratch);
    }
}

/* Pixels of aff(x) staged at once per thread: 16 KiB, within L1. */
#define CONV_MAPPED_BYTES (16u * 1024u)

static stdcpu_status conv2d(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_conv2d_weight *cw,
                            const stdcpu_chan_affine *aff, const float *x, size_t B, size_t H, size_t W,
                            size_t stride, size_t pad, float *y, const float *residual, stdcpu_act act,
                            stdcpu_error *err)
{
    if (!kern || !cw || (!cw->packed && !cw->w))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "conv2d: no weight");
    const size_t Ho = stdcpu_conv2d_out_size(H, cw->kh, stride, pad);
    const size_t Wo = stdcpu_conv2d_out_size(W, cw->kw, stride, pad);
    if (stride == 0 || Ho == 0 || Wo == 0 || pad >= cw->kh || pad >= cw->kw)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "conv2d: %zux%zu kernel, stride %zu, pad %zu does not fit %zux%zu",
                           cw->kh, cw->kw, stride, pad, H, W);
    if (B == 0)
        return STDCPU_OK;
    if (!x || !y)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "conv2d: NULL input or output");
    if (!residual_ok(y, residual, act))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "conv2d: residual may alias the output only without activation");
    size_t M, pixels;
    if (stdcpu_mul_size(B, Ho * Wo, &M) || stdcpu_mul_size(B, H * W, &pixels) ||
        M > (size_t)INT32_MAX || pixels > (size_t)INT32_MAX / (cw->in_ch + 4))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "conv2d: map too large");

    /* 1x1, stride 1: the NHWC map is already the GEMM's A (per-row scales). */
    if (cw->kh == 1 && cw->kw == 1 && stride == 1 && pad == 0) {
        const stdcpu_linear_weight lw = {
            .n = cw->out_ch, .k = cw->in_ch, .is_q8 = cw->is_q8, .kp = cw->cp,
            .packed = cw->packed, .wsum = cw->wsum, .w_scale = cw->w_scale, .w = cw->w,
            .bias = cw->bias,
        };
        return aff ? stdcpu_linear_affine(pool, kern, &lw, aff, x, y, M, residual, act, err)
                   : stdcpu_linear_ex(pool, kern, &lw, x, y, M, residual, act, err);
    }

    const int nth = pool ? stdcpu_pool_threads(pool) : 1;
    const stdcpu_gemm_kernels *gk = &kern->gemm;
    conv_job j = {.gk = gk, .cw = cw, .x = x, .B = B, .H = H, .W = W, .Ho = Ho, .Wo = Wo,
                  .stride = stride, .pad = pad, .y = y, .residual = residual, .act = act,
                  .aff = aff, .nk = &kern->norm};
    const size_t ks = cw->kh * cw->kw;
    stdcpu_status st = STDCPU_OK;
    if (cw->is_q8) {
        const size_t rb = stdcpu_round_up(ROW_BLOCK_MAX, gk->q8_mr);
        plan_grid(&j.g, M, cw->out_ch, rb, gk->q8_nr, nth);
        j.scratch_per_thread = stdcpu_round_up(rb * ks * sizeof(void *), 64);
        const size_t xq_bytes = stdcpu_round_up(pixels * cw->cp, 64);
        j.mapped_pixels = aff ? CONV_MAPPED_BYTES / sizeof(float) / cw->in_ch : 0;
        j.mapped_pixels = aff && j.mapped_pixels == 0 ? 1 : j.mapped_pixels;
        const size_t mapped_bytes = stdcpu_round_up(j.mapped_pixels * cw->in_ch * sizeof(float), 64);
        const size_t head = xq_bytes + stdcpu_round_up(cw->cp, 64) +
                            stdcpu_round_up((size_t)nth * sizeof(float), 64) + (size_t)nth * mapped_bytes;
        unsigned char *mem = stdcpu_aligned_alloc(head + (size_t)nth * j.scratch_per_thread);
        if (!mem)
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "conv2d: out of memory");
        j.xq = (int8_t *)mem;
        int8_t *zero = (int8_t *)mem + xq_bytes;
        memset(zero, gk->q8_a_xor, cw->cp);
        j.zero_row = zero;
        j.absmax = (float *)(mem + xq_bytes + stdcpu_round_up(cw->cp, 64));
        j.mapped = (float *)(void *)((unsigned char *)j.absmax + stdcpu_round_up((size_t)nth * sizeof(float), 64));
        j.scratch = mem + head;
        stdcpu_pool_run(pool, conv_absmax_task, &j);
        float m = 0;
        for (int i = 0; i < nth; i++)
            m = j.absmax[i] > m ? j.absmax[i] : m;
        stdcpu_q8_scale_for(m, &j.a_scale, &j.inv_scale);
        stdcpu_pool_run(pool, conv_quantize_task, &j);
        stdcpu_pool_run(pool, conv_q8_task, &j);
        stdcpu_aligned_free(mem);
    } else {
        const size_t row_bytes = ks * cw->in_ch * sizeof(float);
        size_t tile = F32_CONV_TILE_BYTES / row_bytes / 16 * 16;
        tile = tile < F32_CONV_TILE_MIN ? F32_CONV_TILE_MIN : tile;
        tile = tile > F32_CONV_TILE_MAX ? F32_CONV_TILE_MAX : tile;
        /* keep workers busy on small maps */
        while (tile > F32_CONV_TILE_MIN && ceil_div(M, tile) < 2 * (size_t)nth)
            tile /= 2;
        plan_grid(&j.g, M, cw->out_ch, tile, gk->f32_nr, nth);
        size_t bytes;
        if (stdcpu_mul_size(tile * ks * sizeof(float), cw->in_ch, &bytes) ||
            stdcpu_add_size(stdcpu_round_up(bytes, 64),
                            stdcpu_round_up(stdcpu_f32_gemm_scratch_bytes(gk), 64), &bytes) ||
            stdcpu_mul_size(bytes, (size_t)nth, &bytes))
            return stdcpu_fail(err, STDCPU_ERR_LIMIT, "conv2d: scratch size overflow");
        j.scratch_per_thread = bytes / (size_t)nth;
        j.scratch = stdcpu_aligned_alloc(bytes);
        if (!j.scratch)
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "conv2d: out of memory (%zu bytes)", bytes);
        stdcpu_pool_run(pool, conv_f32_task, &j);
        stdcpu_aligned_free(j.scratch);
    }
    if (st == STDCPU_OK) /* 2 x output pixels x O x I x kh x kw */
        stdcpu_pool_add_ops(pool, (uint64_t)2 * B * Ho * Wo * cw->out_ch * cw->in_ch * cw->kh * cw->kw);
    return st;
}

stdcpu_status stdcpu_conv2d_ex(stdcpu_pool *pool, const stdcpu_kernels *kern,
                               const stdcpu_conv2d_weight *cw, const float *x, size_t B, size_t H,
                               size_t W, size_t stride, size_t pad, float *y,
                               const float *residual, stdcpu_act act, stdcpu_error *err)
{
    return conv2d(pool, kern, cw, NULL, x, B, H, W, stride, pad, y, residual, act, err);
}

stdcpu_status stdcpu_conv2d_affine(stdcpu_pool *pool, const stdcpu_kernels *kern, const stdcpu_conv2d_weight *cw,
                                   const stdcpu_chan_affine *aff, const float *x, size_t B, size_t H, size_t W,
                                   size_t stride, size_t pad, float *y, const float *residual, stdcpu_act act,
                                   stdcpu_error *err)
{
    if (!kern)
        kern = stdcpu_kernels_get();
    if (!cw || !cw->is_q8 || !cw->packed)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "conv2d: a folded GroupNorm needs q8 weights");
    size_t pixels;
    if (B == 0)
        return STDCPU_OK;
    if (stdcpu_mul_size(B, H, &pixels) || stdcpu_mul_size(pixels, W, &pixels))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "conv2d: map too large");
    STDCPU_TRY(affine_ok(aff, cw->in_ch, pixels, err));
    if (aff->pixels != H * W)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "conv2d: channel map is for another map size");
    if (x && y) {
        const size_t ho = stdcpu_conv2d_out_size(H, cw->kh, stride, pad), wo = stdcpu_conv2d_out_size(W, cw->kw, stride, pad);
        const float *ye = y + B * ho * wo * cw->out_ch, *xe = x + pixels * cw->in_ch;
        if (x < ye && y < xe)
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "conv2d: with a channel map, x must not overlap y");
    }
    return conv2d(pool, kern, cw, aff, x, B, H, W, stride, pad, y, residual, act, err);
}

stdcpu_status stdcpu_conv2d(stdcpu_pool *pool, const stdcpu_conv2d_weight *cw, const float *x,
                            size_t B, size_t H, size_t W, size_t stride, size_t pad, float *y,
                            const float *residual, stdcpu_act act, stdcpu_error *err)
{
    return stdcpu_conv2d_ex(pool, stdcpu_kernels_get(), cw, x, B, H, W, stride, pad, y, residual,
                            act, err);
}

/* ---- layout ---------------------------------------------------------------- */

void stdcpu_nchw_to_nhwc(const float *x, float *y, size_t B, size_t C, size_t H, size_t W)
{
    const size_t hw = H * W;
    for (size_t b = 0; b < B; b++)
        for (size_t c = 0; c < C; c++)
            for (size_t p = 0; p < hw; p++)
                y[(b * hw + p) * C + c] = x[(b * C + c) * hw + p];
}

void stdcpu_nhwc_to_nchw(const float *x, float *y, size_t B, size_t C, size_t H, size_t W)
{
    const size_t hw = H * W;
    for (size_t b = 0; b < B; b++)
        for (size_t p = 0; p < hw; p++)
            for (size_t c = 0; c < C; c++)
                y[(b * C + c) * hw + p] = x[(b * hw + p) * C + c];
}
