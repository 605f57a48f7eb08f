/* Machine peaks, measured with every thread of env->pool: f32 FMA and int8
 * multiply-add throughput per ISA (register-only loops from simd/gemm_peak.h,
 * each thread on its own accumulators) and streaming copy bandwidth. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "bench.h"
#include "simd/cpu.h"
#include "simd/dispatch.h"
#include "simd/gemm_peak.h"

typedef uint64_t (*peak_loop_fn)(size_t iters);

typedef struct {
    peak_loop_fn fn;
    size_t iters;
    double cpu_seconds[256]; /* per thread */
} peak_job;

static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void peak_task(void *arg, int ith, int nth)
{
    (void)nth;
    peak_job *j = arg;
    const double t0 = thread_cpu_now();
    j->fn(j->iters);
    if (ith < 256)
        j->cpu_seconds[ith] = thread_cpu_now() - t0;
}

/* Operations per second of fn on all threads: runs of ~0.05 s, the best of
 * several. The machine is shared, so each thread's rate is taken over its own
 * CPU time (time-slicing by other processes does not count against it) and
 * the threads' rates are summed; the kernels' lines use the same convention
 * (gops_cpu in bench_gemm.c). */
static double measure_loop(stdcpu_pool *pool, int threads, peak_loop_fn fn, int quick)
{
    peak_job *j = calloc(1, sizeof *j);
    if (!j)
        return 0;
    j->fn = fn;
    j->iters = 1000;
    double t = 0;
    for (;;) { /* calibrate on one thread */
        const double t0 = thread_cpu_now();
        fn(j->iters);
        t = thread_cpu_now() - t0;
        if (t > 0.01 || j->iters > ((size_t)1 << 40))
            break;
        j->iters *= 4;
    }
    const double target = quick ? 0.04 : 0.08;
    j->iters = (size_t)((double)j->iters * target / (t > 0 ? t : 1e-3)) + 1;
    const uint64_t ops = fn(1) * j->iters;
    double best = 0;
    for (int rep = 0; rep < (quick ? 3 : 7); rep++) {
        stdcpu_pool_run(pool, peak_task, j);
        double rate = 0;
        for (int i = 0; i < threads && i < 256; i++)
            rate += j->cpu_seconds[i] > 0 ? (double)ops / j->cpu_seconds[i] : 0;
        best = rate > best ? rate : best;
    }
    free(j);
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

/* The int8 and f32 peak loops of one ISA (NULL: not built, not on this CPU,
 * or none: NEON dotprod has no f32 loop of its own). */
static void loops_for(stdcpu_isa isa, peak_loop_fn *i8, peak_loop_fn *f32)
{
    *i8 = *f32 = NULL;
    if (!stdcpu_kernels_for_isa(isa))
        return;
    switch (isa) {
#ifdef HAVE_AVX2
    case STDCPU_ISA_AVX2: *i8 = stdcpu_peak_i8_avx2; *f32 = stdcpu_peak_f32_fma_avx2; break;
#endif
#ifdef HAVE_AVX512VNNI
    case STDCPU_ISA_AVX512VNNI: *i8 = stdcpu_peak_i8_avx512vnni; *f32 = stdcpu_peak_f32_fma_avx512vnni; break;
#endif
#ifdef HAVE_NEON
    case STDCPU_ISA_NEON: *i8 = stdcpu_peak_i8_neon; *f32 = stdcpu_peak_f32_fma_neon; break;
#endif
#ifdef HAVE_NEONDOT
    case STDCPU_ISA_NEONDOT: *i8 = stdcpu_peak_i8_neondot; break;
#endif
    default: break;
    }
}

void bench_measure_peaks(bench_env *env)
{
    peak_loop_fn f32 = NULL; /* the best ISA's */
    for (int i = 0; i < STDCPU_ISA_COUNT; i++) {
        peak_loop_fn l8, lf;
        loops_for((stdcpu_isa)i, &l8, &lf);
        f32 = lf ? lf : f32;
        env->peak_i8_gops[i] = l8 ? measure_loop(env->pool, env->threads, l8, env->quick) / 1e9 : 0;
    }
    env->peak_f32_gflops = f32 ? measure_loop(env->pool, env->threads, f32, env->quick) / 1e9 : 0;
    env->mem_bw_gbs = measure_bandwidth(env->pool, env->quick);
}

double bench_peak_i8_now(const bench_env *env)
{
    peak_loop_fn l8, lf;
    loops_for(stdcpu_isa_active(), &l8, &lf);
    return l8 ? measure_loop(env->pool, env->threads, l8, 1) / 1e9 : 0;
}

/* The first processor's "model name", "cpu family" and "model" lines of
 * /proc/cpuinfo (x86; "?" elsewhere or when absent). */
void bench_print_machine(void)
{
    char name[128] = "?", family[16] = "?", model[16] = "?", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        char *v = colon + 1 + (colon[1] == ' ');
        v[strcspn(v, "\n")] = 0;
        char *dst = !strncmp(line, "model name", 10) ? name : !strncmp(line, "cpu family", 10) ? family
                    : (!strncmp(line, "model\t", 6) || !strncmp(line, "model :", 7)) ? model : NULL;
        const size_t cap = dst == name ? sizeof name : sizeof family;
        if (dst && dst[0] == '?') {
            strncpy(dst, v, cap - 1);
            dst[cap - 1] = 0;
            for (char *c = dst; *c; c++)
                *c = *c == '"' ? '\'' : *c;
        }
        if (!strncmp(line, "processor", 9) && name[0] != '?')
            break; /* the second processor */
    }
    if (f)
        fclose(f);
    printf("BENCH name=machine cpu=\"%s\" family=%s model=%s isa=%s vbmi=%d\n", name, family, model,
           stdcpu_isa_name(stdcpu_isa_active()), stdcpu_cpu_has_avx512vbmi());
    fflush(stdout);
}
