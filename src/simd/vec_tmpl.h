/* Shared by the kernel templates: names a template function after the ISA
 * (VF_FN(silu) -> silu_avx2) so every kernel's symbol says its ISA. */
#ifndef STDCPU_SIMD_VEC_TMPL_H
#define STDCPU_SIMD_VEC_TMPL_H

#define VF_CAT2(a, b) a##_##b
#define VF_CAT(a, b) VF_CAT2(a, b)
#define VF_FN(name) VF_CAT(name, VF_ISA)

#endif
