/* The backend conformance suite: what its files share — configuration from
 * the environment, clocks, fixtures that teardown cleans, server control,
 * mastership recorders and assertion macros that print both operands.
 *
 * The suite uses only include/reign/reign.h (DESIGN.md §1), plus the mem://
 * test hooks of include/reign/mem.h in mem-only code (REIGN_CONF_HAVE_MEM).
 */
#ifndef REIGN_TESTS_CONFORMANCE_CONF_H
#define REIGN_TESTS_CONFORMANCE_CONF_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "reign/reign.h"

/* ---- configuration (conf_harness.c) -------------------------------------- */

typedef struct conf_config {
    const char *uri;          /* REIGN_CONF_URI */
    const char *backend;      /* REIGN_CONF_BACKEND, "?" if unset */
    const char *server_ctl;   /* REIGN_CONF_SERVER_CTL, NULL if unset */
    const char *dead_uri;     /* REIGN_CONF_DEAD_URI, NULL if unset */
    const char *caps;         /* REIGN_CONF_CAPS, "" if unset */
    int64_t ttl_ms;           /* REIGN_CONF_TTL_MS, default 1000 */
    int64_t retry_ms;         /* REIGN_CONF_RETRY_MS, default 250 */
    const char *many_uri;     /* REIGN_CONF_MANY_URI: the 1,000-resource cases' URI, default uri */
    int64_t many_ttl_ms;      /* REIGN_CONF_MANY_TTL_MS: their TTL, default ttl_ms */
    double drift;             /* the engine's default max_drift (0.01) */
    char prefix[64];          /* unique per run: resource IDs and instance IDs */
    bool mem_ctl;             /* server control through the mem:// hooks */
    char mem_store[256];      /* the NAME of mem://NAME */
} conf_config;

extern conf_config conf;

/* Read the environment; -1 with a message on stderr if unusable. */
int conf_config_load(void);

/* A factory on a given URI (registered for teardown). */
reign_factory *conf_factory_uri(const char *uri, const reign_options *options);

/* True if REIGN_CONF_CAPS lists `cap`. */
bool conf_has_cap(const char *cap);

/* Skip the current test, printing why (never a silent pass). */
#define CONF_SKIP(...)                                                                   \
    do {                                                                                 \
        print_message("[  SKIP    ] conformance[%s]: ", conf.backend);                   \
        print_message(__VA_ARGS__);                                                      \
        print_message("\n");                                                             \
        skip();                                                                          \
    } while (0)

/* Skip unless the backend has real contention between instances. */
#define CONF_NEED_CONTENTION()                                                           \
    do {                                                                                 \
        if (conf_has_cap("nocontention"))                                                \
            CONF_SKIP("backend has no contention (caps: nocontention): every instance "  \
                      "is master of everything");                                        \
    } while (0)

/* Skip unless instances in different processes share the backend. */
#define CONF_NEED_PROCESSES()                                                            \
    do {                                                                                 \
        CONF_NEED_CONTENTION();                                                          \
        if (conf_has_cap("noprocess"))                                                   \
            CONF_SKIP("backend keeps its store inside one process (caps: noprocess): "   \
                      "a forked holder would not share it");                             \
    } while (0)

/* ---- time ---------------------------------------------------------------- */

/* CLOCK_MONOTONIC in ns: shared by all processes of the machine. */
int64_t conf_now_ns(void);
double conf_ms(int64_t ns);
#define CONF_NS_PER_MS INT64_C(1000000)

/* Sleep-free wait for a predicate: polls every poll_us until it holds (true)
 * or timeout_ms passes (false). */
typedef bool (*conf_pred_fn)(void *ctx);
bool conf_wait_until(conf_pred_fn pred, void *ctx, int64_t timeout_ms, int64_t poll_us);

/* Pause for a short poll interval (the unit of every polling loop). */
void conf_poll_pause_us(int64_t us);

/* ---- assertions ----------------------------------------------------------- */

/* Status assertion: prints expected and actual status names and the
 * thread's last error, captured right after `got` was evaluated. */
#define CONF_EXPECT_STATUS(want, got, ...)                                               \
    do {                                                                                 \
        int conf_g_ = (got);                                                             \
        int conf_w_ = (want);                                                            \
        if (conf_g_ != conf_w_) {                                                        \
            char conf_e_[1024];                                                          \
            conf_copy_last_error(conf_e_, sizeof conf_e_);                               \
            print_error("conformance[%s]: ", conf.backend);                              \
            print_error(__VA_ARGS__);                                                    \
            print_error(": expected %s, got %s (last error: \"%s\")\n",                  \
                        reign_status_str(conf_w_), reign_status_str(conf_g_), conf_e_);  \
            fail();                                                                      \
        }                                                                                \
    } while (0)

#define CONF_OK(call, ...) CONF_EXPECT_STATUS(REIGN_OK, (call), __VA_ARGS__)

/* Condition with a message; prints the message (with its operands). */
#define CONF_CHECK(cond, ...)                                                            \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            print_error("conformance[%s]: check failed: %s: ", conf.backend, #cond);     \
            print_error(__VA_ARGS__);                                                    \
            print_error("\n");                                                           \
            fail();                                                                      \
        }                                                                                \
    } while (0)

void conf_copy_last_error(char *buf, size_t size);

/* ---- fixtures: everything a test opens, closed by teardown ---------------- */

/* Options for one instance of the current test: unique instance ID made of
 * the run prefix and `who`, the suite's TTL and retry interval. The strings
 * live until the next teardown. */
reign_options conf_options(const char *who);

/* A unique resource ID for the current test: "<prefix>/<name>". Lives until
 * the next teardown. */
const char *conf_resource(const char *name);

/* Open a factory on conf.uri (asserts success); teardown closes it. */
reign_factory *conf_factory(const char *who);
reign_factory *conf_factory_opts(const reign_options *options);

/* New election (asserts success); teardown closes it. */
reign_election *conf_election(reign_factory *f, const char *resource_id);

/* Let teardown close an election made with reign_election_new. */
void conf_track_election(reign_election *e);

/* Let teardown free an observer (before the factories); free it now and
 * forget it. */
void conf_track_observer(reign_observer *o);
void conf_observer_free(reign_observer *o);

/* Memory freed at teardown (asserts on failure). */
void *conf_alloc(size_t size);

/* Close now (asserting REIGN_OK) and forget. */
void conf_election_close(reign_election *e);
void conf_factory_close(reign_factory *f);

/* A child process teardown SIGKILLs and reaps if still there. */
void conf_track_child(pid_t pid);
void conf_untrack_child(pid_t pid);

int conf_setup(void **state);
int conf_teardown(void **state);

/* ---- election helpers ------------------------------------------------------- */

/* Wait until e is master; asserts, printing what was seen, on timeout.
 * Returns the monotonic ns at which is_master was first seen true; if
 * before_ns is not NULL it gets the last sample that still saw false. The
 * change happened between the two: when this thread was not scheduled for a
 * while they are far apart, and a timing assertion must use the one that
 * proves a violation (a loaded machine must not fail a correct backend). */
int64_t conf_wait_master(reign_election *e, int64_t timeout_ms, const char *what,
                         int64_t *before_ns);

/* Wait until e is not master; returns when first seen false, *before_ns (if
 * not NULL) gets the last sample that still saw true. Either *before_ns is 0
 * when the very first sample already showed the awaited state. */
int64_t conf_wait_not_master(reign_election *e, int64_t timeout_ms, const char *what,
                             int64_t *before_ns);

/* Term of a master election (asserts REIGN_OK). */
uint64_t conf_term(reign_election *e);

/* Timeout for getting a free resource: a lease left by a crashed earlier run
 * may have to expire first. */
int64_t conf_acquire_timeout_ms(void);

/* Ask the backend who is master of e's resource and assert it is `f`'s
 * instance with `term`. */
void conf_expect_master(reign_election *e, reign_factory *f, uint64_t term, const char *what);

/* Wait (on the backend's answer) until this election's first ACQUIRE has been
 * answered, i.e. it is a real candidate now. */
void conf_wait_candidate(reign_factory *f, reign_election *e);

/* "holder-id term N" / "nobody" / "error …" for messages: who the backend
 * says is master of e's resource now. Lives until teardown. */
const char *conf_describe_master(reign_election *e);

/* ---- events: LOST/GAINED callbacks, recorded for the test thread ------------ */

#define CONF_EVENTS_MAX 64
typedef struct conf_events {
    int n;
    reign_event ev[CONF_EVENTS_MAX];
    int64_t at_ns[CONF_EVENTS_MAX];
    int dropped;
} conf_events;

/* The callback to register; payload = conf_events * (zeroed by caller). */
void conf_events_cb(reign_election *e, const reign_event *event, void *payload);

/* Wait until a LOST event shows up; returns its index, or asserts. */
int conf_events_wait_lost(conf_events *log, int64_t timeout_ms, const char *what);

/* Copy out under the log's lock (the callback runs on the engine thread). */
void conf_events_snapshot(conf_events *log, conf_events *out);

/* ---- mastership recorders ----------------------------------------------------- */

/* Intervals in which one election was seen master, sampled by its owner. */
#define CONF_INTERVALS_MAX 32
typedef struct conf_recorder {
    bool in;                  /* last sample was master */
    uint64_t term;            /* of the open interval (a new term opens a new one) */
    int n;                    /* closed and open intervals */
    int64_t iv[CONF_INTERVALS_MAX][2];  /* [first seen, last seen] */
    uint64_t iv_term[CONF_INTERVALS_MAX];
    int overflow;
    int64_t last_sample_ns;
    int64_t largest_gap_ns;   /* between two samples (a stopped process) */
    int after_gap_master;     /* is_master at the sample after that gap; -1 none */
    uint64_t after_gap_term;  /* and the term then, if master */
} conf_recorder;

void conf_recorder_init(conf_recorder *r);
/* Sample e now; returns the is_master value seen. */
bool conf_recorder_sample(conf_recorder *r, const reign_election *e);
/* The first overlapping pair, or false (then the outputs are untouched). */
bool conf_recorder_overlap(const conf_recorder *a, const conf_recorder *b, int *a_out, int *b_out);
void conf_recorder_print(const char *who, const conf_recorder *r, int64_t origin_ns);

/* ---- server control ------------------------------------------------------------ */

/* Server control is available: REIGN_CONF_SERVER_CTL or the mem:// hooks. */
bool conf_ctl_available(void);
/* Run `stop|start|restart|pause|resume`; asserts it worked. */
void conf_ctl(const char *action);

#define CONF_NEED_CTL()                                                                  \
    do {                                                                                 \
        if (!conf_ctl_available())                                                       \
            CONF_SKIP("needs server control: set REIGN_CONF_SERVER_CTL (a command "      \
                      "called with stop|start|restart|pause|resume)");                   \
    } while (0)

/* ---- metrics printed at the end ---------------------------------------------- */

typedef enum conf_metric {
    CONF_M_HANDOFF,            /* resign → other's is_master */
    CONF_M_TAKEOVER,           /* SIGKILL of the holder → other's is_master */
    CONF_M_STOP_TAKEOVER,      /* SIGSTOP of the holder → other's is_master */
    CONF_M_BELIEF_AFTER_STOP,  /* server stopped → is_master false */
    CONF_M_BELIEF_AFTER_PAUSE, /* server paused → is_master false */
    CONF_M_RECOVERY,           /* server started again → someone master */
    CONF_M_COUNT
} conf_metric;

void conf_metric_set(conf_metric m, double ms);
void conf_metrics_print(void);

/* ---- forked holders (conf_child.c) --------------------------------------------- */

typedef struct conf_child_msg {
    int32_t kind;              /* CONF_CHILD_* */
    int32_t status;            /* reign status of a failure */
    uint64_t term;
    int64_t wait_began_ns;     /* when it called wait: before its lease existed */
    int64_t acquired_ns;       /* when its wait returned OK: after its lease existed */
    int32_t lost_reason;       /* first LOST event's reason, -1 none */
    int32_t lost_seen;
    conf_recorder rec;         /* its mastership, sampled every 1 ms */
    char instance_id[128];
    char error[512];
} conf_child_msg;

enum { CONF_CHILD_ACQUIRED = 1, CONF_CHILD_REPORT = 2, CONF_CHILD_FAILED = 3 };

typedef struct conf_child {
    pid_t pid;
    int from_child;            /* read end: conf_child_msg records */
    int to_child;              /* write end: one byte asks for a report */
} conf_child;

/* Fork a process that opens its own factory (instance "who"), becomes master
 * of `resource` and says so; asserts it did and fills *acq. */
void conf_child_start(conf_child *c, const char *resource, const char *who, conf_child_msg *acq);
/* Ask for a report (after SIGCONT) and read it, sampling `parent` meanwhile
 * into `rec` (may be NULL). */
void conf_child_report(conf_child *c, reign_election *parent, conf_recorder *rec,
                       conf_child_msg *out);
/* Reap the child (after it exits by itself or was killed). */
void conf_child_reap(conf_child *c, int64_t timeout_ms);
void conf_child_close_fds(conf_child *c);

/* ---- the cases ----------------------------------------------------------------- */

/* cases_basic.c */
void test_a_new_election_is_not_master_and_has_no_term(void **state);
void test_a_lone_candidate_becomes_master_and_is_named_current_master(void **state);
void test_a_second_election_for_one_resource_in_one_factory_is_ebusy(void **state);
void test_an_unknown_uri_parameter_is_refused_with_euri(void **state);
void test_two_instances_elect_exactly_one_master_and_agree_on_it(void **state);
void test_resign_hands_mastership_over_with_a_higher_term_within_one_second(void **state);
void test_wait_on_a_held_resource_times_out_with_etimedout(void **state);
void test_close_wakes_a_waiting_thread_with_eclosed(void **state);
void test_lost_callback_reports_resigned_on_resign(void **state);
void test_lost_callback_reports_expired_when_the_mem_store_stalls(void **state);
void test_terms_increase_across_release(void **state);

/* cases_ids.c */
void test_an_empty_resource_id_is_refused_with_einval(void **state);
void test_a_resource_id_of_1024_bytes_is_accepted_and_elected(void **state);
void test_a_resource_id_of_1025_bytes_is_refused_with_einval(void **state);
void test_a_resource_id_with_every_byte_from_01_to_ff_is_elected_as_itself(void **state);
void test_path_and_pattern_like_ids_are_accepted_or_refused_clearly(void **state);
void test_path_and_pattern_like_ids_are_never_confused_with_their_neighbours(void **state);

/* cases_many.c */
void test_a_thousand_resources_on_three_instances_each_get_exactly_one_master(void **state);
void test_renewals_of_a_thousand_resources_are_batched(void **state);

/* cases_faults.c */
void test_a_killed_master_is_replaced_after_its_ttl_and_not_before(void **state);
void test_a_stopped_master_is_never_master_alongside_its_successor(void **state);
void test_terms_increase_across_expiry_of_a_killed_holder(void **state);
void test_a_stopped_server_ends_belief_by_the_deadline_and_election_resumes_on_start(
    void **state);
void test_a_paused_server_ends_belief_by_the_deadline_and_election_resumes_on_resume(
    void **state);
void test_terms_never_go_backwards_across_a_server_restart(void **state);
void test_terms_of_a_released_resource_survive_a_server_restart(void **state);
void test_an_unreachable_server_at_open_fails_clearly_within_ten_seconds(void **state);

/* cases_observe.c */
void test_an_observer_sees_acquire_metadata_handoff_and_release_in_order(void **state);
void test_an_observer_sees_a_killed_holder_replaced_with_a_higher_term(void **state);
void test_an_observer_follows_changes_across_a_server_restart(void **state);

#endif /* REIGN_TESTS_CONFORMANCE_CONF_H */
