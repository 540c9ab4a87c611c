/* How an application tests its own election-dependent code without a
 * server: noop:// makes every instance master at once (no contention at
 * all), mem://NAME gives real contention between instances inside one test
 * process. Self-checking, no test framework: exits 0 when every check
 * passes, 1 otherwise.
 *
 *   cc -o test_with_noop test_with_noop.c $(pkg-config --cflags --libs reign)
 *   ./test_with_noop
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <reign/reign.h>

/* ---- the application code under test ------------------------------------
 *
 * A ledger that only the master appends to, guarded by the term (the
 * fencing token): an append with a term lower than one already seen is
 * refused, so a deposed master cannot write after its successor. */
typedef struct ledger {
    uint64_t highest_term;
    int entries;
} ledger;

/* 1 = appended, -1 = refused (stale term). */
static int ledger_append(ledger *l, uint64_t term)
{
    if (term < l->highest_term)
        return -1;
    l->highest_term = term;
    l->entries++;
    return 1;
}

/* Append if this instance is master: 1 = appended, 0 = not master,
 * -1 = refused by the ledger. */
static int append_if_master(const reign_election *e, ledger *l)
{
    uint64_t term = 0;
    if (reign_election_term(e, &term) != REIGN_OK)
        return 0;
    return ledger_append(l, term);
}

/* ---- a tiny harness ------------------------------------------------------------ */

static int failed_checks;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n  last reign error: %s\n", __FILE__, \
                    __LINE__, #cond, reign_last_error());                                  \
            failed_checks++;                                                               \
            goto out;                                                                      \
        }                                                                                  \
    } while (0)

/* A call that must return `want`; prints both codes otherwise. */
#define CHECK_RC(call, want)                                                                 \
    do {                                                                                     \
        int rc_ = (call);                                                                    \
        if (rc_ != (want)) {                                                                 \
            fprintf(stderr, "%s:%d: %s\n  returned %s\n  expected %s\n  last reign error: %s\n", \
                    __FILE__, __LINE__, #call, reign_status_str(rc_), reign_status_str(want),  \
                    reign_last_error());                                                     \
            failed_checks++;                                                                 \
            goto out;                                                                        \
        }                                                                                    \
    } while (0)

/* Generous: sanitizer builds on a loaded CI machine are slow. Waits end as
 * soon as the condition holds, so passing runs are fast anyway. */
#define WAIT_MS 10000

static int open_instance(const char *uri, const char *instance_id, reign_factory **out)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = instance_id;
    o.ttl_ms = 2000; /* short, so a test that loses a lease recovers quickly */
    return reign_factory_open(uri, &o, out);
}

/* ---- tests ----------------------------------------------------------------------- */

/* noop://: the code path "I am master" runs at once, with a real term. */
static void test_noop_instance_is_master_at_once(void)
{
    reign_factory *f = NULL;
    reign_election *e = NULL;
    reign_master *m = NULL;
    ledger l = {0, 0};
    uint64_t term = 0;

    CHECK_RC(open_instance("noop://", "app-1", &f), REIGN_OK);
    CHECK_RC(reign_election_new(f, "ledger", &e), REIGN_OK);
    CHECK_RC(reign_election_wait(e, WAIT_MS), REIGN_OK);
    CHECK(reign_election_is_master(e));
    CHECK_RC(reign_election_term(e, &term), REIGN_OK);
    CHECK(term >= 1);
    CHECK(append_if_master(e, &l) == 1);
    CHECK(l.entries == 1 && l.highest_term == term);
    CHECK_RC(reign_election_current_master(e, &m), REIGN_OK);
    CHECK(strcmp(m->instance_id, "app-1") == 0);
    /* Resigning ends mastership before resign returns. */
    CHECK_RC(reign_election_resign(e), REIGN_OK);
    CHECK(!reign_election_is_master(e));
    CHECK(append_if_master(e, &l) == 0);
out:
    reign_master_free(m);
    reign_election_close(e);
    reign_factory_close(f);
}

/* noop:// never tests mutual exclusion: two instances are both master of
 * the same resource. Use mem:// for that (next tests). */
static void test_noop_instances_do_not_exclude_each_other(void)
{
    reign_factory *fa = NULL, *fb = NULL;
    reign_election *ea = NULL, *eb = NULL;

    CHECK_RC(open_instance("noop://", "app-1", &fa), REIGN_OK);
    CHECK_RC(open_instance("noop://", "app-2", &fb), REIGN_OK);
    CHECK_RC(reign_election_new(fa, "ledger", &ea), REIGN_OK);
    CHECK_RC(reign_election_new(fb, "ledger", &eb), REIGN_OK);
    CHECK_RC(reign_election_wait(ea, WAIT_MS), REIGN_OK);
    CHECK_RC(reign_election_wait(eb, WAIT_MS), REIGN_OK);
    CHECK(reign_election_is_master(ea) && reign_election_is_master(eb));
out:
    reign_election_close(ea);
    reign_election_close(eb);
    reign_factory_close(fa);
    reign_factory_close(fb);
}

/* mem://NAME: factories opened on the same NAME share one store, so two
 * "instances" in this process contend for real. */
static void test_mem_second_instance_waits_until_the_first_resigns(void)
{
    reign_factory *fa = NULL, *fb = NULL;
    reign_election *ea = NULL, *eb = NULL;
    reign_master *m = NULL;
    ledger l = {0, 0};
    uint64_t term_a = 0, term_b = 0;

    CHECK_RC(open_instance("mem://contend", "app-1", &fa), REIGN_OK);
    CHECK_RC(open_instance("mem://contend", "app-2", &fb), REIGN_OK);
    CHECK_RC(reign_election_new(fa, "ledger", &ea), REIGN_OK);
    CHECK_RC(reign_election_new(fb, "ledger", &eb), REIGN_OK);

    CHECK_RC(reign_election_wait(ea, WAIT_MS), REIGN_OK);
    CHECK_RC(reign_election_term(ea, &term_a), REIGN_OK);
    CHECK(append_if_master(ea, &l) == 1);

    /* The second instance campaigns but does not win while app-1 holds. */
    CHECK_RC(reign_election_wait(eb, 300), REIGN_ETIMEDOUT);
    CHECK(append_if_master(eb, &l) == 0);
    CHECK_RC(reign_election_current_master(eb, &m), REIGN_OK);
    CHECK(strcmp(m->instance_id, "app-1") == 0 && m->term == term_a);

    /* app-1 resigns: app-2 (still campaigning) takes over with a higher
     * term, and the ledger now refuses app-1's old term. */
    CHECK_RC(reign_election_resign(ea), REIGN_OK);
    CHECK_RC(reign_election_wait(eb, WAIT_MS), REIGN_OK);
    CHECK_RC(reign_election_term(eb, &term_b), REIGN_OK);
    CHECK(term_b > term_a);
    CHECK(append_if_master(eb, &l) == 1);
    CHECK(ledger_append(&l, term_a) == -1);
    CHECK(l.entries == 2);
out:
    reign_master_free(m);
    reign_election_close(ea);
    reign_election_close(eb);
    reign_factory_close(fa);
    reign_factory_close(fb);
}

/* A closed instance (as when a process exits) hands over too, and stores
 * with different names are independent. */
static void test_mem_close_hands_over_and_names_isolate(void)
{
    reign_factory *fa = NULL, *fb = NULL, *other = NULL;
    reign_election *ea = NULL, *eb = NULL, *eo = NULL;

    CHECK_RC(open_instance("mem://handover", "app-1", &fa), REIGN_OK);
    CHECK_RC(open_instance("mem://handover", "app-2", &fb), REIGN_OK);
    CHECK_RC(open_instance("mem://elsewhere", "app-3", &other), REIGN_OK);
    CHECK_RC(reign_election_new(fa, "ledger", &ea), REIGN_OK);
    CHECK_RC(reign_election_new(fb, "ledger", &eb), REIGN_OK);
    CHECK_RC(reign_election_new(other, "ledger", &eo), REIGN_OK);

    CHECK_RC(reign_election_wait(ea, WAIT_MS), REIGN_OK);
    CHECK_RC(reign_election_wait(eo, WAIT_MS), REIGN_OK); /* another store: no contention */
    CHECK_RC(reign_election_start(eb), REIGN_OK);
    CHECK_RC(reign_election_close(ea), REIGN_OK);
    ea = NULL;
    CHECK_RC(reign_election_wait(eb, WAIT_MS), REIGN_OK);
out:
    reign_election_close(ea);
    reign_election_close(eb);
    reign_election_close(eo);
    reign_factory_close(fa);
    reign_factory_close(fb);
    reign_factory_close(other);
}

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"noop_instance_is_master_at_once", test_noop_instance_is_master_at_once},
        {"noop_instances_do_not_exclude_each_other", test_noop_instances_do_not_exclude_each_other},
        {"mem_second_instance_waits_until_the_first_resigns",
         test_mem_second_instance_waits_until_the_first_resigns},
        {"mem_close_hands_over_and_names_isolate", test_mem_close_hands_over_and_names_isolate},
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = failed_checks;
        tests[i].fn();
        if (failed_checks == before) {
            passed++;
            printf("ok     %s\n", tests[i].name);
        } else {
            failed++;
            printf("FAILED %s\n", tests[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
