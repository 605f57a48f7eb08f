#include "golden.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

const stdcpu_st_tensor *golden_tensor(golden_case *gc, const char *name, stdcpu_error *err)
{
    const stdcpu_st_tensor *t = stdcpu_st_find(gc->io, name);
    if (!t)
        stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: io.safetensors has no tensor %s", gc->name, name);
    return t;
}

int golden_has(golden_case *gc, const char *name) { return stdcpu_st_find(gc->io, name) != NULL; }

stdcpu_status golden_f32(golden_case *gc, const char *name, float **out, const stdcpu_st_tensor **tp,
                         stdcpu_error *err)
{
    const stdcpu_st_tensor *t = golden_tensor(gc, name, err);
    if (!t)
        return STDCPU_ERR_NOT_FOUND;
    if (tp)
        *tp = t;
    return stdcpu_st_to_f32(t, out, err);
}

stdcpu_status golden_i64(golden_case *gc, const char *name, int64_t **out, const stdcpu_st_tensor **tp,
                         stdcpu_error *err)
{
    const stdcpu_st_tensor *t = golden_tensor(gc, name, err);
    if (!t)
        return STDCPU_ERR_NOT_FOUND;
    if (t->dtype != STDCPU_ST_I64)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s is %s, not I64", gc->name, name,
                           stdcpu_st_dtype_name(t->dtype));
    int64_t *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
    if (!v)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    memcpy(v, t->data, (size_t)t->numel * sizeof *v);
    *out = v;
    if (tp)
        *tp = t;
    return STDCPU_OK;
}

stdcpu_status golden_model_path(golden_case *gc, const char *role, char *buf, size_t n, stdcpu_error *err)
{
    const char *rel = stdcpu_json_get_str(gc->models, role, NULL);
    if (!rel)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: case.json names no model for role \"%s\"", gc->name,
                           role);
    snprintf(buf, n, "%s/%s", gc->root, rel);
    return STDCPU_OK;
}

void golden_case_file(golden_case *gc, const char *rel, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", gc->dir, rel);
}

static void mark_checked(golden_case *gc, const char *name)
{
    if (gc->n_checked == gc->cap_checked) {
        size_t cap = gc->cap_checked ? 2 * gc->cap_checked : 64;
        char **p = realloc(gc->checked, cap * sizeof *p);
        if (!p)
            return;
        gc->checked = p;
        gc->cap_checked = cap;
    }
    gc->checked[gc->n_checked++] = strdup(name);
}

static void report(golden_case *gc, int ok, const char *name, const char *detail)
{
    if (ok)
        gc->n_pass++;
    else
        gc->n_fail++;
    printf("%s %s/%s %s\n", ok ? "PASS" : "FAIL", gc->name, name, detail);
    mark_checked(gc, name);
}

void golden_fail(golden_case *gc, const char *name, const char *why) { report(gc, 0, name, why); }

void golden_skip(golden_case *gc, const char *name, const char *why)
{
    printf("SKIP %s/%s %s\n", gc->name, name, why);
    mark_checked(gc, name);
}

void golden_check_f32(golden_case *gc, const char *name, const float *got, size_t n, double int8_rel_l2)
{
    char detail[512];
    float *ref = NULL;
    const stdcpu_st_tensor *t;
    stdcpu_error err;
    if (golden_f32(gc, name, &ref, &t, &err) != STDCPU_OK) {
        report(gc, 0, name, err.msg);
        return;
    }
    if ((size_t)t->numel != n) {
        snprintf(detail, sizeof detail, "produced %zu values, expected %lld", n, (long long)t->numel);
        report(gc, 0, name, detail);
        stdcpu_aligned_free(ref);
        return;
    }
    double max_abs = 0, max_ref = 0, d2 = 0, r2 = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - (double)ref[i]);
        if (!isfinite(got[i]))
            finite = 0;
        if (d > max_abs)
            max_abs = d;
        if (fabs(ref[i]) > max_ref)
            max_ref = fabs(ref[i]);
        d2 += d * d;
        r2 += (double)ref[i] * ref[i];
    }
    stdcpu_aligned_free(ref);
    const double rel_l2 = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
    const stdcpu_json *tol = stdcpu_json_get(gc->tolerance, name);
    double tol_abs = stdcpu_json_get_double(tol, "max_abs", -1);
    int ok;
    if (gc->precision == GOLDEN_INT8) {
        ok = finite && rel_l2 <= int8_rel_l2;
        snprintf(detail, sizeof detail, "max_abs=%.3g rel_l2=%.3g tol_rel_l2=%.3g (int8)", max_abs, rel_l2,
                 int8_rel_l2);
    } else {
        if (tol_abs < 0) /* none stated: the README's floor for suggested tolerances */
            tol_abs = max_ref * 1e-6 > 1e-6 ? max_ref * 1e-6 : 1e-6;
        ok = finite && max_abs <= tol_abs;
        snprintf(detail, sizeof detail, "max_abs=%.3g rel_to_maxabs=%.3g tol=%.3g", max_abs,
                 max_ref > 0 ? max_abs / max_ref : max_abs, tol_abs);
    }
    report(gc, ok, name, detail);
}

void golden_check_i64(golden_case *gc, const char *name, const int64_t *got, size_t n)
{
    char detail[256];
    int64_t *ref = NULL;
    const stdcpu_st_tensor *t;
    stdcpu_error err;
    if (golden_i64(gc, name, &ref, &t, &err) != STDCPU_OK) {
        report(gc, 0, name, err.msg);
        return;
    }
    size_t bad = 0, first = 0;
    if ((size_t)t->numel != n) {
        snprintf(detail, sizeof detail, "produced %zu values, expected %lld", n, (long long)t->numel);
        report(gc, 0, name, detail);
        free(ref);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (got[i] != ref[i] && bad++ == 0)
            first = i;
    if (bad)
        snprintf(detail, sizeof detail, "%zu of %zu differ (first at %zu: %lld vs %lld)", bad, n, first,
                 (long long)got[first], (long long)ref[first]);
    else
        snprintf(detail, sizeof detail, "exact (%zu values)", n);
    free(ref);
    report(gc, bad == 0, name, detail);
}

void golden_check_u8(golden_case *gc, const char *name, const uint8_t *got, size_t n)
{
    char detail[256];
    stdcpu_error err;
    const stdcpu_st_tensor *t = golden_tensor(gc, name, &err);
    if (!t) {
        report(gc, 0, name, err.msg);
        return;
    }
    if (t->dtype != STDCPU_ST_U8 || (size_t)t->numel != n) {
        snprintf(detail, sizeof detail, "expected U8 with %lld values, produced %zu", (long long)t->numel, n);
        report(gc, 0, name, detail);
        return;
    }
    const uint8_t *ref = t->data;
    int max_d = 0;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got[i] - (int)ref[i]);
        if (d > max_d)
            max_d = d;
        off += d > 1;
    }
    snprintf(detail, sizeof detail, "max_diff=%d beyond_1=%zu tol=1", max_d, off);
    report(gc, max_d <= 1, name, detail);
}
