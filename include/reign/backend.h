/* The backend contract: what a storage backend implements for reign's core.
 *
 * A backend implements atomic lease operations, nothing more. The core owns
 * threads, clocks, deadlines, retries, batching and election semantics; a
 * backend owns its connection and wire protocol. It never sleeps to wait for
 * a lease, never decides mastership and keeps no deadline of its own.
 *
 *   op       meaning
 *   ACQUIRE  no live lease on res: create one for this instance with a term
 *            greater than every earlier term of res → OK(out_term);
 *            else → HELD(out_holder, out_term, out_metadata)
 *   RENEW    live lease of this instance with `term` → extend by ttl → OK;
 *            else → LOST
 *   RELEASE  live lease of this instance with `term` → end it, keep the term
 *            history → OK; else → LOST (harmless)
 *   READ     → OK(out_holder, out_term, out_metadata) or NONE
 *
 * Any op may end in ERROR (outcome unknown, e.g. a timeout): the core then
 * assumes nothing — an ACQUIRE in error never makes anyone master.
 *
 * Duties of the core: it calls every member from its one engine thread per
 * factory (never concurrently for one state); it hands execute the ops
 * grouped by kind (every RELEASE, then RENEW, ACQUIRE, READ) with valid
 * resource IDs and an absolute deadline; it never puts two ops on one
 * resource in a batch except RELEASE before ACQUIRE; it frees out_* strings
 * and shows a backend's cause as "<OP> <resource>: <scheme>: <cause> (<uri>)"
 * (a backend gives the cause alone).
 * Duties of the backend: fill result of every op, even when the whole batch
 * fails; return by the deadline it is given; hold no lock on return.
 */
#ifndef REIGN_BACKEND_H
#define REIGN_BACKEND_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "reign/reign.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1: the first contract. 2: adds observe and set_metadata (both optional).
 * 3: execute gets a reign_batch (ops grouped by kind, an absolute deadline)
 * and set_metadata a deadline; errors carry only their cause.
 * The core serves version 3 and refuses older structs by name: their
 * execute has another signature (rebuild the backend against this header). */
#define REIGN_BACKEND_VERSION 3
#define REIGN_BACKEND_VERSION_MIN 3

typedef enum reign_op_kind {
    REIGN_OP_ACQUIRE = 1,
    REIGN_OP_RENEW = 2,
    REIGN_OP_RELEASE = 3,
    REIGN_OP_READ = 4,
} reign_op_kind;

typedef enum reign_op_result {
    REIGN_RES_UNSET = 0,  /* backend left it: the core treats it as ERROR */
    REIGN_RES_OK = 1,     /* acquired / renewed / released / READ found one */
    REIGN_RES_HELD = 2,   /* ACQUIRE: another live lease exists */
    REIGN_RES_LOST = 3,   /* RENEW/RELEASE: that lease is not ours (any more) */
    REIGN_RES_NONE = 4,   /* READ: no live lease */
    REIGN_RES_ERROR = 5,  /* failed, outcome unknown; see status/error */
} reign_op_result;

typedef struct reign_op {
    /* In, set by the core. */
    reign_op_kind kind;
    const char *resource;     /* NUL-terminated, 1..REIGN_RESOURCE_ID_MAX bytes */
    size_t resource_len;
    uint64_t term;            /* RENEW, RELEASE: the term this instance holds */

    /* Out, set by the backend. Strings are malloc'd; the core frees them. */
    reign_op_result result;
    uint64_t out_term;        /* ACQUIRE OK: new term; HELD, READ OK: holder's */
    char *out_holder;         /* HELD, READ OK: holder's instance ID */
    char *out_metadata;       /* HELD, READ OK: holder's metadata (may be NULL) */
    int64_t out_remaining_ms; /* HELD, READ OK: lease time left if known, else -1 */
    int out_status;           /* ERROR: a reign_status */
    char *out_error;          /* ERROR: the cause, malloc'd (see reign_op_fail); the
                                 core adds scheme, op, resource and URI */
} reign_op;

/* What execute gets. The ops come grouped by kind, in the order RELEASE,
 * RENEW, ACQUIRE, READ, with count[kind] ops of each (reign_batch_group
 * finds a group); every resource ID is 1..REIGN_RESOURCE_ID_MAX bytes with
 * no NUL. deadline_ns is on the reign_backend_now_ns clock. */
typedef struct reign_batch {
    reign_op *ops;
    size_t n_ops;
    size_t count[5];          /* by reign_op_kind; [0] is 0 */
    int64_t deadline_ns;
} reign_batch;

/* The order of the groups in a batch (an initializer of 4 reign_op_kind):
 * releases first, so a RELEASE and an ACQUIRE of one resource go in that
 * order. */
#define REIGN_BATCH_ORDER {REIGN_OP_RELEASE, REIGN_OP_RENEW, REIGN_OP_ACQUIRE, REIGN_OP_READ}

/* The ops of one kind in b: *n of them from the returned one on. */
static inline reign_op *reign_batch_group(const reign_batch *b, reign_op_kind kind, size_t *n)
{
    static const reign_op_kind order[4] = REIGN_BATCH_ORDER;
    size_t first = 0;
    for (size_t i = 0; i < 4 && order[i] != kind; i++)
        first += b->count[order[i]];
    *n = kind >= REIGN_OP_ACQUIRE && kind <= REIGN_OP_READ ? b->count[kind] : 0;
    return b->ops + first;
}

/* Told by notify_drain which resource may have been freed (NULL: unknown). */
typedef void (*reign_released_fn)(void *ctx, const char *resource, size_t resource_len);

/* A query parameter of the URI, percent-decoded. */
typedef struct reign_uri_param {
    char *name;
    char *value;
    int used;  /* set by reign_backend_param; unused ones are refused */
} reign_uri_param;

/* What open gets. Everything is owned by the core and lives until close.
 * Members are only ever appended; version says which the core filled. */
typedef struct reign_backend_config {
    int version;               /* the core's REIGN_BACKEND_VERSION */
    const char *uri;           /* as the user gave it: may hold secrets, never log */
    const char *uri_redacted;  /* password replaced by *** */
    const char *scheme;        /* "file", "redis", … */
    const char *user;          /* NULL if absent (decoded) */
    const char *password;      /* NULL if absent (decoded) */
    const char *host;          /* NULL if absent */
    int port;                  /* 0 if absent */
    const char *path;          /* decoded path, "" if absent */
    reign_uri_param *params;
    size_t n_params;
    const char *instance_id;   /* this instance: holder name in every lease */
    const char *metadata;      /* this instance's metadata, "" if none */
    int64_t ttl_ms;            /* lease TTL for ACQUIRE and RENEW */
    int64_t op_timeout_ms;     /* the default bound for one batch */
    int64_t open_deadline_ns;  /* open returns by then (reign_backend_now_ns clock) */
    reign_log_fn logger;
    void *logger_payload;
} reign_backend_config;

/* A backend. Members are only ever appended; each says the version that
 * added it, and the core reads a member only if version is at least that. */
typedef struct reign_backend {
    /* ---- version 1 ---- */

    int version;          /* REIGN_BACKEND_VERSION the backend was built for */
    const char *scheme;   /* URI scheme(s) it serves, e.g. "redis"; see also alt */
    const char *scheme_alt;  /* a second scheme ("postgresql"), or NULL */

    /* Required. Connect/prepare. On success *state_out is the backend's state.
     * On failure return a reign_status and set a message with
     * reign_backend_error; nothing is leaked. May block until
     * cfg->open_deadline_ns. */
    int (*open)(const reign_backend_config *cfg, void **state_out);

    /* Required. Run a batch; fill every op's result. Return REIGN_OK when the
     * ops carry their own results (some may be ERROR), or a status when the
     * whole batch failed — then the core treats unset results as ERROR.
     * Must return by batch->deadline_ns. (Version 3; see above.) */
    int (*execute)(void *state, reign_batch *batch);

    /* Optional (NULL = no notifications). A file descriptor that becomes
     * readable when some lease may have been released or expired, or -1 for
     * none right now. Asked before every wait: it may change (reconnect). */
    int (*notify_fd)(void *state);

    /* Optional, with notify_fd. Called when the fd is readable: consume what
     * is pending without blocking, and for each resource that may have been
     * freed call released(ctx, resource, resource_len) — or call it once with
     * resource NULL when the backend cannot tell which (the core then retries
     * every campaigning election). Calling it for nothing is allowed. */
    void (*notify_drain)(void *state, reign_released_fn released, void *ctx);

    /* Required. Free everything. Leases still held need not be released:
     * the core releases them first. NULL state is never passed. */
    void (*close)(void *state);

    /* Optional: the URI query parameters the backend accepts, NULL-ended
     * ("ttl" is the core's and need not be listed). With a list, the core
     * refuses any other parameter before open, so a typo is named even when
     * the server is down; NULL means open checks by marking what it uses
     * (reign_backend_param), and the core refuses the rest after open. */
    const char *const *params;

    /* ---- version 2 ---- */

    /* Optional (NULL, or a version-1 backend: observers poll). Called on
     * the engine thread with on = 1 when the factory gets its first observer
     * and on = 0 after its last one goes. While on, notify_drain also reports
     * — through `released`, like a release — every resource whose lease was
     * acquired or taken over or whose metadata changed, so observers read it
     * at once (a candidate woken by such a report only tries once more).
     * Expiries need not be reported: observers read again when a lease's
     * out_remaining_ms runs out. Return REIGN_OK, or REIGN_ENOTSUP when this
     * state cannot (observers then poll). Must not block past op_timeout_ms. */
    int (*observe)(void *state, int on);

    /* Optional (NULL, or a version-1 backend: reign_election_set_metadata
     * says REIGN_ENOTSUP). Replace the metadata of this instance's live lease
     * of resource with `term`, keeping term and expiry; while observed, the
     * change is reported like an acquisition. Return REIGN_OK, REIGN_ENOTMASTER
     * if that lease is not live and ours, or another status with a message
     * (reign_backend_error). Called on the engine thread; returns by
     * deadline_ns (reign_backend_now_ns's clock; a timeout until version 3). */
    int (*set_metadata)(void *state, const char *resource, size_t resource_len, uint64_t term,
                        const char *metadata, int64_t deadline_ns);
} reign_backend;

/* A backend's struct starts from this (then names its members), so that
 * the version it was built for is recorded:
 *   const reign_backend my_backend = {REIGN_BACKEND_INIT, .scheme = "my", …}; */
#define REIGN_BACKEND_INIT .version = REIGN_BACKEND_VERSION

/* Open a factory over a backend the caller brings (one not built into this
 * library, or a test's scripted one), exactly as reign_factory_open does
 * for a built-in one. The URI's scheme must be backend->scheme or
 * scheme_alt (REIGN_EURI); a struct whose version this core does not know,
 * or without open, execute or close, is refused (REIGN_EINVAL). The
 * struct must outlive the factory. */
REIGN_EXTERN int reign_factory_open_backend(const reign_backend *backend, const char *uri,
                                            const reign_options *options, reign_factory **out);

/* ---- Helpers the core offers backends (and only backends) --------------- */

/* Set this thread's last-error message (for open). */
REIGN_EXTERN void reign_backend_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Mark an op failed with a status and its cause (no scheme, op, resource
 * or URI: the core adds them). */
REIGN_EXTERN void reign_op_fail(reign_op *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "ACQUIRE", "RENEW", "RELEASE" or "READ" ("op" for anything else), for
 * messages. */
REIGN_EXTERN const char *reign_op_kind_name(reign_op_kind kind);

/* Bytes from outside (a resource ID, a server's text) made safe for a
 * message: printable ASCII as is, '\\' and every other byte as \xNN; whole
 * escapes only, ending in "..." when cut to fit. Always NUL-terminated when
 * out_size > 0. Returns out. */
REIGN_EXTERN char *reign_printable(const void *bytes, size_t len, char *out, size_t out_size);

/* FNV-1a (64-bit) of len bytes: the one hash of resource IDs and names,
 * for a backend's tables. */
REIGN_EXTERN uint64_t reign_hash(const void *bytes, size_t len);

/* Nanoseconds of the core's clock (CLOCK_BOOTTIME), the clock of every
 * deadline a backend is given. */
REIGN_EXTERN int64_t reign_backend_now_ns(void);

/* Milliseconds left until deadline_ns, rounded up, at least 1: a timeout
 * for a library that takes one (libcurl, poll). */
REIGN_EXTERN int64_t reign_backend_ms_left(int64_t deadline_ns);

/* The value of query parameter `name` (marks it used), NULL if absent. */
REIGN_EXTERN const char *reign_backend_param(const reign_backend_config *cfg, const char *name);

/* Log through the factory's logger. */
REIGN_EXTERN void reign_backend_log(const reign_backend_config *cfg, int level, const char *fmt,
                                    ...) __attribute__((format(printf, 3, 4)));

/* Parse a positive integer parameter with a unit of milliseconds; REIGN_EURI
 * with a message naming it on garbage. Leaves *out untouched if absent. */
REIGN_EXTERN int reign_backend_param_ms(const reign_backend_config *cfg, const char *name,
                                        int64_t *out);

/* ---- Reconnection pacing, for backends that keep connections ------------ */

/* The outage bookkeeping of one connection a backend keeps open (the
 * connection itself is the backend's). A connection that worked and broke
 * is tried again at once; after a failed attempt the next waits 100 ms,
 * doubling to 2 s, so a dead server is not hammered by every batch. One
 * warning per outage, the attempts after it at debug level, an info line
 * when it is back. Times are reign_monotonic_ms(). Zeroed = connectable now. */
typedef struct reign_backend_link {
    int64_t next_try_ms;  /* no attempt before this */
    int64_t backoff_ms;   /* 0 after a success */
    int last_status;      /* of the last failed attempt */
    int outage_logged;    /* the outage was warned of */
    char last_error[512]; /* of the last failed attempt */
} reign_backend_link;

/* True if an attempt may be made at now_ms. */
REIGN_EXTERN int reign_backend_link_may_try(const reign_backend_link *l, int64_t now_ms);

/* Make the next attempt due at once (a resubscribe, a master that moved). */
REIGN_EXTERN void reign_backend_link_retry_now(reign_backend_link *l);

/* A connection that worked broke: "<what> lost: <cause>" at WARN; the next
 * attempt is due at once. */
REIGN_EXTERN void reign_backend_link_lost(const reign_backend_config *cfg, reign_backend_link *l,
                                          const char *what, const char *cause);

/* An attempt failed with status and cause: back off, and log
 * "<what>: <cause>; next attempt in N ms". */
REIGN_EXTERN void reign_backend_link_failed(const reign_backend_config *cfg,
                                            reign_backend_link *l, const char *what, int status,
                                            const char *cause);

/* An attempt succeeded: "<what> is back" at INFO if an outage was logged. */
REIGN_EXTERN void reign_backend_link_up(const reign_backend_config *cfg, reign_backend_link *l,
                                        const char *what);

/* While backing off: "not connected (<last cause>); next attempt in N ms"
 * into err, and the last attempt's status (REIGN_EBACKEND if it had none). */
REIGN_EXTERN int reign_backend_link_refusal(const reign_backend_link *l, int64_t now_ms,
                                            char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif /* REIGN_BACKEND_H */
