/* One connection of the redis:// backend, driven without blocking past a
 * deadline. hiredis' non-blocking context does the framing (append, buffer
 * write, buffer read, reader); we own the waiting, with poll(2), so one
 * deadline bounds connect, handshake and a whole pipeline alike. */
#include "redis_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "reign/reign.h"

#include "redis_keys.h"
#include "redis_reply.h"

/* Wait for events on fd until deadline_ms. Returns the revents, 0 on
 * timeout, -1 (errno set) on a poll failure. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - reign_monotonic_ms();
        if (left < 0) {
            left = 0;
        }
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n > 0) {
            return p.revents;
        }
        if (reign_monotonic_ms() >= deadline_ms) {
            return 0;
        }
    }
}

/* A subscriber only ever reads: without keepalive it would not notice a
 * server that vanished without a FIN (power loss, partition). Best effort:
 * our own setsockopt, as hiredis' helper marks the context failed if one
 * option is refused. */
static void set_keepalive(int fd)
{
    int on = 1, idle = 15, intvl = 5, cnt = 3;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* hiredis' own cause for a failed context call. */
static void context_cause(const redisContext *c, char *err, size_t err_size)
{
    if (c->err == REDIS_ERR_EOF) {
        snprintf(err, err_size, "server closed the connection");
    } else if (c->errstr[0] != '\0') {
        snprintf(err, err_size, "%s", c->errstr);
    } else {
        snprintf(err, err_size, "I/O error %d", c->err);
    }
}

static int context_status(const redisContext *c)
{
    return c->err == REDIS_ERR_PROTOCOL ? REIGN_EPROTO : REIGN_EBACKEND;
}

static int wait_connected(redisContext *c, const reign_redis_target *t, int64_t deadline_ms,
                          char *err, size_t err_size)
{
    int ev = wait_fd(c->fd, POLLOUT, deadline_ms);
    if (ev == 0) {
        snprintf(err, err_size, "cannot connect to %s: timed out", t->where);
        return REIGN_EBACKEND;
    }
    if (ev < 0) {
        snprintf(err, err_size, "cannot connect to %s: poll: %s", t->where, strerror(errno));
        return REIGN_EBACKEND;
    }
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
        so_error = errno;
    }
    if (so_error != 0) {
        snprintf(err, err_size, "cannot connect to %s: %s", t->where, strerror(so_error));
        return REIGN_EBACKEND;
    }
    return REIGN_OK;
}

/* Replace every occurrence of secret in text by "***" (in place: the mask
 * is never longer than what it hides, so short secrets are blanked out). */
static void mask_secret(char *text, const char *secret)
{
    size_t n = secret != NULL ? strlen(secret) : 0;
    if (n == 0) {
        return;
    }
    const char *mask = n >= 3 ? "***" : "**";
    size_t m = n >= 3 ? 3 : n;
    char *hit, *from = text;
    while ((hit = strstr(from, secret)) != NULL) {
        memcpy(hit, mask, m);
        memmove(hit + m, hit + n, strlen(hit + n) + 1);
        from = hit + m; /* past the mask, even if the secret is made of '*' */
    }
}

/* One handshake command's reply; a server error gets `status`. */
static int check_handshake_reply(redisContext *c, int64_t deadline_ms, const char *what, int status,
                                 const reign_redis_target *t, char *err, size_t err_size)
{
    redisReply *r = NULL;
    char cause[200];
    int rc = reign_redis_conn_reply(c, deadline_ms, &r, cause, sizeof(cause));
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "%s on %s: %s", what, t->where, cause);
        return rc == REIGN_ETIMEDOUT ? REIGN_EBACKEND : rc;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char raw[160], shown[160];
        size_t n = r->str != NULL ? r->len : 0;
        n = n < sizeof(raw) - 1 ? n : sizeof(raw) - 1;
        memcpy(raw, r->str != NULL ? r->str : "", n);
        raw[n] = '\0';
        /* The server has just been sent the password: a hostile or buggy one
         * may quote it back, and this text ends up in logs. */
        mask_secret(raw, t->password);
        reign_printable(raw, strlen(raw), shown, sizeof(shown));
        snprintf(err, err_size, "%s refused by %s: %s", what, t->where, shown);
        /* a wrong password is EAUTH whatever command tripped on it */
        int s = reign_redis_error_status(r->str, r->len);
        rc = s == REIGN_EAUTH ? REIGN_EAUTH : status;
    }
    freeReplyObject(r);
    return rc;
}

int reign_redis_conn_open(const reign_redis_target *t, int64_t deadline_ms, redisContext **out,
                          char *err, size_t err_size)
{
    redisContext *c = NULL;
    int rc = REIGN_OK;
    bool auth = false, select = false;

    c = t->path != NULL ? redisConnectUnixNonBlock(t->path)
                        : redisConnectNonBlock(t->host, t->port);
    if (c == NULL) {
        snprintf(err, err_size, "cannot connect to %s: out of memory", t->where);
        rc = REIGN_ENOMEM;
        goto out;
    }
    if (c->err != 0) {
        char cause[160];
        context_cause(c, cause, sizeof(cause));
        snprintf(err, err_size, "cannot connect to %s: %s", t->where, cause);
        rc = REIGN_EBACKEND;
        goto out;
    }
    reign_redis_reader_limit(c->reader);
    rc = wait_connected(c, t, deadline_ms, err, err_size);
    if (rc != REIGN_OK) {
        goto out;
    }
    if (t->path == NULL) {
        set_keepalive(c->fd);
    }

    /* AUTH and SELECT go out as one pipeline: one round trip. */
    if (t->user != NULL && t->user[0] != '\0') {
        const char *argv[] = {"AUTH", t->user, t->password != NULL ? t->password : ""};
        size_t lens[] = {4, strlen(argv[1]), strlen(argv[2])};
        auth = redisAppendCommandArgv(c, 3, argv, lens) == REDIS_OK;
        if (!auth) {
            goto append_failed;
        }
    } else if (t->password != NULL && t->password[0] != '\0') {
        const char *argv[] = {"AUTH", t->password};
        size_t lens[] = {4, strlen(t->password)};
        auth = redisAppendCommandArgv(c, 2, argv, lens) == REDIS_OK;
        if (!auth) {
            goto append_failed;
        }
    }
    if (t->db > 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", t->db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, strlen(db)};
        select = redisAppendCommandArgv(c, 2, argv, lens) == REDIS_OK;
        if (!select) {
            goto append_failed;
        }
    }
    if (auth) {
        rc = check_handshake_reply(c, deadline_ms, "AUTH", REIGN_EAUTH, t, err, err_size);
    }
    if (rc == REIGN_OK && select) {
        char what[32];
        snprintf(what, sizeof(what), "SELECT %d", t->db);
        rc = check_handshake_reply(c, deadline_ms, what, REIGN_EINVAL, t, err, err_size);
    }
    goto out;

append_failed:
    snprintf(err, err_size, "connecting to %s: out of memory", t->where);
    rc = REIGN_ENOMEM;
out:
    if (rc == REIGN_OK) {
        *out = c;
    } else if (c != NULL) {
        redisFree(c);
    }
    return rc;
}

int reign_redis_conn_reply(redisContext *c, int64_t deadline_ms, redisReply **out, char *err,
                           size_t err_size)
{
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(c, &reply) != REDIS_OK) {
            char cause[160];
            context_cause(c, cause, sizeof(cause));
            snprintf(err, err_size, "bad reply: %s", cause);
            return REIGN_EPROTO;
        }
        if (reply != NULL) {
            *out = reply;
            return REIGN_OK;
        }
        /* Keep writing while we wait: a long pipeline may not fit the
         * socket buffer, and the server answers the first commands while
         * the last are still on their way. */
        bool writing = sdslen(c->obuf) > 0;
        int ev = wait_fd(c->fd, (short)(POLLIN | (writing ? POLLOUT : 0)), deadline_ms);
        if (ev == 0) {
            snprintf(err, err_size, "no reply in time");
            return REIGN_ETIMEDOUT;
        }
        if (ev < 0) {
            snprintf(err, err_size, "poll: %s", strerror(errno));
            return REIGN_EBACKEND;
        }
        if ((ev & POLLOUT) != 0 && redisBufferWrite(c, NULL) != REDIS_OK) {
            context_cause(c, err, err_size);
            return REIGN_EBACKEND;
        }
        if ((ev & (POLLIN | POLLHUP | POLLERR)) != 0 && redisBufferRead(c) != REDIS_OK) {
            context_cause(c, err, err_size);
            return context_status(c);
        }
        if ((ev & POLLNVAL) != 0) {
            snprintf(err, err_size, "connection socket is not open");
            return REIGN_EBACKEND;
        }
    }
}

bool reign_redis_conn_idle_ok(redisContext *c)
{
    if (c->err != 0) {
        return false;
    }
    struct pollfd p = {.fd = c->fd, .events = POLLIN, .revents = 0};
    int n;
    do {
        n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    /* readable while idle: EOF (server timeout, restart) or bytes nobody
     * asked for; either way the stream is no longer ours to trust */
    return n == 0;
}

int reign_redis_conn_read_ready(redisContext *c, char *err, size_t err_size)
{
    /* A bounded number of reads: a flood of messages must not keep the
     * engine thread here; the rest stays readable for the next wait. */
    for (int i = 0; i < 16; i++) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN, .revents = 0};
        int n = poll(&p, 1, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(err, err_size, "poll: %s", strerror(errno));
            return REIGN_EBACKEND;
        }
        if (n == 0) {
            return REIGN_OK;
        }
        if ((p.revents & POLLNVAL) != 0) {
            snprintf(err, err_size, "connection socket is not open");
            return REIGN_EBACKEND;
        }
        if (redisBufferRead(c) != REDIS_OK) {
            context_cause(c, err, err_size);
            return context_status(c);
        }
    }
    return REIGN_OK;
}
