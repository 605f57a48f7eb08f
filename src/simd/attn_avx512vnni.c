/* Attention kernels for avx512vnni: the shared flash template (attn_tmpl.h)
 * with a register tile of 6 keys (or channels) x 4 query vectors, and the
 * int8 attention's softmax step as a byte-table lookup where the CPU has
 * AVX512-VBMI (Ice Lake, Zen 4 and later; not Cascade Lake, which gets the
 * template's polynomial). */
#include "simd/attn.h"

#include "simd/attn_smq8.h"
#include "simd/cpu.h"
#include "simd/vec_avx512.h"

#define ATTN_MR 6
#define ATTN_NV 4
#include "simd/attn_tmpl.h"

/* softmax_block_q8 (contract in simd/attn.h) 64 scores at a time: four
 * FMAs give the table indices, which saturating packs clamp to [0, 127]
 * (the packs interleave 128-bit lanes; one vpermd restores the order), and
 * one vpermi2b looks up 64 weights in the 128-byte table held in two
 * registers, with the XOR already applied to the table. vpsadbw sums the
 * bytes. About 4 instructions per 16 scores, against 12 for the polynomial:
 * at d = 40 this step cost as much as both products of the int8 attention. */
__attribute__((target("avx512vbmi"))) static void
f32_softmax_block_q8_vbmi(const float *s, size_t n, size_t n_padded, unsigned char xor_byte, int8_t *pq, float *m,
                          float *l, float *alpha, float *pscale)
{
    size_t j;
    const float mb = VF_FN(smq8_block_max)(s, n);
    const float off = fmaf(-mb, STDCPU_SMQ8_C, 127.0f);
    const __m512 vc = _mm512_set1_ps(STDCPU_SMQ8_C), voff = _mm512_set1_ps(off);
    const __m512i x = _mm512_set1_epi8((char)xor_byte);
    const __m512i tlo = _mm512_xor_si512(_mm512_loadu_si512((const void *)stdcpu_smq8_weight), x);
    const __m512i thi = _mm512_xor_si512(_mm512_loadu_si512((const void *)(stdcpu_smq8_weight + 64)), x);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i bytesum = _mm512_setzero_si512();
    for (j = 0; j + 64 <= n; j += 64) {
        const __m512i i0 = _mm512_cvtps_epi32(_mm512_fmadd_ps(_mm512_loadu_ps(s + j), vc, voff));
        const __m512i i1 = _mm512_cvtps_epi32(_mm512_fmadd_ps(_mm512_loadu_ps(s + j + 16), vc, voff));
        const __m512i i2 = _mm512_cvtps_epi32(_mm512_fmadd_ps(_mm512_loadu_ps(s + j + 32), vc, voff));
        const __m512i i3 = _mm512_cvtps_epi32(_mm512_fmadd_ps(_mm512_loadu_ps(s + j + 48), vc, voff));
        /* int32 -> int16 -> uint8, saturating: below 0 -> 0 (far keys: huge negatives too) */
        const __m512i idx = _mm512_permutexvar_epi32(
            order, _mm512_packus_epi16(_mm512_packs_epi32(i0, i1), _mm512_packs_epi32(i2, i3)));
        const __m512i w = _mm512_permutex2var_epi8(tlo, idx, thi);
        _mm512_storeu_si512((void *)(pq + j), w);
        bytesum = _mm512_add_epi64(bytesum, _mm512_sad_epu8(w, _mm512_setzero_si512()));
    }
    /* the bytes are w ^ x: w + 128 when x = 0x80 (w <= 127), w when x = 0 */
    const uint32_t sum = (uint32_t)((uint64_t)_mm512_reduce_add_epi64(bytesum) - (xor_byte ? 128u * (uint64_t)j : 0u));
    smq8_update(mb, sum + smq8_tail(s, j, n, n_padded, off, xor_byte, pq), m, l, alpha, pscale);
}

void stdcpu_attn_softmax_q8_avx512_variants(stdcpu_attn_softmax_q8_fn *poly, stdcpu_attn_softmax_q8_fn *vbmi)
{
    *poly = VF_FN(f32_softmax_block_q8_poly);
    *vbmi = stdcpu_cpu_has_avx512vbmi() ? f32_softmax_block_q8_vbmi : NULL;
}

void stdcpu_attn_init_avx512vnni(stdcpu_attn_kernels *k)
{
    k->attend = VF_FN(f32_attn_flash_q64k64);
    stdcpu_attn_softmax_q8_fn poly, vbmi;
    stdcpu_attn_softmax_q8_avx512_variants(&poly, &vbmi);
    k->softmax_block_q8 = vbmi ? vbmi : poly;
    k->row_scale = VF_FN(f32_row_scale);
    k->kv_stats = VF_FN(f32_kv_stats);
}
