#include "simd/norm.h"

void stdcpu_norm_init_neon(stdcpu_norm_kernels *k) { (void)k; }
