/* The etcd:// and etcds:// backend: leases in etcd v3 through its JSON
 * gateway (libcurl for HTTP, jansson for JSON).
 *
 * One etcd lease per factory carries every key this instance holds; the
 * engine's RENEW batches keep it alive with one keep-alive, whatever the
 * number of keys. A resource's key is <prefix>/<resource bytes>; ACQUIRE
 * creates it only if absent (create_revision == 0), so the term — the key's
 * create_revision — grows with every new holder. One watch on the prefix
 * tells the core about deleted keys (releases and lease expiries).
 *
 * Map of the backend's files:
 *   etcd_backend.c  open, close, the vtable, the factory's lease
 *   etcd_config.c   URI → endpoints, prefix, credentials, TLS files
 *   etcd_http.c     concurrent requests, endpoint failover, auth, discovery
 *   etcd_ops.c      a batch of lease ops → requests → results
 *   etcd_watch.c    the watch stream behind notify_fd
 *   etcd_held.c     resources last seen held by others (reads before writes)
 *   etcd_json.c     response parsing (pure)
 *   etcd_codec.c    base64, the lease record, key names (pure)
 * Every member is called from the factory's engine thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_codec.h"
#include "etcd_internal.h"
#include "etcd_json.h"

int reign_etcd_lease_grant(etcd_state *s, int64_t deadline_ns, char *err, size_t err_size)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, s->lease_ttl_s);
    etcd_req r = {.path = "/lease/grant"};
    etcd_req *rp = &r;
    json_t *body = json_pack("{s:s}", "TTL", ttl);
    r.body = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (r.body == NULL) {
        snprintf(err, err_size, "lease grant: out of memory");
        return REIGN_ENOMEM;
    }
    int64_t sent = reign_backend_now_ns();
    reign_etcd_http_run(&s->http, &rp, 1, deadline_ns);
    int rc = r.status;
    int64_t id = 0, granted = 0;
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "lease grant: %s", r.err);
    } else if ((rc = reign_etcd_json_lease_grant(r.root, &id, &granted, r.err, sizeof r.err)) !=
               REIGN_OK) {
        snprintf(err, err_size, "lease grant: %s", r.err);
    } else if (granted < s->lease_ttl_s) {
        rc = REIGN_EBACKEND;
        snprintf(err, err_size, "lease grant: asked for %" PRId64 " s, etcd granted %" PRId64
                 " s", s->lease_ttl_s, granted);
    } else {
        s->lease_id = id;
        s->lease_fresh_ns = sent;
        reign_backend_log(s->cfg, REIGN_LOG_DEBUG, "lease %" PRId64 " granted, TTL %" PRId64 " s",
                          id, granted);
    }
    reign_etcd_req_clear(&r);
    return rc;
}

/* Best effort at close: the core released every key already; revoking the
 * lease drops any straggler at once instead of after a TTL. */
static void lease_revoke(etcd_state *s)
{
    if (s->lease_id == 0)
        return;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, s->lease_id);
    etcd_req r = {.path = "/lease/revoke"};
    etcd_req *rp = &r;
    json_t *body = json_pack("{s:s}", "ID", id);
    r.body = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (r.body != NULL) {
        reign_etcd_http_run(&s->http, &rp, 1,
                            reign_backend_now_ns() + s->cfg->op_timeout_ms * 1000000);
        if (r.status != REIGN_OK && r.grpc_code != ETCD_GRPC_NOT_FOUND)
            reign_backend_log(s->cfg, REIGN_LOG_DEBUG, "revoke of lease %s: %s", id, r.err);
    }
    reign_etcd_req_clear(&r);
    s->lease_id = 0;
}

static void etcd_close(void *state)
{
    etcd_state *s = state;
    if (s == NULL)
        return;
    if (s->http.multi != NULL)
        lease_revoke(s);
    reign_etcd_watch_cleanup(&s->watch);
    reign_etcd_http_cleanup(&s->http);
    reign_etcd_settings_free(&s->set);
    reign_etcd_held_free(&s->held);
    free(s->holder_value);
    free(s->prefix_key);
    free(s->prefix_end);
    free(s);
    curl_global_cleanup();
}

/* base64 of <prefix>/ and of the end of its range, for the watch and the
 * prefix-wide range. */
static int prefix_range(etcd_state *s)
{
    size_t len = strlen(s->set.prefix);
    char *key = malloc(len + 2);
    if (key == NULL)
        return REIGN_ENOMEM;
    memcpy(key, s->set.prefix, len);
    key[len] = '/';
    key[len + 1] = '\0';
    size_t end_len = 0;
    char *end = reign_etcd_prefix_end(key, len + 1, &end_len);
    s->prefix_key = reign_etcd_b64_encode(key, len + 1);
    s->prefix_end = end != NULL ? reign_etcd_b64_encode(end, end_len) : NULL;
    free(key);
    free(end);
    return s->prefix_key != NULL && s->prefix_end != NULL ? REIGN_OK : REIGN_ENOMEM;
}

/* One keys-only range of at most one key under the prefix: proves at open
 * that this user may read there (lease grants need no permission, so
 * without this a missing password would show only at the first ACQUIRE). */
static int probe_prefix(etcd_state *s, int64_t deadline_ns, char *err, size_t err_size)
{
    etcd_req r = {.path = "/kv/range"};
    etcd_req *rp = &r;
    /* Serializable: the member answers from its own copy, so a slow or
     * leaderless cluster does not hold up open (auth is checked all the same). */
    json_t *body = json_pack("{s:s, s:s, s:b, s:s, s:b}", "key", s->prefix_key, "range_end",
                             s->prefix_end, "keys_only", 1, "limit", "1", "serializable", 1);
    r.body = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (r.body == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    reign_etcd_http_run(&s->http, &rp, 1, deadline_ns);
    int rc = r.status;
    if (rc == REIGN_EAUTH && s->set.user == NULL)
        snprintf(err, err_size, "reading keys under %s/: %s; the server wants a user: "
                 "etcd://user:password@host", s->set.prefix, r.err);
    else if (rc != REIGN_OK)
        snprintf(err, err_size, "reading keys under %s/: %s", s->set.prefix, r.err);
    reign_etcd_req_clear(&r);
    return rc;
}

static int etcd_open(const reign_backend_config *cfg, void **state_out)
{
    char err[ETCD_ERR_SIZE + 64];
    int rc = REIGN_OK;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        reign_backend_error("etcd: libcurl failed to initialise");
        return REIGN_EBACKEND;
    }
    etcd_state *s = calloc(1, sizeof *s);
    if (s == NULL) {
        curl_global_cleanup();
        reign_backend_error("etcd: out of memory");
        return REIGN_ENOMEM;
    }
    s->cfg = cfg;
    s->watch.epfd = s->watch.timer_fd = -1;
    if ((rc = reign_etcd_settings_parse(cfg, &s->set, err, sizeof err)) != REIGN_OK) {
        reign_backend_error("etcd: %s", err);
        goto out;
    }
    s->max_ops = s->set.max_txn_ops;
    s->lease_ttl_s = (cfg->ttl_ms + 999) / 1000;
    if (s->lease_ttl_s < 1)
        s->lease_ttl_s = 1;

    size_t vlen = 0;
    char *value = reign_etcd_value_encode(cfg->instance_id, cfg->metadata, &vlen);
    s->holder_value = value != NULL ? reign_etcd_b64_encode(value, vlen) : NULL;
    free(value);
    if (s->holder_value == NULL || prefix_range(s) != REIGN_OK ||
        reign_etcd_http_init(&s->http, cfg, &s->set) != REIGN_OK) {
        rc = REIGN_ENOMEM;
        reign_backend_error("etcd: out of memory");
        goto out;
    }
    s->holder_value_len = strlen(s->holder_value);
    if (reign_etcd_watch_init(&s->watch) != REIGN_OK)
        reign_backend_log(cfg, REIGN_LOG_WARN, "%s: no watch (epoll/timerfd failed): candidates "
                          "retry on their timer only", cfg->uri_redacted);

    int64_t deadline = cfg->open_deadline_ns;
    char cause[ETCD_ERR_SIZE];
    if ((rc = reign_etcd_http_discover(&s->http, deadline, cause, sizeof cause)) != REIGN_OK) {
        reign_backend_error("etcd: cannot reach %s: %s", cfg->uri_redacted, cause);
        goto out;
    }
    if ((rc = reign_etcd_http_authenticate(&s->http, deadline, cause, sizeof cause)) != REIGN_OK) {
        reign_backend_error("etcd: %s: %s", cfg->uri_redacted, cause);
        goto out;
    }
    if ((rc = probe_prefix(s, deadline, cause, sizeof cause)) != REIGN_OK) {
        reign_backend_error("etcd: %s: %s", cfg->uri_redacted, cause);
        goto out;
    }
    /* The lease is granted by the first ACQUIRE (a raft write open need not
     * wait for; a factory that only reads never needs one). */
    reign_etcd_watch_ensure(s);
    reign_backend_log(cfg, REIGN_LOG_INFO, "%s: connected to %s (API %s), leases of %" PRId64
                      " s, keys under %s/", cfg->uri_redacted, s->set.endpoints[s->http.current],
                      s->http.api, s->lease_ttl_s, s->set.prefix);
    *state_out = s;
    return REIGN_OK;
out:
    etcd_close(s);
    return rc;
}

static int etcd_execute(void *state, reign_batch *b)
{
    return reign_etcd_execute_batch(state, b);
}

static int etcd_notify_fd(void *state)
{
    etcd_state *s = state;
    return s->watch.epfd;
}

static void etcd_notify_drain(void *state, reign_released_fn released, void *ctx)
{
    etcd_state *s = state;
    if (s->watch.multi != NULL)
        reign_etcd_watch_drain(s, released, ctx);
}

const reign_backend reign_backend_etcd = {
    REIGN_BACKEND_INIT,
    .scheme = "etcd",
    .scheme_alt = "etcds",
    .open = etcd_open,
    .execute = etcd_execute,
    .notify_fd = etcd_notify_fd,
    .notify_drain = etcd_notify_drain,
    .close = etcd_close,
    .observe = reign_etcd_observe,
    .set_metadata = reign_etcd_set_metadata,
};
