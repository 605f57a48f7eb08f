/* .stdm files: write/read round trip, quantisation, and hostile files. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/quant.h"
#include "core/stdm.h"
#include "testutil.h"

static const char *tmp_path(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", stdcpu_test_tmpdir(), name);
    return buf;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    /* 64-byte aligned like an mmap, so the reader sees the same alignment */
    unsigned char *b = stdcpu_aligned_alloc(*len);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

/* A small model: two components, blobs, every stored dtype. */
static void write_sample(const char *path)
{
    stdcpu_stdm_writer *w;
    stdcpu_error err;
    ck_assert_msg(stdcpu_stdm_writer_open(&w, path, &err) == STDCPU_OK, "%s", err.msg);
    const char *cfg = "{\"_class_name\": \"UNet2DConditionModel\", \"in_channels\": 4}";
    ck_assert_int_eq(stdcpu_stdm_write_blob(w, "unet/config.json", cfg, strlen(cfg), &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_stdm_write_blob(w, "tokenizer/merges.txt", "a b\n", 4, &err), STDCPU_OK);
    float f[6] = {1, 2, 3, 4, 5, 6};
    int64_t s23[2] = {2, 3};
    ck_assert_int_eq(stdcpu_stdm_write_tensor(w, "unet.a.weight", STDCPU_DT_F32, 2, s23, f, NULL, &err), STDCPU_OK);
    int8_t q[6] = {-127, 0, 127, 1, 2, 3};
    float sc[2] = {0.5f, 0.25f};
    ck_assert_int_eq(stdcpu_stdm_write_tensor(w, "unet.b.weight", STDCPU_DT_I8, 2, s23, q, sc, &err), STDCPU_OK);
    uint16_t h[3] = {0x3C00, 0x4000, 0xC000};
    int64_t s3[1] = {3};
    ck_assert_int_eq(stdcpu_stdm_write_tensor(w, "vae.c.bias", STDCPU_DT_F16, 1, s3, h, NULL, &err), STDCPU_OK);
    int64_t i64 = 42;
    ck_assert_int_eq(stdcpu_stdm_write_tensor(w, "vae.scalar", STDCPU_DT_I64, 0, NULL, &i64, NULL, &err),
                     STDCPU_OK);
    ck_assert_int_eq(stdcpu_stdm_writer_set(w, "quant", "{\"mode\":\"int8\"}", &err), STDCPU_OK);
    ck_assert_msg(stdcpu_stdm_writer_finish(w, &err) == STDCPU_OK, "%s", err.msg);
}

START_TEST(test_round_trip)
{
    const char *path = tmp_path("rt.stdm");
    write_sample(path);
    stdcpu_stdm *m;
    stdcpu_error err;
    ck_assert_msg(stdcpu_stdm_open(&m, path, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_int_eq(stdcpu_stdm_verify(m, &err), STDCPU_OK);
    ck_assert_uint_eq(stdcpu_stdm_component_count(m), 3);
    ck_assert_str_eq(stdcpu_stdm_component(m, 0), "tokenizer");
    ck_assert_str_eq(stdcpu_stdm_component(m, 1), "unet");
    ck_assert_str_eq(stdcpu_stdm_component(m, 2), "vae");
    ck_assert(stdcpu_stdm_has_component(m, "vae") && !stdcpu_stdm_has_component(m, "text_encoder"));
    ck_assert_int_eq(stdcpu_json_get_int(stdcpu_stdm_config(m, "unet"), "in_channels", 0), 4);
    ck_assert_ptr_null(stdcpu_stdm_config(m, "vae"));
    ck_assert_str_eq(stdcpu_json_get_str(stdcpu_json_get(stdcpu_stdm_index(m), "quant"), "mode", ""), "int8");
    const stdcpu_stdm_blob *b = stdcpu_stdm_find_blob(m, "tokenizer/merges.txt");
    ck_assert(b && b->size == 4 && !memcmp(b->data, "a b\n", 4));
    ck_assert_uint_eq(stdcpu_stdm_tensor_count(m), 4);
    stdcpu_tensor t;
    ck_assert_int_eq(stdcpu_stdm_get(m, "unet.b.weight", &t, &err), STDCPU_OK);
    ck_assert_int_eq(t.dtype, STDCPU_DT_I8);
    ck_assert_int_eq(t.shape[1], 3);
    ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
    ck_assert_uint_eq((uintptr_t)t.scales % 64, 0);
    ck_assert(((int8_t *)t.data)[2] == 127 && t.scales[1] == 0.25f);
    ck_assert_int_eq(stdcpu_stdm_get(m, "unet.a.weight", &t, &err), STDCPU_OK);
    ck_assert(((float *)t.data)[5] == 6 && t.scales == NULL);
    const stdcpu_stdm_tensor *s = stdcpu_stdm_find(m, "vae.scalar");
    ck_assert(s && s->ndim == 0 && s->numel == 1 && *(const int64_t *)s->data == 42);
    ck_assert_int_eq(stdcpu_stdm_get(m, "unet.nope", &t, &err), STDCPU_ERR_NOT_FOUND);
    stdcpu_stdm_close(m);
}
END_TEST

START_TEST(test_abort_leaves_nothing)
{
    const char *path = tmp_path("aborted.stdm");
    stdcpu_stdm_writer *w;
    ck_assert_int_eq(stdcpu_stdm_writer_open(&w, path, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_stdm_write_blob(w, "x/y", "z", 1, NULL), STDCPU_OK);
    stdcpu_stdm_writer_abort(w);
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert_int_eq(stdcpu_stdm_writer_open(&w, "/nonexistent-dir/x.stdm", NULL), STDCPU_ERR_IO);
}
END_TEST

/* Re-seals a modified image: recomputes index and header CRCs and sizes. */
static void reseal(unsigned char *img, size_t len)
{
    uint64_t ioff = 0, isize = 0;
    for (int i = 7; i >= 0; i--) {
        ioff = ioff << 8 | img[24 + i];
        isize = isize << 8 | img[32 + i];
    }
    if (ioff + isize <= len) {
        uint32_t c = (uint32_t)crc32(0, img + ioff, (uInt)isize);
        for (int i = 0; i < 4; i++)
            img[40 + i] = (unsigned char)(c >> (8 * i));
    }
    uint32_t h = (uint32_t)crc32(0, img, 60);
    for (int i = 0; i < 4; i++)
        img[60 + i] = (unsigned char)(h >> (8 * i));
}

static stdcpu_status open_img(const unsigned char *img, size_t len, stdcpu_error *err)
{
    stdcpu_stdm *m;
    stdcpu_status s = stdcpu_stdm_open_memory(&m, img, len, err);
    if (s == STDCPU_OK) {
        s = stdcpu_stdm_verify(m, err);
        stdcpu_stdm_close(m);
    }
    return s;
}

/* A copy of img with the first `from` in the index replaced by `to` (any
 * length: the index is last, so file and index sizes are adjusted), resealed. */
static unsigned char *patch_index(const unsigned char *img, size_t len, const char *from, const char *to,
                                  size_t *out_len)
{
    size_t n = strlen(from), m = strlen(to);
    for (size_t i = 64; i + n <= len; i++)
        if (!memcmp(img + i, from, n)) {
            *out_len = len - n + m;
            unsigned char *c = stdcpu_aligned_alloc(*out_len);
            memcpy(c, img, i);
            memcpy(c + i, to, m);
            memcpy(c + i + m, img + i + n, len - i - n);
            uint64_t isize = 0;
            for (int k = 7; k >= 0; k--)
                isize = isize << 8 | img[32 + k];
            isize = isize - n + m;
            for (int k = 0; k < 8; k++) {
                c[32 + k] = (unsigned char)(isize >> (8 * k));
                c[16 + k] = (unsigned char)((uint64_t)*out_len >> (8 * k));
            }
            reseal(c, *out_len);
            return c;
        }
    ck_abort_msg("pattern %s not found", from);
    return NULL;
}

START_TEST(test_hostile_files)
{
    const char *path = tmp_path("h.stdm");
    write_sample(path);
    size_t len;
    unsigned char *orig = read_all(path, &len);
    unsigned char *img = stdcpu_aligned_alloc(len);
    stdcpu_error err;
    ck_assert_int_eq(open_img(orig, len, &err), STDCPU_OK);
    /* truncated at every length */
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *c = stdcpu_aligned_alloc(cut ? cut : 1);
        memcpy(c, orig, cut);
        ck_assert_msg(open_img(c, cut, &err) != STDCPU_OK, "truncation at %zu accepted", cut);
        stdcpu_aligned_free(c);
    }
#define RESET() memcpy(img, orig, len)
    RESET();
    img[0] = 'X';
    ck_assert_int_eq(open_img(img, len, &err), STDCPU_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "magic"));
    RESET();
    img[8] = 2; /* version 2, correctly sealed */
    reseal(img, len);
    ck_assert_int_eq(open_img(img, len, &err), STDCPU_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "version"));
    RESET();
    img[20] ^= 1; /* any header bit without resealing */
    ck_assert_int_eq(open_img(img, len, &err), STDCPU_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "header checksum"));
    RESET();
    img[len - 5] ^= 0x20; /* index byte */
    ck_assert_int_eq(open_img(img, len, &err), STDCPU_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "index checksum"));
    RESET();
    {
        stdcpu_stdm *m;
        ck_assert_int_eq(stdcpu_stdm_open_memory(&m, orig, len, &err), STDCPU_OK);
        img[stdcpu_stdm_find(m, "unet.a.weight")->offset + 3] ^= 1; /* tensor byte: only verify sees it */
        stdcpu_stdm_close(m);
    }
    ck_assert_int_eq(open_img(img, len, &err), STDCPU_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "checksum mismatch"));
    /* index of absurd size / past EOF */
    RESET();
    img[39] = 0x7f;
    reseal(img, len);
    ck_assert_int_eq(open_img(img, len, &err), STDCPU_ERR_LIMIT);
    RESET();
    img[32] += 8;
    reseal(img, len);
    ck_assert_int_eq(open_img(img, len, &err), STDCPU_ERR_FORMAT);
    /* index edits, each resealed so only the validation can catch them */
    struct {
        const char *from, *to, *needle;
    } edits[] = {
        {"\"dtype\":\"f32\"", "\"dtype\":\"q32\"", "dtype"},
        {"\"shape\":[2,3]", "\"shape\":[3,3]", "need"},
        {"\"shape\":[2,3]", "\"shape\":[2,-3", "json"},
        {"\"offset\":64,", "\"offset\":65,", "aligned"},
        {"\"offset\":64,", "\"offset\":9e9,", "outside"},
        {"\"name\":\"unet.b.weight\"", "\"name\":\"unet.a.weight\"", "duplicate"},
        {"\"name\":\"unet.a.weight\"", "\"name\":\"unetXaXweight\"", "prefix"},
        {"\"tensors\"", "\"tensorz\"", "tensors"},
        {"\"crc32\"", "\"crc33\"", "bad blob entry"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        size_t plen;
        unsigned char *p = patch_index(orig, len, edits[i].from, edits[i].to, &plen);
        stdcpu_status s = open_img(p, plen, &err);
        stdcpu_aligned_free(p);
        ck_assert_msg(s != STDCPU_OK, "edit %zu accepted", i);
        ck_assert_msg(strstr(err.msg, edits[i].needle), "edit %zu: '%s' lacks '%s'", i, err.msg, edits[i].needle);
    }
    /* overlapping entries: point the f16 tensor at the f32 tensor's data */
    RESET();
    {
        /* find the f32 tensor's offset text and the f16 one's, make them equal */
        stdcpu_stdm *m;
        ck_assert_int_eq(stdcpu_stdm_open_memory(&m, orig, len, &err), STDCPU_OK);
        char from[64], to[64];
        unsigned long long a = stdcpu_stdm_find(m, "unet.a.weight")->offset;
        unsigned long long c = stdcpu_stdm_find(m, "vae.c.bias")->offset;
        stdcpu_stdm_close(m);
        snprintf(from, sizeof from, "\"offset\":%llu,", c);
        snprintf(to, sizeof to, "\"offset\":%llu,", a);
        size_t plen;
        unsigned char *p = patch_index(orig, len, from, to, &plen);
        ck_assert_int_eq(open_img(p, plen, &err), STDCPU_ERR_FORMAT);
        stdcpu_aligned_free(p);
        ck_assert_ptr_nonnull(strstr(err.msg, "overlap"));
    }
    /* random corruption of header and index: never crashes */
    stdcpu_test_rng rng = {99};
    for (int iter = 0; iter < 3000; iter++) {
        RESET();
        size_t pos = stdcpu_test_next(&rng) % len;
        img[pos] = (unsigned char)stdcpu_test_next(&rng);
        if (iter & 1)
            reseal(img, len);
        stdcpu_status s = open_img(img, len, &err);
        (void)s;
    }
    stdcpu_aligned_free(img);
    stdcpu_aligned_free(orig);
    stdcpu_stdm *m;
    ck_assert_int_eq(stdcpu_stdm_open(&m, "/nonexistent.stdm", &err), STDCPU_ERR_IO);
}
END_TEST

START_TEST(test_int8_round_trip_error)
{
    stdcpu_test_rng rng = {7};
    enum { R = 37, C = 129 };
    float *w = malloc(R * C * sizeof *w), *back = malloc(R * C * sizeof *back);
    int8_t *q = malloc(R * C);
    float sc[R];
    for (int i = 0; i < R * C; i++)
        w[i] = stdcpu_test_uniform(&rng, -1, 1) * (float)(1 + i / C); /* rows of different ranges */
    for (int c = 0; c < C; c++)
        w[5 * C + c] = 0; /* an all-zero row */
    stdcpu_quant_int8_rows(w, R, C, q, sc);
    stdcpu_dequant_int8_rows(q, sc, R, C, back);
    for (int r = 0; r < R; r++) {
        float amax = 0;
        for (int c = 0; c < C; c++)
            amax = fmaxf(amax, fabsf(w[r * C + c]));
        ck_assert(sc[r] == amax / 127.0f);
        int hit127 = 0;
        for (int c = 0; c < C; c++) {
            ck_assert(q[r * C + c] >= -127 && q[r * C + c] <= 127);
            hit127 |= q[r * C + c] == 127 || q[r * C + c] == -127;
            ck_assert_msg(fabsf(back[r * C + c] - w[r * C + c]) <= sc[r] / 2 * (1 + 1e-5f) + 1e-12f,
                          "row %d col %d", r, c);
        }
        ck_assert(hit127 || amax == 0);
    }
    free(w);
    free(back);
    free(q);
}
END_TEST

START_TEST(test_policy)
{
    const char *user[] = {"unet.down_blocks.0.*"};
    const char *const *def = stdcpu_quant_default_keep();
    const char *pats[64];
    size_t n = 0;
    while (def[n])
        pats[n] = def[n], n++;
    pats[n++] = user[0];
    stdcpu_quant_policy p = {STDCPU_QUANT_INT8, pats, n, STDCPU_QUANT_MIN_INT8_ELEMENTS};
    int64_t big[4] = {320, 320, 3, 3}, small[2] = {8, 8}, vec[1] = {320};
    ck_assert_int_eq(stdcpu_quant_choose(&p, "unet.mid_block.resnets.0.conv1.weight", 4, big), STDCPU_DT_I8);
    ck_assert_int_eq(stdcpu_quant_choose(&p, "unet.conv_in.weight", 4, big), STDCPU_DT_F16);
    ck_assert_int_eq(stdcpu_quant_choose(&p, "unet.down_blocks.0.resnets.0.conv1.weight", 4, big), STDCPU_DT_F16);
    ck_assert_int_eq(stdcpu_quant_choose(&p, "text_encoder.text_model.embeddings.token_embedding.weight", 4, big),
                     STDCPU_DT_F16);
    ck_assert_int_eq(stdcpu_quant_choose(&p, "unet.x.weight", 2, small), STDCPU_DT_F16);
    ck_assert_int_eq(stdcpu_quant_choose(&p, "unet.x.bias", 1, vec), STDCPU_DT_F32);
    p.mode = STDCPU_QUANT_F16;
    ck_assert_int_eq(stdcpu_quant_choose(&p, "unet.mid.weight", 4, big), STDCPU_DT_F16);
    p.mode = STDCPU_QUANT_F32;
    ck_assert_int_eq(stdcpu_quant_choose(&p, "unet.mid.weight", 4, big), STDCPU_DT_F32);
    stdcpu_quant_mode m;
    ck_assert(stdcpu_quant_mode_parse("f16", &m) && m == STDCPU_QUANT_F16);
    ck_assert(!stdcpu_quant_mode_parse("int4", &m));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stdm");
    TCase *tc = tcase_create("stdm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_abort_leaves_nothing);
    tcase_add_test(tc, test_hostile_files);
    tcase_add_test(tc, test_int8_round_trip_error);
    tcase_add_test(tc, test_policy);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
