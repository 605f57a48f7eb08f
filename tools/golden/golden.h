/* The golden case runner's shared machinery (tools/stdcpu-golden).
 *
 * A case folder holds case.json (kind, models, params, outputs, tolerance)
 * and io.safetensors (in.* inputs, out.* expected outputs); model paths are
 * relative to the golden root (the case folder's parent). A kind runner
 * reads inputs, computes, and hands every output to golden_check_*, which
 * prints one line per output and counts failures. Outputs the runner never
 * checks are failures too, except optional `out.dbg_*` diagnostics. */
#ifndef STDCPU_TOOLS_GOLDEN_H
#define STDCPU_TOOLS_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "core/safetensors.h"
#include "core/threadpool.h"
#include "stdcpu.h"

typedef enum golden_precision { GOLDEN_F32 = 0, GOLDEN_INT8 = 1 } golden_precision;

typedef struct golden_case {
    char dir[4096];  /* the case folder */
    char root[4096]; /* the golden root: models paths are relative to it */
    const char *name;
    const char *kind;
    stdcpu_json_doc *doc;
    const stdcpu_json *params;    /* may be an empty object */
    const stdcpu_json *models;    /* role -> path */
    const stdcpu_json *tolerance; /* out.X -> {max_abs, ...} */
    stdcpu_safetensors *io;
    golden_precision precision;
    stdcpu_pool *pool;
    int verbose;
    /* bookkeeping */
    int n_pass, n_fail;
    char **checked; /* names of outputs checked so far */
    size_t n_checked, cap_checked;
} golden_case;

/* Input/expected tensors from io.safetensors (NULL + err when absent). */
const stdcpu_st_tensor *golden_tensor(golden_case *gc, const char *name, stdcpu_error *err);
/* A float tensor as a new f32 array (free with stdcpu_aligned_free). */
stdcpu_status golden_f32(golden_case *gc, const char *name, float **out, const stdcpu_st_tensor **t,
                         stdcpu_error *err);
/* An I64 tensor's values (copied into a new malloc'd array). */
stdcpu_status golden_i64(golden_case *gc, const char *name, int64_t **out, const stdcpu_st_tensor **t,
                         stdcpu_error *err);
int golden_has(golden_case *gc, const char *name);

/* Absolute path of a model role ("unet", "lora", ...) into buf; NOT_FOUND if absent. */
stdcpu_status golden_model_path(golden_case *gc, const char *role, char *buf, size_t n, stdcpu_error *err);
/* Path of a file named in params relative to the case folder. */
void golden_case_file(golden_case *gc, const char *rel, char *buf, size_t n);

/* Compare a produced output with out.<name> (name given with the "out."
 * prefix). f32: max |got-ref| <= tolerance max_abs from case.json (in int8
 * precision: relative L2 error <= int8_rel_l2, the caller's stated bound for
 * that output); prints "PASS/FAIL name max_abs=.. rel=.. tol=..". */
void golden_check_f32(golden_case *gc, const char *name, const float *got, size_t n, double int8_rel_l2);
void golden_check_i64(golden_case *gc, const char *name, const int64_t *got, size_t n);
void golden_check_u8(golden_case *gc, const char *name, const uint8_t *got, size_t n); /* +-1 */
/* Marks an output as deliberately not compared (printed as SKIP with the reason). */
void golden_skip(golden_case *gc, const char *name, const char *why);
/* Record a failure that is not a numeric comparison (e.g. a computation error). */
void golden_fail(golden_case *gc, const char *name, const char *why);

/* A kind runner: computes and checks every output it can. A returned error
 * is reported as a failure of the whole case. */
typedef stdcpu_status (*golden_kind_fn)(golden_case *gc, stdcpu_error *err);

/* The kind runners (tools/golden/kind_<kind>.c). */
stdcpu_status golden_kind_schedulers(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_tokenizer(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_pipeline_sdxl_img2img(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_pipeline_sd15_img2img(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_clip_text(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_clip_vision(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_vae(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_taesd_diffusers(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_taesd_py(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_unet(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_unet_lora(golden_case *gc, stdcpu_error *err);
stdcpu_status golden_kind_unet_ip_adapter(golden_case *gc, stdcpu_error *err);

#endif
