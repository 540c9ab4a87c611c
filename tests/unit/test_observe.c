/* Unit tests of observers (core/observe.c) and reign_election_set_metadata
 * on mem://, whose store pushes every change: the observers here poll
 * never (a poll interval of a day, no repair reads), so each change they
 * report can only have come from a notification. Every wait has a
 * deadline. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reign/mem.h"
#include "reign/reign.h"

#define WAIT_MS 5000
#define DAY_MS (INT64_C(86400) * 1000)

static reign_factory *open_mem(const char *store, const char *id, const char *metadata)
{
    char uri[128];
    snprintf(uri, sizeof uri, "mem://%s", store);
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = id;
    o.metadata = metadata;
    o.ttl_ms = 60000;
    o.retry_interval_ms = 60000; /* candidates move on notifications only */
    reign_factory *f = NULL;
    int rc = reign_factory_open(uri, &o, &f);
    if (rc != REIGN_OK)
        fail_msg("open %s: %s", uri, reign_last_error());
    return f;
}

static reign_observer *observe_queue(reign_factory *f, const char *const *ids, size_t n,
                                     const char *prefix)
{
    reign_observer_config c = REIGN_OBSERVER_CONFIG_INIT;
    c.ids = ids;
    c.n_ids = n;
    c.prefix = prefix;
    c.poll_interval_ms = DAY_MS;
    c.repair_interval_ms = -1;
    reign_observer *o = NULL;
    int rc = reign_observer_new(f, &c, &o);
    if (rc != REIGN_OK)
        fail_msg("observer_new: %s", reign_last_error());
    return o;
}

/* The next change must be (resource, holder or NULL for none, term, metadata). */
static void expect_change(reign_observer *o, const char *res, const char *holder, uint64_t term,
                          const char *metadata)
{
    reign_change *c = NULL;
    int rc = reign_observer_take(o, WAIT_MS, &c);
    if (rc != REIGN_OK)
        fail_msg("waiting for %s %s term %llu: %s", res, holder ? holder : "none",
                 (unsigned long long)term, reign_last_error());
    if (strcmp(c->resource_id, res) != 0 || c->held != (holder != NULL) || c->term != term ||
        (holder != NULL && (strcmp(c->instance_id, holder) != 0 ||
                            strcmp(c->metadata, metadata) != 0)))
        fail_msg("expected %s %s term %llu metadata \"%s\", got %s %s term %llu metadata \"%s\"",
                 res, holder ? holder : "none", (unsigned long long)term, metadata ? metadata : "",
                 c->resource_id, c->held ? c->instance_id : "none", (unsigned long long)c->term,
                 c->held ? c->metadata : "");
    reign_change_free(c);
}

static void expect_quiet(reign_observer *o)
{
    reign_change *c = NULL;
    int rc = reign_observer_take(o, 0, &c);
    if (rc == REIGN_OK)
        fail_msg("unexpected change: %s %s term %llu", c->resource_id,
                 c->held ? c->instance_id : "none", (unsigned long long)c->term);
    assert_int_equal(rc, REIGN_ETIMEDOUT);
}

static void test_observer_sees_acquire_handoff_metadata_release_in_order(void **state)
{
    (void)state;
    reign_factory *fa = open_mem("obs1", "a", "ma");
    reign_factory *fb = open_mem("obs1", "b", "mb");
    reign_factory *fo = open_mem("obs1", "o", "");
    const char *ids[] = {"r"};
    reign_observer *o = observe_queue(fo, ids, 1, NULL);
    expect_change(o, "r", NULL, 0, NULL); /* the initial read */

    reign_election *ea = NULL, *eb = NULL;
    assert_int_equal(reign_election_new(fa, "r", &ea), REIGN_OK);
    assert_int_equal(reign_election_new(fb, "r", &eb), REIGN_OK);
    assert_int_equal(reign_election_wait(ea, WAIT_MS), REIGN_OK);
    expect_change(o, "r", "a", 1, "ma");
    assert_int_equal(reign_election_start(eb), REIGN_OK);

    assert_int_equal(reign_election_set_metadata(ea, "ma2"), REIGN_OK);
    uint64_t term = 0;
    assert_int_equal(reign_election_term(ea, &term), REIGN_OK);
    assert_int_equal(term, 1); /* the term does not move */
    expect_change(o, "r", "a", 1, "ma2");

    /* Handoff: a resigns, b (retrying only on notifications) takes it. */
    assert_int_equal(reign_election_resign(ea), REIGN_OK);
    assert_int_equal(reign_election_wait(eb, WAIT_MS), REIGN_OK);
    reign_change *c = NULL;
    assert_int_equal(reign_observer_take(o, WAIT_MS, &c), REIGN_OK);
    if (!c->held) { /* the release, when read before b took it */
        assert_int_equal(c->term, 1);
        reign_change_free(c);
        assert_int_equal(reign_observer_take(o, WAIT_MS, &c), REIGN_OK);
    }
    assert_true(c->held);
    assert_string_equal(c->instance_id, "b");
    assert_int_equal(c->term, 2);
    assert_string_equal(c->metadata, "mb");
    reign_change_free(c);

    assert_int_equal(reign_election_resign(eb), REIGN_OK);
    expect_change(o, "r", NULL, 2, NULL);
    expect_quiet(o);

    reign_observer_status st;
    assert_int_equal(reign_observer_status_get(o, &st), REIGN_OK);
    assert_true(st.pushed);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.resources, 1);
    assert_true(st.changes >= 5);

    assert_int_equal(reign_election_close(ea), REIGN_OK);
    assert_int_equal(reign_election_close(eb), REIGN_OK);
    /* The factory refuses to close under an open observer. */
    assert_int_equal(reign_factory_close(fo), REIGN_EBUSY);
    reign_observer_free(o);
    assert_int_equal(reign_factory_close(fo), REIGN_OK);
    assert_int_equal(reign_factory_close(fa), REIGN_OK);
    assert_int_equal(reign_factory_close(fb), REIGN_OK);
}

static void test_observer_sees_expiry_as_none(void **state)
{
    (void)state;
    reign_factory *fa = open_mem("obs2", "a", "");
    reign_factory *fo = open_mem("obs2", "o", "");
    const char *ids[] = {"r"};
    reign_observer *o = observe_queue(fo, ids, 1, NULL);
    expect_change(o, "r", NULL, 0, NULL);
    reign_election *ea = NULL;
    assert_int_equal(reign_election_new(fa, "r", &ea), REIGN_OK);
    assert_int_equal(reign_election_wait(ea, WAIT_MS), REIGN_OK);
    expect_change(o, "r", "a", 1, "");
    /* The store ends every lease (as a server that lost its data would). */
    assert_int_equal(reign_mem_expire_all("obs2"), REIGN_OK);
    expect_change(o, "r", NULL, 1, NULL);
    reign_observer_free(o);
    assert_int_equal(reign_election_close(ea), REIGN_OK);
    assert_int_equal(reign_factory_close(fo), REIGN_OK);
    assert_int_equal(reign_factory_close(fa), REIGN_OK);
}

static void test_observer_fd_is_readable_while_changes_wait(void **state)
{
    (void)state;
    reign_factory *fa = open_mem("obs3", "a", "");
    const char *ids[] = {"r"};
    reign_observer *o = observe_queue(fa, ids, 1, NULL);
    int fd = reign_observer_fd(o);
    assert_true(fd >= 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    expect_change(o, "r", NULL, 0, NULL);
    p.revents = 0;
    assert_int_equal(poll(&p, 1, 0), 0); /* taken: not readable */
    reign_election *ea = NULL;
    assert_int_equal(reign_election_new(fa, "r", &ea), REIGN_OK);
    assert_int_equal(reign_election_wait(ea, WAIT_MS), REIGN_OK);
    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    expect_change(o, "r", "a", 1, ""); /* its own factory's mastership too */
    reign_observer_free(o);
    assert_int_equal(reign_election_close(ea), REIGN_OK);
    assert_int_equal(reign_factory_close(fa), REIGN_OK);
}

typedef struct seen {
    int n;
    uint64_t last_term;
} seen;

static void on_change(reign_observer *o, const reign_change *c, void *payload)
{
    (void)o;
    seen *s = payload;
    s->last_term = c->term;
    s->n++;
}

static void test_observer_prefix_and_wait_change_after_time(void **state)
{
    (void)state;
    reign_factory *fa = open_mem("obs4", "a", "");
    reign_factory *fo = open_mem("obs4", "o", "");
    seen s = {0};
    reign_observer_config c = REIGN_OBSERVER_CONFIG_INIT;
    c.prefix = "jobs/";
    c.fn = on_change;
    c.payload = &s;
    c.poll_interval_ms = DAY_MS;
    c.repair_interval_ms = -1;
    reign_observer *o = NULL;
    assert_int_equal(reign_observer_new(fo, &c, &o), REIGN_OK);
    assert_int_equal(reign_observer_fd(o), -1);
    reign_change *ch = NULL;
    assert_int_equal(reign_observer_take(o, 0, &ch), REIGN_ESTATE);
    assert_int_equal(reign_observer_wait_change(o, "other", 0, 0, NULL), REIGN_EINVAL);

    int64_t t0 = reign_monotonic_ms();
    assert_int_equal(reign_observer_wait_change(o, "jobs/1", t0, 0, NULL), REIGN_ETIMEDOUT);
    reign_election *e = NULL, *other = NULL;
    assert_int_equal(reign_election_new(fa, "jobs/1", &e), REIGN_OK);
    assert_int_equal(reign_election_new(fa, "misc", &other), REIGN_OK);
    assert_int_equal(reign_election_wait(other, WAIT_MS), REIGN_OK);
    assert_int_equal(reign_election_wait(e, WAIT_MS), REIGN_OK);
    assert_int_equal(reign_observer_wait_change(o, "jobs/1", t0, WAIT_MS, &ch), REIGN_OK);
    assert_true(ch->held);
    assert_string_equal(ch->instance_id, "a");
    assert_true(ch->seen_ms >= t0);
    reign_change_free(ch);
    reign_observer_status st;
    assert_int_equal(reign_observer_status_get(o, &st), REIGN_OK);
    assert_int_equal(st.resources, 1); /* "misc" is not under the prefix */

    int64_t t1 = reign_monotonic_ms() + 1;
    assert_int_equal(reign_observer_wait_change(o, NULL, t1, 50, NULL), REIGN_ETIMEDOUT);
    assert_int_equal(reign_election_resign(e), REIGN_OK);
    assert_int_equal(reign_observer_wait_change(o, NULL, t1, WAIT_MS, &ch), REIGN_OK);
    assert_false(ch->held);
    reign_change_free(ch);
    reign_observer_free(o);
    assert_true(s.n >= 2);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_election_close(other), REIGN_OK);
    assert_int_equal(reign_factory_close(fo), REIGN_OK);
    assert_int_equal(reign_factory_close(fa), REIGN_OK);
}

static void test_set_metadata_refused_when_not_master_or_unsupported(void **state)
{
    (void)state;
    reign_factory *fa = open_mem("obs5", "a", "");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(fa, "r", &e), REIGN_OK);
    assert_int_equal(reign_election_set_metadata(e, "x"), REIGN_ENOTMASTER);
    assert_int_equal(reign_election_wait(e, WAIT_MS), REIGN_OK);
    char big[REIGN_METADATA_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(reign_election_set_metadata(e, big), REIGN_EINVAL);
    assert_int_equal(reign_election_set_metadata(e, "new"), REIGN_OK);
    reign_master *m = NULL;
    assert_int_equal(reign_election_current_master(e, &m), REIGN_OK);
    assert_string_equal(m->metadata, "new");
    assert_int_equal(m->term, 1);
    reign_master_free(m);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(fa), REIGN_OK);

    reign_factory *fn = NULL;
    assert_int_equal(reign_factory_open("noop://", NULL, &fn), REIGN_OK);
    assert_int_equal(reign_election_new(fn, "r", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, WAIT_MS), REIGN_OK);
    assert_int_equal(reign_election_set_metadata(e, "x"), REIGN_ENOTSUP);
    assert_non_null(strstr(reign_last_error(), "noop"));
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(fn), REIGN_OK);
}

static void test_observer_config_is_checked(void **state)
{
    (void)state;
    reign_factory *f = open_mem("obs6", "a", "");
    reign_observer *o = NULL;
    reign_observer_config c = REIGN_OBSERVER_CONFIG_INIT;
    assert_int_equal(reign_observer_new(f, &c, &o), REIGN_EINVAL); /* nothing to observe */
    const char *ids[] = {""};
    c.ids = ids;
    c.n_ids = 1;
    assert_int_equal(reign_observer_new(f, &c, &o), REIGN_EINVAL);
    c.version = 99;
    assert_int_equal(reign_observer_new(f, &c, &o), REIGN_EINVAL);
    assert_null(o);
    reign_observer_free(NULL);
    reign_observer_config ci;
    assert_int_equal(reign_observer_config_init(&ci, sizeof ci), REIGN_OK);
    assert_int_equal(ci.version, REIGN_OBSERVER_CONFIG_VERSION);
    assert_int_equal(reign_observer_config_init(&ci, sizeof ci - 1), REIGN_EINVAL);
    assert_int_equal(reign_struct_size("reign_observer_config"), sizeof(reign_observer_config));
    assert_int_equal(reign_struct_size("reign_leader_status"), sizeof(reign_leader_status));
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

static void test_election_status_tracks_the_master_and_wait_change_waits_for_it(void **state)
{
    (void)state;
    reign_factory *fa = open_mem("obs7", "a", "");
    reign_factory *fb = open_mem("obs7", "b", "");
    reign_election *ea = NULL, *eb = NULL;
    assert_int_equal(reign_election_new(fa, "r", &ea), REIGN_OK);
    assert_int_equal(reign_election_new(fb, "r", &eb), REIGN_OK);
    reign_leader_status st;
    assert_int_equal(reign_election_status(eb, &st), REIGN_OK);
    assert_false(st.known);
    assert_int_equal(st.last_change_ms, -1);
    assert_int_equal(st.last_heard_ms, -1);
    reign_leader_status_clear(&st);
    assert_int_equal(reign_election_wait_change(eb, 0, 0), REIGN_ETIMEDOUT);

    assert_int_equal(reign_election_wait(ea, WAIT_MS), REIGN_OK);
    int64_t t0 = reign_monotonic_ms();
    assert_int_equal(reign_election_start(eb), REIGN_OK);
    assert_int_equal(reign_election_wait_change(eb, t0, WAIT_MS), REIGN_OK);
    assert_int_equal(reign_election_status(eb, &st), REIGN_OK);
    assert_true(st.known && st.held && !st.self);
    assert_string_equal(st.instance_id, "a");
    assert_int_equal(st.term, 1);
    assert_true(st.last_change_ms >= t0 && st.last_heard_ms >= st.last_change_ms);
    assert_int_equal(st.failures, 0);
    reign_leader_status_clear(&st);

    /* a hands over: b sees itself master with the next term. */
    int64_t t1 = reign_monotonic_ms() + 1;
    assert_int_equal(reign_election_wait_change(eb, t1, 20), REIGN_ETIMEDOUT);
    assert_int_equal(reign_election_resign(ea), REIGN_OK);
    assert_int_equal(reign_election_wait(eb, WAIT_MS), REIGN_OK);
    assert_int_equal(reign_election_wait_change(eb, t1, WAIT_MS), REIGN_OK);
    assert_int_equal(reign_election_status(eb, &st), REIGN_OK);
    assert_true(st.held && st.self);
    assert_int_equal(st.term, 2);
    reign_leader_status_clear(&st);

    /* A stalled store: failures count up, the last answer stays put. */
    assert_int_equal(reign_mem_set_fault("obs7", REIGN_MEM_FAULT_FAIL), REIGN_OK);
    assert_int_equal(reign_election_resign(eb), REIGN_EBACKEND); /* the RELEASE failed */
    assert_int_equal(reign_election_status(eb, &st), REIGN_OK);
    assert_true(st.failures >= 1);
    assert_int_equal(st.last_error_status, REIGN_EBACKEND);
    reign_leader_status_clear(&st);
    assert_int_equal(reign_mem_set_fault("obs7", REIGN_MEM_FAULT_NONE), REIGN_OK);
    assert_int_equal(reign_election_close(ea), REIGN_OK);
    assert_int_equal(reign_election_close(eb), REIGN_OK);
    assert_int_equal(reign_factory_close(fa), REIGN_OK);
    assert_int_equal(reign_factory_close(fb), REIGN_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observer_sees_acquire_handoff_metadata_release_in_order),
        cmocka_unit_test(test_observer_sees_expiry_as_none),
        cmocka_unit_test(test_observer_fd_is_readable_while_changes_wait),
        cmocka_unit_test(test_observer_prefix_and_wait_change_after_time),
        cmocka_unit_test(test_set_metadata_refused_when_not_master_or_unsupported),
        cmocka_unit_test(test_observer_config_is_checked),
        cmocka_unit_test(test_election_status_tracks_the_master_and_wait_change_waits_for_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
