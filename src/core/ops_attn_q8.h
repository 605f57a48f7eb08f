/* The int8 path of stdcpu_attention (desc->int8); see ops_attn_q8.c. */
#ifndef STDCPU_CORE_OPS_ATTN_Q8_H
#define STDCPU_CORE_OPS_ATTN_Q8_H

#include "core/ops_nn.h"

/* Runs a checked, defaulted descriptor (strides filled in, tq > 0). */
stdcpu_status stdcpu_attention_q8_run(stdcpu_pool *pool, const stdcpu_kernels *kern,
                                      const stdcpu_attention_desc *a, stdcpu_error *err);

#endif
