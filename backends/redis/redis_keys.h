/* Key names of the redis:// backend and printable forms of resource IDs.
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

/* Writes a printable form of `len` bytes into out (size out_size >= 4):
 * printable ASCII as is, other bytes as \xNN, cut with "..." when too long.
 * Returns out. For messages, which must stay one readable line. */
char *reign_redis_printable(const char *bytes, size_t len, char *out, size_t out_size);

#endif /* REIGN_BACKENDS_REDIS_REDIS_KEYS_H */
