/* The file:// backend's vtable: leases as OFD locks on one lock file per
 * resource in a local directory, no server. open prepares the directory and
 * announces this instance (members.c); execute runs each op (ops.c); the
 * notification fd comes from watch.c. Local file systems only: OFD locks
 * and inotify do not work across machines. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_internal.h"

static const char members_dir[] = ".members";

/* mkdir -p with mode 0700 for what it creates; existing parts are left as
 * they are. 0, or -1 with errno. */
static int make_dirs(const char *path)
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
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            rc = -1;
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
    file_map_free(&st->held, free_hold);
    if (st->members_fd >= 0)
        file_member_leave(st->members_fd, st->member_fd, st->member_name);
    file_watch_close(st->watch);
    if (st->members_fd >= 0)
        close(st->members_fd);
    if (st->dir_fd >= 0)
        close(st->dir_fd);
    free(st);
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

    if (make_dirs(dir) != 0) {
        reign_backend_error("file: cannot create lock directory %s: %s", dir, strerror(errno));
        goto out;
    }
    st->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dir_fd < 0) {
        reign_backend_error("file: lock directory %s: %s", dir, strerror(errno));
        goto out;
    }
    if (faccessat(st->dir_fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        reign_backend_error("file: lock directory %s: not writable: %s", dir, strerror(errno));
        goto out;
    }
    if (mkdirat(st->dir_fd, members_dir, 0700) != 0 && errno != EEXIST) {
        reign_backend_error("file: lock directory %s: cannot create %s: %s", dir, members_dir,
                            strerror(errno));
        goto out;
    }
    st->members_fd = openat(st->dir_fd, members_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (st->members_fd < 0) {
        reign_backend_error("file: lock directory %s: %s: %s", dir, members_dir, strerror(errno));
        goto out;
    }
    int joined = file_member_join(st->members_fd, cfg->instance_id, &st->member_fd, st->member_name);
    if (joined < 0) {
        reign_backend_error("file: lock directory %s: member file %s/%s: %s", dir, members_dir,
                            st->member_name, strerror(errno));
        goto out;
    }
    if (joined == 1)
        reign_backend_log(cfg, REIGN_LOG_WARN,
                          "file: lock directory %s: instance ID %s is in use by another live "
                          "instance; others notice this one's death at their retry interval only",
                          dir, cfg->instance_id);
    file_member_sweep(st->members_fd, st->member_name);
    rc = file_watch_open(cfg, dir, st->members_fd, &st->watch);
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

static int file_execute(void *state, reign_op *ops, size_t n_ops, int64_t timeout_ms)
{
    file_state *st = state;
    int64_t deadline_ns = file_now_ns() + (timeout_ms > 0 ? timeout_ms : 0) * 1000000;
    for (size_t i = 0; i < n_ops; i++)
        file_op_run(st, &ops[i], deadline_ns);
    return REIGN_OK;
}

static int file_notify_fd(void *state)
{
    const file_state *st = state;
    return file_watch_fd(st->watch);
}

static void file_notify_drain(void *state, reign_released_fn released, void *ctx)
{
    file_state *st = state;
    file_watch_drain(st->watch, released, ctx);
}

static const char *const file_params[] = {NULL};

const reign_backend reign_backend_file = {
    .version = REIGN_BACKEND_VERSION,
    .scheme = "file",
    .open = file_open,
    .execute = file_execute,
    .notify_fd = file_notify_fd,
    .notify_drain = file_notify_drain,
    .close = file_close,
    .params = file_params,
};
