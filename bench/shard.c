/* `reign_bench shard`: the shard manager's handover figures. Three
 * factories on one backend (three instances in one process, one clock)
 * share R resources (default 10,000) with balancing on; then
 *   1. add/remove: every instance adds 1,000 new IDs and removes 1,000 of
 *      the old ones, one instance after another: the time until every
 *      resource of the new set has exactly one master and no removed one
 *      has any, and the backend ops (ACQUIRE, RELEASE, READ; renewals go on
 *      regardless and are left out) and round trips the three used;
 *   2. drain: instance 0 drains (reign_shard_drain): the time until it
 *      holds nothing and every resource has one master again, moves per
 *      second, and per move the latency of a voluntary move — from the
 *      drained instance's REVOKED (acknowledged at once: the callback
 *      returns) to the new owner's GAINED — as p50 / p99.
 * Before that, single moves: two more instances without balancing (both
 * campaign for everything) pass one resource back and forth — the holder
 * removes it (REVOKED, acknowledged at once, release) and adds it back; the
 * time from the remove call to the other's GAINED, 50 times (--reps).
 * Masters are counted from the events (GAINED, REVOKED, LOST), so "exactly
 * one" is what the applications were told. */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "reign/reign.h"

#define INSTANCES 3
#define CHURN 1000
#define SETTLE_TIMEOUT_NS (300 * BENCH_NS_PER_S)

typedef struct res {
    int holders;         /* instances told GAINED and not yet REVOKED/LOST */
    bool revoked[INSTANCES];
    int64_t revoked_ns;  /* the last REVOKED */
    bool draining_move;  /* that REVOKED came from the drain */
} res;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static res *table;        /* index: the number in "s<N>" */
static size_t n_table;
static bench_samples move_ms;
static int doubles;       /* a GAINED while another held it: must stay 0 */
static int64_t first_drain_ns; /* the drain's first REVOKED */

/* Single moves: who was told GAINED last, and when. */
static pthread_cond_t single_cond = PTHREAD_COND_INITIALIZER;
static int single_owner = -1;
static int64_t single_gained_ns;

static int on_single(reign_shard *s, const reign_shard_event *ev, void *payload)
{
    (void)s;
    int k = *(int *)payload;
    if (ev->kind == REIGN_SHARD_GAINED) {
        pthread_mutex_lock(&mu);
        single_owner = k;
        single_gained_ns = bench_now_ns();
        pthread_cond_broadcast(&single_cond);
        pthread_mutex_unlock(&mu);
    }
    return REIGN_SHARD_DONE;
}

static void single_moves(const bench_opts *o, int64_t ttl, bench_samples *out)
{
    static int index[2] = {0, 1};
    reign_factory *f[2];
    reign_shard *s[2];
    const char *id = "move-1";
    for (int k = 0; k < 2; k++) {
        reign_options opt = REIGN_OPTIONS_INIT;
        char name[32];
        snprintf(name, sizeof name, "bench-move-%d", k);
        opt.instance_id = name;
        opt.ttl_ms = ttl;
        if (reign_factory_open(o->uri, &opt, &f[k]) != REIGN_OK)
            bench_die("open %s: %s", o->uri, reign_last_error());
        reign_shard_config c = REIGN_SHARD_CONFIG_INIT;
        c.balance = false;
        c.runner.pre_election_pause_ms = 10;
        c.runner.master_check_interval_ms = 100;
        c.on_event = on_single;
        c.payload = &index[k];
        if (reign_shard_new(f[k], &id, 1, &c, &s[k]) != REIGN_OK || reign_shard_start(s[k]) != REIGN_OK)
            bench_die("shard: %s", reign_last_error());
    }
    long reps = o->reps > 0 ? o->reps : (o->quick ? 10 : 50);
    for (long r = 0; r <= reps; r++) {
        /* Wait for a holder, and give the other time to be refused once. */
        pthread_mutex_lock(&mu);
        while (single_owner < 0)
            pthread_cond_wait(&single_cond, &mu);
        int holder = single_owner;
        single_owner = -1;
        pthread_mutex_unlock(&mu);
        bench_sleep_ns(50 * BENCH_NS_PER_MS);
        int64_t t0 = bench_now_ns();
        if (reign_shard_remove(s[holder], id) != REIGN_OK)
            bench_die("remove: %s", reign_last_error());
        int64_t until = t0 + 30 * BENCH_NS_PER_S;
        pthread_mutex_lock(&mu);
        while (single_owner != 1 - holder && bench_now_ns() < until) {
            pthread_mutex_unlock(&mu);
            bench_sleep_ns(BENCH_NS_PER_MS / 10);
            pthread_mutex_lock(&mu);
        }
        bool moved = single_owner == 1 - holder;
        int64_t t1 = single_gained_ns;
        pthread_mutex_unlock(&mu);
        if (!moved)
            bench_die("single move: the other instance never took %s", id);
        if (r > 0) /* the first one warms up connections */
            bench_samples_add(out, (double)(t1 - t0) / BENCH_NS_PER_MS);
        while (reign_shard_add(s[holder], id) == REIGN_EBUSY) /* the old election is closing */
            bench_sleep_ns(BENCH_NS_PER_MS);
    }
    for (int k = 0; k < 2; k++) {
        reign_shard_free(s[k]);
        if (reign_factory_close(f[k]) != REIGN_OK)
            bench_warn("close: %s", reign_last_error());
    }
}

typedef struct inst {
    int index;
    reign_factory *f;
    reign_shard *s;
} inst;

static int on_event(reign_shard *s, const reign_shard_event *ev, void *payload)
{
    (void)s;
    inst *in = payload;
    size_t i = strtoul(ev->resource_id + 1, NULL, 10);
    int64_t now = bench_now_ns();
    pthread_mutex_lock(&mu);
    res *r = i < n_table ? &table[i] : NULL;
    if (r == NULL) {
        pthread_mutex_unlock(&mu);
        return REIGN_SHARD_DONE;
    }
    if (ev->kind == REIGN_SHARD_GAINED) {
        if (r->holders > 0)
            doubles++;
        r->holders++;
        r->revoked[in->index] = false;
        if (r->draining_move) {
            bench_samples_add(&move_ms, (double)(now - r->revoked_ns) / BENCH_NS_PER_MS);
            r->draining_move = false;
        }
    } else if (ev->kind == REIGN_SHARD_REVOKED) {
        r->holders--;
        r->revoked[in->index] = true;
        r->revoked_ns = now;
        r->draining_move = ev->reason == REIGN_SHARD_REASON_DRAIN;
        if (r->draining_move && first_drain_ns == 0)
            first_drain_ns = now;
    } else if (!r->revoked[in->index]) {
        r->holders--; /* lost without warning */
    }
    pthread_mutex_unlock(&mu);
    return REIGN_SHARD_DONE;
}

static char *id_of(size_t i)
{
    char *id = NULL;
    if (asprintf(&id, "s%zu", i) < 0)
        bench_die("out of memory");
    return id;
}

/* Every resource in [lo, hi) has one master and every other none. */
static bool settled(size_t lo, size_t hi)
{
    bool ok = true;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_table && ok; i++)
        ok = table[i].holders == (i >= lo && i < hi ? 1 : 0);
    pthread_mutex_unlock(&mu);
    return ok;
}

static double wait_settled(size_t lo, size_t hi, int64_t t0, const char *what)
{
    while (!settled(lo, hi)) {
        if (bench_now_ns() - t0 > SETTLE_TIMEOUT_NS)
            bench_die("shard: %s did not settle in %lld s", what,
                      (long long)(SETTLE_TIMEOUT_NS / BENCH_NS_PER_S));
        bench_sleep_ns(5 * BENCH_NS_PER_MS);
    }
    return (double)(bench_now_ns() - t0) / BENCH_NS_PER_S;
}

typedef struct ops {
    uint64_t acquire, release, read, batches;
} ops;

static ops ops_now(inst *in)
{
    ops o = {0};
    for (int k = 0; k < INSTANCES; k++) {
        reign_stats st;
        if (reign_factory_stats(in[k].f, &st) != REIGN_OK)
            bench_die("stats: %s", reign_last_error());
        o.acquire += st.ops_acquire;
        o.release += st.ops_release;
        o.read += st.ops_read;
        o.batches += st.batches;
    }
    return o;
}

int bench_shard(const bench_opts *o)
{
    size_t R = o->resources > 0 ? (size_t)o->resources : (o->quick ? 1000 : 10000);
    size_t churn = R / 10 < CHURN ? R / 10 : CHURN;
    int64_t ttl = o->ttl_ms > 0 ? o->ttl_ms : 10000;
    n_table = R + churn;
    table = calloc(n_table, sizeof *table);
    char **ids = calloc(n_table, sizeof *ids);
    if (table == NULL || ids == NULL)
        bench_die("out of memory");
    for (size_t i = 0; i < n_table; i++)
        ids[i] = id_of(i);

    bench_samples single = {0};
    single_moves(o, ttl, &single);

    inst in[INSTANCES];
    int64_t t0 = bench_now_ns();
    for (int k = 0; k < INSTANCES; k++) {
        in[k].index = k;
        reign_options opt = REIGN_OPTIONS_INIT;
        char name[32];
        snprintf(name, sizeof name, "bench-shard-%d", k);
        opt.instance_id = name;
        opt.ttl_ms = ttl;
        if (reign_factory_open(o->uri, &opt, &in[k].f) != REIGN_OK)
            bench_die("open %s: %s", o->uri, reign_last_error());
        reign_shard_config c = REIGN_SHARD_CONFIG_INIT;
        c.runner.pre_election_pause_ms = 10;
        c.runner.master_check_interval_ms = 100;
        c.on_event = on_event;
        c.payload = &in[k];
        c.membership.stabilization_ms = 1000;
        if (reign_shard_new(in[k].f, (const char *const *)ids, R, &c, &in[k].s) != REIGN_OK)
            bench_die("shard: %s", reign_last_error());
    }
    for (int k = 0; k < INSTANCES; k++)
        if (reign_shard_start(in[k].s) != REIGN_OK)
            bench_die("start: %s", reign_last_error());
    double start_s = wait_settled(0, R, t0, "the start");

    /* 1. add `churn` new IDs, remove the first `churn`, instance by instance. */
    ops before = ops_now(in);
    int64_t t1 = bench_now_ns();
    for (int k = 0; k < INSTANCES; k++) {
        for (size_t i = 0; i < churn; i++) {
            if (reign_shard_add(in[k].s, ids[R + i]) != REIGN_OK ||
                reign_shard_remove(in[k].s, ids[i]) != REIGN_OK)
                bench_die("add/remove: %s", reign_last_error());
        }
    }
    double churn_s = wait_settled(churn, R + churn, t1, "add/remove");
    ops after = ops_now(in);

    /* 2. drain instance 0. */
    size_t moving = reign_tracker_count(reign_shard_tracker(in[0].s));
    int64_t t2 = bench_now_ns();
    if (reign_shard_drain(in[0].s, 300000) != REIGN_OK)
        bench_die("drain: %s", reign_last_error());
    double drain_call_s = (double)(bench_now_ns() - t2) / BENCH_NS_PER_S;
    double drain_s = wait_settled(churn, R + churn, t2, "the drain");

    char title[160];
    snprintf(title, sizeof title, "shard, %s: %zu resources, 3 instances, TTL %lld ms", o->backend,
             R, (long long)ttl);
    bench_table_header(title);
    bench_table_row("single move: remove -> other instance GAINED", &single, "ms");
    bench_table_row("move during the drain: REVOKED -> GAINED", &move_ms, "ms");
    printf("start: every resource one master after %.2f s\n", start_s);
    printf("add %zu + remove %zu on each instance: settled after %.2f s; ops %" PRIu64
           " acquire, %" PRIu64 " release, %" PRIu64 " read in %" PRIu64 " round trips\n",
           churn, churn, churn_s, after.acquire - before.acquire, after.release - before.release,
           after.read - before.read, after.batches - before.batches);
    /* The drain first waits two membership refreshes for the others to
     * see it leave; the moves themselves start after that. */
    double wait_s = first_drain_ns > 0 ? (double)(first_drain_ns - t2) / BENCH_NS_PER_S : 0;
    double moves_s = drain_s - wait_s;
    printf("drain of %zu resources: returned after %.2f s, all moved after %.2f s (the first "
           "move at %.2f s, once the others saw the leave): %.0f moves/s after it\n",
           moving, drain_call_s, drain_s, wait_s, moves_s > 0 ? (double)moving / moves_s : 0.0);
    printf("two masters told at once: %d\n", doubles);
    bench_result(o->backend, "shard_move_p50", bench_pct(&single, 50), "ms", single.n, "");
    bench_result(o->backend, "shard_move_p99", bench_pct(&single, 99), "ms", single.n, "");
    bench_result(o->backend, "shard_drain_move_p50", bench_pct(&move_ms, 50), "ms", move_ms.n, "");
    bench_result(o->backend, "shard_drain_move_p99", bench_pct(&move_ms, 99), "ms", move_ms.n, "");
    bench_result(o->backend, "shard_churn_settle_s", churn_s, "s", 1, "");
    bench_result(o->backend, "shard_churn_ops",
                 (double)(after.acquire - before.acquire + after.release - before.release +
                          after.read - before.read),
                 "ops", 1, "");
    bench_result(o->backend, "shard_drain_s", drain_s, "s", moving, "");
    bench_result(o->backend, "shard_drain_moves_per_s", moves_s > 0 ? moving / moves_s : 0,
                 "moves/s", moving, "");

    for (int k = 0; k < INSTANCES; k++) {
        reign_shard_free(in[k].s);
        if (reign_factory_close(in[k].f) != REIGN_OK)
            bench_warn("close: %s", reign_last_error());
    }
    for (size_t i = 0; i < n_table; i++)
        free(ids[i]);
    free(ids);
    free(table);
    bench_samples_free(&move_ms);
    bench_samples_free(&single);
    return doubles == 0 ? 0 : 1;
}
