/* reign: master election per resource ID with pluggable backends.
 *
 * This is the whole public API. Types are opaque; every fallible call returns
 * a reign_status (REIGN_OK = 0) and leaves a message for the calling thread in
 * reign_last_error(). Out-parameters come last, are named `out`, and are set
 * only on success.
 *
 * Threading: unless a function says otherwise it is thread-safe and may be
 * called from any thread. Callbacks run on the factory's engine thread; they
 * must not block for long and must not close the object that invoked them.
 *
 * Map of this header:
 *   1. status codes and errors      5. runner (Trillian semantics)
 *   2. options and factory          6. master tracker
 *   3. election (one resource)      7. shard manager
 *   4. master info, statistics      8. logging
 *   4b. membership  4c. observers   9. initialisers for other languages
 */
#ifndef REIGN_REIGN_H
#define REIGN_REIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define REIGN_EXTERN __attribute__((visibility("default")))
#else
#define REIGN_EXTERN
#endif

#define REIGN_VERSION_STRING "0.1.0"

/* ---- 1. Status codes and errors ---------------------------------------- */

typedef enum reign_status {
    REIGN_OK = 0,
    REIGN_EINVAL = -1,       /* bad argument or configuration value */
    REIGN_ENOMEM = -2,       /* out of memory */
    REIGN_EURI = -3,         /* malformed URI, unknown scheme or parameter */
    REIGN_EBACKEND = -4,     /* backend unreachable or failed (retryable) */
    REIGN_ETIMEDOUT = -5,    /* the given timeout passed */
    REIGN_ENOTMASTER = -6,   /* this instance is not master */
    REIGN_ENOMASTER = -7,    /* nobody is master of the resource */
    REIGN_ECLOSED = -8,      /* the object is closing or closed */
    REIGN_ESTATE = -9,       /* call not valid in the current state */
    REIGN_EIO = -10,         /* local I/O error (file backend) */
    REIGN_EPROTO = -11,      /* garbage from a server or a lock file */
    REIGN_EAUTH = -12,       /* authentication or permission refused */
    REIGN_EBUSY = -13,       /* resource already in use in this factory */
    REIGN_ENOTSUP = -14,     /* the backend does not offer this (e.g. set_metadata) */
    REIGN_EBUG = -99,        /* internal error: a bug in reign, please report */
} reign_status;

/* Static name of a status ("REIGN_ETIMEDOUT: timed out"). Never NULL. */
REIGN_EXTERN const char *reign_status_str(int status);

/* This thread's message for the last failed call, "" if none. Valid until
 * the next reign call on this thread. Never NULL. */
REIGN_EXTERN const char *reign_last_error(void);

/* The status that went with that message, REIGN_OK if none (for a caller
 * that got only a NULL back). */
REIGN_EXTERN int reign_last_status(void);

/* ---- 2. Options and factory --------------------------------------------- */

/* Log levels, lowest = most severe. */
enum { REIGN_LOG_ERROR = 0, REIGN_LOG_WARN = 1, REIGN_LOG_INFO = 2, REIGN_LOG_DEBUG = 3 };

/* Called from any reign thread; must be thread-safe. `component` is e.g.
 * "engine", "redis"; `message` never contains a password. */
typedef void (*reign_log_fn)(int level, const char *component, const char *message,
                             void *payload);

#define REIGN_OPTIONS_VERSION 1

/* Zero means "default" for every numeric field. */
typedef struct reign_options {
    unsigned version;           /* REIGN_OPTIONS_VERSION */
    const char *instance_id;    /* NULL: "host:pid:random" */
    const char *metadata;       /* shown to observers (e.g. an address); NULL = "" */
    int64_t ttl_ms;             /* lease TTL; 0: URI's ttl= or 10000 */
    int64_t retry_interval_ms;  /* campaign retry when no notification; 0: 1000 */
    int64_t op_timeout_ms;      /* bound on one backend batch; 0: min(ttl/3, 5000) */
    double max_drift;           /* assumed clock rate error; 0: 0.01 */
    int64_t safety_margin_ms;   /* subtracted from every deadline; 0: min(ttl/20, 100) */
    reign_log_fn logger;        /* NULL: stderr, level from REIGN_LOG */
    void *logger_payload;
} reign_options;

#define REIGN_OPTIONS_INIT {REIGN_OPTIONS_VERSION, NULL, NULL, 0, 0, 0, 0.0, 0, NULL, NULL}

/* The ranges reign_factory_open enforces, for programs that check their own
 * input first (the CLI does, to exit 2 with the real range). */
#define REIGN_TTL_MIN_MS 20
#define REIGN_TTL_MAX_MS (INT64_C(24) * 3600 * 1000)
#define REIGN_INSTANCE_ID_MAX 255   /* bytes; at least 1 */
#define REIGN_METADATA_MAX 4096     /* bytes */

typedef struct reign_factory reign_factory;

/* The URI scheme of the i-th backend built into this library (0, 1, …;
 * NULL past the last), e.g. to list them in a program's help. */
REIGN_EXTERN const char *reign_backend_scheme(size_t i);

/* The URI used when none is given and $REIGN_URI is unset (static):
 * file:///run/lock/reign for root (where /run/lock exists: a directory
 * PrivateTmp= does not hide, shared by root's cron jobs and services), else
 * file:///tmp/reign-$UID. */
REIGN_EXTERN const char *reign_default_uri(void);

/* Open a factory for the backend the URI names:
 *   file:///dir   mem://name   noop://   redis://…   postgres://…
 *   etcd://…   s3://…   (see docs/backends/)
 * A NULL uri means $REIGN_URI, else reign_default_uri().
 * `options` may be NULL for defaults. Starts the engine thread; for networked
 * backends the first connection is made before returning (bounded by
 * op_timeout_ms). Blocks. */
REIGN_EXTERN int reign_factory_open(const char *uri, const reign_options *options,
                                    reign_factory **out);

/* Resign every mastership, stop the engine, free. All elections of the
 * factory must be closed first (REIGN_EBUSY otherwise: nothing is freed).
 * NULL is a no-op. Blocks up to op_timeout_ms. */
REIGN_EXTERN int reign_factory_close(reign_factory *factory);

/* The instance ID in use (owned by the factory). */
REIGN_EXTERN const char *reign_factory_instance_id(const reign_factory *factory);

/* The URI with any password replaced by "***" (owned by the factory). */
REIGN_EXTERN const char *reign_factory_uri(const reign_factory *factory);

/* Effective lease TTL in milliseconds. */
REIGN_EXTERN int64_t reign_factory_ttl_ms(const reign_factory *factory);

/* Longest resource ID accepted, in bytes. IDs are C strings of 1..this
 * bytes; any byte but NUL is allowed. IDs starting with
 * REIGN_RESERVED_PREFIX are reign's own (member slots): reign_election_new
 * (and so a shard) refuses them with REIGN_EINVAL; reading them is allowed. */
#define REIGN_RESOURCE_ID_MAX 1024
#define REIGN_RESERVED_PREFIX "_reign/"

/* ---- 3. Election ------------------------------------------------------- */

typedef struct reign_election reign_election;

typedef enum reign_event_kind {
    REIGN_EVENT_GAINED = 1,  /* became master with `term` */
    REIGN_EVENT_LOST = 2,    /* stopped being master of `term`, see reason */
} reign_event_kind;

typedef enum reign_lost_reason {
    REIGN_LOST_NONE = 0,
    REIGN_LOST_RESIGNED = 1,  /* reign_election_resign or a runner resignation */
    REIGN_LOST_EXPIRED = 2,   /* local deadline passed without a renewal */
    REIGN_LOST_BACKEND = 3,   /* the backend said the lease is not ours */
    REIGN_LOST_CLOSED = 4,    /* reign_election_close */
} reign_lost_reason;

typedef struct reign_event {
    reign_event_kind kind;
    uint64_t term;
    reign_lost_reason reason; /* REIGN_EVENT_LOST only */
} reign_event;

typedef void (*reign_election_fn)(reign_election *election, const reign_event *event,
                                  void *payload);

/* New election for one resource ID; not campaigning until start. At most one
 * election per resource per factory (REIGN_EBUSY). */
REIGN_EXTERN int reign_election_new(reign_factory *factory, const char *resource_id,
                                    reign_election **out);

/* Set the callback for gained/lost events, before start. Runs on the engine
 * thread without reign locks held. */
REIGN_EXTERN int reign_election_set_callback(reign_election *election, reign_election_fn fn,
                                             void *payload);

/* Begin campaigning. Does not block. Starting a started election is OK. */
REIGN_EXTERN int reign_election_start(reign_election *election);

/* Campaign if not campaigning, then block until master (REIGN_OK), the
 * timeout passes (REIGN_ETIMEDOUT) or the election closes (REIGN_ECLOSED).
 * timeout_ms < 0 waits forever. A timeout's message says why: "not master
 * after 5000 ms; last ACQUIRE: redis: …" while the backend fails, or
 * "; held by <instance> (term T)". */
REIGN_EXTERN int reign_election_wait(reign_election *election, int64_t timeout_ms);

/* True while this instance is master: no I/O, no lock, a few ns. Becomes
 * false at the local deadline even if the backend never answers. */
REIGN_EXTERN bool reign_election_is_master(const reign_election *election);

/* The fencing term of the current mastership; REIGN_ENOTMASTER if not master. */
REIGN_EXTERN int reign_election_term(const reign_election *election, uint64_t *out);

/* The local deadline of the current mastership on the reign_monotonic_ms
 * clock (until then nobody else can be master: the backend's lease runs
 * longer), and its term (term_out may be NULL), read together. It moves
 * forward with every renewal. For a watchdog outside this process that
 * must stop master-only work when renewals stop arriving (the CLI's guard).
 * REIGN_ENOTMASTER if not master. Thread-safe, no I/O. */
REIGN_EXTERN int reign_election_deadline_ms(const reign_election *election, int64_t *deadline_out,
                                            uint64_t *term_out);

/* Give up mastership (if held) and stop campaigning until the next start or
 * wait. Blocks until the release was sent (bounded by op_timeout_ms); belief
 * ends before this returns, whatever the backend said. REIGN_OK, or
 * REIGN_EBACKEND when the RELEASE failed (the message names the backend's
 * cause): this instance is no master either way, but the next master waits
 * until the lease expires, up to the TTL. (It is retried in the background
 * for a TTL.) From a callback it does not wait and returns REIGN_OK. */
REIGN_EXTERN int reign_election_resign(reign_election *election);

/* The status of this election's last backend op if it failed (REIGN_OK if
 * the last one succeeded), and the backend's message ("ACQUIRE: redis: …")
 * into buf when given. reign_election_wait's timeout message names it too,
 * or who holds the resource. No I/O. */
REIGN_EXTERN int reign_election_last_failure(reign_election *election, char *buf, size_t size);

/* Resign if master, stop campaigning, free. NULL is a no-op. Blocks like
 * resign. Must not be called from this election's callback. */
REIGN_EXTERN int reign_election_close(reign_election *election);

/* reign_election_resign and reign_election_close of n elections of one
 * factory at once: the RELEASEs go out in the engine's batches and the
 * call waits for all of them together, so the time grows with n as the
 * backend's batches do (a stop of 100,000 in about a second on redis)
 * rather than one engine round trip per election. NULL entries are no-ops
 * for close_many; REIGN_EINVAL for NULLs in resign_many or elections of
 * different factories (nothing is done then). */
REIGN_EXTERN int reign_election_resign_many(reign_election *const *elections, size_t n);
REIGN_EXTERN int reign_election_close_many(reign_election *const *elections, size_t n);

REIGN_EXTERN const char *reign_election_resource(const reign_election *election);

/* Replace the metadata of the mastership held now (etcd's Proclaim): the
 * term and the lease's expiry stay; observers see the new value as a
 * change. It lasts for this mastership: a later one starts again with the
 * factory's metadata (reign_options.metadata). Blocks for one backend round
 * trip (bounded by op_timeout_ms); not from a reign callback. REIGN_ENOTMASTER
 * if not master (or no longer, says the backend), REIGN_ENOTSUP if the
 * backend cannot (s3://, noop:// and backends built for contract
 * version 1), REIGN_EINVAL past REIGN_METADATA_MAX bytes. */
REIGN_EXTERN int reign_election_set_metadata(reign_election *election, const char *metadata);

/* Leader status of one election, like s3lect's LeadershipStatus: what this
 * election last heard of its resource's master from its own backend ops
 * (its ACQUIREs name the holder, its renewals and releases say whether it
 * still is). An election that does not campaign hears nothing: observe the
 * resource (reign_observer) for a view that does not depend on campaigning.
 * Times are reign_monotonic_ms(); -1 means never. */
typedef struct reign_leader_status {
    bool known;              /* it heard of a master, or of none, at least once */
    bool held;               /* someone is master, as last heard */
    bool self;               /* ... and it is this instance */
    char *instance_id;       /* that master when held, else NULL (malloc'd) */
    uint64_t term;           /* its term when held, else the last term heard (0: none) */
    int64_t last_change_ms;  /* when this instance last saw the master change */
    int64_t last_heard_ms;   /* the last answer of the backend to this election's ops */
    unsigned failures;       /* its backend ops in a row that failed */
    int last_error_status;   /* of the last failure, REIGN_OK if none */
} reign_leader_status;

/* Fill *out (free it with reign_leader_status_clear). No I/O. */
REIGN_EXTERN int reign_election_status(reign_election *election, reign_leader_status *out);
REIGN_EXTERN void reign_leader_status_clear(reign_leader_status *status);

/* Block until the election sees its master change at or after after_ms
 * (last_change_ms >= after_ms), for up to timeout_ms (< 0: forever):
 * s3lect's WaitForNextElection. REIGN_OK, REIGN_ETIMEDOUT, or REIGN_ECLOSED
 * when the election closes. It campaigns only if started. Not from a reign
 * callback. */
REIGN_EXTERN int reign_election_wait_change(reign_election *election, int64_t after_ms,
                                            int64_t timeout_ms);

/* ---- 4. Master info and statistics --------------------------------------- */

typedef struct reign_master {
    char *instance_id;  /* holder's instance ID */
    char *metadata;     /* holder's metadata ("" if none) */
    uint64_t term;      /* holder's term */
} reign_master;

REIGN_EXTERN void reign_master_free(reign_master *master);

/* Who is master of the election's resource, asked of the backend now
 * (blocks, bounded by op_timeout_ms). REIGN_ENOMASTER if nobody. */
REIGN_EXTERN int reign_election_current_master(reign_election *election, reign_master **out);

/* The same for any resource ID, without an election. */
REIGN_EXTERN int reign_factory_current_master(reign_factory *factory, const char *resource_id,
                                              reign_master **out);

/* Read many resources in one backend round trip. out is an array of n
 * pointers: out[i] is the master of ids[i] (free each with
 * reign_master_free) or NULL if it has none. On failure nothing is set. */
REIGN_EXTERN int reign_factory_read_masters(reign_factory *factory, const char *const *ids,
                                            size_t n, reign_master **out);

typedef struct reign_stats {
    uint64_t batches;        /* backend round trips (execute calls) */
    uint64_t ops_acquire, ops_renew, ops_release, ops_read;
    uint64_t op_errors;      /* ops that failed (backend errors) */
    uint64_t notifications;  /* wake-ups from the backend's notification fd */
    uint64_t renew_batches;  /* batches that carried at least one RENEW */
    uint64_t gained, lost;   /* mastership transitions (of resources: not the member slot) */
    size_t masterships;      /* resources currently held (the member slot is not counted) */
} reign_stats;

REIGN_EXTERN int reign_factory_stats(reign_factory *factory, reign_stats *out);

typedef struct reign_health {
    bool healthy;                /* backend answered lately and renewals are on time */
    int64_t ms_since_backend_ok; /* since the last batch the backend answered */
    int64_t ms_since_renew_ok;   /* since the last successful ACQUIRE/RENEW; -1 never */
    size_t masterships;
    int last_error_status;       /* status of the last failed batch, REIGN_OK if none */
} reign_health;

/* Healthy = the last batch reached the backend (or none failed since the
 * last that did), while masterships are held a renewal succeeded within
 * the TTL, and ACQUIREs are not being refused one by one while the backend
 * answers (file:// out of descriptors: last_error_status is then that
 * ACQUIRE's status, until one is answered or none failed for 60 s). A factory with no elections sends nothing, so it stays
 * healthy as long as it was at open. */
REIGN_EXTERN int reign_factory_health(reign_factory *factory, reign_health *out);

/* Write the factory's metrics in the Prometheus text exposition format
 * (version 0.0.4): masterships, transitions, ops and errors by kind, a batch
 * round-trip histogram, seconds since the last successful renewal, and the
 * term of each held resource — at most REIGN_METRICS_MAX_TERMS of them, in
 * resource order, so the number of series stays bounded. Blocks briefly. */
#define REIGN_METRICS_MAX_TERMS 100
REIGN_EXTERN int reign_metrics_write(reign_factory *factory, FILE *out);

/* ---- 4b. Membership ------------------------------------------------------ */

/* A joined factory holds a lease on one member slot, renewed with its other
 * leases, and reads the occupied slots (and a few more) every refresh
 * interval: every live instance sees the others. A member's weight comes
 * from a "weight=N" token in its metadata (default 1). Slots are resources
 * named "_reign/member/<k>": IDs starting with "_reign/" are reserved. An
 * instance that finds every slot taken stands by (campaigns for nothing)
 * until one frees. Every instance of a fleet should use the same slots. */
#define REIGN_MEMBERSHIP_CONFIG_VERSION 1
#define REIGN_MEMBERSHIP_DEFAULT_SLOTS 1024
#define REIGN_MEMBERSHIP_MAX_SLOTS 4096
typedef struct reign_membership_config {
    unsigned version;            /* REIGN_MEMBERSHIP_CONFIG_VERSION */
    unsigned slots;              /* most members at once, up to 4096; 0: 1024 */
    int64_t refresh_interval_ms; /* 0: min(ttl/3, 1000) */
    int64_t stabilization_ms;    /* seen this long before counted; 0: 2 × ttl */
} reign_membership_config;

#define REIGN_MEMBERSHIP_CONFIG_INIT {REIGN_MEMBERSHIP_CONFIG_VERSION, 0, 0, 0}

typedef struct reign_member {
    char *instance_id;
    char *metadata;
    uint32_t weight;
    int64_t seen_ms;  /* monotonic ms when this instance first saw it */
    bool stable;      /* seen for the stabilization time (self always) */
    bool self;
} reign_member;

/* Register this instance and watch the others (starts a refresher thread).
 * Blocks for the first read. Joining twice is OK. */
REIGN_EXTERN int reign_factory_join(reign_factory *factory, const reign_membership_config *config);
/* Give the slot back at once and stop watching. reign_factory_close leaves too. */
REIGN_EXTERN int reign_factory_leave(reign_factory *factory);

/* Live members sorted by instance ID: the joined view, or — if this factory
 * has not joined — one read of the slots (blocks). Free with
 * reign_members_free. */
REIGN_EXTERN int reign_factory_members(reign_factory *factory, reign_member **out, size_t *n_out);
REIGN_EXTERN void reign_members_free(reign_member *members, size_t n);

/* Called on the refresher thread when the member set or metadata changes. */
typedef void (*reign_members_fn)(reign_factory *factory, void *payload);
REIGN_EXTERN int reign_factory_on_members(reign_factory *factory, reign_members_fn fn,
                                          void *payload);

/* ---- 4c. Observers --------------------------------------------------------- */

/* An observer watches the master of some resources — a list, a prefix, or
 * both — and reports every change: a new holder, a new term, new metadata,
 * or none. Changes are pushed by the backend's notification source where it
 * has one (redis pub/sub, PostgreSQL LISTEN/NOTIFY, the etcd watch, inotify
 * on file://, the store itself on mem://): a notification names the
 * resource, the observer reads it (one batched READ through the engine) and
 * compares. Where the backend pushes nothing (s3://, noop://, or while a
 * backend's subscriber link is down) every resource is read each
 * poll_interval_ms. A lease that ends without anyone writing (a holder that
 * crashed) is read again when its backend-reported remaining time runs out,
 * so "none" follows an expiry promptly. Missed notifications are repaired by
 * reading everything: when a backend says it lost track (a reconnect, an
 * overflow) and when its notification source comes back. With push, a full
 * read also runs every repair_interval_ms as a safety net.
 *
 * A prefix observer learns resources from notifications (a backend cannot
 * list resources): it reports a resource under the prefix from its first
 * change after the observer started, plus those of `ids`. Without push it
 * sees only `ids`.
 *
 * Each change of one resource is reported once and in order. Changes too
 * quick for a read (acquire and release between two reads) show as the
 * term jumping. */
typedef struct reign_observer reign_observer;

typedef struct reign_change {
    const char *resource_id; /* valid during the callback / until reign_change_free */
    bool held;               /* false: nobody is master */
    const char *instance_id; /* holder when held, else NULL */
    const char *metadata;    /* holder's metadata when held ("" if none), else NULL */
    uint64_t term;           /* holder's term when held, else the last term seen (0: none seen) */
    int64_t seen_ms;         /* reign_monotonic_ms() when the read that saw it returned */
    bool initial;            /* the first read of this resource, not a change */
} reign_change;

/* Runs on the observer's own thread, one change at a time, without reign
 * locks held. It may call any reign function but reign_observer_free on
 * this observer. */
typedef void (*reign_observer_fn)(reign_observer *observer, const reign_change *change,
                                  void *payload);

#define REIGN_OBSERVER_CONFIG_VERSION 1
typedef struct reign_observer_config {
    unsigned version;            /* REIGN_OBSERVER_CONFIG_VERSION */
    const char *const *ids;      /* resources to watch (copied); may be NULL with n_ids 0 */
    size_t n_ids;
    const char *prefix;          /* also every resource starting with this; NULL: none */
    reign_observer_fn fn;        /* NULL: changes queue for reign_observer_take and the fd */
    void *payload;
    int64_t poll_interval_ms;    /* without push: read all this often; 0: 1000 (min 10) */
    int64_t repair_interval_ms;  /* with push: read all this often anyway; 0: 30000; < 0 never */
} reign_observer_config;

#define REIGN_OBSERVER_CONFIG_INIT {REIGN_OBSERVER_CONFIG_VERSION, NULL, 0, NULL, NULL, NULL, 0, 0}

/* Start observing (starts the observer's thread; its first read reports
 * every listed resource with initial = true). Does not block on the
 * backend. The factory must outlive the observer: reign_factory_close says
 * REIGN_EBUSY while observers are open. */
REIGN_EXTERN int reign_observer_new(reign_factory *factory, const reign_observer_config *config,
                                    reign_observer **out);

/* Stop the thread (waits for a read in flight, bounded by op_timeout_ms, and
 * for a callback running) and free queued changes. NULL is a no-op. Not
 * from this observer's callback. */
REIGN_EXTERN void reign_observer_free(reign_observer *observer);

/* Without a callback: a file descriptor that is readable while changes are
 * queued (an eventfd: poll it, never read it), for an event loop. -1 when
 * the observer has a callback. Owned by the observer. */
REIGN_EXTERN int reign_observer_fd(const reign_observer *observer);

/* Without a callback: take the oldest queued change, waiting up to
 * timeout_ms (0: do not wait; < 0: forever). REIGN_ETIMEDOUT if none came,
 * REIGN_ESTATE if the observer has a callback. Free *out with
 * reign_change_free. At most REIGN_OBSERVER_QUEUE_MAX changes wait; beyond
 * that the oldest are dropped (logged) and the next take reports the
 * resource's latest state anyway. */
#define REIGN_OBSERVER_QUEUE_MAX 65536
REIGN_EXTERN int reign_observer_take(reign_observer *observer, int64_t timeout_ms,
                                     reign_change **out);
REIGN_EXTERN void reign_change_free(reign_change *change);

/* Wait until the observer sees a change of resource_id (or of any of its
 * resources when resource_id is NULL) made at or after after_ms
 * (reign_monotonic_ms time; seen_ms >= after_ms), for up to timeout_ms (< 0:
 * forever). REIGN_OK with *out (the latest state, free with
 * reign_change_free; out may be NULL), REIGN_ETIMEDOUT, REIGN_EINVAL for a
 * resource the observer does not watch. Works with or without a callback;
 * does not consume queued changes. */
REIGN_EXTERN int reign_observer_wait_change(reign_observer *observer, const char *resource_id,
                                            int64_t after_ms, int64_t timeout_ms,
                                            reign_change **out);

typedef struct reign_observer_status {
    bool pushed;                /* the backend's notifications drive it now */
    int64_t last_change_ms;     /* monotonic ms of the last change seen; -1 none */
    int64_t last_ok_ms;         /* of the last read the backend answered; -1 none */
    unsigned failures;          /* reads in a row that failed */
    int last_error_status;      /* of the last failed read, REIGN_OK if none */
    uint64_t reads;             /* batched reads made */
    uint64_t changes;           /* changes reported */
    size_t resources;           /* resources watched (prefix ones included) */
} reign_observer_status;

REIGN_EXTERN int reign_observer_status_get(reign_observer *observer, reign_observer_status *out);

/* ---- 5. Runner ----------------------------------------------------------- */

/* Drives one election like Trillian's election.Runner:
 *   loop { pause random in [0, pre_election_pause); campaign until master;
 *          tracker set true; every master_check_interval: if not master →
 *          tracker set false, campaign again; once held master_hold_interval,
 *          at each check resign with chance 1/resign_odds through a
 *          resignation the application executes }.
 * Values below the minimums are refused (REIGN_EINVAL naming the field). */
#define REIGN_RUNNER_MIN_PRE_ELECTION_PAUSE_MS 10
#define REIGN_RUNNER_MIN_MASTER_CHECK_INTERVAL_MS 50
#define REIGN_RUNNER_MIN_MASTER_HOLD_INTERVAL_MS 10000

typedef int64_t (*reign_clock_fn)(void *payload);    /* monotonic milliseconds */
typedef uint64_t (*reign_random_fn)(void *payload);  /* uniform 64-bit */

#define REIGN_RUNNER_CONFIG_VERSION 1
typedef struct reign_runner_config {
    unsigned version;                  /* REIGN_RUNNER_CONFIG_VERSION */
    int64_t pre_election_pause_ms;     /* >= 10; default 1000 */
    int64_t master_check_interval_ms;  /* >= 50; default 5000 */
    int64_t master_hold_interval_ms;   /* >= 10000; default 60000 */
    int64_t resign_odds;               /* 0 = never resign; default 1000 */
    reign_clock_fn clock;              /* NULL: CLOCK_MONOTONIC */
    reign_random_fn random;            /* NULL: internal generator */
    void *clock_random_payload;
} reign_runner_config;

#define REIGN_RUNNER_CONFIG_INIT {REIGN_RUNNER_CONFIG_VERSION, 1000, 5000, 60000, 1000, NULL, NULL, NULL}

/* Check a runner config: REIGN_OK or REIGN_EINVAL naming the field. */
REIGN_EXTERN int reign_runner_config_check(const reign_runner_config *config);

typedef struct reign_runner reign_runner;
typedef struct reign_resignation reign_resignation;
typedef struct reign_tracker reign_tracker;

/* Called when a resignation is due. The application calls
 * reign_resignation_execute once no master-only work is in flight (now or
 * later, from any thread). Without a handler the runner resigns at once. */
typedef void (*reign_resign_fn)(reign_runner *runner, reign_resignation *resignation,
                                void *payload);

/* tracker may be NULL. The runner does not own the election or tracker. It
 * takes the election's callback slot (reign_election_set_callback) to wake
 * at once on gained/lost; free gives it back. Start from
 * REIGN_RUNNER_CONFIG_INIT: a 0 field is below its minimum, not a default. */
REIGN_EXTERN int reign_runner_new(reign_election *election, reign_tracker *tracker,
                                  const reign_runner_config *config, reign_runner **out);
REIGN_EXTERN int reign_runner_set_resign_handler(reign_runner *runner, reign_resign_fn fn,
                                                 void *payload);

/* One step at time `now_ms` (the config's clock): performs due actions (start
 * campaigning, update the tracker, offer a resignation) without blocking and
 * returns in *next_wake_ms when it wants the next step. Not thread-safe per
 * runner: one thread steps a given runner. */
REIGN_EXTERN int reign_runner_step(reign_runner *runner, int64_t now_ms, int64_t *next_wake_ms);

/* Step in a loop until reign_runner_stop. Blocks. */
REIGN_EXTERN int reign_runner_run(reign_runner *runner);
/* Make run return soon; safe from any thread or a callback. */
REIGN_EXTERN void reign_runner_stop(reign_runner *runner);
/* Free; the runner must not be running. NULL is a no-op. Does not resign. */
REIGN_EXTERN void reign_runner_free(reign_runner *runner);

/* Resign now (blocks like reign_election_resign) and free the resignation.
 * Executing a resignation of a runner that is no longer master only frees it. */
REIGN_EXTERN int reign_resignation_execute(reign_resignation *resignation);

/* ---- 6. Master tracker ---------------------------------------------------- */

/* Called once per transition of an ID (not for repeated equal sets), from
 * the thread that called reign_tracker_set, without the tracker's lock held. */
typedef void (*reign_tracker_fn)(const char *resource_id, bool is_master, void *payload);

REIGN_EXTERN int reign_tracker_new(const char *const *ids, size_t n_ids, reign_tracker_fn fn,
                                   void *payload, reign_tracker **out);
REIGN_EXTERN void reign_tracker_free(reign_tracker *tracker);

/* Record mastership of an ID; an untracked ID becomes tracked. */
REIGN_EXTERN int reign_tracker_set(reign_tracker *tracker, const char *resource_id,
                                   bool is_master);
/* Number of IDs currently held. */
REIGN_EXTERN size_t reign_tracker_count(reign_tracker *tracker);

/* Sorted arrays of strings, NULL-terminated; free with reign_strv_free. */
REIGN_EXTERN int reign_tracker_held(reign_tracker *tracker, char ***out);
REIGN_EXTERN int reign_tracker_ids(reign_tracker *tracker, char ***out);
REIGN_EXTERN void reign_strv_free(char **strv);

/* "a b [c] d" style summary: every ID, held ones in brackets. Caller frees
 * with free(). */
REIGN_EXTERN char *reign_tracker_string(reign_tracker *tracker);

typedef struct reign_held_info {
    char *resource_id;
    int64_t since_ms;  /* monotonic ms when it became held */
} reign_held_info;

/* Held IDs, sorted, with since-when; free with reign_held_info_free. */
REIGN_EXTERN int reign_tracker_held_info(reign_tracker *tracker, reign_held_info **out,
                                         size_t *n_out);
REIGN_EXTERN void reign_held_info_free(reign_held_info *info, size_t n);

/* ---- 7. Shard manager ------------------------------------------------------- */

/* Runs one runner per resource ID on a few threads (not a thread per
 * resource), feeding a tracker, to spread work over instances. The set of
 * IDs may change while the shard runs (reign_shard_add, _remove, _set).
 *
 * Balancing (the default): the shard joins the factory's membership
 * (reign_factory_join) and every instance computes the same fair-share
 * assignment from the stable members and its own ID set — rendezvous
 * hashing with bounded loads, at most ⌈R·w/W⌉ resources per instance of
 * weight w (a "weight=N" token in the metadata, N ≥ 0; 0 takes nothing), a
 * resource's preferred live instances first. An instance campaigns only
 * for its own targets; it gives up a resource that is no longer its target
 * once it has held it for master_hold_interval (at once if it campaigned
 * for it before the stable members grew: taken on a smaller view, as when
 * a fleet starts together) and the assignment has
 * been stable for two membership refreshes, at most max_moves_per_check per
 * check; a resource nobody masters is picked up by a probe every probe
 * interval, so nothing stays masterless if another instance fails to take
 * it. With balance = false, every instance campaigns for every resource and
 * only the runners' random resign odds move them (Trillian's way).
 *
 * Handover: every voluntary end of a mastership (a balancing move, removal,
 * drain, stop, the runner's resign odds) is a revocation. The application
 * is told first — on_change(id, false, term) and REIGN_SHARD_REVOKED — while
 * the lease is still held and renewed, so nobody else can be master yet;
 * the shard releases the lease only once the application has stopped: when
 * the callback returns, or, if on_event returned REIGN_SHARD_LATER, when it
 * calls reign_shard_revoke_done. After revoke_timeout_ms the lease is
 * released anyway and REIGN_SHARD_LOST says REIGN_SHARD_REASON_REVOKE_TIMEOUT.
 * A loss nobody can warn of (the local deadline passed, the backend says
 * the lease is gone) is reported as REIGN_SHARD_LOST as soon as it is seen.
 *
 * Callbacks run on shard threads, one resource's events in order; they may
 * call any shard function but reign_shard_stop, _drain and _free. */
typedef void (*reign_shard_fn)(const char *resource_id, bool is_master, uint64_t term,
                               void *payload);

typedef enum reign_shard_event_kind {
    REIGN_SHARD_GAINED = 1,   /* master with `term`: start working */
    REIGN_SHARD_REVOKED = 2,  /* a voluntary end: stop, then acknowledge; the lease is still held */
    REIGN_SHARD_LOST = 3,     /* no longer master (after a revocation: the lease is released) */
} reign_shard_event_kind;

typedef enum reign_shard_reason {
    REIGN_SHARD_REASON_NONE = 0,           /* GAINED */
    REIGN_SHARD_REASON_BALANCE = 1,        /* the balancer moves it to another instance */
    REIGN_SHARD_REASON_REMOVED = 2,        /* reign_shard_remove or reign_shard_set */
    REIGN_SHARD_REASON_DRAIN = 3,          /* reign_shard_drain */
    REIGN_SHARD_REASON_STOP = 4,           /* reign_shard_stop or reign_shard_free */
    REIGN_SHARD_REASON_RESIGN_ODDS = 5,    /* the runner's random resignation */
    REIGN_SHARD_REASON_EXPIRED = 6,        /* LOST unwarned: the local deadline passed */
    REIGN_SHARD_REASON_BACKEND = 7,        /* LOST unwarned: the backend says it is not ours */
    REIGN_SHARD_REASON_REVOKE_TIMEOUT = 8, /* LOST: released before the application acknowledged */
} reign_shard_reason;

typedef struct reign_shard reign_shard;

typedef struct reign_shard_event {
    reign_shard_event_kind kind;
    const char *resource_id;    /* valid during the call */
    uint64_t term;              /* the mastership's fencing term */
    reign_shard_reason reason;  /* REVOKED and LOST: why */
} reign_shard_event;

/* on_event's answer to REIGN_SHARD_REVOKED (ignored for the other kinds). */
#define REIGN_SHARD_DONE 0   /* stopped already: release now */
#define REIGN_SHARD_LATER 1  /* still stopping: reign_shard_revoke_done will say when */

typedef int (*reign_shard_event_fn)(reign_shard *shard, const reign_shard_event *event,
                                    void *payload);

#define REIGN_SHARD_CONFIG_VERSION 2
typedef struct reign_shard_config {
    unsigned version;            /* REIGN_SHARD_CONFIG_VERSION */
    reign_runner_config runner;  /* per-resource runner settings */
    unsigned threads;            /* stepping threads; 0: 2 */
    reign_shard_fn on_change;    /* gained, and revoked-or-lost (once); may be NULL */
    void *payload;               /* for on_change and on_event */
    bool balance;                /* fair-share balancing (INIT: true) */
    unsigned max_moves_per_check; /* balancing moves started per check; 0: 8 */
    int64_t probe_interval_ms;   /* non-target resources probed this often; 0: 3 × ttl */
    reign_membership_config membership;
    /* version 2 */
    reign_shard_event_fn on_event; /* gained / revoked / lost with reasons; may be NULL */
    int64_t revoke_timeout_ms;   /* release a revoked lease after this anyway; 0: 10000 */
    unsigned drain_parallel;     /* revocations in flight while draining; 0: 16 */
} reign_shard_config;

/* Shards default to no random resignations: balancing moves resources. */
#define REIGN_SHARD_RUNNER_CONFIG_INIT {REIGN_RUNNER_CONFIG_VERSION, 1000, 5000, 60000, 0, NULL, NULL, NULL}
#define REIGN_SHARD_CONFIG_INIT                                                              \
    {REIGN_SHARD_CONFIG_VERSION, REIGN_SHARD_RUNNER_CONFIG_INIT, 0, NULL, NULL, true, 0, 0, \
     REIGN_MEMBERSHIP_CONFIG_INIT, NULL, 0, 0}

/* ids may be NULL with n_ids 0 (add them later). */
REIGN_EXTERN int reign_shard_new(reign_factory *factory, const char *const *ids, size_t n_ids,
                                 const reign_shard_config *config, reign_shard **out);
REIGN_EXTERN int reign_shard_start(reign_shard *shard);
/* Revoke every held resource at once (REIGN_SHARD_REASON_STOP), wait for
 * the acknowledgements (each bounded by revoke_timeout_ms), release, stop
 * the threads. Blocks. For a handover without a gap, drain first. */
REIGN_EXTERN int reign_shard_stop(reign_shard *shard);
/* Stops if running, then frees. NULL is a no-op. */
REIGN_EXTERN void reign_shard_free(reign_shard *shard);
/* The shard's tracker (owned by the shard). */
REIGN_EXTERN reign_tracker *reign_shard_tracker(reign_shard *shard);

/* Add a resource, running or not: it campaigns at once if it is ours.
 * Adding a resource the shard has is OK (and cancels a pending removal).
 * REIGN_EBUSY if another election of the factory has the ID. O(1). */
REIGN_EXTERN int reign_shard_add(reign_shard *shard, const char *resource_id);
/* Remove a resource: revoke (REIGN_SHARD_REASON_REMOVED), release, forget.
 * Returns at once; the shard thread does the rest. REIGN_EINVAL if the
 * shard does not have it. O(1). */
REIGN_EXTERN int reign_shard_remove(reign_shard *shard, const char *resource_id);
/* Make the set exactly ids[0..n): add what is missing, remove the rest. */
REIGN_EXTERN int reign_shard_set(reign_shard *shard, const char *const *ids, size_t n);

/* True while this instance is master of the resource and has not been
 * told REVOKED for it: "may master-only work start now?". No I/O; false
 * at the local deadline, like reign_election_is_master. */
REIGN_EXTERN bool reign_shard_is_master(reign_shard *shard, const char *resource_id);
/* The fencing term while reign_shard_is_master; REIGN_ENOTMASTER else. */
REIGN_EXTERN int reign_shard_term(reign_shard *shard, const char *resource_id, uint64_t *out);
/* The local deadline of the mastership reign_shard_is_master reports, on
 * the reign_monotonic_ms clock: until then nobody else can be master (the
 * backend's lease runs longer). For a watchdog outside this process (the
 * CLI's guard) that must stop work when renewals stop arriving. Moves
 * forward with every renewal, also while a revocation waits for its
 * acknowledgement (the lease is still held). REIGN_ENOTMASTER when not
 * master.
 * Thread-safe, no I/O. */
REIGN_EXTERN int reign_shard_deadline_ms(reign_shard *shard, const char *resource_id,
                                         int64_t *out);
/* Acknowledge a revocation answered with REIGN_SHARD_LATER: the work under
 * `term` has stopped, release the lease. REIGN_ESTATE if no revocation of
 * that term is pending (already released, e.g. after revoke_timeout_ms). */
REIGN_EXTERN int reign_shard_revoke_done(reign_shard *shard, const char *resource_id,
                                         uint64_t term);

/* Hand every resource over and take none: leave the membership (so the
 * others' balancers count this instance as weight 0 and target its
 * resources), then revoke held resources drain_parallel at a time, each
 * released once acknowledged, for its new target to take. Blocks until
 * nothing is held (REIGN_OK) or timeout_ms passes (REIGN_ETIMEDOUT; the
 * drain goes on until stop). timeout_ms < 0 waits forever; 0 only starts
 * it. A drained shard stays drained until it is stopped and started. */
REIGN_EXTERN int reign_shard_drain(reign_shard *shard, int64_t timeout_ms);

/* The assignment as this instance sees it, without I/O: the instance the
 * balancer gives the resource to (caller frees with free()), REIGN_ENOMASTER
 * if it has no assignment yet (just added, or no members seen), REIGN_EINVAL
 * for an ID the shard does not have. Without balancing every instance is
 * assigned everything: the answer is this instance. The truth is
 * reign_factory_read_masters. */
REIGN_EXTERN int reign_shard_assigned(reign_shard *shard, const char *resource_id,
                                      char **instance_out);
/* This instance's targets, sorted, NULL-terminated; free with reign_strv_free. */
REIGN_EXTERN int reign_shard_targets(reign_shard *shard, char ***out);

/* Prefer these instances for a resource, in order: the first live one gets
 * it when it is free or when its holder resigns (balancing only). Copies
 * the IDs. Any time; takes effect at the next assignment. */
REIGN_EXTERN int reign_shard_prefer(reign_shard *shard, const char *resource_id,
                                    const char *const *instance_ids, size_t n);

typedef struct reign_shard_balance {
    size_t held;        /* resources this instance holds */
    size_t target;      /* resources the assignment gives it */
    size_t fair_share;  /* its capacity ⌈R·w/W⌉ */
    size_t members;     /* stable members counted */
    size_t resources;
} reign_shard_balance;

REIGN_EXTERN int reign_shard_balance_info(reign_shard *shard, reign_shard_balance *out);

/* ---- 8. Logging -------------------------------------------------------------- */

/* The default logger: "2026-11-25T19:35:21.123Z level component message" to
 * stderr for levels at or below $REIGN_LOG (error|warn|info|debug; default warn). */
REIGN_EXTERN void reign_log_stderr(int level, const char *component, const char *message,
                                   void *payload);

/* Milliseconds of the clock reign uses for deadlines: CLOCK_BOOTTIME, which
 * is monotonic and counts time the machine spent suspended. */
REIGN_EXTERN int64_t reign_monotonic_ms(void);

/* ---- 9. Initialisers for other languages ------------------------------------ */

/* The *_INIT macros are invisible to ctypes, cffi or cgo. These functions
 * fill a struct with the same defaults, given the caller's sizeof of it: a
 * binding whose mirrored struct has another size gets REIGN_EINVAL naming
 * both sizes (and nothing written), instead of memory corrupted silently.
 * C callers may use them too: reign_shard_config_init(&c, sizeof c). */
REIGN_EXTERN int reign_options_init(reign_options *out, size_t size);
REIGN_EXTERN int reign_runner_config_init(reign_runner_config *out, size_t size);
REIGN_EXTERN int reign_membership_config_init(reign_membership_config *out, size_t size);
REIGN_EXTERN int reign_shard_config_init(reign_shard_config *out, size_t size);
REIGN_EXTERN int reign_observer_config_init(reign_observer_config *out, size_t size);

/* sizeof the named public struct in this library ("reign_options",
 * "reign_runner_config", "reign_membership_config", "reign_shard_config",
 * "reign_master", "reign_member", "reign_event", "reign_stats",
 * "reign_health", "reign_held_info", "reign_shard_balance", "reign_observer_config",
 * "reign_change", "reign_observer_status", "reign_leader_status"); 0 for any other
 * name. A binding checks its layouts once at load. */
REIGN_EXTERN size_t reign_struct_size(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* REIGN_REIGN_H */
