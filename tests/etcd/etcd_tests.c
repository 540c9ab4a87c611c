/* etcd-specific server tests of the etcd:// backend, through the public API
 * only (DESIGN.md §1). run_etcd_test.sh starts the servers and picks a case:
 *   renew    requests per renew tick for 1,000 held leases (and for 100),
 *            counted from the backend's debug log of each batch
 *   watch    a resignation reaches a candidate through the watch, not the
 *            retry timer
 *   cluster  three members; the member a candidate talks to is SIGKILLed
 *            while the holder resigns, then the holder's member dies: one
 *            master at a time, and the clients move to another endpoint
 *   auth     user/password: elections work, a wrong or missing password is
 *            REIGN_EAUTH, and a server restart (which forgets every token)
 *            is survived by authenticating again
 *   tls      etcds:// with client certificates; a wrong CA is refused
 * Environment: see run_etcd_test.sh. Exit status: failed cases (cmocka).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "reign/reign.h"

/* ---- clock, waiting ----------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double ms_since(int64_t t0)
{
    return (double)(now_ns() - t0) / 1e6;
}

static void pause_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

typedef bool (*pred_fn)(void *ctx);

/* Poll pred every poll_ms until true or timeout: the time it took, or -1. */
static double wait_until(pred_fn pred, void *ctx, int64_t timeout_ms, int64_t poll_ms)
{
    int64_t t0 = now_ns();
    for (;;) {
        if (pred(ctx))
            return ms_since(t0);
        if (ms_since(t0) > (double)timeout_ms)
            return -1;
        pause_ms(poll_ms);
    }
}

static const char *env_or_skip(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        print_message("[  SKIP    ] %s is not set\n", name);
        skip();
    }
    return v;
}

#define CHECK_OK(call, what)                                                              \
    do {                                                                                  \
        int rc_ = (call);                                                                 \
        if (rc_ != REIGN_OK)                                                              \
            fail_msg("%s: %s (%s)", what, reign_status_str(rc_), reign_last_error());     \
    } while (0)

/* ---- the log: batches, endpoint moves ------------------------------------------- */

typedef struct log_stats {
    pthread_mutex_t mu;
    bool recording;
    unsigned renew_batches;       /* batches of RENEWs only */
    unsigned long renew_ops;
    unsigned long requests;       /* HTTP requests of those batches */
    unsigned max_requests;
    unsigned moves;               /* "requests go to …" */
    unsigned reauths;             /* "authenticating again": a token was refused */
    char last_move[256];
} log_stats;

static log_stats logs = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void test_logger(int level, const char *component, const char *message, void *payload)
{
    (void)payload;
    if (strcmp(component, "etcd") == 0) {
        size_t n_ops, acq, ren, rel, rd;
        unsigned long requests;
        pthread_mutex_lock(&logs.mu);
        if (sscanf(message,
                   "batch of %zu ops (ACQUIRE %zu, RENEW %zu, RELEASE %zu, READ %zu): %lu HTTP",
                   &n_ops, &acq, &ren, &rel, &rd, &requests) == 6 &&
            logs.recording && ren > 0 && acq == 0 && rel == 0 && rd == 0) {
            logs.renew_batches++;
            logs.renew_ops += ren;
            logs.requests += requests;
            if (requests > logs.max_requests)
                logs.max_requests = (unsigned)requests;
        }
        if (strstr(message, "authenticating again") != NULL)
            logs.reauths++;
        if (strstr(message, "requests go to") != NULL) {
            logs.moves++;
            snprintf(logs.last_move, sizeof logs.last_move, "%s", message);
        }
        pthread_mutex_unlock(&logs.mu);
    }
    if (strstr(message, "batch of") == NULL)
        reign_log_stderr(level, component, message, NULL); /* shows what $REIGN_LOG asks */
}

static void logs_reset(bool recording)
{
    pthread_mutex_lock(&logs.mu);
    logs.recording = recording;
    logs.renew_batches = 0;
    logs.renew_ops = 0;
    logs.requests = 0;
    logs.max_requests = 0;
    logs.moves = 0;
    logs.last_move[0] = '\0';
    pthread_mutex_unlock(&logs.mu);
}

static reign_factory *open_factory(const char *uri, const char *who, int64_t ttl_ms,
                                   int64_t retry_ms)
{
    char id[128];
    snprintf(id, sizeof id, "etcdtest-%d-%s", (int)getpid(), who);
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = id;
    o.metadata = who;
    o.ttl_ms = ttl_ms;
    o.retry_interval_ms = retry_ms;
    o.logger = test_logger;
    reign_factory *f = NULL;
    int rc = reign_factory_open(uri, &o, &f);
    if (rc != REIGN_OK)
        fail_msg("open %s as %s: %s (%s)", uri, who, reign_status_str(rc), reign_last_error());
    return f;
}

/* A resource ID unique to this run. */
static const char *resource(const char *name)
{
    static char buf[8][128];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 128, "etcdtest/%d/%s", (int)getpid(), name);
    return b;
}

/* ---- mastership sampler: intervals per election, sampled every 1 ms ------------ */

#define SAMPLED_MAX 4
#define INTERVALS_MAX 64
typedef struct sampler {
    pthread_t thread;
    _Atomic bool stop;
    reign_election *e[SAMPLED_MAX];
    size_t n;
    bool in[SAMPLED_MAX];
    int n_iv[SAMPLED_MAX];
    int64_t iv[SAMPLED_MAX][INTERVALS_MAX][2];
} sampler;

static void *sampler_main(void *arg)
{
    sampler *s = arg;
    while (!s->stop) {
        for (size_t i = 0; i < s->n; i++) {
            bool m = reign_election_is_master(s->e[i]);
            int64_t t = now_ns();
            if (m && !s->in[i] && s->n_iv[i] < INTERVALS_MAX) {
                s->iv[i][s->n_iv[i]][0] = t;
                s->iv[i][s->n_iv[i]][1] = t;
                s->n_iv[i]++;
            } else if (m && s->n_iv[i] > 0) {
                s->iv[i][s->n_iv[i] - 1][1] = t;
            }
            s->in[i] = m;
        }
        pause_ms(1);
    }
    return NULL;
}

static void sampler_start(sampler *s, reign_election *a, reign_election *b)
{
    memset(s, 0, sizeof *s);
    s->e[0] = a;
    s->e[1] = b;
    s->n = 2;
    assert_int_equal(pthread_create(&s->thread, NULL, sampler_main, s), 0);
}

/* Stop; fail if the two elections were ever master at once. */
static void sampler_stop_and_check(sampler *s)
{
    s->stop = true;
    pthread_join(s->thread, NULL);
    for (int i = 0; i < s->n_iv[0]; i++)
        for (int j = 0; j < s->n_iv[1]; j++)
            if (s->iv[0][i][0] <= s->iv[1][j][1] && s->iv[1][j][0] <= s->iv[0][i][1])
                fail_msg("two masters at once: [%" PRId64 ", %" PRId64 "] and [%" PRId64
                         ", %" PRId64 "] ns",
                         s->iv[0][i][0], s->iv[0][i][1], s->iv[1][j][0], s->iv[1][j][1]);
}

static bool is_master_pred(void *ctx)
{
    return reign_election_is_master(ctx);
}

static uint64_t term_of(reign_election *e)
{
    uint64_t t = 0;
    CHECK_OK(reign_election_term(e, &t), "term");
    return t;
}

/* ---- renew: requests per renew tick ---------------------------------------------- */

typedef struct many {
    reign_election **e;
    size_t n;
} many;

static bool all_master(void *ctx)
{
    many *m = ctx;
    for (size_t i = 0; i < m->n; i++)
        if (!reign_election_is_master(m->e[i]))
            return false;
    return true;
}

static void renew_ticks(const char *uri, size_t n)
{
    const int64_t ttl = 3000; /* renew period ttl/3 = 1 s */
    reign_factory *f = open_factory(uri, "renew", ttl, 1000);
    many m = {calloc(n, sizeof *m.e), n};
    assert_non_null(m.e);
    char name[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "renew%zu/%05zu", n, i);
        CHECK_OK(reign_election_new(f, resource(name), &m.e[i]), "election_new");
        CHECK_OK(reign_election_start(m.e[i]), "start");
    }
    double took = wait_until(all_master, &m, 30000, 5);
    if (took < 0)
        fail_msg("%zu elections did not all become master within 30 s", n);
    print_message("etcd: %zu leases acquired in %.1f ms\n", n, took);

    logs_reset(true);
    reign_stats s0, s1;
    CHECK_OK(reign_factory_stats(f, &s0), "stats");
    int64_t t0 = now_ns();
    while (ms_since(t0) < 4.0 * (double)ttl / 3.0 + 200) {
        if (!all_master(&m))
            fail_msg("a lease was lost during the renew window");
        pause_ms(20);
    }
    CHECK_OK(reign_factory_stats(f, &s1), "stats");
    pthread_mutex_lock(&logs.mu);
    unsigned batches = logs.renew_batches, max = logs.max_requests;
    unsigned long requests = logs.requests, ops = logs.renew_ops;
    logs.recording = false;
    pthread_mutex_unlock(&logs.mu);
    print_message("etcd: %zu leases: %u renew ticks, %lu RENEWs, %lu HTTP requests: %.2f per "
                  "tick (max %u); engine renew batches %" PRIu64 "\n",
                  n, batches, ops, requests, batches ? (double)requests / batches : 0.0, max,
                  s1.renew_batches - s0.renew_batches);
    if (batches < 3)
        fail_msg("only %u renew ticks seen in 4 renew periods", batches);
    if (max > 2)
        fail_msg("a renew tick of %zu leases took %u HTTP requests (want 1-2)", n, max);
    for (size_t i = 0; i < n; i++)
        CHECK_OK(reign_election_close(m.e[i]), "close");
    free(m.e);
    CHECK_OK(reign_factory_close(f), "factory close");
}

static void test_a_renew_tick_of_1000_leases_costs_at_most_two_requests(void **state)
{
    (void)state;
    renew_ticks(env_or_skip("REIGN_TEST_ETCD_URI"), 1000);
}

static void test_a_renew_tick_of_100_leases_costs_at_most_two_requests(void **state)
{
    (void)state;
    renew_ticks(env_or_skip("REIGN_TEST_ETCD_URI"), 100);
}

/* ---- watch: notifications, not timers ------------------------------------------------ */

static void test_a_resignation_reaches_a_candidate_through_the_watch(void **state)
{
    (void)state;
    const char *uri = env_or_skip("REIGN_TEST_ETCD_URI");
    /* A 20 s retry interval: only the watch can make the handoff fast. */
    reign_factory *fa = open_factory(uri, "A", 5000, 20000);
    reign_factory *fb = open_factory(uri, "B", 5000, 20000);
    const char *res = resource("watch");
    reign_election *a, *b;
    CHECK_OK(reign_election_new(fa, res, &a), "new A");
    CHECK_OK(reign_election_new(fb, res, &b), "new B");
    CHECK_OK(reign_election_wait(a, 10000), "A: wait");
    CHECK_OK(reign_election_start(b), "B: start");
    pause_ms(300); /* B's first ACQUIRE has been answered HELD */
    assert_false(reign_election_is_master(b));
    sampler s;
    sampler_start(&s, a, b);
    uint64_t ta = term_of(a);
    int64_t t0 = now_ns();
    CHECK_OK(reign_election_resign(a), "A: resign");
    double took = wait_until(is_master_pred, b, 5000, 1);
    sampler_stop_and_check(&s);
    if (took < 0)
        fail_msg("B did not become master within 5 s of A's resignation");
    double handoff = ms_since(t0);
    print_message("etcd: handoff through the watch: %.1f ms (retry interval 20 s)\n", handoff);
    assert_true(term_of(b) > ta);
    assert_true(handoff < 1000);
    CHECK_OK(reign_election_close(a), "close A");
    CHECK_OK(reign_election_close(b), "close B");
    CHECK_OK(reign_factory_close(fa), "close fa");
    CHECK_OK(reign_factory_close(fb), "close fb");
}

/* ---- cluster: a member dies under the clients ------------------------------------------ */

/* "etcd://h1,h2,h3" with its host list rotated to start at member `first`. */
static void rotated_uri(const char *uri, int first, char *out, size_t size)
{
    const char *hosts = strstr(uri, "://") + 3;
    const char *hosts_end = hosts + strcspn(hosts, "/?");
    char list[3][64];
    int n = 0;
    for (const char *p = hosts; p < hosts_end && n < 3;) {
        const char *c = memchr(p, ',', (size_t)(hosts_end - p));
        size_t len = c != NULL ? (size_t)(c - p) : (size_t)(hosts_end - p);
        snprintf(list[n++], sizeof list[0], "%.*s", (int)len, p);
        p += len + 1;
    }
    assert_int_equal(n, 3);
    snprintf(out, size, "%.*s%s,%s,%s%s", (int)(hosts - uri), uri, list[first % 3],
             list[(first + 1) % 3], list[(first + 2) % 3], hosts_end);
}

static pid_t member_pid(int member)
{
    const char *pids = env_or_skip("REIGN_TEST_ETCD_CLUSTER_PIDS");
    long p[3] = {0};
    if (sscanf(pids, "%ld,%ld,%ld", &p[0], &p[1], &p[2]) != 3)
        fail_msg("REIGN_TEST_ETCD_CLUSTER_PIDS=%s is not three pids", pids);
    return (pid_t)p[member];
}

/* Run `etcd.sh member DIR N start` to bring a killed member back. */
static void member_start(int member)
{
    const char *script = env_or_skip("REIGN_TEST_ETCD_SCRIPT");
    const char *dir = env_or_skip("REIGN_TEST_ETCD_CLUSTER_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s' member '%s' %d start >&2", script, dir, member + 1);
    if (system(cmd) != 0)
        fail_msg("%s failed", cmd);
}

static unsigned moves(void)
{
    pthread_mutex_lock(&logs.mu);
    unsigned m = logs.moves;
    pthread_mutex_unlock(&logs.mu);
    return m;
}

static void test_killing_the_candidates_member_during_a_takeover_keeps_one_master(void **state)
{
    (void)state;
    const char *uri = env_or_skip("REIGN_TEST_ETCD_CLUSTER_URI");
    char uri_h[512], uri_c[512];
    rotated_uri(uri, 1, uri_h, sizeof uri_h); /* the holder talks to member 2 */
    rotated_uri(uri, 0, uri_c, sizeof uri_c); /* the candidate to member 1 */
    const int64_t ttl = 3000;
    reign_factory *fh = open_factory(uri_h, "holder", ttl, 500);
    reign_factory *fc = open_factory(uri_c, "candidate", ttl, 500);
    const char *res = resource("cluster");
    reign_election *h, *c;
    CHECK_OK(reign_election_new(fh, res, &h), "new holder");
    CHECK_OK(reign_election_new(fc, res, &c), "new candidate");
    CHECK_OK(reign_election_wait(h, 10000), "holder: wait");
    CHECK_OK(reign_election_start(c), "candidate: start");
    pause_ms(300);
    uint64_t th = term_of(h);
    sampler s;
    sampler_start(&s, h, c);
    logs_reset(false);

    /* Takeover while the candidate's member dies. */
    pid_t victim = member_pid(0);
    int64_t t0 = now_ns();
    assert_int_equal(kill(victim, SIGKILL), 0);
    /* The RELEASE may meet the dying member and fail (resign says so):
     * then the candidate takes over when the lease runs out. */
    int resigned = reign_election_resign(h);
    if (resigned != REIGN_OK && resigned != REIGN_EBACKEND)
        fail_msg("holder: resign: %s", reign_last_error());
    double took = wait_until(is_master_pred, c, 20000, 1);
    if (took < 0) {
        sampler_stop_and_check(&s);
        fail_msg("the candidate did not become master within 20 s after its member died");
    }
    double takeover = ms_since(t0);
    uint64_t tc = term_of(c);
    print_message("etcd: member 1 (pid %d) SIGKILLed, holder resigned: candidate master after "
                  "%.1f ms, term %" PRIu64 " → %" PRIu64 ", %u endpoint move(s): %s\n",
                  (int)victim, takeover, th, tc, moves(), logs.last_move);
    assert_true(tc > th);
    if (moves() == 0)
        fail_msg("the candidate never moved off its dead member");

    /* Bring member 1 back, then kill the member the new master talks to. */
    member_start(0);
    CHECK_OK(reign_election_start(h), "old holder: campaign again");
    pause_ms(300);
    int64_t t1 = now_ns();
    pid_t victim2 = member_pid(1); /* after the move the candidate is on member 2 */
    assert_int_equal(kill(victim2, SIGKILL), 0);
    /* The master's renewals go elsewhere; its belief must carry on or, if it
     * lapses, the other may take over — never both at once. */
    while (ms_since(t1) < 2.0 * (double)ttl)
        pause_ms(10);
    bool c_master = reign_election_is_master(c), h_master = reign_election_is_master(h);
    sampler_stop_and_check(&s);
    print_message("etcd: member 2 (pid %d) SIGKILLed under the master: %.0f ms later master "
                  "is %s\n",
                  (int)victim2, ms_since(t1), c_master ? "still the candidate" :
                  h_master ? "the old holder" : "nobody");
    assert_true(c_master || h_master);
    if (!c_master)
        print_message("etcd: note: the master lost its lease while its member was down\n");
    member_start(1);

    CHECK_OK(reign_election_close(h), "close h");
    CHECK_OK(reign_election_close(c), "close c");
    CHECK_OK(reign_factory_close(fh), "close fh");
    CHECK_OK(reign_factory_close(fc), "close fc");
}

/* ---- auth ------------------------------------------------------------------------------- */

/* The URI with its password replaced (NULL: user and password removed). */
static void uri_with_password(const char *uri, const char *password, char *out, size_t size)
{
    const char *scheme_end = strstr(uri, "://") + 3;
    const char *at = strchr(scheme_end, '@');
    const char *colon = strchr(scheme_end, ':');
    assert_non_null(at);
    assert_true(colon != NULL && colon < at);
    if (password == NULL)
        snprintf(out, size, "%.*s%s", (int)(scheme_end - uri), uri, at + 1);
    else
        snprintf(out, size, "%.*s%s%s", (int)(colon + 1 - uri), uri, password, at);
}

static void test_auth_elects_refuses_bad_passwords_and_survives_lost_tokens(void **state)
{
    (void)state;
    const char *uri = env_or_skip("REIGN_TEST_ETCD_AUTH_URI");
    char bad[512], none[512];
    uri_with_password(uri, "wrong-password-x", bad, sizeof bad);
    uri_with_password(uri, NULL, none, sizeof none);

    reign_options o = REIGN_OPTIONS_INIT;
    o.logger = test_logger;
    reign_factory *f = NULL;
    int rc = reign_factory_open(bad, &o, &f);
    print_message("etcd: wrong password: %s: %s\n", reign_status_str(rc), reign_last_error());
    assert_int_equal(rc, REIGN_EAUTH);
    assert_null(strstr(reign_last_error(), "wrong-password-x"));
    rc = reign_factory_open(none, &o, &f);
    print_message("etcd: no credentials: %s: %s\n", reign_status_str(rc), reign_last_error());
    assert_int_equal(rc, REIGN_EAUTH);

    reign_factory *fa = open_factory(uri, "A", 5000, 20000);
    reign_factory *fb = open_factory(uri, "B", 5000, 20000);
    const char *res = resource("auth");
    reign_election *a, *b;
    CHECK_OK(reign_election_new(fa, res, &a), "new A");
    CHECK_OK(reign_election_new(fb, res, &b), "new B");
    CHECK_OK(reign_election_wait(a, 10000), "A: wait");
    CHECK_OK(reign_election_start(b), "B: start");
    pause_ms(300);
    reign_master *m = NULL;
    CHECK_OK(reign_factory_current_master(fb, res, &m), "current master");
    assert_string_equal(m->metadata, "A");
    reign_master_free(m);
    sampler s;
    sampler_start(&s, a, b);
    int64_t t0 = now_ns();
    CHECK_OK(reign_election_resign(a), "A: resign");
    if (wait_until(is_master_pred, b, 5000, 1) < 0)
        fail_msg("B did not become master within 5 s");
    print_message("etcd: handoff with auth (through the watch): %.1f ms\n", ms_since(t0));

    /* A restart forgets every simple token: the next requests are refused
     * and must be sent again after authenticating. */
    const char *script = getenv("REIGN_TEST_ETCD_SCRIPT");
    const char *dir = getenv("REIGN_TEST_ETCD_AUTH_DIR");
    if (script != NULL && dir != NULL) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "bash '%s' restart '%s' >/dev/null", script, dir);
        int64_t t1 = now_ns();
        if (system(cmd) != 0)
            fail_msg("%s failed", cmd);
        double restart_ms = ms_since(t1);
        /* Whatever happened to B's lease during the restart, it must be
         * master again soon, and a READ must work. */
        CHECK_OK(reign_election_wait(b, 15000), "B: wait after the restart");
        CHECK_OK(reign_factory_current_master(fa, res, &m), "current master after restart");
        assert_string_equal(m->metadata, "B");
        reign_master_free(m);
        pthread_mutex_lock(&logs.mu);
        unsigned reauths = logs.reauths;
        pthread_mutex_unlock(&logs.mu);
        print_message("etcd: server restart (%.0f ms) with auth: B master again %.0f ms after it "
                      "began; %u re-authentication(s), READ with a fresh token works\n",
                      restart_ms, ms_since(t1), reauths);
        if (reauths == 0)
            fail_msg("the restart forgot every token, yet nobody authenticated again");
    } else {
        print_message("etcd: REIGN_TEST_ETCD_AUTH_DIR or _SCRIPT not set: no restart case\n");
    }
    sampler_stop_and_check(&s);
    CHECK_OK(reign_election_close(a), "close A");
    CHECK_OK(reign_election_close(b), "close B");
    CHECK_OK(reign_factory_close(fa), "close fa");
    CHECK_OK(reign_factory_close(fb), "close fb");
}

/* ---- tls ---------------------------------------------------------------------------------- */

static void test_tls_with_client_certificates_elects_and_a_wrong_ca_is_refused(void **state)
{
    (void)state;
    const char *uri = env_or_skip("REIGN_TEST_ETCD_TLS_URI");
    reign_factory *fa = open_factory(uri, "A", 5000, 20000);
    reign_factory *fb = open_factory(uri, "B", 5000, 20000);
    const char *res = resource("tls");
    reign_election *a, *b;
    CHECK_OK(reign_election_new(fa, res, &a), "new A");
    CHECK_OK(reign_election_new(fb, res, &b), "new B");
    CHECK_OK(reign_election_wait(a, 10000), "A: wait");
    CHECK_OK(reign_election_start(b), "B: start");
    pause_ms(300);
    int64_t t0 = now_ns();
    CHECK_OK(reign_election_resign(a), "A: resign");
    if (wait_until(is_master_pred, b, 5000, 1) < 0)
        fail_msg("B did not become master within 5 s");
    print_message("etcd: handoff over TLS (through the watch): %.1f ms\n", ms_since(t0));
    CHECK_OK(reign_election_close(a), "close A");
    CHECK_OK(reign_election_close(b), "close B");
    CHECK_OK(reign_factory_close(fa), "close fa");
    CHECK_OK(reign_factory_close(fb), "close fb");

    /* The client certificate as CA: the server's certificate does not verify. */
    char wrong[1024];
    const char *ca = strstr(uri, "?cacert=");
    const char *cert = strstr(uri, "&cert=");
    assert_true(ca != NULL && cert != NULL);
    const char *ca_end = ca + strcspn(ca + 1, "&") + 1;
    size_t cert_len = strcspn(cert + 6, "&");
    snprintf(wrong, sizeof wrong, "%.*s?cacert=%.*s%s", (int)(ca - uri), uri, (int)cert_len,
             cert + 6, ca_end);
    reign_options o = REIGN_OPTIONS_INIT;
    o.logger = test_logger;
    reign_factory *f = NULL;
    int rc = reign_factory_open(wrong, &o, &f);
    print_message("etcd: wrong CA: %s: %s\n", reign_status_str(rc), reign_last_error());
    assert_int_equal(rc, REIGN_EBACKEND);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *which = argc > 1 ? argv[1] : "all";
    const struct CMUnitTest renew[] = {
        cmocka_unit_test(test_a_renew_tick_of_1000_leases_costs_at_most_two_requests),
        cmocka_unit_test(test_a_renew_tick_of_100_leases_costs_at_most_two_requests),
    };
    const struct CMUnitTest watch[] = {
        cmocka_unit_test(test_a_resignation_reaches_a_candidate_through_the_watch),
    };
    const struct CMUnitTest cluster[] = {
        cmocka_unit_test(test_killing_the_candidates_member_during_a_takeover_keeps_one_master),
    };
    const struct CMUnitTest auth[] = {
        cmocka_unit_test(test_auth_elects_refuses_bad_passwords_and_survives_lost_tokens),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_tls_with_client_certificates_elects_and_a_wrong_ca_is_refused),
    };
    int failed = 0;
    bool all = strcmp(which, "all") == 0;
    if (all || strcmp(which, "renew") == 0)
        failed += cmocka_run_group_tests_name("etcd.renew", renew, NULL, NULL);
    if (all || strcmp(which, "watch") == 0)
        failed += cmocka_run_group_tests_name("etcd.watch", watch, NULL, NULL);
    if (all || strcmp(which, "cluster") == 0)
        failed += cmocka_run_group_tests_name("etcd.cluster", cluster, NULL, NULL);
    if (all || strcmp(which, "auth") == 0)
        failed += cmocka_run_group_tests_name("etcd.auth", auth, NULL, NULL);
    if (all || strcmp(which, "tls") == 0)
        failed += cmocka_run_group_tests_name("etcd.tls", tls, NULL, NULL);
    return failed;
}
