/* Status names and the per-thread last-error message. */
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reign/backend.h"

#define ERROR_MESSAGE_MAX 1024

static _Thread_local char last_error[ERROR_MESSAGE_MAX];

const char *reign_status_str(int status)
{
    switch (status) {
    case REIGN_OK: return "REIGN_OK: success";
    case REIGN_EINVAL: return "REIGN_EINVAL: invalid argument";
    case REIGN_ENOMEM: return "REIGN_ENOMEM: out of memory";
    case REIGN_EURI: return "REIGN_EURI: bad URI";
    case REIGN_EBACKEND: return "REIGN_EBACKEND: backend failed";
    case REIGN_ETIMEDOUT: return "REIGN_ETIMEDOUT: timed out";
    case REIGN_ENOTMASTER: return "REIGN_ENOTMASTER: not master";
    case REIGN_ENOMASTER: return "REIGN_ENOMASTER: no master";
    case REIGN_ECLOSED: return "REIGN_ECLOSED: closed";
    case REIGN_ESTATE: return "REIGN_ESTATE: wrong state";
    case REIGN_EIO: return "REIGN_EIO: I/O error";
    case REIGN_EPROTO: return "REIGN_EPROTO: protocol or format error";
    case REIGN_EAUTH: return "REIGN_EAUTH: authentication refused";
    case REIGN_EBUSY: return "REIGN_EBUSY: busy";
    case REIGN_EBUG: return "REIGN_EBUG: internal error (a bug in reign)";
    default: return "unknown reign status";
    }
}

const char *reign_last_error(void)
{
    return last_error;
}

int reign_error_setv(int status, const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    return status;
}

int reign_error_set(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reign_error_setv(status, fmt, ap);
    va_end(ap);
    return status;
}

void reign_error_clear(void)
{
    last_error[0] = '\0';
}

char *reign_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void reign_backend_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reign_error_setv(REIGN_OK, fmt, ap);
    va_end(ap);
}

void reign_op_fail(reign_op *op, int status, const char *fmt, ...)
{
    char msg[ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(op->out_error);
    op->out_error = strdup(msg); /* NULL on ENOMEM: the status still tells */
    op->out_status = status != REIGN_OK ? status : REIGN_EBACKEND;
    op->result = REIGN_RES_ERROR;
}
