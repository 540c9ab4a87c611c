/* Replies of the redis:// backend's scripts → lease op results. Pure
 * functions over hiredis reply trees: no I/O, so they are unit-tested and
 * fuzzed without a server (feed RESP bytes to a redisReader, parse). */
#ifndef REIGN_BACKENDS_REDIS_REDIS_REPLY_H
#define REIGN_BACKENDS_REDIS_REDIS_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "reign/backend.h"

/* True if the reply is the server's NOSCRIPT error: the script cache was
 * emptied (a restart, SCRIPT FLUSH) and the script did not run, so the op
 * may be sent again with EVAL. */
bool reign_redis_reply_is_noscript(const redisReply *reply);

/* The reign_status for a server error reply's text ("WRONGPASS …"):
 * NOAUTH, WRONGPASS, NOPERM → REIGN_EAUTH; WRONGTYPE → REIGN_EPROTO;
 * anything else (OOM, LOADING, BUSY, READONLY, ERR …) → REIGN_EBACKEND. */
int reign_redis_error_status(const char *text, size_t len);

/* Fill op's result and out_* from the reply to the script of op->kind.
 * Returns REIGN_OK when op->result is set (OK, HELD, LOST or NONE), or a
 * reign_status (REIGN_EPROTO for an unexpected shape, a server error's
 * status, REIGN_ENOMEM) with a one-line cause in err (err_size >= 64);
 * then op is left untouched. A NULL reply is REIGN_EPROTO. */
int reign_redis_reply_parse(reign_op *op, const redisReply *reply, char *err, size_t err_size);

#endif /* REIGN_BACKENDS_REDIS_REDIS_REPLY_H */
