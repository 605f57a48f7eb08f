/* A bump allocator for activations: one aligned block, 64-byte aligned
 * allocations, LIFO release by mark, and the high-water mark that tells how
 * much memory a network really needed (the number we track). */
#ifndef STDCPU_CORE_ARENA_H
#define STDCPU_CORE_ARENA_H

#include <stddef.h>

#include "stdcpu.h"

typedef struct stdcpu_arena {
    unsigned char *base;
    size_t cap;
    size_t used;
    size_t peak;
} stdcpu_arena;

stdcpu_status stdcpu_arena_init(stdcpu_arena *a, size_t capacity, stdcpu_error *err);
void stdcpu_arena_release_all(stdcpu_arena *a); /* frees the block */

/* NULL (and err filled) when the arena is exhausted. */
void *stdcpu_arena_alloc(stdcpu_arena *a, size_t bytes, stdcpu_error *err);

static inline size_t stdcpu_arena_mark(const stdcpu_arena *a) { return a->used; }
/* Frees everything allocated after mark. */
static inline void stdcpu_arena_reset(stdcpu_arena *a, size_t mark)
{
    if (mark <= a->used)
        a->used = mark;
}
static inline size_t stdcpu_arena_peak(const stdcpu_arena *a) { return a->peak; }

#endif
