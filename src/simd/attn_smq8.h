/* Shared by every softmax_block_q8 (contract in simd/attn.h): the scalar
 * tail of a block and the running-softmax update. Included by attn.c and the
 * ISA files only. */
#ifndef STDCPU_SIMD_ATTN_SMQ8_H
#define STDCPU_SIMD_ATTN_SMQ8_H

#include <math.h>
#include <stdint.h>

#include "simd/attn.h"

/* Weights of s[j0 .. n) into p (XOR xor_byte), zero weights up to n_padded;
 * returns their sum. off = fmaf(-mb, STDCPU_SMQ8_C, 127). */
static inline uint32_t smq8_tail(const float *s, size_t j0, size_t n, size_t n_padded, float off,
                                 unsigned char xor_byte, int8_t *p)
{
    uint32_t sum = 0;
    size_t j = j0;
    for (; j < n; j++) {
        const float y = fmaf(s[j], STDCPU_SMQ8_C, off);
        const unsigned w = y > 0.0f ? stdcpu_smq8_weight[(int)nearbyintf(fminf(y, 127.0f))] : 0u;
        p[j] = (int8_t)(unsigned char)(w ^ xor_byte);
        sum += w;
    }
    for (; j < n_padded; j++)
        p[j] = (int8_t)xor_byte;
    return sum;
}

/* m' = max(m, mb); alpha = exp(m - m'), pscale = exp(mb - m') / 127 (one of
 * the two exponents is 0, so one expf); l = l alpha + pscale sum. */
static inline void smq8_update(float mb, uint32_t sum, float *m, float *l, float *alpha, float *pscale)
{
    if (mb > *m) {
        *alpha = *m == -INFINITY ? 0.0f : expf(*m - mb);
        *pscale = 1.0f / 127.0f;
        *m = mb;
    } else {
        *alpha = 1.0f;
        *pscale = expf(mb - *m) * (1.0f / 127.0f);
    }
    *l = *l * *alpha + *pscale * (float)sum;
}

#endif
