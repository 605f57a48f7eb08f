/* Attention: the portable scalar reference. One query row at a time with an
 * online softmax over the keys (running max m, running sum l, accumulator
 * acc[d] in the scratch), so memory is O(d) per row. */
#include "simd/attn.h"

#include <math.h>

#include "simd/attn_smq8.h"
#include "simd/eltwise.h"

size_t stdcpu_attn_scratch_floats(size_t d)
{
    const size_t dp = (d + 15) / 16 * 16;
    const size_t qt = STDCPU_ATTN_QTILE, kt = STDCPU_ATTN_KTILE;
    /* q tile + output tile + scores + (m, l) + packed K^T + V tile */
    return 2 * qt * dp + qt * kt + 2 * qt + 2 * kt * dp;
}

static float key_elem(const stdcpu_attn_job *job, const float *kf, const uint16_t *kh, size_t j,
                      size_t stride, size_t c)
{
    (void)job;
    return kf ? kf[j * stride + c] : stdcpu_f16_to_f32(kh[j * stride + c]);
}

static void f32_attn_online_scalar(const stdcpu_attn_job *job)
{
    const size_t d = job->d;
    float *acc = job->scratch;
    for (size_t i = 0; i < job->nq; i++) {
        const float *q = job->q + i * job->q_stride;
        size_t nk = job->nk;
        if (job->causal && job->q_pos + i + 1 < nk)
            nk = job->q_pos + i + 1;
        float m = -INFINITY, l = 0.0f;
        for (size_t c = 0; c < d; c++)
            acc[c] = 0.0f;
        for (size_t j = 0; j < nk; j++) {
            float dot = 0.0f;
            for (size_t c = 0; c < d; c++)
                dot += q[c] * key_elem(job, job->k, job->k16, j, job->k_stride, c);
            float s = dot * job->scale;
            if (job->key_bias)
                s += job->key_bias[j];
            if (s == -INFINITY)
                continue; /* masked: exactly zero weight */
            if (s > m) {
                const float alpha = expf(m - s); /* 0 when m is still -inf */
                l *= alpha;
                for (size_t c = 0; c < d; c++)
                    acc[c] *= alpha;
                m = s;
            }
            const float p = expf(s - m);
            l += p;
            for (size_t c = 0; c < d; c++)
                acc[c] += p * key_elem(job, job->v, job->v16, j, job->v_stride, c);
        }
        float *o = job->o + i * job->o_stride;
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (size_t c = 0; c < d; c++)
            o[c] = acc[c] * inv;
    }
}

/* nearbyint(127 * 2^(8 (i - 127) / 127)): 127 steps over 8 octaves, so
 * entry 0 (0.496) is the first weight that rounds to 0 and everything below
 * the table weighs nothing, as it would with an exact exp. No entry is
 * within 0.0039 of a rounding tie. */
const uint8_t stdcpu_smq8_weight[128] = {
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4,
    4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8,
    8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 16,
    16, 17, 18, 19, 19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31,
    33, 34, 36, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 58, 60, 63,
    66, 69, 72, 75, 79, 82, 86, 90, 94, 98, 102, 107, 111, 116, 122, 127,
};

static void f32_row_scale_scalar(float *y, size_t y_stride, const float *x, size_t x_stride, size_t rows, size_t n,
                                 const float *sc)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < n; c++)
            y[r * y_stride + c] = x[r * x_stride + c] * sc[r];
}

static void f32_kv_stats_scalar(const float *k, const float *v, size_t n, float *ksum, float *vmax)
{
    for (size_t c = 0; c < n; c++) {
        ksum[c] += k[c];
        const float x = fabsf(v[c]);
        vmax[c] = x > vmax[c] ? x : vmax[c];
    }
}

static void f32_softmax_block_q8_scalar(const float *s, size_t n, size_t n_padded, unsigned char xor_byte,
                                        int8_t *p, float *m, float *l, float *alpha, float *pscale)
{
    float mb = s[0];
    for (size_t j = 1; j < n; j++)
        if (s[j] > mb)
            mb = s[j];
    const float off = fmaf(-mb, STDCPU_SMQ8_C, 127.0f);
    smq8_update(mb, smq8_tail(s, 0, n, n_padded, off, xor_byte, p), m, l, alpha, pscale);
}

void stdcpu_attn_init_scalar(stdcpu_attn_kernels *k)
{
    k->attend = f32_attn_online_scalar;
    k->softmax_block_q8 = f32_softmax_block_q8_scalar;
    k->row_scale = f32_row_scale_scalar;
    k->kv_stats = f32_kv_stats_scalar;
}

int stdcpu_attn_complete(const stdcpu_attn_kernels *k) { return k->attend && k->softmax_block_q8 && k->row_scale && k->kv_stats; }
