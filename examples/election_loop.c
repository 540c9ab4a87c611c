/* One election in an application loop: wait to become master, do master-only
 * work while the term is still ours, pass the term to storage as a fencing
 * token, resign on Ctrl-C. Copy it and replace do_master_work().
 *
 *   cc -o election_loop election_loop.c $(pkg-config --cflags --libs reign)
 *   ./election_loop                          # $REIGN_URI, else file:///tmp/reign-$UID
 *   ./election_loop file:///tmp/locks jobs/7 # run it twice and Ctrl-C the master
 *   ./election_loop --once noop://           # exit after the first piece of work
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <reign/reign.h>

/* ---- a stand-in for the storage the master writes to ------------------
 *
 * Real storage is shared by every instance (a database row, an object
 * store, another service). It remembers the highest term that wrote to it
 * and refuses writes with a lower one, so a master that lost its lease
 * without knowing it yet (a paused process, a slow network) cannot
 * overwrite the work of its successor. With SQL this is
 *   UPDATE t SET value = $1, term = $2 WHERE id = $3 AND term <= $2
 * and "0 rows updated" means "stale: stop". */
typedef struct fake_storage {
    uint64_t highest_term;
    long value;
} fake_storage;

/* 0 = written, -1 = refused because a newer master has written since. */
static int storage_write(fake_storage *s, uint64_t term, long value)
{
    if (term < s->highest_term)
        return -1;
    s->highest_term = term;
    s->value = value;
    return 0;
}

/* ---- signals --------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    /* An interrupted sleep is fine: the caller checks stop_requested. */
    nanosleep(&ts, NULL);
}

/* ---- the election callback ---------------------------------------------------
 *
 * Runs on the factory's engine thread: keep it short, never block, never
 * call reign_election_close or _wait from here. It is the earliest news of
 * a loss; the loop below does not depend on it, because it checks the term
 * before every write anyway. */
static const char *reason_name(reign_lost_reason r)
{
    switch (r) {
    case REIGN_LOST_RESIGNED: return "resigned";
    case REIGN_LOST_EXPIRED: return "lease deadline passed without a renewal";
    case REIGN_LOST_BACKEND: return "backend says the lease is not ours";
    case REIGN_LOST_CLOSED: return "election closed";
    default: return "unknown";
    }
}

static void on_event(reign_election *election, const reign_event *ev, void *payload)
{
    (void)payload;
    if (ev->kind == REIGN_EVENT_GAINED) {
        fprintf(stderr, "callback: gained %s, term %" PRIu64 "\n",
                reign_election_resource(election), ev->term);
    } else {
        fprintf(stderr, "callback: lost %s, term %" PRIu64 ": %s\n",
                reign_election_resource(election), ev->term, reason_name(ev->reason));
    }
}

/* ---- master work --------------------------------------------------------------- */

/* One unit of master-only work. Returns 0 to go on, -1 when storage says
 * our term is stale (then we must stop acting as master at once). */
static int do_master_work(fake_storage *storage, uint64_t term, long step)
{
    if (storage_write(storage, term, step) != 0) {
        fprintf(stderr, "storage refused term %" PRIu64 ": a newer master exists\n", term);
        return -1;
    }
    printf("term %" PRIu64 ": wrote step %ld\n", term, step);
    fflush(stdout);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: election_loop [--once] [URI [RESOURCE]]\n"
               "  URI       backend (default: $REIGN_URI, else file:///tmp/reign-$UID)\n"
               "  RESOURCE  what to be master of (default: example/election-loop)\n"
               "  --once    exit 0 after the first piece of master work\n");
}

int main(int argc, char **argv)
{
    const char *uri = NULL; /* NULL: $REIGN_URI, else the library's default */
    const char *resource = "example/election-loop";
    int once = 0, n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) {
            once = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || n_pos == 2) {
            usage(stderr);
            return 2;
        } else if (n_pos++ == 0) {
            uri = argv[i];
        } else {
            resource = argv[i];
        }
    }

    reign_factory *factory = NULL;
    reign_election *election = NULL;
    fake_storage storage = {0, 0};
    long step = 0;
    uint64_t seen_term = 0;
    int exit_code = 1;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0); /* line by line, also into a pipe */

    /* Handlers are process-wide: one that only sets a flag may run on any
     * thread, reign's included. Installed first, so that Ctrl-C during a
     * slow open is caught too. */
    if (install_signals() != 0) {
        perror("sigaction");
        return 1;
    }

    reign_options options = REIGN_OPTIONS_INIT;
    options.metadata = "election_loop example"; /* what `reign status` shows */
    rc = reign_factory_open(uri, &options, &factory);
    if (rc != REIGN_OK) {
        fprintf(stderr, "cannot open %s: %s\n", uri != NULL ? uri : "the default backend",
                reign_last_error());
        goto out;
    }
    printf("instance %s on %s, ttl %" PRId64 " ms\n", reign_factory_instance_id(factory),
           reign_factory_uri(factory), reign_factory_ttl_ms(factory));

    if ((rc = reign_election_new(factory, resource, &election)) != REIGN_OK ||
        (rc = reign_election_set_callback(election, on_event, NULL)) != REIGN_OK) {
        fprintf(stderr, "election %s: %s\n", resource, reign_last_error());
        goto out;
    }

    while (!stop_requested) {
        /* Campaign; wait in slices so that Ctrl-C is noticed. */
        rc = reign_election_wait(election, 500);
        if (rc == REIGN_ETIMEDOUT) {
            /* Who holds it? One backend read; print only news. */
            reign_master *m = NULL;
            if (reign_election_current_master(election, &m) == REIGN_OK) {
                bool self = strcmp(m->instance_id, reign_factory_instance_id(factory)) == 0;
                if (m->term != seen_term && !self) /* self: won just now, wait says so next */
                    printf("waiting: %s is master (term %" PRIu64 ")\n", m->instance_id,
                           m->term);
                seen_term = m->term;
                reign_master_free(m);
            }
            continue;
        }
        if (rc != REIGN_OK) {
            fprintf(stderr, "wait: %s\n", reign_last_error());
            goto out;
        }

        /* Master. The term is the fencing token: read it before each unit
         * of work and hand it to whatever the work writes to. It fails with
         * REIGN_ENOTMASTER from the local deadline on, even if the backend
         * is unreachable. */
        uint64_t term = 0;
        while (!stop_requested && reign_election_term(election, &term) == REIGN_OK) {
            if (do_master_work(&storage, term, ++step) != 0)
                break;
            if (once) {
                stop_requested = 1;
                break;
            }
            sleep_ms(1000);
        }
        if (!stop_requested)
            printf("not master any more (last term %" PRIu64 "); campaigning again\n", term);
    }

    /* Resign first so that a waiting instance takes over at once instead
     * of after the TTL; close would resign too. */
    if (reign_election_is_master(election))
        printf("resigning\n");
    if (reign_election_resign(election) != REIGN_OK)
        fprintf(stderr, "resign: %s\n", reign_last_error());
    exit_code = 0;
out:
    if (reign_election_close(election) != REIGN_OK)
        fprintf(stderr, "close election: %s\n", reign_last_error());
    if (reign_factory_close(factory) != REIGN_OK)
        fprintf(stderr, "close factory: %s\n", reign_last_error());
    return exit_code;
}
