/* Option parsing and messages shared by the commands of `reign`: numbers,
 * the factory options (--uri, --ttl, --instance, --metadata) and opening
 * the factory with an error that names the URI. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("reign: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fputs("reign: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (command != NULL)
        fprintf(stderr, "\nTry 'reign %s --help'.\n", command);
    else
        fputs("\nTry 'reign --help'.\n", stderr);
    return CLI_EXIT_USAGE;
}

int cli_parse_int(const char *command, const char *flag, const char *text, int64_t min,
                  int64_t *out)
{
    char *end = NULL;
    long long v;

    /* strtoll accepts leading blanks and a sign; a flag value is digits only,
     * except a leading '-' that we refuse below with a message naming it. */
    if (text[0] == '\0' || (text[0] != '-' && (text[0] < '0' || text[0] > '9')))
        return cli_usage_error(command, "%s: '%s' is not a number", flag, text);
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return cli_usage_error(command, "%s: '%s' is not a number", flag, text);
    if (v < min)
        return cli_usage_error(command, "%s: %lld is below the minimum %lld", flag, v,
                               (long long)min);
    *out = v;
    return 0;
}

int cli_common_option(const char *command, int opt, const char *arg, cli_common *c)
{
    switch (opt) {
    case CLI_OPT_URI:
        /* The library would take "" as "the default": say so instead. */
        if (arg[0] == '\0')
            return cli_usage_error(command, "--uri: the URI is empty");
        c->uri = arg;
        return 1;
    case CLI_OPT_INSTANCE:
        if (arg[0] == '\0')
            return cli_usage_error(command, "--instance: the instance ID is empty");
        if (strlen(arg) > REIGN_INSTANCE_ID_MAX)
            return cli_usage_error(command, "--instance: %zu bytes, the maximum is %d",
                                   strlen(arg), REIGN_INSTANCE_ID_MAX);
        c->instance = arg;
        return 1;
    case CLI_OPT_METADATA:
        if (strlen(arg) > REIGN_METADATA_MAX)
            return cli_usage_error(command, "--metadata: %zu bytes, the maximum is %d",
                                   strlen(arg), REIGN_METADATA_MAX);
        c->metadata = arg;
        return 1;
    case CLI_OPT_TTL:
        if (cli_parse_duration(command, "--ttl", arg, 1, REIGN_TTL_MIN_MS, REIGN_TTL_MAX_MS,
                               &c->ttl_ms) != 0)
            return CLI_EXIT_USAGE;
        return 1;
    case CLI_OPT_RETRY_OPEN:
        /* --retry-open: forever; --retry-open=T: for T (0: not at all). */
        c->retry_open_set = true;
        c->retry_open_ms = -1;
        if (arg != NULL && strcmp(arg, "forever") != 0 && strcmp(arg, "-1") != 0 &&
            cli_parse_duration(command, "--retry-open", arg, 1, 0, REIGN_TTL_MAX_MS * 365,
                               &c->retry_open_ms) != 0)
            return CLI_EXIT_USAGE;
        return 1;
    default:
        return 0;
    }
}

void cli_getopt_reset(void)
{
    /* 0 (not 1) makes GNU getopt re-read its whole state, including the
     * '+' mode of the next optstring. Its own messages would be prefixed
     * with the command name alone, so cli_bad_option writes ours. */
    optind = 0;
    opterr = 0;
}

int cli_bad_option(const char *command, int opt, char *const argv[])
{
    /* getopt_long has moved optind past the faulty argument. */
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (opt == ':')
        return cli_usage_error(command, "option '%s' needs a value", arg);
    if (optopt != 0 && optopt < 256 && strncmp(arg, "--", 2) != 0)
        return cli_usage_error(command, "unknown option '-%c'", optopt);
    return cli_usage_error(command, "unknown option '%s'", arg);
}

const char *cli_default_uri(void)
{
    return reign_default_uri();
}

/* Written by the main thread before any other exists. */
static bool long_running;

void cli_set_long_running(bool on)
{
    long_running = on;
}

void cli_put_id(FILE *f, const char *id)
{
    size_t len = strlen(id);
    if (len <= 64) {
        cli_put_text(f, id);
        return;
    }
    char head[65];
    memcpy(head, id, 64);
    head[64] = '\0';
    cli_put_text(f, head);
    fprintf(f, "...(%zu bytes)", len);
}

/* Replace the password of "scheme://user:password@host…" and the value of a
 * "password=" query parameter by ***: messages must never show secrets. */
static char *redact_uri(const char *uri)
{
    size_t n = strlen(uri);
    /* Each "***" adds at most 3 bytes to what it hides, and each needs more
     * than 3 bytes of input ("a:@", "?password="): 2n + 4 is room enough. */
    char *out = malloc(2 * n + 4);
    const char *p = uri;
    char *o = out;
    const char *auth = strstr(uri, "://");

    if (out == NULL)
        return NULL;
    if (auth != NULL) {
        auth += 3;
        size_t auth_len = strcspn(auth, "/?#");
        const char *at = memrchr(auth, '@', auth_len);
        const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon != NULL) {
            memcpy(o, uri, (size_t)(colon + 1 - uri));
            o += colon + 1 - uri;
            memcpy(o, "***", 3);
            o += 3;
            p = at;
        }
    }
    /* Query parameters: copy, hiding the value of password=. */
    while (*p != '\0') {
        bool param_start = (*p == '?' || *p == '&');
        *o++ = *p++;
        if (param_start && strncmp(p, "password=", 9) == 0) {
            memcpy(o, "password=***", 12);
            o += 12;
            p += 9;
            p += strcspn(p, "&#");
        }
    }
    *o = '\0';
    return out;
}

char *cli_effective_uri(const char *uri)
{
    if (uri == NULL)
        uri = getenv("REIGN_URI");
    if (uri == NULL || uri[0] == '\0')
        uri = cli_default_uri();
    /* No "://": nothing to redact by place; any '@' may end a password. */
    if (strstr(uri, "://") == NULL && strchr(uri, '@') != NULL)
        return strdup("(redacted)");
    return redact_uri(uri);
}

/* The library's message names the URI already, most of the time: then
 * "cannot open: <message>", else "cannot open <uri>: <message>", so that
 * the URI is said once. */
static void print_open_error(const char *shown, int rc, const char *suffix)
{
    const char *why = reign_last_error()[0] != '\0' ? reign_last_error() : reign_status_str(rc);
    if (shown != NULL && strstr(why, shown) == NULL)
        cli_error("cannot open %s: %s%s", shown, why, suffix);
    else
        cli_error("cannot open the backend: %s%s", why, suffix);
}

/* A per-user default under /tmp gives no exclusion between users, nor
 * between a unit with PrivateTmp=yes and anything outside it: say so once
 * to a command that runs for long (a service, most likely). */
static void warn_tmp_default(const cli_common *c)
{
    const char *env = getenv("REIGN_URI");
    if (!long_running || c->uri != NULL || (env != NULL && env[0] != '\0'))
        return;
    const char *uri = reign_default_uri();
    if (strncmp(uri, "file:///tmp/", 12) != 0)
        return;
    cli_error("warning: using the default %s: it excludes only processes of uid %ld that see "
              "this /tmp (not other users, not units with PrivateTmp=yes); give --uri "
              "file:///DIR (or REIGN_URI) to share a directory",
              uri, (long)getuid());
}

/* Sleep ms, or less if a stop signal comes: its number, else 0. With the
 * stop signals blocked (lock, watch, shard) they are waited for here; not
 * blocked, their default action ends reign anyway. */
static int sleep_or_stop(int64_t ms)
{
    sigset_t stop, mask;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_SETMASK, NULL, &mask);
    bool blocked = sigismember(&mask, SIGINT) && sigismember(&mask, SIGTERM) &&
                   sigismember(&mask, SIGHUP);
    if (blocked) {
        int sig = cli_wait_stop_signal(&stop, ms);
        return sig > 0 ? sig : 0;
    }
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 2000
#define RETRY_REPORT_MS 60000 /* the reason again at most once a minute */

int cli_open_factory(const cli_common *c, reign_factory **out)
{
    reign_options o = REIGN_OPTIONS_INIT;
    int64_t retry_ms = c->retry_open_set ? c->retry_open_ms : (long_running ? -1 : 0);
    int64_t started = reign_monotonic_ms(), reported = -1, pause = RETRY_FIRST_MS;
    unsigned attempts = 0;
    char *shown = cli_effective_uri(c->uri);
    int rc;

    warn_tmp_default(c);
    o.instance_id = c->instance;
    o.metadata = c->metadata;
    o.ttl_ms = c->ttl_ms;
    for (;;) {
        attempts++;
        rc = reign_factory_open(c->uri, &o, out);
        if (rc == REIGN_OK) {
            if (reported >= 0)
                cli_error("opened %s after %u attempts (%.1f s)", shown != NULL ? shown : "",
                          attempts, (double)(reign_monotonic_ms() - started) / 1000.0);
            free(shown);
            return CLI_EXIT_OK;
        }
        /* Only an unreachable backend is worth waiting for: a bad URI,
         * option or permission stays bad. */
        int64_t now = reign_monotonic_ms();
        bool retryable = rc == REIGN_EBACKEND || rc == REIGN_ETIMEDOUT;
        if (!retryable || retry_ms == 0 || (retry_ms > 0 && now - started >= retry_ms)) {
            print_open_error(shown, rc, reported >= 0 ? " (gave up retrying)" : "");
            free(shown);
            /* A malformed URI or a value out of range is a usage error. */
            return rc == REIGN_EURI || rc == REIGN_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        }
        if (reported < 0 || now - reported >= RETRY_REPORT_MS) {
            char limit[48] = "until stopped";
            if (retry_ms > 0) {
                char d[32];
                cli_format_duration(retry_ms, d, sizeof d);
                snprintf(limit, sizeof limit, "for up to %s", d);
            }
            char suffix[96];
            snprintf(suffix, sizeof suffix, reported < 0 ? "; retrying %s" : "; still retrying %s",
                     limit);
            print_open_error(shown, rc, suffix);
            reported = now;
        }
        int64_t left = retry_ms > 0 ? started + retry_ms - now : pause;
        int sig = sleep_or_stop(pause < left ? pause : left);
        if (sig > 0) {
            free(shown);
            return CLI_EXIT_SIGNAL_BASE + sig;
        }
        pause = pause * 2 < RETRY_MAX_MS ? pause * 2 : RETRY_MAX_MS;
    }
}
