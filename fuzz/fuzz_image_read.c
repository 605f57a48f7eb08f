/* libFuzzer harness for the image readers (PNG, JPEG, WebP still and
 * animated) through the from-memory API. Limits are lowered so the fuzzer
 * explores parsing rather than allocating huge canvases.
 *   ./fuzz/fuzz_image_read corpus/ */
#include <stddef.h>
#include <stdint.h>

#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stdcpu_io_limits limits = {.max_pixels = 4096 * 4096, .max_frames = 64, .max_total_pixels = 32 << 20};
    stdcpu_error err;
    stdcpu_image img;
    if (stdcpu_image_read_memory(data, size, "fuzz", &limits, &img, &err) == STDCPU_OK) {
        /* Touch every byte so uninitialised or short buffers show up. */
        volatile unsigned sum = 0;
        for (size_t i = 0; i < (size_t)img.width * (size_t)img.height * 3; i++)
            sum += img.rgb[i];
        stdcpu_image_free(&img);
    }
    stdcpu_frames fr;
    if (stdcpu_frames_read_memory(data, size, "fuzz", &limits, &fr, &err) == STDCPU_OK) {
        volatile unsigned sum = 0;
        for (size_t i = 0; i < (size_t)fr.width * (size_t)fr.height * 3 * (size_t)fr.count; i++)
            sum += fr.rgb[i];
        for (int i = 0; i < fr.count; i++)
            sum += (unsigned)fr.durations_ms[i];
        stdcpu_frames_free(&fr);
    }
    return 0;
}
