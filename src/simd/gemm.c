/* gemm module: the portable scalar reference (the ground truth every ISA is
 * tested against), the weight packer and the quantisation helpers. */
#include "simd/gemm.h"

#include <math.h>
#include <string.h>

void stdcpu_q8_scale_for(float absmax, float *scale, float *inv_scale)
{
    if (!(absmax > 0.0f) || !isfinite(absmax)) {
        *scale = 0.0f;
        *inv_scale = 0.0f;
        return;
    }
    *scale = absmax / 127.0f;
    *inv_scale = 127.0f / absmax;
}

static float f32_absmax_scalar(const float *x, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        m = a > m ? a : m; /* NaN compares false: ignored */
    }
    return m;
}

/* nearbyintf rounds half to even, like cvtps2dq and vcvtnq: bit-exact with SIMD. */
static inline int8_t quantize_one(float x, float inv_scale)
{
    float r = nearbyintf(x * inv_scale);
    r = r > 127.0f ? 127.0f : r;
    r = r < -127.0f ? -127.0f : r;
    return (int8_t)(r == r ? r : 0.0f);
}

static void q8_quantize_scalar(const float *x, size_t n, size_t n_padded, float inv_scale,
                               unsigned char xor_byte, int8_t *q)
{
    for (size_t i = 0; i < n; i++)
        q[i] = (int8_t)((unsigned char)quantize_one(x[i], inv_scale) ^ xor_byte);
    for (size_t i = n; i < n_padded; i++)
        q[i] = (int8_t)xor_byte;
}

float stdcpu_q8_quantize_row(const stdcpu_gemm_kernels *k, const float *x, size_t n, size_t n_padded,
                             unsigned char xor_byte, int8_t *q)
{
    float s, inv;
    stdcpu_q8_scale_for(k->f32_absmax(x, n), &s, &inv);
    k->q8_quantize(x, n, n_padded, inv, xor_byte, q);
    return s;
}

void stdcpu_q8_quantize_weights(const float *w, size_t n, size_t k, int8_t *q, float *scales)
{
    for (size_t o = 0; o < n; o++) {
        float s, inv;
        stdcpu_q8_scale_for(f32_absmax_scalar(w + o * k, k), &s, &inv);
        scales[o] = s;
        q8_quantize_scalar(w + o * k, k, k, inv, 0, q + o * k);
    }
}

size_t stdcpu_q8_packed_bytes(size_t n, size_t ks, size_t kc)
{
    const size_t panels = (n + STDCPU_Q8_NR_PANEL - 1) / STDCPU_Q8_NR_PANEL;
    return panels * STDCPU_Q8_NR_PANEL * ks * kc;
}

void stdcpu_q8_pack_16c4(const int8_t *src, size_t n, size_t ks, size_t cin, size_t kc,
                         size_t so, size_t st, size_t sc, int8_t *data, int32_t *wsum)
{
    const size_t panels = (n + STDCPU_Q8_NR_PANEL - 1) / STDCPU_Q8_NR_PANEL;
    const size_t kp = ks * kc;
    for (size_t p = 0; p < panels; p++) {
        int8_t *panel = data + p * STDCPU_Q8_NR_PANEL * kp; /* [kp/4][16][4] */
        for (size_t j = 0; j < STDCPU_Q8_NR_PANEL; j++) {
            const size_t o = p * STDCPU_Q8_NR_PANEL + j;
            int32_t sum = 0;
            for (size_t k = 0; k < kp; k++) {
                const size_t t = k / kc, c = k % kc;
                int8_t v = (o < n && c < cin) ? src[o * so + t * st + c * sc] : 0;
                v = v < -127 ? -127 : v; /* symmetric range: keeps the int8 tricks exact */
                panel[(k / 4) * 64 + j * 4 + k % 4] = v;
                sum += v;
            }
            wsum[o] = sum;
        }
    }
}

/* Reference: 4 rows x 16 columns, plain loops. Rows i >= mr are not touched. */
void stdcpu_q8_igemm_4x16_scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                 const int8_t *const *a, const int8_t *w, const int32_t *wsum,
                                 float *c, size_t c_stride, const stdcpu_q8_epilogue *ep)
{
    (void)wsum; /* activations are plain int8 here: no compensation needed */
    int32_t acc[4][16];
    memset(acc, 0, sizeof acc);
    for (size_t t = 0; t < ks; t++) {
        for (size_t i = 0; i < mr; i++) {
            const int8_t *row = a[t * mr + i];
            const int8_t *wk = w + t * kc * 16;
            for (size_t k = 0; k < kc; k++) {
                const int32_t av = row[k];
                const int8_t *wg = wk + (k / 4) * 64 + k % 4;
                for (size_t j = 0; j < 16; j++)
                    acc[i][j] += av * (int32_t)wg[j * 4];
            }
        }
    }
    for (size_t i = 0; i < mr; i++) {
        const float sa = ep->a_scale[i * ep->a_scale_stride];
        float *ci = c + i * c_stride;
        for (size_t j = 0; j < nc; j++) {
            float v = (float)acc[i][j] * (sa * ep->w_scale[j]);
            if (ep->bias)
                v += ep->bias[j];
            if (ep->residual)
                v += ep->residual[i * ep->residual_stride + j];
            ci[j] = v;
        }
    }
}

float stdcpu_act_scalar(float x, stdcpu_act act)
{
    switch (act) {
    case STDCPU_ACT_SILU: return x / (1.0f + expf(-x));
    case STDCPU_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    default: return x;
    }
}

static void f32_act_residual_scalar(float *y, size_t n, const float *residual, stdcpu_act act)
{
    if (act != STDCPU_ACT_NONE)
        for (size_t i = 0; i < n; i++)
            y[i] = stdcpu_act_scalar(y[i], act);
    if (residual)
        for (size_t i = 0; i < n; i++)
            y[i] += residual[i];
}

void stdcpu_gemm_init_scalar(stdcpu_gemm_kernels *k)
{
    k->q8_igemm = stdcpu_q8_igemm_4x16_scalar;
    k->q8_igemm_name = "q8_igemm_4x16c4_scalar";
    k->q8_mr = 4;
    k->q8_nr = 16;
    k->q8_a_xor = 0;
    k->f32_gemm = stdcpu_f32_gemm_4x8_scalar;
    k->f32_gemm_name = "f32_gemm_4x8_scalar";
    k->f32_mr = 4;
    k->f32_nr = 8;
    k->f32_kc = 256;
    k->f32_absmax = f32_absmax_scalar;
    k->q8_quantize = q8_quantize_scalar;
    k->f32_act_residual = f32_act_residual_scalar;
}

int stdcpu_gemm_complete(const stdcpu_gemm_kernels *k)
{
    return k->q8_igemm && k->q8_igemm_name && k->q8_mr >= 1 && k->q8_mr <= STDCPU_Q8_MR_MAX &&
           k->q8_nr >= 16 && k->q8_nr % 16 == 0 && k->f32_gemm && k->f32_gemm_name &&
           k->f32_mr >= 1 && k->f32_mr <= STDCPU_F32_MR_MAX && k->f32_nr >= 4 &&
           k->f32_nr <= STDCPU_F32_NR_MAX && k->f32_nr % 4 == 0 && k->f32_kc >= 1 && k->f32_absmax && k->q8_quantize &&
           k->f32_act_residual;
}
