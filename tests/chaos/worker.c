/* The chaos worker: one process of the safety test. It campaigns for R
 * resources through the public API only (include/reign/reign.h, DESIGN.md §1)
 * and logs, to an append-only file, every interval in which it was master of
 * one, with CLOCK_MONOTONIC times, the term and an upper bound on the
 * engine's deadline (see chaos.h for the line format, docs/safety.md for why
 * the bounds are conservative).
 *
 * Threads: main (signals: SIGUSR1 = resign the resource in si_value,
 * SIGUSR2 = poll once more and SIGSTOP itself, SIGTERM/SIGINT = clean exit), the poll thread (every poll_us: is_master,
 * term, stats of every resource), the engines' threads (gained/lost
 * callbacks) and, in runner mode, one thread per reign_runner. Each
 * resource's state and log lines are guarded by its own mutex.
 *
 * One factory per resource: a factory's statistics then count the RENEWs of
 * that resource alone, and a RENEW going out is what moves the bound. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"
#include "reign/reign.h"

#define DRIFT 0.01

typedef struct worker worker;

typedef struct res {
    worker *w;
    int idx;
    char id[32];
    reign_factory *f;
    reign_election *e;
    reign_runner *runner;
    pthread_t runner_thread;
    bool runner_started;

    pthread_mutex_t mu;     /* guards the fields below and this resource's log lines */
    bool open;              /* an interval is open in the log */
    uint64_t term;          /* its term */
    int64_t bound;          /* its deadline bound as last logged: max(bound_ok, pending) */
    int64_t bound_ok;       /* bound from the ACQUIRE and the RENEWs that did not fail */
    int64_t pending;        /* bound from the RENEW in flight (outcome unknown), or 0 */
    int64_t pending_since;  /* that RENEW was gathered after this time */
    uint64_t errors_seen;   /* op_errors when pending was set */
    uint64_t renew_seen;    /* ops_renew of the factory when the bound was set */
    uint64_t gained_seen;   /* gains of the factory accounted for in the log */
    uint64_t renew_base;    /* ops_renew when a poll last saw it not master: RENEWs
                               counted beyond it may belong to a new mastership */
    uint64_t acquires_seen; /* ops_acquire at the last poll */
    int64_t acquire_seen_at;/* the poll that first saw that count: the last ACQUIRE
                               was gathered before it */
    bool late_logged;
    int64_t last_poll;      /* when the previous poll began (its first stats read) */
    bool resigning;         /* a resign is in progress: truth is not evidence */
    bool shutting;          /* the worker is exiting */
    bool ready;             /* set up: the poll thread observes it (before it campaigns) */
    int64_t restart_at;     /* plain mode: campaign again at this time (0 = no) */
} res;

struct worker {
    const char *uri;
    const char *log_path;
    int index;
    int n_res;
    int64_t ttl_ms;
    int64_t margin_ms;
    int64_t retry_ms;
    int64_t belief_ns;  /* ttl × (1 − drift) − margin, as the engine computes it */
    int64_t slack_ns;   /* how late after a RENEW's gather its send may be taken */
    int64_t poll_ns;
    bool runner_mode;
    bool realtime;      /* try SCHED_FIFO for the poll thread */
    int64_t t_boot;     /* when main began */
    int log_fd;
    res *res;
    atomic_bool stop_poll;
    pthread_t poll_thread;
    bool poll_started;
    pthread_mutex_t rng_mu; /* guards rng */
    uint64_t rng;
};

/* ---- log ------------------------------------------------------------------ */

/* One line, one write(2): a SIGKILL loses at most the line in progress. A
 * line that cannot be written makes the log unsound, so the worker stops. */
static void log_line(worker *w, const char *fmt, ...)
{
    char buf[CHAOS_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf - 1) {
        fprintf(stderr, "chaos worker: log line too long\n");
        _exit(3);
    }
    buf[n++] = '\n';
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t k = write(w->log_fd, buf + off, (size_t)n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            fprintf(stderr, "chaos worker: write %s: %s\n", w->log_path, strerror(errno));
            _exit(3);
        }
        off += (size_t)k;
    }
}

static uint64_t rand_u64(worker *w)
{
    pthread_mutex_lock(&w->rng_mu);
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    uint64_t v = w->rng;
    pthread_mutex_unlock(&w->rng_mu);
    return v;
}

/* ---- interval bookkeeping (r->mu held) ---------------------------------- */

/* t: the evidence (read after is_master said true); t_after: read after the
 * stats in *st were read. The engine counts an op when it gathers the batch
 * and the deadline counts from a time before that, so any op counted in *st
 * has deadline <= t_after + belief. */
static void interval_open(res *r, uint64_t term, int64_t t, int64_t t_after, const reign_stats *st,
                          const char *src)
{
    worker *w = r->w;
    int64_t gathered_by;
    if (st->ops_renew != r->renew_base) {
        /* A RENEW may already be out for this mastership (a slow ACQUIRE
         * makes one due at once): it was counted before t_after. */
        gathered_by = t_after;
    } else if (st->ops_acquire == r->acquires_seen) {
        /* The winning ACQUIRE is the last one gathered (one op per election
         * is in flight, none is gathered while master), and a poll saw it
         * counted by acquire_seen_at. Not "t + belief": under load an
         * ACQUIRE's round trip can take hundreds of ms. */
        gathered_by = r->acquire_seen_at;
    } else {
        gathered_by = t_after;
    }
    r->open = true;
    r->term = term;
    r->bound_ok = gathered_by + w->belief_ns + w->slack_ns;
    r->pending = 0;
    if (st->ops_renew != r->renew_base) { /* treat that RENEW as in flight */
        r->pending = t_after + w->belief_ns + w->slack_ns;
        r->pending_since = r->last_poll;
    }
    r->bound = r->bound_ok > r->pending ? r->bound_ok : r->pending;
    r->errors_seen = st->op_errors;
    r->renew_seen = st->ops_renew;
    r->gained_seen = st->gained;
    r->late_logged = false;
    log_line(w, "open %d %" PRIu64 " %" PRId64 " %" PRId64 " %s", r->idx, term, t, r->bound, src);
}

static void interval_close(res *r, int64_t t, const char *why, uint64_t renews)
{
    /* A RENEW gathered since the previous poll that no poll saw while master
     * may have moved the deadline past the logged bound before a SIGSTOP:
     * say when the unseen window began; the checker bounds it with the
     * driver's stop time. */
    int64_t since = r->last_poll != 0 ? r->last_poll : r->w->t_boot; /* before any poll */
    int64_t unseen = renews != r->renew_seen ? since : 0;
    r->open = false;
    log_line(r->w, "close %d %" PRIu64 " %" PRId64 " %s %" PRId64, r->idx, r->term, t, why, unseen);
}

static void read_stats(res *r, reign_stats *st)
{
    if (reign_factory_stats(r->f, st) != REIGN_OK) {
        log_line(r->w, "error %" PRId64 " stats %s: %s", chaos_now_ns(), r->id, reign_last_error());
        _exit(3);
    }
}

static void poll_one(res *r)
{
    worker *w = r->w;
    bool start_now = false;
    reign_stats before, after;

    pthread_mutex_lock(&r->mu);
    if (!r->ready) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    /* Order matters. t_mid .. t brackets the is_master call: "true" was
     * true at an instant in it, "false" false at one. t_after follows the
     * second stats read, so everything it counted was gathered before it. */
    int64_t t_pre = chaos_now_ns();
    read_stats(r, &before);
    int64_t t_mid = chaos_now_ns();
    bool m = reign_election_is_master(r->e);
    uint64_t term = 0;
    if (m && reign_election_term(r->e, &term) != REIGN_OK)
        m = false; /* the deadline passed between the two calls */
    int64_t t = chaos_now_ns();
    read_stats(r, &after);
    int64_t t_after = chaos_now_ns();

    if (r->resigning || r->shutting) {
        /* true or false, the worker no longer acts on it */
        r->gained_seen = after.gained;
        if (!m)
            r->renew_base = before.ops_renew;
    } else if (m) {
        if (r->open && r->term != term)
            interval_close(r, t, "term", after.ops_renew);
        if (!r->open) {
            interval_open(r, term, t, t_after, &after, "poll");
        } else if (after.ops_renew != r->renew_seen) {
            /* A RENEW was counted before t_after: its deadline is earlier
             * than t_after + belief. One op per election is in flight, so
             * the RENEW before it has completed: had it failed, op_errors
             * would have grown before this one was gathered; if it grew in
             * this window we cannot tell which failed, so count the older
             * one as a success (the larger bound). */
            if (r->pending > r->bound_ok)
                r->bound_ok = r->pending;
            r->pending = t_after + w->belief_ns + w->slack_ns;
            r->pending_since = r->last_poll;
            r->errors_seen = after.op_errors;
            r->renew_seen = after.ops_renew;
            r->bound = r->bound_ok > r->pending ? r->bound_ok : r->pending;
            r->late_logged = false;
            log_line(w, "renew %d %" PRIu64 " %" PRId64 " %" PRId64 " %" PRId64, r->idx, term,
                     t_after, r->bound, r->last_poll);
        } else if (r->pending != 0 && after.op_errors != r->errors_seen) {
            /* The RENEW in flight failed (a timeout, a lost connection): the
             * engine's deadline did not move, so neither does the bound. */
            r->pending = 0;
            r->errors_seen = after.op_errors;
            r->bound = r->bound_ok;
            log_line(w, "unrenew %d %" PRIu64 " %" PRId64 " %" PRId64, r->idx, term, t_after,
                     r->bound);
        } else if (t_mid > r->bound && !r->late_logged) {
            /* No RENEW was counted since the bound was set, yet the engine
             * still believed after it: invariant 1 broken. */
            r->late_logged = true;
            log_line(w, "late %d %" PRIu64 " %" PRId64 " %" PRId64, r->idx, term, t_mid, r->bound);
        }
    } else {
        if (r->open)
            interval_close(r, t, "poll", after.ops_renew);
        if (before.gained != r->gained_seen) {
            /* A mastership began and ended since the previous poll began,
             * and no poll or callback saw it (e.g. gained just before a
             * SIGSTOP): log the window it lay in. */
            log_line(w, "missed %d %" PRId64 " %" PRId64, r->idx, r->last_poll, t);
        }
        r->gained_seen = before.gained;
        r->renew_base = before.ops_renew;
    }
    if (after.ops_acquire != r->acquires_seen) {
        r->acquires_seen = after.ops_acquire;
        r->acquire_seen_at = t_after;
    }
    r->last_poll = t_pre;
    if (r->restart_at != 0 && t >= r->restart_at && !r->shutting) {
        r->restart_at = 0;
        start_now = true;
    }
    pthread_mutex_unlock(&r->mu);

    if (start_now && reign_election_start(r->e) != REIGN_OK)
        log_line(w, "error %" PRId64 " start %s: %s", chaos_now_ns(), r->id, reign_last_error());
}

/* Just before the process freezes itself (SIGUSR2: the driver's stop or
 * kill): the bound that holds at the freeze. A RENEW still in flight whose
 * deadline was never applied does not count: the engine applies a deadline
 * only on the answer, and reign_factory_health's ms_since_renew_ok tells
 * when the last one was applied. If that was before the RENEW was gathered,
 * its deadline was never believed (and if the server did extend the lease,
 * the lease only got longer). */
static void freeze_report(res *r)
{
    worker *w = r->w;
    pthread_mutex_lock(&r->mu);
    if (r->ready && r->open && !r->resigning && !r->shutting) {
        reign_health h;
        if (reign_factory_health(r->f, &h) != REIGN_OK) {
            log_line(w, "error %" PRId64 " health %s: %s", chaos_now_ns(), r->id,
                     reign_last_error());
            _exit(3);
        }
        int64_t t = chaos_now_ns();
        /* ms_since is rounded down: the last success was at or before this. */
        int64_t last_ok_latest = h.ms_since_renew_ok >= 0
                                     ? t - h.ms_since_renew_ok * CHAOS_NS_PER_MS
                                     : INT64_MIN;
        bool maybe_applied = r->pending != 0 && last_ok_latest >= r->pending_since;
        int64_t b = maybe_applied && r->pending > r->bound_ok ? r->pending : r->bound_ok;
        log_line(w, "frozen %d %" PRIu64 " %" PRId64 " %" PRId64, r->idx, r->term, t, b);
    }
    pthread_mutex_unlock(&r->mu);
}

static void *poll_main(void *arg)
{
    worker *w = arg;
    int64_t next = chaos_now_ns();
    while (!atomic_load(&w->stop_poll)) {
        for (int i = 0; i < w->n_res; i++)
            poll_one(&w->res[i]);
        next += w->poll_ns;
        int64_t now = chaos_now_ns();
        if (next <= now) {
            next = now; /* behind (stopped or starved): poll again at once */
            continue;
        }
        struct timespec ts = {.tv_sec = next / CHAOS_NS_PER_S, .tv_nsec = next % CHAOS_NS_PER_S};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    return NULL;
}

static const char *lost_name(reign_lost_reason reason)
{
    switch (reason) {
    case REIGN_LOST_RESIGNED: return "resigned";
    case REIGN_LOST_EXPIRED: return "expired";
    case REIGN_LOST_BACKEND: return "backend";
    case REIGN_LOST_CLOSED: return "closed";
    default: return "lost";
    }
}

/* Engine thread, plain mode: the callbacks come microseconds after the
 * engine's change, earlier than the next poll. */
static void on_event(reign_election *e, const reign_event *ev, void *payload)
{
    res *r = payload;
    pthread_mutex_lock(&r->mu);
    if (r->resigning || r->shutting) {
        /* not evidence */
    } else if (ev->kind == REIGN_EVENT_GAINED) {
        uint64_t term = 0;
        /* Only evidence if it still holds: an old event is ignored. */
        if (!r->open && reign_election_is_master(e) && reign_election_term(e, &term) == REIGN_OK &&
            term == ev->term) {
            int64_t t = chaos_now_ns();
            reign_stats st;
            read_stats(r, &st);
            interval_open(r, term, t, chaos_now_ns(), &st, "gained");
        }
    } else if (ev->kind == REIGN_EVENT_LOST && r->open && r->term == ev->term) {
        int64_t t = chaos_now_ns();
        reign_stats st;
        read_stats(r, &st);
        interval_close(r, t, lost_name(ev->reason), st.ops_renew);
    }
    pthread_mutex_unlock(&r->mu);
}

/* ---- resignations ----------------------------------------------------------- */

/* The worker ends its interval when it decides to resign (it does no master
 * work after that); the engine drops belief before it sends the RELEASE, so
 * no other process can gain before this time. Returns true if this call
 * began the resignation (then end_resign must follow). */
static bool begin_resign(res *r)
{
    bool began = false;
    pthread_mutex_lock(&r->mu);
    if (r->ready && !r->resigning && !r->shutting) {
        if (!r->open && reign_election_is_master(r->e)) {
            /* Master but not yet seen by a poll: log it, then end it. */
            uint64_t term = 0;
            if (reign_election_term(r->e, &term) == REIGN_OK) {
                int64_t t = chaos_now_ns();
                reign_stats st;
                read_stats(r, &st);
                interval_open(r, term, t, chaos_now_ns(), &st, "resign");
            }
        }
        if (r->open)
            interval_close(r, chaos_now_ns(), "resign", r->renew_seen);
        r->resigning = true;
        began = true;
    }
    pthread_mutex_unlock(&r->mu);
    return began;
}

static void end_resign(res *r, int rc, const char *what)
{
    worker *w = r->w;
    if (rc != REIGN_OK)
        log_line(w, "error %" PRId64 " %s %s: %s", chaos_now_ns(), what, r->id, reign_last_error());
    pthread_mutex_lock(&r->mu);
    r->resigning = false;
    if (!w->runner_mode && !r->shutting) {
        /* Campaign again after a short random pause, so another process
         * usually wins the resource. */
        int64_t pause_ms = (int64_t)(rand_u64(w) % (uint64_t)(w->ttl_ms / 2 + 1));
        r->restart_at = chaos_now_ns() + pause_ms * CHAOS_NS_PER_MS + 1;
    }
    pthread_mutex_unlock(&r->mu);
}

static void resign_requested(worker *w, int idx)
{
    if (idx < 0 || idx >= w->n_res)
        return;
    res *r = &w->res[idx];
    if (begin_resign(r))
        end_resign(r, reign_election_resign(r->e), "resign");
}

/* Runner thread: the runner's own resignation (resign odds). */
static void on_resign(reign_runner *runner, reign_resignation *resignation, void *payload)
{
    res *r = payload;
    (void)runner;
    bool began = begin_resign(r);
    int rc = reign_resignation_execute(resignation);
    if (began)
        end_resign(r, rc, "resignation");
}

static void *runner_main(void *arg)
{
    res *r = arg;
    int rc = reign_runner_run(r->runner);
    if (rc != REIGN_OK && rc != REIGN_ECLOSED)
        log_line(r->w, "error %" PRId64 " runner %s: %s", chaos_now_ns(), r->id, reign_last_error());
    return NULL;
}

/* ---- setup and shutdown ------------------------------------------------------ */

/* The poll thread is the observer: how late it looks after a RENEW went out
 * is how loose the deadline bound gets (docs/safety.md). On a loaded machine
 * an ordinary thread can wake tens of ms late, so it runs SCHED_FIFO when
 * allowed; the library's own threads keep the ordinary policy, so the system
 * under test is not changed. */
static void start_observer(worker *w)
{
    const char *policy = "normal";
    if (w->realtime) {
        pthread_attr_t attr;
        struct sched_param sp = {.sched_priority = 10};
        if (pthread_attr_init(&attr) == 0) {
            if (pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED) == 0 &&
                pthread_attr_setschedpolicy(&attr, SCHED_FIFO) == 0 &&
                pthread_attr_setschedparam(&attr, &sp) == 0 &&
                pthread_create(&w->poll_thread, &attr, poll_main, w) == 0) {
                w->poll_started = true;
                policy = "realtime";
            }
            pthread_attr_destroy(&attr);
        }
    }
    if (!w->poll_started) {
        int err = pthread_create(&w->poll_thread, NULL, poll_main, w);
        if (err != 0) {
            log_line(w, "error %" PRId64 " poll thread: %s", chaos_now_ns(), strerror(err));
            _exit(3);
        }
        w->poll_started = true;
    }
    log_line(w, "observer %s %" PRId64 " %" PRId64, policy, w->poll_ns, chaos_now_ns());
}

static int open_factory(worker *w, res *r)
{
    reign_options o = REIGN_OPTIONS_INIT;
    char meta[64];
    snprintf(meta, sizeof meta, "chaos worker %d pid %d", w->index, (int)getpid());
    o.metadata = meta;
    o.ttl_ms = w->ttl_ms;
    o.max_drift = DRIFT;
    o.safety_margin_ms = w->margin_ms;
    o.retry_interval_ms = w->retry_ms;
    /* A restarted worker may find the server down (a server fault in
     * progress, which on a loaded machine lasts long): keep trying. */
    int64_t give_up = chaos_now_ns() + 60 * CHAOS_NS_PER_S;
    for (;;) {
        int rc = reign_factory_open(w->uri, &o, &r->f);
        if (rc == REIGN_OK)
            break;
        if (rc != REIGN_EBACKEND && rc != REIGN_ETIMEDOUT)
            return rc;
        if (chaos_now_ns() > give_up)
            return rc;
        chaos_sleep_ns(100 * CHAOS_NS_PER_MS);
    }
    if (reign_factory_ttl_ms(r->f) != w->ttl_ms) {
        fprintf(stderr, "chaos worker: factory TTL %" PRId64 " ms, asked for %" PRId64 "\n",
                reign_factory_ttl_ms(r->f), w->ttl_ms);
        return REIGN_EINVAL;
    }
    return REIGN_OK;
}

/* From now on the poll thread observes r: before it campaigns, so that no
 * mastership can come and go unobserved while the other resources are set
 * up (a factory open can take seconds while a server restarts). */
static void mark_ready(res *r)
{
    pthread_mutex_lock(&r->mu);
    r->last_poll = chaos_now_ns();
    r->ready = true;
    pthread_mutex_unlock(&r->mu);
}

static int setup_resource(worker *w, res *r)
{
    int rc = open_factory(w, r);
    if (rc != REIGN_OK)
        return rc;
    if ((rc = reign_election_new(r->f, r->id, &r->e)) != REIGN_OK)
        return rc;
    if (w->runner_mode) {
        reign_runner_config c = REIGN_RUNNER_CONFIG_INIT;
        c.pre_election_pause_ms = 20;
        c.master_check_interval_ms = REIGN_RUNNER_MIN_MASTER_CHECK_INTERVAL_MS;
        c.master_hold_interval_ms = REIGN_RUNNER_MIN_MASTER_HOLD_INTERVAL_MS;
        c.resign_odds = 20;
        if ((rc = reign_runner_new(r->e, NULL, &c, &r->runner)) != REIGN_OK)
            return rc;
        if ((rc = reign_runner_set_resign_handler(r->runner, on_resign, r)) != REIGN_OK)
            return rc;
        mark_ready(r);
        if (pthread_create(&r->runner_thread, NULL, runner_main, r) != 0)
            return REIGN_ENOMEM;
        r->runner_started = true;
        return REIGN_OK;
    }
    if ((rc = reign_election_set_callback(r->e, on_event, r)) != REIGN_OK)
        return rc;
    mark_ready(r);
    return reign_election_start(r->e);
}

static void shutdown_worker(worker *w)
{
    if (w->poll_started) {
        atomic_store(&w->stop_poll, true);
        pthread_join(w->poll_thread, NULL);
    }
    /* End every interval before any RELEASE can go out. */
    for (int i = 0; i < w->n_res; i++) {
        res *r = &w->res[i];
        pthread_mutex_lock(&r->mu);
        if (r->open)
            interval_close(r, chaos_now_ns(), "exit", r->renew_seen);
        r->shutting = true;
        pthread_mutex_unlock(&r->mu);
    }
    for (int i = 0; i < w->n_res; i++) {
        res *r = &w->res[i];
        if (r->runner_started) {
            reign_runner_stop(r->runner);
            pthread_join(r->runner_thread, NULL);
        }
        reign_runner_free(r->runner);
        if (reign_election_close(r->e) != REIGN_OK)
            log_line(w, "error %" PRId64 " close %s: %s", chaos_now_ns(), r->id, reign_last_error());
        if (reign_factory_close(r->f) != REIGN_OK)
            log_line(w, "error %" PRId64 " factory close %s: %s", chaos_now_ns(), r->id,
                     reign_last_error());
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: reign_chaos_worker --uri URI --log FILE [--index N] [--resources R]\n"
                    "         [--ttl-ms T] [--runner] [--poll-us U] [--slack-ms S] [--no-realtime]\n");
    exit(2);
}

static int64_t arg_num(const char *name, const char *v, int64_t lo, int64_t hi)
{
    int64_t n;
    if (v == NULL || chaos_parse_i64(v, &n) != 0 || n < lo || n > hi) {
        fprintf(stderr, "chaos worker: %s wants a number in %" PRId64 "..%" PRId64 ", got %s\n",
                name, lo, hi, v ? v : "nothing");
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    worker w = {.index = 0, .n_res = 8, .ttl_ms = 500, .poll_ns = 500 * 1000, .log_fd = -1,
                .realtime = true};
    int64_t slack_ms = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--uri") == 0 && v) w.uri = argv[++i];
        else if (strcmp(a, "--log") == 0 && v) w.log_path = argv[++i];
        else if (strcmp(a, "--index") == 0) { w.index = (int)arg_num(a, v, 0, 1000); i++; }
        else if (strcmp(a, "--resources") == 0) { w.n_res = (int)arg_num(a, v, 1, 1000); i++; }
        else if (strcmp(a, "--ttl-ms") == 0) { w.ttl_ms = arg_num(a, v, 100, 600000); i++; }
        else if (strcmp(a, "--poll-us") == 0) { w.poll_ns = arg_num(a, v, 50, 1000) * 1000; i++; }
        else if (strcmp(a, "--slack-ms") == 0) { slack_ms = arg_num(a, v, 0, 60000); i++; }
        else if (strcmp(a, "--runner") == 0) w.runner_mode = true;
        else if (strcmp(a, "--no-realtime") == 0) w.realtime = false;
        else usage();
    }
    if (w.uri == NULL || w.log_path == NULL)
        usage();

    /* The engine's formula with the options given explicitly (reign.h,
     * reign_options; DESIGN.md §3 invariant 1). */
    w.margin_ms = w.ttl_ms / 20 < 100 ? w.ttl_ms / 20 : 100;
    w.retry_ms = w.ttl_ms / 4;
    w.belief_ns = (int64_t)((double)w.ttl_ms * (1.0 - DRIFT) * (double)CHAOS_NS_PER_MS) -
                  w.margin_ms * CHAOS_NS_PER_MS;
    /* The engine counts an op when it gathers the batch and starts the
     * deadline from a time read just before (core/engine.c), so the bounds
     * need no slack; a little is kept in case the start ever moves to the
     * send, a few instructions later. */
    w.slack_ns = slack_ms >= 0 ? slack_ms * CHAOS_NS_PER_MS
                               : (w.ttl_ms * CHAOS_NS_PER_MS - w.belief_ns) / 10;
    w.t_boot = chaos_now_ns();
    w.rng = (uint64_t)chaos_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    pthread_mutex_init(&w.rng_mu, NULL);

    /* Before any thread exists, so every thread (the engines' too) inherits
     * the mask and only sigwaitinfo below sees these signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    w.log_fd = open(w.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (w.log_fd < 0) {
        fprintf(stderr, "chaos worker: open %s: %s\n", w.log_path, strerror(errno));
        return 2;
    }
    log_line(&w, "hello %d %d %s %" PRId64 " %" PRId64 " %" PRId64 " %d %" PRId64, (int)getpid(),
             w.index, w.runner_mode ? "runner" : "plain", w.ttl_ms, w.belief_ns, w.slack_ns,
             w.n_res, chaos_now_ns());

    w.res = calloc((size_t)w.n_res, sizeof *w.res);
    if (w.res == NULL) {
        fprintf(stderr, "chaos worker: out of memory\n");
        return 2;
    }
    for (int i = 0; i < w.n_res; i++) {
        res *r = &w.res[i];
        r->w = &w;
        r->idx = i;
        r->acquires_seen = UINT64_MAX; /* no poll yet: any ACQUIRE counts as unseen */
        r->renew_base = UINT64_MAX;    /* and any RENEW as possibly out */
        snprintf(r->id, sizeof r->id, "chaos/r%d", i);
        /* Priority inheritance: the realtime poll thread must not wait long
         * for an engine thread (a callback) that holds this lock and was
         * preempted. */
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
        if (pthread_mutex_init(&r->mu, &ma) != 0)
            pthread_mutex_init(&r->mu, NULL);
        pthread_mutexattr_destroy(&ma);
    }
    start_observer(&w);
    int rc = REIGN_OK;
    for (int i = 0; i < w.n_res && rc == REIGN_OK; i++) {
        rc = setup_resource(&w, &w.res[i]);
        if (rc != REIGN_OK) {
            log_line(&w, "error %" PRId64 " setup %s: %s", chaos_now_ns(), w.res[i].id,
                     reign_last_error());
            fprintf(stderr, "chaos worker: setup %s: %s\n", w.res[i].id, reign_last_error());
        }
    }

    while (rc == REIGN_OK) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (sig == SIGUSR2) {
            /* The driver's stop: look at every resource once more, then
             * freeze the whole process. The engines' threads stop wherever
             * they are; the observer's last look is only microseconds old,
             * so a RENEW gathered just before the freeze is rarely unseen. */
            for (int i = 0; i < w.n_res; i++) {
                poll_one(&w.res[i]);
                freeze_report(&w.res[i]);
            }
            kill(getpid(), SIGSTOP);
            continue;
        }
        if (sig != SIGUSR1)
            break;
        resign_requested(&w, si.si_code == SI_QUEUE ? si.si_value.sival_int : -1);
    }
    shutdown_worker(&w);
    log_line(&w, "bye %" PRId64, chaos_now_ns());
    close(w.log_fd);
    for (int i = 0; i < w.n_res; i++)
        pthread_mutex_destroy(&w.res[i].mu);
    free(w.res);
    return rc == REIGN_OK ? 0 : 2;
}
