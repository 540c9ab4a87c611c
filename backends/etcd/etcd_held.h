/* The resources the etcd:// backend last saw held by another instance, kept
 * true by the watch's DELETE events. It only chooses how an ACQUIRE is
 * asked — a read-only range (etcd answers without a raft write) for a key
 * believed held, a write txn for the rest — never its answer: every result
 * still comes from etcd. A set of byte strings with linear probing. */
#ifndef REIGN_BACKENDS_ETCD_ETCD_HELD_H
#define REIGN_BACKENDS_ETCD_ETCD_HELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct etcd_held_slot {
    char *res;  /* NULL: empty */
    size_t len;
    uint64_t hash;
} etcd_held_slot;

typedef struct etcd_held {
    etcd_held_slot *slots;
    size_t cap;  /* a power of two, or 0 */
    size_t n;
} etcd_held;

bool reign_etcd_held_contains(const etcd_held *set, const char *res, size_t len);

/* Add a copy; false if out of memory (the set then stays as it was). */
bool reign_etcd_held_add(etcd_held *set, const char *res, size_t len);

void reign_etcd_held_remove(etcd_held *set, const char *res, size_t len);

/* Forget everything (keeps the allocation). */
void reign_etcd_held_clear(etcd_held *set);

void reign_etcd_held_free(etcd_held *set);

#endif /* REIGN_BACKENDS_ETCD_ETCD_HELD_H */
