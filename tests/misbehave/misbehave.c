/* The misbehaving server of misbehave.h: an accept thread and one thread
 * per connection, each polling its two sockets every 20 ms and reading the
 * current mode, so a switch takes effect on live connections too. */
#include "misbehave.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 512 /* reconnects add up: the backend redials after each failure */

typedef struct conn {
    misbehave *m;
    int client, upstream;
    pthread_t thread;
    bool started;
} conn;

struct misbehave {
    int listen_fd, port, upstream_port;
    _Atomic int mode;
    _Atomic int slow_ms;
    _Atomic bool stopping;
    _Atomic uint64_t accepted;
    pthread_t acceptor;
    pthread_mutex_t mu; /* guards conns, n_conns */
    conn conns[MAX_CONNS];
    size_t n_conns;
};

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static int connect_upstream(int port)
{
    if (port == 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* What a request gets in the modes that answer by themselves. */
static bool answer_badly(conn *c, int mode, const char *req, size_t n)
{
    switch (mode) {
    case MISBEHAVE_GARBAGE: {
        static const char junk[] = "%\x01\xff garbage, not RESP nor HTTP \r\n\x00\x7f}{";
        return send_all(c->client, junk, sizeof junk - 1);
    }
    case MISBEHAVE_CUT: {
        /* half of an array reply (RESP) or of a response head (HTTP) */
        const char *half = n >= 4 && memcmp(req, "GET ", 4) == 0 ? "HTTP/1.1 200 OK\r\nContent-Le"
                           : n >= 5 && memcmp(req, "POST ", 5) == 0 ? "HTTP/1.1 200 OK\r\nContent-Le"
                           : n >= 4 && memcmp(req, "PUT ", 4) == 0 ? "HTTP/1.1 200 OK\r\nContent-Le"
                                                                   : "*5\r\n:0\r\n$9\r\nhos";
        send_all(c->client, half, strlen(half));
        return false; /* close */
    }
    case MISBEHAVE_ECHO_AUTH: {
        /* "*2\r\n$4\r\nAUTH\r\n$N\r\nPASSWORD\r\n" (or with a user): quote the
         * last argument back, as a careless server (or a proxy) might */
        char reply[600];
        const char *last = NULL;
        size_t last_len = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (req[i] == '$') {
                size_t len = (size_t)strtoul(req + i + 1, NULL, 10);
                const char *nl = memchr(req + i, '\n', n - i);
                if (nl != NULL && (size_t)(nl + 1 - req) + len <= n) {
                    last = nl + 1;
                    last_len = len;
                }
            }
        }
        if (last != NULL && last_len < 400)
            snprintf(reply, sizeof reply, "-WRONGPASS invalid password '%.*s' for this user\r\n",
                     (int)last_len, last);
        else
            snprintf(reply, sizeof reply, "-NOAUTH Authentication required.\r\n");
        return send_all(c->client, reply, strlen(reply));
    }
    default: return true; /* STALL: read and forget */
    }
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    misbehave *m = c->m;
    char buf[16384];
    while (!atomic_load(&m->stopping)) {
        int mode = atomic_load(&m->mode);
        bool proxy = mode == MISBEHAVE_FORWARD || mode == MISBEHAVE_SLOW ||
                     mode == MISBEHAVE_CUT_FORWARD;
        if (proxy && c->upstream < 0)
            c->upstream = connect_upstream(m->upstream_port);
        if (proxy && c->upstream < 0)
            break;
        struct pollfd p[2] = {{c->client, POLLIN, 0}, {proxy ? c->upstream : -1, POLLIN, 0}};
        int r = poll(p, 2, 20);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (p[0].revents != 0) {
            ssize_t n = recv(c->client, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            mode = atomic_load(&m->mode);
            if (mode == MISBEHAVE_FORWARD || mode == MISBEHAVE_SLOW ||
                mode == MISBEHAVE_CUT_FORWARD) {
                if (c->upstream < 0 || !send_all(c->upstream, buf, (size_t)n))
                    break;
            } else if (!answer_badly(c, mode, buf, (size_t)n)) {
                break;
            }
        }
        if (p[1].revents != 0) {
            ssize_t n = recv(c->upstream, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            mode = atomic_load(&m->mode);
            if (mode == MISBEHAVE_SLOW) {
                bool ok = true;
                for (ssize_t i = 0; i < n && ok && !atomic_load(&m->stopping); i++) {
                    nap_ms(atomic_load(&m->slow_ms));
                    ok = send_all(c->client, buf + i, 1);
                }
                if (!ok)
                    break;
            } else if (mode == MISBEHAVE_FORWARD) {
                if (!send_all(c->client, buf, (size_t)n))
                    break;
            } else if (mode == MISBEHAVE_CUT_FORWARD) {
                send_all(c->client, buf, n > 1 ? (size_t)n / 2 : 1);
                break; /* close with the rest unsent */
            } /* other modes: the server's late answer is dropped */
        }
    }
    shutdown(c->client, SHUT_RDWR);
    if (c->upstream >= 0)
        shutdown(c->upstream, SHUT_RDWR);
    return NULL;
}

static void *accept_main(void *arg)
{
    misbehave *m = arg;
    while (!atomic_load(&m->stopping)) {
        struct pollfd p = {m->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&m->mu);
        if (m->n_conns == MAX_CONNS) {
            pthread_mutex_unlock(&m->mu);
            close(fd);
            continue;
        }
        conn *c = &m->conns[m->n_conns++];
        *c = (conn){m, fd, -1, 0, false};
        atomic_fetch_add(&m->accepted, 1);
        c->started = pthread_create(&c->thread, NULL, conn_main, c) == 0;
        pthread_mutex_unlock(&m->mu);
    }
    return NULL;
}

misbehave *misbehave_start(int upstream_port, misbehave_mode mode)
{
    misbehave *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->upstream_port = upstream_port;
    atomic_store(&m->mode, (int)mode);
    atomic_store(&m->slow_ms, 200);
    pthread_mutex_init(&m->mu, NULL);
    m->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (m->listen_fd < 0 || bind(m->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(m->listen_fd, 16) != 0 ||
        getsockname(m->listen_fd, (struct sockaddr *)&a, &len) != 0 ||
        pthread_create(&m->acceptor, NULL, accept_main, m) != 0) {
        if (m->listen_fd >= 0)
            close(m->listen_fd);
        free(m);
        return NULL;
    }
    m->port = ntohs(a.sin_port);
    return m;
}

int misbehave_port(const misbehave *m)
{
    return m->port;
}

void misbehave_set(misbehave *m, misbehave_mode mode)
{
    atomic_store(&m->mode, (int)mode);
}

void misbehave_set_slow_ms(misbehave *m, int slow_ms)
{
    atomic_store(&m->slow_ms, slow_ms);
}

uint64_t misbehave_accepted(const misbehave *m)
{
    return atomic_load(&((misbehave *)m)->accepted);
}

void misbehave_stop(misbehave *m)
{
    if (m == NULL)
        return;
    atomic_store(&m->stopping, true);
    pthread_join(m->acceptor, NULL);
    for (size_t i = 0; i < m->n_conns; i++) {
        if (m->conns[i].started)
            pthread_join(m->conns[i].thread, NULL);
        close(m->conns[i].client);
        if (m->conns[i].upstream >= 0)
            close(m->conns[i].upstream);
    }
    close(m->listen_fd);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int misbehave_uri_port(const char *uri)
{
    const char *p = uri != NULL ? strrchr(uri, ':') : NULL;
    if (p == NULL)
        return 0;
    int port = atoi(p + 1);
    return port > 0 && port < 65536 ? port : 0;
}

static int run_script(const char *name, const char *env, const char *verb, const char *dir,
                      char *out, size_t out_size)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "%s '%s/scripts/servers/%s.sh' %s '%s' 2>&1", env,
             getenv("REIGN_SOURCE_DIR"), name, verb, dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    size_t n = fread(out, 1, out_size - 1, p);
    out[n] = '\0';
    return pclose(p);
}

int misbehave_server_start(const char *name, const char *env, char dir[64], char *why,
                           size_t why_size)
{
    dir[0] = '\0';
    if (getenv("REIGN_SOURCE_DIR") == NULL) {
        snprintf(why, why_size, "REIGN_SOURCE_DIR is not set (run it through ctest)");
        return 0;
    }
    snprintf(dir, 64, "/tmp/reign-misbehave-%s-XXXXXX", name);
    if (mkdtemp(dir) == NULL) {
        snprintf(why, why_size, "mkdtemp: %s", strerror(errno));
        dir[0] = '\0';
        return 0;
    }
    char out[4096], key[32];
    int rc = run_script(name, env, "start", dir, out, sizeof out);
    char upper[16];
    size_t i = 0;
    for (; name[i] != '\0' && i + 1 < sizeof upper; i++)
        upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i]);
    upper[i] = '\0';
    snprintf(key, sizeof key, "%s_PORT=", upper);
    const char *port = strstr(out, key);
    if (rc != 0 || port == NULL) {
        snprintf(why, why_size, "scripts/servers/%s.sh start failed: %.150s", name, out);
        misbehave_server_stop(name, dir);
        dir[0] = '\0';
        return 0;
    }
    return atoi(port + strlen(key));
}

void misbehave_server_stop(const char *name, const char *dir)
{
    if (dir == NULL || dir[0] == '\0')
        return;
    char out[2048], cmd[128];
    run_script(name, "", "stop", dir, out, sizeof out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "misbehave: could not remove %s\n", dir);
}
