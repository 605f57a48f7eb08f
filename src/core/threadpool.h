/* A persistent thread pool. Work is handed out as (ith, nth): every one of
 * nth threads (the caller is thread 0) runs fn(arg, ith, nth) once and the
 * call returns when all have finished. No allocation per call. */
#ifndef STDCPU_CORE_THREADPOOL_H
#define STDCPU_CORE_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "stdcpu.h"

typedef struct stdcpu_pool stdcpu_pool;
typedef void (*stdcpu_task_fn)(void *arg, int ith, int nth);

/* threads <= 0: $STDCPU_THREADS if set and valid, else the online CPU count. */
stdcpu_status stdcpu_pool_create(stdcpu_pool **out, int threads, stdcpu_error *err);
void stdcpu_pool_destroy(stdcpu_pool *pool);
int stdcpu_pool_threads(const stdcpu_pool *pool);

/* Runs fn on all threads of the pool. pool may be NULL (runs fn(arg, 0, 1)).
 * Not reentrant: fn must not call stdcpu_pool_run on the same pool. */
void stdcpu_pool_run(stdcpu_pool *pool, stdcpu_task_fn fn, void *arg);

/* Runs fn on min(nth_max, threads) threads: for work with few chunks. */
void stdcpu_pool_run_n(stdcpu_pool *pool, int nth_max, stdcpu_task_fn fn, void *arg);

/* Work accounting for benchmarks: the ops add the arithmetic they perform
 * (2 per multiply-add) to their pool's counter. NULL pools are ignored. */
void stdcpu_pool_add_ops(stdcpu_pool *pool, uint64_t ops);
uint64_t stdcpu_pool_ops(const stdcpu_pool *pool);
void stdcpu_pool_reset_ops(stdcpu_pool *pool);

/* The default thread count: $STDCPU_THREADS, else online CPUs (>= 1). */
int stdcpu_default_threads(void);

/* Splits [0, n) into nth near-equal contiguous chunks; chunk ith is [*b, *e). */
static inline void stdcpu_split_range(size_t n, int ith, int nth, size_t *b, size_t *e)
{
    const size_t q = n / (size_t)nth, r = n % (size_t)nth;
    const size_t i = (size_t)ith;
    *b = i * q + (i < r ? i : r);
    *e = *b + q + (i < r ? 1 : 0);
}

#endif
