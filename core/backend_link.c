/* Reconnection pacing for backends (include/reign/backend.h): the one
 * backoff that every backend with a long-lived connection uses. */
#include <inttypes.h>
#include <stdio.h>

#include "reign/backend.h"
#include "reign/reign.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

int reign_backend_link_may_try(const reign_backend_link *l, int64_t now_ms)
{
    return now_ms >= l->next_try_ms;
}

void reign_backend_link_retry_now(reign_backend_link *l)
{
    l->next_try_ms = reign_monotonic_ms();
}

void reign_backend_link_lost(const reign_backend_config *cfg, reign_backend_link *l,
                             const char *what, const char *cause)
{
    l->next_try_ms = reign_monotonic_ms();
    l->backoff_ms = 0;
    l->outage_logged = 1;
    reign_backend_log(cfg, REIGN_LOG_WARN, "%s lost: %s (%s)", what, cause, cfg->uri_redacted);
}

void reign_backend_link_failed(const reign_backend_config *cfg, reign_backend_link *l,
                               const char *what, int status, const char *cause)
{
    l->backoff_ms = l->backoff_ms == 0 ? BACKOFF_MIN_MS : l->backoff_ms * 2;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    l->next_try_ms = reign_monotonic_ms() + l->backoff_ms;
    l->last_status = status;
    snprintf(l->last_error, sizeof l->last_error, "%s", cause);
    reign_backend_log(cfg, l->outage_logged ? REIGN_LOG_DEBUG : REIGN_LOG_WARN,
                      "%s: %s; next attempt in %" PRId64 " ms (%s)", what, cause, l->backoff_ms,
                      cfg->uri_redacted);
    l->outage_logged = 1;
}

void reign_backend_link_up(const reign_backend_config *cfg, reign_backend_link *l,
                           const char *what)
{
    l->backoff_ms = 0;
    if (l->outage_logged)
        reign_backend_log(cfg, REIGN_LOG_INFO, "%s is back (%s)", what, cfg->uri_redacted);
    l->outage_logged = 0;
}

int reign_backend_link_refusal(const reign_backend_link *l, int64_t now_ms, char *err,
                               size_t err_size)
{
    snprintf(err, err_size, "not connected (%s); next attempt in %" PRId64 " ms", l->last_error,
             l->next_try_ms - now_ms);
    return l->last_status != REIGN_OK ? l->last_status : REIGN_EBACKEND;
}
