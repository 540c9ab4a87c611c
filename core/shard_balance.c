/* The shard's fair-share balancer: one thread per balancing shard that
 * turns the membership view and the shard's current ID set into an
 * assignment (reign_balance_assign) and publishes it, immutable and
 * generation-stamped; shard threads read it at step time through
 * reign_shard_balancer_say and _should_move. The balancer writes nothing into
 * items: it only kicks those whose answer changed.
 *
 * Calm by construction:
 *   - a resource that becomes ours is taken at once if it is new to the
 *     set or members only left; otherwise only after the assignment has
 *     been unchanged for settle_ms (two membership refreshes): observers
 *     see a new member at slightly different times, and acting on a view
 *     they do not share yet would move resources twice;
 *   - a held resource that is no longer ours moves only once the view and
 *     the ID set have been unchanged for settle_ms, it has been held for
 *     master_hold_interval, and one of the check's max_moves tokens is
 *     free; the move itself is a revocation (shard_step.c);
 *   - so that nothing stays masterless when the instance meant for it
 *     does not take it, each check reads the unheld resources that are not
 *     ours whose probe is due (each about once per probe interval, in one
 *     batch) and grants a one-check campaign to those read masterless
 *     twice, settle_ms apart (a handover in progress is not raced). */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "members.h"
#include "shard_internal.h"

#define DEFAULT_MAX_MOVES 8

typedef struct assignment_entry {
    uint64_t hash;
    char *id;
    size_t owner;        /* index into members, BALANCE_NONE if none */
    int64_t take_at_ms;  /* ours: campaign from then on */
} assignment_entry;

/* Immutable once published; readers hold a reference. */
typedef struct assignment {
    atomic_int refs;
    uint64_t generation;
    assignment_entry *e;  /* sorted by (hash, id) */
    size_t n;
    char **members;       /* instance IDs of the stable members, in view order */
    size_t n_members;
    size_t self;          /* our index, BALANCE_NONE if we are not a stable member */
    bool standby;         /* we found no member slot: take nothing, probe nothing */
    size_t target, fair_share;
    int64_t moves_from_ms; /* surplus may move from then on */
    uint64_t grew_generation; /* the generation in which the stable members last grew */
} assignment;

typedef struct timed_id {
    char *id;
    int64_t at_ms;
} timed_id;

/* A small set of IDs with a time each, sorted by ID. */
typedef struct timed_set {
    timed_id *v;
    size_t n, cap;
} timed_set;

struct shard_balancer {
    reign_shard *shard;
    pthread_t thread;
    bool started;
    unsigned max_moves;
    int64_t check_ms, settle_ms, probe_interval_ms;
    reign_membership_config membership;
    atomic_int move_tokens;

    /* mu guards stop, kicked, current and grants. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop, kicked;
    assignment *current;
    timed_set grants;      /* probe grants: campaign until at_ms */

    /* Balancer thread only. */
    char *view_key;        /* stable members + weights of the current assignment */
    uint64_t set_generation;
    uint64_t generation;
    int64_t started_ms, last_probe_ms;
    timed_set free_since;  /* read masterless once, at at_ms */
};

/* ---- Small sorted sets of IDs ---------------------------------------------- */

static size_t set_find(const timed_set *t, const char *id, bool *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->v[mid].id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void set_put(timed_set *t, const char *id, int64_t at)
{
    bool found;
    size_t i = set_find(t, id, &found);
    if (found) {
        t->v[i].at_ms = at;
        return;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        timed_id *v = realloc(t->v, cap * sizeof *v);
        if (v == NULL)
            return; /* out of memory: the next probe tries again */
        t->v = v;
        t->cap = cap;
    }
    char *copy = strdup(id);
    if (copy == NULL)
        return;
    memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof *t->v);
    t->v[i] = (timed_id){copy, at};
    t->n++;
}

static void set_drop(timed_set *t, const char *id)
{
    bool found;
    size_t i = set_find(t, id, &found);
    if (!found)
        return;
    free(t->v[i].id);
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof *t->v);
    t->n--;
}

static void set_clear(timed_set *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].id);
    free(t->v);
    *t = (timed_set){NULL, 0, 0};
}

/* ---- Assignments ------------------------------------------------------------ */

static void assignment_unref(assignment *a)
{
    if (a == NULL || atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->e[i].id);
    for (size_t i = 0; i < a->n_members; i++)
        free(a->members[i]);
    free(a->e);
    free(a->members);
    free(a);
}

static assignment *assignment_get(shard_balancer *b)
{
    pthread_mutex_lock(&b->mu);
    assignment *a = b->current;
    if (a != NULL)
        atomic_fetch_add(&a->refs, 1);
    pthread_mutex_unlock(&b->mu);
    return a;
}

static int cmp_entry(const void *x, const void *y)
{
    const assignment_entry *a = x, *b = y;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    return strcmp(a->id, b->id);
}

static const assignment_entry *assignment_find(const assignment *a, uint64_t hash, const char *id)
{
    if (a == NULL)
        return NULL;
    assignment_entry key = {.hash = hash, .id = (char *)id};
    return bsearch(&key, a->e, a->n, sizeof *a->e, cmp_entry);
}

static bool is_ours(const assignment *a, const assignment_entry *e)
{
    return a != NULL && e != NULL && a->self != BALANCE_NONE && e->owner == a->self;
}

/* "id\tweight\n" for each stable member, in ID order: equal keys mean the
 * same assignment. */
static char *view_key_of(const reign_member *m, size_t n, bool standby)
{
    size_t len = 16;
    for (size_t i = 0; i < n; i++)
        if (m[i].stable)
            len += strlen(m[i].instance_id) + 16;
    char *key = malloc(len);
    if (key == NULL)
        return NULL;
    size_t at = (size_t)snprintf(key, len, "%s", standby ? "standby\n" : "");
    for (size_t i = 0; i < n; i++)
        if (m[i].stable)
            at += (size_t)snprintf(key + at, len - at, "%s\t%u\n", m[i].instance_id, m[i].weight);
    return key;
}

/* True if every stable member of m is in the view `key` (only departures
 * or nothing since then). */
static bool members_within(const reign_member *m, size_t n, const char *key)
{
    if (key == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!m[i].stable)
            continue;
        size_t len = strlen(m[i].instance_id);
        bool found = false;
        for (const char *line = key; *line && !found; line = strchr(line, '\n') + 1)
            found = strncmp(line, m[i].instance_id, len) == 0 && line[len] == '\t';
        if (!found)
            return false;
    }
    return true;
}

typedef struct gather_ctx {
    shard_item **items;
    uint64_t *hashes;
    balance_preference *prefs;
    size_t n;
} gather_ctx;

static bool gather_item(shard_item *it, void *ctx)
{
    gather_ctx *g = ctx;
    g->items[g->n] = it;
    g->hashes[g->n] = it->hash;
    g->prefs[g->n] = it->pref;
    g->n++;
    return true;
}

/* Compute and publish a new assignment for members m; kick the items whose
 * answer changed. Returns false if out of memory (the old one stays). */
static bool reassign(shard_balancer *b, const reign_member *m, size_t n_m, bool departures_only,
                     bool standby, int64_t now)
{
    reign_shard *s = b->shard;
    assignment *prev = b->current; /* only this thread publishes */
    assignment *a = calloc(1, sizeof *a);
    balance_member *bm = calloc(n_m ? n_m : 1, sizeof *bm);
    bool ok = a != NULL && bm != NULL;
    if (ok) {
        a->members = calloc(n_m ? n_m : 1, sizeof *a->members);
        ok = a->members != NULL;
    }
    if (!ok) {
        free(a);
        a = NULL;
    }
    size_t nb = 0, self = BALANCE_NONE;
    for (size_t i = 0; ok && i < n_m; i++) {
        if (!m[i].stable)
            continue;
        if (m[i].self && !standby)
            self = nb;
        a->members[nb] = strdup(m[i].instance_id);
        ok = a->members[nb] != NULL;
        bm[nb] = (balance_member){m[i].instance_id, m[i].weight};
        nb += ok;
    }
    if (a != NULL) {
        a->n_members = nb;
        a->self = self;
        a->standby = standby;
        atomic_init(&a->refs, 1);
    }

    pthread_rwlock_rdlock(&s->index_lock);
    size_t n = s->n_items;
    gather_ctx g = {
        .items = malloc((n ? n : 1) * sizeof *g.items),
        .hashes = malloc((n ? n : 1) * sizeof *g.hashes),
        .prefs = malloc((n ? n : 1) * sizeof *g.prefs),
    };
    size_t *owner = malloc((n ? n : 1) * sizeof *owner);
    if (ok)
        ok = g.items != NULL && g.hashes != NULL && g.prefs != NULL && owner != NULL;
    if (ok) {
        a->e = calloc(n ? n : 1, sizeof *a->e);
        ok = a->e != NULL;
    }
    if (ok) {
        reign_shard_index_each(s, gather_item, &g);
        ok = reign_balance_assign(g.hashes, n, g.prefs, bm, nb, owner) == 0;
    }
    for (size_t i = 0; ok && i < n; i++) {
        shard_item *it = g.items[i];
        const assignment_entry *pe = assignment_find(prev, it->hash, it->id);
        bool mine = self != BALANCE_NONE && owner[i] == self;
        bool was_mine = is_ours(prev, pe);
        a->e[i] = (assignment_entry){
            .hash = it->hash,
            .id = strdup(it->id),
            .owner = owner[i],
            /* Ours already: as before. New to the set (not just to us: a
             * first assignment waits) or members only left: now. Else once
             * everyone has seen the same members. */
            .take_at_ms = was_mine                                  ? pe->take_at_ms
                          : (prev != NULL && pe == NULL) || departures_only ? now
                                                                            : now + b->settle_ms,
        };
        ok = a->e[i].id != NULL;
        a->n += ok;
        a->target += mine;
        g.items[i] = pe == NULL || mine != was_mine ? it : NULL; /* kick once published */
    }
    if (ok) {
        qsort(a->e, a->n, sizeof *a->e, cmp_entry);
        a->fair_share = self != BALANCE_NONE ? reign_balance_capacity(n, bm, nb, self) : 0;
        a->generation = ++b->generation;
        a->moves_from_ms = now + b->settle_ms;
        a->grew_generation = prev == NULL || a->n_members > prev->n_members
                                 ? a->generation
                                 : prev->grew_generation;
        pthread_mutex_lock(&b->mu);
        b->current = a;
        pthread_mutex_unlock(&b->mu);
        /* After publishing, or a kicked item could read the old answer. */
        for (size_t i = 0; i < n; i++)
            if (g.items[i] != NULL)
                reign_shard_kick(g.items[i]);
    }
    pthread_rwlock_unlock(&s->index_lock);
    if (ok)
        assignment_unref(prev);
    else
        assignment_unref(a);
    free(bm);
    free(g.items);
    free(g.hashes);
    free(g.prefs);
    free(owner);
    return ok;
}

/* ---- Moves and probes (balancer thread) ------------------------------------- */

typedef struct walk_ctx {
    shard_balancer *b;
    const assignment *a;
    int64_t now;
    unsigned kicks;    /* surplus: held, not ours */
    char **due;        /* probes: unheld, not ours, due now */
    size_t n_due, cap_due;
} walk_ctx;

/* Is resource `hash` due for a probe in (prev, now]? Each resource has a
 * fixed offset in the probe interval, so probes spread evenly and need no
 * per-resource state. */
static bool probe_due(uint64_t hash, int64_t prev, int64_t now, int64_t interval)
{
    if (now - prev >= interval)
        return true;
    int64_t h = (int64_t)(hash % (uint64_t)interval);
    int64_t a = prev % interval, c = now % interval;
    return a <= c ? (h > a && h <= c) : (h > a || h <= c);
}

static bool walk_item(shard_item *it, void *ctx)
{
    walk_ctx *w = ctx;
    const assignment_entry *e = assignment_find(w->a, it->hash, it->id);
    if (e == NULL || is_ours(w->a, e))
        return true;
    if (reign_election_is_master(it->election)) {
        /* Wake surplus now rather than at its next check. */
        if (w->now >= w->a->moves_from_ms && w->kicks < w->b->max_moves) {
            w->kicks++;
            reign_shard_kick(it);
        }
        return true;
    }
    bool seen;
    set_find(&w->b->free_since, it->id, &seen);
    if (!seen && !probe_due(it->hash, w->b->last_probe_ms, w->now, w->b->probe_interval_ms))
        return true;
    if (w->n_due == w->cap_due) {
        size_t cap = w->cap_due ? 2 * w->cap_due : 64;
        char **d = realloc(w->due, cap * sizeof *d);
        if (d == NULL)
            return false;
        w->due = d;
        w->cap_due = cap;
    }
    if ((w->due[w->n_due] = strdup(it->id)) != NULL)
        w->n_due++;
    return true;
}

static void grant_probe(shard_balancer *b, const char *id, int64_t now)
{
    reign_shard *s = b->shard;
    pthread_mutex_lock(&b->mu);
    set_put(&b->grants, id, now + 2 * b->check_ms);
    pthread_mutex_unlock(&b->mu);
    pthread_rwlock_rdlock(&s->index_lock);
    shard_item *it = reign_shard_index_find(s, id);
    if (it != NULL)
        reign_shard_kick(it);
    pthread_rwlock_unlock(&s->index_lock);
}

static void probe_and_move(shard_balancer *b, const assignment *a, int64_t now)
{
    reign_shard *s = b->shard;
    walk_ctx w = {.b = b, .a = a, .now = now};
    bool probing = now >= b->started_ms + b->probe_interval_ms && !a->standby;
    pthread_rwlock_rdlock(&s->index_lock);
    reign_shard_index_each(s, walk_item, &w);
    pthread_rwlock_unlock(&s->index_lock);
    if (probing)
        b->last_probe_ms = now;
    reign_master **read = probing && w.n_due > 0 ? calloc(w.n_due, sizeof *read) : NULL;
    if (read != NULL &&
        reign_factory_read_masters(s->factory, (const char *const *)w.due, w.n_due, read) == REIGN_OK) {
        for (size_t k = 0; k < w.n_due; k++) {
            bool found;
            size_t i = set_find(&b->free_since, w.due[k], &found);
            if (read[k] != NULL) {
                set_drop(&b->free_since, w.due[k]);
            } else if (!found) {
                set_put(&b->free_since, w.due[k], now); /* look again once a handover is surely over */
            } else if (now - b->free_since.v[i].at_ms >= b->settle_ms) {
                set_drop(&b->free_since, w.due[k]);
                grant_probe(b, w.due[k], now);
            }
            reign_master_free(read[k]);
        }
    } else if (read != NULL) {
        reign_error_clear(); /* backend trouble: probe again next check */
    }
    free(read);
    for (size_t k = 0; k < w.n_due; k++)
        free(w.due[k]);
    free(w.due);
}

static void balance_once(shard_balancer *b)
{
    reign_shard *s = b->shard;
    reign_member *m = NULL;
    size_t n = 0;
    if (reign_members_view(s->factory, &m, &n, NULL) != REIGN_OK)
        return; /* not joined (yet) or out of memory: keep the last assignment */
    int64_t now = reign_shard_now(s);
    pthread_rwlock_rdlock(&s->index_lock);
    uint64_t set_generation = s->set_generation;
    pthread_rwlock_unlock(&s->index_lock);
    /* Without a member slot the others do not count us: stand by (every
     * resource is someone else's) until the refresher takes a freed slot. */
    bool standby = reign_members_standing_by(s->factory);
    char *key = view_key_of(m, n, standby);
    if (key != NULL && (b->current == NULL || b->view_key == NULL || strcmp(key, b->view_key) != 0 ||
                        set_generation != b->set_generation)) {
        bool departures_only = b->view_key != NULL && members_within(m, n, b->view_key);
        if (reassign(b, m, n, departures_only, standby, now)) {
            free(b->view_key);
            b->view_key = key;
            key = NULL;
            b->set_generation = set_generation;
        }
    }
    free(key);
    reign_members_free(m, n);
    atomic_store(&b->move_tokens, (int)b->max_moves);
    if (b->current != NULL)
        probe_and_move(b, b->current, now);
}

/* ---- The thread ---------------------------------------------------------------- */

static void on_members(reign_factory *f, void *payload)
{
    shard_balancer *b = payload;
    (void)f;
    pthread_mutex_lock(&b->mu);
    b->kicked = true;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->mu);
}

void reign_shard_balancer_set_changed(reign_shard *s)
{
    if (s->balancer != NULL)
        on_members(s->factory, s->balancer);
}

static void *balancer_main(void *arg)
{
    shard_balancer *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        b->kicked = false;
        pthread_mutex_unlock(&b->mu);
        balance_once(b);
        pthread_mutex_lock(&b->mu);
        struct timespec ts = reign_clock_timespec(reign_clock_now_ns() +
                                                  b->check_ms * REIGN_NS_PER_MS);
        while (!b->stop && !b->kicked && pthread_cond_timedwait(&b->cond, &b->mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int reign_shard_balancer_init(reign_shard *s, const reign_shard_config *config)
{
    shard_balancer *b = calloc(1, sizeof *b);
    if (b == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory");
    b->shard = s;
    b->max_moves = config->max_moves_per_check ? config->max_moves_per_check : DEFAULT_MAX_MOVES;
    b->check_ms = s->settings.master_check_interval_ms;
    b->probe_interval_ms = s->probe_interval_ms;
    atomic_init(&b->move_tokens, 0);
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cond, &ca);
    pthread_condattr_destroy(&ca);
    b->membership = config->membership;
    s->balancer = b;
    /* Settle for two membership refreshes: about ttl/3 each, at most 1 s. */
    int64_t ttl = reign_factory_ttl_ms(s->factory);
    int64_t refresh = config->membership.refresh_interval_ms
                          ? config->membership.refresh_interval_ms
                          : (ttl / 3 < 1000 ? ttl / 3 : 1000);
    b->settle_ms = 2 * refresh;
    return REIGN_OK;
}

int reign_shard_balancer_start(reign_shard *s)
{
    shard_balancer *b = s->balancer;
    b->stop = false;
    /* A running shard is a member: others count it for the fair share. */
    int rc = reign_factory_join(s->factory, &b->membership);
    if (rc == REIGN_OK)
        rc = reign_factory_on_members(s->factory, on_members, b);
    if (rc != REIGN_OK)
        return rc;
    free(b->view_key);
    b->view_key = NULL;
    set_clear(&b->free_since);
    b->started_ms = b->last_probe_ms = reign_shard_now(s);
    balance_once(b); /* an assignment before the first campaign */
    int err = pthread_create(&b->thread, NULL, balancer_main, b);
    if (err != 0)
        return reign_error_set(REIGN_ENOMEM, "shard: cannot start the balancer (errno %d)", err);
    b->started = true;
    return REIGN_OK;
}

void reign_shard_balancer_stop(reign_shard *s)
{
    shard_balancer *b = s->balancer;
    if (b == NULL || !b->started)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    b->started = false;
    /* A stopped shard takes no work: leave, so the others take its share. */
    if (reign_factory_on_members(s->factory, NULL, NULL) != REIGN_OK ||
        reign_factory_leave(s->factory) != REIGN_OK)
        reign_error_clear();
}

void reign_shard_balancer_wait_seen(reign_shard *s)
{
    shard_balancer *b = s->balancer;
    if (b == NULL)
        return;
    struct timespec ts = {.tv_sec = b->settle_ms / 1000,
                          .tv_nsec = (long)(b->settle_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

void reign_shard_balancer_destroy(reign_shard *s)
{
    shard_balancer *b = s->balancer;
    if (b == NULL)
        return;
    reign_shard_balancer_stop(s);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cond);
    assignment_unref(b->current);
    set_clear(&b->grants);
    set_clear(&b->free_since);
    free(b->view_key);
    free(b);
    s->balancer = NULL;
}

/* ---- The say (shard threads) -------------------------------------------------------- */

shard_say reign_shard_balancer_say(reign_shard *s, const shard_item *it, int64_t now,
                                   int64_t *until, uint64_t *generation)
{
    shard_balancer *b = s->balancer;
    assignment *a = assignment_get(b);
    *generation = a != NULL ? a->generation : 0;
    const assignment_entry *e = assignment_find(a, it->hash, it->id);
    shard_say say = SHARD_SAY_NOT_MINE;
    if (is_ours(a, e)) {
        say = now >= e->take_at_ms ? SHARD_SAY_MINE : SHARD_SAY_LATER;
        *until = e->take_at_ms;
    } else {
        pthread_mutex_lock(&b->mu);
        bool found;
        size_t i = set_find(&b->grants, it->id, &found);
        if (found) {
            if (b->grants.v[i].at_ms >= now)
                say = SHARD_SAY_PROBE;
            set_drop(&b->grants, it->id);
        }
        pthread_mutex_unlock(&b->mu);
    }
    assignment_unref(a);
    return say;
}

bool reign_shard_balancer_should_move(reign_shard *s, const shard_item *it, int64_t master_since,
                                      int64_t now)
{
    shard_balancer *b = s->balancer;
    assignment *a = assignment_get(b);
    const assignment_entry *e = assignment_find(a, it->hash, it->id);
    /* The hold keeps a flapping view from moving work back and forth. It
     * does not apply to a mastership campaigned for before the stable
     * members last grew (taken on a smaller view, as in a fleet starting at
     * once): handing it to its owner is a correction, not a flap; members
     * count only once stable, so a flapping one never makes the view grow.
     * One won by a probe on the current view keeps the hold: views may
     * disagree for a while, and the probe's holder keeps the work going. */
    bool held_enough = now - master_since >= s->settings.master_hold_interval_ms ||
                       (a != NULL && it->granted_generation < a->grew_generation);
    bool move = a != NULL && e != NULL && !is_ours(a, e) && now >= a->moves_from_ms && held_enough;
    if (move) {
        int tokens = atomic_load(&b->move_tokens);
        do {
            move = tokens > 0;
        } while (move && !atomic_compare_exchange_weak(&b->move_tokens, &tokens, tokens - 1));
    }
    assignment_unref(a);
    return move;
}

/* ---- The assignment view (public) ------------------------------------------------------ */

int reign_shard_assigned(reign_shard *s, const char *resource_id, char **instance_out)
{
    if (s == NULL || resource_id == NULL || instance_out == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_assigned: NULL argument");
    pthread_rwlock_rdlock(&s->index_lock);
    bool known = reign_shard_index_find(s, resource_id) != NULL;
    pthread_rwlock_unlock(&s->index_lock);
    if (!known)
        return reign_error_set(REIGN_EINVAL, "shard_assigned: %s is not a resource of this shard",
                               resource_id);
    char *who = NULL;
    if (s->balancer == NULL) {
        who = strdup(reign_factory_instance_id(s->factory));
    } else {
        assignment *a = assignment_get(s->balancer);
        const assignment_entry *e =
            assignment_find(a, reign_balance_hash(resource_id), resource_id);
        if (e == NULL || e->owner == BALANCE_NONE) {
            assignment_unref(a);
            return reign_error_set(REIGN_ENOMASTER, "shard_assigned: %s has no assignment yet",
                                   resource_id);
        }
        who = strdup(a->members[e->owner]);
        assignment_unref(a);
    }
    if (who == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard_assigned: out of memory");
    *instance_out = who;
    return REIGN_OK;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int reign_shard_targets(reign_shard *s, char ***out)
{
    if (s == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_targets: NULL argument");
    if (s->balancer == NULL)
        return reign_tracker_ids(s->tracker, out); /* every instance targets everything */
    assignment *a = assignment_get(s->balancer);
    size_t n = a != NULL ? a->target : 0, k = 0;
    char **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; v != NULL && a != NULL && i < a->n; i++) {
        if (!is_ours(a, &a->e[i]))
            continue;
        if ((v[k] = strdup(a->e[i].id)) == NULL) {
            reign_strv_free(v);
            v = NULL;
            break;
        }
        k++;
    }
    assignment_unref(a);
    if (v == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard_targets: out of memory");
    qsort(v, k, sizeof *v, cmp_strp);
    *out = v;
    return REIGN_OK;
}

int reign_shard_balance_info(reign_shard *s, reign_shard_balance *out)
{
    if (s == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_balance_info: NULL argument");
    pthread_rwlock_rdlock(&s->index_lock);
    size_t resources = s->n_items;
    pthread_rwlock_unlock(&s->index_lock);
    *out = (reign_shard_balance){.held = reign_tracker_count(s->tracker), .target = resources,
                                 .fair_share = resources, .members = 1, .resources = resources};
    if (s->balancer == NULL)
        return REIGN_OK;
    assignment *a = assignment_get(s->balancer);
    out->target = a != NULL ? a->target : 0;
    out->fair_share = a != NULL ? a->fair_share : 0;
    out->members = a != NULL ? a->n_members : 0;
    assignment_unref(a);
    return REIGN_OK;
}
