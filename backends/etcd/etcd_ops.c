/* A batch of lease ops → etcd requests → op results, for the etcd:// backend.
 *
 * One batch costs a handful of requests, sent concurrently:
 *   keep-alive   one /lease/keepalive of the factory's lease, when the batch
 *                renews or writes a key (a new key lives as long as the
 *                lease, so the lease must have a whole TTL left when we say
 *                OK);
 *   verify       the RENEWed keys: one txn of ranges, or for more keys than
 *                a txn may hold one /lease/timetolive of the factory's own
 *                lease with its keys (work for etcd in this instance's
 *                keys, not in every key under the prefix);
 *   RELEASE      nested txns, each "create_revision == term → delete";
 *   READ         a txn of ranges;
 *   ACQUIRE      nested txns, each "create_revision == 0 → put with the
 *                lease, else range" (one txn is all-or-nothing on its
 *                compares, but each nested txn has its own) — or, for a key
 *                last seen held by another (etcd_held.h), a read-only range
 *                first, which etcd answers without a raft write;
 * with up to max_ops entries per txn. A second round follows only for an
 * ACQUIRE whose resource is RELEASEd in the same batch (etcd refuses a
 * delete and a put of one key in one txn, and order matters), whose lease
 * turned out to be gone (a new lease is granted first), or whose key a
 * read found absent. While etcd answers slowly, a window bounds the
 * ACQUIRE writes per batch (section 3).
 *
 * Map of this file:
 *   1. results from parsed responses (pure)
 *   2. request bodies
 *   3. the batch: plan, congestion window, rounds, results
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_codec.h"
#include "etcd_internal.h"
#include "etcd_json.h"

/* Stay well below etcd's --max-request-bytes (1.5 MiB by default). */
#define ETCD_MAX_BODY (1u << 20)

/* ---- 1. Results from parsed responses ---------------------------------------- */

void reign_etcd_op_error(reign_op *op, int status, const char *cause)
{
    reign_op_fail(op, status, "%s", cause);
}

/* HELD or READ OK from the holder's key. */
static void fill_holder(reign_op *op, const etcd_kv *kv, reign_op_result result)
{
    char *holder = NULL, *meta = NULL;
    char cause[200], err[160];
    if (kv->create_revision <= 0) {
        reign_etcd_op_error(op, REIGN_EPROTO, "the key has no create_revision");
        return;
    }
    int rc = reign_etcd_value_decode(kv->value != NULL ? kv->value : (const unsigned char *)"",
                                     kv->value_len, &holder, &meta, err, sizeof err);
    if (rc != REIGN_OK) {
        snprintf(cause, sizeof cause, "the key's %s", err);
        reign_etcd_op_error(op, rc, cause);
        return;
    }
    op->result = result;
    op->out_term = (uint64_t)kv->create_revision;
    op->out_holder = holder;
    op->out_metadata = meta;
    op->out_remaining_ms = -1; /* the holder's lease TTL would cost a request per lease */
}

void reign_etcd_result_acquire(reign_op *op, const etcd_txn_item *item, int64_t txn_revision,
                               bool lease_ok)
{
    if (item->succeeded) {
        if (txn_revision <= 0) {
            reign_etcd_op_error(op, REIGN_EPROTO, "the txn answered no revision");
        } else if (!lease_ok) {
            /* The key is ours but its lease may end before a TTL from now. */
            reign_etcd_op_error(op, REIGN_EBACKEND,
                                "the key was written but the lease's keep-alive failed: outcome "
                                "unknown");
        } else {
            op->result = REIGN_RES_OK;
            op->out_term = (uint64_t)txn_revision;
        }
        return;
    }
    if (!item->has_kv) {
        reign_etcd_op_error(op, REIGN_EPROTO,
                            "the key exists (create_revision != 0) but its range found nothing");
        return;
    }
    fill_holder(op, &item->kv, REIGN_RES_HELD);
}

void reign_etcd_result_renew(reign_op *op, const etcd_txn_item *item, int64_t lease_id,
                             int lease_alive)
{
    if (item != NULL && (!item->has_kv || item->kv.create_revision <= 0 ||
                         (uint64_t)item->kv.create_revision != op->term ||
                         item->kv.lease != lease_id || lease_id == 0)) {
        op->result = REIGN_RES_LOST; /* the key is gone, another's, or on another lease */
        return;
    }
    if (lease_alive == 0) {
        op->result = REIGN_RES_LOST;
        return;
    }
    if (item == NULL) {
        reign_etcd_op_error(op, REIGN_EBACKEND, "could not check the key");
        return;
    }
    if (lease_alive < 0) {
        reign_etcd_op_error(op, REIGN_EBACKEND, "the lease's keep-alive failed");
        return;
    }
    op->result = REIGN_RES_OK;
}

void reign_etcd_result_release(reign_op *op, const etcd_txn_item *item)
{
    op->result = item->succeeded ? REIGN_RES_OK : REIGN_RES_LOST;
}

void reign_etcd_result_read(reign_op *op, const etcd_txn_item *item)
{
    if (!item->has_kv) {
        op->result = REIGN_RES_NONE;
        return;
    }
    fill_holder(op, &item->kv, REIGN_RES_OK);
}

/* ---- 2. Request bodies ------------------------------------------------------------ */

/* The txn bodies are written as text, not built as jansson trees: a batch
 * of 1,000 ops would otherwise cost some 20,000 small allocations. Every
 * string put in them is base64 or a number, so nothing needs escaping. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p != NULL ? b->p + b->len : NULL, b->p != NULL ? b->cap - b->len : 0,
                          fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p != NULL && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

#define COMPARE_CREATE                                                                       \
    "\"compare\":[{\"key\":\"%s\",\"target\":\"CREATE\",\"result\":\"EQUAL\","              \
    "\"create_revision\":\"%" PRId64 "\"}]"

static void acquire_txn(sbuf *b, const char *key64, const char *value64, int64_t lease)
{
    sb_add(b,
           "{\"request_txn\":{" COMPARE_CREATE ",\"success\":[{\"request_put\":{\"key\":\"%s\","
           "\"value\":\"%s\",\"lease\":\"%" PRId64 "\"}}],\"failure\":[{\"request_range\":"
           "{\"key\":\"%s\"}}]}}",
           key64, (int64_t)0, key64, value64, lease, key64);
}

static void release_txn(sbuf *b, const char *key64, uint64_t term)
{
    sb_add(b,
           "{\"request_txn\":{" COMPARE_CREATE ",\"success\":[{\"request_delete_range\":"
           "{\"key\":\"%s\"}}]}}",
           key64, (int64_t)term, key64);
}

static void range_op(sbuf *b, const char *key64, bool keys_only)
{
    sb_add(b, "{\"request_range\":{\"key\":\"%s\",\"keys_only\":%s}}", key64,
           keys_only ? "true" : "false");
}

/* ---- 3. The batch ------------------------------------------------------------------- */

typedef enum job_kind {
    JOB_KEEPALIVE,
    JOB_VERIFY_TXN,
    JOB_VERIFY_LEASE,
    JOB_RELEASE,
    JOB_READ,
    JOB_PRECHECK,
    JOB_ACQUIRE,
} job_kind;

/* One request and the ops it answers (indices into the batch). */
typedef struct job {
    etcd_req req;
    job_kind kind;
    const size_t *idx;
    size_t n;
} job;

typedef struct batch {
    etcd_state *s;
    reign_op *ops;
    size_t n_ops;
    char **key64;       /* per op: base64 of <prefix>/<resource> */
    size_t *acq, *pre, *rel, *ren, *rd, *again; /* ACQUIREs to write, to read first, … */
    size_t n_acq, n_pre, n_rel, n_ren, n_rd, n_again;
    job *jobs;
    size_t n_jobs;
    int64_t lease_used; /* the lease this round's requests carry */
    int lease_alive;    /* its keep-alive verdict: 1 alive, 0 gone, -1 unknown */
    bool lease_fresh;   /* granted during this batch */
    int64_t t0;         /* when the batch began, before any request was sent */
    int64_t wait_ns;    /* spent waiting for answers (the rest is our CPU) */
    size_t writes_sent;     /* ACQUIREs sent as write txns */
    bool writes_timed_out;  /* some of them got no answer in time */
    int64_t deadline_ns;
} batch;

static const char *where_of(const batch *b)
{
    return b->s->cfg->uri_redacted;
}

static void fail_ops(batch *b, const size_t *idx, size_t n, int status, const char *cause)
{
    for (size_t i = 0; i < n; i++)
        if (b->ops[idx[i]].result == REIGN_RES_UNSET)
            reign_etcd_op_error(&b->ops[idx[i]], status, cause);
}

static void jobs_clear(batch *b)
{
    for (size_t i = 0; i < b->n_jobs; i++)
        reign_etcd_req_clear(&b->jobs[i].req);
    b->n_jobs = 0;
}

static job *job_add(batch *b, job_kind kind, const char *path, const size_t *idx, size_t n)
{
    job *j = &b->jobs[b->n_jobs++];
    memset(j, 0, sizeof *j);
    j->kind = kind;
    j->req.path = path;
    j->idx = idx;
    j->n = n;
    return j;
}

/* Serialize `body` into the job (consumes it); on failure fail its ops. */
static bool job_body(batch *b, job *j, json_t *body)
{
    j->req.body = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (j->req.body == NULL) {
        fail_ops(b, j->idx, j->n, REIGN_ENOMEM, "out of memory building the request");
        b->n_jobs--;
        reign_etcd_req_clear(&j->req);
        return false;
    }
    return true;
}

/* One entry of a txn's success list for the op at op_index. */
typedef void (*entry_fn)(batch *b, sbuf *out, size_t op_index);

static void entry_acquire(batch *b, sbuf *out, size_t i)
{
    acquire_txn(out, b->key64[i], b->s->holder_value, b->s->lease_id);
}
static void entry_release(batch *b, sbuf *out, size_t i)
{
    release_txn(out, b->key64[i], b->ops[i].term);
}
static void entry_read(batch *b, sbuf *out, size_t i)
{
    range_op(out, b->key64[i], false);
}
static void entry_verify(batch *b, sbuf *out, size_t i)
{
    range_op(out, b->key64[i], true);
}

/* Entries per txn: etcd counts a txn's own entries against --max-txn-ops
 * and gives each nested txn only what is left, so n nested txns of one op
 * each need n + 1 <= max-txn-ops. */
static size_t txn_limit(const batch *b, job_kind kind)
{
    size_t limit = b->s->max_ops;
    if ((kind == JOB_ACQUIRE || kind == JOB_RELEASE) && limit > 1)
        limit--;
    return limit;
}

/* Cut idx[0..n) into txns of at most txn_limit entries and ETCD_MAX_BODY
 * bytes, each entry written by `make`. */
static void add_txn_jobs(batch *b, job_kind kind, const size_t *idx, size_t n, entry_fn make)
{
    size_t start = 0;
    size_t limit = txn_limit(b, kind);
    while (start < n) {
        sbuf body = {0};
        size_t count = 0;
        sb_add(&body, "{\"success\":[");
        while (start + count < n && count < limit) {
            size_t mark = body.len;
            if (count > 0)
                sb_add(&body, ",");
            make(b, &body, idx[start + count]);
            if (count > 0 && body.len > ETCD_MAX_BODY) {
                body.len = mark; /* this entry opens the next txn */
                break;
            }
            count++;
        }
        sb_add(&body, "]}");
        job *j = job_add(b, kind, "/kv/txn", idx + start, count);
        if (body.oom) {
            free(body.p);
            fail_ops(b, j->idx, j->n, REIGN_ENOMEM, "out of memory building the request");
            b->n_jobs--;
        } else {
            j->req.body = body.p;
        }
        start += count;
    }
}

static int key_cmp(const unsigned char *a, size_t al, const unsigned char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl;
}

static int kv_sort_cmp(const void *pa, const void *pb)
{
    const etcd_kv *a = pa, *b = pb;
    return key_cmp(a->key, a->key_len, b->key, b->key_len);
}

/* RENEWs whose keys could not be checked: LOST if the lease is known gone
 * (their keys went with it), else ERROR with the cause. */
static void verify_failed(batch *b, const job *j, int status, const char *cause)
{
    for (size_t k = 0; k < j->n; k++) {
        reign_op *op = &b->ops[j->idx[k]];
        if (b->lease_alive == 0)
            op->result = REIGN_RES_LOST;
        else if (op->result == REIGN_RES_UNSET) {
            char full[ETCD_ERR_SIZE + 40];
            snprintf(full, sizeof full, "could not check the key: %s", cause);
            reign_etcd_op_error(op, status, full);
        }
    }
}

/* RENEW results from the keys attached to our own lease. A key attached to
 * it was put by one of our ACQUIREs, at the revision that ACQUIRE answered
 * as its term, and the engine renews only the term it was given: so a key
 * found there is taken to carry the RENEW's term (the txn of ranges, for
 * fewer keys, checks the term itself). A lease past its TTL (-1) has lost
 * every key. */
static void apply_verify_lease(batch *b, job *j)
{
    etcd_kv *kvs = NULL;
    size_t n = 0;
    int64_t ttl = 0;
    char err[ETCD_ERR_SIZE];
    int rc =
        reign_etcd_json_lease_keys(j->req.root, b->lease_used, &ttl, &kvs, &n, err, sizeof err);
    if (rc != REIGN_OK) {
        verify_failed(b, j, rc, err);
        return;
    }
    if (ttl < 0) {
        for (size_t k = 0; k < j->n; k++)
            b->ops[j->idx[k]].result = REIGN_RES_LOST;
        reign_etcd_kvs_free(kvs, n);
        return;
    }
    qsort(kvs, n, sizeof *kvs, kv_sort_cmp);
    for (size_t k = 0; k < j->n; k++) {
        reign_op *op = &b->ops[j->idx[k]];
        size_t klen = 0;
        char *key = reign_etcd_key(b->s->set.prefix, op->resource, op->resource_len, &klen);
        if (key == NULL) {
            reign_etcd_op_error(op, REIGN_ENOMEM, "out of memory");
            continue;
        }
        etcd_txn_item item = {0};
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = key_cmp(kvs[mid].key, kvs[mid].key_len, (const unsigned char *)key, klen);
            if (c == 0) {
                item.has_kv = true;
                item.kv = kvs[mid]; /* borrowed: not cleared below */
                item.kv.create_revision = (int64_t)op->term; /* vouched for above */
                item.kv.lease = b->lease_used;
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        reign_etcd_result_renew(op, &item, b->lease_used, b->lease_alive);
        free(key);
    }
    reign_etcd_kvs_free(kvs, n);
}

/* Results of one txn job; true if its ops should go again (lease gone). */
static bool apply_txn_job(batch *b, job *j)
{
    etcd_req *r = &j->req;
    if (r->status != REIGN_OK) {
        bool lease_gone = j->kind == JOB_ACQUIRE && strstr(r->err, "lease not found") != NULL;
        if (lease_gone)
            return true;
        if (strstr(r->err, "too many operations in txn") != NULL && j->n > 1 &&
            b->s->max_ops > j->n / 2) {
            /* Once per size, not once per failed txn of the batch. */
            b->s->max_ops = (unsigned)(j->n / 2);
            reign_backend_log(b->s->cfg, REIGN_LOG_WARN,
                              "%s: etcd refuses txns this large (its --max-txn-ops is lower); "
                              "using %u ops per txn from now on", where_of(b), b->s->max_ops);
        }
        if (j->kind == JOB_VERIFY_TXN)
            verify_failed(b, j, r->status, r->err);
        fail_ops(b, j->idx, j->n, r->status, r->err);
        return false;
    }
    etcd_txn_item *items = calloc(j->n, sizeof *items);
    int64_t rev = 0;
    char err[ETCD_ERR_SIZE];
    int rc;
    if (items == NULL) {
        fail_ops(b, j->idx, j->n, REIGN_ENOMEM, "out of memory");
        return false;
    }
    if (j->kind == JOB_ACQUIRE || j->kind == JOB_RELEASE)
        rc = reign_etcd_json_txn_nested(r->root, items, j->n, &rev, err, sizeof err);
    else
        rc = reign_etcd_json_txn_ranges(r->root, items, j->n, &rev, err, sizeof err);
    if (rc != REIGN_OK) {
        char cause[ETCD_ERR_SIZE + 64];
        snprintf(cause, sizeof cause, "%s%s/kv/txn: %s", b->s->set.endpoints[r->endpoint],
                 b->s->http.api, err);
        free(items);
        if (j->kind == JOB_VERIFY_TXN)
            verify_failed(b, j, rc, cause);
        fail_ops(b, j->idx, j->n, rc, cause);
        return false;
    }
    bool lease_ok = b->lease_fresh || b->lease_alive == 1;
    for (size_t k = 0; k < j->n; k++) {
        reign_op *op = &b->ops[j->idx[k]];
        switch (j->kind) {
        case JOB_ACQUIRE:
            reign_etcd_result_acquire(op, &items[k], rev, lease_ok);
            break;
        case JOB_RELEASE:
            reign_etcd_result_release(op, &items[k]);
            break;
        case JOB_READ:
            reign_etcd_result_read(op, &items[k]);
            break;
        case JOB_VERIFY_TXN:
            reign_etcd_result_renew(op, &items[k], b->lease_used, b->lease_alive);
            break;
        default: break;
        }
    }
    reign_etcd_txn_items_clear(items, j->n);
    free(items);
    return false;
}

static void apply_keepalive(batch *b, job *j)
{
    etcd_req *r = &j->req;
    int64_t ttl = 0;
    char err[ETCD_ERR_SIZE];
    if (r->status != REIGN_OK) {
        b->lease_alive = r->grpc_code == ETCD_GRPC_NOT_FOUND ? 0 : -1;
        if (b->lease_alive < 0)
            reign_backend_log(b->s->cfg, REIGN_LOG_DEBUG, "keep-alive failed: %s", r->err);
    } else if (reign_etcd_json_lease_keepalive(r->root, b->lease_used, &ttl, err, sizeof err) !=
               REIGN_OK) {
        b->lease_alive = -1;
        reign_backend_log(b->s->cfg, REIGN_LOG_WARN, "%s: keep-alive: %s", where_of(b), err);
    } else if (ttl <= 0) {
        b->lease_alive = 0;
    } else if (ttl < b->s->lease_ttl_s) {
        /* A lease shorter than we asked for would end before our belief. */
        b->lease_alive = -1;
        reign_backend_log(b->s->cfg, REIGN_LOG_ERROR,
                          "%s: lease %" PRId64 " has a TTL of %" PRId64 " s, below the %" PRId64
                          " s asked for", where_of(b), b->lease_used, ttl, b->s->lease_ttl_s);
    } else {
        b->lease_alive = 1;
        b->s->lease_fresh_ns = b->t0;
    }
    if (b->lease_alive == 0) {
        /* An idle factory (nothing held, nothing campaigning) lets its lease
         * lapse on purpose; it only matters when something was held. */
        reign_backend_log(b->s->cfg, b->n_ren > 0 ? REIGN_LOG_WARN : REIGN_LOG_DEBUG,
                          "%s: lease %" PRId64 " expired: every mastership of this factory "
                          "ended; a new lease is granted for the next ACQUIRE", where_of(b),
                          b->lease_used);
        if (b->s->lease_id == b->lease_used)
            b->s->lease_id = 0;
    }
}

/* Grant a lease now if there is none; sets lease_fresh. */
static bool ensure_lease(batch *b, const size_t *idx, size_t n)
{
    if (b->s->lease_id != 0)
        return true;
    char err[ETCD_ERR_SIZE];
    int rc = reign_etcd_lease_grant(b->s, b->deadline_ns, err, sizeof err);
    if (rc != REIGN_OK) {
        fail_ops(b, idx, n, rc, err);
        return false;
    }
    b->lease_fresh = true;
    b->lease_used = b->s->lease_id;
    return true;
}

static int res_cmp(const reign_op *a, const reign_op *b)
{
    return key_cmp((const unsigned char *)a->resource, a->resource_len,
                   (const unsigned char *)b->resource, b->resource_len);
}

/* qsort over indices needs the ops; one batch runs at a time per thread. */
static _Thread_local const reign_op *sort_ops;
static int idx_res_cmp(const void *pa, const void *pb)
{
    return res_cmp(&sort_ops[*(const size_t *)pa], &sort_ops[*(const size_t *)pb]);
}

/* Split the ACQUIREs: those whose resource is RELEASEd in this batch wait
 * for round two (b->again), the rest stay in b->acq. */
static void defer_conflicts(batch *b)
{
    if (b->n_rel == 0 || b->n_acq == 0)
        return;
    size_t *rel = malloc(b->n_rel * sizeof *rel);
    if (rel == NULL) { /* no memory to tell: play safe, all go second */
        memcpy(b->again, b->acq, b->n_acq * sizeof *b->acq);
        b->n_again = b->n_acq;
        b->n_acq = 0;
        return;
    }
    memcpy(rel, b->rel, b->n_rel * sizeof *rel);
    sort_ops = b->ops;
    qsort(rel, b->n_rel, sizeof *rel, idx_res_cmp);
    size_t keep = 0;
    for (size_t k = 0; k < b->n_acq; k++) {
        size_t i = b->acq[k];
        if (bsearch(&i, rel, b->n_rel, sizeof *rel, idx_res_cmp) != NULL)
            b->again[b->n_again++] = i;
        else
            b->acq[keep++] = i;
    }
    b->n_acq = keep;
    free(rel);
}

static void run_jobs(batch *b)
{
    etcd_req **reqs = malloc((b->n_jobs ? b->n_jobs : 1) * sizeof *reqs);
    if (reqs == NULL) {
        for (size_t i = 0; i < b->n_jobs; i++) {
            b->jobs[i].req.status = REIGN_ENOMEM;
            snprintf(b->jobs[i].req.err, sizeof b->jobs[i].req.err, "out of memory");
        }
        return;
    }
    for (size_t i = 0; i < b->n_jobs; i++)
        reqs[i] = &b->jobs[i].req;
    int64_t t = reign_backend_now_ns();
    reign_etcd_http_run(&b->s->http, reqs, b->n_jobs, b->deadline_ns);
    b->wait_ns += reign_backend_now_ns() - t;
    free(reqs);
}

/* ---- congestion: how many ACQUIREs a batch may write ------------------------------- */

/* etcd applies writes one after another. When it is slow (a loaded host, a
 * busy cluster), a batch that writes a thousand keys gets no answer in time,
 * yet etcd applies the writes later: keys that nobody believes in, to be
 * released, more writes. So, like TCP's window: after writes time out, a
 * batch sends at most half as many; after a batch whose writes all came
 * back, a few more. ACQUIREs beyond the window end in ERROR unsent; the core
 * retries them at its next tick. */
#define WINDOW_STEP(b) (4 * txn_limit(b, JOB_ACQUIRE))
#define WINDOW_OPEN 65536

/* The first n ACQUIREs of idx that fit the window; the rest fail unsent. */
static size_t within_window(batch *b, const size_t *idx, size_t n)
{
    size_t window = b->s->write_window;
    if (window == 0)
        return n;
    size_t room = window > b->writes_sent ? window - b->writes_sent : 0;
    if (n <= room)
        return n;
    char cause[160];
    snprintf(cause, sizeof cause, "etcd answers slowly: not sent, at most %zu ACQUIRE writes "
             "per batch until it catches up", window);
    fail_ops(b, idx + room, n - room, REIGN_EBACKEND, cause);
    return room;
}

static void note_writes(batch *b, const job *j)
{
    b->writes_sent += j->n;
    if (j->req.status == REIGN_ETIMEDOUT)
        b->writes_timed_out = true;
}

static void adjust_window(batch *b)
{
    etcd_state *s = b->s;
    size_t before = s->write_window;
    if (b->writes_timed_out) {
        size_t half = b->writes_sent / 2;
        size_t floor = txn_limit(b, JOB_ACQUIRE);
        s->write_window = half > floor ? half : floor;
    } else if (s->write_window != 0 && b->writes_sent >= s->write_window) {
        s->write_window += WINDOW_STEP(b);
        if (s->write_window >= WINDOW_OPEN)
            s->write_window = 0;
    }
    if (s->write_window != before)
        reign_backend_log(s->cfg, before == 0 ? REIGN_LOG_INFO : REIGN_LOG_DEBUG,
                          "%s: ACQUIRE writes per batch: %s%zu (%zu sent, %s)", where_of(b),
                          s->write_window == 0 ? "no limit, was " : "",
                          s->write_window == 0 ? before : s->write_window, b->writes_sent,
                          b->writes_timed_out ? "some got no answer in time" : "all answered");
}

static job *add_keepalive(batch *b)
{
    job *j = job_add(b, JOB_KEEPALIVE, "/lease/keepalive", NULL, 0);
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, b->s->lease_id);
    return job_body(b, j, json_pack("{s:s}", "ID", id)) ? j : NULL;
}

/* Round two: the ACQUIREs in idx write their keys. A lease first if there
 * is none, and a keep-alive beside the txns unless one already worked in
 * this batch (an OK needs a lease with a whole TTL from the batch's start). */
static void acquire_round(batch *b, const size_t *idx, size_t n)
{
    n = within_window(b, idx, n);
    if (n == 0 || !ensure_lease(b, idx, n))
        return;
    b->lease_used = b->s->lease_id;
    job *keepalive = NULL;
    if (!b->lease_fresh && b->lease_alive != 1)
        keepalive = add_keepalive(b);
    add_txn_jobs(b, JOB_ACQUIRE, idx, n, entry_acquire);
    run_jobs(b);
    if (keepalive != NULL)
        apply_keepalive(b, keepalive);
    for (size_t k = 0; k < b->n_jobs; k++) {
        job *j = &b->jobs[k];
        if (j->kind == JOB_ACQUIRE)
            note_writes(b, j);
        if (j->kind != JOB_ACQUIRE || !apply_txn_job(b, j))
            continue;
        if (b->s->lease_id == b->lease_used)
            b->s->lease_id = 0; /* the next batch grants a new one */
        fail_ops(b, j->idx, j->n, REIGN_EBACKEND,
                 "the lease ended while the key was being written: try again");
    }
    jobs_clear(b);
}

/* Round one's read-only check of ACQUIREs whose key was last seen held by
 * another: a key that exists is HELD at once; an absent one (its delete not
 * seen yet) goes to round two (b->again) to be written. */
static void apply_precheck(batch *b, job *j)
{
    if (j->req.status != REIGN_OK) {
        fail_ops(b, j->idx, j->n, j->req.status, j->req.err);
        return;
    }
    etcd_txn_item *items = calloc(j->n, sizeof *items);
    int64_t rev = 0;
    char err[ETCD_ERR_SIZE];
    if (items == NULL) {
        fail_ops(b, j->idx, j->n, REIGN_ENOMEM, "out of memory");
        return;
    }
    int rc = reign_etcd_json_txn_ranges(j->req.root, items, j->n, &rev, err, sizeof err);
    if (rc != REIGN_OK) {
        free(items);
        fail_ops(b, j->idx, j->n, rc, err);
        return;
    }
    for (size_t k = 0; k < j->n; k++) {
        if (items[k].has_kv)
            fill_holder(&b->ops[j->idx[k]], &items[k].kv, REIGN_RES_HELD);
        else
            b->again[b->n_again++] = j->idx[k];
    }
    reign_etcd_txn_items_clear(items, j->n);
    free(items);
}

int reign_etcd_execute_batch(etcd_state *s, reign_batch *batch_in)
{
    reign_op *ops = batch_in->ops;
    size_t n_ops = batch_in->n_ops;
    int64_t t0 = reign_backend_now_ns();
    uint64_t requests0 = s->http.requests;
    batch b = {.s = s, .ops = ops, .n_ops = n_ops, .lease_alive = -1, .t0 = t0};
    /* Leave a little time for parsing and results after the last answer. */
    int64_t left_ns = batch_in->deadline_ns - t0;
    int64_t slack_ns = left_ns <= 0 ? 0 : left_ns / 20 < 20000000 ? left_ns / 20 : 20000000;
    b.deadline_ns = batch_in->deadline_ns - slack_ns;
    int rc = REIGN_OK;
    size_t n_acquire = 0;

    b.key64 = calloc(n_ops, sizeof *b.key64);
    size_t *idx = malloc(6 * n_ops * sizeof *idx);
    /* Jobs: keep-alive, verify, and per kind at most one txn per op. */
    b.jobs = calloc(n_ops + 2, sizeof *b.jobs);
    if (b.key64 == NULL || idx == NULL || b.jobs == NULL) {
        rc = REIGN_ENOMEM;
        goto out;
    }
    b.acq = idx;
    b.rel = idx + n_ops;
    b.ren = idx + 2 * n_ops;
    b.rd = idx + 3 * n_ops;
    b.again = idx + 4 * n_ops;
    b.pre = idx + 5 * n_ops;
    /* The held set is only as good as the watch that prunes it. */
    bool trust_held = s->watch.established && !s->watch.broken && s->watch.easy != NULL;
    if (!trust_held)
        reign_etcd_held_clear(&s->held);
    for (size_t i = 0; i < n_ops; i++) {
        reign_op *op = &ops[i];
        size_t klen = 0;
        char *key = reign_etcd_key(s->set.prefix, op->resource, op->resource_len, &klen);
        b.key64[i] = key != NULL ? reign_etcd_b64_encode(key, klen) : NULL;
        free(key);
        if (b.key64[i] == NULL) {
            reign_etcd_op_error(op, REIGN_ENOMEM, "out of memory");
            continue;
        }
        switch (op->kind) {
        case REIGN_OP_ACQUIRE:
            /* Held by another when last seen, and no delete since: a read
             * (no raft write) answers HELD; other keys are written at once. */
            if (trust_held && reign_etcd_held_contains(&s->held, op->resource, op->resource_len))
                b.pre[b.n_pre++] = i;
            else
                b.acq[b.n_acq++] = i;
            n_acquire++;
            break;
        case REIGN_OP_RELEASE: b.rel[b.n_rel++] = i; break;
        case REIGN_OP_RENEW: b.ren[b.n_ren++] = i; break;
        case REIGN_OP_READ: b.rd[b.n_rd++] = i; break;
        default:
            reign_etcd_op_error(op, REIGN_EINVAL, "unknown op kind");
            break;
        }
    }

    /* Unused for longer than its TTL (nothing held, nobody campaigning): it
     * has expired, or will before it could carry a whole TTL again, and
     * nothing this factory believes in hangs on it. Start a new one rather
     * than pay a keep-alive, a refused put and a grant to learn that. */
    if (s->lease_id != 0 && t0 - s->lease_fresh_ns > s->lease_ttl_s * 1000000000) {
        reign_backend_log(s->cfg, REIGN_LOG_DEBUG, "lease %" PRId64 " unused for longer than its "
                          "TTL: starting a new one", s->lease_id);
        s->lease_id = 0;
    }

    /* RENEWs of a lease we already know is gone: their keys went with it. */
    if (s->lease_id == 0)
        for (size_t k = 0; k < b.n_ren; k++)
            ops[b.ren[k]].result = REIGN_RES_LOST;
    size_t n_ren_live = s->lease_id != 0 ? b.n_ren : 0;

    defer_conflicts(&b);
    b.n_acq = within_window(&b, b.acq, b.n_acq);
    if (b.n_acq > 0 && !ensure_lease(&b, b.acq, b.n_acq))
        b.n_acq = 0;

    /* Round one. */
    b.lease_used = s->lease_id;
    job *keepalive = NULL;
    if (s->lease_id != 0 && !b.lease_fresh && (n_ren_live > 0 || b.n_acq > 0))
        keepalive = add_keepalive(&b);
    if (n_ren_live > 0 && n_ren_live <= txn_limit(&b, JOB_VERIFY_TXN)) {
        add_txn_jobs(&b, JOB_VERIFY_TXN, b.ren, n_ren_live, entry_verify);
    } else if (n_ren_live > 0) {
        /* The /kv/ path is the one etcd 3.3's gateway serves; 3.4 and later
         * keep it beside /lease/timetolive. */
        job *j = job_add(&b, JOB_VERIFY_LEASE, "/kv/lease/timetolive", b.ren, n_ren_live);
        char id[24];
        snprintf(id, sizeof id, "%" PRId64, s->lease_id);
        job_body(&b, j, json_pack("{s:s, s:b}", "ID", id, "keys", 1));
    }
    add_txn_jobs(&b, JOB_RELEASE, b.rel, b.n_rel, entry_release);
    add_txn_jobs(&b, JOB_READ, b.rd, b.n_rd, entry_read);
    add_txn_jobs(&b, JOB_PRECHECK, b.pre, b.n_pre, entry_read);
    if (s->lease_id != 0)
        add_txn_jobs(&b, JOB_ACQUIRE, b.acq, b.n_acq, entry_acquire);
    run_jobs(&b);

    /* The keep-alive's verdict first: every other result depends on it. */
    if (keepalive != NULL)
        apply_keepalive(&b, keepalive);
    for (size_t k = 0; k < b.n_jobs; k++) {
        job *j = &b.jobs[k];
        if (j->kind == JOB_KEEPALIVE)
            continue;
        if (j->kind == JOB_PRECHECK) {
            apply_precheck(&b, j);
            continue;
        }
        if (j->kind == JOB_VERIFY_LEASE) {
            if (j->req.status == REIGN_OK) {
                apply_verify_lease(&b, j);
                continue;
            }
            verify_failed(&b, j, j->req.status, j->req.err);
            continue;
        }
        if (j->kind == JOB_ACQUIRE)
            note_writes(&b, j);
        if (!apply_txn_job(&b, j))
            continue;
        /* A put with the lease was refused: it ended before any keep-alive
         * could say so. Those ACQUIREs go again with a new lease. */
        if (s->lease_id == b.lease_used && s->lease_id != 0) {
            reign_backend_log(s->cfg, b.n_ren > 0 ? REIGN_LOG_WARN : REIGN_LOG_DEBUG,
                              "%s: lease %" PRId64 " is gone (a put with it was refused): "
                              "granting a new one", where_of(&b), b.lease_used);
            s->lease_id = 0;
        }
        for (size_t m = 0; m < j->n; m++)
            b.again[b.n_again++] = j->idx[m];
    }
    jobs_clear(&b);

    /* Round two: ACQUIREs after their RELEASE, after a new lease, or after a
     * precheck found their key absent. */
    if (b.n_again > 0) {
        if (s->lease_id == 0)
            b.lease_fresh = false;
        acquire_round(&b, b.again, b.n_again);
    }

    adjust_window(&b);

    /* Remember who holds what for the next ACQUIREs of these resources. */
    for (size_t i = 0; i < n_ops; i++) {
        reign_op *op = &ops[i];
        if (op->kind != REIGN_OP_ACQUIRE)
            continue;
        if (trust_held && op->result == REIGN_RES_HELD && op->out_holder != NULL &&
            strcmp(op->out_holder, s->cfg->instance_id) != 0)
            reign_etcd_held_add(&s->held, op->resource, op->resource_len);
        else
            reign_etcd_held_remove(&s->held, op->resource, op->resource_len);
    }

    /* After the requests: they may have moved to another endpoint, which is
     * where a (re)started watch should go. */
    reign_etcd_watch_ensure(s);

out:
    if (rc != REIGN_OK)
        for (size_t i = 0; i < n_ops; i++)
            if (ops[i].result == REIGN_RES_UNSET)
                reign_op_fail(&ops[i], rc, "out of memory");
    reign_backend_log(s->cfg, REIGN_LOG_DEBUG,
                      "batch of %zu ops (ACQUIRE %zu, RENEW %zu, RELEASE %zu, READ %zu): %" PRIu64
                      " HTTP requests, %.1f ms (%.1f ms waiting for answers)",
                      n_ops, n_acquire, b.n_ren, b.n_rel, b.n_rd, s->http.requests - requests0,
                      (double)(reign_backend_now_ns() - t0) / 1e6, (double)b.wait_ns / 1e6);
    if (b.jobs != NULL)
        jobs_clear(&b);
    free(b.jobs);
    if (b.key64 != NULL)
        for (size_t i = 0; i < n_ops; i++)
            free(b.key64[i]);
    free(b.key64);
    free(idx);
    return rc;
}
