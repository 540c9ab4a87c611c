/* The redis backend: leases in Redis, reached as redis://, unix://,
 * rediss:// (TLS) or through Sentinel (redis-sentinel://, rediss-sentinel://).
 *
 * Map of this file:
 *   1. state, links and their reconnection backoff
 *   2. the command connection: find the master (Sentinel), connect,
 *      SCRIPT LOAD, reconnect with backoff
 *   3. the subscribers: SUBSCRIBE <prefix>released on the server, and
 *      +switch-master on a sentinel; the notification fd; drain
 *   4. execute: one pipeline of EVALSHA per batch, a second round with
 *      EVAL for ops that met NOSCRIPT
 *   5. open, close, the vtable of redis:// and unix://
 *   6. observers: <prefix>changed (published by ACQUIRE and set_metadata,
 *      subscribed to while observed), set_metadata
 *
 * The URI is read in redis_config.c; keys, scripts and reply parsing live
 * in redis_keys.c, redis_scripts.c and redis_reply.c; connection mechanics
 * in redis_conn.c (socket, TLS in redis_tls.c); Sentinel's parsing and the
 * resolver in redis_sentinel.c. The vtables of the other schemes are in
 * redis_scheme_*.c. Every member is called from the factory's engine
 * thread only, so the state has no lock.
 */
#include "redis_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "redis_config.h"
#include "redis_conn.h"
#include "redis_keys.h"
#include "redis_reply.h"
#include "redis_scripts.h"
#include "redis_sentinel.h"
#include "redis_tls.h"

/* ---- 1. State and links -------------------------------------------------- */

#define REDIS_ERR_SIZE 640
#define SWITCH_CHANNEL "+switch-master"

/* One connection and its reconnection pacing (backend.h). */
typedef struct redis_link {
    reign_redis_conn *conn; /* NULL while broken */
    reign_backend_link pace;
} redis_link;

typedef struct redis_state {
    const reign_backend_config *cfg; /* owned by the core, lives until close */
    reign_redis_config conf;
    reign_redis_target target; /* the server, or the master found last */
    reign_redis_tls *tls;      /* NULL: plaintext */
    reign_redis_sentinels sentinels;
    reign_redis_hostport master; /* behind sentinels: the address in use */
    size_t sentinel_first;       /* the sentinel that answered last */
    const char *holder;          /* cfg->instance_id */
    const char *metadata;        /* cfg->metadata or "" */
    char sha[REIGN_REDIS_N_SCRIPTS][41]; /* SCRIPT LOAD results */
    redis_link cmd;                      /* lease scripts */
    redis_link sub;                      /* SUBSCRIBE <prefix>released only */
    redis_link sen;                      /* a sentinel: SUBSCRIBE +switch-master */
    bool sub_disabled;                   /* the server refused SUBSCRIBE: retry ticks only */
    bool saw_readonly;                   /* this batch met a replica */
    int epfd; /* behind sentinels: sub, sen and pokefd as one notification fd; else -1 */
    int pokefd; /* with epfd: an eventfd, readable once the lease subscriber is (re)subscribed */
    char *changed;      /* <prefix>changed: ACQUIRE and set_metadata publish there */
    size_t changed_len;
    bool observing;     /* sub also subscribes to `changed` (backend.h, observe) */
} redis_state;

/* Fail one op with the message shape every redis error has:
 * "redis: RENEW jobs/7: <cause> (redis://host:6379)". */
static void link_drop(redis_link *l)
{
    reign_redis_conn_free(l->conn);
    l->conn = NULL;
}

/* A connection that worked broke: try again at once, then back off. */
static void link_broken(redis_state *st, redis_link *l, const char *what, const char *cause)
{
    link_drop(l);
    char who[sizeof(st->conf.where) + 48];
    snprintf(who, sizeof(who), "%s connection to %s", what, st->conf.where);
    reign_backend_link_lost(st->cfg, &l->pace, who, cause);
}

static void link_failed(redis_state *st, redis_link *l, const char *what, int status,
                        const char *cause)
{
    char who[64];
    snprintf(who, sizeof(who), "%s connection", what);
    reign_backend_link_failed(st->cfg, &l->pace, who, status, cause);
}

static void link_up(redis_state *st, redis_link *l, reign_redis_conn *c, const char *what)
{
    l->conn = c;
    char who[sizeof(st->conf.where) + 48];
    snprintf(who, sizeof(who), "%s connection to %s", what, st->conf.where);
    reign_backend_link_up(st->cfg, &l->pace, who);
}

/* ---- 2. The command connection ------------------------------------------- */

/* SCRIPT LOAD every script in one pipeline; keep the SHA1s for EVALSHA. */
static int load_scripts(redis_state *st, reign_redis_conn *c, int64_t deadline_ms, char *err,
                        size_t err_size)
{
    int rc = REIGN_OK;
    for (int k = 0; k < REIGN_REDIS_N_SCRIPTS; k++) {
        const char *src = reign_redis_script((reign_op_kind)(k + 1));
        const char *argv[] = {"SCRIPT", "LOAD", src};
        size_t lens[] = {6, 4, strlen(src)};
        if (reign_redis_conn_append(c, 3, argv, lens) != REIGN_OK) {
            snprintf(err, err_size, "SCRIPT LOAD: out of memory");
            return REIGN_ENOMEM;
        }
    }
    /* read every reply even after a failure, to report the first */
    for (int k = 0; k < REIGN_REDIS_N_SCRIPTS; k++) {
        redisReply *r = NULL;
        char cause[300];
        int s = reign_redis_conn_reply(c, deadline_ms, &r, cause, sizeof(cause));
        if (s != REIGN_OK) {
            snprintf(err, err_size, "SCRIPT LOAD on %s: %s", st->conf.where, cause);
            return s == REIGN_ETIMEDOUT ? REIGN_EBACKEND : s;
        }
        if (rc == REIGN_OK && r->type == REDIS_REPLY_ERROR) {
            char shown[160];
            reign_printable(r->str, r->len, shown, sizeof(shown));
            snprintf(err, err_size, "SCRIPT LOAD refused by %s: %s", st->conf.where, shown);
            rc = reign_redis_error_status(r->str, r->len);
        } else if (rc == REIGN_OK && (r->type != REDIS_REPLY_STRING || r->len != 40)) {
            snprintf(err, err_size, "SCRIPT LOAD on %s: expected a SHA1, got reply type %d",
                     st->conf.where, r->type);
            rc = REIGN_EPROTO;
        } else if (rc == REIGN_OK) {
            memcpy(st->sha[k], r->str, 40);
            st->sha[k][40] = '\0';
        }
        freeReplyObject(r);
    }
    return rc;
}

/* Behind sentinels: ask them where the master is now, and aim the target
 * (and the messages) at it. */
static int find_master(redis_state *st, int64_t deadline_ms, char *err, size_t err_size)
{
    reign_redis_hostport hp;
    char cause[REDIS_ERR_SIZE - 64];
    int rc = reign_redis_sentinel_resolve(&st->sentinels, &st->sentinel_first, deadline_ms, &hp,
                                          cause, sizeof(cause));
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "no address for master %s: %s", st->conf.master, cause);
        return rc;
    }
    if (strcmp(hp.host, st->master.host) != 0 || hp.port != st->master.port) {
        char was[REIGN_REDIS_HOST_MAX + 16], now[REIGN_REDIS_HOST_MAX + 16];
        reign_redis_hostport_str(&st->master, was, sizeof(was));
        reign_redis_hostport_str(&hp, now, sizeof(now));
        reign_backend_log(st->cfg, REIGN_LOG_INFO, "master %s is at %s%s%s (%s)", st->conf.master,
                          now, st->master.port != 0 ? ", was " : "",
                          st->master.port != 0 ? was : "", st->cfg->uri_redacted);
        st->master = hp;
    }
    char addr[REIGN_REDIS_HOST_MAX + 16];
    reign_redis_hostport_str(&st->master, addr, sizeof(addr));
    snprintf(st->conf.where, sizeof(st->conf.where), "%s (master %s)", addr, st->conf.master);
    st->target.host = st->master.host;
    st->target.port = st->master.port;
    return REIGN_OK;
}

static int cmd_connect(redis_state *st, int64_t deadline_ms, char *err, size_t err_size)
{
    reign_redis_conn *c = NULL;
    int rc = st->conf.sentinel ? find_master(st, deadline_ms, err, err_size) : REIGN_OK;
    if (rc == REIGN_OK) {
        rc = reign_redis_conn_open(&st->target, deadline_ms, &c, err, err_size);
    }
    if (rc == REIGN_OK) {
        rc = load_scripts(st, c, deadline_ms, err, err_size);
        if (rc == REIGN_EAUTH && st->target.password == NULL && st->target.user == NULL &&
            strstr(err, "NOAUTH") != NULL) {
            size_t len = strlen(err);
            if (st->target.path != NULL) {
                snprintf(err + len, err_size - len,
                         "; the server wants a password: unix://:PASSWORD@localhost/path/redis.sock");
            } else {
                snprintf(err + len, err_size - len,
                         "; the server wants a password: %s://:PASSWORD@host:port", st->cfg->scheme);
            }
        }
    }
    if (rc != REIGN_OK) {
        reign_redis_conn_free(c);
        return rc;
    }
    link_up(st, &st->cmd, c, "command");
    return REIGN_OK;
}

/* Make sure the command connection is up before a batch. */
static int cmd_ensure(redis_state *st, int64_t deadline_ms, char *err, size_t err_size)
{
    if (st->cmd.conn != NULL) {
        if (reign_redis_conn_idle_ok(st->cmd.conn)) {
            return REIGN_OK;
        }
        /* Closed while idle (server restart, `timeout` in redis.conf):
         * nothing of this batch was sent yet, so reconnect at once. */
        link_broken(st, &st->cmd, "command", "closed while idle");
    }
    int64_t now = reign_monotonic_ms();
    if (!reign_backend_link_may_try(&st->cmd.pace, now)) {
        return reign_backend_link_refusal(&st->cmd.pace, now, err, err_size);
    }
    int rc = cmd_connect(st, deadline_ms, err, err_size);
    if (rc != REIGN_OK) {
        link_failed(st, &st->cmd, "command", rc, err);
    }
    return rc;
}

/* The master moved (+switch-master, or a READONLY answer): both links to
 * the old one go, and the next batch asks the sentinels again. */
static void master_moved(redis_state *st, const char *why)
{
    if (st->cmd.conn != NULL) {
        link_broken(st, &st->cmd, "command", why);
    }
    if (st->sub.conn != NULL) {
        link_broken(st, &st->sub, "subscriber", why);
    }
    /* the first attempt at once: the sentinels know the new master already */
    reign_backend_link_retry_now(&st->cmd.pace);
    reign_backend_link_retry_now(&st->sub.pace);
}

/* ---- 3. The subscribers -------------------------------------------------- */

/* Connect to t and SUBSCRIBE channel; *out on success. */
static int subscribe_to(redis_state *st, const reign_redis_target *t, const char *channel,
                        size_t channel_len, int64_t deadline_ms, reign_redis_conn **out,
                        char *err, size_t err_size)
{
    reign_redis_conn *c = NULL;
    redisReply *r = NULL;
    int rc = reign_redis_conn_open(t, deadline_ms, &c, err, err_size);
    if (rc != REIGN_OK) {
        goto out;
    }
    /* Observed: the changes channel too, on the same connection. Its
     * confirmation comes after the first and is taken by the drain (it
     * names no resource). */
    bool both = st->observing && channel == st->conf.channel;
    const char *argv[] = {"SUBSCRIBE", channel, st->changed};
    size_t lens[] = {9, channel_len, st->changed_len};
    if (reign_redis_conn_append(c, both ? 3 : 2, argv, lens) != REIGN_OK) {
        snprintf(err, err_size, "SUBSCRIBE: out of memory");
        rc = REIGN_ENOMEM;
        goto out;
    }
    char cause[300];
    rc = reign_redis_conn_reply(c, deadline_ms, &r, cause, sizeof(cause));
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "SUBSCRIBE on %s: %s", t->where, cause);
        rc = rc == REIGN_ETIMEDOUT ? REIGN_EBACKEND : rc;
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char shown[160];
        reign_printable(r->str, r->len, shown, sizeof(shown));
        snprintf(err, err_size, "SUBSCRIBE refused by %s: %s", t->where, shown);
        rc = reign_redis_error_status(r->str, r->len);
        goto out;
    }
    /* ["subscribe", channel, count] confirms it */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len != 9 ||
        memcmp(r->element[0]->str, "subscribe", 9) != 0) {
        snprintf(err, err_size, "SUBSCRIBE on %s: unexpected reply", t->where);
        rc = REIGN_EPROTO;
        goto out;
    }
    *out = c;
    c = NULL;
out:
    if (r != NULL) {
        freeReplyObject(r);
    }
    reign_redis_conn_free(c);
    return rc;
}

/* Bring the lease subscriber back if it is down and its backoff has passed. */
static void sub_maintain(redis_state *st, int64_t deadline_ms)
{
    if (st->sub.conn != NULL || st->sub_disabled || !reign_backend_link_may_try(&st->sub.pace, reign_monotonic_ms()) ||
        reign_monotonic_ms() >= deadline_ms) {
        return;
    }
    char err[REDIS_ERR_SIZE];
    reign_redis_conn *c = NULL;
    int rc = subscribe_to(st, &st->target, st->conf.channel, st->conf.channel_len, deadline_ms,
                          &c, err, sizeof(err));
    if (rc == REIGN_OK) {
        link_up(st, &st->sub, c, "subscriber");
        /* Whatever was published while it was away went unheard. Behind
         * sentinels the notification fd stays the same epoll fd, so the
         * core cannot see the reconnect: the drain tells it (below). */
        if (st->pokefd >= 0) {
            uint64_t one = 1;
            ssize_t w = write(st->pokefd, &one, sizeof(one));
            (void)w; /* a full counter is still readable */
        }
    } else if (rc == REIGN_EAUTH) {
        /* The ACL lets us run the scripts but not subscribe: work on, with
         * the engine's retry ticks instead of release notifications. */
        st->sub_disabled = true;
        reign_backend_log(st->cfg, REIGN_LOG_WARN,
                          "%s; no release notifications, candidates retry on their interval (%s)",
                          err, st->cfg->uri_redacted);
    } else {
        link_failed(st, &st->sub, "subscriber", rc, err);
    }
}

/* Behind sentinels: keep one subscribed to +switch-master, so a failover
 * is followed within a round trip instead of at the next failed batch. */
static void sen_maintain(redis_state *st, int64_t deadline_ms)
{
    if (!st->conf.sentinel || st->sen.conn != NULL || !reign_backend_link_may_try(&st->sen.pace, reign_monotonic_ms()) ||
        reign_monotonic_ms() >= deadline_ms) {
        return;
    }
    char err[REDIS_ERR_SIZE] = "";
    int rc = REIGN_EBACKEND;
    for (size_t k = 0; k < st->sentinels.n && rc != REIGN_OK; k++) {
        const reign_redis_hostport *hp =
            &st->sentinels.list[(st->sentinel_first + k) % st->sentinels.n];
        char where[REIGN_REDIS_HOST_MAX + 32];
        reign_redis_hostport_str(hp, where, sizeof(where));
        reign_redis_target t = {.host = hp->host,
                                .port = hp->port,
                                .user = st->sentinels.user,
                                .password = st->sentinels.password,
                                .where = where,
                                .tls = st->tls};
        reign_redis_conn *c = NULL;
        rc = subscribe_to(st, &t, SWITCH_CHANNEL, strlen(SWITCH_CHANNEL), deadline_ms, &c, err,
                          sizeof(err));
        if (rc == REIGN_OK) {
            link_up(st, &st->sen, c, "sentinel subscriber");
        }
    }
    if (rc != REIGN_OK) {
        link_failed(st, &st->sen, "sentinel subscriber", rc, err);
    }
}

static int redis_epoll_add(redis_state *st, const redis_link *l)
{
    if (l->conn == NULL) {
        return 0;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = reign_redis_conn_fd(l->conn);
    /* A closed fd left the set by itself; EEXIST: still this connection. */
    if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0 && errno != EEXIST) {
        return -1;
    }
    return 1;
}

int reign_redis_notify_fd(void *state)
{
    redis_state *st = state;
    if (st->epfd < 0) {
        return st->sub.conn != NULL ? reign_redis_conn_fd(st->sub.conn) : -1;
    }
    if (redis_epoll_add(st, &st->sub) < 0 || redis_epoll_add(st, &st->sen) < 0) {
        return -1; /* no notifications this round: the retry ticks still run */
    }
    return st->epfd; /* pokefd is always in it */
}

/* A pub/sub message ["message", channel, payload]: the payload, or NULL. */
static const redisReply *message_payload(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element == NULL) {
        return NULL;
    }
    const redisReply *kind = r->element[0];
    if (kind == NULL || kind->type != REDIS_REPLY_STRING || kind->len != 7 ||
        memcmp(kind->str, "message", 7) != 0) {
        return NULL;
    }
    return r->element[2];
}

/* A released message names the resource released; anything else (a
 * subscribe confirmation) names none. */
static void tell_released(const redisReply *r, reign_released_fn released, void *ctx)
{
    const redisReply *res = message_payload(r);
    if (res == NULL) {
        return;
    }
    if (res->type == REDIS_REPLY_STRING && res->len >= 1 && res->len <= REIGN_RESOURCE_ID_MAX &&
        memchr(res->str, '\0', res->len) == NULL) {
        released(ctx, res->str, res->len);
    } else {
        released(ctx, NULL, 0); /* someone else's publisher: cannot tell which */
    }
}

/* Drain one subscriber link; each message goes to on_message. False if
 * the link broke (it is then dropped). */
static bool drain_link(redis_state *st, redis_link *l, const char *what,
                       void (*on_message)(redis_state *, const redisReply *, reign_released_fn,
                                          void *),
                       reign_released_fn released, void *ctx)
{
    if (l->conn == NULL) {
        return true;
    }
    char err[REDIS_ERR_SIZE];
    int rc = reign_redis_conn_read_ready(l->conn, err, sizeof(err));
    while (rc == REIGN_OK) {
        redisReply *reply = NULL;
        rc = reign_redis_conn_take(l->conn, &reply, err, sizeof(err));
        if (rc != REIGN_OK || reply == NULL) {
            break;
        }
        on_message(st, reply, released, ctx);
        freeReplyObject(reply);
        if (l->conn == NULL) {
            return true; /* on_message dropped it */
        }
    }
    if (rc != REIGN_OK) {
        link_broken(st, l, what, err);
        return false;
    }
    return true;
}

static void on_released_message(redis_state *st, const redisReply *r, reign_released_fn released,
                                void *ctx)
{
    (void)st;
    tell_released(r, released, ctx);
}

static void on_switch_message(redis_state *st, const redisReply *r, reign_released_fn released,
                              void *ctx)
{
    const redisReply *p = message_payload(r);
    reign_redis_hostport to;
    if (p == NULL || p->type != REDIS_REPLY_STRING ||
        !reign_redis_parse_switch(p->str, p->len, st->conf.master, &to)) {
        return; /* another master's failover, or not a message */
    }
    char addr[REIGN_REDIS_HOST_MAX + 16], why[REIGN_REDIS_HOST_MAX + 64];
    reign_redis_hostport_str(&to, addr, sizeof(addr));
    snprintf(why, sizeof(why), "sentinels switched the master to %s", addr);
    master_moved(st, why);
    /* Leases may have changed hands with the master: every campaign
     * looks again now rather than at its next retry tick. */
    released(ctx, NULL, 0);
}

void reign_redis_notify_drain(void *state, reign_released_fn released, void *ctx)
{
    redis_state *st = state;
    uint64_t pokes = 0;
    if (st->pokefd >= 0 && read(st->pokefd, &pokes, sizeof(pokes)) == sizeof(pokes) && pokes > 0) {
        released(ctx, NULL, 0); /* the subscriber came back: look at everything again */
    }
    /* Releases may go unheard until the next execute reconnects (and
     * notify_fd says -1 meanwhile): have every candidate try now. */
    if (!drain_link(st, &st->sub, "subscriber", on_released_message, released, ctx)) {
        released(ctx, NULL, 0);
    }
    (void)drain_link(st, &st->sen, "sentinel subscriber", on_switch_message, released, ctx);
}

/* ---- 4. Execute ---------------------------------------------------------- */

/* Append op's script call: EVALSHA sha (or EVAL source) numkeys keys… args…
 * Every argument goes with its length: the resource ID is binary. */
static int append_op(redis_state *st, reign_redis_conn *c, const reign_op *op, bool eval)
{
    int rc = REIGN_ENOMEM;
    char *lease = NULL, *term_key = NULL;
    size_t lease_len = 0, term_key_len = 0;
    char term[24];
    const char *argv[10];
    size_t lens[10];
    int argc = 0;

    lease = reign_redis_key(st->conf.prefix, op->resource, op->resource_len, REIGN_REDIS_KEY_LEASE,
                            &lease_len);
    if (lease == NULL) {
        goto out;
    }
    const char *script = eval ? reign_redis_script(op->kind) : st->sha[op->kind - 1];
#define ARG(p, n) (argv[argc] = (p), lens[argc] = (n), argc++)
    ARG(eval ? "EVAL" : "EVALSHA", eval ? 4 : 7);
    ARG(script, strlen(script));
    ARG(op->kind == REIGN_OP_ACQUIRE ? "2" : "1", 1);
    ARG(lease, lease_len);
    snprintf(term, sizeof(term), "%" PRIu64, op->term);
    switch (op->kind) {
    case REIGN_OP_ACQUIRE:
        term_key = reign_redis_key(st->conf.prefix, op->resource, op->resource_len, REIGN_REDIS_KEY_TERM,
                                   &term_key_len);
        if (term_key == NULL) {
            goto out;
        }
        ARG(term_key, term_key_len);
        ARG(st->holder, strlen(st->holder));
        ARG(st->conf.ttl_arg, strlen(st->conf.ttl_arg));
        ARG(st->metadata, strlen(st->metadata));
        ARG(st->changed, st->changed_len); /* observers hear of the acquisition */
        ARG(op->resource, op->resource_len);
        break;
    case REIGN_OP_RENEW:
        ARG(st->holder, strlen(st->holder));
        ARG(term, strlen(term));
        ARG(st->conf.ttl_arg, strlen(st->conf.ttl_arg));
        break;
    case REIGN_OP_RELEASE:
        ARG(st->holder, strlen(st->holder));
        ARG(term, strlen(term));
        ARG(st->conf.channel, st->conf.channel_len);
        ARG(op->resource, op->resource_len);
        break;
    case REIGN_OP_READ: break;
    }
#undef ARG
    rc = reign_redis_conn_append(c, argc, argv, lens);
out:
    free(lease);
    free(term_key);
    return rc;
}

/* After WAIT: with fewer replicas than wait_replicas holding the writes,
 * an ACQUIRE or RENEW that succeeded on the master may vanish in a
 * failover (replication is asynchronous). Such an op is an ERROR: outcome
 * unknown, so the core neither starts nor extends a belief on it. */
static void unacknowledged(redis_state *st, reign_op *ops, const size_t *idx, size_t n,
                           const redisReply *r)
{
    long long acked = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (acked >= st->conf.wait_replicas) {
        return;
    }
    char cause[200];
    if (acked < 0) {
        char shown[120];
        reign_printable(r->type == REDIS_REPLY_ERROR ? r->str : "not an integer",
                        r->type == REDIS_REPLY_ERROR ? r->len : 14, shown, sizeof(shown));
        snprintf(cause, sizeof(cause), "WAIT failed: %s", shown);
    } else {
        snprintf(cause, sizeof(cause),
                 "acknowledged by %lld of the %d replica(s) wait_replicas asks for: it may not "
                 "survive a failover",
                 acked, st->conf.wait_replicas);
    }
    for (size_t i = 0; i < n; i++) {
        reign_op *op = &ops[idx[i]];
        if (op->result == REIGN_RES_OK &&
            (op->kind == REIGN_OP_ACQUIRE || op->kind == REIGN_OP_RENEW)) {
            reign_op_fail(op, REIGN_EBACKEND, "%s", cause);
        }
    }
}

/* Send ops[idx[0..n)] as one pipeline and read their replies in order. Ops
 * that met NOSCRIPT are put in retry[] (count in *n_retry) when retry is
 * non-NULL, else failed. With eval, the pipeline starts with SCRIPT LOADs
 * to refill the server's cache and the ops carry their scripts' source. On
 * a broken connection every op not yet answered fails and the connection is
 * dropped: their outcome is unknown. */
static void run_round(redis_state *st, reign_op *ops, const size_t *idx, size_t n, bool eval,
                      int64_t deadline_ms, size_t *retry, size_t *n_retry)
{
    reign_redis_conn *c = st->cmd.conn;
    char err[REDIS_ERR_SIZE];
    int n_loads = 0;
    size_t answered = 0;
    int rc = REIGN_OK;

    for (int k = 0; eval && k < REIGN_REDIS_N_SCRIPTS; k++) {
        const char *src = reign_redis_script((reign_op_kind)(k + 1));
        const char *argv[] = {"SCRIPT", "LOAD", src};
        size_t lens[] = {6, 4, strlen(src)};
        if (reign_redis_conn_append(c, 3, argv, lens) != REIGN_OK) {
            break; /* harmless: EVAL works without the cache */
        }
        n_loads++;
    }
    for (size_t i = 0; i < n; i++) {
        if (append_op(st, c, &ops[idx[i]], eval) != REIGN_OK) {
            /* out of memory: the ops not appended fail, the others go out */
            for (size_t j = i; j < n; j++) {
                reign_op_fail(&ops[idx[j]], REIGN_ENOMEM, "out of memory building the command");
            }
            n = i;
            break;
        }
    }
    bool wait = st->conf.wait_replicas > 0 && n > 0;
    if (wait) {
        /* WAIT counts the replicas that have every write of this connection
         * so far: the scripts above. Half the time left, so that its answer
         * still arrives before our own deadline. */
        int64_t left = (deadline_ms - reign_monotonic_ms()) / 2;
        char nrep[16], ms[24];
        snprintf(nrep, sizeof(nrep), "%d", st->conf.wait_replicas);
        snprintf(ms, sizeof(ms), "%" PRId64, left > 1 ? left : 1);
        const char *argv[] = {"WAIT", nrep, ms};
        size_t lens[] = {4, strlen(nrep), strlen(ms)};
        wait = reign_redis_conn_append(c, 3, argv, lens) == REIGN_OK;
    }
    for (int k = 0; k < n_loads; k++) {
        redisReply *r = NULL;
        rc = reign_redis_conn_reply(c, deadline_ms, &r, err, sizeof(err));
        if (rc != REIGN_OK) {
            goto broken;
        }
        /* a refused load is not fatal here: EVAL below does not need it */
        if (r->type == REDIS_REPLY_STRING && r->len == 40) {
            memcpy(st->sha[k], r->str, 40);
        }
        freeReplyObject(r);
    }
    for (answered = 0; answered < n; answered++) {
        reign_op *op = &ops[idx[answered]];
        redisReply *r = NULL;
        rc = reign_redis_conn_reply(c, deadline_ms, &r, err, sizeof(err));
        if (rc != REIGN_OK) {
            goto broken;
        }
        if (r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "READONLY", 8) == 0) {
            st->saw_readonly = true; /* a replica: the master moved */
        }
        if (retry != NULL && reign_redis_reply_is_noscript(r)) {
            retry[(*n_retry)++] = idx[answered];
        } else {
            char cause[REDIS_ERR_SIZE];
            int prc = reign_redis_reply_parse(op, r, cause, sizeof(cause));
            if (prc != REIGN_OK) {
                reign_op_fail(op, prc, "%s", cause);
            }
        }
        freeReplyObject(r);
    }
    if (wait) {
        redisReply *r = NULL;
        rc = reign_redis_conn_reply(c, deadline_ms, &r, err, sizeof(err));
        if (rc != REIGN_OK) {
            goto broken;
        }
        unacknowledged(st, ops, idx, n, r);
        freeReplyObject(r);
    }
    return;
broken:;
    /* The stream is out of step (or gone): the ops not answered may or may
     * not have run. A later reply must never be taken for a later op. */
    char cause[REDIS_ERR_SIZE + sizeof(st->conf.where) + 64];
    if (rc == REIGN_ETIMEDOUT) {
        snprintf(cause, sizeof(cause), "no reply from %s in time; connection dropped", st->conf.where);
    } else {
        snprintf(cause, sizeof(cause), "connection to %s lost: %s", st->conf.where, err);
    }
    for (size_t j = answered; j < n; j++) {
        reign_op_fail(&ops[idx[j]], rc == REIGN_EPROTO ? REIGN_EPROTO : REIGN_EBACKEND, "%s", cause);
    }
    link_broken(st, &st->cmd, "command", rc == REIGN_ETIMEDOUT ? "no reply in time" : err);
}

int reign_redis_execute(void *state, reign_batch *b)
{
    redis_state *st = state;
    reign_op *ops = b->ops;
    size_t n_ops = b->n_ops;
    size_t *idx = NULL, *retry = NULL;
    size_t n = 0, n_retry = 0;
    int rc = REIGN_OK;
    char err[REDIS_ERR_SIZE];
    int64_t deadline_ms = b->deadline_ns / 1000000;

    st->saw_readonly = false;
    if (n_ops == 0) {
        goto out;
    }
    idx = malloc(n_ops * sizeof(*idx));
    retry = malloc(n_ops * sizeof(*retry));
    if (idx == NULL || retry == NULL) {
        for (size_t i = 0; i < n_ops; i++) {
            reign_op_fail(&ops[i], REIGN_ENOMEM, "out of memory");
        }
        rc = REIGN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_ops; i++) {
        idx[n++] = i;
    }
    rc = cmd_ensure(st, deadline_ms, err, sizeof(err));
    if (rc != REIGN_OK) {
        for (size_t i = 0; i < n; i++) {
            reign_op_fail(&ops[idx[i]], rc, "%s", err);
        }
        reign_backend_error("redis: %s (%s)", err, st->cfg->uri_redacted);
        goto out;
    }
    run_round(st, ops, idx, n, false, deadline_ms, retry, &n_retry);
    if (n_retry > 0) {
        /* The script cache was emptied (restart, SCRIPT FLUSH): those ops
         * did not run, so sending them again with their source is safe. */
        reign_backend_log(st->cfg, REIGN_LOG_INFO,
                          "NOSCRIPT from %s: resending %zu op(s) with EVAL", st->conf.where,
                          n_retry);
        if (st->cmd.conn != NULL) {
            run_round(st, ops, retry, n_retry, true, deadline_ms, NULL, NULL);
        } else {
            for (size_t i = 0; i < n_retry; i++) {
                reign_op_fail(&ops[retry[i]], REIGN_EBACKEND, "connection lost before resending");
            }
        }
    }
    if (st->saw_readonly && st->conf.sentinel) {
        /* a failover the sentinel subscription did not tell us about */
        master_moved(st, "the server answers READONLY: it is a replica now");
    }
    if (st->cmd.conn != NULL) {
        sub_maintain(st, deadline_ms);
    }
    sen_maintain(st, deadline_ms);
out:
    free(idx);
    free(retry);
    return rc;
}

/* ---- 5. Open, close, the vtable ------------------------------------------ */

void reign_redis_close(void *state)
{
    redis_state *st = state;
    link_drop(&st->cmd);
    link_drop(&st->sub);
    link_drop(&st->sen);
    if (st->epfd >= 0) {
        close(st->epfd);
    }
    if (st->pokefd >= 0) {
        close(st->pokefd);
    }
    reign_redis_tls_free(st->tls);
    reign_redis_config_free(&st->conf);
    free(st->changed);
    free(st);
}

int reign_redis_open(const reign_backend_config *cfg, void **state_out)
{
    redis_state *st = calloc(1, sizeof(*st));
    char err[REDIS_ERR_SIZE];
    int rc = REIGN_OK;

    if (st == NULL) {
        reign_backend_error("redis: out of memory");
        return REIGN_ENOMEM;
    }
    st->cfg = cfg;
    st->epfd = st->pokefd = -1;
    rc = reign_redis_config_parse(cfg, &st->conf);
    if (rc != REIGN_OK) {
        goto out;
    }
    if (st->conf.tls) {
        rc = reign_redis_tls_new(&st->conf.tls_cfg, &st->tls, err, sizeof(err));
        if (rc != REIGN_OK) {
            reign_backend_error("redis: %s (%s)", err, cfg->uri_redacted);
            goto out;
        }
    }
    st->target = (reign_redis_target){
        .host = st->conf.host,
        .port = st->conf.port,
        .path = st->conf.path,
        .user = st->conf.user,
        .password = st->conf.password,
        .db = st->conf.db,
        .where = st->conf.where,
        .tls = st->tls,
        .want_master = st->conf.sentinel,
    };
    if (st->conf.sentinel) {
        st->sentinels = (reign_redis_sentinels){
            .list = st->conf.sentinels,
            .n = st->conf.n_sentinels,
            .master = st->conf.master,
            .user = st->conf.sentinel_user,
            .password = st->conf.sentinel_password,
            .tls = st->tls,
        };
        st->epfd = epoll_create1(EPOLL_CLOEXEC);
        st->pokefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.fd = st->pokefd;
        if (st->epfd < 0 || st->pokefd < 0 ||
            epoll_ctl(st->epfd, EPOLL_CTL_ADD, st->pokefd, &ev) != 0) {
            reign_backend_error("redis: epoll/eventfd: %s (%s)", strerror(errno),
                                cfg->uri_redacted);
            rc = REIGN_EBACKEND;
            goto out;
        }
    }
    st->holder = cfg->instance_id;
    st->metadata = cfg->metadata != NULL ? cfg->metadata : "";
    st->changed_len = strlen(st->conf.prefix) + strlen("changed");
    st->changed = malloc(st->changed_len + 1);
    if (st->changed == NULL) {
        reign_backend_error("redis: out of memory (%s)", cfg->uri_redacted);
        rc = REIGN_ENOMEM;
        goto out;
    }
    snprintf(st->changed, st->changed_len + 1, "%schanged", st->conf.prefix);
    int64_t deadline_ms = cfg->open_deadline_ns / 1000000;
    rc = cmd_connect(st, deadline_ms, err, sizeof(err));
    if (rc != REIGN_OK) {
        reign_backend_error("redis: %s (%s)", err, cfg->uri_redacted);
        goto out;
    }
    /* Without the subscribers we still work, only slower to notice releases
     * and failovers: they are retried at later batches. */
    sub_maintain(st, deadline_ms);
    sen_maintain(st, deadline_ms);
    *state_out = st;
    st = NULL;
out:
    if (st != NULL) {
        reign_redis_close(st);
    }
    return rc;
}

static const char *const redis_params[] = {"db", "prefix", "wait_replicas", NULL};

const reign_backend reign_backend_redis = {
    REIGN_BACKEND_INIT,
    .scheme = "redis",
    .scheme_alt = "unix",
    .open = reign_redis_open,
    .execute = reign_redis_execute,
    .notify_fd = reign_redis_notify_fd,
    .notify_drain = reign_redis_notify_drain,
    .close = reign_redis_close,
    .observe = reign_redis_observe,
    .set_metadata = reign_redis_set_metadata,
    .params = redis_params,
};

/* ---- 6. Observers ------------------------------------------------------------ */

int reign_redis_observe(void *state, int on)
{
    redis_state *st = state;
    if (st->sub_disabled) {
        return REIGN_ENOTSUP; /* the ACL refuses SUBSCRIBE */
    }
    if (st->observing == (on != 0)) {
        return REIGN_OK;
    }
    st->observing = on != 0;
    /* Subscribe again with (or without) the changes channel at the next
     * execute; the core reads everything observed when the notification
     * fd comes back, so nothing falls into the gap. */
    if (st->sub.conn != NULL) {
        link_drop(&st->sub);
        reign_backend_link_retry_now(&st->sub.pace);
    }
    return REIGN_OK;
}

int reign_redis_set_metadata(void *state, const char *resource, size_t len, uint64_t term,
                             const char *metadata, int64_t deadline_ns)
{
    redis_state *st = state;
    char err[REDIS_ERR_SIZE];
    char shown[200];
    redisReply *r = NULL;
    char *lease = NULL;
    size_t lease_len = 0;
    int64_t deadline_ms = deadline_ns / 1000000;
    reign_printable(resource, len, shown, sizeof(shown));
    int rc = cmd_ensure(st, deadline_ms, err, sizeof(err));
    if (rc != REIGN_OK) {
        reign_backend_error("redis: set_metadata %s: %s (%s)", shown, err, st->cfg->uri_redacted);
        return rc;
    }
    lease = reign_redis_key(st->conf.prefix, resource, len, REIGN_REDIS_KEY_LEASE, &lease_len);
    if (lease == NULL) {
        reign_backend_error("redis: set_metadata %s: out of memory", shown);
        return REIGN_ENOMEM;
    }
    char t[24];
    snprintf(t, sizeof(t), "%" PRIu64, term);
    const char *src = reign_redis_set_metadata_script();
    const char *argv[] = {"EVAL", src, "1", lease, st->holder, t, metadata, st->changed, resource};
    size_t lens[] = {4, strlen(src), 1, lease_len, strlen(st->holder), strlen(t), strlen(metadata),
                     st->changed_len, len};
    if (reign_redis_conn_append(st->cmd.conn, 9, argv, lens) != REIGN_OK) {
        reign_backend_error("redis: set_metadata %s: out of memory", shown);
        rc = REIGN_ENOMEM;
        goto out;
    }
    rc = reign_redis_conn_reply(st->cmd.conn, deadline_ms, &r, err, sizeof(err));
    if (rc != REIGN_OK) {
        reign_backend_error("redis: set_metadata %s: %s (%s)", shown,
                            rc == REIGN_ETIMEDOUT ? "no reply in time" : err, st->cfg->uri_redacted);
        link_broken(st, &st->cmd, "command", rc == REIGN_ETIMEDOUT ? "no reply in time" : err);
        rc = REIGN_EBACKEND;
        goto out;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        rc = REIGN_OK;
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        reign_backend_error("redis: set_metadata %s: the lease of term %s is not ours (%s)", shown,
                            t, st->cfg->uri_redacted);
        rc = REIGN_ENOTMASTER;
    } else {
        char cause[160];
        reign_printable(r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply",
                        r->type == REDIS_REPLY_ERROR ? r->len : 16, cause, sizeof(cause));
        reign_backend_error("redis: set_metadata %s: %s (%s)", shown, cause, st->cfg->uri_redacted);
        rc = r->type == REDIS_REPLY_ERROR ? reign_redis_error_status(r->str, r->len) : REIGN_EPROTO;
    }
out:
    if (r != NULL) {
        freeReplyObject(r);
    }
    free(lease);
    return rc;
}
