/* .stdm reader and streaming writer; layout in docs/stdm.md. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include "core/stdm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/error.h"
#include "base/mem.h"

/* Header fields (little-endian), see docs/stdm.md. */
enum {
    H_MAGIC = 0,
    H_VERSION = 8,
    H_HEADER_SIZE = 12,
    H_FILE_SIZE = 16,
    H_INDEX_OFFSET = 24,
    H_INDEX_SIZE = 32,
    H_INDEX_CRC = 40,
    H_DATA_OFFSET = 48,
    H_HEADER_CRC = 60
};

#define STDM_MAX_INDEX ((uint64_t)256 << 20)

static uint32_t crc32_bytes(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    uLong c = crc;
    while (n) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint32_t get_u32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* dtype names in the index ("f32", ...) are those of stdcpu_dtype_name. */
static int parse_dtype(const char *s, stdcpu_dtype *out)
{
    for (int d = 0; d < STDCPU_DT_COUNT; d++)
        if (s && !strcmp(s, stdcpu_dtype_name((stdcpu_dtype)d))) {
            *out = (stdcpu_dtype)d;
            return 1;
        }
    return 0;
}

/* ---------------------------------------------------------------- reader */

typedef struct {
    char *name;
    stdcpu_json_doc *doc; /* parsed config */
} stdm_component;

struct stdcpu_stdm {
    const unsigned char *base;
    size_t len;
    void *map;
    stdcpu_json_doc *index;
    stdcpu_stdm_tensor *tensors;
    size_t n_tensors;
    stdcpu_stdm_blob *blobs;
    size_t n_blobs;
    stdm_component *components;
    size_t n_components;
};

typedef struct {
    uint64_t begin, end;
    const char *name;
} stdm_range;

static int cmp_range(const void *a, const void *b)
{
    const stdm_range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}
static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const stdcpu_stdm_tensor *)a)->name, ((const stdcpu_stdm_tensor *)b)->name);
}
static int cmp_blob(const void *a, const void *b)
{
    return strcmp(((const stdcpu_stdm_blob *)a)->name, ((const stdcpu_stdm_blob *)b)->name);
}

static int get_u64_member(const stdcpu_json *o, const char *key, uint64_t *out)
{
    int64_t v;
    if (!stdcpu_json_int(stdcpu_json_get(o, key), &v) || v < 0)
        return 0;
    *out = (uint64_t)v;
    return 1;
}

/* Region [off, off+size) must lie in the data area and be aligned. */
static stdcpu_status check_region(const char *name, const char *what, uint64_t off, uint64_t size, uint64_t align,
                                  uint64_t data_begin, uint64_t data_end, stdcpu_error *err)
{
    if (off < data_begin || off > data_end || size > data_end - off)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': %s [%llu, +%llu) outside the data area", name, what,
                           (unsigned long long)off, (unsigned long long)size);
    if (off % align)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': %s offset %llu is not %llu-byte aligned", name,
                           what, (unsigned long long)off, (unsigned long long)align);
    return STDCPU_OK;
}

static stdcpu_status parse_tensor(const stdcpu_stdm *m, const stdcpu_json *e, uint64_t d0, uint64_t d1,
                                  stdcpu_stdm_tensor *t, stdcpu_error *err)
{
    memset(t, 0, sizeof *t);
    t->name = stdcpu_json_get_str(e, "name", NULL);
    if (!t->name || !*t->name)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: tensor entry without a name");
    if (!parse_dtype(stdcpu_json_get_str(e, "dtype", NULL), &t->dtype))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': bad dtype", t->name);
    const stdcpu_json *shape = stdcpu_json_get(e, "shape");
    if (!shape || shape->type != STDCPU_JSON_ARRAY || shape->len > STDCPU_MAX_DIMS)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': bad shape", t->name);
    t->ndim = (int)shape->len;
    size_t numel = 1, bytes;
    for (int i = 0; i < t->ndim; i++) {
        int64_t d;
        if (!stdcpu_json_int(shape->items[i], &d) || d < 0 || stdcpu_mul_size(numel, (size_t)d, &numel) ||
            numel > (size_t)INT64_MAX)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': bad dimension %d", t->name, i);
        t->shape[i] = d;
    }
    if (stdcpu_mul_size(numel, stdcpu_dtype_size(t->dtype), &bytes))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': size overflows", t->name);
    t->numel = (int64_t)numel;
    uint64_t size, crc;
    if (!get_u64_member(e, "offset", &t->offset) || !get_u64_member(e, "size", &size) ||
        !get_u64_member(e, "crc32", &crc) || crc > UINT32_MAX)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': missing offset/size/crc32", t->name);
    if (size != bytes)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': %llu bytes stored but shape and dtype need %zu",
                           t->name, (unsigned long long)size, bytes);
    STDCPU_TRY(check_region(t->name, "data", t->offset, size, STDCPU_STDM_ALIGN, d0, d1, err));
    t->crc32 = (uint32_t)crc;
    t->nbytes = bytes;
    t->data = m->base + t->offset;
    if (t->dtype == STDCPU_DT_I8) {
        if (t->ndim < 1)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': int8 tensor needs a channel dimension", t->name);
        if (!get_u64_member(e, "scales", &t->scales_offset))
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': int8 tensor without scales", t->name);
        STDCPU_TRY(check_region(t->name, "scales", t->scales_offset, (uint64_t)t->shape[0] * 4, STDCPU_STDM_ALIGN,
                                d0, d1, err));
        t->scales = (const float *)(const void *)(m->base + t->scales_offset);
    } else if (stdcpu_json_get(e, "scales")) {
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: '%s': scales on a %s tensor", t->name,
                           stdcpu_dtype_name(t->dtype));
    }
    return STDCPU_OK;
}

static stdcpu_status add_component(stdcpu_stdm *m, const char *name, size_t len, stdcpu_error *err)
{
    for (size_t i = 0; i < m->n_components; i++)
        if (strlen(m->components[i].name) == len && !memcmp(m->components[i].name, name, len))
            return STDCPU_OK;
    stdm_component *c = realloc(m->components, (m->n_components + 1) * sizeof *c);
    if (!c)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "stdm: out of memory");
    m->components = c;
    char *s = malloc(len + 1);
    if (!s)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "stdm: out of memory");
    memcpy(s, name, len);
    s[len] = '\0';
    m->components[m->n_components].name = s;
    m->components[m->n_components].doc = NULL;
    m->n_components++;
    return STDCPU_OK;
}

static int cmp_component(const void *a, const void *b)
{
    return strcmp(((const stdm_component *)a)->name, ((const stdm_component *)b)->name);
}

static stdcpu_status validate(stdcpu_stdm *m, stdcpu_error *err)
{
    const unsigned char *h = m->base;
    if (m->len < STDCPU_STDM_HEADER_SIZE)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: file of %zu bytes is too short", m->len);
    if (memcmp(h + H_MAGIC, STDCPU_STDM_MAGIC, 8))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: bad magic (not a .stdm file)");
    if (get_u32(h + H_HEADER_CRC) != crc32_bytes(0, h, H_HEADER_CRC))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: header checksum mismatch (corrupt file)");
    uint32_t version = get_u32(h + H_VERSION);
    if (version != STDCPU_STDM_VERSION)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "stdm: format version %u, this build reads version %d",
                           version, STDCPU_STDM_VERSION);
    if (get_u32(h + H_HEADER_SIZE) != STDCPU_STDM_HEADER_SIZE)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: bad header size");
    uint64_t file_size = get_u64(h + H_FILE_SIZE);
    if (file_size != m->len)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: file is %zu bytes but the header says %llu (truncated?)",
                           m->len, (unsigned long long)file_size);
    uint64_t ioff = get_u64(h + H_INDEX_OFFSET), isize = get_u64(h + H_INDEX_SIZE);
    uint64_t d0 = get_u64(h + H_DATA_OFFSET);
    if (isize > STDM_MAX_INDEX)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "stdm: index of %llu bytes exceeds the limit",
                           (unsigned long long)isize);
    if (d0 < STDCPU_STDM_HEADER_SIZE || ioff < d0 || ioff > m->len || isize > m->len - ioff)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: index or data area out of range");
    if (get_u32(h + H_INDEX_CRC) != crc32_bytes(0, h + ioff, (size_t)isize))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: index checksum mismatch (corrupt file)");
    STDCPU_TRY(stdcpu_json_parse(&m->index, (const char *)h + ioff, (size_t)isize, err));
    const stdcpu_json *root = stdcpu_json_root(m->index);
    const stdcpu_json *tensors = stdcpu_json_get(root, "tensors"), *blobs = stdcpu_json_get(root, "blobs");
    if (root->type != STDCPU_JSON_OBJECT || !tensors || tensors->type != STDCPU_JSON_ARRAY || !blobs ||
        blobs->type != STDCPU_JSON_ARRAY)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: index lacks the tensors/blobs arrays");
    m->tensors = calloc(tensors->len + 1, sizeof *m->tensors);
    m->blobs = calloc(blobs->len + 1, sizeof *m->blobs);
    stdm_range *ranges = calloc(2 * tensors->len + blobs->len + 1, sizeof *ranges);
    if (!m->tensors || !m->blobs || !ranges) {
        free(ranges);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "stdm: out of memory");
    }
    size_t nr = 0;
    stdcpu_status st = STDCPU_OK;
    for (size_t i = 0; i < tensors->len && st == STDCPU_OK; i++) {
        stdcpu_stdm_tensor *t = &m->tensors[i];
        st = parse_tensor(m, tensors->items[i], d0, ioff, t, err);
        if (st != STDCPU_OK)
            break;
        m->n_tensors++;
        ranges[nr++] = (stdm_range){t->offset, t->offset + t->nbytes, t->name};
        if (t->scales)
            ranges[nr++] = (stdm_range){t->scales_offset, t->scales_offset + (uint64_t)t->shape[0] * 4, t->name};
    }
    for (size_t i = 0; i < blobs->len && st == STDCPU_OK; i++) {
        stdcpu_stdm_blob *b = &m->blobs[i];
        const stdcpu_json *e = blobs->items[i];
        uint64_t size, crc;
        b->name = stdcpu_json_get_str(e, "name", NULL);
        if (!b->name || !strchr(b->name, '/') || !get_u64_member(e, "offset", &b->offset) ||
            !get_u64_member(e, "size", &size) || !get_u64_member(e, "crc32", &crc) || crc > UINT32_MAX) {
            st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: bad blob entry %zu", i);
            break;
        }
        st = check_region(b->name, "blob", b->offset, size, STDCPU_STDM_ALIGN, d0, ioff, err);
        b->size = (size_t)size;
        b->crc32 = (uint32_t)crc;
        b->data = m->base + b->offset;
        m->n_blobs++;
        ranges[nr++] = (stdm_range){b->offset, b->offset + size, b->name};
    }
    if (st == STDCPU_OK) {
        qsort(ranges, nr, sizeof *ranges, cmp_range);
        uint64_t end = 0;
        const char *prev = NULL;
        for (size_t i = 0; i < nr; i++) {
            if (ranges[i].begin == ranges[i].end)
                continue;
            if (prev && ranges[i].begin < end) {
                st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: entries '%s' and '%s' overlap", prev,
                                 ranges[i].name);
                break;
            }
            end = ranges[i].end;
            prev = ranges[i].name;
        }
    }
    free(ranges);
    if (st != STDCPU_OK)
        return st;
    qsort(m->tensors, m->n_tensors, sizeof *m->tensors, cmp_tensor);
    qsort(m->blobs, m->n_blobs, sizeof *m->blobs, cmp_blob);
    for (size_t i = 1; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, m->tensors[i - 1].name))
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: duplicate tensor '%s'", m->tensors[i].name);
    for (size_t i = 1; i < m->n_blobs; i++)
        if (!strcmp(m->blobs[i].name, m->blobs[i - 1].name))
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: duplicate blob '%s'", m->blobs[i].name);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const char *dot = strchr(m->tensors[i].name, '.');
        if (!dot || dot == m->tensors[i].name)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: tensor '%s' has no component prefix",
                               m->tensors[i].name);
        STDCPU_TRY(add_component(m, m->tensors[i].name, (size_t)(dot - m->tensors[i].name), err));
    }
    for (size_t i = 0; i < m->n_blobs; i++) {
        const char *b = m->blobs[i].name, *slash = strchr(b, '/');
        if (slash == b)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: blob '%s' has no component prefix", b);
        STDCPU_TRY(add_component(m, b, (size_t)(slash - b), err));
    }
    if (m->n_components)
        qsort(m->components, m->n_components, sizeof *m->components, cmp_component);
    /* configs are small: parse them now so that lookups are const and cheap */
    for (size_t i = 0; i < m->n_components; i++) {
        char name[256];
        const stdcpu_stdm_blob *b = NULL;
        snprintf(name, sizeof name, "%s/config.json", m->components[i].name);
        b = stdcpu_stdm_find_blob(m, name);
        if (!b) {
            snprintf(name, sizeof name, "%s/scheduler_config.json", m->components[i].name);
            b = stdcpu_stdm_find_blob(m, name);
        }
        if (b && stdcpu_json_parse(&m->components[i].doc, b->data, b->size, err) != STDCPU_OK)
            return stdcpu_fail_prefix(err, "stdm: %s: ", name);
    }
    return STDCPU_OK;
}

stdcpu_status stdcpu_stdm_open_memory(stdcpu_stdm **out, const void *data, size_t len, stdcpu_error *err)
{
    *out = NULL;
    stdcpu_stdm *m = calloc(1, sizeof *m);
    if (!m)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "stdm: out of memory");
    m->base = data;
    m->len = len;
    stdcpu_status st = validate(m, err);
    if (st != STDCPU_OK) {
        stdcpu_stdm_close(m);
        return st;
    }
    *out = m;
    return STDCPU_OK;
}

stdcpu_status stdcpu_stdm_open(stdcpu_stdm **out, const char *path, stdcpu_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < STDCPU_STDM_HEADER_SIZE) {
        close(fd);
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: stdm: file of %lld bytes is too short", path,
                           (long long)sb.st_size);
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: mmap failed (%s)", path, strerror(errno));
    stdcpu_stdm *m;
    stdcpu_status st = stdcpu_stdm_open_memory(&m, map, len, err);
    if (st != STDCPU_OK) {
        munmap(map, len);
        return stdcpu_fail_prefix(err, "%s: ", path);
    }
    m->map = map;
    *out = m;
    return STDCPU_OK;
}

void stdcpu_stdm_close(stdcpu_stdm *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_components; i++) {
        free(m->components[i].name);
        stdcpu_json_free(m->components[i].doc);
    }
    free(m->components);
    free(m->tensors);
    free(m->blobs);
    stdcpu_json_free(m->index);
    if (m->map)
        munmap(m->map, m->len);
    free(m);
}

stdcpu_status stdcpu_stdm_verify(const stdcpu_stdm *m, stdcpu_error *err)
{
    for (size_t i = 0; i < m->n_tensors; i++) {
        const stdcpu_stdm_tensor *t = &m->tensors[i];
        uint32_t c = crc32_bytes(0, t->data, t->nbytes);
        if (t->scales)
            c = crc32_bytes(c, t->scales, (size_t)t->shape[0] * 4);
        if (c != t->crc32)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: tensor '%s': checksum mismatch (corrupt data)",
                               t->name);
    }
    for (size_t i = 0; i < m->n_blobs; i++)
        if (crc32_bytes(0, m->blobs[i].data, m->blobs[i].size) != m->blobs[i].crc32)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "stdm: blob '%s': checksum mismatch (corrupt data)",
                               m->blobs[i].name);
    return STDCPU_OK;
}

size_t stdcpu_stdm_component_count(const stdcpu_stdm *m) { return m->n_components; }
const char *stdcpu_stdm_component(const stdcpu_stdm *m, size_t i)
{
    return i < m->n_components ? m->components[i].name : NULL;
}
static const stdm_component *find_component(const stdcpu_stdm *m, const char *name)
{
    for (size_t i = 0; i < m->n_components; i++)
        if (!strcmp(m->components[i].name, name))
            return &m->components[i];
    return NULL;
}
int stdcpu_stdm_has_component(const stdcpu_stdm *m, const char *name) { return find_component(m, name) != NULL; }
const stdcpu_json *stdcpu_stdm_config(const stdcpu_stdm *m, const char *component)
{
    const stdm_component *c = find_component(m, component);
    return c ? stdcpu_json_root(c->doc) : NULL;
}
const stdcpu_json *stdcpu_stdm_index(const stdcpu_stdm *m) { return stdcpu_json_root(m->index); }

size_t stdcpu_stdm_tensor_count(const stdcpu_stdm *m) { return m->n_tensors; }
const stdcpu_stdm_tensor *stdcpu_stdm_tensor_at(const stdcpu_stdm *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}
const stdcpu_stdm_tensor *stdcpu_stdm_find(const stdcpu_stdm *m, const char *name)
{
    stdcpu_stdm_tensor key = {.name = name};
    return name ? bsearch(&key, m->tensors, m->n_tensors, sizeof key, cmp_tensor) : NULL;
}
size_t stdcpu_stdm_blob_count(const stdcpu_stdm *m) { return m->n_blobs; }
const stdcpu_stdm_blob *stdcpu_stdm_blob_at(const stdcpu_stdm *m, size_t i)
{
    return i < m->n_blobs ? &m->blobs[i] : NULL;
}
const stdcpu_stdm_blob *stdcpu_stdm_find_blob(const stdcpu_stdm *m, const char *name)
{
    stdcpu_stdm_blob key = {.name = name};
    return name ? bsearch(&key, m->blobs, m->n_blobs, sizeof key, cmp_blob) : NULL;
}

stdcpu_status stdcpu_stdm_get(const stdcpu_stdm *m, const char *name, stdcpu_tensor *view, stdcpu_error *err)
{
    const stdcpu_stdm_tensor *t = stdcpu_stdm_find(m, name);
    if (!t)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "stdm: no tensor '%s'", name ? name : "(null)");
    stdcpu_tensor_view(view, t->dtype, t->ndim, t->shape, (void *)(uintptr_t)t->data);
    view->scales = (float *)(uintptr_t)t->scales;
    return STDCPU_OK;
}

/* ---------------------------------------------------------------- strbuf */

int stdcpu_strbuf_printf(stdcpu_strbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return 0;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
}

int stdcpu_strbuf_json_string(stdcpu_strbuf *b, const char *s)
{
    if (stdcpu_strbuf_printf(b, "\""))
        return -1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int r;
        if (*p == '"' || *p == '\\')
            r = stdcpu_strbuf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            r = stdcpu_strbuf_printf(b, "\\u%04x", *p);
        else
            r = stdcpu_strbuf_printf(b, "%c", *p);
        if (r)
            return -1;
    }
    return stdcpu_strbuf_printf(b, "\"");
}

void stdcpu_strbuf_free(stdcpu_strbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- writer */

struct stdcpu_stdm_writer {
    FILE *f;
    char *path, *tmp;
    uint64_t pos;
    stdcpu_strbuf tensors, blobs, extra;
    int failed;
};

static stdcpu_status w_io(stdcpu_stdm_writer *w, stdcpu_error *err)
{
    w->failed = 1;
    return stdcpu_fail(err, STDCPU_ERR_IO, "%s: write failed (%s)", w->tmp, strerror(errno));
}

static stdcpu_status w_write(stdcpu_stdm_writer *w, const void *p, size_t n, stdcpu_error *err)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        return w_io(w, err);
    w->pos += n;
    return STDCPU_OK;
}

static stdcpu_status w_align(stdcpu_stdm_writer *w, stdcpu_error *err)
{
    static const unsigned char zeros[STDCPU_STDM_ALIGN];
    size_t pad = (size_t)(stdcpu_round_up(w->pos, STDCPU_STDM_ALIGN) - w->pos);
    return w_write(w, zeros, pad, err);
}

stdcpu_status stdcpu_stdm_writer_open(stdcpu_stdm_writer **out, const char *path, stdcpu_error *err)
{
    *out = NULL;
    stdcpu_stdm_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n + 16))) {
        if (w)
            free(w->path);
        free(w);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "stdm: out of memory");
    }
    /* same folder as the target so that rename() is atomic */
    snprintf(w->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(w->tmp);
    if (fd < 0 || !(w->f = fdopen(fd, "wb"))) {
        stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot create (%s)", w->tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(w->tmp);
        }
        free(w->path);
        free(w->tmp);
        free(w);
        return err ? err->status : STDCPU_ERR_IO;
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; a model file is not secret */
    static const unsigned char blank[STDCPU_STDM_HEADER_SIZE];
    if (w_write(w, blank, sizeof blank, err) != STDCPU_OK) {
        stdcpu_stdm_writer_abort(w);
        return STDCPU_ERR_IO;
    }
    *out = w;
    return STDCPU_OK;
}

stdcpu_status stdcpu_stdm_write_blob(stdcpu_stdm_writer *w, const char *name, const void *data, size_t len,
                                     stdcpu_error *err)
{
    if (!strchr(name, '/') || name[0] == '/')
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "stdm: blob name '%s' needs a component/ prefix", name);
    STDCPU_TRY(w_align(w, err));
    uint64_t off = w->pos;
    STDCPU_TRY(w_write(w, data, len, err));
    stdcpu_strbuf *b = &w->blobs;
    if ((b->len && stdcpu_strbuf_printf(b, ",\n")) || stdcpu_strbuf_printf(b, "{\"name\":") ||
        stdcpu_strbuf_json_string(b, name) ||
        stdcpu_strbuf_printf(b, ",\"offset\":%llu,\"size\":%zu,\"crc32\":%u}", (unsigned long long)off, len,
                             (unsigned)crc32_bytes(0, data, len)))
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "stdm: out of memory");
    return STDCPU_OK;
}

stdcpu_status stdcpu_stdm_write_tensor(stdcpu_stdm_writer *w, const char *name, stdcpu_dtype dtype, int ndim,
                                       const int64_t *shape, const void *data, const float *scales,
                                       stdcpu_error *err)
{
    if ((unsigned)dtype >= STDCPU_DT_COUNT || ndim < 0 || ndim > STDCPU_MAX_DIMS ||
        (dtype == STDCPU_DT_I8 && (ndim < 1 || !scales)) || !strchr(name, '.') || name[0] == '.')
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "stdm: bad tensor '%s' (dtype, rank, scales or name)",
                           name);
    size_t bytes = stdcpu_dtype_size(dtype);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || stdcpu_mul_size(bytes, (size_t)shape[i], &bytes))
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "stdm: tensor '%s': bad shape", name);
    STDCPU_TRY(w_align(w, err));
    uint64_t off = w->pos, soff = 0;
    STDCPU_TRY(w_write(w, data, bytes, err));
    uint32_t crc = crc32_bytes(0, data, bytes);
    if (dtype == STDCPU_DT_I8) {
        STDCPU_TRY(w_align(w, err));
        soff = w->pos;
        STDCPU_TRY(w_write(w, scales, (size_t)shape[0] * 4, err));
        crc = crc32_bytes(crc, scales, (size_t)shape[0] * 4);
    }
    stdcpu_strbuf *b = &w->tensors;
    int r = (b->len && stdcpu_strbuf_printf(b, ",\n")) || stdcpu_strbuf_printf(b, "{\"name\":") ||
            stdcpu_strbuf_json_string(b, name) ||
            stdcpu_strbuf_printf(b, ",\"dtype\":\"%s\",\"shape\":[", stdcpu_dtype_name(dtype));
    for (int i = 0; i < ndim && !r; i++)
        r = stdcpu_strbuf_printf(b, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (!r)
        r = stdcpu_strbuf_printf(b, "],\"offset\":%llu,\"size\":%zu,\"crc32\":%u", (unsigned long long)off, bytes,
                                 (unsigned)crc);
    if (!r && dtype == STDCPU_DT_I8)
        r = stdcpu_strbuf_printf(b, ",\"scales\":%llu", (unsigned long long)soff);
    if (r || stdcpu_strbuf_printf(b, "}"))
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "stdm: out of memory");
    return STDCPU_OK;
}

stdcpu_status stdcpu_stdm_writer_set(stdcpu_stdm_writer *w, const char *key, const char *json_value,
                                     stdcpu_error *err)
{
    if (stdcpu_strbuf_json_string(&w->extra, key) || stdcpu_strbuf_printf(&w->extra, ":%s,\n", json_value))
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "stdm: out of memory");
    return STDCPU_OK;
}

static void writer_free(stdcpu_stdm_writer *w)
{
    stdcpu_strbuf_free(&w->tensors);
    stdcpu_strbuf_free(&w->blobs);
    stdcpu_strbuf_free(&w->extra);
    free(w->path);
    free(w->tmp);
    free(w);
}

void stdcpu_stdm_writer_abort(stdcpu_stdm_writer *w)
{
    if (!w)
        return;
    if (w->f)
        fclose(w->f);
    unlink(w->tmp);
    writer_free(w);
}

stdcpu_status stdcpu_stdm_writer_finish(stdcpu_stdm_writer *w, stdcpu_error *err)
{
    stdcpu_strbuf idx = {0};
    stdcpu_status st = STDCPU_OK;
    if (stdcpu_strbuf_printf(&idx, "{\"format\":\"stdcpu-model\",\"version\":%d,\n%s\"blobs\":[\n%s],\n\"tensors\":[\n%s]}\n",
                             STDCPU_STDM_VERSION, w->extra.p ? w->extra.p : "", w->blobs.p ? w->blobs.p : "",
                             w->tensors.p ? w->tensors.p : ""))
        st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "stdm: out of memory");
    if (st == STDCPU_OK)
        st = w_align(w, err);
    uint64_t ioff = w->pos;
    if (st == STDCPU_OK)
        st = w_write(w, idx.p, idx.len, err);
    unsigned char h[STDCPU_STDM_HEADER_SIZE] = {0};
    memcpy(h + H_MAGIC, STDCPU_STDM_MAGIC, 8);
    put_u32(h + H_VERSION, STDCPU_STDM_VERSION);
    put_u32(h + H_HEADER_SIZE, STDCPU_STDM_HEADER_SIZE);
    put_u64(h + H_FILE_SIZE, w->pos);
    put_u64(h + H_INDEX_OFFSET, ioff);
    put_u64(h + H_INDEX_SIZE, idx.len);
    put_u32(h + H_INDEX_CRC, crc32_bytes(0, idx.p, idx.len));
    put_u64(h + H_DATA_OFFSET, STDCPU_STDM_HEADER_SIZE);
    put_u32(h + H_HEADER_CRC, crc32_bytes(0, h, H_HEADER_CRC));
    stdcpu_strbuf_free(&idx);
    if (st == STDCPU_OK && (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f) != sizeof h ||
                            fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
        st = w_io(w, err);
    if (st == STDCPU_OK) {
        int rc = fclose(w->f);
        w->f = NULL;
        if (rc != 0)
            st = w_io(w, err);
    }
    if (st == STDCPU_OK && rename(w->tmp, w->path) != 0)
        st = stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot rename into place (%s)", w->path, strerror(errno));
    if (st != STDCPU_OK) {
        stdcpu_stdm_writer_abort(w);
        return st;
    }
    writer_free(w);
    return STDCPU_OK;
}
