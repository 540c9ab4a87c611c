/* `reign_bench fleet [N]`: a fleet bigger than the old 64 member slots. N
 * instances (default 65) start at once in one process, each a factory
 * with a balancing shard over the same R resources (--resources, default 1,000). Timed on
 * the monotonic clock from the start:
 *   members: every instance sees all N members;
 *   even:    every resource has one master and every instance holds its
 *            fair share, within one (⌈R/N⌉ or ⌊R/N⌋);
 * and counted: the moves until even (GAINED events beyond one a resource)
 * and the member-slot reads of one refresh. Repeated --reps times. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "reign/reign.h"

#define FLEET_DEFAULT 65
#define FLEET_MAX 256

typedef struct fleet_inst {
    reign_factory *f;
    reign_shard *s;
    char id[32];
} fleet_inst;

static pthread_mutex_t gained_mu = PTHREAD_MUTEX_INITIALIZER;
static long gained;

static int on_event(reign_shard *s, const reign_shard_event *ev, void *payload)
{
    (void)s;
    (void)payload;
    if (ev->kind == REIGN_SHARD_GAINED) {
        pthread_mutex_lock(&gained_mu);
        gained++;
        pthread_mutex_unlock(&gained_mu);
    }
    return 0;
}

static bool all_members(fleet_inst *in, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        reign_member *m = NULL;
        size_t seen = 0;
        if (reign_factory_members(in[k].f, &m, &seen) != REIGN_OK)
            bench_die("members: %s", reign_last_error());
        reign_members_free(m, seen);
        if (seen != n)
            return false;
    }
    return true;
}

static bool even(fleet_inst *in, size_t n, size_t r)
{
    size_t lo = r / n, hi = (r + n - 1) / n, total = 0;
    for (size_t k = 0; k < n; k++) {
        size_t held = reign_tracker_count(reign_shard_tracker(in[k].s));
        if (held < lo || held > hi)
            return false;
        total += held;
    }
    return total == r;
}

int bench_fleet(const bench_opts *o)
{
    size_t n = o->argc > 0 ? (size_t)atol(o->argv[0]) : FLEET_DEFAULT;
    if (n < 2 || n > FLEET_MAX)
        bench_die("fleet: the instance count (the argument) is 2..%d", FLEET_MAX);
    size_t r = o->resources > 0 ? (size_t)o->resources : 1000;
    long reps = o->reps > 0 ? o->reps : (o->quick ? 1 : 3);
    int64_t ttl = o->ttl_ms > 0 ? o->ttl_ms : 10000;
    char **ids = calloc(r, sizeof *ids);
    fleet_inst *in = calloc(n, sizeof *in);
    if (ids == NULL || in == NULL)
        bench_die("out of memory");
    for (size_t i = 0; i < r; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "fleet-%zu", i);
        if ((ids[i] = strdup(buf)) == NULL)
            bench_die("out of memory");
    }
    bench_samples members_s = {0}, even_s = {0}, moves = {0};
    for (long rep = 0; rep < reps; rep++) {
        gained = 0;
        int64_t t0 = bench_now_ns();
        for (size_t k = 0; k < n; k++) {
            snprintf(in[k].id, sizeof in[k].id, "fleet-%ld-%03zu", rep, k);
            reign_options opt = REIGN_OPTIONS_INIT;
            opt.instance_id = in[k].id;
            opt.ttl_ms = ttl;
            if (reign_factory_open(o->uri, &opt, &in[k].f) != REIGN_OK)
                bench_die("open %s: %s", o->uri, reign_last_error());
            reign_shard_config c = REIGN_SHARD_CONFIG_INIT;
            c.on_event = on_event;
            if (reign_shard_new(in[k].f, (const char *const *)ids, r, &c, &in[k].s) != REIGN_OK)
                bench_die("shard: %s", reign_last_error());
        }
        for (size_t k = 0; k < n; k++)
            if (reign_shard_start(in[k].s) != REIGN_OK)
                bench_die("start: %s", reign_last_error());
        double members_at = -1, even_at = -1;
        while (even_at < 0) {
            double s = (double)(bench_now_ns() - t0) / BENCH_NS_PER_S;
            if (members_at < 0 && all_members(in, n))
                members_at = s;
            if (members_at >= 0 && even(in, n, r))
                even_at = s;
            if (s > 300)
                bench_die("fleet: not even after 300 s");
            bench_sleep_ns(50 * BENCH_NS_PER_MS);
        }
        bench_samples_add(&members_s, members_at);
        bench_samples_add(&even_s, even_at);
        pthread_mutex_lock(&gained_mu);
        bench_samples_add(&moves, (double)(gained - (long)r));
        pthread_mutex_unlock(&gained_mu);
        for (size_t k = 0; k < n; k++)
            reign_shard_free(in[k].s);
        for (size_t k = 0; k < n; k++)
            if (reign_factory_close(in[k].f) != REIGN_OK)
                bench_warn("close: %s", reign_last_error());
    }
    char title[160];
    snprintf(title, sizeof title,
             "fleet, %s: %zu instances started at once, %zu resources, TTL %lld ms", o->backend,
             n, r, (long long)ttl);
    bench_table_header(title);
    bench_table_row("all see every member", &members_s, "s");
    bench_table_row("even (fair share within one)", &even_s, "s");
    bench_table_row("moves until even", &moves, "ops");
    bench_result(o->backend, "fleet_even_s", bench_pct(&even_s, 50), "s", even_s.n, "p50");
    bench_result(o->backend, "fleet_moves", bench_pct(&moves, 50), "ops", moves.n, "p50");
    for (size_t i = 0; i < r; i++)
        free(ids[i]);
    free(ids);
    free(in);
    bench_samples_free(&members_s);
    bench_samples_free(&even_s);
    bench_samples_free(&moves);
    return 0;
}
