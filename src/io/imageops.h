/* Image operations on RGB8 images: resize, crop, and conversion to / from
 * float tensors. Sizes are validated; outputs are freshly allocated images
 * (free with stdcpu_image_free) unless a function says otherwise. */
#ifndef STDCPU_IO_IMAGEOPS_H
#define STDCPU_IO_IMAGEOPS_H

#include "io/image.h"

typedef enum stdcpu_resize_filter {
    /* Float modes: separable, computed in float with one rounding at the end.
     * On downscale the filter support grows with the factor (antialiased). */
    STDCPU_RESIZE_AREA = 0, /* exact area coverage (box averaging; on upscale ~ nearest with blended seams) */
    STDCPU_RESIZE_BILINEAR, /* triangle filter */
    STDCPU_RESIZE_BICUBIC,  /* Keys cubic, a = -0.5 */
    /* Pillow-exact modes: Image.resize(size, <filter>) for RGB images, bit
     * for bit: same coefficients, 22-bit fixed point, horizontal pass first,
     * 8-bit rounding and clamping after each pass. PIL_BICUBIC is what the
     * reference pipelines (CLIPImageProcessor, test images) use. */
    STDCPU_RESIZE_PIL_BICUBIC,
    STDCPU_RESIZE_PIL_BILINEAR,
    STDCPU_RESIZE_PIL_LANCZOS,
    STDCPU_RESIZE_PIL_BOX,
} stdcpu_resize_filter;

/* Resize src to width x height into a new image *dst. */
stdcpu_status stdcpu_image_resize(const stdcpu_image *src, int width, int height, stdcpu_resize_filter filter,
                                  stdcpu_image *dst, stdcpu_error *err);

/* Copy the rectangle (x, y, width, height), which must lie inside src. */
stdcpu_status stdcpu_image_crop(const stdcpu_image *src, int x, int y, int width, int height, stdcpu_image *dst,
                                stdcpu_error *err);
/* Centre crop as transformers' CLIPImageProcessor does it:
 * top = (src_h - h) / 2, left = (src_w - w) / 2 (floor). Must fit in src. */
stdcpu_status stdcpu_image_center_crop(const stdcpu_image *src, int width, int height, stdcpu_image *dst,
                                       stdcpu_error *err);
/* Output size that makes the shorter side `target` and keeps the aspect
 * ratio, the longer side truncated (transformers "shortest_edge"). */
void stdcpu_size_for_shortest_side(int width, int height, int target, int *out_width, int *out_height);

typedef enum stdcpu_pixel_range {
    STDCPU_RANGE_01 = 0, /* x = v / 255 */
    STDCPU_RANGE_PM1 = 1 /* x = v / 255 * 2 - 1 (diffusers VaeImageProcessor) */
} stdcpu_pixel_range;

/* RGB8 -> float, computed in float32 exactly as numpy/torch do it. */
void stdcpu_image_to_chw_f32(const stdcpu_image *img, stdcpu_pixel_range range, float *out /* [3][h][w] */);
void stdcpu_image_to_hwc_f32(const stdcpu_image *img, stdcpu_pixel_range range, float *out /* [h][w][3] */);
/* float -> RGB8 into an allocated img of the right size:
 * v = round_half_even(255 * clamp(x', 0, 1)) with x' = x (RANGE_01) or
 * x / 2 + 0.5 (RANGE_PM1), as diffusers' postprocess does. */
void stdcpu_image_from_chw_f32(const float *chw /* [3][h][w] */, stdcpu_pixel_range range, stdcpu_image *img);
void stdcpu_image_from_hwc_f32(const float *hwc /* [h][w][3] */, stdcpu_pixel_range range, stdcpu_image *img);

#endif
