/* Element-wise kernels: the portable scalar reference (libm expf / erff). */
#include "simd/eltwise.h"

#include <math.h>
#include <string.h>

static void f32_silu_scalar(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

static float gelu_one(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

static void f32_gelu_scalar(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = gelu_one(x[i]);
}

static void f32_gelu_tanh_scalar(float *y, const float *x, size_t n)
{
    const float k = 0.79788456080286536f; /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

static void f32_quick_gelu_scalar(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

static void f32_geglu_scalar(float *y, const float *x, size_t rows, size_t F)
{
    for (size_t r = 0; r < rows; r++) {
        const float *hidden = x + r * 2 * F, *gate = hidden + F;
        float *out = y + r * F;
        for (size_t c = 0; c < F; c++)
            out[c] = hidden[c] * gelu_one(gate[c]);
    }
}

static void f32_add_scalar(float *y, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

static void f32_mul_scalar(float *y, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}

static void f32_axpby_scalar(float *y, float a, const float *x, float b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a * x[i] + b * y[i];
}

static void f32_add_bias_scalar(float *y, const float *x, const float *bias, size_t rows, size_t C)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < C; c++)
            y[r * C + c] = x[r * C + c] + bias[c];
}

static void f32_softmax_scalar(float *y, const float *x, size_t n)
{
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) { /* every entry masked: no probability mass anywhere */
        for (size_t i = 0; i < n; i++)
            y[i] = 0.0f;
        return;
    }
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - m);
        s += y[i];
    }
    const float inv = 1.0f / s;
    for (size_t i = 0; i < n; i++)
        y[i] *= inv;
}

uint16_t stdcpu_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t absu = u & 0x7fffffffu;
    if (absu >= 0x7f800000u) /* inf or NaN (keep NaN quiet and non-zero) */
        return (uint16_t)(sign | 0x7c00u | (absu > 0x7f800000u ? 0x200u | ((absu >> 13) & 0x3ffu) : 0));
    if (absu >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (absu < 0x38800000u) { /* below 2^-14: subnormal half (or zero) */
        if (absu < 0x33000000u) /* below 2^-25: rounds to zero */
            return (uint16_t)sign;
        const uint32_t mant = (absu & 0x7fffffu) | 0x800000u;
        const int shift = 126 - (int)(absu >> 23); /* 14..24 */
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((absu >> 13) - (112u << 10)); /* rebias exponent 127 -> 15 */
    const uint32_t rem = absu & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* may carry into the exponent: still correct */
    return (uint16_t)(sign | h);
}

float stdcpu_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1fu) {
        u = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        u = sign;
    } else { /* subnormal half: normalise */
        int e = -1;
        uint32_t m = mant;
        do {
            e++;
            m <<= 1;
        } while (!(m & 0x400u));
        u = sign | ((uint32_t)(112 - e) << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void f32_to_f16_scalar(uint16_t *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = stdcpu_f32_to_f16(x[i]);
}

static void f16_to_f32_scalar(float *y, const uint16_t *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = stdcpu_f16_to_f32(x[i]);
}

static void bf16_to_f32_scalar(float *y, const uint16_t *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint32_t u = (uint32_t)x[i] << 16;
        memcpy(&y[i], &u, 4);
    }
}

void stdcpu_eltwise_init_scalar(stdcpu_eltwise_kernels *k)
{
    k->silu = f32_silu_scalar;
    k->gelu = f32_gelu_scalar;
    k->gelu_tanh = f32_gelu_tanh_scalar;
    k->quick_gelu = f32_quick_gelu_scalar;
    k->geglu = f32_geglu_scalar;
    k->add = f32_add_scalar;
    k->mul = f32_mul_scalar;
    k->axpby = f32_axpby_scalar;
    k->add_bias = f32_add_bias_scalar;
    k->softmax = f32_softmax_scalar;
    k->f32_to_f16 = f32_to_f16_scalar;
    k->f16_to_f32 = f16_to_f32_scalar;
    k->bf16_to_f32 = bf16_to_f32_scalar;
}

int stdcpu_eltwise_complete(const stdcpu_eltwise_kernels *k)
{
    return k->silu && k->gelu && k->gelu_tanh && k->quick_gelu && k->geglu && k->add && k->mul && k->axpby &&
           k->add_bias && k->softmax && k->f32_to_f16 && k->f16_to_f32 && k->bf16_to_f32;
}
