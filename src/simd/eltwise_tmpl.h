/* Element-wise kernels written once on the vector vocabulary of
 * vec_<isa>.h; each eltwise_<isa>.c includes its vec header, then this.
 * Tails use masked / partial loads, so every n is handled in vector code. */
#include "simd/vec_math.h"
#include "simd/vec_tmpl.h"

/* y[i] = OP(x[i]) over n floats, OP a vf -> vf expression of v. */
#define VF_UNARY_LOOP(y, x, n, OP)                     \
    do {                                               \
        size_t i_ = 0;                                 \
        for (; i_ + VF_N <= (n); i_ += VF_N) {         \
            const vf v = vf_load((x) + i_);            \
            vf_store((y) + i_, OP);                    \
        }                                              \
        if (i_ < (n)) {                                \
            const vf v = vf_loadn((x) + i_, (n) - i_); \
            vf_storen((y) + i_, OP, (n) - i_);         \
        }                                              \
    } while (0)

static void VF_FN(f32_silu)(float *y, const float *x, size_t n)
{
    VF_UNARY_LOOP(y, x, n, vf_mul(v, vf_sigmoid(v)));
}

static void VF_FN(f32_gelu)(float *y, const float *x, size_t n) { VF_UNARY_LOOP(y, x, n, vf_gelu(v)); }

/* 0.5 (1 + tanh(u)) = sigmoid(2u) */
static inline vf VF_FN(gelu_tanh_v)(vf v)
{
    const vf v3 = vf_mul(vf_mul(v, v), v);
    const vf u2 = vf_mul(vf_set1(2.0f * 0.79788456080286536f), vf_fma(vf_set1(0.044715f), v3, v));
    return vf_mul(v, vf_sigmoid(u2));
}

static void VF_FN(f32_gelu_tanh)(float *y, const float *x, size_t n)
{
    VF_UNARY_LOOP(y, x, n, VF_FN(gelu_tanh_v)(v));
}

static void VF_FN(f32_quick_gelu)(float *y, const float *x, size_t n)
{
    VF_UNARY_LOOP(y, x, n, vf_mul(v, vf_sigmoid(vf_mul(vf_set1(1.702f), v))));
}

static void VF_FN(f32_geglu)(float *y, const float *x, size_t rows, size_t F)
{
    for (size_t r = 0; r < rows; r++) {
        const float *hidden = x + r * 2 * F, *gate = hidden + F;
        float *out = y + r * F;
        size_t c = 0;
        for (; c + VF_N <= F; c += VF_N)
            vf_store(out + c, vf_mul(vf_load(hidden + c), vf_gelu(vf_load(gate + c))));
        if (c < F)
            vf_storen(out + c, vf_mul(vf_loadn(hidden + c, F - c), vf_gelu(vf_loadn(gate + c, F - c))),
                      F - c);
    }
}

static void VF_FN(f32_add)(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + VF_N <= n; i += VF_N)
        vf_store(y + i, vf_add(vf_load(a + i), vf_load(b + i)));
    if (i < n)
        vf_storen(y + i, vf_add(vf_loadn(a + i, n - i), vf_loadn(b + i, n - i)), n - i);
}

static void VF_FN(f32_mul)(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + VF_N <= n; i += VF_N)
        vf_store(y + i, vf_mul(vf_load(a + i), vf_load(b + i)));
    if (i < n)
        vf_storen(y + i, vf_mul(vf_loadn(a + i, n - i), vf_loadn(b + i, n - i)), n - i);
}

static void VF_FN(f32_axpby)(float *y, float a, const float *x, float b, size_t n)
{
    const vf va = vf_set1(a), vb = vf_set1(b);
    size_t i = 0;
    for (; i + VF_N <= n; i += VF_N)
        vf_store(y + i, vf_fma(va, vf_load(x + i), vf_mul(vb, vf_load(y + i))));
    if (i < n)
        vf_storen(y + i, vf_fma(va, vf_loadn(x + i, n - i), vf_mul(vb, vf_loadn(y + i, n - i))), n - i);
}

static void VF_FN(f32_add_bias)(float *y, const float *x, const float *bias, size_t rows, size_t C)
{
    for (size_t r = 0; r < rows; r++)
        VF_FN(f32_add)(y + r * C, x + r * C, bias, C);
}

static void VF_FN(f32_softmax)(float *y, const float *x, size_t n)
{
    const vf ninf = vf_set1(-INFINITY);
    vf vm = ninf;
    size_t i = 0;
    for (; i + VF_N <= n; i += VF_N)
        vm = vf_max(vm, vf_load(x + i));
    float m = vf_hmax(vm);
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) { /* every entry masked */
        for (i = 0; i < n; i++)
            y[i] = 0.0f;
        return;
    }
    const vf vmax = vf_set1(m);
    vf vs = vf_zero();
    for (i = 0; i + VF_N <= n; i += VF_N) {
        const vf e = vf_exp(vf_sub(vf_load(x + i), vmax));
        vf_store(y + i, e);
        vs = vf_add(vs, e);
    }
    if (i < n)
        vf_storen(y + i, vf_exp(vf_sub(vf_loadn(x + i, n - i), vmax)), n - i);
    float sum = vf_hsum(vs);
    for (size_t j = i; j < n; j++)
        sum += y[j];
    const vf inv = vf_set1(1.0f / sum);
    for (i = 0; i + VF_N <= n; i += VF_N)
        vf_store(y + i, vf_mul(vf_load(y + i), inv));
    if (i < n)
        vf_storen(y + i, vf_mul(vf_loadn(y + i, n - i), inv), n - i);
}

static void VF_FN(f32_to_f16)(uint16_t *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + VF_N <= n; i += VF_N)
        vf_store_f16(y + i, vf_load(x + i));
    for (; i < n; i++)
        y[i] = stdcpu_f32_to_f16(x[i]);
}

static void VF_FN(f16_to_f32)(float *y, const uint16_t *x, size_t n)
{
    size_t i = 0;
    for (; i + VF_N <= n; i += VF_N)
        vf_store(y + i, vf_load_f16(x + i));
    for (; i < n; i++)
        y[i] = stdcpu_f16_to_f32(x[i]);
}

static void VF_FN(bf16_to_f32)(float *y, const uint16_t *x, size_t n)
{
    size_t i = 0;
    for (; i + VF_N <= n; i += VF_N)
        vf_store(y + i, vf_load_bf16(x + i));
    for (; i < n; i++) {
        const uint32_t u = (uint32_t)x[i] << 16;
        memcpy(&y[i], &u, 4);
    }
}

static void VF_FN(eltwise_fill)(stdcpu_eltwise_kernels *k)
{
    k->silu = VF_FN(f32_silu);
    k->gelu = VF_FN(f32_gelu);
    k->gelu_tanh = VF_FN(f32_gelu_tanh);
    k->quick_gelu = VF_FN(f32_quick_gelu);
    k->geglu = VF_FN(f32_geglu);
    k->add = VF_FN(f32_add);
    k->mul = VF_FN(f32_mul);
    k->axpby = VF_FN(f32_axpby);
    k->add_bias = VF_FN(f32_add_bias);
    k->softmax = VF_FN(f32_softmax);
    k->f32_to_f16 = VF_FN(f32_to_f16);
    k->f16_to_f32 = VF_FN(f16_to_f32);
    k->bf16_to_f32 = VF_FN(bf16_to_f32);
}
