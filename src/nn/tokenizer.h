/* The CLIP byte-level BPE tokenizer (openai simple_tokenizer.py / Hugging
 * Face CLIPTokenizer), reproducing the reference ids exactly.
 *
 * Vocabulary: either CLIP's bpe_simple_vocab_16e6.txt(.gz) (48894 merges;
 * ids = 256 byte characters, the same with "</w>", one per merge, then
 * <|startoftext|> 49406 and <|endoftext|> 49407) or a Hugging Face pair
 * vocab.json + merges.txt (ids from vocab.json); both give identical ids for
 * CLIP. See /work/shared/golden/README.md section 3.1.
 *
 * Encoding, in the reference order:
 *   1. UTF-8 -> code points, invalid bytes -> U+FFFD (as Python's
 *      bytes.decode("utf-8", "replace")); NUL is an ordinary character.
 *   2. ftfy.fix_text, which the real pipelines apply: by default the subset
 *      of stdcpu_unicode_fix_text (nn/unicode.h: NFC, curly quotes, Latin
 *      ligatures, full-/half-width forms, C1 controls, terminal escapes,
 *      control characters; no mojibake repair). It changes nothing in
 *      NFC text free of those characters. stdcpu_tokenizer_set_fix_text(tok,
 *      0) gives ftfy = identity, the convention of the golden ids.
 *   3. html.unescape twice (full HTML5 entity list), strip().
 *   4. whitespace_clean: every run of str.isspace() characters (space, tab,
 *      CR, LF, NBSP, U+2000.., U+001C..1F, ...) -> one space, strip.
 *   5. str.lower() (full Unicode lowercase incl. 'İ' -> "i̇" and final sigma).
 *   6. split with <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|
 *      [\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (regex module, IGNORECASE).
 *   7. per piece: UTF-8 bytes -> byte characters, "</w>" on the last, BPE
 *      (lowest-rank pair first, all its occurrences left to right).
 * Ids for the model: [bos] + the first 75 BPE ids + [eos], padded to 77.
 *
 * Character classes come from Unicode 14 (Python 3.11's unicodedata): code
 * points assigned later count as neither letter nor number, where a newer
 * `regex` module may differ. U+0345, which the reference regex matches with no
 * alternative under IGNORECASE, is dropped like white space; "'" + U+017F
 * (long s) is the contraction 's, as in the reference.
 * Hugging Face merges.txt: every line after an optional "#version" header is
 * a merge (the slow HF tokenizer would stop after 48894; CLIP has exactly
 * that many).
 *
 * Bounds: the whole input is processed (so the count of BPE tokens before
 * truncation is exact) in O(n log n) time and O(n) memory; inputs longer than
 * STDCPU_TOKENIZER_MAX_INPUT bytes are refused with STDCPU_ERR_LIMIT.
 * A loaded tokenizer is immutable: encode may run on many threads at once. */
#ifndef STDCPU_NN_TOKENIZER_H
#define STDCPU_NN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "stdcpu.h"

#define STDCPU_TOKENIZER_CONTEXT 77                  /* ids per prompt, incl. BOS and EOS */
#define STDCPU_TOKENIZER_MAX_BPE (STDCPU_TOKENIZER_CONTEXT - 2)
#define STDCPU_TOKENIZER_MAX_INPUT ((size_t)4 << 20) /* bytes of UTF-8 per call */
#define STDCPU_TOKENIZER_MAX_VOCAB_FILE ((size_t)64 << 20)

/* The two padding conventions of SDXL: tokenizer (CLIP-L) pads with EOS,
 * tokenizer_2 (OpenCLIP bigG) with 0 ('!'). */
#define STDCPU_TOKENIZER_PAD_EOS 49407
#define STDCPU_TOKENIZER_PAD_ZERO 0

typedef struct stdcpu_tokenizer stdcpu_tokenizer;

/* CLIP's merges file: gzip-compressed (bpe_simple_vocab_16e6.txt.gz) or
 * plain text (detected by the gzip magic). The memory variant copies what it
 * needs; data may be freed afterwards. */
stdcpu_status stdcpu_tokenizer_load_bpe(stdcpu_tokenizer **out, const char *path, stdcpu_error *err);
stdcpu_status stdcpu_tokenizer_load_bpe_memory(stdcpu_tokenizer **out, const void *data, size_t size,
                                               stdcpu_error *err);

/* Hugging Face vocab.json (token -> id) + merges.txt (an optional first
 * line "#version: ..." then one "a b" merge per line, in rank order). Every
 * byte character, byte character + "</w>", merge result and the two special
 * tokens must be in the vocabulary (else STDCPU_ERR_FORMAT). */
stdcpu_status stdcpu_tokenizer_load_hf(stdcpu_tokenizer **out, const char *vocab_json_path,
                                       const char *merges_path, stdcpu_error *err);
stdcpu_status stdcpu_tokenizer_load_hf_memory(stdcpu_tokenizer **out, const char *vocab_json, size_t vocab_len,
                                              const char *merges, size_t merges_len, stdcpu_error *err);

void stdcpu_tokenizer_free(stdcpu_tokenizer *tok);

/* ftfy subset on (default) or off (ftfy = identity). Call before sharing
 * the tokenizer between threads. */
void stdcpu_tokenizer_set_fix_text(stdcpu_tokenizer *tok, int enable);

size_t stdcpu_tokenizer_vocab_size(const stdcpu_tokenizer *tok);
int32_t stdcpu_tokenizer_bos(const stdcpu_tokenizer *tok); /* <|startoftext|> */
int32_t stdcpu_tokenizer_eos(const stdcpu_tokenizer *tok); /* <|endoftext|> */

/* NUL-terminated UTF-8 -> 77 ids: [bos] + BPE[:75] + [eos], then pad_id. */
stdcpu_status stdcpu_tokenizer_encode(const stdcpu_tokenizer *tok, const char *utf8, int32_t pad_id,
                                      int32_t ids[STDCPU_TOKENIZER_CONTEXT], stdcpu_error *err);
/* The same for text[0..len) (may contain NUL bytes and invalid UTF-8);
 * num_tokens (may be NULL) receives the BPE token count before truncation. */
stdcpu_status stdcpu_tokenizer_encode_n(const stdcpu_tokenizer *tok, const char *text, size_t len, int32_t pad_id,
                                        int32_t ids[STDCPU_TOKENIZER_CONTEXT], size_t *num_tokens,
                                        stdcpu_error *err);
/* All BPE ids of text[0..len) without BOS/EOS/truncation: the first
 * min(count, cap) go to ids (may be NULL when cap is 0); *count receives
 * the total. */
stdcpu_status stdcpu_tokenizer_bpe(const stdcpu_tokenizer *tok, const char *text, size_t len, int32_t *ids,
                                   size_t cap, size_t *count, stdcpu_error *err);

/* Steps 1-5 only (the text the split sees; fix_text selects step 2), as a
 * malloc'd NUL-terminated UTF-8 string (free with free()); *out_len (may be
 * NULL) gets its length. */
stdcpu_status stdcpu_tokenizer_normalize(const char *text, size_t len, int fix_text, char **out, size_t *out_len,
                                         stdcpu_error *err);

#endif
