/* Rendezvous (highest-random-weight) hashing with bounded loads: each
 * resource goes to the highest-ranked member that still has room. Plain
 * rendezvous hashing moves only ~R/(M+1) resources when a member joins but
 * leaves counts uneven by ±√(R/M); the capacity bound makes every count
 * ⌊R·w/W⌋ or one more (largest remainder) at the price of a few extra moves. */
#include "balance.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "reign/backend.h"

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint64_t reign_balance_hash(const char *s)
{
    return mix64(reign_hash(s, strlen(s)));
}

/* Capacities by largest remainder: ⌊R·w/W⌋ each, and the R − Σ left over
 * one by one to the largest fractions (ties by member ID), so they add up to
 * exactly R and every member ends within one of its exact share. */
static void capacities(size_t n_resources, const balance_member *members, size_t n_members,
                       size_t *cap)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n_members; i++)
        total += members[i].weight;
    /* Everyone at weight 0 (a fleet draining at once): share equally,
     * rather than leave everything to probes. */
    bool all_zero = total == 0;
    if (all_zero)
        total = n_members;
    size_t given = 0;
    for (size_t i = 0; i < n_members; i++) {
        uint64_t w = all_zero ? 1 : members[i].weight;
        cap[i] = (size_t)((uint64_t)n_resources * w / total);
        given += cap[i];
    }
    for (size_t left = n_resources - given; left > 0; left--) {
        size_t best = 0;
        uint64_t best_frac = 0;
        bool found = false;
        for (size_t i = 0; i < n_members; i++) {
            uint64_t w = all_zero ? 1 : members[i].weight;
            /* The fraction scaled by total; members already topped up this
             * round have a fraction below zero, i.e. are skipped. */
            uint64_t exact = (uint64_t)n_resources * w;
            uint64_t floor_part = (uint64_t)cap[i] * total;
            if (floor_part > exact)
                continue;
            uint64_t frac = exact - floor_part;
            if (frac == 0)
                continue;
            if (!found || frac > best_frac ||
                (frac == best_frac && strcmp(members[i].id, members[best].id) < 0)) {
                best = i;
                best_frac = frac;
                found = true;
            }
        }
        if (!found)
            break;
        cap[best]++;
    }
}

size_t reign_balance_capacity(size_t n_resources, const balance_member *members, size_t n_members,
                              size_t m)
{
    if (n_members == 0 || m >= n_members)
        return 0;
    size_t *cap = calloc(n_members, sizeof *cap);
    if (cap == NULL) /* fall back to the ceiling: never less than the share */
        return n_resources;
    capacities(n_resources, members, n_members, cap);
    size_t c = cap[m];
    free(cap);
    return c;
}

typedef struct order_entry {
    uint64_t hash;
    size_t index;
} order_entry;

static int cmp_order(const void *a, const void *b)
{
    const order_entry *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

static size_t find_member(const balance_member *members, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(members[i].id, id) == 0)
            return i;
    return BALANCE_NONE;
}

int reign_balance_assign(const uint64_t *resource_hash, size_t n_resources,
                         const balance_preference *prefs, const balance_member *members,
                         size_t n_members, size_t *owner)
{
    for (size_t i = 0; i < n_resources; i++)
        owner[i] = BALANCE_NONE;
    if (n_members == 0 || n_resources == 0)
        return 0;
    order_entry *order = malloc(n_resources * sizeof *order);
    size_t *room = malloc(n_members * sizeof *room);
    uint64_t *member_hash = malloc(n_members * sizeof *member_hash);
    if (order == NULL || room == NULL || member_hash == NULL) {
        free(order);
        free(room);
        free(member_hash);
        return -1;
    }
    capacities(n_resources, members, n_members, room);
    for (size_t m = 0; m < n_members; m++)
        member_hash[m] = reign_balance_hash(members[m].id);
    for (size_t i = 0; i < n_resources; i++)
        order[i] = (order_entry){resource_hash[i], i};
    qsort(order, n_resources, sizeof *order, cmp_order);

    /* Preferences first, in hash order, as far as each member has room:
     * a resource that names a live member keeps it unless that member is
     * full with other preferring resources (no hash order lets a
     * non-preferring resource take the room first). */
    for (size_t k = 0; prefs != NULL && k < n_resources; k++) {
        size_t r = order[k].index;
        for (size_t p = 0; p < prefs[r].n && owner[r] == BALANCE_NONE; p++) {
            size_t m = find_member(members, n_members, prefs[r].ids[p]);
            if (m != BALANCE_NONE && room[m] > 0) {
                owner[r] = m;
                room[m]--;
            }
        }
    }
    /* The rest by rendezvous among the members with room. */
    for (size_t k = 0; k < n_resources; k++) {
        size_t r = order[k].index;
        if (owner[r] != BALANCE_NONE)
            continue;
        size_t best = BALANCE_NONE;
        uint64_t best_score = 0;
        for (size_t m = 0; m < n_members; m++) {
            if (room[m] == 0)
                continue;
            uint64_t score = mix64(resource_hash[r] ^ member_hash[m]);
            if (best == BALANCE_NONE || score > best_score) {
                best = m;
                best_score = score;
            }
        }
        if (best != BALANCE_NONE) {
            owner[r] = best;
            room[best]--;
        }
    }
    free(order);
    free(room);
    free(member_hash);
    return 0;
}
