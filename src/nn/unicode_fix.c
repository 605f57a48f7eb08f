/* Text fixing before tokenization: NFC normalisation and the subset of
 * ftfy.fix_text described in nn/unicode.h. Data: unicode_fix_tables.c. */
#include "nn/unicode.h"

#include <stdlib.h>
#include <string.h>

#include "nn/unicode_tables.h"

/* ---- NFC ---------------------------------------------------------------- */

/* Hangul syllables are composed algorithmically (Unicode 3.12). */
#define HANGUL_S 0xAC00u
#define HANGUL_L 0x1100u
#define HANGUL_V 0x1161u
#define HANGUL_T 0x11A7u
#define HANGUL_LCOUNT 19u
#define HANGUL_VCOUNT 21u
#define HANGUL_TCOUNT 28u
#define HANGUL_NCOUNT (HANGUL_VCOUNT * HANGUL_TCOUNT)
#define HANGUL_SCOUNT (HANGUL_LCOUNT * HANGUL_NCOUNT)

/* A full canonical decomposition never exceeds this many code points. */
#define DECOMP_MAX 8

int stdcpu_unicode_ccc(uint32_t cp)
{
    if (cp < 0x300)
        return 0;
    size_t lo = 0, hi = stdcpu_unicode_ccc_ranges_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < stdcpu_unicode_ccc_ranges[mid].lo)
            hi = mid;
        else if (cp > stdcpu_unicode_ccc_ranges[mid].hi)
            lo = mid + 1;
        else
            return stdcpu_unicode_ccc_ranges[mid].ccc;
    }
    return 0;
}

static const stdcpu_unicode_decomp *find_decomp(uint32_t cp)
{
    size_t lo = 0, hi = stdcpu_unicode_decomps_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < stdcpu_unicode_decomps[mid].cp)
            hi = mid;
        else if (cp > stdcpu_unicode_decomps[mid].cp)
            lo = mid + 1;
        else
            return &stdcpu_unicode_decomps[mid];
    }
    return NULL;
}

/* Full canonical decomposition of cp into out (at most DECOMP_MAX). */
static size_t decompose(uint32_t cp, uint32_t *out, int depth)
{
    if (cp >= HANGUL_S && cp < HANGUL_S + HANGUL_SCOUNT) {
        uint32_t s = cp - HANGUL_S;
        size_t n = 0;
        out[n++] = HANGUL_L + s / HANGUL_NCOUNT;
        out[n++] = HANGUL_V + (s % HANGUL_NCOUNT) / HANGUL_TCOUNT;
        if (s % HANGUL_TCOUNT)
            out[n++] = HANGUL_T + s % HANGUL_TCOUNT;
        return n;
    }
    const stdcpu_unicode_decomp *d = cp < stdcpu_unicode_nfc_min || depth > 4 ? NULL : find_decomp(cp);
    if (!d) {
        out[0] = cp;
        return 1;
    }
    size_t n = decompose(d->first, out, depth + 1);
    if (d->second)
        n += decompose(d->second, out + n, depth + 1);
    return n;
}

/* The primary composite of (a, b) or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a >= HANGUL_L && a < HANGUL_L + HANGUL_LCOUNT && b >= HANGUL_V && b < HANGUL_V + HANGUL_VCOUNT)
        return HANGUL_S + ((a - HANGUL_L) * HANGUL_VCOUNT + (b - HANGUL_V)) * HANGUL_TCOUNT;
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_SCOUNT && (a - HANGUL_S) % HANGUL_TCOUNT == 0 && b > HANGUL_T &&
        b < HANGUL_T + HANGUL_TCOUNT)
        return a + (b - HANGUL_T);
    size_t lo = 0, hi = stdcpu_unicode_compose_index_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const stdcpu_unicode_decomp *d = &stdcpu_unicode_decomps[stdcpu_unicode_compose_index[mid]];
        if (a < d->first || (a == d->first && b < d->second))
            hi = mid;
        else if (a > d->first || b > d->second)
            lo = mid + 1;
        else
            return d->cp;
    }
    return 0;
}

/* Stable sort of s[0..n) by combining class (all nonzero): insertion sort
 * for the usual short runs, counting sort otherwise (hostile input can hold
 * long runs of marks). */
static int order_marks(uint32_t *s, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = s[i];
            int k = stdcpu_unicode_ccc(c);
            size_t j = i;
            while (j > 0 && stdcpu_unicode_ccc(s[j - 1]) > k) {
                s[j] = s[j - 1];
                j--;
            }
            s[j] = c;
        }
        return 1;
    }
    uint32_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        return 0;
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++)
        start[stdcpu_unicode_ccc(s[i]) + 1]++;
    for (int k = 1; k <= 256; k++)
        start[k] += start[k - 1];
    for (size_t i = 0; i < n; i++)
        tmp[start[stdcpu_unicode_ccc(s[i])]++] = s[i];
    memcpy(s, tmp, n * sizeof *s);
    free(tmp);
    return 1;
}

int stdcpu_unicode_nfc(const uint32_t *in, size_t n, uint32_t **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    size_t lowest = 0; /* fast path: nothing at or above nfc_min -> NFC is a copy */
    while (lowest < n && in[lowest] < stdcpu_unicode_nfc_min)
        lowest++;
    if (lowest == n) {
        uint32_t *copy = malloc((n + 1) * sizeof *copy);
        if (!copy)
            return 0;
        if (n)
            memcpy(copy, in, n * sizeof *copy);
        *out = copy;
        *out_n = n;
        return 1;
    }
    /* decomposed length first (exact allocation) */
    size_t m = 0;
    uint32_t tmp[DECOMP_MAX];
    for (size_t i = 0; i < n; i++)
        m += in[i] < stdcpu_unicode_nfc_min ? 1 : decompose(in[i], tmp, 0);
    uint32_t *s = malloc((m + 1) * sizeof *s);
    if (!s)
        return 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] < stdcpu_unicode_nfc_min)
            s[w++] = in[i];
        else
            w += decompose(in[i], s + w, 0);
    }
    /* canonical ordering of every run of combining marks */
    for (size_t i = 0; i < m;) {
        if (stdcpu_unicode_ccc(s[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < m && stdcpu_unicode_ccc(s[j]) != 0)
            j++;
        if (j - i > 1 && !order_marks(s + i, j - i)) {
            free(s);
            return 0;
        }
        i = j;
    }
    /* canonical composition, in place: a mark composes with the last starter
     * unless a character in between has class 0 or >= its own class */
    size_t starter = SIZE_MAX;
    w = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t c = s[i];
        int cc = stdcpu_unicode_ccc(c);
        if (starter != SIZE_MAX && c >= stdcpu_unicode_compose_second_min) {
            int blocked = w > starter + 1 && stdcpu_unicode_ccc(s[w - 1]) >= cc;
            uint32_t comp = blocked ? 0 : compose_pair(s[starter], c);
            if (comp) {
                s[starter] = comp;
                continue;
            }
        }
        if (cc == 0)
            starter = w;
        s[w++] = c;
    }
    *out = s;
    *out_n = w;
    return 1;
}

/* ---- ftfy subset -------------------------------------------------------- */

static int is_ftfy_control(uint32_t c)
{
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* fix_latin_ligatures; returns the count written (0: not a ligature). */
static size_t ligature(uint32_t c, uint32_t *out)
{
    static const struct {
        uint32_t cp;
        char to[4];
    } lig[] = {{0x132, "IJ"}, {0x133, "ij"}, {0xFB00, "ff"}, {0xFB01, "fi"}, {0xFB02, "fl"},
               {0xFB03, "ffi"}, {0xFB04, "ffl"}, {0xFB05, "\x01t"}, {0xFB06, "st"}};
    if (c < 0x132 || (c > 0x133 && c < 0xFB00) || c > 0xFB06)
        return 0;
    for (size_t i = 0; i < sizeof lig / sizeof *lig; i++) {
        if (lig[i].cp != c)
            continue;
        size_t n = 0;
        for (const char *p = lig[i].to; *p; p++)
            out[n++] = *p == '\x01' ? 0x17F : (uint32_t)(unsigned char)*p; /* ﬅ -> long s + t */
        return n;
    }
    return 0;
}

static const stdcpu_unicode_map2 *width_map(uint32_t c)
{
    if (c != 0x3000 && (c < 0xFF01 || c > 0xFFEF))
        return NULL;
    size_t lo = 0, hi = stdcpu_unicode_width_map_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < stdcpu_unicode_width_map[mid].cp)
            hi = mid;
        else if (c > stdcpu_unicode_width_map[mid].cp)
            lo = mid + 1;
        else
            return &stdcpu_unicode_width_map[mid];
    }
    return NULL;
}

/* Length of an ANSI escape ESC [ (digit|;)* letter at s[i], or 0. */
static size_t terminal_escape(const uint32_t *s, size_t n, size_t i)
{
    if (s[i] != 0x1B || i + 1 >= n || s[i + 1] != '[')
        return 0;
    size_t j = i + 2;
    while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == ';'))
        j++;
    if (j < n && ((s[j] | 0x20) >= 'a' && (s[j] | 0x20) <= 'z'))
        return j + 1 - i;
    return 0;
}

int stdcpu_unicode_fix_text(const uint32_t *in, size_t n, uint32_t **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    /* a ligature becomes at most 3 code points, everything else at most 2 */
    if (n > SIZE_MAX / 3 / sizeof(uint32_t) - 1)
        return 0;
    uint32_t *a = malloc((3 * n + 1) * sizeof *a);
    if (!a)
        return 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c >= 0x80 && c <= 0x9F) /* fix_c1_controls */
            c = stdcpu_unicode_c1_map[c - 0x80];
        size_t k = ligature(c, a + w);
        if (k) {
            w += k;
            continue;
        }
        const stdcpu_unicode_map2 *wm = width_map(c);
        if (wm) {
            a[w++] = wm->to[0];
            if (wm->to[1])
                a[w++] = wm->to[1];
            continue;
        }
        if (c >= 0x2018 && c <= 0x201B)
            c = '\'';
        else if (c >= 0x201C && c <= 0x201F)
            c = '"';
        a[w++] = c;
    }
    /* remove_terminal_escapes, then remove_control_chars */
    size_t m = 0;
    for (size_t i = 0; i < w;) {
        size_t esc = terminal_escape(a, w, i);
        if (esc) {
            i += esc;
            continue;
        }
        if (!is_ftfy_control(a[i]))
            a[m++] = a[i];
        i++;
    }
    int ok = stdcpu_unicode_nfc(a, m, out, out_n);
    free(a);
    return ok;
}
