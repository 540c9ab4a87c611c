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

/* The most elements a multi-bulk reply may declare: reign's scripts answer
 * at most 5, pub/sub messages 3. */
#define REIGN_REDIS_MAX_ELEMENTS 1024

/* Make the reader refuse (as out of memory, a reader error that drops the
 * connection) a multi-bulk reply declaring more than REIGN_REDIS_MAX_ELEMENTS:
 * hiredis 0.14 allocates the element array from the declared length before
 * any element arrives, so "*674407370\r\n" would ask for 5 GB. Keeps the
 * reader's own functions for everything else. Call before the first read. */
void reign_redis_reader_limit(redisReader *reader);

#endif /* REIGN_BACKENDS_REDIS_REDIS_REPLY_H */
