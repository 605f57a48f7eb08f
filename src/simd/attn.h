/* Attention kernels: multi-head scaled dot-product attention, flash style.
 *
 * A kernel call handles ONE (batch, head) pair and a block of query rows:
 *   o[i, :] = sum_j softmax_j(scale * q[i,:].k[j,:] + key_bias[j]) v[j, :]
 * with keys visited in tiles and an online (running max / running sum)
 * softmax in f32, so memory is O(tile * d), never O(nq * nk). The threaded
 * entry point stdcpu_attention() (core/ops_nn.h) splits (batch, head, query
 * tiles) over threads and hands each thread its own scratch.
 *
 * Masked keys (key_bias = -inf, or causal) get exactly zero weight; a query
 * that sees no key at all gets a zero output row (never NaN). */
#ifndef STDCPU_SIMD_ATTN_H
#define STDCPU_SIMD_ATTN_H

#include <stddef.h>
#include <stdint.h>

/* Query rows / keys per tile of the SIMD kernels (the scratch is sized by them). */
#define STDCPU_ATTN_QTILE 64
#define STDCPU_ATTN_KTILE 64

typedef struct stdcpu_attn_job {
    const float *q;        /* [nq, d] rows q + i*q_stride */
    size_t q_stride;       /* in elements */
    const float *k, *v;    /* [nk, d] rows k + j*k_stride (f32 storage), or NULL ... */
    const uint16_t *k16, *v16; /* ... [nk, d] IEEE half storage when k == NULL */
    size_t k_stride, v_stride; /* in elements */
    float *o;              /* [nq, d] rows o + i*o_stride */
    size_t o_stride;
    size_t nq, nk, d;      /* d >= 1 */
    float scale;           /* usually 1/sqrt(d) */
    const float *key_bias; /* [nk] additive (0 or -inf typically), or NULL */
    int causal;            /* query i sees keys j <= q_pos + i only */
    size_t q_pos;          /* position of query row 0 among the keys (causal) */
    float *scratch;        /* stdcpu_attn_scratch_floats(d) floats, 64-byte aligned */
} stdcpu_attn_job;

typedef void (*stdcpu_attn_softmax_q8_fn)(const float *s, size_t n, size_t n_padded, unsigned char xor_byte,
                                          int8_t *p, float *m, float *l, float *alpha, float *pscale);

typedef struct stdcpu_attn_kernels {
    /* Runs one job (any nq; any nk >= 0). */
    void (*attend)(const stdcpu_attn_job *job);
    /* One key block of the int8 attention's online softmax for one query row
     * (core/ops_attn_q8.c). s [n] (n >= 1) holds the row's scaled scores for
     * the block. With mb = max_j s[j] and m' = max(*m, mb):
     *   y[j]    = fmaf(s[j], STDCPU_SMQ8_C, fmaf(-mb, STDCPU_SMQ8_C, 127))
     *             (127 + (127 / 8) log2 exp(s[j] - mb) <= 127: steps of
     *             8/127 of an octave, 127 of them over the 8 octaves where
     *             a 7-bit weight is not 0)
     *   w[j]    = stdcpu_smq8_weight[clamp(nearbyint(y[j]), 0, 127)]
     *             (round(127 exp(s[j] - mb)) with the exponent rounded to
     *             a step: 2.2% relative at most, averaged away over the keys)
     *   p[j]    = w[j] ^ xor_byte  (j < n; p[n .. n_padded) = 0 ^ xor_byte)
     *   *alpha  = exp(*m - m')                               (0 while *m is -inf)
     *   *pscale = exp(mb - m') / 127                         (probability = pscale w)
     *   *l      = *l alpha + pscale sum_j w[j],   *m = m'
     * Every ISA computes exactly these integers (the index with one fused
     * multiply-add, the weight from the table or from a polynomial that
     * reproduces it: tests/test_attn_q8.c sweeps all 128), so the int8
     * attention's P is bit-identical across ISAs. The sum is over the
     * ROUNDED weights, so the weights the int8 P.V applies sum to l exactly
     * and the output stays a convex combination of V rows. Scaling by the
     * block's own max (not the running one) keeps 7 bits for every block,
     * however far below the row's maximum it lies. */
    stdcpu_attn_softmax_q8_fn softmax_block_q8;
    /* y[r][c] = x[r][c] * s[r] for r < rows, c < n (rows y + r*y_stride,
     * x + r*x_stride; y may equal x): the int8 attention's accumulator
     * rescaled to a row's new maximum, and its final division by the row
     * sum. One rounding per element, so every ISA gives the same bits. */
    void (*row_scale)(float *y, size_t y_stride, const float *x, size_t x_stride, size_t rows, size_t n,
                      const float *s);
    /* One key row of the int8 attention's K/V statistics: ksum[c] += k[c],
     * vmax[c] = max(vmax[c], |v[c]|) for c < n, a NaN in v ignored (vmax
     * keeps its value). Exact, so every ISA gives the same bits. */
    void (*kv_stats)(const float *k, const float *v, size_t n, float *ksum, float *vmax);
} stdcpu_attn_kernels;

/* softmax_block_q8's exponent scale, (127 / 8) log2(e), and its weight
 * table: stdcpu_smq8_weight[i] = nearbyint(127 * 2^(8 (i - 127) / 127)). */
#define STDCPU_SMQ8_C 22.9027837741f
extern const uint8_t stdcpu_smq8_weight[128];

/* Scratch a job needs for head dimension d (same bound for every ISA). */
size_t stdcpu_attn_scratch_floats(size_t d);

void stdcpu_attn_init_scalar(stdcpu_attn_kernels *k);
void stdcpu_attn_init_avx2(stdcpu_attn_kernels *k);
void stdcpu_attn_init_avx512vnni(stdcpu_attn_kernels *k);
void stdcpu_attn_init_neon(stdcpu_attn_kernels *k);
/* The AVX-512 table picks one of two softmax_block_q8 versions by CPU; the
 * tests run both: the template's polynomial, and the VBMI table lookup
 * (NULL when the CPU lacks VBMI). Only in AVX-512 builds. */
void stdcpu_attn_softmax_q8_avx512_variants(stdcpu_attn_softmax_q8_fn *poly, stdcpu_attn_softmax_q8_fn *vbmi);
/* The same for NEON builds: the polynomial and the tbl lookup (the table's). */
void stdcpu_attn_softmax_q8_neon_variants(stdcpu_attn_softmax_q8_fn *poly, stdcpu_attn_softmax_q8_fn *tbl);
void stdcpu_attn_init_neondot(stdcpu_attn_kernels *k);
int stdcpu_attn_complete(const stdcpu_attn_kernels *k);

#endif
