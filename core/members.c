/* The membership registry: every joined instance holds one lease on a
 * member slot "_reign/member/<k>" (k < slots), renewed by the engine in the
 * same batches as its other leases, so a dead instance drops out when its
 * lease expires and a closed one at once. Everybody reads all slots in one
 * batch every refresh interval to see who is live. No backend needs
 * anything beyond ACQUIRE/RENEW/RELEASE/READ for this.
 *
 * Stabilization: an instance counts another for balancing only after it has
 * seen it for stabilization_ms of its own monotonic time (no clocks are
 * compared across machines), so a flapping member moves nothing. Members
 * already present at the first read are taken as established.
 *
 * Threads: one refresher thread per joined factory owns the slot election;
 * the view is guarded by members_state.mu.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "engine.h"
#include "error.h"
#include "members.h"

#define MEMBER_PREFIX REIGN_MEMBER_PREFIX
#define DEFAULT_SLOTS 64
#define MAX_SLOTS 4096

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

    pthread_mutex_t mu;        /* guards everything below */
    pthread_cond_t cond;
    bool stop;
    bool kicked;               /* refresh now: a slot was freed */
    int64_t joined_ms;
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
         * together split the work from the start. */
        bool established = now - ms->joined_ms <= 2 * ms->refresh_ms;
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

/* Hold a slot: keep the one we campaign for while it is ours or free; if
 * someone else has it, give up and pick a free one (refresher thread). */
static void keep_slot(members_state *ms, reign_master **read)
{
    reign_factory *f = ms->factory;
    if (ms->slot_election != NULL) {
        reign_master *m = read[ms->slot];
        if (m == NULL || strcmp(m->instance_id, f->instance_id) == 0)
            return;
        /* Lost the race for this slot. */
        if (reign_election_close(ms->slot_election) != REIGN_OK)
            reign_error_clear();
        ms->slot_election = NULL;
    }
    for (unsigned k = 0; k < ms->slots; k++)
        if (read[k] != NULL && strcmp(read[k]->instance_id, f->instance_id) == 0)
            return; /* a slot of ours from an earlier election is still live */
    unsigned start = (unsigned)(balance_hash(f->instance_id) % ms->slots);
    for (unsigned i = 0; i < ms->slots; i++) {
        unsigned k = (start + i) % ms->slots;
        if (read[k] != NULL)
            continue;
        reign_election *e = NULL;
        if (reign_election_new_internal(f, ms->slot_ids[k], &e) != REIGN_OK ||
            reign_election_start(e) != REIGN_OK) {
            reign_log(&f->logger, REIGN_LOG_WARN, "members", "cannot campaign for %s: %s",
                      ms->slot_ids[k], reign_last_error());
            reign_election_close(e);
            reign_error_clear();
            return;
        }
        ms->slot_election = e;
        ms->slot = k;
        set_standby(ms, false);
        return;
    }
    set_standby(ms, true);
}

static void refresh_once(members_state *ms)
{
    reign_factory *f = ms->factory;
    reign_master **read = calloc(ms->slots, sizeof *read);
    if (read == NULL)
        return;
    if (reign_factory_read_masters(f, (const char *const *)ms->slot_ids, ms->slots, read) !=
        REIGN_OK) {
        /* Backend trouble: keep the last view; leases decide liveness. */
        reign_log(&f->logger, REIGN_LOG_DEBUG, "members", "refresh failed: %s", reign_last_error());
        reign_error_clear();
        free(read);
        return;
    }
    keep_slot(ms, read);
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
}

static void *refresher_main(void *arg)
{
    members_state *ms = arg;
    pthread_mutex_lock(&ms->mu);
    while (!ms->stop) {
        pthread_mutex_unlock(&ms->mu);
        refresh_once(ms);
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

void reign_members_kick(members_state *ms)
{
    pthread_mutex_lock(&ms->mu);
    ms->kicked = true;
    pthread_cond_broadcast(&ms->cond);
    pthread_mutex_unlock(&ms->mu);
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
        return reign_error_set(REIGN_EINVAL, "join: slots must be 0..%d and intervals >= 0",
                               MAX_SLOTS);
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
    ms->joined_ms = reign_monotonic_ms();
    /* The first read happens before join returns, so callers see the
     * established members at once. */
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

    /* Not joined: read the slots once (an observer such as `reign members`). */
    char *ids[DEFAULT_SLOTS];
    reign_master *read[DEFAULT_SLOTS] = {0};
    for (unsigned k = 0; k < DEFAULT_SLOTS; k++) {
        ids[k] = reign_strdup_printf(MEMBER_PREFIX "%u", k);
        if (ids[k] == NULL) {
            for (unsigned j = 0; j < k; j++)
                free(ids[j]);
            return reign_error_set(REIGN_ENOMEM, "members: out of memory");
        }
    }
    rc = reign_factory_read_masters(f, (const char *const *)ids, DEFAULT_SLOTS, read);
    for (unsigned k = 0; k < DEFAULT_SLOTS; k++)
        free(ids[k]);
    if (rc != REIGN_OK)
        return rc;
    reign_member *m = calloc(DEFAULT_SLOTS, sizeof *m);
    size_t n = 0;
    int64_t now = reign_monotonic_ms();
    for (unsigned k = 0; k < DEFAULT_SLOTS; k++) {
        if (read[k] != NULL && m != NULL && rc == REIGN_OK) {
            member_entry e = {read[k]->instance_id, read[k]->metadata, now, true};
            rc = copy_entry(&m[n++], &e, f, now, 0);
        }
        reign_master_free(read[k]);
    }
    if (m == NULL || rc != REIGN_OK) {
        reign_members_free(m, n);
        return reign_error_set(REIGN_ENOMEM, "members: out of memory");
    }
    qsort(m, n, sizeof *m, cmp_member);
    *out = m;
    *n_out = n;
    return REIGN_OK;
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
