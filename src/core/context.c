#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "core/context.h"

const char *stdcpu_version_string(void) { return PACKAGE_VERSION; }

stdcpu_status stdcpu_ctx_create(stdcpu_ctx **out, int threads)
{
    *out = NULL;
    stdcpu_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return STDCPU_ERR_NOMEM;
    stdcpu_status s = stdcpu_pool_create(&c->pool, threads, &c->err);
    if (s != STDCPU_OK) {
        free(c);
        return s;
    }
    *out = c;
    return STDCPU_OK;
}

void stdcpu_ctx_destroy(stdcpu_ctx *c)
{
    if (!c)
        return;
    stdcpu_pool_destroy(c->pool);
    free(c);
}

int stdcpu_ctx_threads(const stdcpu_ctx *c) { return stdcpu_pool_threads(c->pool); }

void stdcpu_ctx_set_log(stdcpu_ctx *c, stdcpu_log_fn fn, void *user)
{
    c->log = fn;
    c->log_user = user;
}

void stdcpu_ctx_set_progress(stdcpu_ctx *c, stdcpu_progress_fn fn, void *user)
{
    c->progress = fn;
    c->progress_user = user;
}

const char *stdcpu_ctx_last_error(const stdcpu_ctx *c) { return c->err.msg; }

void stdcpu_ctx_log(stdcpu_ctx *c, stdcpu_log_level level, const char *fmt, ...)
{
    if (!c || !c->log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->log(c->log_user, level, line);
}

void stdcpu_ctx_progress(stdcpu_ctx *c, const char *phase, int done, int total)
{
    if (c && c->progress)
        c->progress(c->progress_user, phase, done, total);
}
