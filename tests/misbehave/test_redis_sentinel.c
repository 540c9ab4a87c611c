/* redis-sentinel:// through a forced failover: a master follows the new
 * Redis master (told by +switch-master, or by READONLY), keeps or regains
 * mastership there, and, when the master it writes to stops answering,
 * stops believing by its deadline and is master again once it answers.
 *
 * Starts its own sentinel setup (scripts/servers/redis-sentinel.sh: a
 * master, a replica, three sentinels); skips, saying why, when it cannot. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "reign/reign.h"

#define TTL_MS 1500

static char dir[64];
static char uri[512];
static char skip_reason[300];
static _Atomic int switched_logs; /* "master mymaster is at ..., was ..." lines */

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int script(const char *verb, char *out, size_t out_size)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/servers/redis-sentinel.sh' %s '%s' 2>&1",
             getenv("REIGN_SOURCE_DIR"), verb, dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    size_t n = fread(out, 1, out_size - 1, p);
    out[n] = '\0';
    return pclose(p);
}

static int setup(void **state)
{
    (void)state;
    if (getenv("REIGN_SOURCE_DIR") == NULL) {
        snprintf(skip_reason, sizeof skip_reason, "REIGN_SOURCE_DIR is not set (run it through ctest)");
        return 0;
    }
    snprintf(dir, sizeof dir, "/tmp/reign-sentinel-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        snprintf(skip_reason, sizeof skip_reason, "mkdtemp: %s", strerror(errno));
        dir[0] = '\0';
        return 0;
    }
    char out[4096];
    int rc = script("start", out, sizeof out);
    const char *u = strstr(out, "SENTINEL_URI=");
    if (rc != 0 || u == NULL) {
        snprintf(skip_reason, sizeof skip_reason, "redis-sentinel.sh start failed: %.200s", out);
        return 0;
    }
    /* printf %q escapes the commas */
    size_t o = 0;
    for (const char *p = u + strlen("SENTINEL_URI="); *p != '\0' && *p != ' ' && o + 1 < sizeof uri;
         p++)
        if (*p != '\\')
            uri[o++] = *p;
    uri[o] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (dir[0] != '\0') {
        char out[2048], cmd[128];
        script("stop", out, sizeof out);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return 0;
}

#define SKIP_WITHOUT_SENTINELS()                                                              \
    do {                                                                                      \
        if (uri[0] == '\0') {                                                                 \
            print_message("skipped: %s\n", skip_reason);                                    \
            skip();                                                                           \
        }                                                                                     \
    } while (0)

static void on_log(int level, const char *component, const char *message, void *payload)
{
    (void)component;
    (void)payload;
    if (getenv("REIGN_TEST_VERBOSE") != NULL)
        fprintf(stderr, "log %d %lld: %s\n", level, (long long)reign_monotonic_ms(), message);
    if (strstr(message, "master mymaster is at") != NULL && strstr(message, ", was ") != NULL)
        atomic_fetch_add(&switched_logs, 1);
}

static reign_factory *open_factory(const char *instance)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = instance;
    o.ttl_ms = TTL_MS;
    o.op_timeout_ms = 300;
    o.retry_interval_ms = 100;
    o.logger = on_log;
    reign_factory *f = NULL;
    if (reign_factory_open(uri, &o, &f) != REIGN_OK)
        fail_msg("open %s: %s", uri, reign_last_error());
    return f;
}

static void ctl(const char *verb)
{
    char out[4096];
    char full[700];
    snprintf(full, sizeof full, "bash '%s/scripts/servers/redis-sentinel.sh' ctl '%s' %s 2>&1",
             getenv("REIGN_SOURCE_DIR"), dir, verb);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    if (pclose(p) != 0)
        fail_msg("redis-sentinel.sh ctl %s: %s", verb, out);
}

/* Master before a forced failover, master after it: the lease survived (same
 * term: renewals went on at the new master) or was taken again (a higher
 * term). One other instance campaigns throughout: never two masters. */
static void test_a_master_follows_a_forced_failover(void **state)
{
    (void)state;
    SKIP_WITHOUT_SENTINELS();
    reign_factory *fa = open_factory("a"), *fb = open_factory("b");
    reign_election *a = NULL, *b = NULL;
    assert_int_equal(reign_election_new(fa, "failover-1", &a), REIGN_OK);
    assert_int_equal(reign_election_wait(a, 5000), REIGN_OK);
    assert_int_equal(reign_election_new(fb, "failover-1", &b), REIGN_OK);
    assert_int_equal(reign_election_start(b), REIGN_OK);
    nap_ms(200); /* b has been told HELD */
    uint64_t t1 = 0;
    assert_int_equal(reign_election_term(a, &t1), REIGN_OK);
    int before = atomic_load(&switched_logs);

    int64_t t0 = reign_monotonic_ms();
    ctl("failover");
    int64_t took = reign_monotonic_ms() - t0;
    /* both factories see the new master (a log line each) */
    for (int i = 0; i < 100 && atomic_load(&switched_logs) < before + 2; i++)
        nap_ms(50);
    if (atomic_load(&switched_logs) < before + 2)
        fail_msg("the factories did not move to the new master (%d of 2 said so)",
                 atomic_load(&switched_logs) - before);
    bool am = false, bm = false;
    int64_t until = reign_monotonic_ms() + 3 * TTL_MS;
    do {
        am = reign_election_is_master(a);
        bm = reign_election_is_master(b);
        if (am && bm)
            fail_msg("two masters at once after the failover");
        if (!am && !bm)
            nap_ms(10);
    } while (!am && !bm && reign_monotonic_ms() < until);
    if (!am && !bm)
        fail_msg("nobody master %d ms after the failover", 3 * TTL_MS);
    uint64_t t2 = 0;
    assert_int_equal(reign_election_term(am ? a : b, &t2), REIGN_OK);
    print_message("  failover took %lld ms; term %llu before, %llu after (%s)\n", (long long)took,
                  (unsigned long long)t1, (unsigned long long)t2,
                  am && t2 == t1 ? "the lease survived" : "taken again");
    assert_true(t2 >= t1);
    if (!(am && t2 == t1))
        assert_true(t2 > t1);
    assert_int_equal(reign_election_close(a), REIGN_OK);
    assert_int_equal(reign_election_close(b), REIGN_OK);
    assert_int_equal(reign_factory_close(fa), REIGN_OK);
    assert_int_equal(reign_factory_close(fb), REIGN_OK);
}

/* After a failover, the master it now writes to stops answering (paused):
 * belief ends by the deadline; resumed, it is master again. */
static void test_after_a_failover_a_paused_master_ends_belief_by_the_deadline(void **state)
{
    (void)state;
    SKIP_WITHOUT_SENTINELS();
    reign_factory *f = open_factory("c");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "failover-2", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 5000), REIGN_OK);
    ctl("failover");
    assert_int_equal(reign_election_wait(e, 3 * TTL_MS), REIGN_OK);
    nap_ms(TTL_MS / 2); /* a renewal or two at the new master */
    int64_t paused = reign_monotonic_ms();
    ctl("pause");
    int64_t limit = paused + TTL_MS, looked = 0;
    bool believed = true;
    while (believed && looked <= limit) {
        looked = reign_monotonic_ms();
        believed = reign_election_is_master(e);
        if (believed && looked <= limit)
            nap_ms(5);
    }
    if (believed) {
        ctl("resume");
        fail_msg("still master %lld ms after the master was paused (ttl %d)",
                 (long long)(looked - paused), TTL_MS);
    }
    print_message("  belief ended %lld ms after the pause\n", (long long)(looked - paused));
    ctl("resume");
    int rc = reign_election_wait(e, 3 * TTL_MS + 2000);
    if (rc != REIGN_OK)
        fail_msg("not master again after resume: %s (%s)", reign_status_str(rc),
                 reign_last_error());
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_master_follows_a_forced_failover),
        cmocka_unit_test(test_after_a_failover_a_paused_master_ends_belief_by_the_deadline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
