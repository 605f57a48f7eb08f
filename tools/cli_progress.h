/* Progress display for the command-line tools (the library only reports
 * (phase, done, total) through a callback; drawing is the CLI's job).
 * On a terminal: one line redrawn in place, "phase [#####.....] 3/8 1.2s ETA 2.0s".
 * Otherwise: one plain line per update. Silent when quiet. */
#ifndef STDCPU_TOOLS_CLI_PROGRESS_H
#define STDCPU_TOOLS_CLI_PROGRESS_H

#include <stdio.h>

typedef struct cli_progress {
    FILE *out;
    int tty;              /* redraw in place */
    int quiet;
    int width;            /* bar cells */
    double (*now)(void);  /* clock, seconds (tests inject a fake one) */
    char phase[32];
    double phase_start;
    int open_line;        /* a tty line is being redrawn */
} cli_progress;

double cli_progress_clock(void);

/* tty < 0: decide with isatty(fileno(out)). */
void cli_progress_init(cli_progress *p, FILE *out, int quiet, int tty);

/* Matches stdcpu_progress_fn (user = the cli_progress). */
void cli_progress_update(void *user, const char *phase, int done, int total);

/* Ends a redrawn line, if any. */
void cli_progress_finish(cli_progress *p);

/* Formats seconds as "12.3s", "4m05s" or "1h02m". */
void cli_format_duration(double s, char *buf, size_t n);

#endif
