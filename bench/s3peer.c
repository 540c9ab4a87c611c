/* `reign_bench s3-peer`: S3 requests of a waiting standby per minute, with
 * and without peer mode (s3:// only; docs/backends/s3.md, "Peer mode").
 *
 *   stable:   a holder in this process serves its endpoint
 *             (peer_listen=127.0.0.1:0); two standbys wait on the same
 *             resource, one plain, one with peer=1. Their S3 requests
 *             (the backend's per-request debug lines) are counted in
 *             slices of 60 s of the window (--window, default 120 s).
 *   takeover: a holder child (with peer_listen) is SIGKILLed right after
 *             the answer to one of its renewals came back, once the standby has waited
 *             35 s (+ 0, 7 or 14 s: past one peer_check, at different points
 *             of its cycle); one standby at a time (plain, then peer=1)
 *             takes over. Its S3 requests from the kill to mastership, per
 *             minute, the time that took, and the time past the last
 *             renewal + TTL.
 * Defaults: TTL 10 s (--ttl), retry 1 s, peer_check 30 s. */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "reign/reign.h"

typedef struct counts {
    atomic_long s3;    /* GET and PUT sent to S3 */
    atomic_long asks;  /* peer asks */
} counts;

static void count_logger(int level, const char *component, const char *message, void *payload)
{
    counts *c = payload;
    if (level >= REIGN_LOG_ERROR)
        bench_logger(level, component, message, NULL);
    if (level != REIGN_LOG_DEBUG || strcmp(component, "s3") != 0)
        return;
    if (strncmp(message, "GET ", 4) == 0 || strncmp(message, "PUT ", 4) == 0)
        atomic_fetch_add(&c->s3, 1);
    else if (strncmp(message, "peer GET ", 9) == 0)
        atomic_fetch_add(&c->asks, 1);
}

static char *with_param(const char *uri, const char *param)
{
    size_t n = strlen(uri) + strlen(param) + 2;
    char *u = malloc(n);
    if (u == NULL)
        bench_die("out of memory");
    snprintf(u, n, "%s%s%s", uri, strchr(uri, '?') != NULL ? "&" : "?", param);
    return u;
}

static reign_factory *open_counted(const char *uri, const char *who, int64_t ttl, counts *c)
{
    reign_options opt = REIGN_OPTIONS_INIT;
    char id[96];
    snprintf(id, sizeof id, "bench-s3peer-%s-%ld", who, (long)getpid());
    opt.instance_id = id;
    opt.ttl_ms = ttl;
    opt.logger = count_logger;
    opt.logger_payload = c;
    reign_factory *f = NULL;
    if (reign_factory_open(uri, &opt, &f) != REIGN_OK)
        bench_die("factory_open %s: %s", uri, reign_last_error());
    return f;
}

/* The holder child: master of RESOURCE as INSTANCE_ID, then "R <ns>" each
 * time its deadline moves (a renewal's answer came back: the write landed),
 * until killed. */
int bench_s3peer_child(const bench_opts *o)
{
    if (o->argc < 2)
        bench_die("_s3peer-child: need RESOURCE INSTANCE_ID");
    reign_options opt = REIGN_OPTIONS_INIT;
    opt.ttl_ms = o->ttl_ms;
    opt.instance_id = o->argv[1];
    opt.logger = bench_logger;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    if (reign_factory_open(o->uri, &opt, &f) != REIGN_OK)
        bench_die("child: factory_open: %s", reign_last_error());
    if (reign_election_new(f, o->argv[0], &e) != REIGN_OK ||
        reign_election_wait(e, 30000) != REIGN_OK)
        bench_die("child: not master within 30 s: %s", reign_last_error());
    bench_say("M");
    int64_t last = 0;
    for (;;) {
        int64_t d = 0;
        if (reign_election_deadline_ms(e, &d, NULL) == REIGN_OK && d != last) {
            if (last != 0)
                bench_say("R %lld", (long long)bench_now_ns());
            last = d;
        }
        bench_sleep_ns(200 * 1000);
    }
}

static void stable(const bench_opts *o, const char *plain, const char *peer, int64_t ttl,
                   int64_t window_ms, bench_samples *rate_plain, bench_samples *rate_peer,
                   bench_samples *asks_peer)
{
    counts ch = {0}, cp = {0}, cq = {0};
    char *hu = with_param(o->uri, "peer_listen=127.0.0.1:0");
    reign_factory *fh = open_counted(hu, "holder", ttl, &ch);
    reign_factory *fp = open_counted(plain, "plain", ttl, &cp);
    reign_factory *fq = open_counted(peer, "peer", ttl, &cq);
    char res[160];
    snprintf(res, sizeof res, "%s/s3peer-stable", bench_run_prefix());
    reign_election *eh = NULL, *ep = NULL, *eq = NULL;
    if (reign_election_new(fh, res, &eh) != REIGN_OK || reign_election_wait(eh, 30000) != REIGN_OK)
        bench_die("holder: %s", reign_last_error());
    if (reign_election_new(fp, res, &ep) != REIGN_OK || reign_election_start(ep) != REIGN_OK ||
        reign_election_new(fq, res, &eq) != REIGN_OK || reign_election_start(eq) != REIGN_OK)
        bench_die("standbys: %s", reign_last_error());
    bench_sleep_ns(2 * BENCH_NS_PER_S); /* past the first looks */
    const int64_t slice_ms = 60000;
    for (int64_t done = 0; done < window_ms; done += slice_ms) {
        int64_t ms = window_ms - done < slice_ms ? window_ms - done : slice_ms;
        long p0 = atomic_load(&cp.s3), q0 = atomic_load(&cq.s3), a0 = atomic_load(&cq.asks);
        bench_sleep_ns(ms * BENCH_NS_PER_MS); /* the measurement: requests in a fixed time */
        double per_min = 60000.0 / (double)ms;
        bench_samples_add(rate_plain, (double)(atomic_load(&cp.s3) - p0) * per_min);
        bench_samples_add(rate_peer, (double)(atomic_load(&cq.s3) - q0) * per_min);
        bench_samples_add(asks_peer, (double)(atomic_load(&cq.asks) - a0) * per_min);
        if (!reign_election_is_master(eh) || reign_election_is_master(ep) ||
            reign_election_is_master(eq))
            bench_die("stable: the holder lost its lease during the window");
    }
    reign_election_close(eq);
    reign_election_close(ep);
    reign_election_close(eh);
    reign_factory_close(fq);
    reign_factory_close(fp);
    reign_factory_close(fh);
    free(hu);
}

/* One crash takeover by a standby on standby_uri; adds its S3 requests per
 * minute from the kill to mastership and the time that took. */
static void takeover(const bench_opts *o, const char *standby_uri, const char *label, long rep,
                     int64_t ttl, int64_t settle_ms, bench_samples *rate, bench_samples *took_ms,
                     bench_samples *excess_ms)
{
    counts c = {0};
    char *hu = with_param(o->uri, "peer_listen=127.0.0.1:0");
    char res[160], id_child[64], ttl_s[32];
    snprintf(res, sizeof res, "%s/s3peer-takeover-%s-%ld", bench_run_prefix(), label, rep);
    snprintf(id_child, sizeof id_child, "bench-s3peer-child-%ld-%ld", (long)getpid(), rep);
    snprintf(ttl_s, sizeof ttl_s, "%lld", (long long)ttl);
    char *argv[] = {(char *)bench_self(), "_s3peer-child", "--backend", (char *)o->backend,
                    "--uri", hu, "--ttl", ttl_s, res, id_child, NULL};
    bench_child ch;
    if (bench_child_spawn(&ch, argv) != 0)
        bench_die("cannot start the holder child");
    char line[256];
    if (bench_child_line(&ch, line, sizeof line, bench_now_ns() + 30 * BENCH_NS_PER_S) != 1 ||
        strcmp(line, "M") != 0)
        bench_die("takeover %s %ld: the child did not report mastership", label, rep);
    reign_factory *f = open_counted(standby_uri, label, ttl, &c);
    reign_election *e = NULL;
    if (reign_election_new(f, res, &e) != REIGN_OK || reign_election_start(e) != REIGN_OK)
        bench_die("standby: %s", reign_last_error());
    /* steady state first: past one peer_check, so that a peer-mode standby
     * is somewhere in its cycle of skipped reads, as it would be after
     * minutes of waiting */
    bench_sleep_ns((settle_ms + (rep % 3) * 7000) * BENCH_NS_PER_MS);
    /* then kill the holder right after a renewal; lines read now are old */
    while (bench_child_line(&ch, line, sizeof line, 0) == 1) {
    }
    int64_t t_renew = 0;
    for (;;) {
        int r = bench_child_line(&ch, line, sizeof line, bench_now_ns() + 3 * ttl * BENCH_NS_PER_MS);
        if (r != 1)
            bench_die("takeover %s %ld: no renewal from the child within 3 TTL", label, rep);
        if (line[0] == 'R') {
            t_renew = strtoll(line + 2, NULL, 10);
            break;
        }
    }
    int64_t t_kill = bench_now_ns();
    kill(ch.pid, SIGKILL);
    long s0 = atomic_load(&c.s3);
    int64_t give_up = t_kill + (6 * ttl + 70000) * BENCH_NS_PER_MS;
    int64_t t_master = 0;
    while (t_master == 0 && bench_now_ns() < give_up) {
        if (reign_election_is_master(e))
            t_master = bench_now_ns();
        else
            bench_sleep_ns(BENCH_NS_PER_MS);
    }
    long s3 = atomic_load(&c.s3) - s0;
    bench_child_end(&ch, 0, 5000);
    if (t_master == 0)
        bench_die("takeover %s %ld: the standby is not master long after the kill", label, rep);
    double ms = (double)(t_master - t_kill) / 1e6;
    bench_samples_add(took_ms, ms);
    bench_samples_add(excess_ms, (double)(t_master - (t_renew + ttl * BENCH_NS_PER_MS)) / 1e6);
    bench_samples_add(rate, (double)s3 * 60000.0 / ms);
    reign_election_close(e);
    reign_factory_close(f);
    free(hu);
}

int bench_s3peer(const bench_opts *o)
{
    if (strncmp(o->uri, "s3://", 5) != 0)
        bench_die("s3-peer: an s3:// URI is needed, not %s", o->uri);
    int64_t ttl = o->ttl_ms > 0 ? o->ttl_ms : 10000;
    int64_t window = o->window_ms > 0 ? o->window_ms : (o->quick ? 60000 : 120000);
    long reps = o->reps > 0 ? o->reps : (o->quick ? 2 : 3);
    const int64_t settle_ms = 35000; /* peer_check (30 s) + 5 s */
    char *plain = with_param(o->uri, "peer=0");
    char *peer = with_param(o->uri, "peer=1");

    bench_samples sp = {0}, sq = {0}, aq = {0}, tp = {0}, tq = {0}, dp = {0}, dq = {0}, xp = {0},
                  xq = {0};
    stable(o, plain, peer, ttl, window, &sp, &sq, &aq);
    for (long i = 0; i < reps; i++) {
        takeover(o, plain, "plain", i, ttl, settle_ms, &tp, &dp, &xp);
        takeover(o, peer, "peer", i, ttl, settle_ms, &tq, &dq, &xq);
    }

    char title[512];
    snprintf(title, sizeof title,
             "s3 peer mode (%s): S3 requests of one waiting standby, TTL %lld ms, retry 1000 ms, "
             "peer_check 30 s; stable in %lld s slices, takeover = SIGKILL of the holder -> "
             "standby master, %zu reps",
             o->backend, (long long)ttl, (long long)(window < 60000 ? window : 60000) / 1000,
             tp.n);
    bench_table_header(title);
    bench_table_row("stable, without peer mode", &sp, "/min");
    bench_table_row("stable, peer mode", &sq, "/min");
    bench_table_row("stable, peer mode: peer asks", &aq, "/min");
    bench_table_row("takeover, without peer mode", &tp, "/min");
    bench_table_row("takeover, peer mode", &tq, "/min");
    bench_table_row("takeover time, without peer mode", &dp, "ms");
    bench_table_row("takeover time, peer mode", &dq, "ms");
    bench_table_row("takeover - (last renewal + TTL), plain", &xp, "ms");
    bench_table_row("takeover - (last renewal + TTL), peer", &xq, "ms");
    char note[96];
    snprintf(note, sizeof note, "TTL %lld ms, retry 1 s", (long long)ttl);
    bench_result(o->backend, "s3peer_stable_plain_per_min", bench_pct(&sp, 50), "/min", sp.n, note);
    bench_result(o->backend, "s3peer_stable_peer_per_min", bench_pct(&sq, 50), "/min", sq.n, note);
    bench_result(o->backend, "s3peer_takeover_plain_per_min", bench_pct(&tp, 50), "/min", tp.n,
                 note);
    bench_result(o->backend, "s3peer_takeover_peer_per_min", bench_pct(&tq, 50), "/min", tq.n,
                 note);
    bench_result(o->backend, "s3peer_takeover_plain_p50_ms", bench_pct(&dp, 50), "ms", dp.n, note);
    bench_result(o->backend, "s3peer_takeover_peer_p50_ms", bench_pct(&dq, 50), "ms", dq.n, note);
    bench_samples *all[] = {&sp, &sq, &aq, &tp, &tq, &dp, &dq, &xp, &xq};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        bench_samples_free(all[i]);
    free(plain);
    free(peer);
    return 0;
}
