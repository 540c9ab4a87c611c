/* Errors reach the user: a wait that times out says why (the backend's
 * refusal, or who holds the resource), reign_election_last_failure gives
 * the last failure, and a resign whose RELEASE failed says so. A hook in
 * front of the mem backend plays a backend that refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "reign/reign.h"

/* The hook gives causes as a backend does; the core adds scheme and URI. */
#define REFUSAL "mem: connection refused (mem://errors)"

/* Ops on resources named "refused*" fail as a server that refuses would
 * make them; everything else goes to mem. */
static int refuse_some(reign_factory *f, reign_batch *b)
{
    int rc = f->backend->execute(f->state, b);
    reign_op *ops = b->ops;
    size_t n = b->n_ops;
    for (size_t i = 0; i < n; i++) {
        bool acquire = ops[i].kind == REIGN_OP_ACQUIRE &&
                       strncmp(ops[i].resource, "refused", 7) == 0;
        bool release = ops[i].kind == REIGN_OP_RELEASE &&
                       strncmp(ops[i].resource, "norelease", 9) == 0;
        if (!acquire && !release)
            continue;
        /* A RELEASE mem did carry out is reported failed, as a server
         * that timed out would leave it unknown. */
        free(ops[i].out_error);
        free(ops[i].out_holder);
        free(ops[i].out_metadata);
        ops[i].out_holder = ops[i].out_metadata = NULL;
        ops[i].result = REIGN_RES_ERROR;
        ops[i].out_status = REIGN_EBACKEND;
        ops[i].out_error = strdup(acquire ? "connection refused" : "timed out");
    }
    return rc;
}

static reign_factory *open_mem(const char *instance)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = instance;
    o.ttl_ms = 3000;
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open("mem://errors", &o, &f), REIGN_OK);
    return f;
}

static void test_a_wait_that_times_out_names_the_backends_refusal(void **state)
{
    (void)state;
    atomic_store(&reign_engine_execute_hook, refuse_some);
    reign_factory *f = open_mem("a");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "refused-1", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 300), REIGN_ETIMEDOUT);
    print_message("%s\n", reign_last_error());
    assert_non_null(strstr(reign_last_error(), "not master after 300 ms"));
    assert_non_null(strstr(reign_last_error(), "last ACQUIRE: " REFUSAL));
    assert_int_equal(reign_last_status(), REIGN_ETIMEDOUT);
    char buf[256];
    assert_int_equal(reign_election_last_failure(e, buf, sizeof buf), REIGN_EBACKEND);
    assert_string_equal(buf, "ACQUIRE: " REFUSAL);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
    atomic_store(&reign_engine_execute_hook, NULL);
}

static void test_a_wait_that_times_out_names_the_holder(void **state)
{
    (void)state;
    reign_factory *a = open_mem("a"), *b = open_mem("b");
    reign_election *held = NULL, *waiting = NULL;
    assert_int_equal(reign_election_new(b, "taken", &held), REIGN_OK);
    assert_int_equal(reign_election_wait(held, 2000), REIGN_OK);
    assert_int_equal(reign_election_new(a, "taken", &waiting), REIGN_OK);
    assert_int_equal(reign_election_wait(waiting, 200), REIGN_ETIMEDOUT);
    print_message("%s\n", reign_last_error());
    assert_non_null(strstr(reign_last_error(), "; held by b (term 1)"));
    /* Being refused as HELD is no failure. */
    assert_int_equal(reign_election_last_failure(waiting, NULL, 0), REIGN_OK);
    assert_int_equal(reign_election_close(waiting), REIGN_OK);
    assert_int_equal(reign_election_close(held), REIGN_OK);
    assert_int_equal(reign_factory_close(a), REIGN_OK);
    assert_int_equal(reign_factory_close(b), REIGN_OK);
}

static void test_a_resign_whose_release_failed_says_so_and_ends_belief(void **state)
{
    (void)state;
    atomic_store(&reign_engine_execute_hook, refuse_some);
    reign_factory *f = open_mem("a");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "norelease-1", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 2000), REIGN_OK);
    assert_int_equal(reign_election_resign(e), REIGN_EBACKEND);
    print_message("%s\n", reign_last_error());
    assert_false(reign_election_is_master(e));
    assert_non_null(strstr(reign_last_error(), "RELEASE: mem: timed out (mem://errors)"));
    assert_non_null(strstr(reign_last_error(), "the next master waits until the lease expires"));
    /* Not master, nothing owed: a second resign has nothing to report. */
    assert_int_equal(reign_election_resign(e), REIGN_OK);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
    atomic_store(&reign_engine_execute_hook, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_wait_that_times_out_names_the_backends_refusal),
        cmocka_unit_test(test_a_wait_that_times_out_names_the_holder),
        cmocka_unit_test(test_a_resign_whose_release_failed_says_so_and_ends_belief),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
