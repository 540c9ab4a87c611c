/* S3 responses → what they mean for a lease op: the error document
 * (<Error><Code>…</Code><Message>…</Message></Error>) and the HTTP status
 * mapped to a named reign status. Pure functions, fuzzed and unit-tested
 * without a server. */
#ifndef REIGN_BACKENDS_S3_S3_XML_H
#define REIGN_BACKENDS_S3_S3_XML_H

#include <stdbool.h>
#include <stddef.h>

typedef struct reign_s3_error {
    char code[64];     /* "NoSuchKey"; letters, digits and '.' only */
    char message[256]; /* printable ASCII (others shown as '?'), may be "" */
} reign_s3_error;

/* Parse an S3 error document. True (and *out filled) when the body is one:
 * optional XML declaration, then <Error> holding a well-formed <Code>.
 * Anything else — HTML, JSON, truncated XML — is false. Never reads past
 * len; the body needs no NUL. */
bool reign_s3_error_parse(const char *body, size_t len, reign_s3_error *out);

/* What a response means for the op that sent it. */
typedef enum reign_s3_outcome {
    REIGN_S3_OUT_OK = 1,       /* 2xx */
    REIGN_S3_OUT_ABSENT,       /* 404 NoSuchKey (or 404 with no body): no record */
    REIGN_S3_OUT_CONFLICT,     /* 412, 409: a conditional write lost the race */
    REIGN_S3_OUT_UNKNOWN,      /* 5xx, SlowDown: failed or not, nobody knows; retryable */
    REIGN_S3_OUT_FAILED,       /* a definite failure, *status says which */
} reign_s3_outcome;

/* Classify an HTTP response. For UNKNOWN and FAILED, *status is the reign
 * status (REIGN_EAUTH for AccessDenied, InvalidAccessKeyId,
 * SignatureDoesNotMatch and kin; REIGN_EBACKEND for NoSuchBucket, 5xx,
 * SlowDown, redirects and other S3 errors; REIGN_EPROTO for a response
 * that is not S3's) and cause gets a one-line reason without secrets, e.g.
 * "HTTP 403 AccessDenied: Access Denied". cause_size >= 64. */
reign_s3_outcome reign_s3_classify(long http_status, const char *body, size_t len, int *status,
                                   char *cause, size_t cause_size);

#endif /* REIGN_BACKENDS_S3_S3_XML_H */
