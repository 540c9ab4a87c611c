/* The shard manager: one runner state machine per resource ID, stepped by a
 * few threads (not a thread per resource), feeding a tracker and the
 * application's on_change callback.
 *
 * Map:
 *   1. types             each item is one resource: election + runner state
 *   2. per-thread heap   min-heap of next-wake times, guarded by thread->mu
 *   3. stepping          perform the machine's actions with the election API
 *   4. thread loop       step what is due, sleep until the earliest wake
 *   5. public API        new / start / stop / free / tracker
 *
 * Threads: thread k owns items k, k+n, k+2n, … for its whole life; only it
 * steps them, so runner states need no lock. Election callbacks (engine
 * thread) only mark an item due in its owner's heap and signal the owner, so
 * gained/lost reach the tracker at once instead of at the next check.
 * Wake-ups are rounded up to a SHARD_TICK_MS grid so that 10,000 idle
 * resources cost a few dozen wake-ups per second, not thousands.
 *
 * The shard has no resign handler: a resignation the machine decides on is
 * executed at once on the shard thread. on_change runs on shard threads
 * only, including the final "lost" reports of a stop, which each thread
 * makes for its own resources before it exits.
 * A config.runner.random given by the application is called from several
 * shard threads at once and must be thread-safe; NULL uses one internal
 * generator per thread.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "reign/reign.h"
#include "runner_step.h"

#define SHARD_DEFAULT_THREADS 2
#define SHARD_TICK_MS 10
#define SHARD_MAX_WAIT_MS (INT64_C(3600) * 1000)

#include "shard_internal.h"

static int64_t default_clock(void *payload)
{
    (void)payload;
    return reign_monotonic_ms();
}

static int64_t shard_now(const reign_shard *s)
{
    return s->clock(s->clock_random_payload);
}

/* ---- 2. Per-thread min-heap of wake times (thread->mu held) ------------- */

static void heap_set(shard_thread *t, size_t pos, shard_item *it)
{
    t->heap[pos] = it;
    it->heap_pos = pos;
}

static void heap_sift_up(shard_thread *t, size_t pos)
{
    shard_item *it = t->heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (t->heap[parent]->wake_ms <= it->wake_ms)
            break;
        heap_set(t, pos, t->heap[parent]);
        pos = parent;
    }
    heap_set(t, pos, it);
}

static void heap_sift_down(shard_thread *t, size_t pos)
{
    shard_item *it = t->heap[pos];
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= t->heap_n)
            break;
        if (child + 1 < t->heap_n && t->heap[child + 1]->wake_ms < t->heap[child]->wake_ms)
            child++;
        if (t->heap[child]->wake_ms >= it->wake_ms)
            break;
        heap_set(t, pos, t->heap[child]);
        pos = child;
    }
    heap_set(t, pos, it);
}

static void heap_push(shard_thread *t, shard_item *it)
{
    /* The heap has room for the whole slice, so this never allocates. */
    heap_set(t, t->heap_n++, it);
    heap_sift_up(t, it->heap_pos);
}

static shard_item *heap_pop(shard_thread *t)
{
    shard_item *top = t->heap[0];
    t->heap_n--;
    if (t->heap_n > 0) {
        heap_set(t, 0, t->heap[t->heap_n]);
        heap_sift_down(t, 0);
    }
    top->heap_pos = SHARD_NOT_IN_HEAP;
    return top;
}

/* Election events (engine thread): make the item due now. */
static void shard_on_event(reign_election *election, const reign_event *event, void *payload)
{
    (void)election;
    (void)event;
    shard_kick(payload);
}

void shard_kick(shard_item *it)
{
    shard_thread *t = it->owner;
    pthread_mutex_lock(&t->mu);
    if (it->heap_pos != SHARD_NOT_IN_HEAP) {
        it->wake_ms = INT64_MIN;
        heap_sift_up(t, it->heap_pos);
    } else {
        it->kicked = true;
    }
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

/* ---- 3. Stepping one item (owner thread, no lock held) -------------------- */

static uint64_t shard_draw(shard_thread *t)
{
    reign_shard *s = t->shard;
    if (s->random != NULL)
        return s->random(s->clock_random_payload);
    return runner_splitmix64(&t->rng);
}

static void notify(reign_shard *s, shard_item *it, bool is_master)
{
    const char *id = reign_election_resource(it->election);
    /* The tracker cannot fail here but for memory; the runner keeps going
     * and the next transition sets it right. */
    if (reign_tracker_set(s->tracker, id, is_master) != REIGN_OK)
        reign_error_clear();
    if (s->on_change != NULL)
        s->on_change(id, is_master, it->term, s->payload);
}

/* Step an item at `now` and perform the actions; returns its next wake.
 * A resignation is executed at once (the shard has no resign handler), then
 * the machine is stepped again so it pauses and campaigns anew. */
/* Balancing, before the runner steps: resign a surplus resource, and stop a
 * campaign for a resource that is not ours unless it is a probe. Returns
 * true when the item is parked (unwanted and not probing). */
static bool balance_item(reign_shard *s, shard_item *it, int64_t now)
{
    if (atomic_exchange(&it->resign_now, false) && reign_election_is_master(it->election)) {
        if (reign_election_resign(it->election) != REIGN_OK)
            reign_error_clear();
    }
    if (atomic_load(&it->wanted)) {
        if (it->parked) {
            /* Just became ours: campaign after a fresh pre-election pause,
             * not at the parked item's next check. */
            it->parked = false;
            runner_state_init(&it->st, &s->settings);
        }
        return false;
    }
    if (it->st.phase == RUNNER_CAMPAIGNING && !reign_election_is_master(it->election) &&
        now >= it->probe_until_ms) {
        /* Campaigning for another instance's target: stop (not master, so
         * resign only ends the campaign). */
        if (reign_election_resign(it->election) != REIGN_OK)
            reign_error_clear();
        it->probe_until_ms = 0;
        runner_step_campaign_failed(&it->st, now);
        it->parked = true;
        return true;
    }
    return it->st.phase == RUNNER_PAUSE || it->st.phase == RUNNER_INIT;
}

static int64_t step_item(shard_thread *t, shard_item *it, int64_t now)
{
    reign_shard *s = t->shard;
    bool resign_done = false;
    if (s->balance)
        balance_item(s, it, now);

    for (int pass = 0; pass < 2; pass++) {
        runner_input in = {
            .now_ms = now,
            .is_master = reign_election_is_master(it->election),
            .resign_done = resign_done,
            .draw = shard_draw(t),
        };
        runner_output o;
        runner_step(&it->st, &in, &o);

        if (o.actions & RUNNER_ACT_TRACK_FALSE)
            notify(s, it, false);
        if (o.actions & RUNNER_ACT_OFFER_RESIGNATION) {
            /* Errors leave the election to expire on its own; the machine
             * campaigns again either way. */
            if (reign_election_resign(it->election) != REIGN_OK)
                reign_error_clear();
            resign_done = true;
        }
        /* Decided on `wanted` itself, not on the phase seen before the
         * step: a resource just resigned as surplus may be told to campaign
         * in the same step (a zero pause) and must not win itself back. */
        if ((o.actions & RUNNER_ACT_CAMPAIGN) && s->balance && !atomic_load(&it->wanted)) {
            if (!atomic_exchange(&it->probe_free, false)) {
                /* Not ours: stay quiet until the balancer finds it free or
                 * makes it ours (both kick the item). */
                runner_step_campaign_failed(&it->st, now);
                it->parked = true;
                return now + SHARD_MAX_WAIT_MS;
            }
            /* The balancer read it masterless: campaign for one check interval. */
            it->probe_until_ms = now + s->settings.master_check_interval_ms;
        }
        if (o.actions & RUNNER_ACT_CAMPAIGN) {
            if (reign_election_start(it->election) != REIGN_OK) {
                reign_error_clear();
                runner_step_campaign_failed(&it->st, now);
                break;
            }
            it->campaigned = true;
        }
        if (o.actions & RUNNER_ACT_TRACK_TRUE) {
            uint64_t term = 0;
            /* Lost again already: term 0 now, and the next step reports the
             * loss (the election's event makes it due at once). */
            if (reign_election_term(it->election, &term) != REIGN_OK)
                reign_error_clear();
            it->term = term;
            atomic_store(&it->gained_at_ms, now);
            notify(s, it, true);
        }
        if (o.actions & RUNNER_ACT_TRACK_FALSE)
            atomic_store(&it->gained_at_ms, 0);
        if (!(o.actions & RUNNER_ACT_OFFER_RESIGNATION))
            break;
    }
    int64_t wake = it->st.phase == RUNNER_PAUSE ? it->st.campaign_at_ms : it->st.next_check_ms;
    if (it->probe_until_ms != 0 && it->probe_until_ms < wake)
        wake = it->probe_until_ms;
    return wake;
}

/* ---- 4. Thread loop ---------------------------------------------------------- */

/* On stop: report held resources as lost, then resign every election this
 * thread campaigned with so nothing stays master unwatched. */
static void thread_wind_down(shard_thread *t)
{
    reign_shard *s = t->shard;
    for (size_t i = 0; i < t->n_items; i++) {
        shard_item *it = t->batch[i];
        if (it->st.phase == RUNNER_MASTER)
            notify(s, it, false);
        if (it->campaigned) {
            int rc = reign_election_resign(it->election);
            if (rc != REIGN_OK && t->stop_rc == REIGN_OK) {
                t->stop_rc = rc;
                snprintf(t->stop_error, sizeof t->stop_error, "%s", reign_last_error());
            }
            it->campaigned = false;
        }
        runner_state_init(&it->st, &s->settings);
    }
}

static void *shard_thread_main(void *arg)
{
    shard_thread *t = arg;
    reign_shard *s = t->shard;

    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        int64_t now = shard_now(s);
        size_t k = 0;
        while (t->heap_n > 0 && t->heap[0]->wake_ms <= now) {
            shard_item *it = heap_pop(t);
            it->kicked = false;
            t->batch[k++] = it;
        }
        if (k > 0) {
            pthread_mutex_unlock(&t->mu);
            for (size_t i = 0; i < k; i++)
                t->batch[i]->wake_ms = step_item(t, t->batch[i], now);
            pthread_mutex_lock(&t->mu);
            for (size_t i = 0; i < k; i++) {
                shard_item *it = t->batch[i];
                if (it->kicked) /* an event came while it was being stepped */
                    it->wake_ms = INT64_MIN;
                it->kicked = false;
                heap_push(t, it);
            }
            continue;
        }
        if (t->heap_n == 0) {
            pthread_cond_wait(&t->cond, &t->mu);
            continue;
        }
        /* Sleep until the earliest wake, on the tick grid. */
        int64_t wait_ms = t->heap[0]->wake_ms - now;
        if (wait_ms > SHARD_MAX_WAIT_MS)
            wait_ms = SHARD_MAX_WAIT_MS; /* huge intervals: no overflow below */
        reign_mono_ns at = reign_clock_now_ns() + wait_ms * REIGN_NS_PER_MS;
        reign_mono_ns tick = SHARD_TICK_MS * REIGN_NS_PER_MS;
        at = (at + tick - 1) / tick * tick;
        struct timespec ts = reign_clock_timespec(at);
        int err = pthread_cond_timedwait(&t->cond, &t->mu, &ts);
        (void)err; /* ETIMEDOUT, a signal or a spurious wake: re-check */
    }
    /* Leave the heap empty: events after stop only set `kicked`. */
    for (size_t i = 0; i < t->heap_n; i++)
        t->heap[i]->heap_pos = SHARD_NOT_IN_HEAP;
    t->heap_n = 0;
    pthread_mutex_unlock(&t->mu);

    /* batch doubles as the list of the slice once the loop is over. */
    size_t k = 0;
    for (size_t i = 0; i < s->n_items; i++)
        if (s->items[i].owner == t)
            t->batch[k++] = &s->items[i];
    thread_wind_down(t);
    return NULL;
}

/* ---- 5. Public API --------------------------------------------------------------- */

static int check_shard_config(const reign_shard_config *c, runner_settings *settings)
{
    if (c->version == 0 || c->version > REIGN_SHARD_CONFIG_VERSION)
        return reign_error_set(REIGN_EINVAL,
                               "shard: reign_shard_config version %u is not supported "
                               "(use REIGN_SHARD_CONFIG_INIT; this build knows 1..%d)",
                               c->version, REIGN_SHARD_CONFIG_VERSION);
    int rc = runner_settings_from_config(&c->runner, settings);
    if (rc != REIGN_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", reign_last_error());
        return reign_error_set(rc, "shard: config.%s", why);
    }
    return REIGN_OK;
}

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

static int threads_create(reign_shard *s, unsigned n_threads)
{
    s->threads = calloc(n_threads, sizeof *s->threads);
    if (s->threads == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory for %u threads", n_threads);
    for (unsigned i = 0; i < n_threads; i++) {
        shard_thread *t = &s->threads[i];
        pthread_condattr_t attr;
        t->shard = s;
        t->n_items = s->n_items / n_threads + (i < s->n_items % n_threads ? 1 : 0);
        t->heap = calloc(t->n_items, sizeof *t->heap);
        t->batch = calloc(t->n_items, sizeof *t->batch);
        if (t->heap == NULL || t->batch == NULL) {
            free(t->heap);
            free(t->batch);
            return reign_error_set(REIGN_ENOMEM, "shard: out of memory for thread %u", i);
        }
        if (pthread_mutex_init(&t->mu, NULL) != 0) {
            free(t->heap);
            free(t->batch);
            return reign_error_set(REIGN_ENOMEM, "shard: pthread_mutex_init failed");
        }
        int err = pthread_condattr_init(&attr);
        if (err == 0) {
            /* Timed waits on CLOCK_MONOTONIC: a wall-clock step must not move them. */
            err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
            if (err == 0)
                err = pthread_cond_init(&t->cond, &attr);
            pthread_condattr_destroy(&attr);
        }
        if (err != 0) {
            pthread_mutex_destroy(&t->mu);
            free(t->heap);
            free(t->batch);
            return reign_error_set(REIGN_ENOMEM, "shard: pthread_cond_init failed (errno %d)", err);
        }
        s->n_threads = i + 1; /* threads_destroy frees up to here */
    }
    return REIGN_OK;
}

static void elections_close(reign_shard *s)
{
    for (size_t i = 0; i < s->n_items; i++) {
        if (s->items[i].election == NULL)
            continue;
        if (reign_election_close(s->items[i].election) != REIGN_OK)
            reign_error_clear();
        s->items[i].election = NULL;
    }
}

static void prefs_free(reign_shard *s)
{
    for (size_t i = 0; i < s->n_items && s->items != NULL; i++) {
        balance_preference *p = &s->items[i].pref;
        for (size_t k = 0; k < p->n; k++)
            free((char *)p->ids[k]);
        free((void *)p->ids);
        *p = (balance_preference){NULL, 0};
    }
}

int reign_shard_prefer(reign_shard *shard, const char *resource_id,
                       const char *const *instance_ids, size_t n)
{
    if (shard == NULL || resource_id == NULL || (instance_ids == NULL && n > 0))
        return reign_error_set(REIGN_EINVAL, "shard_prefer: NULL argument");
    pthread_mutex_lock(&shard->ctl_mu);
    int rc = REIGN_OK;
    shard_item *it = NULL;
    for (size_t i = 0; i < shard->n_items && it == NULL; i++)
        if (strcmp(reign_election_resource(shard->items[i].election), resource_id) == 0)
            it = &shard->items[i];
    if (shard->running)
        rc = reign_error_set(REIGN_ESTATE, "shard_prefer: call before reign_shard_start");
    else if (it == NULL)
        rc = reign_error_set(REIGN_EINVAL, "shard_prefer: %s is not a resource of this shard",
                             resource_id);
    char **ids = NULL;
    if (rc == REIGN_OK && n > 0) {
        ids = calloc(n, sizeof *ids);
        for (size_t k = 0; ids != NULL && k < n; k++)
            if ((ids[k] = strdup(instance_ids[k])) == NULL) {
                for (size_t j = 0; j < k; j++)
                    free(ids[j]);
                free(ids);
                ids = NULL;
            }
        if (ids == NULL)
            rc = reign_error_set(REIGN_ENOMEM, "shard_prefer: out of memory");
    }
    if (rc == REIGN_OK) {
        for (size_t k = 0; k < it->pref.n; k++)
            free((char *)it->pref.ids[k]);
        free((void *)it->pref.ids);
        it->pref = (balance_preference){(const char *const *)ids, n};
    }
    pthread_mutex_unlock(&shard->ctl_mu);
    return rc;
}

int reign_shard_new(reign_factory *factory, const char *const *ids, size_t n_ids,
                    const reign_shard_config *config, reign_shard **out)
{
    reign_shard_config defaults = REIGN_SHARD_CONFIG_INIT;
    reign_shard *s = NULL;
    bool ctl_ok = false;
    unsigned n_threads;
    int rc;

    if (factory == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "shard: %s is NULL", factory == NULL ? "factory" : "out");
    if (ids == NULL && n_ids > 0)
        return reign_error_set(REIGN_EINVAL, "shard: ids is NULL but n_ids is %zu", n_ids);
    if (config == NULL)
        config = &defaults;

    s = calloc(1, sizeof *s);
    if (s == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory");
    rc = check_shard_config(config, &s->settings);
    if (rc != REIGN_OK)
        goto out;
    s->factory = factory;
    s->clock = config->runner.clock != NULL ? config->runner.clock : default_clock;
    s->random = config->runner.random;
    s->clock_random_payload = config->runner.clock_random_payload;
    s->on_change = config->on_change;
    s->payload = config->payload;
    if (pthread_mutex_init(&s->ctl_mu, NULL) != 0) {
        rc = reign_error_set(REIGN_ENOMEM, "shard: pthread_mutex_init failed");
        goto out;
    }
    ctl_ok = true;

    rc = reign_tracker_new(ids, n_ids, NULL, NULL, &s->tracker);
    if (rc != REIGN_OK)
        goto out;

    if (n_ids > 0) {
        s->items = calloc(n_ids, sizeof *s->items);
        if (s->items == NULL) {
            rc = reign_error_set(REIGN_ENOMEM, "shard: out of memory for %zu resources", n_ids);
            goto out;
        }
    }
    s->n_items = n_ids;

    n_threads = config->threads != 0 ? config->threads : SHARD_DEFAULT_THREADS;
    if (n_threads > n_ids)
        n_threads = (unsigned)n_ids;
    if (n_threads > 0) {
        rc = threads_create(s, n_threads);
        if (rc != REIGN_OK)
            goto out;
    }

    for (size_t i = 0; i < n_ids; i++) {
        shard_item *it = &s->items[i];
        it->owner = &s->threads[i % n_threads];
        it->heap_pos = SHARD_NOT_IN_HEAP;
        runner_state_init(&it->st, &s->settings);
        rc = reign_election_new(factory, ids[i], &it->election);
        if (rc != REIGN_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", reign_last_error());
            rc = reign_error_set(rc, "shard: resource %zu: %s", i, why);
            goto out;
        }
        rc = reign_election_set_callback(it->election, shard_on_event, it);
        if (rc != REIGN_OK)
            goto out;
        it->hash = balance_hash(ids[i]);
        atomic_init(&it->wanted, !config->balance);
        atomic_init(&it->resign_now, false);
        atomic_init(&it->gained_at_ms, 0);
        atomic_init(&it->probe_free, false);
    }
    s->balance = config->balance;
    s->probe_interval_ms = config->probe_interval_ms > 0 ? config->probe_interval_ms
                                                          : 3 * reign_factory_ttl_ms(factory);
    if (s->balance && (rc = shard_balancer_init(s, config)) != REIGN_OK)
        goto out;
    *out = s;
    s = NULL;
    rc = REIGN_OK;
out:
    if (s != NULL) {
        shard_balancer_destroy(s);
        if (s->items != NULL)
            elections_close(s);
        prefs_free(s);
        threads_destroy(s);
        free(s->items);
        reign_tracker_free(s->tracker);
        if (ctl_ok)
            pthread_mutex_destroy(&s->ctl_mu);
        free(s);
    }
    return rc;
}

/* Stop and join the first n threads (ctl_mu held). */
static int threads_stop(reign_shard *s, unsigned n)
{
    int rc = REIGN_OK;
    for (unsigned i = 0; i < n; i++) {
        shard_thread *t = &s->threads[i];
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->mu);
    }
    for (unsigned i = 0; i < n; i++) {
        shard_thread *t = &s->threads[i];
        if (!t->started)
            continue;
        pthread_join(t->thread, NULL);
        t->started = false;
        if (t->stop_rc != REIGN_OK && rc == REIGN_OK)
            rc = reign_error_set(t->stop_rc, "shard: resign on stop: %s", t->stop_error);
    }
    return rc;
}

int reign_shard_start(reign_shard *shard)
{
    int rc = REIGN_OK;
    if (shard == NULL)
        return reign_error_set(REIGN_EINVAL, "shard: shard is NULL");

    pthread_mutex_lock(&shard->ctl_mu);
    if (shard->running)
        goto out; /* starting a started shard is OK, like elections */

    int64_t now = shard_now(shard);
    for (unsigned i = 0; i < shard->n_threads; i++) {
        shard_thread *t = &shard->threads[i];
        t->stop = false;
        t->stop_rc = REIGN_OK;
        t->stop_error[0] = '\0';
        t->rng = (uint64_t)reign_clock_now_ns() ^ ((uint64_t)getpid() << 32) ^
                 (uint64_t)(uintptr_t)t;
    }
    /* Targets first, so the first steps already know what is ours. */
    if (shard->balancer != NULL && (rc = shard_balancer_start(shard)) != REIGN_OK)
        goto out;
    /* No shard thread runs yet; the locks order this against events. */
    for (size_t i = 0; i < shard->n_items; i++) {
        shard_item *it = &shard->items[i];
        pthread_mutex_lock(&it->owner->mu);
        it->kicked = false;
        it->wake_ms = now; /* the first step draws the pre-election pause */
        atomic_store(&it->probe_free, false);
        it->probe_until_ms = 0;
        it->parked = false;
        heap_push(it->owner, it);
        pthread_mutex_unlock(&it->owner->mu);
    }
    for (unsigned i = 0; i < shard->n_threads; i++) {
        shard_thread *t = &shard->threads[i];
        int err = pthread_create(&t->thread, NULL, shard_thread_main, t);
        if (err != 0) {
            rc = reign_error_set(REIGN_ENOMEM, "shard: pthread_create failed (errno %d)", err);
            shard_balancer_stop(shard);
            threads_stop(shard, shard->n_threads);
            for (unsigned j = 0; j < shard->n_threads; j++) {
                shard_thread *u = &shard->threads[j];
                pthread_mutex_lock(&u->mu);
                for (size_t p = 0; p < u->heap_n; p++)
                    u->heap[p]->heap_pos = SHARD_NOT_IN_HEAP;
                u->heap_n = 0;
                pthread_mutex_unlock(&u->mu);
            }
            goto out;
        }
        t->started = true;
    }
    shard->running = true;
out:
    pthread_mutex_unlock(&shard->ctl_mu);
    return rc;
}

int reign_shard_stop(reign_shard *shard)
{
    int rc = REIGN_OK;
    if (shard == NULL)
        return reign_error_set(REIGN_EINVAL, "shard: shard is NULL");
    pthread_mutex_lock(&shard->ctl_mu);
    if (shard->running) {
        shard_balancer_stop(shard);
        rc = threads_stop(shard, shard->n_threads);
        shard->running = false;
    }
    pthread_mutex_unlock(&shard->ctl_mu);
    return rc;
}

void reign_shard_free(reign_shard *shard)
{
    if (shard == NULL)
        return;
    if (reign_shard_stop(shard) != REIGN_OK)
        reign_error_clear();
    /* Close the elections before the threads' locks go: a closing election
     * may still deliver a last event to shard_on_event. */
    shard_balancer_destroy(shard);
    elections_close(shard);
    prefs_free(shard);
    threads_destroy(shard);
    reign_tracker_free(shard->tracker);
    free(shard->items);
    pthread_mutex_destroy(&shard->ctl_mu);
    free(shard);
}

reign_tracker *reign_shard_tracker(reign_shard *shard)
{
    return shard != NULL ? shard->tracker : NULL;
}
