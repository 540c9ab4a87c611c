/* Unit tests of the etcd:// backend's response parsing, no server: bodies
 * as etcd 3.4's JSON gateway sends them (lease grant and keep-alive, txn with
 * nested txns, ranges, errors of unary calls and streams, watch messages cut
 * anywhere), the op results made from them, and a seeded fuzz of all of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifdef REIGN_WITH_ETCD

#include "../../backends/etcd/etcd_codec.h"
#include "../../backends/etcd/etcd_internal.h"
#include "../../backends/etcd/etcd_json.h"

#define HDR "\"header\":{\"cluster_id\":\"13455796455940752355\",\"member_id\":\"443629905751424238\"," \
            "\"revision\":\"%s\",\"raft_term\":\"2\"}"

/* Real responses of etcd 3.4.23 (captured with curl), revision filled in. */
static const char grant_body[] =
    "{\"header\":{\"cluster_id\":\"13455796455940752355\",\"member_id\":\"443629905751424238\","
    "\"revision\":\"1\",\"raft_term\":\"2\"},\"ID\":\"4390624894709944837\",\"TTL\":\"10\"}";
static const char keepalive_body[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"13455796455940752355\",\"member_id\":"
    "\"443629905751424238\",\"revision\":\"3\",\"raft_term\":\"2\"},\"ID\":\"4390624894709944842\","
    "\"TTL\":\"5\"}}\n";
static const char keepalive_gone_body[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"13455796455940752355\",\"member_id\":"
    "\"443629905751424238\",\"revision\":\"1\",\"raft_term\":\"2\"},\"ID\":\"123\"}}";
static const char timetolive_body[] =
    "{\"header\":{\"revision\":\"2\"},\"ID\":\"3719025857220431878\",\"TTL\":\"29\","
    "\"grantedTTL\":\"30\",\"keys\":[\"Zm9v\",\"YmFy\"]}";
static const char timetolive_gone_body[] =
    "{\"header\":{\"revision\":\"2\"},\"ID\":\"12345\",\"TTL\":\"-1\"}";
static const char lease_not_found_body[] =
    "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested "
    "lease not found\",\"code\":5}";
static const char bad_token_body[] =
    "{\"error\":\"etcdserver: invalid auth token\",\"message\":\"etcdserver: invalid auth "
    "token\",\"code\":16}";
static const char no_user_body[] =
    "{\"error\":\"etcdserver: user name is empty\",\"message\":\"etcdserver: user name is "
    "empty\",\"code\":3}";
static const char bad_password_body[] =
    "{\"error\":\"etcdserver: authentication failed, invalid user ID or password\",\"message\":"
    "\"etcdserver: authentication failed, invalid user ID or password\",\"code\":3}";
static const char stream_error_body[] =
    "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"transport is closing\","
    "\"http_status\":\"Service Unavailable\"}}";
/* Two nested ACQUIRE txns: the first put (revision 2), the second found
 * "YQ==" ("a") held. */
static const char acquire_body[] =
    "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"7\",\"raft_term\":\"2\"},"
    "\"succeeded\":true,\"responses\":["
    "{\"response_txn\":{\"header\":{},\"succeeded\":true,\"responses\":[{\"response_put\":"
    "{\"header\":{\"revision\":\"7\"}}}]}},"
    "{\"response_txn\":{\"header\":{},\"responses\":[{\"response_range\":{\"header\":"
    "{\"revision\":\"7\"},\"kvs\":[{\"key\":\"L3AvYg==\",\"create_revision\":\"5\","
    "\"mod_revision\":\"5\",\"version\":\"1\",\"value\":\"cmVpZ24xOjM6Ym9iMTAuMC4wLjI=\","
    "\"lease\":\"99\"}],\"count\":\"1\"}}]}}]}";
/* Two nested RELEASE txns: the first deleted, the second's compare failed. */
static const char release_body[] =
    "{\"header\":{\"revision\":\"9\"},\"succeeded\":true,\"responses\":["
    "{\"response_txn\":{\"header\":{},\"succeeded\":true,\"responses\":[{\"response_delete_range\":"
    "{\"header\":{\"revision\":\"9\"},\"deleted\":\"1\"}}]}},"
    "{\"response_txn\":{\"header\":{}}}]}";
/* A txn of two ranges: the first found a key, the second nothing. */
static const char ranges_body[] =
    "{\"header\":{\"revision\":\"12\"},\"succeeded\":true,\"responses\":["
    "{\"response_range\":{\"header\":{\"revision\":\"12\"},\"kvs\":[{\"key\":\"L3AvYQ==\","
    "\"create_revision\":\"10\",\"mod_revision\":\"10\",\"version\":\"1\",\"lease\":\"77\"}],"
    "\"count\":\"1\"}},"
    "{\"response_range\":{\"header\":{\"revision\":\"12\"}}}]}";
static const char range_body[] =
    "{\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"YQ==\",\"create_revision\":\"2\","
    "\"mod_revision\":\"2\",\"version\":\"1\",\"lease\":\"4390624894709944842\"},{\"key\":\"Yg==\","
    "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"lease\":"
    "\"4390624894709944842\"}],\"count\":\"2\"}";
static const char watch_stream[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"3\","
    "\"raft_term\":\"2\"},\"created\":true}}\n"
    "{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"type\":\"DELETE\",\"kv\":"
    "{\"key\":\"L3AvYQ==\",\"mod_revision\":\"5\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":"
    "\"L3Avew==\",\"mod_revision\":\"5\"}}]}}\n"
    "{\"result\":{\"header\":{\"revision\":\"6\"},\"events\":[{\"kv\":{\"key\":\"L3AvYQ==\","
    "\"create_revision\":\"6\",\"mod_revision\":\"6\",\"version\":\"1\",\"value\":\"eA==\"}}]}}\n";

typedef struct resp {
    int rc;
    int grpc;
    json_t *root;
    char err[256];
} resp;

static resp parse(long http, const char *body)
{
    resp r;
    memset(&r, 0, sizeof r);
    r.rc =
        reign_etcd_json_response(http, body, strlen(body), &r.root, &r.grpc, r.err, sizeof r.err);
    return r;
}

/* ---- responses and errors ---------------------------------------------------- */

static void test_a_good_response_is_its_json_object(void **state)
{
    (void)state;
    resp r = parse(200, grant_body);
    assert_int_equal(r.rc, REIGN_OK);
    assert_int_equal(r.grpc, ETCD_GRPC_NONE);
    int64_t rev = -1;
    assert_int_equal(reign_etcd_json_revision(r.root, &rev, r.err, sizeof r.err), REIGN_OK);
    assert_int_equal(rev, 1);
    json_decref(r.root);
}

static void test_a_stream_result_is_unwrapped(void **state)
{
    (void)state;
    resp r = parse(200, keepalive_body);
    assert_int_equal(r.rc, REIGN_OK);
    assert_non_null(json_object_get(r.root, "TTL"));
    json_decref(r.root);
}

static void test_grpc_errors_become_named_statuses(void **state)
{
    (void)state;
    resp r = parse(404, lease_not_found_body);
    assert_int_equal(r.rc, REIGN_EBACKEND);
    assert_int_equal(r.grpc, ETCD_GRPC_NOT_FOUND);
    assert_non_null(strstr(r.err, "requested lease not found"));
    assert_non_null(strstr(r.err, "gRPC code 5"));
    assert_false(reign_etcd_json_needs_reauth(r.grpc, r.err));

    r = parse(401, bad_token_body);
    assert_int_equal(r.rc, REIGN_EAUTH);
    assert_int_equal(r.grpc, ETCD_GRPC_UNAUTHENTICATED);
    assert_true(reign_etcd_json_needs_reauth(r.grpc, r.err));

    r = parse(400, no_user_body);
    assert_int_equal(r.rc, REIGN_EAUTH);
    assert_true(reign_etcd_json_needs_reauth(r.grpc, r.err));

    r = parse(400, bad_password_body);
    assert_int_equal(r.rc, REIGN_EAUTH);
    assert_false(reign_etcd_json_needs_reauth(r.grpc, r.err));

    r = parse(200, stream_error_body);
    assert_int_equal(r.rc, REIGN_EBACKEND);
    assert_int_equal(r.grpc, ETCD_GRPC_UNAVAILABLE);
    assert_non_null(strstr(r.err, "transport is closing"));
}

static void test_non_json_and_http_errors_are_eproto_or_ebackend(void **state)
{
    (void)state;
    static const struct {
        long http;
        const char *body;
        int rc;
        const char *says;
    } cases[] = {
        {503, "<html>Service Unavailable</html>", REIGN_EBACKEND, "HTTP 503"},
        {502, "", REIGN_EBACKEND, "(empty body)"},
        {404, "404 page not found\n", REIGN_EPROTO, "HTTP 404"},
        {401, "nope", REIGN_EAUTH, "HTTP 401"},
        {200, "", REIGN_EPROTO, "empty response"},
        {200, "{\"header\":{\"revision\":", REIGN_EPROTO, "not JSON"},
        {200, "[1,2]", REIGN_EPROTO, "not a JSON object"},
        {200, "garbage", REIGN_EPROTO, "not JSON"},
        {200, "{\"result\":7}", REIGN_EPROTO, "\"result\" is not an object"},
        {500, "{\"header\":{}}", REIGN_EBACKEND, "HTTP 500"},
        {200, "{\"error\":\"boom\"}", REIGN_EBACKEND, "boom"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resp r = parse(cases[i].http, cases[i].body);
        if (r.rc != cases[i].rc || strstr(r.err, cases[i].says) == NULL)
            fail_msg("HTTP %ld \"%s\": got %d \"%s\", expected %d saying \"%s\"", cases[i].http,
                     cases[i].body, r.rc, r.err, cases[i].rc, cases[i].says);
        assert_null(r.root);
    }
}

static void test_int64_fields_accept_strings_and_numbers_only(void **state)
{
    (void)state;
    json_t *o = json_loads("{\"a\":\"42\",\"b\":7,\"c\":true,\"d\":\"4x\",\"e\":\"-3\","
                           "\"f\":\"99999999999999999999\",\"g\":\"\",\"h\":null}",
                           0, NULL);
    assert_non_null(o);
    int64_t v = -1;
    char err[128];
    assert_int_equal(reign_etcd_json_int64(o, "a", &v, err, sizeof err), REIGN_OK);
    assert_int_equal(v, 42);
    assert_int_equal(reign_etcd_json_int64(o, "b", &v, err, sizeof err), REIGN_OK);
    assert_int_equal(v, 7);
    assert_int_equal(reign_etcd_json_int64(o, "e", &v, err, sizeof err), REIGN_OK);
    assert_int_equal(v, -3);
    assert_int_equal(reign_etcd_json_int64(o, "missing", &v, err, sizeof err), REIGN_OK);
    assert_int_equal(v, 0);
    assert_int_equal(reign_etcd_json_int64(o, "h", &v, err, sizeof err), REIGN_OK);
    assert_int_equal(v, 0);
    assert_int_equal(reign_etcd_json_int64(o, "c", &v, err, sizeof err), REIGN_EPROTO);
    assert_non_null(strstr(err, "\"c\""));
    assert_int_equal(reign_etcd_json_int64(o, "d", &v, err, sizeof err), REIGN_EPROTO);
    assert_int_equal(reign_etcd_json_int64(o, "f", &v, err, sizeof err), REIGN_EPROTO);
    assert_int_equal(reign_etcd_json_int64(o, "g", &v, err, sizeof err), REIGN_EPROTO);
    json_decref(o);
}

/* ---- leases, auth, version ------------------------------------------------------- */

static void test_lease_grant_gives_id_and_ttl(void **state)
{
    (void)state;
    resp r = parse(200, grant_body);
    int64_t id = 0, ttl = 0;
    assert_int_equal(reign_etcd_json_lease_grant(r.root, &id, &ttl, r.err, sizeof r.err), REIGN_OK);
    assert_int_equal(id, INT64_C(4390624894709944837));
    assert_int_equal(ttl, 10);
    json_decref(r.root);

    r = parse(200, "{\"header\":{}}");
    assert_int_equal(reign_etcd_json_lease_grant(r.root, &id, &ttl, r.err, sizeof r.err),
                     REIGN_EPROTO);
    json_decref(r.root);
}

static void test_keepalive_gives_ttl_and_zero_for_a_lease_that_is_gone(void **state)
{
    (void)state;
    resp r = parse(200, keepalive_body);
    int64_t ttl = -1;
    assert_int_equal(reign_etcd_json_lease_keepalive(r.root, INT64_C(4390624894709944842), &ttl,
                                                     r.err, sizeof r.err),
                     REIGN_OK);
    assert_int_equal(ttl, 5);
    /* Another lease's answer is not ours. */
    assert_int_equal(reign_etcd_json_lease_keepalive(r.root, 1, &ttl, r.err, sizeof r.err),
                     REIGN_EPROTO);
    json_decref(r.root);

    r = parse(200, keepalive_gone_body);
    assert_int_equal(r.rc, REIGN_OK);
    assert_int_equal(reign_etcd_json_lease_keepalive(r.root, 123, &ttl, r.err, sizeof r.err),
                     REIGN_OK);
    assert_int_equal(ttl, 0);
    json_decref(r.root);
}

static void test_timetolive_gives_the_leases_keys_and_minus_one_when_gone(void **state)
{
    (void)state;
    resp r = parse(200, timetolive_body);
    int64_t ttl = 0;
    etcd_kv *kvs = NULL;
    size_t n = 0;
    assert_int_equal(reign_etcd_json_lease_keys(r.root, INT64_C(3719025857220431878), &ttl, &kvs,
                                                &n, r.err, sizeof r.err),
                     REIGN_OK);
    assert_int_equal(ttl, 29);
    assert_int_equal(n, 2);
    assert_int_equal(kvs[0].key_len, 3);
    assert_memory_equal(kvs[0].key, "foo", 3);
    assert_memory_equal(kvs[1].key, "bar", 3);
    reign_etcd_kvs_free(kvs, n);
    /* Another lease's answer is not ours. */
    assert_int_equal(reign_etcd_json_lease_keys(r.root, 1, &ttl, &kvs, &n, r.err, sizeof r.err),
                     REIGN_EPROTO);
    json_decref(r.root);

    r = parse(200, timetolive_gone_body);
    assert_int_equal(reign_etcd_json_lease_keys(r.root, 12345, &ttl, &kvs, &n, r.err, sizeof r.err),
                     REIGN_OK);
    assert_int_equal(ttl, -1);
    assert_int_equal(n, 0);
    reign_etcd_kvs_free(kvs, n);
    json_decref(r.root);
}

static void test_authenticate_gives_a_token_and_version_a_number(void **state)
{
    (void)state;
    resp r = parse(200, "{\"header\":{\"revision\":\"5\"},\"token\":\"ipawbslMhxhblmwj.20\"}");
    char *token = NULL;
    assert_int_equal(reign_etcd_json_auth_token(r.root, &token, r.err, sizeof r.err), REIGN_OK);
    assert_string_equal(token, "ipawbslMhxhblmwj.20");
    free(token);
    json_decref(r.root);

    r = parse(200, "{\"token\":\"a\\r\\nX-Evil: 1\"}");
    assert_int_equal(reign_etcd_json_auth_token(r.root, &token, r.err, sizeof r.err), REIGN_EPROTO);
    json_decref(r.root);

    r = parse(200, "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}");
    int major = 0, minor = 0;
    assert_int_equal(reign_etcd_json_version(r.root, &major, &minor, r.err, sizeof r.err),
                     REIGN_OK);
    assert_int_equal(major, 3);
    assert_int_equal(minor, 4);
    json_decref(r.root);

    r = parse(200, "{\"etcdserver\":3}");
    assert_int_equal(reign_etcd_json_version(r.root, &major, &minor, r.err, sizeof r.err),
                     REIGN_EPROTO);
    json_decref(r.root);
}

/* ---- txn and range → op results ---------------------------------------------------- */

static reign_op op_of(reign_op_kind kind, const char *res, uint64_t term)
{
    reign_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.resource = res;
    op.resource_len = strlen(res);
    op.term = term;
    op.out_remaining_ms = -1;
    return op;
}

static void op_clear(reign_op *op)
{
    free(op->out_holder);
    free(op->out_metadata);
    free(op->out_error);
}

static void test_acquire_txn_gives_ok_with_the_txn_revision_or_held(void **state)
{
    (void)state;
    resp r = parse(200, acquire_body);
    assert_int_equal(r.rc, REIGN_OK);
    etcd_txn_item items[2];
    int64_t rev = 0;
    assert_int_equal(reign_etcd_json_txn_nested(r.root, items, 2, &rev, r.err, sizeof r.err),
                     REIGN_OK);
    assert_int_equal(rev, 7);
    assert_true(items[0].succeeded);
    assert_false(items[1].succeeded);
    assert_true(items[1].has_kv);
    assert_int_equal(items[1].kv.create_revision, 5);
    assert_int_equal(items[1].kv.lease, 99);
    assert_memory_equal(items[1].kv.key, "/p/b", 4);

    reign_op a = op_of(REIGN_OP_ACQUIRE, "a", 0), b = op_of(REIGN_OP_ACQUIRE, "b", 0);
    reign_etcd_result_acquire(&a, &items[0], rev, true);
    reign_etcd_result_acquire(&b, &items[1], rev, true);
    assert_int_equal(a.result, REIGN_RES_OK);
    assert_int_equal(a.out_term, 7);
    assert_int_equal(b.result, REIGN_RES_HELD);
    assert_int_equal(b.out_term, 5);
    assert_string_equal(b.out_holder, "bob");
    assert_string_equal(b.out_metadata, "10.0.0.2");
    assert_int_equal(b.out_remaining_ms, -1);
    op_clear(&a);
    op_clear(&b);

    /* Written, but the keep-alive failed: the lease may end too soon. */
    reign_op c = op_of(REIGN_OP_ACQUIRE, "a", 0);
    reign_etcd_result_acquire(&c, &items[0], rev, false);
    assert_int_equal(c.result, REIGN_RES_ERROR);
    assert_int_equal(c.out_status, REIGN_EBACKEND);
    /* the cause alone: the core adds "etcd: … (<uri>)" */
    assert_non_null(strstr(c.out_error, "keep-alive failed"));
    assert_null(strstr(c.out_error, "etcd:"));
    op_clear(&c);
    reign_etcd_txn_items_clear(items, 2);
    json_decref(r.root);
}

static void test_a_held_key_that_is_not_a_lease_record_is_eproto(void **state)
{
    (void)state;
    etcd_txn_item item;
    memset(&item, 0, sizeof item);
    item.has_kv = true;
    item.kv.create_revision = 3;
    item.kv.value = (unsigned char *)"hello";
    item.kv.value_len = 5;
    reign_op op = op_of(REIGN_OP_ACQUIRE, "x\x01", 0);
    reign_etcd_result_acquire(&op, &item, 4, true);
    assert_int_equal(op.result, REIGN_RES_ERROR);
    assert_int_equal(op.out_status, REIGN_EPROTO);
    assert_non_null(strstr(op.out_error, "the key's "));
    op_clear(&op);

    /* Not succeeded and no key: cannot be. */
    item.has_kv = false;
    op = op_of(REIGN_OP_ACQUIRE, "x", 0);
    reign_etcd_result_acquire(&op, &item, 4, true);
    assert_int_equal(op.out_status, REIGN_EPROTO);
    op_clear(&op);
}

static void test_release_txn_gives_ok_or_lost(void **state)
{
    (void)state;
    resp r = parse(200, release_body);
    etcd_txn_item items[2];
    int64_t rev = 0;
    assert_int_equal(reign_etcd_json_txn_nested(r.root, items, 2, &rev, r.err, sizeof r.err),
                     REIGN_OK);
    assert_int_equal(items[0].deleted, 1);
    reign_op a = op_of(REIGN_OP_RELEASE, "a", 4), b = op_of(REIGN_OP_RELEASE, "b", 5);
    reign_etcd_result_release(&a, &items[0]);
    reign_etcd_result_release(&b, &items[1]);
    assert_int_equal(a.result, REIGN_RES_OK);
    assert_int_equal(b.result, REIGN_RES_LOST);
    reign_etcd_txn_items_clear(items, 2);
    json_decref(r.root);
}

static void test_a_txn_answering_another_count_is_eproto(void **state)
{
    (void)state;
    resp r = parse(200, release_body);
    etcd_txn_item items[3];
    int64_t rev = 0;
    assert_int_equal(reign_etcd_json_txn_nested(r.root, items, 3, &rev, r.err, sizeof r.err),
                     REIGN_EPROTO);
    assert_non_null(strstr(r.err, "2 responses for 3"));
    assert_int_equal(reign_etcd_json_txn_ranges(r.root, items, 2, &rev, r.err, sizeof r.err),
                     REIGN_EPROTO);
    json_decref(r.root);

    r = parse(200, "{\"header\":{},\"responses\":[]}");
    assert_int_equal(reign_etcd_json_txn_ranges(r.root, items, 0, &rev, r.err, sizeof r.err),
                     REIGN_EPROTO); /* "succeeded" absent = false: a txn without compares */
    json_decref(r.root);
}

static void test_ranges_give_read_results_and_renew_verdicts(void **state)
{
    (void)state;
    resp r = parse(200, ranges_body);
    etcd_txn_item items[2];
    int64_t rev = 0;
    assert_int_equal(reign_etcd_json_txn_ranges(r.root, items, 2, &rev, r.err, sizeof r.err),
                     REIGN_OK);
    assert_int_equal(rev, 12);
    assert_true(items[0].has_kv);
    assert_false(items[1].has_kv);

    /* keys_only: no value, so a READ of it is a protocol error, not a crash. */
    reign_op rd = op_of(REIGN_OP_READ, "a", 0);
    reign_etcd_result_read(&rd, &items[0]);
    assert_int_equal(rd.result, REIGN_RES_ERROR);
    assert_int_equal(rd.out_status, REIGN_EPROTO);
    op_clear(&rd);
    rd = op_of(REIGN_OP_READ, "b", 0);
    reign_etcd_result_read(&rd, &items[1]);
    assert_int_equal(rd.result, REIGN_RES_NONE);

    static const struct {
        uint64_t term;
        int64_t lease;
        int alive;
        int item;
        reign_op_result want;
    } renew[] = {
        {10, 77, 1, 0, REIGN_RES_OK},      /* ours, lease kept alive */
        {10, 77, -1, 0, REIGN_RES_ERROR},  /* ours, keep-alive failed */
        {10, 77, 0, 0, REIGN_RES_LOST},    /* ours, lease gone */
        {9, 77, 1, 0, REIGN_RES_LOST},     /* another holder's key (other revision) */
        {10, 78, 1, 0, REIGN_RES_LOST},    /* on another lease of ours (an older one) */
        {10, 77, 1, 1, REIGN_RES_LOST},    /* key gone */
        {10, 77, 1, -1, REIGN_RES_ERROR},  /* could not check */
        {10, 77, 0, -1, REIGN_RES_LOST},   /* could not check, but the lease is gone */
    };
    for (size_t i = 0; i < sizeof renew / sizeof *renew; i++) {
        reign_op op = op_of(REIGN_OP_RENEW, "a", renew[i].term);
        reign_etcd_result_renew(&op, renew[i].item >= 0 ? &items[renew[i].item] : NULL,
                                renew[i].lease, renew[i].alive);
        if (op.result != renew[i].want)
            fail_msg("renew case %zu: result %d, expected %d", i, op.result, renew[i].want);
        op_clear(&op);
    }
    reign_etcd_txn_items_clear(items, 2);
    json_decref(r.root);
}

static void test_range_gives_every_pair(void **state)
{
    (void)state;
    resp r = parse(200, range_body);
    etcd_kv *kvs = NULL;
    size_t n = 0;
    int64_t rev = 0;
    assert_int_equal(reign_etcd_json_range(r.root, &kvs, &n, &rev, r.err, sizeof r.err), REIGN_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(kvs[1].key, "b", 2);
    assert_int_equal(kvs[1].lease, INT64_C(4390624894709944842));
    assert_null(kvs[0].value);
    reign_etcd_kvs_free(kvs, n);
    json_decref(r.root);

    r = parse(200, "{\"header\":{\"revision\":\"2\"}}");
    assert_int_equal(reign_etcd_json_range(r.root, &kvs, &n, &rev, r.err, sizeof r.err), REIGN_OK);
    assert_int_equal(n, 0);
    reign_etcd_kvs_free(kvs, n);
    json_decref(r.root);
}

static void test_wrong_types_in_a_range_are_eproto_naming_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *says;
    } cases[] = {
        {"{\"kvs\":{}}", "\"kvs\" is not an array"},
        {"{\"kvs\":[7]}", "not an object"},
        {"{\"kvs\":[{\"key\":5}]}", "\"key\" is not a base64"},
        {"{\"kvs\":[{\"key\":\"!!!\"}]}", "\"key\" is not valid base64"},
        {"{\"kvs\":[{}]}", "\"key\" is missing"},
        {"{\"kvs\":[{\"key\":\"\"}]}", "empty key"},
        {"{\"kvs\":[{\"key\":\"YQ==\",\"lease\":[]}]}", "\"lease\" is not an integer"},
        {"{\"header\":[],\"kvs\":[]}", "\"header\" is not an object"},
        {"{\"header\":{\"revision\":\"-4\"}}", "negative revision"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resp r = parse(200, cases[i].body);
        assert_int_equal(r.rc, REIGN_OK);
        etcd_kv *kvs = NULL;
        size_t n = 0;
        int64_t rev = 0;
        int rc = reign_etcd_json_range(r.root, &kvs, &n, &rev, r.err, sizeof r.err);
        if (rc != REIGN_EPROTO || strstr(r.err, cases[i].says) == NULL)
            fail_msg("%s: got %d \"%s\", expected REIGN_EPROTO saying \"%s\"", cases[i].body, rc,
                     r.err, cases[i].says);
        json_decref(r.root);
    }
}

/* ---- the watch stream --------------------------------------------------------------- */

typedef struct watch_seen {
    int messages;
    int created;
    int deleted;
    int64_t last_revision;
    char keys[8][16];
} watch_seen;

/* Feed `stream` in pieces of `step` bytes through the framer. */
static void feed_watch(const char *stream, size_t len, size_t step, watch_seen *seen)
{
    char *buf = malloc(len + 1);
    size_t have = 0;
    assert_non_null(buf);
    memset(seen, 0, sizeof *seen);
    etcd_json_framer fr; /* resumable, as etcd_watch.c frames */
    reign_etcd_json_framer_reset(&fr);
    for (size_t pos = 0; pos < len;) {
        size_t n = step < len - pos ? step : len - pos;
        memcpy(buf + have, stream + pos, n);
        have += n;
        pos += n;
        for (;;) {
            size_t flen = 0;
            int f = reign_etcd_json_framer_next(&fr, buf, have, &flen);
            assert_true(f >= 0);
            if (f == 0) {
                assert_int_equal(fr.pos, have); /* scanned once: the next call resumes */
                break;
            }
            reign_etcd_json_framer_reset(&fr);
            etcd_watch_msg m;
            int grpc = 0;
            char err[256];
            assert_int_equal(reign_etcd_json_watch(buf, flen, &m, &grpc, err, sizeof err),
                             REIGN_OK);
            seen->messages++;
            seen->created += m.created;
            seen->last_revision = m.revision;
            for (size_t i = 0; i < m.n_deleted && seen->deleted < 8; i++) {
                snprintf(seen->keys[seen->deleted], sizeof seen->keys[0], "%s",
                         (char *)m.deleted[i].key);
                seen->deleted++;
            }
            reign_etcd_watch_msg_clear(&m);
            memmove(buf, buf + flen, have - flen);
            have -= flen;
        }
    }
    free(buf);
}

static void test_watch_messages_cut_anywhere_are_framed_whole(void **state)
{
    (void)state;
    size_t len = strlen(watch_stream);
    for (size_t step = 1; step <= len; step += (step < 40 ? 1 : 97)) {
        watch_seen seen;
        feed_watch(watch_stream, len, step, &seen);
        if (seen.messages != 3 || seen.created != 1 || seen.deleted != 2)
            fail_msg("pieces of %zu bytes: %d messages, %d created, %d deleted", step,
                     seen.messages, seen.created, seen.deleted);
        assert_string_equal(seen.keys[0], "/p/a");
        assert_string_equal(seen.keys[1], "/p/{");
        assert_int_equal(seen.last_revision, 6);
    }
}

static void test_frame_honours_strings_escapes_and_refuses_garbage(void **state)
{
    (void)state;
    size_t flen = 0;
    const char *tricky = " \n{\"a\":\"}{\\\"}\",\"b\":[{}]}{\"next\":1}";
    assert_int_equal(reign_etcd_json_frame(tricky, strlen(tricky), &flen), 1);
    assert_int_equal(flen, strlen(" \n{\"a\":\"}{\\\"}\",\"b\":[{}]}"));
    assert_int_equal(reign_etcd_json_frame("{\"a\":\"}", 7, &flen), 0);
    assert_int_equal(reign_etcd_json_frame("   ", 3, &flen), 0);
    assert_int_equal(reign_etcd_json_frame("", 0, &flen), 0);
    assert_int_equal(reign_etcd_json_frame("x{}", 3, &flen), REIGN_EPROTO);
    assert_int_equal(reign_etcd_json_frame("{]]", 3, &flen), REIGN_EPROTO);
    char deep[200];
    memset(deep, '[', sizeof deep);
    deep[0] = '{';
    assert_int_equal(reign_etcd_json_frame(deep, sizeof deep, &flen), REIGN_EPROTO);
}

static void test_watch_cancel_and_stream_errors_are_reported(void **state)
{
    (void)state;
    const char *cancel =
        "{\"result\":{\"header\":{\"revision\":\"6\"},\"watch_id\":\"-1\",\"created\":true,"
        "\"canceled\":true,\"compact_revision\":\"4\",\"cancel_reason\":\"rpc error: code = "
        "Unauthenticated desc = etcdserver: invalid auth token\"}}";
    etcd_watch_msg m;
    int grpc = 0;
    char err[256];
    assert_int_equal(reign_etcd_json_watch(cancel, strlen(cancel), &m, &grpc, err, sizeof err),
                     REIGN_OK);
    assert_true(m.canceled);
    assert_int_equal(m.compact_revision, 4);
    assert_non_null(strstr(m.reason, "invalid auth token"));
    reign_etcd_watch_msg_clear(&m);

    assert_int_equal(reign_etcd_json_watch(stream_error_body, strlen(stream_error_body), &m, &grpc,
                                           err, sizeof err),
                     REIGN_EBACKEND);
    assert_int_equal(grpc, ETCD_GRPC_UNAVAILABLE);

    const char *bad = "{\"result\":{\"events\":[{\"type\":\"DELETE\"}]}}";
    assert_int_equal(reign_etcd_json_watch(bad, strlen(bad), &m, &grpc, err, sizeof err),
                     REIGN_EPROTO);
    assert_non_null(strstr(err, "no \"kv\""));
}

static void test_watch_put_events_are_reported_for_observers(void **state)
{
    (void)state;
    const char *put = "{\"result\":{\"header\":{\"revision\":\"6\"},\"events\":[{\"kv\":{\"key\":"
                      "\"L3AvYQ==\",\"create_revision\":\"6\",\"mod_revision\":\"6\",\"value\":"
                      "\"eA==\"}},{\"type\":\"PUT\",\"kv\":{\"key\":\"L3Avew==\"}},"
                      "{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3AvYg==\"}}]}}";
    etcd_watch_msg m;
    int grpc = 0;
    char err[256];
    assert_int_equal(reign_etcd_json_watch(put, strlen(put), &m, &grpc, err, sizeof err), REIGN_OK);
    assert_int_equal(m.n_events, 3);
    assert_int_equal(m.n_put, 2);
    assert_int_equal(m.n_deleted, 1);
    assert_memory_equal(m.put[0].key, "/p/a", 4);
    assert_int_equal(m.put[0].create_revision, 6);
    assert_memory_equal(m.put[1].key, "/p/{", 4);
    assert_memory_equal(m.deleted[0].key, "/p/b", 4);
    reign_etcd_watch_msg_clear(&m);
    const char *bad = "{\"result\":{\"events\":[{\"type\":\"PUT\"}]}}";
    assert_int_equal(reign_etcd_json_watch(bad, strlen(bad), &m, &grpc, err, sizeof err),
                     REIGN_EPROTO);
    assert_non_null(strstr(err, "PUT event has no"));
}

/* ---- fuzz ---------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Every parser on one body: any status but a crash, a leak or a bug. */
static void parse_all(const char *body, size_t len)
{
    json_t *root = NULL;
    int grpc = 0;
    char err[256];
    int rc = reign_etcd_json_response(200, body, len, &root, &grpc, err, sizeof err);
    assert_true(rc == REIGN_OK || rc == REIGN_EPROTO || rc == REIGN_EBACKEND ||
                rc == REIGN_EAUTH);
    if (rc == REIGN_OK) {
        int64_t a = 0, b = 0;
        etcd_txn_item items[2];
        etcd_kv *kvs = NULL;
        size_t n = 0;
        char *token = NULL;
        int major, minor;
        reign_etcd_json_lease_grant(root, &a, &b, err, sizeof err);
        reign_etcd_json_lease_keepalive(root, 5, &a, err, sizeof err);
        if (reign_etcd_json_lease_keys(root, 5, &a, &kvs, &n, err, sizeof err) == REIGN_OK)
            reign_etcd_kvs_free(kvs, n);
        kvs = NULL;
        n = 0;
        if (reign_etcd_json_auth_token(root, &token, err, sizeof err) == REIGN_OK)
            free(token);
        reign_etcd_json_version(root, &major, &minor, err, sizeof err);
        if (reign_etcd_json_txn_nested(root, items, 2, &a, err, sizeof err) == REIGN_OK) {
            reign_op op = op_of(REIGN_OP_ACQUIRE, "a", 0);
            reign_etcd_result_acquire(&op, &items[1], a, true);
            assert_true(op.result == REIGN_RES_OK || op.result == REIGN_RES_HELD ||
                        op.result == REIGN_RES_ERROR);
            op_clear(&op);
            reign_etcd_txn_items_clear(items, 2);
        }
        if (reign_etcd_json_txn_ranges(root, items, 2, &a, err, sizeof err) == REIGN_OK) {
            reign_op op = op_of(REIGN_OP_READ, "a", 0);
            reign_etcd_result_read(&op, &items[0]);
            op_clear(&op);
            reign_etcd_txn_items_clear(items, 2);
        }
        if (reign_etcd_json_range(root, &kvs, &n, &a, err, sizeof err) == REIGN_OK)
            reign_etcd_kvs_free(kvs, n);
        json_decref(root);
    }
    size_t flen = 0;
    if (reign_etcd_json_frame(body, len, &flen) == 1) {
        etcd_watch_msg m;
        if (reign_etcd_json_watch(body, flen, &m, &grpc, err, sizeof err) == REIGN_OK)
            reign_etcd_watch_msg_clear(&m);
    }
}

static void test_random_damage_never_crashes_the_parsers(void **state)
{
    (void)state;
    static const char *const seeds[] = {grant_body,         keepalive_body, keepalive_gone_body,
                                        lease_not_found_body, acquire_body, release_body,
                                        ranges_body,        range_body,     watch_stream,
                                        stream_error_body};
    static const char alphabet[] = "{}[]\":,\\0123456789-eE.tfnul YQ=\x01\xff";
    char buf[2048];
    for (int iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[rng() % (sizeof seeds / sizeof *seeds)];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int edits = 1 + (int)(rng() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = len > 0 ? rng() % len : 0;
            switch (rng() % 4) {
            case 0: buf[at] = alphabet[rng() % (sizeof alphabet - 1)]; break;
            case 1: len = at; break; /* truncate */
            case 2:
                if (len + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = alphabet[rng() % (sizeof alphabet - 1)];
                    len++;
                }
                break;
            default:
                if (len > 0) {
                    memmove(buf + at, buf + at + 1, len - at - 1);
                    len--;
                }
                break;
            }
        }
        parse_all(buf, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_good_response_is_its_json_object),
        cmocka_unit_test(test_a_stream_result_is_unwrapped),
        cmocka_unit_test(test_grpc_errors_become_named_statuses),
        cmocka_unit_test(test_non_json_and_http_errors_are_eproto_or_ebackend),
        cmocka_unit_test(test_int64_fields_accept_strings_and_numbers_only),
        cmocka_unit_test(test_lease_grant_gives_id_and_ttl),
        cmocka_unit_test(test_keepalive_gives_ttl_and_zero_for_a_lease_that_is_gone),
        cmocka_unit_test(test_authenticate_gives_a_token_and_version_a_number),
        cmocka_unit_test(test_acquire_txn_gives_ok_with_the_txn_revision_or_held),
        cmocka_unit_test(test_a_held_key_that_is_not_a_lease_record_is_eproto),
        cmocka_unit_test(test_release_txn_gives_ok_or_lost),
        cmocka_unit_test(test_a_txn_answering_another_count_is_eproto),
        cmocka_unit_test(test_ranges_give_read_results_and_renew_verdicts),
        cmocka_unit_test(test_range_gives_every_pair),
        cmocka_unit_test(test_wrong_types_in_a_range_are_eproto_naming_the_field),
        cmocka_unit_test(test_watch_messages_cut_anywhere_are_framed_whole),
        cmocka_unit_test(test_timetolive_gives_the_leases_keys_and_minus_one_when_gone),
        cmocka_unit_test(test_frame_honours_strings_escapes_and_refuses_garbage),
        cmocka_unit_test(test_watch_cancel_and_stream_errors_are_reported),
        cmocka_unit_test(test_watch_put_events_are_reported_for_observers),
        cmocka_unit_test(test_random_damage_never_crashes_the_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !REIGN_WITH_ETCD */

static void test_etcd_backend_is_not_built(void **state)
{
    (void)state;
    skip(); /* configure with -DREIGN_WITH_ETCD=ON to run these tests */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etcd_backend_is_not_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif /* REIGN_WITH_ETCD */
