/* Helpers of reign_bench: the clock, percentiles, result rows, /proc
 * readings and child processes with line-based pipes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "reign/reign.h"

/* ---- time ---------------------------------------------------------------- */

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * BENCH_NS_PER_S + ts.tv_nsec;
}

void bench_sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / BENCH_NS_PER_S, .tv_nsec = ns % BENCH_NS_PER_S};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- samples ---------------------------------------------------------------- */

void bench_samples_add(bench_samples *s, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        double *nv = realloc(s->v, cap * sizeof *nv);
        if (nv == NULL)
            bench_die("out of memory");
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

void bench_samples_free(bench_samples *s)
{
    free(s->v);
    *s = (bench_samples){0};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_pct(bench_samples *s, double p)
{
    if (s->n == 0)
        return NAN;
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    /* nearest rank: the smallest value with at least p% of samples <= it */
    double rank = ceil(p / 100.0 * (double)s->n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    if (i >= s->n)
        i = s->n - 1;
    return s->v[i];
}

/* ---- output -------------------------------------------------------------------- */

static FILE *results;

int bench_results_open(const char *path)
{
    if (path == NULL)
        return 0;
    results = fopen(path, "a");
    if (results == NULL) {
        bench_warn("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void bench_results_close(void)
{
    if (results != NULL)
        fclose(results);
    results = NULL;
}

void bench_result(const char *backend, const char *key, double value, const char *unit,
                  size_t n, const char *note)
{
    if (results == NULL)
        return;
    /* %.6g keeps ns and s alike readable; bench.sh formats for the table */
    if (isnan(value))
        fprintf(results, "%s\t%s\tnan\t%s\t%zu\t%s\n", backend, key, unit, n, note ? note : "");
    else
        fprintf(results, "%s\t%s\t%.6g\t%s\t%zu\t%s\n", backend, key, value, unit, n,
                note ? note : "");
    fflush(results);
}

void bench_table_header(const char *title)
{
    printf("\n%s\n", title);
    printf("| %-34s | %5s | %9s | %9s | %9s | %9s | %9s | %-4s |\n", "measure", "n", "min", "p50",
           "p90", "p99", "max", "unit");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", "------------------------------------", "-------",
           "-----------", "-----------", "-----------", "-----------", "-----------", "------");
}

void bench_table_row(const char *measure, bench_samples *s, const char *unit)
{
    size_t n = s->n;
    printf("| %-34s | %5zu | %9.4g | %9.4g | %9.4g | %9.4g | %9.4g | %-4s |\n", measure, n,
           bench_pct(s, 0), bench_pct(s, 50), bench_pct(s, 90), bench_pct(s, 99),
           bench_pct(s, 100), unit);
    fflush(stdout);
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("reign_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void bench_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("reign_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void bench_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ---- /proc ------------------------------------------------------------------------ */

long long bench_cpu_ticks(void)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* fields after the command name, which may hold spaces: start after ')' */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    p++;
    /* field 3 is the state; utime and stime are fields 14 and 15 */
    long long utime = -1, stime = -1;
    int field = 2;
    for (char *tok = strtok(p, " "); tok != NULL; tok = strtok(NULL, " ")) {
        field++;
        if (field == 14)
            utime = strtoll(tok, NULL, 10);
        else if (field == 15) {
            stime = strtoll(tok, NULL, 10);
            break;
        }
    }
    return utime < 0 || stime < 0 ? -1 : utime + stime;
}

long long bench_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL)
        return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoll(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* ---- child processes ----------------------------------------------------------------- */

const char *bench_self(void)
{
    static char path[4096];
    if (path[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0)
            bench_die("readlink /proc/self/exe: %s", strerror(errno));
        path[n] = '\0';
    }
    return path;
}

int bench_child_spawn(bench_child *c, char *const argv[])
{
    int in[2], out[2];
    *c = (bench_child){.pid = -1, .in_fd = -1, .out_fd = -1};
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        /* the child: only async-signal-safe calls until exec */
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
            _exit(127);
        /* a new process group, so a terminal's ^C reaches only us, the
         * parent; and die with us, so no contender outlives an interrupted
         * run (etcdctl and the elect child would wait forever) */
        setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->pid = pid;
    c->in_fd = in[1];
    c->out_fd = out[0];
    return 0;
}

int bench_child_line(bench_child *c, char *line, size_t size, int64_t deadline_ns)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - c->buf);
            size_t copy = n < size - 1 ? n : size - 1;
            memcpy(line, c->buf, copy);
            line[copy] = '\0';
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return 1;
        }
        if (c->len == sizeof c->buf)
            c->len = 0; /* an over-long line: drop it */
        int64_t left = deadline_ns - bench_now_ns();
        int timeout = left <= 0 ? 0 : (int)((left + BENCH_NS_PER_MS - 1) / BENCH_NS_PER_MS);
        struct pollfd pfd = {.fd = c->out_fd, .events = POLLIN};
        int rc = poll(&pfd, 1, timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 0;
        ssize_t n;
        do
            n = read(c->out_fd, c->buf + c->len, sizeof c->buf - c->len);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
}

int bench_child_send(bench_child *c, const char *line)
{
    size_t len = strlen(line);
    char buf[512];
    if (len + 2 > sizeof buf)
        return -1;
    memcpy(buf, line, len);
    buf[len++] = '\n';
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(c->in_fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

int bench_child_end(bench_child *c, int sig, int64_t timeout_ms)
{
    int status = -1;
    if (c->pid <= 0)
        return -1;
    if (c->in_fd >= 0)
        close(c->in_fd);
    c->in_fd = -1;
    if (sig != 0)
        kill(c->pid, sig);
    int64_t deadline = bench_now_ns() + timeout_ms * BENCH_NS_PER_MS;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid)
            break;
        if (r < 0 && errno != EINTR) {
            status = -1;
            break;
        }
        if (bench_now_ns() > deadline) {
            kill(c->pid, SIGKILL);
            while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        bench_sleep_ns(2 * BENCH_NS_PER_MS);
    }
    if (c->out_fd >= 0)
        close(c->out_fd);
    c->out_fd = -1;
    c->pid = -1;
    return status;
}

const char *bench_run_prefix(void)
{
    static char prefix[64];
    if (prefix[0] == '\0')
        snprintf(prefix, sizeof prefix, "bench/%ld-%lld", (long)getpid(),
                 (long long)(time(NULL) % 1000000));
    return prefix;
}

void bench_logger(int level, const char *component, const char *message, void *payload)
{
    /* Failovers make the engine warn by design (a lease expired, a holder
     * vanished); only errors are news here unless $REIGN_LOG asks for more. */
    if (level <= REIGN_LOG_ERROR || getenv("REIGN_LOG") != NULL)
        reign_log_stderr(level, component, message, payload);
}
