/* The s3:// backend's configuration: the URI
 *   s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=0|1&poll=D|expiry]
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
} reign_s3_config;

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
