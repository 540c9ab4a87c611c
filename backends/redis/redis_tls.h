/* TLS for the redis backend (rediss://, rediss-sentinel://) on OpenSSL:
 * one client context per factory, one session per connection, driven
 * without blocking so that every wait stays inside the batch deadline.
 * hiredis 0.14 has no TLS; it never sees these bytes, only the plaintext. */
#ifndef REIGN_BACKENDS_REDIS_REDIS_TLS_H
#define REIGN_BACKENDS_REDIS_REDIS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* What the URI asked for; strings are borrowed for the call to _new. */
typedef struct reign_redis_tls_config {
    const char *cacert;    /* PEM bundle of trusted CAs; NULL: the system's */
    const char *cacertdir; /* a c_rehash'd directory of CAs; NULL: none */
    const char *cert;      /* client certificate chain (PEM), with key */
    const char *key;       /* its private key (PEM) */
    const char *sni;       /* name sent as SNI and checked in the certificate; NULL: the host */
    bool insecure;         /* no verification at all (tests only) */
} reign_redis_tls_config;

typedef struct reign_redis_tls reign_redis_tls;

/* A client context: TLS 1.2 or later, peer verification on unless
 * insecure, the CAs and client certificate loaded now, so a wrong path is
 * named at open. REIGN_OK and *out, or a status (REIGN_EURI for a file
 * that cannot be used, REIGN_ENOMEM) with a one-line cause in err. */
int reign_redis_tls_new(const reign_redis_tls_config *cfg, reign_redis_tls **out, char *err,
                        size_t err_size);
void reign_redis_tls_free(reign_redis_tls *t);

/* Handshake on connected non-blocking fd, for a server reached as host
 * (its name or IP: what the certificate must name unless sni is set),
 * before deadline_ms. REIGN_OK and *out (the session; free with
 * reign_redis_tls_close), or REIGN_EAUTH (certificate refused, either
 * side), REIGN_EPROTO (the peer does not speak TLS), REIGN_EBACKEND
 * (closed, timed out) with the cause in err. */
int reign_redis_tls_connect(reign_redis_tls *t, int fd, const char *host, int64_t deadline_ms,
                            SSL **out, char *err, size_t err_size);
void reign_redis_tls_close(SSL *s);

/* Non-blocking I/O on a session. > 0: bytes moved. 0: nothing now; *want
 * is the poll event to wait for (POLLIN or POLLOUT: TLS may need to read
 * in order to write and the other way round). -1: the session is over;
 * *status is REIGN_EBACKEND (closed, I/O error) or REIGN_EPROTO (bad
 * records), the cause in err. */
ssize_t reign_redis_tls_read(SSL *s, void *buf, size_t len, short *want, int *status, char *err,
                             size_t err_size);
ssize_t reign_redis_tls_write(SSL *s, const void *buf, size_t len, short *want, int *status,
                              char *err, size_t err_size);

#endif /* REIGN_BACKENDS_REDIS_REDIS_TLS_H */
