/* The postgres:// URI → libpq connection keywords. The core has parsed and
 * percent-decoded the URI already; here its parts become keyword/value
 * pairs for PQconnectStartParams, so no conninfo string is ever assembled
 * (no quoting to get wrong) and libpq applies PG* variables to the rest. */
#include "pg_conninfo.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* Parameters of the URI that are reign's, not libpq's. `ttl` is read by the
 * core before open; `table` by this backend. */
static const char *const reign_params[] = {"table", "ttl", NULL};

static bool is_reign_param(const char *name)
{
    for (size_t i = 0; reign_params[i] != NULL; i++) {
        if (strcmp(reign_params[i], name) == 0) {
            return true;
        }
    }
    return false;
}

void reign_pg_conninfo_free(reign_pg_conninfo *ci)
{
    if (ci == NULL) {
        return;
    }
    for (size_t i = 0; i < ci->n; i++) {
        free(ci->keywords[i]);
        if (ci->values[i] != NULL) {
            /* it may be the password */
            memset(ci->values[i], 0, strlen(ci->values[i]));
        }
        free(ci->values[i]);
    }
    free(ci->keywords);
    free(ci->values);
    memset(ci, 0, sizeof(*ci));
}

const char *reign_pg_conninfo_get(const reign_pg_conninfo *ci, const char *keyword)
{
    for (size_t i = 0; i < ci->n; i++) {
        if (strcmp(ci->keywords[i], keyword) == 0) {
            return ci->values[i];
        }
    }
    return NULL;
}

int reign_pg_conninfo_set(reign_pg_conninfo *ci, const char *keyword, const char *value)
{
    char *v = strdup(value);
    if (v == NULL) {
        return REIGN_ENOMEM;
    }
    for (size_t i = 0; i < ci->n; i++) {
        if (strcmp(ci->keywords[i], keyword) == 0) {
            memset(ci->values[i], 0, strlen(ci->values[i]));
            free(ci->values[i]);
            ci->values[i] = v;
            return REIGN_OK;
        }
    }
    if (ci->n + 1 >= ci->cap) {
        /* +1: both arrays stay NULL-terminated */
        size_t ncap = ci->cap == 0 ? 16 : ci->cap * 2;
        char **nk = realloc(ci->keywords, ncap * sizeof(*nk));
        if (nk == NULL) {
            free(v);
            return REIGN_ENOMEM;
        }
        ci->keywords = nk;
        char **nv = realloc(ci->values, ncap * sizeof(*nv));
        if (nv == NULL) {
            free(v);
            return REIGN_ENOMEM;
        }
        ci->values = nv;
        ci->cap = ncap;
    }
    char *k = strdup(keyword);
    if (k == NULL) {
        free(v);
        return REIGN_ENOMEM;
    }
    ci->keywords[ci->n] = k;
    ci->values[ci->n] = v;
    ci->n++;
    ci->keywords[ci->n] = NULL;
    ci->values[ci->n] = NULL;
    return REIGN_OK;
}

/* True if libpq knows `name` as a connection keyword. */
static bool libpq_keyword(const PQconninfoOption *defs, const char *name)
{
    for (const PQconninfoOption *o = defs; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, name) == 0) {
            return true;
        }
    }
    return false;
}

/* "sslmode, sslrootcert, ..." — a few keywords people most likely meant,
 * for the message about an unknown one. */
#define KNOWN_HINT                                                                                 \
    "sslmode, sslrootcert, sslcert, sslkey, connect_timeout, application_name, "                   \
    "target_session_attrs, options, host, port, dbname, user"

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Append s[0..len) percent-decoded to out (room checked by the caller);
 * false on a bad escape, or a NUL or ',' decoded (a host list entry). */
static bool append_decoded(char *out, size_t *o, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[(*o)++] = s[i];
            continue;
        }
        if (i + 2 >= len) {
            return false;
        }
        int hi = hexdigit(s[i + 1]), lo = hexdigit(s[i + 2]);
        char c = (char)(hi * 16 + lo);
        if (hi < 0 || lo < 0 || c == '\0' || c == ',') {
            return false;
        }
        out[(*o)++] = c;
        i += 2;
    }
    return true;
}

int reign_pg_split_hosts(const char *uri, char **hosts_out, char **ports_out)
{
    const char *auth = strstr(uri, "://");
    if (auth == NULL) {
        return REIGN_EURI;
    }
    auth += 3;
    const char *end = auth + strcspn(auth, "/?#");
    /* the hosts follow the last '@' (a password may hold any of ",:[]") */
    for (const char *p = auth; p < end; p++) {
        if (*p == '@') {
            auth = p + 1;
        }
    }
    size_t len = (size_t)(end - auth);
    char *hosts = malloc(len + 1), *ports = malloc(len + 1);
    size_t ho = 0, po = 0;
    int rc = REIGN_EURI;
    if (hosts == NULL || ports == NULL) {
        rc = REIGN_ENOMEM;
        goto out;
    }
    for (const char *e = auth; e <= end;) {
        const char *comma = memchr(e, ',', (size_t)(end - e));
        const char *e_end = comma != NULL ? comma : end;
        const char *h = e, *h_end, *colon;
        if (e == e_end) {
            goto out; /* an empty entry */
        }
        if (*h == '[') {
            const char *rb = memchr(h, ']', (size_t)(e_end - h));
            if (rb == NULL || rb == h + 1) {
                goto out;
            }
            h++;
            h_end = rb;
            colon = rb + 1 < e_end ? rb + 1 : NULL;
            if (colon != NULL && *colon != ':') {
                goto out;
            }
        } else {
            colon = memchr(h, ':', (size_t)(e_end - h));
            h_end = colon != NULL ? colon : e_end;
            if (h_end == h) {
                goto out;
            }
        }
        if (ho > 0) {
            hosts[ho++] = ',';
            ports[po++] = ',';
        }
        if (!append_decoded(hosts, &ho, h, (size_t)(h_end - h))) {
            goto out;
        }
        if (colon != NULL) {
            size_t plen = (size_t)(e_end - colon - 1);
            if (plen == 0 || plen > 5) {
                goto out;
            }
            for (size_t i = 0; i < plen; i++) {
                if (colon[1 + i] < '0' || colon[1 + i] > '9') {
                    goto out;
                }
                ports[po++] = colon[1 + i];
            }
        }
        if (comma == NULL) {
            break;
        }
        e = comma + 1;
        if (e == end) {
            goto out; /* a trailing comma */
        }
    }
    hosts[ho] = '\0';
    ports[po] = '\0';
    /* no port anywhere: leave it to libpq (PGPORT, 5432) */
    if (strspn(ports, ",") == po) {
        ports[0] = '\0';
    }
    *hosts_out = hosts;
    *ports_out = ports;
    hosts = ports = NULL;
    rc = REIGN_OK;
out:
    free(hosts);
    free(ports);
    return rc;
}

int reign_pg_conninfo_build(const reign_backend_config *cfg, reign_pg_conninfo *out, char *err,
                            size_t err_size)
{
    reign_pg_conninfo ci = {0};
    PQconninfoOption *defs = NULL;
    char *host = NULL;
    int rc = REIGN_OK;
    const char *uri = cfg->uri_redacted != NULL ? cfg->uri_redacted : "(postgres URI)";

    /* Before anything that prints the URI: the core's redacted URI still
     * shows a password given in the query. */
    for (size_t i = 0; i < cfg->n_params; i++) {
        const char *name = cfg->params[i].name;
        if (strcmp(name, "password") == 0 || strcmp(name, "sslpassword") == 0) {
            snprintf(err, err_size,
                     "postgres: refusing the query parameter %s=: query strings are not redacted "
                     "in logs and messages; put the password in the URI "
                     "(postgres://user:PASSWORD@host/db), in PGPASSWORD or in ~/.pgpass",
                     name);
            return REIGN_EURI;
        }
    }

    /* Start with an empty, NULL-terminated pair of arrays. */
    ci.keywords = calloc(16, sizeof(*ci.keywords));
    ci.values = calloc(16, sizeof(*ci.values));
    if (ci.keywords == NULL || ci.values == NULL) {
        goto oom;
    }
    ci.cap = 16;

    /* The authority and path. The core gives an IPv6 literal in brackets;
     * libpq wants it bare. */
    if (cfg->user != NULL && cfg->user[0] != '\0' &&
        reign_pg_conninfo_set(&ci, "user", cfg->user) != REIGN_OK) {
        goto oom;
    }
    if (cfg->password != NULL &&
        reign_pg_conninfo_set(&ci, "password", cfg->password) != REIGN_OK) {
        goto oom;
    }
    /* Several hosts ("h1:5432,h2:5433"): the core gives only the first in
     * host and port, so the list comes from the URI itself. libpq tries
     * them in order (target_session_attrs picks the primary). */
    const char *raw = cfg->uri != NULL ? cfg->uri : "";
    const char *auth = strstr(raw, "://");
    const char *comma = NULL;
    if (auth != NULL) {
        auth += 3;
        const char *auth_end = auth + strcspn(auth, "/?#");
        for (const char *p = auth; p < auth_end; p++) {
            if (*p == '@') {
                auth = p + 1; /* the hosts follow the last '@' */
            }
        }
        comma = memchr(auth, ',', (size_t)(auth_end - auth));
    }
    if (comma != NULL) {
        char *ports = NULL;
        rc = reign_pg_split_hosts(raw, &host, &ports);
        if (rc != REIGN_OK) {
            if (rc == REIGN_ENOMEM) {
                goto oom;
            }
            snprintf(err, err_size,
                     "postgres: %s: cannot read the host list; use host1:port1,host2:port2", uri);
            goto out;
        }
        bool ok = reign_pg_conninfo_set(&ci, "host", host) == REIGN_OK &&
                  (ports[0] == '\0' || reign_pg_conninfo_set(&ci, "port", ports) == REIGN_OK);
        free(ports);
        if (!ok) {
            goto oom;
        }
    } else if (cfg->host != NULL && cfg->host[0] != '\0') {
        size_t hl = strlen(cfg->host);
        if (hl >= 2 && cfg->host[0] == '[' && cfg->host[hl - 1] == ']') {
            host = strndup(cfg->host + 1, hl - 2);
        } else {
            host = strdup(cfg->host);
        }
        if (host == NULL || reign_pg_conninfo_set(&ci, "host", host) != REIGN_OK) {
            goto oom;
        }
    }
    if (cfg->port != 0 && reign_pg_conninfo_get(&ci, "port") == NULL && comma == NULL) {
        char port[16];
        snprintf(port, sizeof(port), "%d", cfg->port);
        if (reign_pg_conninfo_set(&ci, "port", port) != REIGN_OK) {
            goto oom;
        }
    }
    const char *db = cfg->path != NULL ? cfg->path : "";
    while (*db == '/') {
        db++;
    }
    if (strchr(db, '/') != NULL) {
        snprintf(err, err_size,
                 "postgres: %s: path '%s' is not a database name; use postgres://host/DBNAME", uri,
                 cfg->path);
        rc = REIGN_EURI;
        goto out;
    }
    if (db[0] != '\0' && reign_pg_conninfo_set(&ci, "dbname", db) != REIGN_OK) {
        goto oom;
    }

    /* The query: reign's own parameters stay out; the rest must be libpq's. */
    defs = PQconndefaults();
    if (defs == NULL) {
        goto oom;
    }
    for (size_t i = 0; i < cfg->n_params; i++) {
        const reign_uri_param *p = &cfg->params[i];
        if (p->used || is_reign_param(p->name)) {
            continue; /* the core's (ttl) or ours (table, read by the caller) */
        }
        if (!libpq_keyword(defs, p->name)) {
            snprintf(err, err_size,
                     "postgres: %s: unknown query parameter '%s': neither reign's (table, ttl) nor "
                     "a libpq connection keyword (e.g. " KNOWN_HINT ")",
                     uri, p->name);
            rc = REIGN_EURI;
            goto out;
        }
        (void)reign_backend_param(cfg, p->name); /* marks it used for the core */
        if (reign_pg_conninfo_set(&ci, p->name, p->value) != REIGN_OK) {
            goto oom;
        }
    }
    /* Sessions show up as "reign" in pg_stat_activity unless the user
     * (URI or $PGAPPNAME) says otherwise: fallback_ loses to both. */
    if (reign_pg_conninfo_get(&ci, "fallback_application_name") == NULL &&
        reign_pg_conninfo_set(&ci, "fallback_application_name", REIGN_PG_APP_NAME) != REIGN_OK) {
        goto oom;
    }
    goto out;
oom:
    snprintf(err, err_size, "postgres: %s: out of memory", uri);
    rc = REIGN_ENOMEM;
out:
    if (defs != NULL) {
        PQconninfoFree(defs);
    }
    free(host);
    if (rc == REIGN_OK) {
        *out = ci;
    } else {
        reign_pg_conninfo_free(&ci);
    }
    return rc;
}

static bool ident_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* One part of the table name: 1..63 identifier characters. */
static bool ident_ok(const char *s, size_t len)
{
    if (len == 0 || len > REIGN_PG_TABLE_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!ident_char(s[i], i == 0)) {
            return false;
        }
    }
    return true;
}

int reign_pg_table_check(const char *spec, size_t *schema_len, char *err, size_t err_size)
{
    size_t len = strlen(spec);
    const char *dot = strchr(spec, '.');
    bool ok = len <= REIGN_PG_TABLE_MAX;
    size_t slen = 0;
    if (ok && dot != NULL) {
        slen = (size_t)(dot - spec);
        ok = ident_ok(spec, slen) && ident_ok(dot + 1, len - slen - 1);
    } else if (ok) {
        ok = ident_ok(spec, len);
    }
    if (!ok) {
        snprintf(err, err_size,
                 "table=%.80s%s is not a table name: use NAME or SCHEMA.NAME, letters, digits and "
                 "'_' (not starting with a digit), at most %d bytes in all",
                 spec, len > 80 ? "..." : "", REIGN_PG_TABLE_MAX);
        return REIGN_EURI;
    }
    *schema_len = slen;
    return REIGN_OK;
}
