/* The redis backend's URI → settings (see redis_config.h). A typo must be
 * named at open, even when the server is down, and no message may quote a
 * password: URIs are shown redacted, paths are not secret. */
#include "redis_config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REDIS_DEFAULT_PORT 6379
#define REDIS_DEFAULT_PREFIX "reign:"
#define REDIS_RELEASED_SUFFIX "released"

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* A database number: decimal 0..INT_MAX, nothing else. */
static bool parse_db(const char *text, size_t len, int *out)
{
    if (len == 0 || len > 9) {
        return false;
    }
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
}

static int configure_unix(const reign_backend_config *cfg, reign_redis_config *c)
{
    const char *uri = cfg->uri_redacted;
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
    if (dbp != NULL && !parse_db(dbp, strlen(dbp), &c->db)) {
        reign_backend_error("redis: %s: db=%s is not a database number (0, 1, ...)", uri, dbp);
        return REIGN_EURI;
    }
    c->path = strdup(cfg->path);
    if (c->path == NULL) {
        reign_backend_error("redis: %s: out of memory", uri);
        return REIGN_ENOMEM;
    }
    snprintf(c->where, sizeof(c->where), "%s", cfg->path);
    return REIGN_OK;
}

/* A ',' in the host part (after the user info) of the URI. */
static bool several_hosts(const char *uri)
{
    const char *a = uri != NULL ? strstr(uri, "://") : NULL;
    if (a == NULL) {
        return false;
    }
    a += 3;
    size_t n = strcspn(a, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == '@') {
            at = a + i;
        }
    }
    const char *hosts = at != NULL ? at + 1 : a;
    return memchr(hosts, ',', n - (size_t)(hosts - a)) != NULL;
}

/* redis[s]://host:port/db: the path, if any, is the database number. */
static int configure_tcp(const reign_backend_config *cfg, reign_redis_config *c)
{
    const char *p = cfg->path != NULL ? cfg->path : "";
    if (p[0] == '/') {
        p++;
    }
    if (p[0] != '\0' && !parse_db(p, strlen(p), &c->db)) {
        /* The path is not quoted: a mistyped URI may carry a password there. */
        reign_backend_error("redis: %s: the path is not a database number; use "
                            "%s://host:port/DB",
                            cfg->uri_redacted, cfg->scheme);
        return REIGN_EURI;
    }
    if (several_hosts(cfg->uri)) {
        reign_backend_error("redis: %s: several hosts are for sentinels: use "
                            "redis-sentinel://h1:26379,h2:26379/MASTER",
                            cfg->uri_redacted);
        return REIGN_EURI;
    }
    c->host = strdup(empty(cfg->host) ? "127.0.0.1" : cfg->host);
    if (c->host == NULL) {
        reign_backend_error("redis: %s: out of memory", cfg->uri_redacted);
        return REIGN_ENOMEM;
    }
    c->port = cfg->port != 0 ? cfg->port : REDIS_DEFAULT_PORT;
    snprintf(c->where, sizeof(c->where), strchr(c->host, ':') != NULL ? "[%s]:%d" : "%s:%d",
             c->host, c->port);
    return REIGN_OK;
}

/* redis[s]-sentinel://h1:26379,h2:26379/MASTER[/db] */
static int configure_sentinel(const reign_backend_config *cfg, reign_redis_config *c)
{
    const char *uri = cfg->uri_redacted;
    char cause[160];
    int n = reign_redis_parse_hosts(cfg->uri, REIGN_REDIS_SENTINEL_PORT, c->sentinels,
                                    REIGN_REDIS_MAX_SENTINELS, cause, sizeof(cause));
    if (n < 0) {
        reign_backend_error("redis: %s: sentinels: %s", uri, cause);
        return REIGN_EURI;
    }
    c->n_sentinels = (size_t)n;
    const char *p = cfg->path != NULL ? cfg->path : "";
    if (p[0] == '/') {
        p++;
    }
    const char *slash = strchr(p, '/');
    size_t name_len = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (name_len == 0) {
        reign_backend_error("redis: %s: no master name; use %s://h1:26379,h2:26379/MASTER[/DB]",
                            uri, cfg->scheme);
        return REIGN_EURI;
    }
    if (slash != NULL && slash[1] != '\0' && !parse_db(slash + 1, strlen(slash + 1), &c->db)) {
        reign_backend_error("redis: %s: what follows the master name is not a database number",
                            uri);
        return REIGN_EURI;
    }
    /* the name is borrowed from the core's path: cut it there */
    c->path = strndup(p, name_len);
    if (c->path == NULL) {
        reign_backend_error("redis: %s: out of memory", uri);
        return REIGN_ENOMEM;
    }
    if (memchr(c->path, ' ', name_len) != NULL) {
        /* +switch-master messages are space-separated: such a name cannot be followed */
        reign_backend_error("redis: %s: the master name must not contain a space", uri);
        return REIGN_EURI;
    }
    c->master = c->path;
    c->path = NULL;
    c->sentinel_user = reign_backend_param(cfg, "sentinel_user");
    c->sentinel_password = reign_backend_param(cfg, "sentinel_password");
    snprintf(c->where, sizeof(c->where), "master %s", c->master);
    return REIGN_OK;
}

/* TLS parameters, named as redis-cli's flags (--cacert, --cacertdir,
 * --cert, --key, --sni, --insecure). */
static int configure_tls(const reign_backend_config *cfg, reign_redis_config *c)
{
    static const char *const names[] = {"cacert", "cacertdir", "cert", "key", "sni", "insecure"};
    const char *v[6];
    for (size_t i = 0; i < 6; i++) {
        v[i] = reign_backend_param(cfg, names[i]);
        if (v[i] != NULL && !c->tls) {
            reign_backend_error("redis: %s: %s= is a TLS parameter: use %s", cfg->uri_redacted,
                                names[i], c->sentinel ? "rediss-sentinel://" : "rediss://");
            return REIGN_EURI;
        }
    }
    c->tls_cfg.cacert = v[0];
    c->tls_cfg.cacertdir = v[1];
    c->tls_cfg.cert = v[2];
    c->tls_cfg.key = v[3];
    c->tls_cfg.sni = v[4];
    if (v[5] != NULL && strcmp(v[5], "0") != 0 && strcmp(v[5], "1") != 0) {
        reign_backend_error("redis: %s: insecure=%s: use 1 (no certificate checks) or 0",
                            cfg->uri_redacted, v[5]);
        return REIGN_EURI;
    }
    c->tls_cfg.insecure = v[5] != NULL && strcmp(v[5], "1") == 0;
    return REIGN_OK;
}

int reign_redis_config_parse(const reign_backend_config *cfg, reign_redis_config *c)
{
    const char *uri = cfg->uri_redacted;
    int rc;
    if (empty(cfg->instance_id)) {
        reign_backend_error("redis: %s: empty instance ID", uri);
        return REIGN_EINVAL;
    }
    if (cfg->ttl_ms <= 0) {
        reign_backend_error("redis: %s: lease TTL %" PRId64 " ms is not positive", uri,
                            cfg->ttl_ms);
        return REIGN_EINVAL;
    }
    c->tls = strcmp(cfg->scheme, "rediss") == 0 || strcmp(cfg->scheme, "rediss-sentinel") == 0;
    c->sentinel = strstr(cfg->scheme, "-sentinel") != NULL;
    if (strcmp(cfg->scheme, "unix") == 0) {
        rc = configure_unix(cfg, c);
    } else if (c->sentinel) {
        rc = configure_sentinel(cfg, c);
    } else {
        rc = configure_tcp(cfg, c);
    }
    if (rc == REIGN_OK) {
        rc = configure_tls(cfg, c);
    }
    if (rc != REIGN_OK) {
        return rc;
    }
    c->user = empty(cfg->user) ? NULL : cfg->user;
    c->password = cfg->password;

    const char *prefix = reign_backend_param(cfg, "prefix");
    c->prefix = prefix != NULL ? prefix : REDIS_DEFAULT_PREFIX;
    if (strpbrk(c->prefix, "{}") != NULL) {
        /* the braces of a key are ours: they make the per-resource hash tag */
        reign_backend_error("redis: %s: prefix=%s must not contain '{' or '}'", uri, c->prefix);
        return REIGN_EURI;
    }
    size_t plen = strlen(c->prefix);
    c->channel_len = plen + strlen(REDIS_RELEASED_SUFFIX);
    c->channel = malloc(c->channel_len + 1);
    if (c->channel == NULL) {
        reign_backend_error("redis: %s: out of memory", uri);
        return REIGN_ENOMEM;
    }
    memcpy(c->channel, c->prefix, plen);
    memcpy(c->channel + plen, REDIS_RELEASED_SUFFIX, sizeof(REDIS_RELEASED_SUFFIX));
    snprintf(c->ttl_arg, sizeof(c->ttl_arg), "%" PRId64, cfg->ttl_ms);
    const char *w = reign_backend_param(cfg, "wait_replicas");
    if (w != NULL && (!parse_db(w, strlen(w), &c->wait_replicas) || c->wait_replicas > 16)) {
        reign_backend_error("redis: %s: wait_replicas=%s is not a number of replicas (0..16)", uri,
                            w);
        return REIGN_EURI;
    }
    return REIGN_OK;
}

void reign_redis_config_free(reign_redis_config *c)
{
    free(c->host);
    free(c->path);
    free(c->master);
    free(c->channel);
}
