/* One connection of the redis backend, driven without blocking past a
 * deadline: a socket we own (plain TCP, unix or TLS), hiredis' formatter
 * for commands and its reader for replies. connect, TLS handshake, AUTH,
 * SELECT (and ROLE behind a sentinel) all end by one deadline; so does a
 * whole pipeline. */
#ifndef REIGN_BACKENDS_REDIS_REDIS_CONN_H
#define REIGN_BACKENDS_REDIS_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "redis_tls.h"

/* Where and as whom to connect. Strings are borrowed. */
typedef struct reign_redis_target {
    const char *host;     /* TCP host; NULL for a unix socket */
    int port;             /* TCP port */
    const char *path;     /* unix socket path; NULL for TCP */
    const char *user;     /* ACL user, NULL for the default user */
    const char *password; /* NULL: no AUTH (unless user is set) */
    int db;               /* SELECT db when > 0 */
    const char *where;    /* "127.0.0.1:6379" or the socket path, for messages */
    reign_redis_tls *tls; /* NULL: plaintext */
    bool want_master;     /* ask ROLE and refuse anything but a master */
} reign_redis_target;

typedef struct reign_redis_conn reign_redis_conn;

/* Connect, then TLS, AUTH, SELECT and ROLE as the target says, all before
 * deadline_ms (monotonic ms). REIGN_OK and *out, or a reign_status with a
 * one-line cause in err (REIGN_EBACKEND unreachable or timed out,
 * REIGN_EAUTH refused credentials or certificate, REIGN_EPROTO a server
 * speaking another protocol (TLS against plain or the reverse), REIGN_EINVAL
 * SELECT refused). Never logs secrets. */
int reign_redis_conn_open(const reign_redis_target *t, int64_t deadline_ms, reign_redis_conn **out,
                          char *err, size_t err_size);
void reign_redis_conn_free(reign_redis_conn *c);

/* The socket, for poll: readable means the connection has something. */
int reign_redis_conn_fd(const reign_redis_conn *c);

/* Queue one command (binary-safe arguments) for the next write. REIGN_OK
 * or REIGN_ENOMEM. */
int reign_redis_conn_append(reign_redis_conn *c, int argc, const char **argv, const size_t *lens);

/* The next reply, writing the pending pipeline meanwhile, before
 * deadline_ms. REIGN_OK with *out (free with freeReplyObject), else
 * REIGN_ETIMEDOUT (deadline passed), REIGN_EBACKEND (I/O error, closed) or
 * REIGN_EPROTO (garbage) with the cause in err: the connection is then out
 * of step, drop it. */
int reign_redis_conn_reply(reign_redis_conn *c, int64_t deadline_ms, redisReply **out, char *err,
                           size_t err_size);

/* A reply already read and parsed, without I/O: REIGN_OK with *out (NULL
 * when none is complete yet), or REIGN_EPROTO for garbage. */
int reign_redis_conn_take(reign_redis_conn *c, redisReply **out, char *err, size_t err_size);

/* For a connection that should have nothing to say (no command pending):
 * false if the server closed it or sent something unasked. Never blocks. */
bool reign_redis_conn_idle_ok(reign_redis_conn *c);

/* Read what has arrived without blocking; replies stay for
 * reign_redis_conn_take. REIGN_OK, or REIGN_EBACKEND/REIGN_EPROTO with the
 * cause in err when the connection is gone or sent garbage. */
int reign_redis_conn_read_ready(reign_redis_conn *c, char *err, size_t err_size);

#endif /* REIGN_BACKENDS_REDIS_REDIS_CONN_H */
