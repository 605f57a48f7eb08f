/* Core runtime: thread pool, arena, tensors, error reporting. */
#include <stdatomic.h>
#include <stdint.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/arena.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "testutil.h"

typedef struct {
    size_t n;
    double *out;
    atomic_int calls;
    atomic_int seen_nth;
} sum_job;

static void square_chunk(void *arg, int ith, int nth)
{
    sum_job *j = arg;
    size_t b, e;
    stdcpu_split_range(j->n, ith, nth, &b, &e);
    for (size_t i = b; i < e; i++)
        j->out[i] = (double)i * (double)i;
    atomic_fetch_add(&j->calls, 1);
    atomic_store(&j->seen_nth, nth);
}

START_TEST(test_pool_covers_range_every_thread_count)
{
    for (int threads = 1; threads <= 9; threads++) {
        stdcpu_pool *pool;
        stdcpu_error err;
        ck_assert_int_eq(stdcpu_pool_create(&pool, threads, &err), STDCPU_OK);
        ck_assert_int_eq(stdcpu_pool_threads(pool), threads);
        const size_t sizes[] = {0, 1, 7, 8, 9, 1000, 4097};
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            /* Many back-to-back runs: catches lost wake-ups and generation races. */
            for (int rep = 0; rep < 50; rep++) {
                sum_job j = {.n = sizes[si]};
                j.out = calloc(j.n + 1, sizeof(double));
                for (size_t i = 0; i < j.n; i++)
                    j.out[i] = -1;
                atomic_init(&j.calls, 0);
                atomic_init(&j.seen_nth, 0);
                stdcpu_pool_run(pool, square_chunk, &j);
                ck_assert_int_eq(atomic_load(&j.calls), threads);
                ck_assert_int_eq(atomic_load(&j.seen_nth), threads);
                for (size_t i = 0; i < j.n; i++)
                    ck_assert(j.out[i] == (double)i * (double)i);
                free(j.out);
            }
        }
        stdcpu_pool_destroy(pool);
    }
}
END_TEST

START_TEST(test_pool_run_n_caps_threads)
{
    stdcpu_pool *pool;
    ck_assert_int_eq(stdcpu_pool_create(&pool, 4, NULL), STDCPU_OK);
    sum_job j = {.n = 100};
    j.out = calloc(100, sizeof(double));
    atomic_init(&j.calls, 0);
    stdcpu_pool_run_n(pool, 2, square_chunk, &j);
    ck_assert_int_eq(atomic_load(&j.calls), 2);
    ck_assert_int_eq(atomic_load(&j.seen_nth), 2);
    for (size_t i = 0; i < 100; i++)
        ck_assert(j.out[i] == (double)i * (double)i);
    free(j.out);
    stdcpu_pool_destroy(pool);
    /* NULL pool runs inline */
    sum_job k = {.n = 5};
    k.out = calloc(5, sizeof(double));
    atomic_init(&k.calls, 0);
    stdcpu_pool_run(NULL, square_chunk, &k);
    ck_assert_int_eq(atomic_load(&k.calls), 1);
    free(k.out);
}
END_TEST

START_TEST(test_split_range_partitions)
{
    for (size_t n = 0; n < 40; n++)
        for (int nth = 1; nth < 12; nth++) {
            size_t expect = 0;
            for (int i = 0; i < nth; i++) {
                size_t b, e;
                stdcpu_split_range(n, i, nth, &b, &e);
                ck_assert_uint_eq(b, expect);
                ck_assert_uint_ge(e, b);
                ck_assert_uint_le(e - b, n / (size_t)nth + 1);
                expect = e;
            }
            ck_assert_uint_eq(expect, n);
        }
}
END_TEST

START_TEST(test_default_threads_env)
{
    setenv("STDCPU_THREADS", "3", 1);
    ck_assert_int_eq(stdcpu_default_threads(), 3);
    setenv("STDCPU_THREADS", "junk", 1);
    ck_assert_int_ge(stdcpu_default_threads(), 1);
    setenv("STDCPU_THREADS", "0", 1);
    ck_assert_int_ge(stdcpu_default_threads(), 1);
    unsetenv("STDCPU_THREADS");
    ck_assert_int_ge(stdcpu_default_threads(), 1);
}
END_TEST

START_TEST(test_arena_alignment_peak_and_exhaustion)
{
    stdcpu_arena a;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_arena_init(&a, 1000, &err), STDCPU_OK);
    void *p = stdcpu_arena_alloc(&a, 10, &err);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % STDCPU_ALIGN, 0);
    size_t m = stdcpu_arena_mark(&a);
    void *q = stdcpu_arena_alloc(&a, 500, &err);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq((uintptr_t)q % STDCPU_ALIGN, 0);
    ck_assert_uint_eq(stdcpu_arena_peak(&a), 64 + 512);
    stdcpu_arena_reset(&a, m);
    void *r = stdcpu_arena_alloc(&a, 100, &err);
    ck_assert_ptr_eq(r, q); /* reused after reset */
    ck_assert_uint_eq(stdcpu_arena_peak(&a), 64 + 512);
    ck_assert_ptr_null(stdcpu_arena_alloc(&a, 5000, &err));
    ck_assert_int_eq(err.status, STDCPU_ERR_NOMEM);
    ck_assert_ptr_null(stdcpu_arena_alloc(&a, SIZE_MAX, &err));
    stdcpu_arena_release_all(&a);
}
END_TEST

START_TEST(test_tensor_alloc_and_overflow)
{
    stdcpu_tensor t;
    stdcpu_error err;
    const int64_t shape[] = {2, 3, 5};
    ck_assert_int_eq(stdcpu_tensor_alloc(&t, STDCPU_DT_I8, 3, shape, &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_tensor_numel(&t), 30);
    ck_assert_uint_eq(stdcpu_tensor_nbytes(&t), 30);
    ck_assert_ptr_nonnull(t.scales);
    ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
    char buf[64];
    ck_assert_str_eq(stdcpu_shape_str(&t, buf, sizeof buf), "[2,3,5]");
    stdcpu_tensor_free(&t);
    const int64_t huge[] = {INT64_C(1) << 40, INT64_C(1) << 40};
    ck_assert_int_eq(stdcpu_tensor_alloc(&t, STDCPU_DT_F32, 2, huge, &err), STDCPU_ERR_LIMIT);
    const int64_t neg[] = {-1};
    ck_assert_int_eq(stdcpu_tensor_alloc(&t, STDCPU_DT_F32, 1, neg, &err), STDCPU_ERR_LIMIT);
}
END_TEST

START_TEST(test_error_messages_are_one_line)
{
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_fail(&err, STDCPU_ERR_FORMAT, "bad\nfile %d", 3), STDCPU_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "bad file 3");
    stdcpu_fail_prefix(&err, "%s: ", "x.png");
    ck_assert_str_eq(err.msg, "x.png: bad file 3");
    ck_assert_int_eq(err.status, STDCPU_ERR_FORMAT);
    ck_assert_int_eq(stdcpu_fail(NULL, STDCPU_ERR_IO, "ignored"), STDCPU_ERR_IO);
    ck_assert_str_eq(stdcpu_status_name(STDCPU_OK), "ok");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_pool_covers_range_every_thread_count);
    tcase_add_test(tc, test_pool_run_n_caps_threads);
    tcase_add_test(tc, test_split_range_partitions);
    tcase_add_test(tc, test_default_threads_env);
    tcase_add_test(tc, test_arena_alignment_peak_and_exhaustion);
    tcase_add_test(tc, test_tensor_alloc_and_overflow);
    tcase_add_test(tc, test_error_messages_are_one_line);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
