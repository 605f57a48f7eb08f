/* The library context: thread pool, log and progress callbacks, and the
 * message of the last failure. */
#ifndef STDCPU_CORE_CONTEXT_H
#define STDCPU_CORE_CONTEXT_H

#include <stdarg.h>
#include <stdio.h>

#include "base/error.h"
#include "core/threadpool.h"
#include "stdcpu.h"

struct stdcpu_ctx {
    stdcpu_pool *pool;
    stdcpu_error err;
    stdcpu_log_fn log;
    void *log_user;
    stdcpu_progress_fn progress;
    void *progress_user;
};

void stdcpu_ctx_log(stdcpu_ctx *c, stdcpu_log_level level, const char *fmt, ...) STDCPU_PRINTF(3, 4);
void stdcpu_ctx_progress(stdcpu_ctx *c, const char *phase, int done, int total);

#endif
