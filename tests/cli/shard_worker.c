/* A CMD for the `reign shard -- CMD` tests: appends to $LOG
 * "start|tick|stop|exit ID TERM NS INSTANCE" (NS: CLOCK_MONOTONIC), a tick
 * every $TICK_MS (default 5). At SIGTERM it works on for $STOP_MS (default
 * 0), then exits 0 after a "stop" line; with $EXIT_MS it exits 0 by itself
 * after that long ("exit" line). Killed (SIGKILL), its last tick bounds its
 * work to within TICK_MS. One write(2) per line on an O_APPEND file, so
 * instances may share a log.
 *
 *   reign_shard_test_worker --now    prints CLOCK_MONOTONIC in ns (for the
 *                                    test script's own marks) */
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

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long env_ms(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? atol(v) : dflt;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--now") == 0) {
        printf("%" PRId64 "\n", now_ns());
        return 0;
    }
    const char *path = getenv("LOG");
    long tick_ms = env_ms("TICK_MS", 5), stop_ms = env_ms("STOP_MS", 0),
         exit_ms = env_ms("EXIT_MS", 0);
    int64_t exit_at = exit_ms > 0 ? now_ns() + exit_ms * 1000000 : INT64_MAX, stop_at = 0;
    sigset_t set;

    if (path == NULL || (log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644)) < 0)
        return 2;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    put("start");
    for (;;) {
        struct timespec ts = {tick_ms / 1000, (tick_ms % 1000) * 1000000L};
        if (sigtimedwait(&set, NULL, &ts) == SIGTERM && stop_at == 0)
            stop_at = now_ns() + stop_ms * 1000000;
        if (stop_at != 0 && now_ns() >= stop_at) {
            put("stop");
            return 0;
        }
        if (now_ns() >= exit_at) {
            put("exit");
            return 0;
        }
        put("tick");
    }
}
