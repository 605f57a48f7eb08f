/* Shared by the benchmark programs. Benchmarks print machine-readable lines
 *   BENCH kernel=<name> isa=<isa> shape=<...> threads=<n> gops=<x> peak_frac=<x> vs_sgemm=<x>
 * with ratios against baselines measured in the same run (the machine's own
 * peaks, OpenBLAS sgemm, the scalar kernel): absolute times are noisy. */
#ifndef STDCPU_BENCH_H
#define STDCPU_BENCH_H

#include "core/threadpool.h"
#include "stdcpu.h"

typedef struct bench_env {
    stdcpu_pool *pool;    /* the pool to run with (threads = its size) */
    int threads;
    int quick;            /* fewer repetitions / shapes */
    /* Measured at start-up by bench_measure_peaks() with `threads` threads. */
    double peak_f32_gflops;                  /* FMA, 12+ register accumulators */
    double peak_i8_gops[STDCPU_ISA_COUNT];   /* int8 multiply-adds x2 per ISA; 0 if absent */
    double mem_bw_gbs;                       /* streaming read+write bandwidth */
} bench_env;

double bench_now(void); /* monotonic seconds */

/* Hypervisor steal over a timed region: the share of all CPUs' time during
 * which this VM was runnable but not running (the `steal` column of
 * /proc/stat). On a shared VM it is what moves absolute times (and a peak
 * measured at another moment); lines with a high steal compare badly. */
typedef struct bench_steal {
    unsigned long long steal, total;
    int ok;
} bench_steal;
bench_steal bench_steal_now(void);
double bench_steal_frac(bench_steal since); /* -1 when /proc/stat is unreadable */

/* Fills the peak fields of env. */
void bench_measure_peaks(bench_env *env);

/* The int8 peak of the active ISA measured now (three short runs, ~0.2 s):
 * on a VM whose speed drifts by 2x within minutes, a region's fraction is
 * taken against the peak measured just before and just after it. */
double bench_peak_i8_now(const bench_env *env);

/* Prints one line naming the CPU this run is on (`BENCH name=machine
 * cpu="..." family=.. model=.. isa=.. vbmi=..`): this shared VM, described
 * as a Zen 4, reported an Intel Xeon (family 6 model 207) with ~1.6x those
 * peaks, so every run's numbers say where they came from. */
void bench_print_machine(void);

/* Suites of stdcpu-bench-kernels, one per kernel family. */
void bench_gemm_suite(const bench_env *env); /* q8/f32 GEMM, convolution, fused feed-forward */
void bench_ff_suite(const bench_env *env);   /* the fused feed-forward alone */
void bench_ops_suite(const bench_env *env);  /* attention, norms, element-wise */

#endif
