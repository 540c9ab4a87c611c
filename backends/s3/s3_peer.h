/* Peer mode of the s3:// backend: a waiting candidate asks the holder
 * "are you master of R, term T?" over HTTP(S) instead of reading S3 while
 * the holder answers yes. The answer is advisory: it only lets a candidate
 * skip a GET; it never moves the takeover clock (s3_observe.h) and never
 * makes anyone master (DESIGN.md §3, invariant 2).
 *
 *   s3_peer.c         pure parts: advertised URLs, request paths, answers
 *   s3_peer_server.c  the table of leases this process holds, the public
 *                     reign_s3_peer_answer and the optional server thread
 *
 * Wire form: GET <peer_url>/<name>, where name is the object key of the
 * resource without the prefix (reign_s3_key: only A-Z a-z 0-9 - _ . ~, so
 * it needs no URL encoding); the answer is 200 with
 *   {"resource":"<name>","master":true,"term":7,"instance":"web-3:4121:9f2c"}
 * or {"resource":"<name>","master":false}. */
#ifndef REIGN_BACKENDS_S3_S3_PEER_H
#define REIGN_BACKENDS_S3_S3_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reign/s3.h"

/* The path the built-in server answers under, and the default advertised
 * base URL's path. */
#define REIGN_S3_PEER_PATH "/reign/peer"
/* Longest advertised base URL written to or accepted from a record. */
#define REIGN_S3_PEER_URL_MAX 512
/* A candidate waits at most this long for a peer's answer (well below any
 * sensible retry interval), then reads S3. */
#define REIGN_S3_PEER_TIMEOUT_MS 250
/* Largest answer body a candidate reads. */
#define REIGN_S3_PEER_ANSWER_MAX 4096

/* Can url be asked as a peer's base URL? http:// or https://, a host, an
 * optional port and path, no user or password, no query or fragment, at
 * most REIGN_S3_PEER_URL_MAX bytes of printable ASCII. false with a cause
 * in why. Used on the holder's parameter and on what a record says. */
bool reign_s3_peer_url_ok(const char *url, char *why, size_t why_size);

/* The resource name of a request path: the part after the last '/' and
 * before any '?', made only of key bytes (A-Z a-z 0-9 - _ . ~), 1 to
 * out_size - 1 bytes. false if there is none. */
bool reign_s3_peer_name_of(const char *path, char *out, size_t out_size);

/* The JSON answer for name into out (NUL-terminated): master with term and
 * instance, or not master (term and instance ignored). Returns its length,
 * 0 if it does not fit or the instance is not UTF-8. */
size_t reign_s3_peer_encode(const char *name, bool master, uint64_t term, const char *instance,
                            char *out, size_t out_size);

typedef enum reign_s3_peer_verdict {
    REIGN_S3_PEER_CONFIRMED = 0, /* master of name, with the term and holder we saw last */
    REIGN_S3_PEER_DENIED,        /* says it is not master */
    REIGN_S3_PEER_OTHER,         /* master, but with another term or instance */
    REIGN_S3_PEER_GARBAGE,       /* not an answer of this protocol */
} reign_s3_peer_verdict;

/* Judge an answer body (any bytes) against the record a candidate saw
 * last: name, its holder and its term. why gets a one-line reason for the
 * debug log unless CONFIRMED. */
reign_s3_peer_verdict reign_s3_peer_judge(const char *body, size_t len, const char *name,
                                          const char *holder, uint64_t term, char *why,
                                          size_t why_size);

/* ---- s3_peer_server.c ---------------------------------------------------- */

typedef struct reign_s3_peer_server reign_s3_peer_server;

/* Register this factory's table of held leases (for reign_s3_peer_answer)
 * and, with listen_host set, serve it on listen_host:listen_port (0: a
 * free port) from a thread of its own. instance is this factory's ID (the
 * string lives until close). REIGN_OK, or a status with a cause in err
 * (address in use, not a numeric address…). */
int reign_s3_peer_server_open(const char *instance, const char *listen_host, int listen_port,
                              reign_s3_peer_server **out, char *err, size_t err_size);

/* The port the server listens on (0 without a server). */
int reign_s3_peer_server_port(const reign_s3_peer_server *srv);

/* This factory holds name with term; answer "master" until until_ms on
 * the monotonic clock (a renewal calls it again). Out of memory: the name
 * is then answered "not master", which only costs candidates a read. */
void reign_s3_peer_server_held(reign_s3_peer_server *srv, const char *name, uint64_t term,
                               int64_t until_ms);

/* This factory no longer holds name (released, lost). */
void reign_s3_peer_server_gone(reign_s3_peer_server *srv, const char *name);

/* Stop the thread, unregister, free. NULL-safe. */
void reign_s3_peer_server_close(reign_s3_peer_server *srv);

#endif /* REIGN_BACKENDS_S3_S3_PEER_H */
