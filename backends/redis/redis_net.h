/* Sockets of the redis backend: a non-blocking TCP or unix-socket connect
 * that ends by a deadline, and the one poll(2) wait every other wait uses.
 * No Redis and no TLS here: just the file descriptor. */
#ifndef REIGN_BACKENDS_REDIS_REDIS_NET_H
#define REIGN_BACKENDS_REDIS_REDIS_NET_H

#include <stddef.h>
#include <stdint.h>

/* Connect to host:port (every address getaddrinfo gives, in order) or,
 * with path non-NULL, to that unix socket, before deadline_ms (monotonic
 * ms). Returns a connected non-blocking, close-on-exec fd, or -1 with a
 * one-line cause in err ("Connection refused", "timed out"). TCP sockets
 * get TCP_NODELAY and keepalive. Name resolution is the one step that the
 * deadline does not bound (getaddrinfo has no timeout). */
int reign_redis_net_dial(const char *host, int port, const char *path, int64_t deadline_ms,
                         char *err, size_t err_size);

/* Wait for events on fd until deadline_ms: the revents, 0 on timeout, -1
 * (errno set) when poll fails. EINTR is retried. */
int reign_redis_net_wait(int fd, short events, int64_t deadline_ms);

#endif /* REIGN_BACKENDS_REDIS_REDIS_NET_H */
