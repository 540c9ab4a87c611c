/* One signed S3 request of a task, on an easy handle from a small pool that
 * lives in the factory's curl multi handle, so connections are kept alive
 * and reused across batches. HTTP/1.1, one request per connection at a
 * time (no pipelining), certificates verified, no redirects followed. */
#include "s3_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "s3_sigv4.h"

/* ---- response callbacks ----------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    reign_s3_task *t = userdata;
    size_t n = size * nmemb;
    if (t->resp_too_big || t->resp_len + n > REIGN_S3_BODY_MAX) {
        /* keep reading so the connection stays usable; the answer is refused */
        t->resp_too_big = true;
        return n;
    }
    if (t->resp_len + n + 1 > t->resp_cap) {
        size_t cap = t->resp_cap ? t->resp_cap : 1024;
        while (cap < t->resp_len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(t->resp, cap);
        if (p == NULL) {
            return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        t->resp = p;
        t->resp_cap = cap;
    }
    memcpy(t->resp + t->resp_len, data, n);
    t->resp_len += n;
    t->resp[t->resp_len] = '\0';
    return n;
}

/* Keeps the ETag header of the final response, unquoted. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    reign_s3_task *t = userdata;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new response (after a 100 Continue): forget the earlier one's */
        t->etag_seen = false;
        t->etag_bad = false;
        t->etag[0] = '\0';
        return n;
    }
    if (n < 5 || strncasecmp(data, "etag:", 5) != 0) {
        return n;
    }
    const char *v = data + 5, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (end - v >= 2 && v[0] == 'W' && v[1] == '/') {
        v += 2; /* a weak validator: the same bytes for our purpose */
    }
    if (end - v >= 2 && v[0] == '"' && end[-1] == '"') {
        /* RGW compares If-Match byte for byte: send it without the quotes */
        v++;
        end--;
    }
    size_t len = (size_t)(end - v);
    t->etag_seen = true;
    t->etag_bad = len == 0 || len > REIGN_S3_ETAG_MAX;
    for (const char *c = v; c < end && !t->etag_bad; c++) {
        /* it goes back out in a header: printable, no quotes */
        t->etag_bad = *c <= ' ' || *c >= 0x7f || *c == '"';
    }
    if (!t->etag_bad) {
        memcpy(t->etag, v, len);
        t->etag[len] = '\0';
    }
    return n;
}

static size_t on_upload(char *buffer, size_t size, size_t nitems, void *userdata)
{
    reign_s3_task *t = userdata;
    size_t room = size * nitems;
    size_t left = t->body_len - t->body_off;
    size_t n = left < room ? left : room;
    memcpy(buffer, t->body + t->body_off, n);
    t->body_off += n;
    return n;
}

/* ---- the request ------------------------------------------------------------- */

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (line == NULL) {
        return -1;
    }
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    /* the token and signature are in here: wipe before freeing */
    memset(line, 0, n);
    free(line);
    if (l == NULL) {
        return -1;
    }
    *list = l;
    return 0;
}

static CURL *easy_get(reign_s3_state *st)
{
    if (st->n_pool > 0) {
        CURL *e = st->pool[--st->n_pool];
        curl_easy_reset(e);
        return e;
    }
    return curl_easy_init();
}

int reign_s3_http_start(reign_s3_state *st, reign_s3_task *t, int64_t deadline_ms, char *cause,
                        size_t cause_size)
{
    const reign_s3_config *c = &st->conf;
    const bool put = t->step == REIGN_S3_STEP_CREATE || t->step == REIGN_S3_STEP_REPLACE;
    char amz_date[17], sha[65];
    char *path = NULL, *auth = NULL;
    int rc = REIGN_ENOMEM;

    if (t->easy != NULL) {
        /* one transfer per task at a time: a second would share its buffers */
        snprintf(cause, cause_size, "a request of this op is still in flight (a bug in reign)");
        return REIGN_EBUG;
    }
    int64_t now = reign_monotonic_ms();
    if (now >= deadline_ms) {
        snprintf(cause, cause_size, "no time left in this batch for the request");
        return REIGN_ETIMEDOUT;
    }
    if (!reign_s3_amz_date(time(NULL), amz_date)) {
        snprintf(cause, cause_size, "the wall clock gives no usable date for signing");
        return REIGN_EBACKEND;
    }
    /* the escaped name needs no URL encoding: only the prefix did */
    size_t plen = strlen(c->path_base), nlen = strlen(t->key + t->name_off);
    path = malloc(plen + nlen + 1);
    if (path == NULL) {
        goto oom;
    }
    memcpy(path, c->path_base, plen);
    memcpy(path + plen, t->key + t->name_off, nlen + 1);
    size_t ulen = strlen(c->url_base) + plen + nlen + 1;
    t->url = malloc(ulen);
    if (t->url == NULL) {
        goto oom;
    }
    snprintf(t->url, ulen, "%s%s", c->url_base, path);

    reign_s3_sha256_hex(put ? t->body : "", put ? t->body_len : 0, sha);
    reign_s3_header signed_headers[6];
    size_t n = 0;
    signed_headers[n++] = (reign_s3_header){"host", c->host_header};
    signed_headers[n++] = (reign_s3_header){"x-amz-content-sha256", sha};
    signed_headers[n++] = (reign_s3_header){"x-amz-date", amz_date};
    if (c->session_token != NULL) {
        signed_headers[n++] = (reign_s3_header){"x-amz-security-token", c->session_token};
    }
    if (t->step == REIGN_S3_STEP_CREATE) {
        signed_headers[n++] = (reign_s3_header){"if-none-match", "*"};
    } else if (t->step == REIGN_S3_STEP_REPLACE) {
        signed_headers[n++] = (reign_s3_header){"if-match", t->if_etag};
    }
    reign_s3_sign_input in = {
        .method = put ? "PUT" : "GET",
        .path = path,
        .query = NULL,
        .headers = signed_headers,
        .n_headers = n,
        .payload_sha256 = sha,
        .amz_date = amz_date,
        .region = c->region,
        .service = "s3",
        .access_key = c->access_key,
        .secret_key = c->secret_key,
    };
    if (reign_s3_authorization(&in, &auth) != 0) {
        goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        if (add_header(&t->headers, signed_headers[i].name, signed_headers[i].value) != 0) {
            goto oom;
        }
    }
    if (add_header(&t->headers, "Authorization", auth) != 0) {
        goto oom;
    }
    if (put) {
        /* no 100-continue round trip for a few hundred bytes */
        struct curl_slist *l = curl_slist_append(t->headers, "Expect:");
        if (l == NULL) {
            goto oom;
        }
        t->headers = l;
        if (add_header(&t->headers, "Content-Type", "application/json") != 0) {
            goto oom;
        }
    }

    t->easy = easy_get(st);
    if (t->easy == NULL) {
        goto oom;
    }
    CURL *e = t->easy;
    int64_t left = deadline_ms - now;
    t->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    /* the key is sent exactly as signed: no dot-segment squashing */
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_bundle != NULL) {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_bundle);
    }
    if (put) {
        t->body_off = 0;
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(e, CURLOPT_READDATA, t);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->body_len);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    CURLMcode mc = curl_multi_add_handle(st->multi, e);
    if (mc != CURLM_OK) {
        snprintf(cause, cause_size, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        rc = mc == CURLM_OUT_OF_MEMORY ? REIGN_ENOMEM : REIGN_EBUG;
        curl_easy_cleanup(e);
        t->easy = NULL;
        goto out;
    }
    t->sent_ms = now;
    st->requests++;
    rc = REIGN_OK;
    goto out;
oom:
    snprintf(cause, cause_size, "out of memory building the request");
    rc = REIGN_ENOMEM;
out:
    if (auth != NULL) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    free(path);
    if (rc != REIGN_OK) {
        reign_s3_http_reset(t);
    }
    return rc;
}

int reign_s3_http_start_peer(reign_s3_state *st, reign_s3_task *t, int64_t deadline_ms,
                             char *cause, size_t cause_size)
{
    const reign_s3_config *c = &st->conf;
    const char *base = t->obs != NULL ? t->obs->rec.peer : NULL;
    if (t->easy != NULL) {
        snprintf(cause, cause_size, "a request of this op is still in flight (a bug in reign)");
        return REIGN_EBUG;
    }
    if (base == NULL) {
        snprintf(cause, cause_size, "no peer to ask (a bug in reign)");
        return REIGN_EBUG;
    }
    int64_t now = reign_monotonic_ms();
    if (now >= deadline_ms) {
        snprintf(cause, cause_size, "no time left in this batch for the request");
        return REIGN_ETIMEDOUT;
    }
    const char *name = t->key + t->name_off;
    size_t ulen = strlen(base) + strlen(name) + 2;
    t->url = malloc(ulen);
    if (t->url == NULL) {
        snprintf(cause, cause_size, "out of memory building the request");
        return REIGN_ENOMEM;
    }
    snprintf(t->url, ulen, "%s/%s", base, name);
    t->easy = easy_get(st);
    if (t->easy == NULL) {
        reign_s3_http_reset(t);
        snprintf(cause, cause_size, "out of memory building the request");
        return REIGN_ENOMEM;
    }
    CURL *e = t->easy;
    long left = (long)(deadline_ms - now);
    long timeout = left < REIGN_S3_PEER_TIMEOUT_MS ? left : REIGN_S3_PEER_TIMEOUT_MS;
    t->errbuf[0] = '\0';
    /* no S3 header, no signature, no credential: the peer is just another
     * instance, and its address came from the bucket */
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->peer_ca != NULL) {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->peer_ca);
    }
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    CURLMcode mc = curl_multi_add_handle(st->multi, e);
    if (mc != CURLM_OK) {
        snprintf(cause, cause_size, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        curl_easy_cleanup(e);
        t->easy = NULL;
        reign_s3_http_reset(t);
        return mc == CURLM_OUT_OF_MEMORY ? REIGN_ENOMEM : REIGN_EBUG;
    }
    t->sent_ms = now;
    st->peer_requests++;
    return REIGN_OK;
}

void reign_s3_http_finish(reign_s3_state *st, reign_s3_task *t)
{
    if (t->easy != NULL) {
        curl_multi_remove_handle(st->multi, t->easy);
        if (st->n_pool < REIGN_S3_MAX_PARALLEL) {
            st->pool[st->n_pool++] = t->easy;
        } else {
            curl_easy_cleanup(t->easy);
        }
        t->easy = NULL;
    }
    if (t->headers != NULL) {
        curl_slist_free_all(t->headers);
        t->headers = NULL;
    }
    free(t->url);
    t->url = NULL;
}

void reign_s3_http_reset(reign_s3_task *t)
{
    if (t->headers != NULL) {
        curl_slist_free_all(t->headers);
        t->headers = NULL;
    }
    free(t->url);
    t->url = NULL;
    free(t->body);
    t->body = NULL;
    t->body_len = t->body_off = 0;
    free(t->resp);
    t->resp = NULL;
    t->resp_len = t->resp_cap = 0;
    t->resp_too_big = false;
    t->etag[0] = '\0';
    t->etag_seen = t->etag_bad = false;
}

void reign_s3_http_pool_free(reign_s3_state *st)
{
    while (st->n_pool > 0) {
        curl_easy_cleanup(st->pool[--st->n_pool]);
    }
}
