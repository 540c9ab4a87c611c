/* Unit tests of the mem:// backend, driving its vtable directly: contention
 * between states of one store, expiry, terms, notifications, fault hooks and
 * the lifetime of stores. Real CLOCK_MONOTONIC with short TTLs; every wait is
 * on a condition with a deadline. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "run_ops.h"
#include "reign/backend.h"
#include "reign/mem.h"

extern const reign_backend reign_backend_mem;

#define LONG_TTL_MS 60000
#define SHORT_TTL_MS 50
#define OP_TIMEOUT_MS 1000
#define WAIT_DEADLINE_MS 5000

/* ---- helpers -------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pacing between steps of a test (never to let something happen). */
static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

#define assert_contains(hay, needle)                                                      \
    do {                                                                                  \
        const char *hay_ = (hay);                                                         \
        if (hay_ == NULL || strstr(hay_, (needle)) == NULL) {                             \
            fail_msg("expected \"%s\" to contain \"%s\"", hay_ ? hay_ : "(null)", (needle)); \
        }                                                                                 \
    } while (0)

static reign_backend_config mem_cfg(const char *name, const char *instance_id, int64_t ttl_ms)
{
    reign_backend_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.uri = "mem://test";
    cfg.uri_redacted = "mem://test";
    cfg.scheme = "mem";
    cfg.host = name;
    cfg.path = "";
    cfg.instance_id = instance_id;
    cfg.metadata = "";
    cfg.ttl_ms = ttl_ms;
    cfg.op_timeout_ms = OP_TIMEOUT_MS;
    return cfg;
}

/* An instance: its config (which must outlive the state) and state. */
typedef struct inst {
    reign_backend_config cfg;
    char metadata[64];
    void *state;
} inst;

static void inst_open(inst *in, const char *store, const char *id, int64_t ttl_ms)
{
    in->cfg = mem_cfg(store, id, ttl_ms);
    snprintf(in->metadata, sizeof(in->metadata), "addr-of-%s", id);
    in->cfg.metadata = in->metadata;
    in->state = NULL;
    int rc = reign_backend_mem.open(&in->cfg, &in->state);
    if (rc != REIGN_OK) {
        fail_msg("open %s on mem://%s: %d %s", id, store, rc, reign_last_error());
    }
    assert_non_null(in->state);
}

static void inst_close(inst *in)
{
    reign_backend_mem.close(in->state);
    in->state = NULL;
}

static void op_clear(reign_op *op)
{
    free(op->out_holder);
    free(op->out_metadata);
    free(op->out_error);
    memset(op, 0, sizeof(*op));
}

static void op_init(reign_op *op, reign_op_kind kind, const char *resource, uint64_t term)
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->resource = resource;
    op->resource_len = strlen(resource);
    op->term = term;
}

/* Run one op and return its result; *out keeps the outputs for checks
 * (caller clears it). */
static reign_op_result run(inst *in, reign_op *out, reign_op_kind kind, const char *resource,
                           uint64_t term)
{
    op_init(out, kind, resource, term);
    int rc = run_ops(&reign_backend_mem, in->state, out, 1, OP_TIMEOUT_MS);
    assert_int_equal(rc, REIGN_OK);
    return out->result;
}

/* ACQUIRE that must succeed; returns the term. */
static uint64_t acquire_ok(inst *in, const char *resource)
{
    reign_op op;
    reign_op_result r = run(in, &op, REIGN_OP_ACQUIRE, resource, 0);
    if (r != REIGN_RES_OK) {
        fail_msg("ACQUIRE %s by %s: result %d, holder %s", resource, in->cfg.instance_id, r,
                 op.out_holder ? op.out_holder : "(null)");
    }
    uint64_t term = op.out_term;
    op_clear(&op);
    return term;
}

static reign_op_result simple(inst *in, reign_op_kind kind, const char *resource, uint64_t term)
{
    reign_op op;
    reign_op_result r = run(in, &op, kind, resource, term);
    op_clear(&op);
    return r;
}

static bool fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    int n = poll(&p, 1, timeout_ms);
    return n == 1 && (p.revents & POLLIN) != 0;
}

/* What one notify_drain reported. */
typedef struct seen {
    int n_named;      /* calls naming a resource */
    int n_any;        /* calls with NULL: "any resource" */
    char names[256];  /* the named ones, each followed by ',' */
} seen;

static void on_released(void *ctx, const char *resource, size_t resource_len)
{
    seen *s = ctx;
    if (resource == NULL) {
        s->n_any++;
        return;
    }
    assert_int_equal(strlen(resource), resource_len);
    s->n_named++;
    size_t used = strlen(s->names);
    snprintf(s->names + used, sizeof(s->names) - used, "%s,", resource);
}

static seen drain(inst *in)
{
    seen s;
    memset(&s, 0, sizeof(s));
    reign_backend_mem.notify_drain(in->state, on_released, &s);
    return s;
}

/* Try ACQUIRE until it succeeds or the deadline passes; returns the term. */
static uint64_t acquire_eventually(inst *in, const char *resource)
{
    int64_t deadline = mono_ms() + WAIT_DEADLINE_MS;
    reign_op op;
    for (;;) {
        reign_op_result r = run(in, &op, REIGN_OP_ACQUIRE, resource, 0);
        if (r == REIGN_RES_OK) {
            uint64_t term = op.out_term;
            op_clear(&op);
            return term;
        }
        if (mono_ms() > deadline) {
            fail_msg("ACQUIRE %s by %s still %d after %d ms (holder %s, %lld ms left)",
                     resource, in->cfg.instance_id, r, WAIT_DEADLINE_MS,
                     op.out_holder ? op.out_holder : "(null)", (long long)op.out_remaining_ms);
        }
        op_clear(&op);
        nap_ms(2);
    }
}

/* ---- contention ------------------------------------------------------------ */

static void test_acquire_of_a_free_resource_gives_term_one(void **unused)
{
    (void)unused;
    inst a;
    inst_open(&a, "free", "a", LONG_TTL_MS);
    assert_int_equal(acquire_ok(&a, "jobs/1"), 1);
    inst_close(&a);
}

static void test_second_state_sees_held_with_holder_term_metadata_and_time_left(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "contend", "a", LONG_TTL_MS);
    inst_open(&b, "contend", "b", LONG_TTL_MS);
    assert_int_equal(acquire_ok(&a, "jobs/1"), 1);

    reign_op op;
    assert_int_equal(run(&b, &op, REIGN_OP_ACQUIRE, "jobs/1", 0), REIGN_RES_HELD);
    assert_string_equal(op.out_holder, "a");
    assert_string_equal(op.out_metadata, "addr-of-a");
    assert_int_equal(op.out_term, 1);
    assert_true(op.out_remaining_ms > 0);
    assert_true(op.out_remaining_ms <= LONG_TTL_MS);
    op_clear(&op);

    inst_close(&a);
    inst_close(&b);
}

static void test_renew_by_holder_is_ok_and_by_others_or_old_terms_is_lost(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "renew", "a", LONG_TTL_MS);
    inst_open(&b, "renew", "b", LONG_TTL_MS);
    uint64_t t = acquire_ok(&a, "r");
    assert_int_equal(simple(&a, REIGN_OP_RENEW, "r", t), REIGN_RES_OK);
    assert_int_equal(simple(&b, REIGN_OP_RENEW, "r", t), REIGN_RES_LOST);
    assert_int_equal(simple(&a, REIGN_OP_RENEW, "r", t + 1), REIGN_RES_LOST);
    assert_int_equal(simple(&a, REIGN_OP_RENEW, "never-acquired", 1), REIGN_RES_LOST);
    inst_close(&a);
    inst_close(&b);
}

static void test_renewing_keeps_a_short_lease_alive_past_its_ttl(void **unused)
{
    (void)unused;
    /* TTL 200 ms renewed every 20 ms for 600 ms: only a renewal that
     * really extends the lease keeps every RENEW OK. */
    inst a, b;
    inst_open(&a, "extend", "a", 200);
    inst_open(&b, "extend", "b", 200);
    uint64_t t = acquire_ok(&a, "r");
    int64_t end = mono_ms() + 600;
    while (mono_ms() < end) {
        nap_ms(20);
        assert_int_equal(simple(&a, REIGN_OP_RENEW, "r", t), REIGN_RES_OK);
    }
    assert_int_equal(simple(&b, REIGN_OP_ACQUIRE, "r", 0), REIGN_RES_HELD);
    inst_close(&a);
    inst_close(&b);
}

static void test_release_by_holder_frees_the_resource_for_others(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "release", "a", LONG_TTL_MS);
    inst_open(&b, "release", "b", LONG_TTL_MS);
    uint64_t t = acquire_ok(&a, "r");
    assert_int_equal(simple(&b, REIGN_OP_RELEASE, "r", t), REIGN_RES_LOST);
    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t + 1), REIGN_RES_LOST);
    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t), REIGN_RES_OK);
    /* A second release is harmless: the lease is gone. */
    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t), REIGN_RES_LOST);
    assert_int_equal(simple(&a, REIGN_OP_RENEW, "r", t), REIGN_RES_LOST);
    assert_int_equal(acquire_ok(&b, "r"), t + 1);
    inst_close(&a);
    inst_close(&b);
}

static void test_read_reports_the_holder_then_none_after_release(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "read", "a", LONG_TTL_MS);
    inst_open(&b, "read", "b", LONG_TTL_MS);
    reign_op op;
    assert_int_equal(run(&b, &op, REIGN_OP_READ, "r", 0), REIGN_RES_NONE);
    op_clear(&op);

    uint64_t t = acquire_ok(&a, "r");
    assert_int_equal(run(&b, &op, REIGN_OP_READ, "r", 0), REIGN_RES_OK);
    assert_string_equal(op.out_holder, "a");
    assert_string_equal(op.out_metadata, "addr-of-a");
    assert_int_equal(op.out_term, t);
    assert_true(op.out_remaining_ms > 0 && op.out_remaining_ms <= LONG_TTL_MS);
    op_clear(&op);

    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t), REIGN_RES_OK);
    assert_int_equal(run(&b, &op, REIGN_OP_READ, "r", 0), REIGN_RES_NONE);
    assert_null(op.out_holder);
    op_clear(&op);
    inst_close(&a);
    inst_close(&b);
}

/* ---- expiry and terms -------------------------------------------------------- */

static void test_lease_expires_after_its_ttl_and_another_state_takes_it(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "expiry", "a", SHORT_TTL_MS);
    inst_open(&b, "expiry", "b", LONG_TTL_MS);
    int64_t t0 = mono_ms();
    uint64_t t = acquire_ok(&a, "r");

    reign_op op;
    assert_int_equal(run(&b, &op, REIGN_OP_ACQUIRE, "r", 0), REIGN_RES_HELD);
    assert_true(op.out_remaining_ms > 0 && op.out_remaining_ms <= SHORT_TTL_MS);
    op_clear(&op);

    assert_int_equal(acquire_eventually(&b, "r"), t + 1);
    int64_t waited = mono_ms() - t0;
    if (waited < SHORT_TTL_MS) {
        fail_msg("lease of ttl %d ms taken over after only %lld ms", SHORT_TTL_MS,
                 (long long)waited);
    }
    /* The old holder's lease is gone for good. */
    assert_int_equal(simple(&a, REIGN_OP_RENEW, "r", t), REIGN_RES_LOST);
    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t), REIGN_RES_LOST);
    inst_close(&a);
    inst_close(&b);
}

static void test_terms_strictly_increase_across_release_and_expiry(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "terms", "a", LONG_TTL_MS);
    inst_open(&b, "terms", "b", SHORT_TTL_MS);

    uint64_t t1 = acquire_ok(&a, "r");
    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t1), REIGN_RES_OK);
    uint64_t t2 = acquire_ok(&b, "r"); /* after a release */
    uint64_t t3 = acquire_eventually(&a, "r"); /* after b's lease expired */
    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t3), REIGN_RES_OK);
    uint64_t t4 = acquire_ok(&a, "r"); /* same holder again */
    assert_int_equal(reign_mem_expire_all("terms"), REIGN_OK);
    uint64_t t5 = acquire_ok(&b, "r"); /* after a forced expiry */

    assert_int_equal(t1, 1);
    assert_int_equal(t2, 2);
    assert_int_equal(t3, 3);
    assert_int_equal(t4, 4);
    assert_int_equal(t5, 5);
    /* Terms are per resource. */
    assert_int_equal(acquire_ok(&a, "other"), 1);
    inst_close(&a);
    inst_close(&b);
}

static void test_expire_all_ends_every_lease_and_wakes_every_state(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "expire-all", "a", LONG_TTL_MS);
    inst_open(&b, "expire-all", "b", LONG_TTL_MS);
    uint64_t ta = acquire_ok(&a, "x");
    uint64_t tb = acquire_ok(&b, "y");
    (void)drain(&a);
    (void)drain(&b);

    assert_int_equal(reign_mem_expire_all("expire-all"), REIGN_OK);
    assert_true(fd_readable(reign_backend_mem.notify_fd(a.state), 0));
    assert_true(fd_readable(reign_backend_mem.notify_fd(b.state), 0));
    /* The store cannot name them all cheaply: it says "any". */
    seen sa = drain(&a);
    assert_int_equal(sa.n_any, 1);
    assert_int_equal(sa.n_named, 0);
    assert_int_equal(drain(&b).n_any, 1);
    assert_int_equal(simple(&a, REIGN_OP_RENEW, "x", ta), REIGN_RES_LOST);
    assert_int_equal(simple(&b, REIGN_OP_RENEW, "y", tb), REIGN_RES_LOST);
    assert_int_equal(simple(&a, REIGN_OP_READ, "y", 0), REIGN_RES_NONE);
    assert_int_equal(reign_mem_expire_all("no-such-store"), REIGN_EINVAL);
    inst_close(&a);
    inst_close(&b);
}

/* ---- notifications ------------------------------------------------------------- */

static void test_release_wakes_the_other_states_but_not_the_releaser(void **unused)
{
    (void)unused;
    inst a, b, c;
    inst_open(&a, "notify", "a", LONG_TTL_MS);
    inst_open(&b, "notify", "b", LONG_TTL_MS);
    inst_open(&c, "notify", "c", LONG_TTL_MS);
    int fa = reign_backend_mem.notify_fd(a.state);
    int fb = reign_backend_mem.notify_fd(b.state);
    int fc = reign_backend_mem.notify_fd(c.state);
    assert_true(fa >= 0 && fb >= 0 && fc >= 0);

    uint64_t t = acquire_ok(&a, "r");
    assert_int_equal(simple(&b, REIGN_OP_ACQUIRE, "r", 0), REIGN_RES_HELD);
    assert_false(fd_readable(fb, 0));

    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t), REIGN_RES_OK);
    assert_true(fd_readable(fb, 1000));
    assert_true(fd_readable(fc, 1000));
    assert_false(fd_readable(fa, 0));

    seen sb = drain(&b);
    assert_string_equal(sb.names, "r,");
    assert_int_equal(sb.n_any, 0);
    assert_false(fd_readable(fb, 0));
    /* Draining with nothing pending does not block and reports nothing. */
    sb = drain(&b);
    assert_int_equal(sb.n_named + sb.n_any, 0);
    assert_true(fd_readable(fc, 0));
    assert_string_equal(drain(&c).names, "r,");
    assert_int_equal(drain(&a).n_named, 0);
    inst_close(&a);
    inst_close(&b);
    inst_close(&c);
}

static void test_expiry_noticed_by_a_read_wakes_the_other_states(void **unused)
{
    (void)unused;
    inst a, b, c;
    inst_open(&a, "notice", "a", SHORT_TTL_MS);
    inst_open(&b, "notice", "b", LONG_TTL_MS);
    inst_open(&c, "notice", "c", LONG_TTL_MS);
    (void)acquire_ok(&a, "r");
    (void)drain(&b);

    int64_t deadline = mono_ms() + WAIT_DEADLINE_MS;
    while (simple(&c, REIGN_OP_READ, "r", 0) != REIGN_RES_NONE) {
        if (mono_ms() > deadline) {
            fail_msg("lease of ttl %d ms still live after %d ms", SHORT_TTL_MS, WAIT_DEADLINE_MS);
        }
        nap_ms(2);
    }
    assert_true(fd_readable(reign_backend_mem.notify_fd(b.state), 0));
    assert_string_equal(drain(&b).names, "r,");
    inst_close(&a);
    inst_close(&b);
    inst_close(&c);
}

static void test_each_release_of_a_batch_is_reported_and_the_fd_written_once(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "batch-notify", "a", LONG_TTL_MS);
    inst_open(&b, "batch-notify", "b", LONG_TTL_MS);
    const char *res[3] = {"x", "y", "z"};
    reign_op ops[3];
    for (int i = 0; i < 3; i++) {
        op_init(&ops[i], REIGN_OP_RELEASE, res[i], acquire_ok(&a, res[i]));
    }
    assert_int_equal(run_ops(&reign_backend_mem, a.state, ops, 3, OP_TIMEOUT_MS), REIGN_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_OK);
        op_clear(&ops[i]);
    }
    /* One write for the batch: the eventfd counter says how many. */
    uint64_t writes = 0;
    assert_int_equal(read(reign_backend_mem.notify_fd(b.state), &writes, sizeof(writes)),
                     sizeof(writes));
    assert_int_equal(writes, 1);
    seen sb = drain(&b);
    assert_string_equal(sb.names, "x,y,z,");
    assert_int_equal(sb.n_any, 0);
    inst_close(&a);
    inst_close(&b);
}

static void test_too_many_pending_releases_are_reported_as_any(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "many-notify", "a", LONG_TTL_MS);
    inst_open(&b, "many-notify", "b", LONG_TTL_MS);
    enum { N = 5000 };
    static reign_op ops[N];
    static char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "res/%d", i);
        op_init(&ops[i], REIGN_OP_ACQUIRE, names[i], 0);
    }
    assert_int_equal(run_ops(&reign_backend_mem, a.state, ops, N, OP_TIMEOUT_MS), REIGN_OK);
    for (int i = 0; i < N; i++) {
        uint64_t t = ops[i].out_term;
        op_clear(&ops[i]);
        op_init(&ops[i], REIGN_OP_RELEASE, names[i], t);
    }
    assert_int_equal(run_ops(&reign_backend_mem, a.state, ops, N, OP_TIMEOUT_MS), REIGN_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_OK);
        op_clear(&ops[i]);
    }
    seen sb = drain(&b);
    assert_int_equal(sb.n_any, 1);
    assert_int_equal(sb.n_named, 0);
    inst_close(&a);
    inst_close(&b);
}

static void test_closing_a_state_with_undrained_notifications_frees_them(void **unused)
{
    (void)unused;
    /* ASan's leak check is the assertion here. */
    inst a, b;
    inst_open(&a, "undrained", "a", LONG_TTL_MS);
    inst_open(&b, "undrained", "b", LONG_TTL_MS);
    uint64_t t = acquire_ok(&a, "r");
    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t), REIGN_RES_OK);
    assert_true(fd_readable(reign_backend_mem.notify_fd(b.state), 0));
    inst_close(&b);
    inst_close(&a);
}

/* ---- faults ---------------------------------------------------------------------- */

static void test_stall_makes_execute_fail_with_etimedout_after_its_timeout(void **unused)
{
    (void)unused;
    inst a;
    inst_open(&a, "stall", "a", LONG_TTL_MS);
    assert_int_equal(reign_mem_set_fault("stall", REIGN_MEM_FAULT_STALL), REIGN_OK);

    reign_op ops[2];
    op_init(&ops[0], REIGN_OP_ACQUIRE, "r", 0);
    op_init(&ops[1], REIGN_OP_READ, "s", 0);
    int64_t t0 = mono_ms();
    int rc = run_ops(&reign_backend_mem, a.state, ops, 2, 50);
    int64_t took = mono_ms() - t0;
    assert_int_equal(rc, REIGN_ETIMEDOUT);
    if (took < 50 || took > 2000) {
        fail_msg("stalled execute with timeout 50 ms returned after %lld ms", (long long)took);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_ERROR);
        assert_int_equal(ops[i].out_status, REIGN_ETIMEDOUT);
        assert_contains(ops[i].out_error, "store stall: stalled");
        op_clear(&ops[i]);
    }

    assert_int_equal(reign_mem_set_fault("stall", REIGN_MEM_FAULT_NONE), REIGN_OK);
    assert_int_equal(acquire_ok(&a, "r"), 1); /* the stalled ACQUIRE did nothing */
    inst_close(&a);
}

static void test_leases_keep_expiring_while_the_store_stalls(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "stall-expiry", "a", SHORT_TTL_MS);
    inst_open(&b, "stall-expiry", "b", LONG_TTL_MS);
    uint64_t t = acquire_ok(&a, "r");
    assert_int_equal(reign_mem_set_fault("stall-expiry", REIGN_MEM_FAULT_STALL), REIGN_OK);

    /* The renewal stalls for twice the TTL and never arrives. */
    reign_op op;
    op_init(&op, REIGN_OP_RENEW, "r", t);
    assert_int_equal(run_ops(&reign_backend_mem, a.state, &op, 1, 2 * SHORT_TTL_MS),
                     REIGN_ETIMEDOUT);
    assert_int_equal(op.result, REIGN_RES_ERROR);
    op_clear(&op);

    assert_int_equal(reign_mem_set_fault("stall-expiry", REIGN_MEM_FAULT_NONE), REIGN_OK);
    assert_int_equal(simple(&b, REIGN_OP_READ, "r", 0), REIGN_RES_NONE);
    assert_int_equal(simple(&a, REIGN_OP_RENEW, "r", t), REIGN_RES_LOST);
    assert_int_equal(acquire_ok(&b, "r"), t + 1);
    inst_close(&a);
    inst_close(&b);
}

typedef struct unstall_arg {
    const char *store;
    uint64_t executes_before;
    int rc;
} unstall_arg;

/* Clears the stall once the main thread's batch is inside execute. */
static void *unstall_when_stalled(void *p)
{
    unstall_arg *arg = p;
    int64_t deadline = mono_ms() + WAIT_DEADLINE_MS;
    while (reign_mem_executes(arg->store) == arg->executes_before && mono_ms() < deadline) {
        nap_ms(1);
    }
    arg->rc = reign_mem_set_fault(arg->store, REIGN_MEM_FAULT_NONE);
    return NULL;
}

static void test_clearing_a_stall_lets_a_stalled_execute_proceed(void **unused)
{
    (void)unused;
    inst a;
    inst_open(&a, "unstall", "a", LONG_TTL_MS);
    assert_int_equal(reign_mem_set_fault("unstall", REIGN_MEM_FAULT_STALL), REIGN_OK);
    unstall_arg arg = {"unstall", reign_mem_executes("unstall"), -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, unstall_when_stalled, &arg), 0);

    reign_op op;
    op_init(&op, REIGN_OP_ACQUIRE, "r", 0);
    int64_t t0 = mono_ms();
    int rc = run_ops(&reign_backend_mem, a.state, &op, 1, 30000);
    int64_t took = mono_ms() - t0;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(arg.rc, REIGN_OK);
    assert_int_equal(rc, REIGN_OK);
    assert_int_equal(op.result, REIGN_RES_OK);
    assert_int_equal(op.out_term, 1);
    if (took > 10000) {
        fail_msg("execute went on stalling %lld ms after the stall was cleared",
                 (long long)took);
    }
    op_clear(&op);
    inst_close(&a);
}

static void test_fail_makes_execute_return_ebackend_at_once(void **unused)
{
    (void)unused;
    inst a;
    inst_open(&a, "failing", "a", LONG_TTL_MS);
    uint64_t t = acquire_ok(&a, "r");
    assert_int_equal(reign_mem_set_fault("failing", REIGN_MEM_FAULT_FAIL), REIGN_OK);

    reign_op ops[2];
    op_init(&ops[0], REIGN_OP_RENEW, "r", t);
    op_init(&ops[1], REIGN_OP_ACQUIRE, "s", 0);
    assert_int_equal(run_ops(&reign_backend_mem, a.state, ops, 2, OP_TIMEOUT_MS), REIGN_EBACKEND);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_ERROR);
        assert_int_equal(ops[i].out_status, REIGN_EBACKEND);
        assert_string_equal(ops[i].out_error, "store failing: injected failure");
        op_clear(&ops[i]);
    }

    /* The data is untouched: the lease is still ours once the fault clears. */
    assert_int_equal(reign_mem_set_fault("failing", REIGN_MEM_FAULT_NONE), REIGN_OK);
    assert_int_equal(simple(&a, REIGN_OP_RENEW, "r", t), REIGN_RES_OK);
    assert_int_equal(simple(&a, REIGN_OP_READ, "s", 0), REIGN_RES_NONE);
    inst_close(&a);
}

static void test_set_fault_on_a_store_nobody_opened_is_einval(void **unused)
{
    (void)unused;
    assert_int_equal(reign_mem_set_fault("nobody-opened-this", REIGN_MEM_FAULT_FAIL),
                     REIGN_EINVAL);
    assert_contains(reign_last_error(), "nobody-opened-this");
    assert_int_equal(reign_mem_executes("nobody-opened-this"), 0);

    inst a;
    inst_open(&a, "bad-fault", "a", LONG_TTL_MS);
    assert_int_equal(reign_mem_set_fault("bad-fault", (reign_mem_fault)7), REIGN_EINVAL);
    assert_contains(reign_last_error(), "unknown fault 7");
    inst_close(&a);
}

static void test_executes_counts_every_batch_not_every_op(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "count", "a", LONG_TTL_MS);
    inst_open(&b, "count", "b", LONG_TTL_MS);
    assert_int_equal(reign_mem_executes("count"), 0);

    /* 1000 resources in one batch, also enough to make the table grow. */
    enum { N = 1000 };
    static reign_op ops[N];
    static char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "res/%d", i);
        op_init(&ops[i], REIGN_OP_ACQUIRE, names[i], 0);
    }
    assert_int_equal(run_ops(&reign_backend_mem, a.state, ops, N, OP_TIMEOUT_MS), REIGN_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_OK);
        assert_int_equal(ops[i].out_term, 1);
        op_clear(&ops[i]);
        op_init(&ops[i], REIGN_OP_READ, names[i], 0);
    }
    assert_int_equal(reign_mem_executes("count"), 1);

    assert_int_equal(run_ops(&reign_backend_mem, b.state, ops, N, OP_TIMEOUT_MS), REIGN_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_OK);
        assert_string_equal(ops[i].out_holder, "a");
        op_clear(&ops[i]);
    }
    assert_int_equal(reign_mem_executes("count"), 2);

    /* Failed batches count too. */
    assert_int_equal(reign_mem_set_fault("count", REIGN_MEM_FAULT_FAIL), REIGN_OK);
    op_init(&ops[0], REIGN_OP_READ, names[0], 0);
    assert_int_equal(run_ops(&reign_backend_mem, b.state, ops, 1, OP_TIMEOUT_MS), REIGN_EBACKEND);
    op_clear(&ops[0]);
    assert_int_equal(reign_mem_executes("count"), 3);
    inst_close(&a);
    inst_close(&b);
}

/* ---- stores and their lifetime --------------------------------------------------- */

static void test_stores_with_different_names_are_independent(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "left", "a", LONG_TTL_MS);
    inst_open(&b, "right", "b", LONG_TTL_MS);
    assert_int_equal(acquire_ok(&a, "r"), 1);
    assert_int_equal(acquire_ok(&b, "r"), 1);
    assert_int_equal(reign_mem_set_fault("left", REIGN_MEM_FAULT_FAIL), REIGN_OK);
    assert_int_equal(simple(&b, REIGN_OP_READ, "r", 0), REIGN_RES_OK);
    assert_int_equal(reign_mem_executes("left"), 1);
    assert_int_equal(reign_mem_executes("right"), 2);
    inst_close(&a);
    inst_close(&b);
}

static void test_an_empty_name_is_the_store_named_default(void **unused)
{
    (void)unused;
    inst a, b, c;
    inst_open(&a, "", "a", LONG_TTL_MS);
    inst_open(&b, "default", "b", LONG_TTL_MS);
    inst_open(&c, NULL, "c", LONG_TTL_MS); /* "mem://" may leave host NULL */
    assert_int_equal(acquire_ok(&a, "r"), 1);
    assert_int_equal(simple(&b, REIGN_OP_ACQUIRE, "r", 0), REIGN_RES_HELD);
    assert_int_equal(simple(&c, REIGN_OP_ACQUIRE, "r", 0), REIGN_RES_HELD);
    assert_int_equal(reign_mem_executes(""), 3);
    assert_int_equal(reign_mem_executes("default"), 3);
    inst_close(&a);
    inst_close(&b);
    inst_close(&c);
}

static void test_a_path_without_its_slash_names_the_store_when_host_is_empty(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "by-path", "a", LONG_TTL_MS);
    b.cfg = mem_cfg(NULL, "b", LONG_TTL_MS);
    b.cfg.path = "/by-path";
    assert_int_equal(reign_backend_mem.open(&b.cfg, &b.state), REIGN_OK);
    (void)acquire_ok(&a, "r");
    assert_int_equal(simple(&b, REIGN_OP_ACQUIRE, "r", 0), REIGN_RES_HELD);
    inst_close(&b);
    inst_close(&a);
}

static void test_open_refuses_a_port_a_user_or_a_path_after_the_name(void **unused)
{
    (void)unused;
    void *state = NULL;
    reign_backend_config cfg = mem_cfg("n", "a", LONG_TTL_MS);
    cfg.port = 6379;
    assert_int_equal(reign_backend_mem.open(&cfg, &state), REIGN_EURI);
    assert_contains(reign_last_error(), "no user, password or port");

    cfg = mem_cfg("n", "a", LONG_TTL_MS);
    cfg.user = "alice";
    assert_int_equal(reign_backend_mem.open(&cfg, &state), REIGN_EURI);

    cfg = mem_cfg("n", "a", LONG_TTL_MS);
    cfg.path = "/extra";
    assert_int_equal(reign_backend_mem.open(&cfg, &state), REIGN_EURI);
    assert_contains(reign_last_error(), "unexpected path \"/extra\"");

    cfg = mem_cfg("n", "a", 0);
    assert_int_equal(reign_backend_mem.open(&cfg, &state), REIGN_EINVAL);
    assert_contains(reign_last_error(), "TTL");

    cfg = mem_cfg("n", "", LONG_TTL_MS);
    assert_int_equal(reign_backend_mem.open(&cfg, &state), REIGN_EINVAL);
    assert_contains(reign_last_error(), "instance ID");
    assert_null(state);
    /* Nothing was left open. */
    assert_int_equal(reign_mem_set_fault("n", REIGN_MEM_FAULT_NONE), REIGN_EINVAL);
}

static void test_data_survives_while_any_state_of_the_store_is_open(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "survive", "a", LONG_TTL_MS);
    inst_open(&b, "survive", "b", LONG_TTL_MS);
    uint64_t t = acquire_ok(&a, "r");
    inst_close(&a);

    reign_op op;
    assert_int_equal(run(&b, &op, REIGN_OP_READ, "r", 0), REIGN_RES_OK);
    assert_string_equal(op.out_holder, "a");
    assert_int_equal(op.out_term, t);
    op_clear(&op);

    inst_open(&a, "survive", "a", LONG_TTL_MS); /* same instance, restarted */
    assert_int_equal(simple(&a, REIGN_OP_RENEW, "r", t), REIGN_RES_OK);
    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", t), REIGN_RES_OK);
    assert_int_equal(acquire_ok(&b, "r"), t + 1);
    inst_close(&a);
    inst_close(&b);
}

static void test_closing_the_last_state_frees_the_store(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "gone", "a", LONG_TTL_MS);
    inst_open(&b, "gone", "b", LONG_TTL_MS);
    assert_int_equal(acquire_ok(&a, "r"), 1);
    assert_int_equal(simple(&a, REIGN_OP_RELEASE, "r", 1), REIGN_RES_OK);
    assert_int_equal(acquire_ok(&b, "r"), 2);
    inst_close(&a);
    assert_int_equal(reign_mem_executes("gone"), 3);
    inst_close(&b);

    /* Gone: the hooks no longer find it, and a new store starts afresh.
     * (Under ASan, a store not freed would be reported as a leak.) */
    assert_int_equal(reign_mem_executes("gone"), 0);
    assert_int_equal(reign_mem_set_fault("gone", REIGN_MEM_FAULT_FAIL), REIGN_EINVAL);
    inst_open(&a, "gone", "a", LONG_TTL_MS);
    assert_int_equal(acquire_ok(&a, "r"), 1);
    inst_close(&a);
}

static void test_resource_ids_are_compared_as_whole_byte_strings(void **unused)
{
    (void)unused;
    inst a, b;
    inst_open(&a, "bytes", "a", LONG_TTL_MS);
    inst_open(&b, "bytes", "b", LONG_TTL_MS);
    (void)acquire_ok(&a, "job");
    assert_int_equal(acquire_ok(&b, "jo"), 1);
    assert_int_equal(acquire_ok(&b, "job\x01"), 1);
    assert_int_equal(acquire_ok(&b, "Job"), 1);
    assert_int_equal(simple(&b, REIGN_OP_ACQUIRE, "job", 0), REIGN_RES_HELD);
    inst_close(&a);
    inst_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acquire_of_a_free_resource_gives_term_one),
        cmocka_unit_test(test_second_state_sees_held_with_holder_term_metadata_and_time_left),
        cmocka_unit_test(test_renew_by_holder_is_ok_and_by_others_or_old_terms_is_lost),
        cmocka_unit_test(test_renewing_keeps_a_short_lease_alive_past_its_ttl),
        cmocka_unit_test(test_release_by_holder_frees_the_resource_for_others),
        cmocka_unit_test(test_read_reports_the_holder_then_none_after_release),
        cmocka_unit_test(test_lease_expires_after_its_ttl_and_another_state_takes_it),
        cmocka_unit_test(test_terms_strictly_increase_across_release_and_expiry),
        cmocka_unit_test(test_expire_all_ends_every_lease_and_wakes_every_state),
        cmocka_unit_test(test_release_wakes_the_other_states_but_not_the_releaser),
        cmocka_unit_test(test_expiry_noticed_by_a_read_wakes_the_other_states),
        cmocka_unit_test(test_each_release_of_a_batch_is_reported_and_the_fd_written_once),
        cmocka_unit_test(test_too_many_pending_releases_are_reported_as_any),
        cmocka_unit_test(test_closing_a_state_with_undrained_notifications_frees_them),
        cmocka_unit_test(test_stall_makes_execute_fail_with_etimedout_after_its_timeout),
        cmocka_unit_test(test_leases_keep_expiring_while_the_store_stalls),
        cmocka_unit_test(test_clearing_a_stall_lets_a_stalled_execute_proceed),
        cmocka_unit_test(test_fail_makes_execute_return_ebackend_at_once),
        cmocka_unit_test(test_set_fault_on_a_store_nobody_opened_is_einval),
        cmocka_unit_test(test_executes_counts_every_batch_not_every_op),
        cmocka_unit_test(test_stores_with_different_names_are_independent),
        cmocka_unit_test(test_an_empty_name_is_the_store_named_default),
        cmocka_unit_test(test_a_path_without_its_slash_names_the_store_when_host_is_empty),
        cmocka_unit_test(test_open_refuses_a_port_a_user_or_a_path_after_the_name),
        cmocka_unit_test(test_data_survives_while_any_state_of_the_store_is_open),
        cmocka_unit_test(test_closing_the_last_state_frees_the_store),
        cmocka_unit_test(test_resource_ids_are_compared_as_whole_byte_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
