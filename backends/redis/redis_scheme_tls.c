/* rediss:// — the redis backend over TLS. Its own registry entry only
 * because a backend names at most two schemes; the code is redis_backend.c. */
#include "redis_backend.h"

static const char *const rediss_params[] = {"db",   "prefix", "cacert",   "cacertdir", "cert",
                                            "key",  "sni",    "insecure", "wait_replicas", NULL};

const reign_backend reign_backend_rediss = {
    REIGN_BACKEND_INIT,
    .scheme = "rediss",
    .scheme_alt = NULL,
    .open = reign_redis_open,
    .execute = reign_redis_execute,
    .notify_fd = reign_redis_notify_fd,
    .notify_drain = reign_redis_notify_drain,
    .close = reign_redis_close,
    .observe = reign_redis_observe,
    .set_metadata = reign_redis_set_metadata,
    .params = rediss_params,
};
