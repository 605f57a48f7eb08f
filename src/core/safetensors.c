/* safetensors reader: validation first, then zero-copy access. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include "core/safetensors.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "simd/eltwise.h"

struct stdcpu_safetensors {
    const unsigned char *base; /* whole file */
    size_t len;
    void *map; /* non-NULL when we own an mmap of len bytes */
    stdcpu_json_doc *header;
    const stdcpu_json *metadata;
    stdcpu_st_tensor *tensors; /* [count] sorted by name */
    size_t count;
};

static const char *const st_names[STDCPU_ST_DTYPE_COUNT] = {"F32", "F16", "BF16", "F64", "I64",
                                                             "I32", "I16", "I8",   "U8",  "BOOL"};
static const size_t st_sizes[STDCPU_ST_DTYPE_COUNT] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};

const char *stdcpu_st_dtype_name(stdcpu_st_dtype dt)
{
    return (unsigned)dt < STDCPU_ST_DTYPE_COUNT ? st_names[dt] : "?";
}
size_t stdcpu_st_dtype_size(stdcpu_st_dtype dt) { return (unsigned)dt < STDCPU_ST_DTYPE_COUNT ? st_sizes[dt] : 0; }
int stdcpu_st_dtype_is_float(stdcpu_st_dtype dt)
{
    return dt == STDCPU_ST_F32 || dt == STDCPU_ST_F16 || dt == STDCPU_ST_BF16 || dt == STDCPU_ST_F64;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const stdcpu_st_tensor *)a)->name, ((const stdcpu_st_tensor *)b)->name);
}

static int cmp_offset(const void *a, const void *b)
{
    const stdcpu_st_tensor *x = *(const stdcpu_st_tensor *const *)a, *y = *(const stdcpu_st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Parses one header entry into t; data_len is the size of the data area. */
static stdcpu_status parse_entry(const stdcpu_json *e, const unsigned char *data, uint64_t data_len,
                                 stdcpu_st_tensor *t, stdcpu_error *err)
{
    const char *name = e->key;
    if (e->type != STDCPU_JSON_OBJECT)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: tensor '%s': entry is not an object", name);
    memset(t, 0, sizeof *t);
    t->name = name;
    const char *dt = stdcpu_json_get_str(e, "dtype", NULL);
    if (!dt)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: tensor '%s': missing dtype", name);
    int found = 0;
    for (int i = 0; i < STDCPU_ST_DTYPE_COUNT; i++)
        if (!strcmp(dt, st_names[i])) {
            t->dtype = (stdcpu_st_dtype)i;
            found = 1;
        }
    if (!found)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "safetensors: tensor '%s': unsupported dtype '%.16s'", name,
                           dt);
    const stdcpu_json *shape = stdcpu_json_get(e, "shape");
    if (!shape || shape->type != STDCPU_JSON_ARRAY)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: tensor '%s': missing shape", name);
    if (shape->len > STDCPU_ST_MAX_DIMS)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "safetensors: tensor '%s': rank %zu > %d", name, shape->len,
                           STDCPU_ST_MAX_DIMS);
    t->ndim = (int)shape->len;
    size_t bytes = st_sizes[t->dtype];
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        int64_t d;
        if (!stdcpu_json_int(shape->items[i], &d) || d < 0)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: tensor '%s': bad dimension %d", name, i);
        if (stdcpu_mul_size(bytes, (size_t)d, &bytes) || stdcpu_mul_size(numel, (size_t)d, &numel) ||
            numel > (size_t)INT64_MAX)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: tensor '%s': shape overflows", name);
        t->shape[i] = d;
    }
    t->numel = (int64_t)numel;
    const stdcpu_json *off = stdcpu_json_get(e, "data_offsets");
    int64_t begin, end;
    if (!off || off->type != STDCPU_JSON_ARRAY || off->len != 2 || !stdcpu_json_int(off->items[0], &begin) ||
        !stdcpu_json_int(off->items[1], &end))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: tensor '%s': bad data_offsets", name);
    if (begin < 0 || end < begin || (uint64_t)end > data_len)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT,
                           "safetensors: tensor '%s': data_offsets [%lld, %lld] outside the %llu-byte data area",
                           name, (long long)begin, (long long)end, (unsigned long long)data_len);
    if ((uint64_t)(end - begin) != (uint64_t)bytes)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT,
                           "safetensors: tensor '%s': %lld bytes stored but shape and dtype need %zu", name,
                           (long long)(end - begin), bytes);
    t->offset = (uint64_t)begin;
    t->nbytes = bytes;
    t->data = data + begin;
    return STDCPU_OK;
}

static stdcpu_status validate(stdcpu_safetensors *st, stdcpu_error *err)
{
    if (st->len < 8)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: file of %zu bytes is too short", st->len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | st->base[i];
    if (hlen > STDCPU_ST_MAX_HEADER)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "safetensors: header length %llu exceeds the limit",
                           (unsigned long long)hlen);
    if (hlen > st->len - 8)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: header length %llu runs past the end of the file",
                           (unsigned long long)hlen);
    if (hlen < 2 || st->base[8] != '{')
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: header is not a JSON object");
    STDCPU_TRY(stdcpu_json_parse(&st->header, (const char *)st->base + 8, (size_t)hlen, err));
    const stdcpu_json *root = stdcpu_json_root(st->header);
    if (root->type != STDCPU_JSON_OBJECT)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: header is not a JSON object");
    const unsigned char *data = st->base + 8 + hlen;
    uint64_t data_len = st->len - 8 - hlen;
    st->tensors = calloc(root->len ? root->len : 1, sizeof *st->tensors);
    if (!st->tensors)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "safetensors: out of memory");
    for (size_t i = 0; i < root->len; i++) {
        const stdcpu_json *e = root->items[i];
        if (!strcmp(e->key, "__metadata__")) {
            if (st->metadata)
                return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: duplicate __metadata__");
            if (e->type != STDCPU_JSON_OBJECT)
                return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: __metadata__ is not an object");
            st->metadata = e;
            continue;
        }
        if (strlen(e->key) != e->key_len)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: tensor name contains a NUL byte");
        STDCPU_TRY(parse_entry(e, data, data_len, &st->tensors[st->count], err));
        st->count++;
    }
    qsort(st->tensors, st->count, sizeof *st->tensors, cmp_name);
    for (size_t i = 1; i < st->count; i++)
        if (!strcmp(st->tensors[i - 1].name, st->tensors[i].name))
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: duplicate tensor '%s'", st->tensors[i].name);
    /* overlap check on the byte ranges, in offset order (empty tensors occupy nothing) */
    const stdcpu_st_tensor **by_off = malloc((st->count ? st->count : 1) * sizeof *by_off);
    if (!by_off)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "safetensors: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < st->count; i++)
        if (st->tensors[i].nbytes)
            by_off[n++] = &st->tensors[i];
    qsort(by_off, n, sizeof *by_off, cmp_offset);
    stdcpu_status status = STDCPU_OK;
    for (size_t i = 1; i < n; i++)
        if (by_off[i]->offset < by_off[i - 1]->offset + by_off[i - 1]->nbytes) {
            status = stdcpu_fail(err, STDCPU_ERR_FORMAT, "safetensors: tensors '%s' and '%s' overlap",
                                 by_off[i - 1]->name, by_off[i]->name);
            break;
        }
    free(by_off);
    return status;
}

stdcpu_status stdcpu_st_open_memory(stdcpu_safetensors **out, const void *data, size_t len, stdcpu_error *err)
{
    *out = NULL;
    stdcpu_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "safetensors: out of memory");
    st->base = data;
    st->len = len;
    stdcpu_status s = validate(st, err);
    if (s != STDCPU_OK) {
        stdcpu_st_close(st);
        return s;
    }
    *out = st;
    return STDCPU_OK;
}

stdcpu_status stdcpu_st_open(stdcpu_safetensors **out, const char *path, stdcpu_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot open", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX || sb.st_size < 8) {
        close(fd);
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: safetensors: file of %lld bytes is too short", path,
                           (long long)sb.st_size);
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: mmap failed", path);
    stdcpu_safetensors *st;
    stdcpu_status s = stdcpu_st_open_memory(&st, map, len, err);
    if (s != STDCPU_OK) {
        munmap(map, len);
        return stdcpu_fail_prefix(err, "%s: ", path);
    }
    st->map = map;
    *out = st;
    return STDCPU_OK;
}

void stdcpu_st_close(stdcpu_safetensors *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, st->len);
    stdcpu_json_free(st->header);
    free(st->tensors);
    free(st);
}

size_t stdcpu_st_count(const stdcpu_safetensors *st) { return st ? st->count : 0; }

const stdcpu_st_tensor *stdcpu_st_at(const stdcpu_safetensors *st, size_t i)
{
    return st && i < st->count ? &st->tensors[i] : NULL;
}

const stdcpu_st_tensor *stdcpu_st_find(const stdcpu_safetensors *st, const char *name)
{
    if (!st || !name)
        return NULL;
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (!c)
            return &st->tensors[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const stdcpu_json *stdcpu_st_metadata(const stdcpu_safetensors *st) { return st ? st->metadata : NULL; }

const char *stdcpu_st_metadata_get(const stdcpu_safetensors *st, const char *key)
{
    return stdcpu_json_str(stdcpu_json_get(stdcpu_st_metadata(st), key));
}

float stdcpu_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t stdcpu_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7FFF + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

stdcpu_status stdcpu_st_read_f32(const stdcpu_st_tensor *t, float *dst, stdcpu_error *err)
{
    const unsigned char *s = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case STDCPU_ST_F32:
        memcpy(dst, s, n * 4);
        return STDCPU_OK;
    case STDCPU_ST_F16:
    case STDCPU_ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(s[2 * i] | s[2 * i + 1] << 8);
            dst[i] = t->dtype == STDCPU_ST_F16 ? stdcpu_f16_to_f32(h) : stdcpu_bf16_to_f32(h);
        }
        return STDCPU_OK;
    case STDCPU_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        return STDCPU_OK;
    default:
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "safetensors: tensor '%s' is %s, not a float type", t->name,
                           stdcpu_st_dtype_name(t->dtype));
    }
}

stdcpu_status stdcpu_st_to_f32(const stdcpu_st_tensor *t, float **out, stdcpu_error *err)
{
    *out = NULL;
    if (!stdcpu_st_dtype_is_float(t->dtype))
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "safetensors: tensor '%s' is %s, not a float type", t->name,
                           stdcpu_st_dtype_name(t->dtype));
    size_t bytes;
    if (stdcpu_mul_size((size_t)t->numel, sizeof(float), &bytes))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "safetensors: tensor '%s' too large", t->name);
    float *buf = stdcpu_aligned_alloc(bytes);
    if (!buf)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "safetensors: out of memory for '%s' (%zu bytes)", t->name, bytes);
    stdcpu_status s = stdcpu_st_read_f32(t, buf, err);
    if (s != STDCPU_OK) {
        stdcpu_aligned_free(buf);
        return s;
    }
    *out = buf;
    return STDCPU_OK;
}
