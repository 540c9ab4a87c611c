/* The s3:// backend's lease record (one JSON object per resource, written
 * with jansson) and the object key of a resource ID. Pure functions. */
#ifndef REIGN_BACKENDS_S3_S3_RECORD_H
#define REIGN_BACKENDS_S3_S3_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Records name this version; a newer one is refused, not misread. */
#define REIGN_S3_RECORD_VERSION 1

/* Longest S3 object key (AWS and RGW: 1024 bytes). */
#define REIGN_S3_KEY_MAX 1024

/* Nonce: 32 lowercase hex digits, new on every write. */
#define REIGN_S3_NONCE_LEN 32

typedef struct reign_s3_record {
    char *holder;   /* instance ID, never empty (malloc'd) */
    char *metadata; /* holder's metadata, "" if none (malloc'd) */
    uint64_t term;  /* >= 1 */
    int64_t ttl_ms; /* the holder's TTL: observers time its expiry with it */
    bool released;  /* ended by its holder: free at once, term kept */
    uint64_t seq;   /* the writer's write counter (for people reading it) */
    /* The write token: differs on every write, so every write changes the
     * bytes and thus the ETag, and a writer finds its own write after an
     * answer it did not get. */
    char nonce[REIGN_S3_NONCE_LEN + 1];
    /* Peer mode: the URL where the holder answers "master of R, term T"
     * (GET <peer>/<name>), or NULL. Advisory only: it never decides a
     * takeover. Written only by holders opened with peer_listen= or
     * peer_url=; older readers ignore the field. (malloc'd) */
    char *peer;
} reign_s3_record;

/* JSON of a record, malloc'd and NUL-terminated, length in *len_out:
 * {"v":1,"holder":…,"term":…,"meta":…,"ttl_ms":…,"released":…,"seq":…,"nonce":…}
 * and "peer":… when rec->peer is set and not empty
 * NULL if holder or metadata is not valid UTF-8 (jansson refuses those),
 * on a term above INT64_MAX, or out of memory. */
char *reign_s3_record_encode(const reign_s3_record *rec, size_t *len_out);

/* Parse a record body (any bytes, no NUL needed). REIGN_OK with *out
 * filled (free with reign_s3_record_clear); REIGN_EPROTO with a one-line
 * cause ("not JSON: …", "'term' is not an integer >= 1", "record version 2
 * is newer than this reign") — *out is then zeroed; REIGN_ENOMEM. */
int reign_s3_record_parse(const char *body, size_t len, reign_s3_record *out, char *cause,
                          size_t cause_size);

/* Free the strings; the record becomes zeroed. NULL is a no-op. */
void reign_s3_record_clear(reign_s3_record *rec);

/* A deep copy into *out (REIGN_OK or REIGN_ENOMEM, *out zeroed then). */
int reign_s3_record_copy(const reign_s3_record *rec, reign_s3_record *out);

/* The object key of a resource ID: prefix (e.g. "leases/", may be "")
 * followed by the ID with every byte outside A-Z a-z 0-9 - _ . written as
 * ~XX (uppercase hex), and a leading '.' too, so keys need no escaping in a
 * URL, never hold '/' or a dot segment, and two IDs never share a key. When
 * that would pass REIGN_S3_KEY_MAX, the key is prefix + "~~" + SHA-256 of
 * the ID in hex ("~~" never occurs in the escaped form). Returns the key
 * length, or 0 if out (out_size bytes) is too small or the prefix alone
 * leaves no room. */
size_t reign_s3_key(const char *prefix, const char *resource, size_t resource_len, char *out,
                    size_t out_size);

#endif /* REIGN_BACKENDS_S3_S3_RECORD_H */
