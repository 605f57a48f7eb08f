#include "core/arena.h"

#include <string.h>

#include "base/error.h"
#include "base/mem.h"

stdcpu_status stdcpu_arena_init(stdcpu_arena *a, size_t capacity, stdcpu_error *err)
{
    memset(a, 0, sizeof *a);
    capacity = stdcpu_round_up(capacity, STDCPU_ALIGN);
    a->base = stdcpu_aligned_alloc(capacity);
    if (!a->base)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "cannot allocate a %zu MiB activation arena",
                           capacity >> 20);
    a->cap = capacity;
    return STDCPU_OK;
}

void stdcpu_arena_release_all(stdcpu_arena *a)
{
    stdcpu_aligned_free(a->base);
    memset(a, 0, sizeof *a);
}

void *stdcpu_arena_alloc(stdcpu_arena *a, size_t bytes, stdcpu_error *err)
{
    size_t need = stdcpu_round_up(bytes ? bytes : 1, STDCPU_ALIGN);
    if (need < bytes || need > a->cap - a->used) {
        stdcpu_fail(err, STDCPU_ERR_NOMEM, "activation arena exhausted: %zu bytes requested, %zu of %zu used",
                    bytes, a->used, a->cap);
        return NULL;
    }
    void *p = a->base + a->used;
    a->used += need;
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}
