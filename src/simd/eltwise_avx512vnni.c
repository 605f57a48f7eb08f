/* eltwise kernels for avx512vnni: the shared template on the avx512vnni vector vocabulary. */
#include "simd/eltwise.h"

#include <math.h>
#include <string.h>

#include "simd/vec_avx512.h"
#include "simd/eltwise_tmpl.h"

void stdcpu_eltwise_init_avx512vnni(stdcpu_eltwise_kernels *k) { VF_FN(eltwise_fill)(k); }
