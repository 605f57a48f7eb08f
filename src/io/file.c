/* Bounded reads and atomic writes (POSIX). */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, fsync, clock_gettime */
#include "config.h"

#include "io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"

const char *stdcpu_path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

stdcpu_status stdcpu_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                               stdcpu_error *err)
{
    *data = NULL;
    *size = 0;
    if (!path || !*path)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "empty file name");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return stdcpu_fail(err, e == ENOENT ? STDCPU_ERR_NOT_FOUND : STDCPU_ERR_IO, "%s: cannot open (%s)", path,
                           strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot stat (%s)", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: is a directory, not an image file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: file is %lld bytes, over the limit of %zu", path,
                           (long long)st.st_size, max_bytes);
    }
    /* The size may change under us: read until EOF, never past max_bytes. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, cap);
    }
    for (;;) {
        if (len == cap) {
            if (cap > max_bytes) {
                free(buf);
                close(fd);
                return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: file grew over the limit of %zu bytes", path,
                                   max_bytes);
            }
            size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                close(fd);
                return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            return stdcpu_fail(err, STDCPU_ERR_IO, "%s: read failed (%s)", path, strerror(e));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *data = buf;
    *size = len;
    return STDCPU_OK;
}

struct stdcpu_atomic_file {
    int fd;
    size_t written;
    size_t fail_after; /* 0 = never */
    char *target;
    char *tmp;
    char *dir;
};

static void atomic_destroy(stdcpu_atomic_file *f)
{
    free(f->target);
    free(f->tmp);
    free(f->dir);
    free(f);
}

stdcpu_status stdcpu_atomic_open(const char *path, stdcpu_atomic_file **out, stdcpu_error *err)
{
    *out = NULL;
    if (!path || !*path)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "empty output file name");
    const char *base = stdcpu_path_basename(path);
    if (!*base)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "%s: output name is a folder", path);
    size_t dir_len = (size_t)(base - path);
    size_t plen = strlen(path);
    stdcpu_atomic_file *f = calloc(1, sizeof *f);
    char *target = f ? malloc(plen + 1) : NULL;
    char *dir = f ? malloc(dir_len + 2) : NULL;
    char *tmp = f ? malloc(plen + 64) : NULL;
    if (!f || !target || !dir || !tmp) {
        free(target);
        free(dir);
        free(tmp);
        free(f);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(target, path, plen + 1);
    if (dir_len) {
        memcpy(dir, path, dir_len);
        dir[dir_len] = '\0';
    } else {
        strcpy(dir, ".");
    }
    f->target = target;
    f->dir = dir;
    f->tmp = tmp;
    f->fd = -1;
    /* O_EXCL with a name from the clock, the pid and this object's address:
     * retried on a clash, and honours the umask (unlike mkstemp's 0600). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long seed = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20) ^
                              ((unsigned long long)getpid() << 40) ^ (unsigned long long)(uintptr_t)f;
    int e = 0;
    for (int attempt = 0; attempt < 100; attempt++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        /* The base name is shortened so the temporary name fits NAME_MAX. */
        snprintf(tmp, plen + 64, "%.*s.%.200s.%08llx.tmp", (int)dir_len, path, base, (seed >> 32) & 0xffffffffULL);
        f->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0)
            break;
        e = errno;
        if (e != EEXIST)
            break;
    }
    if (f->fd < 0) {
        atomic_destroy(f);
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot create output file in its folder (%s)", path,
                           strerror(e));
    }
    *out = f;
    return STDCPU_OK;
}

void stdcpu_atomic_fail_after(stdcpu_atomic_file *f, size_t bytes)
{
    if (f)
        f->fail_after = bytes;
}

void stdcpu_atomic_abort(stdcpu_atomic_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    unlink(f->tmp);
    atomic_destroy(f);
}

stdcpu_status stdcpu_atomic_write(stdcpu_atomic_file *f, const void *data, size_t size, stdcpu_error *err)
{
    const uint8_t *p = data;
    while (size > 0) {
        size_t chunk = size;
        if (f->fail_after) {
            if (f->written >= f->fail_after)
                return stdcpu_fail(err, STDCPU_ERR_IO, "%s: write failed (%s, simulated)", f->target,
                                   strerror(ENOSPC));
            if (chunk > f->fail_after - f->written)
                chunk = f->fail_after - f->written;
        }
        ssize_t n = write(f->fd, p, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return stdcpu_fail(err, STDCPU_ERR_IO, "%s: write failed (%s)", f->target, strerror(errno));
        }
        p += n;
        size -= (size_t)n;
        f->written += (size_t)n;
    }
    return STDCPU_OK;
}

stdcpu_status stdcpu_atomic_commit(stdcpu_atomic_file *f, stdcpu_error *err)
{
    stdcpu_status st = STDCPU_OK;
    if (fsync(f->fd) != 0)
        st = stdcpu_fail(err, STDCPU_ERR_IO, "%s: fsync failed (%s)", f->target, strerror(errno));
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0 && st == STDCPU_OK)
        st = stdcpu_fail(err, STDCPU_ERR_IO, "%s: close failed (%s)", f->target, strerror(errno));
    if (st == STDCPU_OK && rename(f->tmp, f->target) != 0)
        st = stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot rename into place (%s)", f->target, strerror(errno));
    if (st != STDCPU_OK) {
        stdcpu_atomic_abort(f);
        return st;
    }
    /* Make the rename durable; failure here is not worth failing the write. */
    int dfd = open(f->dir, O_RDONLY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    atomic_destroy(f);
    return STDCPU_OK;
}

stdcpu_status stdcpu_write_file_atomic(const char *path, const void *data, size_t size, size_t fail_after_bytes,
                                       stdcpu_error *err)
{
    stdcpu_atomic_file *f;
    STDCPU_TRY(stdcpu_atomic_open(path, &f, err));
    stdcpu_atomic_fail_after(f, fail_after_bytes);
    stdcpu_status st = stdcpu_atomic_write(f, data, size, err);
    if (st != STDCPU_OK) {
        stdcpu_atomic_abort(f);
        return st;
    }
    return stdcpu_atomic_commit(f, err);
}
