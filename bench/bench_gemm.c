/* GEMM / convolution benchmark cases on the real SD1.5 / SDXL shapes at
 * 512x512 (latent 64x64): attention projections and feed-forwards on 4096 /
 * 1024 / 256 tokens, 3x3 convolutions at 64x64x320, 32x32x640, 16x16x1280,
 * 1x1 shortcuts. Each q8 line is compared with the measured int8 peak of its
 * ISA, each f32 line with the measured f32 FMA peak (of the best ISA), and
 * both with OpenBLAS sgemm on the same GEMM shape in the same run (for a
 * convolution: the equivalent M = Ho*Wo, K = kh*kw*C, N = O sgemm, without
 * any im2col cost). The OpenBLAS baseline runs the way the engine ran f32
 * before it had its own kernels: single-threaded cblas_sgemm calls on the
 * pool's threads over a fixed grid of row blocks x column chunks.
 * One line per case and ISA:
 *   BENCH kernel=linear_q8 isa=avx512vnni shape=... threads=2 gops=... peak_frac=...
 *         vs_sgemm=... gops_cpu=... ukernel=...
 * kernel= linear_q8 / conv_q8 (int8), linear_f32 / conv_f32 (our f32 GEMM
 * through the ops, epilogue included), f32_gemm (our f32 GEMM through the
 * linear op on a convolution's equivalent GEMM shape, no im2col), and the
 * OpenBLAS baselines linear_f32 / gemm_f32 with isa=openblas.
 * The GEGLU feed-forward (x -> linear -> geglu -> linear, residual) fused per
 * row block (stdcpu_geglu_ff) against the same three ops unfused, timed in
 * alternation so the ratio holds on a VM whose speed drifts:
 *   BENCH kernel=geglu_ff_q8 isa=.. shape=.. threads=2 gops=.. peak_frac=..
 *         unfused_gops=.. vs_unfused=.. (best of each; and the median ratio)
 */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/mem.h"
#include "bench.h"
#include "core/ops_gemm.h"
#include "core/ops_nn.h"
#include "simd/dispatch.h"

typedef struct {
    const char *name;
    size_t M, K, N;
} linear_case;

typedef struct {
    const char *name;
    size_t H, W, C, O, k, stride;
} conv_case;

static const linear_case linear_cases[] = {
    {"sd15_attn_proj", 4096, 320, 320},   {"sd15_ff_in", 4096, 320, 2560},
    {"sd15_ff_out", 4096, 1280, 320},     {"sdxl_attn_proj", 1024, 640, 640},
    {"sdxl_ff_in", 1024, 640, 5120},      {"sdxl_ff_out", 1024, 2560, 640},
    {"sdxl_attn_proj_16", 256, 1280, 1280}, {"sdxl_ff_in_16", 256, 1280, 10240},
    {"sd_ff_1280_5120", 1024, 1280, 5120}, {"text_kv_77", 77, 2048, 1280},
};
static const conv_case conv_cases[] = {
    {"conv3x3_64x64x320", 64, 64, 320, 320, 3, 1},
    {"conv3x3_32x32x640", 32, 32, 640, 640, 3, 1},
    {"conv3x3_16x16x1280", 16, 16, 1280, 1280, 3, 1},
    {"conv3x3_s2_64x64x320", 64, 64, 320, 320, 3, 2},
    {"conv1x1_32x32_320_640", 32, 32, 320, 640, 1, 1},
    {"conv1x1_16x16_640_1280", 16, 16, 640, 1280, 1, 1},
};

typedef struct {
    const char *name;
    size_t M, C, F; /* tokens, channels, GEGLU width (W_in [2F, C], W_out [C, F]) */
} ff_case;

/* The feed-forwards of SD1.5 / SDXL at 512x512: 64x64, 32x32 and 16x16
 * tokens; SDXL's CFG batch doubles the rows. */
static const ff_case ff_cases[] = {
    {"sd15_ff_64x64", 4096, 320, 1280},  {"sd_ff_32x32", 1024, 640, 2560},  {"sd_ff_16x16", 256, 1280, 5120},
    {"sdxl_cfg_ff_32x32", 2048, 640, 2560}, {"sdxl_cfg_ff_16x16", 512, 1280, 5120},
};

static void fill(float *x, size_t n, unsigned long long seed, float amp)
{
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        x[i] = amp * ((float)(seed >> 40) / 8388608.0f - 1.0f);
    }
}

/* Best seconds per call of a linear / conv call: at least `min_reps` runs
 * and `min_time` seconds. */
typedef struct {
    int is_conv;
    const stdcpu_kernels *kern;
    const stdcpu_linear_weight *lw;
    const stdcpu_conv2d_weight *cw;
    const float *x;
    float *y;
    size_t M, H, W, stride;
} bench_call;

static int run_call(stdcpu_pool *pool, const bench_call *c)
{
    if (c->is_conv)
        return stdcpu_conv2d_ex(pool, c->kern, c->cw, c->x, 1, c->H, c->W, c->stride,
                                c->cw->kh / 2, c->y, NULL, STDCPU_ACT_NONE, NULL) == STDCPU_OK;
    return stdcpu_linear_ex(pool, c->kern, c->lw, c->x, c->y, c->M, NULL, STDCPU_ACT_NONE,
                            NULL) == STDCPU_OK;
}

static double process_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best wall seconds and best CPU seconds per thread of a call. */
typedef struct {
    double wall, cpu;
} call_time;

/* Best of at least `min_reps` runs and `min_time` seconds of once(pool, arg),
 * after a warm-up; {0, 0} when the warm-up fails. */
static call_time time_best(const bench_env *env, int (*once)(stdcpu_pool *, const void *), const void *arg)
{
    const int min_reps = env->quick ? 2 : 4;
    const double min_time = env->quick ? 0.05 : 0.4;
    call_time best = {1e30, 1e30};
    double total = 0;
    if (!once(env->pool, arg)) /* warm-up */
        return (call_time){0, 0};
    for (int rep = 0; rep < min_reps || total < min_time; rep++) {
        const double t0 = bench_now(), c0 = process_cpu_now();
        once(env->pool, arg);
        const double dt = bench_now() - t0, dc = (process_cpu_now() - c0) / env->threads;
        best.wall = dt < best.wall ? dt : best.wall;
        best.cpu = dc < best.cpu ? dc : best.cpu;
        total += dt;
        if (rep > 200)
            break;
    }
    return best;
}

static int call_once(stdcpu_pool *pool, const void *arg) { return run_call(pool, arg); }
static call_time time_call(const bench_env *env, const bench_call *c) { return time_best(env, call_once, c); }

typedef struct {
    double wall, cpu; /* G ops per second */
} rate;

static rate rate_of(double flop, call_time t)
{
    return (rate){t.wall > 0 ? flop / t.wall / 1e9 : 0, t.cpu > 0 ? flop / t.cpu / 1e9 : 0};
}

/* OpenBLAS picks its kernels from CPUID: a VM that hides the CPU model gets
 * the generic (Prescott, SSE3) ones unless OPENBLAS_CORETYPE is set (e.g.
 * SkylakeX or Haswell). The sgemm lines name the core so results are honest. */
static const char *sgemm_name(void)
{
    static char name[64];
    snprintf(name, sizeof name, "cblas_sgemm_%s", openblas_get_corename());
    return name;
}

/* gops: wall clock; gops_cpu: over the CPU time the threads got (the
 * machine is shared: time-slicing by other processes does not count).
 * peak_frac and vs_sgemm compare gops_cpu with baselines measured the same
 * way (bench_peak.c). */
static void print_line(const char *kernel, const char *isa, const char *shape, int threads,
                       rate r, double peak, rate sgemm, const char *ukernel)
{
    printf("BENCH kernel=%s isa=%s shape=%s threads=%d gops=%.1f peak_frac=%.3f vs_sgemm=%.2f "
           "gops_cpu=%.1f ukernel=%s\n",
           kernel, isa, shape, threads, r.wall, peak > 0 ? r.cpu / peak : 0.0,
           sgemm.cpu > 0 ? r.cpu / sgemm.cpu : 0.0, r.cpu, ukernel);
    fflush(stdout);
}

/* The q8 and f32 weights of a GEMM [N, K]; returns 0 on allocation failure. */
static int make_linear(size_t N, size_t K, stdcpu_linear_weight *lq, stdcpu_linear_weight *lf)
{
    float *w = malloc(N * K * sizeof(float)), *ws = malloc(N * sizeof(float));
    int8_t *wq = malloc(N * K);
    int ok = w && ws && wq;
    if (ok) {
        fill(w, N * K, 0x9e3779b97f4a7c15ull ^ N ^ (K << 20), 0.05f);
        stdcpu_q8_quantize_weights(w, N, K, wq, ws);
        ok = stdcpu_linear_weight_init_q8(lq, wq, ws, NULL, N, K, NULL) == STDCPU_OK;
        if (ok && stdcpu_linear_weight_init_f32(lf, w, NULL, N, K, NULL) != STDCPU_OK) {
            stdcpu_linear_weight_free(lq);
            ok = 0;
        }
    }
    free(w);
    free(ws);
    free(wq);
    return ok;
}

/* The OpenBLAS baseline: y [M, N] = x [M, K] . w [N, K]^T, single-threaded
 * cblas_sgemm per task on the pool, over the grid the engine used with
 * OpenBLAS (row blocks of max(64, M/8) rows, columns split in 16-wide units
 * until there are 16 tasks). */
typedef struct {
    const float *x, *w;
    float *y;
    size_t M, K, N, rb, chunk, n_rb, n_chunks;
} blas_job;

static void blas_task(void *arg, int ith, int nth)
{
    const blas_job *j = arg;
    for (size_t t = (size_t)ith; t < j->n_rb * j->n_chunks; t += (size_t)nth) {
        const size_t r0 = t / j->n_chunks * j->rb, c0 = t % j->n_chunks * j->chunk;
        const size_t rows = j->M - r0 < j->rb ? j->M - r0 : j->rb;
        const size_t cols = j->N - c0 < j->chunk ? j->N - c0 : j->chunk;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)j->K, 1.0f,
                    j->x + r0 * j->K, (int)j->K, j->w + c0 * j->K, (int)j->K, 0.0f,
                    j->y + r0 * j->N + c0, (int)j->N);
    }
}

static int blas_once(stdcpu_pool *pool, const void *arg)
{
    stdcpu_pool_run(pool, blas_task, (void *)arg);
    return 1;
}

static rate sgemm_rate_for(const bench_env *env, size_t M, size_t K, size_t N,
                           const stdcpu_linear_weight *lf, const float *x, float *y)
{
    openblas_set_num_threads(1); /* our pool provides the threads */
    blas_job j = {.x = x, .w = lf->w, .y = y, .M = M, .K = K, .N = N};
    j.rb = (M + 7) / 8 < 64 ? 64 : (M + 7) / 8;
    j.n_rb = (M + j.rb - 1) / j.rb;
    const size_t units = (N + 15) / 16;
    size_t want = j.n_rb < 16 ? (16 + j.n_rb - 1) / j.n_rb : 1;
    want = want > units ? units : want;
    j.chunk = (units + want - 1) / want * 16;
    j.n_chunks = (N + j.chunk - 1) / j.chunk;
    return rate_of(2.0 * (double)M * (double)N * (double)K, time_best(env, blas_once, &j));
}

static void bench_linear(const bench_env *env, const linear_case *lc)
{
    stdcpu_linear_weight lq, lf;
    float *x = stdcpu_aligned_alloc(lc->M * lc->K * sizeof(float));
    float *y = stdcpu_aligned_alloc(lc->M * lc->N * sizeof(float));
    if (!x || !y || !make_linear(lc->N, lc->K, &lq, &lf)) {
        fprintf(stderr, "bench %s: out of memory\n", lc->name);
        stdcpu_aligned_free(x);
        stdcpu_aligned_free(y);
        return;
    }
    fill(x, lc->M * lc->K, 12345, 2.0f);
    char shape[96];
    snprintf(shape, sizeof shape, "%s_M%zu_K%zu_N%zu", lc->name, lc->M, lc->K, lc->N);
    const double flop = 2.0 * (double)lc->M * (double)lc->N * (double)lc->K;
    const rate sg = sgemm_rate_for(env, lc->M, lc->K, lc->N, &lf, x, y);
    print_line("linear_f32", "openblas", shape, env->threads, sg, env->peak_f32_gflops, sg, sgemm_name());
    for (int isa = 1; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        const bench_call c = {.kern = kt, .lw = &lq, .x = x, .y = y, .M = lc->M};
        print_line("linear_q8", stdcpu_isa_name((stdcpu_isa)isa), shape, env->threads,
                   rate_of(flop, time_call(env, &c)), env->peak_i8_gops[isa], sg,
                   kt->gemm.q8_igemm_name);
    }
    for (int isa = 1; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        const bench_call c = {.kern = kt, .lw = &lf, .x = x, .y = y, .M = lc->M};
        print_line("linear_f32", stdcpu_isa_name((stdcpu_isa)isa), shape, env->threads,
                   rate_of(flop, time_call(env, &c)), env->peak_f32_gflops, sg,
                   kt->gemm.f32_gemm_name);
    }
    stdcpu_linear_weight_free(&lq);
    stdcpu_linear_weight_free(&lf);
    stdcpu_aligned_free(x);
    stdcpu_aligned_free(y);
}

static void bench_conv(const bench_env *env, const conv_case *cc)
{
    const size_t pad = cc->k / 2;
    const size_t Ho = stdcpu_conv2d_out_size(cc->H, cc->k, cc->stride, pad);
    const size_t Wo = stdcpu_conv2d_out_size(cc->W, cc->k, cc->stride, pad);
    const size_t M = Ho * Wo, K = cc->k * cc->k * cc->C, N = cc->O;
    const size_t nw = N * K;
    float *x = stdcpu_aligned_alloc(cc->H * cc->W * cc->C * sizeof(float));
    float *y = stdcpu_aligned_alloc(M * N * sizeof(float));
    float *xg = stdcpu_aligned_alloc(M * K * sizeof(float)); /* baseline sgemm's A */
    float *w = malloc(nw * sizeof(float)), *ws = malloc(N * sizeof(float));
    int8_t *wq = malloc(nw);
    stdcpu_conv2d_weight cq, cf;
    stdcpu_linear_weight lq, lf;
    if (!x || !y || !xg || !w || !ws || !wq || !make_linear(N, K, &lq, &lf)) {
        fprintf(stderr, "bench %s: out of memory\n", cc->name);
        goto out_nolinear;
    }
    fill(w, nw, 777, 0.05f);
    fill(x, cc->H * cc->W * cc->C, 4321, 2.0f);
    fill(xg, M * K, 999, 2.0f);
    stdcpu_q8_quantize_weights(w, N, K, wq, ws);
    if (stdcpu_conv2d_weight_init_q8(&cq, wq, ws, NULL, N, cc->C, cc->k, cc->k, NULL) != STDCPU_OK)
        goto out;
    if (stdcpu_conv2d_weight_init_f32(&cf, w, NULL, N, cc->C, cc->k, cc->k, NULL) != STDCPU_OK) {
        stdcpu_conv2d_weight_free(&cq);
        goto out;
    }
    char shape[96];
    snprintf(shape, sizeof shape, "%s_M%zu_K%zu_N%zu", cc->name, M, K, N);
    const double flop = 2.0 * (double)M * (double)N * (double)K;
    const rate sg = sgemm_rate_for(env, M, K, N, &lf, xg, y);
    print_line("gemm_f32", "openblas", shape, env->threads, sg, env->peak_f32_gflops, sg, sgemm_name());
    bench_call c = {.is_conv = 1, .cw = &cq, .x = x, .y = y, .H = cc->H, .W = cc->W,
                    .stride = cc->stride};
    for (int isa = 1; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        c.kern = kt;
        print_line("conv_q8", stdcpu_isa_name((stdcpu_isa)isa), shape, env->threads,
                   rate_of(flop, time_call(env, &c)), env->peak_i8_gops[isa], sg,
                   kt->gemm.q8_igemm_name);
    }
    c.cw = &cf;
    for (int isa = 1; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        const bench_call g = {.kern = kt, .lw = &lf, .x = xg, .y = y, .M = M};
        print_line("f32_gemm", stdcpu_isa_name((stdcpu_isa)isa), shape, env->threads,
                   rate_of(flop, time_call(env, &g)), env->peak_f32_gflops, sg,
                   kt->gemm.f32_gemm_name);
        c.kern = kt;
        print_line("conv_f32", stdcpu_isa_name((stdcpu_isa)isa), shape, env->threads,
                   rate_of(flop, time_call(env, &c)), env->peak_f32_gflops, sg,
                   kt->gemm.f32_gemm_name);
    }
    stdcpu_conv2d_weight_free(&cq);
    stdcpu_conv2d_weight_free(&cf);
out:
    stdcpu_linear_weight_free(&lq);
    stdcpu_linear_weight_free(&lf);
out_nolinear:
    stdcpu_aligned_free(x);
    stdcpu_aligned_free(y);
    stdcpu_aligned_free(xg);
    free(w);
    free(ws);
    free(wq);
}

/* ---- fused GEGLU feed-forward against the unfused ops ---- */

typedef struct {
    const stdcpu_kernels *kern;
    const stdcpu_linear_weight *w_in, *w_out;
    const float *x;
    float *y, *p, *g; /* p, g: the unfused intermediates */
    void *scratch;
    size_t M, scratch_bytes;
} ff_call;

static int ff_fused(stdcpu_pool *pool, const ff_call *c)
{
    return stdcpu_geglu_ff(pool, c->kern, c->w_in, c->w_out, NULL, c->x, c->y, c->M, c->scratch,
                           c->scratch_bytes, NULL) == STDCPU_OK;
}

static int ff_unfused(stdcpu_pool *pool, const ff_call *c)
{
    const size_t F = c->w_out->k;
    return stdcpu_linear_ex(pool, c->kern, c->w_in, c->x, c->p, c->M, NULL, STDCPU_ACT_NONE, NULL) == STDCPU_OK &&
           stdcpu_geglu(pool, c->kern, c->p, c->M, F, c->g, NULL) == STDCPU_OK &&
           stdcpu_linear_ex(pool, c->kern, c->w_out, c->g, c->y, c->M, c->y, STDCPU_ACT_NONE, NULL) == STDCPU_OK;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_ff(const bench_env *env, const ff_case *fc)
{
    const size_t M = fc->M, C = fc->C, F = fc->F;
    stdcpu_linear_weight in_q, in_f, out_q, out_f;
    float *x = stdcpu_aligned_alloc(M * C * sizeof(float)), *y = stdcpu_aligned_alloc(M * C * sizeof(float));
    float *p = stdcpu_aligned_alloc(M * 2 * F * sizeof(float)), *g = stdcpu_aligned_alloc(M * F * sizeof(float));
    if (!x || !y || !p || !g || !make_linear(2 * F, C, &in_q, &in_f)) {
        fprintf(stderr, "bench %s: out of memory\n", fc->name);
        goto out;
    }
    if (!make_linear(C, F, &out_q, &out_f)) {
        stdcpu_linear_weight_free(&in_q);
        stdcpu_linear_weight_free(&in_f);
        fprintf(stderr, "bench %s: out of memory\n", fc->name);
        goto out;
    }
    fill(x, M * C, 777, 2.0f);
    fill(y, M * C, 778, 1.0f);
    char shape[96];
    snprintf(shape, sizeof shape, "%s_M%zu_C%zu_F%zu", fc->name, M, C, F);
    const double flop = 2.0 * (double)M * 3.0 * (double)F * (double)C;
    for (int isa = 1; isa < STDCPU_ISA_COUNT; isa++) {
        const stdcpu_kernels *kt = stdcpu_kernels_for_isa((stdcpu_isa)isa);
        if (!kt)
            continue;
        ff_call c = {.kern = kt, .w_in = &in_q, .w_out = &out_q, .x = x, .y = y, .p = p, .g = g, .M = M};
        c.scratch_bytes = stdcpu_geglu_ff_scratch_bytes(&in_q, &out_q, env->threads);
        c.scratch = stdcpu_aligned_alloc(c.scratch_bytes);
        enum { ROUNDS = 24 };
        double tf[ROUNDS], tu[ROUNDS], ratio[ROUNDS], bf = 1e30, bu = 1e30;
        int ok = c.scratch && ff_fused(env->pool, &c) && ff_unfused(env->pool, &c); /* warm-up */
        const int rounds = env->quick ? 6 : ROUNDS;
        for (int r = 0; ok && r < rounds; r++) {
            double t0 = bench_now();
            ok = ff_fused(env->pool, &c);
            tf[r] = bench_now() - t0;
            t0 = bench_now();
            ok = ok && ff_unfused(env->pool, &c);
            tu[r] = bench_now() - t0;
            ratio[r] = tu[r] / tf[r];
            bf = tf[r] < bf ? tf[r] : bf;
            bu = tu[r] < bu ? tu[r] : bu;
        }
        stdcpu_aligned_free(c.scratch);
        if (!ok) {
            fprintf(stderr, "bench %s: feed-forward failed\n", fc->name);
            continue;
        }
        qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_double);
        const double peak = env->peak_i8_gops[isa];
        printf("BENCH kernel=geglu_ff_q8 isa=%s shape=%s threads=%d gops=%.1f peak_frac=%.3f unfused_gops=%.1f "
               "unfused_peak_frac=%.3f vs_unfused=%.3f vs_unfused_median=%.3f\n",
               stdcpu_isa_name((stdcpu_isa)isa), shape, env->threads, flop / bf * 1e-9,
               peak > 0 ? flop / bf * 1e-9 / peak : 0, flop / bu * 1e-9, peak > 0 ? flop / bu * 1e-9 / peak : 0,
               bu / bf, ratio[rounds / 2]);
        fflush(stdout);
    }
    stdcpu_linear_weight_free(&in_q);
    stdcpu_linear_weight_free(&in_f);
    stdcpu_linear_weight_free(&out_q);
    stdcpu_linear_weight_free(&out_f);
out:
    stdcpu_aligned_free(x);
    stdcpu_aligned_free(y);
    stdcpu_aligned_free(p);
    stdcpu_aligned_free(g);
}

void bench_ff_suite(const bench_env *env)
{
    for (size_t i = 0; i < sizeof ff_cases / sizeof *ff_cases; i++)
        bench_ff(env, &ff_cases[i]);
}

void bench_gemm_suite(const bench_env *env)
{
    const size_t nl = sizeof linear_cases / sizeof *linear_cases;
    const size_t nc = sizeof conv_cases / sizeof *conv_cases;
    /* --quick: one attention projection, one feed-forward, two convolutions. */
    static const size_t quick_linear[] = {3, 4}, quick_conv[] = {0, 4};
    if (env->quick) {
        for (size_t i = 0; i < 2; i++)
            bench_linear(env, &linear_cases[quick_linear[i]]);
        for (size_t i = 0; i < 2; i++)
            bench_conv(env, &conv_cases[quick_conv[i]]);
        bench_ff(env, &ff_cases[0]);
        return;
    }
    bench_ff_suite(env);
    for (size_t i = 0; i < nl; i++)
        bench_linear(env, &linear_cases[i]);
    for (size_t i = 0; i < nc; i++)
        bench_conv(env, &conv_cases[i]);
}
