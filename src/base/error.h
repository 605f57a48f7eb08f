/* Error reporting shared by every layer: functions return stdcpu_status and
 * fill an optional stdcpu_error with a one-line message. */
#ifndef STDCPU_BASE_ERROR_H
#define STDCPU_BASE_ERROR_H

#include "stdcpu.h"

#if defined(__GNUC__)
#define STDCPU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define STDCPU_PRINTF(a, b)
#endif

/* Records status + formatted message in err (if non-NULL) and returns status.
 * Typical use: `return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: truncated", path);` */
stdcpu_status stdcpu_fail(stdcpu_error *err, stdcpu_status status, const char *fmt, ...)
    STDCPU_PRINTF(3, 4);

/* Prefixes an existing message ("loading x: " + old message), keeps status. */
stdcpu_status stdcpu_fail_prefix(stdcpu_error *err, const char *fmt, ...) STDCPU_PRINTF(2, 3);

void stdcpu_error_clear(stdcpu_error *err);

#define STDCPU_TRY(expr)                         \
    do {                                         \
        stdcpu_status try_status_ = (expr);      \
        if (try_status_ != STDCPU_OK)            \
            return try_status_;                  \
    } while (0)

#endif
