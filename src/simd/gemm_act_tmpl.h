/* The activation + residual epilogue on the vector vocabulary of
 * vec_<isa>.h and vec_math.h (include both first): the same formulas as
 * stdcpu_act_scalar, with vf_sigmoid (exp <= 2 ulp) and vf_erf (<= 4e-7
 * absolute). Used by gemm_<isa>.c for stdcpu_gemm_kernels.f32_act_residual. */
#ifndef STDCPU_SIMD_GEMM_ACT_TMPL_H
#define STDCPU_SIMD_GEMM_ACT_TMPL_H

#include "simd/gemm.h"

static inline vf gemm_act_vec(vf v, stdcpu_act act)
{
    switch (act) {
    case STDCPU_ACT_SILU: return vf_mul(v, vf_sigmoid(v));
    case STDCPU_ACT_GELU:
        return vf_mul(vf_mul(v, vf_set1(0.5f)),
                      vf_add(vf_set1(1.0f), vf_erf(vf_mul(v, vf_set1(0.70710678118654752f)))));
    default: return v;
    }
}

static void gemm_f32_act_residual_vec(float *y, size_t n, const float *residual, stdcpu_act act)
{
    size_t i = 0;
    for (; i + VF_N <= n; i += VF_N) {
        vf v = gemm_act_vec(vf_load(y + i), act);
        if (residual)
            v = vf_add(v, vf_load(residual + i));
        vf_store(y + i, v);
    }
    if (i < n) {
        const size_t m = n - i;
        vf v = gemm_act_vec(vf_loadn(y + i, m), act);
        if (residual)
            v = vf_add(v, vf_loadn(residual + i, m));
        vf_storen(y + i, v, m);
    }
}

#endif
