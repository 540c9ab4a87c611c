/* Fuzz target: etcd JSON gateway responses as the etcd:// backend decodes
 * them (backends/etcd/etcd_json.c), then the pure result mappers of
 * etcd_ops.c that turn them into op results. Byte 0 picks the endpoint
 * (lease grant, keep-alive, txn nested/ranges, range, auth, version), bytes
 * 1-2 the HTTP status (mostly 200), byte 3 the number of txn items; the
 * rest is the body. */
#include "etcd/etcd_codec.h"
#include "etcd/etcd_internal.h"
#include "etcd/etcd_json.h"
#include "fuzz_common.h"

#define ERR_SIZE 160

static void check_err(int rc, const char *err)
{
    FUZZ_CHECK(rc < 0, "status %d", rc);
    FUZZ_CHECK(fuzz_terminated(err, ERR_SIZE) && err[0] != '\0', "no message for status %d", rc);
}

static void check_op(const reign_op *op)
{
    FUZZ_CHECK(op->result != REIGN_RES_UNSET, "op left unset");
    if (op->result == REIGN_RES_ERROR)
        FUZZ_CHECK(op->out_status < 0, "error status %d", op->out_status);
    if (op->result == REIGN_RES_HELD || (op->kind == REIGN_OP_READ && op->result == REIGN_RES_OK))
        FUZZ_CHECK(op->out_holder != NULL, "no holder");
}

static void op_done(reign_op *op)
{
    check_op(op);
    free(op->out_holder);
    free(op->out_metadata);
    free(op->out_error);
    memset(op, 0, sizeof *op);
}

static void map_items(const etcd_txn_item *items, size_t n, int64_t rev, unsigned flags)
{
    for (size_t i = 0; i < n; i++) {
        reign_op op = {.resource = "p/a", .resource_len = 3, .term = (uint64_t)(flags & 7) + 1};
        op.kind = REIGN_OP_ACQUIRE;
        reign_etcd_result_acquire(&op, &items[i], rev, flags & 8);
        op_done(&op);
        op.kind = REIGN_OP_RENEW;
        op.term = (uint64_t)(flags & 7) + 1;
        reign_etcd_result_renew(&op, &items[i], (int64_t)(flags >> 4), (int)(flags % 3) - 1);
        op_done(&op);
        op.kind = REIGN_OP_RELEASE;
        reign_etcd_result_release(&op, &items[i]);
        op_done(&op);
        op.kind = REIGN_OP_READ;
        reign_etcd_result_read(&op, &items[i]);
        op_done(&op);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    unsigned which = data[0] % 10;
    long http = data[1] < 200 ? 200 : (long)(data[1] - 200) * 10 + (long)data[2] % 10 + 200;
    size_t n_items = data[3] % 4 + 1;
    const char *body = (const char *)data + 4;
    size_t len = size - 4;

    json_t *root = NULL;
    int grpc = 0;
    char err[ERR_SIZE];
    int rc = reign_etcd_json_response(http, body, len, &root, &grpc, err, sizeof err);
    if (rc != REIGN_OK) {
        check_err(rc, err);
        (void)reign_etcd_json_needs_reauth(grpc, err);
        return 0;
    }
    FUZZ_CHECK(root != NULL && json_is_object(root), "no object");
    int64_t a = 0, b = 0, rev = 0;
    etcd_txn_item items[4];
    memset(items, 0, sizeof items);
    switch (which) {
    case 0:
        rc = reign_etcd_json_lease_grant(root, &a, &b, err, sizeof err);
        if (rc == REIGN_OK)
            FUZZ_CHECK(a != 0 && b > 0, "grant id %lld ttl %lld", (long long)a, (long long)b);
        break;
    case 1:
        rc = reign_etcd_json_lease_keepalive(root, 4390624894709944842LL, &a, err, sizeof err);
        if (rc == REIGN_OK)
            FUZZ_CHECK(a >= 0, "keep-alive ttl %lld", (long long)a);
        break;
    case 2:
    case 3:
        rc = reign_etcd_json_txn_nested(root, items, n_items, &rev, err, sizeof err);
        if (rc == REIGN_OK) {
            map_items(items, n_items, rev, data[3]);
            reign_etcd_txn_items_clear(items, n_items);
        }
        break;
    case 4:
    case 5:
        rc = reign_etcd_json_txn_ranges(root, items, n_items, &rev, err, sizeof err);
        if (rc == REIGN_OK) {
            map_items(items, n_items, rev, data[3]);
            reign_etcd_txn_items_clear(items, n_items);
        }
        break;
    case 6:
    case 7: {
        etcd_kv *kvs = NULL;
        size_t n = 0;
        rc = reign_etcd_json_range(root, &kvs, &n, &rev, err, sizeof err);
        if (rc == REIGN_OK) {
            for (size_t i = 0; i < n; i++) {
                const unsigned char *res = NULL;
                size_t res_len = 0;
                (void)reign_etcd_key_resource("/p", kvs[i].key, kvs[i].key_len, &res, &res_len);
                if (kvs[i].value != NULL) {
                    char *holder = NULL, *meta = NULL;
                    if (reign_etcd_value_decode(kvs[i].value, kvs[i].value_len, &holder, &meta, err,
                                                sizeof err) == REIGN_OK) {
                        FUZZ_CHECK(holder != NULL && meta != NULL, "decode gave NULL");
                        free(holder);
                        free(meta);
                    } else {
                        FUZZ_CHECK(err[0] != '\0', "value refused without a message");
                    }
                }
            }
            reign_etcd_kvs_free(kvs, n);
        }
        break;
    }
    case 8: {
        char *token = NULL;
        rc = reign_etcd_json_auth_token(root, &token, err, sizeof err);
        if (rc == REIGN_OK) {
            FUZZ_CHECK(token != NULL, "no token");
            free(token);
        }
        break;
    }
    default: {
        int major = 0, minor = 0;
        rc = reign_etcd_json_version(root, &major, &minor, err, sizeof err);
        (void)reign_etcd_json_revision(root, &rev, err, sizeof err);
        break;
    }
    }
    if (rc != REIGN_OK)
        check_err(rc, err);
    json_decref(root);
    return 0;
}
