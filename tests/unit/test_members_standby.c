/* An instance that finds every member slot taken stands by:
 * reign_members_standing_by says so (once in the log), and it takes a slot
 * when one frees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "members.h"
#include "reign/reign.h"

static reign_factory *joined(const char *id)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = id;
    o.ttl_ms = 1000;
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open("mem://standby", &o, &f), REIGN_OK);
    reign_membership_config mc = REIGN_MEMBERSHIP_CONFIG_INIT;
    mc.slots = 2;
    mc.refresh_interval_ms = 50;
    mc.stabilization_ms = 1;
    assert_int_equal(reign_factory_join(f, &mc), REIGN_OK);
    return f;
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

static void test_an_instance_without_a_slot_stands_by_and_takes_one_when_freed(void **state)
{
    (void)state;
    reign_factory *a = joined("a"), *b = joined("b"), *c = joined("c");
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
