/* Unicode support for the CLIP tokenizer, with Python 3 semantics (tables
 * generated from Python's unicodedata, Unicode 14; see
 * tools/gen/gen_unicode_tables.py): UTF-8 decoding, the character classes of
 * the split regex, str.lower(), and html.unescape().
 *
 * Text is handled as arrays of code points (uint32_t), like Python's str. */
#ifndef STDCPU_NN_UNICODE_H
#define STDCPU_NN_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define STDCPU_UNICODE_REPLACEMENT 0xFFFDu
/* str.lower() maps one code point to at most this many. */
#define STDCPU_UNICODE_LOWER_MAX 3

/* The Unicode version the tables were generated from ("14.0.0"). */
const char *stdcpu_unicode_version_string(void);

/* Decodes UTF-8 like Python's bytes.decode("utf-8", "replace"): every
 * maximal invalid subsequence (bad lead byte, truncated or overlong
 * sequence, surrogate, > U+10FFFF) becomes one U+FFFD, and decoding resumes
 * at the first byte that did not fit. NUL bytes are ordinary characters.
 * out must hold len code points (one byte never yields more than one).
 * Returns the number written. */
size_t stdcpu_utf8_decode(const char *s, size_t len, uint32_t *out);
/* Encodes one scalar value (cp <= 0x10FFFF, not a surrogate; others are
 * written as U+FFFD); returns 1..4 bytes written. */
size_t stdcpu_utf8_encode(uint32_t cp, unsigned char out[4]);

int stdcpu_unicode_is_letter(uint32_t cp);  /* \p{L}: General_Category L* */
int stdcpu_unicode_is_number(uint32_t cp);  /* \p{N}: General_Category N* */
int stdcpu_unicode_is_space(uint32_t cp);   /* str.isspace() (incl. U+001C..1F, NBSP) */
/* Neither space, letter nor number, yet matched by no alternative of the
 * reference split regex under IGNORECASE (U+0345): the split drops it. */
int stdcpu_unicode_is_split_unmatched(uint32_t cp);
/* cp matches the 's' of the contraction 's under IGNORECASE (s, U+017F). */
int stdcpu_unicode_matches_contraction_s(uint32_t cp);

/* str.lower() of one code point out of context (U+03A3 gives U+03C3);
 * writes 1..3 code points and returns the count. */
size_t stdcpu_unicode_lower_char(uint32_t cp, uint32_t out[STDCPU_UNICODE_LOWER_MAX]);
/* str.lower() of a string, including the Final_Sigma rule (U+03A3 after a
 * cased letter and not before one becomes U+03C2). out must hold
 * n * STDCPU_UNICODE_LOWER_MAX code points; returns the count written. */
size_t stdcpu_unicode_lower(const uint32_t *in, size_t n, uint32_t *out);

/* Python html.unescape(): named references of the full HTML5 list (also the
 * legacy ones without ';', with the longest-prefix rule), &#NNN; and &#xHH;
 * with html's replacement rules for invalid code points. The result is never
 * longer than the input; out must hold n code points (it may equal in).
 * Returns the count written. Deviation: Python raises on decimal references
 * of more than 4300 digits; here they are out of range (U+FFFD). */
size_t stdcpu_html_unescape(const uint32_t *in, size_t n, uint32_t *out);

/* ---- text fixing (unicode_fix.c) ---- */

/* Unicode Canonical_Combining_Class of cp (0 for starters). */
int stdcpu_unicode_ccc(uint32_t cp);

/* NFC normalisation (unicodedata.normalize("NFC", s)): full canonical
 * decomposition (Hangul included), canonical ordering, canonical composition.
 * Returns a malloc'd array in *out (free with free()) of *out_n code points,
 * or 0 when out of memory (*out is then NULL). */
int stdcpu_unicode_nfc(const uint32_t *in, size_t n, uint32_t **out, size_t *out_n);

/* The subset of ftfy.fix_text (ftfy 6 defaults) this engine implements, in
 * ftfy's order: remove_terminal_escapes (ESC [ digits/; letter),
 * fix_c1_controls (U+0080..U+009F as windows-1252), fix_latin_ligatures
 * (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ), fix_character_width (full-/half-width forms and
 * U+3000), uncurl_quotes (U+2018..201B -> ', U+201C..201F -> "),
 * remove_control_chars (U+0000..0008, 000B, 000E..001F, 007F, 206A..206F,
 * FEFF, FFF9..FFFC) and NFC. Not covered: mojibake repair (fix_encoding and
 * its helpers), ftfy's own HTML unescaping, line-break and surrogate fixes
 * (no effect after the tokenizer's whitespace cleanup / UTF-8 decoding).
 * Returns a malloc'd array like stdcpu_unicode_nfc, or 0 when out of memory. */
int stdcpu_unicode_fix_text(const uint32_t *in, size_t n, uint32_t **out, size_t *out_n);

#endif
