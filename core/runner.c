/* The public runner: drives one election with the pure state machine of
 * runner_step.c, performing its actions with the public election API.
 *
 * Threads: one thread steps a runner (reign_runner_step or reign_runner_run).
 * Other threads only touch the fields under `mu`: stop, election events,
 * resignation hand-back. The runner takes the election's callback slot (set
 * in reign_runner_new) to wake run() at once on gained/lost events.
 *
 * Lifetime: a resignation handed to the application keeps the runner's
 * memory alive (a reference count), so executing it after reign_runner_free
 * is safe and only frees it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "reign/reign.h"
#include "runner_perform.h"
#include "runner_step.h"

/* Longest single sleep of run(); it then re-reads the clock. */
#define RUNNER_MAX_WAIT_MS (INT64_C(3600) * 1000)

struct reign_runner {
    reign_election *election;  /* not owned */
    reign_tracker *tracker;    /* not owned, may be NULL */

    /* Only the stepping thread uses these. */
    runner_state st;
    reign_clock_fn clock;
    reign_random_fn random;
    void *clock_random_payload;
    uint64_t rng;  /* internal generator state when random is NULL */

    /* mu guards everything below; cond signals changes of stop_requested,
     * kicked and resign_done to run(). */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool running;
    bool stop_requested;
    bool kicked;       /* an election event arrived since the last step */
    bool resign_done;  /* the pending resignation was executed */
    reign_resignation *pending;
    reign_resign_fn resign_fn;
    void *resign_payload;
    int refs;    /* 1 for the runner itself + 1 per live resignation */
    int step_rc; /* stepping thread: first hook failure of the current step */
    bool freed;  /* reign_runner_free was called; memory kept for refs */
};

struct reign_resignation {
    reign_runner *runner;
};

static int64_t default_clock(void *payload)
{
    (void)payload;
    return reign_monotonic_ms();
}

static uint64_t draw(reign_runner *r)
{
    if (r->random != NULL)
        return r->random(r->clock_random_payload);
    return reign_runner_splitmix64(&r->rng);
}

static int64_t runner_now(const reign_runner *r)
{
    return r->clock(r->clock_random_payload);
}

/* Election events (engine thread): wake run() so the tracker follows at once. */
static void on_election_event(reign_election *election, const reign_event *event, void *payload)
{
    reign_runner *r = payload;
    (void)election;
    (void)event;
    pthread_mutex_lock(&r->mu);
    r->kicked = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void runner_destroy(reign_runner *r)
{
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int reign_runner_new(reign_election *election, reign_tracker *tracker,
                     const reign_runner_config *config, reign_runner **out)
{
    reign_runner_config defaults = REIGN_RUNNER_CONFIG_INIT;
    runner_settings settings;
    reign_runner *r = NULL;
    pthread_condattr_t attr;
    bool mu_ok = false, cond_ok = false;
    int rc;

    if (election == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "runner: %s is NULL", election == NULL ? "election" : "out");
    if (config == NULL)
        config = &defaults;
    rc = reign_runner_settings_from_config(config, &settings);
    if (rc != REIGN_OK)
        return rc;

    r = calloc(1, sizeof *r);
    if (r == NULL) {
        rc = reign_error_set(REIGN_ENOMEM, "runner: out of memory");
        goto out;
    }
    r->election = election;
    r->tracker = tracker;
    reign_runner_state_init(&r->st, &settings);
    r->clock = config->clock != NULL ? config->clock : default_clock;
    r->random = config->random;
    r->clock_random_payload = config->clock_random_payload;
    r->rng = (uint64_t)reign_clock_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)r;
    r->refs = 1;

    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        rc = reign_error_set(REIGN_ENOMEM, "runner: pthread_mutex_init failed");
        goto out;
    }
    mu_ok = true;
    if (pthread_condattr_init(&attr) != 0) {
        rc = reign_error_set(REIGN_ENOMEM, "runner: pthread_condattr_init failed");
        goto out;
    }
    /* Timed waits on CLOCK_MONOTONIC: a wall-clock step must not move them. */
    int err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (err == 0)
        err = pthread_cond_init(&r->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (err != 0) {
        rc = reign_error_set(REIGN_ENOMEM, "runner: pthread_cond_init failed (errno %d)", err);
        goto out;
    }
    cond_ok = true;

    /* Best effort: an election that refuses a callback (e.g. already started)
     * still works, woken only by the master check interval. */
    if (reign_election_set_callback(election, on_election_event, r) != REIGN_OK)
        reign_error_clear();

    *out = r;
    r = NULL;
    rc = REIGN_OK;
out:
    if (r != NULL) {
        if (cond_ok)
            pthread_cond_destroy(&r->cond);
        if (mu_ok)
            pthread_mutex_destroy(&r->mu);
        free(r);
    }
    return rc;
}

int reign_runner_set_resign_handler(reign_runner *runner, reign_resign_fn fn, void *payload)
{
    if (runner == NULL)
        return reign_error_set(REIGN_EINVAL, "runner: runner is NULL");
    pthread_mutex_lock(&runner->mu);
    runner->resign_fn = fn;
    runner->resign_payload = payload;
    pthread_mutex_unlock(&runner->mu);
    return REIGN_OK;
}

/* Hand a resignation to the application, or execute it at once without a
 * handler. Called on the stepping thread without `mu` held, so a handler may
 * execute synchronously. */
static int offer_resignation(reign_runner *r)
{
    reign_resignation *res = malloc(sizeof *res);
    reign_resign_fn fn;
    void *payload;

    if (res == NULL) {
        /* Without memory we cannot hand it over; count it as done so the
         * runner campaigns again instead of waiting forever. */
        pthread_mutex_lock(&r->mu);
        r->resign_done = true;
        pthread_mutex_unlock(&r->mu);
        return reign_error_set(REIGN_ENOMEM, "runner %s: out of memory for a resignation",
                               reign_election_resource(r->election));
    }
    res->runner = r;
    pthread_mutex_lock(&r->mu);
    r->pending = res;
    r->resign_done = false;
    r->refs++;
    fn = r->resign_fn;
    payload = r->resign_payload;
    pthread_mutex_unlock(&r->mu);

    if (fn == NULL)
        return reign_resignation_execute(res);
    fn(r, res, payload);
    return REIGN_OK;
}

/* ---- The performer's hooks: tracker, resignation hand-off, draws ---- */

static void runner_track(void *ctx, bool is_master, bool resigning)
{
    (void)resigning; /* the tracker goes false either way (Trillian) */
    reign_runner *r = ctx;
    if (r->tracker == NULL)
        return;
    int rc = reign_tracker_set(r->tracker, reign_election_resource(r->election), is_master);
    if (rc != REIGN_OK && r->step_rc == REIGN_OK)
        r->step_rc = rc;
}

static bool runner_offer(void *ctx)
{
    reign_runner *r = ctx;
    int rc = offer_resignation(r);
    if (rc != REIGN_OK && r->step_rc == REIGN_OK)
        r->step_rc = rc;
    /* Executed already (no handler, or one that executes at once)? */
    pthread_mutex_lock(&r->mu);
    bool done = r->resign_done;
    pthread_mutex_unlock(&r->mu);
    return done;
}

static uint64_t runner_draw(void *ctx)
{
    return draw(ctx);
}

static const runner_hooks runner_hooks_of_runner = {
    .track = runner_track,
    .offer_resignation = runner_offer,
    .may_campaign = NULL,
    .draw = runner_draw,
};

int reign_runner_step(reign_runner *runner, int64_t now_ms, int64_t *next_wake_ms)
{
    if (runner == NULL || next_wake_ms == NULL)
        return reign_error_set(REIGN_EINVAL, "runner: %s is NULL",
                               runner == NULL ? "runner" : "next_wake_ms");

    runner_input in = {.now_ms = now_ms};
    pthread_mutex_lock(&runner->mu);
    in.resign_done = runner->resign_done;
    pthread_mutex_unlock(&runner->mu);

    runner->step_rc = REIGN_OK;
    int rc = reign_runner_advance(&runner->st, runner->election, &in, &runner_hooks_of_runner,
                                  runner, next_wake_ms);
    if (runner->st.phase != RUNNER_RESIGNING) {
        /* The executed resignation has been consumed by the machine. */
        pthread_mutex_lock(&runner->mu);
        runner->resign_done = false;
        pthread_mutex_unlock(&runner->mu);
    }
    return runner->step_rc != REIGN_OK ? runner->step_rc : rc;
}

/* run() is over: nothing watches the election any more, so neither the
 * tracker nor the backend may keep claiming a mastership (Trillian's head
 * version does the same: tracker false, election closed). */
static void wind_down(reign_runner *r)
{
    if (r->st.phase == RUNNER_MASTER && r->tracker != NULL &&
        reign_tracker_set(r->tracker, reign_election_resource(r->election), false) != REIGN_OK)
        reign_error_clear();
    if (r->st.phase != RUNNER_INIT && reign_election_resign(r->election) != REIGN_OK)
        reign_error_clear();
    if (r->st.phase != RUNNER_RESIGNING)
        reign_runner_state_init(&r->st, &r->st.cfg);
}

int reign_runner_run(reign_runner *runner)
{
    int rc = REIGN_OK;
    if (runner == NULL)
        return reign_error_set(REIGN_EINVAL, "runner: runner is NULL");

    pthread_mutex_lock(&runner->mu);
    if (runner->running) {
        pthread_mutex_unlock(&runner->mu);
        return reign_error_set(REIGN_ESTATE, "runner %s: already running",
                               reign_election_resource(runner->election));
    }
    runner->running = true;
    while (!runner->stop_requested) {
        int64_t next_wake = 0;
        runner->kicked = false;
        pthread_mutex_unlock(&runner->mu);

        int step_rc = reign_runner_step(runner, runner_now(runner), &next_wake);

        pthread_mutex_lock(&runner->mu);
        if (step_rc == REIGN_ECLOSED) {
            /* The election is gone: nothing left to drive. */
            rc = step_rc;
            break;
        }
        /* Other errors (backend, memory) are retried by the machine itself. */
        while (!runner->stop_requested && !runner->kicked && !runner->resign_done) {
            int64_t left = next_wake - runner_now(runner);
            if (left <= 0)
                break;
            if (left > RUNNER_MAX_WAIT_MS)
                left = RUNNER_MAX_WAIT_MS; /* huge intervals: no overflow below */
            struct timespec ts = reign_clock_timespec(reign_clock_now_ns() + left * REIGN_NS_PER_MS);
            int err = pthread_cond_timedwait(&runner->cond, &runner->mu, &ts);
            if (err != 0 && err != ETIMEDOUT && err != EINTR) {
                rc = reign_error_set(REIGN_EBUG, "runner: pthread_cond_timedwait failed (errno %d)", err);
                goto out;
            }
        }
    }
out:
    pthread_mutex_unlock(&runner->mu);
    wind_down(runner);
    pthread_mutex_lock(&runner->mu);
    runner->stop_requested = false;
    runner->running = false;
    pthread_mutex_unlock(&runner->mu);
    if (rc == REIGN_OK)
        reign_error_clear();
    return rc;
}

void reign_runner_stop(reign_runner *runner)
{
    if (runner == NULL)
        return;
    pthread_mutex_lock(&runner->mu);
    runner->stop_requested = true;
    pthread_cond_broadcast(&runner->cond);
    pthread_mutex_unlock(&runner->mu);
}

void reign_runner_free(reign_runner *runner)
{
    bool last;
    if (runner == NULL)
        return;
    /* Give the election's callback slot back so no event reaches freed
     * memory; failure (a closed election) leaves nothing to call us. */
    if (reign_election_set_callback(runner->election, NULL, NULL) != REIGN_OK)
        reign_error_clear();
    pthread_mutex_lock(&runner->mu);
    runner->freed = true;
    last = --runner->refs == 0;
    pthread_mutex_unlock(&runner->mu);
    if (last)
        runner_destroy(runner);
}

int reign_resignation_execute(reign_resignation *resignation)
{
    reign_runner *r;
    bool live, last;
    int rc = REIGN_OK;

    if (resignation == NULL)
        return reign_error_set(REIGN_EINVAL, "runner: resignation is NULL");
    r = resignation->runner;

    pthread_mutex_lock(&r->mu);
    live = !r->freed && r->pending == resignation;
    pthread_mutex_unlock(&r->mu);

    /* The runner stays in RESIGNING until this returns, so it cannot gain
     * a new mastership that this resign would end by mistake. */
    if (live && reign_election_is_master(r->election))
        rc = reign_election_resign(r->election);

    pthread_mutex_lock(&r->mu);
    if (r->pending == resignation) {
        r->pending = NULL;
        r->resign_done = true;
        pthread_cond_broadcast(&r->cond);
    }
    last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    free(resignation);
    if (last)
        runner_destroy(r);
    return rc;
}
