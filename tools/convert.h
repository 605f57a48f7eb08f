/* stdcpu-convert internals shared by its source files: the list of tensors
 * to write (from safetensors sources or random) and the components. */
#ifndef STDCPU_TOOLS_CONVERT_H
#define STDCPU_TOOLS_CONVERT_H

#include <stdint.h>
#include <stdio.h>

#include "core/json.h"
#include "core/names.h"
#include "core/safetensors.h"
#include "core/stdm.h"

#define CONVERT_MAX_SHARDS 32

/* One tensor to write: from a safetensors source (rows [row_begin, row_end)
 * of src, or all rows when row_begin < 0) or random (src == NULL). */
typedef struct convert_item {
    char *name; /* canonical, with component prefix */
    const stdcpu_st_tensor *src;
    int64_t row_begin, row_end;
    int transpose; /* src is the 2-D transpose of the parameter */
    int ndim;
    int64_t shape[STDCPU_MAX_DIMS];
} convert_item;

typedef struct convert_component {
    char name[32];
    stdcpu_json_doc *config; /* may be NULL */
    stdcpu_safetensors *shards[CONVERT_MAX_SHARDS];
    int n_shards;
    int64_t params, bytes, tensors;
} convert_component;

typedef struct convert_job {
    convert_component comps[16];
    int n_comps;
    convert_item *items;
    size_t n_items, cap_items;
    stdcpu_safetensors *ckpt; /* single-file base, owned */
    int quiet;
    uint64_t seed;
} convert_job;

convert_component *convert_add_component(convert_job *job, const char *name, stdcpu_error *err);
stdcpu_status convert_add_item(convert_job *job, const char *comp, const char *name, const stdcpu_st_tensor *src,
                               int64_t row_begin, int64_t row_end, int ndim, const int64_t *shape,
                               stdcpu_error *err);

/* Fills t[0..n) with random values for a parameter: weights uniform with std
 * 1/sqrt(fan_in), norm weights 1, biases 0; deterministic in (seed, name). */
void convert_random_fill(const char *name, int ndim, const int64_t *shape, uint64_t seed, float *t, size_t n);

/* Single-file checkpoint: maps every component whose config is in config_dir. */
stdcpu_status convert_single_file(convert_job *job, const char *ckpt_path, const char *config_dir,
                                  stdcpu_stdm_writer *w, stdcpu_error *err);

#endif
