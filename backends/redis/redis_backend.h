/* Private to the redis backend: its members, shared by the vtables of its
 * schemes (redis:// and unix:// here; rediss:// and redis-sentinel:// in
 * redis_scheme_*.c), which differ only in the parameters they accept. */
#ifndef REIGN_BACKENDS_REDIS_REDIS_BACKEND_H
#define REIGN_BACKENDS_REDIS_REDIS_BACKEND_H

#include "reign/backend.h"

extern const reign_backend reign_backend_redis;

int reign_redis_open(const reign_backend_config *cfg, void **state_out);
int reign_redis_execute(void *state, reign_batch *batch);
int reign_redis_notify_fd(void *state);
void reign_redis_notify_drain(void *state, reign_released_fn released, void *ctx);
void reign_redis_close(void *state);
int reign_redis_observe(void *state, int on);
int reign_redis_set_metadata(void *state, const char *resource, size_t len, uint64_t term,
                             const char *metadata, int64_t deadline_ns);

#endif /* REIGN_BACKENDS_REDIS_REDIS_BACKEND_H */
