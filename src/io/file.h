/* Bounded whole-file reads and atomic file replacement. */
#ifndef STDCPU_IO_FILE_H
#define STDCPU_IO_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "stdcpu.h"

/* Read a whole regular file (refuses directories, devices and files larger
 * than max_bytes) into a malloc'd buffer (*data, free with free()). The file
 * is opened read-only and never modified. */
stdcpu_status stdcpu_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                               stdcpu_error *err);

/* An atomic writer: bytes go to a temporary file next to the target
 * ("<dir>/.<name>.<random>.tmp", created with mode 0666 & ~umask); commit
 * fsyncs it, renames it over the target and fsyncs the folder; abort (or any
 * failed write / commit) removes it. Until commit succeeds an existing target
 * is untouched. Every writer must end with exactly one commit or abort. */
typedef struct stdcpu_atomic_file stdcpu_atomic_file;

stdcpu_status stdcpu_atomic_open(const char *path, stdcpu_atomic_file **out, stdcpu_error *err);
/* Testing hook: the writer fails once `bytes` have been written (0 = never). */
void stdcpu_atomic_fail_after(stdcpu_atomic_file *f, size_t bytes);
stdcpu_status stdcpu_atomic_write(stdcpu_atomic_file *f, const void *data, size_t size, stdcpu_error *err);
/* Commits and frees f (also on failure, after removing the temporary file). */
stdcpu_status stdcpu_atomic_commit(stdcpu_atomic_file *f, stdcpu_error *err);
/* Removes the temporary file and frees f; f may be NULL. */
void stdcpu_atomic_abort(stdcpu_atomic_file *f);

/* Write a buffer atomically (open + write + commit). */
stdcpu_status stdcpu_write_file_atomic(const char *path, const void *data, size_t size, size_t fail_after_bytes,
                                       stdcpu_error *err);

/* The last component of a path (for messages): "a/b/in.png" -> "in.png". */
const char *stdcpu_path_basename(const char *path);

#endif
