/* Activation maps of the VAE: the stack block, f32/bf16 storage, GroupNorm
 * statistics and convolutions in bands of rows. See vae_maps.h. */
#include "config.h"

#include "nn/vae_maps.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/ops_nn.h"
#include "simd/dispatch.h"

/* ---- the stack block ---------------------------------------------------------------- */

static _Alignas(64) unsigned char plan_dummy[64];

static void *vc_bytes(vctx *c, size_t n, size_t elem)
{
    size_t bytes;
    if (stdcpu_mul_size(n, elem, &bytes) || stdcpu_add_size(bytes, 63, &bytes)) {
        stdcpu_fail(c->err, STDCPU_ERR_LIMIT, "vae: activation size overflows");
        return NULL;
    }
    bytes &= ~(size_t)63;
    size_t end;
    if (stdcpu_add_size(c->used, bytes, &end) || end > c->cap) {
        stdcpu_fail(c->err, STDCPU_ERR_NOMEM, "vae: activation block of %zu bytes exhausted", c->cap);
        return NULL;
    }
    void *p = c->plan ? plan_dummy : c->base + c->used;
    c->used = end;
    if (end > c->peak)
        c->peak = end;
    return p;
}

/* Bytes of a map of n elements of C channels. */
static size_t map_bytes(const vctx *c, size_t n, size_t C, int *overflow)
{
    size_t b = 0;
    if (!c->f16)
        *overflow = stdcpu_mul_size(n, sizeof(float), &b);
    else /* C f16 values + one int16 exponent per pixel */
        *overflow = C == 0 || stdcpu_mul_size(n / C, (C + 1) * sizeof(uint16_t), &b);
    return *overflow ? 0 : b;
}

void *vc_map(vctx *c, size_t n, size_t C)
{
    int overflow;
    const size_t b = map_bytes(c, n, C, &overflow);
    if (overflow) {
        stdcpu_fail(c->err, STDCPU_ERR_LIMIT, "vae: activation size overflows");
        return NULL;
    }
    return vc_bytes(c, b, 1);
}

float *vc_f32(vctx *c, size_t n) { return vc_bytes(c, n, sizeof(float)); }
size_t vc_mark(const vctx *c) { return c->used; }
void vc_reset(vctx *c, size_t mark) { c->used = mark; }

size_t vc_below(const vctx *c, size_t n, size_t C)
{
    int overflow;
    return c->used - stdcpu_round_up(map_bytes(c, n, C, &overflow), 64);
}

void *vc_keep(vctx *c, size_t mark, const void *src, size_t n, size_t C)
{
    int overflow;
    void *dst = c->plan ? plan_dummy : c->base + mark;
    if (!c->plan && dst != src)
        memmove(dst, src, map_bytes(c, n, C, &overflow));
    vc_reset(c, mark);
    return vc_map(c, n, C); /* cannot fail: it fitted before */
}

/* ---- scaled f16 ------------------------------------------------------------------------ */

/* Serial conversions of np pixels (f16 maps). */
static void f16_load_px(size_t C, const uint16_t *src, size_t np, float *dst)
{
    const stdcpu_eltwise_kernels *k = &stdcpu_kernels_get()->eltwise;
    for (size_t i = 0; i < np; i++, src += C + 1, dst += C) {
        k->f16_to_f32(dst, src, C);
        int16_t e;
        memcpy(&e, src + C, sizeof e);
        if (e) {
            const float f = ldexpf(1.0f, e);
            for (size_t j = 0; j < C; j++)
                dst[j] *= f;
        }
    }
}

static void f16_store_px(size_t C, const float *src, size_t np, uint16_t *dst)
{
    const stdcpu_kernels *kern = stdcpu_kernels_get();
    float tmp[256];
    for (size_t i = 0; i < np; i++, src += C, dst += C + 1) {
        const float amax = kern->gemm.f32_absmax(src, C);
        int ex = 0;
        if (amax > 0.0f && isfinite(amax))
            (void)frexpf(amax, &ex); /* amax = m 2^ex, m in [0.5, 1): scaled into [2^14, 2^15) */
        const int16_t e = (int16_t)(amax > 0.0f && isfinite(amax) ? (ex - 15 < -100 ? -100 : ex - 15) : 0);
        if (!e) {
            kern->eltwise.f32_to_f16(dst, src, C);
        } else {
            const float f = ldexpf(1.0f, -e);
            for (size_t j0 = 0; j0 < C; j0 += 256) {
                const size_t m = C - j0 < 256 ? C - j0 : 256;
                for (size_t j = 0; j < m; j++)
                    tmp[j] = src[j0 + j] * f;
                kern->eltwise.f32_to_f16(dst + j0, tmp, m);
            }
        }
        memcpy(dst + C, &e, sizeof e);
    }
}

typedef struct conv_task {
    size_t C, np;
    const uint16_t *in16;
    uint16_t *out16;
    const float *in32;
    float *out32;
} conv_task;

static void conv_fn(void *arg, int ith, int nth)
{
    const conv_task *t = arg;
    size_t b, e;
    stdcpu_split_range(t->np, ith, nth, &b, &e);
    if (b >= e)
        return;
    if (t->in16)
        f16_load_px(t->C, t->in16 + b * (t->C + 1), e - b, t->out32 + b * t->C);
    else
        f16_store_px(t->C, t->in32 + b * t->C, e - b, t->out16 + b * (t->C + 1));
}

void vmap_load(const vctx *c, const void *map, size_t C, size_t p, size_t np, float *dst)
{
    if (!c->f16) {
        memcpy(dst, (const float *)map + p * C, np * C * sizeof(float));
        return;
    }
    conv_task t = {.C = C, .np = np, .in16 = (const uint16_t *)map + p * (C + 1), .out32 = dst};
    stdcpu_pool_run(c->pool, conv_fn, &t);
}

void vmap_store(const vctx *c, void *map, size_t C, size_t p, size_t np, const float *src)
{
    if (!c->f16) {
        memmove((float *)map + p * C, src, np * C * sizeof(float));
        return;
    }
    conv_task t = {.C = C, .np = np, .in32 = src, .out16 = (uint16_t *)map + p * (C + 1)};
    stdcpu_pool_run(c->pool, conv_fn, &t);
}

/* ---- GroupNorm statistics ------------------------------------------------------------ */

/* Pixels are split over a fixed number of workers whatever the thread count,
 * and the partial sums reduced in worker order: bit-identical results at any
 * count. */
#define GN_WORKERS 8
#define GN_CHUNK 64 /* pixels summed in f32 before going into the f64 accumulator */

typedef struct gn_stat_task {
    const vctx *c;
    const void *x;        /* the map; the batch item starts at pixel `base` */
    size_t base, P, C;
    double *part;         /* [GN_WORKERS][C] */
    float *buf;           /* [GN_WORKERS][GN_CHUNK * C]: widened chunks (bf16 maps) */
    const double *mean_c; /* second pass: the group mean per channel, NULL in the first */
} gn_stat_task;

static void gn_stat_range(const gn_stat_task *t, size_t b, size_t e, double *acc, float *buf)
{
    const size_t C = t->C;
    for (size_t ch = 0; ch < C; ch++)
        acc[ch] = 0.0;
    for (size_t p0 = b; p0 < e; p0 += GN_CHUNK) {
        const size_t p1 = p0 + GN_CHUNK < e ? p0 + GN_CHUNK : e;
        const float *x;
        if (!t->c->f16) {
            x = (const float *)t->x + (t->base + p0) * C;
        } else {
            f16_load_px(C, (const uint16_t *)t->x + (t->base + p0) * (C + 1), p1 - p0, buf); /* in a worker */
            x = buf;
        }
        for (size_t ch = 0; ch < C; ch++) {
            float s = 0.0f;
            if (t->mean_c) {
                const float m = (float)t->mean_c[ch];
                for (size_t p = 0; p < p1 - p0; p++) {
                    const float d = x[p * C + ch] - m;
                    s += d * d;
                }
            } else {
                for (size_t p = 0; p < p1 - p0; p++)
                    s += x[p * C + ch];
            }
            acc[ch] += s;
        }
    }
}

static void gn_stat_fn(void *arg, int ith, int nth)
{
    gn_stat_task *t = arg;
    for (int v = ith; v < GN_WORKERS; v += nth) {
        size_t b, e;
        stdcpu_split_range(t->P, v, GN_WORKERS, &b, &e);
        gn_stat_range(t, b, e, t->part + (size_t)v * t->C, t->buf ? t->buf + (size_t)v * GN_CHUNK * t->C : NULL);
    }
}

stdcpu_status vmap_gn_affine(vctx *c, const void *x, size_t B, size_t P, size_t C, size_t G, float eps,
                             const stdcpu_nn_norm *nm, float *scale, float *shift)
{
    if (c->plan)
        return STDCPU_OK;
    const size_t cpg = C / G;
    double *part = malloc(sizeof(double) * ((size_t)GN_WORKERS * C + 2 * C));
    float *buf = c->f16 ? malloc(sizeof(float) * GN_WORKERS * GN_CHUNK * C) : NULL;
    if (!part || (c->f16 && !buf)) {
        free(part);
        free(buf);
        return stdcpu_fail(c->err, STDCPU_ERR_NOMEM, "vae: out of memory");
    }
    double *mean_c = part + (size_t)GN_WORKERS * C, *tmp = mean_c + C;
    for (size_t b = 0; b < B; b++) {
        gn_stat_task t = {.c = c, .x = x, .base = b * P, .P = P, .C = C, .part = part, .buf = buf};
        for (int pass = 0; pass < 2; pass++) {
            stdcpu_pool_run_n(c->pool, c->nth, gn_stat_fn, &t);
            for (size_t ch = 0; ch < C; ch++) {
                double s = 0.0;
                for (int i = 0; i < GN_WORKERS; i++)
                    s += part[(size_t)i * C + ch];
                tmp[ch] = s;
            }
            for (size_t g = 0; g < G; g++) {
                double s = 0.0;
                for (size_t k = 0; k < cpg; k++)
                    s += tmp[g * cpg + k];
                s /= (double)(P * cpg);
                if (pass == 0) {
                    for (size_t k = 0; k < cpg; k++)
                        mean_c[g * cpg + k] = s;
                } else {
                    const double rstd = 1.0 / sqrt(s + (double)eps);
                    for (size_t k = 0; k < cpg; k++) {
                        const size_t ch = g * cpg + k;
                        const double sc = rstd * nm->gamma[ch];
                        scale[b * C + ch] = (float)sc;
                        shift[b * C + ch] = (float)(nm->beta[ch] - mean_c[ch] * sc);
                    }
                }
            }
            t.mean_c = mean_c;
        }
    }
    free(part);
    free(buf);
    return STDCPU_OK;
}

/* ---- rows of a virtual input ------------------------------------------------------------ */

typedef struct affine_task {
    const float *x; /* may equal y */
    float *y;
    size_t P, C;
    const float *scale, *shift;
} affine_task;

static void affine_fn(void *arg, int ith, int nth)
{
    affine_task *t = arg;
    size_t b, e;
    stdcpu_split_range(t->P, ith, nth, &b, &e);
    for (size_t p = b; p < e; p++) {
        const float *xr = t->x + p * t->C;
        float *yr = t->y + p * t->C;
        for (size_t ch = 0; ch < t->C; ch++)
            yr[ch] = xr[ch] * t->scale[ch] + t->shift[ch];
    }
}

/* Rows [r0, r1) of batch item b of the virtual input into dst [r1-r0, W, C]. */
static stdcpu_status vin_rows(vctx *c, const vin *in, size_t b, size_t r0, size_t r1, float *dst)
{
    const size_t W = in->W, C = in->C;
    if (in->kind != VIN_UP2) {
        const size_t p0 = (b * in->H + r0) * W;
        /* f32 maps feed the affine in place of a copy; f16 maps are widened first */
        const float *src = dst;
        if (in->kind == VIN_PLAIN || c->f16)
            vmap_load(c, in->x, C, p0, (r1 - r0) * W, dst);
        else
            src = (const float *)in->x + p0 * C;
        if (in->kind == VIN_PLAIN)
            return STDCPU_OK;
        affine_task t = {.x = src, .y = dst, .P = (r1 - r0) * W, .C = C, .scale = in->scale + b * C,
                         .shift = in->shift + b * C};
        stdcpu_pool_run(c->pool, affine_fn, &t);
        return stdcpu_activation(c->pool, NULL, STDCPU_ELT_SILU, dst, dst, (r1 - r0) * W * C, c->err);
    }
    const size_t Hs = in->H / 2, Ws = in->W / 2;
    for (size_t r = r0; r < r1; r++) {
        float *d = dst + (r - r0) * W * C;
        if (r > r0 && (r & 1)) { /* odd rows repeat the row above */
            memcpy(d, d - W * C, W * C * sizeof(float));
            continue;
        }
        vmap_load(c, in->x, C, (b * Hs + r / 2) * Ws, Ws, d + Ws * C); /* source row in the upper half */
        for (size_t x = 0; x < Ws; x++) {
            memcpy(d + 2 * x * C, d + (Ws + x) * C, C * sizeof(float));
            memmove(d + (2 * x + 1) * C, d + (Ws + x) * C, C * sizeof(float)); /* the same place when x = Ws-1 */
        }
    }
    return STDCPU_OK;
}

/* ---- banded convolutions ------------------------------------------------------------- */

static size_t band_rows(size_t budget, size_t row_bytes, size_t H)
{
    size_t R = budget / (row_bytes ? row_bytes : 1);
    return R < 1 ? 1 : R > H ? H : R;
}

#define VC_TRY_ALLOC(ptr, expr)                                            \
    do {                                                                   \
        if (!((ptr) = (expr)))                                             \
            return c->err ? c->err->status : STDCPU_ERR_NOMEM;             \
    } while (0)

stdcpu_status vmap_conv_bands(vctx *c, const stdcpu_conv2d_weight *cw, const vin *in, size_t B, void *dst,
                              int dst_f32, const void *res, const stdcpu_conv2d_weight *sc, const void *sx,
                              size_t sC)
{
    const size_t H = in->H, W = in->W, C = in->C, O = cw->out_ch, halo = cw->kh / 2;
    const int f32 = !c->f16;
    const int direct_in = in->kind == VIN_PLAIN && f32;      /* conv reads the map in place */
    const int direct_out = dst_f32 || f32;                    /* results go to dst as f32 */
    const int need_t2 = (sc != NULL) || (res && !f32);        /* shortcut / residual rows in f32 */
    size_t row_bytes = W * O * sizeof(float) * (need_t2 ? 2 : 1);
    if (!direct_in)
        row_bytes += W * C * sizeof(float);
    if (sc && !f32)
        row_bytes += W * sC * sizeof(float);
    const size_t R = band_rows(c->band_bytes, row_bytes, H);
    const size_t rows_max = R + 2 * halo < H ? R + 2 * halo : H;
    const size_t mark = vc_mark(c);
    float *tin = NULL, *tout, *t2 = NULL, *tsx = NULL;
    if (!direct_in)
        VC_TRY_ALLOC(tin, vc_f32(c, rows_max * W * C));
    VC_TRY_ALLOC(tout, vc_f32(c, rows_max * W * O));
    if (need_t2)
        VC_TRY_ALLOC(t2, vc_f32(c, R * W * O));
    if (sc && !f32)
        VC_TRY_ALLOC(tsx, vc_f32(c, R * W * sC));
    stdcpu_status st = STDCPU_OK;
    for (size_t b = 0; b < B && st == STDCPU_OK && !c->plan; b++) {
        for (size_t r0 = 0; r0 < H && st == STDCPU_OK; r0 += R) {
            const size_t r1 = r0 + R < H ? r0 + R : H;
            const size_t lo = r0 > halo ? r0 - halo : 0, hi = r1 + halo < H ? r1 + halo : H;
            const float *xin = direct_in ? (const float *)in->x + (b * H + lo) * W * C : tin;
            if (!direct_in && (st = vin_rows(c, in, b, lo, hi, tin)))
                break;
            if ((st = stdcpu_conv2d(c->pool, cw, xin, 1, hi - lo, W, 1, halo, tout, NULL, STDCPU_ACT_NONE,
                                    c->err)))
                break;
            float *band = tout + (r0 - lo) * W * O;
            const size_t n = (r1 - r0) * W * O, off = (b * H + r0) * W * O;
            if (sc) {
                const float *sxin = (const float *)sx + (b * H + r0) * W * sC;
                if (!f32) {
                    vmap_load(c, sx, sC, (b * H + r0) * W, (r1 - r0) * W, tsx);
                    sxin = tsx;
                }
                if ((st = stdcpu_conv2d(c->pool, sc, sxin, 1, r1 - r0, W, 1, 0, t2, NULL, STDCPU_ACT_NONE,
                                        c->err)) ||
                    (st = stdcpu_add(c->pool, NULL, band, t2, band, n, c->err)))
                    break;
            }
            if (res) {
                const float *rr = (const float *)res + off;
                if (!f32) {
                    vmap_load(c, res, O, (b * H + r0) * W, (r1 - r0) * W, t2);
                    rr = t2;
                }
                if (direct_out) {
                    st = stdcpu_add(c->pool, NULL, band, rr, (float *)dst + off, n, c->err);
                    continue;
                }
                if ((st = stdcpu_add(c->pool, NULL, band, rr, band, n, c->err)))
                    break;
            }
            if (direct_out)
                memcpy((float *)dst + off, band, n * sizeof(float));
            else
                vmap_store(c, dst, O, (b * H + r0) * W, (r1 - r0) * W, band);
        }
    }
    vc_reset(c, mark);
    return st;
}

stdcpu_status vmap_down2_bands(vctx *c, const stdcpu_conv2d_weight *cw, const void *x, size_t B, size_t H,
                               size_t W, void *dst)
{
    const size_t C = cw->in_ch, O = cw->out_ch, Ho = H / 2, Wo = W / 2, Wp = W + 1;
    /* per output row: two input rows (+1 shared) and one output row */
    const size_t R = band_rows(c->band_bytes, (2 * Wp * C + Wo * O) * sizeof(float), Ho);
    const size_t mark = vc_mark(c);
    float *tin, *tout;
    VC_TRY_ALLOC(tin, vc_f32(c, (2 * R + 1) * Wp * C));
    VC_TRY_ALLOC(tout, vc_f32(c, R * Wo * O));
    stdcpu_status st = STDCPU_OK;
    for (size_t b = 0; b < B && st == STDCPU_OK && !c->plan; b++) {
        for (size_t o0 = 0; o0 < Ho && st == STDCPU_OK; o0 += R) {
            const size_t o1 = o0 + R < Ho ? o0 + R : Ho, rows = 2 * (o1 - o0) + 1;
            for (size_t i = 0; i < rows; i++) {
                float *d = tin + i * Wp * C;
                const size_t r = 2 * o0 + i;
                if (r < H)
                    vmap_load(c, x, C, (b * H + r) * W, W, d);
                else
                    memset(d, 0, W * C * sizeof(float));
                memset(d + W * C, 0, C * sizeof(float));
            }
            if ((st = stdcpu_conv2d(c->pool, cw, tin, 1, rows, Wp, 2, 0, tout, NULL, STDCPU_ACT_NONE, c->err)))
                break;
            vmap_store(c, dst, O, (b * Ho + o0) * Wo, (o1 - o0) * Wo, tout);
        }
    }
    vc_reset(c, mark);
    return st;
}
