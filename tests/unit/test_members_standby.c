/* An instance that finds every member slot taken stands by:
 * reign_members_standing_by says so (once in the log), and it takes a slot
 * when one frees. With the default slots a fleet past 64 joins whole, and
 * each refresh reads about the occupied slots, not all of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "members.h"
#include "reign/reign.h"

#include <pthread.h>
#include <stdio.h>

static reign_factory *joined_to(const char *uri, const char *id, unsigned slots)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = id;
    o.ttl_ms = 1000;
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open(uri, &o, &f), REIGN_OK);
    reign_membership_config mc = REIGN_MEMBERSHIP_CONFIG_INIT;
    mc.slots = slots;
    mc.refresh_interval_ms = 50;
    mc.stabilization_ms = 1;
    assert_int_equal(reign_factory_join(f, &mc), REIGN_OK);
    return f;
}

static reign_factory *joined(const char *id)
{
    return joined_to("mem://standby", id, 2);
}

static size_t members_seen(reign_factory *f)
{
    reign_member *m = NULL;
    size_t n = 0;
    assert_int_equal(reign_factory_members(f, &m, &n), REIGN_OK);
    reign_members_free(m, n);
    return n;
}

/* Wait until every one of fleet[0..n) sees `want` members and
 * `standing` of them stand by. */
static bool wait_fleet(reign_factory **fleet, size_t n, size_t want, size_t standing)
{
    int64_t t0 = reign_monotonic_ms();
    for (;;) {
        size_t ok = 0, by = 0;
        for (size_t i = 0; i < n; i++) {
            if (fleet[i] == NULL)
                continue;
            ok += members_seen(fleet[i]) == want;
            by += reign_members_standing_by(fleet[i]);
        }
        size_t live = 0;
        for (size_t i = 0; i < n; i++)
            live += fleet[i] != NULL;
        if (ok == live && by == standing)
            return true;
        if (reign_monotonic_ms() - t0 > 20000) {
            print_message("%zu of %zu see %zu members, %zu stand by\n", ok, live, want, by);
            return false;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
}

static bool wait_standby(reign_factory *f, bool want);

enum { FLEET = 65 };

typedef struct joiner {
    char id[16];
    reign_factory *f;
} joiner;

static void *join_main(void *arg)
{
    joiner *j = arg;
    j->f = joined_to("mem://fleet65", j->id, 0);
    return NULL;
}

static void test_65_instances_join_whole_with_the_default_slots_reading_few(void **state)
{
    (void)state;
    /* All at once: each joins from its own thread. */
    joiner j[FLEET];
    pthread_t t[FLEET];
    int64_t t0 = reign_monotonic_ms();
    for (int i = 0; i < FLEET; i++) {
        snprintf(j[i].id, sizeof j[i].id, "i%02d", i);
        assert_int_equal(pthread_create(&t[i], NULL, join_main, &j[i]), 0);
    }
    reign_factory *fleet[FLEET];
    for (int i = 0; i < FLEET; i++) {
        pthread_join(t[i], NULL);
        fleet[i] = j[i].f;
    }
    assert_true(wait_fleet(fleet, FLEET, FLEET, 0));
    print_message("%d instances joined at once: all members, seen by all, after %lld ms "
                  "(refresh 50 ms)\n",
                  FLEET, (long long)(reign_monotonic_ms() - t0));
    /* A refresh reads the occupied slots, as many again and a sweep: not
     * all 1,024. */
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    size_t most = 0;
    for (int i = 0; i < FLEET; i++) {
        size_t r = reign_members_last_reads(fleet[i]);
        if (r > 3 * FLEET)
            print_message("%d read %zu\n", i, r);
        most = r > most ? r : most;
    }
    print_message("%d members; the most slots one refresh read: %zu of %d\n", FLEET, most,
                  REIGN_MEMBERSHIP_DEFAULT_SLOTS);
    assert_true(most <= 4 * FLEET); /* 160-204 here */
    /* An observer that has not joined finds them all too. */
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "observer";
    reign_factory *obs = NULL;
    assert_int_equal(reign_factory_open("mem://fleet65", &o, &obs), REIGN_OK);
    assert_int_equal(members_seen(obs), FLEET);
    assert_int_equal(reign_factory_close(obs), REIGN_OK);
    for (int i = 0; i < FLEET; i++)
        assert_int_equal(reign_factory_close(fleet[i]), REIGN_OK);
}

static void test_a_65th_instance_stands_by_with_64_slots_and_takes_the_first_freed(void **state)
{
    (void)state;
    reign_factory *fleet[FLEET];
    for (int i = 0; i < FLEET; i++) {
        char id[16];
        snprintf(id, sizeof id, "i%02d", i);
        fleet[i] = joined_to("mem://slots64", id, 64);
    }
    /* Each view lists 64 members and itself: the one standing by counts
     * itself too, so the views differ; wait on the standing-by count. */
    int64_t t0 = reign_monotonic_ms();
    size_t by = 0;
    int who = -1;
    while (reign_monotonic_ms() - t0 < 20000) {
        by = 0;
        for (int i = 0; i < FLEET; i++)
            if (reign_members_standing_by(fleet[i])) {
                by++;
                who = i;
            }
        if (by == 1)
            break;
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(by, 1);
    int leaving = who == 0 ? 1 : 0;
    assert_int_equal(reign_factory_close(fleet[leaving]), REIGN_OK);
    fleet[leaving] = NULL;
    assert_true(wait_standby(fleet[who], false));
    assert_true(wait_fleet(fleet, FLEET, 64, 0));
    for (int i = 0; i < FLEET; i++)
        if (fleet[i] != NULL)
            assert_int_equal(reign_factory_close(fleet[i]), REIGN_OK);
}

static bool wait_standby(reign_factory *f, bool want)
{
    int64_t t0 = reign_monotonic_ms();
    while (reign_members_standing_by(f) != want) {
        if (reign_monotonic_ms() - t0 > 5000)
            return false;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* Wait until an instance that has not joined reads n members in the slots
 * of mem://standby. */
static bool wait_members_read(size_t n)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "reader";
    reign_factory *r = NULL;
    assert_int_equal(reign_factory_open("mem://standby", &o, &r), REIGN_OK);
    int64_t t0 = reign_monotonic_ms();
    bool ok;
    while (!(ok = members_seen(r) == n) && reign_monotonic_ms() - t0 < 5000) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(reign_factory_close(r), REIGN_OK);
    return ok;
}

static void test_an_instance_without_a_slot_stands_by_and_takes_one_when_freed(void **state)
{
    (void)state;
    /* Join returns once the instance campaigns for a slot, not once it has
     * won it: two that pick the same slot sort it out at their next
     * refresh, and a third joining meanwhile may take the slot the loser
     * retries for. So c joins only once a and b are members. */
    reign_factory *a = joined("a");
    assert_true(wait_members_read(1));
    reign_factory *b = joined("b");
    assert_true(wait_members_read(2));
    reign_factory *c = joined("c");
    assert_false(reign_members_standing_by(a));
    assert_false(reign_members_standing_by(b));
    assert_true(wait_standby(c, true));
    reign_member *m = NULL;
    size_t n = 0;
    assert_int_equal(reign_factory_members(c, &m, &n), REIGN_OK);
    /* The view still lists c itself (as before): the shard must consult
     * reign_members_standing_by, not the view, to stand by. */
    assert_int_equal(n, 3);
    reign_members_free(m, n);

    assert_int_equal(reign_factory_close(a), REIGN_OK);
    assert_true(wait_standby(c, false));
    assert_int_equal(reign_factory_close(b), REIGN_OK);
    assert_int_equal(reign_factory_close(c), REIGN_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_instance_without_a_slot_stands_by_and_takes_one_when_freed),
        cmocka_unit_test(test_65_instances_join_whole_with_the_default_slots_reading_few),
        cmocka_unit_test(test_a_65th_instance_stands_by_with_64_slots_and_takes_the_first_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
