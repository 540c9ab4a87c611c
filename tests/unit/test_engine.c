/* The lease engine's rules, step by step on a fake clock: the test is the
 * engine's driver (gather, answer the ops, apply, deliver) and the
 * backend's server at once, so every deadline and retry time is checked to
 * the nanosecond and nothing sleeps. The engine's thread and the public API
 * over it are tested in test_engine_thread.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "election_internal.h"
#include "engine.h"
#include "reign/backend.h"
#include "reign/reign.h"

#define MS REIGN_NS_PER_MS
#define T0 ((reign_mono_ns)1000000 * MS) /* the fake clock's start: 1000 s */
#define TTL_MS 3000
#define RETRY_MS 1000
/* ttl × (1 − 0.01) − min(ttl/20, 100 ms) */
#define BELIEF ((reign_mono_ns)2870 * MS)
#define RENEW ((reign_mono_ns)TTL_MS * MS / 3)

/* ---- a backend the engine never calls: the test answers its ops ---------- */

static int scripted_open(const reign_backend_config *cfg, void **state)
{
    (void)cfg;
    *state = malloc(1);
    return *state != NULL ? REIGN_OK : REIGN_ENOMEM;
}

static int scripted_execute(void *state, reign_batch *b)
{
    (void)state;
    /* Stepped: only the thread test (the runtime door) gets here. Answer as
     * a server with no other holder would. */
    static uint64_t term;
    reign_op *ops = b->ops;
    for (size_t i = 0; i < b->n_ops; i++) {
        ops[i].result = ops[i].kind == REIGN_OP_READ ? REIGN_RES_NONE : REIGN_RES_OK;
        if (ops[i].kind == REIGN_OP_ACQUIRE)
            ops[i].out_term = ++term;
    }
    return REIGN_OK;
}

static void scripted_close(void *state)
{
    free(state);
}

static const reign_backend scripted = {
    REIGN_BACKEND_INIT,
    .scheme = "scripted",
    .open = scripted_open,
    .execute = scripted_execute,
    .close = scripted_close,
};

/* ---- the driver ---------------------------------------------------------- */

typedef struct heard {
    int gained, lost;
    uint64_t term;
    reign_lost_reason reason;
} heard;

static void on_event(reign_election *e, const reign_event *ev, void *payload)
{
    (void)e;
    heard *h = payload;
    if (ev->kind == REIGN_EVENT_GAINED)
        h->gained++;
    else {
        h->lost++;
        h->reason = ev->reason;
    }
    h->term = ev->term;
}

typedef struct rig {
    reign_factory *f;
    reign_engine_batch b;
    reign_mono_ns next; /* what the last gather said is next due */
} rig;

static void quiet(int level, const char *component, const char *message, void *payload)
{
    (void)payload, (void)level, (void)component, (void)message;
}

static void rig_open(rig *r, const char *instance)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.logger = quiet;
    o.instance_id = instance;
    o.ttl_ms = TTL_MS;
    o.retry_interval_ms = RETRY_MS;
    *r = (rig){0};
    int rc = reign_engine_open_stepped(&scripted, "scripted://x", &o, &r->f);
    if (rc != REIGN_OK)
        fail_msg("open: %s", reign_last_error());
}

static reign_election *campaign(rig *r, const char *resource, heard *h)
{
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(r->f, resource, &e), REIGN_OK);
    assert_int_equal(reign_election_set_callback(e, on_event, h), REIGN_OK);
    assert_int_equal(reign_election_start(e), REIGN_OK);
    return e;
}

/* Gather at now; returns the number of ops. */
static size_t gather(rig *r, reign_mono_ns now)
{
    r->next = reign_engine_gather(r->f, now, &r->b);
    reign_engine_deliver(r->f); /* as the thread does before its I/O */
    return r->b.n;
}

static reign_op *op(rig *r, size_t i, reign_op_kind kind, const char *resource)
{
    assert_true(i < r->b.n);
    reign_op *o = &r->b.ops[i];
    assert_int_equal(o->kind, kind);
    assert_string_equal(o->resource, resource);
    return o;
}

/* Apply every gathered op as answered at `now`, sent at `sent`. */
static void answer(rig *r, reign_mono_ns sent, reign_mono_ns now, int rc)
{
    reign_engine_apply(r->f, &r->b, 0, r->b.n, rc, sent, sent, now);
    reign_engine_deliver(r->f);
    reign_engine_finish(r->f, &r->b);
}

/* One whole turn where each op gets `result` (ACQUIRE OK: term). */
static size_t turn(rig *r, reign_mono_ns now, reign_op_result result, uint64_t term)
{
    size_t n = gather(r, now);
    for (size_t i = 0; i < n; i++) {
        r->b.ops[i].result = result;
        r->b.ops[i].out_term = term;
    }
    answer(r, now, now, REIGN_OK);
    return n;
}

static reign_mono_ns deadline_of(const reign_election *e, uint64_t *term)
{
    reign_mono_ns d;
    uint64_t t;
    reign_engine_view(e, &d, &t);
    if (term != NULL)
        *term = t;
    return d;
}

/* Instance "a", master of "res" with `term` since an ACQUIRE sent at T0. */
static reign_election *master_at_t0(rig *r, heard *h, uint64_t term)
{
    rig_open(r, "a");
    reign_election *e = campaign(r, "res", h);
    assert_int_equal(turn(r, T0, REIGN_RES_OK, term), 1);
    return e;
}

/* Resign, let every RELEASE succeed, close, free. */
static void rig_close(rig *r, reign_election **es, size_t n, reign_mono_ns now)
{
    for (size_t i = 0; i < n; i++)
        reign_election_resign_nowait(es[i]);
    while (turn(r, now, REIGN_RES_OK, 0) > 0)
        ;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(reign_election_close(es[i]), REIGN_OK);
    reign_engine_batch_free(&r->b);
    assert_int_equal(reign_factory_close(r->f), REIGN_OK);
}

/* ---- the rules ----------------------------------------------------------- */

/* Invariant 1: belief lasts ttl × (1 − drift) − margin from the send of
 * the ACQUIRE that won, however late the answer came. */
static void test_a_won_acquire_is_believed_from_its_send(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    heard h = {0};
    reign_election *e = campaign(&r, "res", &h);

    assert_int_equal(gather(&r, T0), 1);
    reign_op *o = op(&r, 0, REIGN_OP_ACQUIRE, "res");
    o->result = REIGN_RES_OK;
    o->out_term = 7;
    answer(&r, T0, T0 + 400 * MS, REIGN_OK);

    uint64_t term = 0;
    assert_int_equal(deadline_of(e, &term), T0 + BELIEF);
    assert_int_equal(term, 7);
    assert_int_equal(h.gained, 1);
    assert_int_equal(h.term, 7);

    /* nothing is due until the renewal, a third of the TTL after the send */
    assert_int_equal(gather(&r, T0 + 400 * MS), 0);
    assert_int_equal(r.next, T0 + RENEW);
    rig_close(&r, &e, 1, T0 + 500 * MS);
}

static void test_renewals_extend_belief_from_their_own_send(void **state)
{
    (void)state;
    rig r;
    heard h = {0};
    reign_election *e = master_at_t0(&r, &h, 3);

    assert_int_equal(gather(&r, T0 + RENEW - 1), 0);
    assert_int_equal(gather(&r, T0 + RENEW), 1);
    assert_int_equal(op(&r, 0, REIGN_OP_RENEW, "res")->term, 3);
    r.b.ops[0].result = REIGN_RES_OK;
    answer(&r, T0 + RENEW, T0 + RENEW + 900 * MS, REIGN_OK);
    assert_int_equal(deadline_of(e, NULL), T0 + RENEW + BELIEF);
    assert_int_equal(gather(&r, T0 + RENEW + 900 * MS), 0);
    assert_int_equal(r.next, T0 + 2 * RENEW);
    assert_int_equal(h.gained, 1);
    assert_int_equal(h.lost, 0);
    rig_close(&r, &e, 1, T0 + RENEW + 900 * MS);
}

/* While the backend cannot say (ERROR), belief holds until its deadline,
 * renewals are retried at a sixth of the period, and at the deadline
 * belief ends on the engine's own clock: nobody needs the backend. */
static void test_belief_ends_at_the_deadline_while_renewals_fail(void **state)
{
    (void)state;
    rig r;
    heard h = {0};
    reign_election *e = master_at_t0(&r, &h, 1);

    reign_mono_ns now = T0 + RENEW;
    int renews = 0;
    while (now < T0 + BELIEF) {
        if (gather(&r, now) > 0) {
            op(&r, 0, REIGN_OP_RENEW, "res");
            renews++;
            answer(&r, now, now, REIGN_EBACKEND); /* the whole batch failed */
            assert_int_equal(deadline_of(e, NULL), T0 + BELIEF);
            assert_int_equal(h.lost, 0);
            continue;
        }
        now = r.next < T0 + BELIEF ? r.next : T0 + BELIEF;
    }
    /* RENEW at 1000 ms, then every 1000/6 ms until 2870 ms */
    assert_int_equal(renews, 12);
    assert_int_equal(gather(&r, T0 + BELIEF), 1);
    assert_int_equal(h.lost, 1);
    assert_int_equal(h.reason, REIGN_LOST_EXPIRED);
    assert_int_equal(deadline_of(e, NULL), 0);
    /* what it may still hold on the backend is released at once */
    assert_int_equal(op(&r, 0, REIGN_OP_RELEASE, "res")->term, 1);
    answer(&r, T0 + BELIEF, T0 + BELIEF, REIGN_OK);
    rig_close(&r, &e, 1, T0 + BELIEF);
}

/* A RENEW that comes back OK after the deadline passed does not bring
 * belief back: the lease may have been someone else's meanwhile. */
static void test_a_late_renewal_does_not_resurrect_belief(void **state)
{
    (void)state;
    rig r;
    heard h = {0};
    reign_election *e = master_at_t0(&r, &h, 1);

    assert_int_equal(gather(&r, T0 + RENEW), 1);
    r.b.ops[0].result = REIGN_RES_OK;
    answer(&r, T0 + RENEW, T0 + BELIEF + 1, REIGN_OK);
    assert_int_equal(deadline_of(e, NULL), 0);
    assert_int_equal(h.lost, 1);
    assert_int_equal(h.reason, REIGN_LOST_EXPIRED);
    rig_close(&r, &e, 1, T0 + BELIEF + 1);
}

/* An ACQUIRE that wins after its belief window already ran out is given
 * back, never believed. */
static void test_an_acquire_won_too_late_is_given_back(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    heard h = {0};
    reign_election *e = campaign(&r, "res", &h);
    assert_int_equal(gather(&r, T0), 1);
    r.b.ops[0].result = REIGN_RES_OK;
    r.b.ops[0].out_term = 9;
    answer(&r, T0, T0 + BELIEF, REIGN_OK);
    assert_int_equal(h.gained, 0);
    assert_int_equal(deadline_of(e, NULL), 0);
    assert_int_equal(gather(&r, T0 + BELIEF), 1);
    assert_int_equal(op(&r, 0, REIGN_OP_RELEASE, "res")->term, 9);
    r.b.ops[0].result = REIGN_RES_OK;
    answer(&r, T0 + BELIEF, T0 + BELIEF, REIGN_OK);
    /* then it campaigns again at once */
    assert_int_equal(gather(&r, T0 + BELIEF), 1);
    op(&r, 0, REIGN_OP_ACQUIRE, "res");
    answer(&r, T0 + BELIEF, T0 + BELIEF, REIGN_OK); /* UNSET: counted as an error */
    rig_close(&r, &e, 1, T0 + BELIEF);
}

/* HELD: try again when the holder's lease could run out, but no later than
 * the retry interval on a backend that does not notify. */
static void test_a_held_resource_is_retried_when_the_lease_could_end(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    heard h = {0};
    reign_election *e = campaign(&r, "res", &h);

    assert_int_equal(gather(&r, T0), 1);
    reign_op *o = op(&r, 0, REIGN_OP_ACQUIRE, "res");
    o->result = REIGN_RES_HELD;
    o->out_holder = strdup("b");
    o->out_term = 4;
    o->out_remaining_ms = 400;
    answer(&r, T0, T0 + 10 * MS, REIGN_OK);
    assert_int_equal(gather(&r, T0 + 10 * MS), 0);
    assert_int_equal(r.next, T0 + 411 * MS);

    assert_int_equal(gather(&r, T0 + 411 * MS), 1);
    o = op(&r, 0, REIGN_OP_ACQUIRE, "res");
    o->result = REIGN_RES_HELD;
    o->out_holder = strdup("b");
    o->out_remaining_ms = 5000;
    answer(&r, T0 + 411 * MS, T0 + 411 * MS, REIGN_OK);
    assert_int_equal(gather(&r, T0 + 411 * MS), 0);
    assert_int_equal(r.next, T0 + 411 * MS + RETRY_MS * MS);

    /* a notification that the resource may be free: retry now */
    char *names[] = {"res"};
    size_t lens[] = {3};
    reign_engine_notified(r.f, names, lens, 1, false);
    assert_int_equal(gather(&r, T0 + 500 * MS), 1);
    op(&r, 0, REIGN_OP_ACQUIRE, "res");
    answer(&r, T0 + 500 * MS, T0 + 500 * MS, REIGN_OK);
    rig_close(&r, &e, 1, T0 + 500 * MS);
}

/* Our own lease from an earlier belief (a lost answer) is released, then
 * campaigned for, not waited out. */
static void test_a_lease_of_our_own_is_released_then_campaigned_for(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    heard h = {0};
    reign_election *e = campaign(&r, "res", &h);
    assert_int_equal(gather(&r, T0), 1);
    reign_op *o = op(&r, 0, REIGN_OP_ACQUIRE, "res");
    o->result = REIGN_RES_HELD;
    o->out_holder = strdup("a");
    o->out_term = 5;
    o->out_remaining_ms = 2000;
    answer(&r, T0, T0, REIGN_OK);
    assert_int_equal(gather(&r, T0), 1);
    assert_int_equal(op(&r, 0, REIGN_OP_RELEASE, "res")->term, 5);
    r.b.ops[0].result = REIGN_RES_OK;
    answer(&r, T0, T0, REIGN_OK);
    assert_int_equal(turn(&r, T0, REIGN_RES_OK, 6), 1);
    uint64_t term = 0;
    assert_int_equal(deadline_of(e, &term), T0 + BELIEF);
    assert_int_equal(term, 6);
    rig_close(&r, &e, 1, T0);
}

/* An ACQUIRE that errs while its batch went through waits retry, 2×, 4×
 * … up to 30 s; one that fails with its whole batch (server down) waits
 * the retry interval. */
static void test_acquire_errors_back_off_to_thirty_seconds(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    heard h = {0};
    reign_election *e = campaign(&r, "res", &h);
    reign_mono_ns now = T0;
    const int64_t waits_ms[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (size_t i = 0; i < sizeof waits_ms / sizeof waits_ms[0]; i++) {
        assert_int_equal(gather(&r, now), 1);
        reign_op *o = op(&r, 0, REIGN_OP_ACQUIRE, "res");
        reign_op_fail(o, REIGN_EIO, "too many open files");
        answer(&r, now, now, REIGN_OK);
        assert_int_equal(gather(&r, now), 0);
        assert_int_equal(r.next, now + waits_ms[i] * MS);
        now = r.next;
    }
    /* the whole batch failing: the server's trouble, retried at the interval */
    assert_int_equal(gather(&r, now), 1);
    answer(&r, now, now, REIGN_EBACKEND);
    assert_int_equal(gather(&r, now), 0);
    assert_int_equal(r.next, now + RETRY_MS * MS);
    /* an answer ends the backoff */
    now = r.next;
    assert_int_equal(turn(&r, now, REIGN_RES_OK, 2), 1);
    assert_int_equal(h.gained, 1);
    rig_close(&r, &e, 1, now);
}

/* A resign ends belief at once and RELEASEs that term; a campaign after it
 * waits for the RELEASE (never two ops on one resource in a batch). */
static void test_resign_releases_before_the_next_acquire(void **state)
{
    (void)state;
    rig r;
    heard h = {0};
    reign_election *e = master_at_t0(&r, &h, 2);
    reign_election_resign_nowait(e);
    assert_int_equal(deadline_of(e, NULL), 0);
    assert_int_equal(reign_election_start(e), REIGN_OK);
    assert_int_equal(gather(&r, T0 + MS), 1);
    assert_int_equal(h.lost, 1);
    assert_int_equal(h.reason, REIGN_LOST_RESIGNED);
    assert_int_equal(op(&r, 0, REIGN_OP_RELEASE, "res")->term, 2);
    r.b.ops[0].result = REIGN_RES_OK;
    answer(&r, T0 + MS, T0 + MS, REIGN_OK);
    assert_int_equal(gather(&r, T0 + MS), 1);
    op(&r, 0, REIGN_OP_ACQUIRE, "res");
    r.b.ops[0].result = REIGN_RES_OK;
    r.b.ops[0].out_term = 3;
    answer(&r, T0 + MS, T0 + MS, REIGN_OK);
    assert_int_equal(h.gained, 2);
    assert_int_equal(h.term, 3);
    rig_close(&r, &e, 1, T0 + MS);
}

/* A RELEASE that fails is tried again every sixth of the renew period until
 * a TTL after the first failure: a candidate takes over promptly after a
 * blip instead of waiting out the lease. */
static void test_a_failed_release_is_retried_for_a_ttl(void **state)
{
    (void)state;
    rig r;
    heard h = {0};
    reign_election *e = master_at_t0(&r, &h, 2);
    reign_election_resign_nowait(e);
    reign_mono_ns now = T0 + MS, first = now;
    int tries = 0;
    for (;;) {
        size_t n = gather(&r, now);
        if (n == 0) {
            if (r.next > first + (reign_mono_ns)TTL_MS * MS + RENEW)
                break; /* nothing more of it is due */
            now = r.next;
            continue;
        }
        assert_int_equal(op(&r, 0, REIGN_OP_RELEASE, "res")->term, 2);
        tries++;
        answer(&r, now, now, REIGN_EBACKEND);
    }
    /* at 0, then every 1000/6 ms: the 19th retry is the first at or past
     * 3000 ms after the failure, and the last */
    assert_int_equal(tries, 20);
    rig_close(&r, &e, 1, now);
}

/* Renewals due within half a period ride along with one due now: a holder
 * of many resources sends one batch per period, not one per resource. */
static void test_renewals_due_soon_ride_along(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    heard h1 = {0}, h2 = {0}, h3 = {0};
    reign_election *es[3];
    es[0] = campaign(&r, "one", &h1);
    turn(&r, T0, REIGN_RES_OK, 1);
    es[1] = campaign(&r, "two", &h2);
    turn(&r, T0 + 300 * MS, REIGN_RES_OK, 1);
    es[2] = campaign(&r, "three", &h3);
    turn(&r, T0 + 600 * MS, REIGN_RES_OK, 1);

    /* at 1000 ms: one is due, two (1300) is within 500 ms, three (1600) not */
    assert_int_equal(gather(&r, T0 + RENEW), 2);
    assert_int_equal(r.b.ops[0].kind, REIGN_OP_RENEW);
    assert_int_equal(r.b.ops[1].kind, REIGN_OP_RENEW);
    assert_int_equal(r.next, T0 + 1600 * MS);
    answer(&r, T0 + RENEW, T0 + RENEW, REIGN_EBACKEND);
    reign_stats st;
    assert_int_equal(reign_factory_stats(r.f, &st), REIGN_OK);
    assert_int_equal(st.masterships, 3);
    rig_close(&r, es, 3, T0 + RENEW);
}

/* execute gets every RELEASE, then RENEW, then ACQUIRE, with counts and a
 * deadline an op timeout after the send. */
static void test_a_batch_comes_grouped_by_kind(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    heard h[4] = {{0}};
    reign_election *es[4];
    es[0] = campaign(&r, "renewed", &h[0]);
    es[1] = campaign(&r, "resigned", &h[1]);
    turn(&r, T0, REIGN_RES_OK, 1);
    es[2] = campaign(&r, "campaign-1", &h[2]);
    es[3] = campaign(&r, "campaign-2", &h[3]);
    reign_election_resign_nowait(es[1]);

    assert_int_equal(gather(&r, T0 + RENEW), 4);
    op(&r, 0, REIGN_OP_RELEASE, "resigned");
    op(&r, 1, REIGN_OP_RENEW, "renewed");
    assert_int_equal(r.b.ops[2].kind, REIGN_OP_ACQUIRE);
    assert_int_equal(r.b.ops[3].kind, REIGN_OP_ACQUIRE);
    reign_batch batch;
    reign_engine_chunk(r.f, &r.b, 0, r.b.n, T0 + RENEW, &batch);
    assert_int_equal(batch.n_ops, 4);
    assert_int_equal(batch.count[REIGN_OP_RELEASE], 1);
    assert_int_equal(batch.count[REIGN_OP_RENEW], 1);
    assert_int_equal(batch.count[REIGN_OP_ACQUIRE], 2);
    assert_int_equal(batch.count[REIGN_OP_READ], 0);
    size_t n = 0;
    assert_ptr_equal(reign_batch_group(&batch, REIGN_OP_ACQUIRE, &n), &r.b.ops[2]);
    assert_int_equal(n, 2);
    assert_int_equal(batch.deadline_ns, T0 + RENEW + (reign_mono_ns)TTL_MS / 3 * MS);
    answer(&r, T0 + RENEW, T0 + RENEW, REIGN_EBACKEND);
    rig_close(&r, es, 4, T0 + RENEW);
}

/* A backend gives only the cause; the core says which backend and where,
 * and the op and resource where it shows the message. */
static void test_a_failure_carries_the_backends_cause_and_where(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    heard h = {0};
    reign_election *e = campaign(&r, "res", &h);
    assert_int_equal(gather(&r, T0), 1);
    reign_op_fail(op(&r, 0, REIGN_OP_ACQUIRE, "res"), REIGN_EBACKEND, "connection refused");
    answer(&r, T0, T0, REIGN_OK);
    char buf[200];
    assert_int_equal(reign_election_last_failure(e, buf, sizeof buf), REIGN_EBACKEND);
    assert_string_equal(buf, "ACQUIRE: scripted: connection refused (scripted://x)");
    rig_close(&r, &e, 1, T0);
}

static void test_internal_elections_are_not_counted(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new_internal(r.f, "_reign/member/0", &e), REIGN_OK);
    assert_int_equal(reign_election_start(e), REIGN_OK);
    turn(&r, T0, REIGN_RES_OK, 1);
    assert_int_equal(deadline_of(e, NULL), T0 + BELIEF);
    reign_stats st;
    assert_int_equal(reign_factory_stats(r.f, &st), REIGN_OK);
    assert_int_equal(st.masterships, 0);
    assert_int_equal(st.gained, 0);
    rig_close(&r, &e, 1, T0);
}

typedef struct told {
    int calls, names;
    bool all;
} told;

static void on_notified(reign_factory *f, void *ctx, char *const *names, const size_t *lens,
                        size_t n, bool all)
{
    (void)f, (void)names, (void)lens;
    told *t = ctx;
    t->calls++;
    t->names += (int)n;
    t->all |= all;
}

/* The engine knows no client's prefixes: it tells its clients what was
 * freed. */
static void test_clients_hear_every_notification(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, "a");
    told t = {0};
    reign_engine_client client = {.notified = on_notified, .ctx = &t};
    assert_int_equal(reign_engine_attach(r.f, &client), REIGN_OK);
    assert_int_equal(reign_engine_attach(r.f, &client), REIGN_OK); /* once */
    char *names[] = {"x", "_reign/member/3"};
    size_t lens[] = {1, 15};
    reign_engine_notified(r.f, names, lens, 2, false);
    reign_engine_notified(r.f, NULL, NULL, 0, true);
    assert_int_equal(t.calls, 2);
    assert_int_equal(t.names, 2);
    assert_true(t.all);
    reign_engine_detach(r.f, &client);
    reign_engine_notified(r.f, names, lens, 1, false);
    assert_int_equal(t.calls, 2);
    reign_engine_batch_free(&r.b);
    assert_int_equal(reign_factory_close(r.f), REIGN_OK);
}

/* ---- the runtime door --------------------------------------------------- */

static void test_a_brought_backend_serves_a_factory(void **state)
{
    (void)state;
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = "a";
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open_backend(&scripted, "scripted://anything", &o, &f),
                     REIGN_OK);
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "res", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 5000), REIGN_OK);
    assert_true(reign_election_is_master(e));
    assert_int_equal(reign_election_resign(e), REIGN_OK);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

static void test_the_door_refuses_what_it_cannot_serve(void **state)
{
    (void)state;
    reign_factory *f = NULL;
    assert_int_equal(reign_factory_open_backend(NULL, "scripted://", NULL, &f), REIGN_EINVAL);
    assert_int_equal(reign_factory_open_backend(&scripted, "redis://127.0.0.1", NULL, &f),
                     REIGN_EURI);
    assert_non_null(strstr(reign_last_error(), "not the backend's (scripted://)"));

    reign_backend future = scripted;
    future.version = REIGN_BACKEND_VERSION + 1;
    assert_int_equal(reign_factory_open_backend(&future, "scripted://", NULL, &f), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "unsupported"));

    reign_backend partial = scripted;
    partial.execute = NULL;
    assert_int_equal(reign_factory_open_backend(&partial, "scripted://", NULL, &f), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "required"));
    assert_null(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_won_acquire_is_believed_from_its_send),
        cmocka_unit_test(test_renewals_extend_belief_from_their_own_send),
        cmocka_unit_test(test_belief_ends_at_the_deadline_while_renewals_fail),
        cmocka_unit_test(test_a_late_renewal_does_not_resurrect_belief),
        cmocka_unit_test(test_an_acquire_won_too_late_is_given_back),
        cmocka_unit_test(test_a_held_resource_is_retried_when_the_lease_could_end),
        cmocka_unit_test(test_a_lease_of_our_own_is_released_then_campaigned_for),
        cmocka_unit_test(test_acquire_errors_back_off_to_thirty_seconds),
        cmocka_unit_test(test_resign_releases_before_the_next_acquire),
        cmocka_unit_test(test_a_failed_release_is_retried_for_a_ttl),
        cmocka_unit_test(test_renewals_due_soon_ride_along),
        cmocka_unit_test(test_a_batch_comes_grouped_by_kind),
        cmocka_unit_test(test_a_failure_carries_the_backends_cause_and_where),
        cmocka_unit_test(test_internal_elections_are_not_counted),
        cmocka_unit_test(test_clients_hear_every_notification),
        cmocka_unit_test(test_a_brought_backend_serves_a_factory),
        cmocka_unit_test(test_the_door_refuses_what_it_cannot_serve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
