/* safetensors reader: valid files, every hostile variant, f16/bf16 conversion. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/safetensors.h"
#include "simd/eltwise.h"
#include "testutil.h"

/* A file image: 8-byte length, header, data. Caller frees. */
static unsigned char *make_file(const char *header, const void *data, size_t data_len, size_t *len)
{
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *b = malloc(*len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    if (data_len)
        memcpy(b + 8 + h, data, data_len);
    return b;
}

static stdcpu_status open_image(const char *header, const void *data, size_t data_len, stdcpu_error *err)
{
    size_t len;
    unsigned char *b = make_file(header, data, data_len, &len);
    stdcpu_safetensors *st;
    stdcpu_status s = stdcpu_st_open_memory(&st, b, len, err);
    if (s == STDCPU_OK)
        stdcpu_st_close(st);
    else
        ck_assert_ptr_null(strchr(err->msg, '\n'));
    free(b);
    return s;
}

static const char good_header[] =
    "{\"__metadata__\":{\"format\":\"pt\",\"lora_alpha\":\"4\"},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[24,28]},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[28,30]},"
    "\"d\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[30,38]},"
    "\"e\":{\"dtype\":\"U8\",\"shape\":[0,5],\"data_offsets\":[38,38]},"
    "\"f\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[38,40]}}  ";

static void good_data(unsigned char *d)
{
    const float a[6] = {1, -2, 3.5f, 0, 1e-3f, -65504};
    memcpy(d, a, 24);
    uint16_t b[2] = {0x3C00, 0xC000}; /* 1, -2 */
    memcpy(d + 24, b, 4);
    uint16_t c = 0x4049; /* bf16 3.140625 */
    memcpy(d + 28, &c, 2);
    int64_t dv = -7;
    memcpy(d + 30, &dv, 8);
    d[38] = 1;
    d[39] = 0;
}

START_TEST(test_valid_file)
{
    unsigned char data[40];
    good_data(data);
    size_t len;
    unsigned char *img = make_file(good_header, data, sizeof data, &len);
    stdcpu_safetensors *st;
    stdcpu_error err;
    ck_assert_msg(stdcpu_st_open_memory(&st, img, len, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_uint_eq(stdcpu_st_count(st), 6);
    ck_assert_str_eq(stdcpu_st_at(st, 0)->name, "a"); /* sorted */
    ck_assert_str_eq(stdcpu_st_at(st, 5)->name, "f");
    ck_assert_ptr_null(stdcpu_st_at(st, 6));
    ck_assert_str_eq(stdcpu_st_metadata_get(st, "lora_alpha"), "4");
    ck_assert_ptr_null(stdcpu_st_metadata_get(st, "nope"));
    const stdcpu_st_tensor *a = stdcpu_st_find(st, "a");
    ck_assert_int_eq(a->ndim, 2);
    ck_assert_int_eq(a->numel, 6);
    ck_assert_int_eq(a->dtype, STDCPU_ST_F32);
    float *f;
    ck_assert_int_eq(stdcpu_st_to_f32(a, &f, &err), STDCPU_OK);
    ck_assert(f[2] == 3.5f && f[5] == -65504);
    stdcpu_aligned_free(f);
    ck_assert_int_eq(stdcpu_st_to_f32(stdcpu_st_find(st, "b"), &f, &err), STDCPU_OK);
    ck_assert(f[0] == 1 && f[1] == -2);
    stdcpu_aligned_free(f);
    const stdcpu_st_tensor *c = stdcpu_st_find(st, "c");
    ck_assert_int_eq(c->ndim, 0);
    ck_assert_int_eq(c->numel, 1);
    ck_assert_int_eq(stdcpu_st_to_f32(c, &f, &err), STDCPU_OK);
    ck_assert(f[0] == 3.140625f);
    stdcpu_aligned_free(f);
    const stdcpu_st_tensor *d = stdcpu_st_find(st, "d");
    int64_t dv;
    memcpy(&dv, d->data, 8);
    ck_assert_int_eq(dv, -7);
    ck_assert_int_eq(stdcpu_st_to_f32(d, &f, &err), STDCPU_ERR_MISMATCH);
    ck_assert_int_eq(stdcpu_st_find(st, "e")->numel, 0);
    ck_assert_ptr_null(stdcpu_st_find(st, "zzz"));
    ck_assert_ptr_null(stdcpu_st_find(st, ""));
    stdcpu_st_close(st);
    free(img);
}
END_TEST

START_TEST(test_truncated_everywhere)
{
    unsigned char data[40];
    good_data(data);
    size_t len;
    unsigned char *img = make_file(good_header, data, sizeof data, &len);
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *c = malloc(cut ? cut : 1);
        memcpy(c, img, cut);
        stdcpu_safetensors *st;
        stdcpu_error err;
        stdcpu_status s = stdcpu_st_open_memory(&st, c, cut, &err);
        ck_assert_msg(s != STDCPU_OK, "truncation at %zu accepted", cut);
        ck_assert(strlen(err.msg) > 0);
        free(c);
    }
    free(img);
}
END_TEST

START_TEST(test_hostile_headers)
{
    unsigned char data[16] = {0};
    stdcpu_error err;
    struct {
        const char *header;
        stdcpu_status expect;
        const char *needle;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         STDCPU_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         STDCPU_ERR_FORMAT, "duplicate"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", STDCPU_ERR_UNSUPPORTED, "dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", STDCPU_ERR_FORMAT, "need"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", STDCPU_ERR_FORMAT, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", STDCPU_ERR_FORMAT, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", STDCPU_ERR_FORMAT, "outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", STDCPU_ERR_FORMAT, "dimension"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", STDCPU_ERR_FORMAT, "dimension"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
         STDCPU_ERR_FORMAT, "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", STDCPU_ERR_LIMIT,
         "rank"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", STDCPU_ERR_FORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", STDCPU_ERR_FORMAT, "shape"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", STDCPU_ERR_FORMAT, "dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", STDCPU_ERR_FORMAT, "data_offsets"},
        {"{\"a\":[1,2]}", STDCPU_ERR_FORMAT, "not an object"},
        {"[1,2]", STDCPU_ERR_FORMAT, "object"},
        {"{\"a\":", STDCPU_ERR_FORMAT, "json"},
        {"{\"__metadata__\":[]}", STDCPU_ERR_FORMAT, "__metadata__"},
        {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", STDCPU_ERR_FORMAT, "NUL"},
        {"{}", STDCPU_OK, ""},
        /* touching ranges and an empty tensor inside another are fine */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
         "\"c\":{\"dtype\":\"I8\",\"shape\":[8],\"data_offsets\":[8,16]}}",
         STDCPU_OK, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err.msg[0] = '\0';
        stdcpu_status s = open_image(cases[i].header, data, sizeof data, &err);
        ck_assert_msg(s == cases[i].expect, "case %zu: status %d (%s)", i, (int)s, err.msg);
        if (s != STDCPU_OK)
            ck_assert_msg(strstr(err.msg, cases[i].needle), "case %zu: message '%s' lacks '%s'", i, err.msg,
                          cases[i].needle);
    }
}
END_TEST

START_TEST(test_bad_header_length)
{
    stdcpu_safetensors *st;
    stdcpu_error err;
    unsigned char b[32] = {0};
    memcpy(b + 8, "{}", 2);
    /* length past EOF */
    b[0] = 100;
    ck_assert_int_eq(stdcpu_st_open_memory(&st, b, 16, &err), STDCPU_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "past the end"));
    /* absurd length (2^63) */
    memset(b, 0, 8);
    b[7] = 0x80;
    ck_assert_int_eq(stdcpu_st_open_memory(&st, b, 16, &err), STDCPU_ERR_LIMIT);
    /* all-ones */
    memset(b, 0xff, 8);
    ck_assert_int_eq(stdcpu_st_open_memory(&st, b, 16, &err), STDCPU_ERR_LIMIT);
    /* zero */
    memset(b, 0, 8);
    ck_assert_int_eq(stdcpu_st_open_memory(&st, b, 16, &err), STDCPU_ERR_FORMAT);
    /* fine: padded with spaces */
    b[0] = 8;
    memcpy(b + 8, "{}      ", 8);
    ck_assert_int_eq(stdcpu_st_open_memory(&st, b, 16, &err), STDCPU_OK);
    ck_assert_uint_eq(stdcpu_st_count(st), 0);
    stdcpu_st_close(st);
    ck_assert_int_eq(stdcpu_st_open(&st, "/nonexistent.safetensors", &err), STDCPU_ERR_IO);
}
END_TEST

START_TEST(test_random_corruption)
{
    unsigned char data[40];
    good_data(data);
    size_t len;
    unsigned char *img = make_file(good_header, data, sizeof data, &len);
    unsigned char *c = malloc(len);
    stdcpu_test_rng rng = {0xfeedu};
    for (int iter = 0; iter < 5000; iter++) {
        memcpy(c, img, len);
        int flips = 1 + (int)(stdcpu_test_next(&rng) % 4);
        for (int k = 0; k < flips; k++)
            c[stdcpu_test_next(&rng) % len] = (unsigned char)stdcpu_test_next(&rng);
        stdcpu_safetensors *st;
        stdcpu_error err;
        if (stdcpu_st_open_memory(&st, c, len, &err) == STDCPU_OK) {
            /* whatever was accepted must be readable within bounds */
            for (size_t i = 0; i < stdcpu_st_count(st); i++) {
                const stdcpu_st_tensor *t = stdcpu_st_at(st, i);
                ck_assert((const unsigned char *)t->data + t->nbytes <= c + len);
                float *f;
                if (stdcpu_st_to_f32(t, &f, &err) == STDCPU_OK)
                    stdcpu_aligned_free(f);
            }
            stdcpu_st_close(st);
        }
    }
    free(c);
    free(img);
}
END_TEST

START_TEST(test_half_conversions)
{
    /* every finite half survives half -> float -> half exactly */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = stdcpu_f16_to_f32((uint16_t)h);
        if (!isnan(f) && stdcpu_f32_to_f16(f) != h) /* assert only on failure: Check logs every pass */
            ck_abort_msg("half 0x%04x does not round-trip", (unsigned)h);
    }
    ck_assert(stdcpu_f16_to_f32(0x3C00) == 1.0f);
    ck_assert(stdcpu_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    ck_assert(stdcpu_f16_to_f32(0x7BFF) == 65504.0f);
    ck_assert_uint_eq(stdcpu_f32_to_f16(65520.0f), 0x7C00);     /* overflow rounds to inf */
    ck_assert_uint_eq(stdcpu_f32_to_f16(65519.0f), 0x7BFF);
    ck_assert_uint_eq(stdcpu_f32_to_f16(1.0f + 1.0f / 2048), 0x3C00); /* tie to even */
    ck_assert_uint_eq(stdcpu_f32_to_f16(1.0f + 3.0f / 2048), 0x3C02);
    ck_assert_uint_eq(stdcpu_f32_to_f16(2.98023223876953125e-8f), 0x0000); /* half the smallest: tie to 0 */
    ck_assert_uint_eq(stdcpu_f32_to_f16(1e-10f), 0);
    ck_assert(isnan(stdcpu_f16_to_f32(stdcpu_f32_to_f16(NAN))));
    ck_assert_uint_eq(stdcpu_f32_to_bf16(1.0f), 0x3F80);
    ck_assert_uint_eq(stdcpu_f32_to_bf16(1.0f + 1.0f / 256), 0x3F80); /* tie to even */
    ck_assert_uint_eq(stdcpu_f32_to_bf16(1.0f + 3.0f / 256), 0x3F82);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = stdcpu_bf16_to_f32((uint16_t)h);
        if (!isnan(f) && stdcpu_f32_to_bf16(f) != h)
            ck_abort_msg("bf16 0x%04x does not round-trip", (unsigned)h);
    }
}
END_TEST

START_TEST(test_golden_file)
{
    const char *path = stdcpu_test_shared("golden/models/sdxl_tiny/unet/diffusion_pytorch_model.safetensors");
    if (!path)
        return;
    stdcpu_safetensors *st;
    stdcpu_error err;
    ck_assert_msg(stdcpu_st_open(&st, path, &err) == STDCPU_OK, "%s", err.msg);
    ck_assert_uint_gt(stdcpu_st_count(st), 100);
    const stdcpu_st_tensor *t = stdcpu_st_find(st, "conv_in.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 4);
    float *f;
    ck_assert_int_eq(stdcpu_st_to_f32(t, &f, &err), STDCPU_OK);
    float first;
    memcpy(&first, t->data, 4);
    ck_assert(f[0] == first && isfinite(first));
    stdcpu_aligned_free(f);
    stdcpu_st_close(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_valid_file);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_test(tc, test_hostile_headers);
    tcase_add_test(tc, test_bad_header_length);
    tcase_add_test(tc, test_random_corruption);
    tcase_add_test(tc, test_half_conversions);
    tcase_add_test(tc, test_golden_file);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
