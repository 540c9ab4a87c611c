/* redis-sentinel:// and rediss-sentinel:// — the redis backend with the
 * master found through Sentinel (plaintext or TLS to sentinels and master
 * alike). The TLS parameters are listed for both; redis_config.c refuses
 * them without TLS. */
#include "redis_backend.h"

static const char *const sentinel_params[] = {
    "prefix", "sentinel_user", "sentinel_password", "cacert", "cacertdir", "cert", "key",
    "sni",    "insecure",      "wait_replicas", NULL};

const reign_backend reign_backend_redis_sentinel = {
    REIGN_BACKEND_INIT,
    .scheme = "redis-sentinel",
    .scheme_alt = "rediss-sentinel",
    .open = reign_redis_open,
    .execute = reign_redis_execute,
    .notify_fd = reign_redis_notify_fd,
    .notify_drain = reign_redis_notify_drain,
    .close = reign_redis_close,
    .observe = reign_redis_observe,
    .set_metadata = reign_redis_set_metadata,
    .params = sentinel_params,
};
