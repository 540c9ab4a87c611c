/* One instance of the handover test: a shard whose "work" on a resource
 * runs from GAINED until it has stopped after REVOKED (or at LOST), logged
 * with CLOCK_MONOTONIC so that the checker can compare the intervals of
 * all instances on one machine.
 *
 *   reign_handover_worker --uri URI --instance ID --log FILE --control FILE
 *                         [--count N] [--ttl MS]
 *
 * Log lines: "start ID TERM NS", "stop ID TERM NS REASON", "exit NS".
 * Stopping takes time, as real work does: a revocation of an even-hashed
 * resource is acknowledged by returning from the callback after 20 ms;
 * an odd-hashed one answers REIGN_SHARD_LATER and an acker thread stops it
 * 30 ms later and calls reign_shard_revoke_done. A shard that released
 * before revoking lets the next owner start inside that window.
 *
 * The control file is polled for appended lines: "add ID", "remove ID",
 * "drain", "stop" (drain, then stop the shard and exit 0). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "reign/reign.h"

#define STOP_EVEN_MS 20
#define STOP_ODD_MS 30
#define ACK_QUEUE_MAX 4096

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t acker_cond = PTHREAD_COND_INITIALIZER;
static FILE *log_file;
static void *working;  /* tsearch tree of IDs being worked on (mu) */
static reign_shard *shard;

typedef struct pending_ack {
    char *id;
    uint64_t term;
    int64_t due_ns;
} pending_ack;
static pending_ack acks[ACK_QUEUE_MAX];  /* mu */
static size_t n_acks;
static bool acker_stop;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void log_line(const char *what, const char *id, uint64_t term, const char *reason)
{
    fprintf(log_file, "%s %s %" PRIu64 " %" PRId64 "%s%s\n", what, id, term, mono_ns(),
            reason ? " " : "", reason ? reason : "");
    fflush(log_file);
}

/* mu held: the work on id starts (true) or stops (false); returns whether
 * that changed anything. */
static bool set_working(const char *id, bool on)
{
    void *found = tfind(id, &working, cmp_id);
    if (on && found == NULL) {
        char *copy = strdup(id);
        if (copy == NULL || tsearch(copy, &working, cmp_id) == NULL) {
            fprintf(stderr, "worker: out of memory\n");
            exit(3);
        }
        return true;
    }
    if (!on && found != NULL) {
        char *key = *(char **)found;
        tdelete(id, &working, cmp_id);
        free(key);
        return true;
    }
    return false;
}

static const char *reason_name(reign_shard_reason r)
{
    static const char *names[] = {"none", "balance", "removed", "drain", "stop",
                                  "resign-odds", "expired", "backend", "revoke-timeout"};
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : "?";
}

static bool odd(const char *id)
{
    unsigned h = 0;
    for (const char *c = id; *c; c++)
        h = h * 31 + (unsigned char)*c;
    return h & 1;
}

static int on_event(reign_shard *s, const reign_shard_event *ev, void *payload)
{
    (void)s;
    (void)payload;
    const char *id = ev->resource_id;
    if (ev->kind == REIGN_SHARD_GAINED) {
        pthread_mutex_lock(&mu);
        set_working(id, true);
        log_line("start", id, ev->term, NULL);
        pthread_mutex_unlock(&mu);
        return REIGN_SHARD_DONE;
    }
    if (ev->kind == REIGN_SHARD_LOST) {
        pthread_mutex_lock(&mu);
        if (set_working(id, false)) /* not stopped by the revocation (yet) */
            log_line("stop", id, ev->term, reason_name(ev->reason));
        pthread_mutex_unlock(&mu);
        return REIGN_SHARD_DONE;
    }
    /* REVOKED: finish the work in flight, then acknowledge. */
    if (!odd(id)) {
        sleep_ms(STOP_EVEN_MS);
        pthread_mutex_lock(&mu);
        if (set_working(id, false))
            log_line("stop", id, ev->term, reason_name(ev->reason));
        pthread_mutex_unlock(&mu);
        return REIGN_SHARD_DONE;
    }
    pthread_mutex_lock(&mu);
    char *copy = strdup(id);
    if (copy == NULL || n_acks == ACK_QUEUE_MAX) {
        free(copy);
        /* No room to defer: stop now instead. */
        if (set_working(id, false))
            log_line("stop", id, ev->term, reason_name(ev->reason));
        pthread_mutex_unlock(&mu);
        return REIGN_SHARD_DONE;
    }
    acks[n_acks++] = (pending_ack){copy, ev->term, mono_ns() + STOP_ODD_MS * INT64_C(1000000)};
    pthread_cond_signal(&acker_cond);
    pthread_mutex_unlock(&mu);
    return REIGN_SHARD_LATER;
}

/* Stops deferred work when it is due and acknowledges it. */
static void *acker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!acker_stop || n_acks > 0) {
        if (n_acks == 0) {
            pthread_cond_wait(&acker_cond, &mu);
            continue;
        }
        pending_ack a = acks[0];
        int64_t left = a.due_ns - mono_ns();
        if (left > 0) {
            pthread_mutex_unlock(&mu);
            sleep_ms((int)(left / 1000000) + 1);
            pthread_mutex_lock(&mu);
            continue;
        }
        memmove(&acks[0], &acks[1], (n_acks - 1) * sizeof *acks);
        n_acks--;
        bool was = set_working(a.id, false);
        if (was)
            log_line("stop", a.id, a.term, "acked");
        pthread_mutex_unlock(&mu);
        /* ESTATE when it ended meanwhile (timeout, expiry): nothing to do. */
        if (was && reign_shard_revoke_done(shard, a.id, a.term) != REIGN_OK)
            fprintf(stderr, "worker: revoke_done %s: %s\n", a.id, reign_last_error());
        free(a.id);
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void die_usage(void)
{
    fprintf(stderr, "usage: reign_handover_worker --uri URI --instance ID --log FILE "
                    "--control FILE [--count N] [--ttl MS]\n");
    exit(2);
}

/* Apply the control file's new lines; returns true on "stop". */
static bool poll_control(FILE *ctl)
{
    char line[1200];
    while (fgets(line, sizeof line, ctl) != NULL) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            /* A line still being written: read it again next time. */
            fseek(ctl, -(long)len, SEEK_CUR);
            break;
        }
        line[len - 1] = '\0';
        int rc = REIGN_OK;
        if (strncmp(line, "add ", 4) == 0)
            rc = reign_shard_add(shard, line + 4);
        else if (strncmp(line, "remove ", 7) == 0)
            rc = reign_shard_remove(shard, line + 7);
        else if (strcmp(line, "drain") == 0)
            rc = reign_shard_drain(shard, 0);
        else if (strcmp(line, "stop") == 0)
            return true;
        else
            fprintf(stderr, "worker: unknown control line '%s'\n", line);
        if (rc != REIGN_OK)
            fprintf(stderr, "worker: %s: %s\n", line, reign_last_error());
    }
    clearerr(ctl);
    return false;
}

int main(int argc, char **argv)
{
    const char *uri = NULL, *instance = NULL, *log_path = NULL, *ctl_path = NULL;
    long count = 300, ttl = 3000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--uri") == 0)
            uri = argv[i + 1];
        else if (strcmp(argv[i], "--instance") == 0)
            instance = argv[i + 1];
        else if (strcmp(argv[i], "--log") == 0)
            log_path = argv[i + 1];
        else if (strcmp(argv[i], "--control") == 0)
            ctl_path = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            count = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--ttl") == 0)
            ttl = strtol(argv[i + 1], NULL, 10);
        else
            die_usage();
    }
    if (uri == NULL || instance == NULL || log_path == NULL || ctl_path == NULL || count < 0 ||
        ttl <= 0)
        die_usage();
    log_file = fopen(log_path, "a");
    FILE *ctl = fopen(ctl_path, "r");
    if (log_file == NULL || ctl == NULL) {
        perror("worker: open");
        return 3;
    }

    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = instance;
    o.ttl_ms = ttl;
    reign_factory *f = NULL;
    if (reign_factory_open(uri, &o, &f) != REIGN_OK) {
        fprintf(stderr, "worker: open %s: %s\n", uri, reign_last_error());
        return 3;
    }
    char **ids = calloc((size_t)count + 1, sizeof *ids);
    for (long i = 0; ids != NULL && i < count; i++)
        if (asprintf(&ids[i], "r%ld", i) < 0)
            return 3;
    reign_shard_config c = REIGN_SHARD_CONFIG_INIT;
    c.runner.pre_election_pause_ms = 10;
    c.runner.master_check_interval_ms = 100;
    c.runner.master_hold_interval_ms = 10000;
    c.on_event = on_event;
    c.max_moves_per_check = 16;
    c.membership.stabilization_ms = 1000;
    c.revoke_timeout_ms = 5000;
    if (reign_shard_new(f, (const char *const *)ids, (size_t)count, &c, &shard) != REIGN_OK) {
        fprintf(stderr, "worker: shard: %s\n", reign_last_error());
        return 3;
    }
    for (long i = 0; i < count; i++)
        free(ids[i]);
    free(ids);

    pthread_t acker;
    pthread_create(&acker, NULL, acker_main, NULL);
    if (reign_shard_start(shard) != REIGN_OK) {
        fprintf(stderr, "worker: start: %s\n", reign_last_error());
        return 3;
    }
    while (!poll_control(ctl))
        sleep_ms(50);

    /* Graceful: hand everything over, then stop what is left. */
    if (reign_shard_drain(shard, 15000) != REIGN_OK)
        fprintf(stderr, "worker: drain: %s\n", reign_last_error());
    if (reign_shard_stop(shard) != REIGN_OK)
        fprintf(stderr, "worker: stop: %s\n", reign_last_error());
    pthread_mutex_lock(&mu);
    acker_stop = true;
    pthread_cond_signal(&acker_cond);
    pthread_mutex_unlock(&mu);
    pthread_join(acker, NULL);
    reign_shard_free(shard);
    shard = NULL;
    int rc = reign_factory_close(f) == REIGN_OK ? 0 : 3;
    fprintf(log_file, "exit %" PRId64 "\n", mono_ns());
    fclose(log_file);
    fclose(ctl);
    tdestroy(working, free);
    return rc;
}
