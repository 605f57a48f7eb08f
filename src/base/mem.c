#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

void *stdcpu_aligned_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0)
        bytes = STDCPU_ALIGN;
    if (posix_memalign(&p, STDCPU_ALIGN, bytes) != 0)
        return NULL;
    return p;
}

void *stdcpu_aligned_calloc(size_t bytes)
{
    void *p = stdcpu_aligned_alloc(bytes);
    if (p)
        memset(p, 0, bytes ? bytes : STDCPU_ALIGN);
    return p;
}

void stdcpu_aligned_free(void *p) { free(p); }
