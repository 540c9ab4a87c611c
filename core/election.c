/* Elections: the public face of one resource's lease in the engine. User
 * threads only change wishes (campaign, resign, close) and wait; the engine
 * thread does all backend I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "election_internal.h"
#include "engine.h"
#include "error.h"

int reign_resource_id_check(const char *resource_id)
{
    if (resource_id == NULL)
        return reign_error_set(REIGN_EINVAL, "resource ID is NULL");
    size_t len = strnlen(resource_id, REIGN_RESOURCE_ID_MAX + 1);
    if (len == 0)
        return reign_error_set(REIGN_EINVAL, "resource ID is empty");
    if (len > REIGN_RESOURCE_ID_MAX)
        return reign_error_set(REIGN_EINVAL, "resource ID is longer than %d bytes",
                               REIGN_RESOURCE_ID_MAX);
    return REIGN_OK;
}

static int election_create(reign_factory *f, const char *resource_id, bool internal,
                           reign_election **out)
{
    int rc = reign_resource_id_check(resource_id);
    if (rc != REIGN_OK)
        return rc;
    reign_election *e = calloc(1, sizeof *e);
    if (e == NULL || (e->resource = strdup(resource_id)) == NULL) {
        free(e);
        return reign_error_set(REIGN_ENOMEM, "election_new: out of memory");
    }
    e->factory = f;
    e->resource_len = strlen(resource_id);
    char shown[200];
    reign_printable(resource_id, e->resource_len, shown, sizeof shown);
    if ((e->shown = strdup(shown)) == NULL) {
        free(e->resource);
        free(e);
        return reign_error_set(REIGN_ENOMEM, "election_new: out of memory");
    }
    e->hash = reign_hash(e->resource, e->resource_len);
    e->internal = internal;
    pthread_mutex_lock(&f->mu);
    rc = reign_engine_add(f, e);
    pthread_mutex_unlock(&f->mu);
    if (rc != REIGN_OK) {
        free(e->shown);
        free(e->resource);
        free(e);
        return rc;
    }
    *out = e;
    return REIGN_OK;
}

/* Public: reign's own IDs (member slots) are refused, so that no program
 * can campaign for a slot and appear as a fake member. */
int reign_election_new(reign_factory *f, const char *resource_id, reign_election **out)
{
    if (f == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "election_new: NULL argument");
    int rc = reign_resource_id_check(resource_id);
    if (rc != REIGN_OK)
        return rc;
    if (strncmp(resource_id, REIGN_RESERVED_PREFIX, strlen(REIGN_RESERVED_PREFIX)) == 0) {
        char shown[80];
        reign_printable(resource_id, strlen(resource_id), shown, sizeof shown);
        return reign_error_set(REIGN_EINVAL,
                               "resource ID '%s' is reserved: IDs starting with \""
                               REIGN_RESERVED_PREFIX "\" are reign's own (member slots)",
                               shown);
    }
    return election_create(f, resource_id, false, out);
}

int reign_election_new_internal(reign_factory *f, const char *resource_id, reign_election **out)
{
    return election_create(f, resource_id, true, out);
}

/* After this returns, the previous callback is not running and will not
 * be called again. */
int reign_election_set_callback(reign_election *e, reign_election_fn fn, void *payload)
{
    if (e == NULL)
        return reign_error_set(REIGN_EINVAL, "election_set_callback: NULL election");
    reign_factory *f = e->factory;
    pthread_mutex_lock(&f->mu);
    e->callback = fn;
    e->callback_payload = payload;
    while (f->delivering_to == e && !reign_engine_is_engine_thread(f))
        pthread_cond_wait(&f->changed, &f->mu);
    pthread_mutex_unlock(&f->mu);
    return REIGN_OK;
}

const char *reign_election_resource(const reign_election *e)
{
    return e->resource;
}

/* With f->mu held. */
static int campaign_locked(reign_election *e)
{
    if (e->closing)
        return reign_error_set(REIGN_ECLOSED, "election %s: closing", e->shown);
    if (!e->campaigning) {
        e->campaigning = true;
        e->retry_at = 0;
        reign_engine_walk_soon(e->factory);
    }
    return REIGN_OK;
}

int reign_election_start(reign_election *e)
{
    if (e == NULL)
        return reign_error_set(REIGN_EINVAL, "election_start: NULL election");
    reign_factory *f = e->factory;
    pthread_mutex_lock(&f->mu);
    int rc = campaign_locked(e);
    pthread_mutex_unlock(&f->mu);
    if (rc == REIGN_OK)
        reign_engine_wake(f);
    return rc;
}

bool reign_election_is_master(const reign_election *e)
{
    int64_t deadline = atomic_load_explicit(&e->deadline_ns, memory_order_acquire);
    return deadline != 0 && reign_clock_now_ns() < deadline;
}

/* The deadline and term of the current mastership, read as one pair (the
 * engine stores the term between two deadline writes); REIGN_ENOTMASTER
 * when not master now. */
static int read_mastership(const reign_election *e, int64_t *deadline_ns, uint64_t *term)
{
    reign_mono_ns deadline;
    uint64_t t;
    reign_engine_view(e, &deadline, &t);
    if (deadline == 0 || reign_clock_now_ns() >= deadline)
        return reign_error_set(REIGN_ENOTMASTER, "election %s: not master", e->shown);
    *deadline_ns = deadline; /* the outputs stay untouched on failure */
    *term = t;
    return REIGN_OK;
}

int reign_election_term(const reign_election *e, uint64_t *out)
{
    if (e == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "election_term: NULL argument");
    int64_t deadline;
    return read_mastership(e, &deadline, out);
}

int reign_election_deadline_ms(const reign_election *e, int64_t *deadline_out,
                               uint64_t *term_out)
{
    if (e == NULL || deadline_out == NULL)
        return reign_error_set(REIGN_EINVAL, "election_deadline_ms: NULL argument");
    int64_t deadline = 0;
    uint64_t term = 0;
    int rc = read_mastership(e, &deadline, &term);
    if (rc != REIGN_OK)
        return rc;
    /* Rounded down: a watcher acting at this millisecond is never late. */
    *deadline_out = deadline / REIGN_NS_PER_MS;
    if (term_out != NULL)
        *term_out = term;
    return REIGN_OK;
}

int reign_election_wait(reign_election *e, int64_t timeout_ms)
{
    if (e == NULL)
        return reign_error_set(REIGN_EINVAL, "election_wait: NULL election");
    reign_factory *f = e->factory;
    if (reign_engine_is_engine_thread(f))
        return reign_error_set(REIGN_ESTATE, "election_wait: not from a reign callback");
    reign_mono_ns until = timeout_ms >= 0 ? reign_clock_now_ns() + timeout_ms * REIGN_NS_PER_MS : 0;
    pthread_mutex_lock(&f->mu);
    int rc = campaign_locked(e);
    if (rc == REIGN_OK)
        reign_engine_wake(f);
    e->waiters++;
    while (rc == REIGN_OK && !reign_election_is_master(e)) {
        if (e->closing) {
            rc = reign_error_set(REIGN_ECLOSED, "election %s: closed while waiting", e->shown);
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&f->changed, &f->mu);
            continue;
        }
        if (reign_clock_now_ns() >= until) {
            char why[320];
            reign_election_status_why(f, e, why, sizeof why);
            rc = reign_error_set(REIGN_ETIMEDOUT, "election %s: not master after %lld ms%s",
                                 e->shown, (long long)timeout_ms, why);
            break;
        }
        struct timespec ts = reign_clock_timespec(until);
        pthread_cond_timedwait(&f->changed, &f->mu, &ts);
    }
    e->waiters--;
    pthread_cond_broadcast(&f->changed); /* a closer may wait for us to leave */
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* With f->mu held: wait until no op of e is out and no release is owed. */
static void wait_settled(reign_factory *f, reign_election *e)
{
    if (reign_engine_is_engine_thread(f))
        return; /* from a callback: the release goes out after it returns */
    while (e->in_flight || e->release_pending)
        pthread_cond_wait(&f->changed, &f->mu);
}

/* With f->mu held: stop campaigning and end belief; true if a RELEASE is
 * now owed or something changed that the engine must see. */
static bool resign_locked(reign_factory *f, reign_election *e, bool report)
{
    bool changed = e->campaigning || e->master;
    if (e->master) {
        e->release_failed = false; /* the RELEASE owed now tells */
        e->resign_reports = report;
    }
    e->campaigning = false;
    reign_engine_drop_mastership(f, e, REIGN_LOST_RESIGNED);
    return changed;
}

int reign_election_resign_many(reign_election *const *elections, size_t n)
{
    if (n > 0 && elections == NULL)
        return reign_error_set(REIGN_EINVAL, "election_resign_many: elections is NULL");
    for (size_t i = 0; i < n; i++)
        if (elections[i] == NULL)
            return reign_error_set(REIGN_EINVAL, "election_resign_many: election %zu is NULL", i);
    if (n == 0)
        return REIGN_OK;
    reign_factory *f = elections[0]->factory;
    for (size_t i = 1; i < n; i++)
        if (elections[i]->factory != f)
            return reign_error_set(REIGN_EINVAL,
                                   "election_resign_many: election %zu is of another factory", i);
    bool from_callback = reign_engine_is_engine_thread(f);
    pthread_mutex_lock(&f->mu);
    bool wake = false;
    for (size_t i = 0; i < n; i++)
        wake |= resign_locked(f, elections[i], !from_callback);
    if (wake)
        reign_engine_wake(f); /* one wake: the engine sends them in batches */
    /* Settled in the order given; each wake-up rechecks only from where
     * the last stopped, so the wait is linear in n. */
    size_t failed = 0;
    reign_election *first_failed = NULL;
    char why[320] = "";
    for (size_t i = 0; i < n; i++) {
        reign_election *e = elections[i];
        wait_settled(f, e);
        if (!e->resign_reports) /* not ours to report (or from a callback: not sent yet) */
            continue;
        e->resign_reports = false;
        if (e->release_failed && failed++ == 0) {
            first_failed = e;
            snprintf(why, sizeof why, "%s",
                     e->seen.last_error != NULL ? e->seen.last_error : "RELEASE failed");
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (failed == 0)
        return REIGN_OK;
    /* Belief has ended all the same; the lease runs out on the backend. */
    char more[48] = "";
    if (failed > 1)
        snprintf(more, sizeof more, " and %zu more", failed - 1);
    return reign_error_set(REIGN_EBACKEND,
                           "resign %s%s: %s; not master any more, but the next master waits "
                           "until the lease expires (up to the TTL)",
                           first_failed->resource, more, why);
}

int reign_election_resign(reign_election *e)
{
    if (e == NULL)
        return reign_error_set(REIGN_EINVAL, "election_resign: NULL election");
    return reign_election_resign_many(&e, 1);
}

void reign_election_resign_nowait(reign_election *e)
{
    reign_factory *f = e->factory;
    pthread_mutex_lock(&f->mu);
    if (resign_locked(f, e, false))
        reign_engine_wake(f);
    pthread_mutex_unlock(&f->mu);
}

/* With f->mu held, for a closing election: true if the engine holds no
 * reference to it (no op out, nothing owed, not queued, no event waiting
 * for delivery), so the closer may drop it without a round trip to the
 * engine thread. */
static bool engine_done_with(const reign_factory *f, const reign_election *e)
{
    return !e->in_flight && !e->master && !e->release_pending && !e->queued &&
           e->events_queued == 0 && f->delivering_to != e;
}

int reign_election_close_many(reign_election *const *elections, size_t n)
{
    if (n > 0 && elections == NULL)
        return reign_error_set(REIGN_EINVAL, "election_close_many: elections is NULL");
    size_t first = 0;
    while (first < n && elections[first] == NULL)
        first++;
    if (first == n)
        return REIGN_OK; /* NULLs are no-ops, as for reign_election_close */
    reign_factory *f = elections[first]->factory;
    for (size_t i = first; i < n; i++)
        if (elections[i] != NULL && elections[i]->factory != f)
            return reign_error_set(REIGN_EINVAL,
                                   "election_close_many: election %zu is of another factory", i);
    if (reign_engine_is_engine_thread(f))
        return reign_error_set(REIGN_ESTATE, "election_close: not from a reign callback");
    pthread_mutex_lock(&f->mu);
    bool wake = false;
    for (size_t i = first; i < n; i++) {
        reign_election *e = elections[i];
        if (e == NULL)
            continue;
        e->campaigning = false;
        e->closing = true;
        e->retry_release = false; /* best effort: a closed election waits for nothing */
        reign_engine_drop_mastership(f, e, REIGN_LOST_CLOSED);
        if (engine_done_with(f, e)) {
            e->removed = true;
        } else {
            reign_engine_enqueue(f, e);
            wake = true;
        }
    }
    pthread_cond_broadcast(&f->changed); /* waiters return ECLOSED */
    if (wake)
        reign_engine_wake(f);
    for (size_t i = first; i < n; i++) {
        reign_election *e = elections[i];
        if (e == NULL)
            continue;
        while (!e->removed || e->waiters > 0)
            pthread_cond_wait(&f->changed, &f->mu);
        reign_engine_remove(f, e);
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = first; i < n; i++) {
        reign_election *e = elections[i];
        if (e == NULL)
            continue;
        reign_election_status_free(e);
        free(e->shown);
        free(e->resource);
        free(e);
    }
    return REIGN_OK;
}

int reign_election_close(reign_election *e)
{
    return reign_election_close_many(&e, 1);
}

int reign_election_current_master(reign_election *e, reign_master **out)
{
    if (e == NULL)
        return reign_error_set(REIGN_EINVAL, "election_current_master: NULL election");
    return reign_factory_current_master(e->factory, e->resource, out);
}
