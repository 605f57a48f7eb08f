#include "config.h"

#include "simd/dispatch.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

#include "simd/cpu.h"

static stdcpu_kernels tables[STDCPU_ISA_COUNT];
static int table_ok[STDCPU_ISA_COUNT];
static stdcpu_isa active_isa;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Scalar first; each ISA then overrides what it accelerates, on top of the
 * level below it (AVX-512 VNNI keeps the AVX2 versions of what it lacks). */
static void init_scalar(stdcpu_kernels *k)
{
    stdcpu_gemm_init_scalar(&k->gemm);
    stdcpu_attn_init_scalar(&k->attn);
    stdcpu_norm_init_scalar(&k->norm);
    stdcpu_eltwise_init_scalar(&k->eltwise);
}

#define STDCPU_INIT_ISA(isa_suffix, k)              \
    do {                                            \
        stdcpu_gemm_init_##isa_suffix(&(k)->gemm);  \
        stdcpu_attn_init_##isa_suffix(&(k)->attn);  \
        stdcpu_norm_init_##isa_suffix(&(k)->norm);  \
        stdcpu_eltwise_init_##isa_suffix(&(k)->eltwise); \
    } while (0)

static int build_table(stdcpu_isa isa, stdcpu_kernels *k)
{
    k->isa = isa;
    init_scalar(k);
    switch (isa) {
    case STDCPU_ISA_SCALAR: break;
#ifdef HAVE_AVX2
    case STDCPU_ISA_AVX2: STDCPU_INIT_ISA(avx2, k); break;
#endif
#ifdef HAVE_AVX512VNNI
    case STDCPU_ISA_AVX512VNNI:
#ifdef HAVE_AVX2
        STDCPU_INIT_ISA(avx2, k);
#endif
        STDCPU_INIT_ISA(avx512vnni, k);
        break;
#endif
#ifdef HAVE_NEON
    case STDCPU_ISA_NEON: STDCPU_INIT_ISA(neon, k); break;
#endif
#ifdef HAVE_NEONDOT
    case STDCPU_ISA_NEONDOT:
#ifdef HAVE_NEON
        STDCPU_INIT_ISA(neon, k);
#endif
        STDCPU_INIT_ISA(neondot, k);
        break;
#endif
    default: return 0;
    }
    const int complete = stdcpu_gemm_complete(&k->gemm) && stdcpu_attn_complete(&k->attn) &&
                         stdcpu_norm_complete(&k->norm) && stdcpu_eltwise_complete(&k->eltwise);
    assert(complete && "a kernel init left a NULL pointer");
    return complete;
}

static void init_tables(void)
{
    for (int i = 0; i < STDCPU_ISA_COUNT; i++)
        if (stdcpu_isa_available((stdcpu_isa)i))
            table_ok[i] = build_table((stdcpu_isa)i, &tables[i]);
    active_isa = stdcpu_isa_best(getenv("STDCPU_ISA"));
    if (!table_ok[active_isa])
        active_isa = STDCPU_ISA_SCALAR;
}

const stdcpu_kernels *stdcpu_kernels_get(void)
{
    pthread_once(&tables_once, init_tables);
    return &tables[active_isa];
}

const stdcpu_kernels *stdcpu_kernels_for_isa(stdcpu_isa isa)
{
    pthread_once(&tables_once, init_tables);
    if ((unsigned)isa >= STDCPU_ISA_COUNT || !table_ok[isa])
        return NULL;
    return &tables[isa];
}

stdcpu_isa stdcpu_isa_active(void)
{
    return stdcpu_kernels_get()->isa;
}
