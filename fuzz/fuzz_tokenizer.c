/* libFuzzer harness for the CLIP tokenizer's text path: cleanup (ftfy
 * subset, HTML unescape, whitespace, lowercase), the split regex and BPE on
 * arbitrary bytes. The vocabulary is CLIP's merges file named by
 * $STDCPU_FUZZ_BPE (e.g. ../shared/clip/bpe_simple_vocab_16e6.txt.gz). */
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nn/tokenizer.h"

static stdcpu_tokenizer *tok;

static void init(void)
{
    const char *path = getenv("STDCPU_FUZZ_BPE");
    stdcpu_error err;
    if (!path || stdcpu_tokenizer_load_bpe(&tok, path, &err) != STDCPU_OK) {
        fprintf(stderr, "fuzz_tokenizer: set STDCPU_FUZZ_BPE to CLIP's bpe_simple_vocab_16e6.txt.gz\n");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tok)
        init();
    if (!tok)
        return 0;
    int32_t ids[STDCPU_TOKENIZER_CONTEXT];
    size_t n;
    stdcpu_tokenizer_set_fix_text(tok, size > 0 && (data[0] & 1));
    stdcpu_tokenizer_encode_n(tok, (const char *)data, size, 0, ids, &n, NULL);
    return 0;
}
