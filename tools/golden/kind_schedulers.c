/* kind "schedulers": alphas_cumprod/betas, timestep grids, multi-step runs
 * with given model outputs and noise, add_noise (golden README 3.10). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "golden.h"
#include "pipeline/scheduler.h"

/* Scheduler arithmetic is fp32 in both precisions: the int8 bound only
 * matters for networks, so it is the same tight bound here. */
#define SCHED_REL_L2 1e-5

static stdcpu_status make_sched(golden_case *gc, const char *name, stdcpu_scheduler *s, stdcpu_error *err)
{
    const stdcpu_json *all = stdcpu_json_get(gc->params, "schedulers");
    const stdcpu_json *spec = stdcpu_json_get(all, name);
    if (!spec)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "params.schedulers has no \"%s\"", name);
    stdcpu_sched_kind kind;
    const char *cls = stdcpu_json_get_str(spec, "class", NULL);
    if (stdcpu_sched_kind_parse(cls, &kind) != 0)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "scheduler class \"%s\" is not supported",
                           cls ? cls : "(none)");
    char path[4200];
    STDCPU_TRY(golden_model_path(gc, stdcpu_json_get_str(spec, "config", ""), path, sizeof path, err));
    stdcpu_json_doc *doc;
    STDCPU_TRY(stdcpu_json_parse_file(&doc, path, err));
    stdcpu_sched_config cfg;
    stdcpu_status st = stdcpu_sched_config_from_json(kind, stdcpu_json_root(doc),
                                                     stdcpu_json_get(spec, "from_config_overrides"), &cfg, err);
    stdcpu_json_free(doc);
    STDCPU_TRY(st);
    return stdcpu_sched_init(s, kind, &cfg, err);
}

static stdcpu_status run_combos(golden_case *gc, const char *name, stdcpu_scheduler *s, stdcpu_error *err)
{
    const stdcpu_json *combos = stdcpu_json_get(gc->params, "timestep_combos");
    for (size_t c = 0; c < stdcpu_json_count(combos); c++) {
        const stdcpu_json *combo = stdcpu_json_at(combos, c);
        int64_t N;
        double strength;
        if (!stdcpu_json_int(stdcpu_json_at(combo, 0), &N) || !stdcpu_json_double(stdcpu_json_at(combo, 1), &strength))
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "timestep_combos[%zu] is not [N, strength]", c);
        STDCPU_TRY(stdcpu_sched_set_timesteps(s, (int)N, err));
        char out[256];
        snprintf(out, sizeof out, "out.%s.timesteps.n%d_s%d.full", name, (int)N, (int)(100 * strength + 0.5));
        golden_check_i64(gc, out, s->timesteps, (size_t)s->n_steps);
        int k;
        STDCPU_TRY(stdcpu_sched_img2img(s, strength, &k, err));
        snprintf(out, sizeof out, "out.%s.timesteps.n%d_s%d.img2img", name, (int)N, (int)(100 * strength + 0.5));
        golden_check_i64(gc, out, s->timesteps + s->begin_index, (size_t)k);
    }
    return STDCPU_OK;
}

static stdcpu_status run_one(golden_case *gc, const stdcpu_json *run, stdcpu_error *err)
{
    const char *tag = stdcpu_json_get_str(run, "tag", NULL);
    const char *sname = stdcpu_json_get_str(run, "scheduler", NULL);
    if (!tag || !sname)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "a run lacks tag or scheduler");
    const int N = (int)stdcpu_json_get_int(run, "num_inference_steps", 0);
    const double strength = stdcpu_json_get_double(run, "strength", 1.0);
    const double eta = stdcpu_json_get_double(run, "eta", 0.0); /* null (LCM) -> 0 */
    stdcpu_scheduler s;
    STDCPU_TRY(make_sched(gc, sname, &s, err));
    stdcpu_status st;
    int k;
    float *sample = NULL, *mo = NULL, *noise = NULL, *prev = NULL, *aux = NULL;
    const stdcpu_st_tensor *ts;
    char name[256];
    if ((st = stdcpu_sched_set_timesteps(&s, N, err)) || (st = stdcpu_sched_img2img(&s, strength, &k, err)))
        goto done;
    snprintf(name, sizeof name, "in.%s.sample", tag);
    if ((st = golden_f32(gc, name, &sample, &ts, err)))
        goto done;
    const size_t n = (size_t)ts->numel;
    snprintf(name, sizeof name, "in.%s.model_output", tag);
    if ((st = golden_f32(gc, name, &mo, NULL, err)))
        goto done;
    snprintf(name, sizeof name, "in.%s.noise", tag);
    if ((st = golden_f32(gc, name, &noise, NULL, err)))
        goto done;
    prev = malloc((size_t)k * n * sizeof(float));
    aux = malloc((size_t)k * n * sizeof(float));
    if (!prev || !aux) {
        st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        goto done;
    }
    const float *x = sample;
    for (int j = 0; j < k; j++) {
        const int i = s.begin_index + j;
        if ((st = stdcpu_sched_step(&s, i, mo + (size_t)j * n, x, noise + (size_t)j * n, eta, prev + (size_t)j * n,
                                    aux + (size_t)j * n, n, err)))
            goto done;
        x = prev + (size_t)j * n;
    }
    snprintf(name, sizeof name, "out.%s.prev_sample", tag);
    golden_check_f32(gc, name, prev, (size_t)k * n, SCHED_REL_L2);
    const char *aux_name = s.kind == STDCPU_SCHED_TCD   ? "pred_noised_sample"
                           : s.kind == STDCPU_SCHED_LCM ? "denoised"
                                                        : "pred_original_sample";
    snprintf(name, sizeof name, "out.%s.%s", tag, aux_name);
    golden_check_f32(gc, name, aux, (size_t)k * n, SCHED_REL_L2);
done:
    stdcpu_aligned_free(sample);
    stdcpu_aligned_free(mo);
    stdcpu_aligned_free(noise);
    free(prev);
    free(aux);
    stdcpu_sched_free(&s);
    return st;
}

stdcpu_status golden_kind_schedulers(golden_case *gc, stdcpu_error *err)
{
    const stdcpu_json *scheds = stdcpu_json_get(gc->params, "schedulers");
    for (size_t i = 0; i < stdcpu_json_count(scheds); i++) {
        const char *name = stdcpu_json_at(scheds, i)->key;
        stdcpu_scheduler s;
        STDCPU_TRY(make_sched(gc, name, &s, err));
        if (i == 0) {
            golden_check_f32(gc, "out.alphas_cumprod", s.alphas_cumprod, (size_t)s.cfg.num_train_timesteps,
                             SCHED_REL_L2);
            golden_check_f32(gc, "out.betas", s.betas, (size_t)s.cfg.num_train_timesteps, SCHED_REL_L2);
        }
        stdcpu_status st = run_combos(gc, name, &s, err);
        stdcpu_sched_free(&s);
        STDCPU_TRY(st);
    }
    const stdcpu_json *runs = stdcpu_json_get(gc->params, "runs");
    for (size_t i = 0; i < stdcpu_json_count(runs); i++)
        STDCPU_TRY(run_one(gc, stdcpu_json_at(runs, i), err));

    const char *an = stdcpu_json_get_str(stdcpu_json_get(gc->params, "add_noise"), "scheduler", NULL);
    if (an) {
        stdcpu_scheduler s;
        STDCPU_TRY(make_sched(gc, an, &s, err));
        float *x0 = NULL, *noise = NULL, *out = NULL;
        int64_t *t = NULL;
        const stdcpu_st_tensor *tx;
        stdcpu_status st;
        if (!(st = golden_f32(gc, "in.add_noise.original", &x0, &tx, err)) &&
            !(st = golden_f32(gc, "in.add_noise.noise", &noise, NULL, err)) &&
            !(st = golden_i64(gc, "in.add_noise.timestep", &t, NULL, err))) {
            const size_t n = (size_t)tx->numel;
            out = malloc(n * sizeof(float));
            if (!out)
                st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
            else if (!(st = stdcpu_sched_add_noise(&s, x0, noise, t[0], out, n, err)))
                golden_check_f32(gc, "out.add_noise.noisy", out, n, SCHED_REL_L2);
        }
        stdcpu_aligned_free(x0);
        stdcpu_aligned_free(noise);
        free(out);
        free(t);
        stdcpu_sched_free(&s);
        STDCPU_TRY(st);
    }
    return STDCPU_OK;
}
