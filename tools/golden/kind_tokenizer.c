/* kind "tokenizer" (golden README 3.1): strings -> 77 ids with both padding
 * conventions, and the BPE token count before truncation. The golden ids
 * were made with ftfy = identity, so fix-text is off here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "golden.h"
#include "nn/tokenizer.h"

stdcpu_status golden_kind_tokenizer(golden_case *gc, stdcpu_error *err)
{
    char path[4200];
    STDCPU_TRY(golden_model_path(gc, "bpe_vocab", path, sizeof path, err));
    stdcpu_tokenizer *tok;
    STDCPU_TRY(stdcpu_tokenizer_load_bpe(&tok, path, err));
    stdcpu_tokenizer_set_fix_text(tok, 0);
    const int64_t ctx = stdcpu_json_get_int(gc->params, "context_length", STDCPU_TOKENIZER_CONTEXT);
    stdcpu_json_doc *doc = NULL;
    int64_t *index = NULL, *ids = NULL, *counts = NULL;
    const stdcpu_st_tensor *ti;
    stdcpu_status s;
    if (ctx != STDCPU_TOKENIZER_CONTEXT) {
        s = stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "context_length %lld (only 77)", (long long)ctx);
        goto done;
    }
    golden_case_file(gc, stdcpu_json_get_str(gc->params, "strings_file", "strings.json"), path, sizeof path);
    if ((s = stdcpu_json_parse_file(&doc, path, err)) || (s = golden_i64(gc, "in.string_index", &index, &ti, err)))
        goto done;
    const stdcpu_json *strings = stdcpu_json_get(stdcpu_json_root(doc), "strings");
    const size_t N = (size_t)ti->numel;
    ids = malloc(N * (size_t)ctx * sizeof *ids);
    counts = malloc(N * sizeof *counts);
    if (!ids || !counts) {
        s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        goto done;
    }
    const stdcpu_json *pads = stdcpu_json_get(gc->params, "pad_ids");
    for (size_t p = 0; p < stdcpu_json_count(pads); p++) {
        const stdcpu_json *pad = stdcpu_json_at(pads, p);
        int64_t pad_id;
        if (!stdcpu_json_int(pad, &pad_id)) {
            s = stdcpu_fail(err, STDCPU_ERR_FORMAT, "pad_ids.%s is not an integer", pad->key);
            goto done;
        }
        for (size_t i = 0; i < N; i++) {
            const stdcpu_json *str = stdcpu_json_at(strings, (size_t)index[i]);
            if (!str || str->type != STDCPU_JSON_STRING) {
                s = stdcpu_fail(err, STDCPU_ERR_FORMAT, "strings[%lld] is missing", (long long)index[i]);
                goto done;
            }
            int32_t t[STDCPU_TOKENIZER_CONTEXT];
            size_t n;
            if ((s = stdcpu_tokenizer_encode_n(tok, str->str, str->len, (int32_t)pad_id, t, &n, err)))
                goto done;
            for (int k = 0; k < STDCPU_TOKENIZER_CONTEXT; k++)
                ids[i * STDCPU_TOKENIZER_CONTEXT + (size_t)k] = t[k];
            counts[i] = (int64_t)n;
        }
        char name[256];
        snprintf(name, sizeof name, "out.%s", pad->key);
        golden_check_i64(gc, name, ids, N * (size_t)ctx);
    }
    golden_check_i64(gc, "out.num_tokens", counts, N);
done:
    free(index);
    free(ids);
    free(counts);
    stdcpu_json_free(doc);
    stdcpu_tokenizer_free(tok);
    return s;
}
