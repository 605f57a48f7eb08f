/* stdcpu-bench-pipeline: full-size random-weight SDXL and SD1.5 models built
 * from the real configs (../shared/golden/configs), timed network by network
 * and as whole recipes, against the machine's int8 peak measured in the same
 * run. One child process per model so each reports its own peak RSS.
 *
 *   stdcpu-bench-pipeline [--quick] [--threads N] [--configs DIR] [--models DIR] [--f32 | --f32-only]
 *                         [--only sdxl_base|sd15]
 *
 * --quick: one batch-2 SDXL UNet pass and one SD1.5 UNet pass at 512x512, int8.
 * Default: also text encoders, VAE encode/decode, the STD recipe at 512 and
 * 768 and the SD1.5 LCM recipe at 512, each with the full VAE and with the
 * tiny decoder (the models bundle a random TAESD), each with its own peak
 * RSS against the file; the SD1.5 UNet pass in f32 (the
 * int8 vs f32 ratio), TAESD encode/decode at 512 (the standard TAESD
 * configuration in bench/models/taesd_full) and the ViT-H/14 image encoder
 * of IP-Adapter SDXL, int8 and f32; --f32 adds whole f32 model runs
 * (weights dequantised at load: ~14 GiB for SDXL), --f32-only runs just those;
 * --extras runs only that last group (f32 SD1.5 pass, TAESD, ViT-H); --only
 * runs one model's group (for profiling one network).
 * Each int8 model's UNet pass also gets same-run A/Bs (int8 against f32
 * attention; the transformer fusions on against off, not with --quick), and
 * each recipe reports its UNet loop against the int8 peak probed between the
 * loop's own steps (unet_peak_frac_in_loop, the probes' time taken out). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/mem.h"
#include "bench.h"
#include "core/rng.h"
#include "core/stdm.h"
#include "pipeline/img2img.h"
#include "pipeline/stylize.h"
#include "simd/cpu.h"

typedef struct bench_opts {
    int quick, threads, f32, f32_only, extras_only;
    const char *only; /* --only sdxl_base|sd15: that model's runs only */
    const char *configs, *models, *convert;
} bench_opts;

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* Peak RSS of one phase: Linux (>= 4.0) resets VmHWM when "5" is written to
 * /proc/self/clear_refs. When it cannot, the peak is the process's so far,
 * and the lines say rss_scope=process. */
static int rss_peak_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return 0;
    const int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static double rss_hwm_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb >= 0 ? kb / 1024.0 : peak_rss_mib();
}

/* The source tree (bench/models): $STDCPU_SRCDIR, else where it was built from. */
static const char *srcdir(void)
{
    const char *e = getenv("STDCPU_SRCDIR");
    return e && *e ? e : STDCPU_BENCH_SRCDIR;
}

static double file_mib(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / (1 << 20) : 0;
}

static float *randn_buf(size_t n, uint64_t stream)
{
    float *x = stdcpu_aligned_alloc(n * sizeof(float));
    if (x)
        stdcpu_randn(12345, stream, 0, x, n);
    return x;
}

/* The current timed region (region_begin): its steal mark and the int8
 * peak measured just before it. */
static bench_steal region_mark;
static double region_peak_before, region_peak_last;

static double region_begin(const bench_env *env)
{
    region_peak_before = bench_peak_i8_now(env);
    region_mark = bench_steal_now();
    return bench_now();
}

/* The int8 peak around the region: the mean of a measurement just before
 * it and one now (call after the region's clock is read). */
static double region_peak(const bench_env *env)
{
    const double after = bench_peak_i8_now(env);
    return region_peak_before > 0 && after > 0 ? 0.5 * (region_peak_before + after) : after;
}

/* A wall-clock rate corrected for the time the hypervisor did not run us
 * (the peaks are taken over each thread's own CPU time, which excludes it). */
static double unstolen(double frac, double steal)
{
    return steal >= 0 && steal < 0.95 ? frac / (1.0 - steal) : frac;
}

/* "BENCH name=.. ... gops=.. peak_frac=.. steal=.." for one timed region:
 * peak_frac against the peak measured when the program started,
 * peak_frac_unstolen = peak_frac / (1 - steal), peak_frac_local against the
 * peak measured around the region (region_peak). */
static void report(const char *name, const char *model, const char *prec, const char *shape, double s,
                   uint64_t ops, const bench_env *env)
{
    const double gops = s > 0 ? (double)ops / s * 1e-9 : 0;
    const stdcpu_isa isa = stdcpu_isa_active();
    const double peak = env->peak_i8_gops[isa] > 0 ? env->peak_i8_gops[isa] : env->peak_f32_gflops;
    const double steal = bench_steal_frac(region_mark), frac = peak > 0 ? gops / peak : 0;
    const double local = region_peak_last = region_peak(env);
    printf("BENCH name=%s model=%s precision=%s isa=%s threads=%d shape=%s seconds=%.3f gops=%.1f peak_frac=%.3f "
           "rss_mib=%.0f steal=%.2f peak_frac_unstolen=%.3f peak_local=%.0f peak_frac_local=%.3f\n",
           name, model, prec, stdcpu_isa_name(isa), env->threads, shape, s, gops, frac, peak_rss_mib(), steal,
           unstolen(frac, steal), local, local > 0 ? gops / local : 0);
    fflush(stdout);
}

/* Times UNet passes on random inputs. ab == AB_NONE: one pass (after a
 * warm-up pass unless --quick), reported as `unet_pass`. Otherwise passes
 * alternate between two settings (2 or 4 of each) after a warm-up, each
 * pass's time scaled by (1 - its steal), the best of each reported with
 * their ratio (seconds = time run): the gain of a feature measured in the
 * same run, which survives this VM's drifting speed better than two runs do.
 *   AB_ATTN: int8 against f32 attention (unet_pass_attn_int8 / _f32,
 *            attn_int8_gain);
 *   AB_FUSE: the transformer blocks' fusions (LayerNorms folded into the
 *            next layer, the fused feed-forward) against every op on its
 *            own (unet_pass_fused / _unfused, fusion_gain).
 * Switching either drops the UNet's activation plan, so every A/B pass also
 * plans and maps its arena (the same in both arms). */
/* Per-block times of a pass through the UNet's taps (the time between two
 * taps is one block: "conv_in", "down_0", ..., "mid", "up_0", ...). */
#define BLOCKS_MAX 24
typedef struct {
    stdcpu_pool *pool;
    double t;
    uint64_t ops;
    int n;
    char name[BLOCKS_MAX][16];
    double s[BLOCKS_MAX];
    uint64_t o[BLOCKS_MAX];
} block_times;

static void block_tap(void *user, const char *name, const float *x, size_t B, size_t h, size_t w, size_t c)
{
    (void)x, (void)B, (void)h, (void)w, (void)c;
    block_times *bt = user;
    const double t = bench_now();
    const uint64_t ops = stdcpu_pool_ops(bt->pool);
    if (bt->n < BLOCKS_MAX) {
        snprintf(bt->name[bt->n], sizeof bt->name[0], "%s", name);
        bt->s[bt->n] = t - bt->t;
        bt->o[bt->n] = ops - bt->ops;
        bt->n++;
    }
    bt->t = t;
    bt->ops = ops;
}

/* One `unet_block` line per block: its share of the pass and its GOPS
 * against the whole pass's (vs_pass): where the pass is below its average. */
static void report_blocks(const block_times *bt, const char *model, const char *shape, double pass_s,
                          uint64_t pass_ops)
{
    const double pass_gops = pass_s > 0 ? (double)pass_ops / pass_s * 1e-9 : 0;
    for (int i = 0; i < bt->n; i++) {
        const double gops = bt->s[i] > 0 ? (double)bt->o[i] / bt->s[i] * 1e-9 : 0;
        printf("BENCH name=unet_block model=%s shape=%s block=%s ms=%.1f gop=%.1f gops=%.1f share=%.3f "
               "vs_pass=%.2f\n",
               model, shape, bt->name[i], bt->s[i] * 1e3, (double)bt->o[i] * 1e-9, gops,
               pass_s > 0 ? bt->s[i] / pass_s : 0, pass_gops > 0 ? gops / pass_gops : 0);
    }
}

enum { AB_NONE, AB_ATTN, AB_FUSE };
static int unet_pass(const stdcpu_sd_nets *n, const char *model, const char *prec, int batch, int latent, int ab,
                     const bench_env *env)
{
    stdcpu_unet_info ui;
    stdcpu_unet_get_info(n->unet, &ui);
    const size_t B = (size_t)batch, h = (size_t)latent, nlat = B * ui.in_channels * h * h;
    float *x = randn_buf(nlat, 1), *out = stdcpu_aligned_alloc(nlat * sizeof(float));
    float *ctx = randn_buf(B * 77 * ui.cross_attention_dim, 2);
    float *te = ui.text_time ? randn_buf(B * ui.text_embeds_dim, 3) : NULL;
    float tid[12] = {512, 512, 0, 0, 512, 512, 512, 512, 0, 0, 512, 512};
    stdcpu_unet_inputs in;
    memset(&in, 0, sizeof in);
    in.batch = B;
    in.height = in.width = h;
    in.sample = x;
    in.timestep = 739;
    in.context = ctx;
    in.context_tokens = 77;
    in.text_embeds = te;
    in.time_ids = ui.text_time ? tid : NULL;
    stdcpu_error err;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d", batch, (int)ui.in_channels, latent, latent);
    /* A/B: 2 (SDXL) or 4 (SD1.5) passes of each; single passes swing by 30%+ here */
    const int passes = ab ? 1 + 2 * (batch > 1 ? 2 : 4) : (env->quick ? 1 : 2);
    double best[2] = {1e30, 1e30};
    uint64_t ops[2] = {0, 0};
    int rc = 0;
    size_t min_keys = 0;
    const stdcpu_precision attn_default = stdcpu_unet_attention_precision(n->unet, &min_keys);
    block_times bt_run, bt_best;
    memset(&bt_best, 0, sizeof bt_best);
    if (!ab) {
        in.tap = block_tap;
        in.tap_user = &bt_run;
    }
    region_begin(env);
    for (int rep = 0; rep < passes && !rc; rep++) {
        /* A/B: warm-up (arm 0), then arm 1, arm 0, arm 1, ... */
        const int arm = ab && rep % 2 == 1;
        if (ab == AB_ATTN)
            stdcpu_unet_set_attention_precision(n->unet, arm ? STDCPU_PREC_F32 : STDCPU_PREC_INT8, min_keys);
        else if (ab == AB_FUSE)
            stdcpu_unet_set_fusion(n->unet, !arm);
        stdcpu_pool_reset_ops(env->pool);
        const bench_steal mark = bench_steal_now();
        const double t0 = bench_now();
        bt_run = (block_times){.pool = env->pool, .t = t0};
        if (stdcpu_unet_forward(n->unet, env->pool, &in, out, &err) != STDCPU_OK) {
            fprintf(stderr, "unet: %s\n", err.msg);
            rc = 1;
            break;
        }
        double t = bench_now() - t0;
        const double st = bench_steal_frac(mark);
        if (ab && st >= 0 && st < 0.95)
            t *= 1.0 - st; /* A/B: compare the time we actually ran */
        if (ab && rep == 0)
            continue;
        if (t < best[arm]) {
            best[arm] = t;
            ops[arm] = stdcpu_pool_ops(env->pool);
            bt_best = bt_run;
        }
    }
    if (ab == AB_ATTN)
        stdcpu_unet_set_attention_precision(n->unet, attn_default, min_keys);
    else if (ab == AB_FUSE)
        stdcpu_unet_set_fusion(n->unet, 1);
    if (!rc && ab) {
        const char *arms[2][3] = {{"unet_pass_attn_int8", "unet_pass_attn_f32", "attn_int8_gain"},
                                  {"unet_pass_fused", "unet_pass_unfused", "fusion_gain"}};
        const char *const *a = arms[ab == AB_FUSE];
        report(a[0], model, prec, shape, best[0], ops[0], env);
        report(a[1], model, prec, shape, best[1], ops[1], env);
        printf("BENCH name=%s model=%s shape=%s unet_speedup=%.3f steal=%.2f\n", a[2], model, shape,
               best[1] / best[0], bench_steal_frac(region_mark));
    } else if (!rc) {
        report("unet_pass", model, prec, shape, best[0], ops[0], env);
        if (!env->quick)
            report_blocks(&bt_best, model, shape, best[0], ops[0]);
    }
    stdcpu_aligned_free(x);
    stdcpu_aligned_free(out);
    stdcpu_aligned_free(ctx);
    stdcpu_aligned_free(te);
    return rc;
}

static int vae_and_text(const stdcpu_sd_nets *n, const char *model, const char *prec, const bench_env *env)
{
    stdcpu_error err;
    const stdcpu_vae_config *vc = stdcpu_vae_get_config(n->vae);
    const size_t S = 512, f = (size_t)stdcpu_vae_scale_factor(vc), lc = (size_t)vc->latent_channels;
    float *img = randn_buf(3 * S * S, 4), *mom = stdcpu_aligned_alloc(2 * lc * (S / f) * (S / f) * sizeof(float));
    int rc = 0;
    stdcpu_pool_reset_ops(env->pool);
    double t0 = region_begin(env);
    if (stdcpu_vae_encode(n->vae, env->pool, img, 1, S, S, mom, &err) != STDCPU_OK)
        rc = fprintf(stderr, "vae encode: %s\n", err.msg) > 0;
    else
        report("vae_encode", model, prec, "1x3x512x512", bench_now() - t0, stdcpu_pool_ops(env->pool), env);
    stdcpu_pool_reset_ops(env->pool);
    t0 = region_begin(env);
    if (!rc && stdcpu_vae_decode(n->vae, env->pool, mom, 1, S / f, S / f, img, &err) != STDCPU_OK)
        rc = fprintf(stderr, "vae decode: %s\n", err.msg) > 0;
    else if (!rc)
        report("vae_decode", model, prec, "1x4x64x64", bench_now() - t0, stdcpu_pool_ops(env->pool), env);
    if (!rc && !strcmp(prec, "int8")) { /* the price of the f16 activation maps int8 models use */
        stdcpu_vae_set_maps_f16(n->vae, 0);
        stdcpu_pool_reset_ops(env->pool);
        t0 = region_begin(env);
        if (stdcpu_vae_decode(n->vae, env->pool, mom, 1, S / f, S / f, img, &err) != STDCPU_OK)
            rc = fprintf(stderr, "vae decode: %s\n", err.msg) > 0;
        else
            report("vae_decode_f32maps", model, prec, "1x4x64x64", bench_now() - t0, stdcpu_pool_ops(env->pool), env);
        printf("BENCH name=vae_decode_activation_bytes model=%s shape=1x4x64x64 f32maps_mib=%.0f ",
               model, stdcpu_vae_decode_peak_bytes(n->vae, 1, S / f, S / f) / 1048576.0);
        stdcpu_vae_set_maps_f16(n->vae, 1);
        printf("f16maps_mib=%.0f\n", stdcpu_vae_decode_peak_bytes(n->vae, 1, S / f, S / f) / 1048576.0);
    }
    stdcpu_aligned_free(img);
    stdcpu_aligned_free(mom);
    /* text encoders at batch 2 (CFG) x 77 tokens */
    int64_t ids[2 * 77];
    for (int i = 0; i < 2 * 77; i++)
        ids[i] = i % 77 == 0 ? 49406 : i % 77 < 20 ? 320 + i % 77 : 49407;
    stdcpu_clip *encs[2] = {n->te1, n->te2};
    for (int e = 0; e < 2 && !rc; e++) {
        if (!encs[e])
            continue;
        const size_t H = stdcpu_clip_get_config(encs[e])->hidden;
        float *hid = stdcpu_aligned_alloc(2 * 77 * H * sizeof(float));
        stdcpu_clip_out o;
        memset(&o, 0, sizeof o);
        o.hidden = hid;
        o.hidden_index = -2;
        stdcpu_pool_reset_ops(env->pool);
        t0 = region_begin(env);
        if (stdcpu_clip_text_forward(encs[e], env->pool, ids, 2, 77, &o, &err) != STDCPU_OK)
            rc = fprintf(stderr, "text encoder: %s\n", err.msg) > 0;
        else
            report(e ? "text_encoder_2" : "text_encoder", model, prec, "2x77", bench_now() - t0,
                   stdcpu_pool_ops(env->pool), env);
        stdcpu_aligned_free(hid);
    }
    return rc;
}

/* The int8 peak probed at every progress call of the UNet loop (as it
 * starts and after each step): the VM's speed drifts within seconds, and a
 * peak measured before and after a whole recipe (encode, loop, decode) can
 * land in other phases than the loop. The probes' own time is taken out of
 * the loop's. */
typedef struct {
    const bench_env *env;
    double seconds, sum;
    int n;
} loop_probe;

static void probe_progress(void *user, const char *phase, int done, int total)
{
    (void)done, (void)total;
    loop_probe *p = user;
    if (strcmp(phase, "unet") != 0)
        return;
    const double t0 = bench_now(), pk = bench_peak_i8_now(p->env);
    p->seconds += bench_now() - t0;
    if (pk > 0) {
        p->sum += pk;
        p->n++;
    }
}

/* One whole recipe with the full VAE or the tiny decoder; its own peak RSS
 * against the model file. */
static int recipe(stdcpu_model *m, const char *model, const char *prec, int size, int tiny, double file,
                  const bench_env *env)
{
    stdcpu_image in;
    stdcpu_error err;
    if (stdcpu_image_alloc(&in, size, size, &err) != STDCPU_OK)
        return 1;
    for (size_t i = 0; i < (size_t)size * size * 3; i++)
        in.rgb[i] = (uint8_t)((i * 2654435761u) >> 24);
    stdcpu_stylize_opts o;
    stdcpu_stylize_defaults(m, &o);
    o.long_side = size;
    o.seed = 1;
    o.tiny_decoder = tiny;
    loop_probe probe = {.env = env};
    o.progress = probe_progress;
    o.progress_user = &probe;
    stdcpu_image out;
    stdcpu_stylize_report rep;
    const char *scope = rss_peak_reset() ? "recipe" : "process";
    stdcpu_pool_reset_ops(env->pool);
    const double t0 = region_begin(env);
    stdcpu_status s = stdcpu_stylize(m, env->pool, &in, &o, &out, &rep, &err);
    const double total = bench_now() - t0 - probe.seconds;
    stdcpu_image_free(&in);
    if (s != STDCPU_OK) {
        fprintf(stderr, "recipe: %s\n", err.msg);
        return 1;
    }
    stdcpu_image_free(&out);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", rep.work_width, rep.work_height);
    const double rss = rss_hwm_mib();
    report(tiny ? "recipe_total_tiny" : "recipe_total", model, prec, shape, total, stdcpu_pool_ops(env->pool), env);
    /* the UNet loop's own throughput (the probes' time taken out), against
     * the int8 peak of this run */
    const double unet_s = rep.seconds_unet - probe.seconds;
    const double ugops = unet_s > 0 ? (double)rep.unet_ops / unet_s * 1e-9 : 0;
    const double pk_loop = probe.n > 0 ? probe.sum / probe.n : 0;
    const double pk = env->peak_i8_gops[stdcpu_isa_active()];
    printf("BENCH name=recipe_phases model=%s precision=%s decoder=%s shape=%s steps=%d unet_evals=%d text_s=%.3f "
           "encode_s=%.3f unet_s=%.3f decode_s=%.3f total_s=%.3f unet_gops=%.1f unet_peak_frac=%.3f rss_mib=%.0f "
           "file_mib=%.0f rss_over_file=%.2f rss_scope=%s steal=%.2f unet_peak_frac_unstolen=%.3f "
           "unet_peak_frac_local=%.3f unet_peak_in_loop=%.0f unet_peak_frac_in_loop=%.3f probes=%d probe_s=%.2f\n",
           model, prec, tiny ? "tiny" : "vae", shape, rep.unet_steps, rep.unet_evals, rep.seconds_text,
           rep.seconds_encode, unet_s, rep.seconds_decode, total, ugops, pk > 0 ? ugops / pk : 0, rss, file,
           file > 0 ? rss / file : 0, scope, bench_steal_frac(region_mark),
           unstolen(pk > 0 ? ugops / pk : 0, bench_steal_frac(region_mark)),
           region_peak_last > 0 ? ugops / region_peak_last : 0, pk_loop, pk_loop > 0 ? ugops / pk_loop : 0, probe.n, probe.seconds);
    fflush(stdout);
    return 0;
}

/* TAESD or the ViT-H image encoder from a .stdm holding that component only. */
static int bench_component(const char *path, const char *comp, stdcpu_precision p, int threads)
{
    bench_env env;
    memset(&env, 0, sizeof env);
    env.threads = threads > 0 ? threads : stdcpu_default_threads();
    stdcpu_error err;
    if (stdcpu_pool_create(&env.pool, env.threads, &err) != STDCPU_OK)
        return 1;
    bench_measure_peaks(&env);
    stdcpu_stdm *m;
    stdcpu_wsrc *w;
    if (stdcpu_stdm_open(&m, path, &err) != STDCPU_OK || stdcpu_wsrc_open_stdm(&w, m, comp, &err) != STDCPU_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    const char *prec = stdcpu_precision_name(p);
    int rc = 0;
    if (!strcmp(comp, "taesd")) {
        stdcpu_taesd *t;
        if (stdcpu_taesd_load_diffusers(&t, w, p, &err) != STDCPU_OK) {
            fprintf(stderr, "taesd: %s\n", err.msg);
            return 1;
        }
        const size_t S = 512, f = (size_t)stdcpu_taesd_encoder_factor(t);
        float *img = randn_buf(3 * S * S, 5), *lat = stdcpu_aligned_alloc(4 * (S / f) * (S / f) * sizeof(float));
        for (int dir = 0; dir < 2 && !rc; dir++) {
            stdcpu_pool_reset_ops(env.pool);
            const double t0 = region_begin(&env);
            stdcpu_status s = dir == 0 ? stdcpu_taesd_encode(t, env.pool, img, 1, S, S, STDCPU_RANGE_PM1, lat, &err)
                                       : stdcpu_taesd_decode(t, env.pool, lat, 1, S / f, S / f, STDCPU_RANGE_PM1, img,
                                                             &err);
            if (s != STDCPU_OK)
                rc = fprintf(stderr, "taesd: %s\n", err.msg) > 0;
            else
                report(dir ? "taesd_decode" : "taesd_encode", "taesd", prec, dir ? "1x4x64x64" : "1x3x512x512",
                       bench_now() - t0, stdcpu_pool_ops(env.pool), &env);
        }
        stdcpu_aligned_free(img);
        stdcpu_aligned_free(lat);
        stdcpu_taesd_free(t);
    } else {
        stdcpu_clip *c;
        if (stdcpu_clip_load(&c, w, p, &err) != STDCPU_OK) {
            fprintf(stderr, "image encoder: %s\n", err.msg);
            return 1;
        }
        const size_t S = stdcpu_clip_get_config(c)->image_size;
        float *px = randn_buf(3 * S * S, 6), *emb = stdcpu_aligned_alloc(stdcpu_clip_projection_dim(c) * sizeof(float));
        stdcpu_clip_out o;
        memset(&o, 0, sizeof o);
        o.embeds = emb;
        for (int rep = 0; rep < 2 && !rc; rep++) { /* warm-up, then timed */
            stdcpu_pool_reset_ops(env.pool);
            const double t0 = region_begin(&env);
            if (stdcpu_clip_vision_forward(c, env.pool, px, 1, &o, &err) != STDCPU_OK)
                rc = fprintf(stderr, "image encoder: %s\n", err.msg) > 0;
            else if (rep == 1)
                report("image_encoder", "vit_h14", prec, "1x3x224x224", bench_now() - t0, stdcpu_pool_ops(env.pool),
                       &env);
        }
        stdcpu_aligned_free(px);
        stdcpu_aligned_free(emb);
        stdcpu_clip_free(c);
    }
    stdcpu_wsrc_close(w);
    stdcpu_stdm_close(m);
    stdcpu_pool_destroy(env.pool);
    return rc;
}

/* Runs in a child: one model, one precision. */
static int bench_model(const bench_opts *bo, const char *path, const char *model, stdcpu_precision p, int only_unet)
{
    bench_env env;
    memset(&env, 0, sizeof env);
    env.threads = bo->threads > 0 ? bo->threads : stdcpu_default_threads();
    env.quick = bo->quick;
    stdcpu_error err;
    if (stdcpu_pool_create(&env.pool, env.threads, &err) != STDCPU_OK)
        return 1;
    bench_measure_peaks(&env);
    const double t0 = bench_now();
    stdcpu_model *m;
    if (stdcpu_model_open(&m, path, p, &err) != STDCPU_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    const char *prec = stdcpu_precision_name(p);
    printf("BENCH name=model_open model=%s precision=%s seconds=%.3f file_mib=%.0f rss_mib=%.0f\n", model, prec,
           bench_now() - t0, file_mib(path), peak_rss_mib());
    const stdcpu_sd_nets *n = stdcpu_model_nets(m);
    const int sdxl = n->te2 != NULL;
    int rc = unet_pass(n, model, prec, sdxl ? 2 : 1, 64, AB_NONE, &env);
    if (!rc && p == STDCPU_PREC_INT8)
        rc = unet_pass(n, model, prec, sdxl ? 2 : 1, 64, AB_ATTN, &env);
    if (!rc && p == STDCPU_PREC_INT8 && !bo->quick)
        rc = unet_pass(n, model, prec, sdxl ? 2 : 1, 64, AB_FUSE, &env);
    if (!rc && !bo->quick && !only_unet) {
        rc = vae_and_text(n, model, prec, &env);
        /* 512 (and 768 for SDXL), full VAE then TAESD */
        const int n_sizes = sdxl ? 2 : 1;
        for (int si = 0; si < n_sizes && !rc; si++)
            for (int tiny = 0; tiny < (n->taesd ? 2 : 1) && !rc; tiny++)
                rc = recipe(m, model, prec, si ? 768 : 512, tiny, file_mib(path), &env);
    }
    printf("BENCH name=peak_rss model=%s precision=%s rss_mib=%.0f file_mib=%.0f rss_over_file=%.2f\n", model, prec,
           peak_rss_mib(), file_mib(path), file_mib(path) > 0 ? peak_rss_mib() / file_mib(path) : 0);
    stdcpu_model_close(m);
    stdcpu_pool_destroy(env.pool);
    return rc;
}

/* <models>/cfg_<cfg>_taesd: links to every folder of the real config plus
 * our standard TAESD config as taesd/, so the model bundles a tiny decoder. */
static int config_with_taesd(const bench_opts *bo, const char *cfg, char *dir, size_t cap)
{
    char src[4200], real[4096], tiny[4200];
    snprintf(dir, cap, "%s/cfg_%s_taesd", bo->models, cfg);
    snprintf(src, sizeof src, "%s/%s", bo->configs, cfg);
    snprintf(tiny, sizeof tiny, "%s/bench/models/taesd_full/taesd",
             srcdir());
    mkdir(dir, 0755);
    const char *subs[] = {"scheduler", "text_encoder", "text_encoder_2", "unet", "vae", "taesd"};
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        char from[4400], to[4400];
        snprintf(from, sizeof from, "%s/%s", i == 5 ? tiny : src, i == 5 ? "" : subs[i]);
        snprintf(to, sizeof to, "%s/%s", dir, subs[i]);
        struct stat st;
        if (stat(from, &st) != 0) {
            if (i == 5)
                return fprintf(stderr, "no TAESD config at %s (set STDCPU_SRCDIR)\n", from), -1;
            continue; /* SD1.5 has no text_encoder_2 */
        }
        if (!realpath(from, real))
            return -1;
        unlink(to);
        if (symlink(real, to) != 0)
            return perror(to), -1;
    }
    return 0;
}

static int ensure_model(const bench_opts *bo, const char *cfg, const char *out)
{
    struct stat st;
    if (stat(out, &st) == 0)
        return 0;
    char cmd[12800], cdir[4300];
    if (strstr(out, "_taesd_")) {
        if (config_with_taesd(bo, cfg, cdir, sizeof cdir))
            return -1;
    } else {
        snprintf(cdir, sizeof cdir, "%s/%s", bo->configs, cfg);
    }
    snprintf(cmd, sizeof cmd, "'%s' -q --random '%s' -o '%s'", bo->convert, cdir, out);
    fprintf(stderr, "building %s (once): %s\n", out, cmd);
    const double t0 = bench_now();
    const int rc = system(cmd);
    printf("BENCH name=convert_random config=%s seconds=%.1f file_mib=%.0f\n", cfg, bench_now() - t0, file_mib(out));
    return rc;
}

/* A benchmark child's end: _exit skips stdio's flush, so lines printed
 * without fflush (the peak_rss summary, the A/B gain) were lost. */
static void child_exit(int rc)
{
    fflush(stdout);
    _exit(rc);
}

int main(int argc, char **argv)
{
    bench_opts bo = {0};
    const char *shared = getenv("STDCPU_SHARED");
    static char cfgbuf[4096], convbuf[4096];
    if (shared && *shared)
        snprintf(cfgbuf, sizeof cfgbuf, "%s/golden/configs", shared);
    else
        snprintf(cfgbuf, sizeof cfgbuf, "%s/../shared/golden/configs", srcdir());
    bo.configs = cfgbuf;
    bo.models = "/tmp/stdcpu-bench-models";
    snprintf(convbuf, sizeof convbuf, "%s/stdcpu-convert", getenv("STDCPU_BUILDDIR") ? getenv("STDCPU_BUILDDIR") : ".");
    bo.convert = convbuf;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            bo.quick = 1;
        else if (!strcmp(argv[i], "--f32"))
            bo.f32 = 1;
        else if (!strcmp(argv[i], "--f32-only"))
            bo.f32 = bo.f32_only = 1;
        else if (!strcmp(argv[i], "--extras"))
            bo.extras_only = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            bo.only = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            bo.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--configs") && i + 1 < argc)
            bo.configs = argv[++i];
        else if (!strcmp(argv[i], "--models") && i + 1 < argc)
            bo.models = argv[++i];
        else if (!strcmp(argv[i], "--convert") && i + 1 < argc)
            bo.convert = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick | --extras] [--f32 | --f32-only] [--only sdxl_base|sd15] [--threads N] "
                    "[--configs DIR] [--models DIR] [--convert PATH]\n", argv[0]);
            return 2;
        }
    }
    bench_print_machine();
    struct stat st;
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/sdxl_base/unet/config.json", bo.configs);
    if (stat(probe, &st) != 0) {
        printf("BENCH skipped=no_configs configs=%s\n", bo.configs);
        return 0;
    }
    mkdir(bo.models, 0755);
    const char *names[2] = {"sdxl_base", "sd15"};
    for (int k = 0; k < (bo.extras_only ? 0 : 2); k++) {
        if (bo.only && strcmp(bo.only, names[k]))
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s_taesd_random_int8.stdm", bo.models, names[k]);
        if (ensure_model(&bo, names[k], path) != 0) {
            fprintf(stderr, "cannot build %s\n", path);
            return 1;
        }
        for (int f = bo.f32_only; f < (bo.f32 ? 2 : 1); f++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0)
                child_exit(bench_model(&bo, path, names[k], f ? STDCPU_PREC_F32 : STDCPU_PREC_INT8, 0));
            int status = 0;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "benchmark of %s failed\n", path);
                return 1;
            }
        }
    }
    if (bo.quick || bo.f32_only)
        return 0;
    /* f32 SD1.5 UNet pass (int8 vs f32), TAESD, ViT-H: each in a child */
    static const struct {
        const char *cfg, *file, *comp;
    } parts[] = {{NULL, "sd15_taesd_random_int8.stdm", NULL},
                 {"taesd_full", "taesd_random.stdm", "taesd"},
                 {"ip_adapter_sdxl_vit-h", "vit_h_random.stdm", "image_encoder"}};
    for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", bo.models, parts[k].file);
        if (parts[k].cfg) {
            bench_opts b2 = bo;
            static char local[4200];
            if (!strcmp(parts[k].cfg, "taesd_full")) { /* our own config, next to this program's sources */
                snprintf(local, sizeof local, "%s/bench/models", srcdir());
                b2.configs = local;
            }
            if (ensure_model(&b2, parts[k].cfg, path) != 0)
                return 1;
        }
        for (int f = 0; f < 2; f++) {
            if (!parts[k].comp && !f)
                continue; /* the int8 SD1.5 run is above */
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0)
                child_exit(parts[k].comp ? bench_component(path, parts[k].comp, f ? STDCPU_PREC_F32 : STDCPU_PREC_INT8,
                                                      bo.threads)
                                    : bench_model(&bo, path, "sd15", STDCPU_PREC_F32, 1));
            int status = 0;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "benchmark of %s failed\n", path);
                return 1;
            }
        }
    }
    return 0;
}
