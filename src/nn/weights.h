/* Where a network's parameters come from: a weight source maps parameter
 * names (the diffusers / HF names inside one component, e.g.
 * "down_blocks.0.resnets.0.conv1.weight") to stored tensors.
 *
 * Backends: a safetensors file or a diffusers / HF component folder
 * (config.json + weights), a .stdm component (model files issue), and
 * in-memory overrides on top of either (LoRA-fused weights). The stored
 * dtype is whatever the file holds (f32, f16, bf16, or int8 with
 * per-output-channel scales); readers convert as they need. */
#ifndef STDCPU_NN_WEIGHTS_H
#define STDCPU_NN_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "core/tensor.h"
#include "stdcpu.h"

typedef struct stdcpu_wview {
    stdcpu_dtype dtype; /* F32, F16, BF16 or I8 (others are refused by readers) */
    int ndim;
    int64_t shape[STDCPU_MAX_DIMS];
    int64_t numel;
    const void *data;    /* not necessarily aligned */
    const float *scales; /* I8 only: [shape[0]] per-output-channel scales */
} stdcpu_wview;

/* A backend: get by name (STDCPU_ERR_NOT_FOUND when absent), enumerate. */
typedef struct stdcpu_wsrc_backend {
    stdcpu_status (*get)(void *impl, const char *name, stdcpu_wview *v, stdcpu_error *err);
    size_t (*count)(void *impl);
    const char *(*name_at)(void *impl, size_t i);
    void (*close)(void *impl);
    /* Optional: the parameter's stored bytes are no longer needed (they were
     * repacked); a file-mapped backend drops their pages from memory. */
    void (*release)(void *impl, const char *name);
} stdcpu_wsrc_backend;

typedef struct stdcpu_wsrc stdcpu_wsrc;

/* Wraps a backend (the source owns impl and closes it). config may be NULL;
 * the source takes ownership of config_doc. component names the part of the
 * model ("unet", "vae", "text_encoder", ...) for quantisation-policy names. */
stdcpu_status stdcpu_wsrc_create(stdcpu_wsrc **out, const stdcpu_wsrc_backend *backend, void *impl,
                                 stdcpu_json_doc *config_doc, const char *component, stdcpu_error *err);

/* One safetensors file (no config). */
stdcpu_status stdcpu_wsrc_open_safetensors(stdcpu_wsrc **out, const char *path, const char *component,
                                           stdcpu_error *err);

/* A component folder as distributed: config.json plus one weights file, the
 * first present of diffusion_pytorch_model.safetensors, model.safetensors,
 * diffusion_pytorch_model.fp16.safetensors, model.fp16.safetensors.
 * component defaults to the folder's base name. */
stdcpu_status stdcpu_wsrc_open_dir(stdcpu_wsrc **out, const char *dir, const char *component, stdcpu_error *err);

/* One component ("unet", "vae", ...) of an open .stdm file: its tensors
 * "<component>.<name>" under their plain names, and its config.json. The
 * file must stay open while the source is used. */
struct stdcpu_stdm;
stdcpu_status stdcpu_wsrc_open_stdm(stdcpu_wsrc **out, const struct stdcpu_stdm *m, const char *component,
                                    stdcpu_error *err);

void stdcpu_wsrc_close(stdcpu_wsrc *w);

/* The component's config.json object, or NULL. */
const stdcpu_json *stdcpu_wsrc_config(const stdcpu_wsrc *w);
const char *stdcpu_wsrc_component(const stdcpu_wsrc *w);

/* Looks a parameter up (overrides first). NOT_FOUND (with a message naming
 * the parameter and the component) when absent. */
stdcpu_status stdcpu_wsrc_get(const stdcpu_wsrc *w, const char *name, stdcpu_wview *v, stdcpu_error *err);
int stdcpu_wsrc_has(const stdcpu_wsrc *w, const char *name);

/* A parameter as a new 64-byte aligned f32 array (int8 dequantised, f16/bf16
 * widened); free with stdcpu_aligned_free. v (may be NULL) gets the shape.
 * The stored bytes are then released (stdcpu_wsrc_release): v->data may
 * still be read, at the cost of faulting its pages back in. */
stdcpu_status stdcpu_wsrc_read_f32(const stdcpu_wsrc *w, const char *name, float **out, stdcpu_wview *v,
                                   stdcpu_error *err);
/* The same, checking the element count (expect >= 0) and the rank (ndim >= 0). */
stdcpu_status stdcpu_wsrc_read_f32_checked(const stdcpu_wsrc *w, const char *name, int ndim, int64_t expect,
                                           float **out, stdcpu_wview *v, stdcpu_error *err);

/* Replaces (or adds) a parameter with f32 data; the source takes ownership of
 * data (allocated with stdcpu_aligned_alloc). Used for LoRA fusion. */
stdcpu_status stdcpu_wsrc_set_f32(stdcpu_wsrc *w, const char *name, float *data, int ndim, const int64_t *shape,
                                  stdcpu_error *err);

/* Tells the source a parameter's stored bytes were consumed (copied or
 * repacked by the loader): file-mapped sources drop those pages from the
 * resident set so that a loaded model costs its packed size once, not
 * twice. Reading the parameter again still works (pages fault back in). */
void stdcpu_wsrc_release(const stdcpu_wsrc *w, const char *name);

/* Every parameter name (backend names, then overrides not in the backend). */
size_t stdcpu_wsrc_count(const stdcpu_wsrc *w);
const char *stdcpu_wsrc_name_at(const stdcpu_wsrc *w, size_t i);

#endif
