/* stdcpu public API.
 *
 * Conventions: every fallible function returns stdcpu_status (STDCPU_OK == 0);
 * on failure a one-line message is available from the context (or the
 * stdcpu_error passed in). Handles are opaque. The library never prints and
 * never exits: it reports through return values and an optional log callback.
 */
#ifndef STDCPU_H
#define STDCPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STDCPU_VERSION_MAJOR 0
#define STDCPU_VERSION_MINOR 1
#define STDCPU_VERSION_PATCH 0

typedef enum stdcpu_status {
    STDCPU_OK = 0,
    STDCPU_ERR_INVALID_ARG = 1, /* a caller-supplied value is out of range */
    STDCPU_ERR_NOMEM = 2,       /* allocation failed */
    STDCPU_ERR_IO = 3,          /* open/read/write/rename failed */
    STDCPU_ERR_FORMAT = 4,      /* malformed, truncated or corrupt input */
    STDCPU_ERR_UNSUPPORTED = 5, /* valid input that this build cannot handle */
    STDCPU_ERR_LIMIT = 6,       /* input exceeds a configured safety limit */
    STDCPU_ERR_NOT_FOUND = 7,   /* a named file, tensor or component is absent */
    STDCPU_ERR_MISMATCH = 8,    /* model / feature / shape mismatch */
    STDCPU_ERR_INTERNAL = 9     /* a bug: please report */
} stdcpu_status;

/* Short constant name of a status ("ok", "invalid argument", ...). */
const char *stdcpu_status_name(stdcpu_status s);

/* An error slot: the status plus a one-line, human-readable message. */
#define STDCPU_ERROR_MSG_MAX 512
typedef struct stdcpu_error {
    stdcpu_status status;
    char msg[STDCPU_ERROR_MSG_MAX];
} stdcpu_error;

const char *stdcpu_version_string(void);

/* ---- CPU dispatch ------------------------------------------------------ */

typedef enum stdcpu_isa {
    STDCPU_ISA_SCALAR = 0,
    STDCPU_ISA_AVX2 = 1,       /* AVX2 + FMA + F16C */
    STDCPU_ISA_AVX512VNNI = 2, /* AVX-512 F/BW/VL/DQ + VNNI */
    STDCPU_ISA_NEON = 3,       /* AArch64 Advanced SIMD */
    STDCPU_ISA_NEONDOT = 4,    /* AArch64 NEON + SDOT/UDOT (armv8.2 dotprod) */
    STDCPU_ISA_COUNT = 5
} stdcpu_isa;

const char *stdcpu_isa_name(stdcpu_isa isa);
/* Nonzero if this CPU (and OS) supports the ISA and this build has its kernels. */
int stdcpu_isa_available(stdcpu_isa isa);
/* The ISA the dispatch table uses: the best available, capped by STDCPU_ISA. */
stdcpu_isa stdcpu_isa_active(void);

/* ---- context -------------------------------------------------------------- */

typedef enum stdcpu_log_level {
    STDCPU_LOG_ERROR = 0,
    STDCPU_LOG_WARN = 1,
    STDCPU_LOG_INFO = 2,
    STDCPU_LOG_DEBUG = 3
} stdcpu_log_level;

typedef void (*stdcpu_log_fn)(void *user, stdcpu_log_level level, const char *line);

/* Progress: called with done = 0 when a phase starts, then after each unit
 * of work (e.g. one UNet step: "unet", 0..total). */
typedef void (*stdcpu_progress_fn)(void *user, const char *phase, int done, int total);

typedef struct stdcpu_ctx stdcpu_ctx;

/* threads <= 0 means STDCPU_THREADS from the environment, else online CPUs. */
stdcpu_status stdcpu_ctx_create(stdcpu_ctx **out, int threads);
void stdcpu_ctx_destroy(stdcpu_ctx *ctx);
int stdcpu_ctx_threads(const stdcpu_ctx *ctx);
void stdcpu_ctx_set_log(stdcpu_ctx *ctx, stdcpu_log_fn fn, void *user);
void stdcpu_ctx_set_progress(stdcpu_ctx *ctx, stdcpu_progress_fn fn, void *user);
/* The one-line message of the last failure on this context ("" if none). */
const char *stdcpu_ctx_last_error(const stdcpu_ctx *ctx);

/* ---- models and stylization --------------------------------------------- */

/* A converted model file (.stdm), its networks loaded (weights used in place
 * from the file mapping). */
typedef struct stdcpu_model stdcpu_model;

/* int8 != 0: W8A8 (the default); 0: every layer in f32. The message of a
 * failure is on the context. */
stdcpu_status stdcpu_model_load(stdcpu_ctx *ctx, const char *path, int int8, stdcpu_model **out);
void stdcpu_model_free(stdcpu_model *m);

typedef struct stdcpu_style_params {
    const char *prompt;       /* style text ("" = none) */
    const char *negative;     /* negative prompt (NULL = the recipe's) */
    const uint8_t *style_rgb; /* style image, RGB8 [style_h][style_w][3], or NULL */
    int style_w, style_h;
    double style_scale;       /* IP-Adapter scale (InstantStyle targeting) */
    double strength;          /* (0, 1] */
    int steps;                /* UNet evaluations */
    double cfg;               /* guidance scale (<= 1: none) */
    uint64_t seed;
    int long_side;            /* working long side, multiple of 64 */
    int tiny_decoder;         /* decode with the bundled TAESD */
} stdcpu_style_params;

/* The model's recipe defaults (SDXL: STD, 8 steps at 0.75, guidance 6;
 * SD1.5: LCM, 4 steps at 0.5, no guidance). */
void stdcpu_style_params_default(const stdcpu_model *m, stdcpu_style_params *p);

/* Stylizes rgb [h][w][3] into out_rgb [h][w][3] (same size; may not alias).
 * Progress goes to the context's progress callback. */
stdcpu_status stdcpu_stylize_rgb(stdcpu_ctx *ctx, stdcpu_model *m, const uint8_t *rgb, int w, int h,
                                 const stdcpu_style_params *p, uint8_t *out_rgb);

#ifdef __cplusplus
}
#endif
#endif /* STDCPU_H */
