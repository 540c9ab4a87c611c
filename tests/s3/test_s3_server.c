/* S3-specific tests of the s3:// backend against a real S3 server (Ceph RGW
 * from scripts/servers/s3.sh): 20 candidates (20 factories) racing for a
 * free resource, 20 racing to take over the expired lease of a killed
 * holder (where RGW answers some losers 500), named errors at open, and the
 * request rates of a stable holder and of a waiting candidate.
 *
 * Environment: REIGN_TEST_S3_URI (required, else exit 77 = skipped) and the
 * AWS_* variables the script prints; REIGN_TEST_S3_ROUNDS (default 20),
 * REIGN_TEST_S3_TTL_MS (default 1000). Uses only include/reign/reign.h.
 * `test_s3_server hold RESOURCE` is the holder child: it becomes master,
 * prints "TERM <n>" and waits to be killed. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3_test.h"

#include "reign/reign.h"

#define N_CANDIDATES 20

extern char **environ;

static const char *g_uri;
static const char *g_self; /* argv[0], to spawn holders */
static int64_t g_ttl_ms = 1000;
static int g_rounds = 20;

/* ---- helpers ---------------------------------------------------------------- */

/* Counts of the backend's per-request debug lines ("GET key -> 404 (ok) in
 * 2 ms", "PUT If-Match key -> 500 ..."), per factory. */
typedef struct counters {
    atomic_long requests, gets, creates, create_won, replaces, replace_won, replace_412,
        replace_500, other;
} counters;

static void count_log(int level, const char *component, const char *message, void *payload)
{
    counters *c = payload;
    if (level <= REIGN_LOG_WARN) {
        fprintf(stderr, "[%s] %s\n", component, message);
    }
    if (level != REIGN_LOG_DEBUG || strcmp(component, "s3") != 0) {
        return;
    }
    const char *arrow = strstr(message, " -> ");
    long http = arrow != NULL ? strtol(arrow + 4, NULL, 10) : 0;
    if (strncmp(message, "GET ", 4) == 0) {
        atomic_fetch_add(&c->requests, 1);
        atomic_fetch_add(&c->gets, 1);
    } else if (strncmp(message, "PUT If-None-Match ", 18) == 0) {
        atomic_fetch_add(&c->requests, 1);
        atomic_fetch_add(&c->creates, 1);
        if (http == 200) {
            atomic_fetch_add(&c->create_won, 1);
        }
    } else if (strncmp(message, "PUT If-Match ", 13) == 0) {
        atomic_fetch_add(&c->requests, 1);
        atomic_fetch_add(&c->replaces, 1);
        if (http == 200) {
            atomic_fetch_add(&c->replace_won, 1);
        } else if (http == 412 || http == 409) {
            atomic_fetch_add(&c->replace_412, 1);
        } else if (http >= 500) {
            atomic_fetch_add(&c->replace_500, 1);
        }
    } else {
        atomic_fetch_add(&c->other, 1);
    }
}

static reign_factory *open_factory(const char *uri, const char *who, int64_t retry_ms,
                                   counters *c)
{
    reign_options o = REIGN_OPTIONS_INIT;
    char id[96];
    snprintf(id, sizeof id, "s3test-%ld-%s", (long)getpid(), who);
    o.instance_id = id;
    o.metadata = who;
    o.ttl_ms = g_ttl_ms;
    o.retry_interval_ms = retry_ms;
    o.logger = count_log;
    o.logger_payload = c;
    reign_factory *f = NULL;
    CHECK_OK(reign_factory_open(uri, &o, &f), "reign_factory_open");
    return f;
}

/* ---- the pool of candidates --------------------------------------------------- */

typedef struct pool {
    reign_factory *f[N_CANDIDATES];
    counters c[N_CANDIDATES];
    reign_election *e[N_CANDIDATES];
} pool;

static pool *pool_open(void)
{
    pool *p = calloc(1, sizeof *p);
    assert_non_null(p);
    for (int i = 0; i < N_CANDIDATES; i++) {
        char who[16];
        snprintf(who, sizeof who, "c%02d", i);
        p->f[i] = open_factory(g_uri, who, 250, &p->c[i]);
    }
    return p;
}

static void pool_elect(pool *p, const char *resource)
{
    for (int i = 0; i < N_CANDIDATES; i++) {
        CHECK_OK(reign_election_new(p->f[i], resource, &p->e[i]), "reign_election_new");
    }
    /* all at once: the first ACQUIREs race */
    for (int i = 0; i < N_CANDIDATES; i++) {
        CHECK_OK(reign_election_start(p->e[i]), "reign_election_start");
    }
}

static void pool_close_elections(pool *p)
{
    for (int i = 0; i < N_CANDIDATES; i++) {
        if (p->e[i] != NULL) {
            CHECK_OK(reign_election_close(p->e[i]), "reign_election_close");
            p->e[i] = NULL;
        }
    }
}

static void pool_free(pool *p)
{
    pool_close_elections(p);
    for (int i = 0; i < N_CANDIDATES; i++) {
        CHECK_OK(reign_factory_close(p->f[i]), "reign_factory_close");
    }
    free(p);
}

typedef struct watch {
    int winner;          /* first election seen master, -1 none */
    int64_t first_ms;    /* when */
    int max_together;    /* most masters seen in one sample */
    int distinct;        /* elections ever seen master */
    uint64_t first_term; /* the winner's term when first seen master */
} watch;

/* Sample every election each millisecond until one is master, then for
 * settle_ms more: any sample with two masters is a safety failure. */
static watch pool_watch(pool *p, int64_t timeout_ms, int64_t settle_ms)
{
    watch w = {.winner = -1};
    bool ever[N_CANDIDATES] = {false};
    int64_t until = now_ms() + timeout_ms;
    for (;;) {
        int together = 0;
        int64_t t = now_ms();
        for (int i = 0; i < N_CANDIDATES; i++) {
            if (reign_election_is_master(p->e[i])) {
                together++;
                if (!ever[i]) {
                    ever[i] = true;
                    w.distinct++;
                }
                if (w.winner < 0) {
                    w.winner = i;
                    w.first_ms = t;
                    until = t + settle_ms;
                    /* now, not after the settle time: on a loaded machine a
                     * winner may lose its lease in it and win it again */
                    CHECK_OK(reign_election_term(p->e[i], &w.first_term), "term");
                }
            }
        }
        if (together > w.max_together) {
            w.max_together = together;
        }
        if (t >= until) {
            return w;
        }
        pause_ms(1);
    }
}

static long sum(pool *p, size_t field_offset)
{
    long n = 0;
    for (int i = 0; i < N_CANDIDATES; i++) {
        n += atomic_load((atomic_long *)((char *)&p->c[i] + field_offset));
    }
    return n;
}

#define SUM(p, field) sum((p), offsetof(counters, field))

/* ---- the holder child ----------------------------------------------------------- */

static int holder_main(const char *resource)
{
    reign_options o = REIGN_OPTIONS_INIT;
    char id[64];
    snprintf(id, sizeof id, "s3test-holder-%ld", (long)getpid());
    o.instance_id = id;
    o.ttl_ms = g_ttl_ms;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    uint64_t term = 0;
    if (reign_factory_open(g_uri, &o, &f) != REIGN_OK ||
        reign_election_new(f, resource, &e) != REIGN_OK ||
        reign_election_wait(e, 30000) != REIGN_OK || reign_election_term(e, &term) != REIGN_OK) {
        fprintf(stderr, "holder: %s\n", reign_last_error());
        return 3;
    }
    printf("TERM %" PRIu64 "\n", term);
    fflush(stdout);
    for (;;) {
        pause(); /* until SIGKILL */
    }
}

/* Spawn a holder of resource; returns its pid and fills *term. */
static pid_t holder_start(const char *resource, uint64_t *term)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *argv[] = {(char *)g_self, (char *)"hold", (char *)resource, NULL};
    pid_t pid = -1;
    int rc = posix_spawn(&pid, g_self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    assert_int_equal(rc, 0);
    FILE *in = fdopen(fds[0], "r");
    assert_non_null(in);
    char line[64] = "";
    if (fgets(line, sizeof line, in) == NULL || sscanf(line, "TERM %" SCNu64, term) != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fclose(in);
        print_error("holder of %s did not become master (said \"%s\")\n", resource, line);
        fail();
    }
    fclose(in);
    return pid;
}

/* ---- the races -------------------------------------------------------------------- */

static void test_twenty_candidates_racing_for_a_free_resource_elect_exactly_one(void **state)
{
    (void)state;
    pool *p = pool_open();
    long won_before = SUM(p, create_won);
    for (int round = 0; round < g_rounds; round++) {
        char res[96];
        snprintf(res, sizeof res, "free-race/%ld/%d", (long)getpid(), round);
        pool_elect(p, res);
        watch w = pool_watch(p, 10000, 500);
        if (w.winner < 0 || w.max_together != 1 || w.distinct != 1) {
            print_error("round %d: winner %d, at most %d masters at once, %d distinct\n", round,
                        w.winner, w.max_together, w.distinct);
            fail();
        }
        reign_master *m = NULL;
        CHECK_OK(reign_factory_current_master(p->f[(w.winner + 1) % N_CANDIDATES], res, &m),
                 "current_master");
        assert_string_equal(m->instance_id, reign_factory_instance_id(p->f[w.winner]));
        assert_int_equal(w.first_term, 1);
        assert_true(m->term >= w.first_term);
        reign_master_free(m);
        pool_close_elections(p);
    }
    long creates = SUM(p, creates), won = SUM(p, create_won) - won_before;
    print_message("s3 free race: %d rounds x %d candidates: %ld If-None-Match PUTs, %ld won "
                  "(one per round)\n",
                  g_rounds, N_CANDIDATES, creates, won);
    assert_int_equal(won, g_rounds);
    pool_free(p);
}

static void test_twenty_candidates_racing_to_take_over_an_expired_lease_elect_exactly_one(
    void **state)
{
    (void)state;
    pool *p = pool_open();
    int64_t takeover_min = INT64_MAX, takeover_max = 0, takeover_sum = 0;
    for (int round = 0; round < g_rounds; round++) {
        char res[96];
        snprintf(res, sizeof res, "takeover-race/%ld/%d", (long)getpid(), round);
        uint64_t held_term = 0;
        pid_t holder = holder_start(res, &held_term);
        pool_elect(p, res);
        /* every candidate has had an answer (HELD) and is polling again */
        int64_t until = now_ms() + 10000;
        for (int i = 0; i < N_CANDIDATES && now_ms() < until;) {
            reign_stats s;
            CHECK_OK(reign_factory_stats(p->f[i], &s), "stats");
            if (s.ops_acquire >= 2 * (uint64_t)(round + 1)) {
                i++;
            } else {
                pause_ms(5);
            }
        }
        for (int i = 0; i < N_CANDIDATES; i++) {
            assert_false(reign_election_is_master(p->e[i]));
        }
        kill(holder, SIGKILL);
        int64_t killed = now_ms();
        waitpid(holder, NULL, 0);
        watch w = pool_watch(p, 10 * g_ttl_ms, 500);
        if (w.winner < 0 || w.max_together != 1 || w.distinct != 1) {
            print_error("round %d: winner %d, at most %d masters at once, %d distinct\n", round,
                        w.winner, w.max_together, w.distinct);
            fail();
        }
        assert_int_equal(w.first_term, held_term + 1);
        int64_t took = w.first_ms - killed;
        takeover_min = took < takeover_min ? took : takeover_min;
        takeover_max = took > takeover_max ? took : takeover_max;
        takeover_sum += took;
        /* never before the killed holder's belief could have ended */
        assert_true(took >= 0);
        pool_close_elections(p);
    }
    print_message("s3 takeover race: %d rounds x %d candidates (ttl %" PRId64 " ms): takeover "
                  "after the kill min %" PRId64 " / mean %" PRId64 " / max %" PRId64 " ms; "
                  "PUT If-Match answers: %ld in all, 200 %ld (takeovers, renewals, releases), "
                  "412 %ld, 5xx %ld (losers RGW answered 500: outcome unknown, read back)\n",
                  g_rounds, N_CANDIDATES, g_ttl_ms, takeover_min, takeover_sum / g_rounds,
                  takeover_max, SUM(p, replaces), SUM(p, replace_won), SUM(p, replace_412),
                  SUM(p, replace_500));
    pool_free(p);
}

/* ---- errors at open ------------------------------------------------------------------ */

/* g_uri with the bucket replaced. */
static char *uri_with_bucket(const char *bucket)
{
    const char *rest = g_uri + strlen("s3://");
    rest += strcspn(rest, "/?");
    size_t n = strlen(bucket) + strlen(rest) + 8;
    char *u = malloc(n);
    assert_non_null(u);
    snprintf(u, n, "s3://%s%s", bucket, rest);
    return u;
}

static void expect_open_fails(const char *uri, int status, const char *needle)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.op_timeout_ms = 3000;
    reign_factory *f = NULL;
    int64_t t0 = now_ms();
    int rc = reign_factory_open(uri, &o, &f);
    int64_t took = now_ms() - t0;
    const char *err = reign_last_error();
    if (rc != status || strstr(err, needle) == NULL) {
        print_error("open %s: got %s \"%s\"; wanted %s with \"%s\"\n", uri, reign_status_str(rc),
                    err, reign_status_str(status), needle);
        reign_factory_close(f);
        fail();
    }
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    assert_true(secret == NULL || strstr(err, secret) == NULL);
    print_message("s3 open refused in %" PRId64 " ms: %s\n", took, err);
    assert_true(took < 10000);
}

static void test_a_wrong_secret_is_refused_at_open_with_eauth(void **state)
{
    (void)state;
    char *saved = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
    assert_non_null(saved);
    setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
    expect_open_fails(g_uri, REIGN_EAUTH, "SignatureDoesNotMatch");
    setenv("AWS_SECRET_ACCESS_KEY", saved, 1);
    free(saved);
}

static void test_an_unknown_access_key_is_refused_at_open_with_eauth(void **state)
{
    (void)state;
    char *saved = strdup(getenv("AWS_ACCESS_KEY_ID"));
    assert_non_null(saved);
    setenv("AWS_ACCESS_KEY_ID", "NOSUCHKEY", 1);
    expect_open_fails(g_uri, REIGN_EAUTH, "InvalidAccessKeyId");
    setenv("AWS_ACCESS_KEY_ID", saved, 1);
    free(saved);
}

static void test_a_missing_bucket_is_refused_at_open_naming_it(void **state)
{
    (void)state;
    char *u = uri_with_bucket("no-such-bucket-for-reign");
    expect_open_fails(u, REIGN_EBACKEND, "NoSuchBucket");
    free(u);
}

static void test_an_unreachable_endpoint_fails_open_within_the_timeout(void **state)
{
    (void)state;
    expect_open_fails("s3://reign/x?endpoint=http://127.0.0.1:1&path_style=1", REIGN_EBACKEND,
                      "127.0.0.1:1");
}

/* ---- cost -------------------------------------------------------------------------- */

/* g_uri with more parameters appended. */
static char *uri_plus(const char *more)
{
    size_t n = strlen(g_uri) + strlen(more) + 2;
    char *u = malloc(n);
    assert_non_null(u);
    snprintf(u, n, "%s%s%s", g_uri, strchr(g_uri, '?') != NULL ? "&" : "?", more);
    return u;
}

/* Requests of a stable holder and of one waiting candidate (candidate_uri)
 * in a fixed window; prints them per TTL and per minute. */
static void measure_rates(const char *candidate_uri, const char *label, int64_t retry_ms,
                          double max_candidate_per_min_at_ttl)
{
    counters ch = {0}, cc = {0};
    reign_factory *fh = open_factory(g_uri, "rate-holder", retry_ms, &ch);
    reign_factory *fc = open_factory(candidate_uri, "rate-candidate", retry_ms, &cc);
    char res[96];
    snprintf(res, sizeof res, "rates/%ld/%s", (long)getpid(), label);
    reign_election *eh = NULL, *ec = NULL;
    CHECK_OK(reign_election_new(fh, res, &eh), "new");
    CHECK_OK(reign_election_wait(eh, 10000), "holder wait");
    CHECK_OK(reign_election_new(fc, res, &ec), "new");
    CHECK_OK(reign_election_start(ec), "candidate start");
    int64_t window_ms = 6 * g_ttl_ms > 6000 ? 6 * g_ttl_ms : 6000;
    long h0 = atomic_load(&ch.requests), c0 = atomic_load(&cc.requests);
    pause_ms(window_ms); /* the measurement itself: requests sent in a fixed window */
    long h = atomic_load(&ch.requests) - h0, c = atomic_load(&cc.requests) - c0;
    assert_true(reign_election_is_master(eh));
    assert_false(reign_election_is_master(ec));
    double per_ttl = (double)h * (double)g_ttl_ms / (double)window_ms;
    double c_per_min = (double)c * 60000.0 / (double)window_ms;
    print_message("s3 cost, candidate %s (ttl %" PRId64 " ms, retry %" PRId64 " ms, %" PRId64
                  " ms window): stable holder %ld requests = %.2f per ttl = %.0f/min per resource "
                  "(%.0f/min at ttl 10 s); waiting candidate %ld requests = %.0f/min per "
                  "resource\n",
                  label, g_ttl_ms, retry_ms, window_ms, h, per_ttl,
                  (double)h * 60000.0 / (double)window_ms, per_ttl * 6.0, c, c_per_min);
    /* renewals every ttl/3 (3 per ttl) */
    assert_true(per_ttl <= 4.0);
    if (c_per_min > max_candidate_per_min_at_ttl + 60000.0 / (double)window_ms) {
        print_error("candidate %s: %.0f requests/min, expected at most %.0f\n", label, c_per_min,
                    max_candidate_per_min_at_ttl);
        fail();
    }
    CHECK_OK(reign_election_close(ec), "close");
    CHECK_OK(reign_election_close(eh), "close");
    CHECK_OK(reign_factory_close(fc), "close");
    CHECK_OK(reign_factory_close(fh), "close");
}

static void test_a_stable_holder_renews_three_times_per_ttl_and_a_candidate_polls_per_retry(
    void **state)
{
    (void)state;
    /* default poll: one GET per campaign retry */
    measure_rates(g_uri, "poll=default", 1000, 60.0);
}

static void test_with_poll_expiry_a_waiting_candidate_looks_about_once_per_ttl(void **state)
{
    (void)state;
    char *u = uri_plus("poll=expiry");
    /* one GET when the lease could have expired: about 60000 / (ttl + 2 %) per minute */
    measure_rates(u, "poll=expiry", 250, 60000.0 / (double)g_ttl_ms);
    free(u);
}

/* A candidate answering HELD from its last look finishes an ACQUIRE without
 * a request; a READ of the same resource in the same batch must still be
 * sent exactly once (each op has one request in flight at most). */
static void test_reads_beside_campaign_retries_on_one_resource_all_succeed(void **state)
{
    (void)state;
    counters ch = {0}, cc = {0};
    char *u = uri_plus("poll=expiry");
    reign_factory *fh = open_factory(g_uri, "mix-holder", 250, &ch);
    reign_factory *fc = open_factory(u, "mix-candidate", 10, &cc);
    char res[96];
    snprintf(res, sizeof res, "mixed/%ld", (long)getpid());
    reign_election *eh = NULL, *ec = NULL;
    CHECK_OK(reign_election_new(fh, res, &eh), "new");
    CHECK_OK(reign_election_wait(eh, 10000), "holder wait");
    CHECK_OK(reign_election_new(fc, res, &ec), "new");
    CHECK_OK(reign_election_start(ec), "candidate start");
    for (int i = 0; i < 300; i++) {
        reign_master *m = NULL;
        CHECK_OK(reign_factory_current_master(fc, res, &m), "current_master beside a campaign");
        assert_string_equal(m->instance_id, reign_factory_instance_id(fh));
        reign_master_free(m);
    }
    assert_false(reign_election_is_master(ec));
    CHECK_OK(reign_election_close(ec), "close");
    CHECK_OK(reign_election_close(eh), "close");
    CHECK_OK(reign_factory_close(fc), "close");
    CHECK_OK(reign_factory_close(fh), "close");
    free(u);
}

/* scripts/servers/s3.sh sets `rgw dns name = localhost`, and curl resolves
 * reign.localhost to 127.0.0.1: the same objects by bucket host name. */
static void test_virtual_host_addressing_reaches_the_same_records(void **state)
{
    (void)state;
    const char *host = strstr(g_uri, "endpoint=http://127.0.0.1:");
    if (host == NULL) {
        print_message("[  SKIP    ] the endpoint is not http://127.0.0.1:PORT\n");
        skip();
    }
    int port = atoi(host + strlen("endpoint=http://127.0.0.1:"));
    char vuri[256];
    snprintf(vuri, sizeof vuri, "s3://reign/test?endpoint=http://localhost:%d&path_style=0", port);
    counters cv = {0}, cp = {0};
    reign_factory *fv = open_factory(vuri, "vhost", 250, &cv);
    reign_factory *fp = open_factory(g_uri, "path", 250, &cp);
    char res[96];
    snprintf(res, sizeof res, "vhost/%ld", (long)getpid());
    reign_election *e = NULL;
    CHECK_OK(reign_election_new(fv, res, &e), "new");
    CHECK_OK(reign_election_wait(e, 10000), "wait (virtual-host)");
    reign_master *m = NULL;
    CHECK_OK(reign_factory_current_master(fp, res, &m), "current_master (path-style)");
    assert_string_equal(m->instance_id, reign_factory_instance_id(fv));
    reign_master_free(m);
    CHECK_OK(reign_election_close(e), "close");
    CHECK_OK(reign_factory_close(fv), "close");
    CHECK_OK(reign_factory_close(fp), "close");
}

int main(int argc, char **argv)
{
    g_self = argv[0];
    g_uri = getenv("REIGN_TEST_S3_URI");
    g_ttl_ms = env_num("REIGN_TEST_S3_TTL_MS", 1000);
    g_rounds = (int)env_num("REIGN_TEST_S3_ROUNDS", 20);
    int skip = s3_test_skip(argc, argv, "server", "s3.server");
    if (skip != 0) {
        return skip;
    }
    if (argc == 3 && strcmp(argv[1], "hold") == 0) {
        return holder_main(argv[2]);
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twenty_candidates_racing_for_a_free_resource_elect_exactly_one),
        cmocka_unit_test(
            test_twenty_candidates_racing_to_take_over_an_expired_lease_elect_exactly_one),
        cmocka_unit_test(test_a_wrong_secret_is_refused_at_open_with_eauth),
        cmocka_unit_test(test_an_unknown_access_key_is_refused_at_open_with_eauth),
        cmocka_unit_test(test_a_missing_bucket_is_refused_at_open_naming_it),
        cmocka_unit_test(test_an_unreachable_endpoint_fails_open_within_the_timeout),
        cmocka_unit_test(
            test_a_stable_holder_renews_three_times_per_ttl_and_a_candidate_polls_per_retry),
        cmocka_unit_test(test_with_poll_expiry_a_waiting_candidate_looks_about_once_per_ttl),
        cmocka_unit_test(test_reads_beside_campaign_retries_on_one_resource_all_succeed),
        cmocka_unit_test(test_virtual_host_addressing_reaches_the_same_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
