/* stdcpu-bench-kernels: every kernel on the real SD1.5/SDXL shapes, against
 * the machine's measured peaks and OpenBLAS, with 1 thread and all threads.
 *   stdcpu-bench-kernels [--quick] [--threads N] [--only gemm|ff|ops] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

int main(int argc, char **argv)
{
    int quick = 0, threads = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--threads N] [--only gemm|ff|ops]\n", argv[0]);
            return 2;
        }
    }
    bench_print_machine();
    const int all = threads > 0 ? threads : stdcpu_default_threads();
    /* All threads first, then one thread (skipped when they are the same). */
    const int counts[2] = {all, 1};
    for (int c = 0; c < (all == 1 ? 1 : 2); c++) {
        bench_env env = {.threads = counts[c], .quick = quick};
        stdcpu_error err;
        if (stdcpu_pool_create(&env.pool, env.threads, &err) != STDCPU_OK) {
            fprintf(stderr, "stdcpu-bench-kernels: %s\n", err.msg);
            return 1;
        }
        bench_measure_peaks(&env);
        printf("BENCH kernel=peak threads=%d f32_gflops=%.1f mem_bw_gbs=%.1f", env.threads,
               env.peak_f32_gflops, env.mem_bw_gbs);
        for (int i = 0; i < STDCPU_ISA_COUNT; i++)
            if (env.peak_i8_gops[i] > 0)
                printf(" i8_gops_%s=%.1f", stdcpu_isa_name((stdcpu_isa)i), env.peak_i8_gops[i]);
        printf("\n");
        fflush(stdout);
        if (!only || !strcmp(only, "gemm"))
            bench_gemm_suite(&env);
        else if (!strcmp(only, "ff"))
            bench_ff_suite(&env);
        if (!only || !strcmp(only, "ops"))
            bench_ops_suite(&env);
        stdcpu_pool_destroy(env.pool);
    }
    return 0;
}
