/* Peer mode of the s3:// backend, for applications that serve its endpoint
 * from their own HTTP server (docs/backends/s3.md, "Peer mode").
 *
 * A holder opened with `peer_url=URL` (and no `peer_listen=`) advertises
 * URL in its lease records; waiting candidates opened with `peer=1` then
 * send `GET URL/NAME` and skip their S3 read while the answer says "master
 * of NAME, with the term and holder of the record". Mount a route for
 * `URL/...` in your server and answer it with reign_s3_peer_answer.
 * The answer is advisory: it never makes anyone master and never shortens
 * a candidate's wait; a wrong answer only makes candidates read S3 more
 * often or later.
 *
 * This function exists only when reign was built with REIGN_WITH_S3.
 */
#ifndef REIGN_S3_H
#define REIGN_S3_H

#include <stddef.h>

#include "reign/reign.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A body buffer of this size always holds an answer. */
#define REIGN_S3_PEER_BODY_MAX 4096

/* Answer a peer-mode request for `path` (the request's path, e.g.
 * "/reign/peer/jobs~2F7"; the resource is the part after its last '/',
 * any "?query" is ignored) from the leases that the s3:// factories open
 * in this process hold. Writes a NUL-terminated JSON body to `body`
 * (body_size bytes, REIGN_S3_PEER_BODY_MAX is always enough) and returns
 * the HTTP status to send with it, Content-Type application/json:
 *   200 {"resource":"jobs~2F7","master":true,"term":7,"instance":"web-3:4121:9f2c"}
 *   200 {"resource":"jobs~2F7","master":false}     (not held here, or not now)
 *   400 {"error":"..."}                            (no resource name in path)
 *   500 {"error":"..."}                            (body_size too small)
 * The answer holds no secret. Thread-safe; never blocks for long (one
 * mutex, no I/O). */
REIGN_EXTERN int reign_s3_peer_answer(const char *path, char *body, size_t body_size);

#ifdef __cplusplus
}
#endif
#endif /* REIGN_S3_H */
