/* Fusing LoRA files into a component's weights at load time (W += scale *
 * alpha/r * B A, through core/lora.h): the fused tensors become f32
 * overrides of the weight source, so the network then loads them like any
 * other weight (and quantises them in int8 precision). The converter does
 * the same at conversion time; this path serves distribution folders. */
#ifndef STDCPU_NN_LORA_FUSE_H
#define STDCPU_NN_LORA_FUSE_H

#include "nn/weights.h"
#include "stdcpu.h"

/* Fuses every module of the LoRA file that targets this source's component
 * (canonical names "<component>.<name>"); scale multiplies every delta
 * (diffusers' fuse_lora(lora_scale)). Keys for other components are ignored
 * by this call; unknown keys are an error. *fused (may be NULL) gets the
 * number of tensors changed. */
stdcpu_status stdcpu_nn_fuse_lora(stdcpu_wsrc *w, const char *lora_path, float scale, size_t *fused,
                                  stdcpu_error *err);

#endif
