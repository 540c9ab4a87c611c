/* The redis:// backend against a server that misbehaves: garbage, a stall,
 * a reply cut short, a trickle. Built twice: test_misbehave_rediss is the
 * same over TLS (MISBEHAVE_TLS), where the proxy also cuts a record in the
 * middle and the server is a TLS one (REDIS_TLS=1 scripts/servers/redis.sh). Opening fails within op_timeout_ms with a
 * named error; a master whose server stops answering stops believing by its
 * deadline, and is master again once the server answers.
 *
 * Cases that need no server use the misbehaving server alone; the others
 * put it as a proxy in front of a real redis-server that this test starts
 * with scripts/servers/redis.sh (its own: the conformance suite pauses and
 * restarts the shared one), else the one of $REIGN_TEST_REDIS_URI, else
 * they are skipped with the reason. */
#include <errno.h>
#include <pthread.h>
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

#include "misbehave.h"
#include "reign/reign.h"

#define OP_TIMEOUT_MS 300
#define TTL_MS 1500

/* TLS: the certificates of the server this test started, or, with none,
 * no verification (a misbehaving server alone never finishes a handshake) */
#ifdef MISBEHAVE_TLS
#define SCHEME "rediss"
#define SERVER_ENV "REDIS_TLS=1"
static char tls_query[400] = "&insecure=1";
#else
#define SCHEME "redis"
#define SERVER_ENV ""
static char tls_query[400] = "";
#endif

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void quiet(int level, const char *component, const char *message, void *payload)
{
    (void)level;
    (void)component;
    (void)message;
    (void)payload;
}

static int open_via(misbehave *m, const char *instance, reign_factory **out)
{
    char uri[512];
    snprintf(uri, sizeof uri, SCHEME "://127.0.0.1:%d/0?prefix=misbehave-%s%s", misbehave_port(m),
             instance, tls_query);
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = instance;
    o.ttl_ms = TTL_MS;
    o.op_timeout_ms = OP_TIMEOUT_MS;
    o.retry_interval_ms = 100;
    o.logger = quiet;
    return reign_factory_open(uri, &o, out);
}

/* Opening through a server in `mode` fails with one of the named statuses,
 * within the op timeout (plus scheduling slack). */
static void open_fails(misbehave_mode mode, int want1, int want2)
{
    misbehave *m = misbehave_start(0, mode);
    assert_non_null(m);
    reign_factory *f = NULL;
    int64_t t0 = reign_monotonic_ms();
    int rc = open_via(m, "a", &f);
    int64_t took = reign_monotonic_ms() - t0;
    if (rc == REIGN_OK) {
        reign_factory_close(f);
        fail_msg("open through a misbehaving server (mode %d) succeeded", (int)mode);
    }
    if (rc != want1 && rc != want2)
        fail_msg("mode %d: %s (%s), expected %s or %s", (int)mode, reign_status_str(rc),
                 reign_last_error(), reign_status_str(want1), reign_status_str(want2));
    assert_true(reign_last_error()[0] != '\0');
    assert_non_null(strstr(reign_last_error(), "127.0.0.1"));
    /* open may try twice (connect + scripts); allow both and slack */
    if (took > 3 * OP_TIMEOUT_MS + 500)
        fail_msg("mode %d: open took %lld ms with op_timeout_ms %d", (int)mode, (long long)took,
                 OP_TIMEOUT_MS);
    misbehave_stop(m);
}

static void test_open_against_garbage_fails_with_a_protocol_error(void **state)
{
    (void)state;
    open_fails(MISBEHAVE_GARBAGE, REIGN_EPROTO, REIGN_EPROTO);
}

static void test_open_against_a_stalled_server_times_out(void **state)
{
    (void)state;
    open_fails(MISBEHAVE_STALL, REIGN_ETIMEDOUT, REIGN_EBACKEND);
}

static void test_open_against_a_reply_cut_short_fails(void **state)
{
    (void)state;
    open_fails(MISBEHAVE_CUT, REIGN_EBACKEND, REIGN_EPROTO);
}

/* ---- against the real server, through the proxy --------------------------- */

static char server_dir[64];
static int server_port;
static char skip_reason[300];

static int setup(void **state)
{
    (void)state;
    server_port =
        misbehave_server_start("redis", SERVER_ENV, server_dir, skip_reason, sizeof skip_reason);
#ifdef MISBEHAVE_TLS
    if (server_port != 0)
        snprintf(tls_query, sizeof tls_query,
                 "&cacert=%s/tls/ca.crt&cert=%s/tls/client.crt&key=%s/tls/client.key", server_dir,
                 server_dir, server_dir);
#else
    if (server_port == 0 && misbehave_uri_port(getenv("REIGN_TEST_REDIS_URI")) != 0)
        server_port = misbehave_uri_port(getenv("REIGN_TEST_REDIS_URI"));
#endif
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    misbehave_server_stop("redis", server_dir);
    return 0;
}

static int upstream_port(void)
{
    return server_port;
}

#define SKIP_WITHOUT_REDIS()                                                                  \
    do {                                                                                      \
        if (upstream_port() == 0) {                                                           \
            print_message("skipped: no redis-server: %s\n", skip_reason);                   \
            skip();                                                                           \
        }                                                                                     \
    } while (0)

typedef struct lost_seen {
    _Atomic int lost;
    _Atomic int reason;
} lost_seen;

static void on_event(reign_election *e, const reign_event *ev, void *payload)
{
    lost_seen *s = payload;
    (void)e;
    if (ev->kind == REIGN_EVENT_LOST) {
        atomic_store(&s->reason, (int)ev->reason);
        atomic_store(&s->lost, 1);
    }
}

static void test_slow_server_times_out_open(void **state)
{
    (void)state;
    SKIP_WITHOUT_REDIS();
    misbehave *m = misbehave_start(upstream_port(), MISBEHAVE_SLOW);
    assert_non_null(m);
    misbehave_set_slow_ms(m, 100); /* "+PONG\r\n" alone takes 700 ms */
    reign_factory *f = NULL;
    int64_t t0 = reign_monotonic_ms();
    int rc = open_via(m, "slow", &f);
    int64_t took = reign_monotonic_ms() - t0;
    if (rc == REIGN_OK) {
        reign_factory_close(f);
        fail_msg("open through a 100 ms/byte server succeeded");
    }
    if (rc != REIGN_ETIMEDOUT && rc != REIGN_EBACKEND)
        fail_msg("%s (%s)", reign_status_str(rc), reign_last_error());
    assert_true(took <= 3 * OP_TIMEOUT_MS + 500);
    misbehave_stop(m);
}

/* Master through the proxy; the proxy turns to `mode`; belief must end no
 * later than TTL after the switch (the last renewal was sent before it),
 * the health verdict turns bad, and once the proxy forwards again the
 * election is master again. */
static void master_survives(misbehave_mode mode)
{
    misbehave *m = misbehave_start(upstream_port(), MISBEHAVE_FORWARD);
    assert_non_null(m);
    reign_factory *f = NULL;
    char id[64];
    snprintf(id, sizeof id, "misbehave-%d-%ld", (int)mode, (long)reign_monotonic_ms());
    if (open_via(m, "holder", &f) != REIGN_OK)
        fail_msg("open through the forwarding proxy: %s", reign_last_error());
    reign_election *e = NULL;
    lost_seen seen = {0, 0};
    assert_int_equal(reign_election_new(f, id, &e), REIGN_OK);
    assert_int_equal(reign_election_set_callback(e, on_event, &seen), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 5000), REIGN_OK);
    assert_true(reign_election_is_master(e));

    int64_t switched = reign_monotonic_ms();
    misbehave_set(m, mode);
    /* the last renewal was sent before the switch: its deadline is earlier */
    int64_t limit = switched + TTL_MS;
    /* The time is read before each look: a true answer means the deadline
     * was still ahead at that time, so being descheduled between the two
     * can only hide a late belief, never invent one. */
    int64_t looked = 0;
    bool believed = true;
    while (believed && looked <= limit) {
        looked = reign_monotonic_ms();
        believed = reign_election_is_master(e);
        if (believed && looked <= limit)
            nap_ms(5);
    }
    int64_t ended = looked;
    if (believed)
        fail_msg("mode %d: still believed master %lld ms after the server went bad (ttl %d)",
                 (int)mode, (long long)(ended - switched), TTL_MS);
    /* the callback follows on the engine thread */
    for (int i = 0; i < 200 && !atomic_load(&seen.lost); i++)
        nap_ms(5);
    assert_int_equal(atomic_load(&seen.lost), 1);
    int reason = atomic_load(&seen.reason);
    if (reason != REIGN_LOST_EXPIRED && reason != REIGN_LOST_BACKEND)
        fail_msg("lost with reason %d", reason);
    reign_health h;
    assert_int_equal(reign_factory_health(f, &h), REIGN_OK);
    assert_false(h.healthy);
    if (h.last_error_status != REIGN_ETIMEDOUT && h.last_error_status != REIGN_EPROTO &&
        h.last_error_status != REIGN_EBACKEND)
        fail_msg("health names %s", reign_status_str(h.last_error_status));

    misbehave_set(m, MISBEHAVE_FORWARD);
    int rc = reign_election_wait(e, 3 * TTL_MS + 2000);
    if (rc != REIGN_OK)
        fail_msg("mode %d: not master again after the server recovered: %s (%s)", (int)mode,
                 reign_status_str(rc), reign_last_error());
    assert_true(reign_election_is_master(e));
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
    misbehave_stop(m);
}

static void test_master_stops_believing_by_its_deadline_when_the_server_stalls(void **state)
{
    (void)state;
    SKIP_WITHOUT_REDIS();
    master_survives(MISBEHAVE_STALL);
}

static void test_master_stops_believing_by_its_deadline_when_the_server_sends_garbage(void **state)
{
    (void)state;
    SKIP_WITHOUT_REDIS();
    master_survives(MISBEHAVE_GARBAGE);
}

static void test_master_stops_believing_by_its_deadline_when_replies_are_cut(void **state)
{
    (void)state;
    SKIP_WITHOUT_REDIS();
    master_survives(MISBEHAVE_CUT);
}

static void test_master_stops_believing_by_its_deadline_when_an_answer_is_cut_midway(void **state)
{
    (void)state;
    SKIP_WITHOUT_REDIS();
    master_survives(MISBEHAVE_CUT_FORWARD);
}

static void test_master_stops_believing_by_its_deadline_when_the_server_trickles(void **state)
{
    (void)state;
    SKIP_WITHOUT_REDIS();
    master_survives(MISBEHAVE_SLOW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_against_garbage_fails_with_a_protocol_error),
        cmocka_unit_test(test_open_against_a_stalled_server_times_out),
        cmocka_unit_test(test_open_against_a_reply_cut_short_fails),
        cmocka_unit_test(test_slow_server_times_out_open),
        cmocka_unit_test(test_master_stops_believing_by_its_deadline_when_the_server_stalls),
        cmocka_unit_test(test_master_stops_believing_by_its_deadline_when_the_server_sends_garbage),
        cmocka_unit_test(test_master_stops_believing_by_its_deadline_when_replies_are_cut),
        cmocka_unit_test(test_master_stops_believing_by_its_deadline_when_an_answer_is_cut_midway),
        cmocka_unit_test(test_master_stops_believing_by_its_deadline_when_the_server_trickles),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
