/* The HTTP backends (etcd://, s3://) against a server that misbehaves:
 * garbage, a stall, an answer cut short, a trickle. Opening fails within
 * its timeout with a named error that shows no secret; an etcd or s3 master
 * whose server stalls or answers garbage stops believing by its deadline and
 * is master again once it answers (through the proxy in front of a real etcd
 * this test starts with scripts/servers/etcd.sh, else the one of
 * $REIGN_TEST_ETCD_URI; for s3 the RGW of $REIGN_TEST_S3_URI; else skipped
 * with the reason). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
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

#define OP_TIMEOUT_MS 400
#define TTL_MS 2000
#define S3_SECRET "Zq7AwsSeCr3tKeyXXXXXXXXXXXXXXXXXXXXXXXXX"

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

typedef struct capture {
    char leak[400];
} capture;

static void on_log(int level, const char *component, const char *message, void *payload)
{
    capture *c = payload;
    (void)level;
    if (c->leak[0] == '\0' && strstr(message, S3_SECRET) != NULL)
        snprintf(c->leak, sizeof c->leak, "%s: %s", component, message);
}

static int open_uri(const char *uri, int64_t ttl_ms, capture *c, reign_factory **out)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "http-misbehave";
    o.ttl_ms = ttl_ms;
    o.op_timeout_ms = OP_TIMEOUT_MS;
    o.retry_interval_ms = 100;
    o.logger = on_log;
    o.logger_payload = c;
    return reign_factory_open(uri, &o, out);
}

/* A factory opened on a server that cuts every answer: nothing read
 * through it may count, and nobody becomes master. */
static void nothing_believed(reign_factory *f)
{
    reign_master *m = NULL;
    int rc = reign_factory_current_master(f, "job", &m);
    if (rc == REIGN_OK || rc == REIGN_ENOMASTER)
        fail_msg("a cut answer was read as %s", rc == REIGN_OK ? "a master" : "no master");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "job", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 1000), REIGN_ETIMEDOUT);
    assert_false(reign_election_is_master(e));
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

/* Opening `fmt` (with %d for the port) through a server in each bad mode
 * fails with a named status, in bounded time, without the secret. */
static void open_fails_in_every_bad_mode(const char *fmt, bool open_may_pass_cut)
{
    static const misbehave_mode modes[] = {MISBEHAVE_GARBAGE, MISBEHAVE_STALL, MISBEHAVE_CUT};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        misbehave *m = misbehave_start(0, modes[i]);
        assert_non_null(m);
        char uri[256];
        snprintf(uri, sizeof uri, fmt, misbehave_port(m));
        capture c = {""};
        reign_factory *f = NULL;
        int64_t t0 = reign_monotonic_ms();
        int rc = open_uri(uri, 10000, &c, &f);
        int64_t took = reign_monotonic_ms() - t0;
        if (rc == REIGN_OK) {
            /* curl takes a 200 cut inside its headers for a whole answer, and
             * s3's open probe only asks "is anyone there": then nothing
             * after it may be believed */
            if (!(open_may_pass_cut && modes[i] == MISBEHAVE_CUT))
                fail_msg("%s through mode %d was accepted", uri, (int)modes[i]);
            nothing_believed(f);
            misbehave_stop(m);
            continue;
        }
        misbehave_stop(m);
        if (rc != REIGN_EPROTO && rc != REIGN_ETIMEDOUT && rc != REIGN_EBACKEND)
            fail_msg("%s, mode %d: %s (%s)", uri, (int)modes[i], reign_status_str(rc),
                     reign_last_error());
        assert_true(reign_last_error()[0] != '\0');
        if (strstr(reign_last_error(), S3_SECRET) != NULL)
            fail_msg("the secret key is in the message: %s", reign_last_error());
        if (c.leak[0] != '\0')
            fail_msg("the secret key is in a log line: %s", c.leak);
        /* a few requests at most (discovery, lease grant, a probe), each
         * bounded by the op timeout */
        if (took > 4 * OP_TIMEOUT_MS + 1000)
            fail_msg("%s, mode %d: open took %lld ms (op_timeout_ms %d)", uri, (int)modes[i],
                     (long long)took, OP_TIMEOUT_MS);
    }
}

#ifdef REIGN_WITH_ETCD
static char etcd_dir[64];
static int etcd_port;
static char skip_reason[300];

static int setup(void **state)
{
    (void)state;
    etcd_port = misbehave_server_start("etcd", "", etcd_dir, skip_reason, sizeof skip_reason);
    if (etcd_port == 0 && misbehave_uri_port(getenv("REIGN_TEST_ETCD_URI")) != 0)
        etcd_port = misbehave_uri_port(getenv("REIGN_TEST_ETCD_URI"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    misbehave_server_stop("etcd", etcd_dir);
    return 0;
}

static void test_etcd_open_against_a_misbehaving_gateway_fails_in_bounded_time(void **state)
{
    (void)state;
    open_fails_in_every_bad_mode("etcd://127.0.0.1:%d?prefix=/misbehave", false);
}

/* Through a forwarding proxy in front of a real server (upstream port):
 * become master, switch the proxy to `mode`, and the master must stop
 * believing by its deadline; switch back, and it must be master again.
 * uri_format has one %d, for the proxy's port. */
static void master_survives(int upstream, const char *uri_format, misbehave_mode mode)
{
    misbehave *m = misbehave_start(upstream, MISBEHAVE_FORWARD);
    assert_non_null(m);
    char uri[256];
    snprintf(uri, sizeof uri, uri_format, misbehave_port(m));
    capture c = {""};
    reign_factory *f = NULL;
    if (open_uri(uri, TTL_MS, &c, &f) != REIGN_OK)
        fail_msg("open through the forwarding proxy: %s", reign_last_error());
    reign_election *e = NULL;
    char id[64];
    snprintf(id, sizeof id, "job-%lld", (long long)reign_monotonic_ms());
    assert_int_equal(reign_election_new(f, id, &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 10000), REIGN_OK);

    int64_t switched = reign_monotonic_ms();
    misbehave_set(m, mode);
    int64_t limit = switched + TTL_MS; /* the last renewal was sent before the switch */
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
    misbehave_set(m, MISBEHAVE_FORWARD);
    /* the server keeps the old lease until it runs out (etcd) or observers
     * have seen it unchanged for a TTL (s3) */
    int rc = reign_election_wait(e, 4 * TTL_MS + 3000);
    if (rc != REIGN_OK)
        fail_msg("mode %d: not master again after the server recovered: %s (%s)", (int)mode,
                 reign_status_str(rc), reign_last_error());
    print_message("mode %d: belief ended %lld ms after the switch (ttl %d ms); master again\n",
                  (int)mode, (long long)(ended - switched), TTL_MS);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
    misbehave_stop(m);
}

static void etcd_master_survives(misbehave_mode mode)
{
    if (etcd_port == 0) {
        print_message("skipped: no etcd: %s\n", skip_reason);
        skip();
    }
    char format[64];
    snprintf(format, sizeof format, "etcd://127.0.0.1:%%d?prefix=/misbehave-%d", (int)mode);
    master_survives(etcd_port, format, mode);
}

static void test_etcd_master_stops_believing_by_its_deadline_when_the_gateway_stalls(void **state)
{
    (void)state;
    etcd_master_survives(MISBEHAVE_STALL);
}

static void test_etcd_master_stops_believing_by_its_deadline_when_the_gateway_sends_garbage(
    void **state)
{
    (void)state;
    etcd_master_survives(MISBEHAVE_GARBAGE);
}
#endif

#ifdef REIGN_WITH_S3
/* The real credentials (of $REIGN_TEST_S3_URI's server), kept before the
 * open test replaces them with a fake secret. */
static char s3_key[128], s3_secret[128];

static void test_s3_open_against_a_misbehaving_endpoint_fails_without_the_secret(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIAMISBEHAVE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET, 1);
    unsetenv("AWS_SESSION_TOKEN");
    open_fails_in_every_bad_mode(
        "s3://bucket/p/?endpoint=http://127.0.0.1:%d&region=us-east-1&path_style=1", true);
}

/* A master on RGW ($REIGN_TEST_S3_URI, through the proxy) whose endpoint
 * stalls or answers garbage. */
static void s3_master_survives(misbehave_mode mode)
{
    const char *uri = getenv("REIGN_TEST_S3_URI");
    const char *ep = uri != NULL ? strstr(uri, "endpoint=http://127.0.0.1:") : NULL;
    if (ep == NULL || s3_key[0] == '\0') {
        print_message("skipped: REIGN_TEST_S3_URI (with endpoint=http://127.0.0.1:PORT) and "
                      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set\n");
        skip();
    }
    setenv("AWS_ACCESS_KEY_ID", s3_key, 1);
    setenv("AWS_SECRET_ACCESS_KEY", s3_secret, 1);
    int port = atoi(ep + strlen("endpoint=http://127.0.0.1:"));
    master_survives(port, "s3://reign/misbehave?endpoint=http://127.0.0.1:%d&path_style=1"
                          "&region=us-east-1",
                    mode);
}

static void test_s3_master_stops_believing_by_its_deadline_when_the_endpoint_stalls(void **state)
{
    (void)state;
    s3_master_survives(MISBEHAVE_STALL);
}

static void test_s3_master_stops_believing_by_its_deadline_when_the_endpoint_sends_garbage(
    void **state)
{
    (void)state;
    s3_master_survives(MISBEHAVE_GARBAGE);
}
#endif

static void test_nothing_to_run_without_http_backends(void **state)
{
    (void)state;
#if !defined(REIGN_WITH_ETCD) && !defined(REIGN_WITH_S3)
    print_message("skipped: built without etcd:// and s3://\n");
    skip();
#endif
}

int main(void)
{
#ifdef REIGN_WITH_S3
    const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (key != NULL && secret != NULL) {
        snprintf(s3_key, sizeof s3_key, "%s", key);
        snprintf(s3_secret, sizeof s3_secret, "%s", secret);
    }
#endif
    const struct CMUnitTest tests[] = {
#ifdef REIGN_WITH_ETCD
        cmocka_unit_test(test_etcd_open_against_a_misbehaving_gateway_fails_in_bounded_time),
        cmocka_unit_test(test_etcd_master_stops_believing_by_its_deadline_when_the_gateway_stalls),
        cmocka_unit_test(
            test_etcd_master_stops_believing_by_its_deadline_when_the_gateway_sends_garbage),
#endif
#ifdef REIGN_WITH_S3
        cmocka_unit_test(test_s3_open_against_a_misbehaving_endpoint_fails_without_the_secret),
        cmocka_unit_test(test_s3_master_stops_believing_by_its_deadline_when_the_endpoint_stalls),
        cmocka_unit_test(
            test_s3_master_stops_believing_by_its_deadline_when_the_endpoint_sends_garbage),
#endif
        cmocka_unit_test(test_nothing_to_run_without_http_backends),
    };
#ifdef REIGN_WITH_ETCD
    return cmocka_run_group_tests(tests, setup, teardown);
#else
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
