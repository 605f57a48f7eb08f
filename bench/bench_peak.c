/* Machine peaks, measured with every thread of env->pool: f32 FMA and int8
 * multiply-add throughput per ISA (register-only loops from simd/gemm_peak.h,
 * each thread on its own accumulators) and streaming copy bandwidth. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "base/mem.h"
#include "bench.h"
#include "simd/dispatch.h"
#include "simd/gemm_peak.h"

typedef uint64_t (*peak_loop_fn)(size_t iters);

typedef struct {
    peak_loop_fn fn;
    size_t iters;
} peak_job;

static void peak_task(void *arg, int ith, int nth)
{
    (void)ith;
    (void)nth;
    const peak_job *j = arg;
    j->fn(j->iters);
}

/* Operations per second of fn on all threads: runs of ~0.05 s, the best of several. */
static double measure_loop(stdcpu_pool *pool, int threads, peak_loop_fn fn, int quick)
{
    peak_job j = {.fn = fn, .iters = 1000};
    double t = 0;
    for (;;) { /* calibrate on one thread */
        const double t0 = bench_now();
        fn(j.iters);
        t = bench_now() - t0;
        if (t > 0.01 || j.iters > ((size_t)1 << 40))
            break;
        j.iters *= 4;
    }
    const double target = quick ? 0.04 : 0.08;
    j.iters = (size_t)((double)j.iters * target / (t > 0 ? t : 1e-3)) + 1;
    const uint64_t ops = fn(1) * j.iters;
    double best = 0;
    for (int rep = 0; rep < (quick ? 3 : 7); rep++) { /* best of: the machine is shared */
        const double t0 = bench_now();
        stdcpu_pool_run(pool, peak_task, &j);
        const double dt = bench_now() - t0;
        const double rate = (double)ops * threads / dt;
        best = rate > best ? rate : best;
    }
    return best;
}

typedef struct {
    unsigned char *src, *dst;
    size_t bytes;
    int init;
} copy_job;

static void copy_task(void *arg, int ith, int nth)
{
    const copy_job *j = arg;
    size_t b, e;
    stdcpu_split_range(j->bytes / 64, ith, nth, &b, &e);
    if (j->init) { /* first touch by the thread that streams it */
        memset(j->src + b * 64, 1, (e - b) * 64);
        memset(j->dst + b * 64, 0, (e - b) * 64);
    } else {
        memcpy(j->dst + b * 64, j->src + b * 64, (e - b) * 64);
    }
}

static double measure_bandwidth(stdcpu_pool *pool, int quick)
{
    copy_job j = {.bytes = (size_t)(quick ? 64 : 128) << 20};
    j.src = stdcpu_aligned_alloc(j.bytes);
    j.dst = stdcpu_aligned_alloc(j.bytes);
    if (!j.src || !j.dst) {
        stdcpu_aligned_free(j.src);
        stdcpu_aligned_free(j.dst);
        return 0;
    }
    j.init = 1;
    stdcpu_pool_run(pool, copy_task, &j);
    j.init = 0;
    double best = 0;
    for (int rep = 0; rep < (quick ? 3 : 5); rep++) {
        const double t0 = bench_now();
        stdcpu_pool_run(pool, copy_task, &j);
        const double dt = bench_now() - t0;
        const double gbs = 2.0 * (double)j.bytes / dt / 1e9; /* read + write */
        best = gbs > best ? gbs : best;
    }
    stdcpu_aligned_free(j.src);
    stdcpu_aligned_free(j.dst);
    return best;
}

void bench_measure_peaks(bench_env *env)
{
    peak_loop_fn f32 = NULL;
    peak_loop_fn i8[STDCPU_ISA_COUNT] = {0};
#ifdef HAVE_AVX2
    if (stdcpu_kernels_for_isa(STDCPU_ISA_AVX2)) {
        f32 = stdcpu_peak_f32_fma_avx2;
        i8[STDCPU_ISA_AVX2] = stdcpu_peak_i8_avx2;
    }
#endif
#ifdef HAVE_AVX512VNNI
    if (stdcpu_kernels_for_isa(STDCPU_ISA_AVX512VNNI)) {
        f32 = stdcpu_peak_f32_fma_avx512vnni;
        i8[STDCPU_ISA_AVX512VNNI] = stdcpu_peak_i8_avx512vnni;
    }
#endif
#ifdef HAVE_NEON
    if (stdcpu_kernels_for_isa(STDCPU_ISA_NEON)) {
        f32 = stdcpu_peak_f32_fma_neon;
        i8[STDCPU_ISA_NEON] = stdcpu_peak_i8_neon;
    }
#endif
#ifdef HAVE_NEONDOT
    if (stdcpu_kernels_for_isa(STDCPU_ISA_NEONDOT))
        i8[STDCPU_ISA_NEONDOT] = stdcpu_peak_i8_neondot;
#endif
    env->peak_f32_gflops = f32 ? measure_loop(env->pool, env->threads, f32, env->quick) / 1e9 : 0;
    for (int i = 0; i < STDCPU_ISA_COUNT; i++)
        env->peak_i8_gops[i] = i8[i] ? measure_loop(env->pool, env->threads, i8[i], env->quick) / 1e9 : 0;
    env->mem_bw_gbs = measure_bandwidth(env->pool, env->quick);
}
