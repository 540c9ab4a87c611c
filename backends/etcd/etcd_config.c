/* The etcd:// backend's settings from its URI (see etcd_config.h). The raw
 * URI is split here, not by the core's libcurl parser, so that a list of
 * endpoints "h1:2379,h2:2379" works; unit-tested in test_etcd_config.c. */
#include "etcd_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reign/reign.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode len bytes; NULL on a bad escape, %00 or no memory. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        int hi = i + 1 < len ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[j] = '\0';
    return out;
}

/* The authority of a raw URI: [*start, *start + *len). -1 if no "://". */
static int authority_of(const char *raw, const char **start, size_t *len)
{
    const char *sep = raw != NULL ? strstr(raw, "://") : NULL;
    if (sep == NULL)
        return -1;
    const char *a = sep + 3;
    *start = a;
    *len = strcspn(a, "/?#");
    return 0;
}

void reign_etcd_settings_free(etcd_settings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_endpoints; i++)
        free(s->endpoints[i]);
    free(s->endpoints);
    if (s->password != NULL)
        memset(s->password, 0, strlen(s->password));
    free(s->user);
    free(s->password);
    free(s->prefix);
    free(s->cacert);
    free(s->cert);
    free(s->key);
    memset(s, 0, sizeof *s);
}

static bool host_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

/* One "host[:port]" or "[v6][:port]" → "scheme://host:port". */
static int parse_endpoint(const char *item, size_t len, bool tls, char **out, char *err,
                          size_t err_size)
{
    const char *host = item;
    size_t host_len;
    const char *rest;
    bool v6 = false;
    if (len == 0) {
        snprintf(err, err_size, "empty endpoint in the host list");
        return REIGN_EURI;
    }
    if (item[0] == '[') {
        const char *close = memchr(item, ']', len);
        if (close == NULL) {
            snprintf(err, err_size, "endpoint '%.*s' has no closing ']'", (int)len, item);
            return REIGN_EURI;
        }
        host = item + 1;
        host_len = (size_t)(close - host);
        rest = close + 1;
        v6 = true;
        for (size_t i = 0; i < host_len; i++) {
            if (!isxdigit((unsigned char)host[i]) && host[i] != ':' && host[i] != '.') {
                snprintf(err, err_size, "endpoint '%.*s' is not an IPv6 address", (int)len, item);
                return REIGN_EURI;
            }
        }
    } else {
        const char *colon = memchr(item, ':', len);
        host_len = colon != NULL ? (size_t)(colon - item) : len;
        rest = item + host_len;
        if (colon != NULL && memchr(colon + 1, ':', len - host_len - 1) != NULL) {
            snprintf(err, err_size, "endpoint '%.*s' has two ':' (write IPv6 addresses in "
                     "brackets: [::1]:2379)", (int)len, item);
            return REIGN_EURI;
        }
        for (size_t i = 0; i < host_len; i++) {
            if (!host_char_ok(host[i])) {
                snprintf(err, err_size, "endpoint '%.*s' has a bad character in its host",
                         (int)len, item);
                return REIGN_EURI;
            }
        }
    }
    if (host_len == 0) {
        snprintf(err, err_size, "endpoint '%.*s' has no host", (int)len, item);
        return REIGN_EURI;
    }
    size_t rest_len = len - (size_t)(rest - item);
    long port = ETCD_DEFAULT_PORT;
    if (rest_len > 0) {
        if (rest[0] != ':' || rest_len < 2 || rest_len > 6) {
            snprintf(err, err_size, "endpoint '%.*s' has a bad port", (int)len, item);
            return REIGN_EURI;
        }
        port = 0;
        for (size_t i = 1; i < rest_len; i++) {
            if (!isdigit((unsigned char)rest[i])) {
                snprintf(err, err_size, "endpoint '%.*s' has a bad port", (int)len, item);
                return REIGN_EURI;
            }
            port = port * 10 + (rest[i] - '0');
        }
        if (port < 1 || port > 65535) {
            snprintf(err, err_size, "endpoint '%.*s': port %ld is not 1..65535", (int)len, item,
                     port);
            return REIGN_EURI;
        }
    }
    size_t cap = host_len + 32;
    char *url = malloc(cap);
    if (url == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    snprintf(url, cap, "%s://%s%.*s%s:%ld", tls ? "https" : "http", v6 ? "[" : "", (int)host_len,
             host, v6 ? "]" : "", port);
    *out = url;
    return REIGN_OK;
}

int reign_etcd_parse_endpoints(const char *raw_uri, bool tls, etcd_settings *out, char *err,
                               size_t err_size)
{
    const char *a;
    size_t alen;
    if (authority_of(raw_uri, &a, &alen) != 0) {
        snprintf(err, err_size, "no \"://\" in the URI");
        return REIGN_EURI;
    }
    /* userinfo ends at the last '@' (a password may hold an encoded one). */
    for (size_t i = alen; i > 0; i--) {
        if (a[i - 1] == '@') {
            a += i;
            alen -= i;
            break;
        }
    }
    char **eps = calloc(ETCD_MAX_ENDPOINTS, sizeof *eps);
    size_t n = 0;
    int rc = REIGN_OK;
    if (eps == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    if (alen == 0) {
        rc = parse_endpoint("127.0.0.1", 9, tls, &eps[0], err, err_size);
        n = rc == REIGN_OK ? 1 : 0;
    }
    for (size_t pos = 0; rc == REIGN_OK && alen > 0 && pos <= alen;) {
        const char *comma = memchr(a + pos, ',', alen - pos);
        size_t item_len = comma != NULL ? (size_t)(comma - (a + pos)) : alen - pos;
        if (n == ETCD_MAX_ENDPOINTS) {
            snprintf(err, err_size, "more than %d endpoints", ETCD_MAX_ENDPOINTS);
            rc = REIGN_EURI;
            break;
        }
        rc = parse_endpoint(a + pos, item_len, tls, &eps[n], err, err_size);
        if (rc != REIGN_OK)
            break;
        n++;
        if (comma == NULL)
            break;
        pos += item_len + 1;
        if (pos == alen) { /* trailing comma */
            snprintf(err, err_size, "empty endpoint in the host list");
            rc = REIGN_EURI;
        }
    }
    if (rc != REIGN_OK) {
        for (size_t i = 0; i < n; i++)
            free(eps[i]);
        free(eps);
        return rc;
    }
    out->endpoints = eps;
    out->n_endpoints = n;
    return REIGN_OK;
}

int reign_etcd_parse_userinfo(const char *raw_uri, char **user, char **password, char *err,
                              size_t err_size)
{
    const char *a;
    size_t alen;
    *user = *password = NULL;
    if (authority_of(raw_uri, &a, &alen) != 0)
        return REIGN_OK;
    size_t at = 0;
    bool found = false;
    for (size_t i = alen; i > 0; i--) {
        if (a[i - 1] == '@') {
            at = i - 1;
            found = true;
            break;
        }
    }
    if (!found)
        return REIGN_OK;
    const char *colon = memchr(a, ':', at);
    size_t ulen = colon != NULL ? (size_t)(colon - a) : at;
    char *u = pct_decode(a, ulen);
    char *p = colon != NULL ? pct_decode(colon + 1, at - ulen - 1) : NULL;
    if (u == NULL || (colon != NULL && p == NULL)) {
        free(u);
        free(p);
        snprintf(err, err_size, "bad percent-escape in the user or password");
        return REIGN_EURI;
    }
    *user = u;
    *password = p;
    return REIGN_OK;
}

char *reign_etcd_parse_path(const char *raw_uri)
{
    const char *a;
    size_t alen;
    if (authority_of(raw_uri, &a, &alen) != 0)
        return strdup("");
    const char *p = a + alen;
    size_t plen = *p == '/' ? strcspn(p, "?#") : 0;
    return pct_decode(p, plen);
}

/* A TLS file from a parameter or an ETCDCTL_* variable; must be readable. */
static int tls_file(const reign_backend_config *cfg, const char *param, const char *env,
                    bool tls, char **out, char *err, size_t err_size)
{
    const char *v = reign_backend_param(cfg, param);
    const char *from = param;
    if (v != NULL && !tls) {
        snprintf(err, err_size, "uri %s: %s= needs etcds:// (TLS)", cfg->uri_redacted, param);
        return REIGN_EURI;
    }
    if (v == NULL && tls) {
        v = getenv(env);
        from = env;
        if (v != NULL && v[0] == '\0')
            v = NULL;
    }
    if (v == NULL)
        return REIGN_OK;
    if (access(v, R_OK) != 0) {
        snprintf(err, err_size, "uri %s: cannot read the %s file '%s' (from %s): %s",
                 cfg->uri_redacted, param, v, from, strerror(errno));
        return REIGN_EINVAL;
    }
    *out = strdup(v);
    if (*out == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    return REIGN_OK;
}

static int parse_prefix(const reign_backend_config *cfg, etcd_settings *s, char *err,
                        size_t err_size)
{
    char *path = reign_etcd_parse_path(cfg->uri);
    if (path == NULL) {
        snprintf(err, err_size, "uri %s: bad percent-escape in the path", cfg->uri_redacted);
        return REIGN_EURI;
    }
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        path[--len] = '\0';
    const char *param = reign_backend_param(cfg, "prefix");
    if (param != NULL) {
        size_t plen = strlen(param);
        while (plen > 0 && param[plen - 1] == '/')
            plen--;
        if (plen == 0) {
            free(path);
            snprintf(err, err_size, "uri %s: prefix= is empty", cfg->uri_redacted);
            return REIGN_EURI;
        }
        if (len > 0 && (plen != len || memcmp(param, path, len) != 0)) {
            free(path);
            snprintf(err, err_size, "uri %s: the path and prefix= name two different prefixes",
                     cfg->uri_redacted);
            return REIGN_EURI;
        }
        free(path);
        s->prefix = strndup(param, plen);
    } else if (len > 0) {
        s->prefix = path;
    } else {
        free(path);
        s->prefix = strdup(ETCD_DEFAULT_PREFIX);
    }
    if (s->prefix == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    return REIGN_OK;
}

int reign_etcd_settings_parse(const reign_backend_config *cfg, etcd_settings *out, char *err,
                              size_t err_size)
{
    etcd_settings s = {0};
    char sub[256];
    int rc;
    s.tls = cfg->scheme != NULL && strcmp(cfg->scheme, "etcds") == 0;
    s.max_txn_ops = ETCD_DEFAULT_MAX_TXN_OPS;

    if ((rc = reign_etcd_parse_endpoints(cfg->uri, s.tls, &s, sub, sizeof sub)) != REIGN_OK) {
        snprintf(err, err_size, "uri %s: %s", cfg->uri_redacted, sub);
        goto out;
    }
    if (cfg->user != NULL) {
        s.user = strdup(cfg->user);
        s.password = cfg->password != NULL ? strdup(cfg->password) : NULL;
        if (s.user == NULL || (cfg->password != NULL && s.password == NULL)) {
            snprintf(err, err_size, "out of memory");
            rc = REIGN_ENOMEM;
            goto out;
        }
    } else if ((rc = reign_etcd_parse_userinfo(cfg->uri, &s.user, &s.password, sub, sizeof sub)) !=
               REIGN_OK) {
        snprintf(err, err_size, "uri %s: %s", cfg->uri_redacted, sub);
        goto out;
    }
    if (s.user != NULL && s.user[0] == '\0') {
        if (s.password != NULL && s.password[0] != '\0') {
            snprintf(err, err_size, "uri %s: a password needs a user name (etcd://user:pass@…)",
                     cfg->uri_redacted);
            rc = REIGN_EURI;
            goto out;
        }
        free(s.user);
        free(s.password);
        s.user = s.password = NULL;
    }
    if ((rc = parse_prefix(cfg, &s, err, err_size)) != REIGN_OK)
        goto out;
    const char *ops = reign_backend_param(cfg, "max_txn_ops");
    if (ops != NULL) {
        char *end = NULL;
        errno = 0;
        long v = strtol(ops, &end, 10);
        if (errno != 0 || end == ops || *end != '\0' || v < 1 || v > 100000) {
            snprintf(err, err_size, "uri %s: max_txn_ops=%s is not a number 1..100000",
                     cfg->uri_redacted, ops);
            rc = REIGN_EURI;
            goto out;
        }
        s.max_txn_ops = (unsigned)v;
    }
    if ((rc = tls_file(cfg, "cacert", "ETCDCTL_CACERT", s.tls, &s.cacert, err, err_size)) !=
            REIGN_OK ||
        (rc = tls_file(cfg, "cert", "ETCDCTL_CERT", s.tls, &s.cert, err, err_size)) != REIGN_OK ||
        (rc = tls_file(cfg, "key", "ETCDCTL_KEY", s.tls, &s.key, err, err_size)) != REIGN_OK)
        goto out;
    if ((s.cert == NULL) != (s.key == NULL)) {
        snprintf(err, err_size, "uri %s: a client certificate needs both cert= and key= "
                 "(or ETCDCTL_CERT and ETCDCTL_KEY)", cfg->uri_redacted);
        rc = REIGN_EINVAL;
        goto out;
    }
    *out = s;
    memset(&s, 0, sizeof s);
out:
    reign_etcd_settings_free(&s);
    return rc;
}
