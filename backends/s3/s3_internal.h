/* What the files of the s3:// backend share: its state, one task per lease
 * op of a batch (a small state machine over GET and conditional PUTs), and
 * the transfer and op-step functions the execute loop drives.
 *
 *   s3_backend.c  open, close, execute (the curl multi loop), the vtable
 *   s3_http.c     one signed HTTP request of a task on a pooled easy handle
 *   s3_ops.c      the lease ops as steps: what to send next, what it meant
 *   s3_config.c, s3_sigv4.c, s3_xml.c, s3_record.c, s3_observe.c, s3_peer.c:
 *                 pure parts
 *   s3_peer_server.c  peer mode's holder side (the one file with a thread)
 *
 * Everything here runs on the factory's engine thread: no locks. The peer
 * server's table has its own mutex (s3_peer_server.c). */
#ifndef REIGN_BACKENDS_S3_S3_INTERNAL_H
#define REIGN_BACKENDS_S3_S3_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "reign/backend.h"
#include "s3_config.h"
#include "s3_observe.h"
#include "s3_peer.h"
#include "s3_record.h"

/* Transfers in flight at once: S3 has no batch write, so a batch's
 * requests go concurrently over kept-alive connections, at most this many. */
#define REIGN_S3_MAX_PARALLEL 16
/* Conditional writes one op may send in one batch before it gives up with
 * a retryable error (each lost race is followed by a fresh look). */
#define REIGN_S3_MAX_PUTS 3
/* Largest response body read: records are small, error documents too. */
#define REIGN_S3_BODY_MAX (1024 * 1024)

typedef enum reign_s3_step {
    REIGN_S3_STEP_NONE = 0,
    REIGN_S3_STEP_GET,     /* read the record */
    REIGN_S3_STEP_CREATE,  /* PUT If-None-Match: * */
    REIGN_S3_STEP_REPLACE, /* PUT If-Match: <etag> */
    REIGN_S3_STEP_PEER,    /* peer mode: ask the holder's endpoint (not S3) */
} reign_s3_step;

typedef struct reign_s3_state reign_s3_state;

typedef struct reign_s3_task {
    reign_s3_state *st;
    reign_op *op;
    bool probe; /* the reachability check of open: any answer of S3 is fine */
    reign_s3_obs *obs;
    char key[REIGN_S3_KEY_MAX + 1]; /* object key: prefix + escaped name */
    size_t name_off;                /* where the escaped name starts in key */
    size_t next_same_key;           /* the task of this batch queued behind us, or SIZE_MAX */
    bool waiting;                   /* behind an earlier task on the same key */
    bool begun;                     /* its first step was taken (exactly once) */
    bool done;                      /* op->result is set */

    /* Our conditional writes in this batch: their nonces identify them on a
     * re-read after an answer that never came or said nothing (5xx). */
    int puts;
    char nonces[REIGN_S3_MAX_PUTS][REIGN_S3_NONCE_LEN + 1];
    uint64_t write_term;
    bool write_released;
    uint64_t write_seq;

    /* The request being prepared or in flight. */
    reign_s3_step step;
    char if_etag[REIGN_S3_ETAG_MAX + 1]; /* REPLACE: the ETag it must match */
    char *body;                          /* PUT: the record's JSON */
    size_t body_len, body_off;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    int64_t sent_ms;

    /* Its response. */
    char *resp;
    size_t resp_len, resp_cap;
    bool resp_too_big;
    char etag[REIGN_S3_ETAG_MAX + 1];
    bool etag_seen, etag_bad;
    char errbuf[CURL_ERROR_SIZE];
} reign_s3_task;

struct reign_s3_state {
    const reign_backend_config *cfg; /* owned by the core, lives until close */
    reign_s3_config conf;
    const char *holder;   /* cfg->instance_id */
    const char *metadata; /* cfg->metadata or "" */
    int64_t ttl_ms;
    CURLM *multi;
    CURL *pool[REIGN_S3_MAX_PARALLEL]; /* idle easy handles, reused */
    size_t n_pool;
    reign_s3_obs_map obs;
    uint64_t rng[2]; /* xorshift128+ for nonces, seeded from getrandom */
    uint64_t seq;    /* writes made by this factory */
    uint64_t batch_gen;
    int64_t last_sweep_ms;
    uint64_t requests; /* S3 requests sent, for the debug log */
    /* Peer mode: the table (and server) of what we hold, NULL unless we
     * advertise an endpoint; the base URL written to our records. */
    reign_s3_peer_server *peer_srv;
    char *peer_url;
    uint64_t peer_requests; /* asks sent to other instances' endpoints */
    bool curl_inited;  /* curl_global_init succeeded: cleanup owed at close */
};

/* ---- s3_http.c ---------------------------------------------------------- */

/* Sign and start the task's request (t->step, t->body, t->if_etag) on the
 * multi handle, bounded by deadline_ms. REIGN_OK, or a status with a cause. */
int reign_s3_http_start(reign_s3_state *st, reign_s3_task *t, int64_t deadline_ms, char *cause,
                        size_t cause_size);

/* Start the task's peer-mode ask (t->step PEER): an unsigned GET of
 * <t->obs->rec.peer>/<name>, with no S3 header or credential, bounded by
 * REIGN_S3_PEER_TIMEOUT_MS and deadline_ms. REIGN_OK, or a status. */
int reign_s3_http_start_peer(reign_s3_state *st, reign_s3_task *t, int64_t deadline_ms,
                             char *cause, size_t cause_size);

/* Detach the finished (or abandoned) transfer of t from the multi handle,
 * give its easy handle back to the pool and free the request. The response
 * (resp, etag) stays until reign_s3_http_reset. */
void reign_s3_http_finish(reign_s3_state *st, reign_s3_task *t);

/* Free the response and request of t (before its next request). */
void reign_s3_http_reset(reign_s3_task *t);

/* Free the pooled easy handles. */
void reign_s3_http_pool_free(reign_s3_state *st);

/* ---- s3_ops.c ------------------------------------------------------------- */

/* The first step of the task's op: sets t->step (and the body of a write),
 * or finishes the op (t->done). */
void reign_s3_task_begin(reign_s3_task *t, int64_t now_ms);

/* The task's transfer ended with curl code cc and HTTP status http: decide
 * what it meant and set the next step, or finish the op. */
void reign_s3_task_answer(reign_s3_task *t, CURLcode cc, long http, int64_t now_ms);

/* Fail the task's op (not started, or abandoned at the deadline). */
void reign_s3_task_fail(reign_s3_task *t, int status, const char *cause);

#endif /* REIGN_BACKENDS_S3_S3_INTERNAL_H */
