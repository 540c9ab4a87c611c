/* URI parsing for factories: libcurl's curl_url does the RFC 3986 work; here
 * we only split the query into parameters and make a redacted copy. */
#include "uri.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "error.h"

/* Stands in for an empty authority ("unix:///path"): curl would otherwise
 * take the first path segment for the host. */
#define NO_HOST_PLACEHOLDER "reign-no-host.invalid"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *reign_uri_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[j++] = s[i] == '+' ? ' ' : s[i];
            continue;
        }
        int hi = i + 1 < len ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) { /* bad escape or NUL */
            free(out);
            return NULL;
        }
        out[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[j] = '\0';
    return out;
}

int reign_parse_duration_ms(const char *text, int64_t *out)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return REIGN_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || v <= 0)
        return REIGN_EINVAL;
    long long unit = 1;
    if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "m") == 0)
        unit = 60000;
    else
        return REIGN_EINVAL;
    if (v > INT64_MAX / unit / 1000000) /* keep ns arithmetic in range */
        return REIGN_EINVAL;
    *out = v * unit;
    return REIGN_OK;
}

static int split_query(reign_uri *u, const char *query)
{
    size_t cap = 0;
    const char *p = query;
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq != NULL ? (size_t)(eq - p) : len;
            char *name = reign_uri_decode(p, nlen);
            char *value = eq != NULL ? reign_uri_decode(eq + 1, len - nlen - 1) : strdup("");
            if (name == NULL || value == NULL || name[0] == '\0') {
                free(name);
                free(value);
                return reign_error_set(REIGN_EURI, "uri %s: bad query parameter '%.*s'",
                                       u->redacted, (int)len, p);
            }
            for (size_t i = 0; i < u->n_params; i++) {
                if (strcmp(u->params[i].name, name) == 0) {
                    int rc = reign_error_set(REIGN_EURI, "uri %s: query parameter '%s' given twice",
                                             u->redacted, name);
                    free(name);
                    free(value);
                    return rc;
                }
            }
            if (u->n_params == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                reign_uri_param *np = realloc(u->params, ncap * sizeof *np);
                if (np == NULL) {
                    free(name);
                    free(value);
                    return reign_error_set(REIGN_ENOMEM, "uri: out of memory");
                }
                u->params = np;
                cap = ncap;
            }
            u->params[u->n_params++] = (reign_uri_param){name, value, 0};
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return REIGN_OK;
}

/* Query parameters that carry secrets (libpq's password=, a token=...):
 * their values become *** in the redacted form too. */
static bool secret_param(const char *name)
{
    static const char *const words[] = {"password", "secret", "token", "passwd"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strcasestr(name, words[i]) != NULL)
            return true;
    return false;
}

static void redact_secret_params(reign_uri *u)
{
    const char *q = strchr(u->redacted, '?');
    if (q == NULL)
        return;
    size_t cap = 2 * strlen(u->redacted) + 4; /* each "n=" may grow by 3: at most 1.5x */
    char *out = malloc(cap);
    if (out == NULL)
        return; /* keep the unredacted query rather than fail the open */
    size_t o = (size_t)(q + 1 - u->redacted);
    memcpy(out, u->redacted, o);
    const char *in = q + 1;
    while (*in != '\0' && *in != '#') {
        size_t len = strcspn(in, "&#");
        const char *eq = memchr(in, '=', len);
        size_t nlen = eq != NULL ? (size_t)(eq - in) : len;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(nlen < 127 ? nlen : 127), in);
        if (eq != NULL && secret_param(name)) {
            memcpy(out + o, in, nlen + 1);
            memcpy(out + o + nlen + 1, "***", 3);
            o += nlen + 4;
        } else {
            memcpy(out + o, in, len);
            o += len;
        }
        in += len;
        if (*in == '&')
            out[o++] = *in++;
    }
    strcpy(out + o, in);
    free(u->redacted);
    u->redacted = out;
}

static int get_part(CURLU *h, CURLUPart part, unsigned flags, char **out)
{
    char *v = NULL;
    CURLUcode rc = curl_url_get(h, part, &v, flags);
    if (rc != CURLUE_OK) {
        *out = NULL;
        return rc == CURLUE_OUT_OF_MEMORY ? REIGN_ENOMEM : REIGN_OK;
    }
    *out = strdup(v);
    curl_free(v);
    return *out == NULL ? REIGN_ENOMEM : REIGN_OK;
}

int reign_uri_parse(const char *text, reign_uri *out)
{
    reign_uri u = {0};
    CURLU *h = NULL;
    char *fixed = NULL, *query = NULL, *port = NULL;
    int rc = REIGN_OK;

    if (text == NULL || text[0] == '\0')
        return reign_error_set(REIGN_EURI, "uri: empty URI");
    const char *sep = strstr(text, "://");
    const char *shown = strchr(text, '@') != NULL ? "(redacted)" : text;
    if (text[0] == '/' && strchr(text, '@') == NULL)
        return reign_error_set(REIGN_EURI,
                               "uri: '%.200s' is a path, not a URI: for a lock directory write "
                               "file://%.200s",
                               shown, shown);
    const char *colon1 = strchr(text, ':');
    if ((sep == NULL || colon1 < sep) && colon1 != NULL && colon1 > text && colon1[1] == '/' &&
        strncmp(text, "file:", 5) == 0 && strchr(text, '@') == NULL)
        return reign_error_set(REIGN_EURI,
                               "uri: '%.200s' needs \"://\" after \"file:\": the lock directory "
                               "%s is file://%s",
                               shown, colon1 + 1 + strspn(colon1 + 1, "/") - 1,
                               colon1 + 1 + strspn(colon1 + 1, "/") - 1);
    if (sep == NULL || sep == text)
        return reign_error_set(REIGN_EURI,
                               "uri: '%.200s' has no scheme:// (expected e.g. file:///dir, "
                               "redis://host)",
                               shown);
    for (const char *c = text; c < sep; c++)
        if (!isalnum((unsigned char)*c) && *c != '+' && *c != '-' && *c != '.')
            return reign_error_set(REIGN_EURI, "uri: bad character in the scheme (the part "
                                               "before \"://\"; the URI is not shown: it may "
                                               "hold a password)");

    u.raw = strdup(text);
    u.scheme = strndup(text, (size_t)(sep - text));
    if (u.raw == NULL || u.scheme == NULL) {
        rc = reign_error_set(REIGN_ENOMEM, "uri: out of memory");
        goto out;
    }
    for (char *c = u.scheme; *c; c++)
        *c = (char)tolower((unsigned char)*c);

    /* The authority: between "://" and the first '/', '?' or '#'. */
    const char *auth = sep + 3;
    const char *auth_end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *c = auth; c < auth_end; c++)
        if (*c == '@')
            at = c;
    const char *hosts = at != NULL ? at + 1 : auth;

    /* The redacted form is what logs, errors and `reign status` show: the
     * password between the user's ':' and '@' becomes ***. */
    const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (at == NULL && auth == auth_end) {
        /* "redis:///user:pw@host": a mistyped URI may carry user info in
         * its path; hide that too, since messages quote the URI. */
        const char *start = auth;
        while (*start == '/')
            start++;
        const char *end = start + strcspn(start, "/?#");
        const char *pat = memchr(start, '@', (size_t)(end - start));
        colon = pat != NULL ? memchr(start, ':', (size_t)(pat - start)) : NULL;
        at = colon != NULL ? pat : NULL;
    }
    if (colon != NULL)
        u.redacted = reign_strdup_printf("%.*s***%s", (int)(colon + 1 - text), text, at);
    else
        u.redacted = strdup(text);
    if (u.redacted == NULL) {
        rc = reign_error_set(REIGN_ENOMEM, "uri: out of memory");
        goto out;
    }

    /* curl parses one host; several ("h1:2379,h2:2379", for etcd and
     * postgres) reach backends through cfg->uri, the first one through
     * host and port. An empty authority ("unix:///path") gets a stand-in
     * host, or curl would take the first path segment for it. */
    /* "file://tmp/x" takes "tmp" for a host; curl would only say "Bad
     * file:// URL". */
    if (strcmp(u.scheme, "file") == 0 && auth != auth_end && at != NULL) {
        rc = reign_error_set(REIGN_EURI, "uri: '%.200s': a file URI names a local directory "
                                         "(file:///dir), not user@host", u.redacted);
        goto out;
    }
    if (strcmp(u.scheme, "file") == 0 && auth != auth_end &&
        !(auth_end - auth == 9 && strncasecmp(auth, "localhost", 9) == 0)) {
        rc = reign_error_set(REIGN_EURI,
                             "uri: '%.200s': a file URI has three slashes (file:///%s): with "
                             "two, \"%.*s\" is a host",
                             u.redacted, auth, (int)(auth_end - auth), auth);
        goto out;
    }
    int no_host = strcmp(u.scheme, "file") != 0 && hosts == auth_end;
    const char *comma = memchr(hosts, ',', (size_t)(auth_end - hosts));
    if (no_host)
        fixed = reign_strdup_printf("%.*s" NO_HOST_PLACEHOLDER "%s", (int)(hosts - text), text,
                                    auth_end);
    else if (comma != NULL)
        fixed = reign_strdup_printf("%.*s%s", (int)(comma - text), text, auth_end);
    else
        fixed = strdup(text);
    h = curl_url();
    if (fixed == NULL || h == NULL) {
        rc = reign_error_set(REIGN_ENOMEM, "uri: out of memory");
        goto out;
    }
    CURLUcode cu = curl_url_set(h, CURLUPART_URL, fixed, CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS);
    if (cu != CURLUE_OK) {
        rc = reign_error_set(REIGN_EURI, "uri: cannot parse '%s': %s", u.redacted,
                             curl_url_strerror(cu));
        goto out;
    }
    if ((rc = get_part(h, CURLUPART_USER, CURLU_URLDECODE, &u.user)) != REIGN_OK ||
        (rc = get_part(h, CURLUPART_PASSWORD, CURLU_URLDECODE, &u.password)) != REIGN_OK ||
        (rc = get_part(h, CURLUPART_HOST, CURLU_URLDECODE, &u.host)) != REIGN_OK ||
        (rc = get_part(h, CURLUPART_PORT, 0, &port)) != REIGN_OK ||
        (rc = get_part(h, CURLUPART_PATH, CURLU_URLDECODE, &u.path)) != REIGN_OK ||
        (rc = get_part(h, CURLUPART_QUERY, 0, &query)) != REIGN_OK) {
        reign_error_set(rc, "uri: out of memory");
        goto out;
    }
    if (no_host || (u.host != NULL && u.host[0] == '\0')) {
        free(u.host);
        u.host = NULL;
    }
    if (port != NULL)
        u.port = atoi(port); /* curl checked it is 0..65535 */
    if (u.path == NULL || strcmp(u.path, "/") == 0) {
        free(u.path);
        u.path = strdup("");
        if (u.path == NULL) {
            rc = reign_error_set(REIGN_ENOMEM, "uri: out of memory");
            goto out;
        }
    }

    rc = split_query(&u, query);
    if (rc == REIGN_OK)
        redact_secret_params(&u);

out:
    curl_url_cleanup(h);
    free(fixed);
    free(query);
    free(port);
    if (rc == REIGN_OK)
        *out = u;
    else
        reign_uri_free(&u);
    return rc;
}

void reign_uri_free(reign_uri *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n_params; i++) {
        free(u->params[i].name);
        free(u->params[i].value);
    }
    free(u->params);
    if (u->password != NULL)
        memset(u->password, 0, strlen(u->password));
    free(u->raw);
    free(u->redacted);
    free(u->scheme);
    free(u->user);
    free(u->password);
    free(u->host);
    free(u->path);
    memset(u, 0, sizeof *u);
}

int reign_uri_check_all_used(const reign_uri *u)
{
    for (size_t i = 0; i < u->n_params; i++)
        if (!u->params[i].used)
            return reign_error_set(REIGN_EURI, "uri %s: unknown query parameter '%s' for %s://",
                                   u->redacted, u->params[i].name, u->scheme);
    return REIGN_OK;
}

const char *reign_backend_param(const reign_backend_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_params; i++) {
        if (strcmp(cfg->params[i].name, name) == 0) {
            cfg->params[i].used = 1;
            return cfg->params[i].value;
        }
    }
    return NULL;
}

int reign_backend_param_ms(const reign_backend_config *cfg, const char *name, int64_t *out)
{
    const char *v = reign_backend_param(cfg, name);
    if (v == NULL)
        return REIGN_OK;
    if (reign_parse_duration_ms(v, out) != REIGN_OK)
        return reign_error_set(REIGN_EURI,
                               "uri %s: parameter %s=%s is not a positive duration (e.g. 500, 500ms, 10s)",
                               cfg->uri_redacted, name, v);
    return REIGN_OK;
}
