/* A misbehaving server for tests: listens on 127.0.0.1 (a free port) and
 * either forwards every connection to a real server or, switched at any
 * time from the test, stalls, answers garbage, cuts answers short or
 * trickles them byte by byte. One thread per connection; test code only. */
#ifndef REIGN_TESTS_MISBEHAVE_MISBEHAVE_H
#define REIGN_TESTS_MISBEHAVE_MISBEHAVE_H

#include <stddef.h>
#include <stdint.h>

typedef enum misbehave_mode {
    MISBEHAVE_FORWARD = 0, /* a faithful proxy to the upstream */
    MISBEHAVE_STALL,       /* read requests, never answer (a hung server) */
    MISBEHAVE_GARBAGE,     /* answer every request with bytes of no protocol */
    MISBEHAVE_CUT,         /* answer with the first half of a reply, then close */
    MISBEHAVE_SLOW,        /* forward, but upstream bytes one per slow_ms */
    MISBEHAVE_ECHO_AUTH,   /* a Redis that refuses AUTH quoting the password back */
    MISBEHAVE_CUT_FORWARD, /* forward requests; send half of the next answer, then close
                              (over TLS: a record cut in the middle) */
} misbehave_mode;

typedef struct misbehave misbehave;

/* Start on 127.0.0.1:<free port>. upstream_port 0: no upstream (FORWARD
 * and SLOW then close each connection). NULL on failure (errno). */
misbehave *misbehave_start(int upstream_port, misbehave_mode mode);
int misbehave_port(const misbehave *m);
/* Switch mode; open connections follow at their next read. */
void misbehave_set(misbehave *m, misbehave_mode mode);
void misbehave_set_slow_ms(misbehave *m, int slow_ms);
/* Connections accepted so far. */
uint64_t misbehave_accepted(const misbehave *m);
/* Close everything and join the threads. */
void misbehave_stop(misbehave *m);

/* A throw-away real server from scripts/servers/<name>.sh (redis, etcd)
 * in a new temporary directory (written to dir, 64 bytes), started with
 * `env` (e.g. "REDIS_PASSWORD=x", or "") before the command: its port, or
 * 0 when it cannot run (why: a reason for the skip message). Needs
 * $REIGN_SOURCE_DIR. */
int misbehave_server_start(const char *name, const char *env, char dir[64], char *why,
                           size_t why_size);
/* Stop it (the script stops only the PIDs it recorded) and remove dir. */
void misbehave_server_stop(const char *name, const char *dir);

/* The port of a redis:// or "host:port" URI ("redis://h:6380/0" → 6380),
 * 0 if none. */
int misbehave_uri_port(const char *uri);

#endif /* REIGN_TESTS_MISBEHAVE_MISBEHAVE_H */
