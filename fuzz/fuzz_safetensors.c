/* libFuzzer harness: the safetensors validator and f32 conversion. */
#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stdcpu_safetensors *st;
    if (stdcpu_st_open_memory(&st, data, size, NULL) != STDCPU_OK)
        return 0;
    for (size_t i = 0; i < stdcpu_st_count(st); i++) {
        const stdcpu_st_tensor *t = stdcpu_st_at(st, i);
        float *f;
        if (t->numel <= (1 << 20) && stdcpu_st_to_f32(t, &f, NULL) == STDCPU_OK)
            stdcpu_aligned_free(f);
        (void)stdcpu_st_find(st, t->name);
    }
    (void)stdcpu_st_metadata_get(st, "format");
    stdcpu_st_close(st);
    return 0;
}
