/* Unicode for the CLIP tokenizer: UTF-8 decoding, character classes,
 * str.lower() and html.unescape(), all with Python 3 semantics. The data are
 * the generated tables of unicode_tables.c / unicode_html_tables.c. */
#include "nn/unicode.h"

#include <string.h>

#include "nn/unicode_tables.h"

const char *stdcpu_unicode_version_string(void) { return stdcpu_unicode_version; }

/* ---- UTF-8 ------------------------------------------------------------ */

size_t stdcpu_utf8_decode(const char *str, size_t len, uint32_t *out)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, n = 0;
    while (i < len) {
        unsigned b = s[i];
        if (b < 0x80) {
            out[n++] = b;
            i++;
            continue;
        }
        /* Lead byte: sequence length and the allowed range of the second
         * byte (excludes overlongs, surrogates and > U+10FFFF up front, so
         * a failure is always detected at the first byte that does not fit,
         * which is what "maximal subpart" replacement needs). */
        unsigned need, lo = 0x80, hi = 0xBF;
        uint32_t cp;
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
            cp = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            cp = b & 0x0F;
            if (b == 0xE0)
                lo = 0xA0;
            else if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            cp = b & 0x07;
            if (b == 0xF0)
                lo = 0x90;
            else if (b == 0xF4)
                hi = 0x8F;
        } else {
            out[n++] = STDCPU_UNICODE_REPLACEMENT; /* 80..C1, F5..FF */
            i++;
            continue;
        }
        size_t j = i + 1;
        unsigned k;
        for (k = 0; k < need; k++, j++) {
            if (j >= len)
                break;
            unsigned c = s[j];
            unsigned l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
            if (c < l || c > h)
                break;
            cp = (cp << 6) | (c & 0x3F);
        }
        if (k == need) {
            out[n++] = cp;
        } else {
            out[n++] = STDCPU_UNICODE_REPLACEMENT; /* bytes i..j-1: one maximal subpart */
        }
        i = j;
    }
    return n;
}

size_t stdcpu_utf8_encode(uint32_t cp, unsigned char out[4])
{
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = STDCPU_UNICODE_REPLACEMENT;
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- classes ------------------------------------------------------------ */

static int in_ranges(const stdcpu_unicode_range *r, size_t count, uint32_t cp)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int in_list(const uint32_t *list, size_t count, uint32_t cp)
{
    for (size_t i = 0; i < count; i++)
        if (list[i] == cp)
            return 1;
    return 0;
}

int stdcpu_unicode_is_letter(uint32_t cp)
{
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(stdcpu_unicode_letter, stdcpu_unicode_letter_count, cp);
}

int stdcpu_unicode_is_number(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return in_ranges(stdcpu_unicode_number, stdcpu_unicode_number_count, cp);
}

int stdcpu_unicode_is_space(uint32_t cp)
{
    return in_ranges(stdcpu_unicode_space, stdcpu_unicode_space_count, cp);
}

int stdcpu_unicode_is_split_unmatched(uint32_t cp)
{
    return in_list(stdcpu_unicode_split_unmatched, stdcpu_unicode_split_unmatched_count, cp);
}

int stdcpu_unicode_matches_contraction_s(uint32_t cp)
{
    return cp == 's' || in_list(stdcpu_unicode_contraction_s, stdcpu_unicode_contraction_s_count, cp);
}

/* ---- lowercase ---------------------------------------------------------- */

size_t stdcpu_unicode_lower_char(uint32_t cp, uint32_t out[STDCPU_UNICODE_LOWER_MAX])
{
    if (cp < 0x80) {
        out[0] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
        return 1;
    }
    if (cp == 0x3A3) { /* Σ out of context; stdcpu_unicode_lower applies Final_Sigma */
        out[0] = 0x3C3;
        return 1;
    }
    for (size_t i = 0; i < stdcpu_unicode_lower_multis_count; i++) {
        const stdcpu_unicode_lower_multi *m = &stdcpu_unicode_lower_multis[i];
        if (m->cp == cp) {
            memcpy(out, m->lower, m->n * sizeof *out);
            return m->n;
        }
    }
    /* Last run starting at or before cp. */
    const stdcpu_unicode_lower_run *r = stdcpu_unicode_lower_runs;
    size_t lo = 0, hi = stdcpu_unicode_lower_runs_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].first <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    out[0] = cp;
    if (lo > 0) {
        const stdcpu_unicode_lower_run *run = &r[lo - 1];
        uint32_t off = cp - run->first;
        if (off % run->stride == 0 && off / run->stride < run->count)
            out[0] = (uint32_t)((int64_t)cp + run->delta);
    }
    return 1;
}

/* CPython's handle_capital_sigma: Σ at i is final when, skipping
 * case-ignorable characters, a cased character precedes it and none
 * follows. */
static int is_final_sigma(const uint32_t *s, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && in_ranges(stdcpu_unicode_case_ignorable, stdcpu_unicode_case_ignorable_count, s[j - 1]))
        j--;
    if (j == 0 || !in_ranges(stdcpu_unicode_cased, stdcpu_unicode_cased_count, s[j - 1]))
        return 0;
    j = i + 1;
    while (j < n && in_ranges(stdcpu_unicode_case_ignorable, stdcpu_unicode_case_ignorable_count, s[j]))
        j++;
    return j == n || !in_ranges(stdcpu_unicode_cased, stdcpu_unicode_cased_count, s[j]);
}

size_t stdcpu_unicode_lower(const uint32_t *in, size_t n, uint32_t *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == 0x3A3) {
            out[w++] = is_final_sigma(in, n, i) ? 0x3C2 : 0x3C3;
            continue;
        }
        w += stdcpu_unicode_lower_char(in[i], out + w);
    }
    return w;
}

/* ---- html.unescape ------------------------------------------------------ */

/* The longest name html's charref regex takes: [^\t\n\f <&#;]{1,32}. */
#define HTML_NAME_MAX 32

static int html_name_char(uint32_t c)
{
    return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' && c != ';';
}

static const stdcpu_html_entity *html_find(const char *name, size_t len)
{
    size_t lo = 0, hi = stdcpu_html_entities_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *e = stdcpu_html_entities[mid].name;
        /* name may hold NUL bytes (the input can): compare by length, never
         * read e past its terminator */
        const size_t elen = strlen(e);
        int c = memcmp(e, name, elen < len ? elen : len);
        if (c == 0)
            c = (elen > len) - (elen < len);
        if (c == 0)
            return &stdcpu_html_entities[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static size_t put_entity(const stdcpu_html_entity *e, uint32_t *out)
{
    out[0] = e->cp[0];
    if (e->cp[1] == 0)
        return 1;
    out[1] = e->cp[1];
    return 2;
}

/* A numeric reference's value -> what html._replace_charref returns. */
static size_t numeric_ref(uint32_t num, int overflow, uint32_t *out)
{
    if (!overflow) {
        for (size_t i = 0; i < stdcpu_html_invalid_charrefs_count; i++)
            if (stdcpu_html_invalid_charrefs[i][0] == num) {
                out[0] = stdcpu_html_invalid_charrefs[i][1];
                return 1;
            }
    }
    if (overflow || num > 0x10FFFF || (num >= 0xD800 && num <= 0xDFFF)) {
        out[0] = STDCPU_UNICODE_REPLACEMENT;
        return 1;
    }
    if (in_ranges(stdcpu_html_invalid_codepoints, stdcpu_html_invalid_codepoints_count, num))
        return 0;
    out[0] = num;
    return 1;
}

static int hex_value(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

size_t stdcpu_html_unescape(const uint32_t *in, size_t n, uint32_t *out)
{
    size_t w = 0, i = 0;
    while (i < n) {
        if (in[i] != '&' || i + 1 >= n) {
            out[w++] = in[i++];
            continue;
        }
        size_t j = i + 1;
        if (in[j] == '#') {
            /* &#[0-9]+;? or &#[xX][0-9a-fA-F]+;? */
            int hex = j + 1 < n && (in[j + 1] == 'x' || in[j + 1] == 'X');
            size_t d = j + 1 + (size_t)hex, k = d;
            uint32_t num = 0;
            int overflow = 0;
            for (; k < n; k++) {
                int v = hex ? hex_value(in[k]) : (in[k] >= '0' && in[k] <= '9' ? (int)(in[k] - '0') : -1);
                if (v < 0)
                    break;
                if (num > 0x10FFFF)
                    overflow = 1; /* saturate: stays out of range */
                else
                    num = num * (hex ? 16u : 10u) + (uint32_t)v;
            }
            if (k == d) { /* no digits: '&' is literal */
                out[w++] = in[i++];
                continue;
            }
            if (k < n && in[k] == ';')
                k++;
            w += numeric_ref(num, overflow, out + w);
            i = k;
            continue;
        }
        /* Named: up to 32 name characters, then an optional ';'. */
        size_t k = j;
        while (k < n && k - j < HTML_NAME_MAX && html_name_char(in[k]))
            k++;
        if (k == j) {
            out[w++] = in[i++];
            continue;
        }
        if (k < n && in[k] == ';')
            k++;
        /* s = in[j..k). Entity names are ASCII: only its ASCII prefix can match. */
        char name[HTML_NAME_MAX + 2];
        size_t slen = k - j, ascii = 0;
        while (ascii < slen && in[j + ascii] < 0x80) {
            name[ascii] = (char)in[j + ascii];
            ascii++;
        }
        const stdcpu_html_entity *e = ascii == slen ? html_find(name, slen) : NULL;
        size_t x = slen;
        if (!e) {
            /* for x in range(len(s)-1, 1, -1): if s[:x] in html5 */
            for (x = slen - 1; x >= 2; x--) {
                if (x > ascii)
                    continue;
                e = html_find(name, x);
                if (e)
                    break;
            }
        }
        if (e) {
            w += put_entity(e, out + w);
            i = j + x; /* the rest s[x:] is copied as plain text (not rescanned) */
            while (i < k)
                out[w++] = in[i++];
        } else {
            while (i < k) /* '&' + s unchanged */
                out[w++] = in[i++];
        }
    }
    return w;
}
