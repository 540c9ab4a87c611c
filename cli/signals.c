/* Stop signals of the long-running commands (watch, shard): blocked in
 * every thread and taken synchronously, so no handler races with anything.
 * After cleanup reign dies of the stop signal it got (cli_die_of_stop_signal):
 * a service manager or shell then sees a signal death, as for flock(1), and
 * systemd counts SIGTERM as a clean stop without SuccessExitStatus=143. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"

/* The first stop signal received; 0 if none. Written by the main thread
 * only (signals are taken synchronously there), read by it at exit. */
static int reign_cli_stop_signal;

void cli_note_stop_signal(int sig)
{
    if (reign_cli_stop_signal == 0)
        reign_cli_stop_signal = sig;
}

void cli_forget_stop_signal(void)
{
    reign_cli_stop_signal = 0;
}

void cli_die_of_stop_signal(void)
{
    int sig = reign_cli_stop_signal;
    sigset_t one;

    if (sig == 0)
        return;
    /* Death by a signal skips exit(): flush what was written first. */
    fflush(stdout);
    fflush(stderr);
    signal(sig, SIG_DFL);
    sigemptyset(&one);
    sigaddset(&one, sig);
    raise(sig);  /* pending while blocked; delivered by the unblock below */
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    /* Not reached unless the signal is ignored by a parent's setting that
     * SIG_DFL could not undo: exit the way a shell would report it. */
    exit(CLI_EXIT_SIGNAL_BASE + sig);
}

int cli_block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    return sigprocmask(SIG_BLOCK, set, NULL) == 0 ? 0 : -1;
}

int cli_wait_stop_signal(const sigset_t *set, int64_t timeout_ms)
{
    int64_t deadline = timeout_ms >= 0 ? reign_monotonic_ms() + timeout_ms : -1;

    for (;;) {
        int sig;
        if (deadline < 0) {
            sig = sigwaitinfo(set, NULL);
        } else {
            int64_t left = deadline - reign_monotonic_ms();
            if (left < 0)
                left = 0;
            struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
            sig = sigtimedwait(set, NULL, &ts);
        }
        if (sig > 0) {
            cli_note_stop_signal(sig);
            return sig;
        }
        if (errno == EAGAIN)
            return 0;
        /* EINTR: another signal (e.g. SIGCHLD, SIGWINCH) ran its handler;
         * wait out the rest of the time. */
        if (errno != EINTR)
            return -1;
    }
}
