/* Status names and the per-thread last-error message. */
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reign/backend.h"

#define ERROR_MESSAGE_MAX 1024

static _Thread_local char last_error[ERROR_MESSAGE_MAX];
static _Thread_local int last_status;

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
    case REIGN_ENOTSUP: return "REIGN_ENOTSUP: not supported by this backend";
    case REIGN_EBUG: return "REIGN_EBUG: internal error (a bug in reign)";
    default: return "unknown reign status";
    }
}

const char *reign_last_error(void)
{
    return last_error;
}

int reign_last_status(void)
{
    return last_status;
}

int reign_error_setv(int status, const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    last_status = status;
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
    last_status = REIGN_OK;
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

const char *reign_op_kind_name(reign_op_kind kind)
{
    switch (kind) {
    case REIGN_OP_ACQUIRE: return "ACQUIRE";
    case REIGN_OP_RENEW: return "RENEW";
    case REIGN_OP_RELEASE: return "RELEASE";
    case REIGN_OP_READ: return "READ";
    }
    return "op";
}

/* One byte as shown in messages; returns its length (1 or 4). */
static size_t printable_piece(unsigned char c, char piece[5])
{
    if (c >= 0x20 && c < 0x7f && c != '\\') {
        piece[0] = (char)c;
        piece[1] = '\0';
        return 1;
    }
    snprintf(piece, 5, "\\x%02x", c);
    return 4;
}

char *reign_printable(const void *bytes, size_t len, char *out, size_t out_size)
{
    static const char ellipsis[] = "...";
    const unsigned char *s = bytes;
    char piece[5];
    if (out_size == 0)
        return out;
    size_t total = 0;
    for (size_t i = 0; i < len; i++)
        total += printable_piece(s[i], piece);
    /* Whole pieces only; room for "..." when it does not all fit. */
    size_t budget = total < out_size ? out_size - 1
                                     : (out_size > sizeof ellipsis ? out_size - sizeof ellipsis : 0);
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        size_t n = printable_piece(s[i], piece);
        if (j + n > budget)
            break;
        memcpy(out + j, piece, n);
        j += n;
    }
    if (total >= out_size && j + sizeof ellipsis <= out_size) {
        memcpy(out + j, ellipsis, sizeof ellipsis - 1);
        j += sizeof ellipsis - 1;
    }
    out[j] = '\0';
    return out;
}
