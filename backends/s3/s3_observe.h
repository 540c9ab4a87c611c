/* What this factory has seen of each record, and the expiry judgement made
 * from it without trusting any clock but our own (DESIGN.md §3 invariant 2):
 * a lease is dead only when the same ETag has been seen unchanged for the
 * holder's TTL plus a margin of OUR monotonic time since we first saw it.
 * Pure: times are passed in, so tests use a fake clock. */
#ifndef REIGN_BACKENDS_S3_S3_OBSERVE_H
#define REIGN_BACKENDS_S3_S3_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3_record.h"

/* ETags longer than this are refused as not S3's (an MD5 is 32 hex digits;
 * multipart ETags add "-N"). */
#define REIGN_S3_ETAG_MAX 80

typedef enum reign_s3_seen {
    REIGN_S3_SEEN_NOTHING = 0, /* nothing known (new, or forgotten after a doubt) */
    REIGN_S3_SEEN_ABSENT,      /* the last look found no object */
    REIGN_S3_SEEN_RECORD,      /* the last look found etag/rec */
} reign_s3_seen;

typedef struct reign_s3_obs {
    struct reign_s3_obs *next; /* hash chain */
    uint64_t hash;
    char *key; /* the object key */
    reign_s3_seen seen;
    char etag[REIGN_S3_ETAG_MAX + 1]; /* unquoted, as sent in If-Match */
    int64_t first_seen_ms;            /* our monotonic ms when this ETag was first seen */
    int64_t looked_ms;                /* our monotonic ms of the last look (any answer) */
    reign_s3_record rec;              /* the record with that ETag */
    int64_t last_used_ms;             /* for the sweep */
    /* Peer mode: do not ask the holder's endpoint before this time (set
     * after an ask that did not confirm: read S3 meanwhile). */
    int64_t peer_off_until_ms;
    /* Batch bookkeeping (execute): the last op of batch batch_gen on this
     * key, so that a RELEASE and the ACQUIRE after it run in order. */
    uint64_t batch_gen;
    size_t batch_last;
} reign_s3_obs;

typedef struct reign_s3_obs_map {
    reign_s3_obs **slots;
    size_t n_slots;
    size_t n;
} reign_s3_obs_map;

/* The entry of key, created (seen NOTHING) if absent and create is set.
 * NULL if absent and not created, or out of memory. */
reign_s3_obs *reign_s3_obs_find(reign_s3_obs_map *map, const char *key, bool create, int64_t now_ms);

/* A look found the record rec with etag at now_ms. The first-seen time
 * restarts only when the ETag differs from the last one seen. Takes over
 * rec's strings (rec is zeroed). */
void reign_s3_obs_note_record(reign_s3_obs *o, const char *etag, reign_s3_record *rec,
                              int64_t now_ms);

/* A look found no object. */
void reign_s3_obs_note_absent(reign_s3_obs *o, int64_t now_ms);

/* Forget what was seen (after an answer we could not read). */
void reign_s3_obs_forget(reign_s3_obs *o);

/* The time an observer waits, with one ETag unchanged, before it judges
 * a lease of ttl_ms dead: ttl_ms plus 2 % for the rate difference of two
 * monotonic clocks (on top of the holder's own drift allowance and margin,
 * which end its belief before ttl_ms). */
int64_t reign_s3_expiry_ms(int64_t ttl_ms);

typedef enum reign_s3_lease {
    REIGN_S3_LEASE_UNKNOWN = 0, /* nothing seen: look first */
    REIGN_S3_LEASE_ABSENT,      /* no record: create one (If-None-Match: *) */
    REIGN_S3_LEASE_RELEASED,    /* released by its holder: free now */
    REIGN_S3_LEASE_EXPIRED,     /* unchanged for its TTL (+ margin) of our time */
    REIGN_S3_LEASE_LIVE,        /* held; *remaining_ms until we would call it dead */
} reign_s3_lease;

/* Judge the last look at now_ms. For LIVE, *remaining_ms (may be NULL) is
 * the time left before the judgement would become EXPIRED (>= 1). */
reign_s3_lease reign_s3_obs_judge(const reign_s3_obs *o, int64_t now_ms, int64_t *remaining_ms);

/* Drop entries not used since idle_before_ms; returns how many. Dropping
 * only loses first-seen times: an observer then waits a full TTL again. */
size_t reign_s3_obs_sweep(reign_s3_obs_map *map, int64_t idle_before_ms);

/* Free every entry and the table. */
void reign_s3_obs_map_free(reign_s3_obs_map *map);

#endif /* REIGN_BACKENDS_S3_S3_OBSERVE_H */
