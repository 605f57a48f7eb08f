/* Internal to the tokenizer: the loaded vocabulary as tokenizer.c (encoding)
 * and tokenizer_vocab.c (loading) share it. */
#ifndef STDCPU_NN_TOKENIZER_INTERNAL_H
#define STDCPU_NN_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nn/tokenizer.h"

/* Merges in CLIP's file: 49152 - 256 - 2 (simple_tokenizer.py). */
#define CLIP_NUM_MERGES 48894
#define END_OF_WORD "</w>"
#define BOS_TEXT "<|startoftext|>"
#define EOS_TEXT "<|endoftext|>"

/* One merge rule: (left id, right id) -> rank and the id of the joined token.
 * Symbols are always vocabulary ids: each string has one id, so comparing
 * ids is comparing strings, as the reference does. */
typedef struct merge_slot {
    uint64_t key; /* left << 32 | right; EMPTY_KEY when free */
    int32_t rank;
    int32_t result;
} merge_slot;
#define EMPTY_KEY UINT64_MAX

struct stdcpu_tokenizer {
    int32_t byte_id[256];     /* token of byte b's character (bytes_to_unicode) */
    int32_t byte_end_id[256]; /* token of that character + "</w>" (last of a word) */
    int32_t bos_id, eos_id;
    size_t vocab_size;
    merge_slot *merges; /* open addressing, capacity merges_mask + 1 (power of 2) */
    size_t merges_mask;
    size_t num_merges;
    int fix_text; /* apply the ftfy subset (stdcpu_unicode_fix_text) */
};

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline const merge_slot *merge_find(const stdcpu_tokenizer *tok, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = (size_t)mix64(key) & tok->merges_mask;
    while (tok->merges[i].key != EMPTY_KEY) {
        if (tok->merges[i].key == key)
            return &tok->merges[i];
        i = (i + 1) & tok->merges_mask;
    }
    return NULL;
}

#endif
