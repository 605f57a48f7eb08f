#include "cli_progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

double cli_progress_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_init(cli_progress *p, FILE *out, int quiet, int tty)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->quiet = quiet;
    p->tty = tty >= 0 ? tty : isatty(fileno(out));
    p->width = 24;
    p->now = cli_progress_clock;
}

void cli_format_duration(double s, char *buf, size_t n)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, n, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

void cli_progress_update(void *user, const char *phase, int done, int total)
{
    cli_progress *p = user;
    if (p->quiet)
        return;
    const double t = p->now();
    if (strncmp(p->phase, phase, sizeof p->phase - 1) != 0 || done == 0) {
        if (p->open_line)
            cli_progress_finish(p);
        snprintf(p->phase, sizeof p->phase, "%s", phase);
        p->phase_start = t;
    }
    if (total < 1)
        total = 1;
    if (done > total)
        done = total;
    const double elapsed = t - p->phase_start;
    char el[32], eta[32] = "";
    cli_format_duration(elapsed, el, sizeof el);
    if (done > 0 && done < total) {
        char e[24];
        cli_format_duration(elapsed / done * (total - done), e, sizeof e);
        snprintf(eta, sizeof eta, " ETA %s", e);
    }
    if (p->tty) {
        char bar[128];
        const int w = p->width < (int)sizeof bar - 1 ? p->width : (int)sizeof bar - 1;
        const int fill = (int)((long long)w * done / total);
        for (int i = 0; i < w; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[w] = '\0';
        fprintf(p->out, "\r%s [%s] %d/%d %s%s\033[K", p->phase, bar, done, total, el, eta);
        p->open_line = 1;
        if (done == total)
            cli_progress_finish(p);
    } else {
        fprintf(p->out, "%s: %d/%d %s%s\n", p->phase, done, total, el, eta);
    }
    fflush(p->out);
}

void cli_progress_finish(cli_progress *p)
{
    if (p->open_line) {
        fputc('\n', p->out);
        fflush(p->out);
        p->open_line = 0;
    }
}
