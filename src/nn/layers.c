#include "nn/layers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/quant.h"

const char *stdcpu_precision_name(stdcpu_precision p) { return p == STDCPU_PREC_INT8 ? "int8" : "f32"; }

/* The same decision the converter makes for the .stdm file. */
int stdcpu_nn_wants_int8(const stdcpu_wsrc *w, const char *wname, const stdcpu_wview *v)
{
    if (v->dtype == STDCPU_DT_I8)
        return 1;
    stdcpu_quant_policy pol;
    memset(&pol, 0, sizeof pol);
    pol.mode = STDCPU_QUANT_INT8;
    const char *const *keep = stdcpu_quant_default_keep();
    size_t n = 0;
    while (keep[n])
        n++;
    pol.keep_f16 = keep;
    pol.n_keep_f16 = n;
    pol.min_int8_elements = STDCPU_QUANT_MIN_INT8_ELEMENTS;
    char canon[512];
    const char *comp = stdcpu_wsrc_component(w);
    if (comp && *comp)
        snprintf(canon, sizeof canon, "%s.%s", comp, wname);
    else
        snprintf(canon, sizeof canon, "%s", wname);
    return stdcpu_quant_choose(&pol, canon, v->ndim, v->shape) == STDCPU_DT_I8;
}

/* The weight as int8 rows [rows, cols] + scales: stored int8 is passed
 * through in place (*owned = 0), floats are quantised into new buffers. */
static stdcpu_status weight_int8(const stdcpu_wsrc *w, const char *wname, const stdcpu_wview *v, int8_t **q,
                                 float **scales, int *owned, stdcpu_error *err)
{
    const int64_t rows = v->shape[0], cols = v->numel / rows;
    *owned = v->dtype != STDCPU_DT_I8;
    if (!*owned) {
        *q = (int8_t *)v->data;
        *scales = (float *)v->scales;
        return STDCPU_OK;
    }
    *q = stdcpu_aligned_alloc((size_t)v->numel);
    *scales = stdcpu_aligned_alloc((size_t)rows * sizeof(float));
    if (!*q || !*scales) {
        stdcpu_aligned_free(*q);
        stdcpu_aligned_free(*scales);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory loading %s", wname);
    }

    float *f;
    stdcpu_status s = stdcpu_wsrc_read_f32(w, wname, &f, NULL, err);
    if (s != STDCPU_OK) {
        stdcpu_aligned_free(*q);
        stdcpu_aligned_free(*scales);
        return s;
    }
    stdcpu_quant_int8_rows(f, rows, cols, *q, *scales);
    stdcpu_aligned_free(f);
    return STDCPU_OK;
}

static stdcpu_status load_bias(const stdcpu_wsrc *w, const char *prefix, int64_t n, float **bias, stdcpu_error *err)
{
    char name[512];
    snprintf(name, sizeof name, "%s.bias", prefix);
    *bias = NULL;
    if (!stdcpu_wsrc_has(w, name))
        return STDCPU_OK;
    return stdcpu_wsrc_read_f32_checked(w, name, -1, n, bias, NULL, err);
}

stdcpu_status stdcpu_nn_load_linear(stdcpu_linear_weight *lw, const stdcpu_wsrc *w, const char *prefix,
                                    stdcpu_precision p, int64_t expect_k, size_t *n_out, size_t *k_out,
                                    stdcpu_error *err)
{
    memset(lw, 0, sizeof *lw);
    char wname[512];
    snprintf(wname, sizeof wname, "%s.weight", prefix);
    stdcpu_wview v;
    STDCPU_TRY(stdcpu_wsrc_get(w, wname, &v, err));
    const int conv1x1 = v.ndim == 4 && v.shape[2] == 1 && v.shape[3] == 1;
    if (!(v.ndim == 2 || conv1x1) || v.shape[0] < 1)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s is not a linear weight [out, in]",
                           stdcpu_wsrc_component(w), wname);
    const int64_t n = v.shape[0], k = v.shape[1];
    if (expect_k >= 0 && k != expect_k)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s takes %lld inputs, the network gives %lld",
                           stdcpu_wsrc_component(w), wname, (long long)k, (long long)expect_k);
    float *bias;
    STDCPU_TRY(load_bias(w, prefix, n, &bias, err));
    stdcpu_status s;
    if (p == STDCPU_PREC_INT8 && stdcpu_nn_wants_int8(w, wname, &v)) {
        int8_t *q;
        float *scales;
        int owned;
        s = weight_int8(w, wname, &v, &q, &scales, &owned, err);
        if (s == STDCPU_OK) {
            s = stdcpu_linear_weight_init_q8(lw, q, scales, bias, (size_t)n, (size_t)k, err);
            if (owned) {
                stdcpu_aligned_free(q);
                stdcpu_aligned_free(scales);
            }
        }
    } else {
        float *f;
        s = stdcpu_wsrc_read_f32(w, wname, &f, NULL, err);
        if (s == STDCPU_OK) {
            s = stdcpu_linear_weight_init_f32(lw, f, bias, (size_t)n, (size_t)k, err);
            stdcpu_aligned_free(f);
        }
    }
    stdcpu_aligned_free(bias);
    if (s == STDCPU_OK)
        stdcpu_wsrc_release(w, wname); /* the layer holds its own (packed) copy now */
    if (s == STDCPU_OK) {
        if (n_out)
            *n_out = (size_t)n;
        if (k_out)
            *k_out = (size_t)k;
    }
    return s;
}

stdcpu_status stdcpu_nn_load_conv(stdcpu_conv2d_weight *cw, const stdcpu_wsrc *w, const char *prefix,
                                  stdcpu_precision p, int64_t expect_in, size_t *out_ch, size_t *in_ch,
                                  size_t *ksize, stdcpu_error *err)
{
    memset(cw, 0, sizeof *cw);
    char wname[512];
    snprintf(wname, sizeof wname, "%s.weight", prefix);
    stdcpu_wview v;
    STDCPU_TRY(stdcpu_wsrc_get(w, wname, &v, err));
    if (v.ndim != 4 || v.shape[2] != v.shape[3] || v.shape[0] < 1)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s is not a square convolution weight [O, I, k, k]",
                           stdcpu_wsrc_component(w), wname);
    const int64_t O = v.shape[0], I = v.shape[1], K = v.shape[2];
    if (expect_in >= 0 && I != expect_in)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s takes %lld channels, the network gives %lld",
                           stdcpu_wsrc_component(w), wname, (long long)I, (long long)expect_in);
    float *bias;
    STDCPU_TRY(load_bias(w, prefix, O, &bias, err));
    stdcpu_status s;
    if (p == STDCPU_PREC_INT8 && stdcpu_nn_wants_int8(w, wname, &v)) {
        int8_t *q;
        float *scales;
        int owned;
        s = weight_int8(w, wname, &v, &q, &scales, &owned, err);
        if (s == STDCPU_OK) {
            s = stdcpu_conv2d_weight_init_q8(cw, q, scales, bias, (size_t)O, (size_t)I, (size_t)K, (size_t)K, err);
            if (owned) {
                stdcpu_aligned_free(q);
                stdcpu_aligned_free(scales);
            }
        }
    } else {
        float *f;
        s = stdcpu_wsrc_read_f32(w, wname, &f, NULL, err);
        if (s == STDCPU_OK) {
            s = stdcpu_conv2d_weight_init_f32(cw, f, bias, (size_t)O, (size_t)I, (size_t)K, (size_t)K, err);
            stdcpu_aligned_free(f);
        }
    }
    stdcpu_aligned_free(bias);
    if (s == STDCPU_OK)
        stdcpu_wsrc_release(w, wname);
    if (s == STDCPU_OK) {
        if (out_ch)
            *out_ch = (size_t)O;
        if (in_ch)
            *in_ch = (size_t)I;
        if (ksize)
            *ksize = (size_t)K;
    }
    return s;
}

stdcpu_status stdcpu_nn_load_vec(float **out, const stdcpu_wsrc *w, const char *name, int64_t expect,
                                 stdcpu_error *err)
{
    return stdcpu_wsrc_read_f32_checked(w, name, -1, expect, out, NULL, err);
}

stdcpu_status stdcpu_nn_load_norm(stdcpu_nn_norm *nm, const stdcpu_wsrc *w, const char *prefix, int64_t c,
                                  stdcpu_error *err)
{
    memset(nm, 0, sizeof *nm);
    char name[512];
    snprintf(name, sizeof name, "%s.weight", prefix);
    STDCPU_TRY(stdcpu_nn_load_vec(&nm->gamma, w, name, c, err));
    snprintf(name, sizeof name, "%s.bias", prefix);
    stdcpu_status s = stdcpu_nn_load_vec(&nm->beta, w, name, c, err);
    if (s != STDCPU_OK) {
        stdcpu_nn_norm_free(nm);
        return s;
    }
    nm->c = (size_t)c;
    return STDCPU_OK;
}

void stdcpu_nn_norm_free(stdcpu_nn_norm *nm)
{
    stdcpu_aligned_free(nm->gamma);
    stdcpu_aligned_free(nm->beta);
    memset(nm, 0, sizeof *nm);
}
