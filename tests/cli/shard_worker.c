/* A CMD for the `reign shard -- CMD` tests: appends to $LOG
 * "start|tick|stop ID TERM NS INSTANCE" (NS: CLOCK_MONOTONIC), a tick every
 * $TICK_MS (default 5), and exits 0 at SIGTERM after a "stop" line. Killed
 * (SIGKILL), its last tick bounds its work to within TICK_MS. One write(2)
 * per line on an O_APPEND file, so instances may share a log. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd;

static void put(const char *what)
{
    struct timespec ts;
    char line[512];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const char *id = getenv("REIGN_RESOURCE"), *term = getenv("REIGN_TERM"),
               *inst = getenv("REIGN_INSTANCE");
    int n = snprintf(line, sizeof line, "%s %s %s %" PRId64 " %s\n", what, id ? id : "?",
                     term ? term : "?", (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
                     inst ? inst : "?");
    if (write(log_fd, line, (size_t)n) != n)
        exit(3);
}

int main(void)
{
    const char *path = getenv("LOG");
    const char *tick = getenv("TICK_MS");
    long tick_ms = tick ? atol(tick) : 5;
    sigset_t set;

    if (path == NULL || (log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644)) < 0)
        return 2;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    put("start");
    for (;;) {
        struct timespec ts = {tick_ms / 1000, (tick_ms % 1000) * 1000000L};
        if (sigtimedwait(&set, NULL, &ts) == SIGTERM) {
            put("stop");
            return 0;
        }
        put("tick");
    }
}
