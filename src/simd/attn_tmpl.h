/* Flash-style attention kernel written once on the vector vocabulary of
 * vec_<isa>.h; each attn_<isa>.c defines ATTN_MR / ATTN_NV (register tile)
 * and includes its vec header, then this.
 *
 * Layout trick: the query tile is kept TRANSPOSED (Q^T [d][QT], queries on
 * the vector axis), so no key/value tile is ever repacked:
 *   S^T[j][i] = sum_c K[j][c] * Q^T[c][i]   (broadcast K[j][c], FMA a row of queries)
 *   O^T[c][i] += sum_j V[j][c] * P^T[j][i]  (broadcast V[j][c], FMA a row of probabilities)
 * and the online softmax's per-query max / sum are plain element-wise vector
 * max / add over the key rows. Q^T is built and O^T written back once per
 * query tile. K/V rows are read in place (f32) or converted tile by tile
 * from f16 into the scratch. Memory: stdcpu_attn_scratch_floats(d). */
#include <math.h>
#include <string.h>

#include "simd/attn_smq8.h"
#include "simd/vec_math.h"
#include "simd/vec_tmpl.h"

#define AQT STDCPU_ATTN_QTILE
#define AKT STDCPU_ATTN_KTILE

#if ATTN_MR != 6
#error "the remainder dispatch below handles ATTN_MR == 6"
#endif
#if (AQT / VF_N) % ATTN_NV != 0
#error "ATTN_NV must divide the query vectors of a tile"
#endif

#if defined(__clang__)
#define VF_UNROLL _Pragma("unroll")
#else
#define VF_UNROLL _Pragma("GCC unroll 16")
#endif
#define VF_INLINE static inline __attribute__((always_inline))

/* s[r][v] = sum_c k[r*ks + c] * qt[c*AQT + v*VF_N ...], r < mr, v < nv */
VF_INLINE void VF_FN(qk_block)(const float *k, size_t ks, const float *qt, size_t d, float *s,
                               const int mr, const int nv)
{
    vf acc[ATTN_MR][ATTN_NV];
    VF_UNROLL for (int r = 0; r < mr; r++)
        VF_UNROLL for (int v = 0; v < nv; v++)
            acc[r][v] = vf_zero();
    for (size_t c = 0; c < d; c++) {
        vf qv[ATTN_NV];
        VF_UNROLL for (int v = 0; v < nv; v++)
            qv[v] = vf_load(qt + c * AQT + (size_t)v * VF_N);
        VF_UNROLL for (int r = 0; r < mr; r++) {
            const vf b = vf_set1(k[(size_t)r * ks + c]);
            VF_UNROLL for (int v = 0; v < nv; v++)
                acc[r][v] = vf_fma(b, qv[v], acc[r][v]);
        }
    }
    VF_UNROLL for (int r = 0; r < mr; r++)
        VF_UNROLL for (int v = 0; v < nv; v++)
            vf_store(s + (size_t)r * AQT + (size_t)v * VF_N, acc[r][v]);
}

/* ot[r][v] += sum_j vrow[j*vs + r] * p[j*AQT + v*VF_N ...], r < mr, v < nv */
VF_INLINE void VF_FN(pv_block)(const float *vrow, size_t vs, const float *p, size_t nk, float *ot,
                               const int mr, const int nv)
{
    vf acc[ATTN_MR][ATTN_NV];
    VF_UNROLL for (int r = 0; r < mr; r++)
        VF_UNROLL for (int v = 0; v < nv; v++)
            acc[r][v] = vf_load(ot + (size_t)r * AQT + (size_t)v * VF_N);
    for (size_t j = 0; j < nk; j++) {
        vf pv[ATTN_NV];
        VF_UNROLL for (int v = 0; v < nv; v++)
            pv[v] = vf_load(p + j * AQT + (size_t)v * VF_N);
        VF_UNROLL for (int r = 0; r < mr; r++) {
            const vf b = vf_set1(vrow[j * vs + (size_t)r]);
            VF_UNROLL for (int v = 0; v < nv; v++)
                acc[r][v] = vf_fma(b, pv[v], acc[r][v]);
        }
    }
    VF_UNROLL for (int r = 0; r < mr; r++)
        VF_UNROLL for (int v = 0; v < nv; v++)
            vf_store(ot + (size_t)r * AQT + (size_t)v * VF_N, acc[r][v]);
}

/* Calls fn(args..., mr, nv) with compile-time mr in 1..5 (the remainder rows). */
#define ATTN_REMAINDER(fn, mr, nv, ...)            \
    switch (mr) {                                  \
    case 1: fn(__VA_ARGS__, 1, nv); break;         \
    case 2: fn(__VA_ARGS__, 2, nv); break;         \
    case 3: fn(__VA_ARGS__, 3, nv); break;         \
    case 4: fn(__VA_ARGS__, 4, nv); break;         \
    case 5: fn(__VA_ARGS__, 5, nv); break;         \
    default: break;                                \
    }

/* S^T for keys [0, nkt) (rows of k, stride ks) and query vectors [v0, v0+nv). */
VF_INLINE void VF_FN(scores)(const float *k, size_t ks, size_t nkt, const float *qt, size_t d,
                             float *st, size_t v0, const int nv)
{
    size_t j = 0;
    for (; j + ATTN_MR <= nkt; j += ATTN_MR)
        VF_FN(qk_block)(k + j * ks, ks, qt + v0 * VF_N, d, st + j * AQT + v0 * VF_N, ATTN_MR, nv);
    ATTN_REMAINDER(VF_FN(qk_block), (int)(nkt - j), nv, k + j * ks, ks, qt + v0 * VF_N, d,
                   st + j * AQT + v0 * VF_N)
}

/* O^T[c][v0..] += P^T V for all channels c < d. */
VF_INLINE void VF_FN(weighted_sum)(const float *v, size_t vs, size_t nkt, const float *st, size_t d,
                                   float *ot, size_t v0, const int nv)
{
    size_t c = 0;
    for (; c + ATTN_MR <= d; c += ATTN_MR)
        VF_FN(pv_block)(v + c, vs, st + v0 * VF_N, nkt, ot + c * AQT + v0 * VF_N, ATTN_MR, nv);
    ATTN_REMAINDER(VF_FN(pv_block), (int)(d - c), nv, v + c, vs, st + v0 * VF_N, nkt,
                   ot + c * AQT + v0 * VF_N)
}

/* rows [j0, j0+n) of an f16 [*, d] matrix (stride ks) -> f32 [n][d] */
static void VF_FN(attn_f16_tile)(const uint16_t *src, size_t stride, size_t n, size_t d, float *dst)
{
    for (size_t j = 0; j < n; j++) {
        const uint16_t *s = src + j * stride;
        float *o = dst + j * d;
        size_t c = 0;
        for (; c + VF_N <= d; c += VF_N)
            vf_store(o + c, vf_load_f16(s + c));
        for (; c < d; c++)
            o[c] = stdcpu_f16_to_f32(s[c]);
    }
}

static void VF_FN(f32_attn_flash_q64k64)(const stdcpu_attn_job *job)
{
    const size_t d = job->d, dp = (d + 15) / 16 * 16;
    float *qt = job->scratch;     /* [dp][AQT] scaled Q^T */
    float *ot = qt + dp * AQT;    /* [dp][AQT] O^T accumulator */
    float *st = ot + dp * AQT;    /* [AKT][AQT] scores S^T, then probabilities */
    float *mrow = st + AKT * AQT; /* [AQT] running max per query */
    float *lrow = mrow + AQT;     /* [AQT] running sum per query */
    float *kbuf = lrow + AQT;     /* [AKT][d] f32 copy of an f16 K tile */
    float *vbuf = kbuf + AKT * dp; /* [AKT][d] f32 copy of an f16 V tile */
    const vf ninf = vf_set1(-INFINITY);

    for (size_t i0 = 0; i0 < job->nq; i0 += AQT) {
        const size_t mq = job->nq - i0 < AQT ? job->nq - i0 : AQT;
        const size_t nqv = (mq + VF_N - 1) / VF_N; /* query vectors in use */
        const size_t gq0 = job->q_pos + i0;        /* position of the tile's first query */
        for (size_t c = 0; c < d; c++) {
            for (size_t i = 0; i < nqv * VF_N; i++)
                qt[c * AQT + i] = i < mq ? job->q[(i0 + i) * job->q_stride + c] * job->scale : 0.0f;
            memset(ot + c * AQT, 0, nqv * VF_N * sizeof(float));
        }
        for (size_t i = 0; i < AQT; i++) {
            mrow[i] = -INFINITY;
            lrow[i] = 0.0f;
        }
        size_t nk = job->nk;
        if (job->causal && gq0 + mq < nk)
            nk = gq0 + mq;

        for (size_t j0 = 0; j0 < nk; j0 += AKT) {
            const size_t nkt = nk - j0 < AKT ? nk - j0 : AKT;
            const float *kp = job->k, *vp = job->v;
            size_t ks = job->k_stride, vs = job->v_stride;
            if (kp) {
                kp += j0 * ks;
            } else {
                VF_FN(attn_f16_tile)(job->k16 + j0 * ks, ks, nkt, d, kbuf);
                kp = kbuf;
                ks = d;
            }
            if (vp) {
                vp += j0 * vs;
            } else {
                VF_FN(attn_f16_tile)(job->v16 + j0 * vs, vs, nkt, d, vbuf);
                vp = vbuf;
                vs = d;
            }

            size_t v0 = 0;
            for (; v0 + ATTN_NV <= nqv; v0 += ATTN_NV)
                VF_FN(scores)(kp, ks, nkt, qt, d, st, v0, ATTN_NV);
            for (; v0 < nqv; v0++)
                VF_FN(scores)(kp, ks, nkt, qt, d, st, v0, 1);

            if (job->key_bias)
                for (size_t j = 0; j < nkt; j++) {
                    const float b = job->key_bias[j0 + j];
                    if (b == 0.0f)
                        continue;
                    const vf vb = vf_set1(b);
                    for (size_t v = 0; v < nqv; v++)
                        vf_store(st + j * AQT + v * VF_N, vf_add(vf_load(st + j * AQT + v * VF_N), vb));
                }
            if (job->causal && j0 + nkt > gq0 + 1)
                for (size_t j = 0; j < nkt; j++) {
                    /* key j0+j is hidden from queries i < j0 + j - gq0 */
                    if (j0 + j <= gq0)
                        continue;
                    size_t hide = j0 + j - gq0;
                    if (hide > nqv * VF_N)
                        hide = nqv * VF_N;
                    for (size_t i = 0; i < hide; i++)
                        st[j * AQT + i] = -INFINITY;
                }

            /* online softmax, one vector of queries at a time */
            for (size_t v = 0; v < nqv; v++) {
                float *sv = st + v * VF_N;
                vf mt = ninf;
                for (size_t j = 0; j < nkt; j++)
                    mt = vf_max(mt, vf_load(sv + j * AQT));
                const vf m_old = vf_load(mrow + v * VF_N);
                const vf m_new = vf_max(m_old, mt);
                /* a query that has seen only masked keys keeps weight 0 (no inf - inf) */
                const vf m_use = vf_select_eq(m_new, ninf, vf_zero(), m_new);
                const vf alpha = vf_exp(vf_sub(m_old, m_use));
                vf sum = vf_zero();
                for (size_t j = 0; j < nkt; j++) {
                    const vf p = vf_exp(vf_sub(vf_load(sv + j * AQT), m_use));
                    vf_store(sv + j * AQT, p);
                    sum = vf_add(sum, p);
                }
                vf_store(lrow + v * VF_N, vf_fma(vf_load(lrow + v * VF_N), alpha, sum));
                vf_store(mrow + v * VF_N, m_new);
                for (size_t c = 0; c < d; c++)
                    vf_store(ot + c * AQT + v * VF_N, vf_mul(vf_load(ot + c * AQT + v * VF_N), alpha));
            }

            for (v0 = 0; v0 + ATTN_NV <= nqv; v0 += ATTN_NV)
                VF_FN(weighted_sum)(vp, vs, nkt, st, d, ot, v0, ATTN_NV);
            for (; v0 < nqv; v0++)
                VF_FN(weighted_sum)(vp, vs, nkt, st, d, ot, v0, 1);
        }

        for (size_t i = 0; i < mq; i++) {
            const float inv = lrow[i] > 0.0f ? 1.0f / lrow[i] : 0.0f;
            float *o = job->o + (i0 + i) * job->o_stride;
            for (size_t c = 0; c < d; c++)
                o[c] = ot[c * AQT + i] * inv;
        }
    }
}

/* row_scale (contract in simd/attn.h). */
static void VF_FN(f32_row_scale)(float *y, size_t y_stride, const float *x, size_t x_stride, size_t rows, size_t n,
                                 const float *sc)
{
    for (size_t r = 0; r < rows; r++) {
        const vf s = vf_set1(sc[r]);
        const float *xr = x + r * x_stride;
        float *yr = y + r * y_stride;
        size_t c = 0;
        for (; c + VF_N <= n; c += VF_N)
            vf_store(yr + c, vf_mul(vf_load(xr + c), s));
        if (c < n)
            vf_storen(yr + c, vf_mul(vf_loadn(xr + c, n - c), s), n - c);
    }
}

/* kv_stats (contract in simd/attn.h). vf_max_num(a, b) is max(a, b) that
 * returns b when a is NaN. */
static void VF_FN(f32_kv_stats)(const float *k, const float *v, size_t n, float *ksum, float *vmax)
{
    size_t c = 0;
    for (; c + VF_N <= n; c += VF_N) {
        vf_store(ksum + c, vf_add(vf_load(ksum + c), vf_load(k + c)));
        vf_store(vmax + c, vf_max_num(vf_abs(vf_load(v + c)), vf_load(vmax + c)));
    }
    if (c < n) {
        const size_t r = n - c;
        vf_storen(ksum + c, vf_add(vf_loadn(ksum + c, r), vf_loadn(k + c, r)), r);
        vf_storen(vmax + c, vf_max_num(vf_abs(vf_loadn(v + c, r)), vf_loadn(vmax + c, r)), r);
    }
}

/* The int8 attention's online-softmax step (contract in simd/attn.h),
 * computing the table's weights without a table: for an index k,
 * 127 2^z, z = 8 (k - 127) / 127, as 2^round(z) times a degree-3 polynomial 2^f
 * (|f| <= 1/2, constant term exactly 1, relative error <= 1.0e-4), then
 * rounded. For all 128 indices this gives the table's integers (checked
 * once offline and on every ISA by tests/test_attn_q8.c), so P is the same
 * bit for bit as the scalar reference's. ISAs with a fast byte-table
 * lookup use that instead (attn_avx512vnni.c with VBMI, attn_neon.c). */
/* The maximum of s[0 .. n), n >= 1: shared by every softmax_block_q8 of
 * the ISA files that include this template. */
static inline float VF_FN(smq8_block_max)(const float *s, size_t n)
{
    /* four chains: one max per vector waited out the max's latency (4
     * cycles) each time, a third of the whole step at 256 keys */
    size_t j = 0;
    vf m0 = vf_set1(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    for (; j + 4 * VF_N <= n; j += 4 * VF_N) {
        m0 = vf_max(m0, vf_load(s + j));
        m1 = vf_max(m1, vf_load(s + j + VF_N));
        m2 = vf_max(m2, vf_load(s + j + 2 * VF_N));
        m3 = vf_max(m3, vf_load(s + j + 3 * VF_N));
    }
    for (; j + VF_N <= n; j += VF_N)
        m0 = vf_max(m0, vf_load(s + j));
    float mb = vf_hmax(vf_max(vf_max(m0, m1), vf_max(m2, m3)));
    for (; j < n; j++)
        if (s[j] > mb)
            mb = s[j];
    return mb;
}

static void VF_FN(f32_softmax_block_q8_poly)(const float *s, size_t n, size_t n_padded, unsigned char xor_byte,
                                             int8_t *pq, float *m, float *l, float *alpha, float *pscale)
{
    size_t j;
    const float mb = VF_FN(smq8_block_max)(s, n);
    const float off = fmaf(-mb, STDCPU_SMQ8_C, 127.0f);
    const vf vc = vf_set1(STDCPU_SMQ8_C), voff = vf_set1(off), step = vf_set1(8.0f / 127.0f),
             zoff = vf_set1(-8.0f), w127 = vf_set1(127.0f);
    const vf c1 = vf_set1(0.693282967157809f), c2 = vf_set1(0.24221099135337076f),
             c3 = vf_set1(0.055008591352879374f), one = vf_set1(1.0f);
    vi isum = vi_zero();
    for (j = 0; j + VF_N <= n; j += VF_N) {
        /* the table index (<= 127; far keys: very negative, weight 0) */
        const vf k = vf_round(vf_fma(vf_load(s + j), vc, voff));
        const vf z = vf_fma(k, step, zoff); /* 8 (k - 127) / 127 octaves */
        const vf e = vf_round(z), f = vf_sub(z, e);
        vf p = vf_fma(c3, f, c2);
        p = vf_fma(p, f, c1);
        p = vf_fma(p, f, one);
        const vi w = vf_cvt_i32(vf_ldexp(vf_mul(p, w127), e));
        vi_store_i8(pq + j, w, xor_byte);
        isum = vi_add(isum, w);
    }
    const uint32_t sum = (uint32_t)vi_hsum(isum);
    smq8_update(mb, sum + smq8_tail(s, j, n, n_padded, off, xor_byte, pq), m, l, alpha, pscale);
}
