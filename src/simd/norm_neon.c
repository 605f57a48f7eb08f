/* norm kernels for neon: the shared template on the neon vector vocabulary. */
#include "simd/norm.h"

#include <math.h>
#include <string.h>

#include "simd/vec_neon.h"
#include "simd/norm_tmpl.h"

void stdcpu_norm_init_neon(stdcpu_norm_kernels *k) { VF_FN(norm_fill)(k); }
