/* attn kernels for NEON + dotprod: these are f32 kernels, which dotprod does
 * not speed up, so the table keeps the NEON versions (dispatch.c builds the
 * neondot table on top of the neon one). */
#include "simd/attn.h"

void stdcpu_attn_init_neondot(stdcpu_attn_kernels *k) { (void)k; }
