/* The s3:// backend's configuration: the URI
 *   s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=0|1&poll=D|expiry
 *                         &peer=0|1&peer_listen=HOST:PORT&peer_url=URL&peer_ca=FILE
 *                         &peer_check=D]
 * and the standard AWS_* environment variables → where requests go and how
 * they are signed. The environment is read through a function so tests can
 * pass their own. */
#ifndef REIGN_BACKENDS_S3_S3_CONFIG_H
#define REIGN_BACKENDS_S3_S3_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "reign/backend.h"

/* Longest PREFIX accepted: keys keep room for escaped resource IDs. */
#define REIGN_S3_PREFIX_MAX 512

typedef struct reign_s3_config {
    char *bucket;
    char *prefix;      /* "" or "a/b/" (decoded, ends with '/') */
    char *region;      /* "us-east-1" */
    char *endpoint;    /* "https://s3.us-east-1.amazonaws.com", for messages (no secrets) */
    bool path_style;   /* https://host/BUCKET/key rather than https://BUCKET.host/key */
    bool https;
    char *host_header; /* Host: as sent and signed, e.g. "127.0.0.1:7480" */
    char *url_base;    /* "http://127.0.0.1:7480" — the path follows */
    char *path_base;   /* "/BUCKET/" + encoded prefix, or "/" + encoded prefix */
    char *access_key;
    char *secret_key;    /* zeroed before it is freed */
    char *session_token; /* NULL if none; zeroed before it is freed */
    char *ca_bundle;     /* AWS_CA_BUNDLE, NULL if unset */
    /* poll=: how often a candidate looks at a lease another instance holds.
     * 0 (default): at every ACQUIRE the core sends (its retry interval);
     * N ms: at most once per N ms; REIGN_S3_POLL_EXPIRY (poll=expiry): only
     * when the lease could have expired by our judgement. Between looks the
     * answer is HELD from what was seen last; a release is noticed late. */
    int64_t poll_ms;
    /* Peer mode (docs/backends/s3.md, "Peer mode"). peer_ask: a waiting
     * candidate asks the holder's advertised endpoint before reading S3
     * (peer=1; on by default when this instance serves one). */
    bool peer_ask;
    char *peer_listen_host; /* peer_listen=HOST:PORT: numeric host to serve on, NULL: none */
    int peer_listen_port;   /* its port, 0 = a free one */
    char *peer_url;         /* peer_url=: the base URL advertised, no trailing '/'; NULL:
                               made from peer_listen's bound address */
    char *peer_ca;          /* peer_ca=: CA file for https peers, NULL: the system's */
    int64_t peer_check_ms;  /* peer_check=: read S3 at least this often while a peer answers */
} reign_s3_config;

/* Default of peer_check=: 2 S3 reads a minute while the holder answers. */
#define REIGN_S3_PEER_CHECK_MS 30000

#define REIGN_S3_POLL_EXPIRY (-1)

/* An environment lookup: the value of name, or NULL. */
typedef const char *(*reign_s3_env_fn)(const char *name, void *ctx);

/* Build the configuration. REIGN_OK, or REIGN_EURI (bad URI part: no
 * bucket, user:password in the URI, bad endpoint, path_style not 0/1, a
 * prefix with dot segments…), REIGN_EAUTH (no credentials), REIGN_ENOMEM,
 * with a one-line cause naming what was wrong (never a secret) in err.
 * Marks the URI parameters it read as used. *out is zeroed on failure. */
int reign_s3_config_load(const reign_backend_config *cfg, reign_s3_env_fn env, void *env_ctx,
                         reign_s3_config *out, char *err, size_t err_size);

/* Free (zeroing the secrets). NULL-safe, idempotent. */
void reign_s3_config_free(reign_s3_config *c);

#endif /* REIGN_BACKENDS_S3_S3_CONFIG_H */
