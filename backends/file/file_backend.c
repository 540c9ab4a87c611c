/* The file:// backend's vtable: leases as OFD locks on one lock file per
 * resource in a local directory, no server. open prepares the directory and
 * announces this instance (file_liveness.c); execute runs each op (file_ops.c); the
 * notification fd comes from file_watch.c. Local file systems only: OFD locks
 * and inotify do not work across machines. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_backend.h"
#include "file_internal.h"

static const char members_dir[] = ".members";

/* mkdir -p with mode `mode` for what it creates (exactly: not cut by the
 * umask, and keeping a setgid bit inherited from the parent); existing
 * parts are left as they are. 0, or -1 with errno. */
static int make_dirs(const char *path, mode_t mode)
{
    size_t len = strlen(path);
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(copy, path, len + 1);
    int rc = 0;
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (copy[i] != '/' && copy[i] != '\0')
            continue;
        char saved = copy[i];
        copy[i] = '\0';
        if (mkdir(copy, mode) == 0) {
            int fd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd >= 0) {
                reign_file_fix_mode(fd, mode);
                close(fd);
            }
        } else if (errno != EEXIST) {
            rc = -1;
        }
        copy[i] = saved;
    }
    int saved_errno = errno;
    free(copy);
    errno = saved_errno;
    return rc;
}

static void free_hold(void *p)
{
    file_hold *h = p;
    close(h->fd); /* the kernel frees its locks */
    free(h);
}

static void file_close(void *state)
{
    file_state *st = state;
    if (st == NULL)
        return;
    /* Lease fds first, membership last: a watcher woken by our leaving must
     * find our leases free already. */
    reign_file_map_free(&st->held, free_hold);
    if (st->members_fd >= 0)
        reign_file_member_leave(st->members_fd, st->member_fd, st->member_name);
    reign_file_watch_close(st->watch);
    if (st->members_fd >= 0)
        close(st->members_fd);
    if (st->dir_fd >= 0)
        close(st->dir_fd);
    free(st);
}

/* The directory refused us (EACCES): most likely another user's. */
static void error_not_ours(const char *dir, int dir_fd, const char *name, const char *what,
                           int err)
{
    char owner[256];
    reign_file_describe_owner(dir_fd, name, owner, sizeof owner);
    reign_backend_error("file: lock directory %s: %s: %s; it is %s, and this process is uid %ld; "
                        "%s",
                        dir, what, strerror(err), owner, (long)geteuid(), reign_file_share_hint());
}

/* Files made in a directory without setgid get the creator's group, which
 * another user of the directory's group could then not open. */
static void warn_group(const reign_backend_config *cfg, const char *dir, int dir_fd, mode_t mode)
{
    struct stat st;
    if ((mode & 0060) == 0 || fstat(dir_fd, &st) != 0 || (st.st_mode & S_ISGID) != 0 ||
        st.st_gid == getegid())
        return;
    reign_backend_log(cfg, REIGN_LOG_WARN,
                      "file: lock directory %s: mode=%04o, but the directory is not setgid: files "
                      "made here get group %ld (this process'), not the directory's %ld; "
                      "chmod g+s %s",
                      dir, (unsigned)mode, (long)getegid(), (long)st.st_gid, dir);
}

static int file_open(const reign_backend_config *cfg, void **state_out)
{
    int rc = REIGN_EIO;
    const char *dir = cfg->path != NULL ? cfg->path : "";
    const char *shown = cfg->uri_redacted != NULL ? cfg->uri_redacted : "file://";
    file_state *st = NULL;

    if (cfg->host != NULL && cfg->host[0] != '\0' && strcmp(cfg->host, "localhost") != 0) {
        reign_backend_error("file: %s: a file URI names a local directory, not host \"%s\" "
                            "(use file:///abs/dir)",
                            shown, cfg->host);
        rc = REIGN_EURI;
        goto out;
    }
    if (dir[0] == '\0') {
        reign_backend_error("file: %s: no directory (use file:///abs/dir)", shown);
        rc = REIGN_EURI;
        goto out;
    }
    if (cfg->instance_id == NULL || cfg->instance_id[0] == '\0') {
        reign_backend_error("file: lock directory %s: empty instance ID", dir);
        rc = REIGN_EINVAL;
        goto out;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL) {
        reign_backend_error("file: lock directory %s: out of memory", dir);
        rc = REIGN_ENOMEM;
        goto out;
    }
    st->cfg = cfg;
    st->dir = dir;
    st->metadata = cfg->metadata != NULL ? cfg->metadata : "";
    st->dir_fd = st->members_fd = st->member_fd = -1;
    st->file_mode = 0600;
    const char *mode_text = reign_backend_param(cfg, "mode");
    if (mode_text != NULL) {
        if (reign_file_parse_mode(mode_text, &st->file_mode) != 0) {
            reign_backend_error("file: %s: mode=%s: give the lock files' mode in octal, with rw "
                                "for the owner and no x (e.g. 0660: shared with the group; "
                                "0600, the default: this user only)",
                                shown, mode_text);
            rc = REIGN_EURI;
            goto out;
        }
        st->mode_given = 1;
    }
    mode_t dir_mode = reign_file_dir_mode(st->file_mode);

    if (make_dirs(dir, dir_mode) != 0) {
        int err = errno;
        reign_backend_error("file: cannot create lock directory %s: %s%s", dir, strerror(err),
                            err == EACCES ? " (a parent directory is not writable by this user)"
                                          : "");
        rc = err == EACCES ? REIGN_EAUTH : REIGN_EIO;
        goto out;
    }
    st->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dir_fd < 0) {
        int err = errno;
        if (err == EACCES)
            error_not_ours(dir, AT_FDCWD, dir, "cannot open it", err);
        else
            reign_backend_error("file: lock directory %s: %s", dir, strerror(err));
        rc = err == EACCES ? REIGN_EAUTH : REIGN_EIO;
        goto out;
    }
    if (faccessat(st->dir_fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        int err = errno;
        error_not_ours(dir, st->dir_fd, ".", "not writable", err);
        rc = err == EACCES ? REIGN_EAUTH : REIGN_EIO;
        goto out;
    }
    if (st->mode_given)
        warn_group(cfg, dir, st->dir_fd, st->file_mode);
    if (mkdirat(st->dir_fd, members_dir, dir_mode) == 0) {
        int fd = openat(st->dir_fd, members_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            reign_file_fix_mode(fd, dir_mode);
            close(fd);
        }
    } else if (errno != EEXIST) {
        reign_backend_error("file: lock directory %s: cannot create %s: %s", dir, members_dir,
                            strerror(errno));
        goto out;
    }
    st->members_fd = openat(st->dir_fd, members_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (st->members_fd < 0) {
        int err = errno;
        if (err == EACCES)
            error_not_ours(dir, st->dir_fd, members_dir, members_dir, err);
        else
            reign_backend_error("file: lock directory %s: %s: %s", dir, members_dir, strerror(err));
        rc = err == EACCES ? REIGN_EAUTH : REIGN_EIO;
        goto out;
    }
    int joined = reign_file_member_join(st->members_fd, cfg->instance_id, st->file_mode,
                                        &st->member_fd, st->member_name);
    if (joined < 0) {
        int err = errno;
        if (err == EACCES) {
            char what[FILE_NAME_MAX + 64];
            snprintf(what, sizeof what, "member file %s/%s", members_dir, st->member_name);
            error_not_ours(dir, st->members_fd, ".", what, err);
        } else {
            reign_backend_error("file: lock directory %s: member file %s/%s: %s", dir,
                                members_dir, st->member_name, strerror(err));
        }
        rc = err == EACCES ? REIGN_EAUTH : REIGN_EIO;
        goto out;
    }
    if (joined == 1)
        reign_backend_log(cfg, REIGN_LOG_WARN,
                          "file: lock directory %s: instance ID %s is in use by another live "
                          "instance; others notice this one's death at their retry interval only",
                          dir, cfg->instance_id);
    reign_file_member_sweep(st->members_fd, st->member_name);
    reign_file_nofile_prepare(st);
    rc = reign_file_watch_open(cfg, dir, st->members_fd, &st->watch);
    if (rc != REIGN_OK)
        goto out;
    *state_out = st;
    st = NULL;
    rc = REIGN_OK;
out:
    if (st != NULL)
        file_close(st);
    return rc;
}

static int file_execute(void *state, reign_batch *b)
{
    file_state *st = state;
    st->emfile_batch = 0; /* descriptors may have been freed since */
    for (size_t i = 0; i < b->n_ops; i++)
        reign_file_op_run(st, &b->ops[i], b->deadline_ns);
    return REIGN_OK;
}

static int file_notify_fd(void *state)
{
    const file_state *st = state;
    return reign_file_watch_fd(st->watch);
}

static void file_notify_drain(void *state, reign_released_fn released, void *ctx)
{
    file_state *st = state;
    reign_file_watch_drain(st->watch, released, ctx);
}

static int file_observe(void *state, int on)
{
    file_state *st = state;
    return reign_file_watch_observe(st->watch, on);
}

static int file_set_metadata(void *state, const char *resource, size_t len, uint64_t term,
                             const char *metadata, int64_t deadline_ns)
{
    return reign_file_op_set_metadata(state, resource, len, term, metadata, deadline_ns);
}

static const char *const file_params[] = {"mode", NULL};

const reign_backend reign_backend_file = {
    REIGN_BACKEND_INIT,
    .scheme = "file",
    .open = file_open,
    .execute = file_execute,
    .notify_fd = file_notify_fd,
    .notify_drain = file_notify_drain,
    .close = file_close,
    .params = file_params,
    .observe = file_observe,
    .set_metadata = file_set_metadata,
};
