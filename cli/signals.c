/* Stop signals of the long-running commands (watch, shard): blocked in
 * every thread and taken synchronously, so no handler races with anything. */
#include <errno.h>
#include <signal.h>
#include <time.h>

#include "cli.h"

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
        if (sig > 0)
            return sig;
        if (errno == EAGAIN)
            return 0;
        /* EINTR: another signal (e.g. SIGCHLD, SIGWINCH) ran its handler;
         * wait out the rest of the time. */
        if (errno != EINTR)
            return -1;
    }
}
