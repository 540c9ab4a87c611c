/* Tests of the postgres:// backend against a real server (started by
 * scripts/servers/postgres.sh): what the conformance suite cannot say about
 * PostgreSQL — a restart and sessions terminated by the server while
 * elections run, a resource ID that looks like SQL, a wrong password, the
 * number of statements per renew batch (pg_stat_statements), TLS, table=.
 *
 * Environment (eval "$(scripts/servers/postgres.sh start DIR)" sets them):
 *   REIGN_TEST_POSTGRES_URI  postgres://reign:reign@127.0.0.1:PORT/postgres (else exit 77)
 *   REIGN_TEST_POSTGRES_CTL  "…/postgres.sh ctl DIR" for the restart case (else it skips)
 *   REIGN_TEST_POSTGRES_TLS_URI  the same server with sslmode=require (else the TLS case skips)
 * Uses reign.h like a user, and libpq directly as the administrator.
 */
#include <errno.h>
#include <inttypes.h>
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
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "reign/reign.h"

/* ---- harness ------------------------------------------------------------------- */

static const char *uri; /* REIGN_TEST_POSTGRES_URI */
static const char *ctl; /* REIGN_TEST_POSTGRES_CTL or NULL */
static char run_id[64]; /* unique per run: resource and instance names */

static int64_t now_ms(void) { return reign_monotonic_ms(); }

static void pause_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

#define EXPECT_STATUS(want, got, what)                                                             \
    do {                                                                                           \
        int w_ = (want), g_ = (got);                                                               \
        if (w_ != g_) {                                                                            \
            print_error("%s: expected %s, got %s (last error: \"%s\")\n", (what),                  \
                        reign_status_str(w_), reign_status_str(g_), reign_last_error());           \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* The administrator's connection (blocking libpq is fine in a test). */
static PGconn *admin(void)
{
    const char *kw[] = {"dbname", "application_name", NULL};
    const char *val[] = {uri, "test-admin", NULL};
    PGconn *c = PQconnectdbParams(kw, val, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        print_error("admin connection to %s failed: %s\n", uri, PQerrorMessage(c));
        PQfinish(c);
        fail();
    }
    return c;
}

/* One value of a one-row query (text), malloc'd; NULL for SQL NULL. */
static char *query_value(PGconn *c, const char *sql, int n, const char *const *values,
                         const int *lengths, const int *formats)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, values, lengths, formats, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        print_error("%s: %s\n", sql, PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    char *v = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static long long query_int(PGconn *c, const char *sql)
{
    char *v = query_value(c, sql, 0, NULL, NULL, NULL);
    long long n = v != NULL ? atoll(v) : -1;
    free(v);
    return n;
}

static reign_options options(const char *who, char *id, size_t id_size, int64_t ttl_ms,
                             int64_t retry_ms)
{
    snprintf(id, id_size, "%s-%s", run_id, who);
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = id;
    o.ttl_ms = ttl_ms;
    o.retry_interval_ms = retry_ms;
    return o;
}

static reign_factory *open_factory(const char *u, const char *who, char *id, size_t id_size,
                                   int64_t ttl_ms, int64_t retry_ms)
{
    reign_options o = options(who, id, id_size, ttl_ms, retry_ms);
    reign_factory *f = NULL;
    EXPECT_STATUS(REIGN_OK, reign_factory_open(u, &o, &f), "reign_factory_open");
    return f;
}

static bool wait_master(reign_election *e, int64_t timeout_ms)
{
    int64_t until = now_ms() + timeout_ms;
    while (now_ms() < until) {
        if (reign_election_is_master(e)) {
            return true;
        }
        pause_ms(2);
    }
    return false;
}

static uint64_t term_of(reign_election *e)
{
    uint64_t t = 0;
    EXPECT_STATUS(REIGN_OK, reign_election_term(e, &t), "reign_election_term");
    return t;
}

/* URI with a query parameter appended. */
static char *uri_with(const char *param)
{
    size_t len = strlen(uri) + strlen(param) + 2;
    char *u = malloc(len);
    assert_non_null(u);
    snprintf(u, len, "%s%c%s", uri, strchr(uri, '?') != NULL ? '&' : '?', param);
    return u;
}

/* ---- the sampler: is anyone master twice? ----------------------------------------- */

/* Samples every election of every resource each millisecond; a round in
 * which two elections of one resource are master is an overlap. */
#define MAX_RES 4
typedef struct sampler {
    reign_election *e[MAX_RES][2];
    int n_res;
    atomic_bool stop;
    atomic_int overlaps;
    atomic_int rounds;
    pthread_t thread;
} sampler;

static void *sampler_main(void *arg)
{
    sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        for (int r = 0; r < s->n_res; r++) {
            if (reign_election_is_master(s->e[r][0]) && reign_election_is_master(s->e[r][1])) {
                atomic_fetch_add(&s->overlaps, 1);
            }
        }
        atomic_fetch_add(&s->rounds, 1);
        pause_ms(1);
    }
    return NULL;
}

static void sampler_start(sampler *s)
{
    atomic_store(&s->stop, false);
    atomic_store(&s->overlaps, 0);
    atomic_store(&s->rounds, 0);
    assert_int_equal(pthread_create(&s->thread, NULL, sampler_main, s), 0);
}

static void sampler_stop(sampler *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
}

/* Index (0/1) of the master of resource r, -1 if none. */
static int master_of(const sampler *s, int r)
{
    for (int i = 0; i < 2; i++) {
        if (reign_election_is_master(s->e[r][i])) {
            return i;
        }
    }
    return -1;
}

static bool all_have_a_master(const sampler *s, int64_t timeout_ms)
{
    int64_t until = now_ms() + timeout_ms;
    while (now_ms() < until) {
        int ok = 0;
        for (int r = 0; r < s->n_res; r++) {
            ok += master_of(s, r) >= 0;
        }
        if (ok == s->n_res) {
            return true;
        }
        pause_ms(5);
    }
    return false;
}

/* Masterships held steadily for `ms`: every resource has one master all along. */
static bool steady(const sampler *s, int64_t ms)
{
    int64_t until = now_ms() + ms;
    while (now_ms() < until) {
        for (int r = 0; r < s->n_res; r++) {
            if (master_of(s, r) < 0) {
                return false;
            }
        }
        pause_ms(5);
    }
    return true;
}

/* Two factories campaigning for n resources, sampled. */
typedef struct duo {
    reign_factory *f[2];
    char id[2][128];
    char res[MAX_RES][128];
    sampler s;
} duo;

static void duo_open(duo *d, const char *u, const char *name, int n, int64_t ttl_ms,
                     int64_t retry_ms)
{
    memset(d, 0, sizeof(*d));
    d->f[0] = open_factory(u, "A", d->id[0], sizeof(d->id[0]), ttl_ms, retry_ms);
    d->f[1] = open_factory(u, "B", d->id[1], sizeof(d->id[1]), ttl_ms, retry_ms);
    d->s.n_res = n;
    for (int r = 0; r < n; r++) {
        snprintf(d->res[r], sizeof(d->res[r]), "%s/%s/%d", run_id, name, r);
        for (int i = 0; i < 2; i++) {
            EXPECT_STATUS(REIGN_OK, reign_election_new(d->f[i], d->res[r], &d->s.e[r][i]),
                          "reign_election_new");
            EXPECT_STATUS(REIGN_OK, reign_election_start(d->s.e[r][i]), "reign_election_start");
        }
    }
    sampler_start(&d->s);
}

static void duo_close(duo *d)
{
    sampler_stop(&d->s);
    for (int r = 0; r < d->s.n_res; r++) {
        for (int i = 0; i < 2; i++) {
            reign_election_close(d->s.e[r][i]);
        }
    }
    for (int i = 0; i < 2; i++) {
        EXPECT_STATUS(REIGN_OK, reign_factory_close(d->f[i]), "reign_factory_close");
    }
}

/* ---- cases ----------------------------------------------------------------------------- */

static void test_a_resource_id_that_looks_like_sql_is_just_a_name(void **state)
{
    (void)state;
    char id[128];
    const char *res = "x'); DROP TABLE reign_leases; --";
    reign_factory *f = open_factory(uri, "sql", id, sizeof(id), 5000, 250);
    reign_election *e = NULL;
    EXPECT_STATUS(REIGN_OK, reign_election_new(f, res, &e), "reign_election_new");
    EXPECT_STATUS(REIGN_OK, reign_election_wait(e, 5000), "reign_election_wait");
    reign_master *m = NULL;
    EXPECT_STATUS(REIGN_OK, reign_election_current_master(e, &m), "current_master");
    assert_string_equal(m->instance_id, id);
    reign_master_free(m);

    PGconn *c = admin();
    char *exists =
        query_value(c, "SELECT to_regclass('reign_leases') IS NOT NULL", 0, NULL, NULL, NULL);
    assert_string_equal(exists, "t");
    free(exists);
    /* the row's resource is exactly those bytes */
    const char *vals[] = {res};
    int lens[] = {(int)strlen(res)};
    int fmts[] = {1};
    char *holder = query_value(c, "SELECT holder FROM reign_leases WHERE resource = $1::bytea", 1,
                               vals, lens, fmts);
    assert_non_null(holder);
    assert_string_equal(holder, id);
    free(holder);
    PQfinish(c);
    reign_election_close(e);
    EXPECT_STATUS(REIGN_OK, reign_factory_close(f), "reign_factory_close");
}

static void test_a_wrong_password_is_eauth_at_open_and_never_shown(void **state)
{
    (void)state;
    /* the test URI with its password replaced */
    const char *secret = "Wr0ng-Pa55word-3141";
    const char *at = strchr(uri, '@');
    const char *colon = strchr(strstr(uri, "://") + 3, ':');
    if (at == NULL || colon == NULL || colon > at) {
        print_message("[  SKIP    ] %s has no user:password@ to change\n", uri);
        skip();
    }
    char bad[1024];
    snprintf(bad, sizeof(bad), "%.*s:%s%s", (int)(colon - uri), uri, secret, at);
    reign_options o = REIGN_OPTIONS_INIT;
    reign_factory *f = NULL;
    int rc = reign_factory_open(bad, &o, &f);
    const char *err = reign_last_error();
    print_message("    open refused: %s: %s\n", reign_status_str(rc), err);
    EXPECT_STATUS(REIGN_EAUTH, rc, "reign_factory_open with a wrong password");
    assert_null(f);
    assert_null(strstr(err, secret));
    assert_non_null(strstr(err, "password authentication failed"));
    assert_non_null(strstr(err, "***"));
}

/* Between two renew batches: wait for the next batch to be gathered, give
 * it time to end (the renew period is a second), then read the factory's
 * counts and the server's statement counts: both see the same batches. */
static void quiet_point(reign_factory *f, PGconn *c, const char *count_sql, const char *renew_sql,
                        reign_stats *s, long long *all, long long *renew)
{
    reign_stats a;
    EXPECT_STATUS(REIGN_OK, reign_factory_stats(f, &a), "stats");
    int64_t until = now_ms() + 5000;
    do {
        pause_ms(5);
        EXPECT_STATUS(REIGN_OK, reign_factory_stats(f, s), "stats");
    } while (s->renew_batches == a.renew_batches && now_ms() < until);
    assert_true(s->renew_batches > a.renew_batches);
    pause_ms(400);
    EXPECT_STATUS(REIGN_OK, reign_factory_stats(f, s), "stats");
    *all = query_int(c, count_sql);
    *renew = query_int(c, renew_sql);
}

static void test_renewals_of_a_thousand_leases_take_one_statement_per_batch(void **state)
{
    (void)state;
    enum { N = 1000 };
    const int64_t ttl = 3000;
    PGconn *c = admin();
    PGresult *r = PQexec(c, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    bool have = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (have) {
        r = PQexec(c, "SELECT pg_stat_statements_reset()");
        have = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    if (!have) {
        PQfinish(c);
        print_message("[  SKIP    ] pg_stat_statements is not loaded (shared_preload_libraries); "
                      "scripts/servers/postgres.sh loads it\n");
        skip();
    }
    /* a table of its own, so that its statements are told apart */
    char *u = uri_with("table=reign_count_stmts");
    char id[128];
    reign_factory *f = open_factory(u, "count", id, sizeof(id), ttl, 250);
    reign_election **e = calloc(N, sizeof(*e));
    assert_non_null(e);
    char name[128];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "%s/count/%d", run_id, i);
        EXPECT_STATUS(REIGN_OK, reign_election_new(f, name, &e[i]), "reign_election_new");
        EXPECT_STATUS(REIGN_OK, reign_election_start(e[i]), "reign_election_start");
    }
    int64_t until = now_ms() + 20000;
    int held = 0;
    while (now_ms() < until && held < N) {
        held = 0;
        for (int i = 0; i < N; i++) {
            held += reign_election_is_master(e[i]);
        }
        pause_ms(10);
    }
    assert_int_equal(held, N);

    const char *count_sql = "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                            "WHERE query LIKE '%reign_count_stmts%' AND query NOT LIKE "
                            "'%pg_stat_statements%'";
    const char *renew_sql = "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                            "WHERE query LIKE 'UPDATE \"reign_count_stmts\"%unnest%'";
    reign_stats s0, s1;
    long long all0, renew0, all1, renew1;
    quiet_point(f, c, count_sql, renew_sql, &s0, &all0, &renew0);
    pause_ms(3 * ttl / 3); /* three renew periods */
    quiet_point(f, c, count_sql, renew_sql, &s1, &all1, &renew1);
    uint64_t batches = s1.batches - s0.batches;
    uint64_t renew_batches = s1.renew_batches - s0.renew_batches;
    uint64_t renewals = s1.ops_renew - s0.ops_renew;
    long long statements = all1 - all0, renew_statements = renew1 - renew0;
    print_message("    %d leases held: %" PRIu64 " renewals in %" PRIu64 " renew batches (%" PRIu64
                  " batches in all) took %lld statements, %lld of them the renew UPDATE: %.2f "
                  "statements per renew batch\n",
                  N, renewals, renew_batches, batches, statements, renew_statements,
                  renew_batches > 0 ? (double)statements / (double)renew_batches : 0.0);
    assert_true(renew_batches >= 3);
    assert_true(renewals >= (uint64_t)N * 3);
    assert_int_equal(renew_statements, renew_batches);
    assert_int_equal(statements, renew_statements); /* nothing but the renew UPDATE */
    assert_int_equal(batches, renew_batches);

    for (int i = 0; i < N; i++) {
        reign_election_close(e[i]);
    }
    free(e);
    EXPECT_STATUS(REIGN_OK, reign_factory_close(f), "reign_factory_close");
    free(u);
    PQfinish(c);
}

static void test_a_server_restart_keeps_one_master_and_terms_rising(void **state)
{
    (void)state;
    if (ctl == NULL) {
        print_message("[  SKIP    ] REIGN_TEST_POSTGRES_CTL is not set (postgres.sh start prints "
                      "it)\n");
        skip();
    }
    const int64_t ttl = 2000;
    duo d;
    duo_open(&d, uri, "restart", 3, ttl, 250);
    assert_true(all_have_a_master(&d.s, 5000));
    uint64_t before[MAX_RES];
    int holder_before[MAX_RES];
    for (int r = 0; r < d.s.n_res; r++) {
        holder_before[r] = master_of(&d.s, r);
        before[r] = term_of(d.s.e[r][holder_before[r]]);
    }
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "%s restart", ctl);
    int64_t t0 = now_ms();
    assert_int_equal(system(cmd), 0);
    int64_t took = now_ms() - t0;
    /* A master may still believe from before the restart; once a TTL has
     * passed every belief rests on a renewal or an ACQUIRE sent after it. */
    pause_ms(ttl);
    assert_true(all_have_a_master(&d.s, 10000));
    int64_t back = now_ms() - t0;
    /* renewals work again: the masters hold on for two TTLs */
    assert_true(steady(&d.s, 2 * ttl));
    for (int r = 0; r < d.s.n_res; r++) {
        int h = master_of(&d.s, r);
        uint64_t t = term_of(d.s.e[r][h]);
        print_message("    %s: %c term %" PRIu64 " → restart → %c term %" PRIu64 "\n", d.res[r],
                      'A' + holder_before[r], before[r], 'A' + h, t);
        assert_true(h == holder_before[r] ? t >= before[r] : t > before[r]);
        /* and a handoff after the restart gives a higher term still */
        EXPECT_STATUS(REIGN_OK, reign_election_resign(d.s.e[r][h]), "resign");
        assert_true(wait_master(d.s.e[r][1 - h], 3000));
        assert_true(term_of(d.s.e[r][1 - h]) > t);
    }
    print_message("    restart took %" PRId64 " ms; every resource had a master %" PRId64
                  " ms after it began (a TTL later at least); %d sampling rounds, %d overlaps\n",
                  took, back, atomic_load(&d.s.rounds), atomic_load(&d.s.overlaps));
    assert_int_equal(atomic_load(&d.s.overlaps), 0);
    duo_close(&d);
}

/* Sessions named `app`: the LISTEN ones (their last query is the LISTEN)
 * or the others. */
static long long sessions(PGconn *c, const char *app, bool listen)
{
    char sql[300];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' "
             "AND (query LIKE 'LISTEN%%') = %s",
             app, listen ? "true" : "false");
    return query_int(c, sql);
}

static void test_sessions_terminated_by_the_server_are_reopened(void **state)
{
    (void)state;
    /* A long TTL and retry interval: a candidate asks again only when the
     * lease could have run out (seconds), so a quick handoff is NOTIFY's. */
    const int64_t ttl = 9000;
    /* Our sessions get a name of their own (still 'reign%'), so that other
     * suites on the same server are not terminated too. */
    char app[64], param[96];
    snprintf(app, sizeof(app), "reign-pgtest-%d", (int)getpid());
    snprintf(param, sizeof(param), "application_name=%s", app);
    char *u = uri_with(param);
    duo d;
    duo_open(&d, u, "terminate", 2, ttl, 20000);
    assert_true(all_have_a_master(&d.s, 5000));
    uint64_t before[MAX_RES];
    int holder[MAX_RES];
    for (int r = 0; r < d.s.n_res; r++) {
        holder[r] = master_of(&d.s, r);
        before[r] = term_of(d.s.e[r][holder[r]]);
    }
    PGconn *c = admin();
    long long cmd0 = sessions(c, app, false), lsn0 = sessions(c, app, true);
    char sql[300];
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE application_name LIKE 'reign%%' AND application_name = '%s'",
             app);
    long long killed = query_int(c, sql);
    print_message("    terminated %lld sessions (%lld command, %lld LISTEN)\n", killed, cmd0, lsn0);
    assert_true(killed >= 4);
    /* Both factories reconnect both connections: commands at the next
     * renewal or retry, LISTEN right after (a dead LISTEN makes every
     * candidate retry, which runs a batch). */
    int64_t t0 = now_ms();
    long long cmd = 0, lsn = 0;
    while (now_ms() - t0 < ttl) {
        cmd = sessions(c, app, false);
        lsn = sessions(c, app, true);
        if (cmd >= 2 && lsn >= 2) {
            break;
        }
        pause_ms(20);
    }
    print_message("    %lld command and %lld LISTEN sessions back after %" PRId64 " ms\n", cmd, lsn,
                  now_ms() - t0);
    assert_true(cmd >= 2 && lsn >= 2);
    assert_true(steady(&d.s, ttl));
    for (int r = 0; r < d.s.n_res; r++) {
        int h = master_of(&d.s, r);
        uint64_t t = term_of(d.s.e[r][h]);
        assert_true(h == holder[r] ? t >= before[r] : t > before[r]);
        if (h != holder[r]) {
            print_message("    %s changed hands: %c → %c\n", d.res[r], 'A' + holder[r], 'A' + h);
        }
        /* NOTIFY over the new LISTEN session: a handoff long before the
         * candidate's own retry (60 s) or the lease's end */
        int64_t t1 = now_ms();
        EXPECT_STATUS(REIGN_OK, reign_election_resign(d.s.e[r][h]), "resign");
        assert_true(wait_master(d.s.e[r][1 - h], 300));
        print_message("    %s: handoff %c → %c in %" PRId64 " ms, term %" PRIu64 " → %" PRIu64 "\n",
                      d.res[r], 'A' + h, 'A' + 1 - h, now_ms() - t1, t, term_of(d.s.e[r][1 - h]));
        assert_true(term_of(d.s.e[r][1 - h]) > t);
    }
    assert_int_equal(atomic_load(&d.s.overlaps), 0);
    PQfinish(c);
    duo_close(&d);
    free(u);
}

static void test_tls_with_sslmode_require_encrypts_every_session(void **state)
{
    (void)state;
    const char *tls_uri = getenv("REIGN_TEST_POSTGRES_TLS_URI");
    if (tls_uri == NULL || tls_uri[0] == '\0') {
        print_message("[  SKIP    ] REIGN_TEST_POSTGRES_TLS_URI is not set (postgres.sh start "
                      "prints it when the server has a certificate)\n");
        skip();
    }
    PGconn *c = admin();
    char *u = malloc(strlen(tls_uri) + 64);
    assert_non_null(u);
    sprintf(u, "%s%capplication_name=reign-tls-test", tls_uri, strchr(tls_uri, '?') ? '&' : '?');
    char id[128];
    reign_factory *f = open_factory(u, "tls", id, sizeof(id), 5000, 250);
    char res[128];
    snprintf(res, sizeof(res), "%s/tls", run_id);
    reign_election *e = NULL;
    EXPECT_STATUS(REIGN_OK, reign_election_new(f, res, &e), "reign_election_new");
    EXPECT_STATUS(REIGN_OK, reign_election_wait(e, 5000), "reign_election_wait");
    long long plain = query_int(c, "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s "
                                   "USING (pid) WHERE a.application_name = 'reign-tls-test' "
                                   "AND NOT s.ssl");
    long long tls = query_int(c, "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s "
                                 "USING (pid) WHERE a.application_name = 'reign-tls-test' "
                                 "AND s.ssl");
    print_message("    %lld sessions with TLS, %lld without\n", tls, plain);
    assert_true(tls >= 1);
    assert_int_equal(plain, 0);
    reign_election_close(e);
    EXPECT_STATUS(REIGN_OK, reign_factory_close(f), "reign_factory_close");
    free(u);
    PQfinish(c);
}

static void test_table_parameter_creates_and_uses_that_table(void **state)
{
    (void)state;
    PGconn *c = admin();
    PGresult *r = PQexec(c, "DROP TABLE IF EXISTS public.reign_custom_leases");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    char *u = uri_with("table=public.reign_custom_leases");
    char id[128];
    reign_factory *f = open_factory(u, "table", id, sizeof(id), 5000, 250);
    char res[128];
    snprintf(res, sizeof(res), "%s/table", run_id);
    reign_election *e = NULL;
    EXPECT_STATUS(REIGN_OK, reign_election_new(f, res, &e), "reign_election_new");
    EXPECT_STATUS(REIGN_OK, reign_election_wait(e, 5000), "reign_election_wait");
    const char *vals[] = {res};
    int lens[] = {(int)strlen(res)};
    int fmts[] = {1};
    char *term = query_value(c,
                             "SELECT term FROM public.reign_custom_leases WHERE resource = "
                             "$1::bytea AND expires_at > clock_timestamp()",
                             1, vals, lens, fmts);
    assert_non_null(term);
    assert_string_equal(term, "1");
    free(term);
    /* resign keeps the row (and its term) and ends the lease */
    EXPECT_STATUS(REIGN_OK, reign_election_resign(e), "resign");
    char *live = query_value(c,
                             "SELECT count(*) FROM public.reign_custom_leases WHERE resource = "
                             "$1::bytea AND expires_at > clock_timestamp()",
                             1, vals, lens, fmts);
    assert_string_equal(live, "0");
    free(live);
    reign_election_close(e);
    EXPECT_STATUS(REIGN_OK, reign_factory_close(f), "reign_factory_close");
    free(u);
    PQfinish(c);
}

int main(void)
{
    uri = getenv("REIGN_TEST_POSTGRES_URI");
    if (uri == NULL || uri[0] == '\0') {
        printf("SKIPPED postgres.server: REIGN_TEST_POSTGRES_URI is not set; e.g. eval \"$("
               "scripts/servers/postgres.sh start /tmp/reign-pg)\"\n");
        return 77;
    }
    ctl = getenv("REIGN_TEST_POSTGRES_CTL");
    if (ctl != NULL && ctl[0] == '\0') {
        ctl = NULL;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(run_id, sizeof(run_id), "pgtest-%d-%lld", (int)getpid(), (long long)ts.tv_sec);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_resource_id_that_looks_like_sql_is_just_a_name),
        cmocka_unit_test(test_a_wrong_password_is_eauth_at_open_and_never_shown),
        cmocka_unit_test(test_renewals_of_a_thousand_leases_take_one_statement_per_batch),
        cmocka_unit_test(test_a_server_restart_keeps_one_master_and_terms_rising),
        cmocka_unit_test(test_sessions_terminated_by_the_server_are_reopened),
        cmocka_unit_test(test_tls_with_sslmode_require_encrypts_every_session),
        cmocka_unit_test(test_table_parameter_creates_and_uses_that_table),
    };
    return cmocka_run_group_tests_name("postgres.server", tests, NULL, NULL);
}
