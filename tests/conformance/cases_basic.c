/* Conformance cases on one or two instances in one process: electing,
 * agreeing on the master, handing over on resign, waiting, closing, the
 * lost callback and terms across releases. */
#include "conf.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void test_a_new_election_is_not_master_and_has_no_term(void **state)
{
    (void)state;
    reign_factory *f = conf_factory("A");
    reign_election *e = conf_election(f, conf_resource("fresh"));
    CONF_CHECK(!reign_election_is_master(e), "a new, unstarted election reports is_master=true");
    uint64_t term = 12345;
    CONF_EXPECT_STATUS(REIGN_ENOTMASTER, reign_election_term(e, &term),
                       "reign_election_term of an unstarted election");
    CONF_CHECK(term == 12345, "term was written (%" PRIu64 ") although the call failed", term);
}

void test_a_lone_candidate_becomes_master_and_is_named_current_master(void **state)
{
    (void)state;
    reign_options o = conf_options("A");
    reign_factory *f = conf_factory_opts(&o);
    const char *res = conf_resource("lone");
    reign_election *e = conf_election(f, res);
    int64_t t0 = conf_now_ns();
    CONF_OK(reign_election_wait(e, conf_acquire_timeout_ms()), "reign_election_wait(%s)", res);
    print_message("conformance[%s]:   became master in %.2f ms\n", conf.backend,
                  conf_ms(conf_now_ns() - t0));
    CONF_CHECK(reign_election_is_master(e), "is_master is false right after wait returned OK");
    uint64_t term = conf_term(e);
    CONF_CHECK(term > 0, "term of a fresh mastership is 0");
    conf_expect_master(e, f, term, "lone candidate");

    reign_master *m = NULL;
    CONF_OK(reign_factory_current_master(f, res, &m), "reign_factory_current_master(%s)", res);
    char meta[256];
    snprintf(meta, sizeof meta, "%s", m->metadata ? m->metadata : "(null)");
    reign_master_free(m);
    CONF_CHECK(strcmp(meta, o.metadata) == 0, "current master's metadata is \"%s\", expected \"%s\"",
               meta, o.metadata);
}

void test_a_second_election_for_one_resource_in_one_factory_is_ebusy(void **state)
{
    (void)state;
    reign_factory *f = conf_factory("A");
    const char *res = conf_resource("twice");
    conf_election(f, res);
    reign_election *e2 = NULL;
    CONF_EXPECT_STATUS(REIGN_EBUSY, reign_election_new(f, res, &e2),
                       "second reign_election_new(%s) in one factory", res);
    CONF_CHECK(e2 == NULL, "out was set although the call failed");
}

void test_an_unknown_uri_parameter_is_refused_with_euri(void **state)
{
    (void)state;
    char uri[1024];
    snprintf(uri, sizeof uri, "%s%sconformance_no_such_param=1", conf.uri,
             strchr(conf.uri, '?') ? "&" : "?");
    reign_options o = conf_options("A");
    reign_factory *f = NULL;
    int rc = reign_factory_open(uri, &o, &f);
    char err[1024];
    conf_copy_last_error(err, sizeof err);
    if (rc == REIGN_OK)
        reign_factory_close(f);
    CONF_EXPECT_STATUS(REIGN_EURI, rc, "reign_factory_open(%s)", uri);
    CONF_CHECK(strstr(err, "conformance_no_such_param") != NULL,
               "the message does not name the unknown parameter: \"%s\"", err);
    print_message("conformance[%s]:   refused: %s\n", conf.backend, err);
}

/* ---- two instances ------------------------------------------------------------ */

typedef struct pair {
    reign_election *a, *b;
} pair;

static bool either_master(void *ctx)
{
    pair *p = ctx;
    return reign_election_is_master(p->a) || reign_election_is_master(p->b);
}

void test_two_instances_elect_exactly_one_master_and_agree_on_it(void **state)
{
    (void)state;
    CONF_NEED_CONTENTION();
    const char *res = conf_resource("two");
    reign_factory *fa = conf_factory("A");
    reign_factory *fb = conf_factory("B");
    reign_election *ea = conf_election(fa, res);
    reign_election *eb = conf_election(fb, res);
    CONF_OK(reign_election_start(ea), "start A");
    CONF_OK(reign_election_start(eb), "start B");
    pair p = {ea, eb};
    CONF_CHECK(conf_wait_until(either_master, &p, conf_acquire_timeout_ms(), 200),
               "neither A nor B became master within %" PRId64 " ms; current master: %s",
               conf_acquire_timeout_ms(), conf_describe_master(ea));
    bool a = reign_election_is_master(ea), b = reign_election_is_master(eb);
    CONF_CHECK(!(a && b), "both instances are master at once (A=%d B=%d)", a, b);
    reign_election *winner = a ? ea : eb, *loser = a ? eb : ea;
    reign_factory *fw = a ? fa : fb;
    uint64_t term = conf_term(winner);
    /* Both ask the backend; both must name the winner with its term. */
    conf_expect_master(winner, fw, term, "asked by the winner");
    conf_expect_master(loser, fw, term, "asked by the loser");
    CONF_CHECK(!reign_election_is_master(loser), "the loser became master while the winner holds");
    CONF_CHECK(reign_election_is_master(winner), "the winner lost mastership without cause");
    print_message("conformance[%s]:   master is %s with term %" PRIu64 "\n", conf.backend,
                  a ? "A" : "B", term);
}

void test_resign_hands_mastership_over_with_a_higher_term_within_one_second(void **state)
{
    (void)state;
    CONF_NEED_CONTENTION();
    const char *res = conf_resource("handoff");
    reign_factory *fa = conf_factory("A");
    reign_factory *fb = conf_factory("B");
    reign_election *ea = conf_election(fa, res);
    reign_election *eb = conf_election(fb, res);
    CONF_OK(reign_election_wait(ea, conf_acquire_timeout_ms()), "A: wait");
    uint64_t ta = conf_term(ea);
    CONF_OK(reign_election_start(eb), "B: start");
    conf_wait_candidate(fb, eb);
    CONF_CHECK(!reign_election_is_master(eb), "B is master while A holds");

    int64_t t0 = conf_now_ns();
    CONF_OK(reign_election_resign(ea), "A: resign");
    int64_t t_resigned = conf_now_ns();
    CONF_CHECK(!reign_election_is_master(ea), "A still believes it is master after resign returned");
    /* Fine-grained poll: the handoff is often well under a millisecond. The
     * last sample that still saw B not master bounds the handoff from below:
     * only that one proves a slow handoff on a machine that may deschedule
     * this thread. */
    int64_t until = t0 + 2000 * CONF_NS_PER_MS, t1 = 0, t_last_not = t0;
    while (conf_now_ns() < until) {
        bool m = reign_election_is_master(eb);
        int64_t now = conf_now_ns();
        if (m) {
            t1 = now;
            break;
        }
        t_last_not = now;
        conf_poll_pause_us(20);
    }
    CONF_CHECK(t1 != 0, "B did not become master within 2 s of A's resign (retry %" PRId64 " ms); "
               "current master: %s", conf.retry_ms, conf_describe_master(eb));
    double handoff = conf_ms(t1 - t0), proven = conf_ms(t_last_not - t0);
    print_message("conformance[%s]:   handoff %.2f ms (resign call %.2f ms; B last seen not master "
                  "at %.2f ms)\n", conf.backend, handoff, conf_ms(t_resigned - t0), proven);
    conf_metric_set(CONF_M_HANDOFF, handoff);
    CONF_CHECK(proven <= 1000.0, "B was still not master %.2f ms after A's resign: more than "
               "1000 ms", proven);
    uint64_t tb = conf_term(eb);
    CONF_CHECK(tb > ta, "B's term %" PRIu64 " is not greater than A's %" PRIu64, tb, ta);
    conf_expect_master(ea, fb, tb, "after the handoff, asked by A");
}

void test_wait_on_a_held_resource_times_out_with_etimedout(void **state)
{
    (void)state;
    CONF_NEED_CONTENTION();
    const char *res = conf_resource("held");
    reign_factory *fa = conf_factory("A");
    reign_factory *fb = conf_factory("B");
    reign_election *ea = conf_election(fa, res);
    reign_election *eb = conf_election(fb, res);
    CONF_OK(reign_election_wait(ea, conf_acquire_timeout_ms()), "A: wait");
    const int64_t timeout = 400;
    int64_t t0 = conf_now_ns();
    CONF_EXPECT_STATUS(REIGN_ETIMEDOUT, reign_election_wait(eb, timeout),
                       "B: reign_election_wait(%" PRId64 " ms) on a held resource", timeout);
    double took = conf_ms(conf_now_ns() - t0);
    print_message("conformance[%s]:   wait(%" PRId64 " ms) returned after %.1f ms\n", conf.backend,
                  timeout, took);
    CONF_CHECK(took >= (double)timeout - 0.5, "returned after %.1f ms, before the %" PRId64
               " ms timeout", took, timeout);
    CONF_CHECK(took <= (double)timeout + 500.0, "returned after %.1f ms, more than 500 ms past the %"
               PRId64 " ms timeout", took, timeout);
    CONF_CHECK(!reign_election_is_master(eb), "B is master although wait timed out");
    CONF_CHECK(reign_election_is_master(ea), "A lost mastership while B waited");
}

/* ---- close while another thread waits ------------------------------------------- */

typedef struct waiter {
    reign_election *e;
    _Atomic pid_t tid;
    _Atomic int entered;
    _Atomic int done;
    int rc;
    char err[512];
    int64_t returned_ns;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    atomic_store(&w->tid, (pid_t)syscall(SYS_gettid));
    atomic_store(&w->entered, 1);
    /* Bounded, so that a close that fails to wake us ends as ETIMEDOUT. */
    w->rc = reign_election_wait(w->e, 10000);
    snprintf(w->err, sizeof w->err, "%s", reign_last_error());
    w->returned_ns = conf_now_ns();
    atomic_store(&w->done, 1);
    return NULL;
}

/* Blocked in the kernel ('S' in /proc/self/task/TID/stat). */
static bool thread_sleeping(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", (long)tid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && p[2] == 'S';
}

typedef struct sleep_watch {
    waiter *w;
    int streak;
} sleep_watch;

/* The waiter is inside wait: asleep in the kernel for 20 samples in a row.
 * reign.h offers no "waiters" count, and closing an election that a thread
 * is only about to wait on would be a use after free, so the test must know
 * the thread is parked on the condition, not merely about to enter. A mutex
 * is held for microseconds; 20 ms of sleep means the condition wait. */
static bool waiter_parked(void *ctx)
{
    sleep_watch *s = ctx;
    if (atomic_load(&s->w->done))
        return true;
    if (atomic_load(&s->w->entered) && thread_sleeping(atomic_load(&s->w->tid)))
        s->streak++;
    else
        s->streak = 0;
    return s->streak >= 20;
}

void test_close_wakes_a_waiting_thread_with_eclosed(void **state)
{
    (void)state;
    CONF_NEED_CONTENTION();
    const char *res = conf_resource("closewait");
    reign_factory *fa = conf_factory("A");
    reign_factory *fb = conf_factory("B");
    reign_election *ea = conf_election(fa, res);
    reign_election *eb = conf_election(fb, res);
    CONF_OK(reign_election_wait(ea, conf_acquire_timeout_ms()), "A: wait");

    waiter w = {.e = eb};
    pthread_t th;
    CONF_CHECK(pthread_create(&th, NULL, waiter_main, &w) == 0, "pthread_create failed");
    sleep_watch sw = {&w, 0};
    bool parked = conf_wait_until(waiter_parked, &sw, 5000, 1000);
    if (!parked || atomic_load(&w.done)) {
        pthread_join(th, NULL);
        CONF_CHECK(parked && !atomic_load(&w.done),
                   "the waiting thread did not park in wait (done=%d rc=%s: %s)",
                   atomic_load(&w.done), reign_status_str(w.rc), w.err);
    }
    int64_t t0 = conf_now_ns();
    conf_election_close(eb);
    int64_t t_closed = conf_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    int jr = pthread_timedjoin_np(th, NULL, &ts);
    CONF_CHECK(jr == 0, "the waiting thread did not return within 5 s of close: %s", strerror(jr));
    print_message("conformance[%s]:   close took %.2f ms; waiter returned %.2f ms after close "
                  "began\n", conf.backend, conf_ms(t_closed - t0), conf_ms(w.returned_ns - t0));
    CONF_EXPECT_STATUS(REIGN_ECLOSED, w.rc, "the waiter's reign_election_wait (message \"%s\")",
                       w.err);
}

/* ---- the lost callback --------------------------------------------------------------- */

void test_lost_callback_reports_resigned_on_resign(void **state)
{
    (void)state;
    reign_factory *f = conf_factory("A");
    reign_election *e = conf_election(f, conf_resource("resigned"));
    static conf_events log_storage;
    conf_events *log = &log_storage;
    memset(log, 0, sizeof *log);
    CONF_OK(reign_election_set_callback(e, conf_events_cb, log), "set_callback");
    CONF_OK(reign_election_wait(e, conf_acquire_timeout_ms()), "wait");
    uint64_t term = conf_term(e);
    CONF_OK(reign_election_resign(e), "resign");
    int i = conf_events_wait_lost(log, 2000, "after resign");
    conf_events snap;
    conf_events_snapshot(log, &snap);
    conf_election_close(e);
    CONF_CHECK(i >= 1 && snap.ev[0].kind == REIGN_EVENT_GAINED && snap.ev[0].term == term,
               "the first event is not GAINED with term %" PRIu64 " (events: %d, first kind %d "
               "term %" PRIu64 ")", term, snap.n, snap.ev[0].kind, snap.ev[0].term);
    CONF_CHECK(snap.ev[i].reason == REIGN_LOST_RESIGNED,
               "LOST reason is %d, expected REIGN_LOST_RESIGNED (%d)", snap.ev[i].reason,
               REIGN_LOST_RESIGNED);
    CONF_CHECK(snap.ev[i].term == term, "LOST term is %" PRIu64 ", expected %" PRIu64,
               snap.ev[i].term, term);
}

void test_lost_callback_reports_expired_when_the_mem_store_stalls(void **state)
{
    (void)state;
    if (!conf.mem_ctl)
        CONF_SKIP("needs the mem:// test hooks (REIGN_CONF_BACKEND=mem, built with "
                  "REIGN_WITH_MEM, no REIGN_CONF_SERVER_CTL): backend is %s", conf.backend);
    reign_factory *f = conf_factory("A");
    reign_election *e = conf_election(f, conf_resource("stalled"));
    static conf_events log_storage;
    conf_events *log = &log_storage;
    memset(log, 0, sizeof *log);
    CONF_OK(reign_election_set_callback(e, conf_events_cb, log), "set_callback");
    CONF_OK(reign_election_wait(e, conf_acquire_timeout_ms()), "wait");
    uint64_t term = conf_term(e);
    conf_ctl("pause"); /* reign_mem_set_fault(store, REIGN_MEM_FAULT_STALL) */
    int64_t t0 = conf_now_ns();
    int64_t t_true = 0;
    int64_t t_false = conf_wait_not_master(e, conf.ttl_ms + 2000, "with the store stalled", &t_true);
    double after = conf_ms(t_false - t0);
    double last_true = t_true != 0 ? conf_ms(t_true - t0) : 0.0;
    print_message("conformance[%s]:   belief ended %.1f ms after the stall began (last seen true at "
                  "%.1f ms; ttl %" PRId64 " ms)\n", conf.backend, after, last_true, conf.ttl_ms);
    int i = conf_events_wait_lost(log, 2 * conf.ttl_ms + 2000, "with the store stalled");
    conf_events snap;
    conf_events_snapshot(log, &snap);
    conf_ctl("resume");
    conf_election_close(e);
    CONF_CHECK(last_true <= (double)conf.ttl_ms + 50.0, "is_master was still true %.1f ms into the "
               "stall, past the %" PRId64 " ms TTL", last_true, conf.ttl_ms);
    CONF_CHECK(snap.ev[i].reason == REIGN_LOST_EXPIRED,
               "LOST reason is %d, expected REIGN_LOST_EXPIRED (%d)", snap.ev[i].reason,
               REIGN_LOST_EXPIRED);
    CONF_CHECK(snap.ev[i].term == term, "LOST term is %" PRIu64 ", expected %" PRIu64,
               snap.ev[i].term, term);
}

/* ---- terms ------------------------------------------------------------------------------ */

void test_terms_increase_across_release(void **state)
{
    (void)state;
    const char *res = conf_resource("terms");
    reign_factory *fa = conf_factory("A");
    reign_election *ea = conf_election(fa, res);
    CONF_OK(reign_election_wait(ea, conf_acquire_timeout_ms()), "A: first wait");
    uint64_t t1 = conf_term(ea);
    CONF_OK(reign_election_resign(ea), "A: resign");
    if (conf_has_cap("nocontention")) {
        /* One instance only: a second instance's terms are its own. */
        CONF_OK(reign_election_wait(ea, conf_acquire_timeout_ms()), "A: second wait");
        uint64_t t2 = conf_term(ea);
        print_message("conformance[%s]:   terms %" PRIu64 " → %" PRIu64 " (one instance: "
                      "nocontention)\n", conf.backend, t1, t2);
        CONF_CHECK(t2 > t1, "term after release %" PRIu64 " is not greater than %" PRIu64, t2, t1);
        return;
    }
    reign_factory *fb = conf_factory("B");
    reign_election *eb = conf_election(fb, res);
    CONF_OK(reign_election_wait(eb, conf_acquire_timeout_ms()), "B: wait");
    uint64_t t2 = conf_term(eb);
    CONF_OK(reign_election_resign(eb), "B: resign");
    CONF_OK(reign_election_wait(ea, conf_acquire_timeout_ms()), "A: second wait");
    uint64_t t3 = conf_term(ea);
    print_message("conformance[%s]:   terms A %" PRIu64 " → B %" PRIu64 " → A %" PRIu64 "\n",
                  conf.backend, t1, t2, t3);
    CONF_CHECK(t2 > t1, "B's term %" PRIu64 " is not greater than A's earlier %" PRIu64, t2, t1);
    CONF_CHECK(t3 > t2, "A's new term %" PRIu64 " is not greater than B's %" PRIu64, t3, t2);
}
