/* HTTP for the etcd:// backend: concurrent JSON requests over one curl multi
 * handle (connections stay alive between batches), moving to the next
 * endpoint when one cannot be reached, re-authenticating when etcd refuses
 * a token, and finding the gateway's API prefix.
 *
 * Map of this file:
 *   1. clock, easy-handle setup
 *   2. running a set of requests (reign_etcd_http_run)
 *   3. authentication and discovery
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd_internal.h"
#include "etcd_json.h"

/* A response larger than this is refused (a prefix range of a huge
 * keyspace, or a server gone mad) rather than eating memory. */
#define ETCD_MAX_RESPONSE (256u << 20)
/* Connections kept in the pool, and open at once to one host (more
 * requests wait for a free one, which keeps a batch from opening hundreds). */
#define ETCD_MAX_CONNECTS 32
#define ETCD_MAX_HOST_CONNECTIONS 16

/* ---- 1. Easy-handle setup ------------------------------------------- */

int reign_etcd_http_init(etcd_http *h, const reign_backend_config *cfg, const etcd_settings *set)
{
    memset(h, 0, sizeof *h);
    h->cfg = cfg;
    h->set = set;
    snprintf(h->api, sizeof h->api, "/v3");
    h->multi = curl_multi_init();
    if (h->multi == NULL)
        return REIGN_ENOMEM;
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)ETCD_MAX_CONNECTS);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)ETCD_MAX_HOST_CONNECTIONS);
    return REIGN_OK;
}

void reign_etcd_http_cleanup(etcd_http *h)
{
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    if (h->token != NULL) {
        memset(h->token, 0, strlen(h->token));
        free(h->token);
    }
    memset(h, 0, sizeof *h);
}

void reign_etcd_req_clear(etcd_req *r)
{
    const char *path = r->path;
    bool raw = r->raw_path;
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    json_decref(r->root);
    free(r->body);
    free(r->resp);
    memset(r, 0, sizeof *r);
    r->path = path;
    r->raw_path = raw;
}

int reign_etcd_http_setup_easy(etcd_http *h, CURL *easy, const char *url, const char *body,
                               struct curl_slist **headers, int64_t timeout_ms)
{
    struct curl_slist *hd = NULL, *t;
    char auth[1024];
    int ok = 1;
    t = curl_slist_append(hd, "Content-Type: application/json");
    ok &= t != NULL;
    hd = t ? t : hd;
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    t = curl_slist_append(hd, "Expect:");
    ok &= t != NULL;
    hd = t ? t : hd;
    if (h->token != NULL) {
        snprintf(auth, sizeof auth, "Authorization: %s", h->token);
        t = curl_slist_append(hd, auth);
        memset(auth, 0, sizeof auth);
        ok &= t != NULL;
        hd = t ? t : hd;
    }
    if (!ok) {
        curl_slist_free_all(hd);
        return REIGN_ENOMEM;
    }
    curl_slist_free_all(*headers);
    *headers = hd;

    CURLcode c = CURLE_OK;
    int64_t connect_ms = timeout_ms > 0 ? timeout_ms : h->cfg->op_timeout_ms;
#define SET(opt, val)                                   \
    do {                                                \
        if (c == CURLE_OK)                              \
            c = curl_easy_setopt(easy, opt, val);       \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_HTTPHEADER, hd);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? (long)timeout_ms : 0L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms > 0 ? (long)connect_ms : 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_KEEPIDLE, 10L);
    SET(CURLOPT_TCP_KEEPINTVL, 5L);
    if (body != NULL) {
        SET(CURLOPT_POSTFIELDS, body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
    if (h->set->cacert != NULL)
        SET(CURLOPT_CAINFO, h->set->cacert);
    if (h->set->cert != NULL)
        SET(CURLOPT_SSLCERT, h->set->cert);
    if (h->set->key != NULL)
        SET(CURLOPT_SSLKEY, h->set->key);
#undef SET
    return c == CURLE_OK ? REIGN_OK : (c == CURLE_OUT_OF_MEMORY ? REIGN_ENOMEM : REIGN_EBUG);
}

void reign_etcd_http_move_endpoint(etcd_http *h, size_t failed, const char *why)
{
    if (h->set->n_endpoints < 2 || failed != h->current)
        return;
    h->current = (h->current + 1) % h->set->n_endpoints;
    h->endpoint_moves++;
    reign_backend_log(h->cfg, REIGN_LOG_INFO, "%s unusable (%s): requests go to %s now",
                      h->set->endpoints[failed], why, h->set->endpoints[h->current]);
}

/* ---- 2. Running a set of requests ---------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    etcd_req *r = userdata;
    size_t n = size * nmemb;
    if (n > ETCD_MAX_RESPONSE - r->resp_len) {
        r->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (r->resp_len + n + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 4096;
        while (cap < r->resp_len + n + 1)
            cap *= 2;
        char *p = realloc(r->resp, cap);
        if (p == NULL)
            return 0;
        r->resp = p;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, ptr, n);
    r->resp_len += n;
    r->resp[r->resp_len] = '\0';
    return n;
}

static void req_fail(etcd_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void req_fail(etcd_req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->status = status;
    r->done = true;
}

static int64_t remaining_ms(int64_t deadline_ns)
{
    int64_t left = deadline_ns - reign_backend_now_ns();
    return left <= 0 ? 0 : (left + 999999) / 1000000;
}

static void start_one(etcd_http *h, etcd_req *r, int64_t deadline_ns)
{
    char url[512];
    int64_t left = remaining_ms(deadline_ns);
    if (left <= 0) {
        req_fail(r, REIGN_ETIMEDOUT, "no time left to send it");
        return;
    }
    snprintf(url, sizeof url, "%s%s%s", h->set->endpoints[h->current], r->raw_path ? "" : h->api,
             r->path);
    if (r->easy == NULL && (r->easy = curl_easy_init()) == NULL) {
        req_fail(r, REIGN_ENOMEM, "out of memory (curl_easy_init)");
        return;
    }
    int rc = reign_etcd_http_setup_easy(h, r->easy, url, r->body, &r->headers, left);
    if (rc == REIGN_OK &&
        (curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
         curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r) != CURLE_OK ||
         curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r) != CURLE_OK))
        rc = REIGN_EBUG;
    if (rc != REIGN_OK) {
        req_fail(r, rc, "cannot set up the request: %s", reign_status_str(rc));
        return;
    }
    r->resp_len = 0;
    r->too_big = false;
    if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        req_fail(r, REIGN_EBUG, "curl_multi_add_handle failed");
        return;
    }
    r->in_flight = true;
    r->endpoint = h->current;
    r->attempts++;
    h->requests++;
}

/* A transfer ended: decide between done, again elsewhere, or after auth. */
static void finish_one(etcd_http *h, etcd_req *r, CURLcode cc, int64_t deadline_ns)
{
    curl_multi_remove_handle(h->multi, r->easy);
    r->in_flight = false;
    const char *ep = h->set->endpoints[r->endpoint];
    if (cc != CURLE_OK) {
        long sent = 0;
        curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &sent);
        if (r->too_big) {
            req_fail(r, REIGN_EPROTO, "%s%s: response larger than %u MiB", ep, r->path,
                     ETCD_MAX_RESPONSE >> 20);
            return;
        }
        bool unreachable = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
                           cc == CURLE_SSL_CONNECT_ERROR;
        reign_etcd_http_move_endpoint(h, r->endpoint, curl_easy_strerror(cc));
        /* Never sent: nothing happened on the server, so another endpoint
         * may take it at once. */
        if (unreachable && sent == 0 &&
            r->attempts < (unsigned)h->set->n_endpoints &&
            remaining_ms(deadline_ns) > 0) {
            start_one(h, r, deadline_ns);
            if (r->in_flight)
                return;
        }
        if (r->done)
            return;
        req_fail(r, cc == CURLE_OPERATION_TIMEDOUT ? REIGN_ETIMEDOUT : REIGN_EBACKEND,
                 "%s%s%s: %s%s", ep, r->raw_path ? "" : h->api, r->path, curl_easy_strerror(cc),
                 unreachable && h->set->n_endpoints > 1 &&
                         r->attempts >= (unsigned)h->set->n_endpoints
                     ? " (every endpoint tried)"
                     : "");
        return;
    }
    long http = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &http);
    char cause[ETCD_ERR_SIZE - 64];
    int rc = reign_etcd_json_response(http, r->resp != NULL ? r->resp : "", r->resp_len, &r->root,
                                      &r->grpc_code, cause, sizeof cause);
    if (rc == REIGN_OK) {
        r->status = REIGN_OK;
        r->err[0] = '\0';
        r->done = true;
        return;
    }
    if (h->set->user != NULL && !h->auth_disabled &&
        reign_etcd_json_needs_reauth(r->grpc_code, cause))
        r->needs_auth = true;
    if (r->grpc_code == ETCD_GRPC_UNAVAILABLE || http >= 500)
        reign_etcd_http_move_endpoint(h, r->endpoint, cause);
    req_fail(r, rc, "%s%s%s: %s", ep, r->raw_path ? "" : h->api, r->path, cause);
}

static bool any_in_flight(etcd_req **reqs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (reqs[i]->in_flight)
            return true;
    return false;
}

static void run(etcd_http *h, etcd_req **reqs, size_t n, int64_t deadline_ns, bool may_reauth)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(reqs[i]->root);
        reqs[i]->root = NULL;
        reqs[i]->done = reqs[i]->in_flight = false;
        reqs[i]->attempts = 0;
        reqs[i]->needs_auth = false;
        reqs[i]->status = REIGN_EBUG;
        reqs[i]->grpc_code = ETCD_GRPC_NONE;
        snprintf(reqs[i]->err, sizeof reqs[i]->err, "not run");
    }
    bool reauthed = !may_reauth;
    for (;;) {
        for (size_t i = 0; i < n; i++)
            if (!reqs[i]->done && !reqs[i]->in_flight)
                start_one(h, reqs[i], deadline_ns);
        while (any_in_flight(reqs, n)) {
            int64_t left = remaining_ms(deadline_ns);
            if (left <= 0)
                break;
            int running = 0;
            curl_multi_perform(h->multi, &running);
            CURLMsg *msg;
            int queued;
            while ((msg = curl_multi_info_read(h->multi, &queued)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                    continue;
                etcd_req *r = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
                if (r != NULL && r->in_flight)
                    finish_one(h, r, msg->data.result, deadline_ns);
            }
            if (!any_in_flight(reqs, n))
                break;
            curl_multi_poll(h->multi, NULL, 0, (int)(left < 1000 ? left : 1000), NULL);
        }
        for (size_t i = 0; i < n; i++) {
            etcd_req *r = reqs[i];
            if (!r->in_flight)
                continue;
            curl_multi_remove_handle(h->multi, r->easy);
            r->in_flight = false;
            reign_etcd_http_move_endpoint(h, r->endpoint, "no answer in time");
            req_fail(r, REIGN_ETIMEDOUT, "%s%s%s: no answer in time",
                     h->set->endpoints[r->endpoint], r->raw_path ? "" : h->api, r->path);
        }
        size_t want_auth = 0;
        for (size_t i = 0; i < n; i++)
            want_auth += reqs[i]->needs_auth;
        if (want_auth == 0 || reauthed)
            break;
        reauthed = true;
        reign_backend_log(h->cfg, REIGN_LOG_INFO,
                          "%s: etcd refused the token of %zu request(s): authenticating again",
                          h->cfg->uri_redacted, want_auth);
        char err[ETCD_ERR_SIZE];
        int rc = reign_etcd_http_authenticate(h, deadline_ns, err, sizeof err);
        for (size_t i = 0; i < n; i++) {
            etcd_req *r = reqs[i];
            if (!r->needs_auth)
                continue;
            r->needs_auth = false;
            r->attempts = 0;
            if (rc == REIGN_OK) {
                r->done = false; /* refused before it ran: send it again */
            } else {
                r->status = rc;
                snprintf(r->err, sizeof r->err, "%s", err);
            }
        }
        if (rc != REIGN_OK)
            break;
    }
}

void reign_etcd_http_run(etcd_http *h, etcd_req **reqs, size_t n, int64_t deadline_ns)
{
    run(h, reqs, n, deadline_ns, true);
}

/* ---- 3. Authentication and discovery -------------------------------------------- */

int reign_etcd_http_authenticate(etcd_http *h, int64_t deadline_ns, char *err, size_t err_size)
{
    if (h->set->user == NULL || h->auth_disabled)
        return REIGN_OK;
    etcd_req r = {.path = "/auth/authenticate"};
    etcd_req *rp = &r;
    json_t *req = json_pack("{s:s, s:s}", "name", h->set->user, "password",
                            h->set->password != NULL ? h->set->password : "");
    int rc = REIGN_OK;
    if (req == NULL || (r.body = json_dumps(req, JSON_COMPACT)) == NULL) {
        json_decref(req);
        snprintf(err, err_size, "authenticate: out of memory (or the user name is not UTF-8)");
        return REIGN_ENOMEM;
    }
    json_decref(req);
    if (h->token != NULL) {
        memset(h->token, 0, strlen(h->token));
        free(h->token);
        h->token = NULL;
    }
    run(h, &rp, 1, deadline_ns, false);
    if (r.status == REIGN_OK) {
        rc = reign_etcd_json_auth_token(r.root, &h->token, r.err, sizeof r.err);
        if (rc != REIGN_OK)
            snprintf(err, err_size, "authenticate as '%s': %s", h->set->user, r.err);
    } else if (strstr(r.err, "authentication is not enabled") != NULL) {
        /* Credentials for a server without auth: harmless, go on without. */
        h->auth_disabled = true;
        reign_backend_log(h->cfg, REIGN_LOG_WARN,
                          "%s: the server has authentication disabled; user '%s' is not used",
                          h->cfg->uri_redacted, h->set->user);
    } else {
        rc = r.status;
        snprintf(err, err_size, "authenticate as '%s': %s", h->set->user, r.err);
    }
    memset(r.body, 0, strlen(r.body));
    reign_etcd_req_clear(&r);
    return rc;
}

int reign_etcd_http_discover(etcd_http *h, int64_t deadline_ns, char *err, size_t err_size)
{
    etcd_req r = {.path = "/version", .raw_path = true};
    etcd_req *rp = &r;
    int rc = REIGN_OK;
    run(h, &rp, 1, deadline_ns, false);
    if (r.status != REIGN_OK) {
        rc = r.status;
        snprintf(err, err_size, "%s", r.err);
        goto out;
    }
    int major = 0, minor = 0;
    rc = reign_etcd_json_version(r.root, &major, &minor, r.err, sizeof r.err);
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "%s/version: %s", h->set->endpoints[r.endpoint], r.err);
        goto out;
    }
    if (major > 3 || (major == 3 && minor >= 4)) {
        snprintf(h->api, sizeof h->api, "/v3");
    } else if (major == 3 && minor == 3) {
        snprintf(h->api, sizeof h->api, "/v3beta");
    } else if (major == 3 && minor == 2) {
        snprintf(h->api, sizeof h->api, "/v3alpha");
    } else {
        rc = REIGN_EBACKEND;
        snprintf(err, err_size, "%s is etcd %d.%d: its JSON gateway has no v3 API (needs 3.2 "
                 "or later)", h->set->endpoints[r.endpoint], major, minor);
        goto out;
    }
    reign_backend_log(h->cfg, REIGN_LOG_DEBUG, "%s is etcd %d.%d: gateway at %s",
                      h->set->endpoints[r.endpoint], major, minor, h->api);
out:
    reign_etcd_req_clear(&r);
    return rc;
}
