/* The four lease operations on one lock file (see backend.h for their
 * meaning and file_lockio.c for the two locks).
 *
 *   ACQUIRE  record lock (write) → try byte 0 → read the record →
 *            ours: write term+1 "held" by us, keep the fd → OK(term)
 *            busy: HELD(holder, term, metadata) and watch the holder
 *   RENEW    we hold the fd with that term and the record still says so → OK
 *   RELEASE  write the record "released" (same term), unlock, touch the file
 *            times (the inotify signal to waiters), close → OK
 *   READ     record lock (read) → is byte 0 locked? → OK(record) or NONE
 *
 * Nothing here waits for another process' lease: the only waits are for the
 * record lock, which is held for microseconds and bounded by the deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_internal.h"

static const char lock_suffix[] = ".lock";

static void fail(const file_state *st, reign_op *op, int status, const char *name,
                 const char *what, const char *detail)
{
    reign_op_fail(op, status, "lock file %s/%s: %s%s%s", st->dir, name, what,
                  detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

static int status_of_errno(int err)
{
    switch (err) {
    case ENOMEM: return REIGN_ENOMEM;
    case ETIMEDOUT: return REIGN_ETIMEDOUT;
    default: return REIGN_EIO;
    }
}

static void fail_errno(const file_state *st, reign_op *op, const char *name, const char *what,
                       int err)
{
    if (err == EACCES || err == EPERM) {
        /* Most likely another user's file: say whose, and what to do. */
        char owner[256], detail[768];
        reign_file_describe_owner(st->dir_fd, name, owner, sizeof owner);
        snprintf(detail, sizeof detail, "%s; it is %s, and this process is uid %ld; %s",
                 strerror(err), owner, (long)geteuid(), reign_file_share_hint());
        fail(st, op, REIGN_EAUTH, name, what, detail);
        return;
    }
    fail(st, op, status_of_errno(err), name, what, strerror(err));
}

static int open_lock(file_state *st, const char *name, int flags)
{
    int fd = openat(st->dir_fd, name, flags | O_CLOEXEC | O_NOFOLLOW, st->file_mode);
    if (fd >= 0 && st->mode_given)
        reign_file_fix_mode(fd, st->file_mode);
    return fd;
}

/* Read and parse the record of fd (its record lock held). 0, or -1 with
 * the op failed. */
static int read_record(const file_state *st, reign_op *op, const char *name, int fd,
                       file_record *rec)
{
    char *buf = NULL;
    size_t len = 0;
    const char *why = NULL;
    if (reign_file_read_fd(fd, &buf, &len) != 0) {
        if (errno == EFBIG)
            fail(st, op, REIGN_EPROTO, name, "larger than 1 MiB, not a reign lock file", NULL);
        else
            fail_errno(st, op, name, "read", errno);
        return -1;
    }
    int rc = reign_file_record_parse(buf, len, rec, &why);
    free(buf);
    if (rc == FILE_RECORD_OK)
        return 0;
    fail(st, op, rc == FILE_RECORD_NOMEM ? REIGN_ENOMEM : REIGN_EPROTO, name, why, NULL);
    return -1;
}

/* Set op to HELD/READ-OK with the record's strings (moved out of rec). */
static void report_holder(reign_op *op, reign_op_result result, file_record *rec)
{
    op->result = result;
    op->out_term = rec->term;
    op->out_holder = rec->holder;
    op->out_metadata = rec->metadata;
    op->out_remaining_ms = -1; /* no expiry: the lease lasts while its holder lives */
    rec->holder = NULL;
    rec->metadata = NULL;
}

static int report_self(const file_state *st, reign_op *op, uint64_t term)
{
    file_record rec = {term, FILE_STATE_HELD, strdup(st->cfg->instance_id),
                       strdup(st->metadata)};
    if (rec.holder == NULL || rec.metadata == NULL) {
        reign_file_record_clear(&rec);
        return -1;
    }
    report_holder(op, REIGN_RES_HELD, &rec);
    return 0;
}

/* Drop a held lease: unlock, signal waiters, close, forget. */
static void drop_hold(file_state *st, const char *resource, size_t len)
{
    file_hold *h = reign_file_map_remove(&st->held, resource, len);
    if (h == NULL)
        return;
    /* Unlock before touching the times, so a waiter woken by the inotify
     * event (IN_ATTRIB from futimens) finds the lock free. */
    (void)reign_file_unlock_master(h->fd);
    (void)futimens(h->fd, NULL);
    close(h->fd);
    free(h);
}

static void do_acquire(file_state *st, reign_op *op, const char *name, int64_t deadline_ns)
{
    file_record rec = {0};
    int fd = -1;
    int retried = 0;
    char *buf = NULL;
    file_hold *hold = NULL;

    file_hold *mine = reign_file_map_get(&st->held, op->resource, op->resource_len);
    if (mine != NULL) {
        /* Ours from an earlier belief (the core's deadline passed, or the
         * answer to an ACQUIRE was lost): report it; the core releases it and
         * campaigns again, which gives a fresh term. */
        if (report_self(st, op, mine->term) != 0)
            fail(st, op, REIGN_ENOMEM, name, "out of memory", NULL);
        return;
    }
    if (reign_file_nofile_refuse(st, op))
        return;
again:
    fd = open_lock(st, name, O_RDWR | O_CREAT);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
        reign_file_nofile_emfile(st, op);
        goto out;
    }
    if (fd < 0) {
        fail_errno(st, op, name, "open", errno);
        goto out;
    }
    if (reign_file_lock_record(fd, F_WRLCK, deadline_ns) != 0) {
        fail_errno(st, op, name, "record lock", errno);
        goto out;
    }
    int got = reign_file_lock_master_try(fd);
    if (got < 0) {
        fail_errno(st, op, name, "lock", errno);
        goto out;
    }
    if (read_record(st, op, name, fd, &rec) != 0)
        goto out; /* closing fd below frees the lock if we took it */

    if (got == 1) {
        /* Held by someone else (or by another state of ours). */
        close(fd); /* drops our record lock */
        fd = -1;
        if (rec.state != FILE_STATE_HELD) {
            fail(st, op, REIGN_EPROTO, name,
                 "locked, but its record says it is not held (locked by a program other "
                 "than reign?)",
                 NULL);
            goto out;
        }
        if (strcmp(rec.holder, st->cfg->instance_id) != 0 &&
            !reign_file_watch_held(st->watch, name, op->resource, op->resource_len, rec.holder)) {
            /* The holder is no live member: it died and the kernel is freeing
             * its locks right now. Try once more at once, then let the timer
             * wake us shortly. */
            if (!retried) {
                retried = 1;
                reign_file_record_clear(&rec);
                goto again;
            }
            reign_file_watch_retry_soon(st->watch, rec.holder);
        }
        report_holder(op, REIGN_RES_HELD, &rec);
        goto out;
    }

    /* Ours. The term lives in the file, so it survives restarts. */
    if (rec.term == UINT64_MAX) {
        fail(st, op, REIGN_EPROTO, name, "term at its maximum, cannot grow", NULL);
        goto out;
    }
    uint64_t term = rec.term + 1;
    size_t len = 0;
    buf = reign_file_record_encode(term, FILE_STATE_HELD, st->cfg->instance_id, st->metadata, &len);
    hold = malloc(sizeof *hold);
    if (buf == NULL || hold == NULL) {
        fail(st, op, REIGN_ENOMEM, name, "out of memory", NULL);
        goto out;
    }
    if (reign_file_write_fd(fd, buf, len) != 0) {
        fail_errno(st, op, name, "write", errno);
        goto out;
    }
    hold->fd = fd;
    hold->term = term;
    if (reign_file_map_put(&st->held, op->resource, op->resource_len, hold) != 0) {
        fail(st, op, REIGN_ENOMEM, name, "out of memory", NULL);
        goto out; /* the record says "held" but the lock goes: readers see NONE */
    }
    reign_file_unlock_record(fd);
    fd = -1;
    hold = NULL;
    reign_file_watch_forget(st->watch, name);
    op->result = REIGN_RES_OK;
    op->out_term = term;
out:
    if (fd >= 0)
        close(fd);
    free(hold);
    free(buf);
    reign_file_record_clear(&rec);
}

static void do_renew(file_state *st, reign_op *op, const char *name, int64_t deadline_ns)
{
    file_record rec = {0};
    file_hold *h = reign_file_map_get(&st->held, op->resource, op->resource_len);
    if (h == NULL || h->term != op->term) {
        op->result = REIGN_RES_LOST;
        return;
    }
    if (reign_file_lock_record(h->fd, F_RDLCK, deadline_ns) != 0) {
        fail_errno(st, op, name, "record lock", errno);
        return;
    }
    int rc = read_record(st, op, name, h->fd, &rec);
    reign_file_unlock_record(h->fd);
    if (rc != 0)
        return; /* keep the lock: the core releases it if it stops believing */
    if (rec.state != FILE_STATE_HELD || rec.term != h->term ||
        strcmp(rec.holder, st->cfg->instance_id) != 0) {
        /* Something other than reign rewrote the record under our lock:
         * trust neither, give the lease up. */
        reign_backend_log(st->cfg, REIGN_LOG_WARN,
                          "file: lock file %s/%s: record changed under our lock (term %llu, "
                          "expected %llu); giving the lease up",
                          st->dir, name, (unsigned long long)rec.term,
                          (unsigned long long)h->term);
        drop_hold(st, op->resource, op->resource_len);
        op->result = REIGN_RES_LOST;
    } else {
        op->result = REIGN_RES_OK;
    }
    reign_file_record_clear(&rec);
}

static void do_release(file_state *st, reign_op *op, const char *name, int64_t deadline_ns)
{
    file_hold *h = reign_file_map_get(&st->held, op->resource, op->resource_len);
    if (h == NULL || h->term != op->term) {
        op->result = REIGN_RES_LOST;
        return;
    }
    /* Mastership is the lock; the record is for readers and for the term.
     * If the record cannot be rewritten, unlocking still ends the lease (the
     * term stays in the file either way), so RELEASE succeeds regardless. */
    size_t len = 0;
    char *buf = reign_file_record_encode(h->term, FILE_STATE_RELEASED, st->cfg->instance_id,
                                         st->metadata, &len);
    int locked = reign_file_lock_record(h->fd, F_WRLCK, deadline_ns) == 0;
    if (buf == NULL || !locked || reign_file_write_fd(h->fd, buf, len) != 0)
        reign_backend_log(st->cfg, REIGN_LOG_WARN,
                          "file: lock file %s/%s: could not mark the record released (%s); "
                          "unlocking anyway",
                          st->dir, name, buf == NULL ? "out of memory" : strerror(errno));
    free(buf);
    (void)reign_file_unlock_master(h->fd); /* before the record lock: see file_lockio.c */
    if (locked)
        reign_file_unlock_record(h->fd);
    drop_hold(st, op->resource, op->resource_len);
    op->result = REIGN_RES_OK;
}

static void do_read(file_state *st, reign_op *op, const char *name, int64_t deadline_ns)
{
    file_record rec = {0};
    file_hold *h = reign_file_map_get(&st->held, op->resource, op->resource_len);
    int fd = h != NULL ? h->fd : open_lock(st, name, O_RDONLY);
    int opened = h == NULL;
    if (fd < 0) {
        if (errno == ENOENT)
            op->result = REIGN_RES_NONE; /* never campaigned for */
        else
            fail_errno(st, op, name, "open", errno);
        return;
    }
    if (reign_file_lock_record(fd, F_RDLCK, deadline_ns) != 0) {
        fail_errno(st, op, name, "record lock", errno);
        goto out;
    }
    int held = h != NULL ? 1 : reign_file_lock_master_probe(fd);
    if (held < 0) {
        fail_errno(st, op, name, "lock probe", errno);
    } else if (held == 0) {
        op->result = REIGN_RES_NONE; /* released, or its holder died */
    } else if (read_record(st, op, name, fd, &rec) == 0) {
        if (rec.state == FILE_STATE_HELD) {
            /* Readers want to know when this changes too (the core's
             * membership reads slots): watch the holder like a waiter. */
            if (h == NULL && strcmp(rec.holder, st->cfg->instance_id) != 0)
                reign_file_watch_held(st->watch, name, op->resource, op->resource_len, rec.holder);
            report_holder(op, REIGN_RES_OK, &rec);
        } else
            fail(st, op, REIGN_EPROTO, name,
                 "locked, but its record says it is not held (locked by a program other "
                 "than reign?)",
                 NULL);
    }
    reign_file_unlock_record(fd);
out:
    if (opened)
        close(fd);
    reign_file_record_clear(&rec);
}

void reign_file_op_run(file_state *st, reign_op *op, int64_t deadline_ns)
{
    char name[FILE_NAME_MAX];
    reign_file_name_encode(op->resource, op->resource_len, lock_suffix, name);
    switch (op->kind) {
    case REIGN_OP_ACQUIRE: do_acquire(st, op, name, deadline_ns); break;
    case REIGN_OP_RENEW: do_renew(st, op, name, deadline_ns); break;
    case REIGN_OP_RELEASE: do_release(st, op, name, deadline_ns); break;
    case REIGN_OP_READ: do_read(st, op, name, deadline_ns); break;
    default:
        reign_op_fail(op, REIGN_EBUG, "unknown op kind %d", (int)op->kind);
        break;
    }
}

int reign_file_op_set_metadata(file_state *st, const char *resource, size_t len, uint64_t term,
                               const char *metadata, int64_t deadline_ns)
{
    char name[FILE_NAME_MAX];
    reign_file_name_encode(resource, len, lock_suffix, name);
    file_hold *h = reign_file_map_get(&st->held, resource, len);
    if (h == NULL || h->term != term) {
        reign_backend_error("file: lock file %s/%s: set_metadata: not held by us with term %llu",
                            st->dir, name, (unsigned long long)term);
        return REIGN_ENOTMASTER;
    }
    size_t n = 0;
    char *buf = reign_file_record_encode(term, FILE_STATE_HELD, st->cfg->instance_id, metadata, &n);
    if (buf == NULL) {
        reign_backend_error("file: lock file %s/%s: set_metadata: out of memory", st->dir, name);
        return REIGN_ENOMEM;
    }
    int rc = REIGN_OK;
    if (reign_file_lock_record(h->fd, F_WRLCK, deadline_ns) != 0) {
        reign_backend_error("file: lock file %s/%s: set_metadata: record lock: %s", st->dir, name,
                            strerror(errno));
        rc = REIGN_EIO;
    } else {
        /* The write raises IN_MODIFY: observers elsewhere read it. */
        if (reign_file_write_fd(h->fd, buf, n) != 0) {
            reign_backend_error("file: lock file %s/%s: set_metadata: write: %s", st->dir, name,
                                strerror(errno));
            rc = REIGN_EIO;
        }
        reign_file_unlock_record(h->fd);
    }
    free(buf);
    return rc;
}
