/* The lease engine thread of a factory.
 *
 * Each iteration of the loop:
 *   1. gather (under f->mu): end beliefs whose deadline passed, then collect
 *      the ops that are due — RELEASE owed, RENEW at about ttl/3 (renewals
 *      due soon ride along, so a tick costs one round trip), ACQUIRE of
 *      campaigning elections, READ requests — and mark them in flight;
 *   2. deliver queued events to callbacks (no lock held);
 *   3. execute the batch on the backend (no lock held: is_master never waits
 *      for I/O, it reads the atomic deadline);
 *   4. apply the results (under f->mu), deliver events, wake waiters;
 *   5. poll the wake-up fd and the backend's notification fd until the
 *      next due time.
 * This thread is the only one that calls the backend (DESIGN.md §3).
 */
#include "engine.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "error.h"

typedef reign_engine_batch batch;

reign_election *reign_engine_find(reign_factory *f, const char *resource, size_t len,
                                  uint64_t hash)
{
    for (reign_election *e = f->buckets[hash % f->n_buckets]; e; e = e->next_in_bucket)
        if (e->hash == hash && e->resource_len == len && memcmp(e->resource, resource, len) == 0)
            return e;
    return NULL;
}

/* Grow the index so lookups stay O(1) with many thousands of resources. */
static void index_grow(reign_factory *f)
{
    if (f->n_elections < f->n_buckets)
        return;
    size_t n = f->n_buckets * 4;
    reign_election **buckets = calloc(n, sizeof *buckets);
    if (buckets == NULL)
        return; /* longer chains, still correct */
    for (reign_election *e = f->elections; e; e = e->next) {
        e->next_in_bucket = buckets[e->hash % n];
        buckets[e->hash % n] = e;
    }
    free(f->buckets);
    f->buckets = buckets;
    f->n_buckets = n;
}

int reign_engine_add(reign_factory *f, reign_election *e)
{
    if (f->stopping)
        return reign_error_set(REIGN_ECLOSED, "election_new: factory is closing");
    if (reign_engine_find(f, e->resource, e->resource_len, e->hash) != NULL)
        return reign_error_set(REIGN_EBUSY, "election_new: resource already has an election in "
                                            "this factory");
    index_grow(f);
    size_t b = e->hash % f->n_buckets;
    e->next_in_bucket = f->buckets[b];
    f->buckets[b] = e;
    e->next = f->elections;
    if (f->elections != NULL)
        f->elections->prev = e;
    f->elections = e;
    f->n_elections++;
    return REIGN_OK;
}

void reign_engine_remove(reign_factory *f, reign_election *e)
{
    reign_election **p = &f->buckets[e->hash % f->n_buckets];
    while (*p != e)
        p = &(*p)->next_in_bucket;
    *p = e->next_in_bucket;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        f->elections = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    f->n_elections--;
}

bool reign_engine_is_engine_thread(const reign_factory *f)
{
    return f->thread_started && pthread_equal(pthread_self(), f->thread);
}

#define N_CLIENTS (sizeof ((reign_factory *)0)->clients / sizeof ((reign_factory *)0)->clients[0])

int reign_engine_attach(reign_factory *f, const reign_engine_client *c)
{
    size_t free_slot = N_CLIENTS;
    for (size_t i = 0; i < N_CLIENTS; i++) {
        if (f->clients[i] == c)
            return REIGN_OK;
        if (f->clients[i] == NULL && free_slot == N_CLIENTS)
            free_slot = i;
    }
    if (free_slot == N_CLIENTS)
        return reign_error_set(REIGN_ENOMEM, "engine: no room for another client");
    f->clients[free_slot] = c;
    return REIGN_OK;
}

void reign_engine_detach(reign_factory *f, const reign_engine_client *c)
{
    for (size_t i = 0; i < N_CLIENTS; i++)
        if (f->clients[i] == c)
            f->clients[i] = NULL;
}

/* On the engine thread, no lock held: tell the clients the fd. What to
 * call is copied under the lock: a client without fd_seen may detach and
 * be freed meanwhile (membership's leave); one with it never detaches. */
static void tell_fd(reign_factory *f, int fd)
{
    void (*fns[N_CLIENTS])(reign_factory *, void *, int);
    void *ctxs[N_CLIENTS];
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < N_CLIENTS; i++) {
        fns[i] = f->clients[i] != NULL ? f->clients[i]->fd_seen : NULL;
        ctxs[i] = f->clients[i] != NULL ? f->clients[i]->ctx : NULL;
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < N_CLIENTS; i++)
        if (fns[i] != NULL)
            fns[i](f, ctxs[i], fd);
}

void reign_engine_view(const reign_election *e, reign_mono_ns *deadline, uint64_t *term)
{
    for (;;) {
        int64_t d1 = atomic_load(&e->deadline_ns);
        uint64_t t = atomic_load(&e->term);
        if (atomic_load(&e->deadline_ns) != d1)
            continue; /* changed under us: read again */
        *deadline = d1;
        *term = t;
        return;
    }
}

void reign_engine_wake(reign_factory *f)
{
    if (f->wake_fd < 0)
        return; /* stepped (tests): nobody to wake */
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(f->wake_fd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
    /* EAGAIN means the counter is already non-zero: the engine will wake. */
}

void reign_engine_queue_event(reign_factory *f, reign_election *e, reign_event_kind kind,
                              uint64_t term, reign_lost_reason reason)
{
    /* The core's own elections (member slots) are not the user's resources. */
    if (!e->internal && kind == REIGN_EVENT_GAINED)
        f->stats.gained++;
    else if (!e->internal)
        f->stats.lost++;
    if (f->n_events == f->cap_events) {
        size_t cap = f->cap_events ? f->cap_events * 2 : 16;
        engine_event *ev = realloc(f->events, cap * sizeof *ev);
        if (ev == NULL) {
            /* Belief is already right (is_master); only the callback is lost. */
            reign_log(&f->logger, REIGN_LOG_ERROR, "engine", "out of memory: event dropped");
            return;
        }
        f->events = ev;
        f->cap_events = cap;
    }
    f->events[f->n_events++] = (engine_event){e, {kind, term, reason}};
    e->events_queued++;
}

void reign_engine_enqueue(reign_factory *f, reign_election *e)
{
    if (e->queued)
        return;
    e->queued = true;
    e->next_pending = f->pending;
    f->pending = e;
}

void reign_engine_walk_soon(reign_factory *f)
{
    f->next_walk = 0;
}

void reign_engine_drop_mastership(reign_factory *f, reign_election *e, reign_lost_reason reason)
{
    if (!e->master)
        return;
    atomic_store(&e->deadline_ns, 0);
    e->master = false;
    e->release_pending = true;
    e->release_term = e->held_term;
    reign_engine_enqueue(f, e);
    if (!e->internal)
        f->stats.masterships--;
    reign_engine_queue_event(f, e, REIGN_EVENT_LOST, e->held_term, reason);
}

static void set_master(reign_factory *f, reign_election *e, uint64_t term, reign_mono_ns deadline,
                       reign_mono_ns t_sent)
{
    e->master = true;
    e->held_term = term;
    e->retry_release = false; /* a new lease: the old one is gone */
    e->renew_at = t_sent + f->renew_ns;
    atomic_store(&e->term, term);
    atomic_store(&e->deadline_ns, deadline);
    if (!e->internal)
        f->stats.masterships++;
    reign_engine_queue_event(f, e, REIGN_EVENT_GAINED, term, REIGN_LOST_NONE);
}

/* ---- batch building ---------------------------------------------------- */

static int grow(void **array, size_t cap, size_t size)
{
    void *p = realloc(*array, cap * size);
    if (p == NULL)
        return REIGN_ENOMEM;
    *array = p;
    return REIGN_OK;
}

static int batch_push(batch *b, reign_op_kind kind, const char *res, size_t len, uint64_t term,
                      reign_election *owner, read_request *read)
{
    if (b->n == b->cap) {
        /* The spare arrays are grown with the others, so that grouping
         * (group_by_kind) never needs memory. */
        size_t cap = b->cap ? b->cap * 2 : 64;
        if (grow((void **)&b->ops, cap, sizeof *b->ops) != REIGN_OK ||
            grow((void **)&b->owners, cap, sizeof *b->owners) != REIGN_OK ||
            grow((void **)&b->reads, cap, sizeof *b->reads) != REIGN_OK ||
            grow((void **)&b->spare_ops, cap, sizeof *b->spare_ops) != REIGN_OK ||
            grow((void **)&b->spare_owners, cap, sizeof *b->spare_owners) != REIGN_OK ||
            grow((void **)&b->spare_reads, cap, sizeof *b->spare_reads) != REIGN_OK)
            return REIGN_ENOMEM;
        b->cap = cap;
    }
    b->ops[b->n] = (reign_op){.kind = kind, .resource = res, .resource_len = len, .term = term,
                              .out_remaining_ms = -1};
    b->owners[b->n] = owner;
    b->reads[b->n] = read;
    b->n++;
    return REIGN_OK;
}

static const reign_op_kind kind_order[4] = REIGN_BATCH_ORDER;

/* Reorder b (stably) into the contract's groups (REIGN_BATCH_ORDER);
 * returns how many RENEWs it has. */
static size_t group_by_kind(batch *b)
{
    size_t next[REIGN_OP_READ + 1] = {0}, count[REIGN_OP_READ + 1] = {0};
    for (size_t i = 0; i < b->n; i++)
        count[b->ops[i].kind]++;
    size_t at = 0;
    for (size_t k = 0; k < 4; k++) {
        next[kind_order[k]] = at;
        at += count[kind_order[k]];
    }
    for (size_t i = 0; i < b->n; i++) {
        size_t to = next[b->ops[i].kind]++;
        b->spare_ops[to] = b->ops[i];
        b->spare_owners[to] = b->owners[i];
        b->spare_reads[to] = b->reads[i];
    }
    reign_op *ops = b->ops;
    reign_election **owners = b->owners;
    read_request **reads = b->reads;
    b->ops = b->spare_ops, b->spare_ops = ops;
    b->owners = b->spare_owners, b->spare_owners = owners;
    b->reads = b->spare_reads, b->spare_reads = reads;
    return count[REIGN_OP_RENEW];
}

static reign_mono_ns min_ns(reign_mono_ns a, reign_mono_ns b)
{
    return a < b ? a : b;
}

static int removal_push(batch *b, reign_election *e)
{
    if (b->n_removals == b->cap_removals) {
        size_t cap = b->cap_removals ? b->cap_removals * 2 : 8;
        reign_election **items = realloc(b->removals, cap * sizeof *items);
        if (items == NULL)
            return REIGN_ENOMEM;
        b->removals = items;
        b->cap_removals = cap;
    }
    e->retry_release = false; /* best effort: a closed election waits for nothing */
    b->removals[b->n_removals++] = e;
    e->in_flight = true; /* keep it out of later gathers */
    return REIGN_OK;
}

/* Settle the queued elections (RELEASE owed, or closing): work in their
 * number, not in the number of elections. One stays queued while an op of
 * it is out, or when memory ran short. */
static void gather_queue(reign_factory *f, batch *b)
{
    reign_election **pp = &f->pending;
    while (*pp != NULL) {
        reign_election *e = *pp;
        int rc = REIGN_OK;
        if (e->in_flight) {
            pp = &e->next_pending;
            continue;
        }
        if (e->closing && !e->master && !e->release_pending) {
            rc = removal_push(b, e);
        } else if (e->release_pending) {
            rc = batch_push(b, REIGN_OP_RELEASE, e->resource, e->resource_len, e->release_term, e,
                            NULL);
            if (rc == REIGN_OK) {
                f->stats.ops_release++;
                e->in_flight = true;
            }
        }
        if (rc != REIGN_OK) {
            f->next_walk = 0; /* out of memory: the walk tries again */
            pp = &e->next_pending;
            continue;
        }
        *pp = e->next_pending;
        e->next_pending = NULL;
        e->queued = false;
    }
}

/* After apply: fold what e has due next into next_walk (the walk skipped
 * it while in flight), and queue what it owes. */
static void note_due(reign_factory *f, reign_election *e)
{
    if (e->release_pending || e->closing)
        reign_engine_enqueue(f, e);
    reign_mono_ns due = INT64_MAX;
    if (e->master)
        due = min_ns(e->renew_at, atomic_load(&e->deadline_ns));
    if (e->retry_release)
        due = min_ns(due, e->retry_release_at);
    if (e->campaigning && !e->closing && !e->master)
        due = min_ns(due, e->retry_at);
    f->next_walk = min_ns(f->next_walk, due);
}

/* Walk every election: end beliefs whose deadline passed and gather the
 * renewals, campaigns and release retries due at `now` into b; return the
 * next time anything is due. */
static reign_mono_ns gather_walk(reign_factory *f, reign_mono_ns now, batch *b)
{
    reign_mono_ns next = now + 60 * 1000 * REIGN_NS_PER_MS;
    /* Ride-along windows: renewals due within renew/2 and campaign retries due
     * within retry/10 join a batch that goes anyway. */
    bool renew_due = false, acquire_due = false;
    for (reign_election *e = f->elections; e; e = e->next) {
        int64_t deadline = atomic_load(&e->deadline_ns);
        if (e->master && deadline <= now)
            reign_engine_drop_mastership(f, e, REIGN_LOST_EXPIRED);
        if (f->retry_all && e->campaigning && !e->master)
            e->retry_at = now;
        if (e->in_flight)
            continue;
        renew_due |= e->master && e->renew_at <= now;
        acquire_due |= e->campaigning && !e->master && !e->closing && e->retry_at <= now;
    }
    f->retry_all = false;
    /* Ops due soon ride along only with an op of their own kind due now:
     * renewals then go out together once per renew period, whatever else
     * (reads, releases) comes in between, and an op just short of due never
     * goes out alone, again and again. */
    reign_mono_ns renew_horizon = now + (renew_due ? f->renew_ns / 2 : 0);
    reign_mono_ns retry_horizon = now + (acquire_due ? f->retry_ms * REIGN_NS_PER_MS / 10 : 0);

    for (reign_election *e = f->elections; e; e = e->next) {
        if (e->in_flight)
            continue;
        if (e->closing && !e->master && !e->release_pending) {
            /* Queued ones are the queue's (it may be freed once removed). */
            if (!e->queued && removal_push(b, e) != REIGN_OK)
                next = now + 10 * REIGN_NS_PER_MS; /* out of memory: try again soon */
            continue;
        }
        int rc = REIGN_OK;
        if (e->retry_release && !e->release_pending && !e->master &&
            e->retry_release_at > now) {
            next = min_ns(next, e->retry_release_at); /* nothing else until then */
            continue;
        }
        if (e->release_pending || (e->retry_release && !e->master)) {
            rc = batch_push(b, REIGN_OP_RELEASE, e->resource, e->resource_len, e->release_term, e,
                            NULL);
            f->stats.ops_release++;
        } else if (e->master) {
            if (e->renew_at <= renew_horizon) {
                rc = batch_push(b, REIGN_OP_RENEW, e->resource, e->resource_len, e->held_term, e,
                                NULL);
                f->stats.ops_renew++;
            } else {
                next = min_ns(next, e->renew_at);
            }
            next = min_ns(next, atomic_load(&e->deadline_ns));
        } else if (e->campaigning && !e->closing) {
            if (e->retry_at <= retry_horizon) {
                rc = batch_push(b, REIGN_OP_ACQUIRE, e->resource, e->resource_len, 0, e, NULL);
                f->stats.ops_acquire++;
            } else {
                next = min_ns(next, e->retry_at);
            }
        } else {
            continue;
        }
        if (rc != REIGN_OK) {
            next = now + 10 * REIGN_NS_PER_MS; /* out of memory: try again soon */
            break;
        }
        if (b->n > 0 && b->owners[b->n - 1] == e)
            e->in_flight = true;
    }
    return next;
}

/* Gather what is due at `now` into b; return the next time anything is
 * due. The walk over every election runs only when something of it is
 * due (next_walk), so closing thousands of elections one by one costs
 * each only its own settling. */
static reign_mono_ns gather_locked(reign_factory *f, reign_mono_ns now, batch *b)
{
    gather_queue(f, b);
    reign_mono_ns next = f->next_walk;
    if (f->retry_all || now >= f->next_walk) {
        next = gather_walk(f, now, b);
        f->next_walk = next;
    }
    while (f->reads != NULL) {
        read_request *r = f->reads;
        if (batch_push(b, REIGN_OP_READ, r->resource, r->resource_len, 0, NULL, r) != REIGN_OK) {
            next = now + 10 * REIGN_NS_PER_MS; /* out of memory: the rest wait */
            break;
        }
        f->reads = r->next;
        f->stats.ops_read++;
    }
    return next;
}

reign_mono_ns reign_engine_gather(reign_factory *f, reign_mono_ns now, reign_engine_batch *b)
{
    pthread_mutex_lock(&f->mu);
    reign_mono_ns next = gather_locked(f, now, b);
    size_t renewals = group_by_kind(b);
    if (b->n > 0) {
        f->stats.batches++;
        f->stats.renew_batches += renewals > 0;
    }
    pthread_mutex_unlock(&f->mu);
    return next;
}

/* ---- applying results ---------------------------------------------------- */

static reign_master *master_from_op(reign_op *op)
{
    reign_master *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->instance_id = op->out_holder != NULL ? op->out_holder : strdup("");
    m->metadata = op->out_metadata != NULL ? op->out_metadata : strdup("");
    m->term = op->out_term;
    op->out_holder = NULL;
    op->out_metadata = NULL;
    if (m->instance_id == NULL || m->metadata == NULL) {
        reign_master_free(m);
        return NULL;
    }
    return m;
}

static void apply_read(reign_factory *f, reign_op *op, read_request *r)
{
    r->done = true;
    r->remaining_ms = op->out_remaining_ms;
    if (op->result == REIGN_RES_OK) {
        r->master = master_from_op(op);
        r->status = r->master != NULL ? REIGN_OK : REIGN_ENOMEM;
    } else if (op->result == REIGN_RES_NONE) {
        r->status = REIGN_ENOMASTER;
    } else {
        r->status = op->result == REIGN_RES_ERROR && op->out_status != REIGN_OK ? op->out_status
                                                                                 : REIGN_EBACKEND;
        r->error = op->out_error;
        op->out_error = NULL;
        f->stats.op_errors++;
        f->metrics.op_errors[REIGN_OP_READ]++;
    }
}

const double reign_engine_latency_bounds[ENGINE_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

static void record_batch(reign_factory *f, int rc, reign_mono_ns t_sent, reign_mono_ns now)
{
    engine_metrics *m = &f->metrics;
    double s = (double)(now - t_sent) / 1e9;
    size_t i = 0;
    while (i < ENGINE_LATENCY_BUCKETS && s > reign_engine_latency_bounds[i])
        i++;
    m->latency_buckets[i]++;
    m->latency_count++;
    m->latency_sum_s += s;
    if (rc == REIGN_OK) {
        m->last_ok_batch = now;
    } else {
        m->last_failed_batch = now;
        m->last_failed_status = rc;
    }
}

static void log_op_error(reign_factory *f, const reign_election *e, const reign_op *op)
{
    f->stats.op_errors++;
    if (op->kind >= REIGN_OP_ACQUIRE && op->kind <= REIGN_OP_READ)
        f->metrics.op_errors[op->kind]++;
    reign_log(&f->logger, REIGN_LOG_DEBUG, "engine", "%s %s failed: %s",
              reign_op_kind_name(op->kind), e->shown,
              op->out_error != NULL ? op->out_error : reign_status_str(op->out_status));
}

/* An ACQUIRE that erred while its batch went through is retried after a
 * wait that doubles each time (retry_ms, 2×, 4× … up to
 * ENGINE_ACQUIRE_BACKOFF_MAX_MS): a backend that refuses for a local cause
 * (file:// out of descriptors) is not asked again and again for thousands
 * of resources. The first error of an episode is a warning, not debug. */
static void acquire_failed(reign_factory *f, reign_election *e, reign_op *op, reign_mono_ns now,
                           bool batch_ok)
{
    log_op_error(f, e, op);
    if (!batch_ok) {
        /* The whole batch failed (server down): the backend's own trouble,
         * retried at the interval so a recovery is taken up promptly. */
        e->retry_at = now + f->retry_ms * REIGN_NS_PER_MS;
        return;
    }
    engine_metrics *m = &f->metrics;
    m->last_acquire_error = now;
    m->last_acquire_status = op->out_status != REIGN_OK ? op->out_status : REIGN_EBACKEND;
    if (!m->acquire_warned) {
        m->acquire_warned = true;
        reign_log(&f->logger, REIGN_LOG_WARN, "engine",
                  "ACQUIRE %s failed: %s (further failures at debug level until one succeeds; "
                  "retries back off up to %d s)",
                  e->shown,
                  op->out_error != NULL ? op->out_error : reign_status_str(op->out_status),
                  ENGINE_ACQUIRE_BACKOFF_MAX_MS / 1000);
    }
    int64_t wait_ms = f->retry_ms;
    for (unsigned i = 0; i < e->acquire_errors && wait_ms < ENGINE_ACQUIRE_BACKOFF_MAX_MS; i++)
        wait_ms *= 2;
    if (wait_ms > ENGINE_ACQUIRE_BACKOFF_MAX_MS)
        wait_ms = f->retry_ms > ENGINE_ACQUIRE_BACKOFF_MAX_MS ? f->retry_ms
                                                              : ENGINE_ACQUIRE_BACKOFF_MAX_MS;
    if (e->acquire_errors < 32)
        e->acquire_errors++;
    e->retry_at = now + wait_ms * REIGN_NS_PER_MS;
}

static void apply_acquire(reign_factory *f, reign_election *e, reign_op *op, reign_mono_ns t_sent,
                          reign_mono_ns now, bool batch_ok)
{
    if (op->result == REIGN_RES_OK || op->result == REIGN_RES_HELD) {
        e->acquire_errors = 0;
        f->metrics.last_acquire_answer = now;
        f->metrics.acquire_warned = false;
    }
    switch (op->result) {
    case REIGN_RES_OK: {
        reign_mono_ns deadline = t_sent + f->belief_ns;
        if (!e->campaigning || e->closing || deadline <= now) {
            /* Won a lease nobody wants (resigned meanwhile) or won too late
             * to believe in: give it back so others need not wait a TTL. */
            e->release_pending = true;
            e->release_term = op->out_term;
            e->retry_at = now;
            return;
        }
        set_master(f, e, op->out_term, deadline, t_sent);
        f->metrics.last_renew_ok = now;
        return;
    }
    case REIGN_RES_HELD:
        if (op->out_holder != NULL && strcmp(op->out_holder, f->instance_id) == 0) {
            /* Our own lease from an earlier belief (an expired deadline or an
             * ACQUIRE whose answer was lost): release it, then campaign. */
            e->release_pending = true;
            e->release_term = op->out_term;
            e->retry_at = now;
            return;
        }
        /* Try again when the lease could have run out. A backend that
         * notifies releases lets us wait that long even past the retry
         * interval, so thousands of waiting resources cost little. */
        int64_t wait_ms = f->retry_ms;
        if (op->out_remaining_ms >= 0 &&
            (f->backend->notify_fd != NULL || op->out_remaining_ms < wait_ms))
            wait_ms = op->out_remaining_ms + 1;
        e->retry_at = now + wait_ms * REIGN_NS_PER_MS;
        return;
    default:
        acquire_failed(f, e, op, now, batch_ok);
        return;
    }
}

static void apply_renew(reign_factory *f, reign_election *e, reign_op *op, reign_mono_ns t_sent,
                        reign_mono_ns now)
{
    if (!e->master || e->held_term != op->term)
        return; /* resigned or closed meanwhile; the release handles it */
    if (atomic_load(&e->deadline_ns) <= now) {
        /* The deadline passed while the RENEW was out: belief has ended
         * already; do not resurrect it, start over. */
        reign_engine_drop_mastership(f, e, REIGN_LOST_EXPIRED);
        e->retry_at = now;
        return;
    }
    switch (op->result) {
    case REIGN_RES_OK:
        f->metrics.last_renew_ok = now;
        e->renew_at = t_sent + f->renew_ns;
        atomic_store(&e->deadline_ns, t_sent + f->belief_ns);
        return;
    case REIGN_RES_LOST:
        reign_engine_drop_mastership(f, e, REIGN_LOST_BACKEND);
        e->release_pending = false; /* not ours: nothing to release */
        e->retry_at = now;
        return;
    default:
        /* Outcome unknown: keep believing until the deadline, try again soon. */
        log_op_error(f, e, op);
        e->renew_at = now + f->renew_ns / 6;
        return;
    }
}

static void apply_release(reign_factory *f, reign_election *e, reign_op *op, reign_mono_ns now)
{
    bool failed = op->result == REIGN_RES_ERROR || op->result == REIGN_RES_UNSET;
    if (failed)
        log_op_error(f, e, op); /* safe either way: the lease expires on the backend */
    if (e->release_term == op->term) {
        if (failed && !e->retry_release) {
            e->retry_release = true;
            e->retry_release_until = now + (reign_mono_ns)f->ttl_ms * REIGN_NS_PER_MS;
        }
        if (!failed || now >= e->retry_release_until || e->closing || f->stopping)
            e->retry_release = false;
        e->retry_release_at = now + f->renew_ns / 6;
    }
    if (e->release_pending && e->release_term == op->term) {
        e->release_pending = false;
        e->release_failed = failed;
    }
    /* After LOST (someone else's lease, e.g. two instances configured with
     * one ID) wait a retry interval instead of spinning on ACQUIRE/RELEASE. */
    e->retry_at = op->result == REIGN_RES_OK ? now : now + f->retry_ms * REIGN_NS_PER_MS;
}

static void apply(reign_factory *f, batch *b, size_t from, size_t to, reign_mono_ns t_sent,
                  reign_mono_ns now, bool batch_ok)
{
    for (size_t i = from; i < to; i++) {
        reign_op *op = &b->ops[i];
        if (op->result == REIGN_RES_UNSET) {
            op->result = REIGN_RES_ERROR;
            if (op->out_status == REIGN_OK)
                op->out_status = REIGN_EBACKEND;
        }
        if (op->kind == REIGN_OP_READ) {
            apply_read(f, op, b->reads[i]);
            continue;
        }
        reign_election *e = b->owners[i];
        e->in_flight = false;
        switch (op->kind) {
        case REIGN_OP_ACQUIRE: apply_acquire(f, e, op, t_sent, now, batch_ok); break;
        case REIGN_OP_RENEW: apply_renew(f, e, op, t_sent, now); break;
        case REIGN_OP_RELEASE: apply_release(f, e, op, now); break;
        default: break;
        }
        reign_election_status_note(f, e, op, now);
        note_due(f, e);
    }
}

void reign_engine_read_many(reign_factory *f, read_request *reqs, size_t n)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < n; i++) {
        reqs[i].next = f->reads;
        f->reads = &reqs[i];
    }
    pthread_mutex_unlock(&f->mu);
    reign_engine_wake(f);
    pthread_mutex_lock(&f->mu);
    /* The engine always answers: a backend returns within op_timeout_ms. */
    for (size_t i = 0; i < n; i++)
        while (!reqs[i].done)
            pthread_cond_wait(&f->changed, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

/* ---- the loop ------------------------------------------------------------- */

void reign_engine_deliver(reign_factory *f)
{
    pthread_mutex_lock(&f->mu);
    engine_event *events = f->events;
    size_t n = f->n_events;
    f->events = NULL;
    f->n_events = f->cap_events = 0;
    pthread_mutex_unlock(&f->mu);
    /* The callback is read at delivery, under the lock, and the election
     * marked as being called: reign_election_set_callback waits for that
     * mark to clear, so after it returns the old callback is never called
     * again (the runner relies on this when it is freed). */
    for (size_t i = 0; i < n; i++) {
        reign_election *e = events[i].election;
        pthread_mutex_lock(&f->mu);
        e->events_queued--;
        reign_election_fn fn = e->callback;
        void *payload = e->callback_payload;
        f->delivering_to = fn != NULL ? e : NULL;
        pthread_mutex_unlock(&f->mu);
        if (fn == NULL)
            continue;
        fn(e, &events[i].event, payload);
        pthread_mutex_lock(&f->mu);
        f->delivering_to = NULL;
        pthread_cond_broadcast(&f->changed);
        pthread_mutex_unlock(&f->mu);
    }
    free(events);
}

/* Resources a notification named, collected without the lock held. */
typedef struct released_list {
    char **names;
    size_t *lens;
    size_t n, cap;
    bool all;
} released_list;

static void on_released(void *ctx, const char *resource, size_t len)
{
    released_list *l = ctx;
    if (resource == NULL || l->all) {
        l->all = true;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **names = realloc(l->names, cap * sizeof *names);
        size_t *lens = names ? realloc(l->lens, cap * sizeof *lens) : NULL;
        if (names != NULL)
            l->names = names;
        if (lens == NULL) {
            l->all = true; /* cannot remember which: retry them all */
            return;
        }
        l->lens = lens;
        l->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        l->all = true;
        return;
    }
    memcpy(copy, resource, len);
    copy[len] = '\0';
    l->names[l->n] = copy;
    l->lens[l->n++] = len;
}

void reign_engine_notified(reign_factory *f, char *const *names, const size_t *lens, size_t n,
                           bool all)
{
    pthread_mutex_lock(&f->mu);
    f->stats.notifications++;
    if (all)
        f->retry_all = true;
    for (size_t i = 0; i < n; i++) {
        reign_election *e = reign_engine_find(f, names[i], lens[i], reign_hash(names[i], lens[i]));
        if (e != NULL && e->campaigning && !e->master) {
            e->retry_at = 0;
            f->next_walk = 0;
        }
    }
    for (size_t i = 0; i < N_CLIENTS; i++)
        if (f->clients[i] != NULL && f->clients[i]->notified != NULL)
            f->clients[i]->notified(f, f->clients[i]->ctx, names, lens, n, all);
    pthread_mutex_unlock(&f->mu);
}

static void released_list_free(released_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->lens);
}

static void wait_for_work(reign_factory *f, reign_mono_ns next)
{
    struct pollfd fds[2] = {{.fd = f->wake_fd, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    if (f->backend->notify_fd != NULL && f->backend->notify_drain != NULL)
        fds[1].fd = f->backend->notify_fd(f->state);
    tell_fd(f, fds[1].fd);
    reign_mono_ns now = reign_clock_now_ns();
    int timeout_ms = 0;
    if (next > now) {
        /* Round up: waking a hair early would spin until the due time. */
        int64_t ms = (next - now + REIGN_NS_PER_MS - 1) / REIGN_NS_PER_MS;
        timeout_ms = ms > 60000 ? 60000 : (int)ms;
    }
    int n = poll(fds, fds[1].fd >= 0 ? 2 : 1, timeout_ms);
    if (n <= 0)
        return;
    if (fds[0].revents & POLLIN) {
        uint64_t v;
        ssize_t r = read(f->wake_fd, &v, sizeof v);
        (void)r;
    }
    if (fds[1].fd >= 0 && fds[1].revents != 0) {
        released_list l = {0};
        f->backend->notify_drain(f->state, on_released, &l);
        reign_engine_notified(f, l.names, l.lens, l.n, l.all);
        released_list_free(&l);
        /* The drain may have dropped a broken link: note it now, so the
         * reconnect at the next execute is seen as one even when the new
         * socket gets the old number. */
        tell_fd(f, f->backend->notify_fd(f->state));
    }
}

/* With f->mu held, after a chunk: the first failed batch of an outage is
 * a warning (with the backend's words), the rest debug until one succeeds. */
static void note_outage(reign_factory *f, int rc, const reign_op *ops, size_t n)
{
    engine_metrics *m = &f->metrics;
    if (rc == REIGN_OK) {
        if (m->outage_warned)
            reign_log(&f->logger, REIGN_LOG_INFO, "engine", "the backend answers again");
        m->outage_warned = false;
        return;
    }
    const char *cause = NULL;
    for (size_t i = 0; i < n && cause == NULL; i++)
        cause = ops[i].out_error;
    reign_log(&f->logger, m->outage_warned ? REIGN_LOG_DEBUG : REIGN_LOG_WARN, "engine",
              "a batch of %zu ops failed: %s%s", n, cause != NULL ? cause : reign_status_str(rc),
              m->outage_warned ? "" : " (further failures at debug level until one succeeds)");
    m->outage_warned = true;
}

/* Zero (no hook) as every static; clang refuses NULL as an _Atomic initializer. */
int (*_Atomic reign_engine_execute_hook)(reign_factory *f, reign_batch *batch);

void reign_engine_chunk(reign_factory *f, reign_engine_batch *b, size_t from, size_t n,
                        reign_mono_ns now, reign_batch *out)
{
    *out = (reign_batch){.ops = b->ops + from, .n_ops = n,
                         .deadline_ns = now + f->op_timeout_ms * REIGN_NS_PER_MS};
    for (size_t i = 0; i < n; i++)
        out->count[out->ops[i].kind]++;
}

/* A backend gives the cause; the core makes it "<scheme>: <cause> (<uri>)",
 * and every message that shows it names the op and resource before it. */
static void compose_error(const reign_factory *f, reign_op *op)
{
    char *msg = reign_strdup_printf("%s: %s (%s)", f->backend->scheme, op->out_error,
                                    f->uri.redacted);
    if (msg != NULL) {
        free(op->out_error);
        op->out_error = msg;
    }
}

void reign_engine_apply(reign_factory *f, reign_engine_batch *b, size_t from, size_t n, int rc,
                        reign_mono_ns t_sent, reign_mono_ns t_io, reign_mono_ns now)
{
    reign_op *ops = b->ops + from;
    for (size_t i = 0; i < n; i++) {
        bool failed = ops[i].result == REIGN_RES_UNSET || ops[i].result == REIGN_RES_ERROR;
        if (failed && rc != REIGN_OK && ops[i].out_status == REIGN_OK)
            ops[i].out_status = rc;
        if (failed && ops[i].out_error != NULL)
            compose_error(f, &ops[i]);
    }
    pthread_mutex_lock(&f->mu);
    note_outage(f, rc, ops, n);
    record_batch(f, rc, t_io, now);
    apply(f, b, from, from + n, t_sent, now, rc == REIGN_OK);
    pthread_mutex_unlock(&f->mu);
}

size_t reign_engine_chunk_ops(reign_factory *f)
{
    pthread_mutex_lock(&f->mu);
    size_t chunk = f->chunk_ops;
    pthread_mutex_unlock(&f->mu);
    return chunk;
}

void reign_engine_finish(reign_factory *f, reign_engine_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->ops[i].out_holder);
        free(b->ops[i].out_metadata);
        free(b->ops[i].out_error);
    }
    b->n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < b->n_removals; i++)
        b->removals[i]->removed = true;
    b->n_removals = 0;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->mu);
}

void reign_engine_batch_free(reign_engine_batch *b)
{
    free(b->ops);
    free(b->owners);
    free(b->reads);
    free(b->removals);
    free(b->spare_ops);
    free(b->spare_owners);
    free(b->spare_reads);
    *b = (reign_engine_batch){0};
}

/* Execute the batch in chunks of f->chunk_ops, each with the whole op
 * timeout and applied as soon as it returns: a slow or failed chunk costs
 * only its own ops (their RENEWs are retried, the others are renewed), and
 * no single round trip holds every lease hostage. Deadlines count from
 * `gathered` for the first chunk and from just before its send for each
 * later one: never later than the send. */
static void run_chunks(reign_factory *f, batch *b, reign_mono_ns gathered)
{
    size_t chunk = reign_engine_chunk_ops(f);
    if (chunk == 0)
        chunk = b->n;
    for (size_t from = 0; from < b->n; from += chunk) {
        size_t n = b->n - from < chunk ? b->n - from : chunk;
        reign_mono_ns t_sent = from == 0 ? gathered : reign_clock_now_ns();
        reign_mono_ns t_io = reign_clock_now_ns();
        reign_batch chunk_batch;
        reign_engine_chunk(f, b, from, n, t_io, &chunk_batch);
        int (*hook)(reign_factory *, reign_batch *) = atomic_load(&reign_engine_execute_hook);
        int rc = hook != NULL ? hook(f, &chunk_batch) : f->backend->execute(f->state, &chunk_batch);
        reign_engine_apply(f, b, from, n, rc, t_sent, t_io, reign_clock_now_ns());
    }
}

/* Run the calls queued by reign_engine_run_call; true if there were any. */
static bool run_calls(reign_factory *f)
{
    pthread_mutex_lock(&f->mu);
    engine_call *calls = f->calls;
    f->calls = NULL;
    pthread_mutex_unlock(&f->mu);
    if (calls == NULL)
        return false;
    while (calls != NULL) {
        engine_call *c = calls;
        calls = c->next;
        c->fn(f, c);
        pthread_mutex_lock(&f->mu);
        c->done = true;
        pthread_cond_broadcast(&f->changed);
        pthread_mutex_unlock(&f->mu);
    }
    return true;
}

void reign_engine_run_call(reign_factory *f, engine_call *call)
{
    pthread_mutex_lock(&f->mu);
    call->done = false;
    call->next = f->calls;
    f->calls = call;
    pthread_mutex_unlock(&f->mu);
    reign_engine_wake(f);
    pthread_mutex_lock(&f->mu);
    while (!call->done)
        pthread_cond_wait(&f->changed, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

/* The driver: gather, execute, apply, then poll until something is due. */
static void *engine_main(void *arg)
{
    reign_factory *f = arg;
    reign_engine_batch b = {0};

    for (;;) {
        pthread_mutex_lock(&f->mu);
        bool stopping = f->stopping;
        pthread_mutex_unlock(&f->mu);
        reign_mono_ns now = reign_clock_now_ns();
        reign_mono_ns next = reign_engine_gather(f, now, &b);

        reign_engine_deliver(f);

        bool did_io = b.n > 0;
        if (did_io) {
            run_chunks(f, &b, now);
            reign_engine_deliver(f);
        }
        reign_engine_finish(f, &b);

        did_io |= run_calls(f);

        pthread_mutex_lock(&f->mu);
        bool idle_stop = stopping && f->elections == NULL;
        pthread_mutex_unlock(&f->mu);

        if (idle_stop)
            break;
        /* After I/O, gather again at once: results often make more work due
         * (a RELEASE before a re-ACQUIRE, a closing election to drop). */
        if (!did_io && !stopping)
            wait_for_work(f, next);
        else if (stopping)
            wait_for_work(f, reign_clock_now_ns() + 10 * REIGN_NS_PER_MS);
    }
    reign_engine_batch_free(&b);
    return NULL;
}

int reign_engine_start(reign_factory *f)
{
    f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->wake_fd < 0)
        return reign_error_set(REIGN_EIO, "engine: eventfd: %s", strerror(errno));
    int rc = pthread_create(&f->thread, NULL, engine_main, f);
    if (rc != 0) {
        close(f->wake_fd);
        f->wake_fd = -1;
        return reign_error_set(REIGN_ENOMEM, "engine: cannot start thread: %s", strerror(rc));
    }
    f->thread_started = true;
    return REIGN_OK;
}

void reign_engine_stop(reign_factory *f)
{
    if (!f->thread_started)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_mutex_unlock(&f->mu);
    reign_engine_wake(f);
    pthread_join(f->thread, NULL);
    f->thread_started = false;
    close(f->wake_fd);
    f->wake_fd = -1;
}
