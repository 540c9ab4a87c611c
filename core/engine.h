/* The lease engine: one thread per factory that batches lease operations,
 * keeps every mastership's local deadline and tells elections what happened.
 * factory.c and election.c are its public faces; they share these structs.
 *
 * The engine knows elections, not what they are for: the core's own
 * clients (membership) mark their elections internal and hear of freed
 * resources through a released hook. It is driven in steps (gather,
 * execute, apply, deliver, finish) by its thread, or by a test on a fake
 * clock (reign_engine_open_stepped). */
#ifndef REIGN_CORE_ENGINE_H
#define REIGN_CORE_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "log.h"
#include "reign/backend.h"
#include "uri.h"

typedef struct read_request read_request;
typedef struct engine_call engine_call;

/* A function to run on the engine thread between batches (a backend
 * method other than execute, e.g. set_metadata): queued by
 * reign_engine_run_call, run without f->mu held. */
struct engine_call {
    void (*fn)(reign_factory *f, engine_call *call);
    void *arg;
    int status;      /* set by fn */
    char *error;     /* set by fn (malloc'd), the caller frees */
    bool done;
    engine_call *next;
};

struct reign_election {
    reign_factory *factory;
    char *resource;
    size_t resource_len;
    char *shown;             /* the resource made safe for messages (reign_printable) */
    uint64_t hash;
    reign_election_fn callback;  /* set before start; read by the engine */
    void *callback_payload;

    /* The lock-free view is_master and term read. Written only with
     * factory->mu held; deadline 0 = not master. The term is stored before
     * the deadline, so a reader that sees the same deadline before and after
     * reading the term has a consistent pair. */
    _Atomic int64_t deadline_ns;
    _Atomic uint64_t term;

    /* Guarded by factory->mu. */
    bool campaigning;        /* wants mastership */
    bool master;             /* holds a lease (belief also needs the deadline) */
    uint64_t held_term;
    reign_mono_ns renew_at;  /* next RENEW when master */
    reign_mono_ns retry_at;  /* next ACQUIRE when campaigning */
    unsigned acquire_errors; /* ACQUIREs in a row that erred: the backoff */
    bool release_pending;    /* a RELEASE of release_term is owed */
    uint64_t release_term;
    /* A RELEASE that failed (the backend erred or timed out) is tried again,
     * at retry_release_at, until retry_release_until (a TTL after the first
     * failure, when the lease has expired anyway): candidates then take
     * over promptly after a blip instead of waiting out the lease. Nobody
     * waits for these retries (resign and close return after the first). */
    bool retry_release;
    reign_mono_ns retry_release_at, retry_release_until;
    bool in_flight;          /* an op for it is in the batch being executed */
    bool closing;            /* close requested */
    bool removed;            /* the engine dropped it: the closer may free */
    bool internal;           /* the core's own (a member slot): not counted in stats */
    bool queued;             /* on factory->pending */
    reign_election *next_pending;
    unsigned waiters;        /* threads inside reign_election_wait */
    unsigned events_queued;  /* its events on factory->events, not yet delivered */
    reign_election *next_in_bucket;
    reign_election *prev, *next; /* factory's list */
    /* What this election has heard of its resource's master, for
     * reign_election_status (core/election_status.c); guarded by
     * factory->mu. */
    struct {
        bool known, held;
        char *holder;        /* malloc'd, when held */
        uint64_t term;
        int64_t changed_ms, heard_ms; /* reign_monotonic_ms; -1 never (0 = unset) */
        unsigned failures;
        int last_status;
        char *last_error;    /* malloc'd "<OP>: <cause>" while failing, else NULL */
    } seen;
    bool release_failed;     /* the last RELEASE sent for it failed (resign says so) */
    bool resign_reports;     /* a resign dropped its mastership and reports the RELEASE */
};

typedef struct engine_event {
    reign_election *election;
    reign_event event;
} engine_event;

struct read_request {
    const char *resource;
    size_t resource_len;
    bool done;
    int status;
    reign_master *master;
    char *error;
    read_request *next;
    int64_t remaining_ms;  /* READ OK: lease time left if the backend knows, else -1 */
};

/* Upper bounds (seconds) of the batch round-trip histogram buckets. */
#define ENGINE_LATENCY_BUCKETS 14
extern const double reign_engine_latency_bounds[ENGINE_LATENCY_BUCKETS];

/* What metrics and health read; guarded by factory->mu. */
typedef struct engine_metrics {
    uint64_t op_errors[REIGN_OP_READ + 1];        /* by reign_op_kind */
    uint64_t latency_buckets[ENGINE_LATENCY_BUCKETS + 1]; /* last = +Inf */
    uint64_t latency_count;
    double latency_sum_s;
    reign_mono_ns opened_at;
    reign_mono_ns last_ok_batch;      /* execute returned REIGN_OK */
    reign_mono_ns last_failed_batch;  /* execute failed as a whole */
    int last_failed_status;
    reign_mono_ns last_renew_ok;      /* last RENEW or ACQUIRE that succeeded */
    /* ACQUIREs that erred while the batch went through (a backend out of
     * descriptors, say): health says so, and one warning per episode. */
    reign_mono_ns last_acquire_answer; /* last ACQUIRE answered OK or HELD */
    reign_mono_ns last_acquire_error;
    int last_acquire_status;
    bool acquire_warned;
    bool outage_warned;               /* a failed batch was logged at WARN */
} engine_metrics;

struct reign_factory {
    const reign_backend *backend;
    void *state;
    reign_uri uri;
    reign_backend_config cfg;
    reign_logger logger;
    char *instance_id;
    char *metadata;
    int64_t ttl_ms;
    int64_t retry_ms;
    int64_t op_timeout_ms;
    size_t chunk_ops;         /* ops per execute call (ENGINE_CHUNK_OPS) */
    reign_mono_ns belief_ns;  /* ttl × (1 − drift) − margin */
    reign_mono_ns renew_ns;   /* renewal period, about ttl/3 */

    pthread_t thread;
    bool thread_started;
    int wake_fd;              /* eventfd: user threads poke the engine */

    pthread_mutex_t mu;       /* guards everything below and the elections' guarded fields */
    pthread_cond_t changed;   /* broadcast after every state change */
    bool stopping;
    reign_election *elections; /* list head */
    size_t n_elections;
    reign_election **buckets;  /* resource → election */
    size_t n_buckets;
    read_request *reads;       /* pending READ requests */
    engine_event *events;      /* to deliver on the engine thread */
    size_t n_events, cap_events;
    bool retry_all;            /* a notification without a resource */
    /* Elections owing a RELEASE or closing: the engine settles these
     * without walking every election, so a stop or a run of closes is
     * linear in the resources. next_walk is when the full walk (renewals,
     * campaigns, expiries) is next due; 0 = at once. */
    reign_election *pending;
    reign_mono_ns next_walk;
    reign_election *delivering_to; /* whose callback the engine is calling */
    reign_stats stats;
    engine_metrics metrics;
    struct members_state *members; /* non-NULL once joined (core/members.c only) */
    const struct reign_engine_client *clients[4]; /* guarded by mu */
    bool stepped;              /* no engine thread: a test drives the steps */
    /* Observers (core/observe.c). The list is guarded by mu; the rest
     * belongs to the engine thread, but observe_push, which observers read. */
    reign_observer *observers;
    engine_call *calls;        /* guarded by mu: to run on the engine thread */
    int observe_told;          /* what backend->observe was last told (0/1) */
    int observe_last_fd;       /* notify_fd seen last (-2: never asked) */
    _Atomic int observe_push;  /* 1 while the backend pushes every change */
};

/* Longest wait before retrying an ACQUIRE that keeps erring, and how long
 * health remembers such an error: an ACQUIRE error doubles the wait
 * (from retry_ms) up to this. */
#define ENGINE_ACQUIRE_BACKOFF_MAX_MS 30000

/* A batch goes to the backend in chunks of this many ops, each with its
 * own op timeout (run_chunks in engine.c). Sized so that the slowest
 * backend (etcd: 1.6 s for 100,000 renewals) answers a chunk in well
 * under a second. */
#define ENGINE_CHUNK_OPS 4096

/* Tests only: when set, called instead of the backend's execute. */
extern int (*_Atomic reign_engine_execute_hook)(reign_factory *f, reign_batch *batch);

/* With f->mu held, as each result of e's op is applied at `now`: what it
 * says of the master (core/election_status.c). */
void reign_election_status_note(reign_factory *f, reign_election *e, const reign_op *op,
                                reign_mono_ns now);
/* Free what the status holds (at close). */
void reign_election_status_free(reign_election *e);

/* With f->mu held: "; last ACQUIRE: <cause>" while e's ops fail, or
 * "; held by <instance> (term <t>)" when another holds it, into buf ("" if
 * neither): why a wait for mastership ran out. */
void reign_election_status_why(const reign_factory *f, const reign_election *e, char *buf,
                               size_t size);

/* Start/stop the engine thread of an opened factory. */
int reign_engine_start(reign_factory *f);
void reign_engine_stop(reign_factory *f);

/* Wake the engine (from any thread). */
void reign_engine_wake(reign_factory *f);

/* With f->mu held: queue an event for the engine thread to deliver. */
void reign_engine_queue_event(reign_factory *f, reign_election *e, reign_event_kind kind,
                              uint64_t term, reign_lost_reason reason);

/* With f->mu held: end belief in the current mastership now and owe a
 * RELEASE for it. */
void reign_engine_drop_mastership(reign_factory *f, reign_election *e, reign_lost_reason reason);

/* With f->mu held: e owes a RELEASE or is closing: settle it at the next
 * gather. */
void reign_engine_enqueue(reign_factory *f, reign_election *e);

/* With f->mu held: something of e may be due now (a campaign started). */
void reign_engine_walk_soon(reign_factory *f);

/* True when called on f's engine thread (whose callbacks must not block on it). */
bool reign_engine_is_engine_thread(const reign_factory *f);

/* Run call->fn on the engine thread and wait until it did (not from the
 * engine thread). */
void reign_engine_run_call(reign_factory *f, engine_call *call);

/* Queue READs and wait for all their answers (not from the engine thread). */
void reign_engine_read_many(reign_factory *f, read_request *reqs, size_t n);

/* The election index (f->mu held): find by resource; add (REIGN_EBUSY if
 * the resource has one, REIGN_ECLOSED while stopping, with a message);
 * remove. */
reign_election *reign_engine_find(reign_factory *f, const char *resource, size_t len,
                                  uint64_t hash);
int reign_engine_add(reign_factory *f, reign_election *e);
void reign_engine_remove(reign_factory *f, reign_election *e);

/* e's deadline (0: not master) and term, read as one consistent pair
 * without the lock; the caller compares the deadline with its own now. */
void reign_engine_view(const reign_election *e, reign_mono_ns *deadline, uint64_t *term);

/* A client of the engine: the core's own users of elections (membership,
 * observers) hear what the engine hears, and the engine knows none of them. */
typedef struct reign_engine_client {
    /* With f->mu held: a notification named these resources as maybe freed
     * or changed (all: it could not tell which). May be NULL. */
    void (*notified)(reign_factory *f, void *ctx, char *const *names, const size_t *lens,
                     size_t n, bool all);
    /* On the engine thread, no lock held, before each wait and after each
     * drain: the notification fd (-1: none now). May be NULL; a client
     * with one stays attached for the factory's life. */
    void (*fd_seen)(reign_factory *f, void *ctx, int notify_fd);
    void *ctx;
} reign_engine_client;

/* With f->mu held: attach c (again: no-op; REIGN_ENOMEM when 4 are) or
 * detach it. c must live while attached. */
int reign_engine_attach(reign_factory *f, const reign_engine_client *c);
void reign_engine_detach(reign_factory *f, const reign_engine_client *c);

/* ---- The step interface ------------------------------------------------
 * One engine turn is: gather at now → execute b.ops (in chunks of
 * reign_engine_chunk_ops) → apply each chunk's results → deliver the
 * events → finish. The engine thread is a poll loop around these; a test
 * calls them itself with its own clock and answers the ops itself. Each
 * takes f->mu itself; none does I/O. */
typedef struct reign_engine_batch {
    reign_op *ops;            /* to execute, in gather order */
    size_t n;
    /* engine.c's own */
    reign_election **owners;  /* NULL for READ ops */
    read_request **reads;     /* the READ request of a READ op */
    size_t cap;
    reign_election **removals; /* closed: marked removed at finish */
    size_t n_removals, cap_removals;
    reign_op *spare_ops;       /* cap each: grouping by kind swaps them in */
    reign_election **spare_owners;
    read_request **spare_reads;
} reign_engine_batch;

/* End beliefs whose deadline passed at now and gather what is due into b
 * (empty on entry), grouped by kind as execute wants it; return when
 * anything is next due. */
reign_mono_ns reign_engine_gather(reign_factory *f, reign_mono_ns now, reign_engine_batch *b);

/* Apply ops [from, from + n) of b (errors get the message's shape from
 * their cause): rc is what execute returned, t_sent
 * when the chunk was gathered or sent (deadlines count from it), t_io
 * when its I/O began (latency), now when it answered. */
void reign_engine_apply(reign_factory *f, reign_engine_batch *b, size_t from, size_t n, int rc,
                        reign_mono_ns t_sent, reign_mono_ns t_io, reign_mono_ns now);

/* Ops per execute call. */
size_t reign_engine_chunk_ops(reign_factory *f);

/* The reign_batch of ops [from, from + n) of b, sent at now (its deadline
 * is an op timeout later). */
void reign_engine_chunk(reign_factory *f, reign_engine_batch *b, size_t from, size_t n,
                        reign_mono_ns now, reign_batch *out);

/* Call the callbacks of the queued events (no lock held while calling). */
void reign_engine_deliver(reign_factory *f);

/* After a turn: free the ops' answers, empty b and let closers of removed
 * elections go. */
void reign_engine_finish(reign_factory *f, reign_engine_batch *b);
void reign_engine_batch_free(reign_engine_batch *b);

/* A notification named these resources as maybe freed (all: cannot tell
 * which): campaigns for them retry now, observers read them. */
void reign_engine_notified(reign_factory *f, char *const *names, const size_t *lens, size_t n,
                           bool all);

/* Tests: open a factory whose engine has no thread, over any backend
 * (a scripted one). The test drives the steps; user calls that wait for
 * the engine (reign_election_wait, resign, a close of an election the
 * engine still holds, reads) would wait forever and must not be made. */
int reign_engine_open_stepped(const reign_backend *backend, const char *uri,
                              const reign_options *options, reign_factory **out);

/* REIGN_OK for a valid resource ID (1..REIGN_RESOURCE_ID_MAX bytes), else
 * REIGN_EINVAL with a message. */
int reign_resource_id_check(const char *resource_id);

/* reign_election_new without the refusal of REIGN_RESERVED_PREFIX: for the
 * core's own elections (the member slots of members.c). */
int reign_election_new_internal(reign_factory *f, const char *resource_id,
                                reign_election **out);

#endif
