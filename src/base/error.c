#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *stdcpu_status_name(stdcpu_status s)
{
    switch (s) {
    case STDCPU_OK: return "ok";
    case STDCPU_ERR_INVALID_ARG: return "invalid argument";
    case STDCPU_ERR_NOMEM: return "out of memory";
    case STDCPU_ERR_IO: return "i/o error";
    case STDCPU_ERR_FORMAT: return "malformed input";
    case STDCPU_ERR_UNSUPPORTED: return "unsupported";
    case STDCPU_ERR_LIMIT: return "limit exceeded";
    case STDCPU_ERR_NOT_FOUND: return "not found";
    case STDCPU_ERR_MISMATCH: return "mismatch";
    case STDCPU_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

/* Messages are single lines: newlines from foreign text (file names, library
 * messages) would break the CLI's one-line error contract. */
static void flatten(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

stdcpu_status stdcpu_fail(stdcpu_error *err, stdcpu_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        flatten(err->msg);
        err->status = status;
    }
    return status;
}

stdcpu_status stdcpu_fail_prefix(stdcpu_error *err, const char *fmt, ...)
{
    if (!err)
        return STDCPU_ERR_INTERNAL;
    char old[STDCPU_ERROR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, "%s", old);
    flatten(err->msg);
    return err->status;
}

void stdcpu_error_clear(stdcpu_error *err)
{
    if (err) {
        err->status = STDCPU_OK;
        err->msg[0] = '\0';
    }
}
