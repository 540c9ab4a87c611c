/* The reconnect pacing backends share (backend.h, reign_backend_link):
 * a broken link is retried at once, failed attempts back off 100 ms
 * doubling to 2 s, one warning per outage, and the refusal while waiting
 * carries the last cause. No clock is faked: the checks read next_try_ms
 * against the time around each call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "reign/backend.h"
#include "reign/reign.h"

static int warnings, infos;
static char last_line[600];

static void count_log(int level, const char *component, const char *message, void *payload)
{
    (void)component;
    (void)payload;
    warnings += level == REIGN_LOG_WARN;
    infos += level == REIGN_LOG_INFO;
    strncpy(last_line, message, sizeof last_line - 1);
}

static reign_backend_config cfg = {
    .uri_redacted = "test://host",
    .scheme = "test",
    .logger = count_log,
};

/* next_try_ms lies `wait` after the call, within the time the call took. */
static void assert_waits(const reign_backend_link *l, int64_t before, int64_t after, int64_t wait)
{
    assert_true(l->next_try_ms >= before + wait);
    assert_true(l->next_try_ms <= after + wait);
}

static void test_failed_attempts_back_off_doubling_to_two_seconds(void **state)
{
    (void)state;
    reign_backend_link l = {0};
    assert_true(reign_backend_link_may_try(&l, reign_monotonic_ms()));
    warnings = 0;
    const int64_t want[] = {100, 200, 400, 800, 1600, 2000, 2000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t before = reign_monotonic_ms();
        reign_backend_link_failed(&cfg, &l, "command connection", REIGN_EAUTH, "refused");
        int64_t after = reign_monotonic_ms();
        assert_waits(&l, before, after, want[i]);
        assert_false(reign_backend_link_may_try(&l, after));
        assert_true(reign_backend_link_may_try(&l, after + want[i]));
    }
    assert_int_equal(warnings, 1); /* the rest of the outage at debug level */
    char err[200];
    int64_t now = reign_monotonic_ms();
    assert_int_equal(reign_backend_link_refusal(&l, now, err, sizeof err), REIGN_EAUTH);
    assert_non_null(strstr(err, "not connected (refused); next attempt in "));
}

static void test_a_link_that_comes_back_says_so_and_starts_over(void **state)
{
    (void)state;
    reign_backend_link l = {0};
    infos = warnings = 0;
    reign_backend_link_failed(&cfg, &l, "subscriber connection", REIGN_EBACKEND, "down");
    reign_backend_link_failed(&cfg, &l, "subscriber connection", REIGN_EBACKEND, "down");
    reign_backend_link_up(&cfg, &l, "subscriber connection");
    assert_int_equal(infos, 1);
    assert_non_null(strstr(last_line, "subscriber connection is back (test://host)"));
    /* After a success the first failure waits the minimum again. */
    int64_t before = reign_monotonic_ms();
    reign_backend_link_failed(&cfg, &l, "subscriber connection", REIGN_EBACKEND, "down");
    assert_waits(&l, before, reign_monotonic_ms(), 100);
    assert_int_equal(warnings, 2); /* a new outage is warned of again */
    reign_backend_link_up(&cfg, &l, "subscriber connection");
    infos = 0;
    reign_backend_link_up(&cfg, &l, "subscriber connection");
    assert_int_equal(infos, 0); /* no outage, nothing to say */
}

static void test_a_broken_link_is_tried_again_at_once(void **state)
{
    (void)state;
    reign_backend_link l = {0};
    reign_backend_link_failed(&cfg, &l, "command connection", REIGN_EBACKEND, "down");
    reign_backend_link_failed(&cfg, &l, "command connection", REIGN_EBACKEND, "down");
    warnings = 0;
    reign_backend_link_lost(&cfg, &l, "command connection", "closed while idle");
    assert_int_equal(warnings, 1);
    assert_non_null(strstr(last_line, "command connection lost: closed while idle"));
    assert_true(reign_backend_link_may_try(&l, reign_monotonic_ms()));
    assert_int_equal(l.backoff_ms, 0);
    /* retry_now undoes a backoff (a master that moved). */
    reign_backend_link_failed(&cfg, &l, "command connection", REIGN_EBACKEND, "down");
    reign_backend_link_retry_now(&l);
    assert_true(reign_backend_link_may_try(&l, reign_monotonic_ms()));
    /* A refusal with no status of its own is a backend failure. */
    reign_backend_link z = {0};
    char err[100];
    assert_int_equal(reign_backend_link_refusal(&z, 0, err, sizeof err), REIGN_EBACKEND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_attempts_back_off_doubling_to_two_seconds),
        cmocka_unit_test(test_a_link_that_comes_back_says_so_and_starts_over),
        cmocka_unit_test(test_a_broken_link_is_tried_again_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
