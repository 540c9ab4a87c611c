/* reign's benchmark program (reign_bench): shared declarations of its
 * subcommands and helpers. The benchmarks use only include/reign/reign.h,
 * as a user would (DESIGN.md §1); the round-trip probes (rtt.c) talk to the
 * servers directly, since they measure the physical limit beside reign. */
#ifndef REIGN_BENCH_BENCH_H
#define REIGN_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define BENCH_NS_PER_MS INT64_C(1000000)
#define BENCH_NS_PER_S INT64_C(1000000000)

/* ---- options every subcommand understands ------------------------------- */

typedef struct bench_opts {
    const char *backend;  /* name in the tables: file, redis, … */
    const char *uri;      /* reign URI of the backend */
    const char *out;      /* append result rows here (TSV), may be NULL */
    bool quick;           /* fewer repetitions, shorter windows */
    long reps;            /* 0: the subcommand's default */
    double budget_s;      /* stop repeating after this long; 0: default */
    int64_t ttl_ms;       /* 0: the subcommand's default */
    long resources;       /* scale: resource count; 0: default */
    int64_t window_ms;    /* scale: steady-state window; 0: default */
    const char *method;   /* handoff: "wait" (default), "poll" or "spin" */
    const char *etcdctl;  /* peer: etcdctl binary; NULL: "etcdctl" */
    bool peer_crash;      /* peer: also the crash failover (60 s for etcdctl) */
    int argc;             /* what is left after the options */
    char **argv;
} bench_opts;

/* ---- subcommands (each returns the exit status) ---------------------------- */

int bench_rtt(const bench_opts *o);
int bench_handoff(const bench_opts *o);
int bench_failover(const bench_opts *o);
int bench_failover_child(const bench_opts *o);
int bench_scale(const bench_opts *o);
int bench_scale_child(const bench_opts *o);
int bench_shard(const bench_opts *o);
int bench_is_master(const bench_opts *o);
int bench_peer(const bench_opts *o);
int bench_observe(const bench_opts *o);
int bench_stop(const bench_opts *o);
int bench_fleet(const bench_opts *o);
int bench_s3peer(const bench_opts *o);
int bench_s3peer_child(const bench_opts *o);
int bench_elect_child(const bench_opts *o);

/* ---- time ------------------------------------------------------------------ */

int64_t bench_now_ns(void);
void bench_sleep_ns(int64_t ns);

/* ---- samples and percentiles ----------------------------------------------- */

typedef struct bench_samples {
    double *v;
    size_t n, cap;
} bench_samples;

void bench_samples_add(bench_samples *s, double v);
void bench_samples_free(bench_samples *s);
/* Nearest-rank percentile (p in 0..100) of the samples; sorts them. NaN if
 * there are none. */
double bench_pct(bench_samples *s, double p);

/* ---- output ------------------------------------------------------------------ */

/* Set the TSV file result rows are appended to (NULL: none). */
int bench_results_open(const char *path);
void bench_results_close(void);
/* Append one result row (backend, key, value, unit, repetitions, note) to
 * the TSV file, if one is open; the caller prints its own table. */
void bench_result(const char *backend, const char *key, double value, const char *unit,
                  size_t n, const char *note);

/* Print the header of a percentile table and one row of it (values in the
 * unit given, from samples already in that unit). */
void bench_table_header(const char *title);
void bench_table_row(const char *measure, bench_samples *s, const char *unit);

/* Print a message to stderr prefixed "reign_bench: " and exit(1). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void bench_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- /proc --------------------------------------------------------------------- */

/* utime + stime of this process in clock ticks, -1 on failure. */
long long bench_cpu_ticks(void);
/* VmRSS of this process in KiB, -1 on failure. */
long long bench_rss_kb(void);

/* ---- child processes ----------------------------------------------------------- */

typedef struct bench_child {
    pid_t pid;
    int in_fd;   /* its stdin (write end), -1 if none */
    int out_fd;  /* its stdout (read end) */
    char buf[4096];
    size_t len;  /* bytes buffered in buf */
} bench_child;

/* Start argv (argv[0] searched in PATH; bench_self() for this program)
 * with pipes for stdin and stdout; stderr is inherited. */
int bench_child_spawn(bench_child *c, char *const argv[]);
/* Read one line (without '\n') into line within the deadline (monotonic ns;
 * 0 = no wait beyond what is buffered or ready). 1 = a line, 0 = timed out,
 * -1 = end of file or error. */
int bench_child_line(bench_child *c, char *line, size_t size, int64_t deadline_ns);
/* Write a line to the child's stdin. 0 or -1. */
int bench_child_send(bench_child *c, const char *line);
/* Send sig (if still running), then reap; returns the wait status or -1. */
int bench_child_end(bench_child *c, int sig, int64_t timeout_ms);

/* The path of this executable (for spawning children). */
const char *bench_self(void);

/* Write a line to stdout and flush it (the child side of the pipes). */
void bench_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A resource ID prefix unique to this run: "bench/<pid>-<time>". */
const char *bench_run_prefix(void);

/* A reign logger that drops everything below ERROR (stderr). */
void bench_logger(int level, const char *component, const char *message, void *payload);

#endif
