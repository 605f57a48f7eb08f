/* Tensors: a dtype, up to 6 dimensions (row-major, last index fastest) and
 * 64-byte aligned storage. int8 tensors carry per-output-channel (dim 0)
 * symmetric scales: real = scale[c] * q. */
#ifndef STDCPU_CORE_TENSOR_H
#define STDCPU_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "stdcpu.h"

typedef enum stdcpu_dtype {
    STDCPU_DT_F32 = 0,
    STDCPU_DT_F16 = 1,
    STDCPU_DT_BF16 = 2,
    STDCPU_DT_I8 = 3,
    STDCPU_DT_U8 = 4,
    STDCPU_DT_I32 = 5,
    STDCPU_DT_I64 = 6,
    STDCPU_DT_COUNT = 7
} stdcpu_dtype;

#define STDCPU_MAX_DIMS 6

typedef struct stdcpu_tensor {
    stdcpu_dtype dtype;
    int ndim;
    int64_t shape[STDCPU_MAX_DIMS];
    void *data;     /* 64-byte aligned when owned */
    float *scales;  /* int8 only: [shape[0]] per-channel scales, else NULL */
    int owns;       /* data/scales freed by stdcpu_tensor_free */
} stdcpu_tensor;

size_t stdcpu_dtype_size(stdcpu_dtype dt);
const char *stdcpu_dtype_name(stdcpu_dtype dt);

/* Number of elements; 0 for ndim==0 means a scalar of 1 element. */
int64_t stdcpu_tensor_numel(const stdcpu_tensor *t);
size_t stdcpu_tensor_nbytes(const stdcpu_tensor *t);

/* Allocates zeroed storage (and zero scales for int8). Fails on overflow. */
stdcpu_status stdcpu_tensor_alloc(stdcpu_tensor *t, stdcpu_dtype dt, int ndim, const int64_t *shape,
                                  stdcpu_error *err);
/* A non-owning view of existing memory. */
void stdcpu_tensor_view(stdcpu_tensor *t, stdcpu_dtype dt, int ndim, const int64_t *shape, void *data);
void stdcpu_tensor_free(stdcpu_tensor *t);

/* "[2,4,64,64]" into buf; returns buf. */
const char *stdcpu_shape_str(const stdcpu_tensor *t, char *buf, size_t n);
int stdcpu_shape_equal(const stdcpu_tensor *a, const stdcpu_tensor *b);

#endif
