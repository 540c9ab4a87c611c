/* One connection of the redis:// backend, driven without blocking past a
 * deadline: non-blocking connect, AUTH and SELECT, then replies pumped with
 * poll(2) so that a whole pipeline ends by the batch's deadline. */
#ifndef REIGN_BACKENDS_REDIS_REDIS_CONN_H
#define REIGN_BACKENDS_REDIS_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* Where and as whom to connect. Strings are borrowed. */
typedef struct reign_redis_target {
    const char *host;     /* TCP host; NULL for a unix socket */
    int port;             /* TCP port */
    const char *path;     /* unix socket path; NULL for TCP */
    const char *user;     /* ACL user, NULL for the default user */
    const char *password; /* NULL: no AUTH (unless user is set) */
    int db;               /* SELECT db when > 0 */
    const char *where;    /* "127.0.0.1:6379" or the socket path, for messages */
} reign_redis_target;

/* Connect, then AUTH and SELECT as the target says, all before deadline_ms
 * (monotonic ms). REIGN_OK and *out, or a reign_status with a one-line
 * cause in err (REIGN_EBACKEND unreachable or timed out, REIGN_EAUTH
 * refused credentials, REIGN_EINVAL SELECT refused). Never logs secrets. */
int reign_redis_conn_open(const reign_redis_target *t, int64_t deadline_ms, redisContext **out,
                          char *err, size_t err_size);

/* The next reply, writing the pending pipeline meanwhile, before
 * deadline_ms. REIGN_OK with *out (free with freeReplyObject), else
 * REIGN_ETIMEDOUT (deadline passed), REIGN_EBACKEND (I/O error, closed) or
 * REIGN_EPROTO (garbage) with the cause in err: the connection is then out
 * of step, drop it. */
int reign_redis_conn_reply(redisContext *c, int64_t deadline_ms, redisReply **out, char *err,
                           size_t err_size);

/* For a connection that should have nothing to say (no command pending):
 * false if the server closed it or sent something unasked. Never blocks. */
bool reign_redis_conn_idle_ok(redisContext *c);

/* Read what has arrived without blocking; replies stay in the reader for
 * redisGetReplyFromReader. REIGN_OK, or REIGN_EBACKEND/REIGN_EPROTO with the
 * cause in err when the connection is gone or sent garbage. */
int reign_redis_conn_read_ready(redisContext *c, char *err, size_t err_size);

#endif /* REIGN_BACKENDS_REDIS_REDIS_CONN_H */
