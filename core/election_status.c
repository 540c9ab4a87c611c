/* Leader status per election (reign_election_status, _wait_change): what
 * the results of the election's own ops say of its resource's master,
 * noted by the engine as it applies them (under factory->mu). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

static int64_t ns_to_ms(reign_mono_ns ns)
{
    return ns / REIGN_NS_PER_MS;
}

/* The master as heard: changed? (holder NULL = nobody) */
static void heard(reign_election *e, const char *holder, uint64_t term, int64_t now_ms)
{
    bool held = holder != NULL;
    bool changed = !e->seen.known || e->seen.held != held ||
                   (held && (e->seen.term != term || strcmp(e->seen.holder, holder) != 0));
    if (!changed)
        return;
    char *copy = held ? strdup(holder) : NULL;
    if (held && copy == NULL)
        return; /* out of memory: keep the old view; the next answer tries again */
    free(e->seen.holder);
    e->seen.holder = copy;
    e->seen.known = true;
    e->seen.held = held;
    if (held)
        e->seen.term = term;
    e->seen.changed_ms = now_ms;
}

void reign_election_status_note(reign_factory *f, reign_election *e, const reign_op *op,
                                reign_mono_ns now)
{
    int64_t now_ms = ns_to_ms(now);
    switch (op->result) {
    case REIGN_RES_OK:
        if (op->kind == REIGN_OP_ACQUIRE)
            heard(e, f->instance_id, op->out_term, now_ms);
        else if (op->kind == REIGN_OP_RELEASE)
            heard(e, NULL, 0, now_ms);
        break;
    case REIGN_RES_HELD:
        if (op->out_holder != NULL)
            heard(e, op->out_holder, op->out_term, now_ms);
        break;
    case REIGN_RES_LOST:
        if (op->kind == REIGN_OP_RENEW)
            heard(e, NULL, 0, now_ms); /* not ours any more: who has it is unknown */
        break;
    case REIGN_RES_NONE:
        heard(e, NULL, 0, now_ms);
        break;
    default: {
        e->seen.failures++;
        e->seen.last_status = op->out_status != REIGN_OK ? op->out_status : REIGN_EBACKEND;
        /* The backend's own words when it gave some, else the status. */
        char *msg = reign_strdup_printf("%s: %s", reign_op_kind_name(op->kind),
                                        op->out_error != NULL
                                            ? op->out_error
                                            : reign_status_str(e->seen.last_status));
        if (msg != NULL) {
            free(e->seen.last_error);
            e->seen.last_error = msg;
        }
        return;
    }
    }
    e->seen.heard_ms = now_ms;
    e->seen.failures = 0;
    e->seen.last_status = REIGN_OK;
    free(e->seen.last_error);
    e->seen.last_error = NULL;
}

void reign_election_status_free(reign_election *e)
{
    free(e->seen.holder);
    e->seen.holder = NULL;
    free(e->seen.last_error);
    e->seen.last_error = NULL;
}

void reign_election_status_why(const reign_factory *f, const reign_election *e, char *buf,
                               size_t size)
{
    buf[0] = '\0';
    if (e->seen.last_status != REIGN_OK && e->seen.last_error != NULL)
        snprintf(buf, size, "; last %s", e->seen.last_error);
    else if (e->seen.held && e->seen.holder != NULL && strcmp(e->seen.holder, f->instance_id) != 0)
        snprintf(buf, size, "; held by %s (term %llu)", e->seen.holder,
                 (unsigned long long)e->seen.term);
}

int reign_election_last_failure(reign_election *e, char *buf, size_t size)
{
    if (e == NULL)
        return reign_error_set(REIGN_EINVAL, "election_last_failure: NULL election");
    reign_factory *f = e->factory;
    pthread_mutex_lock(&f->mu);
    int status = e->seen.last_status;
    if (buf != NULL && size > 0)
        snprintf(buf, size, "%s", status != REIGN_OK && e->seen.last_error != NULL
                                      ? e->seen.last_error
                                      : "");
    pthread_mutex_unlock(&f->mu);
    return status;
}

int reign_election_status(reign_election *e, reign_leader_status *out)
{
    if (e == NULL || out == NULL)
        return reign_error_set(REIGN_EINVAL, "election_status: NULL argument");
    reign_factory *f = e->factory;
    reign_leader_status s = {0};
    pthread_mutex_lock(&f->mu);
    s.known = e->seen.known;
    s.held = e->seen.held;
    s.term = e->seen.term;
    s.last_change_ms = e->seen.known ? e->seen.changed_ms : -1;
    s.last_heard_ms = e->seen.heard_ms != 0 ? e->seen.heard_ms : -1;
    s.failures = e->seen.failures;
    s.last_error_status = e->seen.last_status;
    int rc = REIGN_OK;
    if (s.held) {
        s.self = strcmp(e->seen.holder, f->instance_id) == 0;
        s.instance_id = strdup(e->seen.holder);
        if (s.instance_id == NULL)
            rc = REIGN_ENOMEM;
    }
    pthread_mutex_unlock(&f->mu);
    if (rc != REIGN_OK)
        return reign_error_set(rc, "election_status %s: out of memory", e->shown);
    *out = s;
    return REIGN_OK;
}

void reign_leader_status_clear(reign_leader_status *s)
{
    if (s == NULL)
        return;
    free(s->instance_id);
    memset(s, 0, sizeof *s);
}

int reign_election_wait_change(reign_election *e, int64_t after_ms, int64_t timeout_ms)
{
    if (e == NULL)
        return reign_error_set(REIGN_EINVAL, "election_wait_change: NULL election");
    reign_factory *f = e->factory;
    if (reign_engine_is_engine_thread(f))
        return reign_error_set(REIGN_ESTATE, "election_wait_change: not from a reign callback");
    reign_mono_ns until = reign_clock_now_ns() + (timeout_ms > 0 ? timeout_ms : 0) * REIGN_NS_PER_MS;
    struct timespec ts = reign_clock_timespec(until);
    int rc = REIGN_OK;
    pthread_mutex_lock(&f->mu);
    e->waiters++;
    for (;;) {
        if (e->seen.known && e->seen.changed_ms >= after_ms)
            break;
        if (e->closing) {
            rc = REIGN_ECLOSED;
            break;
        }
        if (timeout_ms == 0 || (timeout_ms > 0 && reign_clock_now_ns() >= until)) {
            rc = REIGN_ETIMEDOUT;
            break;
        }
        if (timeout_ms < 0)
            pthread_cond_wait(&f->changed, &f->mu);
        else
            pthread_cond_timedwait(&f->changed, &f->mu, &ts);
    }
    e->waiters--;
    pthread_cond_broadcast(&f->changed); /* a closer may wait for waiters to leave */
    pthread_mutex_unlock(&f->mu);
    if (rc == REIGN_ETIMEDOUT)
        return reign_error_set(rc, "election_wait_change %s: no change since %lld ms within "
                                   "%lld ms", e->shown, (long long)after_ms, (long long)timeout_ms);
    if (rc == REIGN_ECLOSED)
        return reign_error_set(rc, "election_wait_change %s: closed", e->shown);
    return REIGN_OK;
}
