/* eltwise kernels for avx2: the shared template on the avx2 vector vocabulary. */
#include "simd/eltwise.h"

#include <math.h>
#include <string.h>

#include "simd/vec_avx2.h"
#include "simd/eltwise_tmpl.h"

void stdcpu_eltwise_init_avx2(stdcpu_eltwise_kernels *k) { VF_FN(eltwise_fill)(k); }
