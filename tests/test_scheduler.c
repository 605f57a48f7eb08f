/* Scheduler API edges not covered by the golden case (which checks the
 * numbers of TCD / LCM / DDIM against diffusers). */
#include <math.h>

#include "pipeline/scheduler.h"
#include "testutil.h"

START_TEST(test_steps_for_evals_matches_recipe)
{
    /* STD recipe: 8 UNet steps at strength 0.75 come from 11 scheduler steps. */
    ck_assert_int_eq(stdcpu_sched_steps_for_evals(8, 0.75), 11);
    ck_assert_int_eq(stdcpu_sched_img2img_steps(11, 0.75), 8);
    ck_assert_int_eq(stdcpu_sched_steps_for_evals(2, 0.5), 4);
    ck_assert_int_eq(stdcpu_sched_steps_for_evals(4, 1.0), 4);
    for (int steps = 1; steps <= 20; steps++)
        for (int s = 10; s <= 100; s += 5) {
            int N = stdcpu_sched_steps_for_evals(steps, s / 100.0);
            ck_assert_int_eq(stdcpu_sched_img2img_steps(N, s / 100.0), steps);
        }
}
END_TEST

START_TEST(test_rejects_bad_settings)
{
    stdcpu_sched_config cfg;
    stdcpu_sched_config_defaults(STDCPU_SCHED_TCD, &cfg);
    stdcpu_scheduler s;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_sched_init(&s, STDCPU_SCHED_TCD, &cfg, &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_sched_set_timesteps(&s, 0, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_sched_set_timesteps(&s, 51, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_sched_set_timesteps(&s, 4, &err), STDCPU_OK);
    int k;
    ck_assert_int_eq(stdcpu_sched_img2img(&s, 0.0, &k, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_sched_img2img(&s, 1.5, &k, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_sched_img2img(&s, 0.1, &k, &err), STDCPU_ERR_INVALID_ARG); /* int(0.4) = 0 steps */
    ck_assert_ptr_nonnull(strstr(err.msg, "keeps no step"));
    ck_assert_int_eq(stdcpu_sched_img2img(&s, 0.5, &k, &err), STDCPU_OK);
    ck_assert_int_eq(k, 2);
    ck_assert_int_eq(s.begin_index, 2);
    float x[3] = {1, 2, 3}, e[3] = {0.1f, 0.2f, 0.3f}, out[3];
    ck_assert_int_eq(stdcpu_sched_step(&s, 4, e, x, NULL, 0.0, out, NULL, 3, &err), STDCPU_ERR_INVALID_ARG);
    /* TCD with gamma > 0 draws noise on every step but the last. */
    ck_assert(stdcpu_sched_step_needs_noise(&s, 2, 0.3));
    ck_assert(!stdcpu_sched_step_needs_noise(&s, 3, 0.3));
    ck_assert_int_eq(stdcpu_sched_step(&s, 2, e, x, NULL, 0.3, out, NULL, 3, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_int_eq(stdcpu_sched_step(&s, 3, e, x, NULL, 0.3, out, NULL, 3, &err), STDCPU_OK);
    stdcpu_sched_free(&s);
}
END_TEST

START_TEST(test_tables_monotonic)
{
    for (int kind = 0; kind < 3; kind++) {
        stdcpu_sched_config cfg;
        stdcpu_sched_config_defaults((stdcpu_sched_kind)kind, &cfg);
        stdcpu_scheduler s;
        ck_assert_int_eq(stdcpu_sched_init(&s, (stdcpu_sched_kind)kind, &cfg, NULL), STDCPU_OK);
        for (int i = 1; i < cfg.num_train_timesteps; i++) {
            ck_assert(s.betas[i] >= s.betas[i - 1]);
            ck_assert(s.alphas_cumprod[i] < s.alphas_cumprod[i - 1]);
        }
        ck_assert(fabsf(s.betas[0] - (float)cfg.beta_start) < 1e-7f);
        ck_assert_int_eq(stdcpu_sched_set_timesteps(&s, 7, NULL), STDCPU_OK);
        for (int i = 1; i < s.n_steps; i++)
            ck_assert(s.timesteps[i] < s.timesteps[i - 1]);
        stdcpu_sched_free(&s);
    }
}
END_TEST

START_TEST(test_ddim_trailing_and_config_errors)
{
    stdcpu_json_doc *doc;
    const char *js = "{\"timestep_spacing\": \"trailing\", \"beta_schedule\": \"scaled_linear\"}";
    ck_assert_int_eq(stdcpu_json_parse(&doc, js, strlen(js), NULL), STDCPU_OK);
    stdcpu_sched_config cfg;
    ck_assert_int_eq(stdcpu_sched_config_from_json(STDCPU_SCHED_DDIM, stdcpu_json_root(doc), NULL, &cfg, NULL),
                     STDCPU_OK);
    stdcpu_json_free(doc);
    stdcpu_scheduler s;
    ck_assert_int_eq(stdcpu_sched_init(&s, STDCPU_SCHED_DDIM, &cfg, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_sched_set_timesteps(&s, 4, NULL), STDCPU_OK);
    /* round(arange(1000, 0, -250)) - 1 */
    ck_assert_int_eq(s.timesteps[0], 999);
    ck_assert_int_eq(s.timesteps[3], 249);
    stdcpu_sched_free(&s);

    const char *bad = "{\"prediction_type\": \"v_prediction\"}";
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_json_parse(&doc, bad, strlen(bad), NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_sched_config_from_json(STDCPU_SCHED_LCM, stdcpu_json_root(doc), NULL, &cfg, &err),
                     STDCPU_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "v_prediction"));
    stdcpu_json_free(doc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scheduler");
    TCase *tc = tcase_create("scheduler");
    tcase_add_test(tc, test_steps_for_evals_matches_recipe);
    tcase_add_test(tc, test_rejects_bad_settings);
    tcase_add_test(tc, test_tables_monotonic);
    tcase_add_test(tc, test_ddim_trailing_and_config_errors);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
