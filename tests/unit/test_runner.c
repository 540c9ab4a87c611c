/* Runner tests: the pure step machine with a fake clock and chosen draws
 * (Trillian's runner cases), config checks, and the public runner driving a
 * real mem:// election. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "reign/reign.h"
#include "runner_step.h"

#define PAUSE 1000
#define CHECK 5000
#define HOLD 60000

static runner_settings settings(int64_t odds)
{
    runner_settings s = {
        .pre_election_pause_ms = PAUSE,
        .master_check_interval_ms = CHECK,
        .master_hold_interval_ms = HOLD,
        .resign_odds = odds,
    };
    return s;
}

static runner_output step(runner_state *st, int64_t now, bool is_master, uint64_t draw)
{
    runner_input in = {.now_ms = now, .is_master = is_master, .draw = draw};
    runner_output o;
    reign_runner_state_step(st, &in, &o);
    return o;
}

/* Fresh machine campaigning at t=0 (draw 0 = zero pause), not yet master. */
static void campaigning_at_zero(runner_state *st, int64_t odds)
{
    runner_settings s = settings(odds);
    reign_runner_state_init(st, &s);
    runner_output o = step(st, 0, false, 0);
    assert_int_equal(o.actions, RUNNER_ACT_CAMPAIGN);
}

/* Machine that became master at t=0. */
static void master_at_zero(runner_state *st, int64_t odds)
{
    campaigning_at_zero(st, odds);
    runner_output o = step(st, 0, true, 0);
    assert_int_equal(o.actions, RUNNER_ACT_TRACK_TRUE);
    assert_int_equal(o.next_wake_ms, CHECK);
}

/* ---- step machine ------------------------------------------------------- */

static void test_pre_election_pause_is_honoured_before_campaigning(void **state)
{
    (void)state;
    runner_settings s = settings(0);
    runner_state st;
    reign_runner_state_init(&st, &s);

    runner_output o = step(&st, 100, false, 700); /* pause = 700 % 1000 */
    assert_int_equal(o.actions, 0);
    assert_int_equal(o.next_wake_ms, 800);

    o = step(&st, 799, false, 0);
    assert_int_equal(o.actions, 0);
    assert_int_equal(o.next_wake_ms, 800);

    o = step(&st, 800, false, 0);
    assert_int_equal(o.actions, RUNNER_ACT_CAMPAIGN);
    assert_int_equal(o.next_wake_ms, 800 + CHECK);
}

static void test_pre_election_pause_stays_below_the_configured_maximum(void **state)
{
    (void)state;
    runner_settings s = settings(0);
    uint64_t seed = 42;
    for (int i = 0; i < 10000; i++) {
        runner_state st;
        reign_runner_state_init(&st, &s);
        step(&st, 0, false, reign_runner_splitmix64(&seed));
        assert_in_range(st.campaign_at_ms, 0, PAUSE - 1);
    }
    /* The largest draw still gives a pause below the maximum. */
    runner_state st;
    reign_runner_state_init(&st, &s);
    runner_output o = step(&st, 0, false, UINT64_MAX);
    assert_true(o.next_wake_ms < PAUSE);
}

static void test_campaigning_polls_every_master_check_interval(void **state)
{
    (void)state;
    runner_state st;
    campaigning_at_zero(&st, 0);
    assert_int_equal(st.phase, RUNNER_CAMPAIGNING);

    /* An early step (an election event) that is not master changes nothing. */
    runner_output o = step(&st, 1234, false, 0);
    assert_int_equal(o.actions, 0);
    assert_int_equal(o.next_wake_ms, CHECK);

    o = step(&st, CHECK, false, 0);
    assert_int_equal(o.actions, 0);
    assert_int_equal(o.next_wake_ms, 2 * CHECK);
}

static void test_becoming_master_sets_the_tracker_true_once(void **state)
{
    (void)state;
    runner_state st;
    master_at_zero(&st, 0);
    for (int64_t t = 1; t < 20 * CHECK; t += 777) {
        runner_output o = step(&st, t, true, 0);
        assert_int_equal(o.actions, 0);
    }
}

static void test_mastership_seen_at_the_end_of_the_pause_is_tracked_in_the_same_step(void **state)
{
    (void)state;
    runner_settings s = settings(0);
    runner_state st;
    reign_runner_state_init(&st, &s);
    runner_output o = step(&st, 0, true, 10); /* pause 10: not yet */
    assert_int_equal(o.actions, 0);
    o = step(&st, 10, true, 0);
    assert_int_equal(o.actions, RUNNER_ACT_CAMPAIGN | RUNNER_ACT_TRACK_TRUE);
}

static void test_master_checks_come_every_master_check_interval(void **state)
{
    (void)state;
    runner_state st;
    master_at_zero(&st, 0);

    /* An early step (e.g. an election event) while master is no check. */
    runner_output o = step(&st, CHECK - 1, true, 0);
    assert_int_equal(o.actions, 0);
    assert_int_equal(o.next_wake_ms, CHECK);

    o = step(&st, CHECK, true, 0);
    assert_int_equal(o.actions, 0);
    assert_int_equal(o.next_wake_ms, 2 * CHECK);

    /* A late check counts the next interval from when it ran. */
    o = step(&st, 2 * CHECK + 300, true, 0);
    assert_int_equal(o.next_wake_ms, 3 * CHECK + 300);
}

static void test_losing_mastership_sets_the_tracker_false_and_campaigns_after_a_new_pause(void **state)
{
    (void)state;
    runner_state st;
    master_at_zero(&st, 0);

    runner_output o = step(&st, CHECK, false, 250);
    assert_int_equal(o.actions, RUNNER_ACT_TRACK_FALSE);
    assert_int_equal(st.phase, RUNNER_PAUSE);
    assert_int_equal(o.next_wake_ms, CHECK + 250);

    o = step(&st, CHECK + 249, false, 0);
    assert_int_equal(o.actions, 0);
    o = step(&st, CHECK + 250, false, 0);
    assert_int_equal(o.actions, RUNNER_ACT_CAMPAIGN);

    o = step(&st, CHECK + 400, true, 0);
    assert_int_equal(o.actions, RUNNER_ACT_TRACK_TRUE);
}

static void test_loss_seen_between_checks_is_reported_at_once(void **state)
{
    (void)state;
    runner_state st;
    master_at_zero(&st, 0);
    runner_output o = step(&st, 17, false, 0); /* zero pause: campaigns at once */
    assert_int_equal(o.actions, RUNNER_ACT_TRACK_FALSE | RUNNER_ACT_CAMPAIGN);
    assert_int_equal(st.phase, RUNNER_CAMPAIGNING);
}

static void test_no_resignation_before_the_hold_interval(void **state)
{
    (void)state;
    runner_state st;
    master_at_zero(&st, 1);
    int64_t t = 0;
    for (;;) {
        t = st.next_check_ms;
        if (t >= HOLD)
            break;
        runner_output o = step(&st, t, true, 0);
        assert_int_equal(o.actions, 0);
    }
    /* The first check at or after the hold interval resigns (odds 1). */
    assert_int_equal(t, HOLD);
}

static void test_odds_one_resigns_at_the_first_check_after_the_hold_interval(void **state)
{
    (void)state;
    runner_settings s = settings(1);
    runner_state st;
    reign_runner_state_init(&st, &s);
    assert_int_equal(step(&st, 0, false, 0).actions, RUNNER_ACT_CAMPAIGN);
    /* Master at 1000: the checks fall at 6000, 11000, … 61000 is the first
     * at or after 1000 + HOLD. */
    assert_int_equal(step(&st, 1000, true, 0).actions, RUNNER_ACT_TRACK_TRUE);
    runner_output o;
    int64_t t;
    for (t = 1000 + CHECK; t < 1000 + HOLD; t += CHECK) {
        o = step(&st, t, true, 0);
        assert_int_equal(o.actions, 0);
    }
    assert_int_equal(t, 1000 + HOLD);
    o = step(&st, t, true, 12345);
    assert_int_equal(o.actions, RUNNER_ACT_TRACK_FALSE | RUNNER_ACT_OFFER_RESIGNATION);
    assert_int_equal(st.phase, RUNNER_RESIGNING);
}

static void test_huge_odds_never_resign_over_thousands_of_checks(void **state)
{
    (void)state;
    runner_state st;
    master_at_zero(&st, INT64_C(1) << 62);
    uint64_t seed = 20260101;
    for (int i = 0; i < 100000; i++) {
        int64_t t = st.next_check_ms;
        runner_output o = step(&st, t, true, reign_runner_splitmix64(&seed));
        assert_int_equal(o.actions, 0);
        assert_int_equal(st.phase, RUNNER_MASTER);
    }
    assert_true(st.next_check_ms > HOLD);
}

static void test_odds_zero_never_resign(void **state)
{
    (void)state;
    runner_state st;
    master_at_zero(&st, 0);
    for (int i = 0; i < 10000; i++) {
        int64_t t = st.next_check_ms;
        /* Draw 0 would resign under any odds >= 1. */
        runner_output o = step(&st, t, true, 0);
        assert_int_equal(o.actions, 0);
    }
}

static void test_resign_chance_is_about_one_in_odds(void **state)
{
    (void)state;
    uint64_t seed = 7;
    int resigned = 0, checks = 20000;
    runner_state st;
    master_at_zero(&st, 10);
    int64_t t = HOLD;
    for (int i = 0; i < checks; i++) {
        st.phase = RUNNER_MASTER; /* keep checking the same mastership */
        st.next_check_ms = t;
        runner_output o = step(&st, t, true, reign_runner_splitmix64(&seed));
        if (o.actions & RUNNER_ACT_OFFER_RESIGNATION)
            resigned++;
        t += CHECK;
    }
    assert_in_range(resigned, checks / 10 - 300, checks / 10 + 300);
}

static void test_resignation_waits_for_execution_then_pauses_and_campaigns(void **state)
{
    (void)state;
    runner_state st;
    master_at_zero(&st, 1);
    runner_output o = step(&st, HOLD, true, 0);
    assert_int_equal(o.actions, RUNNER_ACT_TRACK_FALSE | RUNNER_ACT_OFFER_RESIGNATION);

    /* Not executed yet: still resigning however long it takes, and losing
     * mastership meanwhile does not end it. */
    for (int64_t t = HOLD; t < HOLD + 10 * CHECK; t += CHECK) {
        o = step(&st, t, t % 2 == 0, 0);
        assert_int_equal(o.actions, 0);
        assert_int_equal(st.phase, RUNNER_RESIGNING);
    }

    runner_input in = {.now_ms = HOLD + 10 * CHECK, .resign_done = true, .draw = 300};
    reign_runner_state_step(&st, &in, &o);
    assert_int_equal(o.actions, 0);
    assert_int_equal(st.phase, RUNNER_PAUSE);
    assert_int_equal(o.next_wake_ms, HOLD + 10 * CHECK + 300);
    o = step(&st, HOLD + 10 * CHECK + 300, false, 0);
    assert_int_equal(o.actions, RUNNER_ACT_CAMPAIGN);
}

static void test_failed_campaign_is_retried_after_a_check_interval(void **state)
{
    (void)state;
    runner_state st;
    campaigning_at_zero(&st, 0);
    reign_runner_step_campaign_failed(&st, 0);
    runner_output o = step(&st, CHECK - 1, false, 0);
    assert_int_equal(o.actions, 0);
    assert_int_equal(o.next_wake_ms, CHECK);
    o = step(&st, CHECK, false, 0);
    assert_int_equal(o.actions, RUNNER_ACT_CAMPAIGN);
}

static void test_huge_intervals_saturate_instead_of_overflowing(void **state)
{
    (void)state;
    runner_settings s = settings(1);
    s.master_check_interval_ms = INT64_MAX;
    s.master_hold_interval_ms = INT64_MAX;
    runner_state st;
    reign_runner_state_init(&st, &s);
    step(&st, 1000, false, 0);
    runner_output o = step(&st, 1000, true, 0);
    assert_int_equal(o.actions, RUNNER_ACT_TRACK_TRUE);
    assert_true(o.next_wake_ms == INT64_MAX);
}

/* ---- config checks ------------------------------------------------------------ */

static void test_default_config_passes_the_check(void **state)
{
    (void)state;
    reign_runner_config c = REIGN_RUNNER_CONFIG_INIT;
    assert_int_equal(reign_runner_config_check(&c), REIGN_OK);
    c.pre_election_pause_ms = REIGN_RUNNER_MIN_PRE_ELECTION_PAUSE_MS;
    c.master_check_interval_ms = REIGN_RUNNER_MIN_MASTER_CHECK_INTERVAL_MS;
    c.master_hold_interval_ms = REIGN_RUNNER_MIN_MASTER_HOLD_INTERVAL_MS;
    c.resign_odds = 0;
    assert_int_equal(reign_runner_config_check(&c), REIGN_OK);
}

static void test_values_below_the_minimums_are_refused_naming_the_field(void **state)
{
    (void)state;
    reign_runner_config c = REIGN_RUNNER_CONFIG_INIT;
    c.master_hold_interval_ms = 5000;
    assert_int_equal(reign_runner_config_check(&c), REIGN_EINVAL);
    assert_string_equal(reign_last_error(),
                        "runner: master_hold_interval_ms 5000 is below the minimum 10000");

    c = (reign_runner_config)REIGN_RUNNER_CONFIG_INIT;
    c.pre_election_pause_ms = 9;
    assert_int_equal(reign_runner_config_check(&c), REIGN_EINVAL);
    assert_string_equal(reign_last_error(),
                        "runner: pre_election_pause_ms 9 is below the minimum 10");

    c = (reign_runner_config)REIGN_RUNNER_CONFIG_INIT;
    c.master_check_interval_ms = 0;
    assert_int_equal(reign_runner_config_check(&c), REIGN_EINVAL);
    assert_string_equal(reign_last_error(),
                        "runner: master_check_interval_ms 0 is below the minimum 50");

    c = (reign_runner_config)REIGN_RUNNER_CONFIG_INIT;
    c.resign_odds = -1;
    assert_int_equal(reign_runner_config_check(&c), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "resign_odds -1"));
}

static void test_unknown_config_versions_are_refused_naming_the_struct(void **state)
{
    (void)state;
    reign_runner_config c = REIGN_RUNNER_CONFIG_INIT;
    c.version = 0;
    assert_int_equal(reign_runner_config_check(&c), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "reign_runner_config version 0"));
    c.version = REIGN_RUNNER_CONFIG_VERSION + 1;
    assert_int_equal(reign_runner_config_check(&c), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "reign_runner_config version 2"));
    assert_int_equal(reign_runner_config_check(NULL), REIGN_EINVAL);
}

static void test_runner_new_refuses_a_bad_config(void **state)
{
    (void)state;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    reign_runner *r = NULL;
    reign_runner_config c = REIGN_RUNNER_CONFIG_INIT;
    c.master_check_interval_ms = 10;
    assert_int_equal(reign_factory_open("noop://", NULL, &f), REIGN_OK);
    assert_int_equal(reign_election_new(f, "jobs/bad", &e), REIGN_OK);
    assert_int_equal(reign_runner_new(e, NULL, &c, &r), REIGN_EINVAL);
    assert_null(r);
    assert_string_equal(reign_last_error(),
                        "runner: master_check_interval_ms 10 is below the minimum 50");
    assert_int_equal(reign_runner_new(NULL, NULL, NULL, &r), REIGN_EINVAL);
    assert_null(r);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

/* ---- public runner on a real mem:// election ------------------------------- */

typedef struct fake_env {
    int64_t now;
    uint64_t seed;
} fake_env;

static int64_t fake_clock(void *payload)
{
    return ((fake_env *)payload)->now;
}

static uint64_t fake_random(void *payload)
{
    return reign_runner_splitmix64(&((fake_env *)payload)->seed);
}

typedef struct resign_box {
    pthread_mutex_t mu;
    reign_resignation *got;
    int calls;
} resign_box;

static void keep_resignation(reign_runner *runner, reign_resignation *res, void *payload)
{
    resign_box *box = payload;
    (void)runner;
    pthread_mutex_lock(&box->mu);
    box->got = res;
    box->calls++;
    pthread_mutex_unlock(&box->mu);
}

typedef struct live {
    reign_factory *f;
    reign_election *e;
    reign_tracker *t;
    reign_runner *r;
    fake_env env;
} live;

static void live_open(live *l, const char *store, int64_t odds)
{
    char uri[64];
    snprintf(uri, sizeof uri, "mem://%s", store);
    memset(l, 0, sizeof *l);
    l->env.seed = 1;
    assert_int_equal(reign_factory_open(uri, NULL, &l->f), REIGN_OK);
    assert_int_equal(reign_election_new(l->f, "jobs/1", &l->e), REIGN_OK);
    const char *ids[] = {"jobs/1"};
    assert_int_equal(reign_tracker_new(ids, 1, NULL, NULL, &l->t), REIGN_OK);
    reign_runner_config c = REIGN_RUNNER_CONFIG_INIT;
    c.pre_election_pause_ms = 10;
    c.master_check_interval_ms = 100;
    c.master_hold_interval_ms = 10000;
    c.resign_odds = odds;
    c.clock = fake_clock;
    c.random = fake_random;
    c.clock_random_payload = &l->env;
    assert_int_equal(reign_runner_new(l->e, l->t, &c, &l->r), REIGN_OK);
}

static void live_close(live *l)
{
    reign_runner_free(l->r);
    assert_int_equal(reign_election_close(l->e), REIGN_OK);
    reign_tracker_free(l->t);
    assert_int_equal(reign_factory_close(l->f), REIGN_OK);
}

/* Step at fake time env.now until the election is master; the real engine
 * works in real time, so wait on it with reign_election_wait. */
static void live_become_master(live *l)
{
    int64_t next = 0;
    assert_int_equal(reign_runner_step(l->r, l->env.now, &next), REIGN_OK);
    l->env.now = next; /* end of the pause */
    assert_int_equal(reign_runner_step(l->r, l->env.now, &next), REIGN_OK);
    assert_int_equal(reign_election_wait(l->e, 5000), REIGN_OK);
    assert_int_equal(reign_runner_step(l->r, l->env.now, &next), REIGN_OK);
    assert_int_equal(reign_tracker_count(l->t), 1);
}

static void test_runner_campaigns_and_tracks_a_real_election(void **state)
{
    (void)state;
    live l;
    live_open(&l, "runner-track", 0);
    live_become_master(&l);
    char *s = reign_tracker_string(l.t);
    assert_string_equal(s, "[jobs/1]");
    free(s);
    /* Resign behind the runner's back: the next step sees the loss. */
    assert_int_equal(reign_election_resign(l.e), REIGN_OK);
    int64_t next = 0;
    l.env.now += 1;
    assert_int_equal(reign_runner_step(l.r, l.env.now, &next), REIGN_OK);
    assert_int_equal(reign_tracker_count(l.t), 0);
    live_close(&l);
}

static void test_runner_resignation_goes_through_the_handler(void **state)
{
    (void)state;
    live l;
    resign_box box = {.got = NULL};
    pthread_mutex_init(&box.mu, NULL);
    live_open(&l, "runner-resign", 1);
    assert_int_equal(reign_runner_set_resign_handler(l.r, keep_resignation, &box), REIGN_OK);
    live_become_master(&l);

    int64_t next = 0;
    l.env.now += 10000; /* past the hold: the next check resigns (odds 1) */
    assert_int_equal(reign_runner_step(l.r, l.env.now, &next), REIGN_OK);
    assert_int_equal(box.calls, 1);
    assert_non_null(box.got);
    assert_int_equal(reign_tracker_count(l.t), 0);
    /* Not executed yet: the election is still master, nothing campaigns. */
    assert_true(reign_election_is_master(l.e));
    assert_int_equal(reign_runner_step(l.r, l.env.now, &next), REIGN_OK);
    assert_int_equal(box.calls, 1);

    assert_int_equal(reign_resignation_execute(box.got), REIGN_OK);
    assert_false(reign_election_is_master(l.e));
    assert_int_equal(reign_runner_step(l.r, l.env.now, &next), REIGN_OK);
    /* A new pause (or, if it drew 0, a campaign polled every 100 ms). */
    assert_in_range(next, l.env.now, l.env.now + 100);
    live_close(&l);
    pthread_mutex_destroy(&box.mu);
}

static void test_runner_without_a_handler_resigns_at_once(void **state)
{
    (void)state;
    live l;
    live_open(&l, "runner-nohandler", 1);
    live_become_master(&l);
    int64_t next = 0;
    l.env.now += 10000;
    assert_int_equal(reign_runner_step(l.r, l.env.now, &next), REIGN_OK);
    assert_false(reign_election_is_master(l.e));
    assert_int_equal(reign_tracker_count(l.t), 0);
    assert_in_range(next, l.env.now, l.env.now + 100); /* paused or campaigning again */
    live_close(&l);
}

static void test_resignation_executed_after_runner_free_only_frees_it(void **state)
{
    (void)state;
    live l;
    resign_box box = {.got = NULL};
    pthread_mutex_init(&box.mu, NULL);
    live_open(&l, "runner-late", 1);
    assert_int_equal(reign_runner_set_resign_handler(l.r, keep_resignation, &box), REIGN_OK);
    live_become_master(&l);
    int64_t next = 0;
    l.env.now += 10000;
    assert_int_equal(reign_runner_step(l.r, l.env.now, &next), REIGN_OK);
    assert_non_null(box.got);

    reign_runner_free(l.r);
    l.r = NULL;
    assert_int_equal(reign_resignation_execute(box.got), REIGN_OK);
    assert_true(reign_election_is_master(l.e)); /* nothing was resigned */
    live_close(&l);
    pthread_mutex_destroy(&box.mu);
}

typedef struct run_arg {
    reign_runner *r;
    int rc;
} run_arg;

static void *run_thread(void *p)
{
    run_arg *a = p;
    a->rc = reign_runner_run(a->r);
    return NULL;
}

/* The tracker's callback signals a condition the test waits on. */
typedef struct held_wait {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool held;
} held_wait;

static void on_held(const char *id, bool is_master, void *payload)
{
    held_wait *w = payload;
    (void)id;
    pthread_mutex_lock(&w->mu);
    w->held = is_master;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void test_run_becomes_master_and_returns_on_stop(void **state)
{
    (void)state;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    reign_tracker *t = NULL;
    reign_runner *r = NULL;
    held_wait w = {.held = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, NULL);
    assert_int_equal(reign_factory_open("mem://runner-run", NULL, &f), REIGN_OK);
    assert_int_equal(reign_election_new(f, "jobs/run", &e), REIGN_OK);
    assert_int_equal(reign_tracker_new(NULL, 0, on_held, &w, &t), REIGN_OK);
    reign_runner_config c = REIGN_RUNNER_CONFIG_INIT;
    c.pre_election_pause_ms = 10;
    c.master_check_interval_ms = 60000; /* only the election's event can wake it */
    assert_int_equal(reign_runner_new(e, t, &c, &r), REIGN_OK);

    run_arg a = {.r = r};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, &a), 0);
    /* The tracker follows the gained event well before the 60 s check. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&w.mu);
    while (!w.held && pthread_cond_timedwait(&w.cond, &w.mu, &until) == 0) {
    }
    bool held = w.held;
    pthread_mutex_unlock(&w.mu);
    assert_true(held);
    assert_int_equal(reign_tracker_count(t), 1);

    reign_runner_stop(r);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(a.rc, REIGN_OK);

    reign_runner_free(r);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    reign_tracker_free(t);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pre_election_pause_is_honoured_before_campaigning),
        cmocka_unit_test(test_pre_election_pause_stays_below_the_configured_maximum),
        cmocka_unit_test(test_campaigning_polls_every_master_check_interval),
        cmocka_unit_test(test_becoming_master_sets_the_tracker_true_once),
        cmocka_unit_test(test_mastership_seen_at_the_end_of_the_pause_is_tracked_in_the_same_step),
        cmocka_unit_test(test_master_checks_come_every_master_check_interval),
        cmocka_unit_test(test_losing_mastership_sets_the_tracker_false_and_campaigns_after_a_new_pause),
        cmocka_unit_test(test_loss_seen_between_checks_is_reported_at_once),
        cmocka_unit_test(test_no_resignation_before_the_hold_interval),
        cmocka_unit_test(test_odds_one_resigns_at_the_first_check_after_the_hold_interval),
        cmocka_unit_test(test_huge_odds_never_resign_over_thousands_of_checks),
        cmocka_unit_test(test_odds_zero_never_resign),
        cmocka_unit_test(test_resign_chance_is_about_one_in_odds),
        cmocka_unit_test(test_resignation_waits_for_execution_then_pauses_and_campaigns),
        cmocka_unit_test(test_failed_campaign_is_retried_after_a_check_interval),
        cmocka_unit_test(test_huge_intervals_saturate_instead_of_overflowing),
        cmocka_unit_test(test_default_config_passes_the_check),
        cmocka_unit_test(test_values_below_the_minimums_are_refused_naming_the_field),
        cmocka_unit_test(test_unknown_config_versions_are_refused_naming_the_struct),
        cmocka_unit_test(test_runner_new_refuses_a_bad_config),
        cmocka_unit_test(test_runner_campaigns_and_tracks_a_real_election),
        cmocka_unit_test(test_runner_resignation_goes_through_the_handler),
        cmocka_unit_test(test_runner_without_a_handler_resigns_at_once),
        cmocka_unit_test(test_resignation_executed_after_runner_free_only_frees_it),
        cmocka_unit_test(test_run_becomes_master_and_returns_on_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
