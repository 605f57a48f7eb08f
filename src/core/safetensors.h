/* safetensors reader: a file is `u64 LE header_len`, `header_len` bytes of
 * JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {str: str}}, then the data area; offsets are relative to
 * the data area.
 *
 * Opening validates everything before any tensor is handed out: header length
 * against the file size, the JSON, every dtype / shape / offset pair (inside
 * the data area, end - begin == prod(shape) * dtype size, no two tensors
 * overlapping, no duplicate names). Files are mapped read-only (mmap), so
 * opening a multi-GB checkpoint costs nothing until tensors are touched.
 * Tensor data pointers are NOT necessarily aligned (offsets are arbitrary):
 * read them with memcpy or use stdcpu_st_to_f32. */
#ifndef STDCPU_CORE_SAFETENSORS_H
#define STDCPU_CORE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "stdcpu.h"

/* A header longer than this is refused (the reference implementation's limit). */
#define STDCPU_ST_MAX_HEADER ((uint64_t)100000000)
#define STDCPU_ST_MAX_DIMS 8

typedef enum stdcpu_st_dtype {
    STDCPU_ST_F32 = 0,
    STDCPU_ST_F16,
    STDCPU_ST_BF16,
    STDCPU_ST_F64,
    STDCPU_ST_I64,
    STDCPU_ST_I32,
    STDCPU_ST_I16,
    STDCPU_ST_I8,
    STDCPU_ST_U8,
    STDCPU_ST_BOOL,
    STDCPU_ST_DTYPE_COUNT
} stdcpu_st_dtype;

typedef struct stdcpu_st_tensor {
    const char *name;  /* NUL-terminated */
    stdcpu_st_dtype dtype;
    int ndim;          /* 0 = scalar (one element) */
    int64_t shape[STDCPU_ST_MAX_DIMS];
    int64_t numel;
    const void *data;  /* into the mapping; unaligned in general */
    size_t nbytes;
    uint64_t offset;   /* begin, relative to the data area */
} stdcpu_st_tensor;

typedef struct stdcpu_safetensors stdcpu_safetensors;

/* Opens and validates a file (mmap, read-only). */
stdcpu_status stdcpu_st_open(stdcpu_safetensors **out, const char *path, stdcpu_error *err);
/* Validates an in-memory image; data must outlive the handle (not copied). */
stdcpu_status stdcpu_st_open_memory(stdcpu_safetensors **out, const void *data, size_t len, stdcpu_error *err);
void stdcpu_st_close(stdcpu_safetensors *st);

/* Tensors sorted by name (byte order); i < count. */
size_t stdcpu_st_count(const stdcpu_safetensors *st);
const stdcpu_st_tensor *stdcpu_st_at(const stdcpu_safetensors *st, size_t i);
/* By exact name, NULL when absent (binary search). */
const stdcpu_st_tensor *stdcpu_st_find(const stdcpu_safetensors *st, const char *name);

/* The "__metadata__" object (string values) or NULL, and one value or NULL. */
const stdcpu_json *stdcpu_st_metadata(const stdcpu_safetensors *st);
const char *stdcpu_st_metadata_get(const stdcpu_safetensors *st, const char *key);

const char *stdcpu_st_dtype_name(stdcpu_st_dtype dt); /* "F32", ... */
size_t stdcpu_st_dtype_size(stdcpu_st_dtype dt);
int stdcpu_st_dtype_is_float(stdcpu_st_dtype dt);     /* F32/F16/BF16/F64 */

/* Converts a float tensor (F32/F16/BF16/F64) to a freshly allocated,
 * 64-byte aligned f32 array of numel elements; free with stdcpu_aligned_free.
 * Integer dtypes are refused (STDCPU_ERR_MISMATCH). */
stdcpu_status stdcpu_st_to_f32(const stdcpu_st_tensor *t, float **out, stdcpu_error *err);
/* Same into a caller buffer of exactly t->numel floats. */
stdcpu_status stdcpu_st_read_f32(const stdcpu_st_tensor *t, float *dst, stdcpu_error *err);

/* bfloat16 <-> float (round to nearest even). IEEE half conversions are
 * stdcpu_f16_to_f32 / stdcpu_f32_to_f16 in simd/eltwise.h. */
float stdcpu_bf16_to_f32(uint16_t h);
uint16_t stdcpu_f32_to_bf16(float f);

#endif
