/* A small, bounds-checked JSON reader producing a read-only DOM.
 *
 * Used for safetensors headers, diffusers config.json files, tokenizer
 * vocabularies and the golden case files. The parser is iterative (an
 * explicit stack), so hostile nesting cannot exhaust the C stack; depth and
 * input size are limited. Strings are decoded to NUL-terminated UTF-8
 * (\uXXXX escapes including surrogate pairs; a lone surrogate is an error).
 * Numbers are kept as double and, when integral and exactly representable,
 * also as int64. As an extension, NaN / Infinity / -Infinity (which Python's
 * json.dumps writes) are accepted. Duplicate object keys are kept; lookup
 * returns the first.
 *
 * Every node lives in one allocation owned by the stdcpu_json_doc; pointers
 * stay valid until stdcpu_json_free. */
#ifndef STDCPU_CORE_JSON_H
#define STDCPU_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "stdcpu.h"

#define STDCPU_JSON_MAX_DEPTH 512
#define STDCPU_JSON_MAX_BYTES ((size_t)1 << 30)

typedef enum stdcpu_json_type {
    STDCPU_JSON_NULL = 0,
    STDCPU_JSON_BOOL,
    STDCPU_JSON_NUMBER,
    STDCPU_JSON_STRING,
    STDCPU_JSON_ARRAY,
    STDCPU_JSON_OBJECT
} stdcpu_json_type;

typedef struct stdcpu_json stdcpu_json;
struct stdcpu_json {
    stdcpu_json_type type;
    int boolean;       /* BOOL */
    int is_int;        /* NUMBER: integral and exactly representable as int64 */
    int64_t integer;   /* NUMBER with is_int */
    double number;     /* NUMBER */
    const char *str;   /* STRING: NUL-terminated UTF-8 (may contain \0 escapes; use len) */
    size_t len;        /* STRING: bytes; ARRAY/OBJECT: number of elements */
    const char *key;   /* member of an OBJECT: its key (NUL-terminated), else NULL */
    size_t key_len;
    stdcpu_json **items; /* ARRAY/OBJECT: len children in document order */
};

typedef struct stdcpu_json_doc stdcpu_json_doc;

/* Parses text[0..len) (need not be NUL-terminated). Leading/trailing white
 * space is allowed; anything else after the value is an error. */
stdcpu_status stdcpu_json_parse(stdcpu_json_doc **out, const char *text, size_t len, stdcpu_error *err);
/* Reads and parses a whole file. */
stdcpu_status stdcpu_json_parse_file(stdcpu_json_doc **out, const char *path, stdcpu_error *err);
void stdcpu_json_free(stdcpu_json_doc *doc);
const stdcpu_json *stdcpu_json_root(const stdcpu_json_doc *doc);

/* Object member by key (first match) or NULL when absent / not an object. */
const stdcpu_json *stdcpu_json_get(const stdcpu_json *obj, const char *key);
/* Element count of an array/object, 0 otherwise. */
size_t stdcpu_json_count(const stdcpu_json *v);
/* i-th element of an array (or member of an object) or NULL. */
const stdcpu_json *stdcpu_json_at(const stdcpu_json *v, size_t i);

/* Typed accessors: return 1 and store the value when v (may be NULL) has the
 * type, else 0. stdcpu_json_int accepts only integral numbers. */
int stdcpu_json_int(const stdcpu_json *v, int64_t *out);
int stdcpu_json_double(const stdcpu_json *v, double *out);
int stdcpu_json_bool(const stdcpu_json *v, int *out);
/* The string or NULL. */
const char *stdcpu_json_str(const stdcpu_json *v);

/* Convenience lookups with a default. */
int64_t stdcpu_json_get_int(const stdcpu_json *obj, const char *key, int64_t dflt);
double stdcpu_json_get_double(const stdcpu_json *obj, const char *key, double dflt);
const char *stdcpu_json_get_str(const stdcpu_json *obj, const char *key, const char *dflt);

#endif
