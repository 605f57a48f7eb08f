/* Internal to src/core: the q8 tile loop shared by the linear layers,
 * the convolutions (ops_gemm.c) and the fused feed-forward (ops_ff.c). */
#ifndef STDCPU_CORE_OPS_GEMM_TILES_H
#define STDCPU_CORE_OPS_GEMM_TILES_H

#include <stddef.h>
#include <stdint.h>

#include "simd/gemm.h"

/* Weight bytes streamed per column block: sized for Zen 4 / Cortex-A76 L2. */
#define L2_WEIGHT_BYTES (192u * 1024u)

/* Operands of one task's tiles. Output element (i, c) of the task is at
 * y[i * ldy + c - y_col0] (residual alike): y may hold only the columns the
 * task computes. */
typedef struct {
    const stdcpu_gemm_kernels *gk;
    size_t ks, kc;
    const int8_t *packed;
    const int32_t *wsum;
    const float *w_scale, *bias;
    const float *a_scale;     /* of the task's first row */
    size_t a_scale_stride;
    float *y;                 /* the task's first row */
    const float *residual;    /* the task's first row, or NULL */
    size_t ldy, y_col0;
    stdcpu_act act;
} stdcpu_q8_tiles;

/* Runs rows [0, rows) x columns [c0, c1) (c0 a multiple of 16) of a task.
 * ind holds the pointer tiles: tile mt (rows mt*mr ..) at ind + mt*ks*mr,
 * laid out [ks][mr_t]. */
void stdcpu_q8_run_tiles(const stdcpu_q8_tiles *q, size_t rows, const int8_t *const *ind, size_t c0, size_t c1);

#endif
