/* CLIP BPE tokenizer: the Unicode pieces against values printed by Python 3
 * (3.11, Unicode 14: bytes.decode("utf-8", "replace"), str.lower(),
 * html.unescape applied twice), the split / BPE rules, both vocabulary
 * formats, hostile input, and the golden `tokenizer` case (exact ids). */
#include <stdint.h>
#include <zlib.h>

#include "base/error.h"
#include "core/json.h"
#include "core/safetensors.h"
#include "nn/tokenizer.h"
#include "nn/unicode.h"
#include "testutil.h"

#define CTX STDCPU_TOKENIZER_CONTEXT
#define BOS 49406
#define EOS 49407

/* Byte-level ids of ASCII characters in the CLIP vocabulary: printable
 * ASCII c is token c - 33, and c + "</w>" is 256 + c - 33. */
#define WORD_END_ID(c) (256 + (c) - 33)

static stdcpu_tokenizer *load_clip(void)
{
    const char *path = stdcpu_test_shared("clip/bpe_simple_vocab_16e6.txt.gz");
    if (!path)
        return NULL;
    stdcpu_tokenizer *tok;
    stdcpu_error err;
    ck_assert_msg(stdcpu_tokenizer_load_bpe(&tok, path, &err) == STDCPU_OK, "%s", err.msg);
    return tok;
}

/* ---- Unicode pieces ----------------------------------------------------- */

static void check_decode(const char *bytes, size_t len, const uint32_t *want, size_t nwant)
{
    uint32_t got[64];
    size_t n = stdcpu_utf8_decode(bytes, len, got);
    ck_assert_uint_eq(n, nwant);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "code point %zu: %x != %x", i, got[i], want[i]);
}

#define DECODE(lit, ...)                                                              \
    do {                                                                              \
        const uint32_t w_[] = {__VA_ARGS__};                                          \
        check_decode(lit, sizeof(lit) - 1, w_, sizeof w_ / sizeof *w_);               \
    } while (0)

START_TEST(test_utf8_decode_like_python)
{
    const uint32_t R = 0xFFFD;
    DECODE("a\x80" "b", 'a', R, 'b');
    DECODE("\xe2\x82", R);
    DECODE("\xe2\x82" "a", R, 'a');
    DECODE("\xc0\xaf", R, R);                   /* overlong lead */
    DECODE("\xed\xa0\x80", R, R, R);            /* surrogate */
    DECODE("\xf4\x90\x80\x80", R, R, R, R);     /* > U+10FFFF */
    DECODE("\xf0\x9f\x98\x80", 0x1F600);
    DECODE("\x00z", 0, 'z');                    /* NUL is a character */
    DECODE("\xf0\x9f\x98", R);                  /* truncated at the end */
    DECODE("\xe0\x80\x80", R, R, R);            /* overlong 3-byte */
    DECODE("\xf8\x88\x80\x80\x80", R, R, R, R, R);
    DECODE("\xc3\xa9\xff\xc3", 0xE9, R, R);
    /* round trip of every scalar value through encode/decode */
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        unsigned char buf[4];
        uint32_t back[4];
        size_t n = stdcpu_utf8_encode(cp, buf);
        ck_assert_uint_eq(stdcpu_utf8_decode((const char *)buf, n, back), 1);
        ck_assert_uint_eq(back[0], cp);
    }
}
END_TEST

/* normalize(text) must equal want (both UTF-8), with ftfy = identity. */
#define check_norm(text, want) check_norm_fix(text, want, 0)

static void check_norm_fix(const char *text, const char *want, int fix)
{
    char *got;
    size_t len;
    stdcpu_error err;
    ck_assert_msg(stdcpu_tokenizer_normalize(text, strlen(text), fix, &got, &len, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(len == strlen(want) && memcmp(got, want, len) == 0, "normalize(\"%s\") = \"%s\", want \"%s\"", text,
                  got, want);
    free(got);
}

START_TEST(test_lowercase_special_cases)
{
    check_norm("\xc4\xb0stanbul", "i\xcc\x87stanbul");                     /* İ -> i + U+0307 */
    check_norm("\xce\xa3\xce\x91\xce\xa3", "\xcf\x83\xce\xb1\xcf\x82");     /* ΣΑΣ -> σας */
    check_norm("\xce\xa3", "\xcf\x83");                                     /* lone Σ -> σ */
    check_norm("A\xce\xa3", "a\xcf\x82");                                   /* final sigma */
    check_norm("\xce\x91\xce\xa3.", "\xce\xb1\xcf\x82.");                   /* before punctuation */
    check_norm("\xce\x91\xce\xa3\xcc\x81\xce\x92", "\xce\xb1\xcf\x83\xcc\x81\xce\xb2"); /* ignorable, then cased */
    check_norm("A\xcc\x81\xce\xa3", "a\xcc\x81\xcf\x82");                   /* cased, ignorable, Σ */
    check_norm("\xe1\xba\x9e", "\xc3\x9f");                                 /* ẞ -> ß */
    check_norm("\xe2\x84\xaa", "k");                                        /* Kelvin sign */
    check_norm("\xc7\x84", "\xc7\x86");                                     /* Ǆ -> ǆ */
    check_norm("\xc3\x9c" "BER Stra\xc3\x9f" "e", "\xc3\xbc" "ber stra\xc3\x9f" "e");
    uint32_t out[STDCPU_UNICODE_LOWER_MAX];
    ck_assert_uint_eq(stdcpu_unicode_lower_char(0x130, out), 2);
    ck_assert_uint_eq(out[0], 'i');
    ck_assert_uint_eq(out[1], 0x307);
    ck_assert_uint_eq(stdcpu_unicode_lower_char(0x10400, out), 1); /* Deseret */
    ck_assert_uint_eq(out[0], 0x10428);
    ck_assert_uint_eq(stdcpu_unicode_lower_char(0x101, out), 1);    /* already lower (stride-2 run) */
    ck_assert_uint_eq(out[0], 0x101);
}
END_TEST

START_TEST(test_whitespace_runs)
{
    check_norm("  a\t\tb\n\r\nc\xc2\xa0\xc2\xa0" "d\xe3\x80\x80" "e\x1c" "f  ", "a b c d e f");
    check_norm("\xe2\x80\x83\xe2\x80\xa8x\xc2\x85y\x0b\x0cz", "x y z");
    check_norm(" \t\n ", "");
    check_norm("a&nbsp;&nbsp;b&Tab;c", "a b c"); /* entities become white space first */
    ck_assert(stdcpu_unicode_is_space(0xA0) && stdcpu_unicode_is_space(0x1F) && stdcpu_unicode_is_space(0x3000));
    ck_assert(!stdcpu_unicode_is_space(0x200B) && !stdcpu_unicode_is_space(0x180E));
}
END_TEST

START_TEST(test_html_entities)
{
    check_norm("&amp;lt;", "<");                     /* unescaped twice */
    check_norm("&amp;amp;amp;", "&amp;");            /* ... but not three times */
    check_norm("&ampx", "&x");                       /* legacy name without ';' */
    check_norm("&#39;&#x27;", "''");
    check_norm("&#0;", "\xef\xbf\xbd");
    check_norm("&#128;", "\xe2\x82\xac");            /* windows-1252 fix-up */
    check_norm("&#x80;&#x81;", "\xe2\x82\xac\xc2\x81");
    check_norm("&#xD800;", "\xef\xbf\xbd");
    check_norm("&#1;x", "x");                        /* invalid code point: dropped */
    check_norm("&notit;", "\xc2\xacit;");            /* longest prefix */
    check_norm("&NotEqualTilde;", "\xe2\x89\x82\xcc\xb8");
    check_norm("&#x110000;", "\xef\xbf\xbd");
    check_norm("&#99999999999999999999;", "\xef\xbf\xbd");
    check_norm("&lt", "<");
    check_norm("&#;&#x;&;&", "&#;&#x;&;&");
    check_norm("&#65", "a");
    check_norm("a&b c", "a&b c");
    check_norm("&AElig&AEligx&aeligx;", "\xc3\xa6\xc3\xa6x\xc3\xa6x;");
    check_norm("x&#13;y", "x y");
}
END_TEST

START_TEST(test_ftfy_subset_and_nfc)
{
    /* expected strings printed by Python: unicodedata.normalize("NFC", ...)
     * after the ftfy maps listed in nn/unicode.h, then the CLIP cleanup */
    check_norm_fix("e\xcc\x81", "\xc3\xa9", 1);                           /* e + acute -> é */
    check_norm_fix("e\xcc\x81", "e\xcc\x81", 0);                          /* identity: unchanged */
    check_norm_fix("a\xcc\xa3\xcc\x82", "\xe1\xba\xad", 1);             /* a + dot below + circumflex -> ậ */
    check_norm_fix("a\xcc\x82\xcc\xa3", "\xe1\xba\xad", 1);             /* marks reordered first */
    check_norm_fix("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81", 1); /* Hangul L V T -> 각 */
    check_norm_fix("\xe2\x84\xab", "\xc3\xa5", 1);                        /* Angstrom sign -> å (singleton) */
    check_norm_fix("\xe0\xa5\x98", "\xe0\xa4\x95\xe0\xa4\xbc", 1);     /* excluded composite stays split */
    check_norm_fix("\xe2\x80\x9chi\xe2\x80\x9d \xe2\x80\x98x\xe2\x80\x99", "\"hi\" 'x'", 1);
    check_norm_fix("\xef\xac\x81ne \xef\xac\x83x \xef\xac\x85", "fine ffix \xc5\xbft", 1);
    check_norm_fix("\xef\xbc\xa1\xef\xbc\x91\xe3\x80\x80\xef\xbd\xb6\xef\xbe\x9e", "a1 \xe3\x82\xac", 1);
    check_norm_fix("\xc2\x93q\xc2\x94 \xc2\x80", "\"q\" \xe2\x82\xac", 1);   /* C1 as windows-1252 */
    check_norm_fix("\x1b[1;31mred\x1b[0m a\x01" "b\x1c" "c", "red abc", 1);
    check_norm_fix("a\x1c" "b", "a b", 0);                               /* identity: U+001C is space */
    /* hostile: a long run of marks in reverse class order is sorted stably */
    uint32_t in[1 + 3000], *out;
    size_t n;
    in[0] = 'a';
    for (int i = 0; i < 3000; i++)
        in[1 + i] = i % 2 ? 0x323 : 0x301; /* ccc 230, 220, 230, ... */
    ck_assert(stdcpu_unicode_nfc(in, 3001, &out, &n));
    /* Python: U+1EA1 (a + the first dot below), 1499 x U+0323, 1500 x U+0301 */
    ck_assert_uint_eq(n, 3000);
    ck_assert_uint_eq(out[0], 0x1EA1);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_eq(out[i], i < 1500 ? 0x323 : 0x301);
    free(out);
}
END_TEST

/* ---- split and BPE ------------------------------------------------------ */

static size_t bpe(const stdcpu_tokenizer *tok, const char *text, int32_t *ids, size_t cap)
{
    size_t count;
    stdcpu_error err;
    ck_assert_msg(stdcpu_tokenizer_bpe(tok, text, strlen(text), ids, cap, &count, &err) == STDCPU_OK, "%s", err.msg);
    return count;
}

START_TEST(test_digits_and_contractions)
{
    stdcpu_tokenizer *tok = load_clip();
    if (!tok)
        return;
    int32_t ids[64];
    /* every digit is its own piece */
    ck_assert_uint_eq(bpe(tok, "2024", ids, 64), 4);
    ck_assert_int_eq(ids[0], WORD_END_ID('2'));
    ck_assert_int_eq(ids[1], WORD_END_ID('0'));
    ck_assert_int_eq(ids[3], WORD_END_ID('4'));
    /* contractions are pieces: 's and 'S (lowered), not "'sx" */
    int32_t a[8], b[8];
    ck_assert_uint_eq(bpe(tok, "it's", a, 8), 2);
    ck_assert_uint_eq(bpe(tok, "IT'S", b, 8), 2);
    ck_assert_int_eq(a[0], b[0]);
    ck_assert_int_eq(a[1], b[1]);
    /* ſ (U+017F) matches 's under IGNORECASE: "'ſ" is one piece */
    /* ids printed by the reference (simple_tokenizer.py, regex module) */
    ck_assert_uint_eq(bpe(tok, "'\xc5\xbf", a, 8), 3);
    ck_assert_int_eq(a[0], 6);
    ck_assert_int_eq(a[1], 129);
    ck_assert_int_eq(a[2], 379);
    ck_assert_uint_eq(bpe(tok, "''s", a, 8), 2);                    /* "''" then "s" */
    ck_assert_int_eq(a[1], WORD_END_ID('s'));
    /* U+0345 matches no alternative of the split: dropped */
    ck_assert_uint_eq(bpe(tok, "a\xcd\x85" "b", a, 8), 2);
    /* special tokens inside text map to their ids */
    ck_assert_uint_eq(bpe(tok, "x<|endoftext|>y", a, 8), 3);
    ck_assert_int_eq(a[1], EOS);
    stdcpu_tokenizer_free(tok);
}
END_TEST

START_TEST(test_truncation_and_padding)
{
    stdcpu_tokenizer *tok = load_clip();
    if (!tok)
        return;
    int32_t ids[CTX];
    stdcpu_error err;
    size_t count;
    /* empty string: BOS EOS + padding, in both conventions */
    ck_assert_int_eq(stdcpu_tokenizer_encode(tok, "", STDCPU_TOKENIZER_PAD_EOS, ids, &err), STDCPU_OK);
    ck_assert_int_eq(ids[0], BOS);
    for (int i = 1; i < CTX; i++)
        ck_assert_int_eq(ids[i], EOS);
    ck_assert_int_eq(stdcpu_tokenizer_encode(tok, "   ", STDCPU_TOKENIZER_PAD_ZERO, ids, &err), STDCPU_OK);
    ck_assert_int_eq(ids[1], EOS);
    for (int i = 2; i < CTX; i++)
        ck_assert_int_eq(ids[i], 0);
    /* 100 words: the first 75 are kept, then EOS; the count is exact */
    char text[256];
    for (int i = 0; i < 100; i++)
        memcpy(text + 2 * i, "a ", 2);
    text[199] = '\0';
    ck_assert_int_eq(stdcpu_tokenizer_encode_n(tok, text, 199, 0, ids, &count, &err), STDCPU_OK);
    ck_assert_uint_eq(count, 100);
    ck_assert_int_eq(ids[0], BOS);
    for (int i = 1; i <= 75; i++)
        ck_assert_int_eq(ids[i], WORD_END_ID('a'));
    ck_assert_int_eq(ids[76], EOS);
    /* 74, 75, 76 tokens around the boundary */
    for (int n = 74; n <= 76; n++) {
        ck_assert_int_eq(stdcpu_tokenizer_encode_n(tok, text, (size_t)(2 * n - 1), 0, ids, &count, &err),
                         STDCPU_OK);
        ck_assert_uint_eq(count, (size_t)n);
        int kept = n < 75 ? n : 75;
        ck_assert_int_eq(ids[kept + 1], EOS);
        for (int i = kept + 2; i < CTX; i++)
            ck_assert_int_eq(ids[i], 0);
    }
    stdcpu_tokenizer_free(tok);
}
END_TEST

/* ---- vocabulary formats ------------------------------------------------- */

static char *gunzip_file(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    int got;
    while ((got = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    gzclose(f);
    *len = n;
    return buf;
}

static void json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Writes the CLIP vocabulary as HF vocab.json + merges.txt (ids as in
 * section 3.1, which is what the HF files of CLIP hold). The vocab entries
 * are written in reverse id order so that ids must come from the file. */
static void write_hf_pair(const char *gz, const char *vocab_path, const char *merges_path)
{
    size_t len;
    char *text = gunzip_file(gz, &len);
    /* the 512 byte tokens in vocabulary order */
    static char byte_tok[512][8];
    static size_t byte_len[512];
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned b = 0; b < 256; b++) {
            int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
            if (keep != (pass == 0))
                continue;
            unsigned cp = b;
            if (!keep) {
                unsigned n = 0;
                for (unsigned x = 0; x < b; x++)
                    n += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174));
                cp = 256 + n;
            }
            byte_len[k] = stdcpu_utf8_encode(cp, (unsigned char *)byte_tok[k]);
            memcpy(byte_tok[k + 256], byte_tok[k], byte_len[k]);
            memcpy(byte_tok[k + 256] + byte_len[k], "</w>", 4);
            byte_len[k + 256] = byte_len[k] + 4;
            k++;
        }
    ck_assert_int_eq(k, 256);
    /* merge lines 1..48894 */
    const char **line = malloc(48895 * sizeof *line);
    size_t *llen = malloc(48895 * sizeof *llen);
    size_t pos = 0;
    for (int i = 0; i <= 48894; i++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        ck_assert_ptr_nonnull(nl);
        line[i] = text + pos;
        llen[i] = (size_t)(nl - (text + pos));
        pos += llen[i] + 1;
    }
    FILE *m = fopen(merges_path, "wb");
    fputs("#version: 0.2\n", m);
    for (int i = 1; i <= 48894; i++) {
        fwrite(line[i], 1, llen[i], m);
        fputc('\n', m);
    }
    fclose(m);
    FILE *v = fopen(vocab_path, "wb");
    fputs("{", v);
    fputs("\"<|endoftext|>\": 49407, \"<|startoftext|>\": 49406", v);
    for (int id = 49405; id >= 0; id--) {
        fputs(", ", v);
        if (id < 512) {
            json_string(v, byte_tok[id], byte_len[id]);
        } else {
            const char *l = line[id - 511];
            const char *sp = memchr(l, ' ', llen[id - 511]);
            char joined[256];
            size_t a = (size_t)(sp - l), b = llen[id - 511] - a - 1;
            memcpy(joined, l, a);
            memcpy(joined + a, sp + 1, b);
            json_string(v, joined, a + b);
        }
        fprintf(v, ": %d", id);
    }
    fputs("}\n", v);
    fclose(v);
    free(line);
    free(llen);
    free(text);
}

static const char *const extra_strings[] = {
    "A photo of an astronaut riding a horse on Mars, 4k, trending on artstation",
    "It's ITS it'S, they'VE we'll I'd \303\234ber na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80!!",
    "&lt;b&gt; 1,000,000 \xce\xa3\xce\x91\xce\xa3 \xc4\xb0 \xef\xbc\xa1 x\xe2\x80\x8by",
    "\xff\xfe bad \xc0 bytes \xed\xa0\x80",
};

START_TEST(test_gz_and_hf_give_identical_ids)
{
    const char *gz0 = stdcpu_test_shared("clip/bpe_simple_vocab_16e6.txt.gz");
    if (!gz0)
        return;
    char gz[4096], vocab[4200], merges[4200];
    snprintf(gz, sizeof gz, "%s", gz0);
    snprintf(vocab, sizeof vocab, "%s/vocab.json", stdcpu_test_tmpdir());
    snprintf(merges, sizeof merges, "%s/merges.txt", stdcpu_test_tmpdir());
    write_hf_pair(gz, vocab, merges);
    stdcpu_tokenizer *a, *b, *c;
    stdcpu_error err;
    ck_assert_msg(stdcpu_tokenizer_load_bpe(&a, gz, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_msg(stdcpu_tokenizer_load_hf(&b, vocab, merges, &err) == STDCPU_OK, "%s", err.msg);
    /* the plain-text (not gzipped) merges file, from memory */
    size_t len;
    char *text = gunzip_file(gz, &len);
    ck_assert_msg(stdcpu_tokenizer_load_bpe_memory(&c, text, len, &err) == STDCPU_OK, "%s", err.msg);
    free(text);
    ck_assert_uint_eq(stdcpu_tokenizer_vocab_size(a), 49408);
    ck_assert_uint_eq(stdcpu_tokenizer_vocab_size(b), 49408);
    ck_assert_int_eq(stdcpu_tokenizer_bos(b), BOS);
    ck_assert_int_eq(stdcpu_tokenizer_eos(b), EOS);
    const char *sp = stdcpu_test_shared("golden/tokenizer/strings.json");
    stdcpu_json_doc *doc = NULL;
    if (sp)
        ck_assert_int_eq(stdcpu_json_parse_file(&doc, sp, &err), STDCPU_OK);
    const stdcpu_json *strs = doc ? stdcpu_json_get(stdcpu_json_root(doc), "strings") : NULL;
    size_t n = stdcpu_json_count(strs), n_extra = sizeof extra_strings / sizeof *extra_strings;
    for (size_t i = 0; i < n + n_extra; i++) {
        const char *s = i < n ? stdcpu_json_at(strs, i)->str : extra_strings[i - n];
        size_t sl = i < n ? stdcpu_json_at(strs, i)->len : strlen(s);
        int32_t ia[CTX], ib[CTX], ic[CTX];
        size_t na, nb, nc;
        ck_assert_int_eq(stdcpu_tokenizer_encode_n(a, s, sl, EOS, ia, &na, &err), STDCPU_OK);
        ck_assert_int_eq(stdcpu_tokenizer_encode_n(b, s, sl, EOS, ib, &nb, &err), STDCPU_OK);
        ck_assert_int_eq(stdcpu_tokenizer_encode_n(c, s, sl, EOS, ic, &nc, &err), STDCPU_OK);
        ck_assert_uint_eq(na, nb);
        ck_assert_uint_eq(na, nc);
        ck_assert_msg(!memcmp(ia, ib, sizeof ia) && !memcmp(ia, ic, sizeof ia), "string %zu differs", i);
    }
    stdcpu_json_free(doc);
    stdcpu_tokenizer_free(a);
    stdcpu_tokenizer_free(b);
    stdcpu_tokenizer_free(c);
}
END_TEST

START_TEST(test_bad_vocabularies)
{
    stdcpu_tokenizer *tok = NULL;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_tokenizer_load_bpe_memory(&tok, "", 0, &err), STDCPU_ERR_FORMAT);
    ck_assert_ptr_null(tok);
    ck_assert_int_eq(stdcpu_tokenizer_load_bpe_memory(&tok, "#header\na b\n", 12, &err), STDCPU_ERR_FORMAT);
    const unsigned char junk_gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff};
    ck_assert_int_eq(stdcpu_tokenizer_load_bpe_memory(&tok, junk_gz, sizeof junk_gz, &err), STDCPU_ERR_FORMAT);
    ck_assert_int_eq(stdcpu_tokenizer_load_bpe(&tok, "/nonexistent/vocab.gz", &err), STDCPU_ERR_IO);
    ck_assert_int_eq(stdcpu_tokenizer_load_hf_memory(&tok, "[1]", 3, "", 0, &err), STDCPU_ERR_FORMAT);
    ck_assert_int_eq(stdcpu_tokenizer_load_hf_memory(&tok, "{\"a\": 1", 7, "", 0, &err), STDCPU_ERR_FORMAT);
    ck_assert_int_eq(stdcpu_tokenizer_load_hf_memory(&tok, "{\"a\": -1}", 9, "", 0, &err), STDCPU_ERR_FORMAT);
    /* a vocabulary without the byte tokens */
    ck_assert_int_eq(stdcpu_tokenizer_load_hf_memory(&tok, "{\"a\": 0}", 8, "#version\na b\n", 13, &err),
                     STDCPU_ERR_FORMAT);
    /* truncated real file: every prefix length class fails cleanly */
    const char *gz = stdcpu_test_shared("clip/bpe_simple_vocab_16e6.txt.gz");
    if (!gz)
        return;
    FILE *f = fopen(gz, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *data = malloc(2 << 20);
    size_t n = fread(data, 1, 2 << 20, f);
    fclose(f);
    const size_t cuts[] = {1, 2, 10, 100, 5000, n / 2, n - 9, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        stdcpu_status st = stdcpu_tokenizer_load_bpe_memory(&tok, data, cuts[i], &err);
        ck_assert_msg(st != STDCPU_OK && tok == NULL, "cut at %zu loaded", cuts[i]);
    }
    free(data);
}
END_TEST

/* ---- hostile input ------------------------------------------------------ */

START_TEST(test_hostile_inputs)
{
    stdcpu_tokenizer *tok = load_clip();
    if (!tok)
        return;
    stdcpu_test_rng rng = {0x9E3779B97F4A7C15ULL};
    int32_t ids[CTX];
    stdcpu_error err;
    size_t count;
    /* random bytes (invalid UTF-8, NULs, '&', '#') */
    char buf[4096];
    for (int rep = 0; rep < 200; rep++) {
        size_t len = (size_t)(stdcpu_test_next(&rng) % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            unsigned long long r = stdcpu_test_next(&rng);
            buf[i] = (r & 3) == 0 ? "&#;x0a' \xce\xa3"[(r >> 8) % 10] : (char)(r >> 16);
        }
        ck_assert_int_eq(stdcpu_tokenizer_encode_n(tok, buf, len, 0, ids, &count, &err), STDCPU_OK);
        ck_assert_int_eq(ids[0], BOS);
        size_t kept = count < 75 ? count : 75;
        ck_assert_int_eq(ids[kept + 1], EOS);
        for (size_t i = 1; i <= kept; i++)
            ck_assert(ids[i] >= 0 && ids[i] < 49408);
    }
    /* 1 MB: words, digits, punctuation, entities and one long letter run */
    size_t big = 1 << 20;
    char *s = malloc(big);
    static const char alphabet[] = "abcdefghij klmnop 0123 ,.;&#!?'\t\n";
    for (size_t i = 0; i < big; i++) {
        unsigned long long r = stdcpu_test_next(&rng);
        s[i] = alphabet[(r >> 20) % (sizeof alphabet - 1)];
    }
    memset(s + big / 2, 'q', big / 4); /* a 256 KB single piece */
    ck_assert_int_eq(stdcpu_tokenizer_encode_n(tok, s, big, EOS, ids, &count, &err), STDCPU_OK);
    ck_assert_uint_gt(count, 75);
    ck_assert_int_eq(ids[76], EOS);
    /* NUL bytes inside the buffer are text, not terminators */
    ck_assert_int_eq(stdcpu_tokenizer_encode_n(tok, "a\0b", 3, EOS, ids, &count, &err), STDCPU_OK);
    ck_assert_uint_eq(count, 1); /* ftfy removes the control character: "ab" */
    stdcpu_tokenizer_set_fix_text(tok, 0);
    ck_assert_int_eq(stdcpu_tokenizer_encode_n(tok, "a\0b", 3, EOS, ids, &count, &err), STDCPU_OK);
    ck_assert_uint_eq(count, 3); /* "a", "\0" (not a letter: its own piece), "b" */
    free(s);
    /* over the input limit */
    size_t huge = STDCPU_TOKENIZER_MAX_INPUT + 1;
    char *h = calloc(huge, 1);
    ck_assert_int_eq(stdcpu_tokenizer_encode_n(tok, h, huge, 0, ids, &count, &err), STDCPU_ERR_LIMIT);
    free(h);
    ck_assert_int_eq(stdcpu_tokenizer_encode(tok, NULL, 0, ids, &err), STDCPU_ERR_INVALID_ARG);
    stdcpu_tokenizer_free(tok);
}
END_TEST

/* ---- golden case -------------------------------------------------------- */

static int64_t i64_at(const stdcpu_st_tensor *t, size_t i)
{
    int64_t v;
    memcpy(&v, (const char *)t->data + 8 * i, 8);
    return v;
}

START_TEST(test_golden_tokenizer_case)
{
    stdcpu_tokenizer *tok = load_clip();
    const char *sp = stdcpu_test_shared("golden/tokenizer/strings.json");
    if (!tok || !sp)
        return;
    stdcpu_error err;
    stdcpu_json_doc *doc;
    ck_assert_msg(stdcpu_json_parse_file(&doc, sp, &err) == STDCPU_OK, "%s", err.msg);
    const char *iop = stdcpu_test_shared("golden/tokenizer/io.safetensors");
    ck_assert_ptr_nonnull(iop);
    stdcpu_safetensors *st;
    ck_assert_msg(stdcpu_st_open(&st, iop, &err) == STDCPU_OK, "%s", err.msg);
    const stdcpu_json *root = stdcpu_json_root(doc);
    const stdcpu_json *strs = stdcpu_json_get(root, "strings"), *raw = stdcpu_json_get(root, "raw_ids");
    const stdcpu_st_tensor *idx = stdcpu_st_find(st, "in.string_index");
    const stdcpu_st_tensor *pad_eos = stdcpu_st_find(st, "out.ids_pad_eos");
    const stdcpu_st_tensor *pad_zero = stdcpu_st_find(st, "out.ids_pad_zero");
    const stdcpu_st_tensor *ntok = stdcpu_st_find(st, "out.num_tokens");
    ck_assert(idx && pad_eos && pad_zero && ntok);
    ck_assert(idx->dtype == STDCPU_ST_I64 && pad_eos->dtype == STDCPU_ST_I64 && pad_zero->dtype == STDCPU_ST_I64);
    size_t n = (size_t)idx->numel;
    ck_assert_uint_eq(n, 30);
    ck_assert_int_eq(pad_eos->shape[1], CTX);
    /* ftfy = identity (how the ids were made) and the ftfy subset (no effect
     * on these NFC strings without curly quotes, ligatures or controls) */
    for (int fix = 0; fix < 2; fix++) {
        stdcpu_tokenizer_set_fix_text(tok, fix);
        for (size_t row = 0; row < n; row++) {
            int64_t si = i64_at(idx, row);
            const stdcpu_json *sj = stdcpu_json_at(strs, (size_t)si);
            ck_assert_ptr_nonnull(sj);
            int32_t a[CTX], z[CTX];
            size_t count;
            ck_assert_int_eq(
                stdcpu_tokenizer_encode_n(tok, sj->str, sj->len, STDCPU_TOKENIZER_PAD_EOS, a, &count, &err),
                STDCPU_OK);
            ck_assert_int_eq(
                stdcpu_tokenizer_encode_n(tok, sj->str, sj->len, STDCPU_TOKENIZER_PAD_ZERO, z, NULL, &err),
                STDCPU_OK);
            ck_assert_msg((int64_t)count == i64_at(ntok, row), "row %zu: %zu tokens, want %lld", row, count,
                          (long long)i64_at(ntok, row));
            for (size_t k = 0; k < CTX; k++) {
                ck_assert_msg(a[k] == i64_at(pad_eos, row * CTX + k), "row %zu id %zu: %d != %lld (\"%s\")", row, k,
                              a[k], (long long)i64_at(pad_eos, row * CTX + k), sj->str);
                ck_assert_msg(z[k] == i64_at(pad_zero, row * CTX + k), "row %zu id %zu (pad 0)", row, k);
            }
            /* every BPE id before truncation, from strings.json raw_ids */
            const stdcpu_json *rj = stdcpu_json_at(raw, (size_t)si);
            size_t nr = stdcpu_json_count(rj);
            int32_t *all = malloc((nr + 1) * sizeof *all);
            ck_assert_int_eq(stdcpu_tokenizer_bpe(tok, sj->str, sj->len, all, nr, &count, &err), STDCPU_OK);
            ck_assert_uint_eq(count, nr);
            for (size_t k = 0; k < nr; k++) {
                int64_t want;
                ck_assert(stdcpu_json_int(stdcpu_json_at(rj, k), &want));
                ck_assert_int_eq(all[k], want);
            }
            free(all);
        }
    }
    stdcpu_st_close(st);
    stdcpu_json_free(doc);
    stdcpu_tokenizer_free(tok);
}
END_TEST

START_TEST(test_entity_names_with_nul_bytes)
{
    /* Found by fuzz/fuzz_tokenizer: an entity-like name holding NUL bytes
     * made the entity lookup read past the end of a table name. */
    stdcpu_tokenizer *tok = load_clip();
    if (!tok)
        return;
    static const char text[] = "\x00\x26\x61\x6d\x70\x00\x00\x00\x00\x00\x00\x00\x14\x01\x61\x6d\x00\x31\x3b"
                               "\x00\x20\x00\x30\xff\x46\x26\x32\x6f\x01\x00\x38";
    stdcpu_tokenizer_set_fix_text(tok, 0); /* as the fuzzer ran it: NULs reach the unescaper */
    int32_t ids[STDCPU_TOKENIZER_CONTEXT];
    size_t n;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_tokenizer_encode_n(tok, text, sizeof text - 1, 0, ids, &n, &err), STDCPU_OK);
    ck_assert_int_eq(ids[0], 49406);
    stdcpu_tokenizer_free(tok);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("tokenizer");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_utf8_decode_like_python);
    tcase_add_test(tc, test_lowercase_special_cases);
    tcase_add_test(tc, test_whitespace_runs);
    tcase_add_test(tc, test_html_entities);
    tcase_add_test(tc, test_ftfy_subset_and_nfc);
    tcase_add_test(tc, test_digits_and_contractions);
    tcase_add_test(tc, test_truncation_and_padding);
    tcase_add_test(tc, test_gz_and_hf_give_identical_ids);
    tcase_add_test(tc, test_bad_vocabularies);
    tcase_add_test(tc, test_hostile_inputs);
    tcase_add_test(tc, test_entity_names_with_nul_bytes);
    tcase_add_test(tc, test_golden_tokenizer_case);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
