/* AWS Signature Version 4 for the s3:// backend, on OpenSSL's SHA-256 and
 * HMAC. Pure functions (no I/O, no clock): the caller passes the date, so
 * they are checked against AWS's published test vectors. */
#ifndef REIGN_BACKENDS_S3_S3_SIGV4_H
#define REIGN_BACKENDS_S3_S3_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* SHA-256 of an empty payload, the x-amz-content-sha256 of a GET. */
#define REIGN_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct reign_s3_header {
    const char *name;  /* any case; signed lowercased */
    const char *value; /* trimmed, inner runs of blanks folded to one when signed */
} reign_s3_header;

typedef struct reign_s3_sign_input {
    const char *method;             /* "GET", "PUT" */
    const char *path;               /* as sent on the wire: already URI-encoded, starts with '/' */
    const char *query;              /* as sent, already encoded ("a=1&b=2"), NULL or "" if none */
    const reign_s3_header *headers; /* every header to sign: host and x-amz-date at least */
    size_t n_headers;
    const char *payload_sha256; /* lowercase hex of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;       /* "YYYYMMDDTHHMMSSZ", the x-amz-date value */
    const char *region;         /* "us-east-1" */
    const char *service;        /* "s3" */
    const char *access_key;
    const char *secret_key; /* used for the key derivation only; never copied anywhere */
} reign_s3_sign_input;

/* Lowercase hex SHA-256 of data into out (65 bytes with the NUL). */
void reign_s3_sha256_hex(const void *data, size_t len, char out[65]);

/* "YYYYMMDDTHHMMSSZ" of a UTC time (the x-amz-date format) into out[17].
 * False if the time cannot be represented. */
bool reign_s3_amz_date(time_t t, char out[17]);

/* Append the S3 URI encoding of s[0..len) to out (out_size bytes, NUL
 * terminated): every byte but A-Z a-z 0-9 - . _ ~ becomes %XX (uppercase),
 * and '/' too unless keep_slash. Returns the length written, or (size_t)-1
 * if out is too small. */
size_t reign_s3_uri_encode(const char *s, size_t len, bool keep_slash, char *out, size_t out_size);

/* The canonical request (step 1 of SigV4), malloc'd into *out, and the
 * semicolon-separated signed header list into *signed_out (may be NULL).
 * Returns 0, or -1 on bad input (a header without a name, no host, more
 * than 32 headers) or out of memory, with *out untouched. */
int reign_s3_canonical_request(const reign_s3_sign_input *in, char **out, char **signed_out);

/* The string to sign (step 2) for a canonical request, malloc'd. */
int reign_s3_string_to_sign(const reign_s3_sign_input *in, const char *canonical, char **out);

/* The whole Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 *  SignedHeaders=a;b, Signature=hex", malloc'd. 0 or -1 as above. */
int reign_s3_authorization(const reign_s3_sign_input *in, char **out);

#endif /* REIGN_BACKENDS_S3_S3_SIGV4_H */
