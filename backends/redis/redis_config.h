/* The redis backend's settings, read from its URI: redis://, unix://,
 * rediss:// (TLS) and redis-sentinel:// / rediss-sentinel:// (the master
 * found through Sentinel). No I/O. */
#ifndef REIGN_BACKENDS_REDIS_REDIS_CONFIG_H
#define REIGN_BACKENDS_REDIS_REDIS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "reign/backend.h"

#include "redis_sentinel.h"
#include "redis_tls.h"

typedef struct reign_redis_config {
    /* the server (fixed), or nothing yet behind sentinels */
    char *host; /* owned; NULL for a unix socket or behind sentinels */
    char *path; /* owned unix socket path, or NULL */
    int port;
    char where[300]; /* host:port or socket path, for messages */
    const char *user, *password; /* borrowed from the core's config */
    int db;
    const char *prefix; /* key and channel prefix (borrowed) */
    char *channel;      /* <prefix>released (owned) */
    size_t channel_len;
    char ttl_arg[24]; /* the lease TTL as decimal ms, for PEXPIRE */
    int wait_replicas; /* WAIT for this many replicas after each batch; 0: no WAIT */
    bool tls;
    reign_redis_tls_config tls_cfg; /* strings borrowed from the params */
    bool sentinel;
    char *master; /* the master's name at the sentinels (owned) */
    reign_redis_hostport sentinels[REIGN_REDIS_MAX_SENTINELS];
    size_t n_sentinels;
    const char *sentinel_user, *sentinel_password; /* borrowed */
} reign_redis_config;

/* Read cfg into *out. REIGN_OK, or REIGN_EURI/EINVAL/ENOMEM with the
 * thread's error message set (naming the redacted URI). On failure *out
 * may hold allocations: reign_redis_config_free it either way. */
int reign_redis_config_parse(const reign_backend_config *cfg, reign_redis_config *out);
void reign_redis_config_free(reign_redis_config *c);

#endif /* REIGN_BACKENDS_REDIS_REDIS_CONFIG_H */
