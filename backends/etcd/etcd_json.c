/* Responses of etcd's JSON gateway → plain C values (see etcd_json.h).
 *
 * Map of this file:
 *   1. field helpers: int64-as-string, bool, base64 bytes, key-values
 *   2. responses and errors: HTTP status + body → object or named status
 *   3. leases, auth, version
 *   4. txn and range
 *   5. the watch stream: framing and messages
 */
#include "etcd_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_codec.h"
#include "reign/backend.h"
#include "reign/reign.h"

/* Deepest nesting the stream framer accepts; etcd's messages are 5 deep. */

/* ---- 1. Field helpers ------------------------------------------------------ */

int reign_etcd_json_int64(const json_t *obj, const char *name, int64_t *out, char *err,
                          size_t err_size)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v)) {
        *out = 0;
        return REIGN_OK;
    }
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return REIGN_OK;
    }
    if (!json_is_string(v)) {
        snprintf(err, err_size, "field \"%s\" is not an integer", name);
        return REIGN_EPROTO;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    size_t i = s[0] == '-' ? 1 : 0;
    if (len == i || len > 20) {
        snprintf(err, err_size, "field \"%s\" is not an integer", name);
        return REIGN_EPROTO;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            snprintf(err, err_size, "field \"%s\" is not an integer", name);
            return REIGN_EPROTO;
        }
    }
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno != 0) {
        snprintf(err, err_size, "field \"%s\" is out of range", name);
        return REIGN_EPROTO;
    }
    *out = (int64_t)x;
    return REIGN_OK;
}

static int get_bool(const json_t *obj, const char *name, bool *out, char *err, size_t err_size)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v)) {
        *out = false;
        return REIGN_OK;
    }
    if (!json_is_boolean(v)) {
        snprintf(err, err_size, "field \"%s\" is not a boolean", name);
        return REIGN_EPROTO;
    }
    *out = json_is_true(v);
    return REIGN_OK;
}

/* A base64 bytes field; absent → NULL with length 0 unless required. */
static int get_bytes(const json_t *obj, const char *name, bool required, unsigned char **out,
                     size_t *out_len, char *err, size_t err_size)
{
    const json_t *v = json_object_get(obj, name);
    *out = NULL;
    *out_len = 0;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return REIGN_OK;
        snprintf(err, err_size, "field \"%s\" is missing", name);
        return REIGN_EPROTO;
    }
    if (!json_is_string(v)) {
        snprintf(err, err_size, "field \"%s\" is not a base64 string", name);
        return REIGN_EPROTO;
    }
    int rc = reign_etcd_b64_decode(json_string_value(v), json_string_length(v), out, out_len);
    if (rc == REIGN_ENOMEM)
        snprintf(err, err_size, "out of memory");
    else if (rc != REIGN_OK)
        snprintf(err, err_size, "field \"%s\" is not valid base64", name);
    return rc;
}

/* An object member that must be an object if present (absent → NULL). */
static int get_object(const json_t *obj, const char *name, const json_t **out, char *err,
                      size_t err_size)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v)) {
        *out = NULL;
        return REIGN_OK;
    }
    if (!json_is_object(v)) {
        snprintf(err, err_size, "field \"%s\" is not an object", name);
        return REIGN_EPROTO;
    }
    *out = v;
    return REIGN_OK;
}

/* An array member (absent → NULL: proto3 leaves empty lists out). */
static int get_array(const json_t *obj, const char *name, const json_t **out, char *err,
                     size_t err_size)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v)) {
        *out = NULL;
        return REIGN_OK;
    }
    if (!json_is_array(v)) {
        snprintf(err, err_size, "field \"%s\" is not an array", name);
        return REIGN_EPROTO;
    }
    *out = v;
    return REIGN_OK;
}

void reign_etcd_kv_clear(etcd_kv *kv)
{
    if (kv == NULL)
        return;
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

void reign_etcd_kvs_free(etcd_kv *kvs, size_t n)
{
    if (kvs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        reign_etcd_kv_clear(&kvs[i]);
    free(kvs);
}

static int parse_kv(const json_t *v, etcd_kv *kv, char *err, size_t err_size)
{
    etcd_kv k = {0};
    int rc;
    if (!json_is_object(v)) {
        snprintf(err, err_size, "a key-value is not an object");
        return REIGN_EPROTO;
    }
    if ((rc = get_bytes(v, "key", true, &k.key, &k.key_len, err, err_size)) != REIGN_OK ||
        (rc = get_bytes(v, "value", false, &k.value, &k.value_len, err, err_size)) != REIGN_OK ||
        (rc = reign_etcd_json_int64(v, "create_revision", &k.create_revision, err, err_size)) !=
            REIGN_OK ||
        (rc = reign_etcd_json_int64(v, "mod_revision", &k.mod_revision, err, err_size)) !=
            REIGN_OK ||
        (rc = reign_etcd_json_int64(v, "lease", &k.lease, err, err_size)) != REIGN_OK) {
        reign_etcd_kv_clear(&k);
        return rc;
    }
    if (k.key_len == 0) {
        reign_etcd_kv_clear(&k);
        snprintf(err, err_size, "a key-value has an empty key");
        return REIGN_EPROTO;
    }
    *kv = k;
    return REIGN_OK;
}

/* The first pair of a range response object, if any. */
static int first_kv(const json_t *range, bool *has, etcd_kv *kv, char *err, size_t err_size)
{
    const json_t *kvs;
    int rc = get_array(range, "kvs", &kvs, err, err_size);
    if (rc != REIGN_OK)
        return rc;
    if (kvs == NULL || json_array_size(kvs) == 0) {
        *has = false;
        return REIGN_OK;
    }
    rc = parse_kv(json_array_get(kvs, 0), kv, err, err_size);
    if (rc == REIGN_OK)
        *has = true;
    return rc;
}

/* ---- 2. Responses and errors --------------------------------------------------- */

static bool contains(const char *haystack, const char *needle)
{
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

bool reign_etcd_json_needs_reauth(int grpc_code, const char *message)
{
    if (grpc_code == ETCD_GRPC_UNAUTHENTICATED)
        return true;
    return contains(message, "invalid auth token") || contains(message, "user name is empty") ||
           contains(message, "auth: revision in header is old");
}

static int status_of(int grpc, const char *msg, long http)
{
    if (grpc == ETCD_GRPC_UNAUTHENTICATED || grpc == ETCD_GRPC_PERMISSION_DENIED)
        return REIGN_EAUTH;
    if (grpc == ETCD_GRPC_INVALID_ARGUMENT &&
        (contains(msg, "authentication failed") || contains(msg, "user name") ||
         contains(msg, "permission denied") || contains(msg, "auth token") ||
         contains(msg, "auth: revision")))
        return REIGN_EAUTH;
    if (grpc >= 0)
        return REIGN_EBACKEND;
    if (http == 401 || http == 403)
        return REIGN_EAUTH;
    if (http >= 500)
        return REIGN_EBACKEND;
    return REIGN_EPROTO;
}

/* Fill err from an error object; returns its status. */
static int error_from(const json_t *root, long http, int *grpc_code, char *err, size_t err_size)
{
    const json_t *e = json_object_get(root, "error");
    const json_t *msg = NULL;
    const json_t *code = NULL;
    if (json_is_object(e)) { /* a stream's error */
        msg = json_object_get(e, "message");
        code = json_object_get(e, "grpc_code");
    } else {
        msg = json_object_get(root, "message");
        if (!json_is_string(msg))
            msg = e;
        code = json_object_get(root, "code");
    }
    int grpc = json_is_integer(code) && json_integer_value(code) >= 0 &&
                       json_integer_value(code) < 100
                   ? (int)json_integer_value(code)
                   : ETCD_GRPC_NONE;
    char text[200] = "(no message)";
    if (json_is_string(msg))
        reign_printable(json_string_value(msg), json_string_length(msg), text, sizeof text);
    const char *raw = json_is_string(msg) ? json_string_value(msg) : NULL;
    if (grpc != ETCD_GRPC_NONE)
        snprintf(err, err_size, "%s (gRPC code %d, HTTP %ld)", text, grpc, http);
    else
        snprintf(err, err_size, "%s (HTTP %ld)", text, http);
    *grpc_code = grpc;
    int status = status_of(grpc, raw, http);
    /* The server said it failed, even without a code: not garbage. */
    return status == REIGN_EPROTO ? REIGN_EBACKEND : status;
}

static bool is_error_object(const json_t *root)
{
    const json_t *e = json_object_get(root, "error");
    if (json_is_object(e))
        return true;
    /* LeaseGrantResponse has an "error" string of its own, empty when fine. */
    return json_is_string(e) && json_string_length(e) > 0;
}

int reign_etcd_json_response(long http_status, const char *body, size_t len, json_t **root,
                             int *grpc_code, char *err, size_t err_size)
{
    *grpc_code = ETCD_GRPC_NONE;
    json_error_t jerr;
    json_t *r = len > 0 ? json_loadb(body, len, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
    if (r == NULL || !json_is_object(r)) {
        json_decref(r);
        char text[120];
        reign_printable(body, len < 200 ? len : 200, text, sizeof text);
        if (http_status != 200) {
            snprintf(err, err_size, "HTTP %ld: %s", http_status, len > 0 ? text : "(empty body)");
            return status_of(ETCD_GRPC_NONE, NULL, http_status);
        }
        if (len == 0)
            snprintf(err, err_size, "empty response");
        else if (r == NULL)
            snprintf(err, err_size, "response is not JSON (%s at byte %d): %s", jerr.text,
                     jerr.position, text);
        else
            snprintf(err, err_size, "response is not a JSON object: %s", text);
        return REIGN_EPROTO;
    }
    if (is_error_object(r)) {
        int rc = error_from(r, http_status, grpc_code, err, err_size);
        json_decref(r);
        return rc;
    }
    if (http_status != 200) {
        char text[120];
        reign_printable(body, len < 200 ? len : 200, text, sizeof text);
        snprintf(err, err_size, "HTTP %ld: %s", http_status, text);
        json_decref(r);
        return status_of(ETCD_GRPC_NONE, NULL, http_status);
    }
    json_t *result = json_object_get(r, "result");
    if (result != NULL) {
        if (!json_is_object(result)) {
            json_decref(r);
            snprintf(err, err_size, "stream message's \"result\" is not an object");
            return REIGN_EPROTO;
        }
        json_incref(result);
        json_decref(r);
        r = result;
    }
    *root = r;
    return REIGN_OK;
}

int reign_etcd_json_revision(const json_t *root, int64_t *revision, char *err, size_t err_size)
{
    const json_t *h;
    int rc = get_object(root, "header", &h, err, err_size);
    if (rc != REIGN_OK)
        return rc;
    int64_t rev = 0;
    if (h != NULL && (rc = reign_etcd_json_int64(h, "revision", &rev, err, err_size)) != REIGN_OK)
        return rc;
    if (rev < 0) {
        snprintf(err, err_size, "negative revision %" PRId64, rev);
        return REIGN_EPROTO;
    }
    *revision = rev;
    return REIGN_OK;
}

/* ---- 3. Leases, auth, version ---------------------------------------------------- */

int reign_etcd_json_lease_grant(const json_t *root, int64_t *id, int64_t *ttl_s, char *err,
                                size_t err_size)
{
    int64_t i = 0, t = 0;
    int rc;
    if ((rc = reign_etcd_json_int64(root, "ID", &i, err, err_size)) != REIGN_OK ||
        (rc = reign_etcd_json_int64(root, "TTL", &t, err, err_size)) != REIGN_OK)
        return rc;
    if (i == 0 || t <= 0) {
        snprintf(err, err_size, "lease grant answered ID %" PRId64 " TTL %" PRId64, i, t);
        return REIGN_EPROTO;
    }
    *id = i;
    *ttl_s = t;
    return REIGN_OK;
}

int reign_etcd_json_lease_keepalive(const json_t *root, int64_t id, int64_t *ttl_s, char *err,
                                    size_t err_size)
{
    int64_t i = 0, t = 0;
    int rc;
    if ((rc = reign_etcd_json_int64(root, "ID", &i, err, err_size)) != REIGN_OK ||
        (rc = reign_etcd_json_int64(root, "TTL", &t, err, err_size)) != REIGN_OK)
        return rc;
    if (i != id || t < 0) {
        snprintf(err, err_size, "keep-alive of lease %" PRId64 " answered ID %" PRId64
                 " TTL %" PRId64, id, i, t);
        return REIGN_EPROTO;
    }
    *ttl_s = t;
    return REIGN_OK;
}

int reign_etcd_json_lease_keys(const json_t *root, int64_t id, int64_t *ttl_s, etcd_kv **kvs,
                               size_t *n, char *err, size_t err_size)
{
    int64_t i = 0, t = 0;
    const json_t *arr;
    int rc;
    if ((rc = reign_etcd_json_int64(root, "ID", &i, err, err_size)) != REIGN_OK ||
        (rc = reign_etcd_json_int64(root, "TTL", &t, err, err_size)) != REIGN_OK ||
        (rc = get_array(root, "keys", &arr, err, err_size)) != REIGN_OK)
        return rc;
    if (i != id) {
        snprintf(err, err_size, "time-to-live of lease %" PRId64 " answered ID %" PRId64, id, i);
        return REIGN_EPROTO;
    }
    size_t count = arr != NULL ? json_array_size(arr) : 0;
    etcd_kv *out = calloc(count > 0 ? count : 1, sizeof *out);
    if (out == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    for (size_t k = 0; k < count; k++) {
        const json_t *v = json_array_get(arr, k);
        rc = json_is_string(v) ? reign_etcd_b64_decode(json_string_value(v), json_string_length(v),
                                                       &out[k].key, &out[k].key_len)
                               : REIGN_EPROTO;
        if (rc == REIGN_OK && out[k].key_len == 0) {
            free(out[k].key);
            out[k].key = NULL;
            rc = REIGN_EPROTO;
        }
        if (rc != REIGN_OK) {
            if (rc == REIGN_ENOMEM)
                snprintf(err, err_size, "out of memory");
            else
                snprintf(err, err_size, "keys[%zu] of lease %" PRId64 " is not a base64 key", k,
                         id);
            reign_etcd_kvs_free(out, k);
            return rc;
        }
    }
    *ttl_s = t < 0 ? -1 : t;
    *kvs = out;
    *n = count;
    return REIGN_OK;
}

int reign_etcd_json_auth_token(const json_t *root, char **token, char *err, size_t err_size)
{
    const json_t *t = json_object_get(root, "token");
    if (!json_is_string(t) || json_string_length(t) == 0 ||
        strlen(json_string_value(t)) != json_string_length(t)) {
        snprintf(err, err_size, "authenticate answered no token");
        return REIGN_EPROTO;
    }
    char *copy = strdup(json_string_value(t));
    if (copy == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    /* A token goes into an HTTP header: refuse control characters. */
    for (const char *c = copy; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            free(copy);
            snprintf(err, err_size, "authenticate answered a token with control characters");
            return REIGN_EPROTO;
        }
    }
    *token = copy;
    return REIGN_OK;
}

int reign_etcd_json_version(const json_t *root, int *major, int *minor, char *err, size_t err_size)
{
    const json_t *v = json_object_get(root, "etcdserver");
    int ma = 0, mi = 0;
    if (!json_is_string(v) || sscanf(json_string_value(v), "%d.%d", &ma, &mi) != 2 || ma < 0 ||
        mi < 0) {
        snprintf(err, err_size, "/version has no \"etcdserver\": \"X.Y.Z\"");
        return REIGN_EPROTO;
    }
    *major = ma;
    *minor = mi;
    return REIGN_OK;
}

/* ---- 4. Txn and range -------------------------------------------------------------- */

void reign_etcd_txn_items_clear(etcd_txn_item *items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        reign_etcd_kv_clear(&items[i].kv);
        memset(&items[i], 0, sizeof items[i]);
    }
}

/* The outer txn's responses array, which must have n entries. */
static int txn_responses(const json_t *root, size_t n, const json_t **out, int64_t *revision,
                         char *err, size_t err_size)
{
    const json_t *resps;
    bool ok = false;
    int rc;
    if ((rc = reign_etcd_json_revision(root, revision, err, err_size)) != REIGN_OK ||
        (rc = get_bool(root, "succeeded", &ok, err, err_size)) != REIGN_OK ||
        (rc = get_array(root, "responses", &resps, err, err_size)) != REIGN_OK)
        return rc;
    if (!ok) {
        snprintf(err, err_size, "txn without compares did not succeed");
        return REIGN_EPROTO;
    }
    size_t have = resps != NULL ? json_array_size(resps) : 0;
    if (have != n) {
        snprintf(err, err_size, "txn answered %zu responses for %zu requests", have, n);
        return REIGN_EPROTO;
    }
    *out = resps;
    return REIGN_OK;
}

static int nested_item(const json_t *entry, etcd_txn_item *it, char *err, size_t err_size)
{
    const json_t *txn, *resps;
    int rc;
    if (!json_is_object(entry)) {
        snprintf(err, err_size, "a txn response is not an object");
        return REIGN_EPROTO;
    }
    if ((rc = get_object(entry, "response_txn", &txn, err, err_size)) != REIGN_OK)
        return rc;
    if (txn == NULL) {
        snprintf(err, err_size, "expected a \"response_txn\" in the txn's responses");
        return REIGN_EPROTO;
    }
    if ((rc = get_bool(txn, "succeeded", &it->succeeded, err, err_size)) != REIGN_OK ||
        (rc = get_array(txn, "responses", &resps, err, err_size)) != REIGN_OK)
        return rc;
    size_t n = resps != NULL ? json_array_size(resps) : 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(resps, i);
        const json_t *range, *del;
        if (!json_is_object(r)) {
            snprintf(err, err_size, "a nested txn response is not an object");
            return REIGN_EPROTO;
        }
        if ((rc = get_object(r, "response_range", &range, err, err_size)) != REIGN_OK ||
            (rc = get_object(r, "response_delete_range", &del, err, err_size)) != REIGN_OK)
            return rc;
        if (range != NULL && !it->has_kv &&
            (rc = first_kv(range, &it->has_kv, &it->kv, err, err_size)) != REIGN_OK)
            return rc;
        if (del != NULL &&
            (rc = reign_etcd_json_int64(del, "deleted", &it->deleted, err, err_size)) != REIGN_OK)
            return rc;
    }
    return REIGN_OK;
}

int reign_etcd_json_txn_nested(const json_t *root, etcd_txn_item *items, size_t n,
                               int64_t *revision, char *err, size_t err_size)
{
    const json_t *resps = NULL;
    int64_t rev = 0;
    int rc = txn_responses(root, n, &resps, &rev, err, err_size);
    if (rc != REIGN_OK)
        return rc;
    memset(items, 0, n * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        rc = nested_item(json_array_get(resps, i), &items[i], err, err_size);
        if (rc != REIGN_OK) {
            reign_etcd_txn_items_clear(items, i + 1);
            return rc;
        }
    }
    *revision = rev;
    return REIGN_OK;
}

int reign_etcd_json_txn_ranges(const json_t *root, etcd_txn_item *items, size_t n,
                               int64_t *revision, char *err, size_t err_size)
{
    const json_t *resps = NULL;
    int64_t rev = 0;
    int rc = txn_responses(root, n, &resps, &rev, err, err_size);
    if (rc != REIGN_OK)
        return rc;
    memset(items, 0, n * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        const json_t *entry = json_array_get(resps, i);
        const json_t *range = NULL;
        if (!json_is_object(entry)) {
            snprintf(err, err_size, "a txn response is not an object");
            rc = REIGN_EPROTO;
        } else if ((rc = get_object(entry, "response_range", &range, err, err_size)) ==
                       REIGN_OK &&
                   range == NULL) {
            snprintf(err, err_size, "expected a \"response_range\" in the txn's responses");
            rc = REIGN_EPROTO;
        }
        if (rc == REIGN_OK)
            rc = first_kv(range, &items[i].has_kv, &items[i].kv, err, err_size);
        if (rc != REIGN_OK) {
            reign_etcd_txn_items_clear(items, i + 1);
            return rc;
        }
    }
    *revision = rev;
    return REIGN_OK;
}

int reign_etcd_json_range(const json_t *root, etcd_kv **kvs, size_t *n, int64_t *revision,
                          char *err, size_t err_size)
{
    const json_t *arr;
    int64_t rev = 0;
    int rc;
    if ((rc = reign_etcd_json_revision(root, &rev, err, err_size)) != REIGN_OK ||
        (rc = get_array(root, "kvs", &arr, err, err_size)) != REIGN_OK)
        return rc;
    size_t count = arr != NULL ? json_array_size(arr) : 0;
    etcd_kv *out = calloc(count > 0 ? count : 1, sizeof *out);
    if (out == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        rc = parse_kv(json_array_get(arr, i), &out[i], err, err_size);
        if (rc != REIGN_OK) {
            reign_etcd_kvs_free(out, i);
            return rc;
        }
    }
    *kvs = out;
    *n = count;
    *revision = rev;
    return REIGN_OK;
}

/* ---- 5. The watch stream ------------------------------------------------------------ */

void reign_etcd_json_framer_reset(etcd_json_framer *fr)
{
    fr->pos = 0;
    fr->depth = 0;
    fr->in_string = fr->escaped = false;
}

int reign_etcd_json_framer_next(etcd_json_framer *fr, const char *buf, size_t len,
                                size_t *frame_len)
{
    size_t i = fr->pos;
    if (fr->depth == 0) {
        while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t'))
            i++;
        fr->pos = i;
        if (i == len)
            return 0;
        if (buf[i] != '{')
            return REIGN_EPROTO;
    }
    for (; i < len; i++) {
        char c = buf[i];
        if (fr->in_string) {
            if (fr->escaped)
                fr->escaped = false;
            else if (c == '\\')
                fr->escaped = true;
            else if (c == '"')
                fr->in_string = false;
            continue;
        }
        switch (c) {
        case '"': fr->in_string = true; break;
        case '{':
        case '[':
            if (fr->depth == ETCD_FRAME_MAX_DEPTH)
                return REIGN_EPROTO;
            fr->open[fr->depth++] = c;
            break;
        case '}':
        case ']':
            if (fr->depth == 0 || fr->open[fr->depth - 1] != (c == '}' ? '{' : '['))
                return REIGN_EPROTO;
            fr->depth--;
            if (fr->depth == 0) {
                *frame_len = i + 1;
                fr->pos = i + 1;
                return 1;
            }
            break;
        default: break;
        }
    }
    fr->pos = len;
    return 0;
}

int reign_etcd_json_frame(const char *buf, size_t len, size_t *frame_len)
{
    etcd_json_framer fr;
    reign_etcd_json_framer_reset(&fr);
    return reign_etcd_json_framer_next(&fr, buf, len, frame_len);
}

void reign_etcd_watch_msg_clear(etcd_watch_msg *msg)
{
    if (msg == NULL)
        return;
    reign_etcd_kvs_free(msg->deleted, msg->n_deleted);
    reign_etcd_kvs_free(msg->put, msg->n_put);
    memset(msg, 0, sizeof *msg);
}

static int watch_events(const json_t *events, etcd_watch_msg *m, char *err, size_t err_size)
{
    size_t n = json_array_size(events);
    m->n_events = n;
    if (n == 0)
        return REIGN_OK;
    m->deleted = calloc(n, sizeof *m->deleted);
    m->put = calloc(n, sizeof *m->put);
    if (m->deleted == NULL || m->put == NULL) {
        snprintf(err, err_size, "out of memory");
        return REIGN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *ev = json_array_get(events, i);
        const json_t *kv;
        if (!json_is_object(ev)) {
            snprintf(err, err_size, "a watch event is not an object");
            return REIGN_EPROTO;
        }
        const json_t *type = json_object_get(ev, "type");
        if (type != NULL && !json_is_string(type)) {
            snprintf(err, err_size, "a watch event's \"type\" is not a string");
            return REIGN_EPROTO;
        }
        /* proto3 leaves the zero value PUT out. */
        bool del = type != NULL && strcmp(json_string_value(type), "DELETE") == 0;
        if (!del && type != NULL && strcmp(json_string_value(type), "PUT") != 0)
            continue; /* a type of a later etcd */
        int rc = get_object(ev, "kv", &kv, err, err_size);
        if (rc == REIGN_OK && kv == NULL) {
            snprintf(err, err_size, "a %s event has no \"kv\"", del ? "DELETE" : "PUT");
            rc = REIGN_EPROTO;
        }
        if (rc == REIGN_OK)
            rc = parse_kv(kv, del ? &m->deleted[m->n_deleted] : &m->put[m->n_put], err, err_size);
        if (rc != REIGN_OK)
            return rc;
        if (del)
            m->n_deleted++;
        else
            m->n_put++;
    }
    return REIGN_OK;
}

int reign_etcd_json_watch(const char *frame, size_t len, etcd_watch_msg *msg, int *grpc_code,
                          char *err, size_t err_size)
{
    json_t *root = NULL;
    etcd_watch_msg m = {0};
    const json_t *events;
    int rc = reign_etcd_json_response(200, frame, len, &root, grpc_code, err, err_size);
    if (rc != REIGN_OK)
        return rc;
    if ((rc = reign_etcd_json_revision(root, &m.revision, err, err_size)) != REIGN_OK ||
        (rc = get_bool(root, "created", &m.created, err, err_size)) != REIGN_OK ||
        (rc = get_bool(root, "canceled", &m.canceled, err, err_size)) != REIGN_OK ||
        (rc = reign_etcd_json_int64(root, "compact_revision", &m.compact_revision, err,
                                    err_size)) != REIGN_OK ||
        (rc = get_array(root, "events", &events, err, err_size)) != REIGN_OK)
        goto out;
    const json_t *reason = json_object_get(root, "cancel_reason");
    if (json_is_string(reason))
        reign_printable(json_string_value(reason), json_string_length(reason), m.reason,
                       sizeof m.reason);
    if (events != NULL && (rc = watch_events(events, &m, err, err_size)) != REIGN_OK)
        goto out;
    *msg = m;
    memset(&m, 0, sizeof m);
out:
    reign_etcd_watch_msg_clear(&m);
    json_decref(root);
    return rc;
}
