#include "config.h"

#include "simd/cpu.h"

#include <string.h>
#include <strings.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define STDCPU_X86 1
#elif defined(__aarch64__)
#define STDCPU_ARM64 1
#if defined(HAVE_SYS_AUXV_H) && defined(HAVE_GETAUXVAL)
#include <sys/auxv.h>
#endif
#endif

#if STDCPU_X86
/* XCR0 tells which register state the OS saves on context switch: a CPU can
 * report AVX-512 in cpuid while the kernel leaves ZMM state off. */
static unsigned long long read_xcr0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static unsigned detect_x86(void)
{
    unsigned mask = 1u << STDCPU_ISA_SCALAR;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return mask;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return mask;
    const unsigned long long xcr0 = read_xcr0();
    const int ymm_os = (xcr0 & 0x6) == 0x6;   /* XMM | YMM */
    const int zmm_os = (xcr0 & 0xe6) == 0xe6; /* + opmask | ZMM_Hi256 | Hi16_ZMM */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return mask;
    const int avx2 = (b >> 5) & 1;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
              avx512vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    if (ymm_os && avx2 && fma && f16c) {
        mask |= 1u << STDCPU_ISA_AVX2;
        if (zmm_os && avx512f && avx512dq && avx512bw && avx512vl && vnni)
            mask |= 1u << STDCPU_ISA_AVX512VNNI;
    }
    return mask;
}
#endif

#if STDCPU_ARM64
static unsigned detect_arm64(void)
{
    /* Advanced SIMD is mandatory in AArch64. */
    unsigned mask = (1u << STDCPU_ISA_SCALAR) | (1u << STDCPU_ISA_NEON);
#if defined(HAVE_SYS_AUXV_H) && defined(HAVE_GETAUXVAL)
    const unsigned long hwcap = getauxval(AT_HWCAP);
    if (hwcap & (1ul << 20)) /* HWCAP_ASIMDDP */
        mask |= 1u << STDCPU_ISA_NEONDOT;
#endif
    return mask;
}
#endif

int stdcpu_cpu_has_avx512vbmi(void)
{
#if STDCPU_X86
    unsigned a, b, c, d;
    /* only meaningful where the AVX-512 level is (its OS-state checks) */
    if (!(detect_x86() & (1u << STDCPU_ISA_AVX512VNNI)) || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (int)((c >> 1) & 1);
#else
    return 0;
#endif
}

unsigned stdcpu_cpu_isa_mask(void)
{
#if STDCPU_X86
    return detect_x86();
#elif STDCPU_ARM64
    return detect_arm64();
#else
    return 1u << STDCPU_ISA_SCALAR;
#endif
}

static const char *const isa_names[STDCPU_ISA_COUNT] = {"scalar", "avx2", "avx512vnni", "neon", "neondot"};

const char *stdcpu_isa_name(stdcpu_isa isa)
{
    return (unsigned)isa < STDCPU_ISA_COUNT ? isa_names[isa] : "unknown";
}

int stdcpu_isa_parse(const char *name, stdcpu_isa *isa)
{
    for (int i = 0; i < STDCPU_ISA_COUNT; i++)
        if (strcasecmp(name, isa_names[i]) == 0) {
            *isa = (stdcpu_isa)i;
            return 0;
        }
    return -1;
}

static unsigned built_mask(void)
{
    unsigned m = 1u << STDCPU_ISA_SCALAR;
#ifdef HAVE_AVX2
    m |= 1u << STDCPU_ISA_AVX2;
#endif
#ifdef HAVE_AVX512VNNI
    m |= 1u << STDCPU_ISA_AVX512VNNI;
#endif
#ifdef HAVE_NEON
    m |= 1u << STDCPU_ISA_NEON;
#endif
#ifdef HAVE_NEONDOT
    m |= 1u << STDCPU_ISA_NEONDOT;
#endif
    return m;
}

int stdcpu_isa_available(stdcpu_isa isa)
{
    if ((unsigned)isa >= STDCPU_ISA_COUNT)
        return 0;
    return ((stdcpu_cpu_isa_mask() & built_mask()) >> isa) & 1;
}

/* Rank within an architecture family: 0 scalar, 1 baseline SIMD, 2 best. */
static int isa_rank(stdcpu_isa isa)
{
    switch (isa) {
    case STDCPU_ISA_AVX2:
    case STDCPU_ISA_NEON: return 1;
    case STDCPU_ISA_AVX512VNNI:
    case STDCPU_ISA_NEONDOT: return 2;
    default: return 0;
    }
}

stdcpu_isa stdcpu_isa_best(const char *cap)
{
    int max_rank = 2;
    stdcpu_isa want;
    if (cap && *cap && stdcpu_isa_parse(cap, &want) == 0)
        max_rank = isa_rank(want);
    stdcpu_isa best = STDCPU_ISA_SCALAR;
    for (int i = 0; i < STDCPU_ISA_COUNT; i++) {
        stdcpu_isa isa = (stdcpu_isa)i;
        if (stdcpu_isa_available(isa) && isa_rank(isa) <= max_rank && isa_rank(isa) >= isa_rank(best))
            best = isa;
    }
    return best;
}
