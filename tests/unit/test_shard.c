/* Shard manager tests on the in-process mem:// backend: several factories
 * ("instances") share one store, and every resource must end with exactly
 * one master; on_change and the shard's tracker must agree. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "reign/reign.h"

#define MAX_RESOURCES 10000
#define MAX_SHARDS 3

/* What on_change reported, per resource. */
typedef struct world {
    pthread_mutex_t mu;
    pthread_cond_t cond;  /* signalled on every on_change */
    int holders[MAX_RESOURCES];  /* shards that said "master" and not yet "lost" */
    int owner[MAX_RESOURCES];    /* last shard that gained it */
    int moves[MAX_RESOURCES];    /* gains by a shard other than the last owner */
    long gained, lost;
    int bad_terms;               /* a gain reported with term 0 */
    size_t n;
} world;

typedef struct shard_ctx {
    world *w;
    int index;
} shard_ctx;

static world *world_new(size_t n)
{
    world *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->mu, NULL);
    w->n = n;
    for (size_t i = 0; i < n; i++)
        w->owner[i] = -1;
    return w;
}

static void world_free(world *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static void on_change(const char *resource_id, bool is_master, uint64_t term, void *payload)
{
    shard_ctx *c = payload;
    world *w = c->w;
    int i = atoi(resource_id + 4); /* "res-NNNN" */
    pthread_mutex_lock(&w->mu);
    if (is_master) {
        w->holders[i]++;
        if (w->owner[i] != -1 && w->owner[i] != c->index)
            w->moves[i]++;
        w->owner[i] = c->index;
        w->gained++;
        if (term == 0)
            w->bad_terms++;
    } else {
        w->holders[i]--;
        w->lost++;
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

/* With w->mu held. */
static bool every_resource_has_one_master(const world *w)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->holders[i] != 1)
            return false;
    return true;
}

static bool nobody_is_master(const world *w)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->holders[i] != 0)
            return false;
    return true;
}

static bool all_owned_by(const world *w, int shard)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->holders[i] != 1 || w->owner[i] != shard)
            return false;
    return true;
}

/* Wait on on_change until pred holds or timeout_ms passes; prints the first
 * resource that is off on failure. */
static bool wait_for(world *w, bool (*pred)(const world *), int64_t timeout_ms, int shard)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->mu);
    bool ok;
    for (;;) {
        ok = shard >= 0 ? all_owned_by(w, shard) : pred(w);
        if (ok || pthread_cond_timedwait(&w->cond, &w->mu, &until) != 0)
            break;
    }
    ok = shard >= 0 ? all_owned_by(w, shard) : pred(w);
    if (!ok) {
        for (size_t i = 0; i < w->n; i++) {
            if (w->holders[i] != 1 || (shard >= 0 && w->owner[i] != shard)) {
                fprintf(stderr, "res-%04zu: holders %d owner %d (gained %ld lost %ld)\n", i,
                        w->holders[i], w->owner[i], w->gained, w->lost);
                break;
            }
        }
    }
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static char **make_ids(size_t n)
{
    char **ids = calloc(n, sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(32);
        assert_non_null(ids[i]);
        snprintf(ids[i], 32, "res-%04zu", i);
    }
    return ids;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

static reign_shard_config fast_config(shard_ctx *ctx)
{
    reign_shard_config c = REIGN_SHARD_CONFIG_INIT;
    c.runner.pre_election_pause_ms = 10;
    c.runner.master_check_interval_ms = 50;
    c.runner.master_hold_interval_ms = 10000;
    c.runner.resign_odds = 0;
    c.on_change = on_change;
    c.payload = ctx;
    return c;
}

typedef struct instance {
    reign_factory *f;
    reign_shard *s;
    shard_ctx ctx;
} instance;

static bool open_with_balance = true;

static void open_instances(instance *in, int n, const char *uri, world *w, char **ids,
                           size_t n_ids)
{
    for (int k = 0; k < n; k++) {
        in[k].ctx = (shard_ctx){.w = w, .index = k};
        assert_int_equal(reign_factory_open(uri, NULL, &in[k].f), REIGN_OK);
        reign_shard_config c = fast_config(&in[k].ctx);
        c.balance = open_with_balance;
        assert_int_equal(reign_shard_new(in[k].f, (const char *const *)ids, n_ids, &c, &in[k].s),
                         REIGN_OK);
    }
}

static void close_instances(instance *in, int n)
{
    for (int k = 0; k < n; k++) {
        reign_shard_free(in[k].s);
        assert_int_equal(reign_factory_close(in[k].f), REIGN_OK);
    }
}

static void test_every_resource_ends_with_exactly_one_master(void **state)
{
    (void)state;
    const size_t n = 50;
    world *w = world_new(n);
    char **ids = make_ids(n);
    instance in[3];
    assert_non_null(w);
    open_instances(in, 3, "mem://shardtest", w, ids, n);
    for (int k = 0; k < 3; k++)
        assert_int_equal(reign_shard_start(in[k].s), REIGN_OK);

    assert_true(wait_for(w, every_resource_has_one_master, 10000, -1));

    /* The trackers agree with on_change: each ID is held by exactly one. */
    size_t total = 0;
    for (int k = 0; k < 3; k++) {
        reign_tracker *t = reign_shard_tracker(in[k].s);
        char **held = NULL;
        total += reign_tracker_count(t);
        assert_int_equal(reign_tracker_held(t, &held), REIGN_OK);
        for (char **p = held; *p != NULL; p++)
            assert_int_equal(w->owner[atoi(*p + 4)], k);
        reign_strv_free(held);
        char **all = NULL;
        assert_int_equal(reign_tracker_ids(t, &all), REIGN_OK);
        size_t m = 0;
        while (all[m] != NULL)
            m++;
        assert_int_equal(m, n);
        reign_strv_free(all);
    }
    assert_int_equal(total, n);
    pthread_mutex_lock(&w->mu);
    assert_true(w->gained >= (long)n);
    assert_int_equal(w->bad_terms, 0);
    pthread_mutex_unlock(&w->mu);

    /* Stop reports every held resource lost and leaves nothing held. */
    for (int k = 0; k < 3; k++)
        assert_int_equal(reign_shard_stop(in[k].s), REIGN_OK);
    pthread_mutex_lock(&w->mu);
    assert_true(nobody_is_master(w));
    assert_int_equal(w->lost, w->gained);
    pthread_mutex_unlock(&w->mu);
    for (int k = 0; k < 3; k++)
        assert_int_equal(reign_tracker_count(reign_shard_tracker(in[k].s)), 0);

    close_instances(in, 3);
    free_ids(ids, n);
    world_free(w);
}

static void test_stopping_one_shard_hands_its_resources_to_the_others(void **state)
{
    (void)state;
    const size_t n = 20;
    world *w = world_new(n);
    char **ids = make_ids(n);
    instance in[2];
    assert_non_null(w);
    open_instances(in, 2, "mem://shardtest-handover", w, ids, n);
    /* Shard 0 first, so it takes everything; then shard 1 joins. */
    assert_int_equal(reign_shard_start(in[0].s), REIGN_OK);
    assert_true(wait_for(w, NULL, 10000, 0));
    assert_int_equal(reign_shard_start(in[1].s), REIGN_OK);
    assert_int_equal(reign_shard_start(in[1].s), REIGN_OK); /* starting twice is OK */

    assert_int_equal(reign_shard_stop(in[0].s), REIGN_OK);
    assert_true(wait_for(w, NULL, 10000, 1));
    assert_int_equal(reign_tracker_count(reign_shard_tracker(in[0].s)), 0);
    assert_int_equal(reign_tracker_count(reign_shard_tracker(in[1].s)), n);

    /* A stopped shard can start again (and now waits its turn). */
    assert_int_equal(reign_shard_start(in[0].s), REIGN_OK);
    close_instances(in, 2);
    free_ids(ids, n);
    world_free(w);
}

static void test_many_resources_run_on_two_threads(void **state)
{
    (void)state;
    const size_t n = MAX_RESOURCES;
    world *w = world_new(n);
    char **ids = make_ids(n);
    instance in[1];
    assert_non_null(w);
    /* Threads and scale, not balancing (tested below), which would add a
     * membership per factory and minutes under TSan. */
    open_with_balance = false;
    open_instances(in, 1, "mem://shardtest-many", w, ids, n);
    open_with_balance = true;
    assert_int_equal(reign_shard_start(in[0].s), REIGN_OK);
    assert_true(wait_for(w, every_resource_has_one_master, 60000, -1));
    assert_int_equal(reign_tracker_count(reign_shard_tracker(in[0].s)), n);
    close_instances(in, 1);
    pthread_mutex_lock(&w->mu);
    assert_true(nobody_is_master(w));
    pthread_mutex_unlock(&w->mu);
    free_ids(ids, n);
    world_free(w);
}

/* Balancing: shards with a short membership refresh and stabilization. */
static void open_balanced(instance *in, int k, const char *uri, world *w, char **ids, size_t n)
{
    in[k].ctx = (shard_ctx){.w = w, .index = k};
    reign_options o = REIGN_OPTIONS_INIT;
    o.ttl_ms = 1000;
    char id[16];
    snprintf(id, sizeof id, "inst-%d", k);
    o.instance_id = id;
    assert_int_equal(reign_factory_open(uri, &o, &in[k].f), REIGN_OK);
    reign_shard_config c = fast_config(&in[k].ctx);
    c.membership.refresh_interval_ms = 100;
    c.membership.stabilization_ms = 500;
    assert_int_equal(reign_shard_new(in[k].f, (const char *const *)ids, n, &c, &in[k].s),
                     REIGN_OK);
}

static size_t held_by(instance *in, int k)
{
    return reign_tracker_count(reign_shard_tracker(in[k].s));
}

/* Wait until shards 0..k-1 each hold `each` (± spread) and every resource
 * has one master. */
static bool wait_balanced(world *w, instance *in, int k, size_t each, int64_t timeout_ms)
{
    int64_t start = reign_monotonic_ms();
    for (;;) {
        bool ok = true;
        for (int i = 0; i < k; i++)
            ok = ok && held_by(in, i) >= each - 1 && held_by(in, i) <= each;
        pthread_mutex_lock(&w->mu);
        ok = ok && every_resource_has_one_master(w);
        pthread_mutex_unlock(&w->mu);
        if (ok)
            return true;
        if (reign_monotonic_ms() - start > timeout_ms) {
            for (int i = 0; i < k; i++)
                fprintf(stderr, "shard %d holds %zu (want %zu)\n", i, held_by(in, i), each);
            return false;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void test_shards_started_together_split_resources_evenly(void **state)
{
    (void)state;
    const size_t n = 30;
    world *w = world_new(n);
    char **ids = make_ids(n);
    instance in[3];
    for (int k = 0; k < 3; k++)
        open_balanced(in, k, "mem://balance-even", w, ids, n);
    for (int k = 0; k < 3; k++)
        assert_int_equal(reign_shard_start(in[k].s), REIGN_OK);
    assert_true(wait_balanced(w, in, 3, 10, 8000));
    reign_shard_balance b;
    assert_int_equal(reign_shard_balance_info(in[0].s, &b), REIGN_OK);
    assert_int_equal(b.fair_share, 10);
    assert_int_equal(b.members, 3);
    assert_int_equal(b.resources, 30);
    close_instances(in, 3);
    free_ids(ids, n);
    world_free(w);
}

static void test_a_joining_shard_gets_its_share_and_nothing_moves_twice(void **state)
{
    (void)state;
    const size_t n = 24;
    world *w = world_new(n);
    char **ids = make_ids(n);
    instance in[4];
    for (int k = 0; k < 3; k++)
        open_balanced(in, k, "mem://balance-join", w, ids, n);
    for (int k = 0; k < 3; k++)
        assert_int_equal(reign_shard_start(in[k].s), REIGN_OK);
    assert_true(wait_balanced(w, in, 3, 8, 8000));
    pthread_mutex_lock(&w->mu);
    memset(w->moves, 0, sizeof w->moves);
    pthread_mutex_unlock(&w->mu);

    /* The fourth gets ⌈24/4⌉ = 6 once the others count it (stabilization)
     * and have held theirs for the hold interval (10 s). */
    open_balanced(in, 3, "mem://balance-join", w, ids, n);
    assert_int_equal(reign_shard_start(in[3].s), REIGN_OK);
    assert_true(wait_balanced(w, in, 4, 6, 30000));
    pthread_mutex_lock(&w->mu);
    int moved = 0;
    for (size_t i = 0; i < n; i++) {
        if (w->moves[i] > 1)
            fail_msg("res-%04zu moved %d times", i, w->moves[i]);
        moved += w->moves[i];
    }
    pthread_mutex_unlock(&w->mu);
    print_message("balance: %d of %zu resources moved to admit a fourth shard\n", moved, n);
    assert_true(moved >= 6);

    /* A stopped shard leaves: the others take its share. */
    assert_int_equal(reign_shard_stop(in[3].s), REIGN_OK);
    assert_true(wait_balanced(w, in, 3, 8, 30000));
    close_instances(in, 4);
    free_ids(ids, n);
    world_free(w);
}

/* A member that runs no shard (joined, never campaigns) owns about half
 * the resources by the assignment. Nobody's target takes them, so the
 * probes must: each is read masterless twice, settle time apart, before
 * the live shard campaigns for it. */
static void test_probes_take_what_a_silent_member_leaves_masterless(void **state)
{
    (void)state;
    const size_t n = 20;
    world *w = world_new(n);
    char **ids = make_ids(n);
    reign_options go = REIGN_OPTIONS_INIT;
    go.ttl_ms = 1000;
    go.instance_id = "ghost";
    reign_factory *ghost = NULL;
    assert_int_equal(reign_factory_open("mem://balance-probe", &go, &ghost), REIGN_OK);
    reign_membership_config mc = REIGN_MEMBERSHIP_CONFIG_INIT;
    mc.refresh_interval_ms = 100;
    mc.stabilization_ms = 200;
    assert_int_equal(reign_factory_join(ghost, &mc), REIGN_OK);

    instance in[1];
    in[0].ctx = (shard_ctx){.w = w, .index = 0};
    reign_options o = REIGN_OPTIONS_INIT;
    o.ttl_ms = 1000;
    o.instance_id = "live";
    assert_int_equal(reign_factory_open("mem://balance-probe", &o, &in[0].f), REIGN_OK);
    reign_shard_config c = fast_config(&in[0].ctx);
    c.membership.refresh_interval_ms = 100;
    c.membership.stabilization_ms = 200;
    c.probe_interval_ms = 300;
    assert_int_equal(reign_shard_new(in[0].f, (const char *const *)ids, n, &c, &in[0].s),
                     REIGN_OK);
    int64_t t0 = reign_monotonic_ms();
    assert_int_equal(reign_shard_start(in[0].s), REIGN_OK);
    reign_shard_balance b;
    assert_int_equal(reign_shard_balance_info(in[0].s, &b), REIGN_OK);
    assert_int_equal(b.members, 2);
    assert_true(b.target > 0 && b.target < n); /* the ghost owns the rest */

    /* Before a second read could have confirmed any (first probe at one
     * interval, second settle time later), only its own targets. */
    struct timespec early = {0, 450 * 1000000};
    nanosleep(&early, NULL);
    assert_true(held_by(in, 0) <= b.target);
    assert_true(wait_for(w, NULL, 10000, 0)); /* all held by shard 0 */
    int64_t took = reign_monotonic_ms() - t0;
    /* the first probes come after one interval (and are spread over the
     * next), then a second read settle time (2 refreshes) later */
    print_message("probes took the silent member's %zu resources in %lld ms\n", n - b.target,
                  (long long)took);
    assert_true(took >= 300 + 200);
    assert_int_equal(held_by(in, 0), n);

    close_instances(in, 1);
    assert_int_equal(reign_factory_leave(ghost), REIGN_OK);
    assert_int_equal(reign_factory_close(ghost), REIGN_OK);
    free_ids(ids, n);
    world_free(w);
}

static void test_bad_shard_configs_are_refused_naming_the_field(void **state)
{
    (void)state;
    reign_factory *f = NULL;
    reign_shard *s = NULL;
    const char *ids[] = {"a", "b"};
    assert_int_equal(reign_factory_open("noop://", NULL, &f), REIGN_OK);

    reign_shard_config c = REIGN_SHARD_CONFIG_INIT;
    c.runner.master_hold_interval_ms = 5000;
    assert_int_equal(reign_shard_new(f, ids, 2, &c, &s), REIGN_EINVAL);
    assert_null(s);
    assert_string_equal(reign_last_error(),
                        "shard: config.runner: master_hold_interval_ms 5000 is below the "
                        "minimum 10000");

    c = (reign_shard_config)REIGN_SHARD_CONFIG_INIT;
    c.version = 0;
    assert_int_equal(reign_shard_new(f, ids, 2, &c, &s), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "reign_shard_config version 0"));

    const char *dup[] = {"a", "a"};
    c = (reign_shard_config)REIGN_SHARD_CONFIG_INIT;
    assert_int_equal(reign_shard_new(f, dup, 2, &c, &s), REIGN_EBUSY);
    assert_non_null(strstr(reign_last_error(), "shard: resource 1"));
    assert_null(s);

    /* Nothing leaked into the factory: it closes. */
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

static void test_noop_backend_makes_every_resource_master(void **state)
{
    (void)state;
    const size_t n = 100;
    world *w = world_new(n);
    char **ids = make_ids(n);
    instance in[1];
    assert_non_null(w);
    open_instances(in, 1, "noop://", w, ids, n);
    assert_int_equal(reign_shard_start(in[0].s), REIGN_OK);
    assert_true(wait_for(w, every_resource_has_one_master, 10000, -1));
    char *str = reign_tracker_string(reign_shard_tracker(in[0].s));
    assert_non_null(strstr(str, "[res-0000] [res-0001]"));
    free(str);
    close_instances(in, 1);
    free_ids(ids, n);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_resource_ends_with_exactly_one_master),
        cmocka_unit_test(test_stopping_one_shard_hands_its_resources_to_the_others),
        cmocka_unit_test(test_many_resources_run_on_two_threads),
        cmocka_unit_test(test_probes_take_what_a_silent_member_leaves_masterless),
        cmocka_unit_test(test_bad_shard_configs_are_refused_naming_the_field),
        cmocka_unit_test(test_shards_started_together_split_resources_evenly),
        cmocka_unit_test(test_a_joining_shard_gets_its_share_and_nothing_moves_twice),
        cmocka_unit_test(test_noop_backend_makes_every_resource_master),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
