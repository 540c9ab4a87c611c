/* `reign_bench handoff`: graceful handoff. Two factories on one backend
 * (two instances in one process), one resource: A is master, B campaigns;
 * A resigns; the time from the resign call until B's is_master turns true.
 * Then the roles swap, so every repetition is a handoff.
 *
 * How B notices, --method:
 *   wait (default)  a watcher thread blocks in reign_election_wait: the
 *                   time includes one thread wake-up, and the watcher costs
 *                   the machine nothing while it waits;
 *   poll            the watcher calls reign_election_is_master every ~20 µs
 *                   (nanosleep, timer slack lowered to 1 µs) from before the
 *                   resign: 20-60 µs resolution, but 50,000 wake-ups a
 *                   second, which on a 2-core machine preempt the very
 *                   threads being timed;
 *   spin            a tight loop (sched_yield between calls): the finest
 *                   resolution, for machines with cores to spare.
 * Before each
 * resignation the candidate has sent its ACQUIRE and had it refused (its
 * ops_acquire count moved, then a settle pause), so it is in the state a
 * real standby is in: waiting for a notification or its retry. */
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "reign/reign.h"

#define HANDOFF_TIMEOUT_NS (10 * BENCH_NS_PER_S)
#define SETTLE_NS (20 * BENCH_NS_PER_MS)

enum { METHOD_POLL, METHOD_SPIN, METHOD_WAIT };
static const char *const method_name[] = {"polls is_master every ~20 us",
                                          "spins on is_master", "waits in reign_election_wait"};

typedef struct watcher {
    pthread_t thread;
    int method;
    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cond;
    reign_election *target; /* armed when non-NULL */
    bool spinning;          /* the watcher is looking at target */
    bool done;
    bool quit;
    int64_t t_master; /* when target was first seen master; 0 = timed out */
} watcher;

static void *watcher_main(void *arg)
{
    watcher *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->quit && w->target == NULL)
            pthread_cond_wait(&w->cond, &w->mu);
        if (w->quit)
            break;
        reign_election *e = w->target;
        w->spinning = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->mu);

        int64_t seen = 0;
        int64_t give_up = bench_now_ns() + HANDOFF_TIMEOUT_NS;
        if (w->method == METHOD_WAIT) {
            if (reign_election_wait(e, HANDOFF_TIMEOUT_NS / BENCH_NS_PER_MS) == REIGN_OK)
                seen = bench_now_ns();
        } else {
            for (unsigned k = 0;; k++) {
                if (reign_election_is_master(e)) {
                    seen = bench_now_ns();
                    break;
                }
                if ((k & 1023) == 0 && bench_now_ns() > give_up)
                    break;
                if (w->method == METHOD_SPIN)
                    sched_yield(); /* let the engine threads (and the server) run */
                else
                    bench_sleep_ns(20 * 1000);
            }
        }

        pthread_mutex_lock(&w->mu);
        w->t_master = seen;
        w->target = NULL;
        w->spinning = false;
        w->done = true;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void watcher_arm(watcher *w, reign_election *e)
{
    pthread_mutex_lock(&w->mu);
    w->target = e;
    w->done = false;
    pthread_cond_broadcast(&w->cond);
    while (!w->spinning && !w->done)
        pthread_cond_wait(&w->cond, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static int64_t watcher_result(watcher *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cond, &w->mu);
    int64_t t = w->t_master;
    pthread_mutex_unlock(&w->mu);
    return t;
}

static uint64_t acquires(reign_factory *f)
{
    reign_stats st;
    if (reign_factory_stats(f, &st) != REIGN_OK)
        bench_die("stats: %s", reign_last_error());
    return st.ops_acquire;
}

/* Make e campaign and wait until its ACQUIRE went out, then let the answer
 * (HELD) arrive. */
static void campaign_and_settle(reign_factory *f, reign_election *e)
{
    uint64_t before = acquires(f);
    if (reign_election_start(e) != REIGN_OK)
        bench_die("start: %s", reign_last_error());
    int64_t give_up = bench_now_ns() + 5 * BENCH_NS_PER_S;
    while (acquires(f) == before) {
        if (bench_now_ns() > give_up)
            bench_die("handoff: the candidate sent no ACQUIRE within 5 s");
        bench_sleep_ns(100 * 1000);
    }
    bench_sleep_ns(SETTLE_NS);
}

int bench_handoff(const bench_opts *o)
{
    long reps = o->reps > 0 ? o->reps : (o->quick ? 30 : 200);
    double budget_s = o->budget_s > 0 ? o->budget_s : (o->quick ? 5 : 40);
    int method = METHOD_WAIT;
    if (o->method != NULL && strcmp(o->method, "poll") == 0)
        method = METHOD_POLL;
    else if (o->method != NULL && strcmp(o->method, "spin") == 0)
        method = METHOD_SPIN;
    /* nanosleep(20 µs) would otherwise sleep up to the default 50 µs slack */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    const long warmup = 5;

    char id_a[64], id_b[64], res[128];
    snprintf(id_a, sizeof id_a, "bench-handoff-A-%ld", (long)getpid());
    snprintf(id_b, sizeof id_b, "bench-handoff-B-%ld", (long)getpid());
    snprintf(res, sizeof res, "%s/handoff", bench_run_prefix());

    reign_options opt = REIGN_OPTIONS_INIT;
    opt.ttl_ms = o->ttl_ms;
    opt.logger = bench_logger;
    reign_factory *f[2] = {NULL, NULL};
    reign_election *e[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        opt.instance_id = i == 0 ? id_a : id_b;
        if (reign_factory_open(o->uri, &opt, &f[i]) != REIGN_OK)
            bench_die("factory_open %s: %s", o->uri, reign_last_error());
        if (reign_election_new(f[i], res, &e[i]) != REIGN_OK)
            bench_die("election_new: %s", reign_last_error());
    }
    if (reign_election_wait(e[0], 30000) != REIGN_OK)
        bench_die("A did not become master: %s", reign_last_error());

    watcher w = {.method = method};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, NULL);
    if (pthread_create(&w.thread, NULL, watcher_main, &w) != 0)
        bench_die("cannot start the watcher thread");

    bench_samples handoff = {0}, resign = {0};
    int cur = 0;
    int64_t start = bench_now_ns();
    for (long i = 0; i < warmup + reps; i++) {
        if (i >= warmup + 5 && (double)(bench_now_ns() - start) / 1e9 > budget_s)
            break;
        int other = 1 - cur;
        campaign_and_settle(f[other], e[other]);
        watcher_arm(&w, e[other]);
        int64_t t0 = bench_now_ns();
        if (reign_election_resign(e[cur]) != REIGN_OK)
            bench_die("resign: %s", reign_last_error());
        int64_t t_resigned = bench_now_ns();
        int64_t t1 = watcher_result(&w);
        if (t1 == 0)
            bench_die("handoff %ld: the candidate was not master 10 s after the resign", i);
        if (i >= warmup) {
            bench_samples_add(&handoff, (double)(t1 - t0) / 1e6);
            bench_samples_add(&resign, (double)(t_resigned - t0) / 1e6);
        }
        cur = other;
    }

    pthread_mutex_lock(&w.mu);
    w.quit = true;
    pthread_cond_broadcast(&w.cond);
    pthread_mutex_unlock(&w.mu);
    pthread_join(w.thread, NULL);

    char title[512];
    snprintf(title, sizeof title,
             "graceful handoff, %s (%s): resign on A -> B master, B %s, %zu reps",
             o->backend, reign_factory_uri(f[0]), method_name[method], handoff.n);
    bench_table_header(title);
    bench_table_row("handoff (resign -> other master)", &handoff, "ms");
    bench_table_row("resign call returns", &resign, "ms");
    const char *note = method_name[method];
    static const char *const key[] = {"poll", "spin", "wait"};
    char k[64];
    snprintf(k, sizeof k, "handoff_%s_p50", key[method]);
    bench_result(o->backend, k, bench_pct(&handoff, 50), "ms", handoff.n, note);
    snprintf(k, sizeof k, "handoff_%s_p99", key[method]);
    bench_result(o->backend, k, bench_pct(&handoff, 99), "ms", handoff.n, note);
    snprintf(k, sizeof k, "handoff_%s_max", key[method]);
    bench_result(o->backend, k, bench_pct(&handoff, 100), "ms", handoff.n, note);
    bench_samples_free(&handoff);
    bench_samples_free(&resign);

    for (int i = 0; i < 2; i++) {
        if (reign_election_close(e[i]) != REIGN_OK)
            bench_warn("election_close: %s", reign_last_error());
        if (reign_factory_close(f[i]) != REIGN_OK)
            bench_warn("factory_close: %s", reign_last_error());
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cond);
    return 0;
}
