/* The CLIP byte-level BPE tokenizer: text cleanup, the split and BPE (the
 * vocabulary loaders are in tokenizer_vocab.c). The algorithm and its
 * reference are described in nn/tokenizer.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/tokenizer.h"
#include "nn/tokenizer_internal.h"
#include "nn/unicode.h"

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

/* A candidate merge of symbol `pos` with its right neighbour. A pair's rank
 * identifies it (one rank per pair), so a candidate is still valid when the
 * pair now at pos has the same rank. */
typedef struct bpe_cand {
    int32_t rank, pos;
} bpe_cand;

/* Growable scratch reused across the pieces of one call. */
typedef struct bpe_work {
    bpe_sym *sym;
    size_t sym_cap;
    bpe_cand *heap, *pending;
    size_t heap_n, heap_cap, pending_n, pending_cap;
    /* where the ids go */
    int32_t *ids;
    size_t ids_cap, count;
} bpe_work;

static int cand_less(const bpe_cand *a, const bpe_cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

/* Room for one more element in a growable candidate array (0: no memory). */
static int cand_room(bpe_cand **a, size_t n, size_t *cap)
{
    if (n < *cap)
        return 1;
    size_t ncap = *cap < 64 ? 64 : *cap * 2;
    bpe_cand *na = realloc(*a, ncap * sizeof *na);
    if (!na)
        return 0;
    *a = na;
    *cap = ncap;
    return 1;
}

static int heap_push(bpe_work *w, bpe_cand c)
{
    if (!cand_room(&w->heap, w->heap_n, &w->heap_cap))
        return 0;
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
    return 1;
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

/* The merge rule of the pair starting at symbol pos, or NULL. */
static const merge_slot *pair_at(const stdcpu_tokenizer *tok, const bpe_work *w, int32_t pos)
{
    if (pos < 0 || w->sym[pos].id < 0 || w->sym[pos].next < 0)
        return NULL;
    return merge_find(tok, w->sym[pos].id, w->sym[w->sym[pos].next].id);
}

/* Queues the pair starting at symbol pos if it is a merge rule (0: no memory). */
static int consider_pair(const stdcpu_tokenizer *tok, bpe_work *w, int32_t pos, int to_pending)
{
    const merge_slot *m = pair_at(tok, w, pos);
    if (!m)
        return 1;
    bpe_cand c = {m->rank, pos};
    if (!to_pending)
        return heap_push(w, c);
    if (!cand_room(&w->pending, w->pending_n, &w->pending_cap))
        return 0;
    w->pending[w->pending_n++] = c;
    return 1;
}

static const merge_slot *cand_valid(const stdcpu_tokenizer *tok, const bpe_work *w, const bpe_cand *c)
{
    const merge_slot *m = pair_at(tok, w, c->pos);
    return m && m->rank == c->rank ? m : NULL;
}

static void emit_id(bpe_work *w, int32_t id)
{
    if (w->count < w->ids_cap)
        w->ids[w->count] = id;
    w->count++;
}

#define BPE_NOMEM(err) stdcpu_fail(err, STDCPU_ERR_NOMEM, "tokenizer: out of memory (BPE)")

/* BPE of one piece given as UTF-8 bytes, in the reference's order: take the
 * lowest-ranked pair present, merge all its occurrences left to right, repeat.
 * With a heap ordered by (rank, position) one "round" pops every candidate of
 * the current rank in position order; pairs created during a round are
 * queued only after it, exactly as the reference recomputes its minimum
 * only after a full pass. O(n log n) time, O(n) memory in the piece length
 * (at most 3n candidates: n - 1 initial pairs, two per merge). */
static stdcpu_status bpe_piece(const stdcpu_tokenizer *tok, bpe_work *w, const unsigned char *bytes, size_t n,
                               stdcpu_error *err)
{
    if (n > INT32_MAX)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "tokenizer: piece too long");
    if (n > w->sym_cap) {
        size_t cap = n < 64 ? 64 : n;
        bpe_sym *s = realloc(w->sym, cap * sizeof *s);
        if (!s)
            return BPE_NOMEM(err);
        w->sym = s;
        w->sym_cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        w->sym[i].id = i + 1 == n ? tok->byte_end_id[bytes[i]] : tok->byte_id[bytes[i]];
        w->sym[i].prev = (int32_t)i - 1;
        w->sym[i].next = i + 1 == n ? -1 : (int32_t)i + 1;
    }
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (!consider_pair(tok, w, (int32_t)i, 0))
            return BPE_NOMEM(err);
    while (w->heap_n > 0) {
        bpe_cand c = heap_pop(w);
        const merge_slot *m = cand_valid(tok, w, &c);
        if (!m)
            continue;
        int32_t rank = c.rank;
        w->pending_n = 0;
        for (;;) {
            /* merge c.pos with its right neighbour */
            bpe_sym *s = &w->sym[c.pos];
            int32_t right = s->next;
            s->id = m->result;
            s->next = w->sym[right].next;
            if (s->next >= 0)
                w->sym[s->next].prev = c.pos;
            w->sym[right].id = -1;
            if (!consider_pair(tok, w, s->prev, 1) || !consider_pair(tok, w, c.pos, 1))
                return BPE_NOMEM(err);
            /* the next valid candidate of the same rank, if any */
            m = NULL;
            while (!m && w->heap_n > 0 && w->heap[0].rank == rank) {
                c = heap_pop(w);
                m = cand_valid(tok, w, &c);
            }
            if (!m)
                break;
        }
        for (size_t i = 0; i < w->pending_n; i++)
            if (cand_valid(tok, w, &w->pending[i]) && !heap_push(w, w->pending[i]))
                return BPE_NOMEM(err);
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
