/* The membership registry: every joined instance holds one lease on a
 * member slot "_reign/member/<k>" (k < slots), renewed by the engine in the
 * same batches as its other leases, so a dead instance drops out when its
 * lease expires and a closed one at once. No backend needs anything beyond
 * ACQUIRE/RENEW/RELEASE/READ for this.
 *
 * Reads: at join, 64 slots at a time from the bottom until 64 in a row are
 * free (the whole fleet is seen before the first balance); then, each refresh interval, in one batch, the window of slots
 * up to the last occupied one and as many again (a newcomer picks one of
 * the lowest free slots it read, so the others' windows reach it within a
 * refresh or two), and a sweep of a few slots beyond it in turn, which
 * finds, within slots / SWEEP refreshes, a member whose slot nobody's
 * window covers any more. Slots fill from the bottom, so a fleet of M
 * instances reads about 2M + SWEEP slots a refresh, not every slot. An instance that
 * finds no free slot stands by: it is no member, campaigns for nothing,
 * says so once, and takes a slot when one frees.
 *
 * Stabilization: an instance counts another for balancing only after it has
 * seen it for stabilization_ms of its own monotonic time (no clocks are
 * compared across machines), so a flapping member moves nothing. Members
 * seen in the first refreshes, and any more that appear while the view is
 * still growing in them (a crowd getting its slots), are taken as
 * established.
 *
 * Threads: one refresher thread per joined factory owns the slot election;
 * the view is guarded by members_state.mu.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "engine.h"
#include "error.h"
#include "members.h"

#define MEMBER_PREFIX REIGN_MEMBER_PREFIX
#define DEFAULT_SLOTS REIGN_MEMBERSHIP_DEFAULT_SLOTS
#define MAX_SLOTS REIGN_MEMBERSHIP_MAX_SLOTS
#define MARGIN 8   /* fewest free slots read beyond the last occupied one */
#define SWEEP 16   /* slots beyond the window read each refresh, in turn */
#define JOIN_CHUNK 64 /* slots read at a time at join */

typedef struct member_entry {
    char *id;
    char *metadata;
    int64_t seen_ms;
    bool present;  /* scratch during a refresh */
} member_entry;

struct members_state {
    reign_factory *factory;
    unsigned slots;
    int64_t refresh_ms;
    int64_t stabilization_ms;
    char **slot_ids;           /* "_reign/member/<k>" */
    pthread_t thread;
    reign_engine_client client; /* hears of freed slots (f->mu) */

    pthread_mutex_t mu;        /* guards everything below */
    pthread_cond_t cond;
    bool stop;
    bool kicked;               /* refresh now: a slot was freed */
    int64_t young_until_ms;    /* members first seen until then count at once */
    member_entry *view;
    size_t n_view;
    uint64_t generation;       /* bumped when the view changes */
    reign_members_fn callback;
    void *callback_payload;
    bool standby;              /* no slot free for this instance: not in the view */

    /* Refresher thread only. */
    reign_election *slot_election;
    unsigned slot;
    bool standby_said;         /* the "stands by" warning was logged */
    unsigned window;           /* slots [0, window) are read; 0: all (the first read) */
    unsigned sweep;            /* next slot of the sweep beyond the window */
    unsigned races_lost;       /* races for a slot lost in a row (see spread) */
    _Atomic size_t last_reads; /* slots read by the last refresh (tests) */
};

/* Refresher thread: record whether this instance stands by, and say so
 * once per episode rather than every refresh. */
static void set_standby(members_state *ms, bool standby)
{
    reign_factory *f = ms->factory;
    if (standby && !ms->standby_said)
        reign_log(&f->logger, REIGN_LOG_WARN, "members",
                  "all %u member slots are taken: this instance stands by (it is no member, "
                  "so it should campaign for nothing) until a slot frees; raise the "
                  "membership's slots (at most 4096) to admit more instances",
                  ms->slots);
    else if (!standby && ms->standby_said)
        reign_log(&f->logger, REIGN_LOG_INFO, "members",
                  "a member slot freed: campaigning for it, no longer standing by");
    ms->standby_said = standby;
    pthread_mutex_lock(&ms->mu);
    ms->standby = standby;
    pthread_mutex_unlock(&ms->mu);
}

bool reign_members_standing_by(reign_factory *f)
{
    pthread_mutex_lock(&f->mu);
    members_state *ms = f->members;
    pthread_mutex_unlock(&f->mu);
    if (ms == NULL)
        return false;
    pthread_mutex_lock(&ms->mu);
    bool standby = ms->standby;
    pthread_mutex_unlock(&ms->mu);
    return standby;
}

#define WEIGHT_MAX 1000000

/* The "weight=N" token of the metadata (whitespace-separated): REIGN_OK
 * with *out = N (0..WEIGHT_MAX), or 1 when there is none; REIGN_EINVAL
 * naming the token when it is not a whole number in range. */
int reign_member_weight_parse(const char *metadata, uint32_t *out)
{
    *out = 1;
    for (const char *p = metadata; p != NULL && *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "weight=", 7) == 0) {
            const char *v = p + 7;
            size_t len = strcspn(v, " \t");
            bool digits = len > 0 && len <= 7 && strspn(v, "0123456789") >= len;
            unsigned long w = digits ? strtoul(v, NULL, 10) : 0;
            if (!digits || w > WEIGHT_MAX)
                return reign_error_set(REIGN_EINVAL,
                                       "metadata: weight=%.*s is not a whole number in 0..%d",
                                       (int)(len > 32 ? 32 : len), v, WEIGHT_MAX);
            *out = (uint32_t)w;
        }
        p = strpbrk(p, " \t");
    }
    return REIGN_OK;
}

uint32_t reign_member_weight(const char *metadata)
{
    uint32_t w;
    if (reign_member_weight_parse(metadata, &w) != REIGN_OK) {
        reign_error_clear(); /* another instance's bad token: count it as 1 */
        return 1;
    }
    return w;
}

static void view_free(member_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].metadata);
    }
    free(v);
}

/* Merge one read of all slots into the view (mu held). Returns true if the
 * set of members or their metadata changed. */
static bool merge_view(members_state *ms, reign_master **read, int64_t now)
{
    reign_factory *f = ms->factory;
    bool changed = false;
    for (size_t i = 0; i < ms->n_view; i++)
        ms->view[i].present = false;
    /* Self is always a member of its own view. */
    size_t n_seen = 0;
    const char **seen_ids = malloc((ms->slots + 1) * sizeof *seen_ids);
    const char **seen_meta = malloc((ms->slots + 1) * sizeof *seen_meta);
    if (seen_ids == NULL || seen_meta == NULL) {
        free(seen_ids);
        free(seen_meta);
        return false; /* keep the last view */
    }
    seen_ids[n_seen] = f->instance_id;
    seen_meta[n_seen++] = f->metadata;
    for (unsigned k = 0; k < ms->slots; k++)
        if (read[k] != NULL) {
            seen_ids[n_seen] = read[k]->instance_id;
            seen_meta[n_seen++] = read[k]->metadata;
        }
    for (size_t s = 0; s < n_seen; s++) {
        size_t i = 0;
        while (i < ms->n_view && strcmp(ms->view[i].id, seen_ids[s]) != 0)
            i++;
        if (i < ms->n_view) {
            if (!ms->view[i].present && strcmp(ms->view[i].metadata, seen_meta[s]) != 0) {
                char *m = strdup(seen_meta[s]);
                if (m != NULL) {
                    free(ms->view[i].metadata);
                    ms->view[i].metadata = m;
                    changed = true;
                }
            }
            ms->view[i].present = true;
            continue;
        }
        member_entry *v = realloc(ms->view, (ms->n_view + 1) * sizeof *v);
        if (v == NULL)
            continue;
        ms->view = v;
        /* Members seen in our first refreshes were there before us or
         * started with us: count them at once, so instances started
         * together split the work from the start. While the view keeps
         * growing it stays young (a crowd that starts at once takes a few
         * refreshes to get its slots). */
        bool established = now <= ms->young_until_ms;
        if (established)
            ms->young_until_ms = now + 2 * ms->refresh_ms;
        member_entry e = {strdup(seen_ids[s]), strdup(seen_meta[s]),
                          established ? now - ms->stabilization_ms : now, true};
        if (e.id == NULL || e.metadata == NULL) {
            free(e.id);
            free(e.metadata);
            continue;
        }
        ms->view[ms->n_view++] = e;
        changed = true;
    }
    free(seen_ids);
    free(seen_meta);
    size_t w = 0;
    for (size_t i = 0; i < ms->n_view; i++) {
        if (ms->view[i].present) {
            ms->view[w++] = ms->view[i];
        } else {
            free(ms->view[i].id);
            free(ms->view[i].metadata);
            changed = true;
        }
    }
    ms->n_view = w;
    return changed;
}

/* How many of the lowest free slots a pick chooses from: MARGIN, doubled
 * for each race for a slot lost in a row. Instances that start one after
 * another fill the slots from the bottom; a crowd that starts at once
 * spreads out further each round it collides (8, 16, 32 … winners a
 * round), so 65 at once are members after about four refreshes. */
static unsigned spread(const members_state *ms)
{
    unsigned s = MARGIN << ms->races_lost;
    return s < ms->slots ? s : ms->slots;
}

/* The window of slots read next: up to the last occupied one (or ours),
 * then as many again (at least our own spread): a crowd's picks land
 * within the spread of the lowest free slots, which stays below the
 * number of members, so everybody's window holds them at the next read. */
static unsigned window_after(const members_state *ms, reign_master **read)
{
    unsigned end = ms->slot_election != NULL ? ms->slot + 1 : 0;
    for (unsigned k = ms->slots; k > end; k--)
        if (read[k - 1] != NULL) {
            end = k;
            break;
        }
    unsigned room = spread(ms) > end ? spread(ms) : end;
    return ms->slots - end > room ? end + room : ms->slots;
}

/* Hold a slot: keep the one we campaign for while it is ours or free; if
 * someone else has it, give up and pick one of the lowest free slots read
 * (refresher thread). False when none of slots [0, read_to) is free and
 * more can be read: read again at once, further. */
static bool keep_slot(members_state *ms, reign_master **read, unsigned read_to)
{
    reign_factory *f = ms->factory;
    if (ms->slot_election != NULL) {
        reign_master *m = read[ms->slot];
        if (m == NULL)
            return true; /* not taken yet: still campaigning for it */
        if (strcmp(m->instance_id, f->instance_id) == 0) {
            ms->races_lost = 0;
            return true;
        }
        /* Lost the race for this slot. */
        if (reign_election_close(ms->slot_election) != REIGN_OK)
            reign_error_clear();
        ms->slot_election = NULL;
        if (MARGIN << (ms->races_lost + 1) <= MAX_SLOTS)
            ms->races_lost++;
    }
    for (unsigned k = 0; k < read_to; k++)
        if (read[k] != NULL && strcmp(read[k]->instance_id, f->instance_id) == 0)
            return true; /* a slot of ours from an earlier election is still live */
    unsigned *free_slots = malloc((size_t)spread(ms) * sizeof *free_slots);
    if (free_slots == NULL)
        return true; /* out of memory: try at the next refresh */
    unsigned n_free = 0;
    for (unsigned k = 0; k < read_to && n_free < spread(ms); k++)
        if (read[k] == NULL)
            free_slots[n_free++] = k;
    if (n_free == 0) {
        free(free_slots);
        if (read_to < ms->slots)
            return false;
        set_standby(ms, true);
        return true;
    }
    /* A choice of our own among them (another one after each lost race),
     * so instances that start together do not all race for one slot. */
    uint64_t h = reign_balance_hash(f->instance_id) ^ (ms->races_lost * 0x9e3779b97f4a7c15ULL);
    unsigned k = free_slots[h % n_free];
    free(free_slots);
    reign_election *e = NULL;
    if (reign_election_new_internal(f, ms->slot_ids[k], &e) != REIGN_OK ||
        reign_election_start(e) != REIGN_OK) {
        reign_log(&f->logger, REIGN_LOG_WARN, "members", "cannot campaign for %s: %s",
                  ms->slot_ids[k], reign_last_error());
        reign_election_close(e);
        reign_error_clear();
        return true;
    }
    ms->slot_election = e;
    ms->slot = k;
    set_standby(ms, false);
    return true;
}

/* Read slots which[0..n) into read[] (by slot number). */
static int read_these(members_state *ms, const unsigned *which, size_t n, reign_master **read)
{
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    reign_master **got = calloc(n ? n : 1, sizeof *got);
    int rc = REIGN_ENOMEM;
    if (ids != NULL && got != NULL) {
        for (size_t i = 0; i < n; i++)
            ids[i] = ms->slot_ids[which[i]];
        rc = reign_factory_read_masters(ms->factory, ids, n, got);
        if (rc == REIGN_OK)
            for (size_t i = 0; i < n; i++)
                read[which[i]] = got[i];
    }
    free(ids);
    free(got);
    return rc;
}

/* The first read: chunks of JOIN_CHUNK slots from the bottom, on until a
 * chunk holds no member (slots fill from the bottom, and the sweep finds
 * a member above such a gap later), so a small fleet's join costs a few
 * reads, not every slot (1,024 GETs on s3://). */
static int read_at_join(members_state *ms, reign_master **read)
{
    unsigned which[JOIN_CHUNK];
    size_t total = 0;
    for (unsigned from = 0; from < ms->slots; from += JOIN_CHUNK) {
        size_t n = 0;
        for (unsigned k = from; k < ms->slots && n < JOIN_CHUNK; k++)
            which[n++] = k;
        int rc = read_these(ms, which, n, read);
        if (rc != REIGN_OK)
            return rc;
        total += n;
        bool any = false;
        for (size_t i = 0; i < n && !any; i++)
            any = read[which[i]] != NULL;
        if (!any)
            break;
    }
    atomic_store(&ms->last_reads, total);
    return REIGN_OK;
}

/* Read the window and this refresh's sweep into read[] (slots not read
 * stay NULL); the first read (window 0) is read_at_join's. */
static int read_slots(members_state *ms, reign_master **read)
{
    if (ms->window == 0)
        return read_at_join(ms, read);
    unsigned window = ms->window;
    unsigned *which = malloc(((size_t)window + SWEEP) * sizeof *which);
    if (which == NULL)
        return REIGN_ENOMEM;
    size_t n = 0;
    for (unsigned k = 0; k < window; k++)
        which[n++] = k;
    for (unsigned i = 0; i < SWEEP && window + i < ms->slots; i++) {
        if (ms->sweep < window || ms->sweep >= ms->slots)
            ms->sweep = window;
        which[n++] = ms->sweep++;
    }
    int rc = read_these(ms, which, n, read);
    if (rc == REIGN_OK)
        atomic_store(&ms->last_reads, n);
    free(which);
    return rc;
}

/* One refresh; false when it must run again at once (the window grew). */
static bool refresh_once(members_state *ms)
{
    reign_factory *f = ms->factory;
    reign_master **read = calloc(ms->slots, sizeof *read);
    if (read == NULL)
        return true;
    if (read_slots(ms, read) != REIGN_OK) {
        /* Backend trouble: keep the last view; leases decide liveness. */
        reign_log(&f->logger, REIGN_LOG_DEBUG, "members", "refresh failed: %s", reign_last_error());
        reign_error_clear();
        free(read);
        return true;
    }
    unsigned read_to = ms->window ? ms->window : (unsigned)atomic_load(&ms->last_reads);
    bool settled = keep_slot(ms, read, read_to);
    if (settled)
        ms->window = window_after(ms, read);
    else /* every slot read is taken */
        ms->window = read_to * 2 < ms->slots ? read_to * 2 : ms->slots;
    pthread_mutex_lock(&ms->mu);
    bool changed = merge_view(ms, read, reign_monotonic_ms());
    if (changed)
        ms->generation++;
    reign_members_fn cb = ms->callback;
    void *payload = ms->callback_payload;
    pthread_mutex_unlock(&ms->mu);
    for (unsigned k = 0; k < ms->slots; k++)
        reign_master_free(read[k]);
    free(read);
    if (changed && cb != NULL)
        cb(f, payload);
    return settled;
}

static void *refresher_main(void *arg)
{
    members_state *ms = arg;
    pthread_mutex_lock(&ms->mu);
    while (!ms->stop) {
        pthread_mutex_unlock(&ms->mu);
        while (!refresh_once(ms))
            ; /* the window grew: read the new slots now */
        pthread_mutex_lock(&ms->mu);
        struct timespec ts = reign_clock_timespec(reign_clock_now_ns() +
                                                  ms->refresh_ms * REIGN_NS_PER_MS);
        while (!ms->stop && !ms->kicked && pthread_cond_timedwait(&ms->cond, &ms->mu, &ts) == 0)
            ;
        ms->kicked = false;
    }
    pthread_mutex_unlock(&ms->mu);
    if (ms->slot_election != NULL && reign_election_close(ms->slot_election) != REIGN_OK)
        reign_error_clear();
    ms->slot_election = NULL;
    return NULL;
}

static void state_free(members_state *ms)
{
    if (ms == NULL)
        return;
    if (ms->slot_ids != NULL)
        for (unsigned k = 0; k < ms->slots; k++)
            free(ms->slot_ids[k]);
    free(ms->slot_ids);
    view_free(ms->view, ms->n_view);
    pthread_mutex_destroy(&ms->mu);
    pthread_cond_destroy(&ms->cond);
    free(ms);
}

static void members_kick(members_state *ms)
{
    pthread_mutex_lock(&ms->mu);
    ms->kicked = true;
    pthread_cond_broadcast(&ms->cond);
    pthread_mutex_unlock(&ms->mu);
}

/* The engine's released hook: a member slot freed, so re-read the members
 * now and survivors take over a dead instance's share without waiting for
 * the next refresh. */
static void on_notified(reign_factory *f, void *ctx, char *const *names, const size_t *lens,
                        size_t n, bool all)
{
    (void)f;
    bool member_left = all;
    for (size_t i = 0; i < n && !member_left; i++)
        member_left = lens[i] >= strlen(MEMBER_PREFIX) &&
                      memcmp(names[i], MEMBER_PREFIX, strlen(MEMBER_PREFIX)) == 0;
    if (member_left)
        members_kick(ctx);
}

int reign_factory_join(reign_factory *f, const reign_membership_config *config)
{
    reign_membership_config defaults = REIGN_MEMBERSHIP_CONFIG_INIT;
    const reign_membership_config *c = config != NULL ? config : &defaults;
    if (f == NULL)
        return reign_error_set(REIGN_EINVAL, "join: factory is NULL");
    if (c->version == 0 || c->version > REIGN_MEMBERSHIP_CONFIG_VERSION)
        return reign_error_set(REIGN_EINVAL, "join: reign_membership_config version %u unsupported "
                                             "(use REIGN_MEMBERSHIP_CONFIG_INIT)", c->version);
    if (c->slots > MAX_SLOTS || c->refresh_interval_ms < 0 || c->stabilization_ms < 0)
        return reign_error_set(REIGN_EINVAL, "join: slots %u is over the most, %d (0: %d); "
                               "intervals must be >= 0", c->slots, MAX_SLOTS, DEFAULT_SLOTS);
    uint32_t weight;
    int rc = reign_member_weight_parse(f->metadata, &weight);
    if (rc != REIGN_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", reign_last_error());
        return reign_error_set(rc, "join: %s", why);
    }
    pthread_mutex_lock(&f->mu);
    bool joined = f->members != NULL;
    pthread_mutex_unlock(&f->mu);
    if (joined)
        return REIGN_OK;

    members_state *ms = calloc(1, sizeof *ms);
    if (ms == NULL)
        return reign_error_set(REIGN_ENOMEM, "join: out of memory");
    ms->factory = f;
    ms->slots = c->slots ? c->slots : DEFAULT_SLOTS;
    int64_t third = f->ttl_ms / 3;
    ms->refresh_ms = c->refresh_interval_ms ? c->refresh_interval_ms : (third < 1000 ? third : 1000);
    ms->stabilization_ms = c->stabilization_ms ? c->stabilization_ms : 2 * f->ttl_ms;
    pthread_mutex_init(&ms->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ms->cond, &ca);
    pthread_condattr_destroy(&ca);
    ms->slot_ids = calloc(ms->slots, sizeof *ms->slot_ids);
    if (ms->slot_ids == NULL) {
        state_free(ms);
        return reign_error_set(REIGN_ENOMEM, "join: out of memory");
    }
    for (unsigned k = 0; k < ms->slots; k++) {
        ms->slot_ids[k] = reign_strdup_printf(MEMBER_PREFIX "%u", k);
        if (ms->slot_ids[k] == NULL) {
            state_free(ms);
            return reign_error_set(REIGN_ENOMEM, "join: out of memory");
        }
    }
    ms->young_until_ms = reign_monotonic_ms() + 2 * ms->refresh_ms;
    /* The first read, of every slot, happens before join returns, so
     * callers see the established members at once. */
    refresh_once(ms);
    int err = pthread_create(&ms->thread, NULL, refresher_main, ms);
    if (err != 0) {
        if (ms->slot_election != NULL)
            reign_election_close(ms->slot_election);
        state_free(ms);
        return reign_error_set(REIGN_ENOMEM, "join: cannot start thread (errno %d)", err);
    }
    pthread_mutex_lock(&f->mu);
    f->members = ms;
    ms->client = (reign_engine_client){.notified = on_notified, .ctx = ms};
    reign_engine_attach(f, &ms->client); /* without room: members refresh at the interval */
    pthread_mutex_unlock(&f->mu);
    return REIGN_OK;
}

int reign_factory_leave(reign_factory *f)
{
    if (f == NULL)
        return reign_error_set(REIGN_EINVAL, "leave: factory is NULL");
    pthread_mutex_lock(&f->mu);
    members_state *ms = f->members;
    f->members = NULL;
    if (ms != NULL)
        reign_engine_detach(f, &ms->client);
    pthread_mutex_unlock(&f->mu);
    if (ms == NULL)
        return REIGN_OK;
    pthread_mutex_lock(&ms->mu);
    ms->stop = true;
    pthread_cond_broadcast(&ms->cond);
    pthread_mutex_unlock(&ms->mu);
    pthread_join(ms->thread, NULL);
    state_free(ms);
    return REIGN_OK;
}

int reign_factory_on_members(reign_factory *f, reign_members_fn fn, void *payload)
{
    if (f == NULL)
        return reign_error_set(REIGN_EINVAL, "on_members: factory is NULL");
    pthread_mutex_lock(&f->mu);
    members_state *ms = f->members;
    pthread_mutex_unlock(&f->mu);
    if (ms == NULL)
        return reign_error_set(REIGN_ESTATE, "on_members: join first (reign_factory_join)");
    pthread_mutex_lock(&ms->mu);
    ms->callback = fn;
    ms->callback_payload = payload;
    pthread_mutex_unlock(&ms->mu);
    return REIGN_OK;
}

static int copy_entry(reign_member *out, const member_entry *e, const reign_factory *f,
                      int64_t now, int64_t stabilization_ms)
{
    out->instance_id = strdup(e->id);
    out->metadata = strdup(e->metadata);
    if (out->instance_id == NULL || out->metadata == NULL)
        return REIGN_ENOMEM;
    out->weight = reign_member_weight(e->metadata);
    out->seen_ms = e->seen_ms;
    out->self = strcmp(e->id, f->instance_id) == 0;
    out->stable = out->self || now - e->seen_ms >= stabilization_ms;
    return REIGN_OK;
}

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const reign_member *)a)->instance_id, ((const reign_member *)b)->instance_id);
}

int reign_members_view(reign_factory *f, reign_member **out, size_t *n_out, uint64_t *generation)
{
    pthread_mutex_lock(&f->mu);
    members_state *ms = f->members;
    pthread_mutex_unlock(&f->mu);
    if (ms == NULL)
        return REIGN_ESTATE;
    pthread_mutex_lock(&ms->mu);
    int64_t now = reign_monotonic_ms();
    reign_member *m = calloc(ms->n_view ? ms->n_view : 1, sizeof *m);
    int rc = m != NULL ? REIGN_OK : REIGN_ENOMEM;
    for (size_t i = 0; rc == REIGN_OK && i < ms->n_view; i++)
        rc = copy_entry(&m[i], &ms->view[i], f, now, ms->stabilization_ms);
    size_t n = ms->n_view;
    if (generation != NULL)
        *generation = ms->generation;
    pthread_mutex_unlock(&ms->mu);
    if (rc != REIGN_OK) {
        reign_members_free(m, n);
        return rc;
    }
    qsort(m, n, sizeof *m, cmp_member);
    *out = m;
    *n_out = n;
    return REIGN_OK;
}

int reign_factory_members(reign_factory *f, reign_member **out, size_t *n_out)
{
    if (f == NULL || out == NULL || n_out == NULL)
        return reign_error_set(REIGN_EINVAL, "members: NULL argument");
    int rc = reign_members_view(f, out, n_out, NULL);
    if (rc == REIGN_OK)
        return REIGN_OK;
    if (rc != REIGN_ESTATE)
        return reign_error_set(rc, "members: out of memory");

    /* Not joined (an observer such as `reign members`): read as a join
     * does, a chunk at a time from the bottom until a chunk holds nobody. */
    enum { CHUNK = JOIN_CHUNK };
    reign_member *m = NULL;
    size_t n = 0;
    int64_t now = reign_monotonic_ms();
    bool more = true;
    rc = REIGN_OK;
    for (unsigned from = 0; more && from < MAX_SLOTS && rc != REIGN_ENOMEM; from += CHUNK) {
        char *ids[CHUNK];
        reign_master *read[CHUNK] = {0};
        for (unsigned k = 0; k < CHUNK; k++) {
            ids[k] = reign_strdup_printf(MEMBER_PREFIX "%u", from + k);
            if (ids[k] == NULL) {
                for (unsigned j = 0; j < k; j++)
                    free(ids[j]);
                reign_members_free(m, n);
                return reign_error_set(REIGN_ENOMEM, "members: out of memory");
            }
        }
        rc = reign_factory_read_masters(f, (const char *const *)ids, CHUNK, read);
        for (unsigned k = 0; k < CHUNK; k++)
            free(ids[k]);
        if (rc != REIGN_OK) {
            reign_members_free(m, n);
            return rc;
        }
        size_t found = 0;
        for (unsigned k = 0; k < CHUNK; k++)
            found += read[k] != NULL;
        if (found > 0) {
            reign_member *grown = realloc(m, (n + found) * sizeof *m);
            if (grown == NULL)
                rc = REIGN_ENOMEM;
            else
                m = grown;
        }
        for (unsigned k = 0; k < CHUNK; k++) {
            if (read[k] != NULL && rc == REIGN_OK) {
                member_entry e = {read[k]->instance_id, read[k]->metadata, now, true};
                memset(&m[n], 0, sizeof m[n]);
                rc = copy_entry(&m[n++], &e, f, now, 0);
            }
            reign_master_free(read[k]);
        }
        more = found > 0;
    }
    if (rc != REIGN_OK) {
        reign_members_free(m, n);
        return reign_error_set(REIGN_ENOMEM, "members: out of memory");
    }
    if (m == NULL && (m = calloc(1, sizeof *m)) == NULL)
        return reign_error_set(REIGN_ENOMEM, "members: out of memory");
    qsort(m, n, sizeof *m, cmp_member);
    *out = m;
    *n_out = n;
    return REIGN_OK;
}

size_t reign_members_last_reads(reign_factory *f)
{
    pthread_mutex_lock(&f->mu);
    members_state *ms = f->members;
    pthread_mutex_unlock(&f->mu);
    return ms != NULL ? atomic_load(&ms->last_reads) : 0;
}

void reign_members_free(reign_member *members, size_t n)
{
    if (members == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(members[i].instance_id);
        free(members[i].metadata);
    }
    free(members);
}
