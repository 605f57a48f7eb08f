/* GEMM / convolution benchmark cases (the kernels issue fills this in). */
#include "bench.h"

void bench_gemm_suite(const bench_env *env) { (void)env; }
