/* Master tracker tests: one notification per transition, sorted listings,
 * the summary string, held_info, bad IDs and a multi-thread smoke test. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reign/reign.h"

#define MAX_CALLS 64

typedef struct recorder {
    pthread_mutex_t mu;
    int n;
    char ids[MAX_CALLS][32];
    bool values[MAX_CALLS];
} recorder;

static void record(const char *id, bool is_master, void *payload)
{
    recorder *r = payload;
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_CALLS) {
        snprintf(r->ids[r->n], sizeof r->ids[r->n], "%s", id);
        r->values[r->n] = is_master;
    }
    r->n++;
    pthread_mutex_unlock(&r->mu);
}

static int setup_recorder(void **state)
{
    recorder *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -1;
    pthread_mutex_init(&r->mu, NULL);
    *state = r;
    return 0;
}

static int teardown_recorder(void **state)
{
    recorder *r = *state;
    pthread_mutex_destroy(&r->mu);
    free(r);
    return 0;
}

static void assert_strv(char **got, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_non_null(got[i]);
        assert_string_equal(got[i], want[i]);
    }
    assert_null(got[n]);
}

static void test_notifications_fire_once_per_transition(void **state)
{
    recorder *rec = *state;
    const char *ids[] = {"a", "b"};
    reign_tracker *t = NULL;
    assert_int_equal(reign_tracker_new(ids, 2, record, rec, &t), REIGN_OK);

    assert_int_equal(reign_tracker_set(t, "a", true), REIGN_OK);
    assert_int_equal(reign_tracker_set(t, "a", true), REIGN_OK);
    assert_int_equal(reign_tracker_set(t, "b", false), REIGN_OK); /* already false */
    assert_int_equal(reign_tracker_set(t, "a", false), REIGN_OK);
    assert_int_equal(reign_tracker_set(t, "a", false), REIGN_OK);

    assert_int_equal(rec->n, 2);
    assert_string_equal(rec->ids[0], "a");
    assert_true(rec->values[0]);
    assert_string_equal(rec->ids[1], "a");
    assert_false(rec->values[1]);
    reign_tracker_free(t);
}

static void test_count_follows_held_ids(void **state)
{
    (void)state;
    const char *ids[] = {"x", "y", "z"};
    reign_tracker *t = NULL;
    assert_int_equal(reign_tracker_new(ids, 3, NULL, NULL, &t), REIGN_OK);
    assert_int_equal(reign_tracker_count(t), 0);
    reign_tracker_set(t, "x", true);
    reign_tracker_set(t, "z", true);
    reign_tracker_set(t, "z", true);
    assert_int_equal(reign_tracker_count(t), 2);
    reign_tracker_set(t, "x", false);
    assert_int_equal(reign_tracker_count(t), 1);
    reign_tracker_free(t);
}

static void test_held_and_ids_are_sorted(void **state)
{
    (void)state;
    const char *ids[] = {"jobs/c", "jobs/a", "jobs/b", "jobs/a"}; /* a duplicate */
    reign_tracker *t = NULL;
    char **held = NULL, **all = NULL;
    assert_int_equal(reign_tracker_new(ids, 4, NULL, NULL, &t), REIGN_OK);
    reign_tracker_set(t, "jobs/c", true);
    reign_tracker_set(t, "jobs/a", true);

    assert_int_equal(reign_tracker_held(t, &held), REIGN_OK);
    const char *want_held[] = {"jobs/a", "jobs/c"};
    assert_strv(held, want_held, 2);
    assert_int_equal(reign_tracker_ids(t, &all), REIGN_OK);
    const char *want_all[] = {"jobs/a", "jobs/b", "jobs/c"};
    assert_strv(all, want_all, 3);
    reign_strv_free(held);
    reign_strv_free(all);
    reign_tracker_free(t);
}

static void test_empty_tracker_lists_nothing(void **state)
{
    (void)state;
    reign_tracker *t = NULL;
    char **held = NULL;
    assert_int_equal(reign_tracker_new(NULL, 0, NULL, NULL, &t), REIGN_OK);
    assert_int_equal(reign_tracker_held(t, &held), REIGN_OK);
    assert_null(held[0]);
    reign_strv_free(held);
    char *s = reign_tracker_string(t);
    assert_string_equal(s, "");
    free(s);
    reign_held_info *info = NULL;
    size_t n = 99;
    assert_int_equal(reign_tracker_held_info(t, &info, &n), REIGN_OK);
    assert_int_equal(n, 0);
    reign_held_info_free(info, n);
    reign_tracker_free(t);
}

static void test_untracked_id_becomes_tracked_on_set(void **state)
{
    recorder *rec = *state;
    const char *ids[] = {"m"};
    reign_tracker *t = NULL;
    char **all = NULL;
    assert_int_equal(reign_tracker_new(ids, 1, record, rec, &t), REIGN_OK);
    assert_int_equal(reign_tracker_set(t, "b", false), REIGN_OK);
    assert_int_equal(rec->n, 0); /* untracked counts as not held: no transition */
    assert_int_equal(reign_tracker_set(t, "z", true), REIGN_OK);
    assert_int_equal(rec->n, 1);
    assert_int_equal(reign_tracker_ids(t, &all), REIGN_OK);
    const char *want[] = {"b", "m", "z"};
    assert_strv(all, want, 3);
    reign_strv_free(all);
    reign_tracker_free(t);
}

static void test_string_lists_every_id_with_held_ones_in_brackets(void **state)
{
    (void)state;
    const char *ids[] = {"c", "b", "a"};
    reign_tracker *t = NULL;
    assert_int_equal(reign_tracker_new(ids, 3, NULL, NULL, &t), REIGN_OK);
    char *s = reign_tracker_string(t);
    assert_string_equal(s, "a b c");
    free(s);
    reign_tracker_set(t, "b", true);
    s = reign_tracker_string(t);
    assert_string_equal(s, "a [b] c");
    free(s);
    reign_tracker_set(t, "a", true);
    reign_tracker_set(t, "c", true);
    reign_tracker_set(t, "b", false);
    s = reign_tracker_string(t);
    assert_string_equal(s, "[a] b [c]");
    free(s);
    reign_tracker_free(t);
}

static void test_held_info_gives_sorted_ids_with_since_times(void **state)
{
    (void)state;
    const char *ids[] = {"q", "p", "r"};
    reign_tracker *t = NULL;
    reign_held_info *info = NULL;
    size_t n = 0;
    assert_int_equal(reign_tracker_new(ids, 3, NULL, NULL, &t), REIGN_OK);
    int64_t before = reign_monotonic_ms();
    reign_tracker_set(t, "r", true);
    reign_tracker_set(t, "p", true);
    int64_t after = reign_monotonic_ms();

    assert_int_equal(reign_tracker_held_info(t, &info, &n), REIGN_OK);
    assert_int_equal(n, 2);
    assert_string_equal(info[0].resource_id, "p");
    assert_string_equal(info[1].resource_id, "r");
    for (size_t i = 0; i < n; i++)
        assert_in_range(info[i].since_ms, before, after);
    reign_held_info_free(info, n);

    /* A repeated set keeps the original since time. */
    reign_tracker_set(t, "r", false);
    assert_int_equal(reign_tracker_held_info(t, &info, &n), REIGN_OK);
    assert_int_equal(n, 1);
    assert_string_equal(info[0].resource_id, "p");
    reign_held_info_free(info, n);
    reign_tracker_free(t);
}

static void test_bad_ids_are_refused_with_a_message(void **state)
{
    (void)state;
    reign_tracker *t = NULL;
    const char *bad[] = {"ok", ""};
    assert_int_equal(reign_tracker_new(bad, 2, NULL, NULL, &t), REIGN_EINVAL);
    assert_null(t);
    assert_string_equal(reign_last_error(), "tracker: ids[1] is empty");
    assert_int_equal(reign_tracker_new(NULL, 3, NULL, NULL, &t), REIGN_EINVAL);

    assert_int_equal(reign_tracker_new(NULL, 0, NULL, NULL, &t), REIGN_OK);
    assert_int_equal(reign_tracker_set(t, NULL, true), REIGN_EINVAL);
    assert_string_equal(reign_last_error(), "tracker: resource ID is NULL");
    char *long_id = malloc(REIGN_RESOURCE_ID_MAX + 2);
    assert_non_null(long_id);
    memset(long_id, 'x', REIGN_RESOURCE_ID_MAX + 1);
    long_id[REIGN_RESOURCE_ID_MAX + 1] = '\0';
    assert_int_equal(reign_tracker_set(t, long_id, true), REIGN_EINVAL);
    assert_non_null(strstr(reign_last_error(), "longer than 1024 bytes"));
    long_id[REIGN_RESOURCE_ID_MAX] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(reign_tracker_set(t, long_id, true), REIGN_OK);
    assert_int_equal(reign_tracker_count(t), 1);
    free(long_id);
    reign_tracker_free(t);
}

/* A callback that sets another ID on the same tracker must not deadlock. */
static void reenter(const char *id, bool is_master, void *payload)
{
    reign_tracker **t = payload;
    if (strcmp(id, "outer") == 0 && is_master)
        reign_tracker_set(*t, "inner", true);
    if (strcmp(id, "outer") == 0 && !is_master)
        reign_tracker_set(*t, "outer", true); /* the same ID, nested */
}

static void test_callback_may_set_ids_on_the_same_tracker(void **state)
{
    (void)state;
    reign_tracker *t = NULL;
    assert_int_equal(reign_tracker_new(NULL, 0, reenter, &t, &t), REIGN_OK);
    assert_int_equal(reign_tracker_set(t, "outer", true), REIGN_OK);
    assert_int_equal(reign_tracker_count(t), 2);
    assert_int_equal(reign_tracker_set(t, "outer", false), REIGN_OK);
    char *s = reign_tracker_string(t);
    assert_string_equal(s, "[inner] [outer]");
    free(s);
    reign_tracker_free(t);
}

/* ---- threads ------------------------------------------------------------- */

#define SMOKE_THREADS 4
#define SMOKE_IDS 8
#define SMOKE_ROUNDS 5000

typedef struct smoke {
    reign_tracker *t;
    pthread_mutex_t mu;
    int last[SMOKE_IDS];    /* -1 unknown, else the last value notified */
    int order_errors;       /* two equal notifications in a row for one ID */
    long notified;
    unsigned seed;
} smoke;

static void smoke_notify(const char *id, bool is_master, void *payload)
{
    smoke *s = payload;
    int i = atoi(id + 3);
    /* Widen the window between the transition and its notification, where
     * an unordered tracker would let a later transition overtake. */
    sched_yield();
    pthread_mutex_lock(&s->mu);
    if (s->last[i] == (int)is_master)
        s->order_errors++;
    s->last[i] = is_master;
    s->notified++;
    pthread_mutex_unlock(&s->mu);
}

typedef struct smoke_arg {
    smoke *s;
    unsigned seed;
} smoke_arg;

static void *smoke_thread(void *p)
{
    smoke_arg *a = p;
    char id[16];
    for (int i = 0; i < SMOKE_ROUNDS; i++) {
        a->seed = a->seed * 1103515245u + 12345u;
        unsigned k = (a->seed >> 8) % SMOKE_IDS;
        snprintf(id, sizeof id, "id-%u", k);
        reign_tracker_set(a->s->t, id, (a->seed >> 20) & 1);
        if (i % 97 == 0) {
            char **held = NULL;
            if (reign_tracker_held(a->s->t, &held) == REIGN_OK)
                reign_strv_free(held);
            free(reign_tracker_string(a->s->t));
        }
    }
    return NULL;
}

static void test_concurrent_sets_keep_counts_and_notification_order(void **state)
{
    (void)state;
    smoke s = {.t = NULL};
    pthread_mutex_init(&s.mu, NULL);
    for (int i = 0; i < SMOKE_IDS; i++)
        s.last[i] = 0; /* every ID starts not held */
    assert_int_equal(reign_tracker_new(NULL, 0, smoke_notify, &s, &s.t), REIGN_OK);

    pthread_t th[SMOKE_THREADS];
    smoke_arg args[SMOKE_THREADS];
    for (int i = 0; i < SMOKE_THREADS; i++) {
        args[i] = (smoke_arg){.s = &s, .seed = (unsigned)i * 7919u + 1u};
        assert_int_equal(pthread_create(&th[i], NULL, smoke_thread, &args[i]), 0);
    }
    for (int i = 0; i < SMOKE_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);

    /* Notifications alternate per ID, and the last one matches the state. */
    assert_int_equal(s.order_errors, 0);
    size_t held_by_notify = 0;
    for (int i = 0; i < SMOKE_IDS; i++)
        held_by_notify += s.last[i] == 1;
    assert_int_equal(reign_tracker_count(s.t), held_by_notify);
    char **held = NULL;
    assert_int_equal(reign_tracker_held(s.t, &held), REIGN_OK);
    size_t n = 0;
    while (held[n] != NULL) {
        assert_int_equal(s.last[atoi(held[n] + 3)], 1);
        n++;
    }
    assert_int_equal(n, held_by_notify);
    reign_strv_free(held);
    reign_tracker_free(s.t);
    pthread_mutex_destroy(&s.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notifications_fire_once_per_transition,
                                        setup_recorder, teardown_recorder),
        cmocka_unit_test(test_count_follows_held_ids),
        cmocka_unit_test(test_held_and_ids_are_sorted),
        cmocka_unit_test(test_empty_tracker_lists_nothing),
        cmocka_unit_test_setup_teardown(test_untracked_id_becomes_tracked_on_set, setup_recorder,
                                        teardown_recorder),
        cmocka_unit_test(test_string_lists_every_id_with_held_ones_in_brackets),
        cmocka_unit_test(test_held_info_gives_sorted_ids_with_since_times),
        cmocka_unit_test(test_bad_ids_are_refused_with_a_message),
        cmocka_unit_test(test_callback_may_set_ids_on_the_same_tracker),
        cmocka_unit_test(test_concurrent_sets_keep_counts_and_notification_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
