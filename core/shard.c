/* The shard manager's public API: a changing set of resources, each one an
 * election driven by the runner machine on a few threads (shard_step.c),
 * fed by the fair-share balancer (shard_balance.c), kept in a
 * resource-keyed table (shard_index.c).
 *
 * Map:
 *   1. items           one resource: create, destroy, election events
 *   2. threads         create, start, stop
 *   3. new / free      and the config check
 *   4. the set         add, remove, set, prefer
 *   5. per resource    is_master, term, revoke_done (no I/O)
 *   6. start / stop / drain
 *
 * Locks, outermost first: ctl_mu (start, stop, drain, free), index_lock
 * (the table, item lifetimes, `running`), thread->mu (heaps), drain_mu.
 * Callbacks run on shard threads with none of them held.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "engine.h"
#include "error.h"
#include "shard_internal.h"
#include "tracker_internal.h"

#define SHARD_DEFAULT_THREADS 2
#define SHARD_DEFAULT_REVOKE_TIMEOUT_MS 10000
#define SHARD_DEFAULT_DRAIN_PARALLEL 16

static int64_t default_clock(void *payload)
{
    (void)payload;
    return reign_monotonic_ms();
}

int64_t reign_shard_now(const reign_shard *s)
{
    return s->clock(s->clock_random_payload);
}

/* ---- 1. Items ------------------------------------------------------------------ */

/* Election events (engine thread): remember why it was lost, make it due. */
static void shard_on_event(reign_election *election, const reign_event *event, void *payload)
{
    shard_item *it = payload;
    (void)election;
    if (event->kind == REIGN_EVENT_LOST)
        atomic_store(&it->lost_reason, (int)event->reason);
    reign_shard_kick(it);
}

static void prefs_clear(balance_preference *p)
{
    for (size_t k = 0; k < p->n; k++)
        free((char *)p->ids[k]);
    free((void *)p->ids);
    *p = (balance_preference){NULL, 0};
}

void reign_shard_item_destroy(shard_item *it)
{
    if (it == NULL)
        return;
    if (it->election != NULL) {
        /* No event may reach the item once it is freed. */
        if (reign_election_set_callback(it->election, NULL, NULL) != REIGN_OK ||
            reign_election_close(it->election) != REIGN_OK)
            reign_error_clear();
    }
    prefs_clear(&it->pref);
    free(it);
}

static int item_new(reign_shard *s, const char *id, shard_item **out)
{
    shard_item *it = calloc(1, sizeof *it);
    if (it == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory");
    int rc = reign_election_new(s->factory, id, &it->election);
    if (rc != REIGN_OK) {
        free(it);
        return rc;
    }
    it->id = reign_election_resource(it->election);
    it->hash = reign_balance_hash(it->id);
    it->heap_pos = SHARD_NOT_IN_HEAP;
    reign_runner_state_init(&it->st, &s->settings);
    atomic_init(&it->removing, false);
    atomic_init(&it->revoked, false);
    atomic_init(&it->lost_reason, REIGN_LOST_NONE);
    atomic_init(&it->drain_queued, false);
    rc = reign_election_set_callback(it->election, shard_on_event, it);
    if (rc != REIGN_OK) {
        reign_shard_item_destroy(it);
        return rc;
    }
    *out = it;
    return REIGN_OK;
}

/* Put a new item in the table and on a thread (index write lock held). */
static int item_insert(reign_shard *s, shard_item *it)
{
    shard_thread *t = &s->threads[s->next_thread % s->n_threads];
    pthread_mutex_lock(&t->mu);
    int rc = reign_shard_heap_reserve(t, t->n_items + 1);
    if (rc == REIGN_OK)
        rc = reign_shard_index_insert(s, it);
    if (rc == REIGN_OK) {
        s->next_thread++;
        it->owner = t;
        t->n_items++;
        if (s->running) {
            it->wake_ms = INT64_MIN; /* the first step draws the pre-election pause */
            reign_shard_heap_push(t, it);
            pthread_cond_signal(&t->cond);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static bool kick_one(shard_item *it, void *ctx)
{
    (void)ctx;
    reign_shard_kick(it);
    return true;
}

void reign_shard_kick_all(reign_shard *s)
{
    pthread_rwlock_rdlock(&s->index_lock);
    reign_shard_index_each(s, kick_one, NULL);
    pthread_rwlock_unlock(&s->index_lock);
}

/* ---- 2. Threads --------------------------------------------------------------- */

static void threads_destroy(reign_shard *s)
{
    for (unsigned i = 0; i < s->n_threads; i++) {
        shard_thread *t = &s->threads[i];
        free(t->heap);
        free(t->batch);
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->mu);
    }
    free(s->threads);
    s->threads = NULL;
    s->n_threads = 0;
}

/* A condition variable whose timed waits run on CLOCK_MONOTONIC, so a
 * wall-clock step does not move them. */
static int cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int err = pthread_condattr_init(&attr);
    if (err == 0) {
        err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (err == 0)
            err = pthread_cond_init(c, &attr);
        pthread_condattr_destroy(&attr);
    }
    return err;
}

static int threads_create(reign_shard *s, unsigned n_threads)
{
    s->threads = calloc(n_threads, sizeof *s->threads);
    if (s->threads == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory for %u threads", n_threads);
    for (unsigned i = 0; i < n_threads; i++) {
        shard_thread *t = &s->threads[i];
        t->shard = s;
        if (pthread_mutex_init(&t->mu, NULL) != 0)
            return reign_error_set(REIGN_ENOMEM, "shard: pthread_mutex_init failed");
        int err = cond_init_monotonic(&t->cond);
        if (err != 0) {
            pthread_mutex_destroy(&t->mu);
            return reign_error_set(REIGN_ENOMEM, "shard: pthread_cond_init failed (errno %d)", err);
        }
        s->n_threads = i + 1; /* threads_destroy frees up to here */
    }
    return REIGN_OK;
}

/* Stop and join the threads: each runs on until its revocations are over. */
static void threads_stop(reign_shard *s)
{
    for (unsigned i = 0; i < s->n_threads; i++) {
        shard_thread *t = &s->threads[i];
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->mu);
    }
    for (unsigned i = 0; i < s->n_threads; i++) {
        shard_thread *t = &s->threads[i];
        if (!t->started)
            continue;
        pthread_join(t->thread, NULL);
        t->started = false;
    }
}

/* ---- 3. New and free ------------------------------------------------------------- */

static int check_shard_config(const reign_shard_config *c, runner_settings *settings)
{
    if (c->version == 0 || c->version > REIGN_SHARD_CONFIG_VERSION)
        return reign_error_set(REIGN_EINVAL,
                               "shard: reign_shard_config version %u is not supported "
                               "(use REIGN_SHARD_CONFIG_INIT; this build knows 1..%d)",
                               c->version, REIGN_SHARD_CONFIG_VERSION);
    int rc = reign_runner_settings_from_config(&c->runner, settings);
    if (rc != REIGN_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", reign_last_error());
        return reign_error_set(rc, "shard: config.%s", why);
    }
    if (c->version >= 2 && c->revoke_timeout_ms < 0)
        return reign_error_set(REIGN_EINVAL,
                               "shard: config.revoke_timeout_ms %" PRId64 " is negative "
                               "(0 = the default, %d)",
                               c->revoke_timeout_ms, SHARD_DEFAULT_REVOKE_TIMEOUT_MS);
    return REIGN_OK;
}

/* The items and their elections, gathered for one call on all of them. */
typedef struct item_list {
    shard_item **items;
    reign_election **elections;
    size_t n;
} item_list;

static bool list_one(shard_item *it, void *ctx)
{
    item_list *l = ctx;
    l->items[l->n] = it;
    l->elections[l->n++] = it->election;
    return true;
}

/* Every item of the index (index lock held, or the shard no longer
 * shared); false when out of memory. */
static bool item_list_of(const reign_shard *s, item_list *l)
{
    size_t n = s->n_items ? s->n_items : 1;
    l->items = malloc(n * sizeof *l->items);
    l->elections = malloc(n * sizeof *l->elections);
    l->n = 0;
    if (l->items == NULL || l->elections == NULL) {
        free(l->items);
        free(l->elections);
        return false;
    }
    reign_shard_index_each(s, list_one, l);
    return true;
}

static void item_list_free(item_list *l)
{
    free(l->items);
    free(l->elections);
}

static bool destroy_one(shard_item *it, void *ctx)
{
    (void)ctx;
    reign_shard_item_destroy(it);
    return true;
}

static void items_destroy(reign_shard *s)
{
    item_list l;
    if (item_list_of(s, &l)) {
        /* No event may reach an item once it is freed; then every
         * election is closed in one call, in time linear in their number. */
        for (size_t i = 0; i < l.n; i++)
            if (reign_election_set_callback(l.elections[i], NULL, NULL) != REIGN_OK)
                reign_error_clear();
        if (reign_election_close_many(l.elections, l.n) != REIGN_OK)
            reign_error_clear();
        for (size_t i = 0; i < l.n; i++) {
            l.items[i]->election = NULL;
            reign_shard_item_destroy(l.items[i]);
        }
        item_list_free(&l);
    } else {
        reign_shard_index_each(s, destroy_one, NULL); /* out of memory: one by one */
    }
    free(s->buckets);
    s->buckets = NULL;
    s->n_buckets = s->n_items = 0;
}

static void drain_queue_clear(reign_shard *s)
{
    pthread_mutex_lock(&s->drain_mu);
    for (size_t i = s->drain_queue_head; i < s->drain_queue_n; i++)
        free(s->drain_queue[i]);
    s->drain_queue_head = s->drain_queue_n = 0;
    pthread_mutex_unlock(&s->drain_mu);
}

static void shard_destroy(reign_shard *s)
{
    reign_shard_balancer_destroy(s);
    items_destroy(s);
    threads_destroy(s);
    reign_tracker_free(s->tracker);
    drain_queue_clear(s);
    free(s->drain_queue);
    pthread_cond_destroy(&s->drain_cond);
    pthread_mutex_destroy(&s->drain_mu);
    pthread_rwlock_destroy(&s->index_lock);
    pthread_mutex_destroy(&s->ctl_mu);
    free(s);
}

int reign_shard_new(reign_factory *factory, const char *const *ids, size_t n_ids,
                    const reign_shard_config *config, reign_shard **out)
{
    reign_shard_config defaults = REIGN_SHARD_CONFIG_INIT;
    int rc;

    if (factory == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "shard: %s is NULL", factory == NULL ? "factory" : "out");
    if (ids == NULL && n_ids > 0)
        return reign_error_set(REIGN_EINVAL, "shard: ids is NULL but n_ids is %zu", n_ids);
    if (config == NULL)
        config = &defaults;

    reign_shard *s = calloc(1, sizeof *s);
    if (s == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory");
    rc = check_shard_config(config, &s->settings);
    if (rc != REIGN_OK) {
        free(s);
        return rc;
    }
    s->factory = factory;
    s->clock = config->runner.clock != NULL ? config->runner.clock : default_clock;
    s->clock_injected = config->runner.clock != NULL;
    s->random = config->runner.random;
    s->clock_random_payload = config->runner.clock_random_payload;
    s->on_change = config->on_change;
    s->payload = config->payload;
    s->revoke_timeout_ms = SHARD_DEFAULT_REVOKE_TIMEOUT_MS;
    s->drain_parallel = SHARD_DEFAULT_DRAIN_PARALLEL;
    if (config->version >= 2) {
        s->on_event = config->on_event;
        if (config->revoke_timeout_ms > 0)
            s->revoke_timeout_ms = config->revoke_timeout_ms;
        if (config->drain_parallel > 0)
            s->drain_parallel = config->drain_parallel;
    }
    s->probe_interval_ms = config->probe_interval_ms > 0 ? config->probe_interval_ms
                                                          : 3 * reign_factory_ttl_ms(factory);
    pthread_mutex_init(&s->ctl_mu, NULL);
    pthread_rwlock_init(&s->index_lock, NULL);
    pthread_mutex_init(&s->drain_mu, NULL);
    cond_init_monotonic(&s->drain_cond);
    atomic_init(&s->stopping, false);
    atomic_init(&s->draining, false);
    atomic_init(&s->drain_slots, 0);
    atomic_init(&s->n_busy, 0);

    rc = reign_tracker_new(ids, n_ids, NULL, NULL, &s->tracker);
    if (rc == REIGN_OK)
        rc = threads_create(s, config->threads != 0 ? config->threads : SHARD_DEFAULT_THREADS);
    if (rc == REIGN_OK && config->balance)
        rc = reign_shard_balancer_init(s, config);
    for (size_t i = 0; rc == REIGN_OK && i < n_ids; i++) {
        shard_item *it = NULL;
        rc = item_new(s, ids[i], &it);
        if (rc != REIGN_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", reign_last_error());
            rc = reign_error_set(rc, "shard: resource %zu: %s", i, why);
            break;
        }
        pthread_rwlock_wrlock(&s->index_lock);
        rc = item_insert(s, it);
        pthread_rwlock_unlock(&s->index_lock);
        if (rc != REIGN_OK)
            reign_shard_item_destroy(it);
    }
    if (rc != REIGN_OK) {
        shard_destroy(s);
        return rc;
    }
    *out = s;
    return REIGN_OK;
}

void reign_shard_free(reign_shard *shard)
{
    if (shard == NULL)
        return;
    if (reign_shard_stop(shard) != REIGN_OK)
        reign_error_clear();
    shard_destroy(shard);
}

reign_tracker *reign_shard_tracker(reign_shard *shard)
{
    return shard != NULL ? shard->tracker : NULL;
}

/* ---- 4. The set ---------------------------------------------------------------- */

int reign_shard_add(reign_shard *shard, const char *resource_id)
{
    if (shard == NULL || resource_id == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_add: %s is NULL",
                               shard == NULL ? "shard" : "resource_id");
    /* Known already (perhaps being removed: keep it)? */
    pthread_rwlock_rdlock(&shard->index_lock);
    shard_item *known = reign_shard_index_find(shard, resource_id);
    if (known != NULL)
        atomic_store(&known->removing, false);
    pthread_rwlock_unlock(&shard->index_lock);
    if (known != NULL)
        return REIGN_OK;

    shard_item *it = NULL;
    int rc = item_new(shard, resource_id, &it);
    if (rc != REIGN_OK) {
        /* A concurrent add of the same ID won the election slot. */
        pthread_rwlock_rdlock(&shard->index_lock);
        known = rc == REIGN_EBUSY ? reign_shard_index_find(shard, resource_id) : NULL;
        if (known != NULL)
            atomic_store(&known->removing, false);
        pthread_rwlock_unlock(&shard->index_lock);
        if (known != NULL) {
            reign_error_clear();
            return REIGN_OK;
        }
        return rc;
    }
    pthread_rwlock_wrlock(&shard->index_lock);
    rc = item_insert(shard, it);
    pthread_rwlock_unlock(&shard->index_lock);
    if (rc != REIGN_OK) {
        reign_shard_item_destroy(it);
        return rc;
    }
    if (reign_tracker_set(shard->tracker, resource_id, false) != REIGN_OK)
        reign_error_clear(); /* tracked at its first transition instead */
    reign_shard_balancer_set_changed(shard);
    return REIGN_OK;
}

int reign_shard_remove(reign_shard *shard, const char *resource_id)
{
    if (shard == NULL || resource_id == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_remove: %s is NULL",
                               shard == NULL ? "shard" : "resource_id");
    pthread_rwlock_rdlock(&shard->index_lock);
    shard_item *it = reign_shard_index_find(shard, resource_id);
    bool running = shard->running;
    if (it != NULL) {
        atomic_store(&it->removing, true);
        if (running)
            reign_shard_kick(it); /* its thread revokes, releases and forgets it */
    }
    pthread_rwlock_unlock(&shard->index_lock);
    if (it == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_remove: %s is not a resource of this shard",
                               resource_id);
    if (!running) {
        /* No thread steps it: nothing is held, forget it now. */
        pthread_rwlock_wrlock(&shard->index_lock);
        it = reign_shard_index_find(shard, resource_id);
        if (it != NULL && atomic_load(&it->removing) && !shard->running) {
            reign_shard_index_remove(shard, it);
            pthread_mutex_lock(&it->owner->mu);
            it->owner->n_items--;
            pthread_mutex_unlock(&it->owner->mu);
        } else {
            it = NULL;
        }
        pthread_rwlock_unlock(&shard->index_lock);
        if (it != NULL) {
            if (reign_tracker_forget(shard->tracker, resource_id) != REIGN_OK)
                reign_error_clear();
            reign_shard_item_destroy(it);
        }
    }
    reign_shard_balancer_set_changed(shard);
    return REIGN_OK;
}

typedef struct set_ctx {
    const char *const *ids;  /* sorted copy of the wanted set */
    size_t n;
    char **doomed;           /* IDs to remove */
    size_t n_doomed;
} set_ctx;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool collect_unwanted(shard_item *it, void *ctx)
{
    set_ctx *c = ctx;
    if (bsearch(&it->id, c->ids, c->n, sizeof *c->ids, cmp_str) == NULL &&
        !atomic_load(&it->removing)) {
        char *copy = strdup(it->id);
        if (copy == NULL)
            return false;
        c->doomed[c->n_doomed++] = copy;
    }
    return true;
}

int reign_shard_set(reign_shard *shard, const char *const *ids, size_t n)
{
    if (shard == NULL || (ids == NULL && n > 0))
        return reign_error_set(REIGN_EINVAL, "shard_set: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (ids[i] == NULL)
            return reign_error_set(REIGN_EINVAL, "shard_set: ids[%zu] is NULL", i);
    const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (sorted == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard_set: out of memory");
    memcpy(sorted, ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);

    set_ctx c = {.ids = sorted, .n = n};
    pthread_rwlock_rdlock(&shard->index_lock);
    c.doomed = malloc((shard->n_items ? shard->n_items : 1) * sizeof *c.doomed);
    if (c.doomed != NULL)
        reign_shard_index_each(shard, collect_unwanted, &c);
    pthread_rwlock_unlock(&shard->index_lock);
    int rc = c.doomed == NULL ? reign_error_set(REIGN_ENOMEM, "shard_set: out of memory")
                              : REIGN_OK;
    for (size_t i = 0; i < c.n_doomed; i++) {
        if (rc == REIGN_OK) {
            rc = reign_shard_remove(shard, c.doomed[i]);
            if (rc == REIGN_EINVAL) { /* removed meanwhile by another caller */
                reign_error_clear();
                rc = REIGN_OK;
            }
        }
        free(c.doomed[i]);
    }
    free(c.doomed);
    for (size_t i = 0; rc == REIGN_OK && i < n; i++)
        rc = reign_shard_add(shard, ids[i]);
    free(sorted);
    return rc;
}

int reign_shard_prefer(reign_shard *shard, const char *resource_id,
                       const char *const *instance_ids, size_t n)
{
    if (shard == NULL || resource_id == NULL || (instance_ids == NULL && n > 0))
        return reign_error_set(REIGN_EINVAL, "shard_prefer: NULL argument");
    balance_preference p = {NULL, 0};
    if (n > 0) {
        char **copy = calloc(n, sizeof *copy);
        if (copy == NULL)
            return reign_error_set(REIGN_ENOMEM, "shard_prefer: out of memory");
        p.ids = (const char *const *)copy;
        for (size_t k = 0; k < n; k++, p.n++)
            if ((copy[k] = strdup(instance_ids[k])) == NULL) {
                prefs_clear(&p);
                return reign_error_set(REIGN_ENOMEM, "shard_prefer: out of memory");
            }
    }
    pthread_rwlock_wrlock(&shard->index_lock);
    shard_item *it = reign_shard_index_find(shard, resource_id);
    if (it != NULL) {
        balance_preference old = it->pref;
        it->pref = p;
        p = old;
        shard->set_generation++; /* the assignment depends on it */
    }
    pthread_rwlock_unlock(&shard->index_lock);
    prefs_clear(&p);
    if (it == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_prefer: %s is not a resource of this shard",
                               resource_id);
    reign_shard_balancer_set_changed(shard);
    return REIGN_OK;
}

/* ---- 5. Per resource, without I/O --------------------------------------------- */

int reign_shard_term(reign_shard *shard, const char *resource_id, uint64_t *out)
{
    if (shard == NULL || resource_id == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_term: NULL argument");
    int rc = REIGN_ENOTMASTER;
    uint64_t term = 0;
    pthread_rwlock_rdlock(&shard->index_lock);
    shard_item *it = reign_shard_index_find(shard, resource_id);
    if (it != NULL && !atomic_load(&it->revoked) &&
        reign_election_term(it->election, &term) == REIGN_OK)
        rc = REIGN_OK;
    pthread_rwlock_unlock(&shard->index_lock);
    if (rc != REIGN_OK)
        return reign_error_set(rc, "shard: not master of %s%s", resource_id,
                               it == NULL ? " (not a resource of this shard)" : "");
    *out = term;
    return REIGN_OK;
}

bool reign_shard_is_master(reign_shard *shard, const char *resource_id)
{
    if (shard == NULL || resource_id == NULL)
        return false;
    pthread_rwlock_rdlock(&shard->index_lock);
    shard_item *it = reign_shard_index_find(shard, resource_id);
    bool master = it != NULL && !atomic_load(&it->revoked) &&
                  reign_election_is_master(it->election);
    pthread_rwlock_unlock(&shard->index_lock);
    return master;
}

int reign_shard_deadline_ms(reign_shard *shard, const char *resource_id, int64_t *out)
{
    if (shard == NULL || resource_id == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_deadline_ms: NULL argument");
    int64_t deadline_ns = 0;
    pthread_rwlock_rdlock(&shard->index_lock);
    shard_item *it = reign_shard_index_find(shard, resource_id);
    /* Revoked or not: a revoked lease is still held and renewed until
     * acknowledged, and the work winding down is covered by it. */
    if (it != NULL)
        deadline_ns = atomic_load_explicit(&it->election->deadline_ns, memory_order_acquire);
    pthread_rwlock_unlock(&shard->index_lock);
    /* Rounded down: a watcher acting at this millisecond is never late. */
    if (deadline_ns == 0 || reign_clock_now_ns() >= deadline_ns)
        return reign_error_set(REIGN_ENOTMASTER, "shard: not master of %s", resource_id);
    *out = deadline_ns / REIGN_NS_PER_MS;
    return REIGN_OK;
}

int reign_shard_revoke_done(reign_shard *shard, const char *resource_id, uint64_t term)
{
    if (shard == NULL || resource_id == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_revoke_done: NULL argument");
    bool pending = false;
    pthread_rwlock_rdlock(&shard->index_lock);
    shard_item *it = reign_shard_index_find(shard, resource_id);
    if (it != NULL) {
        pthread_mutex_lock(&it->owner->mu);
        pending = it->revoke_term != 0 && it->revoke_term == term;
        if (pending)
            it->acked = true;
        pthread_mutex_unlock(&it->owner->mu);
        if (pending)
            reign_shard_kick(it);
    }
    pthread_rwlock_unlock(&shard->index_lock);
    if (!pending)
        return reign_error_set(REIGN_ESTATE,
                               "shard_revoke_done: no revocation of %s term %" PRIu64
                               " is pending (released already?)",
                               resource_id, term);
    return REIGN_OK;
}

/* ---- 6. Start, stop, drain -------------------------------------------------------- */

static bool push_one(shard_item *it, void *ctx)
{
    (void)ctx;
    shard_thread *t = it->owner;
    pthread_mutex_lock(&t->mu);
    it->kicked = false;
    it->wake_ms = INT64_MIN; /* the first step draws the pre-election pause */
    it->probe_until_ms = 0;
    it->parked = false;
    reign_runner_state_init(&it->st, &t->shard->settings);
    if (it->heap_pos == SHARD_NOT_IN_HEAP)
        reign_shard_heap_push(t, it);
    pthread_mutex_unlock(&t->mu);
    return true;
}

int reign_shard_start(reign_shard *shard)
{
    int rc = REIGN_OK;
    if (shard == NULL)
        return reign_error_set(REIGN_EINVAL, "shard: shard is NULL");

    pthread_mutex_lock(&shard->ctl_mu);
    if (shard->running)
        goto out; /* starting a started shard is OK, like elections */
    atomic_store(&shard->stopping, false);
    atomic_store(&shard->draining, false);
    drain_queue_clear(shard);
    for (unsigned i = 0; i < shard->n_threads; i++) {
        shard_thread *t = &shard->threads[i];
        t->stop = false;
        t->rng = (uint64_t)reign_clock_now_ns() ^ ((uint64_t)getpid() << 32) ^
                 (uint64_t)(uintptr_t)t;
    }
    /* Targets first, so the first steps already know what is ours. */
    if (shard->balancer != NULL && (rc = reign_shard_balancer_start(shard)) != REIGN_OK)
        goto out;
    pthread_rwlock_wrlock(&shard->index_lock);
    reign_shard_index_each(shard, push_one, NULL);
    shard->running = true;
    pthread_rwlock_unlock(&shard->index_lock);
    for (unsigned i = 0; i < shard->n_threads; i++) {
        shard_thread *t = &shard->threads[i];
        int err = pthread_create(&t->thread, NULL, reign_shard_thread_main, t);
        if (err != 0) {
            rc = reign_error_set(REIGN_ENOMEM, "shard: pthread_create failed (errno %d)", err);
            break;
        }
        t->started = true;
    }
    if (rc != REIGN_OK) {
        atomic_store(&shard->stopping, true);
        reign_shard_kick_all(shard);
        threads_stop(shard);
        reign_shard_balancer_stop(shard);
        pthread_rwlock_wrlock(&shard->index_lock);
        shard->running = false;
        pthread_rwlock_unlock(&shard->index_lock);
    }
out:
    pthread_mutex_unlock(&shard->ctl_mu);
    return rc;
}

static bool wait_released(shard_item *it, void *ctx)
{
    (void)ctx;
    /* Not master, not campaigning: returns once a queued release is sent. */
    if (reign_election_resign(it->election) != REIGN_OK)
        reign_error_clear();
    return true;
}

/* Return once every release the stop queued is sent: one wait for all. */
static void wait_all_released(reign_shard *s)
{
    item_list l;
    if (!item_list_of(s, &l)) {
        reign_shard_index_each(s, wait_released, NULL); /* out of memory: one by one */
        return;
    }
    if (reign_election_resign_many(l.elections, l.n) != REIGN_OK)
        reign_error_clear();
    item_list_free(&l);
}

int reign_shard_stop(reign_shard *shard)
{
    if (shard == NULL)
        return reign_error_set(REIGN_EINVAL, "shard: shard is NULL");
    pthread_mutex_lock(&shard->ctl_mu);
    if (shard->running) {
        /* Leave first: the others target our resources and take each one
         * the moment we release it. */
        reign_shard_balancer_stop(shard);
        atomic_store(&shard->stopping, true);
        reign_shard_kick_all(shard);
        threads_stop(shard);
        pthread_rwlock_wrlock(&shard->index_lock);
        shard->running = false;
        pthread_rwlock_unlock(&shard->index_lock);
        /* The releases went out in batches; return once they are sent. */
        pthread_rwlock_rdlock(&shard->index_lock);
        wait_all_released(shard);
        pthread_rwlock_unlock(&shard->index_lock);
        drain_queue_clear(shard);
    }
    pthread_mutex_unlock(&shard->ctl_mu);
    return REIGN_OK;
}

int reign_shard_drain(reign_shard *shard, int64_t timeout_ms)
{
    if (shard == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_drain: shard is NULL");
    pthread_mutex_lock(&shard->ctl_mu);
    bool running = shard->running;
    if (running && !atomic_load(&shard->draining)) {
        /* Weight 0 for every balancer: leave the membership, and give the
         * others time to see it before the first release, so they want
         * what we hand over. */
        bool balancing = shard->balancer != NULL;
        reign_shard_balancer_stop(shard);
        if (balancing)
            reign_shard_balancer_wait_seen(shard);
        atomic_store(&shard->drain_slots, shard->drain_parallel);
        atomic_store(&shard->draining, true);
        reign_shard_kick_all(shard);
    }
    pthread_mutex_unlock(&shard->ctl_mu);
    if (!running)
        return reign_error_set(REIGN_ESTATE, "shard_drain: the shard is not running");

    reign_mono_ns until = timeout_ms >= 0 ? reign_clock_now_ns() + timeout_ms * REIGN_NS_PER_MS : 0;
    int rc = REIGN_OK;
    pthread_mutex_lock(&shard->drain_mu);
    while (atomic_load(&shard->n_busy) > 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&shard->drain_cond, &shard->drain_mu);
            continue;
        }
        if (reign_clock_now_ns() >= until) {
            rc = REIGN_ETIMEDOUT;
            break;
        }
        struct timespec ts = reign_clock_timespec(until);
        pthread_cond_timedwait(&shard->drain_cond, &shard->drain_mu, &ts);
    }
    size_t left = atomic_load(&shard->n_busy);
    pthread_mutex_unlock(&shard->drain_mu);
    if (rc != REIGN_OK)
        return reign_error_set(rc, "shard_drain: %zu resources still held after %" PRId64 " ms",
                               left, timeout_ms);
    return REIGN_OK;
}
