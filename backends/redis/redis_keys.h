/* Key names of the redis:// backend.
 * Pure functions: no I/O, unit-tested without a server. */
#ifndef REIGN_BACKENDS_REDIS_REDIS_KEYS_H
#define REIGN_BACKENDS_REDIS_REDIS_KEYS_H

#include <stddef.h>

/* Which key of a resource. Both share the `{resource}` hash tag, so they
 * fall in one Cluster slot and one script may touch both (unless the ID
 * starts with '}', which makes an empty tag). */
typedef enum reign_redis_key_kind {
    REIGN_REDIS_KEY_LEASE = 0, /* hash {holder, term, meta} with PX ttl */
    REIGN_REDIS_KEY_TERM = 1,  /* INCR counter, never expires */
} reign_redis_key_kind;

/* `<prefix>{<resource>}:lease` or `…:term`, binary-safe (the resource may
 * hold any byte but NUL, braces included). Returns a malloc'd buffer with
 * its length in *len_out (NUL-terminated too), or NULL when out of memory. */
char *reign_redis_key(const char *prefix, const char *resource, size_t resource_len,
                      reign_redis_key_kind kind, size_t *len_out);

#endif /* REIGN_BACKENDS_REDIS_REDIS_KEYS_H */
