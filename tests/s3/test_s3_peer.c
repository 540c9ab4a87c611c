/* Peer mode of the s3:// backend against a real S3 server (Ceph RGW from
 * scripts/servers/s3.sh): a standby asks the holder's endpoint instead of
 * reading S3, and whatever that endpoint does — answers truly, stalls,
 * lies about the term, claims mastership after its holder died, or is not
 * there — the standby never takes over before the holder's belief ended,
 * and does take over once S3 says the lease is dead.
 *
 * S3 requests are counted from the backend's per-request debug lines
 * ("GET key -> 200 …"; peer asks log as "peer GET …"), per factory.
 * Holders that must die without releasing run as child processes
 * (`test_s3_peer hold URI RESOURCE`): they print "TERM <n>" and then
 * "DEADLINE <ms>" at each renewal; the parent kills one right after a
 * DEADLINE line, so it knows the last deadline of the dead holder's belief
 * (CLOCK_MONOTONIC is shared by the processes of one machine).
 *
 * Environment: REIGN_TEST_S3_URI (required, else exit 77 = skipped) and
 * the AWS_* variables the script prints; REIGN_TEST_S3_TTL_MS (default
 * 1000); REIGN_TEST_S3_PEER_WINDOW_MS (default 60000: the stable-rate
 * window). Uses include/reign/reign.h and include/reign/s3.h only. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3_test.h"

#include "reign/reign.h"
#include "reign/s3.h"

extern char **environ;

static const char *g_uri;
static const char *g_self;
static int64_t g_ttl_ms = 1000;
static int64_t g_window_ms = 60000;

/* ---- helpers ---------------------------------------------------------------- */

/* g_uri with more parameters appended (malloc'd). */
static char *uri_plus(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *uri_plus(const char *fmt, ...)
{
    char more[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(more, sizeof more, fmt, ap);
    va_end(ap);
    size_t n = strlen(g_uri) + strlen(more) + 2;
    char *u = malloc(n);
    assert_non_null(u);
    snprintf(u, n, "%s%s%s", g_uri, strchr(g_uri, '?') != NULL ? "&" : "?", more);
    return u;
}

/* The backend's debug lines, counted: S3 requests and peer asks. */
typedef struct counters {
    atomic_long s3, gets, peer_asks, secrets_seen;
} counters;

static void count_log(int level, const char *component, const char *message, void *payload)
{
    counters *c = payload;
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (secret != NULL && secret[0] != '\0' && strstr(message, secret) != NULL) {
        atomic_fetch_add(&c->secrets_seen, 1);
    }
    if (level <= REIGN_LOG_WARN) {
        fprintf(stderr, "[%s] %s\n", component, message);
    }
    if (level != REIGN_LOG_DEBUG || strcmp(component, "s3") != 0) {
        return;
    }
    if (strncmp(message, "GET ", 4) == 0) {
        atomic_fetch_add(&c->s3, 1);
        atomic_fetch_add(&c->gets, 1);
    } else if (strncmp(message, "PUT ", 4) == 0) {
        atomic_fetch_add(&c->s3, 1);
    } else if (strncmp(message, "peer GET ", 9) == 0) {
        atomic_fetch_add(&c->peer_asks, 1);
    }
}

static reign_factory *open_factory(const char *uri, const char *who, int64_t retry_ms,
                                   counters *c)
{
    reign_options o = REIGN_OPTIONS_INIT;
    char id[96];
    snprintf(id, sizeof id, "s3peer-%ld-%s", (long)getpid(), who);
    o.instance_id = id;
    o.ttl_ms = g_ttl_ms;
    o.retry_interval_ms = retry_ms;
    o.logger = count_log;
    o.logger_payload = c;
    reign_factory *f = NULL;
    CHECK_OK(reign_factory_open(uri, &o, &f), "reign_factory_open");
    return f;
}

/* ---- a fake peer endpoint (the application's server, or a liar) ------------ */

typedef enum fake_mode {
    FAKE_HANDLER,    /* answers with reign_s3_peer_answer: an application's own server */
    FAKE_STALL,      /* reads the request, never answers */
    FAKE_WRONG_TERM, /* "master", with the holder's instance but term + 1 */
    FAKE_LIAR,       /* "master" with the holder's term and instance, forever (after death too) */
} fake_mode;

typedef struct fake {
    int fd;
    int port;
    fake_mode mode;
    pthread_mutex_t mu; /* guards term, instance */
    uint64_t term;
    char instance[128];
    atomic_long asks;
    atomic_bool stop;
    pthread_t thread;
    int stalled[64]; /* connections kept open unanswered */
    size_t n_stalled;
} fake;

static void fake_serve(fake *f, int c)
{
    char req[4096];
    size_t n = 0;
    while (n < sizeof req - 1) {
        ssize_t r = recv(c, req + n, sizeof req - 1 - n, 0);
        if (r <= 0) {
            close(c);
            return;
        }
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL) {
            break;
        }
    }
    atomic_fetch_add(&f->asks, 1);
    if (f->mode == FAKE_STALL) {
        if (f->n_stalled < sizeof f->stalled / sizeof f->stalled[0]) {
            f->stalled[f->n_stalled++] = c;
        } else {
            close(c);
        }
        return;
    }
    char path[2048] = "";
    sscanf(req, "GET %2047s", path);
    char body[REIGN_S3_PEER_BODY_MAX];
    int status = 200;
    if (f->mode == FAKE_HANDLER) {
        status = reign_s3_peer_answer(path, body, sizeof body);
    } else {
        const char *name = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
        pthread_mutex_lock(&f->mu);
        snprintf(body, sizeof body,
                 "{\"resource\":\"%s\",\"master\":true,\"term\":%" PRIu64 ",\"instance\":\"%s\"}",
                 name, f->mode == FAKE_WRONG_TERM ? f->term + 1 : f->term, f->instance);
        pthread_mutex_unlock(&f->mu);
    }
    char resp[REIGN_S3_PEER_BODY_MAX + 256];
    int len = snprintf(resp, sizeof resp,
                       "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s",
                       status, strlen(body), body);
    ssize_t w = send(c, resp, (size_t)len, MSG_NOSIGNAL);
    (void)w;
    close(c);
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0) {
            continue;
        }
        if (atomic_load(&f->stop)) {
            close(c);
            break;
        }
        fake_serve(f, c);
    }
    return NULL;
}

/* A listening socket on 127.0.0.1:<free port>; its port in *port. */
static int listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static fake *fake_start(fake_mode mode)
{
    fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->mode = mode;
    pthread_mutex_init(&f->mu, NULL);
    f->fd = listen_local(&f->port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    return f;
}

static void fake_set(fake *f, uint64_t term, const char *instance)
{
    pthread_mutex_lock(&f->mu);
    f->term = term;
    snprintf(f->instance, sizeof f->instance, "%s", instance);
    pthread_mutex_unlock(&f->mu);
}

static void fake_stop(fake *f)
{
    atomic_store(&f->stop, true);
    /* wake the accept */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)f->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(c, (struct sockaddr *)&a, sizeof a) != 0) {
        print_error("fake_stop: connect: %s\n", strerror(errno));
    }
    close(c);
    pthread_join(f->thread, NULL);
    for (size_t i = 0; i < f->n_stalled; i++) {
        close(f->stalled[i]);
    }
    close(f->fd);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
static int closed_port(void)
{
    int port = 0;
    int fd = listen_local(&port);
    close(fd);
    return port;
}

/* ---- the holder child ----------------------------------------------------------- */

static int holder_main(const char *uri, const char *resource)
{
    reign_options o = REIGN_OPTIONS_INIT;
    char id[64];
    snprintf(id, sizeof id, "s3peer-holder-%ld", (long)getpid());
    o.instance_id = id;
    o.ttl_ms = g_ttl_ms;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    uint64_t term = 0;
    if (reign_factory_open(uri, &o, &f) != REIGN_OK ||
        reign_election_new(f, resource, &e) != REIGN_OK ||
        reign_election_wait(e, 30000) != REIGN_OK || reign_election_term(e, &term) != REIGN_OK) {
        fprintf(stderr, "holder: %s\n", reign_last_error());
        return 3;
    }
    printf("TERM %" PRIu64 " %s\n", term, id);
    fflush(stdout);
    int64_t last = 0;
    for (;;) {
        int64_t d = 0;
        if (reign_election_deadline_ms(e, &d, NULL) == REIGN_OK && d != last) {
            printf("DEADLINE %" PRId64 "\n", d);
            fflush(stdout);
            last = d;
        }
        pause_ms(1);
    }
}

typedef struct child {
    pid_t pid;
    FILE *out;
    uint64_t term;
    char instance[64];
    int64_t deadline_ms; /* the last one it printed */
} child;

static child holder_start(const char *uri, const char *resource)
{
    child ch = {.pid = -1};
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *argv[] = {(char *)g_self, (char *)"hold", (char *)uri, (char *)resource, NULL};
    int rc = posix_spawn(&ch.pid, g_self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    assert_int_equal(rc, 0);
    ch.out = fdopen(fds[0], "r");
    assert_non_null(ch.out);
    char line[160] = "";
    if (fgets(line, sizeof line, ch.out) == NULL ||
        sscanf(line, "TERM %" SCNu64 " %63s", &ch.term, ch.instance) != 2) {
        kill(ch.pid, SIGKILL);
        waitpid(ch.pid, NULL, 0);
        print_error("holder of %s did not become master (said \"%s\")\n", resource, line);
        fail();
    }
    return ch;
}

/* Kill the child right after it reports a renewal; its last deadline in
 * ch->deadline_ms. Returns the time of the kill. */
static int64_t holder_kill_after_renewal(child *ch)
{
    char line[160];
    int seen = 0;
    while (fgets(line, sizeof line, ch->out) != NULL) {
        int64_t d = 0;
        if (sscanf(line, "DEADLINE %" SCNd64, &d) == 1) {
            ch->deadline_ms = d;
            /* the first lines may be old, buffered in the pipe: take a
             * fresh one (its deadline lies ahead) */
            if (++seen >= 2 && d > now_ms()) {
                break;
            }
        }
    }
    kill(ch->pid, SIGKILL);
    int64_t t = now_ms();
    waitpid(ch->pid, NULL, 0);
    /* a renewal printed between our read and the kill */
    while (fgets(line, sizeof line, ch->out) != NULL) {
        int64_t d = 0;
        if (sscanf(line, "DEADLINE %" SCNd64, &d) == 1 && d > ch->deadline_ms) {
            ch->deadline_ms = d;
        }
    }
    fclose(ch->out);
    ch->out = NULL;
    return t;
}

/* Sample is_master every millisecond until master or timeout; the time
 * it was first seen master, or 0. */
static int64_t wait_master(reign_election *e, int64_t timeout_ms)
{
    int64_t until = now_ms() + timeout_ms;
    while (now_ms() < until) {
        if (reign_election_is_master(e)) {
            return now_ms();
        }
        pause_ms(1);
    }
    return 0;
}

/* Watch a standby for ms: it must never be master. */
static void never_master_for(reign_election *e, int64_t ms)
{
    int64_t until = now_ms() + ms;
    while (now_ms() < until) {
        if (reign_election_is_master(e)) {
            print_error("the standby became master while the holder was alive\n");
            fail();
        }
        pause_ms(2);
    }
}

/* ---- stable master: the cost ------------------------------------------------------ */

static void test_with_peer_mode_a_standby_reads_s3_at_most_twice_a_minute_while_the_master_answers(
    void **state)
{
    (void)state;
    counters ch = {0}, cs = {0};
    char *hu = uri_plus("peer_listen=127.0.0.1:0");
    char *su = uri_plus("peer=1");
    reign_factory *fh = open_factory(hu, "stable-holder", 1000, &ch);
    reign_factory *fs = open_factory(su, "stable-standby", 1000, &cs);
    char res[96];
    snprintf(res, sizeof res, "peer-stable/%ld", (long)getpid());
    reign_election *eh = NULL, *es = NULL;
    CHECK_OK(reign_election_new(fh, res, &eh), "new");
    CHECK_OK(reign_election_wait(eh, 10000), "holder wait");
    uint64_t term = 0;
    CHECK_OK(reign_election_term(eh, &term), "term");
    CHECK_OK(reign_election_new(fs, res, &es), "new");
    CHECK_OK(reign_election_start(es), "standby start");

    /* the application-side answer, in this process: master, no secret */
    char path[256], body[REIGN_S3_PEER_BODY_MAX];
    snprintf(path, sizeof path, "/reign/peer/peer-stable~2F%ld", (long)getpid());
    assert_int_equal(reign_s3_peer_answer(path, body, sizeof body), 200);
    char want[200];
    snprintf(want, sizeof want, "\"master\":true,\"term\":%" PRIu64 ",", term);
    if (strstr(body, want) == NULL || strstr(body, reign_factory_instance_id(fh)) == NULL) {
        print_error("answer %s lacks %s or the holder's instance\n", body, want);
        fail();
    }
    assert_null(strstr(body, getenv("AWS_SECRET_ACCESS_KEY")));
    assert_null(strstr(body, getenv("AWS_ACCESS_KEY_ID")));
    assert_int_equal(reign_s3_peer_answer("/reign/peer/no-such-resource", body, sizeof body), 200);
    assert_non_null(strstr(body, "\"master\":false"));
    assert_int_equal(reign_s3_peer_answer("/reign/peer/", body, sizeof body), 400);

    /* its first look was a GET; then the peer answers */
    pause_ms(1500);
    long s0 = atomic_load(&cs.s3), a0 = atomic_load(&cs.peer_asks);
    never_master_for(es, g_window_ms);
    long s3 = atomic_load(&cs.s3) - s0, asks = atomic_load(&cs.peer_asks) - a0;
    double per_min = (double)s3 * 60000.0 / (double)g_window_ms;
    print_message("s3 peer mode, stable master (ttl %" PRId64 " ms, retry 1000 ms, peer_check "
                  "30 s, %" PRId64 " ms window): standby sent %ld S3 requests = %.1f/min and "
                  "%ld peer asks = %.0f/min\n",
                  g_ttl_ms, g_window_ms, s3, per_min, asks,
                  (double)asks * 60000.0 / (double)g_window_ms);
    assert_true(reign_election_is_master(eh));
    /* one forced read per peer_check (30 s), rounded up for the window */
    long allowed = (long)(g_window_ms / 30000) + (g_window_ms % 30000 != 0 ? 1 : 0);
    if (s3 > allowed) {
        print_error("standby: %ld S3 requests in %" PRId64 " ms, at most %ld allowed\n", s3,
                    g_window_ms, allowed);
        fail();
    }
    /* it did ask, at about its retry interval */
    assert_true(asks >= g_window_ms / 1000 / 2);
    assert_int_equal(atomic_load(&cs.secrets_seen), 0);
    assert_int_equal(atomic_load(&ch.secrets_seen), 0);

    /* a release is noticed at the next retry: the peer says "not master" */
    int64_t t0 = now_ms();
    CHECK_OK(reign_election_resign(eh), "resign");
    int64_t took = wait_master(es, 10000);
    assert_true(took > 0);
    print_message("s3 peer mode: standby master %" PRId64 " ms after the holder resigned\n",
                  took - t0);
    assert_true(took - t0 < 2500);
    CHECK_OK(reign_election_close(es), "close");
    CHECK_OK(reign_election_close(eh), "close");
    CHECK_OK(reign_factory_close(fs), "close");
    CHECK_OK(reign_factory_close(fh), "close");
    free(hu);
    free(su);
}

/* The same from the application's own server (peer_url=, the handler). */
static void test_an_application_serving_reign_s3_peer_answer_saves_the_same_reads(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_HANDLER);
    counters ch = {0}, cs = {0};
    char *hu = uri_plus("peer_url=http://127.0.0.1:%d/app/peer", f->port);
    char *su = uri_plus("peer=1&peer_check=4s");
    reign_factory *fh = open_factory(hu, "app-holder", 1000, &ch);
    reign_factory *fs = open_factory(su, "app-standby", 250, &cs);
    char res[96];
    snprintf(res, sizeof res, "peer-app/%ld", (long)getpid());
    reign_election *eh = NULL, *es = NULL;
    CHECK_OK(reign_election_new(fh, res, &eh), "new");
    CHECK_OK(reign_election_wait(eh, 10000), "holder wait");
    CHECK_OK(reign_election_new(fs, res, &es), "new");
    CHECK_OK(reign_election_start(es), "standby start");
    pause_ms(1000);
    long s0 = atomic_load(&cs.s3), a0 = atomic_load(&f->asks);
    never_master_for(es, 8000);
    long s3 = atomic_load(&cs.s3) - s0, asks = atomic_load(&f->asks) - a0;
    print_message("s3 peer mode, application handler (retry 250 ms, peer_check 4 s, 8 s): "
                  "standby %ld S3 requests, the application answered %ld asks\n",
                  s3, asks);
    assert_true(s3 <= 3);     /* 8 s / 4 s, +1 for the window's edges */
    assert_true(asks >= 16);  /* about one per 250 ms retry */
    CHECK_OK(reign_election_close(es), "close");
    CHECK_OK(reign_election_close(eh), "close");
    CHECK_OK(reign_factory_close(fs), "close");
    CHECK_OK(reign_factory_close(fh), "close");
    fake_stop(f);
    free(hu);
    free(su);
}

/* ---- misbehaving endpoints ----------------------------------------------------------- */

#define RETRY_MS 250
#define PEER_CHECK_MS 3000

typedef struct scenario {
    const char *label;
    fake_mode mode;      /* with_fake */
    bool with_fake;      /* else: a closed port */
    bool reads_skipped;  /* the endpoint confirms the record: reads are skipped while alive */
} scenario;

/* A holder (child) advertising the endpoint of sc; a standby in peer mode.
 * While the holder lives: never master, and S3 reads as sc says. Killed:
 * the standby takes over, never before the holder's last deadline and
 * within the bound of the S3 rules (plus 2 x peer_check for a liar). */
static void run_scenario(const scenario *sc)
{
    fake *f = sc->with_fake ? fake_start(sc->mode) : NULL;
    int port = f != NULL ? f->port : closed_port();
    char *hu = uri_plus("peer_url=http://127.0.0.1:%d/reign/peer", port);
    char *su = uri_plus("peer=1&peer_check=%dms", PEER_CHECK_MS);
    char res[96];
    snprintf(res, sizeof res, "peer-%s/%ld", sc->label, (long)getpid());
    child ch = holder_start(hu, res);
    if (f != NULL) {
        fake_set(f, ch.term, ch.instance);
    }
    counters cs = {0};
    reign_factory *fs = open_factory(su, sc->label, RETRY_MS, &cs);
    reign_election *es = NULL;
    CHECK_OK(reign_election_new(fs, res, &es), "new");
    CHECK_OK(reign_election_start(es), "standby start");

    /* alive: never master; reads as the endpoint allows */
    const int64_t window = 4000;
    pause_ms(300);
    long g0 = atomic_load(&cs.gets), a0 = atomic_load(&cs.peer_asks);
    never_master_for(es, window);
    long gets = atomic_load(&cs.gets) - g0, asks = atomic_load(&cs.peer_asks) - a0;
    print_message("s3 peer mode, endpoint %s, holder alive (%" PRId64 " ms, retry %d ms, "
                  "peer_check %d ms): standby %ld GETs, %ld peer asks\n",
                  sc->label, window, RETRY_MS, PEER_CHECK_MS, gets, asks);
    assert_true(asks >= 1);
    if (sc->reads_skipped) {
        assert_true(gets <= window / PEER_CHECK_MS + 1);
    } else {
        /* fell back to S3: a GET at (nearly) every retry */
        assert_true(gets >= window / RETRY_MS / 2);
    }

    /* killed (no release): the S3 rules alone decide */
    int64_t killed = holder_kill_after_renewal(&ch);
    int64_t expiry = g_ttl_ms + g_ttl_ms / 50 + 1;
    int64_t bound = expiry + 2 * RETRY_MS + 3000 +
                    (sc->reads_skipped ? 2 * PEER_CHECK_MS + RETRY_MS : 0);
    int64_t took = wait_master(es, bound + 5000);
    if (took == 0) {
        print_error("%s: the standby did not take over within %" PRId64 " ms of the kill\n",
                    sc->label, bound + 5000);
        fail();
    }
    uint64_t term = 0;
    CHECK_OK(reign_election_term(es, &term), "term");
    print_message("s3 peer mode, endpoint %s: takeover %" PRId64 " ms after the kill, %" PRId64
                  " ms after the dead holder's belief ended (bound %" PRId64 " ms); term %" PRIu64
                  " -> %" PRIu64 "\n",
                  sc->label, took - killed, took - ch.deadline_ms, bound, ch.term, term);
    /* never early: the dead holder believed until its last deadline */
    assert_true(took >= ch.deadline_ms);
    /* never blocked: within the S3 rules' time (+ 2 peer_check for a liar) */
    assert_true(took - killed <= bound);
    assert_int_equal(term, ch.term + 1);
    assert_int_equal(atomic_load(&cs.secrets_seen), 0);
    CHECK_OK(reign_election_close(es), "close");
    CHECK_OK(reign_factory_close(fs), "close");
    if (f != NULL) {
        fake_stop(f);
    }
    free(hu);
    free(su);
}

static void test_a_stalled_endpoint_sends_the_standby_back_to_s3_and_never_makes_it_master_early(
    void **state)
{
    (void)state;
    scenario sc = {.label = "stall", .mode = FAKE_STALL, .with_fake = true};
    run_scenario(&sc);
}

static void test_an_endpoint_lying_about_the_term_makes_the_standby_read_s3(void **state)
{
    (void)state;
    scenario sc = {.label = "wrong-term", .mode = FAKE_WRONG_TERM, .with_fake = true};
    run_scenario(&sc);
}

static void test_an_endpoint_claiming_mastership_after_its_holder_died_delays_but_never_blocks(
    void **state)
{
    (void)state;
    scenario sc = {
        .label = "liar", .mode = FAKE_LIAR, .with_fake = true, .reads_skipped = true};
    run_scenario(&sc);
}

static void test_an_endpoint_that_is_not_there_sends_the_standby_back_to_s3(void **state)
{
    (void)state;
    scenario sc = {.label = "refused", .with_fake = false};
    run_scenario(&sc);
}

/* ---- HTTPS with a CA of the user's ------------------------------------------------------ */

/* A real HTTPS server: `openssl s_server -WWW` serving files from a
 * directory, with a certificate for 127.0.0.1 from a throw-away CA. The
 * holder's answer is a file there (an application's static answer). */
static void test_an_https_endpoint_is_trusted_only_with_the_ca_of_peer_ca(void **state)
{
    (void)state;
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        print_message("[  SKIP    ] openssl is not installed (apt-get install openssl)\n");
        skip();
    }
    char dir[] = "/tmp/reign-s3peer-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && mkdir -p reign/peer && "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=reign peer test CA' "
             "-keyout ca.key -out ca.pem && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout srv.key -out srv.csr && "
             "printf 'subjectAltName=IP:127.0.0.1\\n' > srv.ext && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
             "-extfile srv.ext -out srv.pem",
             dir);
    char quiet[2300];
    snprintf(quiet, sizeof quiet, "( %s ) >%s/openssl.log 2>&1", cmd, dir);
    assert_int_equal(system(quiet), 0);
    int port = closed_port();
    char port_s[16], accept_s[64];
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(accept_s, sizeof accept_s, "127.0.0.1:%d", port);
    pid_t srv = -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    char logpath[128];
    snprintf(logpath, sizeof logpath, "%s/s_server.log", dir);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, logpath, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    char script[256];
    snprintf(script, sizeof script,
             "cd %s && exec openssl s_server -quiet -WWW -accept %s -cert srv.pem -key srv.key",
             dir, accept_s);
    char *argv[] = {(char *)"sh", (char *)"-c", script, NULL};
    assert_int_equal(posix_spawn(&srv, "/bin/sh", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);

    counters ch = {0}, ca = {0}, cb = {0};
    char *hu = uri_plus("peer_url=https://127.0.0.1:%d/reign/peer", port);
    char *su_ca = uri_plus("peer=1&peer_check=3s&peer_ca=%s/ca.pem", dir);
    char *su_sys = uri_plus("peer=1&peer_check=3s");
    reign_factory *fh = open_factory(hu, "tls-holder", 1000, &ch);
    char res[96], name[96];
    snprintf(res, sizeof res, "peer-tls/%ld", (long)getpid());
    snprintf(name, sizeof name, "peer-tls~2F%ld", (long)getpid());
    reign_election *eh = NULL, *ea = NULL, *eb = NULL;
    CHECK_OK(reign_election_new(fh, res, &eh), "new");
    CHECK_OK(reign_election_wait(eh, 10000), "holder wait");
    uint64_t term = 0;
    CHECK_OK(reign_election_term(eh, &term), "term");
    /* the application's answer, as a file the server sends */
    char path[256];
    snprintf(path, sizeof path, "%s/reign/peer/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"resource\":\"%s\",\"master\":true,\"term\":%" PRIu64 ",\"instance\":\"%s\"}",
            name, term, reign_factory_instance_id(fh));
    fclose(f);
    /* the server is up when it accepts */
    int64_t until = now_ms() + 10000;
    for (;;) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = connect(c, (struct sockaddr *)&a, sizeof a);
        close(c);
        if (rc == 0) {
            break;
        }
        assert_true(now_ms() < until);
        pause_ms(20);
    }
    reign_factory *fa_ = open_factory(su_ca, "tls-with-ca", RETRY_MS, &ca);
    reign_factory *fb = open_factory(su_sys, "tls-system-ca", RETRY_MS, &cb);
    CHECK_OK(reign_election_new(fa_, res, &ea), "new");
    CHECK_OK(reign_election_new(fb, res, &eb), "new");
    CHECK_OK(reign_election_start(ea), "start");
    CHECK_OK(reign_election_start(eb), "start");
    pause_ms(500);
    long ga = atomic_load(&ca.gets), gb = atomic_load(&cb.gets);
    long aa = atomic_load(&ca.peer_asks), ab = atomic_load(&cb.peer_asks);
    const int64_t window = 4000;
    never_master_for(ea, window);
    ga = atomic_load(&ca.gets) - ga;
    gb = atomic_load(&cb.gets) - gb;
    aa = atomic_load(&ca.peer_asks) - aa;
    ab = atomic_load(&cb.peer_asks) - ab;
    print_message("s3 peer mode over https (%" PRId64 " ms, retry %d ms): with peer_ca %ld GETs, "
                  "%ld asks; with the system's CAs %ld GETs, %ld asks\n",
                  window, RETRY_MS, ga, aa, gb, ab);
    assert_false(reign_election_is_master(eb));
    /* trusted: reads skipped (one per peer_check at most) */
    assert_true(ga <= window / 3000 + 1);
    assert_true(aa >= window / RETRY_MS / 2);
    /* not trusted (an unknown CA): back to S3 at every retry */
    assert_true(gb >= window / RETRY_MS / 2);
    assert_true(ab >= 1);
    CHECK_OK(reign_election_close(ea), "close");
    CHECK_OK(reign_election_close(eb), "close");
    CHECK_OK(reign_election_close(eh), "close");
    CHECK_OK(reign_factory_close(fa_), "close");
    CHECK_OK(reign_factory_close(fb), "close");
    CHECK_OK(reign_factory_close(fh), "close");
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(hu);
    free(su_ca);
    free(su_sys);
}

/* ---- URI parameters ---------------------------------------------------------------------- */

static void expect_refused(const char *more, const char *needle)
{
    char *u = uri_plus("%s", more);
    reign_options o = REIGN_OPTIONS_INIT;
    reign_factory *f = NULL;
    int rc = reign_factory_open(u, &o, &f);
    const char *err = reign_last_error();
    if (rc != REIGN_EURI || strstr(err, needle) == NULL) {
        print_error("open ...&%s: got %s \"%s\"; wanted EURI with \"%s\"\n", more,
                    reign_status_str(rc), err, needle);
        reign_factory_close(f);
        fail();
    }
    assert_null(strstr(err, getenv("AWS_SECRET_ACCESS_KEY")));
    free(u);
}

static void test_bad_peer_parameters_are_refused_naming_them(void **state)
{
    (void)state;
    expect_refused("peer=maybe", "peer=maybe");
    expect_refused("peer_listen=localhost:80", "peer_listen=localhost:80");
    expect_refused("peer_listen=127.0.0.1", "peer_listen=127.0.0.1");
    expect_refused("peer_listen=127.0.0.1:70000", "peer_listen=127.0.0.1:70000");
    expect_refused("peer_listen=0.0.0.0:0", "peer_url=");
    expect_refused("peer_url=ftp://h/x", "http:// or https://");
    expect_refused("peer_url=http://u:p@h/x", "user or password");
    expect_refused("peer_url=http://h/x?a=b", "no query");
    expect_refused("peer_check=1s", "add peer=1");
    expect_refused("peer=1&peer_check=10", "peer_check=10");
    expect_refused("peer=1&peer_ca=/no/such/ca.pem", "peer_ca=/no/such/ca.pem cannot be read");
}

int main(int argc, char **argv)
{
    g_self = argv[0];
    g_uri = getenv("REIGN_TEST_S3_URI");
    g_ttl_ms = env_num("REIGN_TEST_S3_TTL_MS", 1000);
    g_window_ms = env_num("REIGN_TEST_S3_PEER_WINDOW_MS", 60000);
    int skip = s3_test_skip(argc, argv, "peer", "s3.peer");
    if (skip != 0) {
        return skip;
    }
    if (argc == 4 && strcmp(argv[1], "hold") == 0) {
        return holder_main(argv[2], argv[3]);
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_peer_parameters_are_refused_naming_them),
        cmocka_unit_test(
            test_with_peer_mode_a_standby_reads_s3_at_most_twice_a_minute_while_the_master_answers),
        cmocka_unit_test(test_an_application_serving_reign_s3_peer_answer_saves_the_same_reads),
        cmocka_unit_test(
            test_a_stalled_endpoint_sends_the_standby_back_to_s3_and_never_makes_it_master_early),
        cmocka_unit_test(test_an_endpoint_lying_about_the_term_makes_the_standby_read_s3),
        cmocka_unit_test(
            test_an_endpoint_claiming_mastership_after_its_holder_died_delays_but_never_blocks),
        cmocka_unit_test(test_an_endpoint_that_is_not_there_sends_the_standby_back_to_s3),
        cmocka_unit_test(test_an_https_endpoint_is_trusted_only_with_the_ca_of_peer_ca),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
