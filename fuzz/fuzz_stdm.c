/* libFuzzer harness: the .stdm validator, lookups and checksum verification.
 * Inputs are copied to 64-byte aligned memory, as an mmap would be. Inputs
 * whose first byte is odd get their header and index CRCs recomputed first,
 * so that mutations reach the index validation behind the checksums. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "base/mem.h"
#include "core/stdm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *copy = stdcpu_aligned_alloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    unsigned char *b = copy;
    if (size >= 64 && (data[0] & 1)) {
        b[0] = 'S'; /* keep the magic intact */
        uint64_t ioff = 0, isize = 0;
        for (int i = 7; i >= 0; i--) {
            ioff = ioff << 8 | b[24 + i];
            isize = isize << 8 | b[32 + i];
        }
        if (ioff <= size && isize <= size - ioff) {
            uint32_t c = (uint32_t)crc32(0, b + ioff, (uInt)isize);
            for (int i = 0; i < 4; i++)
                b[40 + i] = (unsigned char)(c >> (8 * i));
        }
        uint32_t h = (uint32_t)crc32(0, b, 60);
        for (int i = 0; i < 4; i++)
            b[60 + i] = (unsigned char)(h >> (8 * i));
    }
    stdcpu_stdm *m;
    if (stdcpu_stdm_open_memory(&m, copy, size, NULL) == STDCPU_OK) {
        (void)stdcpu_stdm_verify(m, NULL);
        for (size_t i = 0; i < stdcpu_stdm_tensor_count(m); i++) {
            stdcpu_tensor t;
            const stdcpu_stdm_tensor *e = stdcpu_stdm_tensor_at(m, i);
            if (stdcpu_stdm_get(m, e->name, &t, NULL) == STDCPU_OK && e->scales && e->shape[0] > 0)
                (void)t.scales[e->shape[0] - 1];
        }
        for (size_t i = 0; i < stdcpu_stdm_component_count(m); i++)
            (void)stdcpu_stdm_config(m, stdcpu_stdm_component(m, i));
        stdcpu_stdm_close(m);
    }
    stdcpu_aligned_free(copy);
    return 0;
}
