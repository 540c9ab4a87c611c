/* The noop:// backend: every instance is always master of everything, for
 * tests of code that needs an election but no contention. It keeps only the
 * last term it handed out per resource, so READ can report it. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "noop_internal.h"

#define NOOP_INITIAL_BUCKETS 64

/* The last term given for one resource. */
typedef struct noop_term {
    struct noop_term *next;  /* hash chain */
    uint64_t hash;
    char *resource;
    size_t resource_len;
    uint64_t term;
} noop_term;

/* One state; the engine thread is its only user, so no lock. */
typedef struct noop_state {
    const char *instance_id;  /* the factory's config, lives until close */
    const char *metadata;     /* never NULL */
    uint64_t next_term;       /* strictly increasing across all resources */
    noop_term **buckets;
    size_t n_buckets;         /* a power of two */
    size_t n_terms;
} noop_state;

/* The term of op's resource in the bucket of hash h, or NULL. */
static noop_term *find_term(const noop_state *st, const reign_op *op, uint64_t h)
{
    noop_term *t = st->buckets[h & (st->n_buckets - 1)];
    while (t != NULL) {
        if (t->hash == h && t->resource_len == op->resource_len &&
            memcmp(t->resource, op->resource, op->resource_len) == 0) {
            return t;
        }
        t = t->next;
    }
    return NULL;
}

/* Double the buckets; on allocation failure the table just stays denser. */
static void grow(noop_state *st)
{
    size_t n = st->n_buckets * 2;
    noop_term **b = calloc(n, sizeof(*b));
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < st->n_buckets; i++) {
        noop_term *t = st->buckets[i];
        while (t != NULL) {
            noop_term *next = t->next;
            t->next = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
            t = next;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->n_buckets = n;
}

/* Remember `term` as the resource's last; false when out of memory. */
static bool record_term(noop_state *st, const reign_op *op, uint64_t term)
{
    uint64_t h = reign_hash(op->resource, op->resource_len);
    noop_term *t = find_term(st, op, h);
    if (t != NULL) {
        t->term = term;
        return true;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return false;
    }
    t->resource = malloc(op->resource_len + 1);
    if (t->resource == NULL) {
        free(t);
        return false;
    }
    memcpy(t->resource, op->resource, op->resource_len);
    t->resource[op->resource_len] = '\0';
    t->resource_len = op->resource_len;
    t->hash = h;
    t->term = term;
    if (st->n_terms >= st->n_buckets) {
        grow(st);
    }
    t->next = st->buckets[h & (st->n_buckets - 1)];
    st->buckets[h & (st->n_buckets - 1)] = t;
    st->n_terms++;
    return true;
}

static void do_acquire(noop_state *st, reign_op *op)
{
    if (st->next_term == UINT64_MAX) {
        reign_op_fail(op, REIGN_EBACKEND, "term space exhausted");
        return;
    }
    uint64_t term = st->next_term + 1;
    if (!record_term(st, op, term)) {
        reign_op_fail(op, REIGN_ENOMEM, "out of memory");
        return;
    }
    st->next_term = term;
    op->out_term = term;
    op->result = REIGN_RES_OK;
}

/* The holder is always ourselves; the term the last one given, or 1 for a
 * resource never acquired here. */
static void do_read(noop_state *st, reign_op *op)
{
    const noop_term *t = find_term(st, op, reign_hash(op->resource, op->resource_len));
    char *holder = strdup(st->instance_id);
    char *metadata = strdup(st->metadata);
    if (holder == NULL || metadata == NULL) {
        free(holder);
        free(metadata);
        reign_op_fail(op, REIGN_ENOMEM, "out of memory");
        return;
    }
    op->out_holder = holder;
    op->out_metadata = metadata;
    op->out_term = t != NULL ? t->term : 1;
    op->out_remaining_ms = -1; /* it never expires: no time left to tell */
    op->result = REIGN_RES_OK;
}

static int noop_execute(void *state, reign_batch *b)
{
    noop_state *st = state;
    /* nothing here can take long: no deadline to watch */
    for (size_t i = 0; i < b->n_ops; i++) {
        reign_op *op = &b->ops[i];
        switch (op->kind) {
        case REIGN_OP_ACQUIRE: do_acquire(st, op); break;
        case REIGN_OP_RENEW: op->result = REIGN_RES_OK; break;
        case REIGN_OP_RELEASE: op->result = REIGN_RES_OK; break;
        case REIGN_OP_READ: do_read(st, op); break;
        default:
            reign_op_fail(op, REIGN_EBUG, "unknown op kind %d", (int)op->kind);
            break;
        }
    }
    return REIGN_OK;
}

static void noop_close(void *state)
{
    noop_state *st = state;
    for (size_t i = 0; i < st->n_buckets; i++) {
        noop_term *t = st->buckets[i];
        while (t != NULL) {
            noop_term *next = t->next;
            free(t->resource);
            free(t);
            t = next;
        }
    }
    free(st->buckets);
    free(st);
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static int noop_open(const reign_backend_config *cfg, void **state_out)
{
    noop_state *st = NULL;
    int rc = REIGN_OK;

    /* noop has nothing to address: anything in the URI is a mistake (maybe
     * a backend swapped by configuration with its address left behind). */
    if (!empty(cfg->host) || !empty(cfg->path) || cfg->user != NULL || cfg->password != NULL ||
        cfg->port != 0) {
        reign_backend_error("noop: %s: the noop URI takes no host, path, user or port; use "
                            "exactly noop://",
                            cfg->uri_redacted != NULL ? cfg->uri_redacted : "(no URI)");
        rc = REIGN_EURI;
        goto out;
    }
    if (empty(cfg->instance_id)) {
        reign_backend_error("noop: empty instance ID");
        rc = REIGN_EINVAL;
        goto out;
    }
    st = calloc(1, sizeof(*st));
    if (st != NULL) {
        st->n_buckets = NOOP_INITIAL_BUCKETS;
        st->buckets = calloc(st->n_buckets, sizeof(*st->buckets));
    }
    if (st == NULL || st->buckets == NULL) {
        reign_backend_error("noop: out of memory");
        rc = REIGN_ENOMEM;
        goto out;
    }
    st->instance_id = cfg->instance_id;
    st->metadata = cfg->metadata != NULL ? cfg->metadata : "";
    *state_out = st;
    st = NULL;
out:
    if (st != NULL) {
        free(st->buckets);
        free(st);
    }
    return rc;
}

static const char *const noop_params[] = {NULL};

const reign_backend reign_backend_noop = {
    REIGN_BACKEND_INIT,
    .scheme = "noop",
    .scheme_alt = NULL,
    .open = noop_open,
    .execute = noop_execute,
    .notify_fd = NULL,
    .notify_drain = NULL,
    .close = noop_close,
    .params = noop_params,
};
