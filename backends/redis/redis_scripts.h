/* The Lua scripts of the redis:// backend: one per lease operation, each
 * atomic on the server and using the server's clock only (PX, PTTL). */
#ifndef REIGN_BACKENDS_REDIS_REDIS_SCRIPTS_H
#define REIGN_BACKENDS_REDIS_REDIS_SCRIPTS_H

#include "reign/backend.h"

/* Index by reign_op_kind - 1 (ACQUIRE, RENEW, RELEASE, READ). */
#define REIGN_REDIS_N_SCRIPTS 4

/* The source of the script for an op kind, NULL for an unknown kind.
 *   ACQUIRE  KEYS lease, term; ARGV holder, ttl_ms, metadata
 *            → {1, term} | {0, holder, term, metadata, pttl}
 *   RENEW    KEYS lease; ARGV holder, term, ttl_ms            → 1 | 0
 *   RELEASE  KEYS lease; ARGV holder, term, channel, resource → 1 | 0
 *   READ     KEYS lease                → {holder, term, metadata, pttl} | nil */
const char *reign_redis_script(reign_op_kind kind);

/* The set_metadata script: KEYS[1] lease; ARGV holder, term, metadata,
 * changed channel, resource. Returns 1 (done) or 0 (not our lease). */
const char *reign_redis_set_metadata_script(void);

#endif /* REIGN_BACKENDS_REDIS_REDIS_SCRIPTS_H */
