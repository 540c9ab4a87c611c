/* The commands of `reign shard -- CMD`: one guarded CMD (guard.c) per
 * mastered resource, started on REIGN_SHARD_GAINED, stopped before a
 * revocation is acknowledged (SIGTERM, SIGKILL after the grace period), and
 * stopped at once on a loss. One supervisor thread reaps the guards, passes
 * each new local deadline to them, escalates to SIGKILL and, when a CMD
 * exited by itself, restarts it (--on-exit restart) or gives the resource
 * away for the restart delay (--on-exit release: removed from the shard,
 * added back later). Events are printed here too, as text or JSON.
 *
 * Slots are a flat array searched linearly: one per resource this instance
 * runs a CMD for, i.e. at most its fair share. */
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

#include "cli.h"

#define SUPERVISE_TICK_MS 10 /* deadline forwarding, reaping and escalation */

typedef struct slot {
    char *id;
    uint64_t term;        /* of the running CMD, or of the one to start */
    cli_guard g;          /* g.pid 0: no CMD running */
    bool announced;       /* "started" printed (once CMD's exec is reported) */
    int64_t sent_deadline;
    bool stopping;        /* SIGTERM sent */
    bool killed;          /* SIGKILL sent */
    int64_t kill_at_ms;
    uint64_t revoke_term; /* != 0: acknowledge this revocation once reaped */
    int64_t start_at_ms;  /* != 0: (re)start CMD with `term` then, if still master */
    bool remove_now;      /* --on-exit release: take it out of the shard */
    int64_t readd_at_ms;  /* != 0: released; add it back to the shard then */
    bool dead;            /* nothing to do: reusable */
} slot;

/* A shard call the thread makes outside mu (the shard's callbacks take it):
 * reign_shard_add or reign_shard_remove of one ID. */
typedef struct shard_call {
    bool add;
    char *id;
} shard_call;

struct cli_supervisor {
    cli_supervise_config cfg;
    reign_shard *shard;
    pthread_mutex_t mu;
    slot *slots;
    size_t n_slots, cap;
    pthread_t thread;
    bool thread_started;
    bool quit;
    bool gate;            /* debug: REIGN_SHARD_BROKEN_ACK acknowledges at once */
    shard_call *calls;    /* for the thread to make outside mu */
    size_t n_calls, cap_calls;
};

static const char *reason_name(reign_shard_reason r)
{
    switch (r) {
    case REIGN_SHARD_REASON_BALANCE: return "balance";
    case REIGN_SHARD_REASON_REMOVED: return "removed";
    case REIGN_SHARD_REASON_DRAIN: return "drain";
    case REIGN_SHARD_REASON_STOP: return "stop";
    case REIGN_SHARD_REASON_RESIGN_ODDS: return "resign-odds";
    case REIGN_SHARD_REASON_EXPIRED: return "expired";
    case REIGN_SHARD_REASON_BACKEND: return "backend";
    case REIGN_SHARD_REASON_REVOKE_TIMEOUT: return "revoke-timeout";
    default: return "none";
    }
}

/* One line per event; under s->mu so lines never mix. `extra_key` < 0
 * values are left out. */
static void print_event(cli_supervisor *s, const char *event, const char *id, uint64_t term,
                        const char *reason, const char *num_key, int64_t num)
{
    if (s->cfg.json) {
        fputs("{\"time\":\"", stdout);
        cli_put_iso_now(stdout);
        printf("\",\"event\":\"%s\",\"resource\":", event);
        cli_put_json(stdout, id);
        printf(",\"term\":%" PRIu64, term);
        if (reason != NULL)
            printf(",\"reason\":\"%s\"", reason);
        if (num_key != NULL)
            printf(",\"%s\":%" PRId64, num_key, num);
        fputs("}\n", stdout);
    } else {
        cli_put_iso_now(stdout);
        printf(" %s ", event);
        cli_put_text(stdout, id);
        printf(" term=%" PRIu64, term);
        if (reason != NULL)
            printf(" reason=%s", reason);
        if (num_key != NULL)
            printf(" %s=%" PRId64, num_key, num);
        fputc('\n', stdout);
    }
    fflush(stdout);
}

static slot *find_slot(cli_supervisor *s, const char *id)
{
    for (size_t i = 0; i < s->n_slots; i++)
        if (!s->slots[i].dead && strcmp(s->slots[i].id, id) == 0)
            return &s->slots[i];
    return NULL;
}

static slot *new_slot(cli_supervisor *s, const char *id)
{
    slot *sl = NULL;
    for (size_t i = 0; i < s->n_slots && sl == NULL; i++)
        if (s->slots[i].dead)
            sl = &s->slots[i];
    if (sl == NULL) {
        if (s->n_slots == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 16;
            slot *n = realloc(s->slots, cap * sizeof *n);
            if (n == NULL)
                return NULL;
            s->slots = n;
            s->cap = cap;
        }
        sl = &s->slots[s->n_slots++];
        sl->id = NULL;
    }
    free(sl->id);
    *sl = (slot){.id = strdup(id), .g = {.fd = -1, .report_fd = -1}};
    if (sl->id == NULL) {
        sl->dead = true;
        return NULL;
    }
    return sl;
}

/* "{}" in an argument becomes the resource ID (as xargs -I{}). */
static char *substitute(const char *arg, const char *id)
{
    size_t n = 0, idn = strlen(id);
    for (const char *p = arg; (p = strstr(p, "{}")) != NULL; p += 2)
        n++;
    char *out = malloc(strlen(arg) + n * idn + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (const char *p = arg;;) {
        const char *q = strstr(p, "{}");
        size_t len = q ? (size_t)(q - p) : strlen(p);
        memcpy(o, p, len);
        o += len;
        if (q == NULL)
            break;
        memcpy(o, id, idn);
        o += idn;
        p = q + 2;
    }
    *o = '\0';
    return out;
}

static void free_argv(char **argv)
{
    for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
}

/* Print "started" once the guard reports CMD's exec (under s->mu); with
 * `wait` (the guard has exited) read the rest of the report first. */
static void announce(cli_supervisor *s, slot *sl, bool wait)
{
    if (sl->announced || !cli_guard_report(&sl->g, wait))
        return;
    sl->announced = true;
    if (sl->g.exec_errno != 0)
        cli_error("cannot run %s for %s: %s", s->cfg.cmd[0], sl->id, strerror(sl->g.exec_errno));
    else
        print_event(s, "started", sl->id, sl->term, NULL, "pid", sl->g.cmd_pid);
}

/* Start CMD for sl (under s->mu) if the shard still says master of its
 * term; the guard gets the current local deadline. */
static void start_cmd(cli_supervisor *s, slot *sl)
{
    int64_t deadline;
    uint64_t term;
    sl->start_at_ms = 0;
    if (reign_shard_term(s->shard, sl->id, &term) != REIGN_OK || term != sl->term ||
        reign_shard_deadline_ms(s->shard, sl->id, &deadline) != REIGN_OK) {
        sl->dead = true;
        return;
    }
    size_t n = 0;
    while (s->cfg.cmd[n] != NULL)
        n++;
    char **argv = calloc(n + 1, sizeof *argv);
    char **env = cli_env_build(sl->id, sl->term, s->cfg.instance);
    bool ok = argv != NULL && env != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = (argv[i] = substitute(s->cfg.cmd[i], sl->id)) != NULL;
    if (!ok || cli_guard_start(argv, env, &s->cfg.mask, deadline, true, &sl->g) != 0) {
        cli_error("cannot start the command for %s: %s", sl->id,
                  ok ? strerror(errno) : "out of memory");
        sl->g.pid = 0;
        /* Try again later, while still master. */
        sl->start_at_ms = reign_monotonic_ms() + s->cfg.restart_delay_ms;
    } else {
        sl->sent_deadline = deadline;
        sl->stopping = sl->killed = sl->announced = false;
        announce(s, sl, false);
    }
    free_argv(argv);
    cli_env_free(env);
}

static void send_signal(slot *sl, int sig)
{
    if (sl->g.pid == 0 || (sl->killed && sig != SIGKILL))
        return;
    if (cli_guard_send(sl->g.fd, -(int64_t)sig) != 0)
        kill(sl->g.pid, SIGKILL); /* a guard that cannot hear: CMD dies with it */
    if (sig == SIGKILL)
        sl->killed = true;
}

static void begin_stop(cli_supervisor *s, slot *sl, int sig)
{
    if (!sl->stopping) {
        sl->stopping = true;
        sl->kill_at_ms = reign_monotonic_ms() + s->cfg.grace_ms;
    }
    send_signal(sl, sig);
}

int cli_supervise_on_event(reign_shard *shard, const reign_shard_event *e, void *payload)
{
    cli_supervisor *s = payload;
    int answer = REIGN_SHARD_DONE;
    pthread_mutex_lock(&s->mu);
    slot *sl = find_slot(s, e->resource_id);
    switch (e->kind) {
    case REIGN_SHARD_GAINED:
        print_event(s, "gained", e->resource_id, e->term, NULL, NULL, 0);
        if (s->cfg.cmd == NULL)
            break;
        if (sl == NULL)
            sl = new_slot(s, e->resource_id);
        if (sl == NULL) {
            cli_error("out of memory for the command of %s", e->resource_id);
            break;
        }
        sl->term = e->term;
        sl->revoke_term = 0;
        sl->remove_now = false;
        sl->readd_at_ms = 0;
        if (sl->g.pid != 0)
            sl->start_at_ms = 1; /* the old term's CMD is still stopping: once reaped */
        else
            start_cmd(s, sl);
        break;
    case REIGN_SHARD_REVOKED:
        print_event(s, "revoking", e->resource_id, e->term, reason_name(e->reason), NULL, 0);
        if (sl == NULL)
            break;
        sl->start_at_ms = 0;
        if (sl->g.pid != 0 && sl->term == e->term) {
            begin_stop(s, sl, SIGTERM);
            if (!s->gate) {
                sl->revoke_term = e->term;
                answer = REIGN_SHARD_LATER;
            }
        } else if (sl->g.pid == 0 && sl->readd_at_ms == 0) {
            sl->dead = true;
        }
        break;
    case REIGN_SHARD_LOST:
        print_event(s, "lost", e->resource_id, e->term, reason_name(e->reason), NULL, 0);
        if (sl == NULL)
            break;
        sl->start_at_ms = 0;
        if (sl->g.pid == 0) {
            sl->dead = sl->readd_at_ms == 0;
        } else if (sl->term == e->term) {
            sl->revoke_term = 0;
            /* Unwarned, or released after the revoke timeout: the lease
             * may be another's already. The guard's deadline no longer
             * moves, so it kills CMD at the local deadline at the latest. */
            begin_stop(s, sl, e->reason == REIGN_SHARD_REASON_REVOKE_TIMEOUT ? SIGKILL : SIGTERM);
        }
        break;
    }
    pthread_mutex_unlock(&s->mu);
    (void)shard;
    return answer;
}


/* A guard was reaped (under s->mu). Copies the revocation to acknowledge,
 * done by the caller outside the lock. */
static uint64_t on_reaped(cli_supervisor *s, slot *sl, int status, char *ack_id, size_t ack_size)
{
    uint64_t ack = 0;
    announce(s, sl, true); /* "started", or why CMD could not be run */
    print_event(s, "exited", sl->id, sl->term, NULL, "status", cli_exit_code_of(status));
    cli_guard_close(&sl->g);
    sl->g.pid = 0;
    if (sl->revoke_term != 0) {
        ack = sl->revoke_term;
        snprintf(ack_id, ack_size, "%s", sl->id);
        sl->revoke_term = 0;
        sl->dead = true;
    } else if (sl->start_at_ms == 1) {
        start_cmd(s, sl); /* gained again while the old CMD was stopping */
    } else if (!sl->stopping && s->cfg.on_exit == CLI_ON_EXIT_RESTART) {
        /* Exited by itself: again, with the same term, while master. */
        sl->start_at_ms = reign_monotonic_ms() + s->cfg.restart_delay_ms;
    } else if (!sl->stopping) {
        /* Exited by itself, --on-exit release: the thread removes it from
         * the shard (revoked, released: another instance may take it) and
         * adds it back after the delay. */
        sl->remove_now = true;
        sl->readd_at_ms = reign_monotonic_ms() + s->cfg.restart_delay_ms;
        if (sl->readd_at_ms == 0)
            sl->readd_at_ms = 1;
    } else {
        sl->dead = true;
    }
    return ack;
}

static void queue_call(cli_supervisor *s, bool add, const char *id)
{
    if (s->n_calls == s->cap_calls) {
        size_t cap = s->cap_calls ? 2 * s->cap_calls : 8;
        shard_call *n = realloc(s->calls, cap * sizeof *n);
        if (n == NULL)
            return; /* tried again next tick: the slot keeps its state */
        s->calls = n;
        s->cap_calls = cap;
    }
    char *copy = strdup(id);
    if (copy != NULL)
        s->calls[s->n_calls++] = (shard_call){.add = add, .id = copy};
}

static void tick(cli_supervisor *s)
{
    int64_t now = reign_monotonic_ms();
    for (size_t i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->dead)
            continue;
        if (sl->remove_now) {
            sl->remove_now = false;
            queue_call(s, false, sl->id);
        } else if (sl->readd_at_ms != 0 && now >= sl->readd_at_ms) {
            sl->readd_at_ms = 0;
            sl->dead = sl->g.pid == 0;
            queue_call(s, true, sl->id);
        }
        if (sl->g.pid == 0) {
            if (sl->start_at_ms > 1 && now >= sl->start_at_ms)
                start_cmd(s, sl);
            continue;
        }
        announce(s, sl, false);
        if (sl->stopping && !sl->killed && now >= sl->kill_at_ms)
            send_signal(sl, SIGKILL);
        /* A revocation keeps the lease held and renewed until CMD has
         * exited, so its deadlines still reach the guard (a --grace longer
         * than the TTL works); after a loss they do not, and the guard
         * kills CMD at the last one at the latest. */
        if (sl->stopping && sl->revoke_term == 0)
            continue;
        int64_t d;
        if (reign_shard_deadline_ms(s->shard, sl->id, &d) == REIGN_OK && d > sl->sent_deadline &&
            cli_guard_send(sl->g.fd, d) == 0)
            sl->sent_deadline = d;
    }
}

static void *supervise_thread(void *arg)
{
    cli_supervisor *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool quit = s->quit;
        tick(s);
        shard_call *calls = s->calls;
        size_t n_calls = s->n_calls;
        s->calls = NULL;
        s->n_calls = s->cap_calls = 0;
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < n_calls; i++) {
            int rc = calls[i].add ? reign_shard_add(s->shard, calls[i].id)
                                  : reign_shard_remove(s->shard, calls[i].id);
            if (rc != REIGN_OK)
                cli_error("%s %s: %s", calls[i].add ? "adding back" : "releasing", calls[i].id,
                          reign_last_error());
            free(calls[i].id);
        }
        free(calls);
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0)
                break;
            char id[REIGN_RESOURCE_ID_MAX + 1];
            uint64_t ack = 0;
            pthread_mutex_lock(&s->mu);
            for (size_t i = 0; i < s->n_slots; i++)
                if (!s->slots[i].dead && s->slots[i].g.pid == pid) {
                    ack = on_reaped(s, &s->slots[i], status, id, sizeof id);
                    break;
                }
            pthread_mutex_unlock(&s->mu);
            if (ack != 0)
                (void)reign_shard_revoke_done(s->shard, id, ack); /* ESTATE: timed out */
        }
        if (quit)
            return NULL;
        struct timespec ts = {0, SUPERVISE_TICK_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int cli_supervisor_new(const cli_supervise_config *cfg, cli_supervisor **out)
{
    cli_supervisor *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    s->cfg = *cfg;
    pthread_mutex_init(&s->mu, NULL);
    const char *broken = getenv("REIGN_SHARD_BROKEN_ACK");
    s->gate = broken != NULL && strcmp(broken, "1") == 0;
    if (s->gate)
        cli_error("REIGN_SHARD_BROKEN_ACK=1: revocations are acknowledged without waiting for "
                  "CMD (a deliberately broken build for tests)");
    *out = s;
    return 0;
}

void cli_supervisor_reloaded(cli_supervisor *s)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (!sl->dead && sl->readd_at_ms != 0) {
            sl->readd_at_ms = 0;
            sl->dead = sl->g.pid == 0;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

int cli_supervisor_start(cli_supervisor *s, reign_shard *shard)
{
    s->shard = shard;
    if (s->cfg.cmd == NULL)
        return 0;
    if (pthread_create(&s->thread, NULL, supervise_thread, s) != 0)
        return -1;
    s->thread_started = true;
    return 0;
}

void cli_supervisor_free(cli_supervisor *s)
{
    if (s == NULL)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n_slots; i++)
            if (!s->slots[i].dead && s->slots[i].g.pid != 0) {
                s->slots[i].revoke_term = 0;
                s->slots[i].stopping = true;
                send_signal(&s->slots[i], SIGKILL);
            }
        pthread_mutex_unlock(&s->mu);
        /* Wait for the last guards to be reaped. */
        for (int tries = 0; tries < 500; tries++) {
            bool any = false;
            pthread_mutex_lock(&s->mu);
            for (size_t i = 0; i < s->n_slots; i++)
                any |= !s->slots[i].dead && s->slots[i].g.pid != 0;
            pthread_mutex_unlock(&s->mu);
            if (!any)
                break;
            struct timespec ts = {0, SUPERVISE_TICK_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&s->mu);
        s->quit = true;
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (size_t i = 0; i < s->n_slots; i++) {
        free(s->slots[i].id);
        cli_guard_close(&s->slots[i].g);
    }
    free(s->slots);
    for (size_t i = 0; i < s->n_calls; i++)
        free(s->calls[i].id);
    free(s->calls);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
