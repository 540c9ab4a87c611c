/* Durations on the command line: "500ms", "5s", "2m", "1h", or a bare number
 * in the option's own unit (milliseconds for every --option, seconds for
 * flock's -w). Decimals are taken ("1.5s", "-w 0.5") as flock takes them.
 * One parser for every time option, so that each says its real range. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* "1.5 s" style text for a limit in messages: the largest unit that
 * divides it, so that "minimum 20 ms" and "maximum 24 h" read naturally. */
void cli_format_duration(int64_t ms, char *buf, size_t size)
{
    static const struct { int64_t ms; const char *name; } units[] = {
        {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, size, "%lld%s", (long long)(ms / units[i].ms), units[i].name);
            return;
        }
    if (ms == 0)
        snprintf(buf, size, "0");
    else
        snprintf(buf, size, "%lldms", (long long)ms);
}

/* 0 and *out in ms, or -1 when the text is no duration. */
static int parse(const char *text, int64_t bare_unit_ms, int64_t *out)
{
    const char *p = text;
    /* strtod would take blanks, hex, "inf" and exponents: digits only. */
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return -1;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    size_t number_len = (size_t)(p - text);
    char number[64];
    if (number_len >= sizeof number)
        return -1;
    memcpy(number, text, number_len);
    number[number_len] = '\0';

    int64_t unit;
    if (*p == '\0')
        unit = bare_unit_ms;
    else if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0)
        unit = 60000;
    else if (strcmp(p, "h") == 0)
        unit = 3600000;
    else
        return -1;
    errno = 0;
    double v = strtod(number, NULL) * (double)unit;
    /* A year is far above every limit; beyond it, int64 arithmetic on the
     * result could overflow in callers. */
    if (errno != 0 || !(v <= 365.0 * 24 * 3600000))
        v = 365.0 * 24 * 3600000 + 1;
    *out = (int64_t)(v + 0.5); /* to the nearest ms */
    return 0;
}

int cli_parse_duration(const char *command, const char *flag, const char *text,
                       int64_t bare_unit_ms, int64_t min_ms, int64_t max_ms, int64_t *out)
{
    char lo[32], hi[32];
    int64_t v;

    cli_format_duration(min_ms, lo, sizeof lo);
    cli_format_duration(max_ms, hi, sizeof hi);
    if (parse(text, bare_unit_ms, &v) != 0)
        return cli_usage_error(command,
                               "%s: '%.40s%s' is not a duration (e.g. %s500ms, 5s, 2m; "
                               "range %s..%s)",
                               flag, text, strlen(text) > 40 ? "..." : "",
                               bare_unit_ms == 1 ? "500 = 500ms, " : "0.5 = 0.5s, ", lo, hi);
    if (v < min_ms || v > max_ms)
        return cli_usage_error(command, "%s: %s is outside %s..%s", flag, text, lo, hi);
    *out = v;
    return 0;
}
