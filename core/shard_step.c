/* The shard's threads: each owns a min-heap of its items' wake times and
 * steps the items that are due through the one runner performer
 * (runner_perform.c), with the shard's say at its hooks: the balancer
 * decides whether to campaign, and every voluntary end is a revocation
 * that the application acknowledges before the lease is released.
 *
 * Map:
 *   1. per-thread heap    min-heap of next-wake times, guarded by thread->mu
 *   2. telling the app    tracker, on_change, on_event
 *   3. revocation         offer → acknowledgement or timeout → release
 *   4. stepping           the shard's say before the machine runs
 *   5. thread loop        step what is due, sleep until the earliest wake
 *
 * Threads: thread k owns the items given to it at add for their whole
 * life; only it steps them, so runner states need no lock. Election
 * callbacks (engine thread) only mark an item due and signal its owner,
 * so gained/lost reach the application at once. Wake-ups are rounded up
 * to a SHARD_TICK_MS grid so that 10,000 idle resources cost a few dozen
 * wake-ups per second, not thousands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "election_internal.h"
#include "error.h"
#include "runner_perform.h"
#include "shard_internal.h"
#include "tracker_internal.h"

#define SHARD_TICK_MS 10
#define SHARD_MAX_WAIT_MS (INT64_C(3600) * 1000)

/* ---- 1. Per-thread min-heap of wake times (thread->mu held) ------------- */

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

void reign_shard_heap_push(shard_thread *t, shard_item *it)
{
    /* Room for every owned item is reserved at add (reign_shard_heap_reserve). */
    heap_set(t, t->heap_n++, it);
    heap_sift_up(t, it->heap_pos);
}

int reign_shard_heap_reserve(shard_thread *t, size_t n)
{
    if (n <= t->heap_cap)
        return REIGN_OK;
    size_t cap = t->heap_cap < 64 ? 64 : t->heap_cap;
    while (cap < n)
        cap *= 2;
    shard_item **h = realloc(t->heap, cap * sizeof *h);
    if (h == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory for %zu resources", n);
    t->heap = h;
    t->heap_cap = cap;
    return REIGN_OK;
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

void reign_shard_kick(shard_item *it)
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

/* ---- 2. Telling the application -------------------------------------------- */

static int tell(reign_shard *s, shard_item *it, reign_shard_event_kind kind,
                reign_shard_reason reason)
{
    if (s->on_event == NULL)
        return REIGN_SHARD_DONE;
    reign_shard_event ev = {.kind = kind, .resource_id = it->id, .term = it->term,
                            .reason = reason};
    return s->on_event(s, &ev, s->payload);
}

static void track(reign_shard *s, shard_item *it, bool is_master)
{
    /* The tracker cannot fail here but for memory; the next transition
     * sets it right. */
    if (reign_tracker_set(s->tracker, it->id, is_master) != REIGN_OK)
        reign_error_clear();
    if (s->on_change != NULL)
        s->on_change(it->id, is_master, it->term, s->payload);
}

static reign_shard_reason loss_reason(shard_item *it)
{
    return atomic_load(&it->lost_reason) == REIGN_LOST_BACKEND ? REIGN_SHARD_REASON_BACKEND
                                                               : REIGN_SHARD_REASON_EXPIRED;
}

/* ---- 3. Revocation ----------------------------------------------------------- */

static void drain_slot_free(reign_shard *s);

/* The application has stopped (or took too long, or the lease ended by
 * itself): release, forget the pending revocation, say LOST. */
static void revocation_end(reign_shard *s, shard_item *it, reign_shard_reason reason)
{
    /* Belief ends now; the release rides the engine's next batch with the
     * other releases of this round (the next owner acquires after it). */
    reign_election_resign_nowait(it->election);
    it->campaigned = false;
    pthread_mutex_lock(&it->owner->mu);
    it->revoke_term = 0;
    it->acked = false;
    pthread_mutex_unlock(&it->owner->mu);
    atomic_store(&it->revoked, false);
    tell(s, it, REIGN_SHARD_LOST, reason);
    if (it->revoke_reason == REIGN_SHARD_REASON_DRAIN)
        drain_slot_free(s);
}

typedef struct step_ctx {
    shard_thread *t;
    shard_item *it;
    int64_t now;
} step_ctx;

static void hook_track(void *ctx, bool is_master, bool resigning)
{
    step_ctx *c = ctx;
    reign_shard *s = c->t->shard;
    shard_item *it = c->it;
    if (is_master) {
        uint64_t term = 0;
        /* Lost again already: term 0 now, and the next step reports the
         * loss (the election's event makes it due at once). */
        if (reign_election_term(it->election, &term) != REIGN_OK)
            reign_error_clear();
        it->term = term;
        track(s, it, true);
        tell(s, it, REIGN_SHARD_GAINED, REIGN_SHARD_REASON_NONE);
        return;
    }
    if (resigning)
        atomic_store(&it->revoked, true); /* is_master false from the first word */
#ifdef REIGN_HANDOVER_BROKEN
    /* Test build only (tests/handover): release before telling, as the
     * shard did before revocations, so the overlap test must catch it. */
    if (resigning && reign_election_resign(it->election) != REIGN_OK)
        reign_error_clear();
#endif
    track(s, it, false);
    if (!resigning)
        tell(s, it, REIGN_SHARD_LOST, loss_reason(it));
}

/* OFFER_RESIGNATION: a revocation. True if it is over already. */
static bool hook_offer(void *ctx)
{
    step_ctx *c = ctx;
    reign_shard *s = c->t->shard;
    shard_item *it = c->it;
    if (it->revoke_reason == REIGN_SHARD_REASON_NONE)
        it->revoke_reason = REIGN_SHARD_REASON_RESIGN_ODDS; /* the machine's own */
    pthread_mutex_lock(&it->owner->mu);
    it->revoke_term = it->term;
    it->acked = false;
    pthread_mutex_unlock(&it->owner->mu);
    if (tell(s, it, REIGN_SHARD_REVOKED, it->revoke_reason) != REIGN_SHARD_LATER) {
        revocation_end(s, it, it->revoke_reason);
        return true;
    }
    it->revoke_deadline_ms = c->now + s->revoke_timeout_ms;
    return false;
}

static uint64_t hook_draw(void *ctx)
{
    step_ctx *c = ctx;
    reign_shard *s = c->t->shard;
    if (s->random != NULL)
        return s->random(s->clock_random_payload);
    return reign_runner_splitmix64(&c->t->rng);
}

static runner_say hook_may_campaign(void *ctx, int64_t now, int64_t *hold_until)
{
    step_ctx *c = ctx;
    reign_shard *s = c->t->shard;
    shard_item *it = c->it;
    it->parked = false;
    it->probe_until_ms = 0; /* a new decision; only a probe sets it again */
    if (atomic_load(&s->stopping) || atomic_load(&s->draining) || atomic_load(&it->removing)) {
        it->parked = true;
        *hold_until = INT64_MAX;
        return RUNNER_SAY_HOLD_OFF;
    }
    if (s->balancer == NULL)
        return RUNNER_SAY_CAMPAIGN;
    uint64_t generation = 0;
    switch (reign_shard_balancer_say(s, it, now, hold_until, &generation)) {
    case SHARD_SAY_MINE:
        it->granted_generation = generation;
        return RUNNER_SAY_CAMPAIGN;
    case SHARD_SAY_PROBE:
        it->probe_until_ms = now + s->settings.master_check_interval_ms;
        it->granted_generation = generation;
        return RUNNER_SAY_CAMPAIGN;
    case SHARD_SAY_LATER:
        return RUNNER_SAY_HOLD_OFF;
    case SHARD_SAY_NOT_MINE:
        break;
    }
    it->parked = true;
    *hold_until = INT64_MAX;
    return RUNNER_SAY_HOLD_OFF;
}

static const runner_hooks shard_hooks = {
    .track = hook_track,
    .offer_resignation = hook_offer,
    .may_campaign = hook_may_campaign,
    .draw = hook_draw,
};

/* ---- 4. Stepping one item (owner thread, no lock held) -------------------- */

/* Draining: at most drain_parallel revocations at once. Items that find
 * no free slot queue for one and are kicked when a slot frees. */
static bool drain_slot_take(reign_shard *s, shard_item *it)
{
    unsigned n = atomic_load(&s->drain_slots);
    while (n > 0)
        if (atomic_compare_exchange_weak(&s->drain_slots, &n, n - 1))
            return true;
    pthread_mutex_lock(&s->drain_mu);
    if (!atomic_exchange(&it->drain_queued, true)) {
        char *id = strdup(it->id);
        if (id != NULL && s->drain_queue_n == s->drain_queue_cap) {
            size_t cap = s->drain_queue_cap ? 2 * s->drain_queue_cap : 64;
            char **q = realloc(s->drain_queue, cap * sizeof *q);
            if (q != NULL) {
                s->drain_queue = q;
                s->drain_queue_cap = cap;
            }
        }
        if (id != NULL && s->drain_queue_n < s->drain_queue_cap)
            s->drain_queue[s->drain_queue_n++] = id;
        else {
            free(id); /* out of memory: the item's next check retries */
            atomic_store(&it->drain_queued, false);
        }
    }
    pthread_mutex_unlock(&s->drain_mu);
    return false;
}

static void drain_slot_free(reign_shard *s)
{
    atomic_fetch_add(&s->drain_slots, 1);
    pthread_mutex_lock(&s->drain_mu);
    char *id = NULL;
    if (s->drain_queue_head < s->drain_queue_n)
        id = s->drain_queue[s->drain_queue_head++];
    if (s->drain_queue_head == s->drain_queue_n)
        s->drain_queue_head = s->drain_queue_n = 0;
    pthread_cond_broadcast(&s->drain_cond);
    pthread_mutex_unlock(&s->drain_mu);
    if (id == NULL)
        return;
    pthread_rwlock_rdlock(&s->index_lock);
    shard_item *it = reign_shard_index_find(s, id);
    if (it != NULL) {
        atomic_store(&it->drain_queued, false);
        reign_shard_kick(it);
    }
    pthread_rwlock_unlock(&s->index_lock);
    free(id);
}

/* Forget a removed item that is neither master nor revoking. Returns false
 * if it was added back meanwhile (keep stepping it). */
static bool drop_item(shard_thread *t, shard_item *it)
{
    reign_shard *s = t->shard;
    pthread_rwlock_wrlock(&s->index_lock);
    if (!atomic_load(&it->removing)) {
        pthread_rwlock_unlock(&s->index_lock);
        return false;
    }
    reign_shard_index_remove(s, it);
    pthread_rwlock_unlock(&s->index_lock);
    pthread_mutex_lock(&t->mu);
    t->n_items--;
    pthread_mutex_unlock(&t->mu);
    reign_shard_balancer_set_changed(s);
    if (reign_tracker_forget(s->tracker, it->id) != REIGN_OK)
        reign_error_clear();
    reign_shard_item_destroy(it);
    return true;
}

/* What to do with a revocation in flight, before the machine steps. */
static void step_revoking(reign_shard *s, shard_item *it, int64_t now, runner_input *in,
                          int64_t *wait_until)
{
    if (!reign_election_is_master(it->election)) {
        /* The lease ended on its own while the application wound down. */
        revocation_end(s, it, loss_reason(it));
        in->resign_done = true;
        return;
    }
    pthread_mutex_lock(&it->owner->mu);
    bool acked = it->acked;
    pthread_mutex_unlock(&it->owner->mu);
    if (acked) {
        revocation_end(s, it, it->revoke_reason);
        in->resign_done = true;
    } else if (now >= it->revoke_deadline_ms) {
        revocation_end(s, it, REIGN_SHARD_REASON_REVOKE_TIMEOUT);
        in->resign_done = true;
    } else {
        *wait_until = it->revoke_deadline_ms;
    }
}

/* Why a held item should end its mastership now, or NONE. */
static reign_shard_reason voluntary_end(reign_shard *s, shard_item *it, int64_t now)
{
    if (atomic_load(&it->removing))
        return REIGN_SHARD_REASON_REMOVED;
    if (atomic_load(&s->stopping))
        return REIGN_SHARD_REASON_STOP;
    if (atomic_load(&s->draining))
        return drain_slot_take(s, it) ? REIGN_SHARD_REASON_DRAIN : REIGN_SHARD_REASON_NONE;
    if (s->balancer != NULL && reign_shard_balancer_should_move(s, it, it->st.master_since_ms, now))
        return REIGN_SHARD_REASON_BALANCE;
    return REIGN_SHARD_REASON_NONE;
}

static void count_busy(shard_thread *t, shard_item *it)
{
    reign_shard *s = t->shard;
    bool busy = it->st.phase == RUNNER_MASTER || it->st.phase == RUNNER_RESIGNING;
    if (busy == it->busy)
        return;
    it->busy = busy;
    if (busy) {
        t->n_busy++;
        atomic_fetch_add(&s->n_busy, 1);
        return;
    }
    t->n_busy--;
    atomic_fetch_sub(&s->n_busy, 1);
    pthread_mutex_lock(&s->drain_mu);
    pthread_cond_broadcast(&s->drain_cond);
    pthread_mutex_unlock(&s->drain_mu);
}

/* Step an item at `now`; returns false if it was dropped (removed). */
static bool step_item(shard_thread *t, shard_item *it, int64_t now, int64_t *wake)
{
    reign_shard *s = t->shard;
    runner_input in = {.now_ms = now};
    bool master = reign_election_is_master(it->election);

    if (it->st.phase == RUNNER_RESIGNING) {
        int64_t wait_until = 0;
        step_revoking(s, it, now, &in, &wait_until);
        if (wait_until != 0) {
            *wake = wait_until;
            return true;
        }
    } else if (it->st.phase == RUNNER_MASTER && master) {
        it->revoke_reason = voluntary_end(s, it, now);
        in.resign_request = it->revoke_reason != REIGN_SHARD_REASON_NONE;
    } else if (it->st.phase != RUNNER_MASTER) {
        bool removing = atomic_load(&it->removing);
        bool probe_over = it->probe_until_ms != 0 && now >= it->probe_until_ms &&
                          it->st.phase == RUNNER_CAMPAIGNING && !master;
        if (removing || atomic_load(&s->stopping) || probe_over) {
            /* Not master (or not told so yet): stop campaigning; a lease won
             * just now is released before anyone was told of it. */
            if (it->campaigned)
                reign_election_resign_nowait(it->election);
            it->campaigned = false;
            it->probe_until_ms = 0;
            if (removing && drop_item(t, it))
                return false;
            reign_runner_state_init(&it->st, &s->settings);
            it->parked = true; /* until a kick: a new assignment, a probe, a start */
            *wake = INT64_MAX;
            return true;
        } else if (it->parked) {
            /* Kicked while held off: ask the balancer again after a fresh
             * pre-election pause. */
            it->parked = false;
            reign_runner_state_init(&it->st, &s->settings);
        }
    }

    step_ctx c = {.t = t, .it = it, .now = now};
    runner_phase before = it->st.phase;
    if (reign_runner_advance(&it->st, it->election, &in, &shard_hooks, &c, wake) != REIGN_OK)
        reign_error_clear(); /* the machine retries the campaign a check later */
    if (before != RUNNER_CAMPAIGNING && it->st.phase == RUNNER_CAMPAIGNING)
        it->campaigned = true;
    if (it->st.phase == RUNNER_MASTER)
        it->campaigned = true;
    if (in.resign_request && it->st.phase != RUNNER_RESIGNING) {
        /* Lost in the same instant: the machine reported a loss instead. */
        if (it->revoke_reason == REIGN_SHARD_REASON_DRAIN)
            drain_slot_free(s);
    }
    if (it->st.phase != RUNNER_RESIGNING)
        it->revoke_reason = REIGN_SHARD_REASON_NONE;
    count_busy(t, it);
    if (it->st.phase != RUNNER_CAMPAIGNING)
        it->probe_until_ms = 0; /* won (or gave up): the probe is over */
    if (it->probe_until_ms != 0 && it->probe_until_ms < *wake)
        *wake = it->probe_until_ms;
    return true;
}

/* ---- 5. Thread loop ---------------------------------------------------------- */

static bool batch_reserve(shard_thread *t, size_t n)
{
    if (n <= t->batch_cap)
        return true;
    size_t cap = t->batch_cap < 64 ? 64 : t->batch_cap;
    while (cap < n)
        cap *= 2;
    shard_item **b = realloc(t->batch, cap * sizeof *b);
    if (b == NULL)
        return false; /* step fewer this round */
    t->batch = b;
    t->batch_cap = cap;
    return true;
}

void *reign_shard_thread_main(void *arg)
{
    shard_thread *t = arg;
    reign_shard *s = t->shard;

    pthread_mutex_lock(&t->mu);
    /* On stop, run on until nothing is master or revoking any more. */
    while (!t->stop || t->n_busy > 0) {
        int64_t now = reign_shard_now(s);
        size_t k = 0;
        batch_reserve(t, t->heap_n);
        while (t->heap_n > 0 && t->heap[0]->wake_ms <= now && k < t->batch_cap) {
            shard_item *it = heap_pop(t);
            it->kicked = false;
            t->batch[k++] = it;
        }
        if (k > 0) {
            pthread_mutex_unlock(&t->mu);
            size_t kept = 0;
            for (size_t i = 0; i < k; i++) {
                shard_item *it = t->batch[i];
                int64_t wake = 0;
                if (step_item(t, it, now, &wake)) {
                    it->wake_ms = wake;
                    t->batch[kept++] = it;
                }
            }
            pthread_mutex_lock(&t->mu);
            for (size_t i = 0; i < kept; i++) {
                shard_item *it = t->batch[i];
                if (it->kicked) /* an event came while it was being stepped */
                    it->wake_ms = INT64_MIN;
                it->kicked = false;
                reign_shard_heap_push(t, it);
            }
            continue;
        }
        if (t->heap_n == 0) {
            pthread_cond_wait(&t->cond, &t->mu);
            continue;
        }
        /* Sleep until the earliest wake, on the tick grid. */
        int64_t wait_ms = t->heap[0]->wake_ms - now;
        if (wait_ms > SHARD_MAX_WAIT_MS || t->heap[0]->wake_ms == INT64_MAX)
            wait_ms = SHARD_MAX_WAIT_MS; /* huge intervals: no overflow below */
        if (s->clock_injected && wait_ms > SHARD_TICK_MS)
            wait_ms = SHARD_TICK_MS; /* a test's clock jumps without waking us */
        reign_mono_ns at = reign_clock_now_ns() + wait_ms * REIGN_NS_PER_MS;
        reign_mono_ns tick = SHARD_TICK_MS * REIGN_NS_PER_MS;
        at = (at + tick - 1) / tick * tick;
        struct timespec ts = reign_clock_timespec(at);
        int err = pthread_cond_timedwait(&t->cond, &t->mu, &ts);
        (void)err; /* ETIMEDOUT, a signal or a spurious wake: re-check */
    }
    /* Leave the heap empty: events after stop only set `kicked`; start
     * pushes every item again. */
    for (size_t i = 0; i < t->heap_n; i++)
        t->heap[i]->heap_pos = SHARD_NOT_IN_HEAP;
    t->heap_n = 0;
    pthread_mutex_unlock(&t->mu);
    return NULL;
}
