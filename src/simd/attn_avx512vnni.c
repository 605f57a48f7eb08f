#include "simd/attn.h"

void stdcpu_attn_init_avx512vnni(stdcpu_attn_kernels *k) { (void)k; }
