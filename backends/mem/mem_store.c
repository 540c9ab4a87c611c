/* The stores behind mem://NAME: a process-wide registry of named lease tables
 * that every factory opened with the same NAME shares, plus the test hooks of
 * include/reign/mem.h (fault injection, forced expiry, batch counting).
 *
 * Map:
 *   1. types and the registry      5. executing a batch, draining
 *   2. the lease table             6. attach / detach
 *   3. notifying other clients     7. test hooks
 *   4. lease operations
 *
 * Locks: mem_registry_lock guards the registry list and every store's refs;
 * each store's lock guards everything else in it. Order: registry, then
 * store. A batch holds only its store's lock, never the registry's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mem_internal.h"
#include "reign/mem.h"

/* ---- 1. Types and the registry ------------------------------------------- */

#define MEM_DEFAULT_NAME "default"
#define MEM_INITIAL_BUCKETS 64
#define NS_PER_MS INT64_C(1000000)

/* One resource. Never removed while the store lives: it carries the term
 * history, which must survive release and expiry so terms only increase. */
typedef struct mem_lease {
    struct mem_lease *next;  /* hash chain */
    uint64_t hash;
    char *resource;
    size_t resource_len;
    uint64_t last_term;      /* the highest term ever granted on this resource */
    bool held;               /* a lease with last_term exists and has not ended */
    char *holder;            /* held only */
    char *metadata;          /* held only */
    int64_t expires_ns;      /* held only: now_ns(); live while now < this */
} mem_lease;

typedef struct mem_store {
    struct mem_store *next;  /* registry list, guarded by mem_registry_lock */
    size_t refs;             /* clients attached, guarded by mem_registry_lock */
    char *name;              /* immutable */

    pthread_mutex_t lock;    /* guards every field below */
    pthread_cond_t fault_changed;  /* CLOCK_MONOTONIC; stalled batches wait on it */
    reign_mem_fault fault;
    uint64_t executes;
    mem_client *clients;
    mem_lease **buckets;
    size_t n_buckets;        /* a power of two */
    size_t n_leases;
} mem_store;

static pthread_mutex_t mem_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static mem_store *mem_registry; /* guarded by mem_registry_lock */

static const char *normalize_name(const char *name)
{
    return (name == NULL || name[0] == '\0') ? MEM_DEFAULT_NAME : name;
}

/* Caller holds mem_registry_lock. */
static mem_store *registry_find(const char *name)
{
    mem_store *s = mem_registry;
    name = normalize_name(name);
    while (s != NULL && strcmp(s->name, name) != 0) {
        s = s->next;
    }
    return s;
}

/* The store's clock is the core's (reign_backend_now_ns): one clock for
 * every deadline, the "server's" expiries included. */
static int64_t now_ns(void)
{
    return reign_backend_now_ns();
}

/* now + ms, saturating instead of overflowing for absurd TTLs/timeouts. */
static int64_t add_ms(int64_t base_ns, int64_t ms)
{
    if (ms <= 0) {
        return base_ns;
    }
    if (ms > (INT64_MAX - base_ns) / NS_PER_MS) {
        return INT64_MAX;
    }
    return base_ns + ms * NS_PER_MS;
}

/* ---- 2. The lease table -------------------------------------------------- */

static void lease_end(mem_lease *l)
{
    l->held = false;
    free(l->holder);
    free(l->metadata);
    l->holder = NULL;
    l->metadata = NULL;
    l->expires_ns = 0;
}

static void lease_free(mem_lease *l)
{
    free(l->resource);
    free(l->holder);
    free(l->metadata);
    free(l);
}

static mem_lease *table_find(const mem_store *s, const char *res, size_t len, uint64_t h)
{
    mem_lease *l = s->buckets[h & (s->n_buckets - 1)];
    while (l != NULL) {
        if (l->hash == h && l->resource_len == len && memcmp(l->resource, res, len) == 0) {
            return l;
        }
        l = l->next;
    }
    return NULL;
}

/* Double the buckets. On allocation failure the table just stays denser. */
static void table_grow(mem_store *s)
{
    size_t n = s->n_buckets * 2;
    mem_lease **b = calloc(n, sizeof(*b));
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n_buckets; i++) {
        mem_lease *l = s->buckets[i];
        while (l != NULL) {
            mem_lease *next = l->next;
            l->next = b[l->hash & (n - 1)];
            b[l->hash & (n - 1)] = l;
            l = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->n_buckets = n;
}

/* The resource's record, created (never held, term 0) if absent; NULL only
 * when out of memory. */
static mem_lease *table_get_or_add(mem_store *s, const char *res, size_t len)
{
    uint64_t h = reign_hash(res, len);
    mem_lease *l = table_find(s, res, len, h);
    if (l != NULL) {
        return l;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    l->resource = malloc(len + 1);
    if (l->resource == NULL) {
        free(l);
        return NULL;
    }
    memcpy(l->resource, res, len);
    l->resource[len] = '\0';
    l->resource_len = len;
    l->hash = h;
    if (s->n_leases >= s->n_buckets) {
        table_grow(s);
    }
    l->next = s->buckets[h & (s->n_buckets - 1)];
    s->buckets[h & (s->n_buckets - 1)] = l;
    s->n_leases++;
    return l;
}

static void table_free(mem_store *s)
{
    for (size_t i = 0; i < s->n_buckets; i++) {
        mem_lease *l = s->buckets[i];
        while (l != NULL) {
            mem_lease *next = l->next;
            lease_free(l);
            l = next;
        }
    }
    free(s->buckets);
    s->buckets = NULL;
}

/* ---- 3. Notifying the other clients (store lock held) -------------------- */

/* Beyond this many unreported resources a client is just told "any". */
#define MEM_PENDING_MAX 4096

static void pending_clear(mem_client *c)
{
    for (size_t i = 0; i < c->n_pending; i++) {
        free(c->pending[i].resource);
    }
    free(c->pending);
    c->pending = NULL;
    c->n_pending = 0;
    c->cap_pending = 0;
}

static bool pending_push(mem_client *c, const mem_lease *l)
{
    if (c->n_pending == MEM_PENDING_MAX) {
        return false;
    }
    if (c->n_pending == c->cap_pending) {
        size_t cap = c->cap_pending == 0 ? 8 : c->cap_pending * 2;
        mem_pending *p = realloc(c->pending, cap * sizeof(*p));
        if (p == NULL) {
            return false;
        }
        c->pending = p;
        c->cap_pending = cap;
    }
    char *res = malloc(l->resource_len + 1);
    if (res == NULL) {
        return false;
    }
    memcpy(res, l->resource, l->resource_len + 1);
    c->pending[c->n_pending].resource = res;
    c->pending[c->n_pending].resource_len = l->resource_len;
    c->n_pending++;
    return true;
}

/* Tell every client but `except` (NULL: all) that `l` may have been freed
 * (NULL: any resource). Their fds are written once, by kick_clients. */
static void notify_client(mem_client *c, const mem_lease *l)
{
    c->kick = true;
    if (c->pending_all) {
        return;
    }
    if (l == NULL || !pending_push(c, l)) {
        /* Losing the names is fine: "any" makes the core retry all. */
        pending_clear(c);
        c->pending_all = true;
    }
}

static void notify_others(mem_store *s, const mem_client *except, const mem_lease *l)
{
    for (mem_client *c = s->clients; c != NULL; c = c->next) {
        if (c != except) {
            notify_client(c, l);
        }
    }
}

/* Tell every observing client, this one included, that `l` changed hands
 * or metadata (backend.h, observe). */
static void notify_observers(mem_store *s, const mem_lease *l)
{
    for (mem_client *c = s->clients; c != NULL; c = c->next) {
        if (c->observing) {
            notify_client(c, l);
        }
    }
}

static void wake_fd(int fd)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN means the counter is already huge: the fd is readable anyway,
     * which is all a waiter needs. Nothing else can fail on an eventfd. */
}

/* Write the fds of the clients notified. Done under the store lock on
 * purpose: a client unlinks itself under that lock before closing its fd, so
 * no fd here can have been closed and reused for something else. An eventfd
 * write never blocks. */
static void kick_clients(mem_store *s)
{
    for (mem_client *c = s->clients; c != NULL; c = c->next) {
        if (c->kick) {
            wake_fd(c->event_fd);
            c->kick = false;
        }
    }
}

/* End the lease if its TTL ran out by the store's clock. Returns true when
 * this is the moment the store notices it, so the caller can tell others. */
static bool lease_settle(mem_lease *l, int64_t now)
{
    if (l != NULL && l->held && now >= l->expires_ns) {
        lease_end(l);
        return true;
    }
    return false;
}

static bool lease_is_ours(const mem_lease *l, const mem_client *c, uint64_t term)
{
    return l != NULL && l->held && l->last_term == term && strcmp(l->holder, c->instance_id) == 0;
}

static char *dup_or_null(const char *s, bool *failed)
{
    char *d = NULL;
    if (s != NULL) {
        d = strdup(s);
        if (d == NULL) {
            *failed = true;
        }
    }
    return d;
}

/* HELD or READ OK: tell who holds the lease and for how much longer. */
static void report_holder(reign_op *op, const mem_store *s, const mem_lease *l, int64_t now,
                          reign_op_result result)
{
    bool failed = false;
    char *holder = dup_or_null(l->holder, &failed);
    char *metadata = dup_or_null(l->metadata, &failed);
    if (failed) {
        free(holder);
        free(metadata);
        reign_op_fail(op, REIGN_ENOMEM, "store %s: out of memory", s->name);
        return;
    }
    op->out_holder = holder;
    op->out_metadata = metadata;
    op->out_term = l->last_term;
    /* Round up: a live lease never reports 0 ms left. */
    op->out_remaining_ms = (l->expires_ns - now + NS_PER_MS - 1) / NS_PER_MS;
    op->result = result;
}

static void do_acquire(mem_store *s, const mem_client *c, reign_op *op, int64_t now)
{
    mem_lease *l = table_get_or_add(s, op->resource, op->resource_len);
    if (l == NULL) {
        reign_op_fail(op, REIGN_ENOMEM, "store %s: out of memory", s->name);
        return;
    }
    bool expired = lease_settle(l, now);
    if (l->held) {
        report_holder(op, s, l, now, REIGN_RES_HELD);
        return;
    }
    if (l->last_term == UINT64_MAX) {
        reign_op_fail(op, REIGN_EBACKEND, "store %s: term space exhausted", s->name);
        if (expired) {
            notify_others(s, c, l);
        }
        return;
    }
    bool failed = false;
    char *holder = dup_or_null(c->instance_id, &failed);
    char *metadata = dup_or_null(c->metadata, &failed);
    if (failed) {
        free(holder);
        free(metadata);
        reign_op_fail(op, REIGN_ENOMEM, "store %s: out of memory", s->name);
        /* It stays free: others may want to know it expired. */
        if (expired) {
            notify_others(s, c, l);
        }
        return;
    }
    l->held = true;
    l->holder = holder;
    l->metadata = metadata;
    l->last_term++;
    l->expires_ns = add_ms(now, c->ttl_ms);
    op->out_term = l->last_term;
    op->result = REIGN_RES_OK;
    notify_observers(s, l);
}

static mem_lease *lookup(mem_store *s, const reign_op *op)
{
    return table_find(s, op->resource, op->resource_len,
                      reign_hash(op->resource, op->resource_len));
}

static void do_renew(mem_store *s, const mem_client *c, reign_op *op, int64_t now)
{
    mem_lease *l = lookup(s, op);
    if (lease_settle(l, now)) {
        notify_others(s, c, l);
    }
    if (!lease_is_ours(l, c, op->term)) {
        op->result = REIGN_RES_LOST;
        return;
    }
    l->expires_ns = add_ms(now, c->ttl_ms);
    op->result = REIGN_RES_OK;
}

static void do_release(mem_store *s, const mem_client *c, reign_op *op, int64_t now)
{
    mem_lease *l = lookup(s, op);
    if (lease_settle(l, now)) {
        notify_others(s, c, l);
    }
    if (!lease_is_ours(l, c, op->term)) {
        op->result = REIGN_RES_LOST;
        return;
    }
    lease_end(l); /* last_term stays: the next holder gets a higher one */
    notify_others(s, c, l);
    op->result = REIGN_RES_OK;
}

static void do_read(mem_store *s, const mem_client *c, reign_op *op, int64_t now)
{
    mem_lease *l = lookup(s, op);
    if (lease_settle(l, now)) {
        notify_others(s, c, l);
    }
    if (l == NULL || !l->held) {
        op->out_remaining_ms = -1;
        op->result = REIGN_RES_NONE;
        return;
    }
    report_holder(op, s, l, now, REIGN_RES_OK);
}

static void run_op(mem_store *s, const mem_client *c, reign_op *op, int64_t now)
{
    switch (op->kind) {
    case REIGN_OP_ACQUIRE: do_acquire(s, c, op, now); return;
    case REIGN_OP_RENEW: do_renew(s, c, op, now); return;
    case REIGN_OP_RELEASE: do_release(s, c, op, now); return;
    case REIGN_OP_READ: do_read(s, c, op, now); return;
    }
    reign_op_fail(op, REIGN_EBUG, "store %s: unknown op kind %d", s->name, (int)op->kind);
}

/* ---- 5. Executing a batch and draining notifications --------------------- */

/* The CLOCK_MONOTONIC time (fault_changed waits on it) of a deadline on
 * the store's clock. */
static struct timespec wait_timespec(int64_t deadline)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec + (deadline - now_ns());
    ts.tv_sec = (time_t)(ns / INT64_C(1000000000));
    ts.tv_nsec = (long)(ns % INT64_C(1000000000));
    return ts;
}

/* Apply the injected fault, store lock held: wait out a STALL until it is
 * cleared or the deadline passes. REIGN_OK to go on, REIGN_EBACKEND for
 * FAIL, REIGN_ETIMEDOUT when the stall outlasted the deadline. */
static int await_service(mem_store *s, int64_t deadline)
{
    while (s->fault == REIGN_MEM_FAULT_STALL) {
        if (now_ns() >= deadline) {
            return REIGN_ETIMEDOUT;
        }
        struct timespec ts = wait_timespec(deadline);
        /* Returns 0 on a signal of fault_changed, ETIMEDOUT at the deadline
         * (rechecked above by our own clock) or, rarely, spuriously. */
        (void)pthread_cond_timedwait(&s->fault_changed, &s->lock, &ts);
    }
    return s->fault == REIGN_MEM_FAULT_FAIL ? REIGN_EBACKEND : REIGN_OK;
}

int reign_mem_store_execute(mem_client *client, reign_op *ops, size_t n_ops, int64_t deadline_ns)
{
    mem_store *s = client->store;

    pthread_mutex_lock(&s->lock);
    s->executes++;
    int rc = await_service(s, deadline_ns);
    if (rc == REIGN_OK) {
        /* One instant for the whole batch, as a server applies it. */
        int64_t now = now_ns();
        for (size_t i = 0; i < n_ops; i++) {
            run_op(s, client, &ops[i], now);
        }
        kick_clients(s);
    }
    pthread_mutex_unlock(&s->lock);

    /* Messages are formatted outside the lock; the name is immutable and
     * the store lives while this client is attached. */
    for (size_t i = 0; rc != REIGN_OK && i < n_ops; i++) {
        if (rc == REIGN_EBACKEND) {
            reign_op_fail(&ops[i], rc, "store %s: injected failure", s->name);
        } else {
            reign_op_fail(&ops[i], rc, "store %s: stalled (injected), no answer by the deadline",
                          s->name);
        }
    }
    return rc;
}

void reign_mem_store_observe(mem_client *client, bool on)
{
    mem_store *s = client->store;
    pthread_mutex_lock(&s->lock);
    client->observing = on;
    pthread_mutex_unlock(&s->lock);
}

int reign_mem_store_set_metadata(mem_client *client, const char *resource, size_t len,
                                 uint64_t term, const char *metadata, int64_t deadline_ns)
{
    mem_store *s = client->store;
    int rc;
    char *copy = strdup(metadata != NULL ? metadata : "");
    if (copy == NULL) {
        reign_backend_error("mem: store %s: set_metadata: out of memory", s->name);
        return REIGN_ENOMEM;
    }
    pthread_mutex_lock(&s->lock);
    s->executes++;
    rc = await_service(s, deadline_ns);
    if (rc == REIGN_OK) {
        mem_lease *l = table_find(s, resource, len, reign_hash(resource, len));
        int64_t now = now_ns();
        if (lease_settle(l, now)) {
            notify_others(s, client, l);
        }
        if (!lease_is_ours(l, client, term)) {
            rc = REIGN_ENOTMASTER;
        } else {
            free(l->metadata);
            l->metadata = copy;
            copy = NULL;
            notify_observers(s, l);
        }
        kick_clients(s);
    }
    pthread_mutex_unlock(&s->lock);
    free(copy);
    if (rc == REIGN_ENOTMASTER) {
        reign_backend_error("mem: store %s: set_metadata %s: no live lease of ours with term %llu",
                            s->name, resource, (unsigned long long)term);
    } else if (rc != REIGN_OK) {
        reign_backend_error("mem: store %s: set_metadata %s: injected failure", s->name, resource);
    }
    return rc;
}

void reign_mem_store_drain(mem_client *client, reign_released_fn released, void *ctx)
{
    mem_store *s = client->store;
    uint64_t count;
    ssize_t n;

    pthread_mutex_lock(&s->lock);
    /* Reset the fd and take the list in one step, so nothing notified in
     * between is lost or leaves the fd readable with nothing to report. */
    do {
        n = read(client->event_fd, &count, sizeof(count));
    } while (n < 0 && errno == EINTR);
    mem_pending *pending = client->pending;
    size_t n_pending = client->n_pending;
    bool all = client->pending_all;
    client->pending = NULL;
    client->n_pending = 0;
    client->cap_pending = 0;
    client->pending_all = false;
    pthread_mutex_unlock(&s->lock);

    if (released != NULL && all) {
        released(ctx, NULL, 0);
    }
    for (size_t i = 0; i < n_pending; i++) {
        if (released != NULL && !all) {
            released(ctx, pending[i].resource, pending[i].resource_len);
        }
        free(pending[i].resource);
    }
    free(pending);
}

/* ---- 6. Attach / detach -------------------------------------------------- */

static void store_free(mem_store *s)
{
    if (s == NULL) {
        return;
    }
    table_free(s);
    pthread_cond_destroy(&s->fault_changed);
    pthread_mutex_destroy(&s->lock);
    free(s->name);
    free(s);
}

/* A new empty store, or NULL with a message set. */
static mem_store *store_new(const char *name)
{
    mem_store *s = NULL;
    pthread_condattr_t attr;
    bool attr_ok = false, lock_ok = false, cond_ok = false;
    int err;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        reign_backend_error("mem: store %s: out of memory", name);
        goto fail;
    }
    s->name = strdup(name);
    s->n_buckets = MEM_INITIAL_BUCKETS;
    s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
    if (s->name == NULL || s->buckets == NULL) {
        reign_backend_error("mem: store %s: out of memory", name);
        goto fail;
    }
    err = pthread_mutex_init(&s->lock, NULL);
    lock_ok = err == 0;
    if (err == 0) {
        err = pthread_condattr_init(&attr);
        attr_ok = err == 0;
    }
    /* Stall deadlines are monotonic; a wall-clock step must not move them. */
    if (err == 0) {
        err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    }
    if (err == 0) {
        err = pthread_cond_init(&s->fault_changed, &attr);
        cond_ok = err == 0;
    }
    if (attr_ok) {
        pthread_condattr_destroy(&attr);
    }
    if (err != 0) {
        reign_backend_error("mem: store %s: cannot create its lock: %s", name, strerror(err));
        goto fail;
    }
    return s;

fail:
    if (s != NULL) {
        if (cond_ok) {
            pthread_cond_destroy(&s->fault_changed);
        }
        if (lock_ok) {
            pthread_mutex_destroy(&s->lock);
        }
        free(s->buckets);
        free(s->name);
        free(s);
    }
    return NULL;
}

int reign_mem_store_attach(mem_client *client, const char *name)
{
    int rc = REIGN_OK;
    name = normalize_name(name);

    pthread_mutex_lock(&mem_registry_lock);
    mem_store *s = registry_find(name);
    if (s == NULL) {
        s = store_new(name);
        if (s == NULL) {
            rc = REIGN_ENOMEM;
            goto out;
        }
        s->next = mem_registry;
        mem_registry = s;
    }
    s->refs++;
    client->store = s;
    pthread_mutex_lock(&s->lock);
    client->next = s->clients;
    s->clients = client;
    pthread_mutex_unlock(&s->lock);
out:
    pthread_mutex_unlock(&mem_registry_lock);
    return rc;
}

void reign_mem_store_detach(mem_client *client)
{
    mem_store *s = client->store;
    mem_store *dead = NULL;
    if (s == NULL) {
        return;
    }

    pthread_mutex_lock(&mem_registry_lock);
    pthread_mutex_lock(&s->lock);
    for (mem_client **p = &s->clients; *p != NULL; p = &(*p)->next) {
        if (*p == client) {
            *p = client->next;
            break;
        }
    }
    pending_clear(client);
    client->pending_all = false;
    pthread_mutex_unlock(&s->lock);
    if (--s->refs == 0) {
        /* Last one out: nobody can find the store any more, free it after
         * letting go of the registry. */
        for (mem_store **p = &mem_registry; *p != NULL; p = &(*p)->next) {
            if (*p == s) {
                *p = s->next;
                break;
            }
        }
        dead = s;
    }
    pthread_mutex_unlock(&mem_registry_lock);

    client->store = NULL;
    client->next = NULL;
    store_free(dead);
}

/* ---- 7. Test hooks ------------------------------------------------------- */

REIGN_EXTERN int reign_mem_set_fault(const char *store_name, reign_mem_fault fault)
{
    int rc = REIGN_OK;
    if (fault != REIGN_MEM_FAULT_NONE && fault != REIGN_MEM_FAULT_STALL &&
        fault != REIGN_MEM_FAULT_FAIL) {
        reign_backend_error("reign_mem_set_fault: unknown fault %d", (int)fault);
        return REIGN_EINVAL;
    }
    pthread_mutex_lock(&mem_registry_lock);
    mem_store *s = registry_find(store_name);
    if (s == NULL) {
        reign_backend_error("reign_mem_set_fault: no open mem store named \"%s\"",
                            normalize_name(store_name));
        rc = REIGN_EINVAL;
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    s->fault = fault;
    /* Stalled batches re-check the fault and carry on under the new one. */
    pthread_cond_broadcast(&s->fault_changed);
    pthread_mutex_unlock(&s->lock);
out:
    pthread_mutex_unlock(&mem_registry_lock);
    return rc;
}

REIGN_EXTERN int reign_mem_expire_all(const char *store_name)
{
    int rc = REIGN_OK;
    pthread_mutex_lock(&mem_registry_lock);
    mem_store *s = registry_find(store_name);
    if (s == NULL) {
        reign_backend_error("reign_mem_expire_all: no open mem store named \"%s\"",
                            normalize_name(store_name));
        rc = REIGN_EINVAL;
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_buckets; i++) {
        for (mem_lease *l = s->buckets[i]; l != NULL; l = l->next) {
            if (l->held) {
                lease_end(l); /* the term history stays */
            }
        }
    }
    notify_others(s, NULL, NULL);
    kick_clients(s);
    pthread_mutex_unlock(&s->lock);
out:
    pthread_mutex_unlock(&mem_registry_lock);
    return rc;
}

REIGN_EXTERN uint64_t reign_mem_executes(const char *store_name)
{
    uint64_t n = 0;
    pthread_mutex_lock(&mem_registry_lock);
    mem_store *s = registry_find(store_name);
    if (s != NULL) {
        pthread_mutex_lock(&s->lock);
        n = s->executes;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&mem_registry_lock);
    return n;
}
