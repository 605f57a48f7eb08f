/* eltwise kernels for neon: the shared template on the neon vector vocabulary. */
#include "simd/eltwise.h"

#include <math.h>
#include <string.h>

#include "simd/vec_neon.h"
#include "simd/eltwise_tmpl.h"

void stdcpu_eltwise_init_neon(stdcpu_eltwise_kernels *k) { VF_FN(eltwise_fill)(k); }
