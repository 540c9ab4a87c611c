/* `reign_bench failover`: crash failover. A child process acquires the
 * resource and tells us through its stdout pipe; it also reports each
 * RENEW it sends (the moment its ops_renew count moves). We start a
 * campaign in this process (B), let its ACQUIRE be refused, and right after
 * one of the child's renewals SIGKILL the child; then we time until B is
 * master (looking at is_master every 100 µs).
 *
 *   total  = kill -> B master
 *   excess = B master - (child's last RENEW + TTL): what reign adds on top
 *            of the lease running out. The renewal's time is taken when the
 *            child saw its counter move (just before the send), so the
 *            excess is if anything over-stated by the half round trip.
 * The file backend frees a dead holder's lock at once: only total counts. */
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "reign/reign.h"

static void stats_of(reign_factory *f, reign_stats *st)
{
    if (reign_factory_stats(f, st) != REIGN_OK)
        bench_die("stats: %s", reign_last_error());
}

/* ---- the child: acquire, report, renew until killed ----------------------- */

int bench_failover_child(const bench_opts *o)
{
    if (o->argc < 2)
        bench_die("_failover-child: need RESOURCE INSTANCE_ID");
    reign_options opt = REIGN_OPTIONS_INIT;
    opt.ttl_ms = o->ttl_ms;
    opt.instance_id = o->argv[1];
    opt.logger = bench_logger;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    if (reign_factory_open(o->uri, &opt, &f) != REIGN_OK)
        bench_die("child: factory_open: %s", reign_last_error());
    if (reign_election_new(f, o->argv[0], &e) != REIGN_OK)
        bench_die("child: election_new: %s", reign_last_error());
    if (reign_election_wait(e, 30000) != REIGN_OK)
        bench_die("child: not master within 30 s: %s", reign_last_error());
    bench_say("M");
    reign_stats st;
    stats_of(f, &st);
    uint64_t renews = st.ops_renew;
    /* Until killed (or our parent goes away: stdin closes). */
    for (;;) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        struct timespec ts = {0, 100 * 1000};
        if (ppoll(&pfd, 1, &ts, NULL) > 0) {
            char c;
            if (read(0, &c, 1) <= 0)
                break;
        }
        stats_of(f, &st);
        if (st.ops_renew != renews) {
            renews = st.ops_renew;
            bench_say("R %lld", (long long)bench_now_ns());
        }
    }
    reign_election_close(e);
    reign_factory_close(f);
    return 0;
}

/* ---- the parent ----------------------------------------------------------------- */

static void campaign_and_settle(reign_factory *f, reign_election *e)
{
    reign_stats st;
    stats_of(f, &st);
    uint64_t before = st.ops_acquire;
    if (reign_election_start(e) != REIGN_OK)
        bench_die("start: %s", reign_last_error());
    int64_t give_up = bench_now_ns() + 5 * BENCH_NS_PER_S;
    do {
        if (bench_now_ns() > give_up)
            bench_die("failover: the candidate sent no ACQUIRE within 5 s");
        bench_sleep_ns(100 * 1000);
        stats_of(f, &st);
    } while (st.ops_acquire == before);
    bench_sleep_ns(20 * BENCH_NS_PER_MS);
}

int bench_failover(const bench_opts *o)
{
    long reps = o->reps > 0 ? o->reps : (o->quick ? 3 : 20);
    double budget_s = o->budget_s > 0 ? o->budget_s : (o->quick ? 10 : 90);
    int64_t ttl = o->ttl_ms > 0 ? o->ttl_ms : 1000;
    bool is_file = strcmp(o->backend, "file") == 0;

    char id_b[64], id_child[64], res[128], ttl_s[32];
    snprintf(id_b, sizeof id_b, "bench-failover-B-%ld", (long)getpid());
    snprintf(id_child, sizeof id_child, "bench-failover-child-%ld", (long)getpid());
    snprintf(res, sizeof res, "%s/failover", bench_run_prefix());
    snprintf(ttl_s, sizeof ttl_s, "%lld", (long long)ttl);

    reign_options opt = REIGN_OPTIONS_INIT;
    opt.ttl_ms = ttl;
    opt.instance_id = id_b;
    opt.logger = bench_logger;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    if (reign_factory_open(o->uri, &opt, &f) != REIGN_OK)
        bench_die("factory_open %s: %s", o->uri, reign_last_error());
    if (reign_election_new(f, res, &e) != REIGN_OK)
        bench_die("election_new: %s", reign_last_error());

    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* sleeps of 100 µs, not 150 */
    bench_samples total = {0}, excess = {0};
    int64_t start = bench_now_ns();
    for (long i = 0; i < reps; i++) {
        if (i >= 2 && (double)(bench_now_ns() - start) / 1e9 > budget_s)
            break;
        char *argv[] = {(char *)bench_self(), "_failover-child", "--backend", (char *)o->backend,
                        "--uri", (char *)o->uri, "--ttl", ttl_s, res, id_child, NULL};
        bench_child c;
        if (bench_child_spawn(&c, argv) != 0)
            bench_die("cannot start the child");
        char line[256];
        if (bench_child_line(&c, line, sizeof line, bench_now_ns() + 30 * BENCH_NS_PER_S) != 1 ||
            strcmp(line, "M") != 0)
            bench_die("failover %ld: the child did not report mastership", i);
        campaign_and_settle(f, e);
        /* kill right after a renewal reached the server: the lease then has
         * a full TTL to run */
        int64_t t_renew = 0;
        for (;;) {
            int r = bench_child_line(&c, line, sizeof line, bench_now_ns() + 3 * ttl * BENCH_NS_PER_MS);
            if (r != 1)
                bench_die("failover %ld: no renewal from the child within 3 TTL", i);
            if (line[0] == 'R') {
                t_renew = strtoll(line + 2, NULL, 10);
                break;
            }
        }
        bench_sleep_ns(5 * BENCH_NS_PER_MS);
        int64_t t_kill = bench_now_ns();
        kill(c.pid, SIGKILL);
        int64_t expiry = t_renew + ttl * BENCH_NS_PER_MS;
        int64_t give_up = t_kill + (3 * ttl + 10000) * BENCH_NS_PER_MS;
        int64_t t_master = 0;
        for (;;) {
            if (reign_election_is_master(e)) {
                t_master = bench_now_ns();
                break;
            }
            int64_t now = bench_now_ns();
            if (now > give_up)
                break;
            /* 100 µs between looks: resolution enough for targets in ms, and
             * no core taken from the threads being timed */
            bench_sleep_ns(100 * 1000);
        }
        bench_child_end(&c, 0, 5000);
        if (t_master == 0)
            bench_die("failover %ld: not master %lld ms after the kill", i,
                      (long long)(3 * ttl + 10000));
        bench_samples_add(&total, (double)(t_master - t_kill) / 1e6);
        bench_samples_add(&excess, (double)(t_master - expiry) / 1e6);
        if (reign_election_resign(e) != REIGN_OK)
            bench_die("resign: %s", reign_last_error());
    }

    char title[512];
    snprintf(title, sizeof title, "crash failover, %s (%s): SIGKILL the master child, TTL %lld ms, %zu reps",
             o->backend, reign_factory_uri(f), (long long)ttl, total.n);
    bench_table_header(title);
    bench_table_row("total (kill -> other master)", &total, "ms");
    if (!is_file)
        bench_table_row("excess (past last renew + TTL)", &excess, "ms");
    char note[64];
    snprintf(note, sizeof note, "TTL %lld ms", (long long)ttl);
    bench_result(o->backend, "failover_total_p50", bench_pct(&total, 50), "ms", total.n, note);
    bench_result(o->backend, "failover_total_p99", bench_pct(&total, 99), "ms", total.n, note);
    if (!is_file) {
        bench_result(o->backend, "failover_excess_p50", bench_pct(&excess, 50), "ms", excess.n, note);
        bench_result(o->backend, "failover_excess_p99", bench_pct(&excess, 99), "ms", excess.n, note);
    }
    bench_samples_free(&total);
    bench_samples_free(&excess);
    if (reign_election_close(e) != REIGN_OK)
        bench_warn("election_close: %s", reign_last_error());
    if (reign_factory_close(f) != REIGN_OK)
        bench_warn("factory_close: %s", reign_last_error());
    return 0;
}
