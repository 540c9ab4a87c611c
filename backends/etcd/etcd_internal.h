/* Private to the etcd:// backend: its state and the functions its files
 * share (HTTP requests over one curl multi handle, the watch stream, the
 * batch of lease ops). Every function runs on the factory's engine thread
 * only, so nothing here has a lock. */
#ifndef REIGN_BACKENDS_ETCD_ETCD_INTERNAL_H
#define REIGN_BACKENDS_ETCD_ETCD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "etcd_config.h"
#include "etcd_held.h"
#include "etcd_json.h"
#include "reign/backend.h"

#define ETCD_ERR_SIZE 320

extern const reign_backend reign_backend_etcd;

/* ---- HTTP (etcd_http.c) ---------------------------------------------------- */

/* Connections, endpoints and the auth token shared by every request. */
typedef struct etcd_http {
    const reign_backend_config *cfg;
    const etcd_settings *set;
    CURLM *multi;             /* keeps connections alive between batches */
    size_t current;           /* index of the endpoint requests go to */
    char api[16];             /* gateway path prefix: "/v3", "/v3beta", "/v3alpha" */
    char *token;              /* from /v3/auth/authenticate, NULL without auth */
    bool auth_disabled;       /* credentials given but the server has auth off */
    uint64_t requests;        /* HTTP requests sent (retries included) */
    uint64_t endpoint_moves;  /* times requests moved to another endpoint */
} etcd_http;

/* One HTTP request and, after reign_etcd_http_run, its outcome. */
typedef struct etcd_req {
    /* In. */
    const char *path;  /* under the API prefix ("/kv/txn"), or absolute if raw */
    bool raw_path;     /* path is not under the API prefix ("/version") */
    char *body;        /* JSON (owned; freed by reign_etcd_req_clear); NULL: GET */

    /* Out. */
    int status;        /* REIGN_OK: root is the response object */
    int grpc_code;     /* of an etcd error, else ETCD_GRPC_NONE */
    json_t *root;
    char err[ETCD_ERR_SIZE];
    size_t endpoint;   /* where it went (last attempt) */

    /* Private to etcd_http.c. */
    CURL *easy;
    struct curl_slist *headers;
    char *resp;
    size_t resp_len, resp_cap;
    unsigned attempts;
    bool in_flight;
    bool done;
    bool too_big;
    bool needs_auth;   /* refused for its token: send again after authenticating */
} etcd_req;

int reign_etcd_http_init(etcd_http *h, const reign_backend_config *cfg, const etcd_settings *set);
void reign_etcd_http_cleanup(etcd_http *h);

/* Free what a request holds, keeping path and raw_path; ready for reuse. */
void reign_etcd_req_clear(etcd_req *r);

/* Send every request concurrently and wait for all answers until
 * deadline_ns (reign_backend_now_ns). A request that could not be sent at all
 * (connection refused) goes to the next endpoint at once; one refused for
 * its auth token is sent again after one re-authentication. Every request
 * ends with status set. */
void reign_etcd_http_run(etcd_http *h, etcd_req **reqs, size_t n, int64_t deadline_ns);

/* Get a fresh token (no-op without credentials). */
int reign_etcd_http_authenticate(etcd_http *h, int64_t deadline_ns, char *err, size_t err_size);

/* Find the gateway's API prefix from GET /version. */
int reign_etcd_http_discover(etcd_http *h, int64_t deadline_ns, char *err, size_t err_size);

/* Set the options every easy handle needs (URL, TLS files, timeouts,
 * headers incl. the token); the watch stream uses it too. *headers is
 * replaced (the caller frees it after the transfer). */
int reign_etcd_http_setup_easy(etcd_http *h, CURL *easy, const char *url, const char *body,
                               struct curl_slist **headers, int64_t timeout_ms);

/* The endpoint after a failure on `failed`, unless someone moved on already. */
void reign_etcd_http_move_endpoint(etcd_http *h, size_t failed, const char *why);

/* ---- the watch stream (etcd_watch.c) ------------------------------------------ */

typedef struct etcd_watch {
    CURLM *multi;          /* only the watch transfer lives here */
    CURL *easy;            /* NULL: no transfer */
    struct curl_slist *headers;
    char *body;
    int epfd;              /* notify_fd: curl's sockets and timer_fd */
    int timer_fd;          /* armed by curl's timer callback */
    char *buf;             /* stream bytes not yet framed */
    size_t len, cap;
    etcd_json_framer framer; /* how far into buf the next frame was scanned */
    size_t endpoint;       /* the endpoint it streams from */
    bool established;      /* etcd said created and not canceled */
    bool broken;           /* ended: restart at the next execute */
    bool report_all;       /* tell the core "unknown resource" at the next drain */
    int64_t last_revision; /* last header revision seen, to resume after a break */
    int64_t not_before_ns; /* no restart before this (a refused watch must not spin) */
    uint64_t starts;
    bool observing; /* PUT events too (no NOPUT filter): reign_etcd_observe */
} etcd_watch;

/* ---- the backend state (etcd_backend.c) ----------------------------------------- */

typedef struct etcd_state {
    const reign_backend_config *cfg;
    etcd_settings set;
    etcd_http http;
    etcd_watch watch;
    char *holder_value;     /* our lease record (instance ID, metadata) */
    size_t holder_value_len;
    char *prefix_key;       /* "<prefix>/" base64, and its range end */
    char *prefix_end;
    int64_t lease_id;       /* 0: none (expired, or never granted) */
    int64_t lease_ttl_s;    /* asked for: ceil(ttl_ms / 1000), at least 1 */
    int64_t lease_fresh_ns; /* when the last grant or keep-alive that worked was sent */
    unsigned max_ops;       /* per txn; halved if the server says too many */
    etcd_held held;         /* resources last seen held by others (see etcd_held.h) */
    size_t write_window;    /* ACQUIRE writes per batch while etcd is slow; 0: no limit */
} etcd_state;

/* Grant the factory's lease (state->lease_id). */
int reign_etcd_lease_grant(etcd_state *s, int64_t deadline_ns, char *err, size_t err_size);

/* The watch stream. */
int reign_etcd_watch_init(etcd_watch *w);
void reign_etcd_watch_cleanup(etcd_watch *w);
/* (Re)start it if it is not running, broken, or on another endpoint than
 * requests now go to. Does not block. */
void reign_etcd_watch_ensure(etcd_state *s);
void reign_etcd_watch_drain(etcd_state *s, reign_released_fn released, void *ctx);
/* Restart the stream with PUT events (on) or without (backend.h, observe),
 * from the revision after the last one seen: nothing falls into the gap. */
void reign_etcd_watch_set_observing(etcd_state *s, bool on);

/* ---- observers (etcd_observe.c) -------------------------------------------------- */

int reign_etcd_observe(void *state, int on);
int reign_etcd_set_metadata(void *state, const char *resource, size_t len, uint64_t term,
                            const char *metadata, int64_t deadline_ns);

/* ---- batches (etcd_ops.c) ------------------------------------------------------- */

int reign_etcd_execute_batch(etcd_state *s, reign_batch *batch);

/* Results from parsed responses, pure (unit-tested in test_etcd_json.c). */
struct etcd_txn_item;

/* ACQUIRE from its nested txn: the put ran (OK, term = the txn's revision)
 * or the range found the holder (HELD). lease_ok: the lease was granted or
 * kept alive in this batch, so the new key lives at least a TTL. */
void reign_etcd_result_acquire(reign_op *op, const struct etcd_txn_item *item, int64_t txn_revision,
                               bool lease_ok);

/* RENEW from the key's range item and the keep-alive's verdict
 * (1 alive, 0 the lease is gone, -1 unknown). */
void reign_etcd_result_renew(reign_op *op, const struct etcd_txn_item *item, int64_t lease_id,
                             int lease_alive);

/* RELEASE from its nested txn (compare create_revision == term). */
void reign_etcd_result_release(reign_op *op, const struct etcd_txn_item *item);

/* READ from its range item. */
void reign_etcd_result_read(reign_op *op, const struct etcd_txn_item *item);

/* Mark an op failed with its cause (the core adds kind, resource, URI). */
void reign_etcd_op_error(reign_op *op, int status, const char *cause);

#endif /* REIGN_BACKENDS_ETCD_ETCD_INTERNAL_H */
