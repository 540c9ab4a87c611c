/* Forked holders for the conformance suite: a child process opens its own
 * factory, becomes master, tells the parent (term, time) over a pipe, then
 * samples is_master every 1 ms until the parent kills it or asks for a
 * report (its mastership intervals, on CLOCK_MONOTONIC like the parent's, and
 * the LOST event it got). The child never uses cmocka: it only writes
 * records and leaves with _exit. */
#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the child's side --------------------------------------------------------- */

static _Atomic int child_lost_reason = -1;
static _Atomic int child_lost_seen;

static void child_cb(reign_election *e, const reign_event *event, void *payload)
{
    (void)e;
    (void)payload;
    if (event->kind == REIGN_EVENT_LOST && !atomic_load(&child_lost_seen)) {
        atomic_store(&child_lost_reason, (int)event->reason);
        atomic_store(&child_lost_seen, 1);
    }
}

static void child_send(int fd, const conf_child_msg *m)
{
    const char *p = (const char *)m;
    size_t left = sizeof *m;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(4); /* the parent is gone: nobody to tell */
        p += n;
        left -= (size_t)n;
    }
}

static void child_fail(int fd, conf_child_msg *m, int status, const char *what)
{
    m->kind = CONF_CHILD_FAILED;
    m->status = status;
    snprintf(m->error, sizeof m->error, "%s: %s (%s)", what, reign_status_str(status),
             reign_last_error());
    child_send(fd, m);
    _exit(3);
}

/* 1 = a byte arrived, 0 = timeout, -1 = EOF or error (the parent is gone). */
static int child_poll_request(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    if (n <= 0)
        return 0; /* timeout, or EINTR after SIGCONT: just sample again */
    char byte;
    ssize_t r = read(fd, &byte, 1);
    if (r == 1)
        return 1;
    if (r < 0 && errno == EINTR)
        return 0;
    return -1;
}

static void child_main(int to_parent, int from_parent, const char *resource,
                       const char *instance_id)
{
    conf_child_msg m;
    memset(&m, 0, sizeof m);
    m.lost_reason = -1;
    conf_recorder_init(&m.rec);
    snprintf(m.instance_id, sizeof m.instance_id, "%s", instance_id);

    reign_options o = REIGN_OPTIONS_INIT;
    o.instance_id = instance_id;
    o.ttl_ms = conf.ttl_ms;
    o.retry_interval_ms = conf.retry_ms;
    reign_factory *f = NULL;
    reign_election *e = NULL;
    int rc = reign_factory_open(conf.uri, &o, &f);
    if (rc != REIGN_OK)
        child_fail(to_parent, &m, rc, "child: reign_factory_open");
    rc = reign_election_new(f, resource, &e);
    if (rc != REIGN_OK)
        child_fail(to_parent, &m, rc, "child: reign_election_new");
    rc = reign_election_set_callback(e, child_cb, NULL);
    if (rc != REIGN_OK)
        child_fail(to_parent, &m, rc, "child: reign_election_set_callback");
    m.wait_began_ns = conf_now_ns();
    rc = reign_election_wait(e, conf_acquire_timeout_ms());
    if (rc != REIGN_OK)
        child_fail(to_parent, &m, rc, "child: reign_election_wait");
    m.acquired_ns = conf_now_ns();
    rc = reign_election_term(e, &m.term);
    if (rc != REIGN_OK)
        child_fail(to_parent, &m, rc, "child: reign_election_term");
    conf_recorder_sample(&m.rec, e);
    m.kind = CONF_CHILD_ACQUIRED;
    child_send(to_parent, &m);

    /* Sample every 1 ms until asked to report (SIGKILL may end it first). */
    for (;;) {
        conf_recorder_sample(&m.rec, e);
        int req = child_poll_request(from_parent, 1);
        if (req < 0)
            _exit(0);
        if (req == 1)
            break;
    }
    /* The LOST event is delivered by the engine thread after it notices: give
     * it a bounded time, sampling on. */
    int64_t until = conf_now_ns() + (3 * conf.ttl_ms + 2000) * CONF_NS_PER_MS;
    while (!atomic_load(&child_lost_seen) && conf_now_ns() < until) {
        conf_recorder_sample(&m.rec, e);
        conf_poll_pause_us(1000);
    }
    conf_recorder_sample(&m.rec, e);
    m.kind = CONF_CHILD_REPORT;
    m.lost_seen = atomic_load(&child_lost_seen);
    m.lost_reason = atomic_load(&child_lost_reason);
    child_send(to_parent, &m);
    reign_election_close(e);
    reign_factory_close(f);
    _exit(0);
}

/* ---- the parent's side -------------------------------------------------------- */

/* Read one record; false on timeout or EOF (with *eof set). Samples `sample`
 * into `rec` every 1 ms while waiting, if given. */
static bool read_msg(conf_child *c, conf_child_msg *out, int64_t timeout_ms,
                     reign_election *sample, conf_recorder *rec, bool *eof)
{
    char *p = (char *)out;
    size_t got = 0;
    int64_t until = conf_now_ns() + timeout_ms * CONF_NS_PER_MS;
    *eof = false;
    while (got < sizeof *out) {
        if (sample != NULL && rec != NULL)
            conf_recorder_sample(rec, sample);
        if (conf_now_ns() >= until)
            return false;
        struct pollfd pfd = {.fd = c->from_child, .events = POLLIN};
        int n = poll(&pfd, 1, 1);
        if (n <= 0)
            continue;
        ssize_t r = read(c->from_child, p + got, sizeof *out - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            *eof = true;
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

static void describe_exit(pid_t pid, char *buf, size_t size)
{
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid && WIFEXITED(st))
        snprintf(buf, size, "child exited with %d", WEXITSTATUS(st));
    else if (r == pid && WIFSIGNALED(st))
        snprintf(buf, size, "child died of signal %d", WTERMSIG(st));
    else
        snprintf(buf, size, "child still running");
}

void conf_child_close_fds(conf_child *c)
{
    if (c->from_child >= 0)
        close(c->from_child);
    if (c->to_child >= 0)
        close(c->to_child);
    c->from_child = c->to_child = -1;
}

void conf_child_start(conf_child *c, const char *resource, const char *who, conf_child_msg *acq)
{
    int up[2], down[2];
    reign_options o = conf_options(who); /* for its unique instance ID */
    CONF_CHECK(pipe2(up, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
    CONF_CHECK(pipe2(down, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CONF_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        child_main(up[1], down[0], resource, o.instance_id);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    c->pid = pid;
    c->from_child = up[0];
    c->to_child = down[1];
    conf_track_child(pid);

    bool eof = false;
    if (!read_msg(c, acq, conf_acquire_timeout_ms() + 5000, NULL, NULL, &eof)) {
        char why[128];
        describe_exit(pid, why, sizeof why);
        print_error("conformance[%s]: forked holder %s sent nothing (%s; %s)\n", conf.backend,
                    o.instance_id, eof ? "pipe closed" : "timed out", why);
        fail();
    }
    if (acq->kind != CONF_CHILD_ACQUIRED) {
        print_error("conformance[%s]: forked holder %s failed: %s\n", conf.backend, o.instance_id,
                    acq->error);
        fail();
    }
}

void conf_child_report(conf_child *c, reign_election *parent, conf_recorder *rec,
                       conf_child_msg *out)
{
    char byte = 'r';
    ssize_t n;
    do
        n = write(c->to_child, &byte, 1);
    while (n < 0 && errno == EINTR);
    CONF_CHECK(n == 1, "asking the child for its report: %s", strerror(errno));
    bool eof = false;
    if (!read_msg(c, out, 3 * conf.ttl_ms + 5000, parent, rec, &eof)) {
        char why[128];
        describe_exit(c->pid, why, sizeof why);
        print_error("conformance[%s]: forked holder sent no report (%s; %s)\n", conf.backend,
                    eof ? "pipe closed" : "timed out", why);
        fail();
    }
    CONF_CHECK(out->kind == CONF_CHILD_REPORT, "child sent record kind %d, expected a report (%s)",
               out->kind, out->error);
}

void conf_child_reap(conf_child *c, int64_t timeout_ms)
{
    int64_t until = conf_now_ns() + timeout_ms * CONF_NS_PER_MS;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(c->pid, &st, WNOHANG);
        if (r == c->pid || (r < 0 && errno == ECHILD))
            break;
        if (conf_now_ns() >= until) {
            print_error("conformance[%s]: child %ld did not exit within %lld ms: killing it\n",
                        conf.backend, (long)c->pid, (long long)timeout_ms);
            kill(c->pid, SIGKILL);
            while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        conf_poll_pause_us(1000);
    }
    conf_untrack_child(c->pid);
    conf_child_close_fds(c);
}
