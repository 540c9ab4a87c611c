/* The engine at scale: a batch goes in chunks, each with its own timeout,
 * so a chunk that fails costs only its own leases (a hook in front of the
 * mem backend fails every chunk that renews one of ten doomed resources);
 * and closing held elections one by one costs each its own settling, not
 * a walk of every election (linear, not quadratic); resign_many and
 * close_many stop thousands at once without a round trip to the engine
 * per election. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "election_internal.h"
#include "engine.h"
#include "reign/reign.h"

enum { N = 500, CHUNK = 50, DOOMED = 10 };

static int fail_doomed_renewals(reign_factory *f, reign_batch *b)
{
    for (size_t i = 0; i < b->n_ops; i++)
        if (b->ops[i].kind == REIGN_OP_RENEW && strncmp(b->ops[i].resource, "r00", 3) == 0)
            return REIGN_ETIMEDOUT; /* as a chunk past its timeout: nothing filled */
    return f->backend->execute(f->state, b);
}

static reign_stats stats_of(reign_factory *f)
{
    reign_stats s;
    reign_factory_stats(f, &s);
    return s;
}

static void test_a_failed_chunk_of_renewals_loses_only_its_own_leases(void **state)
{
    (void)state;
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "a";
    o.ttl_ms = 1500;
    o.retry_interval_ms = 50;
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open("mem://chunks", &o, &f), REIGN_OK);
    pthread_mutex_lock(&f->mu);
    f->chunk_ops = CHUNK;
    pthread_mutex_unlock(&f->mu);
    static reign_election *e[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%03d", i); /* r000..r009 are doomed */
        assert_int_equal(reign_election_new(f, name, &e[i]), REIGN_OK);
        assert_int_equal(reign_election_start(e[i]), REIGN_OK);
    }
    int64_t t0 = reign_monotonic_ms();
    while (stats_of(f).masterships < N && reign_monotonic_ms() - t0 < 5000) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(stats_of(f).masterships, N);
    uint64_t lost0 = stats_of(f).lost;

    reign_engine_execute_hook = fail_doomed_renewals;
    t0 = reign_monotonic_ms();
    while (stats_of(f).lost - lost0 < DOOMED && reign_monotonic_ms() - t0 < 5000) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    uint64_t lost = stats_of(f).lost - lost0;
    reign_engine_execute_hook = NULL;
    print_message("%llu of %d leases lost when renewals of %d failed (chunks of %d)\n",
                  (unsigned long long)lost, N, DOOMED, CHUNK);
    /* The doomed ten and the rest of the (at most two) chunks they rode
     * in; one batch for all would have lost all 500. */
    assert_true(lost >= DOOMED);
    assert_true(lost <= 2 * CHUNK);
    for (int i = 0; i < N; i++)
        assert_int_equal(reign_election_close(e[i]), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

/* Open a factory on mem://NAME and hold M elections "s<i>". */
static reign_factory *hold_many(const char *uri, const char *instance, int M, reign_election **e)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = instance;
    o.ttl_ms = 30000;
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open(uri, &o, &f), REIGN_OK);
    for (int i = 0; i < M; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%05d", i);
        assert_int_equal(reign_election_new(f, name, &e[i]), REIGN_OK);
        assert_int_equal(reign_election_start(e[i]), REIGN_OK);
    }
    int64_t t0 = reign_monotonic_ms();
    while (stats_of(f).masterships < (size_t)M && reign_monotonic_ms() - t0 < 120000) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(stats_of(f).masterships, M);
    return f;
}

/* The short form of the stop bench: 10,000 held resources. Closing them
 * one by one (as a stop does) used to cost a walk of every election per
 * close: about 10^8 steps here. */
static void test_closing_10000_held_elections_one_by_one_is_linear(void **state)
{
    (void)state;
    enum { M = 10000 };
    reign_election **e = calloc(M, sizeof *e);
    assert_non_null(e);
    reign_factory *f = hold_many("mem://stop", "a", M, e);
    int64_t t0 = reign_monotonic_ms();
    for (int i = 0; i < M; i++)
        reign_election_resign_nowait(e[i]);
    for (int i = 0; i < M; i++)
        assert_int_equal(reign_election_close(e[i]), REIGN_OK);
    int64_t ms = reign_monotonic_ms() - t0;
    print_message("stop of %d held resources (resign all, then close one by one): %lld ms\n", M,
                  (long long)ms);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
    free(e);
    /* 53 ms here (a settled election closes without the engine), 1,111 ms
     * with a walk per close */
    assert_true(ms < 2500);
}

static void test_stopping_10000_held_elections_at_once_releases_all_quickly(void **state)
{
    (void)state;
    enum { M = 10000 };
    reign_election **e = calloc(M, sizeof *e);
    assert_non_null(e);
    reign_factory *f = hold_many("mem://stop-many", "a", M, e);
    int64_t t0 = reign_monotonic_ms();
    assert_int_equal(reign_election_resign_many(e, M), REIGN_OK);
    int64_t resigned_ms = reign_monotonic_ms() - t0;
    /* Every lease is released once resign_many returns: none is master. */
    for (int i = 0; i < M; i++)
        assert_false(reign_election_is_master(e[i]));
    assert_int_equal(stats_of(f).masterships, 0);
    assert_int_equal(reign_election_close_many(e, M), REIGN_OK);
    int64_t ms = reign_monotonic_ms() - t0;
    print_message("stop of %d held resources with resign_many + close_many: %lld ms "
                  "(resign_many %lld ms)\n",
                  M, (long long)ms, (long long)resigned_ms);
    assert_int_equal(reign_factory_close(f), REIGN_OK); /* no election left */

    /* Another instance finds every one of them free. */
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "b";
    reign_factory *g = NULL;
    assert_int_equal(reign_factory_open("mem://stop-many", &o, &g), REIGN_OK);
    for (int i = 0; i < M; i += 997) {
        char name[16];
        snprintf(name, sizeof name, "s%05d", i);
        reign_master *m = NULL;
        assert_int_equal(reign_factory_current_master(g, name, &m), REIGN_ENOMASTER);
    }
    assert_int_equal(reign_factory_close(g), REIGN_OK);
    free(e);
    assert_true(ms < 1500); /* 30 ms here under ASan */
}

typedef struct waiter {
    reign_election *e;
    int rc;
} waiter;

static void *wait_forever(void *arg)
{
    waiter *w = arg;
    w->rc = reign_election_wait(w->e, -1);
    return NULL;
}

static void test_close_many_refuses_bad_lists_and_ends_waits(void **state)
{
    (void)state;
    reign_election *held[2];
    reign_factory *a = hold_many("mem://close-many", "a", 2, held);
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "b";
    reign_factory *b = NULL;
    assert_int_equal(reign_factory_open("mem://close-many", &o, &b), REIGN_OK);
    reign_election *other = NULL;
    assert_int_equal(reign_election_new(b, "s00000", &other), REIGN_OK);

    assert_int_equal(reign_election_close_many(NULL, 1), REIGN_EINVAL);
    assert_int_equal(reign_election_resign_many(NULL, 1), REIGN_EINVAL);
    reign_election *with_null[2] = {held[0], NULL};
    assert_int_equal(reign_election_resign_many(with_null, 2), REIGN_EINVAL);
    reign_election *mixed[2] = {held[0], other};
    assert_int_equal(reign_election_close_many(mixed, 2), REIGN_EINVAL);
    assert_int_equal(reign_election_resign_many(mixed, 2), REIGN_EINVAL);
    assert_true(reign_election_is_master(held[0])); /* nothing was done */
    assert_int_equal(reign_election_close_many(NULL, 0), REIGN_OK);

    /* b waits for a resource a holds; closing it ends the wait. */
    waiter w = {other, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_forever, &w), 0);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    reign_election *just_other[2] = {NULL, other};
    assert_int_equal(reign_election_close_many(just_other, 2), REIGN_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, REIGN_ECLOSED);

    assert_int_equal(reign_election_close_many(held, 2), REIGN_OK);
    assert_int_equal(reign_factory_close(a), REIGN_OK);
    assert_int_equal(reign_factory_close(b), REIGN_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_failed_chunk_of_renewals_loses_only_its_own_leases),
        cmocka_unit_test(test_closing_10000_held_elections_one_by_one_is_linear),
        cmocka_unit_test(test_stopping_10000_held_elections_at_once_releases_all_quickly),
        cmocka_unit_test(test_close_many_refuses_bad_lists_and_ends_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
