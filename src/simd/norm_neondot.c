/* norm kernels for NEON + dotprod: these are f32 kernels, which dotprod does
 * not speed up, so the table keeps the NEON versions (dispatch.c builds the
 * neondot table on top of the neon one). */
#include "simd/norm.h"

void stdcpu_norm_init_neondot(stdcpu_norm_kernels *k) { (void)k; }
