/* Resize (Pillow-exact and float modes), crop, float conversion. */
#include "config.h"

#include "io/imageops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

/* ---- filters (Pillow's definitions, libImaging/Resample.c) --------------- */

static double box_filter(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double triangle_filter(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double cubic_filter(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x *= 3.14159265358979323846; /* M_PI is not C11 */
    return sin(x) / x;
}

static double lanczos_filter(double x) { return x >= -3.0 && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0; }

typedef struct {
    double (*fn)(double);
    double support;
} filter_def;

/* Per output pixel: the first input index, the tap count, and ksize weights. */
typedef struct {
    int ksize;
    int *bounds;  /* [out][2] = first, count */
    double *kk;   /* [out][ksize] */
} coeffs;

static void coeffs_free(coeffs *c)
{
    free(c->bounds);
    free(c->kk);
}

/* Pillow's precompute_coeffs for the box (0, in_size): centre-sampled filter,
 * support scaled by the downscale factor, weights normalised to sum 1. */
static int filter_coeffs(int in_size, int out_size, filter_def f, coeffs *c)
{
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = f.support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    c->kk = malloc(sizeof(double) * (size_t)ksize * (size_t)out_size);
    if (!c->bounds || !c->kk)
        return -1;
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        double ss = 1.0 / filterscale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        double *k = c->kk + (size_t)xx * (size_t)ksize;
        int x;
        for (x = 0; x < xmax; x++) {
            double w = f.fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        for (; x < ksize; x++)
            k[x] = 0;
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    return 0;
}

/* Exact area weights: output pixel xx covers [xx*s, (xx+1)*s) of the input;
 * each input pixel [x, x+1) weighs by its overlap, normalised. */
static int area_coeffs(int in_size, int out_size, coeffs *c)
{
    double scale = (double)in_size / out_size;
    int ksize = (int)ceil(scale) + 2;
    c->ksize = ksize;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    c->kk = malloc(sizeof(double) * (size_t)ksize * (size_t)out_size);
    if (!c->bounds || !c->kk)
        return -1;
    for (int xx = 0; xx < out_size; xx++) {
        double lo = xx * scale, hi = (xx + 1) * scale;
        int xmin = (int)floor(lo), xend = (int)ceil(hi);
        if (xend > in_size)
            xend = in_size;
        if (xend - xmin > ksize)
            xend = xmin + ksize;
        double *k = c->kk + (size_t)xx * (size_t)ksize, ww = 0;
        int x;
        for (x = 0; x < xend - xmin; x++) {
            double a = fmax(lo, (double)(xmin + x)), b = fmin(hi, (double)(xmin + x + 1));
            k[x] = b > a ? b - a : 0.0;
            ww += k[x];
        }
        for (x = 0; x < xend - xmin; x++)
            k[x] /= ww;
        for (; x < ksize; x++)
            k[x] = 0;
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xend - xmin;
    }
    return 0;
}

/* ---- Pillow 8-bit passes ------------------------------------------------ */

#define PIL_PRECISION_BITS (32 - 8 - 2)

static int32_t *fixed_coeffs(const coeffs *c, int out_size)
{
    size_t n = (size_t)out_size * (size_t)c->ksize;
    int32_t *k = malloc(sizeof(int32_t) * (n ? n : 1));
    if (!k)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        double v = c->kk[i] * (1 << PIL_PRECISION_BITS);
        k[i] = (int32_t)(c->kk[i] < 0 ? -0.5 + v : 0.5 + v);
    }
    return k;
}

static uint8_t clip8(int64_t v)
{
    if (v < 0)
        return 0;
    v >>= PIL_PRECISION_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

/* dst [h][out_w][3] from src [h][in_w][3]. */
static void pil_pass_h(const uint8_t *src, int in_w, int h, uint8_t *dst, int out_w, const coeffs *c,
                       const int32_t *k)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)y * (size_t)in_w * 3;
        uint8_t *orow = dst + (size_t)y * (size_t)out_w * 3;
        for (int xx = 0; xx < out_w; xx++) {
            int xmin = c->bounds[2 * xx], n = c->bounds[2 * xx + 1];
            const int32_t *kx = k + (size_t)xx * (size_t)c->ksize;
            int64_t s0 = 1 << (PIL_PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < n; x++) {
                const uint8_t *p = row + (size_t)(xmin + x) * 3;
                s0 += p[0] * (int64_t)kx[x];
                s1 += p[1] * (int64_t)kx[x];
                s2 += p[2] * (int64_t)kx[x];
            }
            orow[3 * xx + 0] = clip8(s0);
            orow[3 * xx + 1] = clip8(s1);
            orow[3 * xx + 2] = clip8(s2);
        }
    }
}

/* dst [out_h][w][3] from src [in_h][w][3]; acc is scratch of w*3 sums.
 * Row by row (cache friendly); each sum still adds taps in order y = 0.. */
static void pil_pass_v(const uint8_t *src, int w, uint8_t *dst, int out_h, const coeffs *c, const int32_t *k,
                       int64_t *acc)
{
    size_t stride = (size_t)w * 3;
    for (int yy = 0; yy < out_h; yy++) {
        int ymin = c->bounds[2 * yy], n = c->bounds[2 * yy + 1];
        const int32_t *ky = k + (size_t)yy * (size_t)c->ksize;
        for (size_t i = 0; i < stride; i++)
            acc[i] = 1 << (PIL_PRECISION_BITS - 1);
        for (int y = 0; y < n; y++) {
            const uint8_t *row = src + (size_t)(ymin + y) * stride;
            int64_t kv = ky[y];
            for (size_t i = 0; i < stride; i++)
                acc[i] += row[i] * kv;
        }
        uint8_t *orow = dst + (size_t)yy * stride;
        for (size_t i = 0; i < stride; i++)
            orow[i] = clip8(acc[i]);
    }
}

/* ---- float passes -------------------------------------------------------- */

static void float_pass_h(const uint8_t *src, int in_w, int h, float *dst, int out_w, const coeffs *c)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)y * (size_t)in_w * 3;
        float *orow = dst + (size_t)y * (size_t)out_w * 3;
        for (int xx = 0; xx < out_w; xx++) {
            int xmin = c->bounds[2 * xx], n = c->bounds[2 * xx + 1];
            const double *kx = c->kk + (size_t)xx * (size_t)c->ksize;
            double s0 = 0, s1 = 0, s2 = 0;
            for (int x = 0; x < n; x++) {
                const uint8_t *p = row + (size_t)(xmin + x) * 3;
                s0 += p[0] * kx[x];
                s1 += p[1] * kx[x];
                s2 += p[2] * kx[x];
            }
            orow[3 * xx + 0] = (float)s0;
            orow[3 * xx + 1] = (float)s1;
            orow[3 * xx + 2] = (float)s2;
        }
    }
}

static uint8_t round_clamp8(double v)
{
    if (!(v > 0))
        return 0;
    if (v >= 255)
        return 255;
    return (uint8_t)(v + 0.5);
}

static void float_pass_v(const float *src, int w, uint8_t *dst, int out_h, const coeffs *c, double *acc)
{
    size_t stride = (size_t)w * 3;
    for (int yy = 0; yy < out_h; yy++) {
        int ymin = c->bounds[2 * yy], n = c->bounds[2 * yy + 1];
        const double *ky = c->kk + (size_t)yy * (size_t)c->ksize;
        for (size_t i = 0; i < stride; i++)
            acc[i] = 0;
        for (int y = 0; y < n; y++) {
            const float *row = src + (size_t)(ymin + y) * stride;
            for (size_t i = 0; i < stride; i++)
                acc[i] += row[i] * ky[y];
        }
        for (size_t i = 0; i < stride; i++)
            dst[(size_t)yy * stride + i] = round_clamp8(acc[i]);
    }
}

static int make_coeffs(stdcpu_resize_filter f, int in_size, int out_size, coeffs *c)
{
    static const filter_def box = {box_filter, 0.5}, tri = {triangle_filter, 1.0}, cub = {cubic_filter, 2.0},
                            lan = {lanczos_filter, 3.0};
    memset(c, 0, sizeof *c);
    switch (f) {
    case STDCPU_RESIZE_AREA: return area_coeffs(in_size, out_size, c);
    case STDCPU_RESIZE_BILINEAR:
    case STDCPU_RESIZE_PIL_BILINEAR: return filter_coeffs(in_size, out_size, tri, c);
    case STDCPU_RESIZE_BICUBIC:
    case STDCPU_RESIZE_PIL_BICUBIC: return filter_coeffs(in_size, out_size, cub, c);
    case STDCPU_RESIZE_PIL_LANCZOS: return filter_coeffs(in_size, out_size, lan, c);
    case STDCPU_RESIZE_PIL_BOX: return filter_coeffs(in_size, out_size, box, c);
    }
    return -1;
}

static int is_pil(stdcpu_resize_filter f)
{
    return f == STDCPU_RESIZE_PIL_BICUBIC || f == STDCPU_RESIZE_PIL_BILINEAR || f == STDCPU_RESIZE_PIL_LANCZOS ||
           f == STDCPU_RESIZE_PIL_BOX;
}

stdcpu_status stdcpu_image_resize(const stdcpu_image *src, int width, int height, stdcpu_resize_filter filter,
                                  stdcpu_image *dst, stdcpu_error *err)
{
    memset(dst, 0, sizeof *dst);
    if (!src || !src->rgb || src->width < 1 || src->height < 1)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "resize: empty source image");
    if ((unsigned)filter > STDCPU_RESIZE_PIL_BOX)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "resize: unknown filter %d", (int)filter);
    STDCPU_TRY(stdcpu_image_alloc(dst, width, height, err));
    int in_w = src->width, in_h = src->height;
    if (width == in_w && height == in_h) {
        memcpy(dst->rgb, src->rgb, (size_t)in_w * (size_t)in_h * 3);
        return STDCPU_OK;
    }
    coeffs ch, cv;
    int bad = make_coeffs(filter, in_w, width, &ch);
    bad |= make_coeffs(filter, in_h, height, &cv);
    stdcpu_status st = STDCPU_OK;
    if (bad) {
        st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "resize: out of memory");
    } else if (is_pil(filter)) {
        /* Pillow skips a pass whose size does not change (an exact identity). */
        int32_t *kh = fixed_coeffs(&ch, width), *kv = fixed_coeffs(&cv, height);
        int both = width != in_w && height != in_h;
        uint8_t *tmp = both ? malloc((size_t)width * (size_t)in_h * 3) : NULL;
        int64_t *acc = height != in_h ? malloc(sizeof(int64_t) * (size_t)width * 3) : NULL;
        if (!kh || !kv || (both && !tmp) || (height != in_h && !acc)) {
            st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "resize: out of memory");
        } else if (height == in_h) {
            pil_pass_h(src->rgb, in_w, in_h, dst->rgb, width, &ch, kh);
        } else if (width == in_w) {
            pil_pass_v(src->rgb, in_w, dst->rgb, height, &cv, kv, acc);
        } else {
            pil_pass_h(src->rgb, in_w, in_h, tmp, width, &ch, kh);
            pil_pass_v(tmp, width, dst->rgb, height, &cv, kv, acc);
        }
        free(kh);
        free(kv);
        free(tmp);
        free(acc);
    } else {
        float *tmp = malloc(sizeof(float) * (size_t)width * (size_t)in_h * 3);
        double *acc = malloc(sizeof(double) * (size_t)width * 3);
        if (!tmp || !acc) {
            st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "resize: out of memory");
        } else {
            float_pass_h(src->rgb, in_w, in_h, tmp, width, &ch);
            float_pass_v(tmp, width, dst->rgb, height, &cv, acc);
        }
        free(tmp);
        free(acc);
    }
    coeffs_free(&ch);
    coeffs_free(&cv);
    if (st != STDCPU_OK)
        stdcpu_image_free(dst);
    return st;
}

stdcpu_status stdcpu_image_crop(const stdcpu_image *src, int x, int y, int width, int height, stdcpu_image *dst,
                                stdcpu_error *err)
{
    memset(dst, 0, sizeof *dst);
    if (!src || !src->rgb || x < 0 || y < 0 || width < 1 || height < 1 || width > src->width - x ||
        height > src->height - y)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "crop %dx%d at (%d,%d) does not fit a %dx%d image", width,
                           height, x, y, src ? src->width : 0, src ? src->height : 0);
    STDCPU_TRY(stdcpu_image_alloc(dst, width, height, err));
    for (int r = 0; r < height; r++)
        memcpy(dst->rgb + (size_t)r * (size_t)width * 3,
               src->rgb + ((size_t)(y + r) * (size_t)src->width + (size_t)x) * 3, (size_t)width * 3);
    return STDCPU_OK;
}

stdcpu_status stdcpu_image_center_crop(const stdcpu_image *src, int width, int height, stdcpu_image *dst,
                                       stdcpu_error *err)
{
    memset(dst, 0, sizeof *dst);
    if (!src || width > src->width || height > src->height)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "centre crop %dx%d is larger than the %dx%d image", width,
                           height, src ? src->width : 0, src ? src->height : 0);
    return stdcpu_image_crop(src, (src->width - width) / 2, (src->height - height) / 2, width, height, dst, err);
}

void stdcpu_size_for_shortest_side(int width, int height, int target, int *out_width, int *out_height)
{
    if (width <= height) {
        *out_width = target;
        *out_height = (int)((double)target * height / width);
    } else {
        *out_height = target;
        *out_width = (int)((double)target * width / height);
    }
}

static float to_float(uint8_t v, stdcpu_pixel_range range)
{
    float x = (float)v / 255.0f;
    return range == STDCPU_RANGE_PM1 ? 2.0f * x - 1.0f : x;
}

static uint8_t from_float(float x, stdcpu_pixel_range range)
{
    if (range == STDCPU_RANGE_PM1)
        x = x / 2.0f + 0.5f;
    if (!(x > 0.0f)) /* also maps NaN to 0 */
        x = 0.0f;
    if (x > 1.0f)
        x = 1.0f;
    return (uint8_t)nearbyintf(x * 255.0f); /* round half to even, like numpy */
}

void stdcpu_image_to_chw_f32(const stdcpu_image *img, stdcpu_pixel_range range, float *out)
{
    size_t plane = (size_t)img->width * (size_t)img->height;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            out[(size_t)c * plane + i] = to_float(img->rgb[3 * i + (size_t)c], range);
}

void stdcpu_image_to_hwc_f32(const stdcpu_image *img, stdcpu_pixel_range range, float *out)
{
    size_t n = (size_t)img->width * (size_t)img->height * 3;
    for (size_t i = 0; i < n; i++)
        out[i] = to_float(img->rgb[i], range);
}

void stdcpu_image_from_chw_f32(const float *chw, stdcpu_pixel_range range, stdcpu_image *img)
{
    size_t plane = (size_t)img->width * (size_t)img->height;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            img->rgb[3 * i + (size_t)c] = from_float(chw[(size_t)c * plane + i], range);
}

void stdcpu_image_from_hwc_f32(const float *hwc, stdcpu_pixel_range range, stdcpu_image *img)
{
    size_t n = (size_t)img->width * (size_t)img->height * 3;
    for (size_t i = 0; i < n; i++)
        img->rgb[i] = from_float(hwc[i], range);
}
