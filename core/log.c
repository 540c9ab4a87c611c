/* The default stderr logger and the formatting front end for all logging. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>

#include "reign/backend.h"

static int stderr_level = REIGN_LOG_WARN;
static pthread_once_t stderr_level_once = PTHREAD_ONCE_INIT;

static void read_level_from_env(void)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *v = getenv("REIGN_LOG");
    if (v == NULL)
        return;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(v, names[i]) == 0)
            stderr_level = i;
}

void reign_log_stderr(int level, const char *component, const char *message, void *payload)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    (void)payload;
    pthread_once(&stderr_level_once, read_level_from_env);
    if (level > stderr_level || level < 0)
        return;
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s %s %s\n", when, ts.tv_nsec / 1000000, names[level], component,
            message);
}

static void log_v(const reign_logger *logger, int level, const char *component, const char *fmt,
                  va_list ap)
{
    char msg[1024];
    if (logger == NULL || logger->fn == NULL) {
        /* The default logger would drop it: do not format it (the engine
         * may log once per failed op). */
        pthread_once(&stderr_level_once, read_level_from_env);
        if (level > stderr_level)
            return;
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (logger != NULL && logger->fn != NULL)
        logger->fn(level, component, msg, logger->payload);
    else
        reign_log_stderr(level, component, msg, NULL);
}

void reign_log(const reign_logger *logger, int level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(logger, level, component, fmt, ap);
    va_end(ap);
}

void reign_backend_log(const reign_backend_config *cfg, int level, const char *fmt, ...)
{
    reign_logger logger = {cfg->logger, cfg->logger_payload};
    va_list ap;
    va_start(ap, fmt);
    log_v(&logger, level, cfg->scheme, fmt, ap);
    va_end(ap);
}
