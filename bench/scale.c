/* `reign_bench scale`: many resources over a few instances. Three child
 * processes each run the shard manager (reign_shard, balancing on, the
 * library's defaults) over the same R resource IDs; they start their
 * shards at one signal. We measure
 *   - convergence: time from the start signal until every resource has
 *     exactly one master and each instance holds within ±1 of ⌈R/M⌉
 *     (counts from reign_shard_balance_info; "exactly one" checked at the
 *     end by comparing the instances' held lists), and then, in steady
 *     state over a window,
 *   - backend requests per instance per renew tick (reign_factory_stats:
 *     batches and renew_batches per ttl/3),
 *   - CPU % of one core per instance (utime+stime from /proc/self/stat),
 *   - RSS per instance (VmRSS).
 * Children print status lines on stdout; during the window they print only
 * when asked, so the reporting does not cost CPU being measured. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "reign/reign.h"

#define INSTANCES 3
#define STATUS_NS (50 * BENCH_NS_PER_MS)

typedef struct status {
    bool valid;
    int64_t t_ns;
    long long held, target, fair, members;
    long long batches, renew_batches, acquires, renews, reads;
    long long cpu_ticks, rss_kb;
    long long lost; /* masterships lost since the factory opened */
} status;

/* ---- the child ------------------------------------------------------------- */

static void say_status(reign_factory *f, reign_shard *s)
{
    reign_shard_balance b;
    reign_stats st;
    if (reign_shard_balance_info(s, &b) != REIGN_OK || reign_factory_stats(f, &st) != REIGN_OK)
        bench_die("child: balance_info/stats: %s", reign_last_error());
    bench_say("S %lld %zu %zu %zu %zu %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
              " %lld %lld %" PRIu64,
              (long long)bench_now_ns(), b.held, b.target, b.fair_share, b.members, st.batches,
              st.renew_batches, st.ops_acquire, st.ops_renew, st.ops_read, bench_cpu_ticks(),
              bench_rss_kb(), st.lost);
}

static int dump_held(reign_shard *s, const char *path)
{
    char **held = NULL;
    if (reign_tracker_held(reign_shard_tracker(s), &held) != REIGN_OK)
        return -1;
    FILE *out = fopen(path, "we");
    if (out == NULL) {
        reign_strv_free(held);
        return -1;
    }
    for (char **p = held; *p != NULL; p++)
        fprintf(out, "%s\n", *p);
    reign_strv_free(held);
    return fclose(out) == 0 ? 0 : -1;
}

/* one line from stdin if one is ready within timeout_ns; 1, 0 (none) or -1 (EOF) */
static int stdin_line(char *line, size_t size, int64_t timeout_ns)
{
    static char buf[1024];
    static size_t len;
    for (;;) {
        char *nl = memchr(buf, '\n', len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - buf);
            snprintf(line, size, "%.*s", (int)n, buf);
            memmove(buf, nl + 1, len - n - 1);
            len -= n + 1;
            return 1;
        }
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        struct timespec ts = {timeout_ns / BENCH_NS_PER_S, timeout_ns % BENCH_NS_PER_S};
        int rc = ppoll(&pfd, 1, timeout_ns < 0 ? NULL : &ts, NULL);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return rc == 0 ? 0 : -1;
        if (len == sizeof buf)
            len = 0;
        ssize_t n = read(0, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        timeout_ns = 0;
    }
}

int bench_scale_child(const bench_opts *o)
{
    if (o->argc < 2)
        bench_die("_scale-child: need PREFIX INSTANCE_ID");
    long n = o->resources;
    reign_options opt = REIGN_OPTIONS_INIT;
    opt.ttl_ms = o->ttl_ms;
    opt.instance_id = o->argv[1];
    opt.logger = bench_logger;
    reign_factory *f = NULL;
    if (reign_factory_open(o->uri, &opt, &f) != REIGN_OK)
        bench_die("child: factory_open: %s", reign_last_error());
    char **ids = calloc((size_t)n, sizeof *ids);
    if (ids == NULL)
        bench_die("out of memory");
    for (long i = 0; i < n; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s/r%06ld", o->argv[0], i);
        ids[i] = strdup(buf);
        if (ids[i] == NULL)
            bench_die("out of memory");
    }
    reign_shard_config cfg = REIGN_SHARD_CONFIG_INIT;
    reign_shard *s = NULL;
    if (reign_shard_new(f, (const char *const *)ids, (size_t)n, &cfg, &s) != REIGN_OK)
        bench_die("child: shard_new: %s", reign_last_error());
    bench_say("READY");
    char line[512];
    if (stdin_line(line, sizeof line, -1) != 1 || strcmp(line, "GO") != 0)
        bench_die("child: expected GO");
    if (reign_shard_start(s) != REIGN_OK)
        bench_die("child: shard_start: %s", reign_last_error());

    bool quiet = false;
    for (;;) {
        int rc = stdin_line(line, sizeof line, quiet ? -1 : STATUS_NS);
        if (rc < 0)
            break;
        if (rc == 0) {
            say_status(f, s);
            continue;
        }
        if (strcmp(line, "QUIET") == 0) {
            quiet = true;
        } else if (strcmp(line, "STAT") == 0) {
            say_status(f, s);
        } else if (strncmp(line, "DUMP ", 5) == 0) {
            bench_say(dump_held(s, line + 5) == 0 ? "DUMPED" : "DUMP-FAILED");
        } else if (strcmp(line, "QUIT") == 0) {
            break;
        }
    }
    reign_shard_free(s);
    if (reign_factory_close(f) != REIGN_OK)
        bench_warn("child: factory_close: %s", reign_last_error());
    for (long i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return 0;
}

/* ---- the parent ----------------------------------------------------------------- */

static bool parse_status(const char *line, status *st)
{
    long long t;
    int k = sscanf(line, "S %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &t,
                   &st->held, &st->target, &st->fair, &st->members, &st->batches,
                   &st->renew_batches, &st->acquires, &st->renews, &st->reads, &st->cpu_ticks,
                   &st->rss_kb, &st->lost);
    if (k != 13)
        return false;
    st->t_ns = t;
    st->valid = true;
    return true;
}

/* Read lines from every child for up to `ns`, keeping the newest status of
 * each; stop early once `until` says so. */
static void pump(bench_child *c, status *last, int64_t ns, bool (*until)(const status *, long),
                 long n_res)
{
    int64_t deadline = bench_now_ns() + ns;
    for (;;) {
        struct pollfd pfd[INSTANCES];
        for (int k = 0; k < INSTANCES; k++)
            pfd[k] = (struct pollfd){.fd = c[k].out_fd, .events = POLLIN};
        int64_t left = deadline - bench_now_ns();
        if (left <= 0)
            return;
        int rc = poll(pfd, INSTANCES, (int)(left / BENCH_NS_PER_MS) + 1);
        if (rc < 0 && errno != EINTR)
            bench_die("poll: %s", strerror(errno));
        for (int k = 0; k < INSTANCES; k++) {
            if (rc <= 0 || pfd[k].revents == 0)
                continue;
            char line[512];
            int r;
            while ((r = bench_child_line(&c[k], line, sizeof line, 0)) == 1)
                if (line[0] == 'S')
                    parse_status(line, &last[k]);
            if (r < 0)
                bench_die("scale: instance %d exited", k);
        }
        if (until != NULL && until(last, n_res))
            return;
    }
}

/* Every resource held (the counts add up) and every instance holds what
 * the assignment gives it: the balancer has nothing left to move. */
static bool settled(const status *s, long n_res)
{
    long long sum = 0;
    for (int k = 0; k < INSTANCES; k++) {
        if (!s[k].valid || s[k].members != INSTANCES || s[k].held != s[k].target)
            return false;
        sum += s[k].held;
    }
    return sum == n_res;
}

/* The brief's balance criterion: each within ±1 of ⌈R/M⌉. */
static bool within_one(const status *s, long n_res)
{
    long long fair = (n_res + INSTANCES - 1) / INSTANCES;
    for (int k = 0; k < INSTANCES; k++)
        if (llabs(s[k].held - fair) > 1)
            return false;
    return true;
}

static int64_t newest(const status *s)
{
    int64_t t = 0;
    for (int k = 0; k < INSTANCES; k++)
        t = s[k].t_ns > t ? s[k].t_ns : t;
    return t;
}

/* ask every child for one status line and wait for them */
static void poll_stats(bench_child *c, status *out)
{
    for (int k = 0; k < INSTANCES; k++) {
        out[k].valid = false;
        if (bench_child_send(&c[k], "STAT") != 0)
            bench_die("scale: instance %d is gone", k);
    }
    for (int k = 0; k < INSTANCES; k++) {
        char line[512];
        while (!out[k].valid) {
            if (bench_child_line(&c[k], line, sizeof line, bench_now_ns() + 10 * BENCH_NS_PER_S) != 1)
                bench_die("scale: no status from instance %d", k);
            if (line[0] == 'S')
                parse_status(line, &out[k]);
        }
    }
}

/* Check the held lists: every resource held by exactly one instance. */
static bool exactly_one(bench_child *c, const char *dir, long n_res, long *missing, long *double_held)
{
    unsigned char *count = calloc((size_t)n_res, 1);
    if (count == NULL)
        bench_die("out of memory");
    bool ok = true;
    for (int k = 0; k < INSTANCES && ok; k++) {
        char path[512], cmd[600], line[512];
        snprintf(path, sizeof path, "%s/held-%d", dir, k);
        snprintf(cmd, sizeof cmd, "DUMP %s", path);
        if (bench_child_send(&c[k], cmd) != 0)
            bench_die("scale: instance %d is gone", k);
        for (;;) {
            if (bench_child_line(&c[k], line, sizeof line, bench_now_ns() + 10 * BENCH_NS_PER_S) != 1)
                bench_die("scale: instance %d did not dump", k);
            if (strcmp(line, "DUMPED") == 0)
                break;
            if (strcmp(line, "DUMP-FAILED") == 0)
                bench_die("scale: instance %d could not write %s", k, path);
        }
        FILE *in = fopen(path, "re");
        if (in == NULL)
            bench_die("scale: cannot read %s", path);
        while (fgets(line, sizeof line, in) != NULL) {
            char *r = strrchr(line, 'r');
            long i = r ? strtol(r + 1, NULL, 10) : -1;
            if (i >= 0 && i < n_res && count[i] < 255)
                count[i]++;
        }
        fclose(in);
        unlink(path);
    }
    *missing = *double_held = 0;
    for (long i = 0; i < n_res; i++) {
        *missing += count[i] == 0;
        *double_held += count[i] > 1;
    }
    free(count);
    return *missing == 0 && *double_held == 0;
}

int bench_scale(const bench_opts *o)
{
    long n_res = o->resources > 0 ? o->resources : (o->quick ? 1000 : 10000);
    int64_t ttl = o->ttl_ms > 0 ? o->ttl_ms : 10000;
    /* a whole number of renew ticks: 2 (quick) or 9 */
    int64_t window_ms = o->window_ms > 0 ? o->window_ms : ttl / 3 * (o->quick ? 2 : 9);
    double budget_s = o->budget_s > 0 ? o->budget_s : (o->quick ? 40 : 120);
    int64_t tick_ns = ttl * BENCH_NS_PER_MS / 3;
    long ticks_per_s = sysconf(_SC_CLK_TCK);

    char dir[] = "/tmp/reign-bench-scale.XXXXXX";
    if (mkdtemp(dir) == NULL)
        bench_die("mkdtemp: %s", strerror(errno));
    char prefix[160], ttl_s[32], res_s[32];
    snprintf(prefix, sizeof prefix, "%s/scale", bench_run_prefix());
    snprintf(ttl_s, sizeof ttl_s, "%lld", (long long)ttl);
    snprintf(res_s, sizeof res_s, "%ld", n_res);

    bench_child c[INSTANCES];
    status last[INSTANCES] = {{0}};
    for (int k = 0; k < INSTANCES; k++) {
        char inst[64];
        snprintf(inst, sizeof inst, "bench-scale-%d-%ld", k, (long)getpid());
        char *argv[] = {(char *)bench_self(), "_scale-child", "--backend", (char *)o->backend,
                        "--uri", (char *)o->uri, "--ttl", ttl_s, "--resources", res_s, prefix,
                        inst, NULL};
        if (bench_child_spawn(&c[k], argv) != 0)
            bench_die("cannot start instance %d", k);
    }
    for (int k = 0; k < INSTANCES; k++) {
        char line[512];
        if (bench_child_line(&c[k], line, sizeof line, bench_now_ns() + 60 * BENCH_NS_PER_S) != 1 ||
            strcmp(line, "READY") != 0)
            bench_die("scale: instance %d did not get ready", k);
    }
    int64_t t_go = bench_now_ns();
    for (int k = 0; k < INSTANCES; k++)
        if (bench_child_send(&c[k], "GO") != 0)
            bench_die("scale: instance %d is gone", k);

    /* convergence: first master anywhere, every resource held, settled */
    double first_s = NAN, complete_s = NAN, converge_s = NAN;
    int64_t give_up = t_go + (int64_t)(budget_s * 1e9);
    /* progress on stderr every 5 s ($REIGN_BENCH_PROGRESS_MS to change) */
    int64_t every_ns = 5 * BENCH_NS_PER_S;
    if (getenv("REIGN_BENCH_PROGRESS_MS") != NULL)
        every_ns = atoll(getenv("REIGN_BENCH_PROGRESS_MS")) * BENCH_NS_PER_MS;
    if (every_ns <= 0)
        every_ns = 5 * BENCH_NS_PER_S;
    int64_t next_report = t_go + every_ns;
    while (bench_now_ns() < give_up) {
        pump(c, last, 100 * BENCH_NS_PER_MS, settled, n_res);
        long long sum = last[0].held + last[1].held + last[2].held;
        if (isnan(first_s) && sum > 0)
            first_s = (double)(newest(last) - t_go) / 1e9;
        if (isnan(complete_s) && sum == n_res)
            complete_s = (double)(newest(last) - t_go) / 1e9;
        if (settled(last, n_res)) {
            converge_s = (double)(newest(last) - t_go) / 1e9;
            break;
        }
        if (bench_now_ns() >= next_report) {
            fprintf(stderr, "scale %s: %.1f s: held %lld/%lld/%lld of targets %lld/%lld/%lld, members %lld/%lld/%lld\n",
                    o->backend, (double)(bench_now_ns() - t_go) / 1e9, last[0].held, last[1].held,
                    last[2].held, last[0].target, last[1].target, last[2].target, last[0].members,
                    last[1].members, last[2].members);
            next_report += every_ns;
        }
    }
    bool balanced = !isnan(converge_s) && within_one(last, n_res);
    long long lo = last[0].held, hi = last[0].held;
    for (int k = 1; k < INSTANCES; k++) {
        lo = last[k].held < lo ? last[k].held : lo;
        hi = last[k].held > hi ? last[k].held : hi;
    }
    for (int k = 0; k < INSTANCES; k++)
        if (bench_child_send(&c[k], "QUIET") != 0)
            bench_die("scale: instance %d is gone", k);
    pump(c, last, 200 * BENCH_NS_PER_MS, NULL, n_res); /* drain what was in flight */
    long missing = 0, double_held = 0;
    bool one = exactly_one(c, dir, n_res, &missing, &double_held);

    /* steady state: let the start's traffic pass (a renew tick), then the
     * window; --quick only validates, so it does not wait */
    if (!o->quick)
        bench_sleep_ns(tick_ns);
    status a[INSTANCES], b[INSTANCES];
    poll_stats(c, a);
    bench_sleep_ns(window_ms * BENCH_NS_PER_MS);
    poll_stats(c, b);

    bench_samples batches = {0}, renew_batches = {0}, cpu = {0}, rss = {0}, ops = {0};
    bench_samples acq = {0}, ren = {0}, rd = {0};
    long long lost = 0;
    for (int k = 0; k < INSTANCES; k++) {
        double secs = (double)(b[k].t_ns - a[k].t_ns) / 1e9;
        double ticks = (double)(b[k].t_ns - a[k].t_ns) / (double)tick_ns;
        bench_samples_add(&batches, (double)(b[k].batches - a[k].batches) / ticks);
        bench_samples_add(&renew_batches, (double)(b[k].renew_batches - a[k].renew_batches) / ticks);
        bench_samples_add(&ops, (double)((b[k].acquires - a[k].acquires) + (b[k].renews - a[k].renews) +
                                         (b[k].reads - a[k].reads)) / ticks);
        lost += b[k].lost - a[k].lost;
        bench_samples_add(&acq, (double)(b[k].acquires - a[k].acquires) / ticks);
        bench_samples_add(&ren, (double)(b[k].renews - a[k].renews) / ticks);
        bench_samples_add(&rd, (double)(b[k].reads - a[k].reads) / ticks);
        bench_samples_add(&cpu, (double)(b[k].cpu_ticks - a[k].cpu_ticks) / (double)ticks_per_s /
                                    secs * 100.0);
        bench_samples_add(&rss, (double)b[k].rss_kb / 1024.0);
    }

    char title[512];
    snprintf(title, sizeof title,
             "scale, %s: %ld resources, %d instances (processes), shard defaults, TTL %lld ms\n"
             "first master %.2f s, all held %.2f s, settled (held = target) %.2f s after the start;\n"
             "held %lld..%lld, within +-1 of ceil(R/M) = %ld: %s; exactly one master each: %s "
             "(%ld missing, %ld double)\nsteady state over %lld ms, one sample per instance",
             o->backend, n_res, INSTANCES, (long long)ttl, first_s, complete_s, converge_s, lo, hi,
             (n_res + INSTANCES - 1) / INSTANCES, balanced ? "yes" : "NO", one ? "yes" : "NO",
             missing, double_held, (long long)window_ms);
    bench_table_header(title);
    bench_table_row("batches per renew tick (ttl/3)", &batches, "");
    bench_table_row("renew batches per renew tick", &renew_batches, "");
    bench_table_row("ops per renew tick", &ops, "");
    bench_table_row("  of them ACQUIRE", &acq, "");
    bench_table_row("  of them RENEW", &ren, "");
    bench_table_row("  of them READ", &rd, "");
    bench_table_row("CPU, % of one core", &cpu, "%");
    bench_table_row("RSS", &rss, "MiB");
    for (int k = 0; k < INSTANCES; k++)
        printf("instance %d: held %lld, fair share %lld, members %lld\n", k, b[k].held, b[k].fair,
               b[k].members);
    printf("masterships lost during the window, all instances: %lld\n", lost);

    char note[128];
    snprintf(note, sizeof note, "%ld resources, %d instances, TTL %lld ms", n_res, INSTANCES,
             (long long)ttl);
    bench_result(o->backend, "scale_first_s", first_s, "s", 1, note);
    bench_result(o->backend, "scale_complete_s", complete_s, "s", 1, note);
    bench_result(o->backend, "scale_converge_s", converge_s, "s", 1, note);
    bench_result(o->backend, "scale_within_one", balanced ? 1 : 0, "", 1, note);
    bench_result(o->backend, "scale_held_min", (double)lo, "", 1, note);
    bench_result(o->backend, "scale_held_max", (double)hi, "", 1, note);
    bench_result(o->backend, "scale_exactly_one", one ? 1 : 0, "", 1, note);
    bench_result(o->backend, "scale_missing", (double)missing, "", 1, "resources without a master");
    bench_result(o->backend, "scale_double", (double)double_held, "", 1, "resources with 2+ masters");
    bench_result(o->backend, "scale_batches_per_tick", bench_pct(&batches, 100), "", INSTANCES,
                 "max over instances");
    bench_result(o->backend, "scale_renew_batches_per_tick", bench_pct(&renew_batches, 100), "",
                 INSTANCES, "max over instances");
    bench_result(o->backend, "scale_ops_per_tick", bench_pct(&ops, 100), "", INSTANCES,
                 "max over instances");
    bench_result(o->backend, "scale_acquire_per_tick", bench_pct(&acq, 100), "", INSTANCES,
                 "max over instances");
    bench_result(o->backend, "scale_renew_per_tick", bench_pct(&ren, 100), "", INSTANCES,
                 "max over instances");
    bench_result(o->backend, "scale_read_per_tick", bench_pct(&rd, 100), "", INSTANCES,
                 "max over instances");
    bench_result(o->backend, "scale_lost_in_window", (double)lost, "", INSTANCES,
                 "masterships lost in the window, all instances");
    bench_result(o->backend, "scale_cpu_pct", bench_pct(&cpu, 100), "%", INSTANCES,
                 "max over instances");
    bench_result(o->backend, "scale_rss_mib", bench_pct(&rss, 100), "MiB", INSTANCES,
                 "max over instances");
    bench_result(o->backend, "scale_window_s", (double)window_ms / 1000.0, "s", 1, note);
    bench_samples_free(&batches);
    bench_samples_free(&renew_batches);
    bench_samples_free(&ops);
    bench_samples_free(&acq);
    bench_samples_free(&ren);
    bench_samples_free(&rd);
    bench_samples_free(&cpu);
    bench_samples_free(&rss);

    /* QUIT all at once, then give them 30 s together to resign and close */
    for (int k = 0; k < INSTANCES; k++)
        bench_child_send(&c[k], "QUIT");
    int64_t quit_by = bench_now_ns() + 30 * BENCH_NS_PER_S;
    for (int k = 0; k < INSTANCES; k++) {
        int64_t left_ms = (quit_by - bench_now_ns()) / BENCH_NS_PER_MS;
        bench_child_end(&c[k], 0, left_ms > 0 ? left_ms : 0);
    }
    rmdir(dir);
    return 0;
}
