/* The shard's resource-keyed table: chained hashing on reign_balance_hash with a
 * power-of-two bucket count that doubles at load 1, so add, remove and
 * look-up are O(1) on average and no operation walks every resource.
 * Callers hold s->index_lock (write lock to change it). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "shard_internal.h"

#define INDEX_MIN_BUCKETS 64

static size_t bucket_of(const reign_shard *s, uint64_t hash)
{
    return (size_t)(hash & (uint64_t)(s->n_buckets - 1));
}

shard_item *reign_shard_index_find(const reign_shard *s, const char *id)
{
    if (s->n_buckets == 0)
        return NULL;
    uint64_t h = reign_balance_hash(id);
    for (shard_item *it = s->buckets[bucket_of(s, h)]; it != NULL; it = it->next)
        if (it->hash == h && strcmp(it->id, id) == 0)
            return it;
    return NULL;
}

static int grow(reign_shard *s)
{
    size_t n = s->n_buckets ? 2 * s->n_buckets : INDEX_MIN_BUCKETS;
    shard_item **b = calloc(n, sizeof *b);
    if (b == NULL)
        return reign_error_set(REIGN_ENOMEM, "shard: out of memory for %zu index buckets", n);
    for (size_t i = 0; i < s->n_buckets; i++) {
        shard_item *it = s->buckets[i];
        while (it != NULL) {
            shard_item *next = it->next;
            size_t k = (size_t)(it->hash & (uint64_t)(n - 1));
            it->next = b[k];
            b[k] = it;
            it = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->n_buckets = n;
    return REIGN_OK;
}

int reign_shard_index_insert(reign_shard *s, shard_item *it)
{
    if (s->n_items + 1 > s->n_buckets) {
        int rc = grow(s);
        if (rc != REIGN_OK)
            return rc;
    }
    size_t k = bucket_of(s, it->hash);
    it->next = s->buckets[k];
    s->buckets[k] = it;
    s->n_items++;
    s->set_generation++;
    return REIGN_OK;
}

void reign_shard_index_remove(reign_shard *s, shard_item *it)
{
    for (shard_item **p = &s->buckets[bucket_of(s, it->hash)]; *p != NULL; p = &(*p)->next) {
        if (*p == it) {
            *p = it->next;
            it->next = NULL;
            s->n_items--;
            s->set_generation++;
            return;
        }
    }
}

void reign_shard_index_each(const reign_shard *s, bool (*fn)(shard_item *it, void *ctx), void *ctx)
{
    for (size_t i = 0; i < s->n_buckets; i++) {
        for (shard_item *it = s->buckets[i]; it != NULL;) {
            shard_item *next = it->next; /* fn may not remove, but be safe with reads */
            if (!fn(it, ctx))
                return;
            it = next;
        }
    }
}
