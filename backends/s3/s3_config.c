/* s3:// URI + AWS_* environment → endpoint, addressing, region, prefix and
 * credentials. Every refusal names the part that was wrong and how to write
 * it; no message ever holds a secret. */
#include "s3_config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "s3_peer.h"
#include "s3_sigv4.h"

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static int fail(char *err, size_t err_size, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t err_size, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return status;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (s == NULL) {
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Bucket names as S3 and RGW accept them (RGW allows more than AWS). */
static bool bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n == 0 || n > 255) {
        return false;
    }
    for (const char *c = b; *c != '\0'; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '.' || *c == '-' || *c == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Usable as the first label(s) of a host name (virtual-host addressing). */
static bool bucket_dns_ok(const char *b, bool https)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63 || b[0] == '-' || b[n - 1] == '-' || b[0] == '.' || b[n - 1] == '.') {
        return false;
    }
    for (const char *c = b; *c != '\0'; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                  (*c == '.' && !https); /* dots break the wildcard certificate */
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool region_ok(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 64) {
        return false;
    }
    for (const char *c = r; *c != '\0'; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '-' || *c == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* "/a/b/" → "a/b/"; refuses empty, "." and ".." segments and control bytes,
 * which S3 stores but URLs and signing would mangle. */
static int prefix_of(const char *path, const char *uri, char **out, char *err, size_t err_size)
{
    const char *p = path != NULL ? path : "";
    while (*p == '/') {
        p++;
    }
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/') {
        n--;
    }
    if (n > REIGN_S3_PREFIX_MAX) {
        return fail(err, err_size, REIGN_EURI, "s3: %s: the prefix is longer than %d bytes", uri,
                    REIGN_S3_PREFIX_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f) {
            return fail(err, err_size, REIGN_EURI, "s3: %s: the prefix holds a control character",
                        uri);
        }
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j] != '/') {
            j++;
        }
        size_t seg = j - i;
        if (seg == 0 || (seg == 1 && p[i] == '.') || (seg == 2 && p[i] == '.' && p[i + 1] == '.')) {
            return fail(err, err_size, REIGN_EURI,
                        "s3: %s: the prefix has an empty, '.' or '..' segment; write "
                        "s3://BUCKET/dir/subdir",
                        uri);
        }
        i = j + 1;
    }
    char *s = malloc(n + 2);
    if (s == NULL) {
        return fail(err, err_size, REIGN_ENOMEM, "s3: out of memory");
    }
    memcpy(s, p, n);
    if (n > 0) {
        s[n++] = '/';
    }
    s[n] = '\0';
    *out = s;
    return REIGN_OK;
}

/* One part of a parsed URL, malloc'd (NULL if absent). */
static int url_part(CURLU *u, CURLUPart part, char **out)
{
    char *v = NULL;
    *out = NULL;
    CURLUcode rc = curl_url_get(u, part, &v, 0);
    if (rc == CURLUE_OUT_OF_MEMORY) {
        return REIGN_ENOMEM;
    }
    if (rc != CURLUE_OK || v == NULL) {
        return REIGN_OK;
    }
    *out = strdup(v);
    curl_free(v);
    return *out != NULL ? REIGN_OK : REIGN_ENOMEM;
}

typedef struct s3_endpoint {
    bool https;
    char *host; /* "[::1]" for IPv6 */
    char *port; /* NULL if not given */
} s3_endpoint;

static int parse_endpoint(const char *text, const char *source, const char *uri, s3_endpoint *ep,
                          char *err, size_t err_size)
{
    int rc = REIGN_OK;
    char *scheme = NULL, *user = NULL, *pass = NULL, *path = NULL, *query = NULL;
    CURLU *u = curl_url();
    if (u == NULL) {
        return fail(err, err_size, REIGN_ENOMEM, "s3: out of memory");
    }
    if (curl_url_set(u, CURLUPART_URL, text, 0) != CURLUE_OK) {
        rc = fail(err, err_size, REIGN_EURI,
                  "s3: %s: %s is not a URL; write e.g. http://127.0.0.1:7480", uri, source);
        goto out;
    }
    if ((rc = url_part(u, CURLUPART_SCHEME, &scheme)) != REIGN_OK ||
        (rc = url_part(u, CURLUPART_USER, &user)) != REIGN_OK ||
        (rc = url_part(u, CURLUPART_PASSWORD, &pass)) != REIGN_OK ||
        (rc = url_part(u, CURLUPART_HOST, &ep->host)) != REIGN_OK ||
        (rc = url_part(u, CURLUPART_PORT, &ep->port)) != REIGN_OK ||
        (rc = url_part(u, CURLUPART_PATH, &path)) != REIGN_OK ||
        (rc = url_part(u, CURLUPART_QUERY, &query)) != REIGN_OK) {
        rc = fail(err, err_size, REIGN_ENOMEM, "s3: out of memory");
        goto out;
    }
    if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        rc = fail(err, err_size, REIGN_EURI, "s3: %s: %s must be an http:// or https:// URL", uri,
                  source);
        goto out;
    }
    if (user != NULL || pass != NULL) {
        rc = fail(err, err_size, REIGN_EURI,
                  "s3: %s: %s must not hold credentials; set AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY",
                  uri, source);
        goto out;
    }
    if (empty(ep->host)) {
        rc = fail(err, err_size, REIGN_EURI, "s3: %s: %s has no host", uri, source);
        goto out;
    }
    if ((path != NULL && strcmp(path, "/") != 0 && path[0] != '\0') || query != NULL) {
        rc = fail(err, err_size, REIGN_EURI,
                  "s3: %s: %s must be scheme://host[:port] with no path or query", uri, source);
        goto out;
    }
    ep->https = strcmp(scheme, "https") == 0;
out:
    curl_url_cleanup(u);
    free(scheme);
    free(user);
    if (pass != NULL) {
        memset(pass, 0, strlen(pass));
        free(pass);
    }
    free(path);
    free(query);
    return rc;
}

static char *encoded(const char *s, bool keep_slash)
{
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1);
    if (out != NULL && reign_s3_uri_encode(s, n, keep_slash, out, 3 * n + 1) == (size_t)-1) {
        free(out);
        out = NULL;
    }
    return out;
}

/* "250", "250ms", "10s", "2m" → ms >= 0; false on anything else. */
static bool parse_ms(const char *text, int64_t *out)
{
    int64_t v = 0;
    const char *p = text;
    if (*p < '0' || *p > '9') {
        return false;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > INT64_C(1000000000000)) {
            return false;
        }
        v = v * 10 + (*p - '0');
    }
    int64_t unit = 1;
    if (strcmp(p, "s") == 0) {
        unit = 1000;
    } else if (strcmp(p, "m") == 0) {
        unit = 60000;
    } else if (strcmp(p, "") != 0 && strcmp(p, "ms") != 0) {
        return false;
    }
    *out = v * unit;
    return true;
}

static char *dup_env(reign_s3_env_fn env, void *ctx, const char *name)
{
    const char *v = env(name, ctx);
    return empty(v) ? NULL : strdup(v);
}

static bool flag_of(const char *v, bool *out)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0) {
        *out = true;
    } else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0) {
        *out = false;
    } else {
        return false;
    }
    return true;
}

/* "127.0.0.1:0", "[::1]:8080" → numeric host and port. */
static bool listen_of(const char *v, char **host, int *port)
{
    const char *colon = strrchr(v, ':');
    const char *h = v, *h_end = colon;
    if (colon == NULL || colon[1] == '\0') {
        return false;
    }
    if (v[0] == '[') {
        if (colon == v || colon[-1] != ']') {
            return false;
        }
        h = v + 1;
        h_end = colon - 1;
    }
    long p = 0;
    for (const char *c = colon + 1; *c != '\0'; c++) {
        if (*c < '0' || *c > '9' || p > 65535) {
            return false;
        }
        p = p * 10 + (*c - '0');
    }
    if (p > 65535 || h_end <= h) {
        return false;
    }
    *host = strndup(h, (size_t)(h_end - h));
    *port = (int)p;
    return *host != NULL;
}

static bool any_address(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
           strcmp(host, "0:0:0:0:0:0:0:0") == 0;
}

/* peer=, peer_listen=, peer_url=, peer_ca=, peer_check= (docs/backends/s3.md,
 * "Peer mode"). */
static int peer_config(const reign_backend_config *cfg, reign_s3_config *c, char *err,
                       size_t err_size)
{
    const char *uri = cfg->uri_redacted;
    const char *peer = reign_backend_param(cfg, "peer");
    const char *listen = reign_backend_param(cfg, "peer_listen");
    const char *url = reign_backend_param(cfg, "peer_url");
    const char *ca = reign_backend_param(cfg, "peer_ca");
    const char *check = reign_backend_param(cfg, "peer_check");
    char why[200];

    c->peer_check_ms = REIGN_S3_PEER_CHECK_MS;
    if (listen != NULL) {
        if (!listen_of(listen, &c->peer_listen_host, &c->peer_listen_port)) {
            return fail(err, err_size, REIGN_EURI,
                        "s3: %s: peer_listen=%s is not HOST:PORT with a numeric address "
                        "(e.g. 127.0.0.1:0, [::1]:8080; port 0 picks a free one)",
                        uri, listen);
        }
        if (url == NULL && any_address(c->peer_listen_host)) {
            return fail(err, err_size, REIGN_EURI,
                        "s3: %s: peer_listen=%s listens on every address: add "
                        "peer_url=http://THIS-HOST:%d" REIGN_S3_PEER_PATH
                        " so that others know where to ask",
                        uri, listen, c->peer_listen_port);
        }
    }
    if (url != NULL) {
        if (!reign_s3_peer_url_ok(url, why, sizeof why)) {
            return fail(err, err_size, REIGN_EURI, "s3: %s: peer_url=%s %s", uri, url, why);
        }
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/') {
            n--;
        }
        c->peer_url = strndup(url, n);
        if (c->peer_url == NULL) {
            return fail(err, err_size, REIGN_ENOMEM, "s3: out of memory");
        }
    }
    /* the same URI on every instance: serving implies asking */
    c->peer_ask = listen != NULL || url != NULL;
    if (peer != NULL && !flag_of(peer, &c->peer_ask)) {
        return fail(err, err_size, REIGN_EURI, "s3: %s: peer=%s is not 0 or 1", uri, peer);
    }
    if (ca != NULL) {
        if (!c->peer_ask) {
            return fail(err, err_size, REIGN_EURI, "s3: %s: peer_ca= is for peer mode: add peer=1",
                        uri);
        }
        FILE *f = ca[0] != '\0' ? fopen(ca, "r") : NULL;
        if (f == NULL) {
            return fail(err, err_size, REIGN_EURI, "s3: %s: peer_ca=%s cannot be read", uri, ca);
        }
        fclose(f);
        c->peer_ca = strdup(ca);
        if (c->peer_ca == NULL) {
            return fail(err, err_size, REIGN_ENOMEM, "s3: out of memory");
        }
    }
    if (check != NULL) {
        if (!c->peer_ask) {
            return fail(err, err_size, REIGN_EURI,
                        "s3: %s: peer_check= is for peer mode: add peer=1", uri);
        }
        if (!parse_ms(check, &c->peer_check_ms) || c->peer_check_ms < 100 ||
            c->peer_check_ms > 3600000) {
            return fail(err, err_size, REIGN_EURI,
                        "s3: %s: peer_check=%s is not a duration from 100ms to 1h (e.g. 30s)", uri,
                        check);
        }
    }
    return REIGN_OK;
}

int reign_s3_config_load(const reign_backend_config *cfg, reign_s3_env_fn env, void *env_ctx,
                         reign_s3_config *out, char *err, size_t err_size)
{
    reign_s3_config c;
    s3_endpoint ep = {0};
    char *ebucket = NULL, *eprefix = NULL;
    int rc = REIGN_OK;
    const char *uri = cfg->uri_redacted;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);

    if (cfg->user != NULL || cfg->password != NULL) {
        rc = fail(err, err_size, REIGN_EURI,
                  "s3: %s: credentials do not go in the URI; set AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY",
                  uri);
        goto out;
    }
    if (empty(cfg->host)) {
        rc = fail(err, err_size, REIGN_EURI, "s3: %s: no bucket; write s3://BUCKET[/PREFIX]", uri);
        goto out;
    }
    if (cfg->port != 0) {
        rc = fail(err, err_size, REIGN_EURI,
                  "s3: %s: s3://BUCKET takes no port; give the server as ?endpoint=http://host:port",
                  uri);
        goto out;
    }
    if (!bucket_ok(cfg->host)) {
        rc = fail(err, err_size, REIGN_EURI,
                  "s3: %s: '%s' is not a bucket name (letters, digits, '.', '-', '_')", uri,
                  cfg->host);
        goto out;
    }
    c.bucket = strdup(cfg->host);
    if (c.bucket == NULL) {
        goto oom;
    }
    if ((rc = prefix_of(cfg->path, uri, &c.prefix, err, err_size)) != REIGN_OK) {
        goto out;
    }

    const char *region = reign_backend_param(cfg, "region");
    const char *region_src = "region=";
    if (empty(region)) {
        region = env("AWS_REGION", env_ctx);
        region_src = "AWS_REGION";
    }
    if (empty(region)) {
        region = env("AWS_DEFAULT_REGION", env_ctx);
        region_src = "AWS_DEFAULT_REGION";
    }
    if (empty(region)) {
        region = "us-east-1";
    }
    if (!region_ok(region)) {
        rc = fail(err, err_size, REIGN_EURI, "s3: %s: %s is not a region name such as us-east-1",
                  uri, region_src);
        goto out;
    }
    c.region = strdup(region);
    if (c.region == NULL) {
        goto oom;
    }

    const char *endpoint = reign_backend_param(cfg, "endpoint");
    const char *ep_src = "endpoint=";
    if (empty(endpoint)) {
        endpoint = env("AWS_ENDPOINT_URL_S3", env_ctx);
        ep_src = "AWS_ENDPOINT_URL_S3";
    }
    if (empty(endpoint)) {
        endpoint = env("AWS_ENDPOINT_URL", env_ctx);
        ep_src = "AWS_ENDPOINT_URL";
    }
    bool custom = !empty(endpoint);
    if (custom) {
        c.endpoint = strdup(endpoint);
    } else {
        /* AWS itself, regional endpoint */
        c.endpoint = xprintf("https://s3.%s.amazonaws.com", c.region);
        ep_src = "the AWS endpoint";
    }
    if (c.endpoint == NULL) {
        goto oom;
    }
    if ((rc = parse_endpoint(c.endpoint, ep_src, uri, &ep, err, err_size)) != REIGN_OK) {
        goto out;
    }
    c.https = ep.https;

    /* Default: path-style for a custom endpoint (S3-compatible servers
     * seldom have wildcard DNS), virtual-host for AWS. */
    c.path_style = custom;
    const char *ps = reign_backend_param(cfg, "path_style");
    if (ps != NULL) {
        if (strcmp(ps, "1") == 0 || strcmp(ps, "true") == 0 || strcmp(ps, "yes") == 0) {
            c.path_style = true;
        } else if (strcmp(ps, "0") == 0 || strcmp(ps, "false") == 0 || strcmp(ps, "no") == 0) {
            c.path_style = false;
        } else {
            rc = fail(err, err_size, REIGN_EURI, "s3: %s: path_style=%s is not 0 or 1", uri, ps);
            goto out;
        }
    }
    if (!c.path_style && !bucket_dns_ok(c.bucket, c.https)) {
        rc = fail(err, err_size, REIGN_EURI,
                  "s3: %s: bucket '%s' cannot be part of a host name (virtual-host addressing "
                  "takes 3 to 63 of a-z 0-9 -%s); add path_style=1",
                  uri, c.bucket, c.https ? ", no '.' over https" : " .");
        goto out;
    }
    const char *poll_text = reign_backend_param(cfg, "poll");
    if (poll_text != NULL) {
        if (strcmp(poll_text, "expiry") == 0) {
            c.poll_ms = REIGN_S3_POLL_EXPIRY;
        } else if (!parse_ms(poll_text, &c.poll_ms)) {
            rc = fail(err, err_size, REIGN_EURI,
                      "s3: %s: poll=%s is not a duration (e.g. 5s, 500ms) nor 'expiry'", uri,
                      poll_text);
            goto out;
        }
    }
    if ((rc = peer_config(cfg, &c, err, err_size)) != REIGN_OK) {
        goto out;
    }
    const char *colon = ep.port != NULL ? ":" : "";
    const char *port = ep.port != NULL ? ep.port : "";
    if (c.path_style) {
        c.host_header = xprintf("%s%s%s", ep.host, colon, port);
    } else {
        c.host_header = xprintf("%s.%s%s%s", c.bucket, ep.host, colon, port);
    }
    ebucket = encoded(c.bucket, false);
    eprefix = encoded(c.prefix, true);
    if (c.host_header == NULL || ebucket == NULL || eprefix == NULL) {
        goto oom;
    }
    c.url_base = xprintf("%s://%s", c.https ? "https" : "http", c.host_header);
    c.path_base = c.path_style ? xprintf("/%s/%s", ebucket, eprefix) : xprintf("/%s", eprefix);
    if (c.url_base == NULL || c.path_base == NULL) {
        goto oom;
    }

    c.access_key = dup_env(env, env_ctx, "AWS_ACCESS_KEY_ID");
    c.secret_key = dup_env(env, env_ctx, "AWS_SECRET_ACCESS_KEY");
    if (c.access_key == NULL || c.secret_key == NULL) {
        rc = fail(err, err_size, REIGN_EAUTH,
                  "s3: %s: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                  "(and AWS_SESSION_TOKEN for temporary ones)",
                  uri);
        goto out;
    }
    c.session_token = dup_env(env, env_ctx, "AWS_SESSION_TOKEN");
    c.ca_bundle = dup_env(env, env_ctx, "AWS_CA_BUNDLE");
    *out = c;
    memset(&c, 0, sizeof c);
    goto out;
oom:
    rc = fail(err, err_size, REIGN_ENOMEM, "s3: out of memory");
out:
    reign_s3_config_free(&c);
    free(ep.host);
    free(ep.port);
    free(ebucket);
    free(eprefix);
    return rc;
}

static void free_secret(char **s)
{
    if (*s != NULL) {
        memset(*s, 0, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void reign_s3_config_free(reign_s3_config *c)
{
    if (c == NULL) {
        return;
    }
    free(c->bucket);
    free(c->prefix);
    free(c->region);
    free(c->endpoint);
    free(c->host_header);
    free(c->url_base);
    free(c->path_base);
    free(c->access_key);
    free_secret(&c->secret_key);
    free_secret(&c->session_token);
    free(c->ca_bundle);
    free(c->peer_listen_host);
    free(c->peer_url);
    free(c->peer_ca);
    memset(c, 0, sizeof *c);
}
