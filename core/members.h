/* Membership registry internals shared with the shard manager. */
#ifndef REIGN_CORE_MEMBERS_H
#define REIGN_CORE_MEMBERS_H

#include <stdint.h>

#include "reign/reign.h"

typedef struct members_state members_state;

/* Member slots are the resources "_reign/member/<k>". */
#define REIGN_MEMBER_PREFIX "_reign/member/"

/* The weight a member's metadata gives with a "weight=N" token (0..10^6),
 * else 1; _parse also refuses a bad token (REIGN_EINVAL). */
uint32_t reign_member_weight(const char *metadata);
int reign_member_weight_parse(const char *metadata, uint32_t *out);

/* The joined factory's current view, sorted by instance ID, and its
 * generation (bumped on every change). REIGN_ESTATE if not joined;
 * sets no error message. */
/* Slots the last refresh read (tests). */
size_t reign_members_last_reads(reign_factory *f);

int reign_members_view(reign_factory *f, reign_member **out, size_t *n_out, uint64_t *generation);

/* True while this joined instance found no free member slot. The view
 * still lists it (self), but the members do not count it: a shard should
 * then campaign for nothing (its own view would give it resources nobody
 * else assigns it) until a slot frees, when the refresher takes it and
 * this turns false. Any thread. */
bool reign_members_standing_by(reign_factory *f);

#endif
