/* The CLIP byte-level BPE tokenizer: vocabulary loading (CLIP merges file or
 * Hugging Face vocab.json + merges.txt), text cleanup, the split and BPE.
 * The algorithm and its reference are described in nn/tokenizer.h. */
#include "config.h"

#include "nn/tokenizer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/json.h"
#include "nn/unicode.h"

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

/* ---- hashing ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then mixed */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return mix64(h);
}

static size_t table_capacity(size_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    return cap;
}

/* Load-time map token string -> id (the strings are owned by the caller). */
typedef struct str_slot {
    const char *s;
    uint32_t len;
    int32_t id;
} str_slot;

typedef struct str_map {
    str_slot *slots;
    size_t mask;
} str_map;

static stdcpu_status str_map_init(str_map *m, size_t n, stdcpu_error *err)
{
    size_t cap = table_capacity(n);
    m->slots = calloc(cap, sizeof *m->slots);
    m->mask = cap - 1;
    if (!m->slots)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory (vocabulary map)");
    return STDCPU_OK;
}

/* Inserts or overwrites (the last id of a duplicate string wins, like a
 * Python dict built from a list). */
static void str_map_put(str_map *m, const char *s, size_t len, int32_t id)
{
    size_t i = (size_t)hash_bytes(s, len) & m->mask;
    while (m->slots[i].s) {
        if (m->slots[i].len == len && memcmp(m->slots[i].s, s, len) == 0) {
            m->slots[i].id = id;
            return;
        }
        i = (i + 1) & m->mask;
    }
    m->slots[i].s = s;
    m->slots[i].len = (uint32_t)len;
    m->slots[i].id = id;
}

static int32_t str_map_get(const str_map *m, const char *s, size_t len)
{
    size_t i = (size_t)hash_bytes(s, len) & m->mask;
    while (m->slots[i].s) {
        if (m->slots[i].len == len && memcmp(m->slots[i].s, s, len) == 0)
            return m->slots[i].id;
        i = (i + 1) & m->mask;
    }
    return -1;
}

static const merge_slot *merge_find(const stdcpu_tokenizer *tok, int32_t a, int32_t b)
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

/* Later ranks overwrite earlier ones (bpe_ranks = dict(zip(merges, range))). */
static void merge_put(stdcpu_tokenizer *tok, int32_t a, int32_t b, int32_t rank, int32_t result)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = (size_t)mix64(key) & tok->merges_mask;
    while (tok->merges[i].key != EMPTY_KEY && tok->merges[i].key != key)
        i = (i + 1) & tok->merges_mask;
    if (tok->merges[i].key == EMPTY_KEY)
        tok->num_merges++;
    tok->merges[i].key = key;
    tok->merges[i].rank = rank;
    tok->merges[i].result = result;
}

/* ---- loading ------------------------------------------------------------ */

/* bytes_to_unicode(): byte b -> the code point standing for it. */
static uint32_t byte_char(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
        return b;
    unsigned n = 0; /* rank of b among the remapped bytes 0..32, 127..160, 173 */
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255)))
            n++;
    return 256 + n;
}

/* Byte b's character in UTF-8 (optionally + "</w>"); returns the length. */
static size_t byte_token(unsigned b, int end, char out[8])
{
    size_t n = stdcpu_utf8_encode(byte_char(b), (unsigned char *)out);
    if (end) {
        memcpy(out + n, END_OF_WORD, 4);
        n += 4;
    }
    return n;
}

static stdcpu_status tok_alloc(stdcpu_tokenizer **out, size_t num_merges, stdcpu_error *err)
{
    stdcpu_tokenizer *tok = calloc(1, sizeof *tok);
    size_t cap = table_capacity(num_merges);
    if (tok)
        tok->merges = malloc(cap * sizeof *tok->merges);
    if (!tok || !tok->merges) {
        free(tok);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory");
    }
    for (size_t i = 0; i < cap; i++)
        tok->merges[i].key = EMPTY_KEY;
    tok->merges_mask = cap - 1;
    tok->fix_text = 1;
    *out = tok;
    return STDCPU_OK;
}

void stdcpu_tokenizer_free(stdcpu_tokenizer *tok)
{
    if (!tok)
        return;
    free(tok->merges);
    free(tok);
}

/* Fills byte ids and special ids from the vocabulary map. */
static stdcpu_status resolve_fixed_ids(stdcpu_tokenizer *tok, const str_map *vocab, stdcpu_error *err)
{
    char buf[8];
    for (unsigned b = 0; b < 256; b++) {
        for (int end = 0; end < 2; end++) {
            size_t n = byte_token(b, end, buf);
            int32_t id = str_map_get(vocab, buf, n);
            if (id < 0)
                return stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: vocabulary lacks the token of byte 0x%02x%s",
                                   b, end ? " + </w>" : "");
            (end ? tok->byte_end_id : tok->byte_id)[b] = id;
        }
    }
    tok->bos_id = str_map_get(vocab, BOS_TEXT, strlen(BOS_TEXT));
    tok->eos_id = str_map_get(vocab, EOS_TEXT, strlen(EOS_TEXT));
    if (tok->bos_id < 0 || tok->eos_id < 0)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: vocabulary lacks %s or %s", BOS_TEXT, EOS_TEXT);
    return STDCPU_OK;
}

/* One merges line "a b" (split on ASCII white space, exactly two parts). */
static int split_merge_line(const char *line, size_t len, const char **a, size_t *alen, const char **b, size_t *blen)
{
    const char *part[3];
    size_t plen[3], np = 0, i = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\v' || line[i] == '\f'))
            i++;
        if (i == len)
            break;
        size_t s = i;
        while (i < len && !(line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\v' || line[i] == '\f'))
            i++;
        if (np == 3)
            return 0;
        part[np] = line + s;
        plen[np++] = i - s;
    }
    if (np != 2)
        return 0;
    *a = part[0], *alen = plen[0], *b = part[1], *blen = plen[1];
    return 1;
}

/* Inflates gzip (or zlib) data, concatenated members included, up to
 * STDCPU_TOKENIZER_MAX_VOCAB_FILE bytes. */
static stdcpu_status gunzip(const unsigned char *in, size_t in_len, char **out, size_t *out_len, stdcpu_error *err)
{
    size_t cap = in_len * 4 + 4096, len = 0;
    if (cap > STDCPU_TOKENIZER_MAX_VOCAB_FILE)
        cap = STDCPU_TOKENIZER_MAX_VOCAB_FILE;
    char *buf = malloc(cap + 1);
    if (!buf)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory (inflate)");
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) {
        free(buf);
        return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "tokenizer: inflateInit failed");
    }
    stdcpu_status st = STDCPU_OK;
    size_t pos = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= STDCPU_TOKENIZER_MAX_VOCAB_FILE) {
                st = stdcpu_fail(err, STDCPU_ERR_LIMIT, "tokenizer: vocabulary inflates beyond %zu bytes",
                                 STDCPU_TOKENIZER_MAX_VOCAB_FILE);
                break;
            }
            size_t ncap = cap * 2 > STDCPU_TOKENIZER_MAX_VOCAB_FILE ? STDCPU_TOKENIZER_MAX_VOCAB_FILE : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory (inflate)");
                break;
            }
            buf = nb, cap = ncap;
        }
        size_t in_chunk = in_len - pos > UINT_MAX ? UINT_MAX : in_len - pos;
        size_t out_chunk = cap - len > UINT_MAX ? UINT_MAX : cap - len;
        zs.next_in = (Bytef *)(uintptr_t)(in + pos);
        zs.avail_in = (uInt)in_chunk;
        zs.next_out = (Bytef *)buf + len;
        zs.avail_out = (uInt)out_chunk;
        int rc = inflate(&zs, Z_NO_FLUSH);
        pos += in_chunk - zs.avail_in;
        len += out_chunk - zs.avail_out;
        if (rc == Z_STREAM_END) {
            /* Another gzip member follows? */
            if (pos + 2 <= in_len && in[pos] == 0x1f && in[pos + 1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            break;
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && pos == in_len) {
            st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: truncated gzip data");
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: corrupt gzip data (%s)", zs.msg ? zs.msg : "?");
            break;
        }
    }
    inflateEnd(&zs);
    if (st != STDCPU_OK) {
        free(buf);
        return st;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return STDCPU_OK;
}

static stdcpu_status read_file(const char *path, char **out, size_t *out_len, stdcpu_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot open", path);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    stdcpu_status st = STDCPU_OK;
    while (buf) {
        if (len == cap) {
            if (cap >= STDCPU_TOKENIZER_MAX_VOCAB_FILE) {
                st = stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: larger than %zu bytes", path,
                                 STDCPU_TOKENIZER_MAX_VOCAB_FILE);
                break;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb)
                break;
            buf = nb, cap *= 2;
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
    if (!buf || (st == STDCPU_OK && len > cap)) {
        free(buf);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory", path);
    }
    if (st != STDCPU_OK) {
        free(buf);
        return st;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return STDCPU_OK;
}

/* CLIP merges text -> tokenizer (ids as in simple_tokenizer.py). */
static stdcpu_status load_bpe_text(stdcpu_tokenizer **out, const char *text, size_t len, stdcpu_error *err)
{
    /* lines[1 : 1 + CLIP_NUM_MERGES] */
    size_t *line_start = malloc((CLIP_NUM_MERGES + 1) * sizeof *line_start);
    size_t *line_len = malloc((CLIP_NUM_MERGES + 1) * sizeof *line_len);
    /* Token strings: 512 byte tokens (<= 8 bytes), every merge result (no
     * longer than its line) and the two special tokens. */
    size_t store_cap = len + 512 * 8 + 64, store_len = 0;
    char *store = malloc(store_cap);
    char *joined = malloc(len + 1); /* a+b of one line */
    str_map vocab = {0};
    stdcpu_tokenizer *tok = NULL;
    stdcpu_status st = STDCPU_OK;
    if (!line_start || !line_len || !store || !joined) {
        st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    size_t nl = 0, pos = 0;
    while (nl <= CLIP_NUM_MERGES && pos <= len) { /* line 0 is the header */
        const char *nlp = memchr(text + pos, '\n', len - pos);
        size_t e = nlp ? (size_t)(nlp - text) : len;
        line_start[nl] = pos;
        line_len[nl++] = e - pos;
        if (!nlp)
            break;
        pos = e + 1;
    }
    if (nl <= CLIP_NUM_MERGES) {
        st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: merges file has %zu merge lines, need %d",
                         nl ? nl - 1 : 0, CLIP_NUM_MERGES);
        goto done;
    }
    if ((st = str_map_init(&vocab, 512 + CLIP_NUM_MERGES + 2, err)) != STDCPU_OK)
        goto done;
    int32_t next_id = 0;
    for (int end = 0; end < 2; end++) {
        /* vocab order: the bs bytes first, then the remapped ones */
        for (int pass = 0; pass < 2; pass++)
            for (unsigned b = 0; b < 256; b++) {
                if ((byte_char(b) == b) != (pass == 0))
                    continue;
                size_t n = byte_token(b, end, store + store_len);
                str_map_put(&vocab, store + store_len, n, next_id++);
                store_len += n;
            }
    }
    for (size_t m = 1; m <= CLIP_NUM_MERGES; m++) {
        const char *a, *b;
        size_t alen, blen;
        if (!split_merge_line(text + line_start[m], line_len[m], &a, &alen, &b, &blen)) {
            st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: merges line %zu is not two tokens", m + 1);
            goto done;
        }
        memcpy(store + store_len, a, alen);
        memcpy(store + store_len + alen, b, blen);
        str_map_put(&vocab, store + store_len, alen + blen, next_id++);
        store_len += alen + blen;
    }
    memcpy(store + store_len, BOS_TEXT EOS_TEXT, strlen(BOS_TEXT EOS_TEXT));
    str_map_put(&vocab, store + store_len, strlen(BOS_TEXT), next_id++);
    str_map_put(&vocab, store + store_len + strlen(BOS_TEXT), strlen(EOS_TEXT), next_id++);
    store_len += strlen(BOS_TEXT EOS_TEXT);

    if ((st = tok_alloc(&tok, CLIP_NUM_MERGES, err)) != STDCPU_OK)
        goto done;
    tok->vocab_size = (size_t)next_id;
    if ((st = resolve_fixed_ids(tok, &vocab, err)) != STDCPU_OK)
        goto done;
    for (size_t m = 1; m <= CLIP_NUM_MERGES; m++) {
        const char *a, *b;
        size_t alen, blen;
        split_merge_line(text + line_start[m], line_len[m], &a, &alen, &b, &blen);
        int32_t ia = str_map_get(&vocab, a, alen), ib = str_map_get(&vocab, b, blen);
        /* a or b outside the vocabulary: the pair can never form, skip it */
        if (ia < 0 || ib < 0)
            continue;
        /* a+b is in the vocabulary by construction */
        memcpy(joined, a, alen);
        memcpy(joined + alen, b, blen);
        int32_t r = str_map_get(&vocab, joined, alen + blen);
        merge_put(tok, ia, ib, (int32_t)(m - 1), r);
    }
done:
    if (st != STDCPU_OK) {
        stdcpu_tokenizer_free(tok);
        tok = NULL;
    }
    *out = tok;
    free(vocab.slots);
    free(store);
    free(joined);
    free(line_start);
    free(line_len);
    return st;
}

stdcpu_status stdcpu_tokenizer_load_bpe_memory(stdcpu_tokenizer **out, const void *data, size_t size,
                                               stdcpu_error *err)
{
    if (!out || (!data && size))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    const unsigned char *d = data;
    if (size >= 2 && d[0] == 0x1f && d[1] == 0x8b) {
        char *text = NULL;
        size_t len = 0;
        STDCPU_TRY(gunzip(d, size, &text, &len, err));
        stdcpu_status st = load_bpe_text(out, text, len, err);
        free(text);
        return st;
    }
    if (size > STDCPU_TOKENIZER_MAX_VOCAB_FILE)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "tokenizer: merges text larger than %zu bytes",
                           STDCPU_TOKENIZER_MAX_VOCAB_FILE);
    return load_bpe_text(out, (const char *)data, size, err);
}

stdcpu_status stdcpu_tokenizer_load_bpe(stdcpu_tokenizer **out, const char *path, stdcpu_error *err)
{
    if (!out || !path)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    STDCPU_TRY(read_file(path, &data, &len, err));
    stdcpu_status st = stdcpu_tokenizer_load_bpe_memory(out, data, len, err);
    free(data);
    if (st != STDCPU_OK)
        stdcpu_fail_prefix(err, "%s: ", path);
    return st;
}

/* vocab.json + merges.txt. */
stdcpu_status stdcpu_tokenizer_load_hf_memory(stdcpu_tokenizer **out, const char *vocab_json, size_t vocab_len,
                                              const char *merges, size_t merges_len, stdcpu_error *err)
{
    if (!out || (!vocab_json && vocab_len) || (!merges && merges_len))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    stdcpu_json_doc *doc = NULL;
    str_map vocab = {0};
    stdcpu_tokenizer *tok = NULL;
    char *joined = NULL;
    stdcpu_status st = stdcpu_json_parse(&doc, vocab_json ? vocab_json : "", vocab_len, err);
    if (st != STDCPU_OK) {
        stdcpu_fail_prefix(err, "tokenizer: vocab.json: ");
        return st;
    }
    const stdcpu_json *root = stdcpu_json_root(doc);
    if (!root || root->type != STDCPU_JSON_OBJECT) {
        st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: vocab.json is not an object");
        goto done;
    }
    size_t n = stdcpu_json_count(root), max_id = 0;
    if ((st = str_map_init(&vocab, n, err)) != STDCPU_OK)
        goto done;
    for (size_t i = 0; i < n; i++) { /* in document order: a duplicate key's last id wins, as json.load */
        const stdcpu_json *v = stdcpu_json_at(root, i);
        int64_t id;
        if (!stdcpu_json_int(v, &id) || id < 0 || id >= INT32_MAX || v->key_len > UINT32_MAX) {
            st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: vocab.json: bad id for token %zu", i);
            goto done;
        }
        str_map_put(&vocab, v->key, v->key_len, (int32_t)id);
        if ((size_t)id + 1 > max_id)
            max_id = (size_t)id + 1;
    }
    /* merges.txt lines; the first one is "#version: ..." in HF files. */
    size_t nlines = 1;
    for (size_t i = 0; i < merges_len; i++)
        nlines += merges[i] == '\n';
    if ((st = tok_alloc(&tok, nlines, err)) != STDCPU_OK)
        goto done;
    tok->vocab_size = max_id;
    if ((st = resolve_fixed_ids(tok, &vocab, err)) != STDCPU_OK)
        goto done;
    joined = malloc(merges_len + 1);
    if (!joined) {
        st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    size_t pos = 0, line_no = 0;
    int32_t rank = 0;
    while (pos < merges_len) {
        const char *line = merges + pos;
        const char *nlp = memchr(line, '\n', merges_len - pos);
        size_t len = nlp ? (size_t)(nlp - line) : merges_len - pos;
        pos += len + (nlp != NULL);
        line_no++;
        if (line_no == 1 && len >= 8 && memcmp(line, "#version", 8) == 0)
            continue;
        const char *a, *b;
        size_t alen, blen;
        if (!split_merge_line(line, len, &a, &alen, &b, &blen)) {
            size_t k = 0;
            while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
                k++;
            if (k == len)
                continue; /* blank line (e.g. the end of the file) */
            st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: merges.txt line %zu is not two tokens", line_no);
            goto done;
        }
        int32_t ia = str_map_get(&vocab, a, alen), ib = str_map_get(&vocab, b, blen);
        memcpy(joined, a, alen);
        memcpy(joined + alen, b, blen);
        int32_t r = str_map_get(&vocab, joined, alen + blen);
        if (ia >= 0 && ib >= 0 && r < 0) {
            st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "tokenizer: merges.txt line %zu: result not in vocab.json",
                             line_no);
            goto done;
        }
        if (ia >= 0 && ib >= 0)
            merge_put(tok, ia, ib, rank, r);
        rank++;
    }
done:
    if (st != STDCPU_OK) {
        stdcpu_tokenizer_free(tok);
        tok = NULL;
    }
    *out = tok;
    free(joined);
    free(vocab.slots);
    stdcpu_json_free(doc);
    return st;
}

stdcpu_status stdcpu_tokenizer_load_hf(stdcpu_tokenizer **out, const char *vocab_json_path, const char *merges_path,
                                       stdcpu_error *err)
{
    if (!out || !vocab_json_path || !merges_path)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    char *v = NULL, *m = NULL;
    size_t vlen = 0, mlen = 0;
    STDCPU_TRY(read_file(vocab_json_path, &v, &vlen, err));
    stdcpu_status st = read_file(merges_path, &m, &mlen, err);
    if (st != STDCPU_OK) {
        free(v);
        return st;
    }
    st = stdcpu_tokenizer_load_hf_memory(out, v, vlen, m, mlen, err);
    free(v);
    free(m);
    return st;
}

size_t stdcpu_tokenizer_vocab_size(const stdcpu_tokenizer *tok) { return tok->vocab_size; }
void stdcpu_tokenizer_set_fix_text(stdcpu_tokenizer *tok, int enable) { tok->fix_text = enable != 0; }
int32_t stdcpu_tokenizer_bos(const stdcpu_tokenizer *tok) { return tok->bos_id; }
int32_t stdcpu_tokenizer_eos(const stdcpu_tokenizer *tok) { return tok->eos_id; }

/* ---- cleanup ------------------------------------------------------------ */

/* Steps 1-5 of the header: UTF-8 -> cleaned, lowercased code points
 * (malloc'd, *n of them). */
static stdcpu_status clean_text(const char *text, size_t len, int fix_text, uint32_t **out, size_t *n_out,
                                stdcpu_error *err)
{
    if (len > STDCPU_TOKENIZER_MAX_INPUT)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "tokenizer: input of %zu bytes exceeds the limit of %zu", len,
                           STDCPU_TOKENIZER_MAX_INPUT);
    uint32_t *cp = malloc((len + 1) * sizeof *cp);
    if (!cp)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory");
    size_t n = stdcpu_utf8_decode(text, len, cp);
    if (fix_text) { /* ftfy.fix_text, the subset of nn/unicode.h */
        uint32_t *fixed;
        if (!stdcpu_unicode_fix_text(cp, n, &fixed, &n)) {
            free(cp);
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory");
        }
        free(cp);
        cp = fixed;
    }
    n = stdcpu_html_unescape(cp, n, cp);
    n = stdcpu_html_unescape(cp, n, cp);
    /* strip() + whitespace_clean: runs of white space -> ' ', strip */
    size_t w = 0;
    int pending_space = 0;
    for (size_t i = 0; i < n; i++) {
        if (stdcpu_unicode_is_space(cp[i])) {
            pending_space = w > 0;
            continue;
        }
        if (pending_space)
            cp[w++] = ' ';
        pending_space = 0;
        cp[w++] = cp[i];
    }
    n = w;
    /* str.lower(): count first (a few characters expand) */
    size_t m = 0;
    uint32_t tmp[STDCPU_UNICODE_LOWER_MAX];
    for (size_t i = 0; i < n; i++)
        m += stdcpu_unicode_lower_char(cp[i], tmp);
    uint32_t *low = malloc((m + 1) * sizeof *low);
    if (!low) {
        free(cp);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t got = stdcpu_unicode_lower(cp, n, low);
    free(cp);
    if (got != m) {
        free(low);
        return stdcpu_fail(err, STDCPU_ERR_INTERNAL, "tokenizer: lowercase length mismatch");
    }
    *out = low;
    *n_out = m;
    return STDCPU_OK;
}

stdcpu_status stdcpu_tokenizer_normalize(const char *text, size_t len, int fix_text, char **out, size_t *out_len,
                                         stdcpu_error *err)
{
    if (!out || (!text && len))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "tokenizer: NULL argument");
    *out = NULL;
    uint32_t *cp = NULL;
    size_t n = 0;
    STDCPU_TRY(clean_text(text ? text : "", len, fix_text, &cp, &n, err));
    char *s = malloc(n * 4 + 1);
    if (!s) {
        free(cp);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += stdcpu_utf8_encode(cp[i], (unsigned char *)s + w);
    s[w] = '\0';
    free(cp);
    *out = s;
    if (out_len)
        *out_len = w;
    return STDCPU_OK;
}

/* ---- BPE ------------------------------------------------------------------ */

/* A symbol of the word being merged: a doubly linked list over the piece's
 * bytes; index = position of its first byte, so list order = index order. */
typedef struct bpe_sym {
    int32_t id;   /* vocabulary id; -1 once merged into its left neighbour */
    int32_t prev; /* -1 at the start */
    int32_t next; /* -1 at the end */
} bpe_sym;

/* A candidate merge of symbol `pos` with its right neighbour. */
typedef struct bpe_cand {
    int32_t rank, pos, left, right;
} bpe_cand;

/* Growable scratch reused across the pieces of one call. */
typedef struct bpe_work {
    bpe_sym *sym;
    bpe_cand *heap, *pending;
    size_t cap; /* symbols; heap and pending hold 3*cap */
    size_t heap_n, pending_n;
    /* where the ids go */
    int32_t *ids;
    size_t ids_cap, count;
} bpe_work;

static int cand_less(const bpe_cand *a, const bpe_cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(bpe_work *w, bpe_cand c)
{
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static bpe_cand heap_pop(bpe_work *w)
{
    bpe_cand top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && cand_less(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!cand_less(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

/* Queues the pair starting at symbol pos (if it is a merge rule). */
static void consider_pair(const stdcpu_tokenizer *tok, bpe_work *w, int32_t pos, int to_pending)
{
    if (pos < 0 || w->sym[pos].next < 0)
        return;
    int32_t l = w->sym[pos].id, r = w->sym[w->sym[pos].next].id;
    const merge_slot *m = merge_find(tok, l, r);
    if (!m)
        return;
    bpe_cand c = {m->rank, pos, l, r};
    if (to_pending)
        w->pending[w->pending_n++] = c;
    else
        heap_push(w, c);
}

static int cand_valid(const bpe_work *w, const bpe_cand *c)
{
    const bpe_sym *s = &w->sym[c->pos];
    return s->id == c->left && s->next >= 0 && w->sym[s->next].id == c->right;
}

static void emit_id(bpe_work *w, int32_t id)
{
    if (w->count < w->ids_cap)
        w->ids[w->count] = id;
    w->count++;
}

static stdcpu_status bpe_reserve(bpe_work *w, size_t n, stdcpu_error *err)
{
    if (n <= w->cap)
        return STDCPU_OK;
    size_t cap = n < 64 ? 64 : n;
    bpe_sym *s = realloc(w->sym, cap * sizeof *s);
    if (s)
        w->sym = s;
    bpe_cand *h = s ? realloc(w->heap, 3 * cap * sizeof *h) : NULL;
    if (h)
        w->heap = h;
    bpe_cand *p = h ? realloc(w->pending, 3 * cap * sizeof *p) : NULL;
    if (!p)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory (BPE)");
    w->pending = p;
    w->cap = cap;
    return STDCPU_OK;
}

/* BPE of one piece given as UTF-8 bytes, in the reference's order: take the
 * lowest-ranked pair present, merge all its occurrences left to right, repeat.
 * With a heap ordered by (rank, position) one "round" pops every candidate of
 * the current rank in position order; pairs created during a round are
 * queued only after it, exactly as the reference recomputes its minimum
 * only after a full pass. O(n log n) in the piece length. */
static stdcpu_status bpe_piece(const stdcpu_tokenizer *tok, bpe_work *w, const unsigned char *bytes, size_t n,
                               stdcpu_error *err)
{
    if (n > INT32_MAX)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "tokenizer: piece too long");
    STDCPU_TRY(bpe_reserve(w, n, err));
    for (size_t i = 0; i < n; i++) {
        w->sym[i].id = i + 1 == n ? tok->byte_end_id[bytes[i]] : tok->byte_id[bytes[i]];
        w->sym[i].prev = (int32_t)i - 1;
        w->sym[i].next = i + 1 == n ? -1 : (int32_t)i + 1;
    }
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        consider_pair(tok, w, (int32_t)i, 0);
    while (w->heap_n > 0) {
        bpe_cand c = heap_pop(w);
        if (!cand_valid(w, &c))
            continue;
        int32_t rank = c.rank;
        w->pending_n = 0;
        for (;;) {
            /* merge c.pos with its right neighbour */
            bpe_sym *s = &w->sym[c.pos];
            int32_t right = s->next;
            s->id = merge_find(tok, c.left, c.right)->result;
            s->next = w->sym[right].next;
            if (s->next >= 0)
                w->sym[s->next].prev = c.pos;
            w->sym[right].id = -1;
            consider_pair(tok, w, s->prev, 1);
            consider_pair(tok, w, c.pos, 1);
            /* the next candidate of the same rank, if any */
            int more = 0;
            while (w->heap_n > 0 && w->heap[0].rank == rank) {
                c = heap_pop(w);
                if (cand_valid(w, &c)) {
                    more = 1;
                    break;
                }
            }
            if (!more)
                break;
        }
        for (size_t i = 0; i < w->pending_n; i++)
            if (cand_valid(w, &w->pending[i]))
                heap_push(w, w->pending[i]);
    }
    for (int32_t i = 0; i >= 0; i = w->sym[i].next)
        emit_id(w, w->sym[i].id);
    return STDCPU_OK;
}

/* ---- split ---------------------------------------------------------------- */

static int matches_ascii(const uint32_t *s, size_t n, size_t i, const char *lit)
{
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= n || s[i + k] != (unsigned char)lit[k])
            return 0;
    return 1;
}

/* Length of the contraction at i ('s 't 're 've 'm 'll 'd), or 0. */
static size_t contraction_len(const uint32_t *s, size_t n, size_t i)
{
    if (s[i] != '\'' || i + 1 >= n)
        return 0;
    uint32_t c = s[i + 1];
    if (stdcpu_unicode_matches_contraction_s(c) || c == 't' || c == 'm' || c == 'd')
        return 2;
    if (i + 2 < n) {
        uint32_t d = s[i + 2];
        if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l'))
            return 3;
    }
    return 0;
}

static int is_other(uint32_t c) /* [^\s\p{L}\p{N}] */
{
    return !stdcpu_unicode_is_space(c) && !stdcpu_unicode_is_letter(c) && !stdcpu_unicode_is_number(c) &&
           !stdcpu_unicode_is_split_unmatched(c);
}

/* Splits cleaned text and runs BPE on every piece. */
static stdcpu_status encode_cps(const stdcpu_tokenizer *tok, const uint32_t *s, size_t n, bpe_work *w,
                                stdcpu_error *err)
{
    unsigned char *bytes = NULL;
    size_t bytes_cap = 0;
    stdcpu_status st = STDCPU_OK;
    size_t i = 0;
    while (i < n && st == STDCPU_OK) {
        size_t len = 0;
        if (matches_ascii(s, n, i, BOS_TEXT)) {
            emit_id(w, tok->bos_id);
            i += strlen(BOS_TEXT);
            continue;
        }
        if (matches_ascii(s, n, i, EOS_TEXT)) {
            emit_id(w, tok->eos_id);
            i += strlen(EOS_TEXT);
            continue;
        }
        if ((len = contraction_len(s, n, i)) == 0) {
            uint32_t c = s[i];
            if (stdcpu_unicode_is_letter(c)) {
                while (i + len < n && stdcpu_unicode_is_letter(s[i + len]))
                    len++;
            } else if (stdcpu_unicode_is_number(c)) {
                len = 1;
            } else if (is_other(c)) {
                while (i + len < n && is_other(s[i + len]))
                    len++;
            } else {
                i++; /* white space, or a character no alternative matches */
                continue;
            }
        }
        if (len * 4 > bytes_cap) {
            size_t cap = len * 4 < 256 ? 256 : len * 4;
            unsigned char *nb = realloc(bytes, cap);
            if (!nb) {
                st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory");
                break;
            }
            bytes = nb, bytes_cap = cap;
        }
        size_t nb = 0;
        for (size_t k = 0; k < len; k++)
            nb += stdcpu_utf8_encode(s[i + k], bytes + nb);
        st = bpe_piece(tok, w, bytes, nb, err);
        i += len;
    }
    free(bytes);
    return st;
}

stdcpu_status stdcpu_tokenizer_bpe(const stdcpu_tokenizer *tok, const char *text, size_t len, int32_t *ids,
                                   size_t cap, size_t *count, stdcpu_error *err)
{
    if (!tok || (!text && len) || (!ids && cap))
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "tokenizer: NULL argument");
    uint32_t *cp = NULL;
    size_t n = 0;
    STDCPU_TRY(clean_text(text ? text : "", len, tok->fix_text, &cp, &n, err));
    bpe_work w = {.ids = ids, .ids_cap = cap};
    stdcpu_status st = encode_cps(tok, cp, n, &w, err);
    free(cp);
    free(w.sym);
    free(w.heap);
    free(w.pending);
    if (st == STDCPU_OK && count)
        *count = w.count;
    return st;
}

stdcpu_status stdcpu_tokenizer_encode_n(const stdcpu_tokenizer *tok, const char *text, size_t len, int32_t pad_id,
                                        int32_t ids[STDCPU_TOKENIZER_CONTEXT], size_t *num_tokens,
                                        stdcpu_error *err)
{
    if (!tok || !ids)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "tokenizer: NULL argument");
    size_t count = 0;
    STDCPU_TRY(stdcpu_tokenizer_bpe(tok, text, len, ids + 1, STDCPU_TOKENIZER_MAX_BPE, &count, err));
    size_t kept = count < STDCPU_TOKENIZER_MAX_BPE ? count : STDCPU_TOKENIZER_MAX_BPE;
    ids[0] = tok->bos_id;
    ids[1 + kept] = tok->eos_id;
    for (size_t i = kept + 2; i < STDCPU_TOKENIZER_CONTEXT; i++)
        ids[i] = pad_id;
    if (num_tokens)
        *num_tokens = count;
    return STDCPU_OK;
}

stdcpu_status stdcpu_tokenizer_encode(const stdcpu_tokenizer *tok, const char *utf8, int32_t pad_id,
                                      int32_t ids[STDCPU_TOKENIZER_CONTEXT], stdcpu_error *err)
{
    if (!utf8)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "tokenizer: NULL text");
    return stdcpu_tokenizer_encode_n(tok, utf8, strlen(utf8), pad_id, ids, NULL, err);
}
