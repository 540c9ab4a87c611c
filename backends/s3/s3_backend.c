/* The s3:// backend: leases as JSON records in an S3 bucket, written with
 * conditional PUTs (If-None-Match: *, If-Match: <etag>) and judged dead
 * only by this factory's own monotonic clock.
 *
 * Map of this file:
 *   1. the batch loop: tasks over one curl multi handle, at most
 *      REIGN_S3_MAX_PARALLEL transfers at once, ops on one key in order
 *   2. execute
 *   3. open (configuration, a reachability check) and close
 *   4. the vtable
 *
 * There is no notification source: S3 has none. Candidates poll; the HELD
 * answer carries the time until this observer would judge the lease dead,
 * so the core retries right then instead of sooner. In peer mode
 * (s3_peer.h) a candidate's poll may go to the holder's endpoint instead,
 * and this file keeps the table of what we hold up to date for ours. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "s3_internal.h"

#define NO_TASK ((size_t)-1)

extern const reign_backend reign_backend_s3;

/* ---- 1. the batch loop --------------------------------------------------------- */

typedef struct run {
    reign_s3_state *st;
    reign_s3_task *tasks;
    size_t n;
    /* Tasks with a request to start, two FIFOs: renewals and releases go
     * before acquisitions and reads, so that under load a lease is kept
     * (or freed) before anyone campaigns. */
    size_t *queue[2]; /* [0] RENEW/RELEASE, [1] the rest */
    size_t q_head[2], q_tail[2];
    size_t active; /* transfers in flight */
    int64_t deadline_ms;
} run;

static void enqueue(run *r, size_t i)
{
    const reign_op *op = r->tasks[i].op;
    int q = op->kind == REIGN_OP_RENEW || op->kind == REIGN_OP_RELEASE ? 0 : 1;
    r->queue[q][r->q_tail[q]++ % r->n] = i;
}

static bool queued(const run *r)
{
    return r->q_head[0] != r->q_tail[0] || r->q_head[1] != r->q_tail[1];
}

static size_t dequeue(run *r)
{
    int q = r->q_head[0] != r->q_tail[0] ? 0 : 1;
    return r->queue[q][r->q_head[q]++ % r->n];
}

/* The task's op is finished: let the one queued behind it on the key go. */
static void release_next(run *r, size_t i, int64_t now_ms);

static void advance(run *r, size_t i, int64_t now_ms)
{
    reign_s3_task *t = &r->tasks[i];
    if (t->done) {
        reign_s3_http_reset(t);
        release_next(r, i, now_ms);
    } else if (t->step != REIGN_S3_STEP_NONE) {
        enqueue(r, i);
    } else {
        reign_s3_task_fail(t, REIGN_EBUG, "no next step (a bug in reign)");
        release_next(r, i, now_ms);
    }
}

static void release_next(run *r, size_t i, int64_t now_ms)
{
    size_t k = r->tasks[i].next_same_key;
    if (k == NO_TASK) {
        return;
    }
    reign_s3_task *t = &r->tasks[k];
    t->waiting = false;
    if (t->begun) {
        return;
    }
    t->begun = true;
    if (!t->done) {
        reign_s3_task_begin(t, now_ms);
    }
    advance(r, k, now_ms);
}

static void start_queued(run *r)
{
    while (r->active < REIGN_S3_MAX_PARALLEL && queued(r)) {
        size_t i = dequeue(r);
        reign_s3_task *t = &r->tasks[i];
        char cause[300];
        int rc = t->step == REIGN_S3_STEP_PEER
                     ? reign_s3_http_start_peer(r->st, t, r->deadline_ms, cause, sizeof cause)
                     : reign_s3_http_start(r->st, t, r->deadline_ms, cause, sizeof cause);
        if (rc != REIGN_OK) {
            reign_s3_task_fail(t, rc, cause);
            advance(r, i, reign_monotonic_ms());
            continue;
        }
        r->active++;
    }
}

static void collect(run *r)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(r->st->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        reign_s3_task *t = NULL;
        long http = 0;
        CURL *e = msg->easy_handle;
        CURLcode cc = msg->data.result;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
        int64_t now = reign_monotonic_ms();
        reign_s3_http_finish(r->st, t);
        r->active--;
        if (t->step == REIGN_S3_STEP_PEER) {
            /* not an S3 request: "peer GET", never "GET", in the log */
            reign_backend_log(r->st->cfg, REIGN_LOG_DEBUG,
                              "peer GET %s/%s -> %ld (%s) in %" PRId64 " ms", t->obs->rec.peer,
                              t->key + t->name_off, http,
                              cc == CURLE_OK ? "ok" : curl_easy_strerror(cc), now - t->sent_ms);
            reign_s3_task_answer(t, cc, http, now);
            advance(r, (size_t)(t - r->tasks), now);
            continue;
        }
        reign_backend_log(r->st->cfg, REIGN_LOG_DEBUG, "%s %s -> %ld (%s) in %" PRId64 " ms",
                          t->step == REIGN_S3_STEP_GET       ? "GET"
                          : t->step == REIGN_S3_STEP_CREATE ? "PUT If-None-Match"
                                                            : "PUT If-Match",
                          t->key, http, cc == CURLE_OK ? "ok" : curl_easy_strerror(cc),
                          now - t->sent_ms);
        reign_s3_task_answer(t, cc, http, now);
        advance(r, (size_t)(t - r->tasks), now);
    }
}

/* Run the tasks until all are done or the deadline. A waiting task begins
 * when the one before it on its key is done. */
static void run_tasks(reign_s3_state *st, reign_s3_task *tasks, size_t n, int64_t deadline_ms)
{
    run r = {.st = st, .tasks = tasks, .n = n, .deadline_ms = deadline_ms};
    r.queue[0] = calloc(n, sizeof *r.queue[0]);
    r.queue[1] = calloc(n, sizeof *r.queue[1]);
    if (r.queue[0] == NULL || r.queue[1] == NULL) {
        free(r.queue[0]);
        free(r.queue[1]);
        for (size_t i = 0; i < n; i++) {
            if (!tasks[i].done) {
                reign_s3_task_fail(&tasks[i], REIGN_ENOMEM, "out of memory");
            }
        }
        return;
    }
    int64_t now = reign_monotonic_ms();
    for (size_t i = 0; i < n; i++) {
        /* a task may finish at once (HELD from the last look), which lets
         * the one behind it begin before this loop reaches it: begin once */
        if (!tasks[i].waiting && !tasks[i].begun) {
            tasks[i].begun = true;
            if (!tasks[i].done) {
                reign_s3_task_begin(&tasks[i], now);
            }
            advance(&r, i, now);
        }
    }
    for (;;) {
        start_queued(&r);
        if (r.active == 0) {
            break; /* nothing in flight and nothing left to start */
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(st->multi, &running);
        if (mc != CURLM_OK && mc != CURLM_CALL_MULTI_PERFORM) {
            reign_backend_log(st->cfg, REIGN_LOG_WARN, "curl_multi_perform: %s",
                              curl_multi_strerror(mc));
            break;
        }
        collect(&r);
        if (queued(&r) && r.active < REIGN_S3_MAX_PARALLEL) {
            continue; /* follow-up requests to start first */
        }
        now = reign_monotonic_ms();
        if (now >= deadline_ms) {
            break;
        }
        long wait = (long)(deadline_ms - now);
        long ct = -1;
        if (curl_multi_timeout(st->multi, &ct) == CURLM_OK && ct >= 0 && ct < wait) {
            wait = ct;
        }
        if (r.active > 0) {
            curl_multi_poll(st->multi, NULL, 0, (int)(wait > 1000 ? 1000 : wait), NULL);
        }
    }
    /* The deadline passed: what is in flight may still land (outcome
     * unknown); a later look finds it by its nonce or judges it anew. */
    for (size_t i = 0; i < n; i++) {
        reign_s3_task *t = &tasks[i];
        if (t->done) {
            continue;
        }
        bool in_flight = t->easy != NULL;
        bool write = t->step == REIGN_S3_STEP_CREATE || t->step == REIGN_S3_STEP_REPLACE;
        reign_s3_http_finish(st, t);
        if (!t->probe) {
            reign_s3_obs_forget(t->obs);
        }
        char cause[200];
        snprintf(cause, sizeof cause, "no answer from %s within the batch timeout%s",
                 st->conf.endpoint,
                 in_flight && write ? "; the write's outcome is unknown" : "");
        reign_s3_task_fail(t, REIGN_ETIMEDOUT, cause);
        reign_s3_http_reset(t);
    }
    free(r.queue[0]);
    free(r.queue[1]);
}

/* ---- 2. execute ------------------------------------------------------------------- */

/* Peer mode: what this batch did to the leases we hold. "Master" is said
 * until 3/4 TTL after the batch began (no later than the core's belief,
 * which counts the TTL, less drift and margin, from before this call). */
static void peer_table_update(reign_s3_state *st, reign_s3_task *tasks, size_t n, int64_t began_ms)
{
    int64_t until = began_ms + st->ttl_ms * 3 / 4;
    for (size_t i = 0; i < n; i++) {
        reign_s3_task *t = &tasks[i];
        const reign_op *op = t->op;
        if (t->obs == NULL) {
            continue;
        }
        const char *name = t->key + t->name_off;
        if (op->kind == REIGN_OP_ACQUIRE && op->result == REIGN_RES_OK) {
            reign_s3_peer_server_held(st->peer_srv, name, op->out_term, until);
        } else if (op->kind == REIGN_OP_RENEW && op->result == REIGN_RES_OK) {
            reign_s3_peer_server_held(st->peer_srv, name, op->term, until);
        } else if (op->kind == REIGN_OP_RENEW && op->result == REIGN_RES_LOST) {
            reign_s3_peer_server_gone(st->peer_srv, name);
        }
        /* an erred RENEW keeps the old until, which runs out by itself */
    }
}

static int s3_execute(void *state, reign_batch *b)
{
    reign_s3_state *st = state;
    reign_op *ops = b->ops;
    size_t n_ops = b->n_ops;
    int64_t now = reign_monotonic_ms();
    int64_t deadline = b->deadline_ns / 1000000;

    if (n_ops == 0) {
        return REIGN_OK;
    }
    /* Forget records not looked at for a long while (never one in use:
     * a holder renews every ttl/3). */
    int64_t idle = st->ttl_ms * 10 > 600000 ? st->ttl_ms * 10 : 600000;
    if (now - st->last_sweep_ms > 60000) {
        reign_s3_obs_sweep(&st->obs, now - idle);
        st->last_sweep_ms = now;
    }

    reign_s3_task *tasks = calloc(n_ops, sizeof *tasks);
    if (tasks == NULL) {
        for (size_t i = 0; i < n_ops; i++) {
            reign_op_fail(&ops[i], REIGN_ENOMEM, "out of memory");
        }
        return REIGN_ENOMEM;
    }
    st->batch_gen++;
    for (size_t i = 0; i < n_ops; i++) {
        reign_s3_task *t = &tasks[i];
        t->st = st;
        t->op = &ops[i];
        t->next_same_key = NO_TASK;
        size_t klen = reign_s3_key(st->conf.prefix, ops[i].resource, ops[i].resource_len, t->key,
                                   sizeof t->key);
        t->name_off = strlen(st->conf.prefix);
        t->obs = klen > 0 ? reign_s3_obs_find(&st->obs, t->key, true, now) : NULL;
        if (t->obs == NULL) {
            reign_s3_task_fail(t, klen > 0 ? REIGN_ENOMEM : REIGN_EINVAL,
                               klen > 0 ? "out of memory" : "no object key fits the prefix");
            continue;
        }
        /* a RELEASE and the ACQUIRE after it on one key run in order */
        if (t->obs->batch_gen == st->batch_gen && t->obs->batch_last != NO_TASK) {
            reign_s3_task *prev = &tasks[t->obs->batch_last];
            prev->next_same_key = i;
            t->waiting = true;
        }
        t->obs->batch_gen = st->batch_gen;
        t->obs->batch_last = i;
    }
    if (st->peer_srv != NULL) {
        /* stop saying "master" before the release is sent */
        for (size_t i = 0; i < n_ops; i++) {
            if (ops[i].kind == REIGN_OP_RELEASE && tasks[i].obs != NULL) {
                reign_s3_peer_server_gone(st->peer_srv, tasks[i].key + tasks[i].name_off);
            }
        }
    }
    run_tasks(st, tasks, n_ops, deadline);
    if (st->peer_srv != NULL) {
        peer_table_update(st, tasks, n_ops, now);
    }
    for (size_t i = 0; i < n_ops; i++) {
        reign_s3_http_finish(st, &tasks[i]);
        reign_s3_http_reset(&tasks[i]);
    }
    free(tasks);
    return REIGN_OK;
}

/* ---- 3. open and close -------------------------------------------------------------- */

static const char *env_get(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

static void s3_close(void *state)
{
    reign_s3_state *st = state;
    if (st == NULL) {
        return;
    }
    if (st->requests > 0 || st->peer_requests > 0) {
        reign_backend_log(st->cfg, REIGN_LOG_DEBUG,
                          "closing after %" PRIu64 " requests and %" PRIu64 " peer asks (%s)",
                          st->requests, st->peer_requests, st->cfg->uri_redacted);
    }
    reign_s3_peer_server_close(st->peer_srv);
    free(st->peer_url);
    reign_s3_http_pool_free(st);
    if (st->multi != NULL) {
        curl_multi_cleanup(st->multi);
    }
    reign_s3_obs_map_free(&st->obs);
    reign_s3_config_free(&st->conf);
    memset(st->rng, 0, sizeof st->rng);
    if (st->curl_inited) {
        curl_global_cleanup();
    }
    free(st);
}

static int seed(reign_s3_state *st)
{
    uint64_t s[2] = {0, 0};
    size_t got = 0;
    while (got < sizeof s) {
        ssize_t n = getrandom((char *)s + got, sizeof s - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        got += (size_t)n;
    }
    st->rng[0] = s[0] | 1; /* xorshift must not start at zero */
    st->rng[1] = s[1];
    return 0;
}

/* Peer mode, holder side: the table, the server (peer_listen=) and the
 * base URL our records advertise. */
static int peer_open(reign_s3_state *st, char *err, size_t err_size)
{
    const reign_s3_config *c = &st->conf;
    int rc = reign_s3_peer_server_open(st->holder, c->peer_listen_host, c->peer_listen_port,
                                       &st->peer_srv, err, err_size);
    if (rc != REIGN_OK) {
        return rc;
    }
    if (c->peer_url != NULL) {
        st->peer_url = strdup(c->peer_url);
    } else {
        const char *h = c->peer_listen_host;
        bool v6 = strchr(h, ':') != NULL;
        size_t n = strlen(h) + sizeof REIGN_S3_PEER_PATH + 32;
        st->peer_url = malloc(n);
        if (st->peer_url != NULL) {
            snprintf(st->peer_url, n, "http://%s%s%s:%d%s", v6 ? "[" : "", h, v6 ? "]" : "",
                     reign_s3_peer_server_port(st->peer_srv), REIGN_S3_PEER_PATH);
        }
    }
    if (st->peer_url == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    reign_backend_log(st->cfg, REIGN_LOG_INFO, "s3: peer mode: answering at %s (%s)",
                      st->peer_url, st->cfg->uri_redacted);
    return REIGN_OK;
}

static int s3_open(const reign_backend_config *cfg, void **state_out)
{
    char err[600];
    int rc;
    reign_s3_state *st = calloc(1, sizeof *st);
    if (st == NULL) {
        reign_backend_error("s3: %s: out of memory", cfg->uri_redacted);
        return REIGN_ENOMEM;
    }
    st->cfg = cfg;
    st->holder = cfg->instance_id;
    st->metadata = cfg->metadata != NULL ? cfg->metadata : "";
    st->ttl_ms = cfg->ttl_ms;
    st->last_sweep_ms = reign_monotonic_ms();

    rc = reign_s3_config_load(cfg, env_get, NULL, &st->conf, err, sizeof err);
    if (rc != REIGN_OK) {
        reign_backend_error("%s", err);
        goto fail;
    }
    if (st->holder == NULL || st->holder[0] == '\0') {
        reign_backend_error("s3: %s: empty instance ID", cfg->uri_redacted);
        rc = REIGN_EINVAL;
        goto fail;
    }
    if (st->ttl_ms <= 0) {
        reign_backend_error("s3: %s: lease TTL %" PRId64 " ms is not positive", cfg->uri_redacted,
                            st->ttl_ms);
        rc = REIGN_EINVAL;
        goto fail;
    }
    /* the record is JSON: refuse at once what could never be written */
    reign_s3_record probe_rec = {.holder = (char *)st->holder,
                                 .metadata = (char *)st->metadata,
                                 .term = 1,
                                 .ttl_ms = st->ttl_ms};
    char *json = reign_s3_record_encode(&probe_rec, NULL);
    if (json == NULL) {
        reign_backend_error("s3: %s: the instance ID and metadata must be UTF-8 text",
                            cfg->uri_redacted);
        rc = REIGN_EINVAL;
        goto fail;
    }
    free(json);
    if (seed(st) != 0) {
        reign_backend_error("s3: %s: getrandom: %s", cfg->uri_redacted, strerror(errno));
        rc = REIGN_EIO;
        goto fail;
    }
    if (st->conf.peer_listen_host != NULL || st->conf.peer_url != NULL) {
        if ((rc = peer_open(st, err, sizeof err)) != REIGN_OK) {
            reign_backend_error("s3: %s: %s", cfg->uri_redacted, err);
            goto fail;
        }
    }
    /* reference-counted by libcurl, and thread-safe since 7.84 */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        reign_backend_error("s3: %s: curl_global_init failed", cfg->uri_redacted);
        rc = REIGN_EBACKEND;
        goto fail;
    }
    st->curl_inited = true;
    st->multi = curl_multi_init();
    if (st->multi == NULL) {
        reign_backend_error("s3: %s: curl_multi_init failed", cfg->uri_redacted);
        rc = REIGN_ENOMEM;
        goto fail;
    }
    /* keep-alive connections, no pipelining or multiplexing, a bounded
     * cache: one connection per transfer in flight */
    curl_multi_setopt(st->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    curl_multi_setopt(st->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)REIGN_S3_MAX_PARALLEL);
    curl_multi_setopt(st->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)REIGN_S3_MAX_PARALLEL);
    curl_multi_setopt(st->multi, CURLMOPT_MAXCONNECTS, (long)REIGN_S3_MAX_PARALLEL);

    /* Reachability, credentials and bucket in one GET of a key no resource
     * maps to ("~~" is followed by 64 hex digits in hashed keys): 404
     * NoSuchKey or 200 is fine, anything else says what is wrong. */
    reign_op op = {.kind = REIGN_OP_READ, .out_remaining_ms = -1};
    reign_s3_task t = {.st = st, .op = &op, .probe = true, .next_same_key = NO_TASK};
    snprintf(t.key, sizeof t.key, "%s~~probe", st->conf.prefix);
    t.name_off = strlen(st->conf.prefix);
    run_tasks(st, &t, 1, cfg->open_deadline_ns / 1000000);
    reign_s3_http_finish(st, &t);
    reign_s3_http_reset(&t);
    if (op.result != REIGN_RES_NONE) {
        rc = op.out_status != REIGN_OK ? op.out_status : REIGN_EBACKEND;
        reign_backend_error("%s", op.out_error != NULL ? op.out_error : "s3: open failed");
        free(op.out_error);
        goto fail;
    }
    *state_out = st;
    return REIGN_OK;
fail:
    s3_close(st);
    return rc;
}

/* ---- 4. the vtable ---------------------------------------------------------------------- */

static const char *const s3_params[] = {"endpoint",  "region",      "path_style", "poll",
                                        "peer",      "peer_listen", "peer_url",   "peer_ca",
                                        "peer_check", NULL};

const reign_backend reign_backend_s3 = {
    REIGN_BACKEND_INIT,
    .scheme = "s3",
    .scheme_alt = NULL,
    .open = s3_open,
    .execute = s3_execute,
    .notify_fd = NULL,
    .notify_drain = NULL,
    .close = s3_close,
    .params = s3_params,
};
