/* Peak-throughput loops for the benchmarks (bench/bench_peak.c): independent
 * register accumulators, no memory traffic. Each runs `iters` iterations on
 * the calling thread and returns the operations done (a multiply-add = 2).
 * Only the ISAs this build compiled exist (see config.h HAVE_*); call them
 * only when stdcpu_kernels_for_isa() says the CPU has the ISA. */
#ifndef STDCPU_SIMD_GEMM_PEAK_H
#define STDCPU_SIMD_GEMM_PEAK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Keep a loop's result alive without storing it anywhere (an empty asm that
 * claims to read it): no global sink, so the library keeps no mutable
 * globals besides the dispatch tables. */
static inline void stdcpu_peak_keep_i(int v) { __asm__ volatile("" : : "r"(v)); }
static inline void stdcpu_peak_keep_f(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    __asm__ volatile("" : : "r"(bits));
}

uint64_t stdcpu_peak_f32_fma_avx2(size_t iters);       /* 12 ymm vfmadd chains */
uint64_t stdcpu_peak_i8_avx2(size_t iters);            /* vpmaddubsw + vpmaddwd + vpaddd */
uint64_t stdcpu_peak_f32_fma_avx512vnni(size_t iters); /* 16 zmm vfmadd chains */
uint64_t stdcpu_peak_i8_avx512vnni(size_t iters);      /* 16 zmm vpdpbusd chains */
uint64_t stdcpu_peak_f32_fma_neon(size_t iters);       /* 16 q fmla chains */
uint64_t stdcpu_peak_i8_neon(size_t iters);            /* smlal (8 MACs) chains */
uint64_t stdcpu_peak_i8_neondot(size_t iters);         /* sdot (16 MACs) chains */

#endif
