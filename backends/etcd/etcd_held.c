/* The etcd:// backend's set of resources believed held by others (see
 * etcd_held.h): open addressing, linear probing, backward-shift deletion so
 * no tombstones pile up. Unit-tested in test_etcd_codec.c. */
#include "etcd_held.h"

#include <stdlib.h>
#include <string.h>

#include "reign/backend.h"

/* Beyond this many entries the set is cleared rather than grown: a guess
 * lost costs a round trip, never a wrong answer. */
#define HELD_MAX (1u << 22)

static size_t find(const etcd_held *set, const char *res, size_t len, uint64_t h)
{
    size_t mask = set->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const etcd_held_slot *s = &set->slots[i];
        if (s->res == NULL || (s->hash == h && s->len == len && memcmp(s->res, res, len) == 0))
            return i;
    }
}

bool reign_etcd_held_contains(const etcd_held *set, const char *res, size_t len)
{
    if (set->n == 0)
        return false;
    return set->slots[find(set, res, len, reign_hash(res, len))].res != NULL;
}

static bool grow(etcd_held *set)
{
    size_t cap = set->cap ? set->cap * 2 : 64;
    etcd_held_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return false;
    etcd_held old = *set;
    set->slots = slots;
    set->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].res != NULL)
            set->slots[find(set, old.slots[i].res, old.slots[i].len, old.slots[i].hash)] =
                old.slots[i];
    free(old.slots);
    return true;
}

bool reign_etcd_held_add(etcd_held *set, const char *res, size_t len)
{
    if (set->n >= HELD_MAX)
        reign_etcd_held_clear(set);
    if ((set->n + 1) * 2 > set->cap && !grow(set))
        return false;
    uint64_t h = reign_hash(res, len);
    size_t i = find(set, res, len, h);
    if (set->slots[i].res != NULL)
        return true;
    char *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return false;
    memcpy(copy, res, len);
    set->slots[i] = (etcd_held_slot){copy, len, h};
    set->n++;
    return true;
}

void reign_etcd_held_remove(etcd_held *set, const char *res, size_t len)
{
    if (set->n == 0)
        return;
    size_t mask = set->cap - 1;
    size_t i = find(set, res, len, reign_hash(res, len));
    if (set->slots[i].res == NULL)
        return;
    free(set->slots[i].res);
    set->slots[i].res = NULL;
    set->n--;
    /* Shift later members of the run back so every probe still finds them. */
    for (size_t j = (i + 1) & mask; set->slots[j].res != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)set->slots[j].hash & mask;
        /* j may move to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        set->slots[i] = set->slots[j];
        set->slots[j].res = NULL;
        i = j;
    }
}

void reign_etcd_held_clear(etcd_held *set)
{
    for (size_t i = 0; i < set->cap; i++) {
        free(set->slots[i].res);
        set->slots[i].res = NULL;
    }
    set->n = 0;
}

void reign_etcd_held_free(etcd_held *set)
{
    reign_etcd_held_clear(set);
    free(set->slots);
    memset(set, 0, sizeof *set);
}
