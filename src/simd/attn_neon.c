/* Attention kernels for neon: the shared flash template (attn_tmpl.h) with
 * a register tile of 6 keys (or channels) x 4 query vectors, and the int8
 * attention's softmax step as a byte-table lookup (tbl / tbx over the 128-byte
 * table in 8 registers). The neondot table reuses both. */
#include "simd/attn.h"

#include "simd/attn_smq8.h"
#include "simd/vec_neon.h"

#define ATTN_MR 6
#define ATTN_NV 4
#include "simd/attn_tmpl.h"

/* softmax_block_q8 (contract in simd/attn.h) 16 scores at a time: four
 * FMAs give the table indices, saturating narrows clamp them to [0, 127],
 * tbl looks up indices 0..63 and tbx 64..127 (an out-of-range index keeps
 * the previous byte), the XOR already applied to the table. About 16
 * instructions per 16 scores, against 48 for the polynomial on 4 lanes. */
static void f32_softmax_block_q8_tbl(const float *s, size_t n, size_t n_padded, unsigned char xor_byte, int8_t *pq,
                                     float *m, float *l, float *alpha, float *pscale)
{
    size_t j;
    const float mb = VF_FN(smq8_block_max)(s, n);
    const float off = fmaf(-mb, STDCPU_SMQ8_C, 127.0f);
    const float32x4_t vc = vdupq_n_f32(STDCPU_SMQ8_C), voff = vdupq_n_f32(off);
    const uint8x16_t x = vdupq_n_u8(xor_byte), sixty_four = vdupq_n_u8(64);
    uint8x16x4_t tlo, thi;
    for (int r = 0; r < 4; r++) {
        tlo.val[r] = veorq_u8(vld1q_u8(stdcpu_smq8_weight + 16 * r), x);
        thi.val[r] = veorq_u8(vld1q_u8(stdcpu_smq8_weight + 64 + 16 * r), x);
    }
    uint32x4_t bytesum = vdupq_n_u32(0);
    for (j = 0; j + 16 <= n; j += 16) {
        int32x4_t i[4];
        for (int r = 0; r < 4; r++)
            i[r] = vcvtnq_s32_f32(vfmaq_f32(voff, vld1q_f32(s + j + 4 * r), vc));
        const int16x8_t h0 = vqmovn_high_s32(vqmovn_s32(i[0]), i[1]);
        const int16x8_t h1 = vqmovn_high_s32(vqmovn_s32(i[2]), i[3]);
        const uint8x16_t idx = vqmovun_high_s16(vqmovun_s16(h0), h1); /* below 0 -> 0 */
        const uint8x16_t w = vqtbx4q_u8(vqtbl4q_u8(tlo, idx), thi, vsubq_u8(idx, sixty_four));
        vst1q_u8((uint8_t *)pq + j, w);
        bytesum = vpadalq_u16(bytesum, vpaddlq_u8(w));
    }
    /* the bytes are w ^ x: w + 128 when x = 0x80 (w <= 127), w when x = 0 */
    const uint32_t sum = vaddvq_u32(bytesum) - (xor_byte ? 128u * (uint32_t)j : 0u);
    smq8_update(mb, sum + smq8_tail(s, j, n, n_padded, off, xor_byte, pq), m, l, alpha, pscale);
}

void stdcpu_attn_softmax_q8_neon_variants(stdcpu_attn_softmax_q8_fn *poly, stdcpu_attn_softmax_q8_fn *tbl)
{
    *poly = VF_FN(f32_softmax_block_q8_poly);
    *tbl = f32_softmax_block_q8_tbl;
}

void stdcpu_attn_init_neon(stdcpu_attn_kernels *k)
{
    k->attend = VF_FN(f32_attn_flash_q64k64);
    k->softmax_block_q8 = f32_softmax_block_q8_tbl;
    k->row_scale = VF_FN(f32_row_scale);
    k->kv_stats = VF_FN(f32_kv_stats);
}
