/* Shard workers: share N resources among every instance running this
 * program. Each instance is master of about its fair share; on_event starts
 * a worker thread for a resource it gains, and stops it when the shard
 * revokes the resource — before the lease is released, so the next owner's
 * worker never runs beside this one. Halfway through, the set changes
 * (job-0 removed, job-N added); on SIGINT/SIGTERM (or at the end) the
 * instance drains: it hands every resource over, one by one, then stops.
 * Start it several times against one backend and watch the resources move.
 *
 *   cc -o shard_workers shard_workers.c $(pkg-config --cflags --libs reign)
 *   ./shard_workers file:///tmp/locks & ./shard_workers file:///tmp/locks &
 *   ./shard_workers --count 4 --seconds 5 mem://demo
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <reign/reign.h>

#define MAX_RESOURCES 1001 /* --count, plus the one added halfway */
#define ID_MAX 32

/* One resource and its worker. Events for a given resource always run on
 * the same shard thread, so `thread` and `running` need no lock; the
 * worker only reads `keep_going` and `term`. */
typedef struct worker {
    char id[ID_MAX];
    pthread_t thread;
    bool running;
    atomic_bool keep_going;
    uint64_t term; /* fencing token of the mastership this worker serves */
} worker;

static worker workers[MAX_RESOURCES];
static size_t n_workers;
static reign_shard *shard;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The per-resource work: the fencing loop. reign_shard_term answers,
 * without I/O, whether master-only work may go on, and with which term; a
 * real worker passes the term with every write to shared storage, which
 * refuses terms lower than the highest it has seen. That covers the one
 * case where the shard cannot warn first: a lease that ran out (a stall,
 * an unreachable backend) while a write was in flight. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    long n = 0;
    uint64_t term;
    while (atomic_load(&w->keep_going) && reign_shard_term(shard, w->id, &term) == REIGN_OK) {
        if (++n % 10 == 0)
            printf("  %s: working (term %" PRIu64 ")\n", w->id, term);
        sleep_ms(100);
    }
    return NULL;
}

static worker *find_worker(const char *id)
{
    for (size_t i = 0; i < n_workers; i++)
        if (strcmp(workers[i].id, id) == 0)
            return &workers[i];
    return NULL;
}

static void stop_worker(worker *w, const char *why)
{
    if (!w->running)
        return;
    atomic_store(&w->keep_going, false);
    pthread_join(w->thread, NULL); /* at most one 100 ms step */
    w->running = false;
    printf("%s %s (term %" PRIu64 "): worker stopped\n", why, w->id, w->term);
}

/* Called on a shard thread for every gain, revocation and loss. Returning
 * from REVOKED tells the shard the worker has stopped: only then is the
 * lease released. Keep workers quick to stop (or answer REIGN_SHARD_LATER
 * and call reign_shard_revoke_done when they have). */
static int on_event(reign_shard *s, const reign_shard_event *ev, void *payload)
{
    (void)s;
    (void)payload;
    worker *w = find_worker(ev->resource_id);
    if (w == NULL)
        return REIGN_SHARD_DONE;
    if (ev->kind == REIGN_SHARD_GAINED && !w->running) {
        w->term = ev->term;
        atomic_store(&w->keep_going, true);
        int err = pthread_create(&w->thread, NULL, worker_main, w);
        if (err != 0) {
            /* Give it back: another instance may have a thread to spare. */
            fprintf(stderr, "%s: cannot start worker: %s\n", w->id, strerror(err));
            if (reign_shard_remove(shard, w->id) != REIGN_OK)
                fprintf(stderr, "remove %s: %s\n", w->id, reign_last_error());
            return REIGN_SHARD_DONE;
        }
        w->running = true;
        printf("gained %s (term %" PRIu64 "): worker started\n", w->id, ev->term);
    } else if (ev->kind == REIGN_SHARD_REVOKED) {
        stop_worker(w, "revoked");
    } else if (ev->kind == REIGN_SHARD_LOST) {
        stop_worker(w, "lost"); /* no warning was possible: stop at once */
    }
    fflush(stdout);
    return REIGN_SHARD_DONE;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void print_balance(reign_shard *s)
{
    reign_shard_balance b;
    if (reign_shard_balance_info(s, &b) != REIGN_OK) {
        fprintf(stderr, "balance_info: %s\n", reign_last_error());
        return;
    }
    char *held = reign_tracker_string(reign_shard_tracker(s));
    printf("balance: held %zu, target %zu, fair share %zu, %zu member(s), %zu resources: %s\n",
           b.held, b.target, b.fair_share, b.members, b.resources, held != NULL ? held : "?");
    free(held);
    fflush(stdout);
}

static int parse_count(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: shard_workers [--count N] [--seconds S] [URI]\n"
               "  --count N    resources job-0 .. job-(N-1) (default 8, at most %d)\n"
               "  --seconds S  stop after S seconds (default: run until Ctrl-C)\n"
               "  URI          backend (default: $REIGN_URI, else file:///tmp/reign-$UID)\n",
               MAX_RESOURCES);
}

int main(int argc, char **argv)
{
    const char *uri = NULL;
    long count = 8, seconds = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], 1, MAX_RESOURCES, &count) != 0) {
                fprintf(stderr, "--count: '%s' is not a number in 1..%d\n", argv[i], MAX_RESOURCES);
                return 2;
            }
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], 0, 86400, &seconds) != 0) {
                fprintf(stderr, "--seconds: '%s' is not a number in 0..86400\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && uri == NULL) {
            uri = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }

    reign_factory *factory = NULL;
    const char *ids[MAX_RESOURCES];
    int exit_code = 1;

    setvbuf(stdout, NULL, _IOLBF, 0); /* line by line, also into a pipe */

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }

    n_workers = (size_t)count + 1; /* job-N joins the set halfway */
    for (size_t i = 0; i < n_workers; i++) {
        snprintf(workers[i].id, sizeof workers[i].id, "job-%zu", i);
        atomic_init(&workers[i].keep_going, false);
        ids[i] = workers[i].id;
    }

    /* "weight=N" in the metadata gives an instance N times the share of a
     * weight-1 instance; other instances see the metadata too. */
    reign_options options = REIGN_OPTIONS_INIT;
    options.metadata = "weight=1";
    if (reign_factory_open(uri, &options, &factory) != REIGN_OK) {
        fprintf(stderr, "cannot open %s: %s\n", uri != NULL ? uri : "the default backend",
                reign_last_error());
        goto out;
    }
    printf("instance %s on %s\n", reign_factory_instance_id(factory), reign_factory_uri(factory));

    reign_shard_config config = REIGN_SHARD_CONFIG_INIT; /* balancing on */
    config.on_event = on_event;
    /* Quicker than the defaults, for a demo: check every second, count a
     * newcomer after 5 s (default: 2 x TTL) and move resources to it once
     * they have been held for the minimum hold of 10 s (default: 60 s). */
    config.runner.pre_election_pause_ms = 100;
    config.runner.master_check_interval_ms = 1000;
    config.runner.master_hold_interval_ms = REIGN_RUNNER_MIN_MASTER_HOLD_INTERVAL_MS;
    config.membership.stabilization_ms = 5000;
    if (reign_shard_new(factory, ids, (size_t)count, &config, &shard) != REIGN_OK ||
        reign_shard_start(shard) != REIGN_OK) {
        fprintf(stderr, "shard: %s\n", reign_last_error());
        goto out;
    }

    int64_t started = reign_monotonic_ms();
    int64_t next_print = started, change_at = started + (seconds >= 0 ? seconds * 500 : 30000);
    while (!stop_requested) {
        int64_t now = reign_monotonic_ms();
        if (seconds >= 0 && now - started >= seconds * 1000)
            break;
        if (change_at != 0 && now >= change_at) {
            /* The set changes while running: job-0 is revoked, released
             * and forgotten; job-N campaigns at once if it is ours. */
            printf("set: removing %s, adding %s\n", ids[0], ids[count]);
            if (reign_shard_remove(shard, ids[0]) != REIGN_OK ||
                reign_shard_add(shard, ids[count]) != REIGN_OK)
                fprintf(stderr, "set change: %s\n", reign_last_error());
            change_at = 0;
        }
        if (now >= next_print) {
            print_balance(shard);
            next_print = now + 2000;
        }
        sleep_ms(100);
    }
    print_balance(shard);

    /* Drain: leave the membership, so the others target our resources,
     * and hand them over one by one (each worker stopped first); then stop
     * revokes whatever is left (nothing, unless the drain timed out). */
    printf("draining\n");
    if (reign_shard_drain(shard, 10000) != REIGN_OK)
        fprintf(stderr, "drain: %s\n", reign_last_error());
    if (reign_shard_stop(shard) != REIGN_OK) {
        fprintf(stderr, "shard stop: %s\n", reign_last_error());
        goto out;
    }
    exit_code = 0;
out:
    reign_shard_free(shard); /* stops it if running: no shard thread is left */
    /* Stop any worker that a failure above left running. */
    for (size_t i = 0; i < n_workers; i++) {
        if (workers[i].running) {
            atomic_store(&workers[i].keep_going, false);
            pthread_join(workers[i].thread, NULL);
            workers[i].running = false;
        }
    }
    if (reign_factory_close(factory) != REIGN_OK)
        fprintf(stderr, "close factory: %s\n", reign_last_error());
    return exit_code;
}
