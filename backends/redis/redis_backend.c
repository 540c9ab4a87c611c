/* The redis:// (and unix://) backend: leases in Redis through hiredis.
 *
 * Map of this file:
 *   1. state and configuration (URI → target, prefix, db)
 *   2. the command connection: connect, SCRIPT LOAD, reconnect with backoff
 *   3. the subscriber connection: SUBSCRIBE <prefix>released, drain
 *   4. execute: one pipeline of EVALSHA per batch, a second round with
 *      EVAL for ops that met NOSCRIPT
 *   5. open, close, the vtable
 *
 * Keys, scripts and reply parsing live in redis_keys.c, redis_scripts.c
 * and redis_reply.c; connection mechanics in redis_conn.c. Every member is
 * called from the factory's engine thread only, so the state has no lock.
 */
#include "redis_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis_conn.h"
#include "redis_keys.h"
#include "redis_reply.h"
#include "redis_scripts.h"

/* ---- 1. State and configuration ------------------------------------------ */

#define REDIS_DEFAULT_PORT 6379
#define REDIS_DEFAULT_PREFIX "reign:"
#define REDIS_RELEASED_SUFFIX "released"
/* After a failed connect attempt wait this long, doubling up to the max,
 * so that a dead server is not hammered by every batch. */
#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 2000
#define REDIS_ERR_SIZE 320

/* Reconnection bookkeeping of one connection. */
typedef struct redis_link {
    redisContext *ctx;   /* NULL while broken */
    int64_t next_try_ms; /* no connect attempt before this */
    int64_t backoff_ms;  /* 0 after a success: the first retry is at once */
    int last_status;     /* of the last failed attempt */
    char last_error[REDIS_ERR_SIZE];
    bool warned; /* logged the outage already */
} redis_link;

typedef struct redis_state {
    const reign_backend_config *cfg; /* owned by the core, lives until close */
    reign_redis_target target;
    char where[300]; /* host:port or socket path, for messages */
    char *host;      /* owned copies for target */
    char *path;
    const char *prefix; /* borrowed from cfg's params */
    char *channel;      /* <prefix>released */
    size_t channel_len;
    char ttl_arg[24];                    /* cfg->ttl_ms as decimal, for PX */
    const char *holder;                  /* cfg->instance_id */
    const char *metadata;                /* cfg->metadata or "" */
    char sha[REIGN_REDIS_N_SCRIPTS][41]; /* SCRIPT LOAD results */
    redis_link cmd;                      /* lease scripts */
    redis_link sub;                      /* SUBSCRIBE only */
    bool sub_disabled;                   /* the server refused SUBSCRIBE: retry ticks only */
} redis_state;

/* Fail one op with the message shape every redis error has:
 * "redis: RENEW jobs/7: <cause> (redis://host:6379)". */
static void op_fail(const redis_state *st, reign_op *op, int status, const char *cause)
{
    char res[200];
    if (op->resource != NULL) {
        reign_printable(op->resource, op->resource_len, res, sizeof(res));
    } else {
        snprintf(res, sizeof(res), "(no resource)");
    }
    reign_op_fail(op, status, "redis: %s %s: %s (%s)", reign_op_kind_name(op->kind), res, cause,
                  st->cfg->uri_redacted);
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* A database number: decimal 0..INT_MAX, nothing else. */
static bool parse_db(const char *text, int *out)
{
    if (empty(text) || strlen(text) > 9) {
        return false;
    }
    int v = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

/* URI → target, prefix, db; REIGN_EURI/EINVAL with a message on nonsense. */
static int configure(redis_state *st, const reign_backend_config *cfg)
{
    const char *uri = cfg->uri_redacted;
    int db = 0;

    if (empty(cfg->instance_id)) {
        reign_backend_error("redis: %s: empty instance ID", uri);
        return REIGN_EINVAL;
    }
    if (cfg->ttl_ms <= 0) {
        reign_backend_error("redis: %s: lease TTL %" PRId64 " ms is not positive", uri,
                            cfg->ttl_ms);
        return REIGN_EINVAL;
    }
    if (strcmp(cfg->scheme, "unix") == 0) {
        if (!empty(cfg->host) && strcmp(cfg->host, "localhost") != 0) {
            reign_backend_error("redis: %s: a unix socket URI takes no host; use "
                                "unix:///path/redis.sock",
                                uri);
            return REIGN_EURI;
        }
        if (cfg->port != 0) {
            reign_backend_error("redis: %s: a unix socket URI takes no port", uri);
            return REIGN_EURI;
        }
        if (empty(cfg->path) || cfg->path[0] != '/') {
            reign_backend_error("redis: %s: no socket path; use unix:///path/redis.sock", uri);
            return REIGN_EURI;
        }
        const char *dbp = reign_backend_param(cfg, "db");
        if (dbp != NULL && !parse_db(dbp, &db)) {
            reign_backend_error("redis: %s: db=%s is not a database number (0, 1, ...)", uri, dbp);
            return REIGN_EURI;
        }
        st->path = strdup(cfg->path);
        if (st->path == NULL) {
            goto oom;
        }
        snprintf(st->where, sizeof(st->where), "%s", cfg->path);
    } else {
        /* redis://host:port/db: the path, if any, is the database number */
        const char *p = cfg->path != NULL ? cfg->path : "";
        if (p[0] == '/') {
            p++;
        }
        if (p[0] != '\0' && !parse_db(p, &db)) {
            /* The path is not quoted: a mistyped URI may carry a password there. */
            reign_backend_error("redis: %s: the path is not a database number; use "
                                "redis://host:port/DB",
                                uri);
            return REIGN_EURI;
        }
        st->host = strdup(empty(cfg->host) ? "127.0.0.1" : cfg->host);
        if (st->host == NULL) {
            goto oom;
        }
        st->target.port = cfg->port != 0 ? cfg->port : REDIS_DEFAULT_PORT;
        snprintf(st->where, sizeof(st->where), strchr(st->host, ':') != NULL ? "[%s]:%d" : "%s:%d",
                 st->host, st->target.port);
    }
    st->target.host = st->host;
    st->target.path = st->path;
    st->target.user = empty(cfg->user) ? NULL : cfg->user;
    st->target.password = cfg->password;
    st->target.db = db;
    st->target.where = st->where;

    const char *prefix = reign_backend_param(cfg, "prefix");
    st->prefix = prefix != NULL ? prefix : REDIS_DEFAULT_PREFIX;
    if (strpbrk(st->prefix, "{}") != NULL) {
        /* the braces of a key are ours: they make the per-resource hash tag */
        reign_backend_error("redis: %s: prefix=%s must not contain '{' or '}'", uri, st->prefix);
        return REIGN_EURI;
    }
    size_t plen = strlen(st->prefix);
    st->channel_len = plen + strlen(REDIS_RELEASED_SUFFIX);
    st->channel = malloc(st->channel_len + 1);
    if (st->channel == NULL) {
        goto oom;
    }
    memcpy(st->channel, st->prefix, plen);
    memcpy(st->channel + plen, REDIS_RELEASED_SUFFIX, sizeof(REDIS_RELEASED_SUFFIX));

    snprintf(st->ttl_arg, sizeof(st->ttl_arg), "%" PRId64, cfg->ttl_ms);
    st->holder = cfg->instance_id;
    st->metadata = cfg->metadata != NULL ? cfg->metadata : "";
    return REIGN_OK;
oom:
    reign_backend_error("redis: %s: out of memory", uri);
    return REIGN_ENOMEM;
}

/* ---- 2. The command connection ------------------------------------------- */

static void link_drop(redis_link *l)
{
    if (l->ctx != NULL) {
        redisFree(l->ctx);
        l->ctx = NULL;
    }
}

/* A connection that worked broke: try again at once, then back off. */
static void link_broken(redis_state *st, redis_link *l, const char *what, const char *cause)
{
    link_drop(l);
    l->next_try_ms = reign_monotonic_ms();
    l->backoff_ms = 0;
    l->warned = true;
    reign_backend_log(st->cfg, REIGN_LOG_WARN, "%s connection to %s lost: %s (%s)", what, st->where,
                      cause, st->cfg->uri_redacted);
}

static void link_failed(redis_state *st, redis_link *l, const char *what, int status,
                        const char *cause)
{
    l->backoff_ms = l->backoff_ms == 0 ? REDIS_BACKOFF_MIN_MS : l->backoff_ms * 2;
    if (l->backoff_ms > REDIS_BACKOFF_MAX_MS) {
        l->backoff_ms = REDIS_BACKOFF_MAX_MS;
    }
    l->next_try_ms = reign_monotonic_ms() + l->backoff_ms;
    l->last_status = status;
    snprintf(l->last_error, sizeof(l->last_error), "%s", cause);
    /* one warning per outage; the attempts after it only at debug level */
    reign_backend_log(st->cfg, l->warned ? REIGN_LOG_DEBUG : REIGN_LOG_WARN,
                      "%s connection: %s; next attempt in %" PRId64 " ms (%s)", what, cause,
                      l->backoff_ms, st->cfg->uri_redacted);
    l->warned = true;
}

static void link_up(redis_state *st, redis_link *l, redisContext *c, const char *what)
{
    l->ctx = c;
    l->backoff_ms = 0;
    if (l->warned) {
        reign_backend_log(st->cfg, REIGN_LOG_INFO, "%s connection to %s is back (%s)", what,
                          st->where, st->cfg->uri_redacted);
    }
    l->warned = false;
}

/* SCRIPT LOAD every script in one pipeline; keep the SHA1s for EVALSHA. */
static int load_scripts(redis_state *st, redisContext *c, int64_t deadline_ms, char *err,
                        size_t err_size)
{
    int rc = REIGN_OK;
    for (int k = 0; k < REIGN_REDIS_N_SCRIPTS; k++) {
        const char *src = reign_redis_script((reign_op_kind)(k + 1));
        const char *argv[] = {"SCRIPT", "LOAD", src};
        size_t lens[] = {6, 4, strlen(src)};
        if (redisAppendCommandArgv(c, 3, argv, lens) != REDIS_OK) {
            snprintf(err, err_size, "SCRIPT LOAD: out of memory");
            return REIGN_ENOMEM;
        }
    }
    /* read every reply even after a failure, to report the first */
    for (int k = 0; k < REIGN_REDIS_N_SCRIPTS; k++) {
        redisReply *r = NULL;
        char cause[200];
        int s = reign_redis_conn_reply(c, deadline_ms, &r, cause, sizeof(cause));
        if (s != REIGN_OK) {
            snprintf(err, err_size, "SCRIPT LOAD on %s: %s", st->where, cause);
            return s == REIGN_ETIMEDOUT ? REIGN_EBACKEND : s;
        }
        if (rc == REIGN_OK && r->type == REDIS_REPLY_ERROR) {
            char shown[160];
            reign_printable(r->str, r->len, shown, sizeof(shown));
            snprintf(err, err_size, "SCRIPT LOAD refused by %s: %s", st->where, shown);
            rc = reign_redis_error_status(r->str, r->len);
        } else if (rc == REIGN_OK && (r->type != REDIS_REPLY_STRING || r->len != 40)) {
            snprintf(err, err_size, "SCRIPT LOAD on %s: expected a SHA1, got reply type %d",
                     st->where, r->type);
            rc = REIGN_EPROTO;
        } else if (rc == REIGN_OK) {
            memcpy(st->sha[k], r->str, 40);
            st->sha[k][40] = '\0';
        }
        freeReplyObject(r);
    }
    return rc;
}

static int cmd_connect(redis_state *st, int64_t deadline_ms, char *err, size_t err_size)
{
    redisContext *c = NULL;
    int rc = reign_redis_conn_open(&st->target, deadline_ms, &c, err, err_size);
    if (rc == REIGN_OK) {
        rc = load_scripts(st, c, deadline_ms, err, err_size);
        if (rc == REIGN_EAUTH && st->target.password == NULL && st->target.user == NULL) {
            size_t len = strlen(err);
            snprintf(err + len, err_size - len, "; the server wants a password: %s",
                     st->target.path != NULL ? "unix://:PASSWORD@localhost/path/redis.sock"
                                             : "redis://:PASSWORD@host:port");
        }
    }
    if (rc != REIGN_OK) {
        if (c != NULL) {
            redisFree(c);
        }
        return rc;
    }
    link_up(st, &st->cmd, c, "command");
    return REIGN_OK;
}

/* Make sure the command connection is up before a batch. */
static int cmd_ensure(redis_state *st, int64_t deadline_ms, char *err, size_t err_size)
{
    if (st->cmd.ctx != NULL) {
        if (reign_redis_conn_idle_ok(st->cmd.ctx)) {
            return REIGN_OK;
        }
        /* Closed while idle (server restart, `timeout` in redis.conf):
         * nothing of this batch was sent yet, so reconnect at once. */
        link_broken(st, &st->cmd, "command", "closed while idle");
    }
    int64_t now = reign_monotonic_ms();
    if (now < st->cmd.next_try_ms) {
        snprintf(err, err_size, "not connected to %s (%s); next attempt in %" PRId64 " ms",
                 st->where, st->cmd.last_error, st->cmd.next_try_ms - now);
        return st->cmd.last_status != REIGN_OK ? st->cmd.last_status : REIGN_EBACKEND;
    }
    int rc = cmd_connect(st, deadline_ms, err, err_size);
    if (rc != REIGN_OK) {
        link_failed(st, &st->cmd, "command", rc, err);
    }
    return rc;
}

/* ---- 3. The subscriber connection ---------------------------------------- */

static int sub_connect(redis_state *st, int64_t deadline_ms, char *err, size_t err_size)
{
    redisContext *c = NULL;
    redisReply *r = NULL;
    int rc = reign_redis_conn_open(&st->target, deadline_ms, &c, err, err_size);
    if (rc != REIGN_OK) {
        goto out;
    }
    const char *argv[] = {"SUBSCRIBE", st->channel};
    size_t lens[] = {9, st->channel_len};
    if (redisAppendCommandArgv(c, 2, argv, lens) != REDIS_OK) {
        snprintf(err, err_size, "SUBSCRIBE: out of memory");
        rc = REIGN_ENOMEM;
        goto out;
    }
    char cause[200];
    rc = reign_redis_conn_reply(c, deadline_ms, &r, cause, sizeof(cause));
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "SUBSCRIBE on %s: %s", st->where, cause);
        rc = rc == REIGN_ETIMEDOUT ? REIGN_EBACKEND : rc;
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char shown[160];
        reign_printable(r->str, r->len, shown, sizeof(shown));
        snprintf(err, err_size, "SUBSCRIBE refused by %s: %s", st->where, shown);
        rc = reign_redis_error_status(r->str, r->len);
        goto out;
    }
    /* ["subscribe", channel, count] confirms it */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len != 9 ||
        memcmp(r->element[0]->str, "subscribe", 9) != 0) {
        snprintf(err, err_size, "SUBSCRIBE on %s: unexpected reply", st->where);
        rc = REIGN_EPROTO;
        goto out;
    }
    link_up(st, &st->sub, c, "subscriber");
    c = NULL;
out:
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (c != NULL) {
        redisFree(c);
    }
    return rc;
}

/* Bring the subscriber back if it is down and its backoff has passed. */
static void sub_maintain(redis_state *st, int64_t deadline_ms)
{
    if (st->sub.ctx != NULL || st->sub_disabled || reign_monotonic_ms() < st->sub.next_try_ms ||
        reign_monotonic_ms() >= deadline_ms) {
        return;
    }
    char err[REDIS_ERR_SIZE];
    int rc = sub_connect(st, deadline_ms, err, sizeof(err));
    if (rc == REIGN_EAUTH) {
        /* The ACL lets us run the scripts but not subscribe: work on, with
         * the engine's retry ticks instead of release notifications. */
        st->sub_disabled = true;
        reign_backend_log(st->cfg, REIGN_LOG_WARN,
                          "%s; no release notifications, candidates retry on their interval (%s)",
                          err, st->cfg->uri_redacted);
    } else if (rc != REIGN_OK) {
        link_failed(st, &st->sub, "subscriber", rc, err);
    }
}

static int redis_notify_fd(void *state)
{
    redis_state *st = state;
    return st->sub.ctx != NULL ? st->sub.ctx->fd : -1;
}

/* A pub/sub message ["message", channel, resource] names the resource
 * released; anything else (a subscribe confirmation) names none. */
static void tell_released(const redisReply *r, reign_released_fn released, void *ctx)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element == NULL) {
        return;
    }
    const redisReply *kind = r->element[0];
    const redisReply *res = r->element[2];
    if (kind == NULL || res == NULL || kind->type != REDIS_REPLY_STRING || kind->len != 7 ||
        memcmp(kind->str, "message", 7) != 0) {
        return;
    }
    if (res->type == REDIS_REPLY_STRING && res->len >= 1 && res->len <= REIGN_RESOURCE_ID_MAX &&
        memchr(res->str, '\0', res->len) == NULL) {
        released(ctx, res->str, res->len);
    } else {
        released(ctx, NULL, 0); /* someone else's publisher: cannot tell which */
    }
}

static void redis_notify_drain(void *state, reign_released_fn released, void *ctx)
{
    redis_state *st = state;
    if (st->sub.ctx == NULL) {
        return;
    }
    char err[REDIS_ERR_SIZE];
    int rc = reign_redis_conn_read_ready(st->sub.ctx, err, sizeof(err));
    while (rc == REIGN_OK) {
        void *reply = NULL;
        if (redisGetReplyFromReader(st->sub.ctx, &reply) != REDIS_OK) {
            snprintf(err, sizeof(err), "bad message: %s", st->sub.ctx->errstr);
            rc = REIGN_EPROTO;
            break;
        }
        if (reply == NULL) {
            break;
        }
        tell_released(reply, released, ctx);
        freeReplyObject(reply);
    }
    if (rc != REIGN_OK) {
        /* Releases may go unheard until the next execute reconnects (and
         * notify_fd says -1 meanwhile): have every candidate try now. */
        link_broken(st, &st->sub, "subscriber", err);
        released(ctx, NULL, 0);
    }
}

/* ---- 4. Execute ---------------------------------------------------------- */

/* Append op's script call: EVALSHA sha (or EVAL source) numkeys keys… args…
 * Every argument goes with its length: the resource ID is binary. */
static int append_op(redis_state *st, redisContext *c, const reign_op *op, bool eval)
{
    int rc = REIGN_ENOMEM;
    char *lease = NULL, *term_key = NULL;
    size_t lease_len = 0, term_key_len = 0;
    char term[24];
    const char *argv[8];
    size_t lens[8];
    int argc = 0;

    lease = reign_redis_key(st->prefix, op->resource, op->resource_len, REIGN_REDIS_KEY_LEASE,
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
        term_key = reign_redis_key(st->prefix, op->resource, op->resource_len, REIGN_REDIS_KEY_TERM,
                                   &term_key_len);
        if (term_key == NULL) {
            goto out;
        }
        ARG(term_key, term_key_len);
        ARG(st->holder, strlen(st->holder));
        ARG(st->ttl_arg, strlen(st->ttl_arg));
        ARG(st->metadata, strlen(st->metadata));
        break;
    case REIGN_OP_RENEW:
        ARG(st->holder, strlen(st->holder));
        ARG(term, strlen(term));
        ARG(st->ttl_arg, strlen(st->ttl_arg));
        break;
    case REIGN_OP_RELEASE:
        ARG(st->holder, strlen(st->holder));
        ARG(term, strlen(term));
        ARG(st->channel, st->channel_len);
        ARG(op->resource, op->resource_len);
        break;
    case REIGN_OP_READ: break;
    }
#undef ARG
    rc = redisAppendCommandArgv(c, argc, argv, lens) == REDIS_OK ? REIGN_OK : REIGN_ENOMEM;
out:
    free(lease);
    free(term_key);
    return rc;
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
    redisContext *c = st->cmd.ctx;
    char err[REDIS_ERR_SIZE];
    int n_loads = 0;
    size_t answered = 0;
    int rc = REIGN_OK;

    for (int k = 0; eval && k < REIGN_REDIS_N_SCRIPTS; k++) {
        const char *src = reign_redis_script((reign_op_kind)(k + 1));
        const char *argv[] = {"SCRIPT", "LOAD", src};
        size_t lens[] = {6, 4, strlen(src)};
        if (redisAppendCommandArgv(c, 3, argv, lens) != REDIS_OK) {
            break; /* harmless: EVAL works without the cache */
        }
        n_loads++;
    }
    for (size_t i = 0; i < n; i++) {
        if (append_op(st, c, &ops[idx[i]], eval) != REIGN_OK) {
            /* out of memory: the ops not appended fail, the others go out */
            for (size_t j = i; j < n; j++) {
                op_fail(st, &ops[idx[j]], REIGN_ENOMEM, "out of memory building the command");
            }
            n = i;
            break;
        }
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
        if (retry != NULL && reign_redis_reply_is_noscript(r)) {
            retry[(*n_retry)++] = idx[answered];
        } else {
            char cause[REDIS_ERR_SIZE];
            int prc = reign_redis_reply_parse(op, r, cause, sizeof(cause));
            if (prc != REIGN_OK) {
                op_fail(st, op, prc, cause);
            }
        }
        freeReplyObject(r);
    }
    return;
broken:;
    /* The stream is out of step (or gone): the ops not answered may or may
     * not have run. A later reply must never be taken for a later op. */
    char cause[REDIS_ERR_SIZE + sizeof(st->where) + 64];
    if (rc == REIGN_ETIMEDOUT) {
        snprintf(cause, sizeof(cause), "no reply from %s in time; connection dropped", st->where);
    } else {
        snprintf(cause, sizeof(cause), "connection to %s lost: %s", st->where, err);
    }
    for (size_t j = answered; j < n; j++) {
        op_fail(st, &ops[idx[j]], rc == REIGN_EPROTO ? REIGN_EPROTO : REIGN_EBACKEND, cause);
    }
    link_broken(st, &st->cmd, "command", rc == REIGN_ETIMEDOUT ? "no reply in time" : err);
}

static bool valid_op(const reign_op *op)
{
    return op->resource != NULL && op->resource_len >= 1 &&
           op->resource_len <= REIGN_RESOURCE_ID_MAX &&
           memchr(op->resource, '\0', op->resource_len) == NULL && op->kind >= REIGN_OP_ACQUIRE &&
           op->kind <= REIGN_OP_READ;
}

static int redis_execute(void *state, reign_op *ops, size_t n_ops, int64_t timeout_ms)
{
    redis_state *st = state;
    size_t *idx = NULL, *retry = NULL;
    size_t n = 0, n_retry = 0;
    int rc = REIGN_OK;
    char err[REDIS_ERR_SIZE];
    int64_t deadline_ms = reign_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 1);

    if (n_ops == 0) {
        goto out;
    }
    idx = malloc(n_ops * sizeof(*idx));
    retry = malloc(n_ops * sizeof(*retry));
    if (idx == NULL || retry == NULL) {
        for (size_t i = 0; i < n_ops; i++) {
            op_fail(st, &ops[i], REIGN_ENOMEM, "out of memory");
        }
        rc = REIGN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_ops; i++) {
        if (valid_op(&ops[i])) {
            idx[n++] = i;
        } else if (ops[i].kind < REIGN_OP_ACQUIRE || ops[i].kind > REIGN_OP_READ) {
            op_fail(st, &ops[i], REIGN_EBUG, "unknown op kind");
        } else {
            op_fail(st, &ops[i], REIGN_EINVAL, "resource ID must be 1..1024 bytes without NUL");
        }
    }
    if (n == 0) {
        goto out;
    }
    rc = cmd_ensure(st, deadline_ms, err, sizeof(err));
    if (rc != REIGN_OK) {
        for (size_t i = 0; i < n; i++) {
            op_fail(st, &ops[idx[i]], rc, err);
        }
        reign_backend_error("redis: %s (%s)", err, st->cfg->uri_redacted);
        goto out;
    }
    run_round(st, ops, idx, n, false, deadline_ms, retry, &n_retry);
    if (n_retry > 0) {
        /* The script cache was emptied (restart, SCRIPT FLUSH): those ops
         * did not run, so sending them again with their source is safe. */
        reign_backend_log(st->cfg, REIGN_LOG_INFO,
                          "NOSCRIPT from %s: resending %zu op(s) with EVAL", st->where, n_retry);
        if (st->cmd.ctx != NULL) {
            run_round(st, ops, retry, n_retry, true, deadline_ms, NULL, NULL);
        } else {
            for (size_t i = 0; i < n_retry; i++) {
                op_fail(st, &ops[retry[i]], REIGN_EBACKEND, "connection lost before resending");
            }
        }
    }
    if (st->cmd.ctx != NULL) {
        sub_maintain(st, deadline_ms);
    }
out:
    free(idx);
    free(retry);
    return rc;
}

/* ---- 5. Open, close, the vtable ------------------------------------------ */

static void redis_close(void *state)
{
    redis_state *st = state;
    link_drop(&st->cmd);
    link_drop(&st->sub);
    free(st->host);
    free(st->path);
    free(st->channel);
    free(st);
}

static int redis_open(const reign_backend_config *cfg, void **state_out)
{
    redis_state *st = calloc(1, sizeof(*st));
    char err[REDIS_ERR_SIZE];
    int rc = REIGN_OK;

    if (st == NULL) {
        reign_backend_error("redis: out of memory");
        return REIGN_ENOMEM;
    }
    st->cfg = cfg;
    rc = configure(st, cfg);
    if (rc != REIGN_OK) {
        goto out;
    }
    int64_t deadline_ms =
        reign_monotonic_ms() + (cfg->op_timeout_ms > 0 ? cfg->op_timeout_ms : 5000);
    rc = cmd_connect(st, deadline_ms, err, sizeof(err));
    if (rc != REIGN_OK) {
        reign_backend_error("redis: %s (%s)", err, cfg->uri_redacted);
        goto out;
    }
    /* Without the subscriber we still work, only slower to notice releases:
     * it is retried at later batches. */
    sub_maintain(st, deadline_ms);
    *state_out = st;
    st = NULL;
out:
    if (st != NULL) {
        redis_close(st);
    }
    return rc;
}

static const char *const redis_params[] = {"db", "prefix", NULL};

const reign_backend reign_backend_redis = {
    .version = REIGN_BACKEND_VERSION,
    .scheme = "redis",
    .scheme_alt = "unix",
    .open = redis_open,
    .execute = redis_execute,
    .notify_fd = redis_notify_fd,
    .notify_drain = redis_notify_drain,
    .close = redis_close,
    .params = redis_params,
};
