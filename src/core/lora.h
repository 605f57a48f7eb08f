/* LoRA fusion at conversion time: W += scale * (alpha / r) * (B @ A), in f32,
 * before quantisation (golden README 3.6).
 *
 * Accepted key formats (one file may mix them):
 *   PEFT / diffusers   <comp>.<module>.lora_A.weight, .lora_B.weight  (STD LoRA)
 *   kohya              lora_unet_<module_with_underscores>.lora_down.weight,
 *                      .lora_up.weight, .alpha   (also lora_te_, lora_te1_, lora_te2_;
 *                      UNet modules by diffusers path or, through aliases, by the
 *                      original LDM/SGM path as sd-scripts writes for SDXL)
 *   old diffusers      <comp>.<module>.lora.down.weight / .lora.up.weight,
 *                      <comp>.<...>.attnN.processor.to_q_lora.down.weight,
 *                      <comp>.<module>.lora_linear_layer.down.weight
 * <comp> is unet, text_encoder or text_encoder_2 (a missing prefix means unet).
 * alpha: a per-module ".alpha" tensor, else the file metadata "lora_alpha",
 * else alpha = r (diffusers' PEFT default; scale 1). A LoRA with modules of
 * different ranks and no alphas uses each module's own rank (diffusers 0.29
 * would use the first module's rank for all). Linear A [r, in], B [out, r];
 * conv A [r, in, kh, kw], B [out, r, 1, 1].
 *
 * Every key must be understood and every target must exist in the base model
 * (checked against the list of base names given when adding a file); anything
 * else is an error that lists the offending keys. */
#ifndef STDCPU_CORE_LORA_H
#define STDCPU_CORE_LORA_H

#include <stddef.h>

#include "stdcpu.h"

typedef struct stdcpu_lora stdcpu_lora;

stdcpu_status stdcpu_lora_create(stdcpu_lora **out, stdcpu_error *err);
void stdcpu_lora_free(stdcpu_lora *l);

/* base_names: canonical names of the base model's tensors ("unet.xxx.weight"),
 * sorted by strcmp. The file stays mapped until stdcpu_lora_free. */
stdcpu_status stdcpu_lora_add_file(stdcpu_lora *l, const char *path, float scale, const char *const *base_names,
                                   size_t n_base, stdcpu_error *err);

/* Extra kohya module names: stem[i] (the underscored module path after
 * "lora_unet_", e.g. the original LDM/SGM "input_blocks_4_1_proj_in") maps to
 * the canonical weight target[i] ("unet.down_blocks.1.attentions.0.proj_in.weight").
 * Used when a kohya key matches no diffusers module; set before adding files.
 * The strings are copied. */
stdcpu_status stdcpu_lora_set_unet_aliases(stdcpu_lora *l, const char *const *stem, const char *const *target,
                                          size_t n, stdcpu_error *err);

/* Adds every delta that targets `name` to w (f32, the base tensor's shape).
 * *applied (may be NULL) receives the number of deltas fused. */
stdcpu_status stdcpu_lora_apply(stdcpu_lora *l, const char *name, float *w, int ndim, const int64_t *shape,
                                int *applied, stdcpu_error *err);

/* Number of module deltas loaded, and an error if any was never applied. */
size_t stdcpu_lora_count(const stdcpu_lora *l);
stdcpu_status stdcpu_lora_check_all_applied(const stdcpu_lora *l, stdcpu_error *err);

#endif
