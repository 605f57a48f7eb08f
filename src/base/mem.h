/* Aligned allocation and overflow-checked size arithmetic. */
#ifndef STDCPU_BASE_MEM_H
#define STDCPU_BASE_MEM_H

#include <stddef.h>
#include <stdint.h>

/* Every tensor buffer is 64-byte aligned: one cache line, one zmm register. */
#define STDCPU_ALIGN 64

void *stdcpu_aligned_alloc(size_t bytes);  /* NULL on failure; bytes==0 gives a valid pointer */
void *stdcpu_aligned_calloc(size_t bytes);
void stdcpu_aligned_free(void *p);

/* Return 0 and store a*b (a+b) in *out, or return -1 on overflow. */
static inline int stdcpu_mul_size(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}
static inline int stdcpu_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return -1;
    *out = a + b;
    return 0;
}
static inline size_t stdcpu_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
/* Scratch layouts: the offset of the next part of `bytes`, advancing *off
 * past it, each part 64-byte aligned. */
static inline size_t stdcpu_layout_part(size_t *off, size_t bytes)
{
    const size_t at = *off;
    *off += stdcpu_round_up(bytes, 64);
    return at;
}

#endif
