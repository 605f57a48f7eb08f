/* .stdm model files: every component the pipeline needs in one mmap-able file
 * (see docs/stdm.md for the byte layout).
 *
 *   [64-byte header][64-byte aligned tensors and blobs ...][JSON index]
 *
 * The header carries the magic, version, file size, the index position and a
 * CRC-32 of the index and of itself; opening checks those, parses the index and
 * validates every entry (aligned, inside the data area, size = numel * dtype
 * size, no overlaps, unique names) without touching tensor data, so opening is
 * O(index) and pages are faulted in only when used. Each entry also has a
 * CRC-32 of its bytes, checked only by stdcpu_stdm_verify (which reads all).
 *
 * Names: tensors use the canonical stdcpu names "<component>.<diffusers
 * name>" (e.g. "unet.conv_in.weight"); blobs use "<component>/<file>" (e.g.
 * "unet/config.json", "tokenizer/merges.txt"). */
#ifndef STDCPU_CORE_STDM_H
#define STDCPU_CORE_STDM_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "core/tensor.h"
#include "stdcpu.h"

#define STDCPU_STDM_MAGIC "STDCPUMD"
#define STDCPU_STDM_VERSION 1
#define STDCPU_STDM_HEADER_SIZE 64
#define STDCPU_STDM_ALIGN 64

typedef struct stdcpu_stdm_tensor {
    const char *name;
    stdcpu_dtype dtype; /* F32, F16, BF16, I8 (with scales), U8, I32, I64 */
    int ndim;
    int64_t shape[STDCPU_MAX_DIMS];
    int64_t numel;
    const void *data;     /* 64-byte aligned, inside the mapping */
    size_t nbytes;
    const float *scales;  /* I8 only: [shape[0]] per-output-channel scales */
    uint64_t offset;      /* file offset of data */
    uint64_t scales_offset;
    uint32_t crc32;       /* of data then scales */
} stdcpu_stdm_tensor;

typedef struct stdcpu_stdm_blob {
    const char *name;
    const void *data;
    size_t size;
    uint64_t offset;
    uint32_t crc32;
} stdcpu_stdm_blob;

typedef struct stdcpu_stdm stdcpu_stdm;

stdcpu_status stdcpu_stdm_open(stdcpu_stdm **out, const char *path, stdcpu_error *err);
/* data must outlive the handle and be 64-byte aligned for aligned tensors. */
stdcpu_status stdcpu_stdm_open_memory(stdcpu_stdm **out, const void *data, size_t len, stdcpu_error *err);
void stdcpu_stdm_close(stdcpu_stdm *m);
/* Reads every entry and checks its CRC-32 (the header and index were checked at open). */
stdcpu_status stdcpu_stdm_verify(const stdcpu_stdm *m, stdcpu_error *err);

/* Components: the distinct prefixes of tensor and blob names, sorted. */
size_t stdcpu_stdm_component_count(const stdcpu_stdm *m);
const char *stdcpu_stdm_component(const stdcpu_stdm *m, size_t i);
int stdcpu_stdm_has_component(const stdcpu_stdm *m, const char *name);
/* The parsed "<component>/config.json" (or scheduler_config.json), NULL if none. */
const stdcpu_json *stdcpu_stdm_config(const stdcpu_stdm *m, const char *component);
/* The whole index (format, writer, "quant" policy, "components" summary, ...). */
const stdcpu_json *stdcpu_stdm_index(const stdcpu_stdm *m);

size_t stdcpu_stdm_tensor_count(const stdcpu_stdm *m);
const stdcpu_stdm_tensor *stdcpu_stdm_tensor_at(const stdcpu_stdm *m, size_t i); /* sorted by name */
const stdcpu_stdm_tensor *stdcpu_stdm_find(const stdcpu_stdm *m, const char *name);
/* A non-owning stdcpu_tensor view (data and scales point into the mapping). */
stdcpu_status stdcpu_stdm_get(const stdcpu_stdm *m, const char *name, stdcpu_tensor *view, stdcpu_error *err);

size_t stdcpu_stdm_blob_count(const stdcpu_stdm *m);
const stdcpu_stdm_blob *stdcpu_stdm_blob_at(const stdcpu_stdm *m, size_t i);
const stdcpu_stdm_blob *stdcpu_stdm_find_blob(const stdcpu_stdm *m, const char *name);

/* ---- writing (streamed: one tensor in memory at a time) ----------------- */

typedef struct stdcpu_stdm_writer stdcpu_stdm_writer;

/* Creates a temporary file next to path; nothing appears at path until
 * stdcpu_stdm_writer_finish renames it into place. */
stdcpu_status stdcpu_stdm_writer_open(stdcpu_stdm_writer **out, const char *path, stdcpu_error *err);
stdcpu_status stdcpu_stdm_write_blob(stdcpu_stdm_writer *w, const char *name, const void *data, size_t len,
                                     stdcpu_error *err);
/* data in the stored dtype (numel * size bytes); scales [shape[0]] for I8. */
stdcpu_status stdcpu_stdm_write_tensor(stdcpu_stdm_writer *w, const char *name, stdcpu_dtype dtype, int ndim,
                                       const int64_t *shape, const void *data, const float *scales,
                                       stdcpu_error *err);
/* Adds a top-level index member: key and its value as JSON text (e.g. the
 * quantisation policy). The text is inserted verbatim, so it must be valid. */
stdcpu_status stdcpu_stdm_writer_set(stdcpu_stdm_writer *w, const char *key, const char *json_value,
                                     stdcpu_error *err);
/* Writes the index and header, flushes, syncs and renames into place. Frees w. */
stdcpu_status stdcpu_stdm_writer_finish(stdcpu_stdm_writer *w, stdcpu_error *err);
/* Removes the temporary file and frees w (safe on NULL). */
void stdcpu_stdm_writer_abort(stdcpu_stdm_writer *w);

/* Appends s as a JSON string literal (quoted, escaped) to buf; helper shared
 * with the tools. Returns 0 or -1 on allocation failure. */
typedef struct stdcpu_strbuf {
    char *p;
    size_t len, cap;
} stdcpu_strbuf;
int stdcpu_strbuf_printf(stdcpu_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int stdcpu_strbuf_json_string(stdcpu_strbuf *b, const char *s);
void stdcpu_strbuf_free(stdcpu_strbuf *b);

#endif
