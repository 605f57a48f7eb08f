/* Int8 attention (stdcpu_attention with desc->int8): Q.K^T and P.V run on
 * the q8 GEMM micro-kernels of the dispatch table, the online softmax in f32
 * between them (SageAttention-style, with an int8 P.V as well).
 *
 * Why: at 4096 tokens SD1.5's self-attention (8 heads of 40) is about half of
 * an int8 UNet pass when it runs in f32; the GEMM kernels run 3-4x faster in
 * int8 than f32 on VNNI / dotprod machines.
 *
 * Quantisation (all symmetric, q in [-127, 127]):
 *   Q  per query row, the softmax scale folded into its scale;
 *   K  per key row, after subtracting the per-channel mean of K over the
 *      keys: q.(k - mean) differs from q.k by a per-query constant, which the
 *      softmax ignores, and the centred rows use their 8 bits far better;
 *   P  per (query row, key block of Q8A_KB) with 7 bits: 127 exp(s - block
 *      max) rounded (simd/attn.h softmax_block_q8), so blocks far below the
 *      row's maximum keep their precision;
 *   V  per (key block, channel).
 * K and V are quantised and packed (16c4, like weights) once per call,
 * before the query tiles run, in a fixed split over (batch, key block);
 * every query tile is then independent, so results do not depend on the
 * thread count. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/ops_attn_q8.h"

#define Q8A_QT 64  /* query rows per work item */
#define Q8A_KB 256 /* keys per block: one block's S rows (64 KiB) stay in L2 */

typedef struct {
    const stdcpu_attention_desc *a;
    const stdcpu_kernels *kern;
    size_t d, dp, d16;           /* head dim, rounded to 4 (Q/K bytes), to 16 (V panels) */
    size_t nk16, nblk;           /* keys rounded to 16; key blocks */
    size_t kpack_bytes, vblk_bytes;
    /* per (batch, head) bh, all 64-byte aligned: */
    int8_t *kpack;   /* [BH][kpack_bytes]  K: N = keys, K-dim = dp (16c4) */
    int32_t *ksum;   /* [BH][nk16] */
    float *kscale;   /* [BH][nk16] per-key scales, 0 padded */
    int8_t *vpack;   /* [BH][nblk][vblk_bytes]  V block: N = d, K-dim = keys of the block */
    int32_t *vsum;   /* [BH][nblk][d16] */
    float *vscale;   /* [BH][nblk][d16] per-channel scales of the block, 0 padded */
    /* per batch item, over all C = heads * d channels (the preparation's
     * statistics, gathered in row order: one contiguous sweep, not one
     * strided sweep per head) */
    size_t C;
    float *kpart;    /* [B][nblk][C] sums of K over each block's keys */
    float *kneg;     /* [B][C] minus the mean of K over the keys */
    float *vmax;     /* [B][nblk][C] max |V| over each block's keys */
    /* per thread */
    unsigned char *thread_mem;
    size_t per_thread;
    size_t qtiles, items;
    atomic_size_t next;
} q8a_task;

/* Per-thread scratch layout (bytes, each part 64-aligned). */
typedef struct {
    int8_t *qq;     /* [QT][dp] quantised Q rows (XOR the kernel's q8_a_xor) */
    float *qsc;     /* [QT] Q scales x softmax scale */
    float *s;       /* [QT][KB] scores, then rounded weights */
    int8_t *p;      /* [QT][KB] P in int8 */
    float *o;       /* [QT][d16] output accumulator */
    float *m, *l, *alpha, *pscale; /* [QT] each */
    float *row;     /* [d] f32 staging for K / V quantisation */
    float *cinv;    /* [C] a V block's inverse scales, every head's channels */
} q8a_scratch;

static size_t scratch_layout(const q8a_task *t, unsigned char *base, q8a_scratch *sc)
{
    const size_t QT = Q8A_QT, KB = Q8A_KB;
    size_t off = 0;
    const size_t oqq = stdcpu_layout_part(&off, QT * t->dp),
                 oqsc = stdcpu_layout_part(&off, QT * 4),
                 os = stdcpu_layout_part(&off, QT * KB * 4),
                 op = stdcpu_layout_part(&off, QT * KB),
                 oo = stdcpu_layout_part(&off, QT * t->d16 * 4),
                 om = stdcpu_layout_part(&off, 4 * QT * 4),
                 orow = stdcpu_layout_part(&off, t->d * 4),
                 ocinv = stdcpu_layout_part(&off, t->C * 4);
    if (base) {
        sc->qq = (int8_t *)(base + oqq);
        sc->qsc = (float *)(base + oqsc);
        sc->s = (float *)(base + os);
        sc->p = (int8_t *)(base + op);
        sc->o = (float *)(base + oo);
        sc->m = (float *)(base + om);
        sc->l = sc->m + QT;
        sc->alpha = sc->l + QT;
        sc->pscale = sc->alpha + QT;
        sc->row = (float *)(base + orow);
        sc->cinv = (float *)(base + ocinv);
    }
    return off;
}

/* ---- K / V preparation, one (batch, block of Q8A_KB keys) at a time ---------
 *
 * A head's K and V are d floats of each row of [tk][heads*d] maps whose rows
 * are kilobytes apart. Prepared head by head, every head swept all rows
 * four times: a TLB miss per row, and the preparation took ~1/6 of the
 * int8 attention at d = 40. So both passes go row by row over all heads:
 *   1. stats: per block, the sums of K and the max |V| of every channel;
 *   2. (serial, in block order) the K means;
 *   3. pack: per block, every head's K rows (centred, one scale per key)
 *      and V rows (one scale per channel of the block) quantised and packed.
 * Items are (batch, block) in a fixed split, and the means are summed in
 * block order, so results do not depend on the thread count. */

static void stats_block(q8a_task *t, size_t b, size_t bi)
{
    const stdcpu_attention_desc *a = t->a;
    const stdcpu_attn_kernels *ak = &t->kern->attn;
    const size_t C = t->C, nk = a->tk, j0 = bi * Q8A_KB, nkb = nk - j0 < Q8A_KB ? nk - j0 : Q8A_KB;
    float *ks = t->kpart + (b * t->nblk + bi) * C, *vm = t->vmax + (b * t->nblk + bi) * C;
    for (size_t c = 0; c < C; c++)
        ks[c] = vm[c] = 0.0f;
    for (size_t j = j0; j < j0 + nkb; j++) {
        const float *kr = a->k + (b * nk + j) * a->k_stride, *vr = a->v + (b * nk + j) * a->v_stride;
        ak->kv_stats(kr, vr, C, ks, vm); /* NaN in V ignored, like f32_absmax */
    }
}

/* The preparation's (batch, key block) items and the query tiles go to
 * whichever thread is free (t->next; one item's result does not depend on
 * the thread). */
static void stats_worker(void *arg, int ith, int nth)
{
    (void)ith, (void)nth;
    q8a_task *t = arg;
    for (size_t it = atomic_fetch_add(&t->next, 1); it < t->a->batch * t->nblk; it = atomic_fetch_add(&t->next, 1))
        stats_block(t, it / t->nblk, it % t->nblk);
}

static void pack_block(q8a_task *t, size_t b, size_t bi, const q8a_scratch *sc)
{
    const stdcpu_attention_desc *a = t->a;
    const stdcpu_gemm_kernels *g = &t->kern->gemm;
    const size_t d = t->d, dp = t->dp, d16 = t->d16, C = t->C, H = a->heads, nk = a->tk;
    const size_t j0 = bi * Q8A_KB, nkb = nk - j0 < Q8A_KB ? nk - j0 : Q8A_KB, kcb = stdcpu_round_up(nkb, 4);
    const size_t nkb16 = stdcpu_round_up(nkb, 16);
    const stdcpu_eltwise_kernels *ek = &t->kern->eltwise;
    const float *kneg = t->kneg + b * C, *vmax = t->vmax + (b * t->nblk + bi) * C;
    float *row = sc->row;
    int8_t q4[4][512]; /* quantised rows before packing */

    /* zero this block's share of every head's packs (key padding included) */
    for (size_t h = 0; h < H; h++) {
        const size_t bh = b * H + h, vb = bh * t->nblk + bi;
        memset(t->kpack + bh * t->kpack_bytes + j0 * dp, 0, nkb16 * dp);
        memset(t->ksum + bh * t->nk16 + j0, 0, nkb16 * sizeof(int32_t));
        memset(t->kscale + bh * t->nk16 + j0, 0, nkb16 * sizeof(float));
        memset(t->vpack + vb * t->vblk_bytes, 0, d16 / 16 * kcb * 16);
        memset(t->vsum + vb * d16, 0, d16 * sizeof(int32_t));
        float *vs = t->vscale + vb * d16;
        memset(vs, 0, d16 * sizeof(float));
        for (size_t c = 0; c < d; c++)
            stdcpu_q8_scale_for(vmax[h * d + c], &vs[c], &sc->cinv[h * d + c]);
    }

    /* K: centred (any vector subtracted from every key leaves the softmax
     * unchanged, so f32 sums are precise enough), one scale per key, packed
     * 16c4: panel j/16, group c/4, lane j%16. (The layout of
     * stdcpu_q8_pack_16c4, written out here with 4-byte copies: that one
     * indexes byte by byte, fine at load time, not once per attention.) */
    for (size_t j = j0; j < j0 + nkb; j++) {
        const float *kr = a->k + (b * nk + j) * a->k_stride;
        for (size_t h = 0; h < H; h++) {
            const size_t bh = b * H + h;
            ek->add(row, kr + h * d, kneg + h * d, d); /* k - mean, exactly */
            t->kscale[bh * t->nk16 + j] = stdcpu_q8_quantize_row(g, row, d, dp, 0, q4[0]);
            int8_t *panel = t->kpack + bh * t->kpack_bytes + j / 16 * dp * 16 + j % 16 * 4;
            int32_t sum = 0;
            for (size_t c = 0; c < dp; c += 4) {
                memcpy(panel + c * 16, q4[0] + c, 4);
                sum += q4[0][c] + q4[0][c + 1] + q4[0][c + 2] + q4[0][c + 3];
            }
            t->ksum[bh * t->nk16 + j] = sum;
        }
    }

    /* V: one scale per channel of the block; 16c4 with the keys as the
     * reduction: panel c/16, group j/4, lane c%16, byte j%4 (four keys'
     * bytes of a channel are one 32-bit store). */
    for (size_t j = 0; j < nkb; j += 4) {
        const size_t nj = nkb - j < 4 ? nkb - j : 4;
        for (size_t h = 0; h < H; h++) {
            const size_t vb = (b * H + h) * t->nblk + bi;
            const float *inv = sc->cinv + h * d;
            for (size_t r = 0; r < 4; r++) {
                if (r >= nj) {
                    memset(q4[r], 0, d);
                    continue;
                }
                ek->mul(row, a->v + (b * nk + j0 + j + r) * a->v_stride + h * d, inv, d);
                g->q8_quantize(row, d, d, 1.0f, 0, q4[r]);
            }
            int8_t *grp = t->vpack + vb * t->vblk_bytes + j / 4 * 64;
            int32_t *vsum = t->vsum + vb * d16;
            for (size_t c = 0; c < d; c++) {
                const int8_t four[4] = {q4[0][c], q4[1][c], q4[2][c], q4[3][c]};
                memcpy(grp + c / 16 * kcb * 16 + c % 16 * 4, four, 4);
                vsum[c] += four[0] + four[1] + four[2] + four[3];
            }
        }
    }
}

static void pack_worker(void *arg, int ith, int nth)
{
    q8a_task *t = arg;
    q8a_scratch sc;
    (void)nth;
    scratch_layout(t, t->thread_mem + (size_t)ith * t->per_thread, &sc);
    for (size_t it = atomic_fetch_add(&t->next, 1); it < t->a->batch * t->nblk; it = atomic_fetch_add(&t->next, 1))
        pack_block(t, it / t->nblk, it % t->nblk, &sc);
}

/* K means per batch item (stored negated: pack_block adds them): block sums
 * added in block order. */
static void k_means(q8a_task *t)
{
    for (size_t b = 0; b < t->a->batch; b++)
        for (size_t c = 0; c < t->C; c++) {
            float s = 0.0f;
            for (size_t bi = 0; bi < t->nblk; bi++)
                s += t->kpart[(b * t->nblk + bi) * t->C + c];
            t->kneg[b * t->C + c] = -(s / (float)t->a->tk);
        }
}

/* ---- query tiles -------------------------------------------------------------- */

/* C [nq][n] (row stride ldc) = (A . W^T) x a_scale[i] x w_scale[j], plus C
 * itself when accumulate: the q8 micro-kernel over its row and column
 * tiles. A: nq rows of kc bytes, lda apart (XOR the kernel's q8_a_xor);
 * W: n columns packed 16c4 with K = kc, wsum / w_scale from its column 0. */
static void gemm_rows(const stdcpu_gemm_kernels *g, size_t nq, const int8_t *a, size_t lda, size_t kc,
                      const int8_t *w, const int32_t *wsum, const float *w_scale, size_t n, const float *a_scale,
                      float *c, size_t ldc, int accumulate)
{
    const size_t mr = g->q8_mr, nr = g->q8_nr;
    const int8_t *rows[STDCPU_Q8_MR_MAX];
    for (size_t i0 = 0; i0 < nq; i0 += mr) {
        const size_t m = nq - i0 < mr ? nq - i0 : mr;
        for (size_t r = 0; r < m; r++)
            rows[r] = a + (i0 + r) * lda;
        for (size_t j = 0; j < n; j += nr) {
            float *cj = c + i0 * ldc + j;
            const stdcpu_q8_epilogue ep = {.a_scale = a_scale + i0, .a_scale_stride = 1, .w_scale = w_scale + j,
                                           .residual = accumulate ? cj : NULL, .residual_stride = ldc};
            g->q8_igemm(m, n - j < nr ? n - j : nr, kc, 1, rows, w + j / 16 * kc * 16, wsum + j, cj, ldc, &ep);
        }
    }
}

static void run_tile(q8a_task *t, size_t b, size_t h, size_t q0, const q8a_scratch *sc)
{
    const stdcpu_attention_desc *a = t->a;
    const stdcpu_kernels *kn = t->kern;
    const stdcpu_gemm_kernels *g = &kn->gemm;
    const size_t d = t->d, dp = t->dp, d16 = t->d16, nk = a->tk, KB = Q8A_KB;
    const size_t bh = b * a->heads + h;
    const size_t nq = a->tq - q0 < Q8A_QT ? a->tq - q0 : Q8A_QT;
    const unsigned char ax = g->q8_a_xor;

    for (size_t i = 0; i < nq; i++) {
        const float *q = a->q + (b * a->tq + q0 + i) * a->q_stride + h * d;
        sc->qsc[i] = stdcpu_q8_quantize_row(g, q, d, dp, ax, sc->qq + i * dp) * a->scale;
        sc->m[i] = -INFINITY;
        sc->l[i] = 0.0f;
    }
    memset(sc->o, 0, nq * d16 * sizeof(float));

    const int8_t *kp = t->kpack + bh * t->kpack_bytes;
    const int32_t *ksum = t->ksum + bh * t->nk16;
    const float *ksc = t->kscale + bh * t->nk16;
    for (size_t bi = 0; bi < t->nblk; bi++) {
        const size_t j0 = bi * KB, nkb = nk - j0 < KB ? nk - j0 : KB, kcb = stdcpu_round_up(nkb, 4);
        /* S [nq][nkb] = (Q . K^T) x q scale x k scale */
        gemm_rows(g, nq, sc->qq, dp, dp, kp + j0 / 16 * dp * 16, ksum + j0, ksc + j0, nkb, sc->qsc, sc->s, KB, 0);
        /* online softmax; P in int8; the accumulator rescaled to the new max */
        int moved = 0;
        for (size_t i = 0; i < nq; i++) {
            kn->attn.softmax_block_q8(sc->s + i * KB, nkb, kcb, ax, sc->p + i * KB, sc->m + i, sc->l + i,
                                      sc->alpha + i, sc->pscale + i);
            moved |= sc->alpha[i] != 1.0f;
        }
        /* Rows whose maximum did not move (most, after the first few
         * blocks) have alpha 1: multiplying them too changes no bit. */
        if (moved)
            kn->attn.row_scale(sc->o, d16, sc->o, d16, nq, d, sc->alpha);
        /* O [nq][d] += (P . V) x p scale x v scale, accumulated in place */
        const size_t vb = bh * t->nblk + bi;
        gemm_rows(g, nq, sc->p, KB, kcb, t->vpack + vb * t->vblk_bytes, t->vsum + vb * d16, t->vscale + vb * d16,
                  d, sc->pscale, sc->o, d16, 1);
    }
    for (size_t i = 0; i < nq; i++)
        sc->alpha[i] = sc->l[i] > 0.0f ? 1.0f / sc->l[i] : 0.0f;
    kn->attn.row_scale(a->o + (b * a->tq + q0) * a->o_stride + h * d, a->o_stride, sc->o, d16, nq, d, sc->alpha);
}

static void tile_worker(void *arg, int ith, int nth)
{
    (void)nth;
    q8a_task *t = arg;
    q8a_scratch sc;
    scratch_layout(t, t->thread_mem + (size_t)ith * t->per_thread, &sc);
    for (;;) {
        const size_t it = atomic_fetch_add(&t->next, 1);
        if (it >= t->items)
            break;
        const size_t tile = it % t->qtiles, bh = it / t->qtiles;
        run_tile(t, bh / t->a->heads, bh % t->a->heads, tile * Q8A_QT, &sc);
    }
}

/* The shared K/V packs' layout (offsets into one block), then the size of
 * everything with `nth` threads' scratch after it; 0 on overflow. */
typedef struct {
    size_t okp, oks, okc, ovp, ovs, ovc, okpart, okmean, ovmax, shared, total;
} q8a_layout;

static void task_shape(q8a_task *t, const stdcpu_attention_desc *a)
{
    memset(t, 0, sizeof *t);
    t->a = a;
    t->d = a->head_dim;
    t->dp = stdcpu_round_up(t->d, 4);
    t->d16 = stdcpu_round_up(t->d, 16);
    t->C = a->heads * t->d;
    t->nk16 = stdcpu_round_up(a->tk, 16);
    t->nblk = (a->tk + Q8A_KB - 1) / Q8A_KB;
    t->kpack_bytes = stdcpu_round_up(stdcpu_q8_packed_bytes(a->tk, 1, t->dp), 64);
    t->vblk_bytes = stdcpu_round_up(stdcpu_q8_packed_bytes(t->d, 1, Q8A_KB), 64);
    t->qtiles = (a->tq + Q8A_QT - 1) / Q8A_QT;
    t->items = a->batch * a->heads * t->qtiles;
    t->per_thread = scratch_layout(t, NULL, NULL);
}

static q8a_layout layout_of(const q8a_task *t, int nth)
{
    q8a_layout L;
    const size_t BH = t->a->batch * t->a->heads;
    size_t off = 0, per = 0;
    L.okp = stdcpu_layout_part(&off, BH * t->kpack_bytes);
    L.oks = stdcpu_layout_part(&off, BH * t->nk16 * 4);
    L.okc = stdcpu_layout_part(&off, BH * t->nk16 * 4);
    L.ovp = stdcpu_layout_part(&off, BH * t->nblk * t->vblk_bytes);
    L.ovs = stdcpu_layout_part(&off, BH * t->nblk * t->d16 * 4);
    L.ovc = stdcpu_layout_part(&off, BH * t->nblk * t->d16 * 4);
    L.okpart = stdcpu_layout_part(&off, t->a->batch * t->nblk * t->C * 4);
    L.okmean = stdcpu_layout_part(&off, t->a->batch * t->C * 4);
    L.ovmax = stdcpu_layout_part(&off, t->a->batch * t->nblk * t->C * 4);
    L.shared = off;
    L.total = stdcpu_mul_size(t->per_thread, (size_t)(nth > 0 ? nth : 1), &per) != 0 || off > SIZE_MAX - per
                  ? 0
                  : off + per;
    return L;
}

size_t stdcpu_attention_q8_scratch_bytes(const stdcpu_attention_desc *a, int threads)
{
    if (a->head_dim == 0 || a->head_dim > 512)
        return 0;
    q8a_task t;
    task_shape(&t, a);
    return layout_of(&t, threads).total;
}

stdcpu_status stdcpu_attention_q8_run(stdcpu_pool *pool, const stdcpu_kernels *kern,
                                      const stdcpu_attention_desc *a, stdcpu_error *err)
{
    if (!a->k || !a->v || a->key_bias || a->causal)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "attention: int8 needs f32 K/V and no mask (no key_bias, not causal)");
    if (a->head_dim > 512)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "attention: int8 supports head_dim <= 512, not %zu",
                           a->head_dim);
    q8a_task t;
    task_shape(&t, a);
    t.kern = kern;
    const int nth = pool ? stdcpu_pool_threads(pool) : 1;
    const q8a_layout L = layout_of(&t, nth);
    if (L.total == 0)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "attention: int8 scratch too large");

    /* One block: the shared K/V packs, then each thread's scratch; the
     * caller's (a UNet's arena: no fresh pages per call) when big enough. */
    unsigned char *owned = NULL, *mem = (unsigned char *)a->scratch;
    if (!mem || a->scratch_floats < (L.total + sizeof(float) - 1) / sizeof(float)) {
        if (!(owned = mem = stdcpu_aligned_alloc(L.total)))
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "attention: no memory for %zu bytes of int8 scratch",
                               L.total);
    }
    t.kpack = (int8_t *)(mem + L.okp);
    t.ksum = (int32_t *)(mem + L.oks);
    t.kscale = (float *)(mem + L.okc);
    t.vpack = (int8_t *)(mem + L.ovp);
    t.vsum = (int32_t *)(mem + L.ovs);
    t.vscale = (float *)(mem + L.ovc);
    t.kpart = (float *)(mem + L.okpart);
    t.kneg = (float *)(mem + L.okmean);
    t.vmax = (float *)(mem + L.ovmax);
    t.thread_mem = mem + L.shared;
    const size_t blocks = a->batch * t.nblk;
    const int nprep = (size_t)nth > blocks ? (int)blocks : nth;
    atomic_init(&t.next, 0);
    stdcpu_pool_run_n(pool, nprep, stats_worker, &t);
    k_means(&t);
    atomic_store(&t.next, 0);
    stdcpu_pool_run_n(pool, nprep, pack_worker, &t);
    atomic_store(&t.next, 0);
    stdcpu_pool_run_n(pool, (size_t)nth > t.items ? (int)t.items : nth, tile_worker, &t);
    stdcpu_aligned_free(owned);
    return STDCPU_OK;
}
