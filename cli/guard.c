/* The guard of one command of `reign shard -- CMD`: a small process between
 * reign and CMD that keeps working while reign is stopped or stalls.
 *
 * reign forks the guard; the guard forks CMD in CMD's own process group.
 * reign writes 8-byte messages on a pipe: a positive value is the new local
 * deadline (reign_monotonic_ms, i.e. CLOCK_BOOTTIME ms) after a renewal; a
 * negative one is a signal (-SIGTERM, -SIGKILL) for CMD's group. When the
 * deadline passes without a newer one, or the pipe reaches EOF (reign is
 * gone), the guard SIGKILLs CMD's group at once: the lease may be someone
 * else's from then on. The guard exits with CMD's status (128+N for signal
 * N). PR_SET_PDEATHSIG ties guard to reign and CMD to the guard. CMD's
 * exec failure reaches reign on a close-on-exec report pipe, so reign can
 * say "cannot run CMD" as it does without a guard.
 *
 * Everything after fork is async-signal-safe (reign has threads): no
 * malloc, no stdio. What it cannot cover: a SIGSTOP of the guard itself, or
 * of CMD's group (CMD cannot act then, but resumes later), which is what
 * $REIGN_TERM fencing is for. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static int64_t boottime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* How the guard reaches CMD: its group, or CMD alone. */
static void stop_cmd(pid_t cmd, bool own_group, int sig)
{
    kill(own_group ? -cmd : cmd, sig);
}

/* Take every message reign has sent (in_fd is non-blocking): deadlines
 * move *deadline forward, -SIG signals CMD; at EOF (reign closed the pipe
 * or died) CMD is killed and *in_fd becomes -1. 0, or -1 on a read error. */
static int read_messages(int *in_fd, int64_t *deadline, pid_t cmd, bool own_group, bool *killed)
{
    for (;;) {
        int64_t m;
        ssize_t r = read(*in_fd, &m, sizeof m);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r < 0)
            return -1;
        if (r != (ssize_t)sizeof m) { /* EOF (8-byte writes are atomic) */
            stop_cmd(cmd, own_group, SIGKILL);
            *killed = true;
            close(*in_fd);
            *in_fd = -1;
            return 0;
        }
        if (m > 0 && m > *deadline && *deadline != INT64_MAX)
            *deadline = m;
        else if (m < 0 && !*killed) {
            stop_cmd(cmd, own_group, (int)-m);
            *killed = -m == SIGKILL;
        }
    }
}

/* The guard's life; never returns. report_fd: CMD's exec report to reign. */
static void guard_main(int in_fd, int report_fd, char *const argv[], char *const envp[],
                       const sigset_t *mask, int64_t deadline_ms, bool own_group)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigaddset(&chld, SIGTERM);
    sigaddset(&chld, SIGINT);
    sigaddset(&chld, SIGHUP);
    /* SIGCHLD read from a signalfd: no handler; the stop signals blocked,
     * so that a SIGTERM for the whole tree does not take the guard away
     * before CMD. */
    if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0)
        _exit(CLI_EXIT_FAIL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        _exit(CLI_EXIT_FAIL);
    if (fcntl(in_fd, F_SETFL, O_NONBLOCK) != 0)
        _exit(CLI_EXIT_FAIL);
    pid_t guard = getpid();
    pid_t cmd = fork();
    if (cmd < 0)
        _exit(CLI_EXIT_FAIL);
    if (cmd == 0) {
        /* Both sides set the group: whichever runs first, no signal for
         * the group can find it missing (setpgid(2)'s advice). */
        if (own_group)
            setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
            cli_spawn_report_and_exit(report_fd, errno);
        if (getppid() != guard)
            _exit(CLI_EXIT_LOST);
        close(in_fd);
        close(sfd);
        /* reign ignores SIGPIPE (its guards' pipes); CMD must not inherit it. */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGPIPE, &dfl, NULL);
        cli_spawn_hide_fds();
        if (sigprocmask(SIG_SETMASK, mask, NULL) != 0)
            cli_spawn_report_and_exit(report_fd, errno);
        execvpe(argv[0], argv, envp);
        cli_spawn_report_and_exit(report_fd, errno);
    }
    if (own_group)
        setpgid(cmd, cmd);
    /* CMD's pid for reign, negative (an exec failure is a positive errno);
     * then CMD's copy alone is open: EOF at reign = exec done. */
    int32_t minus_pid = -(int32_t)cmd;
    while (write(report_fd, &minus_pid, sizeof minus_pid) < 0 && errno == EINTR) {
    }
    close(report_fd);
    bool killed = false;
    for (;;) {
        /* Every message already sent counts before the deadline is judged:
         * a deadline that passed while reign's newer one sat in the pipe
         * (a slow fork, a busy machine) is not a lapse. */
        if (in_fd >= 0 && read_messages(&in_fd, &deadline_ms, cmd, own_group, &killed) != 0)
            _exit(CLI_EXIT_FAIL);
        int64_t left = deadline_ms - boottime_ms();
        if (left <= 0 && !killed) {
            stop_cmd(cmd, own_group, SIGKILL);
            killed = true;
        }
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = in_fd, .events = POLLIN}};
        int n = poll(p, in_fd >= 0 ? 2 : 1, killed ? -1 : (int)(left > 1000 ? 1000 : left));
        if (n < 0 && errno != EINTR)
            _exit(CLI_EXIT_FAIL);
        if (n > 0 && (p[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            }
            int status;
            pid_t w = waitpid(cmd, &status, WNOHANG);
            if (w == cmd) {
                /* Anything CMD left in its group goes with it. */
                if (own_group)
                    kill(-cmd, SIGKILL);
                _exit(cli_exit_code_of(status));
            }
        }
    }
}

int cli_guard_start(char *const argv[], char *const envp[], const sigset_t *mask,
                    int64_t deadline_ms, bool own_group, cli_guard *g)
{
    int pipe_fds[2], report[2];
    pid_t reign = getpid();
    *g = (cli_guard){.fd = -1, .report_fd = -1};
    /* The deliberately broken build of the pause test: a guard that never
     * acts on the deadline, as if there were none. */
    const char *broken = getenv("REIGN_SHARD_BROKEN_GUARD");
    if (broken != NULL && strcmp(broken, "1") == 0)
        deadline_ms = INT64_MAX;
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return -1;
    /* Close-on-exec: EOF means CMD's exec happened (or the guard failed). */
    if (pipe2(report, O_CLOEXEC) != 0) {
        int err = errno;
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        errno = err;
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        close(report[0]);
        close(report[1]);
        errno = err;
        return -1;
    }
    if (pid == 0) {
        close(pipe_fds[1]);
        close(report[0]);
        /* Dies with the thread that forked it, or reign; so does CMD. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != reign)
            _exit(CLI_EXIT_LOST);
        guard_main(pipe_fds[0], report[1], argv, envp, mask, deadline_ms, own_group);
    }
    close(pipe_fds[0]);
    close(report[1]);
    /* Not waited for here: the caller forwards deadlines from now on, while
     * the guard forks CMD (slow for a big process) and CMD execs. */
    (void)fcntl(report[0], F_SETFL, O_NONBLOCK);
    g->pid = pid;
    g->fd = pipe_fds[1];
    g->report_fd = report[0];
    return 0;
}

bool cli_guard_report(cli_guard *g, bool wait)
{
    if (g->report_fd < 0)
        return true;
    if (wait)
        (void)fcntl(g->report_fd, F_SETFL, 0);
    /* CMD's pid (negative) and a positive errno if its exec failed, in
     * either order, then EOF. */
    for (;;) {
        int32_t word;
        ssize_t n = read(g->report_fd, &word, sizeof word);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (n != (ssize_t)sizeof word)
            break; /* EOF, or an error: nothing more will come */
        if (word < 0)
            g->cmd_pid = -word;
        else
            g->exec_errno = word;
    }
    close(g->report_fd);
    g->report_fd = -1;
    return true;
}

void cli_guard_close(cli_guard *g)
{
    if (g->fd >= 0)
        close(g->fd);
    if (g->report_fd >= 0)
        close(g->report_fd);
    g->fd = g->report_fd = -1;
}

int cli_guard_send(int fd, int64_t message)
{
    ssize_t w;
    do
        w = write(fd, &message, sizeof message);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)sizeof message ? 0 : -1;
}
