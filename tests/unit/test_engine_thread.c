/* The lease engine through its thread and the public API, against the
 * in-process mem:// backend: deadlines while the "server" stalls, terms,
 * callbacks, batching, close and resign in real time. The engine's rules
 * on a fake clock, without a thread, are in test_engine.c. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reign/mem.h"
#include "reign/reign.h"

#define TTL_MS 300

typedef struct events {
    pthread_mutex_t mu;
    int gained, lost;
    reign_lost_reason last_reason;
    uint64_t last_term;
} events;

static void on_event(reign_election *e, const reign_event *ev, void *payload)
{
    (void)e;
    events *s = payload;
    pthread_mutex_lock(&s->mu);
    if (ev->kind == REIGN_EVENT_GAINED)
        s->gained++;
    else {
        s->lost++;
        s->last_reason = ev->reason;
    }
    s->last_term = ev->term;
    pthread_mutex_unlock(&s->mu);
}

static int lost_count(events *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->lost;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static reign_factory *open_mem(const char *store, const char *instance)
{
    char uri[128];
    snprintf(uri, sizeof uri, "mem://%s", store);
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = instance;
    o.ttl_ms = TTL_MS;
    o.retry_interval_ms = 50;
    reign_factory *f = NULL;
    int rc = reign_factory_open(uri, &o, &f);
    if (rc != REIGN_OK)
        fail_msg("open %s: %d %s", uri, rc, reign_last_error());
    return f;
}

/* Poll until is_master equals `want` or `ms` pass; returns elapsed ms or -1. */
static int64_t wait_master(reign_election *e, bool want, int64_t ms)
{
    int64_t start = reign_monotonic_ms();
    while (reign_monotonic_ms() - start <= ms) {
        if (reign_election_is_master(e) == want)
            return reign_monotonic_ms() - start;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void test_belief_ends_at_the_deadline_while_the_backend_stalls(void **state)
{
    (void)state;
    events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    reign_factory *f = open_mem("stall", "a");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "res", &e), REIGN_OK);
    assert_int_equal(reign_election_set_callback(e, on_event, &ev), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 2000), REIGN_OK);

    assert_int_equal(reign_mem_set_fault("stall", REIGN_MEM_FAULT_STALL), REIGN_OK);
    int64_t stalled_at = reign_monotonic_ms();
    int64_t took = wait_master(e, false, 2 * TTL_MS);
    int64_t since_stall = reign_monotonic_ms() - stalled_at;
    if (took < 0 || since_stall > TTL_MS + 50)
        fail_msg("still master %lld ms after the stall began (ttl %d ms)", (long long)since_stall,
                 TTL_MS);
    /* The LOST callback follows once the stalled batch times out. */
    int64_t start = reign_monotonic_ms();
    while (lost_count(&ev) == 0 && reign_monotonic_ms() - start < 2000)
        wait_master(e, true, 5);
    assert_int_equal(lost_count(&ev), 1);
    assert_int_equal(ev.last_reason, REIGN_LOST_EXPIRED);

    assert_int_equal(reign_mem_set_fault("stall", REIGN_MEM_FAULT_NONE), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 3000), REIGN_OK);
    uint64_t term = 0;
    assert_int_equal(reign_election_term(e, &term), REIGN_OK);
    assert_true(term > ev.last_term - 1);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

static void test_terms_rise_across_resign_and_holders(void **state)
{
    (void)state;
    reign_factory *a = open_mem("terms", "a");
    reign_factory *b = open_mem("terms", "b");
    reign_election *ea = NULL, *eb = NULL;
    assert_int_equal(reign_election_new(a, "t", &ea), REIGN_OK);
    assert_int_equal(reign_election_new(b, "t", &eb), REIGN_OK);
    uint64_t last = 0;
    for (int i = 0; i < 10; i++) {
        reign_election *winner = i % 2 ? eb : ea;
        assert_int_equal(reign_election_wait(winner, 3000), REIGN_OK);
        uint64_t term = 0;
        assert_int_equal(reign_election_term(winner, &term), REIGN_OK);
        if (term <= last)
            fail_msg("round %d: term %llu after %llu", i, (unsigned long long)term,
                     (unsigned long long)last);
        last = term;
        assert_int_equal(reign_election_resign(winner), REIGN_OK);
        assert_false(reign_election_is_master(winner));
        assert_int_equal(reign_election_term(winner, &term), REIGN_ENOTMASTER);
    }
    assert_int_equal(reign_election_close(ea), REIGN_OK);
    assert_int_equal(reign_election_close(eb), REIGN_OK);
    assert_int_equal(reign_factory_close(a), REIGN_OK);
    assert_int_equal(reign_factory_close(b), REIGN_OK);
}

static void test_resign_reports_lost_resigned_and_hands_over(void **state)
{
    (void)state;
    events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    reign_factory *a = open_mem("handover", "a");
    reign_factory *b = open_mem("handover", "b");
    reign_election *ea = NULL, *eb = NULL;
    assert_int_equal(reign_election_new(a, "h", &ea), REIGN_OK);
    assert_int_equal(reign_election_set_callback(ea, on_event, &ev), REIGN_OK);
    assert_int_equal(reign_election_wait(ea, 2000), REIGN_OK);
    assert_int_equal(reign_election_new(b, "h", &eb), REIGN_OK);
    assert_int_equal(reign_election_start(eb), REIGN_OK);
    assert_int_equal(wait_master(eb, true, 100), -1); /* a holds it */

    int64_t t0 = reign_monotonic_ms();
    assert_int_equal(reign_election_resign(ea), REIGN_OK);
    /* Notification, not the retry tick or the TTL, makes b master. */
    assert_int_equal(reign_election_wait(eb, 1000), REIGN_OK);
    int64_t handoff = reign_monotonic_ms() - t0;
    if (handoff >= 50)
        fail_msg("handoff took %lld ms (retry interval 50 ms, ttl %d ms)", (long long)handoff,
                 TTL_MS);
    int64_t start = reign_monotonic_ms();
    while (lost_count(&ev) == 0 && reign_monotonic_ms() - start < 1000)
        wait_master(ea, true, 5);
    assert_int_equal(ev.gained, 1);
    assert_int_equal(ev.lost, 1);
    assert_int_equal(ev.last_reason, REIGN_LOST_RESIGNED);

    reign_master *m = NULL;
    assert_int_equal(reign_election_current_master(ea, &m), REIGN_OK);
    assert_string_equal(m->instance_id, "b");
    reign_master_free(m);
    assert_int_equal(reign_election_close(ea), REIGN_OK);
    assert_int_equal(reign_election_close(eb), REIGN_OK);
    assert_int_equal(reign_factory_close(a), REIGN_OK);
    assert_int_equal(reign_factory_close(b), REIGN_OK);
}

static void test_many_elections_acquire_in_few_batches(void **state)
{
    (void)state;
    reign_factory *f = open_mem("batch", "a");
    enum { N = 500 };
    static reign_election *e[N];
    reign_stats before, after;
    assert_int_equal(reign_factory_stats(f, &before), REIGN_OK);
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "r%d", i);
        assert_int_equal(reign_election_new(f, id, &e[i]), REIGN_OK);
        assert_int_equal(reign_election_start(e[i]), REIGN_OK);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(reign_election_wait(e[i], 3000), REIGN_OK);
    assert_int_equal(reign_factory_stats(f, &after), REIGN_OK);
    assert_int_equal(after.masterships, N);
    assert_int_equal(after.ops_acquire - before.ops_acquire, N);
    /* Starting races with the engine, which gathers whatever is due each
     * time it wakes: a slow starter (TSan on a loaded machine saw 54) gives
     * it a handful per batch; one per election would be 500. */
    if (after.batches - before.batches > N / 5)
        fail_msg("%llu batches for %d acquisitions",
                 (unsigned long long)(after.batches - before.batches), N);
    /* Over three renew periods, renewals ride together. */
    uint64_t b0 = after.renew_batches;
    wait_master(e[0], false, 3 * TTL_MS);
    assert_int_equal(reign_factory_stats(f, &after), REIGN_OK);
    if (after.renew_batches - b0 > 9)
        fail_msg("%llu renew batches in 3 renew periods", (unsigned long long)(after.renew_batches - b0));
    assert_int_equal(after.masterships, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(reign_election_close(e[i]), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

typedef struct waiter_arg {
    reign_election *e;
    int rc;
} waiter_arg;

static void *waiter(void *p)
{
    waiter_arg *w = p;
    w->rc = reign_election_wait(w->e, -1);
    return NULL;
}

static void test_close_wakes_a_waiter_with_closed(void **state)
{
    (void)state;
    reign_factory *a = open_mem("close", "a");
    reign_factory *b = open_mem("close", "b");
    reign_election *ea = NULL, *eb = NULL;
    assert_int_equal(reign_election_new(a, "c", &ea), REIGN_OK);
    assert_int_equal(reign_election_wait(ea, 2000), REIGN_OK);
    assert_int_equal(reign_election_new(b, "c", &eb), REIGN_OK);
    waiter_arg w = {eb, 0};
    pthread_t t;
    pthread_create(&t, NULL, waiter, &w);
    wait_master(eb, true, 50);
    assert_int_equal(reign_election_close(eb), REIGN_OK);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, REIGN_ECLOSED);
    assert_int_equal(reign_election_close(ea), REIGN_OK);
    assert_int_equal(reign_factory_close(a), REIGN_OK);
    assert_int_equal(reign_factory_close(b), REIGN_OK);
}

static void test_wait_times_out_on_a_held_resource(void **state)
{
    (void)state;
    reign_factory *a = open_mem("timeout", "a");
    reign_factory *b = open_mem("timeout", "b");
    reign_election *ea = NULL, *eb = NULL;
    assert_int_equal(reign_election_new(a, "x", &ea), REIGN_OK);
    assert_int_equal(reign_election_wait(ea, 2000), REIGN_OK);
    assert_int_equal(reign_election_new(b, "x", &eb), REIGN_OK);
    int64_t t0 = reign_monotonic_ms();
    assert_int_equal(reign_election_wait(eb, 100), REIGN_ETIMEDOUT);
    int64_t took = reign_monotonic_ms() - t0;
    assert_true(took >= 100 && took < 600);
    assert_int_equal(reign_election_close(ea), REIGN_OK);
    assert_int_equal(reign_election_close(eb), REIGN_OK);
    assert_int_equal(reign_factory_close(a), REIGN_OK);
    assert_int_equal(reign_factory_close(b), REIGN_OK);
}

static void test_factory_close_refuses_while_elections_are_open(void **state)
{
    (void)state;
    reign_factory *f = open_mem("busy", "a");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "x", &e), REIGN_OK);
    reign_election *dup = NULL;
    assert_int_equal(reign_election_new(f, "x", &dup), REIGN_EBUSY);
    assert_int_equal(reign_factory_close(f), REIGN_EBUSY);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

static void test_bad_resource_ids_are_refused(void **state)
{
    (void)state;
    reign_factory *f = open_mem("ids", "a");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "", &e), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "empty"));
    char long_id[REIGN_RESOURCE_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(reign_election_new(f, long_id, &e), REIGN_EINVAL);
    long_id[REIGN_RESOURCE_ID_MAX] = '\0';
    assert_int_equal(reign_election_new(f, long_id, &e), REIGN_OK);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

static void test_backend_failure_is_an_error_not_a_master(void **state)
{
    (void)state;
    reign_factory *f = open_mem("fail", "a");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "x", &e), REIGN_OK);
    assert_int_equal(reign_mem_set_fault("fail", REIGN_MEM_FAULT_FAIL), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 200), REIGN_ETIMEDOUT);
    reign_master *m = NULL;
    assert_int_equal(reign_election_current_master(e, &m), REIGN_EBACKEND);
    assert_true(strlen(reign_last_error()) > 0);
    assert_int_equal(reign_mem_set_fault("fail", REIGN_MEM_FAULT_NONE), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 2000), REIGN_OK);
    reign_stats st;
    assert_int_equal(reign_factory_stats(f, &st), REIGN_OK);
    assert_true(st.op_errors > 0);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

static char *metrics_text(reign_factory *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    assert_non_null(mf);
    assert_int_equal(reign_metrics_write(f, mf), REIGN_OK);
    fclose(mf);
    return buf;
}

static void test_metrics_show_masterships_terms_and_escaped_names(void **state)
{
    (void)state;
    reign_factory *f = open_mem("metrics", "a");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "we\"ird\nname", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 2000), REIGN_OK);
    uint64_t term = 0;
    assert_int_equal(reign_election_term(e, &term), REIGN_OK);
    char *text = metrics_text(f);
    assert_non_null(strstr(text, "reign_masterships{backend=\"mem\"} 1\n"));
    assert_non_null(strstr(text, "reign_transitions_total{backend=\"mem\",kind=\"gained\"} 1\n"));
    char want[128];
    snprintf(want, sizeof want, "reign_term{resource=\"we\\\"ird\\nname\"} %llu\n",
             (unsigned long long)term);
    if (strstr(text, want) == NULL)
        fail_msg("no '%s' in:\n%s", want, text);
    assert_non_null(strstr(text, "reign_healthy{backend=\"mem\"} 1\n"));
    assert_non_null(strstr(text, "reign_batch_duration_seconds_count{backend=\"mem\"}"));
    free(text);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

static void test_metrics_never_give_two_resources_one_label(void **state)
{
    (void)state;
    reign_factory *f = open_mem("metrics-ids", "a");
    const char *ids[] = {"a\x01", "a\\x01", "b\xff", "b\\xff", "caf\xc3\xa9"};
    reign_election *e[5];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(reign_election_new(f, ids[i], &e[i]), REIGN_OK);
        assert_int_equal(reign_election_wait(e[i], 2000), REIGN_OK);
    }
    char *text = metrics_text(f);
    const char *want[] = {"{resource=\"a\\\\x01\"}", "{resource=\"a\\\\\\\\x01\"}",
                          "{resource=\"b\\\\xff\"}", "{resource=\"b\\\\\\\\xff\"}",
                          "{resource=\"caf\xc3\xa9\"}"};
    for (int i = 0; i < 5; i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("no %s in:\n%s", want[i], text);
    free(text);
    for (int i = 0; i < 5; i++)
        assert_int_equal(reign_election_close(e[i]), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

/* A joined factory leases a member slot; that is bookkeeping, not one of
 * the user's resources: stats, health and metrics count resources only. */
static void test_the_member_slot_is_not_counted_as_a_mastership(void **state)
{
    (void)state;
    reign_factory *f = open_mem("slot-count", "a");
    reign_membership_config mc = REIGN_MEMBERSHIP_CONFIG_INIT;
    assert_int_equal(reign_factory_join(f, &mc), REIGN_OK);
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "x", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 2000), REIGN_OK);
    reign_stats st;
    assert_int_equal(reign_factory_stats(f, &st), REIGN_OK);
    assert_int_equal(st.masterships, 1);
    assert_int_equal(st.gained, 1);
    reign_health h;
    assert_int_equal(reign_factory_health(f, &h), REIGN_OK);
    assert_int_equal(h.masterships, 1);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(reign_metrics_write(f, out), REIGN_OK);
    fclose(out);
    assert_non_null(strstr(text, "reign_masterships{backend=\"mem\"} 1\n"));
    free(text);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_stats(f, &st), REIGN_OK);
    assert_int_equal(st.masterships, 0);
    assert_int_equal(reign_factory_leave(f), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

/* A resignation whose RELEASE fails (a backend blip) is retried: the
 * candidate takes over once the backend answers again, not a TTL later. */
static void test_a_failed_release_is_retried_so_the_handoff_stays_prompt(void **state)
{
    (void)state;
    char uri[] = "mem://release-retry";
    reign_options o = REIGN_OPTIONS_INIT;
    o.ttl_ms = 4000;
    o.retry_interval_ms = 50;
    reign_factory *fa = NULL, *fb = NULL;
    o.instance_id = "a";
    assert_int_equal(reign_factory_open(uri, &o, &fa), REIGN_OK);
    o.instance_id = "b";
    assert_int_equal(reign_factory_open(uri, &o, &fb), REIGN_OK);
    reign_election *ea = NULL, *eb = NULL;
    assert_int_equal(reign_election_new(fa, "r", &ea), REIGN_OK);
    assert_int_equal(reign_election_wait(ea, 2000), REIGN_OK);
    assert_int_equal(reign_election_new(fb, "r", &eb), REIGN_OK);
    assert_int_equal(reign_election_start(eb), REIGN_OK);
    assert_true(wait_master(eb, true, 200) < 0);

    assert_int_equal(reign_mem_set_fault("release-retry", REIGN_MEM_FAULT_FAIL), REIGN_OK);
    int64_t resigned = reign_monotonic_ms();
    /* returns after the failed try, and says so (belief has ended anyway) */
    assert_int_equal(reign_election_resign(ea), REIGN_EBACKEND);
    assert_non_null(strstr(reign_last_error(), "RELEASE"));
    assert_false(reign_election_is_master(ea));
    struct timespec blip = {0, 200 * 1000000};
    nanosleep(&blip, NULL);
    assert_false(reign_election_is_master(eb));
    assert_int_equal(reign_mem_set_fault("release-retry", REIGN_MEM_FAULT_NONE), REIGN_OK);

    /* the lease would last until about 4 s after its last renewal */
    assert_true(wait_master(eb, true, 3000) >= 0);
    int64_t took = reign_monotonic_ms() - resigned;
    print_message("handoff after a failed RELEASE: %lld ms (ttl 4000 ms)\n", (long long)took);
    assert_true(took < 1500);

    assert_int_equal(reign_election_close(eb), REIGN_OK);
    assert_int_equal(reign_election_close(ea), REIGN_OK);
    assert_int_equal(reign_factory_close(fb), REIGN_OK);
    assert_int_equal(reign_factory_close(fa), REIGN_OK);
}

static void test_health_turns_bad_when_the_backend_fails_and_recovers(void **state)
{
    (void)state;
    reign_factory *f = open_mem("health", "a");
    reign_election *e = NULL;
    assert_int_equal(reign_election_new(f, "x", &e), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 2000), REIGN_OK);
    reign_health h;
    assert_int_equal(reign_factory_health(f, &h), REIGN_OK);
    assert_true(h.healthy);
    assert_int_equal(h.masterships, 1);
    assert_int_equal(reign_mem_set_fault("health", REIGN_MEM_FAULT_FAIL), REIGN_OK);
    int64_t start = reign_monotonic_ms();
    do {
        wait_master(e, false, 5);
        assert_int_equal(reign_factory_health(f, &h), REIGN_OK);
    } while (h.healthy && reign_monotonic_ms() - start < 2000);
    assert_false(h.healthy);
    assert_int_equal(h.last_error_status, REIGN_EBACKEND);
    assert_int_equal(reign_mem_set_fault("health", REIGN_MEM_FAULT_NONE), REIGN_OK);
    assert_int_equal(reign_election_wait(e, 3000), REIGN_OK);
    start = reign_monotonic_ms();
    do {
        wait_master(e, false, 5);
        assert_int_equal(reign_factory_health(f, &h), REIGN_OK);
    } while (!h.healthy && reign_monotonic_ms() - start < 2000);
    assert_true(h.healthy);
    assert_int_equal(reign_election_close(e), REIGN_OK);
    assert_int_equal(reign_factory_close(f), REIGN_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_belief_ends_at_the_deadline_while_the_backend_stalls),
        cmocka_unit_test(test_terms_rise_across_resign_and_holders),
        cmocka_unit_test(test_resign_reports_lost_resigned_and_hands_over),
        cmocka_unit_test(test_many_elections_acquire_in_few_batches),
        cmocka_unit_test(test_close_wakes_a_waiter_with_closed),
        cmocka_unit_test(test_wait_times_out_on_a_held_resource),
        cmocka_unit_test(test_factory_close_refuses_while_elections_are_open),
        cmocka_unit_test(test_bad_resource_ids_are_refused),
        cmocka_unit_test(test_backend_failure_is_an_error_not_a_master),
        cmocka_unit_test(test_metrics_show_masterships_terms_and_escaped_names),
        cmocka_unit_test(test_the_member_slot_is_not_counted_as_a_mastership),
        cmocka_unit_test(test_a_failed_release_is_retried_so_the_handoff_stays_prompt),
        cmocka_unit_test(test_metrics_never_give_two_resources_one_label),
        cmocka_unit_test(test_health_turns_bad_when_the_backend_fails_and_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
