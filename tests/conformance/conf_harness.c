/* The conformance suite's harness: configuration from REIGN_CONF_*, fixtures
 * that teardown closes even after a failed assertion, polling waits with
 * deadlines, callback logs, mastership recorders and server control.
 *
 * Map: 1. configuration  2. time  3. fixtures  4. election helpers
 *      5. events  6. recorders  7. server control  8. metrics
 */
#include "conf.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef REIGN_CONF_HAVE_MEM
#include "reign/mem.h"
#endif

conf_config conf;

/* ---- 1. configuration ------------------------------------------------------ */

static int64_t env_ms(const char *name, int64_t dflt)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return dflt;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n <= 0) {
        fprintf(stderr, "conformance: %s=%s is not a positive number of milliseconds\n", name, v);
        return -1;
    }
    return n;
}

/* "mem://NAME[/][?…]" → NAME; "mem:///NAME" → NAME. */
static void mem_store_name(const char *uri, char *out, size_t size)
{
    const char *p = uri + strlen("mem://");
    if (*p == '/')
        p++;
    size_t n = strcspn(p, "/?#");
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

int conf_config_load(void)
{
    memset(&conf, 0, sizeof conf);
    conf.uri = getenv("REIGN_CONF_URI");
    if (conf.uri == NULL || conf.uri[0] == '\0') {
        fprintf(stderr, "conformance: REIGN_CONF_URI is not set (e.g. file:///tmp/x, mem://conf, "
                        "noop://, redis://127.0.0.1:6379)\n");
        return -1;
    }
    conf.backend = getenv("REIGN_CONF_BACKEND");
    if (conf.backend == NULL || conf.backend[0] == '\0')
        conf.backend = "?";
    conf.server_ctl = getenv("REIGN_CONF_SERVER_CTL");
    if (conf.server_ctl != NULL && conf.server_ctl[0] == '\0')
        conf.server_ctl = NULL;
    conf.dead_uri = getenv("REIGN_CONF_DEAD_URI");
    if (conf.dead_uri != NULL && conf.dead_uri[0] == '\0')
        conf.dead_uri = NULL;
    conf.many_uri = getenv("REIGN_CONF_MANY_URI");
    conf.caps = getenv("REIGN_CONF_CAPS");
    if (conf.caps == NULL)
        conf.caps = "";
    conf.ttl_ms = env_ms("REIGN_CONF_TTL_MS", 1000);
    conf.retry_ms = env_ms("REIGN_CONF_RETRY_MS", 250);
    conf.many_ttl_ms = env_ms("REIGN_CONF_MANY_TTL_MS", conf.ttl_ms);
    if (conf.ttl_ms < 0 || conf.retry_ms < 0 || conf.many_ttl_ms < 0)
        return -1;
    if (conf.many_uri == NULL || conf.many_uri[0] == '\0')
        conf.many_uri = conf.uri;
    conf.drift = 0.01; /* reign_options.max_drift left 0 = the engine's default */
    unsigned rnd = (unsigned)(conf_now_ns() ^ (int64_t)getpid() << 16);
    snprintf(conf.prefix, sizeof conf.prefix, "conf-%ld-%06x", (long)getpid(), rnd & 0xffffffu);
#ifdef REIGN_CONF_HAVE_MEM
    /* The mem store's own hooks stand in for a server's start/stop: they are
     * the mem backend's test interface, used only when it is under test. */
    if (conf.server_ctl == NULL && strcmp(conf.backend, "mem") == 0 &&
        strncmp(conf.uri, "mem://", 6) == 0) {
        conf.mem_ctl = true;
        mem_store_name(conf.uri, conf.mem_store, sizeof conf.mem_store);
    }
#else
    (void)mem_store_name;
#endif
    return 0;
}

bool conf_has_cap(const char *cap)
{
    size_t n = strlen(cap);
    for (const char *p = conf.caps; *p != '\0';) {
        size_t len = strcspn(p, ", ");
        if (len == n && strncmp(p, cap, n) == 0)
            return true;
        p += len;
        p += strspn(p, ", ");
    }
    return false;
}

void conf_copy_last_error(char *buf, size_t size)
{
    snprintf(buf, size, "%s", reign_last_error());
}

/* ---- 2. time ----------------------------------------------------------------- */

int64_t conf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double conf_ms(int64_t ns)
{
    return (double)ns / 1e6;
}

void conf_poll_pause_us(int64_t us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool conf_wait_until(conf_pred_fn pred, void *ctx, int64_t timeout_ms, int64_t poll_us)
{
    int64_t until = conf_now_ns() + timeout_ms * CONF_NS_PER_MS;
    for (;;) {
        if (pred(ctx))
            return true;
        if (conf_now_ns() >= until)
            return pred(ctx);
        conf_poll_pause_us(poll_us);
    }
}

/* ---- 3. fixtures ---------------------------------------------------------------- */

/* What the running test opened; teardown closes what is left, in reverse. */
typedef struct ptr_list {
    void **items;
    size_t n, cap;
} ptr_list;

static ptr_list fx_factories, fx_elections, fx_strings, fx_observers;
static pid_t fx_children[16];
static size_t fx_n_children;
static unsigned fx_test_seq;
static const char *ctl_state = "running"; /* "stopped" or "paused" to repair */
static void ctl_repair(void);

static void list_push(ptr_list *l, void *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        void **items = realloc(l->items, cap * sizeof *items);
        if (items == NULL) {
            print_error("conformance: out of memory in the harness\n");
            fail();
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = p;
}

static bool list_remove(ptr_list *l, void *p)
{
    for (size_t i = l->n; i-- > 0;) {
        if (l->items[i] == p) {
            memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof *l->items);
            l->n--;
            return true;
        }
    }
    return false;
}

static char *fx_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fx_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        print_error("conformance: out of memory in the harness\n");
        fail();
    }
    list_push(&fx_strings, s);
    return s;
}

reign_options conf_options(const char *who)
{
    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = fx_strdup_printf("%s-t%u-%s", conf.prefix, fx_test_seq, who);
    o.metadata = fx_strdup_printf("meta of %s", who);
    o.ttl_ms = conf.ttl_ms;
    o.retry_interval_ms = conf.retry_ms;
    return o;
}

const char *conf_resource(const char *name)
{
    return fx_strdup_printf("%s/t%u/%s", conf.prefix, fx_test_seq, name);
}

reign_factory *conf_factory_uri(const char *uri, const reign_options *options)
{
    reign_factory *f = NULL;
    CONF_OK(reign_factory_open(uri, options, &f), "reign_factory_open(%s) as %s", uri,
            options->instance_id ? options->instance_id : "(default)");
    list_push(&fx_factories, f);
    return f;
}

reign_factory *conf_factory_opts(const reign_options *options)
{
    return conf_factory_uri(conf.uri, options);
}

reign_factory *conf_factory(const char *who)
{
    reign_options o = conf_options(who);
    return conf_factory_opts(&o);
}

reign_election *conf_election(reign_factory *f, const char *resource_id)
{
    reign_election *e = NULL;
    CONF_OK(reign_election_new(f, resource_id, &e), "reign_election_new(%.80s)", resource_id);
    list_push(&fx_elections, e);
    return e;
}

void conf_track_election(reign_election *e)
{
    list_push(&fx_elections, e);
}

void conf_track_observer(reign_observer *o)
{
    list_push(&fx_observers, o);
}

void conf_observer_free(reign_observer *o)
{
    list_remove(&fx_observers, o);
    reign_observer_free(o);
}

void *conf_alloc(size_t size)
{
    void *p = calloc(1, size);
    if (p == NULL) {
        print_error("conformance: out of memory in the harness\n");
        fail();
    }
    list_push(&fx_strings, p);
    return p;
}

void conf_election_close(reign_election *e)
{
    list_remove(&fx_elections, e);
    CONF_OK(reign_election_close(e), "reign_election_close");
}

void conf_factory_close(reign_factory *f)
{
    list_remove(&fx_factories, f);
    CONF_OK(reign_factory_close(f), "reign_factory_close");
}

void conf_track_child(pid_t pid)
{
    if (fx_n_children < sizeof fx_children / sizeof fx_children[0])
        fx_children[fx_n_children++] = pid;
}

void conf_untrack_child(pid_t pid)
{
    for (size_t i = 0; i < fx_n_children; i++) {
        if (fx_children[i] == pid) {
            fx_children[i] = fx_children[--fx_n_children];
            return;
        }
    }
}

int conf_setup(void **state)
{
    (void)state;
    fx_test_seq++;
    return 0;
}

int conf_teardown(void **state)
{
    (void)state;
    int rc = 0;
    /* A server left stopped or paused by a failed test would fail the rest. */
    ctl_repair();
    for (size_t i = 0; i < fx_n_children; i++) {
        kill(fx_children[i], SIGKILL);
        while (waitpid(fx_children[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    fx_n_children = 0;
    while (fx_observers.n > 0) /* before the factories: they refuse to close under one */
        reign_observer_free(fx_observers.items[--fx_observers.n]);
    while (fx_elections.n > 0) {
        reign_election *e = fx_elections.items[--fx_elections.n];
        int st = reign_election_close(e);
        if (st != REIGN_OK) {
            print_error("conformance[%s]: teardown: reign_election_close: %s (%s)\n",
                        conf.backend, reign_status_str(st), reign_last_error());
            rc = -1;
        }
    }
    while (fx_factories.n > 0) {
        reign_factory *f = fx_factories.items[--fx_factories.n];
        int st = reign_factory_close(f);
        if (st != REIGN_OK) {
            print_error("conformance[%s]: teardown: reign_factory_close: %s (%s)\n",
                        conf.backend, reign_status_str(st), reign_last_error());
            rc = -1;
        }
    }
    while (fx_strings.n > 0)
        free(fx_strings.items[--fx_strings.n]);
    return rc;
}

/* ---- 4. election helpers ------------------------------------------------------ */

int64_t conf_acquire_timeout_ms(void)
{
    return 3 * conf.ttl_ms + 5000;
}

/* Poll e until is_master == want; returns the time first seen so. */
static int64_t wait_is_master(reign_election *e, bool want, int64_t timeout_ms,
                              int64_t *before_ns)
{
    int64_t until = conf_now_ns() + timeout_ms * CONF_NS_PER_MS;
    int64_t before = 0;
    for (;;) {
        bool m = reign_election_is_master(e);
        int64_t now = conf_now_ns();
        if (m == want) {
            if (before_ns != NULL)
                *before_ns = before; /* 0: the very first sample had it */
            return now;
        }
        before = now;
        if (now >= until)
            return 0;
        conf_poll_pause_us(100);
    }
}

int64_t conf_wait_master(reign_election *e, int64_t timeout_ms, const char *what,
                         int64_t *before_ns)
{
    int64_t t = wait_is_master(e, true, timeout_ms, before_ns);
    if (t != 0)
        return t;
    print_error("conformance[%s]: %s: %s not master after %" PRId64 " ms; is_master=false; "
                "current master: %s\n",
                conf.backend, what, reign_election_resource(e), timeout_ms, conf_describe_master(e));
    fail();
    return 0;
}

int64_t conf_wait_not_master(reign_election *e, int64_t timeout_ms, const char *what,
                             int64_t *before_ns)
{
    int64_t t = wait_is_master(e, false, timeout_ms, before_ns);
    if (t != 0)
        return t;
    print_error("conformance[%s]: %s: %s still master after %" PRId64 " ms\n", conf.backend, what,
                reign_election_resource(e), timeout_ms);
    fail();
    return 0;
}

uint64_t conf_term(reign_election *e)
{
    uint64_t term = 0;
    CONF_OK(reign_election_term(e, &term), "reign_election_term(%.80s)", reign_election_resource(e));
    return term;
}

void conf_expect_master(reign_election *e, reign_factory *f, uint64_t term, const char *what)
{
    reign_master *m = NULL;
    CONF_OK(reign_election_current_master(e, &m), "%s: reign_election_current_master(%.80s)", what,
            reign_election_resource(e));
    const char *want = reign_factory_instance_id(f);
    bool same = strcmp(m->instance_id, want) == 0;
    uint64_t got_term = m->term;
    char got_id[256];
    snprintf(got_id, sizeof got_id, "%s", m->instance_id);
    reign_master_free(m);
    CONF_CHECK(same, "%s: current master of %.80s is \"%s\", expected \"%s\"", what,
               reign_election_resource(e), got_id, want);
    CONF_CHECK(got_term == term, "%s: current master's term is %" PRIu64 ", expected %" PRIu64,
               what, got_term, term);
}

const char *conf_describe_master(reign_election *e)
{
    reign_master *m = NULL;
    int st = reign_election_current_master(e, &m);
    const char *out;
    if (st == REIGN_OK)
        out = fx_strdup_printf("%s term %" PRIu64, m->instance_id, m->term);
    else if (st == REIGN_ENOMASTER)
        out = "nobody";
    else
        out = fx_strdup_printf("error %s: %s", reign_status_str(st), reign_last_error());
    reign_master_free(m);
    return out;
}

typedef struct acquire_seen {
    reign_factory *f;
} acquire_seen;

static bool has_acquired_once(void *ctx)
{
    acquire_seen *a = ctx;
    reign_stats s;
    return reign_factory_stats(a->f, &s) == REIGN_OK && s.ops_acquire >= 1;
}

void conf_wait_candidate(reign_factory *f, reign_election *e)
{
    acquire_seen a = {f};
    CONF_CHECK(conf_wait_until(has_acquired_once, &a, 5000, 200),
               "no ACQUIRE sent within 5 s after start of %.80s", reign_election_resource(e));
    /* A READ is answered after every batch gathered before it: once it is
     * back, the first ACQUIRE has been answered too. */
    reign_master *m = NULL;
    int st = reign_election_current_master(e, &m);
    CONF_CHECK(st == REIGN_OK || st == REIGN_ENOMASTER,
               "current_master after the first ACQUIRE: %s (%s)", reign_status_str(st),
               reign_last_error());
    reign_master_free(m);
}

/* ---- 5. events ------------------------------------------------------------------ */

static pthread_mutex_t events_mu = PTHREAD_MUTEX_INITIALIZER;

void conf_events_cb(reign_election *e, const reign_event *event, void *payload)
{
    (void)e;
    conf_events *log = payload;
    int64_t now = conf_now_ns();
    pthread_mutex_lock(&events_mu);
    if (log->n < CONF_EVENTS_MAX) {
        log->ev[log->n] = *event;
        log->at_ns[log->n] = now;
        log->n++;
    } else {
        log->dropped++;
    }
    pthread_mutex_unlock(&events_mu);
}

void conf_events_snapshot(conf_events *log, conf_events *out)
{
    pthread_mutex_lock(&events_mu);
    *out = *log;
    pthread_mutex_unlock(&events_mu);
}

static const char *event_name(const reign_event *ev)
{
    if (ev->kind == REIGN_EVENT_GAINED)
        return "GAINED";
    switch (ev->reason) {
    case REIGN_LOST_RESIGNED: return "LOST(RESIGNED)";
    case REIGN_LOST_EXPIRED: return "LOST(EXPIRED)";
    case REIGN_LOST_BACKEND: return "LOST(BACKEND)";
    case REIGN_LOST_CLOSED: return "LOST(CLOSED)";
    default: return "LOST(?)";
    }
}

int conf_events_wait_lost(conf_events *log, int64_t timeout_ms, const char *what)
{
    int64_t until = conf_now_ns() + timeout_ms * CONF_NS_PER_MS;
    conf_events snap;
    for (;;) {
        conf_events_snapshot(log, &snap);
        for (int i = 0; i < snap.n; i++)
            if (snap.ev[i].kind == REIGN_EVENT_LOST)
                return i;
        if (conf_now_ns() >= until)
            break;
        conf_poll_pause_us(1000);
    }
    print_error("conformance[%s]: %s: no LOST event within %" PRId64 " ms; events seen:",
                conf.backend, what, timeout_ms);
    for (int i = 0; i < snap.n; i++)
        print_error(" %s(term %" PRIu64 ")", event_name(&snap.ev[i]), snap.ev[i].term);
    print_error("%s\n", snap.n == 0 ? " none" : "");
    fail();
    return -1;
}

/* ---- 6. recorders ---------------------------------------------------------------- */

void conf_recorder_init(conf_recorder *r)
{
    memset(r, 0, sizeof *r);
    r->after_gap_master = -1;
}

bool conf_recorder_sample(conf_recorder *r, const reign_election *e)
{
    uint64_t term = 0;
    /* term fails with ENOTMASTER exactly when is_master would be false. */
    bool m = reign_election_term(e, &term) == REIGN_OK;
    int64_t now = conf_now_ns();
    if (r->last_sample_ns != 0 && now - r->last_sample_ns > r->largest_gap_ns) {
        r->largest_gap_ns = now - r->last_sample_ns;
        r->after_gap_master = m;
        r->after_gap_term = m ? term : 0;
    }
    r->last_sample_ns = now;
    if (m) {
        /* A new term is a new mastership, even with no "false" sample
         * between (a stopped process that lost and won again at once). */
        if (!r->in || term != r->term) {
            if (r->n < CONF_INTERVALS_MAX) {
                r->iv[r->n][0] = now;
                r->iv[r->n][1] = now;
                r->iv_term[r->n] = term;
                r->n++;
            } else {
                r->overflow++;
            }
        } else if (r->n > 0 && r->overflow == 0) {
            r->iv[r->n - 1][1] = now;
        }
        r->term = term;
    }
    r->in = m;
    return m;
}

bool conf_recorder_overlap(const conf_recorder *a, const conf_recorder *b, int *a_out, int *b_out)
{
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++)
            if (a->iv[i][0] <= b->iv[j][1] && b->iv[j][0] <= a->iv[i][1]) {
                *a_out = i;
                *b_out = j;
                return true;
            }
    return false;
}

void conf_recorder_print(const char *who, const conf_recorder *r, int64_t origin_ns)
{
    print_message("conformance[%s]:   %s master intervals (ms from origin):", conf.backend, who);
    for (int i = 0; i < r->n; i++)
        print_message(" [%.1f, %.1f] term %" PRIu64 ";", conf_ms(r->iv[i][0] - origin_ns),
                      conf_ms(r->iv[i][1] - origin_ns), r->iv_term[i]);
    print_message("%s%s\n", r->n == 0 ? " none" : "", r->overflow ? " (overflowed)" : "");
}

/* ---- 7. server control -------------------------------------------------------------- */

bool conf_ctl_available(void)
{
    return conf.server_ctl != NULL || conf.mem_ctl;
}

static void ctl_state_after(const char *action)
{
    if (strcmp(action, "stop") == 0)
        ctl_state = "stopped";
    else if (strcmp(action, "pause") == 0)
        ctl_state = "paused";
    else
        ctl_state = "running";
}

#ifdef REIGN_CONF_HAVE_MEM
static int mem_ctl(const char *action)
{
    if (strcmp(action, "stop") == 0)
        return reign_mem_set_fault(conf.mem_store, REIGN_MEM_FAULT_FAIL);
    if (strcmp(action, "pause") == 0)
        return reign_mem_set_fault(conf.mem_store, REIGN_MEM_FAULT_STALL);
    if (strcmp(action, "start") == 0 || strcmp(action, "resume") == 0)
        return reign_mem_set_fault(conf.mem_store, REIGN_MEM_FAULT_NONE);
    if (strcmp(action, "restart") == 0) {
        /* A restart that keeps data but loses the live leases. */
        int rc = reign_mem_set_fault(conf.mem_store, REIGN_MEM_FAULT_NONE);
        return rc != REIGN_OK ? rc : reign_mem_expire_all(conf.mem_store);
    }
    return REIGN_EINVAL;
}
#endif

/* Run an action; false with a message in err (no assertion: teardown uses it). */
static bool ctl_run(const char *action, char *err, size_t err_size)
{
    if (conf.server_ctl != NULL) {
        char *cmd = NULL;
        if (asprintf(&cmd, "%s %s 1>&2", conf.server_ctl, action) < 0) {
            snprintf(err, err_size, "out of memory");
            return false;
        }
        fflush(stdout);
        fflush(stderr);
        int st = system(cmd);
        free(cmd);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            snprintf(err, err_size, "\"%s %s\" failed (wait status %d)", conf.server_ctl, action,
                     st);
            return false;
        }
        return true;
    }
#ifdef REIGN_CONF_HAVE_MEM
    int rc = mem_ctl(action);
    if (rc != REIGN_OK) {
        snprintf(err, err_size, "mem store %s: %s through the test hooks: %s (%s)", conf.mem_store,
                 action, reign_status_str(rc), reign_last_error());
        return false;
    }
    return true;
#else
    snprintf(err, err_size, "no server control");
    return false;
#endif
}

void conf_ctl(const char *action)
{
    char err[512];
    int64_t t0 = conf_now_ns();
    if (!ctl_run(action, err, sizeof err)) {
        print_error("conformance[%s]: server control: %s\n", conf.backend, err);
        fail();
    }
    ctl_state_after(action);
    print_message("conformance[%s]:   server %s took %.1f ms\n", conf.backend, action,
                  conf_ms(conf_now_ns() - t0));
}

static void ctl_repair(void)
{
    const char *action = NULL;
    if (strcmp(ctl_state, "stopped") == 0)
        action = "start";
    else if (strcmp(ctl_state, "paused") == 0)
        action = "resume";
    if (action == NULL)
        return;
    char err[512];
    if (ctl_run(action, err, sizeof err))
        ctl_state_after(action);
    else
        print_error("conformance[%s]: teardown: server control: %s\n", conf.backend, err);
}

/* ---- 8. metrics ----------------------------------------------------------------------- */

static double metrics[CONF_M_COUNT] = {-1, -1, -1, -1, -1, -1};
static const char *const metric_names[CONF_M_COUNT] = {
    "handoff_ms", "takeover_ms", "stop_takeover_ms", "belief_after_server_stop_ms",
    "belief_after_server_pause_ms", "recovery_ms"};

void conf_metric_set(conf_metric m, double ms)
{
    metrics[m] = ms;
}

static void metrics_write(FILE *out)
{
    fprintf(out, "conformance[%s]:", conf.backend);
    for (int i = 0; i < CONF_M_COUNT; i++) {
        if (metrics[i] < 0)
            fprintf(out, " %s=n/a", metric_names[i]);
        else
            fprintf(out, " %s=%.2f", metric_names[i], metrics[i]);
    }
    fprintf(out, "\n");
    fflush(out);
}

/* Also appended to $REIGN_CONF_REPORT, so scripts/test.sh can show the
 * figures of every backend after ctest (which hides passing output). */
void conf_metrics_print(void)
{
    metrics_write(stdout);
    const char *path = getenv("REIGN_CONF_REPORT");
    FILE *f = path != NULL && path[0] ? fopen(path, "a") : NULL;
    if (f != NULL) {
        metrics_write(f);
        fclose(f);
    }
}
