/* Sockets of the redis backend: dial with a deadline, wait with poll(2).
 * hiredis 0.14 connects for itself but cannot hand the socket to TLS, so
 * the backend owns its sockets and uses hiredis only to format commands
 * and parse replies. */
#include "redis_net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "reign/reign.h"

int reign_redis_net_wait(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - reign_monotonic_ms();
        if (left < 0) {
            left = 0;
        }
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n > 0) {
            return p.revents;
        }
        if (reign_monotonic_ms() >= deadline_ms) {
            return 0;
        }
    }
}

/* A subscriber only ever reads: without keepalive it would not notice a
 * server that vanished without a FIN (power loss, partition). Best effort. */
static void tune_tcp(int fd)
{
    int on = 1, idle = 15, intvl = 5, cnt = 3;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* One non-blocking connect: the fd, or -1 with errno (ETIMEDOUT when the
 * deadline passed first). */
static int connect_one(int family, const struct sockaddr *addr, socklen_t len, int64_t deadline_ms)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int rc;
    do {
        rc = connect(fd, addr, len);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) {
        goto fail;
    }
    if (rc != 0) {
        int ev = reign_redis_net_wait(fd, POLLOUT, deadline_ms);
        if (ev == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (ev < 0) {
            goto fail;
        }
        int so_error = 0;
        socklen_t sl = sizeof(so_error);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &sl) != 0) {
            goto fail;
        }
        if (so_error != 0) {
            errno = so_error;
            goto fail;
        }
    }
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static int dial_unix(const char *path, int64_t deadline_ms, char *err, size_t err_size)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path)) {
        snprintf(err, err_size, "socket path is longer than %zu bytes", sizeof(a.sun_path) - 1);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = connect_one(AF_UNIX, (struct sockaddr *)&a, sizeof(a), deadline_ms);
    if (fd < 0) {
        snprintf(err, err_size, "%s", errno == ETIMEDOUT ? "timed out" : strerror(errno));
    }
    return fd;
}

int reign_redis_net_dial(const char *host, int port, const char *path, int64_t deadline_ms,
                         char *err, size_t err_size)
{
    if (path != NULL) {
        return dial_unix(path, deadline_ms, err, err_size);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    int gai = getaddrinfo(host, service, &hints, &list);
    if (gai != 0) {
        snprintf(err, err_size, "cannot resolve %s: %s", host,
                 gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return -1;
    }
    int fd = -1, last_errno = ECONNREFUSED;
    for (struct addrinfo *ai = list; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline_ms);
        if (fd < 0) {
            last_errno = errno;
            if (last_errno == ETIMEDOUT) {
                break; /* the deadline is spent: no time for the next address */
            }
        }
    }
    freeaddrinfo(list);
    if (fd < 0) {
        snprintf(err, err_size, "%s", last_errno == ETIMEDOUT ? "timed out" : strerror(last_errno));
        return -1;
    }
    tune_tcp(fd);
    return fd;
}
