/* The CLI progress display: plain lines off a terminal, a redrawn bar on one. */
#include "cli_progress.h"
#include "testutil.h"

static double fake_t;
static double fake_clock(void) { return fake_t; }

static char *render(int tty, int quiet)
{
    static char buf[4096];
    memset(buf, 0, sizeof buf);
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    cli_progress p;
    cli_progress_init(&p, f, quiet, tty);
    p.now = fake_clock;
    p.width = 4;
    fake_t = 100.0;
    cli_progress_update(&p, "unet", 0, 4);
    fake_t = 102.0;
    cli_progress_update(&p, "unet", 1, 4);
    fake_t = 108.0;
    cli_progress_update(&p, "unet", 4, 4);
    fake_t = 109.0;
    cli_progress_update(&p, "decode", 1, 1);
    cli_progress_finish(&p);
    fclose(f);
    return buf;
}

START_TEST(test_plain_lines_with_eta)
{
    const char *s = render(0, 0);
    ck_assert_str_eq(s, "unet: 0/4 0.0s\n"
                        "unet: 1/4 2.0s ETA 6.0s\n"
                        "unet: 4/4 8.0s\n"
                        "decode: 1/1 0.0s\n");
}
END_TEST

START_TEST(test_tty_bar_redraws_and_ends_lines)
{
    const char *s = render(1, 0);
    ck_assert_ptr_nonnull(strstr(s, "\runet [#...] 1/4 2.0s ETA 6.0s\033[K"));
    ck_assert_ptr_nonnull(strstr(s, "\runet [####] 4/4 8.0s\033[K\n"));
    ck_assert_ptr_nonnull(strstr(s, "\rdecode [####] 1/1 0.0s\033[K\n"));
    /* exactly one newline per finished phase */
    int nl = 0;
    for (const char *c = s; *c; c++)
        nl += *c == '\n';
    ck_assert_int_eq(nl, 2);
}
END_TEST

START_TEST(test_quiet_prints_nothing)
{
    ck_assert_str_eq(render(0, 1), "");
    ck_assert_str_eq(render(1, 1), "");
}
END_TEST

START_TEST(test_durations)
{
    char b[32];
    cli_format_duration(5.25, b, sizeof b);
    ck_assert_str_eq(b, "5.2s");
    cli_format_duration(125, b, sizeof b);
    ck_assert_str_eq(b, "2m05s");
    cli_format_duration(3725, b, sizeof b);
    ck_assert_str_eq(b, "1h02m");
    cli_format_duration(-3, b, sizeof b);
    ck_assert_str_eq(b, "0.0s");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_progress");
    TCase *tc = tcase_create("progress");
    tcase_add_test(tc, test_plain_lines_with_eta);
    tcase_add_test(tc, test_tty_bar_redraws_and_ends_lines);
    tcase_add_test(tc, test_quiet_prints_nothing);
    tcase_add_test(tc, test_durations);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
