/* Helpers shared by the chaos worker, driver and checker: the clock, field
 * splitting and number parsing of log lines, and a reader of growing files. */
#include "chaos.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t chaos_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * CHAOS_NS_PER_S + ts.tv_nsec;
}

void chaos_sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / CHAOS_NS_PER_S, .tv_nsec = ns % CHAOS_NS_PER_S};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

size_t chaos_split(char *line, char **fields)
{
    size_t n = 0;
    char *p = line;
    while (n < CHAOS_MAX_FIELDS) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        fields[n++] = p;
        if (n == CHAOS_MAX_FIELDS)
            break; /* the last field keeps the rest */
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        if (*p == '\0')
            break;
        *p++ = '\0';
    }
    return n;
}

int chaos_parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int chaos_parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    if (*s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int chaos_tail_open(chaos_tail *t, const char *path)
{
    memset(t, 0, sizeof *t);
    t->fp = fopen(path, "r");
    return t->fp != NULL ? 0 : -1;
}

void chaos_tail_close(chaos_tail *t)
{
    if (t->fp != NULL)
        fclose(t->fp);
    t->fp = NULL;
}

char *chaos_tail_next(chaos_tail *t)
{
    if (t->fp == NULL)
        return NULL;
    for (;;) {
        int c = getc(t->fp);
        if (c == EOF) {
            clearerr(t->fp); /* the writer may append more later */
            return NULL;
        }
        if (c == '\n') {
            int dropped = t->overlong;
            t->buf[t->len] = '\0';
            t->len = 0;
            t->overlong = 0;
            if (!dropped)
                return t->buf;
            continue;
        }
        if (t->len + 1 < sizeof t->buf)
            t->buf[t->len++] = (char)c;
        else
            t->overlong = 1;
    }
}
