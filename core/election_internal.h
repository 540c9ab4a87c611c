/* Election functions for the core's own clients (the shard). */
#ifndef REIGN_CORE_ELECTION_INTERNAL_H
#define REIGN_CORE_ELECTION_INTERNAL_H

#include "reign/reign.h"

/* reign_election_resign without waiting: belief ends now, the release is
 * queued for the engine's next batch (before any new ACQUIRE of this
 * election), so a thread ending thousands of masterships sends their
 * releases in a few round trips instead of one round trip each. */
void reign_election_resign_nowait(reign_election *e);

#endif
