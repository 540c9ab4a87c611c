/* Responses of etcd's JSON gateway → plain C values. Pure functions over
 * bytes and jansson trees: no I/O, so every parser is unit-tested and fuzzed
 * without a server (tests/unit/test_etcd_json.c).
 *
 * The gateway speaks proto3 JSON: int64 fields arrive as strings
 * ("revision":"42"), bytes as base64, and fields with a zero value are left
 * out ("succeeded": false is absent, so is an empty "kvs"). Errors come as
 * {"error":"…","code":N,"message":"…"} (unary calls) or
 * {"error":{"grpc_code":N,"http_code":N,"message":"…"}} (streams).
 * Every parser returns REIGN_OK or a reign_status with a one-line cause in
 * `err` (err_size >= 64), and fills its outputs only on success. */
#ifndef REIGN_BACKENDS_ETCD_ETCD_JSON_H
#define REIGN_BACKENDS_ETCD_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* gRPC status codes etcd uses in its errors. */
enum {
    ETCD_GRPC_NONE = -1,
    ETCD_GRPC_INVALID_ARGUMENT = 3,
    ETCD_GRPC_DEADLINE_EXCEEDED = 4,
    ETCD_GRPC_NOT_FOUND = 5,
    ETCD_GRPC_PERMISSION_DENIED = 7,
    ETCD_GRPC_UNAVAILABLE = 14,
    ETCD_GRPC_UNAUTHENTICATED = 16,
};

/* One key-value pair; key and value are decoded bytes with a NUL after
 * them (not counted in the lengths). */
typedef struct etcd_kv {
    unsigned char *key;
    size_t key_len;
    unsigned char *value; /* NULL for keys_only ranges and DELETE events */
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t lease; /* 0: no lease */
} etcd_kv;

void reign_etcd_kv_clear(etcd_kv *kv);
void reign_etcd_kvs_free(etcd_kv *kvs, size_t n);

/* An HTTP response → its JSON object. REIGN_OK with *root (caller
 * json_decref's) when the status is 200 and the body is a JSON object that
 * is not an error; a stream message {"result":{…}} is unwrapped to its
 * result. Otherwise a status with *grpc_code (ETCD_GRPC_NONE if there is
 * none) and the cause in err:
 *   gRPC Unauthenticated / PermissionDenied and the InvalidArgument errors
 *   about users, passwords and tokens → REIGN_EAUTH;
 *   other gRPC errors and HTTP 5xx → REIGN_EBACKEND;
 *   anything else (not JSON, not an object, HTTP 404) → REIGN_EPROTO.
 * Only the first JSON value of the body is read (streams add more). */
int reign_etcd_json_response(long http_status, const char *body, size_t len, json_t **root,
                             int *grpc_code, char *err, size_t err_size);

/* True for errors that a fresh token from /v3/auth/authenticate cures: the
 * request was refused before it ran, so it may be sent again. */
bool reign_etcd_json_needs_reauth(int grpc_code, const char *message);

/* An int64 field that proto3 JSON writes as a string (or a number);
 * absent → 0. REIGN_EPROTO for another type, garbage or overflow. */
int reign_etcd_json_int64(const json_t *obj, const char *name, int64_t *out, char *err,
                          size_t err_size);

/* header.revision of a response (0 if absent). */
int reign_etcd_json_revision(const json_t *root, int64_t *revision, char *err, size_t err_size);

/* /v3/lease/grant → the lease's ID and TTL in seconds. */
int reign_etcd_json_lease_grant(const json_t *root, int64_t *id, int64_t *ttl_s, char *err,
                                size_t err_size);

/* /v3/lease/keepalive (the result object) for lease `id` → its TTL in
 * seconds; 0 means the lease no longer exists. */
int reign_etcd_json_lease_keepalive(const json_t *root, int64_t id, int64_t *ttl_s, char *err,
                                    size_t err_size);

/* /v3/lease/timetolive with "keys": true for lease `id` → its TTL in
 * seconds (-1: expired or gone) and the keys attached to it (a malloc'd
 * array of etcd_kv with only key set; *n may be 0). */
int reign_etcd_json_lease_keys(const json_t *root, int64_t id, int64_t *ttl_s, etcd_kv **kvs,
                               size_t *n, char *err, size_t err_size);

/* /v3/auth/authenticate → the token, malloc'd. */
int reign_etcd_json_auth_token(const json_t *root, char **token, char *err, size_t err_size);

/* GET /version → the server's major and minor version. */
int reign_etcd_json_version(const json_t *root, int *major, int *minor, char *err, size_t err_size);

/* One entry of a txn's responses. */
typedef struct etcd_txn_item {
    bool succeeded;  /* nested txn: its compares held */
    bool has_kv;     /* a range in it found a key (the first one) */
    etcd_kv kv;
    int64_t deleted; /* a delete_range in it: keys deleted */
} etcd_txn_item;

void reign_etcd_txn_items_clear(etcd_txn_item *items, size_t n);

/* /v3/kv/txn whose success branch holds exactly n nested txns
 * ({"request_txn":…}) → one item per nested txn, and the txn's revision
 * (the revision a put in it was written at). */
int reign_etcd_json_txn_nested(const json_t *root, etcd_txn_item *items, size_t n,
                               int64_t *revision, char *err, size_t err_size);

/* /v3/kv/txn whose success branch holds exactly n ranges → one item per
 * range (has_kv and kv of its first key). */
int reign_etcd_json_txn_ranges(const json_t *root, etcd_txn_item *items, size_t n,
                               int64_t *revision, char *err, size_t err_size);

/* /v3/kv/range → every key-value pair (malloc'd array, *n may be 0). */
int reign_etcd_json_range(const json_t *root, etcd_kv **kvs, size_t *n, int64_t *revision,
                          char *err, size_t err_size);

/* ---- the watch stream ---------------------------------------------------- */

/* Streamed JSON arrives in arbitrary pieces. Finds the end of the first
 * complete top-level JSON object in buf (after leading white space):
 * 1 with *frame_len = bytes up to and including its closing brace;
 * 0 when more bytes are needed; REIGN_EPROTO when buf cannot start an
 * object (garbage). Strings and escapes are honoured; depth is bounded. */
int reign_etcd_json_frame(const char *buf, size_t len, size_t *frame_len);

/* The same, resumable: a stream that arrives a byte at a time is scanned
 * once, not once per piece (which a hostile gateway trickling a large
 * object could turn into quadratic work for the engine thread). Call next
 * with the same buffer, grown at its end, until it returns 1 or
 * REIGN_EPROTO; then reset before framing what follows the frame. */
#define ETCD_FRAME_MAX_DEPTH 64
typedef struct etcd_json_framer {
    size_t pos;   /* bytes of the buffer scanned so far */
    int depth;    /* 0: before the object's opening brace */
    bool in_string, escaped;
    char open[ETCD_FRAME_MAX_DEPTH]; /* the bracket each level was opened with */
} etcd_json_framer;

void reign_etcd_json_framer_reset(etcd_json_framer *fr);
int reign_etcd_json_framer_next(etcd_json_framer *fr, const char *buf, size_t len,
                                size_t *frame_len);

typedef struct etcd_watch_msg {
    bool created;
    bool canceled;
    int64_t revision;          /* header.revision */
    int64_t compact_revision;  /* canceled because the start was compacted */
    etcd_kv *deleted;          /* keys of DELETE events (values NULL) */
    size_t n_deleted;
    etcd_kv *put;              /* keys of PUT events (only without the NOPUT filter) */
    size_t n_put;
    size_t n_events;           /* events of any type */
    char reason[256];          /* cancel_reason */
} etcd_watch_msg;

void reign_etcd_watch_msg_clear(etcd_watch_msg *msg);

/* One framed watch message → msg. A stream error object is a status
 * (like reign_etcd_json_response) with *grpc_code set. */
int reign_etcd_json_watch(const char *frame, size_t len, etcd_watch_msg *msg, int *grpc_code,
                          char *err, size_t err_size);

#endif /* REIGN_BACKENDS_ETCD_ETCD_JSON_H */
