/* Random weights for --random: activations stay well scaled through deep
 * stacks (uniform weights with std 1/sqrt(fan_in), norms weight 1 bias 0). */
#include <math.h>
#include <string.h>

#include "convert.h"

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

void convert_random_fill(const char *name, int ndim, const int64_t *shape, uint64_t seed, float *t, size_t n)
{
    /* per-tensor stream: FNV-1a of the name mixed with the seed, so the
     * result does not depend on conversion order */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    uint64_t s = h ^ (seed * 0x9E3779B97F4A7C15ull);
    float amp;
    if (ndim >= 2) {
        size_t fan_in = shape[0] ? n / (size_t)shape[0] : 1;
        amp = sqrtf(3.0f / (float)(fan_in ? fan_in : 1)); /* uniform(-a, a) has std a/sqrt(3) */
    } else if (ends_with(name, ".bias")) {
        memset(t, 0, n * sizeof *t);
        return;
    } else if (strstr(name, "norm") || strstr(name, "layrnorm")) {
        for (size_t i = 0; i < n; i++)
            t[i] = 1.0f;
        return;
    } else {
        amp = 0.02f * sqrtf(3.0f); /* class embedding and other vectors */
    }
    uint64_t x = splitmix64(&s) | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        float u = (float)(x >> 40) * (1.0f / 16777216.0f); /* [0, 1) */
        t[i] = (2.0f * u - 1.0f) * amp;
    }
}
