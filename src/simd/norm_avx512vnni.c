/* norm kernels for avx512vnni: the shared template on the avx512vnni vector vocabulary. */
#include "simd/norm.h"

#include <math.h>
#include <string.h>

#include "simd/vec_avx512.h"
#include "simd/norm_tmpl.h"

void stdcpu_norm_init_avx512vnni(stdcpu_norm_kernels *k) { VF_FN(norm_fill)(k); }
