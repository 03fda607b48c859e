#include "millrace/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *mr_strerror(int code)
{
    switch (code) {
#define MR_ERROR_MSG(name, value, msg)                                                             \
    case (value):                                                                                  \
        return (msg);
        MR_ERROR_TABLE(MR_ERROR_MSG)
#undef MR_ERROR_MSG
    default:
        return "unknown error";
    }
}

const char *mr_error_name(int code)
{
    switch (code) {
#define MR_ERROR_NAME(name, value, msg)                                                            \
    case (value):                                                                                  \
        return "MR_" #name;
        MR_ERROR_TABLE(MR_ERROR_NAME)
#undef MR_ERROR_NAME
    default:
        return "MR_UNKNOWN";
    }
}

int mr_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return MR_OK;
    case EINVAL:
        return MR_EINVAL;
    case ENOMEM:
        return MR_ENOMEM;
    case EIO:
        return MR_EIO;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return MR_ENOSPC;
    case EROFS:
        return MR_EROFS;
    case ENOENT:
    case ENOTDIR:
        return MR_ENOENT;
    case EEXIST:
        return MR_EEXIST;
    case EACCES:
    case EPERM:
        return MR_EACCES;
    case ERANGE:
    case EOVERFLOW:
        return MR_ERANGE;
    case EAGAIN:
        return MR_EAGAIN;
    case ETIMEDOUT:
        return MR_ETIMEDOUT;
    case EPIPE:
    case ECONNRESET:
        return MR_ECLOSED;
    case ENOTSUP:
        return MR_ENOTSUP;
    case EBUSY:
        return MR_EBUSY;
    default:
        return MR_ESYS;
    }
}

int mr_err_set_at(struct mr_err *err, int code, const char *file, int line, const char *fmt, ...)
{
    if (err == NULL) {
        return code;
    }
    err->code = code;
    err->file = file;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s", mr_strerror(code));
    }
    return code;
}

void mr_err_clear(struct mr_err *err)
{
    if (err != NULL) {
        memset(err, 0, sizeof(*err));
    }
}
