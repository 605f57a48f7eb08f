/* The kernel dispatch table.
 *
 * Each kernel module <m> (gemm, attn, norm, eltwise) has:
 *   <m>.h            its stdcpu_<m>_kernels struct of function pointers,
 *   <m>.c            the portable scalar reference + stdcpu_<m>_init_scalar(),
 *   <m>_<isa>.c      the ISA's versions + stdcpu_<m>_init_<isa>(), which
 *                    overrides only what it accelerates,
 *   stdcpu_<m>_complete() nonzero when no pointer is NULL.
 * A table is built once per ISA (scalar first, then each level up to the ISA
 * overrides), checked for completeness, and never written again: these tables
 * are the only mutable globals of the library.
 */
#ifndef STDCPU_SIMD_DISPATCH_H
#define STDCPU_SIMD_DISPATCH_H

#include "stdcpu.h"
#include "simd/attn.h"
#include "simd/eltwise.h"
#include "simd/gemm.h"
#include "simd/norm.h"

typedef struct stdcpu_kernels {
    stdcpu_isa isa;
    stdcpu_gemm_kernels gemm;
    stdcpu_attn_kernels attn;
    stdcpu_norm_kernels norm;
    stdcpu_eltwise_kernels eltwise;
} stdcpu_kernels;

/* The active table: best ISA of this CPU, capped by $STDCPU_ISA. Never NULL. */
const stdcpu_kernels *stdcpu_kernels_get(void);

/* The table of one given ISA, or NULL when this CPU or build lacks it.
 * Lets tests and benchmarks compare every path in one process. */
const stdcpu_kernels *stdcpu_kernels_for_isa(stdcpu_isa isa);

#endif
