/* Redis Sentinel for the redis backend: which server is the master now.
 * Parsers are pure functions (unit-tested and fuzzable without a server);
 * the resolver asks the sentinels one after the other within a deadline,
 * as Redis's guidelines for Sentinel clients describe. */
#ifndef REIGN_BACKENDS_REDIS_REDIS_SENTINEL_H
#define REIGN_BACKENDS_REDIS_REDIS_SENTINEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "redis_tls.h"

#define REIGN_REDIS_SENTINEL_PORT 26379
#define REIGN_REDIS_HOST_MAX 256 /* a DNS name is at most 253 bytes */
#define REIGN_REDIS_MAX_SENTINELS 16

typedef struct reign_redis_hostport {
    char host[REIGN_REDIS_HOST_MAX];
    int port;
} reign_redis_hostport;

/* The host list of a URI's authority ("user:pw@h1:26379,[::1]:26380,h3"):
 * at most max entries into out, default_port where none is given. Returns
 * the count (>= 1), or -1 with a cause in err (empty host, bad port, too
 * many). The user info is skipped and never copied into err. */
int reign_redis_parse_hosts(const char *uri, int default_port, reign_redis_hostport *out,
                            size_t max, char *err, size_t err_size);

/* A +switch-master message ("<name> <old-ip> <old-port> <new-ip>
 * <new-port>"): true, with the new address, when it is about `master`. */
bool reign_redis_parse_switch(const char *msg, size_t len, const char *master,
                              reign_redis_hostport *out);

/* The reply to SENTINEL get-master-addr-by-name: REIGN_OK and *out for
 * [ip, port]; REIGN_ENOMASTER for nil (the sentinel does not know that
 * name); REIGN_EPROTO for another shape, with the cause in err. */
int reign_redis_parse_master_addr(const redisReply *r, reign_redis_hostport *out, char *err,
                                  size_t err_size);

/* Whom to ask, and as whom. Borrowed. */
typedef struct reign_redis_sentinels {
    const reign_redis_hostport *list;
    size_t n;
    const char *master;   /* the name sentinels monitor it under */
    const char *user;     /* sentinel ACL user, NULL: default */
    const char *password; /* sentinel password, NULL: none */
    reign_redis_tls *tls; /* NULL: plaintext */
} reign_redis_sentinels;

/* Ask the sentinels, from index *first on and around, for the master's
 * address before deadline_ms; each gets an equal share of the time left.
 * REIGN_OK with *out and *first set to the one that answered (ask it
 * first next time), else the last failure's status with every sentinel's
 * cause in err. */
int reign_redis_sentinel_resolve(const reign_redis_sentinels *s, size_t *first,
                                 int64_t deadline_ms, reign_redis_hostport *out, char *err,
                                 size_t err_size);

/* "host:port", "[v6]:port" into buf. */
void reign_redis_hostport_str(const reign_redis_hostport *hp, char *buf, size_t size);

#endif /* REIGN_BACKENDS_REDIS_REDIS_SENTINEL_H */
