/* Run-time CPU feature detection. */
#ifndef STDCPU_SIMD_CPU_H
#define STDCPU_SIMD_CPU_H

#include "stdcpu.h"

/* Bit i set = the CPU and OS support ISA i (STDCPU_ISA_SCALAR always set).
 * Independent of what this build compiled; see stdcpu_isa_available(). */
unsigned stdcpu_cpu_isa_mask(void);

/* Nonzero when the CPU has the AVX-512 level above and AVX512-VBMI (byte
 * permutes: Ice Lake, Zen 4 and later; not Skylake-X / Cascade Lake). A
 * kernel table may pick a VBMI version of one kernel by it. */
int stdcpu_cpu_has_avx512vbmi(void);

/* Parses "scalar", "avx2", "avx512vnni", "neon", "neondot" (case-insensitive).
 * Returns 0 and sets *isa, or -1 for an unknown name. */
int stdcpu_isa_parse(const char *name, stdcpu_isa *isa);

/* The best ISA that the CPU has and the build compiled, capped by the ISA
 * named in `cap` (NULL or "" = no cap). An ISA of the other architecture
 * family caps at the same rank (avx2 on aarch64 = neon). */
stdcpu_isa stdcpu_isa_best(const char *cap);

#endif
