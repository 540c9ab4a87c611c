/* The shard's fair-share balancer: one thread per balancing shard that
 * turns the membership view into targets (balance_assign), tells each item
 * whether to campaign, and resigns surplus resources calmly:
 *   - only after the assignment has been unchanged for two refresh
 *     intervals (observers see a new member at slightly different times;
 *     acting on a view they do not share yet would move resources twice),
 *   - only resources held for at least master_hold_interval, so no resource
 *     moves more than once per hold interval,
 *   - at most max_moves_per_check per check interval.
 * The items' runners do the rest: wanted items campaign, unwanted ones
 * stay quiet. So that nothing stays masterless when the instance meant for
 * it does not take it, the balancer reads a slice of the unwanted, unheld
 * resources every check (one batched READ; each one about once per probe
 * interval) and lets only those nobody masters campaign, briefly. A probe
 * never races a handoff in progress: a resource being handed over is
 * still held when it is read, or already taken by its target. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "members.h"
#include "shard_internal.h"

#define DEFAULT_MAX_MOVES 8

typedef struct shard_balancer {
    reign_shard *shard;
    pthread_t thread;
    bool started;
    unsigned max_moves;
    int64_t check_ms;
    int64_t settle_ms;

    pthread_mutex_t mu;  /* guards stop, kicked and info */
    pthread_cond_t cond;
    bool stop;
    bool kicked;
    reign_shard_balance info;

    reign_membership_config membership;

    /* Balancer thread only. */
    char *view_key;          /* stable members + weights of the last assignment */
    int64_t assigned_at_ms;
    bool departures_only;    /* the last change only removed members */
    size_t *owner;           /* per item: index into the last member list */
    size_t self;             /* our index in that list, or BALANCE_NONE */
    int64_t *probe_at;       /* per item: next probe read */
    int64_t *free_since;     /* per item: when a probe first read it masterless, 0 */
    int64_t probe_interval_ms;
} shard_balancer;

static int64_t now_ms(const reign_shard *s)
{
    return s->clock(s->clock_random_payload);
}

/* "id\tweight\n" for each stable member, in ID order: equal keys mean the
 * same assignment. */
static char *view_key_of(const reign_member *m, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        if (m[i].stable)
            len += strlen(m[i].instance_id) + 16;
    char *key = malloc(len);
    if (key == NULL)
        return NULL;
    size_t at = 0;
    key[0] = '\0';
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

/* Apply targets to items. Giving a resource up is immediate; taking new
 * ones waits until the assignment has settled, unless members only left:
 * observers learn of a new member at slightly different times, and acting
 * on a view the others do not share yet would grab resources meant for
 * the newcomer. Departures need no wait: survivors must take over fast. */
static void apply_targets(shard_balancer *b, int64_t now)
{
    reign_shard *s = b->shard;
    bool settled = b->departures_only || now - b->assigned_at_ms >= b->settle_ms;
    for (size_t i = 0; i < s->n_items; i++) {
        shard_item *it = &s->items[i];
        bool want = b->self != BALANCE_NONE && b->owner[i] == b->self;
        bool cur = atomic_load(&it->wanted);
        if (cur == want || (want && !settled))
            continue;
        atomic_store(&it->wanted, want);
        shard_kick(it);
    }
}

/* Recompute targets from the stable members; returns false on ENOMEM. */
static bool reassign(shard_balancer *b, const reign_member *m, size_t n)
{
    reign_shard *s = b->shard;
    balance_member *bm = calloc(n ? n : 1, sizeof *bm);
    uint64_t *hashes = calloc(s->n_items ? s->n_items : 1, sizeof *hashes);
    balance_preference *prefs = calloc(s->n_items ? s->n_items : 1, sizeof *prefs);
    bool ok = bm != NULL && hashes != NULL && prefs != NULL;
    size_t nb = 0, self = BALANCE_NONE;
    for (size_t i = 0; ok && i < n; i++) {
        if (!m[i].stable)
            continue;
        if (m[i].self)
            self = nb;
        bm[nb++] = (balance_member){m[i].instance_id, m[i].weight};
    }
    for (size_t i = 0; ok && i < s->n_items; i++) {
        hashes[i] = s->items[i].hash;
        prefs[i] = s->items[i].pref;
    }
    if (ok)
        ok = balance_assign(hashes, s->n_items, prefs, bm, nb, b->owner) == 0;
    if (ok) {
        size_t target = 0;
        b->self = self;
        for (size_t i = 0; i < s->n_items; i++)
            target += self != BALANCE_NONE && b->owner[i] == self;
        pthread_mutex_lock(&b->mu);
        b->info.target = target;
        b->info.fair_share = self != BALANCE_NONE ? balance_capacity(s->n_items, bm, nb, self) : 0;
        b->info.members = nb;
        pthread_mutex_unlock(&b->mu);
    }
    free(bm);
    free(hashes);
    free(prefs);
    return ok;
}

/* Resign up to max_moves held resources that are not ours by the
 * assignment and have been held for the hold interval. */
static void shed_surplus(shard_balancer *b, int64_t now)
{
    reign_shard *s = b->shard;
    unsigned moves = 0;
    size_t held = 0;
    for (size_t i = 0; i < s->n_items; i++) {
        shard_item *it = &s->items[i];
        if (!reign_election_is_master(it->election))
            continue;
        held++;
        if (atomic_load(&it->wanted) || moves >= b->max_moves)
            continue;
        int64_t since = atomic_load(&it->gained_at_ms);
        if (since == 0 || now - since < s->settings.master_hold_interval_ms)
            continue;
        if (now - b->assigned_at_ms < b->settle_ms)
            continue;
        if (!atomic_exchange(&it->resign_now, true)) {
            shard_kick(it);
            moves++;
        }
    }
    pthread_mutex_lock(&b->mu);
    b->info.held = held;
    b->info.resources = s->n_items;
    pthread_mutex_unlock(&b->mu);
}

/* Read the unwanted, unheld items whose probe is due, in one batch; kick
 * those with no master so they campaign for a check interval. Masterless
 * must be read twice, settle_ms apart: a resource read between its
 * holder's resignation and its target's ACQUIRE (a handoff that a loaded
 * machine slows down) must not be raced for, or it would move twice. */
static void probe_masterless(shard_balancer *b, int64_t now)
{
    reign_shard *s = b->shard;
    size_t n = 0;
    size_t *due = malloc((s->n_items ? s->n_items : 1) * sizeof *due);
    if (due == NULL)
        return;
    for (size_t i = 0; i < s->n_items; i++) {
        shard_item *it = &s->items[i];
        if (atomic_load(&it->wanted) || reign_election_is_master(it->election)) {
            b->free_since[i] = 0; /* a later probe starts over */
            continue;
        }
        if (b->probe_at[i] > now)
            continue;
        b->probe_at[i] = now + b->probe_interval_ms;
        due[n++] = i;
    }
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    reign_master **read = calloc(n ? n : 1, sizeof *read);
    if (n > 0 && ids != NULL && read != NULL) {
        for (size_t k = 0; k < n; k++)
            ids[k] = reign_election_resource(s->items[due[k]].election);
        if (reign_factory_read_masters(s->factory, ids, n, read) == REIGN_OK) {
            for (size_t k = 0; k < n; k++) {
                size_t i = due[k];
                if (read[k] != NULL) {
                    b->free_since[i] = 0;
                } else if (b->free_since[i] == 0) {
                    b->free_since[i] = now; /* look again once a handoff is surely over */
                    b->probe_at[i] = now + b->settle_ms;
                } else if (now - b->free_since[i] >= b->settle_ms) {
                    b->free_since[i] = 0;
                    atomic_store(&s->items[i].probe_free, true);
                    shard_kick(&s->items[i]);
                }
                reign_master_free(read[k]);
            }
        } else {
            reign_error_clear(); /* backend trouble: probe again next interval */
        }
    }
    free(read);
    free(ids);
    free(due);
}

static void balance_once(shard_balancer *b)
{
    reign_shard *s = b->shard;
    reign_member *m = NULL;
    size_t n = 0;
    if (reign_members_view(s->factory, &m, &n, NULL) != REIGN_OK)
        return; /* not joined (yet) or out of memory: keep the last targets */
    int64_t now = now_ms(s);
    char *key = view_key_of(m, n);
    if (key != NULL && (b->view_key == NULL || strcmp(key, b->view_key) != 0)) {
        bool departures_only = members_within(m, n, b->view_key);
        if (reassign(b, m, n)) {
            b->departures_only = departures_only;
            free(b->view_key);
            b->view_key = key;
            key = NULL;
            b->assigned_at_ms = now;
        }
    }
    free(key);
    reign_members_free(m, n);
    apply_targets(b, now);
    shed_surplus(b, now);
    probe_masterless(b, now);
}

static void on_members(reign_factory *f, void *payload)
{
    shard_balancer *b = payload;
    (void)f;
    pthread_mutex_lock(&b->mu);
    b->kicked = true;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->mu);
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
        /* Wake at the next check, or when a new assignment settles, so
         * new targets are taken at once rather than a check later. */
        int64_t wait_ms = b->check_ms;
        int64_t settle_left = b->assigned_at_ms + b->settle_ms - now_ms(b->shard);
        if (!b->departures_only && settle_left > 0 && settle_left + 1 < wait_ms)
            wait_ms = settle_left + 1;
        struct timespec ts = reign_clock_timespec(reign_clock_now_ns() +
                                                  wait_ms * REIGN_NS_PER_MS);
        while (!b->stop && !b->kicked && pthread_cond_timedwait(&b->cond, &b->mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int shard_balancer_init(reign_shard *s, const reign_shard_config *config)
{
    shard_balancer *b = calloc(1, sizeof *b);
    if (b == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory");
    b->owner = calloc(s->n_items ? s->n_items : 1, sizeof *b->owner);
    b->probe_at = calloc(s->n_items ? s->n_items : 1, sizeof *b->probe_at);
    b->free_since = calloc(s->n_items ? s->n_items : 1, sizeof *b->free_since);
    if (b->owner == NULL || b->probe_at == NULL || b->free_since == NULL) {
        free(b->owner);
        free(b->probe_at);
        free(b->free_since);
        free(b);
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory");
    }
    b->shard = s;
    b->max_moves = config->max_moves_per_check ? config->max_moves_per_check : DEFAULT_MAX_MOVES;
    b->check_ms = s->settings.master_check_interval_ms;
    b->probe_interval_ms = s->probe_interval_ms;
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

int shard_balancer_start(reign_shard *s)
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
    /* First probes spread over one interval after the first, so targets
     * are taken before anyone probes, and reads do not come in a burst. */
    int64_t now = now_ms(s);
    for (size_t i = 0; i < s->n_items; i++) {
        b->probe_at[i] = now + b->probe_interval_ms +
                         (int64_t)(s->items[i].hash % (uint64_t)b->probe_interval_ms);
        b->free_since[i] = 0;
    }
    balance_once(b); /* targets before the first campaign */
    int err = pthread_create(&b->thread, NULL, balancer_main, b);
    if (err != 0)
        return reign_error_set(REIGN_ENOMEM, "shard: cannot start the balancer (errno %d)", err);
    b->started = true;
    return REIGN_OK;
}

void shard_balancer_stop(reign_shard *s)
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

void shard_balancer_destroy(reign_shard *s)
{
    shard_balancer *b = s->balancer;
    if (b == NULL)
        return;
    shard_balancer_stop(s);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cond);
    free(b->view_key);
    free(b->owner);
    free(b->probe_at);
    free(b->free_since);
    free(b);
    s->balancer = NULL;
}

int reign_shard_balance_info(reign_shard *s, reign_shard_balance *out)
{
    if (s == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "shard_balance_info: NULL argument");
    if (s->balancer == NULL) {
        *out = (reign_shard_balance){.held = reign_tracker_count(s->tracker),
                                     .target = s->n_items, .fair_share = s->n_items,
                                     .members = 1, .resources = s->n_items};
        return REIGN_OK;
    }
    shard_balancer *b = s->balancer;
    pthread_mutex_lock(&b->mu);
    *out = b->info;
    pthread_mutex_unlock(&b->mu);
    out->held = reign_tracker_count(s->tracker);
    out->resources = s->n_items;
    return REIGN_OK;
}
