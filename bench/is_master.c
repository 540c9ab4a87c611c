/* `reign_bench is-master`: the cost of reign_election_is_master while this
 * instance is master, called from 4 threads at once on one election (the
 * common case: workers checking before each unit of master-only work).
 * Each thread times a run of calls with its own CPU clock
 * (CLOCK_THREAD_CPUTIME_ID), so the figure is the cost of a call even when
 * the machine has fewer cores than threads; wall-clock time is shown too. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "reign/reign.h"

#define THREADS 4

typedef struct worker {
    pthread_t thread;
    reign_election *e;
    long calls;
    pthread_barrier_t *barrier;
    double cpu_ns_per_call;
    double wall_ns_per_call;
    long trues;
} worker;

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * BENCH_NS_PER_S + ts.tv_nsec;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->barrier);
    int64_t c0 = thread_cpu_ns(), t0 = bench_now_ns();
    long trues = 0;
    for (long i = 0; i < w->calls; i++)
        trues += reign_election_is_master(w->e);
    int64_t c1 = thread_cpu_ns(), t1 = bench_now_ns();
    w->trues = trues;
    w->cpu_ns_per_call = (double)(c1 - c0) / (double)w->calls;
    w->wall_ns_per_call = (double)(t1 - t0) / (double)w->calls;
    return NULL;
}

int bench_is_master(const bench_opts *o)
{
    long rounds = o->reps > 0 ? o->reps : (o->quick ? 2 : 10);
    long calls = o->quick ? 1000000 : 10000000;
    char res[128];
    snprintf(res, sizeof res, "%s/is-master", bench_run_prefix());

    reign_options opt = REIGN_OPTIONS_INIT;
    opt.logger = bench_logger;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    if (reign_factory_open(o->uri, &opt, &f) != REIGN_OK)
        bench_die("factory_open %s: %s", o->uri, reign_last_error());
    if (reign_election_new(f, res, &e) != REIGN_OK)
        bench_die("election_new: %s", reign_last_error());
    if (reign_election_wait(e, 30000) != REIGN_OK)
        bench_die("not master: %s", reign_last_error());

    bench_samples cpu = {0}, wall = {0};
    long not_master = 0;
    for (long r = 0; r < rounds; r++) {
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, THREADS);
        worker w[THREADS];
        for (int i = 0; i < THREADS; i++) {
            w[i] = (worker){.e = e, .calls = calls, .barrier = &barrier};
            if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
                bench_die("cannot start a thread");
        }
        for (int i = 0; i < THREADS; i++) {
            pthread_join(w[i].thread, NULL);
            bench_samples_add(&cpu, w[i].cpu_ns_per_call);
            bench_samples_add(&wall, w[i].wall_ns_per_call);
            not_master += calls - w[i].trues;
        }
        pthread_barrier_destroy(&barrier);
    }
    if (not_master != 0)
        bench_warn("is-master: %ld calls saw false (mastership lapsed during the run)", not_master);

    char title[1024];
    snprintf(title, sizeof title,
             "is_master, %s: %d threads x %ld calls, %ld rounds (one sample per thread and round), %ld cores",
             o->backend, THREADS, calls, rounds, sysconf(_SC_NPROCESSORS_ONLN));
    bench_table_header(title);
    bench_table_row("CPU time per call", &cpu, "ns");
    bench_table_row("wall time per call", &wall, "ns");
    char note[64];
    snprintf(note, sizeof note, "%d threads, thread CPU time", THREADS);
    bench_result(o->backend, "is_master_ns_p50", bench_pct(&cpu, 50), "ns", cpu.n, note);
    bench_result(o->backend, "is_master_ns_p99", bench_pct(&cpu, 99), "ns", cpu.n, note);
    bench_samples_free(&cpu);
    bench_samples_free(&wall);
    if (reign_election_close(e) != REIGN_OK)
        bench_warn("election_close: %s", reign_last_error());
    if (reign_factory_close(f) != REIGN_OK)
        bench_warn("factory_close: %s", reign_last_error());
    return 0;
}
