/* Redis Sentinel for the redis backend (see redis_sentinel.h): parsing of
 * host lists, +switch-master and get-master-addr-by-name, and the resolver
 * that asks one sentinel after another. */
#include "redis_sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reign/backend.h"

#include "redis_conn.h"

/* ---- parsers ---------------------------------------------------------------- */

/* A decimal port 1..65535 from [p, end). */
static int parse_port(const char *p, const char *end)
{
    if (p == end || end - p > 5) {
        return -1;
    }
    int v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        v = v * 10 + (*p - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

static int parse_one_host(const char *p, const char *end, int default_port,
                          reign_redis_hostport *out)
{
    const char *host = p, *host_end, *port = NULL;
    if (p < end && *p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL) {
            return -1;
        }
        if (host_end + 1 < end) {
            if (host_end[1] != ':') {
                return -1;
            }
            port = host_end + 2;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end != NULL) {
            port = host_end + 1;
        } else {
            host_end = end;
        }
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof(out->host) || memchr(host, '@', hlen) != NULL) {
        return -1;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = port != NULL ? parse_port(port, end) : default_port;
    return out->port > 0 ? 0 : -1;
}

int reign_redis_parse_hosts(const char *uri, int default_port, reign_redis_hostport *out,
                            size_t max, char *err, size_t err_size)
{
    const char *auth = strstr(uri, "://");
    if (auth == NULL) {
        snprintf(err, err_size, "no \"://\" in the URI");
        return -1;
    }
    auth += 3;
    const char *auth_end = auth + strcspn(auth, "/?#");
    for (const char *c = auth; c < auth_end; c++) {
        if (*c == '@') {
            auth = c + 1; /* the last '@' ends the user info */
        }
    }
    size_t n = 0;
    const char *p = auth;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(auth_end - p));
        const char *end = comma != NULL ? comma : auth_end;
        if (n == max) {
            snprintf(err, err_size, "more than %zu hosts", max);
            return -1;
        }
        if (parse_one_host(p, end, default_port, &out[n]) != 0) {
            snprintf(err, err_size, "host %zu of the list is not host[:port] (1..65535)", n + 1);
            return -1;
        }
        n++;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    return (int)n;
}

bool reign_redis_parse_switch(const char *msg, size_t len, const char *master,
                              reign_redis_hostport *out)
{
    /* five words separated by single spaces; the name may not hold one */
    const char *w[5];
    size_t wl[5];
    size_t k = 0, i = 0;
    while (k < 5 && i <= len) {
        size_t start = i;
        while (i < len && msg[i] != ' ') {
            i++;
        }
        w[k] = msg + start;
        wl[k] = i - start;
        k++;
        i++; /* past the space */
    }
    if (k != 5 || i <= len) {
        return false; /* fewer or more than five words */
    }
    if (wl[0] != strlen(master) || memcmp(w[0], master, wl[0]) != 0) {
        return false;
    }
    if (wl[3] == 0 || wl[3] >= sizeof(out->host) || memchr(w[3], '\0', wl[3]) != NULL) {
        return false;
    }
    int port = parse_port(w[4], w[4] + wl[4]);
    if (port < 0) {
        return false;
    }
    memcpy(out->host, w[3], wl[3]);
    out->host[wl[3]] = '\0';
    out->port = port;
    return true;
}

int reign_redis_parse_master_addr(const redisReply *r, reign_redis_hostport *out, char *err,
                                  size_t err_size)
{
    if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, err_size, "does not know that master name");
        return REIGN_ENOMASTER;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char shown[160];
        reign_printable(r->str, r->len, shown, sizeof(shown));
        snprintf(err, err_size, "refused: %s", shown);
        return REIGN_EBACKEND;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len == 0 || r->element[0]->len >= sizeof(out->host) ||
        memchr(r->element[0]->str, '\0', r->element[0]->len) != NULL) {
        snprintf(err, err_size, "answered something that is not [ip, port]");
        return REIGN_EPROTO;
    }
    int port = parse_port(r->element[1]->str, r->element[1]->str + r->element[1]->len);
    if (port < 0) {
        snprintf(err, err_size, "answered a port that is not 1..65535");
        return REIGN_EPROTO;
    }
    memcpy(out->host, r->element[0]->str, r->element[0]->len);
    out->host[r->element[0]->len] = '\0';
    out->port = port;
    return REIGN_OK;
}

void reign_redis_hostport_str(const reign_redis_hostport *hp, char *buf, size_t size)
{
    snprintf(buf, size, strchr(hp->host, ':') != NULL ? "[%s]:%d" : "%s:%d", hp->host, hp->port);
}

/* ---- the resolver ------------------------------------------------------------ */

static int ask_one(const reign_redis_sentinels *s, const reign_redis_hostport *hp,
                   int64_t deadline_ms, reign_redis_hostport *out, char *err, size_t err_size)
{
    char where[REIGN_REDIS_HOST_MAX + 16];
    reign_redis_hostport_str(hp, where, sizeof(where));
    reign_redis_target t = {
        .host = hp->host,
        .port = hp->port,
        .user = s->user,
        .password = s->password,
        .where = where,
        .tls = s->tls,
    };
    reign_redis_conn *c = NULL;
    redisReply *r = NULL;
    char cause[300];
    int rc = reign_redis_conn_open(&t, deadline_ms, &c, cause, sizeof(cause));
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "%s", cause);
        return rc;
    }
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", s->master};
    size_t lens[] = {8, 23, strlen(s->master)};
    rc = reign_redis_conn_append(c, 3, argv, lens);
    if (rc == REIGN_OK) {
        rc = reign_redis_conn_reply(c, deadline_ms, &r, cause, sizeof(cause));
        if (rc == REIGN_ETIMEDOUT) {
            rc = REIGN_EBACKEND;
        }
    } else {
        snprintf(cause, sizeof(cause), "out of memory");
    }
    if (rc == REIGN_OK) {
        rc = reign_redis_parse_master_addr(r, out, cause, sizeof(cause));
    }
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "sentinel %s: %s", where, cause);
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    reign_redis_conn_free(c);
    return rc;
}

int reign_redis_sentinel_resolve(const reign_redis_sentinels *s, size_t *first,
                                 int64_t deadline_ms, reign_redis_hostport *out, char *err,
                                 size_t err_size)
{
    int rc = REIGN_EBACKEND;
    size_t used = 0;
    err[0] = '\0';
    for (size_t k = 0; k < s->n; k++) {
        size_t i = (*first + k) % s->n;
        /* an equal share of what is left, so one dead sentinel cannot eat
         * the time of those after it */
        int64_t now = reign_monotonic_ms();
        int64_t share = (deadline_ms - now) / (int64_t)(s->n - k);
        char cause[300];
        rc = ask_one(s, &s->list[i], now + (share > 0 ? share : 0), out, cause, sizeof(cause));
        if (rc == REIGN_OK) {
            *first = i;
            return REIGN_OK;
        }
        int w = snprintf(err + used, err_size - used, "%s%s", used > 0 ? "; " : "", cause);
        if (w > 0 && (size_t)w < err_size - used) {
            used += (size_t)w;
        }
    }
    /* no sentinel knows the master: as unreachable as any other outage */
    return rc == REIGN_ENOMASTER || rc == REIGN_ETIMEDOUT ? REIGN_EBACKEND : rc;
}
