#include "nn/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/safetensors.h"
#include "core/stdm.h"
#include "simd/eltwise.h"

typedef struct override_entry {
    char *name;
    float *data;
    int ndim;
    int64_t shape[STDCPU_MAX_DIMS];
    int64_t numel;
} override_entry;

struct stdcpu_wsrc {
    const stdcpu_wsrc_backend *backend;
    void *impl;
    stdcpu_json_doc *config_doc;
    const stdcpu_json *config; /* config_doc's root, or borrowed (a .stdm component) */
    char component[64];
    override_entry *ov;
    size_t n_ov, cap_ov;
    size_t n_extra; /* overrides whose names the backend lacks (listed after it) */
};

stdcpu_status stdcpu_wsrc_create(stdcpu_wsrc **out, const stdcpu_wsrc_backend *backend, void *impl,
                                 stdcpu_json_doc *config_doc, const char *component, stdcpu_error *err)
{
    *out = NULL;
    stdcpu_wsrc *w = calloc(1, sizeof *w);
    if (!w) {
        if (backend && backend->close)
            backend->close(impl);
        stdcpu_json_free(config_doc);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    }
    w->backend = backend;
    w->impl = impl;
    w->config_doc = config_doc;
    w->config = config_doc ? stdcpu_json_root(config_doc) : NULL;
    snprintf(w->component, sizeof w->component, "%s", component ? component : "");
    *out = w;
    return STDCPU_OK;
}

void stdcpu_wsrc_close(stdcpu_wsrc *w)
{
    if (!w)
        return;
    if (w->backend && w->backend->close)
        w->backend->close(w->impl);
    for (size_t i = 0; i < w->n_ov; i++) {
        free(w->ov[i].name);
        stdcpu_aligned_free(w->ov[i].data);
    }
    free(w->ov);
    stdcpu_json_free(w->config_doc);
    free(w);
}

const stdcpu_json *stdcpu_wsrc_config(const stdcpu_wsrc *w) { return w->config; }

const char *stdcpu_wsrc_component(const stdcpu_wsrc *w) { return w->component; }

/* ---- safetensors backend ------------------------------------------------- */

static stdcpu_status st_get(void *impl, const char *name, stdcpu_wview *v, stdcpu_error *err)
{
    const stdcpu_st_tensor *t = stdcpu_st_find(impl, name);
    if (!t)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "no tensor %s", name);
    memset(v, 0, sizeof *v);
    switch (t->dtype) {
    case STDCPU_ST_F32: v->dtype = STDCPU_DT_F32; break;
    case STDCPU_ST_F16: v->dtype = STDCPU_DT_F16; break;
    case STDCPU_ST_BF16: v->dtype = STDCPU_DT_BF16; break;
    default:
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "tensor %s has dtype %s, not a float weight", name,
                           stdcpu_st_dtype_name(t->dtype));
    }
    if (t->ndim > STDCPU_MAX_DIMS)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "tensor %s has rank %d", name, t->ndim);
    v->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++)
        v->shape[i] = t->shape[i];
    v->numel = t->numel;
    v->data = t->data;
    return STDCPU_OK;
}

/* Drops the pages wholly inside [p, p+n) of a read-only file mapping: they
 * are re-read from the file if touched again. Partial pages at the ends are
 * kept (they may hold a neighbour's bytes that are still in use). */
static void drop_pages(const void *p, size_t n)
{
    const long page = sysconf(_SC_PAGESIZE);
    if (!p || page <= 0 || n < (size_t)page)
        return;
    uintptr_t b = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    if (e > b)
        madvise((void *)b, e - b, MADV_DONTNEED);
}

static void st_release(void *impl, const char *name)
{
    const stdcpu_st_tensor *t = stdcpu_st_find(impl, name);
    if (t)
        drop_pages(t->data, t->nbytes);
}

static size_t st_count(void *impl) { return stdcpu_st_count(impl); }
static const char *st_name_at(void *impl, size_t i) { return stdcpu_st_at(impl, i)->name; }
static void st_close(void *impl) { stdcpu_st_close(impl); }

static const stdcpu_wsrc_backend st_backend = {st_get, st_count, st_name_at, st_close, st_release};

stdcpu_status stdcpu_wsrc_open_safetensors(stdcpu_wsrc **out, const char *path, const char *component,
                                           stdcpu_error *err)
{
    stdcpu_safetensors *st;
    STDCPU_TRY(stdcpu_st_open(&st, path, err));
    return stdcpu_wsrc_create(out, &st_backend, st, NULL, component, err);
}

static int is_file(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

stdcpu_status stdcpu_wsrc_open_dir(stdcpu_wsrc **out, const char *dir, const char *component, stdcpu_error *err)
{
    *out = NULL;
    static const char *const names[] = {"diffusion_pytorch_model.safetensors", "model.safetensors",
                                        "diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors"};
    char path[4096];
    const char *found = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !found; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (is_file(path))
            found = names[i];
    }
    if (!found)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: no diffusion_pytorch_model.safetensors or "
                           "model.safetensors (.bin checkpoints are not supported: convert them to safetensors)",
                           dir);
    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    stdcpu_json_doc *cfg = NULL;
    if (is_file(cfg_path)) {
        stdcpu_status s = stdcpu_json_parse_file(&cfg, cfg_path, err);
        if (s != STDCPU_OK)
            return s;
    }
    char comp[64];
    if (!component) {
        const char *slash = strrchr(dir, '/');
        const char *base = slash && slash[1] ? slash + 1 : dir;
        snprintf(comp, sizeof comp, "%s", base);
        size_t L = strlen(comp);
        while (L > 0 && comp[L - 1] == '/')
            comp[--L] = '\0';
        component = comp;
    }
    stdcpu_safetensors *st;
    stdcpu_status s = stdcpu_st_open(&st, path, err);
    if (s != STDCPU_OK) {
        stdcpu_json_free(cfg);
        return s;
    }
    return stdcpu_wsrc_create(out, &st_backend, st, cfg, component, err);
}

/* ---- .stdm backend: the tensors "<component>.<name>" of one component ---- */

typedef struct stdm_impl {
    const stdcpu_stdm *m;
    size_t prefix_len;
    char prefix[72];
    size_t *idx; /* indices of the component's tensors in the file's sorted list */
    size_t n;
} stdm_impl;

static stdcpu_status stdm_get(void *impl, const char *name, stdcpu_wview *v, stdcpu_error *err)
{
    stdm_impl *s = impl;
    char full[600];
    snprintf(full, sizeof full, "%s%s", s->prefix, name);
    const stdcpu_stdm_tensor *t = stdcpu_stdm_find(s->m, full);
    if (!t)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "no tensor %s", full);
    if (t->dtype != STDCPU_DT_F32 && t->dtype != STDCPU_DT_F16 && t->dtype != STDCPU_DT_BF16 &&
        t->dtype != STDCPU_DT_I8)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "tensor %s has dtype %s, not a weight", full,
                           stdcpu_dtype_name(t->dtype));
    memset(v, 0, sizeof *v);
    v->dtype = t->dtype;
    v->ndim = t->ndim;
    memcpy(v->shape, t->shape, sizeof v->shape);
    v->numel = t->numel;
    v->data = t->data;
    v->scales = t->scales;
    return STDCPU_OK;
}

static void stdm_release(void *impl, const char *name)
{
    stdm_impl *s = impl;
    char full[600];
    snprintf(full, sizeof full, "%s%s", s->prefix, name);
    const stdcpu_stdm_tensor *t = stdcpu_stdm_find(s->m, full);
    if (t)
        drop_pages(t->data, t->nbytes);
}

static size_t stdm_count(void *impl) { return ((stdm_impl *)impl)->n; }

static const char *stdm_name_at(void *impl, size_t i)
{
    stdm_impl *s = impl;
    return stdcpu_stdm_tensor_at(s->m, s->idx[i])->name + s->prefix_len;
}

static void stdm_close(void *impl)
{
    stdm_impl *s = impl;
    free(s->idx);
    free(s);
}

static const stdcpu_wsrc_backend stdm_backend = {stdm_get, stdm_count, stdm_name_at, stdm_close, stdm_release};

stdcpu_status stdcpu_wsrc_open_stdm(stdcpu_wsrc **out, const stdcpu_stdm *m, const char *component,
                                    stdcpu_error *err)
{
    *out = NULL;
    if (!stdcpu_stdm_has_component(m, component))
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "the model file has no %s component", component);
    stdm_impl *s = calloc(1, sizeof *s);
    if (!s)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    s->m = m;
    snprintf(s->prefix, sizeof s->prefix, "%s.", component);
    s->prefix_len = strlen(s->prefix);
    const size_t total = stdcpu_stdm_tensor_count(m);
    s->idx = malloc((total ? total : 1) * sizeof *s->idx);
    if (!s->idx) {
        free(s);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < total; i++)
        if (!strncmp(stdcpu_stdm_tensor_at(m, i)->name, s->prefix, s->prefix_len))
            s->idx[s->n++] = i;
    STDCPU_TRY(stdcpu_wsrc_create(out, &stdm_backend, s, NULL, component, err));
    (*out)->config = stdcpu_stdm_config(m, component);
    return STDCPU_OK;
}

/* ---- lookup ------------------------------------------------------------ */

static const override_entry *find_override(const stdcpu_wsrc *w, const char *name)
{
    for (size_t i = 0; i < w->n_ov; i++)
        if (!strcmp(w->ov[i].name, name))
            return &w->ov[i];
    return NULL;
}

stdcpu_status stdcpu_wsrc_get(const stdcpu_wsrc *w, const char *name, stdcpu_wview *v, stdcpu_error *err)
{
    const override_entry *o = find_override(w, name);
    if (o) {
        memset(v, 0, sizeof *v);
        v->dtype = STDCPU_DT_F32;
        v->ndim = o->ndim;
        memcpy(v->shape, o->shape, sizeof v->shape);
        v->numel = o->numel;
        v->data = o->data;
        return STDCPU_OK;
    }
    if (!w->backend)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: no parameter %s", w->component, name);
    stdcpu_status s = w->backend->get(w->impl, name, v, err);
    if (s == STDCPU_ERR_NOT_FOUND)
        return stdcpu_fail(err, s, "%s: missing parameter %s", w->component[0] ? w->component : "model", name);
    if (s != STDCPU_OK)
        stdcpu_fail_prefix(err, "%s: ", w->component);
    return s;
}

void stdcpu_wsrc_release(const stdcpu_wsrc *w, const char *name)
{
    if (w->backend && w->backend->release && !find_override(w, name))
        w->backend->release(w->impl, name);
}

int stdcpu_wsrc_has(const stdcpu_wsrc *w, const char *name)
{
    stdcpu_wview v;
    return stdcpu_wsrc_get(w, name, &v, NULL) == STDCPU_OK;
}

static float half_to_f32(const unsigned char *p, int bf16)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bf16 ? stdcpu_bf16_to_f32(h) : stdcpu_f16_to_f32(h);
}

stdcpu_status stdcpu_wsrc_read_f32(const stdcpu_wsrc *w, const char *name, float **out, stdcpu_wview *vout,
                                   stdcpu_error *err)
{
    stdcpu_wview v;
    *out = NULL;
    STDCPU_TRY(stdcpu_wsrc_get(w, name, &v, err));
    size_t bytes;
    if (stdcpu_mul_size((size_t)v.numel, sizeof(float), &bytes))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: %s is too large", w->component, name);
    float *f = stdcpu_aligned_alloc(bytes);
    if (!f)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory reading %s", name);
    const unsigned char *p = v.data;
    switch (v.dtype) {
    case STDCPU_DT_F32: memcpy(f, p, bytes); break;
    case STDCPU_DT_F16:
    case STDCPU_DT_BF16:
        for (int64_t i = 0; i < v.numel; i++)
            f[i] = half_to_f32(p + 2 * i, v.dtype == STDCPU_DT_BF16);
        break;
    case STDCPU_DT_I8: {
        const int64_t rows = v.ndim ? v.shape[0] : 1, cols = rows ? v.numel / rows : 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                f[r * cols + c] = v.scales[r] * (float)((const int8_t *)p)[r * cols + c];
        break;
    }
    default:
        stdcpu_aligned_free(f);
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "%s: %s has an unsupported dtype", w->component, name);
    }
    *out = f;
    if (vout)
        *vout = v;
    stdcpu_wsrc_release(w, name); /* the caller holds its own copy now */
    return STDCPU_OK;
}

stdcpu_status stdcpu_wsrc_read_f32_checked(const stdcpu_wsrc *w, const char *name, int ndim, int64_t expect,
                                           float **out, stdcpu_wview *vout, stdcpu_error *err)
{
    stdcpu_wview v;
    STDCPU_TRY(stdcpu_wsrc_get(w, name, &v, err));
    if ((ndim >= 0 && v.ndim != ndim) || (expect >= 0 && v.numel != expect))
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s has rank %d and %lld elements, expected rank %d and "
                           "%lld (config and weights disagree)", w->component, name, v.ndim, (long long)v.numel,
                           ndim, (long long)expect);
    return stdcpu_wsrc_read_f32(w, name, out, vout, err);
}

stdcpu_status stdcpu_wsrc_set_f32(stdcpu_wsrc *w, const char *name, float *data, int ndim, const int64_t *shape,
                                  stdcpu_error *err)
{
    if (ndim < 0 || ndim > STDCPU_MAX_DIMS)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "bad rank %d for %s", ndim, name);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    for (size_t i = 0; i < w->n_ov; i++)
        if (!strcmp(w->ov[i].name, name)) {
            stdcpu_aligned_free(w->ov[i].data);
            w->ov[i].data = data;
            w->ov[i].ndim = ndim;
            memcpy(w->ov[i].shape, shape, (size_t)ndim * sizeof *shape);
            w->ov[i].numel = numel;
            return STDCPU_OK;
        }
    if (w->n_ov == w->cap_ov) {
        size_t cap = w->cap_ov ? 2 * w->cap_ov : 32;
        override_entry *p = realloc(w->ov, cap * sizeof *p);
        if (!p)
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        w->ov = p;
        w->cap_ov = cap;
    }
    override_entry *o = &w->ov[w->n_ov];
    memset(o, 0, sizeof *o);
    o->name = strdup(name);
    if (!o->name)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    /* Is the name new to the backend? (then it is listed after the backend's) */
    stdcpu_wview v;
    const int in_backend = w->backend && w->backend->get(w->impl, name, &v, NULL) == STDCPU_OK;
    o->data = data;
    o->ndim = ndim;
    memcpy(o->shape, shape, (size_t)ndim * sizeof *shape);
    o->numel = numel;
    w->n_ov++;
    if (!in_backend) {
        /* keep the extra entries at the front of the list, in insertion order */
        override_entry tmp = w->ov[w->n_ov - 1];
        memmove(&w->ov[w->n_extra + 1], &w->ov[w->n_extra], (w->n_ov - 1 - w->n_extra) * sizeof *w->ov);
        w->ov[w->n_extra] = tmp;
        w->n_extra++;
    }
    return STDCPU_OK;
}

size_t stdcpu_wsrc_count(const stdcpu_wsrc *w)
{
    return (w->backend ? w->backend->count(w->impl) : 0) + w->n_extra;
}

const char *stdcpu_wsrc_name_at(const stdcpu_wsrc *w, size_t i)
{
    const size_t nb = w->backend ? w->backend->count(w->impl) : 0;
    if (i < nb)
        return w->backend->name_at(w->impl, i);
    i -= nb;
    return i < w->n_extra ? w->ov[i].name : NULL;
}
