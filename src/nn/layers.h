/* Loading layers from a weight source, shared by every network.
 *
 * Precision: in STDCPU_PREC_F32 every layer runs in f32 (int8-stored weights
 * are dequantised). In STDCPU_PREC_INT8 a layer stored as int8 runs through
 * the q8 kernels; a float-stored layer is quantised at load (per output
 * channel) when the default quantisation policy would store it as int8 (the
 * policy of core/quant.h on "<component>.<name>.weight"), and stays f32
 * otherwise (first/last convolutions, embeddings, small layers...). So a
 * model behaves the same whether it comes from the distribution files or
 * from a converted .stdm. */
#ifndef STDCPU_NN_LAYERS_H
#define STDCPU_NN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops_gemm.h"
#include "nn/weights.h"
#include "stdcpu.h"

typedef enum stdcpu_precision { STDCPU_PREC_F32 = 0, STDCPU_PREC_INT8 = 1 } stdcpu_precision;

const char *stdcpu_precision_name(stdcpu_precision p);

/* Whether the weight wname (stored as v) runs through the q8 kernels in
 * int8 precision: stored int8 always; a float weight when the default
 * quantisation policy would store "<component>.<wname>" as int8. */
int stdcpu_nn_wants_int8(const stdcpu_wsrc *w, const char *wname, const stdcpu_wview *v);

/* "<prefix>.weight" [n, k] (or a 1x1 convolution [n, k, 1, 1]) and the
 * optional "<prefix>.bias" [n] as a linear layer. n, k (may be NULL) get the
 * sizes; expect_k >= 0 checks the input size. */
stdcpu_status stdcpu_nn_load_linear(stdcpu_linear_weight *lw, const stdcpu_wsrc *w, const char *prefix,
                                    stdcpu_precision p, int64_t expect_k, size_t *n, size_t *k, stdcpu_error *err);

/* "<prefix>.weight" [O, I, kh, kw] and the optional "<prefix>.bias" [O] as a
 * convolution; out_ch / in_ch / ksize (may be NULL) get the sizes (kh == kw
 * required); expect_in >= 0 checks I. */
stdcpu_status stdcpu_nn_load_conv(stdcpu_conv2d_weight *cw, const stdcpu_wsrc *w, const char *prefix,
                                  stdcpu_precision p, int64_t expect_in, size_t *out_ch, size_t *in_ch,
                                  size_t *ksize, stdcpu_error *err);

/* A 1-D parameter (norm weight/bias, embedding row table...) as f32; expect
 * >= 0 checks the element count. */
stdcpu_status stdcpu_nn_load_vec(float **out, const stdcpu_wsrc *w, const char *name, int64_t expect,
                                 stdcpu_error *err);

/* A "<prefix>.weight" / "<prefix>.bias" pair of a norm layer of C channels. */
typedef struct stdcpu_nn_norm {
    float *gamma; /* [C] */
    float *beta;  /* [C] */
    size_t c;
} stdcpu_nn_norm;
stdcpu_status stdcpu_nn_load_norm(stdcpu_nn_norm *nm, const stdcpu_wsrc *w, const char *prefix, int64_t c,
                                  stdcpu_error *err);
void stdcpu_nn_norm_free(stdcpu_nn_norm *nm);

#endif
