/* TLS for the redis backend on OpenSSL (see redis_tls.h).
 *
 * Map: 1. a socket BIO that never raises SIGPIPE; 2. the client context;
 * 3. the handshake, with host name checking; 4. non-blocking read/write.
 *
 * Everything runs on the factory's engine thread. OpenSSL's error queue is
 * per thread, so it is cleared before each call whose errors we report. */
#include "redis_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "reign/reign.h"

#include "redis_net.h"

struct reign_redis_tls {
    SSL_CTX *ctx;
    BIO_METHOD *bio_method; /* send/recv with MSG_NOSIGNAL, see below */
    char *sni;              /* owned copy; NULL: check the host */
    bool insecure;
};

/* ---- 1. A socket BIO without SIGPIPE ------------------------------------- */

/* OpenSSL's socket BIO writes with write(2): a peer that closed turns that
 * into SIGPIPE, which kills a process that did not ignore it, and a library
 * must not change the process's signal dispositions. send(MSG_NOSIGNAL)
 * gives EPIPE instead. */
static int bio_fd(BIO *b)
{
    return (int)(intptr_t)BIO_get_data(b);
}

static int bio_write(BIO *b, const char *buf, int len)
{
    ssize_t n;
    do {
        n = send(bio_fd(b), buf, (size_t)len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    BIO_clear_retry_flags(b);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        BIO_set_retry_write(b);
    }
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
    ssize_t n;
    do {
        n = recv(bio_fd(b), buf, (size_t)len, 0);
    } while (n < 0 && errno == EINTR);
    BIO_clear_retry_flags(b);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        BIO_set_retry_read(b);
    }
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* nothing is buffered here */
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* ---- 2. The client context ----------------------------------------------- */

/* The oldest queued OpenSSL error as text, or `fallback`. */
static const char *ssl_cause(char *buf, size_t size, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(buf, size, "%s", fallback);
    } else {
        const char *reason = ERR_reason_error_string(e);
        if (reason != NULL) {
            snprintf(buf, size, "%s", reason);
        } else {
            ERR_error_string_n(e, buf, size);
        }
    }
    ERR_clear_error();
    return buf;
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

int reign_redis_tls_new(const reign_redis_tls_config *cfg, reign_redis_tls **out, char *err,
                        size_t err_size)
{
    char cause[200];
    int rc = REIGN_OK;
    reign_redis_tls *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, err_size, "TLS: out of memory");
        return REIGN_ENOMEM;
    }
    ERR_clear_error();
    t->ctx = SSL_CTX_new(TLS_client_method());
    t->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "reign-redis-socket");
    if (!empty(cfg->sni)) {
        t->sni = strdup(cfg->sni);
    }
    if (t->ctx == NULL || t->bio_method == NULL || (!empty(cfg->sni) && t->sni == NULL) ||
        BIO_meth_set_write(t->bio_method, bio_write) != 1 ||
        BIO_meth_set_read(t->bio_method, bio_read) != 1 ||
        BIO_meth_set_ctrl(t->bio_method, bio_ctrl) != 1 ||
        BIO_meth_set_create(t->bio_method, bio_create) != 1) {
        snprintf(err, err_size, "TLS: cannot make a client context: %s",
                 ssl_cause(cause, sizeof(cause), "out of memory"));
        rc = REIGN_ENOMEM;
        goto out;
    }
    t->insecure = cfg->insecure;
    /* TLS 1.0 and 1.1 are deprecated (RFC 8996); Redis 6+ speaks 1.2 and 1.3. */
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    /* A partial write returns what went out, and a retried write may come
     * from a moved buffer: our output buffer is compacted between tries. */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(t->ctx, cfg->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (!empty(cfg->cacert) || !empty(cfg->cacertdir)) {
        if (SSL_CTX_load_verify_locations(t->ctx, empty(cfg->cacert) ? NULL : cfg->cacert,
                                          empty(cfg->cacertdir) ? NULL : cfg->cacertdir) != 1) {
            snprintf(err, err_size, "TLS: cannot load CA certificates from %s: %s",
                     !empty(cfg->cacert) ? cfg->cacert : cfg->cacertdir,
                     ssl_cause(cause, sizeof(cause), "unreadable"));
            rc = REIGN_EURI;
            goto out;
        }
    } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        snprintf(err, err_size, "TLS: cannot load the system's CA certificates: %s",
                 ssl_cause(cause, sizeof(cause), "unknown error"));
        rc = REIGN_EURI;
        goto out;
    }
    if (empty(cfg->cert) != empty(cfg->key)) {
        snprintf(err, err_size, "TLS: a client certificate needs both cert= and key=");
        rc = REIGN_EURI;
        goto out;
    }
    if (!empty(cfg->cert)) {
        if (SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert) != 1) {
            snprintf(err, err_size, "TLS: cannot load the client certificate %s: %s", cfg->cert,
                     ssl_cause(cause, sizeof(cause), "unreadable"));
            rc = REIGN_EURI;
            goto out;
        }
        if (SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(t->ctx) != 1) {
            snprintf(err, err_size, "TLS: cannot use the private key %s: %s", cfg->key,
                     ssl_cause(cause, sizeof(cause), "unreadable"));
            rc = REIGN_EURI;
            goto out;
        }
    }
out:
    if (rc == REIGN_OK) {
        *out = t;
    } else {
        reign_redis_tls_free(t);
    }
    return rc;
}

void reign_redis_tls_free(reign_redis_tls *t)
{
    if (t == NULL) {
        return;
    }
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->bio_method);
    free(t->sni);
    free(t);
}

/* ---- 3. The handshake ---------------------------------------------------- */

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Name the certificate must carry: sni= if given, else the host. SNI is
 * sent only for a name (RFC 6066 forbids IP literals there). */
static int set_peer_name(reign_redis_tls *t, SSL *s, const char *host)
{
    const char *name = t->sni != NULL ? t->sni : host;
    bool ip = is_ip_literal(name);
    if (!ip && SSL_set_tlsext_host_name(s, name) != 1) {
        return -1;
    }
    if (t->insecure) {
        return 0;
    }
    X509_VERIFY_PARAM *param = SSL_get0_param(s);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
                : X509_VERIFY_PARAM_set1_host(param, name, 0);
    return ok == 1 ? 0 : -1;
}

/* The server refused our certificate (or the lack of one). With TLS 1.3
 * it says so after the handshake, in the first record we read. */
static bool is_certificate_alert(unsigned long e)
{
    int reason = ERR_GET_REASON(e);
    return ERR_GET_LIB(e) == ERR_LIB_SSL && (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
                                             reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
                                             reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
                                             reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
}

/* Why a handshake failed, as a status and a cause. */
static int handshake_failure(SSL *s, int ssl_err, const char *name, char *err, size_t err_size)
{
    char cause[200];
    long verify = SSL_get_verify_result(s);
    if (verify != X509_V_OK) {
        ERR_clear_error();
        snprintf(err, err_size, "TLS: the server's certificate is not trusted for %s: %s", name,
                 X509_verify_cert_error_string(verify));
        return REIGN_EAUTH;
    }
    if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN) {
        unsigned long e = ERR_peek_error();
        if (e == 0) {
            int saved = errno;
            ERR_clear_error();
            snprintf(err, err_size,
                     "TLS handshake: %s (a server that wants a client certificate, or one "
                     "that is not TLS, may hang up like this)",
                     saved != 0 && ssl_err == SSL_ERROR_SYSCALL ? strerror(saved)
                                                                : "server closed the connection");
            return REIGN_EBACKEND;
        }
    }
    unsigned long e = ERR_peek_error();
    int reason = ERR_GET_REASON(e);
    ssl_cause(cause, sizeof(cause), "failed");
    if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_UNKNOWN_PROTOCOL ||
        reason == SSL_R_PACKET_LENGTH_TOO_LONG) {
        snprintf(err, err_size, "TLS handshake: %s: the server does not speak TLS (use redis://)",
                 cause);
        return REIGN_EPROTO;
    }
    if (is_certificate_alert(e)) {
        snprintf(err, err_size, "TLS handshake refused by the server: %s (check cert= and key=)",
                 cause);
        return REIGN_EAUTH;
    }
    snprintf(err, err_size, "TLS handshake: %s", cause);
    return REIGN_EPROTO;
}

int reign_redis_tls_connect(reign_redis_tls *t, int fd, const char *host, int64_t deadline_ms,
                            SSL **out, char *err, size_t err_size)
{
    char cause[200];
    ERR_clear_error();
    SSL *s = SSL_new(t->ctx);
    BIO *bio = BIO_new(t->bio_method);
    if (s == NULL || bio == NULL) {
        snprintf(err, err_size, "TLS: %s", ssl_cause(cause, sizeof(cause), "out of memory"));
        BIO_free(bio);
        SSL_free(s);
        return REIGN_ENOMEM;
    }
    BIO_set_data(bio, (void *)(intptr_t)fd);
    SSL_set_bio(s, bio, bio); /* s owns bio now */
    if (set_peer_name(t, s, host) != 0) {
        snprintf(err, err_size, "TLS: cannot set the server name %s: %s",
                 t->sni != NULL ? t->sni : host, ssl_cause(cause, sizeof(cause), "refused"));
        SSL_free(s);
        return REIGN_EINVAL;
    }
    SSL_set_connect_state(s);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(s);
        if (r == 1) {
            *out = s;
            return REIGN_OK;
        }
        int e = SSL_get_error(s, r);
        short want = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (want == 0) {
            int rc = handshake_failure(s, e, t->sni != NULL ? t->sni : host, err, err_size);
            SSL_free(s);
            return rc;
        }
        int ev = reign_redis_net_wait(fd, want, deadline_ms);
        if (ev <= 0) {
            /* A plaintext Redis takes the ClientHello for an inline command
             * still missing its newline: it waits, and so would we. */
            snprintf(err, err_size, "TLS handshake: %s",
                     ev < 0 ? strerror(errno)
                     : want == POLLIN && SSL_get_state(s) == TLS_ST_CW_CLNT_HELLO
                         ? "no answer in time (a plaintext server is silent like this: redis://?)"
                         : "no answer in time");
            SSL_free(s);
            return REIGN_EBACKEND;
        }
    }
}

void reign_redis_tls_close(SSL *s)
{
    if (s != NULL) {
        /* No close_notify: the socket is non-blocking and we do not wait for
         * the answer; the server treats an unannounced close as any other. */
        SSL_free(s);
    }
}

/* ---- 4. Non-blocking I/O ------------------------------------------------- */

static ssize_t io_result(SSL *s, int r, short *want, int *status, char *err, size_t err_size)
{
    char cause[200];
    int e = SSL_get_error(s, r);
    switch (e) {
    case SSL_ERROR_WANT_READ: *want = POLLIN; return 0;
    case SSL_ERROR_WANT_WRITE: *want = POLLOUT; return 0;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(err, err_size, "server closed the connection");
        *status = REIGN_EBACKEND;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            /* EOF without close_notify: a cut connection, maybe a truncation */
            snprintf(err, err_size, "%s",
                     errno != 0 ? strerror(errno) : "server closed the connection");
            *status = REIGN_EBACKEND;
            return -1;
        }
        /* OpenSSL 3 queues "unexpected eof while reading": said below */
        break;
    default: break;
    }
    if (is_certificate_alert(ERR_peek_error())) {
        ssl_cause(cause, sizeof(cause), "certificate refused");
        snprintf(err, err_size, "TLS: refused by the server: %s (check cert= and key=)", cause);
        *status = REIGN_EAUTH;
        return -1;
    }
    ssl_cause(cause, sizeof(cause), "TLS failure");
    snprintf(err, err_size, "TLS: %s", cause);
    /* a cut is an outage like any other; bad records are garbage */
    *status = strstr(cause, "unexpected eof") != NULL ? REIGN_EBACKEND : REIGN_EPROTO;
    return -1;
}

ssize_t reign_redis_tls_read(SSL *s, void *buf, size_t len, short *want, int *status, char *err,
                             size_t err_size)
{
    size_t got = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(s, buf, len, &got);
    if (r == 1) {
        return (ssize_t)got;
    }
    return io_result(s, r, want, status, err, err_size);
}

ssize_t reign_redis_tls_write(SSL *s, const void *buf, size_t len, short *want, int *status,
                              char *err, size_t err_size)
{
    size_t put = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write_ex(s, buf, len, &put);
    if (r == 1) {
        return (ssize_t)put;
    }
    return io_result(s, r, want, status, err, err_size);
}
