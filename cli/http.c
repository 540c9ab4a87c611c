/* The HTTP endpoints of `reign shard --listen`: /metrics (Prometheus),
 * /healthz (for liveness probes) and /status (JSON), served by
 * libmicrohttpd on its own thread, bound to the one address given.
 *
 * Threads: libmicrohttpd's polling thread (created here, owned by the
 * cli_http) answers every request; it only reads the factory (metrics,
 * health) and calls the status callback, and is joined by cli_http_stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cli.h"

/* libmicrohttpd 0.9.71 changed the handler's return type from int. */
#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result http_result;
#else
typedef int http_result;
#endif

#define HTTP_CONNECTION_LIMIT 64   /* scrapers and probes: a handful at most */
#define HTTP_CONNECTION_TIMEOUT_S 10

struct cli_http {
    struct MHD_Daemon *daemon;
    reign_factory *factory;
    cli_status_fn status_fn;
    void *payload;
};

int cli_parse_listen(const char *command, const char *flag, const char *text,
                     cli_listen_addr *out)
{
    struct addrinfo hints = {0}, *res = NULL;
    char host[256];
    const char *port;
    size_t host_len;
    int err;

    /* "[v6]:port" or "host:port"; the last colon splits a bare host. */
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return cli_usage_error(command, "%s: '%s' is not [IPv6]:PORT", flag, text);
        host_len = (size_t)(close - text - 1);
        memcpy(host, text + 1, host_len < sizeof host ? host_len : 0);
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL)
            return cli_usage_error(command, "%s: '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9100)",
                                   flag, text);
        host_len = (size_t)(colon - text);
        memcpy(host, text, host_len < sizeof host ? host_len : 0);
        port = colon + 1;
    }
    if (host_len == 0)
        return cli_usage_error(command, "%s: '%s' names no address (e.g. 127.0.0.1:9100)", flag,
                               text);
    if (host_len >= sizeof host)
        return cli_usage_error(command, "%s: the address of '%s' is too long", flag, text);
    host[host_len] = '\0';
    int64_t port_number = 0;
    if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) ||
        cli_parse_int(command, flag, port, 0, &port_number) != 0 || port_number > 65535)
        return cli_usage_error(command, "%s: '%s' has no port 0..65535 after the last ':'", flag,
                               text);

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    err = getaddrinfo(host, port, &hints, &res);
    if (err != 0)
        return cli_usage_error(command, "%s: cannot resolve '%s': %s", flag, host,
                               gai_strerror(err));
    /* The first address only: "bind to the given address", not to all the
     * name has (localhost may be both 127.0.0.1 and ::1). */
    memset(out, 0, sizeof *out);
    memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Queue a response whose body is `body` (malloc'd, taken over; NULL = out
 * of memory → 500). */
static http_result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                           char *body, size_t len)
{
    static char oom[] = "out of memory\n";
    struct MHD_Response *r;
    http_result ret;

    if (body == NULL) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        type = "text/plain; charset=utf-8";
        r = MHD_create_response_from_buffer(sizeof oom - 1, oom, MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (r == NULL)
            free(body);
    }
    if (r == NULL)
        return MHD_NO;  /* libmicrohttpd closes the connection */
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A text body from printf-style arguments, or NULL if out of memory. */
static char *text_body(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *text_body(size_t *len, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return s;
}

static http_result serve_metrics(cli_http *h, struct MHD_Connection *conn)
{
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);

    if (f == NULL)
        return respond(conn, 0, NULL, NULL, 0);
    int rc = reign_metrics_write(h->factory, f);
    if (fclose(f) != 0 || rc != REIGN_OK) {
        free(body);
        body = text_body(&len, "metrics: %s\n",
                         rc != REIGN_OK ? reign_last_error() : "out of memory");
        return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", body,
                       len);
    }
    return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

static http_result serve_healthz(cli_http *h, struct MHD_Connection *conn)
{
    reign_health hl;
    size_t len = 0;
    char *body;

    if (reign_factory_health(h->factory, &hl) != REIGN_OK) {
        body = text_body(&len, "unhealthy: %s\n", reign_last_error());
    } else if (hl.healthy) {
        body = text_body(&len, "ok\n");
        return respond(conn, MHD_HTTP_OK, "text/plain; charset=utf-8", body, len);
    } else if (hl.last_error_status != REIGN_OK) {
        body = text_body(&len,
                         "unhealthy: the backend failed (%s); last answer %" PRId64 " ms ago\n",
                         reign_status_str(hl.last_error_status), hl.ms_since_backend_ok);
    } else if (hl.ms_since_renew_ok < 0) {
        body = text_body(&len, "unhealthy: no lease renewed yet while master of %zu resources\n",
                         hl.masterships);
    } else {
        body = text_body(&len,
                         "unhealthy: no lease renewed for %" PRId64
                         " ms while master of %zu resources (ttl %" PRId64 " ms)\n",
                         hl.ms_since_renew_ok, hl.masterships, reign_factory_ttl_ms(h->factory));
    }
    return respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", body, len);
}

static http_result serve_status(cli_http *h, struct MHD_Connection *conn)
{
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);

    if (f == NULL)
        return respond(conn, 0, NULL, NULL, 0);
    int rc = h->status_fn(f, h->payload);
    int err = errno;
    if (fclose(f) != 0 || rc != 0) {
        free(body);
        body = text_body(&len, "status: %s\n", strerror(rc != 0 ? err : errno));
        return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", body,
                       len);
    }
    return respond(conn, MHD_HTTP_OK, "application/json", body, len);
}

static http_result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    cli_http *h = cls;
    size_t len = 0;
    (void)version;
    (void)upload_data;
    (void)con_cls;

    /* GET and HEAD carry no body we need: answer at the first call.
     * Anything else is refused without reading what was sent. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static char only_get[] = "only GET and HEAD\n";
        struct MHD_Response *r = MHD_create_response_from_buffer(sizeof only_get - 1, only_get,
                                                                 MHD_RESPMEM_PERSISTENT);
        if (r == NULL)
            return MHD_NO;
        http_result ret = MHD_NO;
        if (MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_YES)
            ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        return ret;
    }
    *upload_data_size = 0;
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, conn);
    if (strcmp(url, "/healthz") == 0)
        return serve_healthz(h, conn);
    if (strcmp(url, "/status") == 0)
        return serve_status(h, conn);
    char *body = text_body(&len, "not found; try /metrics, /healthz or /status\n");
    return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", body, len);
}

/* libmicrohttpd's own messages (bind and accept failures, ...), worded
 * like the rest of ours. */
static void log_http(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    fprintf(stderr, "reign: http: %s\n", msg);
}

static void format_addr(const cli_listen_addr *a, unsigned port, char *buf, size_t size)
{
    char host[NI_MAXHOST];
    if (getnameinfo((const struct sockaddr *)&a->addr, a->len, host, sizeof host, NULL, 0,
                    NI_NUMERICHOST) != 0)
        snprintf(host, sizeof host, "?");
    if (a->addr.ss_family == AF_INET6)
        snprintf(buf, size, "[%s]:%u", host, port);
    else
        snprintf(buf, size, "%s:%u", host, port);
}

int cli_http_start(const cli_listen_addr *addr, reign_factory *factory, cli_status_fn status_fn,
                   void *payload, cli_http **out, unsigned *port_out)
{
    cli_http *h = calloc(1, sizeof *h);
    char shown[NI_MAXHOST + 16];
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    unsigned port;

    if (h == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    h->factory = factory;
    h->status_fn = status_fn;
    h->payload = payload;
    if (addr->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    port = ntohs(addr->addr.ss_family == AF_INET6
                     ? ((const struct sockaddr_in6 *)&addr->addr)->sin6_port
                     : ((const struct sockaddr_in *)&addr->addr)->sin_port);
    /* The logger first (libmicrohttpd wants it so). MHD_OPTION_SOCK_ADDR:
     * bind to this address only, not to every interface (the port
     * argument is then ignored). */
    errno = 0;
    h->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h,
                                 MHD_OPTION_EXTERNAL_LOGGER, log_http, (void *)NULL,
                                 MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&addr->addr,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTION_LIMIT,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONNECTION_TIMEOUT_S,
                                 MHD_OPTION_END);
    if (h->daemon == NULL) {
        int err = errno;
        format_addr(addr, port, shown, sizeof shown);
        cli_error("cannot listen on %s: %s", shown,
                  err != 0 ? strerror(err) : "libmicrohttpd could not start (see above)");
        free(h);
        return CLI_EXIT_FAIL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info != NULL && info->port != 0)
        port = info->port;
    *out = h;
    *port_out = port;
    return CLI_EXIT_OK;
}

void cli_http_stop(cli_http *http)
{
    if (http == NULL)
        return;
    MHD_stop_daemon(http->daemon);
    free(http);
}
