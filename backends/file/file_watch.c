/* The file backend's notification fd: one epoll fd that becomes readable when
 * a lease this state waits for may have become free.
 *
 * Three sources feed it:
 *   inotify  on DIR, IN_ATTRIB only. RELEASE touches the lock file's times
 *            (futimens) after unlocking; nothing else reign does to a lock
 *            file raises IN_ATTRIB (writes raise IN_MODIFY, a contender's
 *            open/close raises IN_OPEN/IN_CLOSE_*), so waiters wake for
 *            releases only and two waiters cannot wake each other in a loop.
 *            The event names the lock file; `waits` maps it back to the
 *            resource ID, so the core retries just that election.
 *   pipe     written by watcher threads. A holder that dies never releases;
 *            the kernel drops its locks, and the only way to hear of that is
 *            to block in a lock wait: the kernel offers no pollable lock wait
 *            (no fd becomes readable when a lock is freed). So, as the one
 *            exception to "backends start no threads", each distinct live
 *            holder we wait for gets one small thread that blocks in
 *            F_OFD_SETLKW (read lock) on the holder's member file and writes
 *            a byte here when it gets it, i.e. when the holder is gone. One
 *            thread per holder, not per resource; it ends by itself when the
 *            holder dies and is cancelled at close (fcntl with F_OFD_SETLKW is
 *            a cancellation point in glibc; cancellation is enabled only
 *            around that call). Threads touch only their own entry's `done`
 *            flag, their fd and the pipe; everything else here belongs to the
 *            engine thread that calls the backend.
 *   timerfd  after a holder's member lock is gone its lease locks may still
 *            be held for a moment (the kernel closes a dead process' files
 *            one by one, in no promised order); an ACQUIRE that meets that
 *            window arms the timer with a short backoff (1, 2, 4 … 128 ms) so
 *            the takeover follows as soon as the kernel is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "file_internal.h"

enum {
    RETRY_STEPS = 8,                 /* 1 ms << 0..7: 255 ms in all */
    WATCHER_STACK = 256 * 1024,
};

/* A resource this state saw HELD and may campaign for. */
typedef struct wait_entry {
    char *resource;
    size_t len;
    char *holder;
} wait_entry;

/* A holder we wait for. `fd`, `thread` and `running` belong to the engine
 * thread; the watcher thread reads fd and pipe_wr and sets done. */
typedef struct holder_entry {
    int fd;             /* its member file, read-only; -1 when not watched */
    int pipe_wr;
    pthread_t thread;
    int running;        /* thread created and not joined yet */
    atomic_int done;    /* set by the thread before it writes the pipe */
    int died;           /* drain: the thread saw it die */
    unsigned retries;   /* retry_soon steps used since last seen alive */
} holder_entry;

struct file_watch {
    const reign_backend_config *cfg;
    int members_fd;      /* borrowed from the state */
    int epoll_fd;
    int inotify_fd;      /* -1: releases are noticed at the retry interval */
    int pipe_rd, pipe_wr;
    int timer_fd;
    int64_t timer_due_ns; /* 0 = not armed */
    file_map waits;      /* lock file name → wait_entry * */
    char *dir;           /* for inotify_add_watch again (observe) */
    int observing;       /* IN_MODIFY too: report acquisitions (reign_file_watch_observe) */
    file_map holders;    /* holder instance ID → holder_entry * */
};

static void free_wait(void *p)
{
    wait_entry *we = p;
    if (we == NULL)
        return;
    free(we->resource);
    free(we->holder);
    free(we);
}

/* ---- watcher threads ------------------------------------------------------ */

/* Not instrumented by ASan: a cancelled thread unwinds without running
 * ASan's epilogues, which would leave this frame's redzones poisoned and make
 * ASan report its own thread teardown as a stack-buffer-underflow. */
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_address))
#endif
static void *watcher_main(void *arg)
{
    holder_entry *h = arg;
    int old = 0;
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};

    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    for (;;) {
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
        int r = fcntl(h->fd, F_OFD_SETLKW, &fl);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
        if (r == 0 || errno != EINTR)
            break; /* got it (the holder is gone), or an error: wake anyway */
    }
    /* Let go at once: a successor with the same ID must be able to lock. */
    fl.l_type = F_UNLCK;
    (void)fcntl(h->fd, F_OFD_SETLK, &fl);
    atomic_store(&h->done, 1);
    ssize_t n;
    do {
        n = write(h->pipe_wr, "x", 1);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full, hence readable already. */
    return NULL;
}

static void join_watcher(holder_entry *h)
{
    if (h->running) {
        if (!atomic_load(&h->done))
            pthread_cancel(h->thread);
        pthread_join(h->thread, NULL);
        h->running = 0;
    }
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
    atomic_store(&h->done, 0);
}

static void free_holder(void *p)
{
    holder_entry *h = p;
    if (h == NULL)
        return;
    join_watcher(h);
    free(h);
}

static holder_entry *holder_get(file_watch *w, const char *holder)
{
    size_t len = strlen(holder);
    holder_entry *h = reign_file_map_get(&w->holders, holder, len);
    if (h != NULL)
        return h;
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->fd = -1;
    h->pipe_wr = w->pipe_wr;
    atomic_init(&h->done, 0);
    if (reign_file_map_put(&w->holders, holder, len, h) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

/* Start h's thread on fd (which it then owns). 0, or -1 with errno. */
static int start_watcher(holder_entry *h, int fd)
{
    pthread_attr_t attr;
    sigset_t all, old;
    int rc = pthread_attr_init(&attr);
    if (rc != 0) {
        close(fd);
        errno = rc;
        return -1;
    }
    size_t stack = WATCHER_STACK < PTHREAD_STACK_MIN ? PTHREAD_STACK_MIN : WATCHER_STACK;
    (void)pthread_attr_setstacksize(&attr, stack);
    h->fd = fd;
    atomic_store(&h->done, 0);
    /* The thread starts with every signal blocked, so the application's
     * handlers never run on it (glibc keeps its cancel signal usable). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&h->thread, &attr, watcher_main, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        close(fd);
        h->fd = -1;
        errno = rc;
        return -1;
    }
    h->running = 1;
    return 0;
}

/* ---- the public face -------------------------------------------------------- */

int reign_file_watch_open(const reign_backend_config *cfg, const char *dir, int members_fd,
                          file_watch **out)
{
    int rc = REIGN_EIO;
    const char *what = NULL;
    file_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        reign_backend_error("file: lock directory %s: out of memory", dir);
        return REIGN_ENOMEM;
    }
    w->cfg = cfg;
    w->members_fd = members_fd;
    w->dir = strdup(dir);
    if (w->dir == NULL) {
        free(w);
        reign_backend_error("file: lock directory %s: out of memory", dir);
        return REIGN_ENOMEM;
    }
    w->epoll_fd = w->inotify_fd = w->pipe_rd = w->pipe_wr = w->timer_fd = -1;

    int p[2];
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epoll_fd < 0) {
        what = "epoll_create1";
        goto out;
    }
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        what = "pipe2";
        goto out;
    }
    w->pipe_rd = p[0];
    w->pipe_wr = p[1];
    w->timer_fd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->timer_fd < 0) {
        what = "timerfd_create";
        goto out;
    }
    w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->inotify_fd >= 0 && inotify_add_watch(w->inotify_fd, dir, IN_ATTRIB | IN_ONLYDIR) < 0) {
        close(w->inotify_fd);
        w->inotify_fd = -1;
    }
    if (w->inotify_fd < 0) {
        /* Typically fs.inotify.max_user_instances: degrade, do not fail. */
        reign_backend_log(cfg, REIGN_LOG_WARN,
                          "file: lock directory %s: inotify unavailable (%s); releases by "
                          "others are noticed at the retry interval only",
                          dir, strerror(errno));
    }
    int fds[3] = {w->pipe_rd, w->timer_fd, w->inotify_fd};
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fds[i], &ev) != 0) {
            what = "epoll_ctl";
            goto out;
        }
    }
    *out = w;
    w = NULL;
    rc = REIGN_OK;
out:
    if (what != NULL)
        reign_backend_error("file: lock directory %s: %s: %s", dir, what, strerror(errno));
    if (w != NULL)
        reign_file_watch_close(w);
    return rc;
}

void reign_file_watch_close(file_watch *w)
{
    if (w == NULL)
        return;
    reign_file_map_free(&w->holders, free_holder); /* joins every thread first */
    reign_file_map_free(&w->waits, free_wait);
    int fds[5] = {w->epoll_fd, w->inotify_fd, w->pipe_rd, w->pipe_wr, w->timer_fd};
    for (int i = 0; i < 5; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(w->dir);
    free(w);
}

int reign_file_watch_fd(const file_watch *w)
{
    return w != NULL ? w->epoll_fd : -1;
}

/* Remember that we wait for lock_name, now held by holder. Best effort: out
 * of memory only costs the precise wake-up. */
static void remember_wait(file_watch *w, const char *lock_name, const char *resource, size_t len,
                          const char *holder)
{
    size_t name_len = strlen(lock_name);
    wait_entry *we = reign_file_map_get(&w->waits, lock_name, name_len);
    if (we != NULL) {
        if (strcmp(we->holder, holder) != 0) {
            char *copy = strdup(holder);
            if (copy != NULL) {
                free(we->holder);
                we->holder = copy;
            }
        }
        return;
    }
    we = calloc(1, sizeof *we);
    if (we == NULL)
        return;
    we->resource = malloc(len + 1);
    we->holder = strdup(holder);
    if (we->resource == NULL || we->holder == NULL) {
        free_wait(we);
        return;
    }
    memcpy(we->resource, resource, len);
    we->resource[len] = '\0';
    we->len = len;
    if (reign_file_map_put(&w->waits, lock_name, name_len, we) != 0)
        free_wait(we);
}

int reign_file_watch_held(file_watch *w, const char *lock_name, const char *resource, size_t len,
                          const char *holder)
{
    if (w == NULL)
        return 1;
    remember_wait(w, lock_name, resource, len, holder);
    holder_entry *h = reign_file_map_get(&w->holders, holder, strlen(holder));
    if (h != NULL && h->running && !atomic_load(&h->done))
        return 1; /* watched already */
    if (h != NULL && h->running)
        join_watcher(h); /* saw it die: the pipe byte is still to come */

    int fd = -1;
    int live = reign_file_member_open_live(w->members_fd, holder, &fd);
    if (live < 0) {
        reign_backend_log(w->cfg, REIGN_LOG_DEBUG, "file: cannot watch holder %s: %s", holder,
                          strerror(errno));
        return 1; /* unknown: do not make the caller spin */
    }
    if (live == 0)
        return 0;
    if (h == NULL)
        h = holder_get(w, holder);
    if (h == NULL) {
        close(fd);
        return 1;
    }
    h->retries = 0;
    if (start_watcher(h, fd) != 0)
        reign_backend_log(w->cfg, REIGN_LOG_WARN,
                          "file: cannot start a watcher for holder %s: %s; its death is noticed "
                          "at the retry interval only",
                          holder, strerror(errno));
    return 1;
}

void reign_file_watch_retry_soon(file_watch *w, const char *holder)
{
    if (w == NULL)
        return;
    holder_entry *h = holder_get(w, holder);
    if (h == NULL || h->retries >= RETRY_STEPS)
        return; /* a lock held by a non-member for long: the core's retry covers it */
    int64_t due = reign_backend_now_ns() + (INT64_C(1000000) << h->retries);
    h->retries++;
    if (w->timer_due_ns != 0 && w->timer_due_ns <= due)
        return;
    struct itimerspec its = {.it_value = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000}};
    if (timerfd_settime(w->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        w->timer_due_ns = due;
}

void reign_file_watch_forget(file_watch *w, const char *lock_name)
{
    if (w == NULL || w->waits.count == 0)
        return;
    free_wait(reign_file_map_remove(&w->waits, lock_name, strlen(lock_name)));
}

/* ---- drain ------------------------------------------------------------------ */

typedef struct drain_ctx {
    file_watch *w;
    reign_released_fn released;
    void *ctx;
    int timer;  /* the retry timer fired */
} drain_ctx;

static void report(drain_ctx *d, const char *resource, size_t len)
{
    if (d->released != NULL)
        d->released(d->ctx, resource, len);
}

/* Observing: a lock file nobody here waits for changed. Its name gives the
 * resource back when it is a short one; a long (hashed) name cannot be
 * reversed and is left out (a prefix observer does not learn it). */
static void report_decoded(drain_ctx *d, const char *name)
{
    char id[FILE_NAME_MAX];
    size_t len = 0;
    if (reign_file_name_decode(name, ".lock", id, &len) == 0)
        report(d, id, len);
}

static void drain_inotify(drain_ctx *d)
{
    /* Aligned as inotify_event wants; one read returns whole events only. */
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(d->w->inotify_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                report(d, NULL, 0); /* lost events: cannot tell which */
                continue;
            }
            if (ev->len == 0)
                continue; /* the directory itself */
            wait_entry *we = reign_file_map_get(&d->w->waits, ev->name, strlen(ev->name));
            if (we != NULL)
                report(d, we->resource, we->len);
            else if (d->w->observing)
                report_decoded(d, ev->name);
        }
    }
}

/* Holders sweep: join the threads that saw their holder die. */
static int reap_holder(const char *key, size_t key_len, void *value, void *ctx)
{
    (void)key;
    (void)key_len;
    (void)ctx;
    holder_entry *h = value;
    if (h->running && atomic_load(&h->done)) {
        join_watcher(h);
        h->died = 1;
    }
    return 0;
}

/* Waits sweep: report those whose holder died or is being retried. */
static int report_wait(const char *key, size_t key_len, void *value, void *ctx)
{
    (void)key;
    (void)key_len;
    drain_ctx *d = ctx;
    wait_entry *we = value;
    holder_entry *h = reign_file_map_get(&d->w->holders, we->holder, strlen(we->holder));
    if (h != NULL && (h->died || (d->timer && !h->running && h->retries > 0)))
        report(d, we->resource, we->len);
    return 0;
}

/* Holders sweep: forget the dead ones. */
static int forget_dead(const char *key, size_t key_len, void *value, void *ctx)
{
    (void)key;
    (void)key_len;
    (void)ctx;
    holder_entry *h = value;
    if (!h->died)
        return 0;
    free_holder(h);
    return 1;
}

int reign_file_watch_observe(file_watch *w, int on)
{
    if (w == NULL || w->inotify_fd < 0)
        return REIGN_ENOTSUP;
    uint32_t mask = IN_ATTRIB | IN_ONLYDIR | (on ? IN_MODIFY : 0u);
    /* Same directory: the watch's mask is replaced. */
    if (inotify_add_watch(w->inotify_fd, w->dir, mask) < 0) {
        reign_backend_log(w->cfg, REIGN_LOG_WARN, "file: lock directory %s: inotify: %s", w->dir,
                          strerror(errno));
        return REIGN_EIO;
    }
    w->observing = on;
    return REIGN_OK;
}

void reign_file_watch_drain(file_watch *w, reign_released_fn released, void *ctx)
{
    if (w == NULL)
        return;
    drain_ctx d = {w, released, ctx, 0};
    if (w->inotify_fd >= 0)
        drain_inotify(&d);

    char buf[256];
    int deaths = 0;
    for (;;) {
        ssize_t n = read(w->pipe_rd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        deaths = 1;
    }
    uint64_t expirations = 0;
    ssize_t n;
    do {
        n = read(w->timer_fd, &expirations, sizeof expirations);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof expirations) {
        w->timer_due_ns = 0;
        d.timer = 1;
    }
    if (!deaths && !d.timer)
        return;
    if (deaths)
        reign_file_map_sweep(&w->holders, reap_holder, NULL);
    reign_file_map_sweep(&w->waits, report_wait, &d);
    if (deaths)
        reign_file_map_sweep(&w->holders, forget_dead, NULL);
}
