/* norm kernels for avx2: the shared template on the avx2 vector vocabulary. */
#include "simd/norm.h"

#include <math.h>
#include <string.h>

#include "simd/vec_avx2.h"
#include "simd/norm_tmpl.h"

void stdcpu_norm_init_avx2(stdcpu_norm_kernels *k) { VF_FN(norm_fill)(k); }
