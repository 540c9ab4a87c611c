/* Observers (reign.h §4c): one thread per observer that reads the resources
 * a notification named (or all of them, at the poll or repair interval),
 * compares with what it saw and reports each change.
 *
 * Map:
 *   1. items: the watched resources and their index
 *   2. the engine client: notifications, backend observe(on/off)
 *   3. the observer thread: what is due, one batched read, the changes
 *   4. the public API: new/free, fd/take, wait_change, status
 *
 * Threads: the observer thread owns the read loop and calls the callback;
 * the engine thread marks items due (observe_notified, under f->mu
 * then o->mu); user threads take changes and wait. o->mu guards everything
 * of an observer below its `mu` line; no I/O and no callback under it. The
 * reads themselves go through the engine (reign_engine_read_many), so the
 * engine thread stays the only one that calls the backend.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "engine.h"
#include "error.h"
#include "log.h"

#define OBSERVE_DEFAULT_POLL_MS 1000
#define OBSERVE_MIN_POLL_MS 10
#define OBSERVE_DEFAULT_REPAIR_MS 30000
/* A failed read of an item is tried again after at most this. */
#define OBSERVE_RETRY_MAX_MS 1000

typedef struct obs_item {
    char *id;
    size_t len;
    uint64_t hash;
    struct obs_item *next_in_bucket;
    bool known;           /* read at least once */
    bool held;
    char *holder, *metadata;
    uint64_t term;        /* last term seen, kept across "none" */
    bool due;             /* read at the next round */
    bool in_read;         /* in the round being read */
    reign_mono_ns reread_at; /* 0: none; else read at this time (expiry, retry) */
    int64_t changed_ms;   /* seen_ms of its last change; -1 none */
} obs_item;

typedef struct obs_queue_entry {
    reign_change *change;
} obs_queue_entry;

struct reign_observer {
    reign_factory *f;
    reign_observer *next;       /* f->observers, guarded by f->mu */
    reign_observer_fn fn;
    void *payload;
    char *prefix;
    size_t prefix_len;
    int64_t poll_ms, repair_ms;
    int event_fd;               /* queue mode only */
    pthread_t thread;

    pthread_mutex_t mu;         /* guards everything below */
    pthread_cond_t cond;        /* the thread: something due; waiters: a change */
    bool stopping;
    obs_item **items;
    size_t n_items, cap_items;
    obs_item **buckets;
    size_t n_buckets;
    bool all_due;               /* read every item at the next round */
    reign_mono_ns next_full;    /* next poll/repair read of every item */
    reign_change **queue;       /* ring, queue mode */
    size_t q_head, q_n, q_cap;
    uint64_t dropped;
    reign_observer_status st;
};

/* ---- 1. items ----------------------------------------------------------- */

static obs_item *item_find(reign_observer *o, const char *id, size_t len, uint64_t hash)
{
    for (obs_item *it = o->buckets[hash % o->n_buckets]; it; it = it->next_in_bucket)
        if (it->hash == hash && it->len == len && memcmp(it->id, id, len) == 0)
            return it;
    return NULL;
}

static int index_grow(reign_observer *o)
{
    size_t n = o->n_buckets ? o->n_buckets * 2 : 64;
    obs_item **b = calloc(n, sizeof *b);
    if (b == NULL)
        return REIGN_ENOMEM;
    for (size_t i = 0; i < o->n_items; i++) {
        obs_item *it = o->items[i];
        it->next_in_bucket = b[it->hash % n];
        b[it->hash % n] = it;
    }
    free(o->buckets);
    o->buckets = b;
    o->n_buckets = n;
    return REIGN_OK;
}

/* Add a resource (o->mu held, or before the thread runs). NULL when out of
 * memory; the existing item when present. */
static obs_item *item_add(reign_observer *o, const char *id, size_t len)
{
    uint64_t hash = reign_hash(id, len);
    obs_item *it = o->n_buckets ? item_find(o, id, len, hash) : NULL;
    if (it != NULL)
        return it;
    if ((o->n_items + 1) * 2 > o->n_buckets && index_grow(o) != REIGN_OK)
        return NULL;
    if (o->n_items == o->cap_items) {
        size_t cap = o->cap_items ? o->cap_items * 2 : 16;
        obs_item **items = realloc(o->items, cap * sizeof *items);
        if (items == NULL)
            return NULL;
        o->items = items;
        o->cap_items = cap;
    }
    it = calloc(1, sizeof *it);
    if (it == NULL || (it->id = malloc(len + 1)) == NULL) {
        free(it);
        return NULL;
    }
    memcpy(it->id, id, len);
    it->id[len] = '\0';
    it->len = len;
    it->hash = hash;
    it->due = true;
    it->changed_ms = -1;
    it->next_in_bucket = o->buckets[hash % o->n_buckets];
    o->buckets[hash % o->n_buckets] = it;
    o->items[o->n_items++] = it;
    o->st.resources = o->n_items;
    return it;
}

static void item_free(obs_item *it)
{
    free(it->id);
    free(it->holder);
    free(it->metadata);
    free(it);
}

/* ---- 2. the engine client ------------------------------------------------ */

/* With f->mu held, on the engine thread: a notification named these
 * resources (all: it could not tell which). Marks them due for a read in
 * every observer that watches them (or adds them to a prefix observer) and
 * wakes those observers. Takes each observer's lock inside f->mu. */
static void observe_notified(reign_factory *f, void *ctx, char *const *names, const size_t *lens,
                             size_t n, bool all)
{
    (void)ctx;
    for (reign_observer *o = f->observers; o != NULL; o = o->next) {
        bool woke = false;
        pthread_mutex_lock(&o->mu);
        if (all) {
            o->all_due = true;
            woke = true;
        }
        for (size_t i = 0; i < n && !all; i++) {
            obs_item *it = item_find(o, names[i], lens[i], reign_hash(names[i], lens[i]));
            if (it == NULL && o->prefix != NULL && lens[i] >= o->prefix_len &&
                memcmp(names[i], o->prefix, o->prefix_len) == 0) {
                it = item_add(o, names[i], lens[i]);
                if (it == NULL)
                    o->all_due = true; /* cannot add it now: at least read the others */
            }
            if (it != NULL) {
                it->due = true;
                woke = true;
            }
        }
        if (woke)
            pthread_cond_broadcast(&o->cond);
        pthread_mutex_unlock(&o->mu);
    }
}

static void mark_all_due(reign_factory *f)
{
    pthread_mutex_lock(&f->mu);
    observe_notified(f, NULL, NULL, NULL, 0, true);
    pthread_mutex_unlock(&f->mu);
}

/* On the engine thread, no lock held, before each wait, with the
 * notification fd it is about to poll: tells the backend whether anybody
 * observes (backend->observe), and when the fd came back or changed (a
 * reconnect) has every observer read everything, since notifications may
 * have been missed meanwhile. */
static void observe_engine_sync(reign_factory *f, void *ctx, int notify_fd)
{
    (void)ctx;
    pthread_mutex_lock(&f->mu);
    int want = f->observers != NULL;
    pthread_mutex_unlock(&f->mu);

    const reign_backend *b = f->backend;
    bool can = b->observe != NULL && b->notify_fd != NULL &&
               b->notify_drain != NULL;
    if (want != f->observe_told) {
        f->observe_told = want;
        int rc = REIGN_ENOTSUP;
        if (can) {
            rc = b->observe(f->state, want);
            if (rc != REIGN_OK && want)
                reign_log(&f->logger, REIGN_LOG_INFO, "observe",
                          "the backend pushes no changes (%s): observers poll",
                          reign_status_str(rc));
        }
        atomic_store(&f->observe_push, want && rc == REIGN_OK);
        /* Changes before the backend began to report them were not heard. */
        if (want && rc == REIGN_OK)
            mark_all_due(f);
        /* A backend may have dropped its notification link to resubscribe
         * (redis): read everything again once the fd is seen next, even
         * if the new link got the old one's number. */
        f->observe_last_fd = -1;
        return;
    }
    if (!want) {
        f->observe_last_fd = notify_fd;
        return;
    }
    /* The notification source came back or was replaced (a reconnect):
     * whatever happened while it was away was not heard. */
    if (notify_fd >= 0 && notify_fd != f->observe_last_fd && f->observe_last_fd != -2)
        mark_all_due(f);
    f->observe_last_fd = notify_fd;
}

static const reign_engine_client observe_client = {
    .notified = observe_notified,
    .fd_seen = observe_engine_sync,
};

/* An engine call: tell the backend now what observe_engine_sync would
 * tell it at the engine's next wait. */
static void sync_on_engine(reign_factory *f, engine_call *call)
{
    const reign_backend *b = f->backend;
    int fd = b->notify_fd != NULL && b->notify_drain != NULL ? b->notify_fd(f->state) : -1;
    observe_engine_sync(f, NULL, fd);
    call->status = REIGN_OK;
}

/* ---- 3. the observer thread ---------------------------------------------- */

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

/* One allocation: the change and its strings. */
static reign_change *change_new(const obs_item *it, int64_t seen_ms, bool initial)
{
    size_t hl = it->held ? strlen(it->holder) + 1 : 0;
    size_t ml = it->held ? strlen(it->metadata) + 1 : 0;
    reign_change *c = malloc(sizeof *c + it->len + 1 + hl + ml);
    if (c == NULL)
        return NULL;
    char *p = (char *)(c + 1);
    memcpy(p, it->id, it->len + 1);
    *c = (reign_change){.resource_id = p, .held = it->held, .term = it->term,
                        .seen_ms = seen_ms, .initial = initial};
    p += it->len + 1;
    if (it->held) {
        memcpy(p, it->holder, hl);
        c->instance_id = p;
        p += hl;
        memcpy(p, it->metadata, ml);
        c->metadata = p;
    }
    return c;
}

static bool same_str(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* Apply one answer to its item (o->mu held). Returns a change to report,
 * NULL if nothing changed (or out of memory, which is logged). */
static reign_change *apply_answer(reign_observer *o, obs_item *it, read_request *r,
                                  reign_mono_ns now, int64_t now_ms)
{
    it->in_read = false;
    if (r->status != REIGN_OK && r->status != REIGN_ENOMASTER) {
        int64_t wait = o->poll_ms < OBSERVE_RETRY_MAX_MS ? o->poll_ms : OBSERVE_RETRY_MAX_MS;
        it->reread_at = now + wait * REIGN_NS_PER_MS;
        return NULL;
    }
    bool held = r->status == REIGN_OK;
    const reign_master *m = r->master;
    bool changed = !it->known || it->held != held ||
                   (held && (it->term != m->term || !same_str(it->holder, m->instance_id) ||
                             !same_str(it->metadata, m->metadata)));
    /* A lease nobody renews ends by itself: look again when it would. */
    it->reread_at = 0;
    if (held && r->remaining_ms >= 0)
        it->reread_at = now + (r->remaining_ms + 1) * REIGN_NS_PER_MS;
    if (!changed)
        return NULL;
    bool initial = !it->known;
    if (held) {
        char *h = dup_or_empty(m->instance_id), *md = dup_or_empty(m->metadata);
        if (h == NULL || md == NULL) {
            free(h);
            free(md);
            it->due = true; /* try again: we could not remember it */
            return NULL;
        }
        free(it->holder);
        free(it->metadata);
        it->holder = h;
        it->metadata = md;
        it->term = m->term;
    } else {
        free(it->holder);
        free(it->metadata);
        it->holder = it->metadata = NULL;
    }
    it->known = true;
    it->held = held;
    it->changed_ms = now_ms;
    reign_change *c = change_new(it, now_ms, initial);
    if (c == NULL)
        reign_log(&o->f->logger, REIGN_LOG_ERROR, "observe", "out of memory: a change of %s is not reported",
                  it->id);
    return c;
}

static void queue_push(reign_observer *o, reign_change *c)
{
    if (o->q_n == o->q_cap && o->q_cap < REIGN_OBSERVER_QUEUE_MAX) {
        size_t cap = o->q_cap ? o->q_cap * 2 : 64;
        reign_change **q = malloc(cap * sizeof *q);
        if (q != NULL) {
            for (size_t i = 0; i < o->q_n; i++)
                q[i] = o->queue[(o->q_head + i) % o->q_cap];
            free(o->queue);
            o->queue = q;
            o->q_head = 0;
            o->q_cap = cap;
        }
    }
    if (o->q_n == o->q_cap) {
        if (o->q_cap == 0) {
            reign_change_free(c);
            return;
        }
        /* Full: the oldest goes; later changes carry the latest state. */
        reign_change_free(o->queue[o->q_head]);
        o->q_head = (o->q_head + 1) % o->q_cap;
        o->q_n--;
        if (o->dropped++ % 10000 == 0)
            reign_log(&o->f->logger, REIGN_LOG_WARN, "observe",
                      "%zu changes wait untaken: dropping the oldest", (size_t)o->q_cap);
    }
    o->queue[(o->q_head + o->q_n) % o->q_cap] = c;
    o->q_n++;
    uint64_t one = 1;
    ssize_t w;
    do
        w = write(o->event_fd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
}

/* Wait (o->mu held) until something is due; false when stopping. Fills
 * the round's items (in_read set). */
static bool wait_round(reign_observer *o, obs_item ***round, size_t *n_round, size_t *cap_round)
{
    for (;;) {
        if (o->stopping)
            return false;
        reign_mono_ns now = reign_clock_now_ns();
        bool push = atomic_load(&o->f->observe_push) != 0;
        int64_t interval_ms = push ? o->repair_ms : o->poll_ms;
        if (interval_ms > 0 && now >= o->next_full)
            o->all_due = true;
        reign_mono_ns wake = interval_ms > 0 ? o->next_full : now + 60000 * REIGN_NS_PER_MS;
        if (o->all_due && interval_ms > 0)
            o->next_full = now + interval_ms * REIGN_NS_PER_MS;
        *n_round = 0;
        for (size_t i = 0; i < o->n_items; i++) {
            obs_item *it = o->items[i];
            if (o->all_due || it->due || (it->reread_at != 0 && now >= it->reread_at)) {
                if (*n_round == *cap_round) {
                    size_t cap = *cap_round ? *cap_round * 2 : 16;
                    obs_item **r = realloc(*round, cap * sizeof *r);
                    if (r == NULL)
                        break; /* read what fits; the rest stays due */
                    *round = r;
                    *cap_round = cap;
                }
                it->due = false;
                it->in_read = true;
                (*round)[(*n_round)++] = it;
            } else if (it->reread_at != 0 && it->reread_at < wake) {
                wake = it->reread_at;
            }
        }
        o->all_due = false;
        if (*n_round > 0)
            return true;
        /* Push state may change without a signal (the engine decides it):
         * look again within a second. */
        reign_mono_ns cap = now + 1000 * REIGN_NS_PER_MS;
        struct timespec ts = reign_clock_timespec(wake < cap ? wake : cap);
        pthread_cond_timedwait(&o->cond, &o->mu, &ts);
    }
}

static void *observer_main(void *arg)
{
    reign_observer *o = arg;
    obs_item **round = NULL;
    size_t n_round = 0, cap_round = 0;
    read_request *reqs = NULL;
    size_t cap_reqs = 0;
    reign_change **changes = NULL;

    pthread_mutex_lock(&o->mu);
    while (wait_round(o, &round, &n_round, &cap_round)) {
        pthread_mutex_unlock(&o->mu);
        if (n_round > cap_reqs) {
            read_request *r = realloc(reqs, n_round * sizeof *r);
            reign_change **c = r != NULL ? realloc(changes, n_round * sizeof *c) : NULL;
            if (r != NULL)
                reqs = r;
            if (c != NULL) {
                changes = c;
                cap_reqs = n_round;
            }
        }
        size_t n = n_round < cap_reqs ? n_round : cap_reqs;
        for (size_t i = 0; i < n; i++)
            reqs[i] = (read_request){.resource = round[i]->id,
                                     .resource_len = round[i]->len, .remaining_ms = -1};
        reign_engine_read_many(o->f, reqs, n);

        reign_mono_ns now = reign_clock_now_ns();
        int64_t now_ms = reign_monotonic_ms();
        size_t n_changes = 0;
        bool failed = false;
        int fail_status = REIGN_OK;
        pthread_mutex_lock(&o->mu);
        for (size_t i = 0; i < n; i++) {
            if (reqs[i].status != REIGN_OK && reqs[i].status != REIGN_ENOMASTER) {
                failed = true;
                fail_status = reqs[i].status;
            }
            reign_change *c = apply_answer(o, round[i], &reqs[i], now, now_ms);
            if (c != NULL)
                changes[n_changes++] = c;
            reign_master_free(reqs[i].master);
            free(reqs[i].error);
        }
        for (size_t i = n; i < n_round; i++) { /* no room to read them: next round */
            round[i]->in_read = false;
            round[i]->due = true;
        }
        o->st.reads++;
        if (failed) {
            o->st.failures++;
            o->st.last_error_status = fail_status;
        } else {
            o->st.failures = 0;
            o->st.last_ok_ms = now_ms;
        }
        o->st.changes += n_changes;
        if (n_changes > 0)
            o->st.last_change_ms = now_ms;
        if (o->fn == NULL)
            for (size_t i = 0; i < n_changes; i++)
                queue_push(o, changes[i]);
        pthread_cond_broadcast(&o->cond);
        pthread_mutex_unlock(&o->mu);
        if (o->fn != NULL) {
            for (size_t i = 0; i < n_changes; i++) {
                o->fn(o, changes[i], o->payload);
                reign_change_free(changes[i]);
            }
        }
        pthread_mutex_lock(&o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    free(round);
    free(reqs);
    free(changes);
    return NULL;
}

/* ---- 4. the public API -------------------------------------------------------- */

static void observer_destroy(reign_observer *o)
{
    for (size_t i = 0; i < o->n_items; i++)
        item_free(o->items[i]);
    free(o->items);
    free(o->buckets);
    for (size_t i = 0; i < o->q_n; i++)
        reign_change_free(o->queue[(o->q_head + i) % o->q_cap]);
    free(o->queue);
    free(o->prefix);
    if (o->event_fd >= 0)
        close(o->event_fd);
    pthread_cond_destroy(&o->cond);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

int reign_observer_new(reign_factory *f, const reign_observer_config *c, reign_observer **out)
{
    if (f == NULL || c == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "observer_new: NULL argument");
    if (c->version == 0 || c->version > REIGN_OBSERVER_CONFIG_VERSION)
        return reign_error_set(REIGN_EINVAL, "observer_new: config version %u unknown (this "
                                             "library knows 1..%d; use REIGN_OBSERVER_CONFIG_INIT)",
                               c->version, REIGN_OBSERVER_CONFIG_VERSION);
    if (c->n_ids > 0 && c->ids == NULL)
        return reign_error_set(REIGN_EINVAL, "observer_new: ids is NULL with n_ids %zu", c->n_ids);
    if (c->n_ids == 0 && c->prefix == NULL)
        return reign_error_set(REIGN_EINVAL, "observer_new: nothing to observe (no ids, no prefix)");
    if (c->prefix != NULL && strlen(c->prefix) > REIGN_RESOURCE_ID_MAX)
        return reign_error_set(REIGN_EINVAL, "observer_new: prefix longer than %d bytes",
                               REIGN_RESOURCE_ID_MAX);
    if (c->poll_interval_ms < 0 || (c->poll_interval_ms > 0 && c->poll_interval_ms < OBSERVE_MIN_POLL_MS))
        return reign_error_set(REIGN_EINVAL, "observer_new: poll_interval_ms %lld is below %d ms",
                               (long long)c->poll_interval_ms, OBSERVE_MIN_POLL_MS);
    int rc;
    for (size_t i = 0; i < c->n_ids; i++)
        if ((rc = reign_resource_id_check(c->ids[i])) != REIGN_OK)
            return rc;
    if (reign_engine_is_engine_thread(f))
        return reign_error_set(REIGN_ESTATE, "observer_new: not from a reign callback");

    reign_observer *o = calloc(1, sizeof *o);
    if (o == NULL)
        return reign_error_set(REIGN_ENOMEM, "observer_new: out of memory");
    o->f = f;
    o->fn = c->fn;
    o->payload = c->payload;
    o->poll_ms = c->poll_interval_ms > 0 ? c->poll_interval_ms : OBSERVE_DEFAULT_POLL_MS;
    o->repair_ms = c->repair_interval_ms == 0 ? OBSERVE_DEFAULT_REPAIR_MS
                   : c->repair_interval_ms < 0 ? 0 : c->repair_interval_ms;
    o->event_fd = -1;
    o->st.last_change_ms = o->st.last_ok_ms = -1;
    pthread_mutex_init(&o->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cond, &ca);
    pthread_condattr_destroy(&ca);
    rc = REIGN_ENOMEM;
    if (index_grow(o) != REIGN_OK)
        goto fail;
    if (c->prefix != NULL) {
        o->prefix_len = strlen(c->prefix);
        if ((o->prefix = strdup(c->prefix)) == NULL)
            goto fail;
    }
    for (size_t i = 0; i < c->n_ids; i++)
        if (item_add(o, c->ids[i], strlen(c->ids[i])) == NULL)
            goto fail;
    if (o->fn == NULL) {
        o->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (o->event_fd < 0) {
            rc = reign_error_set(REIGN_EIO, "observer_new: eventfd: %s", strerror(errno));
            goto fail_msg;
        }
    }
    o->next_full = reign_clock_now_ns();
    /* Listed before the thread starts, so no notification after this
     * return goes unheard. */
    pthread_mutex_lock(&f->mu);
    rc = reign_engine_attach(f, &observe_client); /* stays: it turns pushes off at the end */
    if (rc == REIGN_OK) {
        o->next = f->observers;
        f->observers = o;
    }
    pthread_mutex_unlock(&f->mu);
    if (rc != REIGN_OK)
        goto fail_msg;
    int e = pthread_create(&o->thread, NULL, observer_main, o);
    if (e != 0) {
        rc = reign_error_set(REIGN_ENOMEM, "observer_new: cannot start thread: %s", strerror(e));
        pthread_mutex_lock(&f->mu);
        for (reign_observer **p = &f->observers; *p; p = &(*p)->next)
            if (*p == o) {
                *p = o->next;
                break;
            }
        pthread_mutex_unlock(&f->mu);
        goto fail_msg;
    }
    /* Tell the backend that somebody observes before returning: a change
     * after this return is pushed. (A prefix observer knows no resource
     * until a notification names one, so a change made while the backend
     * was not yet told would never be heard.) */
    engine_call call = {.fn = sync_on_engine};
    reign_engine_run_call(f, &call);
    *out = o;
    return REIGN_OK;
fail:
    rc = reign_error_set(REIGN_ENOMEM, "observer_new: out of memory");
fail_msg:
    observer_destroy(o);
    return rc;
}

void reign_observer_free(reign_observer *o)
{
    if (o == NULL)
        return;
    reign_factory *f = o->f;
    pthread_mutex_lock(&f->mu);
    for (reign_observer **p = &f->observers; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            break;
        }
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_lock(&o->mu);
    o->stopping = true;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thread, NULL);
    reign_engine_wake(f); /* the last one gone: the backend may stop pushing */
    observer_destroy(o);
}

int reign_observer_fd(const reign_observer *o)
{
    return o != NULL ? o->event_fd : -1;
}

void reign_change_free(reign_change *c)
{
    free(c);
}

static struct timespec deadline_after(int64_t timeout_ms)
{
    return reign_clock_timespec(reign_clock_now_ns() + timeout_ms * REIGN_NS_PER_MS);
}

int reign_observer_take(reign_observer *o, int64_t timeout_ms, reign_change **out)
{
    if (o == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "observer_take: NULL argument");
    if (o->fn != NULL)
        return reign_error_set(REIGN_ESTATE, "observer_take: the observer has a callback: "
                                             "changes go there");
    struct timespec ts = deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    int rc = REIGN_OK;
    pthread_mutex_lock(&o->mu);
    while (o->q_n == 0 && rc == REIGN_OK) {
        if (timeout_ms == 0 || o->stopping)
            rc = REIGN_ETIMEDOUT;
        else if (timeout_ms < 0)
            pthread_cond_wait(&o->cond, &o->mu);
        else if (pthread_cond_timedwait(&o->cond, &o->mu, &ts) == ETIMEDOUT && o->q_n == 0)
            rc = REIGN_ETIMEDOUT;
    }
    if (rc == REIGN_OK) {
        *out = o->queue[o->q_head];
        o->q_head = (o->q_head + 1) % o->q_cap;
        o->q_n--;
        if (o->q_n == 0) {
            uint64_t v;
            ssize_t r = read(o->event_fd, &v, sizeof v); /* not readable while empty */
            (void)r;
        }
    }
    pthread_mutex_unlock(&o->mu);
    if (rc == REIGN_ETIMEDOUT)
        return reign_error_set(rc, "observer_take: no change within %lld ms", (long long)timeout_ms);
    return rc;
}

int reign_observer_wait_change(reign_observer *o, const char *resource_id, int64_t after_ms,
                               int64_t timeout_ms, reign_change **out)
{
    if (o == NULL)
        return reign_error_set(REIGN_EINVAL, "observer_wait_change: NULL observer");
    struct timespec ts = deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    int rc = REIGN_OK;
    obs_item *hit = NULL;
    pthread_mutex_lock(&o->mu);
    obs_item *it = NULL;
    if (resource_id != NULL) {
        size_t len = strlen(resource_id);
        it = item_find(o, resource_id, len, reign_hash(resource_id, len));
        if (it == NULL && !(o->prefix != NULL && len >= o->prefix_len &&
                            memcmp(resource_id, o->prefix, o->prefix_len) == 0)) {
            pthread_mutex_unlock(&o->mu);
            return reign_error_set(REIGN_EINVAL, "observer_wait_change: %s is not observed",
                                   resource_id);
        }
    }
    for (;;) {
        if (resource_id != NULL) {
            size_t len = strlen(resource_id);
            it = item_find(o, resource_id, len, reign_hash(resource_id, len));
            if (it != NULL && it->changed_ms >= after_ms)
                hit = it;
        } else {
            for (size_t i = 0; i < o->n_items; i++)
                if (o->items[i]->changed_ms >= after_ms &&
                    (hit == NULL || o->items[i]->changed_ms > hit->changed_ms))
                    hit = o->items[i];
        }
        if (hit != NULL || o->stopping || timeout_ms == 0)
            break;
        if (timeout_ms < 0)
            pthread_cond_wait(&o->cond, &o->mu);
        else if (pthread_cond_timedwait(&o->cond, &o->mu, &ts) == ETIMEDOUT)
            timeout_ms = 0; /* one last look */
    }
    reign_change *c = NULL;
    if (hit != NULL && out != NULL) {
        c = change_new(hit, hit->changed_ms, false);
        if (c == NULL)
            rc = REIGN_ENOMEM;
    }
    if (hit == NULL)
        rc = REIGN_ETIMEDOUT;
    pthread_mutex_unlock(&o->mu);
    if (rc == REIGN_ETIMEDOUT)
        return reign_error_set(rc, "observer_wait_change: no change of %s since %lld ms",
                               resource_id != NULL ? resource_id : "any resource",
                               (long long)after_ms);
    if (rc != REIGN_OK)
        return reign_error_set(rc, "observer_wait_change: out of memory");
    if (out != NULL)
        *out = c;
    return REIGN_OK;
}

int reign_observer_status_get(reign_observer *o, reign_observer_status *out)
{
    if (o == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "observer_status: NULL argument");
    pthread_mutex_lock(&o->mu);
    *out = o->st;
    pthread_mutex_unlock(&o->mu);
    out->pushed = atomic_load(&o->f->observe_push) != 0;
    return REIGN_OK;
}
