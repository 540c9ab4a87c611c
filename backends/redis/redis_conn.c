/* One connection of the redis backend (see redis_conn.h).
 *
 * Map: 1. the byte stream (plain or TLS) and its output buffer; 2. the
 * pump that writes and reads until a reply is complete or the deadline
 * passes; 3. the handshake commands (AUTH, SELECT, ROLE); 4. open, idle
 * check, drain.
 *
 * hiredis formats the commands (redisFormatCommandArgv) and parses the
 * replies (a redisReader, with our element-count limit); it never touches
 * the socket, so plaintext and TLS go through the same code. */
#include "redis_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reign/reign.h"

#include "redis_net.h"
#include "redis_reply.h"

#define CONN_READ_SIZE 16384 /* one TLS record's worth of plaintext */

struct reign_redis_conn {
    int fd;
    SSL *ssl; /* NULL: plaintext */
    redisReader *reader;
    char *obuf; /* formatted commands not yet written: [ooff, olen) */
    size_t olen, ooff, ocap;
    bool got_bytes; /* the server has sent something since connect */
};

/* ---- 1. The byte stream -------------------------------------------------- */

/* Returns > 0 bytes, 0 with *want set (would block), -1 with *status, err. */
static ssize_t stream_read(reign_redis_conn *c, char *buf, size_t len, short *want, int *status,
                           char *err, size_t err_size)
{
    if (c->ssl != NULL) {
        return reign_redis_tls_read(c->ssl, buf, len, want, status, err, err_size);
    }
    ssize_t n;
    do {
        n = recv(c->fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        *want = POLLIN;
        return 0;
    }
    snprintf(err, err_size, "%s", n == 0 ? "server closed the connection" : strerror(errno));
    *status = REIGN_EBACKEND;
    return -1;
}

static ssize_t stream_write(reign_redis_conn *c, const char *buf, size_t len, short *want,
                            int *status, char *err, size_t err_size)
{
    if (c->ssl != NULL) {
        return reign_redis_tls_write(c->ssl, buf, len, want, status, err, err_size);
    }
    ssize_t n;
    do {
        n = send(c->fd, buf, len, MSG_NOSIGNAL); /* EPIPE, not SIGPIPE */
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        return n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        *want = POLLOUT;
        return 0;
    }
    snprintf(err, err_size, "%s", strerror(errno));
    *status = REIGN_EBACKEND;
    return -1;
}

int reign_redis_conn_append(reign_redis_conn *c, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0 || cmd == NULL) {
        return REIGN_ENOMEM;
    }
    if (c->ooff > 0 && c->ooff == c->olen) {
        c->ooff = c->olen = 0; /* all written: start over at the front */
    }
    if (c->olen + (size_t)len > c->ocap) {
        size_t cap = c->ocap > 0 ? c->ocap : 4096;
        while (cap < c->olen + (size_t)len) {
            cap *= 2;
        }
        char *p = realloc(c->obuf, cap);
        if (p == NULL) {
            redisFreeCommand(cmd);
            return REIGN_ENOMEM;
        }
        c->obuf = p;
        c->ocap = cap;
    }
    memcpy(c->obuf + c->olen, cmd, (size_t)len);
    c->olen += (size_t)len;
    redisFreeCommand(cmd);
    return REIGN_OK;
}

/* Feed what arrived to the reader. A plaintext connection whose first
 * byte is a TLS record type (alert 0x15, handshake 0x16) reached a TLS
 * port: say so, rather than hiredis' "got \x15 as reply type byte". */
static int feed(reign_redis_conn *c, const char *buf, size_t n, char *err, size_t err_size)
{
    if (c->ssl == NULL && !c->got_bytes && (buf[0] == 0x15 || buf[0] == 0x16)) {
        snprintf(err, err_size, "the server answered in TLS: use rediss://");
        return REIGN_EPROTO;
    }
    c->got_bytes = true;
    if (redisReaderFeed(c->reader, buf, n) != REDIS_OK) {
        snprintf(err, err_size, "out of memory reading a reply");
        return REIGN_ENOMEM;
    }
    return REIGN_OK;
}

int reign_redis_conn_take(reign_redis_conn *c, redisReply **out, char *err, size_t err_size)
{
    void *reply = NULL;
    if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
        snprintf(err, err_size, "bad reply: %s",
                 c->reader->errstr[0] != '\0' ? c->reader->errstr : "protocol error");
        return REIGN_EPROTO;
    }
    *out = reply;
    return REIGN_OK;
}

/* ---- 2. The pump --------------------------------------------------------- */

/* A plaintext connection closed before the server said anything: the
 * usual sign of a TLS-only port. */
static void eof_hint(const reign_redis_conn *c, int status, char *err, size_t err_size)
{
    size_t len = strlen(err);
    if (c->ssl == NULL && !c->got_bytes && status == REIGN_EBACKEND && len + 1 < err_size) {
        snprintf(err + len, err_size - len,
                 " before answering (a TLS port does that to plaintext: rediss://?)");
    }
}

int reign_redis_conn_reply(reign_redis_conn *c, int64_t deadline_ms, redisReply **out, char *err,
                           size_t err_size)
{
    char buf[CONN_READ_SIZE];
    for (;;) {
        redisReply *r = NULL;
        int rc = reign_redis_conn_take(c, &r, err, err_size);
        if (rc != REIGN_OK || r != NULL) {
            *out = r;
            return rc;
        }
        /* Keep writing while we wait: a long pipeline may not fit the
         * socket buffer, and the server answers the first commands while
         * the last are still on their way. */
        bool progress = false;
        short want_w = 0, want_r = 0;
        int status = REIGN_EBACKEND;
        if (c->ooff < c->olen) {
            ssize_t n = stream_write(c, c->obuf + c->ooff, c->olen - c->ooff, &want_w, &status,
                                     err, err_size);
            if (n < 0) {
                return status;
            }
            c->ooff += (size_t)n;
            progress = n > 0;
        }
        ssize_t n = stream_read(c, buf, sizeof(buf), &want_r, &status, err, err_size);
        if (n < 0) {
            eof_hint(c, status, err, err_size);
            return status;
        }
        if (n > 0) {
            rc = feed(c, buf, (size_t)n, err, err_size);
            if (rc != REIGN_OK) {
                return rc;
            }
            continue;
        }
        if (progress) {
            continue;
        }
        int ev = reign_redis_net_wait(c->fd, (short)(want_r | want_w), deadline_ms);
        if (ev == 0) {
            snprintf(err, err_size, "no reply in time");
            return REIGN_ETIMEDOUT;
        }
        if (ev < 0) {
            snprintf(err, err_size, "poll: %s", strerror(errno));
            return REIGN_EBACKEND;
        }
        if ((ev & POLLNVAL) != 0) {
            snprintf(err, err_size, "connection socket is not open");
            return REIGN_EBACKEND;
        }
        /* POLLHUP, POLLERR: the next read or write says what happened */
    }
}

/* ---- 3. The handshake commands ------------------------------------------- */

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

/* ROLE's answer: ["master", offset, replicas] on a master, ["slave", ...]
 * on a replica, ["sentinel", names] on a sentinel. */
static int check_role(const redisReply *r, const reign_redis_target *t, char *err, size_t err_size)
{
    if (r->type == REDIS_REPLY_ERROR) {
        /* An ACL user without @admin may not run ROLE: nothing to check
         * with, and a replica still refuses the scripts (READONLY). */
        return REIGN_OK;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(err, err_size, "ROLE on %s: unexpected reply", t->where);
        return REIGN_EPROTO;
    }
    const redisReply *role = r->element[0];
    if (role->len == 6 && memcmp(role->str, "master", 6) == 0) {
        return REIGN_OK;
    }
    char shown[40];
    reign_printable(role->str, role->len, shown, sizeof(shown));
    snprintf(err, err_size,
             "%s is not a master (ROLE says \"%s\"): the sentinels' answer is stale or a "
             "failover is under way",
             t->where, shown);
    return REIGN_EBACKEND;
}

/* One handshake command's reply; a server error gets `status`. */
static int check_handshake_reply(reign_redis_conn *c, int64_t deadline_ms, const char *what,
                                 int status, const reign_redis_target *t, char *err,
                                 size_t err_size)
{
    redisReply *r = NULL;
    char cause[240];
    int rc = reign_redis_conn_reply(c, deadline_ms, &r, cause, sizeof(cause));
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "%s on %s: %s", what, t->where, cause);
        return rc == REIGN_ETIMEDOUT ? REIGN_EBACKEND : rc;
    }
    if (strcmp(what, "ROLE") == 0) {
        rc = check_role(r, t, err, err_size);
    } else if (r->type == REDIS_REPLY_ERROR) {
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

/* AUTH, SELECT and ROLE as one pipeline: one round trip. */
static int handshake(reign_redis_conn *c, const reign_redis_target *t, int64_t deadline_ms,
                     char *err, size_t err_size)
{
    bool auth = false, select = false;
    char db[16];
    int rc = REIGN_OK;
    if (t->user != NULL && t->user[0] != '\0') {
        const char *argv[] = {"AUTH", t->user, t->password != NULL ? t->password : ""};
        size_t lens[] = {4, strlen(argv[1]), strlen(argv[2])};
        rc = reign_redis_conn_append(c, 3, argv, lens);
        auth = true;
    } else if (t->password != NULL && t->password[0] != '\0') {
        const char *argv[] = {"AUTH", t->password};
        size_t lens[] = {4, strlen(t->password)};
        rc = reign_redis_conn_append(c, 2, argv, lens);
        auth = true;
    }
    if (rc == REIGN_OK && t->db > 0) {
        snprintf(db, sizeof(db), "%d", t->db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, strlen(db)};
        rc = reign_redis_conn_append(c, 2, argv, lens);
        select = true;
    }
    if (rc == REIGN_OK && t->want_master) {
        const char *argv[] = {"ROLE"};
        size_t lens[] = {4};
        rc = reign_redis_conn_append(c, 1, argv, lens);
    }
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "connecting to %s: out of memory", t->where);
        return rc;
    }
    /* read every reply that was asked for, reporting the first failure */
    if (auth) {
        rc = check_handshake_reply(c, deadline_ms, "AUTH", REIGN_EAUTH, t, err, err_size);
    }
    if (rc == REIGN_OK && select) {
        char what[32];
        snprintf(what, sizeof(what), "SELECT %d", t->db);
        rc = check_handshake_reply(c, deadline_ms, what, REIGN_EINVAL, t, err, err_size);
    }
    if (rc == REIGN_OK && t->want_master) {
        rc = check_handshake_reply(c, deadline_ms, "ROLE", REIGN_EBACKEND, t, err, err_size);
    }
    return rc;
}

/* ---- 4. Open, idle check, drain ------------------------------------------ */

void reign_redis_conn_free(reign_redis_conn *c)
{
    if (c == NULL) {
        return;
    }
    reign_redis_tls_close(c->ssl);
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->reader != NULL) {
        redisReaderFree(c->reader);
    }
    free(c->obuf);
    free(c);
}

int reign_redis_conn_fd(const reign_redis_conn *c)
{
    return c->fd;
}

int reign_redis_conn_open(const reign_redis_target *t, int64_t deadline_ms, reign_redis_conn **out,
                          char *err, size_t err_size)
{
    char cause[240];
    int rc = REIGN_OK;
    reign_redis_conn *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->fd = -1;
        c->reader = redisReaderCreate();
    }
    if (c == NULL || c->reader == NULL) {
        snprintf(err, err_size, "cannot connect to %s: out of memory", t->where);
        rc = REIGN_ENOMEM;
        goto out;
    }
    reign_redis_reader_limit(c->reader);
    c->fd = reign_redis_net_dial(t->host, t->port, t->path, deadline_ms, cause, sizeof(cause));
    if (c->fd < 0) {
        snprintf(err, err_size, "cannot connect to %s: %s", t->where, cause);
        rc = REIGN_EBACKEND;
        goto out;
    }
    if (t->tls != NULL) {
        rc = reign_redis_tls_connect(t->tls, c->fd, t->host, deadline_ms, &c->ssl, cause,
                                     sizeof(cause));
        if (rc != REIGN_OK) {
            snprintf(err, err_size, "cannot connect to %s: %s", t->where, cause);
            goto out;
        }
    }
    rc = handshake(c, t, deadline_ms, err, err_size);
out:
    if (rc == REIGN_OK) {
        *out = c;
    } else {
        reign_redis_conn_free(c);
    }
    return rc;
}

bool reign_redis_conn_idle_ok(reign_redis_conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN, .revents = 0};
    int n;
    do {
        n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
        return true;
    }
    if (n < 0 || c->ssl == NULL) {
        /* readable while idle: EOF (server timeout, restart) or bytes
         * nobody asked for; either way the stream is no longer ours */
        return false;
    }
    /* TLS 1.3 servers send session tickets after the handshake: records
     * that are no data. SSL_read consumes them and says "want read". */
    char buf[CONN_READ_SIZE];
    char err[160];
    short want = 0;
    int status = REIGN_OK;
    ssize_t got = stream_read(c, buf, sizeof(buf), &want, &status, err, sizeof(err));
    return got == 0;
}

int reign_redis_conn_read_ready(reign_redis_conn *c, char *err, size_t err_size)
{
    char buf[CONN_READ_SIZE];
    /* A bounded number of reads: a flood of messages must not keep the
     * engine thread here; the rest stays readable for the next wait. TLS
     * may hold a decrypted record the socket no longer shows: read that
     * too, or it would wait unseen for the next byte to arrive. */
    for (int i = 0; i < 16 || (c->ssl != NULL && SSL_pending(c->ssl) > 0); i++) {
        short want = 0;
        int status = REIGN_EBACKEND;
        ssize_t n = stream_read(c, buf, sizeof(buf), &want, &status, err, err_size);
        if (n < 0) {
            return status;
        }
        if (n == 0) {
            return REIGN_OK;
        }
        int rc = feed(c, buf, (size_t)n, err, err_size);
        if (rc != REIGN_OK) {
            return rc;
        }
    }
    return REIGN_OK;
}
