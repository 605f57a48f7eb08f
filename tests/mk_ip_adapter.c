/* Test helper: writes a random-weight IP-Adapter file in the
 * ip-adapter_sdxl layout (golden README 3.7) for a UNet whose attn2 layers
 * have the given channel counts, in attn_processors order:
 *   mk_ip_adapter OUT.safetensors X D C1 [C2 ...]
 * X = cross_attention_dim, D = image-encoder projection dim, 4 tokens. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[64];
    int64_t rows, cols; /* cols 0 = a vector of rows */
    float *data;
} tensor;

static uint64_t state = 0x9E3779B97F4A7C15ull;
static float uniform(float a)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return a * (2.0f * (float)(state >> 40) / 16777216.0f - 1.0f);
}

static void fill(tensor *t, const char *name, int64_t rows, int64_t cols, int kind)
{
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    const int64_t n = rows * (cols ? cols : 1);
    t->data = malloc((size_t)n * sizeof(float));
    const float a = cols ? sqrtf(3.0f / (float)cols) : 0.0f;
    for (int64_t i = 0; i < n; i++)
        t->data[i] = kind == 1 ? 1.0f : kind == 2 ? 0.0f : uniform(a);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: mk_ip_adapter OUT.safetensors X D C1 [C2 ...]\n");
        return 2;
    }
    const int64_t X = atoll(argv[2]), D = atoll(argv[3]);
    const int nl = argc - 4;
    tensor *t = calloc((size_t)(4 + 2 * nl), sizeof *t);
    int n = 0;
    fill(&t[n++], "image_proj.proj.weight", 4 * X, D, 0);
    fill(&t[n++], "image_proj.proj.bias", 4 * X, 0, 0);
    fill(&t[n++], "image_proj.norm.weight", X, 0, 1);
    fill(&t[n++], "image_proj.norm.bias", X, 0, 2);
    for (int i = 0; i < nl; i++) {
        char name[64];
        const int64_t C = atoll(argv[4 + i]);
        snprintf(name, sizeof name, "ip_adapter.%d.to_k_ip.weight", 2 * i + 1);
        fill(&t[n++], name, C, X, 0);
        snprintf(name, sizeof name, "ip_adapter.%d.to_v_ip.weight", 2 * i + 1);
        fill(&t[n++], name, C, X, 0);
    }
    /* header JSON, padded with spaces to a multiple of 8 */
    size_t cap = 256 + (size_t)n * 160, len = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const uint64_t bytes = (uint64_t)(t[i].rows * (t[i].cols ? t[i].cols : 1)) * 4;
        if (t[i].cols)
            len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],"
                                    "\"data_offsets\":[%llu,%llu]}", t[i].name, (long long)t[i].rows,
                                    (long long)t[i].cols, (unsigned long long)off, (unsigned long long)(off + bytes));
        else
            len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],"
                                    "\"data_offsets\":[%llu,%llu]}", t[i].name, (long long)t[i].rows,
                                    (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8)
        h[len++] = ' ';
    FILE *f = fopen(argv[1], "wb");
    if (!f)
        return 1;
    const uint64_t hl = len; /* little-endian hosts only (as stdcpu) */
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, len, f);
    for (int i = 0; i < n; i++)
        fwrite(t[i].data, 4, (size_t)(t[i].rows * (t[i].cols ? t[i].cols : 1)), f);
    for (int i = 0; i < n; i++)
        free(t[i].data);
    free(t);
    free(h);
    return fclose(f) ? 1 : 0;
}
