/* The int8 path of stdcpu_attention (desc->int8); see ops_attn_q8.c. */
#ifndef STDCPU_CORE_OPS_ATTN_Q8_H
#define STDCPU_CORE_OPS_ATTN_Q8_H

#include "core/ops_nn.h"

/* Bytes of scratch a run with `threads` threads uses (K/V packs for every
 * (batch, head), then each thread's tile buffers), or 0 when the sizes
 * overflow. Strides need not be filled in. */
size_t stdcpu_attention_q8_scratch_bytes(const stdcpu_attention_desc *a, int threads);

/* Runs a checked, defaulted descriptor (strides filled in, tq > 0). Uses
 * a->scratch when it holds stdcpu_attention_q8_scratch_bytes(a, pool
 * threads), else allocates. */
stdcpu_status stdcpu_attention_q8_run(stdcpu_pool *pool, const stdcpu_kernels *kern,
                                      const stdcpu_attention_desc *a, stdcpu_error *err);

#endif
