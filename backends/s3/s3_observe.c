/* Observations of records per object key (a chained hash table) and the
 * clock-free expiry judgement built on them. */
#include "s3_observe.h"

#include <stdlib.h>
#include <string.h>

#include "reign/backend.h"

static int grow(reign_s3_obs_map *map)
{
    size_t n_slots = map->n_slots ? map->n_slots * 2 : 64;
    reign_s3_obs **slots = calloc(n_slots, sizeof *slots);
    if (slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i < map->n_slots; i++) {
        reign_s3_obs *o = map->slots[i];
        while (o != NULL) {
            reign_s3_obs *next = o->next;
            size_t k = o->hash & (n_slots - 1);
            o->next = slots[k];
            slots[k] = o;
            o = next;
        }
    }
    free(map->slots);
    map->slots = slots;
    map->n_slots = n_slots;
    return 0;
}

reign_s3_obs *reign_s3_obs_find(reign_s3_obs_map *map, const char *key, bool create, int64_t now_ms)
{
    uint64_t h = reign_hash(key, strlen(key));
    if (map->n_slots > 0) {
        for (reign_s3_obs *o = map->slots[h & (map->n_slots - 1)]; o != NULL; o = o->next) {
            if (o->hash == h && strcmp(o->key, key) == 0) {
                o->last_used_ms = now_ms;
                return o;
            }
        }
    }
    if (!create) {
        return NULL;
    }
    if ((map->n + 1) * 4 > map->n_slots * 3 && grow(map) != 0) {
        return NULL;
    }
    reign_s3_obs *o = calloc(1, sizeof *o);
    if (o == NULL) {
        return NULL;
    }
    o->key = strdup(key);
    if (o->key == NULL) {
        free(o);
        return NULL;
    }
    o->hash = h;
    o->last_used_ms = now_ms;
    o->batch_last = (size_t)-1;
    size_t k = h & (map->n_slots - 1);
    o->next = map->slots[k];
    map->slots[k] = o;
    map->n++;
    return o;
}

void reign_s3_obs_note_record(reign_s3_obs *o, const char *etag, reign_s3_record *rec,
                              int64_t now_ms)
{
    if (o->seen != REIGN_S3_SEEN_RECORD || strcmp(o->etag, etag) != 0) {
        /* a new version: its TTL starts counting now, by our clock */
        o->first_seen_ms = now_ms;
        size_t n = strlen(etag);
        if (n > REIGN_S3_ETAG_MAX) {
            n = REIGN_S3_ETAG_MAX; /* callers refuse longer ones; never overflow */
        }
        memcpy(o->etag, etag, n);
        o->etag[n] = '\0';
    }
    o->seen = REIGN_S3_SEEN_RECORD;
    o->looked_ms = now_ms;
    reign_s3_record_clear(&o->rec);
    o->rec = *rec;
    memset(rec, 0, sizeof *rec);
    o->last_used_ms = now_ms;
}

void reign_s3_obs_note_absent(reign_s3_obs *o, int64_t now_ms)
{
    reign_s3_record_clear(&o->rec);
    o->seen = REIGN_S3_SEEN_ABSENT;
    o->etag[0] = '\0';
    o->first_seen_ms = now_ms;
    o->looked_ms = now_ms;
    o->last_used_ms = now_ms;
}

void reign_s3_obs_forget(reign_s3_obs *o)
{
    reign_s3_record_clear(&o->rec);
    o->seen = REIGN_S3_SEEN_NOTHING;
    o->etag[0] = '\0';
}

int64_t reign_s3_expiry_ms(int64_t ttl_ms)
{
    if (ttl_ms <= 0) {
        return 0;
    }
    return ttl_ms + ttl_ms / 50 + 1;
}

reign_s3_lease reign_s3_obs_judge(const reign_s3_obs *o, int64_t now_ms, int64_t *remaining_ms)
{
    switch (o->seen) {
    case REIGN_S3_SEEN_NOTHING: return REIGN_S3_LEASE_UNKNOWN;
    case REIGN_S3_SEEN_ABSENT: return REIGN_S3_LEASE_ABSENT;
    case REIGN_S3_SEEN_RECORD: break;
    }
    if (o->rec.released) {
        return REIGN_S3_LEASE_RELEASED;
    }
    int64_t left = reign_s3_expiry_ms(o->rec.ttl_ms) - (now_ms - o->first_seen_ms);
    if (left <= 0) {
        return REIGN_S3_LEASE_EXPIRED;
    }
    if (remaining_ms != NULL) {
        *remaining_ms = left;
    }
    return REIGN_S3_LEASE_LIVE;
}

size_t reign_s3_obs_sweep(reign_s3_obs_map *map, int64_t idle_before_ms)
{
    size_t dropped = 0;
    for (size_t i = 0; i < map->n_slots; i++) {
        reign_s3_obs **link = &map->slots[i];
        while (*link != NULL) {
            reign_s3_obs *o = *link;
            if (o->last_used_ms < idle_before_ms) {
                *link = o->next;
                reign_s3_record_clear(&o->rec);
                free(o->key);
                free(o);
                map->n--;
                dropped++;
            } else {
                link = &o->next;
            }
        }
    }
    return dropped;
}

void reign_s3_obs_map_free(reign_s3_obs_map *map)
{
    for (size_t i = 0; i < map->n_slots; i++) {
        reign_s3_obs *o = map->slots[i];
        while (o != NULL) {
            reign_s3_obs *next = o->next;
            reign_s3_record_clear(&o->rec);
            free(o->key);
            free(o);
            o = next;
        }
    }
    free(map->slots);
    memset(map, 0, sizeof *map);
}
