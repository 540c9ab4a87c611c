/* Shard handover on the in-process mem:// backend with an injected clock:
 * a set that changes while the shard runs, revoke before release (with an
 * immediate and a late acknowledgement, and the revoke timeout), drain,
 * per-resource is_master/term, the assignment view, and instances whose ID
 * sets differ for a while. Every event goes through one "world" that
 * fails the test if two instances ever work on one resource at once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "reign/reign.h"

#define N_MAX 64
#define INST_MAX 3

/* The shards' clock: real time plus an offset the test can jump. */
static atomic_llong clock_offset_ms;

static int64_t test_clock(void *payload)
{
    (void)payload;
    return reign_monotonic_ms() + atomic_load(&clock_offset_ms);
}

typedef struct world world;

typedef struct instance {
    world *w;
    int index;
    reign_factory *f;
    reign_shard *s;
    bool ack_later;  /* answer REVOKED with REIGN_SHARD_LATER */
} instance;

typedef struct res_state {
    bool working[INST_MAX];       /* between GAINED and the end of work */
    bool revoking[INST_MAX];      /* REVOKED, acknowledgement outstanding */
    uint64_t term[INST_MAX];
    reign_shard_reason last_lost[INST_MAX];
    bool is_master_in_revoke[INST_MAX]; /* reign_shard_is_master seen during REVOKED */
    int gains;
} res_state;

struct world {
    pthread_mutex_t mu;
    res_state r[N_MAX];
    int overlaps;       /* a GAINED while another instance worked on it */
    int bad_terms;      /* is_master/term disagreeing with the event */
    int revoked, lost_after_revoke, timeouts;
    instance in[INST_MAX];
};

static int id_index(const char *id)
{
    return atoi(id + 1); /* "rNN" */
}

static int on_event(reign_shard *shard, const reign_shard_event *ev, void *payload)
{
    instance *in = payload;
    world *w = in->w;
    int i = id_index(ev->resource_id), k = in->index;
    int answer = REIGN_SHARD_DONE;
    if (ev->kind == REIGN_SHARD_GAINED) {
        uint64_t term = 0;
        bool term_ok = reign_shard_term(shard, ev->resource_id, &term) == REIGN_OK;
        pthread_mutex_lock(&w->mu);
        for (int o = 0; o < INST_MAX; o++)
            if (o != k && w->r[i].working[o])
                w->overlaps++;
        w->r[i].working[k] = true;
        w->r[i].term[k] = ev->term;
        w->r[i].gains++;
        if (!term_ok || term != ev->term || ev->term == 0)
            w->bad_terms++;
        pthread_mutex_unlock(&w->mu);
    } else if (ev->kind == REIGN_SHARD_REVOKED) {
        bool master = reign_shard_is_master(shard, ev->resource_id);
        pthread_mutex_lock(&w->mu);
        w->revoked++;
        w->r[i].is_master_in_revoke[k] = master;
        if (in->ack_later) {
            w->r[i].revoking[k] = true; /* the test acknowledges later */
            answer = REIGN_SHARD_LATER;
        } else {
            w->r[i].working[k] = false; /* stopped before returning */
        }
        pthread_mutex_unlock(&w->mu);
    } else {
        pthread_mutex_lock(&w->mu);
        if (w->r[i].revoking[k] || !w->r[i].working[k])
            w->lost_after_revoke++;
        if (ev->reason == REIGN_SHARD_REASON_REVOKE_TIMEOUT)
            w->timeouts++;
        w->r[i].working[k] = false;
        w->r[i].revoking[k] = false;
        w->r[i].last_lost[k] = ev->reason;
        pthread_mutex_unlock(&w->mu);
    }
    return answer;
}

static void ids_make(char ids[][8], const char **p, int from, int to)
{
    for (int i = from; i < to; i++) {
        snprintf(ids[i], 8, "r%d", i);
        p[i - from] = ids[i];
    }
}

static unsigned slots_for_next_open; /* 0: the default */

static void open_instance(world *w, int k, const char *uri, const char *const *ids, size_t n,
                          const char *metadata)
{
    instance *in = &w->in[k];
    in->w = w;
    in->index = k;
    reign_options o = REIGN_OPTIONS_INIT;
    char name[16];
    snprintf(name, sizeof name, "inst-%d", k);
    o.instance_id = name;
    o.ttl_ms = 1000;
    o.metadata = metadata;
    assert_int_equal(reign_factory_open(uri, &o, &in->f), REIGN_OK);
    reign_shard_config c = REIGN_SHARD_CONFIG_INIT;
    c.runner.pre_election_pause_ms = 10;
    c.runner.master_check_interval_ms = 50;
    c.runner.master_hold_interval_ms = 10000;
    c.runner.clock = test_clock;
    c.on_event = on_event;
    c.payload = in;
    c.membership.refresh_interval_ms = 100;
    c.membership.stabilization_ms = 300;
    c.revoke_timeout_ms = 60000;
    c.membership.slots = slots_for_next_open;
    assert_int_equal(reign_shard_new(in->f, ids, n, &c, &in->s), REIGN_OK);
}

static void close_instance(world *w, int k)
{
    reign_shard_free(w->in[k].s);
    assert_int_equal(reign_factory_close(w->in[k].f), REIGN_OK);
    w->in[k].s = NULL;
}

static world *world_new(void)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    pthread_mutex_init(&w->mu, NULL);
    atomic_store(&clock_offset_ms, 0);
    return w;
}

static void world_free(world *w)
{
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Resources [from, to) each worked on by exactly one instance, and each
 * held (reign_shard_is_master) by exactly that one. */
static bool one_worker_each(world *w, int n_inst, int from, int to)
{
    bool ok = true;
    pthread_mutex_lock(&w->mu);
    for (int i = from; i < to && ok; i++) {
        int workers = 0;
        for (int k = 0; k < n_inst; k++)
            workers += w->r[i].working[k];
        ok = workers == 1;
    }
    pthread_mutex_unlock(&w->mu);
    for (int i = from; i < to && ok; i++) {
        char id[8];
        snprintf(id, sizeof id, "r%d", i);
        int masters = 0;
        for (int k = 0; k < n_inst; k++)
            masters += w->in[k].s != NULL && reign_shard_is_master(w->in[k].s, id);
        ok = masters == 1;
    }
    return ok;
}

static bool eventually(bool (*pred)(world *, int, int, int), world *w, int n_inst, int from,
                       int to, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        if (pred(w, n_inst, from, to))
            return true;
        sleep_ms(20);
    }
    bool ok = pred(w, n_inst, from, to);
    if (!ok) /* say what is off */
        for (int i = from; i < to; i++) {
            char id[8];
            snprintf(id, sizeof id, "r%d", i);
            reign_master *m = NULL;
            int rc = reign_factory_current_master(w->in[0].f, id, &m);
            char *a0 = NULL, *a1 = NULL;
            reign_shard_assigned(w->in[0].s, id, &a0);
            if (n_inst > 1)
                reign_shard_assigned(w->in[1].s, id, &a1);
            fprintf(stderr, "%s: working %d %d master %d %d holder %s assigned %s %s\n", id, w->r[i].working[0],
                    w->r[i].working[1], reign_shard_is_master(w->in[0].s, id),
                    n_inst > 1 && reign_shard_is_master(w->in[1].s, id), rc == 0 ? m->instance_id : "-", a0 ? a0 : "-", a1 ? a1 : "-");
            free(a0);
            free(a1);
            reign_master_free(m);
        }
    return ok;
}

/* Every instance holds its fair share of [from, to), each with one worker. */
static bool split_evenly(world *w, int n_inst, int from, int to)
{
    size_t share = (size_t)(to - from) / (size_t)n_inst;
    for (int k = 0; k < n_inst; k++) {
        size_t held = reign_tracker_count(reign_shard_tracker(w->in[k].s));
        if (held < share || held > share + 1)
            return false;
    }
    return one_worker_each(w, n_inst, from, to);
}

static bool nobody_works_on(world *w, int n_inst, int from, int to)
{
    bool ok = true;
    pthread_mutex_lock(&w->mu);
    for (int i = from; i < to; i++)
        for (int k = 0; k < n_inst; k++)
            ok = ok && !w->r[i].working[k];
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static void test_a_set_that_changes_while_running(void **state)
{
    (void)state;
    world *w = world_new();
    char ids[N_MAX][8];
    const char *p[N_MAX];
    ids_make(ids, p, 0, 40);
    for (int k = 0; k < 2; k++)
        open_instance(w, k, "mem://handover-set", NULL, 0, NULL);
    for (int k = 0; k < 2; k++)
        assert_int_equal(reign_shard_start(w->in[k].s), REIGN_OK);
    /* Added while running, one by one, by both. */
    for (int i = 0; i < 30; i++)
        for (int k = 0; k < 2; k++)
            assert_int_equal(reign_shard_add(w->in[k].s, p[i]), REIGN_OK);
    assert_int_equal(reign_shard_add(w->in[0].s, p[3]), REIGN_OK); /* again: OK */
    assert_true(eventually(one_worker_each, w, 2, 0, 30, 10000));

    /* Removed by both: revoked, released, forgotten. */
    for (int i = 20; i < 30; i++)
        for (int k = 0; k < 2; k++)
            assert_int_equal(reign_shard_remove(w->in[k].s, p[i]), REIGN_OK);
    assert_true(eventually(nobody_works_on, w, 2, 20, 30, 5000));
    reign_master *m[10] = {0};
    sleep_ms(300); /* the releases are out once the threads forgot them */
    assert_int_equal(reign_factory_read_masters(w->in[0].f, p + 20, 10, m), REIGN_OK);
    for (int i = 0; i < 10; i++)
        assert_null(m[i]);
    pthread_mutex_lock(&w->mu);
    for (int i = 20; i < 30; i++)
        for (int k = 0; k < 2; k++)
            if (w->r[i].term[k] != 0)
                assert_int_equal(w->r[i].last_lost[k], REIGN_SHARD_REASON_REMOVED);
    pthread_mutex_unlock(&w->mu);
    char **tids = NULL;
    assert_int_equal(reign_tracker_ids(reign_shard_tracker(w->in[0].s), &tids), REIGN_OK);
    size_t n_tracked = 0;
    while (tids[n_tracked] != NULL)
        n_tracked++;
    reign_strv_free(tids);
    assert_int_equal(n_tracked, 20);
    assert_int_equal(reign_shard_remove(w->in[0].s, "r25"), REIGN_EINVAL);

    /* The bulk form applies the difference: 10..19 go, 30..39 come. */
    const char *want[20];
    for (int i = 0; i < 10; i++) {
        want[i] = p[i];
        want[10 + i] = p[30 + i];
    }
    for (int k = 0; k < 2; k++)
        assert_int_equal(reign_shard_set(w->in[k].s, want, 20), REIGN_OK);
    assert_true(eventually(nobody_works_on, w, 2, 10, 20, 5000));
    assert_true(eventually(one_worker_each, w, 2, 30, 40, 10000));
    assert_true(one_worker_each(w, 2, 0, 10));

    reign_shard_balance b;
    assert_int_equal(reign_shard_balance_info(w->in[0].s, &b), REIGN_OK);
    assert_int_equal(b.resources, 20);
    pthread_mutex_lock(&w->mu);
    assert_int_equal(w->overlaps, 0);
    assert_int_equal(w->bad_terms, 0);
    pthread_mutex_unlock(&w->mu);
    for (int k = 0; k < 2; k++)
        close_instance(w, k);
    world_free(w);
}

/* Instance 0 masters r0 (it is alone); instance 1 starts with r0 in its
 * set. Instance 0 then removes r0, acknowledging late: instance 1 must not
 * become master until the acknowledgement. */
static void test_the_lease_is_released_only_after_the_acknowledgement(void **state)
{
    (void)state;
    world *w = world_new();
    char ids[N_MAX][8];
    const char *p[N_MAX];
    ids_make(ids, p, 0, 1);
    open_instance(w, 0, "mem://handover-ack", p, 1, NULL);
    w->in[0].ack_later = true;
    assert_int_equal(reign_shard_start(w->in[0].s), REIGN_OK);
    assert_true(eventually(one_worker_each, w, 1, 0, 1, 5000));
    uint64_t t0 = 0;
    assert_int_equal(reign_shard_term(w->in[0].s, "r0", &t0), REIGN_OK);
    /* The local deadline, for a watchdog outside the process: ahead of now. */
    int64_t d0 = 0, d1 = 0;
    assert_int_equal(reign_shard_deadline_ms(w->in[0].s, "r0", &d0), REIGN_OK);
    assert_true(d0 > reign_monotonic_ms());
    open_instance(w, 1, "mem://handover-ack", p, 1, NULL);
    assert_int_equal(reign_shard_start(w->in[1].s), REIGN_OK);

    assert_int_equal(reign_shard_remove(w->in[0].s, "r0"), REIGN_OK);
    for (int t = 0; t < 100; t++) { /* REVOKED arrives */
        pthread_mutex_lock(&w->mu);
        bool revoking = w->r[0].revoking[0];
        pthread_mutex_unlock(&w->mu);
        if (revoking)
            break;
        sleep_ms(10);
    }
    assert_false(reign_shard_is_master(w->in[0].s, "r0")); /* revoked: no new work */
    uint64_t term;
    assert_int_equal(reign_shard_term(w->in[0].s, "r0", &term), REIGN_ENOTMASTER);
    /* Still held on the backend, and renewed: instance 1 waits. */
    sleep_ms(1500);
    reign_master *m = NULL;
    assert_int_equal(reign_factory_current_master(w->in[1].f, "r0", &m), REIGN_OK);
    assert_string_equal(m->instance_id, "inst-0");
    reign_master_free(m);
    assert_false(reign_shard_is_master(w->in[1].s, "r0"));
    assert_int_equal(reign_shard_deadline_ms(w->in[1].s, "r0", &d1), REIGN_ENOTMASTER);
    /* Renewed while revoking: the deadline moved on (the CLI's guard of a
     * stopping CMD relies on it). */
    assert_int_equal(reign_shard_deadline_ms(w->in[0].s, "r0", &d1), REIGN_OK);
    assert_true(d1 > d0);
    assert_int_equal(reign_shard_revoke_done(w->in[0].s, "r0", t0 + 1), REIGN_ESTATE);

    pthread_mutex_lock(&w->mu);
    w->r[0].working[0] = false; /* the work has stopped */
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(reign_shard_revoke_done(w->in[0].s, "r0", t0), REIGN_OK);
    assert_true(eventually(one_worker_each, w, 2, 0, 1, 5000));
    assert_true(reign_shard_is_master(w->in[1].s, "r0"));
    pthread_mutex_lock(&w->mu);
    assert_int_equal(w->overlaps, 0);
    assert_false(w->r[0].is_master_in_revoke[0]);
    assert_int_equal(w->r[0].last_lost[0], REIGN_SHARD_REASON_REMOVED);
    assert_true(w->r[0].term[1] > t0);
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(reign_shard_revoke_done(w->in[0].s, "r0", t0), REIGN_ESTATE);
    assert_int_equal(reign_shard_deadline_ms(w->in[0].s, "r0", &d1), REIGN_ENOTMASTER);
    for (int k = 0; k < 2; k++)
        close_instance(w, k);
    world_free(w);
}

/* An acknowledgement that never comes: past revoke_timeout_ms (on the
 * shard's clock, jumped here) the lease is released anyway, and LOST says
 * so. */
static void test_a_revocation_never_acknowledged_ends_at_the_revoke_timeout(void **state)
{
    (void)state;
    world *w = world_new();
    char ids[N_MAX][8];
    const char *p[N_MAX];
    ids_make(ids, p, 0, 3);
    open_instance(w, 0, "mem://handover-timeout", p, 3, NULL);
    w->in[0].ack_later = true;
    assert_int_equal(reign_shard_start(w->in[0].s), REIGN_OK);
    assert_true(eventually(one_worker_each, w, 1, 0, 3, 5000));
    uint64_t t1 = 0;
    assert_int_equal(reign_shard_term(w->in[0].s, "r1", &t1), REIGN_OK);
    assert_int_equal(reign_shard_remove(w->in[0].s, "r1"), REIGN_OK);
    sleep_ms(300);
    reign_master *m = NULL;
    assert_int_equal(reign_factory_current_master(w->in[0].f, "r1", &m), REIGN_OK);
    reign_master_free(m);
    pthread_mutex_lock(&w->mu);
    assert_int_equal(w->timeouts, 0);
    pthread_mutex_unlock(&w->mu);

    atomic_store(&clock_offset_ms, 61000); /* past the 60 s revoke timeout */
    bool timed_out = false;
    for (int t = 0; t < 200 && !timed_out; t++) {
        pthread_mutex_lock(&w->mu);
        timed_out = w->timeouts == 1;
        pthread_mutex_unlock(&w->mu);
        sleep_ms(10);
    }
    assert_true(timed_out);
    assert_int_equal(reign_factory_current_master(w->in[0].f, "r1", &m), REIGN_ENOMASTER);
    assert_int_equal(reign_shard_revoke_done(w->in[0].s, "r1", t1), REIGN_ESTATE);
    assert_true(reign_shard_is_master(w->in[0].s, "r0")); /* the others are untouched */
    assert_true(reign_shard_is_master(w->in[0].s, "r2"));
    w->in[0].ack_later = false;
    close_instance(w, 0);
    world_free(w);
}

/* Two instances share 20; one drains: every resource is revoked, released
 * and taken by the other, never two workers at once, and the drained one
 * takes nothing back. */
static void test_drain_hands_everything_over_one_by_one(void **state)
{
    (void)state;
    world *w = world_new();
    char ids[N_MAX][8];
    const char *p[N_MAX];
    ids_make(ids, p, 0, 20);
    for (int k = 0; k < 2; k++)
        open_instance(w, k, "mem://handover-drain", p, 20, NULL);
    for (int k = 0; k < 2; k++)
        assert_int_equal(reign_shard_start(w->in[k].s), REIGN_OK);
    assert_true(eventually(one_worker_each, w, 2, 0, 20, 10000));
    reign_shard_balance b0, b1;
    assert_int_equal(reign_shard_balance_info(w->in[0].s, &b0), REIGN_OK);
    assert_int_equal(reign_shard_balance_info(w->in[1].s, &b1), REIGN_OK);
    assert_int_equal(b0.held + b1.held, 20);
    assert_true(b0.held > 0);

    /* The assignment view agrees across instances and with the holders. */
    for (int i = 0; i < 20; i++) {
        char *a0 = NULL, *a1 = NULL;
        assert_int_equal(reign_shard_assigned(w->in[0].s, p[i], &a0), REIGN_OK);
        assert_int_equal(reign_shard_assigned(w->in[1].s, p[i], &a1), REIGN_OK);
        assert_string_equal(a0, a1);
        assert_int_equal(reign_shard_is_master(w->in[0].s, p[i]), strcmp(a0, "inst-0") == 0);
        free(a0);
        free(a1);
    }
    char **targets = NULL;
    assert_int_equal(reign_shard_targets(w->in[0].s, &targets), REIGN_OK);
    size_t n_targets = 0;
    while (targets[n_targets] != NULL)
        n_targets++;
    assert_int_equal(n_targets, b0.held);
    reign_strv_free(targets);

    int64_t t0 = reign_monotonic_ms();
    assert_int_equal(reign_shard_drain(w->in[0].s, 10000), REIGN_OK);
    int64_t took = reign_monotonic_ms() - t0;
    assert_int_equal(reign_tracker_count(reign_shard_tracker(w->in[0].s)), 0);
    assert_true(eventually(one_worker_each, w, 2, 0, 20, 10000));
    print_message("drain: %zu resources handed over in %lld ms\n", b0.held, (long long)took);
    sleep_ms(500); /* and it takes nothing back */
    assert_int_equal(reign_tracker_count(reign_shard_tracker(w->in[0].s)), 0);
    assert_int_equal(reign_tracker_count(reign_shard_tracker(w->in[1].s)), 20);
    pthread_mutex_lock(&w->mu);
    assert_int_equal(w->overlaps, 0);
    for (int i = 0; i < 20; i++)
        if (w->r[i].term[0] != 0)
            assert_int_equal(w->r[i].last_lost[0], REIGN_SHARD_REASON_DRAIN);
    pthread_mutex_unlock(&w->mu);
    for (int k = 0; k < 2; k++)
        close_instance(w, k);
    world_free(w);
}

/* Instance 1 knows only half the set at first, then learns the rest:
 * nothing is ever worked on twice, and everything ends with one worker. */
static void test_instances_whose_sets_differ_for_a_while(void **state)
{
    (void)state;
    world *w = world_new();
    char ids[N_MAX][8];
    const char *p[N_MAX];
    ids_make(ids, p, 0, 30);
    open_instance(w, 0, "mem://handover-differ", p, 30, NULL);
    open_instance(w, 1, "mem://handover-differ", p, 15, NULL);
    for (int k = 0; k < 2; k++)
        assert_int_equal(reign_shard_start(w->in[k].s), REIGN_OK);
    assert_true(eventually(one_worker_each, w, 2, 0, 30, 10000));
    sleep_ms(500);
    for (int i = 15; i < 30; i++)
        assert_int_equal(reign_shard_add(w->in[1].s, p[i]), REIGN_OK);
    /* Moves wait for the hold interval (10 s): jump the shards' clock. */
    atomic_store(&clock_offset_ms, 11000);
    assert_true(eventually(split_evenly, w, 2, 0, 30, 10000));
    sleep_ms(500); /* and stays so */
    assert_true(split_evenly(w, 2, 0, 30));
    reign_shard_balance b0, b1;
    assert_int_equal(reign_shard_balance_info(w->in[0].s, &b0), REIGN_OK);
    assert_int_equal(reign_shard_balance_info(w->in[1].s, &b1), REIGN_OK);
    assert_int_equal(b0.held, 15);
    assert_int_equal(b1.held, 15);
    pthread_mutex_lock(&w->mu);
    assert_int_equal(w->overlaps, 0);
    assert_int_equal(w->bad_terms, 0);
    int gains = 0;
    for (int i = 0; i < 30; i++)
        gains += w->r[i].gains;
    pthread_mutex_unlock(&w->mu);
    print_message("differing sets: %d gains for 30 resources\n", gains);
    assert_true(gains <= 30 + 15); /* at most one move each for the half that moves */
    for (int k = 0; k < 2; k++)
        close_instance(w, k);
    world_free(w);
}

/* One member slot, two instances: the one without a slot stands by (takes
 * and probes nothing, so it never campaigns on a view nobody shares), and
 * takes over once the slot frees. */
/* The hold (10 s here) keeps a flapping view from moving work back and
 * forth; a mastership campaigned for before the stable members grew was
 * taken on a smaller view and moves to its owner at once. */
static void test_work_taken_on_a_smaller_view_moves_without_the_hold(void **state)
{
    (void)state;
    world *w = world_new();
    char ids[N_MAX][8];
    const char *p[N_MAX];
    ids_make(ids, p, 0, 10);
    open_instance(w, 0, "mem://handover-grow", p, 10, NULL);
    assert_int_equal(reign_shard_start(w->in[0].s), REIGN_OK);
    assert_true(eventually(one_worker_each, w, 1, 0, 10, 5000));
    int64_t t0 = reign_monotonic_ms();
    open_instance(w, 1, "mem://handover-grow", p, 10, NULL);
    assert_int_equal(reign_shard_start(w->in[1].s), REIGN_OK);
    assert_true(eventually(split_evenly, w, 2, 0, 10, 5000));
    int64_t ms = reign_monotonic_ms() - t0;
    print_message("split after %lld ms (hold 10000 ms)\n", (long long)ms);
    assert_true(ms < 5000);
    pthread_mutex_lock(&w->mu);
    assert_int_equal(w->overlaps, 0);
    pthread_mutex_unlock(&w->mu);
    close_instance(w, 1);
    close_instance(w, 0);
    world_free(w);
}

static void test_an_instance_without_a_member_slot_stands_by(void **state)
{
    (void)state;
    world *w = world_new();
    char ids[N_MAX][8];
    const char *p[N_MAX];
    ids_make(ids, p, 0, 10);
    slots_for_next_open = 1;
    open_instance(w, 0, "mem://handover-standby", p, 10, NULL);
    assert_int_equal(reign_shard_start(w->in[0].s), REIGN_OK);
    assert_true(eventually(one_worker_each, w, 1, 0, 10, 5000));
    open_instance(w, 1, "mem://handover-standby", p, 10, NULL);
    assert_int_equal(reign_shard_start(w->in[1].s), REIGN_OK);
    sleep_ms(1500); /* past stabilization and probe intervals */
    assert_int_equal(reign_tracker_count(reign_shard_tracker(w->in[1].s)), 0);
    reign_shard_balance b;
    assert_int_equal(reign_shard_balance_info(w->in[1].s, &b), REIGN_OK);
    assert_int_equal(b.target, 0);
    close_instance(w, 0);
    assert_true(eventually(one_worker_each, w, 2, 0, 10, 10000));
    assert_int_equal(reign_tracker_count(reign_shard_tracker(w->in[1].s)), 10);
    slots_for_next_open = 0;
    pthread_mutex_lock(&w->mu);
    assert_int_equal(w->overlaps, 0);
    pthread_mutex_unlock(&w->mu);
    close_instance(w, 1);
    world_free(w);
}

static void test_a_bad_weight_is_refused_at_start(void **state)
{
    (void)state;
    world *w = world_new();
    open_instance(w, 0, "mem://handover-weight", NULL, 0, "addr=x weight=two");
    assert_int_equal(reign_shard_start(w->in[0].s), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "weight=two"));
    close_instance(w, 0);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_set_that_changes_while_running),
        cmocka_unit_test(test_the_lease_is_released_only_after_the_acknowledgement),
        cmocka_unit_test(test_a_revocation_never_acknowledged_ends_at_the_revoke_timeout),
        cmocka_unit_test(test_drain_hands_everything_over_one_by_one),
        cmocka_unit_test(test_instances_whose_sets_differ_for_a_while),
        cmocka_unit_test(test_an_instance_without_a_member_slot_stands_by),
        cmocka_unit_test(test_work_taken_on_a_smaller_view_moves_without_the_hold),
        cmocka_unit_test(test_a_bad_weight_is_refused_at_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
