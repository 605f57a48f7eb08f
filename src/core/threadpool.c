#include "config.h"

#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/error.h"

#define STDCPU_MAX_THREADS 512
/* Spin this many polls before sleeping on the condition variable: a UNet
 * issues thousands of short parallel regions, and a futex wake-up per region
 * costs more than the region on small layers. */
#define SPIN_POLLS 20000

struct stdcpu_pool {
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    /* Job of the current generation. */
    stdcpu_task_fn fn;
    void *arg;
    int nth; /* threads taking part in this job */
    atomic_uint generation;
    atomic_int pending; /* workers still running this generation */
    atomic_int quit;
    _Atomic uint64_t ops; /* arithmetic done by ops on this pool */
};

typedef struct {
    stdcpu_pool *pool;
    int ith;
} worker_arg;

static worker_arg *worker_args_of(stdcpu_pool *p) { return (worker_arg *)(p + 1); }

static void *worker_main(void *varg)
{
    worker_arg *wa = varg;
    stdcpu_pool *p = wa->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               spins < SPIN_POLLS)
            spins++;
        if (gen == seen) {
            pthread_mutex_lock(&p->mu);
            while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
                   !atomic_load(&p->quit))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = gen;
        if (atomic_load(&p->quit))
            return NULL;
        if (wa->ith < p->nth)
            p->fn(p->arg, wa->ith, p->nth);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int stdcpu_default_threads(void)
{
    const char *env = getenv("STDCPU_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= STDCPU_MAX_THREADS)
            return (int)v;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > STDCPU_MAX_THREADS)
        n = STDCPU_MAX_THREADS;
    return (int)n;
}

stdcpu_status stdcpu_pool_create(stdcpu_pool **out, int threads, stdcpu_error *err)
{
    *out = NULL;
    if (threads <= 0)
        threads = stdcpu_default_threads();
    if (threads > STDCPU_MAX_THREADS)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "thread count %d is over the limit of %d", threads,
                           STDCPU_MAX_THREADS);
    stdcpu_pool *p = calloc(1, sizeof *p + (size_t)threads * sizeof(worker_arg));
    if (!p)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory creating the thread pool");
    p->nthreads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->quit, 0);
    atomic_init(&p->ops, 0);
    if (threads > 1) {
        p->threads = calloc((size_t)threads - 1, sizeof(pthread_t));
        if (!p->threads) {
            stdcpu_pool_destroy(p);
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory creating the thread pool");
        }
    }
    for (int i = 1; i < threads; i++) {
        worker_args_of(p)[i].pool = p;
        worker_args_of(p)[i].ith = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, &worker_args_of(p)[i]) != 0) {
            p->nthreads = i; /* destroy joins the ones started */
            stdcpu_pool_destroy(p);
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "cannot start thread %d of %d", i, threads);
        }
    }
    *out = p;
    return STDCPU_OK;
}

void stdcpu_pool_destroy(stdcpu_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->nthreads; i++)
        pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int stdcpu_pool_threads(const stdcpu_pool *p) { return p ? p->nthreads : 1; }

void stdcpu_pool_run_n(stdcpu_pool *p, int nth_max, stdcpu_task_fn fn, void *arg)
{
    int nth = p ? p->nthreads : 1;
    if (nth_max < nth)
        nth = nth_max < 1 ? 1 : nth_max;
    if (!p || nth == 1 || p->nthreads == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->nth = nth;
    atomic_store_explicit(&p->pending, p->nthreads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    fn(arg, 0, nth);

    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0 && spins < SPIN_POLLS)
        spins++;
    if (atomic_load_explicit(&p->pending, memory_order_acquire) != 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void stdcpu_pool_run(stdcpu_pool *p, stdcpu_task_fn fn, void *arg)
{
    stdcpu_pool_run_n(p, p ? p->nthreads : 1, fn, arg);
}

void stdcpu_pool_add_ops(stdcpu_pool *p, uint64_t ops)
{
    if (p)
        atomic_fetch_add_explicit(&p->ops, ops, memory_order_relaxed);
}

uint64_t stdcpu_pool_ops(const stdcpu_pool *p)
{
    return p ? atomic_load_explicit(&((stdcpu_pool *)p)->ops, memory_order_relaxed) : 0;
}

void stdcpu_pool_reset_ops(stdcpu_pool *p)
{
    if (p)
        atomic_store_explicit(&p->ops, 0, memory_order_relaxed);
}
