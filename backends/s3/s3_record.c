/* Lease records as JSON (jansson) and object keys of resource IDs.
 * Everything read from the server is checked field by field: a record that
 * is not ours to understand is REIGN_EPROTO, never a guess. */
#include "s3_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "reign/reign.h"
#include "s3_sigv4.h"

char *reign_s3_record_encode(const reign_s3_record *rec, size_t *len_out)
{
    json_t *o = NULL;
    char *text = NULL;

    if (rec->holder == NULL || rec->term > (uint64_t)INT64_MAX || rec->ttl_ms <= 0) {
        return NULL;
    }
    /* json_string refuses bytes that are not UTF-8: the holder's ID and
     * metadata must be text for every reader of the record */
    json_t *holder = json_string(rec->holder);
    json_t *meta = json_string(rec->metadata != NULL ? rec->metadata : "");
    json_t *nonce = json_string(rec->nonce);
    o = json_object();
    if (holder == NULL || meta == NULL || nonce == NULL || o == NULL) {
        json_decref(holder);
        json_decref(meta);
        json_decref(nonce);
        goto out;
    }
    if (json_object_set_new(o, "v", json_integer(REIGN_S3_RECORD_VERSION)) != 0 ||
        json_object_set_new(o, "holder", holder) != 0 ||
        json_object_set_new(o, "term", json_integer((json_int_t)rec->term)) != 0 ||
        json_object_set_new(o, "meta", meta) != 0 ||
        json_object_set_new(o, "ttl_ms", json_integer((json_int_t)rec->ttl_ms)) != 0 ||
        json_object_set_new(o, "released", json_boolean(rec->released)) != 0 ||
        json_object_set_new(o, "seq", json_integer((json_int_t)(rec->seq & INT64_MAX))) != 0 ||
        json_object_set_new(o, "nonce", nonce) != 0) {
        goto out;
    }
    if (rec->peer != NULL && rec->peer[0] != '\0' &&
        json_object_set_new(o, "peer", json_string(rec->peer)) != 0) {
        goto out;
    }
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text != NULL && len_out != NULL) {
        *len_out = strlen(text);
    }
out:
    json_decref(o);
    return text;
}

void reign_s3_record_clear(reign_s3_record *rec)
{
    if (rec == NULL) {
        return;
    }
    free(rec->holder);
    free(rec->metadata);
    free(rec->peer);
    memset(rec, 0, sizeof *rec);
}

int reign_s3_record_copy(const reign_s3_record *rec, reign_s3_record *out)
{
    reign_s3_record r = *rec;
    r.holder = rec->holder != NULL ? strdup(rec->holder) : NULL;
    r.metadata = strdup(rec->metadata != NULL ? rec->metadata : "");
    r.peer = rec->peer != NULL ? strdup(rec->peer) : NULL;
    if ((rec->holder != NULL && r.holder == NULL) || r.metadata == NULL ||
        (rec->peer != NULL && r.peer == NULL)) {
        free(r.holder);
        free(r.metadata);
        free(r.peer);
        memset(out, 0, sizeof *out);
        return REIGN_ENOMEM;
    }
    *out = r;
    return REIGN_OK;
}

/* An integer field in [min, max], or an error naming it. */
static int int_field(json_t *o, const char *name, json_int_t min, json_int_t *out, char *cause,
                     size_t cause_size)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL) {
        snprintf(cause, cause_size, "record lacks '%s'", name);
        return REIGN_EPROTO;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min) {
        snprintf(cause, cause_size, "record's '%s' is not an integer >= %lld", name, (long long)min);
        return REIGN_EPROTO;
    }
    *out = json_integer_value(v);
    return REIGN_OK;
}

static int string_field(json_t *o, const char *name, bool required, const char **out, char *cause,
                        size_t cause_size)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL && !required) {
        *out = "";
        return REIGN_OK;
    }
    if (v == NULL) {
        snprintf(cause, cause_size, "record lacks '%s'", name);
        return REIGN_EPROTO;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        /* a \u0000 inside would cut the C string short: refuse it */
        snprintf(cause, cause_size, "record's '%s' is not a string", name);
        return REIGN_EPROTO;
    }
    *out = json_string_value(v);
    return REIGN_OK;
}

int reign_s3_record_parse(const char *body, size_t len, reign_s3_record *out, char *cause,
                          size_t cause_size)
{
    json_error_t jerr;
    reign_s3_record r;
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    int rc = REIGN_EPROTO;
    json_int_t v = 0, term = 0, ttl = 0, seq = 0;
    const char *holder = NULL, *meta = NULL, *nonce = NULL, *peer = NULL;

    json_t *o = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        snprintf(cause, cause_size, "record is not JSON: %s at byte %d", jerr.text, jerr.position);
        return REIGN_EPROTO;
    }
    if (!json_is_object(o)) {
        snprintf(cause, cause_size, "record is not a JSON object");
        goto out;
    }
    if ((rc = int_field(o, "v", 1, &v, cause, cause_size)) != REIGN_OK) {
        goto out;
    }
    if (v > REIGN_S3_RECORD_VERSION) {
        snprintf(cause, cause_size, "record version %lld is newer than this reign (%d)",
                 (long long)v, REIGN_S3_RECORD_VERSION);
        rc = REIGN_EPROTO;
        goto out;
    }
    if ((rc = string_field(o, "holder", true, &holder, cause, cause_size)) != REIGN_OK ||
        (rc = string_field(o, "meta", false, &meta, cause, cause_size)) != REIGN_OK ||
        (rc = string_field(o, "nonce", true, &nonce, cause, cause_size)) != REIGN_OK ||
        (rc = string_field(o, "peer", false, &peer, cause, cause_size)) != REIGN_OK ||
        (rc = int_field(o, "term", 1, &term, cause, cause_size)) != REIGN_OK ||
        (rc = int_field(o, "ttl_ms", 1, &ttl, cause, cause_size)) != REIGN_OK) {
        goto out;
    }
    rc = REIGN_EPROTO;
    if (holder[0] == '\0') {
        snprintf(cause, cause_size, "record's 'holder' is empty");
        goto out;
    }
    if (strlen(nonce) > REIGN_S3_NONCE_LEN) {
        snprintf(cause, cause_size, "record's 'nonce' is longer than %d bytes", REIGN_S3_NONCE_LEN);
        goto out;
    }
    json_t *rel = json_object_get(o, "released");
    if (rel == NULL || !json_is_boolean(rel)) {
        snprintf(cause, cause_size, "record's 'released' is not true or false");
        goto out;
    }
    json_t *sq = json_object_get(o, "seq");
    if (sq != NULL && json_is_integer(sq)) {
        seq = json_integer_value(sq);
    }
    r.holder = strdup(holder);
    r.metadata = strdup(meta);
    /* an empty peer is no peer; its URL is checked where it is used */
    r.peer = peer != NULL && peer[0] != '\0' ? strdup(peer) : NULL;
    if (r.holder == NULL || r.metadata == NULL || (peer != NULL && peer[0] != '\0' && r.peer == NULL)) {
        reign_s3_record_clear(&r);
        snprintf(cause, cause_size, "out of memory");
        rc = REIGN_ENOMEM;
        goto out;
    }
    r.term = (uint64_t)term;
    r.ttl_ms = (int64_t)ttl;
    r.released = json_is_true(rel);
    r.seq = seq > 0 ? (uint64_t)seq : 0;
    memcpy(r.nonce, nonce, strlen(nonce) + 1);
    *out = r;
    rc = REIGN_OK;
out:
    json_decref(o);
    return rc;
}

/* ---- keys ------------------------------------------------------------------ */

static bool plain_byte(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

size_t reign_s3_key(const char *prefix, const char *resource, size_t resource_len, char *out,
                    size_t out_size)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t plen = strlen(prefix);
    size_t escaped = 0;
    for (size_t i = 0; i < resource_len; i++) {
        unsigned char c = (unsigned char)resource[i];
        escaped += plain_byte(c) && !(i == 0 && c == '.') ? 1 : 3;
    }
    if (out_size == 0) {
        return 0;
    }
    size_t limit = out_size - 1 < REIGN_S3_KEY_MAX ? out_size - 1 : REIGN_S3_KEY_MAX;
    if (plen + 2 + 64 > limit) {
        return 0;
    }
    memcpy(out, prefix, plen);
    size_t j = plen;
    if (resource_len == 0 || plen + escaped > limit) {
        char hex[65];
        reign_s3_sha256_hex(resource, resource_len, hex);
        memcpy(out + j, "~~", 2);
        memcpy(out + j + 2, hex, 65);
        return j + 66;
    }
    for (size_t i = 0; i < resource_len; i++) {
        unsigned char c = (unsigned char)resource[i];
        if (plain_byte(c) && !(i == 0 && c == '.')) {
            out[j++] = (char)c;
        } else {
            out[j++] = '~';
            out[j++] = digits[c >> 4];
            out[j++] = digits[c & 15];
        }
    }
    out[j] = '\0';
    return j;
}
