/* `reign_bench peer`: reign on etcd beside `etcdctl elect` (Debian's
 * etcd-client) against the same etcd, measured the same way for both:
 * every contender is a separate process that prints a line when it becomes
 * leader; we signal the leader and time, on our monotonic clock, until the
 * standby's line arrives on its stdout pipe.
 *   graceful: SIGINT the leader (etcdctl resigns; reign's elect child
 *             resigns and exits);
 *   crash:    SIGKILL the leader; the standby takes over when the lease
 *             ends. etcdctl's session TTL is fixed at 60 s, so reign's child
 *             runs with TTL 60 s here too, and the pairs run in parallel.
 * reign's contender is `reign_bench _elect-child` (public API only: start,
 * reign_election_wait, resign). A standby is "ready" when it has campaigned:
 * reign's child says so after its first ACQUIRE; etcdctl's key appears
 * under the election prefix (checked through the gateway). Then both get
 * the same settle pause before the signal. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench.h"
#include "reign/reign.h"

#define SETTLE_NS (50 * BENCH_NS_PER_MS)
#define PEER_CRASH_TTL_MS 60000

/* ---- the reign contender --------------------------------------------------- */

int bench_elect_child(const bench_opts *o)
{
    if (o->argc < 2)
        bench_die("_elect-child: need NAME PROPOSAL");
    /* SIGINT/SIGTERM are taken with sigwait; block them before any reign
     * thread exists so that every thread inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    reign_options opt = REIGN_OPTIONS_INIT;
    opt.ttl_ms = o->ttl_ms;
    opt.instance_id = o->argv[1];
    opt.logger = bench_logger;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    if (reign_factory_open(o->uri, &opt, &f) != REIGN_OK)
        bench_die("elect child: factory_open: %s", reign_last_error());
    if (reign_election_new(f, o->argv[0], &e) != REIGN_OK)
        bench_die("elect child: election_new: %s", reign_last_error());
    if (reign_election_start(e) != REIGN_OK)
        bench_die("elect child: start: %s", reign_last_error());
    reign_stats st = {0};
    while (st.ops_acquire == 0) {
        if (reign_factory_stats(f, &st) != REIGN_OK)
            bench_die("elect child: stats: %s", reign_last_error());
        bench_sleep_ns(100 * 1000);
    }
    bench_say("campaigning");
    if (reign_election_wait(e, -1) != REIGN_OK)
        bench_die("elect child: wait: %s", reign_last_error());
    bench_say("leader %s", o->argv[1]);
    int sig = 0;
    sigwait(&set, &sig);
    reign_election_close(e); /* resigns */
    reign_factory_close(f);
    return 0;
}

/* ---- etcd gateway: how many keys under a prefix ------------------------------ */

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

typedef struct membuf {
    char data[4096];
    size_t len;
} membuf;

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    membuf *m = userdata;
    size_t n = size * nmemb;
    size_t room = sizeof m->data - 1 - m->len;
    size_t copy = n < room ? n : room;
    memcpy(m->data + m->len, ptr, copy);
    m->len += copy;
    m->data[m->len] = '\0';
    return n;
}

/* keys under "name/" (etcdctl's election prefix), -1 on error */
static long etcd_count(CURL *h, const char *endpoint, const char *name)
{
    char key[300], end[300], bkey[420], bend[420], url[300], body[1000];
    snprintf(key, sizeof key, "%s/", name);
    snprintf(end, sizeof end, "%s0", name); /* '/' + 1 */
    base64((const unsigned char *)key, strlen(key), bkey);
    base64((const unsigned char *)end, strlen(end), bend);
    snprintf(url, sizeof url, "http://%s/v3/kv/range", endpoint);
    snprintf(body, sizeof body, "{\"key\":\"%s\",\"range_end\":\"%s\",\"count_only\":true}", bkey,
             bend);
    membuf m = {.len = 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(h) != CURLE_OK)
        return -1;
    const char *c = strstr(m.data, "\"count\":");
    if (c == NULL)
        return 0; /* the gateway leaves zero values out */
    c += strlen("\"count\":");
    if (*c == '"')
        c++;
    return strtol(c, NULL, 10);
}

/* ---- contenders --------------------------------------------------------------------- */

typedef enum tool { TOOL_REIGN = 0, TOOL_ETCDCTL = 1 } tool;
static const char *const tool_name[] = {"reign", "etcdctl"};

typedef struct peer_ctx {
    const bench_opts *o;
    char endpoint[300]; /* host:port of the first etcd endpoint */
    const char *etcdctl;
    CURL *curl;
} peer_ctx;

static void spawn(peer_ctx *p, tool t, const char *name, const char *proposal, int64_t ttl_ms,
                  bench_child *c)
{
    char endpoints[400], ttl_s[32];
    snprintf(endpoints, sizeof endpoints, "--endpoints=%s", p->endpoint);
    snprintf(ttl_s, sizeof ttl_s, "%lld", (long long)ttl_ms);
    int rc;
    if (t == TOOL_ETCDCTL) {
        char *argv[] = {(char *)p->etcdctl, endpoints, "elect", (char *)name, (char *)proposal, NULL};
        rc = bench_child_spawn(c, argv);
    } else {
        char *argv[] = {(char *)bench_self(), "_elect-child", "--backend", "etcd", "--uri",
                        (char *)p->o->uri, "--ttl", ttl_s, (char *)name, (char *)proposal, NULL};
        rc = bench_child_spawn(c, argv);
    }
    if (rc != 0)
        bench_die("peer: cannot start %s", tool_name[t]);
}

/* Wait for the leader line: reign's child says "leader …", etcdctl prints
 * the election key first. Returns the time it was read, 0 on timeout. */
static int64_t await_leader(bench_child *c, tool t, int64_t deadline)
{
    char line[512];
    for (;;) {
        int r = bench_child_line(c, line, sizeof line, deadline);
        if (r != 1)
            return 0;
        int64_t now = bench_now_ns();
        if (t == TOOL_ETCDCTL || strncmp(line, "leader", 6) == 0)
            return now;
    }
}

/* Wait until a standby has campaigned. */
static void await_ready(peer_ctx *p, bench_child *c, tool t, const char *name, long keys)
{
    int64_t deadline = bench_now_ns() + 20 * BENCH_NS_PER_S;
    if (t == TOOL_REIGN) {
        char line[512];
        if (bench_child_line(c, line, sizeof line, deadline) != 1 || strcmp(line, "campaigning") != 0)
            bench_die("peer: the reign standby did not campaign");
    } else {
        while (etcd_count(p->curl, p->endpoint, name) < keys) {
            if (bench_now_ns() > deadline)
                bench_die("peer: etcdctl's standby key did not appear under %s/", name);
            bench_sleep_ns(2 * BENCH_NS_PER_MS);
        }
    }
    bench_sleep_ns(SETTLE_NS);
}

static void graceful(peer_ctx *p, tool t, long reps, double budget_s, bench_samples *out)
{
    char name[200], prop[64];
    snprintf(name, sizeof name, "%s/peer-%s-handoff", bench_run_prefix(), tool_name[t]);
    bench_child leader, cand;
    snprintf(prop, sizeof prop, "p%ld-0", (long)getpid());
    spawn(p, t, name, prop, 0, &leader);
    if (await_leader(&leader, t, bench_now_ns() + 20 * BENCH_NS_PER_S) == 0)
        bench_die("peer: the first %s contender did not lead", tool_name[t]);
    int64_t start = bench_now_ns();
    for (long i = 0; i < reps; i++) {
        if (i >= 5 && (double)(bench_now_ns() - start) / 1e9 > budget_s)
            break;
        snprintf(prop, sizeof prop, "p%ld-%ld", (long)getpid(), i + 1);
        spawn(p, t, name, prop, 0, &cand);
        await_ready(p, &cand, t, name, 2);
        int64_t t0 = bench_now_ns();
        kill(leader.pid, SIGINT);
        int64_t t1 = await_leader(&cand, t, t0 + 20 * BENCH_NS_PER_S);
        if (t1 == 0)
            bench_die("peer: %s standby did not lead within 20 s of SIGINT", tool_name[t]);
        bench_samples_add(out, (double)(t1 - t0) / 1e6);
        bench_child_end(&leader, 0, 10000);
        leader = cand;
    }
    bench_child_end(&leader, SIGINT, 10000);
}

/* n pairs of each tool at once: leader, standby; SIGKILL every leader. */
static void crash(peer_ctx *p, long pairs, bench_samples *total, bench_samples *excess)
{
    size_t n = (size_t)pairs * 2;
    bench_child *lead = calloc(n, sizeof *lead), *cand = calloc(n, sizeof *cand);
    int64_t *t_led = calloc(n, sizeof *t_led), *t_kill = calloc(n, sizeof *t_kill);
    bool *done = calloc(n, sizeof *done);
    char (*names)[200] = calloc(n, sizeof *names);
    if (!lead || !cand || !t_led || !t_kill || !done || !names)
        bench_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        tool t = (tool)(i % 2);
        char prop[64];
        snprintf(names[i], sizeof names[i], "%s/peer-%s-crash-%zu", bench_run_prefix(),
                 tool_name[t], i / 2);
        snprintf(prop, sizeof prop, "lead%ld-%zu", (long)getpid(), i);
        spawn(p, t, names[i], prop, PEER_CRASH_TTL_MS, &lead[i]);
        t_led[i] = await_leader(&lead[i], t, bench_now_ns() + 20 * BENCH_NS_PER_S);
        if (t_led[i] == 0)
            bench_die("peer: %s leader %zu did not lead", tool_name[t], i / 2);
        snprintf(prop, sizeof prop, "cand%ld-%zu", (long)getpid(), i);
        spawn(p, t, names[i], prop, PEER_CRASH_TTL_MS, &cand[i]);
        await_ready(p, &cand[i], t, names[i], 2);
    }
    for (size_t i = 0; i < n; i++) {
        t_kill[i] = bench_now_ns();
        kill(lead[i].pid, SIGKILL);
    }
    fprintf(stderr, "peer: crash failover: %zu leaders killed, waiting for their leases (60 s)\n", n);
    size_t left = n;
    int64_t give_up = bench_now_ns() + (PEER_CRASH_TTL_MS + 60000) * BENCH_NS_PER_MS;
    while (left > 0 && bench_now_ns() < give_up) {
        struct pollfd *pfd = calloc(n, sizeof *pfd);
        if (pfd == NULL)
            bench_die("out of memory");
        for (size_t i = 0; i < n; i++)
            pfd[i] = (struct pollfd){.fd = done[i] ? -1 : cand[i].out_fd, .events = POLLIN};
        int rc = poll(pfd, (nfds_t)n, 1000);
        for (size_t i = 0; rc > 0 && i < n; i++) {
            if (done[i] || pfd[i].revents == 0)
                continue;
            tool t = (tool)(i % 2);
            int64_t t1 = await_leader(&cand[i], t, 0);
            if (t1 == 0 && pfd[i].revents & (POLLHUP | POLLERR) && !(pfd[i].revents & POLLIN))
                bench_die("peer: %s standby %zu exited", tool_name[t], i / 2);
            if (t1 != 0) {
                done[i] = true;
                left--;
                bench_samples_add(&total[t], (double)(t1 - t_kill[i]) / 1e6);
                bench_samples_add(&excess[t],
                                  (double)(t1 - t_led[i] - PEER_CRASH_TTL_MS * BENCH_NS_PER_MS) / 1e6);
            }
        }
        free(pfd);
    }
    for (size_t i = 0; i < n; i++) {
        bench_child_end(&lead[i], 0, 5000);
        bench_child_end(&cand[i], SIGINT, 10000);
    }
    if (left > 0)
        bench_warn("peer: %zu standbys never led", left);
    free(lead);
    free(cand);
    free(t_led);
    free(t_kill);
    free(done);
    free(names);
}

int bench_peer(const bench_opts *o)
{
    long reps = o->reps > 0 ? o->reps : (o->quick ? 10 : 50);
    double budget_s = o->budget_s > 0 ? o->budget_s : (o->quick ? 5 : 60);
    peer_ctx p = {.o = o, .etcdctl = o->etcdctl ? o->etcdctl : "etcdctl"};
    const char *h = strstr(o->uri, "://");
    if (h == NULL || strncmp(o->uri, "etcd://", 7) != 0 || strchr(h + 3, '@') != NULL)
        bench_die("peer: needs a plain etcd://host:port URI without credentials, not %s", o->uri);
    snprintf(p.endpoint, sizeof p.endpoint, "%s", h + 3);
    p.endpoint[strcspn(p.endpoint, ",/?")] = '\0';
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        bench_die("curl_global_init failed");
    p.curl = curl_easy_init();
    if (p.curl == NULL)
        bench_die("curl_easy_init failed");

    bench_samples hand[2] = {{0}}, total[2] = {{0}}, excess[2] = {{0}};
    for (int t = 0; t < 2; t++)
        graceful(&p, (tool)t, reps, budget_s, &hand[t]);
    char title[1024];
    snprintf(title, sizeof title,
             "peer on etcd %s: graceful handoff (SIGINT the leader -> standby's line on stdout)",
             p.endpoint);
    bench_table_header(title);
    bench_table_row("reign (_elect-child)", &hand[TOOL_REIGN], "ms");
    bench_table_row("etcdctl elect", &hand[TOOL_ETCDCTL], "ms");
    double r50 = bench_pct(&hand[TOOL_REIGN], 50), e50 = bench_pct(&hand[TOOL_ETCDCTL], 50);
    double r99 = bench_pct(&hand[TOOL_REIGN], 99), e99 = bench_pct(&hand[TOOL_ETCDCTL], 99);
    printf("reign / etcdctl: p50 %.2f, p99 %.2f\n", r50 / e50, r99 / e99);
    bench_result("etcd", "peer_handoff_reign_p50", r50, "ms", hand[0].n, "separate processes");
    bench_result("etcd", "peer_handoff_reign_p99", r99, "ms", hand[0].n, "separate processes");
    bench_result("etcd", "peer_handoff_etcdctl_p50", e50, "ms", hand[1].n, "etcdctl elect");
    bench_result("etcd", "peer_handoff_etcdctl_p99", e99, "ms", hand[1].n, "etcdctl elect");

    if (o->peer_crash) {
        long pairs = o->quick ? 2 : 5;
        crash(&p, pairs, total, excess);
        snprintf(title, sizeof title,
                 "peer on etcd %s: crash failover (SIGKILL the leader), TTL 60 s both, %ld pairs each in parallel",
                 p.endpoint, pairs);
        bench_table_header(title);
        bench_table_row("reign total", &total[TOOL_REIGN], "ms");
        bench_table_row("etcdctl total", &total[TOOL_ETCDCTL], "ms");
        bench_table_row("reign past leader line + 60 s", &excess[TOOL_REIGN], "ms");
        bench_table_row("etcdctl past leader line + 60 s", &excess[TOOL_ETCDCTL], "ms");
        double rt = bench_pct(&total[TOOL_REIGN], 50), et = bench_pct(&total[TOOL_ETCDCTL], 50);
        printf("reign / etcdctl total p50: %.3f\n", rt / et);
        bench_result("etcd", "peer_crash_reign_p50", rt, "ms", total[0].n, "TTL 60 s");
        bench_result("etcd", "peer_crash_etcdctl_p50", et, "ms", total[1].n, "TTL 60 s");
        bench_result("etcd", "peer_crash_reign_excess_p50", bench_pct(&excess[0], 50), "ms",
                     excess[0].n, "past leader line + 60 s");
        bench_result("etcd", "peer_crash_etcdctl_excess_p50", bench_pct(&excess[1], 50), "ms",
                     excess[1].n, "past leader line + 60 s");
    }
    for (int t = 0; t < 2; t++) {
        bench_samples_free(&hand[t]);
        bench_samples_free(&total[t]);
        bench_samples_free(&excess[t]);
    }
    curl_easy_cleanup(p.curl);
    curl_global_cleanup();
    return 0;
}
