/* CPU detection and the dispatch tables. */
#include "simd/cpu.h"
#include "simd/dispatch.h"
#include "testutil.h"

START_TEST(test_tables_complete_for_every_available_isa)
{
    int n = 0;
    for (int i = 0; i < STDCPU_ISA_COUNT; i++) {
        const stdcpu_kernels *k = stdcpu_kernels_for_isa((stdcpu_isa)i);
        if (!stdcpu_isa_available((stdcpu_isa)i)) {
            ck_assert_ptr_null(k);
            continue;
        }
        ck_assert_ptr_nonnull(k);
        ck_assert_int_eq(k->isa, i);
        ck_assert(stdcpu_gemm_complete(&k->gemm));
        ck_assert(stdcpu_attn_complete(&k->attn));
        ck_assert(stdcpu_norm_complete(&k->norm));
        ck_assert(stdcpu_eltwise_complete(&k->eltwise));
        n++;
    }
    ck_assert_int_ge(n, 1);
    ck_assert_ptr_nonnull(stdcpu_kernels_for_isa(STDCPU_ISA_SCALAR));
    ck_assert_ptr_null(stdcpu_kernels_for_isa(STDCPU_ISA_COUNT));
}
END_TEST

START_TEST(test_cap_never_raises)
{
    ck_assert_int_eq(stdcpu_isa_best("scalar"), STDCPU_ISA_SCALAR);
    stdcpu_isa best = stdcpu_isa_best(NULL);
    ck_assert(stdcpu_isa_available(best));
    for (int i = 0; i < STDCPU_ISA_COUNT; i++) {
        stdcpu_isa got = stdcpu_isa_best(stdcpu_isa_name((stdcpu_isa)i));
        ck_assert(stdcpu_isa_available(got));
        if (stdcpu_isa_available((stdcpu_isa)i))
            ck_assert_int_eq(got, i); /* an available ISA is used exactly */
    }
    ck_assert_int_eq(stdcpu_isa_best("bogus"), best);
    ck_assert_int_eq(stdcpu_isa_best(""), best);
}
END_TEST

START_TEST(test_env_cap_applies_to_active_table)
{
    /* The test driver runs this program with STDCPU_ISA unset; the active
     * table must then be the best one. (test_cli.sh checks the capped case.) */
    const char *env = getenv("STDCPU_ISA");
    ck_assert_int_eq(stdcpu_kernels_get()->isa, stdcpu_isa_best(env));
    ck_assert_int_eq(stdcpu_isa_active(), stdcpu_isa_best(env));
}
END_TEST

START_TEST(test_parse_names)
{
    stdcpu_isa isa;
    ck_assert_int_eq(stdcpu_isa_parse("AVX512VNNI", &isa), 0);
    ck_assert_int_eq(isa, STDCPU_ISA_AVX512VNNI);
    ck_assert_int_eq(stdcpu_isa_parse("neondot", &isa), 0);
    ck_assert_int_eq(isa, STDCPU_ISA_NEONDOT);
    ck_assert_int_eq(stdcpu_isa_parse("sse9", &isa), -1);
    ck_assert(stdcpu_cpu_isa_mask() & 1u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("simd_dispatch");
    TCase *tc = tcase_create("dispatch");
    tcase_add_test(tc, test_tables_complete_for_every_available_isa);
    tcase_add_test(tc, test_cap_never_raises);
    tcase_add_test(tc, test_env_cap_applies_to_active_table);
    tcase_add_test(tc, test_parse_names);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
