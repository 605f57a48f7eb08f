#include "simd/eltwise.h"

void stdcpu_eltwise_init_avx2(stdcpu_eltwise_kernels *k) { (void)k; }
