/* Test hooks of the mem:// backend: inject faults into an in-process store
 * and look at it from outside. FOR TESTS ONLY — not part of the stable API.
 *
 * A store is named by the NAME of "mem://NAME" ("" means "default") and
 * exists while at least one factory on it is open. These functions exist
 * only when reign was built with REIGN_WITH_MEM (the default). All are
 * thread-safe and never block for long.
 */
#ifndef REIGN_MEM_H
#define REIGN_MEM_H

#include <stdint.h>

#include "reign/reign.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum reign_mem_fault {
    /* Normal service. */
    REIGN_MEM_FAULT_NONE = 0,
    /* Every batch blocks until the fault is cleared (then it runs normally)
     * or its timeout passes (then every op ends in ERROR with
     * REIGN_ETIMEDOUT). Leases keep expiring meanwhile, as on a server that
     * stopped answering: this is how tests show that an instance stops
     * believing it is master at its own deadline. */
    REIGN_MEM_FAULT_STALL = 1,
    /* Every batch fails at once with REIGN_EBACKEND, as on a refused
     * connection; the store's data is untouched. */
    REIGN_MEM_FAULT_FAIL = 2,
} reign_mem_fault;

/* Set (or clear, with REIGN_MEM_FAULT_NONE) the fault of an open store. A
 * batch stalled when the fault changes carries on at once under the new one.
 * REIGN_EINVAL if no such store is open or `fault` is not one of the above. */
REIGN_EXTERN int reign_mem_set_fault(const char *store_name, reign_mem_fault fault);

/* Make every lease of the store expire now (a server losing its leases).
 * Terms are kept; the notification fd of every factory on the store becomes
 * readable. REIGN_EINVAL if no such store is open. */
REIGN_EXTERN int reign_mem_expire_all(const char *store_name);

/* Number of batches executed on the store so far (every call of the
 * backend's execute, including failed and stalled ones), to check batching.
 * 0 if no such store is open. */
REIGN_EXTERN uint64_t reign_mem_executes(const char *store_name);

#ifdef __cplusplus
}
#endif
#endif /* REIGN_MEM_H */
