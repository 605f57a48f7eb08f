/* Attention: the portable scalar reference. One query row at a time with an
 * online softmax over the keys (running max m, running sum l, accumulator
 * acc[d] in the scratch), so memory is O(d) per row. */
#include "simd/attn.h"

#include <math.h>

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

static void f32_softmax_block_q8_scalar(const float *s, size_t n, size_t n_padded, unsigned char xor_byte,
                                        int8_t *p, float *m, float *l, float *alpha, float *pscale)
{
    float mb = s[0];
    for (size_t j = 1; j < n; j++)
        if (s[j] > mb)
            mb = s[j];
    float sum = 0.0f; /* integers <= 127 n: exact in any order for n < 2^17 */
    for (size_t j = 0; j < n; j++) {
        const float w = nearbyintf(127.0f * expf(s[j] - mb));
        p[j] = (int8_t)((unsigned char)w ^ xor_byte);
        sum += w;
    }
    for (size_t j = n; j < n_padded; j++)
        p[j] = (int8_t)xor_byte;
    const float m_new = *m > mb ? *m : mb;
    *alpha = *m == -INFINITY ? 0.0f : expf(*m - m_new);
    *pscale = expf(mb - m_new) * (1.0f / 127.0f);
    *l = *l * *alpha + *pscale * sum;
    *m = m_new;
}

void stdcpu_attn_init_scalar(stdcpu_attn_kernels *k)
{
    k->attend = f32_attn_online_scalar;
    k->softmax_block_q8 = f32_softmax_block_q8_scalar;
}

int stdcpu_attn_complete(const stdcpu_attn_kernels *k) { return k->attend && k->softmax_block_q8; }
