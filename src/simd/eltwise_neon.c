#include "simd/eltwise.h"

void stdcpu_eltwise_init_neon(stdcpu_eltwise_kernels *k) { (void)k; }
