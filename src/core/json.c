/* Iterative JSON parser: see json.h for the accepted language and limits. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

struct stdcpu_json_doc {
    stdcpu_json *nodes; /* [n] node 0 is the root */
    size_t n;
    stdcpu_json **items; /* children of every container, slices referenced by nodes */
    char *strbuf;        /* decoded strings and keys */
};

/* Parse-time links between nodes (indices + 1, 0 = none); nodes move while
 * the array grows, so pointers are built only at the end. */
typedef struct {
    size_t first, last, next;
} json_link;

typedef struct {
    const char *p, *end;
    const char *start;
    stdcpu_json *nodes;
    json_link *links;
    size_t n, cap;
    char *str, *str_end; /* write cursor into strbuf */
    stdcpu_error *err;
} json_parser;

static stdcpu_status syntax(json_parser *ps, const char *what)
{
    return stdcpu_fail(ps->err, STDCPU_ERR_FORMAT, "json: %s at byte %zu", what, (size_t)(ps->p - ps->start));
}

static void skip_ws(json_parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static stdcpu_status new_node(json_parser *ps, size_t *idx)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        stdcpu_json *nodes = realloc(ps->nodes, cap * sizeof *nodes);
        if (!nodes)
            return stdcpu_fail(ps->err, STDCPU_ERR_NOMEM, "json: out of memory");
        ps->nodes = nodes;
        json_link *links = realloc(ps->links, cap * sizeof *links);
        if (!links)
            return stdcpu_fail(ps->err, STDCPU_ERR_NOMEM, "json: out of memory");
        ps->links = links;
        ps->cap = cap;
    }
    memset(&ps->nodes[ps->n], 0, sizeof ps->nodes[ps->n]);
    memset(&ps->links[ps->n], 0, sizeof ps->links[ps->n]);
    *idx = ps->n++;
    return STDCPU_OK;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Length of the valid UTF-8 sequence at s (s < end), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - s) < n)
        return 0;
    unsigned cp = c & (0xFF >> (n + 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Decodes the string at ps->p (which points at the opening quote) into the
 * string buffer. Decoded text is never longer than its escaped form, so the
 * buffer sized to the input always suffices. */
static stdcpu_status parse_string(json_parser *ps, const char **out, size_t *out_len)
{
    ps->p++; /* opening quote */
    char *o = ps->str;
    const char *begin = o;
    for (;;) {
        if (ps->p >= ps->end)
            return syntax(ps, "unterminated string");
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20)
            return syntax(ps, "control character in string");
        if (c != '\\') {
            size_t n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
            if (!n)
                return syntax(ps, "invalid UTF-8 in string");
            memcpy(o, ps->p, n);
            o += n;
            ps->p += n;
            continue;
        }
        if (ps->end - ps->p < 2)
            return syntax(ps, "unterminated escape");
        char e = ps->p[1];
        ps->p += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (ps->end - ps->p < 4 || !hex4(ps->p, &cp))
                return syntax(ps, "bad \\u escape");
            ps->p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return syntax(ps, "lone low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || !hex4(ps->p + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return syntax(ps, "unpaired high surrogate");
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o = put_utf8(o, cp);
            break;
        }
        default:
            ps->p--;
            return syntax(ps, "bad escape");
        }
    }
    *o++ = '\0';
    *out = begin;
    *out_len = (size_t)(o - begin - 1);
    ps->str = o;
    return STDCPU_OK;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static stdcpu_status parse_number(json_parser *ps, stdcpu_json *v)
{
    const char *s = ps->p;
    const char *p = s;
    int neg = 0;
    if (p < ps->end && *p == '-') {
        neg = 1;
        p++;
    }
    if (ps->end - p >= 8 && !memcmp(p, "Infinity", 8)) {
        ps->p = p + 8;
        v->number = neg ? -INFINITY : INFINITY;
        return STDCPU_OK;
    }
    if (!neg && ps->end - p >= 3 && !memcmp(p, "NaN", 3)) {
        ps->p = p + 3;
        v->number = NAN;
        return STDCPU_OK;
    }
    if (p >= ps->end || !is_digit(*p))
        return syntax(ps, "bad number");
    int integral = 1;
    if (*p == '0') {
        p++;
    } else {
        while (p < ps->end && is_digit(*p))
            p++;
    }
    if (p < ps->end && *p == '.') {
        integral = 0;
        p++;
        if (p >= ps->end || !is_digit(*p))
            return syntax(ps, "bad fraction");
        while (p < ps->end && is_digit(*p))
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        integral = 0;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= ps->end || !is_digit(*p))
            return syntax(ps, "bad exponent");
        while (p < ps->end && is_digit(*p))
            p++;
    }
    size_t n = (size_t)(p - s);
    char buf[400];
    if (n >= sizeof buf)
        return stdcpu_fail(ps->err, STDCPU_ERR_LIMIT, "json: number longer than %zu characters", sizeof buf - 1);
    memcpy(buf, s, n);
    buf[n] = '\0';
    v->number = strtod(buf, NULL);
    if (integral) {
        /* exact int64 from the digits, not via double */
        uint64_t mag = 0;
        int overflow = 0;
        for (const char *d = s + neg; d < p; d++) {
            unsigned dig = (unsigned)(*d - '0');
            if (mag > (UINT64_MAX - dig) / 10)
                overflow = 1;
            else
                mag = mag * 10 + dig;
        }
        if (!overflow && (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX)) {
            v->is_int = 1;
            v->integer = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
        }
    } else if (v->number == floor(v->number) && v->number >= -9223372036854775808.0 &&
               v->number < 9223372036854775808.0) {
        v->is_int = 1;
        v->integer = (int64_t)v->number;
    }
    ps->p = p;
    return STDCPU_OK;
}

static stdcpu_status parse_literal(json_parser *ps, const char *word, stdcpu_json *v)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
        return syntax(ps, "unexpected character");
    ps->p += n;
    (void)v;
    return STDCPU_OK;
}

/* Parses a string, literal or number into node idx. */
static stdcpu_status parse_scalar(json_parser *ps, size_t idx)
{
    stdcpu_json *v = &ps->nodes[idx];
    char c = *ps->p;
    switch (c) {
    case '"':
        v->type = STDCPU_JSON_STRING;
        return parse_string(ps, &v->str, &v->len);
    case 't':
        v->type = STDCPU_JSON_BOOL;
        v->boolean = 1;
        return parse_literal(ps, "true", v);
    case 'f':
        v->type = STDCPU_JSON_BOOL;
        return parse_literal(ps, "false", v);
    case 'n':
        v->type = STDCPU_JSON_NULL;
        return parse_literal(ps, "null", v);
    default:
        if (c == '-' || c == 'N' || c == 'I' || is_digit(c)) {
            v->type = STDCPU_JSON_NUMBER;
            return parse_number(ps, v);
        }
        return syntax(ps, "unexpected character");
    }
}

static stdcpu_status parse_all(json_parser *ps)
{
    size_t stack[STDCPU_JSON_MAX_DEPTH]; /* open containers (node indices) */
    size_t depth = 0;
    for (;;) {
        /* expecting a value (preceded by "key": inside an object) */
        skip_ws(ps);
        const char *key = NULL;
        size_t key_len = 0;
        if (depth && ps->nodes[stack[depth - 1]].type == STDCPU_JSON_OBJECT) {
            if (ps->p >= ps->end || *ps->p != '"')
                return syntax(ps, "expected object key");
            STDCPU_TRY(parse_string(ps, &key, &key_len));
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return syntax(ps, "expected ':'");
            ps->p++;
            skip_ws(ps);
        }
        if (ps->p >= ps->end)
            return syntax(ps, "unexpected end of input");
        size_t idx = 0;
        STDCPU_TRY(new_node(ps, &idx));
        ps->nodes[idx].key = key;
        ps->nodes[idx].key_len = key_len;
        if (depth) {
            size_t parent = stack[depth - 1];
            json_link *pl = &ps->links[parent];
            if (pl->last)
                ps->links[pl->last - 1].next = idx + 1;
            else
                pl->first = idx + 1;
            pl->last = idx + 1;
            ps->nodes[parent].len++;
        }
        char c = *ps->p;
        if (c == '{' || c == '[') {
            if (depth == STDCPU_JSON_MAX_DEPTH)
                return stdcpu_fail(ps->err, STDCPU_ERR_LIMIT, "json: nesting deeper than %d",
                                   STDCPU_JSON_MAX_DEPTH);
            ps->nodes[idx].type = c == '{' ? STDCPU_JSON_OBJECT : STDCPU_JSON_ARRAY;
            stack[depth++] = idx;
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == (c == '{' ? '}' : ']')) {
                ps->p++;
                depth--;
            } else {
                continue;
            }
        } else {
            STDCPU_TRY(parse_scalar(ps, idx));
        }
        /* after a complete value: close containers or move to the next element */
        for (;;) {
            if (!depth)
                return STDCPU_OK;
            skip_ws(ps);
            if (ps->p >= ps->end)
                return syntax(ps, "unexpected end of input");
            char close = ps->nodes[stack[depth - 1]].type == STDCPU_JSON_OBJECT ? '}' : ']';
            if (*ps->p == ',') {
                ps->p++;
                break;
            }
            if (*ps->p != close)
                return syntax(ps, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
            ps->p++;
            depth--;
        }
    }
}

stdcpu_status stdcpu_json_parse(stdcpu_json_doc **out, const char *text, size_t len, stdcpu_error *err)
{
    *out = NULL;
    if (len > STDCPU_JSON_MAX_BYTES)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "json: %zu bytes exceeds the %zu byte limit", len,
                           STDCPU_JSON_MAX_BYTES);
    if (!text && len)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "json: NULL text");
    stdcpu_json_doc *doc = calloc(1, sizeof *doc);
    json_parser ps = {.p = text, .end = text + len, .start = text, .err = err};
    if (!doc || !(doc->strbuf = malloc(len + 1))) {
        free(doc);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "json: out of memory");
    }
    ps.str = doc->strbuf;
    ps.str_end = doc->strbuf + len + 1;
    stdcpu_status st = parse_all(&ps);
    if (st == STDCPU_OK) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            st = syntax(&ps, "trailing characters after the value");
    }
    if (st == STDCPU_OK) {
        /* every node but the root is the child of exactly one container */
        doc->items = malloc((ps.n ? ps.n : 1) * sizeof *doc->items);
        if (!doc->items)
            st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "json: out of memory");
    }
    if (st != STDCPU_OK) {
        free(ps.nodes);
        free(ps.links);
        stdcpu_json_free(doc);
        return st;
    }
    size_t cursor = 0;
    for (size_t i = 0; i < ps.n; i++) {
        stdcpu_json *v = &ps.nodes[i];
        if (v->type != STDCPU_JSON_ARRAY && v->type != STDCPU_JSON_OBJECT)
            continue;
        v->items = doc->items + cursor;
        size_t k = 0;
        for (size_t c = ps.links[i].first; c; c = ps.links[c - 1].next)
            v->items[k++] = &ps.nodes[c - 1];
        cursor += k;
    }
    free(ps.links);
    doc->nodes = ps.nodes;
    doc->n = ps.n;
    *out = doc;
    return STDCPU_OK;
}

stdcpu_status stdcpu_json_parse_file(stdcpu_json_doc **out, const char *path, stdcpu_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot open", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    stdcpu_status st = STDCPU_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= STDCPU_JSON_MAX_BYTES) {
                st = stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: larger than %zu bytes", path, STDCPU_JSON_MAX_BYTES);
                break;
            }
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                st = stdcpu_fail(err, STDCPU_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (st == STDCPU_OK) {
        st = stdcpu_json_parse(out, buf, len, err);
        if (st != STDCPU_OK)
            stdcpu_fail_prefix(err, "%s: ", path);
    }
    free(buf);
    return st;
}

void stdcpu_json_free(stdcpu_json_doc *doc)
{
    if (!doc)
        return;
    free(doc->nodes);
    free(doc->items);
    free(doc->strbuf);
    free(doc);
}

const stdcpu_json *stdcpu_json_root(const stdcpu_json_doc *doc) { return doc && doc->n ? &doc->nodes[0] : NULL; }

const stdcpu_json *stdcpu_json_get(const stdcpu_json *obj, const char *key)
{
    if (!obj || obj->type != STDCPU_JSON_OBJECT || !key)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < obj->len; i++) {
        const stdcpu_json *m = obj->items[i];
        if (m->key_len == kl && !memcmp(m->key, key, kl))
            return m;
    }
    return NULL;
}

size_t stdcpu_json_count(const stdcpu_json *v)
{
    return v && (v->type == STDCPU_JSON_ARRAY || v->type == STDCPU_JSON_OBJECT) ? v->len : 0;
}

const stdcpu_json *stdcpu_json_at(const stdcpu_json *v, size_t i)
{
    return i < stdcpu_json_count(v) ? v->items[i] : NULL;
}

int stdcpu_json_int(const stdcpu_json *v, int64_t *out)
{
    if (!v || v->type != STDCPU_JSON_NUMBER || !v->is_int)
        return 0;
    *out = v->integer;
    return 1;
}

int stdcpu_json_double(const stdcpu_json *v, double *out)
{
    if (!v || v->type != STDCPU_JSON_NUMBER)
        return 0;
    *out = v->number;
    return 1;
}

int stdcpu_json_bool(const stdcpu_json *v, int *out)
{
    if (!v || v->type != STDCPU_JSON_BOOL)
        return 0;
    *out = v->boolean;
    return 1;
}

const char *stdcpu_json_str(const stdcpu_json *v) { return v && v->type == STDCPU_JSON_STRING ? v->str : NULL; }

int64_t stdcpu_json_get_int(const stdcpu_json *obj, const char *key, int64_t dflt)
{
    int64_t v;
    return stdcpu_json_int(stdcpu_json_get(obj, key), &v) ? v : dflt;
}

double stdcpu_json_get_double(const stdcpu_json *obj, const char *key, double dflt)
{
    double v;
    return stdcpu_json_double(stdcpu_json_get(obj, key), &v) ? v : dflt;
}

const char *stdcpu_json_get_str(const stdcpu_json *obj, const char *key, const char *dflt)
{
    const char *s = stdcpu_json_str(stdcpu_json_get(obj, key));
    return s ? s : dflt;
}
