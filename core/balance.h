/* Fair-share assignment of resources to members: rendezvous hashing with
 * bounded loads. Pure and deterministic, so every instance that sees the
 * same members computes the same targets without talking to the others. */
#ifndef REIGN_CORE_BALANCE_H
#define REIGN_CORE_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#define BALANCE_NONE SIZE_MAX

typedef struct balance_member {
    const char *id;
    uint32_t weight;  /* 0 takes nothing (unless all are 0: then equal) */
} balance_member;

/* A resource's preferred instances, in order (may be empty). */
typedef struct balance_preference {
    const char *const *ids;
    size_t n;
} balance_preference;

/* 64-bit hash used for ranking (FNV-1a + a finaliser): stable across
 * processes and machines, unlike pointer or seed-based hashes. */
uint64_t reign_balance_hash(const char *s);

/* Capacity of member m: ⌊R·w_m/W⌋, plus one for the members with the
 * largest remainders (ties by ID) so that the capacities add up to R. */
size_t reign_balance_capacity(size_t n_resources, const balance_member *members, size_t n_members,
                              size_t m);

/* For each resource i (by its hash resource_hash[i]) choose owner[i], an
 * index into members: every resource that prefers a live member with room
 * gets it (in the order of its preferences) before any resource is placed
 * by rendezvous rank, skipping members that are full. Resources are
 * placed in the order of their hashes within each pass, so the
 * result depends only on the sets, not on the order given. prefs may be
 * NULL. With no members every owner is BALANCE_NONE. Returns 0, or -1 if
 * out of memory. */
int reign_balance_assign(const uint64_t *resource_hash, size_t n_resources,
                         const balance_preference *prefs, const balance_member *members,
                         size_t n_members, size_t *owner);

#endif
