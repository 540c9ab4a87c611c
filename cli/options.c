/* Option parsing and messages shared by the commands of `reign`: numbers,
 * the factory options (--uri, --ttl, --instance, --metadata) and opening
 * the factory with an error that names the URI. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        c->instance = arg;
        return 1;
    case CLI_OPT_METADATA:
        c->metadata = arg;
        return 1;
    case CLI_OPT_TTL:
        if (cli_parse_int(command, "--ttl", arg, 1, &c->ttl_ms) != 0)
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
    static char buf[64];
    snprintf(buf, sizeof buf, "file:///tmp/reign-%ld", (long)getuid());
    return buf;
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
    return redact_uri(uri);
}

int cli_open_factory(const cli_common *c, reign_factory **out)
{
    reign_options o = REIGN_OPTIONS_INIT;
    char *shown = NULL;
    int rc;

    o.instance_id = c->instance;
    o.metadata = c->metadata;
    o.ttl_ms = c->ttl_ms;
    rc = reign_factory_open(c->uri, &o, out);
    if (rc == REIGN_OK)
        return CLI_EXIT_OK;
    shown = cli_effective_uri(c->uri);
    cli_error("cannot open %s: %s", shown != NULL ? shown : "the backend",
              reign_last_error()[0] != '\0' ? reign_last_error() : reign_status_str(rc));
    free(shown);
    return CLI_EXIT_FAIL;
}
