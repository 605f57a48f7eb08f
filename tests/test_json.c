/* JSON parser: values, escapes, numbers, limits and hostile input. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>

#include "base/error.h"
#include "core/json.h"
#include "testutil.h"

static stdcpu_json_doc *parse_ok(const char *s)
{
    stdcpu_json_doc *doc;
    stdcpu_error err = {0};
    stdcpu_status st = stdcpu_json_parse(&doc, s, strlen(s), &err);
    ck_assert_msg(st == STDCPU_OK, "'%s': %s", s, err.msg);
    return doc;
}

static stdcpu_status parse_status(const char *s, size_t len)
{
    stdcpu_json_doc *doc;
    stdcpu_error err = {0};
    stdcpu_status st = stdcpu_json_parse(&doc, s, len, &err);
    if (st == STDCPU_OK)
        stdcpu_json_free(doc);
    else
        ck_assert_ptr_null(strchr(err.msg, '\n'));
    return st;
}

START_TEST(test_values_and_lookup)
{
    stdcpu_json_doc *doc =
        parse_ok(" {\"a\": 1, \"b\": [true, false, null, \"x\", -2.5e3, {}], \"c\": {\"d\": \"e\"}, \"a\": 2} ");
    const stdcpu_json *r = stdcpu_json_root(doc);
    ck_assert_int_eq(r->type, STDCPU_JSON_OBJECT);
    ck_assert_uint_eq(stdcpu_json_count(r), 4);
    ck_assert_int_eq(stdcpu_json_get_int(r, "a", 0), 1); /* first of duplicate keys */
    const stdcpu_json *b = stdcpu_json_get(r, "b");
    ck_assert_uint_eq(stdcpu_json_count(b), 6);
    int bv = -1;
    ck_assert(stdcpu_json_bool(stdcpu_json_at(b, 0), &bv) && bv == 1);
    ck_assert(stdcpu_json_bool(stdcpu_json_at(b, 1), &bv) && bv == 0);
    ck_assert_int_eq(stdcpu_json_at(b, 2)->type, STDCPU_JSON_NULL);
    ck_assert_str_eq(stdcpu_json_str(stdcpu_json_at(b, 3)), "x");
    double d;
    ck_assert(stdcpu_json_double(stdcpu_json_at(b, 4), &d) && d == -2500.0);
    int64_t i;
    ck_assert(stdcpu_json_int(stdcpu_json_at(b, 4), &i) && i == -2500);
    ck_assert_uint_eq(stdcpu_json_count(stdcpu_json_at(b, 5)), 0);
    ck_assert_ptr_null(stdcpu_json_at(b, 6));
    ck_assert_str_eq(stdcpu_json_get_str(stdcpu_json_get(r, "c"), "d", NULL), "e");
    ck_assert_str_eq(stdcpu_json_get_str(r, "zz", "dflt"), "dflt");
    ck_assert_ptr_null(stdcpu_json_get(b, "a")); /* not an object */
    ck_assert_str_eq(stdcpu_json_at(r, 1)->key, "b");
    stdcpu_json_free(doc);
}
END_TEST

START_TEST(test_numbers)
{
    stdcpu_json_doc *doc =
        parse_ok("[0, -0, 9223372036854775807, -9223372036854775808, 9223372036854775808, 1.5, 1e2, 0.1, NaN,"
                 " -Infinity, 12345678901234567]");
    const stdcpu_json *r = stdcpu_json_root(doc);
    int64_t v;
    ck_assert(stdcpu_json_int(r->items[0], &v) && v == 0);
    ck_assert(stdcpu_json_int(r->items[2], &v) && v == INT64_MAX);
    ck_assert(stdcpu_json_int(r->items[3], &v) && v == INT64_MIN);
    ck_assert(!stdcpu_json_int(r->items[4], &v)); /* 2^63 does not fit */
    ck_assert(r->items[4]->number == 9223372036854775808.0);
    ck_assert(!stdcpu_json_int(r->items[5], &v));
    ck_assert(stdcpu_json_int(r->items[6], &v) && v == 100);
    ck_assert(r->items[7]->number == 0.1);
    ck_assert(isnan(r->items[8]->number));
    ck_assert(isinf(r->items[9]->number) && r->items[9]->number < 0);
    /* exact, not via double (which would round to ...568) */
    ck_assert(stdcpu_json_int(r->items[10], &v) && v == INT64_C(12345678901234567));
    stdcpu_json_free(doc);
}
END_TEST

START_TEST(test_string_escapes)
{
    stdcpu_json_doc *doc = parse_ok("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u20ac\\ud83d\\ude00\", "
                                    "\"\xc3\xa9\", \"nul\\u0000x\"]");
    const stdcpu_json *r = stdcpu_json_root(doc);
    ck_assert_str_eq(r->items[0]->str, "a\"b\\c/d\b\f\n\r\t");
    ck_assert_str_eq(r->items[1]->str, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    ck_assert_uint_eq(r->items[1]->len, 9);
    ck_assert_str_eq(r->items[2]->str, "\xc3\xa9");
    ck_assert_uint_eq(r->items[3]->len, 5);
    ck_assert(!memcmp(r->items[3]->str, "nul\0x", 5));
    stdcpu_json_free(doc);
}
END_TEST

START_TEST(test_rejects_garbage)
{
    static const char *bad[] = {"",          " ",           "{",          "[1,]",        "{\"a\":1,}",
                                "{\"a\" 1}", "{1:2}",       "[1 2]",      "tru",         "nul",
                                "01",        "1.",          ".5",         "1e",          "-",
                                "+1",        "\"abc",       "\"\\x\"",    "\"\\u12\"",   "\"\\ud800\"",
                                "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\tb\"", "\"\xff\"", "\"\xc0\xaf\"",
                                "[1]]",      "{} {}",       "[\"a\":1]",  "Infinit",     "-NaN",
                                "\"\xed\xa0\x80\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(parse_status(bad[i], strlen(bad[i])) == STDCPU_ERR_FORMAT, "accepted '%s'", bad[i]);
    /* not NUL-terminated input: the parser must stop at len */
    ck_assert_int_eq(parse_status("[1, 2]xyz", 6), STDCPU_OK);
    ck_assert_int_eq(parse_status("\"abc\"", 3), STDCPU_ERR_FORMAT);
}
END_TEST

START_TEST(test_depth_limit_and_deep_input)
{
    /* one million open brackets: must fail cleanly, not recurse */
    size_t n = 1000000;
    char *s = malloc(2 * n);
    memset(s, '[', n);
    memset(s + n, ']', n);
    ck_assert_int_eq(parse_status(s, 2 * n), STDCPU_ERR_LIMIT);
    size_t ok = STDCPU_JSON_MAX_DEPTH;
    memmove(s + ok, s + n, ok);
    ck_assert_int_eq(parse_status(s, 2 * ok), STDCPU_OK);
    memset(s, '{', 1);
    ck_assert_int_eq(parse_status(s, 2 * ok), STDCPU_ERR_FORMAT);
    free(s);
}
END_TEST

START_TEST(test_truncations_never_crash)
{
    const char *s = "{\"k\\u00e9y\": [1, -2.5e-3, \"v\\ud83d\\ude00\", {\"n\": null, \"t\": true}], \"z\": false}";
    size_t len = strlen(s);
    ck_assert_int_eq(parse_status(s, len), STDCPU_OK);
    for (size_t cut = 0; cut < len; cut++) {
        /* copy so that ASan sees reads past the cut */
        char *c = malloc(cut ? cut : 1);
        memcpy(c, s, cut);
        ck_assert_int_ne(parse_status(c, cut), STDCPU_OK);
        free(c);
    }
}
END_TEST

START_TEST(test_random_bytes_never_crash)
{
    stdcpu_test_rng rng = {0x1234567u};
    const char alphabet[] = "{}[],:\"\\u0123456789abcdefeE+-. tnrulsIN\xc3\xa9\xf0";
    char buf[64];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = stdcpu_test_next(&rng) % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = alphabet[stdcpu_test_next(&rng) % (sizeof alphabet - 1)];
        stdcpu_status st = parse_status(buf, len);
        ck_assert(st == STDCPU_OK || st == STDCPU_ERR_FORMAT || st == STDCPU_ERR_LIMIT);
    }
}
END_TEST

START_TEST(test_parse_golden_config)
{
    const char *path = stdcpu_test_shared("golden/models/sdxl_tiny/unet/config.json");
    if (!path)
        return;
    stdcpu_json_doc *doc;
    stdcpu_error err;
    ck_assert_msg(stdcpu_json_parse_file(&doc, path, &err) == STDCPU_OK, "%s", err.msg);
    const stdcpu_json *r = stdcpu_json_root(doc);
    ck_assert_str_eq(stdcpu_json_get_str(r, "_class_name", ""), "UNet2DConditionModel");
    ck_assert_int_ge(stdcpu_json_count(stdcpu_json_get(r, "block_out_channels")), 2);
    stdcpu_json_free(doc);
    ck_assert_int_eq(stdcpu_json_parse_file(&doc, "/nonexistent/x.json", &err), STDCPU_ERR_IO);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_values_and_lookup);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_string_escapes);
    tcase_add_test(tc, test_rejects_garbage);
    tcase_add_test(tc, test_depth_limit_and_deep_input);
    tcase_add_test(tc, test_truncations_never_crash);
    tcase_add_test(tc, test_random_bytes_never_crash);
    tcase_add_test(tc, test_parse_golden_config);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
