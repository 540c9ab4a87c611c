/* The chaos driver: starts N workers on R resources and, until enough
 * failovers were seen or the time is up, injects one fault at a time, drawn
 * with a seeded generator (the seed is printed first, so a run can be
 * repeated): SIGKILL of a master (restarted cleanly a little later), SIGSTOP
 * of a master for longer than the TTL, a graceful resign, and with a server
 * (--server-ctl) its restart and its pause for less and for more than the
 * TTL. It learns who is master of what by tailing the workers' logs and
 * writes what it did to driver.log, which the checker reads with them.
 *
 * Faults never overlap: each is over (the server resumed, the worker
 * continued) and, after a server fault, every master has had the time to
 * renew or lose before the next one starts. docs/safety.md says why. */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "chaos.h"

#define MAX_WORKERS 64
#define MAX_RES 1024

/* server-failover (a Sentinel failover: `ctl failover`) only when asked
 * for with --faults: most servers have no replica to fail over to. */
enum fault {
    F_KILL, F_STOP, F_RESIGN, F_SERVER_RESTART, F_SERVER_PAUSE_SHORT, F_SERVER_PAUSE_LONG,
    F_SERVER_FAILOVER, F_COUNT
};
static const char *const fault_names[F_COUNT] = {"kill", "stop", "resign", "server-restart",
                                                 "server-pause-short", "server-pause-long",
                                                 "server-failover"};
static const int fault_weight[F_COUNT] = {3, 2, 2, 1, 1, 1, 2};

typedef struct worker_slot {
    pid_t pid;               /* 0: not running */
    int incarnation;
    bool runner;
    chaos_tail tail;         /* the current incarnation's log */
    int64_t restart_at;      /* 0: no restart scheduled */
    bool killed_by_us;
} worker_slot;

typedef struct driver {
    const char *worker_path, *uri, *dir, *server_ctl, *backend;
    int n_workers, n_res, runner_workers;
    int64_t ttl_ms, poll_us;
    int64_t failovers_wanted;
    int64_t duration_ns;
    uint64_t seed, rng;
    bool enabled[F_COUNT];
    FILE *log;
    worker_slot w[MAX_WORKERS];
    pid_t master[MAX_RES];       /* who is master (from the logs); 0 = nobody */
    pid_t last_holder[MAX_RES];  /* who opened last */
    int64_t failovers;
    int64_t faults[F_COUNT];
    int64_t restarts;
    int unexpected_exits;
    int64_t t_start;
} driver;

/* SIGINT/SIGTERM: stop injecting, end the workers cleanly, write the log. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void dlog(driver *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(d->log, fmt, ap);
    va_end(ap);
    fputc('\n', d->log);
    fflush(d->log);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chaos driver: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static uint64_t rnd(driver *d)
{
    uint64_t z = (d->rng += 0x9E3779B97F4A7C15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static int64_t rnd_range(driver *d, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(rnd(d) % (uint64_t)(hi - lo));
}

static double secs(driver *d, int64_t t)
{
    return (double)(t - d->t_start) / 1e9;
}

/* ---- workers ------------------------------------------------------------------ */

static void spawn(driver *d, int i)
{
    worker_slot *s = &d->w[i];
    char log_path[4096], err_path[4096], idx[16], nres[16], ttl[16], poll[16];
    s->incarnation++;
    snprintf(log_path, sizeof log_path, "%s/w%d.%d.log", d->dir, i, s->incarnation);
    snprintf(err_path, sizeof err_path, "%s/w%d.%d.err", d->dir, i, s->incarnation);
    snprintf(idx, sizeof idx, "%d", i);
    snprintf(nres, sizeof nres, "%d", d->n_res);
    snprintf(ttl, sizeof ttl, "%" PRId64, d->ttl_ms);
    snprintf(poll, sizeof poll, "%" PRId64, d->poll_us);
    /* Create the log first so the tail can open it at once. */
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        die("create %s: %s", log_path, strerror(errno));
    close(fd);

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int efd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (efd >= 0) {
            dup2(efd, 1);
            dup2(efd, 2);
            close(efd);
        }
        char *args[20];
        int n = 0;
        args[n++] = (char *)d->worker_path;
        args[n++] = "--uri";
        args[n++] = (char *)d->uri;
        args[n++] = "--log";
        args[n++] = log_path;
        args[n++] = "--index";
        args[n++] = idx;
        args[n++] = "--resources";
        args[n++] = nres;
        args[n++] = "--ttl-ms";
        args[n++] = ttl;
        args[n++] = "--poll-us";
        args[n++] = poll;
        if (s->runner)
            args[n++] = "--runner";
        args[n] = NULL;
        execv(d->worker_path, args);
        fprintf(stderr, "exec %s: %s\n", d->worker_path, strerror(errno));
        _exit(127);
    }
    chaos_tail_close(&s->tail);
    if (chaos_tail_open(&s->tail, log_path) != 0)
        die("open %s: %s", log_path, strerror(errno));
    s->pid = pid;
    s->restart_at = 0;
    s->killed_by_us = false;
    dlog(d, "spawn %d %d %" PRId64 " %s", i, (int)pid, chaos_now_ns(), log_path);
}

/* Read what the workers logged since the last call. */
static void pump_one(driver *d, int i)
{
    worker_slot *s = &d->w[i];
    char *line;
    while ((line = chaos_tail_next(&s->tail)) != NULL) {
        char *f[CHAOS_MAX_FIELDS];
        size_t n = chaos_split(line, f);
        int64_t res;
        if (n >= 2 && strcmp(f[0], "error") == 0) {
            fprintf(stderr, "chaos driver: worker %d: %s\n", i, n > 2 ? f[2] : "");
            continue;
        }
        if (n < 3 || chaos_parse_i64(f[1], &res) != 0 || res < 0 || res >= d->n_res)
            continue;
        if (strcmp(f[0], "open") == 0) {
            if (d->last_holder[res] != 0 && d->last_holder[res] != s->pid)
                d->failovers++;
            d->last_holder[res] = s->pid;
            d->master[res] = s->pid;
        } else if (strcmp(f[0], "close") == 0 && d->master[res] == s->pid) {
            d->master[res] = 0;
        }
    }
}

static void pump(driver *d)
{
    for (int i = 0; i < d->n_workers; i++)
        pump_one(d, i);
}

static int slot_of(driver *d, pid_t pid)
{
    for (int i = 0; i < d->n_workers; i++)
        if (d->w[i].pid == pid)
            return i;
    return -1;
}

static void forget_master(driver *d, pid_t pid)
{
    for (int r = 0; r < d->n_res; r++)
        if (d->master[r] == pid)
            d->master[r] = 0;
}

/* A worker process ended (reaped). */
static void on_exit_status(driver *d, pid_t pid, int status)
{
    int i = slot_of(d, pid);
    dlog(d, "exit %d %d %" PRId64, (int)pid, status, chaos_now_ns());
    if (i < 0)
        return;
    worker_slot *s = &d->w[i];
    pump_one(d, i); /* its last lines */
    forget_master(d, pid);
    if (!s->killed_by_us) {
        d->unexpected_exits++;
        fprintf(stderr,
                "chaos driver: worker %d (pid %d) exited by itself (%s %d); see %s/w%d.%d.err\n", i,
                (int)pid, WIFSIGNALED(status) ? "signal" : "status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), d->dir, i,
                s->incarnation);
        s->restart_at = chaos_now_ns() + d->ttl_ms * CHAOS_NS_PER_MS;
    }
    s->pid = 0;
}

static void reap(driver *d)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        on_exit_status(d, pid, status);
    }
}

static void restart_due(driver *d)
{
    int64_t now = chaos_now_ns();
    for (int i = 0; i < d->n_workers; i++) {
        worker_slot *s = &d->w[i];
        if (s->pid == 0 && s->restart_at != 0 && now >= s->restart_at) {
            spawn(d, i);
            d->restarts++;
        }
    }
}

/* Sleep while following the logs and the children. */
static void dsleep(driver *d, int64_t ns)
{
    int64_t until = chaos_now_ns() + ns;
    for (;;) {
        pump(d);
        reap(d);
        int64_t left = until - chaos_now_ns();
        if (left <= 0 || interrupted)
            return;
        chaos_sleep_ns(left < 5 * CHAOS_NS_PER_MS ? left : 5 * CHAOS_NS_PER_MS);
    }
}

/* ---- faults --------------------------------------------------------------------- */

/* A random resource with a live master, or -1. */
static int pick_mastered(driver *d)
{
    int cand[MAX_RES], n = 0;
    for (int r = 0; r < d->n_res; r++)
        if (d->master[r] != 0 && slot_of(d, d->master[r]) >= 0)
            cand[n++] = r;
    return n == 0 ? -1 : cand[rnd(d) % (uint64_t)n];
}

static void server_ctl(driver *d, const char *op)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s", d->server_ctl, op);
    fflush(NULL);
    int rc = system(cmd);
    if (rc != 0)
        die("server control failed (%d): %s", rc, cmd);
}

/* Freeze a worker: ask it to stop itself right after one more look at every
 * resource (SIGUSR2; it logs the bound that holds at the freeze), so its
 * engines freeze wherever they are but its observer is microseconds fresh;
 * a worker that has not stopped within 500 ms gets a plain SIGSTOP. Then
 * wait until every thread stopped: from the returned time on it runs no
 * code. Returns -1 if it exited instead (already handled). */
static int64_t freeze(driver *d, pid_t pid)
{
    int status = 0;
    pid_t got = 0;
    if (sigqueue(pid, SIGUSR2, (union sigval){.sival_int = 0}) != 0)
        die("sigqueue %d: %s", (int)pid, strerror(errno));
    for (int i = 0; i < 500 && got == 0; i++) {
        got = waitpid(pid, &status, WUNTRACED | WNOHANG);
        if (got == 0)
            chaos_sleep_ns(CHAOS_NS_PER_MS);
        else if (got < 0 && errno == EINTR)
            got = 0;
    }
    if (got == 0) {
        if (kill(pid, SIGSTOP) != 0)
            die("stop %d: %s", (int)pid, strerror(errno));
        while ((got = waitpid(pid, &status, WUNTRACED)) < 0 && errno == EINTR)
            ;
    }
    if (got != pid)
        die("waitpid %d: %s", (int)pid, strerror(errno));
    int64_t t = chaos_now_ns();
    if (!WIFSTOPPED(status)) { /* it died on its own meanwhile */
        on_exit_status(d, pid, status);
        return -1;
    }
    return t;
}

static void fault_kill(driver *d, int res)
{
    pid_t pid = d->master[res];
    int i = slot_of(d, pid);
    int status;
    d->w[i].killed_by_us = true;
    /* Frozen first, so the checker has an exact end for backends whose
     * lease dies with its holder (the kernel frees the file lock only once
     * the SIGKILL below is processed). */
    int64_t t_frozen = freeze(d, pid);
    if (t_frozen < 0)
        return;
    if (kill(pid, SIGKILL) != 0)
        die("kill %d: %s", (int)pid, strerror(errno));
    int64_t t_killed = chaos_now_ns();
    dlog(d, "kill %d %" PRId64 " %" PRId64, (int)pid, t_frozen, t_killed);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    on_exit_status(d, pid, status);
    /* A clean restart of the killed worker, after a while. */
    d->w[i].restart_at = chaos_now_ns() + rnd_range(d, 0, 2 * d->ttl_ms) * CHAOS_NS_PER_MS;
}

static void fault_stop(driver *d, int res)
{
    pid_t pid = d->master[res];
    /* Longer than the TTL: others must take over, and the stopped process
     * must not believe past its deadline once it runs again. */
    int64_t ms = rnd_range(d, d->ttl_ms * 11 / 10, d->ttl_ms * 25 / 10);
    int64_t t0 = freeze(d, pid);
    if (t0 < 0)
        return;
    dsleep(d, ms * CHAOS_NS_PER_MS);
    int64_t t1 = chaos_now_ns();
    if (kill(pid, SIGCONT) != 0)
        die("continue %d: %s", (int)pid, strerror(errno));
    dlog(d, "stop %d %" PRId64 " %" PRId64, (int)pid, t0, t1);
}

static void fault_resign(driver *d, int res)
{
    pid_t pid = d->master[res];
    union sigval v = {.sival_int = res};
    if (sigqueue(pid, SIGUSR1, v) != 0)
        die("sigqueue %d: %s", (int)pid, strerror(errno));
    dlog(d, "resign %d %d %" PRId64, (int)pid, res, chaos_now_ns());
}

static void fault_server_pause(driver *d, int64_t ms)
{
    server_ctl(d, "pause");
    int64_t t0 = chaos_now_ns();
    dsleep(d, ms * CHAOS_NS_PER_MS);
    int64_t t1 = chaos_now_ns();
    server_ctl(d, "resume");
    dlog(d, "server pause %" PRId64 " %" PRId64, t0, t1);
}

static void fault_server_restart(driver *d)
{
    int64_t t0 = chaos_now_ns();
    server_ctl(d, "restart");
    int64_t t1 = chaos_now_ns();
    dlog(d, "server restart %" PRId64 " %" PRId64, t0, t1);
}

static void fault_server_failover(driver *d)
{
    int64_t t0 = chaos_now_ns();
    server_ctl(d, "failover");
    int64_t t1 = chaos_now_ns();
    dlog(d, "server failover %" PRId64 " %" PRId64, t0, t1);
}

static enum fault draw_fault(driver *d)
{
    int total = 0;
    for (int f = 0; f < F_COUNT; f++)
        total += d->enabled[f] ? fault_weight[f] : 0;
    int x = (int)(rnd(d) % (uint64_t)total);
    for (int f = 0; f < F_COUNT; f++) {
        if (!d->enabled[f])
            continue;
        if (x < fault_weight[f])
            return (enum fault)f;
        x -= fault_weight[f];
    }
    return F_KILL;
}

/* Inject one fault; returns how long to let things settle afterwards. */
static int64_t inject(driver *d)
{
    enum fault f = draw_fault(d);
    int64_t ttl = d->ttl_ms;
    int res = -1;
    if (f == F_KILL || f == F_STOP || f == F_RESIGN) {
        res = pick_mastered(d);
        if (res < 0)
            return ttl / 10; /* nobody to hit yet */
    }
    d->faults[f]++;
    switch (f) {
    case F_KILL: fault_kill(d, res); break;
    case F_STOP: fault_stop(d, res); break;
    case F_RESIGN: fault_resign(d, res); break;
    case F_SERVER_RESTART: fault_server_restart(d); break;
    case F_SERVER_PAUSE_SHORT: fault_server_pause(d, rnd_range(d, ttl / 5, ttl * 8 / 10)); break;
    case F_SERVER_PAUSE_LONG: fault_server_pause(d, rnd_range(d, ttl * 12 / 10, ttl * 3)); break;
    case F_SERVER_FAILOVER: fault_server_failover(d); break;
    default: break;
    }
    /* After a server fault every master must renew or lose before the next
     * fault (a RENEW that failed moved its bound; see docs/safety.md). */
    if (f >= F_SERVER_RESTART)
        return rnd_range(d, ttl * 15 / 10, ttl * 25 / 10);
    return rnd_range(d, ttl * 3 / 10, ttl);
}

/* ---- main ----------------------------------------------------------------------- */

static void stop_all(driver *d)
{
    for (int i = 0; i < d->n_workers; i++) {
        if (d->w[i].pid == 0)
            continue;
        kill(d->w[i].pid, SIGCONT);
        kill(d->w[i].pid, SIGTERM);
        d->w[i].killed_by_us = true; /* an exit on request is expected */
        d->w[i].restart_at = 0;
    }
    int64_t give_up = chaos_now_ns() + 30 * CHAOS_NS_PER_S;
    for (;;) {
        bool any = false;
        for (int i = 0; i < d->n_workers; i++)
            any |= d->w[i].pid != 0;
        if (!any)
            break;
        if (chaos_now_ns() > give_up) {
            for (int i = 0; i < d->n_workers; i++) {
                pid_t pid = d->w[i].pid;
                if (pid == 0)
                    continue;
                fprintf(stderr, "chaos driver: worker %d (pid %d) ignored SIGTERM for 30 s\n", i,
                        (int)pid);
                d->unexpected_exits++;
                int64_t t0 = chaos_now_ns();
                kill(pid, SIGKILL);
                dlog(d, "kill %d %" PRId64 " %" PRId64, (int)pid, t0, chaos_now_ns());
            }
            give_up = chaos_now_ns() + 60 * CHAOS_NS_PER_S;
        }
        dsleep(d, 10 * CHAOS_NS_PER_MS);
    }
    for (int i = 0; i < d->n_workers; i++) {
        pump_one(d, i);
        chaos_tail_close(&d->w[i].tail);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: reign_chaos_driver --worker PATH --uri URI --dir LOGDIR [--backend NAME]\n"
            "         [--workers N] [--resources R] [--ttl-ms T] [--failovers N] [--duration S]\n"
            "         [--seed S] [--server-ctl 'CMD PREFIX'] [--runner-workers K]\n"
            "         [--faults kill,stop,resign,server-restart,server-pause-short,server-pause-long,\n"
            "                   server-failover]\n"
            "         [--poll-us U]\n");
    exit(2);
}

static int64_t arg_num(const char *name, const char *v, int64_t lo, int64_t hi)
{
    int64_t n;
    if (v == NULL || chaos_parse_i64(v, &n) != 0 || n < lo || n > hi)
        die("%s wants a number in %" PRId64 "..%" PRId64 ", got %s", name, lo, hi,
            v ? v : "nothing");
    return n;
}

static void parse_faults(driver *d, const char *list)
{
    char *copy = strdup(list);
    if (copy == NULL)
        die("out of memory");
    memset(d->enabled, 0, sizeof d->enabled);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int f = 0;
        while (f < F_COUNT && strcmp(tok, fault_names[f]) != 0)
            f++;
        if (f == F_COUNT)
            die("unknown fault \"%s\"", tok);
        d->enabled[f] = true;
    }
    free(copy);
}

int main(int argc, char **argv)
{
    static driver dv;
    driver *d = &dv;
    d->n_workers = 4;
    d->n_res = 8;
    d->ttl_ms = 500;
    d->poll_us = 500;
    d->runner_workers = -1;
    d->backend = "?";
    bool seeded = false;
    const char *faults = NULL;
    for (int f = 0; f < F_COUNT; f++)
        d->enabled[f] = f != F_SERVER_FAILOVER;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--worker") == 0 && v) d->worker_path = argv[++i];
        else if (strcmp(a, "--uri") == 0 && v) d->uri = argv[++i];
        else if (strcmp(a, "--dir") == 0 && v) d->dir = argv[++i];
        else if (strcmp(a, "--backend") == 0 && v) d->backend = argv[++i];
        else if (strcmp(a, "--server-ctl") == 0 && v) d->server_ctl = argv[++i];
        else if (strcmp(a, "--faults") == 0 && v) faults = argv[++i];
        else if (strcmp(a, "--workers") == 0) { d->n_workers = (int)arg_num(a, v, 2, MAX_WORKERS); i++; }
        else if (strcmp(a, "--resources") == 0) { d->n_res = (int)arg_num(a, v, 1, MAX_RES); i++; }
        else if (strcmp(a, "--ttl-ms") == 0) { d->ttl_ms = arg_num(a, v, 100, 600000); i++; }
        else if (strcmp(a, "--poll-us") == 0) { d->poll_us = arg_num(a, v, 50, 1000); i++; }
        else if (strcmp(a, "--failovers") == 0) { d->failovers_wanted = arg_num(a, v, 0, INT64_MAX); i++; }
        else if (strcmp(a, "--duration") == 0) { d->duration_ns = arg_num(a, v, 0, 86400 * 7) * CHAOS_NS_PER_S; i++; }
        else if (strcmp(a, "--runner-workers") == 0) { d->runner_workers = (int)arg_num(a, v, 0, MAX_WORKERS); i++; }
        else if (strcmp(a, "--seed") == 0) {
            int64_t s = arg_num(a, v, 0, INT64_MAX);
            d->seed = (uint64_t)s;
            seeded = true;
            i++;
        } else usage();
    }
    if (d->worker_path == NULL || d->uri == NULL || d->dir == NULL)
        usage();
    if (faults != NULL)
        parse_faults(d, faults);
    if (d->server_ctl == NULL) /* no server (file backend): server faults are skipped */
        d->enabled[F_SERVER_RESTART] = d->enabled[F_SERVER_PAUSE_SHORT] =
            d->enabled[F_SERVER_PAUSE_LONG] = d->enabled[F_SERVER_FAILOVER] = false;
    bool any = false;
    for (int f = 0; f < F_COUNT; f++)
        any |= d->enabled[f];
    if (!any)
        die("no fault enabled");
    if (d->failovers_wanted == 0 && d->duration_ns == 0)
        d->failovers_wanted = 50;
    if (d->runner_workers < 0)
        d->runner_workers = d->n_workers / 2;
    if (!seeded)
        d->seed = (uint64_t)chaos_now_ns() ^ ((uint64_t)getpid() << 20);
    d->rng = d->seed;
    if (mkdir(d->dir, 0755) != 0 && errno != EEXIST)
        die("mkdir %s: %s", d->dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/driver.log", d->dir);
    d->log = fopen(path, "w");
    if (d->log == NULL)
        die("create %s: %s", path, strerror(errno));

    /* The driver times the faults: a stop is recorded when waitpid says
     * every thread stopped, and on a loaded machine an ordinary process can
     * learn that hundreds of ms late, which loosens the checker's bounds.
     * Realtime when allowed; children (workers, server scripts) go back to
     * the ordinary policy. */
    struct sched_param sp = {.sched_priority = 20};
    bool realtime = sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) == 0;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    d->t_start = chaos_now_ns();
    printf("chaos: seed %" PRIu64 "  backend %s  workers %d (%d with runners)  resources %d  "
           "ttl %" PRId64 " ms  target %" PRId64 " failovers / %" PRId64 " s\n",
           d->seed, d->backend, d->n_workers, d->runner_workers, d->n_res, d->ttl_ms,
           d->failovers_wanted, d->duration_ns / CHAOS_NS_PER_S);
    printf("chaos: driver %s; faults:", realtime ? "realtime" : "not realtime (no permission)");
    for (int f = 0; f < F_COUNT; f++)
        if (d->enabled[f])
            printf(" %s", fault_names[f]);
    printf("\n");
    fflush(stdout);
    dlog(d, "start %" PRIu64 " %" PRId64 " %s %" PRId64 " %d %d", d->seed, d->t_start, d->backend,
         d->ttl_ms, d->n_workers, d->n_res);

    for (int i = 0; i < d->n_workers; i++) {
        d->w[i].runner = i < d->runner_workers;
        spawn(d, i);
    }
    /* Let every resource find a master before the first fault. */
    int64_t warm_until = chaos_now_ns() + 10 * CHAOS_NS_PER_S;
    for (;;) {
        dsleep(d, 20 * CHAOS_NS_PER_MS);
        int held = 0;
        for (int r = 0; r < d->n_res; r++)
            held += d->master[r] != 0;
        if (held == d->n_res || chaos_now_ns() > warm_until)
            break;
    }

    int64_t deadline = d->duration_ns > 0 ? d->t_start + d->duration_ns : INT64_MAX;
    int64_t next_report = chaos_now_ns() + 10 * CHAOS_NS_PER_S;
    int64_t failovers_at_start = d->failovers;
    while (!interrupted && chaos_now_ns() < deadline &&
           (d->failovers_wanted == 0 || d->failovers - failovers_at_start < d->failovers_wanted)) {
        restart_due(d);
        int64_t settle_ms = inject(d);
        dsleep(d, settle_ms * CHAOS_NS_PER_MS);
        if (chaos_now_ns() >= next_report) {
            printf("chaos: %6.1f s  %" PRId64 " failovers  faults: kill %" PRId64 " stop %" PRId64
                   " resign %" PRId64 " server %" PRId64 "\n",
                   secs(d, chaos_now_ns()), d->failovers - failovers_at_start, d->faults[F_KILL],
                   d->faults[F_STOP], d->faults[F_RESIGN],
                   d->faults[F_SERVER_RESTART] + d->faults[F_SERVER_PAUSE_SHORT] +
                       d->faults[F_SERVER_PAUSE_LONG]);
            fflush(stdout);
            next_report += 10 * CHAOS_NS_PER_S;
        }
    }
    int64_t failovers = d->failovers - failovers_at_start;
    stop_all(d);
    dlog(d, "end %" PRId64 " %" PRId64, chaos_now_ns(), failovers);
    fclose(d->log);

    printf("chaos: done in %.1f s: %" PRId64 " failovers; faults:", secs(d, chaos_now_ns()),
           failovers);
    for (int f = 0; f < F_COUNT; f++)
        if (d->enabled[f])
            printf(" %s %" PRId64, fault_names[f], d->faults[f]);
    printf("; worker restarts %" PRId64 "; unexpected worker exits %d%s\n", d->restarts,
           d->unexpected_exits, interrupted ? "; INTERRUPTED" : "");
    return interrupted ? 2 : d->unexpected_exits == 0 ? 0 : 1;
}
