/* `reign_bench observe`: observer latency, master change → observer
 * callback. Two factories on one backend: A holds or releases one
 * resource, O observes it (reign_observer, callback mode, default poll
 * and repair intervals: pushed where the backend notifies, polled every
 * 1000 ms on s3:// and noop://). Each repetition:
 *   release: t0 just before reign_election_resign(A); t1 when O's callback
 *            reports "none" (the RELEASE round trip, the notification, O's
 *            READ round trip, a thread wake-up);
 *   acquire: t0 just before reign_election_wait(A); t1 when the callback
 *            reports A with the new term (ACQUIRE, notification, READ).
 * The observer lives in its own factory, as it would in another process. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "reign/reign.h"

#define OBSERVE_TIMEOUT_NS (10 * BENCH_NS_PER_S)

typedef struct seen {
    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cond;
    bool held;
    uint64_t term;
    int64_t at_ns;
    uint64_t n;
} seen;

static void on_change(reign_observer *o, const reign_change *c, void *payload)
{
    (void)o;
    seen *s = payload;
    int64_t now = bench_now_ns();
    pthread_mutex_lock(&s->mu);
    s->held = c->held;
    s->term = c->term;
    s->at_ns = now;
    s->n++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

/* Wait until the observer reports (held, term or any term if 0) after the
 * n-th change; returns when it was seen, 0 on timeout. */
static int64_t wait_seen(seen *s, uint64_t after_n, bool held, uint64_t term)
{
    int64_t until = bench_now_ns() + OBSERVE_TIMEOUT_NS;
    int64_t at = 0;
    pthread_mutex_lock(&s->mu);
    while (at == 0) {
        if (s->n > after_n && s->held == held && (term == 0 || s->term == term)) {
            at = s->at_ns;
            break;
        }
        if (bench_now_ns() >= until)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cond, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return at;
}

static uint64_t seen_count(seen *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int bench_observe(const bench_opts *o)
{
    long reps = o->reps > 0 ? o->reps : (o->quick ? 20 : 100);
    double budget_s = o->budget_s > 0 ? o->budget_s : (o->quick ? 5 : 30);
    const long warmup = 3;
    char id_a[64], id_o[64], res[128];
    snprintf(id_a, sizeof id_a, "bench-observe-A-%ld", (long)getpid());
    snprintf(id_o, sizeof id_o, "bench-observe-O-%ld", (long)getpid());
    snprintf(res, sizeof res, "%s/observe", bench_run_prefix());

    reign_options opt = REIGN_OPTIONS_INIT;
    opt.ttl_ms = o->ttl_ms;
    opt.logger = bench_logger;
    reign_factory *fa = NULL, *fo = NULL;
    opt.instance_id = id_a;
    if (reign_factory_open(o->uri, &opt, &fa) != REIGN_OK)
        bench_die("factory_open %s: %s", o->uri, reign_last_error());
    opt.instance_id = id_o;
    if (reign_factory_open(o->uri, &opt, &fo) != REIGN_OK)
        bench_die("factory_open %s: %s", o->uri, reign_last_error());
    reign_election *e = NULL;
    if (reign_election_new(fa, res, &e) != REIGN_OK)
        bench_die("election_new: %s", reign_last_error());

    seen s = {.n = 0};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cond, NULL);
    reign_observer_config oc = REIGN_OBSERVER_CONFIG_INIT;
    const char *ids[] = {res};
    oc.ids = ids;
    oc.n_ids = 1;
    oc.fn = on_change;
    oc.payload = &s;
    reign_observer *obs = NULL;
    if (reign_observer_new(fo, &oc, &obs) != REIGN_OK)
        bench_die("observer_new: %s", reign_last_error());
    if (wait_seen(&s, 0, false, 0) == 0)
        bench_die("the observer made no first read within 10 s");
    bench_sleep_ns(200 * BENCH_NS_PER_MS); /* the backend is told to push */

    bench_samples acq = {0}, rel = {0};
    int64_t start = bench_now_ns();
    for (long i = 0; i < warmup + reps; i++) {
        if (i >= warmup + 5 && (double)(bench_now_ns() - start) / 1e9 > budget_s)
            break;
        uint64_t n = seen_count(&s);
        int64_t t0 = bench_now_ns();
        if (reign_election_wait(e, 30000) != REIGN_OK)
            bench_die("A did not become master: %s", reign_last_error());
        uint64_t term = 0;
        if (reign_election_term(e, &term) != REIGN_OK)
            bench_die("term: %s", reign_last_error());
        int64_t t1 = wait_seen(&s, n, true, term);
        if (t1 == 0)
            bench_die("repetition %ld: the observer did not see term %llu within 10 s", i,
                      (unsigned long long)term);
        if (i >= warmup)
            bench_samples_add(&acq, (double)(t1 - t0) / BENCH_NS_PER_MS);

        n = seen_count(&s);
        t0 = bench_now_ns();
        if (reign_election_resign(e) != REIGN_OK)
            bench_die("resign: %s", reign_last_error());
        t1 = wait_seen(&s, n, false, 0);
        if (t1 == 0)
            bench_die("repetition %ld: the observer did not see the release within 10 s", i);
        if (i >= warmup)
            bench_samples_add(&rel, (double)(t1 - t0) / BENCH_NS_PER_MS);
    }
    reign_observer_status st;
    bool pushed = reign_observer_status_get(obs, &st) == REIGN_OK && st.pushed;
    char title[256];
    snprintf(title, sizeof title, "observe (%s): master change -> observer callback, %s", o->backend,
             pushed ? "pushed by the backend's notifications" : "polled every 1000 ms");
    bench_table_header(title);
    bench_table_row("acquire (wait) -> callback", &acq, "ms");
    bench_table_row("release (resign) -> callback", &rel, "ms");
    const char *note = pushed ? "pushed" : "polled 1000 ms";
    bench_result(o->backend, "observe_acquire_p50_ms", bench_pct(&acq, 50), "ms", acq.n, note);
    bench_result(o->backend, "observe_acquire_p99_ms", bench_pct(&acq, 99), "ms", acq.n, note);
    bench_result(o->backend, "observe_release_p50_ms", bench_pct(&rel, 50), "ms", rel.n, note);
    bench_result(o->backend, "observe_release_p99_ms", bench_pct(&rel, 99), "ms", rel.n, note);
    bench_samples_free(&acq);
    bench_samples_free(&rel);
    reign_observer_free(obs);
    reign_election_close(e);
    reign_factory_close(fo);
    reign_factory_close(fa);
    return 0;
}
