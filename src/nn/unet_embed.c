/* The UNet's sinusoidal timestep features (diffusers get_timestep_embedding,
 * README 3.4), computed in fp32 the way PyTorch does so the golden time
 * embeddings match to ~1e-7. */
#include "config.h"

#include <math.h>

#include "nn/unet_internal.h"

void unet_sinusoid(float t, size_t n, int flip_sin_to_cos, float freq_shift, float *out)
{
    const size_t half = n / 2;
    /* exponent = -ln(10000) * k / (half - shift), all fp32 as in torch. */
    const float neg_log = (float)-log(10000.0);
    const float denom = (float)half - freq_shift;
    for (size_t k = 0; k < half; k++) {
        const float e = neg_log * (float)k / denom;
        const float a = t * expf(e);
        const float sn = (float)sin((double)a), cs = (float)cos((double)a);
        out[k] = flip_sin_to_cos ? cs : sn;
        out[half + k] = flip_sin_to_cos ? sn : cs;
    }
    if (n % 2)
        out[n - 1] = 0.0f; /* torch pads an odd size with one zero */
}
