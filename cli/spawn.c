/* What the command of `reign lock` and `reign shard -- CMD` starts with: its
 * environment, none of reign's own file descriptors, and a report of a failed
 * exec to the parent (the fork and exec themselves are the guard's: guard.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

/* The user's descriptors above 2 at startup, ascending. Written once by
 * cli_spawn_snapshot_fds before any thread exists, read-only afterwards. */
#define MAX_KEPT_FDS 256
static int kept_fds[MAX_KEPT_FDS];
static size_t n_kept_fds;
/* More user fds than we can list: hide none rather than hide the user's
 * (the library opens its own with O_CLOEXEC anyway). */
static bool too_many_fds;

static int compare_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int cli_spawn_snapshot_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    n_kept_fds = 0;
    if (d == NULL) {
        /* No /proc: probe the low numbers, where inherited fds live. */
        for (int fd = 3; fd < MAX_KEPT_FDS; fd++)
            if (fcntl(fd, F_GETFD) != -1)
                kept_fds[n_kept_fds++] = fd;
        /* Above the probed range, we cannot tell the user's from ours. */
        too_many_fds = fcntl(MAX_KEPT_FDS, F_GETFD) != -1;
        return 0;
    }
    int own = dirfd(d);
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        char *end = NULL;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name || fd <= 2 || fd == own)
            continue;
        if (n_kept_fds < MAX_KEPT_FDS)
            kept_fds[n_kept_fds++] = (int)fd;
        else
            too_many_fds = true;
    }
    int err = errno;
    closedir(d);
    qsort(kept_fds, n_kept_fds, sizeof kept_fds[0], compare_int);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* In the child: mark every fd above 2 that the user did not give us
 * close-on-exec. Async-signal-safe (a child of a threaded process may only
 * make such calls). Old kernels without CLOSE_RANGE_CLOEXEC are left to the
 * library's own O_CLOEXEC. */
void cli_spawn_hide_fds(void)
{
    unsigned lo = 3;
    if (too_many_fds)
        return;
    for (size_t i = 0; i < n_kept_fds; i++) {
        unsigned k = (unsigned)kept_fds[i];
        if (k > lo)
            (void)syscall(SYS_close_range, lo, k - 1, CLOSE_RANGE_CLOEXEC);
        lo = k + 1;
    }
    (void)syscall(SYS_close_range, lo, ~0U, CLOSE_RANGE_CLOEXEC);
}

int cli_exit_code_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return CLI_EXIT_SIGNAL_BASE + WTERMSIG(status);
    return CLI_EXIT_FAIL;
}

void cli_spawn_report_and_exit(int report_fd, int err)
{
    ssize_t n;
    do
        n = write(report_fd, &err, sizeof err);
    while (n < 0 && errno == EINTR);
    _exit(err == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_CANNOT_EXEC);
}

static bool is_reign_var(const char *entry)
{
    static const char *const names[] = {"REIGN_RESOURCE=", "REIGN_TERM=", "REIGN_INSTANCE="};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

static char *env_entry(const char *name, const char *value)
{
    size_t n = strlen(name) + 1 + strlen(value) + 1;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s=%s", name, value);
    return s;
}

char **cli_env_build(const char *resource, uint64_t term, const char *instance)
{
    size_t n_env = 0, o = 0;
    char term_text[24];
    char **env = NULL;

    for (char **e = environ; e != NULL && *e != NULL; e++)
        n_env++;
    /* Our three entries come first, as malloc'd strings, so that free is
     * simple; the inherited ones are borrowed from environ. */
    env = calloc(n_env + 4, sizeof *env);
    if (env == NULL)
        return NULL;
    snprintf(term_text, sizeof term_text, "%" PRIu64, term);
    env[o++] = env_entry("REIGN_RESOURCE", resource);
    env[o++] = env_entry("REIGN_TERM", term_text);
    env[o++] = env_entry("REIGN_INSTANCE", instance);
    if (env[0] == NULL || env[1] == NULL || env[2] == NULL) {
        cli_env_free(env);
        return NULL;
    }
    for (char **e = environ; e != NULL && *e != NULL; e++)
        if (!is_reign_var(*e))
            env[o++] = *e;
    env[o] = NULL;
    return env;
}

void cli_env_free(char **env)
{
    if (env == NULL)
        return;
    for (size_t i = 0; i < 3; i++)
        free(env[i]);
    free(env);
}
