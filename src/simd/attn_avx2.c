/* Attention kernel for avx2: the shared flash template (attn_tmpl.h) with a
 * register tile of 6 keys (or channels) x 2 query vectors. */
#include "simd/attn.h"

#include "simd/vec_avx2.h"

#define ATTN_MR 6
#define ATTN_NV 2
#include "simd/attn_tmpl.h"

void stdcpu_attn_init_avx2(stdcpu_attn_kernels *k)
{
    k->attend = VF_FN(f32_attn_flash_q64k64);
    k->softmax_block_q8 = VF_FN(f32_softmax_block_q8_poly);
    k->row_scale = VF_FN(f32_row_scale);
    k->kv_stats = VF_FN(f32_kv_stats);
}
