#include "pipeline/scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

static const char *const kind_names[] = {"TCDScheduler", "LCMScheduler", "DDIMScheduler"};

int stdcpu_sched_kind_parse(const char *class_name, stdcpu_sched_kind *kind)
{
    for (int i = 0; i < 3; i++)
        if (class_name && strcmp(class_name, kind_names[i]) == 0) {
            *kind = (stdcpu_sched_kind)i;
            return 0;
        }
    return -1;
}

const char *stdcpu_sched_kind_name(stdcpu_sched_kind kind)
{
    return (unsigned)kind < 3 ? kind_names[kind] : "?";
}

void stdcpu_sched_config_defaults(stdcpu_sched_kind kind, stdcpu_sched_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->num_train_timesteps = 1000;
    cfg->original_inference_steps = 50;
    cfg->timestep_scaling = 10.0;
    cfg->sigma_data = 0.5;
    cfg->set_alpha_to_one = 1;
    cfg->spacing_leading = 1;
    if (kind == STDCPU_SCHED_DDIM) {
        cfg->beta_start = 0.0001;
        cfg->beta_end = 0.02;
        cfg->scaled_linear = 0;
    } else {
        cfg->beta_start = 0.00085;
        cfg->beta_end = 0.012;
        cfg->scaled_linear = 1;
    }
}

/* Applies the keys of one JSON object that this scheduler class reads. */
static stdcpu_status apply_json(stdcpu_sched_kind kind, const stdcpu_json *o, stdcpu_sched_config *cfg,
                                stdcpu_error *err)
{
    if (!o)
        return STDCPU_OK;
    if (o->type != STDCPU_JSON_OBJECT)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "scheduler config is not a JSON object");
    int64_t iv;
    double dv;
    int bv;
    const char *sv;
    if (stdcpu_json_int(stdcpu_json_get(o, "num_train_timesteps"), &iv))
        cfg->num_train_timesteps = (int)(iv > 0 && iv <= STDCPU_SCHED_MAX_TRAIN ? iv : -1);
    if (stdcpu_json_double(stdcpu_json_get(o, "beta_start"), &dv))
        cfg->beta_start = dv;
    if (stdcpu_json_double(stdcpu_json_get(o, "beta_end"), &dv))
        cfg->beta_end = dv;
    if ((sv = stdcpu_json_str(stdcpu_json_get(o, "beta_schedule")))) {
        if (!strcmp(sv, "scaled_linear"))
            cfg->scaled_linear = 1;
        else if (!strcmp(sv, "linear"))
            cfg->scaled_linear = 0;
        else
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "beta_schedule \"%s\" is not supported", sv);
    }
    const stdcpu_json *tb = stdcpu_json_get(o, "trained_betas");
    if (tb && tb->type != STDCPU_JSON_NULL)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "trained_betas are not supported");
    if (stdcpu_json_int(stdcpu_json_get(o, "steps_offset"), &iv))
        cfg->steps_offset = (int)iv;
    if (stdcpu_json_bool(stdcpu_json_get(o, "set_alpha_to_one"), &bv))
        cfg->set_alpha_to_one = bv;
    if (stdcpu_json_int(stdcpu_json_get(o, "original_inference_steps"), &iv))
        cfg->original_inference_steps = (int)iv;
    if (stdcpu_json_double(stdcpu_json_get(o, "timestep_scaling"), &dv))
        cfg->timestep_scaling = dv;
    if ((sv = stdcpu_json_str(stdcpu_json_get(o, "timestep_spacing"))) && kind == STDCPU_SCHED_DDIM) {
        /* TCD and LCM ignore timestep_spacing: their grid comes from the
         * original 50-step schedule. */
        if (!strcmp(sv, "leading"))
            cfg->spacing_leading = 1;
        else if (!strcmp(sv, "trailing"))
            cfg->spacing_leading = 0;
        else
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "DDIM timestep_spacing \"%s\" is not supported", sv);
    }
    if ((sv = stdcpu_json_str(stdcpu_json_get(o, "prediction_type"))) && strcmp(sv, "epsilon") != 0)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "prediction_type \"%s\" is not supported (epsilon only)",
                           sv);
    if (stdcpu_json_bool(stdcpu_json_get(o, "thresholding"), &bv) && bv)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "dynamic thresholding is not supported");
    if (kind == STDCPU_SCHED_DDIM && stdcpu_json_bool(stdcpu_json_get(o, "clip_sample"), &bv) && bv)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "DDIM clip_sample is not supported");
    return STDCPU_OK;
}

stdcpu_status stdcpu_sched_config_from_json(stdcpu_sched_kind kind, const stdcpu_json *config,
                                            const stdcpu_json *overrides, stdcpu_sched_config *cfg,
                                            stdcpu_error *err)
{
    stdcpu_sched_config_defaults(kind, cfg);
    STDCPU_TRY(apply_json(kind, config, cfg, err));
    STDCPU_TRY(apply_json(kind, overrides, cfg, err));
    if (cfg->num_train_timesteps < 2)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "num_train_timesteps must be in 2..%d", STDCPU_SCHED_MAX_TRAIN);
    if (cfg->original_inference_steps < 1 || cfg->original_inference_steps > cfg->num_train_timesteps)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "original_inference_steps %d is out of range",
                           cfg->original_inference_steps);
    return STDCPU_OK;
}

/* torch.linspace(start, end, n, dtype=float32) on CPU: fp32 arithmetic,
 * the first half counted up from start, the second half down from end. */
static void torch_linspace_f32(float start, float end, int n, float *out)
{
    const float step = (end - start) / (float)(n - 1);
    const int half = n / 2;
    for (int i = 0; i < n; i++)
        out[i] = i < half ? start + step * (float)i : end - step * (float)(n - i - 1);
}

stdcpu_status stdcpu_sched_init(stdcpu_scheduler *s, stdcpu_sched_kind kind, const stdcpu_sched_config *cfg,
                                stdcpu_error *err)
{
    memset(s, 0, sizeof *s);
    if ((unsigned)kind > STDCPU_SCHED_DDIM)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "unknown scheduler kind %d", (int)kind);
    const int n = cfg->num_train_timesteps;
    if (n < 2 || n > STDCPU_SCHED_MAX_TRAIN)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "num_train_timesteps %d is out of range", n);
    s->kind = kind;
    s->cfg = *cfg;
    s->betas = malloc((size_t)n * sizeof(float));
    s->alphas_cumprod = malloc((size_t)n * sizeof(float));
    if (!s->betas || !s->alphas_cumprod) {
        stdcpu_sched_free(s);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory for the scheduler tables");
    }
    if (cfg->scaled_linear) {
        torch_linspace_f32((float)sqrt(cfg->beta_start), (float)sqrt(cfg->beta_end), n, s->betas);
        for (int i = 0; i < n; i++)
            s->betas[i] = s->betas[i] * s->betas[i];
    } else {
        torch_linspace_f32((float)cfg->beta_start, (float)cfg->beta_end, n, s->betas);
    }
    float acc = 1.0f;
    for (int i = 0; i < n; i++) {
        acc *= 1.0f - s->betas[i];
        s->alphas_cumprod[i] = acc;
    }
    s->final_alpha_cumprod = cfg->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    return STDCPU_OK;
}

void stdcpu_sched_free(stdcpu_scheduler *s)
{
    free(s->betas);
    free(s->alphas_cumprod);
    s->betas = s->alphas_cumprod = NULL;
}

stdcpu_status stdcpu_sched_set_timesteps(stdcpu_scheduler *s, int N, stdcpu_error *err)
{
    const int T = s->cfg.num_train_timesteps;
    if (s->kind == STDCPU_SCHED_DDIM) {
        if (N < 1 || N > T || N > STDCPU_SCHED_MAX_STEPS)
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "DDIM needs 1..%d steps, not %d",
                               T < STDCPU_SCHED_MAX_STEPS ? T : STDCPU_SCHED_MAX_STEPS, N);
        for (int i = 0; i < N; i++) {
            int64_t t;
            if (s->cfg.spacing_leading)
                t = (int64_t)(N - 1 - i) * (T / N) + s->cfg.steps_offset;
            else /* trailing: round(arange(T, 0, -T/N)) - 1 */
                t = (int64_t)llround((double)T - (double)i * ((double)T / N)) - 1;
            if (t < 0 || t >= T)
                return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "DDIM timestep %lld is outside 0..%d",
                                   (long long)t, T - 1);
            s->timesteps[i] = t;
        }
    } else {
        /* TCD and LCM: the grid of the original schedule, k = T // 50:
         * origin = [k*i - 1 for i in 1..50] reversed; pick floor(linspace(0, 50, N, endpoint=False)). */
        const int orig = s->cfg.original_inference_steps;
        if (N < 1 || N > orig)
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "%s needs 1..%d steps, not %d",
                               stdcpu_sched_kind_name(s->kind), orig, N);
        const int k = T / orig;
        for (int i = 0; i < N; i++) {
            const int idx = (int)floor((double)i * ((double)orig / (double)N));
            s->timesteps[i] = (int64_t)k * (orig - idx) - 1;
        }
    }
    s->n_steps = N;
    s->begin_index = 0;
    return STDCPU_OK;
}

int stdcpu_sched_img2img_steps(int N, double strength)
{
    /* int(N * strength) in double precision, truncated, at most N. */
    double prod = (double)N * strength;
    int init = prod < 0 ? 0 : (int)prod;
    return init < N ? init : N;
}

int stdcpu_sched_steps_for_evals(int steps, double strength)
{
    for (int N = steps; N <= STDCPU_SCHED_MAX_STEPS; N++)
        if (stdcpu_sched_img2img_steps(N, strength) == steps)
            return N;
    return -1;
}

stdcpu_status stdcpu_sched_img2img(stdcpu_scheduler *s, double strength, int *k, stdcpu_error *err)
{
    if (!(strength > 0.0 && strength <= 1.0))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "strength must be in (0, 1], not %g", strength);
    const int init = stdcpu_sched_img2img_steps(s->n_steps, strength);
    if (init < 1)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                           "strength %g keeps no step of %d: raise the strength or the step count", strength,
                           s->n_steps);
    s->begin_index = s->n_steps - init;
    *k = init;
    return STDCPU_OK;
}

int stdcpu_sched_step_needs_noise(const stdcpu_scheduler *s, int i, double eta)
{
    switch (s->kind) {
    case STDCPU_SCHED_TCD: return eta > 0.0 && i != s->n_steps - 1;
    case STDCPU_SCHED_LCM: return i != s->n_steps - 1;
    case STDCPU_SCHED_DDIM: return eta > 0.0;
    }
    return 0;
}

static float alpha_at(const stdcpu_scheduler *s, int64_t t)
{
    return t >= 0 ? s->alphas_cumprod[t] : s->final_alpha_cumprod;
}

stdcpu_status stdcpu_sched_step(const stdcpu_scheduler *s, int i, const float *model_out, const float *sample,
                                const float *noise, double eta, float *prev, float *aux, size_t n,
                                stdcpu_error *err)
{
    if (i < 0 || i >= s->n_steps)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "step index %d outside 0..%d", i, s->n_steps - 1);
    const int need_noise = stdcpu_sched_step_needs_noise(s, i, eta);
    if (need_noise && !noise)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "%s step %d needs noise", stdcpu_sched_kind_name(s->kind),
                           i);
    const int64_t t = s->timesteps[i];
    const int T = s->cfg.num_train_timesteps;
    const float a_t = s->alphas_cumprod[t];
    const float sqrt_b_t = sqrtf(1.0f - a_t), sqrt_a_t = sqrtf(a_t);

    if (s->kind == STDCPU_SCHED_TCD) {
        const int64_t t_prev = i + 1 < s->n_steps ? s->timesteps[i + 1] : 0;
        const int64_t ts = (int64_t)floorf((float)(1.0 - eta) * (float)t_prev);
        if (ts < 0 || ts >= T)
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "TCD gamma %g gives timestep %lld", eta, (long long)ts);
        const float a_prev = alpha_at(s, t_prev), a_s = s->alphas_cumprod[ts];
        const float sqrt_a_s = sqrtf(a_s), sqrt_b_s = sqrtf(1.0f - a_s);
        const float ratio = a_prev / a_s;
        const float c_keep = sqrtf(ratio), c_noise = sqrtf(1.0f - ratio);
        for (size_t j = 0; j < n; j++) {
            const float x0 = (sample[j] - sqrt_b_t * model_out[j]) / sqrt_a_t;
            const float xs = sqrt_a_s * x0 + sqrt_b_s * model_out[j];
            if (aux)
                aux[j] = xs;
            prev[j] = need_noise ? c_keep * xs + c_noise * noise[j] : xs;
        }
    } else if (s->kind == STDCPU_SCHED_LCM) {
        const int64_t t_prev = i + 1 < s->n_steps ? s->timesteps[i + 1] : t;
        const float a_prev = alpha_at(s, t_prev);
        const float sqrt_a_prev = sqrtf(a_prev), sqrt_b_prev = sqrtf(1.0f - a_prev);
        const float sd2 = (float)(s->cfg.sigma_data * s->cfg.sigma_data);
        const float scaled = (float)t * (float)s->cfg.timestep_scaling;
        const float c_skip = sd2 / (scaled * scaled + sd2);
        const float c_out = scaled / sqrtf(scaled * scaled + sd2);
        for (size_t j = 0; j < n; j++) {
            const float x0 = (sample[j] - sqrt_b_t * model_out[j]) / sqrt_a_t;
            const float denoised = c_out * x0 + c_skip * sample[j];
            if (aux)
                aux[j] = denoised;
            prev[j] = need_noise ? sqrt_a_prev * denoised + sqrt_b_prev * noise[j] : denoised;
        }
    } else {
        const int64_t t_prev = t - T / s->n_steps;
        const float a_prev = alpha_at(s, t_prev);
        const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
        const float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
        const float std_dev = (float)eta * sqrtf(variance);
        const float c_dir = sqrtf(1.0f - a_prev - std_dev * std_dev), sqrt_a_prev = sqrtf(a_prev);
        for (size_t j = 0; j < n; j++) {
            const float x0 = (sample[j] - sqrt_b_t * model_out[j]) / sqrt_a_t;
            if (aux)
                aux[j] = x0;
            float p = sqrt_a_prev * x0 + c_dir * model_out[j];
            if (need_noise)
                p = p + std_dev * noise[j];
            prev[j] = p;
        }
    }
    return STDCPU_OK;
}

stdcpu_status stdcpu_sched_add_noise(const stdcpu_scheduler *s, const float *x0, const float *noise, int64_t t,
                                     float *out, size_t n, stdcpu_error *err)
{
    if (t < 0 || t >= s->cfg.num_train_timesteps)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "timestep %lld is out of range", (long long)t);
    const float a = s->alphas_cumprod[t];
    const float c0 = sqrtf(a), c1 = sqrtf(1.0f - a);
    for (size_t j = 0; j < n; j++)
        out[j] = c0 * x0[j] + c1 * noise[j];
    return STDCPU_OK;
}
