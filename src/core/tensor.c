#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

static const size_t dtype_sizes[STDCPU_DT_COUNT] = {4, 2, 2, 1, 1, 4, 8};
static const char *const dtype_names[STDCPU_DT_COUNT] = {"f32", "f16", "bf16", "i8", "u8", "i32", "i64"};

size_t stdcpu_dtype_size(stdcpu_dtype dt) { return (unsigned)dt < STDCPU_DT_COUNT ? dtype_sizes[dt] : 0; }

const char *stdcpu_dtype_name(stdcpu_dtype dt)
{
    return (unsigned)dt < STDCPU_DT_COUNT ? dtype_names[dt] : "?";
}

int64_t stdcpu_tensor_numel(const stdcpu_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t stdcpu_tensor_nbytes(const stdcpu_tensor *t)
{
    return (size_t)stdcpu_tensor_numel(t) * stdcpu_dtype_size(t->dtype);
}

static stdcpu_status set_shape(stdcpu_tensor *t, stdcpu_dtype dt, int ndim, const int64_t *shape, size_t *bytes,
                               stdcpu_error *err)
{
    if ((unsigned)dt >= STDCPU_DT_COUNT || ndim < 0 || ndim > STDCPU_MAX_DIMS)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "tensor: bad dtype %d or rank %d", (int)dt, ndim);
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    size_t n = stdcpu_dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || stdcpu_mul_size(n, (size_t)shape[i], &n))
            return stdcpu_fail(err, STDCPU_ERR_LIMIT, "tensor: shape too large or negative");
        t->shape[i] = shape[i];
    }
    *bytes = n;
    return STDCPU_OK;
}

stdcpu_status stdcpu_tensor_alloc(stdcpu_tensor *t, stdcpu_dtype dt, int ndim, const int64_t *shape,
                                  stdcpu_error *err)
{
    size_t bytes;
    STDCPU_TRY(set_shape(t, dt, ndim, shape, &bytes, err));
    t->data = stdcpu_aligned_calloc(bytes);
    if (dt == STDCPU_DT_I8 && ndim > 0)
        t->scales = stdcpu_aligned_calloc((size_t)shape[0] * sizeof(float));
    t->owns = 1;
    if (!t->data || (dt == STDCPU_DT_I8 && ndim > 0 && !t->scales)) {
        stdcpu_tensor_free(t);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory allocating a %zu-byte tensor", bytes);
    }
    return STDCPU_OK;
}

void stdcpu_tensor_view(stdcpu_tensor *t, stdcpu_dtype dt, int ndim, const int64_t *shape, void *data)
{
    size_t bytes;
    if (set_shape(t, dt, ndim, shape, &bytes, NULL) != STDCPU_OK)
        memset(t, 0, sizeof *t);
    t->data = data;
}

void stdcpu_tensor_free(stdcpu_tensor *t)
{
    if (t->owns) {
        stdcpu_aligned_free(t->data);
        stdcpu_aligned_free(t->scales);
    }
    memset(t, 0, sizeof *t);
}

const char *stdcpu_shape_str(const stdcpu_tensor *t, char *buf, size_t n)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (off < n)
        snprintf(buf + off, n - off, "]");
    return buf;
}

int stdcpu_shape_equal(const stdcpu_tensor *a, const stdcpu_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}
