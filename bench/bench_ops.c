/* Attention / norm / element-wise benchmark cases at 512x512 (64x64
 * latents), every ISA of this CPU and build, through the threaded entry
 * points of core/ops_nn.h:
 *   BENCH kernel=<name> isa=<isa> shape=<...> threads=<n> gops=<x> peak_frac=<x> vs_scalar=<x> gops_cpu=<x>
 * gops is over wall time, gops_cpu over the CPU time the threads got (the
 * machine is shared: that one is the stabler figure); peak_frac and
 * vs_scalar use gops_cpu, like bench_gemm.c.
 * attention: gops = GFLOP/s (4 * Tq * Tk * d * heads per call), peak_frac
 * against the measured f32 FMA peak; attn_q8 (int8 Q.K^T and P.V, the
 * UNet's attention for int8 models): the same op count, peak_frac against
 * the ISA's measured int8 peak; norms / element-wise: gops = GB/s of
 * the minimal traffic (every input read once, every output written once),
 * peak_frac against the measured streaming bandwidth; softmax_block_q8
 * (the int8 attention's softmax step, rows of 256 scores): GB/s the same
 * way, 4 bytes in and 1 out per score. Peaks of 0 (not
 * measured) give 0 fractions. The scalar run of the big attention cases
 * uses one head (its rate is what is compared). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "bench.h"
#include "core/ops_nn.h"
#include "simd/dispatch.h"

typedef enum { OP_ATTN, OP_ATTN_Q8, OP_GROUPNORM, OP_LAYERNORM, OP_GEGLU, OP_SILU, OP_SOFTMAX_Q8 } op_kind;

typedef struct {
    const char *name;
    op_kind op;
    size_t a, b, c, d; /* attention: tokens, keys, head_dim, heads; norms: H*W, C, groups */
} ops_case;

typedef struct {
    float *x, *y, *q, *k, *v, *gamma, *beta;
} ops_buffers;

/* softmax_block_q8 over rows of one key block, rows split over the threads
 * (the int8 attention calls it per query row and block of 256 keys). */
typedef struct {
    const stdcpu_kernels *kern;
    const float *s;
    int8_t *p;
    size_t rows, n;
} smq8_job;

static void smq8_worker(void *arg, int ith, int nth)
{
    const smq8_job *j = arg;
    for (size_t r = (size_t)ith; r < j->rows; r += (size_t)nth) {
        float m = -INFINITY, l = 0.0f, alpha, pscale;
        j->kern->attn.softmax_block_q8(j->s + r * j->n, j->n, j->n, j->kern->gemm.q8_a_xor, j->p + r * j->n, &m,
                                       &l, &alpha, &pscale);
    }
}

/* One call; returns the work in GFLOP (attention) or GB moved. */
static double run_once(const bench_env *env, const stdcpu_kernels *kern, const ops_case *c,
                       const ops_buffers *bf, size_t heads)
{
    switch (c->op) {
    case OP_ATTN:
    case OP_ATTN_Q8: {
        const size_t C = c->c * c->d; /* row width: all heads */
        stdcpu_attention_desc a = {.batch = 1, .heads = heads, .head_dim = c->c, .tq = c->a, .tk = c->b,
                                   .q = bf->q, .k = bf->k, .v = bf->v, .o = bf->y, .q_stride = C,
                                   .k_stride = C, .v_stride = C, .o_stride = C,
                                   .scale = 1.0f / sqrtf((float)c->c), .int8 = c->op == OP_ATTN_Q8};
        stdcpu_attention(env->pool, kern, &a, NULL);
        return 4.0 * (double)c->a * (double)c->b * (double)c->c * (double)heads * 1e-9;
    }
    case OP_GROUPNORM:
        stdcpu_group_norm(env->pool, kern, bf->x, 1, 1, c->a, c->b, c->c, 1e-5f, bf->gamma, bf->beta, 1,
                          bf->y, NULL);
        return 8.0 * (double)c->a * (double)c->b * 1e-9;
    case OP_LAYERNORM:
        stdcpu_layer_norm(env->pool, kern, bf->x, c->a, c->b, 1e-5f, bf->gamma, bf->beta, bf->y, NULL);
        return 8.0 * (double)c->a * (double)c->b * 1e-9;
    case OP_GEGLU:
        stdcpu_geglu(env->pool, kern, bf->x, c->a, c->b, bf->y, NULL);
        return 12.0 * (double)c->a * (double)c->b * 1e-9;
    case OP_SOFTMAX_Q8: {
        smq8_job j = {.kern = kern, .s = bf->x, .p = (int8_t *)bf->y, .rows = c->a, .n = c->b};
        stdcpu_pool_run_n(env->pool, stdcpu_pool_threads(env->pool), smq8_worker, &j);
        return 5.0 * (double)c->a * (double)c->b * 1e-9; /* 4 bytes in, 1 out per score */
    }
    case OP_SILU:
        stdcpu_activation(env->pool, kern, STDCPU_ELT_SILU, bf->x, bf->y, c->a * c->b, NULL);
        return 8.0 * (double)c->a * (double)c->b * 1e-9;
    }
    return 0;
}

static double process_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    double wall, cpu; /* best rates: over wall time, over CPU time per thread */
} rates;

/* Best rates over repetitions filling ~min_time seconds. */
static rates measure(const bench_env *env, const stdcpu_kernels *kern, const ops_case *c,
                     const ops_buffers *bf, size_t heads)
{
    const double min_time = env->quick ? 0.15 : 0.6;
    rates best = {0, 0};
    double spent = 0;
    run_once(env, kern, c, bf, heads); /* warm-up: pages, caches, threads */
    for (int rep = 0; rep < 1000 && (spent < min_time || rep < 2); rep++) {
        const double t0 = bench_now(), c0 = process_cpu_now();
        const double work = run_once(env, kern, c, bf, heads);
        const double dt = bench_now() - t0, dc = (process_cpu_now() - c0) / env->threads;
        spent += dt;
        if (dt > 0 && work / dt > best.wall)
            best.wall = work / dt;
        if (dc > 0 && work / dc > best.cpu)
            best.cpu = work / dc;
    }
    return best;
}

static float *alloc_fill(size_t n, float lo, float hi, unsigned seed)
{
    float *p = stdcpu_aligned_alloc(n * sizeof(float));
    if (!p)
        return NULL;
    unsigned s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = lo + (hi - lo) * (float)(s >> 8) * (1.0f / 16777216.0f);
    }
    return p;
}

void bench_ops_suite(const bench_env *env)
{
    static const ops_case cases[] = {
        {"attn_self_sdxl", OP_ATTN, 4096, 4096, 64, 10},
        {"attn_self_sd15", OP_ATTN, 4096, 4096, 40, 8},
        {"attn_cross_sdxl", OP_ATTN, 4096, 77, 64, 10},
        {"attn_cross_sd15", OP_ATTN, 4096, 77, 40, 8},
        {"attn_q8_self_sdxl", OP_ATTN_Q8, 4096, 4096, 64, 10},
        {"attn_q8_self_sd15", OP_ATTN_Q8, 4096, 4096, 40, 8},
        {"attn_q8_cross_sd15", OP_ATTN_Q8, 4096, 77, 40, 8},
        {"groupnorm_silu", OP_GROUPNORM, 4096, 640, 32, 0},
        {"groupnorm_silu", OP_GROUPNORM, 4096, 320, 32, 0},
        {"layernorm", OP_LAYERNORM, 4096, 640, 0, 0},
        {"geglu", OP_GEGLU, 4096, 2560, 0, 0},
        {"silu", OP_SILU, 4096, 1280, 0, 0},
        {"softmax_block_q8", OP_SOFTMAX_Q8, 4096, 256, 0, 0},
    };
    const size_t big = 4096 * 2 * 2560; /* largest buffer, in floats */
    ops_buffers bf = {0};
    bf.x = alloc_fill(big, -2, 2, 1);
    bf.y = alloc_fill(big, 0, 0, 2);
    bf.q = alloc_fill(4096 * 640, -1, 1, 3);
    bf.k = alloc_fill(4096 * 640, -1, 1, 4);
    bf.v = alloc_fill(4096 * 640, -1, 1, 5);
    bf.gamma = alloc_fill(2560, 0.5f, 1.5f, 6);
    bf.beta = alloc_fill(2560, -0.5f, 0.5f, 7);
    if (!bf.x || !bf.y || !bf.q || !bf.k || !bf.v || !bf.gamma || !bf.beta) {
        fprintf(stderr, "bench ops: out of memory\n");
        goto done;
    }
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const ops_case *c = &cases[ci];
        /* --quick keeps both SD1.5 self-attentions (f32 and int8, to compare) */
        if (env->quick && (ci == 3 || ci == 6 || ci == 8))
            continue;
        char shape[96];
        if (c->op == OP_ATTN || c->op == OP_ATTN_Q8)
            snprintf(shape, sizeof shape, "Tq%zu_Tk%zu_d%zu_h%zu", c->a, c->b, c->c, c->d);
        else if (c->op == OP_GROUPNORM)
            snprintf(shape, sizeof shape, "64x64x%zu_G%zu", c->b, c->c);
        else if (c->op == OP_SOFTMAX_Q8)
            snprintf(shape, sizeof shape, "rows%zu_keys%zu", c->a, c->b);
        else
            snprintf(shape, sizeof shape, "%zux%zu%s", c->a, c->b, c->op == OP_GEGLU ? "x2" : "");
        double scalar_rate = 0;
        for (int isa = 0; isa < STDCPU_ISA_COUNT; isa++) {
            const stdcpu_kernels *kern = stdcpu_kernels_for_isa((stdcpu_isa)isa);
            if (!kern)
                continue;
            /* the scalar attention at 4096 keys: one head is enough for a rate */
            const size_t heads = c->op <= OP_ATTN_Q8 && isa == STDCPU_ISA_SCALAR && c->b > 1000 ? 1 : c->d;
            const rates r = measure(env, kern, c, &bf, heads);
            if (isa == STDCPU_ISA_SCALAR)
                scalar_rate = r.cpu;
            const double peak = c->op == OP_ATTN      ? env->peak_f32_gflops
                                : c->op == OP_ATTN_Q8 ? env->peak_i8_gops[isa]
                                                      : env->mem_bw_gbs;
            printf("BENCH kernel=%s isa=%s shape=%s threads=%d gops=%.2f peak_frac=%.3f vs_scalar=%.2f "
                   "gops_cpu=%.2f\n",
                   c->name, stdcpu_isa_name((stdcpu_isa)isa), shape, env->threads, r.wall,
                   peak > 0 ? r.cpu / peak : 0.0, scalar_rate > 0 ? r.cpu / scalar_rate : 0.0, r.cpu);
            fflush(stdout);
        }
    }
done:
    stdcpu_aligned_free(bf.x);
    stdcpu_aligned_free(bf.y);
    stdcpu_aligned_free(bf.q);
    stdcpu_aligned_free(bf.k);
    stdcpu_aligned_free(bf.v);
    stdcpu_aligned_free(bf.gamma);
    stdcpu_aligned_free(bf.beta);
}
