/* What the S3 tests against a real server (test_s3_server.c,
 * test_s3_peer.c) share: time, the environment, a checked call, and the
 * skip when the server or the backend is not there. Include after
 * <cmocka.h>. */
#ifndef REIGN_TESTS_S3_TEST_H
#define REIGN_TESTS_S3_TEST_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reign/reign.h"

static inline int64_t now_ms(void)
{
    return reign_monotonic_ms();
}

static inline void pause_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* $name as a positive number, else dflt. */
static inline int64_t env_num(const char *name, int64_t dflt)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        return dflt;
    }
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    return end != v && *end == '\0' && n > 0 ? n : dflt;
}

#define CHECK_OK(call, what)                                                                     \
    do {                                                                                         \
        int rc_ = (call);                                                                        \
        if (rc_ != REIGN_OK) {                                                                   \
            print_error("%s: %s (%s)\n", what, reign_status_str(rc_), reign_last_error());       \
            fail();                                                                              \
        }                                                                                        \
    } while (0)

/* 77 (ctest's skip) with a line saying why when reign was built without
 * S3 (argv[1] "--not-built") or REIGN_TEST_S3_URI is unset; else 0. */
static inline int s3_test_skip(int argc, char **argv, const char *suite, const char *test)
{
    const char *uri = getenv("REIGN_TEST_S3_URI");
    if (argc == 2 && strcmp(argv[1], "--not-built") == 0) {
        printf("SKIPPED s3 %s tests: reign was built without REIGN_WITH_S3\n", suite);
        return 77;
    }
    if (uri == NULL || uri[0] == '\0') {
        printf("SKIPPED s3 %s tests: REIGN_TEST_S3_URI is not set; run e.g.\n"
               "  eval \"$(scripts/servers/s3.sh start /tmp/s3)\" && ctest -R %s\n",
               suite, test);
        return 77;
    }
    return 0;
}

#endif
