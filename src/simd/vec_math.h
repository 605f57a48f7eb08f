/* exp / erf / sigmoid on the vector vocabulary of vec_<isa>.h (include that
 * first). Accuracy, measured against libm over the ranges the networks see
 * (tests/test_eltwise.c checks it per ISA):
 *   vf_exp   Cody-Waite reduction + degree-7 Taylor on |r| <= ln2/2:
 *            <= 2 ulp; x < -87.34 gives exactly 0 (masked softmax entries),
 *            x > 88 saturates at exp(88).
 *   vf_erf   rational x*P(x^2)/Q(x^2) (the Eigen / XLA float erf) on
 *            [-4, 4], +-1 outside: <= 4e-7 absolute.
 *   vf_sigmoid 1 / (1 + exp(-x)).  */
#ifndef STDCPU_SIMD_VEC_MATH_H
#define STDCPU_SIMD_VEC_MATH_H

static inline vf vf_exp(vf x)
{
    const vf lo = vf_set1(-87.3365478515625f), hi = vf_set1(88.0f);
    const vf xc = vf_min(vf_max(x, lo), hi);
    const vf n = vf_round(vf_mul(xc, vf_set1(1.44269504088896341f)));
    vf r = vf_fnma(n, vf_set1(0.693359375f), xc);
    r = vf_fnma(n, vf_set1(-2.12194440e-4f), r);
    vf p = vf_set1(1.0f / 5040.0f);
    p = vf_fma(p, r, vf_set1(1.0f / 720.0f));
    p = vf_fma(p, r, vf_set1(1.0f / 120.0f));
    p = vf_fma(p, r, vf_set1(1.0f / 24.0f));
    p = vf_fma(p, r, vf_set1(1.0f / 6.0f));
    p = vf_fma(p, r, vf_set1(0.5f));
    p = vf_fma(p, r, vf_set1(1.0f));
    p = vf_fma(p, r, vf_set1(1.0f));
    return vf_select_gt(lo, x, vf_zero(), vf_mul(p, vf_pow2i(n)));
}

static inline vf vf_sigmoid(vf x)
{
    const vf one = vf_set1(1.0f);
    return vf_div(one, vf_add(one, vf_exp(vf_sub(vf_zero(), x))));
}

static inline vf vf_erf(vf x)
{
    const vf xc = vf_min(vf_max(x, vf_set1(-4.0f)), vf_set1(4.0f));
    const vf x2 = vf_mul(xc, xc);
    vf p = vf_set1(-2.72614225801306e-10f);
    p = vf_fma(p, x2, vf_set1(2.77068142495902e-08f));
    p = vf_fma(p, x2, vf_set1(-2.10102402082508e-06f));
    p = vf_fma(p, x2, vf_set1(-5.69250639462346e-05f));
    p = vf_fma(p, x2, vf_set1(-7.34990630326855e-04f));
    p = vf_fma(p, x2, vf_set1(-2.95459980854025e-03f));
    p = vf_fma(p, x2, vf_set1(-1.60960333262415e-02f));
    p = vf_mul(p, xc);
    vf q = vf_set1(-1.45660718464996e-05f);
    q = vf_fma(q, x2, vf_set1(-2.13374055278905e-04f));
    q = vf_fma(q, x2, vf_set1(-1.68282697438203e-03f));
    q = vf_fma(q, x2, vf_set1(-7.37332916720468e-03f));
    q = vf_fma(q, x2, vf_set1(-1.42647390514189e-02f));
    return vf_div(p, q);
}

/* exact GELU 0.5 x (1 + erf(x / sqrt 2)) */
static inline vf vf_gelu(vf x)
{
    const vf e = vf_erf(vf_mul(x, vf_set1(0.70710678118654752f)));
    return vf_mul(vf_mul(vf_set1(0.5f), x), vf_add(vf_set1(1.0f), e));
}

#endif
