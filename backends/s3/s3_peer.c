/* Peer mode's pure parts: which advertised URLs a candidate may ask, the
 * resource name in a request path, and the answer in both directions.
 * Answers come from another process over the network: every field is
 * checked, and anything unexpected only sends the candidate back to S3. */
#include "s3_peer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

bool reign_s3_peer_url_ok(const char *url, char *why, size_t why_size)
{
    bool ok = false;
    char *scheme = NULL, *user = NULL, *pass = NULL, *host = NULL, *query = NULL, *frag = NULL;
    CURLU *u = NULL;
    size_t n = url != NULL ? strlen(url) : 0;
    if (n == 0 || n > REIGN_S3_PEER_URL_MAX) {
        snprintf(why, why_size, "is empty or longer than %d bytes", REIGN_S3_PEER_URL_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= ' ' || c >= 0x7f) {
            snprintf(why, why_size, "holds a space, a control byte or non-ASCII");
            return false;
        }
    }
    const char *sep = strstr(url, "://");
    if (sep == NULL || sep[3] == '/' || sep[3] == '\0') {
        snprintf(why, why_size, "is not scheme://host[:port][/path]");
        return false;
    }
    u = curl_url();
    if (u == NULL) {
        snprintf(why, why_size, "out of memory");
        return false;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        snprintf(why, why_size, "is not a URL");
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
    if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(why, why_size, "is not an http:// or https:// URL");
    } else if (user != NULL || pass != NULL) {
        snprintf(why, why_size, "must not hold a user or password");
    } else if (host == NULL || host[0] == '\0') {
        snprintf(why, why_size, "has no host");
    } else if (query != NULL || frag != NULL) {
        snprintf(why, why_size, "must have no query or fragment");
    } else {
        ok = true;
    }
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(pass);
    curl_free(host);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
    return ok;
}

static bool name_byte(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

bool reign_s3_peer_name_of(const char *path, char *out, size_t out_size)
{
    if (path == NULL || out_size < 2) {
        return false;
    }
    size_t end = strcspn(path, "?#");
    size_t start = end;
    while (start > 0 && path[start - 1] != '/') {
        start--;
    }
    size_t n = end - start;
    if (n == 0 || n >= out_size) {
        return false;
    }
    /* "." and ".." are never names (a leading '.' is escaped), and a
     * name made only of dots would be squashed by URL normalisers */
    if (path[start] == '.') {
        return false;
    }
    for (size_t i = start; i < end; i++) {
        if (!name_byte((unsigned char)path[i])) {
            return false;
        }
    }
    memcpy(out, path + start, n);
    out[n] = '\0';
    return true;
}

size_t reign_s3_peer_encode(const char *name, bool master, uint64_t term, const char *instance,
                            char *out, size_t out_size)
{
    size_t len = 0;
    json_t *o = json_object();
    if (o == NULL || out_size == 0) {
        json_decref(o);
        return 0;
    }
    if (json_object_set_new(o, "resource", json_string(name)) != 0 ||
        json_object_set_new(o, "master", json_boolean(master)) != 0) {
        goto out;
    }
    if (master && (term > (uint64_t)INT64_MAX || instance == NULL ||
                   json_object_set_new(o, "term", json_integer((json_int_t)term)) != 0 ||
                   json_object_set_new(o, "instance", json_string(instance)) != 0)) {
        goto out;
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text != NULL) {
        size_t n = strlen(text);
        if (n < out_size) {
            memcpy(out, text, n + 1);
            len = n;
        }
        free(text);
    }
out:
    json_decref(o);
    return len;
}

reign_s3_peer_verdict reign_s3_peer_judge(const char *body, size_t len, const char *name,
                                          const char *holder, uint64_t term, char *why,
                                          size_t why_size)
{
    reign_s3_peer_verdict v = REIGN_S3_PEER_GARBAGE;
    json_error_t jerr;
    if (len > REIGN_S3_PEER_ANSWER_MAX) {
        snprintf(why, why_size, "answer longer than %d bytes", REIGN_S3_PEER_ANSWER_MAX);
        return v;
    }
    json_t *o = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        snprintf(why, why_size, "answer is not a JSON object");
        goto out;
    }
    json_t *res = json_object_get(o, "resource");
    json_t *m = json_object_get(o, "master");
    if (!json_is_string(res) || strcmp(json_string_value(res), name) != 0) {
        snprintf(why, why_size, "answer is about another resource");
        goto out;
    }
    if (!json_is_boolean(m)) {
        snprintf(why, why_size, "answer's 'master' is not true or false");
        goto out;
    }
    if (!json_is_true(m)) {
        snprintf(why, why_size, "the peer says it is not master");
        v = REIGN_S3_PEER_DENIED;
        goto out;
    }
    json_t *t = json_object_get(o, "term");
    json_t *inst = json_object_get(o, "instance");
    if (!json_is_integer(t) || json_integer_value(t) < 1 || !json_is_string(inst)) {
        snprintf(why, why_size, "answer's 'term' or 'instance' is missing or not valid");
        goto out;
    }
    if ((uint64_t)json_integer_value(t) != term ||
        strlen(json_string_value(inst)) != json_string_length(inst) ||
        strcmp(json_string_value(inst), holder) != 0) {
        snprintf(why, why_size,
                 "the peer says master with term %" PRId64 ", the record we saw has term %" PRIu64
                 " (or another holder)",
                 (int64_t)json_integer_value(t), term);
        v = REIGN_S3_PEER_OTHER;
        goto out;
    }
    v = REIGN_S3_PEER_CONFIRMED;
out:
    json_decref(o);
    return v;
}
