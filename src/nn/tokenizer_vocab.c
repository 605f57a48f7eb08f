/* CLIP tokenizer vocabularies: CLIP's merges file (gzip or plain) and
 * Hugging Face vocab.json + merges.txt, into the merge table that
 * tokenizer.c encodes with. See nn/tokenizer.h. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/error.h"
#include "core/json.h"
#include "nn/tokenizer_internal.h"
#include "nn/unicode.h"

/* ---- hashing ------------------------------------------------------------ */

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
