/* Peer mode, holder side: the leases this factory holds (a small table the
 * engine thread updates after each batch), the process-wide list of those
 * tables behind reign_s3_peer_answer, and the optional built-in HTTP/1.1
 * server (peer_listen=) that answers from them.
 *
 * Threads. The server thread is owned by its factory: started at open,
 * stopped and joined at close. It only accepts connections, reads one
 * request, answers from the table and closes; it never talks to S3 and
 * never decides anything about leases, so the engine thread is still the
 * only one doing backend I/O. The table is guarded by its mutex; the list
 * of tables by g_mu (lock order: g_mu, then a table's mu).
 *
 * An answer "master" is only a hint for candidates (they never take over
 * on it, nor wait less): the table says master until a conservative
 * 3/4 TTL after the start of the batch that renewed the lease, and
 * forgets a lease before its RELEASE is sent. */
#include "s3_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "reign/backend.h"
#include "s3_record.h"

/* Connections served at once; more wait in the listen backlog. */
#define PEER_MAX_CONNS 32
/* A connection that has not sent a whole request by then is dropped. */
#define PEER_CONN_TIMEOUT_MS 2000
#define PEER_REQ_MAX 2048

/* ---- the table ------------------------------------------------------------ */

typedef struct held {
    struct held *next;
    char *name;
    uint64_t term;
    int64_t until_ms;
} held;

typedef struct peer_conn {
    int fd;
    int64_t deadline_ms;
    char in[PEER_REQ_MAX];
    size_t in_len;
    char *out; /* the whole answer once the request is in */
    size_t out_len, out_off;
} peer_conn;

struct reign_s3_peer_server {
    struct reign_s3_peer_server *next; /* g_servers, guarded by g_mu */
    const char *instance;

    pthread_mutex_t mu; /* guards slots, n_slots */
    held **slots;
    size_t n_slots;

    /* The built-in server (listen_fd >= 0): only its thread touches conns. */
    int listen_fd;
    int stop_pipe[2];
    int port;
    bool thread_started;
    pthread_t thread;
    peer_conn conns[PEER_MAX_CONNS];
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* guards g_servers */
static reign_s3_peer_server *g_servers;

static int64_t mono_ms(void)
{
    return reign_monotonic_ms(); /* the clock the engine thread sets until_ms by */
}

static size_t slot_of(const reign_s3_peer_server *srv, const char *name)
{
    return (size_t)(reign_hash(name, strlen(name)) & (srv->n_slots - 1));
}

void reign_s3_peer_server_held(reign_s3_peer_server *srv, const char *name, uint64_t term,
                               int64_t until_ms)
{
    if (srv == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->mu);
    held **link = &srv->slots[slot_of(srv, name)];
    for (held *h = *link; h != NULL; h = h->next) {
        if (strcmp(h->name, name) == 0) {
            h->term = term;
            h->until_ms = until_ms;
            pthread_mutex_unlock(&srv->mu);
            return;
        }
    }
    pthread_mutex_unlock(&srv->mu);
    /* allocate outside the lock */
    held *h = calloc(1, sizeof *h);
    char *copy = strdup(name);
    if (h == NULL || copy == NULL) {
        free(h);
        free(copy);
        return;
    }
    h->name = copy;
    h->term = term;
    h->until_ms = until_ms;
    pthread_mutex_lock(&srv->mu);
    /* only the engine thread adds: nobody added name meanwhile */
    h->next = *link;
    *link = h;
    pthread_mutex_unlock(&srv->mu);
}

void reign_s3_peer_server_gone(reign_s3_peer_server *srv, const char *name)
{
    if (srv == NULL) {
        return;
    }
    held *drop = NULL;
    pthread_mutex_lock(&srv->mu);
    for (held **link = &srv->slots[slot_of(srv, name)]; *link != NULL; link = &(*link)->next) {
        if (strcmp((*link)->name, name) == 0) {
            drop = *link;
            *link = drop->next;
            break;
        }
    }
    pthread_mutex_unlock(&srv->mu);
    if (drop != NULL) {
        free(drop->name);
        free(drop);
    }
}

/* Is name held now, and with which term? (srv->mu held) */
static bool lookup(const reign_s3_peer_server *srv, const char *name, int64_t now_ms,
                   uint64_t *term)
{
    for (const held *h = srv->slots[slot_of(srv, name)]; h != NULL; h = h->next) {
        if (strcmp(h->name, name) == 0) {
            if (now_ms < h->until_ms) {
                *term = h->term;
                return true;
            }
            return false;
        }
    }
    return false;
}

/* ---- the answer ------------------------------------------------------------ */

static int error_body(int status, const char *msg, char *body, size_t body_size)
{
    if (body != NULL && body_size > 0) {
        snprintf(body, body_size, "{\"error\":\"%s\"}", msg);
    }
    return status;
}

REIGN_EXTERN int reign_s3_peer_answer(const char *path, char *body, size_t body_size)
{
    char name[REIGN_S3_KEY_MAX + 1];
    if (body == NULL || body_size < 64) {
        return error_body(500, "body buffer too small", body, body_size);
    }
    if (!reign_s3_peer_name_of(path, name, sizeof name)) {
        return error_body(400, "no resource name in the path", body, body_size);
    }
    int64_t now = mono_ms();
    bool master = false;
    uint64_t term = 0;
    const char *instance = NULL;
    /* the instance string lives until its factory closes, which first
     * unregisters under g_mu: copy it while g_mu is held */
    char inst[REIGN_S3_PEER_BODY_MAX];
    pthread_mutex_lock(&g_mu);
    for (reign_s3_peer_server *s = g_servers; s != NULL && !master; s = s->next) {
        pthread_mutex_lock(&s->mu);
        master = lookup(s, name, now, &term);
        pthread_mutex_unlock(&s->mu);
        if (master) {
            snprintf(inst, sizeof inst, "%s", s->instance);
            instance = inst;
        }
    }
    pthread_mutex_unlock(&g_mu);
    if (reign_s3_peer_encode(name, master, term, instance, body, body_size) == 0) {
        return error_body(500, "answer does not fit the body buffer", body, body_size);
    }
    return 200;
}

/* ---- the built-in server -------------------------------------------------- */

static void conn_close(peer_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->in_len = c->out_len = c->out_off = 0;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default: return "Internal Server Error";
    }
}

/* The request is in: build the whole answer. */
static void conn_answer(peer_conn *c)
{
    char body[REIGN_S3_PEER_BODY_MAX];
    int status;
    char *sp1 = memchr(c->in, ' ', c->in_len);
    char *sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(c->in + c->in_len - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL) {
        status = error_body(400, "not an HTTP request", body, sizeof body);
    } else if (sp1 - c->in != 3 || memcmp(c->in, "GET", 3) != 0) {
        status = error_body(405, "only GET", body, sizeof body);
    } else {
        *sp2 = '\0';
        const char *path = sp1 + 1;
        size_t plen = strlen(REIGN_S3_PEER_PATH);
        if (strncmp(path, REIGN_S3_PEER_PATH "/", plen + 1) != 0 ||
            strchr(path + plen + 1, '/') != NULL) {
            status = error_body(404, "not a peer-mode path", body, sizeof body);
        } else {
            status = reign_s3_peer_answer(path, body, sizeof body);
        }
    }
    size_t blen = strlen(body);
    size_t cap = blen + 256;
    c->out = malloc(cap);
    if (c->out == NULL) {
        conn_close(c);
        return;
    }
    int n = snprintf(c->out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
                     status, reason_of(status), blen, body);
    c->out_len = n > 0 && (size_t)n < cap ? (size_t)n : 0;
    c->out_off = 0;
}

static void conn_read(peer_conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        if (strstr(c->in, "\r\n\r\n") != NULL || strstr(c->in, "\n\n") != NULL) {
            conn_answer(c);
            return;
        }
        if (c->in_len >= sizeof c->in - 1) {
            conn_close(c); /* a request line and headers this long are not ours */
            return;
        }
    }
}

static void conn_write(peer_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            break;
        }
        c->out_off += (size_t)n;
    }
    conn_close(c);
}

static void accept_all(reign_s3_peer_server *srv, int64_t now)
{
    for (;;) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            return; /* EAGAIN, or out of descriptors: the backlog waits */
        }
        peer_conn *slot = NULL;
        for (size_t i = 0; i < PEER_MAX_CONNS && slot == NULL; i++) {
            if (srv->conns[i].fd < 0) {
                slot = &srv->conns[i];
            }
        }
        if (slot == NULL) {
            close(fd); /* full: that candidate reads S3 instead */
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        slot->fd = fd;
        slot->deadline_ms = now + PEER_CONN_TIMEOUT_MS;
        slot->in_len = 0;
    }
}

static void *server_main(void *arg)
{
    reign_s3_peer_server *srv = arg;
    struct pollfd fds[2 + PEER_MAX_CONNS];
    peer_conn *of[2 + PEER_MAX_CONNS];
    for (;;) {
        int64_t now = mono_ms();
        size_t n = 0;
        int timeout = -1;
        fds[n++] = (struct pollfd){.fd = srv->stop_pipe[0], .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = srv->listen_fd, .events = POLLIN};
        for (size_t i = 0; i < PEER_MAX_CONNS; i++) {
            peer_conn *c = &srv->conns[i];
            if (c->fd < 0) {
                continue;
            }
            if (now >= c->deadline_ms) {
                conn_close(c);
                continue;
            }
            int left = (int)(c->deadline_ms - now);
            timeout = timeout < 0 || left < timeout ? left : timeout;
            of[n] = c;
            fds[n++] = (struct pollfd){.fd = c->fd, .events = c->out != NULL ? POLLOUT : POLLIN};
        }
        int r = poll(fds, (nfds_t)n, timeout);
        if (r < 0 && errno != EINTR) {
            break;
        }
        if (r <= 0) {
            continue;
        }
        if (fds[0].revents != 0) {
            break; /* close */
        }
        for (size_t i = 2; i < n; i++) {
            peer_conn *c = of[i];
            if (fds[i].revents == 0 || c->fd != fds[i].fd) {
                continue;
            }
            if (c->out == NULL) {
                conn_read(c);
            }
            if (c->fd >= 0 && c->out != NULL) {
                conn_write(c);
            }
        }
        if (fds[1].revents != 0) {
            accept_all(srv, mono_ms());
        }
    }
    for (size_t i = 0; i < PEER_MAX_CONNS; i++) {
        conn_close(&srv->conns[i]);
    }
    return NULL;
}

/* A numeric IPv4 or IPv6 address and port into addr. */
static bool sockaddr_of(const char *host, int port, struct sockaddr_storage *addr, socklen_t *len)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return true;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return true;
    }
    return false;
}

static int start_listening(reign_s3_peer_server *srv, const char *host, int port, char *err,
                           size_t err_size)
{
    struct sockaddr_storage addr;
    socklen_t alen = 0;
    if (!sockaddr_of(host, port, &addr, &alen)) {
        snprintf(err, err_size, "peer_listen: '%s' is not a numeric IPv4 or IPv6 address", host);
        return REIGN_EURI;
    }
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_size, "peer_listen: socket: %s", strerror(errno));
        return REIGN_EIO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, alen) != 0 || listen(fd, 64) != 0) {
        snprintf(err, err_size, "peer_listen: cannot listen on %s port %d: %s", host, port,
                 strerror(errno));
        close(fd);
        return REIGN_EIO;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
        snprintf(err, err_size, "peer_listen: getsockname: %s", strerror(errno));
        close(fd);
        return REIGN_EIO;
    }
    srv->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                 : ((struct sockaddr_in6 *)&bound)->sin6_port);
    srv->listen_fd = fd;
    if (pipe2(srv->stop_pipe, O_CLOEXEC) != 0) {
        snprintf(err, err_size, "peer_listen: pipe: %s", strerror(errno));
        return REIGN_EIO;
    }
    /* the thread takes no signals: they go to the application's threads */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&srv->thread, NULL, server_main, srv);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, err_size, "peer_listen: cannot start the server thread: %s", strerror(rc));
        return REIGN_EIO;
    }
    srv->thread_started = true;
    return REIGN_OK;
}

int reign_s3_peer_server_open(const char *instance, const char *listen_host, int listen_port,
                              reign_s3_peer_server **out, char *err, size_t err_size)
{
    reign_s3_peer_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    srv->instance = instance;
    srv->listen_fd = -1;
    srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
    for (size_t i = 0; i < PEER_MAX_CONNS; i++) {
        srv->conns[i].fd = -1;
    }
    srv->n_slots = 256;
    srv->slots = calloc(srv->n_slots, sizeof *srv->slots);
    if (srv->slots == NULL) {
        free(srv);
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    pthread_mutex_init(&srv->mu, NULL);
    if (listen_host != NULL) {
        int rc = start_listening(srv, listen_host, listen_port, err, err_size);
        if (rc != REIGN_OK) {
            reign_s3_peer_server_close(srv);
            return rc;
        }
    }
    pthread_mutex_lock(&g_mu);
    srv->next = g_servers;
    g_servers = srv;
    pthread_mutex_unlock(&g_mu);
    *out = srv;
    return REIGN_OK;
}

int reign_s3_peer_server_port(const reign_s3_peer_server *srv)
{
    return srv != NULL && srv->listen_fd >= 0 ? srv->port : 0;
}

void reign_s3_peer_server_close(reign_s3_peer_server *srv)
{
    if (srv == NULL) {
        return;
    }
    pthread_mutex_lock(&g_mu);
    for (reign_s3_peer_server **link = &g_servers; *link != NULL; link = &(*link)->next) {
        if (*link == srv) {
            *link = srv->next;
            break;
        }
    }
    pthread_mutex_unlock(&g_mu);
    if (srv->thread_started) {
        char c = 1;
        ssize_t w;
        do {
            w = write(srv->stop_pipe[1], &c, 1);
        } while (w < 0 && errno == EINTR);
        pthread_join(srv->thread, NULL);
    }
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
    }
    for (int i = 0; i < 2; i++) {
        if (srv->stop_pipe[i] >= 0) {
            close(srv->stop_pipe[i]);
        }
    }
    for (size_t i = 0; i < srv->n_slots; i++) {
        held *h = srv->slots[i];
        while (h != NULL) {
            held *next = h->next;
            free(h->name);
            free(h);
            h = next;
        }
    }
    free(srv->slots);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
