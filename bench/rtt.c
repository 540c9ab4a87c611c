/* `reign_bench rtt`: the physical limit beside each backend — one round trip
 * to its server measured in the same run, on a connection kept open, without
 * reign: PING (hiredis) for Redis, SELECT 1 (libpq) for PostgreSQL, a range
 * request (libcurl) for etcd's JSON gateway, a signed HEAD of the bucket
 * (libcurl) for S3, and an F_OFD_SETLK lock + unlock pair for the file
 * backend. Each server probe also times a write that the server must make
 * durable as its configuration says (SET; an UPSERT; a put; a PUT object),
 * since a handoff is two writes and a notification, not reads. Prints a
 * percentile table and the rows rtt_p50 / rtt_p99 and rtt_write_p50 /
 * rtt_write_p99 (ms). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#ifdef BENCH_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif
#ifdef BENCH_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "bench.h"

typedef struct uri_parts {
    char scheme[16];
    char user[128];
    char pass[128];
    char host[256];
    int port;
    char path[512];   /* after the authority, without the query */
    char query[1024]; /* after '?' */
} uri_parts;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Copy n bytes of src into dst (size), decoding %XX. */
static void copy_decoded(char *dst, size_t size, const char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < size; i++) {
        if (src[i] == '%' && i + 2 < n && hexval(src[i + 1]) >= 0 && hexval(src[i + 2]) >= 0) {
            dst[o++] = (char)(hexval(src[i + 1]) * 16 + hexval(src[i + 2]));
            i += 2;
        } else {
            dst[o++] = src[i];
        }
    }
    dst[o] = '\0';
}

/* scheme://[user[:pass]@]host[:port][,more hosts][/path][?query]; only the
 * first host is kept. 0, or -1 if it is not of that shape. */
static int parse_uri(const char *uri, uri_parts *u)
{
    *u = (uri_parts){0};
    const char *sep = strstr(uri, "://");
    if (sep == NULL || (size_t)(sep - uri) >= sizeof u->scheme)
        return -1;
    memcpy(u->scheme, uri, (size_t)(sep - uri));
    const char *p = sep + 3;
    const char *q = strchr(p, '?');
    const char *end = q ? q : p + strlen(p);
    if (q != NULL)
        snprintf(u->query, sizeof u->query, "%s", q + 1);
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *auth_end = slash ? slash : end;
    if (slash != NULL)
        snprintf(u->path, sizeof u->path, "%.*s", (int)(end - slash), slash);
    const char *at = NULL;
    for (const char *c = p; c < auth_end; c++)
        if (*c == '@')
            at = c;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL) {
            copy_decoded(u->user, sizeof u->user, p, (size_t)(colon - p));
            copy_decoded(u->pass, sizeof u->pass, colon + 1, (size_t)(at - colon - 1));
        } else {
            copy_decoded(u->user, sizeof u->user, p, (size_t)(at - p));
        }
        p = at + 1;
    }
    const char *host_end = p;
    while (host_end < auth_end && *host_end != ',')
        host_end++;
    const char *colon = NULL;
    for (const char *c = p; c < host_end; c++)
        if (*c == ':')
            colon = c;
    const char *name_end = colon ? colon : host_end;
    if ((size_t)(name_end - p) >= sizeof u->host)
        return -1;
    memcpy(u->host, p, (size_t)(name_end - p));
    u->port = colon ? atoi(colon + 1) : 0;
    return 0;
}

/* The value of a query parameter (decoded) or "" */
static void query_param(const uri_parts *u, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    out[0] = '\0';
    for (const char *p = u->query; *p;) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            copy_decoded(out, size, p + klen + 1, (size_t)(end - p - klen - 1));
            return;
        }
        p = amp ? amp + 1 : end;
    }
}

/* ---- probes: each fills samples (ms) or returns -1 with a warning ---------- */

static int probe_file(const char *uri, long n, bench_samples *s)
{
    uri_parts u;
    if (parse_uri(uri, &u) != 0 || u.path[0] == '\0') {
        bench_warn("rtt: cannot take a directory from %s", uri);
        return -1;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/.bench-rtt-lock", u.path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        bench_warn("rtt: open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (long i = -100; i < n && rc == 0; i++) {
        struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        struct flock un = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
        int64_t t0 = bench_now_ns();
        if (fcntl(fd, F_OFD_SETLK, &lk) != 0 || fcntl(fd, F_OFD_SETLK, &un) != 0) {
            bench_warn("rtt: F_OFD_SETLK on %s: %s", path, strerror(errno));
            rc = -1;
        }
        int64_t t1 = bench_now_ns();
        if (i >= 0)
            bench_samples_add(s, (double)(t1 - t0) / 1e6);
    }
    close(fd);
    unlink(path);
    return rc;
}

#ifdef BENCH_HAVE_HIREDIS
static int probe_redis(const char *uri, long n, bench_samples *s, bool write)
{
    uri_parts u;
    if (parse_uri(uri, &u) != 0) {
        bench_warn("rtt: cannot parse %s", uri);
        return -1;
    }
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(u.host, u.port ? u.port : 6379, tv);
    if (c == NULL || c->err) {
        bench_warn("rtt: cannot connect to redis at %s:%d: %s", u.host, u.port,
                   c ? c->errstr : "out of memory");
        redisFree(c);
        return -1;
    }
    int rc = 0;
    if (u.pass[0] != '\0') {
        redisReply *r = u.user[0] ? redisCommand(c, "AUTH %s %s", u.user, u.pass)
                                  : redisCommand(c, "AUTH %s", u.pass);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            rc = -1;
        freeReplyObject(r);
    }
    char key[64];
    snprintf(key, sizeof key, "reign-bench-rtt-%ld", (long)getpid());
    for (long i = -50; i < n && rc == 0; i++) {
        int64_t t0 = bench_now_ns();
        redisReply *r = write ? redisCommand(c, "SET %s %ld", key, i) : redisCommand(c, "PING");
        int64_t t1 = bench_now_ns();
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            bench_warn("rtt: %s failed: %s", write ? "SET" : "PING", r ? r->str : c->errstr);
            rc = -1;
        }
        freeReplyObject(r);
        if (i >= 0)
            bench_samples_add(s, (double)(t1 - t0) / 1e6);
    }
    if (write)
        freeReplyObject(redisCommand(c, "DEL %s", key));
    redisFree(c);
    return rc;
}
#endif

#ifdef BENCH_HAVE_LIBPQ
static int probe_postgres(const char *uri, long n, bench_samples *s, bool write)
{
    /* Keep the query parameters libpq knows (sslmode=…: the probe must
     * connect as reign does) and drop reign's own, which libpq refuses. */
    char conn[2048];
    const char *q = strchr(uri, '?');
    size_t base = q ? (size_t)(q - uri) : strlen(uri);
    if (base >= sizeof conn)
        base = sizeof conn - 1;
    memcpy(conn, uri, base);
    conn[base] = '\0';
    PQconninfoOption *known = PQconndefaults();
    char sep = '?';
    for (const char *p = q ? q + 1 : ""; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        bool libpq = false;
        for (PQconninfoOption *k = known; k != NULL && k->keyword != NULL && !libpq; k++)
            libpq = strlen(k->keyword) == klen && strncmp(k->keyword, p, klen) == 0;
        size_t at = strlen(conn);
        if (libpq && at + len + 2 < sizeof conn) {
            conn[at] = sep;
            memcpy(conn + at + 1, p, len);
            conn[at + 1 + len] = '\0';
            sep = '&';
        }
        p += len + (amp ? 1 : 0);
    }
    PQconninfoFree(known);
    PGconn *pg = PQconnectdb(conn);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
        bench_warn("rtt: cannot connect to postgres: %s", pg ? PQerrorMessage(pg) : "no memory");
        PQfinish(pg);
        return -1;
    }
    int rc = 0;
    /* the write: one autocommitted upsert of a row, like reign's ACQUIRE */
    char table[64], sql[256];
    snprintf(table, sizeof table, "reign_bench_rtt_%ld", (long)getpid());
    snprintf(sql, sizeof sql,
             "INSERT INTO %s VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET v = %s.v + 1", table,
             table);
    if (write) {
        char ddl[128];
        snprintf(ddl, sizeof ddl, "CREATE TABLE %s (id int PRIMARY KEY, v bigint)", table);
        PGresult *r = PQexec(pg, ddl);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            bench_warn("rtt: %s failed: %s", ddl, PQerrorMessage(pg));
            rc = -1;
        }
        PQclear(r);
    }
    for (long i = -50; i < n && rc == 0; i++) {
        int64_t t0 = bench_now_ns();
        PGresult *r = PQexec(pg, write ? sql : "SELECT 1");
        int64_t t1 = bench_now_ns();
        if (PQresultStatus(r) != (write ? PGRES_COMMAND_OK : PGRES_TUPLES_OK)) {
            bench_warn("rtt: %s failed: %s", write ? sql : "SELECT 1", PQerrorMessage(pg));
            rc = -1;
        }
        PQclear(r);
        if (i >= 0)
            bench_samples_add(s, (double)(t1 - t0) / 1e6);
    }
    if (write) {
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", table);
        PQclear(PQexec(pg, sql));
    }
    PQfinish(pg);
    return rc;
}
#endif

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* n timed performs of a prepared easy handle (one connection, kept alive) */
static int curl_loop(CURL *h, long n, bench_samples *s, const char *what)
{
    for (long i = -50; i < n; i++) {
        int64_t t0 = bench_now_ns();
        CURLcode cc = curl_easy_perform(h);
        int64_t t1 = bench_now_ns();
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (cc != CURLE_OK || code >= 500 || code == 0) {
            bench_warn("rtt: %s failed: %s (HTTP %ld)", what, curl_easy_strerror(cc), code);
            return -1;
        }
        if (i >= 0)
            bench_samples_add(s, (double)(t1 - t0) / 1e6);
    }
    return 0;
}

static int probe_etcd(const char *uri, long n, bench_samples *s, bool write)
{
    uri_parts u;
    if (parse_uri(uri, &u) != 0) {
        bench_warn("rtt: cannot parse %s", uri);
        return -1;
    }
    bool tls = strcmp(u.scheme, "etcds") == 0;
    char url[600];
    snprintf(url, sizeof url, "%s://%s:%d/v3/kv/%s", tls ? "https" : "http", u.host,
             u.port ? u.port : 2379, write ? "put" : "range");
    CURL *h = curl_easy_init();
    if (h == NULL)
        return -1;
    /* key "bench/rtt" and value "x", base64; the write is a put (a raft
     * entry: etcd syncs its WAL before it answers) */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, write ? "{\"key\":\"YmVuY2gvcnR0\",\"value\":\"eA==\"}"
                                                  : "{\"key\":\"YmVuY2gvcnR0\"}");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (u.user[0] != '\0') {
        /* auth-enabled etcd needs a token first; the benchmark servers run
         * without auth, so say so instead of measuring a refusal */
        bench_warn("rtt: etcd with a user in the URI is not supported by the probe");
        curl_easy_cleanup(h);
        return -1;
    }
    int rc = curl_loop(h, n, s, write ? "etcd put" : "etcd range");
    if (write) {
        snprintf(url, sizeof url, "%s://%s:%d/v3/kv/deleterange", tls ? "https" : "http", u.host,
                 u.port ? u.port : 2379);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"key\":\"YmVuY2gvcnR0\"}");
        curl_easy_perform(h);
    }
    curl_easy_cleanup(h);
    return rc;
}

static int probe_s3(const char *uri, long n, bench_samples *s, bool write)
{
    uri_parts u;
    if (parse_uri(uri, &u) != 0) {
        bench_warn("rtt: cannot parse %s", uri);
        return -1;
    }
    char endpoint[512], region[64];
    query_param(&u, "endpoint", endpoint, sizeof endpoint);
    query_param(&u, "region", region, sizeof region);
    if (endpoint[0] == '\0') {
        bench_warn("rtt: %s has no endpoint= (the probe needs one)", uri);
        return -1;
    }
    if (region[0] == '\0')
        snprintf(region, sizeof region, "%s",
                 getenv("AWS_REGION") ? getenv("AWS_REGION") : "us-east-1");
    const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (key == NULL || secret == NULL) {
        bench_warn("rtt: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set");
        return -1;
    }
    char url[1200], sigv4[128], userpwd[512];
    /* path style: endpoint/bucket, or endpoint/bucket/object for the PUT */
    if (write)
        snprintf(url, sizeof url, "%s/%s/reign-bench-rtt-%ld", endpoint, u.host, (long)getpid());
    else
        snprintf(url, sizeof url, "%s/%s", endpoint, u.host);
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", region);
    snprintf(userpwd, sizeof userpwd, "%s:%s", key, secret);
    CURL *h = curl_easy_init();
    if (h == NULL)
        return -1;
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (write) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "x");
    } else {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    int rc = curl_loop(h, n, s, write ? "S3 PUT object" : "S3 HEAD bucket");
    if (write) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        curl_easy_perform(h);
    }
    curl_easy_cleanup(h);
    return rc;
}

typedef int (*probe_fn)(const char *uri, long n, bench_samples *s, bool write);

static int probe_file_rw(const char *uri, long n, bench_samples *s, bool write)
{
    (void)write; /* the lock pair is the file backend's whole round trip */
    return probe_file(uri, n * 5, s);
}

int bench_rtt(const bench_opts *o)
{
    const char *b = o->backend;
    long n = o->reps > 0 ? o->reps : (o->quick ? 300 : 2000);
    const char *what = NULL, *write_what = NULL;
    probe_fn probe = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        bench_die("curl_global_init failed");
    if (strcmp(b, "file") == 0) {
        what = "F_OFD_SETLK lock+unlock";
        probe = probe_file_rw;
    } else if (strcmp(b, "redis") == 0) {
        what = "redis PING (hiredis)";
        write_what = "redis SET";
#ifdef BENCH_HAVE_HIREDIS
        probe = probe_redis;
#else
        bench_warn("rtt: built without hiredis");
#endif
    } else if (strcmp(b, "postgres") == 0) {
        what = "postgres SELECT 1 (libpq)";
        write_what = "postgres INSERT ... ON CONFLICT DO UPDATE";
#ifdef BENCH_HAVE_LIBPQ
        probe = probe_postgres;
#else
        bench_warn("rtt: built without libpq");
#endif
    } else if (strcmp(b, "etcd") == 0) {
        what = "etcd range (JSON gateway, libcurl)";
        write_what = "etcd put";
        probe = probe_etcd;
    } else if (strcmp(b, "s3") == 0) {
        what = "S3 HEAD bucket (SigV4, libcurl)";
        write_what = "S3 PUT object";
        probe = probe_s3;
    } else {
        bench_warn("rtt: no round-trip probe for backend %s", b);
    }
    int rc = -1;
    if (probe != NULL) {
        bench_samples rd = {0}, wr = {0};
        rc = probe(o->uri, n, &rd, false);
        if (rc == 0 && write_what != NULL)
            rc = probe(o->uri, n, &wr, true);
        if (rc == 0) {
            char title[1024];
            snprintf(title, sizeof title, "round trip, %s: %s%s%s", b, what,
                     write_what ? "; write: " : "", write_what ? write_what : "");
            bench_table_header(title);
            bench_table_row("round trip", &rd, "ms");
            if (write_what != NULL)
                bench_table_row("write round trip", &wr, "ms");
            bench_result(b, "rtt_p50", bench_pct(&rd, 50), "ms", rd.n, what);
            bench_result(b, "rtt_p99", bench_pct(&rd, 99), "ms", rd.n, what);
            if (write_what != NULL) {
                bench_result(b, "rtt_write_p50", bench_pct(&wr, 50), "ms", wr.n, write_what);
                bench_result(b, "rtt_write_p99", bench_pct(&wr, 99), "ms", wr.n, write_what);
            }
        }
        bench_samples_free(&rd);
        bench_samples_free(&wr);
    }
    curl_global_cleanup();
    return rc == 0 ? 0 : 1;
}
