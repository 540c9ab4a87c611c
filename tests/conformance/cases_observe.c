/* Observer cases (reign.h §4c): an observer in its own factory sees every
 * change of master — acquire, metadata, handoff, crash takeover, release —
 * in order and with the right terms, also across a server restart.
 *
 * Backends that push (all but those with caps "nopush") are observed with a
 * poll interval of a minute and no repair reads, so within the cases'
 * timeouts a change can only have come from a notification; "nopush"
 * backends are polled every 100 ms. */
#include "conf.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long one change may take to show: well under the 60 s poll. */
#define OBS_WAIT_MS 10000

static reign_observer *obs_open(reign_factory *f, const char *res)
{
    reign_observer_config c = REIGN_OBSERVER_CONFIG_INIT;
    const char *ids[] = {res};
    c.ids = ids;
    c.n_ids = 1;
    bool push = !conf_has_cap("nopush");
    c.poll_interval_ms = push ? 60000 : 100;
    c.repair_interval_ms = -1;
    reign_observer *o = NULL;
    CONF_OK(reign_observer_new(f, &c, &o), "observer_new %s", res);
    conf_track_observer(o);
    return o;
}

/* Take the next change; assert one came. */
static reign_change *obs_next(reign_observer *o, const char *what)
{
    reign_change *c = NULL;
    int rc = reign_observer_take(o, OBS_WAIT_MS, &c);
    CONF_EXPECT_STATUS(REIGN_OK, rc, "observer: waiting for %s", what);
    return c;
}

/* The next change that is not "none" (a release seen before the successor
 * took over is allowed, and must carry the last term). */
static reign_change *obs_next_held(reign_observer *o, uint64_t prev_term, const char *what)
{
    reign_change *c = obs_next(o, what);
    if (!c->held) {
        CONF_CHECK(c->term == prev_term, "%s: the release between shows term %" PRIu64
                   ", not %" PRIu64, what, c->term, prev_term);
        reign_change_free(c);
        c = obs_next(o, what);
    }
    CONF_CHECK(c->held, "%s: expected a holder, the observer says nobody", what);
    return c;
}

static void obs_expect(const reign_change *c, reign_factory *f, uint64_t term,
                       const char *metadata, const char *what)
{
    CONF_CHECK(c->held, "%s: expected %s, the observer says nobody", what,
               reign_factory_instance_id(f));
    CONF_CHECK(strcmp(c->instance_id, reign_factory_instance_id(f)) == 0,
               "%s: holder %s, expected %s", what, c->instance_id, reign_factory_instance_id(f));
    CONF_CHECK(c->term == term, "%s: term %" PRIu64 ", expected %" PRIu64, what, c->term, term);
    if (metadata != NULL)
        CONF_CHECK(strcmp(c->metadata, metadata) == 0, "%s: metadata \"%s\", expected \"%s\"",
                   what, c->metadata, metadata);
}

static void obs_expect_quiet(reign_observer *o, const char *what)
{
    reign_change *c = NULL;
    int rc = reign_observer_take(o, 0, &c);
    if (rc == REIGN_OK) {
        CONF_CHECK(false, "%s: unexpected change: %s term %" PRIu64, what,
                   c->held ? c->instance_id : "nobody", c->term);
        reign_change_free(c);
    }
}

static void obs_expect_pushed(reign_observer *o)
{
    reign_observer_status st;
    CONF_OK(reign_observer_status_get(o, &st), "observer_status");
    if (!conf_has_cap("nopush"))
        CONF_CHECK(st.pushed, "the backend should push changes to observers (caps lack nopush)");
    CONF_CHECK(st.failures == 0, "%u reads in a row failed (%s)", st.failures,
               reign_status_str(st.last_error_status));
}

static reign_factory *factory_with_metadata(const char *who, const char *metadata)
{
    reign_options o = conf_options(who);
    o.metadata = metadata;
    return conf_factory_opts(&o);
}

void test_an_observer_sees_acquire_metadata_handoff_and_release_in_order(void **state)
{
    (void)state;
    CONF_NEED_CONTENTION();
    const char *res = conf_resource("observe");
    reign_factory *fo = conf_factory("O");
    reign_factory *fa = factory_with_metadata("A", "meta-A");
    reign_factory *fb = factory_with_metadata("B", "meta-B");
    reign_observer *o = obs_open(fo, res);

    reign_change *c = obs_next(o, "the initial read");
    CONF_CHECK(c->initial && !c->held, "initial: expected nobody, got %s",
               c->held ? c->instance_id : "nobody");
    reign_change_free(c);

    reign_election *ea = conf_election(fa, res);
    CONF_OK(reign_election_wait(ea, conf_acquire_timeout_ms()), "A: wait");
    int64_t t_gained = reign_monotonic_ms();
    uint64_t ta = conf_term(ea);
    c = obs_next(o, "A's acquisition");
    obs_expect(c, fa, ta, "meta-A", "A's acquisition");
    print_message("conformance[%s]:   observer saw A (term %" PRIu64 ") %lld ms after its wait "
                  "returned\n", conf.backend, ta, (long long)(c->seen_ms - t_gained));
    reign_change_free(c);

    int rc = reign_election_set_metadata(ea, "meta-A2");
    if (rc == REIGN_ENOTSUP) {
        print_message("conformance[%s]:   set_metadata: not supported by this backend (%s)\n",
                      conf.backend, reign_last_error());
    } else {
        CONF_EXPECT_STATUS(REIGN_OK, rc, "A: set_metadata");
        CONF_CHECK(conf_term(ea) == ta, "set_metadata moved the term from %" PRIu64 " to %" PRIu64,
                   ta, conf_term(ea));
        c = obs_next(o, "A's new metadata");
        obs_expect(c, fa, ta, "meta-A2", "A's new metadata");
        reign_change_free(c);
    }

    reign_election *eb = conf_election(fb, res);
    CONF_OK(reign_election_start(eb), "B: start");
    conf_wait_candidate(fb, eb);
    CONF_OK(reign_election_resign(ea), "A: resign");
    CONF_OK(reign_election_wait(eb, conf_acquire_timeout_ms()), "B: wait");
    uint64_t tb = conf_term(eb);
    CONF_CHECK(tb > ta, "B's term %" PRIu64 " is not above A's %" PRIu64, tb, ta);
    c = obs_next_held(o, ta, "the handoff to B");
    obs_expect(c, fb, tb, "meta-B", "the handoff to B");
    reign_change_free(c);

    CONF_OK(reign_election_resign(eb), "B: resign");
    c = obs_next(o, "B's release");
    CONF_CHECK(!c->held && c->term == tb, "B's release: expected nobody after term %" PRIu64
               ", got %s term %" PRIu64, tb, c->held ? c->instance_id : "nobody", c->term);
    reign_change_free(c);
    obs_expect_quiet(o, "after the release");
    obs_expect_pushed(o);
    conf_observer_free(o);
}

void test_an_observer_sees_a_killed_holder_replaced_with_a_higher_term(void **state)
{
    (void)state;
    CONF_NEED_PROCESSES();
    const char *res = conf_resource("observe-kill");
    /* The holder is forked before this process starts any thread of its
     * own (forking a threaded process is unsafe, and TSan refuses it), so
     * the observer's first read already finds it. */
    conf_child ch;
    conf_child_msg acq;
    conf_child_start(&ch, res, "child", &acq);
    reign_factory *fo = conf_factory("O");
    reign_observer *o = obs_open(fo, res);
    reign_change *c = obs_next(o, "the initial read");
    CONF_CHECK(c->initial && c->held && strcmp(c->instance_id, acq.instance_id) == 0 &&
                   c->term == acq.term,
               "child: expected %s term %" PRIu64 ", got %s term %" PRIu64, acq.instance_id,
               acq.term, c->held ? c->instance_id : "nobody", c->term);
    reign_change_free(c);

    reign_factory *fp = conf_factory("parent");
    reign_election *e = conf_election(fp, res);
    CONF_OK(reign_election_start(e), "parent: start");
    conf_wait_candidate(fp, e);
    CONF_CHECK(kill(ch.pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    conf_child_reap(&ch, 5000);
    CONF_OK(reign_election_wait(e, conf_acquire_timeout_ms()), "parent: wait after the kill");
    uint64_t term = conf_term(e);
    CONF_CHECK(term > acq.term, "takeover term %" PRIu64 " not above %" PRIu64, term, acq.term);
    c = obs_next_held(o, acq.term, "the takeover");
    obs_expect(c, fp, term, NULL, "the takeover");
    reign_change_free(c);
    obs_expect_quiet(o, "after the takeover");
    obs_expect_pushed(o);
    conf_observer_free(o);
}

void test_an_observer_follows_changes_across_a_server_restart(void **state)
{
    (void)state;
    CONF_NEED_CTL();
    CONF_NEED_CONTENTION();
    const char *res = conf_resource("observe-restart");
    reign_factory *fo = conf_factory("O");
    reign_factory *fa = conf_factory("A");
    reign_factory *fb = conf_factory("B");
    reign_observer *o = obs_open(fo, res);
    reign_change *c = obs_next(o, "the initial read");
    reign_change_free(c);
    reign_election *ea = conf_election(fa, res);
    CONF_OK(reign_election_wait(ea, conf_acquire_timeout_ms()), "A: wait");
    uint64_t ta = conf_term(ea);
    c = obs_next(o, "A's acquisition");
    obs_expect(c, fa, ta, NULL, "A's acquisition");
    reign_change_free(c);

    conf_ctl("restart");
    /* Whatever happened during the restart, someone is master again and
     * the observer must end up agreeing with the backend. */
    reign_election *eb = conf_election(fb, res);
    CONF_OK(reign_election_start(eb), "B: start");
    int64_t timeout = 2 * conf.ttl_ms + 20000;
    int64_t until = conf_now_ns() + timeout * CONF_NS_PER_MS;
    CONF_OK(reign_election_start(ea), "A: start"); /* if it lost its lease meanwhile */
    /* Settled: exactly one believes it is master (a backend that lost its
     * data, mem://, lets a new holder in while the old belief runs to its
     * deadline), and the other, a candidate, has heard that holder's term
     * from the backend (its own ACQUIRE answered HELD; connections may
     * still be coming back, so this waits rather than reads). */
    reign_election *holder = NULL, *other = NULL;
    reign_factory *fother = NULL;
    uint64_t th = 0;
    bool settled = false;
    while (!settled && conf_now_ns() < until) {
        bool a_m = reign_election_is_master(ea), b_m = reign_election_is_master(eb);
        if (a_m != b_m) {
            holder = a_m ? ea : eb;
            other = a_m ? eb : ea;
            fother = a_m ? fb : fa;
            reign_leader_status ls = {0};
            if (reign_election_term(holder, &th) == REIGN_OK &&
                reign_election_status(other, &ls) == REIGN_OK) {
                settled = ls.held && !ls.self && ls.term == th;
                reign_leader_status_clear(&ls);
            }
        }
        if (!settled)
            conf_poll_pause_us(10000);
    }
    CONF_CHECK(settled, "no settled master within %" PRId64 " ms of the restart (A %s, B %s)",
               timeout, reign_election_is_master(ea) ? "master" : "not master",
               reign_election_is_master(eb) ? "master" : "not master");

    /* A handoff after the restart: pushed through the new connection. */
    /* A RELEASE that meets a link still coming back fails (the resign says
     * so): then the other takes over when the lease runs out. */
    int resigned = reign_election_resign(holder);
    CONF_CHECK(resigned == REIGN_OK || resigned == REIGN_EBACKEND, "resign after the restart: %s",
               reign_last_error());
    CONF_OK(reign_election_wait(other, conf_acquire_timeout_ms()), "the other: wait");
    uint64_t to = conf_term(other);
    CONF_CHECK(to > th, "term after the restart went from %" PRIu64 " to %" PRIu64, th, to);
    int64_t t_deadline = conf_now_ns() + OBS_WAIT_MS * CONF_NS_PER_MS;
    bool seen = false;
    uint64_t last = 0;
    while (!seen && conf_now_ns() < t_deadline) {
        c = NULL;
        if (reign_observer_take(o, 100, &c) != REIGN_OK)
            continue;
        CONF_CHECK(c->term >= last, "terms went backwards at the observer: %" PRIu64 " after %"
                   PRIu64, c->term, last);
        last = c->term;
        seen = c->held && c->term == to &&
               strcmp(c->instance_id, reign_factory_instance_id(fother)) == 0;
        reign_change_free(c);
    }
    CONF_CHECK(seen, "the observer never saw %s take term %" PRIu64 " after the restart (last "
               "term seen %" PRIu64 ")", reign_factory_instance_id(fother), to, last);
    obs_expect_pushed(o);
    conf_observer_free(o);
}
