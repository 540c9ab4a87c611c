/* Unit tests of the noop:// backend, driving its vtable directly: every
 * instance is always master of everything, with increasing terms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "run_ops.h"
#include "reign/backend.h"

extern const reign_backend reign_backend_noop;

#define OP_TIMEOUT_MS 1000

#define assert_contains(hay, needle)                                                      \
    do {                                                                                  \
        const char *hay_ = (hay);                                                         \
        if (hay_ == NULL || strstr(hay_, (needle)) == NULL) {                             \
            fail_msg("expected \"%s\" to contain \"%s\"", hay_ ? hay_ : "(null)", (needle)); \
        }                                                                                 \
    } while (0)

static reign_backend_config noop_cfg(const char *instance_id)
{
    reign_backend_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.uri = "noop://";
    cfg.uri_redacted = "noop://";
    cfg.scheme = "noop";
    cfg.path = "";
    cfg.instance_id = instance_id;
    cfg.metadata = "addr";
    cfg.ttl_ms = 10000;
    cfg.op_timeout_ms = OP_TIMEOUT_MS;
    return cfg;
}

static void *open_ok(const reign_backend_config *cfg)
{
    void *state = NULL;
    int rc = reign_backend_noop.open(cfg, &state);
    if (rc != REIGN_OK) {
        fail_msg("open noop://: %d %s", rc, reign_last_error());
    }
    assert_non_null(state);
    return state;
}

static void op_init(reign_op *op, reign_op_kind kind, const char *resource, uint64_t term)
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->resource = resource;
    op->resource_len = strlen(resource);
    op->term = term;
}

static void op_clear(reign_op *op)
{
    free(op->out_holder);
    free(op->out_metadata);
    free(op->out_error);
    memset(op, 0, sizeof(*op));
}

static reign_op_result run(void *state, reign_op *out, reign_op_kind kind, const char *resource,
                           uint64_t term)
{
    op_init(out, kind, resource, term);
    assert_int_equal(run_ops(&reign_backend_noop, state, out, 1, OP_TIMEOUT_MS), REIGN_OK);
    return out->result;
}

static uint64_t acquire_ok(void *state, const char *resource)
{
    reign_op op;
    assert_int_equal(run(state, &op, REIGN_OP_ACQUIRE, resource, 0), REIGN_RES_OK);
    uint64_t term = op.out_term;
    op_clear(&op);
    return term;
}

static void test_acquire_is_always_ok_with_strictly_increasing_terms(void **unused)
{
    (void)unused;
    reign_backend_config cfg = noop_cfg("a");
    void *st = open_ok(&cfg);
    uint64_t t1 = acquire_ok(st, "r");
    uint64_t t2 = acquire_ok(st, "r");
    uint64_t t3 = acquire_ok(st, "other");
    uint64_t t4 = acquire_ok(st, "r");
    assert_true(t1 >= 1);
    assert_true(t2 > t1);
    assert_true(t3 > t2);
    assert_true(t4 > t3);
    reign_backend_noop.close(st);
}

static void test_two_instances_are_both_master_of_one_resource(void **unused)
{
    (void)unused;
    reign_backend_config ca = noop_cfg("a");
    reign_backend_config cb = noop_cfg("b");
    void *a = open_ok(&ca);
    void *b = open_ok(&cb);
    assert_int_equal(acquire_ok(a, "r"), 1);
    assert_int_equal(acquire_ok(b, "r"), 1);
    reign_backend_noop.close(a);
    reign_backend_noop.close(b);
}

static void test_renew_and_release_are_always_ok(void **unused)
{
    (void)unused;
    reign_backend_config cfg = noop_cfg("a");
    void *st = open_ok(&cfg);
    reign_op ops[4];
    op_init(&ops[0], REIGN_OP_RENEW, "r", 1);
    op_init(&ops[1], REIGN_OP_RENEW, "never-acquired", 42);
    op_init(&ops[2], REIGN_OP_RELEASE, "r", 1);
    op_init(&ops[3], REIGN_OP_RELEASE, "r", 1);
    assert_int_equal(run_ops(&reign_backend_noop, st, ops, 4, OP_TIMEOUT_MS), REIGN_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_OK);
        op_clear(&ops[i]);
    }
    reign_backend_noop.close(st);
}

static void test_read_reports_itself_with_the_last_term_given_or_one(void **unused)
{
    (void)unused;
    reign_backend_config cfg = noop_cfg("me");
    void *st = open_ok(&cfg);
    reign_op op;

    assert_int_equal(run(st, &op, REIGN_OP_READ, "fresh", 0), REIGN_RES_OK);
    assert_string_equal(op.out_holder, "me");
    assert_string_equal(op.out_metadata, "addr");
    assert_int_equal(op.out_term, 1);
    op_clear(&op);

    (void)acquire_ok(st, "r");
    (void)acquire_ok(st, "other");
    uint64_t t = acquire_ok(st, "r");
    assert_int_equal(run(st, &op, REIGN_OP_READ, "r", 0), REIGN_RES_OK);
    assert_string_equal(op.out_holder, "me");
    assert_int_equal(op.out_term, t);
    op_clear(&op);

    /* A release keeps the term to report. */
    assert_int_equal(run(st, &op, REIGN_OP_RELEASE, "r", t), REIGN_RES_OK);
    op_clear(&op);
    assert_int_equal(run(st, &op, REIGN_OP_READ, "r", 0), REIGN_RES_OK);
    assert_int_equal(op.out_term, t);
    op_clear(&op);
    reign_backend_noop.close(st);
}

static void test_many_resources_in_one_batch_all_get_terms(void **unused)
{
    (void)unused;
    reign_backend_config cfg = noop_cfg("a");
    void *st = open_ok(&cfg);
    enum { N = 500 };
    static reign_op ops[N];
    static char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "res/%d", i);
        op_init(&ops[i], REIGN_OP_ACQUIRE, names[i], 0);
    }
    assert_int_equal(run_ops(&reign_backend_noop, st, ops, N, OP_TIMEOUT_MS), REIGN_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ops[i].result, REIGN_RES_OK);
        assert_int_equal(ops[i].out_term, (uint64_t)i + 1);
        op_clear(&ops[i]);
        op_init(&ops[i], REIGN_OP_READ, names[i], 0);
    }
    assert_int_equal(run_ops(&reign_backend_noop, st, ops, N, OP_TIMEOUT_MS), REIGN_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ops[i].out_term, (uint64_t)i + 1);
        op_clear(&ops[i]);
    }
    reign_backend_noop.close(st);
}

static void test_open_refuses_anything_but_bare_noop_uri(void **unused)
{
    (void)unused;
    void *st = NULL;
    reign_backend_config cfg = noop_cfg("a");
    cfg.host = "localhost";
    cfg.uri_redacted = "noop://localhost";
    assert_int_equal(reign_backend_noop.open(&cfg, &st), REIGN_EURI);
    assert_contains(reign_last_error(), "noop://localhost");
    assert_contains(reign_last_error(), "exactly noop://");

    cfg = noop_cfg("a");
    cfg.path = "/x";
    assert_int_equal(reign_backend_noop.open(&cfg, &st), REIGN_EURI);

    cfg = noop_cfg("a");
    cfg.port = 1;
    assert_int_equal(reign_backend_noop.open(&cfg, &st), REIGN_EURI);

    cfg = noop_cfg("");
    assert_int_equal(reign_backend_noop.open(&cfg, &st), REIGN_EINVAL);
    assert_null(st);

    /* An empty host is what "noop://" gives, and is fine. */
    cfg = noop_cfg("a");
    cfg.host = "";
    st = open_ok(&cfg);
    reign_backend_noop.close(st);
}

static void test_noop_offers_no_notification_fd(void **unused)
{
    (void)unused;
    assert_null(reign_backend_noop.notify_fd);
    assert_null(reign_backend_noop.notify_drain);
    assert_int_equal(reign_backend_noop.version, REIGN_BACKEND_VERSION);
    assert_string_equal(reign_backend_noop.scheme, "noop");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acquire_is_always_ok_with_strictly_increasing_terms),
        cmocka_unit_test(test_two_instances_are_both_master_of_one_resource),
        cmocka_unit_test(test_renew_and_release_are_always_ok),
        cmocka_unit_test(test_read_reports_itself_with_the_last_term_given_or_one),
        cmocka_unit_test(test_many_resources_in_one_batch_all_get_terms),
        cmocka_unit_test(test_open_refuses_anything_but_bare_noop_uri),
        cmocka_unit_test(test_noop_offers_no_notification_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
