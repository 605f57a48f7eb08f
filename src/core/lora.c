/* LoRA parsing and fusion (see lora.h). */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include "core/lora.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/safetensors.h"

typedef struct {
    char *target; /* canonical weight name, e.g. "unet.x.to_q.weight" */
    const stdcpu_st_tensor *a, *b;
    float alpha; /* NAN: use the rank */
    float scale; /* user scale of the file */
    int applied;
} lora_delta;

struct stdcpu_lora {
    char **alias_stem, **alias_target; /* kohya UNet aliases */
    size_t n_alias;
    stdcpu_safetensors **files;
    size_t n_files;
    lora_delta *deltas; /* sorted by target */
    size_t n, cap;
};

enum { PART_A, PART_B, PART_ALPHA };

typedef struct {
    char *module; /* canonical module path, e.g. "unet.x.to_q" */
    int part;
    const stdcpu_st_tensor *t;
} lora_key;

stdcpu_status stdcpu_lora_create(stdcpu_lora **out, stdcpu_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? STDCPU_OK : stdcpu_fail(err, STDCPU_ERR_NOMEM, "lora: out of memory");
}

void stdcpu_lora_free(stdcpu_lora *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->deltas[i].target);
    free(l->deltas);
    for (size_t i = 0; i < l->n_files; i++)
        stdcpu_st_close(l->files[i]);
    free(l->files);
    for (size_t i = 0; i < l->n_alias; i++) {
        free(l->alias_stem[i]);
        free(l->alias_target[i]);
    }
    free(l->alias_stem);
    free(l->alias_target);
    free(l);
}

stdcpu_status stdcpu_lora_set_unet_aliases(stdcpu_lora *l, const char *const *stem, const char *const *target,
                                          size_t n, stdcpu_error *err)
{
    l->alias_stem = calloc(n + 1, sizeof *l->alias_stem);
    l->alias_target = calloc(n + 1, sizeof *l->alias_target);
    if (!l->alias_stem || !l->alias_target)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "lora: out of memory");
    for (size_t i = 0; i < n; i++) {
        l->alias_stem[i] = strdup(stem[i]);
        l->alias_target[i] = strdup(target[i]);
        l->n_alias = i + 1;
        if (!l->alias_stem[i] || !l->alias_target[i])
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "lora: out of memory");
        size_t tl = strlen(l->alias_target[i]); /* stored as the module: drop ".weight" */
        if (tl > 7 && !strcmp(l->alias_target[i] + tl - 7, ".weight"))
            l->alias_target[i][tl - 7] = '\0';
    }
    return STDCPU_OK;
}

static int ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m || strcmp(s + n - m, suffix))
        return 0;
    *stem = n - m;
    return 1;
}

/* "<comp>.<rest>" with a known component, or unet for prefix-less keys. */
static char *with_component(const char *stem, size_t len)
{
    static const char *const comps[] = {"unet.", "text_encoder.", "text_encoder_2."};
    const char *prefix = "unet.";
    if (len > 17 && !strncmp(stem, "base_model.model.", 17)) {
        stem += 17;
        len -= 17;
    }
    for (size_t i = 0; i < 3; i++)
        if (!strncmp(stem, comps[i], strlen(comps[i])))
            prefix = "";
    char *s = malloc(strlen(prefix) + len + 1);
    if (s)
        snprintf(s, strlen(prefix) + len + 1, "%s%.*s", prefix, (int)len, stem);
    return s;
}

/* Old attention-processor names: "...attn1.processor.to_q_lora" -> "...attn1.to_q". */
static void fix_processor(char *m)
{
    char *p = strstr(m, ".processor.");
    if (!p)
        return;
    char *name = p + 11;
    size_t n = strlen(name);
    if (n > 5 && !strcmp(name + n - 5, "_lora"))
        name[n - 5] = '\0';
    char tail[64];
    snprintf(tail, sizeof tail, "%s", !strcmp(name, "to_out") ? "to_out.0" : name);
    snprintf(p + 1, strlen(p + 1) + 1, "%s", tail);
}

/* kohya: "lora_unet_down_blocks_0_..." -> (component, underscore stem). */
static int kohya_split(const char *key, size_t stem_len, const char **comp, const char **stem, size_t *len)
{
    static const struct {
        const char *prefix, *comp;
    } k[] = {{"lora_unet_", "unet"}, {"lora_te1_", "text_encoder"}, {"lora_te2_", "text_encoder_2"},
             {"lora_te_", "text_encoder"}};
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        size_t pl = strlen(k[i].prefix);
        if (!strncmp(key, k[i].prefix, pl) && stem_len > pl) {
            *comp = k[i].comp;
            *stem = key + pl;
            *len = stem_len - pl;
            return 1;
        }
    }
    return 0;
}

/* Finds the base module whose dotted path, with '.' -> '_', equals the stem. */
static char *kohya_resolve(const char *comp, const char *stem, size_t len, const char *const *base, size_t n_base)
{
    size_t cl = strlen(comp);
    for (size_t i = 0; i < n_base; i++) {
        const char *b = base[i];
        size_t bl = strlen(b);
        if (strncmp(b, comp, cl) || b[cl] != '.' || bl < cl + 1 + 7 || strcmp(b + bl - 7, ".weight"))
            continue;
        const char *m = b + cl + 1;
        size_t ml = bl - cl - 1 - 7;
        if (ml != len)
            continue;
        size_t j = 0;
        while (j < len && (m[j] == stem[j] || (m[j] == '.' && stem[j] == '_')))
            j++;
        if (j == len) {
            char *s = malloc(cl + 1 + ml + 1);
            if (s)
                snprintf(s, cl + 1 + ml + 1, "%s.%.*s", comp, (int)ml, m);
            return s;
        }
    }
    return NULL;
}

static int cmp_key(const void *a, const void *b)
{
    const lora_key *x = a, *y = b;
    int c = strcmp(x->module, y->module);
    return c ? c : x->part - y->part;
}
static int cmp_delta(const void *a, const void *b)
{
    return strcmp(((const lora_delta *)a)->target, ((const lora_delta *)b)->target);
}
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static float scalar_value(const stdcpu_st_tensor *t)
{
    float v = NAN;
    if (t->numel == 1 && stdcpu_st_dtype_is_float(t->dtype))
        stdcpu_st_read_f32(t, &v, NULL);
    return v;
}

/* Appends to a bounded list of bad keys for the error message. */
static void note_bad(char *list, size_t cap, size_t *count, const char *key)
{
    if (*count < 4) {
        size_t n = strlen(list);
        snprintf(list + n, cap - n, "%s%s", n ? ", " : "", key);
    }
    (*count)++;
}

stdcpu_status stdcpu_lora_add_file(stdcpu_lora *l, const char *path, float scale, const char *const *base_names,
                                   size_t n_base, stdcpu_error *err)
{
    stdcpu_safetensors *st;
    STDCPU_TRY(stdcpu_st_open(&st, path, err));
    stdcpu_safetensors **files = realloc(l->files, (l->n_files + 1) * sizeof *files);
    if (!files) {
        stdcpu_st_close(st);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "lora: out of memory");
    }
    l->files = files;
    l->files[l->n_files++] = st;
    float file_alpha = NAN;
    const char *ma = stdcpu_st_metadata_get(st, "lora_alpha");
    if (ma)
        file_alpha = strtof(ma, NULL);
    size_t n = stdcpu_st_count(st);
    lora_key *keys = calloc(n + 1, sizeof *keys);
    if (!keys)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "lora: out of memory");
    char bad[400] = "", missing[400] = "";
    size_t n_bad = 0, n_missing = 0, nk = 0;
    stdcpu_status status = STDCPU_OK;
    for (size_t i = 0; i < n && status == STDCPU_OK; i++) {
        const stdcpu_st_tensor *t = stdcpu_st_at(st, i);
        const char *k = t->name;
        size_t stem;
        int part = -1;
        char *module = NULL;
        static const struct {
            const char *suffix;
            int part;
        } sfx[] = {{".lora_A.weight", PART_A},       {".lora_B.weight", PART_B},
                   {".lora_A.default.weight", PART_A}, {".lora_B.default.weight", PART_B},
                   {".lora_down.weight", PART_A},    {".lora_up.weight", PART_B},
                   {".lora.down.weight", PART_A},    {".lora.up.weight", PART_B},
                   {"_lora.down.weight", PART_A},    {"_lora.up.weight", PART_B},
                   {".lora_linear_layer.down.weight", PART_A}, {".lora_linear_layer.up.weight", PART_B},
                   {".alpha", PART_ALPHA}};
        for (size_t s = 0; s < sizeof sfx / sizeof *sfx && part < 0; s++)
            if (ends_with(k, sfx[s].suffix, &stem)) {
                part = sfx[s].part;
                const char *comp, *kstem;
                size_t klen;
                if (kohya_split(k, stem, &comp, &kstem, &klen)) {
                    module = kohya_resolve(comp, kstem, klen, base_names, n_base);
                    for (size_t a = 0; !module && !strcmp(comp, "unet") && a < l->n_alias; a++)
                        if (strlen(l->alias_stem[a]) == klen && !strncmp(l->alias_stem[a], kstem, klen))
                            module = strdup(l->alias_target[a]);
                    if (!module) {
                        note_bad(missing, sizeof missing, &n_missing, k);
                        part = -2;
                    }
                } else {
                    /* "_lora.down" keeps "_lora" in the stem for fix_processor */
                    size_t keep = sfx[s].suffix[0] == '_' ? stem + 5 : stem;
                    module = with_component(k, keep);
                    if (module)
                        fix_processor(module);
                }
            }
        if (part == -1) {
            note_bad(bad, sizeof bad, &n_bad, k);
            continue;
        }
        if (part == -2)
            continue;
        if (!module) {
            status = stdcpu_fail(err, STDCPU_ERR_NOMEM, "lora: out of memory");
            break;
        }
        keys[nk++] = (lora_key){module, part, t};
    }
    if (status == STDCPU_OK && n_bad)
        status = stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: %zu LoRA key(s) in no known format: %s%s", path, n_bad, bad,
                             n_bad > 4 ? ", ..." : "");
    if (status == STDCPU_OK && n_missing)
        status = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %zu kohya key(s) match no base module: %s%s", path,
                             n_missing, missing, n_missing > 4 ? ", ..." : "");
    qsort(keys, nk, sizeof *keys, cmp_key);
    for (size_t i = 0; i < nk && status == STDCPU_OK;) {
        size_t j = i;
        const stdcpu_st_tensor *a = NULL, *b = NULL, *al = NULL;
        for (; j < nk && !strcmp(keys[j].module, keys[i].module); j++) {
            const stdcpu_st_tensor **slot = keys[j].part == PART_A ? &a : keys[j].part == PART_B ? &b : &al;
            if (*slot) {
                status = stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: module %s appears twice", path, keys[i].module);
                break;
            }
            *slot = keys[j].t;
        }
        if (status != STDCPU_OK)
            break;
        if (!a || !b) {
            status = stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: module %s lacks its %s matrix", path, keys[i].module,
                                 a ? "up/B" : "down/A");
            break;
        }
        size_t tl = strlen(keys[i].module) + 8;
        char *target = malloc(tl);
        if (!target) {
            status = stdcpu_fail(err, STDCPU_ERR_NOMEM, "lora: out of memory");
            break;
        }
        snprintf(target, tl, "%s.weight", keys[i].module);
        const char *tk = target;
        if (!n_base || !bsearch(&tk, base_names, n_base, sizeof *base_names, cmp_str)) {
            note_bad(missing, sizeof missing, &n_missing, target);
            free(target);
            i = j;
            continue;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 256;
            lora_delta *d = realloc(l->deltas, cap * sizeof *d);
            if (!d) {
                free(target);
                status = stdcpu_fail(err, STDCPU_ERR_NOMEM, "lora: out of memory");
                break;
            }
            l->deltas = d;
            l->cap = cap;
        }
        l->deltas[l->n++] = (lora_delta){target, a, b, al ? scalar_value(al) : file_alpha, scale, 0};
        i = j;
    }
    if (status == STDCPU_OK && n_missing)
        status = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %zu LoRA module(s) not in the base model: %s%s", path,
                             n_missing, missing, n_missing > 4 ? ", ..." : "");
    for (size_t i = 0; i < nk; i++)
        free(keys[i].module);
    free(keys);
    if (l->n)
        qsort(l->deltas, l->n, sizeof *l->deltas, cmp_delta);
    return status;
}

static stdcpu_status fuse(const lora_delta *d, float *w, int ndim, const int64_t *shape, stdcpu_error *err)
{
    const stdcpu_st_tensor *a = d->a, *b = d->b;
    if (ndim < 2 || a->ndim < 2 || b->ndim < 2)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "lora: %s: LoRA needs matrices", d->target);
    int64_t out = shape[0], numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    int64_t k = numel / out, r = a->shape[0];
    int64_t b_tail = 1;
    for (int i = 2; i < b->ndim; i++)
        b_tail *= b->shape[i];
    if (r <= 0 || b->shape[0] != out || b->shape[1] != r || b_tail != 1 || a->numel != r * k)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH,
                           "lora: %s: shapes do not fit the weight (A has %lld rows, B is %lldx%lld, W is %lldx%lld)",
                           d->target, (long long)r, (long long)b->shape[0], (long long)b->shape[1], (long long)out,
                           (long long)k);
    float alpha = isnan(d->alpha) ? (float)r : d->alpha;
    float s = d->scale * alpha / (float)r;
    float *fa, *fb;
    STDCPU_TRY(stdcpu_st_to_f32(a, &fa, err));
    stdcpu_status st = stdcpu_st_to_f32(b, &fb, err);
    if (st != STDCPU_OK) {
        stdcpu_aligned_free(fa);
        return st;
    }
    /* W[out, k] += s * B[out, r] @ A[r, k] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)k, (int)r, s, fb, (int)r, fa, (int)k, 1.0f,
                w, (int)k);
    stdcpu_aligned_free(fa);
    stdcpu_aligned_free(fb);
    return STDCPU_OK;
}

stdcpu_status stdcpu_lora_apply(stdcpu_lora *l, const char *name, float *w, int ndim, const int64_t *shape,
                                int *applied, stdcpu_error *err)
{
    if (applied)
        *applied = 0;
    lora_delta key = {.target = (char *)(uintptr_t)name};
    lora_delta *d = l->n ? bsearch(&key, l->deltas, l->n, sizeof key, cmp_delta) : NULL;
    if (!d)
        return STDCPU_OK;
    while (d > l->deltas && !strcmp(d[-1].target, name))
        d--;
    for (; d < l->deltas + l->n && !strcmp(d->target, name); d++) {
        STDCPU_TRY(fuse(d, w, ndim, shape, err));
        d->applied = 1;
        if (applied)
            (*applied)++;
    }
    return STDCPU_OK;
}

size_t stdcpu_lora_count(const stdcpu_lora *l) { return l->n; }

stdcpu_status stdcpu_lora_check_all_applied(const stdcpu_lora *l, stdcpu_error *err)
{
    for (size_t i = 0; i < l->n; i++)
        if (!l->deltas[i].applied)
            return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "lora: delta for %s was never applied", l->deltas[i].target);
    return STDCPU_OK;
}
