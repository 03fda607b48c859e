/* Error codes and source-located error details.
 *
 * Every fallible function returns int: 0 on success, a negative MR_E* code on failure.
 * System call failures are converted with mr_err_from_errno() where they happen.
 * Where a person will read the detail, the caller passes a struct mr_err that the callee
 * fills with a message naming the source (file:line of a config, peer, topic, path).
 */
#ifndef MILLRACE_ERROR_H
#define MILLRACE_ERROR_H

#include <stddef.h>

/* X(NAME, value, message): the one table of error codes. Values are negative and stable. */
#define MR_ERROR_TABLE(X)                                                                          \
    X(OK, 0, "success")                                                                            \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EIO, -3, "input/output error")                                                               \
    X(ENOSPC, -4, "no space left on device")                                                       \
    X(EROFS, -5, "read-only file system")                                                          \
    X(ENOENT, -6, "no such file or directory")                                                     \
    X(EEXIST, -7, "already exists")                                                                \
    X(EACCES, -8, "permission denied")                                                             \
    X(ECORRUPT, -9, "data is corrupt")                                                             \
    X(ERANGE, -10, "value out of range")                                                           \
    X(EAGAIN, -11, "resource temporarily unavailable")                                             \
    X(ETIMEDOUT, -12, "timed out")                                                                 \
    X(ECLOSED, -13, "closed")                                                                      \
    X(ENOTSUP, -14, "not supported")                                                               \
    X(ECONFIG, -15, "invalid configuration")                                                       \
    X(EPARSE, -16, "parse error")                                                                  \
    X(ETOOBIG, -17, "too large")                                                                   \
    X(EBUSY, -18, "resource busy")                                                                 \
    X(EEOF, -19, "end of data")                                                                    \
    X(ESYS, -20, "system error")

enum mr_error {
#define MR_ERROR_ENUM(name, value, msg) MR_##name = (value),
    MR_ERROR_TABLE(MR_ERROR_ENUM)
#undef MR_ERROR_ENUM
};

/* Human-readable message for a code ("no space left on device"); never NULL. */
const char *mr_strerror(int code);
/* Symbolic name for a code ("MR_ENOSPC"); never NULL. */
const char *mr_error_name(int code);
/* Map an errno value to an MR_E* code (unknown errno values map to MR_ESYS). */
int mr_err_from_errno(int errnum);

/* Caller-owned error detail. msg names the source of the problem in words a user can act on;
 * file/line say where in millrace's code it was raised, for bug reports. */
struct mr_err {
    int code;
    char msg[256];
    const char *file;
    int line;
};

/* Fill err (may be NULL) and return code, so callers can `return MR_ERR_SET(err, ...)`. */
#define MR_ERR_SET(err, code, ...) mr_err_set_at((err), (code), __FILE__, __LINE__, __VA_ARGS__)

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
int mr_err_set_at(struct mr_err *err, int code, const char *file, int line, const char *fmt, ...);

/* Reset to "no error". */
void mr_err_clear(struct mr_err *err);

#endif
