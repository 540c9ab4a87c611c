/* The chaos checker: merges the workers' logs and the driver's log of one
 * run and fails, printing the offending intervals, if two processes were
 * master of one resource at once (DESIGN.md §3 invariant 1), if terms did not
 * strictly increase in time order (invariant 3), or if a worker saw itself
 * master past its own deadline bound. It also prints, per resource, the
 * failovers seen, the longest time without a master and the median takeover
 * time. docs/safety.md explains the interval ends it uses.
 *
 * usage: reign_chaos_checker [--lease-dies-with-holder] [--quiet|--verbose] LOGDIR
 * Exit: 0 no violation, 1 violations, 2 bad input. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"

#define MAX_PRINTED 20

typedef struct incarnation {
    char name[64];   /* "w2.3" */
    int pid;
    int64_t belief_ns, slack_ns, ttl_ms;
    bool said_bye;
} incarnation;

typedef enum end_kind { END_CLOSED, END_KILLED, END_OPEN } end_kind;

typedef struct interval {
    int res;
    uint64_t term;       /* 0: unknown (a mastership no poll saw: "missed") */
    const incarnation *inc;
    int64_t start;       /* first evidence of mastership */
    int64_t bound;       /* last logged deadline bound */
    int64_t window;      /* how long after the previous poll that bound's RENEW was seen */
    int64_t frozen;      /* the bound when it froze itself (driver's stop/kill), or 0 */
    int64_t t_end;       /* first evidence it ended (closed only) */
    int64_t unseen;      /* closed: start of a window with an unseen RENEW, or 0 */
    char why[16];
    end_kind kind;
    int64_t end;         /* computed: the end the overlap check uses */
    int64_t avail_end;   /* computed: when the resource stopped being served */
    const char *cause;   /* computed: what ended it, for the statistics */
} interval;

typedef struct stop_rec { int pid; int64_t t0, t1; } stop_rec;
typedef struct kill_rec { int pid; int64_t t_frozen, t_killed; } kill_rec;

typedef struct run {
    incarnation *incs;
    size_t n_incs, cap_incs;
    interval *iv;
    size_t n_iv, cap_iv;
    stop_rec *stops;
    size_t n_stops, cap_stops;
    kill_rec *kills;
    size_t n_kills, cap_kills;
    int64_t t_start;
    int n_res;
    int64_t ttl_ms;
    char backend[32];
    bool holder_bound;
    bool quiet;
    bool verbose;
    int violations;
    int printed;
    int late;
    int worker_errors;
    int observers_rt, observers_normal;
    int64_t *windows;  /* T - T_PREV of every renew line: how precisely RENEWs were seen */
    size_t n_windows, cap_windows;
} run;

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 64;
    void *q = realloc(p, c * size);
    if (q == NULL) {
        fprintf(stderr, "chaos checker: out of memory\n");
        exit(2);
    }
    *cap = c;
    return q;
}

static double rel(const run *R, int64_t t)
{
    return (double)(t - R->t_start) / 1e9;
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

/* ---- reading -------------------------------------------------------------------- */

static void bad(const char *file, int line, const char *what)
{
    fprintf(stderr, "chaos checker: %s:%d: %s\n", file, line, what);
    exit(2);
}

static int64_t num(char **f, size_t n, size_t i, const char *file, int line)
{
    int64_t v;
    if (i >= n || chaos_parse_i64(f[i], &v) != 0)
        bad(file, line, "malformed number");
    return v;
}

static void read_driver(run *R, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        fprintf(stderr, "chaos checker: open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char buf[CHAOS_LINE_MAX * 2];
    int line = 0;
    while (fgets(buf, sizeof buf, fp) != NULL) {
        line++;
        buf[strcspn(buf, "\n")] = '\0';
        char *f[CHAOS_MAX_FIELDS];
        size_t n = chaos_split(buf, f);
        if (n == 0)
            continue;
        if (strcmp(f[0], "start") == 0) {
            R->t_start = num(f, n, 2, path, line);
            if (n > 3)
                snprintf(R->backend, sizeof R->backend, "%s", f[3]);
            R->ttl_ms = num(f, n, 4, path, line);
            R->n_res = (int)num(f, n, 6, path, line);
        } else if (strcmp(f[0], "kill") == 0) {
            R->kills = grow(R->kills, &R->cap_kills, R->n_kills, sizeof *R->kills);
            R->kills[R->n_kills++] = (kill_rec){(int)num(f, n, 1, path, line),
                                                num(f, n, 2, path, line), num(f, n, 3, path, line)};
        } else if (strcmp(f[0], "stop") == 0) {
            R->stops = grow(R->stops, &R->cap_stops, R->n_stops, sizeof *R->stops);
            R->stops[R->n_stops++] = (stop_rec){(int)num(f, n, 1, path, line),
                                                num(f, n, 2, path, line), num(f, n, 3, path, line)};
        }
    }
    fclose(fp);
}

/* The open interval of `res` in this incarnation, or NULL. */
static interval *open_of(run *R, size_t first, int res)
{
    for (size_t i = R->n_iv; i-- > first;)
        if (R->iv[i].res == res && R->iv[i].kind == END_OPEN)
            return &R->iv[i];
    return NULL;
}

static void read_worker(run *R, const char *dir, const char *fname)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        fprintf(stderr, "chaos checker: open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    R->incs = grow(R->incs, &R->cap_incs, R->n_incs, sizeof *R->incs);
    /* Interval pointers to incarnations are fixed up after all files are read. */
    size_t inc_i = R->n_incs++;
    incarnation *inc = &R->incs[inc_i];
    memset(inc, 0, sizeof *inc);
    snprintf(inc->name, sizeof inc->name, "%.*s", (int)(strlen(fname) - 4), fname);
    size_t first = R->n_iv;

    char buf[CHAOS_LINE_MAX * 2];
    int line = 0;
    bool hello = false;
    while (fgets(buf, sizeof buf, fp) != NULL) {
        line++;
        if (strchr(buf, '\n') == NULL)
            break; /* a partial last line: the worker was killed writing it */
        buf[strcspn(buf, "\n")] = '\0';
        char *f[CHAOS_MAX_FIELDS];
        size_t n = chaos_split(buf, f);
        if (n == 0)
            continue;
        if (strcmp(f[0], "hello") == 0) {
            inc->pid = (int)num(f, n, 1, path, line);
            inc->ttl_ms = num(f, n, 4, path, line);
            inc->belief_ns = num(f, n, 5, path, line);
            inc->slack_ns = num(f, n, 6, path, line);
            hello = true;
            continue;
        }
        if (!hello)
            bad(path, line, "event before the hello line");
        if (strcmp(f[0], "observer") == 0) {
            if (n > 1 && strcmp(f[1], "realtime") == 0)
                R->observers_rt++;
            else
                R->observers_normal++;
            continue;
        }
        if (strcmp(f[0], "bye") == 0) {
            inc->said_bye = true;
            continue;
        }
        if (strcmp(f[0], "error") == 0) {
            R->worker_errors++;
            if (!R->quiet && R->worker_errors <= 10)
                fprintf(stderr, "chaos checker: note: %s: %s\n", inc->name, n > 2 ? f[2] : "");
            continue;
        }
        int res = (int)num(f, n, 1, path, line);
        if (res < 0 || (R->n_res > 0 && res >= R->n_res))
            bad(path, line, "resource index out of range");
        interval *cur = open_of(R, first, res);
        if (strcmp(f[0], "open") == 0) {
            if (cur != NULL)
                bad(path, line, "open while an interval of that resource is open");
            R->iv = grow(R->iv, &R->cap_iv, R->n_iv, sizeof *R->iv);
            interval *v = &R->iv[R->n_iv++];
            memset(v, 0, sizeof *v);
            v->res = res;
            v->term = (uint64_t)num(f, n, 2, path, line);
            v->inc = (const incarnation *)(uintptr_t)inc_i;
            v->start = num(f, n, 3, path, line);
            v->bound = num(f, n, 4, path, line);
            v->kind = END_OPEN;
        } else if (strcmp(f[0], "missed") == 0) {
            /* A mastership that began and ended between two polls. */
            R->iv = grow(R->iv, &R->cap_iv, R->n_iv, sizeof *R->iv);
            interval *v = &R->iv[R->n_iv++];
            memset(v, 0, sizeof *v);
            v->res = res;
            v->inc = (const incarnation *)(uintptr_t)inc_i;
            v->start = num(f, n, 2, path, line);
            v->t_end = num(f, n, 3, path, line);
            v->unseen = v->start;
            v->bound = v->start; /* only the unseen-window rule bounds it */
            snprintf(v->why, sizeof v->why, "missed");
            v->kind = END_CLOSED;
        } else if (strcmp(f[0], "unrenew") == 0 || strcmp(f[0], "frozen") == 0) {
            uint64_t term = (uint64_t)num(f, n, 2, path, line);
            if (cur == NULL || cur->term != term)
                bad(path, line, "unrenew/frozen without an open interval of that term");
            if (f[0][0] == 'f') {
                cur->frozen = num(f, n, 4, path, line);
            } else {
                cur->bound = num(f, n, 4, path, line);
                cur->window = 0;
                cur->frozen = 0;
            }
        } else if (strcmp(f[0], "renew") == 0 || strcmp(f[0], "late") == 0) {
            uint64_t term = (uint64_t)num(f, n, 2, path, line);
            if (cur == NULL || cur->term != term)
                bad(path, line, "renew/late without an open interval of that term");
            if (strcmp(f[0], "renew") == 0) {
                cur->bound = num(f, n, 4, path, line);
                cur->window = 0;
                cur->frozen = 0; /* running again: the bound moves on */
                if (n > 5) {
                    cur->window = num(f, n, 3, path, line) - num(f, n, 5, path, line);
                    R->windows = grow(R->windows, &R->cap_windows, R->n_windows, sizeof(int64_t));
                    R->windows[R->n_windows++] = cur->window;
                }
            } else {
                R->late++;
                R->violations++;
                printf("FAIL invariant 1 on r%d: %s pid %d term %" PRIu64
                       " saw itself master at %.6f s, past its deadline bound %.6f s, with no "
                       "RENEW sent since that bound was set\n",
                       res, inc->name, inc->pid, term, rel(R, num(f, n, 3, path, line)),
                       rel(R, num(f, n, 4, path, line)));
            }
        } else if (strcmp(f[0], "close") == 0) {
            uint64_t term = (uint64_t)num(f, n, 2, path, line);
            if (cur == NULL || cur->term != term)
                bad(path, line, "close without an open interval of that term");
            cur->t_end = num(f, n, 3, path, line);
            snprintf(cur->why, sizeof cur->why, "%s", n > 4 ? f[4] : "?");
            cur->unseen = num(f, n, 5, path, line);
            cur->kind = END_CLOSED;
        } else {
            bad(path, line, "unknown event");
        }
    }
    if (!hello)
        fprintf(stderr, "chaos checker: note: %s has no hello line (killed at once?)\n", path);
    fclose(fp);
}

/* ---- interval ends ---------------------------------------------------------------- */

static const stop_rec *stop_within(const run *R, int pid, int64_t from, int64_t to)
{
    for (size_t i = 0; i < R->n_stops; i++)
        if (R->stops[i].pid == pid && R->stops[i].t0 >= from && R->stops[i].t0 <= to)
            return &R->stops[i];
    return NULL;
}

static const stop_rec *stop_covering(const run *R, int pid, int64_t t)
{
    for (size_t i = 0; i < R->n_stops; i++)
        /* ended while stopped, or seen ending as soon as it ran again */
        if (R->stops[i].pid == pid && R->stops[i].t0 <= t && t <= R->stops[i].t1 + 100 * CHAOS_NS_PER_MS)
            return &R->stops[i];
    return NULL;
}

/* The kill of the process that had `pid` at time `t` (PIDs are reused in a
 * long run on a busy machine: match on time too). */
static const kill_rec *kill_of(const run *R, int pid, int64_t t)
{
    const kill_rec *best = NULL;
    for (size_t i = 0; i < R->n_kills; i++)
        if (R->kills[i].pid == pid && R->kills[i].t_frozen >= t &&
            (best == NULL || R->kills[i].t_frozen < best->t_frozen))
            best = &R->kills[i];
    return best;
}

/* The end each interval is checked with (docs/safety.md, "Interval ends"). */
static void compute_end(const run *R, interval *v)
{
    const incarnation *inc = v->inc;
    if (v->kind == END_CLOSED) {
        /* The first evidence of the end is an upper bound on it while the
         * process runs; a stopped process believes at most until its
         * deadline, which the bound covers, unless a RENEW went out unseen
         * before the stop: then its send is bounded by the stop time. */
        int64_t ub = v->frozen != 0 ? v->frozen : v->bound;
        if (v->unseen > 0) {
            const stop_rec *s = stop_within(R, inc->pid, v->unseen, v->t_end);
            int64_t sent = s != NULL ? s->t0 : v->t_end;
            int64_t b = sent + inc->belief_ns + inc->slack_ns;
            if (b > ub)
                ub = b;
        }
        v->end = v->t_end < ub ? v->t_end : ub;
        v->avail_end = v->end;
        const stop_rec *s = stop_covering(R, inc->pid, v->t_end);
        if (strcmp(v->why, "resign") == 0 || strcmp(v->why, "resigned") == 0) {
            v->cause = "resign";
        } else if (strcmp(v->why, "exit") == 0 || strcmp(v->why, "closed") == 0) {
            v->cause = "exit";
        } else if (strcmp(v->why, "missed") == 0) {
            v->cause = "missed";
        } else if (s != NULL) {
            v->cause = "stop";
            v->avail_end = s->t0 < v->end ? s->t0 : v->end;
        } else {
            v->cause = "lost"; /* expired/backend/poll: server faults */
        }
        return;
    }
    const kill_rec *k = kill_of(R, inc->pid, v->start);
    if (k != NULL) {
        /* Killed while master: the lease outlives the process until the
         * backend expires it, so the interval runs to the deadline bound;
         * where the lease dies with its holder (file), to the moment the
         * process was frozen for good before the SIGKILL. */
        v->end = v->frozen != 0 ? v->frozen : v->bound;
        if (R->holder_bound && k->t_frozen < v->end)
            v->end = k->t_frozen;
        v->avail_end = k->t_frozen < v->end ? k->t_frozen : v->end;
        v->kind = END_KILLED;
        v->cause = "kill";
        return;
    }
    /* The log ends with it open and nobody killed it: a crash. */
    v->end = v->bound;
    v->avail_end = v->bound;
    v->cause = "crash";
}

/* ---- checks --------------------------------------------------------------------- */

static const char *end_text(const interval *v)
{
    static char buf[4][96];
    static int k;
    char *b = buf[k++ % 4];
    switch (v->kind) {
    case END_KILLED:
        snprintf(b, 96, "killed; ends at %s",
                 v->end == v->bound || v->end == v->frozen ? "its deadline bound" : "its kill");
        break;
    case END_OPEN: snprintf(b, 96, "log ends open; ends at its deadline bound"); break;
    default:
        snprintf(b, 96, "closed (%s)%s", v->why,
                 v->end < v->t_end ? ", ends at its deadline bound" : "");
    }
    return b;
}

static void print_interval(const run *R, const char *label, const interval *v)
{
    printf("  %s: %s pid %d term %" PRIu64 " [%.6f s .. %.6f s] %s\n", label, v->inc->name,
           v->inc->pid, v->term, rel(R, v->start), rel(R, v->end), end_text(v));
}

static int cmp_start(const void *a, const void *b)
{
    const interval *x = *(interval *const *)a, *y = *(interval *const *)b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t median(int64_t *v, size_t n)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof *v, cmp_i64);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define N_CAUSES 7
static const char *const causes[N_CAUSES] = {"kill", "stop", "resign", "lost", "exit", "missed", "crash"};

static int cause_index(const char *c)
{
    for (int i = 0; i < N_CAUSES; i++)
        if (strcmp(causes[i], c) == 0)
            return i;
    return N_CAUSES - 1;
}

typedef struct totals {
    int64_t intervals, failovers, overlaps, term_errors;
    int64_t *take[N_CAUSES];
    size_t n_take[N_CAUSES], cap_take[N_CAUSES];
    int64_t *all_take;
    size_t n_all, cap_all;
    int64_t longest_gap;
    int64_t min_margin[N_CAUSES]; /* least start - previous end, per cause */
    bool has_margin[N_CAUSES];
    interval min_prev[N_CAUSES], min_next[N_CAUSES]; /* the pairs with that margin */
} totals;

static void check_resource(run *R, int res, interval **v, size_t n, totals *T)
{
    int64_t failovers = 0, longest = 0, overlaps = 0;
    int64_t *take = calloc(n + 1, sizeof *take);
    size_t n_take = 0;
    if (take == NULL) {
        fprintf(stderr, "chaos checker: out of memory\n");
        exit(2);
    }
    qsort(v, n, sizeof *v, cmp_start);
    for (size_t i = 0; i < n; i++) {
        /* Overlap with any earlier interval of another process. */
        for (size_t j = 0; j < i; j++) {
            if (v[j]->inc == v[i]->inc || v[j]->end <= v[i]->start)
                continue;
            overlaps++;
            R->violations++;
            if (R->printed++ < MAX_PRINTED) {
                printf("FAIL overlap on r%d: two processes were master at once for %.3f ms\n", res,
                       ms((v[j]->end < v[i]->end ? v[j]->end : v[i]->end) - v[i]->start));
                print_interval(R, "first ", v[j]);
                print_interval(R, "second", v[i]);
                if (v[j]->end == v[j]->bound && v[j]->window > 5 * CHAOS_NS_PER_MS)
                    printf("  note: the first's bound came from a RENEW its observer saw only "
                           "%.3f ms after the previous poll (a stalled observer): the bound may "
                           "be late by that much\n",
                           ms(v[j]->window));
            }
        }
        if (i == 0)
            continue;
        /* Terms strictly increase in time order (unknown terms skipped). */
        const interval *p = NULL;
        for (size_t j = i; j-- > 0;)
            if (v[j]->term != 0) {
                p = v[j];
                break;
            }
        if (p != NULL && v[i]->term != 0 && v[i]->term <= p->term) {
            T->term_errors++;
            R->violations++;
            if (R->printed++ < MAX_PRINTED) {
                printf("FAIL terms on r%d: term %" PRIu64 " began after term %" PRIu64 "\n", res,
                       v[i]->term, p->term);
                print_interval(R, "earlier", p);
                print_interval(R, "later  ", v[i]);
            }
        }
        int64_t gap = v[i]->start - v[i - 1]->avail_end;
        if (gap > longest) {
            longest = gap;
            if (R->verbose && gap > 10 * CHAOS_NS_PER_S) {
                printf("checker: r%d had no master for %.1f ms:\n", res, ms(gap));
                print_interval(R, "before", v[i - 1]);
                print_interval(R, "after ", v[i]);
            }
        }
        if (v[i]->inc != v[i - 1]->inc) {
            failovers++;
            take[n_take++] = gap;
            int c = cause_index(v[i - 1]->cause);
            T->take[c] = grow(T->take[c], &T->cap_take[c], T->n_take[c], sizeof(int64_t));
            T->take[c][T->n_take[c]++] = gap;
            int64_t margin = v[i]->start - v[i - 1]->end;
            if (!T->has_margin[c] || margin < T->min_margin[c]) {
                T->min_margin[c] = margin;
                T->has_margin[c] = true;
                T->min_prev[c] = *v[i - 1];
                T->min_next[c] = *v[i];
            }
            T->all_take = grow(T->all_take, &T->cap_all, T->n_all, sizeof(int64_t));
            T->all_take[T->n_all++] = gap;
        }
    }
    int64_t med = median(take, n_take);
    if (!R->quiet)
        printf("r%-4d %9zu %9" PRId64 " %14.1f ms %14.1f ms\n", res, n, failovers, ms(longest),
               med < 0 ? 0.0 : ms(med));
    T->intervals += (int64_t)n;
    T->failovers += failovers;
    T->overlaps += overlaps;
    if (longest > T->longest_gap)
        T->longest_gap = longest;
    free(take);
}

static int name_is_worker_log(const char *s)
{
    size_t n = strlen(s);
    return s[0] == 'w' && n > 4 && strcmp(s + n - 4, ".log") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    run R = {0};
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lease-dies-with-holder") == 0)
            R.holder_bound = true;
        else if (strcmp(argv[i], "--quiet") == 0)
            R.quiet = true;
        else if (strcmp(argv[i], "--verbose") == 0)
            R.verbose = true;
        else if (dir == NULL && argv[i][0] != '-')
            dir = argv[i];
        else {
            fprintf(stderr, "usage: reign_chaos_checker [--lease-dies-with-holder] [--quiet|--verbose] LOGDIR\n");
            return 2;
        }
    }
    if (dir == NULL) {
        fprintf(stderr, "usage: reign_chaos_checker [--lease-dies-with-holder] [--quiet|--verbose] LOGDIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/driver.log", dir);
    read_driver(&R, path);

    DIR *dp = opendir(dir);
    if (dp == NULL) {
        fprintf(stderr, "chaos checker: open %s: %s\n", dir, strerror(errno));
        return 2;
    }
    char **names = NULL;
    size_t n_names = 0, cap_names = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (!name_is_worker_log(de->d_name))
            continue;
        names = grow(names, &cap_names, n_names, sizeof *names);
        names[n_names] = strdup(de->d_name);
        if (names[n_names++] == NULL) {
            fprintf(stderr, "chaos checker: out of memory\n");
            return 2;
        }
    }
    closedir(dp);
    if (n_names == 0) {
        fprintf(stderr, "chaos checker: no worker logs (w*.log) in %s\n", dir);
        return 2;
    }
    qsort(names, n_names, sizeof *names, cmp_str);
    for (size_t i = 0; i < n_names; i++)
        read_worker(&R, dir, names[i]);

    int n_res = R.n_res;
    for (size_t i = 0; i < R.n_iv; i++) {
        R.iv[i].inc = &R.incs[(uintptr_t)R.iv[i].inc];
        if (R.iv[i].res >= n_res)
            n_res = R.iv[i].res + 1;
    }
    for (size_t i = 0; i < R.n_iv; i++)
        compute_end(&R, &R.iv[i]);

    const incarnation *any = R.n_incs > 0 ? &R.incs[0] : NULL;
    if (!R.quiet && any != NULL)
        printf("checker: backend %s, %zu worker processes, %d resources, ttl %" PRId64
               " ms, belief %.1f ms, slack %.1f ms; a killed master's interval ends at %s\n",
               R.backend, R.n_incs, n_res, any->ttl_ms, ms(any->belief_ns), ms(any->slack_ns),
               R.holder_bound ? "its kill (the lease dies with its holder)"
                              : "its deadline bound (the lease outlives it)");
    if (!R.quiet)
        printf("res   intervals failovers longest-no-master median-takeover\n");
    totals T = {0};
    interval **per = calloc(R.n_iv + 1, sizeof *per);
    if (per == NULL)
        return 2;
    for (int res = 0; res < n_res; res++) {
        size_t n = 0;
        for (size_t i = 0; i < R.n_iv; i++)
            if (R.iv[i].res == res)
                per[n++] = &R.iv[i];
        check_resource(&R, res, per, n, &T);
    }
    int64_t med_all = median(T.all_take, T.n_all);
    printf("checker: %" PRId64 " intervals, %" PRId64 " failovers, %" PRId64 " overlaps, %" PRId64
           " term inversions, %d late beliefs; longest without a master %.1f ms, median takeover "
           "%.1f ms\n",
           T.intervals, T.failovers, T.overlaps, T.term_errors, R.late, ms(T.longest_gap),
           med_all < 0 ? 0.0 : ms(med_all));
    if (!R.quiet) {
        /* The closest handoffs show the margin left: for leases that
         * outlive their holder, how far the next master began after the
         * previous deadline bound. */
        printf("checker: takeovers by what ended the previous master: count, median and shortest\n"
               "checker: time without a master (from the kill or stop, else the end), and the\n"
               "checker: least margin between the previous interval's checked end and the next start\n");
        for (int c = 0; c < N_CAUSES; c++) {
            if (T.n_take[c] == 0)
                continue;
            size_t nc = T.n_take[c];
            int64_t med = median(T.take[c], nc); /* sorts */
            printf("checker:   %-7s %6zu  median %9.1f ms  shortest %9.3f ms  margin %9.3f ms\n",
                   causes[c], nc, ms(med), ms(T.take[c][0]), ms(T.min_margin[c]));
        }
        if (R.verbose) {
            for (int c = 0; c < N_CAUSES; c++) {
                if (!T.has_margin[c])
                    continue;
                printf("checker: least margin after a %s on r%d:\n", causes[c], T.min_prev[c].res);
                print_interval(&R, "previous", &T.min_prev[c]);
                print_interval(&R, "next    ", &T.min_next[c]);
            }
        }
    }
    if (!R.quiet && R.n_windows > 0) {
        /* The deadline bound is at most this late after the RENEW's send. */
        qsort(R.windows, R.n_windows, sizeof *R.windows, cmp_i64);
        printf("checker: RENEWs seen within (poll window) median %.3f ms, p99 %.3f ms, p99.9 %.3f "
               "ms, max %.3f ms; observers: %d realtime, %d normal\n",
               ms(R.windows[R.n_windows / 2]), ms(R.windows[R.n_windows * 99 / 100]),
               ms(R.windows[R.n_windows * 999 / 1000]), ms(R.windows[R.n_windows - 1]),
               R.observers_rt, R.observers_normal);
    }
    if (R.worker_errors > 0)
        printf("checker: note: %d worker error lines (backend errors during faults are expected)\n",
               R.worker_errors);
    printf("checker: %s\n", R.violations == 0 ? "PASS" : "FAIL");
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    for (int c = 0; c < N_CAUSES; c++)
        free(T.take[c]);
    free(T.all_take);
    free(per);
    free(R.incs);
    free(R.iv);
    free(R.stops);
    free(R.kills);
    free(R.windows);
    return R.violations == 0 ? 0 : 1;
}
